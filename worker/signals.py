"""Celery signal handlers: per-child setup after fork, structured logs, the retry-budget check, metrics."""
from __future__ import annotations

import logging
import os

from celery import signals

from governance.platform.config import Settings
from governance.storage.db import dispose_engines


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
    from governance.platform import logging_setup

    settings = Settings.from_env()
    logging_setup.configure(loglevel or logging.INFO, fmt=settings.log_format, secrets=_secrets(settings))


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
    settings = Settings.from_env()
    if settings.embedder == "gemini" or (settings.embedder == "auto" and settings.gemini_api_key):
        for problem in retry_budget_problems(settings):
            logging.getLogger(__name__).error("retry budget: %s", problem)


def retry_budget_problems(settings: Settings) -> list[str]:
    """The worst case of the configured Gemini retries against this worker's actual limits."""
    from governance.embedding.backends.gemini.retry_budget import problems
    from worker.queues import VISIBILITY_TIMEOUT_S
    from worker.tasks.retry import RETRY_CAP_S
    from worker.tasks.uploads import process_upload

    return problems(settings, process_upload.soft_time_limit, process_upload.time_limit, RETRY_CAP_S,
                    VISIBILITY_TIMEOUT_S)


# --- metrics --------------------------------------------------------------------------------------

def _metrics_dir(settings: Settings):
    return settings.data_dir / "metrics" / f"worker-{os.getpid()}"


@signals.worker_init.connect
def _start_metrics(**_):
    # In the worker's main process, before the pool forks: children inherit the multiprocess setup.
    settings = Settings.from_env()
    if settings.metrics_port is None:
        return
    from redis.exceptions import RedisError

    from governance.platform import broker_state, metrics
    from governance.storage import repository
    from governance.storage.db import transaction
    from worker.runtime import broker_redis, sessions

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
        metrics.serve(settings.metrics_port, addr=settings.metrics_addr, gauges=gauges)
    except OSError as exc:  # e.g. the port is taken: the work goes on, unobserved, and says so
        logging.getLogger(__name__).error("metrics endpoint not started on port %s: %s", settings.metrics_port, exc)


@signals.worker_shutdown.connect
def _remove_metrics_files(**_):
    from governance.platform import metrics

    settings = Settings.from_env()
    if settings.metrics_port is not None and metrics.enabled():
        metrics.shutdown(_metrics_dir(settings))


@signals.worker_process_shutdown.connect
def _metrics_child_exited(pid=None, **_):
    from governance.platform import metrics

    metrics.child_exited(pid or os.getpid())


@signals.task_failure.connect
def _count_task_failure(sender=None, exception=None, **_):
    from governance.platform import metrics

    metrics.task_error(getattr(sender, "name", "unknown"), type(exception).__name__)
