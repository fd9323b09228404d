"""Losses, registered by the names ``TaskSpec.loss`` uses. ``keras.ops`` only.

A registered loss maps ``(y_true, y_pred, seed=None)`` to per-element values:
(B, H, W) for dense tasks (per pixel, mean over channels), (B,) for the
others; ``seed`` (a ``keras.random.SeedGenerator``) feeds the losses that
sample, and without it they draw a fixed sample (reproducible evaluation). The
task's validity mask arrives as the sample weight of the same shape, and
the loss is a masked mean: the sum of weighted values divided by the sum of
the weights (the original's slim masked losses, reference section 8.3), so
masked-out pixels neither count nor dilute. ``TaskLoss`` leaves that
reduction to Keras (``reduction="mean_with_sample_weight"``), which also
divides by the number of replicas under ``tf.distribute`` so that the
summed per-replica gradients are the global batch's; ``masked_loss`` is the
same mean outside Keras' training loop.

* ``masked_l1`` / ``masked_l2``: per pixel, mean over channels;
* ``mse``: low-dimensional regression (room layout, vanishing points);
* ``soft_ce``: cross-entropy against soft class targets (per pixel for
  colorization); predictions are logits;
* ``pixel_sparse_ce``: per-pixel cross-entropy against integer labels;
* ``segment_metric``: the metric loss of the unsupervised segmentations on
  300 pixels per image, drawn anew at every training step (reference
  section 3);
  each image's value is spread over its pixels so that a pixel mask weighs
  images by their valid pixels;
* ``pose_norm``: the unsquared Euclidean norm of the 6-d pose error;
* ``ego_cycle``: egomotion's three pose errors (12, 13, 23) as norms, the
  13 term weighted 0.5 (reference section 8.2).
"""

from __future__ import annotations

from keras import losses, ops, random, saving

from taskonomy_tf.errors import InputError
from taskonomy_tf.models.layers import xla_cluster
from taskonomy_tf.registry import Registry

LOSSES = Registry("loss")
SEGMENT_PIXELS = 300  # sampled pixels per image (reference section 3)
SEGMENT_CLIP = 80.0  # d_ij clipped to [0, 80]
# Losses of pairwise distances between predictions (of SEGMENT_PIXELS^2
# pairs per image: their memory grows with that, see
# ``transfer.memory.head_step_bytes``). A constant prediction (every pixel
# the same embedding) is a stationary point of theirs, the gradient of
# |e_i - e_j|^2 being zero there. A network that starts at its constant
# prior (a zero-initialised last layer) would never leave it, so their last
# layer starts random (``output_initializer``).
PAIRWISE_LOSSES = frozenset({"segment_metric"})
# losses whose labels are one index per pixel (a class, a segment id), not
# one value per output channel
INDEX_LABEL_LOSSES = frozenset({"pixel_sparse_ce", "segment_metric"})
EPS = 1e-7


def masked_mean(values, weight=None):
    """Sum of ``values * weight`` over the sum of ``weight`` (0 when nothing
    is valid); the plain mean without a weight. ``weight`` has the shape of
    ``values`` or one trailing axis of size 1 more."""
    values = ops.cast(values, "float32")
    if weight is None:
        return ops.mean(values)
    weight = ops.cast(weight, "float32")
    if len(weight.shape) == len(values.shape) + 1:
        weight = ops.squeeze(weight, -1)
    weight = ops.broadcast_to(weight, ops.shape(values))
    return ops.divide_no_nan(ops.sum(values * weight), ops.sum(weight))


def masked_row_means(values, weight):
    """``masked_mean`` of each row: values and weight (N, ...) of one shape
    -> (N,), the weighted mean over each row's other axes (0 where its
    weight is all 0)."""
    values, weight = ops.cast(values, "float32"), ops.cast(weight, "float32")
    rows = ops.shape(values)[0]
    return ops.divide_no_nan(ops.sum(ops.reshape(values * weight, (rows, -1)), 1),
                             ops.sum(ops.reshape(weight, (rows, -1)), 1))


def output_initializer(kind: str) -> str:
    """The initializer of a network's last layer for loss ``kind``: ``zeros``
    (the network starts at its constant prior), or ``glorot_uniform`` for the
    losses in ``PAIRWISE_LOSSES``."""
    return "glorot_uniform" if kind in PAIRWISE_LOSSES else "zeros"


def masked_loss(kind: str):
    """The registered loss ``kind`` reduced by ``masked_mean``:
    ``(y_true, y_pred, weight=None, seed=None) -> scalar`` float32."""
    fn = LOSSES.get(kind)
    return lambda y_true, y_pred, weight=None, seed=None: masked_mean(
        fn(y_true, ops.cast(y_pred, "float32"), seed), weight)


