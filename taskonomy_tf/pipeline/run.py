"""``run_pipeline``: the stages in order, each skipped when a previous run
finished it (``stages/<name>.json``), so a re-run after a crash continues."""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import time
from pathlib import Path

from taskonomy_tf.config import ExperimentConfig
from taskonomy_tf.data.available import ALL
from taskonomy_tf.errors import InputError, UserError
from taskonomy_tf.fileio import write_json_atomic
from taskonomy_tf.pipeline.stages import STAGES, Context

SCHEMA_VERSION = 1
# keys that change how a run executes, not what it computes: a run may
# continue with others (more transfer workers after a crash, say; the name
# is a label)
EXECUTION = ("name", "transfers.workers")
OUTPUT_DIRS = ("models", "transfers", "taxonomy", "figures", "stages")
RECORD = "experiment.json"


class PipelineError(UserError, RuntimeError):
    """A stage failed; the message names it (finished stages are kept)."""


def _keys(config: dict, prefix: str = "") -> dict:
    """``{"networks": {"steps": 460}}`` -> ``{"networks.steps": 460}``."""
    out = {}
    for key, value in config.items():
        if isinstance(value, dict):
            out.update(_keys(value, f"{prefix}{key}."))
        else:
            out[prefix + key] = list(value) if isinstance(value, tuple) else value
    return out


def _check_config(out: Path, config: ExperimentConfig, force: bool) -> None:
    """Refuses an ``out`` that holds a run of other settings (its
    ``experiment.json``), unless ``force``, which clears it; then records
    ``config`` there."""
    path = out / RECORD
    if not force:
        if path.exists():
            old = _keys(json.loads(path.read_text()))
            new = _keys(config.to_dict())
            defaults = _keys(ExperimentConfig().to_dict())  # keys added since: their defaults
            diff = sorted(k for k in (set(old) | set(new)) - set(EXECUTION)
                          if old.get(k, defaults.get(k)) != new.get(k))
            if diff:
                raise InputError(f"{out}: holds a run with other settings ({', '.join(diff)}); "
                                 "pass --force to redo it, or use another --out")
        elif (out / "stages").is_dir():
            raise InputError(f"{out}: holds a run without {RECORD} (an older version's); "
                             "pass --force to redo it, or use another --out")
    if force:
        for name in OUTPUT_DIRS:
            shutil.rmtree(out / name, ignore_errors=True)
        for name in ("report.md", "report.html", "pipeline.json"):
            (out / name).unlink(missing_ok=True)
    out.mkdir(parents=True, exist_ok=True)
    write_json_atomic(path, config.to_dict(), sort_keys=False)


def run_pipeline(config: ExperimentConfig, out: str | os.PathLike, force: bool = False,
                 progress: bool = True) -> Context:
    """Runs (or continues) every stage of an experiment; returns the context
    with each stage's results. The experiment is written, resolved, to
    ``experiment.json``: passed back with ``--config`` it reproduces the run.

    Raises:
        PipelineError: a stage failed on bad input (its name and the cause
            in one line); other exceptions propagate with their traceback.
        InputError: ``out`` holds a run with other settings (without ``force``).
    """
    from taskonomy_tf.config import DEFAULT_TASKS
    from taskonomy_tf.data.card import use_records
    from taskonomy_tf.tasks import get_task

    card_tasks = use_records(config.data.path)  # a dataset card's tasks, by name
    if card_tasks and tuple(config.tasks) == DEFAULT_TASKS:  # no --tasks: the card's labels
        config = dataclasses.replace(config, tasks=tuple(card_tasks))
    config = dataclasses.replace(config, tasks=tuple(t if t == ALL else get_task(t).name
                                                     for t in config.tasks))
    if len(config.tasks) < 2 and ALL not in config.tasks:
        raise InputError(f"--tasks: a taxonomy needs at least 2 tasks, got {config.tasks}")
    out = Path(out)
    _check_config(out, config, force)
    ctx = Context(config, out, progress)
    (out / "stages").mkdir(exist_ok=True)
    for name, fn in STAGES:
        marker = out / "stages" / f"{name}.json"
        if marker.exists():
            ctx.results[name] = json.loads(marker.read_text())
            if progress:
                print(f"[{name}] done in an earlier run; kept")
            continue
        if progress:
            print(f"[{name}] ...", flush=True)
        start = time.perf_counter()
        try:
            result = fn(ctx)
        except (UserError, FileNotFoundError) as e:  # bad input: one line
            raise PipelineError(f"stage {name!r} failed: {e}") from e
        except Exception as e:  # a bug: its traceback, naming the stage
            if hasattr(e, "add_note"):
                e.add_note(f"(in pipeline stage {name!r}; finished stages are kept)")
            raise
        result = {"schema_version": SCHEMA_VERSION, **result,
                  "seconds": round(time.perf_counter() - start, 1)}
        ctx.results[name] = result
        write_json_atomic(marker, result, sort_keys=False)
        if progress:
            print(f"[{name}] {result['seconds']:.0f} s", flush=True)
    return ctx
