"""``triggerc test``: running the ``test`` blocks of rules files (SPEC §10).

The checker has already turned every test block into events and expectations
(:mod:`triggerlang.check.tests`); this module runs them, and only for a file whose check
found no error. The steps for one file:

1. **Rules.** The rules a test runs against are the file's own and, for ``X_test.trg``,
   those of ``X.trg`` (compiled first, as :func:`triggerlang.api.compile_file` does). If
   either file has errors, no test of the file runs: its errors are the report.
2. **Match.** Each test's events go through :func:`~triggerlang.compile.matcher.build_matcher`,
   the matcher the runtime and ``triggerc match`` use, so a test sees exactly what a real
   delivery would: a given's credentials are redacted as the route ``serve`` would take
   it on redacts them (its ``header=``, its ``query=`` token: :meth:`_RuleSet.served`). A run's inputs are the rule's bindings over the action's parameter
   defaults (:func:`triggerlang.actions.bind_inputs`, as the dry run and the executor do).
   When a ``given`` builds two events (a completed ``workflow_run`` is also a
   ``ci.completed``), a rule matched by either counts, and ``expect only`` / ``expect
   none`` look at the union.
3. **Expect.** ``expect R`` holds when R matched; ``with`` compares only the parameters
   written, with the matcher's equality (no coercion: ``1`` is not ``"1"``), and holds when
   any run of R had those inputs (two ``given`` pushes make two runs; an expectation is
   about what ran, not in which order, as ``expect only`` is); when none did, the failure
   lists each run's differences (``run 2 of 3: sha was ...``). ``expect
   not R`` holds when R did not match; ``expect only R, ...`` when the set of rules that
   matched is exactly those; ``expect none`` when nothing matched. A test passes when all
   its expectations hold; each one that does not is one :class:`Failure`.
4. **Explain.** A failure says what was expected and what happened. For a rule that was
   expected to match and did not, it says why, as ``triggerc match --explain`` does: the
   first condition of the rule's filter that failed, where it is written and the value the
   event had (``condition branch="main" (line 12:24) failed: branch was "dev"``), or that
   the rule listens to another trigger than the test's event.

Selection: ``triggerc test -k EXPR`` runs only the tests whose name EXPR selects, as
pytest's ``-k`` does (:class:`Selection`); the others are counted as deselected.

Rendering: :func:`render_text` prints one line per failure, ``FILE:LINE:COL: FAIL test
"NAME": MESSAGE`` at the expectation that failed, its explanation on indented lines, and
at the end the plain line ``N passed, M failed`` (CI parses it; ``, K deselected`` is
added after a ``-k`` left tests out). :func:`render_json` is ``{"tests": [{file, name,
line, passed, failures}], "passed", "failed", "deselected", "errors"}``; :func:`render_github`
annotations for a pull request and :func:`render_junit` the JUnit XML report CI reads.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import os
import re
from dataclasses import dataclass, field
from typing import Any

from .actions import bind_inputs
from .api import Compiled
from .compile.index import build_matcher
from .compile.matcher import CompiledRule, explain_failure, reason_text, values_equal
from .diagnostics import Diagnostic, Span
from .events import Event
from .providers import REDACTED
from .sources.routes import RouteTable, parse_routes


# --------------------------------------------------------------------------- results

@dataclass
class Failure:
    """One expectation that did not hold: where it is written, what went wrong, and why."""

    span: Span
    expect: str                   # the expectation as written
    message: str                  # "expected rule deploy_main to match"
    explain: list[dict] = field(default_factory=list)   # {"text", "rule"?, "condition"?, ...}

    def to_json(self) -> dict:
        return {"line": self.span.start.line, "column": self.span.start.column,
                "end_line": self.span.end.line, "end_column": self.span.end.column,
                "expect": self.expect, "message": self.message, "explain": self.explain}


@dataclass
class TestResult:
    file: str
    name: str
    span: Span
    failures: list[Failure] = field(default_factory=list)
    matched: list[str] = field(default_factory=list)

    __test__ = False  # not a pytest class

    @property
    def passed(self) -> bool:
        return not self.failures

    def to_json(self) -> dict:
        return {"file": self.file, "name": self.name, "line": self.span.start.line, "passed": self.passed,
                "matched": self.matched, "failures": [f.to_json() for f in self.failures]}


@dataclass
class FileReport:
    """The tests of one file, or the errors that kept them from running; ``deselected``:
    how many tests a ``-k`` left out, ``left_out`` which (file, name, line)."""

    file: str
    results: list[TestResult] = field(default_factory=list)
    errors: list[Diagnostic] = field(default_factory=list)
    sources: dict[str, str] = field(default_factory=dict)
    deselected: int = 0
    left_out: list[tuple[str, str, int]] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.errors and all(r.passed for r in self.results)


# --------------------------------------------------------------------------- running

class _RuleSet:
    """The rules a file's tests run against, with the file each rule is written in."""

    def __init__(self, parts: list[tuple[str, dict]]):
        rules: list[dict] = []
        self.actions: dict[str, dict] = {}
        self.file_of: dict[str, str] = {}
        self.schedules: list[dict] = []   # every/cron rules: the clock of a test ticks them
        routes: list[dict] = []   # the HTTP source's routes, as serve would take deliveries
        for file, manifest in parts:
            for r in manifest["rules"]:
                rules.append(r)
                # a rule an include read: its span names its file, relative to the main file's
                # folder; shown relative to where the main file is shown, as check shows it
                inc = (r.get("span") or {}).get("file")
                self.file_of[r["name"]] = os.path.normpath(os.path.join(os.path.dirname(file), inc)) if inc else file
            self.actions.update(manifest.get("actions", {}))
            self.schedules.extend(((manifest.get("sources") or {}).get("schedule") or {}).get("schedules") or [])
            routes.extend(((manifest.get("sources") or {}).get("http") or {}).get("routes") or [])
        self.rules = rules
        self.matcher = build_matcher(rules)
        self.by_name = {r["name"]: CompiledRule.from_manifest(i, r) for i, r in enumerate(rules)}
        self.correlations = {r["name"] for r in rules if isinstance(r.get("trigger"), dict)}
        self.routes = parse_routes({"routes": routes}, None)
        self.table = RouteTable(self.routes)

    def served(self, events: list[Event]) -> list[Event]:
        """A given's events as serve's rules would see them, after the route that would take
        the delivery hid its own credential (:meth:`HttpRoute.served`; the credentials every
        route hides were redacted when the test was checked). An http event's route is the
        one serve picks for its ``path`` and ``method``; a webhook event's, its provider's
        route, and when several declarations give that provider several paths (which a
        given cannot name), the headers every one of them hides. An event no route takes
        (serve: 404 or 405) stays as given."""
        if not events:
            return events
        first = events[0]
        if first.source == "http":
            path, method = first.data.get("path"), first.data.get("method")
            route = self.table.pick(path, method) if isinstance(path, str) and isinstance(method, str) else None
            routes = [route] if route is not None else []
        else:   # (a derived ci.completed came through its delivery's route: the first event's)
            routes = [r for r in self.routes if r.kind == first.source]
        if not routes:
            return events
        out = []
        for e in events:
            data = copy.deepcopy(e.data)
            if len(routes) == 1:
                routes[0].served(data)
            elif isinstance(data.get("headers"), dict):
                data["headers"] = {k: REDACTED if all(r.withheld("headers", k) for r in routes) else v
                                   for k, v in data["headers"].items()}
            out.append(dataclasses.replace(e, data=data))
        return out


