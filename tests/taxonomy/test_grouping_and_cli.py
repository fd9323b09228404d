"""Grouping against brute force; losses -> affinities; the CLI."""

from __future__ import annotations

import csv
import itertools
import json

import numpy as np
import pytest

from taskonomy_tf.taxonomy import (
    Candidates,
    TaxonomyError,
    load_table,
    solve_grouping,
    tables_from_losses,
)
from taskonomy_tf.taxonomy.__main__ import main
from taskonomy_tf.taxonomy.table import Transfer, TransferTable


def brute_group(c: Candidates, budget):
    best = None
    for k in range(1, len(c.costs) + 1):
        for rows in itertools.combinations(range(len(c.costs)), k):
            if sum(c.costs[i] for i in rows) > budget + 1e-9:
                continue
            total = 0.0
            for t in c.tasks:
                served = [c.losses[i][t] for i in rows if t in c.losses[i]]
                if not served:
                    break
                total += min(served)
            else:
                best = total if best is None else min(best, total)
    return best


@pytest.mark.parametrize("seed", range(30))
def test_grouping_equals_brute_force(seed):
    rng = np.random.default_rng(seed)
    tasks = [f"t{i}" for i in range(int(rng.integers(2, 5)))]
    n = int(rng.integers(2, 8))
    losses = []
    for _ in range(n):
        served = rng.random(len(tasks)) < 0.6
        losses.append({t: float(rng.uniform(0.1, 1)) for t, s in zip(tasks, served) if s})
    for t in tasks:  # every task has at least one network
        if not any(t in row for row in losses):
            losses[int(rng.integers(n))][t] = float(rng.uniform(0.1, 1))
    c = Candidates(tasks, [float(rng.choice([0.5, 1, 1.5, 2])) for _ in range(n)], losses,
                   [f"n{i}" for i in range(n)])
    budget = float(rng.integers(1, 5))
    expected = brute_group(c, budget)
    if expected is None:
        with pytest.raises(TaxonomyError, match="cannot buy"):
            solve_grouping(c, budget)
        return
    s = solve_grouping(c, budget)
    assert s.status == "OPTIMAL" and s.objective == pytest.approx(expected, abs=1e-9)
    assert sum(c.costs[i] for i in s.chosen) <= budget + 1e-9


def write_candidates(path, rows, tasks):
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["name", "cost", *tasks])
        for r in rows:
            w.writerow(r)


def test_group_cli_writes_json(tmp_path):
    p = tmp_path / "c.csv"
    # all-in-one is cheap but worse; two specialists together are best
    write_candidates(p, [["all", 1, 0.5, 0.5], ["a", 1, 0.1, ""], ["b", 1, "", 0.2]], ["a", "b"])
    out = tmp_path / "g.json"
    assert main(["group", "--candidates", str(p), "--budget", "2", "--json", str(out)]) == 0
    g = json.loads(out.read_text())
    assert g["status"] == "OPTIMAL" and g["chosen"] == [1, 2]
    assert g["objective"] == pytest.approx(0.3)
    assert main(["group", "--candidates", str(p), "--budget", "1", "--json", str(out)]) == 0
    assert json.loads(out.read_text())["chosen"] == [0]


def test_group_bad_csv_is_one_line(tmp_path, capsys):
    p = tmp_path / "c.csv"
    write_candidates(p, [["x", "cheap", 0.5]], ["a"])
    assert main(["group", "--candidates", str(p), "--budget", "2"]) == 2
    err = capsys.readouterr().err
    assert "line 2, column cost" in err and err.count("\n") == 1
    write_candidates(p, [["x", 1, ""]], ["a"])
    assert main(["group", "--candidates", str(p), "--budget", "2"]) == 2
    assert "task 'a' has no candidate network" in capsys.readouterr().err


def write_losses(path, rows):
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["candidate", "sources", "target", "image", "loss"])
        w.writerows(rows)


def test_losses_to_affinities_quality_and_gain(tmp_path):
    rng = np.random.default_rng(0)
    images = [f"img{i}" for i in range(40)]
    quality = {"self": 0.1, "a": 0.2, "a+b": 0.15, "pixels": 0.6, "random": 0.9}
    rows = [[("transfer" if "+" in s or s == "a" else s), s, "t", im,
             quality[s] + rng.normal(0, 0.01)] for s in quality for im in images]
    path = tmp_path / "losses.csv"
    write_losses(path, rows)
    tables = tables_from_losses(path)
    aff = tables["affinities"]
    assert {tuple(r.sources) for r in aff.records} == {("self",), ("a",), ("a", "b"), ("random",)}
    assert sum(r.value for r in aff.records) == pytest.approx(1.0)
    order = sorted(aff.records, key=lambda r: -r.value)
    assert [r.sources for r in order] == [("self",), ("a", "b"), ("a",), ("random",)]
    assert tables["wins_vs_task"].get(["self"], "t") == 0.5
    assert tables["wins_vs_task"].get(["a"], "t") == pytest.approx(0.0)  # always worse than self
    assert tables["wins_vs_pixels"].get(["a", "b"], "t") == pytest.approx(1.0)
    out = tmp_path / "tax"
    assert main(["affinities", "--losses", str(path), "--out", str(out)]) == 0
    assert load_table(out / "affinities.json").get(["b", "a"], "t") == pytest.approx(
        aff.get(["a", "b"], "t"))
    assert main(["solve", "--affinities", str(out / "affinities.json"), "--budget", "1",
                 "--json", str(tmp_path / "s.json")]) == 0
    s = json.loads((tmp_path / "s.json").read_text())
    assert s["status"] == "OPTIMAL" and s["roots"] and s["choice"]["t"]


