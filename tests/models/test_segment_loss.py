"""The segmentation metric's written-out gradient against automatic differentiation."""

from __future__ import annotations

import json

import numpy as np
import pytest
import tensorflow as tf

from taskonomy_tf.models.losses import EPS, SEGMENT_CLIP, segment_points

# embedding scales whose pair distances are small, moderate, large, and
# beyond the distance clip (no gradient at all); every image also has pixels
# with one embedding (distance 0: sigma clipped at 1 - EPS, no gradient there)
SCALES = (0.05, 0.3, 1.0, 4.0)


def _formula(seg, emb):
    """The loss as its docstring states it, for tf.GradientTape."""
    sq = tf.reduce_sum(emb * emb, -1)
    d = sq[:, :, None] + sq[:, None, :] - 2 * tf.einsum("bic,bjc->bij", emb, emb)
    raw = 2.0 / (1.0 + tf.exp(tf.clip_by_value(d, 0.0, SEGMENT_CLIP)))
    sigma = tf.clip_by_value(raw, EPS, 1 - EPS)
    same = tf.cast(tf.equal(seg[:, :, None], seg[:, None, :]), emb.dtype)
    return -tf.reduce_mean(same * tf.math.log(sigma) + (1 - same) * tf.math.log(1 - sigma),
                           axis=(1, 2))


def _inputs(pixels=40, channels=6):
    rng = np.random.default_rng(3)
    scale = np.repeat(SCALES, 2)[:, None, None]
    emb = rng.normal(size=(len(scale), pixels, channels)) * scale
    emb[:, 1:4] = emb[:, :1]
    seg = rng.integers(0, 4, size=(len(scale), pixels)).astype(np.int32)
    upstream = rng.uniform(0.5, 2.0, size=len(scale))  # a weighted sum of the images' values
    return seg, emb, upstream


def _value_and_grad(fn, seg, emb, upstream, dtype):
    e = tf.constant(emb, dtype)
    with tf.GradientTape() as tape:
        tape.watch(e)
        values = fn(tf.constant(seg), e)
        total = tf.reduce_sum(values * tf.constant(upstream, values.dtype))
    return values.numpy(), tape.gradient(total, e).numpy()


def test_value_and_gradient_as_accurate_as_automatic_differentiation():
    """Against the formula differentiated automatically in float64, our
    float32 gradient errs no more than the same differentiation in float32
    (which the clips make a few percent wrong for some images)."""
    _assert_as_accurate_as_automatic_differentiation()


def _assert_as_accurate_as_automatic_differentiation():
    seg, emb, upstream = _inputs()
    want_v, _ = _value_and_grad(_formula, seg, emb, upstream, tf.float32)  # EPS rounds as ours
    _, exact = _value_and_grad(_formula, seg, emb, upstream, tf.float64)
    _, auto = _value_and_grad(_formula, seg, emb, upstream, tf.float32)
    got_v, got_g = _value_and_grad(segment_points, seg, emb, upstream, tf.float32)
    np.testing.assert_allclose(got_v, want_v, rtol=2e-5)
    assert np.isfinite(got_g).all()
    for k, scale in enumerate(np.repeat(SCALES, 2)):
        top = np.abs(exact[k]).max()
        if scale >= 4.0:  # every distinct pair beyond the clip: no gradient
            assert top < 1e-12 and np.abs(got_g[k]).max() < 1e-6 * np.abs(got_g).max()
            continue
        ours, theirs = (np.abs(g[k] - exact[k]).max() / top for g in (got_g, auto))
        assert ours <= max(1.5 * theirs, 1e-5), (k, ours, theirs)


def test_a_step_against_the_gradient_lowers_the_loss():
    seg, emb, upstream = _inputs()
    value, grad = _value_and_grad(segment_points, seg, emb, np.ones_like(upstream), tf.float32)
    moderate = slice(0, 4)  # the 0.05 and 0.3 scales: inside the distance clip
    after = segment_points(tf.constant(seg[moderate]),
                           tf.constant((emb - 1e-2 * grad)[moderate], tf.float32)).numpy()
    assert np.all(after < value[moderate])


@pytest.mark.slow
def test_the_gradient_is_the_same_under_jax(run_under_jax):
    seg, emb, upstream = _inputs(pixels=20, channels=4)
    _, want = _value_and_grad(_formula, seg, emb, upstream, tf.float32)
    code = (
        "import json, jax, numpy as np\n"
        "from taskonomy_tf.models.losses import segment_points\n"
        f"seg = np.array({seg.tolist()}, 'int32')\n"
        f"emb = np.array({emb.tolist()}, 'float32')\n"
        f"w = np.array({upstream.tolist()}, 'float32')\n"
        "g = jax.grad(lambda e: (segment_points(seg, e) * w).sum())(emb)\n"
        "print(json.dumps(np.array(g).ravel().tolist()))\n"
    )
    got = np.array(json.loads(run_under_jax(code))).reshape(want.shape)
    np.testing.assert_allclose(got, want, atol=1e-4 * np.abs(want).max())


def test_gradient_as_accurate_once_the_cluster_has_served_other_shapes():
    """The loss's XLA cluster is traced once per process; later calls of
    other shapes and dtypes run programs of unknown sizes, whose code
    differs: the gradient stays finite (pairs of one embedding in different
    segments included) and as accurate there."""
    rng = np.random.default_rng(5)
    for shape, dtype in (((2, 7, 3), "float32"), ((3, 11, 5), "float64")):  # other calls first
        _value_and_grad(segment_points, rng.integers(0, 3, shape[:2]).astype(dtype),
                        rng.normal(size=shape), np.ones(shape[0]), tf.float32)
    _assert_as_accurate_as_automatic_differentiation()
