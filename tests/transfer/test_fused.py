"""Fused readouts: many heads in one program are the same as one head at a time."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from taskonomy_tf.transfer.fused import GroupedConv2D
from taskonomy_tf.transfer.readout import (
    ReadoutArrays,
    batch_order,
    build_readouts,
    plan_heads,
    train_readouts,
)


def _arrays(rng, n, sources, size=32, channels=3):
    side = size // 4
    codes = np.maximum(rng.normal(size=(n, len(sources), side, side, 8)), 0).astype("float32")
    # a target that depends on source 0's codes: readouts from it should win
    signal = np.repeat(np.repeat(codes[:, 0, ..., :channels], 4, 1), 4, 2)
    y = (0.5 * signal + 0.1 * rng.normal(size=signal.shape)).astype("float32")
    w = (rng.uniform(size=(n, size, size)) > 0.1).astype("float32")
    images = rng.uniform(-1, 1, size=(n, size, size, 3)).astype("float32")
    return ReadoutArrays(codes, y, w, images)


def test_grouped_conv_is_separate_convs():
    import keras

    rng = np.random.default_rng(0)
    x = rng.normal(size=(2, 6, 6, 3 * 4)).astype("float32")
    fused = GroupedConv2D(3, 5, 3, seeds=[7, 8, 9])
    out = np.asarray(fused(x))
    for g, seed in enumerate([7, 8, 9]):
        alone = keras.layers.Conv2D(5, 3, padding="same", use_bias=False,
                                    kernel_initializer=keras.initializers.GlorotUniform(seed))
        ref = np.asarray(alone(x[..., 4 * g:4 * (g + 1)]))
        np.testing.assert_allclose(out[..., 5 * g:5 * (g + 1)], ref, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("native", [True, False])
def test_grouped_conv_gradients_are_separate_convs_on_either_path(native, monkeypatch):
    """The oneDNN grouped op and the per-group fallback (TensorFlow builds
    without oneDNN) give the outputs and gradients of separate convolutions."""
    import keras
    import tensorflow as tf

    from taskonomy_tf.transfer import fused

    if native and not fused.grouped_conv_native():
        pytest.skip("this TensorFlow build has no grouped convolution gradient (oneDNN off)")
    monkeypatch.setattr(fused, "grouped_conv_native", lambda: native)
    rng = np.random.default_rng(1)
    x = tf.constant(rng.normal(size=(2, 6, 6, 3 * 4)).astype("float32"))
    layer = GroupedConv2D(3, 5, 3, strides=2, seeds=[1, 2, 3])
    with tf.GradientTape(persistent=True) as tape:
        tape.watch(x)
        out = layer(x)
        loss = tf.reduce_sum(out * out)
    dx, dk = tape.gradient(loss, [x, layer.kernel])
    kernels = np.split(np.asarray(layer.kernel), 3, -1)
    for g in range(3):
        part = tf.Variable(kernels[g])
        xg = tf.constant(np.asarray(x)[..., 4 * g:4 * (g + 1)])
        with tf.GradientTape() as t2:
            t2.watch(xg)
            ref = keras.ops.conv(xg, part, 2, "same")
            ref_loss = tf.reduce_sum(ref * ref)
        gx, gk = t2.gradient(ref_loss, [xg, part])
        np.testing.assert_allclose(out[..., 5 * g:5 * (g + 1)], ref, rtol=1e-5, atol=1e-5)
        np.testing.assert_allclose(np.asarray(dx)[..., 4 * g:4 * (g + 1)], gx, rtol=1e-4,
                                   atol=1e-4)
        np.testing.assert_allclose(np.asarray(dk)[..., 5 * g:5 * (g + 1)], gk, rtol=1e-4,
                                   atol=1e-4)


def test_grouped_conv_trains_with_onednn_off(tmp_path):
    """With oneDNN switched off (as on ARM builds and CPUs without AVX-512
    VNNI) the probe says so and a grouped layer still trains."""
    import subprocess
    import sys

    code = ("import numpy as np, tensorflow as tf\n"
            "from taskonomy_tf.transfer.fused import GroupedConv2D, grouped_conv_native\n"
            "layer = GroupedConv2D(4, 3, 3, seeds=[0, 1, 2, 3])\n"
            "x = tf.ones((1, 5, 5, 8))\n"
            "with tf.GradientTape() as t:\n"
            "    y = tf.reduce_sum(layer(x))\n"
            "g = t.gradient(y, layer.kernel)\n"
            "print(grouped_conv_native(), g.shape, bool(np.isfinite(g).all()))\n")
    env = {**__import__("os").environ, "TF_ENABLE_ONEDNN_OPTS": "0"}
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env=env, timeout=300)
    assert run.returncode == 0, run.stderr[-2000:]
    assert run.stdout.split() == ["False", "(3,", "3,", "2,", "12)", "True"]


def test_fused_heads_give_the_losses_of_separate_jobs():
    rng = np.random.default_rng(0)
    sources = ["a", "b"]
    train, test = _arrays(rng, 24, sources), _arrays(rng, 10, sources)
    prior = np.median(train.y, 0)
    candidates = [("a",), ("b",), ("a", "b"), ("pixels",)]
    seeds = [0, 1]
    opts = dict(steps=6, batch_size=4, learning_rate=1e-2)
    heads = plan_heads(candidates, seeds)
    fused = train_readouts("normals", heads, sources, train, test, 32, prior, seeds, **opts)
    assert fused.shape == (len(heads), 10)
    # programs of three heads (one cut inside a replicate, one across two):
    # the same losses, in the same order (single heads and the other target
    # kinds: test_a_heads_losses_do_not_depend_on_its_program)
    split = train_readouts("normals", heads, sources, train, test, 32, prior, seeds,
                           max_heads=3, **opts)
    np.testing.assert_allclose(split, fused, rtol=2e-4, atol=1e-6)
    # replicates differ (initialisation and batch order), candidates differ
    assert not np.allclose(fused[0], fused[len(candidates)])
    assert fused[0].mean() < fused[1].mean()  # source a carries the target, b does not


def test_memory_estimate_counts_the_sampled_pixels_of_a_pairwise_loss():
    from taskonomy_tf.models.losses import SEGMENT_PIXELS
    from taskonomy_tf.tasks import get_task
    from taskonomy_tf.transfer.memory import head_step_bytes

    normals = head_step_bytes("normals", 64, 16)
    seg = head_step_bytes("segment_unsup25d", 64, 16)
    assert normals == 4 * 16 * 16 * 64 * 64 * 3  # outputs only
    channels = get_task("segment_unsup25d").channels
    # 300 pixels' predictions and features (the decoder's 16 channels),
    # and the pair matrices: not the 64 x 64 map
    assert seg == 4 * 16 * (5 * SEGMENT_PIXELS * (channels + 16) + 3 * SEGMENT_PIXELS ** 2)
    assert seg < 4 * 16 * 16 * 64 * 64 * channels / 2
    assert head_step_bytes("normals", 64, 32) == 2 * normals  # linear in the batch


def test_an_untrained_readout_is_the_constant_prior():
    rng = np.random.default_rng(1)
    sources = ["a"]
    arrays = _arrays(rng, 8, sources)
    prior = rng.normal(size=(32, 32, 3)).astype("float32")
    model = build_readouts("normals", plan_heads([("a",), ("pixels",)], [0, 1]), sources, 32,
                           prior)
    out = np.asarray(model({"codes": np.repeat(arrays.codes[:, None], 2, 1),
                            "images": np.repeat(arrays.images[:, None], 2, 1)}))
    assert out.shape == (8, 32, 32, 4, 3)
    np.testing.assert_allclose(out, np.broadcast_to(prior[None, :, :, None], out.shape),
                               atol=1e-6)


def test_batch_order_is_a_permutation_per_epoch():
    order = batch_order(10, steps=7, batch_size=4, seed=3)
    assert order.shape == (7, 4)
    epochs = order.reshape(-1)[:16].reshape(2, 8)  # 2 whole batches per epoch of 10
    for e in epochs:
        assert len(set(e)) == 8
    assert not np.array_equal(batch_order(10, 7, 4, 3), batch_order(10, 7, 4, 4))
    np.testing.assert_array_equal(batch_order(10, 7, 4, 3), order)


def test_vector_targets_and_errors():
    rng = np.random.default_rng(2)
    model = build_readouts("room_layout", plan_heads([("a",), ("a", "b")], [0]), ["a", "b"],
                           32, np.zeros(9, "float32"))
    codes = rng.normal(size=(3, 1, 2, 8, 8, 8)).astype("float32")
    assert tuple(model({"codes": codes}).shape) == (3, 2, 9)
    with pytest.raises(ValueError, match="no codes for c"):
        build_readouts("normals", plan_heads([("c",)], [0]), ["a"], 32)


def _pair_arrays(rng, n, sources, size=32):
    """Pairs of views (K sources x 2 views of codes, source-major) and a
    6-d target that is the difference of source a's two views."""
    side = size // 4
    codes = np.maximum(rng.normal(size=(n, 2 * len(sources), side, side, 8)), 0)
    diff = codes[:, 0].mean((1, 2)) - codes[:, 1].mean((1, 2))  # (n, 8): a's views
    y = (10 * diff[:, :6] + 0.05 * rng.normal(size=(n, 6))).astype("float32")
    images = rng.uniform(-1, 1, size=(n, 2, size, size, 3)).astype("float32")
    return ReadoutArrays(codes.astype("float32"), y, np.ones(n, "float32"), images)


