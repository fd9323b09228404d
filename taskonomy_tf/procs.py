"""Worker processes that work from any caller: a script, a notebook, standard input.

Every pool in this package starts clean workers: ``spawn`` (TensorFlow is
not fork-safe once it runs), or, given modules to ``preload``, forks of a
``forkserver`` that imported them once and ran nothing (a worker then starts
in milliseconds instead of importing TensorFlow, about 4 s). A spawned
worker normally re-runs the caller's main module before it takes a job
(``multiprocessing``'s "safe importing of main module" rule), so a user
script without an ``if __name__ == "__main__":`` guard (as most Keras
examples are written) called the library again inside every worker,
which then failed while bootstrapping (``BrokenProcessPool``); from standard
input the worker could not even find the file to re-run.

The jobs this package sends to a pool are functions of its own modules, so a
worker never needs the caller's main module. ``process_pool`` shows the
workers it starts a main module with neither a file nor a module spec, which
``multiprocessing.spawn`` treats as an interactive session: nothing to
re-import. Only the pool's own calls run while the placeholder is in place.

Stopping the caller stops its workers: an exception in the block (Ctrl-C, a
job's error) cancels the queued jobs and terminates the running ones instead
of waiting for them; SIGTERM (a job scheduler's stop) is turned into that
exception while the pool lives; and a worker whose parent is gone (killed;
for a fork server's worker, the server, which exits with the caller) exits
by itself within a second. Standard library only.
"""

from __future__ import annotations

import concurrent.futures as cf
import contextlib
import multiprocessing
import os
import signal
import sys
import threading
import time
import types
from collections.abc import Callable, Iterator, Sequence
from typing import Any

_NO_MAIN = types.ModuleType("__main__", "placeholder shown to spawned workers")


@contextlib.contextmanager
def process_pool(workers: int, initializer: Callable[..., Any] | None = None,
                 initargs: tuple = (), fresh: bool = False,
                 preload: Sequence[str] = ()) -> Iterator[cf.ProcessPoolExecutor]:
    """A ``ProcessPoolExecutor`` of clean workers (spawned, or forked from a
    server that only imported ``preload``) that never import the caller's
    main module.

    Submit only functions defined in importable modules (this package's):
    a function of the caller's main module cannot be found by the workers.
    When the block ends the pool waits for its jobs; when it raises (or
    SIGTERM arrives, raised as ``Terminated``), queued jobs are cancelled and
    running workers terminated. The real main module is back in
    ``sys.modules`` whatever happens.

    Args:
        workers: number of worker processes (>= 1).
        initializer, initargs: run once in each worker before its first job.
        fresh: each job in a new worker process, which exits after it
            (``max_tasks_per_child=1``; Python >= 3.11, ignored before): a
            worker then holds only its own job's memory. A process keeps
            what its allocators grew to (TensorFlow's and malloc's), so
            long-lived workers of memory-hungry jobs add up their peaks.
            Costs a worker's start per job (see ``preload``).
        preload: modules (importable names) to import once, in a fork
            server, before any worker starts; the workers are then its forks
            and start with those modules imported, their memory shared until
            written. The modules must only import (no threads, no
            TensorFlow op). Where there is no ``forkserver`` (Windows), or
            when empty, workers are spawned. The server is the process's
            one and lives until the caller exits: the first pool's
            ``preload`` is the one it has.
    """
    main = sys.modules.get("__main__")
    before = set(multiprocessing.active_children())
    # workers are started lazily, at submit time: keep the placeholder for
    # the pool's whole life, not just its construction
    sys.modules["__main__"] = _NO_MAIN
    previous = _sigterm_raises()
    # one job per worker is safe from CPython's gh-115634 (a pool with a
    # larger max_tasks_per_child can stop replacing its workers)
    per_child = {"max_tasks_per_child": 1} if fresh and sys.version_info >= (3, 11) else {}
    if preload and "forkserver" in multiprocessing.get_all_start_methods():
        context = multiprocessing.get_context("forkserver")
        context.set_forkserver_preload(list(preload))
    else:
        context = multiprocessing.get_context("spawn")
    pool = cf.ProcessPoolExecutor(max_workers=workers, mp_context=context,
                                  initializer=_start_worker,
                                  initargs=(os.getpid(), initializer, initargs), **per_child)
    try:
        yield pool
    except BaseException:
        # stop now: queued jobs cancelled, running ones terminated
        pool.shutdown(wait=False, cancel_futures=True)
        children = set(multiprocessing.active_children()) - before
        for p in children:
            p.terminate()
        for p in children:
            p.join(timeout=10)
        raise
    else:
        pool.shutdown(wait=True)
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)
        if main is None:
            sys.modules.pop("__main__", None)
        else:
            sys.modules["__main__"] = main


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, another user's
        return True
    return True


class Terminated(SystemExit):
    """SIGTERM arrived while a pool was running (exit status 143)."""


def _raise_terminated(signum, frame):
    raise Terminated(128 + signal.SIGTERM)


def _sigterm_raises():
    """SIGTERM raises ``Terminated`` from here on (main thread only: elsewhere
    Python cannot install handlers); returns the handler it replaced."""
    if threading.current_thread() is not threading.main_thread():
        return None
    return signal.signal(signal.SIGTERM, _raise_terminated)


def _start_worker(caller: int, initializer, initargs) -> None:
    """A pool worker's start: exit when ``caller`` is gone (a spawned
    worker's parent; a fork server's worker watches its server, which exits
    with the caller, and the caller), then the pool's own initializer."""
    parent = os.getppid()

    def watch():
        while os.getppid() == parent and (parent == caller or _alive(caller)):
            time.sleep(0.5)
        os._exit(1)

    threading.Thread(target=watch, daemon=True, name="parent-watch").start()
    if initializer is not None:
        initializer(*initargs)
