"""``run_transfer``: train one transfer function on cached codes, return
every test image's loss.

First and higher order alike: the codes of the given sources are
concatenated along channels. The sources are the workdirs of trained task
networks (their ``encoder.keras``). The images of the transfer split are
the first ``n_images`` records of ``train_split`` (the paper used 16k,
and 1k for its small-data taxonomy), evaluated on ``test_split``.
"""

from __future__ import annotations

import dataclasses
import functools
import os
from pathlib import Path

import keras
import numpy as np

from taskonomy_tf.data import make_dataset
from taskonomy_tf.models.losses import LOSSES, TaskLoss
from taskonomy_tf.models.encoders import REPRESENTATION_STRIDE
from taskonomy_tf.tasks import get_task
from taskonomy_tf.transfer.cache import FeatureCache
from taskonomy_tf.transfer.readout import build_transfer_model


@dataclasses.dataclass
class TransferResult:
    """Per-image test losses of one transfer, in the test split's record order."""

    target: str
    sources: tuple[str, ...]
    losses: np.ndarray  # (N_test,) float64
    image_ids: list[str]


@functools.lru_cache(maxsize=8)
def load_split(data, target, split, image_size, limit=None, images=False):
    """(labels, weights[, images]) of a split's first ``limit`` examples, in record order.

    Kept for the process's next jobs (a grid's jobs share targets); the
    arrays are read-only so no caller can change the cached copy.
    """
    ds = make_dataset(data, target, split=split, batch_size=64, image_size=image_size,
                      shuffle=False, augment=False)
    if limit:
        ds = ds.unbatch().take(limit).batch(64)
    xs, ys, ws = [], [], []
    for x, y, w in ds:
        ys.append(np.asarray(y[target]))
        ws.append(np.asarray(w[target]))
        if images:
            xs.append(np.asarray(x))
    out = [np.concatenate(ys), np.concatenate(ws)] + ([np.concatenate(xs)] if images else [])
    for a in out:
        a.setflags(write=False)
    return tuple(out)


def _codes(cache, workdirs, data, split, image_size, limit=None):
    codes = [cache.features(Path(w) / "encoder.keras", data, split, image_size, limit)
             for w in workdirs]
    return np.concatenate(codes, axis=-1)


def _fit_and_score(model, spec, train, test, steps, batch_size, learning_rate, seed=0):
    """Trains ``model`` for ``steps`` batches of ``train`` = (x, y, w); per-image
    losses on ``test``.

    Whole batches only, and prediction in eager mode: one traced train step
    per transfer (each extra trace costs seconds, more than a small
    transfer's training).
    """
    import tensorflow as tf

    (x_train, y_train, w_train), (x_test, y_test, w_test) = train, test
    batch_size = min(batch_size, len(x_train))
    ds = (tf.data.Dataset.from_tensor_slices((x_train, {spec.name: y_train},
                                              {spec.name: w_train}))
          .shuffle(len(x_train), seed=seed).repeat()
          .batch(batch_size, drop_remainder=True))
    model.compile(optimizer=keras.optimizers.Adam(learning_rate),
                  loss={spec.name: TaskLoss(spec.loss)})
    model.optimizer.build(model.trainable_variables)
    model.fit(ds, steps_per_epoch=steps, epochs=1, verbose=0, shuffle=False)  # ds shuffles
    pred = np.concatenate([np.asarray(model(x_test[i:i + 64], training=False)[spec.name])
                           for i in range(0, len(x_test), 64)])
    return per_image_losses(spec, y_test, pred, w_test)


def per_image_losses(spec, y, pred, w) -> np.ndarray:
    """The target's loss (``TaskSpec.loss``, masked as in training) per image, float64.

    The registered loss is applied to each image as a batch of one, inside one
    traced ``tf.map_fn`` (a Python loop of eager calls costs ~2 ms per image).
    """
    return np.asarray(_per_image_fn(spec.loss)(y, np.asarray(pred, "float32"), w), "float64")


@functools.lru_cache(maxsize=None)
def _per_image_fn(kind: str):
    import tensorflow as tf

    fn = LOSSES.get(kind)

    @tf.function(reduce_retracing=True)
    def each(y, p, w):
        return tf.map_fn(lambda a: tf.cast(fn(a[0][None], a[1][None], a[2][None]), tf.float32),
                         (y, p, w), fn_output_signature=tf.float32)

    return each


def run_transfer(target: str, sources: dict[str, str | os.PathLike], data: str | os.PathLike,
                 cache: FeatureCache, image_size: int = 128, n_images: int = 1000,
                 train_split: str = "train", test_split: str = "test", steps: int = 200,
                 batch_size: int = 32, learning_rate: float = 1e-3, seed: int = 0
                 ) -> TransferResult:
    """Trains the readout from ``sources`` (task -> workdir) to ``target``.

    Returns:
        The target loss of every test image (``TaskSpec.loss``, masked as in
        training), for win rates and the taxonomy.
    """
    spec = get_task(target)
    names = tuple(get_task(s).name for s in sources)
    dirs = list(sources.values())
    x_train = _codes(cache, dirs, data, train_split, image_size, n_images)
    train = (x_train, *load_split(data, spec.name, train_split, image_size, len(x_train)))
    test = (_codes(cache, dirs, data, test_split, image_size),
            *load_split(data, spec.name, test_split, image_size))
    keras.utils.set_random_seed(seed)  # after the codes: loading encoders draws numbers
    model = build_transfer_model(spec, len(dirs), x_train.shape[1])
    losses = _fit_and_score(model, spec, train, test, steps, batch_size, learning_rate, seed)
    return TransferResult(spec.name, names, losses,
                          [f"{test_split}:{i}" for i in range(len(losses))])


def pixels_transfer(target: str, data: str | os.PathLike, image_size: int = 128,
                    n_images: int = 1000, train_split: str = "train", test_split: str = "test",
                    steps: int = 200, batch_size: int = 32, learning_rate: float = 1e-3,
                    seed: int = 0) -> TransferResult:
    """The ``pixels`` baseline: the same readout on a small side encoder
    trained from scratch on the same transfer images (no frozen source)."""
    spec = get_task(target)
    y, w, x = load_split(data, spec.name, train_split, image_size, n_images, images=True)
    y_t, w_t, x_t = load_split(data, spec.name, test_split, image_size, images=True)
    keras.utils.set_random_seed(seed)
    model = build_transfer_model(spec, 1, image_size // REPRESENTATION_STRIDE,
                                 pixels_image_size=image_size)
    losses = _fit_and_score(model, spec, (x, y, w), (x_t, y_t, w_t), steps, batch_size,
                            learning_rate, seed)
    return TransferResult(spec.name, ("pixels",), losses,
                          [f"{test_split}:{i}" for i in range(len(losses))])


def self_losses(target: str, workdir: str | os.PathLike, data, image_size: int = 128,
                test_split: str = "test") -> np.ndarray:
    """Per-image test losses of the target's own fully supervised network."""
    spec = get_task(target)
    model = keras.saving.load_model(Path(workdir) / "model.keras", safe_mode=True)
    ds = make_dataset(data, spec.name, split=test_split, batch_size=32, image_size=image_size,
                      shuffle=False, augment=False)
    out = [per_image_losses(spec, np.asarray(y[spec.name]),
                            model.predict(x, verbose=0)[spec.name], np.asarray(w[spec.name]))
           for x, y, w in ds]
    return np.concatenate(out)

