"""Loaded content, the value ingest hands to embedding."""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Content:
    """One loaded, validated asset, ready to embed: text, or bytes with a sniffed MIME type."""

    modality: str  # text|image|audio|video|pdf
    mime_type: str
    text: str | None = None
    data: bytes | None = None
