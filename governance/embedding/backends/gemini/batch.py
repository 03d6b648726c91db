"""The Gemini Batch API for embeddings (`client.batches.create_embeddings`): half the price,
answers within 24 hours. Right for backfills such as `governance reembed --batch-api`, wrong for
live moderation.

A companion of gemini.py: requests are built and answers checked by the same GeminiEmbedder
code as online calls, so a batch vector is the same vector an online call would give. On the
wire: `POST {base}/{version}/models/{model}:asyncBatchEmbedContent` with the requests inlined
under `batch.inputConfig.requests.requests[].request`, then `GET {base}/{version}/batches/{id}`
until the job's state is final; the vectors come back in request order under
`metadata.output.inlinedResponses.inlinedResponses[].response.embedding`.
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Sequence

import numpy as np
from google.genai import types

from governance.embedding.backends.gemini.client import GeminiEmbedder
from governance.embedding.protocol import EmbedUsage, EmbeddingError, Task
from governance.ingest.content import Content

SUCCEEDED = "JOB_STATE_SUCCEEDED"
FAILED = frozenset({"JOB_STATE_FAILED", "JOB_STATE_CANCELLED", "JOB_STATE_EXPIRED"})


@dataclass(frozen=True)
class BatchOutcome:
    state: str  # running|succeeded|failed
    vectors: np.ndarray | None = None
    usage: EmbedUsage | None = None
    error: str | None = None


def submit(embedder: GeminiEmbedder, items: Sequence[Content], task: Task, display_name: str | None = None) -> str:
    """Create one batch job for the items; returns the job's name (`batches/…`)."""
    contents = [embedder._to_content(i, item, task) for i, item in enumerate(items)]
    config = types.EmbedContentConfig(output_dimensionality=embedder.dims,
                                      task_type=task.name if embedder.uses_task_type else None)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the SDK marks create_embeddings experimental
            job = embedder._client.batches.create_embeddings(
                model=embedder.model, src={"inlined_requests": {"contents": contents, "config": config}},
                config={"display_name": display_name} if display_name else None)
    except Exception as exc:  # noqa: BLE001 - classified like online calls, unknown ones re-raised
        error = embedder._classify(exc)
        if error is None:
            raise
        raise error from None
    return job.name


def poll(embedder: GeminiEmbedder, name: str, expected: int) -> BatchOutcome:
    """The job's state; once succeeded, its checked, normalised vectors and token count."""
    try:
        job = embedder._client.batches.get(name=name)
    except Exception as exc:  # noqa: BLE001
        error = embedder._classify(exc)
        if error is None:
            raise
        if error.transient:
            return BatchOutcome("running")  # ask again at the next poll
        return BatchOutcome("failed", error=str(error))
    state = job.state.value if job.state is not None else ""
    if state in FAILED:
        return BatchOutcome("failed", error=f"{state}: {job.error.message if job.error else 'no detail'}")
    if state != SUCCEEDED:
        return BatchOutcome("running")
    responses = (job.dest.inlined_embed_content_responses if job.dest else None) or []
    failed = [(i, r.error) for i, r in enumerate(responses) if r.error is not None or r.response is None]
    if failed:
        i, error = failed[0]
        return BatchOutcome("failed", error=f"item {i}: {error.message if error else 'no response'}")
    try:
        vectors = embedder._vectors(types.EmbedContentResponse(embeddings=[r.response.embedding for r in responses]),
                                    expected, 0)
    except EmbeddingError as exc:
        return BatchOutcome("failed", error=str(exc))
    counts = [r.response.token_count for r in responses]
    usage = EmbedUsage(calls=1, prompt_tokens=sum(c or 0 for c in counts), estimated=None in counts)
    return BatchOutcome("succeeded", vectors=vectors, usage=usage)
