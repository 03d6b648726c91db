"""Deciding a cluster in bulk: the sample must be viewed first, then every member gets its own audit row."""
from __future__ import annotations

import json

from sqlalchemy import select

from governance.storage.tables import AuditEntry, Exemplar
from tests.browser.conftest import db_rows, new_tenant, review_tenants, shoot
from tests.e2e.conftest import cli

WAVE = [f"Your parcel {n} is held at customs, pay the delivery fee at this link now" for n in range(12)]
# A second group beside the wave: a cluster is dense against the rest.
RECIPES = [f"Recipe {n}: whisk eggs with sugar, fold in flour and bake the sponge cake" for n in range(12)]


def test_a_cluster_is_decided_in_bulk_after_its_sample_was_viewed(e2e_env, server, console_worker, sign_in, tmp_path,
                                                                  database_url, screens):
    tenant, other = new_tenant("blk"), new_tenant("blo")
    events = review_tenants(e2e_env, tmp_path / "bulk", {
        tenant: [{"asset_id": f"wave-{i}", "text": body} for i, body in enumerate(WAVE)]
        + [{"asset_id": f"cake-{i}", "text": body} for i, body in enumerate(RECIPES)],
        other: [{"asset_id": "o-1", "text": "Their own upload about sourdough starters."}],
    })
    cli(e2e_env, "clusters", "report", "--tenant", tenant, "--out", str(tmp_path / "rep"))
    report = json.loads((tmp_path / "rep" / "report.json").read_text())
    [cluster] = [c for c in report["clusters"] if set(c["members"]) & {"wave-0", "wave-1"}]
    members = cluster["members"]
    assert len([m for m in members if m.startswith("wave-")]) >= 10 and all(m.startswith("wave-") for m in members)

    page = sign_in(tenant, "mira")
    with page.expect_navigation():
        page.click("nav.sections a[href='/console/clusters']")
    row = page.locator(f"#clusters tr:has(a[href='/console/clusters/{cluster['cluster_id']}'])")
    assert row.locator("td.num").all_inner_texts() == [str(len(members)), str(len(members))]  # size, waiting
    shoot(page, screens, "clusters-1280")
    page.goto(f"{server.base_url}/console/?group=cluster&key={cluster['cluster_id']}")
    with page.expect_navigation():
        page.click("#bulk")
    assert page.locator("ol.grid li").count() == len(cluster["members"])
    samples = page.locator("li.sample")
    assert 0 < samples.count() <= 5 and page.locator("[data-bulk][disabled]").count() == 2
    shoot(page, screens, "cluster-1280")
    forged = page.request.post(f"{server.base_url}/console/clusters/{cluster['cluster_id']}/decide", form={
        "csrf": page.get_attribute("#f-bulk input[name=csrf]", "value"), "action": "block", "label": "spam",
        "sample": "", "sample_sig": "x", "viewed": ""})
    assert forged.status == 422  # no sample of its own choosing
    for i in range(samples.count()):
        page.locator("[data-view-sample]").first.click()
    assert page.locator("[data-bulk][disabled]").count() == 0
    page.select_option("#bulk-label", "spam")
    with page.expect_navigation():
        page.click("button[data-bulk][value=block]")
    assert f"Decided {len(members)} items" in page.inner_text("#bulk-done")

    rows = db_rows(database_url, select(AuditEntry.event_id, AuditEntry.who, AuditEntry.after).where(
        AuditEntry.tenant == tenant, AuditEntry.kind == "override"))
    assert sorted(r.event_id for r in rows) == sorted(events[m] for m in members)  # one audit row per member
    assert all(r.who == "mira" and r.after["action"] == "block" and r.after["label"] == "spam" for r in rows)
    assert len(db_rows(database_url, select(Exemplar.id).where(Exemplar.tenant == tenant, Exemplar.label == "spam",
                                                                Exemplar.source == "review"))) == len(members)

    theirs = sign_in(other, "olga")
    assert theirs.goto(f"{server.base_url}/console/clusters/{cluster['cluster_id']}").status == 404
    theirs.goto(f"{server.base_url}/console/clusters")
    assert "No cluster report yet" in theirs.inner_text("main")
