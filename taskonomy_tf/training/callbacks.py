"""Callbacks of a training run: NaN guard and per-epoch metrics as JSON."""

from __future__ import annotations

import json
import math
import time
from pathlib import Path

import keras

from taskonomy_tf.errors import UserError
from taskonomy_tf.fileio import write_json_atomic


class TrainingError(UserError, RuntimeError):
    """Training stopped; the message is one line."""


class NanGuard(keras.callbacks.Callback):
    """Stops at the first non-finite loss, before anything is saved for that step.

    Placed before the checkpointing callbacks, so the last good checkpoint
    (and the resumable backup) stay as they were.
    """

    def __init__(self, checkpoint_hint: str):
        super().__init__()
        self.checkpoint_hint = checkpoint_hint

    def on_train_batch_end(self, batch, logs=None):
        loss = (logs or {}).get("loss")
        if loss is not None and not math.isfinite(float(loss)):
            step = int(self.model.optimizer.iterations.numpy())
            raise TrainingError(f"the loss became {float(loss)} at step {step}; training "
                                "stopped, the last good checkpoint is kept in "
                                f"{self.checkpoint_hint}")


class MetricsJson(keras.callbacks.Callback):
    """Appends each epoch's metrics to ``metrics.json`` (written atomically)."""

    def __init__(self, path: Path, extra: dict | None = None):
        super().__init__()
        self.path = Path(path)
        self.extra = extra or {}
        self.t0 = time.perf_counter()

    def _read(self) -> dict:
        if self.path.exists():
            return json.loads(self.path.read_text())
        return {"epochs": [], **self.extra}

    def write(self, data: dict) -> None:
        write_json_atomic(self.path, data, sort_keys=False)

    def on_epoch_end(self, epoch, logs=None):
        data = self._read()
        data["epochs"] = [e for e in data["epochs"] if e["epoch"] < epoch + 1]
        data["epochs"].append({"epoch": epoch + 1,
                               "step": int(self.model.optimizer.iterations.numpy()),
                               "seconds": round(time.perf_counter() - self.t0, 2),
                               **{k: float(v) for k, v in (logs or {}).items()}})
        self.write(data)