def test_losses_must_cover_the_same_images(tmp_path, capsys):
    path = tmp_path / "l.csv"
    write_losses(path, [["self", "self", "t", "i1", 0.1], ["self", "self", "t", "i2", 0.1],
                        ["transfer", "a", "t", "i1", 0.2]])
    assert main(["affinities", "--losses", str(path), "--out", str(tmp_path / "o")]) == 2
    assert "same images" in capsys.readouterr().err


def test_solve_and_sweep_cli_on_the_published_files(results_dir, tmp_path, capsys):
    aff = str(results_dir / "affinities_16k.json")
    assert main(["solve", "--affinities", aff, "--budget", "6", "--json",
                 str(tmp_path / "s.json")]) == 0
    s = json.loads((tmp_path / "s.json").read_text())
    assert {"objective", "status", "roots", "choice"} <= set(s) and s["status"] == "OPTIMAL"
    assert all(v == ["<root>"] for k, v in s["choice"].items() if k in s["roots"])
    assert main(["sweep", "--affinities", aff, "--budgets", "0-3", "--wins-task",
                 str(results_dir / "wins_vs_task_16k.json"), "--wins-pixels",
                 str(results_dir / "wins_vs_pixels_16k.json"), "--json",
                 str(tmp_path / "w.json")]) == 0
    rows = json.loads((tmp_path / "w.json").read_text())
    assert rows[0]["status"] == "INFEASIBLE"
    objs = [r["objective"] for r in rows[1:]]
    assert objs == sorted(objs) and all(0 < r["quality"] < r["gain"] < 1 for r in rows[1:])
    assert main(["solve", "--affinities", aff, "--budget", "6", "--cost", "rgb2sfnorm=x"]) == 2
    assert "TASK=NUMBER" in capsys.readouterr().err


def test_sweep_reports_a_time_out_as_such(results_dir):
    """A budget that has dictionaries but is cut off by the time limit is not
    INFEASIBLE (it was, whatever the solver said)."""
    from taskonomy_tf.taxonomy import load_table, sweep

    table = load_table(results_dir / "affinities_16k.json")
    (row,) = sweep(table, [4], 3, time_limit=0.001)  # ~45k candidates, 1 ms
    assert row["status"] in ("NOT_SOLVED", "FEASIBLE") and row["status"] != "INFEASIBLE"
    assert "time limit" in row.get("message", "time limit")
    (row,) = sweep(table, [0.5], 1)  # too small for 22 targets: truly infeasible
    assert row["status"] == "INFEASIBLE" and "smallest budget" in row["message"]


def test_losses_are_matched_by_image_id_not_count(tmp_path, capsys):
    """Two candidates with as many images but different ones are refused,
    naming an image; the same images in another row order are fine."""
    path = tmp_path / "l.csv"
    write_losses(path, [["self", "self", "t", "b/1/1", 0.1], ["self", "self", "t", "b/1/2", 0.1],
                        ["transfer", "a", "t", "b/1/1", 0.2], ["transfer", "a", "t", "b/9/9", 0.2]])
    assert main(["affinities", "--losses", str(path), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert "same images" in err and ("'b/1/2'" in err or "'b/9/9'" in err)
    write_losses(path, [["transfer", "a", "t", "b/1/2", 0.2], ["self", "self", "t", "b/1/1", 0.1],
                        ["self", "self", "t", "b/1/2", 0.3], ["transfer", "a", "t", "b/1/1", 0.05]])
    assert main(["affinities", "--losses", str(path), "--out", str(tmp_path / "o")]) == 0


def test_affinities_complete_a_prefiltered_grid_from_a_readout_estimate(tmp_path, capsys):
    """Target t trained only source a; the estimate's tournament knows b and c
    as well: --complete-from adds them, on a's scale through the a/self ratio."""
    rng = np.random.default_rng(1)
    images = [f"b{i % 4}/{i}" for i in range(60)]
    quality = {"self": 0.1, "a": 0.3, "pixels": 0.6, "random": 0.9}
    rows = [[("transfer" if s == "a" else s), s, "t", im, quality[s] + rng.normal(0, 0.2)]
            for s in quality for im in images]
    path = tmp_path / "losses.csv"
    write_losses(path, rows)
    estimate = tmp_path / "estimate.json"
    TransferTable([Transfer((s,), "t", v) for s, v in (("a", 1.0), ("b", 0.2), ("c", 0.1))],
                  ["t"], "estimate_readout",
                  {"tournament": {"t": {"self": 0.5, "a": 0.3, "b": 0.15, "c": 0.05}}}
                  ).save(estimate)
    out = tmp_path / "tax"
    assert main(["affinities", "--losses", str(path), "--out", str(out),
                 "--complete-from", str(estimate)]) == 0
    aff = load_table(out / "affinities.json")
    plain = tables_from_losses(path)["affinities"]
    assert aff.meta["estimated"] == {"t": ["b", "c"]}
    assert sum(r.value for r in aff.records) == pytest.approx(1.0)
    # b and c sit below a by the estimate's ratios, as far as the trained a/self allow
    assert aff.get(["a"], "t") > aff.get(["b"], "t") > aff.get(["c"], "t")
    assert aff.get(["b"], "t") / aff.get(["c"], "t") == pytest.approx(3.0, rel=0.05)
    assert aff.get(["self"], "t") > aff.get(["a"], "t") > aff.get(["random"], "t")
    assert {r.sources for r in plain.records} == {("self",), ("a",), ("random",)}

    TransferTable([Transfer(("a",), "t", 1.0)], ["t"], "estimate_rsa").save(estimate)
    assert main(["affinities", "--losses", str(path), "--out", str(out),
                 "--complete-from", str(estimate)]) == 2
    assert "no tournament" in capsys.readouterr().err
