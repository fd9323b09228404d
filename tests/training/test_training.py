"""Training runs: CLI, resume, NaN, saved encoder, user script, strategies."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import keras
import numpy as np
import pytest

from taskonomy_tf.train import main
from taskonomy_tf.training import TrainConfig, TrainingError, load_encoder, train_and_evaluate

ROOT = Path(__file__).resolve().parents[2]


def config(data, **kw) -> TrainConfig:
    base = dict(task="edges", data=str(data), image_size=32, batch_size=4, steps=4,
                steps_per_execution=1, verbose=0, cache=False)
    return TrainConfig.of(**{**base, **kw})


class Interrupt(keras.callbacks.Callback):
    """Simulates a crash after ``n`` training batches."""

    def __init__(self, n):
        super().__init__()
        self.n, self.seen = n, 0

    def on_train_batch_end(self, batch, logs=None):
        self.seen += 1
        if self.seen == self.n:
            raise KeyboardInterrupt("simulated crash")


def test_cli_trains_and_writes_the_workdir(fake_records, tmp_path, capsys):
    code = main(["--task", "edge2d", "--data", str(fake_records), "--workdir", str(tmp_path),
                 "--image-size", "32", "--batch-size", "4", "--steps", "4",
                 "--set", "verbose=0", "cache=false"])
    assert code == 0
    for name in ("config.json", "metrics.json", "model.keras", "encoder.keras"):
        assert (tmp_path / name).exists(), name
    assert list((tmp_path / "checkpoints").glob("*.weights.h5"))
    assert list((tmp_path / "logs").rglob("events.out.tfevents*"))
    cfg = json.loads((tmp_path / "config.json").read_text())
    assert cfg["task"] == "edges" and cfg["precision"] == "float32"
    m = json.loads((tmp_path / "metrics.json").read_text())
    assert m["epochs"][-1]["step"] == 4


def test_cli_errors_are_one_line(fake_records, tmp_path, capsys):
    assert main(["--task", "edgez"]) == 2
    err = capsys.readouterr().err
    assert "valid tasks" in err and err.count("\n") == 1
    assert main(["--task", "edges", "--data", str(fake_records), "--set", "batch_size=x"]) == 2
    assert "--set batch_size: expected int" in capsys.readouterr().err
    assert main(["--task", "edges", "--data", str(fake_records), "--set", "colour=1"]) == 2
    assert "unknown key" in capsys.readouterr().err


def test_missing_domain_names_what_is_there(fake_raw, tmp_path, capsys):
    from tfrecords_tools.convert import convert

    convert(str(fake_raw), str(tmp_path / "rec"), domains=["normal"], progress=False)
    assert main(["--task", "depth_zbuffer", "--data", str(tmp_path / "rec"), "--workdir",
                 str(tmp_path / "w")]) == 2
    err = capsys.readouterr().err
    assert "needs domain 'depth_zbuffer'" in err and "domains present: normal, rgb" in err


def test_resume_continues_at_the_right_step(fake_records, tmp_path):
    cfg = config(fake_records, steps=8, steps_per_epoch=4)
    with pytest.raises(KeyboardInterrupt):
        train_and_evaluate(cfg, tmp_path, callbacks=[Interrupt(5)])  # crash in epoch 2
    assert (tmp_path / "backup").exists() and not (tmp_path / "model.keras").exists()
    first_epoch = json.loads((tmp_path / "metrics.json").read_text())["epochs"]
    assert [e["step"] for e in first_epoch] == [4]
    with pytest.raises(TrainingError, match="--resume"):
        train_and_evaluate(cfg, tmp_path)  # never silently overwrites
    result = train_and_evaluate(cfg, tmp_path, resume=True)
    assert result["steps"] == 8  # not 8 more: continued from the backup at step 4
    assert [e["step"] for e in result["epochs"]] == [4, 8]
    assert not (tmp_path / "backup").exists() and (tmp_path / "model.keras").exists()


def test_resume_on_a_finished_run_reports_it(fake_records, tmp_path, capsys):
    args = ["--task", "edges", "--data", str(fake_records), "--workdir", str(tmp_path),
            "--image-size", "32", "--batch-size", "4", "--steps", "4",
            "--set", "verbose=0", "cache=false", "tensorboard=false"]
    assert main(args) == 0
    first = capsys.readouterr().out
    assert main(args + ["--resume"]) == 0  # was a KeyError traceback
    assert capsys.readouterr().out == first  # the same result, nothing retrained
    assert main(args) == 2  # never silently overwrites a finished run
    assert "holds a finished run" in capsys.readouterr().err


# A training run that SIGKILLs itself at one point: during an epoch, after the
# encoder's or the model's file is written under its temporary name (before
# the rename), or after the completion stamp is written (before the backup is
# removed). ``--resume`` must then finish with loadable files.
KILLED = """
import os, signal, sys
from pathlib import Path
os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
import keras
import tfrecords_tools.writer
from taskonomy_tf.training import TrainConfig, train_and_evaluate
from taskonomy_tf.training import loop

