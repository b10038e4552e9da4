"""Checking ``test`` blocks (SPEC §10, §11.6): from the syntax tree to steps, events and
expectations.

A test is a list of steps: ``given`` (events arriving), ``wait D`` and ``at "ISO"`` (the
virtual clock, which starts at Monday 2024-01-01T00:00:00Z and never goes back: TRG714),
and ``expect`` lines; consecutive expects form a block (contradictions are looked for
within a block). ``expect open|expired RULE [key V] [missing A, ...]`` must name a
correlation rule (TRG714), with a key of its arity and aliases it has (TRG603).

A test block is checked by the same :class:`~triggerlang.check.checker.Checker` that checks
the rules, from :meth:`Checker.run` (after the rules, before the lints, so a ``let`` used
only by a test counts as used). Nothing here runs a matcher: :mod:`triggerlang.testing`
does, and only for a file whose check is clean. What checking a test does, in order:

1. **Name.** Test names are unique in a file (TRG101) and not blank (TRG603).
2. **Trigger.** ``given SOURCE.EVENT`` is checked like a rule's trigger (TRG201, TRG202,
   TRG207). A test event is one event, so ``SOURCE.*`` is refused (TRG603).
3. **Fields.** Each ``field=value`` must be a field of that trigger (TRG203, with the
   checker's "did you mean") and have its type (TRG204), through the checker's own
   ``field_type`` / ``value`` / ``type_check``: a given field is checked as the filter
   ``field = value`` would be. A list field (``files``, ``labels``, ``paths``) takes a
   list; any other field takes one value; a map field (``headers``, ``query``) takes its
   keys one by one (``headers.x-token="..."``). A field given twice, or given both a value
   and members (``payload.a=1 payload.a.b=2``), is TRG603. Dotted paths build nested maps
   (``payload.pr.number=3`` gives ``{"payload": {"pr": {"number": 3}}}``); header names
   are lower-cased, as the server stores them.
4. **Payload.** ``from "file.json"`` is for the triggers a webhook feeds: those of every
   provider of :mod:`triggerlang.providers` (``github.*``, ``gitlab.*``..., and
   ``ci.completed`` from a generic CI body), and ``http.*``, whose ``payload`` is the
   file's JSON (``text`` its compact JSON; ``path``, ``headers.NAME``... given beside it,
   as adnanh/webhook's users keep a delivery's body to replay it); anything else is TRG603. The path
   is relative to the ``.trg`` file. A file that cannot be read, is not JSON, or that the
   provider normaliser refuses is TRG602 at the string. The payload goes through
   :func:`triggerlang.providers.normalise`, the server's own normaliser, with no headers.
   GitLab names the event in the body (``object_kind``): a payload of another kind than
   the trigger says is TRG603.
5. **Expectations.** Every rule an ``expect`` names must exist (TRG601, with "did you mean"
   over the rules of the file and, for ``X_test.trg``, of ``X.trg``). ``expect RULE with
   ARGS`` binds ARGS to the parameters of the rule's action as a call would (positional in
   order, then named: TRG401, TRG402), but only the parameters written are compared;
   a placeholder has no value to compare with (TRG603). Contradictions within one test
   (``expect none`` with ``expect R``; ``expect R`` with ``expect not R``) are TRG603.

How a test event is built (decisions)
-------------------------------------
An event is ``{source, type, data}`` with the given fields in ``data``, plus only what the
real source would always derive from them, never a guess:

* ``file.*``: ``name`` and ``ext`` from ``path``; ``change`` is the event type; ``paths``
  is ``[path]`` (what a debounced rule sees for one change). ``given file.changed`` is a
  ``modified`` event unless ``change=`` says created or deleted.
* ``git.*`` and each provider's ``ref_events`` (``github.push``, ``gitlab.push`` /
  ``tag_push``, ``ci.completed``...): ``ref`` and ``branch``/``tag`` complete each other
  (``branch="main"`` gives ``ref="refs/heads/main"``); on pushes (``git.*`` and each
  provider's ``push_events``) ``sha`` and ``after`` complete each other.
* ``http.get`` ... ``http.delete``: the type is the method and ``method`` its upper-case
  name; ``given http.request`` is a POST unless ``method=`` says otherwise. A method
  given in lower case (``method="post"``) is TRG603: an event's method is upper case, as
  the HTTP source writes it, so ``check`` reports a rule on ``method="post"`` (TRG501)
  and ``emit`` refuses ``method=post``; the given is checked as that filter would be
  (it was upper-cased, and the test passed for a rule that never matches).
* ``schedule.tick``: a schedule rule matches only the ticks of its own schedule (the
  compiler adds ``rule = NAME`` to its filter), so a tick must say whose it is:
  ``given schedule.tick rule="nightly"``. ``rule`` is required (TRG603) and must name a
  schedule rule (TRG601 if no rule has that name, TRG603 if the rule is not a schedule).
* ``from`` and fields together: the payload is normalised first, then the fields are
  laid over the event the trigger names (they override; dotted paths merge into maps).
  This is how a test varies one real delivery: ``given github.pull_request draft=true
  from "pr.json"`` (fields come before ``from``). Derived events are as the normaliser
  made them.
* A payload can give two events: a completed GitHub ``workflow_run`` or ``check_suite``,
  or a final GitLab ``pipeline``, is also a ``ci.completed``. Expectations then apply to
  the union of the rules the events match (``expect only`` lists the rules of both).
"""

