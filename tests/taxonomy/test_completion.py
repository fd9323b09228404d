"""A pre-filtered grid completed with an estimator's tournament: Harker's
incomplete AHP against known weights, and the completed taxonomy against the
full grid's."""

from __future__ import annotations

import numpy as np
import pytest

from taskonomy_tf.taxonomy import solve_taxonomy
from taskonomy_tf.taxonomy.ahp import ahp_incomplete
from taskonomy_tf.taxonomy.bip import TaxonomyError
from taskonomy_tf.taxonomy.bootstrap import bootstrap
from taskonomy_tf.taxonomy.losses import completed_weights, completions, tables_from_matrices
from taskonomy_tf.taxonomy.table import RANDOM, SELF


def consistent(weights):
    """W[i, j] = w_i / (w_i + w_j): the ratio W / W^T is exactly w_i / w_j."""
    w = np.asarray(weights, np.float64)
    return w[:, None] / (w[:, None] + w[None, :])


def test_harker_recovers_consistent_weights_from_a_connected_incomplete_matrix():
    rng = np.random.default_rng(0)
    v = rng.uniform(0.1, 1.0, 7)
    ratio = v[:, None] / v[None, :]
    # a spanning path plus a few more pairs; every other comparison missing
    known = np.eye(7, dtype=bool)
    for i in range(6):
        known[i, i + 1] = known[i + 1, i] = True
    known[0, 5] = known[5, 0] = known[2, 6] = known[6, 2] = True
    got = ahp_incomplete(np.where(known, ratio, np.nan))
    np.testing.assert_allclose(got, v / v.sum(), rtol=1e-10)


def test_harker_with_nothing_missing_is_the_plain_ahp():
    from taskonomy_tf.taxonomy import ahp, win_rates

    w = win_rates(np.random.default_rng(1).normal(size=(6, 40)))
    np.testing.assert_allclose(ahp_incomplete(np.clip(w, 1e-3, 0.999) / np.clip(w.T, 1e-3, 0.999)),
                               ahp(w), rtol=1e-10)


def test_harker_refuses_a_non_positive_ratio():
    with pytest.raises(ValueError, match="positive"):
        ahp_incomplete(np.array([[1.0, -2.0], [-0.5, 1.0]]))


def test_completed_weights_are_the_full_weights_when_trained_and_estimate_agree():
    """self, random and two trained sources compared by their losses; four more
    sources known only to the estimator (on its own scale, without random):
    the completion gives every candidate its weight in the full grid."""
    rng = np.random.default_rng(2)
    full = rng.uniform(0.2, 1.0, 7)  # self, random, a, b | c, d, e
    names = [(SELF,), (RANDOM,), ("a",), ("b",), ("c",), ("d",), ("e",)]
    prior = {n[0]: 5.0 * v for n, v in zip(names, full) if n != (RANDOM,)}
    got = completed_weights(consistent(full[:4]), names, prior)
    np.testing.assert_allclose(got, full / full.sum(), rtol=1e-10)


def _grid(rng, quality: dict[str, dict[str, float]], images: int = 300):
    """target -> (candidates, (n, images) losses): a source's per-image loss
    is its quality for that target plus noise; ``self`` best, ``random`` worst."""
    out = {}
    for target, by_source in quality.items():
        levels = {(SELF,): 0.25, (RANDOM,): 0.9, **{(s,): q for s, q in by_source.items()}}
        cands = sorted(levels, key=lambda c: (len(c), c))
        out[target] = (cands, np.stack([levels[c] + 0.3 * rng.standard_normal(images)
                                        for c in cands]))
    return out


def test_a_completed_prefilter_keeps_the_full_grids_dictionary_where_the_plain_one_fails():
    """One task (hub) is every target's second-best source: the full grid
    supervises it at budget 1. A pre-filter that keeps only each target's
    best source loses hub's row, so the plain table cannot serve every target
    with one task; completed with the full grid's own tournament (a perfect
    estimator) it chooses hub again."""
    rng = np.random.default_rng(3)
    tasks = ["hub", "t1", "t2", "t3"]
    best = {"t1": "t2", "t2": "t3", "t3": "t1"}  # each target's best source (not hub)
    quality = {"hub": {"t1": 0.6, "t2": 0.65, "t3": 0.7}}
    for t, b in best.items():
        quality[t] = {s: 0.3 if s == b else 0.35 if s == "hub" else 0.7
                      for s in tasks if s != t}
    full_mats = _grid(rng, quality)
    full = tables_from_matrices(full_mats)["affinities"]
    assert solve_taxonomy(full, 1, 1).roots == ["hub"]

    prior = {t: {r.sources[0]: r.value for r in full.for_target(t)
                 if r.order == 1 and r.sources[0] != RANDOM} for t in tasks}
    keep = {t: max((r for r in full.for_target(t) if r.order == 1
                    and r.sources[0] not in (SELF, RANDOM)), key=lambda r: r.value).sources[0]
            for t in tasks}
    filtered = {}
    for t, (cands, m) in full_mats.items():
        rows = [i for i, c in enumerate(cands) if c in ((SELF,), (RANDOM,), (keep[t],))]
        filtered[t] = ([cands[i] for i in rows], m[rows])
    plain = tables_from_matrices(filtered)["affinities"]
    with pytest.raises(TaxonomyError):
        solve_taxonomy(plain, 1, 1)
    completed = tables_from_matrices(filtered, priors=prior)["affinities"]
    assert solve_taxonomy(completed, 1, 1).roots == ["hub"]
    assert completed.meta["estimated"] == {
        t: sorted(s for s in tasks if s not in (t, keep[t])) for t in tasks}
    for t in tasks:  # every candidate of the full row, nearer its full-grid weight
        got = {r.sources: r.value for r in completed.for_target(t)}
        want = {r.sources: r.value for r in full.for_target(t)}
        kept = {r.sources: r.value for r in plain.for_target(t)}
        assert set(got) == set(want)
        error = max(abs(got[k] / want[k] - 1) for k in want)
        assert error < 0.2  # 0.03-0.18 here
        assert error < max(abs(kept[k] / want[k] - 1) for k in kept)  # plain: 0.26-0.49

    # the bootstrap completes every resample with the same tournament
    boot = bootstrap({t: (c, [f"b{i % 10}/{i}" for i in range(m.shape[1])], m)
                      for t, (c, m) in filtered.items()}, [1], resamples=20, priors=prior,
                     group_of=lambda i: i.split("/")[0])
    assert boot.roots[1] == {"hub": 1.0}


def test_no_completion_without_a_shared_candidate_or_without_a_prior():
    assert completions([(SELF,), (RANDOM,), ("a",)], None) == []
    assert completions([(RANDOM,), ("a",)], {"b": 1.0, "c": 2.0}) == []
    assert completions([(SELF,), ("a",)], {SELF: 1.0, "a": 1.0, "b": 2.0}) == [("b",)]


def test_estimated_pairs_are_not_reported_as_trained_sources_below_random():
    from taskonomy_tf.pipeline.measures import random_checks
    from taskonomy_tf.taxonomy.table import Transfer, TransferTable

    records = [Transfer((s,), "t", v) for s, v in
               ((SELF, 0.5), (RANDOM, 0.2), ("a", 0.1), ("b", 0.15), ("c", 0.05))]
    table = TransferTable(records, ["t"], "affinities", {"estimated": {"t": ["c"]}})
    assert random_checks(table) == {"t": ["a", "b"]}
