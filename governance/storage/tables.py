"""Tables. Every table carries `tenant`, and every query in `repository.py` filters on it.

Vectors live in one of two columns without a fixed dimension: `vector` (float32, up to 2,000
dims) or `vector_half` (float16, above 2,000 dims, where pgvector's HNSW needs halfvec). The
migration builds one partial HNSW cosine index over the exemplar bank (`in_bank`) per supported
dimension; see `INDEXED_DIMS`.
"""
from __future__ import annotations

import re
from datetime import datetime

from pgvector.sqlalchemy import HALFVEC, Vector
from sqlalchemy import (
    BigInteger, Boolean, CheckConstraint, DateTime, Float, ForeignKey, ForeignKeyConstraint, Index, Integer,
    PrimaryKeyConstraint, String, Text, UniqueConstraint, func,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from governance.storage.db import metadata

HALFVEC_ABOVE_DIMS = 2000
# Dimensions that get an HNSW index: MiniLM (384), Gemini's recommended sizes, and 1,024.
INDEXED_DIMS = (384, 768, 1024, 1536, 3072)
# The bulk tables (embeddings, decisions) are declarative hash partitions by tenant; the
# partition count lives in migration 0012 (the definitions only need the partition key).
PARTITIONED_BY_TENANT = {"postgresql_partition_by": "HASH (tenant)"}
PARTITION_NAME = re.compile(r"^(embeddings|decisions)_p\d+$")  # embeddings_p0 … as the migration names them


def bank_index_name(dims: int) -> str:
    """The partial HNSW index over the exemplar bank at `dims` (migration 0001; per partition since
    0012; m=24, ef_construction=128 since 0013)."""
    return f"ix_embeddings_bank_hnsw_{dims}"


class Base(DeclarativeBase):
    metadata = metadata


def now_column():
    return mapped_column(DateTime(timezone=True), server_default=func.now(), nullable=False)


class Event(Base):
    """The inbox: every accepted upload event, so Postgres, not the broker, knows what is owed."""

    __tablename__ = "events"
    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    tenant: Mapped[str] = mapped_column(String(128))
    event_id: Mapped[str] = mapped_column(String(256))
    asset_id: Mapped[str | None] = mapped_column(String(256))
    payload: Mapped[dict] = mapped_column(JSONB)
    status: Mapped[str] = mapped_column(String(16), default="accepted")  # accepted|decided|dead
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    accepted_at: Mapped[datetime] = now_column()
    last_attempt_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    __table_args__ = (
        UniqueConstraint("tenant", "event_id"),
        Index("ix_events_pending", "status", "accepted_at", postgresql_where="status = 'accepted'"),
    )


class Asset(Base):
    __tablename__ = "assets"
    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    tenant: Mapped[str] = mapped_column(String(128))
    asset_id: Mapped[str] = mapped_column(String(256))
    sha256: Mapped[str] = mapped_column(String(64))
    modality: Mapped[str] = mapped_column(String(16))
    mime_type: Mapped[str] = mapped_column(String(128))
    size_bytes: Mapped[int] = mapped_column(BigInteger)
    source_uri: Mapped[str | None] = mapped_column(Text)
    title: Mapped[str | None] = mapped_column(Text)
    extra: Mapped[dict] = mapped_column("metadata", JSONB, default=dict)
    text_excerpt: Mapped[str | None] = mapped_column(Text)
    # What OCR read in an image upload, and its confidence (migration 0008; governance/ingest/ocr.py).
    ocr_text: Mapped[str | None] = mapped_column(Text, nullable=True)
    ocr_confidence: Mapped[float | None] = mapped_column(Float, nullable=True)
    status: Mapped[str] = mapped_column(String(16), default="embedded")
    created_at: Mapped[datetime] = now_column()
    # (tenant, id) is what the partitioned tables' foreign keys point at (migration 0012).
    __table_args__ = (UniqueConstraint("tenant", "asset_id"), UniqueConstraint("tenant", "id"),
                      Index(None, "tenant", "sha256"))


class Embedding(Base):
    """Hash-partitioned by tenant (migration 0012): every key carries `tenant`."""

    __tablename__ = "embeddings"
    id: Mapped[int] = mapped_column(BigInteger, autoincrement=True)
    tenant: Mapped[str] = mapped_column(String(128))
    asset_pk: Mapped[int] = mapped_column(BigInteger)
    sha256: Mapped[str] = mapped_column(String(64))
    modality: Mapped[str] = mapped_column(String(16))
    model: Mapped[str] = mapped_column(String(128))
    dims: Mapped[int] = mapped_column(Integer)
    task: Mapped[str] = mapped_column(String(32))
    # True while an enabled exemplar points at this asset: the kNN bank index covers only these.
    in_bank: Mapped[bool] = mapped_column(Boolean, default=False, server_default="false")
    vector = mapped_column(Vector(), nullable=True)
    vector_half = mapped_column(HALFVEC(), nullable=True)
    created_at: Mapped[datetime] = now_column()
    __table_args__ = (
        PrimaryKeyConstraint("tenant", "id"),
        ForeignKeyConstraint(["tenant", "asset_pk"], ["assets.tenant", "assets.id"], ondelete="CASCADE"),
        UniqueConstraint("tenant", "asset_pk", "model", "dims", "task"),
        Index(None, "tenant", "sha256", "model", "dims", "task"),
        Index(None, "tenant", "model", "dims", "task", "created_at"),
        CheckConstraint(
            f"(dims <= {HALFVEC_ABOVE_DIMS} AND vector IS NOT NULL AND vector_half IS NULL) OR "
            f"(dims > {HALFVEC_ABOVE_DIMS} AND vector_half IS NOT NULL AND vector IS NULL)",
            name="one_vector_column",
        ),
        PARTITIONED_BY_TENANT,
    )


class Exemplar(Base):
    """A labelled asset in a tenant's bank. `polarity = negative` is an allowlist entry."""

    __tablename__ = "exemplars"
    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    tenant: Mapped[str] = mapped_column(String(128))
    asset_pk: Mapped[int] = mapped_column(ForeignKey("assets.id", ondelete="CASCADE"))
    label: Mapped[str] = mapped_column(String(128))
    polarity: Mapped[str] = mapped_column(String(16), default="positive")
    source: Mapped[str] = mapped_column(String(16), default="import")  # import|review|api
    created_by: Mapped[str | None] = mapped_column(String(256))
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    # The imported item's text/uri/data_b64 and mime_type, so the bank can be re-embedded (0005).
    content: Mapped[dict | None] = mapped_column(JSONB, nullable=True)
    created_at: Mapped[datetime] = now_column()
    __table_args__ = (UniqueConstraint("tenant", "asset_pk", "label"), Index(None, "tenant", "enabled"))


class Bank(Base):
    """One row per tenant; `version` changes with every edit of the tenant's exemplars."""

    __tablename__ = "banks"
    tenant: Mapped[str] = mapped_column(String(128), primary_key=True)
    version: Mapped[int] = mapped_column(Integer, default=0)
    updated_at: Mapped[datetime] = now_column()


class AnomalyBaseline(Base):
    """The k-NN distance threshold of a bank, per model and modality, for one bank version."""

    __tablename__ = "anomaly_baselines"
    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    tenant: Mapped[str] = mapped_column(String(128))
    model: Mapped[str] = mapped_column(String(128))
    dims: Mapped[int] = mapped_column(Integer)
    modality: Mapped[str] = mapped_column(String(16))
    bank_version: Mapped[int] = mapped_column(Integer)
    k: Mapped[int] = mapped_column(Integer)
    threshold: Mapped[float] = mapped_column(Float)
    sample_size: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = now_column()
    __table_args__ = (UniqueConstraint("tenant", "model", "dims", "modality", "bank_version", "k"),)


class Decision(Base):
    """Hash-partitioned by tenant (migration 0012): every key carries `tenant`."""

    __tablename__ = "decisions"
    id: Mapped[int] = mapped_column(BigInteger, autoincrement=True)
    tenant: Mapped[str] = mapped_column(String(128))
    event_id: Mapped[str] = mapped_column(String(256))
    asset_id: Mapped[str | None] = mapped_column(String(256))
    asset_pk: Mapped[int | None] = mapped_column(BigInteger)
    action: Mapped[str] = mapped_column(String(16))
    label: Mapped[str | None] = mapped_column(String(128))
    score: Mapped[float] = mapped_column(Float, default=0.0)
    labels: Mapped[list] = mapped_column(JSONB, default=list)
    anomaly: Mapped[dict | None] = mapped_column(JSONB)
    neighbors: Mapped[list] = mapped_column(JSONB, default=list)
    reason: Mapped[str] = mapped_column(Text)
    embedding_model: Mapped[str | None] = mapped_column(String(128))
    policy_version: Mapped[str] = mapped_column(String(64))
    bank_version: Mapped[int | None] = mapped_column(Integer)
    # Hash-bank evidence (migration 0007): the bank hashes the upload matched, and when the
    # near-duplicate rule blocked an image whose PDQ hash was beyond the label's hash distance.
    hash_matches: Mapped[list | None] = mapped_column(JSONB, nullable=True)
    hash_missed: Mapped[dict | None] = mapped_column(JSONB, nullable=True)
    # Text inside images (migration 0008): what OCR read and how its vote went, and which reading
    # of an image ("image" pixels, "text", or "both") the decision's label rests on.
    ocr: Mapped[dict | None] = mapped_column(JSONB, nullable=True)
    evidence_source: Mapped[str | None] = mapped_column(String(8), nullable=True)
    decided_at: Mapped[datetime] = now_column()
    __table_args__ = (
        PrimaryKeyConstraint("tenant", "id"),
        # A decision outlives its asset: only asset_pk is cleared, never the tenant (PostgreSQL 15+).
        ForeignKeyConstraint(["tenant", "asset_pk"], ["assets.tenant", "assets.id"], ondelete="SET NULL (asset_pk)"),
        UniqueConstraint("tenant", "event_id"),
        CheckConstraint("action IN ('allow','review','block','reject')", name="known_action"),
        Index(None, "tenant", "decided_at"),
        Index(None, "tenant", "asset_pk"),
        PARTITIONED_BY_TENANT,
    )


class DeadLetter(Base):
    __tablename__ = "dead_letters"
    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    tenant: Mapped[str] = mapped_column(String(128))
    event_id: Mapped[str] = mapped_column(String(256))
    reason: Mapped[str] = mapped_column(Text)
    attempts: Mapped[int] = mapped_column(Integer)
    payload: Mapped[dict | None] = mapped_column(JSONB)
    created_at: Mapped[datetime] = now_column()
    __table_args__ = (UniqueConstraint("tenant", "event_id"),)


class OutboxMessage(Base):
    """Write-back owed to the uploading system, written in the decision's own transaction."""

    __tablename__ = "outbox"
    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    tenant: Mapped[str] = mapped_column(String(128))
    kind: Mapped[str] = mapped_column(String(32))  # decision|override|alert|cluster: webhook event types
    message_id: Mapped[str] = mapped_column(String(300))  # stable: receivers deduplicate on it
    payload: Mapped[dict] = mapped_column(JSONB)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    available_at: Mapped[datetime] = now_column()
    delivered_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = now_column()
    __table_args__ = (
        UniqueConstraint("tenant", "message_id"),
        Index("ix_outbox_pending", "available_at", postgresql_where="delivered_at IS NULL"),
    )


class ClusterReport(Base):
    __tablename__ = "cluster_reports"
    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    tenant: Mapped[str] = mapped_column(String(128))
    model: Mapped[str] = mapped_column(String(128))
    report: Mapped[dict] = mapped_column(JSONB)
    generated_at: Mapped[datetime] = now_column()
    __table_args__ = (Index(None, "tenant", "generated_at"),)


class Cluster(Base):
    __tablename__ = "clusters"
    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    tenant: Mapped[str] = mapped_column(String(128))
    report_pk: Mapped[int] = mapped_column(ForeignKey("cluster_reports.id", ondelete="CASCADE"))
    cluster_id: Mapped[str] = mapped_column(String(64))
    size: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(16))
    members: Mapped[list] = mapped_column(JSONB)
    summary: Mapped[dict] = mapped_column(JSONB)
    __table_args__ = (UniqueConstraint("report_pk", "cluster_id"), Index(None, "tenant", "cluster_id"))