workdir, point = sys.argv[1], sys.argv[2]
die = lambda: os.kill(os.getpid(), signal.SIGKILL)

class KillMidEpoch(keras.callbacks.Callback):
    def on_train_batch_end(self, batch, logs=None):
        if int(self.model.optimizer.iterations.numpy()) == 6:
            die()

if point in ("encoder", "model"):
    save = keras.Model.save
    def save_then_die(self, path, *args, **kwargs):
        save(self, path, *args, **kwargs)
        if Path(path).name.startswith("." + point):
            Path(path).write_bytes(Path(path).read_bytes()[:100])  # truncated, too
            die()
    keras.Model.save = save_then_die
if point == "stamp":
    write = loop.write_json_atomic
    def write_then_die(path, obj, **kwargs):
        write(path, obj, **kwargs)
        if Path(path).name == loop.DONE:
            die()
    loop.write_json_atomic = write_then_die

cfg = TrainConfig.of(task="edges", data={data!r}, image_size=32, batch_size=4, steps=8,
                  steps_per_epoch=4, steps_per_execution=1, verbose=0, cache=False,
                  tensorboard=False)
train_and_evaluate(cfg, workdir, resume=True,
                   callbacks=[KillMidEpoch()] if point == "epoch" else None)
"""


@pytest.mark.slow
@pytest.mark.parametrize("point", ["epoch", "encoder", "model", "stamp"])
def test_sigkill_then_resume_finishes_with_loadable_files(fake_records, tmp_path, point):
    out = subprocess.run([sys.executable, "-c", KILLED.format(data=str(fake_records)),
                          str(tmp_path), point], capture_output=True, text=True, timeout=600)
    assert out.returncode == -9, out.stderr[-2000:]  # it did die there
    cfg = config(fake_records, steps=8, steps_per_epoch=4, tensorboard=False)
    result = train_and_evaluate(cfg, tmp_path, resume=True)
    assert result["steps"] == 8
    for name in ("encoder.keras", "model.keras"):
        keras.saving.load_model(tmp_path / name, safe_mode=True, compile=False)
    assert not (tmp_path / "backup").exists()
    assert not list(tmp_path.glob(".*tmp*"))  # the killed run's temporary files are gone
    assert json.loads((tmp_path / "done.json").read_text())["steps"] == 8


def test_nan_loss_stops_with_a_clear_message_and_keeps_checkpoints(fake_records, tmp_path):
    class Poison(keras.callbacks.Callback):
        def on_train_batch_begin(self, batch, logs=None):
            if self.model.optimizer.iterations.numpy() >= 4:
                for v in self.model.trainable_variables[-1:]:
                    v.assign(np.full(v.shape, np.nan, v.dtype))

    cfg = config(fake_records, steps=8, steps_per_epoch=4)
    with pytest.raises(TrainingError, match="the loss became nan at step"):
        train_and_evaluate(cfg, tmp_path, callbacks=[Poison()])
    good = tmp_path / "checkpoints" / "epoch-001.weights.h5"
    assert good.exists()
    from taskonomy_tf.models import build_task_model

    m = build_task_model("edges", "small", 32)
    m.load_weights(good)
    assert all(np.all(np.isfinite(w)) for w in m.get_weights())


def test_load_encoder_gives_a_frozen_layer(fake_records, tmp_path):
    train_and_evaluate(config(fake_records), tmp_path)
    enc = load_encoder(tmp_path)
    assert not enc.trainable and enc.output_shape == (None, 8, 8, 8)  # 32 px: stride 4
    inputs = keras.Input((32, 32, 3))
    head = keras.layers.Dense(1)(keras.layers.Flatten()(enc(inputs)))
    model = keras.Model(inputs, head)
    assert len(model.trainable_weights) == 2  # only the new head
    with pytest.raises(FileNotFoundError):
        load_encoder(tmp_path / "nope")


def test_user_script_path(fake_raw, tmp_path):
    sys.path.insert(0, str(ROOT / "examples"))
    try:
        import user_script
    finally:
        sys.path.pop(0)
    from tfrecords_tools.convert import convert

    raw = fake_raw
    csv = tmp_path / "split.csv"
    # validated on its own training building: 30 steps must fit it better than any constant
    csv.write_text("id,train,val,test\nfakebldg0,1,1,0\nfakebldg1,0,0,1\n")
    for split in ("train", "val"):
        convert(str(raw), str(tmp_path / "rec"), split_csv=str(csv), split=split, progress=False)
    r = user_script.main(["--data", str(tmp_path / "rec"), "--steps", "30", "--image-size", "32",
                          "--batch-size", "4", "--task", "depth_zbuffer"])
    assert np.isfinite(r["after"]) and r["after"] < 0.9 * r["constant"]


SCRIPT = """
import os, sys, json
os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
import tensorflow as tf
{setup}
from taskonomy_tf.training import TrainConfig, train_and_evaluate
cfg = TrainConfig.of(task="edges", data={data!r}, image_size=32, batch_size=4, steps=4,
                  steps_per_execution=1, verbose=0, cache=False, strategy={strategy!r},
                  devices={devices!r})
