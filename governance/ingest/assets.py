"""Turning an upload event into validated content: read it, sniff it once, hand it to one loader.

The type comes from the magic bytes (`governance.ingest.sniffing`), never from the declared MIME
type alone; a declared type that disagrees with the content is a reject. The sniffed modality picks
one loader (`governance.ingest.loaders`), so corrupt media is a reject here, before any embedding
call. `sha256` is always that of the original bytes: the content-hash cache keys on what was uploaded.
"""
from __future__ import annotations

import base64
import binascii
import hashlib
from dataclasses import dataclass
from urllib.parse import unquote

from governance.ingest import loaders
from governance.ingest.content import Content
from governance.ingest.events import UploadEvent
from governance.ingest.loaders import text as text_loader
from governance.ingest.rejection import RejectedInput
from governance.ingest.safe_fetch import FetchRefused, fetch_http, read_file_uri
from governance.ingest.sniffing import AUDIO_OR_VIDEO_CONTAINERS, MODALITY_OF, family, sniff
from governance.platform.config import Settings

__all__ = ["LoadedAsset", "RejectedInput", "load", "sniff"]
EXCERPT_CHARS = 2000


@dataclass(frozen=True)
class LoadedAsset:
    content: Content
    sha256: str
    size_bytes: int
    source_uri: str | None
    text_excerpt: str | None
    extent: float | None = None  # pdf: pages; audio, video: seconds (what windows are cut along)
    md5: str | None = None  # of the original bytes, as sha256: what MD5 hash lists are matched on


def load(event: UploadEvent, settings: Settings) -> LoadedAsset:
    if event.text is not None:
        raw = event.text.encode("utf-8")
        return _asset(text_loader.load(event.text, event.mime_type, settings), raw, None)
    data, source_uri, transport_mime = _read_bytes(event, settings)
    if not data:
        raise RejectedInput("empty_content: zero bytes")
    if len(data) > settings.max_bytes:
        raise RejectedInput(f"too_large: {len(data)} bytes exceeds {settings.max_bytes}")
    sniffed = sniff(data)
    if sniffed is None:
        raise RejectedInput(f"unsupported_type: content matches no accepted format (starts {data[:8]!r})")
    declared = event.mime_type or transport_mime
    if declared and family(declared) != family(sniffed) and not (
            sniffed in AUDIO_OR_VIDEO_CONTAINERS and family(declared) == "audio"):
        raise RejectedInput(f"mime_mismatch: declared {declared}, content is {sniffed}")
    modality = MODALITY_OF[sniffed]
    if modality == "text":
        loaded = text_loader.load(data.decode("utf-8", errors="replace"), None, settings)
    else:
        loaded = loaders.loader_for(modality)(data, sniffed, settings)
    return _asset(loaded, data, source_uri)


def _asset(loaded: loaders.Loaded, raw: bytes, source_uri: str | None) -> LoadedAsset:
    return LoadedAsset(loaded.content, hashlib.sha256(raw).hexdigest(), len(raw), source_uri,
                       (loaded.excerpt or "")[:EXCERPT_CHARS] or None, loaded.extent, hashlib.md5(raw).hexdigest())


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
