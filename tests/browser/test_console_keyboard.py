"""Clearing a queue with the keyboard alone (escalate, allow, j/k, ?), and signing in with an API key."""
from __future__ import annotations

from sqlalchemy import select

from governance.storage.tables import AuditEntry
from tests.browser.conftest import db_rows, new_tenant, review_tenants, shoot
from tests.e2e.api_fixtures import create_key


def test_a_reviewer_clears_the_queue_with_the_keyboard_alone(e2e_env, server, console_worker, sign_in,
                                                              tmp_path, database_url, screens):
    tenant = new_tenant("kbd")
    events = review_tenants(e2e_env, tmp_path / "kbd", {tenant: [
        {"asset_id": "k-one", "text": "Whisk the eggs with sugar until pale and fluffy."},
        {"asset_id": "k-two", "text": "Stock futures slipped as traders priced in another rate hike."},
    ]})
    page = sign_in(tenant, "lena")
    with page.expect_navigation():  # loaded, console.js with it, before any key is pressed
        page.click("#start")
    first = page.url.split("/console/review/")[1].split("?")[0]
    assert first in events.values()
    page.keyboard.press("?")
    assert page.is_visible("#help")
    page.keyboard.press("Escape")
    assert not page.is_visible("#help")
    with page.expect_navigation():
        page.keyboard.press("j")
    second = page.url.split("/console/review/")[1].split("?")[0]
    assert second != first and second in events.values()
    with page.expect_navigation():
        page.keyboard.press("k")
    assert first in page.url

    page.keyboard.press("e")
    page.keyboard.type("not sure: ask the policy team")
    with page.expect_navigation():
        page.keyboard.press("Control+Enter")
    assert second in page.url  # the next item of the queue opened
    [escalation] = db_rows(database_url, select(AuditEntry.who, AuditEntry.after).where(
        AuditEntry.tenant == tenant, AuditEntry.kind == "escalation", AuditEntry.event_id == first))
    assert escalation.who == "lena" and escalation.after["note"] == "not sure: ask the policy team"

    with page.expect_navigation():
        page.keyboard.press("a")
    page.wait_for_url("**/console/?**empty=1")
    assert "Nothing left in this queue" in page.inner_text("main")
    assert page.inner_text("tr:has(a[data-queue='reason:escalated']) td.num >> nth=0") == "1"
    shoot(page, screens, "queues-escalated-1280")

    with page.expect_navigation():
        page.click("a[data-queue='reason:escalated']")
    with page.expect_navigation():
        page.click("#start")
    assert first in page.url
    with page.expect_navigation():
        page.keyboard.press("a")
    page.wait_for_url("**empty=1")
    overrides = db_rows(database_url, select(AuditEntry.event_id, AuditEntry.after).where(
        AuditEntry.tenant == tenant, AuditEntry.kind == "override"))
    assert sorted(e for e, _ in overrides) == sorted([first, second])
    assert all(after["action"] == "allow" for _, after in overrides)
    page.goto(server.base_url + "/console/")
    assert "This queue is empty" in page.inner_text("main")

    with page.expect_navigation():
        page.click("nav.sections a[href='/console/audit']")
    page.fill("input[name=who]", "lena")
    with page.expect_navigation():
        page.click("form.filters button")
    assert page.locator("#audit tbody tr").count() == 3  # the escalation and two overrides
    assert "not sure: ask the policy team" in page.inner_text("#audit")
    shoot(page, screens, "audit-1280")
    exported = page.request.get(server.base_url + page.locator("#csv").get_attribute("href"))
    assert exported.headers["content-type"].startswith("text/csv")
    lines = exported.text().splitlines()
    assert lines[0].startswith("id,at,kind,who") and len(lines) == 4 and all(",lena," in line for line in lines[1:])


def test_signing_in_with_an_api_key_needs_the_review_scope(e2e_env, server, browser):
    tenant = new_tenant("key")
    reviewer_key = create_key(e2e_env, tenant, scopes="review", name="night-shift")
    ingest_key = create_key(e2e_env, tenant, scopes="ingest", name="uploader")
    context = browser.new_context()
    try:
        page = context.new_page()
        page.goto(server.base_url + "/console/login")
        page.fill("#api_key", ingest_key["key"])
        with page.expect_navigation():
            page.click("form button[type=submit]")
        assert "without the review scope" in page.inner_text(".error")
        page.fill("#api_key", reviewer_key["key"])
        with page.expect_navigation():
            page.click("form button[type=submit]")
        assert page.url.endswith("/console/")
        assert "night-shift" in page.inner_text(".who") and tenant in page.inner_text(".who")
        refused = context.request.post(server.base_url + "/console/login/key", form={"api_key": reviewer_key["key"]})
        assert refused.status == 403  # the login form's own CSRF token is missing
    finally:
        context.close()
