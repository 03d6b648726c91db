"""Thin tasks: JSON-safe arguments in, one service call, commit, then any follow-up messages.

Task names are explicit and stable; they are part of the wire contract with producers.
Each transaction starts by entering its row-level-security scope: the task's tenant, or all
tenants for the jobs that are cross-tenant by design (migration 0002).
"""
from __future__ import annotations

import logging
import os
import random
import time

from celery import shared_task
from celery.exceptions import SoftTimeLimitExceeded
from sqlalchemy.exc import DBAPIError, OperationalError

from governance.delivery import outbox_relay
from governance.embedding.protocol import EmbeddingError
from governance.ingest import inbox
from governance.moderation import batch_pipeline
from governance.platform import broker_state, metrics
from governance.platform.faults import fault_injection_point
from governance.storage import repository
from governance.storage.db import transaction
from worker.runtime import broker_redis, context, sessions, settings
from worker.sinks import configured_sinks

log = logging.getLogger(__name__)
RETRY_CAP_S = 60
# The embedder's own timeouts and retries must end well inside this (see README, Guarantees).
SOFT_TIME_LIMIT_S = int(os.environ.get("GOVERNANCE_TASK_SOFT_TIME_LIMIT_S") or 300)


def _retry_delay(retries: int) -> float:
    """Exponential backoff with full jitter, capped well below the broker's visibility timeout."""
    return random.uniform(0, min(RETRY_CAP_S, 2 ** retries))


def _database_unavailable(exc: BaseException) -> bool:
    """Connection-level database failures (server down, restarting, connection cut): retry later."""
    return isinstance(exc, OperationalError) or (isinstance(exc, DBAPIError) and exc.connection_invalidated)


@shared_task(name="governance.process_upload", bind=True, acks_late=True, max_retries=None,
             soft_time_limit=SOFT_TIME_LIMIT_S, time_limit=SOFT_TIME_LIMIT_S + 60)
def process_upload(self, tenant: str, event_id: str) -> None:
    extra = {"tenant": tenant, "event_id": event_id}
    started = time.monotonic()
    try:
        with transaction(sessions()) as session:
            repository.enter_tenant(session, tenant)
            proceed = inbox.count_delivery(session, settings(), tenant, event_id)
            status = None if proceed else repository.event_status(session, tenant, event_id)
    except DBAPIError as exc:
        if not _database_unavailable(exc):
            raise
        # Nothing was counted: the database never saw this delivery. Try again later.
        metrics.task_retry("database")
        log.warning("database unavailable; retrying", extra=extra)
        raise self.retry(exc=exc, countdown=_retry_delay(self.request.retries))
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
        with transaction(sessions()) as session:
            repository.enter_tenant(session, tenant)
            decision = batch_pipeline.process_upload(session, context(), tenant, event_id)
            status = repository.event_status(session, tenant, event_id) if decision is None else "decided"
    except SoftTimeLimitExceeded as exc:
        # The attempt stays counted: an input that always runs out of time ends as a dead letter.
        metrics.task_retry("soft_time_limit")
        log.warning("soft time limit exceeded; retrying", extra=extra)
        raise self.retry(exc=exc, countdown=_retry_delay(self.request.retries))
    except (EmbeddingError, DBAPIError) as exc:
        if isinstance(exc, EmbeddingError) and not exc.transient:
            raise
        if isinstance(exc, DBAPIError) and not _database_unavailable(exc):
            raise
        # A transient failure is not a poison delivery: give the attempt back before retrying.
        metrics.task_retry("embedder" if isinstance(exc, EmbeddingError) else "database")
        _give_back_attempts(tenant, [event_id])
        raise self.retry(exc=exc, countdown=_retry_delay(self.request.retries))
    fault_injection_point(settings(), "after_commit", tenant, event_id)
    if decision is not None:
        metrics.event_outcome("decided")
        metrics.decision(decision["action"], time.monotonic() - started)
    elif status == "dead":
        metrics.event_outcome("dead_lettered")
        metrics.dead_letter("invalid_embedding")
    else:
        metrics.event_outcome("duplicate")
    if decision is not None and configured_sinks(settings()):
        try:
            relay_outbox.delay()
        except Exception:  # noqa: BLE001 - the decision is committed; beat relays every few seconds
            log.warning("could not trigger the outbox relay; beat will run it", extra=extra)


