"""LogME speed on 10,000 x 2,048 features (10 classes), against the direct form.

    python bench/estimators.py [--n 10000] [--d 2048] [--classes 10] [--repeats 3]

The figure: ``taskonomy_tf.estimate.logme`` (one SVD, then fixed-point
iterations on singular values). The baseline: the same fixed point written
directly, solving the d x d system A m = beta F^T y (A = alpha I + beta F^T F)
at every iteration for every label column. Both reach the same value (checked).
Prints JSON with medians over ``--repeats`` and the ratio.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time

import numpy as np

from taskonomy_tf.estimate import logme


def direct_logme(f: np.ndarray, labels: np.ndarray) -> float:
    n, d = f.shape
    y = (labels[:, None] == np.unique(labels)[None, :]).astype(np.float64)
    ftf, scores = f.T @ f, []
    eig = np.linalg.eigvalsh(ftf)
    for k in range(y.shape[1]):
        fty = f.T @ y[:, k]
        alpha, beta = 1.0, 1.0
        for _ in range(100):
            a = alpha * np.eye(d) + beta * ftf
            m = beta * np.linalg.solve(a, fty)
            gamma = np.sum(beta * eig / (alpha + beta * eig))
            res2 = np.sum((f @ m - y[:, k]) ** 2)
            new_alpha, new_beta = gamma / (m @ m), (n - gamma) / res2
            done = abs(new_alpha - alpha) / alpha < 1e-3 and abs(new_beta - beta) / beta < 1e-3
            alpha, beta = new_alpha, new_beta
            if done:
                break
        a = alpha * np.eye(d) + beta * ftf
        m = beta * np.linalg.solve(a, fty)
        res2 = np.sum((f @ m - y[:, k]) ** 2)
        logdet = np.linalg.slogdet(a)[1]
        scores.append((n / 2 * np.log(beta) + d / 2 * np.log(alpha) - n / 2 * np.log(2 * np.pi)
                       - beta / 2 * res2 - alpha / 2 * (m @ m) - logdet / 2) / n)
    return float(np.mean(scores))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--n", type=int, default=10_000)
    p.add_argument("--d", type=int, default=2048)
    p.add_argument("--classes", type=int, default=10)
    p.add_argument("--repeats", type=int, default=3)
    a = p.parse_args()
    rng = np.random.default_rng(0)
    labels = rng.integers(0, a.classes, a.n)
    f = rng.normal(size=(a.n, a.d)) + 0.5 * np.eye(a.classes, a.d)[labels]
    ours, base = [], []
    for _ in range(a.repeats):
        t = time.perf_counter()
        v_ours = logme(f, labels)
        ours.append(time.perf_counter() - t)
        t = time.perf_counter()
        v_base = direct_logme(f, labels)
        base.append(time.perf_counter() - t)
    print(json.dumps({
        "benchmark": "logme", "machine": f"{platform.machine()}, {os.cpu_count()} cores",
        "shape": [a.n, a.d], "classes": a.classes,
        "logme_s_median": round(statistics.median(ours), 2),
        "baseline_direct_s_median": round(statistics.median(base), 2),
        "ratio": round(statistics.median(base) / statistics.median(ours), 2),
        "values_agree": bool(abs(v_ours - v_base) < 1e-4 * max(1, abs(v_base))),
        "value": round(v_ours, 6)}, indent=1))


if __name__ == "__main__":
    main()
