"""Estimators against values derived independently of their implementations."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import multivariate_normal

from taskonomy_tf.estimate import (
    discretise,
    estimate_table,
    estimator_labels,
    hscore,
    logme,
    logme_parameters,
    ranking_agreement,
    rdm,
    rsa,
)


def _direct_evidence(f, y, alpha, beta):
    """log N(y; 0, I/beta + F F^T/alpha): the marginal likelihood, written out."""
    cov = np.eye(len(f)) / beta + f @ f.T / alpha
    return multivariate_normal(np.zeros(len(f)), cov).logpdf(y)


@pytest.mark.parametrize("n,d", [(60, 5), (20, 40)])  # more examples than features, and fewer
def test_logme_is_the_maximised_marginal_likelihood(n, d):
    rng = np.random.default_rng(n)
    f = rng.normal(size=(n, d))
    y = f @ rng.normal(size=d) + 0.3 * rng.normal(size=n)
    value, [(alpha, beta)] = logme_parameters(f, y, regression=True)
    # the value is the evidence at the returned precisions, per example
    assert value == pytest.approx(_direct_evidence(f, y, alpha, beta) / n, rel=1e-6)
    # and no nearby (alpha, beta) has a higher evidence: a maximum
    best = _direct_evidence(f, y, alpha, beta)
    for da in (0.8, 1.25):
        for db in (0.8, 1.25):
            assert _direct_evidence(f, y, alpha * da, beta * db) <= best + 1e-6


def test_logme_known_case_orthonormal_features():
    # orthogonal features, y = 2 x one column + noise: the maximum found by a
    # brute-force grid over (alpha, beta) of the written-out evidence
    rng = np.random.default_rng(1)
    q, _ = np.linalg.qr(rng.normal(size=(30, 3)))
    f = q * np.sqrt(30)
    y = 2.0 * f[:, 0] + 0.5 * rng.normal(size=30)
    value = logme(f, y, regression=True)
    grid = max(_direct_evidence(f, y, a, b) for a in np.geomspace(1e-2, 1e2, 60)
               for b in np.geomspace(1e-2, 1e2, 60)) / 30
    assert value >= grid - 1e-3 and value == pytest.approx(grid, abs=0.02)


def test_logme_classification_prefers_informative_features():
    rng = np.random.default_rng(2)
    y = rng.integers(0, 3, 300)
    good = np.eye(3)[y] + 0.1 * rng.normal(size=(300, 3))
    bad = rng.normal(size=(300, 3))
    assert logme(good, y) > logme(bad, y)
    with pytest.raises(ValueError, match="integers"):
        logme(good, y.astype(float))


def test_hscore_bounds():
    rng = np.random.default_rng(4)
    y = rng.integers(0, 4, 400)
    assert hscore(np.eye(4)[y], y) == pytest.approx(3.0)  # features = class indicators
    assert hscore(rng.normal(size=(400, 4)), y) == pytest.approx(0.0, abs=0.1)


def test_rsa_identical_monotone_and_unrelated():
    rng = np.random.default_rng(5)
    a = rng.normal(size=(40, 16))
    assert rsa(a, a) == pytest.approx(1.0)
    assert rsa(a, 3 * a + 1) == pytest.approx(1.0)  # correlation distance ignores scale/shift
    assert abs(rsa(a, rng.normal(size=(40, 16)))) < 0.15
    d = rdm(a)
    assert np.allclose(np.diag(d), 0) and np.allclose(d, d.T)


def test_dense_labels_pool_only_valid_pixels():
    from taskonomy_tf.tasks import get_task

    y = np.zeros((2, 8, 8, 1))
    y[:, :4, :4] = 1.0  # top-left cell is 1
    w = np.ones((2, 8, 8))
    w[:, :2, :2] = 0  # masked pixels inside the top-left cell do not count
    y[:, :2, :2] = 99.0
    cols, regression = estimator_labels(get_task("depth_zbuffer"), y, w, grid=2)
    assert regression and cols.shape == (2, 4)
    np.testing.assert_allclose(cols[0], [1, 0, 0, 0])
    classes, regression = estimator_labels(get_task("class_scene"), np.eye(5)[[3, 1]], None)
    assert not regression and list(classes) == [3, 1]
    with pytest.raises(ValueError, match="no per-image labels"):
        estimator_labels(get_task("segment_unsup2d"), y, w)
    assert sorted(np.bincount(discretise(np.arange(100.0)[:, None]))) == [10] * 10


def test_estimate_table_and_agreement_with_known_ranking():
    from taskonomy_tf.taxonomy.table import Transfer, TransferTable

    rng = np.random.default_rng(6)
    y = rng.normal(size=200)
    codes = {"t": rng.normal(size=(200, 4)),
             "good": np.c_[y + 0.1 * rng.normal(size=200), rng.normal(size=(200, 3))],
             "mid": np.c_[y + 1.0 * rng.normal(size=200), rng.normal(size=(200, 3))],
             "bad": rng.normal(size=(200, 4))}
    table = estimate_table("logme", codes, {"t": (y[:, None], True)})
    values = {r.sources[0]: r.value for r in table.for_target("t")}
    assert values["good"] == 1.0 and values["good"] > values["mid"] > values["bad"]
    trained = TransferTable([Transfer((s,), "t", v) for s, v in
                             {"good": 0.5, "mid": 0.3, "bad": 0.1}.items()], ["t"])
    agree = ranking_agreement(table, trained)["t"]
    assert agree["spearman"] == pytest.approx(1.0) and agree["top1"] and agree["top3"]


def test_codes_and_labels_are_joined_by_record_id(fake_raw, models, tmp_path):
    """Several shards per split (the cache reads them one after another,
    make_dataset interleaves them): every code is the encoder applied to the
    image whose id it carries, and every label row is that image's label."""
    import keras

    from taskonomy_tf.data import make_dataset
    from taskonomy_tf.tasks import get_task
    from taskonomy_tf.training.evaluate import split_arrays
    from taskonomy_tf.transfer.estimate_inputs import gather
    from tfrecords_tools.convert import convert

    rec = tmp_path / "rec"
    convert(str(fake_raw), str(rec), shard_size=2, progress=False)
    assert len(list(rec.glob("all-*.tfrecord"))) >= 3
    tasks = ["normals", "edges"]
    got = gather(tasks, models, rec, "all", None, 32, tmp_path / "cache")
    codes, labels, skipped = got.codes, got.labels, got.skipped
    assert not skipped and set(labels) == set(tasks)
    # the reference: images, targets and ids straight from the records, in
    # make_dataset's (interleaved) order
    ds = make_dataset(rec, tasks[1], split="all", batch_size=5, image_size=32, shuffle=False,
                      augment=False, with_ids=True)
    y, w, x, ids = split_arrays(ds, tasks[1], images=True)
    from taskonomy_tf.transfer.cache import FeatureCache

    _, code_ids = FeatureCache(tmp_path / "cache").features(
        models / tasks[0] / "encoder.keras", rec, "all", 32, None, with_ids=True)
    assert sorted(code_ids) == sorted(ids) and list(code_ids) != list(ids)  # orders differ
    row = {i: k for k, i in enumerate(code_ids)}
    order = np.array([row[i] for i in ids])
    encoder = keras.saving.load_model(models / tasks[0] / "encoder.keras", safe_mode=True)
    expected = np.asarray(encoder(x, training=False))
    np.testing.assert_allclose(codes[tasks[0]][order], expected, atol=2e-2, rtol=2e-2)
    want, _ = estimator_labels(get_task(tasks[1]), y, w)
    np.testing.assert_allclose(labels[tasks[1]][0][order], want, rtol=1e-6)


