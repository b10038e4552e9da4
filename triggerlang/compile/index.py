"""The compiled rule index: matching whose cost does not grow with the number of rules.

Teams generate rules (one per service, per branch, per path), so ten thousand rules in one
file is a real case. :class:`LinearMatcher` tries every rule of the event's source; the
:class:`IndexedMatcher` here looks up the few rules that *could* match and evaluates only
those. The design follows aws/event-ruler and timbray/quamina (match many patterns against
one event by walking the event's fields through precomputed tables, never by looping over
patterns), adapted to a language whose filters also have negations, ``or`` and regexes.

How it works
------------
1. **Dispatch.** Rules are grouped by source, then by event type: one :class:`Bucket` per
   ``(source, type)`` a rule names, and one per source for the rules that take any type
   (``git.*``, ``http.request``). An event consults at most two buckets: its own type's
   and its source's any-type bucket. Types no rule names cost one dictionary miss.
2. **Access path.** For each rule, :func:`plan_rule` picks, from the *top-level
   conjunction* of its filter, the one condition that must hold for the rule to match and
   that a table can answer (:func:`access_path`): an equality (``branch="main"``, also the
   implicit ``rule="nightly"`` of a schedule rule), an ``in`` list (one key per value), a
   glob (by its literal prefix; a glob without wildcards is an equality), or an ``or``
   whose every alternative has such a condition (the union of their keys). Among several
   it takes the one that promises the fewest candidates: each key weighs 1 for an
   equality, more for a prefix (the shorter, the more), times the number of the source's
   rules that could use that key, so 10,000 rules on one route ``path="/hooks/deploy"``
   are keyed on their distinct ``payload.service``, not on the shared route.
   Negations (``!=``, ``!~``, ``not in``, ``not``), comparisons, ``has`` and regexes are
   never access paths: a rule with nothing else goes to its bucket's *always* list.
3. **Tables.** A bucket keeps, per indexed field, a hash table from value to the rules
   keyed on it, and a sorted list of literal prefixes with, for each, the longest other
   prefix that is a prefix of it (a prefix trie laid out flat): the prefixes of an event's
   string are found with one ``bisect`` and a walk up that chain, so a look-up costs
   O(log P + depth), whatever the number of globs. Keys follow the semantics of §3: an
   event field that is a list is looked up element by element (any-element semantics);
   a missing or null field, or a map, finds nothing, which is right, because an equality,
   ``in`` or ``~`` cannot hold on it. Python's hashing makes ``1``, ``1.0`` and ``true``
   share a slot; that only adds a candidate, which step 4 rejects.
4. **Confirm.** Each candidate's *residual* is evaluated, so the index only decides which
   rules are *tried*, never whether they match. The residual is the whole filter, except
   when a table hit proves the access condition itself, which is so for string keys only
   (a hit on ``"main"`` is an equal string: §3 equality; a hit on ``1`` may be ``true``):
   then it is the filter without that condition (``branch="x" author != "bot"`` leaves
   ``author != "bot"``). Equal residuals are one shared closure, so ten thousand such
   rules evaluate one small predicate that stays in the CPU cache. Candidates from several
   tables are deduplicated and returned in rule (file) order, as :class:`LinearMatcher`
   returns them. Residuals are compiled lazily, on a rule's first candidacy (loading
   10,000 rules compiles no regex), by :func:`fast_predicate`:
   :func:`~.matcher.compile_predicate` with the hot leaves (a string ``=``, ``!=``,
   ``in``, ``not in`` on a plain field; globs, split at their literal prefix so that
   ``svc1/src/**/*.py`` ... ``svc9999/src/**/*.py`` share one compiled ``**/*.py``) and
   the ``and``/``or``/``not`` combinators specialised; every other leaf is the reference
   closure itself. ``tests/test_index.py`` checks all of it against a plain rule-by-rule
   evaluation with :func:`~.matcher.compile_predicate` on random rule sets and events.

``explain`` is inherited from :class:`LinearMatcher`: saying why each rule did *not* match
is a question about every rule of the source, so it stays a scan.
"""

from __future__ import annotations

