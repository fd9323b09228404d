"""Gathers the parts of a conversion run on several machines into one folder.

    python -m tfrecords_tools.convert --merge PART_DIR [PART_DIR ...] --out DIR

Each part folder holds what ``convert --shard I/N`` wrote there: some of the
shards, their reports and the plan (``.convert/``). The parts must come from
one conversion (the same plan id for a split), and together hold every shard
of its plan exactly once; otherwise nothing is moved and the error names the
shard. The shards, their view indexes and reports are moved (renamed, or copied then removed
across file systems) into ``--out``, each checked against its report's
SHA-256, and the manifest is written as one machine would have written it.
A merge that was interrupted is finished by running it again: a shard (or
index) that an earlier run already moved is found in ``--out`` and checked
there.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

from taskonomy_tf.data.view_index import index_path
from taskonomy_tf.fileio import atomic_path, sha256_file, write_json_atomic
from tfrecords_tools.convert import ConvertError, write_manifest


def _parts(folder: Path) -> list[dict]:
    state = folder / ".convert"
    parts = [json.loads(p.read_text()) for p in sorted(state.glob("part-*.json"))]
    if not parts:
        raise ConvertError(f"--merge {folder}: no part written by convert --shard I/N there")
    return parts


def merge_parts(folders: list[str], out: str) -> dict[str, Any]:
    """Moves the parts in ``folders`` into ``out``; returns the manifest.

    Raises:
        ConvertError: parts of different conversions, a shard in two parts, a
            shard no part holds, or a shard whose bytes differ from its report.
    """
    outdir = Path(out)
    plans: dict[str, dict] = {}
    owner: dict[tuple[str, str], Path] = {}
    for folder in map(Path, folders):
        for part in _parts(folder):
            split = part["split"]
            plan = json.loads((folder / ".convert" / f"plan-{split}.json").read_text())
            if plan["plan_id"] != part["plan_id"]:
                raise ConvertError(f"--merge {folder}: its part and plan of {split!r} disagree")
            if split in plans and plans[split]["plan_id"] != plan["plan_id"]:
                raise ConvertError(f"--merge {folder}: a {split!r} part of another conversion "
                                   "(other arguments or source files)")
            plans[split] = plan
            for name in part["shards"]:
                if (split, name) in owner and owner[split, name] != folder:
                    raise ConvertError(f"--merge: shard {name} is in {owner[split, name]} and "
                                       f"in {folder}; each shard must come from one part")
                owner[split, name] = folder
    for split, plan in plans.items():
        missing = [n for n in plan["shards"] if (split, n) not in owner]
        if missing:
            raise ConvertError(f"--merge: no part holds shard {missing[0]} of {split!r} "
                               f"({len(missing)} missing); run the missing --shard parts")
    reports: dict[str, dict[str, dict]] = {s: {} for s in plans}
    for (split, name), folder in owner.items():
        report = json.loads((folder / ".convert" / f"{name}.json").read_text())
        shard = _located(folder / name, outdir / name)
        if sha256_file(shard) != report["sha256"]:
            raise ConvertError(f"{shard}: checksum differs from its report")
        if "index_sha256" in report:
            index = _located(index_path(folder / name), index_path(outdir / name))
            if sha256_file(index) != report["index_sha256"]:
                raise ConvertError(f"{index}: checksum differs from its shard's report")
        reports[split][name] = report
    (outdir / ".convert").mkdir(parents=True, exist_ok=True)
    for (split, name), folder in sorted(owner.items()):
        _move(folder / name, outdir / name)
        # after the shard: an index is never older
        _move(index_path(folder / name), index_path(outdir / name))
        write_json_atomic(outdir / ".convert" / f"{name}.json", reports[split][name])
    manifest: dict[str, Any] = {}
    for split, plan in sorted(plans.items()):
        write_json_atomic(outdir / ".convert" / f"plan-{split}.json", plan)
        manifest = write_manifest(outdir, plan, reports[split])
    return manifest


def _located(src: Path, dst: Path) -> Path:
    """Where a part's file is now: in its part, or already in ``--out``
    (moved by an interrupted merge)."""
    if src.exists() or not dst.exists():
        return src
    return dst


def _move(src: Path, dst: Path) -> None:
    """Moves ``src`` to ``dst`` (nothing to do once it is there)."""
    if not src.exists() or src.resolve() == dst.resolve():
        return
    try:
        src.replace(dst)
    except OSError:  # another file system: copy whole, then remove
        with atomic_path(dst) as tmp:
            shutil.copyfile(src, tmp)
        src.unlink()
