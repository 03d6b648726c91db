"""partition the bulk tables by tenant: embeddings and decisions become HASH partitions on `tenant`

Revision ID: 0012_partition
Revises: 0011_second_review

`embeddings` (one vector per asset, model and task) and `decisions` (one row per event) are the
tables that grow with traffic; every query on them names one tenant, so PostgreSQL prunes to one
partition and each partition carries its own indexes, HNSW bank indexes included.

For each table: a partitioned twin is created (LIKE the table: columns, defaults, NOT NULL and
CHECK constraints), PARTITIONS hash partitions are attached, the rows are moved with one
INSERT … SELECT, the old table is dropped and the twin renamed; then the constraints, indexes,
row-level security and grants are recreated (governance_enable_tenant_rls() from 0002 covers
partitioned tables and their partitions). The id sequence is kept, so ids continue.

A partitioned table's primary key and unique constraints must contain the partition key, so:
embeddings' primary key becomes (tenant, id) and its unique key (tenant, asset_pk, model, dims,
task); decisions' primary key becomes (tenant, id). The foreign keys to `assets` become
(tenant, asset_pk) -> assets (tenant, id) (a new unique key on assets), so that the same tables
can be distributed by tenant with Citus, where every key between distributed tables must carry
the distribution column. A decision outlives its asset: ON DELETE SET NULL (asset_pk) clears
only the asset reference (PostgreSQL 15+), never the tenant.

Changing the partition count: hash partitions cannot be split in place. Write a migration that
repeats this one's move (`_partition(table, count)` after `_unpartition(table)`, or straight from
one count to another through a new twin); the rows are copied once per table.

The whole move runs in the migration's transaction under ACCESS EXCLUSIVE locks: writes to the
two tables wait for it. At 1M rows the copy takes minutes; a live system with far more would
move rows in batches into the twin first instead (not needed at this project's sizes).
"""
from alembic import op

revision = "0012_partition"
down_revision = "0011_second_review"
branch_labels = None
depends_on = None

PARTITIONS = 8
# Same dimensions and index shape as migration 0001 (governance.storage.tables.INDEXED_DIMS).
INDEXED_DIMS = (384, 768, 1024, 1536, 3072)
HALFVEC_ABOVE_DIMS = 2000


def _bank_index_sql(dims: int) -> str:
    column, kind = ("vector_half", "halfvec") if dims > HALFVEC_ABOVE_DIMS else ("vector", "vector")
    return (f"CREATE INDEX ix_embeddings_bank_hnsw_{dims} ON embeddings USING hnsw "
            f"(({column}::{kind}({dims})) {kind}_cosine_ops) WITH (m = 16, ef_construction = 64) "
            f"WHERE dims = {dims} AND in_bank")


# What each table gets back after the move, partitioned (upgrade) or plain (downgrade).
PARTITIONED_KEYS = {
    "embeddings": [
        "ALTER TABLE embeddings ADD CONSTRAINT pk_embeddings PRIMARY KEY (tenant, id)",
        "ALTER TABLE embeddings ADD CONSTRAINT uq_embeddings_tenant_asset_pk_model_dims_task "
        "UNIQUE (tenant, asset_pk, model, dims, task)",
        "ALTER TABLE embeddings ADD CONSTRAINT fk_embeddings_tenant_assets FOREIGN KEY (tenant, asset_pk) "
        "REFERENCES assets (tenant, id) ON DELETE CASCADE",
    ],
    "decisions": [
        "ALTER TABLE decisions ADD CONSTRAINT pk_decisions PRIMARY KEY (tenant, id)",
        "ALTER TABLE decisions ADD CONSTRAINT uq_decisions_tenant_event_id UNIQUE (tenant, event_id)",
        "ALTER TABLE decisions ADD CONSTRAINT fk_decisions_tenant_assets FOREIGN KEY (tenant, asset_pk) "
        "REFERENCES assets (tenant, id) ON DELETE SET NULL (asset_pk)",
    ],
}
PLAIN_KEYS = {
    "embeddings": [
        "ALTER TABLE embeddings ADD CONSTRAINT pk_embeddings PRIMARY KEY (id)",
        "ALTER TABLE embeddings ADD CONSTRAINT uq_embeddings_asset_pk_model_dims_task "
        "UNIQUE (asset_pk, model, dims, task)",
        "ALTER TABLE embeddings ADD CONSTRAINT fk_embeddings_asset_pk_assets FOREIGN KEY (asset_pk) "
        "REFERENCES assets (id) ON DELETE CASCADE",
    ],
    "decisions": [
        "ALTER TABLE decisions ADD CONSTRAINT pk_decisions PRIMARY KEY (id)",
        "ALTER TABLE decisions ADD CONSTRAINT uq_decisions_tenant_event_id UNIQUE (tenant, event_id)",
        "ALTER TABLE decisions ADD CONSTRAINT fk_decisions_asset_pk_assets FOREIGN KEY (asset_pk) "
        "REFERENCES assets (id) ON DELETE SET NULL",
    ],
}
INDEXES = {
    "embeddings": [
        "CREATE INDEX ix_embeddings_tenant_model_dims_task_created_at ON embeddings "
        "(tenant, model, dims, task, created_at)",
        "CREATE INDEX ix_embeddings_tenant_sha256_model_dims_task ON embeddings (tenant, sha256, model, dims, task)",
        *(_bank_index_sql(d) for d in INDEXED_DIMS),
    ],
    "decisions": [
        "CREATE INDEX ix_decisions_tenant_asset_pk ON decisions (tenant, asset_pk)",
        "CREATE INDEX ix_decisions_tenant_decided_at ON decisions (tenant, decided_at)",
    ],
}


