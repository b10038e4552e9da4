"""The checker: names, types, calls and lints over a parsed module (SPEC §2-§6).

The algorithm, in the order it runs:

1. **Declare.** One pass over the declarations collects lets, secrets, actions, rule
   labels (a rule without one is ``L<line>``) and source declarations, reporting a
   duplicate name at its second declaration (TRG101).
2. **Resolve lets.** Each ``let`` value is evaluated to a plain Python value; a reference
   to another let is followed (cycles are an error), a reference to a secret is refused
   (TRG109: secrets never become values that could reach argv or logs).
3. **Actions.** Parameters, the ``exec`` argv (a bare name must be a parameter, TRG405),
   ``http`` options and secret references.
4. **Sources.** Each ``source`` declaration against the catalogue's options.
5. **Rules.** The trigger against the catalogue (TRG201/202/207); every condition's field
   (TRG203, with "did you mean"), operator and value type (TRG204/205), patterns (TRG301/
   302); the call against the action's parameters (TRG401-404); policies (TRG406/407);
   HTTP route pinning (TRG206). While checking, each filter is *lowered* to the
   serialised predicate tree that the manifest carries (values resolved, spans kept).
6. **Lints.** Rules that can never match (contradictory equalities on one scalar field,
   TRG501), rules identical to an earlier one (TRG502), ``run.*`` rules that can trigger
   each other (or themselves) without end (TRG503, :meth:`Checker.lint_loops`), unused
   lets, secrets, actions and source declarations (TRG105-108), webhook routes without a
   secret (TRG209).

Nothing stops at the first error: every declaration is checked, and a broken part (an
unknown source, say) only silences the checks that would cascade from it.
"""

from __future__ import annotations

import json
import re
import signal
from dataclasses import replace
from typing import Any

from .. import defaults
from ..actions import (BUSY_SIGNALS, BUSY_UNTRAPPABLE, STOP_SIGNALS, busy_signal_name, input_env_name,
                       signal_name, stop_signal_name)
from ..compile.patterns import (PatternError, compile_glob, compile_regex, github_filter_list_regex,
                                github_filter_regex, github_syntax, is_literal)
from ..diagnostics import (UNSAFE, Diagnostics, Edit, Fix, Span, meant, name_span, replace_fix, suggest, typo,
                           WriteHint, write_fix, write_hint)
from ..providers.base import CI_SOURCE, CREDENTIAL_HEADERS, CREDENTIAL_PARAMS, REDACTED
from ..providers.verify import ALWAYS_REDACTED, ip_range
from ..sources.kinds import (HTTP, HTTP_VERIFICATIONS, SectionInput, active_providers, http_decl_covers, provider_of,
                             provider_order)
from ..syntax import ast as A
from ..syntax.parser import (WORKFLOW_FIELDS, context_field, english_interval, foreign_path, restart_signal_hint,
                             workflow_condition)
from . import catalogue as C
from .program import HTTP_METHODS, CheckedRule, Program  # (also their names here, as before)
from .values import (SKIP, TYPE_WORDS, Dur, Regex, conjuncts, duration_problem, literal_value,
                     plain, type_of)

BUSY_MODES = defaults.BUSY_MODES
SHELL_REF = r"\$\{\{\s*([A-Za-z_][A-Za-z0-9_.\-]*)\s*\}\}|\$\{([A-Za-z_][A-Za-z0-9_.]*)\}|\$([A-Za-z_][A-Za-z0-9_]*)" \
            r"|\{\{\s*\.?([A-Za-z_][A-Za-z0-9_.]*)\s*\}\}|\$\(\s*([A-Za-z_][A-Za-z0-9_.\-]*)\s*\)" \
            r"|<([A-Za-z_][A-Za-z0-9_\-]*(?:\.(?:[A-Za-z0-9_\-]+|\*))*)>"
"""A shell's, a template's or GitHub Actions' reference in a string: ``$sha``, ``${sha}``,
``{{sha}}``, ``{{ .sha }}``, ``${{ github.sha }}``, Argo's and adnanh/webhook's
``{{ .Input.body.ref }}``, Tekton's ``$(body.ref)``, and our own ``<sha>`` in quotes
(compiled by ``re`` on the first string that has a ``$``, ``{{`` or ``<``)."""
SHELL_CHARS = set("|&;<>$`*?(){}[]'\"\\~")
"""Characters a shell gives a meaning: a command with one of them wants a shell action."""
FILE_GLOB_WORDS = ("glob", "globs", "pattern", "patterns", "filter", "files", "include", "match", "watch")
"""Other tools' names for a file rule's glob (watchexec's --filter, nodemon's --watch):
the condition is on ``path``."""
REF_EVENTS = {"git": None, "github": ("push", "create", "delete"), "gitlab": ("push", "tag_push", "pipeline"),
              "gitea": ("push", "create", "delete"), "bitbucket": ("push",)}
"""The events whose ``ref`` is always whole (``refs/heads/main``; None: every event)."""
HALF_HOUR_ZONES = {"+03:30": "Asia/Tehran", "+04:30": "Asia/Kabul", "+05:30": "Asia/Kolkata",
                   "+05:45": "Asia/Kathmandu", "+06:30": "Asia/Yangon", "+09:30": "Australia/Darwin",
                   "-03:30": "America/St_Johns", "-09:30": "Pacific/Marquesas"}
"""A place at each offset that is not a whole hour (no Etc/GMT zone has one)."""
BACKOFF_KINDS = ("exponential", "exp", "linear", "fixed", "constant", "jitter")
"""Other tools' backoff strategies, written where the first wait goes (it doubles)."""
_RESTARTS = "the running run is stopped, the new one starts"
_SKIPS = "the event starts no run while one is going"
BUSY_WORDS = {
    # other tools' words for a mode, as users coming from them write it after busy
    "cancel": ("restart", f"GitHub Actions' cancel-in-progress: {_RESTARTS}"),
    "cancel-in-progress": ("restart", _RESTARTS),
    "replace": ("restart", _RESTARTS),
    "kill": ("restart", _RESTARTS),
    "do-nothing": ("skip", f"watchexec's do-nothing: {_SKIPS}"),
    "ignore": ("skip", _SKIPS),
    "drop": ("skip", _SKIPS),
    "forbid": ("skip", f"a CronJob's Forbid: {_SKIPS}"),
    "allow": ("parallel", "a CronJob's Allow: runs overlap"),
    "wait": ("queue", "the run waits for the one going"),
}

CODES: dict[str, str] = {
    "TRG000": "internal error (a bug in triggerc)",
    "TRG001": "syntax error",
    "TRG002": "unexpected end of a declaration",
    "TRG003": "invalid string escape",
    "TRG004": "file is not valid UTF-8 text",
    "TRG005": "include names no rules file",
    "TRG101": "duplicate name",
    "TRG102": "unknown name",
    "TRG103": "unknown secret",
    "TRG104": "unknown action",
    "TRG105": "unused let",
    "TRG106": "unused secret",
    "TRG107": "unused action",
    "TRG108": "unused source declaration",
    "TRG109": "secret used as a value",
    "TRG110": "unused noqa comment",
    "TRG201": "unknown source",
    "TRG202": "unknown event",
    "TRG203": "unknown field",
    "TRG204": "type mismatch",
    "TRG205": "operator not valid for this type",
    "TRG206": "HTTP rule does not pin its route",
    "TRG207": "unknown webhook event name",
    "TRG208": "invalid source option",
    "TRG209": "webhook route without a secret or token",
    "TRG210": "conflicting source settings",
    "TRG301": "invalid regex",
    "TRG302": "invalid glob",
    "TRG303": "invalid cron expression",
    "TRG304": "invalid duration",
    "TRG305": "unknown time zone",
    "TRG306": "glob written in GitHub Actions' filter syntax",
    "TRG307": "wildcard in an exact comparison",
    "TRG401": "too many arguments",
    "TRG402": "unknown named parameter",
    "TRG403": "placeholder for a field the trigger does not have",
    "TRG404": "missing argument",
    "TRG405": "unknown parameter in an action body",
    "TRG406": "duplicate policy",
    "TRG407": "invalid policy",
    "TRG408": "invalid action declaration",
    "TRG409": "the event chooses the program an exec action runs",
    "TRG410": "a string exec passes as written, which only a shell would split or expand",
    "TRG411": "a shell script reads $1, or a parameter or let by its bare name, which a run never sets",
    "TRG501": "rule can never match",
    "TRG502": "rule identical to an earlier rule",
    "TRG503": "run.* rules can trigger each other in a loop",
    "TRG601": "test names an unknown rule",
    "TRG602": "test payload file cannot be read",
    "TRG603": "invalid test",
    "TRG701": "bad correlation group",
    "TRG702": "bad correlation alias",
    "TRG703": "correlation key the member's event does not have",
    "TRG704": "correlation key types differ between members",
    "TRG705": "correlation key that is not a single value",
    "TRG706": "correlation key on an untyped path",
    "TRG707": "bad correlation window",
    "TRG708": "bad placeholder in a correlation rule",
    "TRG709": "filter written after a correlation trigger",
    "TRG710": "two members of a correlation can match the same event",
    "TRG711": "bad absence",
    "TRG712": "debounce on a correlation rule",
    "TRG713": "max open groups out of range",
    "TRG714": "bad test timing",
}


# --------------------------------------------------------------------------- other tools' names

_RAW_SPELLINGS = {"body": "payload", "header": "headers", "params": "query", "querystring": "query"}
"""The names Tekton's CEL and bindings (``body.ref``, ``header.X-Name``), Argo Events'
dataKey and others give the parts of a request, and what they are called here."""


def raw_spelling_hint(parts: tuple[str, ...], raw, placeholder: bool = False) -> str | None:
    """TRG203/TRG403's hint for a path written with another tool's name for the body,
    headers or query of a request (``body.head_commit.id``): the path to write instead."""
    ours = _RAW_SPELLINGS.get(parts[0])
    if ours is None or ours not in raw:
        return None
    rest = [p.lower() for p in parts[1:2]] if ours == "headers" else list(parts[1:])
    path = ".".join([ours, *rest])
    path = f"<{path}>" if placeholder else path
    return f"the request's {parts[0]} is '{ours}' here: write {path}"


# --------------------------------------------------------------------------- results

# --------------------------------------------------------------------------- values

# --------------------------------------------------------------------------- checker


def _either(names: tuple[str, ...]) -> str:
    """``a``, ``a or b``, ``a, b or c``: the options any one of which would protect a route."""
    return names[0] if len(names) == 1 else f"{', '.join(names[:-1])} or {names[-1]}"

_POLICIES = dict(defaults.POLICIES)
"""The default policies, as a dict to copy (a copy of the read-only mapping per rule is slower)."""

_BOOL_WORDS = {"true": "true", "yes": "true", "on": "true", 1: "true", "1": "true",
               "false": "false", "no": "false", "off": "false", 0: "false", "0": "false"}
"""What a boolean field compared with a string or a number meant: YAML 1.1's yes/no/on/off,
a shell's 1/0 (TRG204's fix writes the word)."""


def _string(text: str) -> str:
    """``text`` as a string literal, to write in a hint (and its fix)."""
    from ..fmt import fmt_string  # (only on an error)

    return fmt_string(text)


def _path_as_regex(node: Any) -> tuple[str, WriteHint] | None:
    """(what it reads as, the hint) for a path written without its quotes that reads as a
    regex literal, flags and all (``/hooks/ims``: the regex ``/hooks/``, flags i, m, s),
    given where a string goes; None for a node that is no such regex."""
    if not isinstance(node, A.Regex) or not re.fullmatch(r"[A-Za-z0-9_.\-]+", node.pattern):
        return None
    text = f"/{node.pattern}/{node.flags}"
    read = f": {text} reads as the regex /{node.pattern}/ with flags {node.flags}" if node.flags else ""
    return read, write_hint(_string(text), before="a path is a string: ")

_WANT = {C.STR: ("str",), C.TIME: ("str",), C.INT: ("number",), C.NUMBER: ("number",),
         C.BOOL: ("bool",), C.DURATION: ("duration", "number")}
"""The value types a comparison with a field of each catalogue type takes."""



