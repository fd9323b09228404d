"""Many transfer readouts trained as one compiled program.

Every readout of a target (each candidate source set, each seed) is an
independent network on the same kind of input. Stacked along the channel
axis, each of their layers becomes *one* grouped op: a convolution with one
group per head, a BatchNormalization over all heads' channels (per channel,
so per head), an elementwise activation. The heads share no weight and no
statistic, their losses add up, and Adam is per parameter: training them
together is mathematically the same as training each alone on the same
batches (``tests/transfer/test_fused.py`` checks it), with one trace and one
program instead of one per transfer.

Layout of a block of H heads of input width ``c`` (8 channels per source):
input (B, s, s, H * c) -> per head, the paper's readout (reference section
4: input BatchNorm, two streams of two 3x3 convs with BN and ReLU, their
concatenation and a BatchNorm) -> the target's ``small`` decoder (3x3 convs
with BN and leaky ReLU, a zero-initialised 1x1 conv to f * f * C channels
and the pixel shuffle) -> (B, f s, f s, H, C), to which the target's
constant prior is added.
"""

from __future__ import annotations

import functools
import zlib

import keras
import numpy as np
from keras import layers, ops, saving

from taskonomy_tf.models.decoders import DROPOUT, LEAK, PRESETS
from taskonomy_tf.models.encoders import REPRESENTATION_CHANNELS
from taskonomy_tf.models.group_matmul import group_matmul
from taskonomy_tf.models.layers import FusedBatchNormalization
from taskonomy_tf.models.losses import output_initializer
from taskonomy_tf.tasks import TaskSpec

BN = dict(momentum=0.9, epsilon=1e-5)


@functools.cache
def grouped_conv_native() -> bool:
    """Whether this TensorFlow build computes a grouped ``tf.nn.conv2d`` and
    its gradients (oneDNN on); probed once per process on a tiny example, in
    a thread of its own: eager there even when first asked while a function
    is being traced (graphs are per thread; ``tf.init_scope`` would pause
    the gradient tape)."""
    import threading

    import tensorflow as tf

    def probe(answer: list) -> None:
        x, k = tf.ones((1, 4, 4, 4)), tf.ones((3, 3, 2, 4))
        try:
            with tf.GradientTape() as tape:
                tape.watch([x, k])
                y = tf.nn.conv2d(x, k, 1, "SAME")
            answer.append(all(g is not None for g in tape.gradient(y, [x, k])))
        except (tf.errors.InvalidArgumentError, tf.errors.UnimplementedError):
            answer.append(False)

    answer: list = []
    thread = threading.Thread(target=probe, args=(answer,))
    thread.start()
    thread.join()
    return bool(answer and answer[0])


