"""The banks page: labels with counts, exemplars as a grid, disable and enable (audit-logged)."""
from __future__ import annotations

from sqlalchemy import select

from governance.storage.tables import Asset, AuditEntry, Exemplar
from tests.browser.conftest import db_rows, new_tenant, review_tenants, shoot


def counts(page) -> dict[str, list[str]]:
    rows = page.locator("#bank-labels tbody tr")
    return {rows.nth(i).locator("td").first.inner_text(): rows.nth(i).locator("td.num").all_inner_texts()
            for i in range(rows.count())}


def test_the_banks_page_lists_labels_and_disables_and_enables_an_exemplar(e2e_env, server, console_worker, sign_in,
                                                                           tmp_path, database_url, screens):
    tenant = new_tenant("bnk")
    review_tenants(e2e_env, tmp_path / "banks", {tenant: [{"asset_id": "b-1", "text": "Fold the egg whites in."}]})
    page = sign_in(tenant, "nora")
    with page.expect_navigation():
        page.click("nav.sections a[href='/console/banks']")
    assert counts(page) == {"cooking": ["3", "0", "0"], "finance": ["3", "0", "0"]}
    assert page.locator("li.exemplar").count() == 3  # the first label's exemplars
    shoot(page, screens, "banks-1280")

    with page.expect_navigation():
        page.click("li.exemplar[data-asset='cooking-1'] button")
    assert counts(page)["cooking"] == ["2", "0", "1"]
    assert "disabled" in page.locator("li.exemplar[data-asset='cooking-1']").get_attribute("class")

    def enabled():
        return db_rows(database_url, select(Exemplar.enabled).join(Asset, Asset.id == Exemplar.asset_pk).where(
            Exemplar.tenant == tenant, Asset.asset_id == "cooking-1"))[0].enabled

    assert enabled() is False
    [entry] = db_rows(database_url, select(AuditEntry.who, AuditEntry.after).where(
        AuditEntry.tenant == tenant, AuditEntry.kind == "exemplar_disable"))
    assert entry.who == "nora" and entry.after["labels"] == ["cooking"]

    with page.expect_navigation():
        page.click("li.exemplar[data-asset='cooking-1'] button")
    assert counts(page)["cooking"] == ["3", "0", "0"] and enabled() is True
    refused = page.request.post(f"{server.base_url}/console/banks/cooking-1/disable", form={"label": "cooking"})
    assert refused.status == 403 and enabled() is True
