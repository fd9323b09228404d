"""Which tasks a folder of records can supply: ``--tasks all`` and its skips.

A task is available when every split it is trained or measured on holds
its domain (and the RGB every task reads), and, for the tasks labelled
from view tuples, when the records give at least one tuple. A task that is
not available is skipped with a one-line reason, never a crash deep inside
training.
"""

from __future__ import annotations

from taskonomy_tf.tasks import TaskSpec, get_task, list_tasks

ALL = "all"


def expand(names) -> list[str]:
    """Task names with ``all`` (alone, or as one of several) replaced by every
    catalog task that has labels (the untrained ``random`` encoder is a
    baseline every grid adds, not a task to train), in catalog order; other
    names are canonicalised (aliases allowed)."""
    names = [names] if isinstance(names, str) else list(names)
    out: list[str] = []
    for n in names:
        if n == ALL:
            out += [t.name for t in list_tasks() if t.domain is not None]
        else:
            out.append(get_task(n).name)
    return list(dict.fromkeys(out))


def _reason(spec: TaskSpec, held: dict[str, list[str]], files: dict[str, list[str]]
            ) -> str | None:
    if spec.domain is None:
        return "no labels: a baseline source, not a task to train"
    for split, domains in held.items():
        if "rgb" not in domains:
            return f"the {split!r} records hold no rgb"
        if spec.domain not in domains:
            return f"needs domain {spec.domain!r}, missing from the {split!r} records"
    if spec.uses_point_info:
        from taskonomy_tf.data.views import has_tuples

        for split, shards in files.items():
            if not has_tuples(shards, spec):
                return (f"the {split!r} records give no {spec.views}-view tuples "
                        f"({spec.decode})")
    return None


def available_tasks(path, names, splits=("train", "test")) -> tuple[list[str], dict[str, str]]:
    """The tasks of ``names`` (``expand``) that the records in ``path``
    supply on every split of ``splits``, and the others with the reason.

    Returns:
        (available task names in order, {skipped task: one-line reason}).

    Raises:
        FileNotFoundError: a split without shards.
    """
    from taskonomy_tf.data import records  # TensorFlow: imported when needed

    files = {s: records.find_shards(path, s) for s in splits}
    held = {s: records.domains_in(f) for s, f in files.items()}
    kept, skipped = [], {}
    for name in expand(names):
        why = _reason(get_task(name), held, files)
        if why:
            skipped[name] = why
        else:
            kept.append(name)
    return kept, skipped
