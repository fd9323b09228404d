"""Transfer function and feature cache."""

from __future__ import annotations

from pathlib import Path

import keras
import numpy as np
import pytest

from taskonomy_tf.transfer import FeatureCache, run_transfer


def test_transfer_leaves_encoders_untouched_and_reuses_the_cache(trained, split_records,
                                                                 tmp_path):
    enc_file = trained["normals"] / "encoder.keras"
    before = enc_file.read_bytes()
    weights = [w.copy() for w in keras.saving.load_model(enc_file, safe_mode=True).get_weights()]
    cache = FeatureCache(tmp_path / "cache")
    r = run_transfer("depth_zbuffer", {"normals": trained["normals"]}, split_records, cache,
                     image_size=32, n_images=8, steps=4, batch_size=4)
    assert r.losses.shape == (9,) and np.all(np.isfinite(r.losses)) and r.sources == ("normals",)
    assert cache.computed == 2  # train and test codes, once each
    assert enc_file.read_bytes() == before
    after = keras.saving.load_model(enc_file, safe_mode=True).get_weights()
    assert all(np.array_equal(a, b) for a, b in zip(weights, after))  # incl. BN statistics
    again = FeatureCache(tmp_path / "cache")
    r2 = run_transfer("depth_zbuffer", {"normals": trained["normals"]}, split_records, again,
                      image_size=32, n_images=8, steps=4, batch_size=4)
    assert again.computed == 0  # reused
    np.testing.assert_allclose(r2.losses, r.losses, rtol=1e-5)
    second = run_transfer("depth_zbuffer", {"normals": trained["normals"],
                                            "edges": trained["edges"]}, split_records, again,
                          image_size=32, n_images=8, steps=4, batch_size=4)
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
    from taskonomy_tf.transfer import build_readouts, pixels_transfer, plan_heads

    m = build_readouts("normals", plan_heads([("pixels",)], [0]), [], 32)
    assert m.input["images"].shape[1:] == (1, 32, 32, 3) and "codes" not in m.input
    assert m.get_layer("pixels_down").output.shape[1:] == (8, 8, 8)  # the code grid
    r = pixels_transfer("normals", split_records, image_size=32, n_images=8, steps=2,
                        batch_size=4)
    assert r.losses.shape == (9,) and np.all(np.isfinite(r.losses)) and r.sources == ("pixels",)


def test_beam_follows_the_released_widths():
    from taskonomy_tf.transfer import beam_candidates, rank_sources

    rng = np.random.default_rng(0)
    # source k is worse than source k-1 on every image: the ranking is known
    losses = {f"s{k}": 0.1 * k + rng.uniform(0, 0.01, 50) for k in range(8)}
    shuffled = dict(sorted(losses.items(), key=lambda kv: rng.uniform()))
    ranked = rank_sources(shuffled)
    assert ranked == [f"s{k}" for k in range(8)]
    from taskonomy_tf.taxonomy import ahp, win_rates

    assert rank_sources(shuffled, lambda m: ahp(win_rates(m))) == ranked
    by_order = {k: beam_candidates(ranked, k) for k in range(2, 7)}
    assert [len(by_order[k]) for k in range(2, 7)] == [10, 10, 15, 1, 1]  # C(5,2) C(5,3) C(6,4)
    assert {s for c in by_order[2] + by_order[3] for s in c} == {f"s{k}" for k in range(5)}
    assert {s for c in by_order[4] for s in c} == {f"s{k}" for k in range(6)}
    assert by_order[5] == [tuple(f"s{k}" for k in range(5))]
    assert beam_candidates(ranked[:3], 4) == []


