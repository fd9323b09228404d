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
* ``grouped_dense``: a fully connected layer of H heads on egomotion's
  flattened three-view codes ((B, H, 12,288) -> (B, H, 256)), forward and
  the gradients of input and kernel. The figure: ``GroupedDense`` (the
  heads as the batch of one batched product); the baseline: the einsum
  ``bhi,hio->bho`` it used before.
* ``point_product``: a segmentation head's last layer at 300 sampled
  pixels of B images (16 features, 16 places in a code cell, 64 outputs),
  forward and both gradients. The figure: ``models.group_matmul``; the
  baseline: the one-hot expansion of each pixel's features to its place
  (16 x 16 values) and one product, as one XLA cluster, which the
  readouts used before.

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
    dense_ours, dense_einsum, dense_diff = _grouped_dense(tf, rng, a)
    point_ours, point_onehot, point_diff = _point_product(tf, rng, a)
    out = {"batch_norm": {"figure_ms": round(1e3 * ours_bn, 2),
                          "baseline_ms": round(1e3 * keras_bn, 2),
                          "ratio": round(keras_bn / ours_bn, 2)},
           "heads_loss": {"figure_ms": round(1e3 * ours_loss, 2),
                          "baseline_ms": round(1e3 * plain_loss, 2),
                          "ratio": round(plain_loss / ours_loss, 2),
                          "max_gradient_difference": same},
           "grouped_dense": {"figure_ms": round(1e3 * dense_ours, 2),
                             "baseline_ms": round(1e3 * dense_einsum, 2),
                             "ratio": round(dense_einsum / dense_ours, 2),
                             "max_relative_difference": dense_diff},
           "point_product": {"figure_ms": round(1e3 * point_ours, 2),
                             "baseline_ms": round(1e3 * point_onehot, 2),
                             "ratio": round(point_onehot / point_ours, 2),
                             "max_relative_difference": point_diff},
           "shape": vars(a),
           "machine": {"cpus": os.cpu_count(), "processor": platform.processor(),
                       "tensorflow": tf.__version__}}
    print(json.dumps(out, indent=1))
    return out


def _gradient_step(tf, fn, upstream):
    """A tf.function: fn's output and the gradients of sum(output *
    upstream) with respect to both arguments."""
    @tf.function
    def step(x, k):
        with tf.GradientTape() as tape:
            tape.watch([x, k])
            out = fn(x, k)
            loss = tf.reduce_sum(out * upstream)
        return [out, *tape.gradient(loss, [x, k])]

    return step


def _compare(tf, ours, baseline, args, repeats):
    """Median seconds of both steps and their outputs' largest relative difference."""
    diff = max(float(tf.reduce_max(tf.abs(p - q)) / tf.reduce_max(tf.abs(q)))
               for p, q in zip(ours(*args), baseline(*args)))
    return (_median_seconds(ours, args, repeats), _median_seconds(baseline, args, repeats), diff)


def _grouped_dense(tf, rng, a):
    from taskonomy_tf.transfer.fused import GroupedDense

    fan_in, units = 3 * 16 * 16 * 16, 256  # egomotion at 64 px: three views' two-stream codes
    x = tf.constant(rng.normal(size=(a.batch, a.heads, fan_in)).astype("float32"))
    layer = GroupedDense(units)
    layer.build(x.shape)
    kernel = tf.constant(layer.kernel.numpy())
    upstream = tf.constant(rng.normal(size=(a.batch, a.heads, units)).astype("float32"))

    # the layer reads its kernel variable (k, its values, feeds the baseline):
    # its gradient is the variable's
    def ours_step(t, k):
        with tf.GradientTape() as tape:
            tape.watch(t)
            out = layer(t)
            loss = tf.reduce_sum(out * upstream)
        return [out, *tape.gradient(loss, [t, layer.kernel])]

    baseline = _gradient_step(tf, lambda t, k: tf.einsum("bhi,hio->bho", t, k), upstream)
    return _compare(tf, tf.function(ours_step), baseline, (x, kernel), a.repeats)


def _point_product(tf, rng, a):
    from taskonomy_tf.models.group_matmul import group_matmul

    places, width, channels = 16, 16, 64
    rows = a.batch * 300
    z = tf.constant(rng.normal(size=(rows, a.heads, width)).astype("float32"))
    kernels = tf.constant(rng.normal(size=(a.heads, places, width, channels)).astype("float32"))
    groups = tf.constant(rng.integers(0, places, size=(rows, a.heads)).astype("int32"))
    upstream = tf.constant(rng.normal(size=(rows, a.heads, channels)).astype("float32"))

    @tf.function(jit_compile=True)  # as the readouts ran it: one XLA cluster
    def onehot(t, k):  # each row's features at its place among 16 x 16 values
        expanded = tf.one_hot(groups, places)[..., None] * t[..., None, :]
        return tf.einsum("nhk,hkc->nhc", tf.reshape(expanded, (rows, a.heads, -1)),
                         tf.reshape(k, (a.heads, places * width, channels)))

    ours = _gradient_step(tf, lambda t, k: group_matmul(t, k, groups), upstream)
    return _compare(tf, ours, _gradient_step(tf, onehot, upstream), (z, kernels), a.repeats)


if __name__ == "__main__":
    main()
