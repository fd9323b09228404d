"""Training targets from decoded domains, and the input rules, in TF ops.

A target encoding (registry ``TARGETS``, keyed by ``TaskSpec.decode``)
takes the task spec, the decoded domain ``(values, valid)`` already resized
to the image size, and returns ``(target, weight)``: the target scaled as
the original code did (``load_ops.py``) and a per-pixel (dense tasks) or
per-sample weight that is 0 where there is no label.

Input rules (registry ``INPUTS``, keyed by ``TaskSpec.input``) turn the RGB
image in [0, 1] into the network input in [-1, 1]; random ones take a
stateless seed so the pipeline is deterministic.
"""

from __future__ import annotations

import functools
import itertools
import math

import numpy as np
import tensorflow as tf

from taskonomy_tf.registry import Registry
from taskonomy_tf.tasks import TaskSpec
from taskonomy_tf.tasks.classes import PLACES365_KEEP

TARGETS = Registry("target encoding")
INPUTS = Registry("input rule")

# Curvature standardisation of the 8-bit k1, k2 values (load_ops.py).
CURVATURE_MEAN = (123.572, 120.1)
CURVATURE_STD = (31.922, 21.658)
DEPTH_LOG_SCALE = math.log(2.0**16)  # log(1 + raw) / log(2^16), load_ops.py
MASK_BINARISE = 0.99  # resized masks below this become 0 (load_ops.py)
DENOISE_STD = 0.1  # Gaussian noise of variance 0.01 on [0, 1] (denoise config)
JIGSAW_PERMUTATIONS = 100  # max-Hamming permutation set size (load_ops.py)
JIGSAW_TILE_FRACTION = 0.9  # each tile is 90% of its cell (load_ops.py)
AB_GRID = 10.0  # ab bin spacing (Zhang et al. 2016)
AB_NEIGHBOURS, AB_SIGMA = 10, 5.0  # soft encoding (reference section 8)


def _unit_to_signed(x: tf.Tensor) -> tf.Tensor:
    return x * 2.0 - 1.0


@TARGETS.register("rgb")
def _rgb(spec: TaskSpec, values, valid):
    return _unit_to_signed(values), tf.cast(valid, tf.float32)


@TARGETS.register("reshading")
def _reshading(spec, values, valid):
    return _unit_to_signed(values), tf.cast(valid, tf.float32)


@TARGETS.register("unit16_range")
def _unit16_range(spec, values, valid):
    lo, hi = spec.value_range
    x = (values - lo) / (hi - lo)
    if spec.clip:
        x = tf.clip_by_value(x, 0.0, 1.0)
    x = _unit_to_signed(x)
    if spec.blur_sigma:  # sigma given at 256 px
        x = gaussian_blur(x, spec.blur_sigma * x.shape[0] / 256.0)
    return x, tf.cast(valid, tf.float32)


@TARGETS.register("log_depth")
def _log_depth(spec, values, valid):
    raw = values * 512.0  # metres -> 1/512 m units
    return tf.math.log1p(raw) / DEPTH_LOG_SCALE, tf.cast(valid, tf.float32)


@TARGETS.register("normals")
def _normals(spec, values, valid):
    w = tf.cast(valid, tf.float32)
    return values * w[..., None], w


@TARGETS.register("curvature")
def _curvature(spec, values, valid):
    eight_bit = values + 127.0
    x = (eight_bit - tf.constant(CURVATURE_MEAN)) / tf.constant(CURVATURE_STD)
    w = tf.cast(valid, tf.float32)
    return x * w[..., None], w


@TARGETS.register("segment_ids")
def _segment_ids(spec, values, valid):
    return values, tf.cast(valid, tf.float32)


@TARGETS.register("semantic_labels")
def _semantic(spec, values, valid):
    # load_ops: label 0 (uncertain) -> 1, then minus 1: 17 classes, 0 = background
    labels = tf.maximum(values, 1) - 1
    return labels, tf.cast(valid, tf.float32)


