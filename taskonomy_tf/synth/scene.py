"""Procedural indoor scenes (numpy); ray casting is in ``raycast``.

A building is a few rooms side by side. A room is its bounding box cut by
a few more planes (corners cut at free angles, a ceiling sloping down to
one wall) and by vertical cylinders (bowed walls), so it stays convex but
its surfaces are not all axis-aligned; its four box walls have windows and
doors (holes: rays leaving through them hit no geometry). Inside stand
furniture built from boxes, vertical cylinders and spheres, each piece
turned by its own angle about the vertical, curved decor, boards leaning on
the walls and clutter: boxes at arbitrary orientations.

Units are metres; the world's z axis points up.
"""

from __future__ import annotations

import dataclasses
import itertools

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
    """One solid: ``kind`` is ``obox`` (centre (3), half sizes (3), rotation
    (9, row-major: its columns are the box's axes in the world)),
    ``cylinder`` (centre x, y, radius, z0, z1) or ``sphere`` (centre, radius)."""

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
    """A convex room: the box ``lo``/``hi`` cut by ``planes`` (K, 4): each row an
    outward unit normal and an offset, a point x inside when n . x <= offset
    for every row; rows 2 * axis + side are the box's faces (side 1 the one
    at ``hi``), the rows after them the cuts. It also lies inside the vertical
    cylinders ``bows`` (bowed walls). Holes are in the four box walls."""

    name: str
    kind: str
    lo: np.ndarray
    hi: np.ndarray
    planes: np.ndarray
    bows: np.ndarray  # (M, 3): centre x, y and radius of vertical cylinders it lies in
    holes: list[tuple[int, int, np.ndarray]]  # (axis, side 0/1, [u0, u1, z0, z1])
    prims: list[Primitive]
    materials: list[Material]
    lights: np.ndarray  # (L, 3)


def _material(rng) -> Material:
    c = rng.uniform(0.15, 0.95, 3)
    return Material(c, np.clip(c * rng.uniform(0.4, 0.8), 0, 1), str(rng.choice(TEXTURES)),
                    float(rng.uniform(0.05, 0.5)))


def box(lo, hi, rot: np.ndarray, obj: int, label: int, mat: int) -> Primitive:
    """The box with corners ``lo``, ``hi`` (3,) in its own axes, turned by
    ``rot`` (3, 3) about its centre."""
    lo, hi = np.asarray(lo, float), np.asarray(hi, float)
    return Primitive("obox", np.concatenate([(lo + hi) / 2, (hi - lo) / 2, rot.ravel()]),
                     obj, label, mat)


def yaw_matrix(angle: float) -> np.ndarray:
    """Rotation by ``angle`` (radians) about the world's vertical z axis."""
    c, s = np.cos(angle), np.sin(angle)
    return np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])


def turned(prims: list[Primitive], about: np.ndarray, rot: np.ndarray) -> list[Primitive]:
    """``prims`` turned rigidly by the vertical rotation ``rot`` about the
    vertical line through ``about`` (3,): centres move, boxes turn,
    cylinders and spheres (symmetric about the vertical) only move."""
    out = []
    for prim in prims:
        q = prim.params.copy()
        if prim.kind == "obox":
            q[:3] = about + rot @ (q[:3] - about)
            q[6:15] = (rot @ q[6:15].reshape(3, 3)).ravel()
        elif prim.kind == "cylinder":
            q[:2] = about[:2] + rot[:2, :2] @ (q[:2] - about[:2])
        else:
            q[:3] = about + rot @ (q[:3] - about)
        out.append(dataclasses.replace(prim, params=q))
    return out


