"""The segmentation metric's loss and gradient: a plain graph against one XLA cluster.

    python bench/segment_loss.py [--images 416] [--pixels 300] [--channels 64] [--repeats 5]

``losses.segment_points`` compares every pair of an image's sampled pixels
(P^2 pairs of C-channel embeddings). On TensorFlow it runs as an XLA cluster
(``tf.function`` with ``jit_compile``) inside train steps that are not
compiled as a whole. Times the loss and its gradient on random embeddings and
segment ids (416 images: 26 heads x batch 16, a third of a whole-graph
segmentation job's heads) both ways, inside one ``tf.function`` each (the
median of ``--repeats`` calls after a warm-up), and checks that the two
agree. Prints JSON: both medians, the ratio, the largest relative gradient
difference.
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

    out = {"images": a.images, "pixels": a.pixels, "channels": a.channels,
           "machine": {"cpus": os.cpu_count(), "processor": platform.processor()}}
    grads = {}
    for name, fn in (("graph", losses._segment_points), ("xla_cluster", losses.segment_points)):
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
    out["ratio"] = round(out["graph_seconds"] / out["xla_cluster_seconds"], 2)
    out["max_relative_gradient_difference"] = float(
        np.abs(grads["graph"] - grads["xla_cluster"]).max() / np.abs(grads["graph"]).max())
    print(json.dumps(out, indent=1))
    return out


if __name__ == "__main__":
    main()
