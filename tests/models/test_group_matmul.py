"""group_matmul: each row times the kernel its group picks, and the gradients."""

import numpy as np
import pytest

from taskonomy_tf.models.group_matmul import group_matmul

tf = pytest.importorskip("tensorflow")


def _reference(z, kernels, groups, upstream):
    """Per-row loops in float64: the output, and the gradients of
    sum(out * upstream) with respect to z and kernels."""
    n, heads, _ = z.shape
    out = np.zeros((n, heads, kernels.shape[-1]))
    dz, dk = np.zeros(z.shape), np.zeros(kernels.shape)
    for i in range(n):
        for h in range(heads):
            k = kernels[h, groups[i, h]].astype(np.float64)
            out[i, h] = z[i, h] @ k
            dz[i, h] = k @ upstream[i, h]
            dk[h, groups[i, h]] += np.outer(z[i, h], upstream[i, h])
    return out, dz, dk


def _check(groups, kinds=5, width=3, channels=4, seed=0):
    rng = np.random.default_rng(seed)
    n, heads = groups.shape
    z = rng.normal(size=(n, heads, width)).astype("float32")
    kernels = rng.normal(size=(heads, kinds, width, channels)).astype("float32")
    upstream = rng.normal(size=(n, heads, channels)).astype("float32")
    want = _reference(z, kernels, groups, upstream)

    @tf.function(reduce_retracing=True)  # dynamic row counts, as inside a model
    def run(z, kernels, groups):
        with tf.GradientTape() as tape:
            tape.watch([z, kernels])
            out = group_matmul(z, kernels, groups)
            loss = tf.reduce_sum(out * upstream)
        return (out, *tape.gradient(loss, [z, kernels]))

    got = run(tf.constant(z), tf.constant(kernels), tf.constant(groups, tf.int32))
    for name, a, b in zip(("output", "d z", "d kernels"), want, got):
        np.testing.assert_allclose(np.asarray(b), a, rtol=1e-5, atol=1e-5, err_msg=name)


def test_rows_use_their_groups_kernel():
    groups = np.random.default_rng(3).integers(0, 5, size=(40, 3))
    _check(groups)


def test_empty_full_and_lone_groups():
    """Head 0: every row in group 2 (the others empty); head 1: one row in
    group 4, the rest in group 0; one row alone."""
    groups = np.zeros((9, 2), np.int64)
    groups[:, 0] = 2
    groups[5, 1] = 4
    _check(groups)
    _check(np.array([[1, 0, 4]]))


def test_kernels_are_per_head():
    """Two heads with the same groups and rows still read their own kernels:
    the results differ where the kernels do."""
    z = np.ones((4, 2, 3), "float32")
    kernels = np.stack([np.ones((2, 3, 1)), 2 * np.ones((2, 3, 1))]).astype("float32")
    out = np.asarray(group_matmul(tf.constant(z), tf.constant(kernels),
                                  tf.constant([[0, 0], [1, 1], [0, 0], [1, 1]])))
    np.testing.assert_allclose(out[..., 0], [[3.0, 6.0]] * 4)
