"""taskonomy_tf: Taskonomy-style task transfer learning with Keras 3.

``import taskonomy_tf`` is light: TensorFlow, OR-Tools and seaborn load only
in the subpackages that need them. Public API::

    from taskonomy_tf import get_task, list_tasks, make_dataset, decode_raw
"""

from __future__ import annotations

import os
from typing import Any

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from taskonomy_tf.tasks import TaskSpec, get_task, list_tasks, register_task  # noqa: E402
from taskonomy_tf.version import __version__  # noqa: E402

__all__ = [
    "TaskSpec",
    "__version__",
    "decode_raw",
    "get_task",
    "list_tasks",
    "make_dataset",
    "register_task",
]


def __getattr__(name: str) -> Any:
    if name in ("make_dataset", "decode_raw"):
        from taskonomy_tf import data

        return getattr(data, name)
    raise AttributeError(f"module 'taskonomy_tf' has no attribute {name!r}")
