"""Completion from the text before the cursor, in the declaration under it.

A declaration being typed rarely parses, so completion does not parse it: it cuts the
declaration's text before the cursor into tokens (strings, regexes, placeholders, names,
operators; the lexical rules of SPEC §1) and reads the context off the last few, as a
person would: after ``on`` come sources, after ``on git.`` git's events, in a filter the
trigger's typed fields, after an operator values, after ``run`` actions, after ``with``
the action's parameters and ``<placeholders>``, then policies; in a test, after ``given``
triggers and fields, after ``expect`` rule names. Names come from the latest analysis
(:class:`~triggerlang.editor.document.Names`: the document's, its companion's and those
of the files they include); no check runs, so the cost is that of
the current declaration, whatever the size of the file.

A trigger written in a form this module does not know (a correlation, ``all(...)``) is
read through its nearest ``SOURCE.EVENT``: the fields offered are that member's.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from ..actions import BUSY_SIGNALS, STOP_SIGNALS
from ..check import catalogue as C
from ..check.checker import BUSY_MODES
from ..syntax.parser import split_comment
from . import knowledge as K
from .document import Names, declaration_at, signature

MAX_ITEMS = 300
"""More matches than this make the result incomplete: the client asks again as the user types."""

_TOKEN = re.compile(r"""
    (?P<comment>\#[^\n]*)
  | (?P<raw>r"[^"\n]*"?)
  | (?P<string>"(?:\\.|[^"\\\n])*"?)
  | (?P<regex>/(?:\\.|[^/\\\n])+/[ims]*)
  | (?P<placeholder><[A-Za-z_][A-Za-z0-9_.\-]*>)
  | (?P<duration>[0-9]+(?:\.[0-9]+)?(?:ms|s|m|h|d)(?![A-Za-z0-9_]))
  | (?P<number>-?[0-9]+(?:\.[0-9]+)?)
  | (?P<name>[A-Za-z_][A-Za-z0-9_\-]*)
  | (?P<op>!=|!~|<=|>=|[=~<>])
  | (?P<punct>[.,:()\[\]*])
  | (?P<space>\s+)
  | (?P<other>.)
