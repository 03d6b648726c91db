"""hash banks: asset hashes, each tenant's banks of known hashes, hash evidence on decisions

Revision ID: 0007_hashes
Revises: 0006

- `asset_hashes`: MD5 of every stored asset's bytes and PDQ (with its quality) of images (the
  SHA-256 is `assets.sha256`).
- `hash_banks`: one version per tenant, bumped by every edit of its bank hashes.
- `bank_hashes`: known hashes with label, polarity, provenance and enabled state.
- `decisions.hash_matches`, `decisions.hash_missed`: the hash evidence of a decision.
"""
from alembic import op
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

revision = "0007_hashes"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column('decisions', sa.Column('hash_matches', postgresql.JSONB(astext_type=sa.Text()), nullable=True))
    op.add_column('decisions', sa.Column('hash_missed', postgresql.JSONB(astext_type=sa.Text()), nullable=True))
    op.create_table('asset_hashes',
    sa.Column('id', sa.BigInteger(), nullable=False),
    sa.Column('tenant', sa.String(length=128), nullable=False),
    sa.Column('asset_pk', sa.BigInteger(), nullable=False),
    sa.Column('signal_type', sa.String(length=16), nullable=False),
    sa.Column('signal', sa.String(length=64), nullable=False),
    sa.Column('quality', sa.Integer(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.ForeignKeyConstraint(['asset_pk'], ['assets.id'], name=op.f('fk_asset_hashes_asset_pk_assets'),
                            ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_asset_hashes')),
    sa.UniqueConstraint('asset_pk', 'signal_type', name=op.f('uq_asset_hashes_asset_pk_signal_type'))
    )
    op.create_index(op.f('ix_asset_hashes_tenant_signal_type_signal'), 'asset_hashes',
                    ['tenant', 'signal_type', 'signal'], unique=False)
    op.create_table('hash_banks',
    sa.Column('tenant', sa.String(length=128), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.PrimaryKeyConstraint('tenant', name=op.f('pk_hash_banks'))
    )
    op.create_table('bank_hashes',
    sa.Column('id', sa.BigInteger(), nullable=False),
    sa.Column('tenant', sa.String(length=128), nullable=False),
    sa.Column('signal_type', sa.String(length=16), nullable=False),
    sa.Column('signal', sa.String(length=64), nullable=False),
    sa.Column('label', sa.String(length=128), nullable=False),
    sa.Column('polarity', sa.String(length=16), nullable=False),
    sa.Column('source', sa.String(length=128), nullable=False),
    sa.Column('created_by', sa.String(length=256), nullable=True),
    sa.Column('enabled', sa.Boolean(), nullable=False),
    sa.Column('bank_version', sa.Integer(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_bank_hashes')),
    sa.UniqueConstraint('tenant', 'signal_type', 'signal', 'label',
                        name=op.f('uq_bank_hashes_tenant_signal_type_signal_label'))
    )
    op.create_index(op.f('ix_bank_hashes_tenant_enabled_signal_type'), 'bank_hashes',
                    ['tenant', 'enabled', 'signal_type'], unique=False)
    op.create_index(op.f('ix_bank_hashes_tenant_source'), 'bank_hashes', ['tenant', 'source'], unique=False)
    op.execute("SELECT governance_enable_tenant_rls()")


def downgrade() -> None:
    op.drop_index(op.f('ix_bank_hashes_tenant_source'), table_name='bank_hashes')
    op.drop_index(op.f('ix_bank_hashes_tenant_enabled_signal_type'), table_name='bank_hashes')
    op.drop_table('bank_hashes')
    op.drop_table('hash_banks')
    op.drop_index(op.f('ix_asset_hashes_tenant_signal_type_signal'), table_name='asset_hashes')
    op.drop_table('asset_hashes')
    op.drop_column('decisions', 'hash_missed')
    op.drop_column('decisions', 'hash_matches')
