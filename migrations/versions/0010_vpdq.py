"""vPDQ hashes: the features of a video's vPDQ signal

Revision ID: 0010_vpdq
Revises: 0009_console_admin

- `asset_hashes.features`, `bank_hashes.features`: a vPDQ signal (threatexchange's JSON list of
  "pdq_hex,quality,timestamp"), too long for the indexed `signal` column, which holds its SHA-256
  as the key; null for every other signal type.
"""
from alembic import op
import sqlalchemy as sa

revision = "0010_vpdq"
down_revision = "0009_console_admin"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column('asset_hashes', sa.Column('features', sa.Text(), nullable=True))
    op.add_column('bank_hashes', sa.Column('features', sa.Text(), nullable=True))


def downgrade() -> None:
    op.drop_column('bank_hashes', 'features')
    op.drop_column('asset_hashes', 'features')
