"""Stored cluster reports."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.dialects.postgresql import distinct_on
from sqlalchemy.orm import Session

from governance.storage.repository._sql import vector_sql
from governance.storage.tables import Asset, Cluster, ClusterReport, Decision, Embedding


def recent_assets_for_clustering(session: Session, tenant: str, model: str, dims: int, task: str,
                                 since: datetime, limit: int) -> list[tuple]:
    """(asset_id, vector, text_excerpt, decision label, anomaly flagged, action, modality) for the window's uploads.
    An image's excerpt is the text OCR read in it, so cluster keywords can name a wave of text pictures.

    One row per asset: the vector of its current content (an asset id re-uploaded with other content
    keeps its old vector under another task key until re-embedded, and must not count twice) with its
    latest decision (every event for the asset is decided, but the asset is one point to cluster).
    """
    column, _ = vector_sql(dims)
    flagged = func.coalesce(Decision.anomaly["flagged"].as_boolean(), False)
    latest = (
        select(Asset.asset_id, getattr(Embedding, column).label("vector"),
               func.coalesce(Asset.text_excerpt, Asset.ocr_text).label("text_excerpt"), Decision.label,
               flagged.label("flagged"), Decision.action, Embedding.modality)
        .join(Asset, (Asset.id == Embedding.asset_pk) & (Asset.tenant == tenant) & (Asset.sha256 == Embedding.sha256))
        .join(Decision, (Decision.asset_pk == Embedding.asset_pk) & (Decision.tenant == tenant))
        .where(Embedding.tenant == tenant, Embedding.model == model, Embedding.dims == dims,
               Embedding.task == task, Decision.decided_at >= since)
        .ext(distinct_on(Asset.id)).order_by(Asset.id, Decision.decided_at.desc(), Decision.id.desc())
    ).subquery()
    # A stable pseudo-random sample when capped.
    query = select(latest).order_by(func.md5(latest.c.asset_id)).limit(limit)
    return [tuple(r) for r in session.execute(query)]


def latest_cluster_report(session: Session, tenant: str) -> ClusterReport | None:
    return session.scalars(select(ClusterReport).where(ClusterReport.tenant == tenant)
                           .order_by(ClusterReport.generated_at.desc(), ClusterReport.id.desc()).limit(1)).first()


def cluster_reports(session: Session, tenant: str, limit: int) -> list[ClusterReport]:
    return list(session.scalars(select(ClusterReport).where(ClusterReport.tenant == tenant)
                                .order_by(ClusterReport.id.desc()).limit(limit)))


def store_cluster_report(session: Session, tenant: str, model: str, report: dict) -> int:
    saved = ClusterReport(tenant=tenant, model=model, report=report)
    session.add(saved)
    session.flush()
    for cluster in report.get("clusters", []):
        session.add(Cluster(
            tenant=tenant, report_pk=saved.id, cluster_id=cluster["cluster_id"], size=cluster["size"],
            status=cluster.get("status", "new"), members=cluster["members"],
            summary={k: v for k, v in cluster.items() if k != "members"},
        ))
    session.flush()
    return saved.id


def cluster_report_by_id(session: Session, tenant: str, report_id: int) -> ClusterReport | None:
    """One stored report of the tenant; another tenant's id finds nothing."""
    return session.scalars(select(ClusterReport).where(ClusterReport.tenant == tenant,
                                                       ClusterReport.id == report_id)).first()


def latest_events_of_assets(session: Session, tenant: str, asset_ids: list[str]) -> dict[str, tuple[str, str, str | None]]:
    """{asset_id: (event_id, action, label)} of each asset's latest decision."""
    if not asset_ids:
        return {}
    query = (select(Decision.asset_id, Decision.event_id, Decision.action, Decision.label)
             .where(Decision.tenant == tenant, Decision.asset_id.in_(asset_ids))
             .ext(distinct_on(Decision.asset_id)).order_by(Decision.asset_id, Decision.decided_at.desc(),
                                                             Decision.id.desc()))
    return {r.asset_id: (r.event_id, r.action, r.label) for r in session.execute(query)}