from __future__ import annotations

import copy
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..diagnostics import Span, meant, replace_fix, suggest, typo, write_fix, write_hint
from ..events import FILE_CHANGES, MAX_EVENT_CHARS, Event, JSONError, complete_file_data, read_json
from ..providers import provider_names
from ..providers.base import REDACTED, redact_params
from ..providers.verify import ALWAYS_REDACTED
from ..sources.kinds import provider_of
from ..syntax import ast as A
from . import catalogue as C
from .values import SKIP, TYPE_WORDS, Dur, Regex, plain, type_of


# --------------------------------------------------------------------------- results

@dataclass
class ExpectSpec:
    """One checked ``expect``: ``kind`` is match, not, only, none, open or expired.

    For ``open``/``expired`` (§11.6), ``key`` holds the key's values (None: any key) and
    ``missing`` the aliases that must be missing (None: not checked)."""

    kind: str
    rules: list[str]
    inputs: dict[str, Any]          # param -> expected value (only the params written)
    span: Span
    text: str                       # the expectation as written, for messages
    ast: A.Expect = field(repr=False, default=None)
    key: list | None = None
    missing: list[str] | None = None


@dataclass
class CheckedStep:
    """One step of a test (§11.6): events arriving (``given``), the virtual clock moving
    (``wait``: ``seconds``; ``at``: ``time``, epoch seconds) or an ``expect``."""

    kind: str
    span: Span
    text: str
    events: list[Event] = field(default_factory=list)
    seconds: float | None = None
    time: float | None = None
    expect: ExpectSpec | None = None


@dataclass
class CheckedTest:
    """A checked test block: its steps; ``events`` and ``expects`` gather those of every step."""

    name: str
    ast: A.TestBlock
    events: list[Event]
    expects: list[ExpectSpec]
    steps: list[CheckedStep] = field(default_factory=list)

    @property
    def span(self) -> Span:
        return self.ast.span


# --------------------------------------------------------------------------- driver

