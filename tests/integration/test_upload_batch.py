"""Batched decisions (governance/moderation/batch_pipeline.py) on a real PostgreSQL with pgvector; the tests that
decide run on both kNN paths (the `knn` fixture)."""
import numpy as np
import pytest
from sqlalchemy import func, select, text

from governance.embedding.backends.hashing import HashingEmbedder
from governance.embedding.protocol import EmbeddingError, Task
from governance.moderation.pipeline import Context
from governance.moderation.batch_pipeline import process_upload, process_uploads
from governance.storage import repository
from governance.storage.tables import Asset, DeadLetter, Decision, Embedding, Event, OutboxMessage
from tests.integration.helpers import knn_path_served, publish, seed

TEXTS = ["Fry the garlic in butter and add fresh thyme.", "Bond yields fell after the auction.",
         "Let the dough rise in a warm kitchen.", "Quarterly revenue beat the forecasts."]
COMPARED = ("asset_id", "action", "label", "score", "labels", "anomaly", "neighbors", "reason", "embedding_model",
            "policy_version", "bank_version")


class CountingEmbedder(HashingEmbedder):
    """The hashing embedder, counting calls and items; texts containing "garbage" come back as NaN."""

    def __init__(self):
        super().__init__(768)
        self.calls, self.items = 0, 0

    def embed(self, items, task):
        self.calls += 1
        self.items += len(items)
        vectors = super().embed(items, task)
        for i, item in enumerate(items):
            if "garbage" in (item.text or ""):
                vectors[i] = np.nan
        return vectors


@pytest.fixture
def ctx(settings):
    return Context(settings=settings, embedder=CountingEmbedder())


@pytest.fixture
def knn_ctx(knn_settings):
    return Context(settings=knn_settings, embedder=CountingEmbedder())


def events(tenant, texts=TEXTS):
    return [{"asset_id": f"u{i}", "tenant": tenant, "text": t} for i, t in enumerate(texts)]


def test_a_batch_decides_exactly_what_one_event_at_a_time_decides(db, knn_ctx, knn, tenant):
    ctx = knn_ctx
    singles, batched = tenant + "-single", tenant + "-batch"
    for t in (singles, batched):
        seed(db, ctx, t)
    one_by_one = [process_upload(db, ctx, t, e) for t, e in publish(db, *events(singles))]
    ctx.embedder.calls = 0
    result = process_uploads(db, ctx, batched, [e for _, e in publish(db, *events(batched))])
    assert ctx.embedder.calls == 1  # one embedding call for the whole batch
    by_asset = {d["asset_id"]: d for d in result.decisions}
    assert len(by_asset) == len(TEXTS)
    for single in one_by_one:
        assert {c: by_asset[single["asset_id"]][c] for c in COMPARED} == {c: single[c] for c in COMPARED}
    outbox = db.scalars(select(OutboxMessage.message_id).where(OutboxMessage.tenant == batched)).all()
    assert sorted(outbox) == sorted(f"decision:{batched}:{d['event_id']}" for d in result.decisions)
    assert set(db.scalars(select(Event.status).where(Event.tenant == batched))) == {"decided"}
    assert (knn_path_served(singles), knn_path_served(batched)) == (knn, knn)


def test_bad_inputs_in_a_batch_are_rejected_or_dead_lettered_and_the_others_decided(db, knn_ctx, knn, tenant):
    ctx = knn_ctx
    seed(db, ctx, tenant)
    batch = events(tenant) + [{"asset_id": "empty", "tenant": tenant},
                              {"asset_id": "nan", "tenant": tenant, "text": "garbage from the provider"}]
    keys = publish(db, *batch)
    ctx.embedder.calls = 0
    result = process_uploads(db, ctx, tenant, [e for _, e in keys])
    by_asset = {d["asset_id"]: d for d in result.decisions}
    assert set(by_asset) == {f"u{i}" for i in range(len(TEXTS))} | {"empty"}
    assert by_asset["empty"]["action"] == "reject" and by_asset["empty"]["reason"].startswith("no_content")
    assert all(by_asset[f"u{i}"]["action"] != "reject" for i in range(len(TEXTS)))
    [letter] = db.scalars(select(DeadLetter).where(DeadLetter.tenant == tenant)).all()
    assert letter.reason.startswith("invalid_embedding") and result.dead_lettered == [letter.event_id]
    # The NaN spoilt the batch call; the items were then embedded one by one to find it.
    assert ctx.embedder.calls == 1 + len(TEXTS) + 1
    nan_asset_vectors = db.scalar(select(func.count()).select_from(Embedding).where(
        Embedding.tenant == tenant, Embedding.in_bank.is_(False)))
    assert nan_asset_vectors == len(TEXTS)  # no vector stored for the dead letter
    assert knn_path_served(tenant) == knn


