"""``run_pipeline``: the stages in order, each skipped when a previous run
finished it (``stages/<name>.json``), so a re-run after a crash continues."""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import time
from pathlib import Path

from taskonomy_tf.pipeline.config import PipelineConfig
from taskonomy_tf.pipeline.stages import STAGES, Context
from tfrecords_tools.writer import write_json_atomic

SCHEMA_VERSION = 1
OUTPUT_DIRS = ("models", "transfers", "taxonomy", "figures", "stages")


class PipelineError(RuntimeError):
    """A stage failed; the message names it (finished stages are kept)."""


def _check_config(out: Path, config: PipelineConfig, force: bool) -> None:
    path = out / "pipeline.json"
    if path.exists() and not force:
        old = json.loads(path.read_text())
        new = json.loads(config.to_json())
        diff = sorted(k for k in set(old) | set(new) if old.get(k) != new.get(k))
        if diff:
            raise ValueError(f"{out}: holds a run with other settings ({', '.join(diff)}); "
                             "pass --force to redo it, or use another --out")
    if force:
        for name in OUTPUT_DIRS:
            shutil.rmtree(out / name, ignore_errors=True)
        for name in ("report.md", "report.html"):
            (out / name).unlink(missing_ok=True)
    out.mkdir(parents=True, exist_ok=True)
    write_json_atomic(path, json.loads(config.to_json()))


def run_pipeline(config: PipelineConfig, out: str | os.PathLike, force: bool = False,
                 progress: bool = True) -> Context:
    """Runs (or continues) every stage; returns the context with each stage's results.

    Raises:
        PipelineError: a stage failed (its name and the cause in one line).
        ValueError: ``out`` holds a run with other settings (without ``force``).
    """
    from taskonomy_tf.tasks import get_task

    config = dataclasses.replace(config, tasks=tuple(get_task(t).name for t in config.tasks))
    if len(config.tasks) < 2:
        raise ValueError(f"--tasks: a taxonomy needs at least 2 tasks, got {config.tasks}")
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
        except Exception as e:
            raise PipelineError(f"stage {name!r} failed: {type(e).__name__}: {e}") from e
        result = {"schema_version": SCHEMA_VERSION, **result,
                  "seconds": round(time.perf_counter() - start, 1)}
        ctx.results[name] = result
        write_json_atomic(marker, result, sort_keys=False)
        if progress:
            print(f"[{name}] {result['seconds']:.0f} s", flush=True)
    return ctx
