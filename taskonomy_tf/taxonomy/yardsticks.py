"""Yardsticks for an agreement between two affinity tables that already know
something: what an informed trivial guess scores, and what chance gives when
the tables keep their structure.

Both tables are ``target -> source -> value`` (first order, the same task
names, ``compare.first_order``). The agreement measured is the mean over
targets of Spearman's rho between the two rankings of each target's sources
(``mean_spearman``). Beside it:

* ``relabelling_null``: the same mean after relabelling our tasks with one
  permutation for the whole table, sources and targets alike (Mantel's
  permutation test for two matrices). A strong source stays strong for
  every target under a relabelling, so this null keeps the correlation
  between targets that an independent random ranking per target ignores
  (it is several times wider than that one for a real table). Tasks are
  permuted only among tasks of the same role (target in both tables, or
  source only), so every relabelled table has the same shape.
* ``cluster_only_score``: a ranking that knows only the task clusters (same
  cluster as the target first, every other source tied): what the coarsest
  informed guess already scores against the reference.
* ``within_cluster_pairs``: pairs of sources of one cluster that the
  reference separates clearly (ratio above ``CLEAR_RATIO``), and how many
  of them our table orders the same way: the finer structure a cluster
  ranking cannot give.
* ``relabelling_rank``: where our labelling's mean ranks among the
  relabellings that keep every task in its cluster: a table that resolves
  only the clusters ranks near the middle.
* ``rank_contrasts``: a cluster contrast that does not depend on the AHP
  scale: the share of (target, in-cluster source, other-cluster source)
  triples where the in-cluster source has the higher value (0.5: none).

numpy and scipy only.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable

import numpy as np
from scipy.stats import rankdata

# A pair of sources "clearly separated" by the reference: one's affinity at
# least 1.2 times the other's (the threshold of the resolution audit, issue 21).
CLEAR_RATIO = 1.2
EXACT_LIMIT = 5040  # enumerate every permutation up to 7!; sample above
DRAWS = 2000  # sampled relabellings above EXACT_LIMIT

Table = dict[str, dict[str, float]]


def spearman(x: np.ndarray, y: np.ndarray) -> float:
    """Spearman's rho with average ranks for ties; 0 when either ranking is
    constant (it carries no order to agree with)."""
    rx, ry = rankdata(x), rankdata(y)
    sx, sy = rx.std(), ry.std()
    if sx == 0 or sy == 0:
        return 0.0
    return float(np.mean((rx - rx.mean()) * (ry - ry.mean())) / (sx * sy))


def shared_sources(a: Table, b: Table, target: str, minimum: int = 3) -> list[str] | None:
    """Sources of ``target`` in both tables, sorted; ``None`` under ``minimum``."""
    if target not in a or target not in b:
        return None
    shared = sorted(set(a[target]) & set(b[target]) - {target})
    return shared if len(shared) >= minimum else None


def per_target_spearman(a: Table, b: Table) -> dict[str, float]:
    """target -> rho between the two rankings of its shared sources."""
    out = {}
    for t in sorted(set(a) & set(b)):
        shared = shared_sources(a, b, t)
        if shared:
            out[t] = spearman(np.array([a[t][s] for s in shared]),
                              np.array([b[t][s] for s in shared]))
    return out


def mean_spearman(a: Table, b: Table) -> float | None:
    rhos = list(per_target_spearman(a, b).values())
    return float(np.mean(rhos)) if rhos else None


def relabel(a: Table, mapping: dict[str, str]) -> Table:
    """``a`` with every task renamed by ``mapping`` (sources and targets)."""
    return {mapping[t]: {mapping[s]: v for s, v in row.items()} for t, row in a.items()}


def _matrices(a: Table, b: Table) -> tuple[list[str], np.ndarray, np.ndarray]:
    """(tasks, A, B): ``A[i, j]`` = a[task i][task j] (target row, source
    column), NaN where absent and on the diagonal; ``B`` likewise from ``b``
    on ``a``'s tasks."""
    tasks = sorted(set(a) | {s for row in a.values() for s in row})
    at = {t: i for i, t in enumerate(tasks)}
    mats = np.full((2, len(tasks), len(tasks)), np.nan)
    for m, table in enumerate((a, b)):
        for t, row in table.items():
            for s, v in row.items():
                if t in at and s in at and s != t:
                    mats[m, at[t], at[s]] = v
    return tasks, mats[0], mats[1]


