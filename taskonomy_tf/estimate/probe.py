"""Probes that predict a trained transfer: how well a frozen code predicts a
target's labels on held-out groups, with a closed-form ridge regression or
the k nearest neighbours in code space.

A trained readout is itself a probe of the frozen code (a small network
fitted on the transfer split, scored on other images), so a cheap probe
fitted and scored the same way should order sources as the readouts do,
where LogME and H-score measure a property of the features that a readout
need not share. Both probes score on held-out *groups* (buildings; a
dataset card's groups): images of one building share their room, and a
probe scored on a building it was fitted on would reward memorising it.

Scores are the coefficient of determination R^2 of the held-out
predictions over every label column (one-hot columns for class labels),
pooled over the folds: 1 predicts perfectly, 0 is no better than the
training folds' mean, below 0 is worse. numpy only.
"""

from __future__ import annotations

import numpy as np

FOLDS = 5
# Ridge penalties tried, relative to the mean squared singular value of the
# training fold's (centred) features: the choice is made by an inner
# split of the training folds, never on the scored fold.
RIDGE_GRID = tuple(10.0 ** np.arange(-4, 3))
KNN_K = 10


def _columns(labels: np.ndarray, regression: bool) -> np.ndarray:
    """(n, k) float64 label columns: as given, or one-hot for class ids."""
    if regression:
        return np.asarray(labels, np.float64).reshape(len(labels), -1)
    y = np.asarray(labels).astype(np.int64).ravel()
    classes = np.unique(y)
    return (y[:, None] == classes[None, :]).astype(np.float64)


def group_folds(groups, folds: int = FOLDS, seed: int = 0) -> list[np.ndarray]:
    """Row indices of ``folds`` held-out parts, whole groups each (fewer
    parts when there are fewer groups), groups dealt at random."""
    groups = np.asarray(groups)
    names = np.unique(groups)
    order = np.random.default_rng(seed).permutation(len(names))
    k = max(2, min(folds, len(names)))
    fold_of = {names[g]: i % k for i, g in enumerate(order)}
    assign = np.array([fold_of[g] for g in groups])
    return [np.flatnonzero(assign == i) for i in range(k)]


