"""Running a transfer grid: local or Ray backends, sharding, resume.

``run_grid`` is the whole grid for a list of tasks: it encodes each frozen
encoder once (the feature cache, in this process), runs one first-order
job per target, then each target's higher-order beam, and writes
``losses.csv``. Every job is idempotent (see :mod:`.grid`), so calling it
again continues where a crash or a kill left off. With a shard, it runs
only its share; a higher-order job whose target's first-order job another
shard still runs is left for the next call.

The Ray backend sends the same ``run_job`` calls to a Ray cluster (one CPU
each); the workers must see the same paths (a shared filesystem), as the
jobs write their results next to the local ones.
"""

from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path

import numpy as np

from taskonomy_tf.console import quiet_worker
from taskonomy_tf.errors import InputError
from taskonomy_tf.fileio import remove_stale_temporaries, write_json_atomic
from taskonomy_tf.models.encoders import code_stride
from taskonomy_tf.models.losses import INDEX_LABEL_LOSSES, PAIRWISE_LOSSES, SEGMENT_PIXELS
from taskonomy_tf.procs import process_pool
from taskonomy_tf.tasks import get_task
from taskonomy_tf.training.loop import is_finished
from taskonomy_tf.transfer.cache import FeatureCache, by_input_rule
from taskonomy_tf.transfer.grid import (
    RANDOM,
    Job,
    first_order_jobs,
    grid_key,
    job_done,
    random_encoder,
    run_job,
    shard,
    targets_of,
    write_losses_table,
)
from taskonomy_tf.transfer.memory import memory_budget
from taskonomy_tf.transfer.readout import fc_parameters
from taskonomy_tf.transfer.scoring import uses_points

BACKENDS = ("local", "ray")


@dataclasses.dataclass
class GridResult:
    """What one call ran, and the table when the whole grid is finished."""

    ran: list[Job]
    pending: int  # jobs of the grid not finished (other shards, later orders)
    table: Path | None


def model_workdirs(models: str | os.PathLike, tasks: list[str]) -> dict[str, Path]:
    """task -> ``models/<task>`` (a training workdir), checked.

    Raises:
        FileNotFoundError: a task without ``encoder.keras`` or ``model.keras``.
    """
    dirs = {}
    for task in (get_task(t).name for t in tasks):
        d = Path(models) / task
        if (d / "backup").exists() and not is_finished(d):
            raise FileNotFoundError(f"{d}: the training of {task!r} is unfinished (resume it "
                                    f"with python -m taskonomy_tf.train --task={task} "
                                    f"--workdir={d} --resume)")
        for f in ("encoder.keras", "model.keras"):
            if not (d / f).exists():
                raise FileNotFoundError(f"{d / f}: no trained network for {task!r} "
                                        f"(train it with python -m taskonomy_tf.train "
                                        f"--task={task} --workdir={d})")
        dirs[task] = d
    return dirs


def tasks_with_networks(tasks: list[str], data, models, splits) -> list[str]:
    """``--tasks all`` (or any names ``data.available.expand`` reads): the
    tasks the records in ``data`` supply on every split of ``splits`` and
    ``models`` holds a finished network of, in catalog order; prints a line
    per skipped task."""
    from taskonomy_tf.data.available import available_tasks

    kept, skipped = available_tasks(data, tasks, tuple(dict.fromkeys(splits)))
    for name in list(kept):
        if not is_finished(Path(models) / name):
            kept.remove(name)
            skipped[name] = f"no finished network in {Path(models) / name}"
    for name, why in skipped.items():
        print(f"skipped {name}: {why}")
    return kept


def prefilter_sources(estimate, k: int, complete: bool = False) -> dict[str, list[str]]:
    """target -> the ``k`` first-order sources an estimate table (a
    ``TransferTable`` of cheap scores) ranks first, ties by name: what
    ``transfers.prefilter=K`` trains beside the baselines. With ``complete``
    (``transfers.complete``) and an estimate that holds a tournament (the
    readout's), a target outside the tournament is left out, so it trains
    every source: its row could not be completed from the estimate, and a
    row with only some sources leaves the program unable to serve that
    target from the others (docs/estimators.md)."""
    tournament = estimate.meta.get("tournament") if complete else None
    keep = {}
    for target in estimate.targets:
        if tournament and target not in tournament:
            continue
        ranked = sorted((r for r in estimate.for_target(target) if r.order == 1),
                        key=lambda r: (-r.value, r.sources))
        keep[target] = [r.sources[0] for r in ranked][:k]
    return keep


