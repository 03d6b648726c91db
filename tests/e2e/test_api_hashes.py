"""Hash banks over HTTP against a real `governance serve` and worker: a list posted to /v1/hashes
decides a matching upload with `hash_matches`, pages back as `hashes export` writes it, is
disabled and enabled by signal, and stays invisible to another tenant's key."""
from __future__ import annotations

import base64
import hashlib
import json
import time
import uuid

import pytest
from threatexchange.signal_type.pdq.signal import PdqSignal

from tests.e2e.api_fixtures import api, api_key, api_tenant, api_worker, create_key  # noqa: F401 - fixtures
from tests.e2e.conftest import cli
from tests.synthetic_photos import TRANSFORMS, encode, photo

pytestmark = pytest.mark.e2e
PROBLEM = "https://governance.dev/problems/"
PLAIN, NDJSON, CSV = ({"Content-Type": t} for t in ("text/plain", "application/x-ndjson", "text/csv"))
POLICY = """version = "api-hashes-1"
anomaly_action = "allow"
[labels.landscape]
action = "allow"
[labels.known_bad]
action = "block"
on_hash_match = "block"
"""


def upload(http, tenant: str, asset_id: str, data: bytes, timeout_s: float = 180) -> dict:
    """The decision on an upload, held for by ?wait= (again and again, up to a deadline)."""
    answer = http.post("/v1/events", params={"wait": 30}, json={
        "asset_id": asset_id, "tenant": tenant, "data_b64": base64.b64encode(data).decode()})
    assert answer.status_code in (200, 202), answer.text
    [item] = answer.json()["accepted"]
    deadline = time.monotonic() + timeout_s
    while item.get("decision") is None:
        assert time.monotonic() < deadline, f"no decision on {asset_id}: {item}"
        item = http.get(f"/v1/events/{item['event_id']}", params={"wait": 30}).json()
    return item["decision"]


