"""Fixtures shared by the integration tests (the database ones live in tests/conftest.py; the
bank, seeding and upload helpers in helpers.py)."""
from __future__ import annotations

from contextlib import contextmanager

import pytest

from governance.embedding.backends.hashing import HashingEmbedder
from governance.moderation.pipeline import Context
from governance.platform.config import Settings


@pytest.fixture
def batches(db):
    """Each batch in its own savepoint: committed for the rest of the test, as a real run commits."""
    @contextmanager
    def scope():
        with db.begin_nested():
            yield db
    return scope


@pytest.fixture
def ctx(settings):
    return Context(settings=settings, embedder=HashingEmbedder(768))


@pytest.fixture(params=["cache", "hnsw"])
def knn(request, settings, monkeypatch) -> str:
    """Which kNN path decides: the in-process bank cache (the default, as every test bank is far
    below its threshold) or HNSW in PostgreSQL (GOVERNANCE_KNN_CACHE_VECTORS=0)."""
    if request.param == "hnsw":
        monkeypatch.setenv("GOVERNANCE_KNN_CACHE_VECTORS", "0")
    else:
        monkeypatch.delenv("GOVERNANCE_KNN_CACHE_VECTORS", raising=False)
    return request.param


@pytest.fixture
def knn_settings(knn) -> Settings:
    settings = Settings.from_env()
    assert (settings.knn_cache_vectors == 0) == (knn == "hnsw")
    return settings


@pytest.fixture
def knn_ctx(knn_settings):
    return Context(settings=knn_settings, embedder=HashingEmbedder(768))
