"""Segmentation readouts at the sampled pixels against the whole map.

    python bench/segment_points.py [--heads 26] [--steps 20] [--images 480]
        [--image-size 64] [--target segment_unsup2d]

The unsupervised segmentations' metric loss reads 300 pixels of each map.
Their readouts used to predict the whole (S, S, 64) map of every head
(1 MB per image and head at 64 px), shuffle it, add the prior, slice it per
head and score it; they now predict at the sampled pixels only
(``GroupedPointConv``). On random codes and segment ids (a program of
``--heads`` heads, one replicate, batch 16), times both from building the
model to the test scores (tracing included, as in a transfer job), after a
warm-up job of one head:

* **points**: ``train_readouts`` as the transfer stage runs it;
* **whole map**: the same model with ``points=False``, the loss of the
  whole map drawing each head's pixels from its own generator, the test
  maps scored by ``per_image_losses``: the code before this change.

Prints JSON: for both, the seconds of training (``--steps`` steps, the
trace included) and of scoring the test images, the job's total, the
ratios, and both mean test losses (other pixel draws, so close, not equal).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


def whole_map(target, heads, sources, train, test, size, prior, steps, batch=16):
    """The readouts before this change: (fit seconds from the model's build,
    score seconds, losses (H, N))."""
    import keras
    import numpy as np
    import tensorflow as tf

    from taskonomy_tf.models.losses import LOSSES, masked_row_means
    from taskonomy_tf.tasks import get_task
    from taskonomy_tf.training.evaluate import per_image_losses
    from taskonomy_tf.transfer.readout import batch_order, build_readouts, pack_targets

    spec = get_task(target)
    fn = LOSSES.get(spec.loss)
    generators = [keras.random.SeedGenerator(h.seed) for h in heads]

    def loss(y_true, y_pred):  # (B, S, S, 1, 2), (B, S, S, H, C): every head reads replicate 0
        pred = keras.ops.moveaxis(y_pred, -2, 0)
        values = keras.ops.stack([fn(y_true[..., 0, :1], pred[h], generators[h])
                                  for h in range(len(heads))])
        weight = keras.ops.broadcast_to(y_true[None, ..., 0, 1], keras.ops.shape(values))
        return keras.ops.sum(masked_row_means(keras.ops.reshape(values, (len(heads), -1)),
                                              keras.ops.reshape(weight, (len(heads), -1))))

    start = time.perf_counter()
    model = build_readouts(spec, heads, sources, size, prior, points=False)
    model.compile(optimizer=keras.optimizers.Adam(1e-3), loss=loss, steps_per_execution=10)
    codes, packed = tf.constant(train.codes), tf.constant(pack_targets(train.y, train.w))

    def data(n):
        order = batch_order(len(train.y), n, batch, 0)
        return tf.data.Dataset.from_tensor_slices(order).map(
            lambda i: ({"codes": tf.gather(codes, i)[:, None]},
                       tf.gather(packed, i)[..., None, :])).prefetch(2)

    model.fit(data(steps), steps_per_epoch=steps, verbose=0)
    fit = time.perf_counter() - start
    start = time.perf_counter()
    out, step = [], 9  # the batch SCORE_BYTES allowed 26 such heads
    for i in range(0, len(test.y), step):
        pred = np.moveaxis(np.asarray(model.predict_on_batch(
            {"codes": test.codes[i:i + step, None]})), -2, 1)
        b, h = pred.shape[:2]
        out.append(per_image_losses(
            spec, np.repeat(test.y[i:i + step, None], h, 1).reshape(b * h, *test.y.shape[1:]),
            pred.reshape(b * h, *pred.shape[2:]),
            np.repeat(test.w[i:i + step, None], h, 1).reshape(b * h, *test.w.shape[1:]))
            .reshape(b, h))
    return fit, time.perf_counter() - start, np.concatenate(out).T


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--heads", type=int, default=26)
    p.add_argument("--steps", type=int, default=50)
    p.add_argument("--images", type=int, default=480)
    p.add_argument("--image-size", type=int, default=64)
    p.add_argument("--target", default="segment_unsup2d")
    a = p.parse_args()
    import numpy as np

    from taskonomy_tf.models.encoders import code_stride
    from taskonomy_tf.tasks import get_task
    from taskonomy_tf.transfer import readout
    from taskonomy_tf.transfer.readout import ReadoutArrays, plan_heads, train_readouts

    spec = get_task(a.target)
    rng = np.random.default_rng(0)
    side = a.image_size // code_stride(a.image_size)
    out = spec.output_shape(a.image_size)

    def arrays():
        codes = np.maximum(rng.normal(size=(a.images, a.heads, side, side, 8)), 0)
        ids = rng.integers(0, 12, (a.images, *out[:2], 1))
        return ReadoutArrays(codes.astype("float32"), ids.astype("float32"),
                             np.ones((a.images, *out[:2]), "float32"))

    train, test = arrays(), arrays()
    sources = [f"s{i}" for i in range(a.heads)]
    heads = plan_heads([(s,) for s in sources], [0])
    prior = np.zeros(out, "float32")
    opts = dict(batch_size=16, learning_rate=1e-3)
    small = ReadoutArrays(train.codes[:32, :1], train.y[:32], train.w[:32])
    train_readouts(spec, heads[:1], sources[:1], small, small, a.image_size, prior, [0],
                   steps=2, **opts)  # warm-up: the process's first kernels
    scored = readout.score_heads
    timing = {}

    def timed_score(*args, **kwargs):
        start = time.perf_counter()
        result = scored(*args, **kwargs)
        timing["score"] = time.perf_counter() - start
        return result

    readout.score_heads = timed_score
    start = time.perf_counter()
    points = train_readouts(spec, heads, sources, train, test, a.image_size, prior, [0],
                            steps=a.steps, **opts)
    total = time.perf_counter() - start
    readout.score_heads = scored
    fit, score, whole = whole_map(a.target, heads, sources, train, test, a.image_size, prior,
                                  a.steps)
    points_fit = total - timing["score"]
    print(json.dumps({
        "target": a.target, "heads": a.heads, "image_size": a.image_size,
        "train_images": a.images, "test_images": a.images, "steps": a.steps,
        "points": {"train_seconds": round(points_fit, 1),
                   "score_seconds": round(timing["score"], 1),
                   "job_seconds": round(total, 1),
                   "mean_test_loss": round(float(points.mean()), 4)},
        "whole_map": {"train_seconds": round(fit, 1), "score_seconds": round(score, 1),
                      "job_seconds": round(fit + score, 1),
                      "mean_test_loss": round(float(whole.mean()), 4)},
        "train_speedup": round(fit / points_fit, 2),
        "score_speedup": round(score / timing["score"], 2),
        "job_speedup": round((fit + score) / total, 2),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores",
    }, indent=1))


if __name__ == "__main__":
    main()
