"""A dataset card (``taskonomy_tf.data.card``) -> sharded TFRecords and a manifest.

    python -m tfrecords_tools.convert --src CARD_FOLDER --out RECORDS [--workers N]

Every CSV row is checked before anything is written; a bad row stops the
conversion with one line naming the file, the line, the column and what was
expected. Then each split's rows (grouped, so that a group's samples sit
together) are written in shards of ``shard_size`` by worker processes,
each shard whole or not at all; a re-run after an interruption writes only
the missing shards, and the manifest holds the normalised card, from which
every command knows the card's tasks.

A record holds the image as an 8-bit RGB PNG (JPEG and other PNG modes are
decoded and re-encoded losslessly), each dense label as an 8-bit class-map
PNG, a 1- or 3-channel 8/16-bit PNG or a float32 tensor (``.npy`` maps),
each class id as an int64 and each vector as floats; ``meta/building``
is the sample's group (its id without a group column), ``meta/point`` its
CSV line and ``meta/id`` its id, so results are keyed ``group/id``.
"""

from __future__ import annotations

import csv
import dataclasses
import hashlib
import io
import json
import math
import os
from pathlib import Path
from typing import Any

import numpy as np

from taskonomy_tf.data import schema
from taskonomy_tf.data.card import SPLITS, Card, Label, domain_spec, load_card
from taskonomy_tf.errors import UserError
from taskonomy_tf.fileio import atomic_path, open_csv, sha256_file, write_json_atomic

DENSE_EXTENSIONS = {".png": "png", ".npy": "tensor"}
IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg")


class CardError(UserError, ValueError):
    """A card or a sample that cannot be converted; the message is one line."""


@dataclasses.dataclass
class Row:
    """One checked CSV row: its line, id, split, group and each label's cell
    (a path for dense labels, an int, a list of floats, or None if empty)."""

    line: int
    id: str
    split: str
    group: str
    image: str
    labels: dict[str, Any]


def _where(csv_path: Path, line: int, column: str) -> str:
    return f"{csv_path.name}: line {line}, column {column}"


def read_rows(card: Card, folder: Path) -> tuple[list[Row], Card]:
    """Every row of the card's CSV, checked; and the card with each dense
    regression label's storage set from its files.

    Raises:
        CardError: the first bad row, naming its line and column.
    """
    path = folder / card.samples
    with open_csv(path, CardError, "the samples file") as f:
        reader = csv.DictReader(f)
        columns = reader.fieldnames or []
        need = ["id", "split", card.image, *([card.group] if card.group else []),
                *(lab.name for lab in card.labels)]
        missing = [c for c in need if c not in columns]
        if missing:
            raise CardError(f"{path.name}: no column {missing[0]!r}; the header has "
                            f"{', '.join(columns) or 'nothing'}")
        rows, seen, group_split = [], {}, {}
        storage: dict[str, tuple[str, int]] = {}
        for line, raw in enumerate(reader, start=2):
            rows.append(_row(card, folder, path, line, raw, seen, group_split, storage))
    if not rows:
        raise CardError(f"{path}: no samples")
    labels = tuple(dataclasses.replace(lab, storage=storage.get(lab.name, ("png", 0))[0])
                   if lab.kind == "dense_regression" else lab for lab in card.labels)
    return rows, dataclasses.replace(card, labels=labels)


def _row(card, folder, path, line, raw, seen, group_split, storage) -> Row:
    def cell(column):
        return (raw.get(column) or "").strip()

    ident = cell("id")
    if not ident or "/" in ident or "+" in ident:
        raise CardError(f"{_where(path, line, 'id')}: {ident!r}; an id is non-empty, without "
                        "'/' or '+'")
    if ident in seen:
        raise CardError(f"{_where(path, line, 'id')}: {ident!r} repeats line {seen[ident]}")
    seen[ident] = line
    split = cell("split")
    if split not in SPLITS:
        raise CardError(f"{_where(path, line, 'split')}: {split!r}; expected one of "
                        f"{', '.join(SPLITS)}")
    group = cell(card.group) if card.group else ident
    if not group or "/" in group or "+" in group:
        raise CardError(f"{_where(path, line, card.group)}: {group!r}; a group is non-empty, "
                        "without '/' or '+'")
    first = group_split.setdefault(group, (split, line))
    if first[0] != split:
        raise CardError(f"{_where(path, line, card.group)}: group {group!r} is in split "
                        f"{split!r} here and {first[0]!r} on line {first[1]}; a group stays in "
                        "one split")
    image = _file(folder, cell(card.image), path, line, card.image, IMAGE_EXTENSIONS)
    if image is None:
        raise CardError(f"{_where(path, line, card.image)}: empty; every sample has an image")
    labels = {lab.name: _label_cell(lab, cell(lab.name), folder, path, line, storage)
              for lab in card.labels}
    return Row(line, ident, split, group, image, labels)


