"""Varied synthetic photographs, and the copies people make of them, for the hash-bank tests.

Each picture is a smooth scene (a lit gradient background, blurred shapes of many colours and
sizes, film grain), so that PDQ, which reads the low frequencies, sees structure as in a photo.
"""
from __future__ import annotations

import io

import numpy as np
from PIL import Image, ImageDraw, ImageFilter


def photo(seed: int, size: tuple[int, int] = (480, 360)) -> Image.Image:
    rng = np.random.default_rng(seed)
    w, h = size
    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    angle = rng.uniform(0, 2 * np.pi)
    ramp = (np.cos(angle) * x / w + np.sin(angle) * y / h)
    base = np.stack([rng.uniform(40, 200) + rng.uniform(-80, 80) * ramp for _ in range(3)], axis=-1)
    image = Image.fromarray(np.clip(base, 0, 255).astype(np.uint8))
    draw = ImageDraw.Draw(image)
    for _ in range(int(rng.integers(4, 12))):
        cx, cy = rng.uniform(0, w), rng.uniform(0, h)
        rx, ry = rng.uniform(w / 20, w / 3), rng.uniform(h / 20, h / 3)
        colour = tuple(int(c) for c in rng.integers(0, 256, 3))
        box = [cx - rx, cy - ry, cx + rx, cy + ry]
        kind = rng.integers(0, 3)
        if kind == 0:
            draw.ellipse(box, fill=colour)
        elif kind == 1:
            draw.rectangle(box, fill=colour)
        else:
            draw.polygon([(cx + rx * np.cos(a), cy + ry * np.sin(a)) for a in rng.uniform(0, 2 * np.pi, 5)],
                         fill=colour)
    image = image.filter(ImageFilter.GaussianBlur(radius=float(rng.uniform(1, 4))))
    grain = rng.normal(0, rng.uniform(2, 10), (h, w, 3))
    return Image.fromarray(np.clip(np.asarray(image, dtype=np.float32) + grain, 0, 255).astype(np.uint8))


def encode(image: Image.Image, fmt: str = "PNG", **kwargs) -> bytes:
    out = io.BytesIO()
    image.save(out, fmt, **kwargs)
    return out.getvalue()


def half_size(image: Image.Image) -> Image.Image:
    return image.resize((image.width // 2, image.height // 2), Image.Resampling.BICUBIC)


def greyscale(image: Image.Image) -> Image.Image:
    return image.convert("L")


def crop_1_percent(image: Image.Image) -> Image.Image:
    """1% of the area off: 0.5% of each side's length off every edge."""
    dx, dy = max(1, round(image.width * 0.0025)), max(1, round(image.height * 0.0025))
    return image.crop((dx, dy, image.width - dx, image.height - dy))


TRANSFORMS = {
    "half_size": lambda im: encode(half_size(im)),
    "jpeg_q40": lambda im: encode(im, "JPEG", quality=40),
    "greyscale": lambda im: encode(greyscale(im)),
    "crop_1_percent": lambda im: encode(crop_1_percent(im)),
}


def photo_video(seeds: list[int], fps: int = 5, size: tuple[int, int] = (320, 240),
                seconds_per_scene: int = 2) -> bytes:
    """An H.264 MP4: a slow pan across each photo in turn, `seconds_per_scene` seconds each."""
    import av

    buffer = io.BytesIO()
    with av.open(buffer, "w", format="mp4") as out:
        stream = out.add_stream("libx264", rate=fps)
        stream.width, stream.height = size
        stream.pix_fmt = "yuv420p"
        for seed in seeds:
            wide = np.asarray(photo(seed, (size[0] + 2 * fps * seconds_per_scene, size[1])))
            for i in range(fps * seconds_per_scene):
                frame = np.ascontiguousarray(wide[:, 2 * i:2 * i + size[0]])
                for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
                    out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)
    return buffer.getvalue()


def reencoded_video(data: bytes, size: tuple[int, int] = (240, 180), crf: int = 35) -> bytes:
    """The copy a re-upload makes: decoded, scaled down and encoded again at a low quality."""
    import av

    buffer = io.BytesIO()
    with av.open(io.BytesIO(data)) as source, av.open(buffer, "w", format="mp4") as out:
        stream = out.add_stream("libx264", rate=5)
        stream.width, stream.height = size
        stream.pix_fmt = "yuv420p"
        stream.options = {"crf": str(crf)}
        for frame in source.decode(video=0):
            for packet in stream.encode(frame.reformat(width=size[0], height=size[1], format="yuv420p")):
                out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)
    return buffer.getvalue()
