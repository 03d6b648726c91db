"""Decision rows (what the pipeline inserts) and the public decision payload (what export and
write-back emit; its contract is in the README)."""
from __future__ import annotations

from dataclasses import replace
from datetime import datetime
from typing import Iterable

from sqlalchemy.orm import Session

from governance.ingest.events import UploadEvent
from governance.moderation import anomaly
from governance.moderation.image_text import TextEvidence
from governance.moderation.pipeline import Context
from governance.moderation.hash_matching import pdq_distance
from governance.moderation.policy_rules import HashMatch, decide
from governance.moderation.vote import combine_votes, knn_vote
from governance.storage import repository


def reject_row(ctx: Context, tenant: str, event_id: str, asset_id: str | None, reason: str) -> dict:
    return dict(tenant=tenant, event_id=event_id, asset_id=asset_id, asset_pk=None, action="reject", label=None,
                score=0.0, labels=[], anomaly=None, neighbors=[], reason=reason,
                embedding_model=None, policy_version=ctx.policy.version, bank_version=None,
                hash_matches=[], hash_missed=None, ocr=None, evidence_source=None)


def decision_row(ctx: Context, upload: UploadEvent, asset_pk: int, neighbors: list, threshold: float,
                 version: int, hash_matches: list[HashMatch] = (), pdq: str | None = None,
                 exemplar_pdq: dict[str, tuple[str, int | None]] | None = None,
                 text: TextEvidence | None = None, modality: str | None = None) -> dict:
    """The hash matches, vote, anomaly score and policy outcome for one upload, as a decision row.
    `pdq` is the upload's own PDQ hash and `exemplar_pdq` those of its neighbours, so a block by the
    near-duplicate rule can say how far apart the two PDQ hashes were (`hash_missed`). `text` is
    what OCR read in an image and how that text voted: the pixel vote and it are combined
    (vote.combine_votes), and the row says which the label rests on (`evidence_source`)."""
    vote = knn_vote(neighbors, ctx.policy.k)
    source = "image" if modality == "image" else None
    if text is not None:
        vote, source = combine_votes(vote, text.vote if text.counts else None)
    scored = anomaly.score([n.distance for n in neighbors], ctx.policy.k, threshold)
    outcome = decide(vote, neighbors, scored, ctx.policy, hash_matches)
    if source in ("text", "both") and outcome.near_duplicate is None and not outcome.reason.startswith("hash_match"):
        outcome = replace(outcome, reason=f"{outcome.reason} (from the text in the image: {source})")
    return dict(
        tenant=upload.tenant, event_id=upload.event_id, asset_id=upload.asset_id, asset_pk=asset_pk,
        action=outcome.action, label=vote.label, score=round(vote.score, 6),
        labels=[{"label": label, "score": round(score, 6)} for label, score in vote.labels],
        anomaly=scored.as_dict(),
        neighbors=[{"asset_id": n.asset_id, "label": n.label, "distance": round(n.distance, 6),
                    **({"polarity": n.polarity} if n.polarity != "positive" else {})} for n in neighbors],
        reason=outcome.reason, embedding_model=ctx.embedder.model_id, policy_version=ctx.policy.version,
        bank_version=version, hash_matches=[m.as_dict() for m in hash_matches],
        hash_missed=_hash_missed(ctx, outcome, hash_matches, pdq, exemplar_pdq or {}),
        ocr=text.as_dict(used=source in ("text", "both")) if text is not None else None, evidence_source=source,
    )


def _hash_missed(ctx: Context, outcome, hash_matches: list[HashMatch], pdq: str | None,
                 exemplar_pdq: dict[str, tuple[str, int | None]]) -> dict | None:
    """When the embedding's near-duplicate rule blocked what no hash of that label matched: the
    exemplar, and the PDQ distance between the two pictures where both have a hash (PDQ does not
    survive larger crops or overlays; the embedding often does)."""
    exemplar = outcome.near_duplicate
    if exemplar is None or any(m.label == exemplar.label and m.polarity == "positive" for m in hash_matches):
        return None
    theirs = exemplar_pdq.get(exemplar.asset_id)
    return {"label": exemplar.label, "asset_id": exemplar.asset_id, "distance": round(exemplar.distance, 6),
            "pdq_distance": pdq_distance(pdq, theirs[0]) if pdq and theirs else None,
            "hash_distance": ctx.policy.for_label(exemplar.label).hash_distance}


