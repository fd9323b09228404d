"""Transfer commands.

    python -m taskonomy_tf.transfer run --target TASK --sources A[,B...] --models DIR
        [--data DIR] [--transfer-images N] [--steps S] [--seeds R] [--seed N]
        [--cache DIR] [--json OUT]
    python -m taskonomy_tf.transfer grid --tasks A,B,... --models DIR --out DIR
        [--data DIR] [--max-order K] [--transfer-images N] [--steps S] [--seeds R]
        [--seed N] [--shard I/N] [--backend local|ray] [--workers W]
        [--ray-address ADDR] [--prefilter K --estimate FILE]

``--models DIR`` holds one training workdir per task (``DIR/<task>``, as
``python -m taskonomy_tf.train --workdir`` writes); ``--data`` defaults to
the embedded dataset. ``--sources pixels`` or ``random`` runs that
baseline. Every candidate is trained ``--seeds`` times (readout replicates;
the grid trains all of a target's readouts as one program). Errors in the
input print one line and exit with status 2.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from taskonomy_tf.cli_errors import report_error
from taskonomy_tf.config import add_arguments as config_arguments
from taskonomy_tf.config import parse_shard, resolve, shorthands
from taskonomy_tf.console import quiet_tensorflow, set_verbose
from taskonomy_tf.data.available import ALL  # light: the catalog only
from taskonomy_tf.errors import InputError, UserError


def _list(text: str) -> list[str]:
    return [t.strip() for t in text.split(",") if t.strip()]


def _data(path: str | None) -> Path:
    if path:
        return Path(path)
    from taskonomy_tf.synth import embedded_dataset

    return embedded_dataset()


def cmd_run(a) -> None:
    from taskonomy_tf.fileio import write_json_atomic
    from taskonomy_tf.transfer.cache import FeatureCache
    from taskonomy_tf.transfer.grid import PIXELS, RANDOM, random_encoder
    from taskonomy_tf.transfer.runner import replicate_seeds, run_candidates
    from taskonomy_tf.transfer.schedule import (
        model_architecture,
        model_image_size,
        model_workdirs,
        transfer_split,
    )

    exp, t = a.experiment, a.experiment.transfers
    sources = tuple(s if s in (PIXELS, RANDOM) else _canonical(s) for s in _list(a.sources))
    target = _canonical(a.target)
    trained = [s for s in sources if s not in (PIXELS, RANDOM)]
    workdirs = model_workdirs(a.models, trained) if trained else {}
    first = next(iter(workdirs.values()), None)
    size = a.image_size or (model_image_size(first) if first else exp.data.image_size)
    out = Path(a.cache)
    if RANDOM in sources:
        workdirs[RANDOM] = random_encoder(out, size, exp.seed,
                                          model_architecture(first) if first else "small")
    start = time.perf_counter()
    data = _data(exp.data.path)
    result = run_candidates(target, [sources], workdirs, data, FeatureCache(out),
                            image_size=size, n_images=t.images, steps=t.steps,
                            train_split=transfer_split(data, t.split), batch_size=t.batch_size,
                            learning_rate=t.learning_rate,
                            seeds=replicate_seeds(exp.seed, t.seeds), references=False)
    losses = result[sources]
    name = f"{target}__{'+'.join(sources)}"
    print(f"{name}: mean test loss {losses.mean():.5g} over {losses.shape[1]} images and "
          f"{len(losses)} replicate(s) ({time.perf_counter() - start:.1f} s)")
    if a.json:
        write_json_atomic(Path(a.json), {"target": target, "sources": list(sources),
                                         "images": result.images, "losses": losses.tolist()})


def _canonical(task: str) -> str:
    from taskonomy_tf.tasks import get_task

    return get_task(task).name


def cmd_grid(a) -> None:
    from taskonomy_tf.fileio import write_json_atomic
    from taskonomy_tf.taxonomy.ahp import ahp_scores
    from taskonomy_tf.transfer.schedule import run_grid, transfer_split
    from taskonomy_tf.transfer.sources import parse_sources

    prefilter = None
    if a.prefilter:
        if not a.estimate:
            raise InputError("--prefilter K needs --estimate FILE "
                             "(python -m taskonomy_tf.estimate)")
        from taskonomy_tf.taxonomy import load_table
        from taskonomy_tf.transfer.schedule import prefilter_sources

        prefilter = prefilter_sources(load_table(a.estimate, max_value=None), a.prefilter,
                                      a.experiment.transfers.complete)
    from taskonomy_tf.transfer.runner import replicate_seeds

    exp, t = a.experiment, a.experiment.transfers
    data = _data(exp.data.path)
    train_split = transfer_split(data, t.split)
    tasks = list(exp.tasks)
    if ALL in tasks:
        from taskonomy_tf.transfer.schedule import tasks_with_networks

        tasks = tasks_with_networks(tasks, data, a.models, (train_split, "test"))
    result = run_grid(tasks, a.models, data, a.out, max_order=t.max_order,
                      prefilter=prefilter, train_split=train_split,
                      batch_size=t.batch_size, learning_rate=t.learning_rate,
                      seeds=replicate_seeds(exp.seed, t.seeds),
                      n_images=t.images, steps=t.steps, image_size=a.image_size,
                      shard_spec=parse_shard(a.shard), backend=a.backend, ray_address=a.ray_address,
                      workers=t.workers, score=ahp_scores,
                      sources=parse_sources(t.sources))
    write_json_atomic(Path(a.out) / "experiment.json", exp.to_dict(), sort_keys=False)
    print(f"ran {len(result.ran)} job(s); {result.pending} of the grid not finished")
    if prefilter:
        report = json.loads((Path(a.out) / "prefilter.json").read_text())
        for t, v in report.items():
            print(f"  prefilter {t}: trained {', '.join(v['kept'])}; skipped "
                  f"{', '.join(v['skipped']) or 'none'}")
    if result.table:
        print(f"losses table -> {result.table}")
    elif a.shard:
        print("run the other shards (and this command again for higher orders) to finish")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m taskonomy_tf.transfer", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="command", required=True)
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--models", required=True, help="folder of training workdirs, one per task")
    common.add_argument("--verbose", action="store_true",
                        help="show TensorFlow's own log lines (hidden by default)")
    common.add_argument("--data", help="TFRecord folder (default: the embedded dataset)")
    common.add_argument("--transfer-images", type=int,
                        help="training images per transfer (transfers.images; paper: 16k, 1k)")
    common.add_argument("--steps", type=int, help="readout training steps (transfers.steps)")
    common.add_argument("--image-size", type=int, help="default: the networks' own")
    common.add_argument("--batch-size", type=int, help="transfers.batch_size")
    common.add_argument("--learning-rate", type=float, help="transfers.learning_rate")
    common.add_argument("--seeds", type=int,
                        help="readout replicates per candidate (transfers.seeds)")
    common.add_argument("--seed", type=int, help="the run's seed")
    config_arguments(common)
    r = sub.add_parser("run", parents=[common], help="one transfer")
    r.add_argument("--target", required=True)
    r.add_argument("--sources", required=True, help="comma-separated; or pixels, random")
    r.add_argument("--cache", default="transfer_cache", help="feature cache and result folder")
    r.add_argument("--json", help="write the per-image losses here")
    g = sub.add_parser("grid", parents=[common], help="all transfers among tasks")
    g.add_argument("--tasks", help="comma-separated task names (default: the experiment's)")
    g.add_argument("--out", required=True)
    g.add_argument("--max-order", type=int,
                   help="highest order (raising it on a finished grid adds the beam's jobs)")
    g.add_argument("--transfer-split",
                   help="split the transfer images come from (transfers.split; train when "
                        "the data has no such split)")
    g.add_argument("--shard", help="I/N: run the I-th (0-based) of N disjoint parts")
    g.add_argument("--backend", choices=("local", "ray"), default="local")
    g.add_argument("--workers", type=int, help="local processes running jobs")
    g.add_argument("--source", action="append", metavar="NAME=FILE.keras",
                   help="your own encoder as a source of every target (repeatable; "
                        "transfers.sources)")
    g.add_argument("--prefilter", type=int, metavar="K",
                   help="train only the K best sources per target by --estimate")
    g.add_argument("--estimate", help="an estimator's file (python -m taskonomy_tf.estimate)")
    g.add_argument("--ray-address", help="an existing Ray cluster (default: start one here)")
    a = p.parse_args(argv)
    try:
        flags = shorthands({
            "data.path": a.data, "data.image_size": a.image_size, "seed": a.seed,
            "transfers.images": a.transfer_images, "transfers.steps": a.steps,
            "transfers.batch_size": a.batch_size, "transfers.learning_rate": a.learning_rate,
            "transfers.seeds": a.seeds, "tasks": getattr(a, "tasks", None),
            "transfers.max_order": getattr(a, "max_order", None),
            "transfers.split": getattr(a, "transfer_split", None),
            "transfers.workers": getattr(a, "workers", None),
            "transfers.sources": getattr(a, "source", None)})
        a.experiment = resolve(a.config, flags + a.set)  # the experiment's defaults: val
        set_verbose(a.verbose)
        quiet_tensorflow()
        if a.dry_run:
            if a.command == "grid":
                from taskonomy_tf.transfer.memory import print_plan

                print_plan(a.experiment)
            else:
                print(a.experiment.to_json())
            return 0
        {"run": cmd_run, "grid": cmd_grid}[a.command](a)
    except (UserError, FileNotFoundError) as e:
        return report_error(e)
    return 0


if __name__ == "__main__":
    sys.exit(main())
