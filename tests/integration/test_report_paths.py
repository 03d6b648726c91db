"""Cluster reports land inside the data folder whatever the tenant is called (no grammar assumed)."""
import dataclasses
import json

import pytest

from governance.clustering.stored_reports import build_and_store, tenant_folder
from governance.embedding.backends.hashing import HashingEmbedder
from governance.moderation.pipeline import Context

HOSTILE = ["../../escape", "../../../../../escape", "a/b", "a-b", "/abs/olute", "..", ".", "-",
           "we:ird *?<>|\\ ünï\t$HOME ~ %2e%2e"]


@pytest.fixture
def ctx(settings, tmp_path):
    # A data folder of its own, nested so that an escape by '..' would still land in tmp_path.
    data_dir = tmp_path / "home" / "data"
    return Context(settings=dataclasses.replace(settings, data_dir=data_dir), embedder=HashingEmbedder(768))


def test_a_report_for_any_tenant_name_lands_inside_the_data_folder(db, ctx, tmp_path):
    reports = ctx.settings.data_dir / "reports"
    folders = set()
    for tenant in HOSTILE:
        paths = build_and_store(db, ctx, tenant)
        for path in paths.values():
            assert path.resolve().parent.parent.parent == reports.resolve(), (tenant, path)
            assert path.is_file()
        assert paths["json"].parent.parent.name == tenant_folder(tenant)
        assert json.loads(paths["json"].read_text())["tenant"] == tenant
        folders.add(paths["json"].parent.parent.name)
    assert len(folders) == len(HOSTILE)  # tenants that slug alike ("a/b", "a-b") stay apart
    assert sorted(p.name for p in tmp_path.iterdir()) == ["home"]
    assert sorted(p.name for p in (tmp_path / "home").iterdir()) == ["data"]


def test_the_folder_name_is_a_slug_and_a_hash_for_any_string():
    assert tenant_folder("acme") == tenant_folder("acme")
    assert tenant_folder("acme").startswith("acme-")
    assert tenant_folder("../../escape").startswith("escape-")
    for tenant in [*HOSTILE, "", "\ud800", "x" * 500]:
        name = tenant_folder(tenant)
        assert name not in ("", ".", "..") and "/" not in name and "\\" not in name and len(name) <= 57, tenant
