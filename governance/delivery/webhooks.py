"""Signed webhook write-back, and the helper receivers use to verify it.

Header `Governance-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<body>">`, as Stripe
does it: the timestamp is signed with the body, so a captured request cannot be replayed later
than `tolerance_s`, and the comparison is constant-time.
"""
from __future__ import annotations

import hashlib
import hmac
import json
import time
import urllib.error
import urllib.request

SIGNATURE_HEADER = "Governance-Signature"
MESSAGE_ID_HEADER = "Governance-Message-Id"


class WebhookError(Exception):
    pass


def sign(secret: str, body: bytes, timestamp: int | None = None) -> str:
    timestamp = int(time.time()) if timestamp is None else timestamp
    digest = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={digest}"


def verify(secret: str, body: bytes, header: str, *, tolerance_s: int = 300, now: float | None = None) -> bool:
    """True only for a signature made with `secret` over `body` within `tolerance_s` of now."""
    try:
        pairs = [item.strip().split("=", 1) for item in header.split(",")]
        timestamp = int(next(v for k, v in pairs if k == "t"))
        candidates = [v for k, v in pairs if k == "v1"]
    except (ValueError, StopIteration):
        return False
    now = time.time() if now is None else now
    if abs(now - timestamp) > tolerance_s:
        return False
    expected = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return any(hmac.compare_digest(expected, c) for c in candidates)


def post(url: str, secret: str | None, message_id: str, payload: dict, timeout_s: float) -> int:
    body = json.dumps(payload, sort_keys=True, separators=(",", ":")).encode()
    headers = {"Content-Type": "application/json", MESSAGE_ID_HEADER: message_id}
    if secret:
        headers[SIGNATURE_HEADER] = sign(secret, body)
    request = urllib.request.Request(url, data=body, headers=headers, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=timeout_s) as response:
            return response.status
    except urllib.error.HTTPError as exc:
        raise WebhookError(f"status {exc.code}") from exc
    except (urllib.error.URLError, OSError) as exc:
        raise WebhookError(f"unreachable: {exc}") from exc
