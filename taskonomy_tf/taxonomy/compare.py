"""Agreement between two affinity tables (ours against the published one).

For each target both tables hold, the first-order sources both hold (task
names compared through the catalog, so ``rgb2sfnorm`` meets ``normals``;
baselines and the target itself left out) are ranked by affinity in each
table, and the ranks compared by Spearman's rho.
"""

from __future__ import annotations

import numpy as np

from taskonomy_tf.taxonomy.table import TransferTable

BASELINES = ("self", "pixels", "random", "constant")


def _canonical(name: str) -> str:
    from taskonomy_tf.tasks import get_task

    try:
        return get_task(name).name
    except KeyError:
        return name


def first_order(table: TransferTable) -> dict[str, dict[str, float]]:
    """target -> source -> value, canonical names, baselines left out."""
    out: dict[str, dict[str, float]] = {}
    for r in table.records:
        if r.order == 1 and r.sources[0] not in BASELINES:
            s, t = _canonical(r.sources[0]), _canonical(r.target)
            if s != t:
                out.setdefault(t, {})[s] = r.value
    return out


def rank_agreement(ours: TransferTable, published: TransferTable, min_sources: int = 3
                   ) -> dict[str, dict]:
    """Per shared target: Spearman rho, the number of shared sources, and
    whether the two tables agree on the best source.

    Targets with fewer than ``min_sources`` shared sources are left out.
    """
    from scipy.stats import spearmanr

    a, b = first_order(ours), first_order(published)
    out = {}
    for target in sorted(set(a) & set(b)):
        shared = sorted(set(a[target]) & set(b[target]))
        if len(shared) < min_sources:
            continue
        x = np.array([a[target][s] for s in shared])
        y = np.array([b[target][s] for s in shared])
        rho = float(spearmanr(x, y).statistic)
        out[target] = {"spearman": rho, "sources": len(shared),
                       "top1_agrees": shared[int(np.argmax(x))] == shared[int(np.argmax(y))]}
    return out


def cluster_means(table: TransferTable) -> dict[tuple[str, str], float]:
    """Mean first-order affinity from each task cluster into each
    (``("3d", "3d")``: 3D sources into 3D targets)."""
    from taskonomy_tf.tasks import get_task

    def cluster_of(name):
        try:
            return get_task(name).cluster
        except KeyError:
            return None

    sums: dict[tuple[str, str], list[float]] = {}
    for target, by_source in first_order(table).items():
        for source, value in by_source.items():
            cs, ct = cluster_of(source), cluster_of(target)
            key = (cs.value if cs else "other", ct.value if ct else "other")
            sums.setdefault(key, []).append(value)
    return {k: float(np.mean(v)) for k, v in sums.items()}


def cluster_contrasts(table: TransferTable) -> dict[str, float]:
    """How much more a cluster's tasks transfer among themselves than from
    another cluster: for clusters A and B, mean affinity A -> A over mean
    affinity B -> A (key ``"A->A / B->A"``), for every pair present (A
    with at least two tasks). The paper's 16k affinities on z-depth,
    normals, reshading (3D) and edges, 2D keypoints, autoencoding (2D) give
    3D->3D / 2D->3D = 4.6 and 2D->2D / 3D->2D = 38."""
    means = cluster_means(table)
    out = {}
    for (a, b), value in sorted(means.items()):
        if a == b and a != "other":
            for (c, d), other in sorted(means.items()):
                if d == a and c != a and c != "other" and other > 0:
                    out[f"{a}->{a} / {c}->{a}"] = value / other
    return out
