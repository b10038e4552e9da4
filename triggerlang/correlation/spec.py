"""A manifest's correlation rules (§11.5) as the engine uses them, and the member index.

A correlation rule's manifest entry has ``"trigger": {kind, n, members, items, same,
key_types, within, window, anchor, keys_in, max, fingerprint}``: :class:`CorrRule` reads
it once. Its members are matched through :class:`MemberIndex`, which is the compiled rule
index (:class:`~triggerlang.compile.index.IndexedMatcher`) over every member of every
correlation rule, so the cost of finding the members an event matches stays flat in the
number of rules, as it does for ordinary rules.

The tree of a group (``items``: member indexes and nested ``{kind, n, items}``) decides
when a group holds and which slot an event may fill:

- a leaf holds when its slot has an event (a leaf under ``N of m`` holds N events);
- ``all``/``seq`` hold when every item does, ``any`` when one does, ``N of`` when N do;
- in a ``seq``, the *current step* is the first item that does not hold. An event for a
  member is admissible when the member is in the current step (and admissible inside it),
  or when it replaces the event of a member of the step just completed while the current
  step has no event yet ("the last filled slot"). Anything else is out of order.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from ..events import MISSING, Event, get_path

_SCALARS = (str, int, float, bool)


def is_correlation(rule: dict) -> bool:
    """Whether a manifest rule entry is a correlation rule."""
    return isinstance(rule.get("trigger"), dict)


def key_text(v: Any) -> str:
    """The JSON text of one key value: what identifies it (``42`` is not ``"42"``)."""
    if v.__class__ is str:
        return _encode_string(v)
    if v.__class__ is int:
        return str(v)
    return json.dumps(v, ensure_ascii=False, separators=(",", ":"))


_encode_string = json.encoder.encode_basestring   # (json.dumps of a str, without the encoder set-up)


def key_shown(v: Any) -> str:
    """One key value as people read it (``match``, ``groups``, ``--explain``, the dashboard).

    A string is shown as it is (``sha=3f1d``, ``branch=main``), unless it could be read as
    another value, which it would then print like: the number 1 and the string "1" are
    different keys (TRG706: no coercion), so a string that reads as JSON (``1``, ``true``,
    ``null``, ``"x"``, ``[1]``), or is empty, or holds whitespace or a character that does not
    print, is JSON-quoted (``k="1"``, ``k=""``, ``k="a b"``). Any other value is its JSON text.
    Quoting only the ambiguous strings keeps the common keys (shas, branches, ids) bare, as
    the best tools of the kind (jq's raw output, kubectl labels) show them; two distinct keys
    never print alike."""
    if v.__class__ is not str:
        return key_text(v)
    if not v or not v.isprintable() or any(c.isspace() for c in v):
        return _encode_string(v)
    try:
        json.loads(v)
    except ValueError:
        return v
    return _encode_string(v)


@dataclass
class Node:
    """A group of the tree: ``kind`` all/any/seq/n_of/count, ``items`` leaves (ints) and nodes."""

    kind: str
    n: int | None
    items: list


@dataclass
class MemberSpec:
    index: int
    alias: str
    role: str                         # "member" | "absent" | "anchor"
    trigger: str
    source: str
    types: frozenset[str] | None
    filter: dict | None
    keys: tuple[tuple[str, ...], ...]
    span: dict | None = None

    def accepts_type(self, typ: str) -> bool:
        return self.types is None or typ in self.types


class CorrRule:
    """One correlation rule of a manifest, ready for the engine."""

    def __init__(self, entry: dict):
        t = entry["trigger"]
        self.entry = entry
        self.name: str = entry["name"]
        self.kind: str = t["kind"]
        self.n: int | None = t.get("n")
        self.action: str = entry.get("action", "")
        self.args: dict = entry.get("args") or {}
        self.policies: dict = entry.get("policies") or {}
        self.members = [MemberSpec(i, m["alias"], m.get("role", "member"), m.get("trigger", ""), m.get("source") or "",
                                   frozenset(m["types"]) if m.get("types") is not None else None, m.get("filter"),
                                   tuple(tuple(k.split(".")) for k in m.get("keys") or ()), m.get("span"))
                        for i, m in enumerate(t["members"])]
        self.by_alias = {m.alias: m for m in self.members}
        self.same: list[str] = list(t.get("same") or [])
        self.key_types: list[str] = list(t.get("key_types") or [])
        self.within: float | None = t.get("within")
        self.window: dict | None = t.get("window")
        self.anchor: int | None = t.get("anchor")
        self.keys_in: frozenset | None = (frozenset(tuple(key_text(v) for v in k) for k in t["keys_in"])
                                          if t.get("keys_in") is not None else None)
        self.keys_in_values: list[list] = [list(k) for k in t.get("keys_in") or []]
        self.max: int = int(t.get("max") or 10_000)
        self.fingerprint: str = t.get("fingerprint", "")
        self.root = _node({"kind": self.kind, "n": self.n, "items": t.get("items", [])}) \
            if self.kind != "absent" else None
        self.count_members = frozenset(_count_leaves(self.root)) if self.root else frozenset()
        # leaf -> the chain of (node, child position) from the root down to it
        self.paths: dict[int, list[tuple[Node, int]]] = {}
        if self.root is not None:
            _paths(self.root, [], self.paths)
        self.keyed = bool(self.members and self.members[0].keys)
        self.stateless = self.kind == "any" and self.within is None
        # a flat all/any/N of (no nesting, no seq): holds and admissible have a short form
        root = self.root
        self.flat_need = None
        if root is not None and root.kind in ("all", "any", "n_of") and all(isinstance(c, int) for c in root.items):
            self.flat_need = {"all": len(root.items), "any": 1}.get(root.kind, root.n or 1)
        self.has_seq = bool(root is not None and _has_seq(root))

    # ------------------------------------------------------------------ keys
    def key(self, member: int, data: dict) -> tuple[tuple[str, ...], tuple] | str:
        """``(key texts, key values)`` of an event for a member, or the reason it has none."""
        texts, values = [], []
        for path in self.members[member].keys:
            v = get_path(data, path)
            if v is MISSING or v is None or not isinstance(v, _SCALARS):
                return f"key <{'.'.join(path)}> missing" if v is MISSING or v is None else \
                    f"key <{'.'.join(path)}> is not a single value"
            texts.append(key_text(v))
            values.append(v)
        return tuple(texts), tuple(values)

    def key_label(self, values: tuple | list) -> str:
        """``sha=3f1d…`` for messages (the last part of each key path)."""
        if not values:
            return "(no key)"
        names = [k.split(".")[-1] for k in self.same] or \
                [".".join(p).split(".")[-1] for p in (self.members[0].keys if self.members else ())]
        out = []
        for i, v in enumerate(values):
            name = names[i] if i < len(names) else f"key{i + 1}"
            s = key_shown(v)
            if len(s) > 12:
                s = s[:8] + "…"
            out.append(f"{name}={s}")
        return " ".join(out)

    # ------------------------------------------------------------------ the tree
    def holds(self, slots: list, node: Any = None) -> bool:
        if node is None and self.flat_need is not None:
            n = 0
            for s in slots:
                if s is not None:
                    n += 1
            return n >= self.flat_need
        node = self.root if node is None else node
        if isinstance(node, int):
            s = slots[node]
            return s is not None and (not isinstance(s, list) or len(s) > 0)
        if node.kind == "count":
            s = slots[node.items[0]]
            return isinstance(s, list) and len(s) >= (node.n or 1)
        got = [self.holds(slots, c) for c in node.items]
        if node.kind in ("all", "seq"):
            return all(got)
        if node.kind == "any":
            return any(got)
        return sum(got) >= (node.n or 1)   # n_of

    def filled(self, slots: list, node: Any) -> bool:
        """Whether any slot under ``node`` has an event."""
        if isinstance(node, int):
            s = slots[node]
            return s is not None and (not isinstance(s, list) or len(s) > 0)
        return any(self.filled(slots, c) for c in node.items)

    def admissible(self, member: int, slots: list) -> tuple[str | None, str | None]:
        """``("empty" | "replace", None)`` or ``(None, why)`` for an event of ``member``."""
        if not self.has_seq and member not in self.count_members:
            return ("replace" if slots[member] is not None else "empty"), None
        for node, pos in self.paths[member]:
            if node.kind != "seq":
                continue
            cur = next((k for k, c in enumerate(node.items) if not self.holds(slots, c)), len(node.items))
            if pos == cur:
                continue
            if pos == cur - 1 and self._has(slots, member) and \
                    not (cur < len(node.items) and self.filled(slots, node.items[cur])):
                continue
            waits = node.items[cur] if cur < len(node.items) else None
            return None, f"out of order: seq waits for {self.describe(waits)}" if waits is not None else \
                "out of order: seq is complete"
        if member in self.count_members:
            return "empty", None
        return ("replace" if slots[member] is not None else "empty"), None

    def reopens(self, member: int, slots: list) -> bool:
        """An event for the first step of a root ``seq`` while only that step holds re-opens
        the group with a new window (edit, edit, commit: the window runs from the last edit)."""
        root = self.root
        if root is None or root.kind != "seq" or not root.items or root.items[0] != member:
            return False
        return slots[member] is not None and not any(self.filled(slots, c) for c in root.items[1:])

    def describe(self, node: Any) -> str:
        if isinstance(node, int):
            return self.members[node].alias
        inner = ", ".join(self.describe(c) for c in node.items)
        if node.kind == "n_of":
            return f"{node.n} of ({inner})"
        if node.kind == "count":
            return f"{node.n} of {inner}"
        return f"{node.kind}({inner})"

    def present(self, slots: list) -> list[str]:
        return [m.alias for m in self.members if self._has(slots, m.index)]

    def missing(self, slots: list) -> list[str]:
        return [m.alias for m in self.members if not self._has(slots, m.index)]

    @staticmethod
    def _has(slots: list, i: int) -> bool:
        s = slots[i] if i < len(slots) else None
        return s is not None and (not isinstance(s, list) or len(s) > 0)

    def progress(self, slots: list) -> str:
        """``2/3`` (members with an event / members), or ``2/3`` events for ``N of m``."""
        if self.kind == "count":
            s = slots[0] or []
            return f"{len(s)}/{self.n}"
        have = len(self.present(slots))
        need = self.n if self.kind == "n_of" else (1 if self.kind == "any" else len(self.members))
        return f"{have}/{need}"


def _node(obj: Any) -> Any:
    if isinstance(obj, int):
        return obj
    return Node(obj["kind"], obj.get("n"), [_node(x) for x in obj.get("items", [])])


def _has_seq(node: Any) -> bool:
    return not isinstance(node, int) and (node.kind == "seq" or any(_has_seq(c) for c in node.items))


def _count_leaves(node: Any) -> list[int]:
    if node is None or isinstance(node, int):
        return []
    if node.kind == "count":
        return [x for x in node.items if isinstance(x, int)]
    return [x for c in node.items for x in _count_leaves(c)]


def _paths(node: Node, chain: list, out: dict) -> None:
    for pos, c in enumerate(node.items):
        here = chain + [(node, pos)]
        if isinstance(c, int):
            out[c] = here
        else:
            _paths(c, here, out)


@dataclass
class MemberMatch:
    """The members of one rule that an event matched, in written order."""

    rule: CorrRule
    members: list[int] = field(default_factory=list)


class MemberIndex:
    """Every member of every correlation rule in the compiled rule index (flat cost)."""

    def __init__(self, rules: list[CorrRule]):
        from ..compile.index import build_matcher

        self.rules = rules
        entries: list[dict] = []
        self.refs: list[tuple[int, int]] = []
        for ri, r in enumerate(rules):
            for m in r.members:
                entries.append({"name": f"{r.name}#{m.index}", "source": m.source,
                                "types": sorted(m.types) if m.types is not None else None,
                                "filter": m.filter, "action": "", "args": {}, "policies": {}})
                self.refs.append((ri, m.index))
        self.matcher = build_matcher(entries) if entries else None

    def matches(self, event: Event) -> list[MemberMatch]:
        """The rules whose members the event matches (rule order, members in written order).

        A ``correlation.*`` event is never given to the rule that produced it (a rule on
        its own fires would loop)."""
        if self.matcher is None:
            return []
        out: list[MemberMatch] = []
        own = event.data.get("rule") if event.source == "correlation" else None
        for r in self.matcher.matching_rules(event):
            ri, mi = self.refs[r.index]
            rule = self.rules[ri]
            if own is not None and rule.name == own:
                continue
            if out and out[-1].rule is rule:
                out[-1].members.append(mi)
            else:
                out.append(MemberMatch(rule, [mi]))
        return out

    def sources(self) -> set[str]:
        return {m.source for r in self.rules for m in r.members}
