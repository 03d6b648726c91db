"""Gemini embeddings through the google-genai SDK: one vector per asset, one space for all media.

gemini-embedding-2 takes no task_type, so the task goes into the text (`task_prefixed`); media
carry no prefix unless `prefix_media`. gemini-embedding-001 is text-only and takes task_type.

The SDK merges a plain list of parts into ONE embedding, so every asset is sent as its own
`types.Content`. The SDK does not retry by default; retries live here, with full-jitter backoff,
so that they are counted, bounded and visible to the caller through `EmbeddingError.transient`.
Every HTTP call first asks the circuit breaker (governance/embedding/backends/gemini/breaker.py) and then the quota
(governance/embedding/backends/gemini/quota.py), both shared by all workers; their refusals are transient errors that
end the call at once, so the task retries later instead of spending its time here.
"""
from __future__ import annotations

import importlib
import logging
import random
import threading
import time
from concurrent.futures import FIRST_EXCEPTION, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, replace
from typing import Callable, Sequence

import numpy as np
from google import genai
from google.genai import errors as genai_errors
from google.genai import types

from governance.embedding.backends.gemini.breaker import Breaker
from governance.embedding.backends.gemini.quota import Quota, estimate_tokens
from governance.embedding.protocol import EmbedUsage, EmbeddingError, Limits, Task, UnusableVector, task_prefixed
from governance.ingest.content import Content

log = logging.getLogger(__name__)

MAX_REQUESTS_PER_CALL = 100  # Google rejects larger batchEmbedContents calls with a 400
TRANSIENT_HTTP_CODES = frozenset({408, 429, 500, 502, 503, 504})
# What gemini-embedding-2 accepts inline; anything else would fail the whole batch server-side.
ACCEPTED_MIME = {
    "image": frozenset({"image/png", "image/jpeg"}),
    "audio": frozenset({"audio/mpeg", "audio/mp3", "audio/wav", "audio/x-wav", "audio/wave"}),
    "video": frozenset({"video/mp4", "video/quicktime"}),
    "pdf": frozenset({"application/pdf"}),
}
TASK_TYPE_MODELS = ("gemini-embedding-001", "gemini-embedding-exp", "text-embedding-")
# Per request, from Google's model card; longer content is windowed (governance.embedding.window_embedding).
# Images go one per request, well under the 6 allowed.
MULTIMODAL_LIMITS = Limits(text_tokens=8192, pdf_pages=6, audio_seconds=180, video_seconds=120)
TEXT_ONLY_LIMITS = Limits(text_tokens=2048)


def _transport_errors() -> tuple[tuple[type[BaseException], ...], tuple[type[BaseException], ...]]:
    """The SDK sends through httpx2 or httpx, whichever is installed; each has its own classes.

    Returns (transient, permanent): timeouts and connection failures are worth retrying, a base
    URL with an unsupported scheme is not.
    """
    transient, permanent = [], []
    for name in ("httpx2", "httpx"):
        try:
            module = importlib.import_module(name)
        except ImportError:
            continue
        transient.append(module.TransportError)
        permanent.append(module.UnsupportedProtocol)
    return tuple(transient), tuple(permanent)


TRANSPORT_ERRORS, PERMANENT_TRANSPORT_ERRORS = _transport_errors()


@dataclass
class GeminiUsage:
    """Running totals: `items` successfully embedded; `calls` every HTTP attempt, failed ones too."""

    items: int = 0
    calls: int = 0
    retries: int = 0
    prompt_tokens: int = 0
    total_tokens: int = 0


