"""A PDF's first page to PNG: bounded in size, and None for whatever cannot be drawn."""
from __future__ import annotations

import io

import pytest
from PIL import Image

from governance.ingest.pdf_preview import MAX_HEIGHT, MAX_WIDTH, first_page_png, scale_for
from tests.media_samples import text_pdf


def size(png: bytes) -> tuple[int, int]:
    return Image.open(io.BytesIO(png)).size


def test_the_first_page_is_drawn_to_fit_the_bounds():
    png = first_page_png(text_pdf("INVOICE overdue: pay now", width=300, height=400))
    assert png is not None and png.startswith(b"\x89PNG")
    assert size(png) == (900, 1200)  # 3x, the upscaling cap
    # A page claiming the largest size a PDF allows is still drawn at most MAX_WIDTH x MAX_HEIGHT.
    width, height = size(first_page_png(text_pdf("huge", width=14400, height=14400)))
    assert width <= MAX_WIDTH and height <= MAX_HEIGHT and width == height


def test_what_cannot_be_drawn_gives_none():
    assert first_page_png(b"%PDF-1.4\nnot a pdf at all\n%%EOF") is None
    assert first_page_png(text_pdf("a strip", width=14400, height=3)) is None  # under 8 px high
    assert first_page_png(b"") is None


def test_scale_for_refuses_pages_without_area():
    with pytest.raises(ValueError):
        scale_for(0, 100)
    assert scale_for(900, 1400) == 1.0
