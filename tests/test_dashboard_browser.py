"""The dashboard in a real browser: Debian's chromium, driven by Playwright's Python package.

A real ``triggerc serve --dashboard`` subprocess on a free loopback port, real webhooks
POSTed with httpx to a token-protected generic route, real exec actions. Each test checks
what a user sees and does: runs appearing without a reload (server-sent events), a running
run's log followed live (and not when the user scrolls up) and its duration counted on,
events paged, the filters (their hints whole), re-run and cancel with the token (and nothing
without it, or from another site), the sources page, a relative time's exact one on a phone
(tapped). A console error (a CSP violation would be one) fails the test.

Without ``/usr/bin/chromium`` or the ``playwright`` package the tests are skipped with the
reason, except under ``CI=true``, where they fail (``.ci/run`` installs chromium;
Playwright's own browser download is not used).

Screenshots: ``TRIGGERLANG_SCREENSHOTS=docs pytest tests/test_dashboard_browser.py``
saves the overview, a run's live log, the runs page and the sources page at desktop
width (1280 px) and phone width (390 px) in that folder: ``docs/dashboard-*.png``, which
the README shows, were taken this way.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import httpx
import pytest

from test_dashboard import RULES, Serve, wait_for  # serve --dashboard as a subprocess

CHROMIUM = Path("/usr/bin/chromium")
LAUNCH_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
               "--disable-component-update", "--disable-sync", "--no-first-run"]

try:
    from playwright.sync_api import expect, sync_playwright
except ImportError:  # pragma: no cover - depends on the machine
    sync_playwright = None

_MISSING = ("the playwright package is not installed (pip install playwright)" if sync_playwright is None else
            f"{CHROMIUM} is missing (apt-get install chromium)" if not CHROMIUM.exists() else None)


@pytest.fixture(autouse=True)
def _browser_available() -> None:
    if _MISSING is not None:
        if os.environ.get("CI") == "true":
            pytest.fail(f"the browser tests cannot run: {_MISSING}")
        pytest.skip(_MISSING)


DASH_TOKEN = "dashboard-token-for-the-browser-test"
SHOTS = os.environ.get("TRIGGERLANG_SCREENSHOTS")

# RULES plus a slow action that writes to stdout and stderr, for the live log
LIVE_RULES = RULES + r"""
action tick(ref) = shell "i=0; while [ $i -lt 30 ]; do i=$((i+1)); echo \"tick $i of $TRG_INPUT_REF\"; echo \"warning: slow step $i\" >&2; sleep 0.1; done"
tick_branch: on http.post path="/hooks/tick" run tick with <payload.ref>
action hang(ref) = exec "sleep" "60"
hang_branch: on http.post path="/hooks/hang" run hang with <payload.ref>
"""


@pytest.fixture
def serve(tmp_path: Path):
    s = Serve(tmp_path, dashboard_token=DASH_TOKEN, rules=LIVE_RULES)
    try:
        yield s
    finally:
        s.stop_cleanly()


@pytest.fixture
def browser():
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=LAUNCH_ARGS)
        try:
            yield b
        finally:
            b.close()


class Watched:
    """A page whose console errors and page errors are collected (a CSP violation is one)."""

    def __init__(self, page) -> None:
        self.page = page
        self.problems: list[str] = []
        page.on("console", lambda m: self.problems.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: self.problems.append(str(e)))

    def ok(self, allowed: tuple[str, ...] = ()) -> None:
        left = [p for p in self.problems if not any(a in p for a in allowed)]
        assert left == [], left


def new_page(browser, width: int = 1280):
    """A page in a browser context of its own (its own cookies)."""
    if width < 600:
        context = browser.new_context(viewport={"width": width, "height": 844}, device_scale_factor=2,
                                      is_mobile=True, has_touch=True)
    else:
        context = browser.new_context(viewport={"width": width, "height": 860})
    return Watched(context.new_page())


def wait_lines(page, n: int, timeout: float = 15_000) -> None:
    """Until the log shows at least ``n`` lines (a locator wait: the page's CSP forbids the
    eval that wait_for_function needs)."""
    page.locator("#log .l").nth(n - 1).wait_for(state="attached", timeout=timeout)


def hints_cut(page) -> list[str]:
    """The filter boxes that cut their hint (placeholder), measured with the hint as the value
    (a box with a list keeps room for its picker either way)."""
    fits = "e => { const v = e.value; e.value = e.placeholder; const ok = e.scrollWidth <= e.clientWidth; e.value = v; return ok; }"
    return [box.get_attribute("name") for box in page.locator("form.filters input[placeholder]").all()
            if not box.evaluate(fits)]


def shoot(browser, url: str, name: str, ready: str | None = None, settle: int = 2700) -> None:
    """Screenshots for the README, at desktop and phone width (TRIGGERLANG_SCREENSHOTS);
    ``settle``: milliseconds to wait once ready (the highlight of fresh rows fades in 2.5 s)."""
    if not SHOTS:
        return
    Path(SHOTS).mkdir(parents=True, exist_ok=True)
    for width, suffix in ((1280, ""), (390, "-phone")):
        w = new_page(browser, width)
        w.page.goto(url)
        if ready:
            w.page.wait_for_selector(ready, timeout=10_000)
        w.page.wait_for_timeout(settle)
        w.page.screenshot(path=str(Path(SHOTS) / f"dashboard-{name}{suffix}.png"), full_page=True)
        w.page.context.close()


def test_a_webhook_run_shows_and_the_next_one_appears_live(serve: Serve, browser) -> None:
    # The dashboard answers nobody without its token, even on loopback.
    assert serve.http.get("/dashboard/").status_code == 401
    assert serve.http.get("/api/runs").status_code == 401

    first = serve.hook("/hooks/build", "refs/heads/main")
    assert serve.wait_final(first["runs"][0])["status"] == "succeeded"
    serve.hook("/hooks/build", "v1.2.0")  # matches nothing: a tag, not a branch

    w = new_page(browser)
    page = w.page
    page.goto(f"{serve.url}/dashboard/?token={DASH_TOKEN}")
    row = page.locator(f'#runs tr[data-run="{first["runs"][0]}"]')
    assert "build_branch" in row.inner_text()
    assert "succeeded" in row.inner_text()
    # times are relative, with the exact UTC time on hover
    queued = row.locator('td[data-label="Queued"] time')
    assert re.fullmatch(r"just now|\d+ s ago", queued.inner_text()), queued.inner_text()
    assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC", queued.get_attribute("title"))
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

    # The run's own page, reached by its link, shows its log; the token is carried on.
    # On a phone, which shows no title, a tap on a relative time shows the exact one under it
    # (until a tap elsewhere); it fits the card
    phone = new_page(browser, 390)
    phone.page.goto(f"{serve.url}/dashboard/?token={DASH_TOKEN}")
    tapped = phone.page.locator(f'#runs tr[data-run="{first["runs"][0]}"] td[data-label="Queued"] time')
    shown = "el => [getComputedStyle(el, '::after').content, getComputedStyle(el, '::after').display]"
    assert tapped.evaluate(shown)[0] == "none"
    tapped.tap()
    assert tapped.evaluate(shown) == [f'"{tapped.get_attribute("title")}"', "block"]
    cell = tapped.locator("xpath=..")
    assert cell.evaluate("td => td.scrollWidth <= td.clientWidth && td.getBoundingClientRect().right <= 390")
    phone.page.locator("h1").tap()
    assert tapped.evaluate(shown)[0] == "none"
    phone.ok()
    phone.page.context.close()

    page.click(f'#runs tr[data-run="{first["runs"][0]}"] a')
    page.wait_for_selector("#log .l")
    assert "building refs/heads/main" in page.inner_text("#log")
    assert f"token={DASH_TOKEN}" in page.url
    w.ok()
    if SHOTS:  # the README's board has a run still going too (serve's stop cancels it)
        hang = serve.hook("/hooks/hang", "refs/heads/release")["runs"][0]
        wait_for(lambda: serve.api(f"/api/runs/{hang}")["status"] == "running", "the run to start")
    shoot(browser, f"{serve.url}/dashboard/?token={DASH_TOKEN}", "overview", '#live[data-state="on"]')
    shoot(browser, f"{serve.url}/dashboard/runs?token={DASH_TOKEN}", "runs", '#live[data-state="on"]')


def test_a_running_runs_log_is_followed_live(serve: Serve, browser) -> None:
    run = serve.hook("/hooks/tick", "refs/heads/live")["runs"][0]
    w = new_page(browser)
    page = w.page
    page.set_viewport_size({"width": 1280, "height": 500})  # the log box (70% of it) overflows soon
    page.goto(f"{serve.url}/dashboard/runs/{run}?token={DASH_TOKEN}")
    page.wait_for_selector('#live[data-state="on"]', timeout=10_000)
    count = "document.querySelectorAll('#log .l').length"  # evaluate() runs outside the page's CSP
    at_end = "(() => { const b = document.getElementById('log-box'); return b.scrollHeight - b.scrollTop - b.clientHeight < 8; })()"
    wait_lines(page, 24)
    first_seen = page.evaluate(count)
    assert page.evaluate(at_end), "the view follows the end of the log"
    # stdout and stderr lines, in the order they came, numbered by CSS (the numbers are not in the text)
    text = page.inner_text("#log")
    assert "tick 1 of refs/heads/live" in text and "warning: slow step 1" in text
    number = page.evaluate("getComputedStyle(document.querySelector('#log .l:nth-child(3)'), '::before').content")
    assert number.startswith("counter(") or number.strip('"') == "3", number

    # The user scrolls up: new lines keep coming, the view stays where the user put it.
    page.evaluate("document.getElementById('log-box').scrollTop = 0")
    page.wait_for_selector("#follow:not([hidden])", timeout=5_000)
    wait_lines(page, first_seen + 6)
    assert page.evaluate("document.getElementById('log-box').scrollTop") == 0
    page.click("#follow")
    assert page.evaluate(at_end)

    # The run ends: its status changes on the page (no reload), the last lines are there.
    page.wait_for_selector('#run-status[data-status="succeeded"]', timeout=20_000)
    wait_lines(page, 62, 10_000)
    text = page.inner_text("#log")
    assert "tick 30 of refs/heads/live" in text and "warning: slow step 30" in text
    assert re.search(r"# run \d+ succeeded", text)
    assert page.locator("#rerun").count() == 1  # with the token, an ended run can be re-run
    # and a screen reader hears it from the page's live region (the badge changes silently)
    page.wait_for_selector(f'#announce[role="status"]:has-text("Run #{run} tick_branch succeeded")', state="attached",
                           timeout=10_000)
    lines = page.evaluate("Array.from(document.querySelectorAll('#log .l')).map(l => l.textContent)")
    assert lines == [x["text"] for x in serve.api(f"/api/runs/{run}/log?offset=0")["lines"]]  # none lost, none twice
    # the download has the whole log
    dl = serve.http.get(f"/dashboard/runs/{run}/log", headers={"Authorization": f"Bearer {DASH_TOKEN}"})
    assert dl.status_code == 200 and "tick 30 of refs/heads/live" in dl.text and "\x02" not in dl.text
    w.ok()
    if SHOTS:
        slow = serve.hook("/hooks/tick", "refs/heads/screenshot")["runs"][0]
        # while it goes (its 3 s): the log as it is followed live
        shoot(browser, f"{serve.url}/dashboard/runs/{slow}?token={DASH_TOKEN}", "run", "#log .l:nth-child(12)", 300)


def test_events_are_paged_and_each_table_filters_its_own(serve: Serve, browser) -> None:
    sent = [serve.hook("/hooks/build", f"refs/heads/b{n}")["event_id"] for n in range(5)]
    sent += [serve.hook("/hooks/build", f"v{n}")["event_id"] for n in range(2)]  # match nothing
    newest_first = list(reversed(sent))
    w = new_page(browser)
    page = w.page
    page.goto(f"{serve.url}/dashboard/events?limit=3&token={DASH_TOKEN}")
    shown = []
    for _ in range(3):
        ids = page.eval_on_selector_all("#events tr[data-event]", "rows => rows.map(r => r.dataset.event)")
        shown += ids
        older = page.locator("a", has_text="older events")
        if older.count() == 0:
            break
        older.click()
        page.wait_for_load_state()
    assert shown == newest_first  # three pages, no event twice, none missing
    assert f"token={DASH_TOKEN}" in page.url and "before=" in page.url
    page.click("text=newest")
    page.wait_for_url(lambda url: "before=" not in url)  # the click only starts the navigation
    page.wait_for_load_state()
    assert page.eval_on_selector_all("#events tr[data-event]", "rows => rows.map(r => r.dataset.event)") == \
        newest_first[:3]

    # every filter box shows its whole hint ("1h, 7d, 2026-11-24 19:00" was cut to
    # "1h, 7d, 2026-11-2"), on a desktop and on a phone
    phone = new_page(browser, 390)
    for p in (page, phone.page):
        for table in ("events", "runs"):
            p.goto(f"{serve.url}/dashboard/{table}?token={DASH_TOKEN}")
            assert hints_cut(p) == [], (table, p.viewport_size)
    phone.page.context.close()
    # the events' own filters: matched nothing
    page.goto(f"{serve.url}/dashboard/events?token={DASH_TOKEN}")
    page.check('input[name="unmatched"]')
    page.click("form.filters button")
    page.wait_for_url(re.compile(r"unmatched=1"))
    assert page.eval_on_selector_all("#events tr[data-event]", "rows => rows.map(r => r.dataset.event)") == \
        newest_first[:2]
    # the runs' own filters: a search by an input value
    page.goto(f"{serve.url}/dashboard/runs?token={DASH_TOKEN}")
    page.fill('input[name="q"]', "refs/heads/b3")
    page.click("form.filters button")
    page.wait_for_url(re.compile(r"q=refs"))
    rows = page.locator("#runs tr[data-run]")
    assert rows.count() == 1 and "refs/heads/b3" in rows.inner_text()
    # a cursor that names nothing is a 400 with a message
    page.goto(f"{serve.url}/dashboard/events?before=evt_nope&token={DASH_TOKEN}")
    assert "there is no event 'evt_nope'" in page.inner_text("main")
    w.ok(allowed=("status of 400",))


def test_rerun_and_cancel_with_the_token_and_a_forged_form_refused(serve: Serve, browser) -> None:
    first = serve.hook("/hooks/build", "refs/heads/main")["runs"][0]
    serve.wait_final(first)
    w = new_page(browser)
    page = w.page
    page.goto(f"{serve.url}/dashboard/runs/{first}?token={DASH_TOKEN}")
    page.click("#rerun")
    page.wait_for_url(re.compile(r"/dashboard/runs/(\d+)"))
    new = int(re.search(r"/dashboard/runs/(\d+)", page.url).group(1))
    assert new != first
    assert f"#{first}" in page.inner_text("#summary")  # "Re-run of #1"
    page.wait_for_selector('#run-status[data-status="succeeded"]', timeout=15_000)
    page.goto(f"{serve.url}/dashboard/runs/{first}?token={DASH_TOKEN}")
    assert "re-run as #" in page.inner_text("#summary") and "by dashboard from 127.0.0.1" in page.inner_text("#summary")

    # cancel a running run: its process group is stopped, the page shows it cancelled
    hang = serve.hook("/hooks/hang", "x")["runs"][0]
    wait_for(lambda: serve.api(f"/api/runs/{hang}")["status"] == "running", "the run to start")
    page.goto(f"{serve.url}/dashboard/runs/{hang}?token={DASH_TOKEN}")
    # its Duration counts on each second (live.js, from the seconds the server rendered)
    took = page.locator("#summary [data-running]")
    before = took.inner_text()
    assert re.fullmatch(r"running \d+ s", before), before
    expect(took).not_to_have_text(before, timeout=5_000)
    after = took.inner_text()
    assert re.fullmatch(r"running \d+ s", after) and int(after.split()[1]) > int(before.split()[1]), (before, after)
    page.click("#cancel")
    page.wait_for_selector('#run-status[data-status="cancelled"]', timeout=15_000)
    run = serve.api(f"/api/runs/{hang}")
    assert run["status"] == "cancelled" and run["error"] == "cancelled by dashboard from 127.0.0.1"
    assert run["duration"] < 10

    # a form on another site that posts to the dashboard, in the same browser (which has the
    # dashboard's session cookie by now): refused, nothing written
    before = len(serve.api("/api/runs?limit=500")["runs"])
    evil = new_page(browser)
    evil.page.route("http://evil.test/", lambda route: route.fulfill(
        content_type="text/html", body=f'<form method="post" action="{serve.url}/dashboard/runs/{first}/rerun">'
                                       f'<input name="csrf" value="{"0" * 64}"></form>'
                                       f'<script>document.forms[0].submit()</script>'))
    with evil.page.expect_response(re.compile(rf"/dashboard/runs/{first}/rerun")) as answer:
        evil.page.goto("http://evil.test/")
    assert answer.value.status in (401, 403)
    same_browser = page.context.new_page()  # same context: the session cookie would be sent if allowed
    same_browser.route("http://evil.test/", lambda route: route.fulfill(
        content_type="text/html", body=f'<form method="post" action="{serve.url}/dashboard/runs/{first}/rerun">'
                                       f'<input name="csrf" value="{"0" * 64}"></form>'
                                       f'<script>document.forms[0].submit()</script>'))
    with same_browser.expect_response(re.compile(rf"/dashboard/runs/{first}/rerun")) as answer:
        same_browser.goto("http://evil.test/")
    assert answer.value.status in (401, 403)
    assert len(serve.api("/api/runs?limit=500")["runs"]) == before
    w.ok()


def test_without_a_token_the_dashboard_is_read_only(tmp_path: Path, browser) -> None:
    s = Serve(tmp_path)
    try:
        run = s.hook("/hooks/build", "refs/heads/main")["runs"][0]
        s.wait_final(run)
        w = new_page(browser)
        w.page.goto(f"{s.url}/dashboard/runs/{run}")
        assert w.page.locator("#rerun").count() == 0 and w.page.locator("#cancel").count() == 0
        assert "Re-run and cancel need the dashboard token" in w.page.inner_text("footer")
        status = w.page.evaluate(f"fetch('/dashboard/runs/{run}/rerun', {{method: 'POST'}}).then(r => r.status)")
        assert status == 403
        assert len(s.api("/api/runs")["runs"]) == 1
        w.ok(allowed=("status of 403",))
    finally:
        s.stop_cleanly()


def test_the_sources_page(serve: Serve, browser) -> None:
    for ref in ("refs/heads/a", "refs/heads/b"):
        serve.wait_final(serve.hook("/hooks/build", ref)["runs"][0])
    serve.wait_final(serve.hook("/hooks/check", "refs/heads/a")["runs"][0])
    refused = serve.http.post("/hooks/build", json={"ref": "refs/heads/x"}, headers={"Authorization": "Bearer wrong"})
    assert refused.status_code == 401

    def recorded() -> list[dict]:
        return [d for r in serve.api("/api/sources")["routes"] for d in r["deliveries"]]

    wait_for(lambda: len(recorded()) == 4, "the four deliveries in the history")
    w = new_page(browser)
    page = w.page
    page.goto(f"{serve.url}/dashboard/sources?token={DASH_TOKEN}")
    route = page.locator('section.route[data-route="/hooks/build"]')
    assert "bearer token (bearer) in authorization, secret hook" in route.inner_text()
    rows = page.locator("table.deliveries tbody tr")
    assert rows.count() == 4  # newest first: the refused one
    assert "401" in rows.nth(0).inner_text() and "invalid" in rows.nth(0).inner_text()
    assert "202" in rows.nth(1).inner_text() and "valid" in rows.nth(1).inner_text()
    assert "http.post" in rows.nth(1).inner_text()  # the event it made, linked
    build = page.locator('tr[data-rule="build_branch"]')
    assert "100%" in build.inner_text() and build.locator("a.dot").count() == 2
    check = page.locator('tr[data-rule="check_branch"]')
    assert "0%" in check.inner_text() and check.locator("a.dot.s-failed").count() == 1
    w.ok()
    shoot(browser, f"{serve.url}/dashboard/sources?token={DASH_TOKEN}", "sources")


def test_the_api_of_a_run_log(serve: Serve) -> None:
    run = serve.hook("/hooks/tick", "refs/heads/api")["runs"][0]
    serve.wait_final(run)
    body = serve.api(f"/api/runs/{run}/log")
    texts = [x["text"] for x in body["lines"]]
    assert len(texts) == 62 and "tick 1 of refs/heads/api" in texts and "warning: slow step 30" in texts
    assert body["final"] is True and body["status"] == "succeeded"
    assert httpx.get(f"{serve.url}/api/runs/{run}/log").status_code == 401
