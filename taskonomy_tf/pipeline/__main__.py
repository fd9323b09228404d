"""``python -m taskonomy_tf.pipeline``: from images to a task taxonomy report.

    python -m taskonomy_tf.pipeline [--data DIR] [--tasks A,B,...] [--out DIR]
        [--seed N] [--budget B] [--max-order K] [--quick] [--force] [--published FILE]
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
    p.add_argument("--published", help="a published affinities file to compare rankings with")
    p.add_argument("--quick", action="store_true", help="a few minutes' smoke run")
    p.add_argument("--force", action="store_true", help="redo every stage")
    p.add_argument("--verbose", action="store_true",
                   help="show TensorFlow's own log lines (hidden by default)")
    a = p.parse_args(argv)
    set_verbose(a.verbose)
    quiet_tensorflow()
    from taskonomy_tf.pipeline import PipelineConfig, run_pipeline

    fields = ("data", "split_csv", "budget", "max_order", "image_size", "train_steps",
              "transfer_images", "transfer_steps", "transfer_seeds", "seed", "workers",
              "published")
    overrides = {k: getattr(a, k) for k in fields if getattr(a, k) is not None}
    if a.allow_weak_networks:
        overrides["allow_weak_networks"] = True
    if a.tasks:
        overrides["tasks"] = tuple(t.strip() for t in a.tasks.split(",") if t.strip())
    try:
        config = PipelineConfig.quick(**overrides) if a.quick else PipelineConfig(**overrides)
        ctx = run_pipeline(config, a.out, force=a.force)
    except (UserError, FileNotFoundError) as e:
        return report_error(e)
    print(f"report: {ctx.out / 'report.md'} (and report.html)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
