"""Decoders chosen by a task's spec, from the encoder's representation.

* ``conv`` (dense tasks): convolutions at the representation's resolution,
  then transposed-convolution stages doubling the size until the output
  stride (``TaskSpec.output_stride``) is reached; BN + leaky ReLU (0.2)
  throughout and a linear output layer (several targets leave [-1, 1]:
  curvature z-scores, unclipped occlusion edges, so no tanh).
* ``fc`` (low-dimensional tasks): flatten, then ``fc_layers - 1`` blocks of
  Dense + BN + ReLU + dropout 0.5, then a linear Dense.
* ``siamese_fc`` (multi-view tasks): the encoder on every view with shared
  weights, the flattened codes concatenated, then the ``fc`` head.

Widths come from a preset: ``paper`` (the 15-layer decoder of the original:
1024-1024-512-256-256-128 at 16x16, then 64-32-16-16 up-sampling stages;
FC heads of 2048) or ``small`` (for the small encoder and CPUs).
"""

from __future__ import annotations

import math

from keras import layers

from taskonomy_tf.tasks import TaskSpec

PRESETS = {
    # reference section 3: decoder_fc_15_layer_256_resolution_fully_convolutional_16x16x4
    "paper": {"convs": (1024, 1024, 512, 256, 256, 128), "ups": (64, 32, 16, 16),
              "up_convs": (64, 32, 32, 0), "fc": 2048},
    "small": {"convs": (64, 64), "ups": (64, 32, 32, 16), "up_convs": (0, 0, 0, 0), "fc": 256},
}
LEAK = 0.2  # leaky ReLU slope of the decoder (taskbank configs)
DROPOUT = 0.5  # keep_prob 0.5 in the FC heads


def _bn_act(x, name):
    x = layers.BatchNormalization(momentum=0.9, epsilon=1e-5, name=f"{name}_bn")(x)
    return layers.LeakyReLU(LEAK, name=f"{name}_act")(x)


def conv_decoder(x, spec: TaskSpec, preset: str, stride: int):
    """(B, s, s, 8) -> (B, S / output_stride, S / output_stride, channels)."""
    p = PRESETS[preset]
    name = spec.name
    for i, filters in enumerate(p["convs"]):
        x = _bn_act(layers.Conv2D(filters, 3, padding="same", use_bias=False,
                                  name=f"{name}_conv{i}")(x), f"{name}_conv{i}")
    n_up = int(round(math.log2(stride / spec.output_stride)))
    ups = p["ups"][-n_up:] if n_up else ()
    convs = p["up_convs"][-n_up:] if n_up else ()
    for i, (up, extra) in enumerate(zip(ups, convs)):
        x = _bn_act(layers.Conv2DTranspose(up, 3, 2, padding="same", use_bias=False,
                                           name=f"{name}_up{i}")(x), f"{name}_up{i}")
        if extra:
            x = _bn_act(layers.Conv2D(extra, 3, padding="same", use_bias=False,
                                      name=f"{name}_upconv{i}")(x), f"{name}_upconv{i}")
    return layers.Conv2D(spec.channels, 3, padding="same", dtype="float32", name=spec.name)(x)


def fc_head(x, spec: TaskSpec, preset: str):
    """Flattened code(s) -> (B, channels); linear output (logits for classes)."""
    width = PRESETS[preset]["fc"]
    x = layers.Flatten(name=f"{spec.name}_flatten")(x)
    for i in range(spec.fc_layers - 1):
        x = layers.Dense(width, use_bias=False, name=f"{spec.name}_fc{i}")(x)
        x = layers.BatchNormalization(momentum=0.9, epsilon=1e-5, name=f"{spec.name}_fc{i}_bn")(x)
        x = layers.ReLU(name=f"{spec.name}_fc{i}_relu")(x)
        x = layers.Dropout(DROPOUT, name=f"{spec.name}_fc{i}_drop")(x)
    return layers.Dense(spec.channels, dtype="float32", name=spec.name)(x)
