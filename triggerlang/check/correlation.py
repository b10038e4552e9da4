"""Checking correlation triggers (SPEC §11.1-§11.2), called by the checker for each rule
whose trigger is ``all(...)``, ``any(...)``, ``seq(...)``, ``N of ...`` or ``absent(...)``.

The algorithm, in the order it runs:

1. **Members.** The tree is walked in written order. Each member (a leaf) is checked as a
   one-trigger rule would be, with the existing codes at its own position: its trigger
   (TRG201/202/207), its filter's fields, operators and values (TRG203-205, TRG301/302),
   contradictions (TRG501, at the member), an HTTP member's route (TRG206). Each member
   becomes a *listener* (a :class:`~.checker.CheckedRule`) so that sources, routes and
   the TRG209/TRG210/TRG108 checks see it like any rule. While walking, the group shapes
   are checked (TRG701), ``same``/``within`` on a nested group (TRG707) and ``absent``
   inside a group (TRG711) are refused, and each member learns whether it is certain to
   have an event when the rule fires (it is not under an ``any`` or an ``N of`` with N
   smaller than its items).
2. **Aliases** (TRG702): a member's alias is its ``as`` name, else its event name when no
   other member has that event name; duplicates and ``group`` are refused.
3. **Keys** (TRG703-706): each member's key is its own ``key`` or else the trigger's
   ``same``; every member has the same number of keys; each key field must exist on the
   member's event, be a single value (not a list or a map) and, position by position, have
   one type across members (``str``, ``int``, ``number``, ``bool``, ``time``...), which is
   the check no other trigger system makes. An untyped key (``payload.…``) is a warning:
   it is compared as a JSON scalar, without coercion.
4. **Window** (TRG707, TRG711): ``within`` is required where the kind needs one, positive,
   and over 7 days is a warning; ``between`` crons must give windows that close before
   the next one opens (checked over the next 366 days); an absence's clauses must fit
   together.
5. **Rule** (TRG709, TRG712, TRG713): a filter after the whole trigger, ``debounce``, and
   ``max N`` outside 1..1,000,000.
6. **Placeholders** (TRG708, TRG403): ``<alias.field>``, a bare ``<f>`` that is a ``same``
   key, ``<group.…>``; each argument is lowered to the binding the runtime evaluates
   (``{"member", "field"}``, ``{"key": i}``, ``{"group": name}``).
7. **Overlap** (TRG710): a warning for two members that can match one event (their
   filters are not provably disjoint: different triggers, or one field pinned to disjoint
   values by ``=``/``in``/``!=``/``not in``). An untyped payload value is taken to be a
   scalar for that proof; a list field never proves anything (any-element semantics).

Related places (the other member, the ``same`` key) are named in the hint as
``alias (line:column)``.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

from ..diagnostics import Span, name_span, replace_fix, typo
from ..syntax import ast as A
from . import catalogue as C
from .program import HTTP_METHODS, CheckedRule
from .values import TYPE_WORDS, Dur, conjuncts, duration_problem, plain as _plain, type_of

DEFAULT_MAX_GROUPS = 10_000
MAX_GROUPS_LIMIT = 1_000_000
LONG_WINDOW_S = 7 * 86400.0
GROUP_FIELDS = ("key", "id", "opened_at", "fired_at", "count", "missing", "unobserved", "late")
"""``<group.NAME>`` placeholders (plus ``<group.first.f>`` and ``<group.last.f>``)."""

_SINGLE_TYPES = (C.STR, C.INT, C.NUMBER, C.BOOL, C.TIME, C.DURATION)
_A = {C.STR: "a str", C.INT: "an int", C.NUMBER: "a number", C.BOOL: "a bool", C.TIME: "a time",
      C.DURATION: "a duration"}


def at(span: Span) -> str:
    return f"({span.start.line}:{span.start.column})"


@dataclass
class Leaf:
    """One member of the trigger, with what checking it found."""

    member: A.Member
    role: str                      # "member" | "absent" (absent(m)) | "anchor" (after a)
    index: int
    certain: bool = True           # has an event whenever the rule fires
    source: str | None = None
    event: str | None = None
    types: list[str] | None = None
    filter: dict | None = None
    alias: str | None = None
    keys: list[tuple[A.Placeholder, bool]] = field(default_factory=list)   # (placeholder, own key?)
    key_types: list[str | None] = field(default_factory=list)
    listener: Any = None

    @property
    def ctx(self):
        return (self.source, self.event) if self.source else None

    @property
    def name(self) -> str:
        return self.alias or self.member.trigger.text


class _Check:
    def __init__(self, ck: Any, r: A.Rule):
        self.ck, self.d, self.r = ck, ck.d, r
        self.leaves: list[Leaf] = []
        self.aliases: dict[str, Leaf] = {}

    # ------------------------------------------------------------------ 1. tree
    def walk(self, g: A.Group, certain: bool, top: bool) -> dict:
        self.shape(g)
        if not top:
            if g.same:
                self.d.error("TRG707", "a nested group has no key of its own", g.same[0].span,
                             "write same <key> once, after the outermost group")
            if g.within is not None:
                self.d.error("TRG707", "a nested group has no window of its own", g.within.span,
                             "write within D once, after the outermost group: it bounds the whole correlation")
        n_items = len(g.items)
        n = self.n_value(g)
        all_needed = g.kind in ("all", "seq", "count") or (g.kind == "n_of" and n is not None and n >= n_items)
        items: list = []
        for x in g.items:
            if isinstance(x, A.Absence):
                self.d.error("TRG711", "absent(...) cannot be part of a group", x.span,
                             "write the absence as its own rule: on absent(EVENT) after EVENT within D ...")
            elif isinstance(x, A.Group):
                items.append(self.walk(x, certain and all_needed, False))
            else:
                leaf = Leaf(x, "member", len(self.leaves), certain and all_needed)
                self.leaves.append(leaf)
                items.append(leaf.index)
        return {"kind": g.kind, "n": n, "items": items}

    def n_value(self, g: A.Group) -> int | None:
        if g.n is None:
            return None
        v = g.n.value
        return v if isinstance(v, int) and not isinstance(v, bool) else None

    def shape(self, g: A.Group) -> None:
        n_items = len(g.items)
        if g.kind in ("all", "seq") and n_items < 2:
            self.d.error("TRG701", f"{g.kind}(...) needs at least 2 members, it has {n_items}", g.span,
                         "a single event needs no correlation: write on EVENT ... as a plain rule")
            return
        if g.n is None:
            return
        v = g.n.value
        if not isinstance(v, int) or isinstance(v, bool):
            self.d.error("TRG701", f"'{g.n.text or v}' is not a whole number of events", g.n.span, "write 2, 3, ...")
            return
        if g.kind == "count":
            if v < 2:
                self.d.error("TRG701", f"{v} of one member is no correlation: it needs at least 2 events", g.n.span,
                             "for every event write a plain rule; for N events within D use N >= 2")
            return
        if v < 1 or v > n_items:
            self.d.error("TRG701", f"{v} of ({n_items} members) can never fire", g.n.span,
                         f"N is between 1 and {n_items}")
        elif v == 1:
            self.d.warning("TRG701", f"1 of (...) is any(...)", g.n.span, "write any(...)")
        elif v == n_items:
            self.d.warning("TRG701", f"{v} of ({n_items} members) is all(...)", g.n.span, "write all(...)")

    # ------------------------------------------------------------------ members
    def check_member(self, leaf: Leaf) -> None:
        ck, m = self.ck, leaf.member
        src, ev, types = ck.check_trigger(m.trigger)
        if src == "schedule":
            self.d.error("TRG202", "a correlation member cannot be a schedule tick", m.trigger.span,
                         'correlate events; for "nothing happened by a time" use absent(...) between cron ... and cron ...')
            src = ev = types = None
        leaf.source, leaf.event, leaf.types = src, ev, types
        ctx = leaf.ctx
        synth = A.Rule(self.r.label, m.trigger, m.filter, self.r.action, span=m.span)
        leaf.filter = ck.lower(m.filter, ctx) if m.filter is not None else None
        what = f"member {m.trigger.text}{' as ' + m.alias.value if m.alias else ''} of rule '{self.r.name}'"
        if m.filter is not None:
            ck.lint_never(synth, ctx, what)
        route, methods = None, None
        if src == "http":
            route = ck.http_route(synth)
            if ev in HTTP_METHODS:
                methods = [ev.upper()]
        lst = CheckedRule(name=self.r.name, ast=synth, source=src or "", event=ev or "", types=types,
                          filter=leaf.filter, action=self.r.action.value, args={}, policies={},
                          route=route, methods=methods, member=what)
        if src == "git":
            lst.repos = ck.literal_values(m.filter, ("repo",)) or ["."]
        if src == "file":
            lst.path_globs = ck.literal_values(m.filter, ("path",), globs=True)
        leaf.listener = lst

    # ------------------------------------------------------------------ 2. aliases
    def name_members(self) -> None:
        by_event: dict[str, list[Leaf]] = {}
        for leaf in self.leaves:
            by_event.setdefault(leaf.member.trigger.event.value, []).append(leaf)
        for leaf in self.leaves:
            m = leaf.member
            if m.alias is not None:
                name, span = m.alias.value, m.alias.span
                if name == "group":
                    self.d.error("TRG702", "'group' is reserved: <group.…> names the correlation itself", span,
                                 "pick another alias")
                    continue
            else:
                ev = m.trigger.event.value
                others = [x for x in by_event[ev] if x is not leaf]
                if ev == "*" or others:
                    other = others[0] if others else None
                    why = (f"{m.trigger.text} has no event name to go by" if ev == "*" else
                           f"{len(others) + 1} members are '{ev}' events")
                    self.d.error("TRG702", f"this member needs an alias: {why}", m.trigger.span,
                                 f"write: {m.trigger.text} ... as NAME" +
                                 (f" (the other is {other.name} {at(other.member.span)})" if other else ""),
                                 related=[(x.member.span, f"another '{ev}' member") for x in others])
                    continue
                name, span = ev, m.trigger.span
            first = self.aliases.get(name)
            if first is not None:
                self.d.error("TRG702", f"alias '{name}' is used twice (first at {at(first.member.span)[1:-1]})", span,
                             "give each member its own alias", related=[(first.member.span, f"'{name}' is this member")])
                continue
            leaf.alias = name
            self.aliases[name] = leaf

    # ------------------------------------------------------------------ 3. keys
    def check_keys(self, same: tuple[A.Placeholder, ...]) -> list[str]:
        """Each member's key (own, else ``same``), arity and types; returns the key types."""
        for leaf in self.leaves:
            leaf.keys = [(p, True) for p in leaf.member.keys] if leaf.member.keys else [(p, False) for p in same]
        arity = None
        arity_leaf = None
        for leaf in self.leaves:
            if arity is None:
                arity, arity_leaf = len(leaf.keys), leaf
            elif len(leaf.keys) != arity:
                span = leaf.member.keys[0].span if leaf.member.keys else leaf.member.trigger.span
                self.d.error("TRG703", f"correlation key of {leaf.name} has {len(leaf.keys)} part(s), "
                             f"{arity_leaf.name} {at(arity_leaf.member.span)} has {arity}", span,
                             "every member keys on as many fields: same <a>, <b> or key (<a>, <b>)",
                             related=[(arity_leaf.member.span, f"{arity_leaf.name} keys on {arity} field(s)")])
                return []
        reported_untyped: set[Span] = set()
        for leaf in self.leaves:
            leaf.key_types = []
            for ph, own in leaf.keys:
                leaf.key_types.append(self.key_type(leaf, ph, own, reported_untyped))
        # TRG704: position by position, one type
        types: list[str] = []
        for i in range(arity or 0):
            ref = next((x for x in self.leaves if x.key_types[i] not in (None, C.ANY)), None)
            if ref is None:
                types.append(C.ANY)
                continue
            want = ref.key_types[i]
            types.append(want)
            for leaf in self.leaves:
                got = leaf.key_types[i]
                if got in (None, C.ANY) or got == want or leaf is ref:
                    continue
                ph, own = leaf.keys[i]
                rph, _ = ref.keys[i]
                self.d.error("TRG704", f"correlation key {i + 1} is {got} in `{leaf.name}` but {want} in `{ref.name}`",
                             ph.span if own else leaf.member.trigger.span,
                             f"{ph.path.dotted} is {got}; `{ref.name}` {at(ref.member.span)} keys on "
                             f"<{rph.path.dotted}> {at(rph.span)}, {_A.get(want, want)}",
                             related=[(ref.member.span, f"`{ref.name}`"),
                                      (rph.span, f"<{rph.path.dotted}> is {_A.get(want, want)} in `{ref.name}`")])
        return types

    def key_type(self, leaf: Leaf, ph: A.Placeholder, own: bool, reported: set) -> str | None:
        if leaf.ctx is None:
            return None
        src, ev = leaf.ctx
        parts = ph.path.parts
        typ = C.field_type(src, ev, parts)
        where = ph.span if own else leaf.member.trigger.span
        if typ is None:
            names = C.field_names(src, ev)
            trig = f"{src}.{ev}"
            via = "" if own else f"; the key is same <{ph.path.dotted}> {at(ph.span)}"
            hint, fix = typo(parts[0], names, name_span(ph.path.span, parts[0]))
            self.d.error("TRG703", f"{trig} has no field '{ph.path.dotted}'", where,
                         (hint or "fields: " + ", ".join(names)) + via
                         + ("" if own else f"; give this member its own: key <FIELD>"),
                         related=[] if own else [(ph.span, f"the key <{ph.path.dotted}>")], fix=fix)
            return None
        if ph.pattern is not None and ph.span not in reported:
            reported.add(ph.span)
            self.ck.no_pattern(ph, "a correlation key")
        if "*" in parts:
            if ph.span not in reported:
                reported.add(ph.span)
                self.d.error("TRG705", f"'{ph.path.dotted}' reads every element ('*'): a correlation key is one value",
                             ph.span, "key on a single field, like <sha>, or on one element: <payload.commits.0.id>")
            return None
        if typ in (C.LIST_STR, C.MAP):
            if ph.span not in reported:
                reported.add(ph.span)
                self.d.error("TRG705", f"'{ph.path.dotted}' is {'a list' if typ == C.LIST_STR else 'a map'}: "
                             "a correlation key is one value", ph.span,
                             "key on a single field, like <sha> or <number>")
            return None
        if typ == C.ANY:
            if ph.span not in reported:
                reported.add(ph.span)
                self.d.warning("TRG706", f"correlation key <{ph.path.dotted}> is untyped: it is compared as a "
                               "JSON scalar, without coercion (42 is not \"42\")", ph.span,
                               "key on a typed field where the event has one")
            return C.ANY
        return typ

    # ------------------------------------------------------------------ 4. windows
    def duration(self, v: Any, what: str, code: str = "TRG707") -> float | None:
        val = self.ck.value(v)
        if val is None:
            return None
        if not isinstance(val, Dur):
            self.d.error("TRG204", f"{what} takes a duration, not {TYPE_WORDS.get(type_of(val), 'this')}",
                         v.span, "write a duration like 30s, 5m, 2h or 1d")
            return None
        problem = duration_problem(val, what)
        if problem is not None:
            self.d.error(code, problem[0], v.span, problem[1])
            return None
        return float(val)

    def within(self, g: A.Group, n: int | None) -> float | None:
        needs = g.kind in ("all", "seq", "n_of", "count") or (g.kind == "any" and bool(g.same))
        if g.within is None:
            if needs:
                what = {"count": f"{g.n.text} of ..." if g.n else "N of ...",
                        "n_of": "N of (...)"}.get(g.kind, f"{g.kind}(...)")
                self.d.error("TRG707", f"{what}{' same ...' if g.kind == 'any' else ''} needs a window",
                             g.span if g.kind != "count" else g.items[0].trigger.span,
                             "add within D after it: events further apart do not correlate")
            return None
        return self.window(g.within, "groups", "most correlations complete in hours; a long window keeps stale groups")

    def window(self, d: Any, holds: str, hint: str) -> float | None:
        """The seconds of ``within D`` (TRG707 unless longer than zero), with a TRG707
        warning past 7 days: a long window keeps its ``holds`` open."""
        secs = self.duration(d, "within")
        if secs is not None and secs > LONG_WINDOW_S:
            self.d.warning("TRG707", f"a window of {getattr(d, 'text', '') or d.name} holds {holds} open for over "
                           "7 days", d.span, hint)
        return secs

    def absence_window(self, a: A.Absence) -> dict | None:
        w = a.window
        if w is None:
            if a.after is not None:
                self.d.error("TRG711", "after ... needs within D: how long to wait for the absent event",
                             a.after.span, "add: within D")
            else:
                self.d.error("TRG707", "absent(...) needs a window", a.member.span,
                             'add: for D (a quiet period), between cron "A" and cron "B", or after EVENT within D')
            return None
        if w.kind == "within":
            if a.after is None:
                self.d.error("TRG707", "within D counts from an event: write after EVENT before it", w.span,
                             "or use for D (no event for D) or between cron ... and cron ...")
                return None
            secs = self.window(w.duration, "windows", "a long window keeps stale state")
            return {"kind": "within", "seconds": secs} if secs is not None else None
        if a.after is not None:
            self.d.error("TRG711", f"after ... arms a window that within D closes, not {w.kind}", w.span,
                         "write: after EVENT within D")
            return None
        if w.kind == "for":
            secs = self.duration(w.duration, "for")
            return {"kind": "for", "seconds": secs} if secs is not None else None
        return self.between(w)

    def between(self, w: A.AbsentWindow) -> dict | None:
        ok = True
        for s in (w.start, w.end):
            ok = self.ck.check_cron(A.CronTrigger(s, None, s.span)) is not None and ok
        tz = w.tz.value if w.tz else "UTC"
        if w.tz is not None and self.ck.check_cron(A.CronTrigger(A.Str("* * * * *"), w.tz, w.tz.span)) is None:
            ok = False
        if not ok:
            return None
        clash = between_overlap(w.start.value, w.end.value, tz)
        if clash is not None:
            a1, b1, a2 = clash
            self.d.error("TRG707", f"between: the window opened at {a1:%Y-%m-%d %H:%M} closes at {b1:%Y-%m-%d %H:%M}, "
                         f"after the next one opens ({a2:%Y-%m-%d %H:%M} {tz})", w.span,
                         "each window must close (the second cron) before the next opens (the first cron)")
            return None
        return {"kind": "between", "start": w.start.value, "end": w.end.value, "tz": tz}

    # ------------------------------------------------------------------ 5. rule
    def max_groups(self, v: Any) -> int:
        if v is None:
            return DEFAULT_MAX_GROUPS
        val = self.ck.value(v)
        if val is None:
            return DEFAULT_MAX_GROUPS
        if not isinstance(val, int) or isinstance(val, bool) or not 1 <= val <= MAX_GROUPS_LIMIT:
            self.d.error("TRG713", f"max takes a whole number of open groups from 1 to 1,000,000, not {val!r}",
                         v.span, f"the default is max {DEFAULT_MAX_GROUPS}")
            return DEFAULT_MAX_GROUPS
        return val

    def trailing(self, e: A.Expr | None) -> None:
        if e is not None:
            self.d.error("TRG709", "a filter after a correlation trigger applies to no member", e.span,
                         "move it onto the member it is about: all(github.push branch=\"main\" as push, ...)")

    def keys_in(self, a: A.Absence, key_types: list[str]) -> list | None:
        if a.same_in is None:
            return None
        vals = self.ck.value(a.same_in)
        if vals is None:
            return None
        if not isinstance(vals, list):
            self.d.error("TRG711", "in takes a list of the keys to watch", a.same_in.span, 'write: in ["a", "b"]')
            return None
        out = []
        arity = len(key_types)
        for v in vals:
            parts = v if arity > 1 else [v]
            if not isinstance(parts, list) or len(parts) != arity:
                self.d.error("TRG711", f"each value of the list is a key of {arity} parts", a.same_in.span,
                             "write [[\"a\", 1], [\"b\", 2]] for a key of two parts")
                return None
            for p, t in zip(parts, key_types):
                if not _fits(p, t):
                    self.d.error("TRG711", f"{json.dumps(_plain(p))} is not {_A.get(t, t)}, the key's type",
                                 a.same_in.span, f"the key is {t}: list values of that type")
                    return None
            out.append([_plain(p) for p in parts])
        return out

    # ------------------------------------------------------------------ 6. placeholders
    def binding(self, ph: A.Placeholder, same: list[str], allow_missing: bool = True) -> dict | None:
        parts = ph.path.parts
        head = parts[0]
        if head == "group":
            rest = parts[1:]
            if len(rest) == 1 and rest[0] in GROUP_FIELDS:
                return {"group": rest[0]}
            if len(rest) >= 2 and rest[0] in ("first", "last"):
                f = rest[1:]
                present = [x for x in self.leaves if x.role != "absent" and x.ctx is not None]
                ts = {C.field_type(x.source, x.event, f) for x in present}
                if len(ts) > 1 or None in ts:
                    lacking = [x.name for x in present if C.field_type(x.source, x.event, f) is None]
                    why = (f"{', '.join(lacking)} {'has' if len(lacking) == 1 else 'have'} no field '{'.'.join(f)}'"
                           if lacking else f"'{'.'.join(f)}' has different types in the members")
                    self.d.error("TRG708", f"<group.{rest[0]}.…> reads a field every member has: {why}", ph.span,
                                 "use <ALIAS.FIELD> for one member's field")
                    return None
                return {"group": rest[0], "field": ".".join(f)}
            self.d.error("TRG708", f"<{ph.path.dotted}> is not a group placeholder", ph.span,
                         "group placeholders: " + ", ".join(f"<group.{n}>" for n in GROUP_FIELDS)
                         + ", <group.first.FIELD>, <group.last.FIELD>")
            return None
        leaf = self.aliases.get(head)
        if leaf is not None and (len(parts) > 1 or ph.path.dotted not in same):
            if leaf.role == "absent":
                self.d.error("TRG708", f"`{head}` is the absent member: it has no event to read", ph.span,
                             "read the key (<KEY>) or the event that armed the window (<ALIAS.FIELD> of after ...)")
                return None
            if len(parts) == 1:
                self.d.error("TRG708", f"<{head}> is a member: name one of its fields", ph.span,
                             f"write <{head}.FIELD>")
                return None
            f = parts[1:]
            if leaf.ctx is not None and C.field_type(leaf.source, leaf.event, f) is None:
                names = C.field_names(leaf.source, leaf.event)
                hint, fix = typo(f[0], names, name_span(ph.path.span, f[0], len(head) + 1))
                self.d.error("TRG403", f"{leaf.source}.{leaf.event} events (`{head}`) have no field '{'.'.join(f)}'",
                             ph.span, hint or "fields: " + ", ".join(names), fix=fix)
                return None
            if not leaf.certain and allow_missing:
                self.d.warning("TRG708", f"`{head}` may have no event when the rule fires: <{ph.path.dotted}> "
                               "would be \"\"", ph.span, "read a same key, or <group.first.FIELD>, which every firing has")
            return {"member": head, "field": ".".join(f)}
        if ph.path.dotted in same:
            return {"key": same.index(ph.path.dotted)}
        hint = f"aliases: {', '.join(sorted(self.aliases))}" if self.aliases else ""
        if same:
            hint = f"the same keys are {', '.join('<' + k + '>' for k in same)}; " + hint
        self.d.error("TRG708", f"<{ph.path.dotted}> is not a same key: whose field is it?", ph.span,
                     f"write <ALIAS.{ph.path.dotted}> ({hint})" if hint else f"write <ALIAS.{ph.path.dotted}>")
        return None

    # ------------------------------------------------------------------ 7. overlap
    def overlaps(self) -> None:
        seen = [x for x in self.leaves if x.ctx is not None]
        for i, a in enumerate(seen):
            for b in seen[i + 1:]:
                if _disjoint(a, b, self.ck):
                    continue
                self.d.warning("TRG710", f"one event can match both `{a.name}` and `{b.name}`: it fills the first "
                               "empty one, in written order", b.member.span,
                               f"`{a.name}` is at {at(a.member.span)}; make their filters exclusive "
                               "(e.g. workflow=\"build\" / workflow=\"test\")",
                               related=[(a.member.span, f"`{a.name}`, written first")])


