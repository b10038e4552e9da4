"""The schedule source: ``every`` and ``cron`` triggers become ``schedule.tick`` events (SPEC §4).

Manifest section: ``{"schedules": [{"rule": "nightly", "every": 900.0},
{"rule": "weekday", "cron": "0 3 * * 1-5", "tz": "Europe/Paris"}]}`` (``every`` in seconds,
``tz`` an IANA zone, default UTC). Each tick carries ``{"rule", "scheduled", "time"}``:
the planned and the actual fire time, ISO 8601 with milliseconds and an offset (the
schedule's zone for cron, UTC for ``every``).

Timing
------
* ``every D``: ticks at the multiples of D from the Unix epoch (UTC): ``every 15m`` at
  :00, :15, :30 and :45, ``every 1d`` at 00:00 UTC, and the first tick comes at most D
  after the start. Anchoring on the epoch rather than on the start keeps the phase across a
  restart of serve and a reload that restarts the schedules (anchored on the start, an
  ``every 1d`` on a serve restarted every night would never tick), and makes every ingest
  node of a store agree. Each planned time is computed from the anchor, never by adding D
  to the previous fire, so lateness does not accumulate. For a time of day, use ``cron``.
* ``cron``: the next planned time comes from :func:`next_fire`, which is pure (no clock,
  no sleeping) so it can be tested directly.
* Each schedule has one task that sleeps until its planned time in chunks of at most 30 s,
  reading the wall clock again after each chunk. asyncio's clock is monotonic and stops
  while the machine is suspended; the wall clock does not, so after a resume the tick that
  came due fires within 30 s. It fires **once**, with ``scheduled`` = the planned time it
  was waiting for and ``time`` = now; the slots that also passed meanwhile are dropped, and
  the next planned time is the first one after now.
* Ticks that fell while serve was not running are not replayed: a start plans the first
  tick after the start. This is cron's behaviour and systemd's default
  (``Persistent=false``): a job that must catch up after a downtime can say so itself (a
  rule on ``schedule.tick`` sees ``scheduled``), and a machine that was off for a week does
  not start a week of backups at boot.
* ``stop()`` cancels the tasks: it is immediate.
* In store mode (``serve --store``, SPEC §12.2) every ingest node ticks, and each tick is
  submitted with the delivery key ``schedule:<rule>:<planned time>``: the nodes plan the
  same times, so their ticks are one event.

Cron
----
Expressions, their aliases (``@hourly``, ``@daily``...) and their meaning across
daylight-saving changes (Vixie cron and cronie's) are defined once, in :mod:`triggerlang.cron`,
which correlation windows (``between cron A and cron B``) read too.
"""

from __future__ import annotations

import asyncio
import datetime as _dt
import math
from dataclasses import dataclass
from typing import Any, Mapping

from .. import cron
from ..events import Event
from .base import Source, SourceContext

__all__ = ["ScheduleSource", "next_fire", "CHUNK"]

UTC = _dt.timezone.utc
_EPOCH = _dt.datetime(1970, 1, 1, tzinfo=UTC)
CHUNK = 30.0  # longest single sleep, in seconds


def _as_utc(t: _dt.datetime) -> _dt.datetime:
    return t.replace(tzinfo=UTC) if t.tzinfo is None else t.astimezone(UTC)


def next_fire(spec: Mapping[str, Any] | str, after: _dt.datetime, *,
              anchor: _dt.datetime | None = None) -> _dt.datetime:
    """The first planned time of ``spec`` strictly after ``after``.

    ``spec`` is a manifest schedule (``{"cron": "0 3 * * 1-5", "tz": "Europe/Paris"}`` or
    ``{"every": 900.0}``) or a bare cron string (UTC). A naive ``after`` is taken as UTC.
    For ``every``, planned times are ``anchor + k*every`` (``anchor`` defaults to
    ``after``, giving ``after + every``). Cron results are in the schedule's zone,
    ``every`` results in UTC. Raises ValueError for an invalid spec or a cron expression
    that never fires.
    """
    if isinstance(spec, str):
        spec = {"cron": spec}
    after_u = _as_utc(after)
    if spec.get("every") is not None:
        period = float(spec["every"])
        if not math.isfinite(period) or period <= 0:
            raise ValueError(f"every must be a positive number of seconds, not {spec['every']!r}")
        base = _as_utc(anchor) if anchor is not None else after_u
        k = max(1, math.floor((after_u - base).total_seconds() / period) + 1)
        t = base + _dt.timedelta(seconds=k * period)
        while t <= after_u:  # float rounding
            k += 1
            t = base + _dt.timedelta(seconds=k * period)
        return t
    if not spec.get("cron"):
        raise ValueError("a schedule needs 'every' or 'cron'")
    return cron.next_instant(spec["cron"], spec.get("tz"), after_u)


