"""The moderation pipeline on a real PostgreSQL with pgvector, through the service layer.

The tests that decide run on both kNN paths (the `knn` fixture): the in-process bank cache and HNSW."""
import threading

from sqlalchemy import func, select, text

from governance.embedding.backends.hashing import HashingEmbedder
from governance.ingest import inbox
from governance.moderation.pipeline import Context
from governance.moderation.batch_pipeline import process_upload
from governance.storage import repository
from governance.storage.tables import Decision, Embedding, Event, OutboxMessage
from tests.integration.helpers import knn_path_served, publish, seed


def test_text_upload_gets_the_label_of_its_neighbours(db, knn_ctx, knn, tenant):
    ctx = knn_ctx
    seed(db, ctx, tenant)
    publish(db, {"asset_id": "u1", "tenant": tenant, "text": "Fry the garlic in butter and add fresh thyme."})
    [(t, event_id)] = [(tenant, e.event_id) for e in db.scalars(select(Event).where(Event.tenant == tenant))]
    decision = process_upload(db, ctx, tenant, event_id)
    assert decision["label"] == "cooking"
    assert decision["action"] == "allow"  # cooking is an allow label: suggested or confirmed, it is allowed
    assert decision["embedding_model"] == ctx.embedder.model_id
    assert len(decision["neighbors"]) == 6 and decision["neighbors"][0]["label"] == "cooking"
    assert set(decision["anomaly"]) == {"score", "threshold", "flagged"}
    assert db.scalar(select(Event.status).where(Event.tenant == tenant)) == "decided"
    outbox = db.scalars(select(OutboxMessage).where(OutboxMessage.tenant == tenant)).all()
    assert [m.message_id for m in outbox] == [f"decision:{tenant}:{event_id}"]
    assert knn_path_served(tenant) == knn


def test_processing_twice_yields_one_decision(db, knn_ctx, knn, tenant):
    ctx = knn_ctx
    seed(db, ctx, tenant)
    [(_, event_id)] = publish(db, {"asset_id": "u1", "tenant": tenant, "text": "Interest rates and bond yields"})
    assert process_upload(db, ctx, tenant, event_id)["label"] == "finance"
    assert process_upload(db, ctx, tenant, event_id) is None
    assert db.scalar(select(func.count()).select_from(Decision).where(Decision.tenant == tenant)) == 1
    assert knn_path_served(tenant) == knn


def test_republishing_an_event_is_not_a_new_event(db, tenant):
    event = {"asset_id": "u1", "tenant": tenant, "text": "x"}
    assert len(publish(db, event)) == 1
    assert publish(db, event) == []


def test_bad_event_is_rejected_with_a_reason(db, ctx, tenant):
    [(_, event_id)] = publish(db, {"asset_id": "nothing", "tenant": tenant})
    decision = process_upload(db, ctx, tenant, event_id)
    assert decision["action"] == "reject" and decision["reason"].startswith("no_content")


def test_exemplars_of_another_tenant_are_invisible(db, knn_ctx, knn, tenant):
    ctx = knn_ctx
    seed(db, ctx, tenant + "-other")
    [(_, event_id)] = publish(db, {"asset_id": "u1", "tenant": tenant, "text": "Fry the garlic in butter."})
    decision = process_upload(db, ctx, tenant, event_id)
    assert decision["neighbors"] == [] and decision["label"] is None and decision["action"] == "review"
    assert knn_path_served(tenant) == knn  # the cache holds this tenant's (empty) bank, not the other's


