"""Upload events become decisions through real Redis, a real Celery worker and real Postgres."""
import collections
import io
import uuid

import pytest
from PIL import Image

from governance.ingest.events import default_event_id
from tests.e2e.conftest import cli, decisions, wait_for_decisions, write_jsonl

pytestmark = pytest.mark.e2e

TEXTS = {
    "weather": ["Heavy rain and strong winds are expected along the coast tonight.",
                "Sunny skies with a light breeze and temperatures near twenty degrees.",
                "Snow showers will spread from the north, with icy roads by morning."],
    "football": ["The striker scored twice in the second half to win the derby.",
                 "A late penalty save kept the goalkeeper's clean sheet intact.",
                 "The coach changed formation after the red card and held on for a draw."],
}


def test_events_become_exactly_one_decision_each(e2e_env, worker, tmp_path):
    tenant = f"e2e-{uuid.uuid4().hex[:8]}"
    roots = e2e_env["FILE_ROOT"]
    exemplars = [{"asset_id": f"{label}-{i}", "tenant": tenant, "text": t, "label": label}
                 for label, texts in TEXTS.items() for i, t in enumerate(texts)]
    assert cli(e2e_env, "exemplars", "import", str(write_jsonl(tmp_path / "ex.jsonl", exemplars))).stdout.strip() == "6"

    image = io.BytesIO()
    Image.new("RGB", (32, 32), (10, 200, 30)).save(image, format="PNG")
    with open(f"{roots}/green.png", "wb") as handle:
        handle.write(image.getvalue())
    with open(f"{roots}/cut.png", "wb") as handle:
        handle.write(image.getvalue()[:40])
    events = [
        {"asset_id": "w1", "tenant": tenant, "text": "Rain and wind along the coast tomorrow morning."},
        {"asset_id": "f1", "tenant": tenant, "text": "The striker scored a late winner in the derby."},
        {"asset_id": "img", "tenant": tenant, "uri": f"file://{roots}/green.png"},
        {"asset_id": "cut", "tenant": tenant, "uri": f"file://{roots}/cut.png", "mime_type": "image/png"},
        {"asset_id": "none", "tenant": tenant},
        {"asset_id": "ssrf", "tenant": tenant, "uri": "http://169.254.169.254/latest/meta-data/"},
        {"asset_id": "passwd", "tenant": tenant, "uri": "file:///etc/passwd"},
    ]
    stream = write_jsonl(tmp_path / "stream.jsonl", events + [events[0], "{not json", "[1, 2]"])
    published = cli(e2e_env, "publish", str(stream))
    assert published.stdout.strip() == str(len(events))
    assert published.stderr.splitlines() == [
        f"line 8: refused: duplicate of line 1 (event_id {default_event_id(tenant, 'w1')}); the first is kept",
        "line 9: refused: malformed_json: Expecting property name enclosed in double quotes: line 1 column 2 (char 1)",
        "line 10: refused: event is not a JSON object",
    ]

    w = worker()
    found = wait_for_decisions(e2e_env, tenant, len(events))
    by_asset = {d["asset_id"]: d for d in found}
    assert collections.Counter(d["event_id"] for d in found).most_common(1)[0][1] == 1
    assert set(by_asset) == {e["asset_id"] for e in events}
    assert by_asset["w1"]["label"] == "weather" and by_asset["f1"]["label"] == "football"
    assert by_asset["img"]["action"] != "reject"
    for bad, reason in [("cut", "corrupt_image"), ("none", "no_content"), ("ssrf", "ssrf_blocked"),
                        ("passwd", "path_outside_roots")]:
        assert by_asset[bad]["action"] == "reject" and by_asset[bad]["reason"].startswith(reason)
    assert w.alive()

    # Publishing the same file again changes nothing.
    again = cli(e2e_env, "publish", str(stream))
    assert again.stdout.strip() == "0"
    assert f"{len(events)} events were already accepted earlier with the same content" in again.stderr
    assert len(decisions(e2e_env, tenant)) == len(events)


def test_cluster_report_on_demand_writes_report_json(e2e_env, worker, tmp_path):
    import json

    tenant = f"e2e-{uuid.uuid4().hex[:8]}"
    texts = [f"Your parcel {n} is held at customs, pay the delivery fee at this link now" for n in range(12)]
    texts += [f"Recipe {n}: whisk eggs with sugar, fold in flour and bake the sponge cake" for n in range(12)]
    cli(e2e_env, "exemplars", "import", str(write_jsonl(tmp_path / "ex.jsonl", [
        {"asset_id": "x", "tenant": tenant, "text": "The striker scored", "label": "football"}])))
    cli(e2e_env, "publish", str(write_jsonl(tmp_path / "s.jsonl", [
        {"asset_id": f"a{i}", "tenant": tenant, "text": t} for i, t in enumerate(texts)])))
    worker()
    assert len(wait_for_decisions(e2e_env, tenant, len(texts))) == len(texts)
    out = tmp_path / "report"
    cli(e2e_env, "clusters", "report", "--tenant", tenant, "--out", str(out))
    report = json.loads((out / "report.json").read_text())
    assert {"clusters", "noise", "generated_at"} <= set(report)
    member_sets = [set(c["members"]) for c in report["clusters"]]
    parcels = {f"a{i}" for i in range(12)}
    assert any(len(m & parcels) >= 10 and m <= parcels for m in member_sets)
    # A second report on the same data keeps every id, and history lists both with no changes.
    cli(e2e_env, "clusters", "report", "--tenant", tenant, "--out", str(tmp_path / "again"))
    again = json.loads((tmp_path / "again" / "report.json").read_text())
    assert {c["cluster_id"] for c in again["clusters"]} == {c["cluster_id"] for c in report["clusters"]}
    rows = [json.loads(line) for line in cli(e2e_env, "clusters", "history", "--tenant", tenant).stdout.splitlines()]
    assert len(rows) == 2 and rows[0]["changes"] == {"new": [], "gone": [], "resized": {}}
    assert rows[1]["changes"]["new"] == sorted(c["cluster_id"] for c in report["clusters"])
