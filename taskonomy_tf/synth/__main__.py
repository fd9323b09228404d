"""Synthetic Taskonomy-format data.

    python -m taskonomy_tf.synth --out DIR [--buildings N] [--points P] [--views V]
        [--size S] [--seed K] [--workers W] [--rooms R]
    python -m taskonomy_tf.synth --embedded      # build (or find) the default TFRecords
    python -m taskonomy_tf.synth --planted --out DIR [--samples N] [--size S] [--seed K]
        [--families disk,wave,light]            # a dataset card with a known taxonomy

Writes ``DIR/<building>/<domain>/point_P_view_V_domain_D.ext`` (the original
release layout), which ``python -m tfrecords_tools.convert`` reads.
"""

from __future__ import annotations

import argparse
import os
import sys

from taskonomy_tf.synth.generate import SynthConfig, generate


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m taskonomy_tf.synth",
                                description="Procedural indoor scenes in the Taskonomy format.")
    p.add_argument("--out", help="output folder (raw files)")
    p.add_argument("--embedded", action="store_true",
                   help="build or find the default TFRecord dataset in the cache; print its path")
    p.add_argument("--buildings", type=int, default=2)
    p.add_argument("--points", type=int, default=10)
    p.add_argument("--views", type=int, default=3)
    p.add_argument("--size", type=int, help="image side, px (default 128; --planted: 64)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--rooms", type=int, default=3)
    p.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    p.add_argument("--planted", action="store_true",
                   help="write a planted-taxonomy dataset card (taskonomy_tf.synth.planted)")
    p.add_argument("--samples", type=int, default=2400, help="--planted: images in all")
    p.add_argument("--families", default="disk,wave,light",
                   help="--planted: families of hidden factors (disk, wave, light)")
    p.add_argument("--quiet", action="store_true")
    p.add_argument("--verbose", action="store_true",
                   help="show TensorFlow's own log lines (hidden by default)")
    a = p.parse_args(argv)
    from taskonomy_tf.console import quiet_tensorflow, set_verbose

    set_verbose(a.verbose)
    quiet_tensorflow()
    if a.embedded:
        from taskonomy_tf.synth.embedded import embedded_dataset

        print(embedded_dataset(workers=a.workers, progress=not a.quiet))
        return 0
    if not a.out:
        p.error("--out is required (or --embedded)")
    if a.planted:
        from taskonomy_tf.synth.planted import PlantedConfig, write_planted

        cfg = PlantedConfig(samples=a.samples, size=a.size or PlantedConfig.size, seed=a.seed,
                            families=tuple(f for f in a.families.split(",") if f))
        try:
            write_planted(a.out, cfg)
        except ValueError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
        print(f"wrote a planted card of {a.samples} samples ({', '.join(cfg.families)}) to "
              f"{a.out}; its truth: {a.out}/planted.json")
        return 0
    for name in ("buildings", "points", "views", "rooms"):
        if getattr(a, name) < 1:
            p.error(f"--{name} must be >= 1")
    size = a.size or 128
    if size < 16:
        p.error("--size must be >= 16")
    cfg = SynthConfig(a.buildings, a.points, a.views, size, a.seed, a.rooms)
    generate(a.out, cfg, workers=a.workers, progress=not a.quiet)
    print(f"wrote {a.buildings * a.points * a.views} views to {a.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
