"""The constant baseline is the best constant, by brute force."""

from __future__ import annotations

import numpy as np
import pytest

from taskonomy_tf.models.constant import best_constant, geometric_median, weighted_median
from taskonomy_tf.models.losses import masked_loss


def _mean_per_image_loss(kind, y, pred, w):
    return np.mean([float(masked_loss(kind)(y[i:i + 1], pred[None].astype("float32"),
                                           w[i:i + 1])) for i in range(len(y))])


@pytest.mark.parametrize("kind", ["masked_l1", "masked_l2"])
def test_best_constant_beats_every_other_constant(kind):
    rng = np.random.default_rng(0)
    y = rng.exponential(size=(7, 2, 2, 1)).astype("float32")  # skewed: median != mean
    w = (rng.uniform(size=(7, 2, 2)) > 0.3).astype("float32")
    w[:, 0, 0] = 1.0
    best = best_constant(kind, y, w)
    assert best.shape == (2, 2, 1)
    floor = _mean_per_image_loss(kind, y, best, w)
    grid = np.linspace(y.min(), y.max(), 41)
    for p in range(4):  # each pixel alone: no grid value does better
        for value in grid:
            other = best.copy().reshape(-1)
            other[p] = value
            assert floor <= _mean_per_image_loss(kind, y, other.reshape(2, 2, 1), w) + 1e-6


def test_median_and_mean_known_values():
    y = np.array([[1.0], [2.0], [10.0]])[:, :, None, None]  # 3 images of 1x1 pixel
    assert best_constant("masked_l1", y)[0, 0, 0] == 2.0
    assert best_constant("masked_l2", y)[0, 0, 0] == pytest.approx(13 / 3)
    w = np.array([1.0, 0.0, 1.0])[:, None, None]  # the middle image has no label
    assert best_constant("masked_l2", y, w)[0, 0, 0] == pytest.approx(5.5)
    np.testing.assert_array_equal(weighted_median(np.array([[3.0], [1.0], [2.0]]),
                                                  np.array([[1.0], [1.0], [5.0]])), [2.0])


def test_cross_entropy_constant_is_the_log_of_the_mean_distribution():
    y = np.array([[0.5, 0.5, 0.0], [0.0, 1.0, 0.0]], "float32")
    np.testing.assert_allclose(np.exp(best_constant("soft_ce", y)), [0.25, 0.75, 1e-6],
                               rtol=1e-5)
    labels = np.array([[[[0], [2]]], [[[0], [0]]]], "int32")  # (2, 1, 2, 1)
    logits = best_constant("pixel_sparse_ce", labels, channels=3)
    assert logits.shape == (1, 2, 3)
    np.testing.assert_allclose(np.exp(logits[0, 1]), [0.5, 1e-6, 0.5], rtol=1e-5)


def test_pose_constant_is_the_geometric_median():
    points = np.array([[0, 0], [1, 0], [0, 1], [10, 10]], float)
    m = geometric_median(points, np.ones(4))
    total = lambda c: np.linalg.norm(points - c, axis=1).sum()  # noqa: E731
    for dx, dy in [(1e-3, 0), (0, 1e-3), (-1e-3, 0), (0, -1e-3)]:
        assert total(m) <= total(m + [dx, dy])
    y = np.tile(np.arange(18, dtype=float), (5, 1))
    np.testing.assert_allclose(best_constant("ego_cycle", y), np.arange(18), atol=1e-6)
    with pytest.raises(KeyError):
        best_constant("none", y)


def test_a_network_of_a_distance_loss_does_not_start_stuck_at_its_constant():
    """The segmentation metric is a function of pairwise embedding distances:
    at a constant prediction its gradient is zero, so a network started at
    its prior (as every other task's is) never moved (validation loss ratio
    exactly 1.00 in the whole-graph run). Its last layer starts random."""
    import tensorflow as tf

    from taskonomy_tf.models import build_task_model
    from taskonomy_tf.models.losses import TaskLoss
    from taskonomy_tf.tasks import get_task
    from taskonomy_tf.transfer.readout import HeadsLoss, build_readouts, pack_targets, plan_heads

    rng = np.random.default_rng(0)
    ids = rng.integers(0, 6, (4, 32, 32, 1)).astype("float32")
    for task, labels in (("segment_unsup2d", ids), ("normals", None)):
        model = build_task_model(task, "small", 32)
        x = rng.uniform(-1, 1, (4, 32, 32, 3)).astype("float32")
        y = labels if labels is not None else rng.normal(size=(4, 32, 32, 3)).astype("float32")
        with tf.GradientTape() as tape:
            loss = TaskLoss(get_task(task).loss, seed=0)(y, model(x, training=True)[task])
        out = model.get_layer(f"{task}_out").kernel
        grad = tape.gradient(loss, out)
        assert float(tf.norm(grad)) > 0, task  # the last layer learns from the first step
        zero_start = float(tf.norm(out)) == 0
        assert zero_start == (task == "normals")  # only the distance loss starts random
    # the same for readouts into a segmentation target (predicting at 300 pixels)
    heads = plan_heads([("a",)], [0])
    readout = build_readouts("segment_unsup2d", heads, ["a"], 32)
    codes = np.maximum(rng.normal(size=(4, 1, 1, 8, 8, 8)), 0).astype("float32")
    pixels = np.stack([rng.permutation(32 * 32)[:300] for _ in range(4)])[..., None]
    picked = np.take_along_axis(ids.reshape(4, -1, 1), pixels, 1)
    packed = pack_targets(picked, np.ones((4, 300)))[..., None, :]
    with tf.GradientTape() as tape:
        loss = HeadsLoss("segment_metric", [0])(packed, readout({"codes": codes,
                                                                 "points": pixels}))
    kernel = readout.get_layer("order1_out").kernel
    assert float(tf.norm(tape.gradient(loss, kernel))) > 0