# --- moderation: policies, review loop, delivery log, alerts (migration 0003) ---------------------

class PolicyVersion(Base):
    """One applied version of a tenant's policy file; decisions name it in `policy_version`."""

    __tablename__ = "policies"
    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    tenant: Mapped[str] = mapped_column(String(128))
    version: Mapped[str] = mapped_column(String(64))
    source: Mapped[str] = mapped_column(Text)  # the TOML text as applied
    document: Mapped[dict] = mapped_column(JSONB)  # the validated, normalised policy
    applied_by: Mapped[str | None] = mapped_column(String(256))
    applied_at: Mapped[datetime] = now_column()  # re-applying an older version makes it current again
    __table_args__ = (UniqueConstraint("tenant", "version"), Index(None, "tenant", "applied_at"))


class AuditEntry(Base):
    """Who changed what by hand: review overrides, exemplar enable/disable, policy applies."""

    __tablename__ = "audit_log"
    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    tenant: Mapped[str] = mapped_column(String(128))
    kind: Mapped[str] = mapped_column(String(32))  # override|exemplar_disable|exemplar_enable|policy_apply
    asset_id: Mapped[str | None] = mapped_column(String(256))
    event_id: Mapped[str | None] = mapped_column(String(256))
    who: Mapped[str | None] = mapped_column(String(256))
    at: Mapped[datetime] = now_column()
    before: Mapped[dict | None] = mapped_column(JSONB)
    after: Mapped[dict | None] = mapped_column(JSONB)
    __table_args__ = (Index(None, "tenant", "kind", "event_id"), Index(None, "tenant", "asset_id"),
                      Index(None, "tenant", "at"))