@saving.register_keras_serializable(package="taskonomy_tf")
class TaskLoss(losses.Loss):
    """A registered loss by name, reduced by Keras as a masked mean.

    Args:
        kind: a key of ``LOSSES``.
        seed: seed of the generator that sampling losses draw from, one
            draw per call (``None``: a random seed).
    """

    def __init__(self, kind: str, name: str | None = None, seed: int | None = None,
                 **kwargs):
        kwargs.pop("reduction", None)
        kwargs.pop("dtype", None)
        # float32 even under a mixed policy (Loss casts y_pred to its dtype)
        super().__init__(name=name or kind, reduction="mean_with_sample_weight",
                         dtype="float32", **kwargs)
        self.kind = kind
        self.seed = seed
        self.fn = LOSSES.get(kind)
        self.seed_generator = random.SeedGenerator(seed)

    def call(self, y_true, y_pred):
        return self.fn(y_true, y_pred, self.seed_generator)

    def get_config(self):
        return {"kind": self.kind, "name": self.name, "seed": self.seed}


@LOSSES.register("masked_l1")
def masked_l1(y_true, y_pred, seed=None):
    return ops.mean(ops.abs(ops.cast(y_true, "float32") - y_pred), -1)


@LOSSES.register("masked_l2")
def masked_l2(y_true, y_pred, seed=None):
    return ops.mean(ops.square(ops.cast(y_true, "float32") - y_pred), -1)


@LOSSES.register("mse")
def mse(y_true, y_pred, seed=None):
    return ops.mean(ops.square(ops.cast(y_true, "float32") - y_pred), -1)


@LOSSES.register("soft_ce")
def soft_ce(y_true, y_pred, seed=None):
    return -ops.sum(ops.cast(y_true, "float32") * ops.log_softmax(y_pred, axis=-1), -1)


@LOSSES.register("pixel_sparse_ce")
def pixel_sparse_ce(y_true, y_pred, seed=None):
    labels = ops.cast(ops.squeeze(y_true, -1), "int32")
    onehot = ops.one_hot(labels, ops.shape(y_pred)[-1])
    return -ops.sum(onehot * ops.log_softmax(y_pred, axis=-1), -1)


def fixed_pixels(n: int):
    """The pixels every image is scored on (the draw a sampling loss makes
    without a generator): min(SEGMENT_PIXELS, n) distinct indices into a
    map of n pixels (row-major), (k,) int32, the same at every call."""
    return ops.cast(ops.top_k(random.uniform((1, n), seed=0), min(SEGMENT_PIXELS, n))[1][0],
                    "int32")


def _pixel_sample(b, n: int, seed):
    """(b, SEGMENT_PIXELS) int32 pixel indices in [0, n), distinct within an
    image: a new draw per image from ``seed`` (a ``SeedGenerator``) at every
    call; with ``seed`` None (scoring), ``fixed_pixels`` for every image, so
    an image's score does not depend on the batch it is scored in."""
    k = min(SEGMENT_PIXELS, n)
    if seed is None:
        return ops.broadcast_to(fixed_pixels(n)[None], (b, k))
    return ops.cast(ops.top_k(random.uniform((b, n), seed=seed), k)[1], "int32")


def segment_points(seg, emb):
    """The segmentation metric of P pixels per image: seg (B, P) segment ids,
    emb (B, P, C) float32 embeddings -> (B,), the mean over the P^2 pairs of
    the logistic loss of "same segment" against sigma = 2 / (1 + e^d), d the
    squared embedding distance clipped to [0, SEGMENT_CLIP].

    The gradient is written out (``ops.custom_gradient``): the forward pass
    also computes each pair term's derivative with respect to its distance,
    and the backward pass is one product of those with the embeddings,
    instead of automatic differentiation's passes over several (B, P, P)
    intermediates. On TensorFlow the computation is one XLA cluster
    (``layers.xla_cluster``) inside graphs that are not, so its elementwise
    steps over the B P^2 pairs run fused. Together 3.2x faster than the
    formula differentiated automatically in a plain graph, 2.2x than in an
    XLA cluster (416 images of 300 pixels, 2-core CPU: docs/performance.md).
    Other backends compile the whole step already."""
    return _segment_points_cluster(seg, emb)


def _pair_distances(emb):
    """emb (B, P, C) -> (B, P, P) squared distances |e_i|^2 + |e_j|^2 - 2 e_i.e_j."""
    sq = ops.sum(emb * emb, -1)
    return sq[:, :, None] + sq[:, None, :] - 2 * ops.einsum("bic,bjc->bij", emb, emb)


