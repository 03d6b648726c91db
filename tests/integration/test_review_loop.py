"""The review loop on a real PostgreSQL with pgvector: overrides teach the bank, in the next decision."""
import json

import pytest
from sqlalchemy import func, select, update

from governance.moderation import review
from governance.moderation.exemplar_banks import import_exemplars
from governance.moderation.policy_store import apply_policy
from governance.storage import repository
from governance.storage.tables import AuditEntry, Decision, Embedding, Exemplar, OutboxMessage
from tests.integration.helpers import SPAM, knn_path_served, seed, upload

SPAM_AGAIN = SPAM.replace("XJ-4411", "XJ-4412")

POLICY = """
version = "review-loop-1"
[labels.spam]
action = "block"
auto_threshold = 0.5
review_threshold = 0.3
near_duplicate_distance = 0.2
"""


def test_override_makes_an_exemplar_and_the_next_similar_upload_gets_its_label(db, knn_ctx, knn, tenant):
    ctx = knn_ctx
    seed(db, ctx, tenant)
    apply_policy(db, POLICY, tenant=tenant, who="ops")
    first = upload(db, ctx, tenant, "u1", SPAM)
    assert first["label"] != "spam"  # the bank knows no spam yet
    bank_before = repository.bank_version(db, tenant)

    done = review.decide(db, ctx, tenant, "u1", "block", label="spam", who="alice", note="prize scam")

    assert done.exemplar == {"label": "spam", "polarity": "positive"}
    assert done.bank_version == bank_before + 1
    exemplar = db.scalars(select(Exemplar).where(Exemplar.tenant == tenant, Exemplar.label == "spam")).one()
    assert exemplar.source == "review" and exemplar.created_by == "alice" and exemplar.enabled
    assert all(db.scalars(select(Embedding.in_bank).where(Embedding.asset_pk == exemplar.asset_pk)))

    second = upload(db, ctx, tenant, "u2", SPAM_AGAIN)
    assert second["label"] == "spam" and second["action"] == "block"
    assert second["neighbors"][0]["asset_id"] == "u1"
    assert second["policy_version"] == "review-loop-1" and second["bank_version"] == done.bank_version
    assert knn_path_served(tenant) == knn


def test_override_is_audited_and_written_back_through_the_outbox(db, ctx, tenant):
    seed(db, ctx, tenant)
    decision = upload(db, ctx, tenant, "u1", SPAM)
    done = review.decide(db, ctx, tenant, "u1", "block", label="spam", who="alice")

    [entry] = db.scalars(select(AuditEntry).where(AuditEntry.tenant == tenant, AuditEntry.kind == "override")).all()
    assert entry.who == "alice" and entry.at is not None and entry.event_id == decision["event_id"]
    assert entry.before["action"] == decision["action"] and entry.before["label"] == decision["label"]
    assert entry.after["action"] == "block" and entry.after["label"] == "spam"

    message = db.scalars(select(OutboxMessage).where(OutboxMessage.tenant == tenant,
                                                     OutboxMessage.kind == "override")).one()
    assert message.message_id == f"override:{tenant}:{decision['event_id']}:{entry.id}" == done.message_id
    assert message.payload["action"] == "block" and message.payload["previous"]["action"] == decision["action"]
    assert message.payload["override"]["who"] == "alice"
    json.dumps(message.payload)  # JSON-safe for every sink


def test_review_list_shows_pending_reviews_until_decided(db, ctx, tenant):
    seed(db, ctx, tenant)
    decision = upload(db, ctx, tenant, "u1", "Something entirely unrelated to any exemplar: zebra xylophone")
    assert decision["action"] == "review"
    [item] = review.pending(db, tenant)
    assert item["kind"] == "decision" and item["asset_id"] == "u1" and item["event_id"] == decision["event_id"]
    review.decide(db, ctx, tenant, "u1", "allow", who="bob")
    assert review.pending(db, tenant) == []


