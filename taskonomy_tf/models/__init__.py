"""Task networks: encoders, decoders, losses and metrics (Keras 3, ``keras.ops``)."""

from taskonomy_tf.models.encoders import ENCODERS, build_encoder
from taskonomy_tf.models.losses import LOSSES, TaskLoss
from taskonomy_tf.models.metrics import METRICS, TaskMetric
from taskonomy_tf.models.task_model import (
    build_task_model,
    compile_task_model,
    get_encoder,
    input_shape,
)

__all__ = ["ENCODERS", "LOSSES", "METRICS", "TaskLoss", "TaskMetric", "build_encoder",
           "build_task_model", "compile_task_model", "get_encoder", "input_shape"]
