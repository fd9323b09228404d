"""Per-image losses: one value per image, whatever else the same loss was used for."""

from __future__ import annotations

import numpy as np

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
