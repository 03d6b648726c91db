import base64
import io
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from PIL import Image

from governance.assets import RejectedInput, load, sniff
from governance.config import Settings
from governance.events import UploadEvent
from governance.safe_fetch import FetchRefused, fetch_http


def png_bytes(size=(16, 16), colour=(200, 10, 10)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, colour).save(buffer, format="PNG")
    return buffer.getvalue()


@pytest.fixture
def roots(tmp_path, monkeypatch):
    monkeypatch.setenv("GOVERNANCE_FILE_ROOTS", str(tmp_path))
    monkeypatch.setenv("GOVERNANCE_MAX_BYTES", "100000")
    monkeypatch.setenv("GOVERNANCE_MAX_TEXT_CHARS", "1000")
    return tmp_path


def event(**fields):
    return UploadEvent.parse({"asset_id": "a", **fields})


def reject_reason(ev) -> str:
    with pytest.raises(RejectedInput) as info:
        load(ev, Settings.from_env())
    return str(info.value)


def test_sniffs_by_magic_bytes():
    assert sniff(png_bytes()) == "image/png"
    assert sniff(b"%PDF-1.7 ...") == "application/pdf"
    assert sniff(b"RIFF\x00\x00\x00\x00WAVEfmt ") == "audio/wav"
    assert sniff("plain words, ünïcode".encode()) == "text/plain"
    assert sniff(b"II*\x00\x08\x00\x00\x00") is None  # TIFF is not accepted


def test_loads_a_png_from_an_allowed_root(roots):
    (roots / "ok.png").write_bytes(png_bytes())
    loaded = load(event(uri=(roots / "ok.png").as_uri()), Settings.from_env())
    assert loaded.content.modality == "image" and loaded.content.mime_type == "image/png"
    assert len(loaded.sha256) == 64


def test_text_file_declared_as_png_is_a_mime_mismatch(roots):
    (roots / "fake.png").write_text("just text")
    assert reject_reason(event(uri=(roots / "fake.png").as_uri(), mime_type="image/png")).startswith("mime_mismatch")


def test_tiff_renamed_png_is_refused(roots):
    buffer = io.BytesIO()
    Image.new("RGB", (8, 8)).save(buffer, format="TIFF")
    (roots / "t.png").write_bytes(buffer.getvalue())
    assert reject_reason(event(uri=(roots / "t.png").as_uri())).startswith("unsupported_type")


def test_truncated_png_is_corrupt(roots):
    data = png_bytes((64, 64))
    (roots / "cut.png").write_bytes(data[: len(data) // 2])
    assert reject_reason(event(uri=(roots / "cut.png").as_uri())).startswith("corrupt_image")


def test_decompression_bomb_is_refused_with_the_limit_on(roots, monkeypatch):
    monkeypatch.setenv("GOVERNANCE_MAX_IMAGE_PIXELS", "1000")
    (roots / "big.png").write_bytes(png_bytes((100, 100)))
    assert reject_reason(event(uri=(roots / "big.png").as_uri())).startswith("decompression_bomb")


def test_empty_oversized_and_outside_root_files(roots, tmp_path_factory):
    (roots / "empty.png").write_bytes(b"")
    (roots / "huge.txt").write_bytes(b"a" * 100001)
    outside = tmp_path_factory.mktemp("outside") / "x.txt"
    outside.write_text("secret")
    assert reject_reason(event(uri=(roots / "empty.png").as_uri())).startswith("empty_content")
    assert reject_reason(event(uri=(roots / "huge.txt").as_uri())).startswith("too_large")
    assert reject_reason(event(uri=outside.as_uri())).startswith("path_outside_roots")
    assert reject_reason(event(uri=(roots / ".." / outside.parent.name / "x.txt").as_uri())).startswith("path_outside_roots")
    assert reject_reason(event(uri=(roots / "missing.png").as_uri())).startswith("file_not_found")


def test_symlink_out_of_the_root_is_refused(roots, tmp_path_factory):
    target = tmp_path_factory.mktemp("elsewhere") / "t.txt"
    target.write_text("secret")
    (roots / "link.txt").symlink_to(target)
    assert reject_reason(event(uri=(roots / "link.txt").as_uri())).startswith("path_outside_roots")


def test_text_limits_and_base64(roots):
    assert reject_reason(event(text="x" * 1001)).startswith("text_too_long")
    assert reject_reason(event(text="   ")).startswith("empty_content")
    assert reject_reason(event(text="\u200b\u200c \u200d\ufeff\u2060\n")).startswith("empty_content")
    assert load(event(text="\u200bhi"), Settings.from_env()).content.text == "\u200bhi"
    assert reject_reason(event(data_b64="!!notbase64")).startswith("invalid_base64")
    loaded = load(event(data_b64=base64.b64encode(png_bytes()).decode()), Settings.from_env())
    assert loaded.content.modality == "image"


def test_corrupt_pdf_is_rejected(roots):
    (roots / "bad.pdf").write_bytes(b"%PDF-1.7\n\x00\x01garbage")
    assert reject_reason(event(uri=(roots / "bad.pdf").as_uri())).startswith("corrupt_pdf")


@pytest.mark.parametrize("uri", [
    "http://169.254.169.254/latest/meta-data/", "http://127.0.0.1:6379/", "http://10.0.0.1/",
    "http://[::1]/", "http://[::ffff:127.0.0.1]/", "http://2130706433/", "http://0x7f000001/",
    "http://192.168.1.1/", "http://localhost/", "gopher://example.com/", "http://user:pw@example.com/",
])
def test_ssrf_targets_are_refused(roots, uri):
    reason = reject_reason(event(uri=uri))
    assert reason.split(":")[0] in {"ssrf_blocked", "unsupported_uri", "dns_failed"}


class _Server(BaseHTTPRequestHandler):
    def do_GET(self):
        if self.path == "/redirect":
            self.send_response(302)
            self.send_header("Location", "http://169.254.169.254/latest/")
            self.end_headers()
            return
        self.send_response(200)
        if self.path == "/claims-small":
            self.send_header("Content-Length", "10")
        self.end_headers()
        self.wfile.write(b"x" * 5000)

    def log_message(self, *args):
        pass


@pytest.fixture
def local_server():
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Server)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def test_redirect_to_an_internal_host_is_rechecked(local_server, monkeypatch):
    import governance.safe_fetch as safe_fetch

    original, hops = safe_fetch._resolve_pinned, []

    def first_hop_allowed(host, port):
        # Pretend the first host is public; every later hop gets the real check.
        hops.append(host)
        return "127.0.0.1" if len(hops) == 1 else original(host, port)

    monkeypatch.setattr(safe_fetch, "_resolve_pinned", first_hop_allowed)
    with pytest.raises(FetchRefused, match="ssrf_blocked"):
        fetch_http(local_server + "/redirect", 1000, 2.0)
    assert hops == ["127.0.0.1", "169.254.169.254"]


def test_body_without_length_is_cut_at_the_limit(local_server):
    with pytest.raises(FetchRefused, match="too_large"):
        fetch_http(local_server + "/streams", 1000, 2.0, allow_private=True)


def test_lying_content_length_never_reads_past_what_it_claims(local_server):
    body, _ = fetch_http(local_server + "/claims-small", 1000, 2.0, allow_private=True)
    assert body == b"x" * 10
