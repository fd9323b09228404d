"""Two pieces of a fused readout's training step against the Keras code they replace.

    python bench/readout_ops.py [--heads 78] [--batch 16] [--repeats 10]

* ``batch_norm``: a BatchNormalization and ReLU on (B, 16, 16, H * 16), the
  width of a readout's decoder activations, forward and the gradients of
  input, scale and offset. The figure: ``FusedBatchNormalization`` (one
  ``FusedBatchNormV3`` on TensorFlow); the baseline: Keras'
  ``BatchNormalization`` (moments, normalisation and their gradients as
  separate ops).
* ``heads_loss``: ``HeadsLoss`` of H heads of a 3-channel, 64 x 64 L1
  target (three replicates' packed targets, (B, 64, 64, 3, 4)) and its
  gradient. The figure: the loss as one XLA cluster (the code the readouts
  run); the baseline: the same ``keras.ops`` code as separate TensorFlow
  ops.

Prints one JSON object with the medians over ``--repeats`` steps, one
thread (a grid worker's setting), and the ratios.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time


def _median_seconds(step, args, repeats: int) -> float:
    step(*args)  # trace (and compile)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        out = step(*args)
        [t.numpy() for t in out]
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main(argv=None) -> dict:
    p = argparse.ArgumentParser()
    p.add_argument("--heads", type=int, default=78)
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--repeats", type=int, default=10)
    a = p.parse_args(argv)
    from taskonomy_tf.console import quiet_tensorflow

    quiet_tensorflow(1)
    import keras
    import numpy as np
    import tensorflow as tf

    from taskonomy_tf.models.layers import FusedBatchNormalization
    from taskonomy_tf.models.losses import LOSSES
    from taskonomy_tf.transfer import readout

    x = tf.random.normal((a.batch, 16, 16, a.heads * 16), seed=0)

    def norm_step(layer):
        layer.build(x.shape)

        @tf.function
        def step(t):
            with tf.GradientTape() as tape:
                tape.watch(t)
                y = tf.nn.relu(layer(t, training=True))
                loss = tf.reduce_sum(y * y)
            return tape.gradient(loss, [t, layer.gamma, layer.beta])

        return _median_seconds(step, (x,), a.repeats)

    bn = dict(momentum=0.9, epsilon=1e-5)
    ours_bn = norm_step(FusedBatchNormalization(**bn))
    keras_bn = norm_step(keras.layers.BatchNormalization(**bn))

    rng = np.random.default_rng(0)
    replicates = tuple(h % 3 for h in range(a.heads))
    y_true = tf.constant(np.concatenate(
        [rng.normal(size=(a.batch, 64, 64, 3, 3)), rng.uniform(size=(a.batch, 64, 64, 3, 1)) > 0.1],
        -1).astype("float32"))
    y_pred = tf.constant(rng.normal(size=(a.batch, 64, 64, a.heads, 3)).astype("float32"))

    def loss_step(fn):
        @tf.function
        def step(t, p):
            with tf.GradientTape() as tape:
                tape.watch(p)
                loss = fn(t, p, LOSSES.get("masked_l1"), False, replicates)
            return [loss, tape.gradient(loss, p)]

        return step

    clustered, plain = loss_step(readout._heads_loss_cluster), loss_step(readout._heads_loss)
    same = float(np.abs(clustered(y_true, y_pred)[1] - plain(y_true, y_pred)[1]).max())
    ours_loss = _median_seconds(clustered, (y_true, y_pred), a.repeats)
    plain_loss = _median_seconds(plain, (y_true, y_pred), a.repeats)
    out = {"batch_norm": {"figure_ms": round(1e3 * ours_bn, 2),
                          "baseline_ms": round(1e3 * keras_bn, 2),
                          "ratio": round(keras_bn / ours_bn, 2)},
           "heads_loss": {"figure_ms": round(1e3 * ours_loss, 2),
                          "baseline_ms": round(1e3 * plain_loss, 2),
                          "ratio": round(plain_loss / ours_loss, 2),
                          "max_gradient_difference": same},
           "shape": vars(a),
           "machine": {"cpus": os.cpu_count(), "processor": platform.processor(),
                       "tensorflow": tf.__version__}}
    print(json.dumps(out, indent=1))
    return out


if __name__ == "__main__":
    main()
