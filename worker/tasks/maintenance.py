"""The maintenance tasks: relay the outbox, reconcile events with no outcome, cluster reports, anomaly alerts.

Task names are explicit and stable; they are part of the wire contract with the beat (worker/schedules.py).
Each transaction enters its row-level-security scope: the task's tenant, or all tenants for the jobs
that are cross-tenant by design (migration 0002).
"""
from __future__ import annotations

import logging

from celery import shared_task

from governance.delivery import outbox_relay, subscription_delivery
from governance.ingest import inbox
from governance.platform import broker_state, metrics
from governance.storage import repository
from governance.storage.db import transaction
from worker.runtime import broker_redis, context, sessions, settings
from worker.sinks import configured_sinks
from worker.tasks.uploads import enqueue_batches

log = logging.getLogger(__name__)


@shared_task(name="governance.relay_outbox", acks_late=True)
def relay_outbox() -> dict:
    """The operator's sinks, then the tenants' webhook subscriptions: two units of work, so a failing
    sink never rolls back what the subscriptions were sent (nor the other way round)."""
    sinks = configured_sinks(settings())
    result = outbox_relay.RelayResult()
    if sinks:
        with transaction(sessions()) as session:
            repository.enter_all_tenants(session)  # the relay is cross-tenant by design
            result = outbox_relay.relay(session, sinks)
        metrics.outbox_relayed(result.delivered, result.failed)
    with transaction(sessions()) as session:
        repository.enter_all_tenants(session)  # as the relay: every tenant's subscriptions
        webhooks = subscription_delivery.deliver_due(session, settings())
    metrics.webhooks_delivered(webhooks.delivered, webhooks.failed)
    return {"delivered": result.delivered, "failed": result.failed,
            "webhooks_delivered": webhooks.delivered, "webhooks_failed": webhooks.failed}


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
