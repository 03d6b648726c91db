"""Embedding backends behind one Protocol, chosen by `GOVERNANCE_EMBEDDER`."""
from __future__ import annotations

from governance.embedding.protocol import Embedder
from governance.platform.config import Settings

KNOWN_SPECS = "auto, offline, hashing, gemini, or a Gemini model name such as gemini-embedding-001"


def build_embedder(settings: Settings, name: str | None = None, dims: int | None = None) -> Embedder:
    """The backend `name` (default GOVERNANCE_EMBEDDER) at `dims` (default GOVERNANCE_EMBEDDING_DIMS).

    `auto`: Gemini when a key is set; else `offline` (MiniLM text through GOVERNANCE_TEXT_BACKEND,
    image features) when the sentence checkpoint is installed; else `hashing`. `gemini` uses
    GOVERNANCE_GEMINI_MODEL; a name starting with `gemini-` is that Gemini model. `offline` has its checkpoint's dims.
    """
    name = name or settings.embedder
    dims = dims or settings.embedding_dims
    model = settings.gemini_model
    if name.startswith("gemini-"):
        name, model = "gemini", name
    if name == "auto":
        from governance.embedding.backends.offline import sentence_checkpoint_available

        if settings.gemini_api_key:
            name = "gemini"
        else:
            name = "offline" if sentence_checkpoint_available(settings.sentence_model_path) else "hashing"
    if name in ("offline", "minilm"):
        from governance.embedding.backends.offline import OfflineEmbedder

        return OfflineEmbedder(settings.sentence_model_path, text_backend=settings.text_backend,
                               threads=settings.embedder_threads, max_windows=settings.max_windows)
    if name == "hashing":
        from governance.embedding.backends.hashing import HashingEmbedder

        return HashingEmbedder(dims, max_windows=settings.max_windows)
    if name == "gemini":
        from governance.embedding.backends.gemini.client import GeminiEmbedder
        from governance.embedding.backends.gemini.quota import gemini_guards

        quota, breaker = gemini_guards(settings, model)
        return GeminiEmbedder(
            api_key=settings.gemini_api_key, model=model, dims=dims,
            base_url=settings.gemini_base_url, api_version=settings.gemini_api_version,
            timeout_s=settings.gemini_timeout_s, max_in_flight=settings.gemini_max_in_flight,
            max_retries=settings.gemini_max_retries, prefix_media=settings.gemini_prefix_media,
            backoff_cap_s=settings.gemini_backoff_cap_s, quota=quota, breaker=breaker,
            max_windows=settings.max_windows,
        )
    raise ValueError(f"unknown embedder {name!r} (known: {KNOWN_SPECS})")
