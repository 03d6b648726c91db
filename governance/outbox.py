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

from governance import repository
from governance.models import OutboxMessage

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


def relay(session: Session, sinks: list[Sink], limit: int = 100) -> RelayResult:
    result = RelayResult()
    now = datetime.now(timezone.utc)
    for message in repository.claim_outbox(session, limit):
        try:
            for sink in sinks:
                sink(message)
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