r = train_and_evaluate(cfg, sys.argv[1])
strategy = tf.distribute.get_strategy().__class__.__name__
print(json.dumps({{"steps": r["steps"], "strategy": strategy}}))
"""


@pytest.mark.slow
def test_mirrored_strategy_on_two_logical_cpus(fake_records, tmp_path):
    setup = ("cpu = tf.config.list_physical_devices('CPU')[0]\n"
             "tf.config.set_logical_device_configuration(cpu, "
             "[tf.config.LogicalDeviceConfiguration()] * 2)")
    code = SCRIPT.format(setup=setup, data=str(fake_records), strategy="mirrored",
                         devices=("/cpu:0", "/cpu:1"))
    out = subprocess.run([sys.executable, "-c", code, str(tmp_path)], capture_output=True,
                         text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    assert json.loads(out.stdout.strip().splitlines()[-1])["steps"] == 4
    assert json.loads((tmp_path / "config.json").read_text())["strategy"] == "MirroredStrategy"


@pytest.mark.slow
def test_multi_worker_strategy_with_two_local_workers(fake_records, tmp_path, free_ports):
    ports = free_ports(2)
    cluster = {"worker": [f"127.0.0.1:{p}" for p in ports]}
    code = SCRIPT.format(setup="", data=str(fake_records), strategy="multi_worker", devices=None)
    procs = []
    for i in range(2):
        env = {**os.environ, "TF_CONFIG": json.dumps({"cluster": cluster,
                                                       "task": {"type": "worker", "index": i}})}
        procs.append(subprocess.Popen([sys.executable, "-c", code, str(tmp_path / "run")],
                                      env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                      text=True))
    outs = [p.communicate(timeout=600) for p in procs]
    for p, (_, e) in zip(procs, outs):
        assert p.returncode == 0, e[-3000:]
    assert json.loads((tmp_path / "run" / "config.json").read_text())["strategy"] == \
        "CollectiveAllReduceStrategy"  # MultiWorkerMirroredStrategy's class
    assert (tmp_path / "run" / "model.keras").exists()
    assert not list((tmp_path / "run").glob(".worker-*"))  # the other worker cleaned up


def test_pose_standardisation_never_sees_the_test_split(split_records, tmp_path):
    from taskonomy_tf.data import make_dataset, views
    from taskonomy_tf.data.records import find_shards
    from taskonomy_tf.tasks import get_task
    from taskonomy_tf.training.loop import saved_label_stats

    spec = get_task("fixated_pose")
    train_mean, train_std = views.label_stats(find_shards(split_records, "train"), spec)
    all_mean, _ = views.label_stats(find_shards(split_records, None), spec)
    assert not np.allclose(all_mean, train_mean)  # the test split would move them
    mean, std = views.training_stats(split_records, spec)
    np.testing.assert_allclose(mean, train_mean)
    np.testing.assert_allclose(std, train_std)
    # the trained network stores what it used; test batches are standardised with it
    train_and_evaluate(config(split_records, task="fixated_pose", steps=2, batch_size=2),
                       tmp_path)
    stored = saved_label_stats(tmp_path)
    np.testing.assert_allclose(stored[0], train_mean)
    ds = make_dataset(split_records, spec, split="test", batch_size=64, image_size=32,
                      shuffle=False, augment=False, label_stats=stored)
    y = np.concatenate([np.asarray(b[1][spec.name]) for b in ds])
    raw = np.concatenate([lab for _, lab in views.build_tuples(find_shards(split_records,
                                                                             "test"), spec, 0)])
    np.testing.assert_allclose(y * np.asarray(stored[1]) + np.asarray(stored[0]), raw,
                               rtol=1e-4, atol=1e-4)


def test_the_multi_worker_loop_equals_fit(tmp_path):
    """The public-API loop that multi-worker runs train with takes the same
    steps as ``model.fit`` (dict outputs, masks, a regulariser, several steps
    per execution, two epochs, validation, a callback that stops early)."""
    import tensorflow as tf

    from taskonomy_tf.models.losses import TaskLoss
    from taskonomy_tf.training.loop import StopAtStep
    from taskonomy_tf.training.multiworker import fit_multi_worker

    rng = np.random.default_rng(0)
    x = rng.normal(size=(24, 8, 8, 3)).astype("float32")
    y = rng.normal(size=(24, 8, 8, 1)).astype("float32")
    w = (rng.uniform(size=(24, 8, 8)) > 0.3).astype("float32")
    data = tf.data.Dataset.from_tensor_slices((x, {"t": y}, {"t": w})).batch(4)

    def run(fit):
        keras.utils.set_random_seed(0)
        inp = keras.Input((8, 8, 3))
        h = keras.layers.Conv2D(4, 3, padding="same", activation="relu",
                                kernel_regularizer=keras.regularizers.L2(1e-2))(inp)
        model = keras.Model(inp, {"t": keras.layers.Conv2D(1, 1, name="t")(h)})
        model.compile(keras.optimizers.Adam(1e-2), loss={"t": TaskLoss("masked_l1")},
                      steps_per_execution=2)
        history = fit(model, dict(epochs=3, steps_per_epoch=4, validation_data=data.take(2),
                                  callbacks=[StopAtStep(6)]))
        return history, model.get_weights(), int(model.optimizer.iterations.numpy())

    ours = run(lambda m, kw: fit_multi_worker(m, tf.distribute.get_strategy(),
                                              data.repeat(), **kw))
    keras_ = run(lambda m, kw: m.fit(data.repeat(), verbose=0, shuffle=False, **kw).history)
    assert ours[2] == keras_[2] == 6  # stopped in the second epoch, at step 6
    assert len(ours[0]["loss"]) == 2
    for key in ("loss", "val_loss"):
        np.testing.assert_allclose(ours[0][key], keras_[0][key], rtol=1e-5)
    for a, b in zip(ours[1], keras_[1]):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


def test_the_multi_worker_loop_validates_a_sampling_loss_as_fit_does():
    """With a loss that samples pixels (24 x 24 maps, more than the 300 it
    draws), validated after each epoch: the multi-worker loop tells the
    callbacks about its validation as ``fit`` does, so ``FixedValidationDraw``
    keeps training's draws and both loops log the same losses."""
    import tensorflow as tf

    from taskonomy_tf.models.losses import TaskLoss
    from taskonomy_tf.training.callbacks import FixedValidationDraw
    from taskonomy_tf.training.multiworker import fit_multi_worker

    rng = np.random.default_rng(1)
    x = rng.normal(size=(12, 24, 24, 3)).astype("float32")
    y = rng.integers(0, 4, size=(12, 24, 24, 1)).astype("int32")
    data = tf.data.Dataset.from_tensor_slices((x, {"t": y})).batch(4)

    def run(fit):
        keras.utils.set_random_seed(0)
        inp = keras.Input((24, 24, 3))
        model = keras.Model(inp, {"t": keras.layers.Conv2D(4, 3, padding="same", name="t")(inp)})
        model.compile(keras.optimizers.Adam(1e-2), loss={"t": TaskLoss("segment_metric", seed=3)})
        return fit(model, dict(epochs=3, steps_per_epoch=3, validation_data=data.take(2),
                               callbacks=[FixedValidationDraw()]))

    ours = run(lambda m, kw: fit_multi_worker(m, tf.distribute.get_strategy(),
                                              data.repeat(), **kw))
    keras_ = run(lambda m, kw: m.fit(data.repeat(), verbose=0, shuffle=False, **kw).history)
    for key in ("loss", "val_loss"):
        np.testing.assert_allclose(ours[key], keras_[key], rtol=1e-5)


