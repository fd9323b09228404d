"""The pipeline's stages. Each takes the run's context and returns a dict
of what it made (paths relative to the output folder, and a few numbers)
for ``stages/<name>.json`` and the report. Every stage is itself
resumable: training resumes from its backups, the transfer grid skips
finished jobs, and files are written atomically. The run's context is in
``context.py``, the taxonomy stage's measures in ``measures.py`` and the
figures stage in ``figures.py``.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

from taskonomy_tf.data.available import ALL  # light: the catalog only
from taskonomy_tf.data.card import is_card
from taskonomy_tf.errors import InputError, UserError
from taskonomy_tf.pipeline.context import Context, estimating, write_json
from taskonomy_tf.pipeline.figures import stage_figures
from taskonomy_tf.pipeline.measures import (
    loss_ratios,
    network_win_rates,
    oracle_agreement,
    random_checks,
)


def _has_split(records: Path, split: str) -> bool:
    return any(records.glob(f"{split}-*.tfrecord"))


def stage_data(ctx: Context) -> dict:
    """The TFRecords: the embedded dataset, a folder of shards, or a raw
    Taskonomy/Omnidata folder converted into ``records/``."""
    cfg = ctx.config
    if cfg.data.path is None:
        from taskonomy_tf.synth import embedded_dataset

        records = embedded_dataset(progress=ctx.progress)
        source = "the embedded synthetic dataset"
    elif any(Path(cfg.data.path).glob("*.tfrecord")):
        records, source = Path(cfg.data.path), f"TFRecords in {cfg.data.path}"
    elif is_card(cfg.data.path):
        from tfrecords_tools.card import card_records

        records = card_records(cfg.data.path, progress=ctx.progress)
        source = f"dataset card {cfg.data.path}, converted into {records}"
    else:
        from tfrecords_tools.convert import convert

        if not cfg.data.split_csv:
            raise InputError(f"--data {cfg.data.path}: a raw folder needs --split-csv (the "
                             "Taskonomy split file) to make train/val/test shards")
        records = ctx.out / "records"
        for split in ("train", "val", "test"):
            convert(cfg.data.path, str(records), split_csv=cfg.data.split_csv, split=split,
                    progress=ctx.progress)
        source = f"raw folder {cfg.data.path}, converted"
    for split in ("train", "test"):
        if not _has_split(records, split):
            raise InputError(f"{records}: no {split!r} shards; the pipeline trains on train "
                             "and measures transfers on test")
    tasks, skipped = list(cfg.tasks), {}
    if ALL in cfg.tasks:
        from taskonomy_tf.data.available import available_tasks
        from taskonomy_tf.transfer.schedule import transfer_split

        splits = tuple(dict.fromkeys(("train", transfer_split(records, cfg.transfers.split),
                                      "test")))
        tasks, skipped = available_tasks(records, cfg.tasks, splits)
        if len(tasks) < 2:
            raise InputError(f"--tasks all: the records supply {len(tasks)} task(s); skipped: "
                             + "; ".join(f"{t} ({why})" for t, why in skipped.items()))
    return {"records": str(records), "source": source, "tasks": tasks, "skipped": skipped}


class WeakNetworkError(UserError, RuntimeError):
    """A task network does no better than its constant baseline."""


def network_sets(ctx: Context) -> list[tuple[str, str, int]]:
    """(models folder, transfers folder, training seed) of each set of task
    networks (``networks.seeds``): ``models``/``transfers`` with the run's
    seed, then ``models.<k>``/``transfers.<k>`` with 1,000,000 + 1,000 x the
    run's seed + k, disjoint from every run's first set (run seeds 0, 1, 2
    share no network)."""
    n = ctx.config.networks.seeds
    if n < 1:
        raise InputError(f"networks.seeds must be at least 1, got {n}")
    seed = ctx.config.seed
    return [("models", "transfers", seed)] + [
        (f"models.{k}", f"transfers.{k}", 1_000_000 + 1_000 * seed + k) for k in range(1, n)]


def validation_plan(networks) -> dict:
    """The pipeline's epochs of a network (``networks``: the experiment's
    section): ``networks.validations`` epochs, each validated (the best state
    kept), or with 0 two epochs (resumable half way) validated once at the
    end. Returns ``TrainConfig`` fields: ``steps_per_epoch``, ``validation_freq``."""
    n = networks.validations
    return {"steps_per_epoch": -(-networks.steps // (n or 2)), "validation_freq": int(n > 0)}


def stage_train(ctx: Context) -> dict:
    """One network per task under ``models/<task>`` (per set of networks:
    ``network_sets``), each compared with its floor on ``val``: the lower of
    its constant baseline's loss (the best input-independent prediction,
    fitted on the training split) and the untrained network's. Stops the run
    when one has not learnt its task (see ``networks.max_constant_ratio``)."""
    from tqdm import tqdm

    from taskonomy_tf.training import TrainConfig, train_and_evaluate

    cfg = ctx.config
    sets = network_sets(ctx)
    every: dict[str, list[dict]] = {t: [] for t in ctx.tasks}
    jobs = [(folder, seed, task) for folder, _, seed in sets for task in ctx.tasks]
    for folder, seed, task in tqdm(jobs, desc="train", unit="network", disable=not ctx.progress):
        tc = TrainConfig.from_experiment(cfg, task, **validation_plan(cfg.networks),
                                         tensorboard=False, verbose=0)
        tc = dataclasses.replace(tc, seed=seed,
                                 data=dataclasses.replace(cfg.data, path=str(ctx.data)))
        train_and_evaluate(tc, ctx.out / folder / task, resume=True)
        every[task].append(_network_metrics(ctx.out / folder / task))
    metrics = {t: {**v[0], **({"ratio_to_floor_per_set": [m["ratio_to_floor"] for m in v]}
                             if len(v) > 1 else {})} for t, v in every.items()}
    worst = {t: max((m["ratio_to_floor"] for m in v if m["ratio_to_floor"] is not None),
                    default=None) for t, v in every.items()}
    weak = {t: r for t, r in worst.items()
            if r is not None and r > cfg.networks.max_constant_ratio}
    if weak and not cfg.networks.allow_weak:
        raise WeakNetworkError(
            "networks no better than their floor (validation loss / the lower of the "
            "constant's and the untrained network's above "
            + f"{cfg.networks.max_constant_ratio:g}): "
            + ", ".join(f"{t} {r:.2f}" for t, r in weak.items())
            + "; a taxonomy of them would rank noise. Train longer (--train-steps) or pass "
            "--allow-weak-networks")
    return {"models": "models", "sets": [folder for folder, _, _ in sets], "metrics": metrics,
            "weak": weak}


def _network_metrics(workdir: Path) -> dict:
    from taskonomy_tf.training.loop import floor_ratios

    m = json.loads((workdir / "metrics.json").read_text())
    final = m.get("final", {})
    ratios = floor_ratios(m, final["val_loss"]) if "val_loss" in final else {}
    return {"constant_val_loss": m["constant"].get("val_loss"),
            "untrained_val_loss": m.get("untrained", {}).get("val_loss"),
            "val_loss": final.get("val_loss"),
            "ratio_to_constant": ratios.get("ratio_to_constant"),
            "floor": ratios.get("floor"),
            "ratio_to_floor": ratios.get("ratio_to_floor"),
            "steps": m["epochs"][-1]["step"] if m.get("epochs") else None,
            "kept_step": final.get("step"), "stopped": final.get("stopped")}


def stage_transfers(ctx: Context) -> dict:
    """The first-order grid (and the beam up to ``max_order``) -> ``losses.csv``."""
    from taskonomy_tf.taxonomy.ahp import ahp_scores
    from taskonomy_tf.taxonomy.losses import merge_network_replicates
    from taskonomy_tf.transfer import replicate_seeds, run_grid
    from taskonomy_tf.transfer.schedule import transfer_split

    cfg = ctx.config
    # transfers train on images the task networks never saw, as the paper's
    # did (its "val" split, reference section 4), when the data has them
    train_split = transfer_split(ctx.data, cfg.transfers.split)
    if estimating(ctx):
        from taskonomy_tf.pipeline.estimate_mode import estimate_transfers

        return estimate_transfers(ctx, train_split)
    prefilter = estimate_prefilter(ctx, train_split) if cfg.transfers.prefilter else None
    from taskonomy_tf.transfer.sources import parse_sources

    sources = parse_sources(cfg.transfers.sources)
    tables, jobs = [], []
    for models, transfers, _ in network_sets(ctx):  # a grid per set of networks
        out = ctx.out / transfers
        result = run_grid(list(ctx.tasks), ctx.out / models, ctx.data, out,
                          max_order=cfg.transfers.max_order, n_images=cfg.transfers.images,
                          steps=cfg.transfers.steps, batch_size=cfg.transfers.batch_size,
                          learning_rate=cfg.transfers.learning_rate,
                          seeds=replicate_seeds(cfg.seed, cfg.transfers.seeds),
                          image_size=cfg.data.image_size, workers=cfg.transfers.workers,
                          train_split=train_split,
                          progress=ctx.progress, score=ahp_scores, prefilter=prefilter,
                          sources=sources, oracle=cfg.transfers.oracle)
        tables.append(result.table)
        jobs += sorted((out / "jobs").glob("*.json"))
    table = tables[0] if len(tables) == 1 else merge_network_replicates(
        tables, ctx.out / "transfers" / "losses_networks.csv")
    seconds = sum(json.loads(p.read_text())["seconds"] for p in jobs)
    return {"losses": str(table.relative_to(ctx.out)), "jobs": len(jobs),
            "job_seconds": round(seconds, 1), "transfer_split": train_split,
            **({"prefilter": {"estimator": cfg.transfers.estimator, "k": cfg.transfers.prefilter,
                              "kept": prefilter}} if prefilter else {})}


ESTIMATE = "transfers/estimate.json"


def estimate_scores(ctx: Context, split: str):
    """``transfers.estimator``'s table of every ordered pair of the run's
    tasks on the transfer split's codes (the grid's feature cache), saved
    to ``ESTIMATE``; returns (the table, ``estimate_inputs.gather``'s result)."""
    from taskonomy_tf.estimate import estimate_table
    from taskonomy_tf.taxonomy.bootstrap import group_of_id
    from taskonomy_tf.transfer.estimate_inputs import gather

    cfg = ctx.config
    got = gather(list(ctx.tasks), ctx.out / "models", ctx.data, split, cfg.transfers.images,
                 cfg.data.image_size, ctx.out / "transfers" / "cache")
    table = estimate_table(cfg.transfers.estimator, got.codes, got.labels,
                           [group_of_id(i) for i in got.ids], got.dense)
    table.save(ctx.out / ESTIMATE)
    return table, got


def estimate_prefilter(ctx: Context, split: str) -> dict[str, list[str]]:
    """target -> its ``transfers.prefilter`` best sources by the cheap
    estimator (``estimate_scores``). A target the estimator cannot score
    (or, with ``transfers.complete``, cannot complete) keeps every source."""
    from taskonomy_tf.transfer.schedule import prefilter_sources

    table, _ = estimate_scores(ctx, split)
    return prefilter_sources(table, ctx.config.transfers.prefilter, ctx.config.transfers.complete)


def prefilter_priors(ctx: Context) -> dict[str, dict[str, float]] | None:
    """target -> the estimator's tournament that completes a pre-filtered
    grid's affinities (``transfers.complete``; ``taxonomy.losses``), or
    None: no pre-filter, completion off, or an estimator without one."""
    from taskonomy_tf.taxonomy import load_table

    if not (ctx.results["transfers"].get("prefilter") and ctx.config.transfers.complete):
        return None
    estimate = load_table(ctx.out / ESTIMATE, max_value=None)
    return estimate.meta.get("tournament") or None


def stage_taxonomy(ctx: Context) -> dict:
    """Win rates and AHP -> tables; the budget sweep; the dictionary at the
    budget; the bootstrap over test images and readout replicates."""
    from taskonomy_tf.taxonomy import solve_taxonomy, sweep
    from taskonomy_tf.taxonomy.bootstrap import bootstrap
    from taskonomy_tf.taxonomy.compare import cluster_means
    from taskonomy_tf.taxonomy.losses import loss_matrices, tables_from_matrices

    if estimating(ctx):
        from taskonomy_tf.pipeline.estimate_mode import estimate_taxonomy

        return estimate_taxonomy(ctx)
    cfg = ctx.config
    folder = ctx.out / "taxonomy"
    path = ctx.out / ctx.results["transfers"]["losses"]
    matrices = loss_matrices(path)
    priors = prefilter_priors(ctx)
    tables = tables_from_matrices({t: (c, m) for t, (c, _, _, m) in matrices.items()},
                                  {"losses_table": str(path)}, priors)
    for name, table in tables.items():
        table.save(folder / f"{name}.json")
    aff = tables["affinities"]
    budgets = [float(b) for b in range(1, len(ctx.tasks) + 1)]
    # the random encoder is a reference, not a task to supervise: it stays in the
    # AHP normalisation (as in the released files) but the program never
    # chooses it (build_instance's default)
    rows = sweep(aff, budgets, max_order=cfg.transfers.max_order, wins_task=tables["wins_vs_task"],
                 wins_pixels=tables["wins_vs_pixels"])
    write_json(folder / "sweep.json", rows)
    solution = solve_taxonomy(aff, ctx.budget, cfg.transfers.max_order)
    write_json(folder / "taxonomy.json", solution.to_dict())
    boot = bootstrap(matrices, [ctx.budget], cfg.transfers.max_order,
                     resamples=cfg.taxonomy.resamples,
                     confidence=cfg.taxonomy.confidence, seed=cfg.seed, priors=priors)
    write_json(folder / "bootstrap.json", boot.to_json())
    out = {"random_not_beaten": random_checks(aff),
           "tables": {k: f"taxonomy/{k}.json" for k in tables}, "sweep": "taxonomy/sweep.json",
           "taxonomy": "taxonomy/taxonomy.json", "bootstrap": "taxonomy/bootstrap.json",
           "cluster_means": {f"{a}->{b}": v for (a, b), v in cluster_means(aff).items()},
           "contrasts": boot.contrasts,
           "mean_loss_ratio": loss_ratios(matrices),
           "network_win_rates": network_win_rates(matrices),
           **({"estimated": aff.meta["estimated"]} if aff.meta.get("estimated") else {}),
           **({"oracle": oracle_agreement(matrices)} if cfg.transfers.oracle else {})}
    if cfg.data.path and is_card(cfg.data.path):
        from taskonomy_tf.synth.planted import PLANTED_FILE, planted_recovery

        if (Path(cfg.data.path) / PLANTED_FILE).is_file():  # a planted taxonomy: its recovery
            out["planted"] = planted_recovery(aff, cfg.data.path, boot.contrasts, rows)
    agreement = published_agreement(ctx, aff, cfg.transfers.max_order)
    if agreement:
        out["agreement"] = agreement
    return out


def published_agreement(ctx: Context, aff, max_order: int) -> str | None:
    """Compares ``aff`` with the published affinities (``report.published``,
    against ``report.reference`` as the ceiling) into
    ``taxonomy/agreement.json``; its path, or ``None`` when no comparison is
    asked for or no task is shared (your own data)."""
    cfg = ctx.config
    if not cfg.report.published:
        return None
    from taskonomy_tf.published import published_path
    from taskonomy_tf.taxonomy import load_table
    from taskonomy_tf.taxonomy.compare import compare_published, restrict

    ref = cfg.report.reference
    reference = load_table(published_path(ref)) if ref else None
    # a network that has not learnt its task (kept only with networks.allow_weak)
    # has an untrained network's code: as a source it scrambles every ranking it
    # enters, as a target its own floor is not met. It is left out of the
    # comparison with the paper, and the report names it.
    weak = (ctx.results.get("train") or {}).get("weak") or {}
    learnt = [t for t in aff.targets if t not in weak]
    agreement = compare_published(restrict(aff, learnt) if weak else aff,
                                  load_table(published_path(cfg.report.published)),
                                  range(1, min(8, len(learnt)) + 1), max_order,
                                  reference=reference, seed=cfg.seed)
    if not agreement["targets"]:
        return None
    if weak:
        agreement["left_out"] = {t: weak[t] for t in sorted(weak)}
    write_json(ctx.out / "taxonomy" / "agreement.json", agreement)
    return "taxonomy/agreement.json"


def stage_report(ctx: Context) -> dict:
    from taskonomy_tf.pipeline.report import write_report

    return write_report(ctx)


STAGES = (("data", stage_data), ("train", stage_train), ("transfers", stage_transfers),
          ("taxonomy", stage_taxonomy), ("figures", stage_figures), ("report", stage_report))
