"""Taxonomy commands.

    python -m taskonomy_tf.taxonomy affinities --losses TABLE.csv --out DIR_OR_FILE
    python -m taskonomy_tf.taxonomy solve --affinities FILE --budget B [--max-order K]
        [--cost TASK=C ...] [--transfer-cost TASK=C ...] [--importance TASK=V ...]
        [--unused TASK ...] [--json OUT]
    python -m taskonomy_tf.taxonomy sweep --affinities FILE --budgets 1-10
        [--wins-task FILE --wins-pixels FILE] [--max-order K] [--json OUT]
    python -m taskonomy_tf.taxonomy group --candidates CSV --budget B [--json OUT]
    python -m taskonomy_tf.taxonomy compare --affinities FILE --published FILE
        [--reference FILE] [--budgets 1-8] [--max-order K] [--json [OUT]]
    python -m taskonomy_tf.taxonomy bootstrap --losses TABLE.csv [--budgets 1-5]
        [--resamples 200] [--max-order K] [--json OUT]

Errors in the input print one line and exit with status 2.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from taskonomy_tf.cli_errors import report_error
from taskonomy_tf.config import add_arguments as config_arguments
from taskonomy_tf.config import resolve, shorthands
from taskonomy_tf.errors import InputError, UserError
from taskonomy_tf.fileio import write_json_atomic
from taskonomy_tf.taxonomy import (
    TaxonomyError,
    load_table,
    parse_budgets,
    read_candidates,
    solve_grouping,
    solve_taxonomy,
    sweep,
    tables_from_losses,
)


def _pairs(items: list[str] | None, flag: str) -> dict[str, float]:
    out = {}
    for item in items or []:
        name, _, value = item.partition("=")
        try:
            out[name] = float(value)
        except ValueError:
            raise TaxonomyError(f"{flag} {item!r}: expected TASK=NUMBER") from None
    return out


def _write_json(path: str | None, obj) -> None:
    if path:
        write_json_atomic(path, obj, sort_keys=False)


def cmd_affinities(a) -> None:
    priors = None
    if a.complete_from:
        priors = load_table(a.complete_from, max_value=None).meta.get("tournament")
        if not priors:
            raise InputError(f"--complete-from {a.complete_from}: the estimate has no "
                             "tournament; expected one from --method readout")
    tables = tables_from_losses(a.losses, priors)
    out = Path(a.out)
    if out.suffix == ".json":  # one file: the affinities, the win rates beside it
        targets = {"affinities": out,
                   "wins_vs_task": out.with_name(f"{out.stem}_wins_vs_task.json"),
                   "wins_vs_pixels": out.with_name(f"{out.stem}_wins_vs_pixels.json")}
    else:
        targets = {k: out / f"{k}.json" for k in tables}
    for k, table in tables.items():
        table.save(targets[k])
        print(f"{k}: {len(table.records)} records for {len(table.targets)} targets -> {targets[k]}")


def _options(a) -> dict:
    return {"supervision_cost": _pairs(a.cost, "--cost"),
            "transfer_cost": _pairs(a.transfer_cost, "--transfer-cost"),
            "importance": _pairs(a.importance, "--importance"), "unused": a.unused or [],
            "allow_random": a.allow_random}


def cmd_solve(a) -> None:
    budget = a.experiment.taxonomy.budget
    if budget is None:
        raise InputError("--budget: required (or taxonomy.budget in --config / --set)")
    s = solve_taxonomy(load_table(a.affinities), budget, a.max_order, **_options(a),
                       time_limit=a.time_limit)
    proof = "proven optimal" if s.optimal else f"NOT proven optimal (status {s.status})"
    print(f"budget {s.budget:g}, max order {s.max_order}: objective {s.objective:.4f} "
          f"(bound {s.bound:.4f}, {proof}), cost {s.cost:g}, {s.candidates} candidates, "
          f"{s.wall_s:.2f} s")
    print("supervised: " + ", ".join(s.roots))
    for target, sources in s.choice.items():
        if sources != ["<root>"]:
            print(f"  {' + '.join(sources)} -> {target}")
    _write_json(a.json, s.to_dict())


def cmd_sweep(a) -> None:
    wins_task = load_table(a.wins_task) if a.wins_task else None
    wins_pixels = load_table(a.wins_pixels) if a.wins_pixels else None
    rows = sweep(load_table(a.affinities), parse_budgets(a.budgets), a.max_order,
                 wins_task, wins_pixels, **_options(a), time_limit=a.time_limit)
    print(f"{'budget':>6} {'status':>10} {'objective':>9} {'gain':>6} {'quality':>7}  roots")
    for r in rows:
        if "message" in r:  # no dictionary at this budget
            print(f"{r['budget']:6g} {r['status']:>10}  {r['message']}")
            continue
        fmt = lambda v: f"{v:.3f}" if v is not None else "-"  # noqa: E731
        print(f"{r['budget']:6g} {r['status']:>10} {r['objective']:9.4f} {fmt(r['gain']):>6} "
              f"{fmt(r['quality']):>7}  {', '.join(r['roots'])}")
    _write_json(a.json, rows)


def cmd_compare(a) -> None:
    from taskonomy_tf.taxonomy.compare import compare_published, format_comparison

    result = compare_published(load_table(a.affinities), load_table(a.published),
                               parse_budgets(a.budgets), a.max_order, time_limit=a.time_limit,
                               reference=load_table(a.reference) if a.reference else None)
    if not result["targets"]:
        raise InputError(f"{a.affinities} and {a.published}: no target with 3 or more "
                         "sources in common")
    if a.json == "-":  # the JSON object alone on standard output
        print(json.dumps(result, indent=1))
        return
    print(format_comparison(result))
    _write_json(a.json, result)


def cmd_group(a) -> None:
    s = solve_grouping(read_candidates(a.candidates), a.budget, a.time_limit)
    print(f"budget {a.budget:g}: total loss {s.objective:.6g} ({s.status}), cost {s.cost:g}, "
          f"networks {s.chosen}")
    _write_json(a.json, s.to_dict())


def cmd_bootstrap(a) -> None:
    from taskonomy_tf.taxonomy.bootstrap import bootstrap
    from taskonomy_tf.taxonomy.losses import loss_matrices

    budgets = parse_budgets(a.budgets) if a.budgets else []
    exp = a.experiment
    r = bootstrap(loss_matrices(a.losses), budgets, a.max_order, exp.taxonomy.resamples,
                  exp.taxonomy.confidence, exp.seed, allow_random=a.allow_random)
    print(f"{r.resamples} resamples of the test images and {r.replicates} readout "
          f"replicate(s), {r.confidence:.0%} intervals of {len(r.affinity)} affinities")
    for k, v in r.contrasts.items():
        print(f"cluster contrast {k}: {v['value']:.2f} [{v['low']:.2f}, {v['high']:.2f}]")
    for t, shares in r.best_source.items():
        print(f"best source into {t}: " + ", ".join(f"{s} {v:.0%}" for s, v in shares.items()))
    for b in budgets:
        roots = ", ".join(f"{t} {share:.0%}" for t, share in r.roots[b].items())
        print(f"budget {b:g}: supervised in {roots}")
        whole = ", ".join(f"{{{d.replace('+', ', ')}}} {v:.0%}"
                          for d, v in list(r.dictionaries[b].items())[:3])
        print(f"    dictionaries: {whole}")
        for key, share in list(r.transfers[b].items())[:8]:
            print(f"    {share:4.0%}  {key}")
    _write_json(a.json, r.to_json())


ALLOW_RANDOM = ("let the 'random' baseline (an untrained encoder) be chosen as a supervised "
                "task; by default it is only a reference")


def parse_args(argv):
    p = argparse.ArgumentParser(prog="python -m taskonomy_tf.taxonomy",
                                description="Win rates, AHP and the task-dictionary program.")
    sub = p.add_subparsers(dest="command", required=True)
    s = sub.add_parser("affinities", help="losses table -> affinities and win rates")
    s.add_argument("--losses", required=True)
    s.add_argument("--out", required=True, help="a folder, or FILE.json for the affinities")
    s.add_argument("--complete-from", metavar="ESTIMATE.json",
                   help="a pre-filtered grid: complete each target's untrained sources from "
                        "this readout estimate's tournament (docs/estimators.md)")
    s.set_defaults(fn=cmd_affinities)
    for name, fn in (("solve", cmd_solve), ("sweep", cmd_sweep)):
        s = sub.add_parser(name)
        s.add_argument("--affinities", required=True)
        if name == "solve":
            s.add_argument("--budget", type=float, help="default: taxonomy.budget")
        else:
            s.add_argument("--budgets", required=True, help="e.g. 1-10 or 2,4,6")
            s.add_argument("--wins-task", help="Quality file (wins_vs_task)")
            s.add_argument("--wins-pixels", help="Gain file (wins_vs_pixels)")
        s.add_argument("--max-order", type=int, default=5)
        s.add_argument("--cost", nargs="+", metavar="TASK=C", help="supervision cost (default 1)")
        s.add_argument("--transfer-cost", nargs="+", metavar="TASK=C",
                       help="cost of a transfer into TASK (default 0)")
        s.add_argument("--importance", nargs="+", metavar="TASK=V", help="default 1")
        s.add_argument("--unused", nargs="+", metavar="TASK")
        s.add_argument("--allow-random", action="store_true", help=ALLOW_RANDOM)
        s.add_argument("--time-limit", type=float, default=60.0)
        s.add_argument("--json")
        config_arguments(s)
        s.set_defaults(fn=fn)
    s = sub.add_parser("bootstrap", help="intervals and choice stability over test images")
    s.add_argument("--losses", required=True)
    s.add_argument("--budgets", help="re-solve at these budgets, e.g. 1-5")
    s.add_argument("--max-order", type=int, default=1)
    s.add_argument("--resamples", type=int, help="taxonomy.resamples (default 100)")
    s.add_argument("--confidence", type=float, help="taxonomy.confidence (default 0.9)")
    s.add_argument("--seed", type=int, help="default: the experiment's (0)")
    s.add_argument("--allow-random", action="store_true", help=ALLOW_RANDOM)
    s.add_argument("--json")
    config_arguments(s)
    s.set_defaults(fn=cmd_bootstrap)
    s = sub.add_parser("compare", help="ours against a published affinity table: source "
                                       "rankings, cluster contrasts, dictionaries")
    s.add_argument("--affinities", required=True, help="our affinities (taxonomy/affinities.json)")
    s.add_argument("--published", required=True,
                   help="e.g. the released affinities_16k.json (task names as in the release)")
    s.add_argument("--budgets", default="1-8", help="dictionaries at these budgets (%(default)s)")
    s.add_argument("--reference",
                   help="the published table's other release (affinities_1k.json beside the "
                        "16k one): its agreement with --published is the ceiling")
    s.add_argument("--max-order", type=int, default=1)
    s.add_argument("--time-limit", type=float, default=60.0)
    s.add_argument("--json", nargs="?", const="-", metavar="FILE",
                   help="also write the result as JSON; without FILE, print only the JSON")
    s.set_defaults(fn=cmd_compare)
    s = sub.add_parser("group", help="Standley et al.'s network-selection problem")
    s.add_argument("--candidates", required=True)
    s.add_argument("--budget", type=float, required=True)
    s.add_argument("--time-limit", type=float, default=60.0)
    s.add_argument("--json")
    s.set_defaults(fn=cmd_group)
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    a = parse_args(argv)
    try:
        if hasattr(a, "config"):  # the commands an experiment has settings for
            a.experiment = resolve(a.config, shorthands({
                "taxonomy.budget": getattr(a, "budget", None),
                "taxonomy.resamples": getattr(a, "resamples", None),
                "taxonomy.confidence": getattr(a, "confidence", None),
                "seed": getattr(a, "seed", None)}) + a.set)
            if a.dry_run:
                print(a.experiment.to_json())
                return 0
        a.fn(a)
    except (UserError, FileNotFoundError) as exc:
        return report_error(exc)
    return 0


if __name__ == "__main__":
    sys.exit(main())
