"""Flat memory as the data grows: the training input at 1x and 8x the records,
and the view-tuple index at 1/8 and all of ``--index-views`` simulated views.

    python bench/scale.py [--buildings 10] [--points 40] [--size 64] [--batches 100]
                          [--index-views 4000000]

Writes a generated dataset (``tfrecords_tools.fake``: ``--buildings`` x
``--points`` x 3 views, and 8 times the buildings), converts both, then, in
a fresh process per size, runs the training stream the way
``train_and_evaluate`` builds it for data that does not fit in memory
(``make_dataset(..., cache=False)``: shuffled, augmented, repeated; task
normals at 64 px, batch 32) for ``--batches`` batches after a warm-up, and
reports its images per second and the process's peak resident memory. The
1x dataset (1,200 views by default) is already larger than the stream's
shuffle buffer (1,024 examples), so that what is measured is the growth
with the data, not the buffer filling up.
Prints JSON with both sizes and ``rss_ratio`` (8x over 1x; goal <= 1.2: the
stream's memory does not grow with the data) and ``throughput_ratio`` (goal
>= 0.8).

The view-tuple part writes simulated view indexes (``<shard>.views.json``
beside an empty shard file, as the converter writes them: shards of 999
views, points of 3 views with random cameras) and, in a fresh process per
size, makes the two passes a pose task makes over its data before the first
image is read: the training split's label statistics (``training_stats``)
and every shard's tuples and ids (``views.tuple_index``, iterated to the
end). It reports seconds, tuples and peak resident memory, and
``index_rss_ratio`` (all over 1/8; flat when near 1).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

PROBE = """
import json, resource, sys, time
from taskonomy_tf.console import quiet_tensorflow
quiet_tensorflow()
from taskonomy_tf.data import make_dataset
ds = make_dataset(sys.argv[1], "normals", split="all", batch_size=32, image_size=64,
                  shuffle=True, repeat=True, cache=False, seed=0)
it = iter(ds)
for _ in range(5):  # warm-up: tracing, file handles, page cache
    next(it)
n = int(sys.argv[2])
start = time.perf_counter()
for _ in range(n):
    next(it)
seconds = time.perf_counter() - start
print(json.dumps({"images_per_s": round(32 * n / seconds, 1),
                  "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
                                       / 1024, 1)}))
"""

INDEX_PROBE = """
import json, resource, sys, time
from taskonomy_tf.console import quiet_tensorflow
quiet_tensorflow()
from taskonomy_tf.data import views
from taskonomy_tf.data.records import find_shards
from taskonomy_tf.tasks import get_task
spec = get_task("fixated_pose")
files = find_shards(sys.argv[1], "train")
start = time.perf_counter()
stats = views.training_stats(sys.argv[1], spec)
mid = time.perf_counter()
tuples = 0
for _, idx, _, _, _ in views.tuple_index(files, spec, 0, True, stats, parallel=2):
    tuples += len(idx)
end = time.perf_counter()
print(json.dumps({"shards": len(files), "tuples": tuples,
                  "stats_s": round(mid - start, 1), "tuples_s": round(end - mid, 1),
                  "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
                                       / 1024, 1)}))
"""


def write_simulated_index(folder: Path, views: int, per_shard: int = 999, seed: int = 0):
    """Empty shards with view indexes for ``views`` views (points of 3 views)."""
    import numpy as np

    from taskonomy_tf.data import schema, view_index

    folder.mkdir(parents=True)
    rng = np.random.default_rng(seed)
    count = -(-views // per_shard)
    for n in range(count):
        name = folder / schema.shard_name("train", n, count)
        name.touch()
        m = min(per_shard, views - n * per_shard)
        loc = rng.uniform(-5, 5, (m, 3)).round(4).tolist()
        rot = rng.uniform(-np.pi, np.pi, (m, 3)).round(4).tolist()
        entries = [view_index.index_entry(
            f"b{n // 50}", (n * per_shard + k) // 3, k % 3,
            json.dumps({"camera_location": loc[k], "camera_rotation_final": rot[k],
                        "nonfixated_points_in_view": [(n * per_shard + k) // 3 + 1]}))
            for k in range(m)]
        view_index.write_index(name, entries)


def index_part(root: Path, views: int) -> dict:
    results = {}
    for n in (views // 8, views):
        folder = root / f"index{n}"
        start = time.perf_counter()
        write_simulated_index(folder, n)
        written = time.perf_counter() - start
        out = subprocess.run([sys.executable, "-c", INDEX_PROBE, str(folder)],
                             capture_output=True, text=True, check=True)
        results[f"{n} views"] = {"write_s": round(written, 1),
                                 **json.loads(out.stdout.strip().splitlines()[-1])}
        shutil.rmtree(folder)
    small, big = results.values()
    return {"task": "fixated_pose (ordered pairs of views of one point)",
            "sizes": results, "baseline": f"{views // 8} views",
            "index_rss_ratio": round(big["peak_rss_mb"] / small["peak_rss_mb"], 3),
            "seconds_per_million_views": round(
                (big["stats_s"] + big["tuples_s"]) / views * 1e6, 1)}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--buildings", type=int, default=10)
    p.add_argument("--points", type=int, default=40)
    p.add_argument("--size", type=int, default=64, help="stored image side, px")
    p.add_argument("--batches", type=int, default=100)
    p.add_argument("--index-views", type=int, default=4_000_000,
                   help="simulated views for the view-tuple index (0: skip that part)")
    p.add_argument("--skip-stream", action="store_true", help="only the view-tuple part")
    a = p.parse_args()
    from taskonomy_tf.console import quiet_tensorflow

    quiet_tensorflow()
    from tfrecords_tools.convert import convert
    from tfrecords_tools.fake import write_fake_dataset

    root = Path(tempfile.mkdtemp(prefix="bench_scale_"))
    results = {}
    for factor in (() if a.skip_stream else (1, 8)):
        raw = write_fake_dataset(root / f"raw{factor}", buildings=a.buildings * factor,
                                 points=a.points, views=3, size=a.size)
        records = root / f"rec{factor}"
        convert(str(raw), str(records), shard_size=64, workers=os.cpu_count() or 1,
                progress=False)
        out = subprocess.run([sys.executable, "-c", PROBE, str(records), str(a.batches)],
                             capture_output=True, text=True, check=True)
        results[f"{factor}x"] = {"views": a.buildings * factor * a.points * 3,
                                 **json.loads(out.stdout.strip().splitlines()[-1])}
    report = {"benchmark": "scale", "machine": f"{platform.machine()}, {os.cpu_count()} cores"}
    if results:
        one, eight = results["1x"], results["8x"]
        report.update({
            "stream": "make_dataset(normals, 64 px, batch 32, shuffled, augmented, cache=False)",
            "sizes": results,
            "baseline": "the 1x dataset",
            "rss_ratio": round(eight["peak_rss_mb"] / one["peak_rss_mb"], 3),
            "throughput_ratio": round(eight["images_per_s"] / one["images_per_s"], 3),
        })
    if a.index_views:
        report["view_tuple_index"] = index_part(root, a.index_views)
    shutil.rmtree(root)
    print(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
