"""Running a target's transfers: codes and labels in, per-image losses out.

``run_candidates`` trains every readout of one target (each candidate,
each replicate seed) as one fused program on cached codes, and scores them
on the test split together with the two deterministic references:

* ``self``: the target's own, fully supervised network;
* ``constant``: the best input-independent prediction, fitted on the
  transfer images (the floor: a readout starts there).

The images of the transfer split are the first ``n_images`` records of
``train_split`` (the paper used 16k, and 1k for its small-data taxonomy),
evaluated on every record of ``test_split``, in record order.
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

import keras
import numpy as np

from taskonomy_tf.data import make_dataset
from taskonomy_tf.data.records import id_strings
from taskonomy_tf.errors import InputError
from taskonomy_tf.models.constant import best_constant
from taskonomy_tf.tasks import get_task
from taskonomy_tf.taxonomy.table import CONSTANT, PIXELS, SELF
from taskonomy_tf.training.evaluate import per_image_losses, split_arrays
from taskonomy_tf.training.loop import saved_label_stats
from taskonomy_tf.transfer.cache import FeatureCache
from taskonomy_tf.transfer.grid import ORACLE
from taskonomy_tf.transfer.memory import (
    arrays_bytes,
    head_step_bytes,
    heads_per_program,
    memory_budget,
)
from taskonomy_tf.transfer.readout import ReadoutArrays, plan_heads, train_readouts


@dataclasses.dataclass
class TransferResult:
    """Per-image test losses of one transfer (one replicate), in record order."""

    target: str
    sources: tuple[str, ...]
    losses: np.ndarray  # (N_test,) float64
    image_ids: list[str]


def replicate_seeds(seed: int, replicates: int) -> list[int]:
    """The seeds of a run's readout replicates (run seed 0, 3 replicates:
    0, 1, 2; run seed 1: 1000, 1001, 1002): disjoint across run seeds."""
    return [seed * 1000 + r for r in range(replicates)]


class CandidateLosses(dict):
    """candidate -> losses (``run_candidates``), with ``images``: the ids
    (``building/point/view``) of the test images the losses belong to."""

    def __init__(self, items: dict, images):
        super().__init__(items)
        self.images = [str(i) for i in images]


def _arrays(data, target: str, split: str, image_size: int, limit: int | None, images: bool,
            label_stats: tuple | None = None):
    """(targets, weights[, images], ids) of a split, in record order."""
    ds = make_dataset(data, target, split=split, batch_size=64, image_size=image_size,
                      shuffle=False, augment=False, label_stats=label_stats, with_ids=True)
    return split_arrays(ds, target, limit, images=images)


def _codes(cache: FeatureCache, workdirs: dict, sources: list[str], data, split: str,
           image_size: int, limit: int | None, ids: np.ndarray,
           basis_split: str | None = None) -> np.ndarray | None:
    """(N, K V, c, c, 8): the K sources' cached codes of the samples ``ids``
    (the labels' ids, joined by id; a view tuple's id joins its V views'
    with ``+``), source-major; ``None`` without sources.

    Raises:
        InputError: a view with labels but no code (the code cache's
            images and the labels' must come from the same records).
    """
    if not sources:
        return None
    tuples = [str(i).split("+") for i in ids]
    views = {i for t in tuples for i in t}
    out = []
    for s in sources:
        # a target without labels for some records (or a tuple reaching
        # further into the split): its first ``limit`` samples need images
        # beyond the split's first ``limit``
        for lim in dict.fromkeys((limit, None)):
            if s.startswith(ORACLE):  # a task's true labels in place of its code
                codes, code_ids = cache.oracle(s[len(ORACLE):], data, split, image_size,
                                               basis_split or split, lim)
            else:
                codes, code_ids = cache.features(Path(workdirs[s]) / "encoder.keras", data,
                                                 split, image_size, lim, with_ids=True)
            row = {i: n for n, i in enumerate(code_ids)}
            missing = sorted(views - row.keys())
            if not missing:
                break
        if missing:
            raise InputError(f"{split}: {len(missing)} labelled image(s) have no code from "
                             f"{s!r}, e.g. {missing[0]!r}; codes and labels must come from "
                             "the same records")
        out.append(codes[np.array([[row[i] for i in t] for t in tuples])])  # (N, V, ...)
    return np.concatenate(out, 1)


def run_candidates(target: str, candidates: list[tuple[str, ...]], workdirs: dict, data,
                   cache: FeatureCache, image_size: int = 128, n_images: int = 1000,
                   train_split: str = "train", test_split: str = "test", steps: int = 200,
                   batch_size: int = 16, learning_rate: float = 1e-2, seeds=(0,),
                   references: bool = True,
                   budget_bytes: int | None = None) -> dict[tuple[str, ...], np.ndarray]:
    """Trains every candidate's readouts for ``target`` in one program.

    Args:
        candidates: source sets (task names as in ``workdirs``, ``random``),
            or ``("pixels",)``.
        workdirs: task -> training workdir (its ``encoder.keras``; the
            target's ``model.keras`` for ``self``).
        seeds: one per replicate: its initialisation and batch order.
        references: also score ``self`` and ``constant``.
        budget_bytes: bytes the readouts' training may use (default:
            ``memory.memory_budget()``, half of the machine's memory); what
            the job's arrays leave of it (``arrays_bytes``) is divided into
            programs of as many heads as ``head_step_bytes`` says fit (one
            program for most targets; the segmentation metric's pixel pairs
            need more at 64 px).

    Returns:
        ``CandidateLosses``: candidate -> (R, N_test) float64 losses for
        trained candidates, (N_test,) for ``("self",)`` and
        ``("constant",)``; ``.images`` the test images' ids.
    """
    spec = get_task(target)
    seeds = [int(s) for s in seeds]
    sources = sorted({s for c in candidates for s in c if s != PIXELS})
    pixels = any(c == (PIXELS,) for c in candidates)
    # standardised labels as the target's network was trained on them
    stats = saved_label_stats(workdirs[spec.name]) if spec.name in workdirs else None
    y, w, *x, ids = _arrays(data, spec.name, train_split, image_size, n_images, pixels, stats)
    yt, wt, *xt, test_ids = _arrays(data, spec.name, test_split, image_size, None, pixels, stats)
    prior = best_constant(spec.loss, y, w, spec.channels)
    out: dict[tuple[str, ...], np.ndarray] = {}
    if candidates:
        train = ReadoutArrays(_codes(cache, workdirs, sources, data, train_split, image_size,
                                     n_images, ids, train_split), y, w,
                              x[0] if pixels else None)
        test = ReadoutArrays(_codes(cache, workdirs, sources, data, test_split, image_size,
                                    None, test_ids, train_split), yt, wt,
                             xt[0] if pixels else None)
        heads = plan_heads([tuple(c) for c in candidates], seeds)
        budget = budget_bytes or memory_budget()
        per_head = head_step_bytes(spec, image_size, min(batch_size, len(y)))
        fits = heads_per_program(budget, arrays_bytes(train, test), per_head) if budget else None
        losses = train_readouts(spec, heads, sources, train, test, image_size, prior, seeds,
                                steps=steps, batch_size=batch_size,
                                learning_rate=learning_rate, max_heads=fits)
        for c in candidates:
            rows = [i for i, h in enumerate(heads) if h.sources == tuple(c)]
            out[tuple(c)] = losses[rows]
    if references:
        out[(CONSTANT,)] = constant_losses(spec, prior, yt, wt)
        own, own_ids = self_losses(spec.name, workdirs[spec.name], data, image_size, test_split,
                                   with_ids=True)
        if list(own_ids) != list(test_ids):
            raise InputError(f"{spec.name}: the own network was scored on other test images "
                             "than the readouts")
        out[(SELF,)] = own
    # a test image without any valid label scores 0 for every candidate: a tie
    # that says nothing and pulls the win rates toward 1/2; it is left out
    labelled = np.asarray(wt).reshape(len(wt), -1).sum(1) > 0
    if not labelled.any():
        raise InputError(f"{spec.name}: no {test_split!r} image has a valid label")
    return CandidateLosses({c: v[..., labelled] for c, v in out.items()},
                           np.asarray(test_ids)[labelled])


def constant_losses(spec, prior: np.ndarray, y: np.ndarray, w: np.ndarray) -> np.ndarray:
    """Per-image losses (N,) of always predicting ``prior``: one prediction
    per image of the output's shape (not the labels': segment ids are scored
    on 64-channel embeddings)."""
    pred = np.broadcast_to(prior, (len(y), *np.shape(prior))).astype(np.float32)
    return per_image_losses(spec, y, pred, w)


def run_transfer(target: str, sources: dict[str, str | os.PathLike], data, cache: FeatureCache,
                 image_size: int = 128, n_images: int = 1000, train_split: str = "train",
                 test_split: str = "test", steps: int = 200, batch_size: int = 16,
                 learning_rate: float = 1e-2, seed: int = 0) -> TransferResult:
    """One transfer readout from ``sources`` (task -> workdir) into ``target``.

    Returns:
        The target loss of every test image (``TaskSpec.loss``, masked as in
        training), for win rates and the taxonomy.
    """
    names = tuple(get_task(s).name for s in sources)
    workdirs = dict(zip(names, sources.values()))
    out = run_candidates(target, [names], workdirs, data, cache, image_size, n_images,
                         train_split, test_split, steps, batch_size, learning_rate, [seed],
                         references=False)
    return TransferResult(get_task(target).name, names, out[names][0], out.images)


def pixels_transfer(target: str, data, image_size: int = 128, n_images: int = 1000,
                    train_split: str = "train", test_split: str = "test", steps: int = 200,
                    batch_size: int = 16, learning_rate: float = 1e-2,
                    seed: int = 0) -> TransferResult:
    """The ``pixels`` baseline: the same readout on a small side encoder
    trained from scratch on the same transfer images (no frozen source)."""
    out = run_candidates(target, [(PIXELS,)], {}, data, FeatureCache(os.devnull),
                         image_size, n_images, train_split, test_split, steps, batch_size,
                         learning_rate, [seed], references=False)
    return TransferResult(get_task(target).name, (PIXELS,), out[(PIXELS,)][0], out.images)


def self_losses(target: str, workdir: str | os.PathLike, data, image_size: int = 128,
                test_split: str = "test", with_ids: bool = False):
    """Per-image test losses (N,) of the target's own fully supervised
    network; with ``with_ids`` also the images' (N,) ids."""
    spec = get_task(target)
    model = keras.saving.load_model(Path(workdir) / "model.keras", safe_mode=True)
    ds = make_dataset(data, spec.name, split=test_split, batch_size=64, image_size=image_size,
                      shuffle=False, augment=False, label_stats=saved_label_stats(workdir),
                      with_ids=True)
    out, ids = [], []
    for x, y, w, ident in ds:
        out.append(per_image_losses(spec, np.asarray(y[spec.name]),
                                    model.predict_on_batch(x)[spec.name],
                                    np.asarray(w[spec.name])))
        ids.append(id_strings(ident))
    losses = np.concatenate(out)
    return (losses, np.concatenate(ids)) if with_ids else losses
