"""Measures of how much a synthetic view's labels give away for free.

Used by ``bench/embedded_shortcuts.py`` and the tests (issue 21): a box room
seen from inside has nearly all its pixels on six normal directions, and a
2D keypoint map that is the edge filter read twice correlates with the edges.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image


def normal_top_share(normals8: np.ndarray, k: int = 6) -> float:
    """Share of valid pixels whose 8-bit normal is one of the ``k`` most frequent.

    Args:
        normals8: (H, W, 3) uint8 normal map; (128, 128, 128) marks no geometry.
    """
    flat = normals8.reshape(-1, 3)
    valid = ~np.all(flat == 128, axis=1)
    if not valid.any():
        return 1.0
    _, counts = np.unique(flat[valid], axis=0, return_counts=True)
    return float(np.sort(counts)[::-1][:k].sum() / valid.sum())


def read_view(folder: str | Path, domain: str, stem: str) -> np.ndarray:
    """The ``domain`` image of view ``stem`` (``point_P_view_V``) in a building folder."""
    path = next((Path(folder) / domain).glob(stem + "_domain_*"))
    return np.asarray(Image.open(path))


def view_shortcuts(folder: str | Path, stem: str) -> tuple[float, float]:
    """(six-normal share, Pearson correlation of the 2D keypoint and 2D edge
    maps) of one view written by ``synth.generate``."""
    kp = read_view(folder, "keypoints2d", stem).astype(float).ravel()
    edges = read_view(folder, "edge_texture", stem).astype(float).ravel()
    return normal_top_share(read_view(folder, "normal", stem)), float(np.corrcoef(kp, edges)[0, 1])