def test_multi_view_heads_fused_predict_as_separate_ones():
    """Same weights, same prediction: every head of a fused two-view model
    (all of its output kernel set to random values) against the head built
    alone (training adds dropout, whose masks fused heads draw together)."""
    rng = np.random.default_rng(4)
    sources = ["a", "b"]
    arrays = _pair_arrays(rng, 5, sources)
    prior = rng.normal(size=6).astype("float32")
    candidates = [("a",), ("b",), ("a", "b"), ("pixels",)]
    heads = plan_heads(candidates, [0, 1])
    fused = build_readouts("fixated_pose", heads, sources, 32, prior)

    def feed(replicates):
        return {"codes": np.repeat(arrays.codes[:, None], replicates, 1),
                "images": np.repeat(arrays.images[:, None], replicates, 1)}

    kernels = {}
    for layer in fused.layers:
        if layer.name.endswith("_out"):
            kernels[layer.name] = rng.normal(size=layer.kernel.shape).astype("float32")
            layer.kernel.assign(kernels[layer.name])
    out = np.asarray(fused(feed(2), training=False))  # (B, H, 6)
    for i, head in enumerate(heads):
        order = len(head.sources)
        j = [k for k, h in enumerate(heads) if len(h.sources) == order].index(i)
        alone = build_readouts("fixated_pose", [dataclasses.replace(head, replicate=0)],
                               sources, 32, prior)
        alone.get_layer(f"order{order}_out").kernel.assign(
            kernels[f"order{order}_out"][j:j + 1])
        one = feed(1)
        if head.sources != ("pixels",):
            del one["images"]
        np.testing.assert_allclose(out[:, i], np.asarray(alone(one, training=False))[:, 0],
                                   rtol=1e-4, atol=1e-4, err_msg=str(head))


