"""Grouped convolutions without oneDNN: the per-group fallback against the other paths.

    python bench/grouped_conv.py [--heads 21] [--channels 16] [--side 16] [--batch 16]
    TF_ENABLE_ONEDNN_OPTS=1 python bench/grouped_conv.py     # oneDNN forced on

One training step (forward and both gradients) of a 3x3 grouped convolution
of ``--heads`` groups of ``--channels`` channels at ``--side`` x ``--side``,
the shape of a fused readout's stream convolution. The figure: the path
``GroupedConv2D`` takes on this machine (``grouped_conv_native()``: the
native grouped op where oneDNN runs it, else one convolution per group). The
baseline: ``keras.ops.conv`` with groups (XLA on CPU), the path the layer
would otherwise take. Prints JSON with medians over ``--repeats`` steps.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time


def main(argv=None) -> dict:
    p = argparse.ArgumentParser()
    p.add_argument("--heads", type=int, default=21)
    p.add_argument("--channels", type=int, default=16)
    p.add_argument("--side", type=int, default=16)
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--repeats", type=int, default=10)
    a = p.parse_args(argv)
    import keras
    import tensorflow as tf

    from taskonomy_tf.transfer.fused import GroupedConv2D, grouped_conv_native

    x = tf.random.normal((a.batch, a.side, a.side, a.heads * a.channels), seed=0)
    layer = GroupedConv2D(a.heads, a.channels, 3)
    layer.build(x.shape)

    def timed(fn) -> float:
        @tf.function
        def step(t):
            with tf.GradientTape() as tape:
                tape.watch(t)
                y = fn(t)
                loss = tf.reduce_sum(y * y)
            return tape.gradient(loss, [t, layer.kernel])

        step(x)  # trace
        times = []
        for _ in range(a.repeats):
            start = time.perf_counter()
            step(x)
            times.append(time.perf_counter() - start)
        return statistics.median(times)

    layer_s = timed(layer)
    xla_s = timed(lambda t: keras.ops.conv(t, layer.kernel, 1, "same"))
    out = {"figure": {"path": "native grouped" if grouped_conv_native() else "per group",
                      "step_ms": round(1e3 * layer_s, 2)},
           "baseline": {"path": "keras.ops.conv (XLA)", "step_ms": round(1e3 * xla_s, 2)},
           "ratio": round(xla_s / layer_s, 1),
           "shape": vars(a), "onednn_env": os.environ.get("TF_ENABLE_ONEDNN_OPTS"),
           "machine": {"cpus": os.cpu_count(), "processor": platform.processor(),
                       "tensorflow": tf.__version__}}
    print(json.dumps(out, indent=1))
    return out


if __name__ == "__main__":
    main()
