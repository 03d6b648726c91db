import base64
import io
import ipaddress

import pytest
from PIL import Image

from governance.ingest.assets import RejectedInput, load, sniff
from governance.ingest.events import UploadEvent
from governance.ingest.safe_fetch import FetchRefused, check_address
from governance.platform.config import Settings


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
    assert reject_reason(event(uri=(roots / ".." / outside.parent.name / "x.txt").as_uri())).startswith("path_traversal")
    assert reject_reason(event(uri=(roots / "missing.png").as_uri())).startswith("file_not_found")


def test_symlink_out_of_the_root_is_refused(roots, tmp_path_factory):
    target = tmp_path_factory.mktemp("elsewhere") / "t.txt"
    target.write_text("secret")
    (roots / "link.txt").symlink_to(target)
    assert reject_reason(event(uri=(roots / "link.txt").as_uri())).startswith("symlink_refused")


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


def test_eps_and_postscript_are_refused_not_read_as_text(roots):
    (roots / "figure.eps").write_bytes(b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 100 100\nnewpath 0 0 moveto\n")
    (roots / "page.ps").write_bytes(b"%!PS-Adobe-3.0\n%%Pages: 1\nshowpage\n")
    assert sniff(b"%!PS-Adobe-3.0 EPSF-3.0\n") is None
    assert reject_reason(event(uri=(roots / "figure.eps").as_uri())) == (
        "unsupported_type: content matches no accepted format (starts b'%!PS-Ado')")
    assert reject_reason(event(uri=(roots / "page.ps").as_uri())).startswith("unsupported_type: ")


def test_a_nul_byte_in_a_file_path_is_an_invalid_uri(roots):
    (roots / "ok.txt").write_text("fine words")
    assert reject_reason(event(uri=(roots / "ok.txt").as_uri() + "%00.png")) == "invalid_uri: NUL byte in file path"


@pytest.mark.parametrize("uri, reason", [
    ("http://host:99999/x", "invalid_uri: Port out of range 0-65535"),
    ("http://host:abc/x", "invalid_uri: Port could not be cast to integer value as 'abc'"),
    ("http://[::1/x", "invalid_uri: Invalid IPv6 URL"),
    ("http://host:0/x", "invalid_uri: port 0"),
    ("http://host/a b", "invalid_uri: control character or space in URI"),
    ("http://host/x%00\x01", "invalid_uri: control character or space in URI"),
])
def test_malformed_urls_are_rejected_at_once(roots, uri, reason):
    assert reject_reason(event(uri=uri)) == reason


# Each target is refused before any connection, by the reason named; no traffic leaves the machine.
@pytest.mark.parametrize("uri, reason", [
    ("http://169.254.169.254/latest/meta-data/", "ssrf_blocked: 169.254.169.254 is not a public address"),
    ("http://127.0.0.1:6379/", "ssrf_blocked: 127.0.0.1 is not a public address"),
    ("http://10.0.0.1/", "ssrf_blocked: 10.0.0.1 is not a public address"),
    ("http://192.168.1.1/", "ssrf_blocked: 192.168.1.1 is not a public address"),
    ("http://100.64.0.1/", "ssrf_blocked: 100.64.0.1 is not a public address"),
    ("http://224.0.0.1/", "ssrf_blocked: 224.0.0.1 is not a public address"),
    ("http://240.0.0.1/", "ssrf_blocked: 240.0.0.1 is not a public address"),
    ("http://192.88.99.1/", "ssrf_blocked: 192.88.99.1 is not a public address"),
    ("http://2130706433/", "ssrf_blocked: 127.0.0.1 is not a public address"),
    ("http://0x7f000001/", "ssrf_blocked: 127.0.0.1 is not a public address"),
    ("http://localhost/", "ssrf_blocked: 127.0.0.1 is not a public address"),
    ("http://[::1]/", "ssrf_blocked: ::1 is not a public address"),
    ("http://[::]/", "ssrf_blocked: :: is not a public address"),
    ("http://[fe80::1]/", "ssrf_blocked: fe80::1 is not a public address"),
    ("http://[fc00::1]/", "ssrf_blocked: fc00::1 is not a public address"),
    ("http://[fec0::1]/", "ssrf_blocked: fec0::1 is not a public address"),
    ("http://[3ffe::1]/", "ssrf_blocked: 3ffe::1 is not a public address"),
    ("http://[ff02::1]/", "ssrf_blocked: ff02::1 is not a public address"),
    ("http://[::ffff:127.0.0.1]/", "ssrf_blocked: ::ffff:127.0.0.1 embeds 127.0.0.1 (IPv4-mapped), not a public address"),
    ("http://[64:ff9b::a9fe:a9fe]/", "ssrf_blocked: 64:ff9b::a9fe:a9fe embeds 169.254.169.254 (NAT64), not a public address"),
    ("http://[64:ff9b::7f00:1]/", "ssrf_blocked: 64:ff9b::7f00:1 embeds 127.0.0.1 (NAT64), not a public address"),
    ("http://[64:ff9b:1::a00:1]/", "ssrf_blocked: 64:ff9b:1::a00:1 embeds 10.0.0.1 (NAT64), not a public address"),
    ("http://[64:ff9b:1:7f00:0:100::]/", "ssrf_blocked: 64:ff9b:1:7f00:0:100:: embeds 127.0.0.1 (NAT64), not a public address"),
    ("http://[2002:7f00:1::]/", "ssrf_blocked: 2002:7f00:1:: embeds 127.0.0.1 (6to4), not a public address"),
    ("http://[2002:a9fe:a9fe::1]/", "ssrf_blocked: 2002:a9fe:a9fe::1 embeds 169.254.169.254 (6to4), not a public address"),
    ("http://[::127.0.0.1]/", "ssrf_blocked: ::127.0.0.1 embeds 127.0.0.1 (IPv4-compatible), not a public address"),
    ("http://[::ffff:0:7f00:1]/", "ssrf_blocked: ::ffff:0:7f00:1 embeds 127.0.0.1 (IPv4-translated), not a public address"),
    ("http://[2001:0:4136:e378:8000:63bf:80ff:fffe]/",
     "ssrf_blocked: 2001:0:4136:e378:8000:63bf:80ff:fffe embeds 127.0.0.1 (Teredo), not a public address"),
    ("gopher://example.com/", "unsupported_uri: scheme gopher is not file, http or https"),
    ("http://user:pw@example.com/", "unsupported_uri: credentials in URL"),
])
def test_ssrf_targets_are_refused(roots, uri, reason):
    assert reject_reason(event(uri=uri)) == reason


@pytest.mark.parametrize("address, reason", [
    ("::808:808", "ssrf_blocked: ::808:808 is not a public address"),  # IPv4-compatible: deprecated
    ("::ffff:0:808:808", "ssrf_blocked: ::ffff:0:808:808 is not a public address"),
    ("2001:0:4136:e378:8000:63bf:f7f7:f7f7", "ssrf_blocked: 2001:0:4136:e378:8000:63bf:f7f7:f7f7 is not a public address"),
])
def test_forms_whose_own_range_is_not_public_are_refused_whatever_they_embed(address, reason):
    with pytest.raises(FetchRefused) as info:
        check_address(address)
    assert str(info.value) == reason


@pytest.mark.parametrize("address", ["8.8.8.8", "2001:4860:4860::8888", "64:ff9b::808:808", "::ffff:8.8.8.8",
                                     "2002:808:808::1"])
def test_public_addresses_and_their_translations_pass(address):
    check_address(address)


def test_an_allowed_range_admits_only_itself():
    allowed = (ipaddress.ip_network("127.0.0.0/8"),)
    check_address("127.0.0.1", allowed)
    with pytest.raises(FetchRefused, match="^ssrf_blocked: ::1 is not a public address$"):
        check_address("::1", allowed)
