"""Per-process collaborators for tasks, built on first use (after fork) from the environment."""
from __future__ import annotations

import time
from functools import lru_cache

from sqlalchemy.orm import Session, sessionmaker

from governance.embedding.factory import build_embedder
from governance.embedding.protocol import EmbeddingError
from governance.moderation.pipeline import Context
from governance.platform import metrics
from governance.platform.config import Settings
from governance.storage.db import resolve_database_url, session_factory


@lru_cache(maxsize=1)
def settings() -> Settings:
    return Settings.from_env()


@lru_cache(maxsize=1)
def context() -> Context:
    embedder = build_embedder(settings())
    wrap = MeasuredEmbedder if metrics.enabled() else None
    return Context(settings=settings(), embedder=wrap(embedder) if wrap else embedder, wrap_embedder=wrap)


class MeasuredEmbedder:
    """The configured embedder, with every embed() call counted and timed for the metrics."""

    def __init__(self, inner):
        self._inner = inner

    def __getattr__(self, name):  # model_id, dims, modalities, task_key, ...
        return getattr(self._inner, name)

    def embed(self, items, task, **kwargs):  # kwargs: `usage` for embedders that report it
        started = time.monotonic()
        try:
            vectors = self._inner.embed(items, task, **kwargs)
        except EmbeddingError as exc:
            metrics.embedding_call(self._inner.model_id, len(items), time.monotonic() - started,
                                   "transient_error" if exc.transient else "error")
            raise
        metrics.embedding_call(self._inner.model_id, len(items), time.monotonic() - started)
        return vectors


@lru_cache(maxsize=1)
def broker_redis():
    """A redis-py client on the broker's Redis, for the reconciler's marker and heartbeat."""
    from celery import current_app

    from governance.platform.redis_client import redis_from_url

    return redis_from_url(current_app.conf.broker_url)  # as resolved by worker.app, embedded or not


def sessions() -> sessionmaker[Session]:
    # Not cached: `dispose_engines` after fork must be followed by fresh engines.
    return session_factory(resolve_database_url(settings()))
