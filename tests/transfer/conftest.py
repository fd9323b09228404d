"""Trained toy networks shared by the transfer tests (session-scoped: trained once)."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def split_records(fake_raw, tmp_path_factory):
    from tfrecords_tools.convert import convert

    out = tmp_path_factory.mktemp("split")
    csv = out / "split.csv"
    csv.write_text("id,train,val,test\nfakebldg0,1,0,0\nfakebldg1,0,0,1\n")
    for split in ("train", "test"):
        convert(str(fake_raw), str(out / "rec"), split_csv=str(csv), split=split, progress=False)
    return out / "rec"


@pytest.fixture(scope="session")
def trained(split_records, tmp_path_factory):
    from taskonomy_tf.training import TrainConfig, train_and_evaluate

    dirs = {}
    for task in ("normals", "edges"):
        w = tmp_path_factory.mktemp(task)
        train_and_evaluate(TrainConfig(task=task, data=str(split_records), image_size=32,
                                       batch_size=4, steps=2, verbose=0, cache=False), w)
        dirs[task] = w
    return dirs


@pytest.fixture(scope="session")
def models(trained, tmp_path_factory):
    root = tmp_path_factory.mktemp("models")
    for task, w in trained.items():
        (root / task).symlink_to(w, target_is_directory=True)
    return root
