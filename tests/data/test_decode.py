"""Every domain's decode rule and every target encoding, on known values,
eagerly and inside tf.data."""

from __future__ import annotations

import io
import math

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from taskonomy_tf.data import decode_raw, schema
from taskonomy_tf.data import targets as T
from taskonomy_tf.data.records import decode_domain, feature_spec
from taskonomy_tf.tasks import get_task


def png(arr) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(np.asarray(arr)).save(buf, format="PNG")
    return buf.getvalue()


def npy(arr) -> bytes:
    buf = io.BytesIO()
    np.save(buf, np.asarray(arr, np.float32))
    return buf.getvalue()


def test_depth_in_metres_with_the_invalid_threshold():
    raw = np.array([[512, 1024, 3872], [64499, 64500, 65535]], np.uint16)
    values, valid = decode_raw("depth_zbuffer", png(raw))
    np.testing.assert_allclose(values[..., 0], raw / 512.0)
    np.testing.assert_array_equal(valid, [[True, True, True], [True, False, False]])


def test_depth_refuses_an_8_bit_file():
    with pytest.raises(ValueError, match="16-bit"):
        decode_raw("depth_euclidean", png(np.full((4, 4), 9, np.uint8)))


def test_normals_are_unit_vectors_and_128_is_invalid():
    arr = np.array([[[128, 128, 128], [255, 128, 128]], [[128, 255, 128], [0, 0, 255]]], np.uint8)
    values, valid = decode_raw("normal", png(arr))
    np.testing.assert_array_equal(valid, [[False, True], [True, True]])
    norms = np.linalg.norm(values[valid], axis=-1)
    np.testing.assert_allclose(norms, 1.0, atol=1e-6)
    np.testing.assert_allclose(values[0, 1], [1, 0.0039, 0.0039], atol=1e-3)
    np.testing.assert_allclose(values[1, 1], np.array([-1, -1, 1]) / math.sqrt(3), atol=1e-6)


def test_curvature_two_channels_with_127_as_zero():
    arr = np.array([[[127, 127, 0], [200, 50, 0], [0, 0, 0]]], np.uint8)
    values, valid = decode_raw("principal_curvature", png(arr))
    assert values.shape == (1, 3, 2)
    np.testing.assert_array_equal(values[0, :2], [[0, 0], [73, -77]])
    np.testing.assert_array_equal(valid, [[True, True, False]])


@pytest.mark.parametrize("domain", ["edge_texture", "edge_occlusion", "keypoints2d", "keypoints3d"])
def test_16_bit_responses_scale_to_unit(domain):
    raw = np.array([[0, 655, 65535]], np.uint16)
    values, valid = decode_raw(domain, png(raw))
    np.testing.assert_allclose(values[..., 0], raw / 65535.0, rtol=1e-6)
    assert valid.all()


def test_reshading_uses_one_channel_of_rgb_or_gray():
    rgb = np.zeros((2, 2, 3), np.uint8)
    rgb[..., 0] = 51
    v3, _ = decode_raw("reshading", png(rgb))
    v1, _ = decode_raw("reshading", png(np.full((2, 2), 51, np.uint8)))
    np.testing.assert_allclose(v3, 0.2)
    np.testing.assert_allclose(v1, 0.2)


def test_segments_are_ints_and_semantic_zero_is_uncertain():
    ids = np.array([[0, 7, 255]], np.uint8)
    v, ok = decode_raw("segment_unsup2d", png(ids))
    assert v.dtype == np.int32 and v[0, :, 0].tolist() == [0, 7, 255] and ok.all()
    v, ok = decode_raw("segmentsemantic", png(np.array([[0, 1, 5]], np.uint8)))
    assert v[0, :, 0].tolist() == [0, 1, 5] and ok.tolist() == [[False, True, True]]


def test_class_files_become_probability_vectors():
    logits = np.zeros(1000)
    logits[3] = math.log(1001.0)
    p, ok = decode_raw("class_object", npy(logits))
    assert p.shape == (1000,) and bool(ok)
    np.testing.assert_allclose(p.sum(), 1.0, rtol=1e-5)
    np.testing.assert_allclose(p[3], 1001 / (1001 + 999), rtol=1e-5)
    probs = np.full(365, 1 / 365)
    p, _ = decode_raw("class_places", npy(probs))  # the release's file token
    np.testing.assert_allclose(p, probs, rtol=1e-6)
    with pytest.raises(ValueError, match="expected 365"):
        decode_raw("class_scene", npy(np.ones(10)))


