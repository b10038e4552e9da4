"""Schedules that catch up a missed tick (`catch up`, systemd's ``Persistent=true``).

The pure part (which planned time is owed, how many were missed, across DST changes) is
tested directly; the store look-up on both stores; the syntax through check, fmt, the
manifest, rule tests and the editor; one real serve on SQLite (a catch-up schedule and a
plain one, both with a tick journaled long ago) and two ingest nodes on PostgreSQL.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from click.testing import CliRunner

from triggerlang.cli import main
from triggerlang.events import Event
from triggerlang.runtime.journal import Journal
from triggerlang.runtime.store import PlannedRun
from triggerlang.sources.schedule import MISSED_LIMIT, missed_ticks, next_fire

from runtime_helpers import DEADLINE, wait_for

UTC = dt.timezone.utc
PARIS = ZoneInfo("Europe/Paris")


def iso(t: dt.datetime) -> str:
    return t.isoformat(timespec="milliseconds")


# ---- missed_ticks: pure ------------------------------------------------------------------


def test_every_owes_the_latest_slot_and_counts_the_ones_passed() -> None:
    spec = {"every": 6 * 3600.0}
    last = dt.datetime(2026, 12, 1, 0, 0, tzinfo=UTC)
    planned, missed = missed_ticks(spec, last, dt.datetime(2026, 12, 2, 7, 30, tzinfo=UTC))
    assert iso(planned) == "2026-12-02T06:00:00.000+00:00" and missed == 5  # 06, 12, 18, 00, 06
    # the same instant the running schedule would have planned (so the same delivery key)
    assert planned == next_fire(spec, dt.datetime(2026, 12, 2, 5, tzinfo=UTC), anchor=dt.datetime(1970, 1, 1, tzinfo=UTC))
    # a slot exactly at the start is owed (the running schedule plans strictly after it)
    assert missed_ticks(spec, last, dt.datetime(2026, 12, 1, 6, tzinfo=UTC)) == (last + dt.timedelta(hours=6), 1)


def test_nothing_is_owed_before_the_next_slot() -> None:
    last = dt.datetime(2026, 12, 1, 6, tzinfo=UTC)
    assert missed_ticks({"every": 6 * 3600.0}, last, dt.datetime(2026, 12, 1, 11, 59, tzinfo=UTC)) == (None, 0)
    assert missed_ticks({"every": 6 * 3600.0}, last, last) == (None, 0)
    assert missed_ticks({"cron": "0 3 * * *", "tz": "UTC"}, last, dt.datetime(2026, 12, 2, 2, 59, tzinfo=UTC)) \
        == (None, 0)


def test_cron_across_spring_forward_in_a_zone() -> None:
    """Europe/Paris, 2024-03-31: 02:30 does not exist; the fixed-time job runs at the jump."""
    spec = {"cron": "30 2 * * *", "tz": "Europe/Paris"}
    planned, missed = missed_ticks(spec, dt.datetime(2024, 3, 30, 2, 30, tzinfo=PARIS),
                                   dt.datetime(2024, 4, 1, 4, 0, tzinfo=PARIS))
    assert (iso(planned), missed) == ("2024-04-01T02:30:00.000+02:00", 2)  # 31st at 03:00, 1st at 02:30
    planned, missed = missed_ticks(spec, dt.datetime(2024, 3, 30, 2, 30, tzinfo=PARIS),
                                   dt.datetime(2024, 3, 31, 3, 30, tzinfo=PARIS))
    assert (iso(planned), missed) == ("2024-03-31T03:00:00.000+02:00", 1)


def test_cron_across_fall_back_counts_the_repeated_hour_once() -> None:
    spec = {"cron": "30 2 * * *", "tz": "Europe/Paris"}
    planned, missed = missed_ticks(spec, dt.datetime(2024, 10, 26, 2, 30, tzinfo=PARIS),
                                   dt.datetime(2024, 10, 28, 9, 0, tzinfo=PARIS))
    assert (iso(planned), missed) == ("2024-10-28T02:30:00.000+01:00", 2)
    hourly = {"cron": "30 * * * *", "tz": "Europe/Paris"}  # real time: both passes of 02:30
    planned, missed = missed_ticks(hourly, dt.datetime(2024, 10, 27, 0, 0, tzinfo=UTC),
                                   dt.datetime(2024, 10, 27, 1, 45, tzinfo=UTC))
    assert (iso(planned), missed) == ("2024-10-27T02:30:00.000+01:00", 2)  # 02:30 CEST, 02:30 CET


def test_a_long_downtime_of_a_frequent_cron_stops_counting_but_owes_the_latest() -> None:
    now = dt.datetime(2026, 12, 6, 20, 17, 30, tzinfo=UTC)
    planned, missed = missed_ticks({"cron": "* * * * *", "tz": "UTC"}, now - dt.timedelta(days=30), now)
    assert missed == MISSED_LIMIT and iso(planned) == "2026-12-06T20:17:00.000+00:00"


# ---- the source, in process: what it asks, what it submits ---------------------------------


def test_the_source_submits_one_marked_tick_and_only_for_catch_up_schedules_that_ticked(tmp_path: Path) -> None:
    import asyncio
    import dataclasses

    from triggerlang.sources.schedule import ScheduleSource
    from source_harness import SourceHarness

    h = SourceHarness(tmp_path)
    submitted: list[tuple[dict, str | None]] = []
    asked: list[str] = []
    journaled = {"late": "2026-12-05T00:00:00.000+00:00", "plain": "2026-12-05T00:00:00.000+00:00",
                 "broken": "not a time"}  # "new" has never ticked

    async def submit(event: Event, delivery_key: str | None = None):
        submitted.append((event.data, delivery_key))

    async def last_tick(rule: str) -> str | None:
        asked.append(rule)
        return journaled.get(rule)

    ctx = dataclasses.replace(h.ctx, submit=submit, last_tick=last_tick, options={"shared_store": True})
    now = dt.datetime(2026, 12, 6, 20, 30, tzinfo=UTC)
    config = {"schedules": [{"rule": "late", "every": 21600.0, "catch_up": True},
                            {"rule": "new", "every": 21600.0, "catch_up": True},
                            {"rule": "broken", "every": 21600.0, "catch_up": True},
                            {"rule": "plain", "every": 21600.0}]}

    async def main() -> None:
        src = ScheduleSource(config, ctx)
        src.clock = lambda: now  # the regular ticks never come due
        assert "late every 21600s catch up" in src.describe()
        await src.start()
        try:
            await h.wait_for(lambda: len(asked) == 3 and len(h.messages) >= 3, "the three look-ups")
        finally:
            await src.stop()

    asyncio.run(main())
    assert sorted(asked) == ["broken", "late", "new"]  # a plain schedule asks nothing
    assert submitted == [({"rule": "late", "scheduled": "2026-12-06T18:00:00.000+00:00",
                           "time": "2026-12-06T20:30:00.000+00:00", "catch_up": True, "missed": 7},
                          "schedule:late:2026-12-06T18:00:00.000+00:00")]
    assert any("new has no tick journaled yet" in m for m in h.messages), h.messages
    assert any("broken cannot catch up" in m for m in h.messages), h.messages



def test_an_ordinary_tick_carries_catch_up_false_and_missed_0(tmp_path: Path) -> None:
    """So `catch_up=false` picks the ordinary ticks, as a user would write it (with the
    fields on catch-up ticks only, it matched nothing: a missing field fails `=`)."""
    import asyncio
    import dataclasses
    import time

    from triggerlang.sources.schedule import ScheduleSource
    from source_harness import SourceHarness

    h = SourceHarness(tmp_path)
    submitted: list[dict] = []

    async def submit(event: Event, delivery_key: str | None = None):
        submitted.append(event.data)

    ctx = dataclasses.replace(h.ctx, submit=submit)
    due = dt.datetime(2026, 12, 7, 0, 0, tzinfo=UTC)
    t0 = time.monotonic()

    async def main() -> None:
        src = ScheduleSource({"schedules": [{"rule": "plain", "every": 21600.0}]}, ctx)
        src.clock = lambda: due - dt.timedelta(seconds=0.2) + dt.timedelta(seconds=time.monotonic() - t0)
        await src.start()
        try:
            await h.wait_for(lambda: submitted, "the 00:00 tick")
        finally:
            await src.stop()

    asyncio.run(main())
    assert (submitted[0]["scheduled"], submitted[0]["catch_up"], submitted[0]["missed"]) == \
        ("2026-12-07T00:00:00.000+00:00", False, 0)

# ---- the store look-up, both stores ------------------------------------------------------


def tick(rule: str, scheduled: str, **extra) -> Event:
    return Event("schedule", "tick", {"rule": rule, "scheduled": scheduled, "time": scheduled, **extra})


def test_the_journal_finds_a_rules_newest_tick_through_its_index(tmp_path: Path) -> None:
    j = Journal(tmp_path / "state")
    try:
        assert j.last_tick("a") is None
        j.record_event(tick("a", "2026-12-01T03:00:00.000+01:00"), [PlannedRun("a", "x", {})])
        j.record_event(tick("a", "2026-12-02T03:00:00.000+01:00"), [PlannedRun("a", "x", {})])
        j.record_event(tick("b", "2026-12-03T00:00:00.000+00:00"), [])
        j.record_event(Event("http", "post", {"rule": "a", "scheduled": "no"}), [])
        assert j.last_tick("a") == "2026-12-02T03:00:00.000+01:00"
        assert j.last_tick("b") == "2026-12-03T00:00:00.000+00:00" and j.last_tick("c") is None
        with j._cursor(write=False) as conn:
            plan = " ".join(str(r) for r in conn.execute(
                "EXPLAIN QUERY PLAN SELECT json_extract(data, '$.scheduled') FROM events WHERE source = 'schedule' "
                "AND type = 'tick' AND json_extract(data, '$.rule') = ? ORDER BY rowid DESC LIMIT 1", ("a",)))
        assert "events_ticks_by_rule" in plan, plan
    finally:
        j.close()


def test_the_pg_store_finds_a_rules_newest_tick_through_its_index(pg_url: str) -> None:
    from triggerlang.runtime.pgstore import PgStore

    st = PgStore(pg_url)
    try:
        assert st.last_tick("a") is None
        st.ingest(tick("a", "2026-12-01T03:00:00.000+01:00"), [], delivery_key="schedule:a:1")
        st.ingest(tick("a", "2026-12-02T03:00:00.000+01:00"), [], delivery_key="schedule:a:2")
        st.ingest(tick("b", "2026-12-03T00:00:00.000+00:00"), [])
        st.ingest(Event("http", "post", {"rule": "a", "scheduled": "no"}), [])
        assert st.last_tick("a") == "2026-12-02T03:00:00.000+01:00"
        assert st.last_tick("b") == "2026-12-03T00:00:00.000+00:00" and st.last_tick("c") is None
        with st._conn() as conn:
            conn.execute("SET enable_seqscan = off")  # (four rows: the planner would scan them)
            plan = " ".join(r[0] for r in conn.execute(
                "EXPLAIN SELECT (data::jsonb) ->> 'scheduled' FROM trg_events WHERE source = 'schedule' "
                "AND type = 'tick' AND (data::jsonb) ->> 'rule' = %s ORDER BY seq DESC LIMIT 1", ("a",)))
            conn.execute("RESET enable_seqscan")
        assert "trg_events_ticks_by_rule" in plan, plan
    finally:
        st.close()


OCT, NOV = "2026-10-01T00:00:00.000+00:00", "2026-11-01T00:00:00.000+00:00"


def prune_and_look(record, prune, last_tick) -> None:
    """Before: `store prune --older-than 7d` deleted a monthly rule's last tick with the
    rest, and its `catch up` then found it had never ticked. Each rule's newest tick stays."""
    for ev in (tick("monthly", OCT), tick("monthly", NOV), tick("hourly", OCT), tick("hourly", NOV),
               Event("schedule", "tick", {"scheduled": OCT}),   # no rule: not what last_tick reads
               Event("http", "post", {"rule": "monthly", "scheduled": NOV})):
        record(ev)
    assert prune() == 4   # the two older ticks, the ruleless one, the request: what was deleted
    assert (last_tick("monthly"), last_tick("hourly")) == (NOV, NOV)
    assert prune() == 0   # (the ticks kept are not counted again)


