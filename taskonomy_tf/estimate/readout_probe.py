"""A readout in closed form: per-image held-out losses of a dense target
predicted from a frozen code, without training anything.

A trained dense readout (``transfer/fused.py``) is a small convolutional
network on the code: two 3 x 3 convolutions with ReLU (each output cell sees
the 5 x 5 code cells around it) and a 1 x 1 convolution with a pixel
shuffle to the target's pixels. This probe keeps that shape and drops the
training: each code cell's 3 x 3 neighbourhood (channels standardised, as
the readout's input BatchNorm does) goes through a fixed random projection
and a ReLU (``FEATURES`` random features: a kernel approximation of the
hidden layer), and one ridge regression, shared by every cell, maps them to
the cell's f x f pixels. Like the readout, which adds its target's best
constant prediction to its output, the ridge fits what varies around the
target's per-pixel prior (``pixel_prior``), and the prior is added back
before scoring. It is fitted on all but one fold of groups and
predicts the held-out fold (whole groups: views of one building share its
room), so every image gets a prediction from a fit that never saw its
building. Each image is then scored with the target's own per-pixel rule
(``RULES``: the training loss, masked by the label's weights), which gives
a (sources, images) loss matrix scored the way trained transfers are: win
rates and AHP (``taxonomy.ahp``).

Every source's features, Gram matrices and their eigendecompositions are
computed once and reused by every target and penalty; the penalty is chosen
by the held-out folds' squared error, in closed form. numpy only.
"""

from __future__ import annotations

import numpy as np

from taskonomy_tf.errors import InputError
from taskonomy_tf.estimate.probe import FOLDS, RIDGE_GRID, group_folds

# Random ReLU features per cell and the neighbourhood they see: chosen on the
# default run's seeds 0 and 1 (docs/estimators.md). 256 features left the
# ranking of the 2D targets dependent on the projection's draw (mean Spearman
# 0.68-0.82 across three draws); with 512 on the 3 x 3 neighbourhood (the
# readout's first convolution) it agreed at 0.87-0.92 in both seeds and draws,
# better than the 5 x 5 one the two convolutions reach together (0.82-0.85).
FEATURES = 512
RADIUS = 1
# ridge penalties, relative to the mean eigenvalue of the fitted folds' Gram
# matrix: the ridge probe's grid without its smallest (1e-3 ... 1e2)
PENALTIES = RIDGE_GRID[1:]
# per-pixel rules of the dense losses (``models.losses``): the name of the rule
RULES = {"masked_l1": "l1", "masked_l2": "l2", "pixel_sparse_ce": "ce"}
CE_FLOOR = 1e-4  # a ridge's class scores are clipped here before their log
FEATURE_ROWS = 8192  # code cells projected at once (our choice: a few MB of
# neighbourhoods, reused memory; the features do not depend on it)


