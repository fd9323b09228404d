"""Camera geometry against hand-made cases and the real point_info sample."""

from __future__ import annotations

import json

import numpy as np

from taskonomy_tf.data import geometry as g


def test_euler_roundtrip_and_convention():
    rng = np.random.default_rng(0)
    angles = rng.uniform(-3, 3, (200, 3))
    angles[:, 1] = rng.uniform(-1.5, 1.5, 200)
    r = g.euler_to_matrix(angles)
    np.testing.assert_allclose(g.euler_to_matrix(g.matrix_to_euler(r)), r, atol=1e-12)
    np.testing.assert_allclose(np.linalg.det(r), 1.0)
    # R = Rz(c) Ry(b) Rx(a): a quarter turn about z maps x to y
    np.testing.assert_allclose(g.euler_to_matrix([0, 0, np.pi / 2]) @ [1, 0, 0], [0, 1, 0],
                               atol=1e-12)


def test_relative_pose_of_a_sideways_step():
    rot = g.matrix_to_euler(g.look_at(np.zeros(3), np.array([0.0, 5.0, 0.0])))
    right = g.euler_to_matrix(rot) @ [1.0, 0, 0]  # camera x in the world
    pose = g.relative_pose(right * 2.0, rot, np.zeros(3), rot)
    np.testing.assert_allclose(pose, [0, 0, 0, 2, 0, 0], atol=1e-12)
    assert np.allclose(g.relative_pose(np.ones(3), rot, np.ones(3), rot), 0)


def test_egomotion_stacks_three_pairs():
    rng = np.random.default_rng(1)
    locs, rots = rng.normal(size=(3, 3)), rng.uniform(-1, 1, (3, 3))
    e = g.egomotion(locs, rots)
    np.testing.assert_allclose(e[6:12], g.relative_pose(locs[0], rots[0], locs[2], rots[2]))


def test_real_sample_camera_looks_at_its_point(samples_dir):
    info = json.loads((samples_dir / "point_202_view_5_domain_point_info.json").read_text())
    r = g.euler_to_matrix(info["camera_rotation_final"])
    d = np.subtract(info["point_location"], info["camera_location"])
    np.testing.assert_allclose(r @ [0, 0, -1], d / np.linalg.norm(d), atol=1e-6)
    vp = g.vanishing_points(info["camera_rotation_final"]).reshape(3, 3)
    np.testing.assert_allclose(vp @ vp.T, np.eye(3), atol=1e-9)  # orthonormal axes
    # up to the 90-degree turn and signs, the same axes as the JSON's field
    published = np.array([info["vanishing_points_gaussian_sphere"][k] for k in "xyz"])
    np.testing.assert_allclose(np.sort(np.abs(vp @ published.T).max(1)), 1.0, atol=1e-3)
    layout = g.room_layout(info["camera_location"], info["camera_rotation_final"],
                           info["bounding_box_ranges"])
    assert layout.shape == (9,) and np.all(layout[6:] > 0)