def test_prune_keeps_each_rules_newest_tick_in_the_journal(tmp_path: Path) -> None:
    state = tmp_path / "state"
    j = Journal(state)

    def prune() -> int:
        r = CliRunner().invoke(main, ["store", "prune", "--older-than", "0s", "--state", str(state)])
        assert r.exit_code == 0, r.output
        return int(re.fullmatch(r"pruned 0 run\(s\), (\d+) event\(s\), .*\n", r.output)[1])

    try:
        prune_and_look(lambda ev: j.record_event(ev, []), prune, j.last_tick)
    finally:
        j.close()


def test_prune_keeps_each_rules_newest_tick_in_the_pg_store(pg_url: str) -> None:
    from triggerlang.runtime.pgstore import PgStore

    st = PgStore(pg_url)
    try:
        prune_and_look(lambda ev: st.ingest(ev, []), lambda: st.prune(0)["events"], st.last_tick)
    finally:
        st.close()


# ---- the language: check, fmt, manifest, rule tests --------------------------------------

RULES = '''action backup(when) = exec "true" when
nightly: on cron "0 3 * * *" tz "Europe/Paris" catch up run backup with <scheduled>
report: on every 6h catch up catch_up=true run backup with <scheduled>
plain: on every 1h catch_up=false missed=0 run backup with <scheduled>

test "a catch-up tick is a tick with its fields":
    given schedule.tick rule="report" catch_up=true missed=3 scheduled="2026-12-06T06:00:00.000+00:00"
    expect only report

test "an ordinary tick of report matches nothing (its filter wants a catch-up)":
    given schedule.tick rule="report" scheduled="2026-12-06T06:00:00.000+00:00"
    expect none

test "the clock's ticks are ordinary ones: catch_up=false missed=0 picks them":
    wait 1h
    expect plain
'''


