"""Hash banks: the hashes of stored assets, each tenant's bank of known hashes and its version."""
from __future__ import annotations

from datetime import datetime
from itertools import batched
from typing import Iterator

from sqlalchemy import func, select, text, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from governance.storage.hash_tables import AssetHash, BankHash, HashBank
from governance.storage.tables import Asset

WRITE_CHUNK = 5_000


def store_asset_hashes(session: Session, tenant: str, rows: list[dict]) -> None:
    """Upsert {asset_pk, signal_type, signal, quality, features} rows: one hash of each type per asset."""
    if not rows:
        return
    stmt = insert(AssetHash.__table__)
    stmt = stmt.on_conflict_do_update(index_elements=["asset_pk", "signal_type"],
                                      set_={"signal": stmt.excluded.signal, "quality": stmt.excluded.quality,
                                            "features": stmt.excluded.features})
    session.execute(stmt, [{"tenant": tenant, "features": None, **row} for row in rows])


def asset_pdq_hashes(session: Session, tenant: str, asset_ids: list[str]) -> dict[str, tuple[str, int | None]]:
    """{asset_id: (PDQ hash, quality)} of those assets that have one."""
    if not asset_ids:
        return {}
    rows = session.execute(select(Asset.asset_id, AssetHash.signal, AssetHash.quality)
                           .join(AssetHash, (AssetHash.asset_pk == Asset.id) & (AssetHash.tenant == tenant))
                           .where(Asset.tenant == tenant, Asset.asset_id.in_(sorted(set(asset_ids))),
                                  AssetHash.signal_type == "pdq"))
    return {asset_id: (signal, quality) for asset_id, signal, quality in rows}


def hash_bank_version(session: Session, tenant: str) -> int:
    return session.scalar(select(HashBank.version).where(HashBank.tenant == tenant)) or 0


def bump_hash_bank_version(session: Session, tenant: str) -> int:
    stmt = insert(HashBank).values(tenant=tenant, version=1)
    stmt = stmt.on_conflict_do_update(index_elements=["tenant"],
                                      set_={"version": HashBank.version + 1, "updated_at": func.now()})
    return session.scalar(stmt.returning(HashBank.version))


def upsert_bank_hashes(session: Session, tenant: str, rows: list[dict], *, bank_version: int,
                       created_by: str | None) -> None:
    """Insert or update {signal_type, signal, label, polarity, source[, features]} rows, enabled, at `bank_version`."""
    stmt = insert(BankHash.__table__)
    stmt = stmt.on_conflict_do_update(
        index_elements=["tenant", "signal_type", "signal", "label"],
        set_={"polarity": stmt.excluded.polarity, "source": stmt.excluded.source, "enabled": True,
              "bank_version": stmt.excluded.bank_version, "created_by": stmt.excluded.created_by})
    for chunk in batched(rows, WRITE_CHUNK):
        session.execute(stmt, [{"tenant": tenant, "bank_version": bank_version, "created_by": created_by,
                                "enabled": True, "features": None, **row} for row in chunk])


def enabled_bank_hashes(session: Session, tenant: str) -> list[tuple[str, str, str, str, str]]:
    """(signal_type, signal, label, polarity, source) of every enabled bank hash, in a stable order;
    a vPDQ signal is its features (the JSON), not its key."""
    return [tuple(r) for r in session.execute(
        select(BankHash.signal_type, func.coalesce(BankHash.features, BankHash.signal), BankHash.label,
               BankHash.polarity, BankHash.source)
        .where(BankHash.tenant == tenant, BankHash.enabled).order_by(BankHash.id))]


