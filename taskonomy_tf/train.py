"""Train one task network.

    python -m taskonomy_tf.train --task=edges [--data DIR] [--workdir DIR]
        [--encoder NAME] [--image-size N] [--batch-size N] [--steps N | --epochs N]
        [--precision auto|float32|mixed_bfloat16|mixed_float16]
        [--strategy auto|one_device|mirrored|multi_worker] [--resume] [--seed N]
        [--set key=value ...]

With no ``--data`` it trains on the embedded synthetic dataset (built once).
"""

from __future__ import annotations

import argparse
import dataclasses
import sys

from taskonomy_tf.cli_errors import report_error
from taskonomy_tf.console import quiet_tensorflow, set_verbose
from taskonomy_tf.errors import UserError


def parse_args(argv):
    p = argparse.ArgumentParser(prog="python -m taskonomy_tf.train",
                                description="Train one Taskonomy task network.")
    p.add_argument("--task", required=True,
                   help="task name or alias (edges, normals, rgb2depth...)")
    p.add_argument("--data", help="folder of TFRecord shards (default: the embedded dataset)")
    p.add_argument("--workdir", help="output folder (default: runs/<task>)")
    p.add_argument("--encoder", help="small (default) or resnet50")
    p.add_argument("--image-size", type=int)
    p.add_argument("--batch-size", type=int)
    g = p.add_mutually_exclusive_group()
    g.add_argument("--steps", type=int)
    g.add_argument("--epochs", type=int)
    p.add_argument("--precision", choices=["auto", "float32", "mixed_bfloat16", "mixed_float16"])
    p.add_argument("--strategy", choices=["auto", "one_device", "mirrored", "multi_worker"])
    p.add_argument("--resume", action="store_true", help="continue an interrupted run")
    p.add_argument("--seed", type=int)
    p.add_argument("--set", nargs="+", default=[], metavar="KEY=VALUE",
                   help="override any config field (see config.json)")
    p.add_argument("--verbose", action="store_true",
                   help="show TensorFlow's own log lines (hidden by default)")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    a = parse_args(argv)
    set_verbose(a.verbose)
    quiet_tensorflow()
    from taskonomy_tf.tasks import get_task

    try:
        task = get_task(a.task).name
    except UserError as exc:
        return report_error(exc)
    from taskonomy_tf.training import TrainConfig, apply_overrides, train_and_evaluate

    given = {"task": task, "data": a.data, "encoder": a.encoder, "image_size": a.image_size,
             "batch_size": a.batch_size, "steps": a.steps, "epochs": a.epochs,
             "precision": a.precision, "strategy": a.strategy, "seed": a.seed}
    try:
        config = dataclasses.replace(TrainConfig(), **{k: v for k, v in given.items()
                                                       if v is not None})
        config = apply_overrides(config, a.set)
        result = train_and_evaluate(config, a.workdir or f"runs/{task}", resume=a.resume)
    except (UserError, FileNotFoundError) as exc:
        return report_error(exc)
    constant = result.get("constant", {}).get("val_loss")
    final = result.get("final", {}).get("val_loss")
    if constant is not None and final is not None:
        print(f"{task}: validation loss {final:.4f} after {result['steps']} steps; the best "
              f"constant prediction scores {constant:.4f} (ratio {final / constant:.2f}, "
              "below 1 = better than the constant)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
