"""RSA (Dwivedi & Roig, "Representation Similarity Analysis for Efficient Task
Taxonomy & Transfer Learning", CVPR 2019): compare the representation
dissimilarity matrices (RDMs) of a source and a target network on the same
images; the Spearman correlation of their upper triangles ranks sources.
"""

from __future__ import annotations

import numpy as np


def rdm(features: np.ndarray) -> np.ndarray:
    """(n, n) dissimilarity 1 - Pearson correlation between examples' feature
    vectors (scipy's correlation distance; a constant vector is at distance 1
    from every other)."""
    from scipy.spatial.distance import pdist, squareform

    f = np.asarray(features, np.float64).reshape(len(features), -1)
    with np.errstate(invalid="ignore", divide="ignore"):
        d = pdist(f, "correlation")
    return squareform(np.nan_to_num(d, nan=1.0))


def rsa(source_features: np.ndarray, target_features: np.ndarray) -> float:
    """Spearman correlation of the two RDMs' upper triangles; higher = more similar.

    Args:
        source_features, target_features: (n, ...) of the same n images, in
            the same order (the source's and the target network's codes).
    """
    from scipy.stats import spearmanr

    if len(source_features) != len(target_features):
        raise ValueError(f"{len(source_features)} source vs {len(target_features)} target rows")
    if len(source_features) < 3:
        raise ValueError("RSA needs at least 3 images")
    iu = np.triu_indices(len(source_features), 1)
    return float(spearmanr(rdm(source_features)[iu], rdm(target_features)[iu]).statistic)