class Checker:
    def __init__(self, module: A.Module, diags: Diagnostics, imported: "Program | None" = None,
                 base_dir: str | None = None, tests: bool = True, warnings: bool = True):
        self.m = module
        self.with_tests = tests  # serve ignores test blocks (SPEC §10): it checks without them
        self.warnings = warnings
        self.d = diags
        self.p = Program(file=module.file, included=module.included, include_globs=module.include_globs)
        self.imported = imported
        self.base_dir = base_dir  # the rules file's folder: test payload paths are relative to it
        self.let_decls: dict[str, A.Let] = {}
        self.used_lets: set[str] = set()
        self.used_secrets: set[str] = set()
        self.used_actions: set[str] = set()
        self._resolving: set[str] = set()
        self._let_cache: dict[str, Any] = {}
        self.never_matching: set[str] = set()  # rules with TRG501 (the loop lint leaves them out)
        self._ftypes: dict[tuple, str | None] = {}
        self._triggers: dict[tuple[str, str], Any] = {}
        if imported is not None:
            self.p.lets.update(imported.lets)
            self.p.secrets.update(imported.secrets)
            self.p.actions.update(imported.actions)
            self.p.rule_asts.update(imported.rule_asts)

    # ------------------------------------------------------------------ driver
    def run(self) -> Program:
        self.declare()
        for name in list(self.let_decls):
            self.let_value(name, None)
        handlers = {A.ActionDecl: self.check_action, A.SourceDecl: self.check_source,
                    A.Rule: self.check_rule}
        for decl in self.m.decls:
            h = handlers.get(type(decl))
            if h:
                h(decl)
        self.check_routes()
        self.lint_route_credentials()
        # test blocks (SPEC §10); before the lints: a let a test uses is used
        if self.with_tests:
            if any(d.__class__ is A.TestBlock for d in self.m.decls):
                from .tests import check_tests  # (a file without tests does not load them)

                self.p.tests = check_tests(self, self.base_dir)
        else:  # their lets still count as used, so the warnings match `check`'s
            self.used_lets.update(_refs_in_tests(self.m.decls))
        # (an included file's tests are its own, checked with it; what they use is used)
        self.used_lets.update(_refs_in_tests(self.m.included_tests))
        if self.warnings or self.d.has_errors:  # (lints that only warn: see check())
            self.lint_identical()
            self.lint_loops()
            self.lint_unused()
        return self.p

    # ------------------------------------------------------------------ 1. declare
    def declare(self) -> None:
        seen: dict[str, tuple[str, Span]] = {}
        kinds = {A.Let: "let", A.Secret: "secret", A.ActionDecl: "action", A.Rule: "rule"}
        for decl in self.m.decls:
            kind = kinds.get(type(decl))
            if kind is None:
                if isinstance(decl, A.SourceDecl):
                    self.p.sources.append(decl)
                continue
            if isinstance(decl, A.Rule):
                name, span = decl.name, (decl.label.span if decl.label else decl.trigger.span)
            else:
                name, span = decl.name.value, decl.name.span
            key = f"{kind}:{name}"
            if key in seen or (self.imported and self._imported_has(kind, name)):
                first = seen.get(key)
                where = f" (first declared {_where(first[1], span, self.m.file, 'on')})" if first else " (in the file under test)"
                there = first[1] if first else self.imported_span(kind, name)
                self.d.error("TRG101", f"duplicate {kind} name '{name}'{where}", span,
                             f"rename one of them: {kind} names are unique in a file"
                             + (" and the files it includes" if self.m.included else ""),
                             [(there, f"{kind} '{name}' is first declared here")] if there else ())
                continue
            seen[key] = (kind, span)
            if isinstance(decl, A.Let):
                self.let_decls[name] = decl
            elif isinstance(decl, A.Secret):
                self.p.secrets[name] = decl
                if decl.kind == "env" and not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", decl.ref.value):
                    self.d.error("TRG208", f"'{decl.ref.value}' is not a valid environment variable name",
                                 decl.ref.span, "use letters, digits and '_'")
            elif isinstance(decl, A.ActionDecl):
                self.p.actions[name] = decl
            elif isinstance(decl, A.Rule):
                self.p.rule_asts[name] = decl

    def imported_span(self, kind: str, name: str) -> Span | None:
        """Where the file under test (a ``*_test.trg``'s companion) declares ``name``, as a
        span that carries that file; None when it has no declaration to point at (a let)."""
        imp = self.imported
        decl = {"secret": imp.secrets, "action": imp.actions, "rule": imp.rule_asts}.get(kind, {}).get(name)
        if decl is None:
            return None
        span = decl.label.span if isinstance(decl, A.Rule) and decl.label else (
            decl.trigger.span if isinstance(decl, A.Rule) else decl.name.span)
        return span if span.file else span.in_file(imp.file)

    def _imported_has(self, kind: str, name: str) -> bool:
        imp = self.imported
        return {"let": name in imp.lets, "secret": name in imp.secrets,
                "action": name in imp.actions, "rule": name in imp.rule_asts}[kind]

    # ------------------------------------------------------------------ 2. values
    def let_value(self, name: str, at: Span | None) -> Any:
        if name in self._let_cache:
            return self._let_cache[name]
        decl = self.let_decls.get(name)
        if decl is None:
            return self.p.lets.get(name)
        if name in self._resolving:
            self.d.error("TRG102", f"let '{name}' refers to itself", at or decl.name.span,
                         "a let's value cannot depend on itself")
            return None
        self._resolving.add(name)
        v = self.value(decl.value)
        self._resolving.discard(name)
        self._let_cache[name] = v
        self.p.lets[name] = v
        return v

    def value(self, v: Any) -> Any:
        """Resolve a literal or let reference to a Python value (None after an error)."""
        if isinstance(v, A.Str):
            return v.value
        if isinstance(v, A.Num):
            return v.value
        if isinstance(v, A.Bool):
            return v.value
        if isinstance(v, A.Duration):
            return Dur(v.ms / 1000.0)
        if isinstance(v, A.Regex):
            try:
                compile_regex(v.pattern, v.flags)
            except PatternError as e:
                self.d.error("TRG301", str(e), v.span, "regexes use Python's re syntax")
            return Regex(regex=v.pattern, flags=v.flags)
        if isinstance(v, A.ListLit):
            bare = [x for x in v.items if isinstance(x, A.Ref) and x.name not in self.let_decls
                    and x.name not in self.p.lets and x.name not in self.p.secrets]
            if len(bare) > 1 and len(bare) == len(v.items):  # a YAML list, [py, toml]: one mistake, one error
                words = ", ".join(f'"{x.name}"' for x in bare)
                self.d.error("TRG102", f"unknown names {', '.join(repr(x.name) for x in bare)}", v.span,
                             f"text goes in quotes: write [{words}]",
                             fix=Fix(f"Write `[{words}]`", (Edit(v.span, f"[{words}]"),), UNSAFE))
                return None
            return [self.value(x) for x in v.items]
        if isinstance(v, A.Ref):
            return self.ref(v)
        return None

    def ref(self, r: A.Ref) -> Any:
        if r.name in self.let_decls or r.name in self.p.lets:
            self.used_lets.add(r.name)
            return self.let_value(r.name, r.span)
        if r.name in self.p.secrets:
            self.used_secrets.add(r.name)
            self.d.error("TRG109", f"secret '{r.name}' cannot be used as a value", r.span,
                         "secrets only go where a secret is expected (secret=, token=, hmac=)")
            return None
        if f"let {r.name}" in self.m.unparsed:  # its declaration has a syntax error, reported
            return None
        hint, fix = typo(r.name, self.let_decls, r.span)
        if r.name == "null" and hint is None:  # JSON's word: the language has none (README: Testing your rules)
            hint = NO_NULL
        # most often text without its quotes (branch=main): say both ways to write it
        self.d.error("TRG102", f"unknown name '{r.name}'", r.span,
                     hint or f'text goes in quotes: "{r.name}"; a name is declared first: let {r.name} = VALUE',
                     fix=fix)
        return None

    def secret_ref(self, v: Any, where: str) -> str | None:
        if not isinstance(v, A.Ref):
            self.d.error("TRG208", f"{where} takes the name of a secret", getattr(v, "span", self.m.span),
                         'declare one with: secret NAME = env "VAR", then write ' + where.split()[0] + "NAME")
            return None
        if v.name in self.p.secrets:
            self.used_secrets.add(v.name)
            return v.name
        if f"secret {v.name}" in self.m.unparsed:  # its declaration has a syntax error, reported
            return None
        hint, fix = typo(v.name, self.p.secrets, v.span)
        self.d.error("TRG103", f"unknown secret '{v.name}'", v.span,
                     hint or f'declare it: secret {v.name} = env "VAR"', fix=fix)
        return None

    def positive_duration(self, v: Any, what: str) -> float | None:
        val = self.value(v)
        if val is None:
            return None
        if not isinstance(val, Dur):
            self.d.error("TRG204", f"{what} takes a duration, not {TYPE_WORDS.get(type_of(val), 'this')}",
                         v.span, "write a duration like 250ms, 30s, 5m, 2h or 1d")
            return None
        problem = duration_problem(val, what)
        if problem is not None:
            self.d.error("TRG304", problem[0], v.span, problem[1])
            return None
        return float(val)

    # ------------------------------------------------------------------ 3. actions
    def check_action(self, a: A.ActionDecl) -> None:
        params: dict[str, A.Param] = {}
        for p in a.params:
            if p.name.value in params:
                self.d.error("TRG408", f"parameter '{p.name.value}' is declared twice", p.name.span, None)
            params[p.name.value] = p
            if p.default is not None:
                self.value(p.default)
        body = a.body
        if isinstance(body, A.ShellBody) and "$" in body.script.value:
            self.lint_shell_inputs(a, body.script)
        if isinstance(body, A.ExecBody):
            self.lint_exec_strings(a, body, params)
            for item in body.argv:
                if isinstance(item, A.Ref) and item.name not in params:
                    hint, fix = typo(item.name, params, item.span)
                    declare = f"action {a.name.value}({', '.join([*params, item.name])})"
                    hint = hint or (
                        (write_hint(f'"{item.name}"', " (the command's words are strings), or declare it: " + declare)
                         if not params or item is body.argv[0] else "declare it: " + declare)
                        if item.name not in self.let_decls else "lets are not expanded in argv; pass it as a parameter")
                    self.d.error("TRG405", f"'{item.name}' is not a parameter of action '{a.name.value}'",
                                 item.span, hint, fix=fix)
        elif isinstance(body, A.HttpBody):
            if body.method.value.lower() != "post":
                self.d.error("TRG408", f"http actions send POST, not '{body.method.value}'", body.method.span,
                             'write: http post "URL"')
            if not re.match(r"https?://", body.url.value):
                self.d.error("TRG408", "the URL of an http action must start with http:// or https://",
                             body.url.span, None)
            elif "\0" in body.url.value:
                self.d.error("TRG408", "the URL of an http action holds a NUL byte, which no request can be sent to",
                             body.url.span, "remove the NUL byte (\\u{0}): a URL cannot hold one, "
                             "so every run would fail to send its request")
            for opt in body.options:
                if opt.name.value == "secret":
                    self.secret_ref(opt.value, "secret=")
                else:
                    hint, fix = typo(opt.name.value, ["secret"], opt.name.span)
                    self.d.error("TRG408", f"unknown http action option '{opt.name.value}'", opt.name.span,
                                 hint or "the only option is secret=NAME", fix=fix)
        seen_cwd = seen_stop = False
        for opt in a.options:
            if opt.kind == "stop":
                if seen_stop:
                    self.d.error("TRG408", "stop is given twice", opt.span, "say it once: stop SIGNAL grace DURATION")
                seen_stop = True
                if isinstance(body, A.HttpBody):
                    self.d.error("TRG408", "stop is for exec and shell actions: an http action has no process",
                                 opt.span, "leave it out; the rule's timeout bounds the request")
                if opt.signal is not None and stop_signal_name(opt.signal.value) is None:
                    real = signal_name(opt.signal.value) in signal.Signals.__members__
                    hint, fix = (None, None) if real else typo(opt.signal.value, STOP_SIGNALS, opt.signal.span)
                    self.d.error("TRG408", f"'{opt.signal.value}' is not a signal that stops a process",
                                 opt.signal.span, hint or "one of " + ", ".join(STOP_SIGNALS), fix=fix)
                if opt.grace is not None:
                    self.positive_duration(opt.grace, "stop grace")
            elif opt.kind == "cwd":
                if seen_cwd:
                    self.d.error("TRG408", "cwd is given twice", opt.span, None)
                seen_cwd = True
            elif opt.kind == "env" and opt.name and not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", opt.name.value):
                self.d.error("TRG408", f"'{opt.name.value}' is not a valid environment variable name",
                             opt.name.span, "use letters, digits and '_'")
        if not isinstance(body, A.HttpBody):
            self.no_nul_byte(a, params)
            self.distinct_input_variables(a)

    def distinct_input_variables(self, a: A.ActionDecl) -> None:
        """TRG408: two parameters of an exec or shell action with one ``TRG_INPUT_<NAME>``
        variable (``sha`` and ``Sha``, ``my-param`` and ``my_param``: the name is upper-cased
        and ``-`` written ``_``). Its process would get one value for both, the other lost,
        and a shell script reads its inputs only there."""
        first: dict[str, A.Param] = {}
        for p in a.params:
            var = input_env_name(p.name.value)
            other = first.setdefault(var, p)
            if other is not p and other.name.value != p.name.value:
                self.d.error("TRG408", f"parameters '{other.name.value}' and '{p.name.value}' are both {var} "
                             "in the run's environment: one would hide the other", p.name.span,
                             "rename one (the variable is the name upper-cased, with '-' written '_')")

    def no_nul_byte(self, a: A.ActionDecl, params: dict[str, A.Param]) -> None:
        """TRG408: a NUL byte (``\\u{0}``) in what an exec or shell action hands its process (an
        argument, the script, an ``env`` value, ``cwd``, a parameter's default, which is an
        argument or a ``TRG_INPUT_*`` value): the operating system ends those strings at
        a NUL, so every run would fail to start ("embedded null byte")."""
        body = a.body
        where: list[tuple[A.Str, str]] = []
        if isinstance(body, A.ExecBody):
            where += [(item, "the program" if i == 0 else "an exec argument")
                      for i, item in enumerate(body.argv) if isinstance(item, A.Str)]
        elif isinstance(body, A.ShellBody):
            where.append((body.script, "the shell script"))
        where += [(o.value, f"env {o.name.value}" if o.kind == "env" and o.name else o.kind)
                  for o in a.options if isinstance(o, A.ActionOption)]
        where += [(p.default, f"the default of parameter '{name}'") for name, p in params.items()
                  if isinstance(p.default, A.Str)]
        for lit, what in where:
            if "\0" in lit.value:
                self.nul_byte(what, lit.span, dropped=what.startswith("the default of"))

    def nul_byte(self, what: str, span: Span, dropped: bool = False) -> None:
        """``dropped``: the value is an input, which a run gets without its NUL bytes
        (:func:`~triggerlang.actions.without_nul`); anything else the process is given
        cannot start it."""
        self.d.error("TRG408", f"{what} holds a NUL byte, which no process can be given", span,
                     "remove the NUL byte (\\u{0}): arguments, environment variables and paths end at a NUL byte, "
                     + ("so every run would get this value without it" if dropped else
                        "so every run would fail to start"))

    def no_nul_byte_passed(self, args: tuple[A.Arg, ...], decl: A.ActionDecl, bound: dict) -> None:
        """TRG408: a rule passes an exec or shell action a value with a NUL byte (``with
        "a\\u{0}b"``, or a let that holds one). Every input is a ``TRG_INPUT_*`` value, and a
        string input of an exec action may be an argument too, so the run would get it without
        its NUL bytes (an event's value gets there so: the author's own is a mistake);
        a list's items are arguments only where the exec argv names the parameter (elsewhere
        the list is JSON text, where a NUL is ``\\u0000``). Placeholders are the event's,
        unknown until it comes; an http action sends its inputs as JSON and is left alone."""
        body = decl.body
        if isinstance(body, A.HttpBody):
            return
        params = [p.name.value for p in decl.params]
        in_argv = {x.name for x in body.argv if isinstance(x, A.Ref)} if isinstance(body, A.ExecBody) else set()
        for i, a in enumerate(args):
            name = a.name.value if a.name is not None else params[i] if i < len(params) else None
            value = (bound.get(name) or {}).get("value") if name is not None else None
            what = f"the value passed to parameter '{name}'"
            if isinstance(value, str) and "\0" in value:
                self.nul_byte(what, a.value.span, dropped=True)
            elif isinstance(value, list) and name in in_argv and any(isinstance(x, str) and "\0" in x for x in value):
                items = a.value.items if isinstance(a.value, A.ListLit) else ()
                at = next((x.span for x in items if isinstance(x, A.Str) and "\0" in x.value), a.value.span)
                self.nul_byte(what, at, dropped=True)

    # ------------------------------------------------------------------ 4. sources
    def check_source(self, s: A.SourceDecl) -> None:
        spec = C.get_source(s.kind.value)
        if spec is None or not spec.listener:
            listeners = [k for k, v in C.CATALOGUE.items() if v.listener]
            hint, fix = typo(s.kind.value, listeners, s.kind.span)
            self.d.error("TRG201", f"unknown source '{s.kind.value}'", s.kind.span,
                         hint or "sources: " + ", ".join(sorted(listeners)), fix=fix)
            return
        seen: set[str] = set()
        for opt in s.options:
            name = opt.name.value
            typ = spec.options.get(name)
            if name in seen:
                self.d.error("TRG208", f"option '{name}' is given twice", opt.name.span, None)
            seen.add(name)
            if typ is None:
                hint, fix = typo(name, spec.options, opt.name.span)
                if spec.name == "git" and name == "repo" and hint is None:  # a rule's condition: each repo is watched
                    v = self.quiet_value(opt.value)
                    hint = f"a repository is chosen by each rule: on git.push repo={json.dumps(v) if isinstance(v, str) else '...'} " \
                           "(the rules file's folder when no rule names one)"
                self.d.error("TRG208", f"source {spec.name} has no option '{name}'", opt.name.span,
                             hint or ("options: " + ", ".join(sorted(spec.options)) if spec.options
                                      else "it takes no options"), fix=fix)
                continue
            if typ == C.SECRET:
                self.secret_ref(opt.value, f"{name}=")
                continue
            val = self.value(opt.value)
            if val is None:
                continue
            ok = {C.STR: isinstance(val, str), C.INT: isinstance(val, int) and not isinstance(val, bool),
                  C.BOOL: isinstance(val, bool), C.LIST_STR: isinstance(val, list) and all(isinstance(x, str) for x in val),
                  C.DURATION: isinstance(val, Dur)}.get(typ, True)
            if not ok:
                path = _path_as_regex(opt.value) if name == "path" else None  # `path=/hooks/ims`
                self.d.error("TRG208", f"option '{name}' takes {TYPE_WORDS.get(typ, typ)}, not "
                             f"{TYPE_WORDS.get(type_of(val), 'this')}" + (path[0] if path else ""),
                             opt.value.span, path[1] if path else None)
            elif typ == C.DURATION and (problem := duration_problem(val, name)) is not None:
                self.d.error("TRG208", problem[0], opt.value.span, problem[1])  # (poll=0s was taken for no poll=)
            elif name == "port" and not (0 <= val <= 65535):
                self.d.error("TRG208", f"port {val} is out of range", opt.value.span, "use 0-65535")
            elif name in ("path",) and isinstance(val, str) and not val.startswith("/"):
                self.d.error("TRG208", "a route path must start with '/'", opt.value.span, write_hint(_string("/" + val)))
            elif name == "path" and val in defaults.BUILT_IN_PATHS:
                self.built_in_path("TRG208", val, opt.value.span)
            elif name == "path":
                self.glob_ok(val, opt.value.span)
            elif name == "ignore":
                for g in val:
                    self.glob_ok(g, opt.value.span)
            elif name == "allow":
                self.allow_ok(val, opt.value)
            elif name == "query":
                self.query_ok(s, val, opt)
            elif name == "header":
                self.header_ok(s, spec.name, opt)
        self.one_verification(s, spec.name)

    def built_in_path(self, code: str, path: str, span: Span) -> None:
        """A route (a source's ``path=``, TRG208; an http rule's, TRG206) on a path ``serve``
        answers itself (:data:`~triggerlang.defaults.BUILT_IN_PATHS`)."""
        self.d.error(code, f"{path} is built in: serve answers it (liveness, readiness, emit, metrics), "
                           "so no route can take it", span, f'choose another path, e.g. "/hooks{path}"')

    def header_ok(self, s: A.SourceDecl, kind: str, opt: Any) -> None:
        """``header="NAME"``: the header a ``token=`` or an ``hmac*=`` reads; beside
        ``standard=`` or alone it was never read, and the route checked its default header
        (or nothing) without a word."""
        prov = provider_of(kind)
        ways = HTTP_VERIFICATIONS if kind == "http" else (prov.verifications if prov is not None else ())
        given = {o.name.value for o in s.options}
        reads = [v.option for v in ways if v.custom_header or v.header_scheme]
        if not any(o in given for o in reads):
            self.d.error("TRG208", f"header= names the header that {', '.join(o + '=' for o in reads)} read: "
                                   f"without one of them it is never read", opt.name.span,
                         "add token=NAME (the header's value is the token) or hmac=NAME (it holds the signature), "
                         "or remove header=")

    def query_ok(self, s: A.SourceDecl, param: str, opt: Any) -> None:
        """``query="NAME"``: the query parameter a ``token=`` comes in (senders that can
        only be given a URL); alone it would protect nothing, so it needs ``token=``."""
        if not param:
            self.d.error("TRG208", "query= names the query parameter the token comes in, not an empty one",
                         opt.value.span, write_hint('"token"', ' (query="token" reads ?token=...)'))
        elif not any(o.name.value == "token" for o in s.options):
            self.d.error("TRG208", "query= names the query parameter a token= comes in: it needs token=",
                         opt.name.span, f'add token=NAME (with secret NAME = env "VAR"): the sender calls '
                                        f'...?{param}=<the secret>')

    def allow_ok(self, ranges: list[str], node: Any) -> None:
        """``allow=[...]``: addresses or CIDR ranges, at least one (an empty list would
        refuse every request); a bad entry is pointed at where the list is written out."""
        if not ranges:
            self.d.error("TRG208", "allow=[] refuses every request", node.span,
                         'list the addresses or ranges to let in (allow=["192.168.0.0/24"]), or remove the option')
        items = node.items if isinstance(node, A.ListLit) and len(node.items) == len(ranges) else None
        for i, r in enumerate(ranges):
            try:
                ip_range(r)
            except ValueError as e:
                self.d.error("TRG208", str(e), items[i].span if items else node.span,
                             'write an address ("10.0.0.7") or a range ("10.0.0.0/8")')

    def one_verification(self, s: A.SourceDecl, kind: str) -> None:
        """A route checks deliveries one way: the manifest takes the first verification
        option the declaration sets, so a second one would be ignored without a word (a
        route thought to check an HMAC that checks only a token)."""
        prov = provider_of(kind)
        ways = HTTP_VERIFICATIONS if kind == "http" else (prov.verifications if prov is not None else ())
        options = [v.option for v in ways]
        given = sorted((o for o in s.options if o.name.value in options), key=lambda o: options.index(o.name.value))
        for extra in given[1:]:
            self.d.error("TRG208", f"source {kind} checks a delivery one way: {given[0].name.value}= or "
                                   f"{extra.name.value}=, not both", extra.name.span,
                         f"keep one; with both, only {given[0].name.value}= would be checked")

    def glob_ok(self, g: str, span: Span) -> bool:
        if "[" not in g:
            return True  # only a character class can make a glob invalid (no regex compile here)
        try:
            compile_glob(g)
            return True
        except PatternError as e:
            self.d.error("TRG302", f"{e}: {g!r}", span, "close the character class with ']', or escape '[' as \\[")
            return False

    def github_glob_lint(self, g: str, c: A.Compare, typ: str | None = None, pats: list[Any] = ()) -> None:
        """TRG306: a filter glob in GitHub Actions' syntax, which means something else here
        (see :func:`github_syntax`): a rule moved from an ``on:`` block would silently
        match the wrong events, or none. ``typ`` is the field's type and ``pats`` every
        pattern of the value: on a list field (``files``) GitHub's ``['app/**',
        '!app/assets/**']`` asks one entry to pass both, which a second condition (on any
        entry) would not say, so the hint is one regex (once per list)."""
        what = github_syntax(g)
        if what is None:
            return
        field = c.field.dotted
        if what == "!" and typ == C.LIST_STR and c.op == "~" and all(isinstance(p, str) for p in pats):
            regex = github_filter_list_regex(pats)
            if regex is not None:
                if next(p for p in pats if p.startswith("!")) is g:
                    self.d.warning("TRG306", f"'!' at the start of {g!r} is a literal '!' here, not GitHub's "
                                             f"negation", c.value.span,
                                   f"one entry of {field} must pass the whole list, as in GitHub's filter: "
                                   f"write one regex, {field} ~ {regex}",
                                   fix=Fix(f"Replace the list with the regex `{regex}`",
                                           (Edit(c.value.span, regex),), UNSAFE))
                return
        if what == "!":
            rest = g[1:]
            self.d.warning("TRG306", f"'!' at the start of {g!r} is a literal '!' here, not GitHub's negation",
                           c.value.span, f'to leave out what matches, add the condition {field} !~ "{rest}" '
                                         f'(for a literal \'!\', write \\\\!)')
        else:
            regex = github_filter_regex(g)
            # a fix only where the glob is the whole value: in a list, the regex would replace them all
            fix = (Fix(f"Replace the glob with the regex `{regex}`", (Edit(c.value.span, regex),), UNSAFE)
                   if isinstance(c.value, A.Str) else None)
            self.d.warning("TRG306", f"'+' in {g!r} is a literal '+' in a glob, not GitHub's 'one or more'",
                           c.value.span, f"for GitHub's meaning, write the regex {regex}", fix=fix)

    # ------------------------------------------------------------------ 5. rules
    def check_rule(self, r: A.Rule) -> None:
        name = r.name
        trig = r.trigger
        if isinstance(trig, (A.Group, A.Absence)):
            from .correlation import check_correlation  # SPEC §11, in its own module

            self.p.rules.append(check_correlation(self, r))
            return
        source, event, types, schedule = None, None, None, None
        if isinstance(trig, A.EventTrigger):
            source, event, types = self.check_trigger(trig)
            if source == "schedule":
                # ticks are addressed to the rule whose every/cron made them: this could never fire
                self.d.error("TRG202", "a rule cannot listen to schedule ticks by name", trig.span,
                             'write the schedule itself: on every 15m ... or on cron "0 3 * * *" ...')
                source, event, types = None, None, None
        elif isinstance(trig, A.EveryTrigger):
            source, event, types = "schedule", "tick", ["tick"]
            words = english_interval(trig.interval.name) if isinstance(trig.interval, A.Ref) \
                and trig.interval.name not in self.let_decls and trig.interval.name not in self.p.lets else None
            secs = None if words else self.positive_duration(trig.interval, "every")
            if words:  # `every hour`, `every monday`: English, read as a name
                self.d.error("TRG304", f"an interval is a number and a unit: 'every {trig.interval.name}'",
                             Span(trig.span.start, trig.interval.span.end), words)
            if secs is not None:
                schedule = {"every": secs}
        elif isinstance(trig, A.CronTrigger):
            source, event, types = "schedule", "tick", ["tick"]
            schedule = self.check_cron(trig)
        if schedule is not None and trig.catch_up:  # (only when set: other manifests stay as they were)
            schedule["catch_up"] = True

        ctx = (source, event) if source else None
        filt = self.lower(r.filter, ctx) if r.filter is not None else None
        if r.filter is not None:
            self.lint_never(r, ctx)
            if source == "file":
                self.lint_file_values(r)
            self.lint_ref_values(r, source, event)
        route, methods = None, None
        if source == "http":
            route = self.http_route(r)
            if event in HTTP_METHODS:
                methods = [event.upper()]
            else:  # http.request: a rule pinned to methods (method in ["GET", "POST"]) opens only those
                methods = sorted(m for m in self.literal_values(r.filter, ("method",)) if m == m.upper()) or None
            self.lint_methods(r)
        if source == "schedule":
            impl = {"op": "=", "field": "rule", "value": name}
            filt = impl if filt is None else {"op": "and", "args": [impl, filt]}

        action = r.action.value
        args: dict[str, dict] = {}
        decl = self.p.actions.get(action)
        if decl is None and f"action {action}" in self.m.unparsed:  # its declaration has a syntax error
            for a in r.args:
                self.arg_value(a.value, ctx)
        elif decl is None:
            hint, fix = typo(action, self.p.actions, r.action.span)
            self.d.error("TRG104", f"unknown action '{action}'", r.action.span,
                         hint or f"declare it: action {action} = exec \"...\"", fix=fix)
            for a in r.args:
                self.arg_value(a.value, ctx)
        else:
            self.used_actions.add(action)
            args = self.bind_args(r.args, decl, ctx, r.action.span, f"action '{action}'")
            self.lint_event_program(r, decl, args)

        policies = self.check_policies(r, ctx, source)
        cr = CheckedRule(name=name, ast=r, source=source or "", event=event or "", types=types,
                         filter=filt, action=action, args=args, policies=policies, schedule=schedule,
                         route=route, methods=methods)
        if source == "git":
            cr.repos = self.literal_values(r.filter, ("repo",)) or ["."]
        if source == "file":
            cr.path_globs = self.literal_values(r.filter, ("path",), globs=True)
        self.p.rules.append(cr)

    def check_trigger(self, t: A.EventTrigger) -> tuple[str | None, str | None, list[str] | None]:
        src, ev = t.source.value, t.event.value
        try:
            problem = self._triggers[(src, ev)]
        except KeyError:  # (asked once per distinct trigger of the file)
            problem = self._triggers[(src, ev)] = trigger_problem(src, ev)
        if problem is not None:
            code, message, hint, guess = problem
            if code == "TRG201" and src.lower() in WEBHOOK_WORDS:  # `on webhook.push`: whose webhook?
                whole = Span(t.source.span.start, t.event.span.end)
                self.d.error(code, message, whole if t.source.span.file is None else whole.in_file(t.source.span.file),
                             webhook_sources(ev))
                return None, None, None
            if code == "TRG201":
                self.d.error(code, message, t.source.span, hint,
                             fix=guess and replace_fix(t.source.span, src, guess))
                return None, None, None
            if code == "TRG207":  # open sources: a warning, the rule still listens to that name (so
                # the rename changes what the rule matches: unsafe)
                self.d.warning(code, message, t.event.span, hint,
                               fix=guess and replace_fix(t.event.span, ev, guess, UNSAFE))
                return src, ev, [ev]
            self.d.error(code, message, t.event.span, hint, fix=guess and replace_fix(t.event.span, ev, guess))
            return None, None, None
        if ev == "*":
            return src, "*", None
        if src == "file" and ev == "changed":
            return src, ev, ["created", "modified", "deleted"]
        if src == "http" and ev == "request":
            return src, ev, None
        return src, ev, [ev]

    def check_cron(self, t: A.CronTrigger) -> dict | None:
        from .. import cron  # croniter is imported only by rules with cron

        expr = t.expr.value
        ok = True
        bad = cron.problem(expr)
        if bad is not None:
            self.d.error("TRG303", bad[0], t.expr.span, bad[1])  # (a "write X" hint: its fix)
            ok = False
        tz = t.tz.value if t.tz else None
        if tz is not None:
            import zoneinfo

            try:
                zoneinfo.ZoneInfo(tz)
            except (zoneinfo.ZoneInfoNotFoundError, ValueError):
                offset = offset_zone(tz)
                if offset is not None:  # `tz "UTC+2"`: not UTC, as the nearest name would say
                    zone, hint = offset
                    self.d.error("TRG305", f"unknown time zone '{tz}'", t.tz.span, hint,
                                 fix=zone and replace_fix(t.tz.span, json.dumps(tz), json.dumps(zone)))
                    return None
                zones = zoneinfo.available_timezones()  # (only on this error: ~600 names)
                # a city alone (`tz "Paris"`, `tz "New York"`): the zone named after it
                city = [z for z in zones if z.rsplit("/", 1)[-1].lower() == tz.strip().replace(" ", "_").lower()]
                guess = min(city) if len(city) == 1 else suggest(tz, zones)
                self.d.error("TRG305", f"unknown time zone '{tz}'", t.tz.span,
                             meant(guess) or 'use an IANA name such as "Europe/Paris" or "UTC"',
                             fix=guess and replace_fix(t.tz.span, json.dumps(tz), json.dumps(guess)))
                ok = False
        return {"cron": expr, "tz": tz or "UTC"} if ok else None

    # ---- filters
    def ftype(self, src: str, ev: str, parts: tuple[str, ...]) -> str | None:
        """:func:`~.catalogue.field_type`, remembered for this check (10,000 rules ask for
        the same few fields of the same few events)."""
        key = (src, ev, parts)
        try:
            return self._ftypes[key]
        except KeyError:
            t = self._ftypes[key] = C.field_type(src, ev, parts)
            return t

    def field_type(self, ctx, f: A.FieldPath) -> str | None:
        """The catalogue type of a field, reporting TRG203; None when unknown or unchecked."""
        if ctx is None:
            return None
        src, ev = ctx
        typ = self.ftype(src, ev, f.parts)
        if typ is None:
            spec = C.get_source(src)
            head = f.parts[0]
            if len(f.parts) > 1 and head in spec.raw:
                self.d.error("TRG203", f"'{f.dotted}' goes too deep: {head}.NAME is a string",
                             f.span, write_hint(f"{head}.{f.parts[1]}"))
            elif len(f.parts) > 1 and C.field_type(src, ev, (head,)) == C.LIST_STR and f.parts[1] == "*":
                self.d.error("TRG203", f"'{head}' is a list of strings: it has no members to read with '*'", f.span,
                             f"compare '{head}' itself: a condition on a list holds if it holds for any element")
            elif len(f.parts) > 1 and C.field_type(src, ev, (head,)) is not None:
                self.d.error("TRG203", f"field '{head}' has no members", f.span, f"compare '{head}' itself")
            else:
                names = C.field_names(src, ev)
                trig = f"{src}.{ev}" if ev != "*" else f"{src}.*"
                hint, fix = spec.field_hints.get(head) or raw_spelling_hint(f.parts, spec.raw), None
                if hint is None:
                    hint, fix = typo(head, names, name_span(f.span, head))
                if hint is None and head in ("payload", "headers", "query"):
                    hint = f"{trig} events carry no raw body; fields: " + ", ".join(names)
                self.d.error("TRG203", f"{trig} has no field '{head}'", f.span,
                             hint or ("fields: " + ", ".join(names)), fix=fix)
            return "?"
        return typ

    def lower(self, e: A.Expr, ctx) -> dict | None:
        if e.__class__ is A.Compare:
            return self.lower_compare(e, ctx)
        if isinstance(e, A.And):
            return {"op": "and", "args": [self.lower(x, ctx) for x in e.items]}
        if isinstance(e, A.Or):
            return {"op": "or", "args": [self.lower(x, ctx) for x in e.items]}
        if isinstance(e, A.Not):
            return {"op": "not", "arg": self.lower(e.expr, ctx)}
        if isinstance(e, A.Has):
            self.field_type(ctx, e.field)
            return {"op": "has", "field": e.field.dotted, "span": _sp(e.span)}
        return self.lower_compare(e, ctx)

    def lower_compare(self, c: A.Compare, ctx) -> dict:
        node = {"op": c.op, "field": c.field.dotted, "span": _sp(c.span)}
        if self.workflow_filter(c, ctx):
            return node
        typ = self.field_type(ctx, c.field)
        val = self.value(c.value)
        if c.op in ("~", "!~"):
            pats = val if isinstance(val, list) else [val]
            lowered = []
            for p in pats:
                if isinstance(p, str):
                    if self.glob_ok(p, c.value.span):
                        self.github_glob_lint(p, c, typ, pats)
                    lowered.append({"glob": p})
                elif isinstance(p, Regex):
                    lowered.append({"regex": p["regex"], "flags": p["flags"]})
                elif p is not None:
                    self.d.error("TRG204", f"'{c.op}' takes a glob string, a /regex/ or a list of them, "
                                 f"not {TYPE_WORDS.get(type_of(p), 'this')}", c.value.span,
                                 'write a glob like "src/**/*.py" or a regex like /^v\\d+/')
            node["value"] = lowered
        else:
            node["value"] = plain(val)
        if typ not in (None, "?") and val is not None:
            self.type_check(c, typ, val)
            self.wildcard_lint(c, typ, val)
        return node

    def wildcard_lint(self, c: A.Compare, typ: str, val: Any) -> None:
        """TRG307: a ``*`` in a string compared with ``= != in`` (``branch="release/*"``), where
        it is a literal ``*``: a user used to GitHub's ``branches:`` or a shell meant a glob,
        and the rule silently never matches (git forbids ``*`` in a ref name). A lone ``"*"``
        on an untyped payload field is left alone: some APIs send it as a value."""
        if c.op not in ("=", "!=", "in", "not in") or typ not in (C.STR, C.LIST_STR, C.ANY):
            return
        values = val if isinstance(val, list) else [val]
        globs = [v for v in values if isinstance(v, str) and "*" in v and not (typ == C.ANY and v == "*")]
        if not globs or not all(isinstance(v, str) for v in values):
            return  # (a string without a wildcard is a glob matching itself; a number is not a glob)
        from ..fmt import fmt_expr  # (only when a rule has one)

        match = replace(c, op="!~" if c.op == "!=" else "~")
        fixed = fmt_expr(A.Not(match) if c.op == "not in" else match)
        self.d.warning("TRG307", f"'{c.op}' compares exactly: '*' in {globs[0]!r} is a literal '*', not a wildcard",
                       c.span, f"to match the glob, write {fixed}",
                       fix=Fix(f"Match the glob: write `{fixed}`", (Edit(c.span, fixed),), UNSAFE))

    @staticmethod
    def regex_for_a_string(c: A.Compare, node: A.Regex, message: str) -> tuple[str, Span, str]:
        """(hint, span, message) for a string field compared with ``=`` or ``!=`` to a regex
        literal: ``path=/hooks/ims`` is a path read as the regex ``/hooks/`` with the flags
        i, m and s (the parser already tells ``path=/hooks/x``, whose flag is none one can
        write); any other is a regex meant with ``~``: the span is then the comparison,
        which the hint's text replaces."""
        from ..fmt import fmt_expr  # (only on this error)

        path = _path_as_regex(node) if c.field.parts[-1] == "path" else None
        if path is not None:
            return path[1], node.span, message + path[0]
        return write_hint(fmt_expr(replace(c, op="!~" if c.op == "!=" else "~")), before="to match the regex: "), \
            c.span, message

    def type_check(self, c: A.Compare, typ: str, val: Any) -> None:
        op = c.op
        if typ == C.ANY:
            return
        if typ == C.MAP:
            f = c.field.dotted
            self.d.error("TRG205", f"'{f}' is a map: compare one of its keys", c.field.span,
                         f"write {f}.NAME, or use: has {f}.NAME")
            return
        elem = C.STR if typ == C.LIST_STR else typ
        vt = type_of(val)
        want = _WANT.get(elem, ("str",))

        def mismatch(got: Any, node: Any):
            """TRG204 on ``node``, the literal (or name) whose value ``got`` has the wrong
            type; a hint that says what to write carries its fix when ``node`` is a literal
            (over a let's name the value to change is the let's)."""
            gw = TYPE_WORDS.get(type_of(got), "this")
            hint: str | None = None
            message = f"'{c.field.dotted}' is {TYPE_WORDS.get(typ, typ)}, compared with {gw}"
            if elem == C.STR and isinstance(got, (int, float)) and not isinstance(got, (bool, Dur)):
                hint = write_hint(f'"{node.text or got}"' if isinstance(node, A.Num) else f'"{got}"')
            elif elem in (C.INT, C.NUMBER) and isinstance(got, str) and re.fullmatch(r"-?\d+(\.\d+)?", got):
                hint = write_hint(got, " without quotes")
            elif elem == C.BOOL:
                word = _BOOL_WORDS.get(got.lower() if isinstance(got, str) else got if type_of(got) == "number" else None)
                hint = write_hint(word) if word else \
                    "write true or false"  # (two candidates: no fix)
            span = node.span
            if elem == C.STR and isinstance(got, Regex) and isinstance(node, A.Regex) and op in ("=", "!="):
                hint, span, message = self.regex_for_a_string(c, node, message)
            if isinstance(hint, WriteHint) and not isinstance(node, (A.Str, A.Num, A.Bool, A.Regex)):
                hint = str(hint)  # (a let's name: no fix, the value to change is the let's)
            self.d.error("TRG204", message, span, hint)

        if op == "=" or op == "!=":
            if vt == "list":
                self.d.error("TRG204", f"'{op}' compares one value, not a list", c.value.span,
                             f"use 'in' to test membership: {c.field.dotted} {'not in' if op == '!=' else 'in'} [...]")
            elif vt not in want:
                mismatch(val, c.value)
        elif op in ("in", "not in"):
            if vt != "list":
                self.d.error("TRG204", f"'{op}' needs a list", c.value.span,
                             f"write [{c.value.span and ''}...] or use '{'=' if op == 'in' else '!='}'")
            else:
                items = c.value.items if isinstance(c.value, A.ListLit) and len(c.value.items) == len(val) else None
                for i, x in enumerate(val):
                    if x is not None and type_of(x) not in want:  # None: already reported
                        mismatch(x, items[i] if items else c.value)
                        break
        elif op in ("~", "!~"):
            if elem not in (C.STR, C.TIME):
                self.d.error("TRG205", f"'{op}' matches strings, and '{c.field.dotted}' is {TYPE_WORDS.get(typ, typ)}",
                             c.op_span, "use = != < <= > >= or in" if elem != C.BOOL else "use = or !=")
        else:  # < <= > >=
            if elem not in (C.INT, C.NUMBER, C.DURATION, C.TIME):
                self.d.error("TRG205", f"'{op}' compares numbers, durations and times, and '{c.field.dotted}' is "
                             f"{TYPE_WORDS.get(typ, typ)}", c.op_span, "use = != ~ or in")
            elif vt not in want:
                mismatch(val, c.value)

    def literal_values(self, e: A.Expr | None, field_parts: tuple[str, ...], globs: bool = False) -> list[str]:
        """String values the top-level conjunction pins a field to (``=``, ``in``, and ``~`` if globs)."""
        out: list[str] = []
        for c in conjuncts(e):
            if isinstance(c, A.Compare) and c.field.parts == field_parts:
                ops = ("=", "in", "~") if globs else ("=", "in")
                if c.op in ops:
                    v = self.quiet_value(c.value)
                    for x in (v if isinstance(v, list) else [v]):
                        if isinstance(x, str):
                            out.append(x)
        return sorted(set(out))

    def quiet_value(self, v: Any) -> Any:
        if isinstance(v, A.Ref):
            return self.p.lets.get(v.name)
        if isinstance(v, A.ListLit):
            return [self.quiet_value(x) for x in v.items]
        return getattr(v, "value", None)

    def http_route(self, r: A.Rule) -> str | None:
        for c in conjuncts(r.filter):
            if isinstance(c, A.Compare) and c.field.parts == ("path",) and c.op in ("=", "~"):
                v = self.quiet_value(c.value)
                if isinstance(v, str):
                    if not v.startswith("/"):
                        self.d.error("TRG206", "a route path must start with '/'", c.value.span,
                                     write_hint(_string("/" + v)) if isinstance(c.value, A.Str) else f'write "/{v}"')
                        return None
                    if c.op == "=" and v in defaults.BUILT_IN_PATHS:
                        self.built_in_path("TRG206", v, c.value.span)
                        return None
                    return v
                if c.op == "=" and isinstance(c.value, A.Regex):  # `path=/hooks/ims`: TRG204 says to write it
                    return None
        if any(isinstance(c, A.Compare) and c.field.parts == ("id",) for c in conjuncts(r.filter)):
            return None  # (adnanh/webhook's id=: TRG203 gives the path to write, foreign_field)
        self.d.error("TRG206", "an HTTP rule must pin its route", r.trigger.span,
                     'add path="/hook" (or a glob: path ~ "/hooks/*") to the rule')
        return None

    # ---- calls
    def lint_exec_strings(self, a: A.ActionDecl, body: A.ExecBody, params) -> None:
        """TRG410 (a warning): strings an ``exec`` action passes as written that only a shell
        would have split or expanded. ``exec "make build"`` runs a program called
        ``make build``: warned when the string's first word has no ``/`` (a name looked up on
        PATH, which no program's name with a space is in practice) or a later word is a flag
        (``"./deploy.sh --prod"``); ``"/opt/My App/bin/x"`` is a path with a space and is left
        alone. The hint splits it, ``"make" "build"``, or, for a command with a shell's
        characters (``make && ./deploy.sh``), writes it as a ``shell`` action. And ``"$sha"``,
        ``"${sha}"``, ``"{{sha}}"`` naming one of the action's parameters: the parameter is
        written bare (``sha``)."""
        first = body.argv[0] if body.argv else None
        if isinstance(first, A.Str) and len(first.value.split()) > 1:
            words = first.value.split()
            if "/" not in words[0] or any(w.startswith("-") for w in words[1:]):
                if SHELL_CHARS & set(first.value):
                    if len(body.argv) == 1:
                        self.d.warning("TRG410", f"exec runs no shell: '{first.value}' is one program's name",
                                       body.span, write_hint(f"shell {json.dumps(first.value)}", " (a shell reads "
                                       "its pipes and operators; its inputs are $TRG_INPUT_NAME variables)"))
                else:
                    split = " ".join(json.dumps(w) for w in words)
                    self.d.warning("TRG410", f"exec runs no shell: '{first.value}' is one program's name",
                                   first.span, write_hint(split, " (the program and each argument, a string each)"))
        for item in body.argv:
            if isinstance(item, A.Str) and ("$" in item.value or "{{" in item.value):
                for m in re.finditer(SHELL_REF, item.value):
                    name = next(g for g in m.groups() if g)
                    if name not in params:
                        continue
                    why = f"'{m.group()}' is passed as written: exec runs no shell, and strings are not templates"
                    if m.group() == item.value:
                        self.d.warning("TRG410", why, item.span, write_hint(name, " (a parameter is written bare)"))
                    else:
                        self.d.warning("TRG410", why, item.span,
                                       f"pass {name} as an argument of its own, bare (a shell action reads it as "
                                       f"${input_env_name(name)})")
                    break

    def lint_shell_inputs(self, a: A.ActionDecl, script: A.Str) -> None:
        """TRG411 (a warning): what a shell action's script expands (check/shellscript.py)
        that a run never sets. A run gives a script no arguments (``/bin/sh -c SCRIPT``, as
        GitHub Actions runs a ``run:`` step) and its inputs only as ``$TRG_INPUT_<NAME>``, so

        - a positional parameter (``$1``, ``${2}``, ``$@``, ``$*``) is always empty. (Decided
          not to pass the parameters as arguments too: a script would then depend on their
          order, which a rule's named arguments do not show; argv is what ``exec`` is for.)
          ``$1`` gets the action's first parameter's variable to write, ``$@`` the only
          one's; with none to name, the hint says to declare one and pass it;
        - a parameter read by its bare name (``$sha``, ``${sha:-x}``, matched exactly: ``$SHA``
          is another variable) is whatever serve's environment has under that name, mostly
          nothing: the hint writes its variable; a name the script gives a value itself, or
          the action's ``env`` sets, is left alone (and ``my-sha`` is no shell name: ``$my-sha``
          is ``$my``, not looked for);
        - a ``let`` read by its name is not there either (lets are not expanded in a script,
          as in argv): the hint says to pass it as a parameter.

        A "write" hint carries its fix over what was written (unsafe, write_hint's: it
        changes what the script runs, and a guess at which input was meant for ``$1``). Each
        is reported where it is written when the string holds no escape (its characters are
        then the source's); otherwise once for each kind, on the whole string, with no fix.
        (Decided: one code for all three, the one mistake of reading an input otherwise than
        a run gives it, as TRG410 is one code for each way of writing a shell into exec.)"""
        from .shellscript import named_parameters, positional_parameters  # (only for a script with a $)

        params = [p.name.value for p in a.params]
        env = {o.name.value for o in a.options if isinstance(o, A.ActionOption) and o.kind == "env" and o.name}
        lets = set(self.let_decls) | set(self.p.lets)
        self._report_shell_inputs(script, [(m, self._positional_hint(a, params, script.value, m))
                                           for m in positional_parameters(script.value)],
                                  "always empty: a shell action's script is run with no arguments")
        self._report_shell_inputs(script, [(m, self._named_hint(a, params, m))
                                           for m in named_parameters(script.value, (set(params) | lets) - env)],
                                  "not set by a run: a shell action's script gets its inputs only as TRG_INPUT_ "
                                  "variables")

    def _report_shell_inputs(self, script: A.Str, found: list[tuple[re.Match, str]], why: str) -> None:
        """TRG411 at each of ``found`` (a match in the script's value, its hint): where it is
        written, or, in a string with an escape, once on the whole string, naming each."""
        if not found:
            return
        s = script.span
        skip = 1 + script.raw  # (the opening quote, and r)
        if s.start.line == s.end.line and s.end.offset - s.start.offset == len(script.value) + skip + 1:
            for m, hint in found:
                self.d.warning("TRG411", f"'{m.group()}' is {why}", name_span(s, m.group(), skip + m.start()), hint)
            return
        texts = list(dict.fromkeys(f"'{m.group()}'" for m, _ in found))
        named = f"{', '.join(texts[:-1])} and {texts[-1]} are" if len(texts) > 1 else f"{texts[0]} is"
        self.d.warning("TRG411", f"{named} {why}", s, f"for {found[0][0].group()}, {found[0][1]}")

    @staticmethod
    def _positional_hint(a: A.ActionDecl, params: list[str], value: str, m: re.Match) -> str:
        """What to write for the positional parameter ``m`` of ``a``'s script."""
        text, n = m.group(), m.group(1) or m.group(3)
        number = int(n) if n is not None and n.isdigit() else None  # (None: $@, $*)
        if number is not None and number <= len(params):
            var = input_env_name(params[number - 1])
            after = value[m.end():m.end() + 1]
            written = "${" + var + text[2 + len(n):] if text.startswith("${") else \
                "${" + var + "}" if re.fullmatch(r"[A-Za-z0-9_]", after) else "$" + var
            return write_hint(written, f" (parameter {number} of action {a.name.value}: a script reads its "
                                       "inputs as variables)")
        if number is None and params:
            names = " ".join("$" + input_env_name(p) for p in params)
            return write_hint(names, f" (the parameter of action {a.name.value}: a script reads its inputs as "
                                     "variables)") if len(params) == 1 else \
                f"a script reads its inputs as variables: {names}"
        name = "value" if "value" not in params else f"value{len(params) + 1}"
        return f"a script's inputs are its action's parameters, read as variables: declare one, action " \
               f"{a.name.value}({', '.join(params + [name])}) = shell \"... ${input_env_name(name)}\", and " \
               f"pass it from the rule: run {a.name.value} with <FIELD>"

    @staticmethod
    def _named_hint(a: A.ActionDecl, params: list[str], m: re.Match) -> str:
        """What to write for the parameter or let that ``m`` reads by its bare name in
        ``a``'s script: its variable, in the braces (and with the operator) written."""
        text, name = m.group(), m.group(1) or m.group(3)
        var = input_env_name(name)
        if name in params:
            written = "$" + var if m.group(1) else "${" + m.group(2) + var + text[2 + len(m.group(2)) + len(name):]
            return write_hint(written, f" (parameter {name} of action {a.name.value}, as a run sets it)")
        return f"lets are not expanded in a script; pass it as a parameter: action " \
               f"{a.name.value}({', '.join(params + [name])}) = shell \"... ${var}\", run {a.name.value} with " \
               f"{'..., ' if params else ''}{name}={name}"

    def lint_reference(self, v: A.Str, ctx) -> None:
        """TRG410 (a warning): a rule's argument ``"$sha"``, ``"${sha}"``, ``"{{sha}}"``,
        ``"${{ github.sha }}"``, ``"$(body.ref)"``, ``"{{ .Input.body.ref }}"`` or ``"<sha>"``
        naming a field of the event: the string is passed as written (there is no
        interpolation); the field is ``<sha>``, an argument of its own. ``"<b>"`` or
        ``"$(date)"``, which name no field, are left alone."""
        for m in re.finditer(SHELL_REF, v.value):
            path = foreign_path(next(g for g in m.groups() if g))
            if self.ftype(*ctx, tuple(path.split("."))) is None:
                continue
            why = f"'{m.group()}' is passed as written: strings are not templates"
            if m.group() == v.value:
                self.d.warning("TRG410", why, v.span, write_hint(f"<{path}>"))
            else:
                self.d.warning("TRG410", why, v.span, f"pass <{path}> as an argument of its own")
            return

    def arg_value(self, v: Any, ctx) -> dict:
        if v.__class__ is A.Str and ctx is not None and ("$" in v.value or "{{" in v.value or "<" in v.value):
            self.lint_reference(v, ctx)
        if isinstance(v, A.Placeholder):
            self.check_placeholder(v, ctx)
            return self.captured({"field": v.path.dotted}, v, ctx)
        if (isinstance(v, A.Ref) and ctx is not None and v.name not in self.let_decls and v.name not in self.p.lets
                and v.name not in self.p.secrets and self.ftype(*ctx, (v.name,)) is not None):
            # `with sha`: the event's field without its < > (a let of that name would be meant as written)
            self.d.error("TRG102", f"unknown name '{v.name}'", v.span,
                         f"did you mean '<{v.name}>'? a field of the event is written in < >",
                         fix=replace_fix(v.span, v.name, f"<{v.name}>"))
            return {"value": None}
        return {"value": plain(self.value(v))}

    def captured(self, binding: dict, ph: A.Placeholder, ctx=None) -> dict:
        """``binding`` with the regex of ``<field ~ /re/>`` (checked: valid, at most one
        group, on a field that holds strings), if the placeholder has one."""
        rx = ph.pattern
        if rx is None:
            return binding
        try:
            groups = compile_regex(rx.pattern, rx.flags).groups
        except PatternError as e:
            self.d.error("TRG301", str(e), rx.span, "regexes use Python's re syntax")
            return binding
        if groups > 1:
            self.d.error("TRG301", f"the regex of <{ph.path.dotted} ~ ...> has {groups} groups: the input is one of them",
                         rx.span, "keep one group, the part to pass, and make the others (?:...)")
            return binding
        typ = self.ftype(*ctx, ph.path.parts) if ctx is not None else None
        if typ in (C.INT, C.NUMBER, C.BOOL, C.DURATION, C.MAP):
            self.d.error("TRG205", f"'~' in a placeholder reads strings, and '{ph.path.dotted}' is "
                         f"{TYPE_WORDS.get(typ, typ)}", rx.span, f"pass the value itself: <{ph.path.dotted}>")
            return binding
        return {**binding, "regex": rx.pattern, **({"flags": rx.flags} if rx.flags else {})}

    def no_pattern(self, ph: A.Placeholder, where: str) -> None:
        """TRG204: ``<field ~ /re/>`` outside a with argument (a dedupe or correlation key)."""
        if ph.pattern is not None:
            hint = write_hint(f"<{ph.path.dotted}>")
            self.d.error("TRG204", f"{where} reads a field as it is: '~ /regex/' goes only in a with argument",
                         ph.pattern.span, hint, fix=write_fix(ph.span, hint))

    def check_placeholder(self, ph: A.Placeholder, ctx) -> None:
        if ctx is None:
            return
        src, ev = ctx
        if self.ftype(src, ev, ph.path.parts) is None:
            trig = f"{src}.{ev}"
            names = C.field_names(src, ev)
            head = ph.path.parts[0]
            hint, fix = (C.get_source(src).field_hints.get(head)
                         or raw_spelling_hint(ph.path.parts, C.get_source(src).raw, placeholder=True)), None
            context = context_field(ph.path.dotted)  # GitHub Actions' ${{ github.sha }}
            if hint is None and context != ph.path.dotted and self.ftype(src, ev, tuple(context.split("."))):
                hint, fix = f"write <{context}>", replace_fix(ph.span, f"<{ph.path.dotted}>", f"<{context}>")
            if hint is None:
                hint, fix = typo(head, names, name_span(ph.path.span, head))
            self.d.error("TRG403", f"{trig} events have no field '{ph.path.dotted}'", ph.span,
                         hint or "fields: " + ", ".join(names), fix=fix)

    def bind_args(self, args: tuple[A.Arg, ...], decl: A.ActionDecl, ctx, at: Span, what: str,
                  value_of=None) -> dict:
        """Bind a call's ARGS (``value_of`` resolves one argument; default: a placeholder
        is a field of the ``ctx`` event) and fill in the parameters' defaults."""
        params = [p.name.value for p in decl.params]
        bound = self.match_args(
            args, params, what, value_of or (lambda v: self.arg_value(v, ctx)),
            lambda: f"{what} has parameters ({', '.join(params)})" if params else f"{what} takes no arguments",
            dup_at_name=True)
        for p in decl.params:
            n = p.name.value
            if n not in bound:
                if p.default is None:
                    self.d.error("TRG404", f"missing argument '{n}' for {what}", at,
                                 f"add: with {n}=<field> (or give the parameter a default)")
                else:
                    bound[n] = {"value": plain(self.quiet_default(p.default))}
        self.no_nul_byte_passed(args, decl, bound)
        return {k: bound[k] for k in params if k in bound}

    def lint_event_program(self, r: A.Rule, decl: A.ActionDecl, bound: dict) -> None:
        """TRG409: the rule fills the parameter an ``exec`` action runs as its program with a
        field of the event, and its filter does not pin that field to values it lists
        (``=``, ``in``): whoever sends the event chooses what runs. Correlation rules are
        not looked at (their placeholders name members)."""
        body = decl.body
        if not isinstance(body, A.ExecBody) or not body.argv or not isinstance(body.argv[0], A.Ref):
            return
        param = body.argv[0].name
        field = (bound.get(param) or {}).get("field")
        if field is None or self.literal_values(r.filter, tuple(field.split("."))):
            return
        params = [p.name.value for p in decl.params]
        for i, a in enumerate(r.args):
            name = a.name.value if a.name is not None else params[i] if i < len(params) else None
            if name == param:
                self.d.warning("TRG409", f"the event chooses the program: action '{decl.name.value}' runs its "
                               f"parameter '{param}', filled here with <{field}>", a.value.span,
                               f"run a fixed program and pass <{field}> as an argument, or pin it in the "
                               f"filter: {field} in [\"...\"]")
                return

    def match_args(self, args, params: list[str], what: str, value_of, too_many_hint,
                   dup_at_name: bool = False, related: tuple = ()) -> dict:
        """Bind positional and named ARGS to ``params`` (TRG401/402); the one definition
        used by rule calls and by ``expect RULE with ARGS``. ``value_of(value)`` resolves
        one argument, or returns :data:`SKIP` when it already reported a problem.
        ``related``: where the parameters are declared, for the diagnostics' notes."""
        bound: dict[str, Any] = {}
        named_seen = False
        for i, a in enumerate(args):
            val = value_of(a.value)
            if val is SKIP:
                continue
            if a.name is None:
                if named_seen:
                    self.d.error("TRG401", "a positional argument cannot follow a named one", a.span,
                                 "put positional arguments first", related)
                    continue
                if i >= len(params):
                    self.d.error("TRG401", f"too many arguments: {what} takes {len(params)}", a.span, too_many_hint(), related)
                    continue
                name = params[i]
            else:
                named_seen = True
                name = a.name.value
                if name not in params:
                    hint, fix = typo(name, params, a.name.span)
                    self.d.error("TRG402", f"{what} has no parameter '{name}'", a.name.span,
                                 hint or ("parameters: " + ", ".join(params) if params else "it takes no arguments"),
                                 related, fix)
                    continue
            if name in bound and a.name is not None:  # (positional names repeat only if params do: TRG408)
                self.d.error("TRG401", f"parameter '{name}' is given twice", a.name.span if dup_at_name else a.span,
                             None, related)
                continue
            bound[name] = val
        return bound

    def quiet_default(self, v: Any) -> Any:
        return literal_value(v, self.p.lets)

    # ---- policies
    def check_policies(self, r: A.Rule, ctx, source: str | None) -> dict:
        pol: dict[str, Any] = _POLICIES.copy()
        if source == "file":
            pol["debounce"] = defaults.FILE_DEBOUNCE_S
        seen: dict[str, Span] = {}
        for p in r.policies:
            if p.kind in seen:
                self.d.error("TRG406", f"'{p.kind}' is given twice (first on line {seen[p.kind].start.line})",
                             p.span, "each policy appears at most once per rule")
                continue
            seen[p.kind] = p.span
            if p.kind == "debounce":
                pol["debounce"] = self.positive_duration(p.value, "debounce")
            elif p.kind == "timeout":
                t = self.positive_duration(p.value, "timeout")
                if t is not None:
                    pol["timeout"] = t
            elif p.kind == "busy":
                mode = p.value.value
                if mode not in BUSY_MODES:
                    hint, fix = typo(mode, BUSY_MODES, p.value.span)
                    other = BUSY_WORDS.get(mode.lower())
                    if other is not None:  # another tool's word for one of the modes (unsafe: a guess)
                        hint, fix = write_hint(other[0], f" ({other[1]})"), None
                    self.d.error("TRG407", f"busy takes queue, skip, restart, parallel or signal, not '{mode}'",
                                 p.value.span, hint, fix=fix)
                elif mode == "signal":
                    sig = self.busy_signal(r, p)
                    if sig is not None:
                        pol["busy"], pol["busy_signal"] = mode, sig
                elif p.signal is not None:
                    self.d.error("TRG407", f"busy {mode} takes no signal", p.signal.span,
                                 restart_signal_hint(p.signal.value, r.action.value) if mode == "restart" else
                                 f"to signal the running run instead: busy signal {p.signal.value}")
                else:
                    pol["busy"] = mode
            elif p.kind == "retry":
                words = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten")
                spelt = p.value.name.lower() if isinstance(p.value, A.Ref) and p.value.name not in self.let_decls \
                    and p.value.name not in self.p.lets and p.value.name.lower() in words else None
                n = None if spelt else self.value(p.value)
                if spelt:  # `retry three`
                    self.d.error("TRG407", f"retry takes a number, not '{p.value.name}'", p.value.span,
                                 write_hint(str(words.index(spelt))))
                elif n is None and isinstance(p.value, A.Ref):
                    pass  # (an unknown name: its TRG102 is the one diagnostic)
                elif not isinstance(n, int) or isinstance(n, bool) or n < 0:
                    self.d.error("TRG407", "retry takes a whole number of re-runs (0 or more)", p.value.span, None)
                else:
                    if n > 100:
                        self.d.error("TRG407", f"retry {n} is more than 100 re-runs", p.value.span, "use at most 100")
                    pol["retry"] = n
                if isinstance(p.extra, A.Ref) and p.extra.name.lower() in BACKOFF_KINDS and p.extra.name not in self.let_decls:
                    self.d.error("TRG407", f"backoff takes the first wait, not '{p.extra.name}'", p.extra.span,
                                 write_hint("5s", " (the wait doubles after each failure: 5s, 10s, 20s...)"))
                elif p.extra is not None:
                    b = self.positive_duration(p.extra, "backoff")
                    if b is not None:
                        pol["backoff"] = b
            elif p.kind == "dedupe":
                self.check_placeholder(p.key, ctx)
                self.no_pattern(p.key, "dedupe")
                d = self.positive_duration(p.extra, "dedupe ... for")
                pol["dedupe"] = {"field": p.key.path.dotted, "for": d}
        return pol

    def busy_signal(self, r: A.Rule, p: A.Policy) -> str | None:
        """The signal of ``busy signal SIGNAL`` (TRG407 when there is none, when it is no
        signal a program can trap, or when the rule's action has no process to send it to)."""
        decl = self.p.actions.get(r.action.value)
        if decl is not None and isinstance(decl.body, A.HttpBody):
            self.d.error("TRG407", "busy signal is for exec and shell actions: an http action has no process",
                         p.span, "write busy queue, skip, restart or parallel")
            return None
        if p.signal is None:
            self.d.error("TRG407", "busy signal needs the signal to send", p.value.span,
                         "name it: busy signal SIGHUP (or SIGUSR1, SIGUSR2...)")
            return None
        text = p.signal.value
        sig = busy_signal_name(text)
        if sig is not None:
            return sig
        name = signal_name(text)
        if name in BUSY_UNTRAPPABLE:
            hint = write_hint("busy restart", before="to stop the running run and start a new one, ")
            self.d.error("TRG407", f"{name} cannot be trapped: it would {'kill' if name == 'SIGKILL' else 'freeze'} "
                         "the running run, not signal it", p.signal.span, hint, fix=write_fix(p.span, hint))
            return None
        # a misspelling is matched as spelled out (`hupp` is SIGHUPP, one letter from SIGHUP)
        guess = None if name in signal.Signals.__members__ else suggest(name, BUSY_SIGNALS)
        self.d.error("TRG407", f"'{text}' is not a signal busy signal sends", p.signal.span,
                     meant(guess) or "one of " + ", ".join(BUSY_SIGNALS),
                     fix=guess and replace_fix(p.signal.span, text, guess))
        return None

    # ------------------------------------------------------------------ routes and sources
    def check_routes(self) -> None:
        """Webhook routes with no secret (TRG209) and conflicting declarations (TRG210)."""
        by_kind: dict[str, list[A.SourceDecl]] = {}
        for s in self.p.sources:
            by_kind.setdefault(s.kind.value, []).append(s)
        for kind in ("file",):
            for s in by_kind.get(kind, [])[1:]:
                self.d.error("TRG210", f"source {kind} is declared twice", s.kind.span, "merge the two declarations")
        listeners = self.p.listeners()   # ordinary rules and correlation members
        used_kinds = {r.source for r in listeners}
        declared = [p for p in (provider_of(k) for k in sorted(by_kind, key=provider_order)) if p is not None]
        paths: dict[str, A.SourceDecl] = {}  # one route, one webhook source, whatever its kind
        for prov in declared:
            for s in by_kind.get(prov.name, []):
                p = next((self.quiet_value(o.value) for o in s.options if o.name.value == "path"), prov.route)
                if p in paths:
                    self.d.error("TRG210", f"route {p} is declared twice", s.kind.span, "give each source its own path=")
                paths[p] = s
        ports = {}
        for s in self.p.sources:
            for o in s.options:
                if o.name.value in ("host", "port"):
                    v = self.quiet_value(o.value)
                    if o.name.value in ports and ports[o.name.value][0] != v:
                        first = ports[o.name.value][1]
                        self.d.error("TRG210", f"{o.name.value} is set to two different values", o.value.span,
                                     f"the HTTP server listens on one {o.name.value}: first set "
                                     f"{_where(first, o.value.span, self.m.file, 'on')}",
                                     [(first, f"{o.name.value} is first set here")])
                    ports.setdefault(o.name.value, (v, o.span))
        # unprotected webhook routes
        active = active_providers(used_kinds, set(by_kind))
        for prov in active:
            protect = tuple(v.option for v in prov.verifications)
            if not protect:
                continue
            decls = by_kind.get(prov.name, [])
            if not decls and f"source {prov.name}" not in self.m.unparsed:  # (one that did not parse: reported)
                first = next((r for r in listeners if r.source == prov.name), None)
                span = first.ast.trigger.span if first else self.m.span
                self.d.warning("TRG209", f"the {prov.name} route {prov.route} has no secret: anyone who can reach it can trigger runs",
                               span, f"declare: source {prov.name} {protect[0]}=NAME (with secret NAME = env \"VAR\")")
            for s in decls:
                if not any(o.name.value in protect for o in s.options):
                    self.d.warning("TRG209", f"source {prov.name} has no {_either(protect)}: anyone who can reach it can trigger runs",
                                   s.kind.span, f"add {protect[0]}=NAME")
        http_rules = [r for r in listeners if r.source == "http" and r.route]
        webhook_paths = {}
        for prov in active:
            for s in by_kind.get(prov.name) or [None]:
                p = next((self.quiet_value(o.value) for o in s.options if o.name.value == "path"), None) if s else None
                webhook_paths[p or prov.route] = prov.name
        for r in http_rules:
            if r.route in webhook_paths:
                self.d.error("TRG210", f"route {r.route} is already the {webhook_paths[r.route]} webhook route",
                             r.ast.trigger.span, f"pin this rule to another path, or listen to {webhook_paths[r.route]}.EVENT")
        decls = by_kind.get("http", [])
        for r in http_rules if "source http" not in self.m.unparsed else ():  # (one that did not parse: reported)
            protect = tuple(v.option for v in HTTP_VERIFICATIONS)
            if not any(self.http_decl_covers(s, r.route) and any(o.name.value in protect for o in s.options) for s in decls):
                self.d.warning("TRG209", f"route {r.route} has no {_either(protect)}: anyone who can reach it can trigger runs",
                               r.ast.trigger.span, f'declare: source http path="{r.route}" token=NAME')

    def http_decl_covers(self, s: A.SourceDecl, route: str) -> bool:
        return http_decl_covers(next((self.quiet_value(o.value) for o in s.options if o.name.value == "path"), None), route)

    # ------------------------------------------------------------------ 6. lints
    def lint_never(self, r: A.Rule, ctx, what: str | None = None) -> None:
        """Contradictory equality constraints on one scalar field in the top-level conjunction."""
        compares = [c for c in conjuncts(r.filter) if c.__class__ is A.Compare]
        if len({c.field.parts for c in compares}) == len(compares) and all(c.op != "in" for c in compares):
            return  # (no field constrained twice, and no `in` list that could be empty: nothing to find)
        eq: dict[str, tuple[Any, A.Compare]] = {}
        allowed: dict[str, set] = {}
        ne: dict[str, list[tuple[Any, A.Compare]]] = {}
        for c in conjuncts(r.filter):
            if not isinstance(c, A.Compare):
                continue
            if ctx is not None:
                t = self.ftype(ctx[0], ctx[1], c.field.parts)
                if t in (C.LIST_STR, C.ANY, None):
                    continue  # any-element semantics (an untyped payload value may be a list too)
            f = c.field.dotted
            v = self.quiet_value(c.value)
            key = _eq_key
            if c.op == "=" and not isinstance(v, list) and v is not None:
                if f in eq and key(eq[f][0]) != key(v):
                    self.never(r, c, f"'{f}' cannot be both {eq[f][0]!r} and {v!r}", what)
                    return
                eq.setdefault(f, (v, c))
            elif c.op == "in" and isinstance(v, list):
                s = {key(x) for x in v if not isinstance(x, list)}
                allowed[f] = allowed[f] & s if f in allowed else s
                if not allowed[f]:
                    self.never(r, c, f"no value of '{f}' is in every list", what)
                    return
            elif c.op == "!=" and not isinstance(v, list):
                ne.setdefault(f, []).append((v, c))
        for f, (v, c) in eq.items():
            k = (type(v).__name__, v)
            if f in allowed and k not in allowed[f]:
                self.never(r, c, f"'{f}' = {v!r} is not in the list it must also be in", what)
                return
            for nv, nc in ne.get(f, []):
                if (type(nv).__name__, nv) == k:
                    self.never(r, nc, f"'{f}' cannot be both = and != {v!r}", what)
                    return

    def never(self, r: A.Rule, c: A.Compare, why: str, what: str | None = None, hint: str | None = None) -> None:
        if what is None:   # (a correlation member that can never match does not make its rule so)
            self.never_matching.add(r.name)
        self.d.error("TRG501", (what or f"rule '{r.name}'") + f" can never match: {why}", c.span,
                     hint or "conditions side by side must all hold; use 'or' or 'in [...]' for alternatives")

    def lint_redacted(self, r: A.Rule, what: str | None = None) -> None:
        """TRG501: a condition on the value of a credential header (``Authorization``,
        ``Cookie``, ``X-Gitlab-Token``, ``X-Api-Key``, a signature header) or query
        parameter (``query.access_token``, ``query.api_key``): the HTTP source replaces it
        by ``<redacted>`` before any rule sees it, so no comparison ever sees the value
        sent. ``headers.x-api-key="..."`` (or ``in``) side by side with the rest never held,
        and its deliveries were answered 202 with no run: "can never match". Any other
        comparison (``!=``, ``~``, ``!~``, ``not in``, ``<``..., or an ``=`` inside ``or``
        or ``not``) compares ``<redacted>`` too: ``!=`` holds whenever the credential is
        sent, a glob or regex holds for every value or none, so it is reported as well
        (compared with ``"<redacted>"`` itself it is a test of what rules see, and is
        fine; ``has`` tests that one was sent). The route checks it, in constant time:
        ``token=NAME header="X-Api-Key"``, ``token=NAME query="api_key"``. ``what`` names a
        correlation's member (``member http.post as a of rule 'x'``): its condition is checked
        as a rule's, and the rule is not one that can never match."""
        named = what or f"rule '{r.name}'"
        top = {id(c) for c in conjuncts(r.filter)}
        for c in _compares(r.filter):
            if len(c.field.parts) != 2:
                continue
            where, name = c.field.parts[0], c.field.parts[1].lower()
            if not (where == "headers" and name in ALWAYS_REDACTED or where == "query" and name in CREDENTIAL_PARAMS):
                continue
            v = self.quiet_value(c.value)
            if REDACTED in (v if isinstance(v, list) else [v]):
                continue
            if where == "query":
                field, how = f"the {c.field.parts[1]} query parameter", f'token=NAME query="{c.field.parts[1]}"'
            else:
                field = f"the {name} header"
                if name == "authorization":
                    how = "token=NAME (Authorization: Bearer <token>)"
                elif name in CREDENTIAL_HEADERS and name not in ("proxy-authorization", "cookie"):
                    how = f'token=NAME header="{_header_case(name)}"'
                else:
                    how = "its source's secret, token or hmac"
            hint = f"check it on the route instead: {how}"
            if c.op in ("=", "in") and id(c) in top:
                self.never(r, c, f"{field} is a credential, redacted before rules see it", what, hint)
            else:
                self.d.error("TRG501", f"{named} compares {field} with '{c.op}', but it is a credential, "
                             f"redacted before rules see it: the condition only ever sees \"{REDACTED}\"", c.span,
                             f"{hint} (to test that it was sent: has {c.field.dotted})")
            return

    def lint_route_credentials(self) -> None:
        """TRG501: a condition on a route's own credential, which ``lint_redacted`` does not
        know by its name: with ``source http path="/hooks/x" token=k header="X-My-Key"``,
        ``headers.x-my-key="k"`` compares ``<redacted>`` (the route checks the header, then
        redacts it), and with ``query="tk"``, ``query.tk`` and the body's top-level
        ``payload.tk`` are left out of the event; a webhook source's ``header=``
        (``source ci token=k header="X-Ci-Key"``) is redacted too. Such a rule passed check
        and never matched (``=``), or matched every delivery (``!=``). The route already
        answers 401 without the right value: the hint is to drop the condition.

        The routes are the ones the manifest will have (:mod:`triggerlang.sources.routes`,
        as serve reads them). A rule is reported only when every route its events can come
        through hides the field: an http rule's own route (``path="/hooks/x"``, whose check
        is the most specific ``source http`` covering it), and for a glob (``path ~
        "/hooks/*"``) also the more specific routes other rules pin under it, which take
        their deliveries first and may check another way; a webhook rule's every route of
        its provider (several declarations, several paths), and for ``ci.completed`` the
        routes of the providers that derive one. Where one of them lets the value through,
        the condition can hold for its deliveries, and it is left alone."""
        rules = [r for r in self.p.listeners() if any(  # (a correlation's members too)
            len(c.field.parts) == 2 and c.field.parts[0] in _REQUEST_PARTS for c in _compares(r.ast.filter, has=True))]
        if not rules:  # (the routes are read only for a file with such a condition)
            return
        routes = self.http_routes()
        exact = {rt.path: rt for rt in routes if rt.kind == "http" and rt.regex is None}
        globs = [rt for rt in routes if rt.kind == "http" and rt.regex is not None]
        webhooks = [rt for rt in routes if rt.kind != "http"]
        for r in rules:
            if r.source != "http":
                through = [rt for rt in webhooks if rt.kind == r.source
                           or r.source == CI_SOURCE and bool(provider_of(rt.kind).ci_events)]
            elif not r.route:
                through = []
            elif is_literal(r.route):
                through = [exact[r.route]] if r.route in exact else []
            else:
                through = [rt for rt in [*exact.values(), *globs] if rt.path == r.route or http_decl_covers(r.route, rt.path)]
            if not (through and self.lint_withheld(r.ast, through, r.member)):
                self.lint_redacted(r.ast, r.member)

    def http_routes(self) -> list[Any]:
        """The routes the manifest will give the HTTP source, as serve reads them
        (:class:`~triggerlang.sources.routes.HttpRoute`, without their secrets). Imported
        here: only a file with a condition on a request's headers or query reads them, and
        ``check``'s start-up is measured (bench/README.md)."""
        from ..sources.routes import parse_routes

        section = HTTP.section(SectionInput.of(self.p, self.quiet_value))
        try:
            return parse_routes(section or {}, None)
        except ValueError:  # a route the checker reports otherwise (an unclosed '[' in a glob: TRG302)
            return []

    def lint_withheld(self, r: A.Rule, through: list[Any], what: str | None = None) -> bool:
        """TRG501 on the first comparison of ``r`` whose field every route of ``through``
        (:class:`~triggerlang.sources.routes.HttpRoute`) checks
        (:meth:`~triggerlang.sources.routes.HttpRoute.checks`: its own credential, or its
        scheme's header, ``Authorization`` for ``token=``), in the route's own words, where
        ``lint_redacted``'s would say to check it on the route, which it does; whether
        there was one. ``what`` names a correlation's member, as ``lint_redacted``'s."""
        named = what or f"rule '{r.name}'"
        top = {id(c) for c in conjuncts(r.filter)}
        for c in _compares(r.filter, has=True):
            if len(c.field.parts) != 2 or c.field.parts[0] not in _REQUEST_PARTS:
                continue
            where, name = c.field.parts
            has = isinstance(c, A.Has)
            # has query.tk never holds where the route takes its token from ?tk=: the
            # parameter is left out of the event. (has headers.x-my-key holds for every
            # delivery the route accepts, and has payload.tk for a body whose tk is not a
            # string, which the route leaves in: neither is a condition that cannot hold.)
            if has and where != "query":
                continue
            if where == "headers":
                name = name.lower()
                v = self.quiet_value(c.value)
                if REDACTED in (v if isinstance(v, list) else [v]):  # what rules do see: a test of it is fine
                    continue
            if not all(rt.checks(where, name) for rt in through):
                continue
            rt = through[0]
            if where == "headers":
                field = f"the {name} header"
                why = f"is the credential route {rt.path} checks, redacted before rules see it"
                sees, shown = f'only ever sees "{REDACTED}"', f"{_header_case(name)} header"
            else:
                field = f"the {name} query parameter" if where == "query" else f"the body's top-level {name} field"
                why = f'is the token route {rt.path} checks (query="{name}"), left out of the event'
                sees, shown = "never sees it", f"?{name}="
            hint = f"the route answers 401 to a delivery without the right {shown}: drop the condition"
            if (has or c.op in ("=", "in")) and id(c) in top:
                self.never(r, c, f"{field} {why}", what, hint)  # type: ignore[arg-type]
            elif has:
                self.d.error("TRG501", f"{named} tests has {c.field.dotted}, which never holds: {field} {why}",
                             c.span, hint)
            else:
                self.d.error("TRG501", f"{named} compares {field} with '{c.op}', but it {why}: the condition "
                             f"{sees}", c.span, hint)
            return True
        return False

    def lint_file_values(self, r: A.Rule) -> None:
        """TRG501: a file rule whose ``ext`` has its dot (``ext=".py"``: an event's ``ext``
        is ``py``) or whose ``path`` starts with ``./`` or ``/`` (watchexec's ``-w ./src``:
        an event's path is relative to the source's root, ``src/a.py``). Either never held,
        and the rule never ran, without a word."""
        for c in conjuncts(r.filter):
            if not (isinstance(c, A.Compare) and c.field.parts in (("ext",), ("path",)) and c.op in ("=", "in", "~")):
                continue
            v = self.quiet_value(c.value)
            values = v if isinstance(v, list) else [v]
            if not values or not all(isinstance(x, str) for x in values):
                continue
            field = c.field.parts[0]
            if field == "ext" and c.op != "~" and all(x.startswith(".") and len(x) > 1 for x in values):
                why = f"an event's ext has no dot, never {', '.join(repr(x) for x in values)}"
                fixed = [x[1:] for x in values]
            elif field == "path" and all(x.startswith("./") for x in values):
                why = f"an event's path is relative to the root, without './': never {', '.join(repr(x) for x in values)}"
                fixed = [x[2:] for x in values]
            elif field == "path" and all(x.startswith("/") for x in values):
                self.never(r, c, "an event's path is relative to the source's root, never absolute",
                           hint='paths are relative to the root: source file root="/DIR", then path ~ "src/**"')
                return
            else:
                continue
            items = ", ".join(json.dumps(x) for x in fixed)
            text = f"{field}={items}" if c.op == "=" else f"{field} {c.op} " + (items if c.op == "~" and
                                                                                  c.value.__class__ is not A.ListLit
                                                                                  else f"[{items}]")
            self.never(r, c, why, hint=write_hint(text))
            return

    def lint_ref_values(self, r: A.Rule, source: str | None, event: str | None) -> None:
        """TRG501: ``ref="main"`` where an event's ref is whole (``refs/heads/main``: GitHub's
        push payload, a local repository's ref), and ``branch="refs/heads/main"`` (``branch``,
        ``tag``, a pull request's ``base`` and ``head`` are short names). Neither ever held,
        and the rule never ran, without a word; the hint is the short name's field."""
        whole = source in REF_EVENTS and (REF_EVENTS[source] is None or event in REF_EVENTS[source])
        for c in conjuncts(r.filter):
            if not (isinstance(c, A.Compare) and len(c.field.parts) == 1 and c.op in ("=", "in", "~")):
                continue
            field = c.field.parts[0]
            if field not in ("ref", "branch", "tag", "base", "head"):
                continue
            v = self.quiet_value(c.value)
            values = v if isinstance(v, list) else [v]
            if not values or not all(isinstance(x, str) and x for x in values):
                continue
            if field == "ref" and whole and not any(x.startswith(("refs/", "*", "?", "[")) for x in values):
                fixed = "branch", values
                why = f"an event's ref is whole, refs/heads/{values[0]} or refs/tags/{values[0]}: never " + \
                    ", ".join(map(repr, values))
            elif field != "ref" and all(x.startswith(("refs/heads/", "refs/tags/")) for x in values):
                short = [x.split("/", 2)[2] for x in values]
                tags = {x.startswith("refs/tags/") for x in values}
                if len(tags) != 1 or not all(short) or (field in ("base", "head") and tags == {True}):
                    continue
                fixed = ("tag" if tags == {True} else field if field != "tag" else "branch"), short
                why = f"an event's {field} is a short name, {short[0]}: never {', '.join(map(repr, values))}"
            else:
                continue
            items = ", ".join(json.dumps(x) for x in fixed[1])
            text = f"{fixed[0]}={items}" if c.op == "=" else \
                f"{fixed[0]} {c.op} " + (f"[{items}]" if c.value.__class__ is A.ListLit else items)
            tag = f" (for a tag: {text.replace('branch', 'tag', 1)})" if field == "ref" else ""
            self.never(r, c, why, hint=write_hint(text, tag))
            return

    def workflow_filter(self, c: A.Compare, ctx) -> bool:
        """TRG203 for a GitHub Actions filter's name used as a field (``types=["opened"]``,
        ``paths="src/**"``, ``branches=["main"]``), with the condition that says it; True
        when it was one. Its fix is unsafe, as write_hint's: the condition is another tool's
        filter read as ours (GitHub's globs, a file glob without '/' taken as a name in any
        folder), a guess at what was meant."""
        key = c.field.parts[0]
        target = WORKFLOW_FIELDS.get(key)
        if ctx is not None and ctx[0] == "file" and key in FILE_GLOB_WORDS:
            target = "path"
        other = self.foreign_field(c, ctx)
        if other is not None:
            text, why = other
            self.d.error("TRG203", f"{ctx[0]}.{ctx[1]} has no field '{key}'", c.span, write_hint(text, f" ({why})"))
            return True
        if ctx is None or target is None or len(c.field.parts) != 1 or c.op not in ("=", "in", "~"):
            return False
        src, ev = ctx
        if self.ftype(src, ev, (key,)) is not None or self.ftype(src, ev, (target,)) is None:
            return False
        v = self.quiet_value(c.value)
        items = v if isinstance(v, list) else [v]
        if not items or not all(isinstance(x, str) for x in items):
            return False
        if target == "path":  # a glob without '/' is a name in any folder, as watchexec's -f
            globs = [x[2:] if x.startswith("./") else x if "/" in x else "**/" + x for x in items]
            text = workflow_condition("path", globs)
            why = "a file rule's glob is a condition on its path"
        else:
            text, why = workflow_condition(key, items), f"GitHub Actions' {key}: filter"
        # (unsafe, write_hint's: another tool's filter read as ours is a guess at what was meant)
        self.d.error("TRG203", f"{src}.{ev} has no field '{key}'", c.span, write_hint(text, f" ({why})"))
        return True

    def foreign_field(self, c: A.Compare, ctx) -> tuple[str, str] | None:
        """(text, why) for another tool's setting written as a condition: systemd's
        ``Persistent=true`` on a schedule (``catch up``), adnanh/webhook's hook ``id="x"``
        on an http rule (its route, ``path="/hooks/x"``)."""
        if ctx is None or len(c.field.parts) != 1 or c.op != "=" or self.ftype(ctx[0], ctx[1], c.field.parts):
            return None
        key, v = c.field.parts[0], self.quiet_value(c.value)
        if ctx[0] == "schedule" and key.lower() == "persistent" and v is True:
            return "catch up", "systemd's Persistent=true: a tick missed while serve was down is made up at its start"
        if ctx[0] == "http" and key == "id" and isinstance(v, str) and re.fullmatch(r"[A-Za-z0-9_.\-]+", v):
            return f'path="/hooks/{v}"', "adnanh/webhook's hook id: the route it answers on"
        return None

    def lint_methods(self, r: A.Rule) -> None:
        """TRG501: an http rule pinned to a method written in lower case (``method="post"``,
        adnanh/webhook's ``http-methods`` are not case-sensitive): an event's method is
        upper case, so the rule never matches, and its requests were answered 202 with no run."""
        for c in conjuncts(r.filter):
            if not (isinstance(c, A.Compare) and c.field.parts == ("method",) and c.op in ("=", "in")):
                continue
            v = self.quiet_value(c.value)
            values = [x for x in (v if isinstance(v, list) else [v]) if isinstance(x, str)]
            if values and all(x != x.upper() for x in values):
                fixed = f'method="{values[0].upper()}"' if c.op == "=" else \
                    "method in [" + ", ".join(f'"{x.upper()}"' for x in values) + "]"
                self.never(r, c, f"an HTTP method is upper case, never {', '.join(repr(x) for x in values)}",
                           hint=write_hint(fixed))
                return

    def lint_identical(self) -> None:
        """TRG502: a rule whose trigger, filter, call and policies equal an earlier rule's
        (spans and labels aside). Rules are first grouped by a cheap sketch that equal rules
        share (the trigger, the action, and each top-level condition's field, operator and
        string); only rules that share a sketch are compared in full, so 10,000 distinct
        rules cost one sketch each, not a walk of every tree."""
        groups: dict[Any, list[CheckedRule]] = {}
        for cr in self.p.rules:
            groups.setdefault(_sketch(cr.ast), []).append(cr)
        dupes: dict[int, CheckedRule] = {}  # id(rule) -> the earlier rule it repeats
        for group in groups.values():
            if len(group) < 2:
                continue
            seen: dict[Any, CheckedRule] = {}
            for cr in group:
                a = cr.ast
                key = (a.trigger, a.filter, a.action, a.args, a.policies)
                try:
                    hash(key)
                except TypeError:  # pragma: no cover
                    continue
                if key in seen:
                    dupes[id(cr)] = seen[key]
                else:
                    seen[key] = cr
        for cr in self.p.rules if dupes else ():
            first = dupes.get(id(cr))
            if first is not None:
                a = cr.ast
                self.d.warning("TRG502", f"rule '{cr.name}' is identical to rule '{first.name}' ({_where(first.ast.span, a.span, self.m.file)}): "
                               "every event runs the action twice", a.label.span if a.label else a.trigger.span,
                               "remove one of them")

    def lint_loops(self) -> None:
        """``run.*`` chains that can come back to a rule they started from (TRG503).

        A run of rule P ends in a ``run.completed`` or ``run.failed`` event whose ``rule``
        is P and ``action`` P's action. A rule C on ``run.*`` *can be reached* from P when
        its filter can hold for such an event: the conditions on ``rule`` and ``action``
        (``=``, ``!=``, ``in``, ``not in``, ``~``, ``!~``, ``has``) are decided with the
        matcher's own semantics, every other condition (``status``, ``exit_code``,
        ``inputs.x``...) is taken as possibly true and possibly false, and ``and``/``or``/
        ``not`` combine the two possibilities (Kleene logic). So the lint is conservative:
        it warns unless the filters on ``rule``/``action`` rule the cycle out. Only
        ``run.*`` rules can be in a cycle (only they are started by runs). Each rule on a
        cycle has a shortest one through it (breadth first); each distinct cycle gets one
        warning, at the trigger of its first rule in the file, with the cycle written from
        there: ``b → c → b`` (a self-loop: ``a → a``).
        """
        consumers = [r for r in self.p.rules if r.source == "run" and r.name not in self.never_matching]
        if not consumers:
            return
        from ..compile.matcher import compile_predicate

        def may(node: dict | None):
            """``known -> (the filter may hold, it may fail)`` for an event whose ``known``
            fields (rule, action) are set, compiled once per rule."""
            if node is None:
                return lambda known: (True, False)
            op = node["op"]
            if op in ("and", "or"):
                parts = [may(x) for x in node["args"]]
                if op == "and":
                    def both(known: dict) -> tuple[bool, bool]:
                        got = [f(known) for f in parts]
                        return all(t for t, _ in got), any(f for _, f in got)
                    return both

                def either(known: dict) -> tuple[bool, bool]:
                    got = [f(known) for f in parts]
                    return any(t for t, _ in got), all(f for _, f in got)
                return either
            if op == "not":
                inner = may(node["arg"])
                return lambda known: inner(known)[::-1]
            if node["field"] in ("rule", "action") and (node["op"] == "has" or node.get("value") is not None):
                # (a value that is None is an unknown name, TRG102: undecided, as other fields)
                pred = compile_predicate(node)
                return lambda known: (True, False) if pred(known) else (False, True)
            return lambda known: (True, True)

        def named(node: dict | None) -> set[str] | None:
            """The rule names a top-level ``rule=``/``rule in`` condition allows (None: any):
            with many run.* rules, each one's runs are then tested against few filters."""
            for c in (node["args"] if node and node["op"] == "and" else [node] if node else []):
                if c.get("field") == "rule" and c["op"] in ("=", "in"):
                    values = c["value"] if c["op"] == "in" else [c["value"]]
                    if not isinstance(values, list):  # `rule in NAME` with an unknown NAME (TRG102)
                        return None
                    return {v for v in values if isinstance(v, str)}
            return None

        index: dict[str, list[int]] = {}
        anyone: list[int] = []
        tests = []
        for i, c in enumerate(consumers):
            tests.append((c.name, may(c.filter)))
            names = named(c.filter)
            for n in names if names is not None else ():
                index.setdefault(n, []).append(i)
            if names is None:
                anyone.append(i)
        edges: dict[str, list[str]] = {}
        for producer in consumers:
            known = {"rule": producer.name, "action": producer.action}
            candidates = sorted(anyone + index.get(producer.name, []))
            edges[producer.name] = [tests[i][0] for i in candidates if tests[i][1](known)[0]]
        order = {r.name: i for i, r in enumerate(consumers)}
        by_name = {r.name: r for r in consumers}
        reported: set[tuple[str, ...]] = set()
        for start in consumers:
            cycle = _shortest_cycle(start.name, edges)
            if cycle is None:
                continue
            i = min(range(len(cycle) - 1), key=lambda k: order[cycle[k]])  # from its first rule in the file
            cycle = cycle[i:-1] + cycle[:i + 1]
            if tuple(cycle) in reported:
                continue
            reported.add(tuple(cycle))
            rule = by_name[cycle[0]]
            if len(cycle) == 2:
                self.d.warning("TRG503", f"rule '{rule.name}' can trigger itself: its own runs end in the "
                               f"run.* events it listens to ({rule.name} → {rule.name})", rule.ast.trigger.span,
                               f'name the rules it follows (rule="build"), or add rule != "{rule.name}"')
            else:
                self.d.warning("TRG503", "rules can trigger each other in a loop: " + " → ".join(cycle),
                               rule.ast.trigger.span,
                               "change their rule= filters so that one of them does not follow the other's runs")

    def lint_unused(self) -> None:
        """TRG105-108, for the declarations of the file being checked only: those an include
        read are the included file's business (C warns of no unused declaration in a
        header), and a file without rules of its own (nor a declaration lost to a syntax
        error, which may have been one) is such a file, a library of declarations for the
        files that include it (``common.trg``), checked alone."""
        if not self.m.unparsed and not any(d.__class__ is A.Rule and d.span.file is None for d in self.m.decls):
            return
        # a declaration dropped for a syntax error may be what uses a name: no second report
        unparsed = self.m.unparsed
        for name, decl in self.let_decls.items():
            if decl.name.span.file is not None:
                continue
            if name not in self.used_lets and name not in unparsed:
                self.d.warning("TRG105", f"let '{name}' is never used", decl.name.span, "remove it, or use it in a rule",
                               fix=_removal(f"let '{name}'", decl.span))
        for decl in self.m.decls:
            if decl.__class__ not in (A.Secret, A.ActionDecl) or decl.name.value in unparsed or decl.span.file:
                continue
            if isinstance(decl, A.Secret) and decl.name.value not in self.used_secrets and self.p.secrets.get(decl.name.value) is decl:
                self.d.warning("TRG106", f"secret '{decl.name.value}' is never used", decl.name.span,
                               "use it in a source (secret=, token=, hmac=) or an http action, or remove it",
                               fix=_removal(f"secret '{decl.name.value}'", decl.span))
            if isinstance(decl, A.ActionDecl) and decl.name.value not in self.used_actions and self.p.actions.get(decl.name.value) is decl:
                self.d.warning("TRG107", f"action '{decl.name.value}' is never run", decl.name.span,
                               "run it from a rule, or remove it", fix=_removal(f"action '{decl.name.value}'", decl.span))
        used_sources = {r.source for r in self.p.listeners()}
        serving = {p.name for p in active_providers(used_sources, {s.kind.value for s in self.p.sources})}
        for s in self.p.sources:
            k = s.kind.value
            if C.get_source(k) is None or s.span.file is not None:
                continue
            used = k in used_sources or k in serving or k in unparsed
            if not used:
                self.d.warning("TRG108", f"source {k} is declared but no rule listens to it", s.kind.span,
                               f"add a rule on {k}.EVENT, or remove the declaration",
                               fix=_removal(f"the declaration of source {k}", s.span))


