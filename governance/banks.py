"""Exemplar banks: labelled assets that classification votes over."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Iterable

from sqlalchemy.orm import Session

from governance import repository
from governance.assets import RejectedInput, load
from governance.embedders import EmbeddingError, Task
from governance.embedding_store import embed_with_cache
from governance.events import InvalidEvent, UploadEvent
from governance.services import Context, store_asset


@dataclass
class ImportResult:
    imported: int = 0
    rejected: list[tuple[str, str]] = field(default_factory=list)  # (asset_id or line, reason)


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
            ready.append((item, load(item, ctx.settings)))
        except (InvalidEvent, RejectedInput) as exc:
            result.rejected.append((str(raw.get("asset_id") if isinstance(raw, dict) else raw), str(exc)))
    by_tenant: dict[str, list] = {}
    for entry in ready:
        by_tenant.setdefault(entry[0].tenant, []).append(entry)
    for tenant, entries in by_tenant.items():
        try:
            embedded = embed_with_cache(session, ctx.embedder, tenant, [loaded for _, loaded in entries],
                                        Task.CLASSIFICATION)
        except EmbeddingError as exc:
            if exc.transient:
                raise
            result.rejected.extend((item.asset_id, str(exc)) for item, _ in entries)
            continue
        for (item, loaded), vector in zip(entries, embedded):
            asset_pk = store_asset(session, item, loaded)
            repository.store_embedding(session, tenant=tenant, asset_pk=asset_pk, sha256=loaded.sha256,
                                       modality=loaded.content.modality, model=ctx.embedder.model_id,
                                       dims=ctx.embedder.dims, task=vector.task, vector=vector.vector, in_bank=True)
            repository.add_exemplar(session, tenant, asset_pk, item.label, polarity=item.polarity, source=source,
                                    created_by=created_by)
            result.imported += 1
        repository.bump_bank_version(session, tenant)
    progress(len(raw_items))
    return result


def batched(items: Iterable, size: int) -> Iterable[list]:
    batch = []
    for item in items:
        batch.append(item)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch
