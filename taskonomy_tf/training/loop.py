"""``train_and_evaluate``: one task network, from records to a saved model.

The workdir receives ``config.json``, ``checkpoints/`` (weights per epoch; once
finished, only the kept state's: see ``EarlyStop`` and ``kept_epoch``),
``backup/`` (the resumable state while a run is unfinished), ``logs/``
(TensorBoard), ``metrics.json`` (per epoch; the constant baseline and the
final network, both as mean per-image validation loss, and their ratio),
``encoder.keras`` and ``model.keras``, each written under a temporary name
and renamed, then ``done.json``, the completion stamp (steps trained). A run
is finished when its stamp exists; until then ``backup/`` is kept, so a run
killed at any point, the final saves included, resumes from its last epoch.

The network starts from the task's best constant prediction, fitted on the
training split (``models.constant``, stored in the model as its
``OutputPrior``), and learns the residual; the learning rate warms up
linearly over the first ``warmup`` of the steps, then follows a cosine
decay to 1% (``networks.schedule``).
"""

from __future__ import annotations

import json
import math
import os
import shutil
import warnings
from pathlib import Path

import keras
import tensorflow as tf

from taskonomy_tf.data import make_dataset, views
from taskonomy_tf.data.records import find_shards, manifest_records
from taskonomy_tf.errors import InputError
from taskonomy_tf.fileio import atomic_path, remove_stale_temporaries, write_json_atomic
from taskonomy_tf.models import build_task_model, compile_task_model, get_encoder
from taskonomy_tf.tasks import get_task
from taskonomy_tf.training.callbacks import (
    EarlyStop,
    FixedValidationDraw,
    MetricsJson,
    NanGuard,
    TrainingError,
    kept_epoch,
)
from taskonomy_tf.training.config import TrainConfig
from taskonomy_tf.training.evaluate import constant_loss, fit_constant, mean_loss
from taskonomy_tf.training.multiworker import fit_multi_worker

PRECISIONS = ("auto", "float32", "mixed_bfloat16", "mixed_float16")
STRATEGIES = ("auto", "one_device", "mirrored", "multi_worker")


def resolve_precision(name: str) -> str:
    """``auto``: float32 on CPU (mixed_float16 is 4-5x slower there, bfloat16
    gains little for small nets: ../shared/docs/environment_notes.md);
    mixed_bfloat16 on GPUs of compute capability >= 8, else mixed_float16."""
    if name not in PRECISIONS:
        raise InputError(f"precision {name!r}: expected one of {', '.join(PRECISIONS)}")
    if name != "auto":
        return name
    gpus = tf.config.list_physical_devices("GPU")
    if not gpus:
        return "float32"
    cc = tf.config.experimental.get_device_details(gpus[0]).get("compute_capability", (0, 0))
    return "mixed_bfloat16" if cc >= (8, 0) else "mixed_float16"


def resolve_strategy(name: str, devices=None) -> tf.distribute.Strategy:
    if name not in STRATEGIES:
        raise InputError(f"strategy {name!r}: expected one of {', '.join(STRATEGIES)}")
    tf_config = json.loads(os.environ.get("TF_CONFIG", "{}") or "{}")
    workers = len(tf_config.get("cluster", {}).get("worker", []))
    if name == "multi_worker" or (name == "auto" and workers > 1):
        return tf.distribute.MultiWorkerMirroredStrategy()
    gpus = tf.config.list_logical_devices("GPU")
    if name == "mirrored" or (name == "auto" and len(gpus) > 1):
        return tf.distribute.MirroredStrategy(list(devices) if devices else None)
    if name == "one_device":
        return tf.distribute.OneDeviceStrategy("/gpu:0" if gpus else "/cpu:0")
    return tf.distribute.get_strategy()


def _is_chief(strategy) -> bool:
    resolver = getattr(strategy, "cluster_resolver", None)
    if resolver is None or not getattr(resolver, "task_type", None):
        return True
    return resolver.task_type == "chief" or (resolver.task_type == "worker"
                                             and resolver.task_id == 0)


