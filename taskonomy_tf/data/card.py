"""Dataset cards: a team's own images and labels, declared as data.

A card is a folder holding ``dataset.json`` and a CSV of samples::

    {"name": "shapes", "samples": "samples.csv", "image": "rgb", "group": "group",
     "labels": {
       "disk_mask":  {"kind": "dense_classes", "classes": 2},
       "disk_dist":  {"kind": "dense_regression", "range": [0, 1]},
       "disk_count": {"kind": "classes", "classes": 6},
       "light_dir":  {"kind": "vector", "length": 2}}}

The CSV has a header with ``id``, ``split`` (train/val/test), the image
column, the optional group column (samples of one group stay in one split
and are resampled together by the bootstrap) and one column per label
(``tfrecords_tools.card`` reads it; docs/your_data.md). A label's kind
decides its task (``KINDS``): output head, loss, metric, target encoding
and so the constant prior; a card may override ``loss`` (among the kind's
``losses``), ``cluster`` (a family name), ``title`` and ``hflip``.

The converter writes the normalised card into the records' manifest, and
``use_records`` registers its tasks (``tasks.register_task``) and label
domains (``schema.register_domain``) in any process that opens the
records: commands, worker processes and user scripts alike, with nothing
to register by hand. Standard library only.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
from pathlib import Path
from typing import Any

from taskonomy_tf.data import schema
from taskonomy_tf.errors import InputError
from taskonomy_tf.tasks import OutputKind, TaskSpec

CARD_FILE = "dataset.json"
CARD_VERSION = 1
SPLITS = ("train", "val", "test")
_NAME = re.compile(r"^[a-z][a-z0-9_]*$")


@dataclasses.dataclass(frozen=True)
class Kind:
    """What a label kind means: the task's output and the defaults users
    expect (issue 22: L1 for regression, cross-entropy for classes, MSE for
    vectors), the losses a card may choose instead, and the storage."""

    output: OutputKind
    loss: str
    losses: tuple[str, ...]
    decode: str  # target encoding (data.targets)
    hflip: str  # a mirrored image's label: flips with it, or never mirrored
    storage: str  # schema.DomainSpec.storage
    dense: bool


KINDS = {
    "dense_classes": Kind(OutputKind.DENSE, "pixel_sparse_ce", ("pixel_sparse_ce",),
                          "card_class_map", "keep", "png", True),
    "dense_regression": Kind(OutputKind.DENSE, "masked_l1", ("masked_l1", "masked_l2"),
                             "card_range", "keep", "png", True),
    "classes": Kind(OutputKind.CLASSES, "soft_ce", ("soft_ce",), "card_one_hot", "keep",
                    "int", False),
    # a vector (a direction, a position) rarely survives a mirror: never flipped
    "vector": Kind(OutputKind.VECTOR, "mse", ("mse",), "card_vector", "never", "floats",
                   False),
}
METRIC_OF_LOSS = {"pixel_sparse_ce": "pixel_accuracy", "masked_l1": "mae", "masked_l2": "rmse",
                  "soft_ce": "top1", "mse": "rmse"}
DEFAULT_CLUSTER = "other"


@dataclasses.dataclass(frozen=True)
class Label:
    """One label column, normalised (``Card.from_dict`` checks every field).

    Attributes:
        classes: class count (``dense_classes``, ``classes``).
        range: (low, high) of a ``dense_regression`` map, in its own units:
            PNG values map linearly onto it, and the target scales it to
            [-1, 1].
        length: entries of a ``vector``.
        channels: channels of a ``dense_regression`` map (1 or 3).
        ignore: a ``dense_classes`` value meaning "no label".
        mask: ``"nonzero"``: a ``dense_regression`` map is valid where nonzero.
        storage: ``png`` or ``tensor`` (``.npy`` maps) for dense regression,
            set by the converter from the files.
    """

    name: str
    kind: str
    classes: int = 0
    range: tuple[float, float] | None = None
    length: int = 0
    channels: int = 1
    ignore: int | None = None
    mask: str | None = None
    loss: str = ""
    cluster: str = DEFAULT_CLUSTER
    title: str = ""
    hflip: str = ""
    storage: str = ""

    @property
    def rule(self) -> Kind:
        return KINDS[self.kind]

    @property
    def width(self) -> int:
        """Output channels: classes, vector length or map channels."""
        return {"dense_classes": self.classes, "classes": self.classes,
                "vector": self.length}.get(self.kind, self.channels)


@dataclasses.dataclass(frozen=True)
class Card:
    name: str
    samples: str
    image: str
    group: str | None
    labels: tuple[Label, ...]

    def to_dict(self) -> dict[str, Any]:
        out = {"card_version": CARD_VERSION, "name": self.name, "samples": self.samples,
               "image": self.image, "group": self.group, "labels": {},
               # the labels' order, kept where JSON is written with sorted keys
               "label_order": [lab.name for lab in self.labels]}
        for lab in self.labels:
            d = {k: v for k, v in dataclasses.asdict(lab).items() if k != "name"}
            out["labels"][lab.name] = {k: (list(v) if isinstance(v, tuple) else v)
                                       for k, v in d.items()}
        return out

    @classmethod
    def from_dict(cls, d: Any, where: str = CARD_FILE) -> Card:
        """A card from its JSON form, every field checked.

        Raises:
            InputError: one line naming the field and what was expected.
        """
        if not isinstance(d, dict):
            raise InputError(f"{where}: expected a JSON object")
        known = {"card_version", "name", "samples", "image", "group", "labels", "description",
                 "label_order"}
        extra = sorted(set(d) - known)
        if extra:
            raise InputError(f"{where}: unknown key {extra[0]!r}; known: "
                             f"{', '.join(sorted(known))}")
        for key in ("name", "samples", "image"):
            if not isinstance(d.get(key), str) or not d[key]:
                raise InputError(f"{where}: {key!r} must be a non-empty string")
        group = d.get("group")
        if group is not None and (not isinstance(group, str) or not group):
            raise InputError(f"{where}: 'group' must be a column name or absent")
        labels = d.get("labels")
        if not isinstance(labels, dict) or not labels:
            raise InputError(f"{where}: 'labels' must map each label column to its kind")
        order = d.get("label_order") or list(labels)
        if sorted(order) != sorted(labels):
            raise InputError(f"{where}: 'label_order' must list every label once")
        return cls(d["name"], d["samples"], d["image"], group,
                   tuple(_label(n, labels[n], f"{where}: labels.{n}") for n in order))

    def tasks(self) -> list[TaskSpec]:
        return [task_spec(self, lab) for lab in self.labels]


def _label(name: str, d: Any, where: str) -> Label:
    if not _NAME.match(str(name)):
        raise InputError(f"{where}: a label name must be snake_case (a-z, 0-9, _)")
    if not isinstance(d, dict):
        raise InputError(f"{where}: expected an object with a 'kind'")
    kind = d.get("kind")
    if kind not in KINDS:
        raise InputError(f"{where}.kind: {kind!r}; expected one of {', '.join(sorted(KINDS))}")
    fields = {f.name for f in dataclasses.fields(Label)} - {"name", "kind"}
    extra = sorted(set(d) - fields - {"kind"})
    if extra:
        raise InputError(f"{where}: unknown key {extra[0]!r}; known: kind, "
                         f"{', '.join(sorted(fields - {'storage'}))}")
    rule = KINDS[kind]

    def integer(key, low):
        v = d.get(key)
        if not isinstance(v, int) or isinstance(v, bool) or v < low:
            raise InputError(f"{where}.{key}: expected an integer >= {low}, got {v!r}")
        return v

    kw: dict[str, Any] = {}
    if kind in ("dense_classes", "classes"):
        kw["classes"] = integer("classes", 2)
    if kind == "vector":
        kw["length"] = integer("length", 1)
    if kind == "dense_regression":
        r = d.get("range")
        if (not isinstance(r, (list, tuple)) or len(r) != 2
                or not all(isinstance(x, (int, float)) for x in r) or not r[0] < r[1]):
            raise InputError(f"{where}.range: expected [low, high] with low < high, got {r!r}")
        kw["range"] = (float(r[0]), float(r[1]))
        if "channels" in d and d["channels"] not in (1, 3):
            raise InputError(f"{where}.channels: expected 1 or 3, got {d['channels']!r}")
        kw["channels"] = d.get("channels", 1)
        if d.get("mask") not in (None, "nonzero"):
            raise InputError(f"{where}.mask: expected \"nonzero\" or absent, got {d['mask']!r}")
        kw["mask"] = d.get("mask")
        if d.get("storage") not in (None, "", "png", "tensor"):
            raise InputError(f"{where}.storage: expected png or tensor")
        kw["storage"] = d.get("storage") or ""
    if kind == "dense_classes" and d.get("ignore") is not None:
        ig = d["ignore"]
        if not isinstance(ig, int) or not 0 <= ig <= 255 or ig < kw["classes"]:
            raise InputError(f"{where}.ignore: expected a value from classes ({kw['classes']}) "
                             f"to 255, got {ig!r}")
        kw["ignore"] = ig
    loss = d.get("loss") or rule.loss
    if loss not in rule.losses:
        raise InputError(f"{where}.loss: {loss!r}; a {kind} label takes "
                         f"{', '.join(rule.losses)}")
    cluster = d.get("cluster") or DEFAULT_CLUSTER
    if not isinstance(cluster, str) or not _NAME.match(cluster):
        raise InputError(f"{where}.cluster: expected a snake_case family name, got {cluster!r}")
    hflip = d.get("hflip") or rule.hflip
    if hflip not in ("keep", "negate_x", "never"):
        raise InputError(f"{where}.hflip: expected keep, negate_x or never, got {hflip!r}")
    title = d.get("title") or str(name).replace("_", " ")
    if not isinstance(title, str):
        raise InputError(f"{where}.title: expected a string")
    return Label(str(name), kind, loss=loss, cluster=cluster, title=title, hflip=hflip, **kw)


def load_card(folder: str | os.PathLike) -> Card:
    """The card of a folder (``folder/dataset.json``).

    Raises:
        InputError: no card, not JSON, or a field that is wrong (one line).
    """
    path = Path(folder) / CARD_FILE
    try:
        text = path.read_text()
    except OSError as exc:
        raise InputError(f"{path}: cannot read the dataset card ({exc.strerror})") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InputError(f"{path}: not JSON ({exc.msg}, line {exc.lineno})") from None
    return Card.from_dict(data, str(path))


def is_card(folder: str | os.PathLike) -> bool:
    return (Path(folder) / CARD_FILE).is_file()


def domain_spec(lab: Label) -> schema.DomainSpec:
    """How a label is stored in records and decoded (``data.decode``)."""
    if lab.kind == "dense_classes":
        return schema.DomainSpec(lab.name, "png", 8, (1,), resize="nearest",
                                 decode="card_classes", labels=True,
                                 invalid_code=lab.ignore is not None, ignore=lab.ignore,
                                 card=True)
    if lab.kind == "dense_regression":
        return schema.DomainSpec(lab.name, lab.storage or "png", 16, (lab.channels,),
                                 resize="bilinear", decode="card_scaled",
                                 decoded_channels=lab.channels, invalid_code=lab.mask is not None,
                                 scale=lab.range, mask_nonzero=lab.mask == "nonzero", card=True)
    if lab.kind == "classes":
        return schema.DomainSpec(lab.name, "int", length=1, decode="card_class", card=True)
    return schema.DomainSpec(lab.name, "floats", length=lab.length, decode="card_vector",
                             card=True)


def task_spec(card: Card, lab: Label) -> TaskSpec:
    rule = lab.rule
    return TaskSpec(
        name=lab.name, title=lab.title, domain=lab.name, aliases=(), output=rule.output,
        channels=lab.width, loss=lab.loss, metric=METRIC_OF_LOSS[lab.loss], decode=rule.decode,
        cluster=lab.cluster, code_name=lab.name, results_name=lab.name,
        description=f"{lab.kind} label {lab.name!r} of dataset card {card.name!r}",
        value_range=lab.range, hflip=lab.hflip, card=card.name)


def register_card(card: Card) -> list[str]:
    """Registers the card's label domains and tasks in this process; returns
    the task names. A task of the same name from a card registered earlier is
    replaced (the records opened last define it).

    Raises:
        InputError: a label named like a catalog task or Taskonomy domain.
    """
    from taskonomy_tf.tasks import get_task, register_task, unregister_task

    specs = card.tasks()
    for spec in specs:
        try:
            old = get_task(spec.name)
        except KeyError:
            old = None
        if old is not None and old.card is None:
            raise InputError(f"dataset card {card.name!r}: label {spec.name!r} is named like the "
                             f"catalog task {old.name!r}; rename the label")
    for lab, spec in zip(card.labels, specs):
        try:
            schema.register_domain(domain_spec(lab))
        except ValueError as exc:
            raise InputError(f"dataset card {card.name!r}: {exc}") from None
        try:
            old = get_task(spec.name)
        except KeyError:
            old = None
        if old != spec:
            if old is not None:
                unregister_task(old.name)
            register_task(spec)
    return [s.name for s in specs]


def card_of_records(path: str | os.PathLike) -> Card | None:
    """The card a folder of records was converted from (its manifest's
    ``card``), or ``None`` for other records."""
    folder = Path(path)
    manifest = (folder if folder.is_dir() else folder.parent) / schema.MANIFEST_NAME
    try:
        data = json.loads(manifest.read_text())
    except (OSError, ValueError):
        return None
    card = data.get("card") if isinstance(data, dict) else None
    return Card.from_dict(card, str(manifest)) if card else None


def use_records(path: str | os.PathLike | None) -> list[str]:
    """Registers the tasks of the card behind ``path`` (records converted
    from a card, or a card folder itself); returns their names (none for
    other data). Cheap to call again."""
    if path is None:
        return []
    card = load_card(path) if is_card(path) else card_of_records(path)
    return register_card(card) if card else []
