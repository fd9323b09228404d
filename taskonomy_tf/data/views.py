"""View tuples for the tasks labelled from the camera JSON.

Each shard's view index (``view_index``: building, point, view and the
camera fields of point_info, written by the converter) is read one shard at
a time; numpy then builds the tuples each task needs (registry ``TUPLES``,
keyed by ``TaskSpec.decode``) with their labels (``geometry``):

* ``relative_pose``: ordered pairs of views of one point (fixated);
* ``relative_pose_nonfixated``: pairs of views of different points of one
  building where the second view's point is visible in the first
  (``nonfixated_points_in_view``);
* ``egomotion``: triplets of views of one point;
* ``point_match``: same-point pairs (class 1) and as many pairs of views
  of two different points, of one building where possible (class 0);
* ``room_layout``, ``vanishing_points``: single views.

Tuples never cross a shard (the converter keeps each point within one), so
a shard's tuples are built inside the tf.data pipeline when the shard is
opened (``tf.numpy_function``), and its images are loaded once and
gathered: nothing in the graph grows with the data, and memory holds the
PNG bytes of the shards being interleaved (``cycle_length`` of them) and
one shard's tuples each. Pose and layout vectors are
standardised with the mean and std of the training split's labels (the
original hard-coded constants from its own training data; reference
section 8): never with statistics that saw the test split. A trained
network stores the statistics it used (``label_stats.json`` in its workdir)
and transfers into its task reuse them.
"""

from __future__ import annotations

import itertools

import numpy as np
import tensorflow as tf

from taskonomy_tf.data import geometry, records, schema
from taskonomy_tf.data.decode import decode_png_tensor, physical_from_pixels
from taskonomy_tf.data.view_index import read_index
from taskonomy_tf.errors import InputError
from taskonomy_tf.registry import Registry
from taskonomy_tf.tasks import TaskSpec

_plain = tf.autograph.experimental.do_not_convert  # graph code already (data/pipeline.py)

TUPLES = Registry("view-tuple rule")
STANDARDISED = {"relative_pose", "relative_pose_nonfixated", "egomotion", "room_layout"}


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
    """Every pair of views of one point (match), and as many distinct pairs
    of views of two different points (no match; fewer when the shard has
    fewer such pairs): the second point from the first's building whenever
    the shard holds another point of it, so a negative is not told apart by
    its scene alone (hard negatives; with points of any building drawn, 89%
    of the embedded data's negatives paired two buildings). No negatives
    when the shard holds a single point. Every pair is unique: it is the
    sample's id."""
    groups = _by_point(index)
    positives = [p for g in groups.values() for p in itertools.combinations(g, 2)]
    keys = sorted(groups)
    siblings: dict[str, list[int]] = {}  # building -> its points' positions in keys
    for k, (building, _) in enumerate(keys):
        siblings.setdefault(building, []).append(k)
    negatives: dict[tuple[int, int], None] = {}  # insertion-ordered set
    if len(keys) >= 2:
        possible = sum(len(groups[a]) * len(groups[b])
                       for a, b in itertools.permutations(keys, 2))
        want = min(len(positives), possible)
        for _ in range(20 * want):
            if len(negatives) == want:
                break
            a = int(rng.integers(len(keys)))
            near = [k for k in siblings[keys[a][0]] if k != a]
            b = int(rng.choice(near)) if near else int(rng.choice(
                [k for k in range(len(keys)) if k != a]))
            negatives[(int(rng.choice(groups[keys[a]])), int(rng.choice(groups[keys[b]])))] = None
    pairs = positives + list(negatives)
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


def shard_tuples(file: str, position: int, spec: TaskSpec, seed: int):
    """One shard's tuples, int64 (n, V) record positions, and raw labels,
    float64 (n, D); the rule's random draws come from ``(seed, position)``,
    ``position`` being the shard's place in the split."""
    rng = np.random.default_rng([seed, position])
    tuples, labels = TUPLES.get(spec.decode)(read_index(file), rng)
    return (np.asarray(tuples, np.int64).reshape(-1, spec.views),
            np.asarray(labels, np.float64).reshape(-1, spec.channels))


def build_tuples(files: list[str], spec: TaskSpec, seed: int):
    """``shard_tuples`` of every file: a list of (int (n, V), float (n, D))."""
    return [shard_tuples(f, n, spec, seed) for n, f in enumerate(files)]


def has_tuples(files: list[str], spec: TaskSpec, seed: int = 0) -> bool:
    """Whether any of the shards gives the task a tuple (reads view indexes
    until one does)."""
    return any(len(shard_tuples(f, n, spec, seed)[0]) for n, f in enumerate(files))


def label_stats(files: list[str], spec: TaskSpec) -> tuple[np.ndarray, np.ndarray]:
    """Mean and (population) std (D,) of the task's raw labels over the given
    shards, accumulated shard by shard (Chan et al.'s pairwise update), so
    memory holds one shard's labels whatever the split's size."""
    count, mean, m2 = 0, np.zeros(spec.channels), np.zeros(spec.channels)
    for n, f in enumerate(files):
        _, lab = shard_tuples(f, n, spec, 0)
        if not len(lab):
            continue
        k, mu = len(lab), lab.mean(0)
        delta = mu - mean
        m2 = m2 + ((lab - mu) ** 2).sum(0) + delta**2 * count * k / (count + k)
        mean = mean + delta * k / (count + k)
        count += k
    if count == 0:
        return np.zeros(spec.channels), np.ones(spec.channels)
    std = np.sqrt(m2 / count)
    return mean, np.where(std > 1e-8, std, 1.0)


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


