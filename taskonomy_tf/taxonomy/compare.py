"""Agreement between two affinity tables (ours against the published one).

Over the tasks both tables hold (names compared through the catalog, so
``rgb2sfnorm`` meets ``normals``; baselines and the target itself left
out), ``compare_published`` ranks each target's first-order sources by
affinity in each table and compares the rankings (Spearman's rho, top-3
overlap, each beside what two unrelated rankings of that many sources
give), then reads the mean against yardsticks that already know something
(``yardsticks``): the relabelling null, the cluster-only ranking's score,
the clearly separated same-cluster pairs, the rank among cluster-preserving
relabellings and, given the paper's other release, its own agreement as a
ceiling. Also the cluster contrasts of the two (3D / 2D / low-dimensional
/ semantic, the catalog's clusters as the paper groups its tasks; AHP
ratios and the scale-free rank contrasts) and the dictionaries the
task-dictionary program chooses from each, budget by budget.
"""

from __future__ import annotations

import numpy as np

from taskonomy_tf.taxonomy.table import BASELINES, Transfer, TransferTable


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


def best_sources(table: TransferTable) -> dict[str, list[str]]:
    """target -> its best first-order source (every tied one), baselines
    left out, canonical names (``first_order``)."""
    out = {}
    for target, by_source in first_order(table).items():
        top = max(by_source.values())
        out[target] = sorted(s for s, v in by_source.items() if v == top)
    return out


def cluster_means(table: TransferTable) -> dict[tuple[str, str], float]:
    """Mean first-order affinity from each task cluster into each
    (``("3d", "3d")``: 3D sources into 3D targets)."""

    sums: dict[tuple[str, str], list[float]] = {}
    for target, by_source in first_order(table).items():
        for source, value in by_source.items():
            key = (cluster_of(source) or "other", cluster_of(target) or "other")
            sums.setdefault(key, []).append(value)
    return {k: float(np.mean(v)) for k, v in sums.items()}


def cluster_contrasts(table: TransferTable) -> dict[str, float]:
    """How much more a cluster's tasks transfer among themselves than from
    another cluster: for clusters A and B, mean affinity A -> A over mean
    affinity B -> A (key ``"A->A / B->A"``), for every pair present (A
    with at least two tasks). The paper's 16k affinities on z-depth,
    normals, reshading (3D) and edges, 2D keypoints, autoencoding (2D) give
    3D->3D / 2D->3D = 4.6 and 2D->2D / 3D->2D = 38. Also ``SAME_OVER_OTHER``:
    the mean over every transfer within a cluster over the mean over every
    transfer between two clusters (tasks without a cluster left out)."""
    means = cluster_means(table)
    out = {}
    for (a, b), value in sorted(means.items()):
        if a == b and a != "other":
            for (c, d), other in sorted(means.items()):
                if d == a and c != a and c != "other" and other > 0:
                    out[f"{a}->{a} / {c}->{a}"] = value / other
    same, between = [], []
    for target, by_source in first_order(table).items():
        ct = cluster_of(target)
        for source, value in by_source.items():
            cs = cluster_of(source)
            if cs not in (None, "other") and ct not in (None, "other"):
                (same if cs == ct else between).append(value)
    if same and between and np.mean(between) > 0:
        out[SAME_OVER_OTHER] = float(np.mean(same) / np.mean(between))
    return out


SAME_OVER_OTHER = "same cluster / other cluster"


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


def cluster_of(name: str):
    """The catalog cluster of a task (``None`` for a name the catalog lacks)."""
    from taskonomy_tf.tasks import get_task

    try:
        return get_task(name).cluster_name
    except KeyError:
        return None


