"""The use cases the HTTP engine routes call, on a real PostgreSQL: review by event id, the review
queue and the exemplars page by page, the bank summary, policy files and history, backtest JSON."""
import pytest
from sqlalchemy import func, select, update

from governance.clustering.stored_reports import latest_report
from governance.moderation import review
from governance.moderation.backtest import backtest, backtest_report
from governance.moderation.exemplar_banks import bank_summary, exemplar_page, export_exemplars, set_enabled
from governance.moderation.policy_store import (PolicyConflict, PolicyError, apply_policy, parse_policy,
                                                policy_file, policy_history)
from governance.storage import repository
from governance.storage.tables import AuditEntry, Decision, ReviewItem
from tests.integration.helpers import SPAM, publish, seed, upload

ODD = ["Something entirely unrelated to any exemplar: zebra xylophone",
       "Quantum gravel orchestras hum beneath the lighthouse",
       "Velvet comets argue with a patient accordion"]


def test_decide_event_overrides_that_events_decision_and_tells_unknown_from_undecided(db, ctx, tenant):
    seed(db, ctx, tenant)
    first = upload(db, ctx, tenant, "u1", SPAM)
    done = review.decide_event(db, ctx, tenant, first["event_id"], "block", label="spam", who="key-name")
    assert (done.event_id, done.asset_id, done.exemplar) == (first["event_id"], "u1",
                                                              {"label": "spam", "polarity": "positive"})
    [entry] = repository.audit_entries(db, tenant, kind="override")
    assert (entry.who, entry.event_id) == ("key-name", first["event_id"])

    with pytest.raises(review.UnknownDecision, match="no event"):
        review.decide_event(db, ctx, tenant, "never-sent", "allow")
    with pytest.raises(review.UnknownDecision):  # another tenant's event is unknown here
        review.decide_event(db, ctx, f"{tenant}-other", first["event_id"], "allow")
    [(_, waiting)] = publish(db, {"asset_id": "u2", "tenant": tenant, "text": "not decided yet"})
    with pytest.raises(review.NotDecided, match="accepted"):
        review.decide_event(db, ctx, tenant, waiting, "allow")
    with pytest.raises(review.ReviewError, match="action"):
        review.decide_event(db, ctx, tenant, first["event_id"], "maybe")
    assert db.scalar(select(func.count()).select_from(AuditEntry).where(
        AuditEntry.tenant == tenant, AuditEntry.kind == "override")) == 1


def test_the_review_queue_pages_through_decisions_and_review_items_in_one_order(db, ctx, tenant):
    seed(db, ctx, tenant)
    for i, text in enumerate(ODD):
        upload(db, ctx, tenant, f"odd-{i}", text)
    db.execute(update(Decision).where(Decision.tenant == tenant).values(action="review"))  # whatever the vote was
    asset = repository.asset_by_id(db, tenant, "cooking-0")
    item = repository.insert_review_item(db, tenant=tenant, asset_pk=asset.id, asset_id="cooking-0", event_id=None,
                                         reason="retroactive", label="spam", trigger_asset_id="x", distance=0.1)
    everything = review.pending(db, tenant)
    assert sorted(i["kind"] for i in everything) == ["decision"] * 3 + ["retroactive"]
    assert [i["review_item"] for i in everything if i["kind"] == "retroactive"] == [item]
    assert [i["opened_at"] for i in everything] == sorted(i["opened_at"] for i in everything)

    pages, after = [], None
    while True:
        page, after = review.pending_page(db, tenant, 1, after)
        pages += page
        if after is None:
            break
    assert pages == everything
    two, position = review.pending_page(db, tenant, 2)
    rest, end = review.pending_page(db, tenant, 2, position)
    assert two + rest == everything and end is None
    db.execute(update(ReviewItem).where(ReviewItem.id == item).values(status="resolved"))
    assert len(review.pending_page(db, tenant, 10)[0]) == 3


