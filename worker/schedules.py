"""Beat entries. Each job is idempotent, so an extra beat (one per `governance worker`) is harmless."""
from __future__ import annotations

from governance.config import Settings


def beat_schedule(settings: Settings) -> dict:
    return {
        "relay-outbox": {"task": "governance.relay_outbox", "schedule": 5.0},
        "reconcile-events": {"task": "governance.reconcile_events", "schedule": 60.0},
        "cluster-reports": {"task": "governance.cluster_reports", "schedule": float(settings.cluster_interval_s)},
        "anomaly-alerts": {"task": "governance.anomaly_alerts", "schedule": 60.0},
    }
