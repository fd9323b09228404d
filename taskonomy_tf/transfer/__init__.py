"""Transfers: frozen source codes -> target readouts (all of a target's
candidates and replicate seeds trained as one fused program), baselines,
and grids of idempotent per-target jobs (local, sharded or on Ray)."""

from taskonomy_tf.transfer.cache import FeatureCache
from taskonomy_tf.transfer.grid import (
                                        Job,
                                        beam_candidates,
                                        first_order_candidates,
                                        first_order_jobs,
                                        rank_sources,
)
from taskonomy_tf.transfer.readout import build_readouts, plan_heads, train_readouts
from taskonomy_tf.transfer.runner import (
                                        TransferResult,
                                        pixels_transfer,
                                        replicate_seeds,
                                        run_candidates,
                                        run_transfer,
                                        self_losses,
)
from taskonomy_tf.transfer.schedule import GridResult, run_grid, run_jobs

__all__ = ["FeatureCache", "GridResult", "Job", "TransferResult", "beam_candidates",
           "build_readouts", "first_order_candidates", "first_order_jobs", "pixels_transfer",
           "plan_heads", "rank_sources", "replicate_seeds", "run_candidates", "run_grid",
           "run_jobs", "run_transfer", "self_losses", "train_readouts"]
