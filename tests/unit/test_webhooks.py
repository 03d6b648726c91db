import pytest

from governance.delivery.webhooks import MESSAGE_ID_HEADER, SIGNATURE_HEADER, post, sign, verify

BODY = b'{"action":"block","event_id":"e1"}'


def test_a_fresh_signature_verifies():
    assert verify("s3cret", BODY, sign("s3cret", BODY, timestamp=1000), now=1010)


def test_forged_signature_fails():
    assert not verify("s3cret", BODY, sign("wrong", BODY, timestamp=1000), now=1010)
    assert not verify("s3cret", BODY, "t=1000,v1=" + "0" * 64, now=1010)


def test_tampered_body_fails():
    assert not verify("s3cret", BODY.replace(b"block", b"allow"), sign("s3cret", BODY, timestamp=1000), now=1010)


def test_stale_or_future_signature_fails():
    header = sign("s3cret", BODY, timestamp=1000)
    assert not verify("s3cret", BODY, header, now=1000 + 301)
    assert not verify("s3cret", BODY, header, now=1000 - 301)


def test_timestamp_is_part_of_what_is_signed():
    header = sign("s3cret", BODY, timestamp=1000)
    replayed = header.replace("t=1000", "t=2000")
    assert not verify("s3cret", BODY, replayed, now=2000)


def test_malformed_headers_fail_closed():
    for header in ("", "garbage", "t=abc,v1=00", "v1=00"):
        assert not verify("s3cret", BODY, header, now=1000)


# --- the signature as a receiver sees it, checked by code that is not ours ------------------------

def _received(secret: str, payload: dict) -> tuple[bytes, dict]:
    """One real POST by governance.delivery.webhooks.post to a loopback receiver: (raw body, headers)."""
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    got = {}

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            got["body"] = self.rfile.read(int(self.headers["Content-Length"]))
            got["headers"] = dict(self.headers)
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        status = post(f"http://127.0.0.1:{server.server_port}/hook", secret, "decision:t:e1", payload, timeout_s=5)
    finally:
        server.shutdown()
        server.server_close()
    assert status == 204
    return got["body"], got["headers"]


def test_the_posted_signature_is_hmac_sha256_over_timestamp_dot_body_computed_independently():
    import hashlib
    import hmac

    body, headers = _received("s3cret", {"event_id": "e1", "action": "block", "label": "späm"})
    header = headers[SIGNATURE_HEADER]
    fields = dict(part.split("=", 1) for part in header.split(","))
    assert set(fields) == {"t", "v1"} and fields["t"].isdigit()
    expected = hmac.new(b"s3cret", fields["t"].encode() + b"." + body, hashlib.sha256).hexdigest()
    assert fields["v1"] == expected
    assert headers[MESSAGE_ID_HEADER] == "decision:t:e1"
    assert verify("s3cret", body, header, now=int(fields["t"]))


def test_stripe_verifies_the_posted_signature_and_refuses_a_tampered_one():
    import stripe

    body, headers = _received("whsec_governance", {"event_id": "e1", "action": "block"})
    header = headers[SIGNATURE_HEADER]
    # tolerance=None: Stripe checks the signature only, not its age against the wall clock.
    assert stripe.WebhookSignature.verify_header(body, header, "whsec_governance", tolerance=None) is True
    with pytest.raises(stripe.SignatureVerificationError):
        stripe.WebhookSignature.verify_header(body.replace(b"block", b"allow"), header, "whsec_governance")
    with pytest.raises(stripe.SignatureVerificationError):
        stripe.WebhookSignature.verify_header(body, header, "whsec_other")
    # And ours accepts what Stripe's own helper signs.
    stripe_header = stripe.WebhookSignature.generate_signature_header(body.decode(), "whsec_governance",
                                                                     timestamp=1000)
    assert verify("whsec_governance", body, stripe_header, now=1000)