@TARGETS.register("softmax_logits")
def _softmax(spec, values, valid):
    return values, tf.cast(valid, tf.float32)


@TARGETS.register("places63")
def _places63(spec, values, valid):
    kept = tf.gather(values, list(PLACES365_KEEP))
    return tf.math.divide_no_nan(kept, tf.reduce_sum(kept)), tf.cast(valid, tf.float32)


@TARGETS.register("ab_bins")
def _ab_bins(spec, values, valid):
    side = tf.shape(values)[0] // spec.output_stride
    small = tf.image.resize(values, [side, side], antialias=True)
    ab = rgb_to_lab(small)[..., 1:]
    return soft_encode_ab(ab), tf.image.resize(
        tf.cast(valid, tf.float32)[..., None], [side, side])[..., 0]


# ------------------------------------------------- dataset-card labels (data.card)
@TARGETS.register("card_class_map")
def _card_class_map(spec, values, valid):
    """Class ids; an ignored pixel (weight 0) becomes class 0, a valid index."""
    return tf.where(valid[..., None], values, tf.zeros_like(values)), tf.cast(valid, tf.float32)


@TARGETS.register("card_range")
def _card_range(spec, values, valid):
    """The card's ``range`` onto [-1, 1], unclipped (as the Taskonomy encodings)."""
    lo, hi = spec.value_range
    w = tf.cast(valid, tf.float32)
    return _unit_to_signed((values - lo) / (hi - lo)) * w[..., None], w


@TARGETS.register("card_one_hot")
def _card_one_hot(spec, values, valid):
    return tf.one_hot(values[0], spec.channels), tf.cast(valid, tf.float32)


@TARGETS.register("card_vector")
def _card_vector(spec, values, valid):
    return values, tf.cast(valid, tf.float32)


@TARGETS.register("jigsaw_permutation")
def _jigsaw(spec, values, valid):
    raise RuntimeError("the jigsaw label is made by the 'jigsaw_tiles' input rule, "
                       "together with the tiles")


# ------------------------------------------------------------ helpers
def gaussian_blur(x: tf.Tensor, sigma: float) -> tf.Tensor:
    """Gaussian blur of an (H, W, C) float map with ``sigma`` in pixels and a
    kernel of radius ceil(3 sigma): ``keras.ops.image.gaussian_blur`` on the
    map reflect-padded by the radius (the op itself pads with zeros, which
    would darken the borders), cropped back."""
    from keras import ops

    sigma = max(float(sigma), 1e-3)
    r = int(math.ceil(3.0 * sigma))
    padded = tf.pad(x, [[r, r], [r, r], [0, 0]], mode="REFLECT")
    out = ops.image.gaussian_blur(padded[None], (2 * r + 1, 2 * r + 1), (sigma, sigma),
                                  data_format="channels_last")[0]
    return tf.ensure_shape(out[r:-r, r:-r], x.shape)


def rgb_to_lab(rgb: tf.Tensor) -> tf.Tensor:
    """sRGB in [0, 1] (..., 3) -> CIE Lab, D65 white (L in [0, 100])."""
    lin = tf.where(rgb <= 0.04045, rgb / 12.92, tf.pow((rgb + 0.055) / 1.055, 2.4))
    m = tf.constant([[0.412453, 0.357580, 0.180423],
                     [0.212671, 0.715160, 0.072169],
                     [0.019334, 0.119193, 0.950227]])
    xyz = tf.linalg.matvec(m, lin) / tf.constant([0.950456, 1.0, 1.088754])
    f = tf.where(xyz > 0.008856, tf.pow(tf.maximum(xyz, 1e-12), 1 / 3), 7.787 * xyz + 16 / 116)
    lum = tf.where(xyz[..., 1] > 0.008856, 116.0 * f[..., 1] - 16.0, 903.3 * xyz[..., 1])
    return tf.stack([lum, 500.0 * (f[..., 0] - f[..., 1]), 200.0 * (f[..., 1] - f[..., 2])], -1)