def test_jobs_are_resumable_and_sharded(trained, split_records, tmp_path):
    from taskonomy_tf.transfer.grid import first_order_jobs, random_encoder, shard
    from taskonomy_tf.transfer.schedule import run_jobs

    tasks = ["normals", "edges", "depth_zbuffer"]
    jobs = first_order_jobs(tasks)
    assert [j.name for j in jobs] == [f"{t}__order1" for t in tasks]  # one job per target
    parts = [shard(jobs, i, 2) for i in range(2)]
    assert sorted(j.name for p in parts for j in p) == sorted(j.name for j in jobs)
    assert len({j.name for p in parts for j in p}) == len(jobs)  # disjoint
    workdirs = {**trained, "random": random_encoder(tmp_path, 32)}
    opts = dict(image_size=32, n_images=8, steps=2, batch_size=4, seeds=[0, 1],
                progress=False)
    ran = run_jobs(parts[0], tasks, workdirs, split_records, tmp_path, **opts)  # "killed"
    assert len(ran) == 2
    ran = run_jobs(jobs, tasks, workdirs, split_records, tmp_path, **opts)
    assert {j.name for j in ran} == {j.name for j in parts[1]}  # none run twice
    assert run_jobs(jobs, tasks, workdirs, split_records, tmp_path, **opts) == []


def test_grid_with_second_order_feeds_the_taxonomy(grid_run, models, split_records):
    import csv

    from taskonomy_tf.taxonomy import tables_from_losses
    from taskonomy_tf.transfer import run_grid

    tasks = ["normals", "edges", "depth_zbuffer"]
    out, result = grid_run
    assert result.pending == 0 and len(result.ran) == 3 * 2  # orders 1 and 2 per target
    aff = tables_from_losses(result.table)["affinities"]
    for target in tasks:
        records = aff.for_target(target)
        assert sum(r.value for r in records) == pytest.approx(1.0)
        # self, random, the 2 other tasks and their pair; pixels and constant stay out
        assert sorted(len(r.sources) for r in records) == [1, 1, 1, 1, 2]
    with open(result.table) as f:
        rows = list(csv.DictReader(f))
    assert all(r["image"].startswith("fakebldg1/") for r in rows)  # test ids, by record
    seeds = {(r["candidate"], r["seed"]) for r in rows if r["target"] == "normals"}
    assert {s for c, s in seeds if c == "transfer"} == {"0", "1"}  # two replicates
    assert {s for c, s in seeds if c in ("self", "constant")} == {""}  # scored once
    from taskonomy_tf.taxonomy.ahp import ahp_scores

    opts = dict(n_images=8, steps=2, seeds=[0, 1], progress=False, score=ahp_scores)
    again = run_grid(tasks, models, split_records, out, max_order=2, **opts)
    assert again.ran == [] and again.table == result.table
    with pytest.raises(ValueError, match="other settings"):
        run_grid(tasks, models, split_records, out, max_order=2, **{**opts, "steps": 3})


def test_a_wider_beam_or_another_ranking_redoes_the_higher_orders(grid_run, models,
                                                                  split_records, tmp_path):
    """The beam and the ranking decide an order-k job's candidates: a finished
    grid asked for another beam width redoes its order-2 jobs (they were
    reused), and only those."""
    import shutil

    from taskonomy_tf.transfer import run_grid
    from taskonomy_tf.transfer.grid import BEAM, Job, job_key

    assert job_key("k", Job("a", 1), {2: 2}) == job_key("k", Job("a", 1), {2: 5}) == "k"
    assert job_key("k", Job("a", 2), {2: 2}) != job_key("k", Job("a", 2), {2: 3})
    assert job_key("k", Job("a", 2), None) == job_key("k", Job("a", 2), dict(BEAM))
    out = tmp_path / "grid"
    shutil.copytree(grid_run[0], out)
    tasks = ["normals", "edges", "depth_zbuffer"]
    from taskonomy_tf.taxonomy.ahp import ahp_scores

    opts = dict(n_images=8, steps=2, seeds=[0, 1], progress=False, score=ahp_scores)
    wider = {2: BEAM[2] + 1}
    again = run_grid(tasks, models, split_records, out, max_order=2, beam=wider, **opts)
    assert sorted(j.name for j in again.ran) == sorted(f"{t}__order2" for t in tasks)
    assert again.table is not None
    assert run_grid(tasks, models, split_records, out, max_order=2, beam=wider,
                    **opts).ran == []


