"""Every head of a target's fused readouts scored on every test image.

The score of a head on an image is the target's own loss (``TaskSpec.loss``,
masked as in training) on that image, the number ``training.evaluate``'s
``per_image_losses`` gives a lone network. Here the predictions of all H
heads for a batch of images and their per-image losses come from one traced
call: the images' targets and weights are paired with each head's
predictions inside the graph that makes them, instead of the predictions
being copied out, moved and reshaped on the host and the targets copied
once per head (``bench/readout_scoring.py`` has what that saves).
"""

from __future__ import annotations

import numpy as np

from taskonomy_tf.models.losses import (
    LOSSES,
    POINT_LOSSES,
    SEGMENT_PIXELS,
    fixed_pixels,
    masked_row_means,
)
from taskonomy_tf.tasks import TaskSpec

# bounds one scoring batch's predictions, (images, H, ...) float32 (the
# graph's intermediates take a few times this)
SCORE_BYTES = 256 * 2**20
MAX_BATCH = 64  # images per scoring call


def uses_points(spec: TaskSpec) -> bool:
    """Whether ``spec``'s readouts predict at sampled pixels only (a dense
    target whose loss samples them: ``POINT_LOSSES``)."""
    return spec.is_dense and spec.loss in POINT_LOSSES


def point_count(spec: TaskSpec, image_size: int) -> int:
    """Pixels a sampling loss reads per image: ``SEGMENT_PIXELS``, or the
    whole map when it is smaller."""
    side = spec.output_shape(image_size)[0]
    return min(SEGMENT_PIXELS, side * side)


def batch_images(spec: TaskSpec, heads: int, image_size: int) -> int:
    """Images per scoring call: at most ``MAX_BATCH``, the H heads'
    predictions of a batch within ``SCORE_BYTES``."""
    shape = spec.output_shape(image_size)
    if uses_points(spec):  # scored on fixed_pixels
        shape = (point_count(spec, image_size), shape[-1])
    return int(np.clip(SCORE_BYTES // (4 * heads * int(np.prod(shape))), 1, MAX_BATCH))


def score_heads(model, spec: TaskSpec, heads: int, test, image_size: int, replicates: int,
                sources: bool, pixels: bool) -> np.ndarray:
    """Each head's loss on each test image.

    Args:
        model: the fused readouts (``readout.build_readouts``): inputs
            ``codes`` (B, R, K V, c, c, 8), ``images`` (B, R, ...) and, with
            ``points``, ``points`` (B, P, H) int32; output (B, ..., H, C).
        spec: the target.
        heads: H, the model's heads.
        test: ``readout.ReadoutArrays`` of the N test images.
        image_size: the side of the images, pixels.
        replicates: R; every replicate reads the same test images.
        sources, pixels: whether the model reads codes and images.

    Heads that predict at sampled pixels only (``uses_points``) are scored
    on ``fixed_pixels``, as ``per_image_losses`` scores a whole map.

    Returns:
        (H, N) float64.
    """
    fn = _scorer(model, spec, heads, replicates, image_size, uses_points(spec))
    step = batch_images(spec, heads, image_size)
    out = []
    for start in range(0, len(test.y), step):
        sl = slice(start, start + step)
        feed = {}
        if sources:
            feed["codes"] = test.codes[sl]
        if pixels:
            feed["images"] = test.images[sl]
        out.append(np.asarray(fn(feed, np.asarray(test.y[sl], np.float32),
                                 np.asarray(test.w[sl], np.float32))))
    return np.concatenate(out).T.astype(np.float64)


def _scorer(model, spec: TaskSpec, heads: int, replicates: int, image_size: int,
            points: bool):
    """The traced scoring call of one model: ``(feed, y, w) -> (B, H)``
    float32, the batch left open (the last one is short). TensorFlow is
    imported here, not with the module: the readouts' model code, which
    imports this module, also runs under the JAX backend."""
    import tensorflow as tf

    shape = spec.output_shape(image_size)
    fixed = tf.constant(np.asarray(fixed_pixels(shape[0] * shape[1]))) if points else None
    fn = POINT_LOSSES[spec.loss] if points else LOSSES.get(spec.loss)

    def per_head(x):  # (B, ...) -> (B H, ...): each image's rows once per head
        return tf.repeat(x, heads, axis=0)

    @tf.function(reduce_retracing=True)
    def score(feed, y, w):
        b = tf.shape(y)[0]
        inputs = {k: tf.repeat(v[:, None], replicates, 1) for k, v in feed.items()}
        if points:
            inputs["points"] = tf.broadcast_to(fixed[None, :, None], (b, len(fixed), heads))
        pred = tf.cast(model(inputs, training=False), tf.float32)  # (B, ..., H, C)
        rank = pred.shape.rank
        pred = tf.transpose(pred, [0, rank - 2, *range(1, rank - 2), rank - 1])
        pred = tf.reshape(pred, tf.concat([[-1], tf.shape(pred)[2:]], 0))  # (B H, ..., C)
        if points:  # labels at the fixed pixels; an image's weight: its valid pixels
            y = tf.gather(tf.reshape(y, (b, -1, tf.shape(y)[-1])), fixed, axis=1)
            valid = tf.reduce_sum(tf.reshape(w, (b, -1)), 1, keepdims=True)  # (B, 1)
            values = tf.cast(fn(per_head(y), pred), tf.float32)
            return tf.where(valid > 0, tf.reshape(values, (b, heads)), 0.0)
        values = tf.cast(fn(per_head(y), pred, None), tf.float32)
        w = per_head(w)
        if w.shape.rank == values.shape.rank + 1:
            w = tf.squeeze(w, -1)
        return tf.reshape(masked_row_means(values, tf.broadcast_to(w, tf.shape(values))),
                          (b, heads))

    return score

