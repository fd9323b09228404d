"""Your own encoders as sources: a saved Keras model joins the grid."""

from __future__ import annotations

import csv

import keras
import numpy as np
import pytest

from taskonomy_tf.errors import InputError
from taskonomy_tf.transfer.sources import parse_sources, user_source


def _save(model, path):
    model.save(path)
    return str(path)


def test_parse_sources_refuses_bad_names_and_files(tmp_path):
    f = tmp_path / "net.keras"
    f.write_bytes(b"x")
    assert parse_sources([f"mine={f}"]) == {"mine": str(f)}
    for bad, message in ((f"normals={f}", "the name is taken"), (f"Mine={f}", "NAME=FILE"),
                         ("mine=nowhere.keras", "no such file"), (f"random={f}", "taken")):
        with pytest.raises(InputError, match=message):
            parse_sources([bad])
    with pytest.raises(InputError, match="taken"):
        parse_sources([f"a={f}", f"a={f}"])


def test_a_backbone_without_its_classifier_is_a_source(split_records, tmp_path):
    """An ImageNet-style backbone (MobileNetV2 without its top, random
    weights: nothing downloaded) becomes a c x c x 8 code, centred on the
    images its projection was fitted on; a classifier (a vector output) is
    refused with the shape it should have."""
    from taskonomy_tf.transfer.cache import FeatureCache

    backbone = keras.applications.MobileNetV2(input_shape=(32, 32, 3), include_top=False,
                                              weights=None)
    path = _save(backbone, tmp_path / "backbone.keras")
    workdir = user_source("backbone", path, split_records, "train", 32, tmp_path / "sources")
    codes = FeatureCache(tmp_path / "cache").features(workdir / "encoder.keras", split_records,
                                                      "train", 32)
    assert codes.shape[1:] == (8, 8, 8)
    np.testing.assert_allclose(codes.reshape(-1, 8).mean(0), 0, atol=0.05 * codes.std() + 1e-3)
    again = user_source("backbone", path, split_records, "train", 32, tmp_path / "sources")
    assert again == workdir  # built once
    head = keras.Sequential([keras.Input((32, 32, 3)), keras.layers.GlobalAveragePooling2D(),
                             keras.layers.Dense(10)])
    with pytest.raises(InputError, match=r"to a \(B, h, w, C\) feature map; its output is "
                                         r"\(1, 10\)"):
        user_source("classifier", _save(head, tmp_path / "head.keras"), split_records, "train",
                    32, tmp_path / "sources")


@pytest.mark.slow
def test_your_encoder_appears_in_the_grid_and_the_affinities(models, split_records, tmp_path):
    from taskonomy_tf.taxonomy import tables_from_losses
    from taskonomy_tf.transfer import run_grid

    net = keras.Sequential([keras.Input((32, 32, 3)),
                            keras.layers.Conv2D(16, 3, strides=2, activation="relu"),
                            keras.layers.Conv2D(12, 3, strides=2, padding="same")])
    path = _save(net, tmp_path / "mine.keras")
    result = run_grid(["normals", "edges"], models, split_records, tmp_path / "grid",
                      n_images=8, steps=2, seeds=[0], progress=False, sources={"mine": path})
    with open(result.table) as f:
        rows = list(csv.DictReader(f))
    for target in ("normals", "edges"):
        assert {r["sources"] for r in rows if r["target"] == target} >= {"mine", "random"}
    aff = tables_from_losses(result.table)["affinities"]
    assert aff.get(("mine",), "normals") is not None
