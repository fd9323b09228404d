"""Per-image losses and the constant baseline of a task on a split.

The yardstick of every network and transfer in this toolkit is the task's
own loss per image (``TaskSpec.loss``, masked as in training), averaged over
images; the floor it is compared with is the best constant prediction
(``models.constant``) fitted on training examples. Both are computed here,
the same way for task networks (``metrics.json``) and for transfers.
"""

from __future__ import annotations

import functools

import numpy as np
import tensorflow as tf

from taskonomy_tf.data.records import id_strings
from taskonomy_tf.errors import InputError
from taskonomy_tf.models.constant import best_constant
from taskonomy_tf.models.losses import LOSSES, POINT_LOSSES, masked_row_means
from taskonomy_tf.tasks import TaskSpec

CONSTANT_EXAMPLES = 2048  # training examples the constant is fitted on (a sample at scale)


def per_image_losses(spec: TaskSpec, y, pred, w, chunk: int = 256) -> np.ndarray:
    """The target's loss (``TaskSpec.loss``, masked as in training) per image.

    Args:
        y, pred, w: targets, predictions and sample weights of N images.
        chunk: images per traced call (bounds the memory of pairwise losses).

    Returns:
        (N,) float64: each image's masked mean of the registered loss's
        values, as ``masked_mean`` computes it for a batch of that one image
        (every registered loss is per pixel or per example; the sampled
        segmentation metric scores every image on the same fixed pixels).
    """
    y, w = np.asarray(y), np.asarray(w)
    pred = np.asarray(pred, "float32")
    fn = _per_image_fn(spec.loss, _spec(y), _spec(pred), _spec(w))
    out = [np.asarray(fn(y[i:i + chunk], pred[i:i + chunk], w[i:i + chunk]))
           for i in range(0, len(y), chunk)]
    return np.concatenate(out).astype("float64") if out else np.zeros(0)


def per_image_point_losses(spec: TaskSpec, y, pred, valid, chunk: int = 256) -> np.ndarray:
    """A sampling loss (``models.losses.POINT_LOSSES``) per image on pixels
    drawn beforehand: y (N, P, 1) labels and pred (N, P, C) predictions at
    them, valid (N,) the image's valid pixels -> (N,) float64, each image's
    value, 0 where nothing is valid (as ``per_image_losses`` scores the
    whole map on those pixels)."""
    y, valid = np.asarray(y, "float32"), np.asarray(valid)
    pred = np.asarray(pred, "float32")
    fn = _per_point_fn(spec.loss, _spec(y), _spec(pred))
    out = [np.asarray(fn(y[i:i + chunk], pred[i:i + chunk])) for i in range(0, len(y), chunk)]
    values = np.concatenate(out).astype("float64") if out else np.zeros(0)
    return np.where(valid > 0, values, 0.0)


@functools.cache
def _per_point_fn(kind: str, y_spec: tf.TensorSpec, p_spec: tf.TensorSpec):
    fn = POINT_LOSSES[kind]
    return tf.function(lambda y, p: tf.cast(fn(y, p), tf.float32),
                       input_signature=(y_spec, p_spec))


def _spec(array: np.ndarray) -> tf.TensorSpec:
    """A batch of any size of ``array``'s examples."""
    return tf.TensorSpec((None, *array.shape[1:]), tf.as_dtype(array.dtype))


@functools.cache
def _per_image_fn(kind: str, y_spec: tf.TensorSpec, p_spec: tf.TensorSpec,
                  w_spec: tf.TensorSpec):
    """One traced function per loss and example shapes, the batch left open
    (the last chunk is short): losses that sample pixels need the image's
    height and width as numbers, which a relaxed trace would hide."""
    fn = LOSSES.get(kind)
    w_rank = len(w_spec.shape)

    @tf.function(input_signature=(y_spec, p_spec, w_spec))
    def each(y, p, w):
        values = tf.cast(fn(y, p, None), tf.float32)
        w = tf.cast(w, tf.float32)
        if w_rank == values.shape.rank + 1:
            w = tf.squeeze(w, -1)
        return masked_row_means(values, tf.broadcast_to(w, tf.shape(values)))

    return each


def split_arrays(dataset: tf.data.Dataset, task: str, limit: int | None = None,
                 images: bool = False) -> tuple[np.ndarray, ...]:
    """``(targets, weights[, images][, ids])`` of a ``make_dataset`` stream,
    as arrays (its first ``limit`` examples when given); ``ids`` (N,) str
    when the stream carries them (``make_dataset(..., with_ids=True)``)."""
    xs, ys, ws, ids = [], [], [], []
    n = 0
    for x, y, w, *ident in dataset:
        ys.append(np.asarray(y[task]))
        ws.append(np.asarray(w[task]))
        if images:
            xs.append(np.asarray(x))
        if ident:
            ids.append(id_strings(ident[0]))
        n += len(ys[-1])
        if limit and n >= limit:
            break
    if not ys:
        raise InputError(f"no examples for task {task!r} in this split")
    out = [np.concatenate(ys), np.concatenate(ws)] + ([np.concatenate(xs)] if images else [])
    out += [np.concatenate(ids)] if ids else []
    return tuple(a[:limit] for a in out)


def fit_constant(spec: TaskSpec, dataset: tf.data.Dataset,
                 limit: int = CONSTANT_EXAMPLES) -> tuple[np.ndarray, int]:
    """The best constant prediction on (up to ``limit``) examples of a split.

    Returns:
        (prediction of one example's shape, float32; examples used).
    """
    y, w = split_arrays(dataset, spec.name, limit)
    return best_constant(spec.loss, y, w, spec.channels), len(y)


def mean_loss(spec: TaskSpec, model, dataset: tf.data.Dataset) -> float:
    """Mean per-image loss of ``model`` over a finite ``make_dataset`` stream."""
    losses = [per_image_losses(spec, np.asarray(y[spec.name]),
                               model.predict_on_batch(x)[spec.name], np.asarray(w[spec.name]))
              for x, y, w in dataset]
    return float(np.concatenate(losses).mean())


def constant_loss(spec: TaskSpec, constant: np.ndarray, dataset: tf.data.Dataset) -> float:
    """Mean per-image loss of always predicting ``constant`` over a stream."""
    losses = []
    for _, y, w in dataset:
        y, w = np.asarray(y[spec.name]), np.asarray(w[spec.name])
        pred = np.broadcast_to(constant, (len(y),) + constant.shape).astype("float32")
        losses.append(per_image_losses(spec, y, pred, w))
    return float(np.concatenate(losses).mean())
