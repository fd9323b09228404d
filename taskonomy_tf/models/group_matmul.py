"""Rows multiplied by the kernel their group picks, without a one-hot.

A head of a fused readout whose output is evaluated at sampled pixels
(``transfer.fused.GroupedPointConv``) multiplies each pixel's feature vector
by one of f * f kernels, the one of the pixel's place inside its code cell.
Written as a one-hot expansion and one product, that costs f * f times the
multiply-adds it needs (16 at 64 px), and so do both gradients.
:func:`group_matmul` instead places each row in a slot of its group (every
group padded to the largest group's size), multiplies each group's rows by
its kernel as one batched product, and reads every row's result back from
its slot; both gradients use the same slots. On the segmentation readouts'
shapes (72 heads of 16 images x 300 pixels, 16 features, 16 kernels of 64
outputs per head) the product and its gradients took 0.28 s against 0.96 s
for the one-hot form on one core (``bench/readout_ops.py``).
"""

from __future__ import annotations

import keras
from keras import ops


def group_matmul(z, kernels, groups):
    """out[n, h] = z[n, h] @ kernels[h, groups[n, h]].

    Args:
        z: (N, H, w) float rows, H independent heads.
        kernels: (H, F, w, C) float, F kernels per head.
        groups: (N, H) int, in [0, F): the kernel each row uses.

    Returns:
        (N, H, C), z's dtype. Differentiable in ``z`` and ``kernels``.

    Each (head, kernel) pair's rows get consecutive slots, up to the largest
    pair's count on TensorFlow (shapes may be dynamic there); other backends
    need static shapes and reserve N slots per pair (the same result, more
    memory).
    """
    heads, kinds, width, channels = (int(d) for d in kernels.shape)
    groups = ops.cast(groups, "int32")
    n = ops.shape(z)[0]
    onehot = ops.one_hot(groups, kinds, dtype="int32")  # (N, H, F)
    # each row's rank among the earlier rows of its (head, kernel)
    rank = ops.sum((ops.cumsum(onehot, axis=0) - onehot) * onehot, axis=-1)
    if keras.backend.backend() == "tensorflow":
        capacity = ops.max(ops.sum(onehot, axis=0))
    else:
        capacity = n
    pair = ops.arange(heads, dtype="int32") * kinds + groups  # (N, H)
    slot = ops.reshape(pair * capacity + rank, (-1,))
    slots = heads * kinds * capacity

    def place(rows, last: int):
        """(N H, last) rows -> (H F, capacity, last), zeros where no row is."""
        return ops.reshape(ops.segment_sum(rows, slot, slots), (heads * kinds, -1, last))

    @ops.custom_gradient
    def product(z, kernels):
        flat_k = ops.reshape(kernels, (heads * kinds, width, channels))
        placed = place(ops.reshape(z, (-1, width)), width)
        out = ops.take(ops.reshape(ops.matmul(placed, flat_k), (-1, channels)), slot, axis=0)

        def grad(*args, upstream=None):
            upstream = args[0] if upstream is None else upstream
            g = place(ops.reshape(upstream, (-1, channels)), channels)
            dz = ops.matmul(g, ops.transpose(flat_k, (0, 2, 1)))
            dz = ops.take(ops.reshape(dz, (-1, width)), slot, axis=0)
            dk = ops.matmul(ops.transpose(placed, (0, 2, 1)), g)
            return ops.reshape(dz, ops.shape(z)), ops.reshape(dk, ops.shape(kernels))

        return ops.reshape(out, (n, heads, channels)), grad

    return product(z, kernels)