class ReviewItem(Base):
    """A review opened outside the decision flow: an allowed asset that a new known-bad exemplar matches."""

    __tablename__ = "review_items"
    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    tenant: Mapped[str] = mapped_column(String(128))
    asset_pk: Mapped[int] = mapped_column(ForeignKey("assets.id", ondelete="CASCADE"))
    asset_id: Mapped[str] = mapped_column(String(256))
    event_id: Mapped[str | None] = mapped_column(String(256))
    reason: Mapped[str] = mapped_column(String(32))  # retroactive
    label: Mapped[str] = mapped_column(String(128))
    trigger_asset_id: Mapped[str] = mapped_column(String(256))  # the exemplar that matched
    distance: Mapped[float] = mapped_column(Float)
    status: Mapped[str] = mapped_column(String(16), default="open")  # open|resolved
    created_at: Mapped[datetime] = now_column()
    resolved_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    resolved_by: Mapped[str | None] = mapped_column(String(256))
    __table_args__ = (
        UniqueConstraint("tenant", "asset_pk", "trigger_asset_id", "label"),
        Index("ix_review_items_open", "tenant", "created_at", postgresql_where="status = 'open'"),
    )


class OutboxDelivery(Base):
    """One delivery attempt of one outbox message to one sink, written by the relay."""

    __tablename__ = "outbox_deliveries"
    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    tenant: Mapped[str] = mapped_column(String(128))
    message_id: Mapped[str] = mapped_column(String(300))
    sink: Mapped[str] = mapped_column(String(128))
    status: Mapped[str] = mapped_column(String(16))  # delivered|failed
    error: Mapped[str | None] = mapped_column(Text)
    at: Mapped[datetime] = now_column()
    __table_args__ = (
        CheckConstraint("status IN ('delivered','failed')", name="known_status"),
        Index(None, "tenant", "message_id"),
    )