import json
from bisect import bisect_right
from typing import Any, Callable, Iterable

from ..events import MISSING, Event
from .matcher import CompiledRule, LinearMatcher, Match, Pred, _getter, compile_predicate
from .patterns import compile_glob, is_literal, literal_prefix

__all__ = ["IndexedMatcher", "Bucket", "access_path", "plan_rule", "fast_predicate", "plain_match"]

_SCALARS = (str, int, float, bool)

# ---------------------------------------------------------------------------- predicates


def _leaf_field(node: dict) -> str | None:
    f = node.get("field")
    return f if isinstance(f, str) and f and "." not in f else None


def _fast_leaf(node: dict) -> Pred | None:
    """A specialised closure for the hot leaves, or None to use the reference one.

    Only string values on a one-part field: for a string ``s``, §3 equality
    (:func:`~.matcher.values_equal`) is exactly Python's ``==`` (no coercion either way),
    and membership in a list of strings is ``in`` on a frozenset for string elements and
    false for any other element.
    """
    op = node["op"]
    key = _leaf_field(node)
    if key is None:
        return None
    val = node.get("value")
    M = MISSING
    if op in ("=", "!=") and val.__class__ is str:
        s = val
        if op == "=":
            def eq(d: dict) -> bool:
                v = d.get(key, M)
                if v.__class__ is str:
                    return v == s
                if v is M or v is None:
                    return False
                if isinstance(v, list):
                    return s in v
                return v == s
            return eq

        def ne(d: dict) -> bool:
            v = d.get(key, M)
            if v.__class__ is str:
                return v != s
            if v is M or v is None:
                return True
            if isinstance(v, list):
                for x in v:
                    if x != s:
                        return True
                return False
            return v != s
        return ne
    if op in ("in", "not in") and isinstance(val, list) and all(x.__class__ is str for x in val):
        fs = frozenset(val)
        if op == "in":
            def isin(d: dict) -> bool:
                v = d.get(key, M)
                if v.__class__ is str:
                    return v in fs
                if v is M or v is None:
                    return False
                if isinstance(v, list):
                    for x in v:
                        if isinstance(x, str) and x in fs:
                            return True
                    return False
                return isinstance(v, str) and v in fs
            return isin

        def notin(d: dict) -> bool:
            v = d.get(key, M)
            if v.__class__ is str:
                return v not in fs
            if v is M or v is None:
                return True
            if isinstance(v, list):
                for x in v:
                    if not (isinstance(x, str) and x in fs):
                        return True
                return False
            return not (isinstance(v, str) and v in fs)
        return notin
    return None


def fast_predicate(node: dict | None) -> Pred | None:
    """A filter as a function of ``data`` (None: the filter always holds).

    Same results as :func:`~.matcher.compile_predicate` on every input, with fewer calls.
    """
    if node is None:
        return None
    op = node["op"]
    if op in ("and", "or"):
        subs = []
        for x in node["args"]:
            f = fast_predicate(x)
            if f is None:
                if op == "or":       # an alternative that always holds
                    return None
                continue             # a conjunct that always holds
            subs.append(f)
        if not subs:
            return None if op == "and" else _never
        if len(subs) == 1:
            return subs[0]
        if op == "and":
            if len(subs) == 2:
                a, b = subs
                return lambda d: a(d) and b(d)
            if len(subs) == 3:
                a, b, c = subs
                return lambda d: a(d) and b(d) and c(d)
            t = tuple(subs)

            def all_of(d: dict) -> bool:
                for f in t:
                    if not f(d):
                        return False
                return True
            return all_of
        if len(subs) == 2:
            a, b = subs
            return lambda d: a(d) or b(d)
        t = tuple(subs)

        def any_of(d: dict) -> bool:
            for f in t:
                if f(d):
                    return True
            return False
        return any_of
    if op == "not":
        sub = fast_predicate(node["arg"])
        if sub is None:
            return _never
        return lambda d: not sub(d)
    return _fast_leaf(node) or _glob_leaf(node) or compile_predicate(node)


def _never(d: dict) -> bool:
    return False


