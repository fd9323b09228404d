"""Bootstrap intervals and choice stability: a clear winner against ties."""

from __future__ import annotations

import numpy as np
import pytest

from taskonomy_tf.taxonomy.bootstrap import bootstrap

TASKS = ("x", "y", "z")


def _matrices(losses_for):
    """target -> (candidates, ids, losses) with self and every other task as candidates."""
    ids = [f"test:{i}" for i in range(80)]
    out = {}
    for t in TASKS:
        cands = [("self",)] + [(s,) for s in TASKS if s != t]
        out[t] = (cands, ids, np.stack([losses_for(t, c) for c in cands]))
    return out


def test_clear_winner_gives_narrow_intervals_and_a_stable_choice():
    rng = np.random.default_rng(0)

    def losses(target, cand):  # z transfers far better than anything; self best of all
        base = {"self": 0.0, "z": 1.0}.get(cand[0], 5.0)
        return base + rng.uniform(0, 0.5, 80)

    result = bootstrap(_matrices(losses), budgets=[1.0], resamples=40)
    low, high = result.interval(("z",), "x")
    assert high - low < 1e-9  # z wins on every image in every resample
    assert result.roots[1.0] == {"z": 1.0}
    assert result.transfers[1.0] == {"x<-z": 1.0, "y<-z": 1.0}
    assert result.solved[1.0] == 1.0
    # the grid's own certainty of its best source and of its dictionary
    assert result.best_source["x"] == result.best_source["y"] == {"z": 1.0}
    # into z, x and y are drawn alike: which is best varies with the resample
    assert sum(result.best_source["z"].values()) == pytest.approx(1.0)
    assert result.dictionaries[1.0] == {"z": 1.0}


def test_exact_ties_give_wide_intervals_and_split_choices():
    rng = np.random.default_rng(1)
    a, b = rng.uniform(0, 1, 40), rng.uniform(0, 1, 40)
    own = rng.uniform(0, 1, 80)

    def losses(target, cand):
        # y and z are interchangeable sources: into x, y has a|b where z has
        # b|a (a win rate of exactly 1/2 on the full data); x is a poor source
        if cand == ("self",):
            return own
        if cand == ("x",):
            return 5 + own
        return np.r_[a, b] if cand == ("y",) or target != "x" else np.r_[b, a]

    result = bootstrap(_matrices(losses), budgets=[1.0], resamples=80)
    low, high = result.interval(("y",), "x")
    assert high - low > 0.05
    roots = result.roots[1.0]
    assert set(roots) == {"y", "z"} and 0.2 < roots["y"] < 0.8  # a coin toss, not a choice
    best = result.best_source["x"]
    assert set(best) == {"y", "z"} and 0.2 < best["y"] < 0.8
    assert best["y"] + best["z"] == pytest.approx(1.0)  # no resample ties exactly
    assert result.dictionaries[1.0] == roots  # one task each
    assert result.to_json()["best_source"]["x"] == best


def _replicated(offsets):
    """One target x whose sources y and z are near-equal on average over 3
    readout replicates; ``offsets[r]`` moves y against z in replicate r."""
    rng = np.random.default_rng(2)
    ids = [f"test:{i}" for i in range(60)]
    base = {("self",): rng.uniform(0, 1, 60), ("y",): 2 + rng.uniform(0, 1, 60),
            ("z",): 2 + rng.uniform(0, 1, 60)}
    cands = list(base)
    m = np.stack([[base[c] + (offsets[r] if c == ("y",) else 0.0) for r in range(3)]
                  for c in cands])  # (n, R, images)
    return {"x": (cands, ids, ["0", "1", "2"], m)}


def test_disagreeing_seeds_widen_the_intervals_and_agreeing_ones_do_not():
    agree = bootstrap(_replicated([0.0, 0.0, 0.0]), resamples=200, seed=3)
    disagree = bootstrap(_replicated([-0.5, 0.0, 0.5]), resamples=200, seed=3)  # same mean
    single = _replicated([0.0, 0.0, 0.0])["x"]
    images_only = bootstrap({"x": (single[0], single[1], single[3][:, :1])}, resamples=200,
                            seed=3)
    width = {name: np.subtract(*reversed(r.interval(("y",), "x")))
             for name, r in [("agree", agree), ("disagree", disagree), ("one", images_only)]}
    assert agree.affinity[(("y",), "x")]["value"] == disagree.affinity[(("y",), "x")]["value"]
    assert width["agree"] == width["one"]  # identical replicates: the images alone
    assert width["disagree"] > 2 * width["agree"]
    assert agree.replicates == 3 and images_only.replicates == 1


def test_cluster_contrast_of_the_published_affinities(results_dir):
    """The numbers the report quotes: the paper's 16k affinities on the six
    default tasks give 3D->3D / 2D->3D = 4.6 and 2D->2D / 3D->2D = 38."""
    from taskonomy_tf.taxonomy import TransferTable, load_table
    from taskonomy_tf.taxonomy.compare import cluster_contrasts

    table = load_table(results_dir / "affinities_16k.json")
    six = {"autoencoder", "edge2d", "keypoint2d", "rgb2depth", "rgb2sfnorm", "reshade"}
    sub = TransferTable([r for r in table.records if r.target in six
                         and all(s in six or s in ("self", "random") for s in r.sources)],
                        sorted(six))
    c = cluster_contrasts(sub)
    assert c["3d->3d / 2d->3d"] == pytest.approx(4.63, abs=0.01)
    assert c["2d->2d / 3d->2d"] == pytest.approx(37.6, abs=0.1)


