"""Converter: round trip, resume after an interruption, bad files, --strict."""

from __future__ import annotations

import io
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from taskonomy_tf.data import decode_raw, make_dataset, schema
from tfrecords_tools import convert as C
from tfrecords_tools.fake import write_fake_dataset


def records_of(folder: Path) -> list[tf.train.Example]:
    out = []
    for f in sorted(folder.glob("*.tfrecord")):
        out += [tf.train.Example.FromString(r.numpy()) for r in tf.data.TFRecordDataset(str(f))]
    return out


def test_round_trip_keeps_every_file(fake_raw, fake_records):
    manifest = json.loads((fake_records / "manifest.json").read_text())
    part = manifest["splits"]["all"]
    assert manifest["schema_version"] == schema.SCHEMA_VERSION
    assert part["records"] == 18 and part["domain_counts"]["rgb"] == 18
    assert not part["missing_domains"] and not part["rejected_files"]
    exs = records_of(fake_records)
    assert len(exs) == 18
    for ex in exs:
        f = ex.features.feature
        b = f[schema.META_BUILDING].bytes_list.value[0].decode()
        p, v = f[schema.META_POINT].int64_list.value[0], f[schema.META_VIEW].int64_list.value[0]
        for domain in ("rgb", "depth_zbuffer", "segment_semantic"):
            spec = schema.DOMAINS[domain]
            token = spec.all_tokens()[0]
            raw = (fake_raw / b / domain / f"point_{p}_view_{v}_domain_{token}.png").read_bytes()
            assert f[spec.encoded_key].bytes_list.value[0] == raw  # bytes kept as they are
        npy = (fake_raw / b / "class_scene" / f"point_{p}_view_{v}_domain_class_places.npy")
        np.testing.assert_allclose(f["class_scene/values"].float_list.value,
                                   np.load(npy), rtol=1e-6)
        info = json.loads(f[schema.POINT_INFO_KEY].bytes_list.value[0])
        assert info["view_id"] == v


def test_batches_match_decode_raw(fake_raw, fake_records):
    """raw file -> record -> batch equals the raw file decoded directly."""
    ds = make_dataset(fake_records, "depth_zbuffer", split="all", batch_size=18, image_size=32,
                      shuffle=False, augment=False)
    x, y, w = next(iter(ds))
    assert x.shape == (18, 32, 32, 3)
    first = fake_raw / "fakebldg0" / "depth_zbuffer" / "point_0_view_0_domain_depth_zbuffer.png"
    metres, valid = decode_raw("depth_zbuffer", first.read_bytes())
    expected = np.log1p(metres * 512) / np.log(2**16)
    np.testing.assert_allclose(y["depth_zbuffer"][0].numpy()[valid], expected[valid], rtol=1e-5)
    np.testing.assert_array_equal(w["depth_zbuffer"][0].numpy(), valid.astype(np.float32))
    png = fake_raw / "fakebldg0/rgb/point_0_view_0_domain_rgb.png"
    rgb, _ = decode_raw("rgb", png.read_bytes())
    np.testing.assert_allclose(x[0].numpy(), rgb * 2 - 1, atol=1e-6)


def test_real_samples_convert_and_decode(samples_dir, tmp_path, arrange):
    root = arrange(samples_dir, tmp_path / "src", "omnidata")
    m = C.convert(str(root), str(tmp_path / "out"), progress=False)["splits"]["all"]
    assert m["records"] == 2 and not m["rejected_files"]
    assert len(m["ignored_files"]) == 14  # display copies, colour-coded semantics
    missing = dict((s, set(d)) for s, d in m["missing_domains"])
    assert "depth_zbuffer" in missing["bldg/21/2"]
    ds = make_dataset(tmp_path / "out", ["depth_euclidean", "normals"], split=None,
                      batch_size=2, image_size=512, shuffle=False, augment=False)
    x, y, w = next(iter(ds))
    idx = [i for i in range(2) if float(tf.reduce_sum(w["depth_euclidean"][i])) > 0][0]
    raw = np.expm1(y["depth_euclidean"][idx].numpy() * np.log(2**16)) / 512
    assert abs(raw[255:257, 255:257].mean() - 7.56) < 0.03
    n, nw = y["normals"][idx].numpy(), w["normals"][idx].numpy() > 0
    np.testing.assert_allclose(np.linalg.norm(n[nw], axis=-1), 1.0, atol=1e-4)


