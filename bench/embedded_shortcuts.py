"""The embedded data's shortcuts, measured: how much of a view's structure
its labels give away for free.

    python bench/embedded_shortcuts.py [--buildings 12] [--seed 5]

Renders ``--buildings`` buildings with the embedded dataset's settings
(96 px, 10 points of 3 views; a seed the default data does not use) and
prints one JSON object with, per measure, the median over views, the goal
(issue 21) and the ratio to it:

* ``normal_top6``: the share of a view's valid pixels whose surface normal
  (its 8-bit camera-frame triple) is one of the view's six most frequent:
  near 1 when a view is a box room seen from inside;
* ``keypoint_edge_corr``: the Pearson correlation of a view's 2D keypoint
  and 2D edge maps (the same derivative filter read twice is near 1);
* ``negatives_same_building``: the share of the point-matching negatives
  (``data.views``'s rule, on these views' ids) that pair two points of one
  building, so they are not told apart by the scene alone.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
from pathlib import Path

import numpy as np

from taskonomy_tf.data.views import TUPLES
from taskonomy_tf.synth import SynthConfig, generate
from taskonomy_tf.synth.embedded import DEFAULT
from taskonomy_tf.synth.shortcuts import view_shortcuts

# issue 21's goals and the generator-3 figures it measured
GOALS = {"normal_top6": ("<", 0.85), "keypoint_edge_corr": ("<", 0.40),
         "negatives_same_building": (">=", 0.50)}
BEFORE = {"normal_top6": 0.99, "keypoint_edge_corr": 0.56, "negatives_same_building": 0.11}


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--buildings", type=int, default=12)
    p.add_argument("--seed", type=int, default=5)
    a = p.parse_args()
    cfg = SynthConfig(buildings=a.buildings, points=DEFAULT.points, views=DEFAULT.views,
                      size=DEFAULT.size, seed=a.seed, rooms=DEFAULT.rooms)
    out = Path(tempfile.mkdtemp())
    start = time.perf_counter()
    generate(out, cfg, workers=os.cpu_count() or 1, progress=False)
    seconds = time.perf_counter() - start
    top6, corr, index = [], [], []
    for folder in sorted(out.iterdir()):
        for f in sorted((folder / "normal").iterdir()):
            stem = f.name.split("_domain_")[0]  # point_P_view_V
            t, c = view_shortcuts(folder, stem)
            top6.append(t)
            corr.append(c)
            _, point, _, view = stem.split("_")
            index.append({"building": folder.name, "point": int(point), "view": int(view),
                          "info": {}})
    pairs, labels = TUPLES.get("point_match")(index, np.random.default_rng(0))
    negatives = [(i, j) for (i, j), y in zip(pairs, labels) if y[0] == 1]
    same = np.mean([index[i]["building"] == index[j]["building"] for i, j in negatives])
    figures = {"normal_top6": float(np.median(top6)),
               "keypoint_edge_corr": float(np.median(corr)),
               "negatives_same_building": float(same)}
    print(json.dumps({
        "benchmark": "embedded_shortcuts",
        "machine": f"{platform.machine()} {os.cpu_count()} cpu",
        "views": len(top6), "render_seconds": round(seconds, 1),
        "median_over_views": {k: round(v, 3) for k, v in figures.items()},
        "baseline": {"goal": {k: f"{op} {g}" for k, (op, g) in GOALS.items()},
                     "generator_3": BEFORE},
        "ratio_to_goal": {k: round(v / GOALS[k][1], 2) for k, v in figures.items()},
        "ratio_to_generator_3": {k: round(v / BEFORE[k], 2) for k, v in figures.items()},
    }, indent=1))


if __name__ == "__main__":
    main()
