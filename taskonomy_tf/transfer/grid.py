"""A grid of transfers as idempotent jobs, and the losses table.

Each job (one target and one candidate: a source set, or the ``self``,
``pixels`` or ``random`` baseline) writes ``jobs/<target>__<sources>.json``
atomically when it finishes, and ``grid.log`` gets a ``finished`` line;
running the grid again skips finished jobs and redoes the rest, so a crash
or a kill loses at most the jobs in flight. ``--shard I/N`` takes every
N-th job, so a job array can split the grid with no overlap. Higher orders
come from a beam over the first-order results (:func:`beam_jobs`), so they
can be listed only once every first-order job of their target is done. The
losses table (``losses.csv``: candidate, sources, target, image, loss) is
assembled from the finished jobs, in job order, for
``python -m taskonomy_tf.taxonomy affinities``.
"""

from __future__ import annotations

import csv
import dataclasses
import itertools
import json
import os
import time
from pathlib import Path

import numpy as np

from taskonomy_tf.tasks import get_task
from tfrecords_tools.writer import write_json_atomic

SELF, PIXELS, RANDOM = "self", "pixels", "random"
BASELINES = (SELF, PIXELS, RANDOM)
# Beam widths per order, from the released 16k data (reference section 4):
# orders 2 and 3 combine the top 5 first-order sources, order 4 the top 6;
# every order above gets one candidate, the top-k sources.
BEAM = {2: 5, 3: 5, 4: 6}


@dataclasses.dataclass(frozen=True)
class Job:
    target: str
    sources: tuple[str, ...]

    @property
    def name(self) -> str:
        return f"{self.target}__{'+'.join(self.sources)}"

    @property
    def kind(self) -> str:
        """``transfer`` or the baseline's name (the losses table's candidate column)."""
        return self.sources[0] if self.sources[0] in BASELINES else "transfer"


def first_order_jobs(tasks: list[str], baselines: bool = True) -> list[Job]:
    """Every ordered (source, target) pair, plus the three baselines per target."""
    names = [get_task(t).name for t in tasks]
    jobs = []
    for target in names:
        if baselines:
            jobs += [Job(target, (b,)) for b in BASELINES]
        jobs += [Job(target, (s,)) for s in names if s != target]
    return jobs


def tournament_scores(losses: np.ndarray) -> np.ndarray:
    """Each candidate's mean win rate over the others, (n,) from (n, images)
    losses (a win is a lower loss on an image; ties count half)."""
    a, b = losses[:, None, :], losses[None, :, :]
    w = (a < b).mean(-1) + 0.5 * (a == b).mean(-1)
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


def beam_jobs(target: str, ranked: list[str], max_order: int, beam: dict[int, int] | None = None
              ) -> list[Job]:
    """Higher-order candidates for ``target`` from its ranked first-order sources.

    Order k <= max(beam): every k-subset of the top ``beam[k]``; above that,
    one candidate (the top k). Sources are kept in rank order.
    """
    beam = BEAM if beam is None else beam
    jobs = []
    for k in range(2, min(max_order, len(ranked)) + 1):
        if k in beam:
            jobs += [Job(target, c) for c in itertools.combinations(ranked[:beam[k]], k)]
        else:
            jobs.append(Job(target, tuple(ranked[:k])))
    return jobs


def higher_order_jobs(tasks: list[str], out, max_order: int, beam=None, score=None,
                      prefilter: dict[str, list[str]] | None = None) -> list[Job]:
    """Beam jobs of every target whose first-order jobs are all finished.

    Raises:
        FileNotFoundError: some first-order job is not finished (named).
    """
    jobs, pairs = [], first_order_jobs(tasks, baselines=False)
    for target in (get_task(t).name for t in tasks):
        firsts = [j for j in pairs if j.target == target]
        if prefilter and target in prefilter:
            firsts = [j for j in firsts if j.sources[0] in prefilter[target]]
        missing = [j.name for j in firsts if not job_path(out, j).exists()]
        if missing:
            raise FileNotFoundError(f"higher orders need every first-order job; "
                                    f"{len(missing)} not finished, e.g. {missing[0]}")
        losses = {j.sources[0]: np.array(read_job(out, j)["losses"]) for j in firsts}
        jobs += beam_jobs(target, rank_sources(losses, score), max_order, beam)
    return jobs


