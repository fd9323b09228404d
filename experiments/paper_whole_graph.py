"""The whole task graph at the paper's protocol, on real Taskonomy records and a GPU.

    python -m taskonomy_tf.pipeline --config experiments/paper_whole_graph.py \
        --set data.path=DIR [--set report.published=.../affinities_16k.json]

Every task the records supply (``--tasks all``: 25 networks, 22 targets, the
multi-view ones included), at ``paper_16k.py``'s settings: ResNet-50 encoders
and the paper's decoders at 256 px, Adam at 1e-4, batch 32, 112,500 steps per
network; transfers on 16k ``val`` images, 15,000 steps of batch 32 at 1e-4, 3
readout seeds, the beam up to order 2 (reference section 4). ``data.path``:
records converted from the Taskonomy release with train, val and test splits
(``python -m tfrecords_tools.convert ... --resize 256``). Once the networks
are trained, the transfer grid splits across machines with
``python -m taskonomy_tf.transfer grid --config experiments/paper_whole_graph.py
--models DIR/models --shard I/N`` (or ``--backend ray``).

Run time: not measured (no GPU was lent to this project's sessions); the
task networks dominate: 25 x 112,500 steps of ResNet-50 at 256 px. Expected
result: source rankings that agree with the released ``affinities_16k.json``
(``python -m taskonomy_tf.taxonomy compare``), not reproduced yet.
"""

import dataclasses
from pathlib import Path

from taskonomy_tf.config import ExperimentConfig, load_config


def get_config() -> ExperimentConfig:
    paper = load_config(Path(__file__).with_name("paper_16k.py"))
    return dataclasses.replace(paper, name="paper_whole_graph", tasks=("all",))