@functools.lru_cache(maxsize=1)
def ab_bins() -> np.ndarray:
    """Centres (K, 2) of the 10-unit ab cells reachable from 8-bit sRGB: the
    cube's six faces at full resolution plus its interior every 4 levels."""
    full = np.arange(256, dtype=np.float32) / 255.0
    u, v = (a.ravel() for a in np.meshgrid(full, full, indexing="ij"))
    faces = [np.stack([c, u, v], -1)[:, np.roll(np.arange(3), r)]
             for r in range(3) for c in (np.zeros_like(u), np.ones_like(u))]
    coarse = full[::4]
    inner = np.stack(np.meshgrid(coarse, coarse, coarse, indexing="ij"), -1).reshape(-1, 3)
    with tf.init_scope():  # eager even when first called while tracing
        lab = rgb_to_lab(tf.constant(np.concatenate([*faces, inner]))).numpy()
    cells = np.unique(np.round(lab[:, 1:] / AB_GRID), axis=0)
    return (cells * AB_GRID).astype(np.float32)


def soft_encode_ab(ab: tf.Tensor) -> tf.Tensor:
    """(H, W, 2) ab -> (H, W, K) soft targets over ``ab_bins`` (10 NN, sigma 5)."""
    bins = tf.constant(ab_bins())
    d2 = tf.reduce_sum(tf.square(ab[..., None, :] - bins), -1)  # (H, W, K)
    neg, idx = tf.math.top_k(-d2, AB_NEIGHBOURS)
    w = tf.exp(neg / (2 * AB_SIGMA**2))
    w = w / tf.reduce_sum(w, -1, keepdims=True)
    onehots = tf.one_hot(idx, len(ab_bins()))  # (H, W, N, K)
    return tf.reduce_sum(onehots * w[..., None], -2)


@functools.lru_cache(maxsize=1)
def jigsaw_permutations() -> np.ndarray:
    """100 permutations of 9 tiles, far apart: each next one maximises its
    minimum Hamming distance to those chosen, ties broken by the sum
    (Noroozi & Favaro 2016; Taskonomy's own set, a greedy sum, is not
    redistributed)."""
    perms = np.array(list(itertools.permutations(range(9))), np.int8)
    chosen = [0]  # the identity first, deterministically
    nearest = np.full(len(perms), 9, np.int32)
    total = np.zeros(len(perms), np.int32)
    for _ in range(JIGSAW_PERMUTATIONS - 1):
        d = (perms != perms[chosen[-1]]).sum(1)
        nearest = np.minimum(nearest, d)
        total += d
        score = nearest * 1000 + total
        score[chosen] = -1
        chosen.append(int(np.argmax(score)))
    return perms[chosen].astype(np.int32)


# ------------------------------------------------------------ inputs
@INPUTS.register("rgb")
def _in_rgb(image, seed, spec):
    return _unit_to_signed(image), None


@INPUTS.register("noisy_rgb")
def _in_noisy(image, seed, spec):
    noise = tf.random.stateless_normal(tf.shape(image), seed, stddev=DENOISE_STD)
    return _unit_to_signed(tf.clip_by_value(image + noise, 0.0, 1.0)), None


@INPUTS.register("luminance")
def _in_luminance(image, seed, spec):
    lum = rgb_to_lab(image)[..., :1]
    return lum / 50.0 - 1.0, None


@INPUTS.register("centre_masked")
def _in_centre(image, seed, spec):
    s = tf.shape(image)[0]
    q = s // 4  # the centre 128x128 of 256 (inpainting config)
    inner = tf.ones([s - 2 * q, s - 2 * q], tf.float32)
    hole = tf.pad(inner, [[q, q], [q, q]])
    return _unit_to_signed(image) * (1.0 - hole)[..., None], None


