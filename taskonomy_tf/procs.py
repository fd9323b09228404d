"""Worker processes that work from any caller: a script, a notebook, standard input.

Every pool in this package uses the ``spawn`` start method (TensorFlow is not
fork-safe). A spawned worker normally re-runs the caller's main module before
it takes a job (``multiprocessing``'s "safe importing of main module" rule),
so a user script without an ``if __name__ == "__main__":`` guard (as most
Keras examples are written) called the library again inside every worker,
which then failed while bootstrapping (``BrokenProcessPool``); from standard
input the worker could not even find the file to re-run.

The jobs this package sends to a pool are functions of its own modules, so a
worker never needs the caller's main module. ``process_pool`` shows the
workers it starts a main module with neither a file nor a module spec, which
``multiprocessing.spawn`` treats as an interactive session: nothing to
re-import. Only the pool's own calls run while the placeholder is in place.
Standard library only.
"""

from __future__ import annotations

import concurrent.futures as cf
import contextlib
import multiprocessing
import sys
import types
from collections.abc import Callable, Iterator
from typing import Any

_NO_MAIN = types.ModuleType("__main__", "placeholder shown to spawned workers")


@contextlib.contextmanager
def process_pool(workers: int, initializer: Callable[..., Any] | None = None,
                 initargs: tuple = ()) -> Iterator[cf.ProcessPoolExecutor]:
    """A spawn-context ``ProcessPoolExecutor`` whose workers never import the
    caller's main module.

    Submit only functions defined in importable modules (this package's):
    a function of the caller's main module cannot be found by the workers.
    The pool is shut down (waiting for its jobs) when the block ends, and the
    real main module is back in ``sys.modules`` whatever happens.

    Args:
        workers: number of worker processes (>= 1).
        initializer, initargs: run once in each worker before its first job.
    """
    main = sys.modules.get("__main__")
    # workers are started lazily, at submit time: keep the placeholder for
    # the pool's whole life, not just its construction
    sys.modules["__main__"] = _NO_MAIN
    try:
        with cf.ProcessPoolExecutor(max_workers=workers,
                                    mp_context=multiprocessing.get_context("spawn"),
                                    initializer=initializer, initargs=initargs) as pool:
            yield pool
    finally:
        if main is None:
            sys.modules.pop("__main__", None)
        else:
            sys.modules["__main__"] = main
