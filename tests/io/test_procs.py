"""Stopping a caller stops its worker pool: Ctrl-C, SIGTERM, and a killed parent."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest

# A caller (no main guard) whose two workers each start a 120 s job; it
# prints their process ids, then waits for the jobs.
CALLER = """
import faulthandler, os, time
faulthandler.dump_traceback_later(55)  # where it hangs, should it outlive the test's wait
from taskonomy_tf.procs import process_pool
with process_pool(2{options}) as pool:
    pids = {{pool.submit(os.getpid).result() for _ in range(8)}}
    while len(pids) < 2:  # make sure both workers exist
        pids |= {{f.result() for f in [pool.submit(os.getpid) for _ in range(4)]}}
    jobs = [pool.submit(time.sleep, 120) for _ in range(4)]
    print(*sorted(pids), flush=True)
    jobs[0].result()
"""


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:  # a zombie (exited, not yet reaped by init) counts as gone
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(") ")[1][0] != "Z"
    except FileNotFoundError:
        return False


def _default_sigint():
    # A test run started in the background (``cmd &`` in a script) ignores
    # SIGINT, and so would its children: the caller is given the default, as
    # a terminal's Ctrl-C finds it.
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _start(options: str, stderr):
    # stderr to a file: the workers and the fork server inherit it, and a pipe
    # they keep open would block reading it after the caller is gone
    proc = subprocess.Popen([sys.executable, "-c", CALLER.format(options=options)],
                            stdout=subprocess.PIPE, stderr=stderr, text=True,
                            preexec_fn=_default_sigint)
    pids = [int(p) for p in proc.stdout.readline().split()]
    assert len(pids) == 2 and all(map(_alive, pids)), _tail(stderr)
    time.sleep(1)  # the sleeping jobs have started
    return proc, pids


def _tail(f, chars: int = 4000) -> str:
    f.seek(0)
    return f.read()[-chars:]


def _gone_within(pids, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if not any(map(_alive, pids)):
            return True
        time.sleep(0.2)
    return False


@pytest.mark.skipif(sys.platform != "linux", reason="process states from /proc")
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM, signal.SIGKILL])
@pytest.mark.parametrize("options", ["", ", preload=('json',)"],
                         ids=["spawned", "forked"])
def test_stopping_the_caller_stops_its_workers(sig, options, tmp_path):
    with open(tmp_path / "stderr", "w+") as stderr:
        proc, pids = _start(options, stderr)
        try:
            proc.send_signal(sig)  # to the caller only, as a scheduler or kill(1) does
            try:
                proc.wait(timeout=60)  # not the 120 s its jobs would take
            except subprocess.TimeoutExpired:
                pytest.fail(f"the caller still ran 60 s after {sig.name}; its threads at "
                            f"55 s:\n{_tail(stderr)}")
            assert _gone_within(pids, 10), f"workers {pids} still run after {sig.name}"
            if sig == signal.SIGTERM:
                assert proc.returncode == 143
        finally:
            proc.kill()
            proc.wait()
            for pid in pids:
                if _alive(pid):
                    os.kill(pid, signal.SIGKILL)


FRESH = """
import os
from taskonomy_tf.procs import process_pool
with process_pool(2, fresh=True) as pool:
    futures = [pool.submit(os.getpid) for _ in range(12)]  # a backlog, as a grid queues
    print(len({f.result() for f in futures}))
"""


@pytest.mark.skipif(sys.version_info < (3, 11), reason="max_tasks_per_child is Python 3.11's")
def test_fresh_workers_run_each_job_in_its_own_process():
    """Every queued job gets a new process (none is reused), and the pool
    drains its backlog rather than stalling when workers exit."""
    out = subprocess.run([sys.executable, "-c", FRESH], capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.split() == ["12"]


FORKED = """
import os
from taskonomy_tf.procs import process_pool
with process_pool(2, fresh=True, preload=("json.tool",)) as pool:
    jobs = [(pool.submit(os.getpid), pool.submit(os.getppid),
             pool.submit(eval, "'json.tool' in __import__('sys').modules")) for _ in range(6)]
    pids, parents, preloaded = zip(*[[f.result() for f in job] for job in jobs])
print(len(set(pids)), len(set(parents)), os.getpid() in parents, all(preloaded))
"""


@pytest.mark.skipif(sys.platform == "win32" or sys.version_info < (3, 11),
                    reason="forkserver; max_tasks_per_child")
def test_preloaded_workers_are_forks_of_one_server_that_imported_the_modules():
    out = subprocess.run([sys.executable, "-c", FORKED], capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    # a fresh worker per job (6 asked their pid), one parent (the server,
    # not the caller), the module there
    assert out.stdout.split() == ["6", "1", "False", "True"]