def test_mixed_float16_trains_with_loss_scaling(split_records, tmp_path):
    """float16 needs loss scaling: Keras wraps the optimizer when the policy
    is mixed_float16; the run trains, its variables stay float32 and its
    saved model loads."""
    class Seen(keras.callbacks.Callback):
        def on_train_begin(self, logs=None):
            self.optimizer = self.model.optimizer
            self.dtypes = {v.dtype for v in self.model.trainable_variables}

        def on_train_end(self, logs=None):
            self.state = [np.asarray(v) for v in self.model.optimizer.variables]

    seen = Seen()
    cfg = config(split_records, precision="mixed_float16", steps=3, steps_per_epoch=3,
                 tensorboard=False, jit_compile="false", deterministic=False)
    result = train_and_evaluate(cfg, tmp_path, callbacks=[seen])
    assert result["steps"] == 3 and np.isfinite(result["final"]["val_loss"])
    assert isinstance(seen.optimizer, keras.optimizers.LossScaleOptimizer)
    assert seen.dtypes == {"float32"}  # float32 master weights, float16 compute
    import warnings

    with warnings.catch_warnings():  # "Skipping variable loading for optimizer" is an error
        warnings.filterwarnings("error", message="Skipping variable loading")
        loaded = keras.saving.load_model(tmp_path / "model.keras", safe_mode=True)
    # the optimizer comes back whole: loss scale, step count, Adam's moments
    assert isinstance(loaded.optimizer, keras.optimizers.LossScaleOptimizer)
    assert int(loaded.optimizer.iterations.numpy()) == 3
    assert len(loaded.optimizer.variables) == len(seen.state)
    for a, b in zip(loaded.optimizer.variables, seen.state):
        np.testing.assert_array_equal(np.asarray(a), b)
    assert json.loads((tmp_path / "config.json").read_text())["precision"] == "mixed_float16"
    with pytest.raises(ValueError, match="jit_compile 'maybe'"):
        train_and_evaluate(config(split_records, jit_compile="maybe"), tmp_path / "b")


