"""The transfer readouts of one target, built and trained as one program.

A *candidate* is what a readout reads: one or more frozen sources' codes
(concatenated along channels, as the paper's higher orders), or ``pixels``
(the image, through a small side encoder trained with the readout). Each
candidate is trained ``len(seeds)`` times: replicate r has its own
initialisation and its own order of the transfer images, so the spread of
the replicates is the readout's retraining noise. All (replicate,
candidate) heads of a target form one Keras model (``fused``); a model of
one head is one separate transfer, and gives the same losses.

Every head starts at the target's best constant prediction on the
transfer images (its ``OutputPrior``) and learns the residual, so a source
that carries nothing about the target ends near the ``constant``
candidate, not below it.
"""

from __future__ import annotations

import dataclasses

import keras
import numpy as np
from keras import layers, ops, saving

from taskonomy_tf.errors import InputError
from taskonomy_tf.models.decoders import PRESETS
from taskonomy_tf.models.encoders import REPRESENTATION_CHANNELS, code_stride
from taskonomy_tf.models.layers import OutputPrior, xla_cluster
from taskonomy_tf.models.losses import (
    LOSSES,
    POINT_LOSSES,
    masked_row_means,
)
from taskonomy_tf.tasks import TaskSpec, get_task
from taskonomy_tf.taxonomy.table import PIXELS
from taskonomy_tf.transfer.adam import FusedAdam
from taskonomy_tf.transfer.fused import gather_heads, pixels_front, readout_block
from taskonomy_tf.transfer.scoring import point_count, score_heads, uses_points


@dataclasses.dataclass(frozen=True)
class Head:
    """One readout: ``sources`` (task names, or ``("pixels",)``) and its seed."""

    sources: tuple[str, ...]
    replicate: int
    seed: int


def plan_heads(candidates: list[tuple[str, ...]], seeds: list[int]) -> list[Head]:
    """Every (replicate, candidate) head, replicate-major; a head's seed is
    derived from the replicate's seed and the candidate, so adding a
    candidate never changes another's initialisation."""
    import zlib

    return [Head(tuple(c), r, zlib.crc32(f"{seed}:{'+'.join(c)}".encode()) & 0xFFFFF)
            for r, seed in enumerate(seeds) for c in candidates]


