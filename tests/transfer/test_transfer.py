"""Transfer function and feature cache."""

from __future__ import annotations

import numpy as np
import pytest

import keras
from taskonomy_tf.transfer import FeatureCache, build_transfer_model, run_transfer


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


def test_pixels_baseline_trains_its_side_encoder(split_records):
    from taskonomy_tf.transfer import pixels_transfer

    m = build_transfer_model("normals", 1, 2, pixels_image_size=32)
    assert m.input_shape == (None, 32, 32, 3)
    assert m.get_layer("side_down").output.shape[1:] == (2, 2, 8)
    r = pixels_transfer("normals", split_records, image_size=32, steps=2, batch_size=4)
    assert r.losses.shape == (9,) and np.all(np.isfinite(r.losses)) and r.sources == ("pixels",)


def test_beam_follows_the_released_widths():
    from taskonomy_tf.transfer import beam_jobs, rank_sources

    rng = np.random.default_rng(0)
    # source k is worse than source k-1 on every image: the ranking is known
    losses = {f"s{k}": 0.1 * k + rng.uniform(0, 0.01, 50) for k in range(8)}
    shuffled = dict(sorted(losses.items(), key=lambda kv: rng.uniform()))
    ranked = rank_sources(shuffled)
    assert ranked == [f"s{k}" for k in range(8)]
    from taskonomy_tf.taxonomy import ahp, win_rates

    assert rank_sources(shuffled, lambda m: ahp(win_rates(m))) == ranked
    jobs = beam_jobs("t", ranked, max_order=6)
    by_order = {k: [j.sources for j in jobs if len(j.sources) == k] for k in range(2, 7)}
    assert [len(by_order[k]) for k in range(2, 7)] == [10, 10, 15, 1, 1]  # C(5,2) C(5,3) C(6,4)
    assert {s for c in by_order[2] + by_order[3] for s in c} == {f"s{k}" for k in range(5)}
    assert {s for c in by_order[4] for s in c} == {f"s{k}" for k in range(6)}
    assert by_order[5] == [tuple(f"s{k}" for k in range(5))]
    assert beam_jobs("t", ranked[:3], max_order=4) == [j for j in beam_jobs("t", ranked[:3], 3)]


def test_jobs_are_resumable_and_sharded(trained, split_records, tmp_path):
    from taskonomy_tf.transfer.grid import first_order_jobs, shard
    from taskonomy_tf.transfer.schedule import run_jobs

    jobs = [j for j in first_order_jobs(["normals", "edges"]) if j.kind not in ("pixels",
                                                                                 "random")]
    assert len(jobs) == 2 * 2  # self and the other task, per target
    parts = [shard(jobs, i, 3) for i in range(3)]
    assert sorted(j.name for p in parts for j in p) == sorted(j.name for j in jobs)
    assert len({j.name for p in parts for j in p}) == len(jobs)  # disjoint
    opts = dict(image_size=32, steps=2, batch_size=4, progress=False)
    ran = run_jobs(parts[0], trained, split_records, tmp_path, **opts)  # "killed" after a part
    assert len(ran) == 2
    ran = run_jobs(jobs, trained, split_records, tmp_path, **opts)
    assert {j.name for j in ran} == {j.name for p in parts[1:] for j in p}  # none run twice
    assert run_jobs(jobs, trained, split_records, tmp_path, **opts) == []


def test_grid_with_second_order_feeds_the_taxonomy(grid_run, models, split_records):
    from taskonomy_tf.taxonomy import tables_from_losses
    from taskonomy_tf.transfer import run_grid

    out, result = grid_run
    assert result.pending == 0 and len(result.ran) == 2 * 4  # no pair: one other source each
    aff = tables_from_losses(result.table)["affinities"]
    for target in ("normals", "edges"):
        values = [r.value for r in aff.for_target(target)]
        assert len(values) == 3 and sum(values) == pytest.approx(1.0)  # self, random, other
    opts = dict(n_images=8, steps=2, progress=False)
    again = run_grid(["normals", "edges"], models, split_records, out, max_order=2, **opts)
    assert again.ran == [] and again.table == result.table
    higher = run_grid(["normals", "edges"], models, split_records, out, max_order=3, **opts)
    assert higher.ran == [] and higher.pending == 0  # raising the order is allowed
    with pytest.raises(ValueError, match="other settings"):
        run_grid(["normals", "edges"], models, split_records, out, max_order=2,
                 **{**opts, "steps": 3})


def test_prefilter_keeps_the_estimators_top_sources(tmp_path):
    import json

    from taskonomy_tf.transfer.grid import first_order_jobs
    from taskonomy_tf.transfer.schedule import _apply_prefilter

    jobs = first_order_jobs(["normals", "edges", "depth_zbuffer"])
    kept = _apply_prefilter(jobs, {"normals": ["edges"]}, tmp_path)
    names = {j.name for j in kept}
    assert "normals__edges" in names and "normals__depth_zbuffer" not in names
    assert {"normals__self", "normals__pixels", "normals__random"} <= names  # baselines stay
    assert len(kept) == len(jobs) - 1  # other targets untouched
    report = json.loads((tmp_path / "prefilter.json").read_text())
    assert report == {"normals": {"kept": ["edges"], "skipped": ["depth_zbuffer"]}}
