"""Correlation groups on the SQLite journal, in process (runtime/correlate.py): the engine's
mirror against the rows, a transaction that fails, reload, the schema upgrade, and the
readers (``triggerc groups``, ``--explain``, the dashboard's pages and API)."""

from __future__ import annotations

import asyncio
import json
import re
import sqlite3
import time
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from starlette.testclient import TestClient

from triggerlang.api import compile_text
from triggerlang.cli import main as cli
from triggerlang.dashboard.app import create_app
from triggerlang.events import Event
from triggerlang.runtime.engine import Engine
from triggerlang.runtime.journal import SCHEMA_VERSION, Journal, JournalError

RULES = '''\
action note(k) = exec "true"
gate: on all(http.post path="/hooks/build" as build, http.post path="/hooks/test" as test) same <query.k>
    within 1h run note with <query.k>
quiet: on absent(http.post path="/hooks/hb" as hb) same <query.k> for 1h run note with <query.k>
'''


def manifest(text: str = RULES) -> dict:
    c = compile_text(text, "rules.trg", "/tmp")
    assert c.ok, [(d.code, d.message) for d in c.diagnostics]
    return c.manifest


def post(path: str, **query: str) -> Event:
    return Event("http", "post", {"method": "POST", "path": path, "query": query, "headers": {}, "payload": None})


class World:
    """An engine on a journal in ``tmp`` (no server: submit() and the loop are driven here)."""

    def __init__(self, tmp: Path, text: str = RULES):
        self.tmp = tmp
        self.journal = Journal(tmp / "state")
        async def start() -> Engine:
            engine = Engine(manifest(text), self.journal, {}, tmp)
            engine.recover()
            engine.start_correlations()   # (its timers need the loop)
            return engine

        self.engine = asyncio.get_event_loop().run_until_complete(start())

    def submit(self, ev: Event):
        return asyncio.get_event_loop().run_until_complete(self.engine.submit(ev))

    def rows(self, sql: str) -> list[tuple]:
        """Rows of the tables (the correlation log applied first, as readers do)."""
        if self.journal._conn is not None:
            self.journal.materialize_groups()
        return self.raw(sql)

    def raw(self, sql: str) -> list[tuple]:
        """Rows of the tables as they are on disk."""
        conn = sqlite3.connect(self.tmp / "state" / "journal.sqlite3")
        try:
            return conn.execute(sql).fetchall()
        finally:
            conn.close()

    def close(self) -> None:
        loop = asyncio.get_event_loop()
        loop.run_until_complete(self.engine.drain(1))
        self.journal.close()


@pytest.fixture
def own_loop():
    """An event loop of the test's own, the current one while it runs."""
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    yield loop
    loop.close()
    asyncio.set_event_loop(None)


@pytest.fixture
def world(tmp_path: Path, own_loop):
    w = World(tmp_path)
    yield w
    w.close()


def test_the_mirror_and_the_rows_agree(world: World) -> None:
    world.submit(post("/hooks/build", k="a"))
    world.submit(post("/hooks/build", k="b"))
    world.submit(post("/hooks/hb", k="h"))
    assert sorted(world.rows("SELECT rule, key, state FROM corr_groups")) == [
        ("gate", '["\\"a\\""]', "open"), ("gate", '["\\"b\\""]', "open"), ("quiet", '["\\"h\\""]', "armed")]
    fresh = Journal(world.tmp / "state2")   # the same rows in another process's mirror
    fresh.close()
    from triggerlang.runtime.correlate import SqliteCorrelationState

    st = SqliteCorrelationState(world.journal)
    st.aliases = dict(world.engine.correlations.state.aliases)
    st.load()
    mine = world.engine.correlations.state
    for rule in ("gate", "quiet"):
        assert sorted((g.key, g.state, g.deadline, g.slots) for g in st.live_groups(rule)) == \
            sorted((g.key, g.state, g.deadline, g.slots) for g in mine.live_groups(rule))


def test_a_transaction_that_fails_leaves_the_mirror_as_the_rows(world: World, monkeypatch) -> None:
    world.submit(post("/hooks/build", k="a"))

    def boom(*a: Any, **k: Any) -> int:
        raise JournalError("the disk is full")

    monkeypatch.setattr(world.journal, "insert_run_tx", boom)
    with pytest.raises(JournalError):
        world.submit(post("/hooks/test", k="a"))          # would fire: its run cannot be written
    (g,) = world.engine.correlations.state.live_groups("gate")
    assert g.state == "open" and g.slots[1] is None        # not half-admitted
    assert world.rows("SELECT COUNT(*) FROM events") == [(1,)]
    monkeypatch.undo()
    rec = world.submit(post("/hooks/test", k="a"))
    assert len(rec.runs) == 1


