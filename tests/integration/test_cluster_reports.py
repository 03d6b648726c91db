"""Cluster reports on ordinary data that once made them fail, end to end through build_and_store."""
import base64
import json

import pytest
from sqlalchemy import select

from governance.clustering import stored_reports
from governance.embedding.backends.hashing import HashingEmbedder
from governance.moderation.pipeline import Context
from governance.ingest.inbox import accept_events
from governance.moderation.batch_pipeline import process_upload
from governance.storage.tables import ClusterReport, Decision
from tests.media_samples import image_bytes


@pytest.fixture
def ctx(settings):
    return Context(settings=settings, embedder=HashingEmbedder(768))


def decide_all(db, ctx, tenant, events):
    accepted = accept_events(db, list(enumerate(events))).new
    assert len(accepted) == len(events)
    for _, event_id in accepted:
        assert process_upload(db, ctx, tenant, event_id)["action"] != "reject"


def stored_report(db, tenant) -> dict:
    (report,) = db.scalars(select(ClusterReport.report).where(ClusterReport.tenant == tenant)).all()
    return report


def test_an_asset_id_uploaded_twice_with_other_content_is_one_point_with_its_latest_content(db, ctx, tenant,
                                                                                            tmp_path):
    decide_all(db, ctx, tenant, [
        {"event_id": "first", "asset_id": "post-1", "tenant": tenant, "text": "Simmer the onions in butter."},
        {"event_id": "second", "asset_id": "post-1", "tenant": tenant, "text": "Bond yields fell sharply today."},
        {"event_id": "other", "asset_id": "post-2", "tenant": tenant, "text": "Knead the dough for ten minutes."},
    ])
    assert len(db.scalars(select(Decision).where(Decision.tenant == tenant)).all()) == 3

    paths = stored_reports.build_and_store(db, ctx, tenant, out_dir=tmp_path)

    report = stored_report(db, tenant)
    assert report["noise"] == ["post-1", "post-2"] and report["items"] == 2
    assert report["params"]["text"]["n_assets"] == 2
    assert json.loads(paths["json"].read_text(encoding="utf-8"))["noise"] == ["post-1", "post-2"]


def test_the_same_image_under_two_asset_ids_stores_a_report_without_nan(db, ctx, tenant, tmp_path):
    png = base64.b64encode(image_bytes("PNG", size=(32, 32))).decode()
    decide_all(db, ctx, tenant, [{"asset_id": f"copy-{i}", "tenant": tenant, "data_b64": png} for i in (1, 2)])

    paths = stored_reports.build_and_store(db, ctx, tenant, out_dir=tmp_path)

    report = stored_report(db, tenant)
    assert report["noise"] == ["copy-1", "copy-2"]
    assert report["params"]["image"]["pca_explained_variance"] == 0.0
    assert report["params"]["image"]["dims_used"] == 1
    json.loads(paths["json"].read_text(encoding="utf-8"),
               parse_constant=lambda token: pytest.fail(f"{token} in report.json"))