def check_tests(ck: Any, base_dir: str | None) -> list[CheckedTest]:
    """Check every test block of the checker's module; problems go to ``ck.d``."""
    out: list[CheckedTest] = []
    first_line: dict[str, int] = {}
    for t in ck.m.decls:
        if not isinstance(t, A.TestBlock):
            continue
        name = t.name.value
        if not name.strip():
            ck.d.error("TRG603", "a test needs a name", t.name.span, 'say what it shows: test "a push to main deploys":')
        elif name in first_line:
            ck.d.error("TRG101", f"duplicate test name {json.dumps(name, ensure_ascii=False)} "
                       f"(first declared on line {first_line[name]})", t.name.span,
                       "rename one of them: test names are unique in a file")
        else:
            first_line[name] = t.span.start.line
        steps = _steps(ck, _TestChecker(ck, base_dir), t)
        block: list[ExpectSpec] = []
        for st in [*steps, None]:
            if st is not None and st.kind == "expect":
                block.append(st.expect)
            elif block:
                _contradictions(ck, block)
                block = []
        expects = [st.expect for st in steps if st.kind == "expect"]
        if not t.expects:
            ck.d.error("TRG603", "a test needs at least one expect", t.name.span,
                       "say what should happen: expect RULE, expect none, expect open RULE ...")
        out.append(CheckedTest(name, t, [e for st in steps for e in st.events], expects, steps))
    return out


def _steps(ck: Any, tc: "_TestChecker", t: A.TestBlock) -> list[CheckedStep]:
    """The steps of a test, with the virtual clock checked (TRG714): a test starts at
    Monday 2024-01-01T00:00:00Z, ``wait`` moves it forward, ``at`` sets it, never back."""
    from ..correlation.clock import LATEST, TEST_EPOCH, iso, parse_time
    from ..fmt import fmt_step

    clock = TEST_EPOCH
    out: list[CheckedStep] = []
    for s in t.steps:
        text = fmt_step(s)
        if isinstance(s, A.Given):
            out.append(CheckedStep("given", s.span, text, events=tc.given(s)))
        elif isinstance(s, A.Wait):
            v = ck.value(s.duration)
            if v is None:
                continue
            if not isinstance(v, Dur):
                ck.d.error("TRG204", "wait takes a duration", s.duration.span, "write: wait 10m")
            elif not v > 0:
                ck.d.error("TRG714", "wait must move the clock forward", s.duration.span, "write a duration above zero")
            elif clock + v > LATEST:
                ck.d.error("TRG714", "wait takes the test's clock past the year 9000", s.duration.span,
                           "wait less: tests start at 2024-01-01T00:00:00Z")
            else:
                clock += float(v)
                out.append(CheckedStep("wait", s.span, text, seconds=float(v)))
        elif isinstance(s, A.At):
            at = parse_time(s.time.value)
            if at is None:
                ck.d.error("TRG714", f"{json.dumps(s.time.value)} is not an ISO 8601 time", s.time.span,
                           'write: at "2024-03-04T02:30:00+01:00"')
            elif at > LATEST:
                ck.d.error("TRG714", "at is past the year 9000", s.time.span, 'write a time like "2024-03-04T02:30:00Z"')
            elif at < clock:
                ck.d.error("TRG714", f"at goes back in time: the test's clock is already at {iso(clock)}",
                           s.time.span, "tests start at 2024-01-01T00:00:00Z and only move forward")
            else:
                clock = at
                out.append(CheckedStep("at", s.span, text, time=at))
        else:
            out.append(CheckedStep("expect", s.span, text, expect=_expect(ck, s)))
    return out


# --------------------------------------------------------------------------- given

