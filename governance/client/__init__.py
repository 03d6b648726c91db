"""A thin Python client for the governance HTTP API (`governance serve`), on httpx.

    from governance.client import Client

    with Client("http://127.0.0.1:8000", key) as api:
        result = api.submit({"asset_id": "a1", "text": "hello"}, wait=10)
        print(result["accepted"][0]["decision"]["action"])
        for decision in api.decisions(action="block"):
            ...

It imports nothing else of `governance`, so it can be vendored into a producer as one file.
Errors are `ApiError` carrying the RFC 9457 problem the server answered.
"""
from __future__ import annotations

import json
import mimetypes
import time
from datetime import datetime
from pathlib import Path
from typing import Any, Iterator

import httpx

__all__ = ["ApiError", "Client"]


class ApiError(Exception):
    """The server refused the request; `problem` is its problem document, `type` its stable URI."""

    def __init__(self, status: int, problem: dict):
        self.status, self.problem = status, problem
        self.type = problem.get("type", "")
        super().__init__(f"{status} {problem.get('title', '')}: {problem.get('detail', '')}".strip(": "))


class Client:
    def __init__(self, base_url: str, key: str, *, timeout_s: float = 60.0, max_rate_limit_retries: int = 3,
                 transport: httpx.BaseTransport | None = None):
        self._http = httpx.Client(base_url=base_url.rstrip("/"), headers={"Authorization": f"Bearer {key}"},
                                  timeout=timeout_s, transport=transport)
        self._timeout_s, self._retries = timeout_s, max_rate_limit_retries

    def __enter__(self) -> "Client":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    # --- ingest -----------------------------------------------------------------------------

    def submit(self, events: dict | list[dict], wait: float | None = None) -> dict:
        """POST /v1/events: {"accepted": [...], "refused": [...]}; with `wait`, each accepted item
        carries its `event_status` and, once decided, its `decision`."""
        return self._request("POST", "/v1/events", wait, json=events).json()

    def upload(self, path: str | Path, asset_id: str, *, event_id: str | None = None, title: str | None = None,
               metadata: dict | None = None, mime_type: str | None = None, wait: float | None = None) -> dict:
        """POST /v1/assets: the file's bytes as a multipart upload (the same answer as `submit`)."""
        path = Path(path)
        fields = {"asset_id": asset_id, "event_id": event_id, "title": title, "mime_type": mime_type,
                  "metadata": None if metadata is None else json.dumps(metadata)}
        content_type = mime_type or mimetypes.guess_type(path.name)[0] or "application/octet-stream"
        with path.open("rb") as handle:
            return self._request("POST", "/v1/assets", wait, data={k: v for k, v in fields.items() if v is not None},
                                 files={"file": (path.name, handle, content_type)}).json()

    # --- reading back -----------------------------------------------------------------------

    def event(self, event_id: str, wait: float | None = None) -> dict:
        """GET /v1/events/{id}: {"event_id", "asset_id", "status", "decision", "dead_letter_reason"}."""
        return self._request("GET", f"/v1/events/{_segment(event_id)}", wait).json()

    def decision(self, event_id: str, wait: float | None = None) -> dict | None:
        """The event's decision, or None while it has none (or it was dead-lettered)."""
        return self.event(event_id, wait)["decision"]

    def decisions(self, *, action: str | None = None, label: str | None = None, since: datetime | str | None = None,
                  until: datetime | str | None = None, page_size: int = 100) -> Iterator[dict]:
        """GET /v1/decisions, newest first, following the cursor page after page."""
        params: dict[str, Any] = {"limit": page_size}
        for name, value in (("action", action), ("label", label), ("since", since), ("until", until)):
            if value is not None:
                params[name] = value.isoformat() if isinstance(value, datetime) else value
        while True:
            page = self._request("GET", "/v1/decisions", None, params=params).json()
            yield from page["decisions"]
            if not page["next_cursor"]:
                return
            params["cursor"] = page["next_cursor"]

    def asset(self, asset_id: str) -> dict:
        """GET /v1/assets/{id}: the stored asset, its decisions and its review history."""
        return self._request("GET", f"/v1/assets/{_segment(asset_id)}", None).json()

    # ----------------------------------------------------------------------------------------

    def _request(self, method: str, path: str, wait: float | None, **kwargs) -> httpx.Response:
        params = dict(kwargs.pop("params", None) or {})
        if wait is not None:
            params["wait"] = wait
        timeout = max(self._timeout_s, (wait or 0) + 15)
        for attempt in range(self._retries + 1):
            response = self._http.request(method, path, params=params, timeout=timeout, **kwargs)
            if response.status_code == 429 and attempt < self._retries:
                time.sleep(float(response.headers.get("retry-after", "1")))
                for value in (kwargs.get("files") or {}).values():
                    value[1].seek(0)
                continue
            break
        if response.status_code >= 400:
            try:
                problem = response.json()
            except ValueError:
                problem = {"title": response.reason_phrase, "detail": response.text[:500]}
            raise ApiError(response.status_code, problem if isinstance(problem, dict) else {"detail": str(problem)})
        return response


def _segment(value: str) -> str:
    from urllib.parse import quote

    return quote(value, safe="")
