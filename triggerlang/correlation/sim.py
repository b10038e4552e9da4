"""A dry run of a whole rules file with a clock: ordinary rules and correlation rules
together, over one in-memory state (what ``triggerc match`` and ``triggerc test`` drive).

:class:`Simulation` keeps the time (``now``) and moves it only forward. Each step (events
arriving, the clock moving) gives a :class:`Step`: every deadline it passes, processed at
its own instant; the events delivered, each with the ordinary rules it matched; and the
correlation outcomes. The ``correlation.fired`` / ``correlation.expired`` events a step
makes are delivered too, as the runtime journals them, so that rules chained on them
match (up to :data:`MAX_CHAIN` deep; a correlation rule never sees its own events).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..actions import bind_inputs
from ..compile.index import build_matcher
from ..compile.matcher import Match
from ..events import Event
from .engine import DEFAULT_MAX_OPEN_GROUPS, Correlator, Outcome
from .spec import is_correlation
from .state import MemoryState

MAX_CHAIN = 8


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
                 max_open_groups: int = DEFAULT_MAX_OPEN_GROUPS, matcher=None):
        self.actions = actions
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
        if self.engine is not None:
            # one deadline at a time, so that what a fire chains happens at its own instant
            while True:
                nxt = self.engine.next_deadline()
                if nxt is None or nxt > until:
                    break
                step.extend(self._chain(self.engine.advance(nxt), nxt))
        self.now = until
        return step

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
