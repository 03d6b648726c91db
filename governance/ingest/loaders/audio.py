"""Audio: decoded in full, which validates it, measures it and, where needed, converts it to WAV."""
from __future__ import annotations

from governance.ingest import media
from governance.ingest.content import Content
from governance.ingest.loaders import Loaded
from governance.ingest.rejection import RejectedInput
from governance.platform.config import Settings

NATIVE = frozenset({"audio/wav", "audio/mpeg"})


def load(data: bytes, sniffed: str, settings: Settings) -> Loaded:
    try:
        samples = media.decode_audio(data, settings.max_media_seconds)
    except media.MediaError as exc:
        raise RejectedInput(str(exc)) from exc
    mime = sniffed
    if sniffed not in NATIVE or len(data) > media.MAX_INLINE_AUDIO_BYTES:
        data, mime = media.wav_bytes(samples), "audio/wav"
    return Loaded(Content(modality="audio", mime_type=mime, data=data), extent=samples.size / media.AUDIO_RATE)
