"""Turning an upload event into validated content: read it, sniff it, check its limits.

The type comes from the magic bytes, never from the declared MIME type alone; a declared type
that disagrees with the content is a reject. Images are parsed only by the formats we accept,
with Pillow's decompression-bomb limit left on and turned into an error. Audio is decoded in full
and video probed, so corrupt media is a reject here, before any embedding call; formats Gemini
does not take inline are converted to canonical ones (see governance.ingest.media). `sha256` is always
that of the original bytes: the content-hash cache keys on what was uploaded.
"""
from __future__ import annotations

import base64
import binascii
import hashlib
import io
import re
import warnings
from dataclasses import dataclass
from urllib.parse import unquote

from governance.ingest import media
from governance.ingest.content import Content
from governance.ingest.events import UploadEvent
from governance.ingest.safe_fetch import FetchRefused, fetch_http, read_file_uri
from governance.platform.config import Settings

IMAGE_FORMATS = {"image/png": "PNG", "image/jpeg": "JPEG", "image/gif": "GIF", "image/webp": "WEBP", "image/bmp": "BMP"}
MODALITY_OF = {
    **{mime: "image" for mime in IMAGE_FORMATS},
    "application/pdf": "pdf",
    "audio/wav": "audio", "audio/mpeg": "audio", "audio/flac": "audio", "audio/ogg": "audio",
    "audio/aac": "audio", "audio/mp4": "audio",
    "video/mp4": "video", "video/quicktime": "video", "video/webm": "video", "video/x-msvideo": "video",
    "text/plain": "text",
}
# Passed through as uploaded; everything else of these modalities is converted (governance.ingest.media).
NATIVE_MIME = frozenset({"image/png", "image/jpeg", "audio/wav", "audio/mpeg", "video/mp4", "video/quicktime",
                         "application/pdf"})
# Containers whose magic bytes do not tell audio from video; the streams inside decide.
AUDIO_OR_VIDEO_CONTAINERS = frozenset({"video/mp4", "video/webm"})
MAX_PDF_PAGES = 50
# MPEG audio frame sync: 11 set bits, then version (not the reserved 01) and layer (not 00, which
# is AAC's ADTS): MPEG-1, -2 and -2.5 at layers I-III, with or without CRC.
_MPEG_AUDIO_SECOND_BYTES = frozenset(b for b in range(0xE0, 0x100) if (b >> 3) & 3 != 1 and (b >> 1) & 3 != 0)


class RejectedInput(Exception):
    """The content cannot be accepted; the message is the `reason` on the reject decision."""


@dataclass(frozen=True)
class LoadedAsset:
    content: Content
    sha256: str
    size_bytes: int
    source_uri: str | None
    text_excerpt: str | None
    extent: float | None = None  # pdf: pages; audio, video: seconds (what windows are cut along)
    md5: str | None = None  # of the original bytes, as sha256: what MD5 hash lists are matched on


def sniff(data: bytes) -> str | None:
    """MIME type from magic bytes, or None for anything we do not accept."""
    head = data[:16]
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if head.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if head[:6] in (b"GIF87a", b"GIF89a"):
        return "image/gif"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "image/webp"
    if head[:4] == b"RIFF" and head[8:12] == b"WAVE":
        return "audio/wav"
    if head[:4] == b"RIFF" and head[8:12] == b"AVI ":
        return "video/x-msvideo"
    if head.startswith(b"\x1a\x45\xdf\xa3"):  # EBML: WebM and Matroska
        return "video/webm"
    if head.startswith(b"BM"):
        return "image/bmp"
    if head.startswith(b"%PDF-"):
        return "application/pdf"
    if head.startswith(b"fLaC"):
        return "audio/flac"
    if head.startswith(b"OggS"):
        return "audio/ogg"
    if head.startswith(b"ID3") or (head[0:1] == b"\xff" and len(head) > 1 and head[1] in _MPEG_AUDIO_SECOND_BYTES):
        return "audio/mpeg"
    if head[0:1] == b"\xff" and len(head) > 1 and head[1] & 0xF6 == 0xF0:
        return "audio/aac"  # ADTS
    if head[4:8] == b"ftyp":
        if head[8:11] in (b"M4A", b"M4B"):
            return "audio/mp4"
        return "video/quicktime" if head[8:10] == b"qt" else "video/mp4"
    # PostScript and ASCII EPS would pass the text check below; we do not parse them.
    if head.startswith(b"%!PS"):
        return None
    if _looks_like_text(data):
        return "text/plain"
    return None