""", re.VERBOSE)

_PARTIAL_PLACEHOLDER = re.compile(r"<([A-Za-z_][A-Za-z0-9_.\-]*)?$")
_PARTIAL_WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_\-]*$")
_OPS = {"=", "!=", "~", "!~", "<", "<=", ">", ">="}
POLICIES = ("debounce", "busy", "timeout", "retry", "dedupe")


@dataclass
class Item:
    label: str
    kind: str              # keyword source event field placeholder action param let secret rule policy value option
    detail: Any = ""       # a string, or a function giving it (computed only for the items returned)
    doc: str = ""
    insert: str | None = None   # text to insert (default: the label)
    sort: str = ""


@dataclass
class Completion:
    items: list[Item]
    start: int                 # 0-based column where the replaced text starts (on the cursor's line)
    incomplete: bool = False
    context: str = ""          # what the completion thought it was completing (for tests and logs)


@dataclass
class _Tok:
    kind: str
    text: str

    def is_(self, *words: str) -> bool:
        return self.kind == "name" and self.text in words


def tokenize(text: str) -> list[_Tok]:
    return [_Tok(m.lastgroup, m.group()) for m in _TOKEN.finditer(text)
            if m.lastgroup not in ("space", "comment")]


def complete(lines: list[str], line: int, col: int, names: Names) -> Completion:
    """Completion items for the 0-based position ``(line, col)``."""
    cur = lines[line] if 0 <= line < len(lines) else ""
    col = min(col, len(cur))
    before_cursor = cur[:col]
    bounds = declaration_at(lines, line)
    first = bounds[0] if bounds and bounds[0] <= line else line
    if not before_cursor or _starts_at_cursor(before_cursor):
        first = line  # a new declaration being started in column 1
    text = "\n".join(lines[first:line] + [before_cursor])
    # the partial word (or placeholder) under the cursor is replaced, not read as context
    m = _PARTIAL_PLACEHOLDER.search(before_cursor)
    if m and not _in_string(text):
        toks = tokenize(text[: len(text) - len(m.group())])
        return _finish(_placeholders(toks, names), col - len(m.group()), m.group(), "placeholder")
    m = _PARTIAL_WORD.search(before_cursor)
    prefix = m.group() if m else ""
    start = col - len(prefix)
    if _in_string(text) or _in_comment(before_cursor):
        return Completion([], col, False, "string")
    toks = tokenize(text[: len(text) - len(prefix)])
    items, ctx = _items(toks, names, before_cursor[: start], first == line)
    return _finish(items, start, prefix, ctx)


def _starts_at_cursor(before: str) -> bool:
    return bool(before) and not before[0].isspace() and _PARTIAL_WORD.fullmatch(before) is not None


def _in_string(text: str) -> bool:
    toks = [m for m in _TOKEN.finditer(text) if m.lastgroup not in ("space",)]
    if not toks:
        return False
    last = toks[-1]
    if last.end() != len(text):
        return False
    g = last.group()
    if last.lastgroup == "string":
        return len(g) == 1 or not g.endswith('"') or g.endswith('\\"')
    if last.lastgroup == "raw":
        return len(g) == 2 or not g.endswith('"')
    return False


def _in_comment(before: str) -> bool:
    return split_comment(before)[1] is not None


def _finish(items: list[Item], start: int, prefix: str, ctx: str) -> Completion:
    if prefix:
        low = prefix.lower()
        items = [i for i in items if i.label.lower().startswith(low)] + \
                [i for i in items if low in i.label.lower() and not i.label.lower().startswith(low)]
    seen, out = set(), []
    for i in items:
        if i.label not in seen:
            seen.add(i.label)
            out.append(i)
    incomplete = len(out) > MAX_ITEMS
    out = out[:MAX_ITEMS]
    for i in out:
        if callable(i.detail):
            i.detail = i.detail()
    return Completion(out, start, incomplete, ctx)


# --------------------------------------------------------------------------- contexts

def _items(toks: list[_Tok], names: Names, line_before: str, line_is_first: bool) -> tuple[list[Item], str]:
    if not toks:
        return _top_level(), "declaration"
    head = toks[0]
    if head.is_("let"):
        return (_values(names) if any(t.text == "=" for t in toks) else []), "let"
    if head.is_("secret"):
        return ([_kw("env"), _kw("file")] if toks[-1].text == "=" else []), "secret"
    if head.is_("source"):
        return _source_decl(toks, names), "source"
    if head.is_("action"):
        return _action_decl(toks, names), "action"
    if head.is_("test"):
        return _test(toks, names, line_before), "test"
    on = next((i for i, t in enumerate(toks[:3]) if t.is_("on")), None)
    if on is None:
        if len(toks) == 2 and toks[1].text == ":":
            return [_kw("on")], "rule"
        return _top_level(), "declaration"
    return _rule(toks[on + 1:], names)


def _top_level() -> list[Item]:
    return [_kw(k) for k in ("on", "let", "include", "secret", "source", "action", "test")]


def _kw(word: str, insert: str | None = None) -> Item:
    return Item(word, "keyword", "", K.KEYWORD_DOCS.get(word, ""), insert)


def _sources(internal: bool = True) -> list[Item]:
    out = []
    for name, src in sorted(C.CATALOGUE.items()):
        if not internal and not src.listener:
            continue
        out.append(Item(name, "source", src.doc, ""))
    return out


def _events(source: str) -> list[Item]:
    src = C.get_source(source)
    if src is None:
        return []
    items = [Item(e, "event", spec.doc, _fields_doc(source, e)) for e, spec in sorted(src.events.items())]
    items.append(Item("*", "event", f"any {source} event", ""))
    if src.open_events:  # a provider's other documented events (the checker knows them: no TRG207)
        items.extend(Item(e, "event", f"{source} event", "", sort="z")
                     for e in sorted(src.known_events) if e not in src.events)
    return items


def _fields_doc(source: str, event: str) -> str:
    spec = C.get_event(source, event)
    return ", ".join(f"{k}: {t}" for k, t in sorted(spec.fields.items())) if spec else ""


def _fields(ctx: tuple[str, str] | None, insert_eq: bool = False) -> list[Item]:
    if ctx is None:
        return []
    spec = C.get_event(*ctx)
    if spec is None:
        return []
    names = set(spec.fields) | set(C.CATALOGUE[ctx[0]].raw)
    out = []
    for n in sorted(names):
        typ = C.field_type(ctx[0], ctx[1], (n,)) or "any"
        out.append(Item(n, "field", typ, K.field_doc(ctx[0], ctx[1], n), n + "=" if insert_eq else None))
    return out


def _values(names: Names, ctx: tuple[str, str] | None = None, fld: str | None = None) -> list[Item]:
    out = []
    if ctx is not None and fld is not None:
        for v in K.EVENT_FIELD_VALUES.get((ctx[0], ctx[1], fld), K.FIELD_VALUES.get((ctx[0], fld), ())):
            out.append(Item(f'"{v}"', "value", fld, ""))
        if C.field_type(ctx[0], ctx[1], (fld,)) == C.BOOL:
            out += [Item("true", "value", "bool"), Item("false", "value", "bool")]
    out.extend(Item(n, "let", _let_detail(d), "") for n, d in sorted(names.lets.items()))
    return out


def _let_detail(d) -> str:
    from .document import _fmt

    text = _fmt(d)
    return text.split("=", 1)[1].strip() if "=" in text else text


def _trigger_of(toks: list[_Tok]) -> tuple[str, str] | None:
    """The trigger of a rule's tokens (after ``on``): its ``SOURCE.EVENT``, a schedule, or for
    a trigger form not known here, the last ``SOURCE.EVENT`` written."""
    if not toks:
        return None
    if toks[0].is_("every", "cron"):
        return "schedule", "tick"
    last = None
    for i in range(len(toks) - 2):
        a, dot, b = toks[i], toks[i + 1], toks[i + 2]
        if a.kind == "name" and dot.text == "." and (b.kind == "name" or b.text == "*") \
                and (i == 0 or toks[i - 1].text != "."):
            if C.get_source(a.text) is not None and C.get_event(a.text, b.text) is not None:
                last = (a.text, b.text)
                if i == 0:
                    return last
    return last


def _rule(toks: list[_Tok], names: Names) -> tuple[list[Item], str]:
    run = next((i for i, t in enumerate(toks) if t.is_("run") and not (i + 1 < len(toks) and toks[i + 1].text == ".")),
               None)
    ctx = _trigger_of(toks if run is None else toks[:run])
    if run is None:
        if not toks:
            # (schedule ticks are addressed by every/cron, never by name: TRG202)
            return [i for i in _sources() if i.label != "schedule"] + [_kw("every"), _kw("cron")], "trigger"
        if len(toks) == 2 and toks[0].kind == "name" and toks[1].text == ".":
            return _events(toks[0].text), "event"
        if toks[0].is_("cron") and len(toks) == 2 and toks[1].kind == "string":
            return [_kw("tz"), _kw("catch up"), _kw("run")], "filter"
        if toks[0].is_("every", "cron") and len(toks) == 1:
            return [], "schedule"
        if toks[-1].is_("catch"):
            return [_kw("up")], "schedule"
        if (toks[0].is_("every") and len(toks) == 2) or (toks[0].is_("cron") and len(toks) == 4 and toks[2].is_("tz")):
            return [_kw("catch up"), _kw("run")] + _fields(ctx), "filter"
        last = toks[-1]
        if last.text in _OPS or last.is_("in"):
            fld = _field_before(toks)
            if ctx is not None and ctx[0] == "run" and fld == "rule":
                return [Item(f'"{n}"', "rule", _rule_detail(r)) for n, r in names.rules.items()], "value"
            return _values(names, ctx, fld), "value"
        if last.text == ".":
            return [], "field member"
        if last.is_("has"):
            return _fields(ctx), "field"
        items = _fields(ctx) + [_kw("run"), _kw("has"), _kw("not"), _kw("and"), _kw("or")]
        return items, "filter"
    after = toks[run + 1:]
    if not after:
        return [Item(n, "action", signature(d), "") for n, d in sorted(names.actions.items())], "action"
    action = after[0].text if after[0].kind == "name" else None
    rest = after[1:]
    with_at = next((i for i, t in enumerate(rest) if t.is_("with")), None)
    pol_at = next((i for i, t in enumerate(rest) if t.is_(*POLICIES)), None)
    if pol_at is not None:
        return _policy_items(rest[pol_at:], ctx, names), "policy"
    if with_at is None:
        return [_kw("with")] + _policies(rest), "after action"
    args = rest[with_at + 1:]
    if not args or args[-1].text == ",":
        return _params(action, args, names) + _placeholders_ctx(ctx) + _values(names), "argument"
    if args[-1].text == "=":
        return _placeholders_ctx(ctx) + _values(names), "argument value"
    return _policies(rest), "policy"


def _field_before(toks: list[_Tok]) -> str | None:
    # [... NAME ('.' NAME)* OP]: the head of the field path before the operator
    i = len(toks) - 2
    if i >= 0 and toks[i].is_("not"):
        i -= 1
    j = i
    while j - 2 >= 0 and toks[j - 1].text == ".":
        j -= 2
    return toks[j].text if 0 <= j < len(toks) and toks[j].kind == "name" else None


def _policies(rest: list[_Tok]) -> list[Item]:
    used = {t.text for t in rest if t.kind == "name"}
    return [Item(p, "policy", "", K.POLICY_DOCS[p]) for p in POLICIES if p not in used]


def _policy_items(pol: list[_Tok], ctx, names: Names) -> list[Item]:
    last = pol[-1]
    if last.is_("busy"):
        return [Item(m, "value", "busy mode", K.BUSY_MODE_DOCS.get(m, "")) for m in BUSY_MODES]
    if last.is_("signal") and len(pol) >= 2 and pol[-2].is_("busy"):
        return [Item(sig, "value", "signal", K.BUSY_MODE_DOCS["signal"]) for sig in BUSY_SIGNALS]
    if last.is_("dedupe"):
        return _placeholders_ctx(ctx)
    if last.kind == "placeholder" and len(pol) >= 2 and pol[-2].is_("dedupe"):
        return [_kw("for")]
    if last.kind == "number" and len(pol) >= 2 and pol[-2].is_("retry"):
        return [_kw("backoff")] + _policies(pol)
    if last.is_("debounce", "timeout", "backoff", "for", "retry"):
        return [Item(n, "let", _let_detail(d), "") for n, d in sorted(names.lets.items())]
    return _policies(pol)


def _placeholders_ctx(ctx) -> list[Item]:
    if ctx is None:
        return []
    return [Item(f"<{i.label}>", "placeholder", i.detail, i.doc) for i in _fields(ctx)]


def _placeholders(toks: list[_Tok], names: Names) -> list[Item]:
    """``<`` typed: the fields of the rule's trigger as placeholders."""
    if not toks:
        return []
    on = next((i for i, t in enumerate(toks[:3]) if t.is_("on")), None)
    if on is None:
        return []
    rest = toks[on + 1:]
    run = next((i for i, t in enumerate(rest) if t.is_("run") and not (i + 1 < len(rest) and rest[i + 1].text == ".")),
               None)
    return _placeholders_ctx(_trigger_of(rest if run is None else rest[:run]))


