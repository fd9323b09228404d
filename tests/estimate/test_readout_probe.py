"""The closed-form readout probe: its algebra against brute force, its loss
rules against the training losses, and rankings with a planted answer."""

from __future__ import annotations

import numpy as np
import pytest

from taskonomy_tf.estimate import estimate_table
from taskonomy_tf.estimate.probe import group_folds
from taskonomy_tf.estimate.readout_probe import (
    PENALTIES,
    DenseTarget,
    SourceFit,
    cell_features,
    from_cells,
    per_image_losses,
    readout_losses,
    to_cells,
)


def test_cells_round_trip():
    y = np.random.default_rng(0).normal(size=(3, 16, 16, 2))
    t = to_cells(y, 4)
    assert t.shape == (3 * 16, 16 * 2)
    np.testing.assert_array_equal(t[5].reshape(4, 4, 2), y[0, 4:8, 4:8])  # cell (1, 1)
    np.testing.assert_array_equal(from_cells(t, 3, 4, 2), y)


def test_predictions_equal_a_ridge_solved_fold_by_fold():
    """Each fold's prediction is the ridge fitted on the other folds' cells
    (np.linalg.solve), at the penalty whose held-out squared error, computed
    from the predictions themselves, is least."""
    rng = np.random.default_rng(1)
    n, c = 24, 4
    codes = rng.normal(size=(n, c, c, 3))
    groups = np.repeat(np.arange(8), 3)
    fit = SourceFit(codes, groups, features=20, folds=4)
    t = rng.normal(size=(n * c * c, 5)).astype(np.float32)
    x = cell_features(np.asarray(codes, np.float32), 20)
    cells = c * c
    folds = [(f[:, None] * cells + np.arange(cells)).ravel() for f in group_folds(groups, 4)]

    def brute(lam):
        out = np.zeros_like(t, dtype=np.float64)
        for held in folds:
            rest = np.setdiff1d(np.arange(len(t)), held)
            g = x[rest].T.astype(np.float64) @ x[rest]
            scale = np.trace(g) / len(g)
            ridge = np.linalg.solve(g + lam * scale * np.eye(len(g)), x[rest].T @ t[rest])
            out[held] = x[held] @ ridge
        return out

    errors = [np.sum((brute(lam) - t) ** 2) for lam in PENALTIES]
    want = brute(PENALTIES[int(np.argmin(errors))])
    np.testing.assert_allclose(fit.predict(t), want, rtol=2e-3, atol=2e-3)
    # every penalty's held-out error, not only the winner's
    np.testing.assert_allclose(fit.penalty_errors(t[fit.order])[0][0], errors, rtol=1e-4)

    # targets fitted side by side: each block at its own penalty, as if alone
    # (a scaled copy of t prefers another penalty than t itself)
    other = (rng.normal(size=(n * c * c, 2)) * 30 + t[:, :2]).astype(np.float32)
    both = fit.predict(np.concatenate([t, other], 1), widths=[5, 2])
    np.testing.assert_allclose(both[:, :5], fit.predict(t), rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(both[:, 5:], fit.predict(other), rtol=1e-4, atol=1e-4)
    assert (np.argmin(fit.penalty_errors(other[fit.order])[0][0])
            != np.argmin(fit.penalty_errors(t[fit.order])[0][0]))
    with pytest.raises(ValueError, match="side by side"):
        fit.predict(t, widths=[2, 2])


@pytest.mark.parametrize("loss", ["masked_l1", "masked_l2", "pixel_sparse_ce"])
def test_loss_rules_equal_the_training_losses(loss):
    """Per image, the numpy rule equals ``training.evaluate.per_image_losses``
    with the registered loss (class scores taken as log-probabilities),
    unlabelled pixels and an image without any label included."""
    from taskonomy_tf.tasks import get_task
    from taskonomy_tf.training.evaluate import per_image_losses as trained

    spec = get_task({"masked_l1": "normals", "masked_l2": "curvature",
                     "pixel_sparse_ce": "segment_semantic"}[loss])

    rng = np.random.default_rng(2)
    n, s = 5, 8
    w = (rng.random((n, s, s)) > 0.3).astype(np.float32)
    w[2] = 0
    if loss == "pixel_sparse_ce":
        y = rng.integers(0, spec.channels, (n, s, s, 1))
        pred = rng.random((n, s, s, spec.channels)).astype(np.float32)
        ours = per_image_losses(None, pred, w, "ce", y)
        theirs = trained(spec, y, np.log(np.clip(pred, 1e-4, None)), w)
    else:
        y = rng.normal(size=(n, s, s, spec.channels)).astype(np.float32)
        pred = rng.normal(size=(n, s, s, spec.channels)).astype(np.float32)
        ours = per_image_losses(y, pred, w, {"masked_l1": "l1", "masked_l2": "l2"}[loss])
        theirs = trained(spec, y, pred, w)
    np.testing.assert_allclose(ours, theirs, rtol=1e-5, atol=1e-6)
    assert ours[2] == 0


def _planted(rng, n=60, c=8, f=4):
    """A dense target made of a non-linear function of a 3 x 3 code
    neighbourhood, and sources that carry it with graded noise."""
    z = rng.normal(size=(n, c, c, 2))
    pattern = rng.normal(size=(f, f))
    padded = np.pad(z[..., 0], ((0, 0), (1, 1), (1, 1)))
    local = padded[:, 1:-1, 1:-1] + 0.5 * (padded[:, :-2, 1:-1] + padded[:, 2:, 1:-1])
    cell = np.abs(local) + 0.5 * z[..., 1]
    y = (cell[:, :, None, :, None] * pattern[None, None, :, None, :]).reshape(n, c * f, c * f, 1)
    codes = {}
    for name, noise in (("a", 0.05), ("b", 0.6), ("c", 1.5)):
        codes[name] = np.concatenate([z + noise * rng.normal(size=z.shape),
                                      rng.normal(size=(n, c, c, 2))], -1)
    codes["d"] = rng.normal(size=(n, c, c, 4))
    return codes, y, np.ones(y.shape[:3], np.float32)


def test_the_ranking_follows_the_planted_noise():
    """Sources carrying the target with more noise rank lower, a noise code
    last; a code that explains the target beats the constant prediction (a
    code of zeros: the ridge's mean of each pixel of a cell) on almost every
    image, a noise code on about half of them at most."""
    rng = np.random.default_rng(5)
    codes, y, w = _planted(rng)
    groups = np.repeat(np.arange(12), 5)
    codes["t"] = rng.normal(size=codes["d"].shape)
    table = estimate_table("readout", codes, {"t": (None, True)}, groups,
                           {"t": (y, w, 0, "masked_l1")})
    ranked = sorted(table.for_target("t"), key=lambda r: -r.value)
    assert [r.sources[0] for r in ranked] == ["a", "b", "c", "d"]
    fits = {k: SourceFit(v, groups) for k, v in codes.items()}
    target = DenseTarget(y, w, "masked_l1", cells=8)
    good = readout_losses(fits["a"], target)
    noise = readout_losses(fits["d"], target)
    constant = readout_losses(SourceFit(np.zeros_like(codes["d"]), groups), target)
    assert np.mean(good < constant) > 0.9
    assert np.mean(noise < constant) < 0.6


def test_held_out_groups_cannot_be_recalled():
    """A code that only names each group, whose target is one random value
    per group: fitted on the other groups it predicts no better than the
    mean; with each image held out alone, the group's other images give it."""
    rng = np.random.default_rng(6)
    n, c = 48, 4
    groups = np.repeat(np.arange(16), 3)
    name = np.zeros((n, c, c, 16))
    name[np.arange(n), :, :, groups] = 1.0
    y = np.broadcast_to(rng.normal(size=(16, 1, 1, 1)), (16, c * 2, c * 2, 1))[groups]
    w = np.ones(y.shape[:3])
    target = DenseTarget(y, w, "masked_l2", cells=c)
    held = readout_losses(SourceFit(name, groups), target)
    alone = readout_losses(SourceFit(name, np.arange(n)), target)
    assert held.mean() > 0.9  # standardised labels: the mean's loss is about 1
    assert np.mean(alone < 0.2 * held) > 0.6  # images held out alone: most groups recalled


def test_bad_codes_and_losses_are_refused():
    from taskonomy_tf.errors import InputError

    with pytest.raises(InputError, match="expected .images, cells, cells, channels."):
        SourceFit(np.zeros((4, 3, 2, 1)), np.arange(4))
    with pytest.raises(InputError, match="loss 'soft_ce' has no per-pixel rule"):
        DenseTarget(np.zeros((6, 4, 4, 1)), np.ones((6, 4, 4)), "soft_ce", cells=2)
    fit = SourceFit(np.random.default_rng(0).normal(size=(6, 2, 2, 1)), np.arange(6), features=4)
    with pytest.raises(InputError, match="a target prepared for 6 x 4"):
        readout_losses(fit, DenseTarget(np.zeros((6, 8, 8, 1)), np.ones((6, 8, 8)), "masked_l1",
                                        cells=4))


def test_the_prior_is_the_per_pixel_mean_every_prediction_adds():
    """A prediction of zero residual (the prior alone) scored against brute
    force: each image (L1, its mask) against the per-pixel mean of the
    standardised targets over the images that label that pixel; a code of
    zeros predicts about that (the residual's mean, about 0), and a code that
    carries nothing is not the better for the target's layout."""
    rng = np.random.default_rng(7)
    n, side = 30, 8
    y = rng.normal(size=(n, side, side, 2)) + 3 * rng.normal(size=(1, side, side, 2))
    w = (rng.random((n, side, side)) > 0.3).astype(np.float32)
    target = DenseTarget(y, w, "masked_l1", cells=4)
    got = target.losses(np.zeros_like(target.t))
    valid = w[..., None] > 0  # the targets standardised per channel over the labelled pixels
    centred = y - y[w > 0].mean(0)
    z = np.where(valid, centred / np.sqrt(np.square(centred[w > 0]).mean(0)), 0.0)
    mean = np.array([[[z[:, a, b, k][w[:, a, b] > 0].mean() for k in range(2)]
                      for b in range(side)] for a in range(side)])
    for i in range(n):
        err = np.abs(z[i] - mean).mean(-1)
        assert np.isclose(got[i], (err * w[i]).sum() / w[i].sum(), rtol=1e-5)
    zeros = readout_losses(SourceFit(np.zeros((n, 4, 4, 3)), np.arange(n) // 3), target)
    assert np.allclose(zeros, got, rtol=0.05)


def _tasks_with_a_hub(rng, n=60, c=8, f=4):
    """Three dense tasks on one layout (a fixed per-pixel map plus each
    image's variation): task ``hub``'s code carries every task's variation,
    ``b``'s and ``c``'s codes only their own."""
    layout = 2.0 * rng.normal(size=(1, c * f, c * f, 1))
    own = {t: rng.normal(size=(n, c, c, 1)) for t in ("hub", "b", "c")}
    labels = {t: layout + np.repeat(np.repeat(v, f, 1), f, 2) for t, v in own.items()}
    codes = {"hub": np.concatenate([own["hub"], own["b"], own["c"]], -1),
             "b": np.concatenate([own["b"], rng.normal(size=(n, c, c, 2))], -1),
             "c": np.concatenate([own["c"], rng.normal(size=(n, c, c, 2))], -1)}
    w = np.ones((n, c * f, c * f), np.float32)
    return codes, {t: (y, w, 0, "masked_l1") for t, y in labels.items()}


def test_the_tournament_puts_the_probe_on_the_trained_tables_footing():
    """With every target dense and its own code given, ``readout`` also
    scores ``self``; per target the tournament sums to 1 with it, as the
    trained affinities do; a source that carries the target beats one that
    carries nothing (the layout is the prior's, which every prediction
    adds); the taxonomy solved on it supervises at budget 1 the task whose
    code carries the others; a table without a tournament for every target
    is solved as it is."""
    from taskonomy_tf.estimate.affinity import readout_table, taxonomy_affinities
    from taskonomy_tf.taxonomy import solve_taxonomy

    rng = np.random.default_rng(8)
    codes, dense = _tasks_with_a_hub(rng)
    groups = np.repeat(np.arange(12), 5)
    labels = {t: (None, True) for t in dense}
    table = estimate_table("readout", codes, labels, groups, dense)
    tournament = table.meta["tournament"]
    assert set(tournament) == set(dense)
    for t, row in tournament.items():
        assert set(row) == {"self"} | (set(codes) - {t})
        assert np.isclose(sum(row.values()), 1.0)
    for t in ("b", "c"):  # the other spoke's code carries nothing about t
        other = ({"b", "c"} - {t}).pop()
        assert tournament[t]["self"] > tournament[t]["hub"] > 10 * tournament[t][other]
    aff = taxonomy_affinities(table)
    assert aff.get(("self",), "b") == tournament["b"]["self"]
    assert solve_taxonomy(aff, 1, 1).roots == ["hub"]
    pooled = {t: (v[0][:, ::8, ::8, 0].reshape(len(v[0]), -1), True) for t, v in dense.items()}
    partial = estimate_table("readout", codes, pooled, groups, {"b": dense["b"]})
    assert taxonomy_affinities(partial) is partial  # a target scored by the ridge fallback
    assert readout_table(codes, {}) == ({}, {})  # no dense target: nothing fitted
    # c's network missing (a noise code d beside the others): no self for c
    no_self = {"hub": codes["hub"], "b": codes["b"], "d": rng.normal(size=codes["b"].shape)}
    tournament = estimate_table("readout", no_self, pooled, groups, dense).meta["tournament"]
    assert "c" not in tournament and set(tournament["b"]) == {"self", "hub", "d"}


def test_a_reused_feature_buffer_gives_the_fresh_fit():
    """A source fitted into the buffer of an earlier one predicts exactly what
    a fit in fresh memory does; a buffer of another shape is not reused."""
    from taskonomy_tf.estimate.readout_probe import features_buffer

    rng = np.random.default_rng(9)
    codes, y, w = _planted(rng)
    groups = np.repeat(np.arange(12), 5)
    target = DenseTarget(y, w, "masked_l2", cells=8)
    buffer = features_buffer(codes["a"])
    readout_losses(SourceFit(codes["a"], groups, out=buffer), target)
    reused = SourceFit(codes["b"], groups, out=features_buffer(codes["b"], out=buffer))
    assert reused.x is buffer
    fresh = SourceFit(codes["b"], groups)
    assert np.array_equal(reused.predict(target.t), fresh.predict(target.t))
    assert features_buffer(codes["b"][:, :4, :4], out=buffer) is not buffer


def test_fold_by_fold_scoring_equals_scoring_the_whole_prediction():
    """``readout_losses`` scores each held-out fold's images from that
    fold's predictions; the same losses come from the whole prediction
    array (``predict``) scored at once, for each loss rule, targets side by
    side with their rows put in the folds' order beforehand or not."""
    from taskonomy_tf.estimate.readout_probe import readout_losses_many

    rng = np.random.default_rng(10)
    codes, y, w = _planted(rng)
    w[3] = 0  # an image without labels
    w[5, :7] = 0
    groups = np.repeat(np.arange(12), 5)
    fit = SourceFit(codes["b"], groups)
    ids = rng.integers(0, 4, y.shape[:3] + (1,))
    targets = [DenseTarget(y, w, "masked_l1", cells=8),
               DenseTarget(y ** 2, w, "masked_l2", cells=8),
               DenseTarget(ids, w, "pixel_sparse_ce", classes=4, cells=8)]
    stacked = np.concatenate([t.t for t in targets], 1)
    widths = [t.t.shape[1] for t in targets]
    whole = fit.predict(stacked, widths)
    cols = np.cumsum([0] + widths)
    want = [t.losses(whole[:, a:b]) for t, a, b in zip(targets, cols[:-1], cols[1:])]
    for got in (readout_losses_many(fit, targets),
                readout_losses_many(fit, targets, stacked[fit.order])):
        for g, v in zip(got, want):
            np.testing.assert_allclose(g, v, rtol=1e-6, atol=1e-9)
    assert want[0][3] == 0 and want[0].std() > 0