def _glob_test(globs: list[str]) -> Callable[[Any], bool]:
    """One element against a list of globs, each split at its literal prefix.

    A glob's regex is its literal prefix, escaped, followed by the translation of the rest
    (the translation of a wildcard never looks back), so ``compile_glob(g).match(x)`` is
    ``x.startswith(p) and compile_glob(rest).match(x, len(p))``. The rests are shared:
    ``svc1/src/**/*.py`` ... ``svc9999/src/**/*.py`` compile one regex, ``**/*.py``.
    A glob without wildcards is a string comparison.
    """
    literals = frozenset(g for g in globs if is_literal(g))
    split = []
    for g in globs:
        if g not in literals:
            pre = literal_prefix(g)
            split.append((pre, len(pre), compile_glob(g[len(pre):]).match))
    if not split:
        return lambda x: isinstance(x, str) and x in literals
    if len(split) == 1 and not literals:
        (pre, n, rest), = split
        return lambda x: isinstance(x, str) and x.startswith(pre) and rest(x, n) is not None

    def test(x: Any) -> bool:
        if not isinstance(x, str):
            return False
        if x in literals:
            return True
        for pre, n, rest in split:
            if x.startswith(pre) and rest(x, n) is not None:
                return True
        return False
    return test


def _glob_leaf(node: dict) -> Pred | None:
    """``~`` / ``!~`` with a list of globs (no regex), as in the reference, faster."""
    op = node["op"]
    if op not in ("~", "!~"):
        return None
    pats = node.get("value")
    if not isinstance(pats, list) or not all(isinstance(p, dict) and set(p) == {"glob"} and isinstance(p["glob"], str)
                                             for p in pats):
        return None
    test = _glob_test([p["glob"] for p in pats])
    key = _leaf_field(node)
    get = _getter(node["field"])
    M = MISSING
    if op == "~":
        def match(d: dict) -> bool:
            v = d.get(key, M) if key is not None else get(d)
            if v is M or v is None:
                return False
            if isinstance(v, list):
                for x in v:
                    if test(x):
                        return True
                return False
            return test(v)
        return match

    def no_match(d: dict) -> bool:
        v = d.get(key, M) if key is not None else get(d)
        if v is M or v is None:
            return True
        if isinstance(v, list):
            for x in v:
                if not test(x):
                    return True
            return False
        return not test(v)
    return no_match


# ---------------------------------------------------------------------------- access paths

Entry = tuple[str, str, Any]     # ("eq" | "pre", field, key)


def _prefix_cost(p: str) -> float:
    # a long literal prefix ("svc-12/src/") is nearly as selective as an equality; "" is
    # no better than scanning
    return 1.0 + 16.0 / (1 + len(p))


def _hashable_scalar(v: Any) -> bool:
    return isinstance(v, _SCALARS)


def access_path(node: dict | None) -> tuple[float, list[Entry]] | None:
    """(cost, entries): table keys such that whenever ``node`` holds, the event's value
    at some entry's field equals (``eq``) or starts with (``pre``) that entry's key.

    None when no such keys exist (the rule must always be tried). An empty entry list
    means the filter can never hold (``x in []``).
    """
    if node is None:
        return None
    op = node.get("op")
    if op == "and":
        best = None
        for x in node["args"]:
            p = access_path(x)
            if p is not None and (best is None or p[0] < best[0]):
                best = p
        return best
    if op == "or":
        cost, entries = 0.0, []
        for x in node["args"]:
            p = access_path(x)
            if p is None:
                return None
            cost += p[0]
            entries.extend(p[1])
        return cost, entries
    f = node.get("field")
    if not isinstance(f, str):
        return None
    v = node.get("value")
    if op == "=":
        return (1.0, [("eq", f, v)]) if _hashable_scalar(v) else None
    if op == "in":
        if not isinstance(v, list) or not all(_hashable_scalar(x) for x in v):
            return None
        return float(len(v)), [("eq", f, x) for x in v]
    if op == "~":
        if not isinstance(v, list):
            return None
        cost, entries = 0.0, []
        for p in v:
            g = p.get("glob") if isinstance(p, dict) else None
            if not isinstance(g, str) or "regex" in p:
                return None
            if is_literal(g):
                cost += 1.0
                entries.append(("eq", f, g))
            else:
                pre = literal_prefix(g)
                cost += _prefix_cost(pre)
                entries.append(("pre", f, pre))
        return cost, entries
    return None


