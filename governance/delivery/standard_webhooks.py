"""Signing for tenant webhook subscriptions, by the Standard Webhooks scheme (standardwebhooks.com).

Headers `webhook-id` (stable across retries: receivers deduplicate on it), `webhook-timestamp`
(unix seconds) and `webhook-signature: v1,<base64 HMAC-SHA256 of "<id>.<timestamp>.<body>">`.
The key is the bytes behind a `whsec_<base64>` secret, so a receiver verifies with the
`standardwebhooks` package or Svix's libraries instead of code of ours. The body follows the
scheme's payload shape: `{"type", "timestamp", "data"}`.
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import time
from datetime import datetime

SECRET_PREFIX = "whsec_"
SECRET_BYTES = 32  # the scheme asks for 24 to 64


def new_secret() -> str:
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(SECRET_BYTES)).decode()


def sign(secret: str, message_id: str, timestamp: int, body: bytes) -> str:
    key = base64.b64decode(secret.removeprefix(SECRET_PREFIX))
    digest = hmac.new(key, f"{message_id}.{timestamp}.".encode() + body, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def body(event: str, created_at: datetime, payload: dict) -> bytes:
    return json.dumps({"type": event, "timestamp": created_at.isoformat(), "data": payload},
                      sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def headers(secret: str, message_id: str, content: bytes, timestamp: int | None = None) -> dict[str, str]:
    """The request headers; signed at send time, so a retry carries a fresh timestamp."""
    timestamp = int(time.time()) if timestamp is None else timestamp
    return {"Content-Type": "application/json", "webhook-id": message_id, "webhook-timestamp": str(timestamp),
            "webhook-signature": sign(secret, message_id, timestamp, content)}
