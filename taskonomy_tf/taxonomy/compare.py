"""Agreement between two affinity tables (ours against the published one).

Over the tasks both tables hold (names compared through the catalog, so
``rgb2sfnorm`` meets ``normals``; baselines and the target itself left
out), ``compare_published`` ranks each target's first-order sources by
affinity in each table and compares the rankings (Spearman's rho, top-3
overlap, each beside what two unrelated rankings of that many sources
give), the cluster contrasts of the two (3D / 2D / low-dimensional /
semantic, the catalog's clusters as the paper groups its tasks), and the
dictionaries the task-dictionary program chooses from each, budget by
budget.
"""

from __future__ import annotations

import numpy as np

from taskonomy_tf.taxonomy.table import Transfer, TransferTable

BASELINES = ("self", "pixels", "random", "constant")


def _canonical(name: str) -> str:
    from taskonomy_tf.tasks import get_task

    try:
        return get_task(name).name
    except KeyError:
        return name


def first_order(table: TransferTable) -> dict[str, dict[str, float]]:
    """target -> source -> value, canonical names, baselines left out."""
    out: dict[str, dict[str, float]] = {}
    for r in table.records:
        if r.order == 1 and r.sources[0] not in BASELINES:
            s, t = _canonical(r.sources[0]), _canonical(r.target)
            if s != t:
                out.setdefault(t, {})[s] = r.value
    return out


def cluster_means(table: TransferTable) -> dict[tuple[str, str], float]:
    """Mean first-order affinity from each task cluster into each
    (``("3d", "3d")``: 3D sources into 3D targets)."""
    from taskonomy_tf.tasks import get_task

    def cluster_of(name):
        try:
            return get_task(name).cluster
        except KeyError:
            return None

    sums: dict[tuple[str, str], list[float]] = {}
    for target, by_source in first_order(table).items():
        for source, value in by_source.items():
            cs, ct = cluster_of(source), cluster_of(target)
            key = (cs.value if cs else "other", ct.value if ct else "other")
            sums.setdefault(key, []).append(value)
    return {k: float(np.mean(v)) for k, v in sums.items()}


def cluster_contrasts(table: TransferTable) -> dict[str, float]:
    """How much more a cluster's tasks transfer among themselves than from
    another cluster: for clusters A and B, mean affinity A -> A over mean
    affinity B -> A (key ``"A->A / B->A"``), for every pair present (A
    with at least two tasks). The paper's 16k affinities on z-depth,
    normals, reshading (3D) and edges, 2D keypoints, autoencoding (2D) give
    3D->3D / 2D->3D = 4.6 and 2D->2D / 3D->2D = 38."""
    means = cluster_means(table)
    out = {}
    for (a, b), value in sorted(means.items()):
        if a == b and a != "other":
            for (c, d), other in sorted(means.items()):
                if d == a and c != a and c != "other" and other > 0:
                    out[f"{a}->{a} / {c}->{a}"] = value / other
    return out


def restrict(table: TransferTable, tasks) -> TransferTable:
    """``table`` on catalog names, with only the targets in ``tasks`` and the
    transfers whose sources are all in ``tasks`` or baselines: the part of
    a table that another run over ``tasks`` can be compared with."""
    keep = {_canonical(t) for t in tasks}
    records = []
    for r in table.records:
        target, sources = _canonical(r.target), tuple(_canonical(s) for s in r.sources)
        if target in keep and all(s in keep or s in BASELINES for s in sources):
            records.append(Transfer(sources, target, r.value))
    targets = [t for t in dict.fromkeys(_canonical(t) for t in table.targets)
               if t in keep and any(r.target == t for r in records)]
    return TransferTable(records, targets, table.measure, dict(table.meta))


def null_spearman(n: int, confidence: float = 0.9, draws: int = 20_000, seed: int = 0
                  ) -> tuple[float, float]:
    """The central ``confidence`` range of Spearman's rho between two
    independent random rankings of ``n`` items: exact over all n!
    permutations for n <= 8, else from ``draws`` random ones. A measured
    rho inside it is what chance gives for that many sources."""
    import itertools

    if n <= 8:
        perms = np.array(list(itertools.permutations(range(n))))
    else:
        rng = np.random.default_rng(seed)
        perms = np.array([rng.permutation(n) for _ in range(draws)])
    rho = _rho_of_permutations(perms)
    tail = (1 - confidence) / 2
    low, high = np.quantile(rho, [tail, 1 - tail])
    return float(low), float(high)


def _rho_of_permutations(perms: np.ndarray) -> np.ndarray:
    """Spearman's rho of each row of ``perms`` (k, n) against the identity
    ranking: 1 - 6 sum d^2 / (n (n^2 - 1)), exact without ties."""
    n = perms.shape[1]
    return 1 - 6 * ((perms - np.arange(n)) ** 2).sum(1) / (n * (n * n - 1))


def null_mean_spearman(sizes: list[int], confidence: float = 0.9, draws: int = 4000,
                       seed: int = 0) -> list[float] | None:
    """The central ``confidence`` range of the mean of Spearman's rho over
    targets with ``sizes`` sources each, every ranking unrelated to the
    other (random permutations): far narrower than one target's range."""
    if not sizes:
        return None
    rng = np.random.default_rng(seed)
    total = np.zeros(draws)
    for n in sizes:
        perms = rng.permuted(np.tile(np.arange(n), (draws, 1)), axis=1)
        total += _rho_of_permutations(perms)
    tail = (1 - confidence) / 2
    return [float(v) for v in np.quantile(total / len(sizes), [tail, 1 - tail])]


