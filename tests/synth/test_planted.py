"""The planted taxonomy: labels are the functions of factors they claim to be,
and recovery scores a known table as it should."""

from __future__ import annotations

import csv

import numpy as np
import pytest
from PIL import Image

from taskonomy_tf.data.card import load_card
from taskonomy_tf.synth.planted import (
    GRADES,
    PlantedConfig,
    load_truth,
    planted_scores,
    recovery,
    write_planted,
)


def test_planted_scores_by_hand():
    s = planted_scores(["disk", "wave"])
    assert s["disk_full"] == {"disk_one": 1 / 3, "disk_two": 2 / 3, "wave_one": 0.0,
                              "wave_two": 0.0, "wave_full": 0.0}
    assert s["disk_two"]["disk_full"] == 1.0 and s["disk_two"]["disk_one"] == 1 / 3
    assert s["disk_one"]["disk_two"] == s["disk_one"]["disk_full"] == 1.0  # a tie


@pytest.fixture(scope="module")
def planted(tmp_path_factory):
    cfg = PlantedConfig(samples=60, size=24, group_size=5, seed=3)
    return write_planted(tmp_path_factory.mktemp("planted"), cfg), cfg


def test_the_card_is_valid_and_splits_by_group(planted):
    folder, cfg = planted
    card = load_card(folder)
    assert [lab.name for lab in card.labels] == [f"{f}_{g}" for f in cfg.families
                                                 for g in GRADES]
    assert {lab.kind for lab in card.labels} == {"vector", "classes", "dense_classes",
                                                 "dense_regression"}
    rows = list(csv.DictReader(open(folder / "samples.csv")))
    assert len(rows) == 60
    split_of = {}
    for r in rows:
        assert split_of.setdefault(r["group"], r["split"]) == r["split"]
    assert set(split_of.values()) == {"train", "val", "test"}


def test_labels_are_graded_functions_of_their_family(planted):
    """The disk mask is exactly where the full disk map is nonzero (the full
    label determines the two label), and the one label (the position) is
    the mask's centroid."""
    folder, cfg = planted
    rows = list(csv.DictReader(open(folder / "samples.csv")))
    c = (np.arange(cfg.size) + 0.5) / cfg.size * 2 - 1
    for r in rows[:20]:
        mask = np.asarray(Image.open(folder / r["disk_two"]))
        full = np.asarray(Image.open(folder / r["disk_full"]))
        np.testing.assert_array_equal(mask.astype(bool), full > 0)
        # the grating's sign is the sign of its map (stored on [-1, 1] in 16 bits)
        wave = np.asarray(Image.open(folder / r["wave_full"])).astype(float) / 65535 * 2 - 1
        sign = np.asarray(Image.open(folder / r["wave_two"]))
        clear = np.abs(wave) > 1e-3
        np.testing.assert_array_equal(sign[clear].astype(bool), wave[clear] > 0)
        if mask.sum() > 20:
            ys, xs = np.nonzero(mask)
            cx, cy = (float(v) * 0.55 for v in r["disk_one"].split())
            assert abs(c[xs].mean() - cx) < 0.1 and abs(c[ys].mean() - cy) < 0.1


def test_the_generator_is_deterministic(planted, tmp_path):
    folder, cfg = planted
    again = write_planted(tmp_path / "again", cfg)
    for name in ("samples.csv", "dataset.json", "images/s00007.png", "labels/wave_full/s00011.png"):
        assert (again / name).read_bytes() == (folder / name).read_bytes()


def test_recovery_of_the_truth_and_of_noise(planted):
    folder, _ = planted
    truth = load_truth(folder)
    scores = truth["scores"]
    perfect = {t: {s: 0.01 + v for s, v in row.items()} for t, row in scores.items()}
    r = recovery(perfect, truth)
    assert r["mean_within_spearman"] == pytest.approx(1.0)
    # two strict targets per family (the one label's sources tie)
    assert len(r["within_spearman"]) == 2 * len(truth["families"])
    assert r["family_contrast"] > 30
    reversed_ = {t: {s: 1.01 - v for s, v in row.items()} for t, row in scores.items()}
    assert recovery(reversed_, truth)["mean_within_spearman"] == pytest.approx(-1.0)


def test_a_root_outside_every_family_is_not_one_per_family(planted):
    """The dictionary check at one task per family: one label of each family
    passes; a self-supervised source (no family) in place of one fails, and
    is reported, not an error."""
    from taskonomy_tf.synth.planted import planted_recovery
    from taskonomy_tf.taxonomy.table import Transfer, TransferTable

    folder, _ = planted
    truth = load_truth(folder)
    families = truth["families"]
    table = TransferTable([Transfer((s,), t, 0.01 + v) for t, row in truth["scores"].items()
                           for s, v in row.items()], sorted(truth["scores"]), "affinities", {})
    one_each = sorted(labels[0] for labels in families.values())
    with_outsider = one_each[:-1] + ["autoencoding"]
    budget = len(families)
    for roots, expected in ((one_each, True), (with_outsider, False)):
        got = planted_recovery(table, folder, {}, [{"budget": budget, "roots": roots}])
        assert got["dictionary"] == {"budget": budget, "roots": roots,
                                     "one_per_family": expected}
