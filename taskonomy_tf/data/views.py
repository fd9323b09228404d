"""View tuples for the tasks labelled from the camera JSON.

An index pass reads each record's building, point, view and point_info;
numpy then builds the tuples each task needs (registry ``TUPLES``, keyed by
``TaskSpec.decode``) with their labels (``geometry``):

* ``relative_pose``: ordered pairs of views of one point (fixated);
* ``relative_pose_nonfixated``: pairs of views of different points of one
  building where the second view's point is visible in the first
  (``nonfixated_points_in_view``);
* ``egomotion``: triplets of views of one point;
* ``point_match``: same-point pairs (class 1) and as many pairs of views
  of two different points (class 0);
* ``room_layout``, ``vanishing_points``: single views.

Tuples never cross a shard (the converter keeps each point within one), so
a shard's images are loaded once and gathered. Pose and layout vectors are
standardised with the mean and std of the training split's labels (the
original hard-coded constants from its own training data; reference
section 8): never with statistics that saw the test split. A trained
network stores the statistics it used (``label_stats.json`` in its workdir)
and transfers into its task reuse them.
"""

from __future__ import annotations

import functools
import itertools
import json
import os

import numpy as np
import tensorflow as tf

from taskonomy_tf.data import geometry, records, schema
from taskonomy_tf.data.decode import decode_png_tensor, physical_from_pixels
from taskonomy_tf.errors import InputError
from taskonomy_tf.registry import Registry
from taskonomy_tf.tasks import TaskSpec

TUPLES = Registry("view-tuple rule")
STANDARDISED = {"relative_pose", "relative_pose_nonfixated", "egomotion", "room_layout"}


def read_index(file: str) -> list[dict]:
    """Per record of one shard: building, point, view and the parsed point_info.

    Cached per (path, size, modification time): the split's shards are also
    read for the folder-wide label statistics, and a shard is read once.
    """
    st = os.stat(file)
    return _read_index(str(file), st.st_size, st.st_mtime_ns)


@functools.lru_cache(maxsize=256)
def _read_index(file: str, size: int, mtime_ns: int) -> list[dict]:
    spec = {
        schema.META_BUILDING: tf.io.FixedLenFeature([], tf.string),
        schema.META_POINT: tf.io.FixedLenFeature([], tf.int64),
        schema.META_VIEW: tf.io.FixedLenFeature([], tf.int64),
        schema.POINT_INFO_KEY: tf.io.FixedLenFeature([], tf.string, default_value=""),
    }
    out = []
    ds = tf.data.TFRecordDataset(file).map(lambda r: tf.io.parse_single_example(r, spec))
    for rec in ds.as_numpy_iterator():
        info = rec[schema.POINT_INFO_KEY]
        out.append({
            "building": rec[schema.META_BUILDING].decode(),
            "point": int(rec[schema.META_POINT]), "view": int(rec[schema.META_VIEW]),
            "info": json.loads(info) if info else None,
        })
    return out


def _by_point(index: list[dict]) -> dict[tuple[str, int], list[int]]:
    groups: dict[tuple[str, int], list[int]] = {}
    for i, r in enumerate(index):
        if r["info"] is not None:
            groups.setdefault((r["building"], r["point"]), []).append(i)
    return groups


def _cam(r: dict) -> tuple[np.ndarray, np.ndarray]:
    return np.asarray(r["info"]["camera_location"]), np.asarray(r["info"]["camera_rotation_final"])


def _pose(index, pairs) -> np.ndarray:
    if not pairs:
        return np.zeros((0, 6))
    a = [_cam(index[i]) for i, _ in pairs]
    b = [_cam(index[j]) for _, j in pairs]
    return geometry.relative_pose(np.array([x[0] for x in a]), np.array([x[1] for x in a]),
                                  np.array([x[0] for x in b]), np.array([x[1] for x in b]))


@TUPLES.register("relative_pose")
def _fixated(index, rng):
    pairs = [p for g in _by_point(index).values() for p in itertools.permutations(g, 2)]
    return pairs, _pose(index, pairs)


