"""The events inbox use cases: accepting events, counting deliveries, dead letters, stale events.

Each takes a Session and flushes; the worker or CLI that owns the session commits.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Iterable

from sqlalchemy.orm import Session

from governance.ingest.events import InvalidEvent, UploadEvent, identify
from governance.platform.config import Settings
from governance.storage import repository


@dataclass
class Accepted:
    new: list[tuple[str, str]]
    duplicates: int  # identical to an event accepted before this call: nothing to do, nothing lost
    refused: list[tuple[int, str]]  # (line, reason) of every other line that was not recorded
    duplicate_keys: list[tuple[str, str]] = field(default_factory=list)  # the `duplicates`, by (tenant, event_id)
    named: dict[int, tuple[str, str, str | None]] = field(default_factory=dict)  # line -> (tenant, event_id, asset_id)


def accept_events(session: Session, raw_events: Iterable[tuple[int, Any]]) -> Accepted:
    """Record every nameable event in the inbox; refuse only what cannot even be named or stored.

    The first line with an id wins, within one call as across calls; a later line with the same
    id is refused as a duplicate (with a conflict when its content differs), except an identical
    re-send of an event accepted earlier, which is only counted.
    """
    first: dict[tuple[str, str], tuple[int, dict]] = {}
    refused, named = [], {}
    for line_no, raw in raw_events:
        try:
            tenant, event_id, asset_id = named[line_no] = identify(raw)
        except InvalidEvent as exc:
            refused.append((line_no, str(exc)))
            continue
        earlier = first.setdefault((tenant, event_id), (line_no, dict(
            tenant=tenant, event_id=event_id, asset_id=asset_id, payload=raw, status="accepted")))
        if earlier[0] != line_no:
            conflict = " with a conflict: its content differs" if earlier[1]["payload"] != raw else ""
            refused.append((line_no, f"duplicate of line {earlier[0]} (event_id {event_id}){conflict}; "
                                     "the first is kept"))
    new = repository.record_events(session, [row for _, row in first.values()])
    taken = set(first) - set(new)
    stored = repository.event_payloads(session, taken) if taken else {}
    duplicate_keys = []
    for key in taken:
        line_no, row = first[key]
        if stored.get(key) == row["payload"]:
            duplicate_keys.append(key)
        else:
            refused.append((line_no, f"conflict: event_id {key[1]} was accepted earlier with other content; "
                                     "the earlier event is kept"))
    return Accepted(new=new, duplicates=len(duplicate_keys), refused=sorted(refused), duplicate_keys=duplicate_keys,
                    named=named)


FORBIDDEN_TENANT = "forbidden_tenant"


@dataclass
class TenantAcceptance:
    """What a producer acting for one tenant (an API key) is told, item by item."""
    accepted: list[tuple[int, str, str | None, str]]  # (index, event_id, asset_id, "accepted" | "duplicate")
    refused: list[tuple[int, str]]  # (index, reason)
    new: list[tuple[str, str]]  # (tenant, event_id) to enqueue after commit


def accept_for_tenant(session: Session, tenant: str, items: Iterable[tuple[int, Any]]) -> TenantAcceptance:
    """`accept_events` for a producer that acts for one tenant: an event's tenant defaults to it
    and an event naming another is refused, and an event the pipeline would only reject (unknown
    fields, no content, ...) is refused now, while its producer is still listening.

    `items` are (index, decoded JSON or the InvalidEvent that decoding raised)."""
    screened, refused = [], []
    for index, raw in items:
        if isinstance(raw, Exception):
            refused.append((index, str(raw)))
            continue
        if isinstance(raw, dict):
            named = raw.get("tenant", tenant)
            if named != tenant:
                refused.append((index, f"{FORBIDDEN_TENANT}: the key acts for tenant {tenant!r}, "
                                       f"the event names {named!r}"))
                continue
            raw = {**raw, "tenant": tenant}
        try:
            UploadEvent.parse(raw)
        except InvalidEvent as exc:
            refused.append((index, str(exc)))
            continue
        screened.append((index, raw))
    result = accept_events(session, screened)
    refused_at = {index for index, _ in result.refused}
    new = set(result.new)
    accepted = []
    for index, _ in screened:
        if index not in refused_at:
            _, event_id, asset_id = result.named[index]
            accepted.append((index, event_id, asset_id, "accepted" if (tenant, event_id) in new else "duplicate"))
    return TenantAcceptance(accepted=accepted, refused=sorted(refused + result.refused), new=result.new)


def count_delivery(session: Session, settings: Settings, tenant: str, event_id: str) -> bool:
    """Count a delivery before work starts; False when the event is poison and was dead-lettered.

    The caller commits this on its own, so a delivery that kills its process still counts.
    """
    attempts = repository.count_attempt(session, tenant, event_id)
    if attempts is None or attempts <= settings.max_attempts:
        return True
    event = next(iter(repository.lock_events(session, tenant, [event_id])), None)
    if event is not None and event.status == "accepted":
        dead_letter(session, tenant, event_id, f"max_attempts: {attempts - 1} deliveries ended without an outcome",
                    attempts - 1, event.payload)
    return False


def dead_letter(session: Session, tenant: str, event_id: str, reason: str, attempts: int, payload: dict | None) -> None:
    repository.insert_dead_letter(session, tenant=tenant, event_id=event_id, reason=reason, attempts=attempts,
                                  payload=payload)
    repository.set_event_status(session, tenant, event_id, "dead")


def stale_events(session: Session, settings: Settings, broker_lost_state: bool = False,
                 limit: int = 1000) -> list[tuple[str, str]]:
    """Accepted events with no outcome after the timeout, or all of them at once when the broker
    lost its state (their messages are gone); the caller re-enqueues them after commit. Each is
    touched, so the age rule leaves it alone for another GOVERNANCE_RECONCILE_AFTER_S."""
    if broker_lost_state:
        return repository.touch_all_pending(session)
    keys = repository.stale_events(session, settings.reconcile_after_s, limit)
    repository.touch_events(session, keys)
    return keys
