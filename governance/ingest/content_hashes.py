"""The hashes hash banks are matched on: PDQ for images, MD5 and SHA-256 of every upload's bytes.

PDQ (Meta's perceptual photo hash) comes from the `pdqhash` bindings of the reference C++ code, as
`threatexchange` computes it, so a hash here equals one that `threatexchange` or HMA wrote for the
same picture; MD5 and SHA-256 are of the bytes as uploaded (`LoadedAsset.md5`, `.sha256`), which
is what MD5 video lists and SHA-256 lists are made of. vPDQ (video: a PDQ hash, quality and
timestamp per second of frames) comes from threatexchange's VPDQSignal over the `vpdq` bindings,
which build only against the FFmpeg development libraries: without them (`VPDQ_AVAILABLE` false)
video gets no vPDQ hash and vPDQ lines are refused on import.
"""
from __future__ import annotations

import hashlib
import importlib.util
import io
import json
import logging
import os
import tempfile
from dataclasses import dataclass

import numpy as np

from governance.ingest.assets import LoadedAsset

log = logging.getLogger(__name__)
VPDQ_AVAILABLE = importlib.util.find_spec("vpdq") is not None
SIGNAL_TYPES = ("pdq", "md5", "sha256") + (("vpdq",) if VPDQ_AVAILABLE else ())
HEX_LENGTH = {"pdq": 64, "md5": 32, "sha256": 64}
# Below this quality PDQ's authors call a hash too unreliable to match on (threatexchange's
# PdqSignal.QUALITY_THRESHOLD): flat or tiny pictures, whose hashes collide.
PDQ_QUALITY_THRESHOLD = 50


@dataclass(frozen=True)
class ContentHash:
    signal_type: str  # pdq|md5|sha256|vpdq
    signal: str  # lowercase hex; for vpdq threatexchange's JSON list of "pdq_hex,quality,timestamp"
    quality: int | None = None  # PDQ's 0-100 quality; None for the byte hashes and vpdq (per frame)


def vpdq_key(signal: str) -> str:
    """The stored key of a vPDQ hash (its features are too long to index): SHA-256 of its JSON."""
    return hashlib.sha256(signal.encode()).hexdigest()


def canonical_vpdq(features: list[str]) -> str:
    return json.dumps(features)


def content_hashes(loaded: LoadedAsset) -> list[ContentHash]:
    """Every hash of one loaded upload or exemplar: SHA-256 and MD5 always, PDQ for images."""
    hashes = [ContentHash("sha256", loaded.sha256)]
    if loaded.md5:
        hashes.append(ContentHash("md5", loaded.md5))
    if loaded.content.modality == "image" and loaded.content.data:
        signal, quality = pdq_hash(loaded.content.data)
        hashes.append(ContentHash("pdq", signal, quality))
    if loaded.content.modality == "video" and loaded.content.data and VPDQ_AVAILABLE:
        signal = vpdq_hash(loaded.content.data)
        if signal is not None:
            hashes.append(ContentHash("vpdq", signal))
    return hashes


def vpdq_hash(video_bytes: bytes) -> str | None:
    """threatexchange's vPDQ signal of a video file ingest has already validated (one frame a
    second), or None when the bindings cannot read it (the upload is still decided: it only goes
    without a vPDQ hash). The bindings read a path, so the bytes go through a private temporary file."""
    from threatexchange.extensions.vpdq.vpdq import VPDQSignal

    handle, path = tempfile.mkstemp(suffix=".video")
    try:
        with os.fdopen(handle, "wb") as out:
            out.write(video_bytes)
        features = json.loads(VPDQSignal.hash_from_file(path))
    except Exception as exc:  # noqa: BLE001 - the bindings raise a bare Exception for a video they cannot read
        log.warning("no vPDQ hash: %s", str(exc)[:200])
        return None
    finally:
        os.unlink(path)
    return canonical_vpdq(features) if features else None


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
