"""What a pipeline run depends on: one dataclass, written to ``pipeline.json``."""

from __future__ import annotations

import dataclasses
import json

# The default run: 3 2D and 3 3D tasks of the embedded data, enough to see
# whether the 3D tasks cluster as in the paper, within 15 minutes on 2 cores
# (each task adds a network, ~45 s, and 2 x (tasks + 2) transfers, ~5 s each).
DEFAULT_TASKS = ("edges", "keypoints2d", "autoencoding", "depth_zbuffer", "normals",
                 "reshading")
QUICK_TASKS = ("edges", "autoencoding", "depth_zbuffer", "normals")


@dataclasses.dataclass
class PipelineConfig:
    """Settings of one run (``data=None``: the embedded dataset).

    Attributes:
        image_size: input side for networks and transfers, px (the embedded
            data is 128 px; 64 keeps the default run near 15 CPU minutes).
        train_steps: steps per task network (batch ``batch_size``).
        transfer_images: images per transfer function, from the transfer
            split (the paper: 16k and 1k, from its ``val`` split).
        transfer_steps: readout training steps per transfer.
        budget: supervision budget of the reported dictionary (default: a
            third of the tasks, at least 1); the sweep covers 1..len(tasks).
        workers: processes running transfer jobs side by side.
        resamples: bootstrap resamples of the test images (intervals, stability).
    """

    data: str | None = None
    split_csv: str | None = None
    tasks: tuple[str, ...] = DEFAULT_TASKS
    image_size: int = 64
    batch_size: int = 32
    train_steps: int = 120
    transfer_images: int = 500
    transfer_steps: int = 80
    max_order: int = 1
    budget: float | None = None
    workers: int = 2
    resamples: int = 100
    seed: int = 0
    published: str | None = None

    @classmethod
    def quick(cls, **overrides) -> "PipelineConfig":
        """A few minutes' run: 4 tasks, short training (a smoke test, not a result)."""
        base = dict(tasks=QUICK_TASKS, image_size=32, train_steps=40, transfer_images=128,
                    transfer_steps=30, resamples=30)
        return cls(**{**base, **overrides})

    @property
    def chosen_budget(self) -> float:
        return self.budget if self.budget is not None else max(1, round(len(self.tasks) / 3))

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self), indent=1, sort_keys=True)
