"""A local stand-in for the Gemini API's `batchEmbedContents`, speaking the real wire format.

It also speaks the Batch API for embeddings: `POST …/models/{m}:asyncBatchEmbedContent` with
`batch.inputConfig.requests.requests[].request` creates a job (an operation named `batches/N`),
and `GET …/batches/N` polls it: `BATCH_STATE_PENDING`, then `BATCH_STATE_RUNNING`, then
`BATCH_STATE_SUCCEEDED` with `metadata.output.inlinedResponses.inlinedResponses[].response
.embedding.values` (plus `tokenCount`), after `batch_polls` polls.

The SDK under test talks to it over real HTTP, so what is checked here is what Google would see:
paths, the `x-goog-api-key` header, camelCase request fields and Google's JSON error bodies.
Vectors are a deterministic function of each request's parts, and a dimension prefix of one
3,072-long vector (as with Matryoshka embeddings), so tests can compute what to expect.
Like Google, it refuses inline MIME types and over-limit media (fake_gemini_media.py).
"""
from __future__ import annotations

import binascii
import hashlib
import json
import re
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import numpy as np

from tests.fakes.fake_gemini_media import check_request_media, decode_b64, describe_part

FULL_DIMS = 3072
MAX_REQUESTS = 100
KNOWN_MODELS = ("gemini-embedding-2", "gemini-embedding-001")
TEXT_ONLY_MODELS = ("gemini-embedding-001",)
PATH = re.compile(r"^/(v1|v1beta)/models/([^/:]+):batchEmbedContents$")
BATCH_CREATE_PATH = re.compile(r"^/(v1|v1beta)/models/([^/:]+):asyncBatchEmbedContent$")
BATCH_GET_PATH = re.compile(r"^/(v1|v1beta)/batches/([^/:]+)$")
STATUS_NAMES = {400: "INVALID_ARGUMENT", 401: "UNAUTHENTICATED", 403: "PERMISSION_DENIED",
                404: "NOT_FOUND", 408: "DEADLINE_EXCEEDED", 429: "RESOURCE_EXHAUSTED",
                500: "INTERNAL", 502: "UNAVAILABLE", 503: "UNAVAILABLE", 504: "DEADLINE_EXCEEDED"}


@dataclass
class Fault:
    """One scripted answer, used instead of the normal one for the next request."""

    status: int = 200
    message: str = "scripted failure"
    retry_delay: str | None = None  # e.g. "2s": Google's RetryInfo hint on 429s
    delay_s: float = 0.0  # answer normally, but this much later (a hang when > client timeout)
    vectors: str | None = None  # "nan" | "inf" | "wrong_dims" | "missing" (one vector too few)
    # Only a request whose raw body contains this text takes the fault: stray calls of other
    # work sharing the fake (late retries, other tests' workers) cannot consume it.
    match: str | None = None


@dataclass
class RecordedRequest:
    method: str
    path: str
    headers: dict[str, str]  # without x-goog-api-key
    key_ok: bool  # whether x-goog-api-key matched the fake's key
    body: Any
    received_at: float = 0.0  # time.time() on arrival, for rate checks

    @property
    def parts(self) -> list[list[dict]]:
        """The parts of each embed request in this call, one list per asset."""
        return [r.get("content", {}).get("parts", []) for r in self.body.get("requests", [])]

    @property
    def part_details(self) -> list[list[dict]]:
        """Per request, per part: {"text": ...} or {"mime_type", "bytes", and "pages" or "seconds"}."""
        return [[describe_part(p) for p in parts] for parts in self.parts]


def error_body(code: int, message: str, details: list | None = None) -> dict:
    error = {"code": code, "message": message, "status": STATUS_NAMES.get(code, "UNKNOWN")}
    if details:
        error["details"] = details
    return {"error": error}


def part_fingerprint(part: dict) -> bytes:
    if "text" in part:
        return b"text\0" + part["text"].encode()
    blob = part.get("inlineData") or part.get("inline_data")
    if blob is None:
        raise ValueError("part has neither text nor inlineData")
    mime = blob.get("mimeType") or blob.get("mime_type")
    if not mime or "data" not in blob:
        raise ValueError("inlineData needs mimeType and data")
    return b"blob\0" + mime.encode() + b"\0" + decode_b64(blob["data"])


