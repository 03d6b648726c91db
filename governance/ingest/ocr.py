"""Text inside images: RapidOCR (PP-OCRv4 detection and recognition, ONNX models from its wheel).

One engine per process, loaded on first use, run with the embedder's thread count. Each call is
bounded in time (`media.time_bound`, as PDF parsing is) and in memory: the picture is shrunk to
`MAX_SIDE` before the detector sees it, and the detector itself works at `DETECT_SIDE` on the long
side, so a 40-megapixel upload costs what a small one does. Reading text is evidence, never a
gate: a picture the engine cannot read, or reads too slowly, is decided by its pixels alone.
"""
from __future__ import annotations

import io
import logging
import threading
from dataclasses import dataclass

import numpy as np

from governance.ingest import media

MAX_SIDE = 2000
# The detector's working size. Its default scales the SHORT side up to 736 px, which made a
# 256x32 banner a 5888x736 input (16 s here); scaling the long side down to 960 read the same
# text in the development corpus at 1/20 of the time.
DETECT_SIDE = 960
# Fewer letters and digits than this (a stray "B", "DVD" on a clipart disc, "15.0m" on a map) say
# nothing a text bank can vote on, and such fragments are most of what OCR finds in photos.
MIN_TEXT_CHARS = 8
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ImageText:
    """What OCR read: the confident lines joined (None when there are none), and their confidence."""

    text: str | None
    confidence: float | None  # mean line score, weighted by characters
    error: str | None = None  # why reading stopped (ocr_timeout, ocr_failed), when it did


_engine = None
_engine_lock = threading.Lock()


def _ocr_engine(threads: int | None):
    global _engine
    with _engine_lock:
        if _engine is None:
            from rapidocr_onnxruntime import RapidOCR

            n = threads or -1
            _engine = RapidOCR(intra_op_num_threads=n, inter_op_num_threads=n, det_limit_type="max",
                               det_limit_side_len=DETECT_SIDE, print_verbose=False)
        return _engine


def available() -> bool:
    try:
        import rapidocr_onnxruntime  # noqa: F401
    except ImportError:
        return False
    return True


def read_text(data: bytes, *, min_confidence: float, seconds: float, threads: int | None = 1) -> ImageText:
    """The text in an image (PNG or JPEG bytes, as the image loader hands them on)."""
    engine = _ocr_engine(threads)
    try:
        pixels = _bgr_pixels(data)
        with media.time_bound(seconds, "ocr_timeout"):
            with _engine_lock:
                found, _ = engine(pixels)
    except media.MediaError as exc:
        return ImageText(None, None, error=str(exc))
    except Exception as exc:  # noqa: BLE001 - onnxruntime and OpenCV raise many types; none is the upload's fault
        log.warning("OCR failed: %s: %s", exc.__class__.__name__, exc)
        return ImageText(None, None, error=f"ocr_failed: {exc.__class__.__name__}")
    return confident_text([(str(text), float(score)) for _, text, score in (found or [])], min_confidence)


def confident_text(lines: list[tuple[str, float]], min_confidence: float) -> ImageText:
    """The lines at or above `min_confidence`, joined in reading order; None below MIN_TEXT_CHARS."""
    kept = [(text.strip(), score) for text, score in lines if score >= min_confidence and text.strip()]
    chars = sum(sum(c.isalnum() for c in text) for text, _ in kept)
    if chars < MIN_TEXT_CHARS:
        return ImageText(None, None)
    weight = sum(len(text) for text, _ in kept)
    confidence = sum(len(text) * score for text, score in kept) / weight
    return ImageText("\n".join(text for text, _ in kept), round(confidence, 4))


def _bgr_pixels(data: bytes) -> np.ndarray:
    """The picture as the engine takes it (BGR, transparency onto white), at most MAX_SIDE a side."""
    from PIL import Image

    with Image.open(io.BytesIO(data)) as image:
        image.draft("RGB", (MAX_SIDE, MAX_SIDE))  # JPEG: decode at a reduced scale when it is large
        image.thumbnail((MAX_SIDE, MAX_SIDE))
        rgba = image.convert("RGBA")
    white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
    rgb = np.asarray(Image.alpha_composite(white, rgba).convert("RGB"))
    return np.ascontiguousarray(rgb[:, :, ::-1])
