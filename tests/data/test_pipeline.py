"""make_dataset: every task's batch, errors, determinism, augmentation, views."""

from __future__ import annotations

import shutil
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import tensorflow as tf

from taskonomy_tf.data import make_dataset
from taskonomy_tf.data import views as V
from taskonomy_tf.data.geometry import relative_pose
from taskonomy_tf.tasks import OutputKind, get_task, list_tasks

SIZE = 24
LABELLED = [t.name for t in list_tasks() if t.output is not OutputKind.NONE]


@pytest.mark.parametrize("task", LABELLED)
def test_every_task_gives_batches_of_the_spec_shape(fake_records, task):
    spec = get_task(task)
    ds = make_dataset(fake_records, task, split="all", batch_size=4, image_size=SIZE)
    x, y, w = next(iter(ds))
    assert set(y) == set(w) == {spec.name}
    b = x.shape[0]
    assert 1 <= b <= 4 and x.dtype == tf.float32
    views_ = spec.views if spec.views > 1 else None
    channels = 1 if spec.input == "luminance" else 3
    assert tuple(x.shape[1:]) == ((views_,) if views_ else ()) + (SIZE, SIZE, channels)
    assert -1.0 <= float(tf.reduce_min(x)) and float(tf.reduce_max(x)) <= 1.0
    target = y[spec.name]
    if spec.is_dense and target.dtype == tf.int32:  # ids and labels, one channel
        assert tuple(target.shape[1:]) == spec.output_shape(SIZE)[:2] + (1,)
    else:
        assert tuple(target.shape[1:]) == spec.output_shape(SIZE)
    if spec.is_dense:
        assert tuple(w[spec.name].shape[1:]) == spec.output_shape(SIZE)[:2]
    else:
        assert tuple(w[spec.name].shape) == (b,)
    assert np.all(np.isfinite(target.numpy()))


def test_several_tasks_share_one_input(fake_records):
    ds = make_dataset(fake_records, ["normals", "edges", "depth_zbuffer"], split="all",
                      batch_size=3, image_size=SIZE)
    x, y, w = next(iter(ds))
    assert set(y) == {"normals", "edges", "depth_zbuffer"}


def test_missing_domain_names_missing_and_present(tmp_path, fake_raw):
    from tfrecords_tools.convert import convert

    convert(str(fake_raw), str(tmp_path), domains=["normal"], progress=False)
    with pytest.raises(ValueError) as e:
        make_dataset(tmp_path, "depth_euclidean", split="all")
    msg = str(e.value)
    assert "'depth_euclidean'" in msg and "domains present: normal, rgb" in msg
    make_dataset(tmp_path, "normals", split="all")  # no z-buffer: falls back on own mask


def test_errors_for_unknown_split_and_incompatible_tasks(fake_records):
    with pytest.raises(FileNotFoundError, match="splits present: \\['all'\\]"):
        make_dataset(fake_records, "edges", split="train")
    with pytest.raises(ValueError, match="different inputs"):
        make_dataset(fake_records, ["edges", "denoising"], split="all")
    with pytest.raises(ValueError, match="no labels"):
        make_dataset(fake_records, "random", split="all")
    with pytest.raises(KeyError, match="valid tasks"):
        make_dataset(fake_records, "edgez", split="all")


def _collect(ds):
    return [(x.numpy(), {k: v.numpy() for k, v in y.items()}) for x, y, _ in ds]


def test_same_seed_same_batches_other_seed_other_order(fake_records):
    def run(seed):
        return _collect(make_dataset(fake_records, ["normals", "denoising"][:1], split="all",
                                     batch_size=4, image_size=SIZE, shuffle=True, augment=True,
                                     seed=seed))

    a, b, c = run(3), run(3), run(4)
    for (xa, ya), (xb, yb) in zip(a, b):
        np.testing.assert_array_equal(xa, xb)
        np.testing.assert_array_equal(ya["normals"], yb["normals"])
    assert any(not np.array_equal(xa, xc) for (xa, _), (xc, _) in zip(a, c))


def test_flip_keeps_input_and_targets_aligned_and_negates_normal_x(fake_records):
    kw = dict(split="all", batch_size=18, image_size=SIZE, shuffle=False)
    plain = make_dataset(fake_records, ["normals", "depth_zbuffer"], augment=False, **kw)
    aug = make_dataset(fake_records, ["normals", "depth_zbuffer"], augment=True, seed=5, **kw)
    (x0, y0, w0), (x1, y1, w1) = next(iter(plain)), next(iter(aug))
    flipped = 0
    for i in range(18):
        if np.array_equal(x1[i], x0[i]):
            np.testing.assert_array_equal(y1["normals"][i], y0["normals"][i])
            continue
        flipped += 1
        np.testing.assert_allclose(x1[i], x0[i][:, ::-1])
        np.testing.assert_allclose(y1["depth_zbuffer"][i], y0["depth_zbuffer"][i][:, ::-1])
        np.testing.assert_array_equal(w1["normals"][i], w0["normals"][i][:, ::-1])
        n0 = y0["normals"][i].numpy()[:, ::-1]
        np.testing.assert_allclose(y1["normals"][i][..., 0], -n0[..., 0])
        np.testing.assert_allclose(y1["normals"][i][..., 1:], n0[..., 1:])
    assert 0 < flipped < 18


