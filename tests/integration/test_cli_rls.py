"""The CLI works under row-level security, as the worker's tasks do (migration 0002).

The test database's owner is a superuser, and superusers bypass RLS: a command that forgot its
scope would still pass there. So these commands run in-process as a login role that is neither
superuser nor owner and holds no privilege of its own, only membership in `governance_app`:
a transaction that does not enter its scope fails, and one that does sees its tenant only.
(tests/e2e/test_tls_passwords.py runs the CLI as a non-superuser owner, under FORCE.)

Every command runs here, each against two tenants seeded alike (the same asset ids in both), and
each checks both halves: it works in its tenant's scope, and it neither sees nor changes the other.
"""
import json
import uuid
from datetime import datetime, timezone

import pytest
from sqlalchemy import insert, select, text

from governance.embedding.backends.hashing import HashingEmbedder
from governance.moderation.pipeline import Context
from governance.platform.broker_state import HEARTBEAT_KEY
from governance.platform.redis_client import redis_from_url
from governance.storage import repository
from governance.storage.db import engine_for, session_factory, transaction
from governance.storage.embedding_tables import TenantModel
from governance.storage.tables import Asset, AuditEntry, Decision, Embedding, Event, Exemplar
from tests.integration.helpers import BANK, SPAM, seed, upload
from tests.integration.test_image_text import SPAM_LINES, image_upload, spam_picture
from worker import cli
from worker.cli import common

PROBE_ROLE = "governance_cli_probe"


@pytest.fixture
def probe_url(database_url, monkeypatch, settings) -> str:
    with engine_for(database_url).begin() as connection:
        connection.execute(text(f"""
            DO $$ BEGIN
                IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '{PROBE_ROLE}') THEN
                    CREATE ROLE {PROBE_ROLE} LOGIN NOSUPERUSER NOBYPASSRLS;
                END IF;
            END $$"""))
        # Without INHERIT the role's only way to the tables is `SET ROLE governance_app`.
        connection.execute(text(f"GRANT {repository.APP_ROLE} TO {PROBE_ROLE} WITH INHERIT FALSE"))
    url = database_url.replace("://postgres@", f"://{PROBE_ROLE}@", 1)
    assert url != database_url
    monkeypatch.setenv("DATABASE_URL", url)
    return url


@pytest.fixture
def two_tenants(database_url):
    """Committed rows of two tenants (the CLI opens its own connections), removed afterwards."""
    a, b = f"cli-a-{uuid.uuid4().hex[:8]}", f"cli-b-{uuid.uuid4().hex[:8]}"
    with engine_for(database_url).begin() as connection:
        for tenant in (a, b):
            connection.execute(insert(Event).values(tenant=tenant, event_id="e1", asset_id="x", payload={},
                                                    status="decided"))
            connection.execute(insert(Decision).values(tenant=tenant, event_id="e1", asset_id="x", action="allow",
                                                       score=1.0, labels=[], neighbors=[], reason=f"seed {tenant}",
                                                       policy_version="p"))
    yield a, b
    delete_tenants(database_url, a, b)


def delete_tenants(database_url: str, *tenants: str) -> None:
    with engine_for(database_url).begin() as connection:
        tables = connection.execute(text("""
            SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
            JOIN pg_attribute a ON a.attrelid = c.oid AND a.attname = 'tenant' AND NOT a.attisdropped
            WHERE n.nspname = current_schema() AND c.relkind = 'r'
            ORDER BY c.relname = 'assets', c.relname""")).scalars().all()
        for table in tables:  # assets last: the others refer to it
            connection.execute(text(f'DELETE FROM "{table}" WHERE tenant = ANY(:t)'), {"t": list(tenants)})


def run_cli(capsys, *argv: str) -> list[dict]:
    assert cli.main(list(argv)) == 0
    return [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith("{")]


def test_without_a_scope_the_probe_role_reads_nothing(probe_url, two_tenants):
    """The premise: the probe role can only work through `governance_app`'s scope."""
    from sqlalchemy.exc import ProgrammingError

    with pytest.raises(ProgrammingError, match="permission denied"):
        with engine_for(probe_url).connect() as connection:
            connection.execute(select(Decision.tenant)).all()


