"""text inside images: the OCR text of an asset, the OCR evidence of a decision

Revision ID: 0008_ocr
Revises: 0007_console

- `assets.ocr_text`, `assets.ocr_confidence`: what OCR read in an image upload (cluster keywords use it).
- `decisions.ocr`: `{text, confidence, label, score, used, ...}`; `decisions.evidence_source`:
  "image", "text" or "both", which reading of an image the label rests on.
"""
from alembic import op
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

revision = "0008_ocr"
down_revision = "0007_console"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column('assets', sa.Column('ocr_text', sa.Text(), nullable=True))
    op.add_column('assets', sa.Column('ocr_confidence', sa.Float(), nullable=True))
    op.add_column('decisions', sa.Column('ocr', postgresql.JSONB(astext_type=sa.Text()), nullable=True))
    op.add_column('decisions', sa.Column('evidence_source', sa.String(length=8), nullable=True))


def downgrade() -> None:
    op.drop_column('decisions', 'evidence_source')
    op.drop_column('decisions', 'ocr')
    op.drop_column('assets', 'ocr_confidence')
    op.drop_column('assets', 'ocr_text')
