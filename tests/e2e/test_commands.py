"""The commands no other test runs, end to end: `demo`, `embedded stop`, `beat` on its own, the
beat-driven cluster reports and `alerts run`, each as a real `governance` process."""
from __future__ import annotations

import collections
import json
import os
import re
import time
import tomllib
import uuid
from pathlib import Path

import pytest
from sqlalchemy import select, text
from sqlalchemy.orm import Session

from governance.clustering.stored_reports import tenant_folder
from governance.platform.embedded_servers import ensure_postgres, running_redis_url, stop_embedded
from governance.storage.db import engine_for
from governance.storage.tables import ClusterReport, OutboxMessage
from tests.e2e.conftest import Beat, cli, decisions, wait_for_decisions, write_jsonl

pytestmark = pytest.mark.e2e
SAMPLE = Path(__file__).resolve().parents[2] / "governance" / "sample"


@pytest.fixture(scope="module")
def own_data_dir(tmp_path_factory) -> Path:
    """Embedded servers of their own: `demo` and `embedded stop` must never touch the session's."""
    path = tmp_path_factory.mktemp("own-embedded")
    yield path
    stop_embedded(path)


def own_env(e2e_env: dict, data_dir: Path) -> dict:
    return dict(e2e_env, GOVERNANCE_DATA_DIR=str(data_dir))


def sample(name: str) -> list[dict]:
    return [json.loads(line) for line in (SAMPLE / name).read_text().splitlines() if line.strip()]


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def wait_until(condition, what: str, timeout_s: float = 120):
    deadline = time.monotonic() + timeout_s
    while not (found := condition()):
        assert time.monotonic() < deadline, f"{what} did not happen within {timeout_s:g} s"
        time.sleep(0.5)
    return found


def test_demo_tells_the_whole_story_blocks_reviews_allows_the_wave_and_the_anomalies(e2e_env, own_data_dir):
    env = own_env(e2e_env, own_data_dir)
    env.pop("GOVERNANCE_EMBEDDER")  # as `make demo` runs: the offline MiniLM embedder
    result = cli(env, "demo")
    uploads = sample("uploads.jsonl")
    policy_version = tomllib.loads((SAMPLE / "policy.toml").read_text())["version"]
    out = result.stdout
    assert f"embedded data folder: {own_data_dir}\n" in out
    assert f"policy {policy_version} applied for tenant demo" in out
    assert f"exemplars loaded: {len(sample('exemplars.jsonl'))}\n" in out
    assert f"uploads published: {len(uploads)} new, 0 already known\n" in out

    lines = out.splitlines()
    header = next(i for i, line in enumerate(lines) if line.startswith("asset "))
    assert lines[header].split() == ["asset", "action", "label", "score", "anomaly", "expected", "reason"]
    rows = [line.split() for line in lines[header + 2:header + 2 + len(uploads)]]
    expected = {u["asset_id"]: u["metadata"]["expected"] for u in uploads}
    assert {r[0]: r[5] for r in rows} == {a[:24]: e[:12] for a, e in expected.items()}  # one row per upload
    printed_action = {r[0]: r[1] for r in rows}

    # What it printed is what the demo's own database holds, every decision made under the demo's policy.
    stored = {d["asset_id"]: d for d in decisions(env, "demo")}
    assert sorted(d["event_id"] for d in stored.values()) == sorted(u["event_id"] for u in uploads)
    assert {a: d["action"] for a, d in stored.items()} == {a[:24]: act for a, act in printed_action.items()}
    assert {d["policy_version"] for d in stored.values()} == {policy_version}
    by_expected = collections.defaultdict(list)
    for asset, d in stored.items():
        by_expected[expected[asset]].append(d)
    for label in ("crypto_spam", "phishing"):  # confirmed spam is blocked, for that reason
        assert [d for d in by_expected[label] if d["action"] == "block" and d["label"] == label
                and d["reason"].startswith(f"confirmed: {label} ")], label
    assert all(d["action"] == "allow" for e in ("recipes", "sports") for d in by_expected[e])
    suggested = [d for d in by_expected["emerging"] if d["reason"].startswith("suggested: ")]
    assert suggested and all(d["action"] == "review" for d in suggested)
    assert [d for d in stored.values() if d["action"] == "review" and (d["anomaly"] or {}).get("flagged")]
    assert {a for a, d in stored.items() if d["action"] == "reject"} == {a for a, e in expected.items() if e == "reject"}
    counts = collections.Counter(d["action"] for d in stored.values())
    for action in ("block", "review", "allow", "reject"):
        assert re.search(rf"^  {action} +{counts[action]} ", out, re.MULTILINE), action

    # The cluster report alerts on the parcel wave: its cluster is the wave's uploads, nothing else.
    report_path = Path(next(line.split()[-1] for line in lines if line.strip().endswith("report.json")))
    report = json.loads(report_path.read_text())
    assert report["tenant"] == "demo" and report["items"] == sum(e != "reject" for e in expected.values())
    assert report["model"].startswith("offline")
    assert f"{len(report['clusters'])} clusters, {len(report['noise'])} noise points" in out
    wave = {a for a, e in expected.items() if e == "emerging"}
    members = {c["cluster_id"]: set(c["members"]) for c in report["clusters"]}
    alerted = [a["cluster_id"] for a in report["alerts"] if a["kind"] == "emerging_cluster"]
    assert [members[c] for c in alerted] == [wave]
    assert f"emerging cluster {alerted[0]} (text): {len(wave)} uploads" in out

    # The anomaly alert went into the outbox at once, naming flagged uploads.
    flagged = {a for a, d in stored.items() if (d["anomaly"] or {}).get("flagged")}
    with Session(engine_for(ensure_postgres(own_data_dir))) as session:
        messages = session.execute(select(OutboxMessage.kind, OutboxMessage.payload).where(
            OutboxMessage.tenant == "demo", OutboxMessage.kind.in_(["alert", "cluster"]))).all()
    anomaly_alerts = [p for kind, p in messages if kind == "alert" and p.get("alert") == "anomaly"]
    assert len(anomaly_alerts) == 1 and anomaly_alerts[0]["flagged"] == len(flagged)
    assert {e["asset_id"] for e in anomaly_alerts[0]["examples"]} <= flagged
    assert f"anomaly alert: {len(flagged)} flagged uploads" in out
    assert {p["cluster_id"] for kind, p in messages if kind == "cluster"} == set(alerted)  # the wave's alert too

    # The closing lines say where to look next.
    closing = out[out.index("where to look next:"):]
    assert str(report_path.with_name("report.html")) in closing and "--serve" in closing
    assert "http://127.0.0.1:8000/docs" in closing
    history = [json.loads(line) for line in cli(env, "clusters", "history", "--tenant", "demo").stdout.splitlines()]
    assert [h["clusters"] for h in history] == [len(report["clusters"])]
    assert not (Path(e2e_env["GOVERNANCE_DATA_DIR"]) / "reports" / tenant_folder("demo")).exists()  # not the session's folder