def build_readouts(target: str | TaskSpec, heads: list[Head], sources: list[str],
                   image_size: int, prior: np.ndarray | None = None,
                   points: bool | None = None) -> keras.Model:
    """The fused model of ``heads`` for one target.

    Args:
        heads: from :func:`plan_heads`; heads are grouped by order into blocks.
        sources: the code sources, in the order of the ``codes`` input.
        image_size: the images' side (the codes' side is ``image_size /
            code_stride``).
        prior: the target's constant prediction, one example's shape.
        points: predict at given pixels only (default: where the target's
            loss samples them, ``uses_points``); ``False`` gives the whole
            map, with the same weights.

    Inputs (a dict):
        ``codes``: (B, R, K V, c, c, 8) float32, replicate r's batch of the K
            sources' codes of each of the target's V views (source-major;
            when there are sources); ``images``: (B, R, S, S, 3) in [-1, 1]
            ((B, R, V, S, S, 3) for V > 1), only when a head reads ``pixels``;
            ``points``: (B, P, H) int32, for a target whose loss samples
            pixels (``POINT_LOSSES``): each head's P = ``point_count``
            pixels, row-major indices into its (S', S') output map.

    Returns:
        A model whose output is (B, S', S', H, C) for dense targets, (B, P,
        H, C) at the given pixels for a sampling loss's, and (B, H, C) for
        vector ones: every head's prediction.

    Raises:
        InputError: a head reading a source not in ``sources``.
    """
    spec = get_task(target)
    views = spec.views
    stride = code_stride(image_size)
    side = image_size // stride
    replicates = max(h.replicate for h in heads) + 1
    uses_pixels = any(h.sources == (PIXELS,) for h in heads)
    # one slot per (source, view), source-major: the inputs' second axis
    slots = [(s, v) for s in list(sources) + ([PIXELS] if uses_pixels else [])
             for v in range(views)]
    names = {s for s, _ in slots}
    for h in heads:
        missing = [s for s in h.sources if s not in names]
        if missing:
            raise InputError(f"head {'+'.join(h.sources)}: no codes for {', '.join(missing)}")
    inputs, parts = {}, []
    if sources:
        inputs["codes"] = keras.Input((replicates, len(sources) * views, side, side,
                                       REPRESENTATION_CHANNELS), name="codes")
        parts.append(inputs["codes"])
    if uses_pixels:
        view_axis = (views,) if views > 1 else ()
        images = keras.Input((replicates, *view_axis, image_size, image_size, 3), name="images")
        inputs["images"] = images
        pixel_seeds = [next(h.seed for h in heads if h.replicate == r and h.sources == (PIXELS,))
                       for r in range(replicates)]

        def per_seed(t):  # (B, R[, V], S, S, 3) -> (B V, S, S, 3 R)
            t = ops.reshape(t, (-1, replicates, views, image_size, image_size, 3))
            return ops.reshape(ops.transpose(t, (0, 2, 3, 4, 1, 5)),
                               (-1, image_size, image_size, 3 * replicates))

        side_codes = pixels_front(layers.Lambda(per_seed, name="pixels_stack")(images),
                                  pixel_seeds, side)  # (B V, c, c, R * 8), one encoder per view
        side_codes = layers.Lambda(
            lambda t: ops.transpose(ops.reshape(t, (-1, views, side, side, replicates,
                                                    REPRESENTATION_CHANNELS)), (0, 4, 1, 2, 3, 5)),
            name="pixels_codes")(side_codes)  # (B, R, V, c, c, 8)
        parts.append(side_codes)
    if points is None:
        points = uses_points(spec)
    if points and not spec.is_dense:
        raise InputError(f"{spec.name}: only a dense target is predicted at pixels")
    pixels_at = None
    if points:
        pixels_at = keras.Input((point_count(spec, image_size), len(heads)), dtype="int32",
                                name="points")
        inputs["points"] = pixels_at
    codes = parts[0] if len(parts) == 1 else layers.Concatenate(axis=2, name="slots_in")(parts)
    flat = layers.Reshape((replicates * len(slots), side, side, REPRESENTATION_CHANNELS),
                          name="slots")(codes)
    outputs, built = [], []
    for order in sorted({len(h.sources) for h in heads}):
        block = [i for i, h in enumerate(heads) if len(h.sources) == order]
        per_view = [gather_heads(flat, np.array(
            [heads[i].replicate * len(slots) + slots.index((s, v))
             for i in block for s in heads[i].sources], np.int32),
            name=f"order{order}_inputs" + (f"_view{v}" if views > 1 else ""))
            for v in range(views)]
        x = per_view[0] if views == 1 else layers.Lambda(
            lambda ts: ops.concatenate(ts, axis=0), name=f"order{order}_views")(per_view)
        block_points = None if pixels_at is None else layers.Lambda(
            _take_last(block), name=f"order{order}_points")(pixels_at)
        outputs.append(readout_block(x, spec, [heads[i].seed for i in block], stride,
                                     f"order{order}", views, block_points))
        built += block
    out = outputs[0] if len(outputs) == 1 else layers.Concatenate(axis=-2, name="heads")(outputs)
    if built != sorted(built):  # blocks follow the orders: back to the heads' order
        back = np.argsort(built).astype(np.int32)
        out = layers.Lambda(lambda t: ops.take(t, ops.convert_to_tensor(back), axis=-2),
                            name="heads_in_order")(out)
    if pixels_at is None:
        out = HeadPrior(spec.output_shape(image_size), prior, name="prior")(out)
    else:
        out = HeadPointPrior(spec.output_shape(image_size), prior, name="prior")([out, pixels_at])
    return keras.Model(inputs, out, name=f"readouts_{spec.name}")


def _take_last(index: list[int]):
    """t (..., H) -> (..., len(index)): the columns ``index`` of the last axis."""
    index = np.asarray(index, np.int32)
    return lambda t: ops.take(t, ops.convert_to_tensor(index), axis=-1)


