"""``transfers.mode=estimate``: a whole taxonomy from a cheap estimator's
affinities, no readout trained.

The transfers stage scores every (source, target) pair with
``transfers.estimator`` on the frozen codes of the transfer split (the
same codes the grid's feature cache holds) and writes
``transfers/estimate.json``; the taxonomy stage solves the budget sweep on
first-order affinities from them: for ``readout``, when it scored every
target at full resolution, its tournament (sources and the target's own code
as ``self``, AHP from per-image held-out losses as the trained table is
scored; ``taxonomy/affinities.json``), else the min-max
scaled scores, where the program sees no ``self``; the figures and the
report say on every page that the affinities are estimates, and how well
the estimator agreed with trained transfers where that was checked. There
are no per-image losses, so no win rates, no bootstrap and no Gain or
Quality; a run with ``transfers.mode=train`` gives them.
"""

from __future__ import annotations

import json

# How each estimator's source rankings agreed with trained first-order
# affinities where both were measured: the default run (6 tasks, 480 val
# images), seeds 0 / 1 / 2 (readout: 0-3, on a later machine), mean Spearman
# over the 6 targets and the targets whose trained best source it ranked
# first (docs/estimators.md, "Checked against trained transfers";
# bench/cheap_taxonomy.py).
CHECKED = {
    "readout": "mean Spearman 0.93 / 0.90 / 0.93 / 0.95 (seeds 0-3), best source found for "
               "4 / 3 / 5 / 4 of 6 targets, the trained dictionary at 3 / 2 / 0 / 2 of "
               "budgets 1-3",
    "rsa": "mean Spearman 0.68 / 0.65 / 0.70, best source found for 4 / 3 / 5 of 6 targets",
    "ridge": "mean Spearman 0.62 / 0.67 / 0.65, best source found for 5 / 3 / 4 of 6 targets",
    "local": "mean Spearman 0.70 / 0.67 / 0.70, best source found for 3 / 3 / 4 of 6 targets",
    "knn": "mean Spearman 0.67 / 0.58 / 0.70, best source found for 4 / 2 / 3 of 6 targets",
    "logme": "mean Spearman 0.48 / 0.65 / 0.38, best source found for 4 / 3 / 3 of 6 targets",
    "hscore": "mean Spearman -0.40 / 0.26 / 0.04, best source found for 0 / 2 / 1 of 6 "
              "targets: it does not predict trained transfers",
}


def caveat(method: str, tournament: bool = False) -> str:
    """The sentence every estimate-mode page carries; ``tournament``: the
    affinities are the readout probe's tournament (``taxonomy_affinities``),
    not min-max scaled scores."""
    checked = CHECKED.get(method)
    where = (f"Where {method} was checked against trained transfers (the default run's "
             f"seeds, docs/estimators.md) it agreed with {checked}."
             if checked else f"{method} has not been checked against trained transfers.")
    what = ("the AHP affinity of a closed-form readout of a frozen source code, from "
            "per-image held-out losses on the trained table's footing (the target's own "
            "code included as self)" if tournament else
            f"the {method} estimator's score of a frozen source code for a target, min-max "
            "scaled per target (best source 1)")
    return (f"ESTIMATES, not trained transfers: every affinity here is {what}; no readout "
            f"was trained. {where} Rerun with transfers.mode=train (or "
            "transfers.prefilter=K, which trains each target's K best sources by this "
            "estimator) for measured transfers.")


def estimate_transfers(ctx, split: str) -> dict:
    """The transfers stage: every ordered pair scored (``estimate.json``)."""
    import time

    from taskonomy_tf.pipeline.stages import ESTIMATE, estimate_scores

    cfg = ctx.config
    start = time.perf_counter()
    table, got = estimate_scores(ctx, split)
    if len(got.labels) < 1 or len(got.codes) < 2:
        from taskonomy_tf.errors import InputError

        raise InputError(f"transfers.mode=estimate: {cfg.transfers.estimator} can score "
                         f"{len(got.labels)} target(s) from {len(got.codes)} source(s); "
                         f"skipped: {got.skipped}")
    return {"mode": "estimate", "estimator": cfg.transfers.estimator, "estimate": ESTIMATE,
            "transfer_split": split, "images": len(got.ids), "skipped": got.skipped,
            "estimate_seconds": round(time.perf_counter() - start, 1)}


