"""The commands' one-line error report (shared by every ``python -m`` command)."""

from __future__ import annotations

import sys


def report_error(error: Exception) -> int:
    """Prints ``error: <message>`` on one line to stderr; returns exit status 2.

    A ``KeyError``'s message is shown without the quotes ``str()`` adds.
    """
    msg = error.args[0] if isinstance(error, KeyError) and error.args else error
    print(f"error: {msg}", file=sys.stderr)
    return 2
