"""blind second review: the reviewer decisions sampled for a second reviewer, and what they decided

Revision ID: 0011_second_review
Revises: 0010_vpdq

- `second_reviews`: one row per sampled event (GOVERNANCE_REVIEW_SECOND_SHARE): the first reviewer's
  outcome, the second reviewer's, and the status (open, agreed, disagreed, escalated, resolved).
"""
from alembic import op
import sqlalchemy as sa

revision = "0011_second_review"
down_revision = "0010_vpdq"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('second_reviews',
    sa.Column('id', sa.BigInteger(), nullable=False),
    sa.Column('tenant', sa.String(length=128), nullable=False),
    sa.Column('event_id', sa.String(length=256), nullable=False),
    sa.Column('asset_id', sa.String(length=256), nullable=False),
    sa.Column('first_audit_id', sa.BigInteger(), nullable=False),
    sa.Column('first_who', sa.String(length=256), nullable=False),
    sa.Column('first_action', sa.String(length=16), nullable=False),
    sa.Column('first_label', sa.String(length=128), nullable=True),
    sa.Column('opened_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('second_who', sa.String(length=256), nullable=True),
    sa.Column('second_action', sa.String(length=16), nullable=True),
    sa.Column('second_label', sa.String(length=128), nullable=True),
    sa.Column('second_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('status', sa.String(length=16), server_default='open', nullable=False),
    sa.Column('resolved_by', sa.String(length=256), nullable=True),
    sa.Column('resolved_at', sa.DateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_second_reviews')),
    sa.UniqueConstraint('tenant', 'event_id', name=op.f('uq_second_reviews_tenant_event_id'))
    )
    op.create_index(op.f('ix_second_reviews_tenant_status'), 'second_reviews', ['tenant', 'status'], unique=False)
    op.execute("SELECT governance_enable_tenant_rls()")


def downgrade() -> None:
    op.drop_index(op.f('ix_second_reviews_tenant_status'), table_name='second_reviews')
    op.drop_table('second_reviews')
