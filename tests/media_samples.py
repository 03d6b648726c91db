"""Small media files made on the spot with PyAV and Pillow, so tests carry no binary fixtures."""
from __future__ import annotations

import io

import av
import numpy as np
from PIL import Image


def _tone(seconds: float, rate: int, pitch: float) -> np.ndarray:
    t = np.arange(int(seconds * rate)) / rate
    # A slow sweep, so windows of one recording differ from each other.
    return (0.3 * np.sin(2 * np.pi * (pitch + 20 * t) * t)).astype(np.float32)


def encode_audio(container: str, codec: str, seconds: float, rate: int = 22050, pitch: float = 440.0) -> bytes:
    signal, buffer = _tone(seconds, rate, pitch), io.BytesIO()
    with av.open(buffer, "w", format=container) as out:
        stream = out.add_stream(codec, rate=rate, layout="mono")
        sample_format = stream.codec_context.format
        step = stream.codec_context.frame_size or 4096
        for start in range(0, signal.size, step):
            chunk = signal[start:start + step]
            if sample_format.name.startswith("s16"):
                array = (chunk * 32767).astype(np.int16)
            elif sample_format.name.startswith("s32"):
                array = (chunk * 2147483647).astype(np.int32)
            else:
                array = chunk
            frame = av.AudioFrame.from_ndarray(array[None, :], format=sample_format.name, layout="mono")
            frame.sample_rate, frame.pts = rate, start
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)
    return buffer.getvalue()


def wav_bytes(seconds: float, rate: int = 8000, pitch: float = 440.0) -> bytes:
    return encode_audio("wav", "pcm_s16le", seconds, rate, pitch)


def flac_bytes(seconds: float, pitch: float = 440.0) -> bytes:
    return encode_audio("flac", "flac", seconds, pitch=pitch)


def ogg_bytes(seconds: float) -> bytes:
    return encode_audio("ogg", "libopus", seconds, rate=48000)


def mp3_bytes(seconds: float) -> bytes:
    return encode_audio("mp3", "libmp3lame", seconds)


def m4a_bytes(seconds: float) -> bytes:
    return encode_audio("ipod", "aac", seconds)


def encode_video(container: str, codec: str, seconds: float, fps: int = 5, size=(64, 48),
                 colour=(255, 0, 0)) -> bytes:
    buffer = io.BytesIO()
    with av.open(buffer, "w", format=container) as out:
        stream = out.add_stream(codec, rate=fps)
        stream.width, stream.height = size
        stream.pix_fmt = "yuv420p"
        for i in range(int(seconds * fps)):
            picture = np.zeros((size[1], size[0], 3), np.uint8)
            picture[:, (i * 3) % size[0]:] = colour  # a moving edge: motion for the features
            for packet in stream.encode(av.VideoFrame.from_ndarray(picture, format="rgb24")):
                out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)
    return buffer.getvalue()


def mp4_bytes(seconds: float, **kwargs) -> bytes:
    return encode_video("mp4", "libx264", seconds, **kwargs)


def mov_bytes(seconds: float) -> bytes:
    return encode_video("mov", "libx264", seconds)


def webm_bytes(seconds: float) -> bytes:
    return encode_video("webm", "libvpx", seconds)


def avi_bytes(seconds: float) -> bytes:
    return encode_video("avi", "mpeg4", seconds)


def image_bytes(pillow_format: str, size=(16, 16), colour=(200, 10, 10), **save) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, colour).save(buffer, format=pillow_format, **save)
    return buffer.getvalue()


def pdf_bytes(pages: int) -> bytes:
    from pypdf import PdfWriter

    writer, buffer = PdfWriter(), io.BytesIO()
    for i in range(pages):
        writer.add_blank_page(width=72 + i, height=72)  # pages differ, so windows differ
    writer.write(buffer)
    return buffer.getvalue()


def text_pdf(text: str, width: float = 300, height: float = 400) -> bytes:
    """A one-page PDF with `text` drawn (and extractable) under a red band."""
    safe = text.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")
    stream = (f"0.8 0.1 0.1 rg 20 {height - 70:.0f} {width - 40:.0f} 50 re f "
              f"BT /F1 16 Tf 0 0 0 rg 24 {height / 2:.0f} Td ({safe}) Tj ET").encode()
    objects = [b"<< /Type /Catalog /Pages 2 0 R >>",
               b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
               (f"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 {width:g} {height:g}] "
                "/Resources << /Font << /F1 4 0 R >> >> /Contents 5 0 R >>").encode(),
               b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
               b"<< /Length " + str(len(stream)).encode() + b" >>\nstream\n" + stream + b"\nendstream"]
    out, offsets = bytearray(b"%PDF-1.4\n"), []
    for number, body in enumerate(objects, 1):
        offsets.append(len(out))
        out += f"{number} 0 obj\n".encode() + body + b"\nendobj\n"
    xref = len(out)
    out += f"xref\n0 {len(objects) + 1}\n0000000000 65535 f \n".encode()
    out += b"".join(f"{o:010d} 00000 n \n".encode() for o in offsets)
    out += f"trailer\n<< /Size {len(objects) + 1} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n".encode()
    return bytes(out)
