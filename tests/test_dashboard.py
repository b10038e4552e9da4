"""The dashboard (triggerlang/dashboard/app.py) and `triggerc runs/events --follow`.

Pages, filters, the JSON API's shapes, the token, loopback-only access, escaping, and
read-only-ness through Starlette's TestClient over a journal written with the real
:class:`Journal`; the live stream against a real uvicorn on a free loopback port; and
``triggerc serve --dashboard`` / ``triggerc dashboard`` / ``--follow`` as subprocesses.
The browser test (chromium) is tests/test_dashboard_browser.py; it reuses :class:`Serve`.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import json
import os
import re
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any, Iterator

import httpx
import pytest
from starlette.testclient import TestClient

from runtime_helpers import kill_tagged, tagged
from triggerlang.dashboard.app import LOG_TAIL, _running_text, create_app, read_log
from triggerlang.events import Event
from triggerlang.runtime.journal import Journal, PlannedRun

LOCAL = ("127.0.0.1", 40000)
REMOTE = ("203.0.113.9", 40000)
XSS = "<script>alert('x')</script>"

# The rules the journal below pretends to come from (for the explain reasons).
RULES = """\
secret hook = env "HOOK_TOKEN"
source http path="/hooks/*" token=hook

action build(ref) = exec "sh" "-c" "echo building $1; echo compiled 42 files; echo done" "build" ref
action check(ref) = exec "sh" "-c" "echo checking $1; echo 'lint: 2 problems' >&2; exit 3" "check" ref

build_branch: on http.post path="/hooks/build" payload.ref ~ "refs/heads/*"
    run build with <payload.ref>
check_branch: on http.post path="/hooks/check" payload.ref ~ "refs/heads/*"
    run check with <payload.ref>
