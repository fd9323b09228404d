"""The reader finds samples in both layouts and ignores what is not raw data."""

from __future__ import annotations

import pytest

from tfrecords_tools.reader import read_split_csv, scan


@pytest.mark.parametrize("layout", ["original", "omnidata"])
def test_real_samples_in_both_layouts(samples_dir, tmp_path, arrange, layout):
    root = arrange(samples_dir, tmp_path / layout, layout)
    found = scan(root)
    assert found.layouts == {layout}
    assert sorted(found.samples) == [("bldg", 21, 2), ("bldg", 202, 5)]
    view = found.samples[("bldg", 202, 5)]
    assert {"rgb", "depth_zbuffer", "depth_euclidean", "normal", "point_info"} <= set(view)
    assert view["depth_zbuffer"].name == "point_202_view_5_domain_depth_zbuffer.png"
    reasons = dict(found.ignored)
    display = [p for p in reasons if "zbuffer2" in p]
    assert display and "display copy" in reasons[display[0]]
    # display copies and Omnidata's colour-coded 'semantic' never count as a domain
    assert all("2.png" not in str(p) for files in found.samples.values() for p in files.values())
    assert len(found.ignored) == 14


def test_release_name_quirks_and_stray_files(fake_raw):
    found = scan(fake_raw)
    view = found.samples[("fakebldg0", 0, 0)]
    assert view["class_scene"].name.endswith("_domain_class_places.npy")
    assert view["segment_semantic"].name.endswith("_domain_segmentsemantic.png")
    assert len(found.samples) == 18 and not found.ignored


def test_mismatched_and_stray_files_are_ignored_with_reasons(tmp_path):
    (tmp_path / "b" / "normal").mkdir(parents=True)
    (tmp_path / "b" / "rgb").mkdir(parents=True)
    (tmp_path / "b" / "rgb" / "point_1_view_0_domain_rgb.png").write_bytes(b"x")
    (tmp_path / "b" / "normal" / "point_1_view_0_domain_rgb.png").write_bytes(b"x")
    (tmp_path / "b" / "normal" / "notes.txt").write_text("hi")
    (tmp_path / "b" / "rgb" / "point_1_view_0_domain_rgb.jpg").write_bytes(b"x")
    found = scan(tmp_path)
    assert list(found.samples) == [("b", 1, 0)]
    reasons = sorted(r for _, r in found.ignored)
    assert any("belongs to 'rgb', found in folder 'normal'" in r for r in reasons)
    assert any("not point_P_view_V" in r for r in reasons)
    assert any("extension .jpg" in r for r in reasons)


def test_split_csv_with_old_mac_line_endings(tmp_path):
    csv = tmp_path / "train_val_test_tiny.csv"
    csv.write_bytes(b"id,train,val,test\rallensville,1,0,0\rbeechwood,0,1,0\rcosmos,1,0,0\r")
    assert read_split_csv(csv, "train") == {"allensville", "cosmos"}
    assert read_split_csv(csv, "val") == {"beechwood"}
    csv.write_text("id,train\nx,maybe\n")
    with pytest.raises(ValueError, match="line 2"):
        read_split_csv(csv, "train")
