"""The chosen taxonomy as a graph: supervised roots above, each transferred
target below, an arrow from every source of its transfer."""

from __future__ import annotations

from taskonomy_tf.taxonomy.table import TransferTable
from taskonomy_tf.viz.names import (
    CLUSTER_COLOURS,
    CLUSTER_LABELS,
    cluster_of,
    colour,
    display_name,
    task_order,
)

ROOT = "<root>"
MAX_PER_ROW = 8
ROW_GAP = 1.3


def _row(names, y, width):
    step = width / max(len(names), 1)
    return {n: ((i + 0.5) * step, y) for i, n in enumerate(names)}


def taxonomy_graph(choice: dict[str, list[str]], wins_pixels: TransferTable | None = None,
                   wins_task: TransferTable | None = None, title: str | None = None):
    """Draws one solution (``TaxonomySolution.choice``: target -> sources or
    ``["<root>"]``).

    Nodes are coloured by task cluster; roots (fully supervised) have a thick
    black border. A transferred target is annotated with its transfer's Gain
    (win rate against pixels) and Quality (against its own network) when
    those tables are given.

    Returns:
        A Figure.
    """
    import matplotlib.pyplot as plt
    import networkx as nx
    from matplotlib.lines import Line2D

    roots = task_order([t for t, s in choice.items() if s == [ROOT]])
    targets = task_order([t for t, s in choice.items() if s != [ROOT]])
    extra = task_order({s for t in targets for s in choice[t]} - set(roots))
    graph = nx.DiGraph()
    graph.add_nodes_from(roots + extra + targets)
    graph.add_edges_from((s, t) for t in targets for s in choice[t])
    n_rows = max(1, -(-len(targets) // MAX_PER_ROW))
    per_row = -(-len(targets) // n_rows) if targets else 1
    width = max(len(roots) + len(extra), per_row, 2) * 2.2
    pos = _row(roots + extra, 1.0, width)
    for r in range(n_rows):  # transferred targets, in rows below the roots
        pos.update(_row(targets[r * per_row:(r + 1) * per_row], -ROW_GAP * r, width))
    bottom = -ROW_GAP * (n_rows - 1)
    fig, ax = plt.subplots(figsize=(max(width * 0.9, 6), 3.6 + 2.4 * n_rows))
    nx.draw_networkx_edges(graph, pos, ax=ax, arrows=True, arrowstyle="-|>", arrowsize=14,
                           edge_color="#666666", node_size=1800, width=1.2,
                           connectionstyle="arc3,rad=0.05")
    for nodes, border in ((roots + extra, 3.0), (targets, 0.5)):
        nx.draw_networkx_nodes(graph, pos, nodelist=nodes, ax=ax, node_size=1800,
                               node_color=[colour(n) for n in nodes], edgecolors="black",
                               linewidths=border)
    for n, (x, y) in pos.items():
        label = display_name(n).replace(" ", "\n", 1)
        ax.text(x, y + (0.17 if y > 0.5 else -0.17), label, ha="center",
                va="bottom" if y > 0.5 else "top", fontsize=9)
    for t in targets:
        notes = []
        for name, table in (("Gain", wins_pixels), ("Quality", wins_task)):
            value = table.get(choice[t], t) if table is not None else None
            if value is not None:
                notes.append(f"{name} {value:.2f}")
        if notes:
            x, y = pos[t]
            ax.text(x, y - 0.42, "\n".join(notes), ha="center", va="top", fontsize=8,
                    color="#333333")
    present = {cluster_of(n) if cluster_of(n) in CLUSTER_COLOURS else None for n in graph}
    handles = [Line2D([], [], marker="o", ls="", markersize=10, color=CLUSTER_COLOURS[c],
                      label=CLUSTER_LABELS[c]) for c in CLUSTER_COLOURS if c in present]
    handles.append(Line2D([], [], marker="o", ls="", markersize=10, markerfacecolor="white",
                          markeredgecolor="black", markeredgewidth=3,
                          label="supervised (root)"))
    ax.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.0, 1.0), frameon=False)
    ax.set_ylim(bottom - 0.9, 1.45)
    ax.set_xlim(0, width)
    ax.axis("off")
    ax.set_title(title or f"Taxonomy: {len(roots)} supervised, {len(targets)} by transfer")
    fig.tight_layout()
    return fig
