"""Sniffing, conversion and cutting of media: every file is made in the test with PyAV or Pillow."""
import base64
import hashlib
import io
import wave

import numpy as np
import pytest
from PIL import Image

from governance.ingest import media
from governance.ingest.assets import RejectedInput, load, sniff
from governance.ingest.events import UploadEvent
from governance.platform.config import Settings
from tests import media_samples as ms


@pytest.fixture
def settings(monkeypatch):
    monkeypatch.setenv("GOVERNANCE_MAX_BYTES", "5000000")
    return Settings.from_env()


def loaded(data: bytes, settings, **fields):
    return load(UploadEvent.parse({"asset_id": "a", "data_b64": base64.b64encode(data).decode(), **fields}),
                settings)


def rejected(data: bytes, settings) -> str:
    with pytest.raises(RejectedInput) as info:
        loaded(data, settings)
    return str(info.value)


def wav_info(data: bytes) -> tuple[int, int, int, float]:
    with wave.open(io.BytesIO(data)) as reader:
        return (reader.getnchannels(), reader.getsampwidth(), reader.getframerate(),
                reader.getnframes() / reader.getframerate())


@pytest.mark.parametrize("make, mime", [
    (lambda: ms.image_bytes("WEBP"), "image/webp"), (lambda: ms.image_bytes("GIF"), "image/gif"),
    (lambda: ms.image_bytes("BMP"), "image/bmp"), (lambda: ms.flac_bytes(1), "audio/flac"),
    (lambda: ms.ogg_bytes(1), "audio/ogg"), (lambda: ms.mp3_bytes(1), "audio/mpeg"),
    (lambda: ms.wav_bytes(1), "audio/wav"), (lambda: ms.m4a_bytes(1), "audio/mp4"),
    (lambda: ms.mp4_bytes(1), "video/mp4"), (lambda: ms.mov_bytes(1), "video/quicktime"),
    (lambda: ms.webm_bytes(1), "video/webm"), (lambda: ms.avi_bytes(1), "video/x-msvideo"),
])
def test_generated_files_are_sniffed_by_their_magic_bytes(make, mime):
    assert sniff(make()) == mime


@pytest.mark.parametrize("head, mime", [
    (b"\xff\xfb\x90\x00", "audio/mpeg"), (b"\xff\xfa\x90\x00", "audio/mpeg"),  # MPEG-1 layer III, +CRC
    (b"\xff\xf3\x90\x00", "audio/mpeg"), (b"\xff\xe3\x90\x00", "audio/mpeg"),  # MPEG-2, MPEG-2.5
    (b"\xff\xfd\x90\x00", "audio/mpeg"),  # layer II
    (b"\xff\xf1\x50\x80", "audio/aac"), (b"\xff\xf9\x50\x80", "audio/aac"),  # ADTS
    (b"\xff\xd8\xff\xe0", "image/jpeg"), (b"\xff\xeb\x90\x00", None),  # reserved MPEG version
])
def test_frame_sync_variants(head, mime):
    assert sniff(head + bytes(12)) == mime


@pytest.mark.parametrize("pillow_format", ["WEBP", "GIF", "BMP"])
def test_webp_gif_bmp_become_png_with_the_same_pixels_and_the_original_hash(settings, pillow_format):
    original = ms.image_bytes(pillow_format, size=(12, 9), colour=(0, 128, 255), **(
        {"lossless": True} if pillow_format == "WEBP" else {}))
    asset = loaded(original, settings)
    assert asset.content.mime_type == "image/png" and asset.content.data.startswith(b"\x89PNG")
    assert asset.sha256 == hashlib.sha256(original).hexdigest() and asset.size_bytes == len(original)
    with Image.open(io.BytesIO(asset.content.data)) as png, Image.open(io.BytesIO(original)) as source:
        assert png.size == (12, 9)
        np.testing.assert_array_equal(np.asarray(png.convert("RGB")), np.asarray(source.convert("RGB")))


def test_animated_gif_keeps_its_first_frame(settings):
    frames = [Image.new("RGB", (8, 8), c) for c in [(255, 0, 0), (0, 255, 0)]]
    buffer = io.BytesIO()
    frames[0].save(buffer, format="GIF", save_all=True, append_images=frames[1:])
    with Image.open(io.BytesIO(loaded(buffer.getvalue(), settings).content.data)) as png:
        assert png.convert("RGB").getpixel((4, 4)) == (255, 0, 0)


def test_the_bomb_limit_still_applies_before_conversion(monkeypatch):
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", Image.MAX_IMAGE_PIXELS)  # load() sets it process-wide
    monkeypatch.setenv("GOVERNANCE_MAX_IMAGE_PIXELS", "1000")
    assert rejected(ms.image_bytes("WEBP", size=(100, 100)), Settings.from_env()).startswith("decompression_bomb")


@pytest.mark.parametrize("make", [lambda: ms.flac_bytes(2), lambda: ms.ogg_bytes(2), lambda: ms.m4a_bytes(2)])
def test_flac_ogg_m4a_become_16_khz_mono_wav_and_keep_their_duration(settings, make):
    original = make()
    asset = loaded(original, settings)
    assert asset.content.modality == "audio" and asset.content.mime_type == "audio/wav"
    channels, width, rate, seconds = wav_info(asset.content.data)
    assert (channels, width, rate) == (1, 2, media.AUDIO_RATE)
    assert seconds == pytest.approx(2.0, abs=0.06) and asset.extent == pytest.approx(seconds, abs=1e-3)
    assert asset.sha256 == hashlib.sha256(original).hexdigest()


@pytest.mark.parametrize("make, mime", [(lambda: ms.mp3_bytes(2), "audio/mpeg"), (lambda: ms.wav_bytes(2), "audio/wav"),
                                        (lambda: ms.mp4_bytes(2), "video/mp4")])
