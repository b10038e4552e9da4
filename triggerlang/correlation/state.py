"""The state the correlation engine reads and writes, and the in-memory implementation.

A **group** is one unit of correlation state of a rule for one key: the partial
``all``/``any``/``N of``/``seq`` group, the event list of ``N of m``, or an armed absence
window. It is *live* while it is open (collecting), armed (an absence window), or fired
but absorbing (``any`` until its deadline); a closed group keeps its final state
(``fired``, ``expired``, ``satisfied``, ``rearmed``, ``discarded``) and its history.

The engine never touches storage directly: it calls the :class:`State` methods below,
in an order that a durable implementation can turn into rows written in the transaction
that journals the event (``add``/``update``/``close``/``log``/``set_meta``), reading from a
compact in-memory mirror (``live``, ``next_due``, counts). :class:`MemoryState` is the one
``triggerc match`` and rule tests use.

Memory: a live group holds its key (JSON texts), one slot per member (None, or an
``(event id, time)`` pair; a list of them for ``N of m``), its times and state: about
400-700 bytes in CPython (measured in ``bench/``). Event data is not kept in the group; it
is read (:meth:`State.event`) when the group fires.
"""

from __future__ import annotations

import heapq
import itertools
from collections import OrderedDict
from typing import Any, Iterator, Protocol

from ..events import Event

LIVE = ("open", "armed")
GROUP_FILTERS = {"open": ("open", "armed"), "armed": ("armed",), "fired": ("fired",), "expired": ("expired",),
                 "discarded": ("discarded",), "satisfied": ("satisfied",), "rearmed": ("rearmed",)}
"""The one list of group filters: ``--status`` of ``triggerc groups``, ``?state=`` of the
dashboard API and the MCP tool's ``status`` -> the stored states (``open`` takes the armed
absence windows too)."""
"""States of a live group (plus ``fired`` while ``closed_at`` is None: an absorbing ``any``)."""


class Group:
    """One group (see the module docstring). Times are epoch seconds."""

    __slots__ = ("id", "rule", "key", "state", "opened_at", "deadline", "slots", "fired_at", "closed_at",
                 "reason", "unobserved", "late", "seq", "run", "fingerprint", "pushed")

    def __init__(self, id: str, rule: str, key: tuple, opened_at: float, deadline: float | None, slots: list,
                 seq: int = 0, state: str = "open", fingerprint: str = ""):
        self.id = id
        self.rule = rule
        self.key = key
        self.state = state
        self.opened_at = opened_at
        self.deadline = deadline
        self.slots = slots
        self.fired_at: float | None = None
        self.closed_at: float | None = None
        self.reason: str | None = None
        self.unobserved = 0.0
        self.late = 0.0
        self.seq = seq
        self.run: Any = None
        self.fingerprint = fingerprint
        self.pushed: float | None = None   # the deadline the state's heap has for it

    @property
    def live(self) -> bool:
        return self.closed_at is None

    def event_ids(self) -> list[str]:
        out = []
        for s in self.slots:
            if isinstance(s, list):
                out.extend(e for e, _ in s)
            elif s is not None:
                out.append(s[0])
        return out

    def __repr__(self) -> str:  # pragma: no cover - debugging aid
        return f"Group({self.id} {self.rule} {self.key} {self.state} dl={self.deadline})"


class State(Protocol):
    """What the engine needs from its storage (see the module docstring)."""

    def new_id(self) -> str: ...
    def lock(self, rule: str) -> None: ...
    def live(self, rule: str, key: tuple) -> Group | None: ...
    def live_groups(self, rule: str) -> list[Group]: ...
    def live_rules(self) -> list[str]: ...
    def open_count(self, rule: str) -> int: ...
    def open_total(self) -> int: ...
    def add(self, g: Group) -> None: ...
    def update(self, g: Group) -> None: ...
    def close(self, g: Group) -> None: ...
    def log(self, g: Group, time: float, action: str, member: str | None, event_id: str | None,
            note: str | None = None) -> None: ...
    def next_due(self) -> Group | None: ...
    def event(self, event_id: str) -> dict | None: ...
    def remember(self, event: Event, time: float) -> None: ...
    def meta(self, rule: str) -> dict | None: ...
    def set_meta(self, rule: str, meta: dict | None) -> None: ...
    def last_closed(self, rule: str, key: tuple) -> Group | None: ...


