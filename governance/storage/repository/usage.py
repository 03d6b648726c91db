"""Embedding usage accounting."""
from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from governance.storage.embedding_tables import EmbeddingUsage


def add_usage(session: Session, *, tenant: str, day, model: str, dims: int, mode: str, items: int,
              cached_items: int, calls: int, prompt_tokens: int, estimated: bool) -> None:
    stmt = insert(EmbeddingUsage).values(tenant=tenant, day=day, model=model, dims=dims, mode=mode, items=items,
                                         cached_items=cached_items, calls=calls, prompt_tokens=prompt_tokens,
                                         estimated=estimated)
    session.execute(stmt.on_conflict_do_update(
        index_elements=["tenant", "day", "model", "dims", "mode"],
        set_={"items": EmbeddingUsage.items + stmt.excluded["items"],
              "cached_items": EmbeddingUsage.cached_items + stmt.excluded.cached_items,
              "calls": EmbeddingUsage.calls + stmt.excluded.calls,
              "prompt_tokens": EmbeddingUsage.prompt_tokens + stmt.excluded.prompt_tokens,
              "estimated": EmbeddingUsage.estimated | stmt.excluded.estimated, "updated_at": func.now()},
    ))


def usage_totals(session: Session, tenant: str | None, since) -> list[dict]:
    """Sums per (tenant, model, dims, mode) since a UTC day (inclusive); every tenant when None."""
    u = EmbeddingUsage
    query = select(u.tenant, u.model, u.dims, u.mode, func.sum(u.items), func.sum(u.cached_items),
                   func.sum(u.calls), func.sum(u.prompt_tokens), func.bool_or(u.estimated))
    if tenant is not None:
        query = query.where(u.tenant == tenant)
    if since is not None:
        query = query.where(u.day >= since)
    query = query.group_by(u.tenant, u.model, u.dims, u.mode).order_by(u.tenant, u.model, u.dims, u.mode)
    names = ("tenant", "model", "dims", "mode", "items", "cached_items", "calls", "prompt_tokens", "estimated")
    return [dict(zip(names, (*r[:4], int(r[4]), int(r[5]), int(r[6]), int(r[7]), bool(r[8]))))
            for r in session.execute(query)]
