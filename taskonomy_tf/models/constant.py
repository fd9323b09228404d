"""The best constant prediction of a task: the floor every network must beat.

``best_constant(loss, targets, weights)`` returns the one prediction, the
same for every input, that minimises the task's loss on the given examples,
in the prediction's own space (logits for cross-entropies). It is what a
network that ignores its input can do at best: the yardstick for task
networks (``metrics.json``: network loss / constant loss) and the
``constant`` candidate of every transfer target; the networks and readouts
also start from it (``layers.OutputPrior``).

The losses are means over images of per-image masked means (``losses``), so
pixel p of image i counts with weight ``w_ip / W_i`` (``W_i`` = that image's
total weight). Rules, registered by loss name (numpy, but for one):

* ``masked_l1``: per element, the weighted median;
* ``masked_l2``, ``mse``: per element, the weighted mean;
* ``soft_ce``: per element, log of the weighted mean distribution;
* ``pixel_sparse_ce``: per pixel, log of the weighted class frequencies;
* ``pose_norm``: the weighted geometric median of the vectors (Weiszfeld);
* ``ego_cycle``: the geometric median of each of the three poses;
* ``segment_metric``: per pixel, an embedding fitted by Adam (the one rule
  that is not closed-form; a single embedding everywhere scores the same
  whatever it is, and worse than any untrained network).
"""

from __future__ import annotations

import numpy as np

from taskonomy_tf.errors import InputError
from taskonomy_tf.registry import Registry

CONSTANTS = Registry("constant rule")
LOG_FLOOR = 1e-6  # probabilities below this become log(1e-6) logits
WEISZFELD_STEPS = 200
# the segmentation metric's position embedding: about this many Adam steps
# (whole epochs) of this batch size at this rate. On the embedded data (2,040
# training views, 64 px) one epoch (128 steps) reaches a val loss within 2%
# of three epochs' (2D 0.143 vs 0.140; 2.5D 0.052 vs 0.053) in 10 s
SEGMENT_FIT_STEPS = 150
SEGMENT_FIT_BATCH = 16
SEGMENT_FIT_RATE = 0.05


def best_constant(loss: str, targets: np.ndarray, weights: np.ndarray | None = None,
                  channels: int | None = None) -> np.ndarray:
    """The best input-independent prediction for ``loss`` on these examples.

    Args:
        loss: a key of ``LOSSES`` (``TaskSpec.loss``).
        targets: (N, ...) targets as ``make_dataset`` yields them.
        weights: (N,) or (N, H, W) sample weights (masks); ``None`` = all 1.
        channels: prediction channels where they differ from the targets'
            (class count for ``pixel_sparse_ce``, embedding size for
            ``segment_metric``).

    Returns:
        float32, one example's prediction shape (no batch axis).

    Raises:
        ValueError: no examples, or a loss without a constant rule.
    """
    y = np.asarray(targets, np.float32)
    if len(y) == 0:
        raise InputError("best_constant: no examples")
    w = np.ones(y.shape[:1], np.float32) if weights is None else np.asarray(weights, np.float32)
    return np.asarray(CONSTANTS.get(loss)(y, _per_image(w), channels), np.float32)


def _per_image(w: np.ndarray) -> np.ndarray:
    """Weights divided by each image's total (the per-image masked mean)."""
    total = w.reshape(len(w), -1).sum(1)
    return w / np.maximum(total, 1e-12).reshape((-1,) + (1,) * (w.ndim - 1))


def _expand(w: np.ndarray, y: np.ndarray) -> np.ndarray:
    while w.ndim < y.ndim:
        w = w[..., None]
    return np.broadcast_to(w, y.shape)


