"""Re-embed a tenant's assets and exemplars under another (model, dims), then switch to it.

The live workers keep deciding with the tenant's current model meanwhile: the new vectors sit
beside the old ones (every row names model, dims and task) and nothing reads them until the
switch. Work goes in batches, one transaction each, so an interrupted run keeps what it did and
a re-run skips every asset that already has the target's vectors. Identical content is embedded
once (the content-hash cache), and every call is counted in the usage table.

Sources, in order: an exemplar's stored import content, the payloads of the upload events
decided for the asset (newest first), the asset's `source_uri`, and a text asset's stored
excerpt when it is the whole text. A source must still hash to the asset's sha256; an asset with
no readable source is reported and left out, never fatal.

The switch is one transaction: under the tenant's lock it embeds whatever arrived during the
run (stragglers), then makes the target the tenant's only active model. Workers read the active
model per task (tenant_models.py), so the next decision uses it.
"""
from __future__ import annotations

import time
from typing import Callable

from sqlalchemy.orm import Session

from governance.embedding.protocol import Embedder, EmbeddingError, Task
from governance.embedding.reembed_sources import ReembedResult, TASKS, for_task, load_sources
from governance.embedding.vector_cache import embed_each, task_key
from governance.platform.config import Settings
from governance.storage import repository


def needed_tasks(embedder: Embedder, modality: str) -> set[str]:
    return {task_key(embedder, task, modality) for task in TASKS}


def pending_assets(session: Session, tenant: str, target: Embedder) -> tuple[int, list[int]]:
    """(number of assets, pks of those missing a vector of the target), oldest first."""
    rows = repository.assets_with_tasks(session, tenant, target.model_id, target.dims)
    return len(rows), [pk for pk, _, modality, tasks in rows if not needed_tasks(target, modality) <= tasks]


def reembed(sessions: Callable, settings: Settings, tenant: str, spec: str, target: Embedder, *,
            batch_size: int = 64, limit: int | None = None, enter: Callable[[Session], None] = lambda s: None,
            progress: Callable[[int, int], None] = lambda done, total: None, batch_api: bool = False,
            wait_s: float = 30.0, sleep: Callable[[float], None] = time.sleep) -> ReembedResult:
    """Fill the target's vectors batch by batch (one transaction each), then switch the tenant.

    `sessions()` gives a transaction scope; `enter(session)` sets its row-level-security scope.
    With `limit`, stop after that many assets and do not switch. With `batch_api`, the vectors
    come from Gemini Batch API jobs (reembed_batch.py), polled every `wait_s` until done.
    """
    result = ReembedResult(target.model_id, target.dims)
    with sessions() as session:
        enter(session)
        result.total, pending = pending_assets(session, tenant, target)
    result.already_done = result.total - len(pending)
    todo = pending if limit is None else pending[:limit]
    result.remaining = len(pending) - len(todo)
    progress(0, len(todo))
    if batch_api:
        from governance.embedding.reembed_batch import fill_with_batch_api

        fill_with_batch_api(sessions, enter, settings, tenant, target, todo, batch_size, result, progress,
                            wait_s, sleep)
    else:
        for first in range(0, len(todo), batch_size):
            with sessions() as session:
                enter(session)
                done, unreadable = embed_assets(session, settings, tenant, target, todo[first:first + batch_size])
            result.embedded += done
            result.unreadable += unreadable
            progress(min(first + batch_size, len(todo)), len(todo))
    if not result.remaining:
        with sessions() as session:
            enter(session)
            switch(session, settings, tenant, spec, target, result)
    return result


def switch(session: Session, settings: Settings, tenant: str, spec: str, target: Embedder,
           result: ReembedResult) -> None:
    """Under the tenant's lock: embed what arrived during the run, then make the target active."""
    repository.lock_tenant_models(session, tenant)
    skip = {asset_id for asset_id, _ in result.unreadable}
    _, stragglers = pending_assets(session, tenant, target)
    done, unreadable = embed_assets(session, settings, tenant, target, stragglers, skip_ids=skip)
    result.embedded += done
    result.unreadable += unreadable
    before = repository.active_tenant_model(session, tenant)
    repository.activate_tenant_model(session, tenant, spec, target.dims, target.model_id)
    repository.insert_audit(session, tenant=tenant, kind="model_switch",
                            before=None if before is None else {"spec": before[0], "dims": before[1],
                                                                "model": before[2]},
                            after={"spec": spec, "dims": target.dims, "model": target.model_id,
                                   "embedded": result.embedded, "unreadable": len(result.unreadable)})
    result.switched = True


def embed_assets(session: Session, settings: Settings, tenant: str, target: Embedder, asset_pks: list[int],
                 skip_ids: set[str] = frozenset()) -> tuple[int, list[tuple[str, str]]]:
    """Store the target's vectors for these assets; (assets embedded, unreadable ones with reasons)."""
    ready, unreadable = load_sources(session, settings, tenant, asset_pks, skip_ids)
    done = 0
    for task in TASKS:
        keyed = for_task(target, task, ready)
        rows = [dict(asset_pk=asset.id, sha256=loaded.sha256, modality=loaded.content.modality, task=vector.task,
                     vector=vector.vector, in_bank=in_bank)
                for (asset, loaded, in_bank), vector in zip(keyed, _embed(session, target, tenant, keyed, task,
                                                                           unreadable)) if vector is not None]
        repository.store_embeddings(session, tenant, target.model_id, target.dims, rows)
        if task == Task.CLASSIFICATION:
            done += len(rows)
    return done, unreadable


def _embed(session: Session, target: Embedder, tenant: str, keyed: list, task: Task, unreadable: list) -> list:
    """The batch's vectors, None for each item the target cannot embed (listed in `unreadable`)."""
    vectors = []
    outcomes = embed_each(session, target, tenant, [loaded for _, loaded, _ in keyed], task)
    for (asset, _, _), outcome in zip(keyed, outcomes):
        if isinstance(outcome, EmbeddingError):
            unreadable.append((asset.asset_id, f"embedding_failed: {outcome}"))
            outcome = None
        vectors.append(outcome)
    return vectors