def test_real_sample_depth_at_centre_and_unit_normals(samples_dir):
    d, ok = decode_raw("depth_euclidean",
                       (samples_dir / "point_202_view_5_domain_depth_euclidean.png").read_bytes())
    centre = d[255:257, 255:257, 0].mean()
    assert abs(centre - 7.56) < 0.03  # point_info camera_distance is 7.58 m
    n, ok = decode_raw("normal", (samples_dir / "point_202_view_5_domain_normal.png").read_bytes())
    np.testing.assert_allclose(np.linalg.norm(n[ok], axis=-1), 1.0, atol=1e-5)
    assert 0.8 < ok.mean() < 1.0


# ------------------------------------------------------------ in tf.data
CASES = {
    "depth_zbuffer": png(np.array([[512, 65535], [2000, 64600]], np.uint16)),
    "normal": png(np.array([[[128, 128, 128], [255, 0, 128]], [[10, 20, 30], [200, 100, 50]]],
                           np.uint8)),
    "principal_curvature": png(np.array([[[127, 127, 0], [0, 0, 0]], [[9, 200, 0], [1, 2, 0]]],
                                        np.uint8)),
    "edge_texture": png(np.array([[0, 5000], [65535, 12]], np.uint16)),
    "segment_semantic": png(np.array([[0, 1], [4, 17]], np.uint8)),
    "rgb": png(np.arange(12, dtype=np.uint8).reshape(2, 2, 3) * 20),
}


@pytest.mark.parametrize("domain", sorted(CASES))
def test_decode_is_the_same_eagerly_and_inside_tf_data(domain):
    spec = schema.DOMAINS[domain]
    eager_v, eager_ok = decode_raw(domain, CASES[domain])
    example = tf.train.Example(features=tf.train.Features(feature={
        spec.encoded_key: tf.train.Feature(bytes_list=tf.train.BytesList(value=[CASES[domain]])),
        schema.META_BUILDING: tf.train.Feature(bytes_list=tf.train.BytesList(value=[b"b"])),
        schema.META_POINT: tf.train.Feature(int64_list=tf.train.Int64List(value=[0])),
        schema.META_VIEW: tf.train.Feature(int64_list=tf.train.Int64List(value=[0])),
    })).SerializeToString()
    fs = feature_spec([domain])
    ds = tf.data.Dataset.from_tensors(example).map(
        lambda r: decode_domain(tf.io.parse_single_example(r, fs), domain, 2))
    graph_v, graph_ok = next(iter(ds))
    np.testing.assert_allclose(graph_v.numpy(), eager_v, rtol=1e-6)
    np.testing.assert_array_equal(graph_ok.numpy(), eager_ok)


def test_missing_domain_decodes_to_zero_weight():
    fs = feature_spec(["depth_zbuffer"])
    empty = tf.train.Example(features=tf.train.Features(feature={
        schema.META_BUILDING: tf.train.Feature(bytes_list=tf.train.BytesList(value=[b"b"])),
        schema.META_POINT: tf.train.Feature(int64_list=tf.train.Int64List(value=[0])),
        schema.META_VIEW: tf.train.Feature(int64_list=tf.train.Int64List(value=[0])),
    })).SerializeToString()
    v, ok = decode_domain(tf.io.parse_single_example(empty, fs), "depth_zbuffer", 4)
    assert v.shape == (4, 4, 1) and not ok.numpy().any()


# ------------------------------------------------------------ targets
def encode(task, values, valid=None):
    spec = get_task(task)
    values = tf.constant(values, tf.float32) if not isinstance(values, tf.Tensor) else values
    if valid is None:
        valid = tf.ones(tf.shape(values)[:2] if values.shape.rank == 3 else [], tf.bool)
    y, w = T.TARGETS.get(spec.decode)(spec, values, valid)
    return y.numpy(), w.numpy()


def test_log_depth_target_matches_load_ops():
    metres = np.array([[[0.0], [1.0]], [[10.0], [65535 / 512]]])
    y, _ = encode("depth_zbuffer", metres)
    expected = np.log1p(metres * 512) / math.log(2**16)
    np.testing.assert_allclose(y, expected, rtol=1e-6)
    assert abs(y[1, 1, 0] - 1.0) < 1e-6