def test_the_grid_key_sees_the_code_not_its_prose(tmp_path):
    """code_fingerprint changes when what runs changes, not for a docstring
    or a comment."""
    import shutil

    from taskonomy_tf.transfer.grid import code_fingerprint

    root = tmp_path / "pkg"
    shutil.copytree(Path(__file__).resolve().parents[2] / "taskonomy_tf" / "transfer",
                    root / "transfer")
    before = code_fingerprint(str(root), ("transfer",))
    runner = root / "transfer" / "runner.py"
    text = runner.read_text()
    runner.write_text(text.replace('"""', '"""Reworded. ', 1) + "\n# a comment\n")
    assert code_fingerprint.__wrapped__(str(root), ("transfer",)) == before
    runner.write_text(text + "\nEXTRA = 1\n")
    assert code_fingerprint.__wrapped__(str(root), ("transfer",)) != before
    assert len(code_fingerprint()) == 24


def test_prefilter_keeps_the_estimators_top_sources(tmp_path):
    import json

    from taskonomy_tf.transfer.grid import Job, job_candidates
    from taskonomy_tf.transfer.schedule import _prefilter_report

    tasks = ["normals", "edges", "depth_zbuffer"]
    keep = {"normals": ["edges"]}
    assert job_candidates(Job("normals", 1), tasks, tmp_path, prefilter=keep) == [
        ("edges",), ("random",), ("pixels",)]  # the baselines stay
    assert job_candidates(Job("edges", 1), tasks, tmp_path, prefilter=keep) == [
        ("normals",), ("depth_zbuffer",), ("random",), ("pixels",)]  # other targets untouched
    _prefilter_report(tasks, keep, tmp_path)
    report = json.loads((tmp_path / "prefilter.json").read_text())
    assert report == {"normals": {"kept": ["edges"], "skipped": ["depth_zbuffer"]}}


def test_prefilter_sources_rank_by_estimate_and_leave_uncompletable_targets_whole():
    from taskonomy_tf.taxonomy.table import Transfer, TransferTable
    from taskonomy_tf.transfer.schedule import prefilter_sources

    scores = {"t": {"a": 0.2, "b": 0.9, "c": 0.5}, "u": {"a": 1.0, "b": 0.1, "c": 0.1}}
    records = [Transfer((s,), t, v) for t, row in scores.items() for s, v in row.items()]
    plain = TransferTable(records, ["t", "u"], "estimate_rsa")
    assert prefilter_sources(plain, 2) == {"t": ["b", "c"], "u": ["a", "b"]}  # ties by name
    assert prefilter_sources(plain, 2, complete=True) == prefilter_sources(plain, 2)
    # a readout estimate's tournament covers t only: u could not be completed,
    # so with completion on it trains every source (it is left out of the filter)
    readout = TransferTable(records, ["t", "u"], "estimate_readout",
                            {"tournament": {"t": {"self": 0.4, "a": 0.1, "b": 0.3, "c": 0.2}}})
    assert prefilter_sources(readout, 1, complete=True) == {"t": ["b"]}
    assert prefilter_sources(readout, 1) == {"t": ["b"], "u": ["a"]}


def test_a_grid_redoes_jobs_whose_inputs_changed(trained, split_records, tmp_path):
    """Re-running into the same --out after retraining a network redoes every
    job that used it (it was reused as if nothing had changed); an unchanged
    grid runs nothing."""
    from taskonomy_tf.training import TrainConfig, train_and_evaluate
    from taskonomy_tf.transfer import run_grid
    from taskonomy_tf.transfer.grid import read_job

    models = tmp_path / "models"
    models.mkdir()
    for task in ("normals", "edges"):
        (models / task).symlink_to(trained[task], target_is_directory=True)
    opts = dict(n_images=8, steps=2, seeds=[0], progress=False)
    first = run_grid(["normals", "edges"], models, split_records, tmp_path / "g", **opts)
    assert len(first.ran) == 2
    assert run_grid(["normals", "edges"], models, split_records, tmp_path / "g", **opts).ran == []
    before = read_job(tmp_path / "g", first.ran[0])
    # edges retrained (another seed): its encoder file changes
    retrained = tmp_path / "edges2"
    train_and_evaluate(TrainConfig.of(task="edges", data=str(split_records), image_size=32,
                                   batch_size=4, steps=2, seed=7, verbose=0, cache=False),
                       retrained)
    (models / "edges").unlink()
    (models / "edges").symlink_to(retrained, target_is_directory=True)
    again = run_grid(["normals", "edges"], models, split_records, tmp_path / "g", **opts)
    assert sorted(j.name for j in again.ran) == sorted(j.name for j in first.ran)
    after = read_job(tmp_path / "g", first.ran[0])
    assert after["key"] != before["key"] and again.table is not None


