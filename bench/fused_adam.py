"""One optimizer step on a fully connected readout's kernel: Keras's Adam against FusedAdam.

    python bench/fused_adam.py [--heads 78] [--inputs 12288] [--units 256] [--threads 1]
        [--repeats 5]

The readouts of a fully connected target keep one kernel of heads x inputs x
units float32 weights (egomotion at 64 px: 78 heads of 3 views x 16 x 16 x 16
inputs into 256 units, 1 GB). Applies a fixed gradient to it with
``keras.optimizers.Adam`` and with ``transfer.adam.FusedAdam`` (one XLA
cluster updating the kernel and both moments in place), each inside one
``tf.function`` with TensorFlow limited to ``--threads`` (a transfer worker's
share of the cores), after a warm-up; prints JSON: both medians, their ratio,
and the largest difference of the two kernels after the same steps (relative
to the kernel's largest step).
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
    p.add_argument("--heads", type=int, default=78)
    p.add_argument("--inputs", type=int, default=12288)
    p.add_argument("--units", type=int, default=256)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--repeats", type=int, default=5)
    a = p.parse_args(argv)

    from taskonomy_tf.console import quiet_tensorflow

    quiet_tensorflow(a.threads)
    import keras
    import numpy as np
    import tensorflow as tf

    from taskonomy_tf.transfer.adam import FusedAdam

    shape = (a.heads, a.inputs, a.units)
    rng = np.random.default_rng(0)
    start = (0.01 * rng.standard_normal(shape)).astype(np.float32)
    grad = tf.constant(rng.standard_normal(shape).astype(np.float32))
    out = {"shape": list(shape), "gigabytes": round(start.nbytes / 2**30, 2),
           "threads": a.threads,
           "machine": {"cpus": os.cpu_count(), "processor": platform.processor()}}
    kernels = {}
    for name, make in (("keras_adam", keras.optimizers.Adam), ("fused_adam", FusedAdam)):
        var = keras.Variable(start, name="kernel")
        opt = make(1e-3)
        opt.build([var])
        step = _step(opt, var, grad)
        step()  # trace and compile
        times = []
        for _ in range(a.repeats):
            t0 = time.perf_counter()
            step()
            times.append(time.perf_counter() - t0)
        out[f"{name}_seconds"] = round(float(np.median(times)), 4)
        kernels[name] = var.numpy()
        del var, opt, step
    out["ratio"] = round(out["keras_adam_seconds"] / out["fused_adam_seconds"], 2)
    moved = np.abs(kernels["keras_adam"] - start).max()
    out["max_difference_over_largest_change"] = float(
        np.abs(kernels["keras_adam"] - kernels["fused_adam"]).max() / moved)
    print(json.dumps(out, indent=1))
    return out


def _step(opt, var, grad):
    import tensorflow as tf

    @tf.function
    def step():
        opt.apply([grad], [var])
    return step


if __name__ == "__main__":
    main()