def expected_vector(parts: list[dict], dims: int = FULL_DIMS) -> np.ndarray:
    """The raw (unnormalised) vector the fake answers for these parts."""
    digest = hashlib.sha256(b"\1".join(part_fingerprint(p) for p in parts)).digest()
    rng = np.random.default_rng(int.from_bytes(digest[:8], "big"))
    return rng.standard_normal(FULL_DIMS)[:dims]


class FakeGemini:
    """Start with `with FakeGemini() as fake:` or `start()`/`stop()`; point the SDK at `base_url`."""

    def __init__(self, api_key: str = "fake-test-key", latency_s: float = 0.0, batch_polls: int = 2):
        self.api_key = api_key
        self.latency_s = latency_s
        self.batch_polls = batch_polls  # GETs of a batch job before it succeeds
        self.fail_batches = False  # finished jobs end in BATCH_STATE_FAILED instead
        self.batch_jobs: dict[str, dict] = {}  # name -> {"model", "requests", "embeddings", "tokens", "polls"}
        self.requests: list[RecordedRequest] = []
        self.max_concurrency = 0
        self._faults: list[Fault] = []
        self._lock = threading.Lock()
        self._active = 0
        self._gather: tuple[int, threading.Barrier] | None = None  # (calls still to hold, their barrier)
        self._stopping = threading.Event()
        self._server: ThreadingHTTPServer | None = None

    # -- lifecycle ---------------------------------------------------------------------------
    def start(self) -> "FakeGemini":
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler_class())
        self._server.daemon_threads = True  # hung handlers must not block shutdown
        # A short poll keeps stop() fast; the default 0.5 s would dominate a test run.
        threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.02},
                         name="fake-gemini", daemon=True).start()
        return self

    def stop(self) -> None:
        self._stopping.set()  # wakes handlers sleeping through a scripted hang
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> "FakeGemini":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def base_url(self) -> str:
        assert self._server is not None, "FakeGemini is not started"
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    # -- scripting ---------------------------------------------------------------------------
    def script(self, *faults: Fault) -> None:
        with self._lock:
            self._faults.extend(faults)

    def fail_next(self, count: int, status: int = 503, **kwargs: Any) -> None:
        self.script(*(Fault(status=status, **kwargs) for _ in range(count)))

    def clear_faults(self) -> None:
        with self._lock:
            self._faults.clear()

    def gather_next(self, count: int, timeout_s: float = 30.0) -> None:
        """Hold the next `count` embed calls until all of them are in the server at once, so a
        test of parallelism does not depend on how fast the client's threads get going."""
        with self._lock:
            self._gather = (count, threading.Barrier(count, timeout=timeout_s))

    def _wait_for_gathering(self) -> None:
        with self._lock:
            if self._gather is None:
                return
            left, barrier = self._gather
            self._gather = (left - 1, barrier) if left > 1 else None
        try:
            barrier.wait()
        except threading.BrokenBarrierError:  # fewer arrived in time: the test's assertions say so
            pass

    def hang_next(self, seconds: float, count: int = 1) -> None:
        self.script(*(Fault(delay_s=seconds) for _ in range(count)))

    def corrupt_next(self, kind: str, count: int = 1, match: str | None = None) -> None:
        self.script(*(Fault(vectors=kind, match=match) for _ in range(count)))

    @property
    def embed_calls(self) -> list[RecordedRequest]:
        """Online embed calls (batchEmbedContents), not Batch API jobs."""
        with self._lock:
            return [r for r in self.requests if r.method == "POST" and PATH.match(r.path.split("?")[0])]

    # -- serving -----------------------------------------------------------------------------
    def _next_fault(self, raw: bytes) -> Fault | None:
        text = raw.decode(errors="replace")
        with self._lock:
            for i, fault in enumerate(self._faults):
                if fault.match is None or fault.match in text:
                    return self._faults.pop(i)
            return None

    def answer(self, method: str, path: str, headers: dict[str, str], raw: bytes) -> tuple[int, dict]:
        key = headers.pop("x-goog-api-key", None)
        try:
            body = json.loads(raw) if raw else None
        except json.JSONDecodeError:
            body = raw.decode(errors="replace")
        with self._lock:
            self.requests.append(RecordedRequest(method, path, headers, key == self.api_key, body, time.time()))
        if key is None:
            return 403, error_body(403, "Method doesn't allow unregistered callers (callers without"
                                        " established identity). Please use API Key or other form of"
                                        " API consumer identity to call this API.")
        if key != self.api_key:
            # Google answers a wrong key with 400 and reason API_KEY_INVALID, not 401.
            return 400, error_body(400, "API key not valid. Please pass a valid API key.",
                                   [{"@type": "type.googleapis.com/google.rpc.ErrorInfo",
                                     "reason": "API_KEY_INVALID", "domain": "googleapis.com"}])
        match = PATH.match(path.split("?")[0])
        batch_create = BATCH_CREATE_PATH.match(path.split("?")[0])
        batch_get = BATCH_GET_PATH.match(path.split("?")[0])
        if method == "GET" and batch_get:
            return self._poll_batch(f"batches/{batch_get.group(2)}")
        if method == "POST" and batch_create:
            return self._create_batch(batch_create.group(2), batch_create.group(1), body)
        if method != "POST" or not match:
            return 404, error_body(404, f"Path {path} not found.")
        fault = self._next_fault(raw) or Fault()
        self._wait_for_gathering()
        if fault.delay_s or self.latency_s:
            self._stopping.wait(fault.delay_s or self.latency_s)
        if fault.status != 200:
            details = None
            if fault.retry_delay:
                details = [{"@type": "type.googleapis.com/google.rpc.RetryInfo",
                            "retryDelay": fault.retry_delay}]
            return fault.status, error_body(fault.status, fault.message, details)
        return self._embed(match.group(2), match.group(1), body, fault)

    def _embed(self, model: str, version: str, body: Any, fault: Fault) -> tuple[int, dict]:
        if model not in KNOWN_MODELS:
            return 404, error_body(404, f"models/{model} is not found for API version {version}, or"
                                        " is not supported for embedContent.")
        requests = body.get("requests") if isinstance(body, dict) else None
        if not isinstance(requests, list) or not requests:
            return 400, error_body(400, "* BatchEmbedContentsRequest.requests: must not be empty")
        if len(requests) > MAX_REQUESTS:
            return 400, error_body(400, "* BatchEmbedContentsRequest.requests: at most 100 requests"
                                        " can be in one batch")
        vectors, tokens = [], 0
        for i, request in enumerate(requests):
            if request.get("model") != f"models/{model}":
                return 400, error_body(400, f"requests[{i}].model {request.get('model')!r} must match"
                                            f" the request path model 'models/{model}'.")
            dims = request.get("outputDimensionality", FULL_DIMS)
            if not isinstance(dims, int) or not 128 <= dims <= FULL_DIMS:
                return 400, error_body(400, f"requests[{i}].outputDimensionality must be in 128..3072")
            parts = request.get("content", {}).get("parts") or []
            if not parts:
                return 400, error_body(400, f"requests[{i}].content.parts must not be empty")
            if model in TEXT_ONLY_MODELS and any("text" not in p for p in parts):
                return 400, error_body(400, f"{model} only supports text content.")
            try:
                refusal = check_request_media(parts)
            except (ValueError, KeyError, AttributeError, binascii.Error) as exc:
                refusal = f"invalid part: {exc}"
            if refusal:
                return 400, error_body(400, f"requests[{i}]: {refusal}")
            try:
                vectors.append(expected_vector(parts, dims))
            except (ValueError, binascii.Error) as exc:
                return 400, error_body(400, f"requests[{i}]: invalid part: {exc}")
            tokens += sum(len(p["text"]) // 4 + 1 if "text" in p else 258 for p in parts)
        return 200, {"embeddings": [{"values": v} for v in self._corrupt(vectors, fault.vectors)],
                     "usageMetadata": {"promptTokenCount": tokens, "totalTokenCount": tokens}}

    # -- the Batch API ----------------------------------------------------------------------
    def _create_batch(self, model: str, version: str, body: Any) -> tuple[int, dict]:
        requests = (((body or {}).get("batch") or {}).get("inputConfig") or {}).get("requests", {}).get("requests")
        if not isinstance(requests, list) or not requests:
            return 400, error_body(400, "batch.inputConfig.requests.requests must not be empty")
        # The inner requests carry no `model`: the job's path names it.
        inner = [dict(r.get("request") or {}, model=f"models/{model}") for r in requests]
        status, answer = self._embed(model, version, {"requests": inner}, Fault())
        if status != 200:
            return status, answer
        with self._lock:
            name = f"batches/job{len(self.batch_jobs) + 1}"
            self.batch_jobs[name] = {"model": model, "requests": inner, "embeddings": answer["embeddings"],
                                     "tokens": [sum(len(p["text"]) // 4 + 1 if "text" in p else 258
                                                    for p in r["content"]["parts"]) for r in inner],
                                     "polls": 0}
        return 200, self._operation(name)

    def _poll_batch(self, name: str) -> tuple[int, dict]:
        with self._lock:
            job = self.batch_jobs.get(name)
            if job is None:
                return 404, error_body(404, f"Batch {name} not found.")
            job["polls"] += 1
        return 200, self._operation(name)

    def _operation(self, name: str) -> dict:
        job = self.batch_jobs[name]
        done = job["polls"] >= self.batch_polls
        state = "BATCH_STATE_SUCCEEDED" if done else ("BATCH_STATE_RUNNING" if job["polls"] else "BATCH_STATE_PENDING")
        if done and self.fail_batches:
            return {"name": name, "metadata": {**self._metadata(name, job), "state": "BATCH_STATE_FAILED"},
                    "done": True, "error": {"code": 500, "message": "scripted batch failure"}}
        metadata = {**self._metadata(name, job), "state": state}
        operation: dict = {"name": name, "metadata": metadata}
        if done:
            metadata["output"] = {"inlinedResponses": {"inlinedResponses": [
                {"response": {"embedding": e, "tokenCount": t}, "metadata": {"index": i}}
                for i, (e, t) in enumerate(zip(job["embeddings"], job["tokens"]))]}}
            operation["done"] = True
        return operation

    @staticmethod
    def _metadata(name: str, job: dict) -> dict:
        return {"@type": "type.googleapis.com/google.ai.generativelanguage.v1main.EmbedContentBatch",
                "model": f"models/{job['model']}", "name": name,
                "createTime": "2026-01-01T00:00:00Z", "updateTime": "2026-01-01T00:00:01Z"}

    @staticmethod
    def _corrupt(vectors: list[np.ndarray], kind: str | None) -> list[list]:
        values = [v.tolist() for v in vectors]
        if kind == "nan":
            values[0][0] = "NaN"  # how protobuf JSON spells non-finite floats
        elif kind == "inf":
            values[0][-1] = "Infinity"
        elif kind == "wrong_dims":
            values[0] = values[0][:-1]
        elif kind == "missing":
            values = values[:-1]
        return values

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # keep-alive, as the SDK's pooled client expects

            def _serve(self) -> None:
                with fake._lock:
                    fake._active += 1
                    fake.max_concurrency = max(fake.max_concurrency, fake._active)
                try:
                    raw = self.rfile.read(int(self.headers.get("content-length") or 0))
                    headers = {k.lower(): v for k, v in self.headers.items()}
                    status, payload = fake.answer(self.command, self.path, headers, raw)
                finally:
                    with fake._lock:
                        fake._active -= 1
                data = json.dumps(payload).encode()
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json; charset=UTF-8")
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up (timeout); nothing to answer

            do_POST = do_GET = _serve

            def log_message(self, *args: object) -> None:
                pass

        return Handler
