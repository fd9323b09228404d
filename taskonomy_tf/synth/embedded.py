"""The embedded default dataset: generated and converted once, then reused.

``embedded_dataset()`` returns a folder of TFRecord shards split into
train/val/test by building (68/16/16 of 100 buildings of 3 rooms by
default, 10 fixation points each seen by 3 cameras: the transfer and test
splits hold 48 rooms each, not a few). It is built in the user's
cache folder (``$TASKONOMY_TF_CACHE``, else ``~/.cache/taskonomy_tf``) under
a name derived from its settings and the generator's version. A folder
is used only when its ``READY.json`` stamp names every shard with its size
and SHA-256 and they all match. An interrupted build resumes (the points
and shards written whole are kept); a stamped folder whose shards no
longer match is rebuilt. It may be called from any script, with or without
a main guard (``taskonomy_tf.procs``).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import shutil
from pathlib import Path

from taskonomy_tf.config import cache_root
from taskonomy_tf.fileio import sha256_file, write_json_atomic, write_text_atomic
from taskonomy_tf.synth.generate import GENERATOR_VERSION, SynthConfig, generate

READY = "READY.json"
DEFAULT = SynthConfig(buildings=100, points=10, views=3, size=96, seed=0)


def is_ready(folder: Path) -> bool:
    """Whether ``folder`` holds a complete, uncorrupted build."""
    stamp = folder / READY
    try:
        shards = json.loads(stamp.read_text())["shards"]
        return all((folder / s["name"]).stat().st_size == s["bytes"]
                   and sha256_file(folder / s["name"]) == s["sha256"] for s in shards)
    except (OSError, ValueError, KeyError, TypeError):
        return False


def splits_for(buildings: list[str]) -> dict[str, str]:
    """building -> split: the last sixth test, the sixth before it val (at
    least one each from 3 buildings on), the rest train."""
    out = {b: "train" for b in buildings}
    if len(buildings) >= 3:
        k = max(1, len(buildings) // 6)
        for b in buildings[-k:]:
            out[b] = "test"
        for b in buildings[-2 * k:-k]:
            out[b] = "val"
    return out


def embedded_dataset(cfg: SynthConfig = DEFAULT, cache: str | os.PathLike | None = None,
                     workers: int | None = None, progress: bool = True) -> Path:
    """Path of the ready TFRecord folder for ``cfg`` (building it if needed)."""
    from tfrecords_tools.convert import convert

    settings = {**dataclasses.asdict(cfg), "generator": GENERATOR_VERSION}
    key = hashlib.sha256(json.dumps(settings, sort_keys=True).encode()).hexdigest()[:10]
    root = Path(cache) if cache is not None else cache_root()
    folder = root / f"synth-{cfg.size}px-{key}"
    records = folder / "records"
    if is_ready(records):
        return records
    if (records / READY).exists():
        shutil.rmtree(folder)  # finished once, corrupted since: rebuilt whole
    # otherwise an interrupted build resumes: whole points and finished shards are kept
    raw = folder / "raw"
    generate(raw, cfg, workers=workers or os.cpu_count() or 1, progress=progress)
    buildings = sorted(p.name for p in raw.iterdir() if p.is_dir())
    csv = folder / "splits.csv"
    split_of = splits_for(buildings)
    write_text_atomic(csv, "id,train,val,test\n" + "".join(
        f"{b},{int(split_of[b] == 'train')},{int(split_of[b] == 'val')},"
        f"{int(split_of[b] == 'test')}\n" for b in buildings))
    for split in sorted(set(split_of.values())):
        convert(str(raw), str(records), split_csv=str(csv), split=split, shard_size=256,
                progress=progress)
    shards = sorted(p for p in records.glob("*.tfrecord"))
    stamp = {"config": dataclasses.asdict(cfg), "shards": [
        {"name": p.name, "bytes": p.stat().st_size, "sha256": sha256_file(p)} for p in shards]}
    write_json_atomic(records / READY, stamp, sort_keys=False)
    shutil.rmtree(raw)  # the records hold everything
    return records
