"""Parse ``.trg`` text into a :class:`~triggerlang.syntax.ast.Module` plus diagnostics.

How it works
------------
1. **Split.** :func:`split_declarations` cuts the file into declarations by its line
   structure (SPEC §1): a declaration starts on a line that begins in column 1 outside
   any open ``(``/``[``; a line that starts with whitespace, or any line inside an open
   bracket, continues it. Strings, raw strings, regex literals and comments are skipped
   while counting brackets. A column-1 line that starts with a declaration keyword while
   a bracket is still open is taken as a new declaration (the unclosed bracket is then
   reported in the one above), so one missing ``]`` does not swallow the file.
2. **Parse.** Each declaration is parsed alone by one cached Lark LALR parser (start
   symbol ``start``), with positions shifted back to the file's own line/column. This is
   the error recovery: a syntax error costs one declaration, and the file's other errors
   are still found. Three broken rules give three diagnostics.
3. **Build.** A Lark ``Transformer`` turns each tree into frozen AST nodes with spans.
   String escapes are resolved here (an invalid escape is a diagnostic at its position).

Lark stays inside this package: nothing else sees a ``Tree`` or a ``Token``.
"""

from __future__ import annotations

import re
from functools import lru_cache
from importlib import resources
from pathlib import Path

from lark import Lark, Token, Transformer
from lark.exceptions import UnexpectedCharacters, UnexpectedEOF, UnexpectedInput, UnexpectedToken, VisitError

from ..diagnostics import Diagnostics, Pos, Span
from . import ast as A

RESERVED = frozenset("on run with and or not in has true false".split())
DECL_KEYWORDS = ("let", "secret", "source", "action", "on", "test")

_DURATION_UNITS_MS = {"ms": 1, "s": 1000, "m": 60_000, "h": 3_600_000, "d": 86_400_000}


def _grammar_text() -> str:
    try:
        return resources.files("triggerlang.grammar").joinpath("triggerlang.lark").read_text("utf-8")
    except (ModuleNotFoundError, FileNotFoundError):  # pragma: no cover - running from a bare checkout
        return (Path(__file__).resolve().parents[2] / "grammar" / "triggerlang.lark").read_text("utf-8")


@lru_cache(maxsize=1)
def lark_parser() -> Lark:
    """The one LALR parser (built once per process; Lark caches its tables on disk)."""
    try:
        return Lark(_grammar_text(), parser="lalr", lexer="contextual", propagate_positions=True,
                    maybe_placeholders=True, cache=True)
    except OSError:  # pragma: no cover - unwritable temp dir for the cache
        return Lark(_grammar_text(), parser="lalr", lexer="contextual", propagate_positions=True,
                    maybe_placeholders=True)


# --------------------------------------------------------------------------- splitting

# (a keyword ends where a name would: `on-call` or `test-x` is a name, '-' being a name character)
_DECL_START = re.compile(r"(let|secret|source|action|on|test)(?![A-Za-z0-9_\-])"
                         r"|[A-Za-z_][A-Za-z0-9_\-]*\s*:\s*on(?![A-Za-z0-9_\-])")


def _code_chars(line: str):
    """``(index, char)`` of each character of a line outside strings, raw strings and regex
    literals, up to and including a comment's ``#`` (then it stops). The one scanner behind
    bracket counting, comment stripping and the formatter's comment handling."""
    i, n = 0, len(line)
    while i < n:
        c = line[i]
        if c == "#":
            yield i, c
            return
        if c == '"':
            raw = i > 0 and line[i - 1] == "r" and (i < 2 or not (line[i - 2].isalnum() or line[i - 2] == "_"))
            i += 1
            while i < n and line[i] != '"':
                if line[i] == "\\" and not raw:
                    i += 1
                i += 1
        elif c == "/":
            i += 1
            while i < n and line[i] != "/":
                if line[i] == "\\":
                    i += 1
                i += 1
        else:
            yield i, c
        i += 1


def _bracket_delta(line: str) -> int:
    """Net change of (/[ depth over one line, skipping strings, regexes and comments."""
    if "(" not in line and "[" not in line and ")" not in line and "]" not in line:
        return 0  # (most lines: no need to scan them character by character)
    depth = 0
    for _, c in _code_chars(line):
        if c in "([":
            depth += 1
        elif c in ")]":
            depth -= 1
    return depth


def split_comment(line: str) -> tuple[str, str | None]:
    """``(code, comment)`` of one line; ``#`` inside strings and regexes is not a comment."""
    for i, c in _code_chars(line):
        if c == "#":
            return line[:i], line[i:]
    return line, None