class Selection:
    """``-k EXPR``: which tests run, by name, as pytest's ``-k``.

    EXPR is words combined with ``and``, ``or``, ``not`` and parentheses (``not`` binds
    tighter than ``and``, ``and`` than ``or``). A run of words with no keyword between them
    is one phrase, since test names are sentences: ``-k "push to main and not bots"``
    selects the tests whose name contains "push to main" and not "bots". A phrase in
    double quotes may hold a keyword: ``-k '"build and test" or lint'``. A phrase holds
    when it is a part of the test's name, ignoring case. Only names count, not file names
    as pytest's module names do: every companion file is called ``*_test.trg``, so ``-k
    test`` would select everything (give the files to run instead). A malformed EXPR is a
    ValueError that says what is wrong.
    """

    _TOKEN = re.compile(r'\s*(?:(\()|(\))|"([^"]*)"|([^\s()"]+)|(\S))')
    _KEYWORDS = ("and", "or", "not")

    def __init__(self, expr: str) -> None:
        self.expr = expr
        self._tokens = self._tokenize(expr)
        self._pos = 0
        if not self._tokens:
            raise ValueError("-k needs an expression: words, and, or, not, parentheses")
        self._tree = self._or()
        if self._pos < len(self._tokens):
            raise ValueError(f"-k: unexpected {self._tokens[self._pos][1]!r} in {expr!r}")

    @classmethod
    def _tokenize(cls, expr: str) -> list[tuple[str, str]]:
        out: list[tuple[str, str]] = []
        for m in cls._TOKEN.finditer(expr):
            lp, rp, quoted, word, other = m.groups()
            if lp or rp:
                out.append(("(" if lp else ")", lp or rp))
            elif quoted is not None:
                out.append(("phrase", quoted))
            elif word is not None:
                out.append((word, word) if word in cls._KEYWORDS else ("word", word))
            elif other is not None:
                raise ValueError(f'-k: an unclosed " in {expr!r}')
        return out

    def _peek(self) -> str | None:
        return self._tokens[self._pos][0] if self._pos < len(self._tokens) else None

    def _or(self) -> tuple:
        return self._chain("or", self._and)

    def _and(self) -> tuple:
        return self._chain("and", self._not)

    def _chain(self, op: str, operand) -> tuple:
        """``operand (op operand)*``, left to right."""
        node = operand()
        while self._peek() == op:
            self._pos += 1
            node = (op, node, operand())
        return node

    def _not(self) -> tuple:
        if self._peek() == "not":
            self._pos += 1
            return ("not", self._not())
        return self._atom()

    def _atom(self) -> tuple:
        kind = self._peek()
        if kind == "(":
            self._pos += 1
            node = self._or()
            if self._peek() != ")":
                raise ValueError(f"-k: a '(' is not closed in {self.expr!r}")
            self._pos += 1
            return node
        if kind == "phrase":
            self._pos += 1
            return ("has", self._tokens[self._pos - 1][1].lower())
        words = []
        while self._peek() == "word":
            words.append(self._tokens[self._pos][1])
            self._pos += 1
        if not words:
            got = "the end" if kind is None else repr(self._tokens[self._pos][1])
            raise ValueError(f"-k: expected a name, found {got} in {self.expr!r}")
        return ("has", " ".join(words).lower())

    def __call__(self, name: str) -> bool:
        text = name.lower()

        def holds(node: tuple) -> bool:
            op = node[0]
            if op == "has":
                return node[1] in text
            if op == "not":
                return not holds(node[1])
            return (holds(node[1]) and holds(node[2])) if op == "and" else (holds(node[1]) or holds(node[2]))

        return holds(self._tree)


