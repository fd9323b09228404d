"""How ``solve`` time grows with the number of tasks and the transfer order.

    python bench/solver_scaling.py [--sizes 10,20,40,70,100] [--orders 1,2,3] [--seeds 3]

Random instances shaped like Taskonomy's: every task is a target; first-order
transfers from every other task; orders 2 and 3 from all pairs / triples of
each target's top-5 first-order sources (the paper's beam). Values per target
are AHP-like: Dirichlet weights summing to 1 with ``self`` included. The
budget is a quarter of the tasks. Prints JSON: median seconds per solve for
each (tasks, order), the number of candidates, and the log-log slope of time
against tasks per order (the growth exponent).
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import platform
import statistics
import time

import numpy as np

from taskonomy_tf.taxonomy import Transfer, TransferTable, solve_taxonomy


def instance(n: int, max_order: int, seed: int) -> TransferTable:
    rng = np.random.default_rng(seed)
    tasks = [f"task{i:03d}" for i in range(n)]
    quality = rng.uniform(0.2, 1.0, n)  # some tasks are better sources
    records = []
    for t in tasks:
        others = [s for s in tasks if s != t]
        first = {s: quality[tasks.index(s)] * rng.uniform(0.5, 1.5) for s in others}
        top = sorted(first, key=first.get, reverse=True)[:5]
        cands = [(s,) for s in others]
        for k in range(2, max_order + 1):
            cands += list(itertools.combinations(top, k))
        raw = np.array([np.mean([first[s] for s in c]) * (1 + 0.1 * len(c)) for c in cands])
        w = rng.dirichlet(raw * 20 + 0.1)
        self_w = rng.uniform(0.05, 0.2)
        records.append(Transfer(("self",), t, float(self_w)))
        records += [Transfer(c, t, float(v * (1 - self_w))) for c, v in zip(cands, w)]
    return TransferTable(records, tasks)


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--sizes", default="10,20,40,70,100")
    p.add_argument("--orders", default="1,2,3")
    p.add_argument("--seeds", type=int, default=3)
    a = p.parse_args()
    sizes = [int(s) for s in a.sizes.split(",")]
    rows = []
    for order in (int(o) for o in a.orders.split(",")):
        for n in sizes:
            times, status, cands = [], set(), 0
            for seed in range(a.seeds):
                table = instance(n, order, seed)
                t = time.perf_counter()
                s = solve_taxonomy(table, budget=max(1, n // 4), max_order=order)
                times.append(time.perf_counter() - t)
                status.add(s.status)
                cands = s.candidates
            rows.append({"tasks": n, "max_order": order, "candidates_after_pruning": cands,
                         "median_s": round(statistics.median(times), 4),
                         "max_s": round(max(times), 4), "status": sorted(status)})
    slopes = {}
    for order in sorted({r["max_order"] for r in rows}):
        pts = [(r["tasks"], r["median_s"]) for r in rows if r["max_order"] == order]
        x, y = np.log([p[0] for p in pts]), np.log([max(p[1], 1e-4) for p in pts])
        slopes[order] = round(float(np.polyfit(x, y, 1)[0]), 2)
    print(json.dumps({"benchmark": "solver_scaling",
                      "machine": f"{platform.machine()} {os.cpu_count()} cpu, "
                                 f"Python {platform.python_version()}",
                      "solver": "OR-Tools SCIP, relative gap 0",
                      "rows": rows, "time_exponent_vs_tasks": slopes}, indent=1))


if __name__ == "__main__":
    main()