def estimate_taxonomy(ctx) -> dict:
    """The taxonomy stage: the budget sweep and the dictionary at the budget,
    on the estimates as first-order affinities."""
    from taskonomy_tf.estimate.affinity import taxonomy_affinities
    from taskonomy_tf.pipeline.context import write_json
    from taskonomy_tf.pipeline.stages import published_agreement
    from taskonomy_tf.taxonomy import load_table, solve_taxonomy, sweep

    estimate = load_table(ctx.out / ctx.results["transfers"]["estimate"])
    aff = taxonomy_affinities(estimate)
    tournament = aff is not estimate  # the readout's tournament, self included
    folder = ctx.out / "taxonomy"
    path = "taxonomy/affinities.json" if tournament else ctx.results["transfers"]["estimate"]
    if tournament:
        aff.save(ctx.out / path)
    budgets = [float(b) for b in range(1, len(ctx.tasks) + 1)]
    write_json(folder / "sweep.json", sweep(aff, budgets, max_order=1))
    write_json(folder / "taxonomy.json", solve_taxonomy(aff, ctx.budget, 1).to_dict())
    out = {"mode": "estimate", "affinities": path, "tournament": tournament,
           "sweep": "taxonomy/sweep.json", "taxonomy": "taxonomy/taxonomy.json"}
    agreement = published_agreement(ctx, aff, 1)
    if agreement:
        out["agreement"] = agreement
    return out


def estimate_figures(ctx) -> dict:
    """The estimates' heatmap (titled as estimates) and the budget curves."""
    import matplotlib

    matplotlib.use("Agg")

    from taskonomy_tf import viz
    from taskonomy_tf.pipeline.figures import save_figures
    from taskonomy_tf.taxonomy import load_table

    tax = ctx.results["taxonomy"]
    aff = load_table(ctx.out / tax["affinities"])
    rows = json.loads((ctx.out / tax["sweep"]).read_text())
    method = ctx.results["transfers"]["estimator"]
    return save_figures(ctx, {
        "heatmap": viz.heatmap(aff, title=f"ESTIMATED affinities ({method}; no readout "
                                          "trained)"),
        "budget": viz.budget_curves(rows)})


def estimate_blocks(ctx) -> list[tuple]:
    """The report's blocks for an estimate-mode run."""
    from taskonomy_tf.pipeline.report import (
        STAGE_NAMES,
        _agreement_blocks,
        _fmt,
        _network_blocks,
    )
    from taskonomy_tf.taxonomy import load_table
    from taskonomy_tf.viz import affinity_matrix, display_name

    cfg, res, out = ctx.config, ctx.results, ctx.out
    tr, tax = res["transfers"], res["taxonomy"]
    method = tr["estimator"]
    aff = load_table(out / tax["affinities"])
    rows = json.loads((out / tax["sweep"]).read_text())
    chosen = json.loads((out / tax["taxonomy"]).read_text())
    figs = res["figures"]["figures"]
    b = [("h1", "Task taxonomy report: ESTIMATES"),
         ("p", caveat(method, tax.get("tournament", False))),
         ("p", f"Data: {res['data']['source']}. Tasks ({len(ctx.tasks)}): "
               f"{', '.join(display_name(t) for t in ctx.tasks)}. Networks at "
               f"{cfg.data.image_size} px, {cfg.networks.steps} steps each; estimates from "
               f"the codes of {tr['images']} images of the {tr['transfer_split']!r} split "
               f"({tr['estimate_seconds']:.0f} s); seed {cfg.seed}.")]
    if tr.get("skipped"):
        b.append(("p", f"Not estimated ({method} cannot score them): " + "; ".join(
            f"{display_name(t)}: {why}" for t, why in tr["skipped"].items()) + "."))
    b += _network_blocks(cfg, res, display_name)
    sources, targets, m = affinity_matrix(aff)
    b += [("h2", "Estimated affinities"), ("p", caveat(method, tax.get("tournament", False))),
          ("img", figs["heatmap"], "estimated affinity heatmap"),
          ("table", ["source \\ target"] + [display_name(t) for t in targets],
           [[display_name(s)] + [_fmt(v) for v in row] for s, row in zip(sources, m)]),
          ("h2", f"The taxonomy at budget {ctx.budget:g}, from estimates"),
          ("p", f"Supervised: {', '.join(display_name(r) for r in chosen['roots'])}; "
                f"objective {chosen['objective']:.4f} ({chosen['status']}). First order "
                "only: an estimator scores single sources."),
          ("h2", "Dictionaries per budget, from estimates"),
          ("table", ["budget", "supervised", "objective", "status"],
           [[_fmt(r["budget"]), ", ".join(display_name(x) for x in r.get("roots", [])) or "–",
             _fmt(r.get("objective"), 4), r["status"]] for r in rows]),
          ("img", figs["budget"], "budget curves")]
    if "agreement" in tax:
        b += _agreement_blocks(json.loads((out / tax["agreement"]).read_text()), display_name)
    b += [("h2", "What ran"),
          ("table", ["stage", "seconds"],
           [[s, _fmt(res[s]["seconds"], 4)] for s in STAGE_NAMES if s in res])]
    return b
