"""Blind second review and the quality page, "add this item as an exemplar", and PDFs shown as their
first page, in a real browser against the real server and worker."""
from __future__ import annotations

import base64
import io

import pytest
from PIL import Image
from sqlalchemy import func, select

from governance.moderation.quality import cohen_kappa, sampled_for_second_review
from governance.storage.console_tables import SecondReview
from governance.storage.tables import Asset, AuditEntry, Exemplar, OutboxMessage
from tests.browser.conftest import PHONE, db_rows, new_tenant, review_tenants, shoot
from tests.e2e.conftest import cli, wait_for_decisions, write_jsonl
from tests.media_samples import text_pdf

SHARE = 0.1  # GOVERNANCE_REVIEW_SECOND_SHARE's default: the test server does not set it
SCAM = "Your parcel is held at customs: pay the 2.99 release fee today at parcel-release dot example, ref PX-{n}"


def event_ids(tenant: str, sampled: bool, count: int) -> list[str]:
    """Event ids that the share does (or does not) send to a second review."""
    found, n = [], 0
    while len(found) < count:
        candidate = f"{tenant}:q-{n}"
        if sampled_for_second_review(candidate, SHARE) == sampled:
            found.append(candidate)
        n += 1
    return found


def decide(page, base_url: str, event: str, action: str, label: str | None = None) -> None:
    page.goto(f"{base_url}/console/review/{event}")
    assert page.locator("#item").get_attribute("data-actions") == "on", page.url
    with page.expect_navigation():
        if action == "allow":
            page.click("#f-allow button")
        else:
            page.click(f"#f-block button[value='{label}']")


def second_reviews(database_url, tenant: str) -> dict[str, str]:
    return {r.event_id: r.status for r in db_rows(database_url, select(SecondReview.event_id, SecondReview.status)
                                                 .where(SecondReview.tenant == tenant))}


def count(database_url, model, *where) -> int:
    return db_rows(database_url, select(func.count()).select_from(model).where(*where))[0][0]


