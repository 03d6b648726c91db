"""Images per second of the numpy EfficientNet-Lite0 next to the surface image features, and OCR
per image next to the EfficientNet forward pass, one run.

    .venv/bin/python bench/bench_images.py [--quick]

Both run on the same seeded synthetic drawings (640 x 480 PNGs: shapes on a background), with
one BLAS thread, as a worker child runs them: decode + preprocess + forward pass for the
network, decode + histograms for the surface features (governance.embedding.backends.hashing). The peak
memory of a batch is measured in a child process, from after the weights are loaded. OCR
(governance.ingest.ocr, one thread, as the pipeline runs it) is timed on the same drawings, which
hold no text, and on drawings with three lines of text written on them.
"""
from __future__ import annotations

import argparse
import io
import json
import os
import subprocess
import sys
import time

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from governance.embedding.backends.image_features import image_features  # noqa: E402

BATCH = 8
_PEAK_CHILD = """
import json, sys
from bench.bench_images import make_images
from governance.embedding.backends.efficientnet import EfficientNetLite0

def status_mb(key):
    return next(int(line.split()[1]) for line in open("/proc/self/status") if line.startswith(key)) // 1024

model = EfficientNetLite0(threads=1)
images = make_images(int(sys.argv[1]))
with open("/proc/self/clear_refs", "w") as refs:
    refs.write("5")  # the peak from here on: what a batch costs, not loading the weights
loaded = status_mb("VmRSS:")
model.image_features(images)
print(json.dumps({"loaded_mb": loaded, "peak_mb": status_mb("VmHWM:")}))
"""


def make_images(n: int, seed: int = 11) -> list[bytes]:
    from PIL import Image, ImageDraw

    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        image = Image.new("RGB", (640, 480), tuple(int(v) for v in rng.integers(150, 256, 3)))
        draw = ImageDraw.Draw(image)
        for _ in range(6):
            x, y = int(rng.integers(0, 560)), int(rng.integers(0, 400))
            box = (x, y, x + int(rng.integers(20, 200)), y + int(rng.integers(20, 200)))
            colour = tuple(int(v) for v in rng.integers(0, 256, 3))
            (draw.ellipse if rng.random() < 0.5 else draw.rectangle)(box, fill=colour)
        buffer = io.BytesIO()
        image.save(buffer, format="PNG")
        out.append(buffer.getvalue())
    return out


def with_text(images: list[bytes]) -> list[bytes]:
    """The drawings with three lines of text on each, in the font Pillow ships."""
    from PIL import Image, ImageDraw, ImageFont

    font = ImageFont.load_default(size=28)
    out = []
    for n, data in enumerate(images):
        image = Image.open(io.BytesIO(data)).convert("RGB")
        draw = ImageDraw.Draw(image)
        for line, text in enumerate(("Claim your free crypto bonus", f"offer {n} ends tonight", "visit example.com")):
            draw.text((30, 60 + 50 * line), text, fill=(10, 10, 10), font=font)
        buffer = io.BytesIO()
        image.save(buffer, format="PNG")
        out.append(buffer.getvalue())
    return out


def _ocr_ms(images: list[bytes], min_seconds: float) -> float:
    from governance.ingest.ocr import read_text

    def one(data: bytes) -> None:
        read_text(data, min_confidence=0.9, seconds=60, threads=1)

    one(images[0])  # warm-up (loads the models)
    done, start = 0, time.perf_counter()
    while time.perf_counter() - start < min_seconds:
        for data in images:
            one(data)
        done += len(images)
    return (time.perf_counter() - start) / done * 1000


def _rate(embed, images: list[bytes], min_seconds: float) -> float:
    embed(images[:BATCH])  # warm-up
    done, start = 0, time.perf_counter()
    while True:
        for i in range(0, len(images), BATCH):
            embed(images[i:i + BATCH])
            done += len(images[i:i + BATCH])
        elapsed = time.perf_counter() - start
        if elapsed >= min_seconds:
            return done / elapsed


def _batch_peak() -> dict:
    root = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
    done = subprocess.run([sys.executable, "-c", _PEAK_CHILD, str(BATCH)], cwd=root, capture_output=True, text=True,
                          timeout=600, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def run(quick: bool = False) -> dict:
    from governance.embedding.backends.efficientnet import EfficientNetLite0

    model = EfficientNetLite0(threads=1, batch_size=BATCH)
    images = make_images(16 if quick else 48)
    min_seconds = 1.0 if quick else 5.0
    effnet = _rate(model.image_features, images, min_seconds)
    surface = _rate(lambda batch: [image_features(data) for data in batch], images, min_seconds)
    peak = _batch_peak()
    ocr = {"ocr_ms_no_text": _ocr_ms(images[:8], min_seconds), "ocr_ms_text": _ocr_ms(with_text(images[:8]), min_seconds)}
    return {**ocr, "quick": quick, "cpus": os.cpu_count(), "load_average_1m": os.getloadavg()[0], "batch": BATCH,
            "effnet_images_per_s": effnet, "surface_images_per_s": surface,
            "batch_peak_mb": peak["peak_mb"] - peak["loaded_mb"], "weights_rss_mb": peak["loaded_mb"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="fewer images, 1 s per figure")
    print(json.dumps(run(parser.parse_args().quick), indent=1))


if __name__ == "__main__":
    main()