def conjuncts(node: dict | None) -> list[dict]:
    """The top-level conjunction of a filter, nested ``and`` flattened."""
    if node is None:
        return []
    if node.get("op") == "and":
        out: list[dict] = []
        for x in node["args"]:
            out.extend(conjuncts(x))
        return out
    return [node]


def _proves(c: dict) -> bool:
    """Whether a table hit on this condition's keys proves the condition.

    True for string keys only: a hash-table hit on a string key means an equal string
    (an element, for a list field), which is §3 equality. Number keys also find ``true``
    for ``1`` (Python hashing), so those conditions stay in the residual.
    """
    op, v = c.get("op"), c.get("value")
    if op == "=":
        return v.__class__ is str
    if op == "in":
        return isinstance(v, list) and all(x.__class__ is str for x in v)
    if op == "~":
        return isinstance(v, list) and all(
            isinstance(p, dict) and set(p) == {"glob"} and isinstance(p["glob"], str) and is_literal(p["glob"])
            for p in v)
    return False


def entry_weight(e: Entry) -> float:
    """How many candidates one key is worth before counting rules: 1 for an equality,
    more for a prefix, the shorter the more (an empty prefix finds every string)."""
    return 1.0 if e[0] == "eq" else _prefix_cost(e[2])


def plan_rule(node: dict | None, popularity: Callable[[Entry], int] | None = None
              ) -> tuple[list[Entry] | None, dict | None, bool]:
    """(entries, residual, exact) for one rule's filter.

    ``entries`` are the table keys of its access path (None: always try the rule): of the
    top-level conditions that have keys, the one whose keys promise the fewest candidates,
    each key weighing :func:`entry_weight` times ``popularity(key)`` (how many rules of
    the bucket could use that key: 10,000 rules on one route ``path="/deploy"`` that differ
    in ``payload.service`` are keyed on the service, not on the route).
    ``residual`` is what is left to evaluate on a candidate: the filter without the
    access-path condition when a table hit proves that condition (``exact``), else the
    whole filter. None means nothing is left: a candidate matches.
    """
    parts = conjuncts(node)
    return _plan(node, parts, [access_path(c) for c in parts], popularity)


def _plan(node: dict | None, parts: list[dict], paths: list, popularity: Callable[[Entry], int] | None
          ) -> tuple[list[Entry] | None, dict | None, bool]:
    """:func:`plan_rule`, given the filter's top-level conditions and their access paths."""
    best, best_i, best_score = None, -1, 0.0
    for i, p in enumerate(paths):
        if p is None:
            continue
        if popularity is None:
            score = p[0]
        else:
            score = sum(entry_weight(e) * popularity(e) for e in p[1])
        if best is None or score < best_score:
            best, best_i, best_score = p, i, score
    if best is None:
        return None, node, False
    if not _proves(parts[best_i]):
        return best[1], node, False
    rest = parts[:best_i] + parts[best_i + 1:]
    residual = None if not rest else rest[0] if len(rest) == 1 else {"op": "and", "args": rest}
    return best[1], residual, True


def shape(node: dict | None) -> Any:
    """A filter as a hashable key without its source spans: equal keys, equal predicates.

    Values are tagged with their JSON text (strings as themselves, tagged apart), so
    ``1``, ``1.0``, ``true`` and ``"1"`` never share a key.
    """
    if node is None:
        return None
    op = node["op"]
    if op == "and" or op == "or":
        return (op,) + tuple(shape(x) for x in node["args"])
    if op == "not":
        return ("not", shape(node["arg"]))
    v = node.get("value", None)
    return (op, node.get("field"), v) if v.__class__ is str else (op, node.get("field"), "", json.dumps(
        v, sort_keys=True))


