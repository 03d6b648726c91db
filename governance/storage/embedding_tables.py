"""Tables of embedding windows, usage, tenant models and Batch API jobs (0004, 0005)."""
from __future__ import annotations

from datetime import date, datetime

from pgvector.sqlalchemy import HALFVEC, Vector
from sqlalchemy import (
    BigInteger, Boolean, CheckConstraint, Date, DateTime, Float, Index, Integer, String, UniqueConstraint,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from governance.storage.tables import Base, HALFVEC_ABOVE_DIMS, now_column


class EmbeddingWindow(Base):
    """One window of over-limit content (PDF pages, seconds of audio or video, a text span).

    Keyed by content like the embedding cache, not by asset: identical bytes share windows.
    The asset's row in `embeddings` holds the pooled vector (see governance.embedding.window_planning).
    """

    __tablename__ = "embedding_windows"
    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    tenant: Mapped[str] = mapped_column(String(128))
    sha256: Mapped[str] = mapped_column(String(64))
    modality: Mapped[str] = mapped_column(String(16))
    model: Mapped[str] = mapped_column(String(128))
    dims: Mapped[int] = mapped_column(Integer)
    task: Mapped[str] = mapped_column(String(32))
    window: Mapped[int] = mapped_column(Integer)
    unit: Mapped[str] = mapped_column(String(16))  # pages|seconds|chars
    span_start: Mapped[float] = mapped_column(Float)
    span_end: Mapped[float] = mapped_column(Float)
    weight: Mapped[float] = mapped_column(Float)
    vector = mapped_column(Vector(), nullable=True)
    vector_half = mapped_column(HALFVEC(), nullable=True)
    created_at: Mapped[datetime] = now_column()
    __table_args__ = (
        UniqueConstraint("tenant", "sha256", "model", "dims", "task", "window"),
        CheckConstraint(
            f"(dims <= {HALFVEC_ABOVE_DIMS} AND vector IS NOT NULL AND vector_half IS NULL) OR "
            f"(dims > {HALFVEC_ABOVE_DIMS} AND vector_half IS NOT NULL AND vector IS NULL)",
            name="one_vector_column",
        ),
    )


class EmbeddingUsage(Base):
    """Embedding spend per tenant, UTC day, model and mode, upserted with the vectors it paid for.

    `items` were sent to the model, `cached_items` were served by the content-hash cache (no
    spend). `estimated` is true when some tokens were estimated (offline models, or answers
    without `usageMetadata`)."""

    __tablename__ = "embedding_usage"
    tenant: Mapped[str] = mapped_column(String(128), primary_key=True)
    day: Mapped[date] = mapped_column(Date, primary_key=True)
    model: Mapped[str] = mapped_column(String(128), primary_key=True)
    dims: Mapped[int] = mapped_column(Integer, primary_key=True)
    mode: Mapped[str] = mapped_column(String(8), primary_key=True)  # online|batch
    items: Mapped[int] = mapped_column(BigInteger)
    cached_items: Mapped[int] = mapped_column(BigInteger)
    calls: Mapped[int] = mapped_column(BigInteger)
    prompt_tokens: Mapped[int] = mapped_column(BigInteger)
    estimated: Mapped[bool] = mapped_column(Boolean)
    updated_at: Mapped[datetime] = now_column()
    __table_args__ = (CheckConstraint("mode IN ('online','batch')", name="known_mode"),)


class TenantModel(Base):
    """The embedding backend a tenant uses (`spec` as in GOVERNANCE_EMBEDDER, plus dims).

    At most one row per tenant is active; none means the process default. `governance reembed`
    fills the new model's vectors, then flips `active` in one transaction."""

    __tablename__ = "tenant_models"
    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    tenant: Mapped[str] = mapped_column(String(128))
    spec: Mapped[str] = mapped_column(String(128))
    dims: Mapped[int] = mapped_column(Integer)
    model_id: Mapped[str] = mapped_column(String(128))
    active: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = now_column()
    switched_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    __table_args__ = (
        UniqueConstraint("tenant", "spec", "dims"),
        Index("ix_tenant_models_active", "tenant", unique=True, postgresql_where="active"),
    )


class EmbeddingBatchJob(Base):
    """A Batch API job submitted by `reembed --batch-api`; `items` is [[asset_pk, sha256, modality], …]
    in request order. `open` until its vectors are stored (or it failed)."""

    __tablename__ = "embedding_batch_jobs"
    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    tenant: Mapped[str] = mapped_column(String(128))
    job_name: Mapped[str] = mapped_column(String(256))
    model: Mapped[str] = mapped_column(String(128))
    dims: Mapped[int] = mapped_column(Integer)
    task: Mapped[str] = mapped_column(String(32))
    items: Mapped[list] = mapped_column(JSONB)
    state: Mapped[str] = mapped_column(String(16), default="open")  # open|stored|failed
    created_at: Mapped[datetime] = now_column()
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    __table_args__ = (
        UniqueConstraint("tenant", "job_name"),
        CheckConstraint("state IN ('open','stored','failed')", name="known_state"),
        Index("ix_embedding_batch_jobs_open", "tenant", "model", "dims", postgresql_where="state = 'open'"),
    )
