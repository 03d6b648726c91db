"""The review console in a real browser: sign in, work the queue with the keyboard, leases, wellness
blur, and the attacks (XSS in uploads, SVG, CSRF, another tenant's items)."""
from __future__ import annotations

import time

from sqlalchemy import select, text

from governance.storage.console_tables import ReviewLease
from governance.storage.tables import AuditEntry, OutboxMessage
from tests.browser.conftest import DESKTOP, PHONE, db_rows, expire_leases, login_link, shoot
from tests.e2e.conftest import cli, wait_for_decisions, write_jsonl
from tests.integration.helpers import SPAM

def test_link_queue_item_keyboard_decision_teaches_the_bank(world, sign_in, screens, database_url, e2e_env):
    tenant, spam_event = world["tenant"], world["events"]["u-spam"]
    page = sign_in(tenant, "alice")
    assert page.locator("a[data-queue='reason:suggested']").count() == 1
    assert "Everything waiting" in page.inner_text("#items-title")
    shoot(page, screens, "queues-1280")

    with page.expect_navigation():  # loaded, console.js with it, before any key is pressed
        page.click("a[data-queue='reason:suggested']")
    with page.expect_navigation():
        page.click(f"a[href^='/console/review/{spam_event}']")
    assert page.locator("#item").get_attribute("data-actions") == "on"
    assert "WIN a FREE cruise" in page.inner_text("pre.text.full")
    assert page.locator(".neighbour").count() > 0
    shoot(page, screens, "item-1280")

    labels = page.locator("#f-block [data-label-index]")
    index = next(labels.nth(i).get_attribute("data-label-index") for i in range(labels.count())
                 if labels.nth(i).get_attribute("value") == "spam")
    with page.expect_navigation():
        page.keyboard.press("b")
        page.keyboard.press(index)
    assert "/console/review/" in page.url or "empty=1" in page.url  # the next item of the queue opened
    assert spam_event not in page.url

    [override] = db_rows(database_url, select(AuditEntry.who, AuditEntry.after).where(
        AuditEntry.tenant == tenant, AuditEntry.kind == "override", AuditEntry.event_id == spam_event))
    assert override.who == "alice" and override.after["action"] == "block" and override.after["label"] == "spam"
    [message] = db_rows(database_url, select(OutboxMessage.payload).where(
        OutboxMessage.tenant == tenant, OutboxMessage.kind == "override"))
    assert message.payload["event_id"] == spam_event and message.payload["label"] == "spam"

    cli(e2e_env, "publish", str(write_jsonl(world["folder"] / "again.jsonl", [
        {"asset_id": "u-spam-again", "tenant": tenant, "text": SPAM.replace("XJ-4411", "XJ-4412")}])))
    again = {d["asset_id"]: d for d in wait_for_decisions(e2e_env, tenant, 7)}["u-spam-again"]
    assert again["label"] == "spam" and again["action"] == "block"
    assert again["neighbors"][0]["asset_id"] == "u-spam"


def test_a_login_link_works_once(world, browser, e2e_env, server):
    url = login_link(e2e_env, server, world["tenant"], "bob")
    first = browser.new_context()
    second = browser.new_context()
    try:
        page = first.new_page()
        page.goto(url)
        assert page.url.endswith("/console/")
        other = second.new_page()
        response = other.goto(url)
        assert response.status == 401 and "This login link is void" in other.inner_text("main")
        assert not [c for c in second.cookies() if c["name"] == "governance_console"]
        other.goto(server.base_url + "/console/")
        assert other.url.endswith("/console/login")
        [cookie] = [c for c in first.cookies() if c["name"] == "governance_console"]
        assert cookie["httpOnly"] and cookie["sameSite"] == "Strict" and cookie["path"] == "/console"
    finally:
        first.close()
        second.close()


def test_two_reviewers_never_both_hold_an_items_lease(world, sign_in, server, screens, database_url):
    event = world["events"]["u-lease"]
    expire_leases(database_url, world["tenant"])
    carol, dave = sign_in(world["tenant"], "carol"), sign_in(world["tenant"], "dave")
    carol.goto(f"{server.base_url}/console/review/{event}")
    dave.goto(f"{server.base_url}/console/review/{event}")
    assert carol.locator("#item").get_attribute("data-actions") == "on"
    assert dave.locator("#item").get_attribute("data-actions") == "off"
    assert "Being reviewed by carol" in dave.inner_text("#held")
    assert dave.locator("#f-allow").count() == 0
    shoot(dave, screens, "item-held-1280")
    [lease] = db_rows(database_url, select(ReviewLease.who).where(
        ReviewLease.tenant == world["tenant"], ReviewLease.event_id == event,
        ReviewLease.expires_at > text("clock_timestamp()")))
    assert lease.who == "carol"

    with carol.expect_navigation():
        carol.keyboard.press("s")  # skip releases the lease...
    dave.reload()
    assert dave.locator("#item").get_attribute("data-actions") == "on"  # ...and Dave gets it
    carol.goto(f"{server.base_url}/console/review/{event}")
    assert carol.locator("#item").get_attribute("data-actions") == "off"


