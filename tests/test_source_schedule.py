"""The schedule source: next_fire across DST changes, and real ticks on a short period."""

from __future__ import annotations

import asyncio
import datetime as dt
import time
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from triggerlang.sources.schedule import ScheduleSource, next_fire

from source_harness import SourceHarness

UTC = dt.timezone.utc
PARIS = ZoneInfo("Europe/Paris")
DEADLINE = 10.0


def at(*args: int, tz: dt.tzinfo = PARIS, fold: int = 0) -> dt.datetime:
    return dt.datetime(*args, tzinfo=tz, fold=fold)


def utc(t: dt.datetime) -> dt.datetime:
    return t.astimezone(UTC)


# ---- next_fire: pure ----------------------------------------------------------------


def test_cron_in_a_zone_fixed_hour_across_spring_forward() -> None:
    """Europe/Paris, 2024-03-31: 02:00 CET jumps to 03:00 CEST; 02:30 does not exist."""
    spec = {"cron": "30 2 * * *", "tz": "Europe/Paris"}
    t = next_fire(spec, at(2024, 3, 30, 12))
    assert t == at(2024, 3, 31, 3, 0) and t.utcoffset() == dt.timedelta(hours=2)
    assert utc(t) == dt.datetime(2024, 3, 31, 1, 0, tzinfo=UTC)  # the instant of the jump
    assert next_fire(spec, t) == at(2024, 4, 1, 2, 30)
    assert next_fire(spec, at(2024, 3, 29, 12)).isoformat() == "2024-03-30T02:30:00+01:00"


def test_cron_in_a_zone_fixed_hour_across_fall_back() -> None:
    """Europe/Paris, 2024-10-27: 03:00 CEST goes back to 02:00 CET; 02:30 happens twice."""
    spec = {"cron": "30 2 * * *", "tz": "Europe/Paris"}
    first = next_fire(spec, at(2024, 10, 26, 12))
    assert first.isoformat() == "2024-10-27T02:30:00+02:00"
    second = next_fire(spec, first)
    assert second.isoformat() == "2024-10-28T02:30:00+01:00"  # no second run in the repeated hour


def test_cron_hourly_follows_real_time_across_both_changes() -> None:
    spec = {"cron": "30 * * * *", "tz": "Europe/Paris"}
    # fall back: 02:30 CEST, 02:30 CET, 03:30 CET are one real hour apart each
    t = next_fire(spec, dt.datetime(2024, 10, 27, 0, 0, tzinfo=UTC))
    seq = [t]
    for _ in range(2):
        seq.append(next_fire(spec, seq[-1]))
    assert [x.isoformat() for x in seq] == [
        "2024-10-27T02:30:00+02:00", "2024-10-27T02:30:00+01:00", "2024-10-27T03:30:00+01:00",
    ]
    assert [utc(b) - utc(a) for a, b in zip(seq, seq[1:])] == [dt.timedelta(hours=1)] * 2
    # spring forward: 01:30 CET then 03:30 CEST, one real hour apart; 02:30 never happens
    t = next_fire(spec, at(2024, 3, 31, 1, 0))
    u = next_fire(spec, t)
    assert t.isoformat() == "2024-03-31T01:30:00+01:00" and u.isoformat() == "2024-03-31T03:30:00+02:00"
    assert utc(u) - utc(t) == dt.timedelta(hours=1)
    # a quarter-hourly job: 01:45 CET then 03:00 CEST, fifteen real minutes apart
    q = {"cron": "*/15 * * * *", "tz": "Europe/Paris"}
    assert next_fire(q, at(2024, 3, 31, 1, 50)).isoformat() == "2024-03-31T03:00:00+02:00"