def set_bank_hashes_enabled(session: Session, tenant: str, enabled: bool, *, bank_version: int,
                            signal: str | None = None, signal_type: str | None = None, label: str | None = None,
                            source: str | None = None) -> list[tuple[str, str, str, str]]:
    """Enable or disable the bank hashes that match every given filter; (signal_type, signal, label,
    polarity) of those whose state changed."""
    query = update(BankHash).where(BankHash.tenant == tenant, BankHash.enabled != enabled)
    for column, value in ((BankHash.signal, signal), (BankHash.signal_type, signal_type), (BankHash.label, label),
                          (BankHash.source, source)):
        if value is not None:
            query = query.where(column == value)
    changed = session.execute(query.values(enabled=enabled, bank_version=bank_version).returning(
        BankHash.signal_type, BankHash.signal, BankHash.label, BankHash.polarity))
    return sorted(tuple(r) for r in changed)


def iter_bank_hashes(session: Session, tenant: str) -> Iterator[BankHash]:
    yield from session.scalars(select(BankHash).where(BankHash.tenant == tenant).order_by(BankHash.id)
                               .execution_options(yield_per=5000))


def bank_hash_page(session: Session, tenant: str, *, signal_type: str | None, label: str | None,
                   after_pk: int | None, limit: int) -> list[BankHash]:
    """Bank hashes in id order (optionally of one signal type and label), starting after `after_pk`."""
    query = select(BankHash).where(BankHash.tenant == tenant)
    for column, value in ((BankHash.signal_type, signal_type), (BankHash.label, label)):
        if value is not None:
            query = query.where(column == value)
    if after_pk is not None:
        query = query.where(BankHash.id > after_pk)
    return list(session.scalars(query.order_by(BankHash.id).limit(limit)))


def count_bank_hashes(session: Session, tenant: str, *, signal: str | None = None, signal_type: str | None = None,
                      label: str | None = None, source: str | None = None) -> int:
    """How many bank hashes, enabled or not, match every given filter."""
    query = select(func.count()).select_from(BankHash).where(BankHash.tenant == tenant)
    for column, value in ((BankHash.signal, signal), (BankHash.signal_type, signal_type), (BankHash.label, label),
                          (BankHash.source, source)):
        if value is not None:
            query = query.where(column == value)
    return session.scalar(query) or 0


def recently_allowed_hashes(session: Session, tenant: str, signal_type: str, since: datetime, *,
                            signals: list[str] | None = None,
                            min_quality: int | None = None) -> list[tuple[int, str, str, str]]:
    """(asset_pk, asset_id, event_id, signal) of assets whose latest decision since `since` is `allow`,
    with their stored hash of `signal_type` (only those among `signals`, when given). A SHA-256 is
    the asset row's own; MD5 and PDQ are in asset_hashes."""
    if signal_type == "sha256":
        hashed = "JOIN assets h ON h.id = l.asset_pk AND h.tenant = :tenant"
        signal, quality = "h.sha256", "NULL::integer"
    else:
        hashed = "JOIN asset_hashes h ON h.asset_pk = l.asset_pk AND h.tenant = :tenant AND h.signal_type = :signal_type"
        signal, quality = "h.signal", "h.quality"
    rows = session.execute(text(f"""
        WITH latest AS (
            SELECT DISTINCT ON (d.asset_pk) d.asset_pk, d.asset_id, d.event_id, d.action
            FROM decisions d
            WHERE d.tenant = :tenant AND d.decided_at >= :since AND d.asset_pk IS NOT NULL
            ORDER BY d.asset_pk, d.decided_at DESC, d.id DESC
        )
        SELECT l.asset_pk, l.asset_id, l.event_id, {signal}
        FROM latest l
        {hashed}
        WHERE l.action = 'allow'
          AND (CAST(:signals AS text[]) IS NULL OR {signal} = ANY(CAST(:signals AS text[])))
          AND (CAST(:min_quality AS integer) IS NULL OR {quality} >= CAST(:min_quality AS integer))
        ORDER BY l.asset_id
    """), {"tenant": tenant, "since": since, "signal_type": signal_type, "signals": signals,
           "min_quality": min_quality})
    return [(r[0], r[1], r[2], r[3]) for r in rows]
