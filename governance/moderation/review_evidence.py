"""What a reviewer sees next to an item: the decision's evidence, the neighbours that voted, the
asset's cluster and history, and the asset's own bytes for the console to serve.

Everything is read in the caller's tenant scope; nothing here writes. While an item waits for its
blind second review, nothing a person did to it shows (review_quality.py): no override, escalation
or exemplar edit in its history.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy.orm import Session

from governance.embedding.reembed_sources import reread
from governance.ingest import pdf_preview
from governance.ingest.assets import RejectedInput
from governance.moderation import review_queue
from governance.moderation.pipeline import Context, for_tenant
from governance.platform.config import Settings
from governance.storage import repository

EXCERPT_CHARS = 400
SIBLINGS = 6
MEDIA_MODALITIES = ("image", "audio", "video", "pdf")


@dataclass(frozen=True)
class AssetView:
    asset_id: str
    modality: str | None
    mime_type: str | None
    title: str | None
    excerpt: str | None  # plain text, for escaping by the template

    @property
    def has_media(self) -> bool:
        return self.modality in MEDIA_MODALITIES


@dataclass
class Evidence:
    event_id: str
    asset: AssetView | None
    action: str
    label: str | None
    score: float
    reason: str
    labels: list[dict]  # [{label, score}], best first
    anomaly: dict | None  # {score, threshold, flagged}
    neighbors: list[dict]  # [{asset_id, label, polarity, distance, view: AssetView}]
    policy_version: str
    bank_version: int | None
    embedding_model: str | None
    decided_at: str
    item: review_queue.QueueItem | None  # None: nothing waits (already decided by a person)
    label_choices: list[str]  # what "block with a label" offers, the predicted label first
    history: list[dict] = field(default_factory=list)  # earlier decisions and hand-made changes, newest first
    cluster: dict | None = None  # {cluster_id, size, status, siblings: [AssetView]}


def asset_view(asset, limit: int | None = EXCERPT_CHARS) -> AssetView:
    """What a grid or neighbour tile shows of a stored asset."""
    return _view(asset, asset.asset_id, limit)


def _view(asset, asset_id: str, limit: int | None = EXCERPT_CHARS) -> AssetView:
    if asset is None:
        return AssetView(asset_id, None, None, None, None)
    excerpt = (asset.text_excerpt or "")[:limit] or None
    return AssetView(asset.asset_id, asset.modality, asset.mime_type, asset.title, excerpt)


def item_evidence(session: Session, ctx: Context, tenant: str, event_id: str) -> Evidence | None:
    """The item page's content for one event of the tenant; None when the tenant has no such decision."""
    decision = repository.decision_for_event(session, tenant, event_id)
    if decision is None:
        return None
    policy = for_tenant(session, ctx, tenant).policy
    item = review_queue.waiting_item(session, policy, tenant, event_id)
    blind = item is not None and item.blind
    neighbor_ids = [n["asset_id"] for n in decision.neighbors or []]
    cluster = repository.latest_cluster_of_asset(session, tenant, decision.asset_id) if decision.asset_id else None
    siblings = [m for m in (cluster[1] if cluster else []) if m != decision.asset_id][:SIBLINGS]
    assets = repository.assets_by_ids(session, tenant, [decision.asset_id or "", *neighbor_ids, *siblings])

    history = [{"kind": "decision", "at": d.decided_at.isoformat(), "action": d.action, "label": d.label,
                "who": None, "detail": d.reason, "event_id": d.event_id}
               for d in repository.decisions_of_asset(session, tenant, decision.asset_id or "")
               if d.event_id != event_id]
    history += [{"kind": e.kind, "at": e.at.isoformat(), "action": (e.after or {}).get("action"),
                 "label": (e.after or {}).get("label"), "who": e.who, "detail": (e.after or {}).get("note"),
                 "event_id": e.event_id}
                for e in repository.audit_entries(session, tenant, asset_id=decision.asset_id)
                if decision.asset_id and not blind]
    history.sort(key=lambda h: h["at"], reverse=True)

    choices = list(dict.fromkeys([*(l for l in [decision.label] if l), *policy.labels,
                                  *repository.bank_labels(session, tenant)]))
    return Evidence(
        event_id=event_id,
        asset=_view(assets.get(decision.asset_id), decision.asset_id, None) if decision.asset_id else None,
        action=decision.action, label=decision.label, score=float(decision.score or 0.0), reason=decision.reason,
        labels=list(decision.labels or []), anomaly=decision.anomaly,
        neighbors=[{**n, "polarity": n.get("polarity", "positive"), "view": _view(assets.get(n["asset_id"]),
                                                                                 n["asset_id"])}
                   for n in decision.neighbors or []],
        policy_version=decision.policy_version, bank_version=decision.bank_version,
        embedding_model=decision.embedding_model, decided_at=decision.decided_at.isoformat(),
        item=item, label_choices=choices,
        history=history,
        cluster={"cluster_id": cluster[0], "size": len(cluster[1]), "status": cluster[2].get("status"),
                 "siblings": [_view(assets.get(s), s) for s in siblings]} if cluster else None,
    )


def asset_media(session: Session, settings: Settings, tenant: str, asset_id: str) -> tuple[bytes, str] | None:
    """The bytes and sniffed type of an image, audio, video or PDF asset of the tenant, re-read from
    its stored source and checked against its sha256 (images in their canonical form); None for
    text, unknown assets and sources that are gone."""
    asset = repository.asset_by_id(session, tenant, asset_id)
    if asset is None or asset.modality not in MEDIA_MODALITIES:
        return None
    found = repository.asset_sources(session, tenant, [asset.id]).get(asset.id)
    try:
        loaded = reread(asset, found["payloads"] if found else [], settings)
    except RejectedInput:
        return None
    content = loaded.content
    return (content.data, content.mime_type) if content.data is not None else None


PDF_PREVIEW = "image/png"


def console_view(data: bytes, mime: str) -> tuple[bytes | None, str]:
    """What the console shows of media bytes (from `asset_media`, read outside any transaction since
    rendering takes time): a PDF as its first page in PNG, bytes None when it cannot be rendered;
    anything else as it is."""
    if mime == "application/pdf":
        return pdf_preview.first_page_png(data), PDF_PREVIEW
    return data, mime
