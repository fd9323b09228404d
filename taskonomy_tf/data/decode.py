"""Decoding of raw domain files into physical units.

``decode_domain`` is written with TensorFlow ops, so the same code runs
eagerly (``decode_raw``, for users who want to look at data) and inside
``tf.data`` (the training pipeline). Every rule returns ``(values, valid)``:

=====================  =============================  ==========================
domain                 values                         valid (False = no label)
=====================  =============================  ==========================
rgb                    float32 (H, W, 3) in [0, 1]    all True
depth_zbuffer/_eucl.   float32 (H, W, 1) metres       raw < 64500 (load_ops)
normal                 float32 (H, W, 3) unit vectors not (128, 128, 128)
principal_curvature    float32 (H, W, 2) k1, k2 in    not (0, 0, 0)
                       8-bit units, 0 = flat (127)
reshading              float32 (H, W, 1) in [0, 1]    all True
edge_*, keypoints*     float32 (H, W, 1) value/65535  all True
segment_unsup*         int32 (H, W, 1) segment ids    all True
segment_semantic       int32 (H, W, 1) raw labels     label > 0 (0 = uncertain)
mask_valid             bool (H, W, 1)                 the mask itself
class_object           float32 (1000,) softmax(logit) True
class_scene            float32 (365,) probabilities   True
card dense_classes     int32 (H, W, 1) class ids      value != the card's ignore
card dense_regression  float32 (H, W, C) in the       all True, or value != 0
                       card's range (PNG: its full    with the card's
                       integer range mapped linearly) ``mask: nonzero``
card classes           int32 (1,) class id            present (stored -1 if not)
card vector            float32 (L,) as given          every entry finite
=====================  =============================  ==========================

Constants: depth is stored in 1/512 m with 65535 for "no geometry"; pixels
at or above 64500 are invalid (taskonomy ``load_ops.py`` margin for
interpolation). Normals and curvature invalid codes were verified on the
real samples (``../shared/data/taskonomy_samples/SOURCE.md``).
"""

from __future__ import annotations

import io

import numpy as np
import tensorflow as tf

from taskonomy_tf.data import schema
from taskonomy_tf.data.pnginfo import png_info
from taskonomy_tf.errors import InputError, UnknownNameError

DEPTH_UNITS_PER_METRE = 512.0  # taskonomy data/README: 1 unit = 1/512 m
DEPTH_INVALID_FROM = 64500  # load_ops.py: raw >= 64500 is masked
NORMAL_INVALID = 128  # (128, 128, 128) = no geometry (verified on samples)
CURVATURE_ZERO = 127.0  # data/README: 127 encodes zero curvature

def resolve_domain(domain: str) -> schema.DomainSpec:
    """Accepts a domain folder name, an old folder name or a file token."""
    name = schema.FOLDER_TO_DOMAIN.get(domain) or schema.TOKEN_TO_DOMAIN.get(domain)
    if name is None:
        raise UnknownNameError(
            f"unknown domain {domain!r}; known: {', '.join(sorted(schema.DOMAINS))}"
        )
    return schema.DOMAINS[name]


def _all_true(x: tf.Tensor) -> tf.Tensor:
    return tf.ones(tf.shape(x)[:2], tf.bool)


def decode_png_tensor(data: tf.Tensor, spec: schema.DomainSpec) -> tf.Tensor:
    """PNG bytes -> uint8 or uint16 tensor (H, W, C) at the domain's bit depth."""
    dtype = tf.uint16 if spec.bit_depth == 16 else tf.uint8  # 8-bit files scale by 257
    channels = 3 if spec.drop_alpha else spec.channels[0] if spec.card else 0
    img = tf.io.decode_png(data, channels=channels, dtype=dtype)
    return tf.ensure_shape(img, [None, None, None])


