"""Keyset pagination behind an opaque cursor: a page ends at a position (the sort key of its last
row), the cursor is that position as base64url JSON, and the next page starts after it. Clients
must treat the cursor as opaque; only the route that gave it out knows its shape."""
from __future__ import annotations

import base64
import binascii
import json
from datetime import datetime, timezone
from typing import Any

from web.problems import Problem

MAX_CURSOR_CHARS = 400


def encode_cursor(position: tuple | list | None) -> str | None:
    """The cursor for a position (None: there is no next page)."""
    if position is None:
        return None
    values = [value.isoformat() if isinstance(value, datetime) else value for value in position]
    return base64.urlsafe_b64encode(json.dumps(values, separators=(",", ":")).encode()).decode().rstrip("=")


def decode_cursor(cursor: str, *shape: type) -> tuple:
    """The position a cursor holds, each value converted to its type in `shape` (datetime, int or
    str); a cursor this API did not give out is a 422 problem."""
    try:
        if len(cursor) > MAX_CURSOR_CHARS:
            raise ValueError("too long")
        values = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        if not isinstance(values, list) or len(values) != len(shape):
            raise ValueError("wrong shape")
        return tuple(_convert(value, kind) for value, kind in zip(values, shape))
    except (ValueError, TypeError, UnicodeDecodeError, binascii.Error):
        raise Problem("invalid-request", "cursor: not a cursor this API gave out") from None


def _convert(value: Any, kind: type):
    if kind is datetime:
        if not isinstance(value, str):
            raise TypeError("not a time")
        moment = datetime.fromisoformat(value)
        return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)
    if kind is int:
        if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value < 2 ** 63:
            raise TypeError("not a row id")
        return value
    if not isinstance(value, kind):
        raise TypeError(f"not a {kind.__name__}")
    return value
