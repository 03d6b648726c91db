"""What an upload is, from its magic bytes; the declared MIME type alone never decides."""
from __future__ import annotations

MODALITY_OF = {
    "image/png": "image", "image/jpeg": "image", "image/gif": "image", "image/webp": "image", "image/bmp": "image",
    "application/pdf": "pdf",
    "audio/wav": "audio", "audio/mpeg": "audio", "audio/flac": "audio", "audio/ogg": "audio",
    "audio/aac": "audio", "audio/mp4": "audio",
    "video/mp4": "video", "video/quicktime": "video", "video/webm": "video", "video/x-msvideo": "video",
    "text/plain": "text",
}
# Containers whose magic bytes do not tell audio from video; the streams inside decide.
AUDIO_OR_VIDEO_CONTAINERS = frozenset({"video/mp4", "video/webm"})
# MPEG audio frame sync: 11 set bits, then version (not the reserved 01) and layer (not 00, which
# is AAC's ADTS): MPEG-1, -2 and -2.5 at layers I-III, with or without CRC.
_MPEG_AUDIO_SECOND_BYTES = frozenset(b for b in range(0xE0, 0x100) if (b >> 3) & 3 != 1 and (b >> 1) & 3 != 0)


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


def family(mime: str) -> str:
    """The modality a MIME type names (`image/svg+xml` → `image`), for comparing declared and sniffed types."""
    mime = mime.split(";")[0].strip().lower()
    return MODALITY_OF.get(mime, mime.split("/")[0])