def run_compiled(c: Compiled, select: Selection | None = None) -> FileReport:
    """Run the tests of a compiled file (see the module docstring); with ``select``, only
    the tests it selects."""
    report = FileReport(c.file, sources=dict(c.sources))
    parts: list[tuple[str, dict]] = []
    if c.main is not None:
        report.sources.update(c.main.sources)
        if not c.main.ok:
            report.errors.extend(d for d in c.main.diagnostics if d.is_error)
        elif c.main.manifest is not None:
            parts.append((c.main.file, c.main.manifest))
    report.errors.extend(d for d in c.diagnostics if d.is_error)
    if report.errors or c.manifest is None or c.program is None:
        return report
    parts.append((c.file, c.manifest))
    rules = _RuleSet(parts)
    for t in c.program.tests:
        if select is not None and not select(t.name):
            report.deselected += 1
            report.left_out.append((c.file, t.name, t.span.start.line))
            continue
        report.results.append(_run_test(c.file, t, rules))
    return report


def run_file(path, display_name: str | None = None, select: Selection | None = None) -> FileReport:
    """Compile one file and run its tests (raises SourceFileError if it cannot be read)."""
    from .api import compile_file

    return run_compiled(compile_file(path, display_name), select)


def _run_test(file: str, t, rules: _RuleSet) -> TestResult:
    """Run a test's steps on a simulation (virtual clock at 2024-01-01T00:00:00Z); each block
    of consecutive expects judges what happened since the previous block (§11.6)."""
    from .correlation.clock import TEST_EPOCH
    from .correlation.sim import ClockError, Simulation

    sim = Simulation(rules.rules, rules.actions, TEST_EPOCH, matcher=rules.matcher, schedules=rules.schedules)
    timeline = _Timeline(sim, rules, file)
    timeline.add("start", sim.first, [])
    everything: list[str] = []
    res = TestResult(file, t.name, t.span)
    acc = _Since()
    acc.take(sim.first)
    in_block = False
    for st in t.steps:
        if st.kind == "expect":
            if not in_block:
                acc.close()
            in_block = True
            ctx = _Explainer(file, acc.events, rules, timeline)
            f = _judge(st.expect, acc.matched, acc.order(rules), ctx, rules, sim, acc)
            if f is not None:
                res.failures.append(f)
            continue
        if in_block:
            acc = _Since()
            in_block = False
        events = rules.served(st.events) if st.kind == "given" else st.events
        try:
            if st.kind == "given":
                step = sim.deliver(events)
            elif st.kind == "wait":
                step = sim.advance(sim.now + st.seconds)
            else:
                step = sim.advance(max(st.time, sim.now))
        except ClockError as e:   # too many schedule ticks in one step
            res.failures.append(Failure(st.span, st.text, str(e)))
            break
        acc.take(step)
        timeline.add(st.text, step, events)
        everything.extend(r.rule for r in step.runs if r.rule not in everything)
    res.matched = [n for n in rules.by_name if n in everything]
    return res


