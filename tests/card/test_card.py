"""Dataset cards: every label kind round-trips, and every bad input is one line."""

from __future__ import annotations

import csv
import io
import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from taskonomy_tf.data.card import Card, load_card, use_records
from taskonomy_tf.errors import InputError
from tfrecords_tools.card import CardError, convert_card

SIZE = 12
LABELS = {
    "seg": {"kind": "dense_classes", "classes": 3, "ignore": 255, "cluster": "shapes"},
    "height": {"kind": "dense_regression", "range": [0, 10], "cluster": "shapes"},
    "flow": {"kind": "dense_regression", "range": [-2, 2], "channels": 3, "mask": "nonzero"},
    "count": {"kind": "classes", "classes": 4},
    "where": {"kind": "vector", "length": 2, "title": "Where it is"},
}


def _png(path: Path, arr: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(arr).save(path)


def make_card(root: Path, rows: int = 12, seed: int = 0) -> dict:
    """A card of ``rows`` samples in groups of 2 over the three splits, with
    every label kind, JPEG and PNG images of another size than 12 x 12 for
    one, and empty cells; returns what was written per id."""
    rng = np.random.default_rng(seed)
    root.mkdir(parents=True, exist_ok=True)
    written, lines = {}, []
    for i in range(rows):
        ident, group = f"x{i}", f"grp{i // 2}"
        split = ("train", "val", "test")[(i // 2) % 3]
        img = rng.integers(0, 256, (SIZE, SIZE, 3), dtype=np.uint8)
        image = f"img/{ident}." + ("jpg" if i % 4 == 1 else "png")
        Image.fromarray(img).save(root / image) if (root / "img").exists() else (
            (root / "img").mkdir(), Image.fromarray(img).save(root / image))
        seg = rng.integers(0, 3, (SIZE, SIZE)).astype(np.uint8)
        seg[0, :3] = 255
        _png(root / f"seg/{ident}.png", seg)
        height = rng.integers(0, 65536, (SIZE, SIZE)).astype(np.uint16)
        _png(root / f"height/{ident}.png", height)
        flow = rng.uniform(-2, 2, (SIZE, SIZE, 3)).astype(np.float32)
        flow[:2] = 0.0  # invalid rows under mask: nonzero
        (root / "flow").mkdir(exist_ok=True)
        np.save(root / f"flow/{ident}.npy", flow)
        count = int(rng.integers(0, 4))
        where = rng.uniform(-1, 1, 2)
        row = {"id": ident, "split": split, "group": group, "image": image,
               "seg": f"seg/{ident}.png", "height": f"height/{ident}.png",
               "flow": f"flow/{ident}.npy", "count": str(count),
               "where": " ".join(f"{v:.6f}" for v in where)}
        if i == 3:  # empty cells: no label for this sample
            row.update(count="", where="", height="")
        lines.append(row)
        written[f"{group}/{ident}"] = {"seg": seg, "height": height, "flow": flow,
                                       "count": count if i != 3 else None,
                                       "where": where if i != 3 else None, "split": split,
                                       "height_missing": i == 3}
    buf = io.StringIO()
    w = csv.DictWriter(buf, list(lines[0]), lineterminator="\n")
    w.writeheader()
    w.writerows(lines)
    (root / "samples.csv").write_text(buf.getvalue())
    (root / "dataset.json").write_text(json.dumps(
        {"name": "toy", "samples": "samples.csv", "image": "image", "group": "group",
         "labels": LABELS}))
    return written


@pytest.fixture(scope="module")
def card_records(tmp_path_factory):
    root = tmp_path_factory.mktemp("card")
    written = make_card(root / "card")
    convert_card(str(root / "card"), str(root / "rec"), shard_size=2, progress=False)
    return root, written


def test_every_label_kind_round_trips(card_records):
    from taskonomy_tf import make_dataset
    from taskonomy_tf.training.evaluate import split_arrays

    root, written = card_records
    rec = root / "rec"
    assert len(list(rec.glob("train-*.tfrecord"))) >= 2  # several shards per split
    assert use_records(rec) == list(LABELS)
    for task in LABELS:
        for split in ("train", "val", "test"):
            ds = make_dataset(rec, task, split=split, batch_size=3, image_size=SIZE,
                              shuffle=False, augment=False, with_ids=True)
            y, w, ids = split_arrays(ds, task)
            assert sorted(ids) == sorted(k for k, v in written.items() if v["split"] == split)
            for yk, wk, ident in zip(y, w, ids):
                want = written[ident]
                if task == "seg":
                    np.testing.assert_array_equal(yk[..., 0], np.where(want["seg"] == 255, 0,
                                                                       want["seg"]))
                    np.testing.assert_array_equal(wk, want["seg"] != 255)
                elif task == "height":
                    if want["height_missing"]:
                        assert not wk.any()
                        continue
                    metres = 10 * want["height"].astype(np.float64) / 65535.0
                    np.testing.assert_allclose(yk[..., 0], metres / 10 * 2 - 1, atol=1e-5,
                                               err_msg=f"{ident} {split}")
                    assert wk.all()
                elif task == "flow":
                    valid = np.any(want["flow"] != 0, -1)
                    np.testing.assert_array_equal(wk, valid)
                    np.testing.assert_allclose(yk[valid], (want["flow"][valid] + 2) / 4 * 2 - 1,
                                               atol=1e-5)
                elif task == "count":
                    if want["count"] is None:
                        assert wk == 0
                    else:
                        np.testing.assert_array_equal(yk, np.eye(4)[want["count"]])
                        assert wk == 1
                else:
                    if want["where"] is None:
                        assert wk == 0 and np.all(np.isfinite(yk))
                    else:
                        np.testing.assert_allclose(yk, want["where"], atol=1e-6)


def test_card_tasks_are_data(card_records):
    from taskonomy_tf.tasks import get_task

    use_records(card_records[0] / "rec")
    seg, where, flow = get_task("seg"), get_task("where"), get_task("flow")
    assert (seg.loss, seg.metric, seg.channels, seg.cluster_name) == (
        "pixel_sparse_ce", "pixel_accuracy", 3, "shapes")
    assert (where.loss, where.output.value, where.title, where.hflip) == (
        "mse", "vector", "Where it is", "never")
    assert (flow.loss, flow.channels, flow.value_range) == ("masked_l1", 3, (-2.0, 2.0))
    assert get_task("count").card == "toy"
    # the manifest's card, not the folder, is what other processes read
    manifest = json.loads((card_records[0] / "rec" / "manifest.json").read_text())
    assert Card.from_dict(manifest["card"]).labels[2].storage == "tensor"


def _broken(tmp_path, edit) -> Path:
    root = tmp_path / "card"
    make_card(root)
    text = (root / "samples.csv").read_text().splitlines()
    rows = [line.split(",") for line in text]
    card = json.loads((root / "dataset.json").read_text())
    edit(root, rows, card)
    (root / "samples.csv").write_text("\n".join(",".join(r) for r in rows) + "\n")
    (root / "dataset.json").write_text(json.dumps(card))
    return root


# header: id,split,group,image,seg,height,flow,count,where; data rows start on line 2
CASES = {
    "missing file": (lambda r, rows, c: (r / "seg/x2.png").unlink(),
                     r"line 4, column seg: seg/x2.png: no such file"),
    "class id above classes": (lambda r, rows, c: rows[5].__setitem__(7, "4"),
                               r"line 6, column count: class 4 is outside 0 to 3"),
    "class map above classes": (
        lambda r, rows, c: _png(r / "seg/x1.png", np.full((SIZE, SIZE), 7, np.uint8)),
        r"line 3, column seg: x1.png holds class 7; classes are 0 to 2"),
    "vector of the wrong length": (lambda r, rows, c: rows[2].__setitem__(8, "0.5"),
                                   r"line 3, column where: 1 value\(s\) '0.5'; expected 2"),
    "split": (lambda r, rows, c: rows[4].__setitem__(1, "validation"),
              r"line 5, column split: 'validation'; expected one of train, val, test"),
    "id repeats": (lambda r, rows, c: rows[6].__setitem__(0, "x1"),
                   r"line 7, column id: 'x1' repeats line 3"),
    "group across splits": (lambda r, rows, c: rows[2].__setitem__(1, "val"),
                            r"line 3, column group: group 'grp0' is in split 'val' here and "
                            r"'train' on line 2"),
    "label size": (lambda r, rows, c: _png(r / "height/x2.png", np.zeros((5, 5), np.uint16)),
                   r"line 4, column height: x2.png is 5 x 5; the image is 12 x 12"),
    "unknown kind": (lambda r, rows, c: c["labels"]["count"].__setitem__("kind", "class"),
                     r"labels.count.kind: 'class'; expected one of classes, dense_classes"),
    "missing column": (lambda r, rows, c: c["labels"].__setitem__("depth", {
        "kind": "vector", "length": 1}), r"samples.csv: no column 'depth'"),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_bad_input_is_one_line_naming_row_and_column(case, tmp_path):
    edit, message = CASES[case]
    root = _broken(tmp_path, edit)
    with pytest.raises((CardError, InputError), match=message):
        convert_card(str(root), str(tmp_path / "rec"), shard_size=2, progress=False)


def test_the_command_prints_one_line_and_keeps_what_was_converted(tmp_path):
    root = tmp_path / "card"
    make_card(root)
    out = tmp_path / "rec"
    ok = subprocess.run([sys.executable, "-m", "tfrecords_tools.convert", "--src", str(root),
                         "--out", str(out), "--shard-size", "2", "--quiet"],
                        capture_output=True, text=True, timeout=600)
    assert ok.returncode == 0, ok.stderr[-2000:]
    assert "dataset card 'toy'" in ok.stdout
    before = {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()}
    (root / "seg/x5.png").unlink()
    bad = subprocess.run([sys.executable, "-m", "tfrecords_tools.convert", "--src", str(root),
                          "--out", str(out), "--quiet"], capture_output=True, text=True,
                         timeout=600)
    assert bad.returncode == 2
    lines = [x for x in bad.stderr.splitlines() if x.strip()]
    assert lines == ["error: samples.csv: line 7, column seg: seg/x5.png: no such file"]
    assert {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()} == before


def test_an_interrupted_conversion_resumes(card_records, tmp_path):
    root, _ = card_records
    out = tmp_path / "rec"
    shutil.copytree(root / "rec", out)
    victim = sorted(out.glob("val-*.tfrecord"))[0]
    reference = victim.read_bytes()
    victim.unlink()
    (out / ".convert" / f"{victim.name}.json").unlink()
    kept = {p: p.stat().st_mtime_ns for p in out.glob("*.tfrecord")}
    convert_card(str(root / "card"), str(out), shard_size=2, progress=False)
    assert victim.read_bytes() == reference
    assert all(p.stat().st_mtime_ns == t for p, t in kept.items())


def test_a_card_is_checked_before_anything_is_read(tmp_path):
    (tmp_path / "dataset.json").write_text('{"name": "a", "samples": "s.csv", "image": "rgb", '
                                           '"labels": {"Bad Name": {"kind": "vector"}}}')
    with pytest.raises(InputError, match="a label name must be snake_case"):
        load_card(tmp_path)
    (tmp_path / "dataset.json").write_text('{"name": "a", "samples": "s.csv", "image": "rgb", '
                                           '"labels": {"v": {"kind": "vector"}}}')
    with pytest.raises(InputError, match=r"labels.v.length: expected an integer >= 1"):
        load_card(tmp_path)
    (tmp_path / "dataset.json").write_text('{"name": "a", "samples": "s.csv", "image": "rgb", '
                                           '"labels": {"normals": {"kind": "vector", '
                                           '"length": 3}}}')
    with pytest.raises(InputError, match="named like the catalog task 'normals'"):
        use_records(tmp_path)


@pytest.mark.slow
def test_card_tasks_train_transfer_and_drop_unlabelled_test_images(card_records, tmp_path):
    """A card's tasks train and transfer (by name, from the records alone); a
    test image without any label of the target is left out of its per-image
    losses (it tied every candidate at 0)."""
    from taskonomy_tf.training import TrainConfig, train_and_evaluate
    from taskonomy_tf.transfer import FeatureCache, run_candidates
    from taskonomy_tf.transfer.grid import random_encoder

    root, written = card_records
    rec = root / "rec"
    workdirs = {}
    for task in ("height", "seg"):
        workdirs[task] = tmp_path / task
        train_and_evaluate(TrainConfig.of(task=task, data=str(rec), image_size=16, batch_size=2,
                                       steps=2, verbose=0, cache=False), workdirs[task])
    workdirs["random"] = random_encoder(tmp_path, 16)
    result = run_candidates("height", [("seg",), ("random",)], workdirs, rec,
                            FeatureCache(tmp_path / "cache"), image_size=16, n_images=None,
                            train_split="val", test_split="val", steps=2, batch_size=2,
                            seeds=[0])
    val = sorted(k for k, v in written.items() if v["split"] == "val")
    unlabelled = [k for k in val if written[k]["height_missing"]]
    assert unlabelled and sorted(result.images) == sorted(set(val) - set(unlabelled))
    for losses in result.values():
        assert np.shape(losses)[-1] == len(result.images)
