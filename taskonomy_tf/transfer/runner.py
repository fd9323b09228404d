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
import os
from pathlib import Path

import keras
import numpy as np

from taskonomy_tf.data import make_dataset
from taskonomy_tf.models.losses import LOSSES, TaskLoss
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


def _labels(data, target, split, image_size, limit=None):
    ds = make_dataset(data, target, split=split, batch_size=64, image_size=image_size,
                      shuffle=False, augment=False)
    ys, ws = [], []
    for _, y, w in ds:
        ys.append(np.asarray(y[target]))
        ws.append(np.asarray(w[target]))
        if limit and sum(len(a) for a in ys) >= limit:
            break
    y, w = np.concatenate(ys), np.concatenate(ws)
    return (y[:limit], w[:limit]) if limit else (y, w)


def _codes(cache, workdirs, data, split, image_size, limit=None):
    codes = [cache.features(Path(w) / "encoder.keras", data, split, image_size) for w in workdirs]
    codes = np.concatenate(codes, axis=-1)
    return codes[:limit] if limit else codes


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
    y_train, w_train = _labels(data, spec.name, train_split, image_size, len(x_train))
    x_test = _codes(cache, dirs, data, test_split, image_size)
    y_test, w_test = _labels(data, spec.name, test_split, image_size)
    keras.utils.set_random_seed(seed)  # after the codes: loading encoders draws numbers
    model = build_transfer_model(spec, len(dirs), x_train.shape[1])
    model.compile(optimizer=keras.optimizers.Adam(learning_rate),
                  loss={spec.name: TaskLoss(spec.loss)})
    epochs = max(1, int(np.ceil(steps * batch_size / len(x_train))))
    model.fit(x_train, {spec.name: y_train}, sample_weight={spec.name: w_train},
              batch_size=batch_size, epochs=epochs, verbose=0, shuffle=True)
    pred = model.predict(x_test, batch_size=batch_size, verbose=0)[spec.name]
    fn = LOSSES.get(spec.loss)
    losses = np.array([float(fn(y_test[i:i + 1], pred[i:i + 1].astype("float32"),
                                w_test[i:i + 1])) for i in range(len(pred))])
    return TransferResult(spec.name, names, losses,
                          [f"{test_split}:{i}" for i in range(len(losses))])


def self_losses(target: str, workdir: str | os.PathLike, data, image_size: int = 128,
                test_split: str = "test") -> np.ndarray:
    """Per-image test losses of the target's own fully supervised network."""
    spec = get_task(target)
    model = keras.saving.load_model(Path(workdir) / "model.keras", safe_mode=True)
    ds = make_dataset(data, spec.name, split=test_split, batch_size=32, image_size=image_size,
                      shuffle=False, augment=False)
    fn = LOSSES.get(spec.loss)
    out = []
    for x, y, w in ds:
        pred = np.asarray(model.predict(x, verbose=0)[spec.name], "float32")
        yt, wt = np.asarray(y[spec.name]), np.asarray(w[spec.name])
        out += [float(fn(yt[i:i + 1], pred[i:i + 1], wt[i:i + 1])) for i in range(len(pred))]
    return np.array(out)

