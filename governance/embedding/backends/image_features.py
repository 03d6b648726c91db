"""Hand-made image features shared by the hashing and media backends."""
from __future__ import annotations

import io

import numpy as np


def image_features(data: bytes) -> np.ndarray:
    from PIL import Image

    with Image.open(io.BytesIO(data)) as image:
        return pil_image_features(image)


# The features look at 256 px at most; shrinking first bounds the RGBA copies below by this size
# (and lets JPEG decode at 1/2 to 1/8 scale), not by the upload's.
_WORKING_SIDE = 1024


def pil_image_features(image) -> np.ndarray:
    """Colour histogram, a small colour layout and gradient-orientation texture, each normalised."""
    from PIL import Image

    if image.mode not in ("L", "LA", "RGB", "RGBA"):  # palettes would be shrunk by nearest neighbour
        image = image.convert("RGBA")
    image.thumbnail((_WORKING_SIDE, _WORKING_SIDE))
    image = image.convert("RGBA")
    background = Image.new("RGBA", image.size, (255, 255, 255, 255))
    rgb = Image.alpha_composite(background, image).convert("RGB")
    rgb.thumbnail((256, 256))
    hsv = np.asarray(rgb.convert("HSV"), dtype=np.float32) / 255.0
    hist, _ = np.histogramdd(hsv.reshape(-1, 3), bins=(12, 4, 4), range=((0, 1), (0, 1), (0, 1)))
    colour = np.sqrt(hist.ravel() / max(1.0, hist.sum()))

    layout = np.asarray(rgb.resize((12, 12), Image.Resampling.BOX), dtype=np.float32).ravel() / 255.0
    layout = layout - layout.mean()

    gray = np.asarray(rgb.convert("L").resize((96, 96), Image.Resampling.BILINEAR), dtype=np.float32) / 255.0
    gy, gx = np.gradient(gray)
    magnitude = np.hypot(gx, gy)
    orientation = (np.arctan2(gy, gx) % np.pi) / np.pi
    bins = np.minimum((orientation * 8).astype(int), 7)
    texture = np.zeros((3, 3, 8), dtype=np.float32)
    cells = np.arange(96) // 32
    np.add.at(texture, (cells[:, None].repeat(96, 1), cells[None, :].repeat(96, 0), bins), magnitude)
    texture = np.sqrt(texture.ravel())
    edge_density = np.array([magnitude.mean(), (magnitude > 0.1).mean(), gray.std()], dtype=np.float32)

    blocks = [colour, layout, texture, edge_density]
    return np.concatenate([b / max(1e-9, float(np.linalg.norm(b))) for b in blocks]).astype(np.float32)
