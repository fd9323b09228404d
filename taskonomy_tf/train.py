"""Train task networks.

    python -m taskonomy_tf.train --task=edges [--data DIR] [--workdir DIR]
        [--encoder NAME] [--image-size N] [--batch-size N] [--steps N | --epochs N]
        [--precision auto|float32|mixed_bfloat16|mixed_float16]
        [--strategy auto|one_device|mirrored|multi_worker] [--resume] [--seed N]
        [--config FILE] [--set section.key=value | key=value ...] [--dry-run]

With no ``--data`` it trains on the embedded synthetic dataset (built once).
The settings are an experiment's ``networks`` and ``data`` sections
(``taskonomy_tf.config``; the flags are shorthands for its keys). With
``--config`` and no ``--task`` it trains every task of the experiment, each
into ``--workdir``/<task> (default ``runs/<experiment name>/models``). A
``--set`` key without a section that is not an experiment key (``cache``,
``verbose``, ``tensorboard``, ``epochs``, ...) sets that field of the run's
``TrainConfig``.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from pathlib import Path

from taskonomy_tf.cli_errors import report_error
from taskonomy_tf.config import ExperimentConfig, resolve, shorthands
from taskonomy_tf.config import add_arguments as config_arguments
from taskonomy_tf.console import quiet_tensorflow, set_verbose
from taskonomy_tf.errors import InputError, UserError
from taskonomy_tf.fileio import write_json_atomic


def parse_args(argv):
    p = argparse.ArgumentParser(prog="python -m taskonomy_tf.train",
                                description="Train one Taskonomy task network.")
    p.add_argument("--task", help="task name or alias (edges, normals, rgb2depth...); "
                                   "default with --config: every task of the experiment")
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
    config_arguments(p)
    p.add_argument("--verbose", action="store_true",
                   help="show TensorFlow's own log lines (hidden by default)")
    return p.parse_args(argv)


def _split_sets(items: list[str]) -> tuple[list[str], list[str]]:
    """(experiment items, run items): ``section.key=...`` and the experiment's
    top-level keys go to the experiment, other plain keys to ``TrainConfig``."""
    top = {f.name for f in dataclasses.fields(ExperimentConfig)}
    exp, run = [], []
    for item in items:
        key = item.partition("=")[0].strip().replace("-", "_")
        (exp if "." in key or key in top else run).append(item)
    return exp, run


def main(argv: list[str] | None = None) -> int:
    a = parse_args(argv)
    from taskonomy_tf.data.available import ALL, available_tasks, expand

    exp_items, run_items = _split_sets(a.set)
    flags = shorthands({
        "data.path": a.data, "networks.encoder": a.encoder, "data.image_size": a.image_size,
        "networks.batch_size": a.batch_size, "networks.steps": a.steps,
        "networks.precision": a.precision, "networks.strategy": a.strategy, "seed": a.seed})
    try:
        experiment = resolve(a.config, flags + exp_items, ExperimentConfig(name="embedded_default"))
        if a.task is None and a.config is None:
            raise InputError("--task: required without --config (e.g. --task=edges)")
        tasks = expand([a.task] if a.task else experiment.tasks)  # ALL: every task
        if ALL in (a.task, *experiment.tasks) and experiment.data.path and not a.dry_run:
            tasks, skipped = available_tasks(experiment.data.path, tasks, ("train",))
            for name, why in skipped.items():
                print(f"skipped {name}: {why}")
        run = {"epochs": a.epochs} if a.epochs else {}
        set_verbose(a.verbose)
        quiet_tensorflow()
        from taskonomy_tf.training import TrainConfig, apply_overrides, train_and_evaluate

        configs = [apply_overrides(TrainConfig.from_experiment(experiment, t, **run), run_items)
                   for t in tasks]
        if a.dry_run:
            print(json.dumps({"experiment": experiment.to_dict(),
                              "train": [json.loads(c.to_json()) for c in configs]}, indent=1))
            return 0
        for task, config in zip(tasks, configs):
            if a.task:
                workdir = Path(a.workdir or f"runs/{task}")
            else:
                workdir = Path(a.workdir or f"runs/{experiment.name}/models") / task
            result = train_and_evaluate(config, workdir, resume=a.resume)
            write_json_atomic(workdir / "experiment.json", experiment.to_dict(), sort_keys=False)
            _summary(task, result)
    except (UserError, FileNotFoundError) as exc:
        return report_error(exc)
    return 0


def _summary(task: str, result: dict) -> None:
    constant = result.get("constant", {}).get("val_loss")
    final = result.get("final", {}).get("val_loss")
    kept = result.get("final", {}).get("step", result["steps"])
    when = (f"after {kept} steps" if kept == result["steps"] else
            f"kept at step {kept} of {result['steps']} (the lowest validation loss)")
    if constant is not None and final is not None:
        print(f"{task}: validation loss {final:.4f} {when}; the best "
              f"constant prediction scores {constant:.4f} (ratio {final / constant:.2f}, "
              "below 1 = better than the constant)")


if __name__ == "__main__":
    sys.exit(main())