def test_decisions_export_for_one_tenant_runs_as_the_app_role_and_sees_only_that_tenant(
        probe_url, two_tenants, capsys):
    a, b = two_tenants
    assert [(d["tenant"], d["reason"]) for d in run_cli(capsys, "decisions", "export", "--tenant", a)] \
        == [(a, f"seed {a}")]
    assert [d["tenant"] for d in run_cli(capsys, "decisions", "export", "--tenant", b)] == [b]


def test_a_tenant_scoped_cli_transaction_cannot_see_another_tenant_even_by_plain_sql(probe_url, two_tenants):
    a, b = two_tenants
    settings = common.prepare_environment()
    with transaction(common.sessions(settings)) as session:
        common.enter_scope(session, a)
        assert session.scalar(text("SELECT current_user")) == repository.APP_ROLE
        assert session.scalar(text("SELECT count(*) FROM decisions WHERE tenant = :b"), {"b": b}) == 0
        assert set(session.scalars(text("SELECT tenant FROM events WHERE tenant IN (:a, :b)"),
                                   {"a": a, "b": b})) == {a}


def test_cross_tenant_commands_import_for_every_tenant_and_tenant_commands_stay_apart(
        probe_url, two_tenants, capsys, tmp_path, broker_url):
    a, b = two_tenants
    exemplars = tmp_path / "exemplars.jsonl"
    exemplars.write_text("".join(json.dumps({"asset_id": f"ex-{t}", "tenant": t, "text": f"words of {t}",
                                             "label": "weather"}) + "\n" for t in (a, b)))
    assert cli.main(["exemplars", "import", str(exemplars)]) == 0
    assert capsys.readouterr().out.strip() == "2"
    assert [e["asset_id"] for e in run_cli(capsys, "exemplars", "export", "--tenant", a)] == [f"ex-{a}"]
    assert [e["asset_id"] for e in run_cli(capsys, "exemplars", "export", "--tenant", b)] == [f"ex-{b}"]
    assert run_cli(capsys, "clusters", "history", "--tenant", a) == []
    assert run_cli(capsys, "review", "list", "--tenant", a) == []
    assert cli.main(["policy", "list", "--tenant", a]) == 0 and capsys.readouterr().out == ""
    assert cli.main(["clusters", "report", "--tenant", a, "--out", str(tmp_path / "report")]) == 0
    assert json.loads((tmp_path / "report" / "report.json").read_text())["clusters"] == []
    capsys.readouterr()
    # The database line proves that the login role may act as the app role for every tenant. No beat
    # runs here (an earlier test's may have left its heartbeat: it is cleared), so health as a whole
    # fails, on that line alone.
    redis_from_url(broker_url).delete(HEARTBEAT_KEY)
    assert cli.main(["health"]) == 1
    lines = dict(line.split(None, 1) for line in capsys.readouterr().out.splitlines())
    assert lines["database"].startswith("ok (pgvector ") and lines["broker"] == "ok"
    assert lines["beat"] == "FAIL: no reconciler pass recorded on this broker (is a beat running?)"
    assert lines["embedder"].startswith("ok (")


# --- every command, against two tenants seeded alike ----------------------------------------------

ONLY_B = {"astronomy": ["The telescope imaged a distant spiral galaxy.", "A comet passed close to the sun."]}
UPLOADS = {"u1": SPAM, "u2": "zebra xylophone quantum marmalade", "u3": "Simmer the garlic in butter."}


@pytest.fixture
def banks(database_url, settings):
    """Tenant A: the shared bank and two decided uploads; tenant B: the same exemplars and uploads
    (same asset ids), one more upload, and a label of its own. Committed, as the CLI needs."""
    a, b = f"cli-a-{uuid.uuid4().hex[:8]}", f"cli-b-{uuid.uuid4().hex[:8]}"
    ctx = Context(settings=settings, embedder=HashingEmbedder(768))
    events = {}
    with transaction(session_factory(database_url)) as session:
        for tenant, bank, uploads in ((a, BANK, ["u1", "u2"]), (b, {**BANK, **ONLY_B}, ["u1", "u2", "u3"])):
            seed(session, ctx, tenant, bank)
            events[tenant] = {u: upload(session, ctx, tenant, u, UPLOADS[u])["event_id"] for u in uploads}
    yield a, b, events
    delete_tenants(database_url, a, b)


