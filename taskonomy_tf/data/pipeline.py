"""``make_dataset``: TFRecord shards -> ``(images, targets, sample_weights)``.

Three stages, each a plain function:
1. decode (``records.decode_domain``): every needed domain in physical
   units at the image size; cached here when ``cache`` is set;
2. parse (``_to_example``): joint augmentation, the input rule, and each
   task's target encoding (``targets.TARGETS``) with its weight;
3. assemble: interleave, shuffle, repeat, batch, prefetch.

Tasks whose labels come from the camera JSON (poses, egomotion, matching,
room layout, vanishing points) read view tuples built by ``views``.
"""

from __future__ import annotations

from collections.abc import Sequence

import tensorflow as tf

from taskonomy_tf.data import card, records, targets, views
from taskonomy_tf.data.masks import DEPTH_MASK_DOMAIN, apply_mask
from taskonomy_tf.errors import InputError
from taskonomy_tf.tasks import TaskSpec, get_task

AUTOTUNE = tf.data.AUTOTUNE
# The map functions are graph code already (tf.cond, tf.map_fn, no Python
# control flow on tensors): AutoGraph's conversion of them and everything they
# call cost 3-4 s per dataset in a fresh process (docs/performance.md) and
# changes nothing. Python control flow on a tensor then fails loudly.
_plain = tf.autograph.experimental.do_not_convert
INPUT_STREAM = 7  # the input rule's random stream, folded into each example's seed


def _specs(tasks: str | TaskSpec | Sequence[str | TaskSpec]) -> list[TaskSpec]:
    if isinstance(tasks, (str, TaskSpec)):
        tasks = [tasks]
    specs = [get_task(t) for t in tasks]
    if not specs:
        raise InputError("make_dataset: tasks is empty")
    return specs


def required_domains(specs: list[TaskSpec], held: list[str]) -> list[str]:
    """Domains to decode; raises naming what is missing and what is present."""
    need = ["rgb"]
    for spec in specs:
        if spec.domain is None:
            raise InputError(f"task {spec.name!r} has no labels (a source-only baseline)")
        if spec.domain not in held:
            raise InputError(
                f"task {spec.name!r} needs domain {spec.domain!r}, missing from the records; "
                f"domains present: {', '.join(held)}"
            )
        need.append(spec.domain)
        if spec.mask == "depth_valid" and DEPTH_MASK_DOMAIN in held:
            need.append(DEPTH_MASK_DOMAIN)
    if "rgb" not in held:
        raise InputError(f"the records hold no rgb; domains present: {', '.join(held)}")
    return list(dict.fromkeys(need))


def _decode_record(domains: list[str], size: int):
    """raw record -> ({domain: (values, valid)}, id) with the record's id
    ``building/point/view`` (``records.example_id``)."""
    spec = records.feature_spec(domains)

    def fn(raw):
        parsed = tf.io.parse_single_example(raw, spec)
        return ({d: records.decode_domain(parsed, d, size) for d in domains},
                records.example_id(parsed))

    return fn


def _flip(values: tf.Tensor) -> tf.Tensor:
    """Mirrors an (S, S, ...) map left-right; vectors and scalars pass."""
    return tf.reverse(values, axis=[1]) if values.shape.rank >= 2 else values


def _to_example(specs: list[TaskSpec], augment: bool, base_seed: int, with_ids: bool):
    flip_rules = {s.hflip for s in specs}
    can_flip = augment and "never" not in flip_rules
    input_rule = specs[0].input

    def fn(index, decoded):
        dom, ident = decoded
        seed = tf.stack([tf.cast(base_seed, tf.int64), index])
        if can_flip:
            do_flip = tf.random.stateless_uniform([], seed) < 0.5
            dom = {d: tuple(tf.cond(do_flip, lambda v=v: _flip(v), lambda v=v: v)
                            for v in vw) for d, vw in dom.items()}
        image = dom["rgb"][0]
        x, jig = targets.INPUTS.get(input_rule)(
            image, tf.random.experimental.stateless_fold_in(seed, INPUT_STREAM), specs[0])
        ys, ws = {}, {}
        for spec in specs:
            values, valid = dom[spec.domain]
            if can_flip and spec.hflip == "negate_x":
                values = tf.cond(do_flip, lambda v=values: tf.concat([-v[..., :1], v[..., 1:]], -1),
                                 lambda v=values: v)
            if jig is not None:
                y, w = jig, tf.constant(1.0)
            else:
                y, w = targets.TARGETS.get(spec.decode)(spec, values, valid)
            ys[spec.name], ws[spec.name] = y, apply_mask(spec, dom, w)
        return (x, ys, ws, ident) if with_ids else (x, ys, ws)

    return fn


