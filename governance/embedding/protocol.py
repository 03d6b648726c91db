"""The one interface every embedding backend implements."""
from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol, Sequence

import numpy as np
from governance.ingest.content import Content


class Task(StrEnum):
    """What a vector is for; text gets the matching Gemini Embedding 2 prefix."""

    CLASSIFICATION = "classification"
    CLUSTERING = "clustering"


def task_prefixed(task: Task, text: str) -> str:
    """Gemini Embedding 2 takes no task_type: the task goes into the text itself."""
    return f"task: {task.value} | query: {text}"


@dataclass(frozen=True)
class Limits:
    """What one embedding request may hold, as each backend states it; None means unbounded.

    Content over a limit is split into windows, one request each (governance.embedding.window_embedding), and at
    most `max_windows` of them per asset, so one upload cannot cost unbounded calls.
    """

    text_tokens: int | None = None
    pdf_pages: int | None = None
    audio_seconds: float | None = None
    video_seconds: float | None = None
    max_windows: int = 16


NO_LIMITS = Limits()


class EmbeddingError(Exception):
    """An embedder refused or failed an input. `transient` errors are retried, others rejected."""

    def __init__(self, message: str, *, transient: bool = False):
        super().__init__(message)
        self.transient = transient


class UnusableVector(EmbeddingError):
    """The embedder answered something that is not a usable vector (NaN, Inf, zeros, wrong size or
    count): the provider's fault, not the input's, so callers dead-letter rather than reject; never
    transient, because asking again gets the same garbage."""


@dataclass
class EmbedUsage:
    """What one embed() call cost, for usage accounting. Embedders that can tell (`reports_usage`)
    fill it from the provider's answer; for the others the caller estimates."""

    calls: int = 0
    prompt_tokens: int = 0
    estimated: bool = False


class Embedder(Protocol):
    model_id: str  # stored on every vector row; vectors of two model ids are never compared
    dims: int
    modalities: frozenset[str]

    def embed(self, items: Sequence[Content], task: Task) -> np.ndarray:
        """Return an (len(items), dims) float32 array of L2-normalised rows, one per item."""
        ...


def l2_normalise(matrix: np.ndarray) -> np.ndarray:
    matrix = np.asarray(matrix, dtype=np.float32)
    norms = np.linalg.norm(matrix, axis=1, keepdims=True)
    return matrix / np.maximum(norms, 1e-12)
