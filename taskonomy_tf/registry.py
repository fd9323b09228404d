"""A small generic name -> object registry with loud errors.

Instances live next to what they hold (decode rules, target encodings,
losses, ...). Add an entry with the ``register`` decorator::

    TARGETS = Registry("target encodings")

    @TARGETS.register("log_depth")
    def log_depth(values, valid): ...
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import Any

from taskonomy_tf.errors import UnknownNameError


class Registry:
    """Maps snake_case names to objects; duplicates and unknown names raise.

    Args:
        kind: what the registry holds, used in error messages.
    """

    def __init__(self, kind: str):
        self.kind = kind
        self._items: dict[str, Any] = {}

    def register(self, name: str) -> Callable[[Any], Any]:
        def decorator(obj: Any) -> Any:
            if name in self._items:
                raise ValueError(f"{self.kind}: {name!r} is already registered")
            self._items[name] = obj
            return obj

        return decorator

    def get(self, name: str) -> Any:
        try:
            return self._items[name]
        except KeyError:
            raise UnknownNameError(
                f"unknown {self.kind} {name!r}; known: {', '.join(self.names())}"
            ) from None

    def names(self) -> list[str]:
        return sorted(self._items)

    def __contains__(self, name: object) -> bool:
        return name in self._items

    @contextlib.contextmanager
    def temporary(self, name: str, obj: Any) -> Iterator[Any]:
        """Registers ``obj`` under ``name`` for the duration of a block."""
        self.register(name)(obj)
        try:
            yield obj
        finally:
            del self._items[name]
