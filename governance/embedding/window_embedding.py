"""Over-limit content becomes windows, one embedding request each, pooled into one vector.

The embedder states its limits (`Embedder.limits`); governance.embedding.window_planning plans the spans, and
governance.ingest.media cuts them. Every asset is planned, and the window cap checked, before the first
call, so an asset over the cap costs nothing. Windows of all assets go out in one embed() call
(`plan`, `contents`, embed, `combine`), so they share batching, concurrency and retries.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from governance.embedding import window_planning
from governance.embedding.protocol import NO_LIMITS, Embedder, EmbeddingError, Limits, UnusableVector
from governance.ingest import media
from governance.ingest.assets import LoadedAsset
from governance.ingest.content import Content

# Audio is cut from its decoded samples; this only bounds decoding, which load() already checked.
_DECODE_BOUND_S = 24 * 3600


@dataclass(frozen=True)
class Window:
    index: int
    unit: str  # pages | seconds | chars
    start: float
    end: float
    weight: float  # pages, seconds or estimated tokens: the pooling weight
    content: Content


@dataclass(frozen=True)
class WindowedVector:
    vector: np.ndarray  # the pooled asset vector, unit length
    windows: list[tuple[Window, np.ndarray]]  # empty when the asset fitted one request


def limits_of(embedder: Embedder) -> Limits:
    return getattr(embedder, "limits", NO_LIMITS)


def split(asset: LoadedAsset, limits: Limits) -> list[Window]:
    """The asset's windows; a single window holding the asset's own content when it fits."""
    content = asset.content
    try:
        if content.modality == "text":
            return _text_windows(content, limits)
        if content.modality == "pdf" and asset.extent:
            spans = window_planning.page_spans(int(asset.extent), limits.pdf_pages)
            window_planning.check_cap(len(spans), limits.max_windows, f"a {int(asset.extent)}-page PDF")
            if len(spans) == 1:
                return [Window(0, "pages", 0, asset.extent, asset.extent, content)]
            cut = [media.pdf_window(content.data or b"", a, b) for a, b in spans]
            return [Window(i, "pages", a, b, b - a, Content("pdf", "application/pdf", text=text, data=data))
                    for i, ((a, b), (data, text)) in enumerate(zip(spans, cut))]
        if content.modality in ("audio", "video") and asset.extent:
            limit = limits.audio_seconds if content.modality == "audio" else limits.video_seconds
            spans = window_planning.time_spans(asset.extent, limit)
            window_planning.check_cap(len(spans), limits.max_windows, f"{asset.extent:.1f} s of {content.modality}")
            if len(spans) == 1:
                return [Window(0, "seconds", 0, asset.extent, asset.extent, content)]
            if content.modality == "audio":
                cut = media.audio_windows(content.data or b"", spans, _DECODE_BOUND_S)
                mime = "audio/wav"
            else:
                cut = [media.video_window(content.data or b"", a, b) for a, b in spans]
                mime = "video/mp4"
            return [Window(i, "seconds", a, b, b - a, Content(content.modality, mime, data=data))
                    for i, ((a, b), data) in enumerate(zip(spans, cut))]
    except window_planning.TooManyWindows as exc:
        raise EmbeddingError(str(exc)) from None
    except media.MediaError as exc:
        raise EmbeddingError(str(exc)) from None
    return [Window(0, "whole", 0, 1, 1, content)]  # images, and anything its embedder takes whole


def _text_windows(content: Content, limits: Limits) -> list[Window]:
    text = content.text or ""
    spans = window_planning.text_spans(text, limits.text_tokens)
    if len(spans) == 1:
        return [Window(0, "chars", 0, len(text), 1, content)]  # the hot path: most texts fit
    window_planning.check_cap(len(spans), limits.max_windows, f"a text of ~{window_planning.estimate_tokens(text)} tokens")
    return [Window(i, "chars", a, b, max(1, window_planning.estimate_tokens(text[a:b])),
                   Content("text", "text/plain", text=text[a:b])) for i, (a, b) in enumerate(spans)]


def plan(embedder: Embedder, assets: Sequence[LoadedAsset]) -> list[list[Window]]:
    """Every asset's windows under the embedder's limits; raises before any call if one is over the cap."""
    limits = limits_of(embedder)
    return [split(asset, limits) for asset in assets]


def contents(plans: list[list[Window]]) -> list[Content]:
    """What to embed, one request per window, assets in order."""
    return [w.content for windows in plans for w in windows]


def combine(plans: list[list[Window]], vectors: np.ndarray) -> list[WindowedVector]:
    """One pooled vector per asset from the vectors of `contents(plans)`, in the same order."""
    total = sum(len(windows) for windows in plans)
    if len(vectors) != total:
        raise UnusableVector(f"invalid_embedding: {len(vectors)} vectors for {total} windows")
    out, offset = [], 0
    for windows in plans:
        rows = np.asarray(vectors[offset:offset + len(windows)], dtype=np.float32)
        offset += len(windows)
        if len(windows) == 1:
            out.append(WindowedVector(rows[0], []))
        else:
            out.append(WindowedVector(window_planning.pool(rows, [w.weight for w in windows]), list(zip(windows, rows))))
    return out