@pytest.mark.parametrize("target", ["difference", "second view"])
def test_multi_view_target_learns_from_every_view(target):
    """A target made from source a's views (their difference, or the second
    view alone): the readout of a learns it, the readout of b cannot (a
    readout of the first view only would fail the second case)."""
    rng = np.random.default_rng(3)
    sources = ["a", "b"]
    train, test = _pair_arrays(rng, 512, sources), _pair_arrays(rng, 64, sources)
    if target == "second view":
        for arrays in (train, test):
            arrays.y = (10 * arrays.codes[:, 1].mean((1, 2))[:, :6]).astype("float32")
    heads = plan_heads([("a",), ("b",)], [0])
    losses = train_readouts("fixated_pose", heads, sources, train, test, 32, train.y.mean(0),
                            [0], steps=200, batch_size=16, learning_rate=1e-2)
    assert losses.shape == (2, 64)  # one loss per tuple
    assert losses[0].mean() < 0.8 * losses[1].mean()


def test_heads_loss_is_each_heads_masked_mean():
    from taskonomy_tf.models.losses import masked_loss
    from taskonomy_tf.transfer.readout import HeadsLoss, pack_targets

    rng = np.random.default_rng(5)
    y = rng.normal(size=(4, 8, 8, 3)).astype("float32")  # replicate batches: 2
    w = (rng.uniform(size=(4, 8, 8)) > 0.2).astype("float32")
    packed = np.stack([pack_targets(y, w), pack_targets(y[::-1], w[::-1])], -2)
    pred = rng.normal(size=(4, 8, 8, 3, 3)).astype("float32")  # 3 heads
    replicates = [0, 1, 1]
    loss = HeadsLoss("masked_l1", replicates)
    expected = sum(float(masked_loss("masked_l1")(packed[..., r, :3], pred[..., h, :],
                                                 packed[..., r, 3]))
                   for h, r in enumerate(replicates))
    assert float(loss(packed, pred)) == pytest.approx(expected, rel=1e-5)
    # a sampling loss gets each head's labels at its own pixels, and a
    # weight per pixel of its image's valid pixels over P
    from taskonomy_tf.models.losses import segment_points

    ids = rng.integers(0, 5, (4, 30, 3, 1)).astype("float32")  # (B, P, H, 1)
    valid = np.array([900.0, 0.0, 300.0, 60.0]) / 30  # image 1: nothing valid
    seg = np.concatenate([ids, np.broadcast_to(valid[:, None, None, None], ids.shape)], -1)
    emb = rng.normal(size=(4, 30, 3, 64)).astype("float32")
    metric = HeadsLoss("segment_metric", [0, 1, 1])
    per_image = np.stack([np.asarray(segment_points(ids[:, :, h, 0], emb[:, :, h]))
                          for h in range(3)])  # (H, B)
    expected = float((per_image * valid).sum(1).sum() / valid.sum())
    assert float(metric(seg, emb)) == pytest.approx(expected, rel=1e-5)


