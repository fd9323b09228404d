"""Shared fixtures: tiny raw datasets in the Taskonomy layouts, and records."""

from __future__ import annotations

import os

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import re
from pathlib import Path

import pytest

SHARED = Path(__file__).resolve().parents[1].parent / "shared"
SAMPLES = SHARED / "data" / "taskonomy_samples" / "taskonomy"


@pytest.fixture(scope="session")
def samples_dir() -> Path:
    if not SAMPLES.is_dir():
        pytest.skip("../shared/data/taskonomy_samples is absent")
    return SAMPLES


def arrange_samples(samples: Path, root: Path, layout: str, building: str = "bldg") -> Path:
    """Symlinks the flat real samples into a layout (never copies them).

    Display copies (``..._domain_depth_zbuffer2.png``) go into the folder of
    their base domain, where a reader must still ignore them.
    """
    for f in sorted(samples.iterdir()):
        m = re.match(r"point_\d+_view_\d+_domain_(\w+?)2?\.\w+$", f.name)
        if not m:
            continue
        folder = m.group(1)
        target = root / (f"{building}/{folder}" if layout == "original"
                         else f"{folder}/taskonomy/{building}")
        target.mkdir(parents=True, exist_ok=True)
        (target / f.name).symlink_to(f)
    return root


@pytest.fixture(scope="session")
def fake_raw(tmp_path_factory) -> Path:
    from tfrecords_tools.fake import write_fake_dataset

    return write_fake_dataset(tmp_path_factory.mktemp("fake") / "raw", buildings=2, points=3,
                              views=3, size=32)


@pytest.fixture(scope="session")
def fake_records(fake_raw, tmp_path_factory) -> Path:
    from tfrecords_tools.convert import convert

    out = tmp_path_factory.mktemp("fake") / "records"
    convert(str(fake_raw), str(out), shard_size=4, progress=False)
    return out


@pytest.fixture(scope="session")
def arrange():
    """The ``arrange_samples`` helper, for tests that build layouts."""
    return arrange_samples


@pytest.fixture(scope="session")
def results_dir(tmp_path_factory) -> Path:
    """The paper's released tables the tests read: the affinities shipped with
    the package and the 16k win rates shipped with the tests (so they run
    from a bare clone; the same files as ../shared/data/taskonomy_results)."""
    import taskonomy_tf.published as published

    folder = tmp_path_factory.mktemp("published")
    for source in (Path(published.__file__).parent, Path(__file__).parent / "fixtures" /
                   "published"):
        for f in source.glob("*.json"):
            (folder / f.name).symlink_to(f)
    return folder


# Trained toy networks on a train/test split of the fake data (session-scoped:
# trained once for the transfer, pipeline and estimator tests).
@pytest.fixture(scope="session")
def split_records(fake_raw, tmp_path_factory):
    from tfrecords_tools.convert import convert

    out = tmp_path_factory.mktemp("split")
    csv = out / "split.csv"
    csv.write_text("id,train,val,test\nfakebldg0,1,0,0\nfakebldg1,0,0,1\n")
    for split in ("train", "test"):
        convert(str(fake_raw), str(out / "rec"), split_csv=str(csv), split=split, progress=False)
    return out / "rec"


@pytest.fixture(scope="session")
def trained(split_records, tmp_path_factory):
    from taskonomy_tf.training import TrainConfig, train_and_evaluate

    dirs = {}
    for task in ("normals", "edges", "depth_zbuffer"):
        w = tmp_path_factory.mktemp(task)
        train_and_evaluate(TrainConfig.of(task=task, data=str(split_records), image_size=32,
                                       batch_size=4, steps=2, verbose=0, cache=False), w)
        dirs[task] = w
    return dirs


@pytest.fixture(scope="session")
def models(trained, tmp_path_factory):
    root = tmp_path_factory.mktemp("models")
    for task, w in trained.items():
        (root / task).symlink_to(w, target_is_directory=True)
    return root


@pytest.fixture(scope="session")
def grid_run(models, split_records, tmp_path_factory):
    """A finished normals/edges/z-depth grid up to order 2, two replicate
    seeds, with the command's settings."""
    from taskonomy_tf.taxonomy.ahp import ahp_scores
    from taskonomy_tf.transfer import run_grid

    out = tmp_path_factory.mktemp("grid")
    result = run_grid(["normals", "edges", "depth_zbuffer"], models, split_records, out,
                      max_order=2, n_images=8, steps=2, seeds=[0, 1], progress=False,
                      score=ahp_scores)  # as the command ranks
    return out, result



@pytest.fixture
def run_under_jax():
    """``run_under_jax(code)``: runs the Python ``code`` in a fresh process
    with ``KERAS_BACKEND=jax`` (skips the test without jax); returns the last
    line it printed, after asserting that it exited cleanly."""
    pytest.importorskip("jax")
    import subprocess
    import sys

    def run(code: str) -> str:
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                             env={**os.environ, "KERAS_BACKEND": "jax"}, timeout=300)
        assert out.returncode == 0, out.stderr[-2000:]
        return out.stdout.strip().splitlines()[-1]

    return run


@pytest.fixture
def free_ports():
    """``free_ports(n)``: n TCP ports on 127.0.0.1 free at the time of the call
    (for localhost MultiWorkerMirroredStrategy clusters)."""
    import socket

    def take(n: int) -> list[int]:
        socks = [socket.socket() for _ in range(n)]
        for s in socks:
            s.bind(("127.0.0.1", 0))
        ports = [s.getsockname()[1] for s in socks]
        for s in socks:
            s.close()
        return ports

    return take


@pytest.fixture(autouse=True, scope="module")
def _card_tasks_stay_in_their_module():
    """A dataset card's tasks and domains are registered by whatever opens its
    records (by design); a test module's cards leave the registries as they
    found them, so ``--tasks all`` elsewhere means the catalog."""
    from taskonomy_tf import tasks
    from taskonomy_tf.data import schema

    saved = (dict(tasks._TASKS), dict(schema.DOMAINS), dict(schema.TOKEN_TO_DOMAIN),
             dict(schema.FOLDER_TO_DOMAIN))
    yield
    for live, old in zip((tasks._TASKS, schema.DOMAINS, schema.TOKEN_TO_DOMAIN,
                          schema.FOLDER_TO_DOMAIN), saved):
        live.clear()
        live.update(old)
    tasks._rebuild_names()
