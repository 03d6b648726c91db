"""The clusters map (hover shows the upload, inert; click opens the item), the report history with
what changed between two reports, and another tenant's reports out of reach."""
from __future__ import annotations

import json

from tests.browser.conftest import PHONE, XSS, new_tenant, png, review_tenants, shoot
from tests.e2e.conftest import cli, wait_for_decisions, write_jsonl

RECIPES = [f"Recipe {n}: whisk eggs with sugar, fold in flour and bake the sponge cake" for n in range(12)]
WAVE = [f"Your parcel {n} is held at customs, pay the delivery fee at this link now" for n in range(12)]


def _report(env: dict, tenant: str, folder) -> dict:
    cli(env, "clusters", "report", "--tenant", tenant, "--out", str(folder))
    return json.loads((folder / "report.json").read_text())


def test_the_map_shows_and_opens_uploads_and_the_history_names_a_new_cluster(
        e2e_env, server, console_worker, sign_in, tmp_path, screens):
    tenant, other = new_tenant("map"), new_tenant("mao")
    events = review_tenants(e2e_env, tmp_path / "first", {
        tenant: [{"asset_id": f"cake-{i}", "text": body} for i, body in enumerate(RECIPES)]
        + [{"asset_id": "m-xss", "text": XSS}, {"asset_id": "m-image", "data_b64": png((40, 160, 60))}],
        other: [{"asset_id": "o-1", "text": "Their own upload about sourdough starters."}],
    })
    first = _report(e2e_env, tenant, tmp_path / "rep1")
    cli(e2e_env, "clusters", "report", "--tenant", other, "--out", str(tmp_path / "rep-other"))
    cli(e2e_env, "publish", str(write_jsonl(tmp_path / "wave.jsonl", [
        {"asset_id": f"wave-{i}", "text": body, "tenant": tenant} for i, body in enumerate(WAVE)])))
    found = wait_for_decisions(e2e_env, tenant, len(RECIPES) + 2 + len(WAVE))
    events.update({d["asset_id"]: d["event_id"] for d in found})
    second = _report(e2e_env, tenant, tmp_path / "rep2")
    [wave] = [c for c in second["clusters"] if set(c["members"]) & {"wave-0", "wave-1"}]
    assert wave["cluster_id"] not in {c["cluster_id"] for c in first["clusters"]}

    page = sign_in(tenant, "nico")
    with page.expect_navigation():
        page.click("nav.sections a[href='/console/clusters']")
    points = page.locator("#cluster-map a.pt")
    assert points.count() == len(second["map"])
    assert page.locator(f"#cluster-map a.pt[data-cluster='{wave['cluster_id']}']").count() == len(wave["members"])
    shoot(page, screens, "clusters-map-1280")

    # Hovering the XSS upload shows its text as text: no markup reached the DOM, no script ran.
    page.hover("#cluster-map a.pt[data-asset='m-xss'] circle")
    tip = page.locator("#map-tip")
    tip.wait_for(state="visible")
    assert "<script>" in tip.locator(".tip-text").inner_text() and "onerror" in tip.locator(".tip-text").inner_text()
    assert tip.locator("script, .tip-text img, .tip-text a").count() == 0
    assert page.evaluate("window.__pwned") is None
    shoot(page, screens, "clusters-map-hover-1280")
    # An image point shows its thumbnail through the console's media route.
    page.hover("#cluster-map a.pt[data-asset='m-image'] circle")
    page.wait_for_function("() => { const i = document.querySelector('#map-tip img');"
                           " return !i.hidden && i.src.endsWith('/console/media/m-image') && i.naturalWidth > 0; }")
    # A click opens the item page of the point's upload (near-duplicates overlap: click the one on top).
    box = page.locator("#cluster-map a.pt[data-asset='wave-3'] circle").bounding_box()
    x, y = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
    on_top = page.evaluate("([x, y]) => document.elementFromPoint(x, y).closest('a.pt').dataset.asset", [x, y])
    assert on_top.startswith("wave-")
    with page.expect_navigation():
        page.mouse.click(x, y)
    assert f"/console/review/{events[on_top]}" in page.url
    assert on_top in page.inner_text("main")
    assert page.evaluate("window.__pwned") is None

    # The emerging-cluster alert, if any, names its cluster and links its members' queue.
    page.goto(f"{server.base_url}/console/clusters")
    for alert in second["alerts"]:
        link = page.locator(f".alert a[href='/console/?group=cluster&key={alert['cluster_id']}']")
        assert link.count() == 1

    with page.expect_navigation():
        page.click("a[href='/console/clusters/history']")
    rows = page.locator("#reports tbody tr")
    assert rows.count() == 2
    ids = [int(t.lstrip("#")) for t in page.locator("#reports tbody tr td:first-child a").all_inner_texts()]
    assert ids == sorted(ids, reverse=True)  # newest first
    assert wave["cluster_id"] in page.inner_text("#changes-new")
    assert wave["cluster_id"] not in page.inner_text("#changes-gone")
    shoot(page, screens, "cluster-history-1280")
    older_id, newer_id = ids[1], ids[0]
    page.goto(f"{server.base_url}/console/clusters?report={older_id}")
    assert page.locator("#cluster-map a.pt").count() == len(first["map"])

    phone = sign_in(tenant, "nico", PHONE)
    phone.goto(f"{server.base_url}/console/clusters")
    assert phone.locator("#cluster-map").bounding_box()["width"] <= PHONE["width"]
    assert phone.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    shoot(phone, screens, "clusters-map-390")
    phone.goto(f"{server.base_url}/console/clusters/history")
    assert phone.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    shoot(phone, screens, "cluster-history-390")

    theirs = sign_in(other, "olga")
    assert theirs.goto(f"{server.base_url}/console/clusters?report={newer_id}").status == 404
    assert theirs.goto(f"{server.base_url}/console/clusters/history?older={older_id}&newer={newer_id}").status == 404
    assert theirs.goto(f"{server.base_url}/console/clusters/{wave['cluster_id']}").status == 404
    assert theirs.goto(f"{server.base_url}/console/media/m-image").status == 404
    assert theirs.goto(f"{server.base_url}/console/review/{events[on_top]}").status == 404
    theirs.goto(f"{server.base_url}/console/clusters")
    assert theirs.locator("#cluster-map a.pt").all() and not theirs.locator("#cluster-map a.pt[data-asset^='wave-']").all()