def test_heads_loss_of_one_process_serves_every_shape():
    """A grid worker runs jobs of several targets: the loss's XLA cluster,
    traced once per process, then sees relaxed (unknown) shapes. Each call,
    inside a graph as in a training step, is still each head's masked mean."""
    import tensorflow as tf

    from taskonomy_tf.models.losses import masked_loss
    from taskonomy_tf.transfer.readout import HeadsLoss, pack_targets

    rng = np.random.default_rng(9)
    for kind, shape in [("masked_l1", (8, 8, 3)), ("masked_l2", (6, 6, 1)), ("mse", (5,)),
                        ("masked_l1", (4, 4, 2)), ("soft_ce", (7,)), ("mse", (3,))]:
        y = rng.normal(size=(4, *shape)).astype("float32")
        if kind == "soft_ce":
            y = np.exp(y) / np.exp(y).sum(-1, keepdims=True)
        w = (rng.uniform(size=(4, *shape[:-1])) > 0.2).astype("float32")
        packed = np.stack([pack_targets(y, w), pack_targets(y[::-1], w[::-1])], -2)
        pred = rng.normal(size=(4, *shape[:-1], 3, shape[-1])).astype("float32")
        replicates = [1, 0, 1]
        expected = sum(float(masked_loss(kind)(packed[..., r, :-1], pred[..., h, :],
                                               packed[..., r, -1]))
                       for h, r in enumerate(replicates))
        got = tf.function(HeadsLoss(kind, replicates))(packed, pred)
        assert float(got) == pytest.approx(expected, rel=1e-5), (kind, shape)


