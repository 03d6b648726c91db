"""console sessions remember the API key they were started with

Revision ID: 0009_console_admin
Revises: 0008_ocr

- `console_sessions.api_key_id`: the key a session was started with (null for a login link), so
  that admin-only console actions (applying a policy) check that key's scopes when they are taken.
"""
from alembic import op
import sqlalchemy as sa

revision = "0009_console_admin"
down_revision = "0008_ocr"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column('console_sessions', sa.Column('api_key_id', sa.String(length=32), nullable=True))


def downgrade() -> None:
    op.drop_column('console_sessions', 'api_key_id')