def test_an_admission_is_one_log_entry_applied_later_or_by_a_reader(world: World) -> None:
    world.submit(post("/hooks/build", k="a"))
    world.submit(post("/hooks/build", k="a"))           # replaces the build slot
    assert world.raw("SELECT COUNT(*) FROM corr_log") == [(2,)]
    assert world.raw("SELECT COUNT(*) FROM corr_groups") == [(0,)]     # not applied yet
    other = Journal(world.tmp / "state")                 # a reader elsewhere (triggerc groups, MCP)
    try:
        (g,) = other.list_groups()
        assert g["state"] == "open" and g["missing"] == ["test"]
        assert [h["action"] for h in other.get_group(g["id"])["history"]] == ["open", "replace"]
    finally:
        other.close()
    assert world.raw("SELECT COUNT(*) FROM corr_log") == [(0,)]     # the reader applied it
    world.submit(post("/hooks/test", k="a"))             # fires (its run's stdin is read from the rows)
    (g,) = world.journal.list_groups(rule="gate")
    assert g["state"] == "fired" and g["run_id"] is not None
    assert world.raw("SELECT COUNT(*) FROM corr_log") == [(0,)]


def test_serve_applies_the_log_in_batches_and_at_stop(world: World, monkeypatch) -> None:
    from triggerlang.runtime import correlate

    monkeypatch.setattr(correlate, "MATERIALIZE_BATCH", 3)
    for k in "abcd":
        world.submit(post("/hooks/build", k=k))
    assert world.raw("SELECT COUNT(*) FROM corr_groups") == [(3,)]   # applied at the third entry
    assert world.raw("SELECT COUNT(*) FROM corr_log") == [(1,)]
    asyncio.get_event_loop().run_until_complete(world.engine.correlations.stop())
    assert world.raw("SELECT COUNT(*) FROM corr_groups") == [(4,)] and world.raw("SELECT COUNT(*) FROM corr_log") == [(0,)]


def test_a_crash_with_log_entries_not_applied_loses_nothing(tmp_path: Path) -> None:
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    try:
        w = World(tmp_path)
        w.submit(post("/hooks/build", k="a"))
        w.submit(post("/hooks/test", k="a"))              # fires, closes the group
        loop.run_until_complete(w.engine.wait_idle(5))     # (its run read the group: the log is applied)
        w.submit(post("/hooks/build", k="a"))              # a new group for the same key
        w.submit(post("/hooks/hb", k="h"))
        assert w.raw("SELECT COUNT(*) FROM corr_log") == [(2,)]
        assert sorted(w.raw("SELECT rule, state FROM corr_groups")) == [("gate", "fired")]
        corr = w.engine.correlations                       # "kill -9": nothing applied, nothing stopped
        corr.closing = True
        for t in (corr._timer, corr._materialize_timer):
            if t is not None:
                t.cancel()
        corr._alive_task.cancel()
        w.journal._conn.close()
        w.journal._conn = None
        w2 = World(tmp_path)                               # the restart applies the log before loading
        try:
            assert w2.raw("SELECT COUNT(*) FROM corr_log") == [(0,)]
            assert sorted(w2.raw("SELECT rule, state FROM corr_groups")) == [
                ("gate", "fired"), ("gate", "open"), ("quiet", "armed")]
            (g,) = w2.engine.correlations.state.live_groups("gate")
            assert g.slots[0] is not None and g.slots[1] is None
            rec = w2.submit(post("/hooks/test", k="a"))
            assert len(rec.runs) == 1                      # the second group fires once
            assert sorted(r[0] for r in w2.rows("SELECT state FROM corr_groups WHERE rule = 'gate'")) == [
                "fired", "fired"]
        finally:
            w2.close()
    finally:
        loop.close()
        asyncio.set_event_loop(None)