def _removal(what: str, span: Span) -> Fix:
    """TRG105-108's fix: the declaration's lines removed (unsafe: it deletes what the user
    wrote, and a source declared for no rule may be meant for rules to come)."""
    lines = Span(span.start._replace(column=1), span.end._replace(line=span.end.line + 1, column=1))
    return Fix(f"Remove {what}", (Edit(lines.in_file(span.file), ""),), UNSAFE)


WEBHOOK_WORDS = ("webhook", "webhooks", "hook", "hooks", "web")
"""What a rule names as its source for a webhook, without saying whose."""


def webhook_sources(ev: str) -> WriteHint:
    """The hint for ``on webhook.EV``: the providers that send EV, then ``http`` for the
    webhooks of anyone else."""
    providers = ("github", "gitlab", "gitea", "bitbucket")
    found = [f"{p}.{ev}" for p in providers
             if ev in C.get_source(p).events or ev in C.get_source(p).known_events]
    http = f'http.{ev if ev in HTTP_METHODS else "post"} path="/hooks/NAME"'
    if not found:
        return write_hint(http, " (any sender's webhook, on the route of a source http)")
    return write_hint(found[0], " (" + (f"or {', '.join(found[1:])}: " if found[1:] else "")
                      + f"the provider that sends it), or {http} for any other sender")


