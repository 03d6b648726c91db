"""The engine over HTTP against a real `governance serve` and worker: banks, policies, review and
cluster reports give what the CLI gives, refuse another tenant's rows and keys without the scope."""
from __future__ import annotations

import json
import time
import uuid

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from governance.storage.db import engine_for
from governance.storage.tables import AuditEntry, OutboxMessage
from tests.e2e.api_fixtures import api, api_key, api_tenant, api_worker, create_key  # noqa: F401 - fixtures
from tests.e2e.conftest import cli, wait_for_decisions, write_jsonl
from tests.integration.helpers import BANK, SPAM

pytestmark = pytest.mark.e2e
PROBLEM = "https://governance.dev/problems/"
TOML = {"Content-Type": "application/toml"}

POLICY = """version = "api-1"
k = 5
[labels.spam]
action = "block"
auto_threshold = 0.8
review_threshold = 0.5
"""


def poll(condition, what: str, timeout_s: float = 120):
    deadline = time.monotonic() + timeout_s
    while not (found := condition()):
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up waiting for {what}")
        time.sleep(0.5)
    return found


def exported(env: dict, tenant: str) -> dict[tuple[str, str], dict]:
    lines = cli(env, "exemplars", "export", "--tenant", tenant).stdout.splitlines()
    return {(row["asset_id"], row["label"]): row for row in map(json.loads, lines)}


def other_tenant_key(env: dict) -> str:
    return create_key(env, f"other-{uuid.uuid4().hex[:8]}", name="intruder")["key"]


def test_exemplars_posted_over_http_are_the_banks_exemplars(api, api_key, e2e_env):
    tenant = api_key["tenant"]
    with api.client(api_key["key"]) as http:
        added = [http.post("/v1/exemplars", json={"asset_id": f"{label}-{i}", "text": text, "label": label})
                 for label, texts in BANK.items() for i, text in enumerate(texts)]
        allow = http.post("/v1/exemplars", json={"asset_id": "ham", "text": "Lunch at noon?", "label": "spam",
                                                 "polarity": "negative", "tenant": tenant})
        assert [r.status_code for r in added + [allow]] == [201] * 7
        assert [r.json()["bank_version"] for r in added + [allow]] == list(range(1, 8))
        assert allow.json()["polarity"] == "negative"

        stored = exported(e2e_env, tenant)
        assert set(stored) == {(f"{l}-{i}", l) for l in BANK for i in range(3)} | {("ham", "spam")}
        assert {(r["source"], r["created_by"], r["enabled"]) for r in stored.values()} == {("api", "tests", True)}
        assert stored[("ham", "spam")]["polarity"] == "negative"
        assert stored[("cooking-0", "cooking")]["text"] == BANK["cooking"][0]

        bank = http.get("/v1/banks").json()
        assert bank == {"tenant": tenant, "bank_version": 7, "exemplars": 7, "labels": [
            {"label": "cooking", "positive": 3, "negative": 0, "disabled": 0},
            {"label": "finance", "positive": 3, "negative": 0, "disabled": 0},
            {"label": "spam", "positive": 0, "negative": 1, "disabled": 0}]}

        pages, cursor = [], None
        while True:
            page = http.get("/v1/exemplars", params={"limit": 3, **({"cursor": cursor} if cursor else {})}).json()
            pages.append([e["asset_id"] for e in page["exemplars"]])
            if not (cursor := page["next_cursor"]):
                break
        assert pages == [["cooking-0", "cooking-1", "cooking-2"], ["finance-0", "finance-1", "finance-2"], ["ham"]]
        finance = http.get("/v1/exemplars", params={"label": "finance"}).json()
        assert [e["asset_id"] for e in finance["exemplars"]] == ["finance-0", "finance-1", "finance-2"]
        assert finance["next_cursor"] is None

        off = http.post("/v1/exemplars/cooking-1/disable")
        assert off.status_code == 200
        assert off.json() == {"asset_id": "cooking-1", "labels": ["cooking"], "bank_version": 8, "retroactive": []}
        assert exported(e2e_env, tenant)[("cooking-1", "cooking")]["enabled"] is False
        assert http.get("/v1/banks").json()["labels"][0] == {"label": "cooking", "positive": 2, "negative": 0,
                                                             "disabled": 1}
        again = http.post("/v1/exemplars/cooking-1/disable").json()
        assert again["labels"] == [] and again["bank_version"] == 8  # nothing changed, nothing bumped
        assert http.post("/v1/exemplars/cooking-1/enable").json()["bank_version"] == 9
        assert exported(e2e_env, tenant)[("cooking-1", "cooking")]["enabled"] is True

        unlabelled = http.post("/v1/exemplars", json={"asset_id": "x", "text": "no label"})
        assert unlabelled.status_code == 422 and "label" in unlabelled.json()["detail"]
        foreign = http.post("/v1/exemplars", json={"asset_id": "x", "text": "t", "label": "l", "tenant": "elsewhere"})
        assert foreign.status_code == 403
        unknown = http.post("/v1/exemplars/no-such-asset/disable")
        assert unknown.status_code == 404 and unknown.json()["type"] == PROBLEM + "not-found"
        assert http.get("/v1/exemplars", params={"cursor": "bm90LWEtY3Vyc29y"}).status_code == 422
        assert http.get("/v1/exemplars", params={"label": "a\x00b"}).status_code == 422  # PostgreSQL text holds no NUL
    assert ("x", "l") not in exported(e2e_env, tenant)

    with api.client(other_tenant_key(e2e_env)) as intruder:
        assert intruder.get("/v1/banks").json()["exemplars"] == 0
        assert intruder.get("/v1/exemplars").json() == {"exemplars": [], "next_cursor": None}
        assert intruder.post("/v1/exemplars/cooking-0/disable").status_code == 404
    assert exported(e2e_env, tenant)[("cooking-0", "cooking")]["enabled"] is True

    reader = create_key(e2e_env, tenant, "read", name="reader")["key"]
    with api.client(reader) as http:
        assert http.get("/v1/banks").status_code == 200
        refused = [http.post("/v1/exemplars", json={"asset_id": "y", "text": "t", "label": "l"}),
                   http.post("/v1/exemplars/cooking-0/disable")]
    assert [(r.status_code, r.json()["type"]) for r in refused] == [(403, PROBLEM + "forbidden")] * 2


