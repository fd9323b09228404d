"""Prints the task catalog as a Markdown table: ``python -m taskonomy_tf.tasks``."""

from __future__ import annotations

from taskonomy_tf.tasks import list_tasks

HEADER = """# Task catalog

Generated from `taskonomy_tf/tasks/catalog.py` by `python -m taskonomy_tf.tasks > docs/tasks.md`;
a test checks that it lists every task. Shapes are for 256 px inputs.

| task | title | domain | output | loss | target encoding | mask | cluster | views | other names |
|---|---|---|---|---|---|---|---|---|---|"""


def table() -> str:
    rows = [HEADER]
    for t in list_tasks():
        shape = "x".join(map(str, t.output_shape(256))) or "-"
        title = t.title + (" (source only)" if t.source_only else "")
        rows.append(
            f"| `{t.name}` | {title} | {t.domain or '-'} | {t.output.value} {shape} | {t.loss} "
            f"| {t.decode} | {t.mask or '-'} | {t.cluster_name} | {t.views} "
            f"| {', '.join(t.names[1:])} |"
        )
    return "\n".join(rows)


def main(argv: list[str] | None = None) -> int:
    import argparse

    argparse.ArgumentParser(prog="python -m taskonomy_tf.tasks",
                            description="Print the task catalog as a Markdown table.",
                            ).parse_args(argv)
    print(table())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
