"""The upload tasks: JSON-safe ids in, one service call, commit, then any follow-up messages.

Task names are explicit and stable; they are part of the wire contract with producers.
Each transaction starts by entering its row-level-security scope: the task's tenant (migration 0002).
"""
from __future__ import annotations

import logging
import time

from celery import current_app, shared_task

from governance.ingest import inbox
from governance.moderation import batch_pipeline
from governance.platform import metrics
from governance.platform.faults import fault_injection_point
from governance.platform.config import Settings
from governance.storage import repository
from governance.storage.db import transaction
from worker.queues import VISIBILITY_TIMEOUT_S
from worker.runtime import broker_redis, context, sessions, settings
from worker.sinks import configured_sinks
from worker.tasks.retry import Transient, retry_delay, transient_failures

log = logging.getLogger(__name__)
# The embedder's own timeouts and retries must end well inside this (see README, Guarantees).
SOFT_TIME_LIMIT_S = Settings.from_env().task_soft_time_limit_s


@shared_task(name="governance.process_upload", bind=True, acks_late=True, max_retries=None,
             soft_time_limit=SOFT_TIME_LIMIT_S, time_limit=SOFT_TIME_LIMIT_S + 60)
def process_upload(self, tenant: str, event_id: str) -> None:
    extra = {"tenant": tenant, "event_id": event_id}
    started = time.monotonic()
    try:
        with transient_failures(tenant, [], extra):
            with transaction(sessions()) as session:
                repository.enter_tenant(session, tenant)
                proceed = inbox.count_delivery(session, settings(), tenant, event_id)
                status = None if proceed else repository.event_status(session, tenant, event_id)
    except Transient as failure:
        raise self.retry(exc=failure.cause, countdown=retry_delay(self.request.retries))
    if not proceed:
        # Past the attempt limit: dead-lettered now, unless an earlier delivery already decided it.
        if status == "dead":
            metrics.event_outcome("dead_lettered")
            metrics.dead_letter("max_attempts")
            log.error("event dead-lettered after too many deliveries", extra=extra)
        else:
            metrics.event_outcome("duplicate")
        return
    try:
        with transient_failures(tenant, [event_id], extra):
            with transaction(sessions()) as session:
                repository.enter_tenant(session, tenant)
                decision = batch_pipeline.process_upload(session, context(), tenant, event_id)
                status = repository.event_status(session, tenant, event_id) if decision is None else "decided"
    except Transient as failure:
        raise self.retry(exc=failure.cause, countdown=retry_delay(self.request.retries))
    fault_injection_point(settings(), "after_commit", tenant, event_id)
    if decision is not None:
        metrics.event_outcome("decided")
        metrics.decision(decision["action"], time.monotonic() - started)
    elif status == "dead":
        metrics.event_outcome("dead_lettered")
        metrics.dead_letter("invalid_embedding")
    else:
        metrics.event_outcome("duplicate")
    if decision is not None:
        _relay_soon(extra)


@shared_task(name="governance.process_uploads", bind=True, acks_late=True, max_retries=None,
             soft_time_limit=SOFT_TIME_LIMIT_S, time_limit=SOFT_TIME_LIMIT_S + 60)
def process_uploads(self, events: list) -> None:
    """Decide a batch of [tenant, event_id] pairs: per tenant, one transaction for all its events.

    A batch is for first deliveries only. An event delivered before without an outcome (the batch
    died, or ran out of time) goes to its own governance.process_upload task, which counts its own
    attempts: so a poison event is dead-lettered alone and its neighbours are decided.
    """
    groups = _by_tenant(events)
    for n, (tenant, event_ids) in enumerate(groups):
        try:
            _decide_batch(tenant, event_ids)
        except Transient as failure:
            # This tenant's attempts were given back (or stay counted: see transient_failures); later
            # tenants have not started. Retry exactly those.
            rest = [[t, e] for t, ids in groups[n:] for e in ids]
            raise self.retry(args=(rest,), exc=failure.cause, countdown=retry_delay(self.request.retries))


def _by_tenant(events) -> list[tuple[str, list[str]]]:
    by_tenant: dict[str, list[str]] = {}
    for pair in events if isinstance(events, list) else ():
        if isinstance(pair, list) and len(pair) == 2 and all(isinstance(x, str) for x in pair):
            by_tenant.setdefault(pair[0], []).append(pair[1])
        else:
            log.error("malformed batch entry dropped", extra={"entry": repr(pair)[:200]})
    return list(by_tenant.items())


@shared_task(name="governance.embed_uploads", bind=True, acks_late=True, max_retries=None,
             soft_time_limit=SOFT_TIME_LIMIT_S, time_limit=SOFT_TIME_LIMIT_S + 60)
def embed_uploads(self, events: list) -> None:
    """The embedding stage (GOVERNANCE_EMBED_QUEUE): store the batch's assets and vectors, commit,
    then send the same batch on as governance.process_uploads, which decides it from the stored
    vectors. Deciding stays the other task's alone, so exactly-once is its as before.

    Nothing here counts attempts: a message delivered a second time (its process died on it) is
    sent on without embedding, and the decision task's own attempt counting ends a poison event as a
    dead letter. An unexpected error is sent on the same way; a transient one is retried here."""
    groups = _by_tenant(events)
    if _first_pass(self.request):
        for n, (tenant, event_ids) in enumerate(groups):
            extra = {"tenant": tenant, "events": len(event_ids)}
            try:
                with transient_failures(tenant, [], extra, " the embedding stage"):
                    with transaction(sessions()) as session:
                        repository.enter_tenant(session, tenant)
                        batch_pipeline.embed_uploads(session, context(), tenant, event_ids)
            except Transient as failure:
                rest = [[t, e] for t, ids in groups[n:] for e in ids]
                done = [[t, e] for t, ids in groups[:n] for e in ids]
                if done:
                    process_uploads.delay(done)
                raise self.retry(args=(rest,), exc=failure.cause, countdown=retry_delay(self.request.retries))
            except Exception:  # noqa: BLE001 - the decision task embeds what this stage could not
                log.exception("embedding stage failed; the decision task embeds the batch", extra=extra)
            for event_id in event_ids:
                fault_injection_point(settings(), "after_embed_stage", tenant, event_id)
    process_uploads.delay([[t, e] for t, ids in groups for e in ids])  # only after commit


