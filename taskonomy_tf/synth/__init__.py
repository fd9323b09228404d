"""The embedded synthetic dataset: procedural rooms rendered in the Taskonomy format.

``generate`` writes raw files in the original release layout; ``embedded_dataset``
returns a ready TFRecord folder, built once into the user's cache.
"""

from taskonomy_tf.synth.generate import SynthConfig, generate

__all__ = ["SynthConfig", "embedded_dataset", "generate"]


def __getattr__(name):
    if name == "embedded_dataset":
        from taskonomy_tf.synth.embedded import embedded_dataset

        return embedded_dataset
    raise AttributeError(name)
