"""Images to a task taxonomy in one call: data -> task networks -> transfers
-> win rates and AHP -> budget sweep -> figures -> report."""

from taskonomy_tf.config import DEFAULT_TASKS
from taskonomy_tf.pipeline.run import PipelineError, run_pipeline

__all__ = ["DEFAULT_TASKS", "PipelineError", "run_pipeline"]