"""


def http_event(path: str, ref: Any, **extra: Any) -> Event:
    return Event("http", "post", {"method": "POST", "path": path, "headers": {"authorization": "<redacted>"},
                                  "query": {}, "payload": {"ref": ref, **extra}, "text": "", "remote": "127.0.0.1"})


@pytest.fixture
def world(tmp_path: Path) -> dict[str, Any]:
    """A journal with: run 1 succeeded (with a log), run 2 failed, run 3 queued, an event
    that matched nothing (with a <script> in its payload), and the rules file."""
    rules = tmp_path / "rules.trg"
    rules.write_text(RULES, encoding="utf-8")
    state = tmp_path / "state"
    j = Journal(state)
    e1 = http_event("/hooks/build", "refs/heads/main")
    r1 = j.record_event(e1, [PlannedRun("build_branch", "build", {"ref": "refs/heads/main"})]).run_ids[0]
    j.mark_running(r1)
    j.run_log_path(r1).write_text("# run 1\nbuilding refs/heads/main\n\x1b[31mred text\x1b[0m\n", encoding="utf-8")
    j.mark_finished(r1, "succeeded", 0)
    e2 = http_event("/hooks/check", "refs/heads/main")
    r2 = j.record_event(e2, [PlannedRun("check_branch", "check", {"ref": "refs/heads/main"})]).run_ids[0]
    j.mark_running(r2)
    j.mark_finished(r2, "failed", 3, error="exited with code 3")
    e3 = http_event("/hooks/build", "v1.2.0", note=XSS)
    j.record_event(e3, [])
    e4 = http_event("/hooks/build", "refs/heads/x")
    r3 = j.record_event(e4, [PlannedRun("build_branch", "build", {"ref": "<img src=x onerror=alert(1)>"})]).run_ids[0]
    j.close()
    return {"state": state, "rules": rules, "events": [e1, e2, e3, e4], "runs": [r1, r2, r3]}


def client(world: dict[str, Any], rules: bool = True, token: str | None = None, peer=LOCAL) -> TestClient:
    app = create_app(world["state"], token=token, rules_path=world["rules"] if rules else None)
    return TestClient(app, client=peer, follow_redirects=False)


def run_ids(html: str) -> list[int]:
    return [int(x) for x in re.findall(r'<tr data-run="(\d+)"', html)]


def event_ids(html: str) -> list[str]:
    return re.findall(r'<tr data-event="([^"]+)"', html)


# --------------------------------------------------------------------------- pages


def test_overview_lists_runs_and_events_newest_first(world) -> None:
    r = client(world).get("/dashboard/")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/html")
    html = r.text
    assert run_ids(html) == [3, 2, 1]
    assert event_ids(html) == [e.id for e in reversed(world["events"])]
    assert "exited with code 3" in html and 'class="status s-failed"' in html
    # the event that matched nothing says why, with the --explain reasons
    assert "no rule matched" in html
    assert "payload.ref ~ &#34;refs/heads/*&#34; (line 7:48) failed: payload.ref was &#34;v1.2.0&#34;" in html
    assert 'path=&#34;/hooks/check&#34; (line 9:28) failed' in html
    # the live stream's URL is on the page, and the script that uses it
    assert 'data-stream="/dashboard/stream' in html and "/dashboard/static/live.js" in html


def test_each_page_has_one_heading_its_nav_mark_and_the_live_script_once(world) -> None:
    """The overview had no h1, the groups page no nav mark and live.js twice (two streams per
    tab); a square of the sources page's sparkline was a link with no name for a screen
    reader, the running one drew the badge's dot beside it, and the log could not be
    scrolled from the keyboard."""
    c = client(world)
    e = world["events"][0].id
    for path, current in (("/dashboard/", "Overview"), ("/dashboard/runs", "Runs"), ("/dashboard/events", "Events"),
                          ("/dashboard/sources", "Sources"), ("/dashboard/groups", "Groups"),
                          ("/dashboard/runs/1", "Runs"), (f"/dashboard/events/{e}", "Events")):
        html = c.get(path).text
        assert html.count("<h1") == 1, path
        assert re.findall(r'<a href="[^"]*" aria-current="page">(\w+)</a>', html) == [current], path
        assert html.count("/static/live.js") == 1, path
    assert 'aria-label="run #1 succeeded"' in c.get("/dashboard/sources").text
    css = c.get("/dashboard/static/style.css").text
    assert ".status.s-running::before" in css and not re.search(r"(^|[\s,}])\.s-running::before", css)
    assert '<div class="log-box" id="log-box" tabindex="0" role="region" aria-label="log of run #1">' in \
        c.get("/dashboard/runs/1").text


def test_the_overview_counts_the_failures_of_the_day(world) -> None:
    """A failure was only in the latest runs' table, where the runs of a busy rule pushed it
    out: the overview counts the failed runs of the last 24 h, a link to them."""
    html = client(world).get("/dashboard/").text
    assert '<a class="tally bad" href="/dashboard/runs?status=failed&amp;since=24h"><b>1</b> failed in 24 h</a>' in html
    assert "timed out in 24 h" not in html  # said only when there is one
    assert run_ids(client(world).get("/dashboard/runs?status=failed&since=24h").text) == [2]


def test_pages_send_security_headers(world) -> None:
    r = client(world).get("/dashboard/")
    csp = r.headers["content-security-policy"]
    assert "script-src 'self'" in csp and "default-src 'none'" in csp and "unsafe-inline" not in csp
    assert r.headers["x-content-type-options"] == "nosniff"
    assert r.headers["referrer-policy"] == "same-origin"  # a form POST carries its Origin; no token leaves the site
    assert r.headers["cache-control"] == "no-store"
    # no inline script or style on the page: the CSP would block them
    assert "<script>" not in r.text and "style=" not in r.text


@pytest.mark.parametrize("query, runs", [
    ("rule=build_branch", [3, 1]),
    ("status=failed", [2]),
    ("rule=check_branch&status=succeeded", []),
    ("q=3", [3]),                          # a run id
    ("q=%233", [3]),                       # "#3"
    ("q=refs/heads/main", [2, 1]),         # an input value
    ("q=ONERROR", [3]),                    # case-insensitive, inside the JSON text
    ("q=%C2%B9", []),                      # "¹": a digit to str.isdigit, not a run id (it was a 500)
    ("since=1h", [3, 2, 1]),
    ("until=2000-01-01", []),
    ("since=2000-01-01%2000:00&until=2999-01-01", [3, 2, 1]),
])
def test_run_filters(world, query: str, runs: list[int]) -> None:
    c = client(world)
    assert run_ids(c.get(f"/dashboard/runs?{query}").text) == runs
    assert [r["id"] for r in c.get(f"/api/runs?{query}").json()["runs"]] == runs


def test_runs_are_found_by_their_event_and_its_delivery_id(world, tmp_path: Path) -> None:
    j = Journal(world["state"])
    e = http_event("/hooks/build", "refs/heads/dlv")
    rid = j.record_event(e, [PlannedRun("build_branch", "build", {"ref": "refs/heads/dlv"})],
                         delivery_key="github:72d3162e-cc78-11e3-81ab-4c9367dc0958").run_ids[0]
    j.close()
    c = client(world)
    for q in (e.id, "72d3162e-cc78", "github:72d3162e-cc78-11e3-81ab-4c9367dc0958"):
        assert [r["id"] for r in c.get("/api/runs", params={"q": q}).json()["runs"]] == [rid], q
        assert [x["id"] for x in c.get("/api/events", params={"q": q}).json()["events"]] == [e.id], q
    # an event's data is searched too (a sha that is no input of any run)
    assert [x["id"] for x in c.get("/api/events", params={"q": "v1.2"}).json()["events"]] == [world["events"][2].id]


@pytest.mark.parametrize("query, events", [
    ("unmatched=1", [2]),
    ("source=github", []),
    ("source=http&type=post", [3, 2, 1, 0]),
    ("type=push", []),
    ("q=v1.2.0", [2]),
    ("q=%3Cscript%3E", [2]),  # found in the JSON text, as the payload wrote it
    ("since=1h&unmatched=1", [2]),
    ("until=2000-01-01", []),
])
def test_event_filters(world, query: str, events: list[int]) -> None:
    c = client(world)
    want = [world["events"][i].id for i in events]
    assert event_ids(c.get(f"/dashboard/events?{query}").text) == want
    assert [e["id"] for e in c.get(f"/api/events?{query}").json()["events"]] == want


def test_each_table_has_its_own_filters(world) -> None:
    c = client(world)
    runs = c.get("/dashboard/runs").text
    assert 'name="status"' in runs and 'name="rule"' in runs and 'name="q"' in runs and 'name="since"' in runs
    assert 'name="source"' not in runs and 'name="unmatched"' not in runs
    events = c.get("/dashboard/events").text
    assert 'name="source"' in events and 'name="unmatched"' in events and 'name="q"' in events
    assert 'name="status"' not in events
    # the overview's old filters go to the table they filter
    r = c.get("/dashboard/?status=failed&rule=x")
    assert r.status_code == 307 and r.headers["location"] == "/dashboard/runs?status=failed&rule=x"
    r = c.get("/dashboard/?source=git")
    assert r.status_code == 307 and r.headers["location"] == "/dashboard/events?source=git"


def test_filter_forms_keep_their_values(world) -> None:
    html = client(world).get("/dashboard/runs?rule=check_branch&status=failed&q=abc&since=7d").text
    assert "<option selected>check_branch</option>" in html
    assert '<option value="failed" selected>' in html
    assert 'name="q" value="abc"' in html and 'name="since" value="7d"' in html
    assert 'href="/dashboard/runs">clear</a>' in html
    html = client(world).get("/dashboard/events?unmatched=1&source=http").text
    assert 'name="unmatched" value="1" checked' in html and "<option selected>http</option>" in html


def test_paging_runs(world) -> None:
    c = client(world)
    html = c.get("/dashboard/runs?limit=2").text
    assert run_ids(html) == [3, 2]
    m = re.search(r'href="(/dashboard/runs\?[^"]*before=2[^"]*)">older runs', html)
    assert m, html
    older = c.get(m.group(1).replace("&amp;", "&")).text
    assert run_ids(older) == [1]
    assert "data-stream" not in older  # an older page is not live
    assert "older runs" not in older and "newest" in older


def test_paging_events_by_cursor(world) -> None:
    c = client(world)
    ids = [e.id for e in reversed(world["events"])]
    html = c.get("/dashboard/events?limit=3").text
    assert event_ids(html) == ids[:3]
    m = re.search(r'href="(/dashboard/events\?[^"]*before=[^"]*)">older events', html)
    assert m, html
    older = c.get(m.group(1).replace("&amp;", "&")).text
    assert event_ids(older) == ids[3:] and "data-stream" not in older
    page = c.get("/api/events?limit=3").json()
    assert [e["id"] for e in page["events"]] == ids[:3] and page["next_before"] == ids[2]
    rest = c.get(f"/api/events?limit=3&before={page['next_before']}").json()
    assert [e["id"] for e in rest["events"]] == ids[3:] and rest["next_before"] is None
    # the cursor keeps the filters: unmatched events before the newest one
    assert [e["id"] for e in c.get(f"/api/events?unmatched=1&before={ids[0]}").json()["events"]] == [ids[1]]


@pytest.mark.parametrize("query", ["status=bogus", "limit=0", "limit=9999", "limit=x", "before=z", "since=yesterday",
                                   "until=2026-13-45"])
def test_bad_run_filters_are_400(world, query: str) -> None:
    c = client(world)
    assert c.get(f"/dashboard/runs?{query}").status_code == 400
    r = c.get(f"/api/runs?{query}")
    assert r.status_code == 400 and "error" in r.json()


@pytest.mark.parametrize("query", ["before=evt_nope", "limit=0", "since=soon", "unmatched=2"])
def test_bad_event_filters_and_cursors_are_400(world, query: str) -> None:
    c = client(world)
    assert c.get(f"/dashboard/events?{query}").status_code == 400
    r = c.get(f"/api/events?{query}")
    assert r.status_code == 400 and "error" in r.json()
    if "before" in query:
        assert "there is no event 'evt_nope'" in r.json()["error"]


def test_run_page_shows_the_log_without_terminal_escapes(world) -> None:
    r = client(world).get("/dashboard/runs/1")
    assert r.status_code == 200
    assert "building refs/heads/main" in r.text and "red text" in r.text
    assert "\x1b" not in r.text and "[31m" not in r.text
    assert 'http-equiv="refresh"' not in r.text  # a finished run's page stays put
    assert f'href="/dashboard/events/{world["events"][0].id}"' in r.text


def test_page_of_a_run_that_never_started_says_why_it_has_no_log(world) -> None:
    """Before: "No output yet (this run wrote no log)" on a run that had ended, as if
    output might still come."""
    j = Journal(world["state"])
    skipped = j.record_event(http_event("/hooks/build", "refs/heads/y"), [PlannedRun(
        "build_branch", "build", {"ref": "refs/heads/y"}, status="skipped",
        error="busy skip: run 1 of this rule is still going")]).run_ids[0]
    j.close()
    r = client(world).get(f"/dashboard/runs/{skipped}")
    assert r.status_code == 200
    assert "No log: this run ended without starting (busy skip: run 1 of this rule is still going)." in r.text
    assert "No output yet" not in r.text
    r = client(world).get(f"/dashboard/runs/{world['runs'][1]}")  # started, and its file is not there
    assert "No log: its log file is gone." in r.text


def test_page_of_a_run_still_going_follows_its_log(world) -> None:
    r = client(world).get("/dashboard/runs/3")
    assert r.status_code == 200
    assert 'http-equiv="refresh"' not in r.text  # no more reloads: the log is streamed
    assert 'data-stream="/dashboard/runs/3/stream?offset=0&amp;shown=queued"' in r.text and "/dashboard/static/run.js" in r.text
    assert "No output yet" in r.text


def test_event_page_explains_and_shows_data(world) -> None:
    e3 = world["events"][2]
    html = client(world).get(f"/dashboard/events/{e3.id}").text
    assert "Why no rule matched" in html
    assert "<code>payload.ref ~ &#34;refs/heads/*&#34;</code> (line 7) failed" in html
    assert "&#34;ref&#34;: &#34;v1.2.0&#34;" in html  # the data, pretty-printed and escaped
    e1 = world["events"][0]
    html = client(world).get(f"/dashboard/events/{e1.id}").text
    assert "Rules that did not match" in html and 'data-run="1"' in html


def test_without_the_rules_the_page_says_why_there_are_no_reasons(world) -> None:
    c = client(world, rules=False)
    html = c.get("/dashboard/").text
    assert "rules not loaded" in html and "--rules FILE" in html
    assert c.get(f"/api/events/{world['events'][2].id}").json()["not_matched"] is None


def test_rules_that_do_not_compile_are_reported(world) -> None:
    world["rules"].write_text("this is not a rule\n", encoding="utf-8")
    html = client(world).get("/dashboard/").text
    assert "do not compile" in html


def test_the_rules_file_is_recompiled_when_it_changes(world) -> None:
    c = client(world)
    e3 = world["events"][2].id
    assert {x["rule"] for x in c.get(f"/api/events/{e3}").json()["not_matched"]} == {"build_branch", "check_branch"}
    world["rules"].write_text(RULES.replace("check_branch:", "renamed_check:"), encoding="utf-8")
    os.utime(world["rules"], ns=(time.time_ns() + 10**9, time.time_ns() + 10**9))
    assert {x["rule"] for x in c.get(f"/api/events/{e3}").json()["not_matched"]} == {"build_branch", "renamed_check"}


def test_a_reason_of_an_included_file_names_that_file(world) -> None:
    """Before: the reasons of a rule an include read said ``(line 2:28)`` on the event page,
    in the API's ``text`` and in the overview, which reads as a line of the main file; they
    now name the file, as ``triggerc match --explain`` does (README: Rules in several files)."""
    check = RULES[RULES.index("check_branch:"):]
    (world["rules"].parent / "rules.d").mkdir()
    (world["rules"].parent / "rules.d" / "check.trg").write_text("# the check team's\n" + check, encoding="utf-8")
    world["rules"].write_text(RULES.replace(check, 'include "rules.d/*.trg"\n'), encoding="utf-8")
    c = client(world)
    reasons = {x["rule"]: x for x in c.get(f"/api/events/{world['events'][2].id}").json()["not_matched"]}
    assert reasons["check_branch"]["file"] == "rules.d/check.trg" and reasons["build_branch"]["file"] is None
    assert reasons["check_branch"]["text"] == 'path="/hooks/check" (rules.d/check.trg:2:28) failed: path was "/hooks/build"'
    assert reasons["build_branch"]["text"].startswith('payload.ref ~ "refs/heads/*" (line 7:48) failed')
    page = c.get(f"/dashboard/events/{world['events'][2].id}").text
    assert "(line 2 of rules.d/check.trg) failed" in page and "(line 7) failed" in page
    assert "(rules.d/check.trg:2:28) failed" in c.get("/dashboard/").text


def test_the_rules_are_recompiled_when_a_file_their_includes_read_changes(world) -> None:
    """Before: the standalone dashboard recompiled ``--rules main.trg`` when main.trg
    changed only: an edit of an included file, or a file added where a glob reads, left the
    reasons on the old rules, where ``serve`` reloads (README: Rules in several files)."""
    check = RULES[RULES.index("check_branch:"):]
    folder = world["rules"].parent / "rules.d"
    folder.mkdir()
    (folder / "check.trg").write_text(check, encoding="utf-8")
    world["rules"].write_text(RULES.replace(check, 'include "rules.d/*.trg"\n'), encoding="utf-8")
    c = client(world)
    e3 = world["events"][2].id

    def rules() -> set[str]:
        return {x["rule"] for x in c.get(f"/api/events/{e3}").json()["not_matched"] or ()}

    def write(path: Path, text: str) -> None:  # a second later: a coarse clock sees the change
        path.write_text(text, encoding="utf-8")
        os.utime(path, ns=(time.time_ns() + 10**9, time.time_ns() + 10**9))

    assert rules() == {"build_branch", "check_branch"}
    write(folder / "check.trg", check.replace("check_branch:", "renamed_check:"))
    assert rules() == {"build_branch", "renamed_check"}
    write(folder / "more.trg", check.replace("check_branch:", "more_check:"))  # the glob matches one more
    assert rules() == {"build_branch", "renamed_check", "more_check"}
    write(folder / "more.trg", "this is not a rule\n")
    assert "do not compile" in c.get("/dashboard/").text
    write(folder / "more.trg", check.replace("check_branch:", "fixed_check:"))  # fixed: compiled again
    assert rules() == {"build_branch", "renamed_check", "fixed_check"}


@pytest.mark.parametrize("path", ["/dashboard/runs/99", "/dashboard/events/evt_nope", "/dashboard/nope"])
def test_unknown_pages_are_404_html(world, path: str) -> None:
    r = client(world).get(path)
    assert r.status_code == 404
    assert r.headers["content-type"].startswith("text/html")


def test_an_error_page_links_to_the_list_it_came_from(world) -> None:
    """Every error page offered "back to the overview": a run that is not there, or a filter
    that does not parse, now links to its list without filters (the token carried on)."""
    c = client(world, token="t0k")
    for path, link in (("/dashboard/runs/99?token=t0k", '<a href="/dashboard/runs?token=t0k">&larr; all runs</a>'),
                       ("/dashboard/runs?status=bogus&token=t0k", "&larr; all runs</a>"),
                       ("/dashboard/events?since=yesterday&token=t0k",
                        '<a href="/dashboard/events?token=t0k">&larr; all events</a>'),
                       ("/dashboard/groups/grp_nope?token=t0k", "&larr; the correlation groups</a>"),
                       ("/dashboard/nope?token=t0k", '<a href="/dashboard/?token=t0k">&larr; the overview</a>')):
        r = c.get(path)
        assert r.status_code in (400, 404) and link in r.text, path


@pytest.mark.parametrize("path", ["/api/runs/99", "/api/runs/abc", "/api/events/evt_nope", "/api/nope",
                                  "/dashboard/runs/99/stream"])
def test_unknown_api_objects_are_404_json(world, path: str) -> None:
    r = client(world).get(path)
    assert r.status_code == 404
    assert set(r.json()) == {"error"}


def test_a_run_id_past_what_the_store_holds_is_a_4xx_not_a_500(tmp_path: Path) -> None:
    """A number past 2**63 - 1 in a run's URL or a run cursor is no run (SQLite and
    PostgreSQL cannot even look it up): a 404 or 400 with a message, never a 500 and a
    traceback in serve's log."""
    huge = "9" * 23
    s = Serve(tmp_path, dashboard_token="t0ken")
    try:
        auth = {"Authorization": "Bearer t0ken"}
        for path in (f"/api/runs/{huge}", f"/api/runs/{huge}/log", f"/dashboard/runs/{huge}",
                     f"/dashboard/runs/{huge}/log", f"/dashboard/runs/{huge}/stream"):
            r = s.http.get(path, headers=auth)
            assert r.status_code == 404 and f"there is no run {huge}" in r.text, (path, r.status_code, r.text)
        for path in (f"/api/runs/{huge}/rerun", f"/api/runs/{huge}/cancel"):
            r = s.http.post(path, headers=auth)
            assert r.status_code == 404 and r.json() == {"error": f"there is no run {huge}"}, (path, r.text)
        for path in (f"/api/runs?before={huge}", f"/dashboard/runs?before={huge}", f"/api/runs/1/log?offset={huge}"):
            r = s.http.get(path, headers=auth)
            assert r.status_code == 400 and "out of range" in r.text, (path, r.status_code, r.text)
        assert s.http.get(f"/api/runs?before={2**63 - 1}", headers=auth).json() == {"runs": [], "next_before": None}
        r = s.http.get(f"/api/runs?limit={huge}", headers=auth)  # still says the range
        assert r.status_code == 400 and r.json() == {"error": "limit must be between 1 and 500"}, r.text
    finally:
        s.stop_cleanly()