class _Since:
    """What happened since the previous block of expects: runs, events, group changes."""

    def __init__(self):
        self.matched: dict[str, list[dict]] = {}   # rule -> inputs of each of its runs
        self.events: list[Event] = []
        self.outcomes: list = []
        self.closed = False

    def take(self, step) -> None:
        for r in step.runs:
            self.matched.setdefault(r.rule, []).append(r.inputs)
        self.events.extend(d.event for d in step.deliveries if not d.chained)
        self.outcomes.extend(step.outcomes)

    def close(self) -> None:
        self.closed = True

    def order(self, rules: "_RuleSet") -> list[str]:
        return [n for n in rules.by_name if n in self.matched]


TIMELINE_ENDS = 4
"""A step of a timeline that did more than 2 x this to a rule shows this many at each end."""


class _Timeline:
    """Each step of a test so far, and what it did to each correlation rule (for failures)."""

    def __init__(self, sim, rules: "_RuleSet", file: str):
        self.sim, self.rules, self.file = sim, rules, file
        self.entries: list[tuple[float, str, object, list]] = []

    def add(self, text: str, step, events: list[Event]) -> None:
        self.entries.append((self.sim.now, text, step, events))

    def of(self, rule: str) -> list[dict]:
        from .correlation.clock import TEST_EPOCH, human
        from .correlation.render import explain_members, outcome_text

        engine = self.sim.engine
        r = engine.by_name.get(rule) if engine is not None else None
        here = _Explainer(self.file, [], self.rules)

        def where(rule: str, span: Any) -> str:   # the file too when not the test's, as why_not says
            return here.where(here.at(rule, span))

        out = [{"rule": rule, "text": f"timeline of {rule}:"}]
        for t, text, step, events in self.entries:
            if text == "start" and not [o for o in step.outcomes if o.rule == rule]:
                continue
            at = "+" + human(t - TEST_EPOCH) if t > TEST_EPOCH else "+0s"
            mine = [o for o in step.outcomes if o.rule == rule]
            if len(mine) > 2 * TIMELINE_ENDS + 1:   # a long wait over a window a day: its ends, and a count
                cut = len(mine) - 2 * TIMELINE_ENDS
                first, last = mine[TIMELINE_ENDS], mine[-TIMELINE_ENDS - 1]
                skipped = f"... {cut} more (+{human(first.time - TEST_EPOCH)} to +{human(last.time - TEST_EPOCH)})"
                mine = mine[:TIMELINE_ENDS] + [skipped] + mine[-TIMELINE_ENDS:]
            lines = [o if isinstance(o, str) else
                     f"{outcome_text(o, o.time)}" + (f" (at +{human(o.time - TEST_EPOCH)})" if o.time != t else "")
                     for o in mine]
            if not lines and events and r is not None:
                sources = {m.source for m in r.members}
                for ev in events:
                    if ev.source not in sources:
                        continue
                    why = [x for x in explain_members(engine, ev, []) if x["rule"] == rule]
                    typed = [x for x in why if not str(x.get("condition", "")).startswith("trigger ")]
                    lines.extend(f"{x['member']}: " + (f"no match: {reason_text(x, where(rule, x['span']))}"
                                                       if x.get("span") and x.get("condition") else x["text"])
                                 for x in (typed or why))
            out.append({"rule": rule, "text": f"  {at:<6} {text}"})
            out.extend({"rule": rule, "text": f"  {'':<6}   {ln}"} for ln in lines)
        return out


