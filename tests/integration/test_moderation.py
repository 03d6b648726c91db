"""Policies, exemplar banks, calibration, backtests, alerts and write-back on a real PostgreSQL
with pgvector (and a real Redis for the broker sink). The tests of what decides run on both kNN
paths (the `knn` fixture): a stale cached bank would show in the bank edits here."""
import json
import math
from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import func, select

from governance.delivery import alerts
from governance.embedding.backends.hashing import HashingEmbedder
from governance.moderation import calibration, policy_store
from governance.moderation.backtest import backtest, calibrate
from governance.moderation.exemplar_banks import BankError, export_exemplars, import_exemplars, set_enabled
from governance.moderation.pipeline import Context
from governance.moderation.policy_store import PolicyError, apply_policy
from governance.storage import repository
from governance.storage.tables import Asset, Decision, Embedding, Exemplar, OutboxMessage
from tests.integration import helpers
from tests.integration.helpers import flagged_decision, knn_path_served, upload

BANK = {**helpers.BANK, "spam": [helpers.SPAM]}
SPAM_COPY = helpers.SPAM + "!"


def seed(db, ctx, tenant):
    helpers.seed(db, ctx, tenant, BANK)


def policy_text(version: str, **spam) -> str:
    rule = {"action": "block", "auto_threshold": 0.6, "review_threshold": 0.4, **spam}
    lines = [f'version = "{version}"', "", "[labels.spam]"]
    lines += [f"{k} = {json.dumps(v) if isinstance(v, str) else ('inf' if v == math.inf else v)}"
              for k, v in rule.items()]
    return "\n".join(lines) + "\n"


# --- policies -------------------------------------------------------------------------------------

def test_decisions_name_the_tenants_current_policy_and_follow_each_new_version(db, knn_ctx, knn, tenant):
    ctx = knn_ctx
    seed(db, ctx, tenant)
    assert upload(db, ctx, tenant, "u0", "Fry garlic in butter")["policy_version"] == "builtin-1"
    apply_policy(db, policy_text("v1"), tenant=tenant, who="ops")
    assert upload(db, ctx, tenant, "u1", "Fry garlic in butter")["policy_version"] == "v1"
    apply_policy(db, policy_text("v2", auto_threshold=0.9), tenant=tenant, who="ops")
    assert upload(db, ctx, tenant, "u2", "Fry garlic in butter")["policy_version"] == "v2"
    again = apply_policy(db, policy_text("v1"), tenant=tenant, who="ops")  # rollback
    assert not again.created
    assert upload(db, ctx, tenant, "u3", "Fry garlic in butter")["policy_version"] == "v1"
    assert [r.version for r in repository.policy_versions(db, tenant)] == ["v1", "v2"]
    assert policy_store.stored_policy(db, tenant)[0] == "v1"
    assert [e.kind for e in repository.audit_entries(db, tenant)] == ["policy_apply"] * 3
    assert knn_path_served(tenant) == knn


def test_a_version_cannot_be_reused_for_other_content_or_another_tenant(db, tenant):
    apply_policy(db, policy_text("v1"), tenant=tenant)
    with pytest.raises(PolicyError, match="already applied"):
        apply_policy(db, policy_text("v1", auto_threshold=0.7), tenant=tenant)
    with pytest.raises(PolicyError, match="tenant"):
        apply_policy(db, 'tenant = "someone-else"\n' + policy_text("v9"), tenant=tenant)
    with pytest.raises(PolicyError):
        apply_policy(db, "version = 3", tenant=tenant)


def test_policy_k_and_thresholds_drive_the_pipeline(db, knn_ctx, knn, tenant):
    ctx = knn_ctx
    seed(db, ctx, tenant)
    apply_policy(db, 'version = "k3"\nk = 3\n', tenant=tenant)
    decision = upload(db, ctx, tenant, "u1", "Knead the dough and roast vegetables with garlic and thyme")
    assert len(decision["neighbors"]) == 3 and decision["policy_version"] == "k3"
    assert all(set(n) >= {"asset_id", "label", "distance"} for n in decision["neighbors"])
    assert decision["bank_version"] == repository.bank_version(db, tenant)
    assert knn_path_served(tenant) == knn


# --- exemplar banks -------------------------------------------------------------------------------

