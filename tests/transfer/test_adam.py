"""FusedAdam: Keras's Adam for small variables, to the last bit; for fused
large ones, Adam's algorithm as written out in numpy."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from taskonomy_tf.transfer import adam
from taskonomy_tf.transfer.adam import FusedAdam


def _train(optimizer, seed=0):
    """A small model fitted for 20 steps with a warm-up and cosine schedule;
    its weights after."""
    keras.utils.set_random_seed(seed)
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(64, 10)).astype("float32")
    y = (x @ rng.normal(size=(10, 3))).astype("float32")
    model = keras.Sequential([keras.Input((10,)), keras.layers.Dense(16, activation="relu"),
                              keras.layers.BatchNormalization(), keras.layers.Dense(3)])
    schedule = keras.optimizers.schedules.CosineDecay(
        1e-3, 20, alpha=0.01, warmup_target=1e-2, warmup_steps=2)
    model.compile(optimizer(schedule), "mse", steps_per_execution=4)
    model.fit(x, y, batch_size=16, epochs=5, verbose=0, shuffle=False)
    return [w.numpy() for w in model.weights]


def test_small_variables_train_exactly_as_with_keras_adam():
    for a, b in zip(_train(keras.optimizers.Adam), _train(FusedAdam), strict=True):
        np.testing.assert_array_equal(a, b)


def _numpy_adam(p, grads, lr, beta_1=0.9, beta_2=0.999, epsilon=1e-7):
    """Kingma and Ba (2015), algorithm 1, with the bias corrections folded
    into the step size (Keras's epsilon-hat form), in float64."""
    p = p.astype(np.float64)
    m, v = np.zeros_like(p), np.zeros_like(p)
    for t, g in enumerate(grads, start=1):
        m = beta_1 * m + (1 - beta_1) * g
        v = beta_2 * v + (1 - beta_2) * g * g
        p = p - lr * np.sqrt(1 - beta_2 ** t) / (1 - beta_1 ** t) * m / (np.sqrt(v) + epsilon)
    return p


@pytest.mark.parametrize("fuse_from", [1, 1 << 30])
def test_updates_follow_adams_algorithm(monkeypatch, fuse_from):
    monkeypatch.setattr(adam, "FUSE_FROM", fuse_from)  # 1: every variable fused
    rng = np.random.default_rng(3)
    start = rng.normal(size=(4, 5, 6)).astype("float32")
    grads = [rng.normal(size=start.shape).astype("float32") for _ in range(4)]
    var = keras.Variable(start)
    opt = FusedAdam(0.05)
    opt.build([var])
    for g in grads:
        opt.apply([keras.ops.convert_to_tensor(g)], [var])
    expected = _numpy_adam(start, grads, 0.05)
    assert np.abs(expected - start).max() > 0.1  # the steps moved it
    np.testing.assert_allclose(var.numpy(), expected, rtol=0, atol=2e-6)


def test_config_round_trip():
    opt = FusedAdam(0.02, beta_1=0.8, beta_2=0.99, epsilon=1e-6, clipnorm=1.0)
    back = FusedAdam.from_config(opt.get_config())
    assert (back.beta_1, back.beta_2, back.epsilon, back.clipnorm) == (0.8, 0.99, 1e-6, 1.0)
    assert float(back.learning_rate) == pytest.approx(0.02)


def test_a_variable_it_was_not_built_with_is_refused():
    opt = FusedAdam(0.01)
    opt.build([keras.Variable(np.zeros(3, "float32"))])
    with pytest.raises(ValueError, match="not one the optimizer was built with"):
        opt.update_step(np.ones(2, "float32"), keras.Variable(np.zeros(2, "float32")), 0.01)


def test_fused_models_one_after_another_match_keras_adam(monkeypatch):
    """Every variable fused (three of one shape among them), two models in
    one process: each optimizer updates its own variables."""
    monkeypatch.setattr(adam, "FUSE_FROM", 1)
    for seed in (0, 1):
        for a, b in zip(_train(keras.optimizers.Adam, seed), _train(FusedAdam, seed),
                        strict=True):
            np.testing.assert_allclose(b, a, rtol=0, atol=1e-6)


def test_its_state_is_the_moments_only():
    """Like Keras's Adam: the step count, the learning rate and two moments
    per variable; never the model's variables themselves (JAX would donate
    their buffers twice)."""
    model_vars = [keras.Variable(np.zeros((3, 2), "float32")),
                  keras.Variable(np.ones(4, "float32"))]
    ours, theirs = FusedAdam(0.01), keras.optimizers.Adam(0.01)
    ours.build(model_vars)
    theirs.build(model_vars)
    assert len(ours.variables) == len(theirs.variables)
    assert not any(v is m for v in ours.variables for m in model_vars)


@pytest.mark.slow
def test_fused_updates_under_the_jax_backend(run_under_jax):
    code = (
        "import numpy as np, keras\n"
        "from taskonomy_tf.transfer import adam\n"
        "adam.FUSE_FROM = 1\n"
        "def run(opt):\n"
        "    keras.utils.set_random_seed(0)\n"
        "    x = np.random.default_rng(0).normal(size=(32, 5)).astype('float32')\n"
        "    m = keras.Sequential([keras.Input((5,)), keras.layers.Dense(4),"
        " keras.layers.Dense(2)])\n"
        "    m.compile(opt, 'mse')\n"
        "    m.fit(x, x[:, :2], batch_size=8, epochs=3, verbose=0, shuffle=False)\n"
        "    return [w.numpy() for w in m.weights]\n"
        "a, b = run(keras.optimizers.Adam(0.01)), run(adam.FusedAdam(0.01))\n"
        "print(max(float(np.abs(p - q).max()) for p, q in zip(a, b)))\n"
    )
    assert float(run_under_jax(code)) < 1e-6
