"""Cron expressions: what is valid, and when one fires in a time zone. The one definition
that the checker (TRG303), the schedule source (``on cron``) and correlation windows
(``between cron A and cron B``) all read. Pure: no clock, no sleeping; croniter is imported
only by the functions that need it, so ``triggerc check`` of a file without cron pays nothing.

Syntax
------
Five fields, ``minute hour day-of-month month day-of-week``, as croniter reads them (names
``jan``/``mon``, ranges, steps, lists, ``L``, ``#``). The aliases ``@yearly`` (``@annually``),
``@monthly``, ``@weekly``, ``@daily`` (``@midnight``) and ``@hourly`` stand for their
five-field forms (:func:`normalise`); ``@reboot`` has no time and is refused. An expression
that is well formed but never fires (``0 0 30 2 *``: no February has a 30th) is refused too.

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


def normalise(expr: str) -> str:
    """``expr`` with its white space folded and an ``@alias`` replaced by its five fields."""
    expr = " ".join(str(expr).split())
    return ALIASES.get(expr.lower(), expr)


def problem(expr: str) -> tuple[str, str] | None:
    """``(message, hint)`` saying what is wrong with the cron expression, or None when it
    is valid and fires at least once (it is looked for over the next 28 years, croniter's
    reach: every valid calendar date recurs within that)."""
    from croniter import croniter

    norm = normalise(expr)
    fields = norm.split()
    if norm.lower() == "@reboot":
        return ("@reboot has no time: triggerlang has no start-up trigger",
                "write a schedule such as @daily or \"0 3 * * *\"")
    if len(fields) != 5:
        return f"a cron expression has 5 fields, this one has {len(fields)}", HINT
    if not croniter.is_valid(norm):
        for i, (name, allowed) in enumerate(FIELDS):
            alone = " ".join(f if j == i else "*" for j, f in enumerate(fields))
            if not croniter.is_valid(alone):
                return (f"invalid cron expression {expr!r}: the {name} field {fields[i]!r} is not valid",
                        f"the {name} field takes {allowed}, with ranges a-b, steps */n and lists a,b")
        return f"invalid cron expression {expr!r}", HINT
    try:
        next_instant(norm, "UTC", _dt.datetime(2000, 1, 1, tzinfo=UTC))
    except ValueError:
        return (f"cron expression {expr!r} never fires: no month has that day",
                "check the day-of-month and month fields (February has 28 or 29 days, April, June, "
                "September and November 30)")
    return None


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
        it = croniter(norm, after_u.astimezone(zone).replace(tzinfo=None) - _MARGIN, ret_type=_dt.datetime)
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