def split_declarations(text: str) -> list[tuple[int, int, int]]:
    """``(first_line_index, last_line_index, start_offset)`` of each declaration (0-based lines)."""
    chunks: list[list[int]] = []
    depth = 0
    offset = 0
    for idx, line in enumerate(text.split("\n")):
        stripped = line.strip()
        line_start = offset
        offset += len(line) + 1
        if not stripped or stripped.startswith("#"):
            continue
        starts_col1 = not line[0].isspace()
        if starts_col1 and (depth <= 0 or _DECL_START.match(line)):
            chunks.append([idx, idx, line_start])
            depth = 0
        elif chunks:
            chunks[-1][1] = idx
        else:
            chunks.append([idx, idx, line_start])
        depth = max(0, depth + _bracket_delta(line))
    return [(a, b, c) for a, b, c in chunks]


# --------------------------------------------------------------------------- errors

_TERMINAL_WORDS = {
    "NAME": "a name", "STRING": "a string", "RAW_STRING": "a raw string", "REGEX": "a regex",
    "NUMBER": "a number", "DURATION": "a duration (like 30s)", "PLACEHOLDER": "a placeholder <field>",
    "FIELD_SEG": "a field name", "EQ": "'='", "CMP_OP": "an operator (= != ~ !~ < <= > >=)",
    "LPAR": "'('", "RPAR": "')'", "LSQB": "'['", "RSQB": "']'", "COMMA": "','", "DOT": "'.'",
    "COLON": "':'", "EQUAL": "'='", "STAR": "'*'", "SECRET_KIND": "'env' or 'file'",
    "IN": "'in'", "NOT": "'not'", "TRUE": "'true'", "FALSE": "'false'", "$END": "end of declaration",
}


def _describe_expected(expected: set[str]) -> str:
    words = []
    for t in sorted(expected):
        if t in _TERMINAL_WORDS:
            words.append(_TERMINAL_WORDS[t])
        elif t.isupper():
            words.append(f"'{t.lower()}'")
        else:
            words.append(t)
    words = sorted(set(words))
    if len(words) > 6:
        words = words[:6] + ["..."]
    return "expected " + ", ".join(words)


def _token_text(tok: Token) -> str:
    if tok.type == "$END":
        return "end of declaration"
    s = str(tok)
    return repr(s if len(s) <= 30 else s[:27] + "...")


# --------------------------------------------------------------------------- AST builder

def _unescape(body: str, span_start: Pos, diags: Diagnostics) -> str:
    out, i, n = [], 0, len(body)
    simple = {'"': '"', "\\": "\\", "n": "\n", "t": "\t", "r": "\r", "0": "\0"}
    while i < n:
        c = body[i]
        if c != "\\":
            out.append(c)
            i += 1
            continue
        nxt = body[i + 1] if i + 1 < n else ""
        col = span_start.column + 1 + i
        if nxt in simple:
            out.append(simple[nxt])
            i += 2
        elif nxt == "u" and i + 2 < n and body[i + 2] == "{":
            close = body.find("}", i + 3)
            hexs = body[i + 3:close] if close != -1 else ""
            if close != -1 and 1 <= len(hexs) <= 6 and all(h in "0123456789abcdefABCDEF" for h in hexs) \
                    and int(hexs, 16) <= 0x10FFFF and not 0xD800 <= int(hexs, 16) <= 0xDFFF:
                out.append(chr(int(hexs, 16)))
                i = close + 1
            else:
                end = (close + 1) if close != -1 else i + 2
                diags.error("TRG003", "invalid unicode escape",
                            Span(Pos(span_start.line, col, span_start.offset + 1 + i),
                                 Pos(span_start.line, span_start.column + 1 + end, span_start.offset + 1 + end)),
                            "write \\u{XXXX} with 1 to 6 hex digits naming a character (not D800-DFFF)")
                i = end
        else:
            diags.error("TRG003", f"invalid escape '\\{nxt}'",
                        Span(Pos(span_start.line, col, span_start.offset + 1 + i),
                             Pos(span_start.line, col + 2, span_start.offset + 3 + i)),
                        "valid escapes are \\\" \\\\ \\n \\t \\u{XXXX}; use r\"...\" for a raw string")
            out.append(nxt)
            i += 2
    return "".join(out)


