"""Training task networks: ``train_and_evaluate``, ``load_encoder``, ``TrainConfig``;
``FixedValidationDraw`` for your own ``model.fit`` with a sampling loss."""

from taskonomy_tf.training.callbacks import FixedValidationDraw, TrainingError
from taskonomy_tf.training.config import TrainConfig, apply_overrides
from taskonomy_tf.training.loop import is_finished, load_encoder, train_and_evaluate

__all__ = ["FixedValidationDraw", "TrainConfig", "TrainingError", "apply_overrides",
           "is_finished", "load_encoder", "train_and_evaluate"]
