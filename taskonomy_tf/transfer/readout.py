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


def build_transfer_model(target: str | TaskSpec, order: int, code_size: int,
                         preset: str = "small") -> keras.Model:
    """Readout for ``order`` concatenated codes of (code_size, code_size, 8).

    Raises:
        ValueError: multi-view targets (their transfers need per-view codes;
            not supported yet).
    """
    spec = get_task(target)
    if spec.views > 1:
        raise ValueError(f"transfers into multi-view task {spec.name!r} are not supported yet")
    width = REPRESENTATION_CHANNELS * order
    inputs = keras.Input((code_size, code_size, width), name="codes")
    x = layers.BatchNormalization(name="input_norm")(inputs)
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