def _judge(x, matched: dict[str, list[dict]], order: list[str], ctx: "_Explainer",
           rules: _RuleSet, sim=None, acc: _Since | None = None) -> Failure | None:
    if x.kind in ("open", "expired"):
        return _judge_group(x, ctx, sim, acc)
    if x.kind == "match":
        r = x.rules[0]
        if r not in matched:
            return Failure(x.span, x.text, f"expected rule {r} to match", ctx.why_not(r))
        if not x.inputs:
            return None
        runs = matched[r]
        for inputs in runs:     # any run of the rule with those inputs (a push of two commits)
            if all(k in inputs and _same(inputs[k], v) for k, v in x.inputs.items()):
                return None
        action = rules.by_name[r].action
        lines = []
        for n, inputs in enumerate(runs, 1):    # every run's differences, each run's own line(s)
            at = f"run {n} of {len(runs)}: " if len(runs) > 1 else ""
            for k, v in x.inputs.items():
                if k not in inputs or not _same(inputs[k], v):
                    got = _show(inputs[k]) if k in inputs else "not set"
                    lines.append({"text": f"{at}{k} was {got}, expected {_show(v)}", "param": k,
                                  "value": inputs.get(k), "expected": v, **({"run": n} if at else {})})
        want = ", ".join(f"{k}={_show(v)}" for k, v in x.inputs.items())
        none = f"; none of its {len(runs)} runs had those inputs" if len(runs) > 1 else ""
        return Failure(x.span, x.text, f"expected rule {r} to run {action} with {want}{none}", lines)
    if x.kind == "not":
        r = x.rules[0]
        if r not in matched:
            return None
        ran = _ran(r, matched[r][0], rules)
        return Failure(x.span, x.text, f"expected rule {r} not to match, but it did",
                       [{**ran, "text": _runs(matched[r]).strip(" ()") + (": " if len(matched[r]) > 1 else "")
                         + ran["text"]}] + ctx.how(r))
    if x.kind == "only":
        want = list(dict.fromkeys(x.rules))
        if set(want) == set(order):
            return None
        got = ", ".join(order) if order else "nothing"
        lines: list[dict] = []
        for r in want:
            if r not in matched:
                lines.extend({**w, "rule": r, "text": f"{r} did not match: {w['text']}"} for w in ctx.why_not(r))
        for r in order:
            if r not in want:
                lines.append({**_ran(r, matched[r][0], rules), "text": f"{r} matched too: "
                              + _ran(r, matched[r][0], rules)["text"]})
        return Failure(x.span, x.text, f"expected only {', '.join(want)} to match; matched {got}", lines)
    # none
    if not order:
        return None
    return Failure(x.span, x.text, f"expected no rule to match; matched {', '.join(order)}",
                   [line for r in order for line in
                    [{**_ran(r, matched[r][0], rules), "text": f"{r}{_runs(matched[r])}: "
                      + _ran(r, matched[r][0], rules)["text"]},
                     *ctx.how(r)]])


