"""Builds one ``tf.train.Example`` per view and writes whole shards atomically.

A shard is written to ``.<name>.tmp-<host>-<pid>`` and renamed when complete, after
its view index (``<name>.views.json``, ``taskonomy_tf.data.view_index``) and
its report (``.convert/<name>.json``) are in place: a shard file under its
final name is always whole and has its index.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from taskonomy_tf.data import schema
from taskonomy_tf.data.view_index import index_entry, write_index
from taskonomy_tf.errors import UserError
from taskonomy_tf.fileio import atomic_path, sha256_file, write_json_atomic
from tfrecords_tools.checks import BadFile, check_json, check_npy, check_png


class StrictError(UserError, RuntimeError):
    """A bad file under ``--strict``; the message is one line."""


def _bytes(values: list[bytes]):
    import tensorflow as tf

    return tf.train.Feature(bytes_list=tf.train.BytesList(value=values))


def _ints(values: list[int]):
    import tensorflow as tf

    return tf.train.Feature(int64_list=tf.train.Int64List(value=values))


def _floats(values: list[float]):
    import tensorflow as tf

    return tf.train.Feature(float_list=tf.train.FloatList(value=values))


def build_example(key: tuple[str, int, int], files: dict[str, str], resize: int | None,
                  rejected: list[list[str]], strict: bool):
    """Checks a view's files and returns ``(example or None, reason if dropped)``."""
    import tensorflow as tf

    building, point, view = key
    features: dict[str, Any] = {}
    size = None
    present: list[str] = []
    # rgb first: every other image must match its size
    for domain in sorted(files, key=lambda d: (d != "rgb", d)):
        spec = schema.DOMAINS[domain]
        path = files[domain]
        try:
            data = Path(path).read_bytes()
            if spec.storage == "png":
                stored, hw = check_png(data, spec, size, resize)
                if domain == "rgb":
                    size = hw
                    out_hw = (resize, resize) if resize else hw
                features[spec.encoded_key] = _bytes([stored])
            elif spec.storage == "npy":
                features[spec.values_key] = _floats(check_npy(data, spec))
            else:
                features[spec.encoded_key] = _bytes([check_json(data)])
        except (BadFile, OSError) as exc:
            if strict:
                raise StrictError(f"{path}: {exc}") from None
            rejected.append([str(path), str(exc)])
            if domain == "rgb":
                return None, "rgb rejected"
            continue
        present.append(domain)
    if "rgb" not in present:
        return None, "no rgb"
    features[schema.META_BUILDING] = _bytes([building.encode()])
    features[schema.META_POINT] = _ints([point])
    features[schema.META_VIEW] = _ints([view])
    features[schema.META_HEIGHT] = _ints([out_hw[0]])
    features[schema.META_WIDTH] = _ints([out_hw[1]])
    features[schema.META_DOMAINS] = _bytes([d.encode() for d in present])
    example = tf.train.Example(features=tf.train.Features(feature=features))
    return example, None


def write_shard(job: dict[str, Any]) -> dict[str, Any]:
    """Writes one shard; returns its report. Runs in a worker process.

    ``job`` holds ``out``, ``name``, ``samples`` ([key, {domain: path}]),
    ``domains`` (the requested set), ``resize`` and ``strict``.
    """
    import tensorflow as tf

    out = Path(job["out"])
    rejected: list[list[str]] = []
    dropped: list[list[str]] = []
    missing: list[list[Any]] = []
    counts: dict[str, int] = {}
    records = 0
    entries: list[dict] = []  # the shard's view index
    with atomic_path(out / job["name"]) as tmp:  # the shard appears whole or not at all
        with tf.io.TFRecordWriter(str(tmp)) as writer:
            for key, files in job["samples"]:
                key = tuple(key)
                example, why = build_example(key, files, job["resize"], rejected, job["strict"])
                sample_id = "/".join(map(str, key))
                if example is None:
                    dropped.append([sample_id, why])
                    continue
                held = [d.decode() for d in
                        example.features.feature[schema.META_DOMAINS].bytes_list.value]
                for d in held:
                    counts[d] = counts.get(d, 0) + 1
                lacking = sorted(set(job["domains"]) - set(held))
                if lacking:
                    missing.append([sample_id, lacking])
                writer.write(example.SerializeToString(deterministic=True))
                records += 1
                feats = example.features.feature
                info = (feats[schema.POINT_INFO_KEY].bytes_list.value[0]
                        if schema.POINT_INFO_KEY in feats else None)
                entries.append(index_entry(*key, info))
        index = write_index(out / job["name"], entries)
        report = {
            "shard": job["name"], "records": records, "sha256": sha256_file(tmp),
            "index_sha256": sha256_file(index),
            "domain_counts": counts, "missing": missing, "rejected": rejected,
            "dropped": dropped,
        }
        write_json_atomic(out / ".convert" / f"{job['name']}.json", report)
    return report