@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE"])
def test_an_unknown_path_is_404_whatever_the_method(world, method: str) -> None:
    """405 says the path exists with other methods (and its Allow lists them): a path no
    route has is 404 for every method, as under serve."""
    c = client(world)
    for path in ("/nope", "/dashboard/nope", "/api/nope"):
        r = c.request(method, path)
        assert r.status_code == 404 and "allow" not in r.headers, (path, r.status_code, r.headers)


def test_redirects_to_the_page(world) -> None:
    c = client(world)
    for path in ("/", "/dashboard"):
        r = c.get(path)
        assert r.status_code == 307 and r.headers["location"] == "/dashboard/"


# --------------------------------------------------------------------------- the API


RUN_KEYS = {"id", "rule", "action", "status", "exit_code", "inputs", "event_id", "queued_at", "started_at",
            "finished_at", "not_before", "attempt", "duration", "wait", "dedupe_key", "error", "rerun_of"}
EVENT_KEYS = {"id", "source", "type", "time", "received_at", "delivery_key", "matched", "depth"}


def test_api_runs(world) -> None:
    c = client(world)
    body = c.get("/api/runs").json()
    assert set(body) == {"runs", "next_before"}
    assert [r["id"] for r in body["runs"]] == [3, 2, 1] and body["next_before"] is None
    for r in body["runs"]:
        assert set(r) == RUN_KEYS  # no server file paths
    r1 = body["runs"][2]
    assert r1["status"] == "succeeded" and r1["exit_code"] == 0 and r1["inputs"] == {"ref": "refs/heads/main"}
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", r1["finished_at"])
    page = c.get("/api/runs?limit=2").json()
    assert [r["id"] for r in page["runs"]] == [3, 2] and page["next_before"] == 2
    assert [r["id"] for r in c.get("/api/runs?before=2").json()["runs"]] == [1]
    assert [r["id"] for r in c.get("/api/runs?rule=check_branch").json()["runs"]] == [2]
    assert [r["id"] for r in c.get("/api/runs?status=queued").json()["runs"]] == [3]
    e1 = world["events"][0].id
    assert [r["id"] for r in c.get(f"/api/runs?event_id={e1}").json()["runs"]] == [1]


def test_api_run(world) -> None:
    body = client(world).get("/api/runs/1").json()
    assert set(body) == RUN_KEYS | {"log", "log_truncated", "event", "audit"}
    assert "building refs/heads/main" in body["log"] and "\x1b" not in body["log"]
    assert body["log_truncated"] is False
    assert body["event"] == {"id": world["events"][0].id, "source": "http", "type": "post",
                             "time": world["events"][0].time, "received_at": body["event"]["received_at"],
                             "delivery_key": None, "matched": ["build_branch"], "depth": 0}


def test_api_events(world) -> None:
    c = client(world)
    body = c.get("/api/events").json()
    assert set(body) == {"events", "next_before"}
    ids = [e.id for e in reversed(world["events"])]
    assert [e["id"] for e in body["events"]] == ids
    for e in body["events"]:
        assert set(e) == EVENT_KEYS | {"runs"}  # the list leaves the (large) data out
    assert [e["runs"] for e in body["events"]] == [[3], [], [2], [1]]
    assert [e["id"] for e in c.get("/api/events?unmatched=1").json()["events"]] == [world["events"][2].id]
    assert len(c.get("/api/events?rule=build_branch").json()["events"]) == 2
    assert len(c.get("/api/events?type=post&limit=1").json()["events"]) == 1
    assert c.get("/api/events?type=push").json()["events"] == []


def test_api_event(world) -> None:
    e3 = world["events"][2]
    body = client(world).get(f"/api/events/{e3.id}").json()
    assert set(body) == EVENT_KEYS | {"data", "runs", "not_matched"}
    assert body["data"]["payload"] == {"ref": "v1.2.0", "note": XSS}
    assert body["runs"] == []
    first = body["not_matched"][0]
    assert first == {"rule": "build_branch", "condition": 'payload.ref ~ "refs/heads/*"', "line": 7,
                     "span": first["span"], "file": None, "field": "payload.ref", "value": "v1.2.0", "note": None,
                     "text": 'payload.ref ~ "refs/heads/*" (line 7:48) failed: payload.ref was "v1.2.0"'}
    e1 = world["events"][0]
    body = client(world).get(f"/api/events/{e1.id}").json()
    assert [r["id"] for r in body["runs"]] == [1] and set(body["runs"][0]) == RUN_KEYS


def test_long_logs_show_their_end(tmp_path: Path) -> None:
    log = tmp_path / "1.log"
    log.write_bytes(b"first line\n" + b"x" * 100 + b"\n" + b"line\n" * (LOG_TAIL // 5) + b"the end\n")
    text, truncated, exists = read_log(log)
    assert truncated and exists and text.endswith("the end\n") and "first line" not in text
    assert read_log(tmp_path / "missing.log") == ("", False, False)


# --------------------------------------------------------------------------- escaping


def test_payloads_inputs_and_logs_are_escaped(world) -> None:
    j = Journal(world["state"])
    j.run_log_path(3).write_text(f"log says {XSS}\n", encoding="utf-8")
    j.close()
    c = client(world)
    for path in ("/dashboard/", "/dashboard/runs/3", f"/dashboard/events/{world['events'][2].id}",
                 "/dashboard/?rule=%3Cscript%3Ealert(1)%3C/script%3E"):
        html = c.get(path).text
        assert "<script>alert" not in html and "<img src=x" not in html, path
    assert "&lt;img src=x onerror=alert(1)&gt;" in c.get("/dashboard/").text
    assert "log says &lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;" in c.get("/dashboard/runs/3").text
    assert "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;" in c.get(f"/dashboard/events/{world['events'][2].id}").text
    # the API returns the data as it is, as JSON (never as HTML)
    r = c.get(f"/api/events/{world['events'][2].id}")
    assert r.headers["content-type"] == "application/json" and r.json()["data"]["payload"]["note"] == XSS


# --------------------------------------------------------------------------- access


def test_without_a_token_only_loopback_clients_are_answered(world) -> None:
    c = client(world, peer=REMOTE)
    assert c.get("/dashboard/").status_code == 403
    r = c.get("/api/runs")
    assert r.status_code == 403 and "loopback" in r.json()["error"]
    assert client(world, peer=("::1", 5000)).get("/api/runs").status_code == 200


@pytest.mark.parametrize("peer", [LOCAL, REMOTE])
def test_a_token_is_required_when_set(world, peer) -> None:
    c = client(world, token="s3cret-token", peer=peer)
    for path in ("/dashboard/", "/dashboard/runs/1", "/api/runs", "/api/runs/1", "/api/events", "/dashboard/stream"):
        r = c.get(path)
        assert r.status_code == 401, path
        assert r.headers["www-authenticate"].startswith("Bearer")
    assert c.get("/api/runs").json()["error"].startswith("this dashboard needs its token")
    for wrong in (c.get("/api/runs", headers={"Authorization": "Bearer wrong"}), c.get("/api/runs?token=wrong")):
        assert wrong.status_code == 401 and wrong.json()["error"].startswith("the token does not match")
    assert c.get("/api/runs", headers={"Authorization": "Basic czNjcmV0LXRva2Vu"}).status_code == 401
    assert c.get("/api/runs", headers={"Authorization": "Bearer s3cret-token"}).status_code == 200
    assert c.get("/api/runs?token=s3cret-token").status_code == 200
    assert c.get("/dashboard/runs/1", headers={"Authorization": "bearer s3cret-token"}).status_code == 200


def test_a_token_from_the_query_is_carried_on_in_links(world) -> None:
    c = client(world, token="s3cret-token")
    html = c.get("/dashboard/?token=s3cret-token").text
    assert 'href="/dashboard/runs/1?token=s3cret-token"' in html
    assert 'data-stream="/dashboard/stream?view=overview&amp;token=s3cret-token"' in html
    assert '<input type="hidden" name="token" value="s3cret-token">' in c.get("/dashboard/runs?token=s3cret-token").text
    # with the header instead, the links stay clean
    html = c.get("/dashboard/", headers={"Authorization": "Bearer s3cret-token"}).text
    assert "token=" not in html
    assert c.get("/dashboard?token=s3cret-token").headers["location"] == "/dashboard/?token=s3cret-token"


def test_static_files_need_no_token(world) -> None:
    c = client(world, token="s3cret-token", peer=REMOTE)
    css = c.get("/dashboard/static/style.css")
    assert css.status_code == 200 and css.headers["content-type"].startswith("text/css")
    js = c.get("/dashboard/static/live.js")
    assert js.status_code == 200 and "EventSource" in js.text
    # a missing one gets the dashboard's own 404 page, as every other path under /dashboard/
    # (it was "not found" in plain text)
    for path in ("/dashboard/static/app.py", "/dashboard/static/nope.css"):
        r = c.get(path)
        assert r.status_code == 404 and r.headers["content-type"].startswith("text/html"), (path, r.headers)
        assert "<h1>Not found</h1>" in r.text and f"nothing at {path}" in r.text and "token" not in r.text


@pytest.mark.parametrize("method", ["POST", "PUT", "PATCH", "DELETE"])
@pytest.mark.parametrize("path", ["/dashboard/", "/api/runs", "/api/runs/1", "/api/events", "/dashboard/runs/1"])
def test_read_only(world, method: str, path: str) -> None:
    before = Journal(world["state"])
    runs, events = before.list_runs(), before.list_events()
    before.close()
    r = client(world).request(method, path)
    assert r.status_code == 405
    assert r.headers["allow"] == "GET, HEAD"  # RFC 9110: a 405 names what the path takes
    after = Journal(world["state"])
    assert after.list_runs() == runs and after.list_events() == events
    after.close()


# --------------------------------------------------------------------------- the stream (real uvicorn)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(cond, what: str, timeout: float = 20.0):
    end = time.monotonic() + timeout
    while True:
        value = cond()
        if value:
            return value
        if time.monotonic() > end:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


@contextlib.contextmanager
def uvicorn_serving(app) -> Iterator[str]:
    """``app`` on a real uvicorn in a thread, on a free loopback port; its base URL."""
    import uvicorn

    port = free_port()
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", log_config=None, lifespan="off",
                            timeout_graceful_shutdown=1)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    wait_for(lambda: server.started, "uvicorn to start")
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)


