"""Cron expressions: what is valid, and when one fires in a time zone. The one definition
that the checker (TRG303), the schedule source (``on cron``) and correlation windows
(``between cron A and cron B``) all read. Pure: no clock, no sleeping; croniter is imported
only by the functions that need it, so ``triggerc check`` of a file without cron pays nothing.

Syntax
------
Five fields, ``minute hour day-of-month month day-of-week``, as croniter reads them (names
``jan``/``mon``, ranges, steps, lists, ``L``, ``#``). The aliases ``@yearly`` (``@annually``),
``@monthly``, ``@weekly``, ``@daily`` (``@midnight``) and ``@hourly`` stand for their
five-field forms (:func:`normalise`); ``@reboot`` has no time and is refused. A line pasted
from a crontab gets a hint that says where its parts go: a ``CRON_TZ=``/``TZ=`` prefix is the
``tz`` of the rule, and what follows five valid fields is a command, which goes in an action.
A systemd ``OnCalendar=`` time (``Mon..Fri 03:00``, ``*:0/15``, ``weekly``) gets its cron
expression when it has a simple one (:func:`_systemd_calendar`).
An expression
that is well formed but never fires (``0 0 30 2 *``: no February has a 30th) is refused too,
and so is croniter's random field ``R`` (see :data:`_RANDOM`): a schedule fires at times
written in the rules, not drawn.

A range that runs backwards (``5-1``, ``fri-mon``, ``22-2``) is refused: cronie sets no value
for it (the job never runs on those days, silently) while croniter wraps it round (Friday to
Monday), so its meaning depends on the cron that reads it; the hint spells the wrap-round out
(``5-6,0-1``). ``N-0`` in the day-of-week field is the exception cronie makes too: Sunday is
also 7, so ``5-0`` is Friday to Sunday.

Day of month and day of week
----------------------------
As in cronie (``cron.c``: ``DOM_STAR``/``DOW_STAR``, set when the field *begins* with ``*``),
when both fields are restricted a day matches if **either** does (``0 0 1 * mon``: the 1st and
every Monday); when either begins with ``*`` a day must match **both** (``0 0 */2 * mon``:
Mondays that fall on an odd date). croniter would read ``*/2`` as restricted and fire on every
odd date and every Monday, so :func:`instants` tells it which (``day_or``).

Daylight-saving time
--------------------
Expressions are evaluated on *naive wall-clock time* in the zone, then placed on the time
line with :mod:`zoneinfo`. This follows Vixie cron and cronie, whose ``entry.c`` marks a job
"wildcard" when its minute or its hour field begins with ``*`` (``MIN_STAR``/``HR_STAR``)
and whose ``cron.c`` runs wildcard jobs on real time and the others ("fixed-time") once:

* an expression whose minute or hour field begins with ``*`` (``0 * * * *``, ``*/15 2 * * *``)
  follows real time: in the hour repeated when clocks go back it fires in both passes, and
  the wall times skipped when clocks go forward simply do not occur;
* a fixed-time expression (``30 2 * * *``) fires once a day whatever happens: in a repeated
  hour only the first pass counts, and a wall time that does not exist (02:30 on the
  spring-forward night in Europe) fires at the instant the clocks jump (03:00 local).
"""

from __future__ import annotations

import datetime as _dt
import heapq
import re
from typing import Iterator

__all__ = ["ALIASES", "normalise", "problem", "instants", "next_instant"]

UTC = _dt.timezone.utc
_MARGIN = _dt.timedelta(hours=3)  # larger than any DST or zone shift
ALIASES = {
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
    "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@hourly": "0 * * * *",
}
FIELDS = (("minute", "0-59"), ("hour", "0-23"), ("day-of-month", "1-31"), ("month", "1-12 or jan-dec"),
          ("day-of-week", "0-7 or sun-sat"))
HINT = 'minute hour day-of-month month day-of-week, e.g. "0 3 * * 1-5"'
_BOUNDS = ((0, 59), (0, 23), (1, 31), (1, 12), (0, 6))
_NAMES = ({}, {}, {},
          {m: i + 1 for i, m in enumerate("jan feb mar apr may jun jul aug sep oct nov dec".split())},
          {d: i for i, d in enumerate("sun mon tue wed thu fri sat".split())})


_RANDOM = re.compile(r"[rR](?:\(\d+-\d+\))?(?:/\d+)?")
"""croniter's random field (``R``, ``R(1-5)``, ``R/10``): a new draw at each croniter made,
so a rule would fire at a different time after every firing, restart or reload, and
check's "never fires" test would pass or fail by chance. Refused (TRG303)."""

