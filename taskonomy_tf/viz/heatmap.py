"""First-order affinity heatmaps (sources x targets), before and after AHP."""

from __future__ import annotations

import numpy as np

from taskonomy_tf.errors import InputError
from taskonomy_tf.taxonomy.table import BASELINES, TransferTable
from taskonomy_tf.viz.names import display_name, task_order


def affinity_matrix(table: TransferTable, sources: list[str] | None = None,
                    targets: list[str] | None = None) -> tuple[list[str], list[str], np.ndarray]:
    """(sources, targets, values): first-order values, NaN where not run.

    Baseline candidates (self, pixels, random) are left out. By default the
    rows are every first-order source and the columns every target, both in
    cluster order.
    """
    first = {(r.sources[0], r.target): r.value for r in table.records
             if r.order == 1 and r.sources[0] not in BASELINES}
    targets = targets or task_order(table.targets)
    sources = sources or task_order({s for s, _ in first})
    m = np.full((len(sources), len(targets)), np.nan)
    for i, s in enumerate(sources):
        for j, t in enumerate(targets):
            m[i, j] = first.get((s, t), np.nan)
    return sources, targets, m


def hierarchical_order(sources, targets, m):
    """Targets by average-linkage clustering of their columns (optimal leaf
    order); sources follow the same order where they are targets too.
    Returns (sources, targets, m, linkage)."""
    from scipy.cluster import hierarchy

    cols = np.nan_to_num(m.T / np.nanmax(m, axis=0, keepdims=True).T)
    link = hierarchy.optimal_leaf_ordering(hierarchy.linkage(cols, "average"), cols)
    order = hierarchy.leaves_list(link)
    new_targets = [targets[i] for i in order]
    new_sources = [t for t in new_targets if t in sources] + [s for s in sources
                                                             if s not in new_targets]
    rows = [sources.index(s) for s in new_sources]
    return new_sources, new_targets, m[np.ix_(rows, order)], link


def _panel(ax, m, sources, targets, title, label, rate, annot=None):
    import seaborn as sns
    from matplotlib.colors import LogNorm, Normalize

    positive = m[np.isfinite(m) & (m > 0)]
    # AHP affinities of one target sum to 1 and span decades: a log scale
    # shows them; win rates are shown on their own 0..1 scale
    log = not rate and positive.size and positive.max() / positive.min() > 100
    norm = (Normalize(0, 1) if rate else LogNorm(positive.min(), positive.max()) if log
            else None)
    sns.heatmap(m, mask=~np.isfinite(m), ax=ax, cmap="viridis", norm=norm, square=True,
                linewidths=0.3, linecolor="white", annot=annot, fmt="",
                annot_kws={"fontsize": 6.5},
                xticklabels=[display_name(t) for t in targets],
                yticklabels=[display_name(s) for s in sources],
                cbar_kws={"label": f"{label}{' (log scale)' if log else ''}\n"
                                   "higher = better transfer", "shrink": 0.7})
    ax.set_facecolor("#dddddd")  # masked cells: transfers not run
    ax.set_xlabel("target task")
    ax.set_ylabel("source task")
    ax.set_title(title)
    ax.tick_params(axis="x", labelrotation=90)
    ax.tick_params(axis="y", labelrotation=0)


def interval_labels(m, sources, targets, intervals) -> np.ndarray:
    """Cell texts ``value`` over ``[low, high]`` from {(sources, target): (low, high)}."""
    out = np.full(m.shape, "", dtype=object)
    for i, s in enumerate(sources):
        for j, t in enumerate(targets):
            iv = intervals.get(((s,), t))
            if iv is not None and np.isfinite(m[i, j]):
                out[i, j] = f"{m[i, j]:.2g}\n[{iv[0]:.2g}, {iv[1]:.2g}]"
    return out


def heatmap(affinities: TransferTable, before: TransferTable | None = None,
            order: str = "cluster", dendrogram: bool = False, title: str | None = None,
            intervals: dict | None = None):
    """Affinities after AHP (and a raw measure before it, side by side).

    Args:
        affinities: AHP affinities (``affinities.json``).
        before: the measure before AHP, e.g. ``wins_vs_task`` (each transfer's
            win rate against the target's own network); the left panel.
        order: ``cluster`` (catalog families: 2D, 3D, low-dim, semantic) or
            ``hierarchical`` (clustering of the target columns).
        dendrogram: with ``hierarchical``, draw the target dendrogram on top.
        intervals: {(sources, target): (low, high)} (e.g. bootstrap percentile
            intervals): each AHP cell is annotated with its value and interval.

    Returns:
        A Figure; grey cells are transfers that were not run.
    """
    import matplotlib.pyplot as plt

    if order not in ("cluster", "hierarchical"):
        raise InputError(f"order {order!r}: expected cluster or hierarchical")
    sources, targets, m = affinity_matrix(affinities)
    if not sources or not targets:
        raise InputError("no first-order transfers between tasks to draw")
    link = None
    if order == "hierarchical":
        sources, targets, m, link = hierarchical_order(sources, targets, m)
    annot = interval_labels(m, sources, targets, intervals) if intervals else None
    panels = [(m, "after AHP", "AHP affinity", False)]
    if before is not None:
        panels.insert(0, (affinity_matrix(before, sources, targets)[2],
                          f"before AHP ({before.measure})", "win rate", True))
    side = (0.8 if intervals else 0.38) * max(len(sources), len(targets)) + 3
    rows = 2 if link is not None and dendrogram else 1
    fig, axes = plt.subplots(rows, len(panels), squeeze=False,
                             figsize=(side * len(panels) + 1, side + (1.5 if rows == 2 else 0)),
                             gridspec_kw={"height_ratios": [1, 5]} if rows == 2 else None)
    for k, (values, name, label, rate) in enumerate(panels):
        _panel(axes[-1, k], values, sources, targets, name, label, rate,
               None if rate else annot)
        if rows == 2:
            from scipy.cluster import hierarchy

            hierarchy.dendrogram(link, ax=axes[0, k], no_labels=True, color_threshold=0,
                                 above_threshold_color="#555555")
            axes[0, k].axis("off")
    fig.suptitle(title or "First-order task affinities", fontsize=14)
    fig.tight_layout()
    if rows == 2:  # the dendrogram spans exactly the heatmap's columns
        for k in range(len(panels)):
            h, d = axes[-1, k].get_position(), axes[0, k].get_position()
            axes[0, k].set_position([h.x0, d.y0, h.width, d.height])
    return fig
