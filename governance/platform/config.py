"""One typed settings object, read from the environment.

Secrets (the Gemini key, webhook secret) are read here and nowhere else; they never travel in
task arguments and are masked in `Settings.__repr__`.
"""
from __future__ import annotations

import ipaddress
import os
from dataclasses import dataclass, field, fields
from pathlib import Path

import platformdirs


def _env(name: str, default: str | None = None) -> str | None:
    value = os.environ.get(name)
    return value if value not in (None, "") else default


def _int(name: str, default: int) -> int:
    return int(_env(name, str(default)))


def _float(name: str, default: float) -> float:
    return float(_env(name, str(default)))


def _prices(name: str) -> dict[str, float]:
    """`model=USD per 1M input tokens` pairs, comma-separated (see governance/embedding/usage.py)."""
    prices = {}
    for pair in (_env(name, "") or "").split(","):
        if pair.strip():
            model, _, price = pair.partition("=")
            prices[model.strip()] = float(price)
    return prices


def _paths(name: str) -> tuple[Path, ...]:
    raw = _env(name, "") or ""
    return tuple(Path(p).resolve() for p in raw.split(":") if p)


def _networks(name: str) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
    raw = _env(name, "") or ""
    return tuple(ipaddress.ip_network(cidr.strip(), strict=False) for cidr in raw.split(",") if cidr.strip())


def _nameservers(name: str) -> tuple[tuple[str, int], ...]:
    """`address[:port]` entries, comma-separated; IPv6 addresses in brackets when a port follows."""
    servers = []
    for entry in (_env(name, "") or "").split(","):
        entry = entry.strip()
        if not entry:
            continue
        host, port = entry, 53
        if entry.startswith("["):
            host, _, rest = entry[1:].partition("]")
            port = int(rest[1:]) if rest.startswith(":") else 53
        elif entry.count(":") == 1:
            host, port = entry.split(":")[0], int(entry.split(":")[1])
        servers.append((str(ipaddress.ip_address(host)), port))
    return tuple(servers)


# The offline embedder's text encoders. The default is the one `make bench` measured faster on one
# core (its "offline text, int8 ONNX" row prints both rates and this choice: onnx 1.52x numpy).
TEXT_BACKENDS = ("numpy", "onnx")
DEFAULT_TEXT_BACKEND = "onnx"


OCR_MODES = ("auto", "on", "off")


def _ocr_mode(name: str) -> str:
    value = (_env(name, "auto") or "auto").lower()
    if value not in OCR_MODES:
        raise ValueError(f"{name} must be one of {', '.join(OCR_MODES)}, got {value!r}")
    return value


def _text_backend(name: str) -> str:
    value = _env(name, DEFAULT_TEXT_BACKEND)
    if value not in TEXT_BACKENDS:
        raise ValueError(f"{name} must be one of {', '.join(TEXT_BACKENDS)}, got {value!r}")
    return value


