"""Regenerate the images of the bundled demo corpus (governance/sample/files/).

Every image is drawn here from fixed seeds with Pillow and numpy, so running the script again
gives the same pictures. Nothing is downloaded or copied from elsewhere.

    python scripts/make_sample_images.py            # writes governance/sample/files/
    python scripts/make_sample_images.py --out DIR  # somewhere else

Images:
* ``qr_spam_NN.png`` / ``upload_qr_NN.png``: QR-code-like grids (three finder squares, timing
  rows, random modules) inside a bold black frame, sometimes with a "SCAN" bar.
* ``landscape_NN.png`` / ``upload_landscape_NN.png``: a sky gradient, a sun and rolling hills.
* ``anomaly_noise.png``: uniform random RGB pixels.
* ``bad_truncated.png``: a valid PNG cut short (the pipeline must reject it as corrupt).
* ``bad_not_an_image.png``: a plain-text file with a .png name (a MIME mismatch).
"""
from __future__ import annotations

import argparse
import io
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_OUT = ROOT / "governance" / "sample" / "files"
MAX_BYTES = 20 * 1024


# --------------------------------------------------------------------------- QR-like grids

def _finder(grid: np.ndarray, row: int, col: int) -> None:
    """A 7x7 finder square: dark ring, light ring, dark 3x3 centre (plus a light separator)."""
    n = grid.shape[0]
    for r in range(-1, 8):
        for c in range(-1, 8):
            rr, cc = row + r, col + c
            if not (0 <= rr < n and 0 <= cc < n):
                continue
            if r in (-1, 7) or c in (-1, 7):
                grid[rr, cc] = 0
            elif r in (0, 6) or c in (0, 6) or (2 <= r <= 4 and 2 <= c <= 4):
                grid[rr, cc] = 1
            else:
                grid[rr, cc] = 0