def transfer_split(data, wanted: str) -> str:
    """The split transfer images come from: ``wanted`` (the paper's ``val``:
    images the task networks never saw) where the data has it, else
    ``train``."""
    return wanted if any(Path(data).glob(f"{wanted}-*.tfrecord")) else "train"


def model_image_size(workdir: str | os.PathLike) -> int:
    """The input side a trained network was built for (its ``config.json``)."""
    return int(json.loads((Path(workdir) / "config.json").read_text())["image_size"])


def model_architecture(workdir: str | os.PathLike) -> str:
    """The encoder architecture of a trained network (its ``config.json``)."""
    return str(json.loads((Path(workdir) / "config.json").read_text()).get("encoder", "small"))


def run_jobs(jobs: list[Job], tasks: list[str], workdirs: dict, data, out,
             backend: str = "local", progress: bool = True, ray_address: str | None = None,
             workers: int = 1, **options) -> list[Job]:
    """Runs the jobs not finished under ``out/jobs``; returns those it ran.

    Args:
        workers: local processes running jobs side by side (``local`` only),
            each with ``cores / workers`` threads.
        options: for :func:`~taskonomy_tf.transfer.grid.run_job`.
    """
    from tqdm import tqdm

    todo = [j for j in jobs if not job_done(out, j, options.get("key"), options.get("beam"),
                                            options.get("score"))]
    if not todo:
        return []
    options = {"tasks": list(tasks), **options}
    if backend == "ray" or workers > 1:  # side by side: the longest first, the tail short
        todo = longest_first(todo, options["image_size"])
    if backend == "local" and workers > 1:
        _run_pool(todo, workdirs, data, out, progress, workers, options)
    elif backend == "local":
        for job in tqdm(todo, desc="transfers", unit="target", disable=not progress):
            run_job(job, workdirs=workdirs, data=data, out=out, **options)
    elif backend == "ray":
        _run_ray(todo, workdirs, data, out, progress, ray_address, options)
    else:
        raise InputError(f"backend {backend!r}: expected one of {', '.join(BACKENDS)}")
    return todo


# A first-order job's time on the CPU-sized whole graph (docs/performance.md,
# December 5: 64 px, 24 sources and 2 baselines x 3 seeds, 150 steps of 16,
# two jobs side by side on a 2-core x86_64 machine), least squares without
# negative terms over its 22 jobs (the 11 fully connected, multi-view and
# segmentation jobs of that day's first attempt, the 11 dense ones of the
# run before, whose code had not changed): seconds per code cell of each
# view (the readout's convolutions run once per view), per regression-map
# value and per class-map value of one label, per sampled pixel pair of a
# pairwise loss, per fully connected weight of a head. It orders those jobs
# at Spearman 0.86 and the 30.7-minute rerun's, which it scheduled, at 0.85;
# in both the seven longest (180-331 s) first.
COST_PER_VIEW_CELL = 83.1 / 256  # 16 x 16 cells at 64 px
COST_PER_MAP_VALUE = 16.26e-4
COST_PER_CLASS_VALUE = 31.02e-4
COST_PER_PAIR = 26.0e-4
COST_PER_FC_WEIGHT = 26.81e-6


