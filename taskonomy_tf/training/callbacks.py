"""Callbacks of a training run: NaN guard, per-epoch metrics as JSON, the
kept state and early stopping, and validation draws that leave training's
alone."""

from __future__ import annotations

import json
import math
import time
from pathlib import Path

import keras

from taskonomy_tf.errors import UserError
from taskonomy_tf.fileio import write_json_atomic

# The generator state a sampling loss draws from while validating: an
# arbitrary fixed pair (the paper's year), as any pair of integers is a valid
# ``keras.random.SeedGenerator`` state; only its being fixed matters.
VALIDATION_DRAW = (2018, 0)


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


# Validation losses within this fraction of the lowest count as ties, and a
# tie goes to the later, longer-trained state: a loss that moves by less than
# the validation split's own sampling noise should not pick an earlier one.
TIE = 0.01


def kept_epoch(epochs: list[dict], tie: float = TIE) -> dict | None:
    """The entry of ``epochs`` (``metrics.json``'s list, in order) whose
    weights a run keeps: the latest whose ``val_loss`` is within ``tie`` (a
    fraction) of the lowest; ``None`` when no epoch was validated."""
    scored = [e for e in epochs if math.isfinite(e.get("val_loss", math.nan))]
    if not scored:
        return None
    best = min(e["val_loss"] for e in scored)
    return [e for e in scored if e["val_loss"] - best <= tie * abs(best)][-1]


class EarlyStop(keras.callbacks.Callback):
    """Stops training on the validation loss or a time budget.

    After each epoch it reads the validation history from ``metrics.json``
    (so it must come after ``MetricsJson``; a resumed run counts the epochs
    before the resume) and stops once ``patience`` validated epochs in a row
    came after the state ``kept_epoch`` keeps (0: never), or once this call
    has trained for ``max_seconds`` (``None``: no budget). ``reason`` is then
    ``"patience"`` or ``"time"``.
    """

    def __init__(self, metrics: Path, patience: int = 0, max_seconds: float | None = None):
        super().__init__()
        self.metrics, self.patience, self.max_seconds = Path(metrics), patience, max_seconds
        self.reason: str | None = None
        self.t0 = time.perf_counter()

    def on_train_begin(self, logs=None):
        self.t0, self.reason = time.perf_counter(), None

    def stopped_by_loss(self, epochs: list[dict]) -> bool:
        """Whether ``epochs`` (``metrics.json``'s) end ``patience`` validated
        epochs after the kept one: a run resumed from such a backup trains
        no more."""
        kept = kept_epoch(epochs)
        return bool(self.patience) and kept is not None and sum(
            e["epoch"] > kept["epoch"] and "val_loss" in e for e in epochs) >= self.patience

    def on_epoch_end(self, epoch, logs=None):
        if self.stopped_by_loss(json.loads(self.metrics.read_text())["epochs"]):
            self.reason = "patience"
        if (self.reason is None and self.max_seconds is not None
                and time.perf_counter() - self.t0 >= self.max_seconds):
            self.reason = "time"
        if self.reason is not None:
            self.model.stop_training = True


class FixedValidationDraw(keras.callbacks.Callback):
    """Validation draws the pixels of a sampling loss (``models.losses``,
    the segmentation metric) from one fixed generator state, and training's
    draws continue where they were.

    Without it each validation advanced the loss's generator, so a network
    validated eight times trained on other pixels than the same network
    validated once, and each validation scored other pixels. With it the
    training path does not depend on how often it is validated, and every
    validation scores the same pixels of the same images (the validation
    split is read in order), so epochs compare on one sample. Losses without
    a ``seed_generator`` are left alone.
    """

    def __init__(self):
        super().__init__()
        self._saved: list = []

    def _generators(self) -> list:
        loss = self.model.loss
        losses = loss.values() if isinstance(loss, dict) else [loss]
        return [g for g in (getattr(f, "seed_generator", None) for f in losses)
                if isinstance(g, keras.random.SeedGenerator)]

    def on_test_begin(self, logs=None):
        self._saved = [(g, g.state.numpy()) for g in self._generators()]
        for g, _ in self._saved:
            g.state.assign(VALIDATION_DRAW)

    def on_test_end(self, logs=None):
        for g, state in self._saved:
            g.state.assign(state)
        self._saved = []
