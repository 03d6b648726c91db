import pytest

from governance.ingest.events import (
    InvalidEvent, UploadEvent, decode_json, decode_lines, default_event_id, identify, valid_tenant,
)


def test_defaults_tenant_and_event_id():
    event = UploadEvent.parse({"asset_id": "a1", "text": "hello"})
    assert event.tenant == "default"
    assert event.event_id == default_event_id("default", "a1")
    assert default_event_id("default", "a1") != default_event_id("other", "a1")


@pytest.mark.parametrize("raw, reason", [
    ({"asset_id": "a"}, "no_content"),
    ({"asset_id": "a", "text": ""}, "empty_content"),
    ({"asset_id": "a", "text": "x", "uri": "file:///x"}, "ambiguous_content"),
    ({"asset_id": "a", "text": "x", "colour": "red"}, "unknown_field"),
    ({"event_id": "e", "text": "x"}, "missing_field"),
    ({"asset_id": "a", "text": 5}, "invalid_field"),
    ({"asset_id": "a", "text": "x", "metadata": []}, "invalid_field"),
])
def test_invalid_events_name_their_reason(raw, reason):
    with pytest.raises(InvalidEvent, match=reason):
        UploadEvent.parse(raw)


@pytest.mark.parametrize("raw", [[1, 2], "text", {"text": "no ids"}, {"asset_id": ""}, {"asset_id": "a", "tenant": 3}])
def test_unnameable_events_cannot_be_identified(raw):
    with pytest.raises(InvalidEvent):
        identify(raw)


def test_an_invalid_but_nameable_event_is_identified():
    assert identify({"event_id": "e1"}) == ("default", "e1", None)


# --- raw lines: one bad line is refused with its reason, never an exception ---------------------

DEEP = b'{"asset_id": "a", "text": "x", "metadata": ' + b'{"k": ' * 10_000 + b"1" + b"}" * 10_001
HOSTILE_LINES = [
    (b'{"asset_id": "a", "text": "x\\u0000y"}', "nul_character: NUL in text"),
    (b'{"asset_id": "x\\u0000y", "text": "x"}', "nul_character: NUL in asset_id"),
    (b'{"asset_id": "a", "text": "x", "metadata": {"k\\u0000": 1}}', "nul_character: NUL in a key of metadata"),
    (b'{"asset_id": "a", "text": "\\ud800"}', "lone_surrogate: U+D800 in text is half of a UTF-16 pair"),
    (b'{"asset_id": "a", "text": "x", "metadata": {"l": ["ok", "\\udfff"]}}', "lone_surrogate: U+DFFF in metadata.l.1 is half of a UTF-16 pair"),
    (b'{"asset_id": "a", "text": "caf\xe9"}', "invalid_utf8: byte 0xe9 at offset 30"),
    (b'{"asset_id": "a", "text": "x", "metadata": {"n": NaN}}', "invalid_number: NaN is not a JSON number"),
    (b'{"asset_id": "a", "text": "x", "metadata": {"n": -Infinity}}', "invalid_number: -Infinity is not a JSON number"),
    (b'{"asset_id": "a", "text": "x", "metadata": {"n": 1e400}}', "invalid_number: 1e400 is out of range"),
    (b'{"asset_id": "a", "text": "x", "metadata": {"n": ' + b"9" * 5000 + b"}}",
     "invalid_number: an integer has more than 400 digits"),
    (DEEP, "too_deep: JSON nested more than 32 levels"),
    (b'{"asset_id": "a", "text": "x", "metadata": ' + b"[" * 40 + b"]" * 40 + b"}",
     "too_deep: JSON nested more than 32 levels"),
    (b'{"asset_id": "a", "text": ', "malformed_json: Expecting value: line 1 column 27 (char 26)"),
]


@pytest.mark.parametrize("line, reason", HOSTILE_LINES, ids=[r.split(":")[0] + str(i) for i, (_, r) in enumerate(HOSTILE_LINES)])
def test_hostile_lines_are_refused_with_their_reason(line, reason):
    with pytest.raises(InvalidEvent) as caught:
        decode_json(line)
    assert str(caught.value) == reason


def test_decode_lines_numbers_each_line_and_keeps_the_good_ones():
    lines = [b'{"asset_id": "a", "text": "ok"}\n', b"\n", HOSTILE_LINES[0][0] + b"\n", b'{"asset_id": "b", "text": "\xc3\xa9"}\r\n']
    decoded = list(decode_lines(lines))
    assert [n for n, _ in decoded] == [1, 3, 4]
    assert decoded[0][1] == {"asset_id": "a", "text": "ok"}
    assert str(decoded[1][1]) == "nul_character: NUL in text"
    assert decoded[2][1] == {"asset_id": "b", "text": "é"}


@pytest.mark.parametrize("raw, reason", [
    ({"asset_id": "a", "text": "x\x00"}, "nul_character: NUL in text"),
    ({"asset_id": "a", "text": "x", "metadata": {"f": float("nan")}}, "invalid_number: nan in metadata.f is not a JSON number"),
    ({"asset_id": "a", "text": "x", "metadata": {"i": 10 ** 500}}, "invalid_number: an integer in metadata.i has more than 400 digits"),
    ({"asset_id": "a", "text": "x", "metadata": {"b": b"x"}}, "invalid_value: bytes in metadata.b is not JSON"),
])
def test_objects_that_cannot_be_stored_cannot_be_identified(raw, reason):
    # The same checks guard every way in that hands over an object instead of a line.
    with pytest.raises(InvalidEvent) as caught:
        identify(raw)
    assert str(caught.value) == reason


def test_big_but_storable_numbers_are_kept():
    assert decode_json(b'{"n": 1.7e308, "i": ' + b"9" * 400 + b"}") == {"n": 1.7e308, "i": int("9" * 400)}


# --- tenants and ids -------------------------------------------------------------------------------

@pytest.mark.parametrize("tenant", ["default", "t-abc123", "e2e-1a2b3c4d", "acme.eu_1", "A" * 128])
def test_tenant_grammar_accepts_the_names_in_use(tenant):
    assert valid_tenant(tenant) == tenant


@pytest.mark.parametrize("tenant", ["../../escape", "..", ".hidden", "a/b", "a\\b", "", "A" * 129, "x y", "é", 3, None])
def test_tenant_grammar_refuses_paths_and_oddities(tenant):
    with pytest.raises(InvalidEvent, match="^invalid_tenant: "):
        identify({"asset_id": "a", "tenant": tenant})


def test_an_explicit_id_cannot_take_another_assets_derived_id():
    taken = default_event_id("t", "b")
    with pytest.raises(InvalidEvent, match=f"^reserved_event_id: {taken} has the shape of a derived id"):
        identify({"tenant": "t", "asset_id": "a", "event_id": taken})
    assert identify({"tenant": "t", "asset_id": "b", "event_id": taken}) == ("t", taken, "b")
    assert identify({"tenant": "t", "asset_id": "a", "event_id": "ev-te-31"}) == ("t", "ev-te-31", "a")
