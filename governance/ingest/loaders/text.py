"""Text: length and blankness checks; text is embedded as it came."""
from __future__ import annotations

import re

from governance.ingest.content import Content
from governance.ingest.loaders import Loaded
from governance.ingest.rejection import RejectedInput
from governance.ingest.sniffing import family
from governance.platform.config import Settings

# Zero-width characters draw nothing and str.strip keeps them: text of only these is as empty as blanks.
_BLANK = re.compile(r"[\s\u200b\u200c\u200d\ufeff\u2060]*")


def load(text: str, declared: str | None, settings: Settings) -> Loaded:
    if declared and family(declared) != "text":
        raise RejectedInput(f"mime_mismatch: declared {declared}, content is text")
    if len(text) > settings.max_text_chars:
        raise RejectedInput(f"text_too_long: {len(text)} characters exceeds {settings.max_text_chars}")
    if _BLANK.fullmatch(text):
        raise RejectedInput("empty_content: text is blank")
    return Loaded(Content(modality="text", mime_type="text/plain", text=text), excerpt=text)
