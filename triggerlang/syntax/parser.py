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
2. **Parse.** The whole file goes through the grammar's LALR tables in one pass
   (:class:`_Machine`: Lark's parse table and contextual lexer, compiled ahead of time by
   :mod:`triggerlang.syntax.tables`), one declaration after the other, each node built as
   its rule is reduced: no parse tree, positions straight from the tokens. A declaration
   the tables reject is parsed again alone by Lark itself (:func:`lark_parser`, the same
   grammar), which reports the syntax error: this per-declaration fallback is the error
   recovery, so a syntax error costs one declaration and the file's other errors are still
   found (three broken rules give three diagnostics), with the messages and positions Lark
   gives. Lark is imported only then: a file without syntax errors never loads it.
3. **Build.** :class:`_Builder` turns each rule's children into frozen AST nodes with
   spans, the same code on both paths. String escapes are resolved here (an invalid escape
   is a diagnostic at its position).

Both paths give the same tree and the same spans (a node spans its first child to its last,
the tokens Lark filters out of the tree included, as Lark's ``propagate_positions`` does);
``tests/test_parser.py`` checks it on every example, test case and fuzzed text.

Lark stays inside this package: nothing else sees a ``Tree`` or a ``Token``.
"""

from __future__ import annotations

import dataclasses
import json
import re
from functools import lru_cache
from typing import TYPE_CHECKING, NamedTuple

from ..diagnostics import Diagnostics, Edit, Fix, Pos, Span, replace_fix
from ..diagnostics import write_hint as _write
from . import ast as A
from . import tables as T

if TYPE_CHECKING:  # (Lark is imported only where a declaration does not parse)
    from lark.exceptions import UnexpectedInput

RESERVED = frozenset("on run with and or not in has true false".split())
"""The words the grammar's NAME can never be (``grammar/triggerlang.lark``)."""
DECL_KEYWORDS = ("let", "include", "secret", "source", "action", "on", "test")

_DURATION_UNITS_MS = {"ms": 1, "s": 1000, "m": 60_000, "h": 3_600_000, "d": 86_400_000}


def _grammar_text() -> str:
    return T.read_grammar()


@lru_cache(maxsize=1)
def lark_parser():
    """The Lark LALR parser of the grammar (made once per process): the slow path, for the
    declarations the tables reject, and what the tables are made from.

    Making it takes Lark 0.13 s; loading it saved takes 0.015 s, so it is kept in the
    user's cache folder (:mod:`triggerlang.usercache`: private, each entry MAC'd, so only a
    parser this user's triggerc saved is ever unpickled), keyed by the grammar, Lark's
    version and Python's. Not Lark's own ``cache=True``: that loads whatever pickle sits
    under a predictable name in the shared temporary folder.
    """
    import io
    import sys

    import lark

    from .. import usercache

    grammar = _grammar_text()
    d = usercache.default_cache_dir()
    if d is None:
        return T.make_lark(grammar)
    import hashlib

    key = hashlib.sha256(f"{lark.__version__}\0{sys.version}\0{T.LARK_OPTIONS!r}\0{grammar}".encode()).hexdigest()
    name = f"lark-{key[:32]}.pickle"
    body = usercache.read(d, name, key)
    if body is not None:
        try:
            return lark.Lark.load(io.BytesIO(body))
        except Exception:  # pragma: no cover - a pickle of another Lark: make it again
            pass
    parser = T.make_lark(grammar)
    buf = io.BytesIO()
    try:
        parser.save(buf)
    except Exception:  # pragma: no cover - nothing to keep
        return parser
    if usercache.write(d, name, key, buf.getvalue()):
        usercache.prune(d, "lark-*.pickle", 1)
    return parser


class _LazyPattern:
    """A regex compiled on its first use. Most of this module's patterns read a declaration
    only after a syntax error, to say what to write (the hints); compiled at import they
    cost every ``triggerc check`` about 6 ms of its start (45 patterns), a clean file too.
    A method, once asked for, is the compiled pattern's own, kept in the instance's
    ``__dict__``: the next call finds it there, with no ``__getattr__`` on the way (the
    splitter's patterns run for every line of a 10,000-rule file)."""

    def __init__(self, *args: object) -> None:
        self._args, self._compiled = args, None

    def __getattr__(self, name: str) -> object:   # match, search, sub, ...: the pattern's own
        if self._compiled is None:
            self._compiled = re.compile(*self._args)
        value = getattr(self._compiled, name)
        self.__dict__[name] = value
        return value


def _lazy_re(pattern: str, flags: int = 0) -> "re.Pattern[str]":
    return _LazyPattern(pattern, flags)  # type: ignore[return-value]


# --------------------------------------------------------------------------- splitting

# (a keyword ends where a name would: `on-call` or `test-x` is a name, '-' being a name character)
_DECL_START = _lazy_re(r"(let|include|secret|source|action|on|test)(?![A-Za-z0-9_\-])"
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


def _open_bracket(chunk: str, end: int) -> int | None:
    """The offset of the innermost ``(`` or ``[`` still open at ``end`` of the chunk, or None."""
    opened: list[int] = []
    start = 0
    for line in chunk[:end].split("\n"):
        for i, c in _code_chars(line):
            if c in "([":
                opened.append(start + i)
            elif c in ")]" and opened:
                opened.pop()
        start += len(line) + 1
    return opened[-1] if opened else None


def split_comment(line: str) -> tuple[str, str | None]:
    """``(code, comment)`` of one line; ``#`` inside strings and regexes is not a comment."""
    for i, c in _code_chars(line):
        if c == "#":
            return line[:i], line[i:]
    return line, None


def split_declarations(text: str) -> list[tuple[int, int, int]]:
    """``(first_line_index, last_line_index, start_offset)`` of each declaration (0-based lines)."""
    return [(a, b, c) for a, b, c, _ in _declarations(text)]


def _declarations(text: str, lines: list[str] | None = None) -> list[list[int]]:
    """``[first_line_index, last_line_index, start_offset, end_offset]`` of each declaration:
    its text is ``text[start_offset:end_offset]``, from the start of its first line to the
    end of its last (``lines`` is ``text.split("\n")`` when the caller has it)."""
    chunks: list[list[int]] = []
    depth = 0
    offset = 0
    for idx, line in enumerate(text.split("\n") if lines is None else lines):
        stripped = line.strip()
        line_start = offset
        offset += len(line) + 1
        if not stripped or stripped.startswith("#"):
            continue
        starts_col1 = not line[0].isspace()
        if starts_col1 and (depth <= 0 or _DECL_START.match(line)):
            chunks.append([idx, idx, line_start, line_start + len(line)])
            depth = 0
        elif chunks:
            chunks[-1][1] = idx
            chunks[-1][3] = line_start + len(line)
        else:
            chunks.append([idx, idx, line_start, line_start + len(line)])
        depth = max(0, depth + _bracket_delta(line))
    return chunks


# --------------------------------------------------------------------------- errors

_TERMINAL_WORDS = {
    "NAME": "a name", "STRING": "a string", "RAW_STRING": "a raw string", "REGEX": "a regex",
    "NUMBER": "a number", "DURATION": "a duration (like 30s)", "PLACEHOLDER": "a placeholder <field>",
    "FIELD_SEG": "a field name", "EQ": "'='", "CMP_OP": "an operator (= != ~ !~ < <= > >=)",
    "LPAR": "'('", "RPAR": "')'", "LSQB": "'['", "RSQB": "']'", "COMMA": "','", "DOT": "'.'",
    "COLON": "':'", "EQUAL": "'='", "STAR": "'*'", "SECRET_KIND": "'env' or 'file'",
    "IN": "'in'", "NOT": "'not'", "TRUE": "'true'", "FALSE": "'false'", "$END": "end of declaration", "<END-OF-FILE>": "end of declaration",
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


def _token_text(tok) -> str:
    if tok.type == "$END":
        return "end of declaration"
    s = str(tok)
    return repr(s if len(s) <= 30 else s[:27] + "...")


# --------------------------------------------------------------------------- AST builder

def _unescape(body: str, span_start: Pos, diags: Diagnostics) -> str:
    if "\\" not in body:
        return body  # (most strings: nothing to resolve)
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
                out.append(body[i:end])  # as written: two strings with different bad escapes stay different
                i = end
        else:
            diags.error("TRG003", f"invalid escape '\\{nxt}'",
                        Span(Pos(span_start.line, col, span_start.offset + 1 + i),
                             Pos(span_start.line, col + 2, span_start.offset + 3 + i)),
                        "valid escapes are \\\" \\\\ \\n \\t \\u{XXXX}; use r\"...\" for a raw string")
            out.append(body[i:i + 2])
            i += 2
    return "".join(out)


class Tok(NamedTuple):
    """A token: its terminal's name (``type``), its text and its span in the file. What
    Lark's ``Token`` holds, without Lark: the tables' lexer makes these (a tuple: the
    cheapest object Python makes, and a large file has hundreds of thousands), and Lark's
    tokens become these before the builder sees them, so the builder has one kind."""

    type: str
    value: str
    span: Span

    @classmethod
    def of(cls, t, line_off: int = 0, pos_off: int = 0) -> "Tok":
        """A Lark ``Token`` of a declaration parsed alone, moved to its place in the file."""
        return cls(t.type, str(t), Span(Pos(t.line + line_off, t.column, t.start_pos + pos_off),
                                        Pos(t.end_line + line_off, t.end_column, t.end_pos + pos_off)))

    def __str__(self) -> str:
        return self.value


def _header_case(parts: tuple[str, ...]) -> tuple[str, ...]:
    """``headers.X-GitHub-Event`` read as ``headers.x-github-event``: header names are
    case-insensitive (RFC 9110), and events carry them in lower case, so a name written as
    the sender's documentation writes it matched nothing."""
    if len(parts) > 1 and parts[0] == "headers" and not parts[1].islower():
        return (parts[0], parts[1].lower(), *parts[2:])
    return parts


class _Builder:
    """Children of a grammar rule -> AST node, shifting positions by ``line_off`` lines and
    ``pos_off`` characters (the declaration's place in the file, when it was parsed alone).

    A handler per rule (or alias) of the grammar, called as ``handler(span, children)`` with
    the children Lark would put in the rule's tree (tokens as :class:`Tok`, ``None`` for an
    absent ``[optional]``) and the span of the rule's text. The tables' driver calls them as
    it reduces (:class:`_Machine`), Lark's path on its finished tree (:func:`_lark_chunk`).
    """

    def __init__(self, line_off: int, pos_off: int, diags: Diagnostics):
        self.lo, self.po, self.diags = line_off, pos_off, diags

    # spans
    @staticmethod
    def ts(t: Tok) -> Span:
        return t.span

    def ms(self, meta) -> Span:
        if getattr(meta, "empty", True):
            return Span(Pos(1 + self.lo, 1, self.po), Pos(1 + self.lo, 1, self.po))
        return Span(Pos(meta.line + self.lo, meta.column, meta.start_pos + self.po),
                    Pos(meta.end_line + self.lo, meta.end_column, meta.end_pos + self.po))

    def name(self, t: Tok, declared: bool = False) -> A.Name:
        n = A.Name(t.value, t.span)
        if declared and n.value in RESERVED:
            self.diags.error("TRG001", f"'{n.value}' is a reserved word and cannot be a name", n.span,
                             "pick another name")
        return n

    # ---------------------------------------------------------------- values
    def string(self, span, children):
        t = children[0]
        span = t.span
        if t.type == "RAW_STRING":
            return A.Str(t.value[2:-1], True, span)
        return A.Str(_unescape(t.value[1:-1], span.start, self.diags), False, span)

    def regex(self, span, children):
        t = str(children[0])
        end = t.rfind("/")
        return A.Regex(t[1:end].replace("\\/", "/"), t[end + 1:], self.ts(children[0]))

    def number(self, span, children):
        t = str(children[0])
        if float(t) - float(t) != 0:  # past a float's range (some 309 digits): no JSON number is that
            self.diags.error("TRG001", "number too large", self.ts(children[0]), "write at most 308 digits")
            return A.Num(0, t, self.ts(children[0]))
        v = float(t) if "." in t else int(t)
        return A.Num(v, t, self.ts(children[0]))

    def duration(self, span, children):
        t = str(children[0])
        m = re.fullmatch(r"([0-9]+(?:\.[0-9]+)?)(ms|s|m|h|d)", t)
        return A.Duration(float(m.group(1)) * _DURATION_UNITS_MS[m.group(2)], t, self.ts(children[0]))

    def true(self, span, children):
        return A.Bool(True, self.ts(children[0]))

    def false(self, span, children):
        return A.Bool(False, self.ts(children[0]))

    def list(self, span, children):
        return A.ListLit(tuple(c for c in children if c is not None), span)

    def ref(self, span, children):
        return A.Ref(str(children[0]), self.ts(children[0]))

    def field(self, span, children):
        return A.FieldPath(_header_case(tuple([c.value for c in children])), span)

    def placeholder(self, span, children):
        t = children[0]
        span = t.span
        (line, col, off), (end_line, end_col, end_off) = span
        new = tuple.__new__
        text = t.value[1:-1]
        if "~" not in text:
            inner = new(Span, (new(Pos, (line, col + 1, off + 1)), new(Pos, (end_line, end_col - 1, end_off - 1))))
            return A.Placeholder(A.FieldPath(_header_case(tuple(text.split("."))), inner), span)
        path, _, rest = text.partition("~")   # <path ~ /re/flags>: one line (no newline in the token)
        n = len(path.rstrip())
        inner = Span(Pos(line, col + 1, off + 1), Pos(line, col + 1 + n, off + 1 + n))
        at = len(text) - len(rest.lstrip())   # where the regex starts, in text
        body = rest.strip()
        end = body.rfind("/")
        where = Span(Pos(line, col + 1 + at, off + 1 + at), Pos(line, end_col - 1, end_off - 1))
        pattern = A.Regex(body[1:end].replace("\\/", "/"), body[end + 1:], where)
        return A.Placeholder(A.FieldPath(_header_case(tuple(path.strip().split("."))), inner), span, pattern)

    # ---------------------------------------------------------------- filters
    def compare(self, span, children):
        f, op, v = children
        return A.Compare(f, op.value, v, span, op.span)

    def compare_not_in(self, span, children):
        f, n, i, v = children
        return A.Compare(f, "not in", v, span, self.ts(n).join(self.ts(i)))

    def has(self, span, children):
        return A.Has(children[0], span)

    def not_expr(self, span, children):
        return A.Not(children[-1], span)

    def and_expr(self, span, children):
        items = []
        for c in children:
            items.extend(c.items if isinstance(c, A.And) else (c,))
        return A.And(tuple(items), span)

    def or_expr(self, span, children):
        items = []
        for c in children:
            items.extend(c.items if isinstance(c, A.Or) else (c,))
        return A.Or(tuple(items), span)

    # ---------------------------------------------------------------- triggers
    def event_trigger(self, span, children):
        return A.EventTrigger(self.name(children[0]), self.name(children[-1]), span)

    def every_trigger(self, span, children):
        return A.EveryTrigger(children[0], span, catch_up=children[1] is not None)

    def cron_trigger(self, span, children):
        expr = self.string(None, [children[0]])
        tz = self.string(None, [children[1]]) if children[1] is not None else None
        return A.CronTrigger(expr, tz, span, catch_up=children[2] is not None)

    def catch_up(self, span, children):
        return True

    # ---------------------------------------------------------------- rules
    def with_args(self, span, children):
        return tuple(c if isinstance(c, A.Arg) else A.Arg(None, c, c.span) for c in children)

    def named_arg(self, span, children):
        return A.Arg(self.name(children[0]), children[1], span)

    def p_debounce(self, span, c):
        return A.Policy("debounce", c[0], span=span)

    def p_busy(self, span, c):
        # `busy signal SIGHUP`: the mode's signal (check says whether the mode takes one)
        return A.Policy("busy", self.name(c[0]), signal=self.name(c[1]) if c[1] is not None else None, span=span)

    def p_timeout(self, span, c):
        return A.Policy("timeout", c[0], span=span)

    def p_retry(self, span, c):
        return A.Policy("retry", c[0], c[1], span=span)

    def p_dedupe(self, span, c):
        return A.Policy("dedupe", None, c[1], key=c[0], span=span)

    def rule(self, span, c):
        label, trigger, filt, _run, action, args, *policies = c
        return A.Rule(self.name(label, True) if label is not None else None, trigger, filt,
                      self.name(action), args or (), tuple(policies), span)

    def corr_rule(self, span, c):
        label, trigger, _run, action, args, *policies = c
        return A.Rule(self.name(label, True) if label is not None else None, trigger, None,
                      self.name(action), args or (), tuple(policies), span)

    # ---------------------------------------------------------------- correlation triggers
    # Optional clauses arrive as None placeholders or as the tagged tuples below, in the
    # order the grammar allows them; _clauses sorts them out by tag.
    def corr_same(self, span, c):
        return ("same", tuple(c))

    def nested_same(self, span, c):
        return ("same", tuple(c))

    def corr_within(self, span, c):
        return ("within", c[0])

    def corr_max(self, span, c):
        return ("max", c[0])

    def corr_tail(self, span, c):
        return ("tail", [x for x in c if x is not None])

    def absence_tail(self, span, c):
        return ("tail", [x for x in c if x is not None])

    @staticmethod
    def _clauses(items) -> dict:
        out: dict = {}
        for x in items:
            if x is None:
                continue
            if x.__class__ is tuple and x and x[0] == "tail":
                out.update(_Builder._clauses(x[1]))
            elif x.__class__ is tuple and x and x[0] in ("same", "within", "max"):
                out[x[0]] = x[1]
            elif isinstance(x, Tok) and x.type == "IN":
                out["in"] = True
            elif isinstance(x, A.AbsentWindow):
                out["window"] = x
            elif out.get("in") is True:
                out["in"] = x            # the LIST after `in`
            else:
                out["trailing"] = x      # a filter after the whole trigger (TRG709)
        return out

    def member(self, span, c):
        trig, filt, alias, keys = c
        return A.Member(trig, filt, self.name(alias) if alias is not None else None, keys or (), span)

    def member_key(self, span, c):
        return tuple(x for x in c if isinstance(x, A.Placeholder))

    def items(self, span, c):
        trailing = c[-1] is not None and isinstance(c[-1], Tok)
        return tuple(x for x in c if x is not None and not isinstance(x, Tok)), trailing

    def _group(self, kind, span, items, n=None):
        its, comma = items
        return A.Group(kind, its, n, trailing_comma=comma, span=span)

    def g_all(self, span, c):
        return self._group("all", span, c[0])

    def g_any(self, span, c):
        return self._group("any", span, c[0])

    def g_seq(self, span, c):
        return self._group("seq", span, c[0])

    def g_n_of(self, span, c):
        return self._group("n_of", span, c[1], self.number(None, [c[0]]))

    def _with(self, g: A.Group, cl: dict, span) -> A.Group:
        return A.Group(g.kind, g.items, g.n, cl.get("same", ()), cl.get("within"), cl.get("max"),
                       cl.get("trailing"), g.trailing_comma, span)

    def correlation(self, span, c):
        return self._with(c[0], self._clauses(c[1:]), span)

    def nested(self, span, c):
        return self._with(c[0], self._clauses(c[1:]), span)

    def count_correlation(self, span, c):
        n, member, *rest = c
        g = A.Group("count", (member,), self.number(None, [n]))
        return self._with(g, self._clauses(rest), span)

    def nested_count(self, span, c):
        return self.count_correlation(span, c)

    def absence(self, span, c):
        member, after, *rest = c
        cl = self._clauses(rest)
        same_in = cl.get("in")
        return A.Absence(member, after, cl.get("same", ()), None if same_in is True else same_in,
                         cl.get("window"), cl.get("max"), cl.get("trailing"), span)

    def nested_absent(self, span, c):
        return A.Absence(c[0], span=span)

    def aw_within(self, span, c):
        return A.AbsentWindow("within", c[0], span=span)

    def aw_for(self, span, c):
        return A.AbsentWindow("for", c[0], span=span)

    def aw_between(self, span, c):
        start, end, tz = c
        return A.AbsentWindow("between", None, self.string(None, [start]), self.string(None, [end]),
                              self.string(None, [tz]) if tz is not None else None, span)

    # ---------------------------------------------------------------- declarations
    def let_decl(self, span, c):
        return A.Let(self.name(c[0], True), c[1], span)

    def include_decl(self, span, c):
        return A.Include(self.string(None, [c[0]]), span)

    def secret_decl(self, span, c):
        return A.Secret(self.name(c[0], True), str(c[1]), self.string(None, [c[2]]), span)

    def option(self, span, c):
        return A.Option(self.name(c[0]), c[1], span)

    def source_decl(self, span, c):
        return A.SourceDecl(self.name(c[0]), tuple(c[1:]), span)

    def param(self, span, c):
        return A.Param(self.name(c[0], True), c[1], span)

    def params(self, span, c):
        return tuple(p for p in c[1:] if p is not None)

    def argv_ref(self, span, c):
        return A.Ref(str(c[0]), self.ts(c[0]))

    def argv_str(self, span, c):
        return self.string(None, c)

    def exec_assign(self, span, c):
        return ("assign", self.name(c[0]), self.string(None, [c[2]]), span)

    def exec_body(self, span, c):
        """Split exec words into argv and options: ``env NAME="v"`` arrives as Ref(env), assign."""
        argv: list = []
        opts: list = []
        words = list(c)
        for i, w in enumerate(words):
            nxt = words[i + 1] if i + 1 < len(words) else None
            if isinstance(w, A.Ref) and w.name == "env" and nxt.__class__ is tuple:
                continue  # the option's keyword: taken with the assignment that follows
            if w.__class__ is tuple:
                _, name, val, where = w
                prev = words[i - 1] if i else None
                if isinstance(prev, A.Ref) and prev.name == "env":
                    opts.append(A.ActionOption("env", name, val, prev.span.join(where)))
                else:
                    self.diags.error("TRG001", "unexpected '=' in an exec argv", where,
                                     'an environment variable is written: env NAME="value"')
            elif isinstance(w, (A.ActionOption, A.StopOption)):
                opts.append(w)
            elif opts:
                self.diags.error("TRG001", "argv items must come before the options (cwd, env, stop)", w.span,
                                 "move this argument before cwd/env/stop")
            else:
                argv.append(w)
        end = argv[-1].span if argv else span
        return A.ExecBody(tuple(argv), Span(span.start, end.end)), tuple(opts)

    def shell_body(self, span, c):
        return A.ShellBody(self.string(None, [c[0]]), span)

    def http_body(self, span, c):
        return A.HttpBody(self.name(c[0]), self.string(None, [c[1]]), tuple(c[2:]), span)

    def opt_cwd(self, span, c):
        return A.ActionOption("cwd", None, self.string(None, [c[0]]), span)

    def opt_env(self, span, c):
        return A.ActionOption("env", self.name(c[0]), self.string(None, [c[1]]), span)

    def opt_stop(self, span, c):
        return A.StopOption(self.name(c[0]), self.duration(None, [c[1]]) if c[1] is not None else None, span)

    def opt_stop_grace(self, span, c):
        return A.StopOption(None, self.duration(None, [c[0]]), span)

    def action_decl(self, span, c):
        name = self.name(c[0], True)
        rest = c[1:]
        params: tuple = ()
        has_parens = False
        if rest[0].__class__ is tuple:
            params, has_parens = rest[0], True
        rest = rest[1:]
        body, *opts = rest
        if body.__class__ is tuple:  # exec: its options came with it
            body, opts = body
        return A.ActionDecl(name, params, body, tuple(opts), has_parens, span)

    # ---------------------------------------------------------------- tests
    def given_field(self, span, c):
        return A.GivenField(c[0], c[1], span)

    def given(self, span, c):
        trig, *fields, _from, from_file = c
        ff = self.string(None, [from_file]) if from_file is not None else None
        fields = tuple(fields)
        return A.Given(trig, fields, ff, span)

    def expect_match(self, span, c):
        return A.Expect("match", (self.name(c[0]),), c[1] or (), c[1] is not None, span=span)

    def expect_not(self, span, c):
        return A.Expect("not", (self.name(c[1]),), span=span)

    def expect_only(self, span, c):
        return A.Expect("only", tuple(self.name(t) for t in c), span=span)

    def expect_none(self, span, c):
        return A.Expect("none", span=span)

    def _expect_group(self, kind, span, c):
        name, key, missing = c
        return A.Expect(kind, (self.name(name),), key=key or (), missing=missing or (),
                        has_missing=missing is not None, span=span)

    def expect_open(self, span, c):
        return self._expect_group("open", span, c)

    def expect_expired(self, span, c):
        return self._expect_group("expired", span, c)

    def expect_key(self, span, c):
        return tuple(x for x in c if x is not None)

    def expect_missing(self, span, c):
        return tuple(self.name(t) for t in c)

    def wait_step(self, span, c):
        return A.Wait(c[0], span)

    def at_step(self, span, c):
        return A.At(self.string(None, [c[0]]), span)

    def test_decl(self, span, c):
        name, *steps = c
        return A.TestBlock(self.string(None, [name]), tuple(steps), span)

    def start(self, span, c):
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


# --------------------------------------------------------------------------- the tables' driver

class _Fallback(Exception):
    """The tables cannot parse this declaration: Lark parses it, and says why not."""


class _Machine:
    """The grammar's LALR tables (:mod:`~triggerlang.syntax.tables`) and a driver for them.

    :meth:`run` parses one declaration, ``text[pos:end]``: it lexes as Lark's contextual
    lexer does (in each parser state, the scanner of the terminals that state accepts: the
    same patterns, in the same order, the same keyword checks), shifts and reduces as Lark's
    LALR parser does, and at each reduction filters the children as Lark's tree builder
    would (anonymous tokens out, ``_rule`` children spliced in, ``None`` for an absent
    ``[optional]``, a ``?rule``'s single child passed through) and calls the builder. Node
    spans follow Lark's ``propagate_positions``: from the start of a rule's first child to
    the end of its last one, filtered tokens included; a child passed through a ``?rule``
    keeps its own span, but its extent in its parent grows to the whole ``?rule`` (the
    parentheses around a condition). Any surprise raises :class:`_Fallback`.
    """

    def __init__(self, data: dict):
        self.start, self.end = data["start"], data["end"]
        self.states: list[dict[str, int]] = data["states"]
        self.state_lexer: list[int] = data["state_lexer"]
        self.lexer_rows: list[dict] = data["lexers"]
        self.terminals: dict[str, dict] = data["terminals"]
        self.matchers: dict[str, tuple] = {}
        self.by_lexer: list = [None] * len(self.lexer_rows)
        self.scanners: list = [None] * len(self.states)   # per state: its lexer's scanner, once made
        self.rules = [(r["size"], r["name"], None if _passes_through(r) else self._later(i, r))
                      for i, r in enumerate(data["rules"])]

    def _later(self, i: int, row: dict):
        """A reducer that makes rule ``i``'s real one on its first call (most rules of the
        grammar never occur in a given file) and puts it in its place."""
        def first(kids: list, spans: list, b: _Builder, empty: Span):
            reduce = _reducer(row)
            self.rules[i] = (row["size"], row["name"], reduce)
            return reduce(kids, spans, b, empty)
        return first

    def _matcher(self, name: str) -> tuple:
        """``(type, text, None)`` for a keyword or sign, ``(type, None, pattern.match)``."""
        m = self.matchers.get(name)
        if m is None:
            row = self.terminals[name]
            m = self.matchers[name] = (name, row["str"], None) if "str" in row else (name, None, re.compile(row["re"]).match)
        return m

    def _scanner(self, state: int):
        """``(by first character, the terminals that may start with any, keywords, skipped
        types, types that may hold a newline, whether a space is only ever skipped)`` of a
        state's lexer: for each character, the terminals that can start with it, in Lark's
        order (made on first use)."""
        i = self.state_lexer[state]
        sc = self.by_lexer[i]
        if sc is None:
            row = self.lexer_rows[i]
            firsts = [self.terminals[n]["first"] for n in row["order"]]
            chars = {c for f in firsts if f is not None for c in f}
            lists: dict[str, list] = {c: [] for c in chars}
            others = []
            for name, f in zip(row["order"], firsts):
                m = self._matcher(name)
                if f is None:
                    others.append(m)
                for c in chars if f is None else f:
                    lists[c].append(m)
            skip = frozenset(row["ignore"])
            by_char = {c: tuple(v) for c, v in lists.items()}
            # a space that only a skipped terminal (whitespace) can start: stepped over at once
            # (the terminal would take the whole run of blanks, and be skipped the same)
            lone = by_char.get(" ")
            space = lone is not None and len(lone) == 1 and lone[0][0] in skip
            sc = self.by_lexer[i] = (by_char, others, row["unless"], skip, frozenset(row["newline"]), space)
        self.scanners[state] = sc
        return sc

    def run(self, text: str, pos: int, end: int, line: int, offset: int, b: "_Builder"):
        """The node of the declaration in ``text[pos:end]``, whose first line is line ``line``
        of the file and which starts ``offset`` characters further in the file than in
        ``text`` (0 when ``text`` is the file). Raises :class:`_Fallback`."""
        states, rules, scanners = self.states, self.rules, self.scanners
        end_state = self.end
        stack = [self.start]
        values: list = []
        extents: list = []   # per value: the span of its text (None: it has none)
        empty = Span(Pos(line, 1, pos + offset), Pos(line, 1, pos + offset))
        line_start = pos
        new = tuple.__new__
        state = stack[0]
        while True:
            # ---- the next token, by the scanner of the current state
            by_char, others, unless, skip, newline, space = scanners[state] or self._scanner(state)
            while True:
                if pos >= end:
                    tok = None
                    typ = "$END"
                    break
                c = text[pos]
                if c == " " and space:
                    pos += 1
                    continue
                for typ, lit, rx in by_char.get(c, others):
                    if lit is None:
                        m = rx(text, pos, end)
                        if m is not None:
                            value = m.group()
                            break
                    elif text.startswith(lit, pos, end):
                        value = lit
                        break
                else:
                    raise _Fallback
                nxt = pos + len(value)
                if typ in skip:
                    if typ in newline and "\n" in value:
                        line += value.count("\n")
                        line_start = pos + value.rindex("\n") + 1
                    pos = nxt
                    continue
                start = new(Pos, (line, pos - line_start + 1, pos + offset))
                if typ in newline and "\n" in value:
                    line += value.count("\n")
                    line_start = pos + value.rindex("\n") + 1
                if typ in unless:
                    typ = unless[typ].get(value, typ)
                sp = new(Span, (start, new(Pos, (line, nxt - line_start + 1, nxt + offset))))
                tok = new(Tok, (typ, value, sp))
                pos = nxt
                break
            # ---- shift it, after the reductions it completes
            while True:
                code = states[state].get(typ)
                if code is None:
                    raise _Fallback
                if code >= 0:
                    if tok is None:  # pragma: no cover - the end is never shifted
                        raise _Fallback
                    stack.append(code)
                    values.append(tok)
                    extents.append(sp)
                    state = code
                    break
                size, name, reduce = rules[-code - 1]
                if reduce is None:  # a ?rule passing its one child through: only the state changes
                    goto = states[stack[-2]].get(name)
                    if goto is None:  # pragma: no cover - a reduction always has a goto
                        raise _Fallback
                    stack[-1] = state = goto
                else:
                    if size:
                        kids = values[-size:]
                        spans = extents[-size:]
                        del values[-size:], extents[-size:], stack[-size:]
                    else:
                        kids, spans = [], []
                    value, extent = reduce(kids, spans, b, empty)
                    goto = states[stack[-1]].get(name)
                    if goto is None:  # pragma: no cover
                        raise _Fallback
                    stack.append(goto)
                    values.append(value)
                    extents.append(extent)
                    state = goto
                if tok is None and goto == end_state:
                    return values[-1]


def _passes_through(row: dict) -> bool:
    """A ``?rule`` of one child that it passes through as it is (no filter)."""
    return row["pass_one"] and row["size"] == 1 and row["keep"] is None and not row["name"].startswith("_")


def _reducer(row: dict):
    """``reduce(children, their spans, builder, empty span) -> (value, span)`` for one rule
    of the tables: Lark's child filter and ``?rule`` pass-through, then the builder. None
    for a ``?rule`` that only passes its one child through (the driver does that itself)."""
    if _passes_through(row):
        return None
    handler_name = row["handler"]
    inline = row["name"].startswith("_")   # a `_rule` (Lark's helpers for `x*`): spliced into its parent
    pass_one = row["pass_one"]
    keep = [tuple(k) for k in row["keep"]] if row["keep"] is not None else None
    trailing = [None] * row["trailing"]
    handler = None if inline else getattr(_Builder, handler_name, None)
    if handler is not None and (handler_name.startswith("_") or handler_name in _NOT_HANDLERS):
        handler = None  # pragma: no cover - a rule named like a helper of the builder
    new = tuple.__new__
    picks = None  # the kept children's indices, when nothing is spliced in and no None added
    if keep is not None and not trailing and not any(splice or nones for _, splice, nones in keep):
        picks = tuple(i for i, _, _ in keep)

    def where(spans: list, empty: Span) -> Span:
        """From the start of the first child with a span to the end of the last."""
        first = next((x for x in spans if x is not None), None)
        if first is None:
            return empty
        last = next(x for x in reversed(spans) if x is not None)
        return new(Span, (first[0], last[1]))

    def reduce(kids: list, spans: list, b: _Builder, empty: Span):
        if spans and spans[0] is not None and spans[-1] is not None:
            span = new(Span, (spans[0][0], spans[-1][1])) if len(spans) > 1 else spans[0]
        else:
            span = where(spans, empty)
        if keep is None:
            out = kids
        elif picks is not None:
            out = [kids[i] for i in picks]
        else:
            out = []
            for i, splice, nones in keep:
                if nones:
                    out.extend([None] * nones)
                if splice:
                    out.extend(kids[i])
                else:
                    out.append(kids[i])
            if trailing:
                out.extend(trailing)
        if inline:
            return out, span
        if pass_one and len(out) == 1:
            v = out[0]
            if v is None:
                return None, None
            if v.__class__ is Tok:
                return v, v.span
            return v, span
        if handler is None:
            raise _Fallback
        return handler(b, span, out), span
    if row["size"] == 0:
        return reduce
    return _compiled_reducer(row["size"], keep, row["trailing"], inline, pass_one, handler, where) or reduce


def _compiled_reducer(size: int, keep, trailing: int, inline: bool, pass_one: bool, handler, where):
    """:func:`_reducer`'s ``reduce`` for one rule, as straight-line code: the kept children
    picked by index, the spliced ones concatenated, the ``None`` placeholders in place (a tenth of
    a 10,000-rule parse goes to reductions; this does a rule's in half the steps)."""
    if handler is None and not inline:
        return None
    ops: list[str] = []    # the operands of ``out``: list displays and spliced child lists
    items: list[str] = []
    if keep is None:
        ops.append("kids")
    else:
        for i, splice, nones in keep:
            items.extend(["None"] * nones)
            if splice:
                if items:
                    ops.append("[" + ", ".join(items) + "]")
                    items = []
                ops.append(f"kids[{i}]")
            else:
                items.append(f"kids[{i}]")
        items.extend(["None"] * trailing)
        if items or not ops:
            ops.append("[" + ", ".join(items) + "]")
    code = ["def reduce(kids, spans, b, empty):",
            "    first = spans[0]",
            "    last = spans[-1]",
            "    if first is None or last is None:",
            "        span = where(spans, empty)",
            "    else:",
            "        span = " + ("first" if size == 1 else "new(Span, (first[0], last[1]))"),
            "    out = " + " + ".join(ops)]
    if inline:
        code.append("    return out, span")
    else:
        if pass_one:
            code += ["    if len(out) == 1:",
                     "        v = out[0]",
                     "        if v is None:",
                     "            return None, None",
                     "        return v, (v.span if v.__class__ is Tok else span)"]
        code.append("    return handler(b, span, out), span")
    env = {"new": tuple.__new__, "Span": Span, "Tok": Tok, "handler": handler, "where": where}
    exec("\n".join(code), env)  # noqa: S102 - indexes and names of our own tables
    return env["reduce"]


_NOT_HANDLERS = frozenset({"ts", "ms", "name"})


@lru_cache(maxsize=1)
def _machine() -> _Machine | None:
    """The tables' driver: from the shipped tables when they are the grammar's; else built
    from Lark now (a grammar edited without regenerating them: slower, same result); None
    when neither works (then Lark parses everything)."""
    grammar = _grammar_text()
    data = T.load_shipped(grammar)
    if data is None:
        try:
            data = T.build(lark_parser(), grammar)
        except Exception:  # pragma: no cover - a Lark whose insides moved: Lark alone, slower
            return None
    return _Machine(data)


# --------------------------------------------------------------------------- one declaration

def _lark_chunk(chunk: str, first: int, start_off: int, diags: Diagnostics) -> A.Decl | None:
    """Parse one declaration with Lark: the reference path, and the one that reports syntax
    errors. ``first`` is its first line's index (0-based) in the file, ``start_off`` its offset."""
    from lark.exceptions import UnexpectedInput

    builder = _Builder(first, start_off, diags)
    try:
        tree = lark_parser().parse(chunk)
    except UnexpectedInput as e:
        _syntax_error(e, chunk, first, start_off, diags)
        return None
    try:
        return _lark_build(tree, builder)
    except _BuildError as e:  # pragma: no cover - a bug in the builder, reported, not raised
        diags.error("TRG000", f"internal error while reading this declaration: {e.__cause__ or e}",
                    Span(Pos(first + 1, 1, start_off), Pos(first + 1, len(chunk.split("\n", 1)[0]) + 1, start_off)))
    return None


class _BuildError(Exception):
    pass


def _lark_build(tree, b: _Builder):
    """Lark's tree through the builder, bottom-up, as the tables' driver calls it."""
    from lark import Token, Tree

    def walk(t):
        kids = [walk(c) if isinstance(c, Tree) else Tok.of(c, b.lo, b.po) if isinstance(c, Token) else c
                for c in t.children]
        handler = None if t.data.startswith("_") or t.data in _NOT_HANDLERS else getattr(b, t.data, None)
        if handler is None:  # pragma: no cover - every rule has a handler
            raise _BuildError(f"no handler for rule {t.data!r}")
        try:
            return handler(b.ms(t.meta), kids)
        except _BuildError:
            raise
        except Exception as e:  # pragma: no cover - a bug in the builder
            raise _BuildError(str(e)) from e
    return walk(tree)


def _parse_chunk(chunk: str, first: int, start_off: int, diags: Diagnostics) -> A.Decl | None:
    """Parse one declaration whose first line is line ``first`` (0-based) of the file."""
    machine = _machine()
    if machine is not None:
        mark = len(diags.items)
        try:
            return machine.run(chunk, 0, len(chunk), first + 1, start_off, _Builder(0, 0, diags))
        except _Fallback:
            del diags.items[mark:]
        except RecursionError:  # pragma: no cover - nesting deeper than the builder's stack
            del diags.items[mark:]
    return _lark_chunk(chunk, first, start_off, diags)


def parse(text: str, file: str = "<input>", cache: ParseCache | None = None) -> tuple[A.Module, Diagnostics]:
    """Parse a whole file. Never raises for bad input: problems become diagnostics.

    With a ``cache`` (an editor's), declarations parsed before are taken from it; the
    result is the same module and diagnostics, spans included.
    """
    diags = Diagnostics(file)
    # every byte-order mark at the start goes, as fmt removes them all (an editor that adds
    # one at each save can leave two): the second was "unexpected character", and fmt
    # formatted the file check refused. Columns count from after them.
    text = text.lstrip("\ufeff")
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    lines = text.split("\n")
    decls: list[A.Decl] = []
    unparsed: set[str] = set()  # the words of declarations that did not parse (A.Module)
    machine = _machine() if cache is None else None
    builder = _Builder(0, 0, diags)
    no_run = None  # the index of the TRG002 of the rule just before, that has no run clause
    for first, last, start_off, end_off in _declarations(text, lines):
        before = len(diags.items)
        if machine is not None:  # the whole file in one pass; Lark only for what fails
            mark = len(diags.items)
            try:
                decl = machine.run(text, start_off, end_off, first + 1, 0, builder)
            except (_Fallback, RecursionError):
                del diags.items[mark:]
                decl = _lark_chunk(text[start_off:end_off], first, start_off, diags)
            decl = _not_too_deep(decl, text, start_off, end_off, diags)
        elif cache is None:
            decl = _not_too_deep(_lark_chunk(text[start_off:end_off], first, start_off, diags), text, start_off,
                                 end_off, diags)
        else:
            chunk = text[start_off:end_off]
            hit = cache.get(chunk)
            if hit is None:
                cache.misses += 1
                local = Diagnostics(file)
                node = _not_too_deep(_parse_chunk(chunk, 0, 0, local), chunk, 0, len(chunk), local)
                hit = [node, local.items, None, None, None]
                cache.put(chunk, hit)
            else:
                cache.hits += 1
            if hit[2] != (first, start_off):  # moved since last time (a declaration above changed)
                node, found = hit[0], hit[1]
                hit[2:] = [(first, start_off), A.shifted(node, first, start_off) if node is not None else None,
                           [A.shifted_diagnostic(d, first, start_off) for d in found]]
            decl = hit[3]
            diags.items.extend(hit[4])
        if decl is None and no_run is not None and _RUN_LINE.match(text, start_off, end_off):
            # `on git.push` then `run build` in column 1 (YAML's, or a shell's, layout): one
            # mistake, so one diagnostic, the rule's, which says to indent the run line
            del diags.items[before:]
            d = diags.items[no_run]
            diags.items[no_run] = dataclasses.replace(
                d, hint=f"its run clause, line {first + 1}, starts in column 1, so it begins a declaration of its "
                        "own: indent it to continue the rule")
        no_run = len(diags.items) - 1 if decl is None and len(diags.items) == before + 1 \
            and diags.items[-1].message == _NO_RUN else None
        if decl is not None:
            decls.append(decl)
        else:
            unparsed.update(_WORD.findall(text, start_off, end_off))
            head = _ACTION_NAME.match(text, start_off, end_off)
            if head is not None:  # `action NAME` (a space: no word has one): its rules' TRG104 would cascade
                unparsed.add(f"action {head.group(1)}")
            secret = _SECRET_HEAD.match(text, start_off, end_off)
            if secret is not None:  # and a source's TRG103
                unparsed.add(f"secret {secret.group(1)}")
            source = re.compile(r"source[ \t]+([A-Za-z_][A-Za-z0-9_\-]*)").match(text, start_off, end_off)
            if source is not None:  # and its routes' TRG209 (no secret)
                unparsed.add(f"source {source.group(1)}")
            let = re.compile(r"let[ \t]+([A-Za-z_][A-Za-z0-9_\-]*)[ \t]*=").match(text, start_off, end_off)
            if let is not None:  # and each use's TRG102
                unparsed.add(f"let {let.group(1)}")
    end_line = len(lines)
    return A.Module(tuple(decls), file, Span(Pos(1, 1, 0), Pos(end_line, len(lines[-1]) + 1, len(text))),
                    frozenset(unparsed)), diags


MAX_NESTING = 100
"""How deep a declaration's syntax tree may go (lists in lists, ``not not ...``, groups in
groups, parentheses around ``and``/``or``): the phases after the parser walk the tree
recursively, and Python's stack ends near 1,000 calls. Real rules stay under 20."""


def _not_too_deep(decl, text: str, start: int, end: int, diags: Diagnostics):
    """``decl``, or None with a TRG001 at the first node past :data:`MAX_NESTING` levels.
    Only a declaration with that many brackets or ``not``s can be that deep, so the tree
    of any other is not walked."""
    if decl is None or text.count("[", start, end) + text.count("(", start, end) + \
            text.count("not", start, end) < MAX_NESTING // 2:
        return decl
    from dataclasses import fields, is_dataclass

    stack = [(decl, 1)]
    while stack:
        node, depth = stack.pop()
        if node.__class__ is tuple:
            stack.extend((x, depth) for x in node)
            continue
        if not is_dataclass(node):
            continue
        if depth > MAX_NESTING:
            diags.error("TRG001", f"nested too deeply (more than {MAX_NESTING} levels)", node.span,
                        "name the inner parts with let, or write the condition flatter")
            return None
        stack.extend((getattr(node, f.name), depth + 1) for f in fields(node) if f.name != "span")
    return decl


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
_COMBINED_DURATION = _lazy_re(r"(?:[0-9]+(?:\.[0-9]+)?(?:ms|s|m|h|d)){2,}(?![A-Za-z0-9_])")
"""Durations written side by side, ``1h30m`` (Go's ``time.ParseDuration``, systemd's ``1h 30min``)."""
_UNIT_MS = {"ms": 1, "s": 1000, "m": 60_000, "h": 3_600_000, "d": 86_400_000}


def _one_unit(text: str) -> str:
    """``1h30m`` as one number and the largest unit that holds it whole: ``90m``."""
    total = sum(float(n) * _UNIT_MS[u] for n, u in re.findall(r"([0-9]+(?:\.[0-9]+)?)(ms|s|m|h|d)", text))
    for unit in ("d", "h", "m", "s"):
        if total >= _UNIT_MS[unit] and total % _UNIT_MS[unit] == 0:
            return f"{int(total // _UNIT_MS[unit])}{unit}"
    return f"{total:g}ms"


_NUMBER_AND_WORD = _lazy_re(r"(\d+(?:\.\d+)?)([ \t]*)([A-Za-z]*)(?![A-Za-z0-9_])")
_WORD = _lazy_re(r"[A-Za-z_][A-Za-z0-9_\-]*")
_WORD_BEFORE = _lazy_re(r"([A-Za-z_][A-Za-z0-9_\-]*)\s*$")
_REGEX_FLAGS = _lazy_re(r'r"[^"\n]*"|"(?:\\.|[^"\\\n])*"|#[^\n]*|/(?:\\.|[^/\\\n])+/([A-Za-z]+)')
"""Strings and comments (skipped), and a regex literal with the letters written after it."""
REGEX_FLAGS = "ims"
_TEST_STEP = _lazy_re(r"(given|expect|wait|at)\s+(?![\s=:])")
"""A test's step at the start of a declaration (in column 1): not a declaration of its own."""
_RULE_START = _lazy_re(r"\s*(?:[A-Za-z_][A-Za-z0-9_\-]*\s*:\s*)?on(?![A-Za-z0-9_\-])")
_POLICY_WORD = _lazy_re(r"(?<![A-Za-z0-9_\-.<])(debounce|busy|timeout|retry|dedupe)(?![A-Za-z0-9_\-])")
"""A policy's word, not as part of a field (``payload.busy``) or of a longer name."""
_RUN_CLAUSE = _lazy_re(r"(?<![A-Za-z0-9_\-.<])run(?=[ \t\r\n])")
"""``run`` followed by its action (not ``run.failed``, not a field ``x.run``)."""
_EVERY_TZ = _lazy_re(r"\bevery\s+[0-9][0-9.]*[a-z]*\s+(tz\s+(\"[^\"\n]*\"))")
"""``every D tz "ZONE"``: an ``every`` has no time zone (its ticks are multiples of D from the epoch)."""
_DECLARATION_START = _lazy_re(r'(?:[A-Za-z_][A-Za-z0-9_\-]*:\s*)?on\s|(?:let|secret)\s+[A-Za-z_][A-Za-z0-9_\-]*\s*='
                              r'|(?:source|action)\s+[A-Za-z_]|(?:test|include)\s+r?"')
"""What begins a declaration: a keyword, or a rule's label."""


def _bad_regex_flags(chunk: str, at: int) -> tuple[int, int, str] | None:
    """(start, end, letters) for a regex before the error offset ``at`` followed by letters
    that are not all flags (``/fix/g``: the lexer reads ``/fix/`` and then a name ``g``)."""
    for m in _REGEX_FLAGS.finditer(chunk, 0, at + 1):
        letters = m.group(1)
        if letters and set(letters) - set(REGEX_FLAGS):
            return m.start(1), m.end(1), letters
    return None


def _indented_declaration(chunk: str, start: int) -> bool:
    """Whether the token at ``start`` begins a declaration (``on``, ``action``, ``label: on``...)
    on an indented line that is not the chunk's first: the author meant a new declaration,
    but the indentation continues the one above."""
    line_start = chunk.rfind("\n", 0, start) + 1
    return (line_start > 0 and start > line_start and not chunk[line_start:start].strip()
            and _DECLARATION_START.match(chunk, start) is not None)
_NUMBER_BEFORE = _lazy_re(r"(?<![A-Za-z0-9_.\-])(\d+(?:\.\d+)?)[ \t]+$")


def _error_offset(e: UnexpectedInput, chunk: str) -> int:
    """Where in the chunk the parser stopped (the end for an early end of input)."""
    from lark.exceptions import UnexpectedCharacters, UnexpectedToken

    if isinstance(e, UnexpectedToken):
        return len(chunk) if e.token.type == "$END" else e.token.start_pos
    if isinstance(e, UnexpectedCharacters):
        return e.pos_in_stream
    return len(chunk)


def _bad_duration(e: UnexpectedInput, chunk: str) -> tuple[int, int, str, str] | None:
    """(start, end, text, hint) when the parser wanted a duration and found a number with a
    time unit it does not know (``10mins``, ``2 hours``, ``1w``) or none (``timeout 10``)."""
    from lark.exceptions import UnexpectedInput

    wanted = getattr(e, "expected", None) or getattr(e, "allowed", None) or ()
    at = _error_offset(e, chunk)
    combined = _COMBINED_DURATION.match(chunk, at) if "DURATION" in wanted else None
    if combined is not None:  # `timeout 1h30m` (Go's and systemd's spelling): one unit
        return at, combined.end(), combined.group(), \
            _write(_one_unit(combined.group()), before="a duration is one number and one unit: ")
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
    unit = _DURATION_UNITS.get(word.lower())
    if unit is None:
        if "NUMBER" in wanted:  # a number is fine here (`retry 3`, `commits > 3abc`): not this mistake
            return None
        if word and not space:  # `1x`: letters that are no unit
            return at, m.end(), m.group(), f"a duration is a number and a unit (ms, s, m, h or d): {number}s, {number}m"
        # none (`timeout 10`, `timeout 10 retry 2`: the word after it is the next one)
        before = _WORD_BEFORE.search(chunk, 0, at)
        if before is not None and before.group(1) == "debounce":
            # watchexec's --debounce, lodash's and most debouncers count milliseconds
            return at, at + len(number), number, \
                f"a duration needs a unit: {number}ms (watchexec's --debounce counts milliseconds) or {number}s"
        return at, at + len(number), number, f"a duration needs a unit: {number}s, {number}m, {number}h or {number}d"
    if unit == "w":
        days = float(number) * 7
        return at, m.end(), m.group(), f"weeks are written in days: {days:g}d"
    how = "no space between the number and its unit" if space else "the units are ms, s, m, h and d"
    return at, m.end(), m.group(), _write(f"{number}{unit}", f" ({how})")


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
    from lark.exceptions import UnexpectedInput

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
        # a third of the word (rustc's and ruff's budget): 'common' is not offered 'cron', nor 'branch' 'catch'
        limit = max(1, min(3, len(word) // 3))
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


# Rules copied from another tool's filters: CEL (Tekton's interceptors, Argo's exprs),
# JSONPath (Jenkins' Generic Webhook Trigger), JavaScript and Go templates. The parser
# stops at the first sign of them; the diagnostic names the construct and gives the
# condition to write.

_PATH_BEFORE = _lazy_re(r"([A-Za-z_$][A-Za-z0-9_\-]*(?:\.(?:[A-Za-z0-9_\-]+|\*))*)\s*$")
_CALL = _lazy_re(r"\.\s*([A-Za-z_][A-Za-z0-9_]*)\s*\($")
_RUN_CALL = _lazy_re(r"(?<![A-Za-z0-9_\-.<])run\s+([A-Za-z_][A-Za-z0-9_\-]*)\s*$")
"""``run ACTION`` just before a ``(``."""
_INCLUDE_BARE = _lazy_re(r'include[ \t]+([^\s"#(\[][^\s#]*)')
"""``include PATH`` without the quotes."""
_GUARD_WORD = _lazy_re(r"(?:^|[\s:])on\s+([A-Za-z_][A-Za-z0-9_\-]*\.(?:[A-Za-z_][A-Za-z0-9_\-]*|\*))"
                       r"\s+(if|where|when)\s+$")
"""``on SOURCE.EVENT if``/``where``/``when`` just before the parser's stop: SQL's or a
shell's word for the filter."""
_QUOTED = r"""(?:'((?:\\.|[^'\\\n])*)'|"((?:\\.|[^"\\\n])*)")"""
_ONE_ARG = _lazy_re(r"\(\s*" + _QUOTED + r"\s*\)")
_EXISTS = _lazy_re(r"\(\s*([A-Za-z_]\w*)\s*,\s*\1\.([A-Za-z0-9_.\-]+)\s*(==|!=|=)\s*" + _QUOTED + r"\s*\)")
_HEADER_MATCH = _lazy_re(r"\(\s*" + _QUOTED + r"\s*,\s*" + _QUOTED + r"\s*\)")
_BRACKET = _lazy_re(r"\[\s*(\*|\d+|'[^'\n]*'|\"[^\"\n]*\")\s*\]")
_SINGLE_QUOTED = _lazy_re(r"'((?:\\.|[^'\\\n])*)'")
_QUOTED_LIST = _lazy_re(r"""\[((?:\s*(?:'[^'\\\n,]*'|"[^"\\\n,]*")\s*,)*\s*(?:'[^'\\\n,]*'|"[^"\\\n,]*")\s*,?\s*)\]""")
"""A list of quoted strings without commas or escapes in them, some in single quotes."""


def _re_literal(text: str) -> str:
    """``text`` as a regex literal's body matching it exactly (``/`` escaped)."""
    return re.escape(text).replace("/", "\\/")


def _str_literal(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _closing(chunk: str, at: int) -> int:
    """The offset just past the ``)`` closing the ``(`` at ``at`` (strings skipped), or the
    end of its line."""
    depth, i, quote = 0, at, None
    while i < len(chunk) and chunk[i] != "\n":
        c = chunk[i]
        if quote:
            if c == "\\":
                i += 1
            elif c == quote:
                quote = None
        elif c in "'\"":
            quote = c
        elif c == "(":
            depth += 1
        elif c == ")":
            depth -= 1
            if depth == 0:
                return i + 1
        i += 1
    return i


def _raw_path(path: str) -> str:
    """A path written with another tool's names (``$.a``, ``body.a``, ``header.X``) in ours."""
    if path.startswith("$."):
        path = "payload." + path[2:]
    head, _, rest = path.partition(".")
    if head in ("body", "$"):
        return "payload" + ("." + rest if rest else "")
    if head in ("header", "headers"):
        return "headers" + ("." + rest.lower() if rest else "")
    return path


def _call_hint(chunk: str, at: int) -> tuple[int, int, str, str] | None:
    """``FIELD.method(...)`` (CEL, JavaScript): the condition that says the same."""
    call = _CALL.search(chunk, 0, at + 1)
    if call is None:
        return None
    before = _PATH_BEFORE.search(chunk, 0, call.start())
    if before is None:
        return None
    field, method = _raw_path(before.group(1)), call.group(1)
    start, end = before.start(1), _closing(chunk, at)
    args = chunk[at:end]
    one = _ONE_ARG.fullmatch(args)
    arg = None if one is None else (one.group(1) if one.group(1) is not None else one.group(2))
    what = f"'{method}(...)'"
    lower = method.lower()
    if lower in ("startswith", "hasprefix") and arg is not None:
        return start, end, f"no method calls in a condition: {what}", _write(f"{field} ~ /^{_re_literal(arg)}/")
    if lower in ("endswith", "hassuffix") and arg is not None:
        return start, end, f"no method calls in a condition: {what}", _write(f"{field} ~ /{_re_literal(arg)}$/")
    if lower == "contains" and arg is not None:
        return start, end, f"no method calls in a condition: {what}", \
            _write(f"{field} ~ /{_re_literal(arg)}/", f" (a string), or {field} = {_str_literal(arg)} (a list: any element)")
    if lower == "matches" and arg is not None:
        return start, end, f"no method calls in a condition: {what}", _write(f"{field} ~ /{arg.replace('/', chr(92) + '/')}/")
    if lower == "match" and field.split(".")[0] == "headers":
        m = _HEADER_MATCH.fullmatch(args)
        if m is not None:
            name = m.group(1) if m.group(1) is not None else m.group(2)
            value = m.group(3) if m.group(3) is not None else m.group(4)
            return start, end, f"no method calls in a condition: {what}", _write(f"headers.{name.lower()} = {_str_literal(value)}")
    if lower in ("exists", "exists_one", "all", "filter", "map"):
        m = _EXISTS.fullmatch(args)
        if m is not None and lower in ("exists", "exists_one"):
            value = m.group(4) if m.group(4) is not None else m.group(5)
            op = "!=" if m.group(3) == "!=" else "="
            return start, end, f"no macros in a condition: {what}", \
                _write(f"{field}.*.{m.group(2)} {op} {_str_literal(value)}",
                       ": a '*' reads every element, and a condition holds if it holds for any")
        if m is not None and lower == "all":
            value = m.group(4) if m.group(4) is not None else m.group(5)
            neg = "=" if m.group(3) == "!=" else "!="
            return start, end, f"no macros in a condition: {what}", \
                _write(f"not {field}.*.{m.group(2)} {neg} {_str_literal(value)}", ": no element fails the test")
        return start, end, f"no macros in a condition: {what}", \
            f"a '*' reads every element: {field}.*.NAME = VALUE holds if it holds for any element"
    if lower in ("size", "length", "len"):
        return start, end, f"no method calls in a condition: {what}", f"'has {field}.0' holds when the list has an element"
    return start, end, f"no method calls in a condition: {what}", \
        "conditions compare a field's value as it is (FIELD OP VALUE): test a part of a string with ~ /regex/; " \
        "an action's argument takes a part as <FIELD ~ /prefix(part)/>"


_FUNC_ARG = _lazy_re(r"\(\s*([A-Za-z_$][A-Za-z0-9_\-]*(?:\.(?:[A-Za-z0-9_\-]+|\*))*)\s*\)")
_NOT_EMPTY = _lazy_re(r"\s*(?:>\s*0|!=\s*0|>=\s*1)(?![0-9.])")


def _function_hint(chunk: str, at: int) -> tuple[int, int, str, str] | None:
    """CEL's functions on a field, ``has(body.x)`` and ``size(body.list) > 0`` (Tekton
    filters), written as the condition that says the same: ``has payload.x``, ``has
    payload.list.0``."""
    word = _WORD_BEFORE.search(chunk, 0, at)
    if word is None or word.group(1) not in ("has", "size"):
        return None
    end = _closing(chunk, at)
    arg = _FUNC_ARG.fullmatch(chunk, at, end)
    if arg is None:
        return None
    field = _raw_path(arg.group(1))
    if word.group(1) == "has":
        return word.start(1), end, "'has' takes no parentheses", _write(f"has {field}")
    more = _NOT_EMPTY.match(chunk, end)
    if more is not None:
        return word.start(1), more.end(), "no function calls in a condition: 'size(...)'", \
            _write(f"has {field}.0", ": it holds when the list has an element")
    return word.start(1), end, "no function calls in a condition: 'size(...)'", \
        f"'has {field}.0' holds when the list has an element ('has {field}.N': more than N)"


def _policy_before_run(e, chunk: str) -> tuple[int, str] | None:
    """(start, word) when a rule's parse stopped at or after a policy written before
    ``run`` (``on file.modified busy signal SIGHUP run app``): the first policy word, at
    or before where the parser stopped, that is not a field's part (``payload.busy``), not
    in a string, and has no run clause before it (a policy after ``run`` is in its place:
    ``run.failed`` is an event, not the clause)."""
    if not _RULE_START.match(chunk):
        return None
    at = _error_offset(e, chunk)
    for m in _POLICY_WORD.finditer(chunk, 0, len(chunk)):
        start = m.start()
        if start > at or _RUN_CLAUSE.search(chunk, 0, start):
            return None
        if chunk.count('"', 0, start) % 2 == 0:
            return start, m.group(1)
    return None


_NO_RUN = "this rule has no 'run ACTION'"
_RUN_LINE = _lazy_re(r"run[ \t]+[A-Za-z_]")
_POLICY_NAMES = ("debounce", "busy", "timeout", "retry", "backoff", "dedupe")
_QUOTES = {"\u201c": "\u201d", "\u201d": "\u201d", "\u201e": "\u201c\u201d", "\u00ab": "\u00bb",
           "\u2018": "\u2019", "\u2019": "\u2019", "\u201a": "\u2018\u2019"}
"""Typographic opening quotes (a rule pasted from a document) and what closes each."""
_ANOTHER_ACTION = _lazy_re(r"[ \t]*(;|,|\+|&&|\band\b|\bthen\b)[ \t]*(?:run[ \t]+)?([A-Za-z_][A-Za-z0-9_\-]*)(?![A-Za-z0-9_\-.(])")
"""A second action after ``run ACTION``: ``; y``, ``, y``, ``and y``, ``&& y``, ``then run y``."""
_AFTER_ARGS = _lazy_re(r"(;|&&)[ \t]*(?:run[ \t]+)?([A-Za-z_][A-Za-z0-9_\-]*)(?![A-Za-z0-9_\-.(])")
"""A second action after a first one's arguments: ``with <sha>; notify``."""
_NEXT_RULE = _lazy_re(r"on[ \t]+(?:[A-Za-z_][A-Za-z0-9_\-]*\.(?:[A-Za-z_][A-Za-z0-9_\-]*|\*)|every[ \t]|cron[ \t])")
_DURATION_TEXT = _lazy_re(r"[0-9]+(?:\.[0-9]+)?(?:ms|s|m|h|d)")
_CRON_WORDS = _lazy_re(r"(?:[0-9*@?][^\s#\"]*|[A-Za-z]{3}(?:-[A-Za-z]{3})?(?:,[A-Za-z]{3})*)(?:[ \t]+(?!(?:run|tz|catch)\b)[^\s#\"]+){0,6}")
_GITHUB_CONTEXT = {"github.sha": "sha", "github.ref": "ref", "github.ref_name": "branch", "github.actor": "sender",
                   "github.repository": "repo", "github.head_ref": "head", "github.base_ref": "base",
                   "github.event.after": "after", "github.event.before": "before"}
"""GitHub Actions' ``${{ github.X }}`` contexts and the field that holds the same value."""
_DOLLAR_REF = _lazy_re(r"\$\{\{\s*([A-Za-z_][A-Za-z0-9_.\-]*)\s*\}\}|\$\{([A-Za-z_][A-Za-z0-9_.\-]*)\}|\$([A-Za-z_][A-Za-z0-9_.\-]*)")


def context_field(path: str) -> str:
    """A GitHub Actions context (``github.sha``, ``github.event.pull_request.number``) as
    our field; another path as it is."""
    if path in _GITHUB_CONTEXT:
        return _GITHUB_CONTEXT[path]
    if path.startswith("github.event."):
        return "payload." + path[len("github.event."):]
    return path


def foreign_path(path: str) -> str:
    """A field named in another tool's spelling, as ours: GitHub Actions' context
    (``github.sha``: ``sha``), Argo's and adnanh/webhook's ``Input.body.ref`` and Tekton's
    ``body.ref`` (``payload.ref``), ``header.X-Id`` (``headers.x-id``); another path as it is."""
    path = context_field(path)
    return _raw_path(path[len("Input."):] if path.startswith("Input.") else path)


_SECRET_HEAD = _lazy_re(r"secret[ \t]+([A-Za-z_][A-Za-z0-9_\-]*)[ \t]*=[ \t]*(?:(env|file)[ \t]+)?")
_VARIABLE = _lazy_re(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}|\$?([A-Za-z_][A-Za-z0-9_]*)(?![A-Za-z0-9_\-]*[ \t]*[\"r])")
WORKFLOW_FIELDS = {"types": "action", "branches": "branch", "tags": "tag", "paths": "files"}
"""GitHub Actions' filters of an ``on:`` event and the field each one tests."""
_YAML_VALUE = _lazy_re(r":[ \t]*(\[[^\]\n]*\]|\"[^\"\n]*\"|'[^'\n]*'|[^\s\[\]\"',#{}][^\s\[\]\"',#]*)")
_JSON_KEY = _lazy_re(r'("([A-Za-z_][A-Za-z0-9_.\-]*)"[ \t]*)(?=:)')
"""A JSON object's key (``"branch": "main"``, pasted from a payload) where a condition goes."""
_BARE_EVENT = _lazy_re(r"(?:^|[\s:])on[ \t]+([A-Za-z_][A-Za-z0-9_\-]*)[ \t]*$")
_EVENT_SOURCES = ("github", "git", "file", "http")


def workflow_condition(key: str, items: list[str]) -> str:
    """The condition a ``key: [items]`` filter of a GitHub Actions workflow (``branches:
    [main]``, ``types: [opened]``, ``paths: ['src/**']``), or a ``key: value`` pair, stands
    for: an exact comparison, or ``~`` for globs (a path filter is always one)."""
    field = WORKFLOW_FIELDS.get(key, key)
    glob = field == "files" or any(c in i for i in items for c in "*?[")
    if len(items) == 1:
        return f"{field} ~ {_str_literal(items[0])}" if glob else f"{field}={_str_literal(items[0])}"
    listed = "[" + ", ".join(_str_literal(i) for i in items) + "]"
    return f"{field} {'~' if glob else 'in'} {listed}"


def _secret_value(chunk: str, at: int) -> tuple[int, int, str, str] | None:
    """A secret's value written in the rules (``secret gh = "s3cr3t"``), or its variable
    without quotes (``secret gh = env GITHUB_SECRET``, ``= $GITHUB_SECRET``)."""
    head = _SECRET_HEAD.match(chunk)
    how = _WORD.match(chunk, head.end()) if head is not None and head.group(2) is None else None
    if how is not None and how.start() <= at <= how.end() and how.group() not in ("env", "file") \
            and chunk[how.end():].lstrip(" \t")[:1] in ('"', "r"):  # `envv "X"`, `Env "X"`, `filee "p"`
        from ..diagnostics import suggest

        guess = suggest(how.group(), ("env", "file"))
        if guess is not None:
            return how.start(), how.end(), f"a secret is read with env or file, not '{how.group()}'", \
                f"did you mean '{guess}'?"
    if head is None or head.end() != at:
        return None
    var = re.sub(r"[^A-Za-z0-9_]", "_", head.group(1)).upper()
    if head.group(2) is None and chunk[at] in "\"'":
        end = chunk.find(chunk[at], at + 1)
        end = len(chunk.split("\n", 1)[0]) if end == -1 else end + 1
        return at, end, "a secret's value is not written in the rules", \
            _write(f'env "{var}"', f' (and set {var} where serve runs), or file "PATH"')
    m = _VARIABLE.match(chunk, at)
    if m is None or (head.group(2) is None and m.group(2) in ("env", "file")):
        return None
    name = m.group(1) or m.group(2)
    if head.group(2) is not None:
        what = "the variable's name" if head.group(2) == "env" else "the file's path"
        return at, m.end(), f"{what} is a string", _write(f'"{name}"')
    return at, m.end(), "a secret is read from the environment or a file", _write(f'env "{name}"')


def _yaml_items(text: str) -> list[str]:
    """The items of a YAML or JSON value, ``[main, 'releases/**']`` or ``"main"``, unquoted
    (an empty string for an empty item)."""
    return [i.strip().strip("\"'") for i in (text[1:-1].split(",") if text.startswith("[") else [text])]


def _json_conditions(value, path: str = "") -> list[str] | None:
    """The conditions a JSON object stands for, one a key (``{"branch": "main"}``:
    ``branch="main"``), a nested object's keys as a path in the raw body (``{"pull_request":
    {"draft": false}}``: ``payload.pull_request.draft=false``: a nested object is a
    payload's); None if a value has no condition's spelling (null, an empty object or
    list, a list of objects)."""
    if not isinstance(value, dict) or not value:
        return None
    out: list[str] = []
    for key, v in value.items():
        name = f"{path}.{key}" if path else key
        if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_\-]*", key) or (not path and key in RESERVED):
            return None
        if isinstance(v, dict):
            inner = _json_conditions(v, name if path else f"payload.{key}")
            if inner is None:
                return None
            out += inner
        elif isinstance(v, str) or (isinstance(v, list) and v and all(isinstance(i, str) for i in v)):
            out.append(workflow_condition(name, v if isinstance(v, list) else [v]))
        elif isinstance(v, (bool, int, float)) and not isinstance(v, list):
            out.append(f"{name}={json.dumps(v, ensure_ascii=False)}")
        elif isinstance(v, list) and v and all(isinstance(i, (int, float)) and not isinstance(i, bool) for i in v):
            out.append(f"{name} in {json.dumps(v)}")
        else:
            return None
    return out


def _json_object(chunk: str, at: int) -> tuple[int, object]:
    """(end, value) for a JSON object at ``at`` on its line, its keys maybe bare
    (``{branch: "main"}``, JavaScript's) and its strings in single quotes; value None if
    it is not one (not closed on its line, not JSON)."""
    end = _closing(chunk.replace("{", "(").replace("}", ")"), at)
    text = _SINGLE_QUOTED.sub(lambda q: _str_literal(q.group(1)), chunk[at:end])
    text = re.sub(r'([{,]\s*)([A-Za-z_][A-Za-z0-9_\-]*)(\s*:)', r'\1"\2"\3', text)
    try:
        return end, json.loads(text) if chunk[end - 1:end] == "}" else None
    except ValueError:
        return end, None


def _json_filter(chunk: str, at: int) -> tuple[int, int, str, str] | None:
    """A JSON object where a rule's filter goes (``on git.push {"branch": "main"}``, pasted
    from a payload or from a tool that filters by example): the conditions to write, side
    by side."""
    if not _RULE_START.match(chunk) or _RUN_CLAUSE.search(chunk, 0, at):
        return None
    end, value = _json_object(chunk, at)
    conditions = _json_conditions(value)
    if conditions is None:  # (`{}`, a null, an object not closed on its line)
        return at, at + 1, "a filter is FIELD = VALUE conditions, not a JSON object", \
            'conditions side by side: on SOURCE.EVENT branch="main" action in ["opened", "closed"] run ACTION'
    return at, end, "a filter is FIELD = VALUE conditions, not a JSON object", _write(' '.join(conditions))


def _json_args(chunk: str, at: int) -> tuple[int, int, str, str] | None:
    """A JSON object for an action's arguments (``with {"sha": "<sha>"}``, an HTTP call's
    body): the named arguments to write, ``sha=<sha>`` (a placeholder in quotes is one)."""
    end, value = _json_object(chunk, at)
    if not isinstance(value, dict) or not value or not all(
            re.fullmatch(r"[A-Za-z_][A-Za-z0-9_\-]*", k) and k not in RESERVED for k in value):
        return None
    def arg(v) -> str:
        m = _PLACEHOLDER_AT.fullmatch(v.strip()) if isinstance(v, str) else None
        return f"<{m.group(1)}>" if m is not None else json.dumps(v, ensure_ascii=False)

    args = [f"{k}={arg(v)}" for k, v in value.items() if v is not None and not isinstance(v, dict)]
    if len(args) < len(value):
        return None
    return at, end, "an action's arguments are NAME=VALUE, not a JSON object", _write(', '.join(args))


_GH_TOKEN = _lazy_re(r"[ \t]*(?:(\$\{\{|\}\})|(==|!=|<=|>=|<|>|&&|\|\||!|\(|\))|'((?:''|[^'\n])*)'"
                     r"|(startsWith|endsWith|contains)[ \t]*\([ \t]*([A-Za-z_][A-Za-z0-9_.\-]*)[ \t]*,[ \t]*'((?:''|[^'\n])*)'[ \t]*\)"
                     r"|(true|false|-?[0-9]+(?:\.[0-9]+)?)(?![A-Za-z0-9_.])|([A-Za-z_][A-Za-z0-9_\-]*(?:\.[A-Za-z0-9_\-*]+)*))")


def _expression(chunk: str, at: int) -> tuple[int, str] | None:
    """(end, filter) for a GitHub Actions expression at ``at``, up to ``run`` or the line's
    end (``github.ref == 'refs/heads/main' && !contains(github.event.head_commit.message,
    '[skip ci]')``): the conditions that say the same (``ref = "refs/heads/main" and not
    payload.head_commit.message ~ /\\[skip ci\\]/``); None for what it cannot read."""
    out, fields, end, stop = [], [], at, _line_code_end(chunk, at)
    run = _RUN_CLAUSE.search(chunk, at, stop)
    stop = run.start() if run is not None else stop
    while end < stop and chunk[end:stop].strip():
        m = _GH_TOKEN.match(chunk, end, stop)
        if m is None:
            return None
        wrap, op, text, fn, arg, val, lit, name = m.groups()
        if op is not None:
            out.append({"==": "=", "&&": "and", "||": "or", "!": "not"}.get(op, op))
        elif text is not None:
            out.append(_str_literal(text.replace("''", "'")))
        elif fn is not None:
            field, val = context_field(arg), val.replace("''", "'")
            short = re.match(r"refs/(heads|tags)/", val) if field == "ref" and fn == "startsWith" else None
            if short is not None:  # a whole ref's prefix: the short name's field (README: GitHub Actions)
                field, val = ("branch" if short.group(1) == "heads" else "tag"), val[short.end():]
            body = {"startsWith": f"^{_re_literal(val)}", "endsWith": f"{_re_literal(val)}$"}.get(fn, _re_literal(val))
            out.append(f"{field} ~ /{body}/" if val else f"has {field}")
        elif lit is not None:
            out.append(lit)
        elif name is not None:
            if name in RESERVED:
                return None
            out.append(context_field(name))
            fields.append(len(out) - 1)
        end = m.end()
    if not out or out.count("(") != out.count(")"):
        return None
    for i in reversed(fields):  # a field alone is a truth test: `github.event.forced`
        if i + 1 == len(out) or out[i + 1] not in ("=", "!=", "<", "<=", ">", ">="):
            out.insert(i + 1, "= true")
    for i in range(len(out) - 2):  # ref == 'refs/heads/main': branch="main" (a tag's: tag=)
        short = re.match(r'"refs/(heads|tags)/', out[i + 2]) if out[i] == "ref" and out[i + 1] in ("=", "!=") else None
        if short is not None:
            out[i], out[i + 2] = ("branch" if short.group(1) == "heads" else "tag"), '"' + out[i + 2][short.end():]
    written = re.sub(r"\( | \)", lambda p: p.group().strip(), " ".join(out)).replace(" = ", "=")
    depth, top_or = 0, False  # `a || b` beside other conditions: in parentheses (and binds tighter)
    for token in out:
        depth += (token == "(") - (token == ")")
        top_or |= token == "or" and depth == 0
    return at + len(chunk[at:end].rstrip()), f"({written})" if top_or else written


def _hook_rule(rule) -> str | None:
    """An adnanh/webhook ``trigger-rule`` (``{"and": [{"match": {"type": "value", "value":
    "refs/heads/main", "parameter": {"source": "payload", "name": "ref"}}}, ...]}``) as
    conditions; None for what has no condition's spelling (a signature match: the route's
    secret checks it)."""
    if not isinstance(rule, dict) or len(rule) != 1:
        return None
    (kind, inner), = rule.items()
    if kind in ("and", "or") and isinstance(inner, list) and inner:
        parts = [_hook_rule(x) for x in inner]
        if None in parts:
            return None
        return " ".join(f"({p})" if " or " in p else p for p in parts) if kind == "and" else \
            "(" + " or ".join(parts) + ")"
    if kind == "not":
        part = _hook_rule(inner)
        return None if part is None else f"not ({part})" if " " in part.split("=")[0].strip() else f"not {part}"
    if kind != "match" or not isinstance(inner, dict) or not isinstance(inner.get("parameter"), dict):
        return None
    source, name = inner["parameter"].get("source"), inner["parameter"].get("name")
    if not isinstance(name, str) or not re.fullmatch(r"[A-Za-z0-9_.\-]+", name):
        return None
    field = {"payload": f"payload.{name}", "header": f"headers.{name.lower()}", "url": f"query.{name}",
             "query": f"query.{name}"}.get(source)
    if field is None:
        return None
    if inner.get("type") == "value" and isinstance(inner.get("value"), (str, int, float, bool)):
        return f"{field}={json.dumps(inner['value'], ensure_ascii=False)}"
    if inner.get("type") == "regex" and isinstance(inner.get("regex"), str):
        return f"{field} ~ /{inner['regex'].replace('/', chr(92) + '/')}/"
    return None


def _workflow_habit(e, chunk: str, at: int, word) -> tuple[int, int, str, str] | None:
    """A GitHub Actions workflow's spelling in a rule: ``on: push:`` (YAML), ``on push``
    (an event without its source), ``branches: [main]`` (a YAML filter), ``if:``."""
    wanted = set(getattr(e, "expected", None) or getattr(e, "allowed", None) or ())
    if re.match(r"on[ \t]*:", chunk):
        event = re.match(r"on[ \t]*:\s*([A-Za-z_]+)", chunk)
        return 0, chunk.index(":") + 1, "a rule is one line of its own, not a workflow's YAML", \
            f"a rule: on github.{event.group(1) if event else 'push'} [CONDITIONS] run ACTION " \
            "(README: Coming from GitHub Actions triggers and cron)"
    bare = _BARE_EVENT.search(chunk, 0, at)
    if bare is not None and "DOT" in wanted:
        from ..check import catalogue

        w = bare.group(1)
        found = [f"{s}.{w}" for s in _EVENT_SOURCES
                 if w in catalogue.get_source(s).events or w in catalogue.get_source(s).known_events]
        what = {"github": "a GitHub webhook", "git": "a repository on this machine"}
        named = " or ".join(f"{x} ({what[x.split('.')[0]]})" if x.split(".")[0] in what else x for x in found[:3])
        if found:  # (else the usual error: `on schedule every 5m` has its own)
            return bare.start(1), bare.end(1), f"an event is SOURCE.EVENT, not '{w}'", \
                _write(found[0], named[len(found[0]):])
    braces = _json_filter(chunk, at) if chunk[at] == "{" else None
    if braces is not None:
        return braces
    key = _JSON_KEY.match(chunk, at) if chunk[at] == '"' else None
    if key is not None and _RULE_START.match(chunk) and not _RUN_CLAUSE.search(chunk, 0, at):
        value = _YAML_VALUE.match(chunk, key.end(1))  # `"branch": "main"`, pasted from a payload
        items = _yaml_items(value.group(1)) if value is not None else []
        if all(items) and items and key.group(2) not in RESERVED:
            return at, value.end(), "a condition is FIELD = VALUE, not JSON's '\"key\": value'", \
                _write(workflow_condition(key.group(2), items))
    if chunk[at] == ":" and word is not None and word.end(1) == at and _RULE_START.match(chunk) \
            and not _RUN_CLAUSE.search(chunk, 0, at) and chunk[word.start(1) - 1:word.start(1)] != ".":
        key = word.group(1)
        if key in ("if", "when", "where"):
            expr = _expression(chunk, at + 1)
            if expr is not None:
                return word.start(1), expr[0], f"a filter is conditions, not '{key}:' and an expression", \
                    _write(expr[1])
            return word.start(1), at + 1, f"'{key}:' is not needed before a filter", \
                "the conditions follow the trigger: on SOURCE.EVENT CONDITIONS run ACTION"
        hook = re.compile(r":[ \t]*(?=\{)").match(chunk, at) if key.replace("_", "-") in ("trigger-rule", "match") else None
        if hook is not None:  # adnanh/webhook's trigger-rule, pasted from hooks.json
            end, rule = _json_object(chunk, hook.end())
            written = _hook_rule(rule if key == "trigger-rule" else {"match": rule})
            return word.start(1), end, "a filter is conditions, not adnanh/webhook's trigger-rule", \
                _write(written) if written is not None else "its matches are conditions side by side " \
                "(payload.ref=\"refs/heads/main\", headers.x-name ~ /regex/); a signature is the route's to check: " \
                "source http path=\"/hooks/ID\" hmac=SECRET"
        value = _YAML_VALUE.match(chunk, at)
        if value is None or key in RESERVED:
            return None
        items = _yaml_items(value.group(1))
        if not all(items):
            return None
        if key.endswith("-ignore") and key[:-7] in WORKFLOW_FIELDS:  # branches-ignore, paths-ignore: GitHub's
            field = WORKFLOW_FIELDS[key[:-7]]
            listed = "[" + ", ".join(_str_literal(i) for i in items) + "]" if len(items) > 1 else _str_literal(items[0])
            glob = field == "files" or any(c in i for i in items for c in "*?[")
            written = f"{field} !~ {listed}" if field == "files" or (glob and len(items) == 1) else \
                f"not {field} ~ {listed}" if glob else f"{field} {'not in' if len(items) > 1 else '!='} {listed}"
            if field != "files":  # (a push of the other kind of ref does not run: README, GitHub Actions)
                written = f"has {field} {written}"
            return word.start(1), value.end(), "a condition is FIELD = VALUE, not 'key: value'", _write(written)
        return word.start(1), value.end(), "a condition is FIELD = VALUE, not 'key: value'", \
            _write(workflow_condition(key, items))
    return None


_FLAGS = {"restart": "busy restart", "r": "busy restart", "debounce": "debounce", "d": "debounce",
          "timeout": "timeout", "retry": "retry", "retries": "retry"}
"""watchexec's (and others') flags after a rule's run clause, and the policy each is."""
_LABEL_WORDS = _lazy_re(r"([A-Za-z_][A-Za-z0-9_\-]*(?:[ \t]+[A-Za-z_][A-Za-z0-9_\-]*)+)[ \t]*:[ \t]*on(?![A-Za-z0-9_\-])")
_LABEL_NO_COLON = _lazy_re(r"([A-Za-z_][A-Za-z0-9_\-]*)[ \t]+(on)[ \t]+(?=[A-Za-z_][A-Za-z0-9_\-]*\.[A-Za-z_*]|every[ \t]|cron[ \t])")
_NOT_ON = _lazy_re(r"(when|upon|if|trigger)[ \t]+(?=[A-Za-z_][A-Za-z0-9_\-]*\.[A-Za-z_*]|every[ \t]|cron[ \t])")
_RUN_WORDS = ("then", "do", "exec", "execute", "call", "runs", "start", "trigger", "action")
_ARG = r'(?:[A-Za-z_][A-Za-z0-9_\-]*=)?(?:<[^<>\n]*>|"(?:\\.|[^"\\\n])*"|[A-Za-z0-9_.\-]+)'
_ARG_BEFORE = _lazy_re("(" + _ARG + r")[ \t]+$")
_ARG_AT = _lazy_re(_ARG)
_COMMAND = _lazy_re(r'"((?:\\.|[^"\\\n])*)"|(\.{0,2}/[^\s#]*)')


_CONCURRENCY = _lazy_re(r"(concurrency|max[-_]?concurrency|max[-_]?parallel|parallelism|max[-_]?instances|workers)"
                        r"[ \t]*[:=]?[ \t]*([0-9]+)(?![A-Za-z0-9_\-.])")
_ARG_FLAG = _lazy_re(r'[ \t]*(--?)([A-Za-z][A-Za-z0-9_\-]*)')
_FLAG_VALUE = _lazy_re(r'(?:[ \t]*=[ \t]*|[ \t]+)(<[^<>\n]*>|"(?:\\.|[^"\\\n])*"|-?[0-9]+(?:\.[0-9]+)?(?![A-Za-z0-9_\-.])'
                       r'|(?!(?:run|on|with|and|or|not|in|has|debounce|busy|timeout|retry|dedupe)(?![A-Za-z0-9_\-]))'
                       r'[A-Za-z0-9_./][A-Za-z0-9_.\-/]*)')


_POLICY_ALIAS = _lazy_re(r"(timeout-minutes|timeout_minutes|retries|max[-_]retries|max[-_]attempts|retry[-_]count"
                         r"|--on-busy-update)[ \t]*[:=]?[ \t]*((?<=update[ =])(?:queue|do-nothing|restart|signal)"
                         r"|(?<!update)[0-9]+)(?![A-Za-z0-9_\-.])", re.I)
_WATCHEXEC_OUTPUT = _lazy_re(r"(-c|--clear|--bell|-N|--notify|--timings|--print-events|-q|--quiet)"
                             r"(?:[ \t]+(?:-c|--clear|--bell|-N|--notify|--timings|--print-events|-q|--quiet))*"
                             r"(?![A-Za-z0-9_\-=])")
"""watchexec's flags about a run's output (the README's watchexec table: the logs say it)."""
_BUSY_UPDATE = {"queue": "queue", "do-nothing": "skip", "restart": "restart", "signal": "signal SIGTERM"}
"""watchexec's ``--on-busy-update`` and the busy policy each value is."""


def _arg_flags(chunk: str, at: int, run, with_) -> tuple[int, int, str, str] | None:
    """Command-line flags for an action's arguments, after ``run ACTION`` (``run deploy
    --sha <sha> --stage prod``) or after its ``with`` arguments (``with <sha> --force``):
    the named arguments to write, ``sha=<sha>, stage="prod"`` (a bare word is text, so it
    is quoted). A flag without a value (``--force``, ``-f``) is text the command gets: the
    hint passes it in a list, to a parameter ``flags=[]`` its exec passes on (an empty
    list is no argument), since the parser cannot know the action's parameters. A
    policy's flag (``--timeout 5m``) is not one. After ``with``, the span starts at the
    last argument, so that the text to write has its comma."""
    if with_ is None:
        call = _RUN_CALL.search(chunk, 0, at)
        if call is None or chunk[call.end():at].strip():
            return None
        start, before = at, "with "
    elif not chunk[with_.end():at].strip():  # `with --sha <sha>`
        start, before = at, ""
    else:
        prev = _ARG_BEFORE.search(chunk, 0, at)
        if prev is None or prev.start(1) < with_.end():
            return None
        start, before = prev.start(1), prev.group(1) + ", "
    pairs, flags, end = [], [], at
    while (m := _ARG_FLAG.match(chunk, end)) is not None and m.group(2) not in _FLAGS \
            and m.group(2) not in _POLICY_NAMES:
        value = _FLAG_VALUE.match(chunk, m.end())
        if value is None:
            if chunk[m.end():m.end() + 1] not in ("", " ", "\t", "\n", "#"):
                break  # (`--x=` with no value, `--x,`: not a flag this reads)
            flags.append(m.group(1) + m.group(2))
            end = m.end()
            continue
        text = value.group(1)
        if not text.startswith(("<", '"')) and not re.fullmatch(r"-?[0-9]+(?:\.[0-9]+)?", text):
            text = _str_literal(text)
        pairs.append(f"{m.group(2).replace('-', '_')}={text}")
        end = value.end()
    if not pairs and not flags:
        return None
    if flags:
        pairs.append("flags=[" + ", ".join(_str_literal(f) for f in flags) + "]")
    flag = re.match(r"-+[A-Za-z0-9_\-]*", chunk[at:]).group()
    action = re.compile(r"\s+([A-Za-z_][A-Za-z0-9_\-]*)").match(chunk, run.end())
    name = action.group(1) if action is not None else "ACTION"
    note = f" (to a parameter flags=[] its exec passes on, action {name}(..., flags=[]) = exec ... flags: " \
        "an empty list is no argument; a flag it always takes goes in its exec)" if flags else ""
    hint = _write(f"{before}{', '.join(pairs)}", note)
    return start, end, f"an action's arguments follow 'with', not command-line flags: '{flag}'", hint


def _action_for(command: str) -> tuple[str, str]:
    """(name, declaration's body) for a command written where an action's name goes."""
    words = command.split() or ["COMMAND"]
    name = re.sub(r"[^A-Za-z0-9_]+", "_", words[0].rsplit("/", 1)[-1].split(".")[0]).strip("_") or "job"
    if not name[0].isalpha():
        name = "job_" + name
    return name, "exec " + " ".join(_str_literal(w) for w in words)


def _rule_shape(chunk: str, at: int, word, run) -> tuple[int, int, str, str] | None:
    """A rule's parts out of place: a label of two words (``deploy main: on``) or without
    its colon, ``when git.push``, ``then build`` for ``run build``, a command where the
    action's name goes (``run ./deploy.sh``, ``run "make build"``), arguments without
    ``with`` or without commas, conditions separated by commas, a shell's backslash at a
    line's end, ``retry 3 times``, and an http rule's path written alone."""
    label = _LABEL_WORDS.match(chunk)
    if label is not None and at <= label.end(1):
        words = label.group(1).split()
        fixed = "-".join(words[1:] if words[0] in ("rule", "job", "hook") else words)
        return 0, label.end(1), "a label is one word", _write(fixed)
    bare = _LABEL_NO_COLON.match(chunk)
    if bare is not None and at == bare.start(2) and bare.group(1) not in RESERVED and bare.group(1) not in DECL_KEYWORDS:
        return 0, bare.end(1), "a label ends with ':'", _write(f"{bare.group(1)}:")
    other = _NOT_ON.match(chunk)
    if other is not None and at <= other.end():
        return 0, other.end(1), "a rule starts with 'on'", _write("on")
    if not _RULE_START.match(chunk):
        return None
    if run is None and word is not None and word.group(1) in _RUN_WORDS:
        m = _COMMAND.match(chunk, at)
        name = _WORD.match(chunk, at)
        if m is None and name is not None and name.group() not in RESERVED:
            return word.start(1), name.end(), f"an action is run with 'run', not '{word.group(1)}'", \
                _write(f"run {name.group()}")
        if m is not None:
            action, body = _action_for(m.group(1) if m.group(1) is not None else m.group(2))
            return word.start(1), m.end(), "a rule runs a declared action, not a command", \
                f"declare action {action} = {body} and write run {action}"
    if run is not None and run.end() <= at and chunk[run.end():at].strip() == "":
        m = _COMMAND.match(chunk, at)
        if m is not None:
            action, body = _action_for(m.group(1) if m.group(1) is not None else m.group(2))
            return at, m.end(), "run takes the name of an action, not a command", \
                f"declare it, action {action} = {body}, and write {action}"
    if run is not None:
        found = _restart_signal(chunk, at, run) or _empty_with(chunk, at)
        if found is not None:
            return found
        call = _RUN_CALL.search(chunk, 0, at)
        if call is not None and call.end() <= at and chunk[call.end():at].strip() == "" and chunk[at] in '<"':
            arg = _ARG_AT.match(chunk, at)
            if arg is not None:
                return at, arg.end(), "an action's arguments follow 'with'", _write(f"with {arg.group()}")
        with_ = re.compile(r"[ \t]with[ \t]").search(chunk, run.end(), at)
        prev = _ARG_BEFORE.search(chunk, 0, at)
        arg = _ARG_AT.match(chunk, at)
        if with_ is not None and prev is not None and arg is not None and prev.start(1) >= with_.end() \
                and not _POLICY_WORD.match(chunk, at) and not _POLICY_WORD.search(chunk, with_.end(), at) \
                and (chunk[at] in '<"0123456789' or "=" in arg.group()):  # (a bare word: a misspelt policy?)
            return prev.start(1), arg.end(), "arguments are separated by commas", \
                _write(f"{prev.group(1)}, {arg.group()}")
        flag = re.compile(r"--?([a-z][a-z\-]*)(?:[ \t=]+([0-9][0-9.]*[a-z]*))?").match(chunk, at)
        if flag is not None and chunk[at] == "-" and _FLAGS.get(flag.group(1)) and \
                (flag.group(2) is not None) == (_FLAGS[flag.group(1)] != "busy restart"):
            value = flag.group(2) or ""
            if _FLAGS[flag.group(1)] == "debounce" and re.fullmatch(r"[0-9.]+", value):
                value += "ms"  # (watchexec's -d counts milliseconds)
            policy = _FLAGS[flag.group(1)] + (f" {value}" if value else "")
            return at, flag.end(), f"a rule has policies, not command-line flags: '{flag.group()}'", \
                _write(policy)
        alias = _POLICY_ALIAS.match(chunk, at) or (  # (`timeout-minutes`: the lexer read timeout, then '-')
            _POLICY_ALIAS.match(chunk, word.start(1)) if word is not None and word.end(1) == at else None)
        if alias is not None:  # GitHub Actions' timeout-minutes, watchexec's --on-busy-update, retries
            word, value = alias.group(1).lower().lstrip("-"), alias.group(2)
            written = f"timeout {value}m" if word.startswith("timeout") else \
                f"busy {_BUSY_UPDATE[value]}" if word == "on-busy-update" else f"retry {value}"
            return alias.start(), alias.end(), f"a rule's policy is {written.split()[0]}, not '{alias.group(1)}'", \
                _write(written)
        output = _WATCHEXEC_OUTPUT.match(chunk, at) \
            if re.compile(r"\s*(?:[A-Za-z_][A-Za-z0-9_\-]*\s*:\s*)?on[ \t]+file\.").match(chunk) else None
        if output is not None:  # watchexec's -c, --bell, -N...: what to do with a run's output
            return at, output.end(), f"a rule has policies, not watchexec's flags: '{output.group(1)}'", \
                "remove it: a run's output goes to .triggerlang/logs/N.log (triggerc logs -f N), its end to " \
                "triggerc runs; on run.failed run notify for a notice"
        options = _arg_flags(chunk, at, run, with_) if chunk[at] == "-" else None
        if options is not None:
            return options
        limit = _CONCURRENCY.match(chunk, at)
        if limit is not None:  # GitHub Actions' concurrency, a job runner's max parallel runs
            n = int(limit.group(2))
            return at, limit.end(), f"a rule's concurrency is its busy policy: '{limit.group(1)}'", \
                _write("busy queue", " (one run at a time, the next waits for it: the default)") if n <= 1 else \
                _write("busy parallel", " (runs overlap, without a limit on how many; one at a time: busy queue)")
        retry = re.compile(r"retry[ \t]+([0-9]+)(?:[ \t]*x|[ \t]+times?)(?![A-Za-z0-9_\-])").search(chunk, run.end())
        if retry is not None and retry.start() <= at <= retry.end():
            return retry.start(1), retry.end(), "retry takes the number of re-runs", _write(retry.group(1))
    if run is None and chunk[at] == "," and chunk[:at].rstrip()[-1:] in "\"]0123456789>" \
            and _open_bracket(chunk, at) is None:
        return at, at + 1, "conditions are not separated by commas", \
            "remove the ',': conditions side by side must all hold (for either, write 'or' between them)"
    if chunk[at] == "\\" and chunk[at + 1:].lstrip(" \t").startswith("\n"):
        return at, at + 1, "a line does not end with '\\' here", \
            "remove it: an indented line continues the declaration above"
    path = re.compile(r"\s*(?:[A-Za-z_][A-Za-z0-9_\-]*\s*:\s*)?on[ \t]+http\.[a-z]+[ \t]+$").match(chunk, 0, at)
    if path is not None and chunk[at] == '"':
        m = _COMMAND.match(chunk, at)
        if m is not None and m.group(1) is not None and m.group(1).startswith("/"):
            return at, m.end(), "an http rule's path is a condition", _write(f"path={m.group()}")
    return None


_REDIRECT = _lazy_re(r"(?:[0-9]?>>?|&>>?|<)(?:&[0-9]|[ \t]*[^\s#|;&<>]+)|\|(?!\|)")
_SHELL_OP = _lazy_re(r'"((?:\\.|[^"\\\n])*)"|r"([^"\n]*)"|([A-Za-z_][A-Za-z0-9_\-]*)'
                     r"|(&&|\|\||[0-9]?>&[0-9]|[0-9]?>>?|&>>?|[|;&<])|(\S+)")


def _line_code_end(chunk: str, at: int) -> int:
    """Where the code of the line at ``at`` ends (before a comment and trailing blanks)."""
    line_end = chunk.find("\n", at)
    line_end = len(chunk) if line_end == -1 else line_end
    return at + len(split_comment(chunk[at:line_end])[0].rstrip())


def _shell_tail(chunk: str, at: int) -> tuple[int, int, str, str] | None:
    """A shell's syntax after a rule's run clause: a redirection (``> deploy.log``,
    ``2>&1``), a pipe (``| tee log``), ``&`` (run in the background), ``; timeout 5m``
    (a policy after a ``;``). Rules run no shell; serve keeps a run's output."""
    if chunk[at] == ";" and _POLICY_WORD.match(chunk, at + 1 + len(chunk[at + 1:]) - len(chunk[at + 1:].lstrip(" \t"))):
        return at, at + 1, "a rule's policies follow its run clause, without ';'", "remove the ';'"
    if chunk[at] == "&" and not chunk.startswith("&&", at) and not chunk.startswith("&>", at) \
            and _line_code_end(chunk, at) == at + 1:
        return at, at + 1, "'&' is not needed: serve starts each run in the background", \
            "remove it (a rule's runs overlap with busy parallel)"
    m = _REDIRECT.match(chunk, at)
    if m is None or (chunk[at] == "<" and re.compile(r"<[^<>\n]*>").match(chunk, at)):  # (a placeholder's spelling)
        return None
    end = _line_code_end(chunk, at)
    what = "a pipe" if m.group() == "|" else "a redirection"
    return at, end, f"a rule runs no shell: '{chunk[at:end]}' is {what}", \
        "remove it: serve keeps each run's output (triggerc logs N); an action that writes a file or pipes does " \
        f"it in its own command, shell \"... {chunk[at:end].replace(chr(34), '')}\""


def _guard_after_run(chunk: str, at: int, run) -> tuple[int, int, str, str] | None:
    """``run build if branch="main"`` (a condition after the action, a shell's or Ruby's
    trailing if, GitHub Actions' ``if:`` on a step): the rule with its conditions after the
    trigger, where they go."""
    guard = re.compile(r"(if|when|where|unless)[ \t]*:?[ \t]+").match(chunk, at)
    if guard is None or guard.group(1) == "unless":
        return None
    end = _line_code_end(chunk, at)
    expr = _expression(chunk, guard.end())
    conditions = expr[1] if expr is not None and expr[0] == end else " ".join(chunk[guard.end():end].split())
    from lark.exceptions import UnexpectedInput

    try:
        lark_parser().parse(f"on x.y {conditions} run z")
    except UnexpectedInput:  # (not conditions this can move)
        return None
    head = _RULE_START.match(chunk)
    start = head.end() - 2
    trigger = " ".join(chunk[start:run.start()].split())
    rest = " ".join(chunk[run.start():at].split())
    return start, end, f"a rule's conditions follow its trigger, not '{guard.group(1)}' after its action", \
        _write(f"{trigger} {conditions} {rest}")


_RESTART_SIGNAL = _lazy_re(r"busy[ \t]+restart[ \t]+((?:--?)?(?:stop[ \t]*[-_ ]?[ \t]*)?signal|stop|kill[-_]?signal)"
                           r"(?:[ \t]*=[ \t]*|[ \t]+)(\"?)([A-Za-z][A-Za-z0-9]*)\2(?![A-Za-z0-9_\-])")


def restart_signal_hint(written: str, action: str) -> str:
    """The hint for a signal written on ``busy restart`` (``busy restart signal SIGHUP``,
    watchexec's ``-r --stop-signal``/``-r -s``, and ``busy restart SIGHUP``, the checker's):
    the signal a restart stops a run with is its action's ``stop SIGNAL``, which a cancel and
    a timeout send too; for a signal a program traps, ``busy signal`` is offered as well,
    as today's watchexec ``--signal`` means that mode (signal, and start nothing)."""
    from ..actions import STOP_SIGNALS, busy_signal_name, stop_signal_name

    stop, busy = stop_signal_name(written), busy_signal_name(written)
    instead = f"to send {busy} to the running run instead of restarting it: busy signal {busy}" if busy else ""
    if stop is None:
        return (f"{busy} cannot stop a run (stop takes {', '.join(STOP_SIGNALS)}); {instead}" if busy else
                f"the signal that stops a run is its action's: action {action} = exec ... stop SIGNAL, one of "
                + ", ".join(STOP_SIGNALS))
    return (f"a restart, a cancel and a timeout stop a run with its action's signal: add stop {stop} after action "
            f"{action}'s body (action {action} = exec ... stop {stop}) and keep busy restart"
            + (f"; {instead}" if instead else ""))


def _restart_signal(chunk: str, at: int, run) -> tuple[int, int, str, str] | None:
    """``busy restart signal SIGHUP`` (``stop SIGHUP``, ``--stop-signal=SIGHUP``): a signal
    for the restart to stop the run with. Not a spelling of the language: the stop signal
    is the action's, as a restart, a cancel and a timeout stop a run alike (README: How a
    run is stopped), and the words are ambiguous: older watchexec read ``-r -s SIGKILL``
    as a restart with that signal, today's ``--signal`` is ``--on-busy-update=signal``
    (``busy signal``) and is refused beside ``-r``, whose signal is ``--stop-signal``'s."""
    m = _RESTART_SIGNAL.search(chunk, run.end())
    if m is None or not m.start() <= at <= m.end():
        return None
    call = re.compile(r"\s+([A-Za-z_][A-Za-z0-9_\-]*)").match(chunk, run.end())
    return m.start(1), m.end(), "busy restart takes no signal: the signal that stops a run is its action's", \
        restart_signal_hint(m.group(3), call.group(1) if call is not None else "ACTION")


_WITH_WORD = _lazy_re(r"(?<![A-Za-z0-9_\-.<])run[ \t]+[A-Za-z_][A-Za-z0-9_\-]*[ \t]+(with)(?![A-Za-z0-9_\-])")


def _empty_with(chunk: str, at: int | None = None) -> tuple[int, int, str, str] | None:
    """``run build with`` and nothing after it, or only the rule's policies (``with timeout
    5m``: the policy word read as an argument): an action without parameters is run
    without ``with``; one with parameters gets its arguments after it. ``at`` is where
    the parser stopped (None: at the end of the declaration)."""
    if not _RULE_START.match(chunk):
        return None
    m = _WITH_WORD.search(chunk)
    if m is None:
        return None
    rest = "\n".join(split_comment(line)[0] for line in chunk[m.end(1):].split("\n"))
    policy = _POLICY_WORD.match(rest.lstrip())
    if at is None and rest.strip():
        return None
    if at is not None and (policy is None or at <= m.end(1) + len(rest) - len(rest.lstrip()) + policy.end()):
        return None
    name = chunk[m.start():m.start(1)].split()[1]
    return m.start(1), m.end(1), "'with' has no arguments after it", \
        f"remove it for an action without parameters (run {name}), or pass the arguments after it: " \
        f"run {name} with <sha>, \"prod\""


def _shell_quote(word: str) -> str:
    """``word`` as one word of a POSIX shell's command line."""
    return word if re.fullmatch(r"[A-Za-z0-9_@%+=:,./\-]+", word) else "'" + word.replace("'", "'\\''") + "'"


def _exec_shell(chunk: str, at: int) -> tuple[int, int, str, str] | None:
    """A shell's operator in an exec body (``exec "make" "build" && exec "make" "test"``,
    ``> "out.log"``, ``| exec "tee" "log"``, ``2>&1``): exec runs no shell, so the body to
    write is a shell action's, its strings as words, its parameters as their variables."""
    head = _ACTION_HEAD.match(chunk)
    body = re.compile(r"[ \t]*exec(?![A-Za-z0-9_\-])").match(chunk, head.end()) if head is not None else None
    op = _SHELL_OP.match(chunk, at) if body is not None and at > body.end() else None
    if op is None or (op.group(4) is None and not chunk.startswith("$(", at) and chunk[at] != "`") \
            or _PLACEHOLDER_AT.match(chunk, at):  # (`<sha>`: a rule's placeholder, _action_placeholder's)
        return None
    params, words = _action_params(head), []
    end = _line_code_end(chunk, body.end())
    for t in _SHELL_OP.finditer(chunk, body.end(), end):
        text, raw, name, operator, other = t.groups()
        if text is not None:
            words.append(_shell_quote(re.sub(r"\\(.)", r"\1", text)))
        elif raw is not None:
            words.append(_shell_quote(raw))
        elif name is not None and name in params:
            words.append(f'"$TRG_INPUT_{re.sub(r"[^A-Za-z0-9_]", "_", name).upper()}"')
        elif name != "exec":
            if other is not None and other.startswith(")") and words:  # (the end of a `$(...)`)
                words[-1] += other
            else:
                words.append(name or operator or other)
    start = body.start() + len(body.group()) - 4
    what = f"'{op.group()}' is a shell's" if op.group(4) is not None else \
        f"'{chunk[at:_closing(chunk, at + 1) if chunk[at] == '$' else chunk.find('`', at + 1) + 1]}' is a " \
        "command substitution"
    return start, end, f"exec runs no shell: {what}", \
        _write(f"shell {_str_literal(' '.join(words))}",
               " (a shell reads its pipes and operators; its inputs are $TRG_INPUT_NAME variables)")


_BODY_WORD = _lazy_re(r'"((?:\\.|[^"\\\n])*)"|\'((?:\\.|[^\'\\\n])*)\'|([^\s"\'\[\],]+)')


def _action_body(chunk: str, at: int) -> tuple[int, int, str, str] | None:
    """An action's command written without its kind or its quotes: ``action deploy =
    ./deploy.sh`` (a Makefile's or a crontab's command line), ``= "./deploy.sh"``, ``exec
    ./deploy.sh --prod``, ``exec ["make", "build"]`` (a Dockerfile's exec form), ``shell
    ./deploy.sh``; ``action deploy: exec ...`` (a Makefile's target); ``$sha`` for a
    parameter. The body to write: exec's strings, or one shell string where the words
    have a shell's characters."""
    head = re.compile(r"action[ \t]+([A-Za-z_][A-Za-z0-9_\-]*)[ \t]*(?:\(([^)]*)\))?[ \t]*([=:])").match(chunk)
    if head is None or at < head.start(3):
        return None
    if at == head.start(3) and head.group(3) == ":":
        return at, at + 1, "an action is declared with '=', not ':'", _write("=")
    params = _action_params(head)
    ref = re.compile(r"\$\{?([A-Za-z_][A-Za-z0-9_]*)\}?").match(chunk, at)
    if ref is not None and ref.group(1) in params:
        return at, ref.end(), f"'{ref.group()}' is a shell's: exec runs no shell", \
            _write(ref.group(1), " (a parameter is written bare)")
    kind = re.compile(r"[ \t]*(exec|shell)[ \t]+$").search(chunk, head.end(), at)
    if kind is None and chunk[head.end():at].strip():
        return None
    end = _line_code_end(chunk, at)
    words = [(m.group(1) if m.group(1) is not None else m.group(2) if m.group(2) is not None else m.group(3),
              m.group(3) is not None) for m in _BODY_WORD.finditer(chunk, at + (chunk[at] == "["), end)]
    words = [(w.rstrip("]"), bare) if bare else (w, bare) for w, bare in words if w.rstrip("]") or not bare]
    if not words:
        return None
    if kind is None:
        from ..diagnostics import suggest

        first = _WORD.fullmatch(words[0][0])
        if first is not None and (first.group() in ("exec", "shell", "http")
                                  or suggest(first.group(), ("exec", "shell", "http")) is not None):
            return None  # (a misspelt kind: the keyword's fix)
    if kind is None and len(words) == 2 and words[0] in (("sh", True), ("bash", True)) and not words[1][1]:
        return at, end, "an action's body starts with exec, shell or http", _write(f"shell {_str_literal(words[1][0])}")
    text = " ".join(w for w, _ in words)
    if (kind is not None and kind.group(1) == "shell") or (kind is None and re.search(r"[|&;<>$`*]", text)):
        body = _str_literal(text)
    else:
        body = " ".join(w if bare and w in params else _str_literal(w) for w, bare in words)
    if kind is None:
        body = ("shell " if body.startswith('"') and re.search(r"[|&;<>$`*]", text) else "exec ") + body
        return at, end, "an action's body starts with exec, shell or http", _write(body)
    return at, end, f"{kind.group(1)} takes {'strings' if kind.group(1) == 'exec' else 'a string'}", _write(body)


_DAY_NAMES = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")
_EVERY_WORD = _lazy_re(r"every[ \t]+(day|hour|minute|week|weekday|(sun|mon|tue|wed|thu|fri|sat)[a-z]*?)s?"
                       r"(?![A-Za-z0-9_\-])(?:[ \t]+at[ \t]+(\"?)([0-9]{1,2})(?::([0-9]{2}))?[ \t]*([ap]m)?\3)?", re.I)
_AT_TIME = _lazy_re(r"at[ \t]+(\"?)([0-9]{1,2})(?::([0-9]{2}))?[ \t]*([ap]m)?\1(?![A-Za-z0-9_\-:])", re.I)
_CALENDAR = _lazy_re(r"OnCalendar[ \t]*=[ \t]*(\"[^\"\n]*\"|\S+)", re.I)
_ZONE_WORDS = ("timezone", "time_zone", "time-zone", "timeZone", "TZ", "zone", "CRON_TZ")


def _clock(hour: str | None, minute: str | None, half: str | None) -> tuple[int, int] | None:
    """(hour, minute) of ``03:00``, ``9``, ``9pm``; None if it is no time of day."""
    h, m = int(hour or 0), int(minute or 0)
    if half is not None:
        if not 1 <= h <= 12:
            return None
        h = h % 12 + (12 if half.lower() == "pm" else 0)
    return (h, m) if h < 24 and m < 60 else None


def english_interval(word: str, clock: tuple[int, int] | None = None) -> str | None:
    """The hint for ``every WORD [at TIME]`` (``every hour``, ``every day at "03:00"``,
    ``every monday``): ``every 1h``, or the cron expression for a day's time (UTC); None
    for a word that names no interval."""
    m = re.fullmatch(r"(day|hour|minute|week|weekday|(sun|mon|tue|wed|thu|fri|sat)[a-z]*?)s?", word.lower())
    if m is None:
        return None
    unit = m.group(1)
    if unit in ("hour", "minute") or (unit == "day" and clock is None):
        return _write(f"every 1{unit[0]}", " (at 00:00 UTC; a time of day is cron's: cron \"0 3 * * *\")"
                      if unit == "day" else "")
    h, mi = clock or (0, 0)
    dow = {"day": "*", "weekday": "1-5", "week": "1"}.get(unit) or str(_DAY_NAMES.index(m.group(2)))
    return _write(f'cron "{mi} {h} * * {dow}"', ' (UTC; in a zone: tz "Area/City" after it)')


def _schedule_habit(chunk: str, at: int, word, run) -> tuple[int, int, str, str] | None:
    """A schedule in another tool's words: ``every day at "03:00"``, ``every monday``,
    ``every hour`` (an English interval), ``every 1d at "03:00"``, systemd's
    ``OnCalendar=daily`` and ``Persistent=true``, ``timezone "Europe/Paris"``, and a
    schedule after a rule's run clause (``run build every 5m``: a second trigger)."""
    if run is not None:
        extra = re.compile(r"(?:on[ \t]+)?(every[ \t]+[0-9][0-9.]*[a-z]*|cron[ \t]+\"[^\"\n]*\")").match(chunk, at)
        if extra is None or chunk[run.end():at].count("\n"):
            return None
        head = _RULE_START.match(chunk)
        action = re.compile(r"\s+([A-Za-z_][A-Za-z0-9_\-]*)").match(chunk, run.end())
        label = re.match(r"\s*([A-Za-z_][A-Za-z0-9_\-]*)\s*:", chunk)
        trigger = " ".join(chunk[head.end() - 2 if label is None else label.end():run.start()].split())
        return at, extra.end(), "a rule has one trigger", \
            f"add a rule for the schedule: on {extra.group(1)} run {action.group(1) if action else 'ACTION'} " \
            f"(this one keeps {trigger})"
    every = list(re.compile(r"(?<![A-Za-z0-9_\-.])every[ \t]+").finditer(chunk, 0, at))
    m = _EVERY_WORD.match(chunk, every[-1].start()) if every else None
    if m is not None and m.end() > at:
        clock = _clock(m.group(4), m.group(5), m.group(6)) if m.group(4) else None
        hint = english_interval(m.group(1), clock) if clock is not None or not m.group(4) else None
        if hint is not None:
            return m.start(), m.end(), f"an interval is a number and a unit: '{m.group()}'", hint
    timed = _AT_TIME.match(chunk, at) if chunk[at:at + 2] == "at" else None
    every = re.compile(r"every[ \t]+([0-9][0-9.]*[a-z]*)[ \t]+$").search(chunk, 0, at) if timed else None
    if every is not None:
        clock = _clock(timed.group(2), timed.group(3), timed.group(4))
        if clock is not None and every.group(1) in ("1d", "24h"):
            return every.start(), timed.end(), "every has no time of day: it ticks from the Unix epoch", \
                _write(f'cron "{clock[1]} {clock[0]} * * *"', ' (UTC; in a zone: tz "Area/City" after it)')
        return timed.start(), timed.end(), "every has no time of day: it ticks from the Unix epoch", \
            'a time of day is cron\'s: on cron "0 3 * * *" run ACTION'
    cal = _CALENDAR.match(chunk, word.start(1)) if word is not None and word.group(1).lower() == "oncalendar" else None
    if cal is not None:
        from ..cron import _systemd_calendar

        cron = _systemd_calendar("OnCalendar=" + cal.group(1).strip('"'))
        return cal.start(), cal.end(), "a schedule is on cron \"...\" or on every D, not systemd's OnCalendar=", \
            _write(f'cron "{cron}"') if cron else 'its cron expression: cron "MINUTE HOUR DAY MONTH WEEKDAY"'
    if word is not None and word.group(1) in _ZONE_WORDS and chunk[at] == '"' \
            and re.compile(r"\bcron[ \t]+\"").search(chunk, 0, word.start(1)):
        return word.start(1), word.end(1), f"a cron's time zone follows tz, not '{word.group(1)}'", _write("tz")
    if word is not None and word.group(1).lower() in ("persistent", "catchup", "catch_up", "catch-up") \
            and re.compile(r"\b(?:every|cron)[ \t]").search(chunk, 0, word.start(1)):
        return word.start(1), word.end(1), f"a missed tick is made up with 'catch up', not '{word.group(1)}'", \
            _write("catch up")
    return None


_WATCH_FLAG = _lazy_re(r"[ \t]*(-e|--exts?|--extensions|-w|--watch|-f|--filter|-i|--ignore)(?:[ \t]*=[ \t]*|[ \t]+)"
                       r"(\"[^\"\n]*\"|'[^'\n]*'|[^\s\"']+)")


def _watch_flags(chunk: str, at: int) -> tuple[int, int, str, str] | None:
    """watchexec's filters written as its flags in a file rule (``on file.changed -e py,toml
    -w src``): the conditions that say the same, ``ext in ["py", "toml"] path ~ "src/**"``."""
    if not re.compile(r"\s*(?:[A-Za-z_][A-Za-z0-9_\-]*\s*:\s*)?on[ \t]+file\.").match(chunk):
        return None
    exts, watched, globs, ignored, end = [], [], [], [], at
    while (m := _WATCH_FLAG.match(chunk, end)) is not None:
        flag, value = m.group(1), m.group(2).strip("\"'")
        if flag in ("-e", "--exts", "--ext", "--extensions"):
            exts += [x.strip().lstrip(".") for x in value.split(",") if x.strip().lstrip(".")]
        elif flag in ("-w", "--watch"):
            folder = re.sub(r"^\./", "", value).rstrip("/")
            watched.append(f"{folder}/**" if folder not in ("", ".") else "**")
        else:
            glob = re.sub(r"^\./", "", value)
            (globs if flag in ("-f", "--filter") else ignored).append(glob if "/" in glob else f"**/{glob}")
        end = m.end()
    if end == at:
        return None

    def one(field: str, op: str, items: list[str]) -> str:
        return f"{field} {op} {_str_literal(items[0])}" if len(items) == 1 else \
            f"{field} {'in' if op == '=' else op} [{', '.join(_str_literal(i) for i in items)}]"

    conditions = ([f"ext={_str_literal(exts[0])}" if len(exts) == 1 else one("ext", "=", exts)] if exts else []) \
        + ([one("path", "~", watched)] if watched else []) + ([one("path", "~", globs)] if globs else []) \
        + ([f"not {one('path', '~', ignored)}"] if ignored else [])
    flag = re.match(r"-+[A-Za-z]*", chunk[at:]).group()
    return at, end, f"a file rule's filters are conditions, not watchexec's flags: '{flag}'", \
        _write(' '.join(conditions))


_ITEMS = r'(?:"[^"\n]*"|\'[^\'\n]*\'|[A-Za-z0-9_.\-/*]+)'
_BARE_LIST = _lazy_re(r"(?:(?<![A-Za-z0-9_\-.])in|^let[ \t]+[A-Za-z_][A-Za-z0-9_\-]*[ \t]*=)[ \t]+("
                      + _ITEMS + r"(?:[ \t]*,[ \t]*" + _ITEMS + r")+)")
_ITEM_BEFORE = _lazy_re(r'("(?:\\.|[^"\\\n])*"|-?[0-9][0-9.]*)[ \t]+$')
_ITEM_AT = _lazy_re(r'"(?:\\.|[^"\\\n])*"|-?[0-9][0-9.]*(?![A-Za-z])')


def _list_habit(chunk: str, at: int) -> tuple[int, int, str, str] | None:
    """A list without its brackets (``branch in main, dev``, ``let bots = a, b``: YAML's
    flow of items) or without its commas (``["main" "dev"]``)."""
    for m in _BARE_LIST.finditer(chunk, 0, _line_code_end(chunk, at)):
        if m.start(1) < at <= m.end(1):
            items = [i.strip().strip("\"'") for i in re.findall(_ITEMS, m.group(1))]
            return m.start(1), m.end(1), "a list is written in [ ]", \
                _write(f"[{', '.join(_str_literal(i) for i in items)}]")
    opened = _open_bracket(chunk, at)
    prev = _ITEM_BEFORE.search(chunk, 0, at)
    item = _ITEM_AT.match(chunk, at)
    if opened is not None and chunk[opened] == "[" and prev is not None and item is not None \
            and prev.start(1) > opened:
        return prev.start(1), item.end(), "a list's items are separated by commas", \
            _write(f"{prev.group(1)}, {item.group()}")
    return None


def _option_value(chunk: str, at: int) -> tuple[int, int, str, str] | None:
    """A declaration's option written as a shell's or an ini file's: ``root=./src`` and
    ``env STAGE=prod`` (a value without its quotes), ``cwd="./app"`` (cwd takes no '='),
    ``secret=env "GH"`` (a secret read where its name goes)."""
    head = re.compile(r"(source|action)[ \t]+([A-Za-z_][A-Za-z0-9_\-]*)").match(chunk)
    if head is None or at < head.end():
        return None
    read = re.compile(r"([A-Za-z_][A-Za-z0-9_\-]*)[ \t]*=[ \t]*(env|file)[ \t]+$").search(chunk, head.end(), at)
    text = re.compile(r'r?"[^"\n]*"').match(chunk, at)
    if read is not None and text is not None and head.group(1) == "source":
        name = re.sub(r"[^A-Za-z0-9_]", "_", head.group(2))
        return read.start(2), text.end(), "a source names a secret, declared on a line of its own", \
            f"declare secret {name} = {read.group(2)} {text.group()} and write {read.group(1)}={name}"
    option = re.compile(r"(cwd)[ \t]*=[ \t]*(\"[^\"\n]*\"|[^\s\"#]+)").match(chunk, _WORD_BEFORE.search(chunk, 0, at).start(1)) \
        if chunk[at] == "=" and _WORD_BEFORE.search(chunk, 0, at) else None
    if option is not None:
        value = option.group(2) if option.group(2).startswith('"') else _str_literal(option.group(2))
        return option.start(), option.end(), "cwd takes no '='", _write(f"cwd {value}")
    assign = re.compile(r"[A-Za-z_][A-Za-z0-9_\-]*[ \t]*=[ \t]*$").search(chunk, 0, at)
    body = _ACTION_HEAD.match(chunk) if head.group(1) == "action" else head
    if assign is None or body is None or assign.start() < body.end():  # (the action's own '=': its body's)
        return None
    bare = re.compile(r'([^\s"#,()\[\]<][^\s"#,()\[\]]*)').match(chunk, at)  # (a <placeholder>: _action_placeholder's)
    if bare is not None and not re.fullmatch(r"-?[0-9]+(?:\.[0-9]+)?", bare.group(1)):
        return bare.start(1), bare.end(1), "a value that is text goes in quotes", _write(_str_literal(bare.group(1)))
    return None


def _first_rule_habit(e, chunk: str, at: int) -> tuple[int, int, str, str] | None:
    """Habits of other tools in a first rule: ``timeout=10m`` and ``debounce: 500ms`` (a
    policy written as an option), ``every "5m"`` (a duration in quotes), ``cron 0 3 * * *``
    (an expression without them), typographic quotes pasted from a document, a second
    action after ``run ACTION`` (``; y``, ``and y``), a second rule on the same line, and a
    shell's or GitHub Actions' ``$sha``/``${{ github.sha }}`` for an argument."""
    word = _WORD_BEFORE.search(chunk, 0, at)
    ruled = _RULE_START.match(chunk) is not None
    run = _RUN_CLAUSE.search(chunk, 0, at) if ruled else None
    wanted = set(getattr(e, "expected", None) or getattr(e, "allowed", None) or ())
    workflow = _workflow_habit(e, chunk, at, word) or _rule_shape(chunk, at, word, run) \
        or (_schedule_habit(chunk, at, word, run) if ruled else None) \
        or (_watch_flags(chunk, at) if run is None and chunk[at] == "-" else None)
    if workflow is not None:
        return workflow
    ch = chunk[at]
    if ch in "=:" and word is not None and word.group(1) in _POLICY_NAMES and run is not None \
            and word.start(1) > run.start():
        value = re.compile(r"[=:][ \t]*(\"[^\"\n]*\"|[^\s,#]+)").match(chunk, at)
        if value is not None:
            text = value.group(1).strip('"')
            return word.start(1), value.end(), f"a policy takes no '{ch}'", _write(f"{word.group(1)} {text}")
    if ch == '"' and "DURATION" in wanted:
        m = re.compile(r'"([^"\n]*)"').match(chunk, at)
        if m is not None and _DURATION_TEXT.fullmatch(m.group(1).strip()):
            return at, m.end(), "a duration is not a string", _write(m.group(1).strip())
    if word is not None and word.group(1) == "cron" and word.end(1) < at and wanted & {"STRING", "RAW_STRING"}:
        m = _CRON_WORDS.match(chunk, at)
        if m is not None:
            return at, m.end(), "a cron expression is a string", _write(f'"{m.group()}"')
    if ch in _QUOTES:
        line_end = chunk.find("\n", at)
        line_end = len(chunk) if line_end == -1 else line_end
        close = min((i for i in (chunk.find(c, at + 1, line_end) for c in _QUOTES[ch]) if i != -1), default=-1)
        if close != -1 and '"' not in chunk[at + 1:close]:
            return at, close + 1, "typographic quotes (pasted from a document?)", \
                _write(_str_literal(chunk[at + 1:close]))
    if run is not None:
        call = _RUN_CALL.search(chunk, 0, at)
        more = _ANOTHER_ACTION.match(chunk, at) if call is not None and call.end() == at else None
        if more is None and call is not None and chunk[call.end() - 1:at].strip() == "":
            more = _ANOTHER_ACTION.match(chunk, call.end())
        if more is None and chunk[at] in ";&" and re.compile(r"[ \t]with[ \t]").search(chunk, run.end(), at):
            more = _AFTER_ARGS.match(chunk, at)  # `run deploy with <sha>; notify`
        if more is not None and more.start(1) >= at - 1 and more.group(2) not in RESERVED | set(_POLICY_NAMES):
            head = _RULE_START.match(chunk)
            trigger = " ".join(chunk[head.end() - 2:run.start()].split())
            return more.start(1), more.end(), "a rule runs one action", \
                f"add a rule for {more.group(2)}: {trigger} run {more.group(2)} (for one after the other, " \
                "one action that runs both)"
        shell = _shell_tail(chunk, at) or _guard_after_run(chunk, at, run)
        if shell is not None:
            return shell
        if _NEXT_RULE.match(chunk, at) and chunk.rfind("\n", 0, at) < run.start():
            return at, at + 2, "a second rule on the line of the first", \
                "start each rule on a line of its own (in column 1)"
        with_ = re.compile(r"[ \t]with[ \t]").search(chunk, run.end(), at)
        braces = _json_args(chunk, at) if with_ is not None and chunk[at] == "{" else None
        if braces is not None:
            return braces
        colon = re.compile(r":[ \t]*(" + _ARG + ")").match(chunk, at) if with_ is not None and word is not None \
            and word.end(1) == at and word.start(1) >= with_.end() else None
        if colon is not None and "=" not in colon.group(1):  # `with sha: <sha>` (YAML's)
            return word.start(1), colon.end(), "a named argument is NAME=VALUE, not 'NAME: VALUE'", \
                _write(f"{word.group(1)}={colon.group(1)}")
        tekton = re.compile(r"\$\(\s*[A-Za-z_][A-Za-z0-9_\-]*(?:\.[A-Za-z0-9_\-\[\]'\"*]+)+\s*\)").match(chunk, at)
        if with_ is not None and (chunk.startswith("$(", at) or chunk[at] == "`") and tekton is None:
            end = _closing(chunk, at + 1) if chunk[at] == "$" else chunk.find("`", at + 1) + 1 or len(chunk)
            command = chunk[at + (2 if chunk[at] == "$" else 1):end - 1].strip()
            rev = re.fullmatch(r"git\s+rev-parse\s+(--short(?:=\d+)?\s+)?HEAD", command)
            hint = (_write('<sha ~ /^.{7}/>' if rev.group(1) else '<sha>', " (the event's commit)") if rev is not None
                    else f'pass a field of the event, <FIELD>; what a command computes is the action\'s work: '
                         f'shell "... {chunk[at:end]}"')
            return at, end, f"a rule runs no shell: '{chunk[at:end]}' is a command substitution", hint
        ref = _DOLLAR_REF.match(chunk, at) if with_ is not None else None
        if ref is not None:
            path = context_field(next(g for g in ref.groups() if g))
            if _PATH_BEFORE.fullmatch(path):
                return at, ref.end(), f"an argument from the event is written <field> here: '{ref.group()}'", \
                    _write(f"<{path}>")
    return None


def _foreign_syntax(e, chunk: str) -> tuple[int, int, str, str] | None:
    """(start, end, message, hint) when the parser stopped at another language's spelling:
    ``==``, ``=~``, ``&&``, ``||``, ``!``, a 'single-quoted' string, ``FIELD.startsWith(...)``
    and other calls, ``[*]``/``[0]`` after a path, a JSONPath ``$.x``, ``in (...)``."""
    at = _error_offset(e, chunk)
    if at >= len(chunk):
        return None
    bare = _INCLUDE_BARE.match(chunk)
    if bare is not None and bare.start(1) == at:  # include common.trg
        return at, bare.end(1), "an include's path is a string", _write(f'include "{bare.group(1)}"')
    guard = _GUARD_WORD.search(chunk, 0, at)
    if guard is not None:  # `on git.push if branch="main"`: read as a field named if
        expr = _expression(chunk, guard.end(2)) if chunk[at] != "=" else None
        if expr is not None:  # `if ${{ github.ref == 'refs/heads/main' }}`: a workflow's expression
            return guard.start(2), expr[0], f"a filter is conditions, not '{guard.group(2)}' and an expression", \
                _write(expr[1])
        return guard.start(2), guard.end(2), f"'{guard.group(2)}' is not needed before a filter", \
            f"the conditions follow the trigger: on {guard.group(1)} CONDITIONS run ACTION"
    first = _secret_value(chunk, at) or _list_habit(chunk, at) or _dangling_joiner(chunk, at) \
        or _first_rule_habit(e, chunk, at)
    if first is not None:
        return first
    two = chunk[at:at + 2]
    if chunk.startswith("==", max(0, at - 1)) and (two == "==" or chunk[at - 1:at + 1] == "=="):
        start = at if two == "==" else at - 1
        return start, start + 2, "'==' is written '='", "a condition is FIELD = VALUE (one sign; != is not equal)"
    spelled = _word_operator(chunk, at) or _exec_shell(chunk, at) or _action_body(chunk, at) \
        or _option_value(chunk, at)
    if spelled is not None:
        return spelled
    if at > 0 and chunk[at - 1:at + 1] == "=~":
        return at - 1, at + 1, "'=~' is written '~'", "FIELD ~ /regex/ searches, FIELD ~ \"glob*\" matches a glob"
    if two in ("&&", "||"):
        word = "and" if two == "&&" else "or"
        return at, at + 2, f"'{two}' is written '{word}'", "combine conditions with and, or, not (conditions side by side must all hold)"
    if chunk[at] == "!" and two not in ("!=", "!~"):
        return at, at + 1, "'!' is written 'not'", "not CONDITION, or FIELD != VALUE, FIELD !~ PATTERN"
    if chunk[at] == "'":
        m = _SINGLE_QUOTED.match(chunk, at)
        if m is not None:
            whole = _QUOTED_LIST.match(chunk, chunk.rfind("[", 0, at)) if "[" in chunk[:at] else None
            if whole is not None and whole.start() < at < whole.end():   # ['opened', 'synchronize']: the whole list
                items = _SINGLE_QUOTED.sub(lambda q: _str_literal(q.group(1)), whole.group(1))
                items = ", ".join(x.strip() for x in items.split(","))
                return whole.start(), whole.end(), "strings are in double quotes", _write(f"[{items}]")
            return at, m.end(), "strings are in double quotes", _write(_str_literal(m.group(1)))
    placeholder = _action_placeholder(chunk, at)
    if placeholder is not None:
        return placeholder
    misplaced = _action_policy(chunk, at)
    if misplaced is not None:
        return misplaced
    word = _WORD_BEFORE.search(chunk, 0, at)
    zone = _BARE_ZONE.match(chunk, at)
    if word is not None and word.group(1) == "tz" and zone is not None:  # tz Europe/Paris
        return at, zone.end(), "a time zone is a string", _write(f'tz "{zone.group()}"')
    scheduled = _SCHEDULE_WORD.match(chunk)
    if scheduled is not None and scheduled.start(2) == at:  # on schedule every 5m: a schedule is the trigger
        return scheduled.start(1), scheduled.end(1), "'schedule' is not needed: a schedule is the trigger itself", \
            'remove it: on every 15m run ACTION, on cron "0 3 * * *" run ACTION'
    if chunk.startswith("$(", at) or chunk.startswith("{{", at) or chunk[at] == "<":
        close = {"$": ")", "{": "}}", "<": ">"}[chunk[at]]
        end = chunk.find(close, at, chunk.find("\n", at) % (len(chunk) + 1))
        if end != -1:
            end += len(close)
            inner = chunk[at + (1 if chunk[at] == "<" else 2):end - len(close)].strip()
            if chunk[at] == "{":   # Argo Events' dataTemplate, Go templates: {{ .Input.body.ref }}
                inner = re.sub(r"^\.(?:Input\.)?", "", inner)
            path = _BRACKET.sub(lambda b: "." + b.group(1).strip("'\""), _raw_path(inner))
            if _PATH_BEFORE.fullmatch(path) and not path.startswith("$") and chunk[at:end] != f"<{path}>":
                what = {"$": "a Tekton binding", "{": "a template", "<": "a placeholder"}[chunk[at]]
                return at, end, f"{what} is written <field.path> here: '{chunk[at:end]}'", _write(f"<{path}>")
    positional = _positional(chunk, at)
    if positional is not None:
        return positional
    if chunk[at] == "$":
        m = re.compile(r"\$\.?([A-Za-z0-9_.\-\[\]*]*)").match(chunk, at)
        text = m.group() if m else "$"
        path = _raw_path(text)
        path = _BRACKET.sub(lambda b: "." + b.group(1).strip("'\""), path)
        if text.startswith("$.") or text == "$":
            return at, at + len(text), f"a JSONPath is a field path here: '{text}'", \
                _write(path, ": the body is payload, a header headers.NAME, a query parameter query.NAME")
        return at, at + len(text), f"'{text}' is not a field", \
            "a field is written bare: payload.ref, headers.x-name, query.name; in an action's arguments, <payload.ref>"
    if chunk[at] == "[":
        b = _BRACKET.match(chunk, at)
        before = _PATH_BEFORE.search(chunk, 0, at)
        if b is not None and before is not None and before.end(1) == at:
            seg = b.group(1).strip("'\"")
            return at, b.end(), f"'{b.group()}' is written '.{seg}'", \
                _write(f"{_raw_path(before.group(1))}.{seg}", ": a '*' reads every element" if seg == "*" else "")
    if chunk[at] == "(":
        word = _WORD_BEFORE.search(chunk, 0, at)
        call = _RUN_CALL.search(chunk, 0, at)
        if call is not None:  # `run deploy(<sha>, "prod")`: a function call's spelling
            end = _closing(chunk, at)
            args = (chunk[at + 1:end - 1] if chunk[end - 1:end] == ")" else chunk[at + 1:end]).strip()
            return call.start(1), end, "an action's arguments follow 'with', not parentheses", \
                _write(f"run {call.group(1)} with {args}" if args else f"run {call.group(1)}")
        if word is not None and word.group(1) == "in":
            end = _closing(chunk, at)
            items = chunk[at + 1:end - 1] if chunk[end - 1:end] == ")" else chunk[at + 1:end]
            items = _SINGLE_QUOTED.sub(lambda q: _str_literal(q.group(1)), items)
            return at, end, "a list is written in [ ]", _write(f"[{items.strip()}]")
        return _call_hint(chunk, at) or _function_hint(chunk, at)
    return None


_JOINER = _lazy_re(r"(?<![A-Za-z0-9_\-.<])(or|and|not)\s+(?=run(?=[ \t\r\n]))")
_LAST_JOINER = _lazy_re(r"(?<![A-Za-z0-9_\-.<])(or|and|not)$")
_TRIGGER_AT = _lazy_re(r"\s*(?:[A-Za-z_][A-Za-z0-9_\-]*\s*:\s*)?on[ \t]+([A-Za-z_][A-Za-z0-9_\-]*)\.([A-Za-z_][A-Za-z0-9_\-]*)")


def _code_end(chunk: str) -> int:
    """The offset just after the last character of ``chunk``'s code (its comments and the
    blanks after it left out)."""
    end = offset = 0
    for line in chunk.split("\n"):
        code = split_comment(line)[0].rstrip()
        if code:
            end = offset + len(code)
        offset += len(line) + 1
    return end


def _dangling_joiner(chunk: str, at: int | None = None) -> tuple[int, int, str, str] | None:
    """``branch="main" or run build``: an ``or``, ``and`` or ``not`` with no condition after
    it (the parser stops at ``run``, a reserved word where a field goes), or right after
    the trigger, with none before it (``on git.push or run build``); also as the last word
    of a rule that has no run yet (``on git.push branch="main" or``; ``at`` None: the
    parser reached the end of the declaration wanting a condition), the same diagnostic."""
    head = _RULE_START.match(chunk)
    if head is None:
        return None
    end = _code_end(chunk)
    last = _LAST_JOINER.search(chunk, head.end(), end)
    if last is not None and at in (None, last.start(1)) and not _RUN_CLAUSE.search(chunk, 0, end):
        m, then = last, " run ACTION"  # (the rule's end: its run is still to write)
    elif at is None or _RUN_CLAUSE.search(chunk, 0, at):
        return None
    else:
        m, then = next((j for j in _JOINER.finditer(chunk, head.end()) if at in (j.start(1), j.end())), None), ""
    if m is None:
        return None
    word = m.group(1)
    before = chunk[head.end():m.start(1)]
    if word != "not" and not re.search(r"[=~<>]|(?<![A-Za-z0-9_\-.])(?:has|in)(?![A-Za-z0-9_\-])", before):
        trigger = " ".join(before.split())  # `on git.push or run build`
        return m.start(1), m.end(1), f"'{word}' with no condition before it", \
            f"remove it: the conditions follow the trigger, on {trigger} CONDITION ... run ACTION (side by side " \
            "when all must hold, or joined by or)"
    what = "it negates" if word == "not" else "it joins"
    return m.start(1), m.end(1), f"'{word}' with no condition after it", \
        f"remove it, or write the condition {what} after it, before run: {word} FIELD = VALUE{then}"


def _positional(chunk: str, at: int) -> tuple[int, int, str, str] | None:
    """A shell's positional parameter (``$1``, ``${2}``, ``$@``, ``$*``) in a rule or an
    action's body: a rule passes the event's fields by name (``<sha>``), an action's body
    names its parameters (``sha``)."""
    m = re.compile(r"\$(?:([0-9])|\{([0-9]+)\}|([@*]))").match(chunk, at)
    if m is None:
        return None
    text, n = m.group(), int(m.group(1) or m.group(2) or -1)
    message = f"'{text}' is a shell's positional parameter"
    head = _ACTION_HEAD.match(chunk)
    if head is not None and at >= head.end():
        params = _action_params(head)
        if n == 0:
            return at, m.end(), message, "the program is the exec's first word; write it as a string"
        if 0 < n <= len(params):
            return at, m.end(), message, _write(params[n - 1], f" (parameter {n} of action {head.group(1)}, "
                                                               "written bare)")
        if n < 0 and params:
            return at, m.end(), message, _write(" ".join(params), " (the action's parameters, each written bare)")
        name = "value" if "value" not in params else f"value{n}"
        declared = ", ".join(params + [name])
        return at, m.end(), message, \
            f"an action's inputs are its parameters: declare one, action {head.group(1)}({declared}) = ... {name}, " \
            f"and pass it from the rule: run {head.group(1)} with <FIELD>"
    if not _RULE_START.match(chunk):  # (a test's given: the value itself)
        return at, m.end(), message, "write the value the event would carry, a string, a number or a list"
    trigger = _TRIGGER_AT.match(chunk)
    fields = None
    if trigger is not None:
        from ..check import catalogue as C  # (only on this error)

        fields = C.field_names(trigger.group(1), trigger.group(2))  # ([] for a source it does not know)
    known = f": {trigger.group(1)}.{trigger.group(2)} has " + ", ".join(fields) if fields else ""
    if _RUN_CLAUSE.search(chunk, 0, at):
        return at, m.end(), f"{message}: a rule passes the event's fields by name", \
            f"pass a field of the event by its name, <FIELD>{known}"
    return at, m.end(), f"{message}: a rule has no parameters", \
        f'compare a field with a value, branch="main" (a field is written bare{known})'


_WORD_OPS = {"is": "=", "eq": "=", "equals": "=", "equal": "=", "match": "=", "ne": "!=", "neq": "!=",
             "isnt": "!=", "matches": "~", "like": "~", "glob": "~", "regex": "~", "contains": "=",
             "startswith": "~", "endswith": "~"}
"""Words for an operator: SQL's (``like``), shell test's and Perl's (``eq``, ``ne``), Python's
(``is``), adnanh/webhook's match types (``match`` a value, ``regex``), CEL's functions."""
_OP_VALUE = _lazy_re(r'[ \t]+(?:(not)[ \t]+)?("(?:\\.|[^"\\\n])*"|\'(?:\\.|[^\'\\\n])*\'|/(?:\\.|[^/\\\n])+/[a-z]*'
                     r'|-?[0-9][0-9.]*[a-z]*|\[[^\]\n]*\]|[A-Za-z_][A-Za-z0-9_\-]*)')


def _word_operator(chunk: str, at: int) -> tuple[int, int, str, str] | None:
    """A word where a condition's operator goes (``branch is "main"``, ``eq``, ``matches
    "rel*"``, SQL's ``like "rel%"``, ``contains "bug"``): the operator to write, with its
    value (``like``'s ``%`` and ``_`` as a glob's ``*`` and ``?``; ``startswith "v"`` as
    ``~ "v*"``)."""
    if not _RULE_START.match(chunk) or _RUN_CLAUSE.search(chunk, 0, at):
        return None
    w = _WORD.match(chunk, at)
    before = _PATH_BEFORE.search(chunk, 0, at)
    op = _WORD_OPS.get(w.group().lower()) if w is not None else None
    value = _OP_VALUE.match(chunk, w.end()) if op is not None else None
    if value is None or before is None or before.group(1) in RESERVED or value.group(2) in RESERVED:
        return None
    word, text = w.group().lower(), value.group(2)
    if text.startswith("'"):
        text = _str_literal(text[1:-1])
    inner = text[1:-1].replace('\\"', '"') if text.startswith('"') else None
    if value.group(1) is not None:  # `is not "x"`
        op = {"=": "!=", "~": "!~", "!=": "="}[op]
    if word == "like" and inner is not None:
        text = _str_literal(inner.replace("%", "*").replace("_", "?"))
    elif word in ("startswith", "endswith") and inner is not None:
        text = _str_literal(inner + "*" if word == "startswith" else "*" + inner)
    elif word in ("matches", "regex", "glob") and text[0] not in '"/[':
        return None
    written = f"{op} {text}"
    if word == "contains":
        return w.start(), value.end(), f"'{w.group()}' is written '=' on a list, '~' on a string", \
            _write(f"= {text}", f" (some element is {text}; a string that holds it: ~ "
                   f"{_str_literal('*' + inner + '*') if inner is not None else '/.../'})")
    return w.start(), value.end(), f"'{' '.join(chunk[w.start():value.start(2)].split())}' is written '{op}'", \
        _write(written, " (FIELD = VALUE; != is not equal)" if op == "=" else "")


_ACTION_NAME = _lazy_re(r"action[ \t]+([A-Za-z_][A-Za-z0-9_\-]*)")
_ACTION_HEAD = _lazy_re(r"action[ \t]+([A-Za-z_][A-Za-z0-9_\-]*)[ \t]*(?:\(([^)]*)\))?[ \t]*=")
_PLACEHOLDER_AT = _lazy_re(r"<\s*([A-Za-z_][A-Za-z0-9_\-]*(?:\.(?:[A-Za-z0-9_\-]+|\*))*)\s*>")


_BARE_ZONE = _lazy_re(r"[A-Za-z][A-Za-z0-9_+\-]*(?:/[A-Za-z0-9_+\-]+)+|UTC|GMT")
_SCHEDULE_WORD = _lazy_re(r"\s*(?:[A-Za-z_][A-Za-z0-9_\-]*\s*:\s*)?on[ \t]+(schedule)[ \t]+(every|cron)(?![A-Za-z0-9_\-])")


def _action_policy(chunk: str, at: int) -> tuple[int, int, str, str] | None:
    """A rule's policy written in an action's declaration (``action build = exec "make"
    timeout 5m``): it belongs to the rules that run the action."""
    head = _ACTION_HEAD.match(chunk)
    if head is None or at < head.end():
        return None
    word = _POLICY_WORD.match(chunk, at)
    if word is None:  # in an exec body the word was read as a parameter: the parser stopped after it
        before = _WORD_BEFORE.search(chunk, 0, at)
        if before is None or before.start(1) < head.end():
            return None
        word = _POLICY_WORD.match(chunk, before.start(1))
        if word is None or word.group(1) in _action_params(head):
            return None
    return word.start(1), word.end(1), f"'{word.group(1)}' is a policy of a rule, not an option of an action", \
        f"write it after the rule's run clause: on TRIGGER run {head.group(1)} {word.group(1)} ..."


def _action_params(head: re.Match) -> list[str]:
    """The parameter names of an action declaration's head (``_ACTION_HEAD``'s match)."""
    return [p.split("=")[0].strip() for p in (head.group(2) or "").split(",") if p.strip()]


def _action_placeholder(chunk: str, at: int) -> tuple[int, int, str, str] | None:
    """A ``<field>`` placeholder in an action's body (``action deploy(sha) = exec "d" <sha>``):
    an action does not read the event, its rules pass it values. The hint names the
    parameter to write bare, or the parameter to declare and the rule's ``with``."""
    head = _ACTION_HEAD.match(chunk)
    if head is None or at < head.end():
        return None
    m = _PLACEHOLDER_AT.match(chunk, at)
    if m is None:
        return None
    field = m.group(1)
    params = _action_params(head)
    message = f"an action's body has no placeholders: '{m.group()}'"
    if field in params:
        return at, m.end(), message, f"a parameter is written bare in the body: {field}"
    name = re.sub(r"[^A-Za-z0-9_]", "_", field.rsplit(".", 1)[-1]).strip("_") or "value"
    declared = ", ".join(params + [name])
    return at, m.end(), message, \
        f"an action does not read the event: declare a parameter, action {head.group(1)}({declared}) = ... {name}, " \
        f"and pass it from the rule: run {head.group(1)} with <{field}>"


def _policy_moved(chunk: str, start: int) -> tuple[int, str, str] | None:
    """(end, policies, replacement) for a rule whose policies start at ``start``, before
    its ``run``: ``policies`` is their text up to ``run``, ``replacement`` the rule's text
    from ``start`` to its end (before a comment), with the run clause first and the
    policies after it. None unless the rule, so rewritten, parses."""
    from lark.exceptions import UnexpectedInput

    run = _RUN_CLAUSE.search(chunk, start)
    if run is None:
        return None
    end = len(chunk.rstrip())
    at = chunk.rfind("\n", 0, run.start()) + 1  # the run line's start, then each later line's
    for line in chunk[at:].split("\n"):  # the rule's code ends at the first comment after run
        code, comment = split_comment(line)
        if comment is not None:
            end = at + len(code.rstrip())
            break
        at += len(line) + 1
    if end < run.end():
        return None
    policies = " ".join(chunk[start:run.start()].split())
    replacement = chunk[run.start():end] + " " + policies
    try:
        lark_parser().parse(chunk[:start] + replacement + chunk[end:])
    except UnexpectedInput:
        return None
    return end, policies, replacement


def _syntax_error(e, chunk: str, line_off: int, pos_off: int, diags: Diagnostics) -> None:
    """A Lark ``UnexpectedInput`` as a TRG001/TRG002 diagnostic."""
    from lark.exceptions import UnexpectedCharacters, UnexpectedToken

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
    step = _TEST_STEP.match(chunk)
    if step is not None:  # a test's step in column 1: it ended the test block it belonged to
        diags.error("TRG001", f"'{step.group(1)}' outside a test block", span_of(0, step.end(1)),
                    'indent it under its test "NAME": line (the steps of a test are indented)')
        return
    flags = _bad_regex_flags(chunk, _error_offset(e, chunk))
    path = re.compile(r"path[ \t]*=[ \t]*$").search(chunk, 0, max(0, chunk.rfind("/", 0, flags[0] - 1))) \
        if flags is not None else None
    bare = re.compile(r"/[^\s\"#,()\[\]]*").match(chunk, path.end()) if path is not None else None
    if bare is not None:  # `path=/hooks/x`: read as the regex /hooks/ and the flag x
        diags.error("TRG001", "a path is a string", span_of(bare.start(), bare.end()), _write(_str_literal(bare.group())))
        return
    if flags is not None:
        start, end, letters = flags
        bad = "".join(sorted(set(letters) - set(REGEX_FLAGS)))
        diags.error("TRG301", f"unknown regex flag{'s' * (len(bad) > 1)} '{bad}'", span_of(start, end),
                    "the flags are i (ignore case), m (multi-line) and s (dot matches a newline)"
                    + ("; no g: a condition asks whether the regex matches at all" if "g" in bad else ""))
        return
    every_tz = _EVERY_TZ.search(chunk)
    if every_tz is not None and isinstance(e, UnexpectedToken) and e.token.start_pos == every_tz.start(2):
        zone = every_tz.group(2)
        diags.error("TRG001", "every has no time zone: it ticks at multiples of its period from the Unix epoch (UTC)",
                    span_of(every_tz.start(1), every_tz.end(1)),
                    f'for a time of day in a zone, use cron: on cron "0 0 * * *" tz {zone}')
        return
    early = _policy_before_run(e, chunk)
    if early is not None:
        start, word = early
        span = span_of(start, start + len(word))
        hint, fix = f"write on TRIGGER [FILTER] run ACTION [with ARGS] {word} ... (the policies come last)", None
        moved = _policy_moved(chunk, start)
        if moved is not None:  # the rule with its policies moved: the hint, and a fix (the editor's quick fix)
            end, policies, replacement = moved
            hint = f"the policies come last: write {' '.join(replacement.split())}"
            fix = Fix(f"Move `{policies}` after the run clause", (Edit(span_of(start, end), replacement),))
        diags.error("TRG001", f"'{word}' is a policy: it goes after run ACTION", span, hint, fix=fix)
        return
    foreign = _foreign_syntax(e, chunk)
    if foreign is not None:
        start, end, message, hint = foreign
        guess = re.fullmatch(r"did you mean '([^']+)'\?", hint)  # (the editor's quick fix, as a keyword's)
        span = span_of(start, end)  # (a "write X" hint, write_hint's, gets its fix from Diagnostics)
        diags.error("TRG001", message, span, hint, fix=guess and replace_fix(span, chunk[start:end], guess.group(1)))
        return
    fix = _keyword_fix(e, chunk)
    if fix is not None:
        start, end, keyword = fix
        span = span_of(start, end)
        # the editor's quick fix; check --fix leaves a file with a syntax error as it is
        diags.error("TRG001", f"unexpected '{chunk[start:end]}'", span, f"did you mean '{keyword}'?",
                    fix=replace_fix(span, chunk[start:end], keyword))
        return
    if isinstance(e, UnexpectedToken) and e.token.type != "$END":
        t = e.token
        span = Span(Pos(t.line + line_off, t.column, t.start_pos + pos_off),
                    Pos(t.end_line + line_off, t.end_column, t.end_pos + pos_off))
        msg = f"unexpected {_token_text(t)}"
        if str(t) in RESERVED and "NAME" in e.expected:
            msg = f"'{t}' is a reserved word and cannot be used here"
        hint = _describe_expected(set(e.expected))
        before = _WORD_BEFORE.search(chunk, 0, t.start_pos)  # (a label: `lbl` read as a name, then `:`)
        if _indented_declaration(chunk, t.start_pos) or \
                (before is not None and _indented_declaration(chunk, before.start(1))):
            hint = "an indented line continues the declaration above: start a new one in column 1"
        related = ()
        opened = _open_bracket(chunk, t.start_pos)
        closer = {"(": ")", "[": "]"}.get(chunk[opened]) if opened is not None else None
        if closer is not None and {")": "RPAR", "]": "RSQB"}[closer] in e.expected:  # `["a", "b" run x`
            # where it opened is a related span, not text: the parse cache moves spans only
            hint = f"the '{chunk[opened]}' is not closed: write '{closer}' before {_token_text(t)}"
            related = ((span_of(opened, opened + 1), f"the '{chunk[opened]}' opened here"),)
        diags.error("TRG001", msg, span, hint, related)
        return
    if isinstance(e, UnexpectedCharacters):
        line, col = e.line + line_off, e.column
        at = e.pos_in_stream
        ch = chunk[at] if at < len(chunk) else ""
        span = Span(Pos(line, col, at + pos_off), Pos(line, col + 1, at + pos_off + 1))
        if ch in ('"', "/"):  # a string or regex that runs to the end of its line: all of it
            stop = chunk.find("\n", at)
            stop = len(chunk) if stop == -1 else stop
            stop = at + len(chunk[at:stop].rstrip()) if chunk[at:stop].strip() else at + 1
            span = Span(span.start, Pos(line, col + stop - at, stop + pos_off))
            if ch == '"':
                diags.error("TRG001", "unterminated string", span,
                            'close it with " on the same line (write \\n for a line break in it)')
            elif chunk.startswith("//", at):
                diags.error("TRG001", "empty regex", Span(span.start, Pos(line, col + 2, at + 2 + pos_off)),
                            "write the pattern between the slashes: /pattern/flags")
            else:
                diags.error("TRG001", "unterminated regex", span,
                            'close it with / on the same line: /pattern/flags (a path is a string: "/hooks/x")')
            return
        hint = None
        if ch == "{" and at == 0:  # no declaration starts so: JSON, an event file given to check?
            hint = ("rules are declarations, not JSON; if this is an event, see which rules it matches "
                    "with: triggerc match RULES.trg EVENT.json (a .jsonl too)")
        elif ch == "<":
            hint = "a placeholder is <field>, and goes in 'with' arguments"
        elif ch.isalpha() and not ch.isascii():
            hint = "names are ASCII letters, digits, '_' and '-'; other text goes in a \"string\""
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
    opened = _open_bracket(chunk, len(chunk))
    empty = None if opened is not None else _empty_with(chunk) or \
        (_dangling_joiner(chunk) if "HAS" in expected else None)  # (wanting a condition, not `branch not`)
    if empty is not None:
        start, end, message, hint = empty
        diags.error("TRG002", message, span_of(start, end), hint)
    elif opened is not None:
        diags.error("TRG002", f"unclosed '{chunk[opened]}' at the end of this declaration", span,
                    f"close it with '{')' if chunk[opened] == '(' else ']'}' before the next declaration",
                    ((span_of(opened, opened + 1), f"the '{chunk[opened]}' opened here"),))
    elif "RUN" in expected:
        diags.error("TRG002", _NO_RUN, span, "end the rule with: run ACTION [with ARGS]")
    else:
        diags.error("TRG002", "unexpected end of declaration", span, _describe_expected(expected))