def test_allowing_a_block_label_adds_a_negative_exemplar_that_suppresses_it(db, knn_ctx, knn, tenant):
    ctx = knn_ctx
    seed(db, ctx, tenant)
    apply_policy(db, POLICY.replace("near_duplicate_distance = 0.2", ""), tenant=tenant)
    upload(db, ctx, tenant, "bad-1", SPAM)
    review.decide(db, ctx, tenant, "bad-1", "block", label="spam", who="alice")
    # A look-alike that is actually fine: the reviewer allows it, for spam.
    looks = "WIN a FREE cruise!!! Claim your prize voucher code XJ-4411 now at our-own-raffle dot example"
    assert upload(db, ctx, tenant, "ok-1", looks)["action"] == "block"
    done = review.decide(db, ctx, tenant, "ok-1", "allow", label="spam", who="bob")
    assert done.exemplar == {"label": "spam", "polarity": "negative"} and done.after["label"] is None

    again = upload(db, ctx, tenant, "ok-2", looks)
    assert again["action"] == "allow"
    assert any(n.get("polarity") == "negative" and n["asset_id"] == "ok-1" for n in again["neighbors"])
    assert knn_path_served(tenant) == knn


def test_a_new_known_bad_exemplar_opens_reviews_for_recent_look_alikes(db, ctx, tenant):
    seed(db, ctx, tenant)
    apply_policy(db, POLICY, tenant=tenant)
    upload(db, ctx, tenant, "u1", SPAM)
    allowed = upload(db, ctx, tenant, "u2", SPAM_AGAIN)
    far = upload(db, ctx, tenant, "u3", "Fry the garlic in butter and add fresh thyme to the onions.")
    assert allowed["action"] != "block" and far["action"] == "allow"
    db.execute(update(Decision).where(Decision.tenant == tenant, Decision.asset_id == "u2")
               .values(action="allow"))  # whatever it was, it went out as allowed

    done = review.decide(db, ctx, tenant, "u1", "block", label="spam", who="alice")

    assert [r["asset_id"] for r in done.retroactive] == ["u2"]
    assert done.retroactive[0]["distance"] <= 0.2 and done.retroactive[0]["trigger_asset_id"] == "u1"
    retro = [item for item in review.pending(db, tenant) if item["kind"] == "retroactive"]
    assert [item["asset_id"] for item in retro] == ["u2"]
    # Deciding again is idempotent for the match, and deciding the look-alike resolves its item.
    assert review.decide(db, ctx, tenant, "u1", "block", label="spam", who="alice").retroactive == []
    review.decide(db, ctx, tenant, "u2", "block", label="spam", who="alice")
    assert [item for item in review.pending(db, tenant) if item["kind"] == "retroactive"] == []


def test_importing_a_known_bad_exemplar_rechecks_recent_allows(db, ctx, tenant):
    seed(db, ctx, tenant)
    apply_policy(db, POLICY, tenant=tenant)
    upload(db, ctx, tenant, "u2", SPAM_AGAIN)
    db.execute(update(Decision).where(Decision.tenant == tenant)
               .values(action="allow"))
    result = import_exemplars(db, ctx, [{"asset_id": "bad-x", "tenant": tenant, "text": SPAM, "label": "spam"}])
    assert [r["asset_id"] for r in result.retroactive] == ["u2"]


def test_override_of_unknown_asset_or_label_is_refused(db, ctx, tenant):
    with pytest.raises(review.ReviewError, match="no decision"):
        review.decide(db, ctx, tenant, "nope", "block", label="spam")
    assert upload(db, ctx, tenant, "u1", "zebra xylophone quantum")["label"] is None  # empty bank
    with pytest.raises(review.ReviewError, match="needs a label"):
        review.decide(db, ctx, tenant, "u1", "block")
    with pytest.raises(review.ReviewError, match="action"):
        review.decide(db, ctx, tenant, "u1", "maybe", label="spam")
    assert db.scalar(select(func.count()).select_from(AuditEntry).where(AuditEntry.tenant == tenant)) == 0
