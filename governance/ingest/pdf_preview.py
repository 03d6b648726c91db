"""A PDF's first page as a PNG, for the review console (which never serves a PDF inline).

PDFium (the `pypdfium2` wheel, Apache-2.0 / BSD-3-Clause, PDFium itself BSD-3-Clause) renders in a
child process, because a hostile PDF can keep a renderer busy or make it allocate without end, and
C code in our own process can be neither interrupted nor capped: the child gets a wall-clock
deadline, a CPU-time limit and an address-space limit, and the page is drawn at most MAX_WIDTH x
MAX_HEIGHT pixels whatever size it claims. Anything that goes wrong is one answer: None.

Run as `python -m governance.ingest.pdf_preview` it reads a PDF on stdin and writes the PNG on stdout.
"""
from __future__ import annotations

import io
import resource
import subprocess
import sys
import threading

MAX_WIDTH = 900
MAX_HEIGHT = 1400
MIN_SIDE = 8
MAX_PDF_BYTES = 50 * 1024 * 1024
RENDER_SECONDS = 10.0
RENDER_MEMORY_BYTES = 1024 * 1024 * 1024
# Renders at once per process: a reviewer scrolling a grid of PDFs must not fork dozens of renderers.
_RENDERERS = threading.BoundedSemaphore(2)


def first_page_png(data: bytes, timeout_s: float = RENDER_SECONDS) -> bytes | None:
    """The first page as PNG bytes, or None when it cannot be rendered in time and memory."""
    if not data or len(data) > MAX_PDF_BYTES:
        return None
    if not _RENDERERS.acquire(timeout=timeout_s):
        return None
    try:
        done = subprocess.run([sys.executable, "-m", __name__], input=data, capture_output=True,
                              timeout=timeout_s, check=False)
    except (subprocess.TimeoutExpired, OSError):
        return None
    finally:
        _RENDERERS.release()
    return done.stdout if done.returncode == 0 and done.stdout.startswith(b"\x89PNG") else None


def _limit_self() -> None:
    """In the child, before PDFium is loaded (a preexec_fn is unsafe in the threaded server)."""
    cpu = int(RENDER_SECONDS) + 1
    resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu))
    resource.setrlimit(resource.RLIMIT_AS, (RENDER_MEMORY_BYTES, RENDER_MEMORY_BYTES))


def scale_for(width_pt: float, height_pt: float) -> float:
    """Points to pixels so the page fits MAX_WIDTH x MAX_HEIGHT (and never upscales past 3x). A page
    that would come out under MIN_SIDE pixels on a side shows a reviewer nothing: ValueError."""
    if not (width_pt > 0 and height_pt > 0):
        raise ValueError("a page has no area")
    scale = min(MAX_WIDTH / width_pt, MAX_HEIGHT / height_pt, 3.0)
    if min(width_pt, height_pt) * scale < MIN_SIDE:
        raise ValueError(f"a {width_pt:g} x {height_pt:g} pt page is too thin to draw")
    return scale


def render(data: bytes) -> bytes:
    """In the child: PDFium draws page one; PIL encodes it."""
    import pypdfium2

    document = pypdfium2.PdfDocument(data)
    try:
        if len(document) < 1:
            raise ValueError("no pages")
        page = document[0]
        width, height = page.get_size()
        image = page.render(scale=scale_for(width, height)).to_pil()
        out = io.BytesIO()
        image.convert("RGB").save(out, "PNG")
        return out.getvalue()
    finally:
        document.close()


if __name__ == "__main__":
    _limit_self()
    try:
        sys.stdout.buffer.write(render(sys.stdin.buffer.read()))
    except Exception as exc:  # noqa: BLE001 (any failure is "could not render"; the parent sees the code)
        print(f"could not render: {exc.__class__.__name__}: {exc}", file=sys.stderr)
        sys.exit(1)