def test_a_sampled_decision_goes_blind_to_another_reviewer_and_a_disagreement_escalates(
        e2e_env, server, console_worker, sign_in, tmp_path, database_url, screens):
    tenant = new_tenant("qua")
    sampled, unsampled = event_ids(tenant, True, 4), event_ids(tenant, False, 1)
    texts = ["A free cruise voucher waits for you, claim it now", "Whisk the eggs with a pinch of salt.",
             "Claim the prize money wired to your account today", "Markets closed higher on Friday."]
    review_tenants(e2e_env, tmp_path / "quality", {tenant: [
        *({"event_id": e, "asset_id": f"s-{i}", "text": t} for i, (e, t) in enumerate(zip(sampled, texts))),
        {"event_id": unsampled[0], "asset_id": "n-0", "text": "Fold the flour into the batter gently."}]})

    alice = sign_in(tenant, "alice")
    first = ["spam", "allow", "spam", "allow"]
    for event, outcome in zip(sampled, first):
        decide(alice, server.base_url, event, "allow" if outcome == "allow" else "block", outcome)
    decide(alice, server.base_url, unsampled[0], "allow")
    assert second_reviews(database_url, tenant) == {e: "open" for e in sampled}  # n-0 was not sampled

    alice.goto(server.base_url + "/console/")
    assert alice.inner_text("tr:has(a[data-queue='reason:second_review']) td.num >> nth=0") == "0"
    alice.goto(f"{server.base_url}/console/review/{sampled[0]}")  # her own: she may look, never act
    assert alice.locator("#item").get_attribute("data-actions") == "off" and alice.locator("#own").count() == 1
    token = alice.get_attribute("form[action='/console/logout'] input[name=csrf]", "value")
    refused = alice.request.post(f"{server.base_url}/console/review/{sampled[0]}/decide",
                                 form={"action": "block", "label": "spam", "csrf": token})
    assert refused.status == 409 and second_reviews(database_url, tenant)[sampled[0]] == "open"

    bob = sign_in(tenant, "bob")
    assert bob.inner_text("tr:has(a[data-queue='reason:second_review']) td.num >> nth=0") == "4"
    bob.goto(f"{server.base_url}/console/review/{sampled[0]}")
    assert bob.locator("#blind").count() == 1 and bob.locator("#item").get_attribute("data-actions") == "on"
    assert "alice" not in bob.content()  # not even in the markup
    assert bob.inner_text("#hist ~ *") == "No earlier decisions or overrides."
    shoot(bob, screens, "item-second-review-1280")
    bob.goto(server.base_url + "/console/audit")  # nor on the audit page while the review is open
    audited = bob.inner_text("#audit")
    assert "n-0" in audited and not any(f"s-{i}" in audited for i in range(4)) and "alice" in audited
    overrides_before = count(database_url, AuditEntry, AuditEntry.tenant == tenant, AuditEntry.kind == "override")
    outbox_before = count(database_url, OutboxMessage, OutboxMessage.tenant == tenant)
    exemplars_before = count(database_url, Exemplar, Exemplar.tenant == tenant)

    second = ["spam", "spam", "spam", "allow"]  # disagrees on the second item only
    for event, outcome in zip(sampled, second):
        decide(bob, server.base_url, event, "allow" if outcome == "allow" else "block", outcome)
    assert second_reviews(database_url, tenant) == {sampled[0]: "agreed", sampled[1]: "disagreed",
                                                    sampled[2]: "agreed", sampled[3]: "agreed"}
    # An agreement measurement only: no override, exemplar or outbox message of bob's.
    assert count(database_url, AuditEntry, AuditEntry.tenant == tenant, AuditEntry.kind == "override") \
        == overrides_before
    assert count(database_url, OutboxMessage, OutboxMessage.tenant == tenant) == outbox_before
    assert count(database_url, Exemplar, Exemplar.tenant == tenant) == exemplars_before
    bob.goto(server.base_url + "/console/")
    assert bob.inner_text("tr:has(a[data-queue='reason:escalated']) td.num >> nth=0") == "1"
    assert bob.inner_text("tr:has(a[data-queue='reason:second_review']) td.num >> nth=0") == "0"

    expected = cohen_kappa(list(zip(first, second)))
    assert expected == pytest.approx(0.5)  # observed 3/4, chance (2*3 + 2*1) / 16
    with bob.expect_navigation():
        bob.click("nav.sections a[href='/console/quality']")
    assert bob.inner_text("#kappa-pairs tr[data-key='alice & bob'] td.kappa") == f"{expected:.3f}"
    assert bob.inner_text("#kappa-labels tr[data-key='spam'] td.kappa") == f"{expected:.3f}"
    assert bob.inner_text(".stat[data-status='disagreed'] .big") == "1"
    shoot(bob, screens, "quality-1280")
    bob.set_viewport_size(PHONE)
    assert bob.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    shoot(bob, screens, "quality-390")

    carol = sign_in(tenant, "carol")  # whoever takes the escalated item applies a real decision
    carol.goto(f"{server.base_url}/console/?group=reason&key=escalated")
    decide(carol, server.base_url, sampled[1], "block", "spam")
    assert second_reviews(database_url, tenant)[sampled[1]] == "resolved"
    assert count(database_url, AuditEntry, AuditEntry.tenant == tenant, AuditEntry.kind == "override",
                 AuditEntry.who == "carol") == 1


