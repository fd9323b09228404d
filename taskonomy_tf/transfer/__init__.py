"""Transfers: frozen source codes -> target readouts, baselines, and grids
of idempotent transfer jobs (local, sharded or on Ray)."""

from taskonomy_tf.transfer.cache import FeatureCache
from taskonomy_tf.transfer.grid import Job, beam_jobs, first_order_jobs, rank_sources
from taskonomy_tf.transfer.readout import build_transfer_model
from taskonomy_tf.transfer.runner import (TransferResult, pixels_transfer, run_transfer,
                                          self_losses)
from taskonomy_tf.transfer.schedule import GridResult, run_grid, run_jobs

__all__ = ["FeatureCache", "GridResult", "Job", "TransferResult", "beam_jobs",
           "build_transfer_model", "first_order_jobs", "pixels_transfer", "rank_sources",
           "run_grid", "run_jobs", "run_transfer", "self_losses"]
