"""Transfer function and feature cache."""

from __future__ import annotations

import numpy as np
import pytest

import keras
from taskonomy_tf.transfer import FeatureCache, build_transfer_model, run_transfer


@pytest.fixture(scope="module")
def split_records(fake_raw, tmp_path_factory):
    from tfrecords_tools.convert import convert

    out = tmp_path_factory.mktemp("split")
    csv = out / "split.csv"
    csv.write_text("id,train,val,test\nfakebldg0,1,0,0\nfakebldg1,0,0,1\n")
    for split in ("train", "test"):
        convert(str(fake_raw), str(out / "rec"), split_csv=str(csv), split=split, progress=False)
    return out / "rec"


@pytest.fixture(scope="module")
def trained(split_records, tmp_path_factory):
    from taskonomy_tf.training import TrainConfig, train_and_evaluate

    dirs = {}
    for task in ("normals", "edges"):
        w = tmp_path_factory.mktemp(task)
        train_and_evaluate(TrainConfig(task=task, data=str(split_records), image_size=32,
                                       batch_size=4, steps=2, verbose=0, cache=False), w)
        dirs[task] = w
    return dirs


def test_readout_shapes():
    m = build_transfer_model("depth_zbuffer", order=2, code_size=2)
    assert m.input_shape == (None, 2, 2, 16)
    out = m(np.zeros((1, 2, 2, 16), "float32"))["depth_zbuffer"]
    assert out.shape == (1, 32, 32, 1)
    m = build_transfer_model("class_scene", order=1, code_size=2)
    assert m(np.zeros((1, 2, 2, 8), "float32"))["class_scene"].shape == (1, 63)
    with pytest.raises(ValueError, match="multi-view"):
        build_transfer_model("fixated_pose", 1, 2)


def test_transfer_leaves_encoders_untouched_and_reuses_the_cache(trained, split_records,
                                                                 tmp_path):
    enc_file = trained["normals"] / "encoder.keras"
    before = enc_file.read_bytes()
    weights = [w.copy() for w in keras.saving.load_model(enc_file, safe_mode=True).get_weights()]
    cache = FeatureCache(tmp_path / "cache")
    r = run_transfer("depth_zbuffer", {"normals": trained["normals"]}, split_records, cache,
                     image_size=32, steps=4, batch_size=4)
    assert r.losses.shape == (9,) and np.all(np.isfinite(r.losses)) and r.sources == ("normals",)
    assert cache.computed == 2  # train and test codes, once each
    assert enc_file.read_bytes() == before
    after = keras.saving.load_model(enc_file, safe_mode=True).get_weights()
    assert all(np.array_equal(a, b) for a, b in zip(weights, after))  # incl. BN statistics
    again = FeatureCache(tmp_path / "cache")
    r2 = run_transfer("depth_zbuffer", {"normals": trained["normals"]}, split_records, again,
                      image_size=32, steps=4, batch_size=4)
    assert again.computed == 0  # reused
    np.testing.assert_allclose(r2.losses, r.losses, rtol=1e-5)
    second = run_transfer("depth_zbuffer", {"normals": trained["normals"],
                                            "edges": trained["edges"]}, split_records, again,
                          image_size=32, steps=4, batch_size=4)
    assert again.computed == 2 and second.sources == ("normals", "edges")  # edges' codes only


def test_cache_is_invalidated_when_the_encoder_changes(trained, split_records, tmp_path):
    cache = FeatureCache(tmp_path / "cache")
    enc = trained["edges"] / "encoder.keras"
    first = cache.features(enc, split_records, "test", 32)
    key = cache.key(enc, split_records, "test", 32)
    model = keras.saving.load_model(enc, safe_mode=True)
    model.set_weights([w + 0.5 for w in model.get_weights()])
    changed = tmp_path / "changed" / "encoder.keras"
    changed.parent.mkdir()
    model.save(changed)
    assert cache.key(changed, split_records, "test", 32) != key
    second = cache.features(changed, split_records, "test", 32)
    assert cache.computed == 2 and not np.allclose(first, second)


def test_grid_is_resumable_sharded_and_feeds_the_taxonomy(trained, split_records, tmp_path):
    from taskonomy_tf.taxonomy import tables_from_losses
    from taskonomy_tf.transfer.grid import first_order_jobs, run_grid, shard, write_losses_table

    jobs = first_order_jobs(["normals", "edges"])
    assert len(jobs) == 2 * 3  # self, random and the other task, per target
    parts = [shard(jobs, i, 3) for i in range(3)]
    assert sorted(j.name for p in parts for j in p) == sorted(j.name for j in jobs)
    assert len({j.name for p in parts for j in p}) == len(jobs)  # disjoint
    opts = dict(image_size=32, steps=2, batch_size=4, progress=False)
    ran = run_grid(parts[0], trained, split_records, tmp_path, **opts)  # "killed" after a part
    assert len(ran) == 2
    ran = run_grid(jobs, trained, split_records, tmp_path, **opts)
    assert {j.name for j in ran} == {j.name for p in parts[1:] for j in p}  # none run twice
    assert run_grid(jobs, trained, split_records, tmp_path, **opts) == []
    table = write_losses_table(jobs, tmp_path)
    aff = tables_from_losses(table)["affinities"]
    for target in ("normals", "edges"):
        values = [r.value for r in aff.for_target(target)]
        assert len(values) == 3 and sum(values) == pytest.approx(1.0)
