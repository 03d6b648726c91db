"""The pure parts of the console's clusters map, report history and policy diff."""
from __future__ import annotations

import pytest

from governance.clustering.report_views import MAP_HEIGHT, MAP_PAD, MAP_WIDTH, changes, layout
from governance.moderation.policy_review import line_diff


def test_layout_fills_the_box_keeping_the_aspect_ratio_with_y_upwards():
    placed = layout([{"x": 0.0, "y": 0.0}, {"x": 2.0, "y": 1.0}, {"x": 1.0, "y": 0.5}])
    (x0, y0), (x1, y1), (xm, ym) = placed
    assert min(x0, x1) >= MAP_PAD and max(x0, x1) <= MAP_WIDTH - MAP_PAD
    assert y0 > y1  # a higher report y is drawn higher up (smaller SVG y)
    assert abs((x1 - x0) / (y0 - y1) - 2.0) < 0.01  # the shape is kept
    assert (xm, ym) == (round((x0 + x1) / 2, 1), round((y0 + y1) / 2, 1))
    assert max(x1 - x0, y0 - y1) in (MAP_WIDTH - 2 * MAP_PAD, MAP_HEIGHT - 2 * MAP_PAD)


def test_layout_of_one_point_or_none():
    assert layout([]) == []
    [(x, y)] = layout([{"x": 5.0, "y": -3.0}])
    assert (x, y) == (MAP_WIDTH / 2, MAP_HEIGHT / 2)


def test_changes_name_new_grown_shrunk_and_gone_clusters():
    older = {"clusters": [{"cluster_id": "a", "size": 5}, {"cluster_id": "b", "size": 9},
                          {"cluster_id": "c", "size": 4}, {"cluster_id": "d", "size": 7}]}
    newer = {"clusters": [{"cluster_id": "a", "size": 8}, {"cluster_id": "b", "size": 6},
                          {"cluster_id": "d", "size": 7}, {"cluster_id": "e", "size": 12}]}
    assert changes(older, newer) == {
        "new": [{"cluster_id": "e", "size": 12}],
        "grown": [{"cluster_id": "a", "before": 5, "after": 8}],
        "shrunk": [{"cluster_id": "b", "before": 9, "after": 6}],
        "gone": [{"cluster_id": "c", "size": 4}],
    }


def test_line_diff_marks_added_and_removed_lines():
    diff = line_diff('version = "1"\nk = 10\n', 'version = "2"\nk = 10\n', "version 1", "version 2")
    assert ("del", '-version = "1"') in diff and ("add", '+version = "2"') in diff
    assert ("same", " k = 10") in diff
    assert [kind for kind, _ in diff[:3]] == ["file", "file", "hunk"]
    assert line_diff("same\n", "same\n", "a", "b") == []


def test_a_comparison_shows_the_two_asked_for_else_the_two_newest_and_refuses_half_a_pair():
    from web.console.rendering import pair_to_compare
    from web.problems import Problem

    assert pair_to_compare([3, 2, 1], 1, 3, "reports") == (1, 3)
    assert pair_to_compare([3, 2, 1], None, None, "reports") == (2, 3)
    assert pair_to_compare([3], None, None, "reports") == (None, None)
    with pytest.raises(Problem) as refused:
        pair_to_compare([3, 2, 1], 1, None, "versions")
    assert refused.value.status == 422 and "two versions" in refused.value.detail