class AlertState(Base):
    """Per tenant and alert kind: how far alerts have been sent, and when the last one went out."""

    __tablename__ = "alert_state"
    tenant: Mapped[str] = mapped_column(String(128), primary_key=True)
    kind: Mapped[str] = mapped_column(String(32), primary_key=True)
    cursor_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    last_alert_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


# --- models and usage (migration 0005) -------------------------------------------------------------


# --- the front door: API keys and per-tenant webhook subscriptions (migration 0006) --------------

class ApiKey(Base):
    """A tenant's API key. Only a SHA-256 of the secret is kept (the secret is 32 random bytes, so
    a slow hash would add nothing); `id` is the public handle that `keys list` and `revoke` use."""

    __tablename__ = "api_keys"
    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    tenant: Mapped[str] = mapped_column(String(128))
    name: Mapped[str | None] = mapped_column(String(256))
    scopes: Mapped[list] = mapped_column(JSONB)  # ["ingest", "read", "review", "admin"]
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = now_column()
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    last_used_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    __table_args__ = (Index(None, "tenant", "created_at"),)


class WebhookSubscription(Base):
    """Where a tenant wants its messages delivered. The signing secret must be kept to sign with
    (Standard Webhooks is symmetric); it is shown once, at creation, and never listed."""

    __tablename__ = "webhook_subscriptions"
    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    tenant: Mapped[str] = mapped_column(String(128))
    url: Mapped[str] = mapped_column(Text)
    events: Mapped[list] = mapped_column(JSONB)  # ["decision", "override", "alert", "cluster"]
    secret: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = now_column()
    deleted_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    __table_args__ = (Index(None, "tenant", "created_at"),)


class WebhookDelivery(Base):
    """One outbox message owed to one subscription: each has its own retries, so one tenant's dead
    receiver never holds back another's."""

    __tablename__ = "webhook_deliveries"
    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    tenant: Mapped[str] = mapped_column(String(128))
    subscription_id: Mapped[str] = mapped_column(ForeignKey("webhook_subscriptions.id", ondelete="CASCADE"))
    outbox_pk: Mapped[int] = mapped_column(ForeignKey("outbox.id", ondelete="CASCADE"))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    available_at: Mapped[datetime] = now_column()
    delivered_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    last_error: Mapped[str | None] = mapped_column(Text)
    __table_args__ = (
        UniqueConstraint("subscription_id", "outbox_pk"),
        Index("ix_webhook_deliveries_pending", "available_at", postgresql_where="delivered_at IS NULL"),
    )
