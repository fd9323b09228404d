"""A grid of transfers as idempotent jobs, and the losses table.

A job is one target at one order: every candidate of that order (first
order: each other task, plus the ``random`` and ``pixels`` baselines and
the deterministic ``self`` and ``constant`` references; order k > 1: the
beam's k-subsets), each trained with every replicate seed, all in one
fused program (:mod:`.fused`). A job writes ``jobs/<target>__order<k>.json``
atomically when it finishes and ``grid.log`` gets a ``finished`` line;
running the grid again skips finished jobs and redoes the rest, so a crash
or a kill loses at most the jobs in flight. Each job records the grid's
content key (:func:`grid_key`: the data's shard checksums, every network's
file hashes, the settings and the code version); a job of another key is
stale and is redone, so results of other data or retrained networks are
never mixed into a table. ``--shard I/N`` takes every
N-th job. A target's higher orders come from a beam over its own
first-order results (:func:`beam_candidates`), so they wait only for that
target's first-order job. The losses table (``losses.csv``: candidate,
sources, target, image, seed, loss; ``image`` the record id
``building/point/view``) is assembled from the finished jobs, in job order,
for ``python -m taskonomy_tf.taxonomy affinities``.
"""

from __future__ import annotations

import csv
import dataclasses
import functools
import itertools
import json
import os
import time
from pathlib import Path

import numpy as np

from taskonomy_tf.errors import InputError
from taskonomy_tf.fileio import atomic_path, write_json_atomic
from taskonomy_tf.tasks import get_task
from taskonomy_tf.taxonomy.table import BASELINES, CONSTANT, PIXELS, RANDOM, SELF

DETERMINISTIC = (SELF, CONSTANT)  # scored once, not retrained per seed
# Beam widths per order, from the released 16k data (reference section 4):
# orders 2 and 3 combine the top 5 first-order sources, order 4 the top 6;
# every order above gets one candidate, the top-k sources.
BEAM = {2: 5, 3: 5, 4: 6}
JOB_SCHEMA = 3  # 3: the content key and the test images' ids


@dataclasses.dataclass(frozen=True)
class Job:
    """All candidates of one order for one target."""

    target: str
    order: int

    @property
    def name(self) -> str:
        return f"{self.target}__order{self.order}"


ORACLE = "oracle:"  # taxonomy.table.ORACLE: a readout from a task's true labels


def kind_of(sources: tuple[str, ...]) -> str:
    """``transfer``, ``oracle`` or the baseline's name (the losses table's
    candidate column)."""
    if sources[0] in BASELINES:
        return sources[0]
    return "oracle" if sources[0].startswith(ORACLE) else "transfer"


def oracle_sources(target: str, tasks: list[str]) -> list[tuple[str, ...]]:
    """``(oracle:<task>,)`` for every other task whose labels give a per-image
    code (one view, a label per image or pixel; not the segmentation metric's
    segment ids, which mean nothing across images)."""
    from taskonomy_tf.models.losses import PAIRWISE_LOSSES

    out = []
    for t in tasks:
        spec = get_task(t)
        if (spec is not get_task(target) and spec.domain is not None and spec.views == 1
                and spec.loss not in PAIRWISE_LOSSES and spec.input == "rgb"):
            out.append((ORACLE + spec.name,))
    return out


def targets_of(tasks: list[str]) -> list[str]:
    """The tasks that are transfer targets: all but the source-only ones
    (colorization, in-painting, jigsaw: trained only to be sources, as in
    the paper's dictionary of 26 over 22 targets)."""
    return [get_task(t).name for t in tasks if not get_task(t).source_only]


def first_order_jobs(tasks: list[str]) -> list[Job]:
    """One first-order job per target (``targets_of``)."""
    return [Job(t, 1) for t in targets_of(tasks)]


def first_order_candidates(target: str, tasks: list[str], baselines: bool = True
                           ) -> list[tuple[str, ...]]:
    """Every other task as a source, plus ``random`` and ``pixels``."""
    names = [get_task(t).name for t in tasks]
    out = [(s,) for s in names if s != target]
    return out + ([(RANDOM,), (PIXELS,)] if baselines else [])


def tournament_scores(losses: np.ndarray) -> np.ndarray:
    """Each candidate's mean win rate over the others, (n,) from (n, images)
    losses (``taxonomy.ahp.win_rates``: a win is a lower loss on an image,
    ties count half)."""
    from taskonomy_tf.taxonomy.ahp import win_rates  # numpy only

    w = win_rates(losses)
    return (w.sum(1) - 0.5) / max(len(losses) - 1, 1)


def rank_sources(losses: dict[str, np.ndarray], score=None) -> list[str]:
    """First-order sources, best first, by ``score`` over their per-image
    losses on the same test images; ties broken by name.

    Args:
        score: (n, images) losses -> (n,) scores, higher better. The reference
            (section 4) ranks by AHP affinity; the commands pass
            ``taxonomy``'s AHP here (this package may not import it). The
            default, the mean win rate, orders the same way in all but
            near-ties.
    """
    names = sorted(losses)
    if len(names) == 1:
        return names
    scores = (score or tournament_scores)(np.stack([losses[n] for n in names]))
    return [names[i] for i in sorted(range(len(names)), key=lambda i: (-scores[i], names[i]))]


