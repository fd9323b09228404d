"""The feature cache: each frozen encoder runs over each image once.

Representations are stored as ``.npz`` (float16 codes) under a
key made of the encoder file's SHA-256, the shards' SHA-256 (from the
manifest, else the files), the split, the image size and this module's
format version; so a retrained encoder, changed data or other
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

FORMAT_VERSION = 2  # 2: the images' ids stored with their codes


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
            limit: int | None = None) -> str:
        parts = [sha256_file(Path(encoder_file)), data_fingerprint(data, split), split,
                 str(image_size), str(limit), str(FORMAT_VERSION)]
        return hashlib.sha256("|".join(parts).encode()).hexdigest()[:24]

    def features(self, encoder_file, data, split: str, image_size: int,
                 limit: int | None = None, batch_size: int = 64,
                 with_ids: bool = False) -> np.ndarray | tuple[np.ndarray, np.ndarray]:
        """(N, h, w, 8) float32 codes of the split's first ``limit`` images
        (all when ``None``), in record order; with ``with_ids`` also their
        (N,) ids (``building/point/view``), stored beside the codes."""
        path = self.root / f"{self.key(encoder_file, data, split, image_size, limit)}.npz"
        if path.exists():
            with np.load(path, allow_pickle=False) as z:
                codes, ids = z["codes"].astype(np.float32), z["ids"].astype(str)
            return (codes, ids) if with_ids else codes
        codes, ids = encode(encoder_file, data, split, image_size, limit, batch_size)
        # float16 halves the disk (codes are ReLU outputs of a few units);
        # float32 when a code would overflow it
        stored = codes.astype(np.float16 if np.abs(codes).max() < 6e4 else np.float32)
        with atomic_path(path) as tmp:
            np.savez(tmp, codes=stored, ids=ids)
        self.computed += 1
        codes = stored.astype(np.float32)
        return (codes, ids) if with_ids else codes


def encode(encoder_file, data, split: str, image_size: int, limit: int | None = None,
           batch_size: int = 64) -> tuple[np.ndarray, np.ndarray]:
    """Runs a saved encoder (safe mode, inference) over a split's first
    ``limit`` images: (codes (N, h, w, 8) float32, ids (N,) str)."""
    import keras

    from taskonomy_tf.data import make_dataset

    encoder = keras.saving.load_model(encoder_file, safe_mode=True, compile=False)
    images = make_dataset(data, "autoencoding", split=split, batch_size=batch_size,
                          image_size=image_size, shuffle=False, augment=False, with_ids=True)
    if limit:
        images = images.unbatch().take(limit).batch(batch_size)
    import tensorflow as tf

    # one traced graph for every batch (eager calls cost ~2x on CPU), and one
    # pass over the images: codes and ids come from the same batches
    run = tf.function(lambda x: encoder(x, training=False), reduce_retracing=True)
    codes, ids = [], []
    for x, _, _, ident in images:
        codes.append(np.asarray(run(x)))
        ids.append(id_strings(ident))
    return np.concatenate(codes), np.concatenate(ids)
