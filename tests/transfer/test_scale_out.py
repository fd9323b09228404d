"""The grid under real interruptions and on a real (local) Ray instance."""

from __future__ import annotations

import csv
import os
import signal
import subprocess
import sys
import time
from collections import Counter

import numpy as np
import pytest

TASKS = "normals,edges,depth_zbuffer"


def _grid_args(models, data, out):
    return [sys.executable, "-m", "taskonomy_tf.transfer", "grid", "--tasks", TASKS,
            "--models", str(models), "--data", str(data), "--out", str(out),
            "--transfer-images", "8", "--steps", "2", "--max-order", "2", "--seeds", "2"]


def _table(path):
    with open(path) as f:
        rows = list(csv.reader(f))
    return rows[0], [r[:5] for r in rows[1:]], np.array([float(r[5]) for r in rows[1:]])


def _assert_same_table(a, b):
    head_a, keys_a, loss_a = _table(a)
    head_b, keys_b, loss_b = _table(b)
    assert head_a == head_b and keys_a == keys_b
    np.testing.assert_allclose(loss_a, loss_b, rtol=1e-4, atol=1e-6)


@pytest.fixture(scope="module")
def uninterrupted(grid_run):
    return grid_run[1].table  # the same grid, run in one go in this process


@pytest.mark.slow
def test_killed_grid_resumes_to_the_same_table(models, split_records, uninterrupted, tmp_path):
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    proc = subprocess.Popen(_grid_args(models, split_records, tmp_path), env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 300
    while time.time() < deadline and len(list((tmp_path / "jobs").glob("*.json"))) < 2:
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    finished_before = {p.stem for p in (tmp_path / "jobs").glob("*.json")}
    assert 2 <= len(finished_before) < 6 and not (tmp_path / "losses.csv").exists()
    done = subprocess.run(_grid_args(models, split_records, tmp_path) + ["--workers", "2"],
                          env=env, capture_output=True, text=True)  # resumed in 2 processes
    assert done.returncode == 0, done.stderr[-2000:]
    _assert_same_table(tmp_path / "losses.csv", uninterrupted)
    log = (tmp_path / "grid.log").read_text().splitlines()
    finished = Counter(line.split()[-1] for line in log if line.split()[2] == "finished")
    assert set(finished) >= finished_before and max(finished.values()) == 1  # none run twice
    assert not list((tmp_path / "jobs").glob(".*tmp*"))  # nothing half-written survives use


@pytest.mark.slow
def test_ray_backend_gives_the_same_table(models, split_records, uninterrupted, tmp_path):
    pytest.importorskip("ray")
    from taskonomy_tf.taxonomy.ahp import ahp_scores
    from taskonomy_tf.transfer import run_grid

    result = run_grid(TASKS.split(","), models, split_records, tmp_path, max_order=2,
                      n_images=8, steps=2, seeds=[0, 1], backend="ray", progress=False,
                      score=ahp_scores)  # as the command ranks
    assert result.pending == 0
    _assert_same_table(result.table, uninterrupted)
    pids = {line.split()[1] for line in (tmp_path / "grid.log").read_text().splitlines()}
    assert str(os.getpid()) not in pids  # the jobs ran in Ray workers, not here


def test_ray_jobs_share_a_node_memory_as_the_pool_does():
    from taskonomy_tf.transfer.schedule import ray_job_budget

    nodes = [{"Alive": True, "Resources": {"CPU": 4.0, "memory": 16e9}},
             {"Alive": True, "Resources": {"CPU": 2.0, "memory": 16e9}},
             {"Alive": False, "Resources": {"CPU": 1.0, "memory": 1e9}},  # gone: ignored
             {"Alive": True, "Resources": {"CPU": 8.0}}]  # no memory reported
    assert ray_job_budget(nodes) == 2e9  # 16 GB / (2 x 4 jobs) on the tighter node
    assert ray_job_budget([]) is None


def test_the_memory_budget_reads_the_container_limit(tmp_path, monkeypatch):
    from taskonomy_tf.transfer import readout

    v2, v1 = tmp_path / "memory.max", tmp_path / "memory.limit_in_bytes"
    v2.write_text("1073741824\n")
    assert readout.cgroup_limit((str(v2), str(v1))) == 1 << 30
    v2.write_text("max\n")
    assert readout.cgroup_limit((str(v2), str(v1))) is None
    assert readout.cgroup_limit((str(tmp_path / "none"), str(v1))) is None
    v1.write_text("536870912")
    assert readout.cgroup_limit((str(tmp_path / "none"), str(v1))) == 1 << 29
    monkeypatch.setattr(readout.cgroup_limit, "__defaults__", ((str(v1),),))
    assert readout.physical_memory() == 1 << 29  # below this machine's memory
    assert readout.memory_budget(workers=2) == 1 << 27


def test_the_budget_counts_the_job_arrays_before_the_heads():
    import numpy as np

    from taskonomy_tf.transfer.readout import (
        SCORE_BYTES,
        ReadoutArrays,
        arrays_bytes,
        heads_per_program,
    )

    def arrays(n):
        return ReadoutArrays(np.zeros((n, 1, 4, 4, 8), np.float32),
                             np.zeros((n, 8, 8, 3), np.float32), np.zeros((n, 8, 8), np.float32))

    per_image = (128 + 192 + 64) * 4
    fixed = arrays_bytes(arrays(100), arrays(10))
    assert fixed == 3 * 100 * per_image + 10 * per_image + SCORE_BYTES
    assert heads_per_program(fixed + 10 * 1000, fixed, 1000) == 10
    assert heads_per_program(fixed // 2, fixed, 1000) == 1  # always at least one head
