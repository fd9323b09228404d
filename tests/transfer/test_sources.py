"""Each source is encoded from its own input kind; multi-view targets are transfer targets."""

from __future__ import annotations

import json
import zipfile

import keras
import numpy as np
import pytest
from skimage.color import rgb2lab

from taskonomy_tf.data import make_dataset
from taskonomy_tf.data.targets import DENOISE_STD, mosaic
from taskonomy_tf.transfer import FeatureCache

SIZE, POOL = 24, 4


def _probe_encoder(root, task: str | None, channels: int):
    """A workdir whose 'encoder' averages its input over 4 x 4 blocks and
    sums the channels into each of 8 code channels: its code shows what it
    was fed."""
    root.mkdir(parents=True)
    if task:
        (root / "config.json").write_text(json.dumps({"task": task}))
    x = keras.Input((SIZE, SIZE, channels))
    pooled = keras.layers.AveragePooling2D(POOL)(x)
    code = keras.layers.Conv2D(8, 1, use_bias=False, kernel_initializer="ones")(pooled)
    keras.Model(x, code).save(root / "encoder.keras")
    return root / "encoder.keras"


def _pool(a):
    n, s = a.shape[0], a.shape[1] // POOL
    return a.reshape(n, s, POOL, s, POOL, -1).mean((2, 4))


@pytest.fixture(scope="module")
def rgb(split_records):
    """The test split's images in [0, 1], (N, S, S, 3), record order."""
    ds = make_dataset(split_records, "autoencoding", split="test", batch_size=64,
                      image_size=SIZE, shuffle=False, augment=False)
    return np.concatenate([np.asarray(x) for x, _, _ in ds]) / 2 + 0.5


def test_colorization_source_is_fed_grayscale(split_records, rgb, tmp_path):
    enc = _probe_encoder(tmp_path / "colorization", "colorization", 1)
    codes = FeatureCache(tmp_path / "cache").features(enc, split_records, "test", SIZE)
    luminance = rgb2lab(rgb)[..., :1] / 50 - 1  # L in [0, 100] -> [-1, 1]
    np.testing.assert_allclose(codes[..., 0], _pool(luminance)[..., 0], atol=0.02)


def test_denoising_source_is_fed_the_noisy_image(split_records, rgb, tmp_path):
    cache = FeatureCache(tmp_path / "cache")
    noisy = cache.features(_probe_encoder(tmp_path / "denoising", "denoising", 3),
                           split_records, "test", SIZE)
    plain = cache.features(_probe_encoder(tmp_path / "random", None, 3), split_records,
                           "test", SIZE)
    # the untrained encoder (no task) sees RGB in [-1, 1], summed over channels
    np.testing.assert_allclose(plain[..., 0], _pool(2 * rgb - 1).sum(-1), atol=0.02)
    # noise of std 0.1 on [0, 1], i.e. 0.2 on [-1, 1], summed over 3 channels
    # and averaged over 16 pixels: std 0.2 * sqrt(3) / 4 before clipping
    diff = (noisy - plain)[..., 0]
    assert 0.6 * 0.2 * 3**0.5 / 4 < diff.std() < 1.05 * 2 * DENOISE_STD * 3**0.5 / 4
    again = FeatureCache(tmp_path / "other").features(
        tmp_path / "denoising" / "encoder.keras", split_records, "test", SIZE)
    np.testing.assert_array_equal(noisy, again)  # the same noise: a deterministic input


