"""Your own encoders as transfer sources: ``--source NAME=FILE.keras``.

A team's existing network (a production backbone, an ImageNet model saved
without its classifier) joins the grid beside the trained task networks. It
must map images (B, S, S, 3), in [-1, 1] as every source here receives them
(put your own preprocessing inside the model), to a feature map
(B, h, w, C). To compare it with the task networks on the same terms, it
gets the same representation budget as theirs, a code of c x c x 8 (the
paper's 16 x 16 x 8 at 256 px): its map is resized to the code grid (area
averaging when it is larger, bilinear when smaller) and projected onto its 8
principal components, fitted once on the transfer split's training images
(centred; fewer channels than 8 are zero-padded). The wrapped model is
saved as the source's ``encoder.keras`` in a workdir of its own
(``config.json`` records the file's SHA-256), so the feature cache, the
grid's content key and every table treat it like any other source.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import numpy as np

from taskonomy_tf.errors import InputError

_NAME = re.compile(r"^[a-z][a-z0-9_]*$")
PCA_IMAGES = 512  # transfer-split images the projection is fitted on, at most


def parse_sources(items) -> dict[str, str]:
    """``["backbone=nets/r50.keras", ...]`` -> {name: path}.

    Raises:
        InputError: not NAME=FILE.keras, a name that is a task or a baseline,
            a repeated name, or no such file (one line).
    """
    from taskonomy_tf.tasks import get_task
    from taskonomy_tf.transfer.grid import BASELINES

    out: dict[str, str] = {}
    for item in items or ():
        name, sep, path = str(item).partition("=")
        name, path = name.strip(), path.strip()
        if not sep or not _NAME.match(name) or not path.endswith(".keras"):
            raise InputError(f"--source {item!r}: expected NAME=FILE.keras with a snake_case "
                             "NAME")
        try:
            get_task(name)
            taken = True
        except KeyError:
            taken = name in BASELINES
        if taken or name in out:
            raise InputError(f"--source {name}: the name is taken (a task, a baseline or "
                             "another --source)")
        if not Path(path).is_file():
            raise InputError(f"--source {name}: {path}: no such file")
        out[name] = path
    return out


def _check_output(model, image_size: int, name: str):
    shape = tuple(model.compute_output_shape((1, image_size, image_size, 3)))
    if len(shape) != 4 or shape[-1] is None:
        raise InputError(f"--source {name}: expected a model mapping (B, {image_size}, "
                         f"{image_size}, 3) images to a (B, h, w, C) feature map; its output is "
                         f"{shape}")
    return shape


def user_source(name: str, model_file: str | os.PathLike, data, split: str, image_size: int,
                root: str | os.PathLike) -> Path:
    """The workdir of source ``name``: ``model_file`` resized to the code grid
    and projected onto 8 principal components fitted on ``split`` (built
    once per file, data and size; reused while they are the same).

    Raises:
        InputError: the model does not load in safe mode or does not give a
            feature map (one line naming the source and the shape expected).
    """
    import keras

    from taskonomy_tf.data.pipeline import make_inputs
    from taskonomy_tf.fileio import atomic_path, sha256_file, write_json_atomic
    from taskonomy_tf.models.encoders import REPRESENTATION_CHANNELS, code_stride
    from taskonomy_tf.transfer.cache import data_fingerprint

    workdir = Path(root) / name
    stamp = {"task": None, "source": name, "source_file": str(Path(model_file).resolve()),
             "source_sha256": sha256_file(Path(model_file)), "image_size": image_size,
             "data": data_fingerprint(data, split), "split": split, "encoder": "user"}
    config = workdir / "config.json"
    if config.is_file() and json.loads(config.read_text()) == stamp and (
            workdir / "encoder.keras").is_file():
        return workdir
    try:
        model = keras.saving.load_model(model_file, safe_mode=True, compile=False)
    except Exception as exc:  # a file Keras cannot read, or one that needs unsafe code
        raise InputError(f"--source {name}: {model_file} does not load as a Keras model in "
                         f"safe mode ({type(exc).__name__}: {str(exc).splitlines()[0][:200]})"
                         ) from None
    model.trainable = False
    _check_output(model, image_size, name)
    side = image_size // code_stride(image_size)
    inputs = keras.Input((image_size, image_size, 3))
    features = model(inputs, training=False)
    big = features.shape[1] > side
    grid = keras.layers.Resizing(side, side, interpolation="area" if big else "bilinear",
                                 name=f"{name}_to_code_grid")(features)
    resized = keras.Model(inputs, grid)
    ds = make_inputs(data, "autoencoding", split=split, batch_size=32, image_size=image_size)
    rows, seen = [], 0
    for x, _ in ds:
        f = np.asarray(resized(x, training=False), np.float64)
        rows.append(f.reshape(-1, f.shape[-1]))
        seen += len(f)
        if seen >= PCA_IMAGES:
            break
    pixels = np.concatenate(rows)
    mean = pixels.mean(0)
    _, _, vt = np.linalg.svd(pixels - mean, full_matrices=False)
    k = min(REPRESENTATION_CHANNELS, vt.shape[0])
    kernel = np.zeros((1, 1, pixels.shape[1], REPRESENTATION_CHANNELS), np.float32)
    kernel[0, 0, :, :k] = vt[:k].T
    bias = np.zeros(REPRESENTATION_CHANNELS, np.float32)
    bias[:k] = -(mean @ vt[:k].T)
    project = keras.layers.Conv2D(REPRESENTATION_CHANNELS, 1, name=f"{name}_pca", trainable=False)
    encoder = keras.Model(inputs, project(grid), name=f"source_{name}")
    project.set_weights([kernel, bias])
    workdir.mkdir(parents=True, exist_ok=True)
    with atomic_path(workdir / "encoder.keras") as tmp:
        encoder.save(tmp)
    write_json_atomic(config, stamp, sort_keys=False)
    return workdir


def user_sources(sources: dict[str, str], data, split: str, image_size: int,
                 root: str | os.PathLike) -> dict[str, Path]:
    """{name: workdir} for every ``--source`` (``parse_sources``'s dict)."""
    return {n: user_source(n, f, data, split, image_size, root) for n, f in sources.items()}