def shard(jobs: list[Job], index: int, count: int) -> list[Job]:
    """The ``index``-th of ``count`` disjoint parts (0-based), round robin."""
    if not 0 <= index < count:
        raise ValueError(f"--shard {index}/{count}: expected 0 <= I < N")
    return jobs[index::count]


def job_path(out, job: Job) -> Path:
    return Path(out) / "jobs" / f"{job.name}.json"


def read_job(out, job: Job) -> dict:
    return json.loads(job_path(out, job).read_text())


def random_encoder(root: Path, image_size: int, seed: int = 0) -> Path:
    """A Gaussian-initialised, never trained encoder saved once as a workdir."""
    import keras

    from taskonomy_tf.models import build_encoder

    workdir = Path(root) / f"random-{image_size}-{seed}"
    path = workdir / "encoder.keras"
    if not path.exists():
        keras.utils.set_random_seed(seed)
        workdir.mkdir(parents=True, exist_ok=True)
        tmp = workdir / f".tmp-{os.getpid()}.keras"
        build_encoder("small", image_size).save(tmp)
        os.replace(tmp, path)
    return workdir


def _log(out, line: str) -> None:
    with open(Path(out) / "grid.log", "a") as f:
        f.write(f"{time.strftime('%Y-%m-%dT%H:%M:%S')} {os.getpid()} {line}\n")


def run_job(job: Job, workdirs: dict, data, out, image_size: int = 128, **options) -> str:
    """Runs one job and writes its result atomically; returns its name.

    ``workdirs`` maps task names to trained networks' workdirs (and
    ``random`` to :func:`random_encoder`'s); ``options`` go to
    :func:`~taskonomy_tf.transfer.run_transfer`.
    """
    from taskonomy_tf.transfer.cache import FeatureCache
    from taskonomy_tf.transfer.runner import pixels_transfer, run_transfer, self_losses

    job_path(out, job).parent.mkdir(parents=True, exist_ok=True)
    _log(out, f"started {job.name}")
    start = time.perf_counter()
    if job.kind == SELF:
        losses = self_losses(job.target, workdirs[job.target], data, image_size,
                             options.get("test_split", "test"))
    elif job.kind == PIXELS:
        losses = pixels_transfer(job.target, data, image_size, **options).losses
    else:
        dirs = {s: workdirs[s] for s in job.sources}
        losses = run_transfer(job.target, dirs, data, FeatureCache(Path(out) / "cache"),
                              image_size=image_size, **options).losses
    record = {"target": job.target, "sources": list(job.sources), "kind": job.kind,
              "seconds": round(time.perf_counter() - start, 3),
              "losses": [float(v) for v in losses]}
    write_json_atomic(job_path(out, job), record)
    _log(out, f"finished {job.name}")
    return job.name


def write_losses_table(jobs: list[Job], out: str | os.PathLike, split: str = "test") -> Path:
    """``losses.csv`` from the finished jobs (unfinished ones are named)."""
    out = Path(out)
    missing = [j.name for j in jobs if not job_path(out, j).exists()]
    if missing:
        raise FileNotFoundError(f"{len(missing)} job(s) not finished, e.g. {missing[0]}")
    path = out / "losses.csv"
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    with open(tmp, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["candidate", "sources", "target", "image", "loss"])
        for job in jobs:
            sources = "+".join(job.sources)
            for i, loss in enumerate(read_job(out, job)["losses"]):
                w.writerow([job.kind, sources, job.target, f"{split}:{i}", repr(float(loss))])
    os.replace(tmp, path)
    return path
