"""The console's review queue on a real PostgreSQL: priority order, counts, leases, escalation, decisions."""
import threading
from dataclasses import replace
from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import delete, select, text, update

from governance.moderation import review_queue as rq
from governance.moderation.policy_store import apply_policy, current_policy
from governance.moderation.policy_rules import Policy
from governance.storage import repository
from governance.storage.db import engine_for, session_factory, transaction
from governance.storage.console_tables import ReviewLease
from governance.storage.tables import AuditEntry, OutboxMessage
from tests.integration.helpers import SPAM, seed, upload

POLICY = """
version = "queue-1"
[default]
action = "allow"
[labels.spam]
action = "block"
[labels.nsfw]
action = "review"
"""
# Everything a vote finds goes to review ("suggested"), so real uploads wait for a person.
ALL_TO_REVIEW = """
version = "all-review-1"
[default]
action = "review"
auto_threshold = inf
review_threshold = 0.0
[labels.spam]
action = "block"
auto_threshold = inf
review_threshold = 0.0
"""
ALICE = rq.Reviewer("s-alice", "alice")
BOB = rq.Reviewer("s-bob", "bob")


def _decision(tenant, event_id, label, score, reason, at):
    return dict(tenant=tenant, event_id=event_id, asset_id=event_id.replace("ev", "a"), asset_pk=None,
                action="review", label=label, score=score, labels=[], anomaly=None, neighbors=[], reason=reason,
                embedding_model="m", policy_version="queue-1", bank_version=1, decided_at=at)


@pytest.fixture
def queued(db, tenant):
    apply_policy(db, POLICY, tenant=tenant, who="ops")
    t0 = datetime(2026, 1, 1, tzinfo=timezone.utc)
    repository.insert_decisions(db, [
        _decision(tenant, "ev-old-landscape", "landscape", 0.9, "suggested: landscape with score 0.900", t0),
        _decision(tenant, "ev-nsfw", "nsfw", 0.5, "suggested: nsfw with score 0.500", t0 + timedelta(minutes=1)),
        _decision(tenant, "ev-spam-low", "spam", 0.4, "near_tie: spam vs nsfw (margin 0.010)", t0 + timedelta(minutes=3)),
        _decision(tenant, "ev-spam-high", "spam", 0.7, "anomaly: k-NN distance 0.9 above 0.5; suggested: spam",
                  t0 + timedelta(minutes=4)),
        _decision(tenant, "ev-spam-high-older", "spam", 0.7, "suggested: spam with score 0.700",
                  t0 + timedelta(minutes=2)),
        _decision(tenant, "ev-nomatch", None, 0.0, "no_match: no positive exemplar among the nearest neighbours",
                  t0 + timedelta(minutes=5)),
    ])
    return current_policy(db, tenant, Policy())


def test_items_come_in_priority_order_severity_then_score_then_age(db, tenant, queued):
    order = [i.event_id for i in rq.queue_items(db, queued, tenant)]
    assert order == ["ev-spam-high-older", "ev-spam-high", "ev-spam-low", "ev-nsfw", "ev-old-landscape",
                     "ev-nomatch"]
    assert [i.event_id for i in rq.queue_items(db, queued, tenant, "label", "spam")] == order[:3]
    assert [i.event_id for i in rq.queue_items(db, queued, tenant, "reason", "suggested")] == [
        "ev-spam-high-older", "ev-nsfw", "ev-old-landscape"]
    with pytest.raises(rq.review.ReviewError):
        rq.queue_items(db, queued, tenant, "colour", "red")


def test_counts_by_reason_and_label_with_the_oldest_age(db, tenant, queued):
    now = datetime(2026, 1, 1, 1, 0, tzinfo=timezone.utc)
    counts = {(c.grouping, c.key): (c.count, c.oldest_age_s) for c in rq.queue_counts(db, queued, tenant, now)}
    assert counts[("reason", "suggested")] == (3, 3600.0)
    assert counts[("reason", "near_tie")] == (1, 57 * 60.0)
    assert counts[("reason", "anomaly")] == (1, 56 * 60.0)
    assert counts[("reason", "no_match")] == (1, 55 * 60.0)
    assert counts[("reason", "escalated")] == (0, None)  # always listed
    assert counts[("label", "spam")] == (3, 58 * 60.0) and counts[("label", "")] == (1, 55 * 60.0)


def test_a_lease_keeps_others_out_until_released_or_expired(db, tenant, queued):
    rq.claim(db, queued, tenant, "ev-nsfw", ALICE)
    rq.claim(db, queued, tenant, "ev-nsfw", ALICE)  # renewing is fine
    with pytest.raises(rq.LeaseHeld) as held:
        rq.claim(db, queued, tenant, "ev-nsfw", BOB)
    assert held.value.who == "alice"
    assert "ev-nsfw" not in [i.event_id for i in rq.queue_items(db, queued, tenant, available_to=BOB.session_id)]
    assert rq.waiting_item(db, queued, tenant, "ev-nsfw").held_by == "alice"
    with pytest.raises(rq.LeaseHeld):
        rq.skip(db, tenant, "ev-nsfw", BOB)

    db.execute(update(ReviewLease).where(ReviewLease.tenant == tenant)
               .values(expires_at=text("clock_timestamp() - interval '1 second'")))
    rq.claim(db, queued, tenant, "ev-nsfw", BOB)  # expired: Bob may take it
    with pytest.raises(rq.LeaseHeld):
        rq.claim(db, queued, tenant, "ev-nsfw", ALICE)
    rq.skip(db, tenant, "ev-nsfw", BOB)
    rq.claim(db, queued, tenant, "ev-nsfw", ALICE)  # released by the skip
    with pytest.raises(rq.NotWaiting):
        rq.claim(db, queued, tenant, "ev-unknown", ALICE)


