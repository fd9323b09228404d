"""Figures of a taxonomy: each function takes data and returns a matplotlib
Figure; saving is the caller's choice (``fig.savefig``)."""

from taskonomy_tf.viz.budget import budget_curves
from taskonomy_tf.viz.graph import taxonomy_graph
from taskonomy_tf.viz.heatmap import affinity_matrix, heatmap
from taskonomy_tf.viz.names import display_name, task_order
from taskonomy_tf.viz.winrates import winrate_matrix

__all__ = ["affinity_matrix", "budget_curves", "display_name", "heatmap", "task_order",
           "taxonomy_graph", "winrate_matrix"]