def _row_spearman(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Spearman's rho of each row of x and y (D, n), over the entries finite
    in both (average ranks for ties; 0 for a constant ranking; NaN for a
    row with under 3 such entries)."""
    both = np.isfinite(x) & np.isfinite(y)
    x, y = np.where(both, x, np.nan), np.where(both, y, np.nan)
    ok = both.sum(1) >= 3
    out = np.full(len(x), np.nan)
    if ok.any():
        rx = rankdata(x[ok], axis=1, nan_policy="omit")
        ry = rankdata(y[ok], axis=1, nan_policy="omit")
        dx = rx - np.nanmean(rx, axis=1, keepdims=True)
        dy = ry - np.nanmean(ry, axis=1, keepdims=True)
        sx, sy = np.sqrt(np.nanmean(dx * dx, 1)), np.sqrt(np.nanmean(dy * dy, 1))
        cov = np.nanmean(dx * dy, 1)
        out[ok] = np.where((sx > 0) & (sy > 0), cov / np.maximum(sx * sy, 1e-300), 0.0)
    return out


def _groups(a: Table, b: Table, tasks: list[str], key: Callable[[str], object]
            ) -> list[list[int]]:
    by: dict = {}
    for i, t in enumerate(tasks):
        by.setdefault((t in a and t in b, key(t)), []).append(i)
    return list(by.values())


def _permutations(groups: list[list[int]], n: int, seed: int) -> tuple[np.ndarray, bool]:
    """(D, n) relabellings p (task i becomes task p[i]) within the groups,
    the identity first: all of them up to ``EXACT_LIMIT``, else ``DRAWS``
    random ones; and whether that is all of them."""
    count = math.prod(math.factorial(len(g)) for g in groups)
    flat = [i for g in groups for i in g]
    if count <= EXACT_LIMIT:
        rows = [list(itertools.chain(*combo)) for combo in
                itertools.product(*(itertools.permutations(g) for g in groups))]
    else:
        rng = np.random.default_rng(seed)
        rows = [flat] + [list(itertools.chain(*(rng.permutation(g) for g in groups)))
                         for _ in range(DRAWS - 1)]
    perms = np.empty((len(rows), n), np.int64)
    perms[:, flat] = np.array(rows)
    return perms, count <= EXACT_LIMIT


def relabelling_scores(a: Table, b: Table, key: Callable[[str], object] = lambda t: 0,
                       seed: int = 0) -> tuple[np.ndarray, bool]:
    """Mean Spearman against ``b`` of every relabelling of ``a`` within the
    groups of ``key`` (and of role): ((D,) float64, the identity first, NaN
    where no target has 3 shared sources; whether all were enumerated).
    The same numbers as ``mean_spearman(relabel(a, mapping), b)`` for each
    mapping, computed for all relabellings at once."""
    tasks, A, B = _matrices(a, b)
    perms, exact = _permutations(_groups(a, b, tasks, key), len(tasks), seed)
    inverse = np.argsort(perms, axis=1)  # relabelled row u, column v = A[inv u, inv v]
    total, count = np.zeros(len(perms)), np.zeros(len(perms))
    for u in range(len(tasks)):
        if not np.isfinite(B[u]).any():
            continue
        x = A[inverse[:, u][:, None], inverse]
        rho = _row_spearman(x, np.broadcast_to(B[u], x.shape))
        total += np.nan_to_num(rho)
        count += np.isfinite(rho)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(count > 0, total / count, np.nan), exact


def relabelling_null(a: Table, b: Table, confidence: float = 0.9, seed: int = 0
                     ) -> list[float] | None:
    """The central ``confidence`` range of the mean Spearman over relabellings
    of all tasks (within their role): what a table of the same structure
    but unrelated task identities scores."""
    scores, _ = relabelling_scores(a, b, seed=seed)
    scores = scores[np.isfinite(scores)]
    if not len(scores):
        return None
    tail = (1 - confidence) / 2
    return [float(v) for v in np.quantile(scores, [tail, 1 - tail])]


def relabelling_rank(a: Table, b: Table, cluster_of: Callable[[str], object], seed: int = 0
                     ) -> dict | None:
    """Rank of our labelling's mean Spearman among the relabellings that keep
    every task in its cluster (1 = best; the mid-rank among ties, so a table
    that the relabellings leave unchanged, one that knows only the clusters,
    ranks in the middle): ``{"rank", "of", "exact"}``."""
    scores, exact = relabelling_scores(a, b, cluster_of, seed)
    if not np.isfinite(scores[0]):
        return None
    finite = scores[np.isfinite(scores)]
    above = np.sum(finite > scores[0] + 1e-12)
    tied = np.sum(np.abs(finite - scores[0]) <= 1e-12)  # ours included
    return {"rank": float(1 + above + (tied - 1) / 2), "of": int(len(finite)),
            "exact": bool(exact)}


def cluster_only_score(b: Table, a: Table, cluster_of: Callable[[str], object]) -> float | None:
    """Mean Spearman against ``b`` of the ranking "same cluster as the target
    first, the rest tied", over the targets and sources ``a`` and ``b``
    share (the sets ``mean_spearman`` uses)."""
    rhos = []
    for t in sorted(set(a) & set(b)):
        shared = shared_sources(a, b, t)
        if shared:
            guess = np.array([float(cluster_of(s) == cluster_of(t)) for s in shared])
            rhos.append(spearman(guess, np.array([b[t][s] for s in shared])))
    return float(np.mean(rhos)) if rhos else None


def within_cluster_pairs(a: Table, b: Table, cluster_of: Callable[[str], object],
                         ratio: float = CLEAR_RATIO) -> list[int]:
    """``[agree, total]``: pairs of same-cluster sources of a target that ``b``
    separates clearly (the larger value at least ``ratio`` times the
    smaller, both positive), and how many ``a`` orders the same way (a tie
    in ``a`` does not agree)."""
    agree = total = 0
    for t in sorted(set(a) & set(b)):
        shared = shared_sources(a, b, t, minimum=2) or []
        for s1, s2 in itertools.combinations(shared, 2):
            if cluster_of(s1) != cluster_of(s2):
                continue
            hi, lo = max(b[t][s1], b[t][s2]), min(b[t][s1], b[t][s2])
            if lo <= 0 or hi < ratio * lo:
                continue
            total += 1
            agree += int(np.sign(a[t][s1] - a[t][s2]) == np.sign(b[t][s1] - b[t][s2]))
    return [agree, total]


def rank_contrasts(a: Table, cluster_of: Callable[[str], object]) -> dict[str, float]:
    """``"A->A > B->A"`` -> the share of (target in A, source in A, source in
    B) triples where the A source has the higher value (ties count half):
    0.5 means cluster A's tasks are no better sources for each other than
    B's; independent of any monotone rescaling of the values."""
    wins: dict[str, list[float]] = {}
    for t, row in a.items():
        ct = cluster_of(t)
        inside = [v for s, v in row.items() if s != t and cluster_of(s) == ct]
        if not inside:
            continue
        for cb in sorted({cluster_of(s) for s in row} - {ct}, key=str):
            outside = [v for s, v in row.items() if cluster_of(s) == cb]
            x, y = np.array(inside)[:, None], np.array(outside)[None, :]
            share = (x > y) + 0.5 * (x == y)
            wins.setdefault(f"{_name(ct)}->{_name(ct)} > {_name(cb)}->{_name(ct)}",
                            []).extend(share.ravel().tolist())
    return {k: float(np.mean(v)) for k, v in sorted(wins.items())}


def _name(cluster) -> str:
    return getattr(cluster, "value", None) or str(cluster)
