"""The schedule source: ``every`` and ``cron`` triggers become ``schedule.tick`` events (SPEC §4).

Manifest section: ``{"schedules": [{"rule": "nightly", "every": 900.0},
{"rule": "weekday", "cron": "0 3 * * 1-5", "tz": "Europe/Paris", "catch_up": true}]}``
(``every`` in seconds, ``tz`` an IANA zone, default UTC, ``catch_up`` only when the rule
says ``catch up``). Each tick carries ``{"rule", "scheduled", "time"}``: the planned and
the actual fire time, ISO 8601 with milliseconds and an offset (the schedule's zone for
cron, UTC for ``every``), and ``"catch_up", "missed"``: false and 0, except on the tick a
``catch up`` schedule makes up (:func:`tick_data`).

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
  (``Persistent=false``), and a machine that was off for a week does not start a week of
  backups at boot.
* ``catch up`` (``"catch_up": true``) is systemd's ``Persistent=true``: at the start of
  the source (serve's start, a reload that restarts the schedules) the schedule asks the
  store for the ``scheduled`` time of its rule's newest journaled tick
  (``SourceContext.last_tick``, ``Store.last_tick``, one indexed look-up). If planned times
  fell after it and at or before the start (:func:`missed_ticks`, pure), it submits ONE
  tick at once, for the latest of them, marked ``catch_up: true`` and ``missed: N`` (how
  many; exact for ``every``, counted up to :data:`MISSED_LIMIT` for cron), then plans as
  above (strictly after the start, so the two never overlap). One tick, not N, as systemd
  runs the unit once: a job that needs every missed period reads ``missed``. No tick
  journaled for the rule (a new rule, a fresh state folder): no catch-up, as systemd
  without its stamp file (``store prune`` keeps each rule's newest tick, whatever its age:
  :func:`~triggerlang.runtime.store.newest_tick_sql`). Every tick carries the two fields
  (false and 0 on an ordinary one), so ``catch_up=false`` picks the ordinary ticks as a user would write
  it (with the fields on catch-up ticks only, it matched nothing: a missing field fails
  ``=``).
* ``stop()`` cancels the tasks: it is immediate.
* In store mode (``serve --store``, SPEC §12.2) every ingest node ticks, and each tick is
  submitted with the delivery key ``schedule:<rule>:<planned time>``: the nodes plan the
  same times, so their ticks are one event. A catch-up tick's planned time is one of
  those times and it gets the same key: nodes that start together make one catch-up
  event, and one that starts later finds it and makes none.

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
from ..events import Event, tick_data
from .base import Source, SourceContext

__all__ = ["ScheduleSource", "next_fire", "next_tick", "usable_spec", "missed_ticks", "CHUNK", "MISSED_LIMIT"]

UTC = _dt.timezone.utc
_EPOCH = _dt.datetime(1970, 1, 1, tzinfo=UTC)
CHUNK = 30.0  # longest single sleep, in seconds
MISSED_LIMIT = 10_000
"""A cron schedule's ``missed`` stops counting here (each count is a step of croniter's)."""
# how far back from now :func:`missed_ticks` looks for the latest cron time once it stopped counting
_LOOK_BACK = tuple(_dt.timedelta(days=d) for d in (0.1, 2, 40, 400, 3000))


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


def usable_spec(ent: Mapping[str, Any]) -> dict[str, Any]:
    """A manifest schedule as :class:`ScheduleSource` runs it (a copy; its cron expression
    normalised: ``@daily`` is ``0 0 * * *``). Raises ValueError for one it cannot run (a bad
    expression or zone, a period that is not a positive number): that rule never ticks."""
    spec = dict(ent)
    if spec.get("every") is None:
        bad = cron.problem(spec.get("cron") or "")
        if bad is not None:
            raise ValueError(bad[0])
        spec["cron"] = cron.normalise(spec["cron"])
    next_fire(spec, _dt.datetime.now(UTC))  # validates the zone, the period
    return spec


def next_tick(ent: Mapping[str, Any], now: _dt.datetime) -> _dt.datetime:
    """The tick a running schedule waits for at ``now``: the first planned time after it,
    ``every`` anchored on the epoch as :meth:`ScheduleSource.start` plans it; in the
    schedule's zone for cron, UTC for ``every``. ``systemctl list-timers``' NEXT (the
    dashboard's sources page). Raises ValueError as :func:`usable_spec` and
    :func:`next_fire` do (no further time)."""
    return next_fire(usable_spec(ent), now, anchor=_EPOCH)


def _slot(t: _dt.datetime, period: float) -> int:
    """The k of the last ``every`` time ``epoch + k*period`` at or before ``t`` (UTC), by
    the formula :func:`next_fire` plans with, so the two agree to the millisecond."""
    k = math.floor((t - _EPOCH).total_seconds() / period)
    while _EPOCH + _dt.timedelta(seconds=(k + 1) * period) <= t:  # float rounding
        k += 1
    while _EPOCH + _dt.timedelta(seconds=k * period) > t:
        k -= 1
    return k


def missed_ticks(spec: Mapping[str, Any], last: _dt.datetime,
                 now: _dt.datetime) -> tuple[_dt.datetime | None, int]:
    """The planned times of ``spec`` (a manifest schedule) after ``last`` and at or before
    ``now``: ``(the latest of them, how many)``, or ``(None, 0)`` when none fell there.

    What a ``catch up`` schedule owes at serve's start, ``last`` being the ``scheduled``
    time of its newest journaled tick. ``every`` times are the multiples of the period
    from the Unix epoch (in UTC), counted exactly; cron times come from
    :func:`triggerlang.cron.instants` (in the schedule's zone, across DST changes as the
    running schedule fires them), counted up to :data:`MISSED_LIMIT`. Pure: no clock.
    """
    last_u, now_u = _as_utc(last), _as_utc(now)
    if now_u <= last_u:
        return None, 0
    if spec.get("every") is not None:
        period = float(spec["every"])
        k_now, k_last = _slot(now_u, period), _slot(last_u, period)
        if k_now <= k_last:
            return None, 0
        return _EPOCH + _dt.timedelta(seconds=k_now * period), k_now - k_last
    latest, count = None, 0
    for t in _cron_until(spec, last_u, now_u):
        latest, count = t, count + 1
        if count == MISSED_LIMIT:
            for back in _LOOK_BACK:  # the latest time: from a little before now, not from last
                found = None
                for found in _cron_until(spec, max(last_u, now_u - back), now_u):
                    pass
                if found is not None:
                    return found, count
            break
    return latest, count


def _cron_until(spec: Mapping[str, Any], after: _dt.datetime, until: _dt.datetime):
    """The cron times of ``spec`` after ``after`` and at or before ``until``."""
    try:
        for t in cron.instants(spec["cron"], spec.get("tz"), after):
            if t > until:
                return
            yield t
    except ValueError:  # no further time (the end of croniter's calendar)
        return


def _iso(t: _dt.datetime) -> str:
    return t.isoformat(timespec="milliseconds")


@dataclass
class _Schedule:
    rule: str
    spec: dict[str, Any]

    def describe(self) -> str:
        more = " catch up" if self.spec.get("catch_up") else ""
        if self.spec.get("every") is not None:
            return f"{self.rule} every {float(self.spec['every']):g}s{more}"
        tz = self.spec.get("tz") or "UTC"
        return f"{self.rule} cron {self.spec['cron']!r} ({tz}){more}"


class ScheduleSource(Source):
    """Emits ``schedule.tick`` for each manifest schedule; one sleeping task per schedule.

    See the module docstring for the timing rules (no drift, 30 s sleep chunks, one
    catch-up tick after a suspend, no replay unless ``catch up``) and for cron across DST
    changes.
    """

    kind = "schedule"

    def __init__(self, config: Mapping[str, Any], ctx: SourceContext) -> None:
        super().__init__(config, ctx)
        self.schedules: list[_Schedule] = []
        for i, ent in enumerate(config.get("schedules") or []):
            rule = str(ent.get("rule") or f"schedule{i}")
            try:
                spec = usable_spec(ent)
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
        if s.spec.get("catch_up"):
            await self._catch_up(s, start)
        while True:
            while True:
                remaining = (planned - self.clock()).total_seconds()
                if remaining <= 0:
                    break
                await asyncio.sleep(min(remaining, CHUNK))
            now = self.clock()
            await self._submit(s, planned, now)
            try:
                planned = self._plan(s, max(now, self.clock()), anchor)
            except ValueError as exc:
                self.ctx.log.error("schedule: rule %s has no further ticks: %s", s.rule, exc)
                return

    async def _submit(self, s: _Schedule, planned: _dt.datetime, now: _dt.datetime, **extra: Any) -> None:
        data = tick_data(s.rule, _iso(planned), _iso(now.astimezone(planned.tzinfo)), **extra)
        try:
            key = f"schedule:{s.rule}:{data['scheduled']}" if self.shared else None
            await self.ctx.submit(Event("schedule", "tick", data), delivery_key=key)
        except asyncio.CancelledError:
            raise
        except Exception:
            self.ctx.log.exception("schedule: could not submit the tick of %s", s.rule)

    async def _catch_up(self, s: _Schedule, start: _dt.datetime) -> None:
        """A ``catch up`` schedule's start (systemd's ``Persistent=true``): one tick for the
        latest planned time between the rule's newest journaled tick and ``start``, if any
        fell there. No tick journaled yet (a new rule, a fresh state folder): none."""
        if self.ctx.last_tick is None:
            return
        try:
            last = await self.ctx.last_tick(s.rule)
            if last is None:
                self.ctx.log.info("schedule: %s has no tick journaled yet: nothing to catch up", s.rule)
                return
            planned, missed = await asyncio.to_thread(missed_ticks, s.spec, _dt.datetime.fromisoformat(last), start)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            self.ctx.log.error("schedule: %s cannot catch up (its last tick is unreadable): %s", s.rule, exc)
            return
        if planned is None:
            self.ctx.log.info("schedule: %s missed no tick: nothing to catch up (its last one was for %s)",
                              s.rule, last)
            return
        self.ctx.log.info("schedule: %s missed %d tick(s) since %s; catching up once, for %s",
                          s.rule, missed, last, _iso(planned), extra={"rule": s.rule})
        await self._submit(s, planned, self.clock(), catch_up=True, missed=missed)
