"""``TaskSpec``: every fact about one task, as plain data.

Fields are strings, numbers, tuples and enums, never callables, so a spec
serialises to JSON (``TaskSpec.to_dict``) and can be written into
``config.json``. Behaviour is reached through registries by key: ``decode``
names a target encoding in ``taskonomy_tf.data.targets``, ``loss`` and
``metric`` name entries of the model-side registries, ``mask`` a validity
rule, ``input`` an input rule.
"""

from __future__ import annotations

import dataclasses
import enum
import re
from typing import Any

_SNAKE = re.compile(r"^[a-z][a-z0-9_]*$")
# validity-mask rules (implemented in data/masks.py; reference section on
# the label files): the z-buffer's mask, the label file's presence, label > 0
MASK_RULES = ("depth_valid", "file_present", "label_positive")


class Cluster(str, enum.Enum):
    """Task families of the paper's task-similarity tree (``task_tree.jpg``)."""

    GEOMETRIC_3D = "3d"
    TEXTURE_2D = "2d"
    LOW_DIM = "low_dim"  # low-dimensional geometric
    SEMANTIC = "semantic"


class OutputKind(str, enum.Enum):
    """What the network predicts."""

    DENSE = "dense"  # a per-pixel map, (H/stride, W/stride, channels)
    VECTOR = "vector"  # a low-dimensional regression target, (channels,)
    CLASSES = "classes"  # a (soft) class distribution, (channels,)
    NONE = "none"  # no labels (random projection)


@dataclasses.dataclass(frozen=True)
class TaskSpec:
    """One task of the catalog.

    Args:
        name: canonical snake_case name (registry and CLI key).
        title: readable name for plots and reports.
        domain: dataset domain folder the label is read from (``None`` for
            tasks without labels); ``"rgb"`` for self-supervised tasks.
        aliases: every other accepted name (paper, original code, results
            files, short names).
        output: what the network predicts.
        channels: output channels (dense) or vector length / class count.
        output_stride: dense output resolution is ``image_size // stride``.
        loss: key of the loss (model registries, issue 4).
        metric: key of the evaluation metric.
        decode: key of the target encoding in ``taskonomy_tf.data.targets``
            (how the decoded domain becomes the training target).
        value_range: range of the decoded value mapped onto [-1, 1] by the
            linear encodings; ``None`` where not applicable.
        clip: whether ``value_range`` clips.
        blur_sigma: Gaussian blur of the target, in pixels at 256 px.
        mask: a validity-mask rule (``MASK_RULES``), ``None`` for the
            target encoding's own validity only.
        cluster: family in the paper's task tree (``Cluster``), or a family
            of a user's own tasks (a snake_case string; dataset cards).
        views: number of input images per sample (2 for pairs, 3 for
            triplets, 9 for jigsaw tiles).
        input: key of the input rule (``rgb``, ``noisy_rgb``, ``luminance``,
            ``centre_masked``, ``jigsaw_tiles``).
        source_only: trained only to serve as a transfer source.
        hflip: horizontal-flip rule for augmentation: ``"keep"`` (target
            flips with the image), ``"negate_x"`` (also negate channel 0),
            ``"never"`` (the label is not flip-equivariant).
        code_name: name in the original TF1 code (``rgb2sfnorm``).
        results_name: name in the released result files.
        classes: key of a class-name list in ``tasks.classes`` or ``None``.
        fc_layers: fully connected layers of the head (low-dimensional
            tasks), the last one being the output layer.
        description: one line, with the source of its constants.
        card: the dataset card that declared the task (``data.card``);
            ``None`` for the catalog's and ``register_task``'s tasks.
    """

    name: str
    title: str
    domain: str | None
    aliases: tuple[str, ...]
    output: OutputKind
    channels: int
    loss: str
    metric: str
    decode: str
    cluster: Cluster | str
    code_name: str
    results_name: str
    description: str
    output_stride: int = 1
    value_range: tuple[float, float] | None = None
    clip: bool = False
    blur_sigma: float = 0.0
    mask: str | None = None
    views: int = 1
    input: str = "rgb"
    source_only: bool = False
    hflip: str = "keep"
    classes: str | None = None
    fc_layers: int = 2
    card: str | None = None

    def __post_init__(self) -> None:
        if not _SNAKE.match(self.name):
            raise ValueError(f"TaskSpec.name must be snake_case, got {self.name!r}")
        if not isinstance(self.cluster, Cluster):
            known = {c.value: c for c in Cluster}
            if str(self.cluster) in known:  # "3d" -> Cluster.GEOMETRIC_3D
                object.__setattr__(self, "cluster", known[str(self.cluster)])
            elif not _SNAKE.match(str(self.cluster)):
                raise ValueError(f"TaskSpec {self.name!r}: cluster must be snake_case, got "
                                 f"{self.cluster!r}")
        if self.output is not OutputKind.NONE and self.channels <= 0:
            raise ValueError(f"TaskSpec {self.name!r}: channels must be > 0")
        if self.hflip not in ("keep", "negate_x", "never"):
            raise ValueError(f"TaskSpec {self.name!r}: bad hflip {self.hflip!r}")
        if self.views < 1:
            raise ValueError(f"TaskSpec {self.name!r}: views must be >= 1")
        if self.mask is not None and self.mask not in MASK_RULES:
            raise ValueError(f"TaskSpec {self.name!r}: mask {self.mask!r}; expected None or one "
                             f"of {', '.join(MASK_RULES)}")

    # --- derived values -------------------------------------------------
    @property
    def decoder(self) -> str:
        """Decoder family: ``conv`` (pixels), ``fc``, ``siamese_fc`` or ``none``."""
        if self.output is OutputKind.NONE:
            return "none"
        if self.output is OutputKind.DENSE:
            return "conv"
        return "siamese_fc" if self.views > 1 else "fc"

    @property
    def cluster_name(self) -> str:
        """The family as a string: ``3d``, ``2d``, ``low_dim``, ``semantic`` or a user's."""
        return getattr(self.cluster, "value", self.cluster)

    @property
    def is_dense(self) -> bool:
        return self.output is OutputKind.DENSE

    @property
    def uses_point_info(self) -> bool:
        """Whether the label derives from the point_info camera JSON."""
        return self.domain == "point_info"

    def output_shape(self, image_size: int) -> tuple[int, ...]:
        """Shape of one prediction (no batch axis) for a square input."""
        if self.output is OutputKind.NONE:
            return ()
        if self.is_dense:
            side = image_size // self.output_stride
            return (side, side, self.channels)
        return (self.channels,)

    @property
    def names(self) -> tuple[str, ...]:
        """Every name that resolves to this task."""
        extra = (self.code_name, self.results_name)
        return tuple(dict.fromkeys((self.name, *self.aliases, *extra)))

    def to_dict(self) -> dict[str, Any]:
        out = dataclasses.asdict(self)
        out["output"] = self.output.value
        out["cluster"] = self.cluster_name
        return out
