"""The dashboard in a real browser: Debian's chromium, driven by Playwright's Python package.

A real ``triggerc serve --dashboard`` subprocess on a free loopback port, real webhooks
POSTed with httpx to a token-protected generic route, real exec actions. The page must
show the first run, then show the second webhook's run *without a reload* (server-sent
events), with no error in the browser console (a CSP violation would be one).

Skipped, with the reason, when ``/usr/bin/chromium`` or the ``playwright`` package is
missing (``.ci/run`` installs chromium; Playwright's own browser download is not used).

Screenshots: ``TRIGGERLANG_SCREENSHOT=path/dashboard.png pytest tests/test_dashboard_browser.py``
saves the overview at desktop width there, and at phone width (390 px) beside it as
``dashboard-phone.png``. ``examples/dashboard.png`` (in the README) was taken this way.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from test_dashboard import Serve  # serve --dashboard as a subprocess, with the rules of RULES

CHROMIUM = Path("/usr/bin/chromium")
LAUNCH_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
               "--disable-component-update", "--disable-sync", "--no-first-run"]

try:
    from playwright.sync_api import sync_playwright
except ImportError:  # pragma: no cover - depends on the machine
    sync_playwright = None

pytestmark = [
    pytest.mark.skipif(sync_playwright is None, reason="the playwright package is not installed (pip install playwright)"),
    pytest.mark.skipif(not CHROMIUM.exists(), reason=f"{CHROMIUM} is missing (apt-get install chromium)"),
]

DASH_TOKEN = "dashboard-token-for-the-browser-test"


@pytest.fixture
def serve(tmp_path: Path):
    s = Serve(tmp_path, dashboard_token=DASH_TOKEN)
    try:
        yield s
    finally:
        s.stop_cleanly()


def test_a_webhook_run_shows_and_the_next_one_appears_live(serve: Serve) -> None:
    # The dashboard answers nobody without its token, even on loopback.
    assert serve.http.get("/dashboard/").status_code == 401
    assert serve.http.get("/api/runs").status_code == 401

    first = serve.hook("/hooks/build", "refs/heads/main")
    assert serve.wait_final(first["runs"][0])["status"] == "succeeded"
    serve.hook("/hooks/build", "v1.2.0")  # matches nothing: a tag, not a branch

    screenshot = os.environ.get("TRIGGERLANG_SCREENSHOT")
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=LAUNCH_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 860})
            problems: list[str] = []
            page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
            page.on("pageerror", lambda e: problems.append(str(e)))

            page.goto(f"{serve.url}/dashboard/?token={DASH_TOKEN}")
            row = page.locator(f'#runs tr[data-run="{first["runs"][0]}"]')
            assert "build_branch" in row.inner_text()
            assert "succeeded" in row.inner_text()
            unmatched = page.locator("#events tr", has_text="no rule matched")
            assert unmatched.count() == 1
            unmatched.locator("summary").click()  # "why not": the --explain reasons
            assert 'payload.ref ~ "refs/heads/*" (line 7:48) failed: payload.ref was "v1.2.0"' in unmatched.inner_text()
            page.wait_for_selector('#live[data-state="on"]', timeout=10_000)
            page.evaluate("window.__not_reloaded = true")

            # A second webhook: its run appears, and then finishes, without a reload.
            second = serve.hook("/hooks/build", "refs/heads/login-form")
            run2 = second["runs"][0]
            page.wait_for_selector(f'#runs tr[data-run="{run2}"]', timeout=15_000)
            page.wait_for_selector(f'#runs tr[data-run="{run2}"][data-status="succeeded"]', timeout=15_000)
            assert "login-form" in page.locator(f'#runs tr[data-run="{run2}"]').inner_text()
            page.wait_for_selector(f'#events tr[data-event="{second["event_id"]}"]', timeout=15_000)

            # A failing run shows its status and exit code live too.
            third = serve.hook("/hooks/check", "refs/heads/login-form")
            run3 = third["runs"][0]
            page.wait_for_selector(f'#runs tr[data-run="{run3}"][data-status="failed"]', timeout=15_000)
            assert "3" in page.locator(f'#runs tr[data-run="{run3}"] td[data-label="Exit"]').inner_text()
            assert page.evaluate("window.__not_reloaded") is True
            page.wait_for_timeout(2600)  # let the highlight of fresh rows fade before any screenshot

            if screenshot:
                Path(screenshot).parent.mkdir(parents=True, exist_ok=True)
                page.screenshot(path=screenshot, full_page=True)
                phone = browser.new_page(viewport={"width": 390, "height": 844}, device_scale_factor=2,
                                         is_mobile=True, has_touch=True)
                phone.goto(f"{serve.url}/dashboard/?token={DASH_TOKEN}")
                phone.wait_for_selector('#live[data-state="on"]', timeout=10_000)
                shot = Path(screenshot)
                phone.screenshot(path=str(shot.with_name(shot.stem + "-phone" + shot.suffix)), full_page=True)
                phone.close()

            # The run's own page, reached by its link, shows its log; the token is carried on.
            page.click(f'#runs tr[data-run="{first["runs"][0]}"] a')
            page.wait_for_selector("pre.log")
            assert "building refs/heads/main" in page.inner_text("pre.log")
            assert f"token={DASH_TOKEN}" in page.url
            if screenshot:
                shot = Path(screenshot)
                page.screenshot(path=str(shot.with_name(shot.stem + "-run" + shot.suffix)), full_page=True)

            assert problems == [], problems
            page.close()
        finally:
            browser.close()