def test_formats_gemini_takes_pass_through_untouched(settings, make, mime):
    original = make()
    asset = loaded(original, settings)
    assert asset.content.mime_type == mime and asset.content.data == original
    assert asset.extent == pytest.approx(2.0, abs=0.1)


@pytest.mark.parametrize("make", [lambda: ms.webm_bytes(2), lambda: ms.avi_bytes(2)])
def test_webm_and_avi_become_mp4(settings, make):
    asset = loaded(make(), settings)
    assert asset.content.mime_type == "video/mp4" and sniff(asset.content.data) == "video/mp4"
    assert media.probe_video(asset.content.data, 10**6, 512).seconds == pytest.approx(2.0, abs=0.21)


@pytest.mark.parametrize("data, reason", [
    (b"fLaC" + bytes(range(256)) * 4, "corrupt_audio"), (b"OggS" + b"\x01" * 500, "corrupt_audio"),
    (b"\xff\xfb\x90\x00" + b"\x13" * 300, "corrupt_audio"),
    (b"\x00\x00\x00\x18ftypmp42\x00\x00\x00\x00" + b"junk" * 100, "corrupt_video"),
    (b"\x1a\x45\xdf\xa3" + b"\x00" * 200, "corrupt_video"),
])
def test_undecodable_audio_and_video_are_rejected_with_a_reason(settings, data, reason):
    assert rejected(data, settings).startswith(reason + ":")


def test_truncated_video_is_rejected_as_corrupt(settings):
    data = ms.mp4_bytes(2)
    assert data.rfind(b"moov") > len(data) // 3  # the index comes after the frames, so the cut loses it
    assert rejected(data[: len(data) // 3], settings).startswith("corrupt_video:")


def test_audio_longer_than_the_media_limit_is_refused_while_decoding(monkeypatch):
    monkeypatch.setenv("GOVERNANCE_MAX_MEDIA_SECONDS", "1.5")
    assert rejected(ms.flac_bytes(3), Settings.from_env()).startswith("too_long:")


def test_pdf_extent_is_its_page_count(settings):
    assert loaded(ms.pdf_bytes(7), settings).extent == 7


def test_audio_windows_cut_at_exact_samples():
    data = ms.flac_bytes(5)
    cuts = media.audio_windows(data, [(0, 2.5), (2.5, 5.0)], 60)
    assert [wav_info(c)[3] for c in cuts] == [2.5, pytest.approx(2.5, abs=0.05)]
    assert cuts[0] != cuts[1]


def test_video_windows_never_exceed_their_span():
    data = ms.mp4_bytes(30, fps=25)  # more frames per second than windows keep
    spans = [(0.0, 10.0), (10.0, 20.0), (20.0, 30.0)]
    for start, end in spans:
        window = media.video_window(data, start, end)
        seconds = media.probe_video(window, 10**6, 512).seconds
        assert end - start - 0.5 <= seconds <= end - start


def test_pdf_window_holds_its_pages():
    from pypdf import PdfReader

    data, _ = media.pdf_window(ms.pdf_bytes(13), 5, 9)
    pages = PdfReader(io.BytesIO(data)).pages
    assert [float(p.mediabox.width) for p in pages] == [77, 78, 79, 80]


def test_time_bound_stops_a_runaway_parse_and_leaves_no_timer_behind():
    # In a fresh interpreter: pytest-timeout holds the interval timer here, and the bound then
    # (by design) steps aside rather than replace it.
    import subprocess
    import sys

    script = """
import signal, time
from governance.ingest import media
try:
    with media.time_bound(0.2, "corrupt_pdf"):
        while True:  # only the bound can end this; if it does not, the run below times out
            try:
                time.sleep(0.01)
            except Exception:  # a parser's broad handler must not swallow the deadline
                pass
except media.MediaError as exc:
    print(exc)
print(signal.getitimer(signal.ITIMER_REAL))
"""
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert result.stdout.splitlines() == ["corrupt_pdf: took longer than 0.2 s", "(0.0, 0.0)"], result.stderr


@pytest.mark.parametrize("container, codec, rate", [("webm", "libopus", 48000), ("mp4", "aac", 22050)])
def test_audio_only_webm_and_mp4_are_audio(settings, container, codec, rate):
    original = ms.encode_audio(container, codec, 2, rate=rate)
    assert sniff(original).startswith("video/")  # the magic bytes cannot tell
    asset = loaded(original, settings, mime_type=f"audio/{container}")
    assert asset.content.modality == "audio" and asset.content.mime_type == "audio/wav"
    assert asset.extent == pytest.approx(2.0, abs=0.1)


def test_sampled_frames_are_the_ones_shown_at_evenly_spaced_times():
    fps, seconds = 25, 40
    data = ms.mp4_bytes(seconds, fps=fps)  # frame i has its edge at column (3 * i) % 64
    frames = media.sample_frames(data, 8, seconds)
    edges = [int(np.argmax(np.asarray(frame.convert("L"))[10] > 30)) for frame in frames]
    expected = [(3 * int(np.ceil((i + 0.5) * seconds / 8 * fps - 1e-6))) % 64 for i in range(8)]
    assert edges == expected


def test_a_native_wav_too_big_for_one_request_is_re_encoded(settings, monkeypatch):
    original = ms.wav_bytes(2, rate=44100)
    monkeypatch.setattr(media, "MAX_INLINE_AUDIO_BYTES", len(original) - 1)
    asset = loaded(original, settings)
    assert asset.content.data != original and wav_info(asset.content.data)[2] == media.AUDIO_RATE
    assert asset.sha256 == hashlib.sha256(original).hexdigest()
