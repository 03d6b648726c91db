"""Multipart uploads, the Python client and producers on the broker, against a server and worker
whose size limit is small (GOVERNANCE_MAX_BYTES), so an oversized file is cheap to send."""
from __future__ import annotations

import time

import pytest
from celery import Celery

from governance.client import ApiError, Client
from tests.e2e.api_fixtures import api_key, api_tenant, create_key, start_api  # noqa: F401 - fixtures
from tests.e2e.conftest import Worker

pytestmark = pytest.mark.e2e
MAX_BYTES = 256 * 1024
PROBLEMS = "https://governance.dev/problems/"


@pytest.fixture(scope="module")
def small_env(e2e_env) -> dict:
    return dict(e2e_env, GOVERNANCE_MAX_BYTES=str(MAX_BYTES))


@pytest.fixture(scope="module")
def api(small_env, tmp_path_factory):
    server = start_api(small_env, tmp_path_factory.mktemp("api-small") / "serve.log")
    yield server
    server.stop()


@pytest.fixture(scope="module")
def api_worker(small_env, tmp_path_factory):
    worker = Worker(small_env, tmp_path_factory.mktemp("api-small-worker") / "worker.log", extra=("--no-beat",))
    yield worker
    worker.stop()


def test_a_multipart_upload_is_decided_and_its_asset_kept(api, api_worker, api_key, tmp_path):
    path = tmp_path / "note.txt"
    path.write_text("The ferry to the island leaves at nine every morning.")
    with Client(api.base_url, api_key["key"]) as client:
        result = client.upload(path, "up-1", title="ferry", metadata={"source": "test"}, wait=30)
        [item] = result["accepted"]
        assert (item["asset_id"], item["status"], item["event_status"]) == ("up-1", "accepted", "decided")
        asset = client.asset("up-1")
    assert asset["asset"]["modality"] == "text" and asset["asset"]["mime_type"] == "text/plain"
    assert asset["asset"]["title"] == "ferry" and asset["asset"]["metadata"] == {"source": "test"}
    assert asset["asset"]["size_bytes"] == path.stat().st_size
    assert asset["decisions"] == [item["decision"]]


def test_an_oversized_or_malformed_upload_is_refused_and_nothing_is_stored(api, api_key):
    with api.client(api_key["key"]) as http:
        oversized = http.post("/v1/assets", data={"asset_id": "big"},
                              files={"file": ("big.bin", b"\0" * (MAX_BYTES + 1), "application/octet-stream")})
        huge = http.post("/v1/assets", data={"asset_id": "huge"},
                         files={"file": ("huge.bin", b"\0" * (4 * MAX_BYTES), "application/octet-stream")})
        chunked = http.post("/v1/assets", content=_chunked_form("chunked", 4 * MAX_BYTES),
                            headers={"Content-Type": "multipart/form-data; boundary=XyZ"})
        unknown = http.post("/v1/assets", data={"asset_id": "u", "colour": "red"}, files={"file": ("a.txt", b"hi")})
        no_file = http.post("/v1/assets", data={"asset_id": "n"}, files={"other": ("a.txt", b"hi")})
        no_id = http.post("/v1/assets", files={"file": ("a.txt", b"hi")})
        bad_meta = http.post("/v1/assets", data={"asset_id": "m", "metadata": "{nope"}, files={"file": ("a.txt", b"hi")})
        as_json = http.post("/v1/assets", json={"asset_id": "j"})
        statuses = [r.status_code for r in (oversized, huge, chunked, unknown, no_file, no_id, bad_meta, as_json)]
        assert statuses == [413, 413, 413, 422, 422, 422, 422, 415]
        assert oversized.json()["type"] == PROBLEMS + "body-too-large"
        assert unknown.json()["detail"] == "unknown_field: colour"
        for asset_id in ("big", "huge", "chunked", "u", "n", "m"):
            assert http.get(f"/v1/assets/{asset_id}").status_code == 404
        assert http.get("/v1/decisions").json()["decisions"] == []


