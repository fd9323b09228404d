"""Training configuration: one dataclass, ``--set key=value`` overrides, JSON out."""

from __future__ import annotations

import dataclasses
import json
import typing

from taskonomy_tf.config import coerce
from taskonomy_tf.errors import InputError

# learning rates per encoder: the paper's Adam 1e-4 for ResNet-50 (taskbank
# configs); the small CPU encoder trains in a few hundred steps at 2e-3.
DEFAULT_LR = {"resnet50": 1e-4, "small": 2e-3}


@dataclasses.dataclass
class TrainConfig:
    """Everything a training run depends on (written to ``config.json``).

    ``data=None`` means the embedded synthetic dataset. ``steps`` (rounded up
    to whole epochs) and ``epochs`` are alternatives; with neither, ``epochs``
    defaults to 4 of ``steps_per_epoch`` (one pass over the training split).
    The resumable state is saved at the end of every epoch: a smaller
    ``steps_per_epoch`` gives finer resume points. ``schedule`` is
    ``cosine`` (linear warm-up over ``warmup``, a fraction of the steps,
    then cosine decay to 1%) or ``constant``; ``steps_per_execution`` runs
    that many steps per call into the compiled graph (batch-level callbacks
    then see every N-th step). ``validation_freq``: validate every N epochs;
    0 validates once, after training (``metrics.json``'s ``final``).
    ``tensorboard``: write TensorBoard logs to ``logs/``. ``jit_compile``:
    XLA-compile the train step: ``auto`` (Keras' choice: on GPUs, not on
    CPU-only machines, where it measured 2x slower), ``true`` or ``false``.
    ``deterministic``: the training stream keeps its order (same seed, same
    batches, as the project's reproducibility promise needs); ``false``
    trades that for input throughput on many cores. Evaluation streams are
    always deterministic. ``cache``: keep decoded examples in memory
    (``true``), stream them from the records every epoch (``false``), or
    ``auto``: cache a split when its decoded size (``cache_bytes``) fits in a
    quarter of this machine's memory and at most 4 GiB, stream otherwise.
    """

    task: str = "edges"
    data: str | None = None
    encoder: str = "small"
    decoder: str | None = None
    image_size: int = 64
    batch_size: int = 32
    steps: int | None = None
    epochs: int | None = None
    steps_per_epoch: int | None = None
    validation_steps: int | None = None
    validation_freq: int = 1
    tensorboard: bool = True
    learning_rate: float | None = None
    schedule: str = "cosine"
    warmup: float = 0.05
    steps_per_execution: int = 1
    jit_compile: str = "auto"
    deterministic: bool = True
    clipnorm: float | None = None
    precision: str = "auto"
    strategy: str = "auto"
    devices: tuple[str, ...] | None = None
    seed: int = 0
    cache: bool | str = "auto"
    augment: bool = True
    verbose: int = 1

    @classmethod
    def from_experiment(cls, exp, task: str, **run) -> TrainConfig:
        """The training settings of ``task`` in an experiment
        (``taskonomy_tf.config.ExperimentConfig``); ``run`` sets the
        run-level fields an experiment does not hold (``cache``, ``verbose``,
        ``epochs``, ...)."""
        n = exp.networks
        return cls(task=task, data=exp.data.path, image_size=exp.data.image_size,
                   encoder=n.encoder, decoder=n.decoder, batch_size=n.batch_size,
                   steps=n.steps, learning_rate=n.learning_rate, schedule=n.schedule,
                   warmup=n.warmup, precision=n.precision, strategy=n.strategy,
                   steps_per_execution=n.steps_per_execution, seed=exp.seed, **run)

    def resolved_lr(self) -> float:
        return self.learning_rate or DEFAULT_LR.get(self.encoder, 1e-4)

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self), indent=1, sort_keys=True)


def apply_overrides(config: TrainConfig, items: list[str]) -> TrainConfig:
    """``["batch_size=8", "cache=false"]`` -> a new config.

    Raises:
        ValueError: an unknown key or a value of the wrong type (one line).
    """
    fields = {f.name: f for f in dataclasses.fields(TrainConfig)}
    hints = typing.get_type_hints(TrainConfig)
    changes = {}
    for item in items:
        key, sep, value = item.partition("=")
        key = key.strip().replace("-", "_")
        if not sep:
            raise InputError(f"--set {item!r}: expected key=value")
        if key not in fields:
            raise InputError(f"--set {key}: unknown key; known: {', '.join(sorted(fields))}")
        try:
            changes[key] = coerce(value, hints[key])
        except ValueError as exc:
            raise InputError(f"--set {key}: {exc}") from None
    return dataclasses.replace(config, **changes)
