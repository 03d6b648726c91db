"""bank HNSW indexes built with m = 24, ef_construction = 128 instead of pgvector's 16 / 64

Revision ID: 0013_bank_hnsw_m24
Revises: 0012_partition

Measured with `python -m bench.bench_knn_indexes` (README, "kNN index choice"): at 1M vectors, m=16 /
ef_construction=64 stops at recall@10 0.961 (ef_search 1000), short of the 0.98 target, while m=24 /
ef_construction=128 reaches 0.992 at ef_search 200 within the 20 ms p99 budget, and 0.998 at 500;
at 100k both reach 1.0 unfiltered, but a tenant's filtered queries get 0.994 against 0.965 at 500
(bench_knn_filtered). The richer graph costs build time (2.3x at 1M) and nothing in size.
Only exemplars are in these partial indexes (`in_bank`), so the extra insert cost falls on bank
changes, not on uploads.

Each partition's index is built under its own name and attached to the parent built ON ONLY the
partitioned table: the names stay `ix_embeddings_bank_hnsw_<dims>_p<n>`, as migration 0012 set
them, for any partition count. Rebuilding takes an ACCESS EXCLUSIVE lock on each partition for as
long as its build (at 1M bank vectors, tens of minutes on two cores); kNN waits meanwhile.
"""
from alembic import op
from sqlalchemy import text

revision = "0013_bank_hnsw_m24"
down_revision = "0012_partition"
branch_labels = None
depends_on = None

# Same dimensions and index shape as migrations 0001 and 0012 (governance.storage.tables.INDEXED_DIMS).
INDEXED_DIMS = (384, 768, 1024, 1536, 3072)
HALFVEC_ABOVE_DIMS = 2000


def _rebuild(m: int, ef_construction: int) -> None:
    partitions = op.get_bind().execute(text(
        "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
        "WHERE i.inhparent = 'embeddings'::regclass ORDER BY c.relname")).scalars().all()
    for dims in INDEXED_DIMS:
        column, kind = ("vector_half", "halfvec") if dims > HALFVEC_ABOVE_DIMS else ("vector", "vector")
        index = f"ix_embeddings_bank_hnsw_{dims}"
        shape = (f"USING hnsw (({column}::{kind}({dims})) {kind}_cosine_ops) "
                 f"WITH (m = {m}, ef_construction = {ef_construction}) WHERE dims = {dims} AND in_bank")
        op.execute(f"DROP INDEX IF EXISTS {index}")
        op.execute(f"CREATE INDEX {index} ON ONLY embeddings {shape}")
        for partition in partitions:
            suffix = partition.removeprefix("embeddings")  # _p0, _p1, …
            op.execute(f"CREATE INDEX {index}{suffix} ON {partition} {shape}")
            op.execute(f"ALTER INDEX {index} ATTACH PARTITION {index}{suffix}")


def upgrade() -> None:
    _rebuild(24, 128)


def downgrade() -> None:
    _rebuild(16, 64)