class _TestChecker:
    def __init__(self, ck: Any, base_dir: str | None):
        self.ck = ck
        self.d = ck.d
        self.base_dir = base_dir

    def given(self, g: A.Given) -> list[Event]:
        """The events of a ``given``, their credentials redacted as serve's rules see them."""
        return [_as_served(e) for e in self._given(g)]

    def _given(self, g: A.Given) -> list[Event]:
        trig = g.trigger
        src, ev, _types = self.ck.check_trigger(trig)
        if src is not None and ev == "*":
            names = sorted(C.get_source(src).events, key=lambda n: (n != "push", n))  # (push first: most asked)
            hint = write_hint(f"{src}.{names[0]}", f" (or another {src} event)") if names else \
                f"write {src}.EVENT, one of the events it sends"
            self.d.error("TRG603", f"a test event has one type, not {src}.*", trig.event.span, hint,
                         fix=write_fix(trig.span, hint) if names else None)
            src = None
        ctx = (src, ev) if src is not None else None
        data, ok = self.fields(g.fields, ctx)
        if g.from_file is not None and src == "http":  # a generic route's JSON body: the event's payload
            body = self.read_payload(g.from_file)
            if body is None or not ok:
                return []
            payload = {"payload": copy.deepcopy(body), "text": json.dumps(body, ensure_ascii=False)}
            _merge(payload, data)  # fields given beside from win, as for a provider's body
            return self.build(g, src, ev, payload)
        if g.from_file is not None:
            if src is not None and provider_of(src) is None:
                self.d.error("TRG603", f"from reads a raw webhook payload, and {src}.{ev} events do not come "
                             "from one", g.from_file.span, f"give the fields instead: given {src}.{ev} field=value "
                             f"... (from is for {', '.join(provider_names())} and http triggers)")
                return []
            body = self.read_payload(g.from_file)
            if body is None or src is None or not ok:
                return []
            return self.from_payload(g, src, ev, data, body)
        if src is None or not ok:
            return []
        return self.build(g, src, ev, data)

    # ---- fields
    def fields(self, fields: tuple[A.GivenField, ...], ctx) -> tuple[dict, bool]:
        """The given fields as nested data; False when one of them had an error."""
        data: dict[str, Any] = {}
        ok = True
        seen: dict[tuple[str, ...], A.GivenField] = {}
        for gf in fields:
            parts = gf.field.parts
            if parts[0] == "headers" and len(parts) == 2:
                parts = (parts[0], parts[1].lower())
            if "*" in parts:
                self.d.error("TRG603", f"'{gf.field.dotted}': a given field is one value, and '*' stands for every element",
                             gf.field.span, "give the whole list or object from a file: given ... from \"body.json\"")
                ok = False
                continue
            n_errors = len(self.d)
            typ = self.ck.field_type(ctx, gf.field) if ctx is not None else None
            val = self.ck.value(gf.value)
            if typ not in (None, "?") and val is not None:
                self.type_check(gf, typ, val)
            if len(self.d) != n_errors or typ in (None, "?") or val is None:
                ok = False
                continue
            if parts in seen:
                self.d.error("TRG603", f"'{gf.field.dotted}' is given twice (first on line "
                             f"{seen[parts].span.start.line})", gf.field.span, "give each field once")
                ok = False
                continue
            clash = next((p for p in seen if p[:len(parts)] == parts or parts[:len(p)] == p), None)
            if clash is not None:
                self.d.error("TRG603", f"'{gf.field.dotted}' and '{'.'.join(clash)}' overlap: one is inside the other",
                             gf.field.span, "give either the whole value or its members")
                ok = False
                continue
            seen[parts] = gf
            _set_path(data, parts, _to_json(val))
        return data, ok

    def type_check(self, gf: A.GivenField, typ: str, val: Any) -> None:
        f = gf.field.dotted
        as_compare = lambda v, node: A.Compare(gf.field, "=", node, gf.span, gf.span)  # noqa: E731
        if typ == C.MAP:
            self.d.error("TRG204", f"'{f}' is a map: give its keys one by one", gf.field.span,
                         f'write {f}.NAME="value"')
        elif typ == C.ANY:
            bad = _find(val, lambda x: isinstance(x, Regex))
            if bad is not None:
                self.d.error("TRG204", f"'{f}' is given a regex: a regex is a pattern, not a value an event holds",
                             gf.value.span, "write the string the event would carry")
        elif typ == C.LIST_STR:
            if not isinstance(val, list):
                self.d.error("TRG204", f"'{f}' is {TYPE_WORDS[typ]}, not {TYPE_WORDS.get(type_of(val), 'this')}",
                             gf.value.span, f"write a list: {f}=[...]")
                return
            items = gf.value.items if isinstance(gf.value, A.ListLit) else (gf.value,) * len(val)
            for x, node in zip(val, items):
                if x is not None:
                    n = len(self.d)
                    self.ck.type_check(as_compare(x, node), typ, x)
                    if len(self.d) != n:
                        return
        elif isinstance(val, list):
            self.d.error("TRG204", f"'{f}' is {TYPE_WORDS.get(typ, typ)}, not a list", gf.value.span,
                         "a given field takes one value")
        else:
            self.ck.type_check(as_compare(val, gf.value), typ, val)

    # ---- events from fields
    def build(self, g: A.Given, src: str, ev: str, data: dict) -> list[Event]:
        typ = ev
        if src == "file":
            typ = self.file_type(g, ev, data)
            if typ is None:
                return []
            complete_file_data(data, typ)
        elif src == "http":
            typ = self.http_type(g, ev, data)
            if typ is None:
                return []
        elif src == "schedule":
            if not self.schedule_rule(g, data):
                return []
        _complete_refs(src, ev, data)
        return [Event(src, typ, data)]

    def file_type(self, g: A.Given, ev: str, data: dict) -> str | None:
        change = data.get("change")
        if change is None:
            return "modified" if ev == "changed" else ev
        at = _field_span(g, "change")
        if change not in FILE_CHANGES:
            self.d.error("TRG603", f"change is created, modified or deleted, not {json.dumps(change)}", at,
                         "write change=\"created\", \"modified\" or \"deleted\"")
            return None
        if ev != "changed" and change != ev:
            self.d.error("TRG603", f"a file.{ev} event has change=\"{ev}\", not {json.dumps(change)}", at,
                         f"use given file.{change}, or drop change=")
            return None
        return change

    def http_type(self, g: A.Given, ev: str, data: dict) -> str | None:
        method = data.get("method")
        if method is None:
            data["method"] = "POST" if ev == "request" else ev.upper()
            return "post" if ev == "request" else ev
        if not isinstance(method, str) or method.lower() not in ("get", "post", "put", "patch", "delete", "head",
                                                                  "options"):
            self.d.error("TRG603", f"{json.dumps(method)} is not an HTTP method", _field_span(g, "method"),
                         "write GET, POST, PUT, PATCH or DELETE")
            return None
        if ev != "request" and method.lower() != ev:
            self.d.error("TRG603", f"an http.{ev} event has method {ev.upper()}, not {method}", _field_span(g, "method"),
                         f"use given http.{method.lower()}, or drop method=")
            return None
        if method != method.upper():  # as check says of a rule on it (TRG501) and emit refuses it
            self.d.error("TRG603", f"an HTTP method is upper case, never {json.dumps(method)}: no event has it",
                         _field_span(g, "method"), write_hint(f'method="{method.upper()}"',
                         " (or drop method=: it follows from the event's name)" if ev != "request" else ""))
            return None
        return method.lower()

    def schedule_rule(self, g: A.Given, data: dict) -> bool:
        rule = data.get("rule")
        schedules = sorted(n for n, r in self.ck.p.rule_asts.items()
                           if isinstance(r.trigger, (A.EveryTrigger, A.CronTrigger)))
        example = schedules[0] if schedules else "NAME"
        if rule is None:
            self.d.error("TRG603", "a schedule tick belongs to one rule: say which", g.trigger.span,
                         f'write: given schedule.tick rule="{example}"')
            return False
        at = _field_span(g, "rule")
        r = self.ck.p.rule_asts.get(rule)
        if r is None:
            guess = suggest(rule, schedules)
            value = next((f.value for f in g.fields if f.field.parts == ("rule",)), None)
            fix = (replace_fix(value.span, json.dumps(rule), json.dumps(guess))
                   if guess and isinstance(value, A.Str) else None)
            self.d.error("TRG601", f"no rule named {json.dumps(rule)}", at,
                         meant(guess) or (
                             f"schedule rules: {', '.join(schedules)}" if schedules
                             else "this file has no every/cron rule"), fix=fix)
            return False
        if not isinstance(r.trigger, (A.EveryTrigger, A.CronTrigger)):
            self.d.error("TRG603", f"rule '{rule}' is not a schedule (every/cron) rule, so it has no ticks", at,
                         f"schedule rules: {', '.join(schedules)}" if schedules else "this file has no every/cron rule")
            return False
        return True

    # ---- events from a payload file
    def payload_path(self, s: A.Str) -> Path:
        p = Path(s.value)
        if not p.is_absolute():
            p = Path(self.base_dir or os.getcwd()) / p
        return p

    def read_payload(self, s: A.Str) -> Any:
        """The parsed JSON of a payload file, or None after a TRG602."""
        path = self.payload_path(s)
        shown = s.value
        if "\0" in shown:  # (open raises ValueError on it)
            return self._unreadable(s, "a payload file's path holds a NUL character, which no file name can",
                                    "remove the \\u{0}")
        try:
            with open(path, "rb") as fh:
                raw = fh.read(MAX_EVENT_CHARS + 1)
        except FileNotFoundError:
            return self._unreadable(s, f"payload file '{shown}' does not exist")
        except IsADirectoryError:
            return self._unreadable(s, f"payload file '{shown}' is a folder")
        except OSError as e:
            return self._unreadable(s, f"payload file '{shown}' cannot be read: {e.strerror or e}")
        if len(raw) > MAX_EVENT_CHARS:
            return self._unreadable(s, f"payload file '{shown}' is over {MAX_EVENT_CHARS // 2**20} MiB",
                                    "a payload file holds the webhook's JSON body as sent")
        try:
            return read_json(raw.decode("utf-8"))
        except UnicodeDecodeError:
            return self._unreadable(s, f"payload file '{shown}' is not UTF-8 text", "save it as UTF-8 JSON")
        except JSONError as e:
            return self._unreadable(s, f"payload file '{shown}' is {e}", "a payload file holds the webhook's JSON body as sent")

    def from_payload(self, g: A.Given, src: str, ev: str, data: dict, body: Any) -> list[Event]:
        from ..providers import ProviderError, normalise

        s = g.from_file
        shown = s.value
        try:
            events = normalise(src, ev, body, None)
        except ProviderError as e:
            self._unreadable(s, f"payload file '{shown}' is not a {src} {ev} payload: {e}",
                             "use the body of a real delivery (the provider's webhook log shows it)")
            return []
        if not events:  # pragma: no cover - every normaliser gives at least one event
            return []
        primary = events[0]
        if primary.type != ev:
            self.d.error("TRG603", f"'{shown}' holds a {src} {primary.type} event, not {ev}", g.trigger.span,
                         f"write: given {src}.{primary.type} from {json.dumps(shown)}")
            return []
        if data:
            primary.data = copy.deepcopy(primary.data)
            _merge(primary.data, data)
        return events

    def _unreadable(self, s: A.Str, msg: str, hint: str | None = None) -> None:
        self.d.error("TRG602", msg, s.span, hint or "the path is relative to this .trg file")
        return None