def _judge_group(x, ctx: "_Explainer", sim, acc: _Since) -> Failure | None:
    """``expect open RULE [key V] [missing ...]``: a live group now; ``expect expired ...``:
    a group that expired since the previous block."""
    from .correlation.spec import key_text

    rule = x.rules[0]
    want_key = tuple(key_text(v) for v in x.key) if x.key is not None else None
    want_missing = set(x.missing) if x.missing is not None else None
    engine = sim.engine
    r = engine.by_name.get(rule) if engine is not None else None
    if r is None:   # pragma: no cover - the checker makes sure it is a correlation rule
        return Failure(x.span, x.text, f"{rule} is not a correlation rule")
    what = f"group of {rule}" + (f" with key {', '.join(_show(v) for v in x.key)}" if x.key is not None else "") + \
        (f" missing {', '.join(x.missing) or 'nothing'}" if x.missing is not None else "")
    if x.kind == "open":
        seen = []
        for g in sorted(sim.state.live_groups(rule), key=lambda g: g.seq):
            missing = [m.alias for m in r.members if not r._has(g.slots, m.index)]
            if (want_key is None or g.key == want_key) and (want_missing is None or set(missing) == want_missing):
                return None
            seen.append(f"open: {r.key_label([json.loads(k) for k in g.key])} ({g.state}), missing "
                        f"{', '.join(missing) or 'nothing'}")
        lines = [{"rule": rule, "text": s} for s in seen] or [{"rule": rule, "text": f"{rule} has no open group"}]
        return Failure(x.span, x.text, f"expected an open {what}", lines + ctx.timeline.of(rule))
    seen = []
    for o in acc.outcomes:
        if o.rule != rule or o.action != "expire":
            continue
        key = tuple(key_text(v) for v in o.keys)
        if (want_key is None or key == want_key) and (want_missing is None or set(o.missing) == want_missing):
            return None
        seen.append(f"expired: {o.key_label}, missing {', '.join(o.missing) or 'nothing'}")
    lines = [{"rule": rule, "text": s} for s in seen] or \
        [{"rule": rule, "text": f"no group of {rule} expired since the previous expect"}]
    return Failure(x.span, x.text, f"expected an expired {what}", lines + ctx.timeline.of(rule))


def _ran(rule: str, inputs: dict, rules: _RuleSet) -> dict:
    action = rules.by_name[rule].action
    args = ", ".join(f"{k}={_show(v)}" for k, v in inputs.items())
    return {"rule": rule, "text": f"it runs {action}" + (f" with {args}" if args else ""), "inputs": inputs}


def _runs(runs: list) -> str:
    """`` (30 runs, the first)`` before the first of several runs shown, else nothing."""
    return f" ({len(runs)} runs, the first)" if len(runs) > 1 else ""


def _same(a: Any, b: Any) -> bool:
    """Equality of an input and an expected value: the matcher's, element by element for lists."""
    if isinstance(a, list) or isinstance(b, list):
        return isinstance(a, list) and isinstance(b, list) and len(a) == len(b) \
            and all(_same(x, y) for x, y in zip(a, b))
    if isinstance(a, dict) or isinstance(b, dict):
        return a == b
    return values_equal(a, b)


def _show(v: Any) -> str:
    return json.dumps(v, ensure_ascii=False)


