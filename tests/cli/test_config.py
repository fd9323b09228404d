"""One experiment configuration: files resolve, keys are checked, a run's
resolved configuration reproduces it, and the docs list every key."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from taskonomy_tf.config import (
    ExperimentConfig,
    from_dict,
    load_config,
    override,
    reference_table,
    resolve,
)
from taskonomy_tf.errors import InputError

ROOT = Path(__file__).resolve().parents[2]
EXPERIMENTS = sorted((ROOT / "experiments").glob("*.py"))


def run(*args):
    return subprocess.run([sys.executable, "-m", *args], capture_output=True, text=True,
                          timeout=300)


def test_there_are_the_four_experiments():
    assert {p.stem for p in EXPERIMENTS} >= {"embedded_default", "embedded_quick", "paper_16k",
                                              "paper_1k"}


@pytest.mark.parametrize("path", EXPERIMENTS, ids=lambda p: p.stem)
def test_every_experiment_resolves_with_a_docstring(path):
    config = load_config(path)
    assert isinstance(config, ExperimentConfig)
    doc = path.read_text().split('"""')[1]
    assert "python -m taskonomy_tf." in doc and "Run time" in doc
    # the resolved form is the same configuration
    assert from_dict(json.loads(config.to_json())) == config


@pytest.mark.parametrize("command", [("taskonomy_tf.pipeline",), ("taskonomy_tf.train",),
                                     ("taskonomy_tf.transfer", "grid", "--models", "m",
                                      "--out", "o"),
                                     ("taskonomy_tf.taxonomy", "bootstrap", "--losses", "l"),
                                     ("taskonomy_tf.estimate", "--method", "rsa",
                                      "--models", "m")])
def test_dry_run_of_every_command_and_unknown_keys(command, tmp_path):
    paper = str(ROOT / "experiments" / "paper_16k.py")
    out = run(*command, "--config", paper, "--set", "data.path=/data/x", "seed=3",
              "--dry-run")
    assert out.returncode == 0, out.stderr[-2000:]
    printed = json.loads(out.stdout)
    experiment = printed.get("experiment", printed)
    assert experiment["name"] == "paper_16k" and experiment["seed"] == 3
    assert experiment["data"]["path"] == "/data/x"
    bad = run(*command, "--config", paper, "--set", "networks.stepz=3", "--dry-run")
    assert bad.returncode == 2
    assert bad.stderr.startswith("error: --set networks.stepz: unknown key 'stepz'")
    assert bad.stderr.count("\n") == 1


def test_the_train_command_trains_the_experiments_tasks(tmp_path):
    out = run("taskonomy_tf.train", "--config", str(ROOT / "experiments" / "paper_1k.py"),
              "--dry-run")
    assert out.returncode == 0, out.stderr[-2000:]
    d = json.loads(out.stdout)
    assert [c["task"] for c in d["train"]] == list(d["experiment"]["tasks"])
    assert {c["encoder"] for c in d["train"]} == {"resnet50"}
    assert {c["image_size"] for c in d["train"]} == {256}


def test_overrides_are_typed_and_checked():
    c = override(ExperimentConfig(), ["networks.steps=7", "tasks=edges, normals",
                                      "taxonomy.budget=none", "transfers.learning_rate=3e-4"])
    assert c.networks.steps == 7 and c.tasks == ("edges", "normals")
    assert c.taxonomy.budget is None and c.transfers.learning_rate == 3e-4
    for bad, message in (("networks.steps=x", "expected int"),
                         ("nets.steps=1", "unknown section 'nets'"),
                         ("steps=1", "unknown key"), ("networks.steps", "section.key=value")):
        with pytest.raises(InputError, match=message):
            override(ExperimentConfig(), [bad])
    with pytest.raises(InputError, match="no such file"):
        resolve("missing.py", [])


def test_the_docs_list_every_key():
    text = (ROOT / "docs" / "configuration.md").read_text()
    assert reference_table() in text