def test_an_item_added_as_an_exemplar_labels_the_next_similar_upload(
        e2e_env, server, console_worker, sign_in, tmp_path, database_url, screens):
    tenant, other = new_tenant("exm"), new_tenant("exo")
    events = review_tenants(e2e_env, tmp_path / "exemplar", {
        tenant: [{"asset_id": "scam-1", "text": SCAM.format(n=1)}],
        other: [{"asset_id": "theirs", "text": "A note about sourdough starters."}]})
    page = sign_in(tenant, "nora")
    page.goto(f"{server.base_url}/console/review/{events['scam-1']}")
    assert page.locator("#f-exemplar select[name=label] option[value=spam]").count() == 1
    shoot(page, screens, "item-exemplar-form-1280")
    page.set_viewport_size(PHONE)
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    shoot(page, screens, "item-exemplar-form-390")
    page.set_viewport_size({"width": 1280, "height": 900})
    refused = page.request.post(f"{server.base_url}/console/review/{events['scam-1']}/exemplar",
                                form={"label": "spam", "polarity": "positive"})
    assert refused.status == 403
    token = page.get_attribute("#f-exemplar input[name=csrf]", "value")
    crossed = page.request.post(f"{server.base_url}/console/review/{events['theirs']}/exemplar",
                                form={"label": "spam", "polarity": "positive", "csrf": token})
    assert crossed.status == 404
    invented = page.request.post(f"{server.base_url}/console/review/{events['scam-1']}/exemplar",
                                 form={"label": "no-such-label", "polarity": "positive", "csrf": token})
    assert invented.status == 422
    assert count(database_url, Exemplar, Exemplar.tenant.in_([tenant, other]), Exemplar.label == "spam") == 0

    page.select_option("#ex-label", "spam")
    page.select_option("#ex-polarity", "positive")
    with page.expect_navigation():
        page.click("#f-exemplar button")
    assert page.url.endswith("/console/banks?label=spam")
    tile = page.locator("li.exemplar[data-asset='scam-1']")
    assert tile.count() == 1 and "console by nora" in tile.inner_text()
    [added] = db_rows(database_url, select(Exemplar.source, Exemplar.created_by, Exemplar.polarity)
                      .join(Asset, Asset.id == Exemplar.asset_pk).where(Exemplar.tenant == tenant,
                                                                       Asset.asset_id == "scam-1"))
    assert tuple(added) == ("console", "nora", "positive")
    [audit] = db_rows(database_url, select(AuditEntry.who, AuditEntry.after).where(
        AuditEntry.tenant == tenant, AuditEntry.kind == "exemplar_add"))
    assert audit.who == "nora" and audit.after["bank_version"] >= 2

    cli(e2e_env, "publish", str(write_jsonl(tmp_path / "again.jsonl", [
        {"asset_id": "scam-2", "tenant": tenant, "text": SCAM.format(n=2)}])))
    again = {d["asset_id"]: d for d in wait_for_decisions(e2e_env, tenant, 2)}["scam-2"]
    assert again["label"] == "spam" and again["neighbors"][0]["asset_id"] == "scam-1"


def test_a_pdf_shows_as_its_first_page_and_a_broken_one_as_a_placeholder(
        e2e_env, server, console_worker, sign_in, tmp_path, screens):
    tenant, other = new_tenant("pdf"), new_tenant("pdo")
    b64 = lambda data: base64.b64encode(data).decode()  # noqa: E731
    events = review_tenants(e2e_env, tmp_path / "pdf", {
        tenant: [{"asset_id": "doc-good", "data_b64": b64(text_pdf("INVOICE overdue: pay the fee now"))},
                 # Parses, so the upload is accepted, but its page is too thin to draw.
                 {"asset_id": "doc-broken", "data_b64": b64(text_pdf("a strip", width=14400, height=3))}],
        other: [{"asset_id": "doc-theirs", "data_b64": b64(text_pdf("Their own invoice"))}]})
    page = sign_in(tenant, "pia")
    page.goto(f"{server.base_url}/console/review/{events['doc-good']}")
    image = page.locator(".content img[data-pdf-page]")
    assert image.get_attribute("src") == "/console/media/doc-good"
    page.wait_for_function("() => document.querySelector('.content img[data-pdf-page]').naturalWidth > 0")
    served = page.request.get(f"{server.base_url}/console/media/doc-good")
    assert served.status == 200 and served.headers["content-type"] == "image/png"
    assert served.headers["content-security-policy"] == "sandbox"
    width, height = Image.open(io.BytesIO(served.body())).size
    assert 0 < width <= 900 and 0 < height <= 1400
    assert page.locator("a[href$='doc-good'], object, embed, iframe").count() == 0  # never the PDF itself
    assert page.locator(".content [data-pdf-placeholder]").is_hidden()
    page.keyboard.press("r")
    shoot(page, screens, "item-pdf-1280")
    page.set_viewport_size(PHONE)
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    shoot(page, screens, "item-pdf-390")

    page.set_viewport_size({"width": 1280, "height": 900})
    page.goto(f"{server.base_url}/console/review/{events['doc-broken']}")
    placeholder = page.locator(".content [data-pdf-placeholder]")
    placeholder.wait_for(state="visible")
    assert "Could not render" in placeholder.inner_text()
    assert page.locator(".content img[data-pdf-page]").is_hidden()
    broken = page.request.get(f"{server.base_url}/console/media/doc-broken")
    assert broken.status == 422 and broken.headers["content-type"].startswith("application/problem+json")
    shoot(page, screens, "item-pdf-broken-1280")

    assert page.request.get(f"{server.base_url}/console/media/doc-theirs").status == 404
    assert page.goto(f"{server.base_url}/console/review/{events['doc-theirs']}").status == 404
