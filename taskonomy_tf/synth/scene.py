"""Procedural indoor scenes and vectorised ray casting (numpy).

A building is a few box rooms; each room has windows and doors (holes in
its walls: rays leaving through them hit no geometry) and furniture built
from boxes, vertical cylinders and spheres. ``cast`` intersects a bundle of
rays with one room and returns, per ray, the hit distance, the world
normal, the principal curvatures and what was hit.

Units are metres; the world's z axis points up.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from taskonomy_tf.tasks.classes import SEMANTIC

BACKGROUND = SEMANTIC.index("background")
# room type -> furniture classes that may appear (and its Places scene name)
ROOM_TYPES: dict[str, tuple[str, ...]] = {
    "bedroom": ("bed", "chair", "clock", "book", "vase"),
    "living_room": ("couch", "tv", "potted_plant", "dining_table", "vase", "clock"),
    "kitchen": ("refrigerator", "dining_table", "chair", "bottle", "sink"),
    "bathroom": ("toilet", "sink", "bottle", "potted_plant"),
    "office": ("dining_table", "chair", "book", "clock", "potted_plant", "tv"),
    "dining_room": ("dining_table", "chair", "vase", "bottle", "potted_plant"),
}
TEXTURES = ("plain", "stripes", "checkers", "noise", "wood")


@dataclasses.dataclass
class Primitive:
    """One solid: ``kind`` is ``box`` (lo, hi corners), ``cylinder`` (centre
    x, y, radius, z0, z1) or ``sphere`` (centre, radius)."""

    kind: str
    params: np.ndarray
    obj: int  # object id within the room (0 = the room shell)
    label: int  # SEMANTIC index
    material: int


@dataclasses.dataclass
class Material:
    colour: np.ndarray  # (3,) in [0, 1]
    colour2: np.ndarray
    texture: str
    scale: float  # texture period in metres


@dataclasses.dataclass
class Room:
    """An axis-aligned box room: ``lo``/``hi`` corners, wall holes, furniture."""

    name: str
    kind: str
    lo: np.ndarray
    hi: np.ndarray
    holes: list[tuple[int, int, np.ndarray]]  # (axis, side 0/1, [u0, u1, z0, z1])
    prims: list[Primitive]
    materials: list[Material]
    lights: np.ndarray  # (L, 3)


def _material(rng) -> Material:
    c = rng.uniform(0.15, 0.95, 3)
    return Material(c, np.clip(c * rng.uniform(0.4, 0.8), 0, 1), str(rng.choice(TEXTURES)),
                    float(rng.uniform(0.05, 0.5)))


def _furniture(kind: str, rng, at: np.ndarray, obj: int, label: int, mat: int) -> list[Primitive]:
    """Primitives of one piece of furniture standing at ``at`` (x, y, floor z)."""
    x, y, z = at

    def B(lo, hi):  # box, cylinder, sphere: short names for the layouts below
        return Primitive("box", np.array([*lo, *hi], float), obj, label, mat)

    def C(cx, cy, r, z0, z1):
        return Primitive("cylinder", np.array([cx, cy, r, z0, z1]), obj, label, mat)

    def S(c, r):
        return Primitive("sphere", np.array([*c, r]), obj, label, mat)

    w, d = rng.uniform(0.6, 1.2), rng.uniform(0.5, 1.0)
    if kind == "dining_table" and rng.random() < 0.5:  # a round table on one leg
        h, r = rng.uniform(0.7, 0.8), rng.uniform(0.4, 0.7)
        return [C(x, y, r, z + h - 0.05, z + h), C(x, y, 0.06, z, z + h - 0.05)]
    if kind == "dining_table":
        h, t = rng.uniform(0.7, 0.8), 0.05
        legs = [B((x + sx * (w / 2 - 0.05) - 0.03, y + sy * (d / 2 - 0.05) - 0.03, z),
                  (x + sx * (w / 2 - 0.05) + 0.03, y + sy * (d / 2 - 0.05) + 0.03, z + h - t))
                for sx in (-1, 1) for sy in (-1, 1)]
        return [B((x - w / 2, y - d / 2, z + h - t), (x + w / 2, y + d / 2, z + h)), *legs]
    if kind == "chair":
        s = 0.45
        return [B((x - s / 2, y - s / 2, z + 0.42), (x + s / 2, y + s / 2, z + 0.47)),
                B((x - s / 2, y + s / 2 - 0.05, z + 0.47), (x + s / 2, y + s / 2, z + 0.95)),
                *[C(x + sx * 0.19, y + sy * 0.19, 0.025, z, z + 0.42)
                  for sx in (-1, 1) for sy in (-1, 1)]]
    if kind in ("couch", "bed"):
        w, d = (rng.uniform(1.6, 2.2), rng.uniform(0.8, 1.0)) if kind == "couch" else (
            rng.uniform(1.4, 1.8), rng.uniform(1.9, 2.1))
        return [B((x - w / 2, y - d / 2, z), (x + w / 2, y + d / 2, z + 0.45)),
                B((x - w / 2, y + d / 2 - 0.2, z + 0.45), (x + w / 2, y + d / 2, z + 0.9))]
    if kind in ("refrigerator", "tv", "book"):
        size = {"refrigerator": (0.7, 0.7, 1.8), "tv": (1.0, 0.1, 0.6),
                "book": (0.8, 0.3, 1.6)}[kind]
        lift = 0.8 if kind == "tv" else 0.0
        return [B((x - size[0] / 2, y - size[1] / 2, z + lift),
                  (x + size[0] / 2, y + size[1] / 2, z + lift + size[2]))]
    if kind == "potted_plant":
        r = rng.uniform(0.12, 0.2)
        return [C(x, y, r, z, z + 0.35), S((x, y, z + 0.35 + 2 * r), 2.2 * r)]
    if kind in ("vase", "bottle"):
        r = 0.08 if kind == "vase" else 0.04
        return [C(x, y, r, z, z + 3.5 * r), S((x, y, z + 3.5 * r), r * 0.9)]
    if kind == "clock":
        return [S((x, y, z + 1.8), 0.15)]
    if kind == "toilet":
        return [B((x - 0.2, y - 0.3, z), (x + 0.2, y + 0.3, z + 0.4)),
                C(x, y - 0.05, 0.22, z + 0.35, z + 0.45)]
    if kind == "sink":
        return [C(x, y, 0.2, z, z + 0.85), S((x, y, z + 0.95), 0.12)]
    raise ValueError(kind)


def make_room(rng, name: str, origin: np.ndarray) -> Room:
    kind = str(rng.choice(sorted(ROOM_TYPES)))
    size = np.array([rng.uniform(3.5, 7.0), rng.uniform(3.0, 6.0), rng.uniform(2.5, 3.2)])
    lo, hi = origin, origin + size
    holes = []
    for _ in range(int(rng.integers(1, 4))):  # windows and a door
        axis, side = int(rng.integers(0, 2)), int(rng.integers(0, 2))
        span = size[1 - axis]
        w = rng.uniform(0.8, min(1.8, span - 0.4))
        u0 = lo[1 - axis] + rng.uniform(0.2, span - w - 0.2)
        door = rng.random() < 0.3
        z0 = lo[2] + (0.0 if door else rng.uniform(0.7, 1.0))
        z1 = lo[2] + (2.05 if door else min(size[2] - 0.2, z0 - lo[2] + rng.uniform(0.8, 1.4)))
        holes.append((axis, side, np.array([u0, u0 + w, z0, z1])))
    materials = [_material(rng) for _ in range(4)]  # floor, walls, ceiling, spare
    materials[1].texture = str(rng.choice(["plain", "stripes", "noise"]))
    prims: list[Primitive] = []
    classes = ROOM_TYPES[kind]
    for obj in range(1, int(rng.integers(3, 7)) + 1):
        cls = str(rng.choice(classes))
        materials.append(_material(rng))
        margin = 0.9
        at = np.array([rng.uniform(lo[0] + margin, hi[0] - margin),
                       rng.uniform(lo[1] + margin, hi[1] - margin), lo[2]])
        prims += _furniture(cls, rng, at, obj, SEMANTIC.index(cls), len(materials) - 1)
    prims += _curved_decor(rng, lo, hi, obj + 1, materials)
    lights = np.stack([np.array([rng.uniform(lo[0] + 0.5, hi[0] - 0.5),
                                 rng.uniform(lo[1] + 0.5, hi[1] - 0.5), hi[2] - 0.1])
                       for _ in range(int(rng.integers(2, 4)))])
    return Room(name, kind, lo, hi, holes, prims, materials, lights)


def _curved_decor(rng, lo: np.ndarray, hi: np.ndarray, obj: int,
                  materials: list[Material]) -> list[Primitive]:
    """Round columns (floor to ceiling) and large balls: curved surfaces big
    enough to fill part of a view, so principal curvature is not almost
    constant (box rooms alone give k = 0 nearly everywhere). Labelled
    background, like the shell: none of the semantic classes."""
    prims = []
    for _ in range(int(rng.integers(2, 5))):
        materials.append(_material(rng))
        at = rng.uniform(lo[:2] + 0.6, hi[:2] - 0.6)
        if rng.random() < 0.5:
            r = rng.uniform(0.2, 0.45)
            prims.append(Primitive("cylinder", np.array([*at, r, lo[2], hi[2]]), obj,
                                   BACKGROUND, len(materials) - 1))
        else:
            r = rng.uniform(0.25, 0.6)
            prims.append(Primitive("sphere", np.array([*at, lo[2] + r, r]), obj, BACKGROUND,
                                   len(materials) - 1))
        obj += 1
    return prims


def make_building(rng, n_rooms: int) -> list[Room]:
    rooms, x = [], 0.0
    for i in range(n_rooms):
        room = make_room(rng, f"room{i}", np.array([x, 0.0, 0.0]))
        rooms.append(room)
        x = float(room.hi[0]) + 0.2  # rooms side by side, walls 0.2 m apart
    return rooms


# ------------------------------------------------------------ ray casting
@dataclasses.dataclass
class Hits:
    """Per ray: distance ``t`` (inf = no geometry), world ``normal`` facing
    the ray, curvatures ``k`` (k1 >= k2, 1/m, convex positive), object id,
    SEMANTIC label, material, and whether the hit is a room surface."""

    t: np.ndarray
    normal: np.ndarray
    k: np.ndarray
    obj: np.ndarray
    label: np.ndarray
    material: np.ndarray


def _box(o, d, p):
    lo, hi = p[:3], p[3:]
    with np.errstate(divide="ignore", invalid="ignore"):
        t1, t2 = (lo - o) / d, (hi - o) / d
    tn, tf = np.minimum(t1, t2), np.maximum(t1, t2)
    tnear, tfar = np.nanmax(tn, 1), np.nanmin(tf, 1)
    hit = (tnear <= tfar) & (tnear > 1e-6)
    axis = np.nanargmax(tn, 1)
    n = np.zeros_like(d)
    n[np.arange(len(d)), axis] = -np.sign(d[np.arange(len(d)), axis])
    return np.where(hit, tnear, np.inf), n, np.zeros((len(d), 2))


def _cylinder(o, d, p):
    cx, cy, r, z0, z1 = p
    ox, oy = o[:, 0] - cx, o[:, 1] - cy
    a = d[:, 0] ** 2 + d[:, 1] ** 2
    b = 2 * (ox * d[:, 0] + oy * d[:, 1])
    c = ox**2 + oy**2 - r**2
    disc = b * b - 4 * a * c
    with np.errstate(invalid="ignore", divide="ignore"):
        ts = (-b - np.sqrt(disc)) / (2 * a)
    z = o[:, 2] + ts * d[:, 2]
    side = (disc >= 0) & (ts > 1e-6) & (z >= z0) & (z <= z1)
    t = np.where(side, ts, np.inf)
    n = np.stack([ox + ts * d[:, 0], oy + ts * d[:, 1], np.zeros_like(ts)], 1) / r
    k = np.where(side[:, None], np.array([[1.0 / r, 0.0]]), 0.0)
    with np.errstate(divide="ignore", invalid="ignore"):  # caps
        for zc, sign in ((z1, 1.0), (z0, -1.0)):
            tc = (zc - o[:, 2]) / d[:, 2]
            px, py = ox + tc * d[:, 0], oy + tc * d[:, 1]
            cap = (tc > 1e-6) & (px**2 + py**2 <= r * r) & (tc < t)
            t = np.where(cap, tc, t)
            n = np.where(cap[:, None], np.array([[0, 0, sign]]), n)
            k = np.where(cap[:, None], 0.0, k)
    return t, np.nan_to_num(n), k


def _sphere(o, d, p):
    c, r = p[:3], p[3]
    oc = o - c
    b = np.einsum("ij,ij->i", oc, d)
    cc = np.einsum("ij,ij->i", oc, oc) - r * r
    a = np.einsum("ij,ij->i", d, d)
    disc = b * b - a * cc
    with np.errstate(invalid="ignore"):
        t = (-b - np.sqrt(disc)) / a
    hit = (disc >= 0) & (t > 1e-6)
    t = np.where(hit, t, np.inf)
    n = np.nan_to_num((oc + np.where(hit, t, 0)[:, None] * d) / r)
    return t, n, np.full((len(d), 2), 1.0 / r)


_INTERSECT = {"box": _box, "cylinder": _cylinder, "sphere": _sphere}


def _shell(o, d, room: Room):
    """Exit point of rays starting inside the room box; holes give inf."""
    with np.errstate(divide="ignore", invalid="ignore"):
        ts = np.where(d > 0, (room.hi - o) / d, (room.lo - o) / d)
    ts = np.where(np.isfinite(ts) & (ts > 0), ts, np.inf)
    axis = np.argmin(ts, 1)
    t = ts[np.arange(len(d)), axis]
    p = o + t[:, None] * d
    n = np.zeros_like(d)
    n[np.arange(len(d)), axis] = -np.sign(d[np.arange(len(d)), axis])
    hole = np.zeros(len(d), bool)
    for ax, side, (u0, u1, z0, z1) in room.holes:
        on_wall = (axis == ax) & ((d[:, ax] > 0) == bool(side))
        u = p[:, 1 - ax]
        hole |= on_wall & (u >= u0) & (u <= u1) & (p[:, 2] >= z0) & (p[:, 2] <= z1)
    t = np.where(hole, np.inf, t)
    material = np.where(axis == 2, np.where(d[:, 2] < 0, 0, 2), 1)  # floor, wall, ceiling
    return t, n, material


def _bounding_sphere(prim: Primitive) -> tuple[np.ndarray, float]:
    q = prim.params
    if prim.kind == "box":
        return (q[:3] + q[3:]) / 2, float(np.linalg.norm(q[3:] - q[:3]) / 2)
    if prim.kind == "cylinder":
        return np.array([q[0], q[1], (q[3] + q[4]) / 2]), float(np.hypot(q[2], (q[4] - q[3]) / 2))
    return q[:3], float(q[3])


def _nearest_primitive(o: np.ndarray, d: np.ndarray, t: np.ndarray, room: Room) -> np.ndarray:
    """Index of the primitive each ray hits first, before distance ``t``
    (-1: none); lowers ``t`` (N,) in place to that hit's distance.

    ``o`` is one origin (3,) for every ray. Each primitive is tested only
    on the rays that pass near its bounding sphere, found for all
    primitives at once with one (N, 3) x (3, P) product.
    """
    best = np.full(len(d), -1)
    if not room.prims:
        return best
    spheres = [_bounding_sphere(prim) for prim in room.prims]
    # the culling test in float32 with bounding spheres 1% + 1 cm larger:
    # conservative, and half the cost of float64 on 16k x 30 entries
    centres = (np.stack([c for c, _ in spheres]) - o).astype(np.float32)  # (P, 3)
    radii = np.array([r for _, r in spheres], np.float32) * 1.01 + 0.01
    d32 = d.astype(np.float32)
    dd = np.einsum("ij,ij->i", d32, d32)[:, None]
    along = d32 @ centres.T  # (N, P)
    reach = radii * np.sqrt(dd)
    near_all = ((centres * centres).sum(1) * dd - along * along <= reach * reach) & (along > -reach)
    t_max = np.minimum(t, 1e30).astype(np.float32)  # inf -> large, no overflow below
    for i in np.flatnonzero(near_all.any(0)):
        near = np.flatnonzero(near_all[:, i] & (along[:, i] < t_max * dd[:, 0] + reach[:, i]))
        if near.size == 0:
            continue
        prim = room.prims[i]
        tp = _INTERSECT[prim.kind](np.broadcast_to(o, (near.size, 3)), d[near], prim.params)[0]
        closer = tp < t[near]
        t[near[closer]] = tp[closer]
        best[near[closer]] = i
    return best


def occluded(light: np.ndarray, points: np.ndarray, room: Room) -> np.ndarray:
    """Whether a primitive blocks the segment from ``light`` (3,) to each of
    ``points`` (N, 3), (N,) bool: shadow rays, cast from the light so they
    share one origin. A segment between two points inside a convex room
    never crosses its shell, so only primitives are tested; start the
    points slightly off their surface."""
    t = np.full(len(points), 1.0 - 1e-6)
    return _nearest_primitive(np.asarray(light, np.float64), points - light, t, room) >= 0


def cast(o: np.ndarray, d: np.ndarray, room: Room) -> Hits:
    """Intersects rays from one origin ``o`` (3,) along directions ``d``
    (N, 3) with a room.

    Two passes: distances first (:func:`_nearest_primitive`), then normals
    and curvatures only where a primitive is the nearest hit.
    """
    origin = np.asarray(o, np.float64)
    o = np.broadcast_to(origin, d.shape)
    t, n, material = _shell(o, d, room)
    best = _nearest_primitive(origin, d, t, room)
    k = np.zeros((len(d), 2))
    obj = np.zeros(len(d), np.int32)
    label = np.where(np.isfinite(t), BACKGROUND, 0).astype(np.int32)
    for i, prim in enumerate(room.prims):
        won = np.flatnonzero(best == i)
        if won.size == 0:
            continue
        _, n[won], k[won] = _INTERSECT[prim.kind](o[won], d[won], prim.params)
        obj[won], label[won], material[won] = prim.obj, prim.label, prim.material
    facing = np.einsum("ij,ij->i", n, d) > 0
    n[facing] = -n[facing]  # normals face the viewer
    return Hits(t, n, k, obj, label, material)


def inside_solid(p: np.ndarray, room: Room, clearance: float = 0.3) -> bool:
    """Whether a point is within ``clearance`` of a piece of furniture or a wall."""
    if np.any(p < room.lo + clearance) or np.any(p > room.hi - clearance):
        return True
    for prim in room.prims:
        q = prim.params
        if prim.kind == "box":
            if np.all(p > q[:3] - clearance) and np.all(p < q[3:] + clearance):
                return True
        elif prim.kind == "cylinder":
            if (np.hypot(p[0] - q[0], p[1] - q[1]) < q[2] + clearance
                    and q[3] - clearance < p[2] < q[4] + clearance):
                return True
        elif np.linalg.norm(p - q[:3]) < q[3] + clearance:
            return True
    return False
