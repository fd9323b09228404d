"""Per-image losses table -> affinities, Quality and Gain files.

The transfer step writes one tidy CSV row per (candidate, test image,
replicate seed)::

    candidate,sources,target,image,seed,loss
    transfer,normals+reshading,depth_zbuffer,bldg/12/3,0,0.0412
    transfer,normals+reshading,depth_zbuffer,bldg/12/3,1,0.0409
    self,self,depth_zbuffer,bldg/12/3,,0.0300
    pixels,pixels,depth_zbuffer,bldg/12/3,0,0.0833

``sources`` joins the source names with ``+``; the baselines use ``self``
(the target's own network), ``pixels``, ``random`` and ``constant`` (the
best input-independent prediction). ``seed`` names the readout replicate;
candidates that are not retrained (``self``, ``constant``) leave it empty,
and a table without the column has one replicate. A run that trains
several sets of task networks (``networks.seeds``) writes ``k:r`` (readout
seed r on network set k) and ``k`` for ``self`` and ``constant``
(``merge_network_replicates``). Per-image losses are averaged over a
candidate's replicates before win rates. For each target,
the candidates' win rates on the shared test images give (reference
sections 5 and 7): affinities (AHP over every candidate except ``pixels``
and ``constant``, summing to 1 with ``self`` included, as in the released
files), Quality (win rate against ``self``) and Gain (win rate against
``pixels``).

A pre-filtered grid (``transfers.prefilter``) trains only some sources of a
target. Its affinities can be completed with an estimator's tournament
(``priors``: per target, AHP weights of every source and ``self`` on the
estimator's footing, as ``estimate.affinity.readout_table`` gives): the
comparisons between trained candidates come from their losses, those that
involve an untrained source from the ratio of the estimator's weights, and
the rest (an untrained source against ``random``) are missing
(``ahp.ahp_incomplete``). The row then has every source, so the program
can choose a task that serves targets it was never trained on, and the
weights are normalised over as many candidates as in the full grid.
"""

from __future__ import annotations

import csv
import math
import os
from collections import defaultdict
from pathlib import Path

import numpy as np

from taskonomy_tf.fileio import atomic_path, open_csv
from taskonomy_tf.taxonomy.ahp import ahp, ahp_incomplete, ratio_matrix, win_rates
from taskonomy_tf.taxonomy.table import (
    CONSTANT,
    PIXELS,
    SELF,
    TableError,
    Transfer,
    TransferTable,
    is_oracle,
)

COLUMNS = ("candidate", "sources", "target", "image", "loss")
SEED = "seed"
REFERENCES = ((PIXELS,), (CONSTANT,))  # scored, but outside the AHP normalisation


def read_losses(path: str | os.PathLike) -> dict[str, dict[tuple[str, ...], dict]]:
    """target -> sources -> seed -> image -> loss, checked row by row (seed
    ``""`` for candidates that are not retrained, and for tables without a
    ``seed`` column).

    Raises:
        TableError: missing columns, a bad number, or a repeated row (one line).
    """
    out: dict = defaultdict(lambda: defaultdict(lambda: defaultdict(dict)))
    with open_csv(path, TableError) as f:
        reader = csv.DictReader(f)
        missing = [c for c in COLUMNS if c not in (reader.fieldnames or [])]
        if missing:
            raise TableError(f"{path}: missing column(s) {', '.join(missing)}; "
                             f"expected {','.join(COLUMNS[:4] + (SEED,) + COLUMNS[4:])}")
        for n, row in enumerate(reader, start=2):
            try:
                loss = float(row["loss"])
            except (TypeError, ValueError):
                raise TableError(f"{path}: line {n}: loss {row['loss']!r} "
                                 "is not a number") from None
            if not math.isfinite(loss):
                raise TableError(f"{path}: line {n}: loss is {row['loss']}")
            sources = tuple(s for s in (row["sources"] or "").split("+") if s)
            if not sources or not row["target"] or not row["image"]:
                raise TableError(f"{path}: line {n}: empty sources, target or image")
            cell = out[row["target"]][sources][(row.get(SEED) or "").strip()]
            if row["image"] in cell:
                raise TableError(f"{path}: line {n}: image {row['image']!r} repeated for "
                                 f"{'+'.join(sources)} -> {row['target']}")
            cell[row["image"]] = loss
    return out


