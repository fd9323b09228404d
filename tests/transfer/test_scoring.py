"""Scoring fused readouts: each head's per-image loss, as ``per_image_losses``
gives it for that head's predictions alone."""

from __future__ import annotations

import numpy as np
import pytest

from taskonomy_tf.tasks import get_task
from taskonomy_tf.training.evaluate import per_image_losses
from taskonomy_tf.transfer import scoring
from taskonomy_tf.transfer.readout import ReadoutArrays, build_readouts, plan_heads

SIZE = 32


def _test_arrays(rng, spec, n, sources):
    """Codes of every source and view, images, targets of ``spec``'s kind
    and weights with some images (or pixels) left out."""
    side = SIZE // 4
    views = spec.views
    codes = np.maximum(rng.normal(size=(n, len(sources) * views, side, side, 8)), 0)
    image_shape = (n, SIZE, SIZE, 3) if views == 1 else (n, views, SIZE, SIZE, 3)
    images = rng.uniform(-1, 1, size=image_shape)
    if spec.is_dense:
        shape = spec.output_shape(SIZE)
        if spec.loss == "pixel_sparse_ce":
            y = rng.integers(0, spec.channels, (n, *shape[:2], 1))
        else:
            y = rng.normal(size=(n, *shape))
        w = (rng.uniform(size=(n, *shape[:2])) > 0.3).astype("float32")
        w[1] = 0  # an image without a valid pixel scores 0
    else:
        y = rng.normal(size=(n, spec.channels))
        if spec.loss == "soft_ce":
            y = np.exp(y) / np.exp(y).sum(-1, keepdims=True)
        w = np.ones(n, "float32")
        w[1] = 0
    return ReadoutArrays(codes.astype("float32"), y.astype("float32"), w, images.astype("float32"))


@pytest.mark.parametrize("target", ["normals", "segment_semantic", "class_scene",
                                    "fixated_pose"])
def test_every_heads_scores_are_its_own_per_image_losses(target, monkeypatch):
    """Batches of 3 (the last one short), two replicates, heads that read
    one source, two, or the pixels, each with its own random output kernel:
    head h's row is ``per_image_losses`` of the model's h-th output."""
    rng = np.random.default_rng(3)
    spec = get_task(target)
    sources = ["a", "b"]
    test = _test_arrays(rng, spec, 7, sources)
    heads = plan_heads([("a",), ("b",), ("a", "b"), ("pixels",)], [0, 1])
    prior = rng.normal(size=spec.output_shape(SIZE)).astype("float32")
    model = build_readouts(spec, heads, sources, SIZE, prior)
    for layer in model.layers:  # outputs that differ by head
        if layer.name.endswith("_out"):
            layer.kernel.assign(0.3 * rng.normal(size=layer.kernel.shape))
    monkeypatch.setattr(scoring, "MAX_BATCH", 3)
    scores = scoring.score_heads(model, spec, len(heads), test, SIZE, replicates=2,
                                 sources=True, pixels=True)

    feed = {"codes": np.repeat(test.codes[:, None], 2, 1),
            "images": np.repeat(test.images[:, None], 2, 1)}
    pred = np.asarray(model(feed, training=False))  # (N, ..., H, C)
    expected = np.stack([per_image_losses(spec, test.y, pred[..., h, :], test.w)
                         for h in range(len(heads))])
    assert scores.shape == (len(heads), 7) and scores.dtype == np.float64
    np.testing.assert_allclose(scores, expected, rtol=1e-5, atol=1e-7)
    assert (scores[:, 1] == 0).all()  # nothing valid
    assert len(np.unique(np.round(scores[:, 0], 5))) == len(heads)  # the heads differ


def test_a_batch_holds_the_heads_predictions_within_the_bound():
    normals = get_task("normals")  # (64, 64, 3) float32 per head and image at 64 px
    assert scoring.batch_images(normals, 300, 64) == scoring.SCORE_BYTES // (300 * 4 * 64**2 * 3)
    assert scoring.batch_images(normals, 1, 64) == scoring.MAX_BATCH
    assert scoring.batch_images(normals, 10**6, 64) == 1  # one image at least
    # a sampling loss is scored on its 300 fixed pixels (64 channels), not the map
    seg = get_task("segment_unsup2d")
    assert scoring.batch_images(seg, 78, 64) == scoring.SCORE_BYTES // (78 * 4 * 300 * 64)