def test_hashes_posted_over_http_decide_uploads_and_stay_in_their_tenant(api, api_worker, api_key, e2e_env):
    tenant = api_key["tenant"]
    banned = photo(31)
    pdq = PdqSignal.hash_from_bytes(encode(banned, "JPEG", quality=95))  # threatexchange's own hasher
    md5_bytes = encode(photo(32), "JPEG", quality=80)
    md5 = hashlib.md5(md5_bytes).hexdigest()
    with api.client(api_key["key"]) as http:
        assert http.post("/v1/policies", content=POLICY, headers={"Content-Type": "application/toml"}
                         ).status_code == 201
        for i in range(3):  # an allowed label, so that an upload no hash matches is allowed by the vote
            assert http.post("/v1/exemplars", json={"asset_id": f"land-{i}", "label": "landscape", "data_b64":
                                                    base64.b64encode(encode(photo(600 + i))).decode()}
                             ).status_code == 201
        first = http.post("/v1/hashes", content=f"pdq {pdq}\n", headers=PLAIN,
                          params={"label": "known_bad", "source": "partner"})
        assert first.status_code == 201, first.text
        assert first.json() == {"imported": 1, "by_type": {"pdq": 1}, "bank_version": 1, "retroactive": []}
        rows = "".join(json.dumps({"signal_type": "md5", "signal": md5, "label": label}) + "\n"
                       for label in ("known_bad", "spam"))
        second = http.post("/v1/hashes", content=rows, headers=NDJSON, params={"source": "md5-list"}).json()
        assert (second["imported"], second["by_type"], second["bank_version"]) == (2, {"md5": 2}, 2)
        third = http.post("/v1/hashes", content=f"signal,label\n{'ab' * 32},allowed\n", headers=CSV,
                          params={"signal_type": "sha256", "polarity": "negative"}).json()
        assert (third["imported"], third["bank_version"]) == (1, 3)

        bad = http.post("/v1/hashes", content=f"pdq {pdq}\npdq nothex\n\nmd5 {md5}\n", headers=PLAIN)
        assert bad.status_code == 422 and bad.headers["content-type"] == "application/problem+json"
        problem = bad.json()
        assert problem["type"] == PROBLEM + "invalid-request"
        assert [e.split(":")[0] for e in problem["errors"]] == ["line 1", "line 2", "line 4"]  # numbered as sent
        assert problem["errors"][1].startswith("line 2: pdq signal must be 64 hex digits")
        assert problem["errors"][0].startswith("line 1: no label")
        assert http.post("/v1/hashes", content="{}", headers={"Content-Type": "application/json"}
                         ).status_code == 415

        pages, cursor = [], None
        while True:
            page = http.get("/v1/hashes", params={"limit": 2, **({"cursor": cursor} if cursor else {})}).json()
            pages.append([(h["signal_type"], h["label"]) for h in page["hashes"]])
            if not (cursor := page["next_cursor"]):
                break
        assert pages == [[("pdq", "known_bad"), ("md5", "known_bad")], [("md5", "spam"), ("sha256", "allowed")]]
        [listed] = http.get("/v1/hashes", params={"signal_type": "md5", "label": "spam"}).json()["hashes"]
        exported = [json.loads(line) for line in cli(e2e_env, "hashes", "export", "--tenant", tenant
                                                     ).stdout.splitlines()]
        assert listed == next(e for e in exported if (e["signal_type"], e["label"]) == ("md5", "spam"))
        assert listed["source"] == "md5-list" and listed["created_by"] == "tests" and listed["enabled"] is True

        copy = upload(http, tenant, "copy", TRANSFORMS["jpeg_q40"](banned))
        assert copy["action"] == "block" and copy["reason"].startswith("hash_match: pdq distance"), copy
        [match] = copy["hash_matches"]
        assert (match["signal_type"], match["label"], match["source"], match["bank_version"]) == (
            "pdq", "known_bad", "partner", 3)
        assert match["distance"] <= 31
        exact = upload(http, tenant, "exact", md5_bytes)
        assert sorted((m["signal_type"], m["label"], m["distance"]) for m in exact["hash_matches"]) == [
            ("md5", "known_bad", 0), ("md5", "spam", 0)]

        off = http.post(f"/v1/hashes/pdq/{pdq.upper()}/disable")
        assert off.status_code == 200, off.text
        assert off.json() == {"changed": 1, "labels": ["known_bad"], "bank_version": 4, "retroactive": []}
        assert http.post(f"/v1/hashes/pdq/{pdq}/disable").json()["changed"] == 0  # already off
        after = upload(http, tenant, "copy-again", TRANSFORMS["jpeg_q40"](banned))
        assert after["hash_matches"] == [] and after["action"] == "allow", (after["reason"], after["anomaly"])
        on = http.post(f"/v1/hashes/md5/{md5}/disable", params={"label": "spam"}).json()
        assert (on["changed"], on["labels"]) == (1, ["spam"])
        unknown = http.post(f"/v1/hashes/md5/{'0' * 32}/disable")
        assert unknown.status_code == 404 and unknown.json()["type"] == PROBLEM + "not-found"
        assert http.post(f"/v1/hashes/md5/{md5}/disable", params={"label": "nope"}).status_code == 404
        assert http.post("/v1/hashes/vpdq/abc/disable").status_code == 422
        enabled = http.post(f"/v1/hashes/pdq/{pdq}/enable").json()
        assert enabled["changed"] == 1
        # Re-enabling a known-bad hash re-checks recent allows, as importing one does.
        assert [(r["asset_id"], r["signal_type"]) for r in enabled["retroactive"]] == [("copy-again", "pdq")]

    intruder_key = create_key(e2e_env, f"other-{uuid.uuid4().hex[:8]}", name="intruder")["key"]
    with api.client(intruder_key) as intruder:
        assert intruder.get("/v1/hashes").json() == {"hashes": [], "next_cursor": None}
        assert intruder.post(f"/v1/hashes/pdq/{pdq}/disable").status_code == 404
        assert intruder.post(f"/v1/hashes/md5/{md5}/enable").status_code == 404
    state = {(e["signal_type"], e["label"]): e["enabled"] for e in map(
        json.loads, cli(e2e_env, "hashes", "export", "--tenant", tenant).stdout.splitlines())}
    assert state == {("pdq", "known_bad"): True, ("md5", "known_bad"): True, ("md5", "spam"): False,
                     ("sha256", "allowed"): True}

    reader = create_key(e2e_env, tenant, "read", name="reader")["key"]
    with api.client(reader) as http:
        assert len(http.get("/v1/hashes").json()["hashes"]) == 4
        refused = [http.post("/v1/hashes", content=f"pdq {pdq}\n", headers=PLAIN, params={"label": "x"}),
                   http.post(f"/v1/hashes/pdq/{pdq}/disable")]
        assert [r.status_code for r in refused] == [403, 403]
