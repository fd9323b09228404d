"""Turning a task's training targets into estimator labels.

Estimators take per-image labels; what that means follows the task's loss
(data, not task names):

* dense regression (``masked_l1``, ``masked_l2``): the target map is
  average-pooled over valid pixels to a ``grid`` x ``grid`` layout, giving
  grid^2 x channels continuous columns per image (LogME scores each column
  and averages); at most ``max_columns`` columns, a seeded subset;
* vector regression (``mse``): the vector's entries are the columns;
* soft classes (``soft_ce``): the most likely class per image;
* per-pixel classes (``pixel_sparse_ce``): the pooled class frequencies, as
  regression columns.

``dense_targets`` keeps the per-pixel targets of the dense losses whole, for
the local probe.

Other losses (the metric losses of unsupervised segmentation, poses) have
no per-image label here and raise ``ValueError``.
"""

from __future__ import annotations

import numpy as np

from taskonomy_tf.errors import InputError

GRID = 4  # pooled layout side: 16 cells per channel
MAX_COLUMNS = 48
BINS = 10  # quantile classes of the first principal component, for H-score


def _pool(y: np.ndarray, w: np.ndarray, grid: int) -> np.ndarray:
    """Weighted means over a grid x grid layout of blocks (a remainder at the
    bottom and right is left out): (n, H, W[, C]) -> (n, grid * grid * C),
    cells row-major, channels last; 0 where a block has no weight. Block sums
    by a reshape (3.5x faster here than ``skimage.measure.block_reduce``,
    the same values)."""
    n, h, wd = y.shape[:3]
    bh, bw = h // grid, wd // grid
    y = y.reshape(n, h, wd, -1)[:, :bh * grid, :bw * grid]
    w = np.asarray(w, np.float64).reshape(n, h, wd, 1)[:, :bh * grid, :bw * grid]

    def blocks(a):
        return a.reshape(n, grid, bh, grid, bw, a.shape[-1]).sum((2, 4))

    total, sums = blocks(w), blocks(y * w)
    means = np.where(total > 0, sums / np.maximum(total, 1e-12), 0.0)
    return means.reshape(n, -1)


def _dense(y, w, grid, seed):
    cols = _pool(np.asarray(y, np.float64), np.asarray(w), grid)
    return _subset(cols, seed), True


def _subset(cols, seed):
    if cols.shape[1] <= MAX_COLUMNS:
        return cols
    keep = np.sort(np.random.default_rng(seed).choice(cols.shape[1], MAX_COLUMNS, False))
    return cols[:, keep]


def _vector(y, w, grid, seed):
    return np.asarray(y, np.float64).reshape(len(y), -1), True


def _classes(y, w, grid, seed):
    return np.asarray(y).reshape(len(y), -1).argmax(1).astype(np.int64), False


def _pixel_classes(y, w, grid, seed):
    y = np.asarray(y).astype(np.int64)
    k = int(y.max()) + 1
    onehot = (y[..., None] == np.arange(k)).astype(np.float64)
    return _subset(_pool(onehot, np.asarray(w), grid), seed), True


RULES = {"masked_l1": _dense, "masked_l2": _dense, "mse": _vector, "soft_ce": _classes,
         "pixel_sparse_ce": _pixel_classes}


def estimator_labels(spec, y: np.ndarray, w: np.ndarray, grid: int = GRID, seed: int = 0):
    """(labels, regression) for a task's targets ``y`` and weights ``w``.

    Returns:
        (n, k) float64 columns with ``regression=True``, or (n,) int64 classes.

    Raises:
        ValueError: the task's loss has no per-image label rule.
    """
    rule = RULES.get(spec.loss)
    if rule is None:
        raise InputError(f"task {spec.name!r} (loss {spec.loss}) has no per-image labels for "
                         f"estimators; supported losses: {', '.join(sorted(RULES))}")
    return rule(y, w, grid, seed)


# losses whose targets the local probe reads at full resolution: per-pixel
# regression, and per-pixel class ids (one-hot over the task's channels)
DENSE_RULES = {"masked_l1": False, "masked_l2": False, "pixel_sparse_ce": True}


def dense_targets(spec, y: np.ndarray, w: np.ndarray):
    """``(targets, weights, classes, loss)`` as trained, for the local and
    readout probes (``classes``: the class count of per-pixel class ids,
    else 0; ``loss``: the task's loss name), or None for a task whose loss
    has no per-pixel rule."""
    if not spec.is_dense or spec.loss not in DENSE_RULES:
        return None
    return y, w, spec.channels if DENSE_RULES[spec.loss] else 0, spec.loss


def discretise(columns: np.ndarray, bins: int = BINS) -> np.ndarray:
    """(n,) int classes: quantile bins of the columns' first principal component."""
    c = np.asarray(columns, np.float64).reshape(len(columns), -1)
    c = c - c.mean(0)
    _, _, vt = np.linalg.svd(c, full_matrices=False)
    pc = c @ vt[0]
    edges = np.quantile(pc, np.linspace(0, 1, bins + 1)[1:-1])
    return np.searchsorted(edges, pc, side="right").astype(np.int64)