class _Builder(Transformer):
    """Lark tree -> AST, shifting positions by the declaration's place in the file.

    Every handler is called as ``handler(meta, children)``: dispatching here directly
    (rather than through ``v_args``, which builds a wrapper per call) halves the cost of
    this pass on large files.
    """

    def __init__(self, line_off: int, pos_off: int, diags: Diagnostics):
        super().__init__(visit_tokens=False)
        self.lo, self.po, self.diags = line_off, pos_off, diags

    def _call_userfunc(self, tree, new_children=None):
        children = new_children if new_children is not None else tree.children
        f = getattr(self, tree.data, None)
        if f is None or tree.data.startswith("_"):  # pragma: no cover - every rule has a handler
            raise VisitError(tree.data, tree, TypeError(f"no handler for rule {tree.data!r}"))
        return f(tree.meta, children)

    # spans
    def ts(self, t: Token) -> Span:
        return Span(Pos(t.line + self.lo, t.column, t.start_pos + self.po),
                    Pos(t.end_line + self.lo, t.end_column, t.end_pos + self.po))

    def ms(self, meta) -> Span:
        if getattr(meta, "empty", True):
            return Span(Pos(1 + self.lo, 1, self.po), Pos(1 + self.lo, 1, self.po))
        return Span(Pos(meta.line + self.lo, meta.column, meta.start_pos + self.po),
                    Pos(meta.end_line + self.lo, meta.end_column, meta.end_pos + self.po))

    def name(self, t: Token, declared: bool = False) -> A.Name:
        n = A.Name(str(t), self.ts(t))
        if declared and n.value in RESERVED:
            self.diags.error("TRG001", f"'{n.value}' is a reserved word and cannot be a name", n.span,
                             "pick another name")
        return n

    # ---------------------------------------------------------------- values
    def string(self, meta, children):
        t = children[0]
        span = self.ts(t)
        if t.type == "RAW_STRING":
            return A.Str(str(t)[2:-1], True, span)
        return A.Str(_unescape(str(t)[1:-1], span.start, self.diags), False, span)

    def regex(self, meta, children):
        t = str(children[0])
        end = t.rfind("/")
        return A.Regex(t[1:end].replace("\\/", "/"), t[end + 1:], self.ts(children[0]))

    def number(self, meta, children):
        t = str(children[0])
        v = float(t) if "." in t else int(t)
        return A.Num(v, t, self.ts(children[0]))

    def duration(self, meta, children):
        t = str(children[0])
        m = re.fullmatch(r"([0-9]+(?:\.[0-9]+)?)(ms|s|m|h|d)", t)
        return A.Duration(float(m.group(1)) * _DURATION_UNITS_MS[m.group(2)], t, self.ts(children[0]))

    def true(self, meta, children):
        return A.Bool(True, self.ts(children[0]))

    def false(self, meta, children):
        return A.Bool(False, self.ts(children[0]))

    def list(self, meta, children):
        return A.ListLit(tuple(c for c in children if c is not None), self.ms(meta))

    def ref(self, meta, children):
        return A.Ref(str(children[0]), self.ts(children[0]))

    def field(self, meta, children):
        return A.FieldPath(tuple(str(c) for c in children), self.ms(meta))

    def placeholder(self, meta, children):
        t = children[0]
        span = self.ts(t)
        inner = Span(Pos(span.start.line, span.start.column + 1, span.start.offset + 1),
                     Pos(span.end.line, span.end.column - 1, span.end.offset - 1))
        return A.Placeholder(A.FieldPath(tuple(str(t)[1:-1].split(".")), inner), span)

    # ---------------------------------------------------------------- filters
    def compare(self, meta, children):
        f, op, v = children
        return A.Compare(f, str(op), v, self.ms(meta), self.ts(op))

    def compare_not_in(self, meta, children):
        f, n, i, v = children
        return A.Compare(f, "not in", v, self.ms(meta), self.ts(n).join(self.ts(i)))

    def has(self, meta, children):
        return A.Has(children[0], self.ms(meta))

    def not_expr(self, meta, children):
        return A.Not(children[-1], self.ms(meta))

    def and_expr(self, meta, children):
        items = []
        for c in children:
            items.extend(c.items if isinstance(c, A.And) else (c,))
        return A.And(tuple(items), self.ms(meta))

    def or_expr(self, meta, children):
        items = []
        for c in children:
            items.extend(c.items if isinstance(c, A.Or) else (c,))
        return A.Or(tuple(items), self.ms(meta))

    # ---------------------------------------------------------------- triggers
    def event_trigger(self, meta, children):
        return A.EventTrigger(self.name(children[0]), self.name(children[-1]), self.ms(meta))

    def every_trigger(self, meta, children):
        return A.EveryTrigger(children[0], self.ms(meta))

    def cron_trigger(self, meta, children):
        expr = self.string(None, [children[0]])
        tz = self.string(None, [children[1]]) if children[1] is not None else None
        return A.CronTrigger(expr, tz, self.ms(meta))

    # ---------------------------------------------------------------- rules
    def with_args(self, meta, children):
        return tuple(c if isinstance(c, A.Arg) else A.Arg(None, c, c.span) for c in children)

    def named_arg(self, meta, children):
        return A.Arg(self.name(children[0]), children[1], self.ms(meta))

    def p_debounce(self, meta, c):
        return A.Policy("debounce", c[0], span=self.ms(meta))

    def p_busy(self, meta, c):
        return A.Policy("busy", self.name(c[0]), span=self.ms(meta))

    def p_timeout(self, meta, c):
        return A.Policy("timeout", c[0], span=self.ms(meta))

    def p_retry(self, meta, c):
        return A.Policy("retry", c[0], c[1], span=self.ms(meta))

    def p_dedupe(self, meta, c):
        return A.Policy("dedupe", None, c[1], key=c[0], span=self.ms(meta))

    def rule(self, meta, c):
        label, trigger, filt, _run, action, args, *policies = c
        return A.Rule(self.name(label, True) if label is not None else None, trigger, filt,
                      self.name(action), args or (), tuple(policies), self.ms(meta))

    def corr_rule(self, meta, c):
        label, trigger, _run, action, args, *policies = c
        return A.Rule(self.name(label, True) if label is not None else None, trigger, None,
                      self.name(action), args or (), tuple(policies), self.ms(meta))

    # ---------------------------------------------------------------- correlation triggers
    # Optional clauses arrive as None placeholders or as the tagged tuples below, in the
    # order the grammar allows them; _clauses sorts them out by tag.
    def corr_same(self, meta, c):
        return ("same", tuple(c))

    def nested_same(self, meta, c):
        return ("same", tuple(c))

    def corr_within(self, meta, c):
        return ("within", c[0])

    def corr_max(self, meta, c):
        return ("max", c[0])

    def corr_tail(self, meta, c):
        return ("tail", [x for x in c if x is not None])

    def absence_tail(self, meta, c):
        return ("tail", [x for x in c if x is not None])

    @staticmethod
    def _clauses(items) -> dict:
        out: dict = {}
        for x in items:
            if x is None:
                continue
            if isinstance(x, tuple) and x and x[0] == "tail":
                out.update(_Builder._clauses(x[1]))
            elif isinstance(x, tuple) and x and x[0] in ("same", "within", "max"):
                out[x[0]] = x[1]
            elif isinstance(x, Token) and x.type == "IN":
                out["in"] = True
            elif isinstance(x, A.AbsentWindow):
                out["window"] = x
            elif out.get("in") is True:
                out["in"] = x            # the LIST after `in`
            else:
                out["trailing"] = x      # a filter after the whole trigger (TRG709)
        return out

    def member(self, meta, c):
        trig, filt, alias, keys = c
        return A.Member(trig, filt, self.name(alias) if alias is not None else None, keys or (), self.ms(meta))

    def member_key(self, meta, c):
        return tuple(x for x in c if isinstance(x, A.Placeholder))

    def items(self, meta, c):
        trailing = c[-1] is not None and isinstance(c[-1], Token)
        return tuple(x for x in c if x is not None and not isinstance(x, Token)), trailing

    def _group(self, kind, meta, items, n=None):
        its, comma = items
        return A.Group(kind, its, n, trailing_comma=comma, span=self.ms(meta))

    def g_all(self, meta, c):
        return self._group("all", meta, c[0])

    def g_any(self, meta, c):
        return self._group("any", meta, c[0])

    def g_seq(self, meta, c):
        return self._group("seq", meta, c[0])

    def g_n_of(self, meta, c):
        return self._group("n_of", meta, c[1], self.number(None, [c[0]]))

    def _with(self, g: A.Group, cl: dict, meta) -> A.Group:
        return A.Group(g.kind, g.items, g.n, cl.get("same", ()), cl.get("within"), cl.get("max"),
                       cl.get("trailing"), g.trailing_comma, self.ms(meta))

    def correlation(self, meta, c):
        return self._with(c[0], self._clauses(c[1:]), meta)

    def nested(self, meta, c):
        return self._with(c[0], self._clauses(c[1:]), meta)

    def count_correlation(self, meta, c):
        n, member, *rest = c
        g = A.Group("count", (member,), self.number(None, [n]))
        return self._with(g, self._clauses(rest), meta)

    def nested_count(self, meta, c):
        return self.count_correlation(meta, c)

    def absence(self, meta, c):
        member, after, *rest = c
        cl = self._clauses(rest)
        same_in = cl.get("in")
        return A.Absence(member, after, cl.get("same", ()), None if same_in is True else same_in,
                         cl.get("window"), cl.get("max"), cl.get("trailing"), self.ms(meta))

    def nested_absent(self, meta, c):
        return A.Absence(c[0], span=self.ms(meta))

    def aw_within(self, meta, c):
        return A.AbsentWindow("within", c[0], span=self.ms(meta))

    def aw_for(self, meta, c):
        return A.AbsentWindow("for", c[0], span=self.ms(meta))

    def aw_between(self, meta, c):
        start, end, tz = c
        return A.AbsentWindow("between", None, self.string(None, [start]), self.string(None, [end]),
                              self.string(None, [tz]) if tz is not None else None, self.ms(meta))

    # ---------------------------------------------------------------- declarations
    def let_decl(self, meta, c):
        return A.Let(self.name(c[0], True), c[1], self.ms(meta))

    def secret_decl(self, meta, c):
        return A.Secret(self.name(c[0], True), str(c[1]), self.string(None, [c[2]]), self.ms(meta))

    def option(self, meta, c):
        return A.Option(self.name(c[0]), c[1], self.ms(meta))

    def source_decl(self, meta, c):
        return A.SourceDecl(self.name(c[0]), tuple(c[1:]), self.ms(meta))

    def param(self, meta, c):
        return A.Param(self.name(c[0], True), c[1], self.ms(meta))

    def params(self, meta, c):
        return tuple(p for p in c[1:] if p is not None)

    def argv_ref(self, meta, c):
        return A.Ref(str(c[0]), self.ts(c[0]))

    def argv_str(self, meta, c):
        return self.string(None, c)

    def exec_assign(self, meta, c):
        return ("assign", self.name(c[0]), self.string(None, [c[2]]), self.ms(meta))

    def exec_body(self, meta, c):
        """Split exec words into argv and options: ``env NAME="v"`` arrives as Ref(env), assign."""
        argv: list = []
        opts: list = []
        words = list(c)
        for i, w in enumerate(words):
            nxt = words[i + 1] if i + 1 < len(words) else None
            if isinstance(w, A.Ref) and w.name == "env" and isinstance(nxt, tuple):
                continue  # the option's keyword: taken with the assignment that follows
            if isinstance(w, tuple):
                _, name, val, span = w
                prev = words[i - 1] if i else None
                if isinstance(prev, A.Ref) and prev.name == "env":
                    opts.append(A.ActionOption("env", name, val, prev.span.join(span)))
                else:
                    self.diags.error("TRG001", "unexpected '=' in an exec argv", span,
                                     'an environment variable is written: env NAME="value"')
            elif isinstance(w, A.ActionOption):
                opts.append(w)
            elif opts:
                self.diags.error("TRG001", "argv items must come before the options (cwd, env)", w.span,
                                 "move this argument before cwd/env")
            else:
                argv.append(w)
        end = argv[-1].span if argv else self.ms(meta)
        return A.ExecBody(tuple(argv), self.ms(meta).__class__(self.ms(meta).start, end.end)), tuple(opts)

    def shell_body(self, meta, c):
        return A.ShellBody(self.string(None, [c[0]]), self.ms(meta))

    def http_body(self, meta, c):
        return A.HttpBody(self.name(c[0]), self.string(None, [c[1]]), tuple(c[2:]), self.ms(meta))

    def opt_cwd(self, meta, c):
        return A.ActionOption("cwd", None, self.string(None, [c[0]]), self.ms(meta))

    def opt_env(self, meta, c):
        return A.ActionOption("env", self.name(c[0]), self.string(None, [c[1]]), self.ms(meta))

    def action_decl(self, meta, c):
        name = self.name(c[0], True)
        rest = c[1:]
        params: tuple = ()
        has_parens = False
        if isinstance(rest[0], tuple):
            params, has_parens = rest[0], True
        rest = rest[1:]
        body, *opts = rest
        if isinstance(body, tuple):  # exec: its options came with it
            body, opts = body
        return A.ActionDecl(name, params, body, tuple(opts), has_parens, self.ms(meta))

    # ---------------------------------------------------------------- tests
    def given_field(self, meta, c):
        return A.GivenField(c[0], c[1], self.ms(meta))

    def given(self, meta, c):
        trig, *fields, _from, from_file = c
        ff = self.string(None, [from_file]) if from_file is not None else None
        fields = tuple(fields)
        return A.Given(trig, fields, ff, self.ms(meta))

    def expect_match(self, meta, c):
        return A.Expect("match", (self.name(c[0]),), c[1] or (), c[1] is not None, span=self.ms(meta))

    def expect_not(self, meta, c):
        return A.Expect("not", (self.name(c[1]),), span=self.ms(meta))

    def expect_only(self, meta, c):
        return A.Expect("only", tuple(self.name(t) for t in c), span=self.ms(meta))

    def expect_none(self, meta, c):
        return A.Expect("none", span=self.ms(meta))

    def _expect_group(self, kind, meta, c):
        name, key, missing = c
        return A.Expect(kind, (self.name(name),), key=key or (), missing=missing or (),
                        has_missing=missing is not None, span=self.ms(meta))

    def expect_open(self, meta, c):
        return self._expect_group("open", meta, c)

    def expect_expired(self, meta, c):
        return self._expect_group("expired", meta, c)

    def expect_key(self, meta, c):
        return tuple(x for x in c if x is not None)

    def expect_missing(self, meta, c):
        return tuple(self.name(t) for t in c)

    def wait_step(self, meta, c):
        return A.Wait(c[0], self.ms(meta))

    def at_step(self, meta, c):
        return A.At(self.string(None, [c[0]]), self.ms(meta))

    def test_decl(self, meta, c):
        name, *steps = c
        return A.TestBlock(self.string(None, [name]), tuple(steps), self.ms(meta))

    def start(self, meta, c):
        return c[0]