def _file(folder, text, path, line, column, extensions) -> str | None:
    if not text:
        return None
    f = folder / text
    if f.suffix.lower() not in extensions:
        raise CardError(f"{_where(path, line, column)}: {text}: expected a "
                        f"{' or '.join(e.lstrip('.') for e in extensions)} file")
    if not f.is_file():
        raise CardError(f"{_where(path, line, column)}: {text}: no such file")
    return str(f)


def _label_cell(lab: Label, text: str, folder, path, line, storage):
    where = _where(path, line, lab.name)
    if not text:
        return None  # no label for this sample: weight 0
    if lab.kind == "dense_classes":
        return _file(folder, text, path, line, lab.name, (".png",))
    if lab.kind == "dense_regression":
        f = _file(folder, text, path, line, lab.name, tuple(DENSE_EXTENSIONS))
        kind = DENSE_EXTENSIONS[Path(f).suffix.lower()]
        first = storage.setdefault(lab.name, (kind, line))
        if first[0] != kind:
            raise CardError(f"{where}: {text}: a {Path(f).suffix} file where line {first[1]} "
                            "had another kind; one column keeps one file type")
        return f
    if lab.kind == "classes":
        try:
            value = int(text)
        except ValueError:
            raise CardError(f"{where}: {text!r} is not an integer class id") from None
        if not 0 <= value < lab.classes:
            raise CardError(f"{where}: class {value} is outside 0 to {lab.classes - 1} "
                            f"(classes: {lab.classes})")
        return value
    try:
        values = [float(v) for v in text.split()]
    except ValueError:
        raise CardError(f"{where}: {text!r}: expected {lab.length} numbers separated by "
                        "spaces") from None
    if len(values) != lab.length or not all(math.isfinite(v) for v in values):
        raise CardError(f"{where}: {len(values)} value(s) {text!r}; expected {lab.length} "
                        "finite numbers separated by spaces")
    return values


# ------------------------------------------------------------------ writing
def _png_bytes(arr: np.ndarray) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="PNG")
    return buf.getvalue()


def _open(path: str, where: str):
    from PIL import Image

    try:
        img = Image.open(path)
        img.load()
        return img
    except Exception as exc:  # PIL raises many types for corrupt data
        raise CardError(f"{where}: {Path(path).name} does not decode "
                        f"({type(exc).__name__})") from None


def _image(path: str, where: str) -> tuple[bytes, tuple[int, int]]:
    """The image as 8-bit RGB PNG bytes (the file itself when it is one)."""
    img = _open(path, where)
    size = (img.height, img.width)
    if img.format == "PNG" and img.mode == "RGB":
        return Path(path).read_bytes(), size
    return _png_bytes(np.asarray(img.convert("RGB"))), size


def _dense(lab: Label, path: str, size: tuple[int, int], where: str) -> bytes:
    """A dense label's stored bytes, checked against the card and the image."""
    if Path(path).suffix.lower() == ".npy":
        try:
            arr = np.load(path, allow_pickle=False)
        except Exception as exc:
            raise CardError(f"{where}: {Path(path).name} is not a .npy array "
                            f"({type(exc).__name__})") from None
        arr = arr[..., None] if arr.ndim == 2 else arr
        if arr.ndim != 3 or arr.shape[-1] != lab.channels or arr.shape[:2] != size:
            raise CardError(f"{where}: {Path(path).name} has shape {arr.shape}; expected "
                            f"{size[0]} x {size[1]} (the image) x {lab.channels}")
        if not np.all(np.isfinite(arr)):
            raise CardError(f"{where}: {Path(path).name} holds non-finite values")
        import tensorflow as tf

        return tf.io.serialize_tensor(tf.constant(arr.astype(np.float32))).numpy()
    img = _open(path, where)
    arr = np.asarray(img)
    if (img.height, img.width) != size:
        raise CardError(f"{where}: {Path(path).name} is {img.height} x {img.width}; the image "
                        f"is {size[0]} x {size[1]}")
    if lab.kind == "dense_classes":
        if img.mode not in ("L", "P") or arr.ndim != 2:
            raise CardError(f"{where}: {Path(path).name} is a {img.mode} PNG; a class map is "
                            "one 8-bit channel of class ids")
        bad = (arr >= lab.classes) & (arr != (lab.ignore if lab.ignore is not None else -1))
        if bad.any():
            raise CardError(f"{where}: {Path(path).name} holds class {int(arr[bad].max())}; "
                            f"classes are 0 to {lab.classes - 1}"
                            + (f" (and {lab.ignore}: no label)" if lab.ignore is not None
                               else ""))
        return Path(path).read_bytes() if img.mode == "L" else _png_bytes(arr.astype(np.uint8))
    modes = {1: ("L", "I;16", "I;16B", "I"), 3: ("RGB",)}[lab.channels]
    if img.mode not in modes:
        raise CardError(f"{where}: {Path(path).name} is a {img.mode} PNG; expected "
                        f"{'an 8- or 16-bit grey' if lab.channels == 1 else 'an 8-bit RGB'} "
                        "PNG")
    if img.mode == "I":  # PIL's 32-bit view of a 16-bit file
        if arr.max() > 65535 or arr.min() < 0:
            raise CardError(f"{where}: {Path(path).name} holds values beyond 16 bits")
        return _png_bytes(arr.astype(np.uint16))
    return Path(path).read_bytes()


