"""Per-process collaborators for tasks, built on first use (after fork) from the environment."""
from __future__ import annotations

from functools import lru_cache

from sqlalchemy.orm import Session, sessionmaker

from governance.config import Settings
from governance.db import resolve_database_url, session_factory
from governance.embedders import build_embedder
from governance.services import Context


@lru_cache(maxsize=1)
def settings() -> Settings:
    return Settings.from_env()


@lru_cache(maxsize=1)
def context() -> Context:
    return Context(settings=settings(), embedder=build_embedder(settings()))


def sessions() -> sessionmaker[Session]:
    # Not cached: `dispose_engines` after fork must be followed by fresh engines.
    return session_factory(resolve_database_url(settings()))
