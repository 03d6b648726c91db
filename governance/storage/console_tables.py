"""The review console's tables (migrations 0007_console, 0009_console_admin): login links, sessions, reviewer settings, leases."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Boolean, DateTime, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from governance.storage.tables import Base, now_column


class ConsoleLoginLink(Base):
    """A one-time login link for the review console. Only a SHA-256 of its token is kept; the link
    is void once `used_at` is set or `expires_at` has passed."""

    __tablename__ = "console_login_links"
    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    tenant: Mapped[str] = mapped_column(String(128))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    who: Mapped[str] = mapped_column(String(256))
    created_at: Mapped[datetime] = now_column()
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    used_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class ConsoleSession(Base):
    """A signed-in reviewer. The cookie holds a random value of which only a SHA-256 is kept; `id`
    is the public handle that leases name, so two tabs of one session share their leases."""

    __tablename__ = "console_sessions"
    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    tenant: Mapped[str] = mapped_column(String(128))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    who: Mapped[str] = mapped_column(String(256))
    via: Mapped[str] = mapped_column(String(16))  # link|api_key
    api_key_id: Mapped[str | None] = mapped_column(String(32))  # via api_key: which key (its scopes gate admin actions)
    csrf_token: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = now_column()
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    __table_args__ = (Index(None, "tenant", "who"),)


class ReviewerSetting(Base):
    """A reviewer's own defaults (wellness): whether media is shown unblurred without a click."""

    __tablename__ = "reviewer_settings"
    tenant: Mapped[str] = mapped_column(String(128), primary_key=True)
    who: Mapped[str] = mapped_column(String(256), primary_key=True)
    reveal_media: Mapped[bool] = mapped_column(Boolean, default=False, server_default="false")
    updated_at: Mapped[datetime] = now_column()


class ReviewLease(Base):
    """Who works on a review item until when. Claimed by one conditional upsert, so two sessions
    never both hold a live lease; `skipped_by` keeps a skipped item out of that session's next pick."""

    __tablename__ = "review_leases"
    tenant: Mapped[str] = mapped_column(String(128), primary_key=True)
    event_id: Mapped[str] = mapped_column(String(256), primary_key=True)
    session_id: Mapped[str | None] = mapped_column(String(32))
    who: Mapped[str | None] = mapped_column(String(256))
    claimed_at: Mapped[datetime] = now_column()
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    skipped_by: Mapped[str | None] = mapped_column(String(32))
