"""Model versions: kNN never mixes vectors of two models, and a tenant's active model is followed."""
from __future__ import annotations

import pytest
from sqlalchemy import select

from governance import repository
from governance.banks import import_exemplars
from governance.embedders.gemini import GeminiEmbedder
from governance.embedders.hashing import HashingEmbedder
from governance.models import Embedding
from governance.services import Context, accept_events, for_tenant, process_upload
from tests.fakes.fake_gemini import FakeGemini

pytestmark = pytest.mark.timeout(60)
BANK = [("Simmer the onions in butter until golden.", "cooking"), ("Knead the dough and let it rise.", "cooking"),
        ("The central bank raised interest rates.", "finance"), ("Bond yields fell after the auction.", "finance")]


@pytest.fixture
def fake(monkeypatch):
    for name in ("GEMINI_API_KEY", "GOOGLE_API_KEY", "GOOGLE_GEMINI_BASE_URL", "GOOGLE_GENAI_API_VERSION"):
        monkeypatch.delenv(name, raising=False)
    with FakeGemini(api_key="versions-test-key") as server:
        yield server


def gemini(fake, model: str, dims: int = 768) -> GeminiEmbedder:
    return GeminiEmbedder(api_key=fake.api_key, base_url=fake.base_url, model=model, dims=dims, timeout_s=5,
                          max_retries=0)


def seed(db, ctx, tenant, prefix="ex"):
    items = [{"asset_id": f"{prefix}-{i}", "tenant": tenant, "text": text, "label": label}
             for i, (text, label) in enumerate(BANK)]
    assert import_exemplars(db, ctx, items).imported == len(items)


def decide(db, ctx, tenant, asset_id, text):
    [(_, event_id)] = accept_events(db, [(0, {"asset_id": asset_id, "tenant": tenant, "text": text})]).new
    return process_upload(db, ctx, tenant, event_id)


@pytest.mark.parametrize("bank_model", ["gemini-embedding-001", "hashing"])
def test_an_upload_under_model_b_never_sees_the_bank_of_model_a(db, settings, tenant, fake, bank_model):
    bank = gemini(fake, bank_model) if bank_model != "hashing" else HashingEmbedder(768)
    upload = gemini(fake, "gemini-embedding-2")
    assert bank.dims == upload.dims == 768 and bank.model_id != upload.model_id
    seed(db, Context(settings=settings, embedder=bank), tenant)

    decision = decide(db, Context(settings=settings, embedder=upload), tenant, "u1", BANK[0][0])
    assert decision["embedding_model"] == upload.model_id
    assert decision["neighbors"] == [] and decision["label"] is None  # A's exemplars stay invisible
    # The same bank seen through model A does answer, so the empty result above is the isolation.
    assert len(decide(db, Context(settings=settings, embedder=bank), tenant, "u2", BANK[0][0])["neighbors"]) == 4


def test_the_tenants_active_model_is_used_from_the_next_transaction(db, settings, tenant):
    default = HashingEmbedder(768)
    ctx = Context(settings=settings, embedder=default)
    seed(db, ctx, tenant)
    assert for_tenant(db, ctx, tenant).embedder is default  # no row: the process default

    repository.activate_tenant_model(db, tenant, "hashing", 384, "hashing-v1@384")
    switched = for_tenant(db, ctx, tenant).embedder
    assert switched.dims == 384
    assert for_tenant(db, ctx, tenant + "-other").embedder is default  # other tenants unaffected
    seed(db, ctx, tenant, prefix="new")  # imports follow the tenant's model too
    decision = decide(db, ctx, tenant, "u1", "Simmer the onions in butter.")
    upload_pk = repository.asset_by_id(db, tenant, "u1").id
    assert set(db.scalars(select(Embedding.dims).where(Embedding.asset_pk == upload_pk))) == {384}
    assert decision["neighbors"] and {n["asset_id"] for n in decision["neighbors"]} <= {f"new-{i}" for i in range(4)}

    repository.activate_tenant_model(db, tenant, "hashing", 768, "hashing-v1@768")  # switching back
    assert for_tenant(db, ctx, tenant).embedder is default
