"""Losses, registered by the names ``TaskSpec.loss`` uses. ``keras.ops`` only.

Every loss takes ``(y_true, y_pred, sample_weight)`` and returns a scalar.
Where a validity mask exists it comes as the sample weight, and the loss is
a masked mean: the sum of weighted terms divided by the sum of the weights
(the original's slim masked losses, reference section 8.3), so masked-out
pixels neither count nor dilute.

* ``masked_l1`` / ``masked_l2``: per pixel, mean over channels;
* ``mse``: low-dimensional regression (room layout, vanishing points);
* ``soft_ce``: cross-entropy against soft class targets (per pixel for
  colorization); predictions are logits;
* ``pixel_sparse_ce``: per-pixel cross-entropy against integer labels;
* ``segment_metric``: the metric loss of the unsupervised segmentations on
  300 sampled pixels per image (reference section 3);
* ``pose_norm``: the unsquared Euclidean norm of the 6-d pose error,
  averaged over the batch;
* ``ego_cycle``: egomotion's three pose errors (12, 13, 23) as norms, the
  13 term weighted 0.5 (reference section 8.2).
"""

from __future__ import annotations

import numpy as np
from keras import losses, ops, saving

from taskonomy_tf.registry import Registry

LOSSES = Registry("loss")
SEGMENT_PIXELS = 300  # sampled pixels per image (reference section 3)
SEGMENT_CLIP = 80.0  # d_ij clipped to [0, 80]
EPS = 1e-7


def _masked_mean(values, weight):
    if weight is None:
        return ops.mean(values)
    weight = ops.cast(weight, values.dtype)
    while len(weight.shape) < len(values.shape):
        weight = ops.expand_dims(weight, -1)
    weight = ops.broadcast_to(weight, ops.shape(values))
    return ops.sum(values * weight) / ops.maximum(ops.sum(weight), 1.0)


@saving.register_keras_serializable(package="taskonomy_tf")
class TaskLoss(losses.Loss):
    """A registered loss by name; ``__call__`` applies the mask rule.

    Args:
        kind: a key of ``LOSSES``.
    """

    def __init__(self, kind: str, name: str | None = None, **kwargs):
        kwargs.pop("reduction", None)
        super().__init__(name=name or kind, reduction="none", **kwargs)
        self.kind = kind
        self.fn = LOSSES.get(kind)

    def call(self, y_true, y_pred):
        return self.fn(y_true, y_pred, None)

    def __call__(self, y_true, y_pred, sample_weight=None):
        y_pred = ops.cast(y_pred, "float32")
        return self.fn(y_true, y_pred, sample_weight)

    def get_config(self):
        return {"kind": self.kind, "name": self.name}


@LOSSES.register("masked_l1")
def masked_l1(y_true, y_pred, weight):
    return _masked_mean(ops.mean(ops.abs(ops.cast(y_true, "float32") - y_pred), -1), weight)


@LOSSES.register("masked_l2")
def masked_l2(y_true, y_pred, weight):
    return _masked_mean(ops.mean(ops.square(ops.cast(y_true, "float32") - y_pred), -1), weight)


@LOSSES.register("mse")
def mse(y_true, y_pred, weight):
    return _masked_mean(ops.mean(ops.square(ops.cast(y_true, "float32") - y_pred), -1), weight)


@LOSSES.register("soft_ce")
def soft_ce(y_true, y_pred, weight):
    logp = ops.log_softmax(y_pred, axis=-1)
    return _masked_mean(-ops.sum(ops.cast(y_true, "float32") * logp, -1), weight)


@LOSSES.register("pixel_sparse_ce")
def pixel_sparse_ce(y_true, y_pred, weight):
    labels = ops.cast(ops.squeeze(y_true, -1), "int32")
    onehot = ops.one_hot(labels, ops.shape(y_pred)[-1])
    return _masked_mean(-ops.sum(onehot * ops.log_softmax(y_pred, axis=-1), -1), weight)


def _pixel_sample(h: int, w: int, batch_index):
    """300 pixel indices per image: a fixed spread-out set, shifted per image."""
    rng = np.random.default_rng(0)
    base = rng.choice(h * w, size=min(SEGMENT_PIXELS, h * w), replace=False)
    shift = (ops.expand_dims(batch_index, -1) * 7919) % (h * w)
    base = ops.convert_to_tensor(base[None, :].astype("int32"))
    return (base + ops.cast(shift, "int32")) % (h * w)


@LOSSES.register("segment_metric")
def segment_metric(y_true, y_pred, weight):
    b = ops.shape(y_pred)[0]
    h, w, c = y_pred.shape[1], y_pred.shape[2], y_pred.shape[3]
    idx = _pixel_sample(h, w, ops.arange(b))
    emb = ops.take_along_axis(ops.reshape(y_pred, (b, h * w, c)), idx[..., None], axis=1)
    seg = ops.take_along_axis(ops.reshape(ops.cast(y_true, "int32"), (b, h * w)), idx, axis=1)
    sq = ops.sum(emb * emb, -1)
    d = sq[:, :, None] + sq[:, None, :] - 2 * ops.einsum("bic,bjc->bij", emb, emb)
    d = ops.clip(d, 0.0, SEGMENT_CLIP)
    sigma = ops.clip(2.0 / (1.0 + ops.exp(d)), EPS, 1 - EPS)
    same = ops.cast(ops.equal(seg[:, :, None], seg[:, None, :]), "float32")
    per_image = -ops.mean(same * ops.log(sigma) + (1 - same) * ops.log(1 - sigma), axis=(1, 2))
    if weight is not None and len(weight.shape) > 1:
        weight = ops.mean(ops.reshape(ops.cast(weight, "float32"), (b, -1)), -1)
    return _masked_mean(per_image, weight)


@LOSSES.register("pose_norm")
def pose_norm(y_true, y_pred, weight):
    err = ops.sqrt(ops.sum(ops.square(ops.cast(y_true, "float32") - y_pred), -1) + 1e-12)
    return _masked_mean(err, weight)


@LOSSES.register("ego_cycle")
def ego_cycle(y_true, y_pred, weight):
    diff = ops.reshape(ops.cast(y_true, "float32") - y_pred, (-1, 3, 6))
    norms = ops.sqrt(ops.sum(ops.square(diff), -1) + 1e-12)  # poses 12, 13, 23
    return _masked_mean(norms[:, 0] + 0.5 * norms[:, 1] + norms[:, 2], weight)


@LOSSES.register("none")
def no_loss(y_true, y_pred, weight):
    raise ValueError("this task has no labels to train on")
