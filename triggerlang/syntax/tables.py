"""The grammar compiled by Lark into plain tables, shipped beside it.

Lark turns ``grammar/triggerlang.lark`` into an LALR(1) parse table and a contextual lexer
(one scanner per parser state, over the terminals that state accepts). Building them takes
Lark 0.13 s and importing Lark 0.03 s more, every time a process starts: a quarter of
``triggerc check`` on a small file. This module writes what Lark built as JSON data,
``grammar/triggerlang.tables.json``, which ships in the wheel; the parser
(:mod:`triggerlang.syntax.parser`) runs those tables with a small driver of its own, and
imports Lark only when a declaration does not parse, to report the error exactly as Lark
sees it.

The data is Lark's own decisions, read off a Lark parser (not re-derived):

- ``states``: per LALR state, ``{symbol: action}``; an action ``>= 0`` shifts to (or, for a
  rule's name, goes to) that state, ``-(r + 1)`` reduces by rule ``r``;
- ``rules``: per rule, its name (what it reduces to), length, the builder method Lark would
  call (its alias, else its name), whether a single child is passed through (``?rule``), and
  Lark's child filter for it (which children are kept, which ``_rule`` children are spliced
  in, where ``None`` stands for an absent ``[optional]``), as ``parse_tree_builder`` makes
  it;
- ``terminals``: per terminal, its text (a keyword or a sign: ``str``) or its pattern
  (``re``), and ``first``: every character it can start with (None: it could be any);
- ``lexers``: per distinct scanner of the contextual lexer, the terminals it tries, in
  Lark's order (the order of Lark's combined pattern), the keywords a name-like terminal
  turns into when its whole text is one (Lark's "unless" callbacks), and the terminals to
  skip (whitespace, comments) or that may hold a newline; ``state_lexer`` maps each state
  to its scanner. The driver tries, at each position, only the terminals that can start
  with the character there, in that order, and takes the first that matches: what Lark's
  combined pattern does (its alternatives are tried in order), without compiling 124 large
  patterns (a few milliseconds of every ``triggerc check``): only the dozen terminals with
  a pattern are compiled, each small.

``grammar`` holds the grammar text the tables were built from: when it is not the grammar
beside them (someone edited the grammar and did not regenerate), the parser builds the
tables in memory with Lark at start-up instead, so a stale file costs time, never a wrong
parse; ``tests/test_parser.py`` fails until it is regenerated:

    python -m triggerlang.syntax.tables        # rewrites grammar/triggerlang.tables.json
"""

from __future__ import annotations

import json
import os
import sys
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pathlib import Path

FORMAT = 2
TABLES_NAME = "triggerlang.tables.json"
GRAMMAR_NAME = "triggerlang.lark"
LARK_OPTIONS: dict[str, Any] = {"parser": "lalr", "lexer": "contextual", "propagate_positions": True,
                                "maybe_placeholders": True}
"""How the grammar is compiled: the slow path's Lark parser and the tables are the same parser."""


class TablesError(Exception):
    """A Lark parser whose tables cannot be written as plain data (an option this format
    does not carry: lexer callbacks, regex flags, bytes)."""


def grammar_dir() -> Path:
    """The folder of the grammar and its tables (``grammar/``, the package ``triggerlang.grammar``)."""
    from pathlib import Path

    return Path(_grammar_folder())


def _grammar_folder() -> str:
    """``triggerlang.grammar`` when installed (the wheel maps ``grammar/`` into the package);
    from a source tree on ``sys.path`` (``python -m pytest`` in a checkout beside a
    non-editable install) that package does not exist, and the folder is ``../grammar``."""
    try:
        from .. import grammar
    except ImportError:
        here = os.path.dirname(os.path.dirname(os.path.realpath(__file__)))
        return os.path.join(os.path.dirname(here), "grammar")
    return os.path.dirname(os.path.realpath(grammar.__file__))


def read_grammar() -> str:
    try:
        with open(os.path.join(_grammar_folder(), GRAMMAR_NAME), encoding="utf-8") as fh:
            return fh.read()
    except OSError:  # pragma: no cover - a zipped install: go through importlib.resources
        from importlib import resources

        return resources.files("triggerlang.grammar").joinpath(GRAMMAR_NAME).read_text("utf-8")


def load_shipped(grammar: str) -> dict | None:
    """The shipped tables, if they were built from ``grammar`` (else None)."""
    try:
        with open(os.path.join(_grammar_folder(), TABLES_NAME), "rb") as fh:
            raw = fh.read()
    except OSError:
        return None
    try:
        data = json.loads(raw)
    except ValueError:
        return None
    if not isinstance(data, dict) or data.get("format") != FORMAT or data.get("grammar") != grammar:
        return None
    return data


