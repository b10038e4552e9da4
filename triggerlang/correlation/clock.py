"""Time for correlations: instants are UTC epoch seconds (floats) everywhere in the engine.

Helpers shared by the checker (the ``between`` overlap check), the engine (window
openings), ``triggerc match`` (``{"wait": "10m"}`` lines, ``time`` attributes) and rule tests
(``wait``, ``at``). Nothing here reads the wall clock: callers pass the time in.
"""

from __future__ import annotations

import datetime as _dt
import math
import re

_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
_DURATION = re.compile(r"\s*([0-9]+(?:\.[0-9]+)?)\s*(ms|s|m|h|d)\s*")

TEST_EPOCH = _dt.datetime(2024, 1, 1, tzinfo=_dt.timezone.utc).timestamp()
"""Where a rule test's virtual clock starts: Monday 2024-01-01T00:00:00Z (SPEC §11.6)."""

LATEST = _dt.datetime(9000, 1, 1, tzinfo=_dt.timezone.utc).timestamp()
"""The latest time a test's ``at``/``wait`` or a ``triggerc match`` line may set the clock to:
with windows of at most 100 years (check/values.py), every deadline is then a date
(datetime ends with the year 9999)."""


def parse_duration(text: str) -> float | None:
    """``"10m"`` -> 600.0; a sum like ``"1h30m"`` is allowed; None when not a duration."""
    if not isinstance(text, str) or not text.strip():
        return None
    pos, total = 0, 0.0
    while pos < len(text):
        m = _DURATION.match(text, pos)
        if m is None or m.end() == pos:
            return None
        total += float(m.group(1)) * _UNITS[m.group(2)]
        pos = m.end()
    return total


def parse_time(text: str) -> float | None:
    """An RFC 3339 / ISO 8601 instant as epoch seconds (no offset: UTC); None if it is not one."""
    if not isinstance(text, str) or not text.strip():
        return None
    try:
        t = _dt.datetime.fromisoformat(text.strip().replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        return None
    if t.tzinfo is None:
        t = t.replace(tzinfo=_dt.timezone.utc)
    return t.timestamp()


def iso(t: float | None) -> str | None:
    """Epoch seconds as an ISO 8601 UTC string with milliseconds (``2024-01-01T00:10:00.000Z``)."""
    if t is None:
        return None
    return _dt.datetime.fromtimestamp(t, _dt.timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


_HUMAN_UNITS = (("d", 86400), ("h", 3600), ("m", 60), ("s", 1))


def human(seconds: float, *, left: bool = False) -> str:
    """A duration for people, in its two largest units: ``2h``, ``1h40m``, ``45s``, ``250ms``,
    ``1d2h``.

    A time elapsed (``window closed 5m ago``, a rule test's ``+1h40m``) is cut at the last
    unit shown, as a clock shows the time: 1h59m50s reads ``1h59m``. A time left
    (``left=True``: ``closes in``, ``fires in``, ``the next opens in``, the CLOSES column of
    ``triggerc groups``) is rounded *up* at the last unit shown, as a countdown is: a
    ``within 2h`` window opened seconds ago reads ``2h`` (what the user wrote), not
    ``1h59m``, and what is shown is never less than what is left (``due`` is the first thing
    that reads less). Instants are floats, so ``deadline - now`` for a deadline of ``now +
    7200`` may be 7200.0000002: the time is taken to the millisecond first, and that reads
    ``2h``, not ``2h1m``."""
    s = abs(seconds)
    if left:
        ms = math.ceil(round(s * 1000, 3))
        if ms < 1000:
            return f"{ms}ms"
        s = math.ceil(round(s, 3))
    elif round(s * 1000) < 1000:
        return f"{round(s * 1000)}ms"
    else:
        s = round(s)   # (0.9996 reads 1s, not 1000ms)
    if left:  # up to a multiple of the last unit shown: 1h59m30s -> 2h (a carry leaves one unit)
        top = next(i for i, (_, size) in enumerate(_HUMAN_UNITS) if s >= size)
        last = _HUMAN_UNITS[min(top + 1, len(_HUMAN_UNITS) - 1)][1]
        s = -(-s // last) * last
    parts = []
    for unit, size in _HUMAN_UNITS:
        if s >= size:
            parts.append(f"{s // size}{unit}")
            s %= size
    return "".join(parts[:2])


def cron_instants(expr: str, tz: str, after: float):
    """The instants of ``expr`` in zone ``tz`` strictly after ``after``, in order, as epoch
    seconds: :func:`triggerlang.cron.instants`, the schedule source's cron (so a daily
    02:30 opens one window a day, and an hourly one follows real time across a DST change)."""
    from .. import cron

    for t in cron.instants(expr, tz, _dt.datetime.fromtimestamp(after, _dt.timezone.utc)):
        yield t.timestamp()


def cron_next(expr: str, tz: str, after: float) -> float:
    """The first instant of the 5-field cron ``expr`` in time zone ``tz`` strictly after
    ``after`` (epoch seconds): see :func:`cron_instants`."""
    return next(cron_instants(expr, tz, after))


def cron_last(expr: str, tz: str, until: float) -> float | None:
    """The last instant of ``expr`` in ``tz`` at or before ``until`` (None if there is none in
    the five years before): looks back a minute, an hour, a day, a month, a year, five, and
    walks forward from the first span that holds one."""
    for back in (60.0, 3600.0, 86400.0, 32 * 86400.0, 367 * 86400.0, 5 * 367 * 86400.0):
        last = None
        for t in cron_instants(expr, tz, until - back):
            if t > until:
                break
            last = t
        if last is not None:
            return last
    return None
