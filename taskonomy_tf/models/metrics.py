"""Evaluation metrics, registered by the names ``TaskSpec.metric`` uses.

Each is averaged with the same weights as the losses (``keras.ops``):
``mae``, ``rmse`` (root of the weighted mean square), ``angle_deg`` (angle
between predicted and true normals, degrees), ``top1`` (arg-max against
the arg-max of the soft target), ``pixel_accuracy``, ``pose_error`` (norm
of the error vector) and ``segment_metric`` (the metric loss itself).
A metric function returns ``(values, weights)`` to average.
"""

from __future__ import annotations

import math

from keras import metrics, ops, saving

from taskonomy_tf.models.losses import masked_loss
from taskonomy_tf.registry import Registry

METRICS = Registry("metric")


def _weights(values, weight):
    if weight is None:
        return None
    return ops.broadcast_to(ops.cast(weight, "float32"), ops.shape(values))


@METRICS.register("mae")
def mae(y_true, y_pred, weight):
    v = ops.mean(ops.abs(ops.cast(y_true, "float32") - y_pred), -1)
    return v, _weights(v, weight)


@METRICS.register("rmse")
def squared_error(y_true, y_pred, weight):
    v = ops.mean(ops.square(ops.cast(y_true, "float32") - y_pred), -1)
    return v, _weights(v, weight)


@METRICS.register("angle_deg")
def angle_deg(y_true, y_pred, weight):
    t = ops.cast(y_true, "float32")
    cos = ops.sum(t * y_pred, -1) / (ops.norm(t, axis=-1) * ops.norm(y_pred, axis=-1) + 1e-6)
    v = ops.arccos(ops.clip(cos, -1.0, 1.0)) * (180.0 / math.pi)
    return v, _weights(v, weight)


@METRICS.register("top1")
def top1(y_true, y_pred, weight):
    v = ops.cast(ops.equal(ops.argmax(y_true, -1), ops.argmax(y_pred, -1)), "float32")
    return v, _weights(v, weight)


@METRICS.register("pixel_accuracy")
def pixel_accuracy(y_true, y_pred, weight):
    labels = ops.cast(ops.squeeze(y_true, -1), "int32")
    v = ops.cast(ops.equal(labels, ops.cast(ops.argmax(y_pred, -1), "int32")), "float32")
    return v, _weights(v, weight)


@METRICS.register("pose_error")
def pose_error(y_true, y_pred, weight):
    v = ops.sqrt(ops.sum(ops.square(ops.cast(y_true, "float32") - y_pred), -1))
    return v, _weights(v, weight)


@METRICS.register("segment_metric")
def segment_metric(y_true, y_pred, weight):
    return ops.reshape(masked_loss("segment_metric")(y_true, y_pred, weight), (1,)), None


@saving.register_keras_serializable(package="taskonomy_tf")
class TaskMetric(metrics.Mean):
    """A registered metric by name, averaged with the sample weights.

    Args:
        kind: a key of ``METRICS``.
    """

    def __init__(self, kind: str, name: str | None = None, **kwargs):
        super().__init__(name=name or kind, **kwargs)
        self.kind = kind
        self.fn = METRICS.get(kind)

    def update_state(self, y_true, y_pred, sample_weight=None):
        values, weight = self.fn(y_true, ops.cast(y_pred, "float32"), sample_weight)
        return super().update_state(values, sample_weight=weight)

    def result(self):
        r = super().result()
        return ops.sqrt(r) if self.kind == "rmse" else r

    def get_config(self):
        return {"kind": self.kind, "name": self.name}
