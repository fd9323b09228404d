"""The task-dictionary Boolean integer program, solved with OR-Tools (SCIP).

As the authors' released solver states it (reference section 6):
* tasks: the file's targets and the source-only tasks; ``self``, ``pixels``
  and tasks marked unused are never sources, nor is ``random`` (the
  untrained encoder: a baseline, not a task anyone can supervise) unless
  ``allow_random``;
* candidates: transfers whose sources are all allowed, whose target is a
  target and not among its own sources, of order <= ``max_order``;
* each target is either supervised (a root) or receives exactly one
  transfer, and a transfer needs all its sources to be roots;
* budget: sum of the roots' supervision costs plus the transfer cost of
  each target that receives a transfer <= budget;
* objective: maximise sum of importance(target) * sqrt(affinity) over chosen
  transfers, plus importance * sqrt(affinity of ``self``) over supervised
  targets; every square-rooted value is clipped to [1e-5, 1].

SCIP solves it with a relative gap of 0, so ``OPTIMAL`` means proven
optimal (``bound`` equals ``objective``). CP-SAT was tried: on the
published 16k affinities it took 1 to 19 s per budget against 0.1 to 0.5 s
for SCIP on the same formulation. A transfer is dropped before solving when
another candidate for the same target uses a subset of its sources and has
at least its value: it can never do better, and pruning it keeps the program
small.
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Mapping, Sequence

from taskonomy_tf.errors import InputError
from taskonomy_tf.taxonomy.table import PIXELS, RANDOM, SELF, TransferTable

VALUE_CLIP = (1e-5, 1.0)  # released solver: np.clip(sqrt(v), 1e-5, 1)
ROOT = "<root>"


class TaxonomyError(InputError):
    """An instance with no solution or bad settings; one-line message.

    ``status``: the solver's status when it stopped without a solution
    (``INFEASIBLE``, ``NOT_SOLVED`` at the time limit, ...), else ``None``.
    """

    def __init__(self, message: str, status: str | None = None):
        super().__init__(message)
        self.status = status


@dataclasses.dataclass
class TaxonomySolution:
    """A chosen dictionary.

    Attributes:
        status: ``OPTIMAL`` when proven, else the solver's status name.
        objective: value of the chosen dictionary (floats, unscaled).
        bound: the solver's proven upper bound on the objective.
        roots: supervised tasks, sorted.
        choice: target -> its sources, or ``["<root>"]``.
        cost: budget used.
    """

    status: str
    objective: float
    bound: float
    roots: list[str]
    choice: dict[str, list[str]]
    cost: float
    budget: float
    max_order: int
    candidates: int
    wall_s: float

    @property
    def optimal(self) -> bool:
        return self.status == "OPTIMAL"

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


@dataclasses.dataclass
class Instance:
    """The program's data after filtering: what the solver and brute force see."""

    targets: list[str]
    tasks: list[str]  # targets and source-only tasks
    edges: list[tuple[tuple[str, ...], str, float]]  # (sources, target, weighted value)
    root_value: dict[str, float]
    supervision_cost: dict[str, float]
    transfer_cost: dict[str, float]


def _clip_sqrt(v: float) -> float:
    return min(max(math.sqrt(max(v, 0.0)), VALUE_CLIP[0]), VALUE_CLIP[1])


