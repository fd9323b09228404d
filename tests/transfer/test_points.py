"""Readouts into a target whose loss samples pixels (the segmentation metric)
predict at those pixels only: the same numbers as the whole map read there."""

from __future__ import annotations

import numpy as np
import pytest

from taskonomy_tf.models.losses import segment_points
from taskonomy_tf.tasks import get_task
from taskonomy_tf.transfer.readout import (
    HeadsLoss,
    ReadoutArrays,
    build_readouts,
    plan_heads,
)
from taskonomy_tf.transfer.scoring import point_count

SIZE = 32
TARGET = "segment_unsup2d"


def _setup(rng, batch=3):
    spec = get_task(TARGET)
    side = spec.output_shape(SIZE)[0]
    heads = plan_heads([("a",), ("b",), ("a", "b")], [0, 1])  # two orders, two replicates
    # small enough that embedding distances stay below the metric's clip
    prior = 0.1 * rng.normal(size=spec.output_shape(SIZE)).astype("float32")
    point = build_readouts(TARGET, heads, ["a", "b"], SIZE, prior)
    full = build_readouts(TARGET, heads, ["a", "b"], SIZE, prior, points=False)
    assert [w.shape for w in full.weights] == [w.shape for w in point.weights]
    full.set_weights(point.get_weights())
    codes = np.maximum(rng.normal(size=(batch, 2, 2, SIZE // 4, SIZE // 4, 8)), 0)
    p = point_count(spec, SIZE)
    pixels = np.stack([np.stack([rng.permutation(side * side)[:p] for _ in heads], -1)
                       for _ in range(batch)]).astype("int32")  # (B, P, H), own per head
    return spec, heads, point, full, codes.astype("float32"), pixels


def _at(full_map, pixels):
    """(B, S, S, H, C) read at (B, P, H) -> (B, P, H, C)."""
    b, s, _, h, c = full_map.shape
    flat = np.asarray(full_map).reshape(b, s * s, h, c)
    return np.take_along_axis(flat, pixels[..., None], axis=1)


def test_point_readouts_are_the_whole_map_at_those_pixels():
    rng = np.random.default_rng(0)
    _, heads, point, full, codes, pixels = _setup(rng)
    assert pixels.shape[1] == 300  # the metric's sample of a 32 x 32 map
    out = np.asarray(point({"codes": codes, "points": pixels}))
    whole = np.asarray(full({"codes": codes}))
    assert whole.shape[1:] == (SIZE, SIZE, len(heads), 64)
    assert out.shape == (3, 300, len(heads), 64)
    np.testing.assert_allclose(out, _at(whole, pixels), rtol=1e-5, atol=1e-5)
    prior = np.asarray(point.get_layer("prior").prior).reshape(-1, 64)
    assert np.abs(out - prior[pixels]).max() > 0.1  # the heads add to the prior


def test_point_loss_and_gradients_are_the_whole_maps_on_the_same_pixels():
    """One training step's loss and every weight's gradient: the point
    readouts with ``HeadsLoss`` against the whole map's metric on the same
    pixels, images weighed by their valid pixels (one image has none)."""
    import tensorflow as tf

    rng = np.random.default_rng(1)
    spec, heads, point, full, codes, pixels = _setup(rng)
    side = spec.output_shape(SIZE)[0]
    ids = rng.integers(0, 4, (3, 2, side * side)).astype("float32")  # per replicate
    valid = (rng.uniform(size=(3, 2, side * side)) > 0.3).astype("float32")
    valid[1, 0] = 0  # replicate 0's second image: no valid pixel
    rows = [h.replicate for h in heads]
    labels = np.stack([np.take_along_axis(ids[:, r], pixels[..., h], 1)
                       for h, r in enumerate(rows)], -1)  # (B, P, H)
    weight = np.stack([np.broadcast_to(valid[:, r].sum(1, keepdims=True) / pixels.shape[1],
                                       labels.shape[:2]) for r in rows], -1)
    y = np.stack([labels, weight], -1).astype("float32")
    with tf.GradientTape() as tape:
        loss = HeadsLoss(spec.loss, rows)(y, point({"codes": codes, "points": pixels},
                                                   training=True))
    with tf.GradientTape() as whole_tape:
        emb = full({"codes": codes}, training=True)  # (B, S, S, H, C)
        flat = tf.reshape(emb, (3, side * side, len(heads), -1))
        expected = 0.0
        for h, r in enumerate(rows):
            at = tf.gather(flat[:, :, h], pixels[..., h], batch_dims=1)
            per_image = segment_points(labels[..., h], at)
            counts = valid[:, r].sum(1)
            expected += tf.reduce_sum(per_image * counts) / counts.sum()
    assert float(loss) == pytest.approx(float(expected), rel=1e-5)
    grads = tape.gradient(loss, point.trainable_weights)
    whole = whole_tape.gradient(expected, full.trainable_weights)
    assert len(grads) == len(whole)
    for g, e, w in zip(grads, whole, point.trainable_weights):
        np.testing.assert_allclose(np.asarray(g), np.asarray(e), rtol=1e-3, atol=1e-6,
                                   err_msg=w.path)
    # every layer learns (no clipped distances): the comparison is not of zeros
    assert min(float(tf.norm(g)) for g in grads) > 0


def test_point_scores_are_the_whole_maps_per_image_losses():
    """Test images are scored on the metric's fixed pixels: the point
    readouts' scores equal ``per_image_losses`` of the whole maps."""
    from taskonomy_tf.training.evaluate import per_image_losses
    from taskonomy_tf.transfer.scoring import score_heads

    rng = np.random.default_rng(2)
    spec, heads, point, full, codes, _ = _setup(rng)
    n = 5
    test_codes = np.maximum(rng.normal(size=(n, 2, SIZE // 4, SIZE // 4, 8)), 0)
    test_codes = test_codes.astype("float32")
    y = rng.integers(0, 4, (n, SIZE, SIZE, 1)).astype("float32")
    w = (rng.uniform(size=(n, SIZE, SIZE)) > 0.5).astype("float32")
    w[3] = 0  # nothing valid: 0, as per_image_losses gives it
    test = ReadoutArrays(test_codes, y, w)
    scores = score_heads(point, spec, len(heads), test, SIZE, replicates=2, sources=True,
                         pixels=False)
    whole = np.asarray(full({"codes": np.repeat(test_codes[:, None], 2, 1)}))
    expected = np.stack([per_image_losses(spec, y, whole[..., h, :], w)
                         for h in range(len(heads))])
    assert scores.shape == (len(heads), n)
    np.testing.assert_allclose(scores, expected, rtol=1e-5)
    assert (scores[:, 3] == 0).all() and (scores[:, :3] > 0).all()
