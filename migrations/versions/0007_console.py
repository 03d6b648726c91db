"""review console: one-time login links, reviewer sessions and settings, review leases

Revision ID: 0007_console
Revises: 0007_hashes

- `console_login_links`: `governance console-link` tokens, by SHA-256 only; void after first use or ttl.
- `console_sessions`: signed-in reviewers (cookie value by SHA-256 only), with their CSRF token.
- `reviewer_settings`: per-reviewer defaults (media revealed or blurred).
- `review_leases`: who works on which review item until when (governance/moderation/review_queue.py).
"""
from alembic import op
import sqlalchemy as sa

revision = "0007_console"
down_revision = "0007_hashes"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('console_login_links',
    sa.Column('id', sa.BigInteger(), nullable=False),
    sa.Column('tenant', sa.String(length=128), nullable=False),
    sa.Column('token_hash', sa.String(length=64), nullable=False),
    sa.Column('who', sa.String(length=256), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('expires_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('used_at', sa.DateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_console_login_links')),
    sa.UniqueConstraint('token_hash', name=op.f('uq_console_login_links_token_hash'))
    )
    op.create_table('console_sessions',
    sa.Column('id', sa.String(length=32), nullable=False),
    sa.Column('tenant', sa.String(length=128), nullable=False),
    sa.Column('token_hash', sa.String(length=64), nullable=False),
    sa.Column('who', sa.String(length=256), nullable=False),
    sa.Column('via', sa.String(length=16), nullable=False),
    sa.Column('csrf_token', sa.String(length=64), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('expires_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('revoked_at', sa.DateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_console_sessions')),
    sa.UniqueConstraint('token_hash', name=op.f('uq_console_sessions_token_hash'))
    )
    op.create_index(op.f('ix_console_sessions_tenant_who'), 'console_sessions', ['tenant', 'who'], unique=False)
    op.create_table('reviewer_settings',
    sa.Column('tenant', sa.String(length=128), nullable=False),
    sa.Column('who', sa.String(length=256), nullable=False),
    sa.Column('reveal_media', sa.Boolean(), server_default='false', nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.PrimaryKeyConstraint('tenant', 'who', name=op.f('pk_reviewer_settings'))
    )
    op.create_table('review_leases',
    sa.Column('tenant', sa.String(length=128), nullable=False),
    sa.Column('event_id', sa.String(length=256), nullable=False),
    sa.Column('session_id', sa.String(length=32), nullable=True),
    sa.Column('who', sa.String(length=256), nullable=True),
    sa.Column('claimed_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('expires_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('skipped_by', sa.String(length=32), nullable=True),
    sa.PrimaryKeyConstraint('tenant', 'event_id', name=op.f('pk_review_leases'))
    )
    op.execute("SELECT governance_enable_tenant_rls()")


def downgrade() -> None:
    op.drop_table('review_leases')
    op.drop_table('reviewer_settings')
    op.drop_index(op.f('ix_console_sessions_tenant_who'), table_name='console_sessions')
    op.drop_table('console_sessions')
    op.drop_table('console_login_links')
