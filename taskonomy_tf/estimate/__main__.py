"""``python -m taskonomy_tf.estimate``: rank sources without training transfers.

    python -m taskonomy_tf.estimate --method readout|local|ridge|knn|rsa|logme|hscore
        --tasks A,B,... --models DIR
        [--data DIR] [--split val] [--images N] [--cache DIR] [--out FILE]
        [--check LOSSES.csv]

Encodes the images with each task's frozen encoder (through the transfer
feature cache, so a grid's cached codes are reused), scores every ordered
pair, and writes an affinity-like JSON (``--out``) that the heatmap and
the solver read. ``--check`` compares the ranking with trained first-order
transfers (the grid's losses table). Errors print one line, exit status 2.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from taskonomy_tf.cli_errors import report_error
from taskonomy_tf.config import add_arguments as config_arguments
from taskonomy_tf.config import resolve, shorthands
from taskonomy_tf.console import quiet_tensorflow, set_verbose
from taskonomy_tf.errors import InputError, UserError
from taskonomy_tf.fileio import write_json_atomic


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m taskonomy_tf.estimate", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    from taskonomy_tf.estimate.affinity import METHODS

    p.add_argument("--method", required=True, choices=METHODS)
    p.add_argument("--tasks", help="comma-separated (default: the experiment's)")
    p.add_argument("--models", required=True, help="folder of training workdirs, one per task")
    p.add_argument("--data", help="TFRecord folder (default: the embedded dataset)")
    p.add_argument("--split", default="val", help="images to score on (default: val)")
    p.add_argument("--images", type=int, default=500)
    p.add_argument("--image-size", type=int, help="default: the networks' own")
    p.add_argument("--cache", default="estimate_cache", help="feature cache folder")
    p.add_argument("--out", default="estimate.json")
    p.add_argument("--check", help="losses.csv of trained transfers to compare rankings with")
    p.add_argument("--verbose", action="store_true",
                   help="show TensorFlow's own log lines (hidden by default)")
    config_arguments(p)
    a = p.parse_args(argv)
    try:
        exp = resolve(a.config, shorthands({"tasks": a.tasks, "data.path": a.data,
                                            "data.image_size": a.image_size}) + a.set)
    except UserError as e:
        return report_error(e)
    if a.dry_run:
        print(exp.to_json())
        return 0
    set_verbose(a.verbose)
    quiet_tensorflow()
    from taskonomy_tf.data.available import ALL
    from taskonomy_tf.estimate import estimate_table, ranking_agreement
    from taskonomy_tf.tasks import get_task
    from taskonomy_tf.taxonomy import tables_from_losses
    from taskonomy_tf.transfer.schedule import (
        model_image_size,
        model_workdirs,
        tasks_with_networks,
    )

    try:
        start = time.perf_counter()
        if exp.data.path:
            data = Path(exp.data.path)
        else:
            from taskonomy_tf.synth import embedded_dataset

            data = embedded_dataset()
        if ALL in exp.tasks:  # what the records supply and a finished network exists for
            tasks = tasks_with_networks(list(exp.tasks), data, a.models, (a.split,))
        else:
            tasks = [get_task(t).name for t in exp.tasks]
        if len(tasks) < 2:
            raise InputError("--tasks: need at least 2 tasks")
        size = a.image_size or model_image_size(model_workdirs(a.models, tasks)[tasks[0]])
        from taskonomy_tf.taxonomy.bootstrap import group_of_id
        from taskonomy_tf.transfer.estimate_inputs import gather

        got = gather(tasks, a.models, data, a.split, a.images, size, a.cache)
        for task, why in got.skipped.items():
            print(f"  {task}: not scored as a target ({why})")
        if not got.labels:
            raise InputError("--tasks: no task has per-image labels the estimators can score")
        table = estimate_table(a.method, got.codes, got.labels,
                               [group_of_id(i) for i in got.ids], got.dense)
        table.meta["total_seconds"] = round(time.perf_counter() - start, 2)
        table.save(a.out)
        own = len(table.meta.get("tournament", {}))  # targets read out of their own code too
        print(f"{a.method}: {len(table.records)} pairs scored"
              + (f" (and {own} targets from their own code, for the tournament)" if own else "")
              + f" in {table.meta['seconds']:.2f} s ({table.meta['total_seconds']:.1f} s with "
              f"encoding) -> {a.out}")
        if a.check:
            agree = ranking_agreement(table, tables_from_losses(a.check)["affinities"])
            path = Path(a.out).with_name(Path(a.out).stem + "_check.json")
            write_json_atomic(path, agree, sort_keys=False)
            for t, v in agree.items():
                print(f"  {t:>16}: Spearman {v['spearman']:+.2f}  top-1 {v['top1']}  "
                      f"top-3 {v['top3']}")
            if agree:
                mean = sum(v["spearman"] for v in agree.values()) / len(agree)
                print(f"  mean Spearman {mean:+.2f} -> {path}")
    except (UserError, FileNotFoundError) as e:
        return report_error(e)
    return 0


if __name__ == "__main__":
    sys.exit(main())