@saving.register_keras_serializable(package="taskonomy_tf")
class HeadPrior(OutputPrior):
    """``OutputPrior`` over several heads: input (B, ..., H, C) residuals, the
    prior of one example's shape ((S, S, C) or (C,)) broadcast over the H
    heads. Non-trainable.
    """

    def call(self, x):
        return ops.cast(x, "float32") + ops.expand_dims(self.prior, -2)


@saving.register_keras_serializable(package="taskonomy_tf")
class HeadPointPrior(OutputPrior):
    """``HeadPrior`` at sampled pixels: inputs ``[x, points]``, x (B, P, H, C)
    residuals at points (B, P, H) (row-major indices into the (S, S) map),
    the prior (S, S, C) read at each head's pixels and added. Non-trainable.
    """

    def call(self, inputs):
        x, points = inputs
        flat = ops.reshape(self.prior, (-1, self.prior_shape[-1]))
        return ops.cast(x, "float32") + ops.take(flat, ops.cast(points, "int32"), axis=0)


@saving.register_keras_serializable(package="taskonomy_tf")
class HeadsLoss(keras.losses.Loss):
    """The sum over heads of each head's task loss on its replicate's batch.

    ``y_true`` packs targets and weights: (B, ..., R, C + 1), the last
    channel being the sample weight (dense: per pixel; vector: per sample);
    ``y_pred`` is (B, ..., H, C), head h reading replicate ``replicates[h]``.
    Each head's term is the registered loss (``TaskSpec.loss``) reduced by
    its masked mean, exactly as a lone readout computes it, so the gradient
    of every head is its own; all heads' values come from one call of the
    loss on the (H B) examples, as one XLA cluster on TensorFlow (its
    gathers, transposes and masked means fused: 1.5x, ``bench/readout_ops.py``).

    A sampling loss (``POINT_LOSSES``: the segmentation metric) gets its
    pixels drawn beforehand, each head its own (``train_readouts``):
    ``y_true`` is then (B, P, H, 2), each head's labels at its P pixels and
    a weight, ``y_pred`` (B, P, H, C) its predictions there. The weight of
    an image's pixels is its valid pixels over P, so that, as the loss of
    the whole map does, images weigh by their valid pixels.

    Args:
        kind: a key of ``models.losses.LOSSES``.
        replicates: the replicate index of each head.
    """

    def __init__(self, kind: str, replicates, name: str | None = None, **kwargs):
        kwargs.pop("reduction", None)
        super().__init__(name=name or f"heads_{kind}", reduction="sum", **kwargs)
        self.kind = kind
        self.replicates = [int(r) for r in replicates]
        self.points = kind in POINT_LOSSES
        self.fn = POINT_LOSSES[kind] if self.points else LOSSES.get(kind)

    def call(self, y_true, y_pred):
        return _heads_loss_cluster(y_true, y_pred, self.fn, self.points, tuple(self.replicates))

    def get_config(self):
        return {"kind": self.kind, "replicates": self.replicates, "name": self.name}


def _heads_loss(y_true, y_pred, fn, points: bool, replicates: tuple):
    """``HeadsLoss``'s value: the sum over heads of each head's masked mean."""
    heads = len(replicates)
    packed = ops.cast(y_true, "float32")
    if not points:  # every head's (target, prediction) pair, heads first
        packed = ops.take(packed, ops.convert_to_tensor(replicates, "int32"), axis=-2)
    packed = ops.moveaxis(packed, -2, 0)  # (H, B, ..., C + 1)
    pred = ops.moveaxis(ops.cast(y_pred, "float32"), -2, 0)
    weight = packed[..., -1]  # the shape of the loss's values: (H, B, ...)
    # dynamic shapes: the cluster, traced once per process, relaxes the
    # shapes of later jobs' calls to unknown sizes
    values = ops.cast(fn(ops.reshape(packed, (-1, *ops.shape(packed)[2:]))[..., :-1],
                         ops.reshape(pred, (-1, *ops.shape(pred)[2:])), None), "float32")
    if points:  # (H B,) per image -> over its pixels
        values = ops.broadcast_to(values[:, None],
                                  (ops.shape(values)[0], ops.shape(weight)[-1]))
    return ops.sum(masked_row_means(ops.reshape(values, (heads, -1)),
                                    ops.reshape(weight, (heads, -1))))


