import pytest

from governance.events import InvalidEvent, UploadEvent, default_event_id, identify


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