class _Explainer:
    """Why a rule did not match the test's events (a correlation rule: its timeline)."""

    def __init__(self, file: str, events: list[Event], rules: _RuleSet, timeline: "_Timeline | None" = None):
        self.file, self.events, self.rules, self.timeline = file, events, rules, timeline

    def at(self, rule: str, span: Any) -> dict | None:
        """Where a rule's condition is written: ``{file, line, column}`` (spans come as
        ``[line, col, end_line, end_col]`` from filters and as dicts from rules)."""
        if not span:
            return None
        line, col = (span[0], span[1]) if isinstance(span, list) else (span["line"], span["column"])
        return {"file": self.rules.file_of.get(rule, self.file), "line": line, "column": col}

    def where(self, at: dict | None) -> str:
        if at is None:
            return ""
        if at["file"] == self.file:
            return f" (line {at['line']}:{at['column']})"
        return f" ({at['file']}:{at['line']}:{at['column']})"

    def how(self, name: str) -> list[dict]:
        """How a rule came to match: a correlation rule's timeline (what each step did to its
        groups, or why an event was not admitted); nothing for an ordinary rule."""
        if name in self.rules.correlations and self.timeline is not None:
            return self.timeline.of(name)
        return []

    def why_not(self, name: str) -> list[dict]:
        if name in self.rules.correlations and self.timeline is not None:
            return self.timeline.of(name)
        r = self.rules.by_name[name]
        trigger = r.spec.get("trigger", f"{r.source}.*")
        events = [e for e in self.events if e.source == r.source]
        rule_at = self.at(name, r.spec.get("span"))
        if not events:
            got = (f"the test's event is {', '.join(e.trigger for e in self.events)}" if self.events else
                   "the steps before this expect gave no event" + (" (a schedule rule ticks when the clock "
                                                                    "passes its time: wait or at)"
                                                                    if r.source == "schedule" else ""))
            return [{"rule": name, "condition": f"trigger {trigger}", "at": rule_at,
                     "text": f"rule {name} listens to {trigger}{self.where(rule_at)}; {got}"}]
        if r.source == "schedule" and len(events) > 1 and not any(e.data.get("rule") == name for e in events):
            # the clock ticked other rules (maybe thousands of times): one line, not one a tick
            ticks: dict[str, int] = {}
            for e in events:
                ticks[str(e.data.get("rule"))] = ticks.get(str(e.data.get("rule")), 0) + 1
            seen = ", ".join(_show(k) + (f" ×{n}" if n > 1 else "") for k, n in ticks.items())
            return [{"rule": name, "condition": f"rule={_show(name)}", "at": None, "field": "rule", "value": None,
                     "text": f"condition rule={_show(name)} failed: the ticks were of {seen}; a schedule rule "
                             "matches only its own ticks (it ticks when the clock passes its time: wait or at)"}]
        out = []
        for ev in events:
            if not r.accepts_type(ev.type):
                out.append({"rule": name, "condition": f"trigger {trigger}", "at": rule_at,
                            "text": f"trigger {trigger}{self.where(rule_at)} failed: the event is {ev.trigger}"})
                continue
            why = explain_failure(r.filter, ev.data)
            if why is None:  # the reference semantics say it matches: the runtime's matcher disagrees
                out.append({"rule": name, "condition": None, "at": rule_at,
                            "text": f"rule {name}{self.where(rule_at)} holds for this event by the reference "
                                    "matcher, but the runtime's rule index did not select it: a bug in triggerc"})
                continue
            fieldname = why.get("field")
            if r.source == "schedule" and fieldname == "rule" and not why.get("span"):
                why = {**why, "note": "a schedule rule matches only its own ticks"}
            at = self.at(name, why.get("span"))
            out.append({"rule": name, "condition": why["condition"], "at": at, "field": fieldname,
                        "value": None if why.get("missing") else why.get("value"),
                        "text": "condition " + reason_text(why, self.where(at))})
        return out


# --------------------------------------------------------------------------- rendering

def counts(reports: list[FileReport]) -> tuple[int, int]:
    results = [r for rep in reports for r in rep.results]
    passed = sum(r.passed for r in results)
    return passed, len(results) - passed


def render_text(reports: list[FileReport], verbose: bool = False) -> str:
    """One line per failure (and its explanation), then ``N passed, M failed``."""
    out: list[str] = []
    for rep in reports:
        for r in rep.results:
            if verbose and r.passed:
                out.append(f"{r.file}:{r.span.start.line}:{r.span.start.column}: ok   test {_show(r.name)}")
            for f in r.failures:
                out.append(f"{r.file}:{f.span.start.line}:{f.span.start.column}: FAIL test {_show(r.name)}: "
                           f"{f.message}")
                out.extend("  " + e["text"] for e in f.explain)
    passed, failed = counts(reports)
    deselected = sum(rep.deselected for rep in reports)
    out.append(f"{passed} passed, {failed} failed" + (f", {deselected} deselected" if deselected else ""))
    return "\n".join(out) + "\n"


