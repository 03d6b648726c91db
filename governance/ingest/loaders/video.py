"""Video: probed (streams, length, frame memory); containers other than MP4 and QuickTime become MP4.

An MP4 or WebM without a video stream (AAC-only MP4, Opus-only WebM) is audio, and goes to the
audio loader.
"""
from __future__ import annotations

from governance.ingest import media
from governance.ingest.content import Content
from governance.ingest.loaders import Loaded, audio
from governance.ingest.rejection import RejectedInput
from governance.ingest.sniffing import AUDIO_OR_VIDEO_CONTAINERS
from governance.platform.config import Settings

NATIVE = frozenset({"video/mp4", "video/quicktime"})


def load(data: bytes, sniffed: str, settings: Settings) -> Loaded:
    try:
        if sniffed in AUDIO_OR_VIDEO_CONTAINERS and not media.has_video(data):
            return audio.load(data, sniffed, settings)
        seconds = media.probe_video(data, settings.max_image_pixels, settings.max_upload_memory_mb).seconds
        if seconds > settings.max_media_seconds:
            raise RejectedInput(f"too_long: video of {seconds:.1f} s exceeds {settings.max_media_seconds:g} s")
        mime = sniffed
        if sniffed not in NATIVE:
            data, mime = media.video_window(data, 0.0, seconds), "video/mp4"
    except media.MediaError as exc:
        raise RejectedInput(str(exc)) from exc
    return Loaded(Content(modality="video", mime_type=mime, data=data), extent=seconds)
