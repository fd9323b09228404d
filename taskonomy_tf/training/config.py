"""Training configuration: the experiment's ``data`` and ``networks``
sections (``taskonomy_tf.config``, the one place a network key is defined)
plus the settings of one run, ``--set key=value`` overrides, JSON out."""

from __future__ import annotations

import dataclasses
import json
import typing

from taskonomy_tf.config import DataConfig, NetworksConfig, coerce
from taskonomy_tf.errors import InputError

# learning rates per encoder: the paper's Adam 1e-4 for ResNet-50 (taskbank
# configs); the small CPU encoder trains in a few hundred steps at 2e-3.
DEFAULT_LR = {"resnet50": 1e-4, "small": 2e-3}


@dataclasses.dataclass
class TrainConfig:
    """Everything a training run depends on (written, flattened, to
    ``config.json``).

    ``data`` and ``networks`` are the experiment's sections as they are
    (``data.path=None``: the embedded synthetic dataset); the other fields
    set how this one run executes. ``epochs``, when given, trains that many
    epochs of ``steps_per_epoch`` instead of ``networks.steps``. The
    resumable state is saved at the end of every epoch: a smaller
    ``steps_per_epoch`` gives finer resume points. ``validation_freq``:
    validate every N epochs; 0 validates once, after training
    (``metrics.json``'s ``final``). ``tensorboard``: write TensorBoard logs
    to ``logs/``. ``jit_compile``: XLA-compile the train step: ``auto``
    (Keras' choice: on GPUs, not on CPU-only machines, where it measured 2x
    slower), ``true`` or ``false``. ``deterministic``: the training stream
    keeps its order (same seed, same batches, as the project's
    reproducibility promise needs); ``false`` trades that for input
    throughput on many cores. Evaluation streams are always deterministic.
    ``cache``: keep decoded examples in memory (``true``), stream them from
    the records every epoch (``false``), or ``auto``: cache a split when its
    decoded size (``cache_bytes``) fits in a quarter of this machine's
    memory and at most 4 GiB, stream otherwise.
    """

    task: str = "edges"
    data: DataConfig = dataclasses.field(default_factory=DataConfig)
    networks: NetworksConfig = dataclasses.field(default_factory=NetworksConfig)
    seed: int = 0
    epochs: int | None = None
    steps_per_epoch: int | None = None
    validation_steps: int | None = None
    validation_freq: int = 1
    tensorboard: bool = True
    jit_compile: str = "auto"
    deterministic: bool = True
    clipnorm: float | None = None
    devices: tuple[str, ...] | None = None
    cache: bool | str = "auto"
    augment: bool = True
    verbose: int = 1

    @classmethod
    def from_experiment(cls, exp, task: str, **run) -> TrainConfig:
        """The training settings of ``task`` in an experiment
        (``taskonomy_tf.config.ExperimentConfig``): its ``data`` and
        ``networks`` sections and its seed; ``run`` sets this run's own
        fields (``cache``, ``verbose``, ``epochs``, ...)."""
        return cls(task=task, data=exp.data, networks=exp.networks, seed=exp.seed, **run)

    @classmethod
    def of(cls, task: str, data: str | None = None, **keys) -> TrainConfig:
        """A config from flat keys: ``data`` is the data path, and each other
        key goes to the field of that name, of this class or of its
        ``data`` or ``networks`` section (``TrainConfig.of("edges",
        image_size=32, steps=8, cache=False)``).

        Raises:
            InputError: a key no section has.
        """
        parts = _route(keys)
        return cls(task=task, data=DataConfig(path=data, **parts["data"]),
                   networks=NetworksConfig(**parts["networks"]), **parts["run"])

    @property
    def steps(self) -> int | None:
        """Steps to train: ``networks.steps``, or ``None`` when ``epochs`` is given."""
        return None if self.epochs else self.networks.steps

    def resolved_lr(self) -> float:
        return self.networks.learning_rate or DEFAULT_LR.get(self.networks.encoder, 1e-4)

    def flat(self) -> dict:
        """One mapping of every setting (the form ``config.json`` keeps):
        the sections' keys beside the run's, ``data`` the data path."""
        d = dataclasses.asdict(self)
        data, networks = d.pop("data"), d.pop("networks")
        return {**d, **networks, **{k: v for k, v in data.items() if k != "path"},
                "data": data["path"], "steps": self.steps}

    def to_json(self) -> str:
        return json.dumps(self.flat(), indent=1, sort_keys=True)


def _sections() -> dict[str, type]:
    return {"data": DataConfig, "networks": NetworksConfig}


def _owners() -> dict[str, str]:
    """Each flat key -> where it lives: ``run`` (a field of this class),
    ``data`` or ``networks`` (a field of that section; ``data.path`` is
    ``TrainConfig.of``'s ``data``)."""
    out = {f.name: "run" for f in dataclasses.fields(TrainConfig)
           if f.name not in ("task", *_sections())}
    for name, cls in _sections().items():
        out.update({f.name: name for f in dataclasses.fields(cls) if f.name != "path"})
    return out


def _route(keys: dict) -> dict[str, dict]:
    """Flat keys -> {"run": ..., "data": ..., "networks": ...} by field name."""
    owners = _owners()
    out: dict[str, dict] = {"run": {}, "data": {}, "networks": {}}
    for key, value in keys.items():
        if key not in owners:
            raise InputError(f"{key}: unknown training key; known: {', '.join(sorted(owners))}")
        out[owners[key]][key] = value
    return out


def apply_overrides(config: TrainConfig, items: list[str]) -> TrainConfig:
    """``["batch_size=8", "cache=false"]`` -> a new config: each key is a
    field of the run or of its ``data`` or ``networks`` section.

    Raises:
        InputError: not ``key=value``, an unknown key or a value of the
            wrong type (one line).
    """
    hints = {**typing.get_type_hints(TrainConfig),
             **{k: v for cls in _sections().values()
                for k, v in typing.get_type_hints(cls).items()}}
    known = sorted(_owners())
    changes = {}
    for item in items:
        key, sep, value = item.partition("=")
        key = key.strip().replace("-", "_")
        if not sep:
            raise InputError(f"--set {item!r}: expected key=value")
        if key not in known:
            raise InputError(f"--set {key}: unknown key; known: {', '.join(known)}")
        try:
            changes[key] = coerce(value, hints[key])
        except InputError as exc:
            raise InputError(f"--set {key}: {exc}") from None
    parts = _route(changes)
    return dataclasses.replace(
        config, data=dataclasses.replace(config.data, **parts["data"]),
        networks=dataclasses.replace(config.networks, **parts["networks"]), **parts["run"])
