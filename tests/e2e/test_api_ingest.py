"""Ingest and reading back over HTTP: a real `governance serve` next to a real worker.

Each test uses a fresh tenant (its own key), so the module's server and worker are shared."""
from __future__ import annotations

import json
import uuid

import pytest

from tests.e2e.api_fixtures import api, api_key, api_tenant, api_worker, create_key  # noqa: F401 - fixtures

pytestmark = pytest.mark.e2e
PROBLEMS = "https://governance.dev/problems/"
ACTIONS = {"allow", "review", "block", "reject"}


def text_event(asset_id: str, words: str = "a calm note about the weather", **extra) -> dict:
    return {"asset_id": asset_id, "text": words, **extra}


def test_a_single_event_with_wait_comes_back_decided_and_reads_back_everywhere(api, api_worker, api_key):
    with api.client(api_key["key"]) as http:
        answer = http.post("/v1/events", params={"wait": 30}, json=text_event("a1", title="first"))
        assert answer.status_code == 200, answer.text
        body = answer.json()
        assert body["refused"] == []
        [item] = body["accepted"]
        assert (item["index"], item["asset_id"], item["status"], item["event_status"]) == (0, "a1", "accepted",
                                                                                          "decided")
        decision = item["decision"]
        assert decision["event_id"] == item["event_id"] and decision["tenant"] == api_key["tenant"]
        assert decision["action"] in ACTIONS and decision["reason"]

        state = http.get(f"/v1/events/{item['event_id']}").json()
        assert state == {"event_id": item["event_id"], "asset_id": "a1", "status": "decided",
                         "decision": decision, "dead_letter_reason": None}
        page = http.get("/v1/decisions").json()
        assert page == {"decisions": [decision], "next_cursor": None}
        asset = http.get("/v1/assets/a1").json()
        assert asset["asset_id"] == "a1" and asset["decisions"] == [decision]
        assert asset["asset"]["modality"] == "text" and asset["asset"]["title"] == "first"
        assert asset["review_history"] == []


def test_an_array_keeps_the_good_events_and_lists_every_refused_one(api, api_worker, api_key):
    events = [text_event("good-1"), {"asset_id": "bad-field", "text": "x", "colour": "red"}, "not an object",
              {"asset_id": "other", "text": "x", "tenant": "someone-else"}, text_event("good-2"),
              {"asset_id": "no-content"}, text_event("good-1")]
    with api.client(api_key["key"]) as http:
        answer = http.post("/v1/events", json=events)
        assert answer.status_code == 202
        body = answer.json()
        assert [(a["index"], a["asset_id"], a["status"]) for a in body["accepted"]] == [
            (0, "good-1", "accepted"), (4, "good-2", "accepted")]
        refused = {r["index"]: r["reason"] for r in body["refused"]}
        assert sorted(refused) == [1, 2, 3, 5, 6]
        assert refused[1].startswith("unknown_field: colour")
        assert refused[2] == "event is not a JSON object"
        assert refused[3].startswith("forbidden_tenant:") and "someone-else" in refused[3]
        assert refused[5].startswith("no_content")
        assert refused[6].startswith("duplicate of line 0")
        # Nothing of a refused event is stored: not even its inbox row.
        assert http.get(f"/v1/events/{_derived(api_key, 'bad-field')}").status_code == 404
        decided = [http.get(f"/v1/events/{a['event_id']}", params={"wait": 30}).json()["status"]
                   for a in body["accepted"]]
        assert decided == ["decided", "decided"]


def test_ndjson_with_bad_lines_accepts_the_rest_and_names_the_lines(api, api_key):
    lines = [json.dumps(text_event("n1")), "{not json", "", json.dumps(text_event("n2")), '{"asset_id": 7}']
    with api.client(api_key["key"]) as http:
        answer = http.post("/v1/events", content="\n".join(lines).encode(),
                           headers={"Content-Type": "application/x-ndjson"})
    assert answer.status_code == 202
    body = answer.json()
    assert [(a["index"], a["asset_id"]) for a in body["accepted"]] == [(0, "n1"), (3, "n2")]
    assert [r["index"] for r in body["refused"]] == [1, 4]
    assert body["refused"][0]["reason"].startswith("malformed_json")


def test_resending_is_idempotent_and_other_content_under_the_same_id_conflicts(api, api_key):
    event = text_event("same", event_id="ev-custom-1")
    with api.client(api_key["key"]) as http:
        first = http.post("/v1/events", json=event).json()["accepted"]
        again = http.post("/v1/events", json=event).json()["accepted"]
        batch = http.post("/v1/events", json=[event]).json()["accepted"]
        changed = http.post("/v1/events", json={**event, "text": "something else"})
    assert [a["status"] for a in first + again + batch] == ["accepted", "duplicate", "duplicate"]
    assert {a["event_id"] for a in first + again + batch} == {"ev-custom-1"}
    assert changed.status_code == 409
    assert changed.json()["type"] == PROBLEMS + "conflict"


