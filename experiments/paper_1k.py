"""The paper's tiny-data taxonomy: as paper_16k, with 1k transfer images.

    python -m taskonomy_tf.pipeline --config experiments/paper_1k.py --set data.path=DIR

Transfers on 1k ``val`` images for 200 epochs of batch 32 (6,250 steps)
(reference section on transfers); compare with the released 1k affinities
(``--set report.published=FILE``). Run time and result: see paper_16k.py; the readouts cost about
0.4x of its transfer stage.
"""

import dataclasses
import importlib.util
from pathlib import Path


def get_config():
    spec = importlib.util.spec_from_file_location("paper_16k", Path(__file__).with_name(
        "paper_16k.py"))
    paper = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(paper)
    base = paper.get_config()
    return dataclasses.replace(
        base, name="paper_1k",
        transfers=dataclasses.replace(base.transfers, images=1_000, steps=6_250))