def build_example(row: Row, card: Card, csv_name: str):
    """One sample's ``tf.train.Example``."""
    import tensorflow as tf

    def where(column):
        return f"{csv_name}: line {row.line}, column {column}"

    image, size = _image(row.image, where(card.image))
    feats = {schema.DOMAINS["rgb"].encoded_key: _bytes([image])}
    present = ["rgb"]
    for lab in card.labels:
        value = row.labels[lab.name]
        if value is None:
            continue
        spec = domain_spec(lab)
        if lab.rule.dense:
            feats[spec.encoded_key] = _bytes([_dense(lab, value, size, where(lab.name))])
        elif lab.kind == "classes":
            feats[spec.values_key] = tf.train.Feature(int64_list=tf.train.Int64List(
                value=[int(value)]))
        else:
            feats[spec.values_key] = tf.train.Feature(float_list=tf.train.FloatList(
                value=[float(v) for v in value]))
        present.append(lab.name)
    feats[schema.META_BUILDING] = _bytes([row.group.encode()])
    feats[schema.META_POINT] = _ints([row.line])
    feats[schema.META_VIEW] = _ints([0])
    feats[schema.META_ID] = _bytes([row.id.encode()])
    feats[schema.META_HEIGHT] = _ints([size[0]])
    feats[schema.META_WIDTH] = _ints([size[1]])
    feats[schema.META_DOMAINS] = _bytes([d.encode() for d in present])
    return tf.train.Example(features=tf.train.Features(feature=feats)), present


def _bytes(values):
    import tensorflow as tf

    return tf.train.Feature(bytes_list=tf.train.BytesList(value=values))


def _ints(values):
    import tensorflow as tf

    return tf.train.Feature(int64_list=tf.train.Int64List(value=values))


def write_card_shard(job: dict[str, Any]) -> dict[str, Any]:
    """Writes one shard of card samples; returns its report (as
    ``writer.write_shard``'s). Runs in a worker process."""
    import tensorflow as tf

    from taskonomy_tf.data.view_index import index_entry, write_index

    out = Path(job["out"])
    card = Card.from_dict(job["card"])
    counts: dict[str, int] = {}
    missing, entries = [], []
    with atomic_path(out / job["name"]) as tmp:
        with tf.io.TFRecordWriter(str(tmp)) as writer:
            for raw in job["samples"]:
                row = Row(**raw)
                example, present = build_example(row, card, job["csv"])
                writer.write(example.SerializeToString(deterministic=True))
                for d in present:
                    counts[d] = counts.get(d, 0) + 1
                lacking = sorted(set(job["domains"]) - set(present))
                if lacking:
                    missing.append([f"{row.group}/{row.id}", lacking])
                entries.append(index_entry(row.group, row.line, 0, None))
        index = write_index(out / job["name"], entries)
        report = {"shard": job["name"], "records": len(job["samples"]),
                  "sha256": sha256_file(tmp), "index_sha256": sha256_file(index),
                  "domain_counts": counts, "missing": missing, "rejected": [], "dropped": []}
        write_json_atomic(out / ".convert" / f"{job['name']}.json", report)
    return report


