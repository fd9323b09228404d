"""``--tasks all``: every catalog task the records supply; the rest skipped with a reason."""

from __future__ import annotations

import pytest

from taskonomy_tf.data.available import available_tasks, expand
from taskonomy_tf.tasks import list_tasks
from tfrecords_tools.convert import convert
from tfrecords_tools.fake import write_fake_dataset

POINT_INFO_TASKS = {"room_layout", "vanishing_points", "fixated_pose", "nonfixated_pose",
                    "egomotion", "point_matching"}


def test_all_is_every_task_with_labels():
    names = expand("all")
    assert len(names) == 25 and "random" not in names  # 26 in the catalog, one a baseline
    assert names == [t.name for t in list_tasks() if t.name != "random"]
    assert expand(["edges", "all"])[0] == "edges" and len(expand(["edges", "all"])) == 25
    assert expand(["rgb2sfnorm", "edge2d"]) == ["normals", "edges"]  # aliases


def test_records_without_a_domain_skip_exactly_the_tasks_that_need_it(fake_raw, tmp_path):
    from taskonomy_tf.data.schema import DOMAINS

    kept_domains = sorted(set(DOMAINS) - {"normal", "class_scene", "point_info"})
    convert(str(fake_raw), str(tmp_path / "rec"), domains=kept_domains, progress=False)
    kept, skipped = available_tasks(tmp_path / "rec", "all", splits=("all",))
    assert set(skipped) == {"normals", "class_scene"} | POINT_INFO_TASKS
    assert len(kept) == 25 - len(skipped)
    assert "needs domain 'normal'" in skipped["normals"]
    assert "needs domain 'point_info'" in skipped["egomotion"]
    assert all("\n" not in why for why in skipped.values())


def test_too_few_views_per_point_skip_the_tuple_tasks_that_need_more(tmp_path):
    raw = write_fake_dataset(tmp_path / "raw", buildings=1, points=3, views=2, size=16)
    convert(str(raw), str(tmp_path / "rec"), progress=False)
    kept, skipped = available_tasks(tmp_path / "rec", ["fixated_pose", "egomotion", "edges"],
                                    splits=("all",))
    assert kept == ["fixated_pose", "edges"]
    assert set(skipped) == {"egomotion"} and "3-view tuples" in skipped["egomotion"]


def test_a_missing_split_is_an_error(fake_records):
    with pytest.raises(FileNotFoundError, match="no shards for split 'test'"):
        available_tasks(fake_records, "all", splits=("test",))