def test_a_key_acts_for_its_own_tenant_only(api, api_worker, api_key, e2e_env):
    other = create_key(e2e_env, f"other-{uuid.uuid4().hex[:8]}")
    with api.client(api_key["key"]) as mine, api.client(other["key"]) as theirs:
        decided = mine.post("/v1/events", params={"wait": 30}, json=text_event("private")).json()["accepted"][0]
        assert decided["event_status"] == "decided"
        naming = mine.post("/v1/events", json=text_event("x", tenant=other["tenant"]))
        assert naming.status_code == 403 and naming.json()["type"] == PROBLEMS + "forbidden"
        assert theirs.get(f"/v1/events/{decided['event_id']}").status_code == 404
        assert theirs.get(f"/v1/events/{decided['event_id']}", params={"wait": 1}).status_code == 404
        assert theirs.get("/v1/assets/private").status_code == 404
        assert theirs.get("/v1/decisions").json() == {"decisions": [], "next_cursor": None}
        # The same asset id in the other tenant is another asset, with its own event.
        own = theirs.post("/v1/events", json=text_event("private")).json()["accepted"][0]
        assert own["status"] == "accepted" and own["event_id"] != decided["event_id"]
        assert mine.get("/v1/assets/x").status_code == 404


def test_scopes_gate_the_endpoints(api, e2e_env, api_tenant):
    reader = create_key(e2e_env, api_tenant, "read")["key"]
    writer = create_key(e2e_env, api_tenant, "ingest")["key"]
    with api.client(reader) as http:
        refused = http.post("/v1/events", json=text_event("r"))
        assert refused.status_code == 403 and "'ingest'" in refused.json()["detail"]
        assert http.get("/v1/decisions").status_code == 200
    with api.client(writer) as http:
        assert http.post("/v1/events", json=text_event("w")).status_code == 202
        for path in ("/v1/decisions", "/v1/events/e", "/v1/assets/w"):
            assert http.get(path).status_code == 403


def test_bad_bodies_are_clear_problems_and_store_nothing(api, api_key):
    with api.client(api_key["key"]) as http:
        cases = {
            "malformed": http.post("/v1/events", content=b'{"asset_id": "m", "text": ', 
                                   headers={"Content-Type": "application/json"}),
            "not utf-8": http.post("/v1/events", content=b'{"asset_id": "\xff"}',
                                   headers={"Content-Type": "application/json"}),
            "wrong type": http.post("/v1/events", content=b"asset_id=m", headers={"Content-Type": "text/plain"}),
            "no type": http.post("/v1/events", content=b'{"asset_id": "m", "text": "t"}'),
            "unknown field": http.post("/v1/events", json={"asset_id": "m", "text": "t", "extra": 1}),
            "a number": http.post("/v1/events", json=5),
            "empty array": http.post("/v1/events", json=[]),
            "too many": http.post("/v1/events", json=[text_event(f"m{i}") for i in range(1001)]),
            "10 MB": http.post("/v1/events", content=b"[" + b" " * (10 * 1024 * 1024) + b"]",
                               headers={"Content-Type": "application/json"}),
            "wait too long": http.post("/v1/events", params={"wait": 31}, json=text_event("m")),
            "bad cursor": http.get("/v1/decisions", params={"cursor": "nonsense"}),
            "bad action": http.get("/v1/decisions", params={"action": "delete"}),
        }
        statuses = {name: r.status_code for name, r in cases.items()}
        assert statuses == {"malformed": 422, "not utf-8": 422, "wrong type": 415, "no type": 415,
                            "unknown field": 422, "a number": 422, "empty array": 422, "too many": 413,
                            "10 MB": 413, "wait too long": 422, "bad cursor": 422, "bad action": 422}
        for name, response in cases.items():
            assert response.headers["content-type"] == "application/problem+json", name
            assert response.json()["status"] == statuses[name]
        assert cases["malformed"].json()["detail"].startswith("malformed_json")
        assert cases["unknown field"].json()["detail"] == "unknown_field: extra"
        assert cases["10 MB"].json()["type"] == PROBLEMS + "body-too-large"
        assert http.get("/v1/decisions").json()["decisions"] == []
        assert http.get(f"/v1/events/{_derived(api_key, 'm')}").status_code == 404
        assert http.get("/v1/nowhere").json()["type"] == PROBLEMS + "not-found"


def _derived(key: dict, asset_id: str) -> str:
    from governance.ingest.events import default_event_id

    return default_event_id(key["tenant"], asset_id)