@shared_task(name="governance.process_uploads", bind=True, acks_late=True, max_retries=None,
             soft_time_limit=SOFT_TIME_LIMIT_S, time_limit=SOFT_TIME_LIMIT_S + 60)
def process_uploads(self, events: list) -> None:
    """Decide a batch of [tenant, event_id] pairs: per tenant, one transaction for all its events.

    A batch is for first deliveries only. An event delivered before without an outcome (the batch
    died, or ran out of time) goes to its own governance.process_upload task, which counts its own
    attempts: so a poison event is dead-lettered alone and its neighbours are decided.
    """
    by_tenant: dict[str, list[str]] = {}
    for pair in events if isinstance(events, list) else ():
        if isinstance(pair, list) and len(pair) == 2 and all(isinstance(x, str) for x in pair):
            by_tenant.setdefault(pair[0], []).append(pair[1])
        else:
            log.error("malformed batch entry dropped", extra={"entry": repr(pair)[:200]})
    groups = list(by_tenant.items())
    for n, (tenant, event_ids) in enumerate(groups):
        try:
            _decide_batch(tenant, event_ids)
        except _RetryBatch as retry:
            # This tenant's attempts were given back (or stay counted: see _decide_batch); later
            # tenants have not started. Retry exactly those.
            rest = [[t, e] for t, ids in groups[n:] for e in ids]
            raise self.retry(args=(rest,), exc=retry.cause, countdown=_retry_delay(self.request.retries))


class _RetryBatch(Exception):
    def __init__(self, cause: BaseException):
        super().__init__(str(cause))
        self.cause = cause


def _decide_batch(tenant: str, event_ids: list[str]) -> None:
    started = time.monotonic()
    extra = {"tenant": tenant, "events": len(event_ids)}
    try:
        with transaction(sessions()) as session:
            repository.enter_tenant(session, tenant)
            counted = repository.count_batch_delivery(session, tenant, event_ids)
    except DBAPIError as exc:
        if not _database_unavailable(exc):
            raise
        metrics.task_retry("database")
        log.warning("database unavailable; retrying the batch", extra=extra)
        raise _RetryBatch(exc) from exc
    fresh = [e for e, status, _, was_counted in counted if was_counted and status == "accepted"]
    redelivered = [e for e, status, _, was_counted in counted if not was_counted]
    for _ in range(len(counted) - len(fresh) - len(redelivered)):
        metrics.event_outcome("duplicate")
    _hand_to_single_tasks(tenant, redelivered)
    if not fresh:
        return
    try:
        with transaction(sessions()) as session:
            repository.enter_tenant(session, tenant)
            result = batch_pipeline.process_uploads(session, context(), tenant, fresh)
    except SoftTimeLimitExceeded as exc:
        # The attempts stay counted, so the redelivered batch hands every event to its own task.
        metrics.task_retry("soft_time_limit")
        log.warning("soft time limit exceeded; retrying the batch", extra=extra)
        raise _RetryBatch(exc) from exc
    except (EmbeddingError, DBAPIError) as exc:
        if isinstance(exc, EmbeddingError) and not exc.transient or (
                isinstance(exc, DBAPIError) and not _database_unavailable(exc)):
            log.exception("batch failed; handing its events to single-event tasks", extra=extra)
            _hand_to_single_tasks(tenant, fresh)
            return
        metrics.task_retry("embedder" if isinstance(exc, EmbeddingError) else "database")
        _give_back_attempts(tenant, fresh)
        raise _RetryBatch(exc) from exc
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
    if result.decisions and configured_sinks(settings()):
        try:
            relay_outbox.delay()
        except Exception:  # noqa: BLE001 - the decisions are committed; beat relays every few seconds
            log.warning("could not trigger the outbox relay; beat will run it", extra=extra)


