"""The pipeline end to end on a tiny configuration, and its resume."""

from __future__ import annotations

import json

import pytest

from taskonomy_tf.config import ExperimentConfig, override, quick_experiment
from taskonomy_tf.pipeline import run_pipeline
from taskonomy_tf.viz import display_name


@pytest.mark.slow
def test_a_run_replays_from_its_experiment_json_and_resumes_after_a_failed_stage(
        split_records, tmp_path, monkeypatch, capsys):
    """Run the pipeline from flags (two transfer workers, TensorFlow's log
    hidden), then through the command from its own experiment.json with the
    figures stage broken: one line, the finished stages kept; again: only
    figures and report run, and the per-image losses are the first run's
    byte for byte. Other settings are refused in that folder; more workers
    (how a run executes, not what it computes) continue it. (One test:
    each pipeline run costs a minute.)"""
    import os
    import subprocess
    import sys

    import taskonomy_tf.pipeline.run as run_module
    from taskonomy_tf.config import load_config
    from taskonomy_tf.console import is_tensorflow_log
    from taskonomy_tf.pipeline.__main__ import main

    flags = ["--quick", "--data", str(split_records), "--tasks", "normals,edges",
             "--image-size", "32", "--train-steps", "2", "--transfer-images", "8",
             "--transfer-steps", "2", "--allow-weak-networks"]
    env = {k: v for k, v in os.environ.items() if k != "TASKONOMY_TF_VERBOSE"}
    first = subprocess.run([sys.executable, "-m", "taskonomy_tf.pipeline", *flags, "--workers",
                            "2", "--out", str(tmp_path / "a")],
                           capture_output=True, text=True, timeout=900, env=env)
    assert first.returncode == 0, first.stderr[-2000:]
    lines = first.stderr.replace("\r", "\n").splitlines()
    assert not [line for line in lines if is_tensorflow_log(line)]
    resolved = tmp_path / "a" / "experiment.json"
    out = tmp_path / "b"

    real = run_module.STAGES

    def broken(ctx):
        raise FileNotFoundError("fonts/DejaVuSans.ttf: no such file")

    monkeypatch.setattr(run_module, "STAGES",
                        tuple((n, broken if n == "figures" else f) for n, f in real))
    capsys.readouterr()
    assert main(["--config", str(resolved), "--out", str(out)]) == 2
    err = capsys.readouterr().err.replace("\r", "\n").splitlines()  # after the progress bars
    assert [line for line in err if line.startswith("error")] == [
        "error: stage 'figures' failed: fonts/DejaVuSans.ttf: no such file"]
    done = {p.stem for p in (out / "stages").glob("*.json")}
    assert done == {"data", "train", "transfers", "taxonomy"}
    model = out / "models" / "normals" / "model.keras"
    stamp = model.stat().st_mtime_ns
    table = (out / "transfers" / "losses.csv").read_bytes()

    calls = []

    def counted(name, fn):
        return lambda ctx: calls.append(name) or fn(ctx)

    monkeypatch.setattr(run_module, "STAGES", tuple((n, counted(n, f)) for n, f in real))
    assert main(["--config", str(resolved), "--out", str(out)]) == 0
    assert calls == ["figures", "report"]  # the finished stages were not redone
    assert model.stat().st_mtime_ns == stamp
    assert (out / "transfers" / "losses.csv").read_bytes() == table
    assert table == (tmp_path / "a" / "transfers" / "losses.csv").read_bytes()
    assert (out / "experiment.json").read_text() == resolved.read_text()

    report = (out / "report.md").read_text()
    for heading in ("## Task affinities", "## Dictionaries per budget", "## What ran"):
        assert heading in report
    # each target's best source and its share of the bootstrap's resamples, as counted
    boot = json.loads((out / "taxonomy" / "bootstrap.json").read_text())
    assert boot["best_source"] and "### The best source of each target" in report
    for target, shares in boot["best_source"].items():
        assert sum(shares.values()) >= 1.0 - 1e-9  # every resample has a best source
        named = ", ".join(f"{display_name(s)} {v:.0%}" for s, v in shares.items())
        assert any(line.startswith(f"| {display_name(target)} |") and line.endswith(
            f"| {named} |") for line in report.splitlines()), target
    figures = json.loads((out / "stages" / "figures.json").read_text())["figures"]
    for name, path in figures.items():
        assert (out / path).stat().st_size > 1000, name
        assert f"]({path})" in report
    assert "<table>" in (out / "report.html").read_text()
    sweep = json.loads((out / "taxonomy" / "sweep.json").read_text())
    assert [r["budget"] for r in sweep] == [1.0, 2.0]
    experiment = load_config(resolved)
    with pytest.raises(ValueError, match="other settings"):
        run_pipeline(override(experiment, ["networks.steps=3"]), out, progress=False)
    # how a run executes is not what it computes: more workers continue it
    before = json.loads((out / "stages" / "transfers.json").read_text())
    again = run_pipeline(override(experiment, ["transfers.workers=3", "name=renamed"]), out,
                         progress=False)
    assert again.results["transfers"] == before


