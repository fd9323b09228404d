"""Loss scaling under tf.distribute: one step on two replicas equals one step
on one device over the same global batch (loss, and weights after the step)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest

# One SGD step of a tiny conv net with the project's TaskLoss (masked L1 with a
# mask that keeps the same number of pixels in every image, so the replicas'
# masked means average to the global one) and an L2 regulariser.
STEP = """
import os, sys, json
os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
import numpy as np, tensorflow as tf
{setup}
import keras
from taskonomy_tf.models.losses import TaskLoss

from taskonomy_tf.training.multiworker import fit_multi_worker

def one_step(strategy, make_dataset):
    keras.utils.set_random_seed(0)
    with strategy.scope():
        inp = keras.Input((8, 8, 3))
        h = keras.layers.Conv2D(4, 3, padding="same",
                                kernel_regularizer=keras.regularizers.L2(1e-2))(inp)
        out = keras.layers.Conv2D(1, 1)(h)
        model = keras.Model(inp, out)
        model.compile(keras.optimizers.SGD(0.5), loss=TaskLoss("masked_l1"))
    pred = model.predict(X, verbose=0)[..., 0]
    kernel = np.asarray(model.layers[1].kernel)
    expected = float(np.sum(np.abs(Y[..., 0] - pred) * W) / np.sum(W)
                     + 1e-2 * np.sum(kernel ** 2))
    if isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy):
        hist = fit_multi_worker(model, strategy, make_dataset())
    else:
        hist = model.fit(make_dataset(), epochs=1, verbose=0).history
    return {{"loss": float(hist["loss"][0]), "expected": expected,
             "weights": [np.asarray(v).tolist() for v in model.get_weights()]}}

rng = np.random.default_rng(1)
X = rng.normal(size=(8, 8, 8, 3)).astype("float32")
Y = rng.normal(size=(8, 8, 8, 1)).astype("float32")
W = np.repeat((rng.uniform(size=(1, 8, 8)) > 0.3).astype("float32"), 8, 0)
{body}
"""

LOCAL = """
def whole():
    return tf.data.Dataset.from_tensor_slices((X, Y, W)).batch(8)
one = one_step(tf.distribute.OneDeviceStrategy("/cpu:0"), whole)
two = one_step(tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"]), whole)
print(json.dumps({"one": one, "two": two}))
"""

WORKER = """
strategy = tf.distribute.MultiWorkerMirroredStrategy()
def halves():
    def fn(ctx):  # worker i feeds images 4i..4i+3: the global batch is all 8
        i = ctx.input_pipeline_id
        ds = tf.data.Dataset.from_tensor_slices((X[4 * i:4 * i + 4], Y[4 * i:4 * i + 4],
                                                 W[4 * i:4 * i + 4]))
        return ds.batch(4)
    return strategy.distribute_datasets_from_function(fn)
print(json.dumps(one_step(strategy, halves)))
"""

TWO_CPUS = ("cpu = tf.config.list_physical_devices('CPU')[0]\n"
            "tf.config.set_logical_device_configuration(cpu, "
            "[tf.config.LogicalDeviceConfiguration()] * 2)")


def _run(code, env=None):
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=600, env=env)
    assert out.returncode == 0, out.stderr[-3000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


def _assert_same_step(a, b):
    # the loss is the global batch's masked mean plus the regulariser, once
    assert a["loss"] == pytest.approx(a["expected"], rel=1e-5)
    assert a["loss"] == pytest.approx(b["loss"], rel=1e-5)
    assert len(a["weights"]) == len(b["weights"])
    for wa, wb in zip(a["weights"], b["weights"]):
        np.testing.assert_allclose(np.asarray(wa), np.asarray(wb), rtol=1e-5, atol=1e-6)


@pytest.mark.slow
def test_mirrored_step_equals_one_device_step():
    r = _run(STEP.format(setup=TWO_CPUS, body=LOCAL))
    _assert_same_step(r["two"], r["one"])


@pytest.mark.slow
def test_multi_worker_step_equals_one_device_step(free_ports):
    ports = free_ports(2)
    cluster = {"worker": [f"127.0.0.1:{p}" for p in ports]}
    code = STEP.format(setup="", body=WORKER)
    procs = []
    for i in range(2):
        env = {**os.environ, "TF_CONFIG": json.dumps({"cluster": cluster,
                                                       "task": {"type": "worker", "index": i}})}
        procs.append(subprocess.Popen([sys.executable, "-c", code], env=env, text=True,
                                      stdout=subprocess.PIPE, stderr=subprocess.PIPE))
    outs = [p.communicate(timeout=600) for p in procs]
    for p, (_, err) in zip(procs, outs):
        assert p.returncode == 0, err[-3000:]
    workers = [json.loads(o.strip().splitlines()[-1]) for o, _ in outs]
    one = _run(STEP.format(setup=TWO_CPUS, body=LOCAL))["one"]
    for w in workers:
        _assert_same_step(w, one)
