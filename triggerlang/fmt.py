"""``triggerc fmt``: one canonical layout for ``.trg`` files.

The layout:
- one declaration per line when it fits in 100 columns; a longer rule — or one its author
  split over several lines — puts ``run ...`` and then its policies on continuation lines
  indented by four spaces, and a filter too long for the first line one condition per
  line (the author's choice to split is kept, as black keeps a "magic trailing comma");
- ``field=value`` for equality, spaces around every other operator; conditions side by
  side (no ``and``) at the top of a filter, explicit ``and`` / ``or`` / ``not`` inside
  parentheses, and only the parentheses precedence needs;
- strings re-escaped the one canonical way; numbers and durations kept as written;
- test blocks on indented lines, one ``given`` / ``expect`` per line;
- comments kept: whole-line comments where they stand, a trailing comment after its
  declaration when that stays on one line (else on its own line above it); runs of
  blank lines become one; the file ends with one newline.

Formatting never changes meaning: ``parse(format(x)) == parse(x)`` (spans aside) is a
property test, and formatting is idempotent. A file with syntax errors is not formatted.
"""

from __future__ import annotations

import json

from .diagnostics import Diagnostics
from .syntax import ast as A
from .syntax.parser import parse, split_comment, split_declarations

WIDTH = 100
INDENT = "    "


# --------------------------------------------------------------------------- values

def fmt_string(s: A.Str | str, raw: bool = False) -> str:
    if isinstance(s, A.Str):
        raw, s = s.raw, s.value
    if raw:
        return f'r"{s}"'
    out = []
    for ch in s:
        if ch == '"':
            out.append('\\"')
        elif ch == "\\":
            out.append("\\\\")
        elif ch == "\n":
            out.append("\\n")
        elif ch == "\t":
            out.append("\\t")
        elif ord(ch) < 0x20 or ch == "\x7f":
            out.append(f"\\u{{{ord(ch):x}}}")
        else:
            out.append(ch)
    return '"' + "".join(out) + '"'


def fmt_value(v) -> str:
    if isinstance(v, A.Str):
        return fmt_string(v)
    if isinstance(v, A.Num):
        return v.text or json.dumps(v.value)
    if isinstance(v, A.Duration):
        return v.text or f"{int(v.ms)}ms"
    if isinstance(v, A.Bool):
        return "true" if v.value else "false"
    if isinstance(v, A.Regex):
        return "/" + v.pattern.replace("/", "\\/") + "/" + v.flags
    if isinstance(v, A.ListLit):
        return "[" + ", ".join(fmt_value(x) for x in v.items) + "]"
    if isinstance(v, A.Ref):
        return v.name
    if isinstance(v, A.Placeholder):
        return f"<{v.path.dotted}>"
    if isinstance(v, A.Name):
        return v.value
    raise TypeError(f"not a value: {v!r}")  # pragma: no cover


# --------------------------------------------------------------------------- filters

def fmt_expr(e, top: bool = False) -> str:
    if isinstance(e, A.Compare):
        if e.op == "=":
            return f"{e.field.dotted}={fmt_value(e.value)}"
        return f"{e.field.dotted} {e.op} {fmt_value(e.value)}"
    if isinstance(e, A.Has):
        return f"has {e.field.dotted}"
    if isinstance(e, A.Not):
        inner = fmt_expr(e.expr)
        return f"not {inner}" if isinstance(e.expr, (A.Compare, A.Has, A.Not)) else f"not ({inner})"
    if isinstance(e, A.And):
        parts = [f"({fmt_expr(x)})" if isinstance(x, A.Or) else fmt_expr(x) for x in e.items]
        return " ".join(parts) if top else " and ".join(parts)
    if isinstance(e, A.Or):
        return " or ".join(fmt_expr(x) for x in e.items)
    raise TypeError(f"not an expression: {e!r}")  # pragma: no cover


def fmt_trigger(t) -> str:
    if isinstance(t, A.EventTrigger):
        return t.text
    if isinstance(t, A.EveryTrigger):
        return f"every {fmt_value(t.interval)}"
    s = f"cron {fmt_string(t.expr)}"
    return s + (f" tz {fmt_string(t.tz)}" if t.tz else "")


def fmt_args(args) -> str:
    out = []
    for a in args:
        v = fmt_value(a.value)
        out.append(f"{a.name.value}={v}" if a.name else v)
    return ", ".join(out)


def fmt_policy(p: A.Policy) -> str:
    if p.kind == "retry":
        s = f"retry {fmt_value(p.value)}"
        return s + (f" backoff {fmt_value(p.extra)}" if p.extra is not None else "")
    if p.kind == "dedupe":
        return f"dedupe {fmt_value(p.key)} for {fmt_value(p.extra)}"
    return f"{p.kind} {fmt_value(p.value)}"


# --------------------------------------------------------------------------- declarations

