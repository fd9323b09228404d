"""Estimator scores for every (source, target) pair, as an affinity-like table,
and how well they rank sources compared with trained transfers.

Scores are written like the transfer affinities (``TransferTable`` JSON),
so the heatmap and the solver take them as they are: per target, the raw
scores are min-max scaled to [0, 1] (best source 1); the raw scores and the
time each took are kept in the file's ``raw`` and ``seconds`` fields.
"""

from __future__ import annotations

import time

import numpy as np

from taskonomy_tf.errors import InputError
from taskonomy_tf.estimate.hscore import hscore
from taskonomy_tf.estimate.labels import discretise
from taskonomy_tf.estimate.logme import logme
from taskonomy_tf.estimate.probe import knn_probe, local_probe, ridge_probe
from taskonomy_tf.estimate.readout_probe import (
    DenseTarget,
    SourceFit,
    features_buffer,
    readout_losses_many,
)
from taskonomy_tf.estimate.rsa import rsa
from taskonomy_tf.taxonomy.ahp import ahp_scores
from taskonomy_tf.taxonomy.table import SELF, Transfer, TransferTable

METHODS = ("readout", "local", "ridge", "knn", "rsa", "logme", "hscore")


def score(method: str, source_codes, target_labels, regression: bool, target_codes=None,
          groups=None, dense=None):
    """One estimate: ``source_codes`` (n, ...) against the target's labels
    (local, ridge and k-NN probes on held-out ``groups``, LogME, H-score) or
    the target network's own codes (RSA). ``local`` probes a dense target's
    pixels (``dense``: its (targets, weights, classes, loss)) and falls
    back to ``ridge`` for the others, as ``readout`` does (whose dense
    targets ``estimate_table`` scores jointly)."""
    if method == "local" and dense is not None:
        return local_probe(source_codes, dense[0], dense[1], _groups(groups, source_codes),
                           classes=dense[2])
    if method in ("local", "ridge", "readout"):
        return ridge_probe(source_codes, target_labels, regression, _groups(groups, source_codes))
    if method == "knn":
        return knn_probe(source_codes, target_labels, regression, _groups(groups, source_codes))
    if method == "logme":
        return logme(source_codes, target_labels, regression)
    if method == "hscore":
        return hscore(source_codes, discretise(target_labels) if regression else target_labels)
    if method == "rsa":
        return rsa(source_codes, target_codes)
    raise InputError(f"--method {method!r}: expected one of {', '.join(METHODS)}")


def _groups(groups, codes):
    """Each row its own group when none are given."""
    return np.arange(len(codes)) if groups is None else np.asarray(groups)


def estimate_table(method: str, codes: dict[str, np.ndarray],
                   labels: dict[str, tuple], groups=None, dense=None) -> TransferTable:
    """Scores every ordered pair of tasks.

    Args:
        codes: task -> (n, ...) frozen codes of its encoder on the same n images.
        labels: task -> (labels, regression) from ``estimator_labels``.
        groups: (n,) the group of each image (the probes hold groups out).
        dense: dense target -> (targets, weights, classes), for ``local``.
    """
    raw: dict[str, dict[str, float]] = {}
    seconds = 0.0
    joint, tournament = {}, {}
    if method == "readout":
        start = time.perf_counter()
        joint, tournament = readout_table(codes, dense or {}, groups)
        raw.update(joint)
        seconds += time.perf_counter() - start
    for target in labels:
        for source in codes:
            if source == target or target in joint:
                continue
            start = time.perf_counter()
            raw.setdefault(target, {})[source] = float(score(
                method, codes[source], *labels[target], target_codes=codes.get(target),
                groups=groups, dense=(dense or {}).get(target)))
            seconds += time.perf_counter() - start
    records = []
    for target, by_source in raw.items():
        lo, hi = min(by_source.values()), max(by_source.values())
        for source, v in by_source.items():
            scaled = (v - lo) / (hi - lo) if hi > lo else 1.0
            records.append(Transfer((source,), target, float(scaled)))
    meta = {"method": method, "raw": raw, "seconds": round(seconds, 3)}
    if tournament:
        meta["tournament"] = tournament
    return TransferTable(records, sorted(raw), f"estimate_{method}", meta)