_HASHED = re.compile(r"H(?:\(\d+-\d+\))?(?:/\d+)?")
"""Jenkins' hashed field (``H``, ``H(0-29)``, ``H/15``): a value Jenkins derives from the
job's name, so that jobs spread over the hour. A rule has no such name to hash (a label
changes, a rule moves between files), so it is refused (TRG303) as ``R`` is, with the same
hint: write the value."""


def normalise(expr: str) -> str:
    """``expr`` with its white space folded and an ``@alias`` replaced by its five fields."""
    expr = " ".join(str(expr).split())
    return ALIASES.get(expr.lower(), expr)


def _quartz(fields: list[str]) -> tuple[str, str] | None:
    """The problem of six or seven fields that read as Quartz's and Spring's (seconds first,
    a year last), with the five-field expression to write when the seconds are 0."""
    from croniter import croniter

    if len(fields) not in (6, 7) or not re.fullmatch(r"[0-9]+", fields[0]):
        return None
    five = " ".join(fields[1:6])
    if not croniter.is_valid(five):
        return None
    what = "seconds first" + (" and a year last" if len(fields) == 7 else "") + " (Quartz, Spring)"
    if len(fields) == 7 and fields[6] not in ("*", "?"):  # a year: the five fields would lose it
        return (f"a cron expression has 5 fields, this one has 7: {what}, and a schedule has no year",
                f'"{five}" fires in every year: check the year in the action, or remove the rule when it is over')
    if int(fields[0]) == 0:
        from .diagnostics import write_hint  # (its diagnostic's fix, the editor's quick fix)

        return (f"a cron expression has 5 fields, this one has {len(fields)}: {what}",
                write_hint(f'"{five}"', before="a schedule fires on the minute: "))
    return (f"a cron expression has 5 fields, this one has {len(fields)}: {what}",
            f'a schedule fires on the minute, so there is no seconds field: "{five}" fires at second 0 '
            f"(for a period in seconds, on every {int(fields[0])}s)")


def problem(expr: str) -> tuple[str, str] | None:
    """``(message, hint)`` saying what is wrong with the cron expression, or None when it
    is valid and fires at least once (it is looked for over the next 28 years, croniter's
    reach: every valid calendar date recurs within that)."""
    from croniter import croniter

    norm = normalise(expr)
    fields = norm.split()
    if norm.lower() == "@reboot":
        return ("@reboot has no time: triggerlang has no start-up trigger",
                "start such a job with the service that starts serve (systemd: ExecStartPre=), "
                "or write a schedule such as @daily or \"0 3 * * *\"")
    calendar = _systemd_calendar(norm)
    if calendar is not None:
        return ("a systemd OnCalendar= time is not a cron expression",
                f'its cron expression: "{calendar}"' if calendar else
                'cron takes minute hour day-of-month month day-of-week: OnCalendar=Mon..Fri 03:00 is '
                '"0 3 * * 1-5", *:0/15 is "*/15 * * * *", daily is "0 0 * * *"')
    zone = re.fullmatch(r"(?:CRON_)?TZ=(\S+)", fields[0]) if fields else None
    if zone:
        rest = " ".join(fields[1:])
        return (f"{fields[0].split('=')[0]}= is a crontab setting, not a field of the expression",
                f'give the zone after the expression: cron "{rest}" tz "{zone.group(1)}"')
    seconds = _quartz(fields)
    if seconds is not None:
        return seconds
    if len(fields) > 5 and croniter.is_valid(" ".join(fields[:5])) and re.search(r"[^0-9*,/?LW#-]", fields[5]):
        return (f"a cron expression has 5 fields, this one has {len(fields)}: the rest is a crontab's command",
                f'the command goes in an action (action job = exec "PROGRAM" "ARG"...), and the rule '
                f'keeps five fields: on cron "{" ".join(fields[:5])}" run job')
    if len(fields) == 2 and fields[0].lower() == "@every":  # robfig/cron's (Go) interval
        return ("@every is an interval, not a cron expression",
                f"an interval is a trigger of its own: on every {fields[1]} run ACTION")
    if len(fields) == 1 and fields[0].startswith("@"):  # `@hourli`: not a line of 1 field
        from .diagnostics import suggest

        near = suggest(fields[0].lower(), ALIASES)
        known = "@hourly, @daily, @weekly, @monthly and @yearly"
        return (f"unknown cron alias {fields[0]!r}",
                f"did you mean {near!r}? (the aliases are {known})" if near
                else f"the aliases are {known}; or write five fields: {HINT}")
    if len(fields) != 5:
        return f"a cron expression has 5 fields, this one has {len(fields)}", HINT
    for (name, allowed), field in zip(FIELDS, fields):
        what = ("a random value (croniter's R), drawn again each time the next firing is worked out"
                if _RANDOM.fullmatch(field) else
                "Jenkins' hashed value (H), which Jenkins derives from a job's name" if _HASHED.fullmatch(field)
                else None)
        if what:
            return (f"invalid cron expression {expr!r}: the {name} field {field!r} is {what}",
                    f"write the value itself: the {name} field takes {allowed} (to spread the jobs "
                    "of several machines, give each its own minute)")
    if not croniter.is_valid(norm):
        for i, (name, allowed) in enumerate(FIELDS):
            alone = " ".join(f if j == i else "*" for j, f in enumerate(fields))
            if not croniter.is_valid(alone):
                return (f"invalid cron expression {expr!r}: the {name} field {fields[i]!r} is not valid",
                        f"the {name} field takes {allowed}, with ranges a-b, steps */n and lists a,b")
        return f"invalid cron expression {expr!r}", HINT
    backwards = _backwards_range(fields)
    if backwards is not None:
        return backwards
    try:
        next_instant(norm, "UTC", _dt.datetime(2000, 1, 1, tzinfo=UTC))
    except ValueError:
        return (f"cron expression {expr!r} never fires: no month has that day",
                "check the day-of-month and month fields (February has 28 or 29 days, April, June, "
                "September and November 30)")
    return None


