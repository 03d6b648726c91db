"""The decision pipeline: deciding a list of one tenant's events in one transaction.

Both tasks decide here (`governance.process_uploads`, and `governance.process_upload` as a batch
of one), so a batch decides exactly what one event at a time decides. What a batch shares is the
plumbing: one row lock, one cache lookup, one embedding call, one kNN round trip, and one insert
each for assets, vectors, decisions and outbox messages. Per-event failures keep their own
meaning: bad input is rejected, an unusable vector is dead-lettered, and an input the embedder
refuses is found by embedding the batch's items one by one (vector_cache.embed_each).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timezone

from sqlalchemy.orm import Session

from governance.embedding.protocol import EmbeddingError, Task, UnusableVector
from governance.embedding.vector_cache import Embedded, embed_each, task_key
from governance.ingest.assets import LoadedAsset, RejectedInput, load
from governance.ingest.content_hashes import content_hashes
from governance.ingest.events import InvalidEvent, UploadEvent
from governance.ingest.inbox import dead_letter
from governance.ingest.ocr import ImageText
from governance.moderation import image_text, knn_cache
from governance.moderation.hash_banks import store_hashes
from governance.moderation.hash_matching import match_uploads
from governance.moderation.decisions import decision_message_id, decision_payload, decision_row, reject_row
from governance.moderation.pipeline import Context, anomaly_threshold, asset_fields, for_tenant, knn_scan
from governance.platform.faults import fault_injection_point
from governance.storage import repository


@dataclass
class BatchResult:
    decisions: list[dict] = field(default_factory=list)  # public payloads of the decisions made now
    dead_lettered: list[str] = field(default_factory=list)  # event ids
    skipped: list[str] = field(default_factory=list)  # already had an outcome, or not in the inbox


@dataclass
class _Item:
    event_id: str
    attempts: int
    payload: dict
    upload: UploadEvent
    loaded: LoadedAsset
    vectors: list[Embedded] = field(default_factory=list)  # the classification vector first
    failure: EmbeddingError | None = None
    read: ImageText | None = None  # what OCR read, for image uploads with OCR on (image_text.py)


def process_upload(session: Session, ctx: Context, tenant: str, event_id: str) -> dict | None:
    """Decide one accepted event, as a batch of one: its decision, or None when there is nothing
    left to do (an outcome already, not in the inbox, or dead-lettered now)."""
    result = process_uploads(session, ctx, tenant, [event_id])
    return result.decisions[0] if result.decisions else None


def process_uploads(session: Session, ctx: Context, tenant: str, event_ids: list[str]) -> BatchResult:
    """Decide the tenant's accepted events among `event_ids`.

    Safe to run twice: the event rows are locked, and an event that already has an outcome is left
    alone. Transient embedding errors propagate, so the caller can retry the whole batch.
    """
    result = BatchResult()
    locked = repository.lock_events(session, tenant, event_ids)
    found = {e.event_id for e in locked}
    result.skipped += [e for e in event_ids if e not in found] + [e.event_id for e in locked if e.status != "accepted"]
    events = [e for e in locked if e.status == "accepted"]
    already = repository.decided_event_ids(session, tenant, [e.event_id for e in events])
    repository.set_events_status(session, tenant, sorted(already), "decided")
    result.skipped += sorted(already)
    events = [e for e in events if e.event_id not in already]
    if not events:
        return result
    ctx = for_tenant(session, ctx, tenant)
    rows, items = [], []
    for event in events:
        try:
            upload = UploadEvent.parse(event.payload)
            items.append(_Item(event.event_id, event.attempts, event.payload, upload, load(upload, ctx.settings)))
        except (InvalidEvent, RejectedInput) as exc:
            rows.append(reject_row(ctx, tenant, event.event_id, event.asset_id, str(exc)))
    for item, read in zip(items, image_text.read_images(ctx, ctx.embedder, [i.loaded for i in items])):
        item.read = read
    _embed_all(session, ctx, tenant, items)
    for item in items:
        if item.failure is None:
            continue
        if isinstance(item.failure, UnusableVector):
            # The provider answered garbage: not the upload's fault, so no reject decision, and
            # not worth retrying; an operator looks at the dead letter.
            dead_letter(session, tenant, item.event_id, str(item.failure), item.attempts, item.payload)
            result.dead_lettered.append(item.event_id)
        else:
            rows.append(reject_row(ctx, tenant, item.event_id, item.upload.asset_id, str(item.failure)))
    items = [i for i in items if i.failure is None]
    rows += _classify(session, ctx, tenant, items)
    result.decisions = _record(session, tenant, rows)
    return result


def embed_uploads(session: Session, ctx: Context, tenant: str, event_ids: list[str]) -> int:
    """The embedding stage alone (GOVERNANCE_EMBED_QUEUE): store the assets and vectors of the
    tenant's accepted, undecided events among `event_ids`, and decide nothing; returns how many
    were stored. The decision pipeline then finds each vector in the content-hash cache
    (vector_cache.py) and makes no embedding call, so deciding is the same with or without this
    stage. What it cannot embed (bad input, a refused item) it leaves to the decision pipeline, which
    rejects or dead-letters it; OCR stays in the decision pipeline too. Transient embedding errors
    propagate, so the caller can retry."""
    events = [e for e in repository.events_by_ids(session, tenant, event_ids).values() if e.status == "accepted"]
    already = repository.decided_event_ids(session, tenant, [e.event_id for e in events])
    ctx = for_tenant(session, ctx, tenant)
    items = []
    for event in events:
        if event.event_id in already:
            continue
        try:
            upload = UploadEvent.parse(event.payload)
            items.append(_Item(event.event_id, event.attempts, event.payload, upload, load(upload, ctx.settings)))
        except (InvalidEvent, RejectedInput):
            continue
    _embed_all(session, ctx, tenant, items)
    items = [i for i in items if i.failure is None]
    _store(session, ctx, tenant, items)
    return len(items)


def _embed_all(session: Session, ctx: Context, tenant: str, items: list[_Item]) -> None:
    _embed(session, ctx, tenant, items, Task.CLASSIFICATION)
    # Where the task changes the vector (prefixed text), cluster reports get their own.
    _embed(session, ctx, tenant, [i for i in items if i.failure is None and i.vectors[0].task != task_key(
        ctx.embedder, Task.CLUSTERING, i.loaded.content.modality)], Task.CLUSTERING)


def _store(session: Session, ctx: Context, tenant: str, items: list[_Item]) -> dict[str, int]:
    """Upsert the items' assets and store their vectors: {asset_id: asset pk}."""
    asset_pks = repository.upsert_assets(session, tenant, [dict(
        asset_id=i.upload.asset_id, **asset_fields(i.upload, i.loaded), ocr_text=i.read.text if i.read else None,
        ocr_confidence=i.read.confidence if i.read else None) for i in items])
    for item in items:
        fault_injection_point(ctx.settings, "after_embed", tenant, item.event_id)
    repository.store_embeddings(session, tenant, ctx.embedder.model_id, ctx.embedder.dims, [
        dict(asset_pk=asset_pks[i.upload.asset_id], sha256=i.loaded.sha256, modality=i.loaded.content.modality,
             task=v.task, vector=v.vector) for i in items for v in i.vectors])
    return asset_pks


