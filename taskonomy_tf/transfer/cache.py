"""The feature cache: each frozen encoder runs over each image once.

Each encoder is fed its own task's input (``data.make_inputs``: grayscale
for colorization, noisy images for denoising, the masked image for
in-painting, the nine tiles for jigsaw, whose tile codes are pooled by
``targets.SOURCE_POOLING``); the task is read from the encoder's workdir
(``config.json``; none: the untrained ``random`` encoder, fed RGB).

Representations are stored as ``.npz`` (float16 codes) under a
key made of the encoder file's SHA-256, its input rule, the shards' SHA-256
(from the manifest, else the files), the split, the image size and this
module's format version; so a retrained encoder, changed data or other
preprocessing never reuses a stale entry. Entries are written to a
temporary name and renamed when whole; nothing is ever unpickled.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import numpy as np

from taskonomy_tf.data.records import find_shards, id_strings
from taskonomy_tf.fileio import atomic_path, sha256_file
from taskonomy_tf.tasks import TaskSpec, get_task
from taskonomy_tf.training.loop import saved_task

FORMAT_VERSION = 3  # 2: the images' ids stored with their codes; 3: each source's own input


def data_fingerprint(data: str | os.PathLike, split: str) -> str:
    """SHA-256 over the split's shard checksums (manifest when present)."""
    files = find_shards(data, split)
    manifest = Path(data) / "manifest.json"
    sums = {}
    if manifest.exists():
        for part in json.loads(manifest.read_text()).get("splits", {}).values():
            sums.update({s["name"]: s["sha256"] for s in part["shards"]})
    digest = hashlib.sha256()
    for f in files:
        digest.update(Path(f).name.encode())
        digest.update((sums.get(Path(f).name) or sha256_file(Path(f))).encode())
    return digest.hexdigest()