def owner_rows(database_url, query, **params) -> list:
    """What the database holds, read as the owner (no RLS), to check what a command changed."""
    with transaction(session_factory(database_url)) as session:
        return list(session.execute(query.params(**params) if params else query).all())


def exemplar_states(database_url, tenant) -> dict:
    return dict(owner_rows(database_url, select(Asset.asset_id, Exemplar.enabled)
                           .join(Exemplar, Exemplar.asset_pk == Asset.id).where(Asset.tenant == tenant)))


def run_code(capsys, *argv: str) -> tuple[int, str, str]:
    code = cli.main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_review_list_and_decide_stay_in_their_tenant(probe_url, banks, capsys, database_url):
    a, b, events = banks
    pending = {t: {i["event_id"] for i in run_cli(capsys, "review", "list", "--tenant", t)} for t in (a, b)}
    assert pending == {a: {events[a]["u1"], events[a]["u2"]}, b: {events[b]["u1"], events[b]["u2"]}}
    b_decisions = owner_rows(database_url, select(Decision.asset_id, Decision.action, Decision.label)
                             .where(Decision.tenant == b).order_by(Decision.asset_id))
    done = run_cli(capsys, "review", "decide", "u2", "block", "--label", "spam", "--who", "alice", "--tenant", a)
    assert [d["event_id"] for d in done] == [events[a]["u2"]]
    assert {i["event_id"] for i in run_cli(capsys, "review", "list", "--tenant", a)} == {events[a]["u1"]}
    assert {i["event_id"] for i in run_cli(capsys, "review", "list", "--tenant", b)} == pending[b]
    assert "u2" in exemplar_states(database_url, a) and "u2" not in exemplar_states(database_url, b)
    assert owner_rows(database_url, select(AuditEntry.tenant).where(AuditEntry.tenant.in_([a, b]),
                                                                    AuditEntry.kind == "override")) == [(a,)]
    # u3 was decided in B only: from A's scope it does not exist.
    code, _, err = run_code(capsys, "review", "decide", "u3", "allow", "--tenant", a)
    assert code == 2 and "no decision" in err
    assert owner_rows(database_url, select(Decision.asset_id, Decision.action, Decision.label)
                      .where(Decision.tenant == b).order_by(Decision.asset_id)) == b_decisions


def test_policy_apply_show_and_list_stay_in_their_tenant(probe_url, banks, capsys, tmp_path):
    a, b, _ = banks
    policy = tmp_path / "policy.toml"
    policy.write_text('version = "rls-1"\n[labels.spam]\naction = "block"\nauto_threshold = 0.5\n')
    assert run_code(capsys, "policy", "apply", str(policy), "--tenant", a)[1] == f"policy rls-1 applied for tenant {a}\n"
    assert 'version = "rls-1"' in run_code(capsys, "policy", "show", "--tenant", a)[1]
    assert run_code(capsys, "policy", "list", "--tenant", a)[1].startswith("rls-1\t")
    assert "no policy applied" in run_code(capsys, "policy", "show", "--tenant", b)[1]
    assert run_code(capsys, "policy", "list", "--tenant", b) == (0, "", "")
    # A file that names B cannot be applied from A's scope.
    (tmp_path / "for-b.toml").write_text(f'tenant = "{b}"\nversion = "rls-b"\n')
    code, _, err = run_code(capsys, "policy", "apply", str(tmp_path / "for-b.toml"), "--tenant", a)
    assert code == 2 and "invalid policy" in err and "tenant" in err
    assert run_code(capsys, "policy", "list", "--tenant", b) == (0, "", "")


