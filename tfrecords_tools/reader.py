"""Finds every raw sample under a root, in either Taskonomy layout.

Layouts (``../shared/docs/taskonomy_reference.md`` section 2):

* original release: ``<root>/<building>/<domain>/point_P_view_V_domain_D.ext``
* Omnidata downloader: ``<root>/<domain>/<component>/<building>/point_...``
* a single building folder: ``<root>/<domain>/point_...`` (the building is
  the root folder's name)

A file is taken as raw data of a domain only when its folder is a known
domain folder, its file-name token is one of that domain's tokens and its
extension matches. Everything else (display copies such as
``..._domain_depth_zbuffer2.png``, stray files) is ignored and counted with
the reason.
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

from taskonomy_tf.data import schema
from taskonomy_tf.errors import InputError

SampleKey = tuple[str, int, int]  # (building, point, view)


@dataclasses.dataclass
class ScanResult:
    """What ``scan`` found.

    Attributes:
        samples: (building, point, view) -> {domain: path}, sorted by key.
        ignored: (path relative to root, reason) for every file not taken.
        layouts: the layouts seen (``original``, ``omnidata``, ``building``).
    """

    samples: dict[SampleKey, dict[str, Path]]
    ignored: list[tuple[str, str]]
    layouts: set[str]

    @property
    def buildings(self) -> list[str]:
        return sorted({k[0] for k in self.samples})

    def domain_counts(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for files in self.samples.values():
            for d in files:
                counts[d] = counts.get(d, 0) + 1
        return dict(sorted(counts.items()))


def _place(parts: tuple[str, ...], root_name: str) -> tuple[str, str, str] | None:
    """(layout, building, domain folder) from a relative path's folders."""
    if len(parts) == 2 and parts[1] in schema.FOLDER_TO_DOMAIN:
        return "original", parts[0], parts[1]
    if len(parts) == 3 and parts[0] in schema.FOLDER_TO_DOMAIN:
        return "omnidata", parts[2], parts[0]
    if len(parts) == 1 and parts[0] in schema.FOLDER_TO_DOMAIN:
        return "building", root_name, parts[0]
    return None


def classify(rel: Path, root_name: str) -> tuple[str, SampleKey, str] | str:
    """Returns ``(layout, key, domain)`` for a raw file, or the reason it is not one."""
    m = schema.FILENAME_RE.match(rel.name)
    if m is None:
        return "file name is not point_P_view_V_domain_D.ext"
    place = _place(rel.parts[:-1], root_name)
    if place is None:
        return "not in a <building>/<domain>/ or <domain>/<component>/<building>/ folder"
    layout, building, folder = place
    domain = schema.FOLDER_TO_DOMAIN[folder]
    spec = schema.DOMAINS[domain]
    token = m["token"]
    if token not in spec.all_tokens():
        known = schema.TOKEN_TO_DOMAIN.get(token)
        if known is None:
            return f"domain token {token!r} is not raw data of any domain (display copy?)"
        return f"domain token {token!r} belongs to {known!r}, found in folder {folder!r}"
    if m["ext"] != spec.extension:
        return f"extension .{m['ext']} where {domain} expects .{spec.extension}"
    return layout, (building, int(m["point"]), int(m["view"])), domain


def scan(root: str | os.PathLike, domains: list[str] | None = None) -> ScanResult:
    """Walks ``root`` and groups the raw files of each (building, point, view).

    Args:
        root: dataset root in either layout.
        domains: keep only these domains (canonical names); ``None`` keeps all.

    Raises:
        FileNotFoundError: ``root`` is not a folder.
    """
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"--src {root}: not a folder")
    samples: dict[SampleKey, dict[str, Path]] = {}
    ignored: list[tuple[str, str]] = []
    layouts: set[str] = set()
    for dirpath, dirnames, filenames in os.walk(root, followlinks=True):
        dirnames.sort()
        for fname in sorted(filenames):
            path = Path(dirpath, fname)
            rel = path.relative_to(root)
            if fname.startswith(".") or any(p.startswith(".") for p in rel.parts[:-1]):
                continue  # hidden files and our own temporary files
            got = classify(rel, root.name)
            if isinstance(got, str):
                ignored.append((str(rel), got))
                continue
            layout, key, domain = got
            if domains is not None and domain not in domains:
                continue
            files = samples.setdefault(key, {})
            if domain in files:
                ignored.append((str(rel), f"duplicate {domain} file for {key}"))
                continue
            files[domain] = path
            layouts.add(layout)
    ordered = {k: dict(sorted(samples[k].items())) for k in sorted(samples)}
    return ScanResult(ordered, ignored, layouts)


def read_split_csv(path: str | os.PathLike, split: str) -> set[str]:
    """Buildings flagged 1 for ``split`` in an official ``id,train,val,test`` CSV.

    Handles the released files' old-Mac CR line endings.

    Raises:
        ValueError: a malformed file or an unknown split column.
    """
    text = Path(path).read_text().replace("\r\n", "\n").replace("\r", "\n")
    rows = [r.strip() for r in text.split("\n") if r.strip()]
    if not rows:
        raise InputError(f"--split-csv {path}: empty file")
    header = [h.strip().lower() for h in rows[0].split(",")]
    if "id" not in header or split not in header:
        raise InputError(
            f"--split-csv {path}: expected columns id,{split}; got {','.join(header)}"
        )
    i_id, i_split = header.index("id"), header.index(split)
    keep = set()
    for n, row in enumerate(rows[1:], start=2):
        cells = [c.strip() for c in row.split(",")]
        if len(cells) != len(header):
            raise InputError(f"--split-csv {path}: line {n} has {len(cells)} fields")
        if cells[i_split] not in ("0", "1", "0.0", "1.0"):
            raise InputError(f"--split-csv {path}: line {n}: flag {cells[i_split]!r} not 0/1")
        if float(cells[i_split]) == 1:
            keep.add(cells[i_id])
    return keep