def test_check_compile_fmt_and_rule_tests_know_catch_up(tmp_path: Path) -> None:
    f = tmp_path / "rules.trg"
    f.write_text(RULES)
    r = CliRunner().invoke(main, ["compile", str(f)])
    assert r.exit_code == 0, r.output
    sched = json.loads(r.output)["sources"]["schedule"]["schedules"]
    assert sched == [{"rule": "nightly", "cron": "0 3 * * *", "tz": "Europe/Paris", "catch_up": True},
                     {"rule": "report", "every": 21600.0, "catch_up": True},
                     {"rule": "plain", "every": 3600.0}]  # no key when not set
    r = CliRunner().invoke(main, ["fmt", "--check", str(f)])
    assert r.exit_code == 0, r.output
    r = CliRunner().invoke(main, ["test", str(f)])
    assert r.exit_code == 0 and "3 passed" in r.output, r.output
    f.write_text('action a = exec "true"\nr: on every 1h catch up missed="many" run a\n')
    r = CliRunner().invoke(main, ["check", str(f)])
    assert r.exit_code == 1 and "missed" in r.output, r.output  # typed: an int, not a string


def test_the_editor_offers_and_explains_catch_up() -> None:
    from triggerlang.editor import document as D
    from triggerlang.editor.complete import complete
    from triggerlang.editor.hover import hover

    text = 'action a = exec "true"\nr: on every 6h catch up run a\n'
    names = D.Analyzer().analyse("/tmp/rules.trg", text).names
    for typed, want in [("on every 6h ", {"catch up", "run", "scheduled"}),
                        ('on cron "0 3 * * *" ', {"tz", "catch up", "run"}),
                        ('on cron "0 3 * * *" tz "UTC" ', {"catch up", "run", "scheduled"}),
                        ("on every 6h catch ", {"up"})]:
        labels = {i.label for i in complete([typed], 0, len(typed), names).items}
        assert want <= labels, (typed, labels)
    lines = D.split_lines(text)
    decl = D.parse_declaration(lines, 1, 1, "/tmp/rules.trg")
    h = hover(decl, 1, lines[1].index("catch"), names)
    assert h is not None and "Persistent=true" in h.markdown, h


