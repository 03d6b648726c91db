"""Embedding and deciding on separate queues (GOVERNANCE_EMBED_QUEUE), on real worker processes:
one worker that only embeds and one that only decides, as two machines would run them (their own
`--hostname`s), with the embedding worker's children killed between the two steps.

The promise is the one of README "Guarantees" (tests/e2e/test_faults.py `assert_invariant`), plus:
each content is sent to the embedder once over both steps, and the deciding worker embeds nothing
that the embedding step stored.
"""
from __future__ import annotations

import re
import uuid

import pytest
from sqlalchemy import func, select

from governance.storage.embedding_tables import EmbeddingUsage
from tests.e2e.conftest import TASK_LINE, Worker, cli
from tests.e2e.test_faults import (assert_invariant, db_session, publish, sigkills, text_events, wait_for_outcomes,
                                   wait_until)

pytestmark = pytest.mark.e2e

EMBED_QUEUE = "governance.embed"


@pytest.fixture(scope="module")
def split_workers(e2e_env, tmp_path_factory):
    """An embedding-only worker whose children die after the embedding step commits (crash-stage-*,
    once) and before it commits (poison-*, every time), and a deciding-only worker."""
    folder = tmp_path_factory.mktemp("split")
    env = dict(e2e_env, GOVERNANCE_EMBED_QUEUE=EMBED_QUEUE, GOVERNANCE_MAX_ATTEMPTS="3",
               GOVERNANCE_TEST_CRASH="after_embed_stage:crash-stage:1,after_embed:poison:always",
               GOVERNANCE_TEST_CRASH_DIR=str(folder))
    embedding = Worker(env, folder / "embed.log", extra=("--no-beat", "--queues", "embed", "--hostname", "embed@node-a"))
    try:
        deciding = Worker(env, folder / "decide.log",
                          extra=("--no-beat", "--queues", "uploads,maintenance", "--hostname", "decide@node-b"))
    except BaseException:
        embedding.stop()
        raise
    yield env, embedding, deciding
    deciding.stop()
    embedding.stop()


def task_names(worker: Worker) -> set[str]:
    return {name for name, _, what in TASK_LINE.findall(worker.log()) if what == "received"}


def usage(database_url: str, tenant: str) -> tuple[int, int]:
    """(items sent to the embedder, items served by the content-hash cache) of the tenant."""
    with db_session(database_url) as s:
        items, cached = s.execute(select(func.coalesce(func.sum(EmbeddingUsage.items), 0),
                                         func.coalesce(func.sum(EmbeddingUsage.cached_items), 0))
                                  .where(EmbeddingUsage.tenant == tenant)).one()
    return int(items), int(cached)


def test_two_queues_each_event_decided_once_and_embedded_once(split_workers, database_url, tmp_path):
    env, embedding, deciding = split_workers
    tenant = f"split-{uuid.uuid4().hex[:8]}"
    events = text_events(tenant, "ok", 6)
    ids = publish(env, tmp_path / "e.jsonl", events)
    wait_for_outcomes(database_url, tenant, ids, workers=(embedding, deciding))
    assert_invariant(database_url, tenant, ids)
    assert task_names(embedding) == {"governance.embed_uploads"}
    assert "governance.embed_uploads" not in task_names(deciding)
    assert "governance.process_uploads" in task_names(deciding)
    items, cached = usage(database_url, tenant)
    assert items == len(ids)  # embedded once, by the embedding step
    assert cached >= len(ids)  # the deciding step found every vector stored


def test_sigkill_between_the_two_steps_redelivery_goes_on_to_one_decision(split_workers, database_url, tmp_path):
    env, embedding, deciding = split_workers
    tenant = f"split-kill-{uuid.uuid4().hex[:8]}"
    kills = sigkills(embedding)
    events = text_events(tenant, "crash-stage", 1) + text_events(tenant, "ok", 3)
    ids = publish(env, tmp_path / "e.jsonl", events)
    wait_for_outcomes(database_url, tenant, ids, workers=(embedding, deciding))
    wait_until(lambda: sigkills(embedding) > kills, "the embedding child was never killed")
    assert_invariant(database_url, tenant, ids)
    items, _ = usage(database_url, tenant)
    assert items == len(ids)  # the step that committed before the kill is not repeated


def test_an_event_that_kills_the_embedding_step_every_time_ends_as_one_dead_letter(split_workers, database_url, tmp_path):
    env, embedding, deciding = split_workers
    tenant = f"split-poison-{uuid.uuid4().hex[:8]}"
    poison = text_events(tenant, "poison", 1)
    ids = publish(env, tmp_path / "e.jsonl", poison + text_events(tenant, "ok", 3))
    wait_for_outcomes(database_url, tenant, ids, timeout_s=180, workers=(embedding, deciding))
    assert_invariant(database_url, tenant, ids, expect_dead={poison[0]["event_id"]})


def test_worker_refuses_an_unknown_queue_role(split_workers):
    env, _, _ = split_workers
    done = cli(env, "worker", "--queues", "uploads,gpu", check=False)
    assert done.returncode == 2
    assert re.search(r"--queues takes roles among uploads, maintenance, embed", done.stderr), done.stderr