@TUPLES.register("relative_pose_nonfixated")
def _nonfixated(index, rng):
    by_building: dict[str, dict[int, list[int]]] = {}
    for (b, p), views_ in _by_point(index).items():
        by_building.setdefault(b, {})[p] = views_
    pairs = []
    for i, r in enumerate(index):
        if r["info"] is None:
            continue
        seen = set(r["info"].get("nonfixated_points_in_view") or ())
        for p, views_ in by_building.get(r["building"], {}).items():
            if p != r["point"] and p in seen:
                pairs.extend((i, j) for j in views_)
    return pairs, _pose(index, pairs)


@TUPLES.register("egomotion")
def _egomotion(index, rng):
    triples = [t for g in _by_point(index).values() for t in itertools.combinations(g, 3)]
    if not triples:
        return [], np.zeros((0, 18))
    locs = np.array([[_cam(index[k])[0] for k in t] for t in triples])
    rots = np.array([[_cam(index[k])[1] for k in t] for t in triples])
    return triples, geometry.egomotion(locs, rots)


@TUPLES.register("point_match")
def _point_match(index, rng):
    """Every pair of views of one point (match), and as many pairs of views
    of two different points drawn at random (no match); no negatives when
    the shard holds a single point."""
    groups = _by_point(index)
    positives = [p for g in groups.values() for p in itertools.combinations(g, 2)]
    keys = sorted(groups)
    negatives = []
    if len(keys) >= 2:
        for _ in range(len(positives)):
            a, b = rng.choice(len(keys), 2, replace=False)
            negatives.append((int(rng.choice(groups[keys[a]])), int(rng.choice(groups[keys[b]]))))
    pairs = positives + negatives
    labels = np.zeros((len(pairs), 2))
    labels[: len(positives), 1] = 1.0
    labels[len(positives):, 0] = 1.0
    return pairs, labels


@TUPLES.register("vanishing_points")
def _vanishing(index, rng):
    singles = [(i,) for g in _by_point(index).values() for i in g]
    return singles, np.array([geometry.vanishing_points(_cam(index[i])[1]) for (i,) in singles]
                             ).reshape(-1, 9)


@TUPLES.register("room_layout")
def _layout(index, rng):
    singles = [(i,) for g in _by_point(index).values() for i in g
               if "bounding_box_ranges" in index[i]["info"]]
    return singles, np.array([geometry.room_layout(*_cam(index[i]),
                                                   index[i]["info"]["bounding_box_ranges"])
                              for (i,) in singles]).reshape(-1, 9)


def build_tuples(files: list[str], spec: TaskSpec, seed: int, with_counts: bool = False):
    """Tuples and raw labels per file: a list of (int (n, V), float (n, D));
    with ``with_counts`` also the number of records of each file."""
    rule = TUPLES.get(spec.decode)
    out, counts = [], []
    for n, f in enumerate(files):
        rng = np.random.default_rng([seed, n])
        index = read_index(f)
        tuples, labels = rule(index, rng)
        idx = np.asarray(tuples, np.int64).reshape(-1, spec.views)
        out.append((idx, np.asarray(labels, np.float64).reshape(-1, spec.channels)))
        counts.append(len(index))
    return (out, counts) if with_counts else out


def label_stats(files: list[str], spec: TaskSpec) -> tuple[np.ndarray, np.ndarray]:
    """Mean and std (D,) of the task's raw labels over the given shards."""
    labels = np.concatenate([lab for _, lab in build_tuples(files, spec, 0)])
    if len(labels) == 0:
        return np.zeros(spec.channels), np.ones(spec.channels)
    std = labels.std(0)
    return labels.mean(0), np.where(std > 1e-8, std, 1.0)


def training_stats(path, spec: TaskSpec) -> tuple[np.ndarray, np.ndarray] | None:
    """The standardisation of a task's labels: ``label_stats`` of the
    training split of the folder ``path`` (of every shard when the folder has
    no ``train`` split, or of the one file ``path`` names), or ``None`` for
    tasks whose labels are not standardised."""
    if spec.decode not in STANDARDISED:
        return None
    try:
        files = records.find_shards(path, "train")
    except FileNotFoundError:
        files = records.find_shards(path, None)
    return label_stats(files, spec)