def _as_served(event: Event) -> Event:
    """``event`` as serve's rules would see it: the value of a credential header (every one
    the HTTP source redacts on any route, :data:`~triggerlang.providers.verify.ALWAYS_REDACTED`)
    or query parameter (:func:`~triggerlang.providers.base.redact_params`) is ``<redacted>``
    (``given http.post headers.x-api-key="k"`` gave rules ``"k"``, so a test passed for a
    rule that never matches under serve). A route's own ``header=`` or ``query=``
    credential is hidden when the test runs, by the route serve would pick
    (:meth:`triggerlang.testing._RuleSet.served`: the routes are the compiled manifest's)."""
    headers, query = event.data.get("headers"), event.data.get("query")
    if isinstance(headers, dict):
        event.data["headers"] = {k: REDACTED if k.lower() in ALWAYS_REDACTED else v for k, v in headers.items()}
    if isinstance(query, dict):
        redact_params(query)
    return event


# --------------------------------------------------------------------------- expect

def _expect(ck: Any, e: A.Expect) -> ExpectSpec:
    from ..fmt import fmt_expect

    names = sorted(ck.p.rule_asts)
    for n in e.rules:
        if n.value not in ck.p.rule_asts:
            fix = None
            if names:
                hint, fix = typo(n.value, names, n.span)
                hint = hint or "rules: " + ", ".join(names)
            elif ck.d.file.endswith("_test.trg"):
                hint = (f"this file has no rules, and no {os.path.basename(ck.d.file)[:-len('_test.trg')]}.trg "
                        "beside it to test")
            else:
                hint = "this file has no rules"
            ck.d.error("TRG601", f"no rule named '{n.value}'", n.span, hint, fix=fix)
    inputs: dict[str, Any] = {}
    if e.kind in ("open", "expired"):
        return _expect_group(ck, e)
    if e.kind == "match" and e.has_with:
        rule = ck.p.rule_asts.get(e.rules[0].value)
        decl = ck.p.actions.get(rule.action.value) if rule is not None else None
        if decl is not None:
            inputs = _bind_expected(ck, e, decl)
        else:
            for a in e.args:
                if not isinstance(a.value, A.Placeholder):
                    ck.value(a.value)
    return ExpectSpec(e.kind, [n.value for n in e.rules], inputs, e.span, fmt_expect(e), e)