_CALENDAR_WORDS = {"minutely": "* * * * *", "hourly": "0 * * * *", "daily": "0 0 * * *",
                   "weekly": "0 0 * * 1", "monthly": "0 0 1 * *", "yearly": "0 0 1 1 *",
                   "annually": "0 0 1 1 *"}
_DAY = r"(?:mon|tue|wed|thu|fri|sat|sun)[a-z]*"
_CAL_DAYS = re.compile(rf"{_DAY}(?:\.\.{_DAY})?(?:,{_DAY}(?:\.\.{_DAY})?)*", re.I)
_CAL_DATE = re.compile(r"\*-(\*|\d{1,2})-(\*|\d{1,2})")
_CAL_TIME = re.compile(r"(\*|\d{1,2}(?:/\d+)?)(?::(\*|\d{1,2}(?:/\d+)?))(?::0?0)?")


def _systemd_calendar(expr: str) -> str | None:
    """For a systemd ``OnCalendar=`` time pasted as a cron expression (README: "Coming from
    GitHub Actions triggers and cron"): the cron expression that says the same, ``""`` when
    it is one but has no simple cron form, or None when it is not one. Read: an optional
    ``OnCalendar=``, a word (``daily``, ``weekly``: systemd's Monday 00:00...), or
    ``[Mon..Fri[,Sun]] [*-MM-DD] HH:MM[:00]`` whose hour and minute may be ``*`` or
    ``START/STEP`` (``*:0/15``)."""
    text = expr.strip()
    named = text.lower().startswith("oncalendar=")
    if named:
        text = text.split("=", 1)[1].strip()
    if text.lower() in _CALENDAR_WORDS:
        return _CALENDAR_WORDS[text.lower()]
    parts = text.split()
    if not named and not any(".." in p or ":" in p or _CAL_DATE.fullmatch(p) for p in parts):
        return None
    dow = dom = month = "*"
    if parts and _CAL_DAYS.fullmatch(parts[0]):
        dow = ",".join("-".join(d[:3].lower() for d in item.split("..")) for item in parts.pop(0).split(","))
    if parts and _CAL_DATE.fullmatch(parts[0]):
        month, dom = _CAL_DATE.fullmatch(parts.pop(0)).groups()
    time = _CAL_TIME.fullmatch(parts[0]) if len(parts) == 1 else None
    if time is None:
        return ""
    fields = [_calendar_field(time.group(2), 59), _calendar_field(time.group(1), 23),
              dom.lstrip("0") or "0", month.lstrip("0") or "0", dow]
    cron = " ".join(fields)
    return cron if "" not in fields and problem(cron) is None else ""


def _calendar_field(value: str, top: int) -> str:
    """A systemd hour or minute (``*``, ``7``, ``0/15``, ``5/15``) as a cron field."""
    if value == "*":
        return "*"
    start, _, step = value.partition("/")
    if not step:
        return str(int(start))
    return f"*/{int(step)}" if int(start) == 0 else f"{int(start)}-{top}/{int(step)}"