def test_edge_targets_clip_at_0_08_and_occlusion_does_not_clip():
    v = np.array([[[0.0], [0.04]], [[0.08], [0.5]]])
    y, _ = encode("edges", v)
    np.testing.assert_allclose(y[..., 0], [[-1, 0], [1, 1]], atol=1e-6)
    spec = get_task("occlusion_edges")
    v = np.zeros((64, 64, 1), np.float32)
    v[32, 32] = 0.0125  # twice the range: 3 before the blur
    y, _ = encode("occlusion_edges", v)
    # blurred (sigma 4 px at 256 -> 1 px at 64) peak of a delta: 3 * 1/(2 pi s^2) + ...
    assert y.max() > -1 and np.isclose(y.min(), -1.0, atol=1e-6)
    total_mass = ((y + 1) / 2 * spec.value_range[1]).sum()
    np.testing.assert_allclose(total_mass, 0.0125, rtol=1e-3)  # the blur keeps mass


def test_keypoint_targets():
    y, _ = encode("keypoints2d", np.array([[[0.0], [0.0025], [0.01]]]))
    np.testing.assert_allclose(y[0, :, 0], [-1, 0, 1], atol=1e-6)
    y, _ = encode("keypoints3d", np.array([[[0.0], [0.5], [1.0]]]))
    np.testing.assert_allclose(y[0, :, 0], [-1, 0, 1], atol=1e-6)


def test_curvature_standardisation_constants():
    y, _ = encode("curvature", np.array([[[123.572 - 127, 120.1 - 127 + 21.658]]]))
    np.testing.assert_allclose(y[0, 0], [0.0, 1.0], atol=1e-5)


def test_semantic_labels_shift_and_mask():
    labels = tf.constant([[[0], [1], [2], [17]]], tf.int32)
    y, w = encode("segment_semantic", labels, tf.constant([[False, True, True, True]]))
    assert y[0, :, 0].tolist() == [0, 0, 1, 16] and w.tolist() == [[0, 1, 1, 1]]


def test_places63_keeps_and_renormalises():
    from taskonomy_tf.tasks.classes import PLACES365_KEEP

    probs = np.zeros(365)
    probs[PLACES365_KEEP[0]], probs[PLACES365_KEEP[5]], probs[0] = 0.2, 0.2, 0.6
    y, _ = encode("class_scene", probs)
    assert y.shape == (63,)
    np.testing.assert_allclose(y[[0, 5]], [0.5, 0.5])


def test_colorization_targets_are_distributions_peaked_at_the_true_bin():
    rgb = np.zeros((8, 8, 3), np.float32)
    rgb[..., 0] = 1.0  # pure red: ab about (80, 67)
    y, w = encode("colorization", rgb)
    assert y.shape == (2, 2, get_task("colorization").channels)
    np.testing.assert_allclose(y.sum(-1), 1.0, rtol=1e-5)
    best = T.ab_bins()[y[0, 0].argmax()]
    assert np.abs(best - [80, 67]).max() <= 10


def test_rgb_to_lab_known_values():
    lab = T.rgb_to_lab(tf.constant([[1.0, 1.0, 1.0], [0.0, 0.0, 0.0], [1.0, 0.0, 0.0]])).numpy()
    np.testing.assert_allclose(lab[0], [100, 0, 0], atol=0.1)
    np.testing.assert_allclose(lab[1], [0, 0, 0], atol=0.1)
    np.testing.assert_allclose(lab[2], [53.24, 80.09, 67.20], atol=0.1)


def test_input_rules():
    img = tf.fill([12, 12, 3], 0.5)
    seed = tf.constant([1, 2], tf.int64)
    x, _ = T.INPUTS.get("centre_masked")(img, seed, None)
    assert float(x[6, 6, 0]) == 0.0 and float(x[0, 0, 0]) == 0.0  # 0.5 -> 0 in [-1, 1]
    x, _ = T.INPUTS.get("centre_masked")(tf.ones([12, 12, 3]), seed, None)
    assert float(x[6, 6, 0]) == 0.0 and float(x[0, 0, 0]) == 1.0
    x, _ = T.INPUTS.get("noisy_rgb")(img, seed, None)
    assert 0.15 < float(tf.math.reduce_std(x)) < 0.25  # std 0.1 on [0, 1] -> 0.2
    tiles, label = T.INPUTS.get("jigsaw_tiles")(tf.random.uniform([30, 30, 3]), seed, None)
    assert tiles.shape == (9, 30, 30, 3) and float(tf.reduce_sum(label)) == 1.0
