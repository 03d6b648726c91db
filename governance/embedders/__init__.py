"""Embedding backends behind one Protocol, chosen by `GOVERNANCE_EMBEDDER`."""
from __future__ import annotations

from governance.config import Settings
from governance.embedders.base import Content, Embedder, EmbeddingError, Task, task_prefixed

__all__ = ["Content", "Embedder", "EmbeddingError", "Task", "task_prefixed", "build_embedder"]


def build_embedder(settings: Settings) -> Embedder:
    """`auto` means Gemini when a key is set, otherwise the offline embedder."""
    name = settings.embedder
    if name == "auto":
        name = "gemini" if settings.gemini_api_key else "hashing"
    if name == "hashing":
        from governance.embedders.hashing import HashingEmbedder

        return HashingEmbedder(settings.embedding_dims)
    raise ValueError(f"unknown GOVERNANCE_EMBEDDER {settings.embedder!r} (known: auto, hashing)")