def compare_published(ours: TransferTable, published: TransferTable, budgets=range(1, 9),
                      max_order: int = 1, k: int = 3, confidence: float = 0.9,
                      time_limit: float = 60.0, reference: TransferTable | None = None,
                      seed: int = 0) -> dict:
    """Ours against the published taxonomy, over the tasks both hold.

    Args:
        reference: another release of the published table (the paper's 1k
            affinities beside its 16k ones): its agreement with ``published``
            on the same targets is the ceiling ours is read against.
        seed: of the sampled relabellings (above 7! of them).

    Returns a dict with ``tasks`` (shared, catalog names), ``targets``
    (per shared target: ``spearman``, ``sources``, ``top1_agrees``,
    ``topk_overlap`` and the null ranges ``spearman_null`` and
    ``overlap_null`` for that many sources), ``mean_spearman`` with its
    yardsticks (``null``: the relabelling null's central range;
    ``independent_null``: independent random rankings per target, for
    comparison; ``cluster_only``; ``within_pairs`` [agree, total];
    ``relabelling_rank``; ``ceiling`` with a reference), ``contrasts`` and
    ``rank_contrasts`` (``ours`` and ``published`` on the shared tasks), and
    ``dictionaries`` (per budget: the supervised tasks of each table's
    taxonomy on the shared tasks, up to ``max_order``).
    """
    from taskonomy_tf.taxonomy import yardsticks as ys
    from taskonomy_tf.taxonomy.bip import TaxonomyError, solve_taxonomy

    a_all, b_all = first_order(ours), first_order(published)
    tasks = sorted((set(a_all) | {s for v in a_all.values() for s in v})
                   & (set(b_all) | {s for v in b_all.values() for s in v}))
    mine, theirs = restrict(ours, tasks), restrict(published, tasks)
    a, b = first_order(mine), first_order(theirs)
    targets = {}
    for target in sorted(set(a) & set(b)):
        shared = ys.shared_sources(a, b, target)
        if not shared:
            continue
        x = np.array([a[target][s] for s in shared])
        y = np.array([b[target][s] for s in shared])
        top = min(k, len(shared))
        ours_top = {shared[i] for i in np.argsort(-x, kind="stable")[:top]}
        their_top = {shared[i] for i in np.argsort(-y, kind="stable")[:top]}
        low, high = null_spearman(len(shared), confidence)
        targets[target] = {
            "spearman": ys.spearman(x, y), "sources": len(shared),
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
    rhos = [v["spearman"] for v in targets.values()]
    result = {
        "tasks": tasks, "targets": targets,
        "mean_spearman": float(np.mean(rhos)) if rhos else None,
        "null": ys.relabelling_null(a, b, confidence, seed) if rhos else None,
        "independent_null": null_mean_spearman([v["sources"] for v in targets.values()],
                                               confidence),
        "cluster_only": ys.cluster_only_score(b, a, cluster_of),
        "within_pairs": ys.within_cluster_pairs(a, b, cluster_of),
        "relabelling_rank": ys.relabelling_rank(a, b, cluster_of, seed) if rhos else None,
        "contrasts": {"ours": cluster_contrasts(mine), "published": cluster_contrasts(theirs)},
        "rank_contrasts": {"ours": ys.rank_contrasts(a, cluster_of),
                           "published": ys.rank_contrasts(b, cluster_of)},
        "dictionaries": dictionaries, "max_order": max_order, "confidence": confidence}
    if reference is not None:
        r = {t: v for t, v in first_order(restrict(reference, tasks)).items() if t in targets}
        result["ceiling"] = {"mean_spearman": ys.mean_spearman(r, b),
                             "within_pairs": ys.within_cluster_pairs(r, b, cluster_of),
                             "cluster_only": ys.cluster_only_score(b, r, cluster_of)}
    return result


def yardstick_summary(result: dict) -> str:
    """One paragraph: ``compare_published``'s mean Spearman read against its
    yardsticks (the report and ``taxonomy compare`` print the same words)."""
    from taskonomy_tf.taxonomy.yardsticks import CLEAR_RATIO

    conf = f"{result['confidence']:.0%}"
    null = result.get("null") or [None, None]
    ind = result.get("independent_null") or [None, None]
    text = (f"Mean Spearman {_num(result['mean_spearman'])} over {len(result['targets'])} "
            f"targets ({len(result['tasks'])} shared tasks). Chance, keeping the table's "
            f"structure (one relabelling of the tasks for the whole table, {conf}): "
            f"{_num(null[0])} to {_num(null[1])} (independent random rankings per target: "
            f"{_num(ind[0])} to {_num(ind[1])}, too narrow for tables whose strong sources "
            f"are shared across targets). A ranking that knows only the clusters (same "
            f"cluster as the target first) scores {_num(result.get('cluster_only'))}")
    ceiling = result.get("ceiling")
    if ceiling:
        text += (f"; the paper's other release scores {_num(ceiling['mean_spearman'])} against "
                 "this one (the ceiling)")
    agree, total = result.get("within_pairs") or (0, 0)
    text += (f". Of the {total} same-cluster source pairs the published table separates "
             f"clearly (ratio above {CLEAR_RATIO:g}), ours orders {agree} the same way"
             + (f" ({agree / total:.0%}; chance: about half)" if total else ""))
    if ceiling and ceiling["within_pairs"][1]:
        a2, t2 = ceiling["within_pairs"]
        text += f"; the other release {a2} of {t2}"
    rank = result.get("relabelling_rank")
    if rank:
        among = f"the {rank['of']}" if rank["exact"] else f"{rank['of']} sampled"
        text += (f". Among {among} relabellings that keep every task in its cluster, ours "
                 f"ranks {rank['rank']:g} "
                 "(a table that resolves only the clusters ranks near the middle)")
    return text + "."


def format_comparison(result: dict) -> str:
    """``compare_published``'s result as Markdown: the yardsticks, then tables."""
    lines = [yardstick_summary(result), "",
             f"Per target, the {result['confidence']:.0%} range of two unrelated rankings of "
             "that many sources:", "",
             "| target | sources | Spearman | null range | top-3 overlap | null mean (range) "
             "| best source agrees |", "|---|---|---|---|---|---|---|"]
    for t, v in result["targets"].items():
        lo, hi = v["spearman_null"]
        o = v["overlap_null"]
        lines.append(f"| {t} | {v['sources']} | {_num(v['spearman'])} | {lo:.2f} - {hi:.2f} "
                     f"| {v['topk_overlap']} of {v['k']} | {o['mean']:.2f} ({o['low']:g} - "
                     f"{o['high']:g}) | {'yes' if v['top1_agrees'] else 'no'} |")
    ours, pub = result["contrasts"]["ours"], result["contrasts"]["published"]
    lines += ["", "| cluster contrast (AHP ratio) | ours | published |", "|---|---|---|"]
    for k in sorted(set(ours) | set(pub)):
        lines.append(f"| {k} | {_num(ours.get(k))} | {_num(pub.get(k))} |")
    ours, pub = result["rank_contrasts"]["ours"], result["rank_contrasts"]["published"]
    lines += ["", "| rank contrast (share of pairs won; 0.5 = none) | ours | published |",
              "|---|---|---|"]
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
