"""The transfer stage fused (one program per target) against one job per transfer.

    python bench/fused_transfers.py --models DIR [--tasks A,B,...] [--image-size 64]
        [--steps 200] [--seeds 3] [--targets N]

On the embedded dataset and trained task networks (``--models``: a
pipeline's ``models/`` folder), runs the default grid's first-order
transfers (every other task, ``random`` and ``pixels``, each with every
replicate seed, on the whole ``val`` split) twice, sequentially, after the
codes are cached:

* **fused**: ``run_candidates`` per target: all of a target's readouts in
  one compiled program (what ``run_grid`` does);
* **separate**: the same readouts, one program per (candidate, seed), as
  one job per transfer did (the same code with one head, so the same
  losses: ``tests/transfer/test_fused.py``).

``--targets N`` times the first N targets only (the ratio per target is what
matters; the default is every target). Prints JSON: both wall times, the
ratio, and the largest difference in mean test loss between the two.
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

DEFAULT_TASKS = "edges,keypoints2d,autoencoding,depth_zbuffer,normals,reshading"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--models", required=True, help="trained workdirs DIR/<task>")
    p.add_argument("--tasks", default=DEFAULT_TASKS)
    p.add_argument("--image-size", type=int, default=64)
    p.add_argument("--steps", type=int, default=200)
    p.add_argument("--seeds", type=int, default=3)
    p.add_argument("--targets", type=int, help="time only the first N targets")
    a = p.parse_args()
    import numpy as np

    from taskonomy_tf.synth import embedded_dataset
    from taskonomy_tf.transfer import FeatureCache, first_order_candidates, replicate_seeds
    from taskonomy_tf.transfer.grid import RANDOM, random_encoder
    from taskonomy_tf.transfer.runner import run_candidates
    from taskonomy_tf.transfer.schedule import model_workdirs

    tasks = a.tasks.split(",")
    data = embedded_dataset(progress=False)
    tmp = Path(tempfile.mkdtemp(prefix="bench_fused_"))
    workdirs = model_workdirs(a.models, tasks)
    workdirs[RANDOM] = random_encoder(tmp, a.image_size)
    cache = FeatureCache(tmp / "cache")
    seeds = replicate_seeds(0, a.seeds)
    common = dict(image_size=a.image_size, n_images=None, train_split="val", steps=a.steps,
                  references=False)
    for source in [*tasks, RANDOM]:  # codes first: both variants read the same cache
        for split, limit in (("val", None), ("test", None)):
            cache.features(workdirs[source] / "encoder.keras", data, split, a.image_size, limit)
    targets = tasks[:a.targets] if a.targets else tasks

    start = time.perf_counter()
    fused = {}
    for t in targets:
        fused[t] = run_candidates(t, first_order_candidates(t, tasks), workdirs, data, cache,
                                  seeds=seeds, **common)
    fused_s = time.perf_counter() - start

    start = time.perf_counter()
    worst = 0.0
    programs = 0
    for t in targets:
        for c in first_order_candidates(t, tasks):
            for r, seed in enumerate(seeds):
                alone = run_candidates(t, [c], workdirs, data, cache, seeds=[seed],
                                       **common)[c][0]
                worst = max(worst, abs(float(alone.mean() - fused[t][c][r].mean())))
                programs += 1
    separate_s = time.perf_counter() - start
    print(json.dumps({
        "benchmark": "fused_transfers",
        "machine": f"{platform.machine()}, {os.cpu_count()} cores",
        "tasks": tasks, "targets_timed": targets, "image_size": a.image_size,
        "steps": a.steps, "replicates": a.seeds, "readouts": programs,
        "fused_wall_s": round(fused_s, 1), "baseline_separate_wall_s": round(separate_s, 1),
        "ratio": round(separate_s / fused_s, 2),
        "max_mean_loss_difference": float(np.format_float_scientific(worst, 2))},
        indent=1))


if __name__ == "__main__":
    main()
