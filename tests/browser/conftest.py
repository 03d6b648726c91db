"""Browser tests of the review console: Playwright driving Debian's Chromium against a real
`governance serve` process and a real worker, on the embedded PostgreSQL and Redis.

Playwright's own browser download cannot work here; the tests use /usr/bin/chromium from the
`chromium` Debian package (`apt-get install -y chromium`; .ci/run installs it) and skip, naming
the package, where it is missing. Screenshots of each page go to <basetemp>/screens.
"""
from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from tests.e2e.api_fixtures import start_api
from tests.e2e.conftest import Worker, cli, e2e_env, _no_pending_outbox_left_behind  # noqa: F401 (fixtures)

CHROMIUM = os.environ.get("GOVERNANCE_TEST_CHROMIUM", "/usr/bin/chromium")
DESKTOP = {"width": 1280, "height": 900}
PHONE = {"width": 390, "height": 844}


@pytest.fixture(scope="session")
def browser():
    if not Path(CHROMIUM).exists():
        pytest.skip(f"{CHROMIUM} is missing: install Debian's chromium package (apt-get install -y chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield launched
        launched.close()


@pytest.fixture(scope="session")
def screens(tmp_path_factory) -> Path:
    folder = tmp_path_factory.getbasetemp() / "screens"
    folder.mkdir(exist_ok=True)
    print(f"\nconsole screenshots: {folder}")
    return folder


@pytest.fixture(scope="module")
def server(e2e_env, tmp_path_factory):
    started = start_api(e2e_env, tmp_path_factory.mktemp("console-serve") / "serve.log")
    yield started
    started.stop()


@pytest.fixture(scope="module")
def module_worker(e2e_env, tmp_path_factory):
    started = Worker(e2e_env, tmp_path_factory.mktemp("console-worker") / "worker.log", concurrency=2)
    yield started
    started.stop()


def login_link(env: dict, server, tenant: str, who: str, ttl: int = 900) -> str:
    out = cli(env, "console-link", "--tenant", tenant, "--who", who, "--ttl", str(ttl), "--json",
              "--base-url", server.base_url).stdout
    return json.loads(out)["url"]


@pytest.fixture
def sign_in(browser, e2e_env, server):
    """sign_in(tenant, who, viewport=DESKTOP) -> a page signed in through a fresh one-time link."""
    contexts = []

    def open_page(tenant: str, who: str, viewport: dict = DESKTOP):
        context = browser.new_context(viewport=viewport)
        contexts.append(context)
        page = context.new_page()
        response = page.goto(login_link(e2e_env, server, tenant, who))
        assert response.ok and page.url.endswith("/console/"), page.url
        return page

    yield open_page
    for context in contexts:
        context.close()
