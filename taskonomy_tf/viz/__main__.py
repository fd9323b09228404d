"""Figures from files: ``python -m taskonomy_tf.viz`` (or its alias
``python -m taskonomy_tf.plot``, or ``taskonomy-plot``).

    python -m taskonomy_tf.plot heatmap --affinities FILE [--before FILE]
        [--order cluster|hierarchical] [--dendrogram] --out FIG.png
    python -m taskonomy_tf.plot graph --affinities FILE --budget B [--max-order K]
        [--wins-task FILE] [--wins-pixels FILE] --out FIG.png
    python -m taskonomy_tf.plot budget --affinities FILE [--budgets 1-10]
        [--max-orders 1,2,3] [--wins-task FILE] [--wins-pixels FILE] --out FIG.png
    python -m taskonomy_tf.plot winrates --losses losses.csv --target TASK --out FIG.png

Works on the published files as well as on this toolkit's, e.g.
``heatmap --affinities ../shared/data/taskonomy_results/affinities_16k.json``.
Errors in the input print one line and exit with status 2.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import matplotlib

from taskonomy_tf.cli_errors import report_error
from taskonomy_tf.errors import UserError

matplotlib.use("Agg")


def _save(fig, out: str) -> None:
    from taskonomy_tf.fileio import atomic_path

    path = Path(out)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=130, bbox_inches="tight")
    print(f"-> {path}")


def _table(path):
    from taskonomy_tf.taxonomy import load_table

    return load_table(path) if path else None


def _sweep(a, max_order):
    from taskonomy_tf.taxonomy import parse_budgets, sweep

    budgets = parse_budgets(a.budgets) if a.budgets else None
    table = _table(a.affinities)
    if budgets is None:
        budgets = [float(b) for b in range(1, len(table.targets) + 1)]
    return sweep(table, budgets, max_order=max_order, wins_task=_table(a.wins_task),
                 wins_pixels=_table(a.wins_pixels))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m taskonomy_tf.viz", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="kind", required=True)
    h = sub.add_parser("heatmap", help="first-order affinities, before and after AHP")
    h.add_argument("--affinities", required=True)
    h.add_argument("--before", help="a measure before AHP, e.g. wins_vs_task.json")
    h.add_argument("--order", choices=("cluster", "hierarchical"), default="cluster")
    h.add_argument("--dendrogram", action="store_true")
    g = sub.add_parser("graph", help="the chosen taxonomy at one budget")
    g.add_argument("--affinities", required=True)
    g.add_argument("--budget", type=float, required=True)
    g.add_argument("--max-order", type=int, default=5)
    b = sub.add_parser("budget", help="objective, Gain and Quality against the budget")
    b.add_argument("--affinities", required=True)
    b.add_argument("--budgets", help="e.g. 1-10 or 2,4,6 (default: 1 .. number of targets)")
    b.add_argument("--max-orders", help="also compare these max orders, e.g. 1,2,3")
    for sp in (g, b):
        sp.add_argument("--wins-task", help="Quality table (wins_vs_task)")
        sp.add_argument("--wins-pixels", help="Gain table (wins_vs_pixels)")
    w = sub.add_parser("winrates", help="one target's tournament matrix")
    w.add_argument("--losses", required=True)
    w.add_argument("--target", required=True)
    for sp in (h, g, b, w):
        sp.add_argument("--out", required=True, help="image file (.png, .pdf, .svg)")
    a = p.parse_args(argv)
    from taskonomy_tf import viz
    from taskonomy_tf.taxonomy import TableError, solve_taxonomy

    try:
        if a.kind == "heatmap":
            fig = viz.heatmap(_table(a.affinities), _table(a.before), a.order, a.dendrogram)
        elif a.kind == "graph":
            s = solve_taxonomy(_table(a.affinities), a.budget, a.max_order)
            fig = viz.taxonomy_graph(s.choice, _table(a.wins_pixels), _table(a.wins_task),
                                     title=f"Taxonomy at budget {a.budget:g} "
                                           f"(max order {a.max_order})")
        elif a.kind == "budget":
            orders = [int(k) for k in a.max_orders.split(",")] if a.max_orders else []
            rows = _sweep(a, max(orders or [5]))
            fig = viz.budget_curves(rows, {k: _sweep(a, k) for k in orders} or None)
        else:
            import numpy as np

            from taskonomy_tf.tasks import get_task
            from taskonomy_tf.taxonomy.losses import loss_matrix, read_losses

            target = get_task(a.target).name
            losses = read_losses(a.losses)
            if target not in losses:
                raise TableError(f"{a.losses}: no rows for target {target!r}")
            names, _, _, m = loss_matrix(losses[target], target)
            fig = viz.winrate_matrix({n: np.asarray(row).mean(0) for n, row in zip(names, m)},
                                     target)
        _save(fig, a.out)
    except (UserError, FileNotFoundError) as e:
        return report_error(e)
    return 0


if __name__ == "__main__":
    sys.exit(main())
