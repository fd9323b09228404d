"""Training throughput of the task networks: images/s per encoder, size and precision.

    python bench/train_throughput.py [--encoders small,resnet50] [--sizes 64,128]
        [--precisions float32,mixed_bfloat16,mixed_float16] [--steps 20] [--batch-size 16]
        [--task depth_zbuffer] [--steps-per-execution 1]

Backend-neutral (Keras 3): with KERAS_BACKEND=jax it runs without TensorFlow,
which is how ``bench/gpu_check.sh`` measures a GPU host. Data are synthetic
in-memory batches, so the figure is the model's speed, not the input
pipeline's. Prints JSON: per configuration the median images/s over the
timed steps (after a warm-up that includes tracing), and each precision's
ratio to float32 for the same encoder and size.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time

import keras
import numpy as np

from taskonomy_tf.models import build_task_model, compile_task_model
from taskonomy_tf.tasks import get_task


class StepTimer(keras.callbacks.Callback):
    def __init__(self):
        super().__init__()
        self.times = []

    def on_train_batch_begin(self, batch, logs=None):
        self.t = time.perf_counter()

    def on_train_batch_end(self, batch, logs=None):
        self.times.append(time.perf_counter() - self.t)


def measure(task, encoder, size, precision, steps, batch, spe) -> float:
    keras.mixed_precision.set_dtype_policy(precision)
    try:
        spec = get_task(task)
        model = build_task_model(spec, encoder, size)
        compile_task_model(model, spec, steps_per_execution=spe)
        rng = np.random.default_rng(0)
        x = rng.uniform(-1, 1, (batch * 2, size, size, 3)).astype("float32")
        y = {spec.name: rng.uniform(0, 1, (batch * 2, *spec.output_shape(size))).astype("float32")}
        timer = StepTimer()
        model.fit(x, y, batch_size=batch, epochs=1, steps_per_epoch=2 * spe, verbose=0)  # warm-up
        reps = max(1, steps // 2)
        xs, ys = np.concatenate([x] * reps), {k: np.concatenate([v] * reps) for k, v in y.items()}
        model.fit(xs, ys, batch_size=batch, epochs=1, verbose=0, callbacks=[timer], shuffle=False)
        return batch * spe / statistics.median(timer.times)
    finally:
        keras.mixed_precision.set_dtype_policy("float32")


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--encoders", default="small,resnet50")
    p.add_argument("--sizes", default="64,128")
    p.add_argument("--precisions", default="float32,mixed_bfloat16,mixed_float16")
    p.add_argument("--steps", type=int, default=20)
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--task", default="depth_zbuffer")
    p.add_argument("--steps-per-execution", type=int, default=1)
    a = p.parse_args()
    rows = []
    for enc in a.encoders.split(","):
        for size in (int(s) for s in a.sizes.split(",")):
            base = None
            for prec in a.precisions.split(","):
                ips = measure(a.task, enc, size, prec, a.steps, a.batch_size,
                              a.steps_per_execution)
                base = ips if prec == "float32" else base
                rows.append({"encoder": enc, "image_size": size, "precision": prec,
                             "images_per_s": round(ips, 1),
                             "ratio_to_float32": round(ips / base, 2) if base else None})
                print(json.dumps(rows[-1]), flush=True)
    print(json.dumps({"benchmark": "train_throughput", "backend": keras.backend.backend(),
                      "machine": f"{platform.machine()} {os.cpu_count()} cpu",
                      "task": a.task, "batch_size": a.batch_size,
                      "steps_per_execution": a.steps_per_execution, "rows": rows}, indent=1))


if __name__ == "__main__":
    main()
