"""A tiny raw dataset in the real Taskonomy layout, for tests and demos.

    python -m tfrecords_tools.fake --out DIR [--buildings 2] [--points 3]
        [--views 3] [--size 64] [--layout original|omnidata] [--seed 0]

Each point is a textured plane with a round hole (a window: no geometry),
seen by ``views`` cameras that all fixate the point. Depth, normals and the
point_info cameras are geometrically consistent (pinhole model, Blender
camera convention, see ``taskonomy_tf.data.geometry``); the other domains
are plausible values in the right encodings. Every domain of
``taskonomy_tf.data.schema`` is written, with the release's naming quirks
(``class_scene/..._domain_class_places.npy``,
``segment_semantic/..._domain_segmentsemantic.png``).
"""

from __future__ import annotations

import argparse
import io
import json
from pathlib import Path

import numpy as np
from PIL import Image

from taskonomy_tf.data import schema
from taskonomy_tf.data.geometry import look_at, matrix_to_euler, pixel_rays

DEPTH_UNITS = 512.0  # 1/512 m per unit (data/README)


def _png(arr: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="PNG")
    return buf.getvalue()


def _npy(arr: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.save(buf, arr.astype(np.float32))
    return buf.getvalue()


def render_view(rng, size, point, normal, location, fov, hole_radius):
    """All domains of one view as {domain: bytes}, plus its rotation."""
    rot = look_at(location, point)
    rays_cam = pixel_rays(size, fov)
    rays = rays_cam @ rot.T
    t = ((point - location) @ normal) / (rays @ normal)
    hit = location + t[..., None] * rays
    valid = (t > 0) & (np.linalg.norm(hit - point, axis=-1) > hole_radius)
    zdepth = np.where(valid, t, np.inf)  # z-buffer: rays have z = -1
    dist = np.where(valid, t * np.linalg.norm(rays_cam, axis=-1), np.inf)

    def depth16(d):
        return np.where(np.isfinite(d), np.clip(np.rint(d * DEPTH_UNITS), 0, 64000), 65535
                        ).astype(np.uint16)

    n_cam = rot.T @ normal
    normal8 = np.where(valid[..., None], np.rint((n_cam + 1) / 2 * 255), 128).astype(np.uint8)
    u = np.floor(hit[..., 0] * 2) + np.floor(hit[..., 1] * 2) + np.floor(hit[..., 2] * 2)
    checker = (u % 2).astype(np.float64)
    base = rng.uniform(0.2, 0.8, 3)
    shade = np.abs(rays @ normal) / np.linalg.norm(rays, axis=-1)
    rgb = np.where(valid[..., None], (0.3 + 0.7 * checker[..., None]) * base * shade[..., None],
                   0.9)
    rgb8 = np.clip(np.rint((rgb + rng.normal(0, 0.01, rgb.shape)) * 255), 0, 255).astype(np.uint8)
    gray = rgb8.mean(-1)
    grad = np.hypot(*np.gradient(gray))
    edge16 = np.clip(grad / 255 * 0.08 * 65535, 0, 65535).astype(np.uint16)
    occl = np.zeros((size, size), np.uint16)
    border = valid ^ np.roll(valid, 1, 0) | valid ^ np.roll(valid, 1, 1)
    occl[border] = 400
    curv = np.where(valid[..., None], 127, 0).astype(np.uint8).repeat(3, -1)
    curv[..., 2] = 0
    reshade = np.where(valid, np.rint(shade * 255), 0).astype(np.uint8)
    segments = (np.where(valid, checker + 2 * (hit[..., 0] > point[0]), 9) * 17).astype(np.uint8)
    semantic = np.where(valid, 1, 0).astype(np.uint8)
    semantic[valid & (np.linalg.norm(hit - point, axis=-1) < 2 * hole_radius)] = 3
    keyp = np.zeros((size, size), np.uint16)
    keyp[rng.integers(0, size, 5), rng.integers(0, size, 5)] = 300
    return rot, {
        "rgb": _png(rgb8),
        "depth_zbuffer": _png(depth16(zdepth)),
        "depth_euclidean": _png(depth16(dist)),
        "normal": _png(normal8),
        "principal_curvature": _png(curv),
        "reshading": _png(reshade),
        "edge_texture": _png(edge16),
        "edge_occlusion": _png(occl),
        "keypoints2d": _png(keyp),
        "keypoints3d": _png(keyp),
        "segment_unsup2d": _png(segments),
        "segment_unsup25d": _png(segments),
        "segment_semantic": _png(semantic),
        "mask_valid": _png((valid * 255).astype(np.uint8)),
        "class_object": _npy(rng.normal(0, 2, 1000)),
        "class_scene": _npy(rng.dirichlet(np.ones(365))),
    }


def write_fake_dataset(out, buildings=2, points=3, views=3, size=64, layout="original",
                       seed=0) -> Path:
    """Writes the dataset under ``out``; returns ``out``."""
    out = Path(out)
    rng = np.random.default_rng(seed)
    for b in range(buildings):
        building = f"fakebldg{b}"
        for p in range(points):
            point = rng.uniform(-2, 2, 3)
            normal = rng.normal(size=3)
            normal[2] *= 0.3
            normal /= np.linalg.norm(normal)
            for v in range(views):
                offset = normal * rng.uniform(2.5, 4.0) + rng.normal(0, 0.8, 3)
                location = point + offset
                fov = float(rng.uniform(np.radians(45), np.radians(75)))
                rot, files = render_view(rng, size, point, normal, location, fov, 0.3)
                info = {
                    "camera_location": location.tolist(),
                    "camera_rotation_final": matrix_to_euler(rot).tolist(),
                    "field_of_view_rads": fov, "point_location": point.tolist(),
                    "point_uuid": str(p), "view_id": v, "resolution": size,
                    "camera_distance": float(np.linalg.norm(point - location)),
                    "room": f"room{b}",
                    "point_normal": normal.tolist(),
                    "bounding_box_ranges": {"x": [-5.0, 5.0], "y": [-5.0, 5.0], "z": [-3, 3]},
                    "nonfixated_points_in_view": [q for q in range(points) if q != p],
                }
                files["point_info"] = json.dumps(info).encode()
                for domain, data in files.items():
                    spec = schema.DOMAINS[domain]
                    token = spec.all_tokens()[0]
                    name = f"point_{p}_view_{v}_domain_{token}.{spec.extension}"
                    folder = (out / building / domain if layout == "original"
                              else out / domain / "taskonomy" / building)
                    folder.mkdir(parents=True, exist_ok=True)
                    (folder / name).write_bytes(data)
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m tfrecords_tools.fake",
                                description=__doc__.split("\n")[0])
    p.add_argument("--out", required=True)
    p.add_argument("--buildings", type=int, default=2)
    p.add_argument("--points", type=int, default=3)
    p.add_argument("--views", type=int, default=3)
    p.add_argument("--size", type=int, default=64)
    p.add_argument("--layout", choices=["original", "omnidata"], default="original")
    p.add_argument("--seed", type=int, default=0)
    a = p.parse_args(argv)
    write_fake_dataset(a.out, a.buildings, a.points, a.views, a.size, a.layout, a.seed)
    print(f"wrote {a.buildings * a.points * a.views} views to {a.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
