"""models and usage: embedding spend per tenant and model, per-tenant active model, exemplar sources

Revision ID: 0005
Revises: 0004

- `embedding_usage`: one row per (tenant, UTC day, model, dims, mode), upserted in the same
  transaction as the vectors it paid for (governance/embedding/usage.py).
- `tenant_models`: the (backend spec, dims) a tenant embeds with; at most one active row per
  tenant, switched by `governance reembed` (governance/embedding/reembed.py). No row: the process default.
- `embedding_batch_jobs`: Batch API jobs that `reembed --batch-api` submitted and has not yet
  collected, so an interrupted run polls them again instead of paying twice.
- `exemplars.content`: the imported item's content (`text`, `uri` or `data_b64`, `mime_type`),
  so a bank can be re-embedded under another model without the original file.
"""
from alembic import op
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

revision = '0005'
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('embedding_usage',
    sa.Column('tenant', sa.String(length=128), nullable=False),
    sa.Column('day', sa.Date(), nullable=False),
    sa.Column('model', sa.String(length=128), nullable=False),
    sa.Column('dims', sa.Integer(), nullable=False),
    sa.Column('mode', sa.String(length=8), nullable=False),
    sa.Column('items', sa.BigInteger(), nullable=False),
    sa.Column('cached_items', sa.BigInteger(), nullable=False),
    sa.Column('calls', sa.BigInteger(), nullable=False),
    sa.Column('prompt_tokens', sa.BigInteger(), nullable=False),
    sa.Column('estimated', sa.Boolean(), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.CheckConstraint("mode IN ('online','batch')", name=op.f('ck_embedding_usage_known_mode')),
    sa.PrimaryKeyConstraint('tenant', 'day', 'model', 'dims', 'mode', name=op.f('pk_embedding_usage'))
    )
    op.create_table('tenant_models',
    sa.Column('id', sa.BigInteger(), nullable=False),
    sa.Column('tenant', sa.String(length=128), nullable=False),
    sa.Column('spec', sa.String(length=128), nullable=False),
    sa.Column('dims', sa.Integer(), nullable=False),
    sa.Column('model_id', sa.String(length=128), nullable=False),
    sa.Column('active', sa.Boolean(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('switched_at', sa.DateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_tenant_models')),
    sa.UniqueConstraint('tenant', 'spec', 'dims', name=op.f('uq_tenant_models_tenant_spec_dims'))
    )
    op.create_index('ix_tenant_models_active', 'tenant_models', ['tenant'], unique=True,
                    postgresql_where='active')
    op.create_table('embedding_batch_jobs',
    sa.Column('id', sa.BigInteger(), nullable=False),
    sa.Column('tenant', sa.String(length=128), nullable=False),
    sa.Column('job_name', sa.String(length=256), nullable=False),
    sa.Column('model', sa.String(length=128), nullable=False),
    sa.Column('dims', sa.Integer(), nullable=False),
    sa.Column('task', sa.String(length=32), nullable=False),
    sa.Column('items', postgresql.JSONB(astext_type=sa.Text()), nullable=False),
    sa.Column('state', sa.String(length=16), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('finished_at', sa.DateTime(timezone=True), nullable=True),
    sa.CheckConstraint("state IN ('open','stored','failed')", name=op.f('ck_embedding_batch_jobs_known_state')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_embedding_batch_jobs')),
    sa.UniqueConstraint('tenant', 'job_name', name=op.f('uq_embedding_batch_jobs_tenant_job_name'))
    )
    op.create_index('ix_embedding_batch_jobs_open', 'embedding_batch_jobs', ['tenant', 'model', 'dims'],
                    unique=False, postgresql_where="state = 'open'")
    op.add_column('exemplars', sa.Column('content', postgresql.JSONB(astext_type=sa.Text()), nullable=True))
    op.execute("SELECT governance_enable_tenant_rls()")


def downgrade() -> None:
    op.drop_column('exemplars', 'content')
    op.drop_index('ix_embedding_batch_jobs_open', table_name='embedding_batch_jobs',
                  postgresql_where="state = 'open'")
    op.drop_table('embedding_batch_jobs')
    op.drop_index('ix_tenant_models_active', table_name='tenant_models', postgresql_where='active')
    op.drop_table('tenant_models')
    op.drop_table('embedding_usage')