def checked_rule(ck: Any, name: str):
    """The checked rule called ``name``: this file's, or (for X_test.trg) X.trg's."""
    for r in ck.p.rules:
        if r.name == name:
            return r
    if ck.imported is not None:
        for r in ck.imported.rules:
            if r.name == name:
                return r
    return None


def _expect_group(ck: Any, e: A.Expect) -> ExpectSpec:
    """``expect open|expired RULE [key V] [missing A, ...]`` (§11.6)."""
    from ..fmt import fmt_expect

    name = e.rules[0].value
    spec = ExpectSpec(e.kind, [name], {}, e.span, fmt_expect(e), e)
    values = [_to_json(ck.value(v)) for v in e.key]
    spec.key = values if e.key else None
    spec.missing = [n.value for n in e.missing] if e.has_missing else None
    r = checked_rule(ck, name)
    if r is None:
        return spec     # (TRG601 above)
    corr = r.correlation
    if corr is None:
        ck.d.error("TRG714", f"expect {e.kind} checks a correlation's groups, and '{name}' is an ordinary rule",
                   e.rules[0].span, f"write: expect {name} (it ran) or expect not {name}")
        return spec
    arity = len(corr.get("key_types") or [])
    if e.key and len(e.key) != arity:
        ck.d.error("TRG603", f"'{name}' has a key of {arity} part(s), not {len(e.key)}" if arity else
                   f"'{name}' has no key: it has one group at a time", e.key[0].span,
                   "write: key (V1, V2)" if arity > 1 else ("write: key V" if arity else "leave out key"))
    aliases = [m["alias"] for m in corr.get("members") or []]
    for n in e.missing:
        if n.value not in aliases:
            hint, fix = typo(n.value, aliases, n.span)
            ck.d.error("TRG603", f"'{name}' has no member '{n.value}'", n.span, hint or "members: " + ", ".join(aliases),
                       fix=fix)
    return spec


