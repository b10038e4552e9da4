"""Matchers: the compiled form of the manifest's rules, evaluated against events.

Semantics (SPEC §3), implemented once in :func:`compile_predicate`:

- A field is looked up by dotted path in the event's ``data``. A missing field, or a JSON
  ``null``, makes every comparison false except ``!=``, ``!~`` and ``not in``, which hold.
  ``has FIELD`` holds when the field is present and not null.
- On a list value, a condition holds if it holds for **any** element; on an empty list
  no condition holds (negated operators included): ``files !~ "docs/**"`` means "some file
  is outside docs", ``not files ~ "docs/**"`` means "no file is under docs".
- ``=``/``!=``/``in`` compare strings, numbers and booleans without coercion: ``true``
  never equals ``1`` and ``"5"`` never equals ``5``.
- ``~`` is a glob match on strings (``/re/`` a regex search); a list of patterns matches
  if any does. On a non-string value ``~`` is false and ``!~`` true.
- ``<`` ``<=`` ``>`` ``>=`` compare numbers (durations are seconds); two strings are
  compared as ISO 8601 times when both parse, else the comparison is false.

:class:`LinearMatcher` tries every rule of the event's source in order: it is the
reference implementation. The runtime and ``triggerc match`` use
:func:`build_matcher`, which returns the fastest matcher available with the same results.
"""

from __future__ import annotations

import datetime as _dt
import json
from dataclasses import dataclass, field
from typing import Any, Callable

from ..events import MISSING, Event, get_path, type_note
from .patterns import bound_value, compile_glob, compile_regex, regex_literal

Pred = Callable[[dict], bool]


# --------------------------------------------------------------------------- values

def values_equal(a: Any, b: Any) -> bool:
    """Equality without coercion between booleans, numbers and strings."""
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        return a == b
    if isinstance(a, (int, float)) or isinstance(b, (int, float)):
        return False
    return a == b


def _as_time(s: str) -> _dt.datetime | None:
    try:
        t = _dt.datetime.fromisoformat(s.replace("Z", "+00:00"))
    except ValueError:
        return None
    return t if t.tzinfo else t.replace(tzinfo=_dt.timezone.utc)


def _ordered(a: Any, b: Any) -> tuple[Any, Any] | None:
    if isinstance(a, bool) or isinstance(b, bool):
        return None
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        return a, b
    if isinstance(a, str) and isinstance(b, str):
        ta, tb = _as_time(a), _as_time(b)
        if ta is not None and tb is not None:
            return ta, tb
    return None


def _pattern_fn(patterns: list[dict]) -> Callable[[Any], bool]:
    compiled = []
    for p in patterns:
        if "glob" in p:
            compiled.append(compile_glob(p["glob"]).match)
        else:
            compiled.append(compile_regex(p["regex"], p.get("flags", "")).search)

    def matches(v: Any) -> bool:
        if not isinstance(v, str):
            return False
        return any(m(v) is not None for m in compiled)
    return matches


def _element_test(op: str, value: Any) -> tuple[Callable[[Any], bool], bool]:
    """(test on one element, whether the op holds on a missing field)."""
    if op == "=":
        return (lambda v: values_equal(v, value)), False
    if op == "!=":
        return (lambda v: not values_equal(v, value)), True
    if op == "in":
        return (lambda v: any(values_equal(v, x) for x in value)), False
    if op == "not in":
        return (lambda v: not any(values_equal(v, x) for x in value)), True
    if op == "~":
        return _pattern_fn(value), False
    if op == "!~":
        m = _pattern_fn(value)
        return (lambda v: not m(v)), True
    cmp = {"<": lambda a, b: a < b, "<=": lambda a, b: a <= b,
           ">": lambda a, b: a > b, ">=": lambda a, b: a >= b}[op]

    def order(v: Any) -> bool:
        pair = _ordered(v, value)
        return pair is not None and cmp(*pair)
    return order, False


def _getter(path: str) -> Callable[[dict], Any]:
    parts = tuple(path.split("."))
    if len(parts) == 1:
        k = parts[0]
        return lambda d: d.get(k, MISSING)
    return lambda d: get_path(d, parts)


def compile_predicate(node: dict | None) -> Pred:
    """A serialised predicate tree (from the manifest) as a Python function of ``data``."""
    if node is None:
        return lambda d: True
    op = node["op"]
    if op == "and":
        subs = [compile_predicate(x) for x in node["args"]]
        return lambda d: all(f(d) for f in subs)
    if op == "or":
        subs = [compile_predicate(x) for x in node["args"]]
        return lambda d: any(f(d) for f in subs)
    if op == "not":
        sub = compile_predicate(node["arg"])
        return lambda d: not sub(d)
    get = _getter(node["field"])
    if op == "has":
        return lambda d: get(d) not in (MISSING, None)
    test, on_missing = _element_test(op, node["value"])

    def pred(d: dict) -> bool:
        v = get(d)
        if v is MISSING or v is None:
            return on_missing
        if isinstance(v, list):
            return any(test(x) for x in v)
        return test(v)
    return pred


def condition_text(node: dict) -> str:
    """A condition as the user would write it (for --explain)."""
    op = node["op"]
    if op == "has":
        return f"has {node['field']}"
    if op in ("and", "or"):
        return f" {op} ".join(f"({condition_text(x)})" if x["op"] in ("and", "or") else condition_text(x)
                              for x in node["args"])
    if op == "not":
        return f"not {condition_text(node['arg'])}"
    v = node["value"]
    if op in ("~", "!~"):
        pats = [regex_literal(p["regex"], p.get("flags", "")) if "regex" in p else json.dumps(p["glob"]) for p in v]
        vt = pats[0] if len(pats) == 1 else "[" + ", ".join(pats) + "]"
    else:
        vt = json.dumps(v, ensure_ascii=False)
    sep = "" if op == "=" else " "
    return f"{node['field']}{sep}{op}{sep}{vt}" if op == "=" else f"{node['field']} {op} {vt}"