# --------------------------------------------------------------------------- entry point

class ParseCache:
    """Declarations already parsed, by their text: what makes re-parsing an edited file cheap.

    An editor re-parses a file on every change, and a change touches one declaration; the
    others are the same text, often at another place (a line typed above them moves them
    down). The cache keeps each declaration's tree and diagnostics as parsed at the top of
    a file (line 1, offset 0), keyed by its text, and :func:`parse` moves a hit to where
    the declaration now is (:func:`~triggerlang.syntax.ast.shifted`): ~10x cheaper than
    Lark. ``limit`` bounds the entries; the oldest go first. One cache per document
    (diagnostics carry the file name).
    """

    def __init__(self, limit: int = 200_000):
        self.limit = limit
        # chunk -> [tree at the top, its diagnostics, (line, offset) last placed at, tree there, diagnostics there]
        self.entries: dict[str, list] = {}
        self.hits = 0
        self.misses = 0

    def get(self, chunk: str):
        return self.entries.get(chunk)

    def put(self, chunk: str, value) -> None:
        if len(self.entries) >= self.limit:
            for k in list(self.entries)[: max(1, self.limit // 10)]:
                del self.entries[k]
        self.entries[chunk] = value


def _parse_chunk(chunk: str, first: int, start_off: int, diags: Diagnostics) -> A.Decl | None:
    """Parse one declaration whose first line is line ``first`` (0-based) of the file."""
    builder = _Builder(first, start_off, diags)
    try:
        tree = lark_parser().parse(chunk)
        return builder.transform(tree)
    except UnexpectedInput as e:
        _syntax_error(e, chunk, first, start_off, diags)
    except VisitError as e:  # pragma: no cover - a bug in the builder, reported, not raised
        diags.error("TRG000", f"internal error while reading this declaration: {e.orig_exc}",
                    Span(Pos(first + 1, 1, start_off), Pos(first + 1, len(chunk.split("\n", 1)[0]) + 1, start_off)))
    return None


def parse(text: str, file: str = "<input>", cache: ParseCache | None = None) -> tuple[A.Module, Diagnostics]:
    """Parse a whole file. Never raises for bad input: problems become diagnostics.

    With a ``cache`` (an editor's), declarations parsed before are taken from it; the
    result is the same module and diagnostics, spans included.
    """
    diags = Diagnostics(file)
    if text.startswith("\ufeff"):
        text = text[1:]
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    lines = text.split("\n")
    decls: list[A.Decl] = []
    for first, last, start_off in split_declarations(text):
        chunk = "\n".join(lines[first:last + 1])
        if cache is None:
            decl = _parse_chunk(chunk, first, start_off, diags)
        else:
            hit = cache.get(chunk)
            if hit is None:
                cache.misses += 1
                local = Diagnostics(file)
                hit = [_parse_chunk(chunk, 0, 0, local), local.items, None, None, None]
                cache.put(chunk, hit)
            else:
                cache.hits += 1
            if hit[2] != (first, start_off):  # moved since last time (a declaration above changed)
                node, found = hit[0], hit[1]
                hit[2:] = [(first, start_off), A.shifted(node, first, start_off) if node is not None else None,
                           [A.shifted_diagnostic(d, first, start_off) for d in found]]
            decl = hit[3]
            diags.items.extend(hit[4])
        if decl is not None:
            decls.append(decl)
    end_line = len(lines)
    return A.Module(tuple(decls), file, Span(Pos(1, 1, 0), Pos(end_line, len(lines[-1]) + 1, len(text)))), diags


# --------------------------------------------------------------------------- better errors
#
# Two common mistakes get a precise diagnostic instead of "unexpected ..." at a place that
# makes little sense: a misspelled keyword (`rnu`, `wiht`, `debounse`) and a duration the
# lexer cannot read (`10mins`, `5 m`, `timeout 10`).

_DURATION_UNITS = {"ms": "ms", "msec": "ms", "msecs": "ms", "millisecond": "ms", "milliseconds": "ms",
                   "s": "s", "sec": "s", "secs": "s", "second": "s", "seconds": "s",
                   "m": "m", "min": "m", "mins": "m", "minute": "m", "minutes": "m",
                   "h": "h", "hr": "h", "hrs": "h", "hour": "h", "hours": "h",
                   "d": "d", "day": "d", "days": "d", "w": "w", "wk": "w", "week": "w", "weeks": "w"}
_NUMBER_AND_WORD = re.compile(r"(\d+(?:\.\d+)?)([ \t]*)([A-Za-z]*)(?![A-Za-z0-9_])")
_WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_\-]*")
_WORD_BEFORE = re.compile(r"([A-Za-z_][A-Za-z0-9_\-]*)\s*$")
_NUMBER_BEFORE = re.compile(r"(?<![A-Za-z0-9_.\-])(\d+(?:\.\d+)?)[ \t]+$")


def _error_offset(e: UnexpectedInput, chunk: str) -> int:
    """Where in the chunk the parser stopped (the end for an early end of input)."""
    if isinstance(e, UnexpectedToken):
        return len(chunk) if e.token.type == "$END" else e.token.start_pos
    if isinstance(e, UnexpectedCharacters):
        return e.pos_in_stream
    return len(chunk)


def _bad_duration(e: UnexpectedInput, chunk: str) -> tuple[int, int, str, str] | None:
    """(start, end, text, hint) when the parser wanted a duration and found a number with a
    time unit it does not know (``10mins``, ``2 hours``, ``1w``) or none (``timeout 10``)."""
    wanted = getattr(e, "expected", None) or getattr(e, "allowed", None) or ()
    at = _error_offset(e, chunk)
    if "DURATION" not in wanted:
        # `let x = 3 hours`: the number was read, and the parser stopped at the unit
        m = _NUMBER_BEFORE.search(chunk, 0, at)
        unit = _WORD.match(chunk, at)
        if m is None or unit is None or _DURATION_UNITS.get(unit.group().lower(), "w") == "w":
            return None
        fixed = chunk[:m.start(1)] + m.group(1) + _DURATION_UNITS[unit.group().lower()] + chunk[unit.end():]
        try:  # only where a duration would have been read (not `retry 3 m`)
            lark_parser().parse(fixed)
        except UnexpectedInput as again:
            if _error_offset(again, fixed) <= m.start(1) + len(m.group(1)) + 2:
                return None
        at, wanted = m.start(1), {"DURATION"}
    m = _NUMBER_AND_WORD.match(chunk, at)
    if m is None:
        return None
    number, space, word = m.groups()
    if not word:
        if "NUMBER" in wanted:  # a number is fine here (`retry 3`): not this mistake
            return None
        return at, m.end(), m.group(), f"a duration needs a unit: {number}s, {number}m, {number}h or {number}d"
    unit = _DURATION_UNITS.get(word.lower())
    if unit is None:
        return None
    if unit == "w":
        days = float(number) * 7
        return at, m.end(), m.group(), f"weeks are written in days: {days:g}d"
    how = "no space between the number and its unit" if space else "the units are ms, s, m, h and d"
    return at, m.end(), m.group(), f"write {number}{unit} ({how})"


@lru_cache(maxsize=1)
def _keywords() -> tuple[str, ...]:
    """Every keyword of the grammar (its literal terminals made of letters), sorted."""
    return tuple(sorted({term.pattern.value for term in lark_parser().terminals
                         if term.pattern.type == "str" and term.pattern.value.isalpha()}))


def _keyword_fix(e: UnexpectedInput, chunk: str) -> tuple[int, int, str] | None:
    """(start, end, keyword) for a misspelled keyword: the word the parser stopped at
    (``wiht``), or the word just before it, which the parser took for a name (``rnu`` in
    ``branch="main" rnu deploy``). A keyword close to the word by edit distance is
    suggested only if the declaration, with it, parses, or fails later than before."""
    from ..diagnostics import edit_distance

    at = _error_offset(e, chunk)
    words = []
    m = _WORD.match(chunk, at)
    if m is not None:
        words.append((m.start(), m.end()))
    m = _WORD_BEFORE.search(chunk, 0, at)
    if m is not None and (m.start() == 0 or chunk[m.start() - 1] not in ".<"):
        words.append((m.start(1), m.end(1)))
    keywords = _keywords()
    close = []  # (distance, which word, keyword): the closest repair first
    for n, (start, end) in enumerate(words):
        word = chunk[start:end]
        if word in keywords:
            continue
        limit = max(1, min(3, len(word) // 3 + 1))
        close += [(d, n, k) for k in keywords if (d := edit_distance(word.lower(), k, limit)) <= limit]
    for _, n, keyword in sorted(close):
        start, end = words[n]
        fixed = chunk[:start] + keyword + chunk[end:]
        try:
            lark_parser().parse(fixed)
        except UnexpectedInput as again:
            if _error_offset(again, fixed) <= at + len(keyword) - (end - start):
                continue
        return start, end, keyword
    return None


def _syntax_error(e: UnexpectedInput, chunk: str, line_off: int, pos_off: int, diags: Diagnostics) -> None:
    chunk_lines = chunk.split("\n")

    def span_of(start: int, end: int) -> Span:
        def pos(i: int) -> Pos:
            return Pos(chunk.count("\n", 0, i) + 1 + line_off, i - (chunk.rfind("\n", 0, i) + 1) + 1, i + pos_off)
        return Span(pos(start), pos(end))

    bad = _bad_duration(e, chunk)
    if bad is not None:
        start, end, text, hint = bad
        diags.error("TRG304", f"invalid duration '{text}'", span_of(start, end), hint)
        return
    fix = _keyword_fix(e, chunk)
    if fix is not None:
        start, end, keyword = fix
        diags.error("TRG001", f"unexpected '{chunk[start:end]}'", span_of(start, end), f"did you mean '{keyword}'?")
        return
    if isinstance(e, UnexpectedToken) and e.token.type != "$END":
        t = e.token
        span = Span(Pos(t.line + line_off, t.column, t.start_pos + pos_off),
                    Pos(t.end_line + line_off, t.end_column, t.end_pos + pos_off))
        msg = f"unexpected {_token_text(t)}"
        if str(t) in RESERVED and "NAME" in e.expected:
            msg = f"'{t}' is a reserved word and cannot be used here"
        diags.error("TRG001", msg, span, _describe_expected(set(e.expected)))
        return
    if isinstance(e, UnexpectedCharacters):
        line, col = e.line + line_off, e.column
        ch = chunk[e.pos_in_stream] if e.pos_in_stream < len(chunk) else ""
        span = Span(Pos(line, col, e.pos_in_stream + pos_off), Pos(line, col + 1, e.pos_in_stream + pos_off + 1))
        hint = None
        if ch == '"':
            hint = "this string is not closed on its line"
        elif ch == "/":
            hint = "this regex is not closed: write /pattern/flags"
        elif ch == "<":
            hint = "a placeholder is <field>, and goes in 'with' arguments"
        elif e.allowed:
            hint = _describe_expected(set(e.allowed))
        diags.error("TRG001", f"unexpected character {ch!r}", span, hint)
        return
    # end of declaration reached too early
    expected = set(getattr(e, "expected", ()) or ())
    last_idx = max(i for i, ln in enumerate(chunk_lines) if ln.strip()) if chunk.strip() else 0
    last_line = chunk_lines[last_idx]
    code_part = split_comment(last_line)[0].rstrip()
    col = len(code_part) + 1
    line_start = pos_off + sum(len(ln) + 1 for ln in chunk_lines[:last_idx])
    span = Span(Pos(last_idx + 1 + line_off, max(1, col - 1), line_start + max(0, col - 2)),
                Pos(last_idx + 1 + line_off, col, line_start + col - 1))
    depth = sum(_bracket_delta(ln) for ln in chunk_lines)
    if depth > 0:
        diags.error("TRG002", "unclosed '(' or '[' at the end of this declaration", span,
                    "close the bracket before the next declaration")
    elif "RUN" in expected:
        diags.error("TRG002", "this rule has no 'run ACTION'", span, "end the rule with: run ACTION [with ARGS]")
    else:
        diags.error("TRG002", "unexpected end of declaration", span, _describe_expected(expected))