def test_cache_auto_streams_what_does_not_fit():
    """``cache=auto`` keeps the embedded data's split in memory and streams
    the real release (about 3 million views at 256 px)."""
    from taskonomy_tf.tasks import get_task
    from taskonomy_tf.training import apply_overrides
    from taskonomy_tf.training.loop import cache_bytes, resolve_cache

    spec, memory = get_task("normals"), 24 << 30
    assert cache_bytes(2040, 64, spec) == 2040 * 64 * 64 * 4 * 8  # rgb, 3 channels, 2 masks
    assert resolve_cache("auto", 2040, 64, spec, memory) is True
    assert resolve_cache("auto", 3_000_000, 256, spec, memory) is False
    assert resolve_cache("auto", 20_000, 256, spec, 8 << 30) is False  # 42 GB > 2 GiB
    assert resolve_cache(True, 3_000_000, 256, spec, memory) is True  # asked for
    with pytest.raises(ValueError, match="cache 'maybe'"):
        resolve_cache("maybe", 1, 64, spec, memory)
    assert apply_overrides(TrainConfig(), ["cache=false"]).cache is False
    assert apply_overrides(TrainConfig(), ["cache=auto"]).cache == "auto"


def test_the_same_steps_give_the_same_network_whatever_the_epochs(split_records, tmp_path):
    """The train command (one pass per epoch, validated per epoch) and a run
    of two epochs validated at the end (the pipeline's with
    networks.validations=0) train an experiment's networks.steps exactly,
    into the same weights (here the command keeps its last state); steps
    round up to whole executions only."""
    from taskonomy_tf.training.loop import step_plan

    base = dict(task="edges", data=str(split_records), image_size=32, batch_size=2, steps=7,
                steps_per_execution=2, verbose=0, cache=False)
    command = TrainConfig.of(**base)
    pipeline = TrainConfig.of(**base, steps_per_epoch=4, validation_freq=0, tensorboard=False)
    assert step_plan(command, 9) == (6, 2, 2, 8) and step_plan(pipeline, 9) == (4, 2, 2, 8)
    weights = []
    for name, cfg in (("a", command), ("b", pipeline)):
        train_and_evaluate(cfg, tmp_path / name)
        model = keras.saving.load_model(tmp_path / name / "model.keras", safe_mode=True,
                                        compile=False)
        weights.append(model.get_weights())
        assert json.loads((tmp_path / name / "done.json").read_text())["steps"] == 8
    for a, b in zip(*weights):
        np.testing.assert_array_equal(a, b)


