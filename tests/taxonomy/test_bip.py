"""The dictionary program against brute force, and its errors."""

from __future__ import annotations

import itertools
import json
import math

import numpy as np
import pytest

from taskonomy_tf.taxonomy import (
    TableError,
    TaxonomyError,
    Transfer,
    TransferTable,
    load_table,
    parse_table,
    solve_taxonomy,
)


def clip_sqrt(v):
    return min(max(math.sqrt(v), 1e-5), 1.0)


def brute_force(table, budget, max_order, sup_cost, tr_cost, importance):
    """Independent reference: every set of roots within budget; each other
    target takes its best transfer from the roots."""
    targets = sorted(table.targets)
    sources = sorted({s for r in table.records for s in r.sources} - {"self", "pixels"})
    tasks = sorted(set(targets) | set(sources))
    best = None
    for k in range(len(tasks) + 1):
        for roots in itertools.combinations(tasks, k):
            roots = set(roots)
            cost = sum(sup_cost.get(t, 1.0) for t in roots)
            value = 0.0
            for t in targets:
                if t in roots:
                    s = table.get(["self"], t)
                    value += importance.get(t, 1.0) * clip_sqrt(s) if s is not None else 0.0
                    continue
                options = [importance.get(t, 1.0) * clip_sqrt(r.value) for r in table.for_target(t)
                           if r.order <= max_order and t not in r.sources
                           and set(r.sources) <= roots and not {"self", "pixels"} & set(r.sources)]
                if not options:
                    break
                value += max(options)
                cost += tr_cost.get(t, 0.0)
            else:
                if cost <= budget + 1e-9 and (best is None or value > best):
                    best = value
    return best


def random_table(rng, n_targets, n_source_only, max_order=3):
    targets = [f"t{i}" for i in range(n_targets)]
    extra = [f"s{i}" for i in range(n_source_only)]
    pool = targets + extra
    records = []
    for t in targets:
        records.append(Transfer(("self",), t, float(rng.uniform(0.05, 0.5))))
        for order in range(1, max_order + 1):
            combos = [c for c in itertools.combinations(pool, order) if t not in c]
            for c in rng.permutation(len(combos))[: rng.integers(1, 5)]:
                records.append(Transfer(combos[c], t, float(rng.uniform(0, 0.3))))
    return TransferTable(records, targets)


@pytest.mark.parametrize("seed", range(40))
def test_program_equals_brute_force(seed):
    rng = np.random.default_rng(seed)
    table = random_table(rng, int(rng.integers(2, 5)), int(rng.integers(0, 3)))
    budget = float(rng.integers(1, 4)) + (0.5 if seed % 4 == 0 else 0.0)
    max_order = int(rng.integers(1, 4))
    tasks = sorted(set(table.targets) | set(table.sources) - {"self"})
    sup = {t: float(rng.choice([0.5, 1.0, 1.5])) for t in tasks} if seed % 3 == 0 else {}
    trc = {t: 0.25 for t in table.targets} if seed % 5 == 0 else {}
    imp = {t: float(rng.uniform(0.5, 2)) for t in table.targets} if seed % 2 else {}
    expected = brute_force(table, budget, max_order, sup, trc, imp)
    if expected is None:
        with pytest.raises(TaxonomyError, match="cannot cover|no taxonomy"):
            solve_taxonomy(table, budget, max_order, sup, trc, imp)
        return
    s = solve_taxonomy(table, budget, max_order, sup, trc, imp)
    assert s.optimal and s.objective == pytest.approx(expected, abs=1e-9)
    assert s.bound == pytest.approx(s.objective, abs=1e-6)
    assert s.cost <= budget + 1e-9
    for target, sources in s.choice.items():  # a consistent dictionary
        assert sources == ["<root>"] and target in s.roots or set(sources) <= set(s.roots)


