from governance.webhooks import sign, verify

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
