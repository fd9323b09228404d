"""Checks each raw file before it is written, and optionally resizes it.

A file is rejected, with a one-line reason, when it does not decode, has
the wrong bit depth or channel count for its domain, a size different from
its view's RGB, a class vector of the wrong length or with non-finite
values, or a point_info that is not a JSON object.
"""

from __future__ import annotations

import io
import json
import math

import numpy as np
from PIL import Image

from taskonomy_tf.data import schema
from taskonomy_tf.data.pnginfo import png_info

Image.MAX_IMAGE_PIXELS = 1 << 28  # real files are 512 or 1024 px; refuse bombs


class BadFile(ValueError):
    """A raw file that cannot go into a record; the message is the reason."""


def _decode_png(data: bytes, spec: schema.DomainSpec) -> np.ndarray:
    try:
        info = png_info(data)
    except ValueError as exc:
        raise BadFile(str(exc)) from None
    if info.bit_depth != spec.bit_depth:
        raise BadFile(f"{info.bit_depth}-bit PNG where {spec.name} expects {spec.bit_depth}-bit")
    if info.palette:
        raise BadFile(f"palette PNG where {spec.name} expects plain values")
    channels = 3 if spec.drop_alpha and info.channels == 4 else info.channels
    if channels not in spec.channels:
        raise BadFile(f"{info.channels}-channel PNG where {spec.name} expects {spec.channels}")
    try:
        with Image.open(io.BytesIO(data)) as img:
            img.load()
            arr = np.asarray(img)
    except Exception as exc:  # PIL raises many types for corrupt data
        raise BadFile(f"PNG does not decode ({type(exc).__name__}: {exc})") from None
    if arr.shape[:2] != (info.height, info.width):
        raise BadFile("PNG decodes to a size other than its header's")
    return arr


def _resize(arr: np.ndarray, size: int, method: str) -> np.ndarray:
    if arr.shape[:2] == (size, size):
        return arr
    resample = Image.BILINEAR if method == "bilinear" else Image.NEAREST
    planes = arr[..., None] if arr.ndim == 2 else arr
    out = []
    for c in range(planes.shape[-1]):
        plane = Image.fromarray(planes[..., c].astype(np.float32), mode="F")
        out.append(np.asarray(plane.resize((size, size), resample)))
    res = np.stack(out, axis=-1)
    info = np.iinfo(arr.dtype)
    res = np.clip(np.rint(res), info.min, info.max).astype(arr.dtype)
    return res[..., 0] if arr.ndim == 2 else res


def _encode_png(arr: np.ndarray) -> bytes:
    buf = io.BytesIO()
    if arr.dtype == np.uint16:
        if arr.ndim != 2:
            raise BadFile("multi-channel 16-bit PNGs cannot be re-encoded with --resize")
        Image.fromarray(arr.astype(np.uint16)).save(buf, format="PNG")
    else:
        Image.fromarray(arr).save(buf, format="PNG")
    return buf.getvalue()


def check_png(data: bytes, spec: schema.DomainSpec,
              size: tuple[int, int] | None, resize: int | None) -> tuple[bytes, tuple[int, int]]:
    """Validates PNG bytes; returns the bytes to store and the (H, W) on disk.

    Args:
        size: the view's RGB (H, W), which every other image must match.
        resize: re-encode at ``resize`` x ``resize`` (``None`` keeps bytes).

    Raises:
        BadFile: with the reason.
    """
    arr = _decode_png(data, spec)
    hw = arr.shape[:2]
    if size is not None and hw != size:
        raise BadFile(f"size {hw[1]}x{hw[0]} differs from the view's RGB {size[1]}x{size[0]}")
    if resize is None:
        return data, hw
    if arr.ndim == 3 and arr.shape[-1] == 4 and spec.drop_alpha:
        arr = arr[..., :3]
    return _encode_png(_resize(arr, resize, spec.resize)), hw


def check_npy(data: bytes, spec: schema.DomainSpec) -> list[float]:
    """Validates a class vector; returns its values as floats."""
    try:
        arr = np.load(io.BytesIO(data), allow_pickle=False)
    except Exception as exc:  # never unpickled: object arrays are refused
        reason = "holds Python objects" if "allow_pickle" in str(exc) else type(exc).__name__
        raise BadFile(f".npy does not load as a numeric array ({reason})") from None
    if not np.issubdtype(arr.dtype, np.number):
        raise BadFile(f".npy of dtype {arr.dtype}, expected numbers")
    arr = arr.astype(np.float64).ravel()
    if arr.size != spec.length:
        raise BadFile(f"{arr.size} values where {spec.name} expects {spec.length}")
    if not np.all(np.isfinite(arr)):
        raise BadFile("non-finite values")
    return [float(x) for x in arr]


def check_json(data: bytes) -> bytes:
    """Validates a point_info file; returns canonical compact JSON bytes."""
    try:
        obj = json.loads(data)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise BadFile(f"not JSON ({exc})") from None
    if not isinstance(obj, dict):
        raise BadFile("point_info JSON is not an object")
    for key in ("camera_location", "camera_rotation_final"):
        vals = obj.get(key)
        if vals is not None and (
            not isinstance(vals, list) or len(vals) != 3
            or not all(isinstance(v, (int, float)) and math.isfinite(v) for v in vals)
        ):
            raise BadFile(f"point_info {key} is not 3 finite numbers")
    return json.dumps(obj, sort_keys=True, separators=(",", ":")).encode()
