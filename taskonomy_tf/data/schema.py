"""The TFRecord contract and the raw-file conventions, standard library only.

Shared by ``tfrecords_tools`` (which writes records) and
``taskonomy_tf.data`` (which reads them); a round-trip test holds the two
together. See ``docs/data.md`` for the schema in prose.

Raw file names follow ``point_<P>_view_<V>_domain_<token>.<ext>``
(taskonomy data/README; omnidata ``download.py``). Most domains use their
folder name as token; the quirks of the real release are listed in
``DomainSpec.tokens`` (``class_scene/`` holds ``..._domain_class_places.npy``,
``segment_semantic/`` holds ``..._domain_segmentsemantic.png``).
"""

from __future__ import annotations

import dataclasses
import re

SCHEMA_VERSION = 1

FILENAME_RE = re.compile(
    r"^point_(?P<point>\d+)_view_(?P<view>\d+)_domain_(?P<token>\w+?)\.(?P<ext>[a-z]+)$"
)


@dataclasses.dataclass(frozen=True)
class DomainSpec:
    """How one dataset domain is stored on disk and in records.

    Args:
        name: the domain folder name (``depth_zbuffer``).
        storage: ``png`` (kept as bytes), ``npy`` (stored as a float list),
            ``json`` (kept as bytes); for dataset-card labels also
            ``tensor`` (a float32 (H, W, C) array as ``tf.io.serialize_tensor``
            bytes), ``int`` (one int64, -1 when absent) and ``floats`` (a
            float list of ``length``, NaN when absent).
        bit_depth: PNG bit depth that is expected (8 or 16); 0 otherwise.
        channels: accepted PNG channel counts.
        length: vector length for ``npy`` domains.
        tokens: domain tokens accepted in file names (first = canonical).
        folders: folder names accepted for this domain (first = canonical;
            the others are older release names).
        resize: interpolation used by ``convert --resize``: ``bilinear`` for
            values without an invalid code, ``nearest`` for labels and for
            maps whose invalid code must not be blended into valid values.
        decode: the decoding rule in ``taskonomy_tf.data.decode``.
        decoded_channels: channels of the decoded values.
        labels: integer labels, resized with nearest neighbours when read.
        drop_alpha: an alpha channel is accepted and dropped (RGB).
        invalid_code: some stored value means "no label" (so a validity
            mask must be decoded and resized along with the values).
        antialias: anti-alias when resizing for the pipeline (the input).
        scale: (low, high): a card's dense regression PNG, whose full
            integer range maps linearly onto [low, high].
        ignore: a card's class-map value that means "no label".
        mask_nonzero: a card's dense regression map is valid where nonzero.
        card: the domain is a dataset card's label (``data.card``).
    """

    name: str
    storage: str
    bit_depth: int = 0
    channels: tuple[int, ...] = ()
    length: int = 0
    tokens: tuple[str, ...] = ()
    folders: tuple[str, ...] = ()
    resize: str = "nearest"
    decode: str = ""
    decoded_channels: int = 1
    labels: bool = False
    drop_alpha: bool = False
    invalid_code: bool = False
    antialias: bool = False
    scale: tuple[float, float] | None = None
    ignore: int | None = None
    mask_nonzero: bool = False
    card: bool = False

    @property
    def extension(self) -> str:
        return self.storage

    @property
    def encoded_key(self) -> str:
        return feature_key(self.name, "encoded")

    @property
    def values_key(self) -> str:
        return feature_key(self.name, "values")

    def all_tokens(self) -> tuple[str, ...]:
        return self.tokens or (self.name,)

    def all_folders(self) -> tuple[str, ...]:
        return self.folders or (self.name,)


def _png(name: str, bits: int, channels: tuple[int, ...], decode: str,
         resize: str = "nearest", **kw) -> DomainSpec:
    return DomainSpec(name, "png", bits, channels, resize=resize, decode=decode, **kw)