def _building_table(rng, buildings=16, per_building=30):
    """A target with two equally good candidates, ``self`` and ``a``, whose
    losses share a strong random effect per building: the true win rate of
    ``a`` over ``self`` is 1/2, so its true affinity is 1/2 (AHP of two
    candidates), whatever this sample shows."""
    ids = [f"b{b}/{p}/0" for b in range(buildings) for p in range(per_building)]
    effect = rng.normal(0, 1.0, (2, buildings)).repeat(per_building, axis=1)
    losses = effect + rng.normal(0, 0.5, (2, len(ids)))
    return {"t": ([("self",), ("a",)], ids, losses)}


@pytest.mark.parametrize("group_of,low,high", [("default", 0.78, 1.0), (None, 0.0, 0.6)])
def test_building_intervals_cover_the_truth_as_often_as_they_claim(group_of, low, high):
    """90% intervals over 60 simulated test sets: resampling the buildings
    covers the true affinity about 90% of the time; resampling views as if
    independent covers it far less often (the intervals are too narrow)."""
    rng = np.random.default_rng(7)
    kw = {} if group_of == "default" else {"group_of": None}
    covered = []
    for sim in range(60):
        result = bootstrap(_building_table(rng), resamples=200, confidence=0.9, seed=sim, **kw)
        lo, hi = result.interval(("a",), "t")
        covered.append(lo <= 0.5 <= hi)
    assert low <= np.mean(covered) <= high, np.mean(covered)


def _two_network_sets(tmp_path, offset):
    """losses.csv of two grids (network sets) of target x: sources y and z,
    three readout seeds each; in set k, y's losses move by offset[k] and
    self's by 0.01 k. Returns the merged table's matrices."""
    import csv

    from taskonomy_tf.taxonomy.losses import loss_matrices, merge_network_replicates

    rng = np.random.default_rng(4)
    images = [f"b{i // 6}/{i % 6}/0" for i in range(60)]  # 10 buildings
    base = {"y": 2 + rng.uniform(0, 1, 60), "z": 2 + rng.uniform(0, 1, 60)}
    own = 2 + rng.uniform(0, 1, 60)
    tables = []
    for k in range(2):
        path = tmp_path / f"set{k}.csv"
        with open(path, "w", newline="") as f:
            w = csv.writer(f)
            w.writerow(["candidate", "sources", "target", "image", "seed", "loss"])
            for i, image in enumerate(images):
                w.writerow(["self", "self", "x", image, "", own[i] + 0.01 * k])
                for s in ("y", "z"):
                    for r in range(3):
                        shift = offset[k] if s == "y" else 0.0
                        w.writerow(["transfer", s, "x", image, r, base[s][i] + shift])
        tables.append(path)
    merged = merge_network_replicates(tables, tmp_path / "merged.csv")
    return loss_matrices(merged), own


def test_network_sets_are_merged_and_resampled_as_the_independent_units(tmp_path):
    (mats, own) = _two_network_sets(tmp_path, [-0.2, 0.2])
    cands, images, seeds, m = mats["x"]
    assert seeds == ["0:0", "0:1", "0:2", "1:0", "1:1", "1:2"]
    # self is retrained with its network only: repeated over that set's readouts
    order = {img: i for i, img in enumerate(f"b{i // 6}/{i % 6}/0" for i in range(60))}
    own_sorted = own[[order[i] for i in images]]
    np.testing.assert_allclose(m[cands.index(("self",)), :3], np.tile(own_sorted, (3, 1)))
    np.testing.assert_allclose(m[cands.index(("self",)), 3:], np.tile(own_sorted + 0.01, (3, 1)))
    nested = bootstrap(mats, resamples=300, seed=5)
    # the same six replicates, as if they were exchangeable readouts of one set
    flat = bootstrap({"x": (cands, images, [str(i) for i in range(6)], m)}, resamples=300,
                     seed=5)
    assert nested.networks == 2 and flat.networks == 1 and nested.replicates == 6
    assert nested.to_json()["networks"] == 2
    width = {name: np.subtract(*reversed(r.interval(("y",), "x")))
             for name, r in [("nested", nested), ("flat", flat)]}
    # y beats z in one set and loses in the other: two independent draws, not six
    assert width["nested"] > 1.25 * width["flat"]
    assert nested.affinity[(("y",), "x")]["value"] == flat.affinity[(("y",), "x")]["value"]


def test_a_table_whose_self_rows_name_other_networks_than_its_readouts_is_refused():
    from taskonomy_tf.taxonomy.losses import loss_matrix
    from taskonomy_tf.taxonomy.table import TableError

    cells = {("self",): {"0": {"a": 1.0}, "2": {"a": 1.0}},
             ("y",): {"0:0": {"a": 2.0}, "1:0": {"a": 2.0}}}
    with pytest.raises(TableError, match="network replicates 0,2, the readouts 0,1"):
        loss_matrix(cells, "x")