def view_tuples(path, files, spec: TaskSpec, size: int, shuffle: bool, seed: int,
                held: list[str], stats=None) -> tf.data.Dataset:
    """Dataset of (images (V, S, S, 3) in [0, 1], label) for one point_info task;
    ``stats`` (mean, std) standardise the labels (default: ``training_stats``)."""
    if "point_info" not in held:
        raise InputError(f"task {spec.name!r} needs domain 'point_info', missing from the "
                         f"records; domains present: {', '.join(held)}")
    per_file, counts = build_tuples(files, spec, seed, with_counts=True)
    if spec.decode in STANDARDISED:
        mean, std = stats if stats is not None else training_stats(path, spec)
        mean, std = np.asarray(mean, np.float64), np.asarray(std, np.float64)
        per_file = [(i, (lab - mean) / std) for i, lab in per_file]
    if not sum(len(i) for i, _ in per_file):
        raise InputError(f"task {spec.name!r}: the records give no view tuples (need "
                         f"{spec.views} views per point with point_info)")
    if shuffle:
        rng = np.random.default_rng(seed)
        per_file = [(i[p], lab[p]) for i, lab in per_file for p in [rng.permutation(len(i))]]
    keep = [n for n, (i, _) in enumerate(per_file) if len(i)]
    ids = [tuple_ids(read_index(files[n]), per_file[n][0]) for n in keep]
    names = tf.constant([files[n] for n in keep])
    sizes = tf.constant([counts[n] for n in keep], tf.int64)
    idx = tf.ragged.constant([per_file[n][0].tolist() for n in keep], ragged_rank=1, dtype=tf.int64)
    labs = tf.ragged.constant([per_file[n][1].tolist() for n in keep], ragged_rank=1,
                              dtype=tf.float32)
    id_strings = tf.ragged.constant(ids, ragged_rank=1, dtype=tf.string)
    rgb = schema.DOMAINS["rgb"]

    def load(file, size_, tuples, labels, tuple_ids_):
        raw = tf.data.TFRecordDataset(file).map(
            lambda r: tf.io.parse_single_example(
                r, {rgb.encoded_key: tf.io.FixedLenFeature([], tf.string)})[rgb.encoded_key])
        images = raw.batch(size_).get_single_element()  # one shard's PNG bytes
        return tf.data.Dataset.from_tensor_slices((tf.gather(images, tuples), labels,
                                                   tuple_ids_))

    def decode(encoded, label, ident):
        def one(b):
            values, _ = physical_from_pixels("rgb", decode_png_tensor(b, rgb))
            return tf.image.resize(values, [size, size], antialias=True)

        imgs = tf.map_fn(one, encoded, fn_output_signature=tf.float32)
        imgs = tf.ensure_shape(imgs, [spec.views, size, size, 3])
        return imgs, label, ident

    ds = tf.data.Dataset.from_tensor_slices((names, sizes, idx, labs, id_strings))
    ds = ds.interleave(load, cycle_length=min(4, len(keep)))
    return ds.map(decode, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)


def to_example(spec: TaskSpec, with_ids: bool = False):
    """(index, (images, label, id)) -> (input in [-1, 1], {task: label},
    {task: 1}[, id])."""

    def fn(index, element):
        images, label, ident = element
        x = images * 2.0 - 1.0
        if spec.views == 1:
            x = x[0]
        out = (x, {spec.name: label}, {spec.name: tf.constant(1.0)})
        return (*out, ident) if with_ids else out

    return fn


def tuple_ids(index: list[dict], tuples: np.ndarray) -> list[str]:
    """Each tuple's id: its views' ``building/point/view`` joined by ``+``."""
    def one(i):
        r = index[int(i)]
        return f"{r['building']}/{r['point']}/{r['view']}"

    return ["+".join(one(i) for i in t) for t in np.asarray(tuples).reshape(len(tuples), -1)]
