"""Affinity and win-rate files: JSON records of (sources, target, value).

The format of ``../shared/data/taskonomy_results/`` (the published results)::

    {"measure": "affinities", "targets": [...],
     "records": [{"sources": ["rgb2sfnorm"], "target": "reshade", "value": 0.01}, ...]}

``self`` (the target's fully supervised network), ``pixels`` (trained from
pixels on the same data), ``random`` and ``constant`` (the best
input-independent prediction) are special sources. Loading checks
every record and fails with one line naming the bad record.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
from collections.abc import Iterable
from pathlib import Path

from taskonomy_tf.errors import InputError
from taskonomy_tf.fileio import write_json_atomic

SCHEMA_VERSION = 1
SELF, PIXELS, CONSTANT = "self", "pixels", "constant"
RANDOM = "random"  # the untrained encoder of the sources' architecture
# the reference candidates of every target, beside its sources: its own
# network, a readout from pixels, from the untrained encoder, and the best
# constant prediction (reference section 4)
BASELINES = (SELF, PIXELS, RANDOM, CONSTANT)
# a label-oracle candidate, "oracle:<task>": a readout from a task's true
# labels instead of its network's code (transfer.oracle)
ORACLE = "oracle:"


def is_oracle(sources) -> bool:
    return any(str(s).startswith(ORACLE) for s in sources)


class TableError(InputError):
    """Malformed input; the message is one line naming the file and record."""


@dataclasses.dataclass(frozen=True)
class Transfer:
    """One candidate: ``sources`` (tuple of names) -> ``target`` with ``value``."""

    sources: tuple[str, ...]
    target: str
    value: float

    @property
    def order(self) -> int:
        return len(self.sources)


@dataclasses.dataclass
class TransferTable:
    """Records of one measure (affinities, wins_vs_task, wins_vs_pixels, ...)."""

    records: list[Transfer]
    targets: list[str]
    measure: str = "affinities"
    meta: dict = dataclasses.field(default_factory=dict)

    def __post_init__(self) -> None:
        self._index = {(tuple(sorted(r.sources)), r.target): r.value for r in self.records}

    def get(self, sources: Iterable[str], target: str, default: float | None = None):
        """The value of a transfer, whatever the order of its sources."""
        return self._index.get((tuple(sorted(sources)), target), default)

    def for_target(self, target: str) -> list[Transfer]:
        return [r for r in self.records if r.target == target]

    @property
    def sources(self) -> list[str]:
        return sorted({s for r in self.records for s in r.sources})

    def to_json(self) -> dict:
        return {"schema_version": SCHEMA_VERSION, "measure": self.measure, **self.meta,
                "targets": self.targets, "n_records": len(self.records),
                "records": [{"sources": list(r.sources), "target": r.target, "value": r.value}
                            for r in self.records]}

    def save(self, path: str | os.PathLike) -> None:
        write_json_atomic(path, self.to_json(), sort_keys=False)


def _fail(path, what: str) -> TableError:
    return TableError(f"{path}: {what}")


def parse_table(data, path="<input>", max_value: float | None = None) -> TransferTable:
    """Validates decoded JSON into a table (see ``load_table``)."""
    if not isinstance(data, dict) or not isinstance(data.get("records"), list):
        raise _fail(path, "expected a JSON object with a 'records' list")
    records, seen = [], set()
    for i, rec in enumerate(data["records"]):
        where = f"record {i} ({json.dumps(rec)[:120]})"
        if not isinstance(rec, dict):
            raise _fail(path, f"{where}: not an object")
        missing = [k for k in ("sources", "target", "value") if k not in rec]
        if missing:
            raise _fail(path, f"{where}: missing field(s) {', '.join(missing)}")
        src, tgt, val = rec["sources"], rec["target"], rec["value"]
        if isinstance(src, str):
            src = [src]
        if not (isinstance(src, list) and src and all(isinstance(s, str) and s for s in src)):
            raise _fail(path, f"{where}: 'sources' must be a non-empty list of names")
        if not (isinstance(tgt, str) and tgt):
            raise _fail(path, f"{where}: 'target' must be a name")
        if isinstance(val, bool) or not isinstance(val, (int, float)) or not math.isfinite(val):
            raise _fail(path, f"{where}: 'value' must be a finite number")
        if val < 0 or (max_value is not None and val > max_value):
            bound = f"[0, {max_value}]" if max_value is not None else ">= 0"
            raise _fail(path, f"{where}: value {val} outside {bound}")
        if len(set(src)) != len(src):
            raise _fail(path, f"{where}: a source is repeated")
        key = (tuple(sorted(src)), tgt)
        if key in seen:
            raise _fail(path, f"{where}: duplicate transfer")
        seen.add(key)
        records.append(Transfer(tuple(src), tgt, float(val)))
    targets = data.get("targets")
    if targets is None:
        targets = sorted({r.target for r in records})
    if not isinstance(targets, list) or not all(isinstance(t, str) for t in targets):
        raise _fail(path, "'targets' must be a list of names")
    with_records = {r.target for r in records}
    for t in targets:
        if t not in with_records:
            raise _fail(path, f"target {t!r} has no candidates")
    meta = {k: v for k, v in data.items()
            if k not in ("records", "targets", "measure", "n_records", "schema_version")}
    return TransferTable(records, list(targets), str(data.get("measure", "affinities")), meta)


def load_table(path: str | os.PathLike, max_value: float | None = 1.0) -> TransferTable:
    """Reads and validates an affinity or win-rate file.

    Raises:
        TableError: unreadable file, not JSON, or a malformed record (one line).
    """
    try:
        text = Path(path).read_text()
    except OSError as exc:
        raise _fail(path, f"cannot read ({exc.strerror})") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise _fail(path, f"not JSON ({exc.msg} at line {exc.lineno} column {exc.colno})") from None
    return parse_table(data, path, max_value)
