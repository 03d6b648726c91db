"""embedding windows: the per-window vectors of content split to fit one request

Revision ID: 0004
Revises: 0002

Content over an embedder's per-request limits (PDF pages, audio or video seconds, text tokens)
is embedded in windows; the pooled vector goes to `embeddings` as before, the window vectors
here, keyed by content (tenant, sha256, model, dims, task, window) like the embedding cache.
"""
from alembic import op
import sqlalchemy as sa
import pgvector.sqlalchemy

revision = "0004"
down_revision = "0002"
branch_labels = None
depends_on = None

HALFVEC_ABOVE_DIMS = 2000


def upgrade() -> None:
    op.create_table(
        "embedding_windows",
        sa.Column("id", sa.BigInteger(), nullable=False),
        sa.Column("tenant", sa.String(length=128), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("modality", sa.String(length=16), nullable=False),
        sa.Column("model", sa.String(length=128), nullable=False),
        sa.Column("dims", sa.Integer(), nullable=False),
        sa.Column("task", sa.String(length=32), nullable=False),
        sa.Column("window", sa.Integer(), nullable=False),
        sa.Column("unit", sa.String(length=16), nullable=False),
        sa.Column("span_start", sa.Float(), nullable=False),
        sa.Column("span_end", sa.Float(), nullable=False),
        sa.Column("weight", sa.Float(), nullable=False),
        sa.Column("vector", pgvector.sqlalchemy.vector.VECTOR(), nullable=True),
        sa.Column("vector_half", pgvector.sqlalchemy.halfvec.HALFVEC(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.CheckConstraint(
            f"(dims <= {HALFVEC_ABOVE_DIMS} AND vector IS NOT NULL AND vector_half IS NULL) OR "
            f"(dims > {HALFVEC_ABOVE_DIMS} AND vector_half IS NOT NULL AND vector IS NULL)",
            name=op.f("ck_embedding_windows_one_vector_column"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_embedding_windows")),
        sa.UniqueConstraint("tenant", "sha256", "model", "dims", "task", "window",
                            name=op.f("uq_embedding_windows_tenant_sha256_model_dims_task_window")),
    )
    # Row-level security and grants, as for every tenant table (see 0002).
    op.execute("SELECT governance_enable_tenant_rls()")


def downgrade() -> None:
    op.drop_table("embedding_windows")