def test_resume_rewrites_only_what_is_missing(fake_raw, tmp_path):
    out = tmp_path / "out"
    C.convert(str(fake_raw), str(out), shard_size=4, progress=False)
    shards = sorted(out.glob("*.tfrecord"))
    reference = {p.name: p.read_bytes() for p in shards}
    stamps = {p.name: p.stat().st_mtime_ns for p in shards}
    # an interruption: one shard never finished, a half-written temporary
    # file is left behind, and the manifest was never written
    shards[1].unlink()
    (out / f".{shards[1].name}.tmp-999").write_bytes(b"half")
    (out / "manifest.json").unlink()
    C.convert(str(fake_raw), str(out), shard_size=4, progress=False)
    for p in sorted(out.glob("*.tfrecord")):
        assert p.read_bytes() == reference[p.name]
        if p.name != shards[1].name:
            assert p.stat().st_mtime_ns == stamps[p.name]  # not rewritten
    m = json.loads((out / "manifest.json").read_text())["splits"]["all"]
    assert [s["name"] for s in m["shards"]] == sorted(reference)
    assert m["records"] == 18


def test_other_arguments_into_the_same_folder_are_refused(fake_raw, tmp_path):
    C.convert(str(fake_raw), str(tmp_path), shard_size=4, progress=False)
    with pytest.raises(C.ConvertError, match="other arguments"):
        C.convert(str(fake_raw), str(tmp_path), shard_size=5, progress=False)


def _png(arr) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="PNG")
    return buf.getvalue()


@pytest.fixture()
def bad_raw(tmp_path) -> Path:
    root = write_fake_dataset(tmp_path / "raw", buildings=1, points=2, views=2, size=16)
    b = root / "fakebldg0"
    (b / "depth_zbuffer/point_0_view_0_domain_depth_zbuffer.png").write_bytes(
        _png(np.full((16, 16), 7, np.uint8)))  # 8-bit where 16-bit is expected
    (b / "normal/point_0_view_1_domain_normal.png").write_bytes(
        (b / "normal/point_0_view_1_domain_normal.png").read_bytes()[:60])  # truncated
    (b / "reshading/point_1_view_0_domain_reshading.png").write_bytes(
        _png(np.zeros((8, 8), np.uint8)))  # wrong size
    (b / "class_object/point_0_view_0_domain_class_object.npy").write_bytes(b"garbage")
    (b / "point_info/point_1_view_0_domain_point_info.json").write_text("{not json")
    (b / "rgb/point_1_view_1_domain_rgb.png").write_bytes(b"\x89PNG broken")
    return root


def test_bad_files_are_reported_with_reasons(bad_raw, tmp_path):
    m = C.convert(str(bad_raw), str(tmp_path / "out"), progress=False)["splits"]["all"]
    reasons = {Path(p).name: r for p, r in m["rejected_files"]}
    assert "8-bit PNG where depth_zbuffer expects 16-bit" in reasons[
        "point_0_view_0_domain_depth_zbuffer.png"]
    assert "does not decode" in reasons["point_0_view_1_domain_normal.png"]
    assert "differs from the view's RGB" in reasons["point_1_view_0_domain_reshading.png"]
    assert "does not load" in reasons["point_0_view_0_domain_class_object.npy"]
    assert "not JSON" in reasons["point_1_view_0_domain_point_info.json"]
    assert "not a PNG" in reasons["point_1_view_1_domain_rgb.png"]
    assert m["dropped_samples"] == [["fakebldg0/1/1", "rgb rejected"]]
    assert m["records"] == 3
    missing = dict((s, d) for s, d in m["missing_domains"])
    assert missing["fakebldg0/0/0"] == ["class_object", "depth_zbuffer"]


def test_strict_fails_with_one_line_and_leaves_no_partial_file(bad_raw, tmp_path, capsys):
    out = tmp_path / "out"
    code = C.main(["--src", str(bad_raw), "--out", str(out), "--strict", "--quiet"])
    err = capsys.readouterr().err.strip()
    assert code == 2 and "\n" not in err
    assert err.startswith("error: --strict: ") and "point_0_view_0_domain_class_object" in err
    assert "pickle" not in err
    assert not list(out.glob(".*.tmp-*")) and not list(out.glob("*.tfrecord"))