def test_inpainting_source_is_fed_the_masked_image(split_records, rgb, tmp_path):
    enc = _probe_encoder(tmp_path / "inpainting", "inpainting", 3)
    codes = FeatureCache(tmp_path / "cache").features(enc, split_records, "test", SIZE)
    keep = np.ones((SIZE, SIZE, 1))
    keep[SIZE // 4:SIZE - SIZE // 4, SIZE // 4:SIZE - SIZE // 4] = 0  # the centre half
    np.testing.assert_allclose(codes[..., 0], _pool((2 * rgb - 1) * keep).sum(-1), atol=0.02)
    assert np.abs(codes[:, 2:4, 2:4]).max() < 1e-6  # cells wholly inside the hole


def test_jigsaw_source_codes_every_tile_and_pools_them_into_place(split_records, rgb,
                                                                 tmp_path):
    enc = _probe_encoder(tmp_path / "jigsaw", "jigsaw", 3)
    codes = FeatureCache(tmp_path / "cache").features(enc, split_records, "test", SIZE)
    assert codes.shape == (len(rgb), SIZE // POOL, SIZE // POOL, 8)
    # nine tiles (90% of their cells) in place: close to the whole image's
    # code map, not equal to it, and far from a shuffled arrangement
    whole = _pool(2 * rgb - 1).sum(-1)
    tiled = codes[..., 0]
    assert not np.allclose(tiled, whole, atol=0.02)
    err = np.abs(tiled - whole).mean()
    shuffled = np.abs(tiled - whole[:, ::-1, ::-1]).mean()
    assert err < 0.5 * shuffled
    # the mosaic: tile t's code lands in cell (t // 3, t % 3) of the code grid
    tiles = np.broadcast_to(np.arange(9.0)[None, :, None, None, None], (2, 9, 6, 6, 1))
    out = mosaic(np.array(tiles))
    expected = np.array([[3 * (i // 2) + j // 2 for j in range(6)] for i in range(6)], float)
    np.testing.assert_array_equal(out[0, ..., 0], expected)


@pytest.mark.parametrize("weight_bytes", [1 << 30, 1], ids=["one pass", "a pass each"])
def test_encoders_of_one_input_rule_share_a_pass_and_keep_their_own_codes(
        split_records, rgb, tmp_path, monkeypatch, weight_bytes):
    """``features_many`` encodes the encoders of one input rule together (one
    pass over the split, or one each when their weights exceed
    ``WEIGHT_BYTES``; one traced graph per architecture for every batch, the
    last and shorter one included, each encoder's weights passed in): each
    gets the codes its own input and weights give (two RGB encoders of one
    architecture that differ by a factor of 2, a third of another
    architecture, the noisy and the tiled inputs beside them), in the order
    asked, the same as encoded alone, with the split's ids; what is cached
    is loaded, not encoded again."""
    from taskonomy_tf.transfer import cache as cache_module

    monkeypatch.setattr(cache_module, "WEIGHT_BYTES", weight_bytes)
    one = _probe_encoder(tmp_path / "random", None, 3)
    two = _probe_encoder(tmp_path / "edges", "edges", 3)  # an RGB-fed task, kernel of twos
    model = keras.saving.load_model(one)  # ``one``'s architecture (its layer names too)
    model.set_weights([2 * w for w in model.get_weights()])
    model.save(two)
    noisy = _probe_encoder(tmp_path / "denoising", "denoising", 3)
    tiles = _probe_encoder(tmp_path / "jigsaw", "jigsaw", 3)
    (tmp_path / "keypoints2d").mkdir()  # another RGB-fed task, another architecture
    (tmp_path / "keypoints2d" / "config.json").write_text(json.dumps({"task": "keypoints2d"}))
    x = keras.Input((SIZE, SIZE, 3))
    pooled = keras.layers.Rescaling(3.0)(keras.layers.AveragePooling2D(POOL)(x))
    keras.Model(x, keras.layers.Conv2D(8, 1, use_bias=False, kernel_initializer="ones")(pooled)
                ).save(tmp_path / "keypoints2d" / "encoder.keras")
    three = tmp_path / "keypoints2d" / "encoder.keras"
    assert len(cache_module.by_architecture([one, two, three])) == 2
    batch = next(b for b in range(3, len(rgb)) if len(rgb) % b)  # a short last batch
    cache = FeatureCache(tmp_path / "many")
    order = [one, noisy, two, tiles, three, one]  # rules interleaved, one encoder twice
    got = cache.features_many(order, split_records, "test", SIZE, batch_size=batch)
    assert cache.computed == 5
    whole = _pool(2 * rgb - 1).sum(-1)  # what an RGB-fed probe encoder's channels hold
    np.testing.assert_allclose(got[0][0][..., 0], whole, atol=0.02)
    np.testing.assert_allclose(got[2][0][..., 0], 2 * whole, atol=0.04)
    np.testing.assert_allclose(got[4][0][..., 0], 3 * whole, atol=0.06)
    ids = make_dataset(split_records, "autoencoding", split="test", batch_size=64,
                       image_size=SIZE, shuffle=False, augment=False, with_ids=True)
    ids = [i.decode() for *_, b in ids for i in np.asarray(b)]
    for k, enc in enumerate(order):
        codes, code_ids = got[k]
        alone = FeatureCache(tmp_path / f"alone{k}").features(enc, split_records, "test", SIZE,
                                                               with_ids=True)
        np.testing.assert_array_equal(codes, alone[0])
        assert list(code_ids) == list(alone[1]) == ids
    again = cache.features_many(order[::-1], split_records, "test", SIZE)
    assert cache.computed == 5
    for a, b in zip(again, got[::-1]):
        np.testing.assert_array_equal(a[0], b[0])


def test_architecture_key_ignores_weights_and_the_ids_of_shared_objects(tmp_path):
    """Two saves of one architecture (a regulariser shared by two layers,
    which Keras saves with its Python object id) with other weights, and a
    copy loaded and saved again: one key, though their config files differ;
    another width: another key."""
    from taskonomy_tf.transfer.cache import architecture_key

    def build(width, seed):
        shared = keras.regularizers.L2(1e-4)
        x = keras.Input((8, 8, 3), name="image")
        h = keras.layers.Conv2D(width, 3, kernel_regularizer=shared, name="conv")(x)
        model = keras.Model(x, keras.layers.Conv2D(2, 1, kernel_regularizer=shared,
                                                   name="out")(h), name="encoder")
        rng = np.random.default_rng(seed)
        model.set_weights([rng.normal(size=w.shape) for w in model.get_weights()])
        path = tmp_path / f"m{width}-{seed}.keras"
        model.save(path)
        return path, model  # the model kept alive: its objects' ids stay distinct

    built = [build(4, 0), build(4, 1), build(5, 0)]
    (a, _), (b, _), (c, _) = built
    again = tmp_path / "again.keras"
    keras.saving.load_model(a).save(again)
    raw = [zipfile.ZipFile(p).read("config.json") for p in (a, b, again)]
    assert b"shared_object_id" in raw[0] and raw[0] != raw[1] and raw[0] != raw[2]
    assert architecture_key(a) == architecture_key(b) == architecture_key(again)
    assert architecture_key(a) != architecture_key(c)


def test_multi_view_target_transfer_gives_one_loss_per_tuple(trained, split_records,
                                                            tmp_path):
    from taskonomy_tf.transfer.runner import run_candidates

    cache = FeatureCache(tmp_path / "cache")
    workdirs = {"normals": trained["normals"], "edges": trained["edges"]}
    out = run_candidates("fixated_pose", [("normals",), ("edges",), ("normals", "edges"),
                                          ("pixels",)], workdirs, split_records, cache,
                         image_size=32, n_images=16, steps=3, batch_size=4, seeds=[0, 1],
                         references=False)
    ds = make_dataset(split_records, "fixated_pose", split="test", batch_size=64,
                      image_size=32, shuffle=False, augment=False, with_ids=True)
    ids = [i.decode() for *_, b in ds for i in np.asarray(b)]
    assert out.images == ids and all(i.count("+") == 1 for i in ids)  # joined by tuple ids
    for c in (("normals",), ("edges",), ("normals", "edges"), ("pixels",)):
        assert out[c].shape == (2, len(ids)) and np.all(np.isfinite(out[c]))
    assert not np.allclose(out[("normals",)], out[("edges",)])


def test_source_only_tasks_are_sources_never_targets():
    from taskonomy_tf.transfer import first_order_candidates, first_order_jobs

    tasks = ["edges", "colorization", "jigsaw", "normals", "fixated_pose"]
    assert [j.target for j in first_order_jobs(tasks)] == ["edges", "normals", "fixated_pose"]
    cands = first_order_candidates("fixated_pose", tasks)
    assert ("colorization",) in cands and ("jigsaw",) in cands and ("fixated_pose",) not in cands


def test_constant_candidate_of_a_target_whose_labels_are_not_its_output(split_records):
    """2D segmentation is scored on 64-channel embeddings of 1-channel segment
    ids: the constant candidate predicts the output's shape (it was broadcast
    to the labels' shape, a ValueError found by the whole-graph run)."""
    from taskonomy_tf.models.constant import best_constant
    from taskonomy_tf.tasks import get_task
    from taskonomy_tf.training.evaluate import constant_loss
    from taskonomy_tf.transfer.runner import _arrays, constant_losses

    spec = get_task("segment_unsup2d")
    y, w, _ = _arrays(split_records, spec.name, "train", 32, 8, False)
    prior = best_constant(spec.loss, y, w, spec.channels)
    assert prior.shape == spec.output_shape(32) != y.shape[1:]
    yt, wt, _ = _arrays(split_records, spec.name, "test", 32, None, False)
    const = constant_losses(spec, prior, yt, wt)
    assert const.shape == (len(yt),)
    test = make_dataset(split_records, spec.name, split="test", batch_size=8, image_size=32,
                        shuffle=False, augment=False)
    # the training loop's constant baseline, computed batch by batch
    assert const.mean() == pytest.approx(constant_loss(spec, prior, test), rel=1e-5)
