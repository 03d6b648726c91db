"""Exemplar banks: labelled assets that classification votes over."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Iterable

from sqlalchemy.orm import Session

from governance.embedding.protocol import EmbeddingError, Task
from governance.embedding.vector_cache import embed_each
from governance.ingest.assets import RejectedInput, load
from governance.ingest.content_hashes import content_hashes
from governance.ingest.events import InvalidEvent, UploadEvent
from governance.moderation.hash_banks import store_hashes
from governance.moderation.pipeline import Context, asset_fields, for_tenant
from governance.moderation.review import retroactive_matches
from governance.storage import repository


MAX_LABEL_LENGTH = 128  # exemplars.label


@dataclass
class ImportResult:
    imported: int = 0
    rejected: list[tuple[str, str]] = field(default_factory=list)  # (asset_id or line, reason)
    retroactive: list[dict] = field(default_factory=list)  # review items opened by new known-bad exemplars
    bank_version: int | None = None  # after the batch (of its last tenant, when it names several)


def import_exemplars(session: Session, ctx: Context, raw_items: list[dict], *, source: str = "import",
                     created_by: str | None = None, progress: Callable[[int], None] = lambda n: None) -> ImportResult:
    """Embed and store one batch of labelled items. Bad items are reported, not fatal."""
    result = ImportResult()
    ready = []
    for raw in raw_items:
        try:
            item = UploadEvent.parse(raw)
            if not item.label:
                raise InvalidEvent("missing_field: label is required for an exemplar")
            if len(item.label) > MAX_LABEL_LENGTH:
                raise InvalidEvent(f"invalid_field: a label has at most {MAX_LABEL_LENGTH} characters")
            ready.append((item, load(item, ctx.settings)))
        except (InvalidEvent, RejectedInput) as exc:
            result.rejected.append((str(raw.get("asset_id") if isinstance(raw, dict) else raw), str(exc)))
    by_tenant: dict[str, list] = {}
    for entry in ready:
        by_tenant.setdefault(entry[0].tenant, []).append(entry)
    for tenant, entries in by_tenant.items():
        tenant_ctx = for_tenant(session, ctx, tenant)  # the tenant's active model and policy
        embedder = tenant_ctx.embedder
        embedded = embed_each(session, embedder, tenant, [loaded for _, loaded in entries], Task.CLASSIFICATION)
        good = []
        for (item, loaded), vector in zip(entries, embedded):
            if isinstance(vector, EmbeddingError):  # only this item: the others are imported
                result.rejected.append((item.asset_id, str(vector)))
            else:
                good.append((item, loaded, vector))
        asset_pks = repository.upsert_assets(session, tenant, [
            dict(asset_id=item.asset_id, **asset_fields(item, loaded)) for item, loaded, _ in good])
        store_hashes(session, tenant, [(asset_pks[item.asset_id], content_hashes(loaded)) for item, loaded, _ in good])
        repository.store_embeddings(session, tenant, embedder.model_id, embedder.dims, [
            dict(asset_pk=asset_pks[item.asset_id], sha256=loaded.sha256, modality=loaded.content.modality,
                 task=vector.task, vector=vector.vector, in_bank=True) for item, loaded, vector in good])
        added = []
        for item, _, _ in good:
            asset_pk = asset_pks[item.asset_id]
            repository.add_exemplar(session, tenant, asset_pk, item.label, polarity=item.polarity, source=source,
                                    created_by=created_by, content=exemplar_content(item))
            result.imported += 1
            if item.polarity == "positive":
                added.append((asset_pk, item.asset_id, item.label))
        result.bank_version = repository.bump_bank_version(session, tenant)
        result.retroactive += retroactive_matches(session, tenant_ctx, tenant, tenant_ctx.policy, added)
    progress(len(raw_items))
    return result


def exemplar_content(item: UploadEvent) -> dict:
    """What `governance reembed` needs to read the exemplar again when no upload event holds it."""
    fields = {"text": item.text, "uri": item.uri, "data_b64": item.data_b64, "mime_type": item.mime_type}
    return {name: value for name, value in fields.items() if value is not None}


# --- editing and exporting a bank ----------------------------------------------------------------

class BankError(ValueError):
    """The bank edit cannot be applied as asked; the message says why."""


@dataclass
class BankEdit:
    asset_id: str
    labels: list[str]  # the exemplar labels whose state changed
    bank_version: int
    retroactive: list[dict] = field(default_factory=list)


def set_enabled(session: Session, ctx: Context, tenant: str, asset_id: str, enabled: bool, *,
                label: str | None = None, who: str | None = None) -> BankEdit:
    """Enable or disable an asset's exemplars (one label, or all). Every change bumps the bank
    version, keeps `embeddings.in_bank` true exactly while an enabled exemplar points at the asset,
    and is written to the audit log. Re-enabling a known-bad exemplar re-checks recent allows."""
    asset = repository.asset_by_id(session, tenant, asset_id)
    if asset is None:
        raise BankError(f"no asset {asset_id!r} in tenant {tenant!r}")
    rows = repository.exemplars_of_asset(session, tenant, asset.id, label)
    if not rows:
        raise BankError(f"asset {asset_id!r} is not an exemplar" + (f" of {label!r}" if label else ""))
    changed = [row for row in rows if row.enabled != enabled]
    for row in changed:
        row.enabled = enabled
    session.flush()
    repository.sync_in_bank(session, tenant, asset.id)
    if not changed:
        return BankEdit(asset_id, [], repository.bank_version(session, tenant))
    version = repository.bump_bank_version(session, tenant)
    labels = [row.label for row in changed]
    repository.insert_audit(session, tenant=tenant, kind="exemplar_enable" if enabled else "exemplar_disable",
                            asset_id=asset_id, who=who, before={"enabled": not enabled, "labels": labels},
                            after={"enabled": enabled, "labels": labels, "bank_version": version})
    retroactive = []
    if enabled:
        tenant_ctx = for_tenant(session, ctx, tenant)
        retroactive = retroactive_matches(session, tenant_ctx, tenant, tenant_ctx.policy, [
            (asset.id, asset_id, row.label) for row in changed if row.polarity == "positive"])
    return BankEdit(asset_id, labels, version, retroactive)


POLARITIES = ("positive", "negative")


def add_stored_asset(session: Session, ctx: Context, tenant: str, asset_id: str, label: str, polarity: str, *,
                     source: str = "console", who: str | None = None, allowed_labels: Iterable[str] | None = None
                     ) -> BankEdit:
    """Make an asset the tenant already embedded an exemplar, from its stored vectors, as an import
    does: the exemplar row (provenance `source` and `who`), `in_bank`, a bank version bump, an audit
    row, and retroactive matching for a new positive exemplar."""
    label = (label or "").strip()
    if not label or len(label) > MAX_LABEL_LENGTH:
        raise BankError(f"a label has 1 to {MAX_LABEL_LENGTH} characters")
    if allowed_labels is not None and label not in set(allowed_labels):
        raise BankError(f"{label!r} is not one of the policy's or the bank's labels")
    if polarity not in POLARITIES:
        raise BankError(f"polarity must be one of {', '.join(POLARITIES)}, got {polarity!r}")
    asset = repository.asset_by_id(session, tenant, asset_id)
    if asset is None:
        raise BankError(f"no asset {asset_id!r} in tenant {tenant!r}")
    tenant_ctx = for_tenant(session, ctx, tenant)
    if not repository.asset_vectors(session, tenant, asset.id, tenant_ctx.embedder.model_id, tenant_ctx.embedder.dims):
        raise BankError(f"asset {asset_id!r} has no vectors of the active model to vote with")
    repository.add_exemplar(session, tenant, asset.id, label, polarity=polarity, source=source, created_by=who)
    version = repository.bump_bank_version(session, tenant)
    repository.insert_audit(session, tenant=tenant, kind="exemplar_add", asset_id=asset_id, who=who,
                            before={"labels": []},
                            after={"labels": [label], "label": label, "polarity": polarity, "source": source,
                                   "bank_version": version})
    retroactive = (retroactive_matches(session, tenant_ctx, tenant, tenant_ctx.policy, [(asset.id, asset_id, label)])
                   if polarity == "positive" else [])
    return BankEdit(asset_id, [label], version, retroactive)


def export_exemplars(session: Session, tenant: str) -> Iterable[dict]:
    """One JSON-ready object per exemplar (see `exemplar_item`), in the order they were added."""
    for exemplar, asset in repository.iter_exemplars(session, tenant):
        yield exemplar_item(tenant, exemplar, asset)


def exemplar_page(session: Session, tenant: str, *, label: str | None = None, after: int | None = None,
                  limit: int = 100) -> tuple[list[dict], int | None]:
    """One page of `export_exemplars` (optionally of one label) starting after a position, and the
    position of its last item when more follow (else None)."""
    rows = repository.exemplar_page(session, tenant, label, after, limit + 1)
    more = len(rows) > limit
    rows = rows[:limit]
    return [exemplar_item(tenant, x, a) for x, a in rows], (rows[-1][0].id if more else None)


def exemplar_item(tenant: str, exemplar, asset) -> dict:
    """label, polarity, enabled, provenance and the content reference (`uri`, or the `text`
    itself when it was stored whole, else `text_excerpt`)."""
    item = {"asset_id": asset.asset_id, "tenant": tenant, "label": exemplar.label,
            "polarity": exemplar.polarity, "enabled": exemplar.enabled, "source": exemplar.source,
            "created_by": exemplar.created_by, "created_at": exemplar.created_at.isoformat(),
            "modality": asset.modality, "mime_type": asset.mime_type, "sha256": asset.sha256}
    if asset.source_uri:
        item["uri"] = asset.source_uri
    elif asset.modality == "text" and asset.text_excerpt is not None and len(asset.text_excerpt) < 2000:
        item["text"] = asset.text_excerpt
    elif asset.text_excerpt:
        item["text_excerpt"] = asset.text_excerpt
    if asset.title:
        item["title"] = asset.title
    return item


def bank_summary(session: Session, tenant: str) -> dict:
    """The bank at a glance: its version and, per label, the enabled positive and negative
    exemplars and the disabled ones."""
    labels: dict[str, dict] = {}
    for label, polarity, enabled, count in repository.exemplar_counts(session, tenant):
        row = labels.setdefault(label, {"label": label, "positive": 0, "negative": 0, "disabled": 0})
        row["disabled" if not enabled else polarity] += count
    return {"tenant": tenant, "bank_version": repository.bank_version(session, tenant),
            "exemplars": sum(r["positive"] + r["negative"] + r["disabled"] for r in labels.values()),
            "labels": list(labels.values())}
