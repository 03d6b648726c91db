"""Cluster reports: load the window's clustering vectors, cluster them, store and write the report.

Each modality is clustered on its own. Densities differ a lot between modalities even in one
shared space (image features sit far closer together than sentence vectors), and a single
HDBSCAN lets the densest modality's blob swallow the hierarchy: on the development corpus one
global run found 2 clusters and missed the emerging text group, per-modality runs found it
with purity 0.97.
"""
from __future__ import annotations

import hashlib
import re
from collections import defaultdict
from datetime import datetime, timedelta, timezone
from pathlib import Path

import numpy as np
from sqlalchemy.orm import Session

from governance.clustering.analysis import analyse, previous_clusters_from_report
from governance.clustering.rendering import finite_json, write_report
from governance.embedding.protocol import Task
from governance.embedding.vector_cache import task_key
from governance.moderation.pipeline import Context, for_tenant
from governance.storage import repository

MODALITIES = ("text", "image", "pdf", "audio", "video")


def active_tenants(session: Session, ctx: Context) -> list[str]:
    since = datetime.now(timezone.utc) - timedelta(days=ctx.settings.cluster_window_days)
    return repository.tenants_with_recent_decisions(session, since)


def _load_rows(session: Session, ctx: Context, tenant: str) -> list[tuple]:
    settings, embedder = ctx.settings, ctx.embedder
    since = datetime.now(timezone.utc) - timedelta(days=settings.cluster_window_days)
    rows = []
    # Media may be stored under a task-independent key; gather every key the clustering task maps to.
    for key in sorted({task_key(embedder, Task.CLUSTERING, m) for m in MODALITIES}):
        rows += repository.recent_assets_for_clustering(session, tenant, embedder.model_id, embedder.dims, key,
                                                        since, limit=max(settings.cluster_sample * 5, 1000))
    return rows


def _merge(parts: list[dict], previous_ids: list[str]) -> dict:
    """One report from per-modality reports; map coordinates are shifted into separate bands."""
    merged = {"clusters": [], "noise": [], "alerts": [], "map": [], "params": {}}
    for band, (modality, part) in enumerate(parts):
        for cluster in part["clusters"]:
            merged["clusters"].append({**cluster, "modality": modality})
        merged["noise"] += part["noise"]
        merged["alerts"] += [{**alert, "modality": modality} for alert in part["alerts"]]
        merged["map"] += [{**point, "x": point["x"] + 3.0 * band} for point in _normalised(part["map"])]
        merged["params"][modality] = part.get("params", {})
    kept = {i for c in merged["clusters"] for i in (c["cluster_id"], *c.get("previous_ids", []))}
    merged["gone"] = [cluster_id for cluster_id in previous_ids if cluster_id not in kept]
    merged["clusters"].sort(key=lambda c: -c["size"])
    merged["noise"].sort()
    return merged


def _normalised(points: list[dict]) -> list[dict]:
    """Scale a band's 2-D map into [0, 2] × [0, 2] so bands of different spread sit side by side."""
    if not points:
        return []
    xs, ys = np.array([p["x"] for p in points]), np.array([p["y"] for p in points])
    span = max(float(np.ptp(xs)), float(np.ptp(ys)), 1e-9)
    return [{**p, "x": float((p["x"] - xs.min()) * 2 / span), "y": float((p["y"] - ys.min()) * 2 / span)}
            for p in points]