def _pair_terms(dist, same):
    """Each pair's term of the loss, -log of the probability sigma (clipped,
    as the loss reads it) gives the pair's label, and the derivative of the
    mean loss's pair term with respect to ``dist`` (times P^2). ``same``:
    (B, P, P) bool. One log and one division per pair, the label choosing
    which, where the formula weighted by the label takes two of each."""
    d = ops.clip(dist, 0.0, SEGMENT_CLIP)
    raw = 2.0 / (1.0 + ops.exp(d))
    sigma = ops.clip(raw, EPS, 1 - EPS)
    term = -ops.log(ops.where(same, sigma, 1 - sigma))
    # d/d dist of -[s log sigma + (1 - s) log(1 - sigma)], where neither clip
    # is active (the clips pass no gradient, and sigma = raw): with d raw /
    # d d = -raw (1 - raw / 2), 1 - raw / 2 if same, else -raw (1 - raw / 2)
    # / (1 - raw). The denominator is kept finite where it is not used (raw
    # = 1 at distance 0): an infinity in a branch ``where`` drops still
    # made NaN gradients inside XLA's cluster
    live = ops.logical_and(ops.logical_and(dist >= 0.0, dist <= SEGMENT_CLIP),
                           ops.logical_and(raw >= EPS, raw <= 1 - EPS))
    half = 1 - raw / 2
    slope = ops.where(same, half, -raw * half / ops.maximum(1 - raw, EPS))
    return term, ops.where(live, slope, 0.0)


def _segment_points(seg, emb):
    seg = ops.cast(seg, "int32")
    same = ops.equal(seg[:, :, None], seg[:, None, :])
    pairs = ops.cast(ops.shape(same)[1] * ops.shape(same)[2], "float32")  # P^2

    @ops.custom_gradient
    def loss(emb):
        term, slope = _pair_terms(_pair_distances(emb), same)
        value = ops.mean(term, axis=(1, 2))

        def grad(*args, upstream=None):
            # d dist_ij / d e_i = 2 (e_i - e_j), and the terms are symmetric
            # in i, j: e_i's gradient is 4 sum_j g_ij (e_i - e_j)
            upstream = args[0] if upstream is None else upstream
            g = slope * (upstream / pairs)[:, None, None]
            return 4 * (ops.sum(g, -1)[..., None] * emb - ops.einsum("bij,bjc->bic", g, emb))

        return value, grad

    return loss(ops.cast(emb, "float32"))


_segment_points_cluster = xla_cluster(_segment_points)


@LOSSES.register("segment_metric")
def segment_metric(y_true, y_pred, seed=None):
    b = ops.shape(y_pred)[0]
    h, w, c = y_pred.shape[1], y_pred.shape[2], y_pred.shape[3]
    idx = _pixel_sample(b, h * w, seed)
    emb = ops.take_along_axis(ops.reshape(y_pred, (b, h * w, c)), idx[..., None], axis=1)
    seg = ops.take_along_axis(ops.reshape(ops.cast(y_true, "int32"), (b, h * w)), idx, axis=1)
    per_image = segment_points(seg, emb)
    return ops.broadcast_to(per_image[:, None, None], (b, h, w))


def segment_metric_points(y_true, y_pred, seed=None):
    """``segment_metric`` on pixels drawn beforehand: y_true (B, P, 1)
    segment ids, y_pred (B, P, C) -> (B,), each image's value."""
    return segment_points(ops.squeeze(y_true, -1), y_pred)


# The sampling losses on pixels drawn beforehand: kind -> fn(labels (B, P, 1),
# predictions (B, P, C), seed=None) -> (B,) each image's value. A transfer
# readout of such a target computes its output at those pixels only
# (``transfer.readout``).
POINT_LOSSES = {"segment_metric": segment_metric_points}


@LOSSES.register("pose_norm")
def pose_norm(y_true, y_pred, seed=None):
    return ops.sqrt(ops.sum(ops.square(ops.cast(y_true, "float32") - y_pred), -1) + 1e-12)


@LOSSES.register("ego_cycle")
def ego_cycle(y_true, y_pred, seed=None):
    diff = ops.reshape(ops.cast(y_true, "float32") - y_pred, (-1, 3, 6))
    norms = ops.sqrt(ops.sum(ops.square(diff), -1) + 1e-12)  # poses 12, 13, 23
    return norms[:, 0] + 0.5 * norms[:, 1] + norms[:, 2]


@LOSSES.register("none")
def no_loss(y_true, y_pred, seed=None):
    raise InputError("this task has no labels to train on")
