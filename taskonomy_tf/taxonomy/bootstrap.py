"""Uncertainty of affinities and of the chosen dictionary: over the groups the
test images come in, and readout retraining.

Test images are not independent: Taskonomy's views come in buildings
(several points, several views each), a dataset card's samples in its
``group`` column. Each resample draws the groups with replacement and takes
every test image of each drawn group (a cluster bootstrap; the same draw
for every target whose images cover the same groups, as a grid's do); ids
without a group resample one by one. Resampling views as if independent
gave intervals too narrow when buildings differ (the per-building test in
``tests/taxonomy``). It also draws the readout replicate seeds with
replacement (the same draw for every target:
replicate r of every target is trained with the same seed); with several
sets of task networks (``networks.seeds``, replicates ``"k:r"``), it first
draws network sets with replacement, then the readouts of each drawn set,
so the intervals cover retraining the networks too. Per-image
losses are averaged over the drawn replicates, then win rates, AHP and the
integer program are recomputed. The result gives every affinity and every
cluster contrast a percentile interval, and, per budget, how often each
task is a root and each transfer is chosen across resamples: a choice made
in nearly every resample is stable; one made in half is a coin toss
between near-equal options. It also counts, per target, how often each
source is the best first-order source, and per budget how often each whole
dictionary is chosen: how sure the grid itself is of its best source and of
its dictionary, the yardstick for any cheaper estimate of them. With one
replicate (or identical replicates) only the images vary.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from taskonomy_tf.errors import InputError
from taskonomy_tf.taxonomy.bip import TaxonomyError, build_instance, solve_instance
from taskonomy_tf.taxonomy.compare import best_sources, cluster_contrasts
from taskonomy_tf.taxonomy.losses import network_of, tables_from_matrices


@dataclasses.dataclass
class BootstrapResult:
    """Attributes:
        affinity: (sources, target) -> {"value", "low", "high"} (full data,
            and the percentile interval).
        contrasts: "A->A / B->A" -> {"value", "low", "high"} (see
            ``compare.cluster_contrasts``).
        roots: budget -> task -> share of resamples where it is supervised.
        transfers: budget -> "target<-a+b" -> share of resamples choosing it.
        solved: budget -> share of resamples with a feasible, optimal program.
        replicates: readout replicates resampled (1: images only).
        networks: sets of task networks resampled (1: retraining the
            networks is not covered).
        groups: how many groups (or images) were resampled, at most, per target.
        unit: ``groups`` (test images resampled in their groups) or ``images``.
        best_source: target -> source -> share of resamples in which it is
            the target's best first-order source (``compare.best_sources``:
            baselines aside; a tie counts for every tied source).
        dictionaries: budget -> ``dictionary_key`` ("a+b": the supervised
            tasks, sorted) -> share of resamples choosing exactly that dictionary.
    """

    resamples: int
    confidence: float
    affinity: dict
    roots: dict
    transfers: dict
    solved: dict
    contrasts: dict = dataclasses.field(default_factory=dict)
    replicates: int = 1
    groups: int = 0
    unit: str = "groups"
    networks: int = 1
    best_source: dict = dataclasses.field(default_factory=dict)
    dictionaries: dict = dataclasses.field(default_factory=dict)

    def to_json(self) -> dict:
        return {"schema_version": 4, "resamples": self.resamples, "confidence": self.confidence,
                "replicates": self.replicates, "networks": self.networks,
                "groups": self.groups, "unit": self.unit,
                "affinity": [{"sources": list(s), "target": t, **v}
                             for (s, t), v in self.affinity.items()],
                "contrasts": self.contrasts,
                "roots": {str(b): v for b, v in self.roots.items()},
                "transfers": {str(b): v for b, v in self.transfers.items()},
                "solved": {str(b): v for b, v in self.solved.items()},
                "best_source": self.best_source,
                "dictionaries": {str(b): v for b, v in self.dictionaries.items()}}

    def interval(self, sources, target) -> tuple[float, float] | None:
        v = self.affinity.get((tuple(sources), target))
        return (v["low"], v["high"]) if v else None


def _solve_counts(table, budgets, max_order, counts, solved, unused, allow_random):
    inst = build_instance(table, max_order, unused=unused, allow_random=allow_random)
    for b in budgets:
        try:
            s = solve_instance(inst, b, max_order=max_order)
        except TaxonomyError:
            continue
        solved[b] += 1
        key = dictionary_key(s.roots)
        counts["dictionaries"][b][key] = counts["dictionaries"][b].get(key, 0) + 1
        for r in s.roots:
            counts["roots"][b][r] = counts["roots"][b].get(r, 0) + 1
        for t, src in s.choice.items():
            if src != ["<root>"]:
                key = f"{t}<-{'+'.join(src)}"
                counts["transfers"][b][key] = counts["transfers"][b].get(key, 0) + 1


def dictionary_key(roots) -> str:
    """A dictionary's key in ``BootstrapResult.dictionaries``: its
    supervised tasks, sorted, joined by ``+``."""
    return "+".join(sorted(roots))


def group_of_id(image_id: str) -> str:
    """The group an image id belongs to: its building (``building/point/view``,
    a dataset card's ``group/id``; a view tuple ``a+b``: its first view's);
    an id without ``/`` is a group of its own."""
    return image_id.split("+", 1)[0].split("/", 1)[0]


def _group_members(ids, group_of) -> tuple[tuple[str, ...], list[np.ndarray]]:
    """(groups in order of first appearance, each group's image indices)."""
    members: dict[str, list[int]] = {}
    for k, i in enumerate(ids):
        members.setdefault(group_of(i) if group_of else i, []).append(k)
    return tuple(members), [np.array(v) for v in members.values()]


def _as_replicates(m: np.ndarray) -> np.ndarray:
    m = np.asarray(m, np.float64)
    return m[:, None, :] if m.ndim == 2 else m


def _replicate_layout(names: tuple) -> list[np.ndarray]:
    """The replicate columns per network set: seeds ``"k:r"`` grouped by k
    (in order of first appearance); other seeds are one set."""
    if not all(isinstance(n, str) and network_of(n) for n in names):
        return [np.arange(len(names))]
    nets: dict[str, list[int]] = {}
    for i, n in enumerate(names):
        nets.setdefault(network_of(n), []).append(i)
    return [np.array(v) for v in nets.values()]


def _draw_replicates(layout: list[np.ndarray], rng) -> np.ndarray:
    """A two-stage draw: network sets with replacement, then each drawn
    set's readout replicates with replacement (one set: the readouts only)."""
    if len(layout) == 1:
        return layout[0][rng.integers(0, len(layout[0]), len(layout[0]))]
    nets = rng.integers(0, len(layout), len(layout))
    return np.concatenate([layout[k][rng.integers(0, len(layout[k]), len(layout[k]))]
                           for k in nets])


def bootstrap(matrices: dict[str, tuple], budgets=(), max_order: int = 1,
              resamples: int = 200, confidence: float = 0.95, seed: int = 0,
              unused=(), allow_random: bool = False,
              group_of=group_of_id, priors: dict | None = None) -> BootstrapResult:
    """Bootstraps a grid's losses over groups of test images and readout replicates.

    Args:
        matrices: target -> (candidates, image ids, seeds, (n, R, images)
            losses), as ``losses.loss_matrices`` returns (or, without
            replicates, (candidates, image ids, (n, images) losses)).
        budgets: budgets to re-solve the dictionary at on every resample.
        resamples: number of bootstrap resamples.
        confidence: coverage of the percentile intervals.
        unused: tasks the program may not use as sources (as in ``solve_taxonomy``).
        allow_random: as in ``solve_taxonomy``.
        group_of: image id -> its group (default ``group_of_id``: the
            building); ``None`` resamples images one by one.
        priors: an estimator's tournament per target that completes a
            pre-filtered grid's affinities (``losses.tables_from_matrices``),
            held fixed over the resamples.
    """
    if resamples < 2:
        raise InputError(f"resamples must be >= 2, got {resamples}")
    rng = np.random.default_rng(seed)
    rng_replicates = np.random.default_rng([seed, 1])  # its own stream: see below
    mats = {t: (v[0], v[1], _as_replicates(v[-1])) for t, v in matrices.items()}
    seed_names = {t: tuple(v[2]) if len(v) == 4 else tuple(range(mats[t][2].shape[1]))
                  for t, v in matrices.items()}
    full = tables_from_matrices({t: (c, m) for t, (c, _, m) in mats.items()},
                                priors=priors)["affinities"]
    values: dict = {(r.sources, r.target): [] for r in full.records}
    contrast_full = cluster_contrasts(full)
    contrast_values: dict = {k: [] for k in contrast_full}
    counts = {"roots": {b: {} for b in budgets}, "transfers": {b: {} for b in budgets},
              "dictionaries": {b: {} for b in budgets}}
    best: dict = {}  # target -> source -> resamples in which it is the best
    solved = {b: 0 for b in budgets}
    replicates = {m.shape[1] for _, _, m in mats.values()}
    layouts = {names: _replicate_layout(names) for names in seed_names.values()}
    grouped = {tuple(ids): _group_members(ids, group_of) for _, ids, _ in mats.values()}
    for _ in range(resamples):
        group_draws: dict = {}  # targets whose images cover the same groups share the draw
        image_draws: dict = {}
        for ids, (groups, members) in grouped.items():
            if groups not in group_draws:
                group_draws[groups] = rng.integers(0, len(groups), len(groups))
            image_draws[ids] = np.concatenate([members[g] for g in group_draws[groups]])
        # from a stream of their own: with identical replicates (or one), every
        # resample is exactly the images-only resample of the same seed
        seed_draws = {names: _draw_replicates(layout, rng_replicates)
                      for names, layout in sorted(layouts.items())}
        drawn = {}
        for t, (c, ids, m) in mats.items():
            sub = m[:, seed_draws[seed_names[t]]][:, :, image_draws[tuple(ids)]]
            drawn[t] = (c, sub.mean(1))
        table = tables_from_matrices(drawn, priors=priors)["affinities"]
        for r in table.records:
            values[(r.sources, r.target)].append(r.value)
        for target, tied in best_sources(table).items():
            counted = best.setdefault(target, {})
            for source in tied:
                counted[source] = counted.get(source, 0) + 1
        for k, v in cluster_contrasts(table).items():
            contrast_values.setdefault(k, []).append(v)
        if budgets:
            _solve_counts(table, budgets, max_order, counts, solved, unused, allow_random)
    tail = (1 - confidence) / 2 * 100

    def interval(value, v):
        return {"value": value, "low": float(np.percentile(v, tail)),
                "high": float(np.percentile(v, 100 - tail))}

    affinity = {k: interval(full.get(k[0], k[1]), v) for k, v in values.items()}
    contrasts = {k: interval(contrast_full[k], v) for k, v in contrast_values.items()
                 if k in contrast_full and v}

    def share(d):
        return {b: dict(sorted(((k, n / resamples) for k, n in v.items()),
                               key=lambda kv: -kv[1])) for b, v in d.items()}

    return BootstrapResult(resamples, confidence, affinity, share(counts["roots"]),
                           share(counts["transfers"]),
                           {b: n / resamples for b, n in solved.items()}, contrasts,
                           max(replicates), max(len(g) for g, _ in grouped.values()),
                           "groups" if group_of else "images",
                           max(len(layout) for layout in layouts.values()),
                           share(best),
                           share(counts["dictionaries"]))