def test_a_policy_posted_over_http_is_the_tenants_policy(api, api_key, e2e_env):
    tenant = api_key["tenant"]
    with api.client(api_key["key"]) as http:
        builtin = http.get("/v1/policies/current").json()
        assert builtin["applied"] is False and builtin["version"] == "builtin-1"
        assert http.get("/v1/policies").json() == []

        applied = http.post("/v1/policies", content=POLICY, headers=TOML)
        assert applied.status_code == 201
        assert applied.json() == {"version": "api-1", "tenant": tenant, "created": True}
        shown = cli(e2e_env, "policy", "show", "--tenant", tenant).stdout
        assert shown == f"# tenant {tenant}, policy version api-1\n{POLICY}"
        current = http.get("/v1/policies/current").json()
        assert current["applied"] is True and current["source"] == POLICY
        assert current["document"]["k"] == 5 and current["document"]["labels"]["spam"]["action"] == "block"

        second = http.post("/v1/policies", content=POLICY.replace("api-1", "api-2"),
                           headers={"Content-Type": "text/plain; charset=utf-8"})
        assert second.status_code == 201
        rollback = http.post("/v1/policies", content=POLICY, headers=TOML)
        assert rollback.status_code == 200 and rollback.json()["created"] is False
        listed = http.get("/v1/policies").json()
        assert [(p["version"], p["current"], p["applied_by"]) for p in listed] == [
            ("api-1", True, "tests"), ("api-2", False, "tests")]
        assert cli(e2e_env, "policy", "list", "--tenant", tenant).stdout.splitlines()[0].startswith("api-1\t")

        bad = http.post("/v1/policies", content='version = "v"\nk = 0\n[labels.spam]\naction = "nuke"\n',
                        headers=TOML)
        assert bad.status_code == 422 and bad.headers["content-type"] == "application/problem+json"
        assert len(bad.json()["errors"]) == 2
        assert any(e.startswith("k:") for e in bad.json()["errors"])
        assert any(e.startswith("labels.spam.action:") for e in bad.json()["errors"])
        not_toml = http.post("/v1/policies", content="version = ", headers=TOML)
        assert not_toml.status_code == 422 and not_toml.json()["errors"][0].startswith("not valid TOML")
        changed = http.post("/v1/policies", content=POLICY.replace("k = 5", "k = 6"), headers=TOML)
        assert changed.status_code == 409 and changed.json()["type"] == PROBLEM + "conflict"
        as_json = http.post("/v1/policies", json={"version": "j"})
        assert as_json.status_code == 415
        assert http.post("/v1/policies/backtest", content="k = 0", headers=TOML).status_code == 422
    assert cli(e2e_env, "policy", "show", "--tenant", tenant).stdout.startswith(
        f"# tenant {tenant}, policy version api-1\n")

    with api.client(other_tenant_key(e2e_env)) as intruder:
        assert intruder.get("/v1/policies").json() == []
        assert intruder.get("/v1/policies/current").json()["applied"] is False
    reader = create_key(e2e_env, tenant, "read,review,ingest", name="not-admin")["key"]
    with api.client(reader) as http:
        assert http.post("/v1/policies", content=POLICY, headers=TOML).status_code == 403