def _fits(v: Any, t: str) -> bool:
    if t in (C.ANY, None):
        return isinstance(v, (str, int, float, bool))
    if t in (C.STR, C.TIME):
        return isinstance(v, str)
    if t == C.INT:
        return isinstance(v, int) and not isinstance(v, bool)
    if t == C.NUMBER:
        return isinstance(v, (int, float)) and not isinstance(v, bool)
    if t == C.BOOL:
        return isinstance(v, bool)
    if t == C.DURATION:
        return isinstance(v, (Dur, int, float)) and not isinstance(v, bool)
    return False


def _pins(leaf: Leaf, ck: Any) -> tuple[dict, dict]:
    """Literal values the member's top-level conjunction requires (=, in) and excludes (!=, not in)."""
    eq: dict[str, set] = {}
    ne: dict[str, set] = {}
    for c in conjuncts(leaf.member.filter):
        if not isinstance(c, A.Compare) or c.op not in ("=", "in", "!=", "not in"):
            continue
        if C.field_type(leaf.source, leaf.event, c.field.parts) in (C.LIST_STR, C.MAP, None):
            continue
        v = ck.quiet_value(c.value)
        vals = v if isinstance(v, list) else [v]
        if any(isinstance(x, (list, dict)) or x is None for x in vals):
            continue
        key = {(type(x).__name__, x) for x in vals}
        f = c.field.dotted
        if c.op in ("=", "in"):
            eq[f] = eq[f] & key if f in eq else key
        elif len(key) >= 1:
            ne.setdefault(f, set()).update(key)
    return eq, ne


