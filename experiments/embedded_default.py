"""The default run: what ``python -m taskonomy_tf.pipeline`` does with no arguments.

    python -m taskonomy_tf.pipeline --config experiments/embedded_default.py

The embedded synthetic dataset (3,000 views of 300 rooms, 96 px), 6 tasks
(2D edges, 2D keypoints, autoencoding, z-depth, normals, reshading), small
networks at 64 px (up to 460 steps of 32, validated 8 times, the best state
kept), first-order transfers with 3 readout
seeds (150 steps of 16 on the 480 ``val`` images), 100 bootstrap resamples.

Run time: about 6 minutes on a 2-core x86_64 CPU machine with oneDNN, about 16
without (docs/results.md), 2 of them building the data (cached afterwards).
Expected result (docs/results.md, seeds 0-2): every network at 0.25-0.77 of its
floor; cluster contrasts 3D->3D / 2D->3D about 2.8-3.2 and 2D->2D / 3D->2D about
10-14, both intervals above 1 (the paper's: 4.6 and 38); mean Spearman against
the paper's 16k ranking 0.78-0.88 (the cluster-only ranking: 0.72); the paper's
dictionary at budgets 4-6.
"""

from taskonomy_tf.config import ExperimentConfig


def get_config() -> ExperimentConfig:
    return ExperimentConfig(name="embedded_default")