def test_knn_query_uses_the_bank_hnsw_index(db, ctx, tenant):
    seed(db, ctx, tenant)
    # With the planner free to choose, a tiny tenant is rightly served by a btree scan and a sort;
    # forbidding both shows the HNSW index can serve exactly this query shape.
    db.execute(text("SET LOCAL enable_seqscan = off"))
    db.execute(text("SET LOCAL enable_sort = off"))
    vector = ctx.embedder.embed_texts(["butter"])[0]
    literal = "[" + ",".join(map(str, vector)) + "]"
    plan = "\n".join(r[0] for r in db.execute(text(
        "EXPLAIN SELECT asset_pk FROM embeddings e WHERE e.dims = 768 AND e.in_bank AND e.tenant = :t "
        "AND e.model = :m AND e.task = 'any' ORDER BY e.vector::vector(768) <=> CAST(:q AS vector(768)) LIMIT 10"
    ), {"t": tenant, "m": ctx.embedder.model_id, "q": literal}))
    assert "ix_embeddings_bank_hnsw_768" in plan


def test_above_2000_dims_vectors_are_stored_as_halfvec(db, knn_settings, knn, tenant):
    ctx = Context(settings=knn_settings, embedder=HashingEmbedder(3072))
    seed(db, ctx, tenant)
    [(_, event_id)] = publish(db, {"asset_id": "u1", "tenant": tenant, "text": "Knead the dough and let it rise"})
    assert process_upload(db, ctx, tenant, event_id)["label"] == "cooking"
    row = db.execute(select(Embedding.vector, Embedding.vector_half)
                     .where(Embedding.tenant == tenant, Embedding.dims == 3072).limit(1)).one()
    assert row.vector is None and row.vector_half is not None
    assert knn_path_served(tenant) == knn


def test_poison_event_is_dead_lettered_after_max_attempts(db, ctx, tenant):
    [(_, event_id)] = publish(db, {"asset_id": "u1", "tenant": tenant, "text": "x"})
    for _ in range(ctx.settings.max_attempts):
        assert inbox.count_delivery(db, ctx.settings, tenant, event_id)
    assert not inbox.count_delivery(db, ctx.settings, tenant, event_id)
    [letter] = repository.dead_letters(db, tenant)
    assert letter.reason.startswith("max_attempts") and letter.attempts == ctx.settings.max_attempts
    assert process_upload(db, ctx, tenant, event_id) is None  # dead events are never decided


class CountingEmbedder(HashingEmbedder):
    def __init__(self):
        super().__init__(768)
        self.calls = 0

    def embed(self, items, task):
        self.calls += 1
        return super().embed(items, task)


def test_concurrent_duplicates_make_one_decision_and_one_embedding_call(database_url, knn_settings, knn, tenant):
    from governance.storage.db import session_factory, transaction

    factory = session_factory(database_url)
    ctx = Context(settings=knn_settings, embedder=CountingEmbedder())
    with transaction(factory) as session:
        seed(session, ctx, tenant)
        publish(session, {"asset_id": "u1", "tenant": tenant, "text": "A brand new sentence about bread dough"},
                {"asset_id": "u2", "tenant": tenant, "text": "A brand new sentence about bread dough"})
        events = [e.event_id for e in session.scalars(select(Event).where(Event.tenant == tenant))]
    ctx.embedder.calls = 0
    barrier = threading.Barrier(4)
    errors = []

    def run(event_id):
        try:
            barrier.wait()
            with transaction(factory) as session:
                process_upload(session, ctx, tenant, event_id)
        except Exception as exc:  # surfaced below
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(e,)) for e in events for _ in range(2)]
    [t.start() for t in threads]
    [t.join(30) for t in threads]
    assert not errors
    with transaction(factory) as session:
        counts = session.execute(select(Decision.event_id, func.count()).where(Decision.tenant == tenant)
                                 .group_by(Decision.event_id)).all()
    assert sorted(c for _, c in counts) == [1, 1]
    assert ctx.embedder.calls == 1  # same bytes in two events: embedded once
    assert knn_path_served(tenant) == knn


def test_a_file_larger_than_the_bind_parameter_limit_is_accepted(db, tenant):
    events = [{"asset_id": f"a{i}", "tenant": tenant, "text": "x"} for i in range(12_000)]
    assert len(publish(db, *events)) == 12_000