def build_instance(table: TransferTable, max_order: int = 5,
                   supervision_cost: Mapping[str, float] | None = None,
                   transfer_cost: Mapping[str, float] | None = None,
                   importance: Mapping[str, float] | None = None,
                   unused: Sequence[str] = (), prune: bool = True,
                   allow_random: bool = False) -> Instance:
    """Filters the candidates and computes every coefficient."""
    if max_order < 1:
        raise TaxonomyError(f"max_order must be >= 1, got {max_order}")
    unused = set(unused)
    known = set(table.targets) | set(table.sources)
    for kind, mapping in (("cost", supervision_cost), ("transfer cost", transfer_cost),
                          ("importance", importance), ("unused", dict.fromkeys(unused))):
        for name, v in (mapping or {}).items():
            if name not in known:
                raise TaxonomyError(f"{kind} given for unknown task {name!r}")
            if v is not None and (not math.isfinite(v) or v < 0):
                raise TaxonomyError(f"{kind} of {name!r} must be finite and >= 0, got {v}")
    if not allow_random:
        unused.add(RANDOM)
    importance = dict(importance or {})
    targets = sorted(t for t in table.targets if t not in unused)
    allowed = {s for s in table.sources if s not in (SELF, PIXELS) and s not in unused}
    tasks = sorted(set(targets) | allowed)
    edges = []
    for r in table.records:
        if (r.target in targets and r.target not in r.sources and r.order <= max_order
                and all(s in allowed for s in r.sources)):
            edges.append((tuple(sorted(r.sources)), r.target,
                          importance.get(r.target, 1.0) * _clip_sqrt(r.value)))
    if prune:
        edges = _prune(edges)
    root_value = {}
    for t in tasks:
        self_aff = table.get((SELF,), t)
        root_value[t] = (importance.get(t, 1.0) * _clip_sqrt(self_aff)
                         if t in targets and self_aff is not None else 0.0)
    sup = {t: float((supervision_cost or {}).get(t, 1.0)) for t in tasks}
    trc = {t: float((transfer_cost or {}).get(t, 0.0)) for t in targets}
    return Instance(targets, tasks, edges, root_value, sup, trc)


def _prune(edges):
    by_target: dict[str, list] = {}
    for e in sorted(edges, key=lambda e: (-e[2], len(e[0]), e[0])):
        kept = by_target.setdefault(e[1], [])
        s = set(e[0])
        if not any(set(k[0]) <= s for k in kept):
            kept.append(e)
    return [e for t in sorted(by_target) for e in by_target[t]]


def _program(inst: Instance, backend: str):
    """The solver with variables and the structural constraints.

    A transfer needs its sources supervised. Since a target takes at most
    one transfer, this is written per (target, source) as
    sum(transfers into t that use s) <= root[s]: the same integer points as
    one implication per source of each transfer, and a much tighter linear
    relaxation (the published 16k instance solves about 50x faster).
    """
    from ortools.linear_solver import pywraplp

    solver = pywraplp.Solver.CreateSolver(backend)
    if solver is None:
        raise TaxonomyError(f"OR-Tools has no {backend!r} solver here; try SCIP or CBC")
    root = {t: solver.BoolVar(f"root[{t}]") for t in inst.tasks}
    x = [solver.BoolVar(f"x{i}") for i in range(len(inst.edges))]
    incoming: dict[str, list] = {t: [] for t in inst.targets}
    uses: dict[tuple[str, str], list] = {}
    for var, (sources, target, _) in zip(x, inst.edges):
        incoming[target].append(var)
        for src in sources:
            uses.setdefault((target, src), []).append(var)
    for (_, src), vars_ in uses.items():
        solver.Add(solver.Sum(vars_) <= root[src])
    for t in inst.targets:
        solver.Add(root[t] + solver.Sum(incoming[t]) == 1)
    cost = (solver.Sum([inst.supervision_cost[t] * root[t] for t in inst.tasks])
            + solver.Sum([inst.transfer_cost[t] * v for t in inst.targets for v in incoming[t]]))
    return solver, root, x, cost


def _run(solver, time_limit: float) -> int:
    from ortools.linear_solver import pywraplp

    solver.SetTimeLimit(int(time_limit * 1000))
    params = pywraplp.MPSolverParameters()
    params.SetDoubleParam(params.RELATIVE_MIP_GAP, 0.0)  # proven optimal, not "close"
    return solver.Solve(params)


_STATUS = {0: "OPTIMAL", 1: "FEASIBLE", 2: "INFEASIBLE", 3: "UNBOUNDED", 4: "ABNORMAL",
           5: "MODEL_INVALID", 6: "NOT_SOLVED"}


