"""The policy page: a diff between applied versions, a backtest preview that applies nothing,
applying only from an admin session, inline errors for a bad file, CSRF, and tenants apart."""
from __future__ import annotations

from sqlalchemy import select

from governance.storage.tables import AuditEntry
from tests.browser.conftest import PHONE, POLICY, db_rows, new_tenant, review_tenants, shoot
from tests.e2e.api_fixtures import create_key
from tests.e2e.conftest import cli
from tests.integration.helpers import SPAM

SECOND = POLICY.replace('version = "console-1"', 'version = "console-2"').replace(
    "auto_threshold = 0.5", "auto_threshold = 0.6")
# Everything confirmed at once: spam blocked, the rest allowed, no tie or anomaly sends it to review.
EDITED = """version = "console-3"
tie_margin = 0.0
anomaly_action = "allow"
[default]
action = "allow"
auto_threshold = 0.0
review_threshold = 0.0
[labels.spam]
action = "block"
auto_threshold = 0.0
review_threshold = 0.0
"""


def _current(env: dict, tenant: str) -> str:
    [current] = [line.split("\t")[0] for line in cli(env, "policy", "list", "--tenant", tenant).stdout.splitlines()
                 if line.endswith("\tcurrent")]
    return current


def _sign_in_with_key(browser, server, key: str):
    context = browser.new_context()
    page = context.new_page()
    page.goto(server.base_url + "/console/login")
    page.fill("#api_key", key)
    with page.expect_navigation():
        page.click("form button[type=submit]")
    assert page.url.endswith("/console/"), page.url
    return context, page


