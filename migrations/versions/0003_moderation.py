"""moderation: policy versions, audit log, review items, delivery log, alert state

Revision ID: 0003
Revises: 0001

Every new table carries `tenant`. Row-level security for them comes from 0002, which revises both
0001 and this revision (a merge) and so runs after these tables exist.
"""
from alembic import op
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

revision = '0003'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('policies',
    sa.Column('id', sa.BigInteger(), nullable=False),
    sa.Column('tenant', sa.String(length=128), nullable=False),
    sa.Column('version', sa.String(length=64), nullable=False),
    sa.Column('source', sa.Text(), nullable=False),
    sa.Column('document', postgresql.JSONB(astext_type=sa.Text()), nullable=False),
    sa.Column('applied_by', sa.String(length=256), nullable=True),
    sa.Column('applied_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_policies')),
    sa.UniqueConstraint('tenant', 'version', name=op.f('uq_policies_tenant_version'))
    )
    op.create_index(op.f('ix_policies_tenant_applied_at'), 'policies', ['tenant', 'applied_at'], unique=False)
    op.create_table('audit_log',
    sa.Column('id', sa.BigInteger(), nullable=False),
    sa.Column('tenant', sa.String(length=128), nullable=False),
    sa.Column('kind', sa.String(length=32), nullable=False),
    sa.Column('asset_id', sa.String(length=256), nullable=True),
    sa.Column('event_id', sa.String(length=256), nullable=True),
    sa.Column('who', sa.String(length=256), nullable=True),
    sa.Column('at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('before', postgresql.JSONB(astext_type=sa.Text()), nullable=True),
    sa.Column('after', postgresql.JSONB(astext_type=sa.Text()), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_audit_log'))
    )
    op.create_index(op.f('ix_audit_log_tenant_kind_event_id'), 'audit_log', ['tenant', 'kind', 'event_id'], unique=False)
    op.create_index(op.f('ix_audit_log_tenant_asset_id'), 'audit_log', ['tenant', 'asset_id'], unique=False)
    op.create_index(op.f('ix_audit_log_tenant_at'), 'audit_log', ['tenant', 'at'], unique=False)
    op.create_table('review_items',
    sa.Column('id', sa.BigInteger(), nullable=False),
    sa.Column('tenant', sa.String(length=128), nullable=False),
    sa.Column('asset_pk', sa.BigInteger(), nullable=False),
    sa.Column('asset_id', sa.String(length=256), nullable=False),
    sa.Column('event_id', sa.String(length=256), nullable=True),
    sa.Column('reason', sa.String(length=32), nullable=False),
    sa.Column('label', sa.String(length=128), nullable=False),
    sa.Column('trigger_asset_id', sa.String(length=256), nullable=False),
    sa.Column('distance', sa.Float(), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('resolved_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('resolved_by', sa.String(length=256), nullable=True),
    sa.ForeignKeyConstraint(['asset_pk'], ['assets.id'], name=op.f('fk_review_items_asset_pk_assets'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_review_items')),
    sa.UniqueConstraint('tenant', 'asset_pk', 'trigger_asset_id', 'label', name=op.f('uq_review_items_tenant_asset_pk_trigger_asset_id_label'))
    )
    op.create_index('ix_review_items_open', 'review_items', ['tenant', 'created_at'], unique=False, postgresql_where="status = 'open'")
    op.create_table('outbox_deliveries',
    sa.Column('id', sa.BigInteger(), nullable=False),
    sa.Column('tenant', sa.String(length=128), nullable=False),
    sa.Column('message_id', sa.String(length=300), nullable=False),
    sa.Column('sink', sa.String(length=128), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('error', sa.Text(), nullable=True),
    sa.Column('at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.CheckConstraint("status IN ('delivered','failed')", name=op.f('ck_outbox_deliveries_known_status')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_outbox_deliveries'))
    )
    op.create_index(op.f('ix_outbox_deliveries_tenant_message_id'), 'outbox_deliveries', ['tenant', 'message_id'], unique=False)
    op.create_table('alert_state',
    sa.Column('tenant', sa.String(length=128), nullable=False),
    sa.Column('kind', sa.String(length=32), nullable=False),
    sa.Column('cursor_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('last_alert_at', sa.DateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('tenant', 'kind', name=op.f('pk_alert_state'))
    )


def downgrade() -> None:
    op.drop_table('alert_state')
    op.drop_index(op.f('ix_outbox_deliveries_tenant_message_id'), table_name='outbox_deliveries')
    op.drop_table('outbox_deliveries')
    op.drop_index('ix_review_items_open', table_name='review_items', postgresql_where="status = 'open'")
    op.drop_table('review_items')
    op.drop_index(op.f('ix_audit_log_tenant_at'), table_name='audit_log')
    op.drop_index(op.f('ix_audit_log_tenant_asset_id'), table_name='audit_log')
    op.drop_index(op.f('ix_audit_log_tenant_kind_event_id'), table_name='audit_log')
    op.drop_table('audit_log')
    op.drop_index(op.f('ix_policies_tenant_applied_at'), table_name='policies')
    op.drop_table('policies')
