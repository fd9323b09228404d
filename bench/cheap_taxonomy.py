"""Cheap answers against a trained grid: every estimator on a finished pipeline run.

    python bench/cheap_taxonomy.py --run runs/taxonomy [--split val] [--images N]

For each method (local, ridge and k-NN probes, RSA, LogME, H-score, and ``short``:
the fused readouts themselves with a fifth of the steps, a third of the images and
one seed instead of three): its per-target ranking of the first-order sources
against the trained affinities of the run (``mean_spearman`` over targets,
``top1``: the trained best source ranked first, ``top3``: among the first three,
what a pre-filter of 3 keeps), its time (encoding from the run's feature cache,
then scoring) and the ``speedup`` against the run's transfer stage, and whether
the taxonomy solved on its estimates supervises the same tasks as the trained one
at budgets 1-3 (``same_dictionary``): for ``readout``, on its tournament (the
target's own code as self, what ``transfers.mode=estimate`` solves on); for the others,
whose scores have no self, on the trained table with each target's first-order
mass shared out by the estimates (``dictionary_from`` says which). Prints one JSON
object. The estimates are computed on the transfer split (the images the
readouts were trained on), joined by record id.

The trained grid is itself a measurement: ``grid_noise`` bootstraps it over
its test buildings and readout seeds (``taxonomy.bootstrap``) and gives, per
target, the share of resamples in which each source is the best, and per
budget the share choosing each dictionary. Each method's ``top1_expected``
is the expected number of targets whose best source it names, against a
grid redrawn that way (``top1_ceiling``: the same for the full grid's own
best sources, what a perfect estimate of it scores), and its
``dictionary_share`` the share of resamples choosing its dictionary (beside
the trained dictionary's own share): a miss on a target the grid itself
calls a coin toss costs little, a miss where the grid is sure costs a whole
target.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

import numpy as np

METHODS = ("local", "ridge", "knn", "rsa", "logme", "hscore")


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--run", required=True, help="a finished pipeline run's --out")
    p.add_argument("--split", default="val")
    p.add_argument("--images", type=int, default=None, help="default: the whole split")
    p.add_argument("--budgets", default="1,2,3")
    p.add_argument("--short-steps", type=int, default=30, help="short: readout steps")
    p.add_argument("--short-images", type=int, default=160, help="short: transfer images")
    p.add_argument("--methods", default=",".join(METHODS + ("short",)))
    p.add_argument("--resamples", type=int, default=200,
                   help="bootstrap resamples of the trained grid (grid_noise)")
    a = p.parse_args(argv)

    from taskonomy_tf.console import quiet_tensorflow

    quiet_tensorflow()
    from taskonomy_tf.estimate import estimate_table, ranking_agreement
    from taskonomy_tf.estimate.affinity import taxonomy_affinities
    from taskonomy_tf.taxonomy import load_table, solve_taxonomy
    from taskonomy_tf.taxonomy.bip import TaxonomyError
    from taskonomy_tf.taxonomy.bootstrap import bootstrap, group_of_id
    from taskonomy_tf.taxonomy.compare import best_sources
    from taskonomy_tf.taxonomy.losses import loss_matrices
    from taskonomy_tf.transfer.estimate_inputs import gather

    run = Path(a.run)
    stages = {s: json.loads((run / "stages" / f"{s}.json").read_text())
              for s in ("data", "transfers")}
    cfg = json.loads((run / "experiment.json").read_text())
    tasks = stages["data"]["tasks"]
    trained = load_table(run / "taxonomy" / "affinities.json")
    budgets = [float(b) for b in a.budgets.split(",")]

    def roots(table, budget):
        try:
            return sorted(solve_taxonomy(table, budget, 1).roots)
        except TaxonomyError as exc:
            return f"none ({exc})"

    trained_roots = {b: roots(trained, b) for b in budgets}
    noise = bootstrap(loss_matrices(run / "transfers" / "losses.csv"), budgets, 1,
                      resamples=a.resamples, confidence=0.9, seed=0)
    trained_best = {t: v[0] for t, v in best_sources(trained).items()}
    start = time.perf_counter()
    got = gather(tasks, run / "models", stages["data"]["records"], a.split, a.images,
                 cfg["data"]["image_size"], run / "transfers" / "cache")
    encode_s = time.perf_counter() - start
    groups = [group_of_id(i) for i in got.ids]
    out = {"run": str(run), "images": len(got.ids), "groups": len(set(groups)),
           "targets": sorted(got.labels), "skipped": got.skipped,
           "transfer_stage_seconds": stages["transfers"]["seconds"],
           "encode_seconds": round(encode_s, 2), "trained_dictionary": trained_roots,
           "grid_noise": {
               "resamples": a.resamples, "best_source": noise.best_source,
               "top1_ceiling": round(expected_top1(trained_best, noise.best_source), 2),
               "dictionaries": {f"{b:g}": v for b, v in noise.dictionaries.items()},
               "trained_dictionary_share": {f"{b:g}": dictionary_share(trained_roots[b], noise, b)
                                            for b in budgets}},
           "methods": {}, "machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                                      "processor": platform.processor()}}
    for method in a.methods.split(","):
        t0 = time.perf_counter()
        if method == "short":
            table = short_transfers(run, cfg, tasks, stages["data"]["records"], a)
            seconds = time.perf_counter() - t0
        else:
            table = estimate_table(method, got.codes, got.labels, groups, got.dense)
            seconds = encode_s + time.perf_counter() - t0
        agree = ranking_agreement(table, trained)
        aff = taxonomy_affinities(table)
        tournament = aff is not table
        est = {b: roots(aff if tournament else _as_affinities(table, trained), b)
               for b in budgets}
        out["methods"][method] = {
            "mean_spearman": round(float(np.mean([v["spearman"] for v in agree.values()])), 3),
            "top1": [sum(v["top1"] for v in agree.values()), len(agree)],
            "top3": [sum(v["top3"] for v in agree.values()), len(agree)],
            "seconds": round(seconds, 2),
            "speedup": round(stages["transfers"]["seconds"] / seconds, 1),
            "same_dictionary": {f"{b:g}": est[b] == trained_roots[b] for b in budgets},
            "dictionary_from": "tournament" if tournament else "trained mass",
            "top1_expected": round(expected_top1(
                {t: v[0] for t, v in best_sources(table).items() if t in agree},
                noise.best_source), 2),
            "dictionary_share": {f"{b:g}": dictionary_share(est[b], noise, b) for b in budgets},
            "per_target": {t: round(v["spearman"], 2) for t, v in agree.items()}}
    print(json.dumps(out, indent=1))
    return out


def expected_top1(picks: dict[str, str], shares: dict[str, dict]) -> float:
    """The expected number of targets whose pick is the best source of a
    resampled grid: the sum of each pick's share of resamples."""
    return float(sum(shares.get(t, {}).get(s, 0.0) for t, s in picks.items()))


