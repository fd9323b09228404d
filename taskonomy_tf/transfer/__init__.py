"""Transfers: frozen source codes -> target readouts (first steps of issue 5:
the transfer function, the feature cache and one transfer run)."""

from taskonomy_tf.transfer.cache import FeatureCache
from taskonomy_tf.transfer.readout import build_transfer_model
from taskonomy_tf.transfer.runner import TransferResult, run_transfer

__all__ = ["FeatureCache", "TransferResult", "build_transfer_model", "run_transfer"]
