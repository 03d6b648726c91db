"""Prometheus metrics: defined and served here, recorded by the worker layer. No Celery imports.

Off unless the worker layer calls `configure` (it does when `GOVERNANCE_METRICS_PORT` is set);
until then every recording function is a no-op and `prometheus_client` is not even imported.

Celery's prefork children are separate processes, so this uses prometheus_client's multiprocess
mode: `configure` runs in the worker's main process before the pool forks, points
`PROMETHEUS_MULTIPROC_DIR` at a fresh folder of that worker, and every child writes its samples
to files there. `serve` exposes the sum over all children (dead ones included, so counters never
go backwards when a child is replaced) plus gauges read from the database and broker at scrape time.
"""
from __future__ import annotations

import logging
import os
import shutil
from pathlib import Path
from typing import Callable

log = logging.getLogger(__name__)

LATENCY_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300)
SCRAPE_GAUGES = {  # read at scrape time, from the database and the broker
    "outbox_backlog": "Outbox messages not yet delivered",
    "dead_letters": "Rows in the dead-letter table",
    "pending_events": "Accepted events with neither a decision nor a dead letter yet",
    "last_reconcile_age_seconds": "Seconds since the reconciler's last pass (absent: none on this broker yet)",
}

_metrics: dict | None = None


def enabled() -> bool:
    return _metrics is not None


def configure(multiproc_dir: Path) -> None:
    """Main process only, before any child is forked: enable multiprocess mode and define metrics."""
    global _metrics
    if _metrics is not None:
        return
    shutil.rmtree(multiproc_dir, ignore_errors=True)  # samples of an earlier run of this worker
    multiproc_dir.mkdir(parents=True)
    # prometheus_client picks its value class from this variable when it is first imported.
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(multiproc_dir)
    from prometheus_client import Counter, Histogram

    _metrics = {
        "events": Counter("governance_events", "Upload deliveries by outcome", ["outcome"]),
        "decisions": Counter("governance_decisions", "Decisions written, by action", ["action"]),
        "decision_seconds": Histogram("governance_decision_seconds",
                                      "Processing time of the deliveries that wrote a decision",
                                      buckets=LATENCY_BUCKETS),
        "embedding_calls": Counter("governance_embedding_calls", "Embedder calls by model and outcome",
                                   ["model", "outcome"]),
        "embedding_items": Counter("governance_embedding_items", "Assets sent to the embedder", ["model"]),
        "embedding_seconds": Histogram("governance_embedding_seconds", "Embedder call duration", ["model"],
                                       buckets=LATENCY_BUCKETS),
        "retries": Counter("governance_task_retries", "Task retries by reason", ["reason"]),
        "errors": Counter("governance_task_errors", "Task failures by task and exception type",
                          ["task", "error"]),
        "dead_letters": Counter("governance_dead_letters", "Events dead-lettered, by reason", ["reason"]),
        "outbox": Counter("governance_outbox_deliveries", "Outbox delivery attempts by result", ["result"]),
        "webhooks": Counter("governance_webhook_deliveries", "Tenant webhook deliveries by result", ["result"]),
    }


def serve(port: int, addr: str = "0.0.0.0", gauges: Callable[[], dict[str, float]] | None = None):
    """Main process: serve the children's summed samples, plus `gauges()` read at scrape time."""
    from prometheus_client import CollectorRegistry, start_http_server
    from prometheus_client.multiprocess import MultiProcessCollector

    registry = CollectorRegistry()
    MultiProcessCollector(registry)

    if gauges is not None:
        registry.register(_scrape_gauges(gauges))
    return start_http_server(port, addr=addr, registry=registry)


def _scrape_gauges(gauges: Callable[[], dict[str, float]]):
    from prometheus_client.core import GaugeMetricFamily

    class ScrapeGauges:
        def collect(self):
            try:
                values = gauges()
            except Exception as exc:  # noqa: BLE001 - a scrape must not fail with the database
                log.warning("metrics: database gauges unavailable: %s", type(exc).__name__)
                return
            for name, help_text in SCRAPE_GAUGES.items():
                if name in values:
                    yield GaugeMetricFamily(f"governance_{name}", help_text, value=float(values[name]))

    return ScrapeGauges()


class HttpMetrics:
    """The HTTP API's own metrics (one process, so no multiprocess files): requests by route and
    status, their latency, and the same scrape-time gauges the worker's endpoint serves."""

    def __init__(self, gauges: Callable[[], dict[str, float]] | None = None):
        from prometheus_client import CollectorRegistry, Counter, Histogram

        self.registry = CollectorRegistry()
        self._requests = Counter("governance_api_requests", "HTTP API requests by method, route and status",
                                 ["method", "route", "status"], registry=self.registry)
        self._seconds = Histogram("governance_api_request_seconds", "HTTP API request duration by route",
                                  ["route"], buckets=LATENCY_BUCKETS, registry=self.registry)
        self._events = Counter("governance_api_events", "Events through the HTTP API by outcome",
                               ["outcome"], registry=self.registry)
        if gauges is not None:
            self.registry.register(_scrape_gauges(gauges))

    def request(self, method: str, route: str, status: int, seconds: float) -> None:
        self._requests.labels(method, route, str(status)).inc()
        self._seconds.labels(route).observe(seconds)

    def events(self, outcome: str, count: int) -> None:
        if count:
            self._events.labels(outcome).inc(count)

    def exposition(self) -> tuple[bytes, str]:
        from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

        return generate_latest(self.registry), CONTENT_TYPE_LATEST


def child_exited(pid: int) -> None:
    if _metrics is not None:
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(pid)


def shutdown(multiproc_dir: Path) -> None:
    shutil.rmtree(multiproc_dir, ignore_errors=True)


# --- recording (no-ops unless configured) ---------------------------------------------------------

def event_outcome(outcome: str) -> None:
    if _metrics is not None:
        _metrics["events"].labels(outcome).inc()


def decision(action: str, seconds: float) -> None:
    if _metrics is not None:
        _metrics["decisions"].labels(action).inc()
        _metrics["decision_seconds"].observe(seconds)


def embedding_call(model: str, items: int, seconds: float, outcome: str = "ok") -> None:
    if _metrics is not None:
        _metrics["embedding_calls"].labels(model, outcome).inc()
        _metrics["embedding_seconds"].labels(model).observe(seconds)
        if outcome == "ok":
            _metrics["embedding_items"].labels(model).inc(items)


def task_retry(reason: str) -> None:
    if _metrics is not None:
        _metrics["retries"].labels(reason).inc()


def task_error(task: str, error: str) -> None:
    if _metrics is not None:
        _metrics["errors"].labels(task, error).inc()


def dead_letter(reason: str) -> None:
    if _metrics is not None:
        _metrics["dead_letters"].labels(reason).inc()


def outbox_relayed(delivered: int, failed: int) -> None:
    if _metrics is not None:
        if delivered:
            _metrics["outbox"].labels("delivered").inc(delivered)
        if failed:
            _metrics["outbox"].labels("failed").inc(failed)


def webhooks_delivered(delivered: int, failed: int) -> None:
    if _metrics is not None:
        if delivered:
            _metrics["webhooks"].labels("delivered").inc(delivered)
        if failed:
            _metrics["webhooks"].labels("failed").inc(failed)