def test_reload_keeps_unchanged_rules_groups_and_discards_the_others(world: World) -> None:
    world.submit(post("/hooks/build", k="a"))
    world.submit(post("/hooks/hb", k="h"))
    world.engine.load(manifest(RULES.replace("for 1h", "for 2h")))
    states = dict(world.rows("SELECT rule, state FROM corr_groups"))
    assert states == {"gate": "open", "quiet": "discarded"}
    (reason,) = world.rows("SELECT reason FROM corr_groups WHERE rule = 'quiet'")[0]
    assert reason == "rule changed"
    world.engine.load(manifest('action note(k) = exec "true"\nplain: on http.post path="/x" run note with "x"\n'))
    assert dict(world.rows("SELECT rule, state FROM corr_groups")) == {"gate": "discarded", "quiet": "discarded"}
    assert world.rows("SELECT COUNT(*) FROM corr_meta") == [(0,)]


def test_a_renamed_rule_keeps_its_groups_at_a_reload_and_at_the_next_start(tmp_path: Path, own_loop) -> None:
    # a label changed (or an unlabelled rule's line moved): "rule removed", groups discarded
    w = World(tmp_path)
    w.submit(post("/hooks/build", k="a"))
    w.submit(post("/hooks/build", k="b"))
    w.engine.load(manifest(RULES.replace("gate:", "release:")))              # a reload
    assert sorted(w.rows("SELECT rule, state FROM corr_groups WHERE rule != 'quiet'")) == [
        ("gate", "discarded"), ("gate", "discarded"), ("release", "open"), ("release", "open")]
    assert len(w.submit(post("/hooks/test", k="a")).runs) == 1
    w.close()
    w2 = World(tmp_path, "# the gates\n" + RULES.replace("gate:", "ship:"))     # a restart
    try:
        (row,) = w2.rows("SELECT state, key FROM corr_groups WHERE rule = 'ship'")
        assert (row[0], json.loads(row[1])) == ("open", ['"b"'])
        assert len(w2.submit(post("/hooks/test", k="b")).runs) == 1
    finally:
        w2.close()


def test_the_liveness_time_is_written(world: World) -> None:
    world.engine.correlations.mark_alive()
    (at,) = world.rows("SELECT at FROM corr_alive")[0]
    assert abs(at - time.time()) < 5


def test_a_version_1_journal_is_upgraded_with_its_rows(tmp_path: Path) -> None:
    state = tmp_path / "state"
    state.mkdir()
    conn = sqlite3.connect(state / "journal.sqlite3")
    conn.executescript("""
        CREATE TABLE events (id TEXT PRIMARY KEY, source TEXT NOT NULL, type TEXT NOT NULL, time TEXT NOT NULL,
            data TEXT NOT NULL, delivery_key TEXT UNIQUE, matched TEXT NOT NULL DEFAULT '[]', received_at REAL NOT NULL);
        CREATE TABLE runs (id INTEGER PRIMARY KEY AUTOINCREMENT, rule TEXT NOT NULL, action TEXT NOT NULL,
            status TEXT NOT NULL, exit_code INTEGER, inputs TEXT NOT NULL DEFAULT '{}', event_id TEXT NOT NULL,
            attempt INTEGER NOT NULL DEFAULT 1, dedupe_key TEXT, queued_at REAL NOT NULL, started_at REAL,
            finished_at REAL, not_before REAL, log_path TEXT, error TEXT);
        INSERT INTO events VALUES ('evt_old', 'git', 'push', 't', '{}', NULL, '[]', 1.0);
        PRAGMA user_version = 1;
    """)
    conn.close()
    with Journal(state) as j:
        assert j.get_event("evt_old")["source"] == "git"
        assert j.list_groups() == [] and j.correlation_stats() == {"rules": {}, "alive_at": None}
    conn = sqlite3.connect(state / "journal.sqlite3")
    assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION >= 4
    conn.close()


# --------------------------------------------------------------------------- readers