def test_policy_diff_preview_and_apply(e2e_env, server, console_worker, sign_in, browser, tmp_path, database_url,
                                       screens):
    tenant, other = new_tenant("pol"), new_tenant("poo")
    review_tenants(e2e_env, tmp_path / "pol", {
        tenant: [{"asset_id": "p-spam", "text": SPAM},
                 {"asset_id": "p-cake", "text": "Whisk the eggs with sugar until pale and fluffy."},
                 {"asset_id": "p-bonds", "text": "Bond markets rallied after the inflation report."}],
        other: [{"asset_id": "q-1", "text": "Their own note about bread dough."}],
    })
    (tmp_path / "second.toml").write_text(SECOND)
    cli(e2e_env, "policy", "apply", str(tmp_path / "second.toml"), "--tenant", tenant)
    (tmp_path / "theirs.toml").write_text(POLICY.replace('"console-1"', '"b-secret"'))
    cli(e2e_env, "policy", "apply", str(tmp_path / "theirs.toml"), "--tenant", other)

    page = sign_in(tenant, "pia")
    with page.expect_navigation():
        page.click("nav.sections a[href='/console/policy']")
    assert page.inner_text("#current-version") == "console-2"
    assert 'version = "console-2"' in page.inner_text("#current-source")
    assert page.locator("#versions tbody tr").count() == 2
    # The two newest versions are compared by default; the changed line is marked both ways.
    removed = page.locator("#diff span.del").all_inner_texts()
    added = page.locator("#diff span.add").all_inner_texts()
    assert "-auto_threshold = 0.5" in removed and "+auto_threshold = 0.6" in added
    assert '-version = "console-1"' in removed and '+version = "console-2"' in added
    assert not any("auto_threshold = inf" in line for line in removed + added)  # unchanged lines are not marked

    # Preview: what the edited policy would flip, with nothing applied.
    page.fill("#toml", EDITED)
    with page.expect_navigation() as shown:
        page.click("#preview")
    assert shown.value.status == 200
    changed, replayed = page.locator("#preview-summary strong").inner_text(), page.inner_text("#preview-summary")
    assert int(changed) >= 1 and "of 3 decided uploads" in replayed
    flips = [row.split("\t") for row in page.locator("#flips-stored tbody tr").all_inner_texts()]
    assert any(r[0] == "review" and r[1] in ("allow", "block") and int(r[2]) >= 1 for r in flips), flips
    assert page.locator("#flip-examples tbody tr").count() >= 1
    assert page.input_value("#toml") == EDITED  # the edit is kept for another round
    assert page.inner_text("#current-version") == "console-2" and _current(e2e_env, tenant) == "console-2"
    shoot(page, screens, "policy-1280")

    # A bad file is an inline error, never a 500.
    page.fill("#toml", "version = \n[[")
    with page.expect_navigation() as shown:
        page.click("#preview")
    assert shown.value.status == 422 and "not valid TOML" in page.inner_text("#errors")
    page.fill("#toml", EDITED.replace("tie_margin = 0.0", "k = 0"))
    with page.expect_navigation() as shown:
        page.click("#apply")
    assert shown.value.status == 403  # a reviewer's link session may not apply, even a bad file
    page.fill("#toml", EDITED)
    with page.expect_navigation() as shown:
        page.click("#apply")
    assert shown.value.status == 403 and "admin scope" in page.inner_text("#refused")
    assert _current(e2e_env, tenant) == "console-2"

    # Without the session's CSRF token nothing is previewed or applied.
    for action in ("preview", "apply"):
        refused = page.request.post(f"{server.base_url}/console/policy/{action}", form={"toml": EDITED})
        assert refused.status == 403
        forged = page.request.post(f"{server.base_url}/console/policy/{action}", form={"toml": EDITED, "csrf": "x"})
        assert forged.status == 403

    # An admin key's session applies it, exactly as `governance policy apply`.
    admin = create_key(e2e_env, tenant, scopes="review,admin", name="pol-admin")
    context, boss = _sign_in_with_key(browser, server, admin["key"])
    try:
        boss.goto(f"{server.base_url}/console/policy")
        boss.fill("#toml", EDITED.replace("tie_margin = 0.0", "tie_margin = 0.0\nk = 0"))
        with boss.expect_navigation() as shown:
            boss.click("#apply")
        assert shown.value.status == 422 and "k: must be an integer" in boss.inner_text("#errors")
        assert _current(e2e_env, tenant) == "console-2"
        boss.fill("#toml", EDITED)
        with boss.expect_navigation():
            boss.click("#apply")
        assert "applied=console-3" in boss.url and "console-3 is now current" in boss.inner_text("#applied")
        assert boss.inner_text("#current-version") == "console-3" and _current(e2e_env, tenant) == "console-3"
        rows = db_rows(database_url, select(AuditEntry.who, AuditEntry.after).where(
            AuditEntry.tenant == tenant, AuditEntry.kind == "policy_apply"))
        assert [r.who for r in rows if r.after["version"] == "console-3"] == ["pol-admin"]
        # The same version with other content is a conflict, shown inline.
        boss.fill("#toml", EDITED.replace("tie_margin = 0.0", "tie_margin = 0.05"))
        with boss.expect_navigation() as shown:
            boss.click("#apply")
        assert shown.value.status == 422 and "already applied" in boss.inner_text("#errors")
        # Once its key is revoked, the session is no administrator any more.
        cli(e2e_env, "keys", "revoke", admin["id"])
        boss.fill("#toml", EDITED.replace("console-3", "console-4"))
        with boss.expect_navigation() as shown:
            boss.click("#apply")
        assert shown.value.status == 403 and _current(e2e_env, tenant) == "console-3"
    finally:
        context.close()

    phone = sign_in(tenant, "pia", PHONE)
    phone.goto(f"{server.base_url}/console/policy?older=console-2&newer=console-3")
    assert phone.locator("#diff span.add").count() >= 1
    assert phone.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    shoot(phone, screens, "policy-390")

    # Tenants apart: neither reaches the other's versions.
    assert page.goto(f"{server.base_url}/console/policy?older=console-1&newer=b-secret").status == 404
    theirs = sign_in(other, "olga")
    assert theirs.goto(f"{server.base_url}/console/policy?older=console-1&newer=console-2").status == 404
    theirs.goto(f"{server.base_url}/console/policy")
    assert theirs.inner_text("#current-version") == "b-secret" and "console-2" not in theirs.inner_text("main")
