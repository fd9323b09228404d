"""One experiment configuration for every command (standard library only).

An experiment is a nested dataclass, ``ExperimentConfig``: the tasks and the
seed, then one section per stage (``data``, ``networks``, ``transfers``,
``taxonomy``, ``report``). Experiments are small Python files with a
``get_config()`` returning one (``experiments/*.py``, in the manner of
big_vision's configs), or the resolved JSON a run writes beside its results
(``experiment.json``), which reproduces the run when passed back.

Every command takes ``--config FILE`` and ``--set section.key=value ...``
(typed by the field: ``--set networks.steps=2000 transfers.seeds=5
data.path=/data/taskonomy``); the flags users know (``--task``, ``--data``,
``--out``, ``--tasks``, ``--seed``, ``--workers``) are shorthands for keys.
docs/configuration.md lists every key (a test keeps it in step with these
classes).
"""

from __future__ import annotations

import dataclasses
import importlib.util
import json
import os
import types
import typing
from pathlib import Path

from taskonomy_tf.errors import InputError

# the default run: 3 2D and 3 3D tasks of the embedded data, enough to see
# whether the 3D tasks cluster as in the paper (docs/results.md)
DEFAULT_TASKS = ("edges", "keypoints2d", "autoencoding", "depth_zbuffer", "normals",
                 "reshading")


@dataclasses.dataclass
class DataConfig:
    """Attributes:
        path: a folder of TFRecord shards, or a raw Taskonomy / Omnidata
            folder (with ``split_csv``); ``None``: the embedded dataset.
        split_csv: the split file of a raw folder (id,train,val,test).
        image_size: input side of networks and transfers, px.
    """

    path: str | None = None
    split_csv: str | None = None
    image_size: int = 64


@dataclasses.dataclass
class NetworksConfig:
    """The task networks (``python -m taskonomy_tf.train``).

    Attributes:
        encoder, decoder: ``models`` registry names (decoder ``None``: the
            encoder's preset).
        batch_size, steps: per network.
        learning_rate: Adam's peak rate (``None``: the encoder's default).
        schedule, warmup: ``cosine`` with a linear warm-up over that
            fraction of the steps, or ``constant``.
        precision, strategy: as ``TrainConfig``'s.
        steps_per_execution: steps per call into the compiled graph.
        max_constant_ratio: a network whose validation loss is above this
            fraction of its floor's (the lower of the best constant
            prediction's and the untrained network's) has not learnt its
            task: the pipeline stops (``allow_weak``: a warning instead).
        validations: how many times the pipeline validates a network, evenly
            over its steps (0: once, after the last step). The network kept
            is the validated state with the lowest validation loss, the
            latest of those within 1% of it (``training.callbacks.kept_epoch``):
            a network that starts to overfit a small dataset is kept from
            before it did, and ``steps`` is a budget, not a prescription.
        patience: stop training after this many validations in a row with
            no state within 1% of the best (0: train every step).
        max_seconds: a time budget per network, seconds: training stops at
            the first validation past it (``None``: no budget). A stop by
            time depends on the machine, so two runs may differ; the report
            says when it happened.
        seeds: sets of task networks the pipeline trains, each with its own
            seed and its own transfer grid; the bootstrap resamples them
            with the readouts, so intervals and stability shares cover
            retraining (1: they do not; each more costs a whole run's
            networks and transfers).
    """

    encoder: str = "small"
    decoder: str | None = None
    batch_size: int = 32
    steps: int = 460
    learning_rate: float | None = None
    schedule: str = "cosine"
    warmup: float = 0.05
    precision: str = "auto"
    strategy: str = "auto"
    steps_per_execution: int = 10
    max_constant_ratio: float = 0.9
    allow_weak: bool = False
    validations: int = 8
    patience: int = 3
    max_seconds: float | None = None
    seeds: int = 1


