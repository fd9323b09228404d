"""Decoders chosen by a task's spec, from the encoder's representation.

Every decoder ends in a linear layer initialised to zero, whose output the
task model adds to the task's constant prior (``layers.OutputPrior``): an
untrained decoder predicts the best constant, and learns the residual
(except for losses at which a constant is stationary, the segmentation
metric: ``losses.output_initializer``).

* ``conv`` (dense tasks), two presets:
  * ``paper``: the 15-layer decoder of the original (reference section 3):
    1024-1024-512-256-256-128 3x3 convs at the code's resolution, then
    transposed-convolution stages of 64-32-16-16 channels (with a 3x3 conv
    after the first three) doubling the size up to the output stride;
  * ``small`` (CPUs): two 3x3 convs of 32 channels at the code's
    resolution, then a 1x1 conv to f * f * channels and a ``PixelShuffle``
    (f = code stride / output stride): every output pixel is predicted
    from the code cells around it, and all compute stays at 16 x 16 (3.4 M
    multiply-adds per 64 px image; the transposed-conv stack it replaced
    took 41 M, more than the encoder).
  BN + leaky ReLU (0.2) throughout and no tanh (several targets leave
  [-1, 1]: curvature z-scores, unclipped occlusion edges).
* ``fc`` (low-dimensional tasks): flatten, then ``fc_layers - 1`` blocks of
  Dense + BN + ReLU + dropout 0.5, then a linear Dense.
* ``siamese_fc`` (multi-view tasks): the encoder on every view with shared
  weights, the flattened codes concatenated, then the ``fc`` head.
"""

from __future__ import annotations

import math

from keras import layers

from taskonomy_tf.models.layers import PixelShuffle
from taskonomy_tf.models.losses import output_initializer
from taskonomy_tf.tasks import TaskSpec

PRESETS = {
    # reference section 3: decoder_fc_15_layer_256_resolution_fully_convolutional_16x16x4
    "paper": {"convs": (1024, 1024, 512, 256, 256, 128), "ups": (64, 32, 16, 16),
              "up_convs": (64, 32, 32, 0), "fc": 2048},
    "small": {"convs": (16, 16), "ups": None, "fc": 256},
}
LEAK = 0.2  # leaky ReLU slope of the decoder (taskbank configs)
DROPOUT = 0.5  # keep_prob 0.5 in the FC heads


def _bn_act(x, name):
    x = layers.BatchNormalization(momentum=0.9, epsilon=1e-5, name=f"{name}_bn")(x)
    return layers.LeakyReLU(LEAK, name=f"{name}_act")(x)


def conv_decoder(x, spec: TaskSpec, preset: str, stride: int):
    """(B, s, s, 8k) codes -> (B, S / output_stride, S / output_stride,
    channels), the residual over the prior (zero when untrained).

    Args:
        stride: the code's stride (``encoders.code_stride``).
    """
    p = PRESETS[preset]
    name = spec.name
    for i, filters in enumerate(p["convs"]):
        x = _bn_act(layers.Conv2D(filters, 3, padding="same", use_bias=False,
                                  name=f"{name}_conv{i}")(x), f"{name}_conv{i}")
    factor = stride // spec.output_stride
    if p["ups"] is None:  # sub-pixel output
        x = layers.Conv2D(spec.channels * factor * factor, 1,
                          kernel_initializer=output_initializer(spec.loss),
                          dtype="float32", name=f"{name}_out")(x)
        return PixelShuffle(factor, dtype="float32", name=f"{name}_shuffle")(x)
    n_up = int(round(math.log2(factor)))
    ups = p["ups"][-n_up:] if n_up else ()
    convs = p["up_convs"][-n_up:] if n_up else ()
    for i, (up, extra) in enumerate(zip(ups, convs)):
        x = _bn_act(layers.Conv2DTranspose(up, 3, 2, padding="same", use_bias=False,
                                           name=f"{name}_up{i}")(x), f"{name}_up{i}")
        if extra:
            x = _bn_act(layers.Conv2D(extra, 3, padding="same", use_bias=False,
                                      name=f"{name}_upconv{i}")(x), f"{name}_upconv{i}")
    return layers.Conv2D(spec.channels, 3, padding="same",
                         kernel_initializer=output_initializer(spec.loss),
                         dtype="float32", name=f"{name}_out")(x)


def fc_head(x, spec: TaskSpec, preset: str):
    """Flattened code(s) -> (B, channels); linear output (logits for classes)."""
    width = PRESETS[preset]["fc"]
    x = layers.Flatten(name=f"{spec.name}_flatten")(x)
    for i in range(spec.fc_layers - 1):
        x = layers.Dense(width, use_bias=False, name=f"{spec.name}_fc{i}")(x)
        x = layers.BatchNormalization(momentum=0.9, epsilon=1e-5, name=f"{spec.name}_fc{i}_bn")(x)
        x = layers.ReLU(name=f"{spec.name}_fc{i}_relu")(x)
        x = layers.Dropout(DROPOUT, name=f"{spec.name}_fc{i}_drop")(x)
    return layers.Dense(spec.channels, kernel_initializer=output_initializer(spec.loss),
                        dtype="float32",
                        name=f"{spec.name}_out")(x)