def test_near_duplicate_of_a_known_bad_exemplar_is_blocked_whatever_the_vote(db, knn_ctx, knn, tenant):
    ctx = knn_ctx
    seed(db, ctx, tenant)
    # Without the near-duplicate rule spam is never automatic (auto_threshold = inf) ...
    apply_policy(db, policy_text("no-dup", auto_threshold=math.inf), tenant=tenant)
    assert upload(db, ctx, tenant, "u1", SPAM_COPY)["action"] == "review"
    # ... with it, a copy of the known-bad exemplar is blocked outright.
    apply_policy(db, policy_text("dup", auto_threshold=math.inf, near_duplicate_distance=0.1), tenant=tenant)
    decision = upload(db, ctx, tenant, "u2", SPAM_COPY)
    assert decision["action"] == "block" and decision["reason"].startswith("near_duplicate")
    assert "spam-0" in decision["reason"]
    far = upload(db, ctx, tenant, "u3", "Bond yields and interest rates after the auction")
    assert far["action"] != "block"
    assert knn_path_served(tenant) == knn


def test_a_negative_exemplar_suppresses_its_label(db, knn_ctx, knn, tenant):
    ctx = knn_ctx
    seed(db, ctx, tenant)
    apply_policy(db, policy_text("neg", near_duplicate_distance=0.1), tenant=tenant)
    before = upload(db, ctx, tenant, "u1", SPAM_COPY)
    assert before["label"] == "spam" and before["action"] == "block"
    # The same content, allowlisted for spam (e.g. the raffle is our own).
    result = import_exemplars(db, ctx, [{"asset_id": "allow-1", "tenant": tenant, "text": SPAM_COPY,
                                         "label": "spam", "polarity": "negative"}])
    assert result.imported == 1
    after = upload(db, ctx, tenant, "u2", SPAM_COPY)
    assert after["label"] != "spam" and after["action"] == "allow"
    assert {"asset_id": "allow-1", "label": "spam", "polarity": "negative"}.items() <= after["neighbors"][0].items()
    assert knn_path_served(tenant) == knn


def test_disable_and_enable_bump_the_bank_and_keep_in_bank_consistent(db, knn_ctx, knn, tenant):
    ctx = knn_ctx
    seed(db, ctx, tenant)
    version = repository.bank_version(db, tenant)
    asset_pk = db.scalar(select(Asset.id).where(Asset.tenant == tenant, Asset.asset_id == "cooking-0"))

    edit = set_enabled(db, ctx, tenant, "cooking-0", False, who="ops")
    assert edit.labels == ["cooking"] and edit.bank_version == version + 1
    assert not any(db.scalars(select(Embedding.in_bank).where(Embedding.asset_pk == asset_pk)))
    decision = upload(db, ctx, tenant, "u1", BANK["cooking"][0])
    assert "cooking-0" not in [n["asset_id"] for n in decision["neighbors"]]
    assert decision["bank_version"] == version + 1

    assert set_enabled(db, ctx, tenant, "cooking-0", False).labels == []  # no change, no bump
    assert repository.bank_version(db, tenant) == version + 1
    assert set_enabled(db, ctx, tenant, "cooking-0", True, who="ops").bank_version == version + 2
    assert all(db.scalars(select(Embedding.in_bank).where(Embedding.asset_pk == asset_pk)))
    assert upload(db, ctx, tenant, "u2", BANK["cooking"][0])["neighbors"][0]["asset_id"] == "cooking-0"
    kinds = [e.kind for e in repository.audit_entries(db, tenant, asset_id="cooking-0")]
    assert kinds == ["exemplar_disable", "exemplar_enable"]
    with pytest.raises(BankError):
        set_enabled(db, ctx, tenant, "cooking-0", False, label="finance")
    with pytest.raises(BankError):
        set_enabled(db, ctx, tenant, "missing", False)
    assert knn_path_served(tenant) == knn


def test_one_label_of_a_multi_label_asset_can_be_disabled(db, ctx, tenant):
    seed(db, ctx, tenant)
    import_exemplars(db, ctx, [{"asset_id": "cooking-0", "tenant": tenant, "text": BANK["cooking"][0],
                                "label": "food"}])
    set_enabled(db, ctx, tenant, "cooking-0", False, label="food")
    states = dict(db.execute(select(Exemplar.label, Exemplar.enabled).join(Asset, Asset.id == Exemplar.asset_pk)
                             .where(Asset.tenant == tenant, Asset.asset_id == "cooking-0")).all())
    assert states == {"cooking": True, "food": False}
    asset_pk = db.scalar(select(Asset.id).where(Asset.tenant == tenant, Asset.asset_id == "cooking-0"))
    assert all(db.scalars(select(Embedding.in_bank).where(Embedding.asset_pk == asset_pk)))  # cooking still on