def offset_zone(tz: str) -> tuple[str | None, str] | None:
    """``(zone, hint)`` for a UTC offset written as a zone, ``"UTC+2"``, ``"GMT+2"``,
    ``"+02:00"``, else None. A whole hour is the Etc zone of that fixed offset, whose sign is
    POSIX's, the other way round (UTC+2 is ``Etc/GMT-2``): "GMT+2" is read as UTC+2, as a
    clock's settings and Windows write it, not as POSIX's TZ=GMT+2 (two hours behind). An
    offset of a half or three quarters of an hour has no Etc zone: the hint names a place."""
    m = re.fullmatch(r"(?:UTC|GMT|Z)?[ \t]*([+-])[ \t]*([0-9]{1,2})(?::?([0-9]{2}))?", tz.strip(), re.IGNORECASE)
    if m is None or (m.group(3) or "00") not in ("00", "30", "45"):
        return None
    sign, hours, minutes = m.group(1), int(m.group(2)), m.group(3) or "00"
    written = f"UTC{sign}{hours:02d}:{minutes}"
    if minutes != "00":
        place = HALF_HOUR_ZONES.get(f"{sign}{hours:02d}:{minutes}")
        return None, (f'no Etc zone has a part of an hour: name a place at {written}'
                      + (f', such as "{place}"' if place else ' ("Area/City")'))
    if hours == 0:
        return "UTC", 'write "UTC"'
    if (sign == "-" and hours > 12) or (sign == "+" and hours > 14):
        return None, f"no place is at {written}: the offsets run from UTC-12:00 to UTC+14:00"
    zone = f"Etc/GMT{'-' if sign == '+' else '+'}{hours}"
    return zone, (f'write "{zone}" (a fixed {written}; the Etc names\' sign is POSIX\'s, the other way round), '
                  'or a place\'s zone for its daylight saving time, such as "Europe/Berlin"')


