"""`governance demo --serve` (what `make console` runs): the demo's review items in a browser through
the printed link, cleared with the keyboard alone, and Ctrl-C stops it cleanly."""
from __future__ import annotations

import re
import signal
import subprocess
import time

from governance.platform.embedded_servers import stop_embedded
from tests.browser.conftest import DESKTOP, shoot
from tests.e2e.api_fixtures import free_port
from tests.e2e.conftest import CLI


def test_demo_serve_shows_its_review_items_and_a_reviewer_clears_them_by_keyboard(e2e_env, browser, tmp_path_factory,
                                                                                screens):
    own = tmp_path_factory.mktemp("demo-serve-embedded")
    log_path = own / "demo.log"
    port = free_port()
    demo = subprocess.Popen([CLI, "demo", "--serve", "--port", str(port)],
                            env=dict(e2e_env, GOVERNANCE_DATA_DIR=str(own)), stdout=open(log_path, "w"), stderr=subprocess.STDOUT)
    context = browser.new_context(viewport=DESKTOP)
    try:
        deadline = time.monotonic() + 400
        while "Ctrl-C stops" not in log_path.read_text():
            assert demo.poll() is None, log_path.read_text()[-3000:]
            assert time.monotonic() < deadline, log_path.read_text()[-3000:]
            time.sleep(0.5)
        out = log_path.read_text()
        link = re.search(r"review console  (http://127\.0\.0\.1:\d+/console/login\?\S+)", out).group(1)
        assert f"HTTP API docs   http://127.0.0.1:{port}/docs" in out

        page = context.new_page()
        page.goto(link)
        counts = page.locator("section[aria-labelledby=q-reason] td.num:nth-child(2)").all_inner_texts()
        waiting = sum(int(n) for n in counts)
        assert waiting > 0 and "demo-reviewer" in page.inner_text(".who")
        shoot(page, screens, "demo-queues-1280")
        with page.expect_navigation():
            page.click("#start")
        for n in range(waiting + 1):  # the keyboard alone: allow each item, the next one opens
            if "empty=1" in page.url:
                break
            if n == 0:
                shoot(page, screens, "demo-item-1280")
            assert page.locator("#item").get_attribute("data-actions") == "on", page.url
            with page.expect_navigation():
                page.keyboard.press("a")
        assert "empty=1" in page.url
        page.goto(f"http://127.0.0.1:{port}/console/")
        assert "This queue is empty" in page.inner_text("main")
    finally:
        context.close()
        if demo.poll() is None:
            demo.send_signal(signal.SIGINT)  # Ctrl-C
        try:
            code = demo.wait(60)
        finally:
            if demo.poll() is None:
                demo.kill()
            stop_embedded(own)
    assert code == 0 and log_path.read_text().rstrip().endswith("stopped")
