"""`reembed --batch-api`: fill the target's vectors through Gemini Batch API jobs (half price).

Per chunk of assets and per task, one job; its name and the assets it covers are committed in
`embedding_batch_jobs` right after it is submitted, so an interrupted run polls the same jobs
again instead of paying twice. No transaction stays open while a job runs. Finished jobs are
stored one transaction each, with their spend recorded as `batch` usage. Content that already
has a vector of the target (identical bytes) is copied, not sent. A failed job leaves its assets
pending: the run does not switch, and the next run submits them again.
"""
from __future__ import annotations

from itertools import batched
from typing import Callable

from sqlalchemy.orm import Session

from governance.embedding import usage
from governance.embedding.protocol import Embedder
from governance.embedding.reembed_sources import TASKS, ReembedResult, for_task, load_sources
from governance.embedding.vector_cache import check_vector, task_key
from governance.platform.config import Settings
from governance.storage import repository


def fill_with_batch_api(sessions: Callable, enter: Callable[[Session], None], settings: Settings, tenant: str,
                        target: Embedder, todo: list[int], batch_size: int, result: ReembedResult,
                        progress: Callable[[int, int], None], wait_s: float, sleep: Callable[[float], None]) -> None:
    from governance.embedding.backends.gemini.client import GeminiEmbedder

    if not isinstance(target, GeminiEmbedder):
        raise ValueError(f"--batch-api needs a Gemini model, not {target.model_id}")
    with sessions() as session:
        enter(session)
        covered = {item["asset_pk"] for job in repository.open_batch_jobs(session, tenant, target.model_id,
                                                                          target.dims) for item in job.items}
    for chunk in batched([pk for pk in todo if pk not in covered], batch_size):
        _submit_chunk(sessions, enter, settings, tenant, target, chunk, result)
    _collect(sessions, enter, tenant, target, len(todo), result, progress, wait_s, sleep)


def _submit_chunk(sessions, enter, settings, tenant, target, chunk, result) -> None:
    from governance.embedding.backends.gemini import batch

    requests = {}
    with sessions() as session:
        enter(session)
        ready, unreadable = load_sources(session, settings, tenant, chunk)
        for task in TASKS:
            requests[task] = _requests(session, tenant, target, task, for_task(target, task, ready), result)
    result.unreadable += unreadable
    for task, (items, contents) in requests.items():
        if not contents:
            continue
        name = batch.submit(target, contents, task, display_name=f"reembed {tenant} {target.model_id}")
        with sessions() as session:  # at once: a run that stops now polls this job next time
            enter(session)
            repository.insert_batch_job(session, tenant=tenant, job_name=name, model=target.model_id,
                                        dims=target.dims, task=task.value, items=items)


def _requests(session: Session, tenant: str, target: Embedder, task, ready, result: ReembedResult):
    """(job items, contents to send) for one task; content the target already has is copied instead."""
    items, contents, index_of = [], [], {}
    for asset, loaded, in_bank in ready:
        key = task_key(target, task, asset.modality)
        cached = repository.cached_vectors(session, tenant, [loaded.sha256], target.model_id, target.dims,
                                           key).get(loaded.sha256)
        if cached is not None:
            repository.store_embeddings(session, tenant, target.model_id, target.dims, [dict(
                asset_pk=asset.id, sha256=loaded.sha256, modality=asset.modality, task=key, vector=cached,
                in_bank=in_bank)])
            if task.value == "classification":
                result.embedded += 1
            continue
        if loaded.sha256 not in index_of:
            index_of[loaded.sha256] = len(contents)
            contents.append(loaded.content)
        items.append({"asset_pk": asset.id, "asset_id": asset.asset_id, "sha256": loaded.sha256,
                      "modality": asset.modality, "task": key, "index": index_of[loaded.sha256]})
    return items, contents


def _collect(sessions, enter, tenant, target, total, result, progress, wait_s, sleep) -> None:
    from governance.embedding.backends.gemini import batch

    done, failed = 0, set()
    while True:
        with sessions() as session:
            enter(session)
            jobs = [(job.id, job.job_name, job.task, job.items)
                    for job in repository.open_batch_jobs(session, tenant, target.model_id, target.dims)]
        if not jobs:
            result.remaining += len(failed)
            return
        waiting = False
        for job_pk, name, task, items in jobs:
            outcome = batch.poll(target, name, 1 + max(item["index"] for item in items))
            if outcome.state == "running":
                waiting = True
                continue
            with sessions() as session:
                enter(session)
                if outcome.state == "succeeded":
                    _store(session, tenant, target, items, outcome)
                    if task == "classification":
                        done += len({item["asset_pk"] for item in items})
                        result.embedded += len({item["asset_pk"] for item in items})
                else:
                    result.batch_failures.append(f"{name}: {outcome.error}")
                    failed |= {item["asset_pk"] for item in items}  # still pending: no switch this run
                repository.finish_batch_job(session, tenant, job_pk, "stored" if outcome.state == "succeeded"
                                            else "failed")
            progress(min(done, total), total)
        if waiting:
            sleep(wait_s)


def _store(session: Session, tenant: str, target: Embedder, items: list[dict], outcome) -> None:
    in_bank = repository.bank_asset_pks(session, tenant, [item["asset_pk"] for item in items])
    repository.store_embeddings(session, tenant, target.model_id, target.dims, [dict(
        asset_pk=item["asset_pk"], sha256=item["sha256"], modality=item["modality"], task=item["task"],
        vector=check_vector(outcome.vectors[item["index"]], target.dims), in_bank=item["asset_pk"] in in_bank)
        for item in items])
    sent = len(outcome.vectors)
    usage.record(session, tenant, target, items=sent, cached=len(items) - sent, usage=outcome.usage, mode="batch")
