"""Bootstrap intervals and choice stability: a clear winner against ties."""

from __future__ import annotations

import numpy as np

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
