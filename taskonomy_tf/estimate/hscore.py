"""H-score (Bao et al., "An Information-Theoretic Approach to Transferability
in Task Transfer Learning", ICIP 2019):
H(f) = tr(cov(f)^-1 cov(E[f | y])), for class labels y.

The inverse is a pseudo-inverse over the features' non-negligible
eigenvalues (features of frozen ReLU encoders are often rank-deficient).
For continuous targets, ``labels.discretise`` bins them into classes first.
"""

from __future__ import annotations

import numpy as np


def hscore(features: np.ndarray, labels: np.ndarray) -> float:
    """H-score of (n, ...) features for (n,) integer labels; higher = better.

    Ranges from 0 (class means equal) to the number of classes minus one
    (features that are the class indicators).
    """
    f = np.asarray(features, np.float64).reshape(len(features), -1)
    y = np.asarray(labels)
    if len(f) != len(y) or y.ndim != 1:
        raise ValueError(f"need (n, d) features and (n,) labels, got {f.shape} and {y.shape}")
    f = f - f.mean(0)
    cov = f.T @ f / len(f)
    means = np.zeros_like(f)
    for c in np.unique(y):
        rows = y == c
        means[rows] = f[rows].mean(0)
    cov_g = means.T @ means / len(f)
    w, v = np.linalg.eigh(cov)
    keep = w > w.max() * 1e-10 if w.size and w.max() > 0 else np.zeros_like(w, bool)
    inv = (v[:, keep] / w[keep]) @ v[:, keep].T
    return float(np.trace(inv @ cov_g))
