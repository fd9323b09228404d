"""Writes an example dataset card: your own images and labels, as the toolkit reads them.

    python examples/make_card.py --out shapes [--samples 600] [--size 64] [--seed 0]

A team with its own data writes the same three things: the images, one file
or CSV cell per label, and ``dataset.json`` saying what each label column is
(docs/your_data.md). Here the images are drawn on the fly: a few disks on a
background lit from one side, in scenes of 6 images that share their
background (the card's groups). Four label columns, one of each kind:

* ``disk_mask``  (dense_classes, 2): which pixels are on a disk, as PNG;
* ``disk_dist``  (dense_regression, range [0, 1]): distance to the nearest
  disk centre, as a 16-bit PNG;
* ``disk_count`` (classes, 6): how many disks, in the CSV;
* ``light_dir``  (vector, 2): the direction of the light, in the CSV.

The disk labels form one family, the light another (``cluster``). Runtime:
about 5 s for 600 images.
"""

from __future__ import annotations

import argparse
import csv
import json
from pathlib import Path

import numpy as np
from PIL import Image


def draw(rng, size: int, background: np.ndarray):
    """One image and its labels."""
    c = (np.arange(size) + 0.5) / size
    x, y = np.meshgrid(c, c)
    count = int(rng.integers(0, 6))
    centres = rng.uniform(0.15, 0.85, (count, 2))
    radii = rng.uniform(0.06, 0.14, count)
    dist = np.full((size, size), 1.0)
    mask = np.zeros((size, size), np.uint8)
    for (cx, cy), r in zip(centres, radii):
        d = np.hypot(x - cx, y - cy)
        dist = np.minimum(dist, d)
        mask[d <= r] = 1
    angle = rng.uniform(0, 2 * np.pi)
    light = 0.8 + 0.3 * ((x - 0.5) * np.cos(angle) + (y - 0.5) * np.sin(angle))
    rgb = background * light[..., None]
    rgb[mask == 1] = 0.2 + 0.6 * rng.uniform(size=3)
    rgb = np.clip(rgb + rng.normal(0, 0.03, rgb.shape), 0, 1)
    return (np.round(rgb * 255).astype(np.uint8), mask, np.clip(dist, 0, 1), count,
            (np.cos(angle), np.sin(angle)))


def write_card(out: Path, samples: int = 600, size: int = 64, seed: int = 0) -> Path:
    rng = np.random.default_rng(seed)
    for sub in ("images", "disk_mask", "disk_dist"):
        (out / sub).mkdir(parents=True, exist_ok=True)
    rows = []
    for i in range(samples):
        scene = i // 6
        if i % 6 == 0:
            background = 0.35 + 0.3 * rng.uniform(size=(1, 1, 3)) * np.ones((size, size, 3))
        rgb, mask, dist, count, light = draw(rng, size, background)
        name = f"{i:05d}.png"
        Image.fromarray(rgb).save(out / "images" / name)
        Image.fromarray(mask).save(out / "disk_mask" / name)
        Image.fromarray(np.round(dist * 65535).astype(np.uint16)).save(out / "disk_dist" / name)
        split = ("train", "train", "train", "val", "test")[scene % 5]
        rows.append({"id": f"img{i:05d}", "split": split, "group": f"scene{scene:04d}",
                     "rgb": f"images/{name}", "disk_mask": f"disk_mask/{name}",
                     "disk_dist": f"disk_dist/{name}", "disk_count": count,
                     "light_dir": f"{light[0]:.5f} {light[1]:.5f}"})
    with open(out / "samples.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    card = {"name": "shapes", "samples": "samples.csv", "image": "rgb", "group": "group",
            "labels": {
                "disk_mask": {"kind": "dense_classes", "classes": 2, "cluster": "disks"},
                "disk_dist": {"kind": "dense_regression", "range": [0, 1], "cluster": "disks"},
                "disk_count": {"kind": "classes", "classes": 6, "cluster": "disks"},
                "light_dir": {"kind": "vector", "length": 2, "cluster": "light"}}}
    (out / "dataset.json").write_text(json.dumps(card, indent=1) + "\n")
    return out


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--out", default="shapes")
    p.add_argument("--samples", type=int, default=600)
    p.add_argument("--size", type=int, default=64)
    p.add_argument("--seed", type=int, default=0)
    a = p.parse_args(argv)
    write_card(Path(a.out), a.samples, a.size, a.seed)
    print(f"wrote the dataset card {a.out}/dataset.json with {a.samples} samples")


if __name__ == "__main__":
    main()
