"""Figures: right labels, right number of cells, masks where nothing ran."""

from __future__ import annotations

import json

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np
import pytest

from taskonomy_tf import viz
from taskonomy_tf.taxonomy.table import Transfer, TransferTable


def _table(values: dict[tuple[str, str], float], measure="affinities") -> TransferTable:
    recs = [Transfer((s,), t, v) for (s, t), v in values.items()]
    return TransferTable(recs, sorted({t for _, t in values}), measure)


@pytest.fixture
def small():
    # 3 tasks of 2 clusters, one pair not run (normals -> edges) and baselines left out
    vals = {("depth_zbuffer", "normals"): 0.3, ("edges", "normals"): 0.1,
            ("normals", "depth_zbuffer"): 0.4, ("edges", "depth_zbuffer"): 0.05,
            ("depth_zbuffer", "edges"): 0.2, ("self", "edges"): 0.7,
            ("random", "edges"): 0.01}
    return _table(vals)


def _heatmap_axes(fig):
    return [ax for ax in fig.axes if ax.collections and ax.get_xticklabels()
            and ax.get_ylabel() == "source task"]


def test_heatmap_labels_cells_and_mask(small):
    fig = viz.heatmap(small, before=small)
    axes = _heatmap_axes(fig)
    assert len(axes) == 2  # before and after AHP
    for ax in axes:
        # cluster order: 2D (edges) before 3D, then by catalog title
        expected = ["2D edges", "Surface normals", "Z-depth"]
        assert [t.get_text() for t in ax.get_xticklabels()] == expected
        assert [t.get_text() for t in ax.get_yticklabels()] == expected
        mesh = ax.collections[0].get_array()
        assert mesh.size == 9 and int(np.ma.count_masked(mesh)) == 4  # 3 diagonal + 1 not run
    labels = [ax.get_ylabel() for ax in fig.axes if ax not in axes]
    assert all("higher = better transfer" in lab for lab in labels) and len(labels) == 2
    plt.close(fig)


def test_heatmap_hierarchical_is_a_permutation_with_a_dendrogram(small):
    fig = viz.heatmap(small, order="hierarchical", dendrogram=True)
    (ax,) = _heatmap_axes(fig)
    names = [t.get_text() for t in ax.get_xticklabels()]
    assert sorted(names) == ["2D edges", "Surface normals", "Z-depth"]
    assert len(fig.axes) == 3  # dendrogram, heatmap, colour bar
    plt.close(fig)
    with pytest.raises(ValueError, match="order"):
        viz.heatmap(small, order="alphabetical")


def test_heatmap_of_the_published_matrix(results_dir):
    from taskonomy_tf.taxonomy import load_table

    table = load_table(results_dir / "affinities_16k.json")
    sources, targets, m = viz.affinity_matrix(table)
    assert len(targets) == 22 and m.shape == (len(sources), 22)
    fig = viz.heatmap(table)
    (ax,) = _heatmap_axes(fig)
    labels = [t.get_text() for t in ax.get_xticklabels()]
    assert "Surface normals" in labels and "rgb2sfnorm" not in labels
    assert ax.collections[0].get_array().size == len(sources) * 22
    plt.close(fig)


def test_graph_draws_roots_transfers_and_annotations():
    choice = {"normals": ["<root>"], "edges": ["<root>"], "depth_zbuffer": ["normals"],
              "reshading": ["normals", "edges"]}
    gain = _table({("normals", "depth_zbuffer"): 0.8}, "wins_vs_pixels")
    fig = viz.taxonomy_graph(choice, wins_pixels=gain)
    texts = [t.get_text() for t in fig.axes[0].texts]
    assert "Gain 0.80" in texts
    assert {"Surface\nnormals", "2D\nedges", "Z-depth", "Reshading"} <= set(texts)
    arrows = [p for p in fig.axes[0].patches]
    assert len(arrows) == 3  # normals->depth, normals->reshading, edges->reshading
    plt.close(fig)


def test_budget_curves_skip_infeasible_budgets():
    rows = [{"budget": 1.0, "status": "INFEASIBLE"},
            {"budget": 2.0, "status": "OPTIMAL", "objective": 1.0, "gain": 0.5, "quality": 0.2},
            {"budget": 3.0, "status": "OPTIMAL", "objective": 1.5, "gain": 0.6, "quality": 0.3}]
    fig = viz.budget_curves(rows, by_order={1: rows, 2: rows})
    ax = fig.axes[0]
    assert list(ax.lines[0].get_xdata()) == [2.0, 3.0]
    assert len(fig.axes) == 3  # objective, its twin for win rates, and the order panel
    plt.close(fig)
    with pytest.raises(ValueError, match="feasible"):
        viz.budget_curves(rows[:1])


def test_winrate_matrix_sorts_the_clear_winner_first():
    rng = np.random.default_rng(0)
    losses = {("a",): rng.uniform(1, 2, 40), ("b",): rng.uniform(0, 0.5, 40),
              ("c",): rng.uniform(3, 4, 40)}
    fig = viz.winrate_matrix(losses, "normals")
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.get_yticklabels()] == ["b", "a", "c"]
    mesh = ax.collections[0].get_array()
    assert mesh.size == 9 and int(np.ma.count_masked(mesh)) == 3  # the diagonal
    assert float(mesh[0, 1]) == 1.0  # b beats a on every image
    plt.close(fig)


def test_plot_command_writes_figures_and_rejects_bad_files(small, tmp_path, capsys):
    from taskonomy_tf.viz.__main__ import main

    small.save(tmp_path / "aff.json")
    assert main(["heatmap", "--affinities", str(tmp_path / "aff.json"),
                 "--out", str(tmp_path / "h.png")]) == 0
    assert (tmp_path / "h.png").stat().st_size > 1000
    assert main(["graph", "--affinities", str(tmp_path / "aff.json"), "--budget", "1",
                 "--out", str(tmp_path / "g.png")]) == 0
    (tmp_path / "bad.json").write_text(json.dumps({"records": [{"target": "x"}]}))
    assert main(["heatmap", "--affinities", str(tmp_path / "bad.json"),
                 "--out", str(tmp_path / "b.png")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "bad.json" in err[0] and not (tmp_path / "b.png").exists()
