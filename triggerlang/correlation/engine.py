"""The correlation engine (SPEC §11.3): events and time in, group changes and runs out.

:class:`Correlator` holds the compiled correlation rules and a :class:`~.state.State`; its
caller passes every instant in (``now``: epoch seconds), so the same logic runs on the
journal's rows under ``serve`` and in memory under ``triggerc match`` and rule tests, with
a virtual clock.

How it works
------------
- ``submit(event, now)`` first processes every deadline up to ``now`` (windows are
  half-open: an event arriving at the deadline is outside it), then tries the event
  against each correlation rule whose members it matches (:class:`~.spec.MemberIndex`).
- **Admission** (§11.3.2): for a rule, each matching member in written order gives a key
  (every key field present, non-null and scalar, else ``key <f> missing``) and so a group.
  The event fills the first member whose slot is empty and admissible (a ``seq`` admits
  only its current step, see :mod:`.spec`), else the first admissible one, replacing its
  earlier event (latest wins; ``N of m`` keeps every event), else it is out of order. A
  group that does not exist opens at this event with ``deadline = now + within``; a
  replacement never moves the window, except that a ``seq`` whose first step alone holds
  re-opens with a new window at a new event for that step. Opening is refused past the
  rule's ``max`` or the engine's ``max_open_groups`` (existing groups keep admitting).
- **Fire** (§11.3.3-4): when the group's tree holds, it fires: the group is ``fired`` and
  closed (its events are consumed), a ``correlation.fired`` event is made and the run's
  inputs are bound. ``any`` stays live until its deadline and absorbs further events.
  ``N of m within D`` keeps each event with its time; it fires at the arrival that puts N
  events in ``(t - D, t]``, and its deadline is when the oldest slides out.
- **Deadlines** (§11.3.5-6): an open group expires (``correlation.expired``, no run); an
  armed absence window fires (its run's event has ``time`` = the deadline).
- **Absence**: ``after a within D`` arms a window per key at each admitted ``a`` (a new ``a``
  re-arms it), an ``m`` with the key disarms it; ``for D`` restarts a key's timer at each
  ``m`` (keys are armed when first seen, or from the start for ``same <k> in LIST`` and for
  an unkeyed rule); ``between cron A and cron B`` opens a window per watched key at each
  instant of A, closing at the next instant of B. An ``m`` from the rule's own key that
  finds no window is ignored.
- ``start(now, downtime=...)`` (serve's start) adds the unobserved part of the downtime
  to every live group, processes every past deadline in order (late, with ``late`` =
  processing time - deadline), then arms what arms at the first start. ``reload`` keeps
  the groups of rules whose fingerprint did not change and discards the others.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from ..compile.patterns import captured
from ..events import MISSING, Event, get_path, new_event_id
from .clock import cron_last, cron_next, iso
from .spec import CorrRule, MemberIndex, is_correlation, key_text
from .state import Group, State

DEFAULT_MAX_OPEN_GROUPS = 100_000
MAX_LATE_OPENINGS = 100
"""A ``between`` rule processes at most this many past window openings at once (after a
long downtime the rest are skipped, with a note in its history)."""


@dataclass
class FiredRun:
    """A run a fire creates: what the runtime journals in the fire's transaction."""

    rule: str
    action: str
    inputs: dict
    event: Event                     # the correlation.fired event (the run's event)
    correlation: dict                # standard input: {"correlation": ...}
    group: str
    dedupe_key: str | None = None


