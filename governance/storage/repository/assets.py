"""Asset rows: upserts, look-ups, and the stored sources an asset can be re-read from."""
from __future__ import annotations

from sqlalchemy import select, text
from sqlalchemy.dialects.postgresql import insert
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


def upsert_assets(session: Session, tenant: str, rows: list[dict]) -> dict[str, int]:
    """Insert or update assets in one statement: {asset_id: id}. The last row of an asset wins."""
    unique = list({r["asset_id"]: r for r in rows}.values())
    if not unique:
        return {}
    # Core executemany ("insertmanyvalues"): compiled once and cached, where .values([...]) is
    # compiled anew for every batch; column keys, so `extra` is given as its column `metadata`.
    table = Asset.__table__
    columns = [getattr(Asset, c).expression.name for c in unique[0]]
    stmt = insert(table)
    stmt = stmt.on_conflict_do_update(index_elements=["tenant", "asset_id"],
                                      set_={c: stmt.excluded[c] for c in columns if c != "asset_id"})
    params = [{"tenant": tenant, **{getattr(Asset, c).expression.name: v for c, v in r.items()}} for r in unique]
    result = session.execute(stmt.returning(table.c.asset_id, table.c.id, sort_by_parameter_order=True), params)
    return {asset_id: pk for asset_id, pk in result}
