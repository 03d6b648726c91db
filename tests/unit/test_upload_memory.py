"""The memory one upload costs: load + embed of each input in its own child process, whose peak
resident set (VmHWM) must stay under GOVERNANCE_MAX_UPLOAD_MEMORY_MB (default 512 MB). The
inputs are small files that decode to huge pictures; they are generated here without decoding."""
from __future__ import annotations

import base64
import io
import json
import os
import struct
import subprocess
import sys
import zlib
from pathlib import Path

import av
import pytest

from governance.ingest import assets
from governance.ingest.events import UploadEvent
from governance.platform.config import Settings

BUDGET_MB = 512

CHILD = """
import base64, json, sys
from governance.ingest import assets
from governance.platform.config import Settings
from governance.embedding.protocol import Task
from governance.embedding.factory import build_embedder
from governance.ingest.events import UploadEvent

def status_mb(key):
    return next(int(line.split()[1]) for line in open("/proc/self/status") if line.startswith(key)) // 1024


settings = Settings.from_env()
embedder = build_embedder(settings)
# Loading model weights peaks on its own, before any upload: restart the peak from here.
with open("/proc/self/clear_refs", "w") as refs:
    refs.write("5")
weights_mb = status_mb("VmRSS:")
data = open(sys.argv[1], "rb").read()
event = UploadEvent.parse({"tenant": "t", "asset_id": "a", "data_b64": base64.b64encode(data).decode()})
del data
try:
    loaded = assets.load(event, settings)
    embedder.embed([loaded.content], Task.CLASSIFICATION)
    outcome = "embedded"
except assets.RejectedInput as exc:
    outcome = str(exc)
print(json.dumps({"outcome": outcome, "peak_mb": status_mb("VmHWM:"), "loaded_mb": weights_mb}))
"""


def flat_rgba_png(width: int, height: int) -> bytes:
    """A one-colour RGBA PNG, written row by row: compresses to almost nothing and costs no memory here."""
    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
    packer = zlib.compressobj(9)
    row = b"\x00" + bytes([10, 200, 30, 128]) * width
    pixels = b"".join(packer.compress(row) for _ in range(height)) + packer.flush()
    header = struct.pack(">IIBBBBB", width, height, 8, 6, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", pixels) + chunk(b"IEND", b"")


def h264_mp4(side: int, frames: int = 2) -> bytes:
    out = io.BytesIO()
    with av.open(out, "w", format="mp4") as container:
        stream = container.add_stream("libx264", rate=1)
        stream.width = stream.height = side
        stream.pix_fmt = "yuv420p"
        stream.options = {"preset": "ultrafast"}
        for i in range(frames):
            frame = av.VideoFrame(side, side, "yuv420p")
            for plane in frame.planes:
                plane.update(bytes([16 + 100 * i]) * plane.buffer_size)
            frame.pts = i
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)
    return out.getvalue()


def load_and_embed_in_a_child(path: Path, embedder: str = "hashing") -> dict:
    env = {**os.environ, "GOVERNANCE_EMBEDDER": embedder, "GOVERNANCE_MAX_IMAGE_PIXELS": "40000000"}
    env.pop("GOVERNANCE_MAX_UPLOAD_MEMORY_MB", None)  # the default budget is what is measured
    done = subprocess.run([sys.executable, "-c", CHILD, str(path)], env=env, capture_output=True, text=True,
                          timeout=300, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("name, make, outcome", [
    # 6320 x 6320 = 39.9 M pixels, just under the 40 M pixel limit: 1,049 MB in a worker child before.
    ("rgba.png", lambda: flat_rgba_png(6320, 6320), "embedded"),
    # Two 5792 px frames in 248 KB: 1,910 MB before. A decoder may hold 18 such frames (863 MB).
    ("5792.mp4", lambda: h264_mp4(5792),
     "too_large: 5792x5792 video (yuv420p, 33547264 pixels a frame) needs about 863 MB to decode,"
     " over the 512 MB upload memory budget (GOVERNANCE_MAX_UPLOAD_MEMORY_MB)"),
    # Within the frame limit: decoded, and each frame converted straight to a small picture.
    ("4096.mp4", lambda: h264_mp4(4096), "embedded"),
])
def test_one_upload_stays_within_the_memory_budget(tmp_path, name, make, outcome):
    path = tmp_path / name
    path.write_bytes(make())
    result = load_and_embed_in_a_child(path)
    assert result["outcome"] == outcome
    assert result["peak_mb"] < BUDGET_MB


@pytest.mark.parametrize("name, make", [("rgba.png", lambda: flat_rgba_png(6320, 6320)), ("4096.mp4", lambda: h264_mp4(4096))])
def test_the_offline_image_model_stays_within_the_memory_budget(tmp_path, name, make):
    # The MiniLM and EfficientNet-Lite0 weights (about 170 MB resident) are there before any upload.
    path = tmp_path / name
    path.write_bytes(make())
    result = load_and_embed_in_a_child(path, "offline")
    assert result["outcome"] == "embedded"
    assert result["peak_mb"] - result["loaded_mb"] < BUDGET_MB, result


def test_an_image_whose_pixels_would_not_fit_the_budget_is_too_large_before_decoding(monkeypatch):
    monkeypatch.setenv("GOVERNANCE_MAX_UPLOAD_MEMORY_MB", "64")
    event = UploadEvent.parse({"tenant": "t", "asset_id": "a",
                               "data_b64": base64.b64encode(flat_rgba_png(3000, 3000)).decode()})
    with pytest.raises(assets.RejectedInput) as rejected:
        assets.load(event, Settings.from_env())
    assert str(rejected.value) == ("too_large: 3000x3000 RGBA image (9000000 pixels) needs about 102 MB to decode,"
                                   " over the 64 MB upload memory budget (GOVERNANCE_MAX_UPLOAD_MEMORY_MB)")
