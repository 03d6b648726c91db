"""Re-reading stored assets for re-embedding (shared by the sync and Batch API paths)."""
from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy.orm import Session

from governance.embedding.protocol import Embedder, Task
from governance.embedding.vector_cache import task_key
from governance.ingest.assets import load, LoadedAsset, RejectedInput
from governance.ingest.events import InvalidEvent, UploadEvent
from governance.platform.config import Settings
from governance.storage import repository
from governance.storage.tables import Asset


TASKS = (Task.CLASSIFICATION, Task.CLUSTERING)


@dataclass
class ReembedResult:
    model_id: str
    dims: int
    total: int = 0  # assets of the tenant
    already_done: int = 0  # had the target's vectors before this run
    embedded: int = 0  # given the target's vectors by this run
    unreadable: list[tuple[str, str]] = field(default_factory=list)  # (asset_id, reason)
    remaining: int = 0  # left for a later run (--limit)
    switched: bool = False
    batch_failures: list[str] = field(default_factory=list)  # Batch API jobs that failed (re-run resubmits)


Ready = tuple[Asset, LoadedAsset, bool]  # (asset, its content read again, in the bank)


def load_sources(session: Session, settings: Settings, tenant: str, asset_pks: list[int],
                 skip_ids: set[str] = frozenset()) -> tuple[list[Ready], list[tuple[str, str]]]:
    """The assets' contents read again, and (asset_id, reason) for those that cannot be."""
    sources = repository.asset_sources(session, tenant, asset_pks)
    ready: list[Ready] = []
    unreadable: list[tuple[str, str]] = []
    for pk in asset_pks:
        found = sources.get(pk)
        if found is None or found["asset"].asset_id in skip_ids:
            continue
        asset = found["asset"]
        try:
            ready.append((asset, reread(asset, found["payloads"], settings), found["in_bank"]))
        except RejectedInput as exc:
            unreadable.append((asset.asset_id, str(exc)))
    return ready, unreadable


def for_task(target: Embedder, task: Task, ready: list[Ready]) -> list[Ready]:
    """The assets that need a vector of their own for `task` (clustering only where it differs)."""
    return [entry for entry in ready if task == Task.CLASSIFICATION or task_key(target, task, entry[0].modality)
            != task_key(target, Task.CLASSIFICATION, entry[0].modality)]


def reread(asset: Asset, payloads: list[dict], settings: Settings) -> LoadedAsset:
    """The asset's content again, from the first stored source that still hashes to its sha256."""
    candidates = [*payloads]
    if asset.source_uri:
        candidates.append({"uri": asset.source_uri})
    if asset.modality == "text" and asset.text_excerpt and len(asset.text_excerpt) < 2000:
        candidates.append({"text": asset.text_excerpt})  # shorter than the excerpt limit: the whole text
    reasons = []
    for payload in candidates:
        content = {k: payload[k] for k in ("text", "uri", "data_b64", "mime_type") if payload.get(k) is not None}
        try:
            loaded = load(UploadEvent.parse({"asset_id": asset.asset_id, "tenant": asset.tenant, **content}),
                          settings)
        except (InvalidEvent, RejectedInput) as exc:
            reasons.append(str(exc))
            continue
        if loaded.sha256 == asset.sha256:
            return loaded
        reasons.append("source_changed: content no longer matches the stored sha256")
    raise RejectedInput("unreadable_source: " + ("; ".join(dict.fromkeys(reasons)) or "no stored source"))