def tuple_index(files: list[str], spec: TaskSpec, seed: int, shuffle: bool = False,
                stats=None, deterministic: bool = True, parallel: int = 4) -> tf.data.Dataset:
    """One element per shard: ``(file, tuples int64 (n, V), labels float32
    (n, D), ids string (n,), records int64 ())``, the tuples' record
    positions in the shard, labels standardised by ``stats`` (mean, std) when
    given, each tuple's id, and the shard's record count.

    Built inside tf.data from the shards' view indexes (``shard_tuples``, in
    ``parallel`` threads): the graph holds the file names only, and memory
    the few shards in flight. With ``shuffle`` the shard order and each
    shard's tuples are shuffled (seeded by ``seed``).
    """
    mean, std = ((np.zeros(spec.channels), np.ones(spec.channels)) if stats is None
                 else (np.asarray(stats[0], np.float64), np.asarray(stats[1], np.float64)))

    def tuples_of(file, position):  # numpy, one shard
        name, n = file.decode(), int(position)
        idx, lab = shard_tuples(name, n, spec, seed)
        if shuffle:
            order = np.random.default_rng([seed, n, 1]).permutation(len(idx))
            idx, lab = idx[order], lab[order]
        index = read_index(name)
        ids = np.array([t.encode() for t in tuple_ids(index, idx)], dtype=object)
        return idx, ((lab - mean) / std).astype(np.float32), ids, np.int64(len(index))

    def index(file, position):
        idx, labels, ids, count = tf.numpy_function(
            tuples_of, [file, position], [tf.int64, tf.float32, tf.string, tf.int64],
            stateful=False)
        return (file, tf.ensure_shape(idx, [None, spec.views]),
                tf.ensure_shape(labels, [None, spec.channels]), tf.ensure_shape(ids, [None]),
                tf.ensure_shape(count, []))

    ds = tf.data.Dataset.zip(tf.data.Dataset.from_tensor_slices(list(map(str, files))),
                             tf.data.Dataset.range(len(files)))
    if shuffle:
        ds = ds.shuffle(len(files), seed=seed)
    return ds.map(_plain(index), num_parallel_calls=parallel, deterministic=deterministic)


def view_tuples(path, files, spec: TaskSpec, size: int, shuffle: bool, seed: int,
                held: list[str], stats=None, deterministic: bool = True) -> tf.data.Dataset:
    """Dataset of (images (V, S, S, 3) in [0, 1], label (D,), id) for one
    point_info task; ``stats`` (mean, std) standardise the labels (default:
    ``training_stats``). Tuples come from ``tuple_index``, interleaved four
    shards at a time; a shard's PNG bytes are read once and gathered per
    tuple."""
    if "point_info" not in held:
        raise InputError(f"task {spec.name!r} needs domain 'point_info', missing from the "
                         f"records; domains present: {', '.join(held)}")
    if not has_tuples(files, spec, seed):
        raise InputError(f"task {spec.name!r}: the records give no view tuples (need "
                         f"{spec.views} views per point with point_info)")
    if stats is None and spec.decode in STANDARDISED:
        stats = training_stats(path, spec)
    rgb = schema.DOMAINS["rgb"]

    def load(file, idx, labels, ids, records_):
        def shard_images():
            raw = tf.data.TFRecordDataset(file).map(
                lambda r: tf.io.parse_single_example(
                    r, {rgb.encoded_key: tf.io.FixedLenFeature([], tf.string)})[rgb.encoded_key])
            return tf.gather(raw.batch(records_).get_single_element(), idx)

        images = tf.cond(tf.shape(idx)[0] > 0, shard_images,
                         lambda: tf.zeros([0, spec.views], tf.string))
        return tf.data.Dataset.from_tensor_slices((images, labels, ids))

    def decode(encoded, label, ident):
        def one(b):
            values, _ = physical_from_pixels("rgb", decode_png_tensor(b, rgb))
            return tf.image.resize(values, [size, size], antialias=True)

        imgs = tf.map_fn(one, encoded, fn_output_signature=tf.float32)
        imgs = tf.ensure_shape(imgs, [spec.views, size, size, 3])
        return imgs, label, ident

    cycle = min(4, len(files))
    ds = tuple_index(files, spec, seed, shuffle, stats, deterministic, parallel=cycle)
    ds = ds.interleave(_plain(load), cycle_length=cycle, num_parallel_calls=cycle,
                       deterministic=deterministic)
    return ds.map(_plain(decode), num_parallel_calls=tf.data.AUTOTUNE,
                  deterministic=deterministic)


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
    """Each tuple's id (``tuples``: int (n, V) record positions): its views'
    ``building/point/view`` joined by ``+``."""
    def one(i):
        r = index[int(i)]
        return f"{r['building']}/{r['point']}/{r['view']}"

    return ["+".join(one(i) for i in t) for t in np.asarray(tuples)]