@dataclasses.dataclass
class TransfersConfig:
    """Frozen-encoder readouts (``python -m taskonomy_tf.transfer grid``).

    Attributes:
        images: transfer images from ``split`` (``None``: all of it).
        split: where the transfer images come from (the paper: ``val``).
        steps, batch_size, learning_rate: per readout, trained from scratch.
        seeds: readout replicates per candidate.
        max_order: highest transfer order (the beam above 1).
        workers: local processes running jobs side by side.
        prefilter: train only each target's ``prefilter`` best sources by
            ``estimator`` (the baselines always); 0 trains every source.
        complete: with ``prefilter``, complete each target's affinities
            with the sources it did not train, from the estimator's
            tournament (``taxonomy.losses``; the ``readout`` estimator has
            one): the program then sees whole rows, as in a full grid.
            False: a target's row holds its trained sources only.
        estimator: the cheap estimate that ranks sources for the prefilter
            (``taskonomy_tf.estimate.METHODS``: readout, local, ridge, knn, rsa,
            logme, hscore).
        sources: your own encoders as sources, ``NAME=FILE.keras`` each
            (``transfer.sources``: images in [-1, 1] to a feature map).
        oracle: also read each target out of every other task's true labels
            (``oracle:<task>`` candidates, outside the affinities): what the
            data builds in, beside what the networks learn.
        mode: ``train`` (readouts trained: measured transfers) or
            ``estimate`` (no readout: the whole taxonomy from ``estimator``'s
            scores of the frozen codes, reported as estimates with how well
            that estimator agreed with trained transfers where it was checked;
            ``pipeline/estimate_mode.py``).
    """

    images: int | None = None
    split: str = "val"
    steps: int = 150
    batch_size: int = 16
    learning_rate: float = 1e-2
    seeds: int = 3
    max_order: int = 1
    workers: int = 1
    prefilter: int = 0
    complete: bool = True
    estimator: str = "readout"
    sources: tuple[str, ...] = ()
    oracle: bool = False
    mode: str = "train"


@dataclasses.dataclass
class TaxonomyConfig:
    """Attributes:
        budget: supervision budget of the reported dictionary (``None``: a
            third of the tasks, at least 1); the sweep covers 1..len(tasks).
        resamples, confidence: the bootstrap over test images and replicates.
    """

    budget: float | None = None
    resamples: int = 100
    confidence: float = 0.9


@dataclasses.dataclass
class ReportConfig:
    """Attributes:
        published: the published affinities to compare rankings with: a
            shipped release of the paper's (``16k``, ``1k``;
            ``taskonomy_tf.published``), a file, or ``None`` for no comparison.
        reference: the paper's other release, whose agreement with
            ``published`` is the ceiling ours is read against (``None``: none).
    """

    published: str | None = "16k"
    reference: str | None = "1k"


@dataclasses.dataclass
class ExperimentConfig:
    """Attributes:
        name: a label for the report.
        tasks: task names or aliases; ``all``: every task the data supplies
            (``data.available``).
        seed: drives data order, initialisation and the readouts' seeds.
    """

    name: str = "experiment"
    tasks: tuple[str, ...] = DEFAULT_TASKS
    seed: int = 0
    data: DataConfig = dataclasses.field(default_factory=DataConfig)
    networks: NetworksConfig = dataclasses.field(default_factory=NetworksConfig)
    transfers: TransfersConfig = dataclasses.field(default_factory=TransfersConfig)
    taxonomy: TaxonomyConfig = dataclasses.field(default_factory=TaxonomyConfig)
    report: ReportConfig = dataclasses.field(default_factory=ReportConfig)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=1, sort_keys=True)


def _sections() -> dict[str, type]:
    return {f.name: f.default_factory for f in dataclasses.fields(ExperimentConfig)
            if f.default_factory is not dataclasses.MISSING}


def coerce(value: str, annotation) -> typing.Any:
    """``value`` as the type ``annotation`` names (``int``, ``float | None``,
    ``tuple[str, ...] | None``, ...), read from its parts with ``typing``.

    Raises:
        InputError: a value the type cannot take (one line).
    """
    text = value.strip()
    parts = typing.get_args(annotation) if typing.get_origin(annotation) in (
        typing.Union, types.UnionType) else (annotation,)
    if type(None) in parts and text.lower() in ("none", "null"):
        return None
    kinds = [typing.get_origin(p) or p for p in parts if p is not type(None)]
    if bool in kinds:
        if text.lower() in ("1", "true", "yes"):
            return True
        if text.lower() in ("0", "false", "no"):
            return False
        if str not in kinds:
            raise InputError(f"expected true/false, got {value!r}")
        return text
    if tuple in kinds:
        return tuple(s.strip() for s in text.split(",") if s.strip())
    numbers = [k for k in (int, float) if k in kinds]
    for kind in numbers:
        try:
            return kind(text)
        except ValueError:
            continue
    if numbers:
        raise InputError(f"expected {numbers[-1].__name__}, got {value!r}")
    return text


