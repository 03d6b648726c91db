"""The Celery app: JSON only, late acks, one message in flight per process, queues by role."""
from __future__ import annotations

from celery import Celery, signals
from kombu import Queue

from governance.platform.config import Settings
from governance.storage.db import dispose_engines
from worker import beat_watch, kombu_quirks

kombu_quirks.install()

UPLOADS_QUEUE = "governance.uploads"
MAINTENANCE_QUEUE = "governance.maintenance"
DEFAULT_DECISION_QUEUE = "governance.decisions"
# Retry countdowns and task time limits stay far below this (governance/embedding/backends/gemini/retry_budget.py), so a
# message waiting for its retry or still being worked on is never redelivered early.
VISIBILITY_TIMEOUT_S = 3600


def resolve_broker_url(settings: Settings) -> str:
    if settings.broker_url:
        return settings.broker_url
    from governance.platform.embedded_servers import ensure_redis

    return ensure_redis(settings.data_dir)


def broker_ssl_options(broker_url: str) -> dict | bool:
    """For `rediss://`: verify the server's certificate (against the system's CAs unless the URL
    names `ssl_ca_certs`). Without ssl options kombu would connect unverified; `ssl_*` options in
    the URL replace these."""
    import ssl

    return {"ssl_cert_reqs": ssl.CERT_REQUIRED} if broker_url.startswith("rediss://") else False


def create_app(settings: Settings | None = None) -> Celery:
    settings = settings or Settings.from_env()
    broker_url = resolve_broker_url(settings)
    app = Celery("governance", broker=broker_url, include=["worker.tasks"])
    app.conf.update(
        broker_use_ssl=broker_ssl_options(broker_url),
        task_serializer="json",
        result_serializer="json",
        event_serializer="json",
        accept_content=["json"],
        result_accept_content=["json"],
        task_ignore_result=True,
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        task_default_queue=UPLOADS_QUEUE,
        task_queues=[Queue(UPLOADS_QUEUE), Queue(MAINTENANCE_QUEUE)],
        task_routes={
            "governance.process_upload": {"queue": UPLOADS_QUEUE},
            "governance.process_uploads": {"queue": UPLOADS_QUEUE},
            "governance.*": {"queue": MAINTENANCE_QUEUE},
        },
        broker_transport_options={"visibility_timeout": VISIBILITY_TIMEOUT_S},
        broker_connection_retry_on_startup=True,
        worker_hijack_root_logger=False,
        # A new pool child builds its embedder before it reports up (signals below): loading MiniLM or
        # importing scikit-learn took 3-5 s on a loaded 2-core machine, past billiard's 4 s default,
        # and a child killed for it is replaced by another that is killed the same way.
        worker_proc_alive_timeout=60,
        beat_schedule_filename=str(beat_watch.schedule_path(settings)),
        timezone="UTC",
    )
    from worker.schedules import beat_schedule

    app.conf.beat_schedule = beat_schedule(settings)
    return app


@signals.worker_process_init.connect
def _fresh_connections_after_fork(**_):
    # Connections pooled in the parent must not be shared with forked children.
    dispose_engines()
    # One BLAS thread per child (GOVERNANCE_EMBEDDER_THREADS): the children already use every core,
    # and numpy's kNN products with a thread per core each spin-waited for the other child's core
    # (profile: 1.1 -> 0.4 ms of CPU per event).
    from threadpoolctl import threadpool_limits  # comes with scikit-learn

    threads = Settings.from_env().embedder_threads
    if threads:
        threadpool_limits(limits=threads)
    # Build the embedder (imports, vectorisers, clients) now rather than inside the first message,
    # which would otherwise take many times longer than the rest. A failure here is left to the
    # first task to report.
    import logging

    from worker.runtime import context

    try:
        context()
    except Exception:  # noqa: BLE001
        logging.getLogger(__name__).warning("could not build the embedder at start; the first task will retry",
                                            exc_info=True)


# --- structured logs ------------------------------------------------------------------------------

def _secrets(settings: Settings) -> list[str | None]:
    from urllib.parse import unquote, urlsplit

    found = [settings.gemini_api_key, settings.webhook_secret]
    for url in (settings.database_url, settings.broker_url):
        try:
            password = urlsplit(url).password if url else None
        except ValueError:
            continue
        # Clients log what they were given or what they decoded: mask both spellings.
        found += [password, unquote(password)] if password else []
    return found


