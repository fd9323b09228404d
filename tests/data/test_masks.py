"""Every mask name of the catalog has its rule, a misspelt one is refused, and
each rule zeroes what it should (issue: masks other than depth_valid were
never read, and a typo silently turned masking off)."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import tensorflow as tf

from taskonomy_tf.data.masks import MASKS, apply_mask
from taskonomy_tf.tasks import get_task, list_tasks
from taskonomy_tf.tasks.spec import MASK_RULES


def test_every_mask_name_has_a_rule_and_the_catalog_uses_only_those():
    assert set(MASKS.names()) == set(MASK_RULES)
    assert {t.mask for t in list_tasks()} - {None} <= set(MASK_RULES)


def test_a_misspelt_mask_is_refused():
    with pytest.raises(ValueError, match="mask 'depth_vald'"):
        dataclasses.replace(get_task("normals"), mask="depth_vald")


def _img(a):
    return tf.constant(np.asarray(a))


def test_depth_valid_takes_the_z_buffer_mask_when_the_record_has_one():
    spec = get_task("normals")
    own = np.ones((4, 4), bool)
    depth = np.ones((4, 4), bool)
    depth[0, :] = False
    dom = {"normal": (_img(np.zeros((4, 4, 3), "float32")), _img(own)),
           "depth_zbuffer": (_img(np.zeros((4, 4, 1), "float32")), _img(depth))}
    w = apply_mask(spec, dom, tf.ones((4, 4)))
    np.testing.assert_array_equal(w.numpy(), depth.astype("float32"))
    no_depth = dict(dom, depth_zbuffer=(dom["depth_zbuffer"][0], _img(np.zeros((4, 4), bool))))
    np.testing.assert_array_equal(apply_mask(spec, no_depth, tf.ones((4, 4))).numpy(), 1.0)


def test_file_present_zeroes_a_record_without_the_file():
    spec = get_task("class_scene")
    present = {"class_scene": (_img(np.full(365, 1 / 365, "float32")), _img(True))}
    missing = {"class_scene": (_img(np.zeros(365, "float32")), _img(False))}
    assert float(apply_mask(spec, present, tf.constant(1.0))) == 1.0
    # even if the encoding had given it weight (a uniform target, say)
    assert float(apply_mask(spec, missing, tf.constant(1.0))) == 0.0


def test_label_positive_zeroes_uncertain_pixels():
    spec = get_task("segment_semantic")
    raw = np.array([[0, 1], [5, 0]], "int32")[..., None]
    dom = {"segment_semantic": (_img(raw), _img(np.ones((2, 2), bool)))}
    w = apply_mask(spec, dom, tf.ones((2, 2)))
    np.testing.assert_array_equal(w.numpy(), [[0, 1], [1, 0]])