def test_transfer_results_are_joined_by_record_id(trained, tmp_path):
    """Room layout has no label for a view without a bounding box: its labels
    skip records that the code cache holds. Codes must be picked by the
    labels' ids (they were joined by position), the per-image losses carry
    the ids, and a code taken from the cache equals the encoder run on that
    very labelled image."""
    import json

    import keras

    from taskonomy_tf.transfer import FeatureCache
    from taskonomy_tf.transfer.runner import _arrays, _codes, run_candidates
    from tfrecords_tools.convert import convert
    from tfrecords_tools.fake import write_fake_dataset

    raw = write_fake_dataset(tmp_path / "raw", buildings=2, points=3, views=3, size=32)
    dropped = []
    for b in ("fakebldg0", "fakebldg1"):
        f = raw / b / "point_info" / "point_0_view_1_domain_point_info.json"
        info = json.loads(f.read_text())
        del info["bounding_box_ranges"]
        f.write_text(json.dumps(info))
        dropped.append(f"{b}/0/1")
    csv = tmp_path / "split.csv"
    csv.write_text("id,train,val,test\nfakebldg0,1,0,0\nfakebldg1,0,0,1\n")
    for split in ("train", "test"):
        convert(str(raw), str(tmp_path / "rec"), split_csv=str(csv), split=split,
                progress=False)
    rec, cache = tmp_path / "rec", FeatureCache(tmp_path / "cache")
    workdirs = {"edges": trained["edges"]}

    y, w, x, ids = _arrays(rec, "room_layout", "test", 32, None, True)
    assert len(ids) == 8 and dropped[1] not in ids and len(set(ids)) == 8
    codes = _codes(cache, workdirs, ["edges"], rec, "test", 32, None, ids)[:, 0]
    encoder = keras.saving.load_model(trained["edges"] / "encoder.keras", safe_mode=True)
    np.testing.assert_allclose(codes, np.asarray(encoder(x, training=False)), atol=2e-2)

    out = run_candidates("room_layout", [("edges",)], workdirs, rec, cache, image_size=32,
                         n_images=4, steps=2, batch_size=2, references=False)
    assert out.images == list(ids) and out[("edges",)].shape == (1, 8)
    with pytest.raises(ValueError, match="no code"):
        _codes(cache, workdirs, ["edges"], rec, "test", 32, None, np.array(["elsewhere/1/1"]))


def test_make_dataset_carries_record_ids(split_records):
    from taskonomy_tf.data import make_dataset
    from taskonomy_tf.data.records import find_shards
    from taskonomy_tf.data.views import read_index

    expected = {f"{r['building']}/{r['point']}/{r['view']}"
                for f in find_shards(split_records, "test") for r in read_index(f)}
    ds = make_dataset(split_records, "edges", split="test", batch_size=4, image_size=32,
                      shuffle=True, seed=3, with_ids=True)
    ids = [i.decode() for _, _, _, b in ds for i in np.asarray(b)]
    assert sorted(ids) == sorted(expected) and len(ids) == len(expected)
    ego = make_dataset(split_records, "egomotion", split="test", batch_size=4, image_size=32,
                       with_ids=True)
    for _, _, _, b in ego:
        for t in np.asarray(b):
            parts = t.decode().split("+")
            assert len(parts) == 3 and len({p.rsplit("/", 1)[0] for p in parts}) == 1


