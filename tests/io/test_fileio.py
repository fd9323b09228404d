"""Atomic, durable writes and the layering between the two packages."""

from __future__ import annotations

import ast
import json
import os
from pathlib import Path

import pytest

from taskonomy_tf.fileio import (
    atomic_path,
    open_csv,
    remove_stale_temporaries,
    sha256_file,
    temporary_name,
    write_bytes_atomic,
    write_json_atomic,
)

ROOT = Path(__file__).resolve().parents[2]


def test_json_round_trip_and_no_temporary_left(tmp_path):
    path = tmp_path / "sub" / "a.json"  # the folder is created
    write_json_atomic(path, {"b": 1, "a": [1.5, "x"]})
    assert json.loads(path.read_text()) == {"a": [1.5, "x"], "b": 1}
    assert path.read_text().endswith("}\n") and list(path.parent.iterdir()) == [path]


def test_a_failed_write_keeps_the_old_file_and_removes_the_temporary(tmp_path):
    path = tmp_path / "model.keras"
    write_bytes_atomic(path, b"old")
    with pytest.raises(RuntimeError), atomic_path(path) as tmp:
        assert tmp.suffix == ".keras" and tmp.parent == tmp_path  # libraries see the suffix
        tmp.write_bytes(b"half")
        raise RuntimeError("killed while writing")
    assert path.read_bytes() == b"old" and not temporary_name(path).exists()


def test_only_a_dead_writers_temporaries_are_removed(tmp_path):
    import subprocess
    import sys

    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)
    dead_pid = int(dead.stdout)  # that process has exited
    mine = temporary_name(tmp_path / "a.json")  # this process: still writing
    killed = mine.with_name(mine.name.replace(f"-{os.getpid()}.", f"-{dead_pid}."))
    other_host = tmp_path / f".b.tmp-elsewhere-{dead_pid}.json"  # may be alive there
    final = tmp_path / "c.json"
    for path in (mine, killed, other_host, final):
        path.write_text("{}")
    assert remove_stale_temporaries(tmp_path) == [killed]
    assert sorted(tmp_path.iterdir()) == sorted([mine, other_host, final])


def test_sha256_file_matches_hashlib(tmp_path):
    import hashlib

    data = bytes(range(256)) * 5000  # more than one 1 MiB block
    (tmp_path / "f").write_bytes(data)
    assert sha256_file(tmp_path / "f") == hashlib.sha256(data).hexdigest()


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


class _BadTable(ValueError):
    pass


def test_open_csv_reads_quoted_newlines_and_names_an_unreadable_file(tmp_path):
    import csv

    path = tmp_path / "t.csv"
    path.write_bytes(b'a,b\r\n1,"two\r\nlines"\r\n')
    with open_csv(path, _BadTable) as f:
        assert list(csv.reader(f)) == [["a", "b"], ["1", "two\r\nlines"]]
    with pytest.raises(_BadTable) as err:
        open_csv(tmp_path / "none.csv", _BadTable, "the samples file")
    assert str(err.value) == f"{tmp_path / 'none.csv'}: cannot read the samples file " \
        "(No such file or directory)"
    with pytest.raises(_BadTable, match=r": cannot read \(Is a directory\)$"):
        open_csv(tmp_path, _BadTable)


def test_no_import_cycle_between_the_packages():
    """The converter uses the catalog, the record schema, the errors and
    fileio; the toolkit uses the converter only to build records (pipeline,
    embedded data). No module of either side needs a module that needs it."""
    # the low layers (console, config: standard library; console imports TensorFlow
    # when asked): none imports
    # tfrecords_tools
    # (view_index: the shards' view index, a part of the record format like the schema)
    allowed_from_converter = {"taskonomy_tf.data", "taskonomy_tf.data.schema",
                              "taskonomy_tf.data.view_index",
                              "taskonomy_tf.data.pnginfo", "taskonomy_tf.data.decode",
                              "taskonomy_tf.data.geometry", "taskonomy_tf.errors",
                              "taskonomy_tf.fileio", "taskonomy_tf.tasks", "taskonomy_tf.console",
                              "taskonomy_tf.config", "taskonomy_tf.procs",
                              "taskonomy_tf.data.card"}
    for path in (ROOT / "tfrecords_tools").rglob("*.py"):
        for name in _imports(path):
            if name.startswith("taskonomy_tf"):
                assert name in allowed_from_converter, f"{path.name} imports {name}"
    users = set()
    for path in (ROOT / "taskonomy_tf").rglob("*.py"):
        if any(n.startswith("tfrecords_tools") for n in _imports(path)):
            users.add(path.relative_to(ROOT).as_posix())
    assert users <= {"taskonomy_tf/pipeline/stages.py", "taskonomy_tf/synth/embedded.py"}, users
    fileio = _imports(ROOT / "taskonomy_tf" / "fileio.py")
    assert not {n for n in fileio if n.startswith(("taskonomy_tf", "tfrecords_tools"))}
