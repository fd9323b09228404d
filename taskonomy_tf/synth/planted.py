"""A planted taxonomy: a dataset card whose task relations are known exactly.

Each image shows several independent *families* of hidden factors (a disk,
a grating, a lighting gradient), drawn over a random texture and noise.
Every label column is a function of the factors of one family, and inside a
family the labels are graded:

* ``full``: a dense map that depends on every factor of the family;
* ``two``: a pixelwise function of the ``full`` map (a coarsening: the disk's
  mask, the grating's sign, the light field's level bands), so ``full``
  determines it exactly, and it keeps most of what ``full`` holds;
* ``one``: one factor only, per image (the disk's position, the grating's
  orientation class, the light's direction).

``planted_scores`` turns that into a known order of sources for each target:
into ``two``, ``full`` (determines it) before ``one`` (a part of it); into
``full``, ``two`` (most of it) before ``one``; into ``one``, ``full`` and
``two`` both determine it (a tie, left out of the order checks); sources of
other families carry nothing. Exact functions are pixelwise, so that a
readout can compute them from a code that holds the source's label.

What a taxonomy method should recover, and ``recovery`` measures on a
run's affinities:

* the families: same-family affinities well above other-family ones;
* the order inside each family, for each target whose planted order is
  strict;
* a dictionary that, at a budget of one task per family, supervises one
  task of each family.

Samples come in groups (a group shares its background texture, like views of
one building); splits are by group. ``write_planted`` writes the card
(``dataset.json``, ``samples.csv``, ``images/``, ``labels/``) and
``planted.json``, the truth. Deterministic for a seed.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import json
import os
from pathlib import Path

import numpy as np

from taskonomy_tf.fileio import write_bytes_atomic, write_json_atomic, write_text_atomic

PLANTED_FILE = "planted.json"
GRADES = ("one", "two", "full")
# target grade -> source grade -> the share of the target's label the source's
# label determines (module doc): exact functions 1, most of it 2/3, one factor 1/3
GRADE_SCORES = {"one": {"two": 1.0, "full": 1.0},
                "two": {"full": 1.0, "one": 1 / 3},
                "full": {"two": 2 / 3, "one": 1 / 3}}


@dataclasses.dataclass(frozen=True)
class PlantedConfig:
    """Attributes:
        samples: images in all.
        size: image side, px.
        group_size: samples per group (one background texture each).
        families: which families to draw (``FAMILIES``), in this order.
        seed: everything is drawn from it.
        noise: per-pixel noise standard deviation, on [0, 1] intensities.
        splits: shares of groups in train, val, test.
    """

    samples: int = 2400
    size: int = 64
    group_size: int = 10
    families: tuple[str, ...] = ("disk", "wave", "light")
    seed: int = 0
    noise: float = 0.04
    splits: tuple[float, float, float] = (0.6, 0.2, 0.2)


def _grid(size: int) -> tuple[np.ndarray, np.ndarray]:
    """Pixel centres in [-1, 1], (size, size) each: x to the right, y down."""
    c = (np.arange(size) + 0.5) / size * 2 - 1
    return np.meshgrid(c, c)


# ------------------------------------------------------------------ families
# Each family: factors(rng) -> dict; draw(f, x, y) -> (rgb contribution to add,
# multiplicative field); labels(f, x, y) -> {grade: (kind-specific value)}.
def _disk_factors(rng):
    return {"cx": rng.uniform(-0.55, 0.55), "cy": rng.uniform(-0.55, 0.55),
            "r": rng.uniform(0.15, 0.4), "c": rng.uniform(0.12, 0.35),
            "hue": rng.uniform(0, 1)}


def _disk_inside(f, x, y):
    return (x - f["cx"]) ** 2 + (y - f["cy"]) ** 2 <= f["r"] ** 2


def _disk_draw(f, x, y):
    inside = _disk_inside(f, x, y)
    tint = 0.6 + 0.4 * np.cos(2 * np.pi * (f["hue"] + np.arange(3) / 3))
    return inside[..., None] * f["c"] * tint, None


def _disk_labels(f, x, y):
    full = _disk_inside(f, x, y) * f["c"] / 0.35  # position, radius, contrast, in [0, 1]
    return {"one": np.array([f["cx"], f["cy"]]) / 0.55,   # the position
            "two": (full > 0).astype(np.uint8),              # the disk's mask: full > 0
            "full": full}


def _wave_factors(rng):
    return {"theta": rng.uniform(0, np.pi), "freq": rng.uniform(2.0, 6.0),
            "phase": rng.uniform(0, 2 * np.pi), "amp": 0.08}


def _wave(f, x, y):
    u = x * np.cos(f["theta"]) + y * np.sin(f["theta"])
    return np.sin(np.pi * f["freq"] * u + f["phase"])


def _wave_draw(f, x, y):
    return (f["amp"] * _wave(f, x, y))[..., None] * np.ones(3), None


WAVE_ANGLE_BINS = 4


def _wave_labels(f, x, y):
    full = _wave(f, x, y)  # orientation, frequency, phase
    return {"one": int(f["theta"] / np.pi * WAVE_ANGLE_BINS) % WAVE_ANGLE_BINS,  # orientation
            "two": (full > 0).astype(np.uint8),                                # its sign
            "full": full}


def _light_factors(rng):
    return {"alpha": rng.uniform(0, 2 * np.pi), "s": rng.uniform(0.1, 0.35),
            "a": rng.uniform(0.8, 1.1)}


def _light_field(f, x, y):
    return f["a"] + f["s"] * (x * np.cos(f["alpha"]) + y * np.sin(f["alpha"]))


LIGHT_BANDS = (0.85, 1.0, 1.15)  # level bands of the light field (4 classes)


def _light_draw(f, x, y):
    return None, _light_field(f, x, y)


def _light_labels(f, x, y):
    full = _light_field(f, x, y)  # direction, strength, level
    return {"one": np.array([np.cos(f["alpha"]), np.sin(f["alpha"])]),   # the direction
            "two": np.digitize(full, LIGHT_BANDS).astype(np.uint8),       # its level bands
            "full": full}


# label kinds per family and grade, as dataset-card entries
FAMILIES = {
    "disk": (_disk_factors, _disk_draw, _disk_labels, {
        "one": {"kind": "vector", "length": 2},
        "two": {"kind": "dense_classes", "classes": 2},
        "full": {"kind": "dense_regression", "range": [0, 1]}}),
    "wave": (_wave_factors, _wave_draw, _wave_labels, {
        "one": {"kind": "classes", "classes": WAVE_ANGLE_BINS},
        "two": {"kind": "dense_classes", "classes": 2},
        "full": {"kind": "dense_regression", "range": [-1, 1]}}),
    "light": (_light_factors, _light_draw, _light_labels, {
        "one": {"kind": "vector", "length": 2},
        "two": {"kind": "dense_classes", "classes": len(LIGHT_BANDS) + 1},
        "full": {"kind": "dense_regression", "range": [0.2, 1.7]}}),
}


def label_name(family: str, grade: str) -> str:
    return f"{family}_{grade}"


def planted_scores(families) -> dict[str, dict[str, float]]:
    """target -> source -> the share of the target's label that the source's
    label determines (``GRADE_SCORES``; 0 across families)."""
    out: dict[str, dict[str, float]] = {}
    for ft in families:
        for gt in GRADES:
            out[label_name(ft, gt)] = {
                label_name(fs, gs): GRADE_SCORES[gt][gs] if fs == ft else 0.0
                for fs in families for gs in GRADES if (fs, gs) != (ft, gt)}
    return out


def _texture(rng, size: int) -> np.ndarray:
    """A smooth random grey texture in about [-0.1, 0.1], (size, size)."""
    from scipy.ndimage import gaussian_filter

    t = gaussian_filter(rng.normal(size=(size, size)), sigma=size / 16, mode="wrap")
    return 0.1 * t / max(np.abs(t).max(), 1e-9)


def _png(arr: np.ndarray) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="PNG")
    return buf.getvalue()


def _encode_dense(value: np.ndarray, spec: dict) -> bytes:
    if spec["kind"] == "dense_classes":
        return _png(value.astype(np.uint8))
    lo, hi = spec["range"]
    unit = np.clip((value - lo) / (hi - lo), 0, 1)
    return _png(np.round(unit * 65535).astype(np.uint16))


def _cell(value, spec: dict) -> str:
    if spec["kind"] == "classes":
        return str(int(value))
    return " ".join(f"{v:.6f}" for v in np.ravel(value))


def write_planted(out: str | os.PathLike, cfg: PlantedConfig = PlantedConfig()) -> Path:
    """Writes the planted card into ``out``; returns ``out``.

    Raises:
        ValueError: an unknown family, or fewer than 3 groups.
    """
    unknown = [f for f in cfg.families if f not in FAMILIES]
    if unknown or not cfg.families:
        raise ValueError(f"families {unknown or '()'}: expected some of "
                         f"{', '.join(FAMILIES)}")
    groups = -(-cfg.samples // cfg.group_size)
    if groups < 3:
        raise ValueError(f"{groups} group(s): train, val and test need 3 or more")
    out = Path(out)
    (out / "images").mkdir(parents=True, exist_ok=True)
    (out / "labels").mkdir(exist_ok=True)
    x, y = _grid(cfg.size)
    specs = {label_name(f, g): FAMILIES[f][3][g] for f in cfg.families for g in GRADES}
    rng_split = np.random.default_rng([cfg.seed, 1])
    order = rng_split.permutation(groups)
    cut = np.cumsum(np.round(np.array(cfg.splits) * groups)).astype(int)
    split_of = {}
    for k, g in enumerate(order):
        split_of[int(g)] = "train" if k < cut[0] else "val" if k < cut[1] else "test"
    rows = []
    for i in range(cfg.samples):
        g = i // cfg.group_size
        texture = _texture(np.random.default_rng([cfg.seed, 2, g]), cfg.size)
        rng = np.random.default_rng([cfg.seed, 3, i])
        add = np.zeros((cfg.size, cfg.size, 3))
        field = np.ones((cfg.size, cfg.size))
        row = {"id": f"s{i:05d}", "split": split_of[g], "group": f"g{g:04d}",
               "rgb": f"images/s{i:05d}.png"}
        for fam in cfg.families:
            factors_fn, draw, labels_fn, kinds = FAMILIES[fam]
            f = factors_fn(rng)
            extra, mult = draw(f, x, y)
            if extra is not None:
                add += extra
            if mult is not None:
                field *= mult
            for grade, value in labels_fn(f, x, y).items():
                name, spec = label_name(fam, grade), kinds[grade]
                if spec["kind"].startswith("dense"):
                    rel = f"labels/{name}/s{i:05d}.png"
                    (out / rel).parent.mkdir(exist_ok=True)
                    write_bytes_atomic(out / rel, _encode_dense(value, spec), durable=False)
                    row[name] = rel
                else:
                    row[name] = _cell(value, spec)
        base = (0.35 + texture)[..., None] + add
        img = field[..., None] * base + rng.normal(0, cfg.noise, base.shape)
        write_bytes_atomic(out / row["rgb"], _png(np.round(np.clip(img, 0, 1) * 255)
                                                  .astype(np.uint8)), durable=False)
        rows.append(row)
    columns = ["id", "split", "group", "rgb", *specs]
    buf = io.StringIO()
    writer = csv.DictWriter(buf, columns, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    write_text_atomic(out / "samples.csv", buf.getvalue())
    card = {"name": f"planted-{cfg.seed}", "samples": "samples.csv", "image": "rgb",
            "group": "group",
            "labels": {n: {**s, "cluster": n.split("_")[0]} for n, s in specs.items()}}
    write_json_atomic(out / "dataset.json", card, sort_keys=False)
    write_json_atomic(out / PLANTED_FILE, {
        "config": dataclasses.asdict(cfg), "families": {
            f: [label_name(f, g) for g in GRADES] for f in cfg.families},
        "scores": planted_scores(cfg.families)}, sort_keys=False)
    return out


def recovery(affinities: dict[str, dict[str, float]], truth: dict) -> dict:
    """How well a run's first-order affinities (target -> source -> value,
    ``taxonomy.compare.first_order``) recover the planted taxonomy.

    Returns:
        ``family_contrast`` (mean same-family affinity over mean
        other-family affinity), ``within_spearman`` (per target with a
        strict planted order among its own family's sources: Spearman of
        the affinities against the planted scores) and its ``mean``.
    """
    from taskonomy_tf.taxonomy.yardsticks import spearman

    scores = truth["scores"]
    family = {lab: f for f, labels in truth["families"].items() for lab in labels}
    same, other, within = [], [], {}
    for t, row in affinities.items():
        if t not in family:
            continue
        for s, v in row.items():
            if s in family and s != t:
                (same if family[s] == family[t] else other).append(v)
        own = [s for s in row if family.get(s) == family[t] and s != t]
        truth_row = [scores[t][s] for s in own]
        if len(own) >= 2 and len(set(truth_row)) == len(truth_row):  # a strict order
            within[t] = spearman(np.array([row[s] for s in own]), np.array(truth_row))
    return {"family_contrast": (float(np.mean(same) / np.mean(other))
                                if same and other and np.mean(other) > 0 else None),
            "within_spearman": within,
            "mean_within_spearman": float(np.mean(list(within.values()))) if within else None}


def load_truth(folder: str | os.PathLike) -> dict:
    return json.loads((Path(folder) / PLANTED_FILE).read_text())


def planted_recovery(affinities, folder: str | os.PathLike, contrasts: dict,
                     sweep: list[dict]) -> dict:
    """A pipeline run's recovery of the planted card in ``folder``:
    ``recovery`` on its first-order affinities (a ``TransferTable``), the
    bootstrap interval of the family contrast (``contrasts``: the
    bootstrap's, keyed as ``compare.cluster_contrasts``), and whether the
    dictionary at a budget of one task per family (from the ``sweep`` rows)
    supervises one task of each family."""
    from taskonomy_tf.taxonomy.compare import SAME_OVER_OTHER, first_order

    truth = load_truth(folder)
    out = recovery(first_order(affinities), truth)
    out["family_contrast_interval"] = contrasts.get(SAME_OVER_OTHER)
    families = truth["families"]
    family = {lab: f for f, labels in families.items() for lab in labels}
    row = next((r for r in sweep if r.get("budget") == len(families) and "roots" in r), None)
    roots = row["roots"] if row else []
    out["dictionary"] = {"budget": len(families), "roots": roots,
                         # a root outside every family (a self-supervised source) is none
                         "one_per_family": sorted(family.get(r, "") for r in roots) ==
                         sorted(families)}
    return out