def test_review_over_http_overrides_the_event_and_audits_the_keys_name(api, api_worker, api_key, e2e_env,
                                                                       database_url, tmp_path):
    tenant = api_key["tenant"]
    cli(e2e_env, "exemplars", "import", str(write_jsonl(tmp_path / "ex.jsonl", [
        {"asset_id": f"{label}-{i}", "tenant": tenant, "text": text, "label": label}
        for label, texts in BANK.items() for i, text in enumerate(texts)])))
    odd = ["Something entirely unrelated to any exemplar: zebra xylophone",
           "Quantum gravel orchestras hum beneath the lighthouse", SPAM]
    cli(e2e_env, "publish", str(write_jsonl(tmp_path / "up.jsonl", [
        {"asset_id": f"odd-{i}", "tenant": tenant, "text": text, "event_id": f"{tenant}-odd-{i}"}
        for i, text in enumerate(odd)])))
    decided = {d["event_id"]: d for d in wait_for_decisions(e2e_env, tenant, len(odd))}
    waiting = sorted((d for d in decided.values() if d["action"] == "review"), key=lambda d: d["decided_at"])
    assert len(waiting) >= 2, "the unrelated uploads should go to review: the test would check nothing"

    with api.client(api_key["key"]) as http:
        pages, cursor = [], None
        while True:
            page = http.get("/v1/review", params={"limit": 1, **({"cursor": cursor} if cursor else {})}).json()
            pages += page["items"]
            if not (cursor := page["next_cursor"]):
                break
        assert [item["event_id"] for item in pages] == [d["event_id"] for d in waiting]
        assert {item["kind"] for item in pages} == {"decision"}

        target = waiting[0]["event_id"]
        done = http.post(f"/v1/review/{target}", json={"action": "block", "label": "spam", "note": "scam"})
        assert done.status_code == 200
        body = done.json()
        assert body["event_id"] == target and body["who"] == "tests"
        assert body["before"]["action"] == "review" and body["after"]["label"] == "spam"
        assert body["after"]["exemplar"] == {"label": "spam", "polarity": "positive"}
        remaining = http.get("/v1/review").json()["items"]
        assert [item["event_id"] for item in remaining] == [d["event_id"] for d in waiting[1:]]

        assert http.post("/v1/review/no-such-event", json={"action": "allow"}).status_code == 404
        bad_action = http.post(f"/v1/review/{target}", json={"action": "nuke"})
        assert bad_action.status_code == 422 and bad_action.json()["type"] == PROBLEM + "invalid-request"
        unknown_field = http.post(f"/v1/review/{target}", json={"action": "allow", "severity": 3})
        assert unknown_field.status_code == 422
        assert http.post(f"/v1/review/{target}", json={"action": "allow", "note": "a\x00b"}).status_code == 422

        backtest = http.post("/v1/policies/backtest", content=POLICY, headers=TOML, params={"examples": 3})
        assert backtest.status_code == 200
    (tmp_path / "candidate.toml").write_text(POLICY)
    by_cli = json.loads(cli(e2e_env, "backtest", "--policy", str(tmp_path / "candidate.toml"), "--tenant", tenant,
                            "--examples", "3", "--json").stdout)
    assert backtest.json() == by_cli and by_cli["replayed"] == len(odd)

    with Session(engine_for(database_url)) as session:
        [audit] = session.scalars(select(AuditEntry).where(AuditEntry.tenant == tenant,
                                                           AuditEntry.kind == "override")).all()
        [message] = session.scalars(select(OutboxMessage).where(OutboxMessage.tenant == tenant,
                                                                OutboxMessage.kind == "override")).all()
    assert (audit.who, audit.event_id, audit.after["note"]) == ("tests", target, "scam")
    assert message.payload["override"]["who"] == "tests" and message.payload["event_id"] == target
    odd_asset = decided[target]["asset_id"]
    assert exported(e2e_env, tenant)[(odd_asset, "spam")]["source"] == "review"

    with api.client(other_tenant_key(e2e_env)) as intruder:
        assert intruder.get("/v1/review").json() == {"items": [], "next_cursor": None}
        other = waiting[1]["event_id"]
        assert intruder.post(f"/v1/review/{other}", json={"action": "allow"}).status_code == 404
    ingest_only = create_key(e2e_env, tenant, "ingest,read", name="producer")["key"]
    with api.client(ingest_only) as http:
        assert http.get("/v1/review").status_code == 403
        assert http.post(f"/v1/review/{waiting[1]['event_id']}", json={"action": "allow"}).status_code == 403
    with Session(engine_for(database_url)) as session:  # neither refused override was written
        assert len(session.scalars(select(AuditEntry).where(AuditEntry.tenant == tenant,
                                                            AuditEntry.kind == "override")).all()) == 1


