"""`reembed --batch-api` against the fake Gemini's Batch API: jobs survive an interrupted run."""
from __future__ import annotations

import base64
import io

import numpy as np
import pytest
from PIL import Image
from sqlalchemy import select

from governance.embedding.backends.gemini.client import GeminiEmbedder
from governance.embedding.backends.hashing import HashingEmbedder
from governance.embedding.protocol import Task, task_prefixed
from governance.embedding.reembed import reembed
from governance.embedding.tenant_models import forget_embedders
from governance.embedding.usage import usage_report
from governance.moderation.exemplar_banks import import_exemplars
from governance.moderation.pipeline import Context, for_tenant
from governance.storage import repository
from governance.storage.embedding_tables import EmbeddingBatchJob, EmbeddingUsage
from tests.fakes.fake_gemini import FakeGemini, expected_vector

pytestmark = pytest.mark.timeout(60)


class Interrupted(Exception):
    pass


@pytest.fixture
def fake(monkeypatch):
    for name in ("GEMINI_API_KEY", "GOOGLE_API_KEY", "GOOGLE_GEMINI_BASE_URL", "GOOGLE_GENAI_API_VERSION"):
        monkeypatch.delenv(name, raising=False)
    with FakeGemini(api_key="batch-test-key", batch_polls=2) as server:
        # Workers build the switched-to embedder from the environment, as in production.
        monkeypatch.setenv("GEMINI_API_KEY", server.api_key)
        monkeypatch.setenv("GOOGLE_GEMINI_BASE_URL", server.base_url)
        forget_embedders()
        yield server
        forget_embedders()


def png() -> str:
    buffer = io.BytesIO()
    Image.new("RGB", (16, 16), (10, 120, 200)).save(buffer, format="PNG")
    return base64.b64encode(buffer.getvalue()).decode()


def interrupt(seconds: float) -> None:
    raise Interrupted  # the run stops while its jobs are still running


def test_batch_api_reembed_resumes_its_jobs_and_switches(db, settings, tenant, fake, batches):
    ctx = Context(settings=settings, embedder=HashingEmbedder(768))
    items = [{"asset_id": "a", "tenant": tenant, "text": "Simmer the onions.", "label": "cooking"},
             {"asset_id": "a-copy", "tenant": tenant, "text": "Simmer the onions.", "label": "cooking"},
             {"asset_id": "b", "tenant": tenant, "text": "Rates rose again.", "label": "finance"},
             {"asset_id": "img", "tenant": tenant, "data_b64": png(), "label": "blue"}]
    assert import_exemplars(db, ctx, items).imported == 4
    target = GeminiEmbedder(api_key=fake.api_key, base_url=fake.base_url, timeout_s=5, max_retries=0)

    with pytest.raises(Interrupted):
        reembed(batches, settings, tenant, "gemini-embedding-2", target, batch_api=True, wait_s=0.01,
                sleep=interrupt)
    assert len(fake.batch_jobs) == 2  # text+image for classification, text for clustering
    assert {job.state for job in db.scalars(select(EmbeddingBatchJob).where(EmbeddingBatchJob.tenant == tenant))
            } == {"open"}
    assert for_tenant(db, ctx, tenant).embedder is ctx.embedder

    result = reembed(batches, settings, tenant, "gemini-embedding-2", target, batch_api=True, wait_s=0.01,
                     sleep=lambda s: None)
    assert len(fake.batch_jobs) == 2  # the interrupted run's jobs were polled, not submitted again
    assert fake.embed_calls == []  # nothing went through the online endpoint
    assert (result.embedded, result.remaining, result.switched, result.batch_failures) == (4, 0, True, [])
    assert for_tenant(db, ctx, tenant).embedder.model_id == "gemini-embedding-2@768"

    # A batch vector is the vector an online call gives: the fake's, for the prefixed text, normalised.
    parts = [{"text": task_prefixed(Task.CLASSIFICATION, "Simmer the onions.")}]
    expected = expected_vector(parts, 768)
    [stored] = [v for task, v in repository.asset_vectors(db, tenant, repository.asset_by_id(db, tenant, "a").id,
                                                          target.model_id, 768) if task == "classification"]
    assert np.allclose(stored, expected / np.linalg.norm(expected), atol=1e-5)

    [row] = db.scalars(select(EmbeddingUsage).where(EmbeddingUsage.tenant == tenant,
                                                    EmbeddingUsage.model == target.model_id))
    sent = [r["content"]["parts"] for job in fake.batch_jobs.values() for r in job["requests"]]
    assert (row.mode, row.items, row.cached_items, row.estimated) == ("batch", 5, 2, False)
    assert row.items == len(sent) and row.prompt_tokens == sum(sum(job["tokens"]) for job in fake.batch_jobs.values())
    [line] = [x for x in usage_report(db, tenant, None) if x.model == target.model_id]
    assert line.cost_usd == pytest.approx(round(row.prompt_tokens / 1e6 * 0.10, 6))  # half of 0.20


def test_a_failed_batch_job_leaves_its_assets_pending_and_the_tenant_unswitched(db, settings, tenant, fake,
                                                                               batches):
    ctx = Context(settings=settings, embedder=HashingEmbedder(768))
    items = [{"asset_id": f"x{i}", "tenant": tenant, "text": f"sentence number {i}", "label": "l"} for i in range(3)]
    assert import_exemplars(db, ctx, items).imported == 3
    target = GeminiEmbedder(api_key=fake.api_key, base_url=fake.base_url, timeout_s=5, max_retries=0)
    fake.fail_batches = True
    failed = reembed(batches, settings, tenant, "gemini-embedding-2", target, batch_api=True, wait_s=0.01,
                     sleep=lambda s: None)
    assert (failed.embedded, failed.remaining, failed.switched) == (0, 3, False)
    assert len(failed.batch_failures) == 2 and all("BATCH_STATE_FAILED" in f or "JOB_STATE_FAILED" in f
                                                   for f in failed.batch_failures)
    assert for_tenant(db, ctx, tenant).embedder is ctx.embedder

    fake.fail_batches = False
    retried = reembed(batches, settings, tenant, "gemini-embedding-2", target, batch_api=True, wait_s=0.01,
                      sleep=lambda s: None)
    assert len(fake.batch_jobs) == 4  # submitted again: the failed jobs are not polled twice
    assert (retried.embedded, retried.remaining, retried.switched) == (3, 0, True)