def beam_candidates(ranked: list[str], order: int, beam: dict[int, int] | None = None
                    ) -> list[tuple[str, ...]]:
    """The order-k candidates of a target from its ranked first-order sources.

    Order k <= max(beam): every k-subset of the top ``beam[k]``; above that,
    one candidate (the top k). Sources are kept in rank order.
    """
    beam = BEAM if beam is None else beam
    if order > len(ranked):
        return []
    if order in beam:
        return list(itertools.combinations(ranked[:beam[order]], order))
    return [tuple(ranked[:order])]


def ranked_sources(out, target: str, score=None, keep: list[str] | None = None) -> list[str]:
    """A target's first-order sources ranked on its finished order-1 job
    (losses averaged over replicates; baselines left out).

    Raises:
        FileNotFoundError: the target's first-order job is not finished.
    """
    job = Job(target, 1)
    if not job_done(out, job):
        raise FileNotFoundError(f"higher orders of {target!r} need its first-order job "
                                f"({job.name}), not finished")
    losses = {c["sources"][0]: np.mean(c["losses"], axis=0)
              for c in read_job(out, job)["candidates"]
              if c["kind"] == "transfer" and (keep is None or c["sources"][0] in keep)}
    return rank_sources(losses, score)


def shard(jobs: list, index: int, count: int) -> list:
    """The ``index``-th of ``count`` disjoint parts (0-based), round robin."""
    if not 0 <= index < count:
        raise InputError(f"--shard {index}/{count}: expected 0 <= I < N")
    return jobs[index::count]


def job_path(out, job: Job) -> Path:
    return Path(out) / "jobs" / f"{job.name}.json"


def job_done(out, job: Job, key: str | None = None, beam=None, score=None) -> bool:
    """Whether ``job`` has a result (of the grid's content ``key`` with this
    ``beam`` and ``score``, ``job_key``, when given)."""
    path = job_path(out, job)
    if not path.exists():
        return False
    return key is None or json.loads(path.read_text()).get("key") == job_key(key, job, beam,
                                                                              score)


# The subpackages whose code computes a job's per-image losses: records and
# targets, models and losses, the task specs, evaluation, the readouts.
CODE_PACKAGES = ("data", "models", "tasks", "training", "transfer")


def _strip_docstrings(tree):
    import ast

    for node in ast.walk(tree):
        body = getattr(node, "body", None)
        if (isinstance(body, list) and body and isinstance(body[0], ast.Expr)
                and isinstance(body[0].value, ast.Constant)
                and isinstance(body[0].value.value, str)):
            node.body = body[1:] or [ast.Pass()]
    return tree


@functools.cache
def code_fingerprint(root: str | None = None, packages: tuple[str, ...] = CODE_PACKAGES) -> str:
    """SHA-256 (24 hex digits) of the code that computes a job: every module
    of ``packages`` under ``root`` (this package by default), parsed, with
    docstrings dropped (comments are not in the tree): a change to what runs
    changes it, a change to the prose does not."""
    import ast
    import hashlib

    base = Path(root) if root else Path(__file__).resolve().parents[1]
    digest = hashlib.sha256()
    for package in packages:
        for path in sorted((base / package).rglob("*.py")):
            tree = _strip_docstrings(ast.parse(path.read_text(), str(path)))
            digest.update(path.relative_to(base).as_posix().encode())
            digest.update(ast.dump(tree).encode())
    return digest.hexdigest()[:24]


def job_key(key: str | None, job: Job, beam=None, score=None) -> str | None:
    """The content key of one job: the grid's, and for a job above order 1
    the beam width of its order and the ranking of its sources, which decide
    its candidates (widening the beam must train the new ones)."""
    if key is None or job.order == 1:
        return key
    import hashlib

    width = (BEAM if beam is None else beam).get(job.order)  # as beam_candidates reads it
    name = getattr(score, "__qualname__", None) if score is not None else None
    return hashlib.sha256(f"{key}|{job.order}|{width}|{name}".encode()).hexdigest()[:24]


def grid_key(workdirs: dict, data, splits: tuple[str, ...], settings: dict) -> str:
    """SHA-256 (24 hex digits) of what a grid's results depend on: the
    data's splits (shard checksums), every network's ``encoder.keras`` and
    ``model.keras`` (the ``random`` encoder's too), the settings and the
    code (``code_fingerprint`` and the job schema)."""
    import hashlib

    from taskonomy_tf.fileio import sha256_file
    from taskonomy_tf.transfer.cache import data_fingerprint

    parts = {"code": [code_fingerprint(), JOB_SCHEMA], "settings": settings,
             "data": {s: data_fingerprint(data, s) for s in splits},
             "networks": {task: {f: sha256_file(Path(w) / f)
                                 for f in ("encoder.keras", "model.keras")
                                 if (Path(w) / f).exists()}
                          for task, w in sorted(workdirs.items())}}
    text = json.dumps(parts, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:24]


