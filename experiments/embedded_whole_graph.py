"""The whole task graph on the embedded data, at a CPU-sized scale.

    python -m taskonomy_tf.pipeline --config experiments/embedded_whole_graph.py \
        [--set report.published=.../affinities_16k.json]

Every catalog task the embedded data supplies (``--tasks all``: all 25 task
networks, the 22 targets and the source-only colorization, in-painting and
jigsaw; the untrained ``random`` encoder is the grid's baseline), at the
default run's settings: small networks at 64 px (up to 460 steps of 32, the best of
8 validations kept), first-order
transfers into every target, the four multi-view ones included, from every
other task, ``random`` and ``pixels``, 3 readout seeds of 150 steps on the 480
``val`` images. Networks that do not beat their constant prediction clearly
are reported, not fatal (``networks.allow_weak``): with 25 tasks a few
synthetic targets are expected to be weak, and the report names them.
Higher orders: ``--set transfers.max_order=2`` adds the beam's pairs (10 per
target, one more fused job each).

Run time on a 2-core x86_64 CPU machine (docs/results.md, docs/performance.md):
about 55 minutes for the 25 networks and 29 minutes for the 22 transfer
jobs with ``--workers 2`` (the segmentations and multi-view targets 3-6
minutes each, run first, each job in a fresh process forked from a server
that imported the job's modules); the transfer stage splits across
processes with ``--workers N``, and the grid across machines with
``python -m taskonomy_tf.transfer grid --tasks all --shard I/N`` or
``--backend ray``. Expected result: docs/results.md (the comparison with the
published 16k affinities, per target and per cluster).
"""

from taskonomy_tf.config import ExperimentConfig, NetworksConfig


def get_config() -> ExperimentConfig:
    return ExperimentConfig(name="embedded_whole_graph", tasks=("all",),
                            networks=NetworksConfig(allow_weak=True))