@signals.setup_logging.connect
def _structured_logging(loglevel=None, **_):
    # Connecting here replaces Celery's own logging setup (in the worker, its children and beat).
    import logging
    import os

    from governance.platform import logging_setup

    fmt = os.environ.get("GOVERNANCE_LOG_FORMAT", "json")
    logging_setup.configure(loglevel or logging.INFO, fmt=fmt, secrets=_secrets(Settings.from_env()))


def _task_ids(task, args) -> dict:
    ids = {}
    if task is not None and task.name in ("governance.process_upload", "governance.cluster_report") and args:
        ids["tenant"] = args[0]
        if task.name == "governance.process_upload" and len(args) > 1:
            ids["event_id"] = args[1]
    return ids


@signals.task_prerun.connect
def _bind_log_context(task_id=None, task=None, args=None, **_):
    from governance.platform import logging_setup

    logging_setup.clear()
    logging_setup.bind(task_id=task_id, task_name=getattr(task, "name", None), **_task_ids(task, args or ()))


@signals.task_postrun.connect
def _clear_log_context(**_):
    from governance.platform import logging_setup

    logging_setup.clear()


@signals.worker_init.connect
def _check_retry_budget(**_):
    import logging

    settings = Settings.from_env()
    if settings.embedder == "gemini" or (settings.embedder == "auto" and settings.gemini_api_key):
        for problem in retry_budget_problems(settings):
            logging.getLogger(__name__).error("retry budget: %s", problem)


def retry_budget_problems(settings: Settings) -> list[str]:
    """The worst case of the configured Gemini retries against this worker's actual limits."""
    from governance.embedding.backends.gemini.retry_budget import problems
    from worker.tasks import RETRY_CAP_S, process_upload

    return problems(settings, process_upload.soft_time_limit, process_upload.time_limit, RETRY_CAP_S,
                    VISIBILITY_TIMEOUT_S)


# --- metrics --------------------------------------------------------------------------------------

def _metrics_dir(settings: Settings):
    import os

    return settings.data_dir / "metrics" / f"worker-{os.getpid()}"


@signals.worker_init.connect
def _start_metrics(**_):
    # In the worker's main process, before the pool forks: children inherit the multiprocess setup.
    import os

    port = os.environ.get("GOVERNANCE_METRICS_PORT")
    if not port:
        return
    from redis.exceptions import RedisError

    from governance.platform import broker_state, metrics
    from governance.storage import repository
    from governance.storage.db import transaction
    from worker.runtime import broker_redis, sessions

    settings = Settings.from_env()
    metrics.configure(_metrics_dir(settings))

    def gauges() -> dict:
        values = {}
        try:
            age = broker_state.last_pass_age(broker_redis())
            values.update({} if age is None else {"last_reconcile_age_seconds": age})
        except (RedisError, OSError):  # the broker is away: the database gauges are still worth a scrape
            pass
        with transaction(sessions()) as session:
            repository.enter_all_tenants(session)
            return {**values, **repository.operational_counts(session)}

    try:
        metrics.serve(int(port), addr=os.environ.get("GOVERNANCE_METRICS_ADDR", "0.0.0.0"), gauges=gauges)
    except OSError as exc:  # e.g. the port is taken: the work goes on, unobserved, and says so
        import logging

        logging.getLogger(__name__).error("metrics endpoint not started on port %s: %s", port, exc)


@signals.worker_shutdown.connect
def _remove_metrics_files(**_):
    import os

    from governance.platform import metrics

    if os.environ.get("GOVERNANCE_METRICS_PORT") and metrics.enabled():
        metrics.shutdown(_metrics_dir(Settings.from_env()))


@signals.worker_process_shutdown.connect
def _metrics_child_exited(pid=None, **_):
    import os

    from governance.platform import metrics

    metrics.child_exited(pid or os.getpid())


@signals.task_failure.connect
def _count_task_failure(sender=None, exception=None, **_):
    from governance.platform import metrics

    metrics.task_error(getattr(sender, "name", "unknown"), type(exception).__name__)


# The CLI resolves the embedded servers into the environment before importing this module,
# so forked children and `celery -A worker.app` all see the same URLs.
app = create_app()