@pytest.fixture
def live_server(world) -> Iterator[str]:
    with uvicorn_serving(create_app(world["state"], rules_path=world["rules"])) as url:
        yield url


def sse_messages(lines: Iterator[str]) -> Iterator[tuple[str, dict]]:
    kind = None
    for line in lines:
        if line.startswith("event: "):
            kind = line[7:]
        elif line.startswith("data: ") and kind:
            yield kind, json.loads(line[6:])
            kind = None


def test_the_stream_sends_new_runs_events_and_status_changes(world, live_server: str) -> None:
    top_event = world["events"][-1].id
    url = f"{live_server}/dashboard/stream?since_run=3&since_event={top_event}&open=3:queued"
    got: list[tuple[str, dict]] = []
    with httpx.Client(timeout=20) as http, http.stream("GET", url) as r:
        assert r.status_code == 200
        assert r.headers["content-type"].startswith("text/event-stream")
        msgs = sse_messages(r.iter_lines())
        j = Journal(world["state"])
        try:
            j.mark_running(3)  # the page showed run 3 queued: it gets the change
            kind, m = next(msgs)
            assert (kind, m["id"], m["status"], m["update"]) == ("run", 3, "running", True)
            assert m["html"].startswith('<tr data-run="3" data-status="running">')
            assert "&lt;img src=x" in m["html"]  # rendered by the page's template: escaped
            kind, m = next(msgs)  # its event's row is re-sent (replace only) with the new status
            assert (kind, m["id"], m["update"]) == ("event", top_event, True)
            ev = http_event("/hooks/build", "refs/heads/live")
            new_run = j.record_event(ev, [PlannedRun("build_branch", "build", {"ref": "refs/heads/live"})]).run_ids[0]
            for _ in range(2):
                got.append(next(msgs))
        finally:
            j.close()
    assert {(k, m["id"], m["update"]) for k, m in got} == {("run", new_run, False), ("event", ev.id, False)}
    html = dict(got)["event"]["html"]
    assert html.startswith(f'<tr data-event="{ev.id}">') and "build_branch" in html


def test_the_stream_follows_the_filters(world, live_server: str) -> None:
    url = f"{live_server}/dashboard/stream?view=runs&since_run=3&rule=check_branch"
    with httpx.Client(timeout=20) as http, http.stream("GET", url) as r:
        msgs = sse_messages(r.iter_lines())
        j = Journal(world["state"])
        try:
            j.record_event(http_event("/hooks/build", "refs/heads/a"),
                           [PlannedRun("build_branch", "build", {"ref": "a"})])  # filtered out
            e = http_event("/hooks/check", "refs/heads/b")
            rid = j.record_event(e, [PlannedRun("check_branch", "check", {"ref": "b"})]).run_ids[0]
            first = next(msgs)
        finally:
            j.close()
    assert (first[0], first[1]["id"]) == ("run", rid)  # the runs page gets runs only
    # the events page of unmatched events shows the one unmatched event so far
    url = f"{live_server}/dashboard/stream?view=events&since_event={world['events'][2].id}&unmatched=1"
    with httpx.Client(timeout=20) as http, http.stream("GET", url) as r:
        msgs = sse_messages(r.iter_lines())
        j = Journal(world["state"])
        try:
            j.record_event(http_event("/hooks/build", "refs/heads/c"),
                           [PlannedRun("build_branch", "build", {"ref": "c"})])  # matched: filtered out
            e2 = http_event("/hooks/nothing", "x")
            j.record_event(e2, [])
            first = next(msgs)
        finally:
            j.close()
    assert (first[0], first[1]["id"]) == ("event", e2.id)


def test_a_fresh_stream_sends_what_the_page_does_not_show(world, live_server: str) -> None:
    # the page showed runs up to 1 and no events: runs 2 and 3 and all four events come
    url = f"{live_server}/dashboard/stream?since_run=1"
    with httpx.Client(timeout=20) as http, http.stream("GET", url) as r:
        msgs = sse_messages(r.iter_lines())
        got = [next(msgs) for _ in range(6)]
    assert [(k, m["id"]) for k, m in got] == [("run", 2), ("run", 3)] + [("event", e.id) for e in world["events"]]


def test_a_stream_ends_with_reconnect_after_its_lifetime(world) -> None:
    app = create_app(world["state"], stream_lifetime=0.2)
    with uvicorn_serving(app) as url, httpx.Client(timeout=20) as http:
        t0 = time.monotonic()
        with http.stream("GET", f"{url}/dashboard/stream?since_run=3&since_event={world['events'][-1].id}") as r:
            text = "".join(r.iter_text())  # the server ends the response
        assert time.monotonic() - t0 < 5
    assert text.startswith("retry: 2000\n\n") and text.endswith("event: reconnect\ndata: {}\n\n")


def test_closing_ends_the_streams(world) -> None:
    app = create_app(world["state"])
    with uvicorn_serving(app) as url, httpx.Client(timeout=20) as http:
        with http.stream("GET", f"{url}/dashboard/stream") as r:
            lines = r.iter_lines()
            assert next(lines) == "retry: 2000"
            app.state.dashboard.closing.set()
            rest = list(lines)
    assert [ln for ln in rest if ln][-2:] == ["event: reconnect", "data: {}"]


# --------------------------------------------------------------------------- serve --dashboard, triggerc dashboard


HOOK_TOKEN = "hook-token-value"


class Serve:
    """``triggerc serve RULES --dashboard`` as a subprocess on a free loopback port."""

    def __init__(self, tmp: Path, *args: str, dashboard_token: str | None = None, rules: str = RULES) -> None:
        self.rules = tmp / "rules.trg"
        self.rules.write_text(rules, encoding="utf-8")
        self.state = tmp / "state"
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = tmp / "serve.log"
        self.dashboard_token = dashboard_token
        env, self.tag = tagged({**os.environ, "HOOK_TOKEN": HOOK_TOKEN})  # (stop finds its runs by it)
        env.pop("TRIGGERLANG_DASHBOARD_TOKEN", None)
        if dashboard_token:
            env["TRIGGERLANG_DASHBOARD_TOKEN"] = dashboard_token
        self._fh = open(self.log, "wb")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "triggerlang.cli", "serve", str(self.rules), "--state", str(self.state),
             "--port", str(self.port), "--dashboard", "--no-reload", "--grace", "2", *args],
            stdin=subprocess.DEVNULL, stdout=self._fh, stderr=self._fh, env=env, cwd=str(tmp))
        self.http = httpx.Client(base_url=self.url, timeout=10)
        wait_for(self._up, "serve to answer /healthz")

    def _up(self) -> bool:
        assert self.proc.poll() is None, f"serve exited:\n{self.log.read_text()}"
        try:
            return self.http.get("/healthz").status_code == 200
        except httpx.TransportError:
            return False

    def hook(self, path: str, ref: str) -> dict:
        r = self.http.post(path, json={"ref": ref}, headers={"Authorization": f"Bearer {HOOK_TOKEN}"})
        assert r.status_code == 202, r.text
        return r.json()

    def api(self, path: str) -> Any:
        headers = {"Authorization": f"Bearer {self.dashboard_token}"} if self.dashboard_token else {}
        r = self.http.get(path, headers=headers)
        assert r.status_code == 200, r.text
        return r.json()

    def wait_final(self, run_id: int) -> dict:
        def final() -> dict | None:
            run = self.api(f"/api/runs/{run_id}")
            return run if run["status"] not in ("queued", "running") else None
        return wait_for(final, f"run {run_id} to finish")

    def stop(self) -> int:
        self.http.close()
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(20)
        finally:
            if self.proc.poll() is None:
                self.proc.kill()
                self.proc.wait()
            kill_tagged(self.tag)  # the runs of a serve that had to be killed (runtime_helpers.SERVE_TAG)
            self._fh.close()

    def stop_cleanly(self) -> None:
        rc = self.stop()
        log = self.log.read_text(errors="replace")
        assert rc == 0, log
        assert "Traceback" not in log, log


UNDER_DASHBOARD = """
source http path="/dashboard/hook" token=hook
under: on http.post path="/dashboard/hook" run build with <payload.ref>
"""