def test_random_baseline_has_the_sources_architecture(trained, tmp_path):
    """The paper's random baseline is the sources' network, untrained (it was
    always the small encoder)."""
    import keras

    from taskonomy_tf.models import build_encoder
    from taskonomy_tf.transfer.grid import random_encoder
    from taskonomy_tf.transfer.schedule import model_architecture

    assert model_architecture(trained["edges"]) == "small"
    for arch in ("small", "resnet50"):
        enc = keras.saving.load_model(random_encoder(tmp_path, 64, 0, arch) / "encoder.keras",
                                      safe_mode=True, compile=False)
        assert enc.count_params() == build_encoder(arch, 64).count_params()
    assert (build_encoder("resnet50", 64).count_params()
            != build_encoder("small", 64).count_params())


def test_random_encoders_created_together_are_one_file(tmp_path, monkeypatch):
    """Two processes that create the random encoder at once (grid shards on a
    fresh shared folder) keep the first one saved: its file, hence the grid
    key that hashes it, stays what the first process saw."""
    from taskonomy_tf import models
    from taskonomy_tf.fileio import sha256_file
    from taskonomy_tf.transfer.grid import random_encoder

    real, first = models.build_encoder, {}

    def build(architecture, image_size):
        if not first:  # another process saves its encoder while this one builds
            first["started"] = True
            path = random_encoder(tmp_path, 16, 0) / "encoder.keras"
            first["inode"], first["sha"] = path.stat().st_ino, sha256_file(path)
        return real(architecture, image_size)

    monkeypatch.setattr(models, "build_encoder", build)
    path = random_encoder(tmp_path, 16, 0) / "encoder.keras"
    assert (path.stat().st_ino, sha256_file(path)) == (first["inode"], first["sha"])
    assert [p.name for p in path.parent.iterdir()] == ["encoder.keras"]  # no temporary left


# The CPU-sized whole graph's first-order jobs, seconds side by side
# (docs/performance.md, December 5: the fully connected, segmentation and
# multi-view jobs from that day's first attempt, the dense ones from the run
# before, whose code had not changed; ``schedule.COST_*`` were fitted to them)
MEASURED_JOB_SECONDS = {
    "egomotion": 331, "segment_unsup2d": 320, "segment_unsup25d": 314,
    "segment_semantic": 299, "point_matching": 264, "nonfixated_pose": 225,
    "fixated_pose": 220, "class_object": 107, "normals": 104, "curvature": 103,
    "autoencoding": 102, "denoising": 101, "vanishing_points": 98, "edges": 96,
    "class_scene": 96, "reshading": 96, "depth_euclidean": 95, "keypoints2d": 94,
    "keypoints3d": 94, "room_layout": 89, "occlusion_edges": 72, "depth_zbuffer": 72,
}


def test_side_by_side_jobs_start_with_the_longest():
    from scipy.stats import spearmanr

    from taskonomy_tf.tasks.catalog import CATALOG
    from taskonomy_tf.transfer.grid import first_order_jobs, targets_of
    from taskonomy_tf.transfer.schedule import job_seconds, longest_first

    tasks = [spec.name for spec in CATALOG]
    jobs = first_order_jobs(tasks)
    ordered = [j.target for j in longest_first(jobs, 64)]
    assert sorted(ordered) == sorted(targets_of(tasks)) == sorted(MEASURED_JOB_SECONDS)
    # the seven measured at 220 s or more (the rest at 72-107 s) start first
    long = {t for t, s in MEASURED_JOB_SECONDS.items() if s >= 200}
    assert len(long) == 7 and set(ordered[:7]) == long
    estimated = [job_seconds(t, 64) for t in MEASURED_JOB_SECONDS]
    assert spearmanr(estimated, list(MEASURED_JOB_SECONDS.values())).statistic > 0.8
    # and in seconds, within a quarter of each long job's measured time
    for t in long:
        assert abs(job_seconds(t, 64) / MEASURED_JOB_SECONDS[t] - 1) < 0.25, t
