"""The upload-event contract: parsing and validation. Nothing here touches I/O."""
from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any

KNOWN_FIELDS = {"event_id", "tenant", "asset_id", "text", "uri", "data_b64", "mime_type", "title", "metadata", "label", "polarity"}
CONTENT_FIELDS = ("text", "uri", "data_b64")
ACTIONS = ("allow", "review", "block", "reject")
DEFAULT_TENANT = "default"
MAX_ID_LENGTH = 256


class InvalidEvent(ValueError):
    """The event cannot be processed as given; the message is the reject reason."""


def default_event_id(tenant: str, asset_id: str) -> str:
    return "ev-" + hashlib.sha256(f"{tenant}\x00{asset_id}".encode()).hexdigest()[:32]


def identify(raw: Any) -> tuple[str, str, str | None]:
    """(tenant, event_id, asset_id) of a raw event, enough to record it even if it is invalid.

    Raises InvalidEvent only when the event cannot even be named (not an object, or neither an
    asset_id nor an event_id): such input is refused at publish time instead of being accepted.
    """
    if not isinstance(raw, dict):
        raise InvalidEvent("event is not a JSON object")
    tenant = raw.get("tenant", DEFAULT_TENANT)
    asset_id = raw.get("asset_id")
    event_id = raw.get("event_id")
    if not isinstance(tenant, str) or not tenant or len(tenant) > 128:
        raise InvalidEvent("tenant must be a non-empty string of at most 128 characters")
    for name, value in (("asset_id", asset_id), ("event_id", event_id)):
        if value is not None and (not isinstance(value, str) or not value or len(value) > MAX_ID_LENGTH):
            raise InvalidEvent(f"{name} must be a non-empty string of at most {MAX_ID_LENGTH} characters")
    if asset_id is None and event_id is None:
        raise InvalidEvent("event has neither asset_id nor event_id")
    return tenant, event_id or default_event_id(tenant, asset_id), asset_id


@dataclass(frozen=True)
class UploadEvent:
    tenant: str
    event_id: str
    asset_id: str
    text: str | None = None
    uri: str | None = None
    data_b64: str | None = None
    mime_type: str | None = None
    title: str | None = None
    metadata: dict = field(default_factory=dict)
    label: str | None = None  # exemplars only
    polarity: str = "positive"  # exemplars only: "negative" allowlists the label

    @classmethod
    def parse(cls, raw: Any) -> "UploadEvent":
        tenant, event_id, asset_id = identify(raw)
        if asset_id is None:
            raise InvalidEvent("missing_field: asset_id is required")
        unknown = sorted(set(raw) - KNOWN_FIELDS)
        if unknown:
            raise InvalidEvent(f"unknown_field: {', '.join(unknown)}")
        given = [name for name in CONTENT_FIELDS if raw.get(name) not in (None, "")]
        if not given:
            if raw.get("text") == "":
                raise InvalidEvent("empty_content: text is empty")
            raise InvalidEvent("no_content: exactly one of text, uri or data_b64 is required")
        if len(given) > 1:
            raise InvalidEvent(f"ambiguous_content: got {', '.join(given)}; exactly one is allowed")
        for name in (*CONTENT_FIELDS, "mime_type", "title", "label"):
            if raw.get(name) is not None and not isinstance(raw[name], str):
                raise InvalidEvent(f"invalid_field: {name} must be a string")
        polarity = raw.get("polarity") or "positive"
        if polarity not in ("positive", "negative"):
            raise InvalidEvent("invalid_field: polarity must be positive or negative")
        metadata = raw.get("metadata")
        metadata = {} if metadata is None else metadata
        if not isinstance(metadata, dict):
            raise InvalidEvent("invalid_field: metadata must be an object")
        return cls(
            tenant=tenant, event_id=event_id, asset_id=asset_id, text=raw.get("text"), uri=raw.get("uri"),
            data_b64=raw.get("data_b64"), mime_type=raw.get("mime_type"), title=raw.get("title"),
            metadata=metadata, label=raw.get("label"), polarity=polarity,
        )
