"""Readable task names and cluster order and colours, from the catalog.

Names outside the catalog (``class_selected`` in the published files, or a
user's own source) keep their own name and sort last, in an ``other``
cluster.
"""

from __future__ import annotations

from taskonomy_tf.tasks import Cluster, get_task

# The paper's figures read left to right: 2D, 3D, low-dimensional, semantic.
CLUSTER_ORDER = (Cluster.TEXTURE_2D, Cluster.GEOMETRIC_3D, Cluster.LOW_DIM, Cluster.SEMANTIC)
# Colour-blind-safe (Okabe-Ito) colours per cluster; grey for "other".
CLUSTER_COLOURS = {Cluster.TEXTURE_2D: "#E69F00", Cluster.GEOMETRIC_3D: "#0072B2",
                   Cluster.LOW_DIM: "#009E73", Cluster.SEMANTIC: "#CC79A7", None: "#999999"}
CLUSTER_LABELS = {Cluster.TEXTURE_2D: "2D", Cluster.GEOMETRIC_3D: "3D",
                  Cluster.LOW_DIM: "low-dimensional", Cluster.SEMANTIC: "semantic",
                  None: "other"}


def _spec(name: str):
    try:
        return get_task(name)
    except KeyError:
        return None


def cluster_of(name: str) -> Cluster | None:
    spec = _spec(name)
    return spec.cluster if spec else None


BASELINE_TITLES = {"self": "own network (self)", "pixels": "from pixels (pixels)",
                   "constant": "constant guess (constant)"}


def display_name(name: str) -> str:
    """The catalog's title (``rgb2sfnorm`` -> ``Surface normals``), else the name."""
    if name in BASELINE_TITLES:
        return BASELINE_TITLES[name]
    spec = _spec(name)
    return spec.title if spec else name


def task_order(names) -> list[str]:
    """``names`` sorted by cluster (2D, 3D, low-dim, semantic, other), then title."""
    def key(n):
        c = cluster_of(n)
        return (CLUSTER_ORDER.index(c) if c in CLUSTER_ORDER else len(CLUSTER_ORDER),
                display_name(n).lower())
    return sorted(names, key=key)


def colour(name: str) -> str:
    return CLUSTER_COLOURS[cluster_of(name) if cluster_of(name) in CLUSTER_COLOURS else None]