CACHE_LIMIT = 4 << 30  # bytes: above this a split streams whatever the machine's memory


def cache_bytes(n_examples: int, image_size: int, spec) -> int:
    """Decoded bytes of a split held by ``make_dataset(cache=True)``: float32
    RGB, the target's channels and its mask (and a z-buffer mask), per pixel."""
    planes = 3 + max(spec.channels, 1) + 2
    return n_examples * image_size * image_size * 4 * planes


def resolve_cache(choice, n_examples: int, image_size: int, spec,
                  memory: int | None = None) -> bool:
    """``TrainConfig.cache``: True / False as given; ``auto``: whether
    ``cache_bytes`` fits in a quarter of ``memory`` (this machine's RAM) and
    ``CACHE_LIMIT``."""
    if isinstance(choice, bool):
        return choice
    if str(choice).lower() != "auto":
        raise InputError(f"cache {choice!r}: expected auto, true or false")
    if memory is None:
        memory = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    return cache_bytes(n_examples, image_size, spec) <= min(memory // 4, CACHE_LIMIT)


def _split_size(data: str, split: str) -> int:
    counted = manifest_records(data, split)
    if counted:
        return counted
    return sum(1 for f in find_shards(data, split) for _ in tf.data.TFRecordDataset(f))


def _splits(data: str) -> tuple[str, str | None]:
    names = {p.name.split("-")[0] for p in Path(data).glob("*.tfrecord")}
    if "train" in names:
        return "train", ("val" if "val" in names else "test" if "test" in names else None)
    if "all" in names:
        return "all", None
    raise FileNotFoundError(f"{data}: no train or all shards")


def train_and_evaluate(config: TrainConfig, workdir: str | os.PathLike,
                       resume: bool = False, callbacks: list | None = None) -> dict:
    """Trains ``config.task``; returns the final metrics.

    ``callbacks`` are added after the built-in ones (NaN guard, resumable
    backup, per-epoch checkpoints, TensorBoard, metrics JSON).

    Raises:
        TrainingError: a non-finite loss, or a workdir holding an unfinished
            run without ``resume`` (one-line messages).
        ValueError / KeyError: bad settings, unknown task, missing domain.
    """
    from taskonomy_tf.data.card import use_records

    use_records(config.data.path)  # a dataset card's tasks
    spec = get_task(config.task)
    workdir = Path(workdir)
    backup = workdir / "backup"
    if is_finished(workdir):
        shutil.rmtree(backup, ignore_errors=True)  # left if killed right after the stamp
        if resume:
            return finished_result(workdir)
        raise TrainingError(f"{workdir} holds a finished run; choose another --workdir "
                            "(or --resume to read its result)")
    if backup.exists() and not resume:
        raise TrainingError(f"{workdir} holds an unfinished run; pass --resume to continue it "
                            "or choose another --workdir")
    remove_stale_temporaries(workdir)  # left by a run killed while saving
    data = config.data.path
    if data is None:
        from taskonomy_tf.synth import embedded_dataset

        data = str(embedded_dataset(progress=config.verbose > 0))
    keras.utils.set_random_seed(config.seed)
    precision = resolve_precision(config.networks.precision)
    strategy = resolve_strategy(config.networks.strategy, config.devices)
    _check_stopping(config, strategy)
    train_split, val_split = _splits(data)
    n_train = _split_size(data, train_split)
    per_epoch, epochs, execution, total = step_plan(config, n_train)
    # standardised labels (poses, layout): the training split's statistics
    stats = views.training_stats(data, spec)
    kw = dict(batch_size=config.networks.batch_size, image_size=config.data.image_size,
              seed=config.seed,
              label_stats=stats)
    cache = resolve_cache(config.cache, n_train, config.data.image_size, spec)
    train = make_dataset(data, spec, split=train_split, repeat=True, cache=cache,
                         augment=config.augment, deterministic=config.deterministic, **kw)
    val = (make_dataset(data, spec, split=val_split, cache=cache, shuffle=False,
                        augment=False, **kw) if val_split else None)
    # the constant baseline, on a shuffled sample of the training split
    prior, n_prior = fit_constant(spec, make_dataset(data, spec, split=train_split,
                                                     augment=False, **kw))

    chief = _is_chief(strategy)
    out = workdir if chief else workdir / f".worker-{os.getpid()}"
    out.mkdir(parents=True, exist_ok=True)
    resolved = {**config.flat(), "data": data, "precision": precision,
                "strategy": type(strategy).__name__, "steps_per_epoch": per_epoch,
                "epochs": epochs, "learning_rate": config.resolved_lr(), "cache": cache}
    write_json_atomic(out / "config.json", resolved)
    if stats is not None:
        write_json_atomic(out / LABEL_STATS, {"mean": stats[0].tolist(),
                                              "std": stats[1].tolist(), "split": train_split})

    previous_policy = keras.mixed_precision.dtype_policy()
    keras.mixed_precision.set_dtype_policy(precision)
    try:
        with strategy.scope():
            model = build_task_model(spec, config.networks.encoder, config.data.image_size,
                                     config.networks.decoder, prior=prior)
            compile_task_model(model, spec, learning_rate(config, total),
                               config.clipnorm, steps_per_execution=execution,
                               jit_compile=_jit(config.jit_compile))
        metrics_cb = MetricsJson(out / "metrics.json", {"task": spec.name})
        if not (out / "metrics.json").exists():
            baseline = {"train_examples": n_prior, "split": train_split}
            record = {"epochs": [], "task": spec.name, "constant": baseline}
            if val is not None:
                baseline["val_loss"] = constant_loss(spec, prior, val)
                # the network before its first step: a floor the constant is not
                # for every loss (all-zero embeddings take the segment metric's
                # clip on every pair of segments; a random network's do not)
                record["untrained"] = {"val_loss": mean_loss(spec, model, val)}
            metrics_cb.write(record)
        callbacks = [
            NanGuard(str(out / "checkpoints")),
            FixedValidationDraw(),
            *(callbacks or []),
            # backed up at each epoch's end: Keras resumes at an epoch boundary,
            # so a mid-epoch backup would repeat that epoch's steps on resume
            # kept after fit: removed once the completion stamp is written
            keras.callbacks.BackupAndRestore(str(out / "backup"), save_freq="epoch",
                                             delete_checkpoint=False),
            keras.callbacks.ModelCheckpoint(
                str(out / "checkpoints" / CHECKPOINT),
                save_weights_only=True),
            *([keras.callbacks.TensorBoard(str(out / "logs"))] if config.tensorboard else []),
            metrics_cb,
            stop := EarlyStop(out / "metrics.json", config.networks.patience,
                              config.networks.max_seconds),
            StopAtStep(total),  # the last epoch may end early: exactly `total` steps
        ]
        (out / "checkpoints").mkdir(exist_ok=True)
        fit_args = dict(epochs=epochs, steps_per_epoch=per_epoch,
                        validation_data=val if config.validation_freq else None,
                        validation_steps=config.validation_steps,
                        validation_freq=max(1, config.validation_freq), callbacks=callbacks,
                        verbose=config.verbose)
        done = json.loads((out / "metrics.json").read_text())["epochs"]
        resumed_stopped = stop.stopped_by_loss(done)  # after the epoch that stopped it
        if resumed_stopped:
            stop.reason = "patience"
        elif isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy):
            fit_multi_worker(model, strategy, train, **fit_args)  # Keras' fit fails there
        else:
            with warnings.catch_warnings():
                # the training stream repeats forever; the finite validation stream's
                # end (of unknown length to Keras) is reported as "ran out of data"
                warnings.filterwarnings("ignore", message="Your input ran out of data")
                model.fit(train, shuffle=False, **fit_args)
        steps = done[-1]["step"] if resumed_stopped else int(model.optimizer.iterations.numpy())
        record = json.loads((out / "metrics.json").read_text())  # with the epochs fit added
        kept = _restore_kept(model, out, record["epochs"])
        if val is not None:
            final = mean_loss(spec, model, val)
            record["final"] = {"val_loss": final, **floor_ratios(record, final),
                               "step": kept["step"] if kept else steps, "steps_trained": steps,
                               "stopped": stop.reason or "steps"}
            metrics_cb.write(record)
        _save_atomic(get_encoder(model), out / "encoder.keras")
        _save_atomic(model, out / "model.keras")
        write_json_atomic(out / DONE, {"steps": steps})
        shutil.rmtree(out / "backup", ignore_errors=True)
        if kept is not None:  # model.keras holds the kept state; the others are 14 MB each
            for f in (out / "checkpoints").glob("epoch-*.weights.h5"):
                if f.name != CHECKPOINT.format(epoch=kept["epoch"]):
                    f.unlink()
    finally:
        keras.mixed_precision.set_dtype_policy(previous_policy)
    if not chief:
        shutil.rmtree(out, ignore_errors=True)
        return {"steps": steps}
    return finished_result(workdir)


