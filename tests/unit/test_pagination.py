"""web/pagination.py: a cursor gives back the position it was made from, and nothing else passes."""
import base64
import json
from datetime import datetime, timezone

import pytest

from web.pagination import decode_cursor, encode_cursor
from web.problems import Problem


def test_a_cursor_round_trips_its_position():
    at = datetime(2026, 12, 1, 22, 5, 7, 123456, tzinfo=timezone.utc)
    cursor = encode_cursor((at, 1, 42))
    assert "=" not in cursor and "/" not in cursor and "+" not in cursor
    assert decode_cursor(cursor, datetime, int, int) == (at, 1, 42)
    assert decode_cursor(encode_cursor([7]), int) == (7,)
    assert encode_cursor(None) is None


def raw(values) -> str:
    return base64.urlsafe_b64encode(json.dumps(values).encode()).decode().rstrip("=")


@pytest.mark.parametrize("cursor", [
    "not base64 at all!", raw({"a": 1}), raw([1, 2]), raw(["x"]), raw([True]), raw([-1]), raw([2 ** 63]),
    raw([1.5]), "A" * 401, base64.urlsafe_b64encode(b"\xff\xfe").decode(),
])
def test_anything_else_is_a_422_problem(cursor):
    with pytest.raises(Problem) as refused:
        decode_cursor(cursor, int)
    assert refused.value.status == 422 and "cursor" in refused.value.detail


def test_a_time_without_an_offset_is_utc_and_a_non_time_is_refused():
    assert decode_cursor(raw(["2026-12-01T10:00:00"]), datetime) == (datetime(2026, 12, 1, 10, tzinfo=timezone.utc),)
    for bad in (raw([5]), raw(["yesterday"])):
        with pytest.raises(Problem):
            decode_cursor(bad, datetime)
    with pytest.raises(Problem):
        decode_cursor(raw([5]), str)
    assert decode_cursor(raw(["x"]), str) == ("x",)