def _looks_like_text(data: bytes) -> bool:
    if b"\x00" in data[:8192]:
        return False
    try:
        data[:65536].decode("utf-8")
    except UnicodeDecodeError as exc:
        # A multi-byte character cut by the 64 KiB window is still text.
        return exc.start > 65536 - 4
    return True


def _family(mime: str) -> str:
    mime = mime.split(";")[0].strip().lower()
    return MODALITY_OF.get(mime, mime.split("/")[0])


def load(event: UploadEvent, settings: Settings) -> LoadedAsset:
    if event.text is not None:
        return _load_text(event.text, event.mime_type, None, settings)
    data, source_uri, transport_mime = _read_bytes(event, settings)
    if not data:
        raise RejectedInput("empty_content: zero bytes")
    if len(data) > settings.max_bytes:
        raise RejectedInput(f"too_large: {len(data)} bytes exceeds {settings.max_bytes}")
    sniffed = sniff(data)
    if sniffed is None:
        raise RejectedInput(f"unsupported_type: content matches no accepted format (starts {data[:8]!r})")
    declared = event.mime_type or transport_mime
    if declared and _family(declared) != _family(sniffed) and not (
            sniffed in AUDIO_OR_VIDEO_CONTAINERS and _family(declared) == "audio"):
        raise RejectedInput(f"mime_mismatch: declared {declared}, content is {sniffed}")
    if sniffed == "text/plain":
        return _load_text(data.decode("utf-8", errors="replace"), None, source_uri, settings, raw=data)
    content, excerpt, extent = _prepare(data, sniffed, settings)
    return LoadedAsset(content, hashlib.sha256(data).hexdigest(), len(data), source_uri,
                       (excerpt or "")[:2000] or None, extent, hashlib.md5(data).hexdigest())


def _prepare(data: bytes, sniffed: str, settings: Settings) -> tuple[Content, str | None, float | None]:
    """Validate, measure and (where needed) convert one sniffed upload."""
    modality = MODALITY_OF[sniffed]
    mime, excerpt, extent = sniffed, None, None
    try:
        if modality == "image":
            _validate_image(data, sniffed, settings)
            if sniffed not in NATIVE_MIME:
                data, mime = media.image_to_png(data, IMAGE_FORMATS[sniffed]), "image/png"
        elif modality == "pdf":
            excerpt, pages = _pdf_text(data)
            extent = float(pages)
        elif modality == "video" and sniffed in AUDIO_OR_VIDEO_CONTAINERS and not media.has_video(data):
            return _prepare_audio(data, None, settings)  # e.g. WebM with Opus only, MP4 with AAC only
        elif modality == "audio":
            return _prepare_audio(data, sniffed, settings)
        elif modality == "video":
            extent = media.probe_video(data, settings.max_image_pixels, settings.max_upload_memory_mb).seconds
            if extent > settings.max_media_seconds:
                raise RejectedInput(f"too_long: video of {extent:.1f} s exceeds {settings.max_media_seconds:g} s")
            if sniffed not in NATIVE_MIME:
                data, mime = media.video_window(data, 0.0, extent), "video/mp4"
    except media.MediaError as exc:
        raise RejectedInput(str(exc)) from exc
    return Content(modality=modality, mime_type=mime, data=data, text=excerpt), excerpt, extent


def _prepare_audio(data: bytes, sniffed: str | None, settings: Settings) -> tuple[Content, None, float]:
    """Audio is decoded in full: that validates it, measures it and, where needed, converts it."""
    samples = media.decode_audio(data, settings.max_media_seconds)  # MediaError: caught by _prepare
    if sniffed not in NATIVE_MIME or len(data) > media.MAX_INLINE_AUDIO_BYTES:
        data, sniffed = media.wav_bytes(samples), "audio/wav"
    return Content(modality="audio", mime_type=sniffed, data=data), None, samples.size / media.AUDIO_RATE