def _restore_kept(model: keras.Model, out: Path, epochs: list[dict]) -> dict | None:
    """Loads the weights of the epoch ``kept_epoch`` keeps among ``epochs``
    (``metrics.json``'s), if it is not the last; returns that epoch's entry
    (``None``: nothing was validated, the last state is kept)."""
    kept = kept_epoch(epochs)
    if kept is not None and kept["epoch"] != epochs[-1]["epoch"]:
        model.load_weights(out / "checkpoints" / CHECKPOINT.format(epoch=kept["epoch"]))
    return kept


def _check_stopping(config: TrainConfig, strategy) -> None:
    """One-line errors for stopping settings that cannot work."""
    n = config.networks
    if n.validations < 0 or n.patience < 0:
        raise InputError(f"networks.validations and networks.patience must be 0 or more, got "
                         f"{n.validations} and {n.patience}")
    if n.max_seconds is not None:
        if not n.max_seconds > 0:
            raise InputError(f"networks.max_seconds must be above 0 (or None), got "
                             f"{n.max_seconds}")
        if isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy):
            raise InputError("networks.max_seconds does not work with the multi_worker "
                             "strategy: each worker's clock would stop it at another step")


def floor_ratios(metrics: dict, val_loss: float) -> dict:
    """A network's validation loss against its floors: the constant
    prediction and the floor, the lower of the constant's and the untrained
    network's losses (``metrics``: a ``metrics.json``; runs that predate the
    untrained entry have the constant as floor).

    Returns:
        ``ratio_to_constant``, ``floor`` ("constant" or "untrained"),
        ``floor_val_loss`` and ``ratio_to_floor``.
    """
    floors = {"constant": metrics["constant"]["val_loss"]}
    if metrics.get("untrained", {}).get("val_loss") is not None:
        floors["untrained"] = metrics["untrained"]["val_loss"]
    kind = min(floors, key=floors.get)
    return {"ratio_to_constant": val_loss / max(floors["constant"], 1e-12), "floor": kind,
            "floor_val_loss": floors[kind],
            "ratio_to_floor": val_loss / max(floors[kind], 1e-12)}


