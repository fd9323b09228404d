"""Cheap transferability estimates on frozen features: a closed-form readout,
ridge, k-NN and local probes, LogME, H-score, RSA.

numpy and scipy only: features come from the transfer feature cache (or
anywhere else), so a ranking of sources costs seconds instead of a grid of
trained transfers.
"""

from taskonomy_tf.estimate.affinity import METHODS, estimate_table, ranking_agreement, score
from taskonomy_tf.estimate.hscore import hscore
from taskonomy_tf.estimate.labels import discretise, estimator_labels
from taskonomy_tf.estimate.logme import logme, logme_parameters
from taskonomy_tf.estimate.rsa import rdm, rsa

__all__ = ["METHODS", "discretise", "estimate_table", "estimator_labels", "hscore", "logme",
           "logme_parameters", "ranking_agreement", "rdm", "rsa", "score"]
