"""Comparison with a published taxonomy: rank agreement with its null, contrasts, dictionaries."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from scipy.stats import spearmanr

from taskonomy_tf.taxonomy import load_table
from taskonomy_tf.taxonomy.compare import (
    cluster_contrasts,
    compare_published,
    null_overlap,
    null_spearman,
    restrict,
)
from taskonomy_tf.taxonomy.table import Transfer, TransferTable

SIX = ["edges", "keypoints2d", "autoencoding", "depth_zbuffer", "normals", "reshading"]


def test_null_spearman_is_exact_for_few_sources():
    base = np.arange(4)
    rhos = [spearmanr(base, p).statistic for p in itertools.permutations(range(4))]
    np.testing.assert_allclose(null_spearman(4, confidence=0.5), np.quantile(rhos, [0.25, 0.75]))
    low, high = null_spearman(16, confidence=0.9, draws=20_000)
    # for many items rho is close to normal with variance 1 / (n - 1)
    assert high == pytest.approx(1.645 / 15**0.5, abs=0.04)
    assert low == pytest.approx(-high, abs=0.03)


def test_null_overlap_is_hypergeometric():
    assert null_overlap(5)["mean"] == pytest.approx(9 / 5)  # 3 x 3 / 5
    assert null_overlap(25) == {"mean": pytest.approx(0.36), "low": 0.0, "high": 1.0}
    assert null_overlap(3)["mean"] == 3  # every source in both top-3s


def _table(values: dict[str, dict[str, float]], names=None) -> TransferTable:
    names = names or {}
    records = [Transfer((names.get(s, s),), names.get(t, t), v)
               for t, row in values.items() for s, v in row.items()]
    records += [Transfer(("self",), names.get(t, t), 0.5) for t in values]
    return TransferTable(records, [names.get(t, t) for t in values])


def _random_values(rng, tasks):
    return {t: {s: float(rng.uniform(0.01, 1)) for s in tasks if s != t} for t in tasks}


def test_a_table_against_itself_and_against_its_reverse():
    rng = np.random.default_rng(0)
    values = _random_values(rng, SIX)
    released = {"normals": "rgb2sfnorm", "edges": "edge2d", "depth_zbuffer": "rgb2depth"}
    same = compare_published(_table(values), _table(values, released), budgets=[1, 2])
    assert same["tasks"] == sorted(SIX)  # release names meet catalog names
    for v in same["targets"].values():
        assert v["spearman"] == pytest.approx(1) and v["topk_overlap"] == 3
        assert v["sources"] == 5 and v["top1_agrees"]
    assert same["contrasts"]["ours"] == pytest.approx(same["contrasts"]["published"])
    assert all(r["ours"] == r["published"] for r in same["dictionaries"].values())
    reverse = {t: {s: 1.01 - v for s, v in row.items()} for t, row in values.items()}
    opposite = compare_published(_table(values), _table(reverse), budgets=[])
    assert all(v["spearman"] == pytest.approx(-1) for v in opposite["targets"].values())


def test_restrict_keeps_the_shared_tasks_and_baselines():
    rng = np.random.default_rng(1)
    table = _table(_random_values(rng, SIX + ["curvature"]))
    part = restrict(table, SIX)
    assert sorted(part.targets) == sorted(SIX)
    assert all(s in SIX or s == "self" for r in part.records for s in r.sources)


def test_the_published_contrasts_on_six_tasks(results_dir):
    published = load_table(results_dir / "affinities_16k.json")
    contrasts = cluster_contrasts(restrict(published, SIX))
    # the figures the project quotes for the paper on these six tasks
    assert contrasts["3d->3d / 2d->3d"] == pytest.approx(4.63, abs=0.01)
    assert contrasts["2d->2d / 3d->2d"] == pytest.approx(37.6, abs=0.1)


def test_compare_command_on_the_published_files(results_dir, tmp_path, capsys):
    import json

    from taskonomy_tf.taxonomy.__main__ import main

    out = tmp_path / "cmp.json"
    assert main(["compare", "--affinities", str(results_dir / "affinities_1k.json"),
                 "--published", str(results_dir / "affinities_16k.json"), "--budgets", "1-2",
                 "--json", str(out)]) == 0
    text = capsys.readouterr().out
    assert "| normals | 25 |" in text and "| 2d->2d / 3d->2d |" in text
    result = json.loads(out.read_text())
    assert len(result["targets"]) == 22 and set(result["dictionaries"]) == {"1", "2"}
    assert 0.5 < result["mean_spearman"] < 0.8  # 1k and 16k agree, not perfectly


def test_the_report_shows_the_comparison(results_dir):
    from taskonomy_tf.pipeline.report import _agreement_blocks, _markdown
    from taskonomy_tf.viz import display_name

    cmp = compare_published(restrict(load_table(results_dir / "affinities_1k.json"), SIX),
                            load_table(results_dir / "affinities_16k.json"), budgets=[1, 2])
    text = _markdown(_agreement_blocks(cmp, display_name))
    assert "## Agreement with the published affinities" in text
    assert text.count("| Surface normals | 5 |") == 1  # one row per target, 5 sources
    assert "| 3d->3d / 2d->3d |" in text and "| 2 |" in text  # contrasts, dictionaries


def test_the_mean_over_targets_has_a_narrower_null():
    from taskonomy_tf.taxonomy.compare import null_mean_spearman

    low, high = null_mean_spearman([16] * 25, confidence=0.9)
    one = null_spearman(16, confidence=0.9)
    # the mean of 25 independent rhos: about 1/5 of one target's spread
    assert high == pytest.approx(one[1] / 5, abs=0.03) and low == pytest.approx(-high, abs=0.03)


def test_the_shipped_tables_are_the_released_ones(results_dir):
    """Byte for byte the files of ../shared/data/taskonomy_results (where present)."""
    from pathlib import Path

    released = Path(__file__).resolve().parents[2].parent / "shared/data/taskonomy_results"
    if not released.is_dir():
        pytest.skip("../shared/data/taskonomy_results is absent")
    files = sorted(results_dir.glob("*.json"))
    assert len(files) == 4
    for f in files:
        assert f.read_bytes() == (released / f.name).read_bytes(), f.name