def test_groups_command_text_json_and_explain(world: World) -> None:
    world.submit(post("/hooks/build", k="3f1d"))
    world.submit(post("/hooks/test", k="9999"))        # another key: another group
    world.submit(post("/hooks/tests", k="3f1d"))       # no member: a typo'd route
    state = str(world.tmp / "state")
    r = CliRunner().invoke(cli, ["groups", "--state", state])
    assert r.exit_code == 0, r.output
    head, *lines = r.output.splitlines()
    assert head.split() == ["ID", "RULE", "STATE", "KEY", "OPENED", "CLOSES", "MEMBERS", "MISSING", "RUN"]
    assert len(lines) == 2 and all(" gate " in x and " open " in x for x in lines)
    assert any("3f1d" in x and x.split()[-3:] == ["build", "test", "-"] for x in lines)
    r = CliRunner().invoke(cli, ["groups", "--state", state, "--key", "3f1d", "--explain"])
    assert r.exit_code == 0, r.output
    out = r.output.splitlines()
    assert out[2] == "  test (http.post): its latest events:"
    why = "\n".join(out[3:])
    assert 'condition path="/hooks/test" failed: path was "/hooks/tests"' in why
    assert 'key k="9999" is another group\'s (this one is k=3f1d)' in why
    r = CliRunner().invoke(cli, ["groups", "--state", state, "--status", "fired", "--format", "json"])
    assert (r.exit_code, json.loads(r.output)) == (0, [])
    r = CliRunner().invoke(cli, ["groups", "--state", str(world.tmp / "nope")])
    assert r.exit_code == 2 and "no journal" in r.output


@pytest.mark.parametrize("seconds, elapsed, left", [
    (7200.0, "2h", "2h"),
    (7200.0000002, "2h", "2h"),      # now + 7200 - now, in floats: not 2h1m
    (7199.4, "1h59m", "2h"),
    (7170.0, "1h59m", "2h"),         # a 2h window opened 30 s ago
    (7140.0004, "1h59m", "1h59m"),   # (taken to the millisecond first)
    (7140.1, "1h59m", "2h"),
    (7139.4, "1h58m", "1h59m"),
    (3599.2, "59m59s", "1h"),
    (86399.0, "23h59m", "1d"),
    (90061.0, "1d1h", "1d2h"),
    (59.2, "59s", "1m"),
    (61.0, "1m1s", "1m1s"),
    (0.9996, "1s", "1s"),
    (0.2501, "250ms", "251ms"),
    (0.0, "0ms", "0ms"),
])
def test_a_time_left_is_rounded_up_and_a_time_elapsed_down(seconds: float, elapsed: str, left: str) -> None:
    from triggerlang.correlation.clock import human

    assert (human(seconds), human(seconds, left=True)) == (elapsed, left)


def test_groups_says_a_2h_window_opened_seconds_ago_closes_in_2h(tmp_path: Path, monkeypatch) -> None:
    """Before: CLOSES read "in 1h59m" for the group of a `within 2h` rule opened 30 s ago."""
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    w = World(tmp_path, RULES.replace("within 1h", "within 2h"))
    try:
        w.submit(post("/hooks/build", k="a"))
        (g,) = w.engine.correlations.state.live_groups("gate")
        monkeypatch.setattr(time, "time", lambda: g.opened_at + 30)
        r = CliRunner().invoke(cli, ["groups", "--state", str(tmp_path / "state")])
        assert r.exit_code == 0, r.output
        (line,) = r.output.splitlines()[1:]
        assert " in 2h " in line, line
        monkeypatch.setattr(time, "time", lambda: g.opened_at + 60.5)
        r = CliRunner().invoke(cli, ["groups", "--state", str(tmp_path / "state")])
        assert " in 1h59m " in r.output, r.output
    finally:
        w.close()
        loop.close()
        asyncio.set_event_loop(None)


def test_groups_missing_counts_the_events_an_n_of_m_group_still_needs(tmp_path: Path) -> None:
    """README (Seeing groups): `open` waits for MISSING. An `N of m` group has one member,
    never missing, so its open row read MEMBERS fail×2, MISSING - : nothing said the third
    failure was awaited. MISSING now counts what is still needed, as MEMBERS counts."""
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    w = World(tmp_path, 'action d = exec "true"\n'
                        'flaky: on 3 of http.post path="/f" as fail same <query.k> within 1h run d\n')
    try:
        w.submit(post("/f", k="a"))
        w.submit(post("/f", k="b"))
        w.submit(post("/f", k="b"))
        r = CliRunner().invoke(cli, ["groups", "--state", str(tmp_path / "state")])
        assert r.exit_code == 0, r.output
        cells = {line.split()[3]: line.split()[-3:-1] for line in r.output.splitlines()[1:]}
        assert cells == {"a": ["fail", "fail×2"], "b": ["fail×2", "fail"]}, r.output
    finally:
        w.close()
        loop.close()
        asyncio.set_event_loop(None)