def _first_pass(request) -> bool:
    """True the first time this message (and retry) is worked on: a marker in the broker's Redis,
    set before the work, outlives a process killed in the middle of it."""
    key = f"governance:embed-stage:{request.id}:{request.retries}"
    try:
        return bool(broker_redis().set(key, b"1", nx=True, ex=2 * VISIBILITY_TIMEOUT_S))
    except Exception:  # noqa: BLE001 - no marker: embed anyway; the decision task still counts attempts
        log.warning("could not set the embedding stage's marker; embedding", extra={"task_id": request.id})
        return True


def _decide_batch(tenant: str, event_ids: list[str]) -> None:
    started = time.monotonic()
    extra = {"tenant": tenant, "events": len(event_ids)}
    with transient_failures(tenant, [], extra, " the batch"):
        with transaction(sessions()) as session:
            repository.enter_tenant(session, tenant)
            counted = repository.count_batch_delivery(session, tenant, event_ids)
    fresh = [e for e, status, _, was_counted in counted if was_counted and status == "accepted"]
    redelivered = [e for e, status, _, was_counted in counted if not was_counted]
    for _ in range(len(counted) - len(fresh) - len(redelivered)):
        metrics.event_outcome("duplicate")
    _hand_to_single_tasks(tenant, redelivered)
    if not fresh:
        return
    try:
        with transient_failures(tenant, fresh, extra, " the batch"):
            with transaction(sessions()) as session:
                repository.enter_tenant(session, tenant)
                result = batch_pipeline.process_uploads(session, context(), tenant, fresh)
    except Transient:
        raise
    except Exception:  # noqa: BLE001 - one event's unexpected failure must not stop its neighbours
        log.exception("batch failed; handing its events to single-event tasks", extra=extra)
        _hand_to_single_tasks(tenant, fresh)
        return
    for decision in result.decisions:
        fault_injection_point(settings(), "after_commit", tenant, decision["event_id"])
    elapsed = time.monotonic() - started
    for decision in result.decisions:
        metrics.event_outcome("decided")
        metrics.decision(decision["action"], elapsed)
    for _ in result.dead_lettered:
        metrics.event_outcome("dead_lettered")
        metrics.dead_letter("invalid_embedding")
    for _ in result.skipped:
        metrics.event_outcome("duplicate")
    if result.decisions:
        _relay_soon(extra)


def _relay_soon(extra: dict) -> None:
    """Trigger the outbox relay now rather than at the beat's next run, when there is a sink.

    Sent by name: the relay task lives in worker/tasks/maintenance.py, which sends upload batches."""
    if not configured_sinks(settings()):
        return
    try:
        current_app.send_task("governance.relay_outbox")
    except Exception:  # noqa: BLE001 - the decisions are committed; beat relays every few seconds
        log.warning("could not trigger the outbox relay; beat will run it", extra=extra)


def _hand_to_single_tasks(tenant: str, event_ids: list[str]) -> None:
    for event_id in event_ids:
        process_upload.delay(tenant, event_id)
    if event_ids:
        log.warning("batch events handed to single-event tasks", extra={"tenant": tenant, "events": len(event_ids)})


@shared_task(name="governance.submit_events", bind=True, acks_late=True, max_retries=None)
def submit_events(self, events: list) -> dict:
    """Producers on the broker: accept a JSON list of upload events (each naming its tenant) into
    the inbox exactly as `governance publish` does, then enqueue the new ones after commit.

    Idempotent, so a redelivered message changes nothing: an identical event is only counted
    as a duplicate. The refused ones are logged with their index and reason."""
    items = list(enumerate(events)) if isinstance(events, list) else []
    if not isinstance(events, list):
        log.error("governance.submit_events takes a list of events", extra={"got": type(events).__name__})
    try:
        with transient_failures("*", [], {"events": len(items)}, " the submission"):
            with transaction(sessions()) as session:
                repository.enter_all_tenants(session)  # cross-tenant by design, as publish: each event names its tenant
                accepted = inbox.accept_events(session, items)
    except Transient as failure:
        raise self.retry(exc=failure.cause, countdown=retry_delay(self.request.retries))
    enqueue_batches(settings(), accepted.new)
    for index, reason in accepted.refused:
        log.warning("submitted event refused", extra={"index": index, "reason": reason[:500]})
    return {"accepted": len(accepted.new), "duplicates": accepted.duplicates,
            "refused": [[index, reason] for index, reason in accepted.refused]}


def enqueue_batches(settings, keys: list[tuple[str, str]]) -> None:
    """Send (tenant, event_id) pairs as governance.process_uploads messages of one tenant each (or
    governance.embed_uploads, with GOVERNANCE_EMBED_QUEUE set)."""
    by_tenant: dict[str, list[str]] = {}
    for tenant, event_id in keys:
        by_tenant.setdefault(tenant, []).append(event_id)
    size = settings.upload_batch_size
    # With an embed queue, a batch is embedded there first and decided after (embed_uploads above).
    task = embed_uploads if settings.embed_queue else process_uploads
    for tenant, ids in by_tenant.items():
        for start in range(0, len(ids), size):
            task.delay([[tenant, e] for e in ids[start:start + size]])
