"""The transactional outbox relay: deliver what decisions owe, at least once, never in parallel.

Rows are claimed with `FOR UPDATE SKIP LOCKED`, so any number of relays can run; a failed
delivery is retried later with exponential backoff. Receivers deduplicate on `message_id`.
"""
from __future__ import annotations

import logging
import random
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Callable

from sqlalchemy.orm import Session

from governance.storage import repository
from governance.storage.tables import OutboxMessage

log = logging.getLogger(__name__)
BACKOFF_BASE_S = 2.0
BACKOFF_CAP_S = 600.0

Sink = Callable[[OutboxMessage], None]  # raises on failure


@dataclass
class RelayResult:
    delivered: int = 0
    failed: int = 0


def backoff_s(attempts: int) -> float:
    """Equal jitter: at least half the exponential step, so a down receiver is never hammered."""
    step = min(BACKOFF_CAP_S, BACKOFF_BASE_S * 2 ** attempts)
    return step / 2 + random.uniform(0, step / 2)


def sink_names(sinks: list[Sink]) -> list[str]:
    """A stable name per sink for the delivery log: its `sink_name` attribute, else its function name."""
    names: list[str] = []
    for sink in sinks:
        name = str(getattr(sink, "sink_name", None) or getattr(sink, "__name__", None) or type(sink).__name__)
        names.append(name if name not in names else f"{name}#{len(names)}")
    return [name[:128] for name in names]


def relay(session: Session, sinks: list[Sink], limit: int = 100) -> RelayResult:
    """Deliver due messages to every sink. Each attempt is written to the delivery log
    (`outbox_deliveries`); a sink that already took a message is not sent it again when another
    sink failed and the message is retried."""
    result = RelayResult()
    now = datetime.now(timezone.utc)
    names = sink_names(sinks)
    messages = repository.claim_outbox(session, limit)
    done = repository.delivered_sinks(session, [(m.tenant, m.message_id) for m in messages]) if messages else set()
    for message in messages:
        try:
            for sink, name in zip(sinks, names):
                if (message.tenant, message.message_id, name) in done:
                    continue
                try:
                    sink(message)
                except Exception as exc:  # noqa: BLE001 - logged, then handled below
                    repository.insert_delivery(session, tenant=message.tenant, message_id=message.message_id,
                                               sink=name, status="failed", error=str(exc)[:500])
                    raise
                repository.insert_delivery(session, tenant=message.tenant, message_id=message.message_id,
                                           sink=name, status="delivered")
        except Exception as exc:  # noqa: BLE001 - any sink failure means "try again later"
            message.attempts += 1
            message.last_error = str(exc)[:500]
            message.available_at = now + timedelta(seconds=backoff_s(message.attempts))
            result.failed += 1
            log.warning("outbox delivery failed", extra={"message_id": message.message_id, "error": str(exc)[:200]})
        else:
            message.attempts += 1
            message.delivered_at = now
            result.delivered += 1
    session.flush()
    return result
