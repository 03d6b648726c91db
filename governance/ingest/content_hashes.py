"""The hashes hash banks are matched on: PDQ for images, MD5 and SHA-256 of every upload's bytes.

PDQ (Meta's perceptual photo hash) comes from the `pdqhash` bindings of the reference C++ code, as
`threatexchange` computes it, so a hash here equals one that `threatexchange` or HMA wrote for the
same picture; MD5 and SHA-256 are of the bytes as uploaded (`LoadedAsset.md5`, `.sha256`), which
is what MD5 video lists and SHA-256 lists are made of. vPDQ (video) is not computed: the `vpdq`
package builds only against the FFmpeg development libraries, which the install does not carry.
"""
from __future__ import annotations

import io
from dataclasses import dataclass

import numpy as np

from governance.ingest.assets import LoadedAsset

SIGNAL_TYPES = ("pdq", "md5", "sha256")
HEX_LENGTH = {"pdq": 64, "md5": 32, "sha256": 64}
# Below this quality PDQ's authors call a hash too unreliable to match on (threatexchange's
# PdqSignal.QUALITY_THRESHOLD): flat or tiny pictures, whose hashes collide.
PDQ_QUALITY_THRESHOLD = 50


@dataclass(frozen=True)
class ContentHash:
    signal_type: str  # pdq|md5|sha256
    signal: str  # lowercase hex
    quality: int | None = None  # PDQ's 0-100 quality; None for the byte hashes


def content_hashes(loaded: LoadedAsset) -> list[ContentHash]:
    """Every hash of one loaded upload or exemplar: SHA-256 and MD5 always, PDQ for images."""
    hashes = [ContentHash("sha256", loaded.sha256)]
    if loaded.md5:
        hashes.append(ContentHash("md5", loaded.md5))
    if loaded.content.modality == "image" and loaded.content.data:
        signal, quality = pdq_hash(loaded.content.data)
        hashes.append(ContentHash("pdq", signal, quality))
    return hashes


def pdq_hash(image_bytes: bytes) -> tuple[str, int]:
    """(64-hex-digit PDQ hash, quality) of an image file that ingest has already validated."""
    import pdqhash
    from PIL import Image

    with Image.open(io.BytesIO(image_bytes)) as image:
        # threatexchange hands RGB and greyscale pixels to pdqhash as they are; other modes (palette,
        # alpha, CMYK) would reach it as index or four-channel arrays, so they become RGB first.
        if image.mode not in ("RGB", "L"):
            image = image.convert("RGB")
        pixels = np.asarray(image)
    if pixels.ndim == 2:
        pixels = np.repeat(pixels[..., None], 3, axis=2)
    bits, quality = pdqhash.compute(np.ascontiguousarray(pixels))
    return np.packbits(np.asarray(bits, dtype=np.uint8)).tobytes().hex(), int(quality)