def test_pose_tasks_are_never_flipped_and_labels_are_standardised(fake_records):
    ds = make_dataset(fake_records, "fixated_pose", split="all", batch_size=1000,
                      image_size=SIZE, shuffle=False)
    x, y, _ = next(iter(ds))
    # 6 points x 3 views -> 6 x 3 x 2 ordered pairs of the same point
    assert x.shape == (36, 2, SIZE, SIZE, 3)
    np.testing.assert_allclose(y["fixated_pose"].numpy().mean(0), 0, atol=1e-5)
    np.testing.assert_allclose(y["fixated_pose"].numpy().std(0), 1, atol=1e-4)


def test_pose_labels_come_from_the_right_views(fake_records):
    files = sorted(str(p) for p in fake_records.glob("*.tfrecord"))
    index = V.read_index(files[0])
    (idx, raw), = V.build_tuples(files[:1], get_task("fixated_pose"), 0)
    i, j = idx[0]
    a, b = index[i]["info"], index[j]["info"]
    assert index[i]["point"] == index[j]["point"] and index[i]["view"] != index[j]["view"]
    expected = relative_pose(a["camera_location"], a["camera_rotation_final"],
                             b["camera_location"], b["camera_rotation_final"])
    np.testing.assert_allclose(raw[0], expected)
    # the pair's images are the records' own
    ds = make_dataset(fake_records, "fixated_pose", split="all", batch_size=1, image_size=32,
                      shuffle=False)
    x, _, _ = next(iter(ds))
    single = make_dataset(files[0], "autoencoding", split=None, batch_size=8, image_size=32,
                          shuffle=False, augment=False)
    xs, _, _ = next(iter(single))
    np.testing.assert_allclose(x[0, 0], xs[i], atol=1e-6)
    np.testing.assert_allclose(x[0, 1], xs[j], atol=1e-6)


def test_egomotion_matching_and_nonfixated_tuples(fake_records):
    files = sorted(str(p) for p in fake_records.glob("*.tfrecord"))
    index = [r for f in files[:1] for r in V.read_index(f)]
    (tri, _), = V.build_tuples(files[:1], get_task("egomotion"), 0)
    assert tri.shape[1] == 3 and all(len({index[k]["point"] for k in t}) == 1 for t in tri)
    (pairs, labels), = V.build_tuples(files[:1], get_task("point_matching"), 0)
    same = np.array([index[a]["point"] == index[b]["point"] for a, b in pairs])
    np.testing.assert_array_equal(labels[:, 1] == 1, same)
    assert same.mean() == pytest.approx(0.5)  # as many non-matching pairs
    (nf, _), = V.build_tuples(files[:1], get_task("nonfixated_pose"), 0)
    assert len(nf) and all(index[a]["point"] != index[b]["point"] for a, b in nf)


def test_point_matching_on_a_shard_with_one_point():
    one_point = [{"building": "b", "point": 3, "info": {}} for _ in range(3)]
    pairs, labels = V.TUPLES.get("point_match")(one_point, np.random.default_rng(0))
    assert sorted(pairs) == [(0, 1), (0, 2), (1, 2)]  # matches only; was a ValueError
    assert np.all(labels[:, 1] == 1)
    two = one_point + [{"building": "c", "point": 3, "info": {}}]
    pairs, labels = V.TUPLES.get("point_match")(two, np.random.default_rng(0))
    assert len(pairs) == 6 and labels[3:, 0].sum() == 3
    assert all(two[a]["building"] != two[b]["building"] for a, b in pairs[3:])


def test_cache_gives_the_same_batches(fake_records):
    kw = dict(split="all", batch_size=6, image_size=SIZE, shuffle=True, seed=1)
    a = _collect(make_dataset(fake_records, "edges", cache=True, **kw))
    b = _collect(make_dataset(fake_records, "edges", cache=False, **kw))
    for (xa, _), (xb, _) in zip(a, b):
        np.testing.assert_array_equal(xa, xb)