def convert_card(src: str, out: str, shard_size: int = 256, workers: int = 1,
                 progress: bool = True) -> dict[str, Any]:
    """Converts the card in ``src`` into shards of every split under ``out``;
    returns the manifest (its ``card``: the normalised card). Resumable;
    another card or other samples into the same ``out`` are refused.

    Raises:
        CardError / ConvertError: one line naming what is wrong.
    """
    from tfrecords_tools.convert import ConvertError, _progress, _run, write_manifest

    folder = Path(src)
    card = load_card(folder)
    rows, card = read_rows(card, folder)
    outdir = Path(out)
    state = outdir / ".convert"
    state.mkdir(parents=True, exist_ok=True)
    domains = ["rgb", *(lab.name for lab in card.labels)]
    csv_name = Path(card.samples).name
    by_split = {s: sorted((r for r in rows if r.split == s), key=lambda r: (r.group, r.line))
                for s in SPLITS}
    plans, jobs, reports = {}, [], {}
    for split, members in by_split.items():
        if not members:
            continue
        shards = [members[i:i + shard_size] for i in range(0, len(members), shard_size)]
        names = [schema.shard_name(split, i, len(shards)) for i in range(len(shards))]
        args = {"src": str(folder.resolve()), "domains": domains, "split": split,
                "split_csv": None, "resize": None, "shard_size": shard_size,
                "schema_version": schema.SCHEMA_VERSION, "card": card.to_dict()}
        content = [[dataclasses.asdict(r) for r in s] for s in shards]
        plan_id = hashlib.sha256(json.dumps([args, content], sort_keys=True)
                                 .encode()).hexdigest()[:16]
        plan = {"plan_id": plan_id, "args": args, "shards": names, "layouts": ["card"],
                "ignored": [], "buildings": sorted({r.group for r in members})}
        plan_path = state / f"plan-{split}.json"
        if plan_path.exists() and json.loads(plan_path.read_text()).get("plan_id") != plan_id:
            raise ConvertError(f"--out {out} holds a {split!r} conversion of another card or "
                               "other samples; use a new --out or remove it")
        write_json_atomic(plan_path, plan)
        plans[split] = plan
        for name, part in zip(names, content):
            report_path = state / f"{name}.json"
            if (outdir / name).exists() and report_path.exists():
                reports[name] = json.loads(report_path.read_text())
                continue
            jobs.append({"out": str(outdir), "name": name, "samples": part, "card": card.to_dict(),
                         "domains": domains, "csv": csv_name, "kind": "card"})
    done = sum(r["records"] for r in reports.values())
    bar = _progress(len(rows), done, progress)
    try:
        for report in _run(jobs, workers, write_card_shard):
            reports[report["shard"]] = report
            bar.update(report["records"])
    finally:
        bar.close()
    manifest = {}
    for plan in plans.values():
        manifest = write_manifest(outdir, plan, {n: reports[n] for n in plan["shards"]})
    manifest["card"] = card.to_dict()
    write_json_atomic(outdir / schema.MANIFEST_NAME, manifest)
    return manifest


def card_records(src: str | os.PathLike, shard_size: int = 256, workers: int | None = None,
                 progress: bool = True) -> Path:
    """The records of the card in ``src``, converted on first use into the
    cache (``$TASKONOMY_TF_CACHE/cards/<name>-<key>``, the key a hash of the
    folder's path, its card and samples file, and the name, size and
    modification time of every file under it): reused while nothing
    changes, resumed after an interruption."""
    from taskonomy_tf.config import cache_root

    folder = Path(src).resolve()
    card = load_card(folder)
    digest = hashlib.sha256(str(folder).encode())
    for f in (folder / "dataset.json", folder / card.samples):
        digest.update(sha256_file(f).encode() if f.is_file() else b"-")
    for root, dirs, files in os.walk(folder):
        dirs.sort()
        for name in sorted(files):
            st = os.stat(os.path.join(root, name))
            digest.update(f"{os.path.relpath(root, folder)}/{name}:{st.st_size}:"
                          f"{st.st_mtime_ns}\n".encode())
    out = cache_root() / "cards" / f"{_safe(card.name)}-{digest.hexdigest()[:12]}"
    if (out / schema.MANIFEST_NAME).is_file() and "card" in json.loads(
            (out / schema.MANIFEST_NAME).read_text()):
        return out
    convert_card(str(folder), str(out), shard_size, workers or os.cpu_count() or 1, progress)
    return out


def _safe(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_" else "_" for c in name)[:40] or "card"