def _tiles(image, positions, offsets):
    """The 9 tiles of ``image`` (S, S, 3): tile i is cut from cell
    ``positions[i]`` (row-major 3x3 grid) at offset ``offsets(free)[i]``
    (y, x) within it, ``free`` being the cell's side minus the tile's; a
    ``JIGSAW_TILE_FRACTION`` crop, resized to S -> (9, S, S, 3) in [0, 1]."""
    s = tf.shape(image)[0]
    cell = s // 3
    crop = tf.cast(tf.cast(cell, tf.float32) * JIGSAW_TILE_FRACTION, tf.int32)
    shift = offsets(cell - crop)  # (9, 2) within [0, cell - crop]
    tiles = []
    for i in range(9):
        y = (positions[i] // 3) * cell + shift[i, 0]
        x = (positions[i] % 3) * cell + shift[i, 1]
        tile = tf.image.crop_to_bounding_box(image, y, x, crop, crop)
        tiles.append(tf.image.resize(tile, [s, s]))
    return tf.stack(tiles)


@INPUTS.register("jigsaw_tiles")
def _in_jigsaw(image, seed, spec):
    """(S, S, 3) -> 9 tiles (9, S, S, 3) and the permutation class (one-hot)."""
    perms = tf.constant(jigsaw_permutations())
    k = tf.random.stateless_uniform([], seed, 0, JIGSAW_PERMUTATIONS, tf.int32)
    jitter = tf.random.experimental.stateless_fold_in(seed, 1)
    tiles = _tiles(image, perms[k], lambda free: tf.random.stateless_uniform(
        [9, 2], jitter, 0, free + 1, tf.int32))
    return _unit_to_signed(tiles), tf.one_hot(k, JIGSAW_PERMUTATIONS)


# ------------------------------------------------------------ inputs of a frozen source
# How a trained network is fed when its codes are a transfer's source: its
# own input rule (grayscale for colorization, the same noise for denoising,
# the same mask for in-painting), except where the training input is a
# puzzle. Jigsaw's encoder is one tower of the nine (reference section 3):
# as a source it sees the nine tiles in their own places, centred in their
# cells, and ``SOURCE_POOLING`` turns the nine tile codes into one code map.
SOURCE_INPUTS = Registry("source input rule")
SOURCE_POOLING = Registry("source code pooling")


@SOURCE_INPUTS.register("jigsaw_tiles")
def _src_jigsaw(image, seed, spec):
    centred = tf.fill([9, 2], 0)
    return _unit_to_signed(_tiles(image, tf.range(9), lambda free: centred + free // 2)), None


@SOURCE_POOLING.register("jigsaw_tiles")
def mosaic(codes):
    """Tile codes (N, 9, c, c, k) -> (N, c, c, k): each tile's code placed at
    its tile's cell of a 3x3 mosaic (3c, 3c), then 3x3 average-pooled back
    to c x c, so that a code cell describes the same part of the image as a
    whole-image encoder's would (our choice; the paper transfers from jigsaw
    without saying how its tower codes are arranged)."""
    n, t, c, _, k = codes.shape
    g = int(round(t ** 0.5))
    grid = codes.reshape(n, g, g, c, c, k).transpose(0, 1, 3, 2, 4, 5).reshape(n, g * c, g * c, k)
    return grid.reshape(n, c, g, c, g, k).mean(axis=(2, 4))


def source_input(image, seed, spec: TaskSpec):
    """The input of ``spec``'s network when its codes feed a transfer:
    (S, S, C) in [-1, 1], or (T, S, S, 3) tiles (pooled by
    ``SOURCE_POOLING``)."""
    rule = SOURCE_INPUTS if spec.input in SOURCE_INPUTS.names() else INPUTS
    return rule.get(spec.input)(image, seed, spec)[0]
