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


class _ModalityRows:
    """One modality's rows as analyse() takes them, filled batch by batch from the stream.

    The vectors go into one buffer that doubles in place when full (ndarray.resize reallocates,
    and a large block is remapped rather than copied), so the window's vectors are held once; a
    list of blocks concatenated at the end would hold them twice at that moment."""

    def __init__(self, dims: int):
        self.vectors = np.empty((4096, dims), dtype=np.float32)
        self.asset_ids: list[str] = []
        self.texts: list[str | None] = []
        self.labels: list[str | None] = []
        self.anomalous: list[bool] = []

    def add(self, row: tuple) -> None:
        asset_id, vector, text, label, flagged, action = row[:6]
        if len(self.asset_ids) == self.vectors.shape[0]:
            self.vectors.resize((2 * self.vectors.shape[0], self.vectors.shape[1]), refcheck=False)
        self.vectors[len(self.asset_ids)] = repository.as_array(vector)
        self.asset_ids.append(asset_id)
        self.texts.append(text)
        # Only an automatic decision's label counts as known; review and reject are "unlabelled".
        self.labels.append(label if action not in ("review", "reject") else None)
        self.anomalous.append(bool(flagged))


def _load_rows(session: Session, ctx: Context, tenant: str) -> tuple[dict[str, _ModalityRows], int]:
    settings, embedder = ctx.settings, ctx.embedder
    since = datetime.now(timezone.utc) - timedelta(days=settings.cluster_window_days)
    # Media may be stored under a task-independent key; gather every key the clustering task maps to.
    keys = sorted({task_key(embedder, Task.CLUSTERING, m) for m in MODALITIES})
    by_modality: dict[str, _ModalityRows] = {}
    items = 0
    for key in keys:
        for batch in repository.stream_assets_for_clustering(session, tenant, embedder.model_id, embedder.dims, key,
                                                             since, limit=settings.cluster_max_rows):
            for row in batch:
                if row[6] not in by_modality:
                    by_modality[row[6]] = _ModalityRows(embedder.dims)
                by_modality[row[6]].add(row)
            items += len(batch)
    return by_modality, items


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
    by_modality, items = _load_rows(session, ctx, tenant)
    previous = repository.latest_cluster_report(session, tenant)
    previous_report = previous.report if previous else {"clusters": []}
    parts = []
    for modality in sorted(by_modality):
        group = by_modality.pop(modality)  # each modality's buffer is freed once it is clustered
        vectors = group.vectors[:len(group.asset_ids)]
        parts.append((modality, analyse(
            group.asset_ids, vectors, group.texts, group.labels, group.anomalous,
            previous=previous_clusters_from_report(previous_report, group.asset_ids, vectors),
            min_cluster_size=settings.cluster_min_size, sample_size=settings.cluster_sample,
        )))
        del group, vectors
    report = _merge(parts, [c["cluster_id"] for c in previous_report.get("clusters", [])])
    report.update(tenant=tenant, model=embedder.model_id, generated_at=datetime.now(timezone.utc).isoformat(),
                  window_days=settings.cluster_window_days, items=items)
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
