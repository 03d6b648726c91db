"""What every command shares: the embedded defaults, sessions and their row-level security scope, JSONL input, progress."""
from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Iterable, Iterator
from contextlib import contextmanager

from governance.platform.config import Settings
from governance.storage.db import resolve_database_url, session_factory


def prepare_environment(need_broker: bool = False) -> Settings:
    settings = Settings.from_env()
    os.environ["DATABASE_URL"] = resolve_database_url(settings)
    if need_broker:
        from worker.app import resolve_broker_url

        os.environ["CELERY_BROKER_URL"] = resolve_broker_url(settings)
    return Settings.from_env()


def sessions(settings: Settings):
    return session_factory(resolve_database_url(settings))


def enter_scope(session, tenant: str | None) -> None:
    """Row-level security scope (migration 0002), as the worker's tasks enter it: the transaction
    runs as the `governance_app` role and sees one tenant, or every tenant when None (commands that
    are cross-tenant by design say so where they call this). Only `db upgrade` runs as the owner."""
    from governance.storage import repository

    if tenant is None:
        repository.enter_all_tenants(session)
    else:
        repository.enter_tenant(session, tenant)


@contextmanager
def tenant_transaction(tenant: str | None) -> Iterator:
    """One transaction on the embedded defaults (or the configured servers), in `tenant`'s scope."""
    from governance.storage.db import transaction

    with transaction(sessions(prepare_environment())) as session:
        enter_scope(session, tenant)
        yield session


def print_json_lines(rows: Iterable[dict]) -> int:
    for row in rows:
        sys.stdout.write(json.dumps(row, ensure_ascii=False) + "\n")
    return 0


def build_context(settings: Settings):
    from governance.embedding.factory import build_embedder
    from governance.moderation.pipeline import Context

    return Context(settings=settings, embedder=build_embedder(settings))


def read_jsonl(path: str):
    """(line number, JSON value or the InvalidEvent saying why not) for every non-blank line;
    read as bytes, so one line of invalid UTF-8 costs only itself."""
    from governance.ingest.events import decode_lines

    handle = sys.stdin.buffer if path == "-" else open(path, "rb")
    with handle:
        yield from decode_lines(handle)


def tenant_arg(value: str) -> str:
    """argparse type for every --tenant: the one grammar of governance.ingest.events."""
    from governance.ingest.events import InvalidEvent, valid_tenant

    try:
        return valid_tenant(value)
    except InvalidEvent as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def progress(done: int, total: int, label: str) -> None:
    width = 30
    filled = int(width * done / max(total, 1))
    sys.stderr.write(f"\r{label} [{'#' * filled}{'.' * (width - filled)}] {done}/{total}")
    if done >= total:
        sys.stderr.write("\n")
    sys.stderr.flush()


def rolled_back(settings: Settings):
    """A session whose work is always rolled back: for commands that must write nothing."""
    @contextmanager
    def scope():
        session = sessions(settings)()
        try:
            yield session
        finally:
            session.rollback()
            session.close()
    return scope()


def fail(message: str, code: int = 2) -> int:
    print(f"error: {message}", file=sys.stderr)
    return code
