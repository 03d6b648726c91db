"""Reading request bodies within limits, checked while the bytes arrive, never after."""
from __future__ import annotations

from typing import Any, AsyncIterator

from fastapi import Request

from governance.ingest.events import InvalidEvent, decode_json, decode_lines
from web.problems import Problem

JSON_TYPES = ("application/json",)
NDJSON_TYPES = ("application/x-ndjson", "application/jsonl", "application/x-jsonlines")
# After a 413 the rest of the body is read and dropped, up to this much, so that the client (which
# sends its whole body before it reads an answer) gets the 413 rather than a reset connection.
DRAIN_LIMIT_BYTES = 64 * 1024 * 1024


class BodyTooLarge(Exception):
    pass


def media_type(request: Request) -> str:
    return request.headers.get("content-type", "").split(";")[0].strip().lower()


def too_large(detail: str) -> Problem:
    return Problem("body-too-large", detail)


def declared_length(request: Request) -> int | None:
    try:
        return int(request.headers["content-length"])
    except (KeyError, ValueError):
        return None


async def drain(stream: AsyncIterator[bytes]) -> None:
    drained = 0
    try:
        async for chunk in stream:
            drained += len(chunk)
            if drained > DRAIN_LIMIT_BYTES:
                return
    except Exception:  # noqa: BLE001 - the client went away: nothing left to answer
        return


async def limited_stream(request: Request, limit: int) -> AsyncIterator[bytes]:
    """The body's chunks; BodyTooLarge as soon as more than `limit` bytes have arrived."""
    received = 0
    async for chunk in request.stream():
        received += len(chunk)
        if received > limit:
            raise BodyTooLarge()
        yield chunk


async def read_limited(request: Request, limit: int) -> bytes:
    declared = declared_length(request)
    if declared is not None and declared > limit:
        await drain(request.stream())
        raise too_large(f"the body has {declared} bytes; at most {limit} are accepted")
    chunks = []
    stream = limited_stream(request, limit)
    try:
        async for chunk in stream:
            chunks.append(chunk)
    except BodyTooLarge:
        await drain(request.stream())
        raise too_large(f"the body exceeds {limit} bytes") from None
    return b"".join(chunks)


def parse_events(kind: str, body: bytes, max_events: int) -> tuple[bool, list[tuple[int, Any]]]:
    """(one event was sent rather than a list, [(index, JSON value or InvalidEvent)])."""
    if kind in JSON_TYPES:
        try:
            value = decode_json(body)
        except InvalidEvent as exc:
            raise Problem("invalid-request", str(exc)) from None
        if isinstance(value, dict):
            return True, [(0, value)]
        if not isinstance(value, list):
            raise Problem("invalid-request", "the body must be one event (a JSON object) or a JSON array of events")
        items = list(enumerate(value))
    elif kind in NDJSON_TYPES:
        items = [(line - 1, value) for line, value in decode_lines(body.split(b"\n"))]
    else:
        raise Problem("unsupported-media-type",
                      f"send application/json (an event or an array) or application/x-ndjson, not {kind or 'nothing'}")
    if not items:
        raise Problem("invalid-request", "the body holds no event")
    if len(items) > max_events:
        raise too_large(f"{len(items)} events; at most {max_events} in one request")
    return False, items