def render_github(reports: list[FileReport]) -> str:
    """GitHub Actions workflow commands: an ``::error`` at each expectation that failed (an
    annotation on that line of the pull request's diff), titled with the test's name, its
    explanation in the message; a file's errors as ``check --format github`` gives them;
    then the plain line ``N passed, M failed``."""
    from .diagnostics import gh_escape, render_github as diagnostics_github

    out: list[str] = []
    errors = [d for rep in reports for d in rep.errors]
    if errors:
        out.append(diagnostics_github(list(dict.fromkeys(errors))).rstrip("\n"))
    for rep in reports:
        for r in rep.results:
            for f in r.failures:
                props = (f"file={gh_escape(r.file, True)},line={f.span.start.line},col={f.span.start.column},"
                         f"endLine={f.span.end.line},endColumn={f.span.end.column},"
                         f"title={gh_escape(f'test {_show(r.name)} failed', True)}")
                text = "\n".join([f.message, *("  " + e["text"] for e in f.explain)])
                out.append(f"::error {props}::{gh_escape(text)}")
    out.append(render_text(reports).rstrip("\n").rsplit("\n", 1)[-1])
    return "\n".join(out) + "\n"


_XML_UNSAFE = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def render_junit(reports: list[FileReport]) -> str:
    """JUnit XML, as CI systems read test reports (GitLab's ``artifacts:reports:junit``,
    Jenkins, GitHub's test-report actions): a ``<testsuite>`` per file, a ``<testcase>``
    per test (``classname`` the file, ``file`` and ``line`` where the test is written),
    with a ``<failure>`` that holds every failed expectation and its explanation as the
    text output gives them; a test ``-k`` or ``FILE::NAME`` left out is a case with ``<skipped>``, counted in
    ``tests`` as JUnit's readers expect (surefire, pytest: passed = tests - failures -
    errors - skipped; GitLab and Jenkins count the cases). A file whose errors kept its tests from running is a suite
    with one ``<error>`` case listing them; a file without tests has no suite. Characters
    XML 1.0 cannot hold are replaced."""
    import xml.etree.ElementTree as ET

    def clean(text: str) -> str:
        return _XML_UNSAFE.sub("\ufffd", text)

    root = ET.Element("testsuites", name="triggerc test")
    totals = {"tests": 0, "failures": 0, "errors": 0, "skipped": 0}
    for rep in reports:
        if not rep.results and not rep.errors and not rep.deselected:
            continue  # a rules file whose tests are in its companion
        counts_ = {"tests": len(rep.results) + bool(rep.errors) + rep.deselected,
                   "failures": sum(not r.passed for r in rep.results),
                   "errors": int(bool(rep.errors)), "skipped": rep.deselected}
        suite = ET.SubElement(root, "testsuite", name=clean(rep.file), **{k: str(v) for k, v in counts_.items()})
        for k, v in counts_.items():
            totals[k] += v
        if rep.errors:
            case = ET.SubElement(suite, "testcase", classname=clean(rep.file), name="(the file's errors)",
                                 file=clean(rep.file))
            err = ET.SubElement(case, "error", message=clean(f"{len(rep.errors)} error(s): the tests did not run"))
            err.text = clean("\n".join(f"{d.file}:{d.span.start.line}:{d.span.start.column}: {d.code}: {d.message}"
                                        for d in rep.errors))
        cases = [(r.span.start.line, r.file, r.name, r) for r in rep.results]
        cases += [(line, file, name, None) for file, name, line in rep.left_out]
        for line, file, name, r in sorted(cases, key=lambda c: c[0]):  # in the file's order
            case = ET.SubElement(suite, "testcase", classname=clean(file), name=clean(name), file=clean(file),
                                 line=str(line))
            if r is None:
                ET.SubElement(case, "skipped", message="deselected (-k or FILE::NAME)")
            elif r.failures:
                fail = ET.SubElement(case, "failure", message=clean(r.failures[0].message))
                fail.text = clean("\n".join(
                    f"{r.file}:{f.span.start.line}:{f.span.start.column}: {f.message}"
                    + "".join("\n  " + e["text"] for e in f.explain) for f in r.failures))
    for k, v in totals.items():
        root.set(k, str(v))
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"


def render_json(reports: list[FileReport]) -> str:
    passed, failed = counts(reports)
    doc = {"tests": [r.to_json() for rep in reports for r in rep.results], "passed": passed, "failed": failed,
           "deselected": sum(rep.deselected for rep in reports),
           "errors": [d.to_json() for rep in reports for d in rep.errors]}
    return json.dumps(doc, indent=2, ensure_ascii=False, default=str) + "\n"
