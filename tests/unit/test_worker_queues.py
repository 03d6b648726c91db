"""Queue names are settings; the embedding task gets its own queue only when one is set."""
from __future__ import annotations

from governance.platform.config import Settings
from worker.queues import queue_names

QUEUE_ENV = ("GOVERNANCE_UPLOADS_QUEUE", "GOVERNANCE_MAINTENANCE_QUEUE", "GOVERNANCE_EMBED_QUEUE")


def settings_with(monkeypatch, tmp_path, **env: str) -> Settings:
    # A broker URL and a data folder of the test's own, so importing worker.app starts no server.
    monkeypatch.setenv("CELERY_BROKER_URL", "redis://127.0.0.1:9/0")
    monkeypatch.setenv("GOVERNANCE_DATA_DIR", str(tmp_path))
    for name in QUEUE_ENV:
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return Settings.from_env()


def routes_of(settings: Settings) -> dict[str, str]:
    from worker.app import create_app

    app = create_app(settings)
    return {name: app.amqp.router.route({}, name)["queue"].name
            for name in ("governance.process_uploads", "governance.embed_uploads", "governance.reconcile_events")}


def test_by_default_every_upload_task_stays_on_the_uploads_queue(monkeypatch, tmp_path):
    settings = settings_with(monkeypatch, tmp_path)
    assert queue_names(settings) == {"uploads": "governance.uploads", "maintenance": "governance.maintenance"}
    assert routes_of(settings) == {"governance.process_uploads": "governance.uploads",
                                   "governance.embed_uploads": "governance.uploads",
                                   "governance.reconcile_events": "governance.maintenance"}


def test_an_embed_queue_takes_the_embedding_task_and_names_are_read_from_the_environment(monkeypatch, tmp_path):
    settings = settings_with(monkeypatch, tmp_path, GOVERNANCE_EMBED_QUEUE="q.embed", GOVERNANCE_UPLOADS_QUEUE="q.up",
                             GOVERNANCE_MAINTENANCE_QUEUE="q.maint")
    assert queue_names(settings) == {"uploads": "q.up", "maintenance": "q.maint", "embed": "q.embed"}
    assert routes_of(settings) == {"governance.process_uploads": "q.up", "governance.embed_uploads": "q.embed",
                                   "governance.reconcile_events": "q.maint"}
