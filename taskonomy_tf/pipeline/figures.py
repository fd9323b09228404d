"""The figures stage: the heatmaps, the taxonomy graph, the budget curves
and one target's tournament, as PNG files under ``figures/``."""

from __future__ import annotations

import json

from taskonomy_tf.pipeline.context import Context, estimating


def stage_figures(ctx: Context) -> dict:
    """The heatmaps, the taxonomy graph, the budget curves and one tournament."""
    if estimating(ctx):
        from taskonomy_tf.pipeline.estimate_mode import estimate_figures

        return estimate_figures(ctx)
    import matplotlib

    matplotlib.use("Agg")
    import numpy as np

    from taskonomy_tf import viz
    from taskonomy_tf.taxonomy import load_table
    from taskonomy_tf.taxonomy.losses import loss_matrix, read_losses
    from taskonomy_tf.transfer.grid import targets_of

    tax = ctx.results["taxonomy"]
    tables = {k: load_table(ctx.out / v) for k, v in tax["tables"].items()}
    rows = json.loads((ctx.out / tax["sweep"]).read_text())
    solution = json.loads((ctx.out / tax["taxonomy"]).read_text())
    losses = read_losses(ctx.out / ctx.results["transfers"]["losses"])
    target = targets_of(ctx.tasks)[-1]
    names, _, _, m = loss_matrix(losses[target], target)
    boot = json.loads((ctx.out / tax["bootstrap"]).read_text())
    intervals = {(tuple(a["sources"]), a["target"]): (a["low"], a["high"])
                 for a in boot["affinity"]}
    figures = {
        "heatmap": viz.heatmap(tables["affinities"], tables["wins_vs_task"]),
        "heatmap_intervals": viz.heatmap(
            tables["affinities"], intervals=intervals,
            title=f"Affinities with {boot['confidence']:.0%} bootstrap intervals "
                  f"({boot['resamples']} resamples of the test images and "
                  f"{boot.get('replicates', 1)} readout replicates)"),
        "heatmap_clustered": viz.heatmap(tables["affinities"], order="hierarchical",
                                         dendrogram=True),
        "graph": viz.taxonomy_graph(solution["choice"], tables["wins_vs_pixels"],
                                    tables["wins_vs_task"],
                                    title=f"Taxonomy at budget {ctx.budget:g}"),
        "budget": viz.budget_curves(rows),
        f"winrates_{target}": viz.winrate_matrix({n: np.asarray(r).mean(0)
                                                  for n, r in zip(names, m)}, target),
    }
    return save_figures(ctx, figures)


def save_figures(ctx: Context, figures: dict) -> dict:
    """Each matplotlib figure written (atomically) to ``figures/<name>.png``
    and closed; the stage's result: name -> path."""
    import matplotlib.pyplot as plt

    from taskonomy_tf.fileio import atomic_path

    paths = {}
    for name, fig in figures.items():
        with atomic_path(ctx.out / "figures" / f"{name}.png") as tmp:
            fig.savefig(tmp, dpi=110, bbox_inches="tight")
        plt.close(fig)
        paths[name] = f"figures/{name}.png"
    return {"figures": paths}
