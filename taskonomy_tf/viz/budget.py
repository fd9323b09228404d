"""Budget curves: what a bigger supervision budget (and higher orders) buys."""

from __future__ import annotations

from taskonomy_tf.errors import InputError


def _solved(rows):
    return [r for r in rows if r.get("status") not in ("INFEASIBLE", None)]


def budget_curves(rows: list[dict], by_order: dict[int, list[dict]] | None = None,
                  title: str | None = None):
    """Objective, mean Gain and mean Quality against the budget.

    Args:
        rows: ``taxonomy.sweep`` rows (budget, objective, gain, quality, ...).
        by_order: optionally, sweeps per max order (``{1: rows, 2: rows}``);
            drawn as a second panel of objective against budget.

    Returns:
        A Figure (budgets with no feasible dictionary are left out).
    """
    import matplotlib.pyplot as plt

    solved = _solved(rows)
    if not solved:
        raise InputError("no budget in the sweep has a feasible dictionary")
    fig, axes = plt.subplots(1, 2 if by_order else 1, squeeze=False,
                             figsize=(12 if by_order else 6.5, 4.5))
    ax = axes[0, 0]
    budgets = [r["budget"] for r in solved]
    ax.plot(budgets, [r["objective"] for r in solved], "o-", color="#0072B2",
            label="objective (sum of chosen affinities)")
    ax.set_xlabel("supervision budget (tasks)")
    ax.set_ylabel("objective")
    rates = ax.twinx()
    for key, name, style in (("gain", "Gain (win rate vs pixels)", "s--"),
                             ("quality", "Quality (win rate vs own network)", "^:")):
        pts = [(r["budget"], r[key]) for r in solved if r.get(key) is not None]
        if pts:
            rates.plot(*zip(*pts), style, color="#D55E00" if key == "gain" else "#009E73",
                       label=name)
    rates.set_ylim(0, 1.02)
    rates.set_ylabel("mean win rate over transferred tasks")
    lines = ax.get_legend_handles_labels()
    more = rates.get_legend_handles_labels()
    ax.legend(lines[0] + more[0], lines[1] + more[1], loc="lower right", fontsize=8)
    ax.set_title("Budget")
    ax.grid(alpha=0.3)
    if by_order:
        ax2 = axes[0, 1]
        for order, order_rows in sorted(by_order.items()):
            ok = _solved(order_rows)
            ax2.plot([r["budget"] for r in ok], [r["objective"] for r in ok], "o-",
                     label=f"max order {order}")
        ax2.set_xlabel("supervision budget (tasks)")
        ax2.set_ylabel("objective")
        ax2.set_title("Budget and transfer order")
        ax2.legend(fontsize=8)
        ax2.grid(alpha=0.3)
    fig.suptitle(title or "What the supervision budget buys", fontsize=13)
    fig.tight_layout()
    return fig
