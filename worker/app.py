"""The Celery app: JSON only, late acks, one message in flight per process, queues by role."""
from __future__ import annotations

from celery import Celery, signals
from kombu import Queue

from governance.config import Settings
from governance.db import dispose_engines

UPLOADS_QUEUE = "governance.uploads"
MAINTENANCE_QUEUE = "governance.maintenance"
DEFAULT_DECISION_QUEUE = "governance.decisions"


def resolve_broker_url(settings: Settings) -> str:
    if settings.broker_url:
        return settings.broker_url
    from governance.embedded import ensure_redis

    return ensure_redis(settings.data_dir)


def create_app(settings: Settings | None = None) -> Celery:
    settings = settings or Settings.from_env()
    app = Celery("governance", broker=resolve_broker_url(settings), include=["worker.tasks"])
    app.conf.update(
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
            "governance.*": {"queue": MAINTENANCE_QUEUE},
        },
        # Retries use countdowns far below this, so a delayed message is never redelivered early.
        broker_transport_options={"visibility_timeout": 3600},
        broker_connection_retry_on_startup=True,
        worker_hijack_root_logger=False,
        beat_schedule_filename=str(settings.data_dir / "celerybeat-schedule"),
        timezone="UTC",
    )
    from worker.schedules import beat_schedule

    app.conf.beat_schedule = beat_schedule(settings)
    return app


@signals.worker_process_init.connect
def _fresh_connections_after_fork(**_):
    # Connections pooled in the parent must not be shared with forked children.
    dispose_engines()


# The CLI resolves the embedded servers into the environment before importing this module,
# so forked children and `celery -A worker.app` all see the same URLs.
app = create_app()
