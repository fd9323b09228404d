"""Scoring a target's fused readouts on the test images: one traced call per
batch against predictions copied out and scored on the host.

    python bench/readout_scoring.py [--targets depth_zbuffer normals segment_semantic
        segment_unsup2d class_scene] [--heads 78] [--images 480] [--image-size 64] [--repeats 3]

A transfer job ends by scoring every head on every test image
(``transfer.scoring.score_heads``). The code before it predicted a batch
(``predict_on_batch``), moved the heads' axis and reshaped the predictions
in numpy, copied the batch's targets and weights once per head, and scored
the result with ``per_image_losses`` (``per_image_point_losses`` for a
sampling loss): **host**, below, that code. **graph** pairs the targets with
every head's predictions inside the traced call that makes them.

On random codes and labels (``--heads`` heads of one source each, as the
whole graph's 26 candidates x 3 readout seeds), for each target: a fresh
model per repeat (a job scores one model, so each time includes its trace),
the two alternately, medians of ``--repeats``. Prints JSON: per target the
seconds of both, the ratio and the largest difference of their scores.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


def host(model, spec, heads, test, image_size, points):
    """The scoring before this change: (H, N) float64."""
    import numpy as np

    from taskonomy_tf.models.losses import fixed_pixels
    from taskonomy_tf.training.evaluate import per_image_losses, per_image_point_losses
    from taskonomy_tf.transfer.scoring import batch_images

    shape = spec.output_shape(image_size)
    fixed = np.asarray(fixed_pixels(shape[0] * shape[1])) if points else None
    step, out = batch_images(spec, heads, image_size), []
    for start in range(0, len(test.y), step):
        sl = slice(start, start + step)
        b = len(test.y[sl])
        feed = {"codes": test.codes[sl, None]}  # one replicate
        if points:
            feed["points"] = np.broadcast_to(fixed[None, :, None],
                                             (b, len(fixed), heads)).astype(np.int32)
        pred = np.moveaxis(np.asarray(model.predict_on_batch(feed)), -2, 1)
        pred = pred.reshape(b * heads, *pred.shape[2:])
        if points:
            y = np.repeat(test.y[sl].reshape(b, -1, test.y.shape[-1])[:, fixed], heads, 0)
            w = np.repeat(test.w[sl].reshape(b, -1).sum(1), heads, 0)
            out.append(per_image_point_losses(spec, y, pred, w).reshape(b, heads))
            continue
        y = np.repeat(test.y[sl, None], heads, 1).reshape(b * heads, *test.y.shape[1:])
        w = np.repeat(test.w[sl, None], heads, 1).reshape(b * heads, *test.w.shape[1:])
        out.append(per_image_losses(spec, y, pred, w).reshape(b, heads))
    return np.concatenate(out).T


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--targets", nargs="+",
                   default=["depth_zbuffer", "normals", "segment_semantic", "segment_unsup2d",
                            "class_scene"])
    p.add_argument("--heads", type=int, default=78)
    p.add_argument("--images", type=int, default=480)
    p.add_argument("--image-size", type=int, default=64)
    p.add_argument("--repeats", type=int, default=3)
    a = p.parse_args()
    import numpy as np

    from taskonomy_tf.models.encoders import code_stride
    from taskonomy_tf.models.losses import INDEX_LABEL_LOSSES
    from taskonomy_tf.tasks import get_task
    from taskonomy_tf.transfer.readout import (
        ReadoutArrays,
        build_readouts,
        plan_heads,
    )
    from taskonomy_tf.transfer.scoring import score_heads, uses_points

    rng = np.random.default_rng(0)
    side = a.image_size // code_stride(a.image_size)
    sources = [f"s{i}" for i in range(a.heads)]
    heads = plan_heads([(s,) for s in sources], [0])
    results = {}
    for target in a.targets:
        spec = get_task(target)
        shape = spec.output_shape(a.image_size)
        points = uses_points(spec)
        codes = np.maximum(rng.normal(size=(a.images, a.heads, side, side, 8)), 0)
        if spec.is_dense:
            y = (rng.integers(0, 12, (a.images, *shape[:2], 1)) if spec.loss in INDEX_LABEL_LOSSES
                 else rng.normal(size=(a.images, *shape)))
            w = (rng.uniform(size=(a.images, *shape[:2])) > 0.2)
        else:
            y = rng.dirichlet(np.ones(spec.channels), a.images)
            w = np.ones(a.images)
        test = ReadoutArrays(codes.astype("float32"), y.astype("float32"), w.astype("float32"))
        prior = np.zeros(shape, "float32")
        times = {"host": [], "graph": []}
        for _ in range(a.repeats):
            for name in times:
                model = build_readouts(spec, heads, sources, a.image_size, prior)
                for layer in model.layers:  # heads that differ
                    if layer.name.endswith("_out"):
                        layer.kernel.assign(0.1 * rng.normal(size=layer.kernel.shape))
                start = time.perf_counter()
                if name == "host":
                    before = host(model, spec, a.heads, test, a.image_size, points)
                else:
                    now = score_heads(model, spec, a.heads, test, a.image_size, 1,
                                      sources=True, pixels=False)
                times[name].append(time.perf_counter() - start)
                if name == "graph":  # the same model's scores the other way
                    before = host(model, spec, a.heads, test, a.image_size, points)
                    diff = float(np.max(np.abs(now - before) / np.maximum(np.abs(before), 1e-6)))
        host_s, graph_s = (statistics.median(times[k]) for k in ("host", "graph"))
        results[target] = {"host_seconds": round(host_s, 2), "graph_seconds": round(graph_s, 2),
                           "speedup": round(host_s / graph_s, 2),
                           "max_relative_difference": diff}
    print(json.dumps({"heads": a.heads, "images": a.images, "image_size": a.image_size,
                      "repeats": a.repeats, "targets": results,
                      "machine": f"{platform.machine()}, {os.cpu_count()} cores"}, indent=1))


if __name__ == "__main__":
    main()