@pytest.mark.slow
def test_auto_sharding_under_mirrored_strategy(fake_records, tmp_path):
    """Two logical CPU devices: every example is seen once per epoch."""
    script = textwrap.dedent(f"""
        import os
        os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
        import tensorflow as tf
        cpu = tf.config.list_physical_devices("CPU")[0]
        tf.config.set_logical_device_configuration(
            cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
        from taskonomy_tf.data import make_dataset
        strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
        ds = make_dataset({str(fake_records)!r}, "edges", split="all", batch_size=6,
                          image_size=16, shuffle=False, augment=False)
        dist = strategy.experimental_distribute_dataset(ds)
        n = 0
        for x, y, w in dist:
            parts = strategy.experimental_local_results(x)
            assert len(parts) == 2
            n += sum(int(p.shape[0]) for p in parts)
        print(n)
    """)
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                         timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip().splitlines()[-1] == "18"


def test_non_deterministic_stream_holds_the_same_examples(fake_records):
    """deterministic=False may reorder parallel work, never lose or repeat an
    example (by id); the default keeps the order from one run to the next."""
    kw = dict(split="all", batch_size=4, image_size=32, shuffle=True, seed=2, with_ids=True)

    def ids(ds):
        return [i.decode() for _, _, _, b in ds for i in np.asarray(b)]

    fixed = ids(make_dataset(fake_records, "edges", **kw))
    assert fixed == ids(make_dataset(fake_records, "edges", **kw))
    free = ids(make_dataset(fake_records, "edges", deterministic=False, **kw))
    assert sorted(free) == sorted(fixed) and len(set(free)) == len(free)


def test_label_stats_accumulated_by_shard_equal_the_whole(fake_records):
    files = sorted(str(p) for p in fake_records.glob("*.tfrecord"))
    assert len(files) >= 3
    spec = get_task("egomotion")
    labels = np.concatenate([lab for _, lab in V.build_tuples(files, spec, 0)])
    mean, std = V.label_stats(files, spec)
    np.testing.assert_allclose(mean, labels.mean(0), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(std, labels.std(0), rtol=1e-10, atol=1e-12)


def test_shuffled_tuples_are_the_same_tuples_in_another_order(fake_records, tmp_path):
    def ids(folder, shuffle, seed=0):
        ds = make_dataset(folder, "fixated_pose", split="all", batch_size=8, image_size=16,
                          shuffle=shuffle, seed=seed, with_ids=True)
        return [i.decode() for _, _, _, b in ds for i in np.asarray(b)]

    plain = ids(fake_records, False)
    files = sorted(str(p) for p in fake_records.glob("*.tfrecord"))
    expected = [t for f in files
                for t in V.tuple_ids(V.read_index(f), V.build_tuples([f], get_task(
                    "fixated_pose"), 0)[0][0])]
    assert sorted(plain) == sorted(expected) and len(set(plain)) == len(plain)
    a, b = ids(fake_records, True, 1), ids(fake_records, True, 2)
    assert sorted(a) == sorted(plain) and a != plain and a != b
    assert ids(fake_records, True, 1) == a  # seeded
    # shards converted before the view index existed give the same stream
    for f in fake_records.iterdir():
        if f.suffix == ".tfrecord" or f.name == "manifest.json":
            shutil.copy(f, tmp_path / f.name)
    assert not list(tmp_path.glob("*.views.json"))
    assert ids(tmp_path, False) == plain and ids(tmp_path, True, 1) == a


def test_point_matching_pairs_are_unique_even_when_negatives_are_scarce():
    # two points of two views: 2 matching pairs, 8 possible non-matching ordered pairs
    index = [{"building": "b", "point": p, "view": v, "info": {}} for p in (0, 1)
             for v in (0, 1)]
    for seed in range(20):
        pairs, labels = V.TUPLES.get("point_match")(index, np.random.default_rng(seed))
        assert len(set(pairs)) == len(pairs) == 4 and labels[:, 1].sum() == 2
    many = [{"building": "b", "point": p, "view": v, "info": {}} for p in range(2)
            for v in range(6)]  # 30 matches, 72 possible non-matches
    pairs, labels = V.TUPLES.get("point_match")(many, np.random.default_rng(0))
    assert len(set(pairs)) == len(pairs) == 60


def test_point_matching_negatives_come_from_the_same_building_when_it_has_another_point():
    # four buildings of five points of three views, ids interleaved as in a shard;
    # building "d" has one point only: its negatives must pair it with another building
    index = [{"building": b, "point": p, "view": v, "info": {}}
             for p in range(5) for b in "abc" for v in range(3)]
    index += [{"building": "d", "point": 0, "view": v, "info": {}} for v in range(3)]
    for seed in range(5):
        pairs, labels = V.TUPLES.get("point_match")(index, np.random.default_rng(seed))
        neg = [(index[i], index[j]) for (i, j), y in zip(pairs, labels) if y[0] == 1]
        assert len(neg) == int(labels[:, 1].sum()) == 3 * 5 * 3 + 3
        assert all((a["building"], a["point"]) != (b["building"], b["point"]) for a, b in neg)
        for a, b in neg:  # same building unless the first view's building has one point
            assert (a["building"] == b["building"]) == (a["building"] != "d")
