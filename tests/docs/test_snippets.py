"""The Python blocks of README.md and docs/*.md run as written.

Each ```python block either runs as a file on its own, in a fresh, empty home
folder, as a user would paste it into ``script.py`` (no main guard), or is
marked as an excerpt with ``<!-- excerpt: why -->`` on the line before its
fence (it needs the user's own data or a trained network). The first block to
need the embedded dataset builds it from an empty cache (worker processes
included); the later ones reuse that cache.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
FENCE = re.compile(r"^```python\s*$\n(.*?)^```\s*$", re.M | re.S)
EXCERPT = re.compile(r"<!--\s*excerpt:[^>]*-->\s*\n\s*$")
# what a block prints that shows it did its job, beside running (file, first line of the block)
EXPECT = {
    # the docs/training.md block: the network's loss over the constant's, "about 0.65"
    ("docs/training.md", "from taskonomy_tf import get_task, make_dataset"):
        lambda out: float(out.split()[-1]) < 0.8,
}


def blocks() -> list[tuple[str, int, str, bool]]:
    """(file, line, code, excerpt) of every ```python block."""
    out = []
    for path in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]:
        text = path.read_text()
        for m in FENCE.finditer(text):
            line = text.count("\n", 0, m.start()) + 1
            excerpt = bool(EXCERPT.search(text[:m.start()]))
            out.append((str(path.relative_to(ROOT)), line, m.group(1), excerpt))
    return out


def test_every_block_is_found_and_marked():
    found = blocks()
    assert len(found) >= 3, "the docs' Python blocks were not found"
    assert any(not excerpt for *_, excerpt in found), "no runnable block left"


def fresh_env(home: Path, cache: Path) -> dict:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("TASKONOMY_TF", "PYTEST", "KERAS_"))}
    env.update(HOME=str(home), TASKONOMY_TF_CACHE=str(cache))
    return env


@pytest.fixture(scope="module")
def shared_cache(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("empty_cache")


@pytest.mark.slow
@pytest.mark.parametrize("where,line,code,excerpt",
                         [pytest.param(*b, id=f"{b[0]}:{b[1]}") for b in blocks()])
def test_block_runs_as_a_script(where, line, code, excerpt, shared_cache, tmp_path):
    if excerpt:
        pytest.skip("marked as an excerpt")
    home = tmp_path / "home"
    home.mkdir()
    script = home / "script.py"
    script.write_text(code)
    run = subprocess.run([sys.executable, str(script)], cwd=home, capture_output=True,
                         text=True, env=fresh_env(home, shared_cache), timeout=1500)
    assert run.returncode == 0, f"{where}:{line} failed:\n{run.stderr[-3000:]}"
    check = EXPECT.get((where, code.splitlines()[0]))
    if check is not None:
        assert check(run.stdout.strip()), f"{where}:{line} printed {run.stdout[-500:]!r}"


# A library call that starts worker processes, from a script without a main
# guard and from standard input: the workers must not run the caller again.
POOL_SCRIPT = textwrap.dedent("""
    from taskonomy_tf.synth.generate import SynthConfig, generate
    from tfrecords_tools.convert import convert

    cfg = SynthConfig(buildings=2, points=2, views=2, size=24, seed=3)
    generate("raw", cfg, workers=2, progress=False)
    m = convert("raw", "rec", shard_size=2, workers=2, progress=False)
    print("records", m["splits"]["all"]["records"])
""")


@pytest.mark.parametrize("how", ["file", "stdin"])
def test_worker_pools_work_without_a_main_guard(how, tmp_path):
    env = fresh_env(tmp_path, tmp_path / "cache")
    if how == "file":
        (tmp_path / "script.py").write_text(POOL_SCRIPT)
        run = subprocess.run([sys.executable, "script.py"], cwd=tmp_path, capture_output=True,
                             text=True, env=env, timeout=600)
    else:
        run = subprocess.run([sys.executable, "-"], input=POOL_SCRIPT, cwd=tmp_path,
                             capture_output=True, text=True, env=env, timeout=600)
    assert run.returncode == 0, run.stderr[-3000:]
    # each line once: a worker that re-ran the script would have printed too or failed
    assert run.stdout.split() == ["records", "8"], run.stdout
