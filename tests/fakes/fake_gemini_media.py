"""What the fake Gemini checks in inline media, as Google does: accepted MIME types and the
per-request limits (6 images, 6 PDF pages, 180 s of audio, 120 s of video), measured from the
media itself (pypdf, PyAV) rather than taken from the client's word.
"""
from __future__ import annotations

import base64
import io

ACCEPTED_MIME = frozenset({"image/png", "image/jpeg", "audio/mpeg", "audio/mp3", "audio/wav", "audio/x-wav",
                           "video/mp4", "video/quicktime", "application/pdf"})
MAX_IMAGES, MAX_PDF_PAGES, MAX_AUDIO_S, MAX_VIDEO_S = 6, 6, 180.0, 120.0


def decode_b64(data: str) -> bytes:
    """Google accepts both alphabets; the Python SDK sends the URL-safe one."""
    normalised = data.replace("-", "+").replace("_", "/")
    return base64.b64decode(normalised + "=" * (-len(normalised) % 4), validate=True)


def _blob(part: dict) -> tuple[str, bytes]:
    blob = part.get("inlineData") or part.get("inline_data")
    return (blob.get("mimeType") or blob.get("mime_type")), decode_b64(blob["data"])


def media_extent(mime: str, data: bytes) -> dict:
    """What Google would measure: PDF pages, or audio/video seconds from the packets' timestamps."""
    if mime == "application/pdf":
        from pypdf import PdfReader

        return {"pages": len(PdfReader(io.BytesIO(data)).pages)}
    if mime.startswith(("audio/", "video/")):
        import av

        with av.open(io.BytesIO(data)) as container:
            stream = (container.streams.video or container.streams.audio)[0]
            stamps = [(p.pts, p.duration or 0) for p in container.demux(stream) if p.pts is not None]
            low, high = min(p for p, _ in stamps), max(p + d for p, d in stamps)
            return {"seconds": float((high - low) * stream.time_base)}
    return {}


def describe_part(part: dict) -> dict:
    if "text" in part:
        return {"text": part["text"]}
    mime, data = _blob(part)
    return {"mime_type": mime, "bytes": len(data), **media_extent(mime, data)}


def check_request_media(parts: list[dict]) -> str | None:
    """Google's refusal message for a request it would not embed, or None."""
    blobs = [_blob(p) for p in parts if "text" not in p]
    if sum(mime.startswith("image/") for mime, _ in blobs) > MAX_IMAGES:
        return f"At most {MAX_IMAGES} images are supported per request."
    for mime, data in blobs:
        if mime not in ACCEPTED_MIME:
            return f"Unsupported MIME type: {mime}"
        try:
            extent = media_extent(mime, data)
        except Exception as exc:  # noqa: BLE001 - any decoder failure is the client's bad input
            return f"Unable to process input {mime}: {exc.__class__.__name__}"
        if extent.get("pages", 0) > MAX_PDF_PAGES:
            return f"PDF has {extent['pages']} pages; at most {MAX_PDF_PAGES} are supported."
        limit = MAX_AUDIO_S if mime.startswith("audio/") else MAX_VIDEO_S
        if extent.get("seconds", 0) > limit + 1e-6:
            return f"{mime} of {extent['seconds']:.1f} s exceeds {limit:g} s."
    return None