def network_of(seed: str) -> str:
    """The network replicate of a replicate seed ``"k:r"`` (``k``); a seed
    without a network part names no network (``""``)."""
    return seed.split(":", 1)[0] if ":" in seed else ""


def loss_matrix(by_source: dict[tuple[str, ...], dict], target: str):
    """(candidates, images, seeds, losses (n, R, m)) on the images every
    candidate has; R = the replicate seeds of the retrained candidates
    (which must all have the same ones), over which candidates that are not
    retrained repeat their one row. With network replicates (seeds
    ``"k:r"``: readout seed r on the k-th set of task networks) a candidate
    retrained only with the networks (``self``: seeds ``"k"``) repeats its
    row k over that network's readouts.

    Raises:
        TableError: candidates on different images or different seeds.
    """
    candidates = sorted(by_source, key=lambda s: (len(s), s))
    seed_sets = {c: sorted(by_source[c]) for c in candidates}
    trained = {tuple(v) for v in seed_sets.values() if v != [""] and ":" in v[0]}
    trained = trained or {tuple(v) for v in seed_sets.values() if v != [""]}
    if len(trained) > 1:
        a, b = sorted(trained)[:2]
        raise TableError(f"target {target!r}: candidates trained with different seeds "
                         f"({','.join(a)} and {','.join(b)}); every retrained candidate "
                         "needs the same replicate seeds")
    seeds = list(next(iter(trained))) if trained else [""]
    networks = sorted({network_of(s) for s in seeds} - {""})
    for c, v in seed_sets.items():
        if "" in v and len(v) > 1:
            raise TableError(f"target {target!r}: candidate {'+'.join(c)} has rows with and "
                             "without a seed")
        if networks and v != [""] and ":" not in v[0] and v != networks:
            raise TableError(f"target {target!r}: candidate {'+'.join(c)} has network "
                             f"replicates {','.join(v)}, the readouts {','.join(networks)}")
    per_image = [set(images) for c in candidates for images in by_source[c].values()]
    images = sorted(set.intersection(*per_image))
    shared = set(images)
    for c in candidates:
        for seed, cell in by_source[c].items():
            if len(cell) != len(images):
                odd = sorted(set(cell) - shared)[:1]
                raise TableError(f"target {target!r}: candidate {'+'.join(c)}"
                                 f"{f' seed {seed}' if seed else ''} has {len(cell)} test "
                                 f"images, others share {len(images)}"
                                 f"{f' (it has {odd[0]!r}, not all others do)' if odd else ''}; "
                                 "every candidate must be evaluated on the same images, "
                                 "matched by image id")
    if not images:
        raise TableError(f"target {target!r}: no test image is shared by all candidates")

    def row(c, s):
        cells = by_source[c]
        return cells[s] if s in cells else cells.get(network_of(s)) or cells[""]

    m = np.array([[[row(c, s)[i] for i in images] for s in seeds] for c in candidates])
    return candidates, images, seeds, m


def target_records(candidates, m: np.ndarray, target: str, prior: dict | None = None):
    """(affinities, quality, gain) records of one target from its (n, images)
    losses, or (n, R, images): then averaged over the replicates first.
    ``prior``: an estimator's weights (source or ``self`` -> weight) that
    complete the affinities with the sources not among the candidates
    (``completions``)."""
    aff, quality, gain = [], [], []
    m = np.asarray(m)
    w = win_rates(m.mean(1) if m.ndim == 3 else m)
    # references and label oracles are scored, but never in the AHP normalisation
    keep = [i for i, c in enumerate(candidates) if c not in REFERENCES and not is_oracle(c)]
    names = [candidates[i] for i in keep]
    extra = completions(candidates, prior)
    if extra:
        names += extra
        weights = completed_weights(w[np.ix_(keep, keep)], names, prior)
    else:
        weights = ahp(w[np.ix_(keep, keep)])
    for name, value in zip(names, weights):
        aff.append(Transfer(name, target, float(value)))
    pos = {c: i for i, c in enumerate(candidates)}
    for i, c in enumerate(candidates):
        if (SELF,) in pos:
            quality.append(Transfer(c, target, float(w[i, pos[(SELF,)]])))
        if (PIXELS,) in pos:
            gain.append(Transfer(c, target, float(w[i, pos[(PIXELS,)]])))
    return aff, quality, gain