class Outcome:
    """One thing the engine did for a rule: admit an event, fire, expire, arm, refuse...

    ``action``: open admit replace fire absorb arm disarm ignore refuse expire close slide
    discard. The group's view (``keys``, ``key_label``, ``have``, ``missing``,
    ``progress``) is computed when first read, from a snapshot of the group taken when the
    outcome was made: the runtime, which reads few of them, does not pay for it."""

    __slots__ = ("rule", "action", "time", "group", "member", "event_id", "deadline", "reason", "run", "emitted",
                 "matched", "_src", "_keys", "_label", "_have", "_missing", "_progress")

    def __init__(self, rule: str, action: str, time: float, group: str | None = None, keys: list | None = None,
                 key_label: str | None = None, member: str | None = None, event_id: str | None = None,
                 have: list[str] | None = None, missing: list[str] | None = None, progress: str | None = None,
                 deadline: float | None = None, reason: str | None = None, run: FiredRun | None = None,
                 emitted: Event | None = None, matched: list[str] | None = None, src: tuple | None = None):
        self.rule, self.action, self.time, self.group = rule, action, time, group
        self.member, self.event_id, self.deadline, self.reason = member, event_id, deadline, reason
        self.run, self.emitted, self.matched = run, emitted, matched if matched is not None else []
        self._src = src   # (CorrRule, key texts, slots) of the group, as it was
        self._keys, self._label, self._have, self._missing, self._progress = keys, key_label, have, missing, progress

    @property
    def keys(self) -> list:
        if self._keys is None:
            self._keys = _decode(self._src[1]) if self._src else []
        return self._keys

    @property
    def key_label(self) -> str:
        if self._label is None:
            self._label = self._src[0].key_label(self.keys) if self._src else ""
        return self._label

    @property
    def have(self) -> list[str]:
        if self._have is None:
            r, _, slots = self._src if self._src else (None, None, None)
            self._have = [m.alias for m in r.members if CorrRule._has(slots, m.index)] if r else []
        return self._have

    @property
    def missing(self) -> list[str]:
        if self._missing is None:
            r, _, slots = self._src if self._src else (None, None, None)
            self._missing = [m.alias for m in r.members if not CorrRule._has(slots, m.index)] if r else []
        return self._missing

    @property
    def progress(self) -> str:
        if self._progress is None:
            r, _, slots = self._src if self._src else (None, None, None)
            self._progress = r.progress(slots) if r is not None and r.kind != "absent" else ""
        return self._progress

    def to_json(self) -> dict:
        return {"rule": self.rule, "member": self.member, "keys": self.keys, "action": self.action,
                "group": self.group, "have": self.have, "missing": self.missing,
                "deadline": iso(self.deadline), "time": iso(self.time), "reason": self.reason,
                "run": ({"action": self.run.action, "inputs": self.run.inputs, "event_id": self.run.event.id}
                        if self.run else None)}

    def __repr__(self) -> str:  # pragma: no cover - debugging aid
        return f"Outcome({self.rule} {self.action} {self.group} {self.member})"


def _decode(key: tuple) -> list:
    return [json.loads(k) for k in key]


