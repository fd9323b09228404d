"""Budget sweeps: the chosen dictionary, its objective, Gain and Quality per budget."""

from __future__ import annotations

from collections.abc import Iterable

from taskonomy_tf.taxonomy.bip import ROOT, TaxonomyError, build_instance, solve_instance
from taskonomy_tf.taxonomy.table import SELF, TransferTable


def mean_win_rate(solution_choice: dict[str, list[str]],
                  wins: TransferTable | None) -> float | None:
    """Average over targets of the chosen candidate's win rate (a root counts
    as its own ``self`` record: 0.5 against itself, its Gain against pixels)."""
    if wins is None:
        return None
    vals = []
    for target, sources in solution_choice.items():
        key = [SELF] if sources == [ROOT] else sources
        v = wins.get(key, target)
        if v is not None:
            vals.append(v)
    return sum(vals) / len(vals) if vals else None


def parse_budgets(text: str) -> list[float]:
    """``"1-10"``, ``"2,4,6"`` or ``"1-3,8"`` -> budgets."""
    out: list[float] = []
    try:
        for part in text.split(","):
            part = part.strip()
            if "-" in part[1:]:
                lo, hi = part.split("-", 1)
                out.extend(float(b) for b in range(int(lo), int(hi) + 1))
            elif part:
                out.append(float(part))
    except ValueError:
        raise TaxonomyError(f"--budgets {text!r}: expected e.g. 1-10 or 2,4,6") from None
    if not out:
        raise TaxonomyError(f"--budgets {text!r}: no budget")
    return out


def sweep(table: TransferTable, budgets: Iterable[float], max_order: int = 5,
          wins_task: TransferTable | None = None, wins_pixels: TransferTable | None = None,
          **options) -> list[dict]:
    """One row per budget: status, objective, roots, mean Gain and Quality, choice.

    Budgets with no dictionary give a row with the solver's status
    (``INFEASIBLE`` when the budget is too small, ``NOT_SOLVED`` when the
    time limit came first) and the message, instead of stopping the sweep.
    """
    cost_keys = ("supervision_cost", "transfer_cost", "importance", "unused", "allow_random")
    inst = build_instance(table, max_order, **{k: options.pop(k) for k in cost_keys
                                               if k in options})
    rows = []
    for b in budgets:
        try:
            s = solve_instance(inst, b, max_order=max_order, **options)
        except TaxonomyError as exc:
            if exc.status is None:  # bad settings, not a solver outcome
                raise
            rows.append({"budget": b, "status": exc.status, "message": str(exc)})
            continue
        rows.append({"budget": b, "status": s.status, "objective": s.objective,
                     "bound": s.bound, "roots": s.roots, "n_roots": len(s.roots),
                     "gain": mean_win_rate(s.choice, wins_pixels),
                     "quality": mean_win_rate(s.choice, wins_task),
                     "choice": s.choice, "wall_s": s.wall_s})
    return rows