def test_pipeline_command_rejects_bad_input(tmp_path, capsys):
    from taskonomy_tf.pipeline.__main__ import main

    assert main(["--tasks", "normals,nosuchtask", "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "nosuchtask" in err[0]
    assert main(["--tasks", "normals", "--out", str(tmp_path / "o")]) == 2
    assert "at least 2 tasks" in capsys.readouterr().err
    raw = tmp_path / "raw"
    raw.mkdir()
    assert main(["--data", str(raw), "--tasks", "normals,edges", "--out", str(tmp_path / "p")]) == 2
    assert "--split-csv" in capsys.readouterr().err


def test_tasks_all_keeps_what_the_data_supplies_and_reports_the_rest(split_records, tmp_path):
    from taskonomy_tf.pipeline.stages import Context, stage_data

    ctx = Context(override(ExperimentConfig(), [f"data.path={split_records}", "tasks=all"]),
                  tmp_path, False)
    out = stage_data(ctx)
    ctx.results["data"] = out
    # the fixture holds every domain: all 25 tasks with labels, none skipped
    assert len(out["tasks"]) == 25 and out["skipped"] == {} and ctx.tasks == tuple(out["tasks"])
    assert ctx.budget == 8  # a third of the tasks


def test_transfer_grid_all_takes_the_trained_networks(models, split_records, capsys):
    from taskonomy_tf.transfer.schedule import tasks_with_networks

    kept = tasks_with_networks(["all"], split_records, models, ("train", "test"))
    assert kept == ["edges", "depth_zbuffer", "normals"]  # catalog order
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 22 and all(line.startswith("skipped ") for line in lines)
    assert any(line.startswith("skipped reshading: no finished network") for line in lines)


def test_network_win_rates_count_images_and_ties():
    import numpy as np

    from taskonomy_tf.pipeline.measures import network_win_rates

    candidates = [("constant",), ("random",), ("self",)]
    m = np.array([[[1.0, 1.0, 1.0, 1.0]] * 2,            # constant (repeated replicate)
                  [[0.5, 2.0, 2.0, 0.1], [0.5, 2.0, 0.0, 0.1]],  # random: mean 0.5 2 1 0.1
                  [[0.9, 1.0, 0.5, 0.2]] * 2])           # self
    wins = network_win_rates({"t": (candidates, ["a", "b", "c", "d"], ["0", "1"], m)})
    assert wins == {"t": {"constant": (1 + 0.5 + 1 + 1) / 4, "random": (0 + 1 + 1 + 0) / 4}}


def test_oracle_agreement_by_hand():
    import numpy as np

    from taskonomy_tf.pipeline.measures import oracle_agreement

    candidates = [("a",), ("b",), ("c",), ("oracle:a",), ("oracle:b",), ("oracle:c",)]
    means = [1.0, 2.0, 3.0, 0.5, 1.0, 6.0]  # networks a < b < c, labels a < b < c
    m = np.array(means)[:, None, None] * np.ones((6, 1, 4))
    out = oracle_agreement({"t": (candidates, list("wxyz"), [""], m)})
    assert out["t"]["spearman"] == pytest.approx(1.0)
    assert out["t"]["network_over_labels"] == {"a": 2.0, "b": 2.0, "c": 0.5}


@pytest.mark.slow
def test_a_prefiltered_card_runs_end_to_end_with_a_self_supervised_source(tmp_path,
                                                                          monkeypatch):
    """A dataset card the package never saw goes through every stage by its
    label names, autoencoding (which needs only the card's images) joins as a
    source, two transfer worker processes know the card's tasks from the
    records alone, and the report grades the planted truth. With transfers.prefilter=2
    each target trains exactly its two best sources by the default estimator
    (the closed-form readout), and the baselines."""
    import csv

    from taskonomy_tf.synth.planted import PlantedConfig, write_planted

    monkeypatch.setenv("TASKONOMY_TF_CACHE", str(tmp_path / "cache"))
    card = tmp_path / "card"
    write_planted(card, PlantedConfig(samples=120, size=32, families=("disk", "light"), seed=3))
    tasks = ("disk_two", "disk_full", "light_full", "autoencoding")
    cfg = override(quick_experiment(), [
        f"data.path={card}", "data.image_size=32", "networks.steps=2", "networks.batch_size=4",
        "networks.allow_weak=true", "transfers.images=24", "transfers.steps=2",
        "transfers.workers=2", "transfers.prefilter=2", f"tasks={','.join(tasks)}"])
    out = tmp_path / "run"
    ctx = run_pipeline(cfg, out, progress=False)

    kept = ctx.results["transfers"]["prefilter"]["kept"]
    estimates = json.loads((out / "transfers" / "estimate.json").read_text())
    assert estimates["measure"] == "estimate_readout"
    assert {tuple(r["sources"]) for r in estimates["records"]
            if r["target"] == "disk_full"} == {("disk_two",), ("light_full",), ("autoencoding",)}
    assert set(kept) == set(tasks)
    with open(out / "transfers" / "losses.csv") as f:
        rows = list(csv.DictReader(f))
    for target, sources in kept.items():
        assert len(sources) == 2
        trained = {r["sources"] for r in rows if r["target"] == target and
                   r["candidate"] == "transfer"}
        assert trained == set(sources)
        assert {r["candidate"] for r in rows if r["target"] == target} >= {
            "self", "random", "pixels", "constant"}
    table = json.loads((out / "taxonomy" / "affinities.json").read_text())
    assert set(table["targets"]) == set(tasks)
    # each target's untrained source is completed from the readout's tournament
    # (transfers.complete): whole rows, the completed cells listed and reported
    tournament = estimates["tournament"]
    assert table["estimated"] == {t: sorted(set(tournament[t]) - set(kept[t]) - {"self"})
                                  for t in tasks if t in tournament}
    for t in tournament:
        row = {tuple(r["sources"]) for r in table["records"] if r["target"] == t}
        assert {(s,) for s in tournament[t]} <= row
        assert sum(r["value"] for r in table["records"] if r["target"] == t) == pytest.approx(1)
    report = (out / "report.md").read_text()
    assert "Pre-filtered grid: 4 targets trained only their 2 best sources" in report
    assert "are the estimator's" in report
    assert "## Recovery of the planted taxonomy" in report
    assert "disk full" in report and "dataset card" in report

    # transfers.mode=estimate on the same networks: no readout, the taxonomy
    # solved on the estimates, every page saying so
    from taskonomy_tf.pipeline.stages import STAGES, Context
    from taskonomy_tf.taxonomy import load_table, solve_taxonomy

    est = tmp_path / "estimated"
    est.mkdir()
    (est / "models").symlink_to(out / "models")
    ctx = Context(override(cfg, ["transfers.mode=estimate", "transfers.estimator=rsa"]), est,
                  False, {k: ctx.results[k] for k in ("data", "train")})
    for name, fn in STAGES[2:]:
        ctx.results[name] = {**fn(ctx), "seconds": 0.0}  # as run_pipeline records it
    assert not (est / "transfers" / "losses.csv").exists()
    estimate = load_table(est / "transfers" / "estimate.json")
    assert estimate.measure == "estimate_rsa" and set(estimate.targets) == set(tasks)
    chosen = json.loads((est / "taxonomy" / "taxonomy.json").read_text())
    assert chosen["roots"] == solve_taxonomy(estimate, ctx.budget, 1).roots
    report = (est / "report.md").read_text()
    assert report.startswith("# Task taxonomy report: ESTIMATES")
    assert report.count("ESTIMATES, not trained transfers") == 2
    assert "agreed with mean Spearman 0.68 / 0.65 / 0.70" in report
    assert all((est / p).stat().st_size > 1000 for p in ctx.results["figures"]["figures"].values())
    with pytest.raises(ValueError, match="transfers.mode 'guess': expected one of train, "):
        STAGES[2][1](Context(override(cfg, ["transfers.mode=guess"]), est, False, ctx.results))

    # with the closed-form readout, whose targets here are all dense maps, the
    # taxonomy is solved on its tournament: sources and self on the trained
    # table's footing, written beside the estimates
    probe = tmp_path / "probe"
    probe.mkdir()
    (probe / "models").symlink_to(out / "models")
    pctx = Context(override(cfg, ["transfers.mode=estimate", "transfers.estimator=readout"]),
                   probe, False, {k: ctx.results[k] for k in ("data", "train")})
    for name, fn in STAGES[2:]:
        pctx.results[name] = {**fn(pctx), "seconds": 0.0}
    assert pctx.results["taxonomy"]["tournament"] is True
    aff = load_table(probe / "taxonomy" / "affinities.json")
    tournament = load_table(probe / "transfers" / "estimate.json").meta["tournament"]
    for t in tasks:
        row = {r.sources[0]: r.value for r in aff.for_target(t)}
        assert row == pytest.approx(tournament[t]) and "self" in row
        assert sum(row.values()) == pytest.approx(1.0)
    chosen = json.loads((probe / "taxonomy" / "taxonomy.json").read_text())
    assert chosen["roots"] == solve_taxonomy(aff, pctx.budget, 1).roots
    assert "on the trained table's footing" in (probe / "report.md").read_text()


def _changed(value):
    """A value of ``value``'s type other than it (strings and None: a name)."""
    if isinstance(value, bool):
        return not value
    if isinstance(value, (int, float)):
        return value + 1
    return "changed"


def test_every_command_trains_the_experiments_networks_section(split_records, tmp_path,
                                                               monkeypatch):
    """One configuration object: with every ``networks`` key set away from
    its default, the pipeline's train stage and the train command hand the
    trainer that very section and the data section's image size, so a key
    added to the section reaches both without being copied anywhere."""
    import dataclasses

    import taskonomy_tf.training as training
    from taskonomy_tf.pipeline.stages import Context, stage_train
    from taskonomy_tf.train import main

    networks = ExperimentConfig().networks
    changed = dataclasses.replace(networks, **{f.name: _changed(getattr(networks, f.name))
                                               for f in dataclasses.fields(networks)})
    exp = dataclasses.replace(ExperimentConfig(tasks=("edges", "normals")), networks=changed,
                              seed=5)
    exp = override(exp, ["data.image_size=40"])
    seen = []

    class Caught(Exception):
        pass

    def fake(config, workdir, resume=False, callbacks=None):
        seen.append(config)
        raise Caught

    monkeypatch.setattr(training, "train_and_evaluate", fake)
    ctx = Context(exp, tmp_path / "run", False,
                  {"data": {"records": str(split_records), "tasks": ["edges", "normals"]}})
    with pytest.raises(Caught):
        stage_train(ctx)
    path = tmp_path / "experiment.json"
    path.write_text(exp.to_json())
    with pytest.raises(Caught):
        main(["--config", str(path), "--task", "edges", "--workdir", str(tmp_path / "w")])
    assert len(seen) == 2
    for config in seen:
        assert config.networks == changed and config.seed == 5
        assert config.data.image_size == 40 and config.task == "edges"
        assert config.steps == changed.steps
    assert seen[0].data.path == str(split_records)  # the pipeline's converted records


@pytest.mark.slow
def test_networks_seeds_trains_a_grid_per_network_set_and_resamples_them(tmp_path,
                                                                        monkeypatch):
    """networks.seeds=2: a second set of networks with its own seed and its
    own grid; the taxonomy averages both grids' losses and the bootstrap
    draws the two sets, which the report says."""
    import csv

    from taskonomy_tf.synth.planted import PlantedConfig, write_planted
    from taskonomy_tf.taxonomy.losses import tables_from_losses

    monkeypatch.setenv("TASKONOMY_TF_CACHE", str(tmp_path / "cache"))
    card = tmp_path / "card"
    write_planted(card, PlantedConfig(samples=80, size=32, families=("disk", "light"), seed=4))
    cfg = override(quick_experiment(), [
        f"data.path={card}", "data.image_size=32", "networks.steps=2", "networks.batch_size=4",
        "networks.allow_weak=true", "networks.seeds=2", "transfers.images=16",
        "transfers.steps=2", "transfers.seeds=2", "taxonomy.resamples=10", "seed=3",
        "tasks=disk_two,disk_full"])
    out = tmp_path / "run"
    ctx = run_pipeline(cfg, out, progress=False)

    seeds = [json.loads((out / folder / "disk_full" / "config.json").read_text())["seed"]
             for folder in ("models", "models.1")]
    assert seeds == [3, 1_003_001]
    assert ctx.results["transfers"]["losses"] == "transfers/losses_networks.csv"

    def rows(path):
        with open(path) as f:
            return [(r["candidate"], r["sources"], r["target"], r["image"], r["seed"],
                     r["loss"]) for r in csv.DictReader(f)]

    merged = rows(out / "transfers" / "losses_networks.csv")
    for k, folder in enumerate(("transfers", "transfers.1")):
        own = [(*r[:4], f"{k}:{r[4]}" if r[4] else str(k), r[5])
               for r in rows(out / folder / "losses.csv")]
        assert [r for r in merged if r[4].split(":")[0] == str(k)] == own
    self_losses = {k: [r[5] for r in merged if r[0] == "self" and r[4] == k] for k in "01"}
    assert self_losses["0"] != self_losses["1"]  # two networks, not one trained twice
    boot = json.loads((out / "taxonomy" / "bootstrap.json").read_text())
    assert boot["networks"] == 2 and boot["replicates"] == 4
    aff = json.loads((out / "taxonomy" / "affinities.json").read_text())["records"]
    both = tables_from_losses(out / "transfers" / "losses_networks.csv")["affinities"]
    assert {(tuple(r["sources"]), r["target"]): r["value"] for r in aff} == {
        (r.sources, r.target): r.value for r in both.records}
    report = (out / "report.md").read_text()
    assert "2 sets of task networks" in report and "cover retraining the networks" in report


def test_networks_that_did_not_learn_are_left_out_of_the_comparison_with_the_paper(tmp_path):
    """Ours is the paper's 16k table on seven tasks, except that one source,
    whose network "did not learn", ranks first into every target: with it
    the rankings disagree; left out (as the train stage's ``weak`` says),
    ours agrees with the paper exactly, and the report names it."""
    from taskonomy_tf.pipeline.report import _agreement_blocks
    from taskonomy_tf.pipeline.stages import Context, published_agreement
    from taskonomy_tf.published import published_path
    from taskonomy_tf.taxonomy import load_table
    from taskonomy_tf.taxonomy.compare import restrict
    from taskonomy_tf.taxonomy.table import Transfer, TransferTable

    tasks = ["autoencoding", "depth_zbuffer", "edges", "keypoints2d", "normals", "reshading",
             "segment_unsup2d"]
    paper = restrict(load_table(published_path("16k")), tasks)
    scrambled = TransferTable([Transfer(r.sources, r.target, 0.9 if r.sources == (
        "segment_unsup2d",) else r.value) for r in paper.records], paper.targets)
    cfg = override(ExperimentConfig(), ["report.reference=none", f"tasks={','.join(tasks)}"])

    def agreement(weak):
        ctx = Context(cfg, tmp_path, progress=False, results={"train": {"weak": weak}})
        assert published_agreement(ctx, scrambled, 1) == "taxonomy/agreement.json"
        return json.loads((tmp_path / "taxonomy" / "agreement.json").read_text())

    kept = agreement({})
    assert "segment_unsup2d" in kept["tasks"] and kept["mean_spearman"] < 0.9
    left = agreement({"segment_unsup2d": 1.01})
    assert "segment_unsup2d" not in left["tasks"] and len(left["targets"]) == 6
    assert left["mean_spearman"] == pytest.approx(1.0)
    assert left["left_out"] == {"segment_unsup2d": 1.01}
    text = " ".join(str(b[1]) for b in _agreement_blocks(left, str))
    assert "Left out of this comparison" in text and "segment_unsup2d (validation loss 1.01" in text