def test_export_lists_every_exemplar_with_provenance(db, ctx, tenant):
    seed(db, ctx, tenant)
    set_enabled(db, ctx, tenant, "finance-1", False)
    rows = list(export_exemplars(db, tenant))
    assert len(rows) == 7 and all(json.loads(json.dumps(r)) == r for r in rows)
    finance = next(r for r in rows if r["asset_id"] == "finance-1")
    assert finance["enabled"] is False and finance["label"] == "finance" and finance["source"] == "import"
    assert finance["text"] == BANK["finance"][1] and finance["polarity"] == "positive"
    assert list(export_exemplars(db, tenant + "-other")) == []


# --- calibration and backtest ---------------------------------------------------------------------

VALIDATION = [
    ("Melt butter and soften the onions with garlic and thyme.", "cooking"),
    ("Let the dough rise in a warm kitchen after kneading it.", "cooking"),
    ("Roast vegetables with rosemary, salt and olive oil.", "cooking"),
    ("Simmer the garlic and onions until golden.", "cooking"),
    ("Interest rates rose as the central bank fought inflation.", "finance"),
    ("Revenue grew and quarterly earnings beat forecasts.", "finance"),
    ("Treasury auction was smaller and bond yields fell.", "finance"),
    ("The bank raised rates by a quarter point.", "finance"),
    ("WIN a FREE cruise!!! Claim your prize voucher now", "spam"),
    ("Claim your FREE prize voucher code now at prizes-winner", "spam"),
    ("Zebra xylophone quantum marmalade", None),
    ("Roast the quarterly earnings in butter", None),
]


def validation_items(tenant):
    return [{"asset_id": f"val-{i}", "tenant": tenant, "text": text, "label": label}
            for i, (text, label) in enumerate(VALIDATION)]


def test_calibration_reaches_the_target_on_its_data_and_stores_nothing(db, ctx, tenant):
    seed(db, ctx, tenant)
    counts = [db.scalar(select(func.count()).select_from(m).where(m.tenant == tenant)) for m in (Asset, Embedding)]
    result = calibrate(db, ctx, tenant, validation_items(tenant) + [{"asset_id": "bad", "tenant": tenant}],
                       target_precision=0.9, review_precision=0.6)
    assert [a for a, _ in result.rejected] == ["bad"] and len(result.items) == len(VALIDATION)
    assert [db.scalar(select(func.count()).select_from(m).where(m.tenant == tenant)) for m in (Asset, Embedding)] \
        == counts
    scored = [i.scored for i in result.items]
    for label, th in result.thresholds.items():
        assert th.review <= th.auto
        if th.auto != math.inf:
            chosen = [s for s in scored if s.predicted == label and s.score >= th.auto]
            assert sum(s.truth == label for s in chosen) / len(chosen) >= 0.9
    assert result.report.total == len(VALIDATION)
    # The written policy is a new, valid version with those thresholds.
    text = policy_store.policy_to_toml(result.policy, comments={"spam": "calibrated"})
    parsed = policy_store.parse_policy(text).policy
    assert parsed == result.policy and parsed.version.startswith("calibrated-")
    for label, th in result.thresholds.items():
        assert parsed.labels[label].auto_threshold == th.auto
    assert "confusion matrix" in calibration.format_report(result.report)


def test_backtest_shows_how_decisions_would_change_and_writes_nothing(db, ctx, tenant):
    seed(db, ctx, tenant)
    for i, (text, _) in enumerate(VALIDATION):
        upload(db, ctx, tenant, f"u{i}", text)
    stored = dict(db.execute(select(Decision.asset_id, Decision.action).where(Decision.tenant == tenant)).all())
    counts = [db.scalar(select(func.count()).select_from(m).where(m.tenant == tenant))
              for m in (Decision, OutboxMessage, Exemplar)]
    candidate = policy_store.parse_policy('version = "strict"\n[labels.cooking]\naction = "block"\n'
                                      'auto_threshold = 0.3\nreview_threshold = 0.2\n').policy
    result = backtest(db, ctx, tenant, candidate, examples=2)
    assert result.replayed == len(VALIDATION) and result.candidate == "strict" and result.current == "builtin-1"
    assert sum(result.stored_to_candidate.values()) == len(VALIDATION)
    to_block = sum(n for (a, b), n in result.stored_to_candidate.items() if b == "block" and a != "block")
    assert to_block >= 3 and result.changed >= to_block
    examples = [row for (a, b), rows in result.examples.items() if b == "block" for row in rows]
    assert examples and all(stored[row["asset_id"]] == row["from"] and row["label"] == "cooking" for row in examples)
    assert all(len(rows) <= 2 for rows in result.examples.values())
    assert [db.scalar(select(func.count()).select_from(m).where(m.tenant == tenant))
            for m in (Decision, OutboxMessage, Exemplar)] == counts
    same = backtest(db, ctx, tenant, policy_store.parse_policy('version = "same"\n').policy)
    assert all(a == b for (a, b) in same.current_to_candidate)