def test_calibrate_and_backtest_use_their_tenants_bank_and_decisions_and_write_nothing(
        probe_url, banks, capsys, tmp_path, database_url):
    a, b, events = banks
    validation = tmp_path / "val.jsonl"
    validation.write_text("".join(json.dumps({"asset_id": f"v{i}", "text": t, "label": label}) + "\n" for i, (t, label)
                                  in enumerate([(BANK["cooking"][0], "cooking"), (BANK["finance"][0], "finance"),
                                                (ONLY_B["astronomy"][0], None)])))
    count = select(Asset.tenant, Asset.id).where(Asset.tenant.in_([a, b]))
    before = owner_rows(database_url, count)
    code, out, _ = run_code(capsys, "calibrate", str(validation), "--tenant", a, "--json")
    report = json.loads(out)
    assert code == 0 and report["total"] == 3
    assert "astronomy" not in out  # B's label never reaches A's neighbours
    policy = tmp_path / "candidate.toml"
    policy.write_text('version = "candidate"\n')
    summary = json.loads(run_code(capsys, "backtest", "--policy", str(policy), "--tenant", a, "--json")[1])
    assert summary["replayed"] == len(events[a]) and summary["candidate"] == "candidate"
    assert {row["asset_id"] for row in summary["examples"]} <= set(events[a])
    assert owner_rows(database_url, count) == before


def test_exemplars_disable_enable_and_export_stay_in_their_tenant(probe_url, banks, capsys, database_url):
    a, b, _ = banks
    b_before = exemplar_states(database_url, b)
    code, out, _ = run_code(capsys, "exemplars", "disable", "cooking-0", "--tenant", a)
    assert code == 0 and out.startswith("disabled 1 exemplar(s) of cooking-0 (cooking)")
    assert exemplar_states(database_url, a)["cooking-0"] is False
    assert exemplar_states(database_url, b) == b_before  # B's cooking-0, same id, untouched
    assert {(e["asset_id"], e["enabled"]) for e in run_cli(capsys, "exemplars", "export", "--tenant", a)
            if e["asset_id"] == "cooking-0"} == {("cooking-0", False)}
    assert {e["asset_id"] for e in run_cli(capsys, "exemplars", "export", "--tenant", a)} \
        == {f"{label}-{i}" for label, texts in BANK.items() for i in range(len(texts))}
    code, _, err = run_code(capsys, "exemplars", "disable", "astronomy-0", "--tenant", a)  # B's only
    assert code == 2 and "astronomy-0" in err
    assert exemplar_states(database_url, b) == b_before
    assert run_code(capsys, "exemplars", "enable", "cooking-0", "--tenant", a)[1].startswith("enabled 1")
    assert exemplar_states(database_url, a)["cooking-0"] is True


def test_usage_shows_one_tenant_or_every_tenant(probe_url, banks, capsys):
    a, b, _ = banks
    code, out, _ = run_code(capsys, "usage", "--tenant", a, "--json")
    lines = json.loads(out)
    assert code == 0 and {line["tenant"] for line in lines} == {a}
    assert sum(line["items"] + line["cached_items"] for line in lines) > 0
    everyone = {line["tenant"] for line in json.loads(run_code(capsys, "usage", "--json")[1])}
    assert {a, b} <= everyone


def test_reembed_moves_its_tenant_only(probe_url, banks, capsys, database_url):
    a, b, _ = banks
    code, out, err = run_code(capsys, "reembed", "--model", "hashing", "--dims", "384", "--tenant", a)
    assert code == 0, err
    summary = json.loads(out.splitlines()[-1])
    assert summary["switched"] is True and summary["unreadable"] == 0 and summary["remaining"] == 0
    # Every asset of A, and none of B, has its 384-dimension vector; only A switched.
    assert summary["assets"] == len(exemplar_states(database_url, a)) + 2
    assert owner_rows(database_url, select(TenantModel.tenant, TenantModel.dims, TenantModel.active)
                      .where(TenantModel.tenant.in_([a, b]))) == [(a, 384, True)]
    assert owner_rows(database_url, select(Embedding.tenant).where(Embedding.tenant == b, Embedding.dims == 384)) == []