def null_overlap(n: int, k: int = 3, confidence: float = 0.9) -> dict[str, float]:
    """Top-k overlap of two independent random rankings of ``n`` items: the
    hypergeometric count of one ranking's top k among the other's top k
    (mean and central ``confidence`` range)."""
    from scipy.stats import hypergeom

    k = min(k, n)
    dist = hypergeom(n, k, k)
    tail = (1 - confidence) / 2
    return {"mean": float(dist.mean()), "low": float(dist.ppf(tail)),
            "high": float(dist.ppf(1 - tail))}


def compare_published(ours: TransferTable, published: TransferTable, budgets=range(1, 9),
                      max_order: int = 1, k: int = 3, confidence: float = 0.9,
                      time_limit: float = 60.0) -> dict:
    """Ours against the published taxonomy, over the tasks both hold.

    Returns a dict with ``tasks`` (shared, catalog names), ``targets``
    (per shared target: ``spearman``, ``sources``, ``top1_agrees``,
    ``topk_overlap`` and the null ranges ``spearman_null`` and
    ``overlap_null`` for that many sources), ``contrasts`` (``ours`` and
    ``published``: ``cluster_contrasts`` on the shared tasks), and
    ``dictionaries`` (per budget: the supervised tasks of each table's
    taxonomy on the shared tasks, up to ``max_order``).
    """
    from scipy.stats import spearmanr

    from taskonomy_tf.taxonomy.bip import TaxonomyError, solve_taxonomy

    a_all, b_all = first_order(ours), first_order(published)
    tasks = sorted((set(a_all) | {s for v in a_all.values() for s in v})
                   & (set(b_all) | {s for v in b_all.values() for s in v}))
    mine, theirs = restrict(ours, tasks), restrict(published, tasks)
    a, b = first_order(mine), first_order(theirs)
    targets = {}
    for target in sorted(set(a) & set(b)):
        shared = sorted(set(a[target]) & set(b[target]))
        if len(shared) < 3:
            continue
        x = np.array([a[target][s] for s in shared])
        y = np.array([b[target][s] for s in shared])
        top = min(k, len(shared))
        ours_top = {shared[i] for i in np.argsort(-x, kind="stable")[:top]}
        their_top = {shared[i] for i in np.argsort(-y, kind="stable")[:top]}
        low, high = null_spearman(len(shared), confidence)
        targets[target] = {
            "spearman": float(spearmanr(x, y).statistic), "sources": len(shared),
            "top1_agrees": shared[int(np.argmax(x))] == shared[int(np.argmax(y))],
            "topk_overlap": len(ours_top & their_top), "k": top,
            "spearman_null": [low, high], "overlap_null": null_overlap(len(shared), top,
                                                                       confidence)}
    dictionaries = {}
    for budget in budgets:
        if budget > len(tasks):
            break
        row = {}
        for name, table in (("ours", mine), ("published", theirs)):
            try:
                row[name] = sorted(solve_taxonomy(table, float(budget), max_order,
                                                  time_limit=time_limit).roots)
            except TaxonomyError as exc:
                row[name] = f"no dictionary ({exc})"
        dictionaries[f"{budget:g}"] = row
    rhos = [v["spearman"] for v in targets.values() if np.isfinite(v["spearman"])]
    return {"tasks": tasks, "targets": targets,
            "mean_spearman": float(np.mean(rhos)) if rhos else None,
            "mean_spearman_null": null_mean_spearman([v["sources"] for v in targets.values()],
                                                     confidence),
            "contrasts": {"ours": cluster_contrasts(mine), "published": cluster_contrasts(theirs)},
            "dictionaries": dictionaries, "max_order": max_order, "confidence": confidence}


def format_comparison(result: dict) -> str:
    """``compare_published``'s result as Markdown tables."""
    null = result.get("mean_spearman_null") or [float("nan")] * 2
    lines = [f"{len(result['tasks'])} shared tasks; mean Spearman "
             f"{_num(result['mean_spearman'])} over {len(result['targets'])} targets (unrelated "
             f"rankings: {_num(null[0])} - {_num(null[1])}; per target below, the "
             f"{result['confidence']:.0%} range of two unrelated rankings of that many sources)",
             "",
             "| target | sources | Spearman | null range | top-3 overlap | null mean (range) "
             "| best source agrees |", "|---|---|---|---|---|---|---|"]
    for t, v in result["targets"].items():
        lo, hi = v["spearman_null"]
        o = v["overlap_null"]
        lines.append(f"| {t} | {v['sources']} | {_num(v['spearman'])} | {lo:.2f} - {hi:.2f} "
                     f"| {v['topk_overlap']} of {v['k']} | {o['mean']:.2f} ({o['low']:g} - "
                     f"{o['high']:g}) | {'yes' if v['top1_agrees'] else 'no'} |")
    ours, pub = result["contrasts"]["ours"], result["contrasts"]["published"]
    lines += ["", "| cluster contrast | ours | published |", "|---|---|---|"]
    for k in sorted(set(ours) | set(pub)):
        lines.append(f"| {k} | {_num(ours.get(k))} | {_num(pub.get(k))} |")
    lines += ["", f"| budget | our dictionary | published (same tasks, max order "
                  f"{result['max_order']}) |", "|---|---|---|"]
    for b, row in result["dictionaries"].items():
        lines.append(f"| {b} | {_names(row['ours'])} | {_names(row['published'])} |")
    return "\n".join(lines)


def _num(v) -> str:
    return "–" if v is None or not np.isfinite(v) else f"{v:.2f}"


def _names(v) -> str:
    return v if isinstance(v, str) else ", ".join(v)