# ---------------------------------------------------------------------------- buckets


class _Prefixes:
    """Literal prefixes of one field, laid out as a flat trie (sorted keys + parent links)."""

    __slots__ = ("keys", "parent", "hits")

    def __init__(self, table: dict[str, list[list]]):
        self.keys = sorted(table)
        self.hits = [table[k] for k in self.keys]
        self.parent = []
        stack: list[int] = []
        for i, k in enumerate(self.keys):
            while stack and not k.startswith(self.keys[stack[-1]]):
                stack.pop()
            self.parent.append(stack[-1] if stack else -1)
            stack.append(i)

    def find(self, s: str, out: list) -> None:
        """Append the rule lists of every stored prefix of ``s`` to ``out``."""
        keys, parent = self.keys, self.parent
        i = bisect_right(keys, s) - 1
        # the stored prefixes of s are the chain of ancestors of the largest key <= s,
        # from the first of them that s starts with
        while i >= 0 and not s.startswith(keys[i]):
            i = parent[i]
        hits = self.hits
        while i >= 0:
            out.append(hits[i])
            i = parent[i]


class Bucket:
    """The rules of one ``(source, type)`` (or one source's any-type rules), indexed."""

    __slots__ = ("eq", "pre", "always", "size", "one")

    def __init__(self, members: Iterable[tuple[list, list[Entry] | None]]):
        eq: dict[str, dict[Any, list[list]]] = {}
        pre: dict[str, dict[str, list[list]]] = {}
        always: list[list] = []
        n = 0
        for rec, entries in members:     # in rule order, so every list stays sorted
            n += 1
            if entries is None:
                always.append(rec)
                continue
            for kind, f, key in entries:
                slot = (eq if kind == "eq" else pre).setdefault(f, {}).setdefault(key, [])
                if not slot or slot[-1] is not rec:
                    slot.append(rec)
        self.size = n
        self.always = always
        self.eq = [(f, f if "." not in f else None, _getter(f), t) for f, t in eq.items()]
        self.pre = [(f, f if "." not in f else None, _getter(f), _Prefixes(t)) for f, t in pre.items()]
        self.one = self.eq[0][1:] if len(self.eq) == 1 and not self.pre and not always else None

    def collect(self, data: dict, out: list) -> None:
        """Append to ``out`` the candidate lists (records in rule order) that ``data`` finds."""
        if self.always:
            out.append(self.always)
        M = MISSING
        for _, key, get, table in self.eq:
            v = data.get(key, M) if key is not None else get(data)
            cls = v.__class__
            if cls is str or cls is int or cls is float or cls is bool:
                h = table.get(v)
                if h is not None:
                    out.append(h)
            elif cls is list:
                for x in v:
                    c = x.__class__
                    if c is str or c is int or c is float or c is bool or (
                            x is not None and isinstance(x, _SCALARS)):
                        h = table.get(x)
                        if h is not None:
                            out.append(h)
            elif v is not M and v is not None and isinstance(v, _SCALARS):
                h = table.get(v)
                if h is not None:
                    out.append(h)
        for _, key, get, prefixes in self.pre:
            v = data.get(key, M) if key is not None else get(data)
            if v.__class__ is str:
                prefixes.find(v, out)
            elif isinstance(v, list):
                for x in v:
                    if isinstance(x, str):
                        prefixes.find(x, out)
            elif isinstance(v, str):
                prefixes.find(v, out)

    def candidates(self, data: dict) -> list[list] | tuple:
        """This bucket's candidate records, in rule order, without duplicates (possibly a
        table's own list)."""
        one = self.one
        if one is not None:  # the common shape: one equality field, nothing else
            key, get, table = one
            v = data.get(key, MISSING) if key is not None else get(data)
            if v.__class__ is str:
                return table.get(v, ())
        out: list = []
        self.collect(data, out)
        return _merged(out)

    def stats(self) -> dict:
        return {"rules": self.size, "always": len(self.always),
                "eq_fields": {f: len(t) for f, _, _, t in self.eq},
                "prefix_fields": {f: len(p.keys) for f, _, _, p in self.pre}}