def test_embedded_stop_stops_the_servers_of_its_own_data_folder_only(e2e_env, own_data_dir):
    env = own_env(e2e_env, own_data_dir)
    cli(env, "db", "upgrade")  # starts (or finds) this folder's PostgreSQL
    health = cli(env, "health", check=False).stdout  # starts its Redis; no beat runs here, so it is not healthy
    assert "database  ok" in health and "broker    ok" in health
    redis_pid = int((own_data_dir / "redis" / "redis.pid").read_text())
    postgres_pid = int((own_data_dir / "postgres" / "postmaster.pid").read_text().split()[0])
    assert alive(redis_pid) and alive(postgres_pid) and running_redis_url(own_data_dir)

    assert cli(env, "embedded", "stop").stdout == "embedded servers stopped\n"
    assert not (own_data_dir / "postgres" / "postmaster.pid").exists()  # pg_ctl stop -w waited for it
    wait_until(lambda: not alive(redis_pid) and not alive(postgres_pid), "both servers exiting", 30)
    assert running_redis_url(own_data_dir) is None
    # The session's servers, in another data folder, still answer.
    assert "database  ok" in cli(e2e_env, "health", check=False).stdout


PARCELS = [f"Your parcel {n} is held at customs, pay the delivery fee at this link now" for n in range(12)]
RECIPES = [f"Recipe {n}: whisk eggs with sugar, fold in flour and bake the sponge cake" for n in range(12)]


def stored_reports(database_url: str, tenant: str) -> list[dict]:
    with Session(engine_for(database_url)) as session:
        return list(session.scalars(select(ClusterReport.report).where(ClusterReport.tenant == tenant)
                                    .order_by(ClusterReport.id)))