def fmt_rule(r: A.Rule, multiline: bool = False) -> list[str]:
    """One line when it fits, unless the author split the rule (``multiline``): then, as
    for a rule too long for one line, ``run`` and the policies go on continuation lines."""
    head = (f"{r.label.value}: " if r.label else "") + "on " + fmt_trigger(r.trigger)
    filt = fmt_expr(r.filter, top=True) if r.filter is not None else ""
    run = f"run {r.action.value}" + (f" with {fmt_args(r.args)}" if r.args else "")
    pols = [fmt_policy(p) for p in r.policies]
    one = " ".join(x for x in [head, filt, run, *pols] if x)
    if len(one) <= WIDTH and not multiline:
        return [one]
    lines = []
    first = " ".join(x for x in [head, filt] if x)
    if len(first) > WIDTH and isinstance(r.filter, A.And):
        lines.append(head)
        lines.extend(INDENT + (f"({fmt_expr(x)})" if isinstance(x, A.Or) else fmt_expr(x)) for x in r.filter.items)
    else:
        lines.append(first)
    rest = " ".join([run, *pols])
    if len(INDENT + rest) <= WIDTH:
        lines.append(INDENT + rest)
    else:
        lines.append(INDENT + run)
        lines.extend(INDENT + p for p in pols)
    return lines


def fmt_action(a: A.ActionDecl) -> list[str]:
    params = ""
    if a.params or a.has_parens:
        ps = [p.name.value + (f"={fmt_value(p.default)}" if p.default is not None else "") for p in a.params]
        params = "(" + ", ".join(ps) + ")"
    b = a.body
    if isinstance(b, A.ExecBody):
        body = "exec " + " ".join(fmt_value(x) for x in b.argv)
    elif isinstance(b, A.ShellBody):
        body = "shell " + fmt_string(b.script)
    else:
        body = f"http {b.method.value} {fmt_string(b.url)}" + "".join(
            f" {o.name.value}={fmt_value(o.value)}" for o in b.options)
    opts = [f"cwd {fmt_string(o.value)}" if o.kind == "cwd" else f"env {o.name.value}={fmt_string(o.value)}"
            for o in a.options]
    one = " ".join([f"action {a.name.value}{params} = {body}", *opts])
    if len(one) <= WIDTH or not opts:
        return [one]
    return [f"action {a.name.value}{params} = {body}", *(INDENT + o for o in opts)]


def fmt_test(t: A.TestBlock) -> list[str]:
    g = t.given
    given = "given " + g.trigger.text + "".join(
        f" {f.field.dotted}={fmt_value(f.value)}" for f in g.fields)
    if g.from_file is not None:
        given += f" from {fmt_string(g.from_file)}"
    lines = [f"test {fmt_string(t.name)}:", INDENT + given]
    lines.extend(INDENT + fmt_expect(e) for e in t.expects)
    return lines


def fmt_expect(e: A.Expect) -> str:
    if e.kind == "match":
        return f"expect {e.rules[0].value}" + (f" with {fmt_args(e.args)}" if e.has_with else "")
    if e.kind == "not":
        return f"expect not {e.rules[0].value}"
    if e.kind == "only":
        return "expect only " + ", ".join(n.value for n in e.rules)
    return "expect none"


def fmt_decl(d, multiline: bool = False) -> list[str]:
    if isinstance(d, A.Rule):
        return fmt_rule(d, multiline)
    if isinstance(d, A.Let):
        return [f"let {d.name.value} = {fmt_value(d.value)}"]
    if isinstance(d, A.Secret):
        return [f"secret {d.name.value} = {d.kind} {fmt_string(d.ref)}"]
    if isinstance(d, A.SourceDecl):
        return [" ".join([f"source {d.kind.value}", *(f"{o.name.value}={fmt_value(o.value)}" for o in d.options)])]
    if isinstance(d, A.ActionDecl):
        return fmt_action(d)
    if isinstance(d, A.TestBlock):
        return fmt_test(d)
    raise TypeError(f"not a declaration: {d!r}")  # pragma: no cover


# --------------------------------------------------------------------------- comments

def _code_lines(lines: list[str]) -> int:
    """How many of these lines hold code (not blank, not only a comment)."""
    return sum(1 for ln in lines if split_comment(ln)[0].strip())


def format_text(text: str, file: str = "<input>") -> tuple[str | None, Diagnostics]:
    """The canonical text, or None with diagnostics when the file has syntax errors."""
    if text.startswith("\ufeff"):
        text = text[1:]
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    module, diags = parse(text, file)
    if diags.has_errors:
        return None, diags
    lines = text.split("\n")
    chunks = split_declarations(text)
    out: list[str] = []
    pending_blank = False

    def emit(line: str) -> None:
        nonlocal pending_blank
        if pending_blank and out:
            out.append("")
        pending_blank = False
        out.append(line)

    def between(a: int, b: int) -> None:
        nonlocal pending_blank
        for ln in lines[a:b]:
            s = ln.strip()
            if not s:
                pending_blank = True
            else:
                emit(s.rstrip())

    prev_end = 0
    for (first, last, _), decl in zip(chunks, module.decls):
        between(prev_end, first)
        inner_comments, trailing = [], []
        for idx in range(first, last + 1):
            code, comment = split_comment(lines[idx])
            if comment is None:
                continue
            (trailing if code.strip() else inner_comments).append(comment.rstrip())
        formatted = fmt_decl(decl, multiline=_code_lines(lines[first:last + 1]) > 1)
        if len(trailing) == 1 and len(formatted) == 1 and not inner_comments:
            emit(formatted[0] + "  " + trailing[0])
        else:
            for c in inner_comments + trailing:
                emit(c)
            for f in formatted:
                emit(f)
        prev_end = last + 1
    between(prev_end, len(lines))
    return "\n".join(out) + "\n" if out else "", diags
