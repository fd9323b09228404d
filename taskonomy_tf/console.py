"""A quiet console: TensorFlow's C++ start-up log kept off the terminal.

TensorFlow 2.16+ logs through abseil before abseil is initialised, so
``TF_CPP_MIN_LOG_LEVEL`` no longer silences its start-up lines on a CPU
machine ("oneDNN custom operations are on", "Could not find cuda drivers",
"failed call to cuInit", ...): every command, and every worker process,
printed them. ``quiet_tensorflow()`` imports TensorFlow, probes the GPUs
(where the CUDA lines come from) and runs one int32 transpose (oneDNN's
notice about its int32 fallback comes at the first) with the process's standard error (file
descriptor 2) pointed at a temporary file, then restores it and prints back
whatever was not a TensorFlow log line, so a real error at import still
shows; TensorFlow's Python logger is set to errors only. ``--verbose`` (or
``TASKONOMY_TF_VERBOSE=1``, inherited by worker processes) leaves everything
as TensorFlow prints it.
"""

from __future__ import annotations

import contextlib
import os
import re
import sys
import tempfile

VERBOSE_ENV = "TASKONOMY_TF_VERBOSE"
# abseil / TensorFlow C++ log lines: "I0000 00:00:17... file.cc:12] ...",
# "2025-09-17 14:44:05.157831: I external/...", and abseil's own notice
TF_LOG_LINE = re.compile(
    r"^(?:[IWEF]\d{4} \d\d:\d\d:\d+\.\d+ +\d+ \S+:\d+\]"
    r"|\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d+: [IWEF] "
    r"|WARNING: All log messages before absl::InitializeLog\(\) is called"
    r"|To enable the following instructions: .* rebuild TensorFlow)")


def set_verbose(verbose: bool) -> None:
    """Records the choice for this process and the worker processes it starts."""
    if verbose:
        os.environ[VERBOSE_ENV] = "1"


def is_tensorflow_log(line: str) -> bool:
    """Whether one line of standard error comes from TensorFlow's C++ logging."""
    return bool(TF_LOG_LINE.match(line))


def _threads(tf, threads: int | None) -> None:
    if threads:  # before the first op: TensorFlow fixes its pools then
        tf.config.threading.set_intra_op_parallelism_threads(threads)
        tf.config.threading.set_inter_op_parallelism_threads(threads)


# TensorFlow imported by ``quiet_import`` in this process or in the fork
# server it was forked from, and not yet started (no op run): the next
# ``quiet_tensorflow`` starts it, with its thread counts
_imported_unstarted = False


def quiet_import() -> None:
    """Imports TensorFlow without its C++ start-up log and without starting
    its runtime (no op, no device listed): what a fork server may do before
    forking workers (``procs.process_pool(preload=...)``), whose
    ``quiet_tensorflow`` then starts it. A no-op once TensorFlow is imported."""
    global _imported_unstarted
    if "tensorflow" in sys.modules:
        return
    with _stderr_filtered():
        import tensorflow  # noqa: F401
    _imported_unstarted = True


def quiet_tensorflow(threads: int | None = None) -> None:
    """Imports TensorFlow (and lists the GPUs) without its C++ start-up log on
    standard error; a no-op once TensorFlow is imported (except after
    ``quiet_import``: then it starts it), or when verbose.

    Args:
        threads: if given, at most this many threads per op pool.
    """
    global _imported_unstarted
    if "tensorflow" in sys.modules and not _imported_unstarted:
        return
    _imported_unstarted = False
    if os.environ.get(VERBOSE_ENV) == "1":
        import tensorflow as tf

        _threads(tf, threads)
        return
    with _stderr_filtered():
        import tensorflow as tf

        _threads(tf, threads)
        tf.config.list_physical_devices("GPU")
        # oneDNN announces its int32 fallback at the first int32 transpose
        tf.transpose(tf.zeros((2, 1), tf.int32))
        # its Python logger's warnings (retracing notices from readouts
        # built per target) are for TensorFlow developers
        tf.get_logger().setLevel("ERROR")


@contextlib.contextmanager
def _stderr_filtered():
    """The block's standard error (file descriptor 2, C++ included) captured,
    then printed back without TensorFlow's log lines; unfiltered when verbose."""
    if os.environ.get(VERBOSE_ENV) == "1":
        yield
        return
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")  # what older releases still honour
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as captured:
        os.dup2(captured.fileno(), 2)
        try:
            yield
        finally:  # also when the import fails: its own message must show
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            captured.seek(0)
            text = captured.read().decode("utf-8", "replace")
            kept = [line for line in text.splitlines()
                    if line.strip() and not is_tensorflow_log(line)]
            if kept:
                print("\n".join(kept), file=sys.stderr)


def quiet_worker(threads: int | None = None) -> None:
    """Initializer of a worker process: ``quiet_tensorflow(threads)``. It lives
    in this light module so that a worker runs it before anything imports
    TensorFlow."""
    quiet_tensorflow(threads)