def _move(table: str, partitions: int | None, keys: list[str]) -> None:
    """Rebuild `table` as a hash-partitioned table (partitions) or a plain one (None), keeping rows and ids."""
    twin = f"{table}_rebuilt"
    op.execute(f"LOCK TABLE {table} IN ACCESS EXCLUSIVE MODE")
    shape = " PARTITION BY HASH (tenant)" if partitions else ""
    op.execute(f"CREATE TABLE {twin} (LIKE {table} INCLUDING DEFAULTS INCLUDING CONSTRAINTS "
               f"INCLUDING STORAGE INCLUDING COMMENTS){shape}")
    for remainder in range(partitions or 0):
        op.execute(f"CREATE TABLE {table}_p{remainder} PARTITION OF {twin} "
                   f"FOR VALUES WITH (MODULUS {partitions}, REMAINDER {remainder})")
    op.execute(f"INSERT INTO {twin} SELECT * FROM {table}")
    # The id sequence belongs to the old table's column; dropping that table would drop it too.
    op.execute(f"ALTER SEQUENCE {table}_id_seq OWNED BY NONE")
    op.execute(f"DROP TABLE {table}")
    op.execute(f"ALTER TABLE {twin} RENAME TO {table}")
    op.execute(f"ALTER SEQUENCE {table}_id_seq OWNED BY {table}.id")
    for statement in keys + INDEXES[table]:
        op.execute(statement)
    for index in _index_names(table):
        _name_partition_indexes(index)


def _index_names(table: str) -> list[str]:
    return [statement.split()[2] for statement in INDEXES[table]]


def _name_partition_indexes(index: str) -> None:
    """PostgreSQL names each partition's copy of an index after its columns (embeddings_p3_vector_idx1);
    `<index>_p<n>` keeps plans readable and lets a plan be matched to the index it came from."""
    op.execute(f"""
        DO $$ DECLARE r record; BEGIN
            FOR r IN SELECT child.relname AS child, partition.relname AS partition
                     FROM pg_inherits i
                     JOIN pg_class child ON child.oid = i.inhrelid
                     JOIN pg_index x ON x.indexrelid = child.oid
                     JOIN pg_class partition ON partition.oid = x.indrelid
                     WHERE i.inhparent = '{index}'::regclass LOOP
                EXECUTE format('ALTER INDEX %I RENAME TO %I', r.child,
                               '{index}' || substring(r.partition from '_p[0-9]+$'));
            END LOOP;
        END $$""")


def upgrade() -> None:
    op.execute("ALTER TABLE assets ADD CONSTRAINT uq_assets_tenant_id UNIQUE (tenant, id)")
    for table in ("embeddings", "decisions"):
        _move(table, PARTITIONS, PARTITIONED_KEYS[table])
    op.execute("SELECT governance_enable_tenant_rls()")


def downgrade() -> None:
    for table in ("embeddings", "decisions"):
        _move(table, None, PLAIN_KEYS[table])
    op.execute("ALTER TABLE assets DROP CONSTRAINT uq_assets_tenant_id")
    op.execute("SELECT governance_enable_tenant_rls()")
