"""A grid of transfers as idempotent jobs, and the losses table.

Each job (one target and one candidate: a source set, ``self`` or
``random``) writes ``jobs/<target>__<candidates>.json`` atomically when it
finishes; running the grid again skips finished jobs and redoes the rest,
so a crash or a kill loses at most the jobs in flight. ``--shard I/N``
takes every N-th job, so a job array can split the grid with no overlap.
The losses table (``losses.csv``: candidate, sources, target, image, loss)
is assembled from the finished jobs, in job order, for
``python -m taskonomy_tf.taxonomy affinities``.
"""

from __future__ import annotations

import csv
import dataclasses
import json
import os
from pathlib import Path

from taskonomy_tf.tasks import get_task
from taskonomy_tf.transfer.cache import FeatureCache
from taskonomy_tf.transfer.runner import run_transfer, self_losses

SELF, RANDOM = "self", "random"


@dataclasses.dataclass(frozen=True)
class Job:
    target: str
    sources: tuple[str, ...]

    @property
    def name(self) -> str:
        return f"{self.target}__{'+'.join(self.sources)}"


def first_order_jobs(tasks: list[str], baselines: bool = True) -> list[Job]:
    """Every ordered (source, target) pair, plus ``self`` and ``random`` per target."""
    names = [get_task(t).name for t in tasks]
    jobs = []
    for target in names:
        if baselines:
            jobs += [Job(target, (SELF,)), Job(target, (RANDOM,))]
        jobs += [Job(target, (s,)) for s in names if s != target]
    return jobs


def shard(jobs: list[Job], index: int, count: int) -> list[Job]:
    """The ``index``-th of ``count`` disjoint parts (0-based), round robin."""
    if not 0 <= index < count:
        raise ValueError(f"--shard {index}/{count}: expected 0 <= I < N")
    return jobs[index::count]


def random_encoder(root: Path, image_size: int, seed: int = 0) -> Path:
    """A Gaussian-initialised, never trained encoder saved once as a workdir."""
    import keras

    from taskonomy_tf.models import build_encoder

    workdir = root / f"random-{image_size}-{seed}"
    path = workdir / "encoder.keras"
    if not path.exists():
        keras.utils.set_random_seed(seed)
        workdir.mkdir(parents=True, exist_ok=True)
        tmp = workdir / f".tmp-{os.getpid()}.keras"
        build_encoder("small", image_size).save(tmp)
        os.replace(tmp, path)
    return workdir


def run_grid(jobs: list[Job], workdirs: dict[str, str | os.PathLike], data, out: str | os.PathLike,
             image_size: int = 128, progress: bool = True, **options) -> list[Job]:
    """Runs the jobs not yet finished under ``out/jobs``; returns those it ran."""
    from tqdm import tqdm

    out = Path(out)
    (out / "jobs").mkdir(parents=True, exist_ok=True)
    cache = FeatureCache(out / "cache")
    todo = [j for j in jobs if not (out / "jobs" / f"{j.name}.json").exists()]
    for job in tqdm(todo, desc="transfers", unit="job", disable=not progress):
        if job.sources == (SELF,):
            losses = self_losses(job.target, workdirs[job.target], data, image_size)
        else:
            dirs = {s: (random_encoder(out, image_size) if s == RANDOM else workdirs[s])
                    for s in job.sources}
            losses = run_transfer(job.target, dirs, data, cache, image_size=image_size,
                                  **options).losses
        record = {"target": job.target, "sources": list(job.sources),
                  "losses": [float(v) for v in losses]}
        path = out / "jobs" / f"{job.name}.json"
        tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
        tmp.write_text(json.dumps(record))
        os.replace(tmp, path)
    return todo


def write_losses_table(jobs: list[Job], out: str | os.PathLike, split: str = "test") -> Path:
    """``losses.csv`` from the finished jobs (unfinished ones are named)."""
    out = Path(out)
    missing = [j.name for j in jobs if not (out / "jobs" / f"{j.name}.json").exists()]
    if missing:
        raise FileNotFoundError(f"{len(missing)} job(s) not finished, e.g. {missing[0]}")
    path = out / "losses.csv"
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    with open(tmp, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["candidate", "sources", "target", "image", "loss"])
        for job in jobs:
            rec = json.loads((out / "jobs" / f"{job.name}.json").read_text())
            kind = job.sources[0] if job.sources[0] in (SELF, RANDOM) else "transfer"
            sources = "+".join(job.sources)
            for i, loss in enumerate(rec["losses"]):
                w.writerow([kind, sources, job.target, f"{split}:{i}", repr(float(loss))])
    os.replace(tmp, path)
    return path