def _disjoint(a: Leaf, b: Leaf, ck: Any) -> bool:
    if a.source != b.source:
        return True
    if a.types is not None and b.types is not None and not set(a.types) & set(b.types):
        return True
    ea, na = _pins(a, ck)
    eb, nb = _pins(b, ck)
    for f in set(ea) | set(eb):
        if f in ea and f in eb and not ea[f] & eb[f]:
            return True
        if f in ea and ea[f] <= nb.get(f, set()):
            return True
        if f in eb and eb[f] <= na.get(f, set()):
            return True
    return False


def between_overlap(start: str, end: str, tz: str, now: _dt.datetime | None = None,
                    horizon_days: int = 366, limit: int = 400):
    """``(a, b, next_a)`` for the first window opened at ``a`` that closes at ``b`` after the
    next one opens at ``next_a``, over the next ``horizon_days`` (and at most ``limit``
    windows, so that a dense cron stays cheap to check); None when none does."""
    import zoneinfo

    from ..correlation.clock import cron_instants

    zone = zoneinfo.ZoneInfo(tz)
    t0 = (now or _dt.datetime.now(_dt.timezone.utc)).timestamp()
    until = t0 + horizon_days * 86400.0
    opens, closes = cron_instants(start, tz, t0), cron_instants(end, tz, t0)
    a, b = next(opens), next(closes)
    for _ in range(limit):
        if a > until:
            return None
        while b <= a:
            b = next(closes)
        nxt = next(opens)
        if b > nxt:
            return tuple(_dt.datetime.fromtimestamp(x, zone) for x in (a, b, nxt))
        a = nxt
    return None