def test_cron_weekdays_and_defaults() -> None:
    spec = {"cron": "0 3 * * 1-5", "tz": "Europe/Paris"}
    # Friday 29 March after 03:00 CET -> Monday 1 April 03:00 CEST, over the weekend's DST change
    assert next_fire(spec, at(2024, 3, 29, 4)).isoformat() == "2024-04-01T03:00:00+02:00"
    # default zone UTC, strictly after, naive = UTC, bare strings allowed
    daily = next_fire({"cron": "0 0 * * *"}, dt.datetime(2024, 1, 1, tzinfo=UTC))
    assert daily.isoformat() == "2024-01-02T00:00:00+00:00"
    assert next_fire("0 0 * * *", dt.datetime(2024, 1, 1, 0, 0, 1)) == daily
    assert next_fire("@hourly", dt.datetime(2024, 1, 1, 5, 59, tzinfo=UTC)).hour == 6
    # an aware `after` in another zone is the same instant
    ny = dt.datetime(2023, 12, 31, 19, 0, tzinfo=ZoneInfo("America/New_York"))
    assert next_fire("0 0 * * *", ny) == daily


def test_every_has_no_drift() -> None:
    anchor = dt.datetime(2024, 1, 1, tzinfo=UTC)
    spec = {"every": 900.0}
    assert next_fire(spec, anchor, anchor=anchor) == anchor + dt.timedelta(minutes=15)
    late = anchor + dt.timedelta(minutes=15, seconds=7)  # fired 7 s late
    assert next_fire(spec, late, anchor=anchor) == anchor + dt.timedelta(minutes=30)
    asleep = anchor + dt.timedelta(hours=5, minutes=1)  # a suspend: missed slots are skipped
    assert next_fire(spec, asleep, anchor=anchor) == anchor + dt.timedelta(hours=5, minutes=15)
    assert next_fire({"every": 0.1}, anchor, anchor=anchor) == anchor + dt.timedelta(milliseconds=100)
    after = anchor + dt.timedelta(seconds=0.1 * 1000)
    assert next_fire({"every": 0.1}, after, anchor=anchor) == anchor + dt.timedelta(seconds=100.1)
    assert next_fire(spec, anchor) == anchor + dt.timedelta(minutes=15)


