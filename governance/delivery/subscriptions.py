"""A tenant's webhook subscriptions: where its messages go, and which kinds of them.

The event types are the outbox kinds: `decision` (a decision is written), `override` (a reviewer
changed one), `alert` (grouped anomaly alerts) and `cluster` (a cluster report's alerts). A
subscription URL is tenant input, so it passes the upload fetcher's SSRF checks when it is given
and again at every send (`subscription_delivery.py`), unless the operator set
GOVERNANCE_WEBHOOK_ALLOW_PRIVATE. Its `whsec_` secret is returned once, at creation.
"""
from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime
from typing import Iterable

from sqlalchemy.orm import Session

from governance.delivery.standard_webhooks import new_secret
from governance.ingest.safe_fetch import FetchRefused, check_destination
from governance.platform.config import Settings
from governance.storage import repository
from governance.storage.tables import WebhookSubscription

EVENTS = ("decision", "override", "alert", "cluster")
MAX_URL_CHARS = 2048


class SubscriptionRefused(ValueError):
    """The URL or the events cannot be subscribed; the message says why (`ssrf_blocked: …`, …)."""


class SubscriptionNotFound(LookupError):
    pass


@dataclass(frozen=True)
class Subscription:
    id: str
    tenant: str
    url: str
    events: list[str]
    created_at: datetime

    def to_json(self) -> dict:
        return {"id": self.id, "tenant": self.tenant, "url": self.url, "events": list(self.events),
                "created_at": self.created_at.isoformat()}


@dataclass(frozen=True)
class CreatedSubscription:
    subscription: Subscription
    secret: str  # shown once: it is never listed again

    def to_json(self) -> dict:
        return {**self.subscription.to_json(), "secret": self.secret}


def parse_events(events: Iterable[str] | str) -> list[str]:
    """Known event types, each once, in the given order; a comma-separated string is split."""
    names = events.split(",") if isinstance(events, str) else list(events)
    chosen: list[str] = []
    for name in (str(n).strip() for n in names if str(n).strip()):
        if name not in EVENTS:
            raise SubscriptionRefused(f"unknown_event: {name!r} is not one of {', '.join(EVENTS)}")
        if name not in chosen:
            chosen.append(name)
    if not chosen:
        raise SubscriptionRefused("no_events: name at least one of " + ", ".join(EVENTS))
    return chosen


def check_url(url: str, settings: Settings) -> None:
    if len(url) > MAX_URL_CHARS:
        raise SubscriptionRefused(f"invalid_uri: longer than {MAX_URL_CHARS} characters")
    try:
        check_destination(url, settings, allow_private=settings.webhook_allow_private)
    except FetchRefused as exc:
        raise SubscriptionRefused(str(exc)) from None


def create(session: Session, settings: Settings, tenant: str, url: str,
           events: Iterable[str] | str) -> CreatedSubscription:
    chosen = parse_events(events)
    check_url(url, settings)
    secret = new_secret()
    row = repository.insert_subscription(session, id="wh_" + secrets.token_hex(12), tenant=tenant, url=url,
                                         events=chosen, secret=secret)
    return CreatedSubscription(_subscription(row), secret)


def list_subscriptions(session: Session, tenant: str | None = None) -> list[Subscription]:
    """The tenant's live subscriptions, or all that the session's scope shows when None; no secrets."""
    return [_subscription(row) for row in repository.live_subscriptions(session, tenant)]


def delete(session: Session, subscription_id: str, tenant: str | None = None) -> None:
    """Soft-delete: the row stays (its deliveries refer to it), nothing more is sent to it."""
    if not repository.soft_delete_subscription(session, subscription_id, tenant):
        raise SubscriptionNotFound(f"no webhook subscription {subscription_id!r}")


def _subscription(row: WebhookSubscription) -> Subscription:
    return Subscription(id=row.id, tenant=row.tenant, url=row.url, events=list(row.events), created_at=row.created_at)