def explain_failure(node: dict | None, data: dict) -> dict | None:
    """The first condition that failed, with its span and the event's value; None if it holds."""
    if node is None or compile_predicate(node)(data):
        return None
    op = node["op"]
    if op == "and":
        for x in node["args"]:
            r = explain_failure(x, data)
            if r is not None:
                return r
        return None  # pragma: no cover - an and that fails has a failing argument
    if op == "or":
        first = explain_failure(node["args"][0], data)
        return {**first, "condition": condition_text(node), "note": "no alternative held"} if first else None
    if op == "not":
        inner = node["arg"]
        return _with_value({"condition": condition_text(node), "span": _first_span(inner),
                            "field": _first_field(inner), "note": "the negated condition held"}, inner, data)
    return _with_value({"condition": condition_text(node), "span": node.get("span"), "field": node["field"]}, node, data)


def _first_span(node: dict) -> Any:
    if "span" in node:
        return node["span"]
    for x in node.get("args", []) + ([node["arg"]] if "arg" in node else []):
        s = _first_span(x)
        if s:
            return s
    return None


def _first_field(node: dict) -> str | None:
    if "field" in node:
        return node["field"]
    for x in node.get("args", []) + ([node["arg"]] if "arg" in node else []):
        f = _first_field(x)
        if f:
            return f
    return None


def _with_value(reason: dict, node: dict, data: dict) -> dict:
    """``reason`` with the event's ``value`` of the condition's field (``"<missing>"`` and
    ``missing: true`` when the event has no such field)."""
    f = _first_field(node)
    v = get_path(data, f.split(".")) if f is not None else None
    if v is MISSING:
        reason["value"], reason["missing"] = "<missing>", True
    else:
        reason["value"] = v
    return reason


def reason_text(reason: dict, where: str | None = None, limit: int | None = None) -> str:
    """One "why did this not match" reason as one line, the one wording of ``triggerc
    match --explain``, the dashboard and ``triggerc test``:
    ``CONDITION (line L:C) failed: FIELD was VALUE; NOTE`` (``the event has no FIELD``
    when it is missing). ``where`` replaces `` (line L:C)``; ``limit`` cuts a long value."""
    if where is None:
        span = reason.get("span")
        where = f" (line {span[0]}:{span[1]})" if span else ""
    field = reason.get("field")
    if reason.get("missing"):
        got = f"the event has no {field}"
    else:
        value = json.dumps(reason.get("value"), ensure_ascii=False, default=str)
        if limit is not None and len(value) > limit:
            value = value[: limit - 3] + "..."
        got = f"{field} was {value}"
    note = f"; {reason['note']}" if reason.get("note") else ""
    return f"{reason.get('condition')}{where} failed: {got}{note}"


# --------------------------------------------------------------------------- rules

@dataclass
class CompiledRule:
    """One manifest rule, ready to evaluate."""

    index: int
    name: str
    source: str
    types: frozenset[str] | None
    action: str
    args: dict[str, dict]
    policies: dict
    filter: dict | None
    spec: dict
    pred: Pred = field(repr=False, default=lambda d: True)

    @classmethod
    def from_manifest(cls, i: int, r: dict) -> "CompiledRule":
        types = frozenset(r["types"]) if r.get("types") is not None else None
        return cls(i, r["name"], r["source"], types, r["action"], r.get("args", {}), r.get("policies", {}),
                   r.get("filter"), r, compile_predicate(r.get("filter")))

    def accepts_type(self, typ: str) -> bool:
        return self.types is None or typ in self.types

    def inputs(self, data: dict) -> dict:
        """The action's inputs for an event: placeholders read from the event (null if absent)."""
        out = {}
        for name, b in self.args.items():
            if "field" in b:
                v = bound_value(data, b)
                out[name] = None if v is MISSING else v
            else:
                out[name] = b.get("value")
        return out


@dataclass
class Match:
    rule: CompiledRule
    inputs: dict

    @property
    def name(self) -> str:
        return self.rule.name


class LinearMatcher:
    """Every rule of the event's source, tried in file order (the reference semantics)."""

    def __init__(self, rules: list[dict]):
        self.rules = [CompiledRule.from_manifest(i, r) for i, r in enumerate(rules)]
        self.by_source: dict[str, list[CompiledRule]] = {}
        for r in self.rules:
            self.by_source.setdefault(r.source, []).append(r)

    def candidates(self, event: Event) -> list[CompiledRule]:
        return [r for r in self.by_source.get(event.source, ()) if r.accepts_type(event.type)]

    def matching_rules(self, event: Event) -> list[CompiledRule]:
        data = event.data
        return [r for r in self.candidates(event) if r.pred(data)]

    def match(self, event: Event) -> list[Match]:
        return [Match(r, r.inputs(event.data)) for r in self.matching_rules(event)]

    def explain(self, event: Event) -> list[dict]:
        """For each rule of the event's source that did not match: why not."""
        out = []
        for r in self.by_source.get(event.source, ()):
            if not r.accepts_type(event.type):
                out.append({"rule": r.name, "condition": f"trigger {r.spec.get('trigger')}",
                            "span": _span_list(r.spec.get("span")), "field": "type", "value": event.type,
                            "note": type_note(event)})
                continue
            why = explain_failure(r.filter, event.data)
            if why is not None:
                out.append({"rule": r.name, **why})
        return out


def _span_list(s: dict | None) -> list[int] | None:
    if not s:
        return None
    return [s["line"], s["column"], s["end_line"], s["end_column"]]