@pytest.mark.parametrize("probe", ["ridge", "knn"])
def test_probes_score_held_out_groups(probe):
    """A code that determines the label scores near 1; noise scores near 0 or
    below; a code that only names each group (whose label is constant within
    it) predicts nothing about a held-out group, however well it would
    memorise images of a group it has seen."""
    from taskonomy_tf.estimate.probe import knn_probe, ridge_probe

    fn = {"ridge": ridge_probe, "knn": knn_probe}[probe]
    rng = np.random.default_rng(3)
    n, groups = 240, np.repeat(np.arange(24), 10)
    x = rng.normal(size=(n, 3))
    y = x @ np.array([[1.0], [-0.5], [0.2]])
    signal = np.concatenate([x, 0.01 * rng.normal(size=(n, 5))], 1)
    assert fn(signal, y, True, groups) > 0.8
    assert fn(rng.normal(size=(n, 8)), y, True, groups) < 0.1
    name = np.eye(24)[groups] + 0.01 * rng.normal(size=(n, 24))
    per_group = rng.normal(size=24)[groups][:, None]
    assert fn(name, per_group, True, groups) < 0.1  # held-out groups: nothing to recall
    assert fn(name, per_group, True, np.arange(n)) > 0.8  # images held out alone: recalled
    classes = (x[:, 0] > 0).astype(int)
    assert fn(signal, classes, False, groups) > 0.3  # one-hot columns of class ids