def read_job(out, job: Job) -> dict:
    return json.loads(job_path(out, job).read_text())


def random_encoder(root: Path, image_size: int, seed: int = 0, architecture: str = "small"
                   ) -> Path:
    """A Gaussian-initialised, never trained encoder of ``architecture``
    (the sources' own: the paper's baseline), saved once as a workdir.

    Created exclusively: processes that start together on one folder (grid
    shards, pipeline workers) all use the first one saved, so the grid key,
    which hashes the file, is the same in all of them."""
    import keras

    from taskonomy_tf.models import build_encoder

    workdir = Path(root) / f"random-{architecture}-{image_size}-{seed}"
    path = workdir / "encoder.keras"
    if not path.exists():
        keras.utils.set_random_seed(seed)
        with atomic_path(path, exclusive=True) as tmp:
            build_encoder(architecture, image_size).save(tmp)
    return workdir


def _log(out, line: str) -> None:
    with open(Path(out) / "grid.log", "a") as f:
        f.write(f"{time.strftime('%Y-%m-%dT%H:%M:%S')} {os.getpid()} {line}\n")


def job_candidates(job: Job, tasks: list[str], out, beam=None, score=None,
                   prefilter: dict[str, list[str]] | None = None,
                   sources: list[str] = (), oracle: bool = False) -> list[tuple[str, ...]]:
    """The trained candidates of a job (``prefilter``: target -> the sources
    worth training; the baselines always run; ``sources``: your own
    encoders, ``transfer.sources``, sources of every target, never filtered)."""
    keep = (prefilter or {}).get(job.target)
    if job.order == 1:
        every = first_order_candidates(job.target, tasks)
        every = every[:-2] + [(s,) for s in sources] + every[-2:]  # baselines last
        return [c for c in every if keep is None or c[0] in BASELINES or c[0] in keep
                or c[0] in sources] + (oracle_sources(job.target, tasks) if oracle else [])
    return beam_candidates(ranked_sources(out, job.target, score, keep), job.order, beam)


def run_job(job: Job, tasks: list[str], workdirs: dict, data, out, seeds=(0,), beam=None,
            score=None, prefilter=None, key: str | None = None, sources=(), oracle=False,
            **options) -> str:
    """Runs one job and writes its result atomically (with the grid's
    content ``key``); returns its name.

    ``workdirs`` maps task names to trained networks' workdirs (and
    ``random`` to :func:`random_encoder`'s); ``options`` go to
    :func:`~taskonomy_tf.transfer.runner.run_candidates`.
    """
    from taskonomy_tf.data.card import use_records
    from taskonomy_tf.transfer.cache import FeatureCache
    from taskonomy_tf.transfer.runner import run_candidates

    use_records(data)  # a worker process learns a dataset card's tasks here
    job_path(out, job).parent.mkdir(parents=True, exist_ok=True)
    _log(out, f"started {job.name}")
    start = time.perf_counter()
    candidates = job_candidates(job, tasks, out, beam, score, prefilter, list(sources), oracle)
    results = run_candidates(job.target, candidates, workdirs, data,
                             FeatureCache(Path(out) / "cache"), seeds=list(seeds),
                             references=job.order == 1, **options)
    record = {"schema_version": JOB_SCHEMA, "key": job_key(key, job, beam, score),
              "target": job.target,
              "order": job.order, "seeds": [int(s) for s in seeds],
              "images": results.images,
              "seconds": round(time.perf_counter() - start, 3), "candidates": [
                  {"kind": kind_of(c), "sources": list(c),
                   "losses": np.atleast_2d(v).round(7).tolist()}
                  for c, v in results.items()]}
    write_json_atomic(job_path(out, job), record)
    _log(out, f"finished {job.name}")
    return job.name


def write_losses_table(jobs: list[Job], out: str | os.PathLike, key: str | None = None,
                       beam=None, score=None) -> Path:
    """``losses.csv`` from the finished jobs (unfinished or stale ones, of
    another content key, ``job_key``, are named).

    One row per candidate, test image and replicate seed; ``self`` and
    ``constant`` are not retrained, and have one row per image with an
    empty seed.
    """
    out = Path(out)
    missing = [j.name for j in jobs if not job_done(out, j, key, beam, score)]
    if missing:
        raise FileNotFoundError(f"{len(missing)} job(s) not finished (or of other inputs), "
                                f"e.g. {missing[0]}")
    path = out / "losses.csv"
    with atomic_path(path) as tmp, open(tmp, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["candidate", "sources", "target", "image", "seed", "loss"])
        for job in jobs:
            record = read_job(out, job)
            for c in record["candidates"]:
                sources = "+".join(c["sources"])
                seeds = [""] if c["kind"] in DETERMINISTIC else record["seeds"]
                for seed, row in zip(seeds, c["losses"]):
                    for image, loss in zip(record["images"], row, strict=True):
                        w.writerow([c["kind"], sources, job.target, image, seed,
                                    repr(float(loss))])
    return path