class SourceFit:
    """One source's code features on N images, and for every held-out fold
    the Gram matrix of the other folds, eigendecomposed.

    Args:
        codes: (N, c, c, k) frozen codes.
        groups: (N,) each image's group (held out together).
        out: a float32 buffer to hold the features in (``features_buffer``),
            reused from an earlier fit that is no longer needed: on machines
            whose first touch of fresh memory is slow (docs/performance.md)
            that was most of the cost of building them.
    """

    def __init__(self, codes: np.ndarray, groups, features: int = FEATURES,
                 radius: int = RADIUS, folds: int = FOLDS, seed: int = 0,
                 out: np.ndarray | None = None):
        codes = np.asarray(codes, np.float32)
        if codes.ndim != 4 or codes.shape[1] != codes.shape[2]:
            raise InputError(f"readout probe: codes of shape {codes.shape}; expected "
                             "(images, cells, cells, channels)")
        self.images, self.cells = len(codes), codes.shape[1]
        cells = self.cells * self.cells
        folds = group_folds(groups, folds, seed)
        self.folds = folds  # each held-out fold's images
        # cells reordered fold by fold, so that each fold is one contiguous
        # block: the images in fold order, each image's cells in place
        self.order = np.concatenate([(i[:, None] * cells + np.arange(cells)).ravel()
                                     for i in folds])
        ends = np.cumsum([len(i) * cells for i in folds])
        self.blocks = [slice(a, b) for a, b in zip(np.r_[0, ends[:-1]], ends)]
        self.x = cell_features(codes, features, radius, seed, np.concatenate(folds),
                               out)  # (N c c, D + 1), rows in ``order``
        grams = [(self.x[b].T @ self.x[b]).astype(np.float64) for b in self.blocks]
        total = sum(grams)
        self.eig = [np.linalg.eigh(total - g) for g in grams]
        # each held-out fold's Gram matrix in the eigenbasis of the others': the
        # held-out error of every penalty then costs O(D^2) (``penalty_errors``)
        self.held = [q.T @ g @ q for g, (_, q) in zip(grams, self.eig)]

    def penalty_errors(self, t: np.ndarray, widths=None, penalties=PENALTIES):
        """The summed held-out squared error of per-cell targets ``t`` (N c c,
        q; rows in ``order``) at each penalty, (targets, len(penalties))
        float64 with one row per block of ``widths`` columns (targets fitted
        side by side; None: one), and per fold the eigenbasis right-hand
        side and the penalty scale.

        For fold k with Gram matrix G_k, the others' G = Q diag(e) Q^T and
        right-hand side R = Q^T X_{-k}^T t, the ridge at penalty l is
        w = Q diag(d) R with d = 1 / (e + l s); its held-out error
        |t_k|^2 - 2 tr(w^T X_k^T t_k) + tr(w^T G_k w) is
        |t_k|^2 - 2 d . rowsum(R * A) + d^T ((Q^T G_k Q) * R R^T) d, with
        A = Q^T X_k^T t_k: the penalties share every product."""
        cols = _column_blocks(t.shape[1], widths)
        xt = [(self.x[b].T @ t[b]).astype(np.float64) for b in self.blocks]
        total = sum(xt)
        errors = np.zeros((len(cols), len(penalties)))
        weights = []
        for k, ((ev, q), held) in enumerate(zip(self.eig, self.held)):
            a = q.T @ xt[k]
            rhs, scale = q.T @ total - a, max(ev.mean(), 1e-12)
            weights.append((rhs, scale))
            for i, c in enumerate(cols):
                linear = np.sum(rhs[:, c] * a[:, c], axis=1)
                quadratic = held * (rhs[:, c] @ rhs[:, c].T)
                tt = float(np.sum(np.square(t[self.blocks[k], c], dtype=np.float64)))
                for j, lam in enumerate(penalties):
                    d = 1.0 / (ev + lam * scale)
                    errors[i, j] += tt - 2 * d @ linear + d @ quadratic @ d
        return errors, weights

    def predict(self, t: np.ndarray, widths=None, penalties=PENALTIES) -> np.ndarray:
        """Held-out predictions (N c c, q) float32 of per-cell targets ``t``
        (N c c, q), each fold from the others, at the penalty whose held-out
        squared error is least: per block of ``widths`` columns when several
        targets are fitted side by side (one product for all of them; None:
        one target)."""
        out = np.empty(np.shape(t), np.float32)
        for k, block in self.fold_predictions(t, widths, penalties):
            out[self.order[self.blocks[k]]] = block
        return out

    def fold_predictions(self, t: np.ndarray, widths=None, penalties=PENALTIES,
                         ordered: bool = False):
        """``predict`` one held-out fold at a time: yields (k, the (n_k c c,
        q) predictions of fold k's images ``folds[k]``, each image's cells
        together), so that a caller can score each fold's images without
        the whole (N c c, q) array in memory. ``ordered``: ``t``'s rows are
        in ``order`` already (the same for every source fitted on these
        groups: reordered once)."""
        t = np.asarray(t, np.float32)
        if not ordered:
            t = t[self.order]
        cols = _column_blocks(t.shape[1], widths)
        errors, weights = self.penalty_errors(t, widths, penalties)
        lam = np.empty(t.shape[1])
        for c, e in zip(cols, errors):
            lam[c] = penalties[int(np.argmin(e))]
        for k, ((ev, q), (rhs, scale)) in enumerate(zip(self.eig, weights)):
            w = q @ (rhs / (ev[:, None] + lam[None, :] * scale))
            yield k, self.x[self.blocks[k]] @ w.astype(np.float32)


