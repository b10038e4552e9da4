"""Time for correlations: instants are UTC epoch seconds (floats) everywhere in the engine.

Helpers shared by the checker (the ``between`` overlap check), the engine (window
openings), ``triggerc match`` (``{"wait": "10m"}`` lines, ``time`` attributes) and rule tests
(``wait``, ``at``). Nothing here reads the wall clock: callers pass the time in.
"""

from __future__ import annotations

import datetime as _dt
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


def human(seconds: float) -> str:
    """A duration for people: ``2h``, ``1h40m``, ``45s``, ``250ms``, ``1d2h``."""
    s = abs(seconds)
    if s < 1:
        return f"{round(s * 1000)}ms"
    s = round(s)
    parts = []
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
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