class FeatureCache:
    """Frozen-encoder representations on disk.

    Args:
        root: cache folder.

    Attributes:
        computed: how many entries this instance computed (not loaded).
    """

    def __init__(self, root: str | os.PathLike):
        self.root = Path(root)
        self.computed = 0

    def key(self, encoder_file: str | os.PathLike, data, split: str, image_size: int,
            limit: int | None = None, fingerprint: str | None = None) -> str:
        """The entry's name; ``fingerprint``: ``data_fingerprint(data, split)``
        when the caller has it already (one per split, not per encoder: without
        a manifest it hashes every shard)."""
        parts = [sha256_file(Path(encoder_file)), source_spec(encoder_file).input,
                 fingerprint or data_fingerprint(data, split), split, str(image_size),
                 str(limit), str(FORMAT_VERSION)]
        return hashlib.sha256("|".join(parts).encode()).hexdigest()[:24]

    def features(self, encoder_file, data, split: str, image_size: int,
                 limit: int | None = None, batch_size: int = 64,
                 with_ids: bool = False) -> np.ndarray | tuple[np.ndarray, np.ndarray]:
        """(N, h, w, 8) float32 codes of the split's first ``limit`` images
        (all when ``None``), in record order; with ``with_ids`` also their
        (N,) ids (``building/point/view``), stored beside the codes."""
        codes, ids = self.features_many([encoder_file], data, split, image_size, limit,
                                        batch_size)[0]
        return (codes, ids) if with_ids else codes

    def features_many(self, encoder_files, data, split: str, image_size: int,
                      limit: int | None = None, batch_size: int = 64
                      ) -> list[tuple[np.ndarray, np.ndarray]]:
        """``features(..., with_ids=True)`` of several encoders, in their
        order. The ones not cached yet are encoded together: one pass over
        the split per input rule, every encoder of that rule on each batch
        (``encode_many``), instead of one pass (reading, decoding and a
        traced graph) per encoder."""
        fingerprint = data_fingerprint(data, split)
        paths = [self.root / f"{self.key(f, data, split, image_size, limit, fingerprint)}.npz"
                 for f in encoder_files]
        got: dict[Path, tuple[np.ndarray, np.ndarray]] = {}
        missing = {}  # path -> encoder file (one entry per distinct file content)
        for path, f in dict(zip(paths, encoder_files)).items():
            if path.exists():
                with np.load(path, allow_pickle=False) as z:
                    got[path] = z["codes"].astype(np.float32), z["ids"].astype(str)
            else:
                missing[path] = f
        file_path = {f: path for path, f in missing.items()}
        for files in by_input_rule(missing.values()).values():
            many, ids = encode_many(files, data, split, image_size, limit, batch_size)
            for f, codes in zip(files, many):
                got[file_path[f]] = self._store(file_path[f], codes, ids), ids
        return [got[path] for path in paths]

    def _store(self, path: Path, codes: np.ndarray, ids: np.ndarray) -> np.ndarray:
        """Writes one entry (whole or not at all); returns the codes as stored."""
        # float16 halves the disk (codes are ReLU outputs of a few units);
        # float32 when a code would overflow it
        stored = codes.astype(np.float16 if np.abs(codes).max() < 6e4 else np.float32)
        with atomic_path(path) as tmp:
            np.savez(tmp, codes=stored, ids=ids)
        self.computed += 1
        return stored.astype(np.float32)

    def oracle(self, task: str, data, split: str, image_size: int, basis_split: str,
               limit: int | None = None) -> tuple[np.ndarray, np.ndarray]:
        """(codes (N, c, c, 8) float32, ids (N,)) of a label oracle: ``task``'s
        true labels in place of its network's code (``label_codes``), cached
        like the encoders' codes."""
        parts = ["oracle", get_task(task).name, data_fingerprint(data, split),
                 data_fingerprint(data, basis_split), split, basis_split, str(image_size),
                 str(limit), str(FORMAT_VERSION)]
        key = hashlib.sha256("|".join(parts).encode()).hexdigest()[:24]
        path = self.root / f"oracle-{key}.npz"
        if path.exists():
            with np.load(path, allow_pickle=False) as z:
                return z["codes"].astype(np.float32), z["ids"].astype(str)
        codes, ids = label_codes(task, data, split, image_size, basis_split, limit)
        with atomic_path(path) as tmp:
            np.savez(tmp, codes=codes.astype(np.float32), ids=ids)
        self.computed += 1
        return codes, ids


ORACLE_BASIS_IMAGES = 512  # images the oracle's projection is fitted on, at most


def _label_maps(task: str, data, split: str, image_size: int, limit: int | None):
    """(maps (N, c, c, C) float64, ids): a task's encoded targets as maps on
    the code grid: dense maps area-averaged over their valid pixels (class
    maps as class frequencies), per-image vectors and classes the same at
    every cell; 0 where nothing is valid."""
    from taskonomy_tf.data.pipeline import make_dataset
    from taskonomy_tf.models.encoders import code_stride
    from taskonomy_tf.training.evaluate import split_arrays

    spec = get_task(task)
    ds = make_dataset(data, spec, split=split, batch_size=64, image_size=image_size,
                      shuffle=False, augment=False, with_ids=True)
    y, w, ids = split_arrays(ds, spec.name, limit)
    side = image_size // code_stride(image_size)
    y = np.asarray(y, np.float64)
    w = np.asarray(w, np.float64)
    if spec.is_dense:
        if spec.loss == "pixel_sparse_ce":  # class ids -> one-hot frequencies
            y = (y[..., 0, None] == np.arange(spec.channels)).astype(np.float64)
        n, h = len(y), y.shape[1]
        f = h // side
        yw = (y * w[..., None]).reshape(n, side, f, side, f, -1).sum((2, 4))
        ww = w.reshape(n, side, f, side, f).sum((2, 4))[..., None]
        maps = np.where(ww > 0, yw / np.maximum(ww, 1e-12), 0.0)
    else:
        flat = y.reshape(len(y), -1) * w.reshape(len(w), -1)[:, :1]
        maps = np.broadcast_to(flat[:, None, None, :], (len(y), side, side, flat.shape[1]))
    return maps, ids


