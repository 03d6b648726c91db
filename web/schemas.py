"""Response bodies, as OpenAPI shows them (and schemathesis checks every response against)."""
from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field

Action = Literal["allow", "review", "block", "reject"]


class Decision(BaseModel):
    """The public decision payload: the same object `governance decisions export` prints."""
    event_id: str
    asset_id: str | None
    tenant: str
    action: Action
    label: str | None
    score: float
    labels: list[dict[str, Any]]
    anomaly: dict[str, Any] | None
    neighbors: list[dict[str, Any]]
    reason: str
    embedding_model: str | None
    policy_version: str
    bank_version: int | None
    hash_matches: list[dict[str, Any]] = Field(default_factory=list)
    hash_missed: dict[str, Any] | None = None
    ocr: dict[str, Any] | None = Field(None, description="for an image read by OCR: {text, confidence, label, "
                                                          "score, used, nearest, threshold, neighbors}")
    evidence_source: Literal["image", "text", "both"] | None = Field(
        None, description="for images: which reading the label rests on (pixels, the text OCR read, or both)")
    decided_at: str | None


class AcceptedEvent(BaseModel):
    index: int = Field(description="position in the array (0 for a single event), or NDJSON line number - 1")
    event_id: str
    asset_id: str | None
    status: Literal["accepted", "duplicate"] = Field(
        description="duplicate: the same event was accepted before; nothing new is done")
    event_status: Literal["accepted", "decided", "dead"] | None = Field(
        None, description="with ?wait=: where the event stands when the answer was sent")
    decision: Decision | None = Field(None, description="with ?wait=: the decision, once there is one")


class RefusedEvent(BaseModel):
    index: int
    reason: str


class IngestResult(BaseModel):
    accepted: list[AcceptedEvent]
    refused: list[RefusedEvent]


class EventState(BaseModel):
    event_id: str
    asset_id: str | None
    status: Literal["accepted", "decided", "dead"]
    decision: Decision | None
    dead_letter_reason: str | None


class DecisionPage(BaseModel):
    decisions: list[Decision]
    next_cursor: str | None = Field(description="pass as ?cursor= for the next (older) page; null on the last")


class StoredAsset(BaseModel):
    modality: str
    mime_type: str
    size_bytes: int
    sha256: str
    title: str | None
    metadata: dict[str, Any]
    status: str
    text_excerpt: str | None
    ocr_text: str | None = None
    created_at: str


class ReviewEntry(BaseModel):
    kind: str
    event_id: str | None
    who: str | None
    at: str
    before: dict[str, Any] | None
    after: dict[str, Any] | None


class AssetHistory(BaseModel):
    asset_id: str
    asset: StoredAsset | None
    decisions: list[Decision]
    review_history: list[ReviewEntry]
