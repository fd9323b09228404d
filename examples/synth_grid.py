"""Draws every domain of a few synthetic views: docs/img/synth_grid.png.

    python examples/synth_grid.py [--out docs/img/synth_grid.png] [--views 3] [--size 128]

Runtime: a few seconds on a 2-core CPU. Expected result: one row per view,
one column per domain, decoded with ``taskonomy_tf.data.decode_raw``.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from taskonomy_tf.data import decode_raw  # noqa: E402
from taskonomy_tf.synth import SynthConfig, generate  # noqa: E402

DOMAINS = ["rgb", "depth_zbuffer", "depth_euclidean", "normal", "reshading",
           "principal_curvature", "edge_texture", "edge_occlusion", "keypoints2d",
           "keypoints3d", "segment_unsup2d", "segment_unsup25d", "segment_semantic"]


def show(ax, domain, values, valid):
    if domain == "rgb":
        img = values
    elif domain == "normal":
        img = (values + 1) / 2 * valid[..., None]
    elif domain == "principal_curvature":
        img = np.concatenate([np.clip(values / 60 + 0.5, 0, 1), np.zeros_like(values[..., :1])], -1)
    elif domain.startswith("segment"):
        ids = values[..., 0]
        rng = np.random.default_rng(0)
        img = rng.uniform(0, 1, (256, 3))[ids % 256]
        if domain == "segment_semantic":
            img[ids == 0] = 0
    else:
        img = np.where(valid, values[..., 0], np.nan)
    ax.imshow(img, cmap="viridis" if img.ndim == 2 else None)
    ax.set_xticks([])
    ax.set_yticks([])


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--out", default="docs/img/synth_grid.png")
    p.add_argument("--views", type=int, default=3)
    p.add_argument("--size", type=int, default=128)
    a = p.parse_args()
    tmp = Path(tempfile.mkdtemp())
    generate(tmp, SynthConfig(buildings=1, points=a.views, views=1, size=a.size, seed=3),
             progress=False)
    building = next(tmp.iterdir())
    fig, axes = plt.subplots(a.views, len(DOMAINS), figsize=(1.3 * len(DOMAINS), 1.45 * a.views))
    for v in range(a.views):
        for c, domain in enumerate(DOMAINS):
            token = "segmentsemantic" if domain == "segment_semantic" else domain
            data = (building / domain / f"point_{v}_view_0_domain_{token}.png").read_bytes()
            show(axes[v, c], domain, *decode_raw(domain, data))
            if v == 0:
                axes[v, c].set_title(domain.replace("_", "\n", 1), fontsize=7)
    fig.tight_layout(pad=0.3)
    Path(a.out).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(a.out, dpi=110)
    print(a.out)


if __name__ == "__main__":
    main()