class GeminiEmbedder:
    reports_usage = True  # embed() fills an EmbedUsage from each answer's usageMetadata
    # A multimodal Gemini embedding already carries the text a picture shows: GOVERNANCE_OCR=auto
    # leaves OCR off for it (governance/moderation/image_text.py).
    reads_text_in_images = True

    def __init__(
        self,
        api_key: str | None = None,
        model: str = "gemini-embedding-2",
        dims: int = 768,
        base_url: str | None = None,
        api_version: str | None = None,
        timeout_s: float = 30,
        max_batch: int = MAX_REQUESTS_PER_CALL,
        max_in_flight: int = 4,
        max_retries: int = 6,
        backoff_base_s: float = 0.5,
        backoff_cap_s: float = 20,
        prefix_media: bool = False,
        before_call: Callable[[int], None] | None = None,
        max_request_bytes: int = 14 * 1024 * 1024,
        max_windows: int = 16,
        sleep: Callable[[float], None] = time.sleep,
        rand: Callable[[], float] = random.random,
        quota: Quota | None = None,
        breaker: Breaker | None = None,
    ):
        if not 128 <= dims <= 3072:
            raise ValueError(f"dims must be in 128..3072, got {dims}")
        if not 1 <= max_batch <= MAX_REQUESTS_PER_CALL:
            raise ValueError(f"max_batch must be in 1..{MAX_REQUESTS_PER_CALL}, got {max_batch}")
        if max_in_flight < 1 or max_retries < 0 or timeout_s <= 0:
            raise ValueError("max_in_flight >= 1, max_retries >= 0 and timeout_s > 0 are required")
        self.model = model
        self.dims = dims
        self.uses_task_type = model.rsplit("/", 1)[-1].startswith(TASK_TYPE_MODELS)
        self.modalities = frozenset({"text"}) if self.uses_task_type else frozenset({"text", *ACCEPTED_MIME})
        self.prefix_media = prefix_media and not self.uses_task_type
        self.limits = replace(TEXT_ONLY_LIMITS if self.uses_task_type else MULTIMODAL_LIMITS, max_windows=max_windows)
        self.prefix_policy = "task_type" if self.uses_task_type else ("text+media" if self.prefix_media else "text")
        # Prefixed and unprefixed media vectors differ, so the policy is part of the vector space's name.
        self.model_id = f"{model}@{dims}" + ("+media-prefix" if self.prefix_media else "")
        self.max_batch = max_batch
        self.max_in_flight = max_in_flight
        self.max_retries = max_retries
        self.backoff_base_s = backoff_base_s
        self.backoff_cap_s = backoff_cap_s
        self.before_call = before_call
        self.max_request_bytes = max_request_bytes
        self.usage = GeminiUsage()
        self.quota = quota
        self.breaker = breaker
        self._sleep = sleep
        self._rand = rand
        self._usage_lock = threading.Lock()
        # Bounds HTTP calls across concurrent embed() calls on this embedder, not only within one.
        self._in_flight = threading.BoundedSemaphore(max_in_flight)
        # base_url/api_version left None fall back to GOOGLE_GEMINI_BASE_URL/GOOGLE_GENAI_API_VERSION
        # inside the SDK, and a None key to GOOGLE_API_KEY/GEMINI_API_KEY. vertexai=False so that a
        # stray GOOGLE_GENAI_USE_VERTEXAI cannot silently switch endpoints, auth and wire format.
        http_options = types.HttpOptions(base_url=base_url, api_version=api_version,
                                         timeout=int(timeout_s * 1000))
        self._client = genai.Client(vertexai=False, api_key=api_key, http_options=http_options)
        resolved_key = getattr(self._client._api_client, "api_key", None) or api_key
        self._secrets = tuple(s for s in {resolved_key, api_key} if s)

    def close(self) -> None:
        self._client.close()

    def task_key(self, task: Task, modality: str) -> str:
        # Only prefixed parts differ by task; unprefixed media give one vector for every task.
        if modality == "text" or self.prefix_media or self.uses_task_type:
            return task.value
        return "any"

    def embed(self, items: Sequence[Content], task: Task, usage: EmbedUsage | None = None) -> np.ndarray:
        """One vector per item; `usage`, when given, receives this call's successful calls and tokens."""
        # Validate everything before the first call: one bad item would fail a whole batch remotely.
        contents = [self._to_content(i, item, task) for i, item in enumerate(items)]
        out = np.zeros((len(items), self.dims), dtype=np.float32)
        if not contents:
            return out
        config = types.EmbedContentConfig(
            output_dimensionality=self.dims,
            task_type=task.name if self.uses_task_type else None,
        )
        spans = self._spans(items)
        abort = threading.Event()
        usage = usage if usage is not None else EmbedUsage()
        if len(spans) == 1:
            out[:] = self._embed_span(contents, config, 0, abort, usage)
        else:
            self._embed_parallel(contents, config, spans, abort, out, usage)
        with self._usage_lock:
            self.usage.items += len(items)
        return out

    # -- building requests ------------------------------------------------------------------
    def _to_content(self, index: int, item: Content, task: Task) -> types.Content:
        if item.modality not in self.modalities:
            raise EmbeddingError(f"unsupported_modality: {self.model_id} does not embed {item.modality}"
                                 f" (item {index})")
        if item.modality == "text":
            if item.text is None or (self.uses_task_type and not item.text):
                raise EmbeddingError(f"invalid_input: item {index} is text without text")
            text = item.text if self.uses_task_type else task_prefixed(task, item.text)
            return types.Content(parts=[types.Part(text=text)])
        mime = item.mime_type.split(";")[0].strip().lower()
        if mime not in ACCEPTED_MIME[item.modality]:
            raise EmbeddingError(f"unsupported_mime: {self.model_id} does not embed {mime} as"
                                 f" {item.modality} (item {index})")
        if not item.data:
            raise EmbeddingError(f"invalid_input: item {index} has no bytes")
        parts = [types.Part.from_bytes(data=item.data, mime_type=mime)]
        if self.prefix_media:
            parts.insert(0, types.Part(text=task_prefixed(task, "")))
        return types.Content(parts=parts)

    def _spans(self, items: Sequence[Content]) -> list[tuple[int, int]]:
        """Split into calls of at most max_batch requests and about max_request_bytes on the wire."""
        spans, start, size = [], 0, 0
        for i, item in enumerate(items):
            # base64 inflates bytes by 4/3; the constant covers the JSON around each request.
            cost = 256 + (len(item.data) * 4 // 3 if item.data else len((item.text or "").encode()))
            if i > start and (i - start >= self.max_batch or size + cost > self.max_request_bytes):
                spans.append((start, i))
                start, size = i, 0
            size += cost
        spans.append((start, len(items)))
        return spans

    # -- calling ----------------------------------------------------------------------------
    def _embed_parallel(self, contents: list, config: types.EmbedContentConfig,
                        spans: list[tuple[int, int]], abort: threading.Event, out: np.ndarray,
                        usage: EmbedUsage) -> None:
        workers = min(self.max_in_flight, len(spans))
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="gemini-embed") as pool:
            futures: dict[Future, tuple[int, int]] = {
                pool.submit(self._embed_span, contents[a:b], config, a, abort, usage): (a, b) for a, b in spans
            }
            done, pending = wait(futures, return_when=FIRST_EXCEPTION)
            failures = [f.exception() for f in done if f.exception() is not None]
            if failures:
                abort.set()  # stops sibling spans from starting new attempts
                for future in pending:
                    future.cancel()
                # A permanent failure decides the outcome: retrying the whole call would not help.
                raise next((e for e in failures if not getattr(e, "transient", False)), failures[0])
            for future, (a, b) in futures.items():
                out[a:b] = future.result()

    def _embed_span(self, contents: list, config: types.EmbedContentConfig, offset: int,
                    abort: threading.Event, usage: EmbedUsage) -> np.ndarray:
        attempt = 0
        while True:
            try:
                response = self._call(contents, config)
            except Exception as exc:  # noqa: BLE001 - unknown errors are re-raised untouched
                error = self._classify(exc)
                if error is None:
                    raise
                if not error.transient or attempt >= self.max_retries or abort.is_set():
                    if error.transient and attempt:
                        error = EmbeddingError(f"{error} (gave up after {attempt} retries)", transient=True)
                    # No chaining: the SDK's exception text is not scrubbed of secrets.
                    raise error from None
                delay = self._backoff_delay(attempt, exc)
                attempt += 1
                with self._usage_lock:
                    self.usage.retries += 1
                log.warning("gemini embed retry %d/%d in %.2fs: %s", attempt, self.max_retries, delay, error)
                self._sleep(delay)
                continue
            vectors = self._vectors(response, len(contents), offset)
            self._count_usage(usage, response, contents)
            return vectors

    def _count_usage(self, usage: EmbedUsage, response: types.EmbedContentResponse, contents: list) -> None:
        """Add one answered call; without usageMetadata, the quota's conservative estimate stands in."""
        tokens = response.usage_metadata.prompt_token_count if response.usage_metadata else None
        with self._usage_lock:
            usage.calls += 1
            if tokens is None:
                usage.estimated = True
                tokens = _token_estimate(contents)
            usage.prompt_tokens += tokens

    def _call(self, contents: list, config: types.EmbedContentConfig) -> types.EmbedContentResponse:
        if self.breaker is not None:
            self.breaker.before_call()
        estimate = _token_estimate(contents) if self.quota is not None else 0
        with self._in_flight:
            if self.quota is not None:  # inside the semaphore: an admitted call goes out at once
                self.quota.acquire(len(contents), estimate)
            if self.before_call is not None:
                self.before_call(len(contents))
            with self._usage_lock:
                self.usage.calls += 1
            try:
                response = self._client.models.embed_content(model=self.model, contents=contents, config=config)
            except Exception as exc:
                if self.breaker is not None and _counts_against_breaker(self._classify(exc), exc):
                    self.breaker.record_failure()
                if self.quota is not None and getattr(exc, "code", None) == 429:
                    self.quota.pause(_retry_delay_hint(exc) or self.backoff_base_s)
                raise
        if self.breaker is not None:
            self.breaker.record_success()
        meta = response.usage_metadata
        if meta is not None:
            with self._usage_lock:
                self.usage.prompt_tokens += meta.prompt_token_count or 0
                self.usage.total_tokens += meta.total_token_count or 0
            if self.quota is not None and meta.total_token_count:
                self.quota.settle(estimate, meta.total_token_count)
        return response

    def _classify(self, exc: Exception) -> EmbeddingError | None:
        if isinstance(exc, genai_errors.APIError):
            message = f"gemini_http_{exc.code}: {exc.status} {exc.message}"
            return EmbeddingError(self._scrub(message), transient=exc.code in TRANSIENT_HTTP_CODES)
        if isinstance(exc, TRANSPORT_ERRORS):
            kind = "timeout" if "Timeout" in type(exc).__name__ else "connection"
            message = f"gemini_{kind}: {type(exc).__name__}: {exc}"
            return EmbeddingError(self._scrub(message), transient=not isinstance(exc, PERMANENT_TRANSPORT_ERRORS))
        return None

    def _backoff_delay(self, attempt: int, exc: Exception) -> float:
        """Full jitter, raised to the server's RetryInfo hint when it gives one (capped)."""
        delay = self._rand() * min(self.backoff_cap_s, self.backoff_base_s * 2**attempt)
        hint = _retry_delay_hint(exc)
        return max(delay, min(hint, self.backoff_cap_s)) if hint else delay

    def _scrub(self, text: str) -> str:
        for secret in self._secrets:
            text = text.replace(secret, "***")
        return text

    # -- checking answers -------------------------------------------------------------------
    def _vectors(self, response: types.EmbedContentResponse, expected: int, offset: int) -> np.ndarray:
        embeddings = response.embeddings or []
        if len(embeddings) != expected:
            raise UnusableVector(f"invalid_embedding: asked for {expected} vectors (items {offset}.."
                                 f"{offset + expected - 1}), got {len(embeddings)}")
        for i, embedding in enumerate(embeddings):
            length = len(embedding.values or [])
            if length != self.dims:
                raise UnusableVector(f"invalid_embedding: item {offset + i} has {length} dims,"
                                     f" expected {self.dims}")
        # float64 so that large components cannot overflow while computing the norm.
        matrix = np.asarray([e.values for e in embeddings], dtype=np.float64)
        finite = np.isfinite(matrix).all(axis=1)
        if not finite.all():
            raise UnusableVector(f"invalid_embedding: item {offset + int(np.argmin(finite))} has"
                                 " NaN or Inf values")
        norms = np.linalg.norm(matrix, axis=1, keepdims=True)
        if (norms == 0).any():
            raise UnusableVector(f"invalid_embedding: item {offset + int(np.argmin(norms))} is all zeros")
        # Below 3,072 dims Matryoshka truncations are not unit length; cosine search needs them to be.
        return (matrix / norms).astype(np.float32)


def _counts_against_breaker(error: EmbeddingError | None, exc: Exception) -> bool:
    """Outages count; a 429 is the quota's business and permanent errors are the request's."""
    return error is not None and error.transient and getattr(exc, "code", None) != 429


def _token_estimate(contents: list[types.Content]) -> int:
    parts = [p for c in contents for p in (c.parts or [])]
    return estimate_tokens([p.text for p in parts if p.text is not None],
                           [p.inline_data.mime_type or "" for p in parts if p.inline_data is not None])


def _retry_delay_hint(exc: Exception) -> float | None:
    """Seconds from a google.rpc.RetryInfo detail (e.g. "retryDelay": "13s"), if present."""
    details = getattr(exc, "details", None)
    if not isinstance(details, dict):
        return None
    for detail in details.get("error", {}).get("details", None) or []:
        if isinstance(detail, dict) and str(detail.get("@type", "")).endswith("google.rpc.RetryInfo"):
            try:
                return float(str(detail.get("retryDelay", "")).rstrip("s"))
            except ValueError:
                return None
    return None