def trigger_problem(src: str, ev: str) -> tuple[str, str, str | None, str | None] | None:
    """``(code, message, hint, guess)`` when ``SRC.EV`` is not an event the catalogue knows,
    else None (``SRC.*`` included): TRG201 an unknown source, TRG202 an event a closed source
    does not have, TRG207 a name an open source (a webhook provider) is not known to send;
    ``guess`` is the name the hint's "did you mean" offers (the source's for TRG201, else the
    event's), if it does. The checker reports these on triggers; ``emit`` and ``match`` warn
    with them."""
    spec = C.get_source(src)
    if spec is None:
        guess = suggest(src, C.CATALOGUE)
        return ("TRG201", f"unknown source '{src}'",
                meant(guess) or "sources: " + ", ".join(sorted(C.CATALOGUE)), guess)
    if ev == "*" or ev in spec.events:
        return None
    if spec.open_events:
        known = spec.known_events
        if ev in known:
            return None
        guess = suggest(ev, known)
        return ("TRG207", f"'{ev}' is not a known {src} event",
                meant(guess) or f"check the {src} webhook documentation for the name",
                guess)
    guess = suggest(ev, spec.events)
    return ("TRG202", f"{src} has no event '{ev}'",
            meant(guess) or f"{src} events: " + ", ".join(sorted(spec.events)), guess)


