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

from taskonomy_tf.data.records import find_shards
from tfrecords_tools.writer import sha256_file

FORMAT_VERSION = 1


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
                 limit: int | None = None, batch_size: int = 64) -> np.ndarray:
        """(N, h, w, 8) float32 codes of the split's first ``limit`` images
        (all when ``None``), in record order."""
        path = self.root / f"{self.key(encoder_file, data, split, image_size, limit)}.npz"
        if path.exists():
            with np.load(path, allow_pickle=False) as z:
                return z["codes"].astype(np.float32)
        codes = encode(encoder_file, data, split, image_size, limit, batch_size)
        self.root.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}.npz")
        # float16 halves the disk (codes are ReLU outputs of a few units);
        # float32 when a code would overflow it
        stored = codes.astype(np.float16 if np.abs(codes).max() < 6e4 else np.float32)
        np.savez(tmp, codes=stored)
        os.replace(tmp, path)
        self.computed += 1
        return stored.astype(np.float32)


def encode(encoder_file, data, split: str, image_size: int, limit: int | None = None,
           batch_size: int = 64) -> np.ndarray:
    """Runs a saved encoder (safe mode, inference) over a split's first ``limit`` images."""
    import keras

    from taskonomy_tf.data import make_dataset

    encoder = keras.saving.load_model(encoder_file, safe_mode=True, compile=False)
    images = make_dataset(data, "autoencoding", split=split, batch_size=batch_size,
                          image_size=image_size, shuffle=False, augment=False)
    if limit:
        images = images.unbatch().take(limit).batch(batch_size)
    # predict runs the encoder as one traced graph (eager calls cost ~2x on CPU)
    return np.asarray(encoder.predict(images.map(lambda x, y, w: x), verbose=0))
