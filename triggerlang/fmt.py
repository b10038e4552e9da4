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
- test blocks on indented lines, one ``given`` / ``expect`` per line, their comments among
  the steps (one after a step stays at the end of its line);
- comments kept: whole-line comments where they stand, a trailing comment after its
  declaration when that stays on one line (else on its own line above it); runs of
  blank lines become one; the file ends with one newline;
- a rule without a label is named after the line it starts on (``L7``, SPEC §2): when the
  layout would move it to another line, it is given that name as its label (``L7: on ...``),
  so that tests, ``run.*`` filters and the journal still know it by the same name.

Formatting never changes meaning: ``by_name(parse(format(x))) == by_name(parse(x))``
(spans aside, rules compared by name) is a property test, and formatting is idempotent. A file with syntax errors is not formatted.
"""

from __future__ import annotations

import json
from dataclasses import replace

from .actions import busy_signal_name, stop_signal_name
from .compile.patterns import regex_literal
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
        return regex_literal(v.pattern, v.flags)
    if isinstance(v, A.ListLit):
        return "[" + ", ".join(fmt_value(x) for x in v.items) + "]"
    if isinstance(v, A.Ref):
        return v.name
    if isinstance(v, A.Placeholder):
        if v.pattern is not None:
            return f"<{v.path.dotted} ~ {regex_literal(v.pattern.pattern, v.pattern.flags)}>"
        return f"<{v.path.dotted}>"
    if isinstance(v, A.Name):
        return v.value
    raise TypeError(f"not a value: {v!r}")  # pragma: no cover


# --------------------------------------------------------------------------- filters

SOFT_KEYWORDS = frozenset("as key same within for between max".split())
"""Words that are keywords right after a condition (in correlation triggers): a condition on
a field of one of these names is written after an explicit ``and`` (SPEC §11.1)."""


def _juxtaposed(parts: list[str], items) -> str:
    out = parts[0]
    for p, x in zip(parts[1:], items[1:]):
        soft = isinstance(x, A.Compare) and x.field.parts[0] in SOFT_KEYWORDS
        out += (" and " if soft else " ") + p
    return out


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
        return _juxtaposed(parts, e.items) if top else " and ".join(parts)
    if isinstance(e, A.Or):
        return " or ".join(fmt_expr(x) for x in e.items)
    raise TypeError(f"not an expression: {e!r}")  # pragma: no cover


def fmt_trigger(t) -> str:
    if isinstance(t, A.EventTrigger):
        return t.text
    if isinstance(t, A.EveryTrigger):
        return f"every {fmt_value(t.interval)}" + (" catch up" if t.catch_up else "")
    if isinstance(t, (A.Group, A.Absence)):
        return " ".join(_corr_lines(t, "", WIDTH * 10)).strip()
    s = f"cron {fmt_string(t.expr)}"
    return s + (f" tz {fmt_string(t.tz)}" if t.tz else "") + (" catch up" if t.catch_up else "")


# --------------------------------------------------------------------------- correlation triggers

def _keys(ps) -> str:
    return ", ".join(fmt_value(p) for p in ps)


def fmt_member(m: A.Member) -> str:
    out = m.trigger.text
    if m.filter is not None:
        out += " " + fmt_expr(m.filter, top=True)
    if m.alias is not None:
        out += f" as {m.alias.value}"
    if len(m.keys) == 1:
        out += f" key {fmt_value(m.keys[0])}"
    elif m.keys:
        out += f" key ({_keys(m.keys)})"
    return out


def _group_clauses(g: A.Group) -> str:
    out = ""
    if g.same:
        out += f" same {_keys(g.same)}"
    if g.within is not None:
        out += f" within {fmt_value(g.within)}"
    if g.max is not None:
        out += f" max {fmt_value(g.max)}"
    if g.trailing is not None:
        out += " " + fmt_expr(g.trailing, top=True)
    return out


def _open(g: A.Group) -> str:
    if g.kind == "n_of":
        return f"{fmt_value(g.n)} of ("
    return f"{g.kind}("


def fmt_item(x, indent: str, width: int) -> list[str]:
    """One item of a group, as lines (the first without its indentation)."""
    if isinstance(x, A.Member):
        return [fmt_member(x)]
    if isinstance(x, A.Absence):
        return [f"absent({fmt_member(x.member)})"]
    return _group_lines(x, indent, width)


def _group_lines(g: A.Group, indent: str, width: int) -> list[str]:
    """A group and its clauses: one line when it fits and the author did not put its items
    one per line (a trailing comma), else ``KIND(`` / one item a line / ``) CLAUSES``."""
    clauses = _group_clauses(g)
    if g.kind == "count":
        return [f"{fmt_value(g.n)} of {fmt_member(g.items[0])}{clauses}"]
    inner = [fmt_item(x, indent + INDENT, width) for x in g.items]
    one = _open(g) + ", ".join(i[0] for i in inner) + ")" + clauses
    if not g.trailing_comma and all(len(i) == 1 for i in inner) and len(indent) + len(one) <= width:
        return [one]
    lines = [_open(g)]
    item_indent = indent + INDENT
    for i in inner:
        i = list(i)
        i[-1] += ","
        lines.append(item_indent + i[0])
        lines.extend(i[1:])
    lines.append(indent + ")" + clauses)
    return lines


def _absence_parts(a: A.Absence) -> tuple[str, list[str]]:
    head = f"absent({fmt_member(a.member)})"
    rest = []
    if a.after is not None:
        rest.append(f"after {fmt_member(a.after)}")
    tail = []
    if a.same:
        tail.append(f"same {_keys(a.same)}")
        if a.same_in is not None:
            tail.append(f"in {fmt_value(a.same_in)}")
    w = a.window
    if w is not None:
        if w.kind == "between":
            tail.append(f"between cron {fmt_string(w.start)} and cron {fmt_string(w.end)}"
                        + (f" tz {fmt_string(w.tz)}" if w.tz else ""))
        else:
            tail.append(f"{w.kind} {fmt_value(w.duration)}")
    if a.max is not None:
        tail.append(f"max {fmt_value(a.max)}")
    if a.trailing is not None:
        tail.append(fmt_expr(a.trailing, top=True))
    if tail:
        rest.append(" ".join(tail))
    return head, rest


def _corr_lines(t, head: str, width: int) -> list[str]:
    """A correlation trigger after ``head`` (``LABEL: on ``): the lines it takes."""
    if isinstance(t, A.Absence):
        first, rest = _absence_parts(t)
        one = " ".join([head + first, *rest])
        if len(one) <= width:
            return [one]
        return [head + first, *(INDENT + r for r in rest)]
    if t.kind == "count":
        member = f"{fmt_value(t.n)} of {fmt_member(t.items[0])}"
        clauses = _group_clauses(t)
        if len(head + member + clauses) <= width or not clauses:
            return [head + member + clauses]
        return [head + member, INDENT + clauses.strip()]
    lines = _group_lines(t, INDENT, width - len(head) + len(INDENT)) if not t.trailing_comma else \
        _group_lines(t, INDENT, width)
    if len(lines) == 1 and len(head + lines[0]) > width:
        lines = _group_lines(A.Group(t.kind, t.items, t.n, t.same, t.within, t.max, t.trailing, True, t.span),
                             INDENT, width)
    return [head + lines[0], *lines[1:]]


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
    if p.signal is not None:  # busy signal HUP -> SIGHUP; a name that is no signal stays for check
        return f"{p.kind} {fmt_value(p.value)} {busy_signal_name(p.signal.value) or p.signal.value}"
    return f"{p.kind} {fmt_value(p.value)}"


# --------------------------------------------------------------------------- declarations

def fmt_rule(r: A.Rule, multiline: bool = False) -> list[str]:
    """One line when it fits, unless the author split the rule (``multiline``): then, as
    for a rule too long for one line, ``run`` and the policies go on continuation lines."""
    run = f"run {r.action.value}" + (f" with {fmt_args(r.args)}" if r.args else "")
    pols = [fmt_policy(p) for p in r.policies]
    if isinstance(r.trigger, (A.Group, A.Absence)):
        return _fmt_corr_rule(r, run, pols, multiline)
    head = (f"{r.label.value}: " if r.label else "") + "on " + fmt_trigger(r.trigger)
    filt = fmt_expr(r.filter, top=True) if r.filter is not None else ""
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


def _fmt_corr_rule(r: A.Rule, run: str, pols: list[str], multiline: bool) -> list[str]:
    """A correlation rule (§11.8's layout): the trigger on one line when it fits, else a
    group's items one per line indented by eight spaces and ``) same ... within ...`` at
    four; ``absent(...)`` with ``after`` and its window on continuation lines; then ``run``
    and the policies on continuation lines, as for any split rule."""
    head = (f"{r.label.value}: " if r.label else "") + "on "
    trig = _corr_lines(r.trigger, head, WIDTH)
    one = " ".join([trig[0], run, *pols])
    if len(trig) == 1 and not multiline and len(one) <= WIDTH:
        return [one]
    rest = " ".join([run, *pols])
    if len(INDENT + rest) <= WIDTH:
        return [*trig, INDENT + rest]
    return [*trig, INDENT + run, *(INDENT + p for p in pols)]


def _fmt_action_option(o) -> str:
    if o.kind == "cwd":
        return f"cwd {fmt_string(o.value)}"
    if o.kind == "env":
        return f"env {o.name.value}={fmt_string(o.value)}"
    words = ["stop"]
    if o.signal is not None:  # as written: a name that is no signal stays for check to report
        words.append(stop_signal_name(o.signal.value) or o.signal.value)
    if o.grace is not None:
        words += ["grace", fmt_value(o.grace)]
    return " ".join(words)


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
    opts = [_fmt_action_option(o) for o in a.options]
    one = " ".join([f"action {a.name.value}{params} = {body}", *opts])
    if len(one) <= WIDTH or not opts:
        return [one]
    return [f"action {a.name.value}{params} = {body}", *(INDENT + o for o in opts)]


def fmt_given(g: A.Given) -> str:
    given = "given " + g.trigger.text + "".join(
        f" {f.field.dotted}={fmt_value(f.value)}" for f in g.fields)
    if g.from_file is not None:
        given += f" from {fmt_string(g.from_file)}"
    return given


def fmt_step(s) -> str:
    if isinstance(s, A.Given):
        return fmt_given(s)
    if isinstance(s, A.Wait):
        return f"wait {fmt_value(s.duration)}"
    if isinstance(s, A.At):
        return f"at {fmt_string(s.time)}"
    return fmt_expect(s)


def fmt_test(t: A.TestBlock) -> list[str]:
    return [f"test {fmt_string(t.name)}:", *(INDENT + fmt_step(s) for s in t.steps)]


def fmt_expect(e: A.Expect) -> str:
    if e.kind in ("open", "expired"):
        out = f"expect {e.kind} {e.rules[0].value}"
        if len(e.key) == 1:
            out += f" key {fmt_value(e.key[0])}"
        elif e.key:
            out += " key (" + ", ".join(fmt_value(v) for v in e.key) + ")"
        if e.has_missing:
            out += " missing " + ", ".join(n.value for n in e.missing)
        return out
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
    if isinstance(d, A.Include):  # (formatted as written: fmt never reads the files it names)
        return [f"include {fmt_string(d.path)}"]
    if isinstance(d, A.Secret):
        return [f"secret {d.name.value} = {d.kind} {fmt_string(d.ref)}"]
    if isinstance(d, A.SourceDecl):
        return [" ".join([f"source {d.kind.value}", *(f"{o.name.value}={fmt_value(o.value)}" for o in d.options)])]
    if isinstance(d, A.ActionDecl):
        return fmt_action(d)
    if isinstance(d, A.TestBlock):
        return fmt_test(d)
    raise TypeError(f"not a declaration: {d!r}")  # pragma: no cover


def by_name(module: A.Module) -> A.Module:
    """``module`` with every rule labelled by its name (``L<line>`` for a rule without a
    label): what formatting keeps, ``by_name(parse(format(x))) == by_name(parse(x))``, as it
    may move a rule without a label to another line and then writes its name as its label."""
    return replace(module, decls=tuple(replace(d, label=A.Name(d.name)) if isinstance(d, A.Rule) else d
                                       for d in module.decls))


# --------------------------------------------------------------------------- comments

def _code_lines(lines: list[str]) -> int:
    """How many of these lines hold code (not blank, not only a comment)."""
    return sum(1 for ln in lines if split_comment(ln)[0].strip())


def _test_with_comments(t: A.TestBlock, comments: list[tuple[int, str, bool]], first: int) -> list[str]:
    """A test block (its first line index ``first``) whose lines hold ``comments`` (line
    index, comment, on a line of its own), each kept where it was: one on a line of its own
    before the step it precedes (indented as the steps are), one after a step at the end of
    that step's line (several on one step: above it), one after ``test "NAME":`` on that line."""
    head = f"test {fmt_string(t.name)}:"
    at_head = [c for idx, c, own in comments if idx == first and not own]
    out = [head + "  " + at_head[0] if len(at_head) == 1 else head]
    rest = [x for x in comments if not (x[0] == first and not x[2] and len(at_head) == 1)]
    for step in t.steps:
        s_first, s_last = step.span.start.line - 1, step.span.end.line - 1
        before = [x for x in rest if x[0] < s_first or (x[0] <= s_last and x[2])]
        on_step = [x for x in rest if s_first <= x[0] <= s_last and not x[2]]
        text = INDENT + fmt_step(step)
        if len(on_step) == 1:
            text += "  " + on_step[0][1]
        else:
            before += on_step
        out.extend(INDENT + c for _, c, _ in sorted(before))
        out.append(text)
        rest = [x for x in rest if x not in before and x not in on_step]
    out.extend(INDENT + c for _, c, _ in rest)
    return out


def format_text(text: str, file: str = "<input>") -> tuple[str | None, Diagnostics]:
    """The canonical text, or None with diagnostics when the file has syntax errors.

    Every byte-order mark at the start goes (a file saved twice by a BOM-adding editor has
    two): fmt kept the second, which the next run took for the BOM and dropped, so
    formatting the output again changed it."""
    text = text.lstrip("\ufeff")
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
        comments = []   # (line index, comment, on a line of its own)
        for idx in range(first, last + 1):
            code, comment = split_comment(lines[idx])
            if comment is not None:
                comments.append((idx, comment.rstrip(), not code.strip()))
        in_order = [c for _, c, _ in comments]
        inner_comments = [c for _, c, own in comments if own]
        trailing = [c for _, c, own in comments if not own]
        if isinstance(decl, A.TestBlock) and comments:  # comments stay among the steps they sit with
            for line in _test_with_comments(decl, comments, first):
                emit(line)
            prev_end = last + 1
            continue
        multiline = _code_lines(lines[first:last + 1]) > 1
        formatted = fmt_decl(decl, multiline)
        if isinstance(decl, A.Rule) and decl.label is None:
            above = 0 if len(trailing) == 1 and len(formatted) == 1 and not inner_comments \
                else len(inner_comments) + len(trailing)
            if len(out) + (pending_blank and bool(out)) + above + 1 != decl.span.start.line:
                # it would start on another line, and so be another rule (L<line>): keep its name
                decl = replace(decl, label=A.Name(decl.name))
                formatted = fmt_decl(decl, multiline)
        if len(trailing) == 1 and len(formatted) == 1 and not inner_comments:
            emit(formatted[0] + "  " + trailing[0])
        else:
            for c in in_order:  # above the declaration, in the order they were written
                emit(c)
            for f in formatted:
                emit(f)
        prev_end = last + 1
    between(prev_end, len(lines))
    return "\n".join(out) + "\n" if out else "", diags
