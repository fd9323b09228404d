"""Entry points and the package's import weight."""

from __future__ import annotations

import configparser
import importlib
import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, *args], capture_output=True, text=True, timeout=300)


def test_taxonomy_needs_no_tensorflow():
    out = run("-c", "import sys, taskonomy_tf.taxonomy; "
                    "print('tensorflow' in sys.modules or 'keras' in sys.modules)")
    assert out.returncode == 0 and out.stdout.strip() == "False"


def test_import_is_light():
    out = run("-c", "import sys, taskonomy_tf; taskonomy_tf.get_task('edges'); "
                    "print(sorted(m for m in ('tensorflow', 'keras', 'ortools', 'seaborn') "
                    "if m in sys.modules))")
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


ROOT = Path(__file__).resolve().parents[2]
# every command: its console script and its ``python -m`` module
COMMANDS = {
    "taskonomy-train": "taskonomy_tf.train", "taskonomy-pipeline": "taskonomy_tf.pipeline",
    "taskonomy-transfer": "taskonomy_tf.transfer", "taskonomy-taxonomy": "taskonomy_tf.taxonomy",
    "taskonomy-estimate": "taskonomy_tf.estimate", "taskonomy-plot": "taskonomy_tf.viz",
    "taskonomy-synth": "taskonomy_tf.synth", "taskonomy-tasks": "taskonomy_tf.tasks",
    "taskonomy-convert": "tfrecords_tools.convert", "taskonomy-inspect": "tfrecords_tools.inspect",
    "taskonomy-fake": "tfrecords_tools.fake",
}


def _console_scripts() -> dict[str, str]:
    parser = configparser.ConfigParser()
    parser.read(ROOT / "setup.cfg")
    lines = parser["options.entry_points"]["console_scripts"].strip().splitlines()
    return dict((part.strip() for part in line.split("=")) for line in lines)


def test_every_command_is_a_console_script_and_a_module():
    scripts = _console_scripts()
    assert set(scripts) == set(COMMANDS)
    for name, target in scripts.items():
        module, func = target.split(":")
        assert callable(getattr(importlib.import_module(module), func)), name
        # the console script runs the same main as python -m <module>
        main_module = COMMANDS[name]
        spec = importlib.util.find_spec(main_module)
        assert spec is not None, main_module
        assert module in (main_module, f"{main_module}.__main__"), (name, module)


@pytest.mark.parametrize("module", sorted(set(COMMANDS.values()) | {"taskonomy_tf.plot"}))
def test_help(module):
    out = run("-m", module, "--help")
    assert out.returncode == 0 and "usage" in out.stdout, out.stderr[-2000:]


def test_inspect_prints_domains_and_ranges(fake_records):
    from tfrecords_tools.inspect import format_summary, inspect

    s = inspect(fake_records)
    assert s["records"] == 18 and s["splits"] == {"all": 18}
    d = s["domains"]["depth_zbuffer"]
    assert d["shape"] == [32, 32, 1] and d["dtype"] == "uint16" and 1.0 < d["min"] < d["max"] < 20
    assert 0.9 < d["valid_fraction"] < 1.0
    text = format_summary(s)
    assert "depth_zbuffer" in text and "18 records in 3 shard(s)" in text


def test_inspect_missing_path_is_one_line(tmp_path, capsys):
    from tfrecords_tools.inspect import main

    assert main([str(tmp_path / "nope")]) == 2
    assert capsys.readouterr().err.count("\n") == 1


def test_task_table_cli():
    out = run("-m", "taskonomy_tf.tasks")
    assert out.returncode == 0 and "`normals`" in out.stdout


QUIET_PROBE = ("from taskonomy_tf.console import quiet_tensorflow, set_verbose; "
               "set_verbose({verbose}); quiet_tensorflow(); import tensorflow as tf; "
               "tf.transpose(tf.zeros((2, 1), tf.int32)); print('ok')")


def test_tensorflow_start_up_log_is_hidden_unless_verbose():
    from taskonomy_tf.console import is_tensorflow_log

    env = {k: v for k, v in os.environ.items() if k != "TASKONOMY_TF_VERBOSE"}
    quiet = subprocess.run([sys.executable, "-c", QUIET_PROBE.format(verbose=False)],
                           capture_output=True, text=True, timeout=300, env=env)
    assert quiet.returncode == 0 and quiet.stdout.strip() == "ok", quiet.stderr
    assert quiet.stderr.strip() == ""
    loud = subprocess.run([sys.executable, "-c", QUIET_PROBE.format(verbose=True)],
                          capture_output=True, text=True, timeout=300, env=env)
    assert loud.returncode == 0
    # this TensorFlow does print its start-up log: the quiet run above hid it
    assert any(is_tensorflow_log(line) for line in loud.stderr.splitlines()) or \
        not loud.stderr.strip()


# imports TensorFlow as a fork server does (quietly, nothing run), then
# starts it with one thread per pool: the count must take, no log must show.
# TensorFlow refuses a thread count once it has started: the public test
UNSTARTED = ("def unstarted():\n"
             "    try:\n"
             "        tf.config.threading.set_inter_op_parallelism_threads(0)\n"
             "    except RuntimeError:\n"
             "        return False\n"
             "    return True\n")
IMPORT_THEN_START = (
    "from taskonomy_tf.console import quiet_import, quiet_tensorflow\nquiet_import()\n"
    "import tensorflow as tf\n" + UNSTARTED + "started = not unstarted()\nquiet_tensorflow(1)\n"
    "print(started, tf.config.threading.get_intra_op_parallelism_threads(),\n"
    "      float(tf.reduce_sum(tf.ones(3))), unstarted())\n")
# the transfer pool's fork server imports this module, then forks: it must
# not start TensorFlow (forking a started runtime is unsafe)
PRELOAD = ("import taskonomy_tf.transfer.preload\nimport tensorflow as tf\n" + UNSTARTED +
           "print(unstarted())\n")


def test_quiet_import_leaves_tensorflow_unstarted_for_quiet_tensorflow():
    env = {k: v for k, v in os.environ.items() if k != "TASKONOMY_TF_VERBOSE"}
    out = subprocess.run([sys.executable, "-c", IMPORT_THEN_START], capture_output=True,
                         text=True, timeout=300, env=env)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.split() == ["False", "1", "3.0", "False"]
    assert out.stderr.strip() == ""
    preload = subprocess.run([sys.executable, "-c", PRELOAD], capture_output=True,
                             text=True, timeout=300, env=env)
    assert preload.returncode == 0, preload.stderr[-2000:]
    assert preload.stdout.split() == ["True"] and preload.stderr.strip() == ""
