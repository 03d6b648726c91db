"""governance.process_uploads on real processes: batches that overlap, carry junk, or carry poison."""
from __future__ import annotations

import time
import uuid

import pytest
from sqlalchemy import select

from governance.storage.tables import DeadLetter
from tests.e2e.test_faults import (assert_invariant, db_session, event_rows, publish, sigkills, start_worker,
                                   text_events, wait_for_outcomes)

pytestmark = pytest.mark.e2e


def send(broker_url: str, name: str, *args) -> None:
    """Enqueue a message straight on the broker, as another producer (or a duplicating one) would."""
    from celery import Celery

    client = Celery("batch-tests", broker=broker_url)
    client.conf.update(task_serializer="json", accept_content=["json"], broker_connection_retry_on_startup=True)
    try:
        client.send_task(name, args=list(args), queue="governance.uploads")
    finally:
        client.close()


def test_overlapping_batches_and_junk_entries_give_one_decision_per_event(
        e2e_env, worker, database_url, broker_url, tmp_path):
    tenant = f"overlap-{uuid.uuid4().hex[:8]}"
    w = worker()
    ids = publish(e2e_env, tmp_path / "e.jsonl", text_events(tenant, "b", 6))
    pairs = [[tenant, e] for e in ids]
    # The same events again in two more batches (one mixed with junk and an unknown event), and one
    # of them once more as a single-event delivery: all may run while the first batch does.
    send(broker_url, "governance.process_uploads", pairs[:4] + [["only-one-field"], [tenant, "not-in-the-inbox"]])
    send(broker_url, "governance.process_uploads", pairs[2:])
    send(broker_url, "governance.process_upload", tenant, ids[3])
    wait_for_outcomes(database_url, tenant, ids, workers=(w,))
    deadline = time.monotonic() + 30
    while "malformed batch entry dropped" not in w.log() or event_rows(database_url, tenant)[ids[3]].attempts < 4:
        assert time.monotonic() < deadline, "not every duplicate delivery ran"
        time.sleep(0.3)
    w.wait_until_finished()  # the last duplicate too
    assert_invariant(database_url, tenant, ids)
    assert w.alive()


def test_a_poison_event_in_a_batch_is_dead_lettered_alone_and_its_neighbours_are_decided(
        e2e_env, database_url, tmp_path):
    env = dict(e2e_env, GOVERNANCE_TEST_CRASH="after_embed:poison:always", GOVERNANCE_TEST_CRASH_DIR=str(tmp_path),
               GOVERNANCE_MAX_ATTEMPTS="3")
    tenant = f"batch-poison-{uuid.uuid4().hex[:8]}"
    poison = {"event_id": f"poison-{uuid.uuid4().hex[:8]}", "asset_id": "p1", "tenant": tenant,
              "text": "This upload kills every process that embeds it"}
    neighbours = text_events(tenant, "ok", 6)
    w = start_worker(env, tmp_path / "worker.log", beat=False)
    try:
        ids = publish(env, tmp_path / "e.jsonl", [*neighbours[:3], poison, *neighbours[3:]])  # one batch
        wait_for_outcomes(database_url, tenant, ids, workers=(w,), timeout_s=120)
        assert_invariant(database_url, tenant, ids, expect_dead={poison["event_id"]})
        with db_session(database_url) as s:
            letter = s.scalars(select(DeadLetter).where(DeadLetter.tenant == tenant)).one()
        assert letter.event_id == poison["event_id"] and letter.attempts == 3
        rows = event_rows(database_url, tenant)
        # Each neighbour: the batch's delivery (killed), then its own task's, which decided it.
        assert all(rows[e["event_id"]].attempts == 2 for e in neighbours)
        assert sigkills(w) == 3 and w.alive()
    finally:
        w.stop()