DONE = "done.json"
CHECKPOINT = "epoch-{epoch:03d}.weights.h5"  # epochs count from 1, as Keras' file names do
LABEL_STATS = "label_stats.json"


def saved_label_stats(workdir: str | os.PathLike) -> tuple | None:
    """The (mean, std) a network's standardised labels were trained with
    (its ``label_stats.json``), or ``None`` (a task without standardisation)."""
    path = Path(workdir) / LABEL_STATS
    if not path.exists():
        return None
    d = json.loads(path.read_text())
    return tuple(d["mean"]), tuple(d["std"])


def saved_task(workdir: str | os.PathLike) -> str | None:
    """The task a workdir's network was trained for (its ``config.json``), or
    ``None`` for a folder without one (the untrained ``random`` encoder)."""
    path = Path(workdir) / "config.json"
    return json.loads(path.read_text()).get("task") if path.exists() else None


def is_finished(workdir: str | os.PathLike) -> bool:
    """Whether a training workdir holds a finished run (its completion stamp)."""
    return (Path(workdir) / DONE).exists()


def finished_result(workdir: str | os.PathLike) -> dict:
    """A finished run's ``metrics.json`` with ``steps`` from its stamp."""
    workdir = Path(workdir)
    return {**json.loads((workdir / "metrics.json").read_text()),
            "steps": json.loads((workdir / DONE).read_text())["steps"]}


