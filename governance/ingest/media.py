"""Decoding, converting and cutting media with PyAV (bundled ffmpeg) and pypdf.

Every function takes bytes and returns bytes or plain values, and turns any decoder failure into
`MediaError` whose message starts with the reject reason (corrupt_audio, corrupt_video,
corrupt_pdf, too_long). Canonical forms, chosen because Gemini takes them inline:
- images: PNG (first frame of animations);
- audio: 16 kHz mono 16-bit WAV, small enough that 180 s (5.8 MB) fits one request;
- video: H.264 MP4 without audio (Gemini ignores a video's audio track), at most `VIDEO_MAX_FPS`
  frames per second and `VIDEO_MAX_SIDE` pixels on the long side, which bounds the cost of
  re-encoding and loses nothing Gemini looks at (it samples video at about 1 frame per second).
"""
from __future__ import annotations

import io
import math
import signal
import threading
import wave
from contextlib import contextmanager
from dataclasses import dataclass
from fractions import Fraction

import numpy as np

AUDIO_RATE = 16_000
VIDEO_MAX_FPS = 10
VIDEO_MAX_SIDE = 1280
# Google takes at most 20 MB per request; a native WAV or MP3 larger than this is re-encoded as
# canonical WAV (180 s of it is 5.8 MB) rather than sent as uploaded.
MAX_INLINE_AUDIO_BYTES = 8 * 1024 * 1024
PDF_PARSE_SECONDS = 10.0  # pypdf is pure Python: a crafted file can keep it busy indefinitely


class MediaError(Exception):
    """Undecodable or over-limit media; the message is the reject reason."""


class NoVideoStream(MediaError):
    """A video container that holds no video: it may still hold audio (WebM, MP4 with AAC only)."""


def _av():
    import av

    av.logging.set_level(av.logging.PANIC)  # decoder chatter on corrupt input is not our log
    return av


def _open(data: bytes, kind: str):
    av = _av()
    try:
        return av.open(io.BytesIO(data), mode="r")
    except (av.FFmpegError, ValueError, OSError) as exc:
        raise MediaError(f"corrupt_{kind}: {exc.__class__.__name__}: {exc}") from exc


class _Expired(BaseException):
    pass


@contextmanager
def time_bound(seconds: float, reason: str):
    """Raise MediaError(reason) if the block runs longer than `seconds` of wall time.

    Uses SIGALRM, so it bounds only code on the main thread (where prefork worker children run
    tasks) and only when no other interval timer is set; elsewhere the block runs unbounded.
    """
    usable = threading.current_thread() is threading.main_thread() and signal.getitimer(signal.ITIMER_REAL) == (0.0, 0.0)
    if not usable:
        yield
        return

    def expired(signum, frame):
        raise _Expired  # a BaseException: parsers' broad `except Exception` cannot swallow it

    previous = signal.signal(signal.SIGALRM, expired)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    except _Expired:
        raise MediaError(f"{reason}: took longer than {seconds:g} s") from None
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


# --- memory -------------------------------------------------------------------------------------
# A compressed upload says little about what decoding it costs: 248 KB of H.264 or a PNG of one
# colour can decode to gigabytes. Limits are therefore sized from the pixels a decoder will hold.
MIB = 1024 * 1024
# Pillow keeps every multi-band picture (RGB included) at 4 bytes a pixel; single-band at their width.
_PILLOW_BYTES_PER_PIXEL = {"1": 1, "L": 1, "P": 1, "I;16": 2, "I;16L": 2, "I;16B": 2, "I;16N": 2}
# On top of the decoded picture, the image features make RGBA working copies (the conversion and
# Pillow's premultiplied-alpha reduction) before shrinking it: measured 8 bytes a pixel on a
# 40 Mpx RGBA PNG (tests/unit/test_upload_memory.py).
IMAGE_WORKING_BYTES_PER_PIXEL = 8
# An H.264/HEVC decoder may keep 16 reference frames, plus the frame it decodes and the one it outputs.
VIDEO_DECODER_FRAMES = 18
# Frames are converted at most this large for features: they look at 256 px, video windows at 1280.
FRAME_MAX_SIDE = 1280


def image_memory(width: int, height: int, mode: str) -> int:
    """Bytes that validating and embedding a width x height picture of Pillow `mode` may hold at once."""
    return width * height * (_PILLOW_BYTES_PER_PIXEL.get(mode, 4) + IMAGE_WORKING_BYTES_PER_PIXEL)


