"""The app in process (Starlette's TestClient over the real app, the real database and real
sockets): what the served tests cannot reach, a broker that is away and a limiter without Redis."""
from __future__ import annotations

import socket
import uuid

import pytest
from fastapi.testclient import TestClient

from governance.access.api_keys import create_key
from governance.access.rate_limit import RateLimiter
from governance.platform.redis_client import redis_from_url
from governance.storage import repository
from governance.storage.db import session_factory, transaction
from tests.integration.test_cli_rls import delete_tenants
from web.app import create_app

PROBLEMS = "https://governance.dev/problems/"


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]  # closed again when this returns: nothing listens there


@pytest.fixture
def key(database_url):
    tenant = f"web-{uuid.uuid4().hex[:8]}"
    with transaction(session_factory(database_url)) as session:
        repository.enter_tenant(session, tenant)
        _, raw = create_key(session, tenant, "ingest,read")
    yield raw
    delete_tenants(database_url, tenant)


def app_client(settings, database_url, enqueued: list, **kwargs) -> TestClient:
    app = create_app(settings, enqueued.extend, sessions=session_factory(database_url), **kwargs)
    return TestClient(app, raise_server_exceptions=False)


def test_readiness_fails_as_a_problem_when_the_broker_is_away(settings, database_url):
    dead = redis_from_url(f"redis://127.0.0.1:{closed_port()}/0", timeout_s=1)
    with app_client(settings, database_url, [], broker_ping=dead.ping) as http:
        ready = http.get("/readyz")
    assert ready.status_code == 503
    assert ready.headers["content-type"] == "application/problem+json"
    body = ready.json()
    assert body["type"] == PROBLEMS + "unavailable"
    assert body["checks"]["database"] == "ok" and body["checks"]["broker"].startswith("FAIL: ")


def test_a_limiter_without_redis_admits_and_the_enqueue_gets_the_new_events(settings, database_url, key):
    limiter = RateLimiter(redis_from_url(f"redis://127.0.0.1:{closed_port()}/0", timeout_s=1), 1, 1.0)
    assert limiter.admit("key_x") is None
    enqueued: list = []
    with app_client(settings, database_url, enqueued) as http:
        http.app.state.services.limiter = limiter
        headers = {"Authorization": f"Bearer {key}"}
        first = http.post("/v1/events", json={"asset_id": "l1", "text": "t"}, headers=headers)
        again = http.post("/v1/events", json={"asset_id": "l1", "text": "t"}, headers=headers)
        wrong_method = http.delete("/v1/events", headers=headers)
        bad_multipart = http.post("/v1/assets", content=b"--x\r\nnonsense", headers={
            **headers, "Content-Type": "multipart/form-data; boundary=x"})
        bad_wait = http.get("/v1/events/e1", params={"wait": "soon"}, headers=headers)
    assert first.status_code == 202 and again.json()["accepted"][0]["status"] == "duplicate"
    assert [pair[1] for pair in enqueued] == [first.json()["accepted"][0]["event_id"]]
    assert wrong_method.status_code == 405 and wrong_method.json()["type"] == PROBLEMS + "method-not-allowed"
    assert bad_multipart.status_code == 422 and "one file part" in bad_multipart.json()["detail"]
    assert bad_wait.status_code == 422 and bad_wait.json()["errors"][0]["loc"] == ["query", "wait"]
