"""Taxonomy: win rates, AHP, and the task-dictionary integer program.

numpy and OR-Tools only (OR-Tools is imported when a program is solved),
so a taxonomy can be computed from a JSON file without TensorFlow.

Example:
    >>> from taskonomy_tf.taxonomy import load_table, solve_taxonomy
    >>> table = load_table("affinities_16k.json")          # doctest: +SKIP
    >>> solve_taxonomy(table, budget=6, max_order=5).roots  # doctest: +SKIP
"""

from taskonomy_tf.taxonomy.ahp import ahp, consistency_ratio, win_rates
from taskonomy_tf.taxonomy.bip import (
    TaxonomyError,
    TaxonomySolution,
    build_instance,
    minimum_budget,
    solve_instance,
    solve_taxonomy,
)
from taskonomy_tf.taxonomy.grouping import (
    Candidates,
    GroupingSolution,
    read_candidates,
    solve_grouping,
)
from taskonomy_tf.taxonomy.losses import read_losses, tables_from_losses
from taskonomy_tf.taxonomy.sweep import parse_budgets, sweep
from taskonomy_tf.taxonomy.table import (
    TableError,
    Transfer,
    TransferTable,
    load_table,
    parse_table,
)

__all__ = [
    "Candidates", "GroupingSolution", "TableError", "TaxonomyError", "TaxonomySolution",
    "Transfer", "TransferTable", "ahp", "build_instance", "consistency_ratio", "load_table",
    "minimum_budget", "parse_budgets", "parse_table", "read_candidates", "read_losses",
    "solve_grouping", "solve_instance", "solve_taxonomy", "sweep", "tables_from_losses",
    "win_rates",
]
