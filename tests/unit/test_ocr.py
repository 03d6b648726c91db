"""OCR's pieces without a database: which lines count as text, the picture handed to the engine,
when OCR runs, its settings, and that the OpenCV installed is the headless build."""
import dataclasses
import importlib.metadata
import io

import numpy as np
import pytest
from PIL import Image

from governance.embedding.backends.hashing import HashingEmbedder
from governance.ingest import ocr
from governance.moderation.image_text import ocr_enabled
from governance.moderation.pipeline import Context
from governance.platform.config import Settings


def test_only_confident_lines_of_enough_characters_count_as_text():
    lines = [("Claim your bonus", 0.99), ("Y.", 0.55), ("now", 0.95), ("  ", 0.99)]
    read = ocr.confident_text(lines, 0.9)
    assert read.text == "Claim your bonus\nnow"
    assert read.confidence == pytest.approx((16 * 0.99 + 3 * 0.95) / 19, abs=1e-4)  # weighted by characters
    assert ocr.confident_text([("DVD", 0.97), ("15.0m", 0.96)], 0.9) == ocr.ImageText(None, None)  # 7 alnum
    assert ocr.confident_text([("Claim your bonus", 0.85)], 0.9) == ocr.ImageText(None, None)
    assert ocr.confident_text([], 0.9) == ocr.ImageText(None, None)


def test_the_engine_gets_bgr_pixels_on_white_at_most_max_side_a_side():
    image = Image.new("RGBA", (4000, 100), (255, 0, 0, 255))
    image.paste((0, 0, 0, 0), (0, 0, 2000, 100))  # the left half transparent
    out = io.BytesIO()
    image.save(out, "PNG")
    pixels = ocr._bgr_pixels(out.getvalue())
    assert pixels.shape == (50, ocr.MAX_SIDE, 3) and pixels.dtype == np.uint8
    assert pixels[25, 10].tolist() == [255, 255, 255]  # transparency onto white
    assert pixels[25, -10].tolist() == [0, 0, 255]  # red, in BGR order


def test_an_unreadable_picture_is_no_text_with_its_error():
    read = ocr.read_text(b"not an image", min_confidence=0.9, seconds=10)
    assert (read.text, read.confidence) == (None, None) and read.error.startswith("ocr_failed: ")


def test_auto_reads_images_for_offline_embedders_only(monkeypatch):
    monkeypatch.delenv("GOVERNANCE_OCR", raising=False)
    settings = Settings.from_env()
    offline = HashingEmbedder(64)

    class Gemini:
        reads_text_in_images = True

    assert settings.ocr == "auto"
    assert ocr_enabled(Context(settings, offline), offline) is True
    assert ocr_enabled(Context(settings, offline), Gemini()) is False
    on, off = (dataclasses.replace(settings, ocr=mode) for mode in ("on", "off"))
    assert ocr_enabled(Context(on, offline), Gemini()) is True
    assert ocr_enabled(Context(off, offline), offline) is False


def test_ocr_settings_are_read_and_checked(monkeypatch):
    monkeypatch.setenv("GOVERNANCE_OCR", "ON")
    monkeypatch.setenv("GOVERNANCE_OCR_MIN_CONFIDENCE", "0.8")
    monkeypatch.setenv("GOVERNANCE_OCR_SECONDS", "2.5")
    settings = Settings.from_env()
    assert (settings.ocr, settings.ocr_min_confidence, settings.ocr_seconds) == ("on", 0.8, 2.5)
    monkeypatch.setenv("GOVERNANCE_OCR", "sometimes")
    with pytest.raises(ValueError, match="GOVERNANCE_OCR must be one of auto, on, off"):
        Settings.from_env()


def test_the_installed_opencv_is_the_headless_build():
    # make install puts rapidocr-onnxruntime in with --no-deps: it declares the GUI opencv-python.
    installed = {d.metadata["Name"].lower() for d in importlib.metadata.distributions()}
    assert "opencv-python-headless" in installed and "opencv-python" not in installed
    assert ocr.available()