# ---------------------------------------------------------------------------- the matcher


class IndexedMatcher(LinearMatcher):
    """Same interface and results as :class:`LinearMatcher`; cost nearly flat in the rule count.

    ``rule.pred`` is each rule's whole filter, as in :class:`LinearMatcher` (compiled on
    first use); matching evaluates only the residual of each candidate. Residuals are
    shared between rules that have the same one (ten thousand ``branch="..." author !=
    "bot"`` rules evaluate one ``author != "bot"`` closure).
    """

    def __init__(self, rules: list[dict]):
        self.rules = []
        self.by_source = {}
        self._residual: list[dict | None] = []
        # one record per rule, shared by every bucket that holds the rule, and all the hot
        # loop touches: [index, residual predicate (None: holds; _UNSET: not compiled yet), name]
        self._recs: list[list] = []
        self._shared: dict[Any, Pred | None] = {}
        typed: dict[tuple[str, str], list[tuple[int, list[Entry] | None]]] = {}
        untyped: dict[str, list[tuple[int, list[Entry] | None]]] = {}
        # how many rules of each source could be keyed on each key (for plan_rule)
        popular: dict[tuple[str, str, str, Any], int] = {}
        paths = []  # per rule: its top-level conditions and their access paths (for plan_rule too)
        for spec in rules:
            seen = set()
            parts = conjuncts(spec.get("filter"))
            found = [access_path(c) for c in parts]
            paths.append((parts, found))
            for p in found:
                if p is not None:
                    seen.update((spec["source"],) + e for e in p[1] if _hashable_key(e))
            for k in seen:
                popular[k] = popular.get(k, 0) + 1
        type_sets: dict[tuple, tuple[frozenset, list]] = {}  # the few distinct type lists, made once
        for i, spec in enumerate(rules):
            src = spec["source"]
            listed = spec.get("types")
            if listed is None:
                types, in_order = None, None
            else:
                key = tuple(listed)
                made = type_sets.get(key)
                if made is None:
                    made = type_sets[key] = (frozenset(listed), sorted(set(listed)))
                types, in_order = made
            filt = spec.get("filter")
            r = CompiledRule(i, spec["name"], src, types, spec["action"], spec.get("args", {}),
                             spec.get("policies", {}), filt, spec, self._lazy_full(i))
            self.rules.append(r)
            self.by_source.setdefault(src, []).append(r)

            def weight(e, src=src):
                return popular.get((src,) + e, 1) if _hashable_key(e) else 1
            entries, residual, _ = _plan(filt, *paths[i], weight)
            self._residual.append(residual)
            rec = [i, None if residual is None else _UNSET, spec["name"]]
            self._recs.append(rec)
            member = (rec, entries)
            if types is None:
                untyped.setdefault(src, []).append(member)
            else:
                for t in in_order:
                    typed.setdefault((src, t), []).append(member)
        typed_b = {k: Bucket(v) for k, v in typed.items()}
        untyped_b = {k: Bucket(v) for k, v in untyped.items()}
        self._typed, self._untyped = typed_b, untyped_b
        # (source, type) -> the buckets to consult: the type's own and the source's any-type
        # bucket; a type no rule names uses the latter alone (no growth on odd event types)
        self._by_src: dict[str, tuple[Bucket, ...]] = {s: (b,) for s, b in untyped_b.items()}
        self._plans: dict[tuple[str, str], tuple[Bucket, ...]] = {}
        for (s, t), b in typed_b.items():
            u = untyped_b.get(s)
            self._plans[(s, t)] = (b, u) if u is not None else (b,)

    # -- lazy compilation
    def _lazy_full(self, i: int) -> Pred:
        def first_call(d: dict) -> bool:
            r = self.rules[i]
            p = fast_predicate(r.filter)
            r.pred = p if p is not None else _always
            return r.pred(d)
        return first_call

    def _compile(self, rec: list) -> Pred | None:
        residual = self._residual[rec[0]]
        key = shape(residual)
        if key in self._shared:
            p = self._shared[key]
        else:
            p = self._shared[key] = fast_predicate(residual)
        rec[1] = p
        return p

    # -- LinearMatcher's interface
    def candidate_indexes(self, event: Event) -> list[int]:
        """Indexes of the rules worth trying for this event, sorted, without duplicates."""
        return [rec[0] for rec in self._candidates(event.source, event.type, event.data)]

    def _candidates(self, source: str, typ: str, data: dict) -> list[list] | tuple:
        """The candidates' records in rule order; possibly the index's own list: read it only."""
        plan = self._plans.get((source, typ))
        if plan is None:
            plan = self._by_src.get(source)
            if plan is None:
                return ()
        if len(plan) == 1:
            return plan[0].candidates(data)
        out: list[list[list]] = []
        for b in plan:
            b.collect(data, out)
        return _merged(out)

    def _matching(self, source: str, typ: str, data: dict) -> list[list]:
        out = []
        for rec in self._candidates(source, typ, data):
            p = rec[1]
            if p is _UNSET:
                p = self._compile(rec)
            if p is None or p(data):
                out.append(rec)
        return out

    def candidates(self, event: Event) -> list[CompiledRule]:
        rules = self.rules
        return [rules[i] for i in self.candidate_indexes(event)]

    def matching_rules(self, event: Event) -> list[CompiledRule]:
        rules = self.rules
        return [rules[rec[0]] for rec in self._matching(event.source, event.type, event.data)]

    def match(self, event: Event) -> list[Match]:
        data = event.data
        return [Match(r, r.inputs(data)) for r in self.matching_rules(event)]

    def names(self, event: Event) -> list[str]:
        """The names of the matching rules, in order (what ``triggerc match`` prints)."""
        return self.names_for(event.source, event.type, event.data)

    def matching_indexes(self, source: str, typ: str, data: dict) -> list[int]:
        """The indexes of the matching rules, in order, of an event given by its parts."""
        return [rec[0] for rec in self._matching(source, typ, data)]

    def names_for(self, source: str, typ: str, data: dict) -> list[str]:
        """:meth:`names` of an event given by its parts (the batch loop makes no Event)."""
        out = []
        for rec in self._candidates(source, typ, data):
            p = rec[1]
            if p is _UNSET:
                p = self._compile(rec)
            if p is None or p(data):
                out.append(rec[2])
        return out

    def stats(self) -> dict:
        """How the rules were indexed (for the benchmark and for curious users)."""
        out = {}
        for (s, t), b in sorted(self._typed.items()):
            out[f"{s}.{t}"] = b.stats()
        for s, b in sorted(self._untyped.items()):
            out[f"{s}.*"] = b.stats()
        return out