def test_split_csv_selects_buildings(fake_raw, tmp_path):
    csv = tmp_path / "split.csv"
    csv.write_text("id,train,val,test\nfakebldg0,1,0,0\nfakebldg1,0,0,1\n")
    C.convert(str(fake_raw), str(tmp_path / "o"), split_csv=str(csv), split="train",
              progress=False)
    C.convert(str(fake_raw), str(tmp_path / "o"), split_csv=str(csv), split="test",
              progress=False)
    m = json.loads((tmp_path / "o" / "manifest.json").read_text())
    assert m["splits"]["train"]["buildings"] == ["fakebldg0"]
    assert m["splits"]["test"]["buildings"] == ["fakebldg1"]
    names = sorted(p.name for p in (tmp_path / "o").glob("*.tfrecord"))
    assert names == ["test-00000-of-00001.tfrecord", "train-00000-of-00001.tfrecord"]


def test_resize_reencodes_at_the_new_size(fake_raw, tmp_path):
    C.convert(str(fake_raw), str(tmp_path / "o"), resize=16, progress=False,
              domains=["depth_zbuffer", "edge_texture"])
    ex = records_of(tmp_path / "o")[0].features.feature
    for domain in ("rgb", "depth_zbuffer", "edge_texture"):
        v, _ = decode_raw(domain, ex[f"{domain}/encoded"].bytes_list.value[0])
        assert v.shape[:2] == (16, 16)
    assert "normal/encoded" not in ex


def test_bad_arguments_get_one_line_errors(tmp_path, capsys):
    assert C.main(["--src", str(tmp_path / "nope"), "--out", str(tmp_path / "o")]) == 2
    assert "not a folder" in capsys.readouterr().err
    assert C.main(["--src", str(tmp_path), "--out", str(tmp_path / "o"), "--domains", "dpeth"]) == 2
    assert "unknown dpeth" in capsys.readouterr().err


@pytest.mark.slow
def test_workers_give_the_same_bytes(fake_raw, tmp_path):
    C.convert(str(fake_raw), str(tmp_path / "a"), shard_size=4, progress=False)
    C.convert(str(fake_raw), str(tmp_path / "b"), shard_size=4, workers=2, progress=False)
    for p in sorted((tmp_path / "a").glob("*.tfrecord")):
        assert p.read_bytes() == (tmp_path / "b" / p.name).read_bytes()
    shutil.rmtree(tmp_path / "a")


def _without_time(manifest: dict) -> dict:
    return {k: v for k, v in manifest.items() if k != "created"}


def test_three_machine_parts_merge_into_the_one_machine_conversion(fake_raw, tmp_path, capsys):
    whole = C.convert(str(fake_raw), str(tmp_path / "one"), shard_size=4, progress=False)
    names = [s["name"] for s in whole["splits"]["all"]["shards"]]
    assert len(names) >= 3
    parts = []
    for i in range(3):
        r = C.convert(str(fake_raw), str(tmp_path / f"p{i}"), shard_size=4, progress=False,
                      part=(i, 3))
        assert r["shards"] == sorted(names[i::3])  # disjoint, round robin
        assert not (tmp_path / f"p{i}" / "manifest.json").exists()
        parts.append(str(tmp_path / f"p{i}"))
    # a part missing, or one shard from two parts: refused, nothing moved
    assert C.main(["--merge", *parts[:2], "--out", str(tmp_path / "m")]) == 2
    assert "no part holds shard" in capsys.readouterr().err
    C.convert(str(fake_raw), str(tmp_path / "dup"), shard_size=4, progress=False, part=(0, 3))
    assert C.main(["--merge", *parts, str(tmp_path / "dup"), "--out", str(tmp_path / "m")]) == 2
    assert "must come from one part" in capsys.readouterr().err
    assert not list((tmp_path / "m").glob("*.tfrecord"))
    # another conversion's part
    C.convert(str(fake_raw), str(tmp_path / "other"), shard_size=5, progress=False, part=(0, 3))
    assert C.main(["--merge", *parts, str(tmp_path / "other"), "--out", str(tmp_path / "m")]) == 2
    assert "another conversion" in capsys.readouterr().err
    assert C.main(["--merge", *parts, "--out", str(tmp_path / "m")]) == 0
    for name in names:  # byte for byte, the view indexes too
        assert (tmp_path / "m" / name).read_bytes() == (tmp_path / "one" / name).read_bytes()
        index = f"{name}.views.json"
        assert (tmp_path / "m" / index).read_bytes() == (tmp_path / "one" / index).read_bytes()
    merged = json.loads((tmp_path / "m" / "manifest.json").read_text())
    assert _without_time(merged) == _without_time(whole)