_heads_loss_cluster = xla_cluster(_heads_loss)


def pack_targets(y: np.ndarray, w: np.ndarray) -> np.ndarray:
    """(N, ..., C) targets and (N, ...) weights -> (N, ..., C + 1) float32."""
    y = np.asarray(y, np.float32)
    w = np.asarray(w, np.float32)
    while w.ndim < y.ndim:
        w = w[..., None]
    return np.concatenate([y, np.broadcast_to(w, y.shape[:-1] + (1,))], -1)


@dataclasses.dataclass
class ReadoutArrays:
    """One split's inputs and targets for a target's readouts.

    Attributes:
        codes: (N, K V, c, c, 8) float32, the K sources' codes of each of the
            sample's V views (source-major).
        y, w: (N, ...) targets and weights (``make_dataset``'s).
        images: (N, S, S, 3) ((N, V, S, S, 3) for V views) float32 in
            [-1, 1], when ``pixels`` is read.
    """

    codes: np.ndarray
    y: np.ndarray
    w: np.ndarray
    images: np.ndarray | None = None


def batch_order(n: int, steps: int, batch_size: int, seed: int) -> np.ndarray:
    """(steps, batch_size) image indices: a fresh permutation of the n
    images per epoch (whole batches only), drawn from ``seed``."""
    rng = np.random.default_rng(seed)
    per_epoch = n // batch_size
    epochs = -(-steps // per_epoch)
    order = np.concatenate([rng.permutation(n)[:per_epoch * batch_size] for _ in range(epochs)])
    return order[:steps * batch_size].reshape(steps, batch_size)


def fc_parameters(target: str | TaskSpec, image_size: int) -> int:
    """Weights of one head's fully connected decoder (0 for dense targets):
    the flattened two-stream code of every view into the ``small`` preset's
    width, its hidden layers, the output. With their gradients, Adam's two
    moments and the products' transient copies they cost about 8 float32
    copies (calibration, December 5: egomotion at 64 px, 78 heads of 3.2 M
    weights in one program grew the process by 8.1 GB, 104 MB a head)."""
    spec = get_task(target)
    if spec.is_dense:
        return 0
    side = image_size // code_stride(image_size)
    width = PRESETS["small"]["fc"]
    inputs = side * side * 2 * REPRESENTATION_CHANNELS * spec.views
    return inputs * width + (spec.fc_layers - 2) * width * width + width * spec.channels


def _programs(heads: list[Head], max_heads: int) -> list[list[Head]]:
    """``heads`` (replicate-major) in consecutive programs of at most
    ``max_heads``: whole replicates together while they fit, else each
    replicate in parts (a program's replicates are whole or alone)."""
    replicates: dict[int, list[Head]] = {}
    for h in heads:
        replicates.setdefault(h.replicate, []).append(h)
    groups = list(replicates.values())
    per_program = max_heads // max(len(g) for g in groups)
    if per_program >= 1:
        return [sum(groups[i:i + per_program], []) for i in range(0, len(groups), per_program)]
    return [g[i:i + max_heads] for g in groups for i in range(0, len(g), max_heads)]


def train_readouts(target: str | TaskSpec, heads: list[Head], sources: list[str],
                   train: ReadoutArrays, test: ReadoutArrays, image_size: int,
                   prior: np.ndarray, data_seeds: list[int], steps: int = 300,
                   batch_size: int = 16, learning_rate: float = 5e-3,
                   steps_per_execution: int = 10, max_heads: int | None = None) -> np.ndarray:
    """Trains the heads together; returns each head's per-image test losses.

    Replicate r's heads see the batches of ``batch_order(..., data_seeds[r])``;
    the learning rate warms up over 5% of the steps, then follows a cosine
    decay to 1% (Adam). With ``max_heads``, the heads run in programs of at
    most that many, one after another (to bound memory: a head's losses do
    not depend on the heads it shares a program with, except for the pixels
    a sampling loss draws: each head draws them from its own seed).

    Returns:
        (H, N_test) float64: the target's loss (``TaskSpec.loss``, masked as
        in training) of every head on every test image.
    """
    if max_heads is not None and len(heads) > max_heads:
        parts = []
        for chunk in _programs(heads, max_heads):
            used = sorted({h.replicate for h in chunk})
            chunk = [dataclasses.replace(h, replicate=used.index(h.replicate)) for h in chunk]
            parts.append(train_readouts(target, chunk, sources, train, test, image_size, prior,
                                        [data_seeds[r] for r in used], steps, batch_size,
                                        learning_rate, steps_per_execution))
        return np.concatenate(parts)
    import tensorflow as tf

    spec = get_task(target)
    replicates = len(data_seeds)
    batch_size = min(batch_size, len(train.y))
    # weights, dropout masks and sampled pixels come from each head's own seed:
    # a head trains the same alone or beside others, in any program
    model = build_readouts(spec, heads, sources, image_size, prior)
    warmup = max(1, steps // 20)
    schedule = keras.optimizers.schedules.CosineDecay(
        learning_rate / 10, max(1, steps - warmup), alpha=0.01,
        warmup_target=learning_rate, warmup_steps=warmup)
    model.compile(optimizer=FusedAdam(schedule),
                  loss=HeadsLoss(spec.loss, [h.replicate for h in heads]),
                  steps_per_execution=min(steps_per_execution, steps))
    order = np.stack([batch_order(len(train.y), steps, batch_size, s) for s in data_seeds], 1)
    points = uses_points(spec)
    arrays = {}
    if points:  # labels per pixel and each image's valid pixels, to draw from
        count = point_count(spec, image_size)
        arrays["labels"] = np.asarray(train.y, np.float32).reshape(len(train.y), -1, 1)
        arrays["valid"] = np.asarray(train.w, np.float32).reshape(len(train.y), -1).sum(1) / count
    else:
        arrays["y"] = pack_targets(train.y, train.w)
    if sources:
        arrays["codes"] = train.codes
    pixels = any(h.sources == (PIXELS,) for h in heads)
    if pixels:
        arrays["images"] = train.images
    consts = {k: tf.constant(v) for k, v in arrays.items()}
    head_replicates = tf.constant([h.replicate for h in heads], tf.int32)

    def draw(step, idx):
        """Each head's pixels of this step, from its seed and the step (the
        same in any program), and its labels there: (B, P, H) and
        (B, P, H, 2)."""
        n = arrays["labels"].shape[1]
        noise = tf.stack([tf.random.stateless_uniform(
            (batch_size, n), tf.stack([tf.constant(h.seed, tf.int64), step])) for h in heads])
        chosen = tf.math.top_k(noise, count).indices  # (H, B, P)
        rows = tf.gather(idx, head_replicates)  # (H, B): each head's replicate's images
        labels = tf.gather(tf.gather(consts["labels"], rows), chosen, batch_dims=2)
        valid = tf.broadcast_to(tf.gather(consts["valid"], rows)[..., None, None],
                                tf.shape(labels))
        y = tf.transpose(tf.concat([labels, valid], -1), [1, 2, 0, 3])
        return tf.transpose(chosen, [1, 2, 0]), y

    def gather(step, idx):  # idx (R, B) -> one step's inputs, replicate axis after the batch
        out = {k: tf.transpose(tf.gather(v, idx), [1, 0] + list(range(2, v.ndim + 1)))
               for k, v in consts.items() if k in ("codes", "images", "y")}
        if points:
            out["points"], y = draw(step, idx)
            return out, y
        y = out.pop("y")  # (B, R, ..., C + 1) -> (B, ..., R, C + 1)
        rank = y.shape.rank
        return out, tf.transpose(y, [0] + list(range(2, rank - 1)) + [1, rank - 1])

    ds = tf.data.Dataset.from_tensor_slices(order).enumerate()
    ds = ds.map(tf.autograph.experimental.do_not_convert(gather)).prefetch(2)  # graph code
    model.fit(ds, steps_per_epoch=steps, epochs=1, verbose=0, shuffle=False)
    return score_heads(model, spec, len(heads), test, image_size, replicates,
                       sources=bool(sources), pixels=pixels)
