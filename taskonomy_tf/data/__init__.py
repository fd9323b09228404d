"""Data: raw decoding in physical units and the tf.data pipeline.

``schema`` is standard-library only; the rest imports TensorFlow, lazily, so
``import taskonomy_tf.data.schema`` stays light.
"""

from __future__ import annotations

from typing import Any

__all__ = ["decode_raw", "make_dataset"]


def __getattr__(name: str) -> Any:
    if name == "decode_raw":
        from taskonomy_tf.data.decode import decode_raw

        return decode_raw
    if name == "make_dataset":
        from taskonomy_tf.data.pipeline import make_dataset

        return make_dataset
    raise AttributeError(name)