def _embed(session: Session, ctx: Context, tenant: str, items: list[_Item], task: Task) -> None:
    """Append each item's vector for `task`, or set its failure."""
    outcomes = embed_each(session, ctx.embedder, tenant, [i.loaded for i in items], task)
    for item, outcome in zip(items, outcomes):
        if isinstance(outcome, EmbeddingError):
            item.failure = outcome
        else:
            item.vectors.append(outcome)


def _classify(session: Session, ctx: Context, tenant: str, items: list[_Item]) -> list[dict]:
    if not items:
        return []
    embedder = ctx.embedder
    asset_pks = _store(session, ctx, tenant, items)
    # Hash-bank matching comes before the vote: a known hash decides whatever the neighbours say.
    hashes = {i.event_id: content_hashes(i.loaded) for i in items}
    store_hashes(session, tenant, [(asset_pks[i.upload.asset_id], hashes[i.event_id]) for i in items])
    matched = dict(zip(hashes, match_uploads(session, tenant, ctx.policy, list(hashes.values()))))
    version = repository.bank_version(session, tenant)
    neighbors: dict[str, list] = {}
    for task in sorted({i.vectors[0].task for i in items}):
        group = [i for i in items if i.vectors[0].task == task]
        found = knn_cache.nearest(session, tenant, embedder.model_id, embedder.dims, task,
                                   [i.vectors[0].vector for i in group], ctx.policy.k, version, **knn_scan(ctx))
        neighbors.update((i.event_id, n) for i, n in zip(group, found))
    texts = dict(zip([i.event_id for i in items],
                     image_text.text_evidence(session, ctx, tenant, [i.read for i in items], version)))
    pdq = {event_id: next((h.signal for h in found if h.signal_type == "pdq"), None)
           for event_id, found in hashes.items()}
    exemplar_pdq = repository.asset_pdq_hashes(session, tenant, [
        n.asset_id for event_id, found in neighbors.items() if pdq[event_id] for n in found])
    thresholds: dict[tuple[str, str], float] = {}
    rows = []
    for item in items:
        key = (item.loaded.content.modality, item.vectors[0].task)
        if key not in thresholds:
            thresholds[key] = anomaly_threshold(session, ctx, tenant, *key, version)
        rows.append(decision_row(ctx, item.upload, asset_pks[item.upload.asset_id], neighbors[item.event_id],
                                 thresholds[key], version, matched[item.event_id], pdq[item.event_id], exemplar_pdq,
                                 texts[item.event_id], item.loaded.content.modality))
    return rows


def _record(session: Session, tenant: str, rows: list[dict]) -> list[dict]:
    decided_at = datetime.now(timezone.utc)
    for row in rows:
        row["decided_at"] = decided_at
    # The public payload is the one JSON of a decision: its row and its outbox message are both read from it.
    public = [decision_payload(r) for r in rows]
    new = repository.record_decisions(session, public, [r["asset_pk"] for r in rows],
                                      [decision_message_id(p) for p in public])
    repository.set_events_status(session, tenant, [r["event_id"] for r in rows], "decided")
    return [p for p in public if p["event_id"] in new]
