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