def test_the_segmentation_constant_learns_where_segments_are():
    """Segments that depend on position only (left and right halves, their
    ids shuffled per image): the best input-independent embedding separates
    the halves and scores near the loss's minimum, where one embedding
    everywhere pays the clip on every pair across the halves."""
    from taskonomy_tf.models.losses import SEGMENT_PIXELS

    rng = np.random.default_rng(0)
    side = 18  # 324 pixels: the loss samples SEGMENT_PIXELS of them
    assert side * side >= SEGMENT_PIXELS
    ids = rng.integers(0, 50, size=(12, 2))  # per image: the ids of its two halves
    ids[:, 1] = ids[:, 0] + 1 + rng.integers(0, 5, 12)  # distinct within an image
    y = np.zeros((12, side, side, 1), np.float32)
    y[:, :, :side // 2, 0] = ids[:, :1, None]
    y[:, :, side // 2:, 0] = ids[:, 1:, None]
    w = np.ones((12, side, side), np.float32)
    table = best_constant("segment_metric", y, w, channels=8)
    assert table.shape == (side, side, 8)
    left, right = table[:, :side // 2].reshape(-1, 8), table[:, side // 2:].reshape(-1, 8)
    within = np.linalg.norm(left - left.mean(0), axis=1).max()
    across = np.linalg.norm(left[:, None] - right[None], axis=2).min()
    assert across > 5 * within
    fitted = _mean_per_image_loss("segment_metric", y, table, w)
    flat = _mean_per_image_loss("segment_metric", y, np.zeros_like(table), w)
    assert flat > 5 and fitted < 0.05 * flat


def _traced_peak(fn):
    """(fn(), the peak of numpy's allocations while it ran, bytes)."""
    import tracemalloc

    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        base = tracemalloc.get_traced_memory()[0]
        out = fn()
        return out, tracemalloc.get_traced_memory()[1] - base
    finally:
        tracemalloc.stop()


@pytest.mark.parametrize("loss,shape,channels", [("masked_l1", (24, 24, 3), None),
                                                 ("masked_l2", (24, 24, 3), None),
                                                 ("pixel_sparse_ce", (24, 24, 1), 6),
                                                 ("pose_norm", (7,), None)])
def test_a_constants_work_memory_is_estimated_and_bounded_by_the_chunk(loss, shape,
                                                                       channels, monkeypatch):
    """``constant_bytes`` holds what the rule allocates (tracemalloc's peak,
    less the normalised weights), within 3x; with a chunk an eighth of the
    work, the peak falls and stays within the estimate, and the constant is
    the same."""
    from taskonomy_tf.models import constant

    rng = np.random.default_rng(1)
    n = 300
    y = rng.normal(size=(n, *shape)).astype("float32")
    if loss == "pixel_sparse_ce":
        y = rng.integers(0, channels, size=(n, *shape)).astype("float32")
    w = (rng.uniform(size=(n, *shape[:2])) > 0.2).astype("float32") if len(shape) == 3 \
        else np.ones(n, "float32")
    whole, peak = _traced_peak(lambda: best_constant(loss, y, w, channels))
    estimate = constant.constant_bytes(loss, n, shape, channels)
    assert peak - w.nbytes <= estimate <= 3 * peak, (peak, estimate)
    if loss == "pose_norm":
        return  # no chunks: the vectors are small
    monkeypatch.setattr(constant, "CHUNK_BYTES", max(1, estimate // 8))
    chunked, small = _traced_peak(lambda: best_constant(loss, y, w, channels))
    np.testing.assert_allclose(chunked, whole, rtol=1e-6, atol=1e-7)
    assert small - w.nbytes <= constant.constant_bytes(loss, n, shape, channels) < estimate
    assert small < peak / 2


def test_every_constant_rule_has_a_work_estimate():
    from taskonomy_tf.models.constant import CONSTANTS, WORK_BYTES

    assert sorted(CONSTANTS.names()) == sorted(WORK_BYTES.names())
