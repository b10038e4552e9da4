"""Suppressing warnings: ``# noqa`` comments and ``check --ignore`` (ruff's and flake8's way).

- ``# noqa`` leaves out every warning of the declaration (a rule, an action, a source...)
  it is written in: at the end of any of its lines, or on a line of its own just above it;
  ``# noqa: TRG209`` (or ``TRG209, TRG307``) only those. A declaration is the unit, not a
  line as in ruff, because ``fmt`` lays a long rule out over several lines and moves its
  comments above it: a comment that worked before ``fmt`` works after it.
- ``# triggerc: noqa: TRG209`` on a line of its own leaves those warnings out of the whole
  file (``# triggerc: noqa`` alone: every warning), as ruff's ``# ruff: noqa: E501``.
- ``triggerc check --ignore TRG2,TRG306``: a code, or a prefix standing for every code it
  begins (``TRG2`` is TRG201-TRG210), left out of every file.

Errors are never left out, by either: a rules file with an error does not run, and a
diagnostic that hid one would only move the failure to ``serve``'s start. Naming an error
code in ``--ignore`` is a usage error; in a ``# noqa`` comment it does nothing.

A declaration's ``# noqa`` that leaves out no warning is one itself, TRG110 (ruff's RUF100):
a code in it that no warning of the declaration has, or a bare ``# noqa`` on a declaration
without warnings. Its safe fix removes the comment, or only the unused codes from its list.
TRG110 itself is left out by ``--ignore TRG110``, a file-wide comment naming it, or a
declaration's ``# noqa: TRG110`` (not by a bare ``# noqa``, which it is about).
It is reported only for a file without errors (an error can stop the checks whose warnings
the comment is for, and the fix would remove a comment still needed) and only in the file
checked (an included file's comments are its own check's business); a file-wide
``# triggerc: noqa`` is not checked.
"""

from __future__ import annotations

import re
from typing import Iterable, Mapping, NamedTuple

from ..diagnostics import WARNING, Diagnostic, Edit, Fix, Pos, Span
from ..syntax.parser import split_comment, split_declarations

_NOQA = re.compile(r"#\s*(?:triggerc:\s*)?noqa(?::\s*(?P<codes>[A-Za-z0-9_]+(?:[\s,]+[A-Za-z0-9_]+)*))?", re.IGNORECASE)
_FILE_NOQA = re.compile(r"#\s*triggerc:\s*noqa(?::\s*(?P<codes>[A-Za-z0-9_]+(?:[\s,]+[A-Za-z0-9_]+)*))?\s*$",
                        re.IGNORECASE)
ALL = frozenset({"*"})


def _codes(text: str | None) -> frozenset[str]:
    return ALL if not text else frozenset(c.upper() for c in re.split(r"[\s,]+", text.strip()) if c)


class Directive(NamedTuple):
    """One ``# noqa`` comment of a declaration: the declaration's lines (``first``, ``last``:
    1-based, inclusive), the comment's ``line``, where in it the ``noqa`` and its codes are
    written (``start``, ``end``: 0-based character indexes; ``codes_at``: the codes' own
    ``(start, end)``, None for a bare ``# noqa``), the codes named (:data:`ALL` for a bare
    one), ``code``: the declaration's text before the comment on that line, ``after``:
    whether the comment goes on after the codes."""

    first: int
    last: int
    line: int
    start: int
    end: int
    codes_at: tuple[int, int] | None
    codes: frozenset[str]
    code: str
    after: bool


def directives(text: str) -> list[Directive]:
    """Every declaration's ``noqa`` comments. A declaration's comments are those at the end
    of its lines and those on the lines of their own just above it (where ``fmt`` puts them
    when it lays a rule out over several lines). ``#`` inside strings and regexes is not a
    comment."""
    found: list[Directive] = []
    if "noqa" not in text.lower():
        return found
    lines = text.split("\n")
    for first, last, _ in split_declarations(text):
        top = first
        while top > 0 and lines[top - 1].lstrip().startswith("#"):
            top -= 1
        for i in range(top, last + 1):
            if "noqa" not in lines[i].lower():
                continue
            code, comment = split_comment(lines[i])
            m = _NOQA.search(comment or "")
            if m and not (not code.strip() and _FILE_NOQA.match(comment or "")):  # (not the file's)
                at = len(code)
                found.append(Directive(first + 1, last + 1, i + 1, at + m.start(), at + m.end(),
                                       (at + m.start("codes"), at + m.end("codes")) if m.group("codes") else None,
                                       _codes(m.group("codes")), code, bool(comment[m.end():].strip())))
    return found


def noqa_comments(text: str, found: list[Directive] | None = None
                  ) -> tuple[list[tuple[int, int, frozenset[str]]], frozenset[str]]:
    """``([(first_line, last_line, codes)], file_codes)``: for each declaration with a
    ``noqa`` comment (:func:`directives`; ``found``: what it gave for ``text`` already), the
    lines it covers (1-based, inclusive) and the codes named (:data:`ALL` where none is)."""
    by_decl: dict[tuple[int, int], set[str]] = {}
    for d in directives(text) if found is None else found:
        by_decl.setdefault((d.first, d.last), set()).update(d.codes)
    found = [(a, b, frozenset(codes)) for (a, b), codes in by_decl.items()]
    whole: set[str] = set()
    if "noqa" not in text.lower():
        return found, frozenset()
    lines = text.split("\n")
    for line in lines:
        if "noqa" in line.lower():
            code, comment = split_comment(line)
            m = _FILE_NOQA.match(comment or "")
            if m and not code.strip():
                whole |= _codes(m.group("codes"))
    return found, frozenset(whole)