def _furniture(kind: str, rng, at: np.ndarray, obj: int, label: int, mat: int) -> list[Primitive]:
    """Primitives of one piece of furniture standing at ``at`` (x, y, floor z),
    in its own axes (``make_room`` turns it)."""
    x, y, z = at

    def B(lo, hi):  # box, cylinder, sphere: short names for the layouts below
        return box(lo, hi, np.eye(3), obj, label, mat)

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
    planes = np.concatenate([_box_planes(lo, hi), _cuts(rng, lo, hi)])
    bows = _bows(rng, lo, hi)
    materials = [_material(rng) for _ in range(4)]  # floor, walls, ceiling, spare
    materials[1].texture = str(rng.choice(["plain", "stripes", "noise"]))
    prims: list[Primitive] = []
    classes = ROOM_TYPES[kind]
    obj = 0
    for obj in range(1, int(rng.integers(3, 7)) + 1):
        cls = str(rng.choice(classes))
        materials.append(_material(rng))
        margin = 0.9
        at = np.array([rng.uniform(lo[0] + margin, hi[0] - margin),
                       rng.uniform(lo[1] + margin, hi[1] - margin), lo[2]])
        piece = _furniture(cls, rng, at, obj, SEMANTIC.index(cls), len(materials) - 1)
        prims += turned(piece, at, yaw_matrix(rng.uniform(0, 2 * np.pi)))
    prims += _curved_decor(rng, lo, hi, obj + 1, materials)
    prims += _clutter(rng, lo, hi, max(p.obj for p in prims) + 1, materials)
    lights = np.stack([_light(rng, planes, bows, lo, hi) for _ in range(int(rng.integers(2, 4)))])
    return Room(name, kind, lo, hi, planes, bows, holes, prims, materials, lights)