def test_alerts_run_in_the_all_tenants_scope_alerts_each_tenant_with_its_own_decisions(
        probe_url, banks, capsys, database_url, monkeypatch):
    a, b, _ = banks
    # One window of 10^9 s: the last one closed at 2001-09-09T01:46:40Z, and no window closes while
    # the test runs, so what is due does not depend on the clock (nor reach other tests' decisions).
    monkeypatch.setenv("GOVERNANCE_ALERT_WINDOW_S", str(10**9))
    at = datetime(2001, 9, 9, tzinfo=timezone.utc)
    with transaction(session_factory(database_url)) as session:
        for tenant in (a, b):
            repository.insert_decisions(session, [dict(
                tenant=tenant, event_id=f"flag-{tenant}", asset_id=f"flag-{tenant}", asset_pk=None, action="review",
                label=None, score=0.0, labels=[], anomaly={"score": 0.9, "threshold": 0.5, "flagged": True},
                neighbors=[], reason="anomaly", embedding_model="m", policy_version="p", bank_version=1,
                decided_at=at)])
    alerts = {alert["tenant"]: alert for alert in run_cli(capsys, "alerts", "run") if alert["tenant"] in (a, b)}
    assert set(alerts) == {a, b}
    for tenant, alert in alerts.items():
        assert [e["asset_id"] for e in alert["examples"]] == [f"flag-{tenant}"]


def test_decisions_export_and_cluster_reports_stay_in_their_tenant(probe_url, banks, capsys, tmp_path):
    a, b, events = banks
    assert {d["event_id"] for d in run_cli(capsys, "decisions", "export", "--tenant", a)} == set(events[a].values())
    assert run_code(capsys, "clusters", "report", "--tenant", a, "--out", str(tmp_path / "a"))[0] == 0
    report = json.loads((tmp_path / "a" / "report.json").read_text())
    assert report["tenant"] == a and report["items"] == len(events[a])  # B has one upload more
    assert "u3" not in json.dumps(report)
    assert [row["clusters"] for row in run_cli(capsys, "clusters", "history", "--tenant", a)] == [0]
    assert run_cli(capsys, "clusters", "history", "--tenant", b) == []


DECISION_FIELDS = {"event_id", "asset_id", "tenant", "action", "label", "score", "labels", "anomaly", "neighbors",
                   "reason", "embedding_model", "policy_version", "bank_version", "hash_matches", "hash_missed",
                   "ocr", "evidence_source", "decided_at"}
OCR_FIELDS = {"text", "confidence", "label", "score", "used", "nearest", "threshold", "neighbors"}


def assert_decision_contract(line: dict) -> None:
    """One `decisions export` line against README "Decision", field by field."""
    assert set(line) == DECISION_FIELDS
    for name in ("event_id", "asset_id", "tenant", "reason", "policy_version"):
        assert isinstance(line[name], str) and line[name], name
    assert line["action"] in ("allow", "review", "block", "reject")
    assert line["label"] is None or isinstance(line["label"], str)
    assert type(line["score"]) in (int, float) and 0 <= line["score"] <= 1
    decided_at = datetime.fromisoformat(line["decided_at"])
    assert decided_at.utcoffset() is not None and line["decided_at"] == decided_at.isoformat()
    assert isinstance(line["labels"], list) and isinstance(line["neighbors"], list)
    assert isinstance(line["hash_matches"], list) and (line["hash_missed"] is None or isinstance(line["hash_missed"], dict))
    for match in line["hash_matches"]:
        assert {"signal_type", "distance", "label", "source", "bank_version"} <= set(match)
    assert line["evidence_source"] in (None, "image", "text", "both")
    if line["ocr"] is not None:  # image uploads with OCR on
        ocr = line["ocr"]
        assert OCR_FIELDS <= set(ocr) <= OCR_FIELDS | {"error"} and isinstance(ocr["used"], bool)
        assert ocr["text"] is None or (isinstance(ocr["text"], str) and 0 < ocr["confidence"] <= 1)
        assert ocr["used"] == (line["evidence_source"] in ("text", "both"))
    for entry in line["labels"]:
        assert set(entry) == {"label", "score"} and isinstance(entry["label"], str) and 0 <= entry["score"] <= 1
    for neighbor in line["neighbors"]:
        assert {"asset_id", "label", "distance"} <= set(neighbor) <= {"asset_id", "label", "distance", "polarity"}
        assert isinstance(neighbor["asset_id"], str) and isinstance(neighbor["label"], str)
        assert type(neighbor["distance"]) is float and 0 <= neighbor["distance"] <= 2
    if line["action"] == "reject":  # nothing was embedded: no model, bank or anomaly to name
        assert (line["anomaly"], line["embedding_model"], line["bank_version"], line["labels"]) == (None, None, None, [])
        return
    anomaly = line["anomaly"]
    assert set(anomaly) == {"score", "threshold", "flagged"} and isinstance(anomaly["flagged"], bool)
    assert type(anomaly["score"]) in (int, float) and type(anomaly["threshold"]) in (int, float)
    assert anomaly["flagged"] == (anomaly["score"] > anomaly["threshold"])
    assert isinstance(line["embedding_model"], str) and type(line["bank_version"]) is int