def test_the_ridge_ranking_follows_what_the_codes_carry():
    rng = np.random.default_rng(4)
    n = 200
    z = rng.normal(size=(n, 4))
    codes = {"a": np.concatenate([z, rng.normal(size=(n, 4))], 1),          # all of it
             "b": np.concatenate([z[:, :2], rng.normal(size=(n, 6))], 1),   # half of it
             "c": rng.normal(size=(n, 8)),                                  # none
             "t": z}
    labels = {"t": (z @ np.ones((4, 2)) + 0.1 * rng.normal(size=(n, 2)), True)}
    table = estimate_table("ridge", codes, labels, np.repeat(np.arange(20), 10))
    ranked = sorted((r for r in table.records if r.target == "t"), key=lambda r: -r.value)
    assert [r.sources[0] for r in ranked] == ["a", "b", "c"]


def test_the_local_probe_sees_fine_structure_a_pooled_label_loses():
    """A target that is a fixed 4 x 4 pattern inside every cell, scaled by one
    code channel: pooled to a coarse grid the pattern averages away, per
    cell it is a linear function of the code. Noise codes score near 0."""
    from taskonomy_tf.estimate.probe import local_probe

    rng = np.random.default_rng(7)
    n, c = 60, 8
    codes = rng.normal(size=(n, c, c, 8))
    pattern = rng.normal(size=(4, 4))
    pattern -= pattern.mean()  # zero mean in a cell: invisible at the cell's scale
    y = (codes[..., 0][:, :, None, :, None] * pattern[None, None, :, None, :]).reshape(
        n, 4 * c, 4 * c, 1)
    y = y + 0.05 * rng.normal(size=y.shape)
    w = np.ones(y.shape[:3])
    groups = np.repeat(np.arange(12), 5)
    assert local_probe(codes, y, w, groups) > 0.9
    assert local_probe(rng.normal(size=codes.shape), y, w, groups) < 0.05
    w[:, :8] = 0  # unlabelled pixels do not count
    assert local_probe(codes, y, w, groups) > 0.9
    classes = (y > 0).astype(np.int64)
    assert local_probe(codes, classes, np.ones(y.shape[:3]), groups, classes=2) > 0.3


def test_estimate_cli_runs_every_task_with_a_network(models, split_records, tmp_path, capsys):
    """``--tasks all`` (the whole-graph configuration's tasks) scores the
    tasks the records supply and ``--models`` holds a finished network of,
    and names the ones it skips."""
    from taskonomy_tf.estimate.__main__ import main
    from taskonomy_tf.taxonomy import load_table

    out = tmp_path / "est.json"
    assert main(["--method", "rsa", "--tasks", "all", "--models", str(models), "--data",
                 str(split_records), "--split", "test", "--images", "8", "--image-size", "32",
                 "--cache", str(tmp_path / "cache"), "--out", str(out)]) == 0
    table = load_table(out, max_value=None)
    assert set(table.targets) == {"normals", "edges", "depth_zbuffer"}
    assert {r.sources[0] for r in table.records} == {"normals", "edges", "depth_zbuffer"}
    printed = capsys.readouterr().out
    assert "skipped autoencoding: no finished network" in printed
    assert table.meta["method"] == "rsa"