def test_validating_does_not_move_a_sampling_loss_training(split_records, tmp_path):
    """The segmentation metric samples its pixels from a generator. A run
    validated after every epoch and one validated only at its end train on
    the same draws (the same training loss in the last epoch, bitwise), and
    their last validations, of the same weights, score the same pixels."""
    runs = {}
    for name, freq in (("every", 1), ("end", 2)):
        train_and_evaluate(config(split_records, task="segment_unsup2d", steps=8,
                                  steps_per_epoch=4, validation_freq=freq, tensorboard=False),
                           tmp_path / name)
        runs[name] = json.loads((tmp_path / name / "metrics.json").read_text())["epochs"]
    every, end = runs["every"], runs["end"]
    assert "val_loss" in every[0] and "val_loss" not in end[0]
    assert every[1]["loss"] == end[1]["loss"]
    assert every[1]["val_loss"] == end[1]["val_loss"]


def test_the_transfer_command_reads_the_experiments_split():
    import contextlib
    import io

    from taskonomy_tf.transfer.__main__ import main

    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        assert main(["grid", "--models", "m", "--out", "g", "--transfer-images", "480",
                     "--dry-run"]) == 0
    printed = json.loads(buf.getvalue())
    assert printed["experiment"]["transfers"]["split"] == "val"
    assert {j["target"] for j in printed["memory"]["jobs"]} == {
        "edges", "keypoints2d", "autoencoding", "depth_zbuffer", "normals", "reshading"}


