"""What a pipeline run depends on: one dataclass, written to ``pipeline.json``."""

from __future__ import annotations

import dataclasses
import json

# The default run: 3 2D and 3 3D tasks of the embedded data, enough to see
# whether the 3D tasks cluster as in the paper (docs/results.md), within
# 15-20 minutes on 2 cores.
DEFAULT_TASKS = ("edges", "keypoints2d", "autoencoding", "depth_zbuffer", "normals",
                 "reshading")
QUICK_TASKS = ("edges", "autoencoding", "depth_zbuffer", "normals")


@dataclasses.dataclass
class PipelineConfig:
    """Settings of one run (``data=None``: the embedded dataset).

    Attributes:
        image_size: input side for networks and transfers, px (the embedded
            data is 128 px; at 64 the codes are still 16 x 16 x 8).
        train_steps: steps per task network (batch ``batch_size``; two epochs,
            each rounded up to whole groups of 10 steps per execution).
        max_constant_ratio: a network whose validation loss is above this
            fraction of its constant baseline's has not learnt its task;
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
    published: str | None = None

    @classmethod
    def quick(cls, **overrides) -> PipelineConfig:
        """A few minutes' run: 4 tasks, short training (a smoke test, not a result)."""
        base = dict(tasks=QUICK_TASKS, image_size=32, train_steps=100, transfer_images=256,
                    transfer_steps=60, transfer_seeds=2, resamples=30,
                    allow_weak_networks=True)
        return cls(**{**base, **overrides})

    @property
    def chosen_budget(self) -> float:
        return self.budget if self.budget is not None else max(1, round(len(self.tasks) / 3))

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self), indent=1, sort_keys=True)