def test_unused_tasks_are_neither_sources_nor_targets():
    table = TransferTable([Transfer(("a",), "b", 0.9), Transfer(("c",), "b", 0.4),
                           Transfer(("self",), "a", 0.2), Transfer(("b",), "a", 0.1)], ["a", "b"])
    s = solve_taxonomy(table, 1, unused=["a"])
    assert s.choice == {"b": ["c"]}  # root b (no self record) would be worth 0
    assert "a" not in s.roots and "a" not in s.choice


def test_infeasible_budget_names_the_smallest_feasible_one():
    table = TransferTable([Transfer(("self",), "a", 0.5), Transfer(("self",), "b", 0.5)],
                          ["a", "b"])
    with pytest.raises(TaxonomyError, match="smallest budget that can is 2"):
        solve_taxonomy(table, 1)


def test_published_16k_affinities(results_dir):
    table = load_table(results_dir / "affinities_16k.json")
    s = solve_taxonomy(table, 6, max_order=5)
    assert s.optimal and s.bound == pytest.approx(s.objective, rel=1e-9)
    assert len(s.roots) == 6 and len(s.choice) == 22
    # self-consistent objective: recompute from the chosen records
    total = 0.0
    for target, sources in s.choice.items():
        key = ["self"] if sources == ["<root>"] else sources
        total += clip_sqrt(table.get(key, target))
    assert total == pytest.approx(s.objective, rel=1e-9)


@pytest.mark.parametrize("record,message", [
    ({"sources": ["a"], "target": "b"}, "missing field(s) value"),
    ({"sources": ["a"], "target": "b", "value": -0.1}, "outside"),
    ({"sources": ["a"], "target": "b", "value": float("nan")}, "finite"),
    ({"sources": [], "target": "b", "value": 0.1}, "non-empty list"),
    ({"sources": ["a"], "target": "", "value": 0.1}, "'target'"),
])
def test_malformed_records_get_one_line_naming_the_record(record, message):
    with pytest.raises(TableError) as e:
        parse_table({"records": [{"sources": ["x"], "target": "b", "value": 0.5}, record]},
                    "f.json")
    msg = str(e.value)
    assert message in msg and "record 1" in msg and "\n" not in msg


def test_not_json_and_targets_without_candidates(tmp_path):
    p = tmp_path / "a.json"
    p.write_text("{oops")
    with pytest.raises(TableError, match="not JSON"):
        load_table(p)
    p.write_text(json.dumps({"targets": ["b", "c"],
                             "records": [{"sources": ["a"], "target": "b", "value": 0.5}]}))
    with pytest.raises(TableError, match="target 'c' has no candidates"):
        load_table(p)


def test_random_baseline_is_never_supervised_unless_allowed(tmp_path, capsys):
    """``random`` transfers best into both targets; supervising it alone would
    cover both at budget 1. By default it is only a reference."""
    recs = [Transfer(("self",), "a", 0.5), Transfer(("self",), "b", 0.5),
            Transfer(("random",), "a", 0.9), Transfer(("random",), "b", 0.9),
            Transfer(("b",), "a", 0.3), Transfer(("a",), "b", 0.2)]
    table = TransferTable(recs, ["a", "b"], "affinities")
    s = solve_taxonomy(table, 1, 1)
    assert "random" not in s.roots and s.roots in (["a"], ["b"])
    assert solve_taxonomy(table, 1, 1, allow_random=True).roots == ["random"]
    from taskonomy_tf.taxonomy.__main__ import main
    from taskonomy_tf.taxonomy.sweep import sweep

    assert all("random" not in r["roots"] for r in sweep(table, [1, 2], 1))
    path = tmp_path / "aff.json"
    table.save(path)
    assert main(["solve", "--affinities", str(path), "--budget", "1"]) == 0
    assert "supervised: random" not in capsys.readouterr().out
    assert main(["solve", "--affinities", str(path), "--budget", "1", "--allow-random"]) == 0
    assert "supervised: random" in capsys.readouterr().out