def decision_message_id(public: dict) -> str:
    """The id of the outbox message that writes a decision back; stable, so receivers deduplicate."""
    return f"decision:{public['tenant']}:{public['event_id']}"


def decision_payload(row: dict) -> dict:
    """The public decision contract (see README): what export and write-back both emit."""
    decided_at = row["decided_at"]
    return {
        "event_id": row["event_id"], "asset_id": row["asset_id"], "tenant": row["tenant"],
        "action": row["action"], "label": row["label"], "score": row["score"], "labels": row["labels"],
        "anomaly": row["anomaly"], "neighbors": row["neighbors"], "reason": row["reason"],
        "embedding_model": row["embedding_model"], "policy_version": row["policy_version"],
        "bank_version": row.get("bank_version"), "hash_matches": row.get("hash_matches") or [],
        "hash_missed": row.get("hash_missed"), "ocr": row.get("ocr"), "evidence_source": row.get("evidence_source"),
        "decided_at": decided_at.isoformat() if isinstance(decided_at, datetime) else decided_at,
    }


_PAYLOAD_COLUMNS = ("event_id", "asset_id", "tenant", "action", "label", "score", "labels", "anomaly", "neighbors",
                    "reason", "embedding_model", "policy_version", "bank_version", "hash_matches", "hash_missed",
                    "ocr", "evidence_source", "decided_at")


def stored_payload(decision) -> dict:
    """The public payload of a stored decision row."""
    return decision_payload({c: getattr(decision, c) for c in _PAYLOAD_COLUMNS})


def export_decisions(session: Session, tenant: str) -> Iterable[dict]:
    for d in repository.iter_decisions(session, tenant):
        yield stored_payload(d)


def event_outcomes(session: Session, tenant: str, event_ids: list[str]) -> dict[str, dict]:
    """Per known event: its status (accepted, decided, dead), its decision's payload once there
    is one, and the dead letter's reason once there is one. Unknown ids are absent."""
    events = repository.events_by_ids(session, tenant, event_ids)
    decided = repository.decisions_for_events(session, tenant, list(events))
    dead = repository.dead_letter_reasons(session, tenant, [e for e, ev in events.items() if ev.status == "dead"])
    return {event_id: {"event_id": event_id, "asset_id": event.asset_id,
                       "status": "decided" if event_id in decided else event.status,
                       "decision": stored_payload(decided[event_id]) if event_id in decided else None,
                       "dead_letter_reason": dead.get(event_id)}
            for event_id, event in events.items()}


def decision_page(session: Session, tenant: str, *, action: str | None = None, label: str | None = None,
                  since: datetime | None = None, until: datetime | None = None,
                  after: tuple[datetime, int] | None = None, limit: int = 100
                  ) -> tuple[list[dict], tuple[datetime, int] | None]:
    """One page of decisions, newest first, and the position to continue after (None: last page)."""
    rows = repository.decision_page(session, tenant, action=action, label=label, since=since, until=until,
                                    before=after, limit=limit + 1)
    more = len(rows) > limit
    rows = rows[:limit]
    return [stored_payload(d) for d in rows], ((rows[-1].decided_at, rows[-1].id) if more else None)


def asset_history(session: Session, tenant: str, asset_id: str) -> dict | None:
    """The asset as stored, its decisions newest first, and the hand-made changes to it (review
    overrides, exemplar enables and disables) oldest first; None when nothing of it is known."""
    asset = repository.asset_by_id(session, tenant, asset_id)
    decisions = repository.decisions_of_asset(session, tenant, asset_id)
    if asset is None and not decisions:
        return None
    audit = repository.audit_entries(session, tenant, asset_id=asset_id)
    return {
        "asset_id": asset_id,
        "asset": None if asset is None else {
            "modality": asset.modality, "mime_type": asset.mime_type, "size_bytes": asset.size_bytes,
            "sha256": asset.sha256, "title": asset.title, "metadata": asset.extra, "status": asset.status,
            "text_excerpt": asset.text_excerpt, "ocr_text": asset.ocr_text, "created_at": asset.created_at.isoformat()},
        "decisions": [stored_payload(d) for d in decisions],
        "review_history": [{"kind": e.kind, "event_id": e.event_id, "who": e.who, "at": e.at.isoformat(),
                            "before": e.before, "after": e.after} for e in audit],
    }
