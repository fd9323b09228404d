"""What a shard or a folder of shards holds.

    python -m tfrecords_tools.inspect PATH [--limit N] [--json]

Prints the record count, splits, buildings, and per domain: how many
records hold it, its stored shape and dtype, and the range of its decoded
values (physical units, ``taskonomy_tf.data.decode``) over the first
``--limit`` records.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from taskonomy_tf.console import quiet_tensorflow, set_verbose
from taskonomy_tf.data import schema


def _files(path: Path) -> list[Path]:
    if path.is_file():
        return [path]
    if not path.is_dir():
        raise FileNotFoundError(f"{path}: no such file or folder")
    files = sorted(p for p in path.iterdir() if schema.parse_shard_name(p.name))
    if not files:
        raise FileNotFoundError(f"{path}: holds no <split>-NNNNN-of-NNNNN.tfrecord shards")
    return files


def inspect(path: str | Path, limit: int = 64) -> dict:
    """Summary of the records under ``path`` as a dict (see module doc)."""
    import tensorflow as tf

    from taskonomy_tf.data.decode import (
        decode_png_tensor,
        physical_from_pixels,
        physical_from_vector,
    )

    files = _files(Path(path))
    summary: dict = {"path": str(path), "shards": len(files), "records": 0, "splits": {},
                     "buildings": set(), "domains": {}}
    seen = 0
    for f in files:
        split = schema.parse_shard_name(f.name)[0] if schema.parse_shard_name(f.name) else "?"
        for raw in tf.data.TFRecordDataset(str(f)):
            ex = tf.train.Example.FromString(raw.numpy()).features.feature
            summary["records"] += 1
            summary["splits"][split] = summary["splits"].get(split, 0) + 1
            summary["buildings"].add(ex[schema.META_BUILDING].bytes_list.value[0].decode())
            held = [d.decode() for d in ex[schema.META_DOMAINS].bytes_list.value]
            for d in held:
                info = summary["domains"].setdefault(d, {"records": 0})
                info["records"] += 1
                if seen >= limit:
                    continue
                spec = schema.DOMAINS[d]
                if spec.storage == "png":
                    pix = decode_png_tensor(ex[spec.encoded_key].bytes_list.value[0], spec)
                    values, valid = physical_from_pixels(d, pix)
                    info["shape"], info["dtype"] = list(pix.shape), pix.dtype.name
                elif spec.storage == "npy":
                    values = physical_from_vector(d, np.array(ex[spec.values_key].float_list.value))
                    valid = np.array(True)
                    info["shape"], info["dtype"] = [spec.length], "float32"
                else:
                    info["shape"], info["dtype"] = [], "json"
                    continue
                v, ok = np.asarray(values, np.float64), np.asarray(valid)
                sel = v[ok] if ok.ndim and ok.any() else v.ravel()
                lo, hi = float(sel.min()), float(sel.max())
                info["min"] = min(info.get("min", lo), lo)
                info["max"] = max(info.get("max", hi), hi)
                if ok.ndim:
                    info.setdefault("valid_fraction", []).append(float(ok.mean()))
            seen += 1
    summary["buildings"] = sorted(summary["buildings"])
    for info in summary["domains"].values():
        if "valid_fraction" in info:
            info["valid_fraction"] = round(float(np.mean(info["valid_fraction"])), 4)
    return summary


def format_summary(s: dict) -> str:
    lines = [f"{s['path']}: {s['records']} records in {s['shards']} shard(s); splits "
             + ", ".join(f"{k}={v}" for k, v in s["splits"].items())
             + f"; {len(s['buildings'])} building(s)",
             f"{'domain':22s} {'records':>8s}  {'stored':22s} {'decoded range':>24s}  valid"]
    for d, info in sorted(s["domains"].items()):
        stored = f"{'x'.join(map(str, info.get('shape', [])))} {info.get('dtype', '')}"
        rng = (f"[{info['min']:.4g}, {info['max']:.4g}]" if "min" in info else "")
        valid = f"{info['valid_fraction']:.3f}" if "valid_fraction" in info else ""
        lines.append(f"{d:22s} {info['records']:8d}  {stored:22s} {rng:>24s}  {valid}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m tfrecords_tools.inspect",
                                description=__doc__.split("\n")[0])
    p.add_argument("path", help="a shard or a folder of shards")
    p.add_argument("--limit", type=int, default=64, help="records whose values are decoded")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.add_argument("--verbose", action="store_true",
                   help="show TensorFlow's own log lines (hidden by default)")
    a = p.parse_args(argv)
    set_verbose(a.verbose)
    quiet_tensorflow()
    try:
        s = inspect(a.path, a.limit)
    except FileNotFoundError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(json.dumps(s, indent=1) if a.json else format_summary(s))
    return 0


if __name__ == "__main__":
    sys.exit(main())
