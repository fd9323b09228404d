"""The view index of a shard: what the view-tuple tasks need, without the images.

The converter writes, beside each shard ``<name>.tfrecord``, the file
``<name>.tfrecord.views.json``: for every record of the shard, in record
order, its ``building``, ``point``, ``view`` and the fields of its
point_info that the view-tuple rules read (``INDEX_FIELDS``; ``null`` for a
record without point_info). It is a few hundred bytes per view where the
record is the view's images, so building the tuples of a split reads the
indexes only, one shard at a time (``views.view_tuples``).

Shards converted before the index existed have no such file: ``read_index``
then parses the shard's records (slower, same result).
"""

from __future__ import annotations

import functools
import json
import os
from pathlib import Path

from taskonomy_tf.data import schema
from taskonomy_tf.fileio import write_text_atomic

INDEX_FORMAT = 1
INDEX_SUFFIX = ".views.json"
# The point_info fields the view-tuple rules read (Taskonomy's point_info
# JSON; reference section 2): the camera pose, the other points a view sees,
# and the room's bounding box for the layout target.
INDEX_FIELDS = ("camera_location", "camera_rotation_final", "nonfixated_points_in_view",
                "bounding_box_ranges")


def index_path(shard: str | Path) -> Path:
    """``<shard>.views.json``, beside the shard."""
    return Path(f"{shard}{INDEX_SUFFIX}")


def index_entry(building: str, point: int, view: int, point_info: bytes | str | None) -> dict:
    """One record's entry: ids and the ``INDEX_FIELDS`` of its point_info JSON."""
    info = json.loads(point_info) if point_info else None
    if info is not None:
        info = {k: info[k] for k in INDEX_FIELDS if k in info}
    return {"building": building, "point": int(point), "view": int(view), "info": info}


def write_index(shard: str | Path, entries: list[dict]) -> Path:
    """Writes the index of ``shard`` atomically; returns its path."""
    path = index_path(shard)
    data = {"format": INDEX_FORMAT, "records": len(entries), "views": entries}
    write_text_atomic(path, json.dumps(data, sort_keys=True, separators=(",", ":")) + "\n")
    return path


def read_index(file: str | Path) -> list[dict]:
    """Per record of one shard, in record order: ``index_entry`` dicts.

    From the shard's ``.views.json`` when it is there and not older than the
    shard, else from the shard's records. Cached per (path, size,
    modification time) for a few shards: a split's label statistics and its
    tuples read the same shards.
    """
    st = os.stat(file)
    side = index_path(file)
    try:
        side_st = side.stat()
        fresh = side_st.st_mtime_ns >= st.st_mtime_ns
    except FileNotFoundError:
        fresh = False
    if fresh:
        return _read_sidecar(str(side), side_st.st_size, side_st.st_mtime_ns)
    return _read_records(str(file), st.st_size, st.st_mtime_ns)


@functools.lru_cache(maxsize=16)
def _read_sidecar(path: str, size: int, mtime_ns: int) -> list[dict]:
    data = json.loads(Path(path).read_text())
    if data.get("format") != INDEX_FORMAT or len(data["views"]) != data["records"]:
        raise ValueError(f"{path}: not a view index of format {INDEX_FORMAT}")
    return data["views"]


@functools.lru_cache(maxsize=16)
def _read_records(file: str, size: int, mtime_ns: int) -> list[dict]:
    import tensorflow as tf

    spec = {
        schema.META_BUILDING: tf.io.FixedLenFeature([], tf.string),
        schema.META_POINT: tf.io.FixedLenFeature([], tf.int64),
        schema.META_VIEW: tf.io.FixedLenFeature([], tf.int64),
        schema.POINT_INFO_KEY: tf.io.FixedLenFeature([], tf.string, default_value=""),
    }
    ds = tf.data.TFRecordDataset(file).map(lambda r: tf.io.parse_single_example(r, spec))
    return [index_entry(rec[schema.META_BUILDING].decode(), rec[schema.META_POINT],
                        rec[schema.META_VIEW], rec[schema.POINT_INFO_KEY])
            for rec in ds.as_numpy_iterator()]