def _column_blocks(q: int, widths) -> list[slice]:
    """Column slices of targets ``widths`` wide, side by side in q columns."""
    widths = [q] if widths is None else list(widths)
    if sum(widths) != q:
        raise InputError(f"readout probe: targets {widths} wide side by side, {q} columns")
    ends = np.cumsum(widths)
    return [slice(int(a), int(b)) for a, b in zip(np.r_[0, ends[:-1]], ends)]


def features_buffer(codes: np.ndarray, features: int = FEATURES,
                    out: np.ndarray | None = None) -> np.ndarray:
    """``out`` when it can hold ``cell_features`` of ``codes`` (N, c, c, k),
    else a new float32 buffer for them."""
    shape = (len(codes) * codes.shape[1] * codes.shape[2], features + 1)
    return out if out is not None and out.shape == shape else np.empty(shape, np.float32)


def cell_features(codes: np.ndarray, features: int = FEATURES, radius: int = RADIUS,
                  seed: int = 0, images: np.ndarray | None = None,
                  out: np.ndarray | None = None) -> np.ndarray:
    """(N, c, c, k) codes -> (N c c, features + 1) float32: each cell's
    (2 radius + 1)^2 neighbourhood (zeros beyond the border) of
    channel-standardised codes (over all N images), a random Gaussian
    projection and a ReLU, and a constant column; the images in the order
    ``images`` (N indices) when given, each image's c c cells row-major;
    written into ``out`` when given (that shape, float32)."""
    n, c, _, k = codes.shape
    flat = codes.reshape(-1, k)
    z = ((codes - flat.mean(0)) / (flat.std(0) + 1e-6)).astype(np.float32)
    if images is not None:
        z = z[images]
    padded = np.pad(z, ((0, 0), (radius, radius), (radius, radius), (0, 0)))
    side = 2 * radius + 1
    rng = np.random.default_rng(seed)
    inputs = side * side * k
    # the projection and the bias in one product; the constant input passes through
    proj = np.zeros((inputs + 1, features + 1), np.float32)
    proj[:inputs, :features] = rng.standard_normal((inputs, features)) / np.sqrt(inputs)
    proj[inputs, :features] = rng.uniform(-1.0, 1.0, features)
    proj[inputs, features] = 1.0
    if out is None:
        out = np.empty((n * c * c, features + 1), np.float32)
    # the neighbourhoods a few images at a time (memory reused, not new per source)
    step = max(1, FEATURE_ROWS // (c * c))
    for a in range(0, n, step):
        chunk = padded[a:a + step]
        parts = [chunk[:, dy:dy + c, dx:dx + c] for dy in range(side) for dx in range(side)]
        parts.append(np.ones((len(chunk), c, c, 1), np.float32))
        hood = np.concatenate(parts, -1).reshape(len(chunk) * c * c, -1)
        np.matmul(hood, proj, out=out[a * c * c:(a + len(chunk)) * c * c])
    return np.maximum(out, 0, out=out)


def to_cells(y: np.ndarray, c: int) -> np.ndarray:
    """(N, H, W, C) -> (N c c, f f C) with f = H / c: each code cell's pixels."""
    n, h, _, ch = y.shape
    f = h // c
    return (y[:, :c * f, :c * f].reshape(n, c, f, c, f, ch).transpose(0, 1, 3, 2, 4, 5)
            .reshape(n * c * c, f * f * ch))


def from_cells(t: np.ndarray, n: int, c: int, ch: int) -> np.ndarray:
    """The inverse of ``to_cells``: (N c c, f f C) -> (N, f c, f c, C)."""
    f = int(round(np.sqrt(t.shape[1] // ch)))
    return (t.reshape(n, c, c, f, f, ch).transpose(0, 1, 3, 2, 4, 5)
            .reshape(n, c * f, c * f, ch))


def cell_targets(y: np.ndarray, w: np.ndarray, rule: str, classes: int, c: int) -> np.ndarray:
    """What the ridge fits, per cell: regression labels standardised per
    channel over the valid pixels (the readouts train on standardised
    labels), invalid pixels set to the mean (0); class ids one-hot."""
    if rule == "ce":
        onehot = (np.asarray(y)[..., 0, None].astype(np.int64) == np.arange(classes))
        return to_cells(onehot.astype(np.float32), c)
    y = np.asarray(y, np.float32)
    valid = np.asarray(w, np.float32)[..., None] > 0
    count = max(float(valid.sum()), 1.0)
    mean = (y * valid).sum((0, 1, 2)) / count
    std = np.sqrt((np.square(y - mean) * valid).sum((0, 1, 2)) / count) + 1e-6
    return to_cells(np.where(valid, (y - mean) / std, 0.0).astype(np.float32), c)


def per_image_losses(target: np.ndarray, pred: np.ndarray, w: np.ndarray, rule: str,
                     y: np.ndarray | None = None) -> np.ndarray:
    """(N,) float64: each image's weighted mean of the per-pixel rule.

    Args:
        target: (N, H, W, C) the fitted targets (``cell_targets`` back in
            image layout); pred: the same shape, the predictions.
        w: (N, H, W) pixel weights (0: no label).
        y: for ``ce``, the (N, H, W, 1) class ids (``pred``: class scores).
    """
    if rule == "l1":
        values = np.abs(target - pred).mean(-1)
    elif rule == "l2":
        values = np.square(target - pred).mean(-1)
    elif rule == "ce":
        logits = np.log(np.clip(pred, CE_FLOOR, None))
        logits -= logits.max(-1, keepdims=True)
        log_p = logits - np.log(np.exp(logits).sum(-1, keepdims=True))
        ids = np.asarray(y)[..., 0].astype(np.int64)
        values = -np.take_along_axis(log_p, ids[..., None], -1)[..., 0]
    else:
        raise InputError(f"readout probe: no per-pixel rule {rule!r}; expected one of "
                         f"{', '.join(sorted(set(RULES.values())))}")
    w = np.asarray(w, np.float64).reshape(len(values), -1)
    v = np.asarray(values, np.float64).reshape(len(values), -1)
    total = w.sum(1)
    return np.divide((v * w).sum(1), total, out=np.zeros(len(v)), where=total > 0)


class DenseTarget:
    """A dense target prepared once for every source whose codes have
    ``cells`` x ``cells`` cells: what the ridge fits per cell and what each
    image is scored against.

    Args:
        y: (N, H, W, C) targets (class ids (N, H, W, 1) for ``pixel_sparse_ce``);
        w: (N, H, W) weights; loss: the target's loss (a key of ``RULES``).

    Attributes:
        t: (N c c, f f C) float32, what the ridge fits: each cell's fitted
            targets less the prior, 0 where unlabelled.
        fitted, w, y: the fitted targets (``cell_targets``) (N, P, C), the
            weights (N, P) and, for ``ce``, the class ids (N, P, 1), with an
            image's P = c c f f pixels cell by cell (its per-image loss is a
            sum over its pixels, in any order: no image layout is rebuilt).
        prior: (P, C) float32, ``pixel_prior`` in the same layout.
    """

    def __init__(self, y: np.ndarray, w: np.ndarray, loss: str, classes: int = 0,
                 cells: int = 16):
        if loss not in RULES:
            raise InputError(f"readout probe: loss {loss!r} has no per-pixel rule; expected "
                             f"one of {', '.join(RULES)}")
        self.rule, self.cells = RULES[loss], cells
        self.channels = classes if self.rule == "ce" else np.shape(y)[-1]
        n = len(y)
        self.fitted = cell_targets(y, w, self.rule, classes, cells).reshape(n, -1, self.channels)
        self.w = to_cells(np.asarray(w, np.float32)[..., None], cells).reshape(n, -1)
        self.y = (to_cells(np.asarray(y)[..., :1], cells).reshape(n, -1, 1)
                  if self.rule == "ce" else None)
        # the readout adds the target's best constant to its output, so it
        # learns only what varies around it: the probe fits that residual too.
        # The prior is the mean of all N images (each image's own share 1/N),
        # the same for every source.
        self.prior = pixel_prior(self.fitted, self.w)
        valid = self.w[..., None] > 0
        self.t = (np.where(valid, self.fitted - self.prior, 0).astype(np.float32)
                  .reshape(n * cells * cells, -1))

    def losses(self, pred: np.ndarray, images: np.ndarray | None = None) -> np.ndarray:
        """(N,) float64 per-image losses of per-cell predictions (N c c, f f
        C) of the residual over ``prior``; with ``images`` (n indices), the
        (n,) losses of those images from their (n c c, f f C) predictions."""
        pick = slice(None) if images is None else images
        fitted = self.fitted[pick]
        full = pred.reshape(fitted.shape) + self.prior
        return per_image_losses(fitted, full, self.w[pick], self.rule,
                                None if self.y is None else self.y[pick])


def pixel_prior(image: np.ndarray, w: np.ndarray) -> np.ndarray:
    """(..., C) float32: each element's weighted mean over the (N, ..., C)
    fitted targets (weights (N, ...)); 0 where no image labels it. The
    readout adds its target's best constant (``models.constant``: the median
    for an L1 loss); the probe fits squared error, whose best constant is the
    mean (on the default run's seed 1 the median gave the same rankings)."""
    weights = np.asarray(w, np.float32)[..., None]
    total = weights.sum(0)
    return np.divide((image * weights).sum(0), total, out=np.zeros(image.shape[1:]),
                     where=total > 0).astype(np.float32)


def readout_losses(fit: SourceFit, target: DenseTarget) -> np.ndarray:
    """(N,) held-out per-image losses of a dense target from one source (the
    same N images, the same cells)."""
    return readout_losses_many(fit, [target])[0]


def readout_losses_many(fit: SourceFit, targets: list[DenseTarget],
                        ordered: np.ndarray | None = None) -> list[np.ndarray]:
    """``readout_losses`` of several targets from one source, fitted side
    by side: one product of the features with all their columns, instead
    of a narrow product per target (docs/performance.md).

    Args:
        ordered: their ``t`` side by side with the rows in ``fit.order``,
            when already built (the same for every source fitted on the
            same groups and cells).
    """
    for target in targets:
        if fit.cells != target.cells or fit.images != len(target.fitted):
            raise InputError(f"readout probe: codes of {fit.images} images x {fit.cells} "
                             f"cells, a target prepared for {len(target.fitted)} x "
                             f"{target.cells}")
    widths = [t.t.shape[1] for t in targets]
    if ordered is None:
        ordered = np.concatenate([t.t for t in targets], 1)[fit.order]
    cols = _column_blocks(ordered.shape[1], widths)
    losses = [np.empty(fit.images) for _ in targets]
    for k, pred in fit.fold_predictions(ordered, widths, ordered=True):
        images = fit.folds[k]  # each fold's images scored from its own predictions
        for t, c, got in zip(targets, cols, losses):
            got[images] = t.losses(pred[:, c], images)
    return losses
