"""Flat memory as the data grows: the training input at 1x and 8x the records.

    python bench/scale.py [--buildings 10] [--points 40] [--size 64] [--batches 100]

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
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
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


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--buildings", type=int, default=10)
    p.add_argument("--points", type=int, default=40)
    p.add_argument("--size", type=int, default=64, help="stored image side, px")
    p.add_argument("--batches", type=int, default=100)
    a = p.parse_args()
    from taskonomy_tf.console import quiet_tensorflow

    quiet_tensorflow()
    from tfrecords_tools.convert import convert
    from tfrecords_tools.fake import write_fake_dataset

    root = Path(tempfile.mkdtemp(prefix="bench_scale_"))
    results = {}
    for factor in (1, 8):
        raw = write_fake_dataset(root / f"raw{factor}", buildings=a.buildings * factor,
                                 points=a.points, views=3, size=a.size)
        records = root / f"rec{factor}"
        convert(str(raw), str(records), shard_size=64, workers=os.cpu_count() or 1,
                progress=False)
        out = subprocess.run([sys.executable, "-c", PROBE, str(records), str(a.batches)],
                             capture_output=True, text=True, check=True)
        results[f"{factor}x"] = {"views": a.buildings * factor * a.points * 3,
                                 **json.loads(out.stdout.strip().splitlines()[-1])}
    one, eight = results["1x"], results["8x"]
    print(json.dumps({
        "benchmark": "scale",
        "machine": f"{platform.machine()}, {os.cpu_count()} cores",
        "stream": "make_dataset(normals, 64 px, batch 32, shuffled, augmented, cache=False)",
        "sizes": results,
        "baseline": "the 1x dataset",
        "rss_ratio": round(eight["peak_rss_mb"] / one["peak_rss_mb"], 3),
        "throughput_ratio": round(eight["images_per_s"] / one["images_per_s"], 3),
    }, indent=1))


if __name__ == "__main__":
    main()