PARCELS = [f"Your parcel {n} is held at customs, pay the delivery fee at this link now" for n in range(12)]
RECIPES = [f"Recipe {n}: whisk eggs with sugar, fold in flour and bake the sponge cake" for n in range(12)]


def test_a_cluster_report_run_over_http_is_stored_and_read_back(api, api_worker, api_key, e2e_env, tmp_path):
    tenant = api_key["tenant"]
    cli(e2e_env, "exemplars", "import", str(write_jsonl(tmp_path / "ex.jsonl", [
        {"asset_id": "x", "tenant": tenant, "text": "The striker scored", "label": "football"}])))
    texts = PARCELS + RECIPES
    cli(e2e_env, "publish", str(write_jsonl(tmp_path / "up.jsonl", [
        {"asset_id": f"a{i}", "tenant": tenant, "text": t} for i, t in enumerate(texts)])))
    assert len(wait_for_decisions(e2e_env, tenant, len(texts))) == len(texts)

    with api.client(api_key["key"]) as http:
        assert http.get("/v1/clusters/reports/latest").status_code == 404
        assert http.get("/v1/clusters/reports").json() == []
        queued = http.post("/v1/clusters/reports")
        assert queued.status_code == 202 and queued.json() == {"status": "queued", "tenant": tenant}
        [stored] = poll(lambda: http.get("/v1/clusters/reports").json(), "the report the worker stores")
        latest = http.get("/v1/clusters/reports/latest").json()
    assert latest["report_id"] == stored["report_id"]
    report = latest["report"]
    assert report["tenant"] == tenant and report["items"] == len(texts)
    assert stored["clusters"] == len(report["clusters"]) >= 1
    assert sorted(stored["changes"]["new"]) == sorted(c["cluster_id"] for c in report["clusters"])
    parcels = {f"a{i}" for i in range(len(PARCELS))}
    assert any(len(set(c["members"]) & parcels) >= 10 for c in report["clusters"])
    history = json.loads(cli(e2e_env, "clusters", "history", "--tenant", tenant).stdout.splitlines()[0])
    assert history == stored

    with api.client(other_tenant_key(e2e_env)) as intruder:
        assert intruder.get("/v1/clusters/reports").json() == []
        assert intruder.get("/v1/clusters/reports/latest").status_code == 404
    reader = create_key(e2e_env, tenant, "read", name="reader")["key"]
    with api.client(reader) as http:
        assert http.post("/v1/clusters/reports").status_code == 403
        assert http.get("/v1/clusters/reports/latest").status_code == 200