def test_exemplar_pages_and_the_bank_summary_agree_with_the_export(db, ctx, tenant):
    seed(db, ctx, tenant)
    exported = list(export_exemplars(db, tenant))
    pages, after = [], None
    while True:
        page, after = exemplar_page(db, tenant, after=after, limit=4)
        pages.append(page)
        if after is None:
            break
    assert [len(p) for p in pages] == [4, 2] and [x for p in pages for x in p] == exported
    finance, end = exemplar_page(db, tenant, label="finance")
    assert [x["asset_id"] for x in finance] == ["finance-0", "finance-1", "finance-2"] and end is None
    assert exemplar_page(db, f"{tenant}-other")[0] == []

    set_enabled(db, ctx, tenant, "finance-2", False)
    summary = bank_summary(db, tenant)
    assert summary == {"tenant": tenant, "bank_version": repository.bank_version(db, tenant), "exemplars": 6,
                       "labels": [{"label": "cooking", "positive": 3, "negative": 0, "disabled": 0},
                                  {"label": "finance", "positive": 2, "negative": 0, "disabled": 1}]}
    assert bank_summary(db, f"{tenant}-other") == {"tenant": f"{tenant}-other", "bank_version": 0,
                                                   "exemplars": 0, "labels": []}


POLICY = 'version = "p-1"\nk = 4\n[labels.spam]\naction = "block"\n'


def test_policy_files_history_and_the_errors_of_a_bad_one(db, ctx, tenant):
    builtin = policy_file(db, tenant)
    assert builtin["applied"] is False and builtin["version"] == "builtin-1"
    assert builtin["document"]["version"] == "builtin-1" and 'version = "builtin-1"' in builtin["source"]
    assert policy_history(db, tenant) == []

    apply_policy(db, POLICY, tenant=tenant, who="ops")
    current = policy_file(db, tenant)
    assert (current["version"], current["applied"], current["source"]) == ("p-1", True, POLICY)
    assert current["document"]["k"] == 4
    assert policy_file(db, tenant, "p-0") is None
    assert [(h["version"], h["applied_by"], h["current"]) for h in policy_history(db, tenant)] == [("p-1", "ops", True)]

    with pytest.raises(PolicyError) as bad:
        parse_policy('version = "v"\nk = 0\ntie_margin = 7\n')
    assert [e.split(":")[0] for e in bad.value.errors] == ["k", "tie_margin"]
    assert str(bad.value) == "; ".join(bad.value.errors)
    with pytest.raises(PolicyError, match="NUL"):  # jsonb, where the document is stored, cannot hold one
        parse_policy('version = "v"\n[labels."a\\u0000"]\naction = "block"\n')
    with pytest.raises(PolicyConflict):
        apply_policy(db, POLICY.replace("k = 4", "k = 5"), tenant=tenant)


def test_backtest_report_is_json_of_the_replay(db, ctx, tenant):
    seed(db, ctx, tenant)
    for i, text in enumerate(ODD):
        upload(db, ctx, tenant, f"odd-{i}", text)
    candidate = parse_policy('version = "all-block"\n[default]\naction = "block"\nauto_threshold = 0.0\n'
                             'review_threshold = 0.0\n').policy
    report = backtest_report(backtest(db, ctx, tenant, candidate, examples=2))
    assert report["candidate"] == "all-block" and report["replayed"] == 3
    assert sum(t["count"] for t in report["stored_to_candidate"]) == 3
    assert report["changed"] == sum(t["count"] for t in report["stored_to_candidate"] if t["from"] != t["to"])
    assert len(report["examples"]) <= 2 * len(report["stored_to_candidate"])


def test_latest_cluster_report_is_the_newest_stored_one(db, tenant):
    assert latest_report(db, tenant) is None
    repository.store_cluster_report(db, tenant, "m", {"clusters": [], "n": 1})
    newest = repository.store_cluster_report(db, tenant, "m", {"clusters": [], "n": 2})
    found = latest_report(db, tenant)
    assert found["report_id"] == newest and found["report"] == {"clusters": [], "n": 2}
    assert latest_report(db, f"{tenant}-other") is None


def test_an_exemplar_label_longer_than_the_column_is_that_items_rejection(db, ctx, tenant):
    from governance.moderation.exemplar_banks import import_exemplars

    result = import_exemplars(db, ctx, [{"asset_id": "long", "tenant": tenant, "text": "t", "label": "x" * 129},
                                        {"asset_id": "ok", "tenant": tenant, "text": "t", "label": "x" * 128}])
    assert result.imported == 1 and result.rejected == [("long", "invalid_field: a label has at most 128 characters")]