def qr_like(seed: int, size: int = 128) -> Image.Image:
    rng = np.random.default_rng(seed)
    modules = int(rng.choice([21, 25, 29]))
    density = float(rng.uniform(0.42, 0.58))
    grid = (rng.random((modules, modules)) < density).astype(np.uint8)
    for row, col in ((0, 0), (0, modules - 7), (modules - 7, 0)):
        _finder(grid, row, col)
    grid[6, 8:modules - 8] = np.arange(modules - 16) % 2 == 0  # timing rows
    grid[8:modules - 8, 6] = np.arange(modules - 16) % 2 == 0
    if modules >= 25:  # an alignment square near the bottom-right corner
        a = modules - 9
        grid[a - 2:a + 3, a - 2:a + 3] = 1
        grid[a - 1:a + 2, a - 1:a + 2] = 0
        grid[a, a] = 1
    if rng.random() < 0.35:  # a blank "logo" patch in the middle
        m, h = modules // 2, int(rng.integers(2, 4))
        grid[m - h:m + h + 1, m - h:m + h + 1] = 0

    frame = int(rng.integers(5, 10))
    banner = rng.random() < 0.5
    banner_h = 16 if banner else 0
    quiet = 3
    scale = max(1, (size - 2 * frame - 2 * quiet - banner_h) // modules)
    code_px = scale * modules
    width = code_px + 2 * (frame + quiet)
    height = width + banner_h

    image = Image.new("L", (width, height), 0)  # the frame is the black background
    draw = ImageDraw.Draw(image)
    draw.rectangle([frame, frame, width - frame - 1, frame + 2 * quiet + code_px - 1], fill=255)
    code = Image.fromarray(((1 - grid) * 255).astype(np.uint8), "L").resize((code_px, code_px), Image.Resampling.NEAREST)
    image.paste(code, (frame + quiet, frame + quiet))
    if banner:  # a white "SCAN ME"-style bar drawn as blocky strokes, no font needed
        top = width - frame + 2
        x = frame + 4
        for _ in range(int(rng.integers(5, 9))):
            w = int(rng.integers(4, 9))
            draw.rectangle([x, top + 2, x + w, top + banner_h - 6], fill=255)
            x += w + 3
            if x > width - frame - 10:
                break
    if image.size != (size, size):
        canvas = Image.new("L", (size, size), 255)
        canvas.paste(image, ((size - width) // 2, (size - height) // 2))
        image = canvas
    return image.convert("1") if rng.random() < 0.5 else image


# --------------------------------------------------------------------------- landscapes

SKIES = [
    ((40, 110, 210), (170, 215, 250)),   # midday blue
    ((70, 140, 225), (210, 235, 255)),   # pale morning
    ((250, 120, 60), (255, 210, 120)),   # sunset orange
    ((120, 80, 170), (250, 160, 120)),   # dusk violet to peach
    ((30, 90, 180), (140, 200, 240)),    # deep clear sky
]


def _lerp(a, b, t):
    return tuple(int(round(x + (y - x) * t)) for x, y in zip(a, b))


def landscape(seed: int, width: int = 128, height: int = 96) -> Image.Image:
    rng = np.random.default_rng(seed)
    top, horizon = SKIES[int(rng.integers(len(SKIES)))]
    t = np.linspace(0.0, 1.0, height)[:, None, None]
    sky = (np.array(top)[None, None, :] * (1 - t) + np.array(horizon)[None, None, :] * t)
    sky = np.repeat(sky, width, axis=1).astype(np.uint8)
    image = Image.fromarray(sky, "RGB")
    draw = ImageDraw.Draw(image)

    sx, sy = int(rng.integers(15, width - 15)), int(rng.integers(10, height // 2))
    radius = int(rng.integers(7, 14))
    sun = (255, int(rng.integers(200, 245)), int(rng.integers(60, 130)))
    draw.ellipse([sx - radius - 3, sy - radius - 3, sx + radius + 3, sy + radius + 3], fill=_lerp(sun, horizon, 0.5))
    draw.ellipse([sx - radius, sy - radius, sx + radius, sy + radius], fill=sun)

    for _ in range(int(rng.integers(0, 3))):  # a few flat clouds
        cx, cy = int(rng.integers(0, width)), int(rng.integers(6, height // 3))
        for dx in (-8, 0, 8):
            draw.ellipse([cx + dx - 9, cy - 4, cx + dx + 9, cy + 4], fill=(245, 248, 252))

    layers = int(rng.integers(2, 5))
    xs = np.arange(width)
    for i in range(layers):
        depth = i / max(1, layers - 1)  # 0 = farthest, 1 = nearest
        base = height * (0.55 + 0.25 * depth) + rng.uniform(-4, 4)
        amp = rng.uniform(4, 12)
        freq = rng.uniform(0.025, 0.07)
        phase = rng.uniform(0, 2 * np.pi)
        ridge = base - amp * np.sin(xs * freq + phase) - 0.5 * amp * np.sin(xs * freq * 2.3 + phase * 1.7)
        far_green, near_green = (120, 185, 110), (35, 115, 45)
        colour = _lerp(far_green, near_green, depth)
        colour = tuple(max(0, min(255, c + int(rng.integers(-12, 13)))) for c in colour)
        polygon = [(int(x), float(y)) for x, y in zip(xs, ridge)] + [(width - 1, height), (0, height)]
        draw.polygon(polygon, fill=colour)
    return image


# --------------------------------------------------------------------------- the rest

def noise(seed: int, size: int = 64) -> Image.Image:
    rng = np.random.default_rng(seed)
    return Image.fromarray(rng.integers(0, 256, (size, size, 3), dtype=np.uint8), "RGB")


def png_bytes(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", optimize=True)
    return buffer.getvalue()


NOT_AN_IMAGE = (
    "Meeting notes, demo corpus\n"
    "This is a plain text file that was saved with a .png name.\n"
    "The upload declares it as image/png; the worker must notice the content is text\n"
    "and reject it as a MIME mismatch instead of trying to decode it.\n"
)


def build() -> dict[str, bytes]:
    files: dict[str, bytes] = {}
    for i in range(1, 9):
        files[f"qr_spam_{i:02d}.png"] = png_bytes(qr_like(1000 + i))
        files[f"landscape_{i:02d}.png"] = png_bytes(landscape(2000 + i))
    for i in range(1, 4):
        files[f"upload_qr_{i:02d}.png"] = png_bytes(qr_like(3000 + i))
        files[f"upload_landscape_{i:02d}.png"] = png_bytes(landscape(4000 + i))
    files["anomaly_noise.png"] = png_bytes(noise(5001))
    whole = png_bytes(landscape(6001))
    files["bad_truncated.png"] = whole[: len(whole) * 3 // 5]
    files["bad_not_an_image.png"] = NOT_AN_IMAGE.encode("utf-8")
    return files


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help=f"output folder (default {DEFAULT_OUT})")
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    for name, data in sorted(build().items()):
        if len(data) >= MAX_BYTES:
            raise SystemExit(f"{name} is {len(data)} bytes, over the {MAX_BYTES} byte budget")
        (args.out / name).write_bytes(data)
        print(f"{len(data):6d}  {args.out / name}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