def test_every_exported_decision_line_keeps_the_documented_contract(probe_url, banks, capsys, database_url, settings):
    a, _, events = banks
    with transaction(session_factory(database_url)) as session:
        ctx = Context(settings=settings, embedder=HashingEmbedder(768))
        events[a]["u3"] = upload(session, ctx, a, "u3", UPLOADS["u3"])["event_id"]
        events[a]["empty"] = upload(session, ctx, a, "empty", "")["event_id"]
        events[a]["picture"] = image_upload(session, ctx, a, "picture", spam_picture())["event_id"]
    lines = run_cli(capsys, "decisions", "export", "--tenant", a)
    assert {line["event_id"] for line in lines} == set(events[a].values())
    by_asset = {line["asset_id"]: line for line in lines}
    assert [by_asset[u]["action"] for u in ("u1", "u2", "u3", "empty")] == ["review", "review", "allow", "reject"]
    assert by_asset["u3"]["label"] == "cooking" and by_asset["u3"]["neighbors"][0]["label"] == "cooking"
    assert by_asset["picture"]["ocr"]["text"].split("\n") == SPAM_LINES  # OCR's evidence, exported whole
    assert by_asset["picture"]["evidence_source"] in ("image", "text", "both")
    assert (by_asset["u3"]["ocr"], by_asset["u3"]["evidence_source"]) == (None, None)
    for line in lines:
        assert_decision_contract(line)


def test_console_link_writes_its_tenants_link_only(probe_url, two_tenants, capsys, database_url):
    from governance.access.console_sessions import hash_token
    from governance.storage.console_tables import ConsoleLoginLink

    a, b = two_tenants
    [link] = run_cli(capsys, "console-link", "--tenant", a, "--who", "alice", "--json")
    token = link["url"].rsplit("token=", 1)[1]
    assert owner_rows(database_url, select(ConsoleLoginLink.tenant, ConsoleLoginLink.who, ConsoleLoginLink.token_hash)
                      .where(ConsoleLoginLink.tenant.in_([a, b]))) == [(a, "alice", hash_token(token))]
    with transaction(session_factory(probe_url)) as session:
        repository.enter_tenant(session, b)
        assert repository.use_login_link(session, a, hash_token(token)) is None  # B's scope cannot spend it
    with transaction(session_factory(probe_url)) as session:
        repository.enter_tenant(session, a)
        assert repository.use_login_link(session, a, hash_token(token)) == "alice"