def _named(code: str, codes: frozenset[str]) -> bool:
    return "*" in codes or code in codes


UNUSED = "TRG110"


def unused(diagnostics: list[Diagnostic], file: str, text: str,
           found: list[Directive] | None = None) -> list[Diagnostic]:
    """TRG110 for each ``# noqa`` of ``file`` (its ``text``; ``found``: its
    :func:`directives`, if read already) that leaves out none of ``diagnostics`` (before
    :func:`suppress`), or names codes that none has: with a fix that removes the comment,
    or those codes from it."""
    if "noqa" not in text.lower() or any(d.is_error and d.file == file for d in diagnostics):
        return []
    warned = [(d.span.start.line, d.code) for d in diagnostics if not d.is_error and d.file == file]
    bom = len(text) - len(text.lstrip("\ufeff"))  # (columns count from after the marks)
    out = []
    for n in directives(text) if found is None else found:
        here = {code for line, code in warned if n.first <= line <= n.last}
        if "*" in n.codes:
            left = [] if here else ["*"]
        else:
            left = sorted(c for c in n.codes if c not in here and c != UNUSED)
        if not left:
            continue
        shift = bom if n.line == 1 else 0

        def at(line: int, index: int) -> Pos:
            return Pos(line, index + 1 - shift)

        span = Span(at(n.line, n.start), at(n.line, n.end))
        kept = [c for c in sorted(n.codes) if c not in left]
        if kept:
            assert n.codes_at is not None
            fix = Fix(f"Remove {', '.join(left)} from the noqa comment",
                      (Edit(Span(at(n.line, n.codes_at[0]), at(n.line, n.codes_at[1])), ", ".join(kept)),))
        elif n.after:  # the comment says more than noqa: it stays, for its author to edit
            fix = None
        elif not n.code.strip():  # a line of its own: the line goes
            fix = Fix("Remove the unused noqa comment", (Edit(Span(Pos(n.line, 1), Pos(n.line + 1, 1)), ""),))
        else:  # at the end of a line: from the end of its code on
            fix = Fix("Remove the unused noqa comment",
                      (Edit(Span(at(n.line, len(n.code.rstrip())), at(n.line, n.end)), ""),))
        message = ("'# noqa' leaves out no warning here" if left == ["*"] else
                   f"{', '.join(left)} in '# noqa' leave{'s' * (len(left) == 1)} out no warning here")
        out.append(Diagnostic(WARNING, UNUSED, message, span,
                              "remove it" if fix is None or not kept else f"keep only {', '.join(kept)}",
                              file, (), fix))
    return out


def suppress(diagnostics: list[Diagnostic], texts: Mapping[str, str], checked: str | None = None) -> list[Diagnostic]:
    """``diagnostics`` without the warnings their file's ``noqa`` comments leave out
    (``texts``: each file's text, by the name its diagnostics give); with ``checked`` (the
    file checked, its warnings complete), and the TRG110 of its unused ``noqa`` comments."""
    parsed: dict[str, list[Directive]] = {}  # each file's comments, read once for both uses

    def directives_of(f: str) -> list[Directive]:
        if f not in parsed:
            parsed[f] = directives(texts[f])
        return parsed[f]

    if checked is not None and checked in texts:
        extra = unused(diagnostics, checked, texts[checked], directives_of(checked))
        if extra:
            diagnostics = sorted([*diagnostics, *extra], key=Diagnostic.sort_key)
    if all(d.is_error for d in diagnostics):
        return diagnostics
    found = {f: noqa_comments(t, directives_of(f)) for f, t in texts.items() if "noqa" in t.lower()}
    if not found:
        return diagnostics
    out = []
    for d in diagnostics:
        if not d.is_error and d.file in found:
            decls, whole = found[d.file]
            line = d.span.start.line
            if _named(d.code, whole) or any(a <= line <= b and _named(d.code, codes) for a, b, codes in decls
                                            if d.code != UNUSED or UNUSED in codes):  # (a bare noqa: not itself)
                continue
        out.append(d)
    return out


def parse_ignore(values: Iterable[str], codes: Mapping[str, str], severity_of,
                 label: str = "--ignore") -> tuple[frozenset[str], str | None]:
    """``(codes, None)`` for ``--ignore`` values (``TRG209``, ``TRG2``, comma-separated or
    repeated), or ``(…, problem)``: a value that names no code, or names an error code only
    (``severity_of(code)`` is ``"error"`` when every case of a code is an error). ``label``
    names the setting in the problem (a config file's ``ignore``)."""
    out: set[str] = set()
    for value in values:
        for item in (v.strip().upper() for v in value.split(",")):
            if not item:
                continue
            hit = [c for c in codes if c.startswith(item)]
            if not hit:
                return frozenset(out), f"{label} {item}: no diagnostic code is or begins with {item}"
            if item in codes and severity_of(item) == "error":
                return frozenset(out), (f"{label} {item}: {item} is an error, and errors cannot be ignored "
                                        f"(a rules file with one does not run)")
            out.update(hit)
    return frozenset(out), None