def test_skip_passes_over_the_item_for_that_reviewer_only(db, tenant, queued):
    first = rq.next_item(db, queued, tenant, ALICE)
    assert first.event_id == "ev-spam-high-older"
    rq.skip(db, tenant, first.event_id, ALICE)
    assert rq.next_item(db, queued, tenant, ALICE).event_id == "ev-spam-high"
    assert rq.next_item(db, queued, tenant, BOB).event_id == "ev-spam-high-older"


def test_escalation_moves_the_item_to_the_escalated_queue(db, tenant, queued):
    rq.claim(db, queued, tenant, "ev-nsfw", ALICE)
    audit_id = rq.escalate(db, queued, tenant, "ev-nsfw", ALICE, "  needs legal  ")
    entry = db.get(AuditEntry, audit_id)
    assert entry.kind == "escalation" and entry.who == "alice" and entry.after == {"queue": "escalated",
                                                                                   "note": "needs legal"}
    assert [i.event_id for i in rq.queue_items(db, queued, tenant, "reason", "escalated")] == ["ev-nsfw"]
    assert "ev-nsfw" not in [i.event_id for i in rq.queue_items(db, queued, tenant)]  # only there
    assert "ev-nsfw" not in [i.event_id for i in rq.queue_items(db, queued, tenant, "label", "nsfw")]
    counts = {(c.grouping, c.key): c.count for c in rq.queue_counts(db, queued, tenant)}
    assert counts[("reason", "escalated")] == 1 and ("label", "nsfw") not in counts
    assert rq.waiting_item(db, queued, tenant, "ev-nsfw").held_by is None  # released
    with pytest.raises(rq.NotWaiting):
        rq.escalate(db, queued, tenant, "ev-gone", ALICE, None)


def test_a_console_decision_is_the_review_decide_of_the_cli(db, ctx, tenant):
    ctx = replace(ctx, settings=replace(ctx.settings, review_second_share=0.0))  # second review: test_second_review
    seed(db, ctx, tenant)
    apply_policy(db, ALL_TO_REVIEW, tenant=tenant, who="ops")
    first = upload(db, ctx, tenant, "u1", SPAM)
    assert first["action"] == "review"
    policy = current_policy(db, tenant, Policy())
    rq.claim(db, policy, tenant, first["event_id"], ALICE)
    with pytest.raises(rq.LeaseHeld):
        rq.decide(db, ctx, tenant, first["event_id"], "block", BOB, label="spam")

    done = rq.decide(db, ctx, tenant, first["event_id"], "block", ALICE, label="spam", note="prize scam")

    assert done.exemplar == {"label": "spam", "polarity": "positive"}
    [entry] = db.scalars(select(AuditEntry).where(AuditEntry.tenant == tenant, AuditEntry.kind == "override")).all()
    assert entry.who == "alice" and entry.event_id == first["event_id"] and entry.after["note"] == "prize scam"
    message = db.scalars(select(OutboxMessage).where(OutboxMessage.tenant == tenant,
                                                     OutboxMessage.kind == "override")).one()
    assert message.payload["label"] == "spam" and message.payload["action"] == "block"
    assert rq.waiting_item(db, policy, tenant, first["event_id"]) is None
    with pytest.raises(rq.NotWaiting):
        rq.decide(db, ctx, tenant, first["event_id"], "allow", ALICE)
    assert upload(db, ctx, tenant, "u2", SPAM.replace("XJ-4411", "XJ-4412"))["label"] == "spam"


def test_two_racing_claimers_never_both_hold_the_lease(database_url, tenant):
    """Real concurrent transactions on two connections, released together by a barrier."""
    factory = session_factory(database_url)
    rounds, wins = 8, []
    barrier = threading.Barrier(2)

    def claim(reviewer: rq.Reviewer, event_id: str):
        with transaction(factory) as session:
            repository.enter_tenant(session, tenant)
            barrier.wait()
            if repository.claim_lease(session, tenant, event_id, reviewer.session_id, reviewer.who, 600):
                wins.append((event_id, reviewer.who))

    try:
        for n in range(rounds):
            threads = [threading.Thread(target=claim, args=(r, f"ev-race-{n}")) for r in (ALICE, BOB)]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
        assert sorted(e for e, _ in wins) == sorted(f"ev-race-{n}" for n in range(rounds))  # one winner each
        with transaction(factory) as session:
            held = dict(session.execute(select(ReviewLease.event_id, ReviewLease.who)
                                        .where(ReviewLease.tenant == tenant)).all())
        assert held == dict(wins)
    finally:
        with engine_for(database_url).begin() as conn:
            conn.execute(delete(ReviewLease).where(ReviewLease.tenant == tenant))
