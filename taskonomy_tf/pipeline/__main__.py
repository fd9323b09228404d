"""``python -m taskonomy_tf.pipeline``: from images to a task taxonomy report.

    python -m taskonomy_tf.pipeline [--data DIR] [--tasks A,B,...] [--out DIR]
        [--seed N] [--budget B] [--max-order K] [--quick] [--force] [--published 16k|1k|FILE|none]
        [--verbose]

With no arguments: the embedded dataset, 6 tasks, first-order transfers
with 3 readout seeds each, into runs/taxonomy; about 6 minutes on a 2-core
CPU machine (docs/results.md); ``--quick`` is a one-minute smoke run.
Re-running continues a crashed run; ``--force`` redoes it. Bad input prints
one line and exits with status 2.
"""

from __future__ import annotations

import argparse
import sys

from taskonomy_tf.cli_errors import report_error
from taskonomy_tf.config import ExperimentConfig, quick_experiment, resolve, shorthands
from taskonomy_tf.config import add_arguments as config_arguments
from taskonomy_tf.console import quiet_tensorflow, set_verbose
from taskonomy_tf.errors import UserError


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m taskonomy_tf.pipeline", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", help="TFRecord folder, or a raw Taskonomy/Omnidata folder "
                                  "(with --split-csv); default: the embedded dataset")
    p.add_argument("--split-csv", help="split file for a raw --data folder")
    p.add_argument("--tasks", help="comma-separated task names")
    p.add_argument("--out", default="runs/taxonomy",
                   help="output folder (default: %(default)s; runs/ is git-ignored)")
    p.add_argument("--budget", type=float, help="supervision budget of the reported taxonomy")
    p.add_argument("--max-order", type=int, help="highest transfer order (default 1)")
    p.add_argument("--image-size", type=int)
    p.add_argument("--train-steps", type=int)
    p.add_argument("--transfer-images", type=int)
    p.add_argument("--transfer-steps", type=int)
    p.add_argument("--transfer-seeds", type=int,
                   help="readout replicates per candidate (default 3)")
    p.add_argument("--seed", type=int, help="drives data order, initialisation, readouts")
    p.add_argument("--workers", type=int, help="processes for transfer jobs (default 1)")
    p.add_argument("--allow-weak-networks", action="store_true",
                   help="continue (with a warning) when a network does not beat its "
                        "constant baseline")
    p.add_argument("--source", action="append", metavar="NAME=FILE.keras",
                   help="your own encoder as a transfer source (repeatable): a Keras model "
                        "from images in [-1, 1] to a feature map (transfers.sources)")
    p.add_argument("--published", help="the published affinities to compare rankings with: "
                   "16k (default), 1k, a file, or none")
    p.add_argument("--quick", action="store_true",
                   help="a one-minute smoke run (experiments/embedded_quick.py)")
    p.add_argument("--force", action="store_true", help="redo every stage")
    p.add_argument("--verbose", action="store_true",
                   help="show TensorFlow's own log lines (hidden by default)")
    config_arguments(p)
    a = p.parse_args(argv)
    # the flags are shorthands for keys of the experiment; --set comes last
    flags = shorthands({
        "data.path": a.data, "data.split_csv": a.split_csv, "tasks": a.tasks,
        "taxonomy.budget": a.budget, "transfers.max_order": a.max_order,
        "data.image_size": a.image_size, "networks.steps": a.train_steps,
        "transfers.images": a.transfer_images, "transfers.steps": a.transfer_steps,
        "transfers.seeds": a.transfer_seeds, "seed": a.seed, "transfers.workers": a.workers,
        "networks.allow_weak": a.allow_weak_networks, "report.published": a.published,
        "transfers.sources": a.source})
    try:
        base = quick_experiment() if a.quick else ExperimentConfig(name="embedded_default")
        experiment = resolve(a.config, flags + a.set, base)
        set_verbose(a.verbose)
        quiet_tensorflow()
        if a.dry_run:
            from taskonomy_tf.transfer.memory import print_plan

            print_plan(experiment)
            return 0
        from taskonomy_tf.pipeline import run_pipeline

        ctx = run_pipeline(experiment, a.out, force=a.force)
    except (UserError, FileNotFoundError) as e:
        return report_error(e)
    print(f"report: {ctx.out / 'report.md'} (and report.html)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
