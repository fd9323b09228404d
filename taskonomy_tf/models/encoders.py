"""Encoders: an image in, a fixed-size post-ReLU representation out.

Contract (the paper's: a 256 x 256 image -> 16 x 16 x 8, post-ReLU,
reference section 3): ``build_encoder(name, image_size)`` returns a
``keras.Model`` named ``encoder`` mapping (S, S, C) to (S/16, S/16, 8), with
the attribute ``feature_info`` = [(layer name, channels, stride)] of its
stages. A transfer swaps any such model in.

Registered encoders (``ENCODERS``):
* ``resnet50``: ResNet-50 v1 as in the original (blocks 3, 4, 6, 3 of
  bottlenecks 256/512/1024/2048; stride 2 in the *last* unit of blocks 1
  and 2, blocks 3 and 4 at stride 1, no global pooling), then a 3x3 conv to
  8 channels with BN and ReLU. BN momentum 0.9, epsilon 1e-5.
* ``small``: the same contract at a CPU-friendly cost: a stride-2 stem and
  three stride-2 residual stages (32-64-128-128), then the same 8-channel
  compression. About 0.6 M parameters.
"""

from __future__ import annotations

import keras
from keras import layers

from taskonomy_tf.registry import Registry

ENCODERS = Registry("encoder")
REPRESENTATION_CHANNELS = 8  # 16x16x8 representation (reference section 3)
REPRESENTATION_STRIDE = 16
BN = dict(momentum=0.9, epsilon=1e-5)  # slim BN decay 0.9, eps 1e-5 (reference)
L2 = 2e-6  # weight decay of the task networks (taskbank configs)


def _conv(x, filters, kernel, stride=1, name=None, act=True):
    x = layers.Conv2D(filters, kernel, stride, padding="same", use_bias=False,
                      kernel_initializer="he_normal", kernel_regularizer=keras.regularizers.L2(L2),
                      name=name)(x)
    x = layers.BatchNormalization(**BN, name=f"{name}_bn")(x)
    return layers.ReLU(name=f"{name}_relu")(x) if act else x


def _bottleneck(x, depth, stride, name):
    """ResNet v1 bottleneck: 1x1 (depth/4) -> 3x3 (stride) -> 1x1 (depth) + shortcut."""
    shortcut = x
    if x.shape[-1] != depth or stride != 1:
        if x.shape[-1] == depth:  # same depth: a strided subsample (slim resnet_v1)
            shortcut = layers.MaxPooling2D(1, stride, name=f"{name}_sub")(x)
        else:
            shortcut = _conv(x, depth, 1, stride, f"{name}_proj", act=False)
    y = _conv(x, depth // 4, 1, 1, f"{name}_a")
    y = _conv(y, depth // 4, 3, stride, f"{name}_b")
    y = _conv(y, depth, 1, 1, f"{name}_c", act=False)
    return layers.ReLU(name=f"{name}_out")(layers.Add(name=f"{name}_add")([shortcut, y]))


def _compress(x):
    return _conv(x, REPRESENTATION_CHANNELS, 3, 1, "compress")


@ENCODERS.register("resnet50")
def resnet50(image_size: int = 256, channels: int = 3) -> keras.Model:
    inputs = keras.Input((image_size, image_size, channels), name="image")
    x = _conv(inputs, 64, 7, 2, "stem")
    x = layers.MaxPooling2D(3, 2, padding="same", name="stem_pool")(x)
    info = [("stem_pool", 64, 4)]
    stride = 4
    for b, (units, depth, last_stride) in enumerate(((3, 256, 2), (4, 512, 2), (6, 1024, 1),
                                                     (3, 2048, 1)), start=1):
        for u in range(units):
            x = _bottleneck(x, depth, last_stride if u == units - 1 else 1, f"block{b}_unit{u + 1}")
        stride *= last_stride
        info.append((f"block{b}_unit{units}_out", depth, stride))
    out = _compress(x)
    model = keras.Model(inputs, out, name="encoder")
    model.feature_info = info + [("compress_relu", REPRESENTATION_CHANNELS, stride)]
    return model


def _residual(x, filters, stride, name):
    shortcut = x if stride == 1 and x.shape[-1] == filters else _conv(
        x, filters, 1, stride, f"{name}_proj", act=False)
    y = _conv(x, filters, 3, stride, f"{name}_a")
    y = _conv(y, filters, 3, 1, f"{name}_b", act=False)
    return layers.ReLU(name=f"{name}_out")(layers.Add(name=f"{name}_add")([shortcut, y]))


@ENCODERS.register("small")
def small(image_size: int = 128, channels: int = 3) -> keras.Model:
    inputs = keras.Input((image_size, image_size, channels), name="image")
    x = _conv(inputs, 32, 3, 2, "stem")
    info = [("stem_relu", 32, 2)]
    for i, filters in enumerate((64, 128, 128), start=1):
        x = _residual(x, filters, 2, f"stage{i}")
        info.append((f"stage{i}_out", filters, 2 ** (i + 1)))
    out = _compress(x)
    model = keras.Model(inputs, out, name="encoder")
    model.feature_info = info + [("compress_relu", REPRESENTATION_CHANNELS, REPRESENTATION_STRIDE)]
    return model


def build_encoder(name: str, image_size: int, channels: int = 3) -> keras.Model:
    """The registered encoder ``name`` for square inputs of ``image_size`` pixels.

    Raises:
        ValueError: ``image_size`` not a multiple of 16.
        KeyError: unknown encoder (the message lists the known ones).
    """
    if image_size % REPRESENTATION_STRIDE:
        raise ValueError(f"image_size must be a multiple of {REPRESENTATION_STRIDE}, "
                         f"got {image_size}")
    return ENCODERS.get(name)(image_size, channels)
