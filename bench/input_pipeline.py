"""Input-pipeline throughput: raw record reading, decoding, and the full pipeline.

    python bench/input_pipeline.py [--views 64] [--size 512] [--image-size 256] [--repeats 3]

Writes a generated dataset at the real files' 512 px (``tfrecords_tools.fake``),
converts it, then measures in one run, as images (views) per second:
* ``raw_read``: reading the serialized records (the I/O limit);
* ``decode``: parsing and decoding rgb + depth + normals PNGs at full size;
* ``pipeline``: ``make_dataset(["normals", "depth_zbuffer"])`` at ``--image-size``
  with shuffling and augmentation, batched;
* ``pipeline_cached``: the same with ``cache=True`` (decoded examples kept in
  memory after the first epoch).
Prints JSON with the medians over ``--repeats`` and each stage's share of the
raw-read rate (``ratio_to_raw_read``).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


def rate(fn, n: int, repeats: int) -> float:
    fn()  # warm-up (tracing, page cache)
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return n / statistics.median(times)


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--views", type=int, default=128)
    p.add_argument("--size", type=int, default=512)
    p.add_argument("--image-size", type=int, default=256)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--repeats", type=int, default=5)
    a = p.parse_args()

    import tensorflow as tf

    from taskonomy_tf.data import make_dataset, schema
    from taskonomy_tf.data.records import decode_domain, feature_spec
    from tfrecords_tools.convert import convert
    from tfrecords_tools.fake import write_fake_dataset

    tmp = tempfile.mkdtemp(prefix="bench_input_")
    points = max(1, a.views // 4)
    write_fake_dataset(f"{tmp}/raw", buildings=1, points=points, views=4, size=a.size)
    convert(f"{tmp}/raw", f"{tmp}/rec", shard_size=64, progress=False)
    files = sorted(str(p) for p in __import__("pathlib").Path(f"{tmp}/rec").glob("*.tfrecord"))
    n = points * 4
    domains = ["rgb", "depth_zbuffer", "normal"]
    spec = feature_spec(domains)

    def png_of(r, d):
        dtype = tf.uint16 if schema.DOMAINS[d].bit_depth == 16 else tf.uint8
        return tf.io.decode_png(tf.io.parse_single_example(r, spec)[
            schema.DOMAINS[d].encoded_key], dtype=dtype)

    # each dataset is built (and traced) once; an epoch is one timed run
    stages = {
        "raw_read": tf.data.TFRecordDataset(files),
        "decode": tf.data.TFRecordDataset(files).map(
            lambda r: [png_of(r, d) for d in domains], num_parallel_calls=tf.data.AUTOTUNE),
        "decode_resize": tf.data.TFRecordDataset(files).map(
            lambda r: {d: decode_domain(tf.io.parse_single_example(r, spec), d, a.image_size)
                       for d in domains}, num_parallel_calls=tf.data.AUTOTUNE),
        "pipeline": make_dataset(f"{tmp}/rec", ["normals", "depth_zbuffer"], split="all",
                                 batch_size=a.batch_size, image_size=a.image_size,
                                 shuffle=True, augment=True),
        "pipeline_cached": make_dataset(f"{tmp}/rec", ["normals", "depth_zbuffer"], split="all",
                                        batch_size=a.batch_size, image_size=a.image_size,
                                        shuffle=True, augment=True, cache=True),
    }

    def epoch(ds):
        def run():
            for _ in ds:
                pass
        return run

    rates = {k: rate(epoch(ds), n, a.repeats) for k, ds in stages.items()}
    raw = rates["raw_read"]
    result = {
        "benchmark": "input_pipeline",
        "machine": f"{platform.machine()} {os.cpu_count()} cpu, {platform.python_version()}, "
                   f"tensorflow {tf.__version__}",
        "views": n, "stored_px": a.size, "image_size": a.image_size,
        "mb_per_view": round(sum(os.path.getsize(f) for f in files) / n / 1e6, 3),
        "images_per_s": {k: round(v, 1) for k, v in rates.items()},
        "baseline": "raw_read",
    }
    result["ratio_to_raw_read"] = {k: round(v / raw, 4) for k, v in result["images_per_s"].items()}
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
