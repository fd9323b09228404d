"""What validating a network during training costs: the pipeline's 8 validations against one.

    python bench/validation_cost.py [--task depth_zbuffer] [--steps 460] [--validations 8]
        [--repeats 2] [--seed 0]

Trains the same network (embedded data, the experiment's defaults) with the
pipeline's epochs, alternately validated ``--validations`` times (``networks.
validations``: the best state kept, docs/training.md) and once at the end
(``networks.validations=0``, the pipeline before December 6), each in a fresh
process as the train command runs it. Prints JSON: per mode the wall times of
the whole command and the training seconds (``metrics.json``: from the
callbacks' start to the last epoch's end), their medians, the ratio of the
medians, and whether both kept the same state (the same trajectory: the kept
network is the last one's when the validation loss still falls at the end).
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from taskonomy_tf.config import NetworksConfig
from taskonomy_tf.pipeline.stages import validation_plan


def train_once(task: str, steps: int, validations: int, seed: int, workdir: Path) -> dict:
    plan = validation_plan(NetworksConfig(steps=steps, validations=validations))
    cmd = [sys.executable, "-m", "taskonomy_tf.train", "--task", task, "--workdir", str(workdir),
           "--steps", str(steps), "--seed", str(seed), "--set",
           *(f"{k}={v}" for k, v in plan.items()), "tensorboard=false", "verbose=0"]
    t0 = time.perf_counter()
    subprocess.run(cmd, check=True, capture_output=True)
    wall = time.perf_counter() - t0
    m = json.loads((workdir / "metrics.json").read_text())
    return {"wall_s": round(wall, 2), "train_s": m["epochs"][-1]["seconds"],
            "kept_step": m["final"].get("step", m["epochs"][-1]["step"]),
            "val_loss": m["final"]["val_loss"]}


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--task", default="depth_zbuffer")
    p.add_argument("--steps", type=int, default=460)
    p.add_argument("--validations", type=int, default=8)
    p.add_argument("--repeats", type=int, default=2)
    p.add_argument("--seed", type=int, default=0)
    a = p.parse_args(argv)
    modes = {"validated": a.validations, "once": 0}
    runs: dict[str, list[dict]] = {m: [] for m in modes}
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(a.repeats):
            for mode, n in modes.items():
                runs[mode].append(train_once(a.task, a.steps, n, a.seed,
                                             Path(tmp) / f"{mode}-{r}"))
    med = {m: {k: statistics.median(x[k] for x in v) for k in ("wall_s", "train_s")}
           for m, v in runs.items()}
    out = {"task": a.task, "steps": a.steps, "validations": a.validations,
           "machine": platform.machine(), "runs": runs, "median": med,
           "train_ratio": round(med["validated"]["train_s"] / med["once"]["train_s"], 3),
           "wall_ratio": round(med["validated"]["wall_s"] / med["once"]["wall_s"], 3),
           "same_kept_network": all(x["val_loss"] == runs["once"][0]["val_loss"]
                                    for v in runs.values() for x in v)}
    print(json.dumps(out, indent=1))
    return out


if __name__ == "__main__":
    main()
