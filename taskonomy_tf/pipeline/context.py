"""The run's context, which every stage receives, and the helpers all
stages share."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from taskonomy_tf.config import ExperimentConfig
from taskonomy_tf.errors import InputError


@dataclasses.dataclass
class Context:
    config: ExperimentConfig
    out: Path
    progress: bool = True
    results: dict = dataclasses.field(default_factory=dict)  # stage -> its returned dict

    @property
    def data(self) -> Path:
        return Path(self.results["data"]["records"])

    @property
    def tasks(self) -> tuple[str, ...]:
        """The run's tasks: the configuration's, or with ``all`` every task
        the data supplies (resolved by the data stage)."""
        return tuple(self.results.get("data", {}).get("tasks") or self.config.tasks)

    @property
    def budget(self) -> float:
        """The reported taxonomy's budget: the configuration's, or a third
        of the tasks (at least 1)."""
        b = self.config.taxonomy.budget
        return b if b is not None else max(1, round(len(self.tasks) / 3))


TRANSFER_MODES = ("train", "estimate")


def estimating(ctx: Context) -> bool:
    """Whether the run estimates its affinities (``transfers.mode``)."""
    mode = ctx.config.transfers.mode
    if mode not in TRANSFER_MODES:
        raise InputError(f"transfers.mode {mode!r}: expected one of {', '.join(TRANSFER_MODES)}")
    return mode == "estimate"


def write_json(path: Path, obj) -> None:
    from taskonomy_tf.fileio import write_json_atomic

    write_json_atomic(path, obj, sort_keys=False)  # keeps shares sorted by size