def _iso(t: _dt.datetime) -> str:
    return t.isoformat(timespec="milliseconds")


@dataclass
class _Schedule:
    rule: str
    spec: dict[str, Any]

    def describe(self) -> str:
        if self.spec.get("every") is not None:
            return f"{self.rule} every {float(self.spec['every']):g}s"
        tz = self.spec.get("tz") or "UTC"
        return f"{self.rule} cron {self.spec['cron']!r} ({tz})"


class ScheduleSource(Source):
    """Emits ``schedule.tick`` for each manifest schedule; one sleeping task per schedule.

    See the module docstring for the timing rules (no drift, 30 s sleep chunks, one
    catch-up tick after a suspend, no replay) and for cron across DST changes.
    """

    kind = "schedule"

    def __init__(self, config: Mapping[str, Any], ctx: SourceContext) -> None:
        super().__init__(config, ctx)
        self.schedules: list[_Schedule] = []
        for i, ent in enumerate(config.get("schedules") or []):
            rule = str(ent.get("rule") or f"schedule{i}")
            try:
                spec = dict(ent)
                if spec.get("every") is not None:
                    next_fire(spec, _dt.datetime.now(UTC))  # validates
                else:
                    bad = cron.problem(spec.get("cron") or "")
                    if bad is not None:
                        raise ValueError(bad[0])
                    spec["cron"] = cron.normalise(spec["cron"])
                    next_fire(spec, _dt.datetime.now(UTC))  # validates the zone
            except Exception as exc:
                ctx.log.error("schedule: rule %s has an unusable schedule and will never tick: %s", rule, exc)
                continue
            self.schedules.append(_Schedule(rule, spec))
        self._tasks: list[asyncio.Task[None]] = []
        self.shared = bool(ctx.options.get("shared_store"))
        # the wall clock; tests replace it to simulate a suspend
        self.clock = lambda: _dt.datetime.now(UTC)

    def describe(self) -> str:
        return "schedule: " + (", ".join(s.describe() for s in self.schedules) or "nothing")

    async def start(self) -> None:
        start = self.clock()
        # `every D` is planned at multiples of D from the Unix epoch (module docstring): a
        # restart keeps the phase, and in store mode (SPEC §12.2) the nodes agree, so the
        # delivery key schedule:<rule>:<planned> makes their ticks one event.
        self._tasks = [asyncio.create_task(self._run(s, start, _EPOCH), name=f"schedule:{s.rule}")
                       for s in self.schedules]

    async def stop(self) -> None:
        tasks, self._tasks = self._tasks, []
        for t in tasks:
            t.cancel()
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)

    def _plan(self, s: _Schedule, after: _dt.datetime, anchor: _dt.datetime) -> _dt.datetime:
        return next_fire(s.spec, after, anchor=anchor)

    async def _run(self, s: _Schedule, start: _dt.datetime, anchor: _dt.datetime) -> None:
        try:
            planned = self._plan(s, start, anchor)
        except ValueError as exc:
            self.ctx.log.error("schedule: rule %s will never tick: %s", s.rule, exc)
            return
        while True:
            while True:
                remaining = (planned - self.clock()).total_seconds()
                if remaining <= 0:
                    break
                await asyncio.sleep(min(remaining, CHUNK))
            now = self.clock()
            data = {"rule": s.rule, "scheduled": _iso(planned), "time": _iso(now.astimezone(planned.tzinfo))}
            try:
                key = f"schedule:{s.rule}:{data['scheduled']}" if self.shared else None
                await self.ctx.submit(Event("schedule", "tick", data), delivery_key=key)
            except asyncio.CancelledError:
                raise
            except Exception:
                self.ctx.log.exception("schedule: could not submit the tick of %s", s.rule)
            try:
                planned = self._plan(s, max(now, self.clock()), anchor)
            except ValueError as exc:
                self.ctx.log.error("schedule: rule %s has no further ticks: %s", s.rule, exc)
                return