TYPED = '''\
action d = exec "true"
gate: on all(http.post path="/a" as a, http.post path="/b" as b) same <payload.k> within 1h run d
'''


def test_keys_of_different_types_print_apart_in_groups_and_the_dashboard(tmp_path: Path) -> None:
    """Before: the groups of the number 1 and of the string "1" both showed the key ``1``."""
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    w = World(tmp_path, TYPED)
    try:
        for k in (1, "1", "main"):
            w.submit(Event("http", "post", {"method": "POST", "path": "/a", "query": {}, "headers": {},
                                            "payload": {"k": k}}))
        w.submit(Event("http", "post", {"method": "POST", "path": "/b", "query": {}, "headers": {},
                                        "payload": {"k": 2}}))
        state = str(tmp_path / "state")
        r = CliRunner().invoke(cli, ["groups", "--state", state])
        assert r.exit_code == 0, r.output
        assert sorted(x.split()[3] for x in r.output.splitlines()[1:]) == ['"1"', "1", "2", "main"]
        r = CliRunner().invoke(cli, ["groups", "--state", state, "--key", "main", "--explain"])
        assert r.exit_code == 0, r.output
        assert "key k=2 is another group's (this one is k=main)" in r.output
        html = TestClient(create_app(tmp_path / "state"), client=("127.0.0.1", 40000)).get("/dashboard/groups").text
        assert "<code>1</code>" in html and "<code>&#34;1&#34;</code>" in html and "<code>main</code>" in html
    finally:
        w.close()
        loop.close()
        asyncio.set_event_loop(None)


ANY = '''\
action note(k) = exec "true"
once: on any(http.post path="/hooks/a" as a, http.post path="/hooks/b" as b, http.post path="/hooks/c" as c)
    same <query.k> within 1h run note with <query.k>
'''


def test_a_fired_any_group_shows_what_came_and_misses_nothing(tmp_path: Path, own_loop) -> None:
    """Before: a fired any(a, b, c) whose a came, then b (absorbed), listed MEMBERS a and
    MISSING b, c, in text, JSON and the dashboard's chips (greyed "no event yet")."""
    w = World(tmp_path, ANY)
    try:
        w.submit(post("/hooks/a", k="x"))
        w.submit(post("/hooks/b", k="x"))
        state = str(tmp_path / "state")
        r = CliRunner().invoke(cli, ["groups", "--state", state])
        assert r.exit_code == 0, r.output
        (line,) = r.output.splitlines()[1:]
        assert line.split()[2] == "fired" and line.split()[-4:] == ["a,", "b", "-", "1"]
        (g,) = json.loads(CliRunner().invoke(cli, ["groups", "--state", state, "--format", "json"]).output)
        assert [(m["alias"], m.get("absorbed")) for m in g["members"]] == [("a", None), ("b", True)]
        assert g["missing"] == []
        html = TestClient(create_app(tmp_path / "state"), client=("127.0.0.1", 40000)).get("/dashboard/groups").text
        assert 'class="chip empty"' not in html and 'title="absorbed ' in html
    finally:
        w.close()


def test_dashboard_groups_page_api_and_event_page(world: World) -> None:
    world.submit(post("/hooks/build", k="a"))
    fired = world.submit(post("/hooks/build", k="b"))
    world.submit(post("/hooks/test", k="b"))
    world.submit(post("/hooks/hb", k="h"))
    c = TestClient(create_app(world.tmp / "state"), client=("127.0.0.1", 40000))
    page = c.get("/dashboard/groups")
    assert page.status_code == 200
    html = page.text
    assert 'id="open-gate"' in html and 'id="closed-gate"' in html and 'data-stream="/dashboard/stream?groups=1"' in html
    assert 'class="chip empty"' in html and "data-deadline=" in html and "run #" in html
    api = c.get("/api/groups").json()["groups"]
    assert {(g["rule"], tuple(g["keys"]), g["state"]) for g in api} == {
        ("gate", ("a",), "open"), ("gate", ("b",), "fired"), ("quiet", ("h",), "armed")}
    g = next(x for x in api if x["state"] == "fired")
    assert set(g) >= {"id", "rule", "keys", "state", "opened_at", "deadline", "closed_at", "members", "missing",
                      "run_id"}
    full = c.get(f"/api/groups/{g['id']}").json()
    assert [h["action"] for h in full["history"]] == ["open", "admit", "fire"]
    # slots: each alias's event id and time, ISO 8601 like every time of the API
    assert full["slots"] == {m["alias"]: [m["event_id"], m["admitted_at"]] for m in full["members"]}
    assert all(m["admitted_at"].endswith("Z") for m in full["members"])
    assert c.get("/api/groups?rule=gate&state=open").json()["groups"][0]["keys"] == ["a"]
    assert c.get("/api/groups?key=h").json()["groups"][0]["rule"] == "quiet"
    assert c.get("/api/groups?state=bogus").status_code == 400
    assert c.get("/api/groups/grp_nope").status_code == 404
    assert c.get(f"/dashboard/groups/{g['id']}").status_code == 200
    ev = c.get(f"/dashboard/events/{fired.event_id}").text
    assert "Correlation groups" in ev and "open as <code>build</code>" in ev and g["id"] in ev