def weighted_median(y: np.ndarray, w: np.ndarray) -> np.ndarray:
    """Per element of ``y[0]``, the weighted median over axis 0 (the lower
    one where the cumulative weight is exactly half).

    Sorted with the examples on the last, contiguous axis (2040 x 12288
    values: 0.4 s, against 3.3 s along axis 0).
    """
    shape = y.shape[1:]
    yt = np.ascontiguousarray(y.reshape(len(y), -1).T)
    wt = np.ascontiguousarray(w.reshape(len(w), -1).T)
    order = np.argsort(yt, axis=1)  # ties share a value: any order gives the same median
    cw = np.cumsum(np.take_along_axis(wt, order, 1), 1)
    idx = np.argmax(cw >= cw[:, -1:] / 2, axis=1)
    rows = np.arange(len(yt))
    return yt[rows, order[rows, idx]].reshape(shape)


@CONSTANTS.register("masked_l1")
def _l1(y, w, channels):
    return weighted_median(y, _expand(w, y))


def _mean(y, w, channels):
    we = _expand(w, y)
    return (we * y).sum(0, dtype=np.float64) / np.maximum(we.sum(0, dtype=np.float64), 1e-12)


CONSTANTS.register("masked_l2")(_mean)
CONSTANTS.register("mse")(_mean)


@CONSTANTS.register("soft_ce")
def _soft_ce(y, w, channels):
    return np.log(np.maximum(_mean(y, w, channels), LOG_FLOOR))


@CONSTANTS.register("pixel_sparse_ce")
def _sparse_ce(y, w, channels):
    labels = y[..., 0].astype(np.int64)
    k = channels or int(labels.max()) + 1
    onehot = np.eye(k)[labels]  # (N, H, W, K)
    return np.log(np.maximum(_mean(onehot, w, k), LOG_FLOOR))


def geometric_median(x: np.ndarray, w: np.ndarray) -> np.ndarray:
    """Weighted geometric median of the rows of ``x`` (Weiszfeld's iteration)."""
    m = (w[:, None] * x).sum(0) / max(w.sum(), 1e-12)
    for _ in range(WEISZFELD_STEPS):
        d = np.maximum(np.linalg.norm(x - m, axis=1), 1e-9)
        nxt = ((w / d)[:, None] * x).sum(0) / (w / d).sum()
        if np.allclose(nxt, m, atol=1e-10):
            break
        m = nxt
    return m


@CONSTANTS.register("pose_norm")
def _pose(y, w, channels):
    return geometric_median(y.reshape(len(y), -1), w.reshape(len(w), -1).mean(1))


@CONSTANTS.register("ego_cycle")
def _ego(y, w, channels):
    blocks = y.reshape(len(y), 3, -1)  # poses 12, 13, 23: the norms add up
    ww = w.reshape(len(w), -1).mean(1)
    return np.concatenate([geometric_median(blocks[:, k], ww) for k in range(3)])


@CONSTANTS.register("segment_metric")
def _segment(y, w, channels):
    """Per pixel, an embedding fitted to the sampled metric loss by Adam:
    pixels that share a segment in most images end up close. One embedding
    everywhere pays the loss's clip on every pair of different segments,
    which any untrained network beats (tests/models/test_constant.py)."""
    import keras

    from taskonomy_tf.models.losses import TaskLoss

    n, h, wd = y.shape[:3]
    shape = (h, wd, channels or 1)
    # input-independent: the input is 0, so the output is the bias, the table
    inp = keras.Input((1,))
    table = keras.layers.Dense(int(np.prod(shape)), dtype="float32",
                               bias_initializer=keras.initializers.RandomNormal(0.0, 0.1, seed=0))
    model = keras.Model(inp, keras.layers.Reshape(shape, dtype="float32")(table(inp)))
    model.compile(keras.optimizers.Adam(SEGMENT_FIT_RATE),
                  loss=TaskLoss("segment_metric", seed=0), jit_compile=False)
    batch = min(SEGMENT_FIT_BATCH, n)
    weight = w if w.ndim == 1 else w.reshape(n, h, wd)
    passes = max(1, round(SEGMENT_FIT_STEPS * batch / n))  # whole passes, as one epoch
    if passes > 1:
        y, weight = np.concatenate([y] * passes), np.concatenate([weight] * passes)
    model.fit(np.zeros((len(y), 1), np.float32), y, sample_weight=weight, batch_size=batch,
              shuffle=False, verbose=0, epochs=1)
    return np.asarray(table.bias).reshape(shape)