def dictionary_share(chosen, noise, budget) -> float:
    """The share of the grid's resamples choosing exactly ``chosen`` (0 when
    it is not a dictionary: the program had no solution)."""
    if not isinstance(chosen, list):
        return 0.0
    from taskonomy_tf.taxonomy.bootstrap import dictionary_key

    return round(noise.dictionaries.get(budget, {}).get(dictionary_key(chosen), 0.0), 2)


def short_transfers(run: Path, cfg: dict, tasks: list[str], records: str, a):
    """The first-order grid again, short: ``a.short_steps`` steps on
    ``a.short_images`` transfer images, one seed; its AHP affinities between
    the tasks (baselines dropped). The run's feature cache is reused."""
    import tempfile

    from taskonomy_tf.taxonomy.ahp import ahp_scores
    from taskonomy_tf.taxonomy.losses import tables_from_losses
    from taskonomy_tf.taxonomy.table import TransferTable
    from taskonomy_tf.transfer import run_grid

    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "grid"
        out.mkdir()
        (out / "cache").symlink_to((run / "transfers" / "cache").resolve())
        result = run_grid(tasks, run / "models", records, out, max_order=1,
                          n_images=a.short_images, steps=a.short_steps,
                          batch_size=cfg["transfers"]["batch_size"],
                          learning_rate=cfg["transfers"]["learning_rate"],
                          seeds=(cfg["seed"],), image_size=cfg["data"]["image_size"],
                          train_split=a.split, progress=False, score=ahp_scores)
        aff = tables_from_losses(result.table)["affinities"]
    keep = [r for r in aff.records if r.order == 1 and r.sources[0] in tasks]
    return TransferTable(keep, aff.targets, "affinities", {})


def _as_affinities(estimate, trained):
    """The estimate's first-order values in the trained table's place: every
    trained candidate kept (self and the baselines too, so that the program
    sees the same choices), each first-order source transfer's value replaced
    by the estimate's share of the trained first-order mass of its target."""
    from taskonomy_tf.taxonomy.table import Transfer, TransferTable

    est = {(r.sources, r.target): r.value for r in estimate.records}
    records = []
    for t in trained.targets:
        rows = trained.for_target(t)
        first = [r for r in rows if r.order == 1 and (r.sources, t) in est]
        mass = sum(r.value for r in first)
        total = sum(est[(r.sources, t)] for r in first) or 1.0
        for r in rows:
            value = est[(r.sources, t)] / total * mass if r in first else r.value
            records.append(Transfer(r.sources, t, value))
    return TransferTable(records, trained.targets, "affinities", {})


if __name__ == "__main__":
    main()