def _strip(v: Any) -> Any:
    if isinstance(v, dict):
        return {k: _strip(x) for k, x in v.items() if k != "span"}
    if isinstance(v, list):
        return [_strip(x) for x in v]
    return v


def fingerprint(spec: dict) -> str:
    """The hash of a correlation's canonical trigger: members, filters, aliases, keys and
    window, not its spans, ``max``, action or policies (§11.3.8: a reload keeps the groups
    of a rule whose fingerprint did not change)."""
    canon = _strip({k: v for k, v in spec.items() if k not in ("max", "fingerprint")})
    text = json.dumps(canon, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def _span_json(s: Span) -> dict:
    return {"line": s.start.line, "column": s.start.column, "end_line": s.end.line, "end_column": s.end.column}


def check_correlation(ck: Any, r: A.Rule) -> "CheckedRule":
    """Check one correlation rule; problems go to ``ck.d``. See the module docstring."""

    c = _Check(ck, r)
    t = r.trigger
    tree = None
    if isinstance(t, A.Group):
        tree = c.walk(t, True, True)
        same_phs = t.same
        c.trailing(t.trailing)
    else:
        c.leaves.append(Leaf(t.member, "absent", 0))
        if t.after is not None:
            c.leaves.append(Leaf(t.after, "anchor", 1))
        same_phs = t.same
        c.trailing(t.trailing)
    for leaf in c.leaves:
        c.check_member(leaf)
    c.name_members()
    key_types = c.check_keys(same_phs)
    same = [p.path.dotted for p in same_phs]

    window, within, keys_in, anchor = None, None, None, None
    if isinstance(t, A.Group):
        within = c.within(t, c.n_value(t))
        kind, n = t.kind, c.n_value(t)
        limit = c.max_groups(t.max)
    else:
        kind, n = "absent", None
        window = c.absence_window(t)
        if window is not None and window["kind"] == "within":
            within = window["seconds"]
        keys_in = c.keys_in(t, key_types)
        if window is not None and window["kind"] == "between" and same_phs and t.same_in is None:
            c.d.error("TRG711", "a keyed between window needs the keys it watches", t.same[0].span,
                      'list them: same <k> in ["a", "b"] (a window opens for each)')
        anchor = 1 if t.after is not None else None
        limit = c.max_groups(t.max)

    # policies (TRG712: debounce has no meaning for a correlation; the rest apply to its run)
    for p in r.policies:
        if p.kind == "debounce":
            ck.d.error("TRG712", "debounce does not apply to a correlation rule", p.span,
                       "the correlation's window already gathers events: remove debounce")
    pols = ck.check_policies(A.Rule(r.label, r.trigger, None, r.action,
                                    policies=tuple(p for p in r.policies if p.kind != "debounce"), span=r.span),
                             None, None)
    for p in r.policies:
        if p.kind == "dedupe" and pols.get("dedupe"):
            b = c.binding(p.key, same)
            if b is not None:
                pols["dedupe"]["binding"] = b

    # the call
    action = r.action.value
    args: dict[str, dict] = {}
    decl = ck.p.actions.get(action)

    def value_of(v: Any) -> Any:
        if isinstance(v, A.Placeholder):
            b = c.binding(v, same)   # (a bad one was reported: bound anyway, so no TRG404 follows)
            return {"invalid": v.path.dotted} if b is None else ck.captured(b, v)
        if (isinstance(v, A.Ref) and v.name in same and v.name not in ck.let_decls and v.name not in ck.p.lets
                and v.name not in ck.p.secrets):  # `with sha` for the key <sha>, as a plain rule's hint
            ck.d.error("TRG102", f"unknown name '{v.name}'", v.span,
                       f"did you mean '<{v.name}>'? the key, like a field of the event, is written in < >",
                       fix=replace_fix(v.span, v.name, f"<{v.name}>"))
            return {"value": None}
        return {"value": _plain(ck.value(v))}

    if decl is None and f"action {action}" in ck.m.unparsed:  # its declaration has a syntax error
        for a in r.args:
            value_of(a.value)
    elif decl is None:
        hint, fix = typo(action, ck.p.actions, r.action.span)
        ck.d.error("TRG104", f"unknown action '{action}'", r.action.span,
                   hint or f"declare it: action {action} = exec \"...\"", fix=fix)
        for a in r.args:
            value_of(a.value)
    else:
        ck.used_actions.add(action)
        args = ck.bind_args(r.args, decl, None, r.action.span, f"action '{action}'", value_of)

    c.overlaps()

    members = [{"alias": x.alias or x.name, "role": x.role, "trigger": x.member.trigger.text,
                "source": x.source, "types": x.types, "filter": x.filter,
                "keys": [p.path.dotted for p, _ in x.keys], "span": _span_json(x.member.span)}
               for x in c.leaves]
    spec: dict[str, Any] = {
        "kind": kind, "n": n, "members": members,
        "items": tree["items"] if tree else [x.index for x in c.leaves],
        "same": same, "key_types": key_types, "within": within, "window": window,
        "anchor": anchor, "keys_in": keys_in, "max": limit,
    }
    spec["fingerprint"] = fingerprint(spec)
    return CheckedRule(name=r.name, ast=r, source="", event="", types=None, filter=None, action=action,
                       args=args, policies=pols, correlation=spec,
                       members=[x.listener for x in c.leaves if x.listener is not None])