# ---- serve: SQLite, then two ingest nodes on PostgreSQL ----------------------------------

LONG_AGO = "2026-01-01T00:00:00.000+00:00"


def owed(spec: dict, event: dict) -> tuple[str, int]:
    """What the catch-up tick of ``event`` should say, from its own ``time`` (the start)."""
    planned, missed = missed_ticks(spec, dt.datetime.fromisoformat(LONG_AGO),
                                   dt.datetime.fromisoformat(event["data"]["time"]))
    return iso(planned), missed


def test_serve_catches_up_once_a_tick_missed_while_it_was_down(tmp_path: Path, serve) -> None:
    state = tmp_path / "state"
    j = Journal(state)
    for rule in ("late", "plain"):  # both ticked long ago, then serve was down
        j.record_event(tick(rule, LONG_AGO), [])
    j.close()
    s = serve('''action mark(n) = exec "true" n
late: on every 1d catch up run mark with <missed>
plain: on every 1d run mark with "0"
''')
    runs = s.wait_runs(lambda rs: any(r["rule"] == "late" and r["status"] == "succeeded" for r in rs),
                       "the catch-up run of late")
    s.wait_log("schedule: late missed")
    assert s.stop() == 0
    (ev,) = [e for e in s.events() if e["source"] == "schedule" and e["data"]["scheduled"] != LONG_AGO]
    assert ev["data"]["rule"] == "late" and ev["data"]["catch_up"] is True, ev  # plain: no catch-up
    assert (ev["data"]["scheduled"], ev["data"]["missed"]) == owed({"every": 86400.0}, ev)
    assert ev["data"]["missed"] > 300 and ev["delivery_key"] is None
    (run,) = runs
    assert run["rule"] == "late" and run["inputs"] == {"n": ev["data"]["missed"]}
    assert "schedule: plain" not in s.log()


