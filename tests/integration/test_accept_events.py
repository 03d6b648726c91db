"""Accepting events: first line wins, duplicates and id conflicts are reported, never dropped silently."""
import pytest
from sqlalchemy import select

from governance.embedding.backends.hashing import HashingEmbedder
from governance.ingest.events import default_event_id
from governance.moderation.pipeline import Context
from governance.ingest.inbox import accept_events
from governance.moderation.batch_pipeline import process_upload
from governance.storage import repository
from governance.storage.tables import Event


def stored_texts(db, tenant):
    return {e.event_id: e.payload["text"] for e in db.scalars(select(Event).where(Event.tenant == tenant))}


def test_the_first_line_wins_and_later_ones_are_reported_as_duplicates(db, tenant):
    first = {"asset_id": "a", "tenant": tenant, "text": "one"}
    accepted = accept_events(db, [(1, first), (2, dict(first)), (3, {**first, "text": "two"})])
    event_id = default_event_id(tenant, "a")
    assert accepted.new == [(tenant, event_id)]
    assert accepted.refused == [
        (2, f"duplicate of line 1 (event_id {event_id}); the first is kept"),
        (3, f"duplicate of line 1 (event_id {event_id}) with a conflict: its content differs; the first is kept"),
    ]
    assert stored_texts(db, tenant) == {event_id: "one"}


def test_a_resent_event_is_counted_and_a_changed_one_is_a_conflict(db, tenant):
    accept_events(db, [(1, {"asset_id": "a", "tenant": tenant, "text": "one"}),
                       (2, {"asset_id": "b", "tenant": tenant, "text": "two"})])
    again = accept_events(db, [(1, {"asset_id": "a", "tenant": tenant, "text": "one"}),
                               (2, {"asset_id": "b", "tenant": tenant, "text": "changed"})])
    b = default_event_id(tenant, "b")
    assert (again.new, again.duplicates) == ([], 1)
    assert again.refused == [(2, f"conflict: event_id {b} was accepted earlier with other content; "
                                 "the earlier event is kept")]
    assert stored_texts(db, tenant)[b] == "two"


def test_an_explicit_id_cannot_take_the_id_another_asset_is_going_to_get(db, tenant):
    taken = default_event_id(tenant, "b")
    accepted = accept_events(db, [(1, {"asset_id": "a", "tenant": tenant, "event_id": taken, "text": "one"}),
                                  (2, {"asset_id": "b", "tenant": tenant, "text": "two"})])
    assert accepted.new == [(tenant, taken)]
    assert [(n, reason.split(":")[0]) for n, reason in accepted.refused] == [(1, "reserved_event_id")]
    assert stored_texts(db, tenant) == {taken: "two"}


def test_an_unstorable_object_is_refused_and_the_rest_recorded(db, tenant):
    accepted = accept_events(db, [(1, {"asset_id": "a", "tenant": tenant, "text": "x\x00y"}),
                                  (2, {"asset_id": "b", "tenant": tenant, "text": "fine"})])
    assert accepted.new == [(tenant, default_event_id(tenant, "b"))]
    assert accepted.refused == [(1, "nul_character: NUL in text")]


@pytest.fixture
def ctx(settings):
    return Context(settings=settings, embedder=HashingEmbedder(768))


def test_a_stored_payload_the_contract_refuses_is_a_reject_in_the_worker(db, ctx, tenant):
    # Rows written before the checks existed reach the worker as they are: a reject, not a crash.
    deep = {"asset_id": "deep", "tenant": tenant, "text": "x", "metadata": {}}
    node = deep["metadata"]
    for _ in range(40):
        node["k"] = node = {}
    event_id = default_event_id(tenant, "deep")
    repository.record_events(db, [dict(tenant=tenant, event_id=event_id, asset_id="deep", payload=deep,
                                       status="accepted")])
    decision = process_upload(db, ctx, tenant, event_id)
    assert (decision["action"], decision["reason"]) == ("reject", "too_deep: JSON nested more than 32 levels")