def test_serve_mounts_the_dashboard_beside_the_webhooks(tmp_path: Path) -> None:
    s = Serve(tmp_path, rules=RULES + UNDER_DASHBOARD)
    try:
        ran = s.hook("/hooks/build", "refs/heads/main")
        run = s.wait_final(ran["runs"][0])
        assert run["status"] == "succeeded" and run["exit_code"] == 0
        assert "building refs/heads/main" in run["log"]
        nothing = s.hook("/hooks/build", "v2")
        assert nothing["runs"] == []
        # the engine's current rules explain the event that matched nothing
        reasons = s.api(f"/api/events/{nothing['event_id']}")["not_matched"]
        assert [x["rule"] for x in reasons] == ["build_branch", "check_branch", "under"]
        page = s.http.get("/dashboard/")
        assert page.status_code == 200 and 'data-run="1"' in page.text and "no rule matched" in page.text
        assert [e["id"] for e in s.api("/api/events")["events"]] == [nothing["event_id"], ran["event_id"]]
        # a sender's own API key (header, URL) on a route that checks a bearer token: journaled
        # and shown by name, never by value
        r = s.http.post("/hooks/build?access_token=qs-sekrit-1&env=prod", json={"ref": "v3"},
                        headers={"Authorization": f"Bearer {HOOK_TOKEN}", "X-Api-Key": "hdr-sekrit-2"})
        assert r.status_code == 202, r.text
        event = s.api(f"/api/events/{r.json()['event_id']}")
        assert event["data"]["query"] == {"access_token": "<redacted>", "env": "prod"}
        assert event["data"]["headers"]["x-api-key"] == "<redacted>"
        shown = s.http.get(f"/dashboard/events/{r.json()['event_id']}").text
        journaled = b"".join(f.read_bytes() for f in s.state.rglob("*") if f.is_file())
        for secret in ("qs-sekrit-1", "hdr-sekrit-2", HOOK_TOKEN):
            assert secret not in shown and secret.encode() not in journaled
        # read-only, and the webhook routes and built-ins are untouched
        for path in ("/api/runs", "/dashboard/", "/metrics", "/dashboard/runs/1"):
            r = s.http.post(path)
            assert r.status_code == 405 and r.headers["allow"] == "GET, HEAD", (path, r.headers)  # RFC 9110
        assert s.http.get("/hooks/nope").status_code == 404
        # a GET under /dashboard/ that no page takes gets the page's own 404 (as standalone),
        # a POST-only path its 405; other methods, and a webhook route declared there, as before
        for path, status in (("/dashboard/nope", 404), ("/dashboard/runs/abc", 404), ("/dashboard/runs/1/rerun", 405),
                             ("/dashboard/static/nope.js", 404)):
            r = s.http.get(path)
            assert r.status_code == status and r.headers["content-type"].startswith("text/html"), (path, r.text)
            assert "<nav" in r.text and "Not" in r.text, r.text
        assert s.http.head("/dashboard/nope").status_code == 404
        r = s.http.post("/dashboard/nope")
        assert r.status_code == 404 and r.json() == {"error": "no route for /dashboard/nope"}
        r = s.http.get("/dashboard/hook")
        assert r.status_code == 405 and r.headers["allow"] == "POST" and set(r.json()) == {"error"}, r.text
        assert s.hook("/dashboard/hook", "refs/heads/x")["runs"]
        # the page's whole URL, one click from the log, as triggerc dashboard gives it
        assert f"dashboard at {s.url}/dashboard/ (loopback clients only, read-only)" in s.log.read_text()
    finally:
        s.stop_cleanly()


LEAK = """
action leak = shell "echo token=$HOOK_TOKEN; echo $HOOK_TOKEN >&2"
leak: on http.post path="/hooks/leak" run leak
"""