def build(lark_parser, grammar: str) -> dict:
    """The tables of a Lark parser made with :data:`LARK_OPTIONS` from ``grammar``."""
    import lark
    from lark.lexer import ContextualLexer, UnlessCallback
    from lark.parse_tree_builder import maybe_create_child_filter
    from lark.parsers.lalr_analysis import Shift

    frontend = lark_parser.parser
    table = frontend.parser.parser.parse_table
    lexer = frontend.lexer
    if not isinstance(lexer, ContextualLexer):
        raise TablesError("the tables describe a contextual lexer")
    rules = list(lark_parser.rules)
    rule_index = {r: i for i, r in enumerate(rules)}
    if len(rule_index) != len(rules):  # pragma: no cover - Lark refuses duplicate rules
        raise TablesError("duplicate rules")

    # Lark numbers its states in an order that changes from run to run (set iteration):
    # number them breadth first from the start state, symbols in sorted order, so the same
    # grammar always gives the same file
    start, end = table.start_states["start"], table.end_states["start"]
    number = {start: 0}
    order = [start]
    for old in order:
        for sym in sorted(table.states[old]):
            action, arg = table.states[old][sym]
            if action is Shift and arg not in number:
                number[arg] = len(order)
                order.append(arg)
    if len(order) != len(table.states):  # pragma: no cover - every state is reachable
        raise TablesError("unreachable parse states")
    states: list[dict[str, int]] = []
    for old in order:
        row = {}
        for sym in sorted(table.states[old]):
            action, arg = table.states[old][sym]
            row[sym] = number[arg] if action is Shift else -(rule_index[arg] + 1)
        states.append(row)

    nullable = _nullable(rules)
    rule_rows = []
    for r in rules:
        opts = r.options
        made = maybe_create_child_filter(r.expansion, opts.keep_all_tokens, False,
                                         opts.empty_indices if lark_parser.options.maybe_placeholders else None)
        if made is None:
            keep, trailing = None, 0
        elif len(made.args) == 2:      # ChildFilterLALR(to_include, nones_to_add)
            keep, trailing = [list(x) for x in made.args[0]], made.args[1]
        else:                          # ChildFilterLALR_NoPlaceholders(to_include)
            keep, trailing = [[i, x, 0] for i, x in made.args[0]], 0
        rule_rows.append({
            "name": r.origin.name,
            "size": len(r.expansion),
            "handler": r.alias or opts.template_source or r.origin.name,
            "pass_one": bool(opts.expand1 and not r.alias),
            "keep": keep,
            "trailing": trailing,
            "nullable": any(not s.is_term and s.name in nullable for s in r.expansion),
        })

    lexers: list[dict] = []
    seen: dict[int, int] = {}
    state_lexer = []
    terminals: dict[str, dict] = {}
    for old in order:
        basic = lexer.lexers[old]
        if id(basic) not in seen:
            seen[id(basic)] = len(lexers)
            lexers.append(_lexer_row(basic, UnlessCallback, terminals))
        state_lexer.append(seen[id(basic)])

    return {
        "format": FORMAT,
        "about": "generated from triggerlang.lark by `python -m triggerlang.syntax.tables`: do not edit",
        "lark": lark.__version__,
        "start": number[start],
        "end": number[end],
        "states": states,
        "rules": rule_rows,
        "terminals": dict(sorted(terminals.items())),
        "lexers": lexers,
        "state_lexer": state_lexer,
        "grammar": grammar,
    }


def _lexer_row(basic, unless_class, terminals: dict[str, dict]) -> dict:
    scanner = basic.scanner  # (Lark builds a scanner on first use)
    if basic.g_regex_flags or basic.use_bytes:
        raise TablesError("regex flags and bytes input are not carried by the tables")
    unless: dict[str, dict[str, str]] = {}
    for typ, cb in sorted(basic.callback.items()):
        if not isinstance(cb, unless_class):
            raise TablesError(f"lexer callback on {typ} is not a keyword check")
        words = {}
        for t in cb.scanner.terminals:
            if t.pattern.type != "str" or t.pattern.flags:
                raise TablesError(f"keyword {t.name} is not a plain string")
            words[t.pattern.value] = t.name
        unless[typ] = dict(sorted(words.items()))
    names = []
    for t in scanner.terminals:  # in the order of Lark's combined pattern
        names.append(t.name)
        if t.name not in terminals:
            terminals[t.name] = _terminal_row(t)
    if "|".join(m.pattern for m in scanner._mres) != "|".join(f"(?P<{t.name}>{t.pattern.to_regexp()})"
                                                             for t in scanner.terminals):
        raise TablesError("Lark's scanner is not the terminals in order")  # pragma: no cover
    return {"order": names, "unless": unless, "ignore": sorted(basic.ignore_types),
            "newline": sorted(basic.newline_types)}