def job_seconds(target: str, image_size: int) -> float:
    """A first-order readout job's estimated time (seconds on the machine
    above; only the ratios between targets matter): from the target's views,
    label shape, loss and head size (``COST_*``)."""
    spec = get_task(target)
    cells = (image_size // code_stride(image_size)) ** 2
    seconds = (COST_PER_VIEW_CELL * spec.views * cells
               + COST_PER_FC_WEIGHT * fc_parameters(spec, image_size))
    if uses_points(spec):  # predicted at its sampled pixels, not as a map
        return seconds + COST_PER_PAIR * SEGMENT_PIXELS ** 2 * (spec.loss in PAIRWISE_LOSSES)
    if spec.is_dense:
        per_value = COST_PER_CLASS_VALUE if spec.loss in INDEX_LABEL_LOSSES else COST_PER_MAP_VALUE
        seconds += per_value * int(np.prod(spec.output_shape(image_size)))
    return seconds


def longest_first(jobs: list[Job], image_size: int) -> list[Job]:
    """``jobs``, the longest first by ``job_seconds`` (ties in their order),
    so that workers running side by side do not end on one long job while
    the others sit idle; the short ones fill the tail."""
    return sorted(jobs, key=lambda j: -job_seconds(j.target, image_size))


def _run_pool(todo, workdirs, data, out, progress, workers, options):
    from concurrent.futures import as_completed

    from tqdm import tqdm

    threads = max(1, (os.cpu_count() or 1) // workers)
    if options.get("budget_bytes") is None:  # jobs side by side share the memory
        options = {**options, "budget_bytes": memory_budget(workers)}
    # a fresh worker per job: a worker that kept its earlier jobs' memory (up to
    # 14 GB after egomotion and a segmentation, docs/performance.md) was killed
    # for memory beside another on a 24 GB machine; each a fork of a server
    # that imported the job's modules once
    with process_pool(workers, initializer=quiet_worker, initargs=(threads,),
                      fresh=True, preload=("taskonomy_tf.transfer.preload",)) as pool:
        futures = [pool.submit(run_job, j, workdirs=workdirs, data=data, out=out, **options)
                   for j in todo]
        for f in tqdm(as_completed(futures), total=len(futures), desc="transfers",
                      unit="target", disable=not progress):
            f.result()  # re-raises a job's error here


def _run_ray(todo, workdirs, data, out, progress, address, options):
    try:
        import ray
    except ImportError as e:
        raise InputError("--backend ray needs Ray: pip install 'taskonomy_tf[ray]'") from e
    from tqdm import tqdm

    started = not ray.is_initialized()
    if started:
        ray.init(address=address, include_dashboard=False, log_to_driver=False,
                 configure_logging=False)
    pending = []
    if options.get("budget_bytes") is None:  # jobs side by side on a node share its memory
        options = {**options, "budget_bytes": ray_job_budget(ray.nodes())}
    try:
        # max_calls=1: a worker process per job, as the local pool's (fresh)
        remote = ray.remote(num_cpus=1, max_retries=0, max_calls=1)(run_job)
        pending = [remote.remote(j, workdirs={k: str(v) for k, v in workdirs.items()},
                                 data=str(data), out=str(out), **options) for j in todo]
        with tqdm(total=len(pending), desc="transfers (ray)", unit="target",
                  disable=not progress) as bar:
            while pending:
                done, pending = ray.wait(pending, num_returns=1)
                ray.get(done)  # re-raises a job's error here
                bar.update(len(done))
    except BaseException:  # stopped, or a job failed: the other jobs stop too
        for ref in pending:
            ray.cancel(ref, force=True)
        raise
    finally:
        if started:
            ray.shutdown()


def ray_job_budget(nodes: list[dict]) -> int | None:
    """Bytes one Ray job may use: as in the process pool, half of a node's
    memory shared by the jobs it runs side by side (one per CPU: jobs ask for
    ``num_cpus=1``), on the node where that is least (``nodes``: ``ray.nodes()``,
    whose ``memory`` resource is what Ray lets tasks use). ``None`` when no
    live node reports memory and CPUs."""
    shares = [n["Resources"]["memory"] / (2 * n["Resources"]["CPU"]) for n in nodes
              if n.get("Alive") and n.get("Resources", {}).get("memory")
              and n["Resources"].get("CPU")]
    return int(min(shares)) if shares else None


# settings that only add jobs to a grid: a finished job stays valid when they change
EXTENSIBLE = ("max_order", "beam")


def _settings(out: Path, settings: dict) -> None:
    """Records the grid's settings; refuses to mix results of other settings
    (raising ``max_order`` or widening the beam only adds jobs, and is allowed)."""
    path = out / "grid.json"
    if path.exists():
        old = json.loads(path.read_text())
        diff = sorted(k for k in set(old) | set(settings)
                      if k not in EXTENSIBLE and old.get(k) != settings.get(k))
        if diff:
            raise InputError(f"{out}: holds a grid with other settings ({', '.join(diff)}); "
                             f"use another --out")
        if old == settings:
            return
    out.mkdir(parents=True, exist_ok=True)
    write_json_atomic(path, settings)


def _prefilter_report(tasks: list[str], keep: dict[str, list[str]], out: Path) -> None:
    names = [get_task(t).name for t in tasks]
    report = {t: {"kept": list(keep[t]),
                  "skipped": [s for s in names if s != t and s not in keep[t]]} for t in keep}
    write_json_atomic(out / "prefilter.json", report)


def run_grid(tasks: list[str], models, data, out, max_order: int = 1, n_images: int = 1000,
             steps: int = 200, batch_size: int = 16, learning_rate: float = 1e-2,
             image_size: int | None = None, seeds=(0,),
             shard_spec: tuple[int, int] | None = None, backend: str = "local",
             ray_address: str | None = None, workers: int = 1,
             beam: dict[int, int] | None = None, score=None,
             prefilter: dict[str, list[str]] | None = None,
             train_split: str = "train", test_split: str = "test", progress: bool = True,
             sources: dict[str, str] | None = None, oracle: bool = False) -> GridResult:
    """First-order jobs over ``tasks`` (trained under ``models/<task>``), then
    each target's higher-order beam up to ``max_order``; ``losses.csv`` once
    all is done.

    Args:
        seeds: one per readout replicate (``runner.replicate_seeds``).
        shard_spec: (I, N) to run only the I-th of N parts of each order.
        score: ranks first-order sources for the beam (see ``grid.rank_sources``).
        prefilter: target -> the sources worth training (e.g. an estimator's
            top K); other first-order transfers into that target are skipped
            (the baselines always run) and listed in ``prefilter.json``.
        sources: your own encoders, {name: FILE.keras} (``transfer.sources``):
            first-order sources of every target beside the task networks.
        oracle: also train label-oracle readouts (``oracle:<task>``: a task's
            true labels in place of its network's code; ``grid.oracle_sources``),
            scored beside the others but never in the affinities.
    """
    from tqdm import tqdm

    out = Path(out)
    tasks = [get_task(t).name for t in tasks]
    if len(tasks) < 2:
        raise InputError(f"--tasks: a grid needs at least 2 tasks, got {tasks}")
    workdirs = model_workdirs(models, tasks)
    image_size = image_size or model_image_size(workdirs[tasks[0]])
    architecture = model_architecture(workdirs[tasks[0]])
    seeds = [int(s) for s in seeds]
    options = dict(image_size=image_size, n_images=n_images, steps=steps,
                   batch_size=batch_size, learning_rate=learning_rate,
                   train_split=train_split, test_split=test_split)
    settings = {"tasks": tasks, "max_order": max_order, "beam": beam, "seeds": seeds,
                "architecture": architecture, **options,
                **({"prefilter": prefilter} if prefilter else {}),
                **({"sources": sorted(sources)} if sources else {}),
                **({"oracle": True} if oracle else {})}
    _settings(out, settings)
    for folder in (out, out / "jobs", out / "cache"):
        remove_stale_temporaries(folder)  # a killed run's half-written files
    if prefilter:
        _prefilter_report(tasks, prefilter, out)
    workdirs[RANDOM] = random_encoder(out, image_size, seeds[0], architecture)
    if sources:
        from taskonomy_tf.transfer.sources import user_sources

        workdirs.update(user_sources(sources, data, train_split, image_size, out / "sources"))
    # finished jobs of other data, networks, settings or code are stale: redone
    key = grid_key(workdirs, data, (train_split, test_split),
                   {k: v for k, v in settings.items() if k not in EXTENSIBLE})

    def part(jobs):
        return shard(jobs, *shard_spec) if shard_spec else jobs

    first = first_order_jobs(tasks)
    mine = part(first)
    cache = FeatureCache(out / "cache")
    if any(not job_done(out, j, key) for j in mine):
        encoders = [workdirs[s] / "encoder.keras" for s in [*tasks, *(sources or {}), RANDOM]]
        with tqdm(total=len(encoders), desc="encode", unit="encoder",
                  disable=not progress) as bar:
            for group in by_input_rule(encoders).values():  # one pass over a split per rule
                cache.features_many(group, data, train_split, image_size, n_images)
                cache.features_many(group, data, test_split, image_size)
                bar.update(len(group))
    run = dict(backend=backend, progress=progress, ray_address=ray_address, workers=workers,
               seeds=seeds, beam=beam, score=score, prefilter=prefilter, key=key,
               sources=sorted(sources or {}), oracle=oracle, **options)
    ran = run_jobs(mine, tasks, workdirs, data, out, **run)
    higher = [Job(t, k) for k in range(2, min(max_order, len(tasks) - 1) + 1)
              for t in targets_of(tasks)]
    ready = [j for j in part(higher) if job_done(out, Job(j.target, 1), key)]
    ran += run_jobs(ready, tasks, workdirs, data, out, **run)
    jobs = first + higher
    pending = sum(not job_done(out, j, key, beam, score) for j in jobs)
    table = write_losses_table(jobs, out, key, beam, score) if pending == 0 else None
    return GridResult(ran, pending, table)