def test_running_a_batch_twice_yields_one_decision_per_event(db, ctx, tenant):
    seed(db, ctx, tenant)
    ids = [e for _, e in publish(db, *events(tenant))]
    assert len(process_uploads(db, ctx, tenant, ids[:2]).decisions) == 2
    again = process_uploads(db, ctx, tenant, ids + ["not-in-the-inbox"])
    assert len(again.decisions) == len(ids) - 2
    assert sorted(again.skipped) == sorted(ids[:2] + ["not-in-the-inbox"])
    counts = db.execute(select(Decision.event_id, func.count()).where(Decision.tenant == tenant)
                        .group_by(Decision.event_id)).all()
    assert sorted(n for _, n in counts) == [1] * len(ids)


def test_identical_contents_in_a_batch_are_embedded_once(db, knn_ctx, knn, tenant):
    ctx = knn_ctx
    seed(db, ctx, tenant)
    ctx.embedder.calls = ctx.embedder.items = 0
    same = [{"asset_id": f"twin{i}", "tenant": tenant, "text": "Exactly the same words"} for i in range(3)]
    result = process_uploads(db, ctx, tenant, [e for _, e in publish(db, *same, *events(tenant))])
    assert len(result.decisions) == 3 + len(TEXTS)
    assert (ctx.embedder.calls, ctx.embedder.items) == (1, 1 + len(TEXTS))
    assert knn_path_served(tenant) == knn


def test_the_batch_delivery_count_leaves_redelivered_events_to_their_own_tasks(db, ctx, tenant):
    ids = [e for _, e in publish(db, *events(tenant))]
    first = {e: (status, attempts, counted)
             for e, status, attempts, counted in repository.count_batch_delivery(db, tenant, ids[:3])}
    assert first == {e: ("accepted", 1, True) for e in ids[:3]}
    db.execute(text("UPDATE events SET status = 'decided' WHERE tenant = :t AND event_id = :e"),
               {"t": tenant, "e": ids[0]})
    second = {e: (status, attempts, counted)
              for e, status, attempts, counted in repository.count_batch_delivery(db, tenant, ids)}
    assert second[ids[0]] == ("decided", 2, True)  # an outcome: counted, as a duplicate delivery
    assert second[ids[1]] == second[ids[2]] == ("accepted", 1, False)  # delivered before: not counted here
    assert second[ids[3]] == ("accepted", 1, True)


def test_batched_knn_matches_one_query_per_vector(db, ctx, tenant):
    seed(db, ctx, tenant)
    embedder = ctx.embedder
    vectors = list(embedder.embed_texts(TEXTS))
    many = repository.nearest_exemplars(db, tenant, embedder.model_id, embedder.dims, "any", vectors, 4,
                                        ef_search=500, iterative_scan="relaxed_order")
    one_by_one = [repository.nearest_exemplars(db, tenant, embedder.model_id, embedder.dims, "any", [v], 4,
                                               ef_search=500, iterative_scan="relaxed_order")[0] for v in vectors]
    assert [[n.asset_id for n in found] for found in many] == [[n.asset_id for n in found] for found in one_by_one]
    assert all(len(found) == 4 for found in many)
    assert db.scalar(text("SHOW hnsw.ef_search")) == "500"


