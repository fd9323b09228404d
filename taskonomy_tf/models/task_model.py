"""``build_task_model``: encoder + the task's decoder as one Keras model.

Inputs and outputs match ``taskonomy_tf.data.make_dataset``: the input is
the image (or (V, S, S, 3) views, or the luminance for colorization), the
output a dict ``{task name: prediction}`` so ``compile`` and ``fit`` take
the dataset's dicts of targets and weights as they are.
"""

from __future__ import annotations

import keras
import numpy as np
from keras import layers

from taskonomy_tf.errors import InputError, UnknownNameError
from taskonomy_tf.models.decoders import PRESETS, conv_decoder, fc_head
from taskonomy_tf.models.encoders import build_encoder, code_stride
from taskonomy_tf.models.layers import OutputPrior
from taskonomy_tf.models.losses import TaskLoss
from taskonomy_tf.models.metrics import TaskMetric
from taskonomy_tf.tasks import OutputKind, TaskSpec, get_task

INPUT_CHANNELS = {"luminance": 1}  # input rules with other than 3 channels
DEFAULT_PRESET = {"resnet50": "paper"}


def input_shape(spec: TaskSpec, image_size: int) -> tuple[int, ...]:
    """Shape of one input example as ``make_dataset`` yields it."""
    image = (image_size, image_size, INPUT_CHANNELS.get(spec.input, 3))
    return (spec.views, *image) if spec.views > 1 else image


def build_task_model(task: str | TaskSpec, encoder: str | keras.Model = "small",
                     image_size: int = 128, decoder: str | None = None,
                     prior: np.ndarray | None = None) -> keras.Model:
    """The task network: a fresh (or given) encoder, the spec's decoder and
    the constant prior it refines.

    Args:
        task: task name, alias or spec.
        encoder: a registered encoder name, or a built encoder model
            following the contract of ``models.encoders``.
        image_size: side of the square input in pixels (multiple of 16).
        decoder: width preset, ``paper`` or ``small`` (default: ``paper``
            for ``resnet50``, else ``small``).
        prior: the task's best constant prediction (``constant.best_constant``
            on the training split), of one output's shape; zeros if omitted.
            The untrained network predicts exactly this.

    Returns:
        An uncompiled ``keras.Model`` named ``<task>_model`` whose encoder
        is the layer named ``encoder``; compile it with ``compile_task_model``
        or your own settings.
    """
    spec = get_task(task)
    if spec.output is OutputKind.NONE:
        raise InputError(f"task {spec.name!r} has no labels; it is a frozen random encoder")
    shape = input_shape(spec, image_size)
    if isinstance(encoder, str):
        preset = decoder or DEFAULT_PRESET.get(encoder, "small")
        enc = build_encoder(encoder, image_size, shape[-1])
    else:
        preset = decoder or "small"
        enc = encoder
    if preset not in PRESETS:
        raise UnknownNameError(f"unknown decoder preset {preset!r}; known: {', '.join(PRESETS)}")
    inputs = keras.Input(shape, name="image")
    if spec.views > 1:
        codes = layers.TimeDistributed(enc, name="encoder_views")(inputs)
        out = fc_head(codes, spec, preset)
    else:
        code = enc(inputs)
        out = (conv_decoder(code, spec, preset, code_stride(image_size)) if spec.is_dense
               else fc_head(code, spec, preset))
    out = OutputPrior(spec.output_shape(image_size), prior, name=spec.name)(out)
    return keras.Model(inputs, {spec.name: out}, name=f"{spec.name}_model")


def compile_task_model(model: keras.Model, task: str | TaskSpec, learning_rate=1e-4,
                       clipnorm: float | None = None, **kwargs) -> keras.Model:
    """Compiles with Adam (``learning_rate``: a float or a Keras schedule;
    under a ``mixed_float16`` policy inside a ``LossScaleOptimizer``), the
    spec's loss and metric (weighted by the masks)."""
    spec = get_task(task)
    optimizer = keras.optimizers.Adam(learning_rate, clipnorm=clipnorm)
    if keras.mixed_precision.dtype_policy().name == "mixed_float16":
        # explicit, so that the saved compile config names it: a model.keras
        # loaded under another global policy then gets the loss scale's
        # variables back instead of skipping the optimizer's state
        optimizer = keras.optimizers.LossScaleOptimizer(optimizer)
    model.compile(
        optimizer=optimizer,
        loss={spec.name: TaskLoss(spec.loss)},
        weighted_metrics={spec.name: [TaskMetric(spec.metric)]},
        **kwargs,
    )
    return model


def get_encoder(model: keras.Model) -> keras.Model:
    """The encoder inside a task model (also behind a TimeDistributed wrapper)."""
    for layer in model.layers:
        if layer.name == "encoder":
            return layer
        if isinstance(layer, layers.TimeDistributed) and layer.layer.name == "encoder":
            return layer.layer
    raise InputError(f"{model.name} has no layer named 'encoder'")