class MemoryState:
    """The engine's state in memory: live groups by (rule, key), a deadline heap, closed
    groups and their history (for ``expect expired``, timelines and ``--explain``), and the
    events admitted (a group's events are read back when it fires)."""

    def __init__(self, keep_closed: int = 100_000, track: bool = True):
        self._live: dict[str, dict[tuple, Group]] = {}
        self._total = 0
        self._heap: list[tuple[float, int, int, Group]] = []
        self._pushes = itertools.count()
        self._ids = itertools.count(1)
        self._seq = itertools.count(1)
        self.groups: OrderedDict[str, Group] = OrderedDict()     # every group, by id (closed ones bounded)
        self.history: dict[str, list[dict]] = {}
        self.events: dict[str, dict] = {}
        self._meta: dict[str, dict] = {}
        self._closed_by_key: dict[tuple[str, tuple], Group] = {}
        self.keep_closed = keep_closed
        self.track = track   # keep every group by id, and the last closed one per key (match, tests)

    def new_id(self) -> str:
        return f"g{next(self._ids)}"

    def next_seq(self) -> int:
        return next(self._seq)

    def lock(self, rule: str) -> None:
        """Serialise work on one rule's state (a shared store locks; memory has one writer)."""

    # ---------------------------------------------------------------- live groups
    def live(self, rule: str, key: tuple) -> Group | None:
        by_key = self._live.get(rule)
        return by_key.get(key) if by_key else None

    def live_groups(self, rule: str) -> list[Group]:
        return list((self._live.get(rule) or {}).values())

    def live_rules(self) -> list[str]:
        return [r for r, by_key in self._live.items() if by_key]

    def open_count(self, rule: str) -> int:
        return len(self._live.get(rule) or ())

    def open_total(self) -> int:
        return self._total

    def add(self, g: Group) -> None:
        by_key = self._live.setdefault(g.rule, {})
        assert g.key not in by_key, f"two live groups for one key: {g.rule} {g.key}"
        by_key[g.key] = g
        self._total += 1
        if self.track:
            self.groups[g.id] = g
        self._push(g)

    def update(self, g: Group) -> None:
        self._push(g)

    def close(self, g: Group) -> None:
        by_key = self._live.get(g.rule)
        if by_key is not None and by_key.get(g.key) is g:
            del by_key[g.key]
            self._total -= 1
        if not self.track:
            return
        self._closed_by_key[(g.rule, g.key)] = g
        while len(self.groups) > self.keep_closed:
            old_id, old = next(iter(self.groups.items()))
            if old.live:
                break
            del self.groups[old_id]
            self.history.pop(old_id, None)

    def _push(self, g: Group) -> None:
        if g.deadline is not None and g.deadline != g.pushed:
            g.pushed = g.deadline
            heap = self._heap
            heapq.heappush(heap, (g.deadline, g.seq, next(self._pushes), g))
            if len(heap) > 2 * self._total + 1024:   # drop the entries of moved deadlines and closed groups
                self._heap = [x for x in heap if x[3].pushed == x[0] and x[3].closed_at is None]
                heapq.heapify(self._heap)

    def next_due(self) -> Group | None:
        heap = self._heap
        while heap:
            deadline, _, _, g = heap[0]
            if g.closed_at is not None or g.deadline != deadline or self.live(g.rule, g.key) is not g:
                heapq.heappop(heap)
                continue
            return g
        return None

    # ---------------------------------------------------------------- history and events
    def log(self, g: Group, time: float, action: str, member: str | None, event_id: str | None,
            note: str | None = None) -> None:
        self.history.setdefault(g.id, []).append(
            {"time": time, "action": action, "member": member, "event_id": event_id, "note": note})

    def event(self, event_id: str) -> dict | None:
        return self.events.get(event_id)

    def remember(self, event: Event, time: float) -> None:
        self.events[event.id] = {"id": event.id, "source": event.source, "type": event.type,
                                 "time": event.time, "data": event.data, "received": time}

    def meta(self, rule: str) -> dict | None:
        return self._meta.get(rule)

    def set_meta(self, rule: str, meta: dict | None) -> None:
        if meta is None:
            self._meta.pop(rule, None)
        else:
            self._meta[rule] = meta

    def last_closed(self, rule: str, key: tuple) -> Group | None:
        return self._closed_by_key.get((rule, key))

    def all_groups(self) -> Iterator[Group]:
        return iter(self.groups.values())