def test_the_floor_is_one_an_untrained_network_does_not_beat(split_records, tmp_path):
    """An untrained network must not beat its task's floor by much, or the
    weak-network gate could never fire. The segmentation metric's floor is
    the fitted position embedding (one embedding everywhere paid the loss's
    clip on every pair of different segments, which any untrained network
    beat by far); an untrained network of another seed scores about 1
    against it. For a task whose network starts at its constant the
    untrained network is the constant."""
    import keras

    from taskonomy_tf.data import make_dataset
    from taskonomy_tf.models import build_task_model
    from taskonomy_tf.tasks import get_task
    from taskonomy_tf.training.evaluate import constant_loss, mean_loss

    runs = {}
    for task in ("segment_unsup2d", "edges"):
        train_and_evaluate(config(split_records, task=task, steps=1, steps_per_epoch=1,
                                  tensorboard=False), tmp_path / task)
        runs[task] = json.loads((tmp_path / task / "metrics.json").read_text())
    seg, edges = runs["segment_unsup2d"], runs["edges"]
    spec = get_task("segment_unsup2d")
    val = make_dataset(split_records, spec, split="test", batch_size=4, image_size=32,
                       shuffle=False, augment=False)
    model = keras.saving.load_model(tmp_path / "segment_unsup2d" / "model.keras")
    prior = np.asarray([w for w in model.weights if "prior" in w.path][0])
    floor = seg["final"]["floor_val_loss"]
    assert floor == pytest.approx(constant_loss(spec, prior, val), rel=1e-5)
    assert floor < 0.5 * constant_loss(spec, np.zeros_like(prior), val)  # the old floor
    for seed in (1, 2):
        keras.utils.set_random_seed(seed)
        untrained = build_task_model(spec, "small", 32, prior=prior)
        assert 0.9 < mean_loss(spec, untrained, val) / floor < 1.6
    assert edges["untrained"]["val_loss"] == pytest.approx(edges["constant"]["val_loss"],
                                                           rel=1e-4)
    assert edges["final"]["ratio_to_floor"] == pytest.approx(edges["final"]["ratio_to_constant"],
                                                             rel=1e-4)


def test_kept_epoch_takes_the_latest_within_the_tie_of_the_lowest():
    from taskonomy_tf.training.callbacks import kept_epoch

    def epochs(*losses):
        return [{"epoch": i + 1, **({} if v is None else {"val_loss": v})}
                for i, v in enumerate(losses)]

    assert kept_epoch(epochs(1.0, 0.5, 0.504, 0.7))["epoch"] == 3  # 0.8% above: a tie
    assert kept_epoch(epochs(1.0, 0.5, 0.506, 0.7))["epoch"] == 2  # 1.2% above: worse
    assert kept_epoch(epochs(0.9, None, 0.8, float("nan")))["epoch"] == 3  # not validated
    assert kept_epoch(epochs(None, None)) is None
    assert kept_epoch(epochs(-2.0, -1.99), tie=0.01)["epoch"] == 2  # a negative loss


