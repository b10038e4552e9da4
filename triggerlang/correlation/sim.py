"""A dry run of a whole rules file with a clock: ordinary rules and correlation rules
together, over one in-memory state (what ``triggerc match`` and ``triggerc test`` drive).

:class:`Simulation` keeps the time (``now``) and moves it only forward. Each step (events
arriving, the clock moving) gives a :class:`Step`: every deadline it passes, processed at
its own instant; the events delivered, each with the ordinary rules it matched; and the
correlation outcomes. The ``correlation.fired`` / ``correlation.expired`` events a step
makes are delivered too, as the runtime journals them, so that rules chained on them
match (up to :data:`MAX_CHAIN` deep; a correlation rule never sees its own events).

Given ``schedules`` (the manifest's ``sources.schedule.schedules``), the clock ticks them
as ``serve`` does: a ``schedule.tick`` of each ``every``/``cron`` rule at each planned
time the clock passes (``every D`` at multiples of D from the Unix epoch, as serve), at its
own instant among the deadlines. A step may tick at most :data:`MAX_TICKS` times (a
``wait 30d`` over ``every 1s`` is a ClockError that says so, not a hang).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..actions import bind_inputs
from ..compile.index import build_matcher
from ..compile.matcher import Match
from ..events import Event, tick_data
from .engine import DEFAULT_MAX_OPEN_GROUPS, Correlator, Outcome
from .spec import is_correlation
from .state import MemoryState

MAX_CHAIN = 8
MAX_TICKS = 10_000


@dataclass
class Delivery:
    """One event delivered: the ordinary rules it matched (``chained``: made by a correlation)."""

    event: Event
    time: float
    matches: list[Match] = field(default_factory=list)
    chained: bool = False


@dataclass
class Run:
    """A run the step would create: an ordinary match or a correlation fire."""

    rule: str
    action: str
    inputs: dict
    time: float
    event: Event
    outcome: Outcome | None = None


@dataclass
class Step:
    time: float
    deliveries: list[Delivery] = field(default_factory=list)
    outcomes: list[Outcome] = field(default_factory=list)
    runs: list[Run] = field(default_factory=list)

    def extend(self, other: "Step") -> None:
        self.deliveries.extend(other.deliveries)
        self.outcomes.extend(other.outcomes)
        self.runs.extend(other.runs)


class ClockError(ValueError):
    """Time asked to go backwards."""


class Simulation:
    """Ordinary and correlation rules over one state, with a clock that starts at ``start``."""

    def __init__(self, rules: list[dict], actions: dict, start: float, *,
                 max_open_groups: int = DEFAULT_MAX_OPEN_GROUPS, matcher=None,
                 schedules: list[dict] | None = None):
        self.actions = actions
        self._ticks = [[spec, self._plan(spec, start)] for spec in schedules or ()]
        self.matcher = matcher or build_matcher([r for r in rules if not is_correlation(r)])
        self.state = MemoryState()
        corr = [r for r in rules if is_correlation(r)]
        self.engine = Correlator(corr, self.state, max_open_groups=max_open_groups) if corr else None
        self.now = start
        self.first = Step(start)
        if self.engine is not None:
            self.first.extend(self._chain(self.engine.start(start), start))

    @property
    def correlating(self) -> bool:
        return self.engine is not None

    def deliver(self, events: list[Event], at: float | None = None) -> Step:
        """Events arriving together at ``at`` (default: now)."""
        step = self.advance(self.now if at is None else at)
        for ev in events:
            step.extend(self._deliver(ev, self.now, False, 0))
        return step

    def advance(self, until: float) -> Step:
        """Move the clock to ``until``, processing every deadline on the way."""
        if until < self.now:
            raise ClockError(f"time goes backwards: {until} < {self.now}")
        step = Step(until)
        ticked = 0
        # one deadline or tick at a time, so that what each makes happens at its own instant
        while True:
            deadline = self.engine.next_deadline() if self.engine is not None else None
            tick = min((t for t in self._ticks if t[1] is not None), key=lambda t: t[1], default=None)
            if tick is not None and tick[1] <= until \
                    and (deadline is None or tick[1] <= deadline):
                ticked += 1
                if ticked > MAX_TICKS:
                    raise ClockError(f"the schedules tick more than {MAX_TICKS:,} times in this step: "
                                     "move the clock less far")
                spec, at = tick
                planned = self._iso(at)
                self.now = max(self.now, at)
                step.extend(self._deliver(Event("schedule", "tick", tick_data(spec["rule"], planned, planned)),
                                          at, False, 0))
                tick[1] = self._plan(spec, at)
                continue
            if deadline is None or deadline > until:
                break
            step.extend(self._chain(self.engine.advance(deadline), deadline))
        self.now = until
        return step

    def _plan(self, spec: dict, after: float) -> float | None:
        """The schedule's first planned time after ``after`` (epoch seconds), None: never."""
        import datetime as _dt

        from ..sources.schedule import next_fire

        utc = _dt.timezone.utc
        try:
            return next_fire(spec, _dt.datetime.fromtimestamp(after, utc),
                             anchor=_dt.datetime.fromtimestamp(0, utc)).timestamp()
        except ValueError:   # a cron expression that never fires (the checker warns of it)
            return None

    @staticmethod
    def _iso(t: float) -> str:
        import datetime as _dt

        return _dt.datetime.fromtimestamp(t, _dt.timezone.utc).isoformat(timespec="milliseconds")

    # ------------------------------------------------------------------ internals
    def _deliver(self, ev: Event, t: float, chained: bool, depth: int) -> Step:
        step = Step(t)
        d = Delivery(ev, t, self.matcher.match(ev), chained)
        step.deliveries.append(d)
        for m in d.matches:
            inputs = bind_inputs(self.actions.get(m.rule.action, {}), m.inputs)
            step.runs.append(Run(m.rule.name, m.rule.action, inputs, t, ev))
        if self.engine is not None:
            step.extend(self._chain(self.engine.submit(ev, t), t, depth))
        return step

    def _chain(self, outcomes: list[Outcome], t: float, depth: int = 0) -> Step:
        step = Step(t)
        for o in outcomes:
            step.outcomes.append(o)
            if o.run is not None:
                r = o.run
                inputs = bind_inputs(self.actions.get(r.action, {}), r.inputs)
                step.runs.append(Run(r.rule, r.action, inputs, o.time, r.event, o))
        if depth >= MAX_CHAIN:
            return step
        for o in outcomes:
            if o.emitted is not None:
                step.extend(self._deliver(o.emitted, o.time, True, depth + 1))
        return step