def test_a_secret_a_run_prints_is_masked_in_every_view(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The log file keeps what the action printed; every view shows ``[secret NAME]``: serve's
    dashboard (values it holds), ``triggerc logs`` and ``triggerc dashboard`` (the names
    serve leaves in the state folder, the values from their own environment)."""
    from cli_helpers import invoke

    s = Serve(tmp_path, rules=RULES + LEAK)
    try:
        run = s.wait_final(s.hook("/hooks/leak", "x")["runs"][0])
        rid = run["id"]
        shown = {"api": run["log"], "lines": json.dumps(s.api(f"/api/runs/{rid}/log")),
                 "page": s.http.get(f"/dashboard/runs/{rid}").text,
                 "download": s.http.get(f"/dashboard/runs/{rid}/log").text}
    finally:
        s.stop_cleanly()
    for view, text in shown.items():
        assert HOOK_TOKEN not in text and "token=[secret hook]" in text, (view, text)
    assert "token=[secret hook]\n[secret hook]\n" in shown["download"]   # stdout, then stderr
    assert f"token={HOOK_TOKEN}".encode() in (s.state / "logs" / f"{rid}.log").read_bytes()  # the file: as printed
    r = cli("logs", str(rid), "--state", str(s.state), env={**os.environ, "HOOK_TOKEN": HOOK_TOKEN})
    assert r.returncode == 0 and r.stderr == "", r.stderr
    assert "token=[secret hook]\n[secret hook]\n" in r.stdout and HOOK_TOKEN not in r.stdout, r.stdout
    names = json.loads((s.state / "secret-names.json").read_text())
    assert names["secrets"] == {"hook": {"env": "HOOK_TOKEN"}} and HOOK_TOKEN not in json.dumps(names)
    monkeypatch.setenv("HOOK_TOKEN", HOOK_TOKEN)
    with uvicorn_serving(create_app(s.state)) as url:   # triggerc dashboard, without --rules
        api = httpx.get(f"{url}/api/runs/{rid}", timeout=10).json()
        lines = httpx.get(f"{url}/api/runs/{rid}/log?offset=0", timeout=10).json()["lines"]
    assert "token=[secret hook]" in api["log"] and HOOK_TOKEN not in api["log"]
    assert {"stream": "err", "text": "[secret hook]"} in lines and HOOK_TOKEN not in json.dumps(lines)
    r = invoke("logs", str(rid), "--state", str(s.state), "--show-secrets")  # the owner's escape hatch
    assert r.exit_code == 0 and f"token={HOOK_TOKEN}\n" in r.stdout
    monkeypatch.delenv("HOOK_TOKEN")   # a view that cannot read the secret shows it, and says which
    r = invoke("logs", str(rid), "--state", str(s.state))
    assert f"token={HOOK_TOKEN}\n" in r.stdout
    assert r.stderr == ("triggerc: note: run logs show these secrets as printed, as this process cannot read "
                        "them: secret hook: the environment variable HOOK_TOKEN is not set\n"), r.stderr


def test_serve_stops_promptly_with_a_stream_open(tmp_path: Path) -> None:
    s = Serve(tmp_path)
    with httpx.Client(base_url=s.url, timeout=20) as http, http.stream("GET", "/dashboard/stream") as r:
        assert next(r.iter_lines()) == "retry: 2000"
        t0 = time.monotonic()
        s.stop_cleanly()  # exit 0, no traceback
        took = time.monotonic() - t0
    assert took < 3.0, took  # serve ends the stream at its stop, not after its 4 s lifetime
    assert "graceful shutdown exceeded" not in s.log.read_text()


def test_serve_dashboard_with_a_token(tmp_path: Path) -> None:
    s = Serve(tmp_path, dashboard_token="dash-token")
    try:
        assert s.http.get("/dashboard/").status_code == 401
        assert s.http.get("/api/runs").status_code == 401
        assert s.api("/api/runs") == {"runs": [], "next_before": None}
        assert s.http.get("/dashboard/?token=dash-token").status_code == 200
        assert s.http.get("/healthz").status_code == 200  # the built-ins need no token
    finally:
        s.stop_cleanly()


def cli(*args: str, **kw: Any) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "triggerlang.cli", *args], capture_output=True, text=True,
                          timeout=60, **kw)


def test_the_cli_names_a_user_whatever_the_script_of_their_name(tmp_path: Path) -> None:
    """``triggerc rerun`` sends ``user@host``: a user name outside Latin-1 (Cyrillic here)
    is sent as UTF-8, not a traceback, and journaled as written; a Latin-1 one too."""
    s = Serve(tmp_path, dashboard_token="t0ken")
    try:
        run = s.hook("/hooks/build", "refs/heads/main")["runs"][0]
        s.wait_final(run)
        host = socket.gethostname()
        for user in ("иван", "andré"):
            env = {**os.environ, "LOGNAME": user, "TRIGGERLANG_DASHBOARD_TOKEN": "t0ken"}
            p = subprocess.run([sys.executable, "-m", "triggerlang.cli", "rerun", str(run), "--url", s.url],
                               capture_output=True, text=True, env=env, timeout=60)
            assert p.returncode == 0 and "Traceback" not in p.stderr, p.stderr
            assert f"run {run} re-run as run" in p.stdout, p.stdout
        actors = [a["actor"] for a in s.api(f"/api/runs/{run}")["audit"]]
        assert actors == [f"иван@{host} (cli) from 127.0.0.1", f"andré@{host} (cli) from 127.0.0.1"]
    finally:
        s.stop_cleanly()


def test_a_token_outside_ascii_works_in_the_header_the_url_and_the_cli(tmp_path: Path) -> None:
    """The token is compared as the UTF-8 bytes it is: sent in ``Authorization`` (as a
    client sends UTF-8 bytes), in ``?token=`` (percent-encoded UTF-8), and by ``triggerc
    rerun`` (which crashed encoding it as Latin-1); a wrong one is still 401."""
    token = "пароль-t0ken"
    s = Serve(tmp_path, dashboard_token=token)
    try:
        run = s.hook("/hooks/build", "refs/heads/main")["runs"][0]
        header = {"Authorization": b"Bearer " + token.encode("utf-8")}
        assert s.http.get("/api/runs", headers=header).status_code == 200
        assert s.http.get("/metrics", headers=header).status_code == 200
        assert s.http.get("/api/runs", params={"token": token}).status_code == 200
        assert s.http.get("/metrics", params={"token": token}).status_code == 200
        wrong = {"Authorization": b"Bearer " + "пароль-t0keN".encode("utf-8")}
        assert s.http.get("/api/runs", headers=wrong).status_code == 401
        assert s.http.get("/metrics", headers=wrong).status_code == 401
        wait_for(lambda: s.http.get(f"/api/runs/{run}", headers=header).json()["status"] == "succeeded", "the run")
        env = {**os.environ, "TRIGGERLANG_DASHBOARD_TOKEN": token}
        p = subprocess.run([sys.executable, "-m", "triggerlang.cli", "rerun", str(run), "--url", s.url],
                           capture_output=True, text=True, env=env, timeout=60)
        assert p.returncode == 0 and "Traceback" not in p.stderr, p.stderr
        assert f"run {run} re-run as run" in p.stdout, p.stdout
    finally:
        s.stop_cleanly()


def test_dashboard_command_usage_errors(tmp_path: Path, world) -> None:
    r = cli("dashboard", "--state", str(tmp_path / "nothing"))
    assert r.returncode == 2 and "no journal in" in r.stderr
    r = cli("dashboard", "--state", str(world["state"]), "--rules", str(tmp_path / "missing.trg"))
    assert r.returncode == 2 and "no such file" in r.stderr
    r = cli("dashboard", "--state", str(world["state"]), "--token", " ")
    assert r.returncode == 2 and "--token is empty" in r.stderr


def test_dashboard_command_serves_until_interrupted(world) -> None:
    proc = subprocess.Popen([sys.executable, "-m", "triggerlang.cli", "dashboard", "--state", str(world["state"]),
                             "--rules", str(world["rules"]), "--port", "0"],
                            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line = proc.stderr.readline()
        m = re.search(r"dashboard: (http://127\.0\.0\.1:\d+)/dashboard/ \(loopback clients only, read-only\)", line)
        assert m, line
        with httpx.Client(base_url=m.group(1), timeout=10) as http:
            assert http.get("/").status_code == 307
            assert run_ids(http.get("/dashboard/").text) == [3, 2, 1]
            assert http.get(f"/api/events/{world['events'][2].id}").json()["not_matched"]
            with http.stream("GET", "/dashboard/stream") as r:  # an open stream does not hold the stop up
                assert next(r.iter_lines()) == "retry: 2000"
                t0 = time.monotonic()
                proc.send_signal(signal.SIGINT)
                assert proc.wait(20) == 0
                assert time.monotonic() - t0 < 3
        err = proc.stderr.read()
        assert "Traceback" not in err and "graceful shutdown exceeded" not in err
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_dashboard_command_bounds_a_request_s_headers(world) -> None:
    """``triggerc dashboard --host ... --token`` may face the network: a client that sends
    headers without end gets 431 and is cut off (httptools alone would keep them all)."""
    proc = subprocess.Popen([sys.executable, "-m", "triggerlang.cli", "dashboard", "--state", str(world["state"]),
                             "--port", "0", "--token", "t0ken"],
                            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        m = re.search(r"dashboard: http://127\.0\.0\.1:(\d+)/dashboard/", proc.stderr.readline())
        assert m
        answer = b""  # no wait: the dashboard listens before it prints its URL
        with socket.create_connection(("127.0.0.1", int(m.group(1))), timeout=20) as sock:
            sock.sendall(b"GET /dashboard/ HTTP/1.1\r\nHost: x\r\n")
            with contextlib.suppress(OSError):  # the server closes its side once it has answered
                for _ in range(64):
                    sock.sendall(b"X-Padding: " + b"a" * (256 * 1024) + b"\r\n")
            with contextlib.suppress(OSError):
                while chunk := sock.recv(65536):
                    answer += chunk
        assert answer.startswith(b"HTTP/1.1 431 "), answer[:200]
        with httpx.Client(base_url=f"http://127.0.0.1:{m.group(1)}", timeout=10) as http:
            assert http.get("/dashboard/", headers={"Authorization": "Bearer t0ken"}).status_code == 200
        proc.send_signal(signal.SIGINT)
        assert proc.wait(20) == 0
        assert "Traceback" not in proc.stderr.read()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_dashboard_command_reports_a_busy_port(world) -> None:
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        r = cli("dashboard", "--state", str(world["state"]), "--port", str(port))
    assert r.returncode == 1 and "cannot listen on 127.0.0.1:" in r.stderr and "--port" in r.stderr


# --------------------------------------------------------------------------- --follow


class Follow:
    """``triggerc runs|events --follow ...`` with its output read line by line in a thread."""

    def __init__(self, *args: str, sigint_ignored: bool = False) -> None:
        # sigint_ignored: started as a background job of a non-interactive shell would be
        preexec = (lambda: signal.signal(signal.SIGINT, signal.SIG_IGN)) if sigint_ignored else None
        self.proc = subprocess.Popen([sys.executable, "-m", "triggerlang.cli", *args, "--follow"],
                                     stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                     text=True, env={**os.environ, "NO_COLOR": "1"}, preexec_fn=preexec)
        self.lines: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.append(line.rstrip("\n"))

    def wait_lines(self, n: int) -> list[str]:
        wait_for(lambda: len(self.lines) >= n, f"{n} lines (got {self.lines})")
        return list(self.lines)

    def stop(self, sig: int = signal.SIGINT) -> int:
        self.proc.send_signal(sig)
        try:
            return self.proc.wait(20)
        finally:
            if self.proc.poll() is None:
                self.proc.kill()
                self.proc.wait()


def test_runs_follow_prints_new_runs_and_status_changes(world) -> None:
    f = Follow("runs", "--state", str(world["state"]), "--limit", "2")
    try:
        lines = f.wait_lines(3)
        assert lines[0].split() == ["ID", "RULE", "ACTION", "STATUS", "EXIT", "WAIT", "DURATION", "QUEUED", "INPUTS"]
        assert [ln.split()[0] for ln in lines[1:]] == ["2", "3"]  # the newest two, oldest first
        j = Journal(world["state"])
        try:
            rid = j.record_event(http_event("/hooks/build", "refs/heads/f"),
                                 [PlannedRun("build_branch", "build", {"ref": "refs/heads/f"})]).run_ids[0]
            f.wait_lines(4)
            j.mark_running(rid)
            f.wait_lines(5)
            j.mark_finished(rid, "succeeded", 0)
            lines = f.wait_lines(6)
        finally:
            j.close()
        assert [ln.split()[:4] for ln in lines[3:6]] == [[str(rid), "build_branch", "build", s]
                                                        for s in ("queued", "running", "succeeded")]
        assert lines[5].split()[4] == "0"
        assert f.stop() == 0
    finally:
        if f.proc.poll() is None:
            f.proc.kill()


def test_events_follow_prints_json_lines(world) -> None:
    f = Follow("events", "--state", str(world["state"]), "--format", "json", "--limit", "1")
    try:
        first = json.loads(f.wait_lines(1)[0])
        assert first == {"id": world["events"][-1].id, "source": "http", "type": "post",
                         "time": world["events"][-1].time, "matched": ["build_branch"]}
        j = Journal(world["state"])
        try:
            new = [Event("git", "push", {"branch": "main"}), Event("github", "ping", {})]
            for e in new:
                j.record_event(e, [])
            lines = f.wait_lines(3)
        finally:
            j.close()
        assert [json.loads(ln)["id"] for ln in lines[1:]] == [e.id for e in new]
        assert f.stop() == 0
    finally:
        if f.proc.poll() is None:
            f.proc.kill()


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_follow_stops_on_a_signal_even_when_started_with_sigint_ignored(world, sig) -> None:
    f = Follow("events", "--state", str(world["state"]), "--limit", "1", sigint_ignored=True)
    try:
        f.wait_lines(2)  # header and the newest event: it is polling
        assert f.stop(sig) == 0
    finally:
        if f.proc.poll() is None:
            f.proc.kill()


def test_follow_keeps_the_filters(world) -> None:
    f = Follow("events", "--state", str(world["state"]), "--source", "git", "--format", "json")
    try:
        j = Journal(world["state"])
        try:
            j.record_event(Event("github", "ping", {}), [])
            e = Event("git", "push", {"branch": "main"})
            j.record_event(e, [])
            lines = f.wait_lines(1)
        finally:
            j.close()
        time.sleep(0.7)
        assert [json.loads(ln)["id"] for ln in f.lines] == [e.id]
        assert f.stop() == 0
    finally:
        if f.proc.poll() is None:
            f.proc.kill()


def test_follow_prints_a_burst_of_more_events_than_one_look_reads(world) -> None:
    """The follower paused (SIGSTOP) while 450 events arrive: all 450 are printed on the
    next look, in order, not only the newest 200 (one look's window)."""
    f = Follow("events", "--state", str(world["state"]), "--format", "json", "--limit", "1")
    try:
        f.wait_lines(1)
        f.proc.send_signal(signal.SIGSTOP)
        j = Journal(world["state"])
        try:
            burst = [Event("git", "push", {"branch": f"b{i}"}) for i in range(450)]
            for e in burst:
                j.record_event(e, [])
        finally:
            j.close()
        f.proc.send_signal(signal.SIGCONT)
        lines = f.wait_lines(451)
        assert [json.loads(ln)["id"] for ln in lines[1:]] == [e.id for e in burst]
        assert f.stop() == 0
    finally:
        if f.proc.poll() is None:
            f.proc.kill()


def test_follow_prints_a_burst_of_runs_and_the_end_of_a_run_it_pushed_out(world) -> None:
    """250 runs queued between two looks are all printed, and a run that was running
    before them, now past the newest 200, is printed again when it finishes."""
    f = Follow("runs", "--state", str(world["state"]), "--format", "json", "--limit", "1")
    try:
        f.wait_lines(1)
        j = Journal(world["state"])
        try:
            early = j.record_event(http_event("/hooks/build", "refs/heads/e"),
                                   [PlannedRun("build_branch", "build", {"ref": "refs/heads/e"})]).run_ids[0]
            j.mark_running(early)
            wait_for(lambda: any(json.loads(ln)["id"] == early and json.loads(ln)["status"] == "running"
                                 for ln in f.lines[1:]), "the early run running")
            f.proc.send_signal(signal.SIGSTOP)
            ids = [j.record_event(http_event("/hooks/build", f"refs/heads/x{i}"),
                                  [PlannedRun("build_branch", "build", {"ref": f"x{i}"})]).run_ids[0]
                   for i in range(250)]
            f.proc.send_signal(signal.SIGCONT)
            wait_for(lambda: any(json.loads(ln)["id"] == ids[-1] for ln in f.lines), "the burst printed")
            rows = [json.loads(ln) for ln in f.lines]
            n = next(i for i, r in enumerate(rows) if r["id"] == ids[0])
            assert [r["id"] for r in rows[n:]] == ids
            j.mark_finished(early, "succeeded", 0)
            lines = f.wait_lines(n + 251)
        finally:
            j.close()
        last = json.loads(lines[n + 250])
        assert (last["id"], last["status"]) == (early, "succeeded")
        assert f.stop() == 0
    finally:
        if f.proc.poll() is None:
            f.proc.kill()


# --------------------------------------------------------------------------- issue 14: logs, times, sources, writes

from triggerlang.dashboard.app import ago  # noqa: E402
from triggerlang.runtime.store import clean_log, log_lines, strip_log_markers  # noqa: E402

MARKED = b"\x01# run 1 started\nout one\n\x02err one\nout partial\x02err two\n\x01# run 1 succeeded\n"


def test_log_lines_tell_the_streams_apart() -> None:
    assert log_lines(MARKED) == [("meta", "# run 1 started"), ("out", "out one"), ("err", "err one"),
                                 ("out", "out partial"), ("err", "err two"), ("meta", "# run 1 succeeded")]
    # every other reader sees plain text: no marker, a marker inside a line starts a new one
    assert clean_log(MARKED, False) == "# run 1 started\nout one\nerr one\nout partial\nerr two\n# run 1 succeeded\n"
    assert strip_log_markers(MARKED) == clean_log(MARKED, False).encode()
    assert strip_log_markers(b"\x02b\n", at_line_start=False) == b"\nb\n"
    assert log_lines(b"no newline at the end") == [("out", "no newline at the end")]
    assert log_lines(b"") == []


def test_logs_read_as_a_terminal_leaves_them(world) -> None:
    """tput sgr0's ESC ( B left "(B" in the text, and a progress bar's carriage returns were
    dropped with what they overwrote kept: "10%50%100%"."""
    raw = (b"\x1b[1mbold\x1b(B\x1b[m done\nprogress 10%\rprogress 50%\r\x1b[2Kprogress 100%\ncrlf\r\n"
           b"\x02err 10%\rerr 100%\n\x1b7saved\x1b8 \x1b]8;;https://x\x1b\\link\x1b]8;;\x1b\\ caf\xe9\n")
    lines = [("out", "bold done"), ("out", "progress 100%"), ("out", "crlf"), ("err", "err 100%"),
             ("out", "saved link caf\ufffd")]
    assert log_lines(raw) == lines
    assert clean_log(raw, False) == "".join(text + "\n" for _, text in lines)
    j = Journal(world["state"])
    j.run_log_path(1).write_bytes(raw)
    j.close()
    html = client(world).get("/dashboard/runs/1").text
    assert '<div class="l">progress 100%</div>' in html and '<div class="l err">err 100%</div>' in html
    assert "(B" not in html


def test_the_run_page_shows_the_log_s_colours(world) -> None:
    """Colours were taken out: a red FAIL read as the PASS beside it. The page (and its live
    stream) show them as classes; the API and every other reader keep the plain text."""
    from triggerlang.dashboard.ansi import styled_lines
    from triggerlang.runtime.store import log_lines_raw
    raw = (b"\x1b[1;31mFAIL\x1b[0m tests/b.py\n\x02\x1b[33m<warn>\x1b[39m x\n\x1b[38;5;208morange\x1b[0m "
           b"\x1b[48;2;0;0;230m\x1b[4mblue\x1b[m\nplain \x1b[2Kline\n")
    j = Journal(world["state"])
    j.run_log_path(1).write_bytes(raw)
    j.close()
    c = client(world)
    html = c.get("/dashboard/runs/1").text
    assert ('<div class="l"><span class="a-f1 a-bold">FAIL</span> tests/b.py</div>'
            '<div class="l err"><span class="a-f3">&lt;warn&gt;</span> x</div>'
            '<div class="l"><span class="a-f3">orange</span> <span class="a-b4 a-ul">blue</span></div>'
            '<div class="l">plain line</div>') in html
    assert [x["text"] for x in c.get("/api/runs/1/log?offset=0").json()["lines"]] == [
        "FAIL tests/b.py", "<warn> x", "orange blue", "plain line"]
    assert styled_lines(log_lines_raw(raw))[3] == ["out", "plain line"]  # the stream's [stream, text] as before
    assert styled_lines(log_lines_raw(raw))[0] == ["out", "FAIL tests/b.py", [["FAIL", "a-f1 a-bold"],
                                                                             [" tests/b.py", ""]]]
    assert "span.className = piece[1]" in c.get("/dashboard/static/run.js").text
    assert ".a-f1 { color:" in c.get("/dashboard/static/style.css").text


def test_relative_times_with_the_utc_time_on_hover(world) -> None:
    now = 1_800_000_000.0
    iso = "2027-01-15T08:00:00.000Z"
    t = 1_800_000_000.0 - 180
    from triggerlang.runtime.store import iso_utc
    assert ago(iso_utc(t), now) == "3 min ago"
    assert ago(iso_utc(now - 5), now) == "just now"
    assert ago(iso_utc(now - 7200), now) == "2 h ago"
    assert ago(iso_utc(now + 120), now) == "in 2 min"
    assert ago(iso_utc(now - 40 * 86400), now) == iso_utc(now - 40 * 86400)[:10]
    assert ago(iso, now + 86400) == "1 day ago" and ago("not a time") == "not a time"
    html = client(world).get("/dashboard/runs").text
    assert re.search(r'<time datetime="[^"]+Z" title="\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC" data-rel tabindex="-1">'
                     r'(just now|\d+ s ago)</time>', html), html
    page = client(world).get("/dashboard/runs/1").text  # a detail page names the zone on the time itself
    assert re.search(r"<dd>\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC <span class=\"muted\">\(<time", page)


def test_the_run_page_shows_stderr_apart_with_line_numbers(world) -> None:
    j = Journal(world["state"])
    j.run_log_path(1).write_bytes(MARKED)
    j.close()
    html = client(world).get("/dashboard/runs/1").text
    assert '<div class="l meta"># run 1 started</div><div class="l">out one</div><div class="l err">err one</div>' in html
    assert 'href="/dashboard/runs/1/log" download' in html
    assert "data-stream" not in html.split('id="log"')[1].split(">")[0]  # a finished run is not followed


def test_a_log_shown_from_past_its_first_line_is_not_numbered(world) -> None:
    """A long log is shown from its last 256 KiB: its lines were numbered from 1 there, so
    line 19981 of the log read as line 4650."""
    j = Journal(world["state"])
    j.run_log_path(1).write_bytes(b"".join(b"line %d of the log\n" % i for i in range(1, LOG_TAIL // 10)))
    j.close()
    c = client(world)
    html = c.get("/dashboard/runs/1").text
    assert '<div class="log cut" id="log">' in html and "its lines are not numbered" in html
    assert '<div class="log" id="log">' in c.get("/dashboard/runs/2").text  # a whole log keeps its numbers
    css = c.get("/dashboard/static/style.css").text
    assert ".log.cut .l::before { content: none; }" in css
    assert 'logEl.classList.add("cut")' in c.get("/dashboard/static/run.js").text  # a live page that skips ahead


def test_the_log_download_is_the_plain_log(world) -> None:
    j = Journal(world["state"])
    j.run_log_path(1).write_bytes(MARKED + b"\x1b[31mred\x1b[0m\n")
    j.close()
    r = client(world).get("/dashboard/runs/1/log")
    assert r.status_code == 200 and r.headers["content-type"] == "text/plain; charset=utf-8"
    assert r.headers["content-disposition"] == 'attachment; filename="run-1.log"'
    assert r.content == strip_log_markers(MARKED) + b"\x1b[31mred\x1b[0m\n"  # escapes kept, for less -R
    assert client(world).get("/dashboard/runs/2/log").status_code == 404  # run 2 wrote no log


def test_api_run_log_by_offset(world) -> None:
    j = Journal(world["state"])
    j.mark_running(3)
    j.run_log_path(3).write_bytes(b"\x01# run 3\nfirst\n\x02oops\nhalf a li")
    j.close()
    c = client(world)
    body = c.get("/api/runs/3/log").json()
    assert body["lines"] == [{"stream": "meta", "text": "# run 3"}, {"stream": "out", "text": "first"},
                             {"stream": "err", "text": "oops"}]  # complete lines only while it runs
    assert body["offset"] == 0 and body["next_offset"] == len(b"\x01# run 3\nfirst\n\x02oops\n")
    assert body["final"] is False and body["status"] == "running"
    again = c.get(f"/api/runs/3/log?offset={body['next_offset']}").json()
    assert again["lines"] == [] and again["next_offset"] == body["next_offset"]
    assert c.get("/api/runs/3/log?offset=-1").status_code == 400
    assert c.get("/api/runs/99/log").status_code == 404


def test_api_run_log_starts_at_a_line(world) -> None:
    """Before: an offset inside a line, or a tail (the last 256 KiB) that cut one, gave the
    rest of that line as a line of its own, and as stdout whatever its stream (its marker
    was cut off): "the complete lines from byte N" now start at the next line."""
    j = Journal(world["state"])
    j.mark_running(3)
    j.run_log_path(3).write_bytes(b"\x01# run 3\nfirst\n\x02oops\nhalf a li")
    j.run_log_path(1).write_bytes(b"\x02" + b"e" * LOG_TAIL + b"\n\x01# end\n" + b"no newline\x02err\n")
    j.close()
    c = client(world)
    body = c.get("/api/runs/3/log?offset=3").json()  # inside "# run 3"
    assert body["lines"] == [{"stream": "out", "text": "first"}, {"stream": "err", "text": "oops"}]
    assert body["offset"] == 9 and body["truncated"] is True
    body = c.get("/api/runs/3/log?offset=16").json()  # inside the stderr line
    assert body["lines"] == [] and body["next_offset"] == 21
    assert c.get("/api/runs/3/log?offset=9").json()["lines"][0] == {"stream": "out", "text": "first"}
    body = c.get("/api/runs/1/log").json()  # the tail cuts the long stderr line
    assert body["lines"] == [{"stream": "meta", "text": "# end"}, {"stream": "out", "text": "no newline"},
                             {"stream": "err", "text": "err"}] and body["truncated"] is True
    end = LOG_TAIL + 2 + len(b"\x01# end\n")
    assert c.get(f"/api/runs/1/log?offset={end + 3}").json()["lines"] == [{"stream": "err", "text": "err"}]


def test_the_run_stream_sends_lines_as_they_come_then_the_end(world, live_server: str) -> None:
    j = Journal(world["state"])
    j.mark_running(3)
    path = j.run_log_path(3)
    path.write_bytes(b"\x01# run 3 started\n")
    page = client(world).get("/dashboard/runs/3").text
    m = re.search(r'data-stream="(/dashboard/runs/3/stream\?offset=(\d+)&amp;shown=running)"', page)
    assert m and int(m.group(2)) == len(b"\x01# run 3 started\n"), page
    got: list[tuple[str, dict]] = []
    try:
        with httpx.Client(timeout=20) as http, http.stream("GET", live_server + m.group(1).replace("&amp;", "&")) as r:
            msgs = sse_messages(r.iter_lines())
            with open(path, "ab") as f:
                f.write(b"compiling\n\x02warning: x\nno newline yet")
            got.append(next(msgs))
            with open(path, "ab") as f:
                f.write(b", now\n")
            got.append(next(msgs))
            j.mark_finished(3, "failed", 2, error="exited with code 2")
            got += [next(msgs), next(msgs)]
    finally:
        j.close()
    (k1, m1), (k2, m2), (k3, m3), (k4, m4) = got
    assert (k1, m1["lines"]) == ("lines", [["out", "compiling"], ["err", "warning: x"]])
    assert (k2, m2["lines"]) == ("lines", [["out", "no newline yet, now"]])
    assert k3 == "status" and m3["status"] == "failed" and "exited with code 2" in m3["html"]
    assert (k4, m4) == ("end", {"status": "failed"})


def test_the_sources_page_lists_routes_and_rules(world) -> None:
    c = client(world)
    html = c.get("/dashboard/sources").text
    assert 'data-route="/hooks/build"' in html and 'data-route="/hooks/check"' in html
    assert "Verification: shared token" not in html and "bearer token (bearer) in authorization, secret hook" in html
    assert 'data-rule="build_branch"' in html and 'data-rule="check_branch"' in html
    body = c.get("/api/sources").json()
    rules = {r["name"]: r for r in body["rules"]}
    assert rules["build_branch"]["success_rate"] == 1.0 and rules["build_branch"]["queued"] == 1
    assert rules["check_branch"]["success_rate"] == 0.0 and rules["check_branch"]["finished"] == 1
    assert [x["status"] for x in rules["build_branch"]["runs"]] == ["succeeded", "queued"]
    assert body["queued"] == 1 and body["running"] == 0
    assert body["routes"][0]["verification"].startswith("bearer token") and body["routes"][0]["deliveries"] == []


def test_durations_leave_out_a_zero_last_unit() -> None:
    """The sources page said a schedule of every 1h ran "every 1 h 0 m"."""
    from triggerlang.dashboard.app import _duration
    assert [_duration(x) for x in (0.25, 4.2, 60, 604, 3600, 5400, 86400)] == [
        "250 ms", "4.2 s", "1 m", "10 m 4 s", "1 h", "1 h 30 m", "24 h"]


def test_the_sources_page_says_a_correlation_rule_s_trigger_as_its_rule_reads(world) -> None:
    """Before: the rules table showed a correlation rule's trigger as the Python repr of
    the manifest's object ({'kind': 'all', 'n': None, 'members': [{'alias': ...), filters
    and spans included, and /api/sources gave that object where other rules give a string."""
    world["rules"].write_text(RULES + 'action notify(ref) = exec "true" ref\n'
                              'pair: on all(http.post path="/hooks/build" as b, http.post path="/hooks/check" as c)\n'
                              '    same <payload.ref> within 1h run notify with <b.payload.ref>\n'
                              'silent: on absent(http.post path="/hooks/build" as hb) after http.post path="/hooks/check"'
                              ' as go same <payload.ref> within 5m run notify with "none"\n', encoding="utf-8")
    c = client(world)
    rules = {r["name"]: r["trigger"] for r in c.get("/api/sources").json()["rules"]}
    assert rules == {"build_branch": "http.post", "check_branch": "http.post",
                     "pair": "all(http.post as b, http.post as c) same <payload.ref>",
                     "silent": "absent(http.post as hb) after http.post as go same <payload.ref>"}
    html = c.get("/dashboard/sources").text
    assert "<code>all(http.post as b, http.post as c) same &lt;payload.ref&gt;</code>" in html
    assert "{&#39;kind&#39;" not in html and "members" not in html


def test_without_a_token_the_dashboard_is_read_only(world) -> None:
    c = client(world)
    html = c.get("/dashboard/runs/1").text
    assert 'id="rerun"' not in html and 'id="cancel"' not in html
    assert "Re-run and cancel need the dashboard token" in html
    for path in ("/dashboard/runs/1/rerun", "/dashboard/runs/3/cancel", "/api/runs/1/rerun", "/api/runs/3/cancel",
                 "/api/rules/build_branch/resume"):
        r = c.post(path)
        assert r.status_code == 403, path
    standalone = client(world, token="s3cret-token")  # a standalone SQLite dashboard cannot reach the engine
    html = standalone.get("/dashboard/runs/1?token=s3cret-token").text
    assert 'id="rerun"' not in html and "Re-run and cancel need the running engine" in html
    r = standalone.post("/api/runs/1/rerun", headers={"Authorization": "Bearer s3cret-token"})
    assert r.status_code == 503 and "serve --dashboard" in r.json()["error"]


def test_the_page_of_the_needs_the_engine_503_is_titled_for_it(world) -> None:
    """Before: a button's POST to a standalone SQLite dashboard answered a page titled
    "Journal unavailable" (the title of a journal that cannot be read) above "re-run,
    cancel and resume need the running engine"."""
    c = client(world, token="s3cret-token")
    for path in ("/dashboard/runs/1/rerun", "/dashboard/runs/3/cancel", "/dashboard/rules/build_branch/resume"):
        r = c.post(f"{path}?token=s3cret-token")
        assert r.status_code == 503, path
        assert "<title>Needs the running engine" in r.text and "<h1>Needs the running engine</h1>" in r.text, path
        assert "Journal unavailable" not in r.text and "need the running engine" in r.text


def test_the_cli_says_a_standalone_dashboard_cannot_rerun_in_one_sentence(world) -> None:
    """Before: ``triggerc rerun`` printed the footer note, capitalised after "error:" and
    ending in a full stop; it is a clause, as the CLI's other errors. The note is unchanged."""
    from click.testing import CliRunner

    from triggerlang.cli import main as triggerc

    where = "use the dashboard of `triggerc serve --dashboard` (or `triggerc dashboard --store URL` in store mode)"
    with uvicorn_serving(create_app(world["state"], token="s3cret-token", rules_path=world["rules"])) as url:
        for args in (["rerun", "1"], ["cancel", "3"], ["resume", "build_branch"]):
            r = CliRunner().invoke(triggerc, [*args, "--url", url, "--token", "s3cret-token"])
            assert (r.exit_code, r.stdout) == (1, ""), r.output
            assert r.stderr == f"triggerc: error: re-run, cancel and resume need the running engine: {where}\n"
        html = httpx.get(f"{url}/dashboard/runs/1?token=s3cret-token").text
    assert f"Re-run and cancel need the running engine: {where}." in html


def test_buttons_need_the_token_a_csrf_token_and_the_origin(tmp_path: Path) -> None:
    s = Serve(tmp_path, dashboard_token="t0ken")
    try:
        run = s.hook("/hooks/build", "refs/heads/main")["runs"][0]
        s.wait_final(run)
        page = s.http.get(f"/dashboard/runs/{run}?token=t0ken")
        csrf = re.search(r'name="csrf" value="([0-9a-f]{64})"', page.text).group(1)
        form = re.search(r'<form method="post" action="([^"]+)">', page.text).group(1).replace("&amp;", "&")
        assert form == f"/dashboard/runs/{run}/rerun?token=t0ken"
        cookie = page.cookies.get("trg_dashboard")
        assert cookie and cookie != "t0ken"  # an HMAC of the token, never the token
        assert "httponly" in page.headers["set-cookie"].lower() and "samesite=strict" in page.headers["set-cookie"].lower()
        origin = s.url
        before = len(s.api("/api/runs")["runs"])
        with httpx.Client(base_url=s.url, timeout=10) as http:  # no cookie jar shared with the page load
            # no token at all: 401; the token but no CSRF token: 403; a CSRF token but another site's Origin: 403
            assert http.post(f"/dashboard/runs/{run}/rerun", data={"csrf": csrf}, headers={"Origin": origin}).status_code == 401
            assert http.post(form, headers={"Origin": origin}).status_code == 403
            assert http.post(form, data={"csrf": "0" * 64}, headers={"Origin": origin}).status_code == 403
            r = http.post(form, data={"csrf": csrf}, headers={"Origin": "https://evil.example"})
            assert r.status_code == 403 and "did not come from this dashboard" in r.text
            assert http.post(form, data={"csrf": csrf}).status_code == 403  # no Origin, no Referer
            assert len(s.api("/api/runs")["runs"]) == before  # nothing was written
            # the real form: the session cookie (or the URL's token), its CSRF token, this origin
            http.cookies.set("trg_dashboard", cookie)
            r = http.post(f"/dashboard/runs/{run}/rerun", data={"csrf": csrf}, headers={"Origin": origin})
            assert r.status_code == 303, r.text
            new = int(re.search(r"/dashboard/runs/(\d+)$", r.headers["location"]).group(1))
            r = http.post(form, data={"csrf": csrf}, headers={"Referer": f"{origin}/dashboard/runs/{run}"})
            assert r.status_code == 303
        assert s.wait_final(new)["status"] == "succeeded"
        audit = s.api(f"/api/runs/{run}")["audit"]
        assert [(a["action"], a["actor"]) for a in audit] == [("rerun", "dashboard from 127.0.0.1")] * 2
        assert s.api(f"/api/runs/{new}")["rerun_of"] == run
        assert "re-run as run" in s.log.read_text()
    finally:
        s.stop_cleanly()


SCHEDULES = """
action tick = exec "true"
nightly: on cron "30 2 * * *" tz "Europe/Paris" run tick
quarter: on every 15m run tick
midnight: on cron "@daily" run tick
"""


def test_the_sources_page_gives_each_schedule_its_next_tick(world, live_server: str) -> None:
    """As ``systemctl list-timers``' NEXT: the tick each schedule waits for, planned as the
    schedule source plans it (``every`` on the epoch's multiples, cron in its zone, an alias
    as its expression), the zone named; on the page and in /api/sources."""
    world["rules"].write_text(RULES + SCHEDULES, encoding="utf-8")
    before = time.time()
    body = httpx.get(f"{live_server}/api/sources", timeout=10).json()
    page = httpx.get(f"{live_server}/dashboard/sources", timeout=10).text
    after = time.time()
    got = {s["rule"]: s for s in body["others"]["schedule"]["schedules"]}
    assert {r: (s["tz"], s.get("error")) for r, s in got.items()} == {
        "nightly": ("Europe/Paris", None), "quarter": ("UTC", None), "midnight": ("UTC", None)}
    when = {r: _dt.datetime.fromisoformat(s["next"]) for r, s in got.items()}
    assert when["quarter"].timestamp() in {(t // 900 + 1) * 900 for t in (before, after)}
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT02:30:00\.000\+0[12]:00", got["nightly"]["next"]), got["nightly"]
    assert got["midnight"]["next"].endswith("T00:00:00.000+00:00"), got["midnight"]
    for r in ("nightly", "midnight"):
        assert before < when[r].timestamp() <= after + 86400, (r, when[r])
    li = re.search(r'<li data-schedule="nightly">.*?</li>', page, re.S).group(0)
    assert f'datetime="{got["nightly"]["next"]}"' in li and f'{got["nightly"]["next_local"]} Europe/Paris</time>' in li
    assert got["nightly"]["next_local"].endswith(" 02:30:00") and "in " in li, li
    from triggerlang.dashboard.app import _with_next_tick   # a manifest written by hand: said, not a 500
    for bad, why in (({"tz": "Nowhere/Atlantis", "cron": "0 3 * * *"}, "unknown time zone 'Nowhere/Atlantis'"),
                     ({"cron": 5}, "")):
        assert _with_next_tick({"rule": "x", **bad})["next"] is None and why in _with_next_tick(bad)["error"]


def test_a_running_run_shows_how_long_it_has_run(world, live_server: str) -> None:
    """A running run's Duration said "-": it says how long it has run so far, on the runs
    list and on its page (live.js counts on from the seconds rendered)."""
    rid = world["runs"][2]
    conn = sqlite3.connect(str(world["state"] / "journal.sqlite3"))
    with conn:
        conn.execute("UPDATE runs SET status = 'running', started_at = ? WHERE id = ?", (time.time() - 72.4, rid))
    conn.close()
    for path in ("/dashboard/runs", f"/dashboard/runs/{rid}"):
        html = httpx.get(f"{live_server}{path}", timeout=10).text
        m = re.search(r'<span class="running-for" data-running="([\d.]+)">running 1 m 1[2-9] s</span>', html)
        assert m and 72 <= float(m.group(1)) < 80, (path, html)
    assert [_running_text(x) for x in (0.4, 59.9, 72.4, 3600)] == ["running 0 s", "running 59 s", "running 1 m 12 s",
                                                                    "running 1 h"]
    assert httpx.get(f"{live_server}/api/runs/{rid}", timeout=10).json()["duration"] is None  # not known yet
