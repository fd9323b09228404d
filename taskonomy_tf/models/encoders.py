"""Encoders: an image in, a fixed-size post-ReLU representation out.

Contract (the paper's: a 256 x 256 image -> 16 x 16 x 8, post-ReLU,
reference section 3): ``build_encoder(name, image_size)`` returns a
``keras.Model`` named ``encoder`` mapping (S, S, C) to a (16, 16, 8) code,
with the attribute ``feature_info`` = [(layer name, channels, stride)] of
its stages. The 16 x 16 x 8 contract is a shape, not a stride: the code's
stride is ``code_stride(S)`` = S / 16 (16 at the paper's 256 px, 8 at
128, 4 at 64; powers of two, never below 4: a 32 px input gives 8 x 8). At
64 px a stride of 16 would leave a 4 x 4 x 8 code of 128 numbers, whose
effective rank on the embedded data was 2-12: too little to transfer from.
A transfer swaps any such model in.

Registered encoders (``ENCODERS``):
* ``resnet50``: ResNet-50 v1 as in the original (blocks 3, 4, 6, 3 of
  bottlenecks 256/512/1024/2048; stride 2 in the *last* unit of blocks 1
  and 2, blocks 3 and 4 at stride 1, no global pooling), then a 3x3 conv to
  8 channels with BN and ReLU. BN momentum 0.9, epsilon 1e-5. Below 256 px,
  block 2 (then block 1) keeps stride 1 so the code stays 16 x 16.
* ``small``: the same contract at a CPU-friendly cost. A stride-2 stem and
  residual stages down to 4 x 4 (a receptive field over the whole image),
  then a top-down path (feature pyramid: upsample, concatenate the stage
  of that resolution, 3x3 conv) back to the code's resolution, so every
  code cell sees both its neighbourhood and the whole scene; then the same
  8-channel compression. Widths by stride: 24, 48, 96, 128, 160 channels at
  strides 2 to 32; about 0.6 M parameters at 64 px.
"""

from __future__ import annotations

import keras
from keras import layers

from taskonomy_tf.errors import InputError
from taskonomy_tf.registry import Registry

ENCODERS = Registry("encoder")
REPRESENTATION_CHANNELS = 8  # 16x16x8 representation (reference section 3)
REPRESENTATION_SIDE = 16
MIN_CODE_STRIDE = 4  # below this the encoder would do little more than pixels
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


def code_stride(image_size: int) -> int:
    """Stride of the code for a square input: the largest power of two at
    most ``image_size / 16``, and at least 4 (so 16 at 256 px, 8 at 128, 4
    at 64; a code of at least 16 x 16 from 64 px up).

    Raises:
        ValueError: ``image_size`` not a multiple of 16.
    """
    if image_size % REPRESENTATION_SIDE or image_size < REPRESENTATION_SIDE:
        raise InputError(f"image_size must be a multiple of {REPRESENTATION_SIDE}, "
                         f"got {image_size}")
    return max(MIN_CODE_STRIDE, 1 << ((image_size // REPRESENTATION_SIDE).bit_length() - 1))


@ENCODERS.register("resnet50")
def resnet50(image_size: int = 256, channels: int = 3) -> keras.Model:
    stride_needed = code_stride(image_size) // 4  # after the stem's stride 4
    # the paper's strides (2 in blocks 1 and 2) at 256 px; below, block 2 then
    # block 1 keep stride 1 so the code stays 16 x 16
    block_strides = {1: 2 if stride_needed >= 2 else 1, 2: 2 if stride_needed >= 4 else 1}
    inputs = keras.Input((image_size, image_size, channels), name="image")
    x = _conv(inputs, 64, 7, 2, "stem")
    x = layers.MaxPooling2D(3, 2, padding="same", name="stem_pool")(x)
    info = [("stem_pool", 64, 4)]
    stride = 4
    for b, (units, depth) in enumerate(((3, 256), (4, 512), (6, 1024), (3, 2048)), start=1):
        last_stride = block_strides.get(b, 1)
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


SMALL_WIDTHS = {2: 24, 4: 48, 8: 96, 16: 128, 32: 160, 64: 192}  # channels per stride
SMALL_TOP_DOWN = 64  # channels of the top-down path
SMALL_TOP_SIDE = 4  # the bottom-up stages go down to 4 x 4


@ENCODERS.register("small")
def small(image_size: int = 128, channels: int = 3) -> keras.Model:
    target = code_stride(image_size)
    top = max(target, image_size // SMALL_TOP_SIDE)
    inputs = keras.Input((image_size, image_size, channels), name="image")
    x = _conv(inputs, SMALL_WIDTHS[2], 3, 2, "stem")
    info = [("stem_relu", SMALL_WIDTHS[2], 2)]
    stages = {2: x}
    stride = 2
    while stride < top:
        stride *= 2
        x = _residual(x, SMALL_WIDTHS[stride], 2, f"stage{stride}")
        stages[stride] = x
        info.append((f"stage{stride}_out", SMALL_WIDTHS[stride], stride))
    while stride > target:  # top-down: upsample and merge the finer stage
        stride //= 2
        x = layers.UpSampling2D(2, name=f"topdown{stride}_up")(x)
        x = layers.Concatenate(name=f"topdown{stride}_merge")([x, stages[stride]])
        x = _conv(x, SMALL_TOP_DOWN, 3, 1, f"topdown{stride}")
        info.append((f"topdown{stride}_relu", SMALL_TOP_DOWN, stride))
    out = _compress(x)
    model = keras.Model(inputs, out, name="encoder")
    model.feature_info = info + [("compress_relu", REPRESENTATION_CHANNELS, target)]
    return model


def build_encoder(name: str, image_size: int, channels: int = 3) -> keras.Model:
    """The registered encoder ``name`` for square inputs of ``image_size`` pixels.

    Returns:
        A model (S, S, channels) float32 -> (S / stride, S / stride, 8)
        post-ReLU, stride ``code_stride(S)`` (a 16 x 16 code from 64 px up).

    Raises:
        ValueError: ``image_size`` not a multiple of 16 (see ``code_stride``).
        KeyError: unknown encoder (the message lists the known ones).
    """
    code_stride(image_size)
    return ENCODERS.get(name)(image_size, channels)
