"""PDF: parsed strictly within a time bound; its text is the excerpt, its page count the extent."""
from __future__ import annotations

import io

from governance.ingest import media
from governance.ingest.content import Content
from governance.ingest.loaders import Loaded
from governance.ingest.rejection import RejectedInput
from governance.platform.config import Settings

MAX_PAGES = 50


def load(data: bytes, sniffed: str, settings: Settings) -> Loaded:
    text, pages = _text_and_pages(data)
    return Loaded(Content(modality="pdf", mime_type=sniffed, data=data, text=text), excerpt=text, extent=float(pages))


def _text_and_pages(data: bytes) -> tuple[str, int]:
    from pypdf import PdfReader
    from pypdf.errors import PyPdfError

    try:
        with media.time_bound(media.PDF_PARSE_SECONDS, "corrupt_pdf"):
            reader = PdfReader(io.BytesIO(data), strict=True)
            if len(reader.pages) > MAX_PAGES:
                raise RejectedInput(f"too_many_pages: {len(reader.pages)} pages exceeds {MAX_PAGES}")
            return "\n".join((page.extract_text() or "") for page in reader.pages), len(reader.pages)
    except media.MediaError as exc:
        raise RejectedInput(str(exc)) from exc
    except RejectedInput:
        raise
    except (PyPdfError, ValueError, KeyError, TypeError, AttributeError, IndexError, RecursionError) as exc:
        raise RejectedInput(f"corrupt_pdf: {exc.__class__.__name__}: {exc}") from exc
