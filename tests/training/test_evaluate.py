"""Per-image losses: one value per image, whatever else the same loss was used for."""

from __future__ import annotations

import numpy as np
import pytest

from taskonomy_tf.tasks import get_task
from taskonomy_tf.training.evaluate import per_image_losses


def test_a_loss_shared_by_dense_and_vector_tasks_keeps_both_ranks():
    """Colorization (dense) and object classes (vectors) share soft cross-
    entropy; scoring one, then the other at several sizes, once traced the
    shared function down to an unknown rank (a ValueError in the whole-graph
    run)."""
    rng = np.random.default_rng(0)
    dense, vector = get_task("colorization"), get_task("class_object")
    assert dense.loss == vector.loss
    for n in (3, 5):
        y = rng.dirichlet(np.ones(dense.channels), (n, 4, 4)).astype("float32")
        w = np.ones((n, 4, 4), "float32")
        w[0] = 0  # a masked-out image
        losses = per_image_losses(dense, y, np.full_like(y, 1 / dense.channels), w)
        # soft cross-entropy against the uniform prediction is log(channels)
        np.testing.assert_allclose(losses[1:], np.log(dense.channels), rtol=1e-5)
        assert losses[0] == 0
    for n in (3, 4, 6):
        y = np.eye(vector.channels, dtype="float32")[rng.integers(0, vector.channels, n)]
        pred = np.full_like(y, 1 / vector.channels)
        np.testing.assert_allclose(per_image_losses(vector, y, pred, np.ones(n, "float32")),
                                   np.log(vector.channels), rtol=1e-5)


@pytest.mark.parametrize("task", ["normals", "segment_unsup2d", "segment_semantic",
                                  "room_layout", "egomotion"])
def test_per_image_losses_are_each_image_scored_alone(task):
    """Vectorised over images, the same values as the registered loss's
    masked mean on a batch of that one image."""
    from taskonomy_tf.models.losses import masked_loss

    spec = get_task(task)
    rng = np.random.default_rng(1)
    n, s = 5, 16
    if spec.is_dense:
        pred = rng.normal(size=(n, s, s, spec.channels)).astype("float32")
        labels = spec.loss in ("segment_metric", "pixel_sparse_ce")
        y = (rng.integers(0, 6, (n, s, s, 1)) if labels
             else rng.normal(size=(n, s, s, spec.channels))).astype("float32")
        w = (rng.uniform(size=(n, s, s)) > 0.3).astype("float32")
    else:
        pred = rng.normal(size=(n, spec.channels)).astype("float32")
        y = rng.normal(size=(n, spec.channels)).astype("float32")
        w = np.array([1, 0, 1, 1, 1], "float32")
    losses = per_image_losses(spec, y, pred, w, chunk=2)
    alone = [float(masked_loss(spec.loss)(y[i:i + 1], pred[i:i + 1], w[i:i + 1]))
             for i in range(n)]
    np.testing.assert_allclose(losses, alone, rtol=1e-5, atol=1e-6)
