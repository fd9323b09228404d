"""The project's error types for bad input (standard library only).

A command reports a ``UserError`` as one line (``error: ...``, exit status
2) and lets every other exception through with its traceback: a Keras shape
error is a ``ValueError`` too, and it is a bug to fix, not a message to read.
The two subclasses keep the built-in types callers already catch:

* ``InputError`` (a ``ValueError``): a setting, value or file that is not
  what was expected;
* ``UnknownNameError`` (a ``KeyError``): a task, domain or registry name
  that does not exist; its message is shown without ``KeyError``'s quotes.

The stage-specific errors (``TrainingError``, ``TaxonomyError``, ...) derive
from ``UserError`` as well.
"""

from __future__ import annotations


class UserError(Exception):
    """Bad input or a state the user can fix; one-line message."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


class InputError(UserError, ValueError):
    """A setting, value or file that is not what was expected."""


class UnknownNameError(UserError, KeyError):
    """An unknown task, domain or registry name."""
