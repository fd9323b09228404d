"""Win rates and AHP normalisation (numpy only).

For one target, each candidate transfer is evaluated on the same test
images. ``win_rates`` forms the tournament matrix; ``ahp`` turns it into
affinities the way Taskonomy did (``../shared/docs/taskonomy_reference.md``
section 5): clip to [0.001, 0.999], form the ratio matrix W / W^T, take its
principal (Perron) eigenvector and scale it to sum 1 over the target's
candidates.
"""

from __future__ import annotations

import numpy as np

from taskonomy_tf.errors import InputError

CLIP = (0.001, 0.999)  # reference section 5 (Taskonomy's tournament clip)
# Saaty's random consistency index RI(n), n = 1..15 (Saaty 1980, table 1).
_RANDOM_INDEX = (0.0, 0.0, 0.58, 0.90, 1.12, 1.24, 1.32, 1.41, 1.45, 1.49, 1.51, 1.48, 1.56,
                 1.57, 1.59)


def win_rates(losses: np.ndarray) -> np.ndarray:
    """Tournament matrix of one target's candidates.

    Args:
        losses: (n_candidates, n_images) per-image losses, lower is better.

    Returns:
        float64 (n, n): W[i, j] = share of images where i's loss is lower
        than j's, ties counting one half; W + W^T = 1, diagonal 0.5.

    Raises:
        ValueError: not 2-D, no images, or non-finite losses.
    """
    losses = np.asarray(losses, np.float64)
    if losses.ndim != 2 or losses.shape[1] == 0:
        raise InputError(f"losses must be (candidates, images) with images > 0, got {losses.shape}")
    if not np.all(np.isfinite(losses)):
        raise InputError("losses hold NaN or infinite values")
    a, b = losses[:, None, :], losses[None, :, :]
    return ((a < b).mean(-1) + 0.5 * (a == b).mean(-1))


def ratio_matrix(w: np.ndarray) -> np.ndarray:
    """(n, n) tournament matrix -> the AHP's ratio matrix W / W^T, W clipped
    to ``CLIP`` first."""
    w = np.asarray(w, np.float64)
    if w.ndim != 2 or w.shape[0] != w.shape[1] or w.shape[0] == 0:
        raise InputError(f"a tournament matrix must be square and non-empty, got {w.shape}")
    if not np.all(np.isfinite(w)):
        raise InputError("the tournament matrix holds NaN or infinite values")
    c = np.clip(w, *CLIP)
    return c / c.T


def _principal(m: np.ndarray) -> tuple[np.ndarray, float]:
    vals, vecs = np.linalg.eig(m)
    k = int(np.argmax(vals.real))
    v = np.abs(vecs[:, k].real)  # Perron vector of a positive matrix: one sign
    return v / v.sum(), float(vals[k].real)


def ahp(w: np.ndarray) -> np.ndarray:
    """AHP affinities of one target's candidates.

    Args:
        w: (n, n) tournament matrix from ``win_rates`` (any candidate order).

    Returns:
        float64 (n,) positive weights summing to 1, in the order of ``w``.
    """
    return _principal(ratio_matrix(w))[0]


def ahp_incomplete(ratio: np.ndarray) -> np.ndarray:
    """AHP weights from a ratio matrix with comparisons missing (Harker 1987,
    "Incomplete pairwise comparisons in the analytic hierarchy process",
    Mathematical Modelling 9(11)): each missing entry is replaced by 0 and
    each diagonal entry by 1 + the number missing in its row; the weights
    are that matrix's Perron vector. On a consistent matrix (r_ij = v_i /
    v_j wherever known) whose known comparisons connect every candidate,
    they are exactly v (scaled to sum 1); with nothing missing, ``ahp``'s.

    Args:
        ratio: (n, n) float, r_ij > 0 how much better i is than j (r_ji =
            1 / r_ij), NaN where i and j were not compared.

    Returns:
        float64 (n,) positive weights summing to 1.
    """
    r = np.asarray(ratio, np.float64)
    if r.ndim != 2 or r.shape[0] != r.shape[1] or r.shape[0] == 0:
        raise InputError(f"a ratio matrix must be square and non-empty, got {r.shape}")
    missing = np.isnan(r)
    np.fill_diagonal(missing, False)
    if np.any(r[~missing] <= 0) or not np.all(np.isfinite(r[~missing])):
        raise InputError("a ratio matrix needs positive, finite known entries")
    c = np.where(missing, 0.0, r)
    c[np.diag_indices_from(c)] = 1.0 + missing.sum(1)
    return _principal(c)[0]


def consistency_ratio(w: np.ndarray) -> float:
    """Saaty's consistency ratio CR = CI / RI of the ratio matrix (0 = fully
    consistent; below 0.1 is the usual "acceptable"). ``nan`` for n < 3.

    The ratio matrix W / W^T is reciprocal by construction, so Saaty's
    index CI = (lambda_max - n) / (n - 1) applies. RI beyond n = 15 uses
    the table's last value.
    """
    ratio = ratio_matrix(w)
    n = ratio.shape[0]
    if n < 3:
        return float("nan")
    lam = _principal(ratio)[1]
    return float(((lam - n) / (n - 1)) / _RANDOM_INDEX[min(n, len(_RANDOM_INDEX)) - 1])


def ahp_scores(losses: np.ndarray) -> np.ndarray:
    """AHP affinities of candidates from their (n, images) per-image losses:
    ``ahp(win_rates(losses))``, a module-level function so it can be sent
    to worker processes (the transfer grid ranks a beam's sources with it)."""
    return ahp(win_rates(losses))