# Zero-width characters draw nothing and str.strip keeps them: text of only these is as empty as blanks.
_BLANK = re.compile(r"[\s\u200b\u200c\u200d\ufeff\u2060]*")


def _load_text(text: str, declared: str | None, source_uri: str | None, settings: Settings, raw: bytes | None = None):
    if declared and _family(declared) != "text":
        raise RejectedInput(f"mime_mismatch: declared {declared}, content is text")
    if len(text) > settings.max_text_chars:
        raise RejectedInput(f"text_too_long: {len(text)} characters exceeds {settings.max_text_chars}")
    if _BLANK.fullmatch(text):
        raise RejectedInput("empty_content: text is blank")
    raw = raw if raw is not None else text.encode("utf-8")
    content = Content(modality="text", mime_type="text/plain", text=text)
    return LoadedAsset(content, hashlib.sha256(raw).hexdigest(), len(raw), source_uri, text[:2000],
                       md5=hashlib.md5(raw).hexdigest())


def _read_bytes(event: UploadEvent, settings: Settings) -> tuple[bytes, str | None, str | None]:
    if event.data_b64 is not None:
        if len(event.data_b64) > settings.max_bytes * 4 // 3 + 4:
            raise RejectedInput(f"too_large: data_b64 exceeds {settings.max_bytes} bytes")
        try:
            return base64.b64decode(event.data_b64, validate=True), None, None
        except (binascii.Error, ValueError) as exc:
            raise RejectedInput(f"invalid_base64: {exc}") from exc
    uri = event.uri or ""
    scheme = uri.split(":", 1)[0].lower()
    try:
        if scheme == "file":
            if "\x00" in unquote(uri):
                raise RejectedInput("invalid_uri: NUL byte in file path")
            return read_file_uri(uri, settings.file_roots, settings.max_bytes), uri, None
        if scheme in ("http", "https"):
            body, content_type = fetch_http(uri, settings)
            return body, uri, content_type
    except FetchRefused as exc:
        raise RejectedInput(str(exc)) from exc
    raise RejectedInput(f"unsupported_uri: scheme {scheme or '(none)'} is not file, http or https")


def _validate_image(data: bytes, mime: str, settings: Settings) -> None:
    from PIL import Image

    Image.MAX_IMAGE_PIXELS = settings.max_image_pixels
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data), formats=[IMAGE_FORMATS[mime]]) as image:
                needed = media.image_memory(image.width, image.height, image.mode)
                if needed > settings.max_upload_memory_mb * media.MIB:
                    raise media.too_large(f"{image.width}x{image.height} {image.mode} image "
                                          f"({image.width * image.height} pixels)", needed,
                                          settings.max_upload_memory_mb)
                image.verify()
            # verify() does not decode pixels; a full load catches truncated data.
            with Image.open(io.BytesIO(data), formats=[IMAGE_FORMATS[mime]]) as image:
                image.load()
    except media.MediaError as exc:
        raise RejectedInput(str(exc)) from exc
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise RejectedInput(f"decompression_bomb: {exc}") from exc
    except Image.UnidentifiedImageError as exc:
        raise RejectedInput(f"corrupt_image: not a readable {IMAGE_FORMATS[mime]} file") from exc
    except (OSError, SyntaxError, ValueError) as exc:
        raise RejectedInput(f"corrupt_image: {exc}") from exc


def _pdf_text(data: bytes) -> tuple[str, int]:
    from pypdf import PdfReader
    from pypdf.errors import PyPdfError

    try:
        with media.time_bound(media.PDF_PARSE_SECONDS, "corrupt_pdf"):
            reader = PdfReader(io.BytesIO(data), strict=True)
            if len(reader.pages) > MAX_PDF_PAGES:
                raise RejectedInput(f"too_many_pages: {len(reader.pages)} pages exceeds {MAX_PDF_PAGES}")
            return "\n".join((page.extract_text() or "") for page in reader.pages), len(reader.pages)
    except (RejectedInput, media.MediaError):
        raise
    except (PyPdfError, ValueError, KeyError, TypeError, AttributeError, IndexError, RecursionError) as exc:
        raise RejectedInput(f"corrupt_pdf: {exc.__class__.__name__}: {exc}") from exc
