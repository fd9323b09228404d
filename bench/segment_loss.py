"""The segmentation metric's loss and gradient: automatic differentiation against ours.

    python bench/segment_loss.py [--images 416] [--pixels 300] [--channels 64] [--repeats 5]

``losses.segment_points`` compares every pair of an image's sampled pixels
(P^2 pairs of C-channel embeddings). It runs as one XLA cluster (``tf.function``
with ``jit_compile``) inside train steps that are not compiled as a whole, and
its gradient is written out (``ops.custom_gradient``): the pair terms'
derivative is computed in the forward pass and the backward pass is one
product with the embeddings. Times the loss and its gradient on random
embeddings and segment ids (416 images: 26 heads x batch 16, a third of a
whole-graph segmentation job's heads) three ways, inside one ``tf.function``
each (the median of ``--repeats`` calls after a warm-up): the loss's formula
differentiated automatically in a plain graph (``graph``) and in an XLA
cluster (``xla_cluster``, the code before), and ours (``ours``). Prints
JSON: the medians, the ratio of ours to the faster automatic one, the
largest gradient difference relative to the largest gradient.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--images", type=int, default=416)
    p.add_argument("--pixels", type=int, default=300)
    p.add_argument("--channels", type=int, default=64)
    p.add_argument("--repeats", type=int, default=5)
    a = p.parse_args(argv)

    import numpy as np
    import tensorflow as tf

    from taskonomy_tf.models import losses

    rng = np.random.default_rng(0)
    emb = tf.constant(0.3 * rng.normal(size=(a.images, a.pixels, a.channels)), tf.float32)
    seg = tf.constant(rng.integers(0, 6, size=(a.images, a.pixels)), tf.int32)

    def step_of(fn):
        @tf.function
        def step(e, s):
            with tf.GradientTape() as tape:
                tape.watch(e)
                value = tf.reduce_sum(fn(s, e))
            return value, tape.gradient(value, e)
        return step

    def formula(seg, emb):  # the loss as written, for automatic differentiation
        sq = tf.reduce_sum(emb * emb, -1)
        d = sq[:, :, None] + sq[:, None, :] - 2 * tf.einsum("bic,bjc->bij", emb, emb)
        d = tf.clip_by_value(d, 0.0, losses.SEGMENT_CLIP)
        sigma = tf.clip_by_value(2.0 / (1.0 + tf.exp(d)), losses.EPS, 1 - losses.EPS)
        same = tf.cast(tf.equal(seg[:, :, None], seg[:, None, :]), tf.float32)
        return -tf.reduce_mean(same * tf.math.log(sigma) + (1 - same) * tf.math.log(1 - sigma),
                               axis=(1, 2))

    out = {"images": a.images, "pixels": a.pixels, "channels": a.channels,
           "machine": {"cpus": os.cpu_count(), "processor": platform.processor()}}
    grads = {}
    ways = (("graph", formula), ("xla_cluster", tf.function(formula, jit_compile=True)),
            ("ours", losses.segment_points))
    for name, fn in ways:
        step = step_of(fn)
        step(emb, seg)  # trace and compile
        times = []
        for _ in range(a.repeats):
            start = time.perf_counter()
            value, grad = step(emb, seg)
            grads[name] = grad.numpy()
            times.append(time.perf_counter() - start)
        out[f"{name}_seconds"] = round(float(np.median(times)), 4)
        out[f"{name}_loss"] = float(value)
    baseline = min(out["graph_seconds"], out["xla_cluster_seconds"])
    out["ratio"] = round(baseline / out["ours_seconds"], 2)
    out["max_relative_gradient_difference"] = float(
        np.abs(grads["graph"] - grads["ours"]).max() / np.abs(grads["graph"]).max())
    print(json.dumps(out, indent=1))
    return out


if __name__ == "__main__":
    main()