def _centre(train: np.ndarray, test: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Both centred on the training part's mean. Not scaled per dimension: a
    code's near-constant dimensions would weigh as much as its informative
    ones (the readouts see the codes as they are)."""
    mean = train.mean(0)
    return train - mean, test - mean


def _ridge_predictions(f_train, y_train, f_test, penalties) -> list[np.ndarray]:
    """Ridge predictions of ``f_test`` for each penalty (relative to the
    mean squared singular value), through one thin SVD of ``f_train``."""
    u, s, vt = np.linalg.svd(f_train, full_matrices=False)
    scale = np.mean(s ** 2) if len(s) else 1.0
    uty = u.T @ (y_train - y_train.mean(0))
    proj = f_test @ vt.T  # (m, r)
    out = []
    for lam in penalties:
        shrink = s / (s ** 2 + lam * scale)
        out.append(proj @ (shrink[:, None] * uty) + y_train.mean(0))
    return out


def _r2(y: np.ndarray, pred: np.ndarray, reference: np.ndarray) -> float:
    """1 - SSE / SS around the training folds' means (``reference``), pooled over columns."""
    total = np.sum((y - reference) ** 2)
    return float(1 - np.sum((y - pred) ** 2) / total) if total > 0 else 0.0


def ridge_probe(features: np.ndarray, labels: np.ndarray, regression: bool, groups,
                folds: int = FOLDS, penalties=RIDGE_GRID, seed: int = 0) -> float:
    """Held-out R^2 of a ridge regression from the flattened codes to the
    label columns; the penalty of each fold chosen by an inner group split of
    its training part.

    Args:
        features: (n, ...) codes; labels: (n, k) columns or (n,) class ids;
        groups: (n,) the group of each row (held out together).
    """
    f = np.asarray(features, np.float64).reshape(len(features), -1)
    y = _columns(labels, regression)
    pred, ref = np.zeros_like(y), np.zeros_like(y)
    for held in group_folds(groups, folds, seed):
        train = np.setdiff1d(np.arange(len(f)), held)
        inner = group_folds(np.asarray(groups)[train], 2, seed + 1)
        fit, check = train[inner[1]], train[inner[0]]
        a, b = _centre(f[fit], f[check])
        scores = [_r2(y[check], p, y[fit].mean(0)) for p in
                  _ridge_predictions(a, y[fit], b, penalties)]
        best = penalties[int(np.argmax(scores))]
        a, b = _centre(f[train], f[held])
        pred[held] = _ridge_predictions(a, y[train], b, [best])[0]
        ref[held] = y[train].mean(0)
    return _r2(y, pred, ref)


def knn_probe(features: np.ndarray, labels: np.ndarray, regression: bool, groups,
              k: int = KNN_K, folds: int = FOLDS, seed: int = 0) -> float:
    """Held-out R^2 of predicting each image's label columns by the mean of
    its ``k`` nearest neighbours (Euclidean distance between codes) in the
    other folds' groups."""
    f = np.asarray(features, np.float64).reshape(len(features), -1)
    y = _columns(labels, regression)
    pred, ref = np.zeros_like(y), np.zeros_like(y)
    for held in group_folds(groups, folds, seed):
        train = np.setdiff1d(np.arange(len(f)), held)
        a, b = _centre(f[train], f[held])
        d = (b ** 2).sum(1)[:, None] - 2 * b @ a.T + (a ** 2).sum(1)[None, :]
        near = np.argsort(d, axis=1, kind="stable")[:, :min(k, len(train))]
        pred[held] = y[train][near].mean(1)
        ref[held] = y[train].mean(0)
    return _r2(y, pred, ref)


def _neighbourhoods(codes: np.ndarray) -> np.ndarray:
    """(N, c, c, k) codes -> (N, c, c, 9 k + 1): each cell's 3 x 3
    neighbourhood (zeros beyond the border) and a constant, the inputs a
    readout's first 3 x 3 convolution sees at that cell."""
    n, c, _, k = codes.shape
    padded = np.pad(codes, ((0, 0), (1, 1), (1, 1), (0, 0)))
    parts = [padded[:, dy:dy + c, dx:dx + c] for dy in range(3) for dx in range(3)]
    return np.concatenate(parts + [np.ones((n, c, c, 1))], -1)


def _cells(y: np.ndarray, w: np.ndarray, c: int) -> tuple[np.ndarray, np.ndarray]:
    """(N, H, W, C) targets and (N, H, W) weights -> per code cell and
    sub-pixel (f = H / c): targets (N, c, c, f f, C) and weights (N, c, c, f f)."""
    n, h, _, ch = y.shape
    f = h // c
    cells = y[:, :c * f, :c * f].reshape(n, c, f, c, f, ch).transpose(0, 1, 3, 2, 4, 5)
    weights = w[:, :c * f, :c * f].reshape(n, c, f, c, f).transpose(0, 1, 3, 2, 4)
    return cells.reshape(n, c, c, f * f, ch), weights.reshape(n, c, c, f * f)


def _local_fit(x, y, wt, penalties):
    """Weighted ridge, one per sub-pixel: x (M, p) cell inputs, y (M, s, C)
    targets and wt (M, s) weights -> per penalty (relative to the mean
    diagonal of the Gram matrix; the constant column unpenalised) a (s, p, C)
    array of solutions. Exact weighted least squares: each sub-pixel has its
    own Gram matrix of its valid rows."""
    eye = np.eye(x.shape[1])
    eye[-1, -1] = 0.0
    # one BLAS product per sub-pixel (a three-operand einsum loops in Python's C
    # fallback: 4x slower here, and an (s, M, p) copy would take a gigabyte)
    grams = np.empty((y.shape[1], x.shape[1], x.shape[1]))
    rhs = np.empty((y.shape[1], x.shape[1], y.shape[2]))
    for i in range(y.shape[1]):
        weighted = x * wt[:, i, None]
        grams[i] = weighted.T @ x
        rhs[i] = weighted.T @ y[:, i]
    scale = np.maximum(np.einsum("spp->s", grams) / x.shape[1], 1e-12)[:, None, None]
    return [np.linalg.solve(grams + lam * scale * eye, rhs) for lam in penalties]


def _predict(x, b):
    """(M, p) inputs and (s, p, C) solutions -> (M, s, C)."""
    return (x @ b).transpose(1, 0, 2)


def _weighted_r2(y, pred, wt, reference) -> float:
    """1 - weighted SSE / weighted SS around ``reference``; y, pred (M, s, C),
    wt (M, s)."""
    total = np.sum(wt[..., None] * (y - reference) ** 2)
    return float(1 - np.sum(wt[..., None] * (y - pred) ** 2) / total) if total > 0 else 0.0


def _weighted_mean(y, wt):
    """Per sub-pixel and channel, (s, C)."""
    return np.einsum("ms,msc->sc", wt, y) / np.maximum(wt.sum(0), 1e-12)[:, None]


def local_probe(codes: np.ndarray, y: np.ndarray, w: np.ndarray, groups, classes: int = 0,
                folds: int = FOLDS, penalties=RIDGE_GRID, seed: int = 0) -> float:
    """Held-out R^2 of a linear map from each code cell's 3 x 3 neighbourhood
    to the target pixels of that cell, shared by every cell: a dense
    readout's first convolution and pixel shuffle with no hidden layer, so it
    scores a dense target's fine structure, which labels pooled to a coarse
    grid lose (the ridge probe's). Pixels without a label carry no weight.

    Args:
        codes: (N, c, c, k) frozen codes; y: (N, H, W, C) targets (class ids
            (N, H, W, 1) with ``classes``: one-hot); w: (N, H, W) weights.
        groups: (N,) the group of each image (held out together).
    """
    codes = np.asarray(codes, np.float64)
    y = np.asarray(y)
    if classes:
        y = y[..., 0, None].astype(np.int64) == np.arange(classes)
    y = y.astype(np.float64)
    c = codes.shape[1]
    x = _neighbourhoods(codes)
    cy, cw = _cells(y, np.asarray(w, np.float64), c)
    p, s, ch = x.shape[-1], cy.shape[-2], cy.shape[-1]

    def rows(idx):
        return x[idx].reshape(-1, p), cy[idx].reshape(-1, s, ch), cw[idx].reshape(-1, s)

    pred = np.zeros((len(codes) * c * c, s, ch))
    ref = np.zeros_like(pred)
    flat_index = np.arange(len(codes) * c * c).reshape(len(codes), c * c)
    for held in group_folds(groups, folds, seed):
        train = np.setdiff1d(np.arange(len(codes)), held)
        inner = group_folds(np.asarray(groups)[train], 2, seed + 1)
        fx, fy, fw = rows(train[inner[1]])
        cx, cyy, cww = rows(train[inner[0]])
        scores = [_weighted_r2(cyy, _predict(cx, b), cww, _weighted_mean(fy, fw))
                  for b in _local_fit(fx, fy, fw, penalties)]
        best = penalties[int(np.argmax(scores))]
        tx, ty, tw = rows(train)
        (b,) = _local_fit(tx, ty, tw, [best])
        hx, _, _ = rows(held)
        at = flat_index[held].ravel()
        pred[at] = _predict(hx, b)
        ref[at] = _weighted_mean(ty, tw)
    _, ally, allw = rows(np.arange(len(codes)))
    return _weighted_r2(ally, pred, allw, ref)
