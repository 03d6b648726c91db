"""Usage accounting on a real PostgreSQL: spend is written with the vectors it paid for."""
from __future__ import annotations

import pytest
from sqlalchemy import select

from governance.embedding import usage
from governance.embedding.backends.gemini.client import GeminiEmbedder
from governance.embedding.backends.hashing import HashingEmbedder
from governance.moderation.pipeline import Context
from governance.ingest.inbox import accept_events
from governance.moderation.batch_pipeline import process_upload
from governance.storage.embedding_tables import EmbeddingUsage
from tests.fakes.fake_gemini import FakeGemini

pytestmark = pytest.mark.timeout(60)


def usage_rows(db, tenant) -> list[EmbeddingUsage]:
    db.expire_all()
    return list(db.scalars(select(EmbeddingUsage).where(EmbeddingUsage.tenant == tenant)
                           .order_by(EmbeddingUsage.model, EmbeddingUsage.dims)))


def decide(db, ctx, tenant, asset_id, text):
    [(_, event_id)] = accept_events(db, [(0, {"asset_id": asset_id, "tenant": tenant, "text": text})]).new
    return process_upload(db, ctx, tenant, event_id)


@pytest.fixture
def fake(monkeypatch):
    for name in ("GEMINI_API_KEY", "GOOGLE_API_KEY", "GOOGLE_GEMINI_BASE_URL", "GOOGLE_GENAI_API_VERSION"):
        monkeypatch.delenv(name, raising=False)
    with FakeGemini(api_key="usage-test-key") as server:
        yield server


def test_offline_usage_is_recorded_with_the_decision_and_estimated(db, settings, tenant):
    ctx = Context(settings=settings, embedder=HashingEmbedder(768))
    text = "twelve chars" * 10  # 120 bytes, no digits: an estimated 40 tokens
    assert decide(db, ctx, tenant, "u1", text)["embedding_model"] == "hashing-v1@768"
    [row] = usage_rows(db, tenant)
    assert (row.model, row.dims, row.mode) == ("hashing-v1@768", 768, "online")
    assert (row.items, row.cached_items, row.calls, row.prompt_tokens, row.estimated) == (1, 0, 1, 40, True)


def test_a_cache_hit_adds_no_spend(db, settings, tenant):
    ctx = Context(settings=settings, embedder=HashingEmbedder(768))
    decide(db, ctx, tenant, "u1", "the same words twice")
    decide(db, ctx, tenant, "u2", "the same words twice")  # another asset, identical bytes
    [row] = usage_rows(db, tenant)
    assert (row.items, row.cached_items, row.calls) == (1, 1, 1)


def test_a_rolled_back_task_leaves_no_usage(db, settings, tenant):
    ctx = Context(settings=settings, embedder=HashingEmbedder(768))
    savepoint = db.begin_nested()
    decide(db, ctx, tenant, "u1", "rolled back with its vectors")
    savepoint.rollback()
    assert usage_rows(db, tenant) == []


def test_gemini_tokens_come_from_usage_metadata(db, settings, tenant, fake):
    embedder = GeminiEmbedder(api_key=fake.api_key, base_url=fake.base_url, timeout_s=5, max_retries=0)
    ctx = Context(settings=settings, embedder=embedder)
    decide(db, ctx, tenant, "u1", "a sentence for gemini")
    # Prefixed text: one call per task, and the fake's usageMetadata counts len(text)//4 + 1 per part.
    sent = [p["text"] for call in fake.embed_calls for parts in call.parts for p in parts]
    assert len(fake.embed_calls) == 2
    [row] = usage_rows(db, tenant)
    assert (row.model, row.items, row.calls, row.estimated) == ("gemini-embedding-2@768", 2, 2, False)
    assert row.prompt_tokens == sum(len(t) // 4 + 1 for t in sent)
    [line] = usage.usage_report(db, tenant, None)
    assert line.cost_usd == pytest.approx(round(row.prompt_tokens / 1e6 * 0.20, 6))
    [priced] = usage.usage_report(db, tenant, None, {"gemini-embedding-2": 1000.0})
    assert priced.cost_usd == pytest.approx(row.prompt_tokens / 1e3)


def test_identical_content_in_one_batch_is_embedded_once(db, settings, tenant):
    from governance.moderation.exemplar_banks import import_exemplars

    ctx = Context(settings=settings, embedder=HashingEmbedder(768))
    items = [{"asset_id": f"dup-{i}", "tenant": tenant, "text": "one text, three assets", "label": "x"}
             for i in range(3)] + [{"asset_id": "other", "tenant": tenant, "text": "another text", "label": "x"}]
    assert import_exemplars(db, ctx, items).imported == 4
    [row] = usage_rows(db, tenant)
    assert (row.items, row.cached_items, row.calls) == (2, 2, 1)
