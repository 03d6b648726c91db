"""Our Standard Webhooks signatures against the reference implementation (`standardwebhooks`)."""
import base64
from datetime import datetime, timezone

import pytest
from standardwebhooks import Webhook, WebhookVerificationError

from governance.delivery import standard_webhooks
from governance.delivery.subscriptions import SubscriptionRefused, parse_events

BODY = standard_webhooks.body("decision", datetime(2026, 1, 2, 3, 4, 5, tzinfo=timezone.utc),
                              {"event_id": "é1", "action": "block"})


def test_a_new_secret_is_whsec_and_32_random_bytes():
    first, second = standard_webhooks.new_secret(), standard_webhooks.new_secret()
    assert first.startswith("whsec_") and first != second
    assert len(base64.b64decode(first.removeprefix("whsec_"))) == 32


def test_the_signature_is_the_reference_implementations():
    secret = standard_webhooks.new_secret()
    at = datetime(2026, 1, 2, tzinfo=timezone.utc)
    ours = standard_webhooks.sign(secret, "decision:t:e1", int(at.timestamp()), BODY)
    assert ours == Webhook(secret).sign("decision:t:e1", at, BODY.decode())


def test_the_reference_verifies_our_headers_and_refuses_a_tampered_body_or_another_secret():
    secret = standard_webhooks.new_secret()
    headers = standard_webhooks.headers(secret, "decision:t:e1", BODY)
    assert Webhook(secret).verify(BODY, headers) == {"type": "decision", "timestamp": "2026-01-02T03:04:05+00:00",
                                                     "data": {"event_id": "é1", "action": "block"}}
    with pytest.raises(WebhookVerificationError):
        Webhook(secret).verify(BODY.replace(b"block", b"allow"), headers)
    with pytest.raises(WebhookVerificationError):
        Webhook(standard_webhooks.new_secret()).verify(BODY, headers)


def test_an_old_timestamp_is_refused_by_the_reference():
    secret = standard_webhooks.new_secret()
    with pytest.raises(WebhookVerificationError):
        Webhook(secret).verify(BODY, standard_webhooks.headers(secret, "m", BODY, timestamp=1_000_000_000))


def test_events_are_known_kinds_each_once_in_order():
    assert parse_events("cluster, decision,cluster") == ["cluster", "decision"]
    assert parse_events(["alert", "override"]) == ["alert", "override"]
    with pytest.raises(SubscriptionRefused, match="unknown_event"):
        parse_events("decisions")
    with pytest.raises(SubscriptionRefused, match="no_events"):
        parse_events("")