def label_codes(task: str, data, split: str, image_size: int, basis_split: str,
                limit: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """A label oracle's codes: ``_label_maps`` projected onto their 8
    principal components (fitted on ``basis_split``, the transfer's training
    images, and centred there; fewer channels are zero-padded): the same
    c x c x 8 budget as a network's code, holding what the labels know."""
    from taskonomy_tf.models.encoders import REPRESENTATION_CHANNELS

    maps, ids = _label_maps(task, data, split, image_size, limit)
    basis, _ = _label_maps(task, data, basis_split, image_size, ORACLE_BASIS_IMAGES)
    pixels = basis.reshape(-1, basis.shape[-1])
    mean = pixels.mean(0)
    _, _, vt = np.linalg.svd(pixels - mean, full_matrices=False)
    k = min(REPRESENTATION_CHANNELS, vt.shape[0])
    codes = np.zeros(maps.shape[:3] + (REPRESENTATION_CHANNELS,), np.float32)
    codes[..., :k] = (maps - mean) @ vt[:k].T
    return codes, np.asarray(ids).astype(str)


WEIGHT_BYTES = 1 << 30  # our choice: the encoders' weights one pass over a split holds


def weight_chunks(sizes) -> list[list[int]]:
    """Indices of encoders whose weights take ``sizes`` bytes, in order, in
    runs of at most ``WEIGHT_BYTES`` (one encoder per run at least): each
    run is one pass over the split."""
    chunks, used = [[]], 0
    for i, size in enumerate(sizes):
        if chunks[-1] and used + size > WEIGHT_BYTES:
            chunks.append([])
            used = 0
        chunks[-1].append(i)
        used += size
    return chunks


def architecture_key(encoder_file: str | os.PathLike) -> str:
    """The architecture a saved ``.keras`` model declares: its
    ``config.json`` without the ids Keras gives objects shared between
    layers (an initializer, a regulariser, a dtype policy: Python object
    ids, different at every save, and present or not depending on how the
    model was built; sharing them changes no weight and no output). Equal
    keys: the same layers, names, shapes and settings, so one model's
    weights load into the other (``encode_many``)."""
    import zipfile

    with zipfile.ZipFile(encoder_file) as z:
        config = json.loads(z.read("config.json"))

    def canonical(value):
        if isinstance(value, dict):
            return {k: canonical(v) for k, v in value.items() if k != "shared_object_id"}
        if isinstance(value, list):
            return [canonical(v) for v in value]
        return value

    return json.dumps(canonical(config), sort_keys=True)


def by_architecture(encoder_files) -> dict[str, list[int]]:
    """Indices of ``encoder_files`` grouped by ``architecture_key``, in order."""
    groups: dict[str, list[int]] = {}
    for i, f in enumerate(encoder_files):
        groups.setdefault(architecture_key(f), []).append(i)
    return groups


def by_input_rule(encoder_files) -> dict[str, list]:
    """Encoder files grouped by the input rule their task feeds them
    (``source_spec``), in their order: each group shares a pass over a split."""
    groups: dict[str, list] = {}
    for f in encoder_files:
        groups.setdefault(source_spec(f).input, []).append(f)
    return groups


def source_spec(encoder_file: str | os.PathLike) -> TaskSpec:
    """The task whose input feeds an encoder: its workdir's task, or
    ``autoencoding`` (plain RGB) for an encoder trained on no task."""
    return get_task(saved_task(Path(encoder_file).parent) or "autoencoding")


def encode_many(encoder_files, data, split: str, image_size: int, limit: int | None = None,
                batch_size: int = 64) -> tuple[list[np.ndarray], np.ndarray]:
    """Runs saved encoders fed the same input rule (safe mode, inference) on
    their inputs (``data.make_inputs``) over a split's first ``limit``
    records, in one pass: ([codes (N, h, w, 8) float32 per encoder], ids (N,)
    str). Tiled inputs (B, T, S, S, 3) are encoded tile by tile and pooled
    (``targets.SOURCE_POOLING``).

    Encoders of one architecture (``architecture_key``: the networks of a
    run's tasks) are built once and traced once: each batch runs through
    that one graph with each encoder's weights in turn (``stateless_call``),
    instead of a model deserialised and a graph traced per encoder. A pass
    holds the weights of encoders up to ``WEIGHT_BYTES``; more take another
    pass over the split.

    Raises:
        ValueError: encoders of different input rules (an internal error:
            ``FeatureCache.features_many`` groups them).
    """
    import keras
    import tensorflow as tf

    from taskonomy_tf.data.pipeline import make_inputs
    from taskonomy_tf.data.targets import SOURCE_POOLING

    specs = [source_spec(f) for f in encoder_files]
    if len({s.input for s in specs}) != 1:
        raise ValueError(f"encode_many: one input rule expected, got {[s.input for s in specs]}")
    images = make_inputs(data, specs[0], split=split, batch_size=batch_size,
                         image_size=image_size)
    if limit:
        images = images.unbatch().take(limit).batch(batch_size)
    x_spec = images.element_spec[0]  # (B, S, S, C) or tiles (B, T, S, S, 3), B open

    def graph(model, weights):
        """One traced graph of ``model`` for every batch (the last, shorter,
        one included) and every encoder of its architecture: the weights
        are arguments."""
        signature = [[tf.TensorSpec(w.shape, w.dtype) for w in part] for part in weights]

        @tf.function(input_signature=[*signature, x_spec])
        def run(trainable, non_trainable, x):
            tiles = x.shape.rank == 5  # every tile through the one tower
            flat = tf.reshape(x, (-1, *x.shape[2:])) if tiles else x
            code, _ = model.stateless_call(trainable, non_trainable, flat, training=False)
            return tf.reshape(code, (-1, x.shape[1], *code.shape[1:])) if tiles else code
        return run

    models, of = [], {}  # one model per architecture; each encoder's architecture
    holds = []  # per architecture: the encoder whose weights its model holds now
    for members in by_architecture(encoder_files).values():
        of.update({i: len(models) for i in members})
        models.append(keras.saving.load_model(encoder_files[members[0]], safe_mode=True,
                                              compile=False))
        holds.append(members[0])
    runs: dict[int, object] = {}  # architecture -> its traced graph
    sizes = [sum(int(np.prod(v.shape)) * np.dtype(v.dtype).itemsize
                 for v in models[of[i]].weights) for i in range(len(encoder_files))]
    codes: list[list[np.ndarray]] = [[] for _ in encoder_files]
    ids = None
    for chunk in weight_chunks(sizes):  # one pass over the split each
        weights = {}
        for i in chunk:  # weights only: the architecture is the one loaded
            model = models[of[i]]
            if holds[of[i]] != i:
                model.load_weights(encoder_files[i])
                holds[of[i]] = i
            weights[i] = tuple([tf.constant(v.numpy()) for v in part] for part in
                               (model.trainable_variables, model.non_trainable_variables))
            if of[i] not in runs:
                runs[of[i]] = graph(model, weights[i])
        chunk_ids = []
        for x, ident in images:
            for i in chunk:
                codes[i].append(np.asarray(runs[of[i]](*weights[i], x)))
            chunk_ids.append(id_strings(ident))
        chunk_ids = np.concatenate(chunk_ids)
        if ids is not None and not np.array_equal(ids, chunk_ids):  # passes read alike
            raise AssertionError(f"encode_many: a second pass over {split!r} read other records")
        ids = chunk_ids
    stacked = [np.concatenate(c) for c in codes]
    if stacked[0].ndim == 5:  # tile codes -> one code map
        stacked = [SOURCE_POOLING.get(specs[0].input)(c) for c in stacked]
    return [c.astype(np.float32) for c in stacked], ids
