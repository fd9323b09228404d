"""Encoding a split with several frozen encoders: one pass per input rule against one per encoder.

    python bench/encode_pass.py --run RUN [--split val] [--repeats 3]

On a finished pipeline run's networks and data (``RUN/models``, the records
of ``RUN/stages/data.json``), times filling an empty feature cache for every
encoder:

* **together** (the figure): ``FeatureCache.features_many``, what the
  transfer grid's encode step and the estimators' ``gather`` run: the
  encoders of one input rule on each batch of one pass over the split;
* **alone** (the baseline): ``FeatureCache.features`` per encoder, each
  its own pass (reading and decoding the split, a traced graph).

The two alternate, ``--repeats`` times each, in one process, each into a
fresh cache folder; the codes are checked equal. Prints one JSON object with
the medians and the ratio.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--run", required=True, help="a finished pipeline run's --out")
    p.add_argument("--split", default="val")
    p.add_argument("--repeats", type=int, default=3)
    a = p.parse_args(argv)

    from taskonomy_tf.console import quiet_tensorflow

    quiet_tensorflow()
    from taskonomy_tf.transfer.cache import FeatureCache
    from taskonomy_tf.transfer.schedule import model_workdirs

    run = Path(a.run)
    data = json.loads((run / "stages" / "data.json").read_text())
    size = json.loads((run / "experiment.json").read_text())["data"]["image_size"]
    workdirs = model_workdirs(run / "models", data["tasks"])
    encoders = [Path(w) / "encoder.keras" for w in workdirs.values()]

    def together(root):
        return [c for c, _ in FeatureCache(root).features_many(encoders, data["records"],
                                                               a.split, size)]

    def alone(root):
        cache = FeatureCache(root)
        return [cache.features(e, data["records"], a.split, size) for e in encoders]

    times: dict[str, list[float]] = {"together": [], "alone": []}
    codes = {}
    for _ in range(a.repeats):
        for name, fn in (("alone", alone), ("together", together)):
            with tempfile.TemporaryDirectory() as root:
                start = time.perf_counter()
                codes[name] = fn(root)
                times[name].append(time.perf_counter() - start)
    same = all(np.array_equal(x, y) for x, y in zip(codes["alone"], codes["together"]))
    med = {k: statistics.median(v) for k, v in times.items()}
    out = {"encoders": len(encoders), "images": int(len(codes["together"][0])),
           "split": a.split, "together_seconds": round(med["together"], 2),
           "alone_seconds": round(med["alone"], 2),
           "speedup": round(med["alone"] / med["together"], 2),
           "runs": {k: [round(t, 2) for t in v] for k, v in times.items()},
           "codes_equal": same, "machine": platform.machine(), "cpus": os.cpu_count()}
    print(json.dumps(out))
    return out


if __name__ == "__main__":
    main()
