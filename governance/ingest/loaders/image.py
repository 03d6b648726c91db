"""Images: parsed only by the formats we accept, with Pillow's decompression-bomb limit on.

The pixel memory is checked against the upload budget before any pixel is decoded; a full load
then catches truncated data. GIF, WebP and BMP are converted to PNG.
"""
from __future__ import annotations

import io
import warnings

from governance.ingest import media
from governance.ingest.content import Content
from governance.ingest.loaders import Loaded
from governance.ingest.rejection import RejectedInput
from governance.platform.config import Settings

PILLOW_FORMAT = {"image/png": "PNG", "image/jpeg": "JPEG", "image/gif": "GIF", "image/webp": "WEBP",
                 "image/bmp": "BMP"}
NATIVE = frozenset({"image/png", "image/jpeg"})


def load(data: bytes, sniffed: str, settings: Settings) -> Loaded:
    _validate(data, PILLOW_FORMAT[sniffed], settings)
    if sniffed in NATIVE:
        return Loaded(Content(modality="image", mime_type=sniffed, data=data))
    return Loaded(Content(modality="image", mime_type="image/png",
                          data=media.image_to_png(data, PILLOW_FORMAT[sniffed])))


def _validate(data: bytes, pillow_format: str, settings: Settings) -> None:
    from PIL import Image

    Image.MAX_IMAGE_PIXELS = settings.max_image_pixels
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data), formats=[pillow_format]) as image:
                needed = media.image_memory(image.width, image.height, image.mode)
                if needed > settings.max_upload_memory_mb * media.MIB:
                    raise media.too_large(f"{image.width}x{image.height} {image.mode} image "
                                          f"({image.width * image.height} pixels)", needed,
                                          settings.max_upload_memory_mb)
                image.verify()
            # verify() does not decode pixels; a full load catches truncated data.
            with Image.open(io.BytesIO(data), formats=[pillow_format]) as image:
                image.load()
    except media.MediaError as exc:
        raise RejectedInput(str(exc)) from exc
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise RejectedInput(f"decompression_bomb: {exc}") from exc
    except Image.UnidentifiedImageError as exc:
        raise RejectedInput(f"corrupt_image: not a readable {pillow_format} file") from exc
    except (OSError, SyntaxError, ValueError) as exc:
        raise RejectedInput(f"corrupt_image: {exc}") from exc
