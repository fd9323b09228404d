"""The default run: what ``python -m taskonomy_tf.pipeline`` does with no arguments.

    python -m taskonomy_tf.pipeline --config experiments/embedded_default.py

The embedded synthetic dataset (3,000 views of 300 rooms, 96 px), 6 tasks
(2D edges, 2D keypoints, autoencoding, z-depth, normals, reshading), small
networks at 64 px (460 steps of 32), first-order transfers with 3 readout
seeds (150 steps of 16 on the 480 ``val`` images), 100 bootstrap resamples.

Run time: about 6 minutes on a 2-core x86_64 CPU machine without a GPU, 47 s of
it building the data (cached afterwards). Expected result (docs/results.md,
seeds 0-2): every network at 0.22-0.71 of its constant prediction's loss;
cluster contrasts 3D->3D / 2D->3D about 3.2-3.9 and 2D->2D / 3D->2D about
10-15, both intervals above 1 (the paper's: 4.6 and 38); the same dictionary
at every budget across seeds (budget 2: edges + normals).
"""

from taskonomy_tf.config import ExperimentConfig


def get_config() -> ExperimentConfig:
    return ExperimentConfig(name="embedded_default")