def physical_from_pixels(domain: str, img: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
    """Decoded PNG pixels (H, W, C) -> ``(values, valid)`` in physical units."""
    rule = resolve_domain(domain).decode
    if rule == "rgb":
        values = tf.cast(img[..., :3], tf.float32) / 255.0
        return values, _all_true(img)
    if rule == "depth":
        raw = tf.cast(img[..., :1], tf.float32)
        return raw / DEPTH_UNITS_PER_METRE, raw[..., 0] < DEPTH_INVALID_FROM
    if rule == "normal":
        v = tf.cast(img[..., :3], tf.float32)
        valid = tf.reduce_any(tf.not_equal(img[..., :3], NORMAL_INVALID), axis=-1)
        n = tf.math.l2_normalize(v * (2.0 / 255.0) - 1.0, axis=-1)
        return n * tf.cast(valid, tf.float32)[..., None], valid
    if rule == "curvature":
        valid = tf.reduce_any(tf.not_equal(img[..., :3], 0), axis=-1)
        return tf.cast(img[..., :2], tf.float32) - CURVATURE_ZERO, valid
    if rule == "unit8_first":
        return tf.cast(img[..., :1], tf.float32) / 255.0, _all_true(img)
    if rule == "unit16":
        return tf.cast(img[..., :1], tf.float32) / 65535.0, _all_true(img)
    if rule == "ids":
        return tf.cast(img[..., :1], tf.int32), _all_true(img)
    if rule == "semantic":
        labels = tf.cast(img[..., :1], tf.int32)
        return labels, labels[..., 0] > 0
    if rule == "binary":
        mask = img[..., :1] > 0
        return mask, mask[..., 0]
    spec = resolve_domain(domain)
    if rule == "card_classes":
        labels = tf.cast(img[..., :1], tf.int32)
        valid = labels[..., 0] != spec.ignore if spec.ignore is not None else _all_true(img)
        return labels, valid
    if rule == "card_scaled":
        return card_scaled(tf.cast(img, tf.float32) / 65535.0, spec, img)
    raise AssertionError(rule)


def card_scaled(unit: tf.Tensor, spec: schema.DomainSpec, raw: tf.Tensor):
    """A card's regression map: ``unit`` in [0, 1] (PNG) onto its range, or
    ``raw`` float values (``.npy``: ``spec.scale`` None here); valid where
    ``raw`` is nonzero with ``mask: nonzero``."""
    values = unit if spec.scale is None else spec.scale[0] + (spec.scale[1] - spec.scale[0]) * unit
    valid = (tf.reduce_any(tf.not_equal(raw, tf.zeros_like(raw)), axis=-1)
             if spec.mask_nonzero else _all_true(raw))
    return values, valid


def physical_from_vector(domain: str, values: tf.Tensor) -> tf.Tensor:
    """A class file's stored float vector -> probabilities (float32)."""
    spec = resolve_domain(domain)
    values = tf.cast(values, tf.float32)
    if spec.decode == "logits":
        return tf.nn.softmax(values)
    return values


def decode_raw(domain: str, data: bytes) -> tuple[np.ndarray, np.ndarray]:
    """Decodes one raw file's bytes into physical units.

    Args:
        domain: domain folder name or file token (``depth_zbuffer``,
            ``class_places``, ...).
        data: the file's bytes (PNG or ``.npy``).

    Returns:
        ``(values, valid)`` as numpy arrays; see the module table for units,
        shapes and dtypes. ``valid`` is (H, W) bool for images, a scalar
        bool for class vectors.

    Raises:
        ValueError: a file of the wrong kind or bit depth for the domain.
    """
    spec = resolve_domain(domain)
    if spec.storage == "json":
        raise InputError(f"{spec.name} holds JSON metadata, not an array: use json.loads")
    if spec.storage == "npy":
        arr = np.load(io.BytesIO(data), allow_pickle=False).astype(np.float32).ravel()
        if arr.size != spec.length:
            raise InputError(f"{spec.name}: expected {spec.length} values, got {arr.size}")
        return physical_from_vector(spec.name, tf.constant(arr)).numpy(), np.array(True)
    info = png_info(data)
    if info.bit_depth != spec.bit_depth:
        raise InputError(
            f"{spec.name}: expected a {spec.bit_depth}-bit PNG, got {info.bit_depth}-bit"
        )
    img = decode_png_tensor(tf.constant(data), spec)
    values, valid = physical_from_pixels(spec.name, img)
    return values.numpy(), valid.numpy()