def _known(cls) -> str:
    return ", ".join(f.name for f in dataclasses.fields(cls))


def override(config: ExperimentConfig, items: list[str] | None) -> ExperimentConfig:
    """``["networks.steps=2000", "seed=1"]`` -> a new config.

    Raises:
        InputError: not ``key=value``, an unknown section or key (named, with
            the known ones), or a value of the wrong type.
    """
    top = {f.name for f in dataclasses.fields(ExperimentConfig)}
    sections = _sections()
    changes: dict[str, dict] = {}
    top_changes: dict = {}
    for item in items or []:
        key, sep, value = item.partition("=")
        key = key.strip().replace("-", "_")
        if not sep:
            raise InputError(f"--set {item!r}: expected section.key=value")
        section, dot, name = key.rpartition(".")
        if not dot:
            if key not in top or key in sections:
                raise InputError(f"--set {key}: unknown key; known: "
                                 f"{', '.join(sorted(top - set(sections)))} and "
                                 f"section.key for {', '.join(sections)}")
            hints = typing.get_type_hints(ExperimentConfig)
            try:
                top_changes[key] = coerce(value, hints[key])
            except InputError as exc:
                raise InputError(f"--set {key}: {exc}") from None
            continue
        if section not in sections:
            raise InputError(f"--set {key}: unknown section {section!r}; known: "
                             f"{', '.join(sections)}")
        cls = sections[section]
        hints = typing.get_type_hints(cls)
        if name not in hints:
            raise InputError(f"--set {key}: unknown key {name!r} in {section}; known: "
                             f"{_known(cls)}")
        try:
            changes.setdefault(section, {})[name] = coerce(value, hints[name])
        except InputError as exc:
            raise InputError(f"--set {key}: {exc}") from None
    new = {s: dataclasses.replace(getattr(config, s), **c) for s, c in changes.items()}
    return dataclasses.replace(config, **top_changes, **new)


def from_dict(d: dict, where: str = "config") -> ExperimentConfig:
    """A config from its ``to_dict()`` form (unknown keys are an error)."""
    sections = _sections()
    top = {f.name for f in dataclasses.fields(ExperimentConfig)}
    unknown = sorted(set(d) - top)
    if unknown:
        raise InputError(f"{where}: unknown key {unknown[0]!r}; known: {', '.join(sorted(top))}")
    kw = {}
    for key, value in d.items():
        if key in sections:
            if not isinstance(value, dict):
                raise InputError(f"{where}: {key} must be a mapping of its keys")
            cls = sections[key]
            bad = sorted(set(value) - {f.name for f in dataclasses.fields(cls)})
            if bad:
                raise InputError(f"{where}: unknown key {key}.{bad[0]}; known: {_known(cls)}")
            # JSON has lists where the configuration holds tuples
            kw[key] = cls(**{k: tuple(v) if isinstance(v, list) else v
                             for k, v in value.items()})
        elif key == "tasks":
            kw[key] = tuple(value)
        else:
            kw[key] = value
    return ExperimentConfig(**kw)