def _chunked_form(asset_id: str, size: int):
    """A multipart body sent without Content-Length: the limit must hold on the stream itself."""
    yield (f'--XyZ\r\nContent-Disposition: form-data; name="asset_id"\r\n\r\n{asset_id}\r\n'
           '--XyZ\r\nContent-Disposition: form-data; name="file"; filename="c.bin"\r\n'
           "Content-Type: application/octet-stream\r\n\r\n").encode()
    for _ in range(size // 65536):
        yield b"\0" * 65536
    yield b"\r\n--XyZ--\r\n"


def test_the_client_submits_waits_pages_and_raises_problems(api, api_worker, api_key, e2e_env):
    with Client(api.base_url, api_key["key"]) as client:
        result = client.submit([{"asset_id": f"c{i}", "text": f"note number {i} about rivers"} for i in range(5)],
                               wait=30)
        assert [a["event_status"] for a in result["accepted"]] == ["decided"] * 5
        first = result["accepted"][0]
        assert client.decision(first["event_id"]) == first["decision"]
        assert client.event(first["event_id"])["status"] == "decided"
        paged = list(client.decisions(page_size=2))
        assert sorted(d["event_id"] for d in paged) == sorted(a["event_id"] for a in result["accepted"])
        assert [d["decided_at"] for d in paged] == sorted((d["decided_at"] for d in paged), reverse=True)
        action = first["decision"]["action"]
        assert {d["action"] for d in client.decisions(action=action)} == {action}
        assert list(client.decisions(since="2999-01-01T00:00:00")) == []
        with pytest.raises(ApiError) as missing:
            client.event("no-such-event")
        assert missing.value.status == 404 and missing.value.type == PROBLEMS + "not-found"
    with Client(api.base_url, "gov_wrong") as client, pytest.raises(ApiError) as unauthorised:
        client.submit({"asset_id": "x", "text": "t"})
    assert unauthorised.value.status == 401


def test_producers_on_the_broker_submit_events_that_the_worker_decides(api, api_worker, api_key, broker_url):
    other = f"broker-{api_key['tenant']}"
    events = [{"tenant": api_key["tenant"], "asset_id": "b1", "text": "a parcel arrived at the depot"},
              {"tenant": api_key["tenant"], "asset_id": "b2", "text": "the depot closes at six"},
              {"tenant": other, "asset_id": "b1", "text": "another tenant's event"},
              {"text": "no ids at all"}]
    producer = Celery(broker=broker_url)
    producer.send_task("governance.submit_events", args=[events], queue="governance.uploads", serializer="json")
    producer.send_task("governance.submit_events", args=[events[:1]], queue="governance.uploads", serializer="json")
    producer.send_task("governance.submit_events", args=["not a list"], queue="governance.uploads",
                       serializer="json")
    with api.client(api_key["key"]) as http:
        deadline = time.monotonic() + 90
        while len(decisions := http.get("/v1/decisions").json()["decisions"]) < 2 and time.monotonic() < deadline:
            time.sleep(0.3)
    assert sorted(d["asset_id"] for d in decisions) == ["b1", "b2"]
    api_worker.wait_for_log("submitted event refused", 30)
    api_worker.wait_for_log("governance.submit_events takes a list of events", 30)
    with Client(api.base_url, create_key(api.env, other, "read")["key"]) as client:
        deadline = time.monotonic() + 60
        while not (theirs := list(client.decisions())) and time.monotonic() < deadline:
            time.sleep(0.3)
    assert [d["asset_id"] for d in theirs] == ["b1"] and theirs[0]["tenant"] == other


def test_the_raw_message_in_the_readme_is_a_working_submit_events(api, api_worker, api_key, broker_url):
    """A producer without Celery pushes the README's JSON document onto the queue's Redis list."""
    import json
    import uuid
    from pathlib import Path

    from governance.platform.redis_client import redis_from_url

    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    block = readme.split("<!-- submit_events raw message -->", 1)[1].split("```json", 1)[1].split("```", 1)[0]
    message = json.loads(block)
    args, kwargs, embed = json.loads(message["body"])
    assert message["headers"]["task"] == "governance.submit_events" and kwargs == {}
    events = [{**event, "tenant": api_key["tenant"], "asset_id": f"raw-{event['asset_id']}"} for event in args[0]]
    message["body"] = json.dumps([[events], kwargs, embed])
    message["headers"]["id"] = message["properties"]["delivery_tag"] = str(uuid.uuid4())
    redis_from_url(broker_url).lpush(message["properties"]["delivery_info"]["routing_key"], json.dumps(message))
    with Client(api.base_url, api_key["key"]) as client:
        deadline = time.monotonic() + 90
        while not (found := list(client.decisions())) and time.monotonic() < deadline:
            time.sleep(0.3)
    assert [d["asset_id"] for d in found] == [f"raw-{e['asset_id']}" for e in args[0]]