def _backwards_range(fields: list[str]) -> tuple[str, str] | None:
    """``(message, hint)`` for the first range ``a-b`` with ``a > b`` (see the module
    docstring), or None. The fields are already known to be valid."""
    for i, field in enumerate(fields):
        for item in field.split(","):
            rng, _, step = item.partition("/")
            lo_text, dash, hi_text = rng.partition("-")
            if not dash:
                continue
            lo, hi = (_NAMES[i].get(t.lower(), None) if not t.isdigit() else int(t) for t in (lo_text, hi_text))
            if lo is None or hi is None or lo <= hi or (i == 4 and hi == 0):
                continue
            first, last = _BOUNDS[i]
            head = f"{lo}-{last}" if lo < last else f"{last}"
            tail = f"{first}-{hi}" if hi > first else f"{first}"
            spelled = f"{head},{tail}" + (f" (with the step on each part)" if step else "")
            return (f"the {FIELDS[i][0]} range {rng!r} runs backwards",
                    f"cronie reads it as no value, croniter as a wrap-round; for the wrap-round write {spelled}")
    return None


def _day_or(fields: list[str]) -> bool:
    """cronie's rule for day of month and day of week: either matches (True) when both are
    restricted, both must (False) when either begins with ``*`` (see the module docstring)."""
    return not (fields[2].startswith("*") or fields[4].startswith("*"))


def _zone(name: str | None) -> _dt.tzinfo:
    if not name or name.upper() == "UTC":
        return UTC
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"unknown time zone {name!r}") from None


def _placed(wall: _dt.datetime, tz: _dt.tzinfo, realtime: bool) -> list[_dt.datetime]:
    """The UTC instants at which a naive wall time of ``tz`` fires (see the module docstring)."""
    a = wall.replace(tzinfo=tz, fold=0)
    b = wall.replace(tzinfo=tz, fold=1)
    if a.utcoffset() == b.utcoffset():
        return [a.astimezone(UTC)]
    if a.astimezone(UTC).astimezone(tz).replace(tzinfo=None) == wall:  # it occurs twice
        return [a.astimezone(UTC), b.astimezone(UTC)] if realtime else [a.astimezone(UTC)]
    if realtime:  # it does not occur
        return []
    # it does not occur: fire when the clocks jump, the first instant with the new offset
    new_off = b.utcoffset()
    lo, hi = b.astimezone(UTC), a.astimezone(UTC)  # offset before the jump at lo, after it at hi
    while (hi - lo) > _dt.timedelta(seconds=1):
        mid = (lo + (hi - lo) / 2).replace(microsecond=0)
        if mid <= lo:
            break
        if mid.astimezone(tz).utcoffset() == new_off:
            hi = mid
        else:
            lo = mid
    return [hi]


def instants(expr: str, tz: str | None, after: _dt.datetime) -> Iterator[_dt.datetime]:
    """The instants of ``expr`` in zone ``tz`` (default UTC) strictly after ``after`` (a
    naive ``after`` is UTC), in order, as aware datetimes in the zone. Raises ValueError,
    when the next one is asked for, if the expression is invalid or never fires."""
    from croniter import croniter

    norm = normalise(expr)
    if len(norm.split()) != 5:
        raise ValueError(f"cron expression {expr!r} must have 5 fields")
    zone = _zone(tz)
    after_u = after.replace(tzinfo=UTC) if after.tzinfo is None else after.astimezone(UTC)
    realtime = norm.split()[0].startswith("*") or norm.split()[1].startswith("*")  # MIN_STAR | HR_STAR
    try:
        it = croniter(norm, after_u.astimezone(zone).replace(tzinfo=None) - _MARGIN, ret_type=_dt.datetime,
                      day_or=_day_or(norm.split()))
    except Exception as exc:  # croniter's errors are not all ValueErrors
        raise ValueError(f"invalid cron expression {expr!r}: {exc}") from None
    pending: list[_dt.datetime] = []  # instants found, not yet safe to yield (a later wall may come first)
    while True:
        try:
            wall = it.get_next(_dt.datetime)
        except Exception as exc:  # CroniterBadDateError: e.g. "0 0 30 2 *", or the end of its calendar
            while pending:
                yield heapq.heappop(pending).astimezone(zone)
            raise ValueError(f"cron expression {expr!r} never fires: {exc}") from None
        for u in _placed(wall, zone, realtime):
            if u > after_u:
                heapq.heappush(pending, u)
        # every later wall time fires at or after this one's earliest placing minus the margin
        floor = wall.replace(tzinfo=zone, fold=0).astimezone(UTC) - _MARGIN
        while pending and pending[0] <= floor:
            yield heapq.heappop(pending).astimezone(zone)


def next_instant(expr: str, tz: str | None, after: _dt.datetime) -> _dt.datetime:
    """The first instant of ``expr`` in zone ``tz`` strictly after ``after``; see :func:`instants`."""
    return next(instants(expr, tz, after))
