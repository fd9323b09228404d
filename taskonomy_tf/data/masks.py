"""Validity-mask rules, one per ``TaskSpec.mask`` name (``tasks.spec.MASK_RULES``;
``tests/data/test_masks.py`` checks that each has its rule).

A rule takes the task's spec, the example's decoded domains (``{domain:
(values, valid)}``, ``records.decode_domain``) and the weight its target
encoding gave, and returns the weight with the mask applied: per pixel for
dense tasks, a scalar otherwise. ``None`` keeps the encoding's weight.

* ``depth_valid``: the z-buffer's validity (raw < 64500, bilinear-resized,
  then binarised at 0.99; load_ops' depth mask) where the record has a
  z-buffer, else the task's own validity; downsampled with the same
  binarisation for tasks whose output is smaller than the image;
* ``file_present``: 0 for a record without the task's file (load_ops: a
  missing class file gives mask 0), whatever its encoding did;
* ``label_positive``: 0 where the raw label is 0 (semantic segmentation's
  "uncertain" pixels; reference section on the segment_semantic files).
"""

from __future__ import annotations

import tensorflow as tf

from taskonomy_tf.data.targets import MASK_BINARISE
from taskonomy_tf.registry import Registry
from taskonomy_tf.tasks import TaskSpec

MASKS = Registry("mask rule")
DEPTH_MASK_DOMAIN = "depth_zbuffer"  # load_ops: depth_mask reads the z-buffer


def apply_mask(spec: TaskSpec, dom: dict, w: tf.Tensor) -> tf.Tensor:
    """``w`` (float32) with ``spec.mask``'s rule applied (unchanged for None)."""
    if spec.mask is None:
        return w
    return MASKS.get(spec.mask)(spec, dom, w)


@MASKS.register("depth_valid")
def _depth_valid(spec: TaskSpec, dom: dict, w: tf.Tensor) -> tf.Tensor:
    own = dom[spec.domain][1]
    if DEPTH_MASK_DOMAIN in dom:  # a record without a z-buffer keeps its own validity
        depth = dom[DEPTH_MASK_DOMAIN][1]
        own = tf.cond(tf.reduce_any(depth), lambda: depth, lambda: own)
    own = tf.cast(own, tf.float32)
    if spec.output_stride > 1:
        side = tf.shape(own)[0] // spec.output_stride
        own = tf.cast(tf.image.resize(own[..., None], [side, side])[..., 0] >= MASK_BINARISE,
                      tf.float32)
    return w * own


@MASKS.register("file_present")
def _file_present(spec: TaskSpec, dom: dict, w: tf.Tensor) -> tf.Tensor:
    present = tf.reduce_any(dom[spec.domain][1])  # decode_domain: all False when missing
    return w * tf.cast(present, tf.float32)


@MASKS.register("label_positive")
def _label_positive(spec: TaskSpec, dom: dict, w: tf.Tensor) -> tf.Tensor:
    raw = dom[spec.domain][0]
    positive = tf.cast(raw[..., 0] > 0 if raw.shape.rank == 3 else raw > 0, tf.float32)
    return w * positive

