"""FusedBatchNormalization is Keras' BatchNormalization, computed as one op."""

import keras
import numpy as np
import pytest

from taskonomy_tf.models.layers import FusedBatchNormalization

tf = pytest.importorskip("tensorflow")


def _step(layer, x, training=True):
    """Output, the gradients of a non-linear loss with respect to input,
    scale and offset, and the moving statistics after the call."""
    with tf.GradientTape() as tape:
        tape.watch(x)
        y = layer(x, training=training)
        loss = tf.reduce_sum(tf.sin(y) * tf.range(y.shape[-1], dtype="float32"))
    grads = tape.gradient(loss, [x, layer.gamma, layer.beta])
    return [np.asarray(t) for t in (y, *grads, layer.moving_mean, layer.moving_variance)]


def _pair(shape, **kwargs):
    layers = [keras.layers.BatchNormalization(**kwargs), FusedBatchNormalization(**kwargs)]
    channels = shape[kwargs.get("axis", -1)]
    for layer in layers:
        layer.build(shape)
        layer.gamma.assign(np.linspace(0.5, 2.0, channels))
        layer.beta.assign(np.linspace(-1.0, 1.0, channels))
        layer.moving_mean.assign(np.full(channels, 0.3))
        layer.moving_variance.assign(np.full(channels, 2.0))
    return layers


@pytest.mark.parametrize("shape", [(6, 5, 4, 7), (12, 9), (4, 3, 10)])
def test_training_step_is_keras_batch_norm(shape):
    x = tf.constant(np.random.default_rng(0).normal(1.5, 3.0, size=shape).astype("float32"))
    reference, fused = _pair(shape, momentum=0.9, epsilon=1e-5)
    for _ in range(2):  # two steps: the moving averages compound
        want, got = _step(reference, x), _step(fused, x)
        for name, a, b in zip(("output", "d input", "d scale", "d offset", "moving mean",
                               "moving variance"), want, got):
            np.testing.assert_allclose(b, a, rtol=2e-5, atol=2e-5 * np.abs(a).max(),
                                       err_msg=name)


def test_small_batches_keep_the_biased_variance():
    """Two values per channel: the fused op's unbiased variance is twice the
    biased one; the layer must store Keras' (biased) moving average."""
    x = tf.constant([[0.0, 1.0], [2.0, 5.0]])
    layer = FusedBatchNormalization(momentum=0.0, epsilon=1e-5)
    layer.build(x.shape)
    layer(x, training=True)
    np.testing.assert_allclose(np.asarray(layer.moving_variance), [1.0, 4.0], rtol=1e-6)
    np.testing.assert_allclose(np.asarray(layer.moving_mean), [1.0, 3.0], rtol=1e-6)


def test_inference_and_other_axes_use_keras_code():
    shape = (5, 6, 4)
    x = tf.constant(np.random.default_rng(1).normal(size=shape).astype("float32"))
    for kwargs in ({}, {"axis": 1}):
        reference, fused = _pair(shape, **kwargs)
        for training in (False, True):
            np.testing.assert_allclose(np.asarray(fused(x, training=training)),
                                       np.asarray(reference(x, training=training)),
                                       rtol=1e-5, atol=1e-5)


def test_config_and_saved_model_round_trip(tmp_path):
    inputs = keras.Input((4, 4, 3))
    model = keras.Model(inputs, FusedBatchNormalization(momentum=0.8, name="bn")(inputs))
    model.layers[-1].moving_mean.assign([0.1, 0.2, 0.3])
    path = tmp_path / "m.keras"
    model.save(path)
    loaded = keras.saving.load_model(path, safe_mode=True)
    layer = loaded.get_layer("bn")
    assert type(layer) is FusedBatchNormalization and layer.momentum == 0.8
    x = np.random.default_rng(2).normal(size=(2, 4, 4, 3)).astype("float32")
    np.testing.assert_array_equal(np.asarray(loaded(x)), np.asarray(model(x)))
