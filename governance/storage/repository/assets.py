"""Asset rows: upserts, look-ups, and the stored sources an asset can be re-read from."""
from __future__ import annotations

import json

from sqlalchemy import select, text
from sqlalchemy.dialects import postgresql
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Session

from governance.storage.tables import Asset, Decision, Event, Exemplar


def asset_by_id(session: Session, tenant: str, asset_id: str) -> Asset | None:
    return session.scalars(select(Asset).where(Asset.tenant == tenant, Asset.asset_id == asset_id)).one_or_none()


def assets_with_tasks(session: Session, tenant: str, model: str, dims: int) -> list[tuple[int, str, str, set[str]]]:
    """(asset_pk, asset_id, modality, tasks stored under the model) for every asset of the tenant."""
    rows = session.execute(text("""
        SELECT a.id, a.asset_id, a.modality,
               coalesce(array_agg(e.task) FILTER (WHERE e.id IS NOT NULL), '{}')
        FROM assets a
        LEFT JOIN embeddings e ON e.asset_pk = a.id AND e.tenant = :tenant AND e.model = :model AND e.dims = :dims
        WHERE a.tenant = :tenant
        GROUP BY a.id, a.asset_id, a.modality
        ORDER BY a.id
    """), {"tenant": tenant, "model": model, "dims": dims})
    return [(r[0], r[1], r[2], set(r[3])) for r in rows]


def asset_sources(session: Session, tenant: str, asset_pks: list[int]) -> dict[int, dict]:
    """Per asset: the row, whether it is in the bank, and every stored payload it could be re-read
    from (exemplar contents, then upload events newest first)."""
    assets = session.scalars(select(Asset).where(Asset.tenant == tenant, Asset.id.in_(asset_pks))).all()
    out = {a.id: {"asset": a, "in_bank": False, "payloads": []} for a in assets}
    for asset_pk, content, enabled in session.execute(
            select(Exemplar.asset_pk, Exemplar.content, Exemplar.enabled)
            .where(Exemplar.tenant == tenant, Exemplar.asset_pk.in_(asset_pks)).order_by(Exemplar.id.desc())):
        out[asset_pk]["in_bank"] |= bool(enabled)
        if content:
            out[asset_pk]["payloads"].append(content)
    for asset_pk, payload in session.execute(
            select(Decision.asset_pk, Event.payload)
            .join(Event, (Event.tenant == tenant) & (Event.event_id == Decision.event_id))
            .where(Decision.tenant == tenant, Decision.asset_pk.in_(asset_pks))
            .order_by(Decision.decided_at.desc(), Decision.id.desc())):
        out[asset_pk]["payloads"].append(payload)
    return out


# What the ORM would fill in for an insert that leaves them out (tables.Asset's client-side defaults).
_INSERT_DEFAULTS = {"extra": {}, "status": "embedded"}


def upsert_assets(session: Session, tenant: str, rows: list[dict]) -> dict[str, int]:
    """Insert or update assets in one statement: {asset_id: id}. The last row of an asset wins; an
    update sets the columns the rows give.

    One array per column through unnest: the statement's text is the same for every batch, so
    neither SQLAlchemy nor psycopg parses a new 100-row VALUES list each time (the profile showed
    that costing more client time per event than the rest of the write)."""
    unique = list({r["asset_id"]: r for r in rows}.values())
    if not unique:
        return {}
    given = list(unique[0])
    keys = given + [k for k in _INSERT_DEFAULTS if k not in given]
    columns = [getattr(Asset, k).expression for k in keys]  # `extra` is the column `metadata`
    arrays = {f"c{n}": [_column_value(column, r.get(key, _INSERT_DEFAULTS.get(key))) for r in unique]
              for n, (key, column) in enumerate(zip(keys, columns))}
    casts = ", ".join(f"CAST(:c{n} AS {_array_type(column)})" for n, column in enumerate(columns))
    updates = ", ".join(f"{c.name} = excluded.{c.name}" for k, c in zip(keys, columns) if k in given and k != "asset_id")
    result = session.execute(text(f"""
        INSERT INTO assets (tenant, {", ".join(c.name for c in columns)})
        SELECT :tenant, * FROM unnest({casts})
        ON CONFLICT (tenant, asset_id) DO UPDATE SET {updates}
        RETURNING asset_id, id
    """), {"tenant": tenant, **arrays})
    return {asset_id: pk for asset_id, pk in result}


def _array_type(column) -> str:
    if isinstance(column.type, JSONB):
        return "jsonb[]"
    return f"{column.type.compile(dialect=postgresql.dialect())}[]"


def _column_value(column, value):
    return json.dumps(value) if isinstance(column.type, JSONB) and value is not None else value
