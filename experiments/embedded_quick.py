"""A one-minute smoke run of the whole chain (``--quick``): not a result.

    python -m taskonomy_tf.pipeline --config experiments/embedded_quick.py

4 tasks of the embedded data at 32 px, 100 training steps per network,
readouts of 60 steps on 256 images with 2 seeds, 30 bootstrap resamples;
weak networks are reported, not refused.

Run time: about 1 minute on a 2-core x86_64 CPU machine once the embedded data
is built (about 2 minutes the first time). Expected result: a complete report; the
networks are short of their constants' loss by a little, and the taxonomy
ranks near-noise (use embedded_default for numbers).
"""

from taskonomy_tf.config import quick_experiment


def get_config():
    return quick_experiment()