def solve_instance(inst: Instance, budget: float, time_limit: float = 60.0,
                   backend: str = "SCIP", max_order: int = 5) -> TaxonomySolution:
    """Solves a built instance; raises ``TaxonomyError`` when infeasible."""
    if not math.isfinite(budget) or budget < 0:
        raise TaxonomyError(f"budget must be a finite number >= 0, got {budget}")
    t0 = time.perf_counter()
    solver, root, x, cost = _program(inst, backend)
    solver.Add(cost <= budget + 1e-9)
    solver.Maximize(solver.Sum([v * var for var, (_, _, v) in zip(x, inst.edges)])
                    + solver.Sum([inst.root_value[t] * root[t] for t in inst.tasks]))
    status = _STATUS.get(_run(solver, time_limit), "UNKNOWN")
    if status == "INFEASIBLE":
        need = minimum_budget(inst, backend)
        raise TaxonomyError(
            f"budget {budget:g} cannot cover the {len(inst.targets)} targets (each needs "
            f"supervision or a transfer from supervised sources); the smallest budget that "
            f"can is {need:g}" if need is not None else
            "no taxonomy exists: some target has no candidate transfer and cannot be supervised",
            status)
    if status not in ("OPTIMAL", "FEASIBLE"):
        raise TaxonomyError(f"the solver stopped with status {status} within {time_limit:g} s; "
                            "raise the time limit", status)
    roots = sorted(t for t in inst.tasks if root[t].solution_value() > 0.5)
    choice = {t: [ROOT] for t in inst.targets if t in roots}
    objective = sum(inst.root_value[t] for t in roots)
    used = sum(inst.supervision_cost[t] for t in roots)
    for var, (sources, target, v) in zip(x, inst.edges):
        if var.solution_value() > 0.5:
            choice[target] = list(sources)
            objective += v
            used += inst.transfer_cost[target]
    return TaxonomySolution(
        status=status, objective=objective, bound=solver.Objective().BestBound(),
        roots=roots, choice=dict(sorted(choice.items())), cost=used, budget=budget,
        max_order=max_order, candidates=len(inst.edges), wall_s=time.perf_counter() - t0)


def minimum_budget(inst: Instance, backend: str = "SCIP") -> float | None:
    """Smallest budget with any feasible dictionary (``None``: none at all)."""
    solver, _, _, cost = _program(inst, backend)
    solver.Minimize(cost)
    status = _STATUS.get(_run(solver, 30.0))
    return solver.Objective().Value() if status in ("OPTIMAL", "FEASIBLE") else None


def solve_taxonomy(table: TransferTable, budget: float, max_order: int = 5,
                   supervision_cost: Mapping[str, float] | None = None,
                   transfer_cost: Mapping[str, float] | None = None,
                   importance: Mapping[str, float] | None = None,
                   unused: Sequence[str] = (), time_limit: float = 60.0,
                   backend: str = "SCIP", allow_random: bool = False) -> TaxonomySolution:
    """Chooses the supervised tasks and each target's transfer (module doc).

    Args:
        table: affinities (``load_table``), values in [0, 1].
        budget: the most supervision (plus transfer) cost to spend.
        max_order: the most sources a transfer may have.
        supervision_cost: per task, default 1.
        transfer_cost: per target receiving a transfer, default 0.
        importance: per target, default 1.
        unused: tasks never used as sources nor required as targets.
        time_limit: seconds before the solver stops (the result then says
            ``FEASIBLE``, not ``OPTIMAL``).
        backend: an OR-Tools MIP solver, ``SCIP`` (default) or ``CBC``.
        allow_random: let the ``random`` baseline be supervised (off: it
            is a reference, not a task).

    Raises:
        TaxonomyError: infeasible (names the smallest feasible budget) or bad settings.
    """
    inst = build_instance(table, max_order, supervision_cost, transfer_cost, importance, unused,
                          allow_random=allow_random)
    return solve_instance(inst, budget, time_limit, backend, max_order)