def video_memory(width: int, height: int, pix_fmt: str | None) -> int:
    """Bytes a decoder's frames of this size and pixel format may hold at once (worst case)."""
    try:
        planes = _av().VideoFormat(pix_fmt or "yuv444p16le", width, height).components
    except ValueError:  # a format PyAV does not know: assume the widest common one
        planes = _av().VideoFormat("yuv444p16le", width, height).components
    return VIDEO_DECODER_FRAMES * sum((c.bits + 7) // 8 * c.width * c.height for c in planes)


def too_large(what: str, needed: int, budget_mb: int) -> MediaError:
    return MediaError(f"too_large: {what} needs about {needed // MIB} MB to decode, over the {budget_mb} MB"
                      " upload memory budget (GOVERNANCE_MAX_UPLOAD_MEMORY_MB)")


# --- images -------------------------------------------------------------------------------------

def image_to_png(data: bytes, pillow_format: str) -> bytes:
    """Re-encode an already validated image (Pillow's bomb limit applies) as PNG, first frame only."""
    from PIL import Image

    with Image.open(io.BytesIO(data), formats=[pillow_format]) as image:
        image.seek(0)
        mode = "RGBA" if image.mode in ("RGBA", "LA", "PA") or "transparency" in image.info else "RGB"
        out = io.BytesIO()
        image.convert(mode).save(out, format="PNG")
    return out.getvalue()


# --- audio --------------------------------------------------------------------------------------

def decode_audio(data: bytes, max_seconds: float, rate: int = AUDIO_RATE) -> np.ndarray:
    """All samples as mono int16 at `rate`; stops with too_long past `max_seconds` (a bound on
    memory: silence compresses so well that a small file can decode to hours)."""
    av = _av()
    limit = int(max_seconds * rate)
    chunks, total = [], 0
    with _open(data, "audio") as container:
        stream = next((s for s in container.streams if s.type == "audio"), None)
        if stream is None:
            raise MediaError("corrupt_audio: no audio stream")
        resampler = av.AudioResampler(format="s16", layout="mono", rate=rate)
        try:
            for frame in container.decode(stream):
                for out in resampler.resample(frame):
                    chunks.append(out.to_ndarray().reshape(-1))
                    total += chunks[-1].size
                if total > limit:
                    raise MediaError(f"too_long: audio exceeds {max_seconds:g} s")
            for out in resampler.resample(None):
                chunks.append(out.to_ndarray().reshape(-1))
        except (av.FFmpegError, ValueError) as exc:
            raise MediaError(f"corrupt_audio: {exc.__class__.__name__}: {exc}") from exc
    samples = np.concatenate(chunks) if chunks else np.zeros(0, dtype=np.int16)
    if samples.size == 0:
        raise MediaError("corrupt_audio: no decodable samples")
    return samples.astype(np.int16, copy=False)


def wav_bytes(samples: np.ndarray, rate: int = AUDIO_RATE) -> bytes:
    out = io.BytesIO()
    with wave.open(out, "wb") as writer:
        writer.setnchannels(1)
        writer.setsampwidth(2)
        writer.setframerate(rate)
        writer.writeframes(np.asarray(samples, dtype="<i2").tobytes())
    return out.getvalue()


def audio_windows(data: bytes, spans: list[tuple[float, float]], max_seconds: float) -> list[bytes]:
    """One canonical WAV per (start_s, end_s) span, cut at exact sample positions."""
    samples = decode_audio(data, max_seconds)
    return [wav_bytes(samples[int(round(a * AUDIO_RATE)):int(round(b * AUDIO_RATE))]) for a, b in spans]


# --- video --------------------------------------------------------------------------------------

def has_video(data: bytes) -> bool:
    """Whether the container holds a video stream (False also for unreadable containers, whose
    decoding as audio then fails with its own reason)."""
    try:
        with _open(data, "video") as container:
            return bool(container.streams.video)
    except MediaError:
        return True  # let the video path name the failure: corrupt_video


@dataclass(frozen=True)
class VideoInfo:
    seconds: float
    width: int
    height: int


def probe_video(data: bytes, max_pixels: int, budget_mb: int) -> VideoInfo:
    """Duration from the packets' own timestamps (container headers can lie), after checking that
    the declared frames fit the memory budget before any is decoded, that the first frame decodes,
    and that the frame size is within the image pixel limit."""
    av = _av()
    with _open(data, "video") as container:
        if not container.streams.video:
            raise NoVideoStream("corrupt_video: no video stream")
        stream = container.streams.video[0]
        _check_frames(stream.codec_context.width, stream.codec_context.height, stream.codec_context.pix_fmt,
                      budget_mb)
        try:
            first = next(container.decode(stream), None)
            if first is None:
                raise MediaError("corrupt_video: no decodable frame")
            # The stream may change size after its header: the decoded frame is checked too.
            _check_frames(first.width, first.height, first.format.name, budget_mb)
            if first.width * first.height > max_pixels:
                raise MediaError(f"decompression_bomb: {first.width}x{first.height} frames exceed"
                                 f" {max_pixels} pixels")
            container.seek(0, stream=stream)
            low, high = math.inf, -math.inf
            for packet in container.demux(stream):
                if packet.pts is None:
                    continue
                low = min(low, packet.pts)
                high = max(high, packet.pts + (packet.duration or 0))
        except (av.FFmpegError, ValueError, StopIteration) as exc:
            raise MediaError(f"corrupt_video: {exc.__class__.__name__}: {exc}") from exc
        if high <= low:
            raise MediaError("corrupt_video: no timestamps")
        return VideoInfo(float((high - low) * stream.time_base), first.width, first.height)


def _check_frames(width: int, height: int, pix_fmt: str | None, budget_mb: int) -> None:
    needed = video_memory(width, height, pix_fmt)
    if needed > budget_mb * MIB:
        raise too_large(f"{width}x{height} video ({pix_fmt}, {width * height} pixels a frame)", needed, budget_mb)


def _scaled(width: int, height: int, max_side: int = VIDEO_MAX_SIDE) -> tuple[int, int]:
    scale = min(1.0, max_side / max(width, height))
    # H.264 with yuv420p needs even dimensions.
    return max(2, int(width * scale) // 2 * 2), max(2, int(height * scale) // 2 * 2)


def video_window(data: bytes, start_s: float, end_s: float) -> bytes:
    """Re-encode the frames shown in [start_s, end_s) as canonical MP4.

    Frames are re-timed at a constant rate and their number is capped at
    (end_s - start_s) * rate, so the window's duration never exceeds its span, whatever the
    source's timestamps or keyframes.
    """
    av = _av()
    with _open(data, "video") as source:
        if not source.streams.video:
            raise MediaError("corrupt_video: no video stream")
        stream = source.streams.video[0]
        rate = max(1, min(VIDEO_MAX_FPS, round(float(stream.average_rate or VIDEO_MAX_FPS))))
        budget = max(1, int((end_s - start_s) * rate + 1e-6))
        out = io.BytesIO()
        written = 0
        try:
            with av.open(out, mode="w", format="mp4") as target:
                encoder = target.add_stream("libx264", rate=rate)
                encoder.width, encoder.height = _scaled(stream.codec_context.width, stream.codec_context.height)
                encoder.pix_fmt = "yuv420p"
                encoder.options = {"preset": "veryfast", "crf": "30"}
                if start_s > 0:
                    source.seek(int(start_s / stream.time_base), stream=stream, backward=True)
                next_time = start_s
                for frame in source.decode(stream):
                    at = frame.time
                    if at is None or at < next_time - 1e-6:
                        continue  # before the span, or dropped to keep at most `rate` fps
                    if at >= end_s or written >= budget:
                        break
                    picture = frame.reformat(width=encoder.width, height=encoder.height, format="yuv420p")
                    picture.pts, picture.time_base = written, Fraction(1, rate)
                    for packet in encoder.encode(picture):
                        target.mux(packet)
                    written += 1
                    next_time = start_s + written / rate
                for packet in encoder.encode(None):
                    target.mux(packet)
        except (av.FFmpegError, ValueError) as exc:
            raise MediaError(f"corrupt_video: {exc.__class__.__name__}: {exc}") from exc
    if not written:
        raise MediaError(f"corrupt_video: no frames between {start_s:g} s and {end_s:g} s")
    return out.getvalue()


def sample_frames(data: bytes, count: int, seconds: float) -> list:
    """Up to `count` frames (PIL images) at evenly spaced times over `seconds`, in time order.

    Each is found by seeking to the keyframe before its time and decoding forward, so the cost
    is `count` short decodes, not the whole video.
    """
    av = _av()
    images = []
    with _open(data, "video") as container:
        if not container.streams.video:
            raise MediaError("corrupt_video: no video stream")
        stream = container.streams.video[0]
        try:
            for i in range(count):
                target = (i + 0.5) * seconds / count
                container.seek(int(target / stream.time_base), stream=stream, backward=True)
                frame = None
                for frame in container.decode(stream):
                    if frame.time is None or frame.time + 1e-6 >= target:
                        break
                if frame is not None:
                    # Converted straight to a small picture: a full-size RGB copy of each frame is
                    # what made a two-frame 5792 px video cost gigabytes.
                    width, height = _scaled(frame.width, frame.height, FRAME_MAX_SIDE)
                    images.append(frame.to_image(width=width, height=height))
        except (av.FFmpegError, ValueError) as exc:
            raise MediaError(f"corrupt_video: {exc.__class__.__name__}: {exc}") from exc
    if not images:
        raise MediaError("corrupt_video: no decodable frame")
    return images


# --- PDF ----------------------------------------------------------------------------------------

def pdf_window(data: bytes, first: int, last: int) -> tuple[bytes, str]:
    """Pages [first, last) as their own PDF, with their extracted text."""
    from pypdf import PdfReader, PdfWriter
    from pypdf.errors import PyPdfError

    try:
        with time_bound(PDF_PARSE_SECONDS, "corrupt_pdf"):
            reader = PdfReader(io.BytesIO(data), strict=True)
            writer = PdfWriter()
            pages = reader.pages[first:last]
            for page in pages:
                writer.add_page(page)
            out = io.BytesIO()
            writer.write(out)
            return out.getvalue(), "\n".join((page.extract_text() or "") for page in pages)
    except (PyPdfError, ValueError, KeyError, TypeError, AttributeError, IndexError, RecursionError) as exc:
        raise MediaError(f"corrupt_pdf: {exc.__class__.__name__}: {exc}") from exc
