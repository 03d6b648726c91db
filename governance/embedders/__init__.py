"""Embedding backends behind one Protocol, chosen by `GOVERNANCE_EMBEDDER`."""
from __future__ import annotations

from governance.config import Settings
from governance.embedders.base import Content, Embedder, EmbeddingError, Limits, Task, task_prefixed

__all__ = ["Content", "Embedder", "EmbeddingError", "Limits", "Task", "task_prefixed", "build_embedder"]


def build_embedder(settings: Settings) -> Embedder:
    """`auto`: Gemini when a key is set; else `offline` (MiniLM text + image features) when the
    sentence checkpoint is installed; else `hashing`."""
    name = settings.embedder
    if name == "auto":
        from governance.embedders.offline import sentence_checkpoint_available

        if settings.gemini_api_key:
            name = "gemini"
        else:
            name = "offline" if sentence_checkpoint_available(settings.sentence_model_path) else "hashing"
    if name in ("offline", "minilm"):
        from governance.embedders.offline import OfflineEmbedder

        return OfflineEmbedder(settings.sentence_model_path, threads=settings.embedder_threads,
                               max_windows=settings.max_windows)
    if name == "hashing":
        from governance.embedders.hashing import HashingEmbedder

        return HashingEmbedder(settings.embedding_dims, max_windows=settings.max_windows)
    if name == "gemini":
        from governance.embedders.gemini import GeminiEmbedder

        return GeminiEmbedder(
            api_key=settings.gemini_api_key, model=settings.gemini_model, dims=settings.embedding_dims,
            base_url=settings.gemini_base_url, api_version=settings.gemini_api_version,
            timeout_s=settings.gemini_timeout_s, max_in_flight=settings.gemini_max_in_flight,
            max_retries=settings.gemini_max_retries, prefix_media=settings.gemini_prefix_media,
            max_windows=settings.max_windows,
        )
    raise ValueError(f"unknown GOVERNANCE_EMBEDDER {settings.embedder!r} (known: auto, offline, hashing, gemini)")