def test_two_ingest_nodes_starting_together_make_one_catch_up_event(tmp_path: Path, pg_url: str) -> None:
    from triggerlang.runtime.pgstore import PgStore
    from store_harness import Backend, StoreServer

    st = PgStore(pg_url)
    st.ingest(tick("late", LONG_AGO), [], delivery_key=f"schedule:late:{LONG_AGO}")
    st.close()
    backend = Backend("postgresql", pg_url)
    proj = tmp_path / "proj"
    proj.mkdir()
    (proj / "rules.trg").write_text('action mark = exec "true"\nlate: on every 1d catch up run mark\n')
    nodes = [StoreServer(backend, proj / "rules.trg", tmp_path / f"state{i}", workers=0,
                         log=tmp_path / f"node{i}.log") for i in range(2)]
    try:
        for n in nodes:
            n.start(wait=False)
        for n in nodes:  # each node has looked and either caught up or found the other's tick
            wait_for(lambda: re.search(r"schedule: late missed (\d+ tick|no tick)", n.log()) is not None,
                     "the catch-up look-up", on_fail=n.tail)
        for n in nodes:
            assert n.stop() == 0, n.tail()
    finally:
        for n in nodes:
            n.ensure_dead()
    events = [e for e in backend.events(tmp_path) if e["source"] == "schedule" and e["data"]["scheduled"] != LONG_AGO]
    (ev,) = events
    assert ev["data"]["catch_up"] is True and ev["delivery_key"] == f"schedule:late:{ev['data']['scheduled']}"
    assert (ev["data"]["scheduled"], ev["data"]["missed"]) == owed({"every": 86400.0}, ev)
    (run,) = backend.runs(tmp_path)
    assert run["rule"] == "late" and run["status"] == "queued"  # (no worker: --workers 0)