@pytest.mark.parametrize("spec", [
    {"cron": "61 * * * *"}, {"cron": "* * * *"}, {"cron": "0 0 30 2 *"}, {"every": 0}, {"every": -5}, {},
])
def test_invalid_specs_raise_value_error(spec: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        next_fire(spec, dt.datetime(2024, 1, 1, tzinfo=UTC))


# ---- the source: real ticks ------------------------------------------------------------


class Harness(SourceHarness):
    deadline = DEADLINE


def test_every_ticks_for_real(tmp_path: Path) -> None:
    h = Harness(tmp_path)

    async def main() -> None:
        src = ScheduleSource({"schedules": [{"rule": "fast", "every": 0.2}]}, h.ctx)
        assert src.describe() == "schedule: fast every 0.2s"
        t0 = dt.datetime.now(UTC)
        await src.start()
        try:
            await h.wait_for(lambda: len(h.events) >= 3, "three ticks")
        finally:
            await src.stop()
        ticks = h.events[:3]
        assert all(e.source == "schedule" and e.type == "tick" and e.data["rule"] == "fast" for e in ticks)
        sched = [dt.datetime.fromisoformat(e.data["scheduled"]) for e in ticks]
        fired = [dt.datetime.fromisoformat(e.data["time"]) for e in ticks]
        assert all(s.utcoffset() == dt.timedelta(0) for s in sched)
        assert t0 < sched[0] <= t0 + dt.timedelta(seconds=0.5)
        # planned times sit on the start + k*D grid (to the millisecond of the ISO text);
        # a loaded machine may skip a slot, never drift off the grid
        for a, b in zip(sched, sched[1:]):
            k = round((b - a).total_seconds() / 0.2)
            assert k >= 1 and abs((b - a).total_seconds() - k * 0.2) <= 0.0015
        assert all(f >= s for s, f in zip(sched, fired))

    asyncio.run(main())


def test_a_suspend_fires_one_catch_up_tick_without_replay(tmp_path: Path) -> None:
    h = Harness(tmp_path)
    jump = {"by": dt.timedelta(0)}

    async def main() -> None:
        src = ScheduleSource({"schedules": [{"rule": "r", "every": 0.2}]}, h.ctx)
        src.clock = lambda: dt.datetime.now(UTC) + jump["by"]
        await src.start()
        start = src.clock()
        jump["by"] = dt.timedelta(hours=1)  # the machine "slept" for an hour, before the first tick
        try:
            await h.wait_for(lambda: len(h.events) >= 2, "the catch-up tick and the next one")
        finally:
            await src.stop()
        first, second = (dt.datetime.fromisoformat(e.data["scheduled"]) for e in h.events[:2])
        assert 0 < (first - start).total_seconds() <= 0.2 and _on_epoch_grid(first, 0.2)  # the slot it waited for
        assert (second - start).total_seconds() > 3600  # the 18,000 slots in between are dropped
        assert dt.datetime.fromisoformat(h.events[0].data["time"]) - first > dt.timedelta(minutes=59)

    asyncio.run(main())


def test_cron_tick_time_format_and_prompt_stop(tmp_path: Path) -> None:
    h = Harness(tmp_path)

    async def main() -> float:
        cfg = {"schedules": [
            {"rule": "weekday", "cron": "0 3 * * 1-5", "tz": "Europe/Paris"},
            {"rule": "broken", "cron": "not a cron"},
            {"rule": "badzone", "cron": "0 3 * * *", "tz": "Mars/Olympus"},
        ]}
        src = ScheduleSource(cfg, h.ctx)
        assert src.describe() == "schedule: weekday cron '0 3 * * 1-5' (Europe/Paris)"
        assert any("broken" in m for m in h.messages) and any("badzone" in m for m in h.messages)
        await src.start()
        await asyncio.sleep(0)  # let the task enter its (long) sleep
        t0 = time.monotonic()
        await src.stop()
        return time.monotonic() - t0

    assert asyncio.run(main()) < 0.5
    assert h.events == []


def test_every_minute_cron_fires_with_zone_offset(tmp_path: Path) -> None:
    """A real cron tick, without waiting a minute: the source's clock is moved to 1 s before
    a minute boundary (an offset on the real clock, so time still flows)."""
    h = Harness(tmp_path)

    async def main() -> None:
        src = ScheduleSource({"schedules": [{"rule": "m", "cron": "* * * * *", "tz": "Asia/Kolkata"}]}, h.ctx)
        real = dt.datetime.now(UTC)
        target = (real + dt.timedelta(minutes=2)).replace(second=0, microsecond=0)
        shift = target - dt.timedelta(seconds=1) - real
        src.clock = lambda: dt.datetime.now(UTC) + shift
        await src.start()
        try:
            await h.wait_for(lambda: len(h.events) >= 1, "a cron tick")
        finally:
            await src.stop()
        data = h.events[0].data
        assert data["rule"] == "m"
        assert data["scheduled"] == target.astimezone(ZoneInfo("Asia/Kolkata")).isoformat(timespec="milliseconds")
        assert data["scheduled"].endswith(":00.000+05:30") and data["time"].endswith("+05:30")

    asyncio.run(main())


def _on_epoch_grid(t: dt.datetime, period: float) -> bool:
    """``t`` is a multiple of ``period`` seconds from the Unix epoch (to the millisecond of the ISO text)."""
    ms = round(t.timestamp() * 1000)
    step = round(period * 1000)
    return min(ms % step, step - ms % step) <= 1


def test_every_keeps_its_phase_across_a_restart(tmp_path: Path) -> None:
    """``every D`` ticks on multiples of D from the Unix epoch, not from the start: a
    restart of serve (or a reload that restarts the schedules) does not move the ticks, so
    `every 1d` on a serve restarted every night still ticks. Each start is put 0.15 s into a
    0.5 s period; a start-anchored plan would tick at .15 past the half second."""
    h = Harness(tmp_path)
    period = 0.5

    async def one_run() -> list[dt.datetime]:
        before = len(h.events)
        src = ScheduleSource({"schedules": [{"rule": "r", "every": period}]}, h.ctx)
        real = dt.datetime.now(UTC)
        into = real.timestamp() % period
        shift = dt.timedelta(seconds=(0.15 - into) % period)  # the source's clock now reads k + 0.15 s
        src.clock = lambda: dt.datetime.now(UTC) + shift
        start = src.clock()
        await src.start()
        try:
            await h.wait_for(lambda: len(h.events) >= before + 2, "two ticks")
        finally:
            await src.stop()
        planned = [dt.datetime.fromisoformat(e.data["scheduled"]) for e in h.events[before:before + 2]]
        assert start < planned[0] <= start + dt.timedelta(seconds=period)
        return planned

    async def main() -> None:
        for planned in (await one_run(), await one_run()):  # a start, then a restart
            assert all(_on_epoch_grid(t, period) for t in planned), [t.isoformat() for t in planned]

    asyncio.run(main())


@pytest.mark.parametrize("expr, tz, start", [
    ("0 * * * *", "Europe/Paris", "2024-10-26T22:00:00+00:00"),     # fall back: both 02:00 passes
    ("30 2 * * *", "Europe/Paris", "2024-03-30T12:00:00+00:00"),    # spring forward: at the jump
    ("30 2 * * *", "Europe/Paris", "2024-10-26T12:00:00+00:00"),    # fall back: the first pass only
    ("30 1 * * *", "America/New_York", "2024-11-02T12:00:00+00:00"),
    ("*/20 * * * *", "Australia/Lord_Howe", "2024-04-06T14:00:00+00:00"),  # a 30-minute DST change
    ("@daily", "UTC", "2024-02-28T12:00:00+00:00"),
])
def test_correlation_windows_read_cron_as_schedules_do(expr: str, tz: str, start: str) -> None:
    """`between cron A and cron B` opens and closes its windows at the instants `on cron A`
    ticks at: one definition (triggerlang/cron.py). The windows skipped the second pass of
    an hourly cron when the clocks went back, where a schedule ticks in both (cronie)."""
    from itertools import islice

    from triggerlang.correlation.clock import cron_instants

    t = dt.datetime.fromisoformat(start)
    ticks = []
    for _ in range(8):
        t = next_fire({"cron": expr, "tz": tz}, t)
        ticks.append(t.timestamp())
    assert list(islice(cron_instants(expr, tz, dt.datetime.fromisoformat(start).timestamp()), 8)) == ticks


def test_an_hourly_window_opens_in_both_passes_of_the_repeated_hour() -> None:
    from triggerlang.correlation.clock import cron_next

    after = dt.datetime(2024, 10, 27, 0, 30, tzinfo=UTC).timestamp()  # 02:30 CEST, the first pass
    first = cron_next("0 * * * *", "Europe/Paris", after)
    assert dt.datetime.fromtimestamp(first, UTC) == dt.datetime(2024, 10, 27, 1, 0, tzinfo=UTC)  # 02:00 CET


def test_a_wildcard_minute_follows_real_time_like_a_wildcard_hour() -> None:
    """Vixie cron and cronie treat a job as "wildcard" (scheduled on real time, no catch-up,
    no de-duplication) when its minute *or* its hour field begins with `*` (entry.c sets
    MIN_STAR/HR_STAR from the field's first character; cron.c tests both). `*/30 2 * * *`
    therefore does not fire on the spring-forward night (02:xx does not exist; it fired
    once at the jump) and fires in both passes of the repeated 02:xx in autumn (it fired in
    the first only)."""
    spec = {"cron": "*/30 2 * * *", "tz": "Europe/Paris"}
    spring = next_fire(spec, at(2024, 3, 30, 12, 0))
    assert spring == at(2024, 4, 1, 2, 0)  # nothing on the night of 31 March
    t, autumn = at(2024, 10, 26, 12, 0), []
    for _ in range(5):
        t = next_fire(spec, t)
        autumn.append(utc(t))
    assert autumn == [dt.datetime(2024, 10, 27, 0, 0, tzinfo=UTC), dt.datetime(2024, 10, 27, 0, 30, tzinfo=UTC),
                      dt.datetime(2024, 10, 27, 1, 0, tzinfo=UTC), dt.datetime(2024, 10, 27, 1, 30, tzinfo=UTC),
                      dt.datetime(2024, 10, 28, 1, 0, tzinfo=UTC)]


@pytest.mark.parametrize(("expr", "days"), [
    # both day fields restricted: either matches (the 1st, and every Monday)
    ("0 0 1 * mon", ["2026-12-07", "2026-12-14", "2026-12-21", "2026-12-28", "2027-01-01", "2027-01-04"]),
    # a day-of-month field beginning with '*' counts as unrestricted: both must match
    ("0 0 */2 * mon", ["2026-12-07", "2026-12-21", "2027-01-11", "2027-01-25", "2027-02-01", "2027-02-15"]),
    ("0 0 1 * */3", ["2027-05-01", "2027-08-01", "2027-09-01", "2027-12-01", "2028-01-01", "2028-03-01"]),
    ("0 0 * * mon", ["2026-12-07", "2026-12-14", "2026-12-21", "2026-12-28", "2027-01-04", "2027-01-11"]),
    # N-0 in the day-of-week field: Sunday is also 7 (cronie), so Friday to Sunday
    ("0 0 * * 5-0", ["2026-12-04", "2026-12-05", "2026-12-06", "2026-12-11", "2026-12-12", "2026-12-13"]),
])
def test_day_of_month_and_day_of_week_combine_as_in_cronie(expr: str, days: list[str]) -> None:
    """cronie ORs the two day fields only when neither begins with `*` (cron.c tests
    DOM_STAR|DOW_STAR, which entry.c sets from the field's first character); croniter read
    `*/2` as restricted and fired `0 0 */2 * mon` on every odd date and every Monday."""
    t, got = dt.datetime(2026, 12, 1, 0, 0, tzinfo=UTC), []
    for _ in range(len(days)):
        t = next_fire({"cron": expr}, t)
        got.append(t.date().isoformat())
    assert got == days


@pytest.mark.parametrize(("expr", "spelled"), [
    ("0 0 * * 5-1", "5-6,0-1"), ("0 0 * * fri-mon", "5-6,0-1"), ("0 22-2 * * *", "22-23,0-2"),
    ("50-10 * * * *", "50-59,0-10"), ("0 0 25-5 * *", "25-31,1-5"), ("0 0 * nov-feb *", "11-12,1-2"),
    ("0 23-0 * * *", "23,0"), ("0 0 * * 1,5-1/2", "5-6,0-1"),
])
def test_a_range_that_runs_backwards_is_refused_with_its_wrap_round(expr: str, spelled: str) -> None:
    """cronie sets no value for `5-1` (the job silently never runs on those days) where
    croniter wraps it round (Friday to Monday): `check` accepted it, and what it meant
    depended on the cron. It is refused now, and the hint spells the wrap-round out."""
    from triggerlang import cron

    bad = cron.problem(expr)
    assert bad is not None and "runs backwards" in bad[0]
    assert bad[1].endswith(f"write {spelled}") or f"write {spelled} (" in bad[1]
    assert cron.problem("0 0 * * 1-5") is None and cron.problem("0 0 * * sat-sun") is None


@pytest.mark.parametrize(("expr", "hint"), [
    ("@hourli", "did you mean '@hourly'? (the aliases are @hourly, @daily, @weekly, @monthly and @yearly)"),
    ("@fortnightly", "the aliases are @hourly, @daily, @weekly, @monthly and @yearly; or write five fields"),
])
def test_an_unknown_cron_alias_is_named_as_one(expr: str, hint: str) -> None:
    """`@hourli` was "a cron expression has 5 fields, this one has 1": the alias is named,
    with the one it is close to."""
    from triggerlang import cron

    message, got = cron.problem(expr)
    assert message == f"unknown cron alias {expr!r}" and got.startswith(hint), got
    assert cron.problem("@Hourly") is None


@pytest.mark.parametrize(("line", "message", "hint"), [
    ("CRON_TZ=Europe/Paris 30 2 * * *", "CRON_TZ= is a crontab setting",
     'cron "30 2 * * *" tz "Europe/Paris"'),
    ("0 3 * * 1-5 /usr/local/bin/backup --full", "this one has 7: the rest is a crontab's command",
     'on cron "0 3 * * 1-5" run job'),
    ("@reboot", "no start-up trigger", "ExecStartPre="),
    ("0 3 * * * 2024", "this one has 6", "minute hour day-of-month"),
])
def test_a_line_pasted_from_a_crontab_is_told_where_its_parts_go(line: str, message: str, hint: str) -> None:
    """A crontab's `CRON_TZ=` line or its command pasted into `on cron "..."` was "5 fields,
    this one has 6" with the generic hint: the hint now says where the part goes."""
    from triggerlang import cron

    bad = cron.problem(line)
    assert bad is not None and message in bad[0] and hint in bad[1], bad


@pytest.mark.parametrize("expr", ["0 2 r * *", "R * * * *", "0 R(1-5) * * *", "0 0 R/2 * *", "0 0 * * R"])
def test_croniter_s_random_field_is_refused(expr: str) -> None:
    """croniter reads `R` as a value drawn afresh by each croniter made: `check` passed
    `0 2 r * *` (a fuzzed `"0 2 * * *"`), and the schedule fired on another day of the month
    after each firing, its `between` window closing at a different date at each check. It is
    TRG303 now, naming the field; `fri` and `mar` (names with an r) are still days and months."""
    from triggerlang import cron
    from triggerlang.api import compile_text

    bad = cron.problem(expr)
    assert bad is not None and "random value" in bad[0] and "the value itself" in bad[1], bad
    assert cron.problem("0 0 * mar fri") is None
    c = compile_text(f'action d = shell "true"\nx: on cron "{expr}" run d\n', "r.trg")
    assert [d.code for d in c.diagnostics] == ["TRG303"]


@pytest.mark.parametrize(("expr", "message", "hint"), [
    ("H 3 * * *", "the minute field 'H' is Jenkins' hashed value", "write the value itself: the minute field"),
    ("H H(0-7) * * *", "the minute field 'H' is Jenkins' hashed value", "write the value itself"),
    ("H/15 * * * *", "the minute field 'H/15' is Jenkins' hashed value", "write the value itself"),
    ("0 0 * * H", "the day-of-week field 'H' is Jenkins' hashed value", "write the value itself"),
    ("0 0 3 ? * MON-FRI 2025", "seconds first and a year last (Quartz, Spring), and a schedule has no year",
     '"0 3 ? * MON-FRI" fires in every year'),
])
def test_jenkins_hashed_field_and_a_quartz_year_say_what_to_write(expr: str, message: str, hint: str) -> None:
    """README's crontab table: Jenkins' `H` is refused as croniter's `R` is, "write the
    value", and a Quartz expression gets its five fields. check said only "the minute field
    'H' is not valid", and for a Quartz year "this one has 7" with the generic example: it
    now names the hashed value, and gives the five fields with the year they cannot keep."""
    from triggerlang import cron

    bad = cron.problem(expr)
    assert bad is not None and message in bad[0] and hint in bad[1], bad


@pytest.mark.parametrize(("calendar", "expr"), [
    ("Mon..Fri 03:00", "0 3 * * mon-fri"),
    ("OnCalendar=*:0/15", "*/15 * * * *"),
    ("*:5/15", "5-59/15 * * * *"),
    ("Sat,Sun 10:30:00", "30 10 * * sat,sun"),
    ("*-12-25 00:00", "0 0 25 12 *"),
    ("weekly", "0 0 * * 1"),
])
def test_a_systemd_oncalendar_time_gets_its_cron_expression(calendar: str, expr: str) -> None:
    """README's crontab/systemd table turns `OnCalendar=Mon..Fri 03:00` into `cron "0 3 * *
    1-5"`; pasted as it is, check said "5 fields, this one has 2" with a generic example.
    It now says it is an OnCalendar= time and gives its cron expression."""
    from triggerlang import cron

    bad = cron.problem(calendar)
    assert bad is not None and "OnCalendar=" in bad[0] and bad[1] == f'its cron expression: "{expr}"', bad
    assert cron.problem(expr) is None
    if calendar == "Mon..Fri 03:00":  # the Monday after a Saturday, at 03:00
        saturday = dt.datetime(2026, 12, 5, 12, tzinfo=dt.timezone.utc)
        assert cron.next_instant(expr, "UTC", saturday) == dt.datetime(2026, 12, 7, 3, tzinfo=dt.timezone.utc)
    other = cron.problem("2026-01-01 00:00")  # no cron form: the general hint
    assert other is not None and "OnCalendar=" in other[0] and '"0 3 * * 1-5"' in other[1]
