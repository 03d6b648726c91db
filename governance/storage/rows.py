"""Row types the repository returns that are not tables."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True)
class Neighbor:
    asset_id: str
    label: str
    distance: float  # cosine distance, 0..2
    polarity: str = "positive"  # "negative": an allowlist entry that suppresses `label`


@dataclass(frozen=True)
class ApiKeyRow:
    """An API key as stored, without its hash."""
    id: str
    tenant: str
    name: str | None
    scopes: list[str]
    created_at: datetime
    revoked_at: datetime | None
    last_used_at: datetime | None


@dataclass(frozen=True)
class DueDelivery:
    """A claimed delivery with what sending it needs."""
    id: int
    tenant: str
    subscription_id: str
    url: str
    secret: str
    attempts: int
    message_id: str
    kind: str
    payload: dict
    created_at: datetime
