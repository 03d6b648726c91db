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
    if name == "gemini":
        from governance.embedders.gemini import GeminiEmbedder

        return GeminiEmbedder(
            api_key=settings.gemini_api_key, model=settings.gemini_model, dims=settings.embedding_dims,
            base_url=settings.gemini_base_url, api_version=settings.gemini_api_version,
            timeout_s=settings.gemini_timeout_s, max_in_flight=settings.gemini_max_in_flight,
            max_retries=settings.gemini_max_retries, prefix_media=settings.gemini_prefix_media,
        )
    raise ValueError(f"unknown GOVERNANCE_EMBEDDER {settings.embedder!r} (known: auto, hashing, gemini)")
