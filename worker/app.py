"""The Celery app: JSON only, late acks, one message in flight per process, queues by role.

Configuration only; the signal handlers (logging, metrics, per-child setup) live in worker/signals.py."""
from __future__ import annotations

from celery import Celery
from kombu import Queue

from governance.platform.config import Settings
from worker import beat_watch, kombu_quirks, signals  # noqa: F401 - signals: its handlers connect on import
from worker.queues import VISIBILITY_TIMEOUT_S, queue_names

kombu_quirks.install()


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
    queues = queue_names(settings)
    app = Celery("governance", broker=broker_url, include=["worker.tasks.uploads", "worker.tasks.maintenance"])
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
        task_default_queue=queues["uploads"],
        task_queues=[Queue(name) for name in queues.values()],
        task_routes={
            "governance.process_upload": {"queue": queues["uploads"]},
            "governance.process_uploads": {"queue": queues["uploads"]},
            "governance.submit_events": {"queue": queues["uploads"]},
            # Embedding-bound: on its own queue when one is set, so its workers scale apart (README, Scaling).
            "governance.embed_uploads": {"queue": queues.get("embed", queues["uploads"])},
            "governance.*": {"queue": queues["maintenance"]},
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


# The CLI resolves the embedded servers into the environment before importing this module,
# so forked children and `celery -A worker.app` all see the same URLs.
app = create_app()