def build_report(session: Session, ctx: Context, tenant: str) -> dict:
    ctx = for_tenant(session, ctx, tenant)  # the tenant's active model
    settings, embedder = ctx.settings, ctx.embedder
    rows = _load_rows(session, ctx, tenant)
    previous = repository.latest_cluster_report(session, tenant)
    previous_report = previous.report if previous else {"clusters": []}
    by_modality: dict[str, list[tuple]] = defaultdict(list)
    for row in rows:
        by_modality[row[6]].append(row)
    parts = []
    for modality in sorted(by_modality):
        group = by_modality[modality]
        asset_ids = [r[0] for r in group]
        vectors = np.stack([repository.as_array(r[1]) for r in group])
        parts.append((modality, analyse(
            asset_ids, vectors, [r[2] for r in group],
            # Only an automatic decision's label counts as known; review and reject are "unlabelled".
            [r[3] if r[5] not in ("review", "reject") else None for r in group], [bool(r[4]) for r in group],
            previous=previous_clusters_from_report(previous_report, asset_ids, vectors),
            min_cluster_size=settings.cluster_min_size, sample_size=settings.cluster_sample,
        )))
    report = _merge(parts, [c["cluster_id"] for c in previous_report.get("clusters", [])])
    report.update(tenant=tenant, model=embedder.model_id, generated_at=datetime.now(timezone.utc).isoformat(),
                  window_days=settings.cluster_window_days, items=len(rows))
    return finite_json(report)


def build_and_store(session: Session, ctx: Context, tenant: str, out_dir: Path | None = None) -> dict[str, Path]:
    report = build_report(session, ctx, tenant)
    repository.store_cluster_report(session, tenant, report["model"], report)
    # Kind "cluster" (webhook subscriptions choose by kind); the message id keeps its older prefix.
    repository.enqueue_outbox(session, [
        dict(tenant=tenant, kind="cluster", message_id=f"alert:{tenant}:{alert.get('kind')}:{alert.get('cluster_id')}",
             payload={"tenant": tenant, **alert}) for alert in report.get("alerts", [])])
    if out_dir is None:
        stamp = report["generated_at"].replace(":", "").replace("-", "")[:15]
        out_dir = ctx.settings.data_dir / "reports" / tenant_folder(tenant) / stamp
    return write_report(report, out_dir)


def tenant_folder(tenant: str) -> str:
    """A folder name for the tenant's reports that no tenant string can turn into a path.

    The slug keeps the folder recognisable; the hash of the whole name keeps tenants that slug
    alike ("a/b", "a-b") apart. It must hold for any string, grammar or not: '/', '..', NUL,
    lone surrogates.
    """
    slug = re.sub(r"[^A-Za-z0-9_-]+", "-", tenant).strip("-")[:40] or "tenant"
    digest = hashlib.sha256(tenant.encode("utf-8", "surrogatepass")).hexdigest()[:16]
    return f"{slug}-{digest}"


def history(session: Session, tenant: str, limit: int = 20) -> list[dict]:
    """The tenant's stored reports, newest first, each with what changed since the one before it."""
    reports = repository.cluster_reports(session, tenant, limit + 1)
    rows = []
    for newer, older in zip(reports, reports[1:] + [None]):
        rows.append({"report_id": newer.id, "generated_at": newer.generated_at.isoformat(),
                     "clusters": len(newer.report.get("clusters", [])), "noise": len(newer.report.get("noise", [])),
                     "alerts": len(newer.report.get("alerts", [])),
                     "changes": diff(older.report if older else {"clusters": []}, newer.report)})
    return rows[:limit]


def latest_report(session: Session, tenant: str) -> dict | None:
    """The tenant's newest stored report (the report.json document) with its id, or None."""
    stored = repository.latest_cluster_report(session, tenant)
    if stored is None:
        return None
    return {"report_id": stored.id, "stored_at": stored.generated_at.isoformat(), "report": stored.report}


def diff(older: dict, newer: dict) -> dict:
    """Cluster ids that appeared, disappeared or changed size between two reports."""
    before = {c["cluster_id"]: c["size"] for c in older.get("clusters", [])}
    after = {c["cluster_id"]: c["size"] for c in newer.get("clusters", [])}
    return {
        "new": sorted(set(after) - set(before)),
        "gone": sorted(set(before) - set(after)),
        "resized": {cid: after[cid] - before[cid] for cid in sorted(set(before) & set(after))
                    if after[cid] != before[cid]},
    }
