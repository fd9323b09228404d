"""The synthetic dataset: geometry, encodings, determinism, the embedded cache."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest

from taskonomy_tf.data import decode_raw
from taskonomy_tf.data.geometry import euler_to_matrix
from taskonomy_tf.synth import SynthConfig, generate
from taskonomy_tf.synth.embedded import embedded_dataset, is_ready
from taskonomy_tf.synth.shortcuts import normal_top_share, view_shortcuts
from taskonomy_tf.tasks import OutputKind, list_tasks

CFG = SynthConfig(buildings=2, points=3, views=3, size=64, seed=7)


@pytest.fixture(scope="module")
def synth_raw(tmp_path_factory) -> Path:
    return generate(tmp_path_factory.mktemp("synth") / "raw", CFG, progress=False)


def views(root: Path):
    for info_path in sorted(root.glob("*/point_info/*.json")):
        stem = info_path.name.replace("_domain_point_info.json", "")
        yield info_path.parent.parent, stem, json.loads(info_path.read_text())


def load(building: Path, stem: str, domain: str, token: str | None = None):
    token = token or domain
    ext = "npy" if domain.startswith("class") else "png"
    return decode_raw(domain, (building / domain / f"{stem}_domain_{token}.{ext}").read_bytes())


def test_same_seed_same_bytes_whatever_the_workers(synth_raw, tmp_path):
    other = generate(tmp_path / "again", CFG, workers=2, progress=False)
    files = sorted(p.relative_to(synth_raw) for p in synth_raw.rglob("*") if p.is_file())
    assert files == sorted(p.relative_to(other) for p in other.rglob("*") if p.is_file())
    assert len(files) == 2 * 3 * 3 * 16  # every domain but Omnidata's mask_valid
    for f in files:
        assert (synth_raw / f).read_bytes() == (other / f).read_bytes(), f
    third = generate(tmp_path / "seed8", SynthConfig(**{**CFG.__dict__, "seed": 8}),
                     progress=False)
    rgb = next(third.glob("*/rgb/point_0_view_0_domain_rgb.png")).read_bytes()
    assert rgb != next(synth_raw.glob("*/rgb/point_0_view_0_domain_rgb.png")).read_bytes()


def test_fixated_point_is_at_the_centre_and_at_its_depth(synth_raw):
    for building, stem, info in views(synth_raw):
        r = euler_to_matrix(info["camera_rotation_final"])
        cam = r.T @ (np.subtract(info["point_location"], info["camera_location"]))
        assert cam[2] < 0 and abs(cam[0] / cam[2]) < 1e-9 and abs(cam[1] / cam[2]) < 1e-9
        dist, ok = load(building, stem, "depth_euclidean")
        c = info["resolution"] // 2
        assert ok[c - 1:c + 1, c - 1:c + 1].all()
        centre = dist[c - 1:c + 1, c - 1:c + 1, 0]  # the 4 pixels around the optical axis
        err = np.abs(centre - info["camera_distance"]).min()
        # those pixels look half a pixel off the axis: on a surface seen at
        # obliqueness a, depth changes by about distance * angle * tan(a)
        off_axis = np.sqrt(2) * np.tan(info["field_of_view_rads"] / 2) / info["resolution"]
        slope = np.tan(min(info["obliqueness_angle"], np.radians(85)))
        assert err < 0.02 + info["camera_distance"] * (0.005 + 1.5 * off_axis * slope)
        assert np.radians(45) <= info["field_of_view_rads"] <= np.radians(75)
        assert abs(r[2, 0]) < 1e-9  # no roll: the camera's x axis is horizontal


def test_euclidean_over_zbuffer_is_the_pinhole_ray_length(synth_raw):
    for building, stem, info in views(synth_raw):
        z, ok = load(building, stem, "depth_zbuffer")
        e, ok2 = load(building, stem, "depth_euclidean")
        np.testing.assert_array_equal(ok, ok2)
        n = info["resolution"]
        half = np.tan(info["field_of_view_rads"] / 2)
        c = ((np.arange(n) + 0.5) / n * 2 - 1) * half
        expected = np.sqrt(1 + c[None, :] ** 2 + c[:, None] ** 2)
        ratio = e[..., 0] / z[..., 0]
        good = ok & (z[..., 0] > 0.5)
        assert np.median(np.abs(ratio[good] - expected[good])) < 2e-3


def test_normals_are_unit_and_match_the_depth_gradient_on_planes(synth_raw):
    errors = []
    for building, stem, info in views(synth_raw):
        nrm, ok = load(building, stem, "normal")
        np.testing.assert_allclose(np.linalg.norm(nrm[ok], axis=-1), 1, atol=1e-5)
        z, zok = load(building, stem, "depth_zbuffer")
        curv, _ = load(building, stem, "principal_curvature")
        n = info["resolution"]
        half = np.tan(info["field_of_view_rads"] / 2)
        c = ((np.arange(n) + 0.5) / n * 2 - 1) * half
        # back-project in the dataset's camera frame: x right, y down, z forward
        pts = np.stack([c[None, :] * z[..., 0], c[:, None] * z[..., 0], z[..., 0]], -1)
        dx, dy = pts[1:-1, 2:] - pts[1:-1, :-2], pts[2:, 1:-1] - pts[:-2, 1:-1]
        geo = np.cross(dy, dx)
        geo /= np.linalg.norm(geo, axis=-1, keepdims=True) + 1e-12
        geo *= -np.sign(geo[..., 2:3])  # facing the camera: negative z
        inner = nrm[1:-1, 1:-1]
        flat = np.all(curv[1:-1, 1:-1] == 0, -1)
        same = np.abs(np.einsum("ijk,ijk->ij", inner, geo))
        sel = (zok[1:-1, 1:-1] & zok[2:, 1:-1] & zok[:-2, 1:-1] & zok[1:-1, 2:]
               & zok[1:-1, :-2] & flat)
        errors.append(np.degrees(np.arccos(np.clip(same[sel], -1, 1))))
    err = np.concatenate(errors)
    assert np.median(err) < 3.0  # quantisation of depth to 2 mm and of normals to 8 bits
    assert np.mean(err < 10) > 0.9


def test_labels_are_consistent(synth_raw):
    from taskonomy_tf.tasks.classes import PLACES365_KEEP, SCENES

    for building, stem, info in views(synth_raw):
        sem, sem_ok = load(building, stem, "segment_semantic", "segmentsemantic")
        depth, dok = load(building, stem, "depth_zbuffer")
        assert np.all(sem[~dok][..., 0] == 0)  # no geometry -> uncertain
        assert set(np.unique(sem)) <= set(range(18))
        places, _ = load(building, stem, "class_scene", "class_places")
        assert places.argmax() == PLACES365_KEEP[SCENES.index(info["room_type"])]
        np.testing.assert_allclose(places.sum(), 1, rtol=1e-5)
        assert set(info) >= {"camera_location", "camera_rotation_final", "field_of_view_rads",
                             "point_location", "point_uuid", "view_id", "resolution", "room",
                             "bounding_box_ranges", "vanishing_points_gaussian_sphere",
                             "nonfixated_points_in_view"}


def test_every_task_gets_its_label_from_converted_synth(synth_raw, tmp_path):
    from taskonomy_tf.data import make_dataset
    from tfrecords_tools.convert import convert

    m = convert(str(synth_raw), str(tmp_path / "rec"), progress=False)["splits"]["all"]
    assert m["records"] == 18 and not m["rejected_files"] and not m["ignored_files"]
    assert not m["missing_domains"]
    for spec in list_tasks():
        if spec.output is OutputKind.NONE or spec.decode == "relative_pose_nonfixated":
            continue
        x, y, w = next(iter(make_dataset(tmp_path / "rec", spec.name, split="all",
                                         batch_size=2, image_size=32)))
        assert np.all(np.isfinite(y[spec.name].numpy())), spec.name


def test_embedded_dataset_is_built_once_and_rebuilt_when_corrupt(tmp_path):
    cfg = SynthConfig(buildings=3, points=2, views=2, size=32, seed=1)
    first = embedded_dataset(cfg, cache=tmp_path, workers=1, progress=False)
    assert is_ready(first)
    names = sorted(p.name for p in first.glob("*.tfrecord"))
    assert names == ["test-00000-of-00001.tfrecord", "train-00000-of-00001.tfrecord",
                     "val-00000-of-00001.tfrecord"]
    stamp = (first / "READY.json").stat().st_mtime_ns
    assert embedded_dataset(cfg, cache=tmp_path, progress=False) == first
    assert (first / "READY.json").stat().st_mtime_ns == stamp  # reused, not rebuilt
    shard = first / names[1]
    reference = shard.read_bytes()
    shard.write_bytes(reference[:-10])  # a corrupted (truncated) shard
    assert not is_ready(first)
    again = embedded_dataset(cfg, cache=tmp_path, workers=1, progress=False)
    assert is_ready(again) and (again / names[1]).read_bytes() == reference


def test_curvature_and_keypoint_targets_carry_signal(tmp_path):
    """The statistics docs/synthetic.md states, on a small sample at the
    embedded data's 128 px: curved surfaces fill part of the views (box
    rooms alone gave k = 0 almost everywhere), and the 2D keypoint map is a
    dense response, not mostly floor (86% of pixels were at the floor)."""
    raw = generate(tmp_path / "raw", SynthConfig(buildings=3, points=3, views=2, size=128,
                                                 seed=11), progress=False)
    curved, k1, floor, median, saturated = [], [], [], [], []
    for building, stem, _ in views(raw):
        curv, valid = load(building, stem, "principal_curvature")
        curved.append(np.abs(curv[valid]).max(-1) > 0)
        k1.append(curv[valid][:, 0])
        kp, _ = load(building, stem, "keypoints2d")
        v = np.clip(kp[..., 0] / 0.005, 0, 1)  # the target encoding's clip (load_ops)
        floor.append(np.mean(v == 0))
        median.append(np.median(v))
        saturated.append(np.mean(v == 1))
    assert np.concatenate(curved).mean() > 0.05
    assert np.concatenate(k1).std() > 0.5  # 1/m; a sphere of 0.5 m has k = 2
    assert np.mean(floor) < 0.05 and 0.03 < np.median(median) < 0.5
    assert np.mean(saturated) < 0.2


def test_an_interrupted_build_resumes(tmp_path):
    """A build stopped after part of the points keeps them (not rendered
    again) and ends with the same files, and the embedded records, as a
    build in one go."""
    cfg = SynthConfig(buildings=3, points=2, views=2, size=24, seed=4)
    whole = embedded_dataset(cfg, cache=tmp_path / "a", workers=1, progress=False)
    reference = generate(tmp_path / "ref", cfg, progress=False)
    raw = tmp_path / "b" / whole.parent.name / "raw"
    generate(raw, dataclasses.replace(cfg, buildings=2), progress=False)  # the interruption
    infos = sorted(raw.rglob("*point_info.json"))
    infos[-1].unlink()  # the last view of one point lost: that point is rendered again
    kept = {p: p.stat().st_mtime_ns for p in raw.rglob("*") if p.is_file()}
    generate(raw, cfg, workers=2, progress=False)
    redone = [p for p, t in kept.items() if p.stat().st_mtime_ns != t]
    assert redone and all(p.name.startswith(infos[-1].name.split("_domain_")[0].rsplit(
        "_view_", 1)[0]) for p in redone)  # only that point's files
    for p in reference.rglob("*"):
        if p.is_file():
            assert (raw / p.relative_to(reference)).read_bytes() == p.read_bytes()
    resumed = embedded_dataset(cfg, cache=tmp_path / "b", workers=1, progress=False)
    for shard in sorted(whole.glob("*.tfrecord")):
        assert (resumed / shard.name).read_bytes() == shard.read_bytes()


def test_the_labels_are_not_one_box_and_one_filter_read_twice(tmp_path):
    # issue 21's shortcuts, on buildings the embedded data does not hold: a box
    # room put 99% of a view's pixels on six normal directions, and 2D keypoints
    # that were the edges' derivative filter read again correlated 0.56 with them
    cfg = SynthConfig(buildings=4, points=5, views=3, size=96, seed=23)
    raw = generate(tmp_path / "raw", cfg, workers=2, progress=False)
    top6, corr = zip(*(view_shortcuts(b, stem) for b, stem, _ in views(raw)))
    assert len(top6) == 60
    assert np.median(top6) < 0.85 and np.median(corr) < 0.4
    assert normal_top_share(np.full((4, 4, 3), 128, np.uint8)) == 1.0  # no geometry
    two = np.zeros((10, 10, 3), np.uint8)
    two[:, :3] = 7  # 30 pixels of one normal, 70 of another
    assert normal_top_share(two, k=1) == 0.7 and normal_top_share(two) == 1.0


def test_a_point_no_camera_can_see_is_an_error_not_an_endless_loop(tmp_path, monkeypatch):
    import importlib

    gen = importlib.import_module("taskonomy_tf.synth.generate")
    calls = []
    real = gen._camera
    monkeypatch.setattr(gen, "_camera", lambda *a: calls.append(1) or real(*a))
    monkeypatch.setattr(gen, "CAMERA_DISTANCE", (50.0, 60.0))  # no room is that large
    with pytest.raises(RuntimeError, match="building 1 point 2: no camera place 50-60 m"):
        gen.render_point(CFG, 1, 2, str(tmp_path))
    assert len(calls) == gen.CAMERA_CALLS
    assert not [f for f in tmp_path.rglob("*") if f.is_file()]  # nothing half-written