@pytest.mark.parametrize("target", ["egomotion", "room_layout", "normals"])
def test_fc_parameters_are_the_heads_dense_weights(target):
    from taskonomy_tf.tasks import get_task
    from taskonomy_tf.transfer.fused import GroupedDense
    from taskonomy_tf.transfer.readout import fc_parameters

    spec = get_task(target)
    prior = np.zeros(spec.output_shape(32), "float32")
    model = build_readouts(target, plan_heads([("a",)], [0]), ["a"], 32, prior)
    dense = sum(int(np.prod(w.shape)) for layer in model.layers
                if isinstance(layer, GroupedDense) for w in layer.trainable_weights)
    assert fc_parameters(target, 32) == dense
    assert (dense > 0) == (not spec.is_dense)


def _seg_arrays(rng, n, sources, size=32):
    """Segment ids that follow source a's codes (thresholded), all pixels valid."""
    side = size // 4
    codes = np.maximum(rng.normal(size=(n, len(sources), side, side, 8)), 0).astype("float32")
    ids = (codes[:, 0, ..., 0] > 0.5).astype("float32")
    y = np.repeat(np.repeat(ids, 4, 1), 4, 2)[..., None]
    images = rng.uniform(-1, 1, size=(n, size, size, 3)).astype("float32")
    return ReadoutArrays(codes, y, np.ones((n, size, size), "float32"), images)


def _vector_arrays(rng, n, sources, size=32):
    side = size // 4
    codes = np.maximum(rng.normal(size=(n, len(sources), side, side, 8)), 0).astype("float32")
    y = np.concatenate([codes[:, 0].mean((1, 2)), codes[:, 0].std((1, 2))[:, :1]], -1)
    images = rng.uniform(-1, 1, size=(n, size, size, 3)).astype("float32")
    return ReadoutArrays(codes, y.astype("float32"), np.ones(n, "float32"), images)


@pytest.mark.parametrize("target,make", [("room_layout", _vector_arrays),
                                         ("segment_unsup2d", _seg_arrays),
                                         ("fixated_pose", _pair_arrays)])
def test_a_heads_losses_do_not_depend_on_its_program(target, make):
    """Dropout masks (a vector target's FC head), sampled pixels (the
    segmentation metric) and two views: every head gives the same test
    losses trained in one program or in programs of two heads (one program
    takes a head of each replicate), and a head alone gives its own."""
    rng = np.random.default_rng(6)
    sources = ["a", "b"]
    train, test = make(rng, 16, sources), make(rng, 6, sources)
    from taskonomy_tf.models.constant import best_constant
    from taskonomy_tf.tasks import get_task

    spec = get_task(target)
    prior = best_constant(spec.loss, train.y, train.w, spec.channels)
    candidates = [("a",), ("b",), ("a", "b")]
    seeds = [0, 1]
    heads = plan_heads(candidates, seeds)
    # a step large enough that heads of one target part by more than the
    # tolerance below (at 1e-2 the segmentation heads, started at the fitted
    # position prior, stayed within 0.5% of each other)
    opts = dict(steps=4, batch_size=4, learning_rate=3e-2)
    fused = train_readouts(target, heads, sources, train, test, 32, prior, seeds, **opts)
    split = train_readouts(target, heads, sources, train, test, 32, prior, seeds,
                           max_heads=2, **opts)
    # float32 sums in another order (other program shapes): 1e-3; the shared
    # draws this replaced moved the losses by several percent
    np.testing.assert_allclose(split, fused, rtol=1e-3, atol=1e-4)
    last = len(heads) - 1  # the second replicate's pair head, alone
    alone = train_readouts(target, heads[last:], sources, train, test, 32, prior, seeds,
                           **opts)
    np.testing.assert_allclose(alone[0], fused[last], rtol=1e-3, atol=1e-4)
    assert not np.allclose(fused[0], fused[1], rtol=2e-2)  # the heads are not all one
