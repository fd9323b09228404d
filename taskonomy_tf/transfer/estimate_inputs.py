"""What the cheap estimators score: frozen codes and target labels of the same
images, joined by record id.

The feature cache encodes a split's records in file order, one shard after
another; ``make_dataset`` interleaves shards. Pairing the two by position
gave each code another image's label on any split of two or more shards, so
everything here is joined on ids (``building/point/view``), as the transfer
runner joins its per-image losses.
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

import numpy as np

from taskonomy_tf.errors import InputError


def labels_by_id(dataset, task: str, ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(targets, weights)`` of ``task`` for the records ``ids``, in that order.

    Args:
        dataset: a finite ``make_dataset(..., with_ids=True)`` stream; it is
            read until every id has been seen.
        ids: (N,) str record ids.

    Raises:
        InputError: an id the stream never yields.
    """
    return labels_by_ids(dataset, [task], ids)[task]


def labels_by_ids(dataset, tasks: list[str], ids: np.ndarray) -> dict[str, tuple]:
    """``labels_by_id`` of several tasks from one pass over a stream that
    carries them all: task -> ``(targets, weights)`` in the order of ``ids``."""
    where = {str(i): k for k, i in enumerate(ids)}
    ys: list = [None] * len(ids)
    ws: list = [None] * len(ids)
    missing = len(where)
    for _, y, w, ident in dataset:
        batch_y = [np.asarray(y[t]) for t in tasks]  # one conversion per batch, not per image
        batch_w = [np.asarray(w[t]) for t in tasks]
        for b, i in enumerate(np.asarray(ident).astype(bytes).astype(str)):
            k = where.get(i)
            if k is not None and ys[k] is None:
                ys[k] = [v[b] for v in batch_y]
                ws[k] = [v[b] for v in batch_w]
                missing -= 1
        if not missing:
            break
    if missing:
        absent = [i for i, k in where.items() if ys[k] is None]
        raise InputError(f"task {'/'.join(tasks)!r}: no label record for {len(absent)} encoded "
                         f"image(s), e.g. {absent[0]!r}")
    return {t: (np.stack([row[j] for row in ys]), np.stack([row[j] for row in ws]))
            for j, t in enumerate(tasks)}


@dataclasses.dataclass
class Estimable:
    """What ``gather`` returns.

    Attributes:
        codes: task -> (N, h, w, 8) float32 codes, the same N records for
            every task (record order).
        labels: target -> ``(labels, regression)`` (``estimate.estimator_labels``),
            row k for the record of code k.
        skipped: target -> the one-line reason it is not scored (it stays a source).
        ids: (N,) the record ids (their groups: ``taxonomy.bootstrap.group_of_id``).
        dense: dense target -> ``(targets (N, H, W, C), weights (N, H, W),
            classes, loss)`` as trained (``classes``: the class count of
            per-pixel class ids, else 0), for the local and readout probes.
    """

    codes: dict
    labels: dict
    skipped: dict
    ids: np.ndarray
    dense: dict


def gather(tasks, models: str | os.PathLike, data, split: str, n_images: int | None,
           image_size: int, cache_dir: str | os.PathLike) -> Estimable:
    """Codes of every task's encoder and every target's estimator labels on
    the split's first ``n_images`` records (all when ``None``), joined by id."""
    from taskonomy_tf.data import make_dataset
    from taskonomy_tf.estimate import estimator_labels
    from taskonomy_tf.estimate.labels import dense_targets
    from taskonomy_tf.tasks import get_task
    from taskonomy_tf.transfer.cache import FeatureCache
    from taskonomy_tf.transfer.schedule import model_workdirs

    workdirs = model_workdirs(models, tasks)
    cache = FeatureCache(cache_dir)
    codes, ids = {}, None
    # the encoders of one input rule in one pass over the split
    encoded = cache.features_many([Path(w) / "encoder.keras" for w in workdirs.values()], data,
                                  split, image_size, n_images)
    for task, (codes[task], task_ids) in zip(workdirs, encoded):
        if ids is not None and not np.array_equal(ids, task_ids):  # record order, every task
            raise AssertionError(f"{task}: encoded other records than {next(iter(codes))}")
        ids = task_ids
    labels, skipped, dense = {}, {}, {}
    specs = {task: get_task(task) for task in workdirs}
    by_input: dict[str, list[str]] = {}  # single-view tasks by input rule
    for task, spec in specs.items():
        if spec.views > 1:
            skipped[task] = (f"labelled on tuples of {spec.views} views; the estimators "
                             "score one image's code")
        else:
            by_input.setdefault(spec.input, []).append(task)

    def read(tasks):
        ds = make_dataset(data, tasks, split=split, batch_size=64, image_size=image_size,
                          shuffle=False, augment=False, with_ids=True)
        return labels_by_ids(ds, tasks, ids)

    read_labels = {}
    for tasks in by_input.values():
        try:  # every task of one input rule from one pass over the split
            read_labels.update(read(tasks))
        except InputError:  # a task without labels for some records: each alone
            for task in tasks:
                try:
                    read_labels.update(read([task]))
                except InputError as exc:
                    skipped[task] = str(exc)
    for task, spec in specs.items():
        if task not in read_labels:
            continue
        y, w = read_labels[task]
        try:
            labels[task] = estimator_labels(spec, y, w)
        except InputError as exc:
            skipped[task] = str(exc)
            continue
        if (full := dense_targets(spec, y, w)) is not None:
            dense[task] = full
    return Estimable(codes, labels, skipped, ids, dense)