# Bit depths and channels: taskonomy data/README and the verified samples in
# ../shared/data/taskonomy_samples/SOURCE.md.
DOMAINS: dict[str, DomainSpec] = {
    d.name: d
    for d in (
        _png("rgb", 8, (3,), "rgb", "bilinear", decoded_channels=3, drop_alpha=True,
             antialias=True),
        _png("depth_zbuffer", 16, (1,), "depth", invalid_code=True,
             folders=("depth_zbuffer", "depth")),
        _png("depth_euclidean", 16, (1,), "depth", invalid_code=True,
             folders=("depth_euclidean", "mist")),
        _png("normal", 8, (3,), "normal", decoded_channels=3, invalid_code=True),
        _png("principal_curvature", 8, (3,), "curvature", decoded_channels=2, invalid_code=True,
             folders=("principal_curvature", "curvature")),
        _png("reshading", 8, (1, 3), "unit8_first", folders=("reshading", "reshade")),
        _png("edge_texture", 16, (1,), "unit16", "bilinear", folders=("edge_texture", "edge")),
        _png("edge_occlusion", 16, (1,), "unit16", "bilinear"),
        _png("keypoints2d", 16, (1,), "unit16", "bilinear",
             folders=("keypoints2d", "keypoint_2d")),
        _png("keypoints3d", 16, (1,), "unit16", "bilinear"),
        _png("segment_unsup2d", 8, (1,), "ids", labels=True,
             folders=("segment_unsup2d", "segment2d")),
        _png("segment_unsup25d", 8, (1,), "ids", labels=True,
             folders=("segment_unsup25d", "segment25d")),
        _png("segment_semantic", 8, (1,), "semantic", labels=True, invalid_code=True,
             tokens=("segmentsemantic", "segment_semantic"),
             folders=("segment_semantic", "segmentsemantic")),
        _png("mask_valid", 8, (1,), "binary", labels=True, invalid_code=True),
        # class_object holds ImageNet logits, class_scene Places
        # probabilities (taskonomy data/README, load_ops.py)
        DomainSpec("class_object", "npy", length=1000, decode="logits"),
        DomainSpec("class_scene", "npy", length=365, decode="probabilities",
                   tokens=("class_places", "class_scene")),
        DomainSpec("point_info", "json", tokens=("point_info", "fixatedpose"),
                   folders=("point_info", "points")),
    )
}

# file-name token -> domain, folder name -> domain
TOKEN_TO_DOMAIN = {t: d.name for d in DOMAINS.values() for t in d.all_tokens()}
FOLDER_TO_DOMAIN = {f: d.name for d in DOMAINS.values() for f in d.all_folders()}


def register_domain(spec: DomainSpec) -> DomainSpec:
    """Adds a dataset card's label domain (``data.card``). A label of the same
    name from a card read earlier is replaced: a process works with one
    card's labels at a time (the records it opens last).

    Raises:
        ValueError: the name is a dataset domain of the catalog.
    """
    old = DOMAINS.get(spec.name)
    if old is not None and not old.card or old is None and (
            spec.name in FOLDER_TO_DOMAIN or spec.name in TOKEN_TO_DOMAIN):
        raise ValueError(f"label {spec.name!r}: the name is a Taskonomy domain; rename the label")
    DOMAINS[spec.name] = spec
    TOKEN_TO_DOMAIN[spec.name] = FOLDER_TO_DOMAIN[spec.name] = spec.name
    return spec


# ---------------------------------------------------------------- records
META_BUILDING = "meta/building"  # bytes
META_POINT = "meta/point"  # int64
META_VIEW = "meta/view"  # int64
META_HEIGHT = "meta/height"  # int64, of the stored rgb
META_WIDTH = "meta/width"  # int64
META_DOMAINS = "meta/domains"  # bytes list: the domains this record holds
META_ID = "meta/id"  # bytes: a dataset card's sample id (absent in Taskonomy records)
POINT_INFO_KEY = "point_info/encoded"  # JSON bytes


def feature_key(domain: str, field: str) -> str:
    """``<domain>/<field>``, e.g. ``edge_texture/encoded``."""
    return f"{domain}/{field}"


SHARD_SUFFIX = ".tfrecord"
MANIFEST_NAME = "manifest.json"


def shard_name(split: str, index: int, count: int) -> str:
    """``<split>-00000-of-000NN.tfrecord``."""
    return f"{split}-{index:05d}-of-{count:05d}{SHARD_SUFFIX}"


SHARD_RE = re.compile(r"^(?P<split>[\w.]+)-(?P<index>\d{5})-of-(?P<count>\d{5})\.tfrecord$")


def parse_shard_name(name: str) -> tuple[str, int, int] | None:
    m = SHARD_RE.match(name)
    if not m:
        return None
    return m["split"], int(m["index"]), int(m["count"])
