"""Transfers: frozen source codes -> target readouts (all of a target's
candidates and replicate seeds trained as one fused program), baselines,
and grids of idempotent per-target jobs (local, sharded or on Ray).

The names below load their module (and TensorFlow) on first use, so that
``python -m taskonomy_tf.transfer --help`` and its one-line errors stay light.
"""

from __future__ import annotations

import importlib
from typing import Any

_WHERE = {
    "FeatureCache": "cache",
    "Job": "grid", "beam_candidates": "grid", "first_order_candidates": "grid",
    "first_order_jobs": "grid", "rank_sources": "grid",
    "build_readouts": "readout", "plan_heads": "readout", "train_readouts": "readout",
    "TransferResult": "runner", "pixels_transfer": "runner", "replicate_seeds": "runner",
    "run_candidates": "runner", "run_transfer": "runner", "self_losses": "runner",
    "GridResult": "schedule", "run_grid": "schedule", "run_jobs": "schedule",
}
__all__ = sorted(_WHERE)


def __getattr__(name: str) -> Any:
    if name not in _WHERE:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{_WHERE[name]}"), name)
