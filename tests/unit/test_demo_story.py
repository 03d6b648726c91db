"""What `governance demo` prints on a second run, and the closing lines' console link."""
from pathlib import Path

from worker.cli import demo_story


def test_a_second_run_says_why_nothing_is_alerted_again():
    report = {"clusters": [{"cluster_id": "c-1", "status": "stable", "size": 40}], "noise": ["a"], "alerts": []}
    lines = demo_story.cluster_lines(report)
    assert lines.splitlines()[1] == "1 clusters, 1 noise points; 0 emerging-cluster alerts"
    assert "an earlier run reported these clusters already" in lines
    assert "earlier run" not in demo_story.cluster_lines({**report, "clusters": [{**report["clusters"][0],
                                                                                  "status": "new"}]})
    assert demo_story.anomaly_alert_lines(None).strip().startswith("anomaly alert: nothing flagged since the last one")


def test_the_closing_lines_name_the_report_the_console_and_the_api_docs():
    paths = {"json": Path("/r/report.json"), "html": Path("/r/report.html")}
    coming = demo_story.where_to_look_next(paths)
    assert "/r/report.html" in coming and "/r/report.json" in coming
    assert "review console  run `governance demo --serve` (or `make console`) for a login link" in coming
    assert "http://127.0.0.1:8000/docs" in coming
    served = demo_story.where_to_look_next(paths, console_url="http://127.0.0.1:9000/console/login?tenant=demo&token=a",
                                           api_docs_url="http://127.0.0.1:9000/docs")
    assert "review console  http://127.0.0.1:9000/console/login?tenant=demo&token=a" in served
    assert "HTTP API docs   http://127.0.0.1:9000/docs" in served and "--serve" not in served


def test_the_tally_orders_actions_by_severity_and_counts_their_reasons():
    rows = [{"action": "allow", "reason": "confirmed: recipes with score 1.000", "label": "recipes"},
            {"action": "block", "reason": "confirmed: phishing with score 0.9", "label": "phishing"},
            {"action": "review", "reason": "anomaly: k-NN distance 0.9 above 0.8; confirmed: x", "label": "x"},
            {"action": "reject", "reason": "no_content: exactly one of text", "label": None}]
    assert demo_story.tally(rows, "v1").splitlines()[1:] == [
        "decisions under policy v1:",
        "  block      1   confirmed phishing 1",
        "  review     1   anomaly 1",
        "  allow      1   confirmed recipes 1",
        "  reject     1   no_content 1",
    ]