def _hand_to_single_tasks(tenant: str, event_ids: list[str]) -> None:
    for event_id in event_ids:
        process_upload.delay(tenant, event_id)
    if event_ids:
        log.warning("batch events handed to single-event tasks", extra={"tenant": tenant, "events": len(event_ids)})


def _give_back_attempts(tenant: str, event_ids: list[str]) -> None:
    try:
        with transaction(sessions()) as session:
            repository.enter_tenant(session, tenant)
            repository.uncount_attempts(session, tenant, event_ids)
    except DBAPIError as exc:
        if not _database_unavailable(exc):
            raise
        # The database is down too: the attempts stay counted, which is better than losing the
        # retry (a redelivered batch hands such events to single-event tasks).
        log.warning("could not give the attempts back; database unavailable",
                    extra={"tenant": tenant, "events": len(event_ids)})


def enqueue_batches(settings, keys: list[tuple[str, str]]) -> None:
    """Send (tenant, event_id) pairs as governance.process_uploads messages of one tenant each."""
    by_tenant: dict[str, list[str]] = {}
    for tenant, event_id in keys:
        by_tenant.setdefault(tenant, []).append(event_id)
    size = settings.upload_batch_size
    for tenant, ids in by_tenant.items():
        for start in range(0, len(ids), size):
            process_uploads.delay([[tenant, e] for e in ids[start:start + size]])


@shared_task(name="governance.relay_outbox", acks_late=True)
def relay_outbox() -> dict:
    sinks = configured_sinks(settings())
    if not sinks:
        return {"delivered": 0, "failed": 0}
    with transaction(sessions()) as session:
        repository.enter_all_tenants(session)  # the relay is cross-tenant by design
        result = outbox_relay.relay(session, sinks)
    metrics.outbox_relayed(result.delivered, result.failed)
    return {"delivered": result.delivered, "failed": result.failed}


@shared_task(name="governance.reconcile_events", acks_late=True)
def reconcile_events() -> int:
    client = broker_redis()
    lost = broker_state.claim_lost_state(client)
    try:
        with transaction(sessions()) as session:
            repository.enter_all_tenants(session)  # the reconciler is cross-tenant by design
            keys = inbox.stale_events(session, settings(), broker_lost_state=lost)
        enqueue_batches(settings(), keys)  # only after commit
    except Exception:
        if lost:  # the messages are still gone: let the next pass see the loss again
            broker_state.release_claim(client)
        raise
    broker_state.record_pass(client)
    if lost:
        log.warning("the broker lost its state (its marker is gone): every event with no outcome is re-enqueued")
    if keys:
        log.warning("re-enqueued events with no outcome", extra={"count": len(keys), "broker_lost_state": lost})
    return len(keys)


@shared_task(name="governance.cluster_reports", acks_late=True, soft_time_limit=900, time_limit=960)
def cluster_reports() -> int:
    from governance.clustering import stored_reports

    with transaction(sessions()) as session:
        repository.enter_all_tenants(session)  # only lists the tenants to fan out to
        tenants = stored_reports.active_tenants(session, context())
    for tenant in tenants:
        cluster_report.delay(tenant)
    return len(tenants)


@shared_task(name="governance.cluster_report", acks_late=True, soft_time_limit=900, time_limit=960)
def cluster_report(tenant: str) -> str:
    from governance.clustering import stored_reports

    with transaction(sessions()) as session:
        repository.enter_tenant(session, tenant)
        paths = stored_reports.build_and_store(session, context(), tenant)
    return str(paths["json"])


@shared_task(name="governance.anomaly_alerts", acks_late=True)
def anomaly_alerts() -> int:
    """Grouped, rate-limited anomaly alerts into the outbox (governance/delivery/alerts.py), then relay."""
    from governance.delivery import alerts

    with transaction(sessions()) as session:
        repository.enter_all_tenants(session)  # alerts are computed for every tenant
        sent = alerts.run_alerts(session, alerts.AlertConfig.from_settings(settings()))
    if sent and configured_sinks(settings()):
        relay_outbox.delay()
    return len(sent)
