"""The console's view of stored cluster reports on a real PostgreSQL: the map's points carry their
asset's latest decision and excerpt, and another tenant's report is not found."""
import pytest

from governance.clustering.report_views import compare_reports, report_map
from governance.embedding.backends.hashing import HashingEmbedder
from governance.ingest.inbox import accept_events
from governance.moderation.batch_pipeline import process_upload
from governance.moderation.pipeline import Context
from governance.storage import repository


@pytest.fixture
def ctx(settings):
    return Context(settings=settings, embedder=HashingEmbedder(768))


def _report(cluster_sizes: dict[str, int], points: list[dict]) -> dict:
    return {"clusters": [{"cluster_id": c, "size": n, "members": [], "status": "new"} for c, n in cluster_sizes.items()],
            "noise": [], "alerts": [], "map": points, "generated_at": "2026-12-01T00:00:00+00:00", "items": len(points)}


def test_the_map_names_each_points_latest_decision_and_tenants_stay_apart(db, ctx, tenant):
    events = [{"event_id": "e-old", "asset_id": "a-1", "tenant": tenant, "text": "Simmer the onions <b>in</b> butter."},
              {"event_id": "e-new", "asset_id": "a-1", "tenant": tenant, "text": "Simmer the onions <b>in</b> butter."},
              {"event_id": "e-2", "asset_id": "a-2", "tenant": tenant, "text": "Bond yields fell sharply today."}]
    for _, event_id in accept_events(db, list(enumerate(events))).new:
        process_upload(db, ctx, tenant, event_id)
    older = repository.store_cluster_report(db, tenant, "m", _report({"c-a": 3, "c-gone": 2}, []))
    newer = repository.store_cluster_report(db, tenant, "m", _report({"c-a": 5, "c-new": 4}, [
        {"asset_id": "a-1", "x": 0.0, "y": 0.0, "cluster_id": "c-a"},
        {"asset_id": "a-2", "x": 1.0, "y": 2.0, "cluster_id": None}]))

    drawn = report_map(db, tenant)
    assert drawn.report_id == newer
    by_asset = {p.asset_id: p for p in drawn.points}
    assert by_asset["a-1"].event_id == "e-new" and by_asset["a-1"].cluster_id == "c-a"
    assert by_asset["a-1"].excerpt == "Simmer the onions <b>in</b> butter."  # plain text; the template escapes it
    assert by_asset["a-2"].cluster_id is None and by_asset["a-2"].colour == "#b0b0b0"
    assert [p.asset_id for p in drawn.points] == ["a-2", "a-1"]  # noise drawn first, underneath
    assert report_map(db, tenant, older).points == []

    compared = compare_reports(db, tenant, older, newer)
    assert compared["new"] == [{"cluster_id": "c-new", "size": 4}]
    assert compared["grown"] == [{"cluster_id": "c-a", "before": 3, "after": 5}]
    assert compared["gone"] == [{"cluster_id": "c-gone", "size": 2}] and compared["shrunk"] == []

    other = tenant + "-b"
    repository.enter_tenant(db, other)
    assert report_map(db, other) is None and report_map(db, other, newer) is None
    assert compare_reports(db, other, older, newer) is None
    assert report_map(db, tenant, newer) is None  # row-level security: even naming the tenant finds nothing
