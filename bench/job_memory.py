"""A readout job's memory: the dry run's estimate against the measured peak.

    python bench/job_memory.py [--config experiments/embedded_whole_graph.py]
        [--target NAME] [--steps 10] [--train-steps 20]

Takes the experiment's largest first-order job by the estimate
(``transfer.memory.experiment_plan``, or ``--target``) and runs it for real
with ``run_candidates`` on the experiment's data: the target's own network
(trained ``--train-steps``, for the ``self`` reference), every other task's
source as an untrained encoder of the same architecture (a source's weights
do not change its memory), the baselines, every replicate, under the default
budget. ``--steps`` readout steps: a program's memory is reached at its
first step, so a short run measures the full one's peak.

Prints JSON: the estimate (GiB: the prior phase, the arrays, per head, the
programs, the peak), the process's resident peak during the job
(``VmHWM``) and before it, their growth, and the ratio of the estimated peak
to the measured growth.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

GB = 2**30


def status(key: str) -> int:
    """A /proc/self/status memory figure, bytes."""
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) * 1024 for line in f if line.startswith(key))


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--config", default="experiments/embedded_whole_graph.py")
    p.add_argument("--target")
    p.add_argument("--steps", type=int, default=10)
    p.add_argument("--train-steps", type=int, default=20)
    a = p.parse_args()

    from taskonomy_tf.config import load_config, override
    from taskonomy_tf.data.available import expand
    from taskonomy_tf.synth import embedded_dataset
    from taskonomy_tf.training import TrainConfig, train_and_evaluate
    from taskonomy_tf.transfer import FeatureCache, run_candidates
    from taskonomy_tf.transfer.grid import RANDOM, first_order_candidates, random_encoder
    from taskonomy_tf.transfer.memory import experiment_plan, memory_budget
    from taskonomy_tf.transfer.runner import replicate_seeds
    from taskonomy_tf.transfer.schedule import transfer_split

    exp = load_config(a.config)
    data = exp.data.path or str(embedded_dataset())
    exp = override(exp, [f"data.path={data}"])
    plan = experiment_plan(exp)
    job = next(j for j in plan["jobs"] if a.target in (None, j["target"]))
    target, size, t = job["target"], exp.data.image_size, exp.transfers
    tasks = expand(exp.tasks)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        workdirs = {}
        train_and_evaluate(TrainConfig.of(target, data, image_size=size,
                                          steps=a.train_steps, verbose=0),
                           tmp / target)
        workdirs[target] = tmp / target
        for i, task in enumerate(tasks):
            if task != target:
                workdirs[task] = random_encoder(tmp / "sources", size, seed=100 + i,
                                                architecture=exp.networks.encoder)
        workdirs[RANDOM] = random_encoder(tmp, size, architecture=exp.networks.encoder)
        candidates = first_order_candidates(target, tasks)
        split = transfer_split(data, t.split)
        cache = FeatureCache(tmp / "cache")
        for name, workdir in workdirs.items():  # the codes first: the grid caches them too
            if name != target:
                cache.features(Path(workdir) / "encoder.keras", data, split, size, t.images)
                cache.features(Path(workdir) / "encoder.keras", data, "test", size, None)
        before = status("VmRSS")
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")  # the resident peak from here
        start = time.perf_counter()
        run_candidates(target, candidates, workdirs, data, cache, image_size=size,
                       n_images=t.images or 10**9, train_split=split, steps=a.steps,
                       batch_size=t.batch_size, learning_rate=t.learning_rate,
                       seeds=replicate_seeds(exp.seed, t.seeds),
                       budget_bytes=memory_budget(t.workers))
        seconds = time.perf_counter() - start
        peak = status("VmHWM")
    grew = peak - before
    print(json.dumps({
        "experiment": exp.name, "target": target, "estimate_gib": job,
        "budget_gib": plan["budget_gib"], "rss_before_gib": round(before / GB, 3),
        "rss_peak_gib": round(peak / GB, 3), "grew_gib": round(grew / GB, 3),
        "ratio_estimate_to_growth": round(job["peak"] * GB / grew, 2),
        "seconds": round(seconds, 1), "readout_steps": a.steps,
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs"}, indent=1))


if __name__ == "__main__":
    main()
