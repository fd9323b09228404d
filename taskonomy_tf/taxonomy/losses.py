"""Per-image losses table -> affinities, Quality and Gain files.

The transfer step writes one tidy CSV row per (candidate, test image)::

    candidate,sources,target,image,loss
    transfer,normals+reshading,depth_zbuffer,bldg/12/3,0.0412
    self,self,depth_zbuffer,bldg/12/3,0.0300
    pixels,pixels,depth_zbuffer,bldg/12/3,0.0833

``sources`` joins the source names with ``+``; the baselines use ``self``
(the target's own network), ``pixels`` and ``random``. For each target, the
candidates' win rates on the shared test images give (reference sections 5
and 7): affinities (AHP over every candidate except ``pixels``, summing to
1 with ``self`` included, as in the released files), Quality (win rate
against ``self``) and Gain (win rate against ``pixels``).
"""

from __future__ import annotations

import csv
import math
import os
from collections import defaultdict

import numpy as np

from taskonomy_tf.taxonomy.ahp import ahp, win_rates
from taskonomy_tf.taxonomy.table import PIXELS, SELF, TableError, Transfer, TransferTable

COLUMNS = ("candidate", "sources", "target", "image", "loss")


def read_losses(path: str | os.PathLike) -> dict[str, dict[tuple[str, ...], dict[str, float]]]:
    """target -> sources -> image -> loss, checked row by row.

    Raises:
        TableError: missing columns, a bad number, or a repeated row (one line).
    """
    out: dict = defaultdict(lambda: defaultdict(dict))
    try:
        f = open(path, newline="")
    except OSError as exc:
        raise TableError(f"{path}: cannot read ({exc.strerror})") from None
    with f:
        reader = csv.DictReader(f)
        missing = [c for c in COLUMNS if c not in (reader.fieldnames or [])]
        if missing:
            raise TableError(f"{path}: missing column(s) {', '.join(missing)}; "
                             f"expected {','.join(COLUMNS)}")
        for n, row in enumerate(reader, start=2):
            try:
                loss = float(row["loss"])
            except (TypeError, ValueError):
                raise TableError(f"{path}: line {n}: loss {row['loss']!r} is not a number") from None
            if not math.isfinite(loss):
                raise TableError(f"{path}: line {n}: loss is {row['loss']}")
            sources = tuple(s for s in (row["sources"] or "").split("+") if s)
            if not sources or not row["target"] or not row["image"]:
                raise TableError(f"{path}: line {n}: empty sources, target or image")
            cell = out[row["target"]][sources]
            if row["image"] in cell:
                raise TableError(f"{path}: line {n}: image {row['image']!r} repeated for "
                                 f"{'+'.join(sources)} -> {row['target']}")
            cell[row["image"]] = loss
    return out


def loss_matrix(by_source: dict[tuple[str, ...], dict[str, float]], target: str):
    """(candidates, images, losses (n, m)) on the images every candidate has."""
    candidates = sorted(by_source, key=lambda s: (len(s), s))
    images = sorted(set.intersection(*(set(v) for v in by_source.values())))
    for c in candidates:
        if len(by_source[c]) != len(images):
            raise TableError(f"target {target!r}: candidate {'+'.join(c)} has "
                             f"{len(by_source[c])} test images, others share {len(images)}; "
                             "every candidate must be evaluated on the same images")
    if not images:
        raise TableError(f"target {target!r}: no test image is shared by all candidates")
    m = np.array([[by_source[c][i] for i in images] for c in candidates])
    return candidates, images, m


def target_records(candidates, m: np.ndarray, target: str):
    """(affinities, quality, gain) records of one target from its (n, images) losses."""
    aff, quality, gain = [], [], []
    w = win_rates(m)
    keep = [i for i, c in enumerate(candidates) if c != (PIXELS,)]
    weights = ahp(w[np.ix_(keep, keep)])
    for k, i in enumerate(keep):
        aff.append(Transfer(candidates[i], target, float(weights[k])))
    pos = {c: i for i, c in enumerate(candidates)}
    for i, c in enumerate(candidates):
        if (SELF,) in pos:
            quality.append(Transfer(c, target, float(w[i, pos[(SELF,)]])))
        if (PIXELS,) in pos:
            gain.append(Transfer(c, target, float(w[i, pos[(PIXELS,)]])))
    return aff, quality, gain


def tables_from_matrices(matrices: dict[str, tuple], meta: dict | None = None
                         ) -> dict[str, TransferTable]:
    """``affinities``, ``wins_vs_task``, ``wins_vs_pixels`` from target ->
    (candidates, (n, images) losses)."""
    aff, quality, gain = [], [], []
    for target in sorted(matrices):
        a, q, g = target_records(*matrices[target], target)
        aff += a
        quality += q
        gain += g
    targets = sorted(matrices)
    meta = meta or {}
    return {
        "affinities": TransferTable(aff, targets, "affinities", meta),
        "wins_vs_task": TransferTable(quality, targets, "wins_vs_task", meta),
        "wins_vs_pixels": TransferTable(gain, sorted({r.target for r in gain}),
                                        "wins_vs_pixels", meta),
    }


def loss_matrices(path: str | os.PathLike) -> dict[str, tuple]:
    """target -> (candidates, image ids, (n, images) losses) of a losses CSV."""
    losses = read_losses(path)
    return {t: loss_matrix(losses[t], t) for t in sorted(losses)}


def tables_from_losses(path: str | os.PathLike) -> dict[str, TransferTable]:
    """Reads a losses CSV; returns ``affinities``, ``wins_vs_task``, ``wins_vs_pixels``."""
    mats = {t: (c, m) for t, (c, _, m) in loss_matrices(path).items()}
    return tables_from_matrices(mats, {"losses_table": str(path)})
