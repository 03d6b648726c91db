"""Shared fixtures: one real embedded PostgreSQL (pgvector) and Redis per test session.

They live in a temporary data folder, never the user's own, and are stopped at the end.
Integration tests run inside a transaction that is rolled back; end-to-end tests commit and
isolate themselves by tenant.
"""
from __future__ import annotations

import os
import uuid
from pathlib import Path

import pytest
from sqlalchemy.orm import Session

from governance.config import Settings
from governance.embedded import ensure_postgres, ensure_redis, stop_embedded


@pytest.fixture(scope="session")
def data_dir(tmp_path_factory) -> Path:
    path = Path(os.environ.get("GOVERNANCE_TEST_DATA_DIR") or tmp_path_factory.mktemp("governance-data"))
    yield path
    stop_embedded(path)


@pytest.fixture(scope="session")
def database_url(data_dir) -> str:
    from governance.migrate import upgrade

    url = ensure_postgres(data_dir)
    upgrade(url)
    return url


@pytest.fixture(scope="session")
def broker_url(data_dir) -> str:
    return ensure_redis(data_dir)


@pytest.fixture
def db(database_url) -> Session:
    """A session inside a transaction that is rolled back after the test."""
    from governance.db import engine_for

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
