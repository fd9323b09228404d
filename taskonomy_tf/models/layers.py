"""Small layers shared by the task networks and the transfer readouts.

Both are plain Keras 3 layers written in ``keras.ops`` (so they run under
every backend) and serialise with ``get_config``.
"""

from __future__ import annotations

import functools

import keras
import numpy as np
from keras import layers, ops, saving


@saving.register_keras_serializable(package="taskonomy_tf")
class PixelShuffle(layers.Layer):
    """Sub-pixel up-sampling: (B, H, W, f * f * C) -> (B, f * H, f * W, C).

    Each input cell's channels hold an f x f block of output pixels (the
    ``depth_to_space`` rearrangement of Shi et al. 2016, with TensorFlow's
    channel order: block row, block column, channel). With a 1x1 conv in
    front it is the cheapest learned up-sampling: all compute stays at the
    coarse resolution.

    Args:
        factor: the up-sampling factor f (1 passes the input through).

    Example:
        >>> PixelShuffle(4)(np.zeros((2, 16, 16, 48), "float32")).shape
        (2, 64, 64, 3)
    """

    def __init__(self, factor: int, **kwargs):
        super().__init__(**kwargs)
        if factor < 1:
            raise ValueError(f"PixelShuffle: factor must be >= 1, got {factor}")
        self.factor = int(factor)

    def call(self, x):
        f = self.factor
        if f == 1:
            return x
        _, h, w, c = x.shape
        b = ops.shape(x)[0]
        x = ops.reshape(x, (b, h, w, f, f, c // (f * f)))
        x = ops.transpose(x, (0, 1, 3, 2, 4, 5))
        return ops.reshape(x, (b, h * f, w * f, c // (f * f)))

    def compute_output_shape(self, input_shape):
        b, h, w, c = input_shape
        f = self.factor
        return (b, None if h is None else h * f, None if w is None else w * f, c // (f * f))

    def get_config(self):
        return {**super().get_config(), "factor": self.factor}


@saving.register_keras_serializable(package="taskonomy_tf")
class OutputPrior(layers.Layer):
    """Adds a fixed prediction (the task's best constant) to the network's output.

    The decoder then learns the residual over the constant guess: with its
    last layer initialised to zero, an untrained network *is* the constant
    baseline, and training spends no steps reaching it (Adam moves each
    weight by about the learning rate per step, so an offset of 0.6 in an
    L1 target took about 300 steps to learn). The prior is a non-trainable
    weight, saved with the model.

    Args:
        shape: the output's shape without the batch axis ((H, W, C) or (C,)).
        value: the prior, an array of that shape (zeros when omitted).

    Example:
        >>> prior = OutputPrior((2,), value=np.array([0.5, -1.0]))
        >>> np.asarray(prior(np.zeros((1, 2), "float32")))
        array([[ 0.5, -1. ]], dtype=float32)
    """

    def __init__(self, shape, value=None, **kwargs):
        kwargs.setdefault("dtype", "float32")
        super().__init__(**kwargs)
        self.prior_shape = tuple(int(s) for s in shape)
        self._initial = None if value is None else np.asarray(value, "float32")
        if self._initial is not None and self._initial.shape != self.prior_shape:
            raise ValueError(f"OutputPrior: value of shape {self._initial.shape}, expected "
                             f"{self.prior_shape}")

    def build(self, input_shape):
        initial = self._initial
        self.prior = self.add_weight(
            shape=self.prior_shape, trainable=False, name="prior",
            initializer=(lambda shape, dtype=None: ops.convert_to_tensor(initial, dtype))
            if initial is not None else "zeros")

    def call(self, x):
        return ops.cast(x, "float32") + self.prior

    def get_config(self):
        # the value travels with the weights, not the config
        return {**super().get_config(), "shape": self.prior_shape}


def xla_cluster(fn):
    """``fn`` (``keras.ops`` only) run as one XLA cluster on TensorFlow: a
    ``tf.function`` with ``jit_compile``, made once per ``xla_cluster`` call
    (module-level wrappers: once per process), called
    from graphs that are not compiled as a whole (the train steps: XLA's CPU
    convolutions are slow, docs/performance.md), so that its elementwise
    steps run fused. Other backends call ``fn`` itself (JAX compiles the
    whole step already). Positional arguments only; Python integers among
    them are static. The function is traced once per process and relaxes
    the shapes of later calls with other shapes to unknown sizes: ``fn``
    reads sizes it computes with through ``ops.shape``, not ``.shape``."""
    @functools.cache
    def compiled():
        import tensorflow as tf

        return tf.function(fn, jit_compile=True, reduce_retracing=True)

    def call(*args):
        if keras.backend.backend() == "tensorflow":
            return compiled()(*args)
        return fn(*args)

    return call


@saving.register_keras_serializable(package="taskonomy_tf")
class FusedBatchNormalization(layers.BatchNormalization):
    """``keras.layers.BatchNormalization`` whose training step is one fused op
    on TensorFlow.

    Keras 3 normalises a batch with separate moment, normalisation and
    moving-average ops (and their gradients); on TensorFlow this layer runs
    the training step as ``FusedBatchNormV3`` (oneDNN's fused kernel where
    oneDNN is on) instead: BN and ReLU forward and backward on a (16, 16, 16,
    1248) float32 batch took 19 ms against 43 ms with the Keras layer on one
    AVX-512 core (``bench/readout_ops.py``). The outputs are the same
    function (the batch's mean and biased variance, ``epsilon`` inside the
    square root), equal to float32 round-off; the moving statistics are
    updated with the biased variance, as Keras does (the fused op returns
    the unbiased one, n / (n - 1) larger; it is scaled back). Inference,
    other backends, masks, renormalisation and axes other than the last run
    the Keras layer's own code. Weights, config and saved files are the
    Keras layer's.

    Input: any rank >= 2, channels last; the statistics are over every other
    axis. Output: the input's shape, in the layer's compute dtype.
    """

    def call(self, inputs, training=None, mask=None):
        rank = len(inputs.shape)
        fused = (training and self.trainable and mask is None and not self.renorm
                 and not self.synchronized and self.scale and self.center
                 and self.axis in (-1, rank - 1)
                 and keras.backend.backend() == "tensorflow")
        if not fused:
            return super().call(inputs, training=training, mask=mask)
        import tensorflow as tf

        channels = inputs.shape[-1]
        x = tf.cast(inputs, "float32")
        if rank != 4:  # the op takes NHWC: every other axis on N
            x = tf.reshape(x, (-1, 1, 1, channels))
        y, mean, variance = tf.raw_ops.FusedBatchNormV3(
            x=x, scale=tf.cast(self.gamma, "float32"), offset=tf.cast(self.beta, "float32"),
            mean=tf.constant([], "float32"), variance=tf.constant([], "float32"),
            epsilon=self.epsilon, data_format="NHWC", is_training=True)[:3]
        count = tf.cast(tf.size(x) // channels, "float32")
        variance = variance * (count - 1.0) / tf.maximum(count, 1.0)  # unbiased -> biased
        self.moving_mean.assign(self.moving_mean * self.momentum + mean * (1.0 - self.momentum))
        self.moving_variance.assign(self.moving_variance * self.momentum
                                    + variance * (1.0 - self.momentum))
        if rank != 4:
            y = tf.reshape(y, tf.shape(inputs))
        return ops.cast(y, self.compute_dtype)