def test_the_cached_bank_answers_as_the_hnsw_query_and_follows_bank_versions(db, ctx, tenant):
    from governance.moderation import knn_cache
    from governance.moderation.exemplar_banks import import_exemplars

    seed(db, ctx, tenant)
    embedder = ctx.embedder
    vectors = list(embedder.embed_texts(TEXTS))
    version = repository.bank_version(db, tenant)
    cache = knn_cache.BankCache(max_vectors=100)
    bank = cache.get(db, tenant, embedder.model_id, embedder.dims, "any", version)
    from_sql = repository.nearest_exemplars(db, tenant, embedder.model_id, embedder.dims, "any", vectors, 4,
                                            ef_search=500, iterative_scan="relaxed_order")
    exact = knn_cache.exact_neighbors(bank, vectors, 4)
    assert [[n.asset_id for n in found] for found in exact] == [[n.asset_id for n in found] for found in from_sql]
    assert [[round(n.distance, 5) for n in f] for f in exact] == [[round(n.distance, 5) for n in f] for f in from_sql]
    # A bank change bumps the version: the next lookup at the new version sees the new exemplar.
    import_exemplars(db, ctx, [{"asset_id": "new", "tenant": tenant, "text": TEXTS[0], "label": "cooking"}])
    newer = repository.bank_version(db, tenant)
    assert newer > version
    assert cache.get(db, tenant, embedder.model_id, embedder.dims, "any", version) is bank  # still that version
    [found] = knn_cache.exact_neighbors(cache.get(db, tenant, embedder.model_id, embedder.dims, "any", newer),
                                         vectors[:1], 1)
    assert [n.asset_id for n in found] == ["new"] and found[0].distance < 1e-5
    # A bank larger than the cache is not held: the caller searches it with HNSW instead.
    assert knn_cache.BankCache(max_vectors=3).get(db, tenant, embedder.model_id, embedder.dims, "any", newer) is None


def test_an_exemplar_import_rejects_only_the_item_with_an_unusable_vector(db, ctx, tenant):
    from governance.moderation.exemplar_banks import import_exemplars

    items = [{"asset_id": f"x{i}", "tenant": tenant, "text": t, "label": "any"} for i, t in enumerate(TEXTS)]
    items.insert(2, {"asset_id": "nan", "tenant": tenant, "text": "garbage from the provider", "label": "any"})
    ctx.embedder.calls = 0
    result = import_exemplars(db, ctx, items)
    assert (result.imported, result.rejected) == (len(TEXTS), [("nan", "invalid_embedding: NaN or Inf in vector")])
    # The NaN spoilt the batch call; the items were then embedded one by one to find it.
    assert ctx.embedder.calls == 1 + len(TEXTS) + 1
    stored = db.scalars(select(Asset.asset_id).join(Embedding, Embedding.asset_pk == Asset.id).where(
        Asset.tenant == tenant, Embedding.in_bank)).all()
    assert sorted(stored) == [f"x{i}" for i in range(len(TEXTS))]


class RefusingEmbedder(CountingEmbedder):
    """Refuses texts containing "refused" (permanently) or, while `busy`, every call (transiently)."""

    busy = False

    def embed(self, items, task):
        if self.busy:
            raise EmbeddingError("rate_limited: try later", transient=True)
        if any("refused" in (item.text or "") for item in items):
            raise EmbeddingError("invalid_input: refused by the provider")
        return super().embed(items, task)


def test_embed_each_fails_only_the_refused_item_and_lets_a_transient_error_through(db, settings, tenant):
    from governance.embedding.vector_cache import embed_each
    from governance.ingest.assets import load
    from governance.ingest.events import UploadEvent

    embedder = RefusingEmbedder()
    texts = [TEXTS[0], "refused words", TEXTS[1], TEXTS[0]]
    assets = [load(UploadEvent.parse({"asset_id": f"a{i}", "tenant": tenant, "text": t}), settings)
              for i, t in enumerate(texts)]
    outcomes = embed_each(db, embedder, tenant, assets, Task.CLASSIFICATION)
    assert [str(o) if isinstance(o, EmbeddingError) else "vector" for o in outcomes] == [
        "vector", "invalid_input: refused by the provider", "vector", "vector"]
    assert embedder.calls == 2  # refused calls are not counted: one per other distinct content (a3 repeats a0)
    embedder.busy = True
    with pytest.raises(EmbeddingError) as raised:
        embed_each(db, embedder, tenant, assets[1:2], Task.CLASSIFICATION)
    assert raised.value.transient
