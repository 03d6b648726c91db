"""`governance serve` as a real process: health, readiness, metrics and key authentication."""
from __future__ import annotations

import pytest

from tests.e2e.api_fixtures import api, api_key, api_tenant, create_key  # noqa: F401 - fixtures
from tests.e2e.conftest import cli

pytestmark = pytest.mark.e2e
PROBLEM = "application/problem+json"


def test_health_readiness_and_metrics_answer_without_a_key(api):
    with api.client() as http:
        assert http.get("/healthz").json() == {"status": "ok"}
        ready = http.get("/readyz")
        assert ready.status_code == 200
        assert ready.json()["checks"] == {"database": "ok", "broker": "ok"}
        metrics = http.get("/metrics")
        assert metrics.status_code == 200
        assert "governance_api_requests_total" in metrics.text
        assert 'route="/readyz"' in metrics.text
        assert "governance_pending_events" in metrics.text


def test_an_authorised_key_is_known_by_its_tenant_and_scopes(api, api_key):
    with api.client(api_key["key"]) as http:
        me = http.get("/v1/me")
    assert me.status_code == 200
    assert me.json() == {"key_id": api_key["id"], "tenant": api_key["tenant"],
                         "scopes": ["admin", "ingest", "read", "review"], "name": "tests"}


def test_requests_without_a_valid_key_are_refused_as_problems(api, api_key, e2e_env):
    with api.client() as http:
        missing = http.get("/v1/me")
        wrong = http.get("/v1/me", headers={"Authorization": "Bearer gov_not-a-key"})
        basic = http.get("/v1/me", headers={"Authorization": "Basic dXNlcjpwYXNz"})
    for response in (missing, wrong, basic):
        assert response.status_code == 401
        assert response.headers["content-type"] == PROBLEM
        assert response.json()["type"] == "https://governance.dev/problems/unauthorized"
        assert response.headers["www-authenticate"].startswith("Bearer")
    assert "revoked" in wrong.json()["detail"]

    assert f"revoked {api_key['id']}" in cli(e2e_env, "keys", "revoke", api_key["id"]).stdout
    with api.client(api_key["key"]) as http:
        revoked = http.get("/v1/me")
    assert revoked.status_code == 401


def test_serve_exits_cleanly_on_sigterm(e2e_env, tmp_path):
    from tests.e2e.api_fixtures import start_api

    server = start_api(e2e_env, tmp_path / "serve.log")
    server.stop()  # SIGTERM, as an orchestrator sends it
    assert server.process.returncode == 0
    assert "Finished server process" in server.log()


def test_keys_list_shows_no_secret_and_revoke_of_an_unknown_key_fails(e2e_env, api_tenant):
    import json

    made = create_key(e2e_env, api_tenant, "read", name="reader")
    listed = json.loads(cli(e2e_env, "keys", "list", "--tenant", api_tenant, "--json").stdout)
    assert [(k["id"], k["scopes"], k["name"], k["revoked_at"]) for k in listed] == [
        (made["id"], ["read"], "reader", None)]
    assert made["key"] not in json.dumps(listed)
    assert cli(e2e_env, "keys", "revoke", "key_0000", check=False).returncode == 1
    bad = cli(e2e_env, "keys", "create", "--tenant", api_tenant, "--scopes", "ingest,root", check=False)
    assert bad.returncode == 2 and "root" in bad.stderr


def test_each_key_has_its_own_rate_limit_answered_with_retry_after(e2e_env, tmp_path, api_tenant):
    from tests.e2e.api_fixtures import start_api

    # One request a minute, a bucket of one: the second request within the minute is over the limit
    # however slowly the machine runs.
    server = start_api(dict(e2e_env, GOVERNANCE_API_RATE_PER_MINUTE="1", GOVERNANCE_API_RATE_BURST_S="60"),
                       tmp_path / "serve.log")
    try:
        first, second = (create_key(e2e_env, api_tenant, "read")["key"] for _ in range(2))
        with server.client(first) as http:
            assert http.get("/v1/me").status_code == 200
            limited = http.get("/v1/decisions")
            assert limited.status_code == 429
            assert limited.json()["type"] == "https://governance.dev/problems/rate-limited"
            assert 1 <= int(limited.headers["retry-after"]) <= 60
        with server.client(second) as http:
            assert http.get("/v1/me").status_code == 200
        with server.client() as http:  # health is not behind a key
            assert http.get("/healthz").status_code == 200
    finally:
        server.stop()
