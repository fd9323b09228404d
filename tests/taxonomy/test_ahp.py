"""Win rates and AHP against known values."""

from __future__ import annotations

import numpy as np
import pytest

from taskonomy_tf.taxonomy import ahp, consistency_ratio, win_rates


def test_win_rates_count_ties_as_half():
    losses = np.array([[1.0, 2.0, 3.0, 4.0],
                       [1.0, 1.0, 5.0, 5.0],
                       [9.0, 9.0, 9.0, 9.0]])
    w = win_rates(losses)
    # 0 vs 1: tie, lose, win, win -> (0.5 + 0 + 1 + 1) / 4
    assert w[0, 1] == pytest.approx(0.625) and w[1, 0] == pytest.approx(0.375)
    np.testing.assert_allclose(w + w.T, 1.0)
    np.testing.assert_allclose(np.diag(w), 0.5)
    assert w[0, 2] == 1.0 and w[2, 0] == 0.0


def test_win_rates_reject_bad_input():
    with pytest.raises(ValueError):
        win_rates(np.zeros((3, 0)))
    with pytest.raises(ValueError, match="NaN"):
        win_rates(np.array([[1.0, np.nan]]))


def consistent(weights):
    """W[i, j] = w_i / (w_i + w_j): the ratio W / W^T is then exactly w_i / w_j."""
    w = np.asarray(weights, np.float64)
    return w[:, None] / (w[:, None] + w[None, :])


def test_ahp_recovers_the_weights_of_a_consistent_matrix():
    rng = np.random.default_rng(0)
    for n in (2, 3, 7, 28):
        weights = rng.uniform(0.2, 1.0, n)  # ratios stay inside the 0.001/0.999 clip
        weights /= weights.sum()
        np.testing.assert_allclose(ahp(consistent(weights)), weights, rtol=1e-10)
        if n >= 3:
            assert abs(consistency_ratio(consistent(weights))) < 1e-9


def test_ahp_is_invariant_to_candidate_order():
    rng = np.random.default_rng(1)
    w = win_rates(rng.normal(size=(9, 50)))
    perm = rng.permutation(9)
    np.testing.assert_allclose(ahp(w[np.ix_(perm, perm)]), ahp(w)[perm], rtol=1e-10)


def test_ahp_sums_to_one_and_orders_a_clear_winner_first():
    losses = np.array([np.full(20, 0.1), np.linspace(0.2, 0.4, 20), np.full(20, 0.9)])
    a = ahp(win_rates(losses))
    assert a.sum() == pytest.approx(1.0) and np.all(a > 0)
    assert a[0] > a[1] > a[2]
    # a certain win is clipped at 0.999: the ratio 999 bounds the spread
    assert a[0] / a[2] <= 999**2 + 1e-6


def test_inconsistent_matrix_has_a_positive_consistency_ratio():
    # rock-paper-scissors: a beats b, b beats c, c beats a
    w = np.array([[0.5, 0.9, 0.1], [0.1, 0.5, 0.9], [0.9, 0.1, 0.5]])
    assert consistency_ratio(w) > 0.1
    np.testing.assert_allclose(ahp(w), 1 / 3)
