"""Reading shards: file discovery, the manifest, and record parsing.

Stage 1 of the pipeline (``docs/data.md``): raw ``tf.train.Example`` ->
decoded physical values at the requested image size.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import tensorflow as tf

from taskonomy_tf.data import schema
from taskonomy_tf.data.decode import (
    card_scaled,
    decode_png_tensor,
    physical_from_pixels,
    physical_from_vector,
)


def find_shards(path: str | Path, split: str | None) -> list[str]:
    """Shard files of ``split`` in a folder (every shard for ``None``), or one file.

    Raises:
        FileNotFoundError: nothing matches, with what the folder does hold.
    """
    path = Path(path)
    if path.is_file():
        return [str(path)]
    if not path.is_dir():
        raise FileNotFoundError(f"{path}: no such folder of TFRecord shards")
    shards = sorted(p for p in path.iterdir() if schema.parse_shard_name(p.name))
    picked = [str(p) for p in shards
              if split is None or schema.parse_shard_name(p.name)[0] == split]
    if not picked:
        splits = sorted({schema.parse_shard_name(p.name)[0] for p in shards})
        raise FileNotFoundError(
            f"{path}: no shards for split {split!r}; splits present: {splits or 'none'}"
        )
    return picked


def manifest_records(folder, split: str) -> int | None:
    """Records of ``split`` by the folder's ``manifest.json`` (``None``: no
    folder, no manifest, or no such split in it)."""
    manifest = Path(folder) / schema.MANIFEST_NAME if folder else None
    if manifest is None or not manifest.is_file():
        return None
    part = json.loads(manifest.read_text()).get("splits", {}).get(split) or {}
    return int(part["records"]) if "records" in part else None


def domains_in(files: list[str]) -> list[str]:
    """Domains the records hold: from ``manifest.json`` if there is one,
    else from the first record of every shard."""
    folder = Path(files[0]).parent
    manifest = folder / schema.MANIFEST_NAME
    if manifest.exists():
        m = json.loads(manifest.read_text())
        names = {Path(f).name for f in files}
        held = set()
        for part in m.get("splits", {}).values():
            if names & {s["name"] for s in part["shards"]}:
                held |= set(part["domain_counts"])
        if held:
            return sorted(held)
    held = set()
    for f in files:
        for raw in tf.data.TFRecordDataset(f).take(1):
            ex = tf.train.Example.FromString(raw.numpy())
            held |= {d.decode() for d in ex.features.feature[schema.META_DOMAINS].bytes_list.value}
    return sorted(held)


def feature_spec(domains: list[str]) -> dict[str, tf.io.FixedLenFeature]:
    spec = {
        schema.META_BUILDING: tf.io.FixedLenFeature([], tf.string),
        schema.META_POINT: tf.io.FixedLenFeature([], tf.int64),
        schema.META_VIEW: tf.io.FixedLenFeature([], tf.int64),
    }
    spec[schema.META_ID] = tf.io.FixedLenFeature([], tf.string, default_value="")
    for d in domains:
        ds = schema.DOMAINS[d]
        if ds.storage in ("npy", "floats"):
            missing = 0.0 if ds.storage == "npy" else float("nan")
            spec[ds.values_key] = tf.io.FixedLenFeature([ds.length], tf.float32,
                                                        default_value=[missing] * ds.length)
        elif ds.storage == "int":
            spec[ds.values_key] = tf.io.FixedLenFeature([1], tf.int64, default_value=[-1])
        else:
            spec[ds.encoded_key] = tf.io.FixedLenFeature([], tf.string, default_value="")
    return spec


def example_id(parsed: dict) -> tf.Tensor:
    """A parsed record's id (scalar string): ``building/point/view``, or a
    dataset card's ``group/id``; unique within a dataset, the key every
    per-image result is joined on, its first part the group the bootstrap
    resamples."""
    view = tf.strings.join([parsed[schema.META_BUILDING],
                            tf.strings.as_string(parsed[schema.META_POINT]),
                            tf.strings.as_string(parsed[schema.META_VIEW])], "/")
    card = tf.strings.join([parsed[schema.META_BUILDING], parsed[schema.META_ID]], "/")
    return tf.where(tf.strings.length(parsed[schema.META_ID]) > 0, card, view)


def id_strings(ids) -> np.ndarray:
    """A batch of ``example_id`` tensors (bytes) -> (B,) numpy str."""
    return np.asarray(ids).astype(bytes).astype(str)


def _resize(x: tf.Tensor, size: int, nearest: bool, antialias: bool = False) -> tf.Tensor:
    """Nearest for labels; bilinear otherwise, as the original's skimage
    order-1 resize (load_ops.py; no anti-aliasing in the skimage of 2017).
    The RGB input alone is anti-aliased, for a clean input at any scale."""
    x = x if nearest else tf.cast(x, tf.float32)
    same = tf.reduce_all(tf.equal(tf.shape(x)[:2], size))

    def resized():
        if nearest:
            return tf.image.resize(x, [size, size], method="nearest")
        shrink = tf.shape(x)[0] > size
        if antialias:  # a box filter when shrinking: anti-aliased and cheap
            return tf.cond(shrink, lambda: tf.image.resize(x, [size, size], method="area"),
                           lambda: tf.image.resize(x, [size, size]))
        return tf.image.resize(x, [size, size])

    return tf.cond(same, lambda: tf.cast(x, tf.float32) if not nearest else x, resized)


def decode_domain(parsed: dict, domain: str, size: int) -> tuple[tf.Tensor, tf.Tensor]:
    """One domain of a parsed record -> ``(values, valid)`` at ``size`` x ``size``.

    A domain missing from the record gives zeros and ``valid`` all False
    (the original loaders' "missing label -> zero mask", load_ops.py).
    Images: values (S, S, C), valid (S, S) bool; class vectors: (K,), scalar.
    """
    spec = schema.DOMAINS[domain]
    if spec.storage == "npy":
        values = parsed[spec.values_key]
        present = tf.reduce_any(tf.not_equal(values, 0.0))
        return physical_from_vector(domain, values), present
    if spec.storage == "floats":  # a card's vector: NaN entries when absent
        values = parsed[spec.values_key]
        present = tf.reduce_all(tf.math.is_finite(values))
        return tf.where(present, values, tf.zeros_like(values)), present
    if spec.storage == "int":  # a card's class id: -1 when absent
        values = tf.cast(parsed[spec.values_key], tf.int32)
        return tf.maximum(values, 0), values[0] >= 0
    data = parsed[spec.encoded_key]
    channels = spec.decoded_channels
    nearest = spec.labels
    out_dtype = tf.int32 if spec.labels else tf.float32

    def decoded():
        if spec.storage == "tensor":  # a card's .npy map: float32 in its own units
            raw = tf.io.parse_tensor(data, tf.float32)
            raw = tf.ensure_shape(tf.reshape(raw, [tf.shape(raw)[0], tf.shape(raw)[1], -1]),
                                  [None, None, channels])
            values, valid = card_scaled(raw, dataclasses.replace(spec, scale=None), raw)
        else:
            values, valid = physical_from_pixels(domain, decode_png_tensor(data, spec))
        values = _resize(tf.cast(values, out_dtype), size, nearest, antialias=spec.antialias)
        if not spec.invalid_code:
            valid = tf.ones([size, size], tf.bool)
        elif nearest:
            valid = _resize(tf.cast(valid, tf.uint8)[..., None], size, True)[..., 0] > 0
        else:  # bilinear mask, then binarise below 0.99 (load_ops.py)
            valid = _resize(tf.cast(valid, tf.float32)[..., None], size, False)[..., 0] >= 0.99
        return tf.cast(values, out_dtype), valid

    def missing():
        return tf.zeros([size, size, channels], out_dtype), tf.zeros([size, size], tf.bool)

    values, valid = tf.cond(tf.strings.length(data) > 0, decoded, missing)
    return tf.ensure_shape(values, [size, size, channels]), tf.ensure_shape(valid, [size, size])
