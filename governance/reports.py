"""Cluster reports: load the window's clustering vectors, cluster them, store and write the report."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path

import numpy as np
from sqlalchemy.orm import Session

from governance import repository
from governance.cluster_report import write_report
from governance.clustering import analyse, previous_clusters_from_report
from governance.embedders import Task
from governance.embedding_store import task_key
from governance.services import Context


def active_tenants(session: Session, ctx: Context) -> list[str]:
    since = datetime.now(timezone.utc) - timedelta(days=ctx.settings.cluster_window_days)
    return repository.tenants_with_recent_decisions(session, since)


def build_report(session: Session, ctx: Context, tenant: str) -> dict:
    settings, embedder = ctx.settings, ctx.embedder
    since = datetime.now(timezone.utc) - timedelta(days=settings.cluster_window_days)
    rows = []
    # Media may be stored under a task-independent key; gather every key the clustering task maps to.
    for key in sorted({task_key(embedder, Task.CLUSTERING, m) for m in ("text", "image", "pdf", "audio", "video")}):
        rows += repository.recent_assets_for_clustering(session, tenant, embedder.model_id, embedder.dims, key,
                                                        since, limit=max(settings.cluster_sample * 5, 1000))
    previous = repository.latest_cluster_report(session, tenant)
    if rows:
        asset_ids = [r[0] for r in rows]
        vectors = np.stack([repository.as_array(r[1]) for r in rows])
        previous_clusters = previous_clusters_from_report(previous.report, asset_ids, vectors) if previous else []
        report = analyse(
            asset_ids, vectors, [r[2] for r in rows],
            [r[3] if r[5] not in ("review", "reject") else None for r in rows], [bool(r[4]) for r in rows],
            previous=previous_clusters, min_cluster_size=settings.cluster_min_size,
            sample_size=settings.cluster_sample,
        )
    else:
        gone = [c["cluster_id"] for c in previous.report.get("clusters", [])] if previous else []
        report = {"clusters": [], "noise": [], "gone": gone, "alerts": [], "map": []}
    report.update(tenant=tenant, model=embedder.model_id, generated_at=datetime.now(timezone.utc).isoformat(),
                  window_days=settings.cluster_window_days, items=len(rows))
    return report


def build_and_store(session: Session, ctx: Context, tenant: str, out_dir: Path | None = None) -> dict[str, Path]:
    report = build_report(session, ctx, tenant)
    repository.store_cluster_report(session, tenant, ctx.embedder.model_id, report)
    for alert in report.get("alerts", []):
        repository.enqueue_outbox(session, tenant=tenant, kind="alert",
                                  message_id=f"alert:{tenant}:{alert.get('kind')}:{alert.get('cluster_id')}",
                                  payload={"tenant": tenant, **alert})
    if out_dir is None:
        stamp = report["generated_at"].replace(":", "").replace("-", "")[:15]
        out_dir = ctx.settings.data_dir / "reports" / tenant / stamp
    return write_report(report, out_dir)
