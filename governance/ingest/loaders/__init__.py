"""One loader per modality: validated, measured and (where needed) converted content.

`governance.ingest.assets` reads the bytes and sniffs them once; the sniffed type picks one loader
here, which returns a `Loaded` or raises `RejectedInput`. Formats Gemini does not take inline are
converted to canonical ones (PNG, WAV, MP4) here, so embedders see only those.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from governance.ingest.content import Content
from governance.platform.config import Settings


@dataclass(frozen=True)
class Loaded:
    content: Content
    excerpt: str | None = None
    extent: float | None = None  # pdf: pages; audio, video: seconds (what windows are cut along)


Loader = Callable[[bytes, str, Settings], Loaded]


def loader_for(modality: str) -> Loader:
    from governance.ingest.loaders import audio, image, pdf, video

    return {"image": image.load, "audio": audio.load, "video": video.load, "pdf": pdf.load}[modality]