_REQUEST_PARTS = ("headers", "query", "payload")
"""Where a request's credential can be: a condition on ``headers.NAME``, ``query.NAME`` or
``payload.NAME`` may compare one (TRG501)."""


def _header_case(name: str) -> str:
    """A lower-case header name as it is usually written: ``x-my-key`` is ``X-My-Key``."""
    return "-".join(p.capitalize() for p in name.split("-"))


NO_NULL = ("there is no null value: to a rule a null field is a missing one (has is false, = fails, != holds); "
           "test it with not has FIELD, and leave the field out of a test's given (a from file may hold null)")
"""TRG102's hint for ``null`` written as a value. The language has no null: a missing field
and a JSON null are the same to every condition, placeholder and correlation key (SPEC
§3), so a ``given`` without the field tests what a null one would, and ``not has FIELD``
is the filter; a ``null`` keyword would be a second way to write both, and a new reserved
word in the grammar."""


def _compares(e: A.Expr | None, has: bool = False) -> list[Any]:
    """Every comparison of a filter, inside ``and``, ``or`` and ``not`` too, in order (and
    every ``has``, with ``has=True``)."""
    if e is None or isinstance(e, A.Has) and not has:
        return []
    if isinstance(e, A.Not):
        return _compares(e.expr, has)
    if isinstance(e, (A.And, A.Or)):
        return [c for x in e.items for c in _compares(x, has)]
    return [e]