class Correlator:
    """See the module docstring."""

    def __init__(self, rules: list[dict], state: State, *, max_open_groups: int = DEFAULT_MAX_OPEN_GROUPS):
        self.state = state
        self.max_open = max_open_groups
        self.refusals: dict[str, int] = {}
        self._downtime: tuple[float, float] | None = None
        self.load(rules)

    # ------------------------------------------------------------------ rules
    def load(self, rules: list[dict]) -> None:
        self.rules = [CorrRule(r) for r in rules if is_correlation(r)]
        self.by_name = {r.name: r for r in self.rules}
        self.index = MemberIndex(self.rules)
        self.between = [r for r in self.rules if r.window and r.window.get("kind") == "between"]

    def reload(self, rules: list[dict], now: float) -> list[Outcome]:
        """New rules: groups of a rule whose fingerprint is unchanged are kept; the open
        groups of a changed or removed rule are discarded, with the reason."""
        old = self.by_name
        self.load(rules)
        return self.sweep(now, old) + self.arm(now)

    def sweep(self, now: float, old: dict[str, CorrRule] | None = None, when: str = "") -> list[Outcome]:
        """Discard the live groups whose rule is gone or whose fingerprint is not the rule's
        now (each group carries the fingerprint it opened under: a durable state swept at
        start, or by several nodes, gives the same answer), and the state of gone rules."""
        outs: list[Outcome] = []
        names = set(self.state.live_rules()) | set(old or ())
        moves = self._renamed(names, old)
        for name in sorted(names):
            new = self.by_name.get(name)
            rule = new or (old or {}).get(name)
            to = moves.get(name)
            for g in sorted(self.state.live_groups(name), key=lambda g: g.seq):
                if new is not None and g.fingerprint == new.fingerprint:
                    continue
                if to is not None and g.fingerprint == to.fingerprint:
                    outs.append(self._carry(g, to, now))
                    continue
                reason = ("rule removed" if new is None else "rule changed") + when
                g.state, g.closed_at, g.reason = "discarded", now, reason
                self.state.close(g)
                self.state.log(g, now, "discard", None, None, reason)
                if rule is not None:
                    outs.append(self._outcome(rule, g, "discard", now, reason=reason))
                else:
                    outs.append(Outcome(name, "discard", now, g.id, _decode(g.key), "", reason=reason))
            if new is None and self.state.meta(name) is not None:
                meta = self.state.meta(name)
                if to is not None and meta.get("fingerprint") == to.fingerprint and self.state.meta(to.name) is None:
                    self.state.set_meta(to.name, {**meta, "entry": to.entry})   # (a between's next opening)
                self.state.set_meta(name, None)
        return outs

    def _renamed(self, names: set[str], old: dict[str, CorrRule] | None) -> dict[str, CorrRule]:
        """Rules gone under one name and come under another with the same fingerprint: an
        unlabelled rule (``L3``) that a line added above it made ``L4``, or a label changed.
        Each gone rule whose fingerprint exactly one new rule has (one without groups or
        state yet) is that rule: ``{gone name: new rule}``; an ambiguous pair is not moved."""
        gone: dict[str, list[str]] = {}
        for name in names:
            if name in self.by_name:
                continue
            prints = {g.fingerprint for g in self.state.live_groups(name)}
            if old is not None and name in old:
                prints.add(old[name].fingerprint)
            if len(prints) == 1:
                gone.setdefault(prints.pop(), []).append(name)
        fresh: dict[str, list[CorrRule]] = {}
        for r in self.rules:
            if r.fingerprint in gone and r.name not in names and (old is None or r.name not in old) \
                    and self.state.meta(r.name) is None and not self.state.live_groups(r.name):
                fresh.setdefault(r.fingerprint, []).append(r)
        return {gone[fp][0]: rs[0] for fp, rs in fresh.items() if len(rs) == 1 and len(gone[fp]) == 1}

    def _carry(self, g: Group, to: CorrRule, now: float) -> Outcome:
        """Move a live group to the rule's new name: the group under the old name closes
        (``discarded``, its reason says where it went) and one with its key, events, window
        and times opens under the new name, its history starting with where it came from."""
        st = self.state
        moved = Group(st.new_id(), to.name, g.key, g.opened_at, g.deadline, [list(x) if isinstance(x, list) else x
                                                                             for x in g.slots],
                      self._seq(), state=g.state, fingerprint=g.fingerprint)
        moved.fired_at, moved.unobserved, moved.run = g.fired_at, g.unobserved, g.run
        g.state, g.closed_at, g.reason = "discarded", now, f"rule renamed {to.name}: the group goes on as {moved.id}"
        st.close(g)
        st.log(g, now, "discard", None, None, g.reason)
        st.add(moved)
        st.log(moved, now, "carry", None, None, f"carried over from {g.id} of {g.rule} (the rule was renamed)")
        return self._outcome(to, moved, "carry", now, reason=f"renamed from {g.rule}")

    # ------------------------------------------------------------------ time
    def start(self, now: float, downtime: tuple[float, float] | None = None) -> list[Outcome]:
        """Serve's start (or a test's): account for the downtime, process past deadlines in
        order, arm what arms at the first start. ``downtime``: ``(last alive, now)``."""
        outs: list[Outcome] = []
        if downtime is not None and downtime[1] > downtime[0]:
            self._downtime = downtime
            for r in self.rules:
                for g in self.state.live_groups(r.name):
                    gap = _overlap(g.opened_at, g.deadline if g.deadline is not None else now, *downtime)
                    if gap > 0:
                        g.unobserved += gap
                        self.state.update(g)
        try:
            outs.extend(self.advance(now, processing=now if downtime is not None else None))
        finally:
            self._downtime = None
        outs.extend(self.arm(now))
        return outs

    def arm(self, now: float) -> list[Outcome]:
        """First start of each rule (per fingerprint): absence windows armed from the start
        (``for D`` unkeyed or ``same <k> in LIST``) and ``between`` schedules.

        A ``between`` rule's first window is the next opening, never the one open now: what
        came between its A and the first start was seen by nobody, so firing at its B could
        report an absence that did not happen (a decision; README, "In serve"). A downtime
        is another matter: :meth:`start` makes those windows up, with ``unobserved``."""
        outs: list[Outcome] = []
        for r in self.rules:
            self.state.lock(r.name)
            meta = self.state.meta(r.name)
            if meta is not None and meta.get("fingerprint") == r.fingerprint:
                continue
            meta = {"fingerprint": r.fingerprint, "started": now, "entry": r.entry}
            w = r.window or {}
            if w.get("kind") == "for":
                keys = [tuple(key_text(v) for v in k) for k in r.keys_in_values] if r.keys_in is not None \
                    else ([()] if not r.keyed else [])
                for key in keys:
                    if self.state.live(r.name, key) is None:
                        outs.append(self._open_window(r, key, now, now + w["seconds"], None, now, "armed at start"))
            elif w.get("kind") == "between":
                meta["next_open"] = cron_next(w["start"], w.get("tz") or "UTC", now)
            self.state.set_meta(r.name, meta)
        return outs

    def next_deadline(self) -> float | None:
        """The next instant something happens without an event (None: nothing pending)."""
        g = self.state.next_due()
        t = g.deadline if g is not None else None
        for r in self.between:
            meta = self.state.meta(r.name) or {}
            nxt = meta.get("next_open")
            if nxt is not None and (t is None or nxt < t):
                t = nxt
        return t

    def advance(self, now: float, processing: float | None = None) -> list[Outcome]:
        """Process every deadline and window opening up to ``now``, in time order. Each is
        processed at its own instant (a simulation), or at ``processing`` (late: serve)."""
        outs: list[Outcome] = []
        late_openings: dict[str, int] = {}
        while True:
            g = self.state.next_due()
            gd = g.deadline if g is not None else None
            opener, ot = None, None
            for r in self.between:
                nxt = (self.state.meta(r.name) or {}).get("next_open")
                if nxt is not None and (ot is None or nxt < ot):
                    opener, ot = r, nxt
            # a deadline at the instant a window opens goes first: the window it closes is
            # half-open, so with A = B (a window per hour, `cron "0 * * * *"` twice) the
            # closing one fires and the next opens; the other way round, the next found the
            # key's window still live and was not opened (every other hour went unwatched)
            if ot is not None and ot <= now and (gd is None or ot < gd):
                n = late_openings[opener.name] = late_openings.get(opener.name, 0) + 1
                outs.extend(self._open_between(opener, ot, processing, skip=n > MAX_LATE_OPENINGS, now=now))
                if n > MAX_LATE_OPENINGS:   # jumped to the present: at most its one opening is left
                    late_openings[opener.name] = 0
                continue
            if gd is None or gd > now:
                return outs
            outs.extend(self._deadline(g, gd, processing))

    # ------------------------------------------------------------------ events
    def submit(self, event: Event, now: float, processing: float | None = None,
               matches: list | None = None) -> list[Outcome]:
        """Process deadlines up to ``now``, then admit ``event`` (arrived at ``now``);
        ``matches``: ``index.matches(event)`` if the caller has it already."""
        outs = self.advance(now, processing)
        for mm in self.index.matches(event) if matches is None else matches:
            r = mm.rule
            if r.kind == "absent":
                out = self._absence(r, mm.members, event, now)
            elif r.stateless:
                out = self._stateless(r, mm.members, event, now)
            else:
                out = self._admit(r, mm.members, event, now)
            matched = [r.members[i].alias for i in mm.members]
            for o in out:
                o.matched = matched
            outs.extend(out)
        return outs

    def _keys(self, r: CorrRule, members: list[int], event: Event) -> tuple[list, str | None, int]:
        """``[(member, (texts, values))]`` of the members with a usable key, else a reason."""
        cands, reason, first = [], None, members[0]
        for i in members:
            k = r.key(i, event.data)
            if isinstance(k, str):
                reason = reason or k
                continue
            if r.keys_in is not None and k[0] not in r.keys_in:
                reason = reason or f"key {r.key_label(k[1])} is not in the rule's list"
                continue
            cands.append((i, k))
        return cands, reason, first

    def _admit(self, r: CorrRule, members: list[int], event: Event, now: float) -> list[Outcome]:
        st = self.state
        cands, reason, first = self._keys(r, members, event)
        if not cands:
            return [Outcome(r.name, "ignore", now, member=r.members[first].alias, event_id=event.id, reason=reason)]
        choice = None       # (kind, member, key, group)
        fallback = None
        why = None
        for i, (texts, values) in cands:
            g = st.live(r.name, texts)
            if g is not None and g.state == "fired":      # an any group absorbing until its deadline
                fallback = fallback or ("absorb", i, (texts, values), g)
                continue
            slots = g.slots if g is not None else [None] * len(r.members)
            kind, w = r.admissible(i, slots)
            if kind is None:
                why = why or w
                continue
            if kind == "empty":
                choice = (kind, i, (texts, values), g)
                break
            fallback = fallback or (kind, i, (texts, values), g)
        choice = choice or fallback
        if choice is None:
            i, (texts, values) = cands[0]
            return [Outcome(r.name, "ignore", now, keys=list(values), key_label=r.key_label(values),
                            member=r.members[i].alias, event_id=event.id, reason=why)]
        kind, i, (texts, values), g = choice
        alias = r.members[i].alias
        ref = (event.id, now)
        if kind == "absorb":
            st.log(g, now, "absorb", alias, event.id)
            return [self._outcome(r, g, "absorb", now, member=alias, event_id=event.id)]
        st.remember(event, now)
        if g is None:
            refused = self._refusal(r)
            if refused:
                return [Outcome(r.name, "refuse", now, keys=list(values), key_label=r.key_label(values),
                                member=alias, event_id=event.id, reason=refused)]
            g = Group(st.new_id(), r.name, texts, now, now + r.within if r.within is not None else None,
                      [None] * len(r.members), self._seq(), fingerprint=r.fingerprint)
            _put(g, i, ref, r)
            st.add(g)
            st.log(g, now, "open", alias, event.id)
            action = "open"
        elif kind == "replace":
            old = g.slots[i]
            reopen = r.reopens(i, g.slots)
            _put(g, i, ref, r)
            note = None
            if reopen:
                g.opened_at = now
                g.deadline = now + r.within if r.within is not None else None
                note = "the window restarts"
                st.log(g, now, "reopen", alias, event.id, f"replaces {old[0]}; the window restarts")
            else:
                st.log(g, now, "replace", alias, event.id, f"replaces {old[0]}")
            st.update(g)
            if not r.holds(g.slots):
                return [self._outcome(r, g, "replace", now, member=alias, event_id=event.id, reason=note)]
            action = "replace"
        else:
            _put(g, i, ref, r)
            st.update(g)
            st.log(g, now, "admit", alias, event.id)
            action = "admit"
        if r.kind == "count":
            return self._count_after(r, g, alias, event, now, action)
        if r.holds(g.slots):
            return [self._fire(r, g, now, None, event, alias)]
        return [self._outcome(r, g, action, now, member=alias, event_id=event.id)]

    def _count_after(self, r: CorrRule, g: Group, alias: str, event: Event, now: float, action: str):
        events = g.slots[0]
        horizon = now - r.within
        while events and events[0][1] <= horizon:   # (advance already slid them out; kept for safety)
            events.pop(0)
        if len(events) >= (r.n or 2):
            return [self._fire(r, g, now, None, event, alias)]
        g.deadline = events[0][1] + r.within
        self.state.update(g)
        return [self._outcome(r, g, action, now, member=alias, event_id=event.id)]

    def _stateless(self, r: CorrRule, members: list[int], event: Event, now: float) -> list[Outcome]:
        """``any(...)`` without a window: every matching event fires (a rule with several triggers)."""
        cands, reason, first = self._keys(r, members, event) if r.keyed else ([(members[0], ((), ()))], None, 0)
        if not cands:
            return [Outcome(r.name, "ignore", now, member=r.members[first].alias, event_id=event.id, reason=reason)]
        i, (texts, values) = cands[0]
        self.state.remember(event, now)
        g = Group(self.state.new_id(), r.name, texts, now, None, [None] * len(r.members), self._seq(),
                  fingerprint=r.fingerprint)
        g.slots[i] = (event.id, now)
        return [self._fire(r, g, now, None, event, r.members[i].alias, stored=False)]

    def _absence(self, r: CorrRule, members: list[int], event: Event, now: float) -> list[Outcome]:
        st = self.state
        kind = (r.window or {}).get("kind")
        outs: list[Outcome] = []
        if 0 in members:
            k = r.key(0, event.data)
            alias = r.members[0].alias
            if isinstance(k, str) or (r.keys_in is not None and k[0] not in r.keys_in):
                reason = k if isinstance(k, str) else f"key {r.key_label(k[1])} is not in the rule's list"
                if r.anchor is None or r.anchor not in members:
                    return [Outcome(r.name, "ignore", now, member=alias, event_id=event.id, reason=reason)]
            else:
                texts, values = k
                g = st.live(r.name, texts)
                if kind == "for":
                    st.remember(event, now)
                    if g is not None:
                        g.opened_at, g.deadline = now, now + r.window["seconds"]
                        st.update(g)
                        st.log(g, now, "restart", alias, event.id)
                        return [self._outcome(r, g, "arm", now, member=alias, event_id=event.id,
                                              reason=f"{alias} came: the quiet period restarts")]
                    return [self._open_window(r, texts, now, now + r.window["seconds"], None, now, None,
                                              member=alias, event_id=event.id)]
                if g is not None and g.state == "armed":
                    st.remember(event, now)
                    g.slots[0] = (event.id, now)
                    g.state, g.closed_at = "satisfied", now
                    st.close(g)
                    st.log(g, now, "disarm", alias, event.id)
                    return [self._outcome(r, g, "disarm", now, member=alias, event_id=event.id)]
                if r.anchor is None or r.anchor not in members:
                    last = st.last_closed(r.name, texts)
                    if last is not None and last.closed_at is not None and last.closed_at <= now:
                        why = f"window closed {_ago(now - last.closed_at)} ago"
                    elif kind == "between":
                        nxt = (st.meta(r.name) or {}).get("next_open")
                        why = "no window open" + (f"; the next opens in {_ago(nxt - now, left=True)}" if nxt else "")
                    else:
                        why = f"no window armed for {r.key_label(values)}"
                    return [Outcome(r.name, "ignore", now, keys=list(values), key_label=r.key_label(values),
                                    member=alias, event_id=event.id, reason=why)]
        a = r.anchor
        if a is not None and a in members:
            alias = r.members[a].alias
            k = r.key(a, event.data)
            if isinstance(k, str) or (r.keys_in is not None and k[0] not in r.keys_in):
                reason = k if isinstance(k, str) else f"key {r.key_label(k[1])} is not in the rule's list"
                return [Outcome(r.name, "ignore", now, member=alias, event_id=event.id, reason=reason)]
            texts, values = k
            st.remember(event, now)
            g = st.live(r.name, texts)
            note = None
            if g is not None:
                g.state, g.closed_at, g.reason = "rearmed", now, "a new " + alias + " re-armed the window"
                st.close(g)
                st.log(g, now, "rearm", alias, event.id, "a new window replaces this one")
                note = "re-armed: a new window replaces the armed one"
            outs.append(self._open_window(r, texts, now, now + r.window["seconds"], (event.id, now), now, note,
                                          member=alias, event_id=event.id, replacing=g is not None))
        return outs

    def _open_window(self, r: CorrRule, texts: tuple, opened: float, deadline: float, anchor, now: float,
                     note: str | None, member: str | None = None, event_id: str | None = None,
                     replacing: bool = False) -> Outcome:
        st = self.state
        if not replacing:
            refused = self._refusal(r)
            if refused:
                return Outcome(r.name, "refuse", now, keys=_decode(texts), key_label=r.key_label(_decode(texts)),
                               member=member, event_id=event_id, reason=refused)
        slots: list = [None] * len(r.members)
        if anchor is not None and r.anchor is not None:
            slots[r.anchor] = anchor
        g = Group(st.new_id(), r.name, texts, opened, deadline, slots, self._seq(), state="armed",
                  fingerprint=r.fingerprint)
        if self._downtime is not None:
            g.unobserved = _overlap(opened, deadline, *self._downtime)
        st.add(g)
        st.log(g, now, "arm", member, event_id, note)
        return self._outcome(r, g, "arm", now, member=member, event_id=event_id, reason=note)

    def _open_between(self, r: CorrRule, at: float, processing: float | None, skip: bool, now: float):
        w = r.window
        tz = w.get("tz") or "UTC"
        self.state.lock(r.name)
        meta = dict(self.state.meta(r.name) or {})
        outs: list[Outcome] = []
        if meta.get("next_open") != at:   # another process opened these windows meanwhile
            return outs
        if skip:   # far behind after a long downtime: jump to the present, the window open now included
            last = cron_last(w["start"], tz, now)
            still_open = last is not None and last > at and cron_next(w["end"], tz, last) > now
            meta["next_open"] = last if still_open else cron_next(w["start"], tz, now)
            meta["skipped_at"] = now
            self.state.set_meta(r.name, meta)
            return outs
        close = cron_next(w["end"], tz, at)
        keys = [tuple(key_text(v) for v in k) for k in r.keys_in_values] if r.keys_in is not None else [()]
        for key in keys:
            if self.state.live(r.name, key) is None:
                outs.append(self._open_window(r, key, at, close, None, processing or at, None))
        meta["next_open"] = cron_next(w["start"], tz, at)
        self.state.set_meta(r.name, meta)
        return outs

    # ------------------------------------------------------------------ deadlines
    def _deadline(self, g: Group, t: float, processing: float | None) -> list[Outcome]:
        r = self.by_name.get(g.rule)
        st = self.state
        if r is None:   # pragma: no cover - reload discards the groups of removed rules
            g.state, g.closed_at, g.reason = "discarded", t, "rule removed"
            st.close(g)
            return []
        if g.state == "armed":
            return [self._fire(r, g, t, processing, None, None)]
        if g.state == "fired":              # an any group: the absorbing window ends
            g.closed_at = t
            st.close(g)
            st.log(g, t, "close", None, None)
            return [self._outcome(r, g, "close", t)]
        if r.kind == "count":
            events = g.slots[0]
            stay = [e for e in events if e[1] + r.within > t]
            if stay:   # the oldest slide out; the group goes on with the rest
                for old in events[:len(events) - len(stay)]:
                    st.log(g, t, "slide", r.members[0].alias, old[0], "slid out of the window")
                g.slots[0] = stay
                g.deadline = stay[0][1] + r.within
                st.update(g)
                return [self._outcome(r, g, "slide", t)]
        return [self._expire(r, g, t, processing)]   # (a count group keeps its last events: they show)

    def _expire(self, r: CorrRule, g: Group, t: float, processing: float | None) -> Outcome:
        g.state, g.closed_at = "expired", t
        g.late = max(0.0, (processing or t) - t)
        self.state.close(g)
        self.state.log(g, t, "expire", None, None)
        ev = Event("correlation", "expired", self._event_data(r, g, t), id=new_event_id(), time=iso(t))
        out = self._outcome(r, g, "expire", t)
        out.emitted = ev
        return out

    # ------------------------------------------------------------------ fire
    def _fire(self, r: CorrRule, g: Group, t: float, processing: float | None, current: Event | None,
              alias: str | None, stored: bool = True) -> Outcome:
        st = self.state
        g.state, g.fired_at = "fired", t
        g.late = max(0.0, (processing or t) - t)
        if r.kind == "any" and r.within is not None and stored:
            st.update(g)                    # absorbs until its deadline
        else:
            g.closed_at = t
            if stored:
                st.close(g)
        if stored:
            st.log(g, t, "fire", alias, current.id if current else None)
        events = self._events(r, g, current)
        ev = Event("correlation", "fired", self._event_data(r, g, t), id=new_event_id(), time=iso(t))
        inputs = bind_inputs(r, g, events, t)
        members = {}
        for m in r.members:
            evs = events.get(m.index) or []
            members[m.alias] = (evs if m.index in r.count_members else (evs[-1] if evs else None)) \
                if m.role != "absent" else None
        corr = {"rule": r.name, "group": g.id, "keys": list(g.key), "values": _decode(g.key), "state": "fired",
                "opened_at": iso(g.opened_at), "fired_at": iso(t), "members": members}
        run = FiredRun(r.name, r.action, inputs, ev, {"correlation": corr}, g.id, _dedupe(r, g, events, t))
        out = self._outcome(r, g, "fire", t, member=alias, event_id=current.id if current else None)
        out.run, out.emitted = run, ev
        return out

    def _events(self, r: CorrRule, g: Group, current: Event | None) -> dict[int, list[dict]]:
        out: dict[int, list[dict]] = {}
        for i, s in enumerate(g.slots):
            refs = s if isinstance(s, list) else ([s] if s is not None else [])
            evs = []
            for eid, t in refs:
                if current is not None and eid == current.id:
                    e = {"id": current.id, "source": current.source, "type": current.type, "time": current.time,
                         "data": current.data, "received": t}
                else:
                    e = self.state.event(eid) or {"id": eid, "data": {}, "received": t}
                evs.append({**e, "received": t})
            if evs:
                out[i] = evs
        return out

    def _event_data(self, r: CorrRule, g: Group, t: float) -> dict:
        return {"rule": r.name, "group": g.id, "keys": list(g.key), "members": self._have(r, g),
                "missing": self._missing(r, g), "opened_at": iso(g.opened_at), "closed_at": iso(t),
                "unobserved": round(g.unobserved, 3), "late": round(g.late, 3)}

    # ------------------------------------------------------------------ helpers
    def _have(self, r: CorrRule, g: Group) -> list[str]:
        return [m.alias for m in r.members if CorrRule._has(g.slots, m.index)]

    def _missing(self, r: CorrRule, g: Group) -> list[str]:
        return [m.alias for m in r.members if not CorrRule._has(g.slots, m.index)]

    def _outcome(self, r: CorrRule, g: Group, action: str, t: float, member: str | None = None,
                 event_id: str | None = None, reason: str | None = None) -> Outcome:
        slots = [list(x) if isinstance(x, list) else x for x in g.slots]   # (a count slot is a list that changes)
        return Outcome(r.name, action, t, g.id, member=member, event_id=event_id,
                       deadline=g.deadline if g.closed_at is None else None, reason=reason, src=(r, g.key, slots))

    def _refusal(self, r: CorrRule) -> str | None:
        n = self.state.open_count(r.name)
        if n >= r.max:
            self.refusals[r.name] = self.refusals.get(r.name, 0) + 1
            return f"refused: rule has {n} open group{'' if n == 1 else 's'} (max)"
        total = self.state.open_total()
        if total >= self.max_open:
            self.refusals[r.name] = self.refusals.get(r.name, 0) + 1
            return f"refused: {total} open groups in all (--max-open-groups)"
        return None

    def _seq(self) -> int:
        nxt = getattr(self.state, "next_seq", None)
        if nxt is not None:
            return nxt()
        self._counter = getattr(self, "_counter", 0) + 1
        return self._counter


