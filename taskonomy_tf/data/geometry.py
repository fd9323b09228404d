"""Camera geometry of Taskonomy's point_info JSON, in numpy.

Convention (verified on the real sample ``point_202_view_5``, see
``../shared/docs/taskonomy_reference.md`` section 2): ``camera_rotation_final``
is a static XYZ Euler triple, ``R = Rz(c) Ry(b) Rx(a)`` maps camera to world
coordinates, the camera looks down its local -Z axis with +Y up in the
image, and ``camera_location`` is its centre in metres.

Labels (``load_ops.py`` of the original code):
* relative pose of views 1, 2: ``[euler(R2^T R1), R2^T (c1 - c2)]``;
* egomotion of views 1, 2, 3: the poses 12, 13, 23 concatenated;
* vanishing points: the world axes in the camera frame, after turning the
  world by a multiple of 90 degrees about z so that the axes are
  "well defined" (world x and y closest to the viewing direction);
* room layout: room-box centre in the camera frame, the camera's Euler
  angles and the box extents, in the same turned world.
"""

from __future__ import annotations

import numpy as np


def euler_to_matrix(angles: np.ndarray) -> np.ndarray:
    """Static-XYZ Euler angles (..., 3) in radians -> rotation matrices (..., 3, 3):
    R = Rz(c) @ Ry(b) @ Rx(a) (scipy's extrinsic ``"xyz"``)."""
    from scipy.spatial.transform import Rotation

    angles = np.asarray(angles, np.float64)
    flat = Rotation.from_euler("xyz", angles.reshape(-1, 3)).as_matrix()
    return flat.reshape(*angles.shape[:-1], 3, 3)


def matrix_to_euler(r: np.ndarray) -> np.ndarray:
    """Rotation matrices (..., 3, 3) -> static-XYZ Euler angles (..., 3), inverse of
    ``euler_to_matrix`` with b in [-pi/2, pi/2] (scipy's ``as_euler("xyz")``)."""
    import warnings

    from scipy.spatial.transform import Rotation

    r = np.asarray(r, np.float64)
    with warnings.catch_warnings():  # at b = +-pi/2 only a + c (or a - c) is defined:
        warnings.simplefilter("ignore", UserWarning)  # scipy picks one, and says so
        flat = Rotation.from_matrix(r.reshape(-1, 3, 3)).as_euler("xyz")
    return flat.reshape(*r.shape[:-2], 3)


def relative_pose(loc1, rot1, loc2, rot2) -> np.ndarray:
    """6-vector pose of view 1 seen from view 2: Euler(R2^T R1) and R2^T (c1 - c2).

    Args:
        loc1, loc2: camera centres (..., 3) in metres.
        rot1, rot2: ``camera_rotation_final`` Euler triples (..., 3).
    Returns:
        float64 (..., 6): three angles in radians, three offsets in metres.
    """
    r1, r2 = euler_to_matrix(rot1), euler_to_matrix(rot2)
    r2t = np.swapaxes(r2, -1, -2)
    rel = r2t @ r1
    t = (r2t @ (np.asarray(loc1) - np.asarray(loc2))[..., None])[..., 0]
    return np.concatenate([matrix_to_euler(rel), t], -1)


def egomotion(locs, rots) -> np.ndarray:
    """Poses 12, 13, 23 of three views (locs, rots: (..., 3, 3)) -> (..., 18)."""
    locs, rots = np.asarray(locs), np.asarray(rots)
    pairs = [(0, 1), (0, 2), (1, 2)]
    return np.concatenate(
        [relative_pose(locs[..., i, :], rots[..., i, :], locs[..., j, :], rots[..., j, :])
         for i, j in pairs], -1)


def _rot_z(k: int) -> np.ndarray:
    c, s = np.cos(k * np.pi / 2), np.sin(k * np.pi / 2)
    return np.array([[c, -s, 0], [s, c, 0], [0, 0, 1]]).round(12)


def well_defined_turn(rot) -> np.ndarray:
    """World turn (3, 3) about z by k*90 deg that brings world x and y closest
    to the viewing direction (load_ops ``rotation_to_make_axes_well_defined``)."""
    r = euler_to_matrix(rot)
    forward = r @ np.array([0.0, 0.0, -1.0])  # viewing direction in the world
    best, best_cost = None, np.inf
    for k in range(4):
        turn = _rot_z(k)
        # world axes after the turn, in world coordinates: turn^T e_i
        ax, ay = turn.T[:, 0], turn.T[:, 1]
        cost = np.degrees(np.arccos(np.clip(ax @ forward, -1, 1))) + np.degrees(
            np.arccos(np.clip(ay @ forward, -1, 1)))
        if cost < best_cost - 1e-9:
            best, best_cost = turn, cost
    return best


def vanishing_points(rot) -> np.ndarray:
    """The three (turned) world axes in the camera frame: float64 (9,)."""
    r = euler_to_matrix(rot)
    turn = well_defined_turn(rot)
    # world axis e_i of the turned frame is turn^T e_i in the original world;
    # in the camera frame it is R^T turn^T e_i.
    axes = r.T @ turn.T
    return axes.T.reshape(9)


def room_layout(loc, rot, bbox: dict) -> np.ndarray:
    """Room-box centre in the camera frame (3), camera Euler angles in the
    turned world (3) and box extents along the turned axes (3): float64 (9,).

    Args:
        loc, rot: camera centre and Euler triple.
        bbox: ``bounding_box_ranges`` {"x": [min, max], "y": ..., "z": ...}.
    """
    r = euler_to_matrix(rot)
    turn = well_defined_turn(rot)
    # The JSON's x and y ranges are swapped relative to camera_location's
    # frame (load_ops flips x/y for room layout; on sample 202/5 the camera
    # and the fixated point lie inside the box only with the swap).
    lo = np.array([bbox["y"][0], bbox["x"][0], bbox["z"][0]], np.float64)
    hi = np.array([bbox["y"][1], bbox["x"][1], bbox["z"][1]], np.float64)
    centre_cam = r.T @ ((lo + hi) / 2 - np.asarray(loc, np.float64))
    extents = np.abs(turn @ (hi - lo))
    angles = matrix_to_euler(turn @ r)
    return np.concatenate([centre_cam, angles, extents])


def look_at(location, target) -> np.ndarray:
    """Camera-to-world rotation (3, 3) of a roll-free camera (Blender
    convention) at ``location`` whose -Z axis points at ``target``."""
    location, target = np.asarray(location, np.float64), np.asarray(target, np.float64)
    forward = (target - location) / np.linalg.norm(target - location)
    right = np.cross(forward, [0.0, 0.0, 1.0])
    right /= np.linalg.norm(right)
    return np.stack([right, np.cross(right, forward), -forward], axis=1)


def pixel_rays(size: int, fov: float) -> np.ndarray:
    """Camera-frame rays (size, size, 3) through pixel centres of a square
    image with field of view ``fov`` (radians): z = -1, +y up, row 0 at top."""
    half = np.tan(fov / 2.0)
    c = (np.arange(size) + 0.5) / size * 2.0 - 1.0
    x, y = np.meshgrid(c * half, -c * half)
    return np.stack([x, y, -np.ones_like(x)], -1)

