"""The honest yardsticks of an agreement, against brute force and hand counts."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from scipy.stats import spearmanr

from taskonomy_tf.taxonomy.yardsticks import (
    cluster_only_score,
    mean_spearman,
    rank_contrasts,
    relabel,
    relabelling_null,
    relabelling_rank,
    relabelling_scores,
    within_cluster_pairs,
)

TASKS = ["a1", "a2", "a3", "b1", "b2"]


def cluster(t: str) -> str:
    return t[0]


def _random(rng, tasks, drop=()):
    return {t: {s: float(rng.uniform(0.01, 1)) for s in tasks if s != t and (s, t) not in drop}
            for t in tasks}


@pytest.mark.parametrize("key", [lambda t: 0, cluster])
def test_relabelling_scores_are_the_brute_force_means(key):
    rng = np.random.default_rng(1)
    a = _random(rng, TASKS, drop={("b2", "a1")})  # a missing entry too
    b = _random(rng, TASKS)
    scores, exact = relabelling_scores(a, b, key)
    brute = []
    for perm in itertools.permutations(TASKS):
        mapping = dict(zip(TASKS, perm))
        if all(key(t) == key(mapping[t]) for t in TASKS):
            brute.append(mean_spearman(relabel(a, mapping), b))
    assert exact and len(scores) == len(brute)
    np.testing.assert_allclose(sorted(scores), sorted(brute), atol=1e-12)
    assert scores[0] == pytest.approx(mean_spearman(a, b))  # the identity first


def test_mean_spearman_is_scipys_over_shared_sources():
    rng = np.random.default_rng(2)
    a, b = _random(rng, TASKS), _random(rng, TASKS)
    want = np.mean([spearmanr([a[t][s] for s in sorted(a[t])],
                              [b[t][s] for s in sorted(a[t])]).statistic for t in TASKS])
    assert mean_spearman(a, b) == pytest.approx(want)


def test_the_relabelling_null_keeps_a_shared_strong_source():
    """Every target ranks its sources by one source strength: an independent
    random ranking per target averages out over 8 targets, a relabelling of
    the whole table does not (the mean is one target's rho, 8 times over)."""
    from taskonomy_tf.taxonomy.compare import null_mean_spearman

    tasks = [f"t{i}" for i in range(8)]
    rng = np.random.default_rng(3)
    strength = dict(zip(tasks, rng.permutation(8) + 1.0))
    a = {t: {s: strength[s] + 0.01 * rng.normal() for s in tasks if s != t} for t in tasks}
    b = {t: {s: strength[s] for s in tasks if s != t} for t in tasks}
    low, high = relabelling_null(a, b, confidence=0.9)
    ind_low, ind_high = null_mean_spearman([7] * 8, confidence=0.9)
    assert high - low > 2 * (ind_high - ind_low)
    assert mean_spearman(a, b) > high  # the true labelling is still outside chance


def test_cluster_only_score_by_hand():
    # target a1: sources a2, a3 (same cluster), b1, b2
    b = {"a1": {"a2": 0.9, "a3": 0.5, "b1": 0.6, "b2": 0.1}}
    a = {"a1": {"a2": 0.0, "a3": 0.0, "b1": 0.0, "b2": 0.0}}
    want = spearmanr([1, 1, 0, 0], [0.9, 0.5, 0.6, 0.1]).statistic
    assert cluster_only_score(b, a, cluster) == pytest.approx(want)
    exact = {"a1": {"a2": 2.0, "a3": 2.0, "b1": 1.0, "b2": 1.0}}
    assert cluster_only_score(exact, a, cluster) == pytest.approx(1.0)


def test_within_cluster_pairs_by_hand():
    b = {"a1": {"a2": 0.30, "a3": 0.20, "b1": 0.11, "b2": 0.10},   # a2>a3 clear; b1~b2 not
         "b1": {"a1": 0.5, "a2": 0.1, "a3": 0.2, "b2": 0.4}}       # a1>a2, a1>a3, a3>a2 clear
    a = {"a1": {"a2": 0.1, "a3": 0.2, "b1": 0.5, "b2": 0.4},       # a2<a3: disagrees
         "b1": {"a1": 0.9, "a2": 0.1, "a3": 0.1, "b2": 0.4}}       # agree, agree, tie
    assert within_cluster_pairs(a, b, cluster) == [2, 4]


def test_relabelling_rank_puts_a_cluster_only_table_in_the_middle():
    rng = np.random.default_rng(4)
    tasks = ["a1", "a2", "a3", "b1", "b2", "b3"]
    b = {t: {s: (2.0 if cluster(s) == cluster(t) else 1.0) + rng.uniform(0, 0.5)
             for s in tasks if s != t} for t in tasks}
    assert relabelling_rank(b, b, cluster) == {"rank": 1.0, "of": 36, "exact": True}
    only = {t: {s: 2.0 if cluster(s) == cluster(t) else 1.0 for s in tasks if s != t}
            for t in tasks}
    # every cluster-preserving relabelling leaves it unchanged: all 36 tie
    assert relabelling_rank(only, b, cluster)["rank"] == pytest.approx((1 + 36) / 2)


def test_rank_contrasts_by_hand():
    a = {"a1": {"a2": 0.5, "a3": 0.2, "b1": 0.3, "b2": 0.3}}
    # (a2, a3) x (b1, b2): a2 wins both, a3 loses both -> 2 of 4
    assert rank_contrasts(a, cluster) == {"a->a > b->a": pytest.approx(0.5)}
    a["a1"]["a3"] = 0.3  # now ties: a3 vs b1, b2 count half each
    assert rank_contrasts(a, cluster)["a->a > b->a"] == pytest.approx((2 + 1) / 4)