def _put(g: Group, i: int, ref: tuple, r: CorrRule) -> None:
    if i in r.count_members:
        if g.slots[i] is None:
            g.slots[i] = []
        g.slots[i].append(ref)
    else:
        g.slots[i] = ref


def _overlap(a0: float, a1: float, b0: float, b1: float) -> float:
    return max(0.0, min(a1, b1) - max(a0, b0))


def _ago(seconds: float, left: bool = False) -> str:
    from .clock import human

    return human(max(0.0, seconds), left=left)


def _field(ev: dict | None, path: str) -> Any:
    if ev is None:
        return None
    v = get_path(ev.get("data") or {}, path.split("."))
    return None if v is MISSING else v


def _binding(r: CorrRule, g: Group, events: dict[int, list[dict]], t: float, b: dict) -> Any:
    if "value" in b:
        return b["value"]
    if "member" in b:
        m = r.by_alias.get(b["member"])
        evs = events.get(m.index) if m is not None else None
        return _field(evs[-1] if evs else None, b["field"])
    if "key" in b:
        values = _decode(g.key)
        return values[b["key"]] if b["key"] < len(values) else None
    name = b.get("group")
    if name in ("first", "last"):
        present = sorted((e for evs in events.values() for e in evs), key=lambda e: e.get("received") or 0)
        if not present:
            return None
        return _field(present[0] if name == "first" else present[-1], b.get("field", ""))
    return {
        "key": lambda: (_decode(g.key) or [None])[0],
        "id": lambda: g.id,
        "opened_at": lambda: iso(g.opened_at),
        "fired_at": lambda: iso(t),
        "count": lambda: sum(len(v) for v in events.values()),
        "missing": lambda: [m.alias for m in r.members if m.index not in events],
        "unobserved": lambda: round(g.unobserved, 3),
        "late": lambda: round(g.late, 3),
    }.get(name, lambda: None)()


def bind_inputs(r: CorrRule, g: Group, events: dict[int, list[dict]], t: float) -> dict:
    """The run's inputs: each argument's binding (§11.4) over the group's events, through
    its regex for ``<alias.field ~ /re/>``."""
    out = {}
    for name, b in r.args.items():
        v = _binding(r, g, events, t, b)
        if "regex" in b and v is not None:
            v = captured(v, b["regex"], b.get("flags", ""))
            v = None if v is MISSING else v
        out[name] = v
    return out


def _dedupe(r: CorrRule, g: Group, events: dict[int, list[dict]], t: float) -> str | None:
    d = (r.policies or {}).get("dedupe")
    if not d or "binding" not in d:
        return None
    v = _binding(r, g, events, t, d["binding"])
    return "" if v is None else (v if isinstance(v, str) else repr(v))
