"""Model versions: kNN never mixes vectors of two models, and a tenant's active model is followed,
on both kNN paths (the `knn` fixture)."""
from __future__ import annotations

import pytest
from sqlalchemy import select

from governance.embedding.backends.gemini.client import GeminiEmbedder
from governance.embedding.backends.hashing import HashingEmbedder
from governance.moderation.pipeline import Context, for_tenant
from governance.storage import repository
from governance.storage.tables import Embedding
from tests.fakes.fake_gemini import FakeGemini
from tests.integration.helpers import knn_path_served, seed, upload

pytestmark = pytest.mark.timeout(60)
BANK = {"cooking": ["Simmer the onions in butter until golden.", "Knead the dough and let it rise."],
        "finance": ["The central bank raised interest rates.", "Bond yields fell after the auction."]}


@pytest.fixture
def fake(monkeypatch):
    for name in ("GEMINI_API_KEY", "GOOGLE_API_KEY", "GOOGLE_GEMINI_BASE_URL", "GOOGLE_GENAI_API_VERSION"):
        monkeypatch.delenv(name, raising=False)
    with FakeGemini(api_key="versions-test-key") as server:
        yield server


def gemini(fake, model: str, dims: int = 768) -> GeminiEmbedder:
    return GeminiEmbedder(api_key=fake.api_key, base_url=fake.base_url, model=model, dims=dims, timeout_s=5,
                          max_retries=0)


@pytest.mark.parametrize("bank_model", ["gemini-embedding-001", "hashing"])
def test_an_upload_under_model_b_never_sees_the_bank_of_model_a(db, knn_settings, knn, tenant, fake, bank_model):
    settings = knn_settings
    bank = gemini(fake, bank_model) if bank_model != "hashing" else HashingEmbedder(768)
    model_b = gemini(fake, "gemini-embedding-2")
    assert bank.dims == model_b.dims == 768 and bank.model_id != model_b.model_id
    seed(db, Context(settings=settings, embedder=bank), tenant, BANK, prefix="ex")

    decision = upload(db, Context(settings=settings, embedder=model_b), tenant, "u1", BANK["cooking"][0])
    assert decision["embedding_model"] == model_b.model_id
    assert decision["neighbors"] == [] and decision["label"] is None  # A's exemplars stay invisible
    # The same bank seen through model A does answer, so the empty result above is the isolation.
    seen_by_a = upload(db, Context(settings=settings, embedder=bank), tenant, "u2", BANK["cooking"][0])
    assert len(seen_by_a["neighbors"]) == 4
    assert knn_path_served(tenant) == knn


def test_the_tenants_active_model_is_used_from_the_next_transaction(db, knn_settings, knn, tenant):
    default = HashingEmbedder(768)
    ctx = Context(settings=knn_settings, embedder=default)
    seed(db, ctx, tenant, BANK, prefix="ex")
    assert for_tenant(db, ctx, tenant).embedder is default  # no row: the process default

    repository.activate_tenant_model(db, tenant, "hashing", 384, "hashing-v1@384")
    switched = for_tenant(db, ctx, tenant).embedder
    assert switched.dims == 384
    assert for_tenant(db, ctx, tenant + "-other").embedder is default  # other tenants unaffected
    seed(db, ctx, tenant, BANK, prefix="new")  # imports follow the tenant's model too
    decision = upload(db, ctx, tenant, "u1", "Simmer the onions in butter.")
    upload_pk = repository.asset_by_id(db, tenant, "u1").id
    assert set(db.scalars(select(Embedding.dims).where(Embedding.asset_pk == upload_pk))) == {384}
    assert decision["neighbors"] and {n["asset_id"] for n in decision["neighbors"]} <= {f"new-{i}" for i in range(4)}
    assert knn_path_served(tenant) == knn

    repository.activate_tenant_model(db, tenant, "hashing", 768, "hashing-v1@768")  # switching back
    assert for_tenant(db, ctx, tenant).embedder is default