def readout_table(codes: dict[str, np.ndarray], dense: dict[str, tuple], groups=None
                  ) -> tuple[dict[str, dict[str, float]], dict[str, dict[str, float]]]:
    """``readout``'s scores of the dense targets from their sources'
    per-image held-out losses (``readout_probe``), scored as trained
    transfers are: (the AHP affinities of each target's sources among
    themselves, the ranking; the tournament) where the tournament, for a
    target whose own code is given, also holds that code as ``self``, so
    that its values sum to 1 with ``self`` included, as the trained
    affinities do (``taxonomy.losses``; their ``random`` has no code here).
    Each source's features are fitted once for every target."""
    if not dense:
        return {}, {}
    losses: dict[str, dict[str, np.ndarray]] = {t: {} for t in dense}
    names = sorted(dense)
    # per code size: the targets, side by side with their rows in the folds'
    # order, built once for every source (the folds depend on the groups
    # alone); one source's features at a time, in one buffer (``buffer``:
    # on machines whose first touch of fresh memory is slow, docs/performance.md)
    prepared: dict[int, tuple] = {}
    buffer = None
    for source, c in codes.items():
        buffer = features_buffer(c, out=buffer)
        fit = SourceFit(c, _groups(groups, c), out=buffer)
        if fit.cells not in prepared:
            targets = [DenseTarget(y, w, loss, classes, fit.cells)
                       for y, w, classes, loss in (dense[name] for name in names)]
            prepared[fit.cells] = targets, np.concatenate([d.t for d in targets], 1)[fit.order]
        for t, got in zip(names, readout_losses_many(fit, *prepared[fit.cells])):
            losses[t][SELF if t == source else source] = got
    scores, tournament = {}, {}
    for t, rows in losses.items():
        sources = sorted(s for s in rows if s != SELF)
        if len(sources) < 2:
            continue
        scores[t] = _ahp(rows, sources)
        if SELF in rows:
            tournament[t] = _ahp(rows, sorted(rows))
    return scores, tournament


def _ahp(losses: dict[str, np.ndarray], names: list[str]) -> dict[str, float]:
    """AHP affinities of ``names`` from their (N,) per-image losses."""
    return dict(zip(names, map(float, ahp_scores(np.stack([losses[s] for s in names])))))


def taxonomy_affinities(table: TransferTable) -> TransferTable:
    """The affinities to solve a taxonomy on from an estimate table: the
    readout tournament (sources and ``self``, on the trained table's
    footing) when it covers every target, else the scaled scores themselves
    (other estimators, or targets that fell back to ``ridge`` or whose
    network is not among the codes: there the program sees no ``self``)."""
    tournament = table.meta.get("tournament") or {}
    if not table.targets or not set(table.targets) <= set(tournament):
        return table
    records = [Transfer((candidate,), t, float(v))
               for t in table.targets for candidate, v in sorted(tournament[t].items())]
    return TransferTable(records, list(table.targets), "affinities",
                         {"method": table.meta.get("method"), "estimated": True})


def ranking_agreement(estimate: TransferTable, trained: TransferTable) -> dict[str, dict]:
    """Per target: Spearman between estimated and trained first-order values,
    whether the estimator's best source is the trained best (top-1), and
    whether the trained best is among the estimator's top 3 (top-3)."""
    from scipy.stats import spearmanr

    out = {}
    for target in estimate.targets:
        est = {r.sources[0]: r.value for r in estimate.for_target(target) if r.order == 1}
        true = {s: trained.get((s,), target) for s in est}
        shared = sorted(s for s, v in true.items() if v is not None)
        if len(shared) < 2:
            continue
        e = np.array([est[s] for s in shared])
        t = np.array([true[s] for s in shared])
        best = shared[int(np.argmax(t))]
        top3 = [shared[i] for i in np.argsort(-e, kind="stable")[:3]]
        rho = spearmanr(e, t).statistic
        out[target] = {"spearman": float(rho) if np.isfinite(rho) else 0.0,
                       "top1": shared[int(np.argmax(e))] == best, "top3": best in top3,
                       "sources": len(shared)}
    return out
