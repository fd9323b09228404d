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
WORK_BYTES = Registry("constant rule's work memory")
LOG_FLOOR = 1e-6  # probabilities below this become log(1e-6) logits
WEISZFELD_STEPS = 200
# numpy's work arrays while a constant is computed stay near this size: the
# rules take a slice of the examples (or of the elements) at a time. Whole, a
# median over 16k labels at 256 px would sort 26 GB, and a one-hot of 16k
# semantic maps of 18 classes at 256 px would take 150 GB.
CHUNK_BYTES = 256 * 2**20
# work bytes per value, with a margin over tracemalloc's measure: the
# median's transposed values and weights, sort order (int64), sorted
# weights, their cumulative sum and a comparison (28 measured); the mean's
# weighted product (4.2); the one-hot's values and weighted product (float32
# each) and the labels as int64, per pixel and class (8 + 8 / classes)
MEDIAN_BYTES = 32
MEAN_BYTES = 6
ONE_HOT_BYTES = 12
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
    one where the cumulative weight is exactly half); ``w`` broadcasts to
    ``y`` (a view of it is enough).

    Sorted with the examples on the last, contiguous axis (2040 x 12288
    values: 0.4 s, against 3.3 s along axis 0), a slice of axis 1 at a
    time so that the sort's arrays stay near ``CHUNK_BYTES``.
    """
    w = np.broadcast_to(w, y.shape)
    n, out = len(y), np.empty(y.shape[1:], y.dtype)
    for part in _slices(y.shape, MEDIAN_BYTES):
        yt = np.ascontiguousarray(y[:, part].reshape(n, -1).T)
        wt = np.ascontiguousarray(w[:, part].reshape(n, -1).T)
        order = np.argsort(yt, axis=1)  # ties share a value: any order gives the same median
        cw = np.cumsum(np.take_along_axis(wt, order, 1), 1)
        idx = np.argmax(cw >= cw[:, -1:] / 2, axis=1)
        rows = np.arange(len(yt))
        out[part] = yt[rows, order[rows, idx]].reshape(out[part].shape)
    return out


def _slices(shape: tuple, bytes_per_value: int) -> list[slice]:
    """Slices of axis 1 of an (N, D1, ...) array, each about ``CHUNK_BYTES``
    of work at ``bytes_per_value`` per value (at least one index)."""
    per_index = shape[0] * int(np.prod(shape[2:], dtype=np.int64))
    step = max(1, CHUNK_BYTES // max(1, bytes_per_value * per_index))
    return [slice(i, i + step) for i in range(0, shape[1], step)]


def _rows(n: int, values_per_row: int, bytes_per_value: int) -> list[slice]:
    """Slices of the examples, each about ``CHUNK_BYTES`` of work."""
    step = max(1, CHUNK_BYTES // max(1, bytes_per_value * values_per_row))
    return [slice(i, i + step) for i in range(0, n, step)]


@CONSTANTS.register("masked_l1")
def _l1(y, w, channels):
    return weighted_median(y, _expand(w, y))


def _mean(y, w, channels):
    num = np.zeros(y.shape[1:], np.float64)
    den = np.zeros(y.shape[1:], np.float64)
    for part in _rows(len(y), int(np.prod(y.shape[1:])), MEAN_BYTES):
        we = _expand(w[part], y[part])
        num += (we * y[part]).sum(0, dtype=np.float64)
        den += we.sum(0, dtype=np.float64)
    return num / np.maximum(den, 1e-12)


CONSTANTS.register("masked_l2")(_mean)
CONSTANTS.register("mse")(_mean)


@CONSTANTS.register("soft_ce")
def _soft_ce(y, w, channels):
    return np.log(np.maximum(_mean(y, w, channels), LOG_FLOOR))


@CONSTANTS.register("pixel_sparse_ce")
def _sparse_ce(y, w, channels):
    k = channels or int(y[..., 0].max()) + 1
    num = np.zeros((*y.shape[1:-1], k), np.float64)
    den = np.zeros((*y.shape[1:-1], 1), np.float64)
    for part in _rows(len(y), int(np.prod(y.shape[1:-1])) * k, ONE_HOT_BYTES):
        onehot = np.eye(k, dtype=np.float32)[y[part, ..., 0].astype(np.int64)]  # (n, H, W, K)
        we = _expand(w[part], onehot)
        num += (we * onehot).sum(0, dtype=np.float64)
        den += we[..., :1].sum(0, dtype=np.float64)
    return np.log(np.maximum(num / np.maximum(den, 1e-12), LOG_FLOOR))


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
    if n > SEGMENT_FIT_STEPS * batch:  # a seeded sample the steps take once
        keep = np.sort(np.random.default_rng(0).choice(n, SEGMENT_FIT_STEPS * batch, False))
        y, weight = y[keep], weight[keep]
    passes = max(1, round(SEGMENT_FIT_STEPS * batch / len(y)))  # whole passes, as one epoch
    if passes > 1:
        y, weight = np.concatenate([y] * passes), np.concatenate([weight] * passes)
    model.fit(np.zeros((len(y), 1), np.float32), y, sample_weight=weight, batch_size=batch,
              shuffle=False, verbose=0, epochs=1)
    return np.asarray(table.bias).reshape(shape)


def constant_bytes(loss: str, n: int, example_shape: tuple, channels: int | None = None) -> int:
    """Estimated work memory (bytes) of ``best_constant`` on ``n`` examples
    of ``example_shape`` (the targets' shape without the batch axis), beyond
    the targets, the weights and their per-image normalised copy: one chunk
    of each rule's work arrays and its float64 sums (``WORK_BYTES``, by
    loss; tested against tracemalloc's peak in tests/models/test_constant.py)."""
    return int(WORK_BYTES.get(loss)(n, tuple(example_shape), channels))


def _values(shape: tuple) -> int:
    return int(np.prod(shape, dtype=np.int64))


WORK_BYTES.register("masked_l1")(
    lambda n, shape, k: min(CHUNK_BYTES, MEDIAN_BYTES * n * _values(shape)) + 8 * _values(shape))
for _loss in ("masked_l2", "mse", "soft_ce"):
    WORK_BYTES.register(_loss)(
        lambda n, shape, k: min(CHUNK_BYTES, MEAN_BYTES * n * _values(shape))
        + 24 * _values(shape))


@WORK_BYTES.register("pixel_sparse_ce")
def _sparse_ce_bytes(n, shape, k):
    cells = _values(shape[:-1]) * (k or 256)  # pixels x classes
    return min(CHUNK_BYTES, ONE_HOT_BYTES * n * cells) + 24 * cells


@WORK_BYTES.register("segment_metric")
def _segment_bytes(n, shape, k):
    """Keras' copies of the examples the fit takes (at most
    ``SEGMENT_FIT_STEPS`` batches' worth, repeated to that many) and the
    fitted table with Adam's moments."""
    fitted = SEGMENT_FIT_STEPS * min(SEGMENT_FIT_BATCH, n)
    return 3 * 4 * fitted * _values(shape) + 64 * _values(shape[:-1]) * (k or 1)


for _loss in ("pose_norm", "ego_cycle"):  # Weiszfeld's (N, D) float64 temporaries
    WORK_BYTES.register(_loss)(lambda n, shape, k: 24 * n * _values(shape))