def test_the_event_page_says_why_no_correlation_member_took_an_event(world: World) -> None:
    """An event only correlation rules listen to: the page said "No rule listens to http
    events" and the API's not_matched was []; each member now says why it did not take the
    event (the condition that failed), or that it did."""
    (world.tmp / "rules.trg").write_text(RULES)
    stray = world.submit(post("/hooks/deploy", k="a"))
    taken = world.submit(post("/hooks/build", k="a"))
    c = TestClient(create_app(world.tmp / "state", rules_path=world.tmp / "rules.trg"), client=("127.0.0.1", 40000))
    why = c.get(f"/api/events/{stray.event_id}").json()["not_matched"]
    assert [(x["rule"], x["member"], x["field"], x["value"]) for x in why] == [
        ("gate", "build", "path", "/hooks/deploy"), ("gate", "test", "path", "/hooks/deploy"),
        ("quiet", "hb", "path", "/hooks/deploy")]
    assert why[0]["condition"] == 'path="/hooks/build"' and why[0]["line"] == 2
    page = c.get(f"/dashboard/events/{stray.event_id}").text
    assert "No rule listens" not in page and '<span class="muted">member</span> <code>build</code>' in page
    assert "<code>path=&#34;/hooks/build&#34;</code> (line 2) failed" in page
    why = c.get(f"/api/events/{taken.event_id}").json()["not_matched"]
    assert [(x["member"], x["condition"] is None) for x in why] == [("build", True), ("test", False), ("hb", False)]
    assert "matches member build" in why[0]["text"]
    assert "matches member build" in c.get(f"/dashboard/events/{taken.event_id}").text
    # an event of another type (a reason with a note of its own): the events page and the
    # event's were a 500 ("update() got multiple values for keyword argument 'note'")
    other = world.submit(Event("http", "get", {"method": "GET", "path": "/hooks/build", "query": {}, "headers": {}}))
    why = c.get(f"/api/events/{other.event_id}").json()["not_matched"]
    assert [(x["member"], x["field"], x["value"]) for x in why] == [
        ("build", "type", "get"), ("test", "type", "get"), ("hb", "type", "get")]
    assert why[0]["note"] and "get" in why[0]["text"]
    assert c.get(f"/dashboard/events/{other.event_id}").status_code == 200
    assert c.get("/dashboard/events?unmatched=1").status_code == 200


