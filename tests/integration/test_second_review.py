"""Blind second review on a real PostgreSQL: sampling, the queue, blindness, disagreement, resolution,
and the quality report over it."""
from dataclasses import replace

import pytest
from sqlalchemy import func, select

from governance.moderation import review_evidence, review_quality
from governance.moderation import review_queue as rq
from governance.moderation.audit_trail import AuditFilter, audit_rows
from governance.moderation.policy_rules import Policy
from governance.moderation.policy_store import apply_policy, current_policy
from governance.storage import repository
from governance.storage.tables import AuditEntry, Exemplar, OutboxMessage
from tests.integration.helpers import SPAM, seed, upload
from tests.integration.test_review_queue import ALL_TO_REVIEW

ALICE, BOB, CAROL = rq.Reviewer("s-alice", "alice"), rq.Reviewer("s-bob", "bob"), rq.Reviewer("s-carol", "carol")


def counts(db, tenant):
    return tuple(db.scalar(select(func.count()).select_from(model).where(model.tenant == tenant))
                 for model in (AuditEntry, Exemplar, OutboxMessage))


@pytest.fixture
def every(ctx):
    return replace(ctx, settings=replace(ctx.settings, review_second_share=1.0))


def test_a_sampled_decision_waits_blind_for_another_reviewer_and_a_disagreement_escalates(db, every, tenant):
    seed(db, every, tenant)
    apply_policy(db, ALL_TO_REVIEW, tenant=tenant, who="ops")
    event = upload(db, every, tenant, "u1", SPAM)["event_id"]
    policy = current_policy(db, tenant, Policy())
    rq.decide(db, every, tenant, event, "block", ALICE, label="spam")

    item = rq.waiting_item(db, policy, tenant, event)
    assert item.queue == "second_review" and item.blind and item.first_who == "alice"
    assert [i.event_id for i in rq.queue_items(db, policy, tenant, "reason", "second_review", who="bob")] == [event]
    assert rq.queue_items(db, policy, tenant, "reason", "second_review", who="alice") == []
    assert rq.queue_items(db, policy, tenant, who="bob") == []  # in its own queue only
    with pytest.raises(rq.OwnDecision):
        rq.claim(db, policy, tenant, event, ALICE)
    with pytest.raises(rq.OwnDecision):
        rq.decide(db, every, tenant, event, "allow", ALICE)

    seen = review_evidence.item_evidence(db, every, tenant, event)
    assert seen.item.blind and not [h for h in seen.history if h["who"] == "alice"]
    assert not [r for r in audit_rows(db, tenant, AuditFilter(), viewer="bob") if r["event_id"] == event]
    assert [r["who"] for r in audit_rows(db, tenant, AuditFilter(), viewer="alice") if r["event_id"] == event] == [
        "alice"]

    before = counts(db, tenant)
    rq.claim(db, policy, tenant, event, BOB)
    second = rq.decide(db, every, tenant, event, "allow", BOB)
    assert isinstance(second, review_quality.SecondDecision) and not second.agreed
    audit, exemplars, outbox = counts(db, tenant)
    assert (exemplars, outbox) == before[1:] and audit == before[0] + 2  # second_review + escalation rows
    assert rq.waiting_item(db, policy, tenant, event).queue == "escalated"
    assert repository.second_review_of_event(db, tenant, event).status == "disagreed"

    rq.decide(db, every, tenant, event, "block", CAROL, label="spam")
    assert rq.waiting_item(db, policy, tenant, event) is None
    assert repository.second_review_of_event(db, tenant, event).status == "resolved"
    assert db.scalar(select(func.count()).select_from(AuditEntry).where(
        AuditEntry.tenant == tenant, AuditEntry.kind == "override")) == 2

    report = review_quality.quality_report(db, tenant, 1.0)
    [pair] = report.by_pair
    assert (pair.key, pair.items, pair.agreed, pair.kappa) == ("alice & bob", 1, 0, 0.0)
    assert report.second_reviews == {"resolved": 1}
    assert report.overturns.reviewed == 1  # carol's decision is the latest of the event


def test_an_agreement_closes_the_review_and_nothing_is_sampled_at_share_zero(db, every, ctx, tenant):
    seed(db, every, tenant)
    apply_policy(db, ALL_TO_REVIEW, tenant=tenant, who="ops")
    policy = current_policy(db, tenant, Policy())
    agreed = upload(db, every, tenant, "u1", SPAM)["event_id"]
    rq.decide(db, every, tenant, agreed, "block", ALICE, label="spam")
    assert rq.decide(db, every, tenant, agreed, "block", BOB, label="spam").agreed
    assert rq.waiting_item(db, policy, tenant, agreed) is None
    assert repository.second_review_of_event(db, tenant, agreed).status == "agreed"

    never = replace(ctx, settings=replace(ctx.settings, review_second_share=0.0))
    plain = upload(db, never, tenant, "u2", "Simmer the sauce until it thickens.")["event_id"]
    rq.decide(db, never, tenant, plain, "allow", ALICE)
    assert repository.second_review_of_event(db, tenant, plain) is None
    assert rq.waiting_item(db, policy, tenant, plain) is None
