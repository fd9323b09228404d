"""Training under MultiWorkerMirroredStrategy: a training loop on public APIs.

Keras 3's ``fit`` does not run under MultiWorkerMirroredStrategy
(keras-team/keras#20585, open; seen on 3.7-3.15): before the first step it
averages a distributed batch outside a replica context ("Attempt to convert a
value (PerReplica...)"), and it averages each step's scalar logs with
``axis=0``, which fails on scalars. Rather than overwrite Keras members, a
multi-worker run trains with :func:`fit_multi_worker`: TensorFlow's
documented custom-loop recipe (``strategy.run`` of a gradient step, each
replica's loss its share of the global batch's, gradients summed by the
optimizer) with the model's compiled loss (``model.loss``), regularisers
(``model.losses``) and optimizer (loss scaling included), driving the same
Keras callbacks through ``keras.callbacks.CallbackList``. Its logs are
``loss`` and ``val_loss`` (not the compiled metrics). A step equals one ``fit`` step on one device
over the same global batch (``tests/models/test_loss_distribution.py``).
"""

from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf


def _replica_loss(model: keras.Model, y, pred, w, replicas: int) -> tf.Tensor:
    """One replica's share of the global batch's loss: the compiled loss
    plus the regularisers, divided by the replicas in sync.

    ``model.loss`` is one loss or a dict keyed like the outputs (``y``,
    ``pred`` and ``w`` then are dicts too). A Keras loss reduces its batch
    (the masked mean for ``TaskLoss``) and already divides it by the
    replicas in sync when called in a replica context; the regularisers
    (``model.losses``) are divided here, as ``fit`` does."""
    loss = model.loss
    if isinstance(loss, dict):
        terms = [loss[k](y[k], pred[k], w[k] if w is not None else None) for k in loss]
    else:
        terms = [loss(y, pred, w)]
    total = tf.add_n([tf.cast(t, "float32") for t in terms])
    if model.losses:
        total += tf.add_n([tf.cast(r, "float32") for r in model.losses]) / replicas
    return total


def _unpack(batch):
    x, y, *rest = batch
    return x, y, rest[0] if rest else None


def fit_multi_worker(model: keras.Model, strategy: tf.distribute.Strategy, train,
                     epochs: int = 1, steps_per_epoch: int | None = None,
                     validation_data=None, validation_steps: int | None = None,
                     validation_freq: int = 1, callbacks=(), verbose: int = 0) -> dict:
    """``model.fit`` for MultiWorkerMirroredStrategy (any strategy works).

    Args:
        model: built and compiled under ``strategy.scope()``.
        train: this worker's ``(x, y[, sample_weight])`` batches: a
            ``tf.data.Dataset`` (distributed here) or an already distributed
            dataset; with ``steps_per_epoch`` it must repeat.
        steps_per_epoch: training steps per epoch (``None``: one pass).
        validation_data: a finite dataset scored every ``validation_freq``
            epochs (at most ``validation_steps`` batches); ``val_loss`` is the
            mean of its batches' losses.
        callbacks: Keras callbacks; ``on_train_batch_end`` is called after
            every ``model.steps_per_execution`` steps with the epoch's running
            mean ``loss``; ``model.stop_training`` ends the run there.

    Returns:
        The history: ``{"loss": [...], "val_loss": [...]}`` per epoch (the
        mean over the epoch's steps and all workers).

    Training resumes where a ``BackupAndRestore`` callback left it: the epoch
    of the restored optimizer's step count.
    """
    replicas = strategy.num_replicas_in_sync
    with strategy.scope():
        if not model.optimizer.built:
            model.optimizer.build(model.trainable_variables)

    def step(batch):
        x, y, w = _unpack(batch)
        with tf.GradientTape() as tape:
            loss = _replica_loss(model, y, model(x, training=True), w, replicas)
            scaled = model.optimizer.scale_loss(loss)
        grads = tape.gradient(scaled, model.trainable_variables)
        model.optimizer.apply_gradients(zip(grads, model.trainable_variables))
        return loss

    def eval_step(batch):
        x, y, w = _unpack(batch)
        return _replica_loss(model, y, model(x, training=False), w, replicas)

    def distributed(ds):
        if isinstance(ds, tf.data.Dataset):
            return strategy.experimental_distribute_dataset(ds)
        return ds

    @tf.function
    def train_steps(iterator, n):
        total = tf.constant(0.0)
        for _ in tf.range(n):
            total += strategy.reduce("SUM", strategy.run(step, args=(next(iterator),)),
                                     axis=None)
        return total

    @tf.function
    def one_step(batch):
        return strategy.reduce("SUM", strategy.run(step, args=(batch,)), axis=None)

    @tf.function
    def eval_batch(batch):
        return strategy.reduce("SUM", strategy.run(eval_step, args=(batch,)), axis=None)

    def chunks(iterator):  # (steps, summed loss) per call
        per_call = max(1, int(model.steps_per_execution or 1))
        if steps_per_epoch is None:  # one pass over the data per epoch
            for b in distributed(train):
                yield 1, float(one_step(b))
            return
        done = 0
        while done < steps_per_epoch:
            n = min(per_call, steps_per_epoch - done)
            yield n, float(train_steps(iterator, tf.constant(n)))
            done += n

    callbacks = keras.callbacks.CallbackList(list(callbacks), model=model, verbose=verbose,
                                             epochs=epochs, steps=steps_per_epoch)
    history: dict[str, list[float]] = {"loss": []}
    model.stop_training = False
    callbacks.on_train_begin()
    iterator = iter(distributed(train)) if steps_per_epoch else None
    first = int(model.optimizer.iterations.numpy()) // steps_per_epoch if steps_per_epoch else 0
    for epoch in range(first, epochs):
        callbacks.on_epoch_begin(epoch)
        done, total = 0, 0.0
        for batch, (n, loss) in enumerate(chunks(iterator)):
            done, total = done + n, total + loss  # loss: the chunk's summed step losses
            callbacks.on_train_batch_end(batch, {"loss": total / done})
            if model.stop_training:
                break
        logs = {"loss": total / max(done, 1)}
        if validation_data is not None and (epoch + 1) % max(1, validation_freq) == 0:
            losses = []
            callbacks.on_test_begin()
            for i, b in enumerate(distributed(validation_data)):
                if validation_steps is not None and i >= validation_steps:
                    break
                losses.append(float(eval_batch(b)))
            callbacks.on_test_end()
            logs["val_loss"] = float(np.mean(losses)) if losses else float("nan")
            history.setdefault("val_loss", []).append(logs["val_loss"])
        history["loss"].append(logs["loss"])
        callbacks.on_epoch_end(epoch, logs)
        if model.stop_training:
            break
    callbacks.on_train_end()
    return history
