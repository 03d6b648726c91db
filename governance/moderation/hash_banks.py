"""Hash banks: a tenant's known hashes (PDQ, MD5, SHA-256) with label, polarity and provenance.

Versioned as exemplar banks are: every import, enable and disable bumps the tenant's hash bank
version (named on each match as `bank_version`) and is written to the audit log. A new known-bad
hash re-checks the assets allowed in the policy's last `retroactive_days` by their stored hashes,
and opens the same `retroactive` review items a new known-bad exemplar opens (review.py).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Iterable

from sqlalchemy.orm import Session

from governance.ingest.content_hashes import PDQ_QUALITY_THRESHOLD, ContentHash, vpdq_key
from governance.moderation.hash_files import HashEntry, vpdq_signal
from governance.moderation.hash_index import build_index, pack_hex
from governance.moderation.pipeline import Context, for_tenant
from governance.moderation.policy_rules import Policy
from governance.storage import repository


def store_hashes(session: Session, tenant: str, assets: list[tuple[int, list[ContentHash]]]) -> None:
    """Keep each asset's hashes (asset_pk, its hashes), so later bank hashes can re-check it. The
    SHA-256 is the asset row's own `sha256` already, so only MD5 and PDQ get rows here."""
    repository.store_asset_hashes(session, tenant, [
        {"asset_pk": asset_pk, "signal_type": h.signal_type, "quality": h.quality, **_stored_signal(h)}
        for asset_pk, hashes in assets for h in hashes if h.signal_type != "sha256"])


def _stored_signal(h: ContentHash) -> dict:
    """A vPDQ signal is stored as `features`, keyed by its SHA-256 (it is too long to index)."""
    return {"signal": vpdq_key(h.signal), "features": h.signal} if h.signal_type == "vpdq" else {"signal": h.signal}


@dataclass
class HashImport:
    imported: int
    bank_version: int
    by_type: dict[str, int] = field(default_factory=dict)
    retroactive: list[dict] = field(default_factory=list)


def import_hashes(session: Session, ctx: Context, tenant: str, entries: list[HashEntry], *,
                  who: str | None = None) -> HashImport:
    """Add (or update) the entries in the tenant's hash bank, as one new bank version."""
    unique = list({(e.signal_type, e.signal, e.label): e for e in entries}.values())
    version = repository.bump_hash_bank_version(session, tenant)
    repository.upsert_bank_hashes(session, tenant, [e.as_row() for e in unique], bank_version=version,
                                  created_by=who)
    by_type: dict[str, int] = {}
    for e in unique:
        by_type[e.signal_type] = by_type.get(e.signal_type, 0) + 1
    sources = sorted({e.source for e in unique})
    repository.insert_audit(session, tenant=tenant, kind="hash_import", who=who,
                            after={"hashes": len(unique), "by_type": by_type, "sources": sources[:20],
                                   "bank_version": version})
    policy = for_tenant(session, ctx, tenant).policy
    retroactive = retroactive_hash_matches(session, tenant, policy, [e for e in unique if e.polarity == "positive"])
    return HashImport(len(unique), version, by_type, retroactive)


class HashBankError(ValueError):
    """The edit cannot be applied as asked; the message says why."""


@dataclass
class HashEdit:
    changed: list[tuple[str, str, str, str]]  # (signal_type, signal, label, polarity)
    bank_version: int
    retroactive: list[dict] = field(default_factory=list)
    matched: int = 0  # bank hashes that match the filters, changed or already in the asked state


def set_hashes_enabled(session: Session, ctx: Context, tenant: str, enabled: bool, *, signal: str | None = None,
                       signal_type: str | None = None, label: str | None = None, source: str | None = None,
                       who: str | None = None) -> HashEdit:
    """Enable or disable the bank hashes matching every given filter (a signal, a whole source, …).
    Re-enabling known-bad hashes re-checks recent allows, as importing them does."""
    if signal is None and source is None:
        raise HashBankError("name a signal or a source: a whole bank is not disabled by accident")
    if signal and signal.lstrip().startswith("["):  # a vPDQ signal itself rather than its key
        signal = vpdq_key(vpdq_signal(signal))
    signal = signal.lower() if signal else None
    matched = repository.count_bank_hashes(session, tenant, signal=signal, signal_type=signal_type, label=label,
                                           source=source)
    version = repository.bump_hash_bank_version(session, tenant)
    changed = repository.set_bank_hashes_enabled(session, tenant, enabled, bank_version=version, signal=signal,
                                                 signal_type=signal_type, label=label, source=source)
    if not changed:
        return HashEdit([], version, matched=matched)
    repository.insert_audit(session, tenant=tenant, kind="hash_enable" if enabled else "hash_disable", who=who,
                            before={"enabled": not enabled},
                            after={"enabled": enabled, "hashes": len(changed), "signal": signal, "source": source,
                                   "label": label, "bank_version": version})
    retroactive = []
    if enabled:
        policy = for_tenant(session, ctx, tenant).policy
        retroactive = retroactive_hash_matches(session, tenant, policy, [
            HashEntry(t, s, lab, pol, source or "enable") for t, s, lab, pol in changed if pol == "positive"])
    return HashEdit(changed, version, retroactive, matched)


