"""`governance health`: database, broker, the beat's heartbeat and the embedder, each checked."""
from __future__ import annotations

from governance.platform.config import Settings
from governance.storage.db import transaction
from worker.cli.common import build_context, enter_scope, sessions


def cmd_health(args) -> int:
    """Check database, broker, the beat's heartbeat and embedder; exit non-zero if any fails."""
    from sqlalchemy import text

    from governance.ingest.content import Content
    from governance.embedding.protocol import Task

    settings = Settings.from_env()
    checks = {}
    try:
        with transaction(sessions(settings)) as session:
            enter_scope(session, None)  # also proves that the login role may act as the app role
            version = session.execute(text("SELECT extversion FROM pg_extension WHERE extname = 'vector'")).scalar()
        checks["database"] = f"ok (pgvector {version})" if version else "FAIL: pgvector extension missing"
    except Exception as exc:  # noqa: BLE001 - report any failure
        checks["database"] = f"FAIL: {exc.__class__.__name__}: {str(exc)[:200]}"
    try:
        from worker.app import app

        with app.connection_for_write() as connection:
            connection.ensure_connection(max_retries=1, timeout=5)
        checks["broker"] = "ok"
    except Exception as exc:  # noqa: BLE001
        checks["broker"] = f"FAIL: {exc.__class__.__name__}: {str(exc)[:200]}"
    try:
        from governance.platform.broker_state import reconciler_liveness
        from governance.platform.redis_client import redis_from_url
        from worker.app import resolve_broker_url

        live = reconciler_liveness(redis_from_url(resolve_broker_url(settings)), settings.beat_stale_s)
        checks["beat"] = f"ok ({live.detail})" if live.alive else f"FAIL: {live.detail}"
    except Exception as exc:  # noqa: BLE001
        checks["beat"] = f"FAIL: {exc.__class__.__name__}: {str(exc)[:200]}"
    try:
        embedder = build_context(settings).embedder
        embedder.embed([Content(modality="text", mime_type="text/plain", text="health check")], Task.CLASSIFICATION)
        checks["embedder"] = f"ok ({embedder.model_id}, {embedder.dims} dims)"
    except Exception as exc:  # noqa: BLE001
        checks["embedder"] = f"FAIL: {exc.__class__.__name__}: {str(exc)[:200]}"
    for name, status in checks.items():
        print(f"{name:<9} {status}")
    return 1 if any(status.startswith("FAIL") for status in checks.values()) else 0


def add_commands(sub) -> None:
    sub.add_parser("health", help="check database, broker, beat and embedder").set_defaults(func=cmd_health)