def _bind_expected(ck: Any, e: A.Expect, decl: A.ActionDecl) -> dict[str, Any]:
    """ARGS bound to the action's parameters like a call, without requiring them all."""
    params = [p.name.value for p in decl.params]
    what = f"action '{decl.name.value}' (run by rule '{e.rules[0].value}')"

    def value_of(v):
        if isinstance(v, A.Placeholder):
            ck.d.error("TRG603", "expect ... with compares values: a placeholder has none here", v.span,
                       "write the value the run should get, e.g. sha=\"abc123\"")
            return SKIP
        return _to_json(ck.value(v))

    imported = ck.imported is not None and ck.imported.actions.get(decl.name.value) is decl
    at = decl.name.span.in_file(ck.imported.file) if imported and not decl.name.span.file else decl.name.span
    return ck.match_args(e.args, params, what, value_of,
                         lambda: f"its parameters are ({', '.join(params)})" if params else "it takes no arguments",
                         related=((at, f"action '{decl.name.value}' is declared here"),))


def _contradictions(ck: Any, expects: list[ExpectSpec]) -> None:
    known = ck.p.rule_asts  # an unknown rule is already TRG601: no second error about it
    must = {r: x for x in expects if x.kind == "match" for r in x.rules if r in known}
    for x in expects:
        if x.kind in ("open", "expired") or any(r not in known for r in x.rules):
            continue
        if x.kind == "none" and must:
            ck.d.error("TRG603", f"expect none contradicts expect {next(iter(must))}", x.span,
                       "a test expects either no match or some rules, not both")
        elif x.kind == "not" and x.rules[0] in must:
            ck.d.error("TRG603", f"expect not {x.rules[0]} contradicts expect {x.rules[0]} (line "
                       f"{must[x.rules[0]].span.start.line})", x.span, "remove one of them")
        elif x.kind == "only":
            extra = [r for r in must if r not in x.rules]
            if extra:
                ck.d.error("TRG603", f"expect only {', '.join(x.rules)} leaves out {extra[0]}, which another "
                           "expect needs", x.span, f"add {extra[0]} to the list")


