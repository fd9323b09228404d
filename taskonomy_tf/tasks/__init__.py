"""The task catalog: ``get_task``, ``list_tasks``, ``register_task``.

No TensorFlow, no Keras: plain data, importable anywhere.

Example:
    >>> from taskonomy_tf.tasks import get_task
    >>> get_task("rgb2sfnorm").name
    'normals'
    >>> get_task("edges").domain
    'edge_texture'
"""

from __future__ import annotations

from taskonomy_tf.errors import InputError, UnknownNameError
from taskonomy_tf.tasks.catalog import CATALOG
from taskonomy_tf.tasks.spec import Cluster, OutputKind, TaskSpec

__all__ = [
    "Cluster",
    "OutputKind",
    "TaskSpec",
    "get_task",
    "list_tasks",
    "register_task",
    "unregister_task",
]

_TASKS: dict[str, TaskSpec] = {}
_NAMES: dict[str, str] = {}  # every accepted name -> canonical name


def _keys(spec: TaskSpec) -> list[str]:
    return [n.lower() for n in spec.names]


def _domain_key(spec: TaskSpec) -> str | None:
    """The domain folder resolves to a task only when no other task reads it."""
    if spec.domain is None:
        return None
    sharing = [t for t in _TASKS.values() if t.domain == spec.domain]
    return spec.domain if len(sharing) == 1 else None


def _rebuild_names() -> None:
    _NAMES.clear()
    for spec in _TASKS.values():
        for key in _keys(spec):
            _NAMES[key] = spec.name
    for spec in _TASKS.values():
        domain = _domain_key(spec)
        if domain is not None:
            _NAMES.setdefault(domain.lower(), spec.name)


def register_task(spec: TaskSpec) -> TaskSpec:
    """Adds a user task to the catalog.

    Raises:
        ValueError: if the name or one of its aliases is already taken.
    """
    if not isinstance(spec, TaskSpec):
        raise TypeError(f"register_task expects a TaskSpec, got {type(spec).__name__}")
    clash = [k for k in _keys(spec) if k in _NAMES]
    if spec.name in _TASKS or clash:
        raise InputError(
            f"task {spec.name!r}: name(s) {clash or [spec.name]} already used "
            f"by {sorted({_NAMES.get(k, spec.name) for k in clash or [spec.name]})}"
        )
    _TASKS[spec.name] = spec
    _rebuild_names()
    return spec


def unregister_task(name: str) -> None:
    """Removes a user-registered task (tests, notebooks)."""
    spec = get_task(name)
    del _TASKS[spec.name]
    _rebuild_names()


def get_task(name: str | TaskSpec) -> TaskSpec:
    """Returns the spec for a canonical name, domain folder or alias.

    Raises:
        KeyError: for an unknown name; the message lists the valid ones.
    """
    if isinstance(name, TaskSpec):
        return name
    key = str(name).strip().lower().replace("-", "_")
    if key in _NAMES:
        return _TASKS[_NAMES[key]]
    raise UnknownNameError(
        f"unknown task {name!r}; valid tasks: {', '.join(sorted(_TASKS))} "
        "(aliases such as rgb2sfnorm, edge2d, segmentsemantic_rb also work)"
    )


def list_tasks(
    cluster: Cluster | str | None = None,
    output: OutputKind | str | None = None,
    source_only: bool | None = None,
    views: int | None = None,
) -> list[TaskSpec]:
    """Returns the specs in catalog order, optionally filtered."""
    out = []
    for spec in _TASKS.values():
        if cluster is not None and spec.cluster_name != getattr(cluster, "value", cluster):
            continue
        if output is not None and spec.output is not OutputKind(output):
            continue
        if source_only is not None and spec.source_only != source_only:
            continue
        if views is not None and spec.views != views:
            continue
        out.append(spec)
    return out


for _spec in CATALOG:
    register_task(_spec)