def completions(candidates, prior: dict | None) -> list[tuple[str, ...]]:
    """The first-order candidates an estimator's ``prior`` (source or
    ``self`` -> weight) adds to a target's trained ``candidates``: its
    sources that were not trained. Empty when no trained candidate is in
    ``prior``: nothing would tie the two scales together."""
    have = set(candidates)
    if not prior or not any(len(c) == 1 and c[0] in prior for c in have):
        return []
    return [(s,) for s in sorted(prior) if s != SELF and (s,) not in have]


def completed_weights(w: np.ndarray, names: list, prior: dict) -> np.ndarray:
    """AHP weights (len(names),) summing to 1 of a target's candidates
    ``names`` (tuples of sources), of which the first len(w) were trained
    and compared in the tournament ``w`` (``win_rates``) and the rest are
    known only to ``prior`` (an estimator's weights, source or ``self`` ->
    weight, any scale). Trained pairs take their ratio from ``w``; a pair
    with an untrained candidate takes the ratio of the ``prior`` weights
    when both are in it, and is missing otherwise (``ahp_incomplete``)."""
    trained = len(w)
    value = [prior.get(c[0]) if len(c) == 1 else None for c in names]
    known = np.array([v is not None for v in value])
    v = np.array([x if x is not None else np.nan for x in value], np.float64)
    r = np.where(known[:, None] & known[None, :], v[:, None] / v[None, :], np.nan)
    r[:trained, :trained] = ratio_matrix(w)
    np.fill_diagonal(r, 1.0)
    return ahp_incomplete(r)


def tables_from_matrices(matrices: dict[str, tuple], meta: dict | None = None,
                         priors: dict[str, dict[str, float]] | None = None
                         ) -> dict[str, TransferTable]:
    """``affinities``, ``wins_vs_task``, ``wins_vs_pixels`` from target ->
    (candidates, (n, images) or (n, R, images) losses). ``priors``: target
    -> an estimator's tournament that completes a pre-filtered target's
    affinities (module docstring); the completed pairs are listed in the
    affinities' ``meta["estimated"]`` (target -> sources)."""
    aff, quality, gain = [], [], []
    estimated = {}
    for target in sorted(matrices):
        prior = (priors or {}).get(target)
        a, q, g = target_records(*matrices[target], target, prior)
        trained = set(matrices[target][0])
        if extra := [r.sources[0] for r in a if r.sources not in trained]:
            estimated[target] = extra  # the completions target_records added
        aff += a
        quality += q
        gain += g
    targets = sorted(matrices)
    meta = meta or {}
    return {
        "affinities": TransferTable(aff, targets, "affinities",
                                    {**meta, "estimated": estimated} if estimated else meta),
        "wins_vs_task": TransferTable(quality, targets, "wins_vs_task", meta),
        "wins_vs_pixels": TransferTable(gain, sorted({r.target for r in gain}),
                                        "wins_vs_pixels", meta),
    }


def merge_network_replicates(tables: list[str | os.PathLike], out: str | os.PathLike) -> Path:
    """One losses table from the grids of several sets of task networks:
    table k's readout seed r becomes ``k:r`` and its rows without a seed
    (``self``, ``constant``: retrained, or refitted, only with the networks)
    get ``k``. Written atomically to ``out``; returns its path."""
    out = Path(out)
    with atomic_path(out) as tmp, open(tmp, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow([*COLUMNS[:4], SEED, COLUMNS[4]])
        for k, table in enumerate(tables):
            with open(table, newline="") as src:
                for row in csv.DictReader(src):
                    seed = (row.get(SEED) or "").strip()
                    w.writerow([*(row[c] for c in COLUMNS[:4]),
                                f"{k}:{seed}" if seed else str(k), row["loss"]])
    return out


def loss_matrices(path: str | os.PathLike) -> dict[str, tuple]:
    """target -> (candidates, image ids, seeds, (n, R, images) losses) of a losses CSV."""
    losses = read_losses(path)
    return {t: loss_matrix(losses[t], t) for t in sorted(losses)}


def tables_from_losses(path: str | os.PathLike, priors: dict | None = None
                       ) -> dict[str, TransferTable]:
    """Reads a losses CSV; returns ``affinities``, ``wins_vs_task``,
    ``wins_vs_pixels`` (``priors``: as in ``tables_from_matrices``)."""
    mats = {t: (c, m) for t, (c, _, _, m) in loss_matrices(path).items()}
    return tables_from_matrices(mats, {"losses_table": str(path)}, priors)
