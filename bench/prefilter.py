"""A pre-filtered grid against the full one, from a finished full grid.

    python -m taskonomy_tf.estimate --method readout --models RUN/models \
        --config RUN/experiment.json --cache RUN/transfers/cache --out est.json
    python bench/prefilter.py --run RUN --estimate est.json [--k 3,5] [--budgets 1-8]
        [--hubs 0,2,3]

``transfers.prefilter=K`` trains, for each target, only the K sources an
estimator ranks first (the baselines always; a target the estimator cannot
score keeps every source). A fused readout head's losses do not depend on
the heads trained beside it (``tests/transfer/test_fused.py``), so the
pre-filtered grid's losses are exactly the full grid's rows of the kept
candidates: this script keeps those rows of the run's ``losses.csv``, builds
the tables as the pipeline does (win rates, AHP over the kept candidates),
and solves the taxonomy at each budget on both. ``--hubs M`` also trains
the whole row of every source in the top K of at least M targets (0: none).
Prints one JSON object: per K and M (``"K/M"``) and per variant, ``plain``
(each target's row holds only its trained sources) and ``completed`` (the
untrained ones filled from the estimator's tournament, and every source
trained for a target outside it, as the pipeline does by default:
``transfers.complete``; only an estimate with a ``tournament``, the
readout's, can be completed): the targets whose trained best source was
dropped (``misses``), the share of first-order readout heads trained
(``heads_trained``: the stage's cost scales with it for the filtered
targets), and per budget the pre-filtered dictionary, whether it is the
full grid's (``same_dictionary``) and how much of the full grid's optimum it
gives up when scored on the full grid's table (``regret``, a share).
"""

from __future__ import annotations

import argparse
import collections
import json
from pathlib import Path


def restrict(matrices: dict, keep: dict[str, list[str]], baselines) -> dict:
    """target -> (candidates, losses) with only the baselines, ``self`` and
    the kept first-order sources of each target (a target missing from
    ``keep`` keeps every candidate)."""
    out = {}
    for target, (cands, _, _, m) in matrices.items():
        kept = keep.get(target)
        rows = [i for i, c in enumerate(cands)
                if kept is None or len(c) != 1 or c[0] in baselines or c[0] in kept]
        out[target] = ([cands[i] for i in rows], m[rows])
    return out


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--run", required=True, help="a finished pipeline run's --out (full grid)")
    p.add_argument("--estimate", required=True, help="an estimate JSON (estimate --out)")
    p.add_argument("--k", default="3,5", help="comma-separated pre-filter sizes")
    p.add_argument("--budgets", default="1-8")
    p.add_argument("--hubs", default="0", help="comma-separated M: sources in the top K of "
                   ">= M targets keep their whole row (0: no such rule)")
    a = p.parse_args(argv)

    from taskonomy_tf.taxonomy import load_table, solve_taxonomy
    from taskonomy_tf.taxonomy.bip import TaxonomyError
    from taskonomy_tf.taxonomy.compare import BASELINES
    from taskonomy_tf.taxonomy.losses import loss_matrices, tables_from_matrices
    from taskonomy_tf.taxonomy.sweep import parse_budgets
    from taskonomy_tf.transfer.schedule import prefilter_sources

    run = Path(a.run)
    stage = json.loads((run / "stages" / "transfers.json").read_text())
    matrices = loss_matrices(run / stage["losses"])
    estimate = load_table(a.estimate, max_value=None)
    priors = estimate.meta.get("tournament") or None
    budgets = parse_budgets(a.budgets)
    fixed = set(BASELINES)

    def solve(table, budget):
        """(sorted roots, objective), or ("none (why)", None)."""
        try:
            solution = solve_taxonomy(table, budget, 1)
        except TaxonomyError as exc:
            return f"none ({exc})", None
        return sorted(solution.roots), solution.objective

    def first_order_best(table, target):
        rows = [r for r in table.for_target(target)
                if len(r.sources) == 1 and r.sources[0] not in fixed]
        return max(rows, key=lambda r: r.value).sources[0] if rows else None

    full = tables_from_matrices({t: (c, m) for t, (c, _, _, m) in matrices.items()})
    full_aff = full["affinities"]
    full_solved = {b: solve(full_aff, b) for b in budgets}
    full_roots = {b: v[0] for b, v in full_solved.items()}
    best = {t: first_order_best(full_aff, t) for t in matrices}
    first = {t: [c[0] for c in cands if len(c) == 1 and c[0] not in fixed]
             for t, (cands, _, _, _) in matrices.items()}
    tasks = {s for r in full_aff.records for s in r.sources} | set(full_aff.targets)

    def regret(chosen, budget):
        """How much of the full grid's optimum at ``budget`` the dictionary
        ``chosen`` gives up, both scored on the full grid's table: its
        supervision restricted to ``chosen``, the transfers then optimal."""
        if not isinstance(chosen, list) or not isinstance(full_roots[budget], list):
            return None
        cost = {t: 1.0 if t in chosen else budget + 1.0 for t in tasks}
        forced = solve_taxonomy(full_aff, budget, 1, supervision_cost=cost).objective
        return round(1 - forced / full_solved[budget][1], 4)

    def variant(top, m, priors):
        """One pre-filter: ``top`` (target -> its estimated best sources),
        sources in the top of >= m targets keeping their whole rows, the
        rows completed from ``priors`` when given."""
        counts = collections.Counter(s for v in top.values() for s in v)
        hubs = sorted(s for s, n in counts.items() if m and n >= m)
        keep = {t: sorted(set(v) | set(hubs)) for t, v in top.items()}
        aff = tables_from_matrices(restrict(matrices, keep, fixed), priors=priors)["affinities"]
        trained = sum(len([s for s in first[t] if t not in keep or s in keep[t]])
                      for t in matrices)
        got = {b: solve(aff, b)[0] for b in budgets}
        return {"hubs": hubs,
                "unfiltered_targets": sorted(t for t in matrices if t not in keep),
                "misses": {t: best[t] for t in matrices if t in keep and best[t] not in keep[t]},
                "heads_trained": round(trained / max(1, sum(map(len, first.values()))), 3),
                "dictionary": {f"{b:g}": got[b] for b in budgets},
                "same_dictionary": {f"{b:g}": got[b] == full_roots[b] for b in budgets},
                "regret": {f"{b:g}": regret(got[b], b) for b in budgets}}

    out = {"run": str(run), "estimate": a.estimate,
           "estimator": estimate.meta.get("method"), "targets": len(matrices),
           "transfer_stage_seconds": stage.get("seconds"),
           "full_dictionary": {f"{b:g}": full_roots[b] for b in budgets}, "k": {}}
    for k in (int(x) for x in a.k.split(",")):
        for m in (int(x) for x in a.hubs.split(",")):
            out["k"][f"{k}/{m}"] = {
                name: variant(prefilter_sources(estimate, k, complete), m,
                              priors if complete else None)
                for name, complete in (("plain", False), ("completed", True))
                if priors or not complete}
    print(json.dumps(out, indent=1))
    return out


if __name__ == "__main__":
    main()