def _params(action: str | None, args: list[_Tok], names: Names) -> list[Item]:
    decl = names.actions.get(action or "")
    if decl is None:
        return []
    given = {args[i].text for i in range(len(args) - 1) if args[i + 1].text == "=" and args[i].kind == "name"}
    out = []
    for p in decl.params:
        if p.name.value in given:
            continue
        detail = "required" if p.default is None else "optional"
        out.append(Item(p.name.value + "=", "param", detail, f"parameter of action {signature(decl)}",
                        sort="0"))
    return out


def _source_decl(toks: list[_Tok], names: Names) -> list[Item]:
    if len(toks) == 1:
        return _sources(internal=False)
    spec = C.get_source(toks[1].text)
    if spec is None:
        return []
    if toks[-1].text == "=":
        if len(toks) >= 2 and spec.options.get(toks[-2].text) == C.SECRET:
            return [Item(n, "secret", f'{d.kind} "{d.ref.value}"') for n, d in sorted(names.secrets.items())]
        if len(toks) >= 2 and spec.options.get(toks[-2].text) == C.BOOL:  # gitignore=, meta=
            return [Item("true", "value", "bool"), Item("false", "value", "bool"), *_values(names)]
        return _values(names)
    given = {toks[i].text for i in range(2, len(toks) - 1) if toks[i + 1].text == "="}
    return [Item(o + "=", "option", t, "") for o, t in sorted(spec.options.items()) if o not in given]