def test_an_interrupted_merge_finishes_when_run_again(fake_raw, tmp_path, monkeypatch):
    from tfrecords_tools import merge

    whole = C.convert(str(fake_raw), str(tmp_path / "one"), shard_size=4, progress=False)
    parts = [str(tmp_path / f"p{i}") for i in range(2)]
    for i, part in enumerate(parts):
        C.convert(str(fake_raw), part, shard_size=4, progress=False, part=(i, 2))
    real, calls = merge._move, []

    def crash(src, dst):  # killed after two shards and one index were moved
        calls.append(src)
        if len(calls) == 4:
            raise KeyboardInterrupt("simulated crash")
        real(src, dst)

    monkeypatch.setattr(merge, "_move", crash)
    with pytest.raises(KeyboardInterrupt):
        merge.merge_parts(parts, str(tmp_path / "m"))
    monkeypatch.setattr(merge, "_move", real)
    assert len(list((tmp_path / "m").glob("*.tfrecord"))) == 2
    assert not (tmp_path / "m" / "manifest.json").exists()
    assert C.main(["--merge", *parts, "--out", str(tmp_path / "m")]) == 0
    for shard in (tmp_path / "one").glob("*.tfrecord*"):
        assert (tmp_path / "m" / shard.name).read_bytes() == shard.read_bytes()
    merged = json.loads((tmp_path / "m" / "manifest.json").read_text())
    assert _without_time(merged) == _without_time(whole)


def test_parts_on_a_shared_out_then_one_plain_run_write_the_manifest(fake_raw, tmp_path):
    whole = C.convert(str(fake_raw), str(tmp_path / "one"), shard_size=4, progress=False)
    shared = tmp_path / "shared"
    for i in range(2):
        C.convert(str(fake_raw), str(shared), shard_size=4, progress=False, part=(i, 2))
    stamps = {p.name: p.stat().st_mtime_ns for p in shared.glob("*.tfrecord")}
    final = C.convert(str(fake_raw), str(shared), shard_size=4, progress=False)
    assert {p.name: p.stat().st_mtime_ns for p in shared.glob("*.tfrecord")} == stamps
    assert _without_time(final) == _without_time(whole)
    with pytest.raises(C.ConvertError, match="expected 0 <= I < N"):
        C.convert(str(fake_raw), str(shared), shard_size=4, progress=False, part=(2, 2))


def test_each_shard_has_a_view_index_equal_to_its_records(fake_records, tmp_path):
    from taskonomy_tf.data import view_index

    shards = sorted(fake_records.glob("*.tfrecord"))
    for shard in shards:
        side = view_index.index_path(shard)
        assert side.exists()
        # the same entries as parsing the records (a copy without the index)
        copy = tmp_path / shard.name
        shutil.copyfile(shard, copy)
        from_records = view_index.read_index(copy)
        assert view_index.read_index(shard) == from_records
        examples = records_of_file(shard)
        assert len(from_records) == len(examples)
        for entry, ex in zip(from_records, examples):
            f = ex.features.feature
            assert entry["building"] == f[schema.META_BUILDING].bytes_list.value[0].decode()
            assert entry["view"] == f[schema.META_VIEW].int64_list.value[0]
            info = json.loads(f[schema.POINT_INFO_KEY].bytes_list.value[0])
            assert entry["info"]["camera_location"] == info["camera_location"]
            assert set(entry["info"]) <= set(view_index.INDEX_FIELDS)


def records_of_file(shard: Path) -> list[tf.train.Example]:
    return [tf.train.Example.FromString(r.numpy()) for r in tf.data.TFRecordDataset(str(shard))]
