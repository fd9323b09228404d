"""Renders every Taskonomy domain of one view from one bundle of rays.

Conventions follow the real files (``docs/data.md``, verified on the real
samples): depths in 1/512 m with 65535 for no geometry; normals in the
camera frame as (x right, y down, z forward), i.e. Blender's camera axes
with y and z negated, each component v/255*2-1, (128, 128, 128) invalid;
curvature k1, k2 in 8-bit with 127 = zero; class files as ``.npy``.
Image operators come from scikit-image.
"""

from __future__ import annotations

import io

import numpy as np
from PIL import Image
from skimage import feature, filters, segmentation

from taskonomy_tf.data.geometry import pixel_rays
from taskonomy_tf.synth.raycast import Hits, cast, occluded
from taskonomy_tf.synth.scene import Room
from taskonomy_tf.tasks.classes import (
    IMAGENET_INDEX,
    N_IMAGENET,
    N_PLACES365,
    PLACES365_KEEP,
    SCENES,
    SEMANTIC,
)

# Gains below are our calibration: they put typical responses inside the
# ranges the original targets clip to (edges 0.08, 2D keypoints 0.005,
# occlusion edges 0.00625 of 65535; load_ops.py).
DEPTH_UNITS = 512.0  # 1 unit = 1/512 m (data/README)
DEPTH_MAX = 64000  # valid depths stay below the 64500 invalid threshold
CURVATURE_UNITS = 16.0  # 8-bit steps per 1/m of curvature (our choice; 127 = 0)
OCCLUSION_GAIN = 1500.0  # 16-bit units per unit of log-depth gradient (Sobel)
TEXTURE_GAIN = 3.6e4  # 16-bit units per unit of gradient (Sobel, sigma 1 px at 128 px; below)
# 2D keypoints: SURF's blob measure with scale selection. The determinant of
# the Hessian of the gray image (Gaussian derivatives) at three scales an
# octave apart, scale-normalised (sigma^4 det H, Lindeberg 1998; SURF samples
# its scale space the same way, Bay et al. 2008, section 3.3), the largest
# magnitude over the scales kept per pixel, and its square root (the spread of
# the real files). Scales are pixels of a 128 px image (the same scene scale at
# any size). One scale alone (sigma 1 px) is a second derivative of the image
# at the 2D edges' scale: the two maps then correlated 0.56 per view (median);
# with the three scales, 0.18-0.25 (bench/embedded_shortcuts.py). The gain
# keeps the single-scale map's median over pixels (which was calibrated on the
# real sample point_202_view_5: median 0.11 of the 0.005 clip); texture edges
# are calibrated on that sample too: median 0.11 of the 0.08 clip, 2% saturated.
HESSIAN_SIGMAS = (1.0, 2.0, 4.0)  # pixels at 128 px
HESSIAN_GAIN = 2.0e3  # 16-bit units per unit of sqrt(max_s s^4 |det H_s|) (gray in [0, 1])
KEYPOINT3D_SIGMA = 1.5  # pixels, at 128 px
SKY = np.array([0.82, 0.88, 0.97])
# Reshading: a point light at the camera, fixed albedo, with distance
# falloff. Fitted on the real sample point_202_view_5 (R^2 0.95 in log
# space): reshading ~ 2.3 (n.v)^0.88 / d^1.18, d the Euclidean distance in
# metres; we keep Lambert's n.v and the fitted gain and falloff.
RESHADE_GAIN, RESHADE_FALLOFF = 2.3, 1.18
# Screen-space ambient occlusion: neighbours within these pixel radii (at
# 128 px) in 8 directions; a neighbour above the tangent plane and within
# AO_RANGE metres occludes. AO_STRENGTH scales the darkening of creases.
AO_RADII, AO_RANGE, AO_STRENGTH = (2, 5, 10), 1.0, 1.6


def _pattern(texture: str, p: np.ndarray, n: np.ndarray, scale: np.ndarray) -> np.ndarray:
    """Texture value in [0, 1] at world points p on surfaces with normals n."""
    dominant = np.argmax(np.abs(n), 1)
    u = np.where(dominant == 0, p[:, 1], p[:, 0])
    v = np.where(dominant == 2, p[:, 1], p[:, 2])
    u, v = u / scale, v / scale
    if texture == "stripes":
        return (np.floor(u) % 2).astype(float)
    if texture == "checkers":
        return ((np.floor(u) + np.floor(v)) % 2).astype(float)
    if texture == "noise":
        h = np.sin(np.floor(u * 3) * 12.9898 + np.floor(v * 3) * 78.233) * 43758.5453
        return h - np.floor(h)
    if texture == "wood":
        ring = np.sin((np.hypot(u, 0.3 * v) * 6 + 0.5 * np.sin(v * 2)) * np.pi)
        return 0.5 + 0.5 * ring
    return np.zeros_like(u)


