"""Synthetic-data rendering speed: views per second per core at 96 (the
embedded dataset's size), 128 and 256 px.

    python bench/synth_speed.py [--views 60] [--repeats 3]

Renders one building with one worker after a warm-up (imports, first
scene), so the figure is the steady per-core rate. Prints JSON with the
median views/s per size and the ratio to the goal (20 views/s at 128 px).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import tempfile
import time

from taskonomy_tf.synth import SynthConfig, generate

GOAL_128 = 20.0  # views/s per core at 128 px (issue: default dataset in about a minute)


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--views", type=int, default=60)
    p.add_argument("--repeats", type=int, default=3)
    a = p.parse_args()
    generate(tempfile.mkdtemp(), SynthConfig(buildings=1, points=2, views=2, size=64),
             progress=False)  # warm-up: imports
    rates = {}
    for size in (96, 128, 256):
        runs = []
        for r in range(a.repeats):
            cfg = SynthConfig(buildings=1, points=a.views // 5, views=5, size=size, seed=r)
            t = time.perf_counter()
            generate(tempfile.mkdtemp(), cfg, workers=1, progress=False)
            runs.append(cfg.points * cfg.views / (time.perf_counter() - t))
        rates[size] = round(statistics.median(runs), 2)
    print(json.dumps({
        "benchmark": "synth_speed",
        "machine": f"{platform.machine()} {os.cpu_count()} cpu, Python {platform.python_version()}",
        "views_per_s_per_core": {f"{k}px": v for k, v in rates.items()},
        "baseline": f"goal {GOAL_128} views/s per core at 128 px",
        "ratio_to_goal_128px": round(rates[128] / GOAL_128, 2),
    }, indent=1))


if __name__ == "__main__":
    main()
