"""What the feature cache saves: a first-order transfer grid with and without it.

    python bench/transfer_cache.py [--tasks edges,normals,depth_zbuffer,reshading]
        [--image-size 64] [--train-steps 60] [--transfer-images 500] [--steps 150]
        [--models DIR | --untrained ENCODER]

On the embedded dataset: trains (or reuses, ``--models``) one small network per
task, or saves untrained encoders of another architecture (``--untrained
resnet50``: the paper's encoder; its weights do not change its speed), then times the same
first-order transfer jobs (every ordered pair)
twice, sequentially:

* **cached**: ``run_grid``'s way: each frozen encoder encodes the transfer and
  test images once, every readout trains on the stored codes;
* **uncached**: each job puts its frozen encoder in front of the readout and
  runs it on every training batch and on the test images (what one does
  without a cache; the images are decoded once and held in memory, so the
  difference is the encoders' work alone).

Prints JSON: both wall times, the ratio, and the per-job medians.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras
import numpy as np


def train_models(tasks, data, root: Path, size: int, steps: int) -> Path:
    from taskonomy_tf.training import TrainConfig, train_and_evaluate

    for t in tasks:
        train_and_evaluate(TrainConfig.of(task=t, data=str(data), image_size=size, steps=steps,
                                       verbose=0), root / t, resume=True)
    return root


def untrained_models(tasks, root: Path, encoder: str, size: int) -> Path:
    from taskonomy_tf.models import build_encoder

    for k, t in enumerate(tasks):
        keras.utils.set_random_seed(k)
        (root / t).mkdir(parents=True)
        build_encoder(encoder, size).save(root / t / "encoder.keras")
    return root


def uncached_job(target, source_dir, data, size, n_images, steps, batch):
    """One transfer with the frozen encoder in the loop; per-image test losses."""
    import tensorflow as tf

    from taskonomy_tf.data import make_dataset
    from taskonomy_tf.models.constant import best_constant
    from taskonomy_tf.models.losses import TaskLoss
    from taskonomy_tf.tasks import get_task
    from taskonomy_tf.training.evaluate import per_image_losses, split_arrays
    from taskonomy_tf.transfer.readout import build_readouts, plan_heads

    spec = get_task(target)

    def arrays(split, limit=None):
        ds = make_dataset(data, spec.name, split=split, batch_size=64, image_size=size,
                          shuffle=False, augment=False)
        return split_arrays(ds, spec.name, limit, images=True)

    y, w, x = arrays("val", n_images)
    y_t, w_t, x_t = arrays("test")
    encoder = keras.saving.load_model(Path(source_dir) / "encoder.keras", safe_mode=True,
                                      compile=False)
    encoder.trainable = False
    readout = build_readouts(spec, plan_heads([("source",)], [0]), ["source"], size,
                             best_constant(spec.loss, y, w, spec.channels))
    image = keras.Input((size, size, 3))
    code = encoder(image, training=False)
    codes = keras.layers.Reshape((1, 1, *code.shape[1:]))(code)
    out = keras.layers.Reshape(readout.output.shape[1:-2] + (spec.channels,))(
        readout({"codes": codes}))  # the one head
    model = keras.Model(image, {spec.name: out})
    ds = (tf.data.Dataset.from_tensor_slices((x, {spec.name: y}, {spec.name: w}))
          .shuffle(len(x), seed=0).repeat().batch(batch, drop_remainder=True))
    model.compile(optimizer=keras.optimizers.Adam(1e-2), loss={spec.name: TaskLoss(spec.loss)})
    model.fit(ds, steps_per_epoch=steps, epochs=1, verbose=0)
    pred = np.concatenate([np.asarray(model(x_t[i:i + 64], training=False)[spec.name])
                           for i in range(0, len(x_t), 64)])
    return per_image_losses(spec, y_t, pred, w_t)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--tasks", default="edges,normals,depth_zbuffer,reshading")
    p.add_argument("--image-size", type=int, default=64)
    p.add_argument("--train-steps", type=int, default=60)
    p.add_argument("--transfer-images", type=int, default=500)
    p.add_argument("--steps", type=int, default=150)
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--models", help="reuse trained workdirs DIR/<task>")
    p.add_argument("--untrained", help="time untrained encoders of this architecture instead")
    a = p.parse_args()
    from taskonomy_tf.synth import embedded_dataset
    from taskonomy_tf.transfer import FeatureCache, first_order_candidates, run_transfer

    tasks = a.tasks.split(",")
    data = embedded_dataset(progress=False)
    tmp = Path(tempfile.mkdtemp(prefix="bench_cache_"))
    if a.untrained:
        models = untrained_models(tasks, tmp / "models", a.untrained, a.image_size)
    elif a.models:
        models = Path(a.models)
    else:
        models = train_models(tasks, data, tmp / "models", a.image_size, a.train_steps)
    jobs = [(t, c[0]) for t in tasks for c in first_order_candidates(t, tasks, baselines=False)]
    common = dict(n_images=a.transfer_images, steps=a.steps, batch_size=a.batch_size)

    cache = FeatureCache(tmp / "cache")
    start = time.perf_counter()
    cached_each = []
    for target, source in jobs:
        t = time.perf_counter()
        run_transfer(target, {source: models / source}, data, cache,
                     image_size=a.image_size, train_split="val", **common)
        cached_each.append(time.perf_counter() - t)
    cached = time.perf_counter() - start

    start = time.perf_counter()
    uncached_each = []
    for target, source in jobs:
        t = time.perf_counter()
        uncached_job(target, models / source, data, a.image_size, a.transfer_images,
                     a.steps, a.batch_size)
        uncached_each.append(time.perf_counter() - t)
    uncached = time.perf_counter() - start
    print(json.dumps({
        "benchmark": "transfer_cache", "machine": f"{platform.machine()}, {os.cpu_count()} cores",
        "jobs": len(jobs), "tasks": tasks, "image_size": a.image_size,
        "encoder": a.untrained or "small (trained)",
        "transfer_images": a.transfer_images, "steps": a.steps,
        "cached_wall_s": round(cached, 1), "baseline_uncached_wall_s": round(uncached, 1),
        "ratio": round(uncached / cached, 2),
        "cached_job_median_s": round(statistics.median(cached_each), 2),
        "uncached_job_median_s": round(statistics.median(uncached_each), 2),
        "encoders_run_cached": cache.computed}, indent=1))


if __name__ == "__main__":
    main()
