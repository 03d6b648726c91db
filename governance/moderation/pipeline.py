"""The collaborators of the moderation use cases (Context, per tenant) and what the decision
pipeline (batch_pipeline.py), backtest and review share: kNN settings, asset fields, anomaly
thresholds. Each use case takes a Session and flushes; the caller that owns the session commits."""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Callable

from sqlalchemy.orm import Session

from governance.embedding.protocol import Embedder
from governance.embedding.tenant_models import tenant_embedder
from governance.ingest.assets import LoadedAsset
from governance.ingest.events import UploadEvent
from governance.moderation import anomaly
from governance.moderation.policy_rules import Policy
from governance.moderation.policy_store import current_policy
from governance.platform.config import Settings
from governance.storage import repository

ANOMALY_SAMPLE = 5000


@dataclass
class Context:
    """The collaborators a use case needs, built once per process by the caller."""

    settings: Settings
    embedder: Embedder
    policy: Policy = field(default_factory=Policy)  # used for tenants that have applied no policy
    wrap_embedder: Callable[[Embedder], Embedder] | None = None  # e.g. metrics, for tenant embedders too


def for_tenant(session: Session, ctx: Context, tenant: str) -> Context:
    """The context with the tenant's current applied policy (cached per process; see policy_store.py)
    and the tenant's active embedder (see tenant_models.py)."""
    policy = current_policy(session, tenant, ctx.policy)
    embedder = tenant_embedder(session, ctx.settings, ctx.embedder, tenant, ctx.wrap_embedder)
    if policy is ctx.policy and embedder is ctx.embedder:
        return ctx
    return replace(ctx, policy=policy, embedder=embedder)


def knn_scan(ctx: Context, cached: bool = True) -> dict:
    """The kNN settings: HNSW search settings for each kNN transaction (Settings.knn_ef_search) and,
    unless `cached` is False, the in-process bank cache's size (knn_cache.py)."""
    scan = {"ef_search": ctx.settings.knn_ef_search, "iterative_scan": ctx.settings.knn_iterative_scan}
    return {**scan, "cache_vectors": ctx.settings.knn_cache_vectors} if cached else scan


def asset_fields(upload: UploadEvent, loaded: LoadedAsset) -> dict:
    return dict(sha256=loaded.sha256, modality=loaded.content.modality, mime_type=loaded.content.mime_type,
                size_bytes=loaded.size_bytes, source_uri=loaded.source_uri, title=upload.title,
                extra=upload.metadata, text_excerpt=loaded.text_excerpt, status="embedded")


def anomaly_threshold(session: Session, ctx: Context, tenant: str, modality: str, task: str, version: int,
                      k: int | None = None) -> float:
    """The bank's threshold for this modality (of k-th-neighbour distances, k default the policy's),
    computed once per bank version and cached."""
    model, dims, k = ctx.embedder.model_id, ctx.embedder.dims, k or ctx.policy.k
    cached = repository.anomaly_threshold(session, tenant, model, dims, modality, version, k)
    if cached is not None:
        return cached
    vectors = repository.bank_vectors(session, tenant, model, dims, task, modality, ANOMALY_SAMPLE)
    threshold = anomaly.bank_threshold(vectors, k, ctx.settings.anomaly_quantile)
    repository.store_anomaly_threshold(session, tenant=tenant, model=model, dims=dims, modality=modality,
                                       bank_version=version, k=k, threshold=threshold, sample_size=len(vectors))
    return threshold
