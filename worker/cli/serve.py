"""`governance serve`: the HTTP API (web/) on uvicorn, wired to the worker's broker.

This is the composition root of the web adapter: it resolves the embedded defaults like every
other command, then hands the app the one function it needs from the worker side, enqueue."""
from __future__ import annotations

import os
import signal

from worker.cli.common import prepare_environment


def build_api(settings):
    from web.app import create_app
    from worker.app import app as celery_app
    from worker.tasks.uploads import enqueue_batches

    # uvicorn runs handlers in a thread pool, and Celery's current app is per thread: without this a
    # handler's thread would fall back to Celery's unconfigured default app and its `celery` queue.
    celery_app.set_default()

    def broker_ping() -> None:
        with celery_app.connection_for_write() as connection:
            connection.ensure_connection(max_retries=1, timeout=5)

    def run_cluster_report(tenant: str) -> None:
        # Through this app by name, not `cluster_report.delay`: a shared task resolves Celery's
        # current app per thread, and in the server's worker threads that is Celery's unconfigured
        # default app, which sends to the default queue that no worker consumes.
        celery_app.send_task("governance.cluster_report", args=[tenant])

    return create_app(settings, lambda pairs: enqueue_batches(settings, pairs), broker_ping=broker_ping,
                      run_cluster_report=run_cluster_report)


def cmd_serve(args) -> int:
    # The API keeps its metrics in its own registry; a multiprocess folder inherited from a worker
    # would send its samples to files nobody reads.
    os.environ.pop("PROMETHEUS_MULTIPROC_DIR", None)
    settings = prepare_environment(need_broker=True)
    import uvicorn

    from governance.storage.db import resolve_database_url
    from governance.storage.migrate import upgrade

    upgrade(resolve_database_url(settings))
    # uvicorn shuts down gracefully on SIGTERM, then raises the signal again for the handler it
    # found: with the default one the process would die by the signal, skipping exit handlers
    # (coverage's among them). This one makes a SIGTERM a clean exit 0 after the graceful shutdown.
    signal.signal(signal.SIGTERM, _exit_cleanly)
    uvicorn.run(build_api(settings), host=args.host, port=args.port, log_level=args.log_level,
                access_log=args.access_log)
    return 0


def _exit_cleanly(signum, frame) -> None:
    raise SystemExit(0)


def add_commands(sub) -> None:
    srv = sub.add_parser("serve", help="run the HTTP API (FastAPI on uvicorn)")
    srv.add_argument("--host", default="127.0.0.1")
    srv.add_argument("--port", type=int, default=8000)
    srv.add_argument("--log-level", default="info")
    srv.add_argument("--access-log", action="store_true", help="log every request")
    srv.set_defaults(func=cmd_serve)