def _terminal_row(t) -> dict:
    if t.pattern.type == "str" and not t.pattern.flags:
        return {"str": t.pattern.value, "first": t.pattern.value[:1]}
    regexp = t.pattern.to_regexp()
    return {"re": regexp, "first": first_chars(regexp)}


def first_chars(regexp: str) -> str | None:
    """Every character a match of ``regexp`` can start with, sorted; None when that is not
    a small known set (a negated class, ``.``, ``\\w``, a flag...). Conservative: a
    character may be listed that no match starts with, never the reverse."""
    try:
        from re import _constants as C, _parser as P
    except ImportError:  # pragma: no cover - another Python's insides
        return None

    def seq(items) -> tuple[set | None, bool]:
        """(first characters, whether the sequence can match nothing)"""
        out: set = set()
        for op, av in items:
            f, empty = one(op, av)
            if f is None:
                return None, False
            out |= f
            if not empty:
                return out, False
        return out, True

    def one(op, av) -> tuple[set | None, bool]:
        if op is C.LITERAL:
            return {chr(av)}, False
        if op is C.IN:
            chars: set = set()
            for iop, iav in av:
                if iop is C.LITERAL:
                    chars.add(chr(iav))
                elif iop is C.RANGE and iav[1] - iav[0] < 256:
                    chars.update(chr(c) for c in range(iav[0], iav[1] + 1))
                else:
                    return None, False
            return chars, False
        if op is C.SUBPATTERN:
            _, add_flags, del_flags, sub = av
            if add_flags or del_flags:
                return None, False
            return seq(sub)
        if op is C.BRANCH:
            out: set = set()
            empty = False
            for branch in av[1]:
                f, e = seq(branch)
                if f is None:
                    return None, False
                out |= f
                empty = empty or e
            return out, empty
        if op in (C.MAX_REPEAT, C.MIN_REPEAT, getattr(C, "POSSESSIVE_REPEAT", C.MAX_REPEAT)):
            lo, _, sub = av
            f, e = seq(sub)
            return f, (lo == 0 or e) if f is not None else False
        if op in (C.ASSERT, C.ASSERT_NOT, C.AT):  # zero width: says nothing of the first character
            return set(), True
        return None, False

    try:
        parsed = P.parse(regexp)
    except Exception:  # pragma: no cover
        return None
    if parsed.state.flags & ~(C.SRE_FLAG_UNICODE):
        return None
    first, empty = seq(list(parsed))
    if first is None or empty:
        return None
    return "".join(sorted(first))


def _nullable(rules) -> set[str]:
    """Names of the rules that can match no text at all."""
    out: set[str] = set()
    changed = True
    while changed:
        changed = False
        for r in rules:
            name = r.origin.name
            if name not in out and all(not s.is_term and s.name in out for s in r.expansion):
                out.add(name)
                changed = True
    return out


def make_lark(grammar: str):
    from lark import Lark

    return Lark(grammar, **LARK_OPTIONS)


def dumps(tables: dict) -> str:
    """The file's text: one state, rule or scanner a line (readable diffs)."""
    head = {k: v for k, v in tables.items() if k not in ("states", "rules", "terminals", "lexers", "state_lexer",
                                                         "grammar")}
    parts = ["{"]
    for k, v in head.items():
        parts.append(f"{json.dumps(k)}: {json.dumps(v, ensure_ascii=False)},")
    parts.append('"terminals": {')
    items = list(tables["terminals"].items())
    parts.extend(f"{json.dumps(k)}: {json.dumps(v, ensure_ascii=False)}" + ("," if i < len(items) - 1 else "")
                 for i, (k, v) in enumerate(items))
    parts.append("},")
    for k in ("states", "rules", "lexers"):
        rows = tables[k]
        parts.append(f"{json.dumps(k)}: [")
        parts.extend(json.dumps(r, ensure_ascii=False, separators=(",", ":")) + ("," if i < len(rows) - 1 else "")
                     for i, r in enumerate(rows))
        parts.append("],")
    parts.append(f"\"state_lexer\": {json.dumps(tables['state_lexer'], separators=(',', ':'))},")
    parts.append(f"\"grammar\": {json.dumps(tables['grammar'], ensure_ascii=False)}")
    parts.append("}")
    return "\n".join(parts) + "\n"


def main(argv: list[str] | None = None) -> int:
    """``python -m triggerlang.syntax.tables [--check]``: rewrite the shipped tables (or only
    check that they were made from the grammar as it is)."""
    argv = sys.argv[1:] if argv is None else argv
    grammar = read_grammar()
    target = grammar_dir() / TABLES_NAME
    if "--check" in argv:
        if load_shipped(grammar) is None:
            print(f"{target} was not made from the grammar as it is: run python -m triggerlang.syntax.tables",
                  file=sys.stderr)
            return 1
        return 0
    target.write_text(dumps(build(make_lark(grammar), grammar)), encoding="utf-8")
    print(f"wrote {target}")
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
