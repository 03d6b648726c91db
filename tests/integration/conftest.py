"""Fixtures shared by the integration tests (the database ones live in tests/conftest.py)."""
from __future__ import annotations

from contextlib import contextmanager

import pytest


@pytest.fixture
def batches(db):
    """Each batch in its own savepoint: committed for the rest of the test, as a real run commits."""
    @contextmanager
    def scope():
        with db.begin_nested():
            yield db
    return scope