def make_dataset(
    path,
    tasks,
    split: str | None = "train",
    batch_size: int = 32,
    image_size: int = 256,
    shuffle: bool | None = None,
    repeat: bool = False,
    cache: bool | str = False,
    augment: bool | None = None,
    seed: int = 0,
    drop_remainder: bool = False,
    shuffle_buffer: int = 1024,
    label_stats: tuple | None = None,
    with_ids: bool = False,
    deterministic: bool = True,
) -> tf.data.Dataset:
    """Batches for ``model.fit`` from the shards in ``path``.

    Args:
        path: a folder of shards (``<split>-NNNNN-of-NNNNN.tfrecord``) or one file.
        tasks: one task name/spec or several (they must share the input rule).
        split: shard prefix to read; ``None`` reads every shard in the folder.
        batch_size: examples per batch.
        image_size: side of the square input in pixels.
        shuffle: shuffle files and examples; default ``split == "train"``.
        repeat: repeat forever.
        cache: ``True`` caches decoded, resized examples in memory; a path
            caches them on disk.
        augment: joint random horizontal flip of input and targets (normals
            negate x; tasks whose labels are not flip-equivariant are never
            flipped); default ``split == "train"``.
        seed: makes shuffling, augmentation and random inputs reproducible.
        drop_remainder: drop the last partial batch.
        label_stats: (mean, std) of the labels of a standardised task (poses,
            room layout): the trained network's (its ``label_stats.json``);
            default: the training split's (``views.training_stats``).
        with_ids: also yield each example's id (B,) string: the record's
            ``building/point/view``; view tuples join their views' ids with
            ``+``. Results are joined by these ids, never by position.
        deterministic: keep the element order of the parallel stages (the
            same seed gives the same batches); ``False`` lets a slow
            element be overtaken, for throughput on many cores.

    Returns:
        A dataset of ``(images, targets, sample_weights)``: images float32
        (B, S, S, C) in [-1, 1] ((B, V, S, S, 3) for V-view tasks);
        targets and sample_weights are dicts keyed by task name; dense
        weights are (B, S', S') and 0 where there is no label, others (B,).

    Raises:
        ValueError: a task without labels, a missing domain (naming the
            domains present), or tasks that cannot share one input.
        FileNotFoundError: no shards for the split.
    """
    card.use_records(path)  # a dataset card's tasks, known from the records' manifest
    specs = _specs(tasks)
    shuffle = (split == "train") if shuffle is None else shuffle
    augment = (split == "train") if augment is None else augment
    files = records.find_shards(path, split)
    held = records.domains_in(files)
    if any(s.uses_point_info for s in specs):
        if len(specs) > 1:
            raise InputError("tasks labelled from point_info (poses, matching, layout, "
                             "vanishing points) are read one at a time")
        ds = views.view_tuples(path, files, specs[0], image_size, shuffle, seed, held,
                               label_stats, deterministic)
        if cache:
            ds = ds.cache() if cache is True else ds.cache(str(cache))
    else:
        if len({s.input for s in specs}) > 1:
            raise InputError("tasks with different inputs cannot share a dataset: "
                             + ", ".join(f"{s.name}={s.input}" for s in specs))
        domains = required_domains(specs, held)
        ds = tf.data.Dataset.from_tensor_slices(files)
        if shuffle:
            ds = ds.shuffle(len(files), seed=seed)
        ds = ds.interleave(tf.data.TFRecordDataset, cycle_length=min(4, len(files)),
                           num_parallel_calls=min(4, len(files)), deterministic=deterministic)
        ds = ds.map(_plain(_decode_record(domains, image_size)), num_parallel_calls=AUTOTUNE,
                    deterministic=deterministic)
        if cache:
            ds = ds.cache() if cache is True else ds.cache(str(cache))
    if shuffle:
        ds = ds.shuffle(shuffle_buffer, seed=seed)
    if repeat:
        ds = ds.repeat()
    ds = ds.enumerate()
    if any(s.uses_point_info for s in specs):
        ds = ds.map(_plain(views.to_example(specs[0], with_ids)), num_parallel_calls=AUTOTUNE,
                    deterministic=deterministic)
    else:
        ds = ds.map(_plain(_to_example(specs, augment, seed, with_ids)),
                    num_parallel_calls=AUTOTUNE, deterministic=deterministic)
    ds = ds.batch(batch_size, drop_remainder=drop_remainder, num_parallel_calls=AUTOTUNE,
                  deterministic=deterministic)
    options = tf.data.Options()
    options.deterministic = deterministic
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.AUTO
    return ds.with_options(options).prefetch(AUTOTUNE)


def make_inputs(path, task: str | TaskSpec, split: str | None = "train", batch_size: int = 64,
                image_size: int = 256, seed: int = 0) -> tf.data.Dataset:
    """The inputs ``task``'s network receives when its codes feed a
    transfer, with each record's id, in record order.

    ``targets.source_input``: the task's own input rule (grayscale for
    colorization, noise for denoising, the centre mask for in-painting;
    random draws seeded by ``seed`` and the record's position), or its
    source form (jigsaw: the nine tiles in place). Every record of the split
    is read (only its ``rgb``), whether or not it holds the task's labels.

    Returns:
        A dataset of ``(inputs, ids)``: float32 (B, S, S, C) in [-1, 1], or
        (B, T, S, S, 3) for tiled inputs; ids (B,) string
        ``building/point/view``.
    """
    card.use_records(path)
    spec = _specs(task)[0]
    files = records.find_shards(path, split)
    ds = tf.data.TFRecordDataset(files).map(_plain(_decode_record(["rgb"], image_size)),
                                            num_parallel_calls=AUTOTUNE, deterministic=True)

    def fn(index, decoded):
        dom, ident = decoded
        seed_ = tf.random.experimental.stateless_fold_in(
            tf.stack([tf.cast(seed, tf.int64), index]), INPUT_STREAM)
        return targets.source_input(dom["rgb"][0], seed_, spec), ident

    ds = ds.enumerate().map(_plain(fn), num_parallel_calls=AUTOTUNE, deterministic=True)
    return ds.batch(batch_size).prefetch(AUTOTUNE)
