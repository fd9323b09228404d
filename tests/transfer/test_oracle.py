"""Label oracles: a task's true labels on the code grid, read out like a code."""

from __future__ import annotations

import csv

import numpy as np
import pytest


def test_label_codes_keep_the_labels_geometry(split_records):
    """Normals (3 channels) area-averaged on the 8 x 8 grid of a 32 px input:
    the oracle's 8 channels hold them in 3 orthonormal directions (every
    distance between two cells kept), the rest zero."""
    from taskonomy_tf.data import make_dataset
    from taskonomy_tf.training.evaluate import split_arrays
    from taskonomy_tf.transfer.cache import label_codes

    codes, ids = label_codes("normals", split_records, "test", 32, "train")
    assert codes.shape[1:] == (8, 8, 8) and np.all(codes[..., 3:] == 0)
    ds = make_dataset(split_records, "normals", split="test", batch_size=8, image_size=32,
                      shuffle=False, augment=False, with_ids=True)
    y, w, y_ids = split_arrays(ds, "normals")
    assert list(ids) == list(y_ids)
    sums = (y * w[..., None]).reshape(len(y), 8, 4, 8, 4, 3).sum((2, 4))
    counts = w.reshape(len(w), 8, 4, 8, 4).sum((2, 4))[..., None]
    maps = np.where(counts > 0, sums / np.maximum(counts, 1e-12), 0).reshape(-1, 3)
    flat = codes.reshape(-1, 8)
    pick = np.random.default_rng(0).choice(len(maps), (50, 2))
    for i, j in pick:
        assert np.linalg.norm(flat[i] - flat[j]) == pytest.approx(
            np.linalg.norm(maps[i] - maps[j]), abs=1e-4)


@pytest.mark.slow
def test_oracle_candidates_are_scored_but_not_in_the_affinities(models, split_records,
                                                                tmp_path):
    from taskonomy_tf.taxonomy import tables_from_losses
    from taskonomy_tf.transfer import run_grid

    result = run_grid(["normals", "edges", "depth_zbuffer"], models, split_records,
                      tmp_path / "grid", n_images=8, steps=2, seeds=[0], progress=False,
                      oracle=True)
    with open(result.table) as f:
        rows = list(csv.DictReader(f))
    oracles = {(r["target"], r["sources"]) for r in rows if r["candidate"] == "oracle"}
    assert ("normals", "oracle:edges") in oracles and ("edges", "oracle:normals") in oracles
    assert ("normals", "oracle:normals") not in oracles  # never a target's own labels
    aff = tables_from_losses(result.table)["affinities"]
    for target in ("normals", "edges", "depth_zbuffer"):
        records = aff.for_target(target)
        assert not any(s.startswith("oracle:") for r in records for s in r.sources)
        assert sum(r.value for r in records) == pytest.approx(1.0)
