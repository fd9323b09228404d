"""The paper's released first-order-and-up affinities, shipped for comparison.

``affinities_16k.json`` and ``affinities_1k.json`` are the AHP affinities the
Taskonomy authors released (``results/affinities/all_affinities_{16k,1k}.pkl``
in ``StanfordVL/taskonomy``, commit 9f81486; MIT licence, ``LICENSE`` beside
this file), converted to JSON without changing a value (the format:
``../shared/data/taskonomy_results/README.md``, ``TransferTable`` JSON). The
16k release is the comparison by default; the 1k release, whose transfers
saw 1,000 images (nearer our 480), is its ceiling: how well the paper's own
two releases agree.
"""

from __future__ import annotations

from pathlib import Path

RELEASES = ("16k", "1k")


def published_path(name: str) -> str:
    """A release name (``16k``, ``1k``) -> its shipped file; any other value is
    taken as a path to an affinities file and returned as it is."""
    if name in RELEASES:
        return str(Path(__file__).with_name(f"affinities_{name}.json"))
    return name