def _save_atomic(model: keras.Model, path: Path) -> None:
    """``model.save`` through ``fileio.atomic_path``."""
    with atomic_path(path) as tmp:
        model.save(tmp)


def _jit(value: str):
    choices = {"auto": "auto", "true": True, "false": False}
    if str(value).lower() not in choices:
        raise InputError(f"jit_compile {value!r}: expected auto, true or false")
    return choices[str(value).lower()]


def step_plan(config: TrainConfig, n_train: int) -> tuple[int, int, int, int]:
    """(steps per epoch, epochs, steps per execution, total steps): the one
    rule every command trains by. ``steps`` trains exactly that many steps
    (rounded up to whole executions of ``steps_per_execution``), whatever the
    epoch length, which only sets the resume points and the per-epoch
    validation: so an experiment gives the same network from the train
    command and from the pipeline. Epochs default to one pass over the
    ``n_train`` training examples, and ``epochs`` (no ``steps``) to 4 of them."""
    batch = config.networks.batch_size
    per_epoch = config.steps_per_epoch or max(1, math.ceil(n_train / batch))
    if config.steps:
        per_epoch = min(per_epoch, config.steps)
    # Keras runs whole executions: an epoch is a multiple of steps_per_execution
    execution = min(config.networks.steps_per_execution, per_epoch)
    per_epoch = math.ceil(per_epoch / execution) * execution
    if config.steps:
        total = math.ceil(config.steps / execution) * execution
        return per_epoch, math.ceil(total / per_epoch), execution, total
    epochs = config.epochs or 4
    return per_epoch, epochs, execution, epochs * per_epoch


class StopAtStep(keras.callbacks.Callback):
    """Ends training once the optimizer has taken ``total`` steps (checked
    after each execution; the epoch's end callbacks still run)."""

    def __init__(self, total: int):
        super().__init__()
        self.total = total

    def on_train_batch_end(self, batch, logs=None):
        if int(self.model.optimizer.iterations.numpy()) >= self.total:
            self.model.stop_training = True


def learning_rate(config: TrainConfig, total_steps: int):
    """The optimizer's learning rate: a float (``schedule="constant"``) or a
    linear warm-up from a tenth of the rate over ``warmup`` of the steps,
    then a cosine decay to 1% at the last step (``schedule="cosine"``)."""
    lr = config.resolved_lr()
    schedule = config.networks.schedule
    if schedule == "constant":
        return lr
    if schedule != "cosine":
        raise InputError(f"schedule {schedule!r}: expected cosine or constant")
    warmup = int(round(config.networks.warmup * total_steps))
    return keras.optimizers.schedules.CosineDecay(
        lr / 10, max(1, total_steps - warmup), alpha=0.01, warmup_target=lr,
        warmup_steps=warmup)


def load_encoder(workdir: str | os.PathLike, trainable: bool = False) -> keras.Model:
    """The trained encoder of a workdir, as a Keras layer (frozen by default).

    Loaded in safe mode: no Python code from the file is executed.
    """
    path = Path(workdir) / "encoder.keras"
    if not path.exists():
        raise FileNotFoundError(f"{path}: no saved encoder (train the task first)")
    encoder = keras.saving.load_model(path, safe_mode=True, compile=False)
    encoder.trainable = trainable
    return encoder
