"""Two Keras workarounds that ``fit`` needs under MultiWorkerMirroredStrategy.

Keras 3 (checked on 3.15) trips over MultiWorkerMirroredStrategy twice:

* before the first step ``fit`` builds the model symbolically from one
  distributed batch, averaging it across replicas, which the strategy's
  collective ops reject outside a replica context ("Attempt to convert a
  value (PerReplica...)"). The model is built the same way on a local batch
  instead, and Keras' own build is skipped for this model.
* each step's scalar logs are averaged across workers with ``axis=0``,
  which fails on scalars; they are averaged without an axis instead.

Both touch Keras internals (``Model._symbolic_build`` and the TensorFlow
trainer's ``reduce_per_replica``), so they are applied only for the Keras
versions they were tested on (``TESTED_KERAS``; other versions get a
one-line error naming the range), and only while one ``fit`` runs: the
second patch is undone on exit, so nothing else in the process sees it.
``tests/training/test_training.py`` and ``tests/models/test_loss_distribution.py``
run two localhost workers through it.
"""

from __future__ import annotations

import contextlib

import keras
import tensorflow as tf

from taskonomy_tf.errors import UserError

TESTED_KERAS = ((3, 15), (3, 15))  # (lowest, highest) major.minor tested


class UnsupportedKerasError(UserError, RuntimeError):
    """Multi-worker training on a Keras version the workarounds were not tested on."""


def _check_version(version: str) -> None:
    major_minor = tuple(int(p) for p in version.split(".")[:2])
    low, high = TESTED_KERAS
    if not low <= major_minor <= high:
        raise UnsupportedKerasError(
            f"multi-worker training needs Keras {low[0]}.{low[1]}-{high[0]}.{high[1]} "
            f"(its workarounds were tested there); found Keras {version}")


@contextlib.contextmanager
def multi_worker_fit(model: keras.Model, strategy: tf.distribute.Strategy,
                     dataset: tf.data.Dataset):
    """Context for ``model.fit`` under ``strategy`` (a no-op for others).

    Args:
        model: compiled under ``strategy.scope()``.
        strategy: the training strategy.
        dataset: this worker's batches (a plain ``tf.data.Dataset``, not a
            distributed one); its first batch builds the model.

    Raises:
        UnsupportedKerasError: multi-worker training on an untested Keras.
    """
    if not isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy):
        yield
        return
    _check_version(keras.version())
    with strategy.scope():
        model._symbolic_build(data_batch=next(iter(dataset)))
    model._maybe_symbolic_build = lambda *args, **kwargs: None

    from keras.src.backend.tensorflow import trainer as tf_trainer

    original = tf_trainer.reduce_per_replica

    def reduce_per_replica(values, strategy_, reduction="auto"):
        if reduction in ("auto", "mean") and isinstance(
                strategy_, tf.distribute.MultiWorkerMirroredStrategy):
            return tf.nest.map_structure(lambda v: strategy_.reduce("MEAN", v, axis=None),
                                         values)
        return original(values, strategy_, reduction)

    tf_trainer.reduce_per_replica = reduce_per_replica
    try:
        yield
    finally:
        tf_trainer.reduce_per_replica = original
