"""Raw Taskonomy / Omnidata folders -> sharded TFRecords.

* ``reader``: finds samples in either folder layout, with the release's
  naming quirks, and groups the files of one (building, point, view);
* ``checks``: validates each file before it is written;
* ``convert``: the sharded, resumable converter (``python -m
  tfrecords_tools.convert``);
* ``inspect``: what a shard or a folder of shards holds.

TensorFlow is used only to write records; no Keras.
"""

import os as _os

_os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
