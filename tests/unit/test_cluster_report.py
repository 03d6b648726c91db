"""governance.cluster_report: markdown, HTML (inline SVG) and files, on a real small report."""
from __future__ import annotations

import json
import re

import numpy as np
import pytest
from sklearn.datasets import make_blobs

from governance.clustering.analysis import analyse
from governance.clustering.rendering import finite_json, render_html, render_markdown, write_report

EVIL = '<script>alert("x")</script>'


@pytest.fixture(scope="module")
def report():
    vectors, truth = make_blobs(n_samples=400, n_features=32, centers=4, center_box=(-5, 5), random_state=3)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    ids = [f"asset-{i}" for i in range(len(vectors))]
    labels = [None if t == 0 else (EVIL if t == 1 else "spam|promo") for t in truth]
    texts = [f"buy {EVIL} now" if t == 1 else None for t in truth]
    result = analyse(ids, vectors, texts, labels, [False] * len(ids))
    outlier = {"asset_id": "noise-<b>", "x": 0.0, "y": 0.0, "cluster_id": None}
    result["map"].append(outlier)  # make sure a noise point is drawn too
    result["noise"].append("noise-<b>")
    return result


def test_html_has_one_circle_per_map_point_and_noise_is_grey(report):
    page = render_html(report)
    assert page.count("<svg") == 1
    assert page.count("<circle") == len(report["map"]) == 401
    assert 'fill="#b0b0b0"' in page
    assert len(set(re.findall(r'<circle[^>]*fill="([^"]+)"', page))) == len(report["clusters"]) + 1
    for cluster in report["clusters"]:
        assert cluster["cluster_id"] in page


def test_html_escapes_malicious_labels_and_ids(report):
    page = render_html(report)
    assert "<script" not in page
    assert "&lt;script&gt;" in page
    assert "noise-&lt;b&gt;" in page and "noise-<b>" not in page


def test_markdown_puts_alerts_first_and_tabulates_every_cluster(report):
    text = render_markdown(report)
    assert report["alerts"], "blob 0 is unlabelled, so the fixture must raise an alert"
    assert text.index("ALERT") < text.index("| cluster |")
    table = [line for line in text.splitlines() if line.startswith("| c-")]
    assert len(table) == len(report["clusters"])
    assert "<script" not in text and "spam\\|promo" in text
    assert all(line.count(" | ") == 7 for line in table)  # the pipe in a label did not add a column


def test_write_report_writes_three_files(tmp_path, report):
    paths = write_report(report, tmp_path / "out")
    assert set(paths) == {"json", "md", "html"}
    assert all(p.is_file() and p.stat().st_size > 0 for p in paths.values())
    assert json.loads(paths["json"].read_text(encoding="utf-8")) == report
    assert paths["html"].read_text(encoding="utf-8") == render_html(report)


def test_finite_json_turns_nan_and_infinity_into_null_at_any_depth():
    value = {"a": float("nan"), "b": [1.5, float("inf"), {"c": -float("inf")}], "d": (np.float64("nan"), "x", 2)}
    assert finite_json(value) == {"a": None, "b": [1.5, None, {"c": None}], "d": [None, "x", 2]}