def _action_decl(toks: list[_Tok], names: Names) -> list[Item]:
    eq = next((i for i, t in enumerate(toks) if t.text == "=" and i >= 2), None)
    if eq is None:
        return []
    body = toks[eq + 1:]
    if not body:
        return [_kw("exec"), _kw("shell"), _kw("http")]
    if body[-1].is_("stop") and not body[0].is_("http"):  # `stop SIGNAL grace D`
        return [Item(sig, "keyword", "signal", K.KEYWORD_DOCS["stop"]) for sig in STOP_SIGNALS] + [_kw("grace")]
    if len(body) > 2 and body[-2].is_("stop") and not body[-1].is_("grace"):
        return [_kw("grace")]
    params = []
    if len(toks) > 2 and toks[2].text == "(":
        close = next((i for i, t in enumerate(toks) if t.text == ")"), len(toks))
        ps = toks[3:close]
        params = [ps[i].text for i in range(len(ps)) if ps[i].kind == "name" and (i == 0 or ps[i - 1].text == ",")]
    if body[0].is_("exec"):
        if body[-1].text == "=":
            return []
        return [Item(p, "param", "parameter", "") for p in params] + [_kw("cwd"), _kw("env"), _kw("stop")]
    if body[0].is_("http"):
        if len(body) == 1:
            return [_kw("post")]
        if body[-1].text == "=" and body[-2].is_("secret"):
            return [Item(n, "secret", f'{d.kind} "{d.ref.value}"') for n, d in sorted(names.secrets.items())]
        return [Item("secret=", "option", "secret", "sign the request with this secret"), _kw("cwd"), _kw("env")]
    return [_kw("cwd"), _kw("env"), _kw("stop")]