def _albedo(room: Room, hits: Hits, p: np.ndarray) -> np.ndarray:
    out = np.zeros((len(p), 3))
    for m, mat in enumerate(room.materials):
        sel = hits.material == m
        if sel.any():
            a = _pattern(mat.texture, p[sel], hits.normal[sel], mat.scale)[:, None]
            out[sel] = mat.colour * (1 - a) + mat.colour2 * a
    return out


def _png(arr: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="PNG", compress_level=3)  # 2x faster than 6
    return buf.getvalue()


def _npy(arr: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.save(buf, arr.astype(np.float32))
    return buf.getvalue()


def _u16(x: np.ndarray) -> np.ndarray:
    return np.clip(np.rint(x), 0, 65535).astype(np.uint16)


def render(room: Room, location: np.ndarray, rot: np.ndarray, fov: float, size: int,
           rng: np.random.Generator, corners: np.ndarray) -> tuple[dict[str, bytes], dict]:
    """All raw files of one view ({domain: bytes}) and per-view facts.

    Args:
        room: the room the camera is in.
        location, rot: camera centre (3,) and camera-to-world rotation (3, 3)
            (Blender camera: looks down -Z, +Y up).
        fov: field of view in radians (horizontal = vertical, square images).
        corners: (K, 3) world corners of the 3D geometry (keypoints3d).
    """
    rays_cam = pixel_rays(size, fov).reshape(-1, 3)
    d = rays_cam @ rot.T
    hits = cast(location, d, room)
    valid = np.isfinite(hits.t)
    t = np.where(valid, hits.t, 0.0)
    p = location + t[:, None] * d
    shape = (size, size)

    # depth: rays have camera z = -1, so t is the z-buffer depth
    ray_len = np.linalg.norm(rays_cam, axis=1)
    zbuf = np.where(valid, np.minimum(np.rint(t * DEPTH_UNITS), DEPTH_MAX), 65535)
    dist = np.where(valid, np.minimum(np.rint(t * ray_len * DEPTH_UNITS), DEPTH_MAX), 65535)

    # shading: point lights with cast shadows and an ambient term darkened
    # in creases (ambient occlusion); sky through holes
    cam_pts = rays_cam * t[:, None]  # Blender camera coordinates, metres
    ao = ambient_occlusion(cam_pts.reshape(*shape, 3), (hits.normal @ rot).reshape(*shape, 3),
                           valid.reshape(shape)).ravel()
    albedo = _albedo(room, hits, p)
    light = 0.35 * ao
    lit = np.flatnonzero(valid)
    start = p[lit] + 1e-3 * hits.normal[lit]  # off the surface: no self-shadowing
    for lp in room.lights:
        to_l = lp - p
        dist_l = np.linalg.norm(to_l, axis=1) + 1e-9
        lam = np.maximum(np.einsum("ij,ij->i", hits.normal, to_l) / dist_l, 0)
        facing = lit[lam[lit] > 0]
        blocked = np.zeros(len(d), bool)
        blocked[facing] = occluded(lp, start[np.searchsorted(lit, facing)], room)
        light = light + np.where(blocked, 0.0, 0.8 * lam / (1 + 0.05 * dist_l**2)
                                 / len(room.lights) * 2)
    rgb = np.where(valid[:, None], albedo * light[:, None], SKY)
    rgb = np.clip(rgb + rng.normal(0, 0.01, rgb.shape), 0, 1).reshape(*shape, 3)
    rgb8 = np.rint(rgb * 255).astype(np.uint8)

    # normals in the dataset's camera frame: (x, -y, -z) of Blender's camera axes
    n_cam = hits.normal @ rot * np.array([1.0, -1.0, -1.0])
    normal8 = np.where(valid[:, None], np.rint((n_cam + 1) / 2 * 255), 128).astype(np.uint8)
    # reshading: one light at the camera, fixed albedo, distance falloff and
    # ambient occlusion (so it is not a function of the normals alone)
    view_dir = -d / np.linalg.norm(d, axis=1, keepdims=True)
    lambert = np.clip(np.einsum("ij,ij->i", hits.normal, view_dir), 0, 1)
    falloff = RESHADE_GAIN / np.maximum(t * ray_len, 0.1) ** RESHADE_FALLOFF
    reshade = np.where(valid, np.clip(lambert * falloff * ao, 0, 1), 0)
    reshade8 = np.rint(reshade * 255).astype(np.uint8).reshape(shape)
    curv = np.where(valid[:, None], np.clip(np.rint(127 + hits.k * CURVATURE_UNITS), 1, 255), 0)
    curv8 = np.concatenate([curv, np.zeros((len(d), 1))], 1).astype(np.uint8)

    # edges and keypoints (scikit-image operators), at the scene scale of a
    # 128 px image: scales in pixels and responses per pixel follow the size
    gray = rgb.mean(-1)
    scale = size / 128
    texture_edges = filters.sobel(filters.gaussian(gray, sigma=scale)) * scale
    metres = np.where(valid, t * ray_len, np.nan).reshape(shape)
    filled = np.where(np.isnan(metres), np.nanmax(metres) if valid.any() else 1.0, metres)
    occl = filters.sobel(np.log(np.maximum(filled, 1e-3)))
    blobs = keypoint_response(gray, scale)
    kp3 = _corner_splats(corners, location, rot, fov, size, metres)

    # segmentations: SLIC clusters of RGB, and of RGB + depth + normals,
    # computed at half resolution above 64 px (4x cheaper; segments are coarse)
    depth_feat = np.log(np.maximum(filled, 1e-3))[..., None]
    depth_feat = (depth_feat - depth_feat.mean()) / (depth_feat.std() + 1e-6)
    feats = np.concatenate([rgb, depth_feat, n_cam.reshape(*shape, 3)], -1)
    step = 2 if size > 64 else 1
    seg2d = _upsample(segmentation.slic(rgb[::step, ::step], n_segments=48, compactness=10,
                                        start_label=1, max_num_iter=5, channel_axis=-1), step)
    seg25d = _upsample(segmentation.slic(feats[::step, ::step], n_segments=48, compactness=0.1,
                                         start_label=1, max_num_iter=5, channel_axis=-1,
                                         convert2lab=False), step)

    labels = hits.label.reshape(shape).astype(np.uint8)
    boundary = segmentation.find_boundaries(hits.obj.reshape(shape), mode="inner")
    semantic = np.where(boundary & (labels > 1), 0, labels).astype(np.uint8)  # uncertain rims

    files = {
        "rgb": _png(rgb8),
        "depth_zbuffer": _png(zbuf.reshape(shape).astype(np.uint16)),
        "depth_euclidean": _png(dist.reshape(shape).astype(np.uint16)),
        "normal": _png(normal8.reshape(*shape, 3)),
        "reshading": _png(np.repeat(reshade8[..., None], 3, -1)),
        "principal_curvature": _png(curv8.reshape(*shape, 3)),
        "edge_texture": _png(_u16(texture_edges * TEXTURE_GAIN)),
        "edge_occlusion": _png(_u16(occl * OCCLUSION_GAIN)),
        "keypoints2d": _png(_u16(blobs * HESSIAN_GAIN)),
        "keypoints3d": _png(_u16(kp3 * 0.8 * 65535)),
        "segment_unsup2d": _png((seg2d % 256).astype(np.uint8)),
        "segment_unsup25d": _png((seg25d % 256).astype(np.uint8)),
        "segment_semantic": _png(semantic),
    }
    files.update(_class_files(room, hits.label, rng))
    return files, {"valid_fraction": float(valid.mean())}


def keypoint_response(gray: np.ndarray, scale: float) -> np.ndarray:
    """sqrt of the largest scale-normalised |det Hessian| over ``HESSIAN_SIGMAS``.

    Args:
        gray: (S, S) float image in [0, 1].
        scale: S / 128, so the scales are the same fraction of the image at any size.
    Returns:
        (S, S) float64, in units of the gray level (before ``HESSIAN_GAIN``).
    """
    best = np.zeros_like(gray, dtype=np.float64)
    for sigma in HESSIAN_SIGMAS:
        s = sigma * scale
        det = feature.hessian_matrix_det(gray, sigma=s, approximate=False)
        best = np.maximum(best, np.abs(det) * s**4)
    return np.sqrt(best)


def ambient_occlusion(points: np.ndarray, normals: np.ndarray, valid: np.ndarray
                      ) -> np.ndarray:
    """Screen-space ambient occlusion in [0, 1] (1 = open), (S, S).

    Args:
        points: (S, S, 3) hit points in camera coordinates, metres.
        normals: (S, S, 3) unit normals in the same frame, facing the camera.
        valid: (S, S) bool, False where no geometry was hit.

    A neighbour q of p (at the radii ``AO_RADII`` in 8 directions) occludes
    p when it lies above p's tangent plane: the occlusion is the cosine
    between n_p and q - p (minus a small bias), weighted down with the
    distance |q - p| / ``AO_RANGE``; AO is 1 minus the mean occlusion.
    """
    size = points.shape[0]
    pad = int(np.ceil(max(AO_RADII) * size / 128))
    # channels first, float32: each neighbour costs a few passes over S x S
    pp = np.pad(np.moveaxis(points, -1, 0).astype(np.float32), ((0, 0), (pad, pad), (pad, pad)),
                mode="edge")
    vp = np.pad(valid, pad, mode="constant")
    p0 = pp[:, pad:pad + size, pad:pad + size]
    n = np.moveaxis(normals, -1, 0).astype(np.float32)
    total = np.zeros((size, size), np.float32)
    samples = 0
    for radius in AO_RADII:
        r = max(1, int(round(radius * size / 128)))
        for angle in np.arange(8) * np.pi / 4:
            dy, dx = int(round(r * np.sin(angle))), int(round(r * np.cos(angle)))
            v = pp[:, pad + dy:pad + dy + size, pad + dx:pad + dx + size] - p0
            dist2 = v[0] * v[0] + v[1] * v[1] + v[2] * v[2] + 1e-12
            cos = (n[0] * v[0] + n[1] * v[1] + n[2] * v[2]) / np.sqrt(dist2)
            occ = np.maximum(cos - 0.1, 0) / (1 + dist2 / AO_RANGE**2)
            total += np.where(vp[pad + dy:pad + dy + size, pad + dx:pad + dx + size], occ, 0)
            samples += 1
    return np.where(valid, np.clip(1 - AO_STRENGTH * total / samples, 0, 1), 1.0)


def _upsample(labels: np.ndarray, step: int) -> np.ndarray:
    return np.repeat(np.repeat(labels, step, 0), step, 1)


def _corner_splats(corners, location, rot, fov, size, metres) -> np.ndarray:
    """Gaussian splats at the visible projections of 3D corners, in [0, 1]."""
    out = np.zeros((size, size))
    if len(corners) == 0:
        return out
    cam = (corners - location) @ rot  # Blender camera coords
    depth = -cam[:, 2]
    front = depth > 0.05
    half = np.tan(fov / 2)
    col = (cam[:, 0] / np.maximum(depth, 1e-6) / half + 1) / 2 * size - 0.5
    row = (-cam[:, 1] / np.maximum(depth, 1e-6) / half + 1) / 2 * size - 0.5
    inside = front & (col >= 0) & (col <= size - 1) & (row >= 0) & (row <= size - 1)
    sigma = KEYPOINT3D_SIGMA * size / 128
    yy, xx = np.mgrid[0:size, 0:size]
    for r, c, corner in zip(row[inside], col[inside], corners[inside]):
        seen = metres[int(round(r)), int(round(c))]
        dist = np.linalg.norm(corner - location)
        if np.isnan(seen) or abs(seen - dist) > 0.05 * dist + 0.05:
            continue  # hidden behind something
        out = np.maximum(out, np.exp(-((yy - r) ** 2 + (xx - c) ** 2) / (2 * sigma**2)))
    return out


def _class_files(room: Room, labels: np.ndarray, rng) -> dict[str, bytes]:
    """ImageNet logits from the objects in view (by area) and Places
    probabilities from the room type."""
    logits = rng.normal(-2.0, 0.5, N_IMAGENET)
    counts = np.bincount(labels, minlength=len(SEMANTIC)) / max(len(labels), 1)
    for cls, idx in IMAGENET_INDEX.items():
        share = counts[SEMANTIC.index(cls)]
        if share > 0:
            logits[idx] += 3.0 + 2.0 * np.log1p(20 * share)
    places = rng.dirichlet(np.full(N_PLACES365, 0.5)) * 0.15
    places[PLACES365_KEEP[SCENES.index(room.kind)]] += 0.85
    return {"class_object": _npy(logits), "class_scene": _npy(places / places.sum())}
