"""Hash-bank tables (migrations 0007, 0009): the hashes of stored assets, and each tenant's banks of known hashes."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Boolean, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from governance.storage.tables import Base, now_column


class AssetHash(Base):
    """A hash of a stored asset (upload or exemplar): MD5 of its bytes, PDQ of an image (its SHA-256
    is the asset row's `sha256`)."""

    __tablename__ = "asset_hashes"
    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    tenant: Mapped[str] = mapped_column(String(128))
    asset_pk: Mapped[int] = mapped_column(ForeignKey("assets.id", ondelete="CASCADE"))
    signal_type: Mapped[str] = mapped_column(String(16))  # pdq|md5|vpdq
    signal: Mapped[str] = mapped_column(String(64))  # lowercase hex (vpdq: the SHA-256 of `features`)
    quality: Mapped[int | None] = mapped_column(Integer)  # PDQ's 0-100 quality
    features: Mapped[str | None] = mapped_column(Text)  # vpdq only: threatexchange's JSON signal
    created_at: Mapped[datetime] = now_column()
    __table_args__ = (UniqueConstraint("asset_pk", "signal_type"), Index(None, "tenant", "signal_type", "signal"))


class HashBank(Base):
    """One row per tenant; `version` changes with every edit of the tenant's bank hashes."""

    __tablename__ = "hash_banks"
    tenant: Mapped[str] = mapped_column(String(128), primary_key=True)
    version: Mapped[int] = mapped_column(Integer, default=0)
    updated_at: Mapped[datetime] = now_column()


class BankHash(Base):
    """A known hash in a tenant's hash bank. `polarity = negative` is an allowlist entry."""

    __tablename__ = "bank_hashes"
    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    tenant: Mapped[str] = mapped_column(String(128))
    signal_type: Mapped[str] = mapped_column(String(16))
    signal: Mapped[str] = mapped_column(String(64))  # lowercase hex (vpdq: the SHA-256 of `features`)
    features: Mapped[str | None] = mapped_column(Text)  # vpdq only: threatexchange's JSON signal
    label: Mapped[str] = mapped_column(String(128))
    polarity: Mapped[str] = mapped_column(String(16), default="positive")
    source: Mapped[str] = mapped_column(String(128))  # the list it came from, e.g. a file or a partner
    created_by: Mapped[str | None] = mapped_column(String(256))
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    bank_version: Mapped[int] = mapped_column(Integer)  # the hash bank version that last changed it
    created_at: Mapped[datetime] = now_column()
    __table_args__ = (UniqueConstraint("tenant", "signal_type", "signal", "label"),
                      Index(None, "tenant", "enabled", "signal_type"), Index(None, "tenant", "source"))