def test_webhooks_create_list_and_delete_stay_in_their_tenant(probe_url, two_tenants, capsys, monkeypatch):
    a, b = two_tenants
    code, _, err = run_code(capsys, "webhooks", "create", "--tenant", a, "--url", "http://127.0.0.1:9/a",
                            "--events", "decision")
    assert code == 2 and "ssrf_blocked" in err  # a loopback receiver, without the operator's setting
    monkeypatch.setenv("GOVERNANCE_WEBHOOK_ALLOW_PRIVATE", "1")
    made = {t: run_cli(capsys, "webhooks", "create", "--tenant", t, "--url", f"http://127.0.0.1:9/{t}",
                       "--events", "decision,override", "--json")[0] for t in (a, b)}
    assert made[a]["secret"].startswith("whsec_") and made[a]["secret"] != made[b]["secret"]
    assert (made[a]["tenant"], made[a]["events"]) == (a, ["decision", "override"])

    def listed(*scope):
        code, out, _ = run_code(capsys, "webhooks", "list", *scope, "--json")
        assert code == 0
        return [(s["id"], s["tenant"]) for s in json.loads(out) if s["tenant"] in (a, b) and "secret" not in s]
    assert listed("--tenant", a) == [(made[a]["id"], a)]
    assert listed() == [(made[a]["id"], a), (made[b]["id"], b)]  # the operator's view: every tenant
    assert run_code(capsys, "webhooks", "list", "--tenant", a)[1] \
        == f"{made[a]['id']}\t{a}\tdecision,override\thttp://127.0.0.1:9/{a}\n"
    code, out, _ = run_code(capsys, "webhooks", "create", "--tenant", a, "--url", "http://127.0.0.1:9/x",
                            "--events", "alert")
    plain_id = out.split("\t")[0]
    assert code == 0 and out.splitlines()[1].startswith("secret (shown once): whsec_")
    assert run_code(capsys, "webhooks", "delete", plain_id, "--tenant", a)[0] == 0
    code, _, err = run_code(capsys, "webhooks", "delete", made[b]["id"], "--tenant", a)
    assert code == 2 and "no webhook subscription" in err  # B's id does not exist in A's scope
    assert listed("--tenant", b) == [(made[b]["id"], b)]
    assert run_code(capsys, "webhooks", "delete", made[b]["id"], "--tenant", b)[:2] == (0, f"deleted {made[b]['id']}\n")
    assert run_code(capsys, "webhooks", "delete", made[a]["id"])[0] == 0  # an operator, by id alone
    assert listed() == []


def test_hashes_import_export_disable_stay_in_their_tenant(probe_url, two_tenants, capsys, tmp_path, database_url):
    from governance.storage.hash_tables import BankHash

    a, b = two_tenants
    pdq, md5 = "f8f8f0cee0f4a84f06370a22038f63f0b36e2ed596621e1d33e6b39c4e9c9b22", "cab08b36195edb1a1231d2d09fa450e0"
    jsonl = tmp_path / "a.jsonl"
    jsonl.write_text(json.dumps({"signal_type": "pdq", "signal": pdq, "label": "csam", "source": "ncmec"}) + "\n")
    [done] = run_cli(capsys, "hashes", "import", str(jsonl), "--tenant", a)
    assert (done["tenant"], done["imported"], done["by_type"], done["bank_version"]) == (a, 1, {"pdq": 1}, 1)
    plain = tmp_path / "b.txt"
    plain.write_text(f"{md5}\n")
    [done] = run_cli(capsys, "hashes", "import", str(plain), "--tenant", b, "--signal-type", "md5", "--label", "spam",
                     "--source", "feed")
    assert done["by_type"] == {"md5": 1}
    assert [(h["signal"], h["source"]) for h in run_cli(capsys, "hashes", "export", "--tenant", a)] == [(pdq, "ncmec")]
    assert [(h["signal"], h["label"]) for h in run_cli(capsys, "hashes", "export", "--tenant", b)] == [(md5, "spam")]

    bad = tmp_path / "bad.csv"
    bad.write_text(f"signal_type,signal,label\nmd5,{md5},spam\nmd5,nothex,spam\n")
    code, out, err = run_code(capsys, "hashes", "import", str(bad), "--tenant", a)
    assert code == 2 and out == "" and f"{bad}: line 3: md5 signal must be 32 hex digits" in err
    assert "nothing imported: 1 bad line(s)" in err
    assert [h["signal"] for h in run_cli(capsys, "hashes", "export", "--tenant", a)] == [pdq]  # not half imported

    code, out, _ = run_code(capsys, "hashes", "disable", "--source", "feed", "--tenant", a)  # B's source
    assert (code, out) == (0, "disabled 0 hash(es); hash bank version 2\n")
    code, out, _ = run_code(capsys, "hashes", "disable", "--source", "feed", "--tenant", b)
    assert (code, out) == (0, "disabled 1 hash(es); hash bank version 2\n")
    assert run_code(capsys, "hashes", "disable", "--tenant", b)[0] == 2  # neither a signal nor a source
    assert run_code(capsys, "hashes", "enable", "--signal", md5, "--tenant", b)[1].startswith("enabled 1 hash(es)")
    states = dict(owner_rows(database_url, select(BankHash.tenant, BankHash.enabled)
                             .where(BankHash.tenant.in_([a, b]))))
    assert states == {a: True, b: True}
