"""LogME (You et al., "LogME: Practical Assessment of Pre-trained Models for
Transfer Learning", ICML 2021): the log marginal evidence of a Bayesian
linear model on frozen features, maximised over its two precisions.

For one label column y (n,) and features F (n, d): y = F w + e with
w ~ N(0, 1/alpha I) and e ~ N(0, 1/beta I). The evidence is
log N(y; 0, 1/beta I + 1/alpha F F^T); MacKay's fixed point
(gamma = sum beta s_i^2 / (alpha + beta s_i^2), alpha = gamma / |m|^2,
beta = (n - gamma) / |F m - y|^2) maximises it. With the thin SVD
F = U S V^T every quantity is a sum over the singular values, so one SVD
serves every label column: O(n d min(n, d)) once, then O(min(n, d)) per
iteration and column. LogME is the maximised evidence divided by n,
averaged over the columns (one-hot columns for classification).
"""

from __future__ import annotations

import numpy as np

MAX_ITER = 100  # the published implementation's cap; converges in ~10
TOL = 1e-3  # relative change of alpha / beta (as published)


def _evidence(s2, z, y2, n, d, alpha, beta):
    """Log evidence of one column at (alpha, beta); s2 = singular values squared,
    z = U^T y, y2 = |y|^2."""
    denom = alpha + beta * s2
    m2 = np.sum((beta * np.sqrt(s2) * z / denom) ** 2)
    res2 = np.sum((alpha * z / denom) ** 2) + max(y2 - np.sum(z ** 2), 0.0)
    logdet = np.sum(np.log(denom)) + (d - len(s2)) * np.log(alpha)
    return (n / 2 * np.log(beta) + d / 2 * np.log(alpha) - n / 2 * np.log(2 * np.pi)
            - beta / 2 * res2 - alpha / 2 * m2 - logdet / 2)


def _fit_column(s2, z, y2, n, d):
    alpha, beta = 1.0, 1.0
    for _ in range(MAX_ITER):
        denom = alpha + beta * s2
        gamma = np.sum(beta * s2 / denom)
        m2 = np.sum((beta * np.sqrt(s2) * z / denom) ** 2)
        res2 = np.sum((alpha * z / denom) ** 2) + max(y2 - np.sum(z ** 2), 0.0)
        new_alpha = gamma / max(m2, 1e-12)
        new_beta = (n - gamma) / max(res2, 1e-12)
        done = (abs(new_alpha - alpha) / alpha < TOL and abs(new_beta - beta) / beta < TOL)
        alpha, beta = new_alpha, new_beta
        if done:
            break
    return alpha, beta


def logme_parameters(features: np.ndarray, labels: np.ndarray, regression: bool = False):
    """(LogME, [(alpha, beta) per column]); see :func:`logme`."""
    f = np.asarray(features, np.float64).reshape(len(features), -1)
    y = np.asarray(labels)
    if len(f) != len(y):
        raise ValueError(f"features have {len(f)} rows, labels {len(y)}")
    if len(f) < 2:
        raise ValueError("LogME needs at least 2 examples")
    if regression:
        y = y.astype(np.float64).reshape(len(y), -1)
    else:
        if y.ndim != 1 or not np.issubdtype(y.dtype, np.integer):
            raise ValueError("classification labels must be (n,) integers; "
                             "pass regression=True for continuous targets")
        y = (y[:, None] == np.unique(y)[None, :]).astype(np.float64)
    n, d = f.shape
    u, s, _ = np.linalg.svd(f, full_matrices=False)
    keep = s > s.max() * max(n, d) * np.finfo(np.float64).eps if s.size else s > 0
    u, s2 = u[:, keep], s[keep] ** 2
    scores, params = [], []
    for k in range(y.shape[1]):
        z = u.T @ y[:, k]
        y2 = float(y[:, k] @ y[:, k])
        alpha, beta = _fit_column(s2, z, y2, n, d)
        scores.append(_evidence(s2, z, y2, n, d, alpha, beta) / n)
        params.append((alpha, beta))
    return float(np.mean(scores)), params


def logme(features: np.ndarray, labels: np.ndarray, regression: bool = False) -> float:
    """LogME of frozen ``features`` for ``labels``; higher = better transfer.

    Args:
        features: (n, ...) float, flattened per example to (n, d).
        labels: (n,) integer classes, or with ``regression`` (n,) or (n, k)
            continuous targets (each column scored, then averaged). Dense
            targets are pooled to a few columns first (see ``labels.py``).

    Returns:
        The maximised log evidence per example, averaged over label columns.
    """
    return logme_parameters(features, labels, regression)[0]
