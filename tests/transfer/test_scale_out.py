"""The grid under real interruptions and on a real (local) Ray instance."""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from taskonomy_tf.fileio import temporary_name

ROOT = Path(__file__).resolve().parents[2]

TASKS = "normals,edges,depth_zbuffer"


def _grid_args(models, data, out):
    return [sys.executable, "-m", "taskonomy_tf.transfer", "grid", "--tasks", TASKS,
            "--models", str(models), "--data", str(data), "--out", str(out),
            "--transfer-images", "8", "--steps", "2", "--max-order", "2", "--seeds", "2"]


def _table(path):
    with open(path) as f:
        rows = list(csv.reader(f))
    return rows[0], [r[:5] for r in rows[1:]], np.array([float(r[5]) for r in rows[1:]])


def _assert_same_table(a, b):
    head_a, keys_a, loss_a = _table(a)
    head_b, keys_b, loss_b = _table(b)
    assert head_a == head_b and keys_a == keys_b
    np.testing.assert_allclose(loss_a, loss_b, rtol=1e-4, atol=1e-6)


@pytest.fixture(scope="module")
def uninterrupted(grid_run):
    return grid_run[1].table  # the same grid, run in one go in this process


@pytest.mark.slow
def test_killed_grid_resumes_to_the_same_table(models, split_records, uninterrupted, tmp_path):
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    proc = subprocess.Popen(_grid_args(models, split_records, tmp_path), env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 300
    while time.time() < deadline and len(list((tmp_path / "jobs").glob("[!.]*.json"))) < 2:
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    finished_before = {p.stem for p in (tmp_path / "jobs").glob("[!.]*.json")}  # not a
    # temporary file the kill may have left mid-write
    assert 2 <= len(finished_before) < 6 and not (tmp_path / "losses.csv").exists()
    host_prefix = temporary_name(tmp_path / "jobs" / "x.json").name.rsplit("-", 1)[0]
    (tmp_path / "jobs" / f"{host_prefix}-{proc.pid}.json").write_text('{"half')  # as if
    # the kill had come mid-write (it may also have left one of its own)
    logged_before = len((tmp_path / "grid.log").read_text().splitlines())  # the kill may
    # fall between a job's record and its "finished" line: the record is what counts
    done = subprocess.run(_grid_args(models, split_records, tmp_path) + ["--workers", "2"],
                          env=env, capture_output=True, text=True)  # resumed in 2 processes
    assert done.returncode == 0, done.stderr[-2000:]
    _assert_same_table(tmp_path / "losses.csv", uninterrupted)
    resumed = (tmp_path / "grid.log").read_text().splitlines()[logged_before:]
    started = Counter(line.split()[-1] for line in resumed if line.split()[2] == "started")
    every = {p.stem for p in (tmp_path / "jobs").glob("[!.]*.json")}
    assert not set(started) & finished_before and max(started.values()) == 1  # none run twice
    assert set(started) | finished_before == every and len(every) == 6
    assert not list((tmp_path / "jobs").glob(".*tmp*"))  # nothing half-written survives use


@pytest.mark.slow
def test_ray_backend_gives_the_same_table(models, split_records, uninterrupted, tmp_path):
    pytest.importorskip("ray")
    from taskonomy_tf.taxonomy.ahp import ahp_scores
    from taskonomy_tf.transfer import run_grid

    result = run_grid(TASKS.split(","), models, split_records, tmp_path, max_order=2,
                      n_images=8, steps=2, seeds=[0, 1], backend="ray", progress=False,
                      score=ahp_scores)  # as the command ranks
    assert result.pending == 0
    _assert_same_table(result.table, uninterrupted)
    pids = {line.split()[1] for line in (tmp_path / "grid.log").read_text().splitlines()}
    assert str(os.getpid()) not in pids  # the jobs ran in Ray workers, not here


def test_ray_jobs_share_a_node_memory_as_the_pool_does():
    from taskonomy_tf.transfer.schedule import ray_job_budget

    nodes = [{"Alive": True, "Resources": {"CPU": 4.0, "memory": 16e9}},
             {"Alive": True, "Resources": {"CPU": 2.0, "memory": 16e9}},
             {"Alive": False, "Resources": {"CPU": 1.0, "memory": 1e9}},  # gone: ignored
             {"Alive": True, "Resources": {"CPU": 8.0}}]  # no memory reported
    assert ray_job_budget(nodes) == 2e9  # 16 GB / (2 x 4 jobs) on the tighter node
    assert ray_job_budget([]) is None


def test_the_memory_budget_reads_the_container_limit(tmp_path, monkeypatch):
    from taskonomy_tf.transfer import memory as readout

    v2, v1 = tmp_path / "memory.max", tmp_path / "memory.limit_in_bytes"
    v2.write_text("1073741824\n")
    assert readout.cgroup_limit((str(v2), str(v1))) == 1 << 30
    v2.write_text("max\n")
    assert readout.cgroup_limit((str(v2), str(v1))) is None
    assert readout.cgroup_limit((str(tmp_path / "none"), str(v1))) is None
    v1.write_text("536870912")
    assert readout.cgroup_limit((str(tmp_path / "none"), str(v1))) == 1 << 29
    monkeypatch.setattr(readout.cgroup_limit, "__defaults__", ((str(v1),),))
    assert readout.physical_memory() == 1 << 29  # below this machine's memory
    assert readout.memory_budget(workers=2) == 1 << 27


def test_the_budget_counts_the_job_arrays_before_the_heads():
    import numpy as np

    from taskonomy_tf.transfer.memory import PROGRAM_BYTES, arrays_bytes, heads_per_program
    from taskonomy_tf.transfer.readout import ReadoutArrays
    from taskonomy_tf.transfer.scoring import SCORE_BYTES

    def arrays(n):
        return ReadoutArrays(np.zeros((n, 1, 4, 4, 8), np.float32),
                             np.zeros((n, 8, 8, 3), np.float32), np.zeros((n, 8, 8), np.float32))

    per_image = (128 + 192 + 64) * 4
    fixed = arrays_bytes(arrays(100), arrays(10))
    assert fixed == 3 * 100 * per_image + 10 * per_image + SCORE_BYTES + PROGRAM_BYTES
    assert heads_per_program(fixed + 10 * 1000, fixed, 1000) == 10
    assert heads_per_program(fixed // 2, fixed, 1000) == 1  # always at least one head


BUDGETED = r"""
import json, sys
import numpy as np
from taskonomy_tf.transfer import memory, scoring
from taskonomy_tf.transfer.readout import ReadoutArrays, plan_heads, train_readouts

limit_file, budgeted = sys.argv[1], sys.argv[2] == "1"
memory.cgroup_limit.__defaults__ = ((limit_file,),)  # the container's limit, as read
# a scoring batch of these 8 test images is far below the 256 MiB reserved
# for it; a smaller bound keeps the budget about the heads
memory.SCORE_BYTES = scoring.SCORE_BYTES = 16 * 2**20


def status(key):
    return next(int(line.split()[1]) * 1024 for line in open("/proc/self/status")
                if line.startswith(key))


def arrays(rng, n, size=32):  # segment ids that follow source a's codes
    codes = np.maximum(rng.normal(size=(n, 2, size // 4, size // 4, 8)), 0).astype("float32")
    y = np.repeat(np.repeat((codes[:, 0, ..., 0] > 0.5), 4, 1), 4, 2)[..., None]
    return ReadoutArrays(codes, y.astype("float32"), np.ones((n, size, size), "float32"))


rng = np.random.default_rng(0)
train, test = arrays(rng, 64), arrays(rng, 8)
prior = np.zeros((32, 32, 64), "float32")
opts = dict(steps=2, batch_size=32, learning_rate=1e-2)
heads = plan_heads([("a",), ("b",), ("a", "b")], [0, 1])
# the runtime and its kernels first, one head: not what the budget divides
train_readouts("segment_unsup2d", heads[:1], ["a", "b"], train, test, 32, prior, [0], **opts)
per_head = memory.head_step_bytes("segment_unsup2d", 32, 32)
fixed = memory.arrays_bytes(train, test)
budget = memory.memory_budget()
fits = memory.heads_per_program(budget, fixed, per_head) if budgeted else None
try:
    open("/proc/self/clear_refs", "w").write("5")  # the peak from here
except OSError as exc:
    print(json.dumps({"skip": f"cannot reset the resident peak: {exc}"}))
    sys.exit(0)
base = status("VmRSS")
train_readouts("segment_unsup2d", heads, ["a", "b"], train, test, 32, prior, [0, 1],
               max_heads=fits, **opts)
print(json.dumps({"budget": budget, "fixed": fixed, "per_head": per_head, "fits": fits,
                  "grew": status("VmHWM") - base}))
"""


@pytest.mark.slow
@pytest.mark.skipif(not os.path.exists("/proc/self/clear_refs"), reason="needs Linux's "
                    "/proc/self/clear_refs to measure a peak")
def test_a_budgeted_job_fits_the_containers_limit_and_an_unbudgeted_one_does_not(tmp_path):
    """Six segmentation heads (50 MB of estimated step memory each at 32
    px, batch 32, predicted at 300 pixels) under a container limit whose
    budget (half of it) leaves room for one and a quarter beside the job's
    arrays and a program's own cost: trained in programs the budget sets
    (one head each), the process grows by less than the budget (180 MB
    measured); in one program (no budget), by more (320 MB against a 283
    MB budget), so the limit is what kept the first within it."""
    from taskonomy_tf.transfer.memory import PROGRAM_BYTES

    limit = tmp_path / "memory.limit_in_bytes"
    per_head = 4 * 32 * (5 * 300 * (64 + 16) + 3 * 300 ** 2)
    fixed = 3 * 64 * (2 * 8 * 8 * 8 + 2 * 32 * 32) * 4 + 8 * (2 * 8 * 8 * 8 + 2 * 32 * 32) * 4
    fixed += PROGRAM_BYTES
    limit.write_text(str(2 * (fixed + 16 * 2**20 + per_head + per_head // 4)))
    script = tmp_path / "budgeted.py"
    script.write_text(BUDGETED)
    runs = {}
    for budgeted in ("1", "0"):
        out = subprocess.run([sys.executable, str(script), str(limit), budgeted],
                             capture_output=True, text=True, timeout=600,
                             env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
        assert out.returncode == 0, out.stderr[-3000:]
        runs[budgeted] = json.loads(out.stdout.strip().splitlines()[-1])
        if "skip" in runs[budgeted]:
            pytest.skip(runs[budgeted]["skip"])
    fit, whole = runs["1"], runs["0"]
    assert fit["per_head"] == per_head and fit["fixed"] == fixed + 16 * 2**20
    assert fit["fits"] == 1  # six programs of one head
    assert fit["grew"] <= fit["budget"], (fit, whole)
    assert whole["grew"] > fit["budget"], (fit, whole)


@pytest.mark.parametrize("target", ["normals", "segment_unsup2d", "segment_semantic",
                                    "fixated_pose", "room_layout"])
def test_the_plan_counts_what_a_job_reads(split_records, target):
    """The dry run's per-example bytes are those of the arrays a job reads
    (labels, weights, images of every view) and of the codes the small
    encoder makes."""
    from taskonomy_tf.models import build_encoder
    from taskonomy_tf.tasks import get_task
    from taskonomy_tf.transfer.memory import example_bytes
    from taskonomy_tf.transfer.runner import _arrays

    spec = get_task(target)
    y, w, x, _ = _arrays(split_records, target, "train", 32, 4, True)
    per = example_bytes(spec, 32, 3, pixels=True)
    assert (per["label"], per["weight"], per["images"]) == (y[0].nbytes, w[0].nbytes,
                                                            x[0].nbytes)
    code = build_encoder("small", 32).output_shape[1:]
    assert per["codes"] == 4 * 3 * spec.views * int(np.prod(code))


def test_the_paper_dry_run_prints_each_jobs_peak_and_warns_above_the_budget():
    from taskonomy_tf.config import load_config
    from taskonomy_tf.transfer.memory import GB, experiment_plan, job_plan

    exp = load_config(ROOT / "experiments" / "paper_16k.py")
    plan = experiment_plan(exp, budget=64 * GB)
    assert plan["assumed"] == ["test_images"]  # no records to count the test split
    jobs = {j["target"]: j for j in plan["jobs"]}
    assert set(jobs) == set(exp.tasks)
    edges = job_plan("edges", [("normals",), ("random",), ("pixels",)], 16000, 16000, 256, 3,
                     32, 64 * GB)
    # labels, weights and images of 32k views at 256 px, and the median's chunk
    read = 32000 * 4 * 256 * 256 * (1 + 1 + 3) + 16000 * 4 * 256 * 256
    assert edges["prior"] == read + 256 * 2**20 + 8 * 256 * 256
    # the arrays alone pass the budget: one head per program, the most it can do
    assert edges["arrays"] > 64 * GB and edges["heads_per_program"] == 1
    assert edges["peak"] == max(edges["prior"], edges["arrays"] + edges["per_head"])
    small = job_plan("edges", [("normals",), ("random",), ("pixels",)], 100, 100, 256, 3, 32,
                     64 * GB)
    assert small["heads_per_program"] == 9 and small["programs"] == 1
    assert jobs["edges"]["peak"] > 64  # GiB: the readouts hold 3 copies of 16k images


def test_the_budget_reads_this_processs_own_cgroup_and_its_parents(tmp_path):
    """Outside a container (a SLURM job, a systemd slice) the limit is on
    the process's own cgroup, not the root: v1 and v2 paths from
    /proc/self/cgroup, each parent's limit too, the tightest one wins."""
    from taskonomy_tf.transfer.memory import cgroup_files, cgroup_limit

    root = tmp_path / "cg"
    proc = tmp_path / "cgroup"
    proc.write_text("12:cpu,cpuacct:/slurm/uid_1/job_7\n11:memory:/slurm/uid_1/job_7\n"
                    "0::/system.slice/run.scope\n")
    files = cgroup_files(str(proc), str(root))
    assert files[:3] == (f"{root}/memory/slurm/uid_1/job_7/memory.limit_in_bytes",
                         f"{root}/memory/slurm/uid_1/memory.limit_in_bytes",
                         f"{root}/memory/slurm/memory.limit_in_bytes")
    assert files[3:5] == (f"{root}/system.slice/run.scope/memory.max",
                          f"{root}/system.slice/memory.max")
    for path, value in ((files[0], "9223372036854771712"), (files[1], str(6 << 30)),
                        (files[3], "max")):
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        Path(path).write_text(value + "\n")
    assert cgroup_limit(files) == 6 << 30  # the user's limit, above its job's unlimited one
    assert cgroup_limit(files[:1]) is None  # v1's "no limit"
    assert cgroup_limit(files[2:5]) is None