def no_such_event(src: str, ev: str) -> str | None:
    """Why no event ``SRC.EV`` can be sent (``emit``, ``POST /events``), else None: ``SRC.*``
    is a trigger, no event's type, and an event a source with a closed set of events does
    not have (``git.pushh``) is one no rule can name (``check`` refuses a rule on it,
    TRG202), with the did-you-mean. A webhook provider's unknown event, or an unknown
    source, is not refused here (providers add events; a server may have a plug-in)."""
    if ev == "*":
        return f"{src}.*: a trigger for any {src} event, not an event's type (name the event)"
    problem = trigger_problem(src, ev)
    if problem is not None and problem[0] == "TRG202":
        return f"{src}.{ev}: {problem[1]} ({problem[2]})"
    return None


def _shortest_cycle(start: str, edges: dict[str, list[str]]) -> list[str] | None:
    """The shortest path ``start → ... → start`` in ``edges`` (breadth first), or None."""
    from collections import deque

    came_from: dict[str, str] = {}
    queue = deque([start])
    while queue:
        node = queue.popleft()
        for nxt in edges.get(node, ()):
            if nxt == start:
                path = [node]
                while path[-1] != start:
                    path.append(came_from[path[-1]])
                return [start, *reversed(path[:-1]), start] if node != start else [start, start]
            if nxt not in came_from:
                came_from[nxt] = node
                queue.append(nxt)
    return None