# --- anomaly alerts ---------------------------------------------------------------------------------

def test_anomaly_alerts_are_grouped_per_window_and_rate_limited(db, tenant):
    config = alerts.AlertConfig(window_s=300, min_interval_s=900, settle_s=0, top=2)
    t0 = alerts.window_floor(datetime.now(timezone.utc) - timedelta(hours=3), 300)
    for n, (offset, score) in enumerate([(10, 0.7), (20, 0.9), (30, 0.8)]):
        flagged_decision(db, tenant, n, t0 + timedelta(seconds=offset), score)
    repository.insert_decisions(db, [dict(  # not flagged: never counted
        tenant=tenant, event_id="calm", asset_id="calm", asset_pk=None, action="allow", label="x", score=0.9,
        labels=[], anomaly={"score": 0.1, "threshold": 0.5, "flagged": False}, neighbors=[], reason="ok",
        embedding_model="m", policy_version="p", bank_version=1, decided_at=t0 + timedelta(seconds=40))])

    def mine(now):
        return [a for a in alerts.run_alerts(db, config, now=now) if a["tenant"] == tenant]

    assert mine(t0 + timedelta(seconds=290)) == []  # the window is still open
    [first] = mine(t0 + timedelta(seconds=310))
    assert first["flagged"] == 3 and first["by_action"] == {"review": 3} and first["window"]["seconds"] == 300
    assert [e["asset_id"] for e in first["examples"]] == ["a1", "a2"]  # the top 2 by anomaly score
    assert mine(t0 + timedelta(seconds=320)) == []  # once per window

    flagged_decision(db, tenant, 3, t0 + timedelta(seconds=400), 0.6)
    assert mine(t0 + timedelta(seconds=610)) == []  # rate-limited: 900 s since the last alert
    flagged_decision(db, tenant, 4, t0 + timedelta(seconds=700), 0.6)
    [grouped] = mine(t0 + timedelta(seconds=1220))  # both windows in one alert, nothing lost
    assert grouped["flagged"] == 2 and grouped["window"]["seconds"] == 900
    messages = db.scalars(select(OutboxMessage).where(OutboxMessage.tenant == tenant, OutboxMessage.kind == "alert")
                          .order_by(OutboxMessage.id)).all()
    assert [m.message_id for m in messages] == [first["message_id"], grouped["message_id"]]
    assert all(m.message_id.startswith(f"alert:{tenant}:anomaly:") for m in messages)


# --- write-back to the broker queue (real Redis) --------------------------------------------------------

def test_decisions_and_overrides_reach_the_decision_queue_once(db, ctx, tenant, broker_url, monkeypatch):
    from kombu import Connection

    from governance.delivery import outbox_relay
    from governance.moderation import review
    from governance.platform.config import Settings

    queue_name = f"governance.decisions.test-{tenant}"
    monkeypatch.setenv("CELERY_BROKER_URL", broker_url)
    monkeypatch.setenv("GOVERNANCE_DECISION_QUEUE", queue_name)
    from worker.app import app
    from worker.sinks import configured_sinks

    assert app.conf.broker_url == broker_url
    seed(db, ctx, tenant)
    decision = upload(db, ctx, tenant, "u1", SPAM_COPY)
    done = review.decide(db, ctx, tenant, "u1", "allow", label="cooking", who="alice")
    sinks = configured_sinks(Settings.from_env())
    mine = [m for m in repository.claim_outbox(db, 10_000) if m.tenant == tenant]
    assert len(mine) == 2
    while outbox_relay.relay(db, sinks, limit=10_000).delivered:
        pass
    with Connection(broker_url) as connection:
        queue = connection.SimpleQueue(queue_name)
        received = []
        while True:
            try:
                message = queue.get(timeout=1)
            except queue.Empty:
                break
            if f":{tenant}:" in message.payload["message_id"]:  # other tests' committed messages may be due too
                received.append(message.payload)
            message.ack()
        queue.queue.delete()
        queue.close()
    ids = sorted(m["message_id"] for m in received)
    assert ids == sorted([f"decision:{tenant}:{decision['event_id']}", done.message_id])
    override = next(m for m in received if m["kind"] == "override")
    assert override["payload"]["action"] == "allow" and override["payload"]["label"] == "cooking"
    logged = repository.deliveries(db, tenant)
    assert sorted((d.message_id, d.status) for d in logged) == sorted((i, "delivered") for i in ids)


