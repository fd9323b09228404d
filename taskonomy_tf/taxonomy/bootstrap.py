"""Bootstrap uncertainty of affinities and of the chosen dictionary.

Test images are resampled with replacement (the same draw for every
target when they share their test images, as a grid's do), and win rates,
AHP and the integer program are recomputed on each resample. The result
gives every first-order and higher-order affinity a percentile interval,
and, per budget, how often each task is a root and each transfer is chosen
across resamples: a choice made in nearly every resample is stable; one
made in half is a coin toss between near-equal options.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from taskonomy_tf.taxonomy.bip import TaxonomyError, build_instance, solve_instance
from taskonomy_tf.taxonomy.losses import tables_from_matrices


@dataclasses.dataclass
class BootstrapResult:
    """Attributes:
        affinity: (sources, target) -> {"value", "low", "high"} (full data,
            and the percentile interval).
        roots: budget -> task -> share of resamples where it is supervised.
        transfers: budget -> "target<-a+b" -> share of resamples choosing it.
        solved: budget -> share of resamples with a feasible, optimal program.
    """

    resamples: int
    confidence: float
    affinity: dict
    roots: dict
    transfers: dict
    solved: dict

    def to_json(self) -> dict:
        return {"schema_version": 1, "resamples": self.resamples, "confidence": self.confidence,
                "affinity": [{"sources": list(s), "target": t, **v}
                             for (s, t), v in self.affinity.items()],
                "roots": {str(b): v for b, v in self.roots.items()},
                "transfers": {str(b): v for b, v in self.transfers.items()},
                "solved": {str(b): v for b, v in self.solved.items()}}

    def interval(self, sources, target) -> tuple[float, float] | None:
        v = self.affinity.get((tuple(sources), target))
        return (v["low"], v["high"]) if v else None


def _solve_counts(table, budgets, max_order, counts, solved, unused):
    inst = build_instance(table, max_order, unused=unused)
    for b in budgets:
        try:
            s = solve_instance(inst, b, max_order=max_order)
        except TaxonomyError:
            continue
        solved[b] += 1
        for r in s.roots:
            counts["roots"][b][r] = counts["roots"][b].get(r, 0) + 1
        for t, src in s.choice.items():
            if src != ["<root>"]:
                key = f"{t}<-{'+'.join(src)}"
                counts["transfers"][b][key] = counts["transfers"][b].get(key, 0) + 1


def bootstrap(matrices: dict[str, tuple], budgets=(), max_order: int = 1,
              resamples: int = 200, confidence: float = 0.95, seed: int = 0,
              unused=()) -> BootstrapResult:
    """Bootstraps a grid's losses.

    Args:
        matrices: target -> (candidates, image ids, (n, images) losses), as
            ``losses.loss_matrices`` returns.
        budgets: budgets to re-solve the dictionary at on every resample.
        resamples: number of bootstrap resamples.
        confidence: coverage of the percentile intervals.
        unused: tasks the program may not use as sources (as in ``solve_taxonomy``).
    """
    if resamples < 2:
        raise ValueError(f"resamples must be >= 2, got {resamples}")
    rng = np.random.default_rng(seed)
    full = tables_from_matrices({t: (c, m) for t, (c, _, m) in matrices.items()})["affinities"]
    values: dict = {(r.sources, r.target): [] for r in full.records}
    counts = {"roots": {b: {} for b in budgets}, "transfers": {b: {} for b in budgets}}
    solved = {b: 0 for b in budgets}
    for _ in range(resamples):
        draws: dict = {}
        mats = {}
        for t, (c, ids, m) in matrices.items():
            key = tuple(ids)
            if key not in draws:  # targets sharing test images share the draw
                draws[key] = rng.integers(0, len(ids), len(ids))
            mats[t] = (c, m[:, draws[key]])
        table = tables_from_matrices(mats)["affinities"]
        for r in table.records:
            values[(r.sources, r.target)].append(r.value)
        if budgets:
            _solve_counts(table, budgets, max_order, counts, solved, unused)
    tail = (1 - confidence) / 2 * 100
    affinity = {k: {"value": full.get(k[0], k[1]),
                    "low": float(np.percentile(v, tail)),
                    "high": float(np.percentile(v, 100 - tail))} for k, v in values.items()}

    def share(d):
        return {b: dict(sorted(((k, n / resamples) for k, n in v.items()),
                               key=lambda kv: -kv[1])) for b, v in d.items()}

    return BootstrapResult(resamples, confidence, affinity, share(counts["roots"]),
                           share(counts["transfers"]),
                           {b: n / resamples for b, n in solved.items()})