def test_an_event_a_correlation_rule_took_says_so_and_links_its_run(tmp_path: Path, own_loop) -> None:
    """An event only a correlation rule took said "no rule matched" on the events page (and
    "Matched: no rule" on its own), beside the deploy it had started; one an ordinary rule
    matched too named only that rule's run. Its row and page now say what the correlation
    rule did with it, the group, and the run a fired group made."""
    text = RULES + 'action t = exec "true"\ntests: on http.post path="/hooks/test" run t\n'
    (tmp_path / "rules.trg").write_text(text)
    world = World(tmp_path, text)
    try:
        first = world.submit(post("/hooks/build", k="a"))
        second = world.submit(post("/hooks/test", k="a"))
        stray = world.submit(post("/hooks/deploy", k="a"))
        world.submit(post("/hooks/build", k="b"))  # opens a group: in the correlation log only
        # "matched nothing" listed the events only the correlation rule took: not what it
        # promises. A reader finds what the correlation log holds, not yet applied, too.
        assert world.raw("SELECT COUNT(*) FROM corr_log") == [(1,)]
        other = Journal(tmp_path / "state")
        try:
            assert [e["id"] for e in other.list_events(unmatched=True)] == [stray.event_id]
        finally:
            other.close()
        group_id, run_id = world.rows("SELECT id, run_id FROM corr_groups WHERE rule = 'gate'")[0]
    finally:
        world.close()
    assert run_id is not None
    c = TestClient(create_app(tmp_path / "state", rules_path=tmp_path / "rules.trg"), client=("127.0.0.1", 40000))
    html = c.get("/dashboard/events").text
    rows = {m[0]: m[1] for m in re.findall(r'<tr data-event="([^"]+)">(.*?)</tr>', html, re.S)}
    assert "no rule matched" not in rows[first.event_id]
    assert re.search(r'gate</span> <span class="muted small">as build</span>:\s*<a href="/dashboard/groups/grp_\w+" '
                     r'title="correlation group grp_\w+">open</a>', rows[first.event_id])
    # the ordinary rule's run, then the correlation's
    assert re.search(rf'tests</span> <a class="status s-\w+" href="/dashboard/runs/\d+">.*as test</span>:\s*'
                     rf'<a [^>]+>admit, fire</a> <a class="status s-\w+" href="/dashboard/runs/{run_id}">#{run_id} ',
                     rows[second.event_id], re.S)
    assert "no rule matched" in rows[stray.event_id]  # no member took it: as before
    # the filter lists exactly the rows that say "no rule matched"
    assert [e["id"] for e in c.get("/api/events?unmatched=1").json()["events"]] == [stray.event_id]
    assert re.findall(r'<tr data-event="([^"]+)">', c.get("/dashboard/events?unmatched=1").text) == [stray.event_id]
    page = c.get(f"/dashboard/events/{first.event_id}").text
    assert "<dt>Taken by</dt>" in page and "no ordinary rule" in page and "Why no rule matched" not in page
    page = c.get(f"/dashboard/events/{second.event_id}").text
    assert "<dt>Taken by</dt>" in page and f'href="/dashboard/runs/{run_id}"' in page
    # the group's page says how its run went, as every other link to a run does
    assert re.search(rf'<dt>Run</dt><dd><a class="status s-\w+" href="/dashboard/runs/{run_id}">#{run_id} \w+</a>',
                     c.get(f"/dashboard/groups/{group_id}").text)


def test_the_groups_stream_sends_changed_rows(world: World) -> None:
    from triggerlang.dashboard.app import Dashboard, EventFilters, RunFilters, _StreamState

    d = Dashboard(world.tmp / "state")
    j = d.open_store()
    st = _StreamState("groups", RunFilters(), EventFilters(), 0, None, {})
    u = lambda path, **kw: path  # noqa: E731
    assert d._poll(j, st, u) == ([], False)             # the first poll: the page shows them
    world.submit(post("/hooks/build", k="z"))
    (msg,), _ = d._poll(j, st, u)
    assert msg.startswith("event: group\n") and '"rule":"gate"' in msg and '"update":false' in msg
    world.submit(post("/hooks/test", k="z"))
    (msg,), _ = d._poll(j, st, u)
    assert '"update":true' in msg and '"live":false' in msg
    d.release(j)


def test_groups_status_armed_lists_the_absence_windows_the_state_column_shows(world: World) -> None:
    """STATE says `armed` for an absence window; `--status armed` was a usage error (only
    `open`, which lists open groups and armed windows together, took them)."""
    world.submit(post("/hooks/hb", k="web-1"))        # arms quiet's window for web-1
    world.submit(post("/hooks/build", k="3f1d"))      # opens a gate group
    state = str(world.tmp / "state")
    r = CliRunner().invoke(cli, ["groups", "--state", state, "--status", "armed", "--format", "json"])
    assert r.exit_code == 0, r.output
    assert [(g["rule"], g["state"]) for g in json.loads(r.output)] == [("quiet", "armed")]
    r = CliRunner().invoke(cli, ["groups", "--state", state, "--status", "open", "--format", "json"])
    assert sorted(g["state"] for g in json.loads(r.output)) == ["armed", "open"]
    api = TestClient(create_app(world.tmp / "state"), client=("127.0.0.1", 40000))  # the API takes the same
    r = api.get("/api/groups?state=armed")
    assert r.status_code == 200, r.text
    assert [(g["rule"], g["state"]) for g in r.json()["groups"]] == [("quiet", "armed")]