# --- the command line, which commits: in a database of its own ----------------------------------------

@pytest.fixture
def own_database_url(database_url):
    """A fresh, migrated database in the same server, dropped afterwards, so that committed rows
    never change what the shared test database holds (or its planner statistics)."""
    import uuid

    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    from governance.storage.db import _engines
    from governance.storage.migrate import upgrade

    name = f"cli_{uuid.uuid4().hex[:10]}"
    admin = create_engine(database_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    url = make_url(database_url).set(database=name).render_as_string(hide_password=False)
    try:
        upgrade(url)
        yield url
    finally:
        engine = _engines.pop(url, None)
        if engine is not None:
            engine.dispose()
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def test_the_command_line_drives_policies_review_bank_calibration_and_backtest(
        own_database_url, settings, tenant, tmp_path, monkeypatch, capsys):
    from governance.storage.db import session_factory, transaction
    from worker.cli import main

    database_url = own_database_url
    monkeypatch.setenv("DATABASE_URL", database_url)

    def run(*argv, code=0):
        capsys.readouterr()
        assert main(list(argv)) == code, capsys.readouterr().err
        return capsys.readouterr()

    def jsonl(name, rows):
        path = tmp_path / name
        path.write_text("".join(json.dumps(r) + "\n" for r in rows))
        return str(path)

    bank = [{"asset_id": f"{label}-{i}", "tenant": tenant, "text": t, "label": label}
            for label, texts in BANK.items() if label != "spam" for i, t in enumerate(texts)]
    assert run("exemplars", "import", jsonl("bank.jsonl", bank)).out.strip() == "6"
    policy_file = tmp_path / "policy.toml"
    policy_file.write_text(policy_text("cli-1", near_duplicate_distance=0.1))
    assert "policy cli-1 applied" in run("policy", "apply", str(policy_file), "--tenant", tenant, "--who", "ops").out
    assert 'version = "cli-1"' in run("policy", "show", "--tenant", tenant).out
    assert "current" in run("policy", "list", "--tenant", tenant).out
    (tmp_path / "bad.toml").write_text('version = "x"\nk = 0\n')
    assert "invalid policy" in run("policy", "apply", str(tmp_path / "bad.toml"), "--tenant", tenant, code=2).err

    factory = session_factory(database_url)
    ctx = Context(settings=settings, embedder=HashingEmbedder(768))
    with transaction(factory) as session:
        first = upload(session, ctx, tenant, "u1", SPAM_COPY)
        assert first["policy_version"] == "cli-1"
        upload(session, ctx, tenant, "u2", "zebra xylophone quantum marmalade")

    pending = [json.loads(line) for line in run("review", "list", "--tenant", tenant).out.splitlines()]
    assert "u2" in [p["asset_id"] for p in pending if p["kind"] == "decision"]
    done = json.loads(run("review", "decide", "u1", "block", "--label", "spam", "--who", "alice",
                          "--tenant", tenant).out)
    assert done["message_id"].startswith(f"override:{tenant}:") and done["after"]["label"] == "spam"
    assert "no decision" in run("review", "decide", "nope", "allow", "--tenant", tenant, code=2).err
    with transaction(factory) as session:
        assert upload(session, ctx, tenant, "u3", SPAM_COPY)["action"] == "block"  # learned from the override

    assert "disabled 1 exemplar(s) of u1 (spam)" in run("exemplars", "disable", "u1", "--tenant", tenant).out
    exported = [json.loads(line) for line in run("exemplars", "export", "--tenant", tenant).out.splitlines()]
    assert {(e["asset_id"], e["enabled"], e["source"]) for e in exported if e["label"] == "spam"} == \
        {("u1", False, "review")}
    assert "enabled 1" in run("exemplars", "enable", "u1", "--tenant", tenant).out

    out_policy = tmp_path / "calibrated.toml"
    report = run("calibrate", jsonl("val.jsonl", validation_items(tenant)), "--tenant", tenant,
                 "--target-precision", "0.9", "--write-policy", str(out_policy))
    assert "confusion matrix" in report.out and "coverage" in report.out
    calibrated = policy_store.parse_policy(out_policy.read_text()).policy
    assert calibrated.version.startswith("cli-1+cal-") and calibrated.labels["spam"].near_duplicate_distance == 0.1
    assert "applied" in run("policy", "apply", str(out_policy), "--tenant", tenant).out

    result = run("backtest", "--policy", str(policy_file), "--tenant", tenant, "--json").out
    summary = json.loads(result)
    assert summary["replayed"] == 3 and summary["candidate"] == "cli-1" and summary["current"] == calibrated.version