def _merged(lists: list[list[list]]) -> list[list] | tuple:
    """Several candidate lists (each in rule order) as one, in rule order, without duplicates."""
    if len(lists) == 1:
        return lists[0]
    if not lists:
        return ()
    seen = {rec[0]: rec for h in lists for rec in h}
    return [seen[i] for i in sorted(seen)]


_UNSET: Any = object()


def _hashable_key(e: Entry) -> bool:
    try:
        hash(e)
    except TypeError:  # pragma: no cover - access_path only keys scalars
        return False
    return True


def _always(d: dict) -> bool:
    return True


def plain_match(rules: list[dict], event: Event) -> list[str]:
    """Names of the rules an event matches, by evaluating every rule (the test oracle)."""
    out = []
    for r in rules:
        if r["source"] != event.source:
            continue
        if r.get("types") is not None and event.type not in r["types"]:
            continue
        if compile_predicate(r.get("filter"))(event.data):
            out.append(r["name"])
    return out


def rule_filter_fn(node: dict | None) -> Callable[[dict], bool]:
    """The filter as the index evaluates it (for tests): :func:`fast_predicate`, never None."""
    p = fast_predicate(node)
    return p if p is not None else _always


def build_matcher(rules: list[dict]) -> IndexedMatcher:
    """The matcher the runtime, ``triggerc match`` and ``triggerc test`` use: the rule
    index, checked against the reference semantics of :class:`LinearMatcher` by the tests."""
    return IndexedMatcher(rules)
