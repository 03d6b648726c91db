"""Browser tests of the review console: Playwright driving Debian's Chromium against a real
`governance serve` process and a real worker, on the embedded PostgreSQL and Redis.

Playwright's own browser download cannot work here; the tests use /usr/bin/chromium from the
`chromium` Debian package (`apt-get install -y chromium`; .ci/run installs it) and skip, naming
the package, where it is missing. Screenshots of each page go to <basetemp>/screens.
"""
from __future__ import annotations

import base64
import io
import json
import os
import signal
import subprocess
import uuid
from pathlib import Path

import pytest
from PIL import Image
from sqlalchemy import text

from governance.storage.db import engine_for
from tests.e2e.api_fixtures import start_api
from tests.e2e.conftest import Worker, cli, e2e_env, _no_pending_outbox_left_behind  # noqa: F401 (fixtures)
from tests.e2e.conftest import wait_for_decisions, write_jsonl
from tests.integration.helpers import BANK, SPAM

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


@pytest.fixture(scope="package")
def server(e2e_env, tmp_path_factory):
    started = start_api(e2e_env, tmp_path_factory.mktemp("console-serve") / "serve.log")
    yield started
    # Ctrl-C rather than SIGTERM: after its graceful shutdown uvicorn re-raises the signal it caught,
    # and SIGTERM's default action ends the process before coverage saves what the server ran.
    started.process.send_signal(signal.SIGINT)
    try:
        started.process.wait(30)
    except subprocess.TimeoutExpired:
        started.stop()


# Package scope: the console's server and worker (with its beat) stop when the browser tests end, so
# they never consume the shared broker's messages meant for the e2e tests' own workers.
@pytest.fixture(scope="package")
def console_worker(e2e_env, tmp_path_factory):
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


POLICY = """
version = "console-1"
[default]
action = "review"
auto_threshold = inf
review_threshold = 0.0
[labels.spam]
action = "block"
auto_threshold = 0.5
review_threshold = 0.3
near_duplicate_distance = 0.2
"""
XSS = ('Totally normal text <script>window.__pwned = "script"</script> '
       '<img src="x" onerror="window.__pwned = \'img\'"> <a href="javascript:window.__pwned=\'link\'">click me</a>')
SVG = ('<svg xmlns="http://www.w3.org/2000/svg" onload="window.__pwned=\'svg\'" width="80" height="80">'
       '<circle cx="40" cy="40" r="30" fill="red"/><script>window.__pwned="svg-script"</script></svg>')


def png(colour: tuple[int, int, int]) -> str:
    buffer = io.BytesIO()
    Image.new("RGB", (96, 64), colour).save(buffer, "PNG")
    return base64.b64encode(buffer.getvalue()).decode()


def review_tenants(env: dict, folder: Path, uploads: dict[str, list[dict]]) -> dict[str, str]:
    """Give each tenant the test bank and POLICY, publish its uploads (without `tenant`), wait until
    the real worker decided them all (each goes to review); {asset_id: event_id}."""
    folder.mkdir(parents=True, exist_ok=True)
    exemplars = [{"asset_id": f"{label}-{i}", "tenant": t, "text": body, "label": label}
                 for t in uploads for label, bodies in BANK.items() for i, body in enumerate(bodies)]
    cli(env, "exemplars", "import", str(write_jsonl(folder / "bank.jsonl", exemplars)))
    (folder / "policy.toml").write_text(POLICY)
    for t in uploads:
        cli(env, "policy", "apply", str(folder / "policy.toml"), "--tenant", t)
    cli(env, "publish", str(write_jsonl(folder / "uploads.jsonl", [
        {**u, "tenant": t} for t, items in uploads.items() for u in items])))
    events = {}
    for t, items in uploads.items():
        found = wait_for_decisions(env, t, len(items))
        assert len(found) == len(items), found
        assert all(d["action"] == "review" for d in found), [(d["asset_id"], d["action"], d["reason"]) for d in found]
        events.update({d["asset_id"]: d["event_id"] for d in found})
    return events


def new_tenant(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


@pytest.fixture(scope="package")
def world(e2e_env, server, console_worker, tmp_path_factory):
    """Two tenants with a bank, a policy that sends every prediction to review, and uploads decided
    by the real worker: {tenant, other, events: {asset_id: event_id}, folder}."""
    folder = tmp_path_factory.mktemp("console-world")
    tenant, other = new_tenant("con"), new_tenant("oth")
    events = review_tenants(e2e_env, folder, {
        tenant: [
            {"asset_id": "u-spam", "text": SPAM},
            {"asset_id": "u-xss", "text": XSS},
            {"asset_id": "u-svg", "data_b64": base64.b64encode(SVG.encode()).decode()},
            {"asset_id": "u-image", "data_b64": png((200, 30, 30))},
            {"asset_id": "u-lease", "text": "Stir the risotto slowly and add warm stock bit by bit."},
            {"asset_id": "u-csrf", "text": "Bond markets rallied after the inflation report."},
        ],
        other: [
            {"asset_id": "b-image", "data_b64": png((30, 30, 200))},
            {"asset_id": "b-text", "text": "A private note of the other tenant about bread dough."},
        ],
    })
    return {"tenant": tenant, "other": other, "events": events, "folder": folder}


def shoot(page, screens, name: str) -> None:
    page.screenshot(path=str(screens / f"{name}.png"), full_page=True)


def db_rows(database_url, query, **params):
    with engine_for(database_url).begin() as connection:
        return connection.execute(query, params).all()


def expire_leases(database_url, tenant: str) -> None:
    """Earlier tests' reviewers left the next item of their queue open (and so leased)."""
    with engine_for(database_url).begin() as connection:
        connection.execute(text("UPDATE review_leases SET expires_at = clock_timestamp() WHERE tenant = :t"),
                           {"t": tenant})