def _sketch(r: A.Rule) -> tuple:
    """Something equal rules have in common (only what rule equality compares), and distinct
    rules rarely do: the buckets of :meth:`Checker.lint_identical`. The trigger, the action,
    and the strings the top-level conditions compare with."""
    t, f = r.trigger, r.filter
    if f.__class__ is A.And:
        strings = tuple([c.value.value for c in f.items if c.__class__ is A.Compare and c.value.__class__ is A.Str])
    elif f.__class__ is A.Compare and f.value.__class__ is A.Str:
        strings = (f.value.value,)
    else:
        strings = f.__class__
    trigger = (t.source.value, t.event.value) if t.__class__ is A.EventTrigger else t.__class__
    return trigger, r.action.value, strings


def _sp(s: Span) -> list[int]:
    (line, column, _), (end_line, end_column, _) = s
    return [line, column, end_line, end_column]


def _eq_key(x: Any) -> Any:
    """What :meth:`Checker.lint_never` compares values by: type and value (``1`` is not ``true``)."""
    return (type(x).__name__, x) if not isinstance(x, list) else None


def _where(span: Span, here: Span, main: str, on: str = "") -> str:
    """``line N`` (``on line N`` with ``on``), or ``FILE:N`` (``in FILE:N``) when ``span``
    is in another file than ``here`` (a declaration read by an include); ``span.file`` is
    None in the file being checked, ``main``."""
    if span.file == here.file:
        return f"{on} line {span.start.line}".lstrip()
    return f"{'in ' if on else ''}{span.file or main}:{span.start.line}"


def _refs_in_tests(decls) -> set[str]:
    """Names referenced by values inside test blocks (a let used only by tests is used)."""
    out: set[str] = set()

    def walk(v: Any) -> None:
        if isinstance(v, A.Ref):
            out.add(v.name)
        elif isinstance(v, A.ListLit):
            for x in v.items:
                walk(x)

    for d in decls:
        if isinstance(d, A.TestBlock):
            for g in d.givens:
                for f in g.fields:
                    walk(f.value)
            for s in d.steps:
                if isinstance(s, A.Wait):
                    walk(s.duration)
            for e in d.expects:
                for a in e.args:
                    walk(a.value)
                for v in e.key:
                    walk(v)
    return out


def check(module: A.Module, diags: Diagnostics, imported: Program | None = None,
          base_dir: str | None = None, tests: bool = True, warnings: bool = True) -> Program:
    """Check a parsed module; problems go to ``diags``. Never raises for bad input.

    ``base_dir`` is the rules file's folder (default: the working directory), against which
    the payload files of test blocks are read. ``tests=False`` skips test blocks (serve).
    ``warnings=False`` is for a caller that shows diagnostics only when there are errors
    (``match``, ``compile``): the lints that can only warn (TRG105-108 unused names, TRG502
    identical rules, TRG503 ``run.*`` loops) then run only when an error was found, so the
    diagnostics are complete whenever they are shown, and nobody waits for warnings that
    are never printed. The program is the same either way.
    """
    return Checker(module, diags, imported, base_dir, tests, warnings).run()
