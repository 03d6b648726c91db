"""What the console shows of stored cluster reports: one report as a map (each point with what its
hover and its click need) and what changed between two reports. Everything is read in the caller's
tenant scope; another tenant's report id finds nothing. Nothing here writes.
"""
from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.orm import Session

from governance.clustering.rendering import NOISE_COLOUR, cluster_colours
from governance.clustering.stored_reports import diff, history
from governance.storage import repository

MAP_WIDTH, MAP_HEIGHT, MAP_PAD = 760, 480, 14
EXCERPT_CHARS = 160
MEDIA_MODALITIES = ("image", "video", "pdf")  # what a hover can show as a picture (video: its poster frame)
HISTORY_ROWS = 50


@dataclass(frozen=True)
class MapPoint:
    asset_id: str
    x: float  # in the map's drawing box (0..MAP_WIDTH, 0..MAP_HEIGHT, y downwards)
    y: float
    cluster_id: str | None  # None: noise
    colour: str
    event_id: str | None  # the asset's latest decision: the item page to open
    action: str | None
    label: str | None
    modality: str | None
    excerpt: str | None  # plain text, escaped by the template
    thumbnail: bool  # an image the console's media route can serve


@dataclass
class ReportMap:
    report_id: int
    generated_at: str
    items: int
    clusters: list[dict]  # {cluster_id, size, status, colour, keywords}, largest first
    alerts: list[dict]
    noise: int
    points: list[MapPoint]
    width: int = MAP_WIDTH
    height: int = MAP_HEIGHT


def layout(points: list[dict], width: int = MAP_WIDTH, height: int = MAP_HEIGHT, pad: int = MAP_PAD
           ) -> list[tuple[float, float]]:
    """Report coordinates scaled into the drawing box, keeping the aspect ratio (a cluster's shape
    means something), centred; y flipped because SVG's grows downwards."""
    if not points:
        return []
    xs, ys = [float(p["x"]) for p in points], [float(p["y"]) for p in points]
    span_x, span_y = max(xs) - min(xs), max(ys) - min(ys)
    scale = min((width - 2 * pad) / span_x if span_x else float("inf"),
                (height - 2 * pad) / span_y if span_y else float("inf"))
    if scale == float("inf"):
        scale = 1.0
    off_x = (width - span_x * scale) / 2
    off_y = (height - span_y * scale) / 2
    return [(round(off_x + (x - min(xs)) * scale, 1), round(height - off_y - (y - min(ys)) * scale, 1))
            for x, y in zip(xs, ys)]


def _stored(session: Session, tenant: str, report_id: int | None):
    if report_id is None:
        return repository.latest_cluster_report(session, tenant)
    return repository.cluster_report_by_id(session, tenant, report_id)


def report_map(session: Session, tenant: str, report_id: int | None = None) -> ReportMap | None:
    """The tenant's latest report (or the one named) as a map; None when there is none."""
    stored = _stored(session, tenant, report_id)
    if stored is None:
        return None
    body = stored.report
    colours = cluster_colours(body)
    raw = [p for p in body.get("map", []) if p.get("asset_id")]
    asset_ids = [p["asset_id"] for p in raw]
    assets = repository.assets_by_ids(session, tenant, asset_ids)
    events = repository.latest_events_of_assets(session, tenant, asset_ids)
    points = []
    for p, (x, y) in zip(raw, layout(raw)):
        asset, cid = assets.get(p["asset_id"]), p.get("cluster_id")
        event_id, action, label = events.get(p["asset_id"], (None, None, None))
        modality = asset.modality if asset else None
        points.append(MapPoint(
            asset_id=p["asset_id"], x=x, y=y, cluster_id=cid, colour=colours.get(cid, NOISE_COLOUR) if cid
            else NOISE_COLOUR, event_id=event_id, action=action, label=label, modality=modality,
            excerpt=((asset.text_excerpt or asset.ocr_text or "")[:EXCERPT_CHARS] or None) if asset else None,
            thumbnail=modality == "image"))
    points.sort(key=lambda p: p.cluster_id is not None)  # noise underneath, clusters drawn on top
    clusters = [{"cluster_id": c["cluster_id"], "size": c["size"], "status": c.get("status"),
                 "colour": colours.get(c["cluster_id"], NOISE_COLOUR), "keywords": list(c.get("keywords") or [])[:6]}
                for c in sorted(body.get("clusters", []), key=lambda c: -c["size"])]
    return ReportMap(report_id=stored.id, generated_at=body.get("generated_at") or stored.generated_at.isoformat(),
                     items=int(body.get("items", len(raw))), clusters=clusters, alerts=list(body.get("alerts") or []),
                     noise=len(body.get("noise") or []), points=points)


def report_history(session: Session, tenant: str, limit: int = HISTORY_ROWS) -> list[dict]:
    """The tenant's stored reports, newest first (stored_reports.history)."""
    return history(session, tenant, limit)


def changes(older: dict, newer: dict) -> dict:
    """What changed from `older` to `newer`: new, grown, shrunk and gone clusters, with their sizes."""
    before = {c["cluster_id"]: c["size"] for c in older.get("clusters", [])}
    after = {c["cluster_id"]: c["size"] for c in newer.get("clusters", [])}
    found = diff(older, newer)
    resized = found["resized"]
    return {
        "new": [{"cluster_id": c, "size": after[c]} for c in found["new"]],
        "grown": [{"cluster_id": c, "before": before[c], "after": after[c]} for c in resized if resized[c] > 0],
        "shrunk": [{"cluster_id": c, "before": before[c], "after": after[c]} for c in resized if resized[c] < 0],
        "gone": [{"cluster_id": c, "size": before[c]} for c in found["gone"]],
    }


def compare_reports(session: Session, tenant: str, older_id: int, newer_id: int) -> dict | None:
    """`changes` between two of the tenant's stored reports; None when either is not the tenant's."""
    older = repository.cluster_report_by_id(session, tenant, older_id)
    newer = repository.cluster_report_by_id(session, tenant, newer_id)
    if older is None or newer is None:
        return None
    return {"older": {"report_id": older.id, "generated_at": older.generated_at.isoformat()},
            "newer": {"report_id": newer.id, "generated_at": newer.generated_at.isoformat()},
            **changes(older.report, newer.report)}