def test_images_are_blurred_until_revealed_and_the_default_is_per_reviewer(world, sign_in, server, screens):
    event = world["events"]["u-image"]
    page = sign_in(world["tenant"], "erin")
    page.goto(f"{server.base_url}/console/review/{event}")
    figure = page.locator(".content figure.media")
    assert "blurred" in figure.get_attribute("class")
    assert "blur" in page.eval_on_selector(".content figure.media img", "e => getComputedStyle(e).filter")
    image = page.request.get(f"{server.base_url}/console/media/u-image")
    assert image.headers["content-type"] == "image/png" and image.headers["content-security-policy"] == "sandbox"
    assert page.eval_on_selector(".content figure.media img", "e => e.naturalWidth") == 96
    shoot(page, screens, "item-image-blurred-1280")
    page.keyboard.press("r")
    assert "blurred" not in figure.get_attribute("class")
    assert page.eval_on_selector(".content figure.media img", "e => getComputedStyle(e).filter") == "none"

    page.goto(server.base_url + "/console/")
    page.check("#reveal_media")
    with page.expect_navigation():
        page.click("form[action='/console/settings'] button")
    page.goto(f"{server.base_url}/console/review/{event}")
    assert "blurred" not in page.locator(".content figure.media").get_attribute("class")
    fresh = sign_in(world["tenant"], "frank")  # another reviewer keeps the blurred default
    fresh.goto(f"{server.base_url}/console/review/{event}")
    assert "blurred" in fresh.locator(".content figure.media").get_attribute("class")


def test_script_payloads_in_a_text_upload_stay_inert(world, sign_in, server, screens):
    page = sign_in(world["tenant"], "gina")
    dialogs = []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    page.goto(f"{server.base_url}/console/review/{world['events']['u-xss']}")
    shown = page.inner_text("pre.text.full")
    assert "<script>" in shown and "onerror" in shown and "javascript:" in shown  # shown as text
    assert page.locator("main script, main img[src='x'], main a[href^='javascript']").count() == 0
    page.click("pre.text.full")
    time.sleep(0.3)  # give any injected handler its chance to run before we look
    assert page.evaluate("typeof window.__pwned") == "undefined" and dialogs == []
    shoot(page, screens, "item-xss-1280")


def test_an_svg_upload_is_never_rendered_inline(world, sign_in, server):
    event = world["events"]["u-svg"]
    page = sign_in(world["tenant"], "hana")
    page.goto(f"{server.base_url}/console/review/{event}")
    assert page.locator("svg, img[src*='u-svg'], object, embed, iframe").count() == 0
    assert "<svg" in page.inner_text("pre.text.full")
    assert page.evaluate("typeof window.__pwned") == "undefined"
    served = page.request.get(f"{server.base_url}/console/media/u-svg")
    assert served.status == 404 and "svg" not in served.headers.get("content-type", "")


def test_a_post_without_the_csrf_token_is_refused(world, sign_in, server, database_url):
    event = world["events"]["u-csrf"]
    expire_leases(database_url, world["tenant"])
    page = sign_in(world["tenant"], "ivan")
    page.goto(f"{server.base_url}/console/review/{event}")
    refused = page.request.post(f"{server.base_url}/console/review/{event}/decide", form={"action": "allow"})
    assert refused.status == 403 and refused.headers["content-type"].startswith("application/problem+json")
    assert refused.json()["type"].endswith("/forbidden")
    wrong = page.request.post(f"{server.base_url}/console/review/{event}/decide",
                              form={"action": "allow", "csrf": "guess"})
    assert wrong.status == 403
    assert not db_rows(database_url, select(AuditEntry.id).where(
        AuditEntry.tenant == world["tenant"], AuditEntry.event_id == event))
    token = page.get_attribute("#f-allow input[name=csrf]", "value")
    accepted = page.request.post(f"{server.base_url}/console/review/{event}/skip", form={"csrf": token},
                                 max_redirects=0)
    assert accepted.status == 303


def test_another_tenants_item_and_media_are_not_found(world, sign_in, server):
    page = sign_in(world["tenant"], "judy")
    theirs = world["events"]["b-image"]
    assert page.goto(f"{server.base_url}/console/review/{theirs}").status == 404
    assert page.request.get(f"{server.base_url}/console/media/b-image").status == 404
    assert page.request.get(f"{server.base_url}/console/review/{world['events']['b-text']}").status == 404
    assert page.request.get(f"{server.base_url}/console/?group=label&key=cooking").ok
    assert "b-text" not in page.content()


def test_pages_fit_a_phone_screen(world, sign_in, server, screens, browser):
    page = sign_in(world["tenant"], "kim", viewport=PHONE)
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    shoot(page, screens, "queues-390")
    page.goto(f"{server.base_url}/console/review/{world['events']['u-image']}")
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    actions = page.locator("aside.actions").bounding_box()
    assert actions["width"] <= PHONE["width"]
    shoot(page, screens, "item-390")
    context = browser.new_context(viewport=DESKTOP)
    try:
        login = context.new_page()
        login.goto(f"{server.base_url}/console/login")
        shoot(login, screens, "login-1280")
        login.set_viewport_size(PHONE)
        shoot(login, screens, "login-390")
    finally:
        context.close()
