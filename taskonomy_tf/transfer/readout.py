"""The transfer function: frozen source codes -> the target's prediction.

As the reference describes the released transfer networks (section 4):
the source representations, concatenated along channels for higher
orders, pass an input normalisation (BatchNorm), two parallel streams of
two 3x3 convolutions with BN and ReLU (8 x order channels each), a
concatenation and a BatchNorm, then the target's own decoder kind, built
from scratch. The frozen encoders are not part of this model: it trains on
cached codes, so no encoder weight or BatchNorm statistic can change.
"""

from __future__ import annotations

import keras
from keras import layers

from taskonomy_tf.models.decoders import conv_decoder, fc_head
from taskonomy_tf.models.encoders import REPRESENTATION_CHANNELS, REPRESENTATION_STRIDE
from taskonomy_tf.tasks import TaskSpec, get_task


def pixels_front(image_size: int, code_size: int) -> tuple[keras.KerasTensor, keras.KerasTensor]:
    """The ``pixels`` baseline's small side encoder, trained from scratch.

    As the original ``..._pix_only`` transfer (reference section 4): the
    image is resized to 4x the code side (64 px for 16x16 codes), passes a
    3x3 convolution, then a stride-4 convolution down to the code grid with
    the representation's 8 channels.

    Returns:
        (image input (S, S, 3) float32 in [-1, 1], codes (c, c, 8)).
    """
    image = keras.Input((image_size, image_size, 3), name="image")
    x = layers.Resizing(4 * code_size, 4 * code_size, name="side_resize")(image)
    x = layers.Conv2D(16, 3, padding="same", activation="relu", name="side_conv")(x)
    x = layers.Conv2D(REPRESENTATION_CHANNELS, 4, strides=4, name="side_down")(x)
    return image, x


def build_transfer_model(target: str | TaskSpec, order: int, code_size: int,
                         preset: str = "small", pixels_image_size: int | None = None
                         ) -> keras.Model:
    """Readout for ``order`` concatenated codes of (code_size, code_size, 8).

    With ``pixels_image_size``, the input is the image instead and the codes
    come from :func:`pixels_front` (the ``pixels`` baseline; ``order`` 1).

    Raises:
        ValueError: multi-view targets (their transfers need per-view codes;
            not supported yet).
    """
    spec = get_task(target)
    if spec.views > 1:
        raise ValueError(f"transfers into multi-view task {spec.name!r} are not supported yet")
    width = REPRESENTATION_CHANNELS * order
    if pixels_image_size:
        inputs, codes = pixels_front(pixels_image_size, code_size)
    else:
        inputs = codes = keras.Input((code_size, code_size, width), name="codes")
    x = layers.BatchNormalization(name="input_norm")(codes)
    streams = []
    for s in range(2):
        y = x
        for i in range(2):
            y = layers.Conv2D(width, 3, padding="same", use_bias=False, name=f"stream{s}_conv{i}")(y)
            y = layers.BatchNormalization(name=f"stream{s}_bn{i}")(y)
            y = layers.ReLU(name=f"stream{s}_relu{i}")(y)
        streams.append(y)
    x = layers.BatchNormalization(name="merge_bn")(layers.Concatenate(name="merge")(streams))
    out = (conv_decoder(x, spec, preset, REPRESENTATION_STRIDE) if spec.is_dense
           else fc_head(x, spec, preset))
    return keras.Model(inputs, {spec.name: out}, name=f"transfer_to_{spec.name}")