def load_config(path: str | os.PathLike) -> ExperimentConfig:
    """An experiment from a ``.py`` file (its ``get_config()``) or a resolved
    ``.json``.

    Raises:
        InputError: a missing file, no ``get_config``, or one that does not
            return an ``ExperimentConfig``.
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(f"--config {path}: no such file")
    if path.suffix == ".json":
        try:
            data = json.loads(path.read_text())
        except json.JSONDecodeError as exc:
            raise InputError(f"--config {path}: not JSON ({exc.msg}, line {exc.lineno})") from None
        return from_dict(data, str(path))
    spec = importlib.util.spec_from_file_location(f"_experiment_{path.stem}", path)
    if spec is None or spec.loader is None or path.suffix != ".py":
        raise InputError(f"--config {path}: expected a .py experiment or a .json config")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)  # the user's own experiment file
    get = getattr(module, "get_config", None)
    if get is None:
        raise InputError(f"--config {path}: defines no get_config()")
    config = get()
    if not isinstance(config, ExperimentConfig):
        raise InputError(f"--config {path}: get_config() returned {type(config).__name__}, "
                         "expected taskonomy_tf.config.ExperimentConfig")
    return config


def resolve(path: str | None, items: list[str] | None,
            base: ExperimentConfig | None = None) -> ExperimentConfig:
    """``--config`` (or ``base``, or the defaults), then each ``--set``. When
    ``data.path`` is a dataset card (or records converted from one), its
    tasks are registered, so that ``tasks`` may name them."""
    from taskonomy_tf.data.card import use_records

    config = override(load_config(path) if path else (base or ExperimentConfig()), items)
    use_records(config.data.path)
    return config


def cache_root() -> Path:
    """Where built data is cached: ``$TASKONOMY_TF_CACHE``, else
    ``~/.cache/taskonomy_tf`` (the embedded dataset, converted dataset cards)."""
    return Path(os.environ.get("TASKONOMY_TF_CACHE", Path.home() / ".cache" / "taskonomy_tf"))


def quick_experiment() -> ExperimentConfig:
    """A one-minute smoke run on the embedded data: 4 tasks at 32 px, short
    training (its numbers are not a result; ``experiments/embedded_quick.py``)."""
    return ExperimentConfig(
        name="embedded_quick", tasks=("edges", "autoencoding", "depth_zbuffer", "normals"),
        data=DataConfig(image_size=32),
        networks=NetworksConfig(steps=100, allow_weak=True),
        transfers=TransfersConfig(images=256, steps=60, seeds=2),
        taxonomy=TaxonomyConfig(resamples=30))


def add_arguments(parser) -> None:
    """``--config``, ``--set`` and ``--dry-run`` on an argparse parser."""
    parser.add_argument("--config", metavar="FILE",
                        help="an experiment (.py with get_config(), or a run's experiment.json)")
    parser.add_argument("--set", nargs="+", default=[], metavar="SECTION.KEY=VALUE",
                        help="override keys of the experiment (docs/configuration.md)")
    parser.add_argument("--dry-run", action="store_true",
                        help="print the resolved configuration and exit")


def parse_shard(text: str | None) -> tuple[int, int] | None:
    """``--shard I/N`` (the I-th, 0-based, of N disjoint parts) -> (I, N);
    ``None`` when not given.

    Raises:
        InputError: not ``I/N`` with 0 <= I < N.
    """
    if not text:
        return None
    try:
        i, n = (int(v) for v in text.split("/"))
    except ValueError:
        raise InputError(f"--shard {text!r}: expected I/N, e.g. 0/4") from None
    if not 0 <= i < n:
        raise InputError(f"--shard {text!r}: expected 0 <= I < N")
    return i, n


def shorthands(values: dict[str, object]) -> list[str]:
    """``{"data.path": "/d", "seed": None}`` -> ``["data.path=/d"]``: the
    flags users know, as ``--set`` items (``None``: flag not given)."""
    out = []
    for key, value in values.items():
        if value is None or value is False:
            continue
        if isinstance(value, (tuple, list)):
            value = ",".join(map(str, value))
        out.append(f"{key}={value}")
    return out


def reference_table() -> str:
    """docs/configuration.md's key table, from the dataclasses (a test checks
    that the page holds it): section, key, type, default."""
    rows = ["| key | type | default |", "|---|---|---|"]

    def add(prefix: str, cls) -> None:
        hints = typing.get_type_hints(cls)
        for f in dataclasses.fields(cls):
            if f.default_factory is not dataclasses.MISSING:
                continue
            kind = getattr(hints[f.name], "__name__", None) or str(hints[f.name])
            rows.append(f"| `{prefix}{f.name}` | {kind.replace('|', '&#124;')} | "
                        f"`{f.default!r}` |")

    add("", ExperimentConfig)
    for name, cls in _sections().items():
        add(f"{name}.", cls)
    return "\n".join(rows)
