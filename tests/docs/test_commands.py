"""The shell commands of README.md and docs/*.md name modules and options that exist.

The Python blocks run as written (test_snippets.py); the shell commands mostly
start hours of work, so they are checked statically instead: every
``python -m MODULE`` or ``python FILE.py`` line of a shell block names a module or
file of this repository, and every ``--option`` it passes is one its command-line
parser defines (in the module itself, its package's ``__main__``, the command it
serves under another name, or the shared
experiment options of ``taskonomy_tf/config.py``). A renamed option or module
fails here instead of on a user's machine.
"""

from __future__ import annotations

import importlib.util
import re
import shlex
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SHELL = re.compile(r"^```(?:bash|sh|shell|console|)\s*$\n(.*?)^```\s*$", re.M | re.S)
OPTION = re.compile(r"""["'](--[A-Za-z][\w-]*)["']""")
SHARED = ROOT / "taskonomy_tf" / "config.py"


def commands() -> list[tuple[str, int, list[str]]]:
    """(file, line, argv) of every python command in a shell block, joined over
    backslash continuations."""
    out = []
    for path in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]:
        text = path.read_text()
        for m in SHELL.finditer(text):
            block = m.group(1).replace("\\\n", " ")
            first = text.count("\n", 0, m.start()) + 2
            for i, line in enumerate(block.splitlines()):
                if "python" not in line:
                    continue
                lex = shlex.shlex(line.lstrip("$ "), posix=True, punctuation_chars=True)
                lex.whitespace_split = True
                words: list[str] = []
                for word in [*lex, ";"]:
                    if word.strip("&|;()") and not word.startswith(">"):
                        words.append(word)
                        continue
                    while words and re.fullmatch(r"[A-Z_]+=\S*", words[0]):
                        words = words[1:]  # VAR=value before the command
                    if len(words) >= 2 and words[0] in ("python", "python3"):
                        out.append((str(path.relative_to(ROOT)), first + i, words[1:]))
                    words = []
    return out


def source_files(argv: list[str]) -> list[Path] | None:
    """The files whose parsers define the command's options; None: not ours."""
    if argv[0] == "-m":
        name = argv[1]
        if not name.startswith(("taskonomy_tf", "tfrecords_tools")):
            return None
        spec = importlib.util.find_spec(name)
        assert spec is not None and spec.origin, f"no module {name}"
        origin = Path(spec.origin)
        files = [origin, SHARED]
        if origin.name == "__init__.py":
            files.append(origin.parent / "__main__.py")
        for alias in re.findall(r"^from ([\w.]+\.__main__) import", origin.read_text(), re.M):
            files.append(Path(importlib.util.find_spec(alias).origin))  # a command's other name
        return [f for f in files if f.exists()]
    path = ROOT / argv[0]
    assert path.suffix != ".py" or path.exists(), f"no file {argv[0]}"
    return [path, SHARED] if path.suffix == ".py" else None


def options(argv: list[str]) -> list[str]:
    rest = argv[2:] if argv[0] == "-m" else argv[1:]
    return [w.split("=")[0] for w in rest if w.startswith("--")]


def test_the_commands_are_found():
    found = commands()
    assert len(found) >= 30, f"only {len(found)} commands found in the docs' shell blocks"


@pytest.mark.parametrize("where,line,argv",
                         [pytest.param(*c, id=f"{c[0]}:{c[1]}") for c in commands()])
def test_a_documented_command_names_real_options(where, line, argv):
    files = source_files(argv)
    if files is None:
        pytest.skip(f"not this repository's command: python {' '.join(argv[:2])}")
    defined = set()
    for f in files:
        defined |= set(OPTION.findall(f.read_text()))
    unknown = [o for o in options(argv) if o not in defined | {"--help"}]
    assert not unknown, (f"{where}:{line}: python {' '.join(argv[:2])} has no option "
                         f"{', '.join(unknown)}")