@saving.register_keras_serializable(package="taskonomy_tf")
class GroupedConv2D(layers.Layer):
    """``groups`` independent convolutions in one op, "same" padding, no bias.

    Input (B, H, W, groups * c_in), output (B, H', W', groups * c_out);
    group g maps input channels [g c_in, (g + 1) c_in) to output channels
    [g c_out, (g + 1) c_out). Group g's kernel is drawn by ``initializer``
    with seed ``seeds[g]``, exactly as a ``Conv2D(c_out)`` on c_in channels
    with that seed would be: one group alone is that layer.

    On TensorFlow the op is ``tf.nn.conv2d`` with its implied group count
    where the build runs grouped convolutions natively (oneDNN's: the same
    outputs and gradients as separate convolutions, and 4x faster than them
    for 21 heads of 16 channels at 16 x 16 on an AVX-512 machine). TensorFlow
    turns oneDNN on only on CPUs with AVX-512 VNNI or newer (and never with
    ``TF_ENABLE_ONEDNN_OPTS=0`` or on ARM builds), and its own kernels refuse
    the grouped filter gradient; there (``grouped_conv_native()`` probes it
    once per process) the groups run as separate ``tf.nn.conv2d`` ops on
    channel slices: 17.6 ms per step for that program on an AVX2 machine,
    against 13.5 ms with oneDNN forced on. ``keras.ops.conv`` routes grouped
    convolutions through XLA on CPU, whose gradient took 2 to 3 s per step.
    Other backends use ``keras.ops.conv``.

    Args:
        groups: number of heads.
        filters: output channels per group.
        kernel_size: square kernel side.
        strides: square stride.
        seeds: one integer seed per group.
        initializer: ``glorot_uniform`` (Keras' Conv2D default) or ``zeros``.
    """

    def __init__(self, groups: int, filters: int, kernel_size: int = 3, strides: int = 1,
                 seeds=None, initializer: str = "glorot_uniform", **kwargs):
        super().__init__(**kwargs)
        self.groups, self.filters = int(groups), int(filters)
        self.kernel_size, self.strides = int(kernel_size), int(strides)
        self.seeds = [int(s) for s in seeds] if seeds is not None else list(range(self.groups))
        if len(self.seeds) != self.groups:
            raise ValueError(f"GroupedConv2D: {len(self.seeds)} seeds for {self.groups} groups")
        self.initializer = initializer

    def build(self, input_shape):
        c_in = input_shape[-1] // self.groups
        shape = (self.kernel_size, self.kernel_size, c_in, self.filters)

        def init(full_shape, dtype=None):
            if self.initializer == "zeros":
                return ops.zeros(full_shape, dtype)
            parts = [keras.initializers.get({"class_name": self.initializer,
                                             "config": {"seed": s}})(shape, dtype)
                     for s in self.seeds]
            return ops.concatenate(parts, axis=-1)

        self.kernel = self.add_weight(shape=(*shape[:3], self.groups * self.filters),
                                      initializer=init, name="kernel")

    def call(self, x):
        kernel = ops.cast(self.kernel, x.dtype)
        if keras.backend.backend() != "tensorflow":
            return ops.conv(x, kernel, self.strides, "same")
        import tensorflow as tf

        if self.groups == 1 or grouped_conv_native():
            return tf.nn.conv2d(x, kernel, self.strides, "SAME")
        return tf.concat([tf.nn.conv2d(a, k, self.strides, "SAME") for a, k in
                          zip(tf.split(x, self.groups, -1), tf.split(kernel, self.groups, -1))],
                         -1)

    def compute_output_shape(self, input_shape):
        b, h, w, _ = input_shape
        def side(n):
            return None if n is None else -(-n // self.strides)

        return (b, side(h), side(w), self.groups * self.filters)

    def get_config(self):
        return {**super().get_config(), "groups": self.groups, "filters": self.filters,
                "kernel_size": self.kernel_size, "strides": self.strides, "seeds": self.seeds,
                "initializer": self.initializer}


def _per_head(x, heads: int):
    """(B, s, s, H * c) -> (B, s, s, H, c)."""
    return ops.reshape(x, (-1, *x.shape[1:3], heads, x.shape[-1] // heads))


def _flat(x):
    """(B, s, s, H, c) -> (B, s, s, H * c)."""
    return ops.reshape(x, (-1, *x.shape[1:3], x.shape[3] * x.shape[4]))


def head_seeds(seeds, layer: str) -> list[int]:
    """The seed of one layer of each head, from the head's seed and the
    layer's name: every layer draws its own numbers, the same whether its
    head is trained alone or with others."""
    return [zlib.crc32(f"{int(s)}:{layer}".encode()) & 0x7FFFFFFF for s in seeds]


def readout_block(x, spec: TaskSpec, seeds, stride: int, name: str, views: int = 1,
                  pixels=None):
    """H readout heads on (B, s, s, H * c): the residual predictions,
    (B, f s, f s, H, C) for dense targets, (B, H, C) for vector ones, and
    (B, P, H, C) at given output pixels when ``pixels`` is given.

    Args:
        x: the heads' inputs; for a ``views``-view target, every view's
            (B, s, s, H * c) stacked view-major on the batch axis (V B).
        spec: the target.
        seeds: one integer per head (its initialisation).
        stride: the codes' stride (the pixel shuffle's factor is stride /
            the target's output stride).
        views: the target's views. The readout runs on each view with the
            same weights (a siamese readout, as the task networks run one
            encoder on every view); each head's per-view outputs are then
            concatenated on channels before its decoder, as the task
            networks concatenate per-view codes before their FC heads
            (reference section 3).
        pixels: a dense target's (B, P, H) int32 row-major indices into
            the output map, per head: the output is computed there only
            (``GroupedPointConv``).
    """
    heads = len(seeds)
    x = readout_streams(x, seeds, name)
    if views > 1:
        x = layers.Lambda(lambda t: _join_views(t, heads, views), name=f"{name}_join_views")(x)
    if spec.is_dense:
        return _dense_decoder(x, spec, seeds, stride // spec.output_stride, name, pixels)
    return _fc_decoder(x, spec, seeds, name)


def readout_streams(x, seeds, name: str):
    """The paper's readout for H heads (reference section 4): input
    BatchNorm, two streams of two 3x3 convs with BN and ReLU, their
    concatenation and a BatchNorm. (B, s, s, H * c) -> (B, s, s, H * 2c)."""
    heads = len(seeds)
    c = x.shape[-1] // heads
    x = FusedBatchNormalization(**BN, name=f"{name}_input_norm")(x)
    # the two streams of every head at once: 2H groups on the input, twice
    x = layers.Lambda(lambda t: _flat(ops.repeat(_per_head(t, heads), 2, axis=3)),
                      name=f"{name}_streams_in")(x)
    for i in range(2):
        stream_seeds = [s for pair in zip(head_seeds(seeds, f"stream0_conv{i}"),
                                          head_seeds(seeds, f"stream1_conv{i}")) for s in pair]
        x = GroupedConv2D(2 * heads, c, 3, seeds=stream_seeds,
                          name=f"{name}_stream_conv{i}")(x)
        x = layers.ReLU(name=f"{name}_stream_relu{i}")(
            FusedBatchNormalization(**BN, name=f"{name}_stream_bn{i}")(x))
    # each head's channels are now [stream 0, stream 1]: their concatenation
    return FusedBatchNormalization(**BN, name=f"{name}_merge_bn")(x)


def _join_views(x, heads: int, views: int):
    """(V B, s, s, H * c) view-major -> (B, s, s, H * V * c): each head's
    views side by side on its channels."""
    s, c = x.shape[1], x.shape[-1] // heads
    x = ops.reshape(x, (views, -1, s, s, heads, c))
    x = ops.transpose(x, (1, 2, 3, 4, 0, 5))
    return ops.reshape(x, (-1, s, s, heads * views * c))


def _dense_decoder(x, spec: TaskSpec, seeds, factor: int, name: str, pixels=None):
    """The target's ``small`` conv decoder per head -> (B, f s, f s, H, C),
    or (B, P, H, C) at ``pixels`` (B, P, H)."""
    heads = len(seeds)
    for i, width in enumerate(PRESETS["small"]["convs"]):
        x = GroupedConv2D(heads, width, 3, seeds=head_seeds(seeds, f"dec_conv{i}"),
                          name=f"{name}_dec_conv{i}")(x)
        x = layers.LeakyReLU(LEAK, name=f"{name}_dec_act{i}")(
            FusedBatchNormalization(**BN, name=f"{name}_dec_bn{i}")(x))
    if pixels is not None:
        return GroupedPointConv(heads, spec.channels, factor, seeds=head_seeds(seeds, "out"),
                                initializer=output_initializer(spec.loss), dtype="float32",
                                name=f"{name}_out")([x, pixels])
    x = GroupedConv2D(heads, spec.channels * factor * factor, 1,
                      seeds=head_seeds(seeds, "out"), initializer=output_initializer(spec.loss),
                      dtype="float32", name=f"{name}_out")(x)
    return layers.Lambda(lambda t: _shuffle_heads(t, heads, factor), dtype="float32",
                         name=f"{name}_shuffle")(x)


@saving.register_keras_serializable(package="taskonomy_tf")
class GroupedPointConv(GroupedConv2D):
    """A dense head's last layer (``GroupedConv2D`` 1x1 to f * f * C channels,
    then the pixel shuffle) evaluated at given output pixels only.

    The weights are those of ``GroupedConv2D(groups, f * f * channels, 1,
    seeds=...)``, drawn from the same seeds, so the outputs equal the full
    map's at those pixels. A sampling loss (the segmentation metric's 300
    of 4,096 pixels at 64 px) then never makes the (B, S, S, H, C) map, its
    pixel shuffle, nor their gradients: each pixel's feature vector (its
    code cell's) is multiplied by the head's kernel of the pixel's place
    inside the cell (f * f kernels: ``models.group_matmul``).

    Inputs: ``[x, pixels]``: x (B, s, s, H * w) features; pixels (B, P, H)
    int32, row-major indices into each head's (f s, f s) output map.
    Output: (B, P, H, channels).

    Args:
        groups: heads; channels: C; factor: f (output side / s).
    """

    def __init__(self, groups: int, channels: int, factor: int, seeds=None,
                 initializer: str = "glorot_uniform", **kwargs):
        super().__init__(groups, channels * factor * factor, 1, 1, seeds, initializer,
                         **kwargs)
        self.channels, self.factor = int(channels), int(factor)

    def build(self, input_shape):
        super().build(input_shape[0])

    def call(self, inputs):
        x, pixels = inputs
        return _point_conv(x, pixels, ops.cast(self.kernel, x.dtype), self.factor,
                           self.groups, self.channels)

    def compute_output_shape(self, input_shape):
        x, pixels = input_shape
        return (*pixels, self.channels)

    def get_config(self):
        config = super().get_config()
        for key in ("filters", "kernel_size", "strides"):
            config.pop(key)
        return {**config, "channels": self.channels, "factor": self.factor}


def _point_conv(x, pixels, kernel, f: int, heads: int, channels: int):
    """``GroupedPointConv``'s output: x (B, s, s, H w) features, pixels (B, P,
    H) int32, kernel (1, 1, w, H f f C) -> (B, P, H, C)."""
    s = x.shape[1]
    width = x.shape[-1] // heads
    pixels = ops.cast(pixels, "int32")
    row, col = pixels // (s * f), pixels % (s * f)
    cell = (row // f) * s + col // f  # (B, P, H): the code cell of each pixel
    sub = (row % f) * f + col % f  # its place in the cell, the shuffle's order
    # each (image, pixel, head)'s feature row of the (B s s H, w) features
    batch = ops.arange(ops.shape(x)[0], dtype="int32")[:, None, None]
    rows = (batch * (s * s) + cell) * heads + ops.arange(heads, dtype="int32")
    z = ops.take(ops.reshape(x, (-1, width)), ops.reshape(rows, (-1,)), axis=0)
    # kernel (1, 1, w, H f f C) -> per head and place in the cell (w, C)
    kernels = ops.transpose(ops.reshape(kernel, (width, heads, f * f, channels)), (1, 2, 0, 3))
    out = group_matmul(ops.reshape(z, (-1, heads, width)), kernels,
                       ops.reshape(sub, (-1, heads)))
    return ops.reshape(out, (-1, ops.shape(pixels)[1], heads, channels))


def _fc_decoder(x, spec: TaskSpec, seeds, name: str):
    """The target's ``small`` FC head per head -> (B, H, C): flatten, then
    ``fc_layers - 1`` blocks of Dense + BN + ReLU + dropout (each head's mask
    from its own seed: the same numbers alone or fused), then a
    zero-initialised linear Dense."""
    heads = len(seeds)
    s = x.shape[1]
    x = layers.Lambda(lambda t: ops.reshape(ops.transpose(_per_head(t, heads), (0, 3, 1, 2, 4)),
                                            (-1, heads, s * s * (t.shape[-1] // heads))),
                      name=f"{name}_flatten")(x)
    width = PRESETS["small"]["fc"]
    for i in range(spec.fc_layers - 1):
        x = GroupedDense(width, seeds=head_seeds(seeds, f"fc{i}"), name=f"{name}_fc{i}")(x)
        x = layers.Reshape((heads * width,), name=f"{name}_fc{i}_flat")(x)
        x = layers.ReLU(name=f"{name}_fc{i}_relu")(
            FusedBatchNormalization(**BN, name=f"{name}_fc{i}_bn")(x))
        x = layers.Reshape((heads, width), name=f"{name}_fc{i}_heads")(x)
        x = HeadsDropout(DROPOUT, seeds=head_seeds(seeds, f"drop{i}"),
                         name=f"{name}_fc{i}_drop")(x)
    return GroupedDense(spec.channels, seeds=head_seeds(seeds, "out"),
                        initializer=output_initializer(spec.loss), dtype="float32",
                        name=f"{name}_out")(x)


@saving.register_keras_serializable(package="taskonomy_tf")
class HeadsDropout(layers.Layer):
    """Dropout of (B, H, C) with head h's mask drawn from its own seed
    ``seeds[h]``, as a lone head's ``Dropout(rate, seed=seeds[h])`` would draw
    it: a head's masks do not depend on the heads beside it."""

    def __init__(self, rate: float, seeds, **kwargs):
        super().__init__(**kwargs)
        self.rate = float(rate)
        self.seeds = [int(s) for s in seeds]
        self.generators = [keras.random.SeedGenerator(s) for s in self.seeds]

    def call(self, x, training=False):
        if not training or self.rate == 0:
            return x
        return ops.stack([keras.random.dropout(x[:, h], self.rate, seed=g)
                          for h, g in enumerate(self.generators)], axis=1)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "rate": self.rate, "seeds": self.seeds}


@saving.register_keras_serializable(package="taskonomy_tf")
class GroupedDense(layers.Layer):
    """H independent dense layers: (B, H, I) -> (B, H, units), no bias
    (a BatchNormalization follows, or the output is zero-initialised).

    Args:
        units: outputs per head.
        seeds: one integer seed per head (``glorot_uniform`` draws).
        initializer: ``glorot_uniform`` or ``zeros``.
    """

    def __init__(self, units: int, seeds=None, initializer: str = "glorot_uniform", **kwargs):
        super().__init__(**kwargs)
        self.units = int(units)
        self.seeds = None if seeds is None else [int(s) for s in seeds]
        self.initializer = initializer

    def build(self, input_shape):
        heads, fan_in = input_shape[1], input_shape[2]
        seeds = self.seeds or list(range(heads))

        def init(shape, dtype=None):
            if self.initializer == "zeros":
                return ops.zeros(shape, dtype)
            return ops.stack([keras.initializers.get({"class_name": self.initializer,
                                                      "config": {"seed": s}})(
                (fan_in, self.units), dtype) for s in seeds])

        self.kernel = self.add_weight(shape=(heads, fan_in, self.units), initializer=init,
                                      name="kernel")

    def call(self, x):
        # heads as the batch of one batched product: TensorFlow's einsum of
        # the same product took 4-9x as long with its kernel gradient
        # (egomotion's 72 heads of 12,288 x 256: 0.44 s against 1.9-4.3 s)
        x = ops.matmul(ops.transpose(x, (1, 0, 2)), ops.cast(self.kernel, x.dtype))
        return ops.transpose(x, (1, 0, 2))

    def compute_output_shape(self, input_shape):
        return (input_shape[0], input_shape[1], self.units)

    def get_config(self):
        return {**super().get_config(), "units": self.units, "seeds": self.seeds,
                "initializer": self.initializer}


def _shuffle_heads(x, heads: int, f: int):
    """(B, s, s, H * f * f * C) -> (B, f s, f s, H, C): each head's pixel
    shuffle, in ``PixelShuffle``'s channel order."""
    s = x.shape[1]
    c = x.shape[-1] // (heads * f * f)
    x = ops.reshape(x, (-1, s, s, heads, f, f, c))
    x = ops.transpose(x, (0, 1, 4, 2, 5, 3, 6))
    return ops.reshape(x, (-1, s * f, s * f, heads, c))


def pixels_front(images, seeds, code_size: int, name: str = "pixels"):
    """The ``pixels`` baseline's side encoders, one per seed, trained from scratch.

    As the original ``..._pix_only`` transfer (reference section 4): the
    image, resized to 4x the code side (64 px for 16x16 codes), passes a
    3x3 convolution, then a stride-4 convolution down to the code grid with
    the representation's 8 channels.

    Args:
        images: (B, S, S, n * 3) float32 in [-1, 1], one image per seed.
        seeds: one integer per seed (its side encoder's initialisation).

    Returns:
        (B, c, c, n * 8) codes.
    """
    n = len(seeds)
    side = 4 * code_size
    x = images
    if images.shape[1] != side:
        x = layers.Resizing(side, side, name=f"{name}_resize")(x)
    x = GroupedConv2D(n, 16, 3, seeds=head_seeds(seeds, "side_conv"), name=f"{name}_conv")(x)
    x = layers.ReLU(name=f"{name}_relu")(x)
    return GroupedConv2D(n, REPRESENTATION_CHANNELS, 4, strides=4,
                         seeds=head_seeds(seeds, "side_down"),
                         name=f"{name}_down")(x)


def gather_heads(codes, plan: np.ndarray, name: str):
    """Arranges per-seed inputs into head order: (B, K, s, s, c) stacked
    inputs and ``plan`` (H,) indices into K -> (B, s, s, H * c)."""
    def arrange(t):
        t = ops.take(t, ops.convert_to_tensor(plan, "int32"), axis=1)  # (B, H, s, s, c)
        t = ops.transpose(t, (0, 2, 3, 1, 4))
        return ops.reshape(t, (-1, *t.shape[1:3], t.shape[3] * t.shape[4]))

    return layers.Lambda(arrange, name=name)(codes)
