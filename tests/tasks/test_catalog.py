from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from taskonomy_tf.tasks import (
    Cluster,
    OutputKind,
    TaskSpec,
    get_task,
    list_tasks,
    register_task,
    unregister_task,
)
from taskonomy_tf.tasks.classes import PLACES365_KEEP, SCENES, SEMANTIC

ROOT = Path(__file__).resolve().parents[2]


def test_catalog_has_the_papers_26_tasks():
    tasks = list_tasks()
    assert len(tasks) == 26
    assert {t.name for t in list_tasks(source_only=True)} == {
        "colorization", "inpainting", "jigsaw", "random"}
    assert len(list_tasks(source_only=False)) == 22


def test_every_name_in_the_published_results_resolves():
    path = ROOT.parent / "shared/data/taskonomy_results/affinities_16k.json"
    if not path.exists():
        pytest.skip("published results absent")
    data = json.loads(path.read_text())
    names = {s for r in data["records"] for s in r["sources"]} | set(data["targets"])
    # class_selected (a 100-class subset whose index list is not released) is
    # the one published source the catalog leaves out; self/pixels are baselines.
    for name in sorted(names - {"self", "pixels", "class_selected"}):
        assert get_task(name).results_name == name or name in get_task(name).names


@pytest.mark.parametrize("name,expected", [
    ("normals", "normals"), ("rgb2sfnorm", "normals"), ("normal", "normals"),
    ("edges", "edges"), ("edge2d", "edges"), ("edge_texture", "edges"),
    ("segmentsemantic_rb", "segment_semantic"), ("segmentsemantic", "segment_semantic"),
    ("class_places", "class_scene"), ("impainting_whole", "inpainting"),
    ("rgb2mist", "depth_euclidean"), ("Depth-Zbuffer", "depth_zbuffer"),
    ("vanishing_point_well_defined", "vanishing_points"), ("edge3d", "occlusion_edges"),
])
def test_get_task_accepts_names_domains_and_aliases(name, expected):
    assert get_task(name).name == expected


def test_unknown_task_lists_the_valid_ones():
    with pytest.raises(KeyError) as e:
        get_task("rgb")  # a domain several tasks share is not a task name
    assert "normals" in str(e.value) and "edges" in str(e.value)


def test_names_are_unique_across_tasks():
    seen: dict[str, str] = {}
    for t in list_tasks():
        for n in t.names:
            assert seen.setdefault(n, t.name) == t.name, n


def test_registry_keys_resolve():
    from taskonomy_tf.data import schema, targets, views

    for t in list_tasks():
        if t.output is OutputKind.NONE:
            continue
        assert t.domain in schema.DOMAINS, t.name
        assert t.decode in targets.TARGETS or t.decode in views.TUPLES, t.name
        assert t.input in targets.INPUTS, t.name


def test_spec_roundtrips_through_json():
    for t in list_tasks():
        d = json.loads(json.dumps(t.to_dict()))
        d["output"], d["cluster"] = OutputKind(d["output"]), Cluster(d["cluster"])
        d = {k: tuple(v) if isinstance(v, list) else v for k, v in d.items()}
        assert TaskSpec(**d) == t


def test_output_shapes_and_decoders():
    assert get_task("normals").output_shape(256) == (256, 256, 3)
    assert get_task("colorization").output_shape(256) == (64, 64, get_task("colorization").channels)
    assert get_task("egomotion").output_shape(256) == (18,)
    assert get_task("fixated_pose").decoder == "siamese_fc"
    assert get_task("room_layout").decoder == "fc"
    assert get_task("depth_zbuffer").decoder == "conv"
    assert {t.cluster for t in list_tasks()} == set(Cluster)


def test_class_lists_match_the_specs():
    assert len(PLACES365_KEEP) == len(SCENES) == get_task("class_scene").channels == 63
    assert len(set(PLACES365_KEEP)) == 63 and max(PLACES365_KEEP) < 365
    assert len(SEMANTIC) - 1 == get_task("segment_semantic").channels == 17


def test_generated_label_sets_match_the_specs():
    import numpy as np

    from taskonomy_tf.data.targets import ab_bins, jigsaw_permutations

    assert len(ab_bins()) == get_task("colorization").channels
    perms = jigsaw_permutations()
    assert perms.shape == (get_task("jigsaw").channels, 9)
    assert len({tuple(p) for p in perms}) == 100
    assert all(sorted(p) == list(range(9)) for p in perms)
    # far apart: random sets of 100 have pairs at distance 2 or 3
    d = (perms[:, None, :] != perms[None, :, :]).sum(-1)
    assert d[np.triu_indices(100, 1)].min() >= 6


def test_user_task_registration():
    spec = TaskSpec(name="my_depth", title="Mine", domain="depth_zbuffer", aliases=("mine",),
                    output=OutputKind.DENSE, channels=1, loss="masked_l1", metric="mae",
                    decode="log_depth", cluster=Cluster.GEOMETRIC_3D, code_name="my_depth",
                    results_name="my_depth", description="test")
    register_task(spec)
    try:
        assert get_task("mine") is spec
        with pytest.raises(ValueError, match="already used"):
            register_task(spec)
    finally:
        unregister_task("my_depth")
    assert get_task("depth_zbuffer").name == "depth_zbuffer"


def test_bad_spec_is_refused():
    with pytest.raises(ValueError, match="snake_case"):
        TaskSpec(name="Bad Name", title="", domain=None, aliases=(), output=OutputKind.NONE,
                 channels=0, loss="", metric="", decode="", cluster=Cluster.LOW_DIM,
                 code_name="", results_name="", description="")


def test_no_code_branches_on_a_task_name():
    pattern = re.compile(r"(\bspec|\btask|\bt)\.name\s*(==|!=|in\s*[\(\[{])|\btask\s*==\s*['\"]")
    offenders = []
    paths = [*(ROOT / "taskonomy_tf").rglob("*.py"), *(ROOT / "tfrecords_tools").rglob("*.py")]
    for path in paths:
        if path.name == "catalog.py":
            continue
        for n, line in enumerate(path.read_text().splitlines(), 1):
            if pattern.search(line):
                offenders.append(f"{path.relative_to(ROOT)}:{n}: {line.strip()}")
    assert not offenders, offenders


def test_docs_list_every_task():
    text = (ROOT / "docs" / "tasks.md").read_text()
    for t in list_tasks():
        assert f"`{t.name}`" in text, t.name