@dataclass(frozen=True)
class Settings:
    database_url: str | None
    broker_url: str | None
    data_dir: Path
    embedder: str
    embedding_dims: int
    embedder_threads: int | None
    text_backend: str
    sentence_model_path: Path | None
    file_roots: tuple[Path, ...]
    max_bytes: int
    max_text_chars: int
    max_image_pixels: int
    max_upload_memory_mb: int
    max_media_seconds: float
    max_windows: int
    ocr: str  # auto|on|off: reading the text inside images (governance/ingest/ocr.py)
    ocr_min_confidence: float
    ocr_seconds: float
    http_timeout_s: float
    fetch_deadline_s: float
    fetch_allow_cidrs: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]
    fetch_nameservers: tuple[tuple[str, int], ...]
    anomaly_quantile: float
    max_attempts: int
    upload_batch_size: int
    knn_ef_search: int
    knn_iterative_scan: str
    knn_cache_vectors: int
    reconcile_after_s: int
    reconcile_interval_s: float
    beat_stale_s: float
    cluster_window_days: int
    cluster_interval_s: int
    cluster_min_size: int
    cluster_sample: int
    cluster_max_rows: int
    webhook_url: str | None
    webhook_allow_private: bool
    decision_queue: str | None
    uploads_queue: str  # the broker queues the worker's tasks go to (worker/app.py routes them)
    maintenance_queue: str
    embed_queue: str | None  # set: uploads are embedded by governance.embed_uploads on this queue first
    gemini_model: str
    gemini_base_url: str | None
    gemini_api_version: str | None
    gemini_timeout_s: float
    gemini_max_in_flight: int
    gemini_max_retries: int
    gemini_prefix_media: bool
    embedding_prices: dict[str, float]  # overrides of governance/embedding/usage.py PRICES_PER_MILLION
    gemini_backoff_cap_s: float
    gemini_rpm: int
    gemini_tpm: int
    gemini_quota_burst_s: float
    gemini_quota_max_wait_s: float
    gemini_breaker_failures: int
    gemini_breaker_cooldown_s: float
    # The worker layer's own settings (worker/).
    task_soft_time_limit_s: int
    metrics_port: int | None  # None: no metrics endpoint
    metrics_addr: str
    log_format: str  # "json" or "text"
    alert_window_s: int
    alert_min_interval_s: int
    alert_settle_s: int
    alert_top: int
    test_crash: str | None
    test_crash_dir: Path | None
    # The HTTP API (web/).
    api_max_body_bytes: int
    api_max_events: int
    api_rate_per_minute: int  # per key; 0: no limit
    api_rate_burst_s: float
    # The review console (web/console/, governance/moderation/review_queue.py).
    console_url: str  # where reviewers reach `governance serve`: the base of `console-link` URLs
    console_lease_s: int
    console_session_s: int
    review_second_share: float  # of console decisions, sampled for a blind second review; 0: none
    quota_redis_url: str | None = field(repr=False)  # may carry a password
    gemini_api_key: str | None = field(repr=False)
    webhook_secret: str | None = field(repr=False)

    @classmethod
    def from_env(cls) -> "Settings":
        return cls(
            database_url=_env("DATABASE_URL"),
            broker_url=_env("CELERY_BROKER_URL"),
            data_dir=Path(_env("GOVERNANCE_DATA_DIR", platformdirs.user_data_dir("governance"))),
            embedder=_env("GOVERNANCE_EMBEDDER", "auto"),
            embedding_dims=_int("GOVERNANCE_EMBEDDING_DIMS", 768),
            # One BLAS thread per process: worker processes already use every core, and
            # oversubscribed BLAS threads spin-wait (measured up to 3x slower on 2 cores).
            embedder_threads=int(_env("GOVERNANCE_EMBEDDER_THREADS", "1")) or None,
            text_backend=_text_backend("GOVERNANCE_TEXT_BACKEND"),
            sentence_model_path=Path(p) if (p := _env("GOVERNANCE_SENTENCE_MODEL_PATH")) else None,
            file_roots=_paths("GOVERNANCE_FILE_ROOTS"),
            max_bytes=_int("GOVERNANCE_MAX_BYTES", 20 * 1024 * 1024),
            max_text_chars=_int("GOVERNANCE_MAX_TEXT_CHARS", 100_000),
            max_image_pixels=_int("GOVERNANCE_MAX_IMAGE_PIXELS", 40_000_000),
            # What decoding one image or video may cost a worker child; larger pictures are too_large
            # before their pixels are decoded (governance/ingest/media.py sizes the limits from it).
            max_upload_memory_mb=_int("GOVERNANCE_MAX_UPLOAD_MEMORY_MB", 512),
            # Audio and video longer than this are rejected before decoding further (a small file
            # of silence can decode to hours); windows per asset are capped separately.
            max_media_seconds=_float("GOVERNANCE_MAX_MEDIA_SECONDS", 3600.0),
            max_windows=_int("GOVERNANCE_MAX_WINDOWS", 16),
            # auto: OCR for embedders that do not read the text in a picture themselves (Gemini does).
            ocr=_ocr_mode("GOVERNANCE_OCR"),
            # Lines the recogniser is less sure of are dropped (its scores on stray marks in photos
            # and clipart measured 0.55-0.85, on rendered text 0.97-1.0).
            ocr_min_confidence=_float("GOVERNANCE_OCR_MIN_CONFIDENCE", 0.9),
            # As PDF parsing: a crafted picture (thousands of tiny glyphs) must not hold a worker child.
            ocr_seconds=_float("GOVERNANCE_OCR_SECONDS", 10.0),
            http_timeout_s=_float("GOVERNANCE_HTTP_TIMEOUT_S", 10.0),
            # The whole of one http(s) fetch, redirects included: a per-read timeout alone lets a
            # source that drips one byte at a time hold a worker child indefinitely.
            fetch_deadline_s=_float("GOVERNANCE_FETCH_DEADLINE_S", 10.0),
            # Non-public ranges the fetcher may reach anyway; for development against local servers.
            fetch_allow_cidrs=_networks("GOVERNANCE_FETCH_ALLOW_CIDRS"),
            # Resolvers the fetcher asks instead of the system's (e.g. a filtering one); empty: the system's.
            fetch_nameservers=_nameservers("GOVERNANCE_FETCH_NAMESERVERS"),
            anomaly_quantile=_float("GOVERNANCE_ANOMALY_QUANTILE", 0.95),
            max_attempts=_int("GOVERNANCE_MAX_ATTEMPTS", 5),
            # Events per governance.process_uploads message from `publish` and the reconciler.
            upload_batch_size=max(1, _int("GOVERNANCE_UPLOAD_BATCH_SIZE", 100)),
            # Set per kNN transaction. On the m=24 graph (migration 0013) 500 reaches recall@10 0.998
            # at 1M and 0.994 for a tenant holding a tenth of a shared graph, where 200 gives 0.971
            # (README, kNN index choice); pgvector's own default of 40 reaches far less.
            knn_ef_search=_int("GOVERNANCE_KNN_EF_SEARCH", 500),
            knn_iterative_scan=_env("GOVERNANCE_KNN_ITERATIVE_SCAN", "relaxed_order"),
            # Exemplar vectors a process holds for exact in-process kNN (knn_cache.py); 0: always HNSW.
            knn_cache_vectors=_int("GOVERNANCE_KNN_CACHE_VECTORS", 5000),
            reconcile_after_s=_int("GOVERNANCE_RECONCILE_AFTER_S", 300),
            # Every pass also checks whether the broker lost its state (governance/platform/broker_state.py):
            # this interval bounds how long a Redis restart leaves lost messages unnoticed.
            reconcile_interval_s=_float("GOVERNANCE_RECONCILE_INTERVAL_S", 5.0),
            # `governance health` calls the beat dead when the reconciler's last pass is older.
            beat_stale_s=_float("GOVERNANCE_BEAT_STALE_S", 60.0),
            cluster_window_days=_int("GOVERNANCE_CLUSTER_WINDOW_DAYS", 7),
            cluster_interval_s=_int("GOVERNANCE_CLUSTER_INTERVAL_S", 3600),
            cluster_min_size=_int("GOVERNANCE_CLUSTER_MIN_SIZE", 8),
            cluster_sample=_int("GOVERNANCE_CLUSTER_SAMPLE", 20_000),
            cluster_max_rows=_int("GOVERNANCE_CLUSTER_MAX_ROWS", 1_000_000),
            webhook_url=_env("GOVERNANCE_WEBHOOK_URL"),
            # Tenant webhook subscriptions may name loopback, private and link-local receivers: for tests
            # and local development only (a subscription URL is tenant input, like an upload URL).
            webhook_allow_private=_env("GOVERNANCE_WEBHOOK_ALLOW_PRIVATE", "0") in ("1", "true", "yes"),
            decision_queue=_env("GOVERNANCE_DECISION_QUEUE"),
            uploads_queue=_env("GOVERNANCE_UPLOADS_QUEUE", "governance.uploads"),
            maintenance_queue=_env("GOVERNANCE_MAINTENANCE_QUEUE", "governance.maintenance"),
            # Off by default: the upload task embeds and decides, as before. Set, embedding-bound and
            # database-bound work wait on separate queues and scale apart (README, Scaling).
            embed_queue=_env("GOVERNANCE_EMBED_QUEUE"),
            gemini_model=_env("GOVERNANCE_GEMINI_MODEL", "gemini-embedding-2"),
            gemini_base_url=_env("GOOGLE_GEMINI_BASE_URL"),
            gemini_api_version=_env("GOOGLE_GENAI_API_VERSION"),
            # Timeouts, retries, backoff cap and quota wait together must end inside the task's soft
            # time limit: governance/embedding/backends/gemini/retry_budget.py computes the worst case, tests/unit checks it.
            gemini_timeout_s=_float("GOVERNANCE_GEMINI_TIMEOUT_S", 20.0),
            gemini_max_in_flight=_int("GOVERNANCE_GEMINI_MAX_IN_FLIGHT", 4),
            # Few in-call retries: the task itself retries with backoff, and the two multiply.
            gemini_max_retries=_int("GOVERNANCE_GEMINI_MAX_RETRIES", 3),
            gemini_prefix_media=_env("GOVERNANCE_GEMINI_PREFIX_MEDIA", "0") in ("1", "true", "yes"),
            embedding_prices=_prices("GOVERNANCE_EMBEDDING_PRICES"),
            gemini_backoff_cap_s=_float("GOVERNANCE_GEMINI_BACKOFF_CAP_S", 8.0),
            gemini_rpm=_int("GOVERNANCE_GEMINI_RPM", 0),
            gemini_tpm=_int("GOVERNANCE_GEMINI_TPM", 0),
            gemini_quota_burst_s=_float("GOVERNANCE_GEMINI_QUOTA_BURST_S", 1.0),
            gemini_quota_max_wait_s=_float("GOVERNANCE_GEMINI_QUOTA_MAX_WAIT_S", 5.0),
            gemini_breaker_failures=_int("GOVERNANCE_GEMINI_BREAKER_FAILURES", 10),
            gemini_breaker_cooldown_s=_float("GOVERNANCE_GEMINI_BREAKER_COOLDOWN_S", 30.0),
            task_soft_time_limit_s=int(_env("GOVERNANCE_TASK_SOFT_TIME_LIMIT_S") or 300),
            metrics_port=int(port) if (port := _env("GOVERNANCE_METRICS_PORT")) else None,
            metrics_addr=_env("GOVERNANCE_METRICS_ADDR", "0.0.0.0"),
            log_format=_env("GOVERNANCE_LOG_FORMAT", "json"),
            # Anomaly alerts (governance/delivery/alerts.py): window, rate limit, settling time, examples.
            alert_window_s=_int("GOVERNANCE_ALERT_WINDOW_S", 300),
            alert_min_interval_s=_int("GOVERNANCE_ALERT_MIN_INTERVAL_S", 900),
            alert_settle_s=_int("GOVERNANCE_ALERT_SETTLE_S", 30),
            alert_top=_int("GOVERNANCE_ALERT_TOP", 5),
            # The crash tests' fault-injection rules (governance/platform/faults.py); unset in production.
            test_crash=_env("GOVERNANCE_TEST_CRASH"),
            test_crash_dir=Path(p) if (p := _env("GOVERNANCE_TEST_CRASH_DIR")) else None,
            # A JSON or NDJSON body of POST /v1/events; bytes go through the streamed POST /v1/assets.
            api_max_body_bytes=_int("GOVERNANCE_API_MAX_BODY_BYTES", 8 * 1024 * 1024),
            api_max_events=_int("GOVERNANCE_API_MAX_EVENTS", 1000),
            # Requests per minute per key, a token bucket in Redis shared by every API process.
            api_rate_per_minute=_int("GOVERNANCE_API_RATE_PER_MINUTE", 6000),
            api_rate_burst_s=_float("GOVERNANCE_API_RATE_BURST_S", 10.0),
            console_url=_env("GOVERNANCE_CONSOLE_URL", "http://127.0.0.1:8000"),
            # How long opening an item keeps it from other reviewers (renewed while the page is open).
            console_lease_s=max(1, _int("GOVERNANCE_CONSOLE_LEASE_S", 600)),
            console_session_s=max(60, _int("GOVERNANCE_CONSOLE_SESSION_S", 12 * 3600)),
            # The share of a reviewer's console decisions that goes blind to a second reviewer (quality page).
            review_second_share=min(1.0, max(0.0, _float("GOVERNANCE_REVIEW_SECOND_SHARE", 0.1))),
            quota_redis_url=_env("GOVERNANCE_QUOTA_REDIS_URL") or _env("CELERY_BROKER_URL"),
            gemini_api_key=_env("GEMINI_API_KEY") or _env("GOOGLE_API_KEY"),
            webhook_secret=_env("GOVERNANCE_WEBHOOK_SECRET"),
        )

    def describe(self) -> dict[str, str]:
        """Settings safe to print: secrets are reported as set or not, never shown."""
        out = {}
        for f in fields(self):
            value = getattr(self, f.name)
            out[f.name] = ("<set>" if value else "<unset>") if not f.repr else str(value)
        return out
