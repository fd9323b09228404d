"""The grouping problem (Standley et al., ICML 2020), as an integer program.

Given candidate networks, each serving a set of tasks with a loss per task
and a cost, choose networks within a budget so that the sum over tasks of
the best (lowest) loss among the chosen networks serving it is smallest.
Every task must be served by at least one chosen network.

Input CSV: one row per candidate network, a ``cost`` column and one column
per task holding that network's loss on the task, empty where it does not
serve the task; any ``name`` column is carried along.
"""

from __future__ import annotations

import csv
import dataclasses
import math
import os
import time

from taskonomy_tf.fileio import open_csv
from taskonomy_tf.taxonomy.bip import _STATUS, TaxonomyError, _run


@dataclasses.dataclass
class Candidates:
    """Parsed candidate networks: ``losses[i][task]`` for row ``i``."""

    tasks: list[str]
    costs: list[float]
    losses: list[dict[str, float]]
    names: list[str]


@dataclasses.dataclass
class GroupingSolution:
    status: str
    objective: float
    bound: float
    chosen: list[int]  # 0-based rows, file order
    assignment: dict[str, int]  # task -> row serving it
    cost: float
    budget: float
    wall_s: float

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def read_candidates(path: str | os.PathLike) -> Candidates:
    """Reads the CSV; raises ``TaxonomyError`` with one line naming the bad cell."""
    with open_csv(path, TaxonomyError) as f:
        reader = csv.DictReader(f)
        header = reader.fieldnames or []
        if "cost" not in header:
            raise TaxonomyError(f"{path}: no 'cost' column; got {','.join(header)}")
        tasks = [h for h in header if h not in ("cost", "name")]
        if not tasks:
            raise TaxonomyError(f"{path}: no task columns")
        costs, losses, names = [], [], []
        for n, row in enumerate(reader, start=2):
            def number(col: str, row=row, n=n) -> float:
                try:
                    v = float(row[col])
                except (TypeError, ValueError):
                    raise TaxonomyError(f"{path}: line {n}, column {col}: {row[col]!r} "
                                        "is not a number") from None
                if not math.isfinite(v) or v < 0:
                    raise TaxonomyError(f"{path}: line {n}, column {col}: {v} must be "
                                        "finite and >= 0")
                return v

            costs.append(number("cost"))
            losses.append({t: number(t) for t in tasks if (row[t] or "").strip() != ""})
            names.append(row.get("name") or f"row{n - 2}")
    if not costs:
        raise TaxonomyError(f"{path}: no candidate rows")
    for t in tasks:
        if not any(t in row for row in losses):
            raise TaxonomyError(f"{path}: task {t!r} has no candidate network")
    return Candidates(tasks, costs, losses, names)


def solve_grouping(cands: Candidates, budget: float, time_limit: float = 60.0,
                   backend: str = "SCIP") -> GroupingSolution:
    """Chooses networks (module doc); proven optimal when ``status`` is OPTIMAL.

    Raises:
        TaxonomyError: the budget cannot serve every task.
    """
    from ortools.linear_solver import pywraplp

    if not math.isfinite(budget) or budget < 0:
        raise TaxonomyError(f"budget must be a finite number >= 0, got {budget}")
    t0 = time.perf_counter()
    solver = pywraplp.Solver.CreateSolver(backend)
    use = [solver.BoolVar(f"use{i}") for i in range(len(cands.costs))]
    serve = {(i, t): solver.BoolVar(f"serve{i}_{t}")
             for i, row in enumerate(cands.losses) for t in row}
    for t in cands.tasks:
        solver.Add(solver.Sum([v for (i, u), v in serve.items() if u == t]) == 1)
    for (i, _), v in serve.items():
        solver.Add(v <= use[i])
    solver.Add(solver.Sum([c * u for c, u in zip(cands.costs, use)]) <= budget + 1e-9)
    solver.Minimize(solver.Sum([cands.losses[i][t] * v for (i, t), v in serve.items()]))
    status = _STATUS.get(_run(solver, time_limit), "UNKNOWN")
    if status == "INFEASIBLE":
        raise TaxonomyError(f"budget {budget:g} cannot buy networks that serve all "
                            f"{len(cands.tasks)} tasks")
    if status not in ("OPTIMAL", "FEASIBLE"):
        raise TaxonomyError(f"the solver stopped with status {status}")
    bought = [i for i, u in enumerate(use) if u.solution_value() > 0.5]
    # each task's best bought network (ties -> lowest row); a bought network
    # that serves no task best is left out of ``chosen``
    assignment = {t: min((cands.losses[i][t], i) for i in bought if t in cands.losses[i])[1]
                  for t in cands.tasks}
    chosen = sorted(set(assignment.values()))
    objective = sum(cands.losses[i][t] for t, i in assignment.items())
    return GroupingSolution(status, objective, solver.Objective().BestBound(), chosen,
                            assignment, sum(cands.costs[i] for i in chosen), budget,
                            time.perf_counter() - t0)