def export_hashes(session: Session, tenant: str) -> Iterable[dict]:
    """The JSONL form `import` reads, with state and provenance: one object per bank hash."""
    for h in repository.iter_bank_hashes(session, tenant):
        yield hash_item(tenant, h)


def hash_page(session: Session, tenant: str, *, signal_type: str | None = None, label: str | None = None,
              after: int | None = None, limit: int = 100) -> tuple[list[dict], int | None]:
    """One page of `export_hashes` (optionally of one signal type and label) starting after a
    position, and the position of its last item when more follow (else None)."""
    rows = repository.bank_hash_page(session, tenant, signal_type=signal_type, label=label, after_pk=after,
                                     limit=limit + 1)
    more = len(rows) > limit
    rows = rows[:limit]
    return [hash_item(tenant, h) for h in rows], (rows[-1].id if more else None)


def hash_item(tenant: str, h) -> dict:
    return {"signal_type": h.signal_type, "signal": h.features or h.signal, "label": h.label, "polarity": h.polarity,
            "source": h.source, "enabled": h.enabled, "bank_version": h.bank_version,
            "created_by": h.created_by, "created_at": h.created_at.isoformat(), "tenant": tenant}


def retroactive_hash_matches(session: Session, tenant: str, policy: Policy, entries: list[HashEntry],
                             now: datetime | None = None) -> list[dict]:
    """Open `retroactive` review items for assets allowed in the last `retroactive_days` whose stored
    hash matches a new known-bad hash of a label within its hash distance. vPDQ hashes are matched
    when uploads are decided, not retroactively (each comparison is a frame-by-frame scan)."""
    entries = [e for e in entries if e.signal_type != "vpdq"]
    if policy.retroactive_days <= 0 or not entries:
        return []
    since = (now or datetime.now(timezone.utc)) - timedelta(days=policy.retroactive_days)
    found: list[tuple[int, str, str, HashEntry, int]] = []
    exact = [e for e in entries if e.signal_type != "pdq"]
    for signal_type in sorted({e.signal_type for e in exact}):
        wanted = {e.signal: [x for x in exact if x.signal_type == signal_type and x.signal == e.signal] for e in exact
                  if e.signal_type == signal_type}
        for pk, asset_id, event_id, signal in repository.recently_allowed_hashes(
                session, tenant, signal_type, since, signals=sorted(wanted)):
            found += [(pk, asset_id, event_id, entry, 0) for entry in wanted[signal]]
    pdq = [e for e in entries if e.signal_type == "pdq"]
    if pdq:
        recent = repository.recently_allowed_hashes(session, tenant, "pdq", since, min_quality=PDQ_QUALITY_THRESHOLD)
        found += [(*recent[r][:3], pdq[e], d) for r, e, d in _pdq_pairs(
            [r[3] for r in recent], [e.signal for e in pdq], [policy.for_label(e.label).hash_distance for e in pdq])]
    opened = []
    for pk, asset_id, event_id, entry, distance in found:
        trigger = f"hash:{entry.signal_type}:{entry.signal}"
        item_id = repository.insert_review_item(session, tenant=tenant, asset_pk=pk, asset_id=asset_id,
                                                event_id=event_id, reason="retroactive", label=entry.label,
                                                trigger_asset_id=trigger, distance=float(distance))
        if item_id is not None:
            opened.append({"review_item": item_id, "asset_id": asset_id, "event_id": event_id, "label": entry.label,
                           "trigger": trigger, "signal_type": entry.signal_type, "distance": distance,
                           "source": entry.source})
    return opened


def _pdq_pairs(uploads: list[str], bank: list[str], radii: list[int]) -> list[tuple[int, int, int]]:
    """(upload row, bank row, distance) of every pair within the bank row's radius. The larger side
    is indexed and the smaller one queried, so a big import against a quiet week, or one hash against
    a busy week, each cost one pass over the larger side."""
    if not uploads or not bank:
        return []
    widest = max(radii)
    if len(uploads) >= len(bank):
        index = build_index(pack_hex(uploads))
        return [(u, b, d) for b, query in enumerate(pack_hex(bank)) for u, d in index.within(query, radii[b])]
    index = build_index(pack_hex(bank))
    return [(u, b, d) for u, query in enumerate(pack_hex(uploads)) for b, d in index.within(query, widest)
            if d <= radii[b]]
