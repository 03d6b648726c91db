"""Thin tasks: JSON-safe arguments in, one service call, commit, then any follow-up messages.

Task names are explicit and stable; they are part of the wire contract with producers.
"""
from __future__ import annotations

import logging
import random

from celery import shared_task
from sqlalchemy.exc import OperationalError

from governance import outbox, repository, services
from governance.db import transaction
from governance.embedders import EmbeddingError
from worker.runtime import context, sessions, settings
from worker.sinks import configured_sinks

log = logging.getLogger(__name__)
RETRY_CAP_S = 60


def _retry_delay(retries: int) -> float:
    """Exponential backoff with full jitter, capped well below the broker's visibility timeout."""
    return random.uniform(0, min(RETRY_CAP_S, 2 ** retries))


@shared_task(name="governance.process_upload", bind=True, acks_late=True, max_retries=None,
             soft_time_limit=300, time_limit=360)
def process_upload(self, tenant: str, event_id: str) -> None:
    with transaction(sessions()) as session:
        if not services.count_delivery(session, context(), tenant, event_id):
            log.error("event dead-lettered after too many deliveries", extra={"tenant": tenant, "event_id": event_id})
            return
    try:
        with transaction(sessions()) as session:
            services.process_upload(session, context(), tenant, event_id)
    except (EmbeddingError, OperationalError) as exc:
        if isinstance(exc, EmbeddingError) and not exc.transient:
            raise
        # A transient failure is not a poison delivery: give the attempt back before retrying.
        with transaction(sessions()) as session:
            repository.uncount_attempt(session, tenant, event_id)
        raise self.retry(exc=exc, countdown=_retry_delay(self.request.retries))
    if configured_sinks(settings()):
        relay_outbox.delay()


@shared_task(name="governance.relay_outbox", acks_late=True)
def relay_outbox() -> dict:
    sinks = configured_sinks(settings())
    if not sinks:
        return {"delivered": 0, "failed": 0}
    with transaction(sessions()) as session:
        result = outbox.relay(session, sinks)
    return {"delivered": result.delivered, "failed": result.failed}


@shared_task(name="governance.reconcile_events", acks_late=True)
def reconcile_events() -> int:
    with transaction(sessions()) as session:
        keys = services.stale_events(session, context())
    for tenant, event_id in keys:  # only after commit
        process_upload.delay(tenant, event_id)
    if keys:
        log.warning("re-enqueued events with no outcome", extra={"count": len(keys)})
    return len(keys)


@shared_task(name="governance.cluster_reports", acks_late=True, soft_time_limit=900, time_limit=960)
def cluster_reports() -> int:
    from governance import reports

    with transaction(sessions()) as session:
        tenants = reports.active_tenants(session, context())
    for tenant in tenants:
        cluster_report.delay(tenant)
    return len(tenants)


@shared_task(name="governance.cluster_report", acks_late=True, soft_time_limit=900, time_limit=960)
def cluster_report(tenant: str) -> str:
    from governance import reports

    with transaction(sessions()) as session:
        paths = reports.build_and_store(session, context(), tenant)
    return str(paths["json"])