@pytest.mark.parametrize("beat_alone", [True, False], ids=["governance-beat", "worker-embedded-beat"])
def test_the_beat_schedule_stores_cluster_reports(e2e_env, worker, database_url, tmp_path, beat_alone):
    tenant = f"beat-{uuid.uuid4().hex[:8]}"
    env = dict(e2e_env, GOVERNANCE_CLUSTER_INTERVAL_S="3")
    cli(env, "exemplars", "import", str(write_jsonl(tmp_path / "ex.jsonl", [
        {"asset_id": "x", "tenant": tenant, "text": "The striker scored", "label": "football"}])))
    texts = PARCELS + RECIPES
    cli(env, "publish", str(write_jsonl(tmp_path / "s.jsonl", [
        {"asset_id": f"a{i}", "tenant": tenant, "text": t} for i, t in enumerate(texts)])))
    w = worker(env, extra=("--no-beat",) if beat_alone else ())
    assert len(wait_for_decisions(env, tenant, len(texts))) == len(texts)
    if beat_alone:
        assert stored_reports(database_url, tenant) == []  # a worker without beat schedules nothing
        beat = Beat(env, tmp_path / "beat.log")
        try:
            reports = wait_until(lambda: [r for r in stored_reports(database_url, tenant) if r["items"] == len(texts)],
                                 "a beat-driven cluster report")
        finally:
            beat.stop()
        assert "Sending due task cluster-reports (governance.cluster_reports)" in beat.log()
    else:
        reports = wait_until(lambda: [r for r in stored_reports(database_url, tenant) if r["items"] == len(texts)],
                             "a beat-driven cluster report")
    assert "governance.cluster_report[" in w.log()
    parcels = {f"a{i}" for i in range(len(PARCELS))}
    assert any(len(set(c["members"]) & parcels) >= 10 and set(c["members"]) <= parcels for c in reports[0]["clusters"])
    # Written where the task writes it: the data folder's reports/<tenant>/.
    assert list((Path(env["GOVERNANCE_DATA_DIR"]) / "reports" / tenant_folder(tenant)).glob("*/report.json"))


def test_alerts_run_sends_one_alert_for_the_flagged_decisions_of_a_closed_window(
        e2e_env, worker, database_url, tmp_path):
    tenant = f"alerts-{uuid.uuid4().hex[:8]}"
    env = dict(e2e_env, GOVERNANCE_ALERT_WINDOW_S="1", GOVERNANCE_ALERT_SETTLE_S="0",
               GOVERNANCE_ALERT_MIN_INTERVAL_S="3600")
    exemplars = [dict(e, tenant=tenant) for e in sample("exemplars.jsonl") if "text" in e]
    uploads = [dict(u, tenant=tenant, event_id=f"{tenant}-{u['event_id']}") for u in sample("uploads.jsonl")
               if "text" in u]
    cli(env, "exemplars", "import", str(write_jsonl(tmp_path / "ex.jsonl", exemplars)))
    cli(env, "publish", str(write_jsonl(tmp_path / "up.jsonl", uploads)))
    worker(env, extra=("--no-beat",))  # no beat: only the command under test runs the alerts
    found = wait_for_decisions(env, tenant, len(uploads))
    flagged = [d for d in found if (d["anomaly"] or {}).get("flagged")]
    assert flagged, "the sample's anomalies should be flagged: the test would check nothing"

    engine = engine_for(database_url)
    with engine.begin() as connection:  # the tenant's alerts are sent up to an hour back
        connection.execute(text("INSERT INTO alert_state (tenant, kind, cursor_at)"
                                " VALUES (:t, 'anomaly', now() - interval '1 hour')"), {"t": tenant})

    def closed() -> bool:  # the one-second window of the last decision is over
        with engine.connect() as connection:
            return connection.execute(text("SELECT now() - max(decided_at) > interval '1.5 seconds'"
                                           " FROM decisions WHERE tenant = :t"), {"t": tenant}).scalar()
    wait_until(closed, "the last decision's window closing", 30)

    sent = [json.loads(line) for line in cli(env, "alerts", "run").stdout.splitlines()]
    [alert] = [a for a in sent if a["tenant"] == tenant]
    assert alert["alert"] == "anomaly" and alert["message_id"].startswith(f"alert:{tenant}:anomaly:")
    assert alert["flagged"] == len(flagged)
    assert alert["by_action"] == dict(collections.Counter(d["action"] for d in flagged))
    by_score = sorted(flagged, key=lambda d: -d["anomaly"]["score"])
    assert [e["event_id"] for e in alert["examples"]] == [d["event_id"] for d in by_score[:5]]

    again = [json.loads(line) for line in cli(env, "alerts", "run").stdout.splitlines()]
    assert [a for a in again if a["tenant"] == tenant] == []  # nothing new: nothing sent twice
    with Session(engine) as session:
        ids = session.scalars(select(OutboxMessage.message_id).where(OutboxMessage.tenant == tenant,
                                                                     OutboxMessage.kind == "alert")).all()
    assert ids == [alert["message_id"]]
