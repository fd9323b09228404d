"""PNG header inspection with the standard library (no decoding).

Used to check a file before it is decoded: TensorFlow's ``decode_png`` with
``dtype=uint16`` silently rescales an 8-bit image by 257, so the bit depth
must be known first.
"""

from __future__ import annotations

import dataclasses
import struct

from taskonomy_tf.errors import InputError

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
# PNG colour type -> channels (PNG spec, IHDR chunk).
_CHANNELS = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}


@dataclasses.dataclass(frozen=True)
class PngInfo:
    """Header facts of a PNG: size in pixels, bit depth and channel count."""

    width: int
    height: int
    bit_depth: int
    channels: int
    palette: bool


def png_info(data: bytes) -> PngInfo:
    """Reads the IHDR chunk.

    Raises:
        ValueError: if ``data`` does not start like a PNG file.
    """
    if len(data) < 33 or not data.startswith(PNG_SIGNATURE) or data[12:16] != b"IHDR":
        raise InputError("not a PNG file (bad signature or missing IHDR)")
    width, height, bit_depth, colour = struct.unpack(">IIBB", data[16:26])
    if colour not in _CHANNELS:
        raise InputError(f"PNG with unknown colour type {colour}")
    return PngInfo(width, height, bit_depth, _CHANNELS[colour], colour == 3)