def test_a_network_that_overfits_is_kept_from_before_it_did(tmp_path, monkeypatch):
    """On a small planted training split (72 images) a class network
    memorises its images and its validation loss turns up. The network kept
    is then the validated state with the lowest validation loss (ties within
    1% to the later), training stops ``patience`` validations after it, only
    its checkpoint is left, and it is bitwise the network trained for exactly
    that many steps (a constant learning rate, so the shorter run takes the
    same path)."""
    from taskonomy_tf.synth.planted import PlantedConfig, write_planted
    from taskonomy_tf.training.callbacks import TIE
    from tfrecords_tools.card import card_records

    monkeypatch.setenv("TASKONOMY_TF_CACHE", str(tmp_path / "cache"))
    write_planted(tmp_path / "card", PlantedConfig(samples=96, size=32, families=("wave",),
                                                   seed=1))
    records = card_records(tmp_path / "card", progress=False)
    base = dict(task="wave_one", data=str(records), image_size=32, batch_size=8, steps=200,
                steps_per_execution=5, schedule="constant", patience=2, verbose=0,
                cache=False, tensorboard=False)
    result = train_and_evaluate(TrainConfig.of(**base, steps_per_epoch=10), tmp_path / "a")
    losses = [e["val_loss"] for e in result["epochs"]]
    best = min(losses)
    kept = max(i for i, v in enumerate(losses) if v <= best * (1 + TIE))
    assert 0 < kept < len(losses) - 2 and len(losses) - 1 - kept == 2  # stopped by patience
    assert losses[-1] > best * 1.05  # it did overfit: the choice matters
    final = result["final"]
    assert final["step"] == 10 * (kept + 1) and final["stopped"] == "patience"
    assert final["steps_trained"] == result["steps"] == 10 * len(losses) < 200
    assert final["ratio_to_floor"] < 1
    assert [p.name for p in (tmp_path / "a" / "checkpoints").iterdir()] == [
        f"epoch-{kept + 1:03d}.weights.h5"]

    short = TrainConfig.of(**{**base, "steps": final["step"]}, validation_freq=0)
    train_and_evaluate(short, tmp_path / "b")

    class CrashAfterTheLastEpoch(keras.callbacks.Callback):
        def on_train_end(self, logs=None):
            raise KeyboardInterrupt("simulated crash before the final saves")

    with pytest.raises(KeyboardInterrupt):
        train_and_evaluate(TrainConfig.of(**base, steps_per_epoch=10), tmp_path / "c",
                           callbacks=[CrashAfterTheLastEpoch()])
    resumed = train_and_evaluate(TrainConfig.of(**base, steps_per_epoch=10), tmp_path / "c",
                                 resume=True)  # trains no more: the backup is past the stop
    def steps_and_losses(r):
        return [{k: v for k, v in e.items() if k != "seconds"} for e in r["epochs"]]

    assert resumed["final"] == final and steps_and_losses(resumed) == steps_and_losses(result)
    a, b, c = (keras.saving.load_model(tmp_path / d / "model.keras", safe_mode=True,
                                       compile=False) for d in ("a", "b", "c"))
    for x, y, z in zip(a.get_weights(), b.get_weights(), c.get_weights(), strict=True):
        np.testing.assert_array_equal(x, y)
        np.testing.assert_array_equal(x, z)


def test_a_time_budget_stops_at_the_first_validation_past_it(split_records, tmp_path, capsys):
    result = train_and_evaluate(config(split_records, steps=8, steps_per_epoch=2,
                                       max_seconds=1e-6, tensorboard=False), tmp_path / "a")
    assert result["steps"] == 2 and [e["step"] for e in result["epochs"]] == [2]
    assert result["final"]["stopped"] == "time" and result["final"]["step"] == 2
    for bad, words in (("max_seconds=0", "networks.max_seconds must be above 0"),
                       ("validations=-1", "networks.validations and networks.patience")):
        assert main(["--task", "edges", "--data", str(split_records), "--workdir",
                     str(tmp_path / "b"), "--set", bad, "verbose=0"]) == 2
        err = capsys.readouterr().err
        assert words in err and err.count("\n") == 1