def _test(toks: list[_Tok], names: Names, line_before: str) -> list[Item]:
    last_kw = max((i for i, t in enumerate(toks) if t.is_("given", "expect")), default=None)
    at_line_start = not line_before.strip()
    if last_kw is None:
        return [_kw("given")] if any(t.text == ":" for t in toks) else []
    if at_line_start and last_kw is not None:
        return [_kw("expect")] + ([] if any(t.is_("given") for t in toks) else [_kw("given")])
    after = toks[last_kw + 1:]
    rules = [Item(n, "rule", _rule_detail(r), "") for n, r in names.rules.items()]
    if toks[last_kw].is_("given"):
        if not after:
            return _sources()
        if len(after) == 2 and after[1].text == ".":
            return [i for i in _events(after[0].text) if i.label != "*"]
        ctx = _trigger_of(after)
        if after[-1].text == "=":
            fld = after[-2].text if len(after) >= 2 else None
            if ctx == ("schedule", "tick") and fld == "rule":
                return [Item(f'"{i.label}"', "rule", i.detail) for i in rules]
            return _values(names, ctx, fld)
        if after[-1].is_("from"):
            return []
        return _fields(ctx, insert_eq=True) + [_kw("from")]
    # expect
    if not after:
        return rules + [_kw("not"), _kw("only"), _kw("none")]
    if after[0].is_("not"):
        return rules if len(after) == 1 else []
    if after[0].is_("only"):
        return rules if after[-1].text in (",",) or len(after) == 1 else []
    if after[0].is_("none"):
        return []
    if len(after) == 1:
        return [_kw("with")]
    if after[1].is_("with"):
        rule = names.rules.get(after[0].text)
        args = after[2:]
        if not args or args[-1].text == ",":
            return _params(rule.action.value if rule else None, args, names)
        if args[-1].text == "=":
            return _values(names)
    return []


def _rule_detail(r):
    return lambda: f"on {_trigger_text(r)} run {r.action.value}"


def _trigger_text(r) -> str:
    from ..fmt import fmt_trigger

    try:
        return fmt_trigger(r.trigger)
    except (TypeError, AttributeError):
        return "..."


__all__ = ["Completion", "Item", "complete", "tokenize"]