def _box_planes(lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """The six faces of the box as (6, 4) planes, row 2 * axis + side."""
    rows = []
    for axis in range(3):
        for sign, offset in ((-1.0, -lo[axis]), (1.0, hi[axis])):  # side 0, side 1
            n = np.zeros(3)
            n[axis] = sign
            rows.append([*n, offset])
    return np.array(rows)


def _cuts(rng, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """Planes that cut the box: two to four of its vertical corners cut off
    at a free angle (0.8-2 m along each wall), and in three rooms of four a
    ceiling that slopes down by 0.3-0.8 m (never below 2.2 m) to one wall
    over 1.5-3 m. (K, 4) outward unit normals and offsets."""
    rows = []
    corners = [(sx, sy) for sx in (0, 1) for sy in (0, 1)]
    for c in rng.permutation(4)[:int(rng.integers(2, 5))]:
        sx, sy = corners[c]
        gx, gy = (1.0 if sx else -1.0), (1.0 if sy else -1.0)
        cx, cy = (hi[0] if sx else lo[0]), (hi[1] if sy else lo[1])
        a, b = rng.uniform(0.8, 2.0, 2)  # the cut's length along the x and y walls
        n = np.array([gx * b, gy * a, 0.0])
        n /= np.linalg.norm(n)
        rows.append([*n, n @ np.array([cx - gx * a, cy, 0.0])])
    if rng.random() < 0.75:
        axis, side = int(rng.integers(0, 2)), int(rng.integers(0, 2))
        g = 1.0 if side else -1.0
        drop = rng.uniform(0.3, max(0.31, min(0.8, hi[2] - lo[2] - 2.2)))
        run = rng.uniform(1.5, 3.0)
        n = np.zeros(3)
        n[axis], n[2] = g * drop, run
        n /= np.linalg.norm(n)
        on_wall = np.zeros(3)
        on_wall[axis], on_wall[2] = (hi if side else lo)[axis], hi[2] - drop
        rows.append([*n, n @ on_wall])
    return np.array(rows).reshape(-1, 4)


def _bows(rng, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """In most rooms (85%) one wall, and in half of those also the wall
    opposite, bowed outwards: the room is cut by a vertical cylinder
    tangent to that wall at its middle, of radius 0.6-2 times the wall's
    length, so the wall curves by 14-56 degrees each side. (M, 3)."""
    rows = []
    if rng.random() < 0.85:
        axis = int(rng.integers(0, 2))
        sides = [int(rng.integers(0, 2))]
        if rng.random() < 0.5:
            sides.append(1 - sides[0])
        span = hi[1 - axis] - lo[1 - axis]
        for side in sides:
            r = rng.uniform(0.6, 2.0) * span
            centre = (lo + hi) / 2
            centre[axis] = hi[axis] - r if side else lo[axis] + r
            rows.append([centre[0], centre[1], r])
    return np.array(rows).reshape(-1, 3)


def depth_inside(planes: np.ndarray, bows: np.ndarray, p: np.ndarray) -> float:
    """How far (m) the point ``p`` (3,) is inside a shell of ``planes`` (K, 4)
    and ``bows`` (M, 3) (``Room``'s fields; negative: outside)."""
    depth = float(np.min(planes[:, 3] - planes[:, :3] @ p))
    if len(bows):
        depth = min(depth, float(np.min(bows[:, 2] - np.hypot(p[0] - bows[:, 0],
                                                              p[1] - bows[:, 1]))))
    return depth


def _light(rng, planes: np.ndarray, bows: np.ndarray, lo: np.ndarray, hi: np.ndarray
           ) -> np.ndarray:
    """A ceiling light: a point 10 cm below the ceiling (sloped or not), at
    least 50 cm from every wall and at least 2 m above the floor."""
    ceiling = planes[:, 2] > 0.3
    while True:
        p = np.array([*rng.uniform(lo[:2] + 0.5, hi[:2] - 0.5), hi[2] - 0.1])
        while np.any(planes[ceiling, :3] @ p > planes[ceiling, 3] - 0.1) and p[2] > lo[2] + 2.0:
            p[2] -= 0.05
        if (depth_inside(planes, bows, p) >= 0.1
                and depth_inside(planes[~ceiling], bows, p) >= 0.5):
            return p


def _clutter(rng, lo: np.ndarray, hi: np.ndarray, obj: int,
             materials: list[Material]) -> list[Primitive]:
    """Two to four boards leaning on the walls (0.6-1.6 m wide, 1-2 m
    tall, 9-26 degrees off the vertical), then three to eight boxes (5-30 cm
    half sizes) at arbitrary orientations, on the floor (partly sunk in it)
    or on a wall (partly in it): surfaces facing every way. Labelled
    background."""
    prims = []
    for _ in range(int(rng.integers(2, 5))):  # boards leaning on the walls
        materials.append(_material(rng))
        axis, side = int(rng.integers(0, 2)), int(rng.integers(0, 2))
        half = np.array([rng.uniform(0.3, 0.8), 0.02, rng.uniform(0.5, 1.0)])
        lean = rng.uniform(0.15, 0.45)  # radians off the vertical
        g = 1.0 if side else -1.0
        # the board's own y axis is its thickness: turned to face the wall's
        # normal, then tipped about its width axis by ``lean``
        face = yaw_matrix(np.pi / 2 * (1 - axis) + (np.pi if side else 0.0))
        tip = np.array([[1, 0, 0], [0, np.cos(lean), -np.sin(lean)],
                        [0, np.sin(lean), np.cos(lean)]])
        rot = face @ tip
        centre = np.array([*rng.uniform(lo[:2] + 1.0, hi[:2] - 1.0),
                           lo[2] + half[2] * np.cos(lean)])
        centre[axis] = (hi if side else lo)[axis] - g * (half[2] * np.sin(lean) + 0.05)
        prims.append(box(centre - half, centre + half, rot, obj, BACKGROUND, len(materials) - 1))
        obj += 1
    for _ in range(int(rng.integers(3, 9))):
        materials.append(_material(rng))
        half = rng.uniform(0.05, 0.3, 3)
        q, r = np.linalg.qr(rng.normal(size=(3, 3)))
        rot = q * np.sign(np.diag(r))  # a uniformly random rotation (up to reflection)
        if np.linalg.det(rot) < 0:
            rot[:, 0] = -rot[:, 0]
        centre = np.array([*rng.uniform(lo[:2] + 0.4, hi[:2] - 0.4), lo[2] + half.min()])
        if rng.random() < 0.5:  # on a wall, 0.8-2 m up (a shelf, a frame)
            axis, side = int(rng.integers(0, 2)), int(rng.integers(0, 2))
            reach = np.linalg.norm(half) * 0.8
            centre[axis] = hi[axis] - reach if side else lo[axis] + reach
            centre[2] = lo[2] + rng.uniform(0.8, 2.0)
        prims.append(box(centre - half, centre + half, rot, obj, BACKGROUND, len(materials) - 1))
        obj += 1
    return prims


def room_corners(room: Room) -> np.ndarray:
    """(K, 3) world corners of the room's solids: the vertices of the room
    polytope (every three planes meeting at a point inside all of them) and
    the eight corners of every box."""
    out = []
    planes = room.planes
    for i, j, k in itertools.combinations(range(len(planes)), 3):
        m = planes[[i, j, k], :3]
        if abs(np.linalg.det(m)) < 1e-9:
            continue
        v = np.linalg.solve(m, planes[[i, j, k], 3])
        if depth_inside(room.planes, room.bows, v) >= -1e-7:
            out.append(v)
    signs = np.array([[i, j, k] for i in (-1, 1) for j in (-1, 1) for k in (-1, 1)], float)
    for prim in room.prims:
        if prim.kind == "obox":
            q = prim.params
            out.extend(q[:3] + (signs * q[3:6]) @ q[6:15].reshape(3, 3).T)
    return np.array(out).reshape(-1, 3)


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


