"""What a pipeline run depends on: the stage settings (``PipelineConfig``,
written to ``pipeline.json``), derived from an experiment configuration
(``taskonomy_tf.config``, written to ``experiment.json``)."""

from __future__ import annotations

import dataclasses
import json

from taskonomy_tf.config import DEFAULT_TASKS, ExperimentConfig


@dataclasses.dataclass
class PipelineConfig:
    """Settings of one run (``data=None``: the embedded dataset).

    Attributes:
        image_size: input side for networks and transfers, px (the embedded
            data is 128 px; at 64 the codes are still 16 x 16 x 8).
        train_steps: steps per task network (batch ``batch_size``; two epochs,
            each rounded up to whole groups of 10 steps per execution).
        max_constant_ratio: a network whose validation loss is above this
            fraction of its floor's (the lower of its constant baseline's and
            the untrained network's) has not learnt its task;
            the run stops before transfers (``allow_weak_networks`` makes
            it a warning in the report instead).
        transfer_images: images per transfer function, from the transfer
            split (the paper: 16k, and 1k, from its ``val`` split); ``None``
            takes the whole split.
        transfer_steps: readout training steps (batch ``transfer_batch``),
            each readout from scratch, Adam at ``transfer_lr`` with warm-up
            and cosine decay (docs/transfers.md for the evidence).
        transfer_seeds: readout replicates per candidate: the taxonomy uses
            per-image losses averaged over them, and the bootstrap draws them.
        budget: supervision budget of the reported dictionary (default: a
            third of the tasks, at least 1); the sweep covers 1..len(tasks).
        workers: processes running transfer jobs side by side.
        resamples: bootstrap resamples of test images and replicates.
        confidence: coverage of the bootstrap intervals.
        seed: drives data order, initialisation and the readouts' seeds.
    """

    data: str | None = None
    split_csv: str | None = None
    tasks: tuple[str, ...] = DEFAULT_TASKS
    image_size: int = 64
    batch_size: int = 32
    train_steps: int = 460
    max_constant_ratio: float = 0.9
    allow_weak_networks: bool = False
    transfer_images: int | None = None
    transfer_steps: int = 150
    transfer_batch: int = 16
    transfer_lr: float = 1e-2
    transfer_seeds: int = 3
    max_order: int = 1
    budget: float | None = None
    workers: int = 1
    resamples: int = 100
    confidence: float = 0.9
    seed: int = 0
    published: str | None = "16k"
    reference: str | None = "1k"
    encoder: str = "small"
    decoder: str | None = None
    train_lr: float | None = None
    precision: str = "auto"
    schedule: str = "cosine"
    warmup: float = 0.05
    strategy: str = "auto"
    steps_per_execution: int = 10
    transfer_split: str = "val"
    transfer_prefilter: int = 0
    transfer_estimator: str = "ridge"
    transfer_sources: tuple[str, ...] = ()
    transfer_oracle: bool = False

    @classmethod
    def from_experiment(cls, exp: ExperimentConfig) -> PipelineConfig:
        """The stage settings of an experiment (one key each)."""
        n, t = exp.networks, exp.transfers
        return cls(data=exp.data.path, split_csv=exp.data.split_csv, tasks=tuple(exp.tasks),
                   image_size=exp.data.image_size, batch_size=n.batch_size,
                   train_steps=n.steps, max_constant_ratio=n.max_constant_ratio,
                   allow_weak_networks=n.allow_weak, transfer_images=t.images,
                   transfer_steps=t.steps, transfer_batch=t.batch_size,
                   transfer_lr=t.learning_rate, transfer_seeds=t.seeds, max_order=t.max_order,
                   budget=exp.taxonomy.budget, workers=t.workers,
                   resamples=exp.taxonomy.resamples, confidence=exp.taxonomy.confidence,
                   seed=exp.seed, published=exp.report.published,
                   reference=exp.report.reference, encoder=n.encoder,
                   decoder=n.decoder, train_lr=n.learning_rate, precision=n.precision,
                   schedule=n.schedule, warmup=n.warmup, strategy=n.strategy,
                   steps_per_execution=n.steps_per_execution, transfer_split=t.split,
                   transfer_prefilter=t.prefilter, transfer_estimator=t.estimator,
                   transfer_sources=tuple(t.sources), transfer_oracle=t.oracle)

    @classmethod
    def quick(cls, **overrides) -> PipelineConfig:
        """A one-minute run: ``config.quick_experiment`` (a smoke test, not a result)."""
        from taskonomy_tf.config import quick_experiment

        return dataclasses.replace(cls.from_experiment(quick_experiment()), **overrides)

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self), indent=1, sort_keys=True)
