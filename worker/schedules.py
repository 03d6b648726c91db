"""Beat entries. Each job is idempotent, so an extra beat (one per `governance worker`) is harmless."""
from __future__ import annotations

from governance.platform.config import Settings


def beat_schedule(settings: Settings) -> dict:
    # At least twice per reconcile window, so a short GOVERNANCE_RECONCILE_AFTER_S is honoured.
    reconcile_s = min(settings.reconcile_interval_s, max(1.0, settings.reconcile_after_s / 2))
    return {
        "relay-outbox": {"task": "governance.relay_outbox", "schedule": 5.0},
        "reconcile-events": {"task": "governance.reconcile_events", "schedule": reconcile_s},
        "cluster-reports": {"task": "governance.cluster_reports", "schedule": float(settings.cluster_interval_s)},
        "anomaly-alerts": {"task": "governance.anomaly_alerts", "schedule": 60.0},
    }
