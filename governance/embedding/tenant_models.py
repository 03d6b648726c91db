"""Which embedder a tenant uses, switched without restarting workers.

Each process keeps one embedder per (spec, dims), built on first use. The tenant's active model
(`tenant_models`, written by `governance reembed`) is read on every task with one index probe,
so a switch takes effect with the next transaction in every worker; a tenant without a row uses
the process default (GOVERNANCE_EMBEDDER at GOVERNANCE_EMBEDDING_DIMS).
"""
from __future__ import annotations

import threading
from typing import Callable

from sqlalchemy.orm import Session

from governance.embedding.factory import build_embedder
from governance.embedding.protocol import Embedder
from governance.platform.config import Settings
from governance.storage import repository

_embedders: dict[tuple[str, int], Embedder] = {}
_lock = threading.Lock()


def embedder_for(settings: Settings, spec: str, dims: int | None) -> Embedder:
    """The process's embedder for (spec, dims), built once."""
    key = (spec, dims or settings.embedding_dims)
    with _lock:
        if key not in _embedders:
            _embedders[key] = build_embedder(settings, spec, dims)
        return _embedders[key]


def tenant_embedder(session: Session, settings: Settings, default: Embedder, tenant: str,
                    wrap: Callable[[Embedder], Embedder] | None = None) -> Embedder:
    """The tenant's active embedder, or `default` when it has none or the active one is the default."""
    active = repository.active_tenant_model(session, tenant)
    if active is None:
        return default
    spec, dims, model_id = active
    if (model_id, dims) == (default.model_id, default.dims):
        return default
    embedder = embedder_for(settings, spec, dims)
    return wrap(embedder) if wrap else embedder


def forget_embedders() -> None:
    """Drop the built embedders, e.g. when the endpoint they were built for went away (tests)."""
    with _lock:
        _embedders.clear()