# --------------------------------------------------------------------------- helpers

def _to_json(v: Any) -> Any:
    return plain(v)


def _find(v: Any, pred) -> Any:
    if pred(v):
        return v
    if isinstance(v, list):
        for x in v:
            r = _find(x, pred)
            if r is not None:
                return r
    return None


def _set_path(data: dict, parts: tuple[str, ...], value: Any) -> None:
    cur = data
    for p in parts[:-1]:
        nxt = cur.get(p)
        if not isinstance(nxt, dict):
            nxt = cur[p] = {}
        cur = nxt
    cur[parts[-1]] = value


def _merge(into: dict, over: dict) -> None:
    """Lay ``over`` on ``into``: maps merge key by key, anything else replaces."""
    for k, v in over.items():
        if isinstance(v, dict) and isinstance(into.get(k), dict):
            _merge(into[k], v)
        else:
            into[k] = v


def _field_span(g: A.Given, name: str) -> Span:
    return next((f.span for f in g.fields if f.field.parts == (name,)), g.trigger.span)


def _complete_refs(src: str, ev: str, data: dict) -> None:
    """What the sources derive from a ref, a branch or a tag (and sha from after)."""
    provider = provider_of(src) if src != "git" else None
    if src == "git" or (provider is not None and ev in provider.ref_events):
        ref = data.get("ref")
        if isinstance(ref, str):
            if ref.startswith("refs/heads/"):
                data.setdefault("branch", ref[len("refs/heads/"):])
            elif ref.startswith("refs/tags/"):
                data.setdefault("tag", ref[len("refs/tags/"):])
        elif isinstance(data.get("tag"), str):
            data["ref"] = "refs/tags/" + data["tag"]
        elif isinstance(data.get("branch"), str):
            data["ref"] = "refs/heads/" + data["branch"]
    if src == "git" or (provider is not None and ev in provider.push_events):
        if "sha" in data and "after" not in data:
            data["after"] = data["sha"]
        elif "after" in data and "sha" not in data:
            data["sha"] = data["after"]
