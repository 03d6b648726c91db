"""The upload-event contract: decoding, parsing and validation. Nothing here touches I/O."""
from __future__ import annotations

import hashlib
import json
import math
import re
from dataclasses import dataclass, field
from typing import Any, Iterable, Iterator

KNOWN_FIELDS = {"event_id", "tenant", "asset_id", "text", "uri", "data_b64", "mime_type", "title", "metadata", "label", "polarity"}
CONTENT_FIELDS = ("text", "uri", "data_b64")
ACTIONS = ("allow", "review", "block", "reject")
DEFAULT_TENANT = "default"
MAX_ID_LENGTH = 256
# A tenant names database scopes, log fields and (through a hash) report folders: a first
# character that is no dot keeps "." and ".." out, the rest keeps separators and NUL out.
TENANT_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")
# Derived ids have this exact shape; an explicit id of the same shape could take the id another
# asset's event is going to get, and that event would then never be decided.
DERIVED_ID_PATTERN = re.compile(r"ev-[0-9a-f]{32}")
MAX_JSON_DEPTH = 32
MAX_INT_DIGITS = 400  # above any float PostgreSQL may hand back as an integer (1.8e308), below Python's 4300
_INT_LIMIT = 10 ** MAX_INT_DIGITS
_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")  # PostgreSQL refuses NUL; UTF-8 has no lone surrogates


class InvalidEvent(ValueError):
    """The event cannot be processed as given; the message is the reject reason."""


def valid_tenant(value: Any) -> str:
    if not isinstance(value, str) or not TENANT_PATTERN.fullmatch(value):
        raise InvalidEvent(f"invalid_tenant: {value!r} is not 1-128 letters, digits, '.', '_' or '-' "
                           "starting with a letter or digit")
    return value


# --- raw input to JSON we can store ----------------------------------------------------------

def decode_lines(lines: Iterable[bytes]) -> Iterator[tuple[int, Any]]:
    """(line number, JSON value, or the InvalidEvent saying why not) for every non-blank line.

    Lines are decoded one by one, so one bad line costs only itself.
    """
    for number, line in enumerate(lines, 1):
        if line.strip():
            try:
                yield number, decode_json(line)
            except InvalidEvent as exc:
                yield number, exc


def decode_json(raw: bytes | str) -> Any:
    """Strict JSON that PostgreSQL's jsonb and Python can both hold, or InvalidEvent with the reason."""
    if isinstance(raw, bytes):
        try:
            raw = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise InvalidEvent(f"invalid_utf8: byte 0x{raw[exc.start]:02x} at offset {exc.start}") from None
    try:
        value = json.loads(raw, parse_constant=_refuse_constant, parse_float=_finite_float, parse_int=_bounded_int)
    except json.JSONDecodeError as exc:
        raise InvalidEvent(f"malformed_json: {exc}") from None
    except RecursionError:
        raise InvalidEvent(f"too_deep: JSON nested more than {MAX_JSON_DEPTH} levels") from None
    check_storable(value)
    return value


def check_storable(value: Any) -> None:
    """Refuse what jsonb or our own code cannot hold: NUL, lone surrogates, NaN/Infinity, huge
    integers, deep nesting, non-JSON types. Iterative, so depth cannot exhaust the stack."""
    stack = [(value, 1, "event")]
    while stack:
        item, depth, where = stack.pop()
        if isinstance(item, (dict, list)):
            if depth > MAX_JSON_DEPTH:
                raise InvalidEvent(f"too_deep: JSON nested more than {MAX_JSON_DEPTH} levels")
            pairs = item.items() if isinstance(item, dict) else enumerate(item)
            for key, child in pairs:
                if isinstance(item, dict):
                    if not isinstance(key, str):
                        raise InvalidEvent(f"invalid_value: key {key!r} in {where} is not a string")
                    _check_string(key, f"a key of {where}")
                stack.append((child, depth + 1, str(key) if where == "event" else f"{where}.{key}"))
        elif isinstance(item, str):
            _check_string(item, where)
        elif isinstance(item, bool) or item is None:
            continue
        elif isinstance(item, int):
            if abs(item) >= _INT_LIMIT:
                raise InvalidEvent(f"invalid_number: an integer in {where} has more than {MAX_INT_DIGITS} digits")
        elif isinstance(item, float):
            if not math.isfinite(item):
                raise InvalidEvent(f"invalid_number: {item} in {where} is not a JSON number")
        else:
            raise InvalidEvent(f"invalid_value: {type(item).__name__} in {where} is not JSON")


def _check_string(text: str, where: str) -> None:
    bad = _UNSTORABLE.search(text)
    if bad is None:
        return
    if bad.group() == "\x00":
        raise InvalidEvent(f"nul_character: NUL in {where}")
    raise InvalidEvent(f"lone_surrogate: U+{ord(bad.group()):04X} in {where} is half of a UTF-16 pair")


def _refuse_constant(name: str) -> Any:
    raise InvalidEvent(f"invalid_number: {name} is not a JSON number")


def _finite_float(text: str) -> float:
    number = float(text)
    if not math.isfinite(number):
        raise InvalidEvent(f"invalid_number: {text[:40]} is out of range")
    return number


def _bounded_int(text: str) -> int:
    if len(text.lstrip("-")) > MAX_INT_DIGITS:
        raise InvalidEvent(f"invalid_number: an integer has more than {MAX_INT_DIGITS} digits")
    return int(text)


# --- naming and parsing events ----------------------------------------------------------------

def default_event_id(tenant: str, asset_id: str) -> str:
    return "ev-" + hashlib.sha256(f"{tenant}\x00{asset_id}".encode()).hexdigest()[:32]


def identify(raw: Any) -> tuple[str, str, str | None]:
    """(tenant, event_id, asset_id) of a raw event, enough to record it even if it is invalid.

    Raises InvalidEvent only when the event cannot even be named (not an object, or neither an
    asset_id nor an event_id) or cannot be stored: such input is refused at publish time instead
    of being accepted.
    """
    if not isinstance(raw, dict):
        raise InvalidEvent("event is not a JSON object")
    check_storable(raw)
    tenant = valid_tenant(raw.get("tenant", DEFAULT_TENANT))
    asset_id = raw.get("asset_id")
    event_id = raw.get("event_id")
    for name, value in (("asset_id", asset_id), ("event_id", event_id)):
        if value is not None and (not isinstance(value, str) or not value or len(value) > MAX_ID_LENGTH):
            raise InvalidEvent(f"{name} must be a non-empty string of at most {MAX_ID_LENGTH} characters")
    if asset_id is None and event_id is None:
        raise InvalidEvent("event has neither asset_id nor event_id")
    derived = None if asset_id is None else default_event_id(tenant, asset_id)
    if event_id is not None and event_id != derived and DERIVED_ID_PATTERN.fullmatch(event_id):
        raise InvalidEvent(f"reserved_event_id: {event_id} has the shape of a derived id (ev- and 32 hex digits) "
                           "but is not this tenant and asset_id's; leave event_id out or choose another")
    return tenant, event_id or derived, asset_id


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
