"""Files written whole or not at all, and their checksums (standard library only).

Every file a stage writes goes through ``atomic_path``: the content is
written under a hidden temporary name in the same folder, flushed to disk
(``fsync``), renamed over the final name (atomic on POSIX), and the folder
entry is synced too; an error removes the temporary file and leaves any
previous version in place. A crash therefore leaves either the old file or
the new one, never a truncated one. ``durable=False`` skips the syncs (still
atomic against other readers) for bulk intermediates that can be
regenerated, such as the synthetic renderer's raw files.

Shared by ``tfrecords_tools`` and every stage of ``taskonomy_tf``; it
imports nothing from either.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import os
import re
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any


def _fsync_dir(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:  # not supported here (e.g. Windows): the rename is still atomic
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


@functools.cache
def _host() -> str:
    return re.sub(r"[^A-Za-z0-9_]", "_", socket.gethostname()) or "host"


def temporary_name(path: str | os.PathLike) -> Path:
    """The hidden temporary name ``atomic_path`` writes ``path`` under:
    ``.<stem>.tmp-<host>-<pid><suffix>`` in the same folder (the same suffix,
    so libraries that check extensions accept it; host and pid, so a later run
    can tell a dead writer's leftovers from a live one's file in progress)."""
    path = Path(path)
    return path.with_name(f".{path.stem}.tmp-{_host()}-{os.getpid()}{path.suffix}")


def _running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process
        return True
    return True


def remove_stale_temporaries(folder: str | os.PathLike) -> list[Path]:
    """Deletes the temporary files in ``folder`` that ``atomic_path`` left
    when its process was killed mid-write (written on this host by a process
    that no longer runs); files in progress, and those of other hosts sharing
    the folder, stay. Returns the paths removed."""
    pattern = re.compile(rf"^\..*\.tmp-{re.escape(_host())}-(\d+)")
    removed = []
    for path in Path(folder).glob(".*.tmp-*"):
        match = pattern.match(path.name)
        if match and not _running(int(match.group(1))):
            path.unlink(missing_ok=True)
            removed.append(path)
    return removed


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, durable: bool = True,
                exclusive: bool = False) -> Iterator[Path]:
    """Yields a temporary path to write ``path``'s content to; on success it
    becomes ``path``. Creates the parent folder. With ``exclusive``, a
    ``path`` that another process created in the meantime is kept and this
    content dropped (a hard link publishes it; where the file system has
    none, it replaces as without ``exclusive``).

    Example::

        with atomic_path(out / "model.keras") as tmp:
            model.save(tmp)
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = temporary_name(path)
    try:
        yield tmp
        if durable:
            with open(tmp, "rb+") as f:
                os.fsync(f.fileno())
        if exclusive:
            _link_once(tmp, path)
        else:
            os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    if durable:
        _fsync_dir(path.parent)


def _link_once(tmp: Path, path: Path) -> None:
    try:
        os.link(tmp, path)
    except FileExistsError:
        pass  # another process was first: its file stays
    except OSError:  # no hard links here
        os.replace(tmp, path)
        return
    tmp.unlink()


def write_bytes_atomic(path: str | os.PathLike, data: bytes, durable: bool = True) -> None:
    """Writes ``data`` to ``path`` through ``atomic_path``."""
    with atomic_path(path, durable) as tmp:
        tmp.write_bytes(data)


def write_text_atomic(path: str | os.PathLike, text: str, durable: bool = True) -> None:
    """Writes ``text`` (UTF-8) to ``path`` through ``atomic_path``."""
    write_bytes_atomic(path, text.encode("utf-8"), durable)


def open_csv(path: str | os.PathLike, error: type[Exception], what: str = ""):
    """``path`` opened for ``csv`` reading (text, ``newline=""``); a file that
    cannot be opened raises ``error`` with one line: the path, ``what`` it
    was meant to be (if given) and the system's reason."""
    try:
        return open(path, newline="")
    except OSError as exc:
        raise error(f"{path}: cannot read{' ' + what if what else ''} ({exc.strerror})") from None


def write_json_atomic(path: str | os.PathLike, obj: Any, sort_keys: bool = True) -> None:
    """Writes ``obj`` as indented JSON (one trailing newline) through ``atomic_path``."""
    write_text_atomic(path, json.dumps(obj, indent=1, sort_keys=sort_keys) + "\n")


def sha256_file(path: str | os.PathLike) -> str:
    """Hex SHA-256 of a file's bytes, read in 1 MiB blocks.

    Remembered per (path, inode, size, modification time): the feature
    cache and the grid's content key hash the same network files once per
    job otherwise. A file rewritten through ``atomic_path`` is a new inode,
    so it is hashed again.
    """
    st = os.stat(path)
    return _sha256(os.path.abspath(path), st.st_ino, st.st_size, st.st_mtime_ns)


@functools.lru_cache(maxsize=1024)
def _sha256(path: str, inode: int, size: int, mtime_ns: int) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()
