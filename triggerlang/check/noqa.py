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
"""

from __future__ import annotations

import re
from typing import Iterable, Mapping

from ..diagnostics import Diagnostic
from ..syntax.parser import split_comment, split_declarations

_NOQA = re.compile(r"#\s*(?:triggerc:\s*)?noqa(?::\s*(?P<codes>[A-Za-z0-9_]+(?:[\s,]+[A-Za-z0-9_]+)*))?", re.IGNORECASE)
_FILE_NOQA = re.compile(r"#\s*triggerc:\s*noqa(?::\s*(?P<codes>[A-Za-z0-9_]+(?:[\s,]+[A-Za-z0-9_]+)*))?\s*$",
                        re.IGNORECASE)
ALL = frozenset({"*"})


def _codes(text: str | None) -> frozenset[str]:
    return ALL if not text else frozenset(c.upper() for c in re.split(r"[\s,]+", text.strip()) if c)


def noqa_comments(text: str) -> tuple[list[tuple[int, int, frozenset[str]]], frozenset[str]]:
    """``([(first_line, last_line, codes)], file_codes)``: for each declaration with a
    ``noqa`` comment, the lines it covers (1-based, inclusive) and the codes named
    (:data:`ALL` where none is). A declaration's comments are those at the end of its lines
    and those on the lines of their own just above it (where ``fmt`` puts them when it lays a
    rule out over several lines). ``#`` inside strings and regexes is not a comment."""
    found: list[tuple[int, int, frozenset[str]]] = []
    whole: set[str] = set()
    if "noqa" not in text.lower():
        return found, frozenset()
    lines = text.split("\n")
    for first, last, _ in split_declarations(text):
        top = first
        while top > 0 and lines[top - 1].lstrip().startswith("#"):
            top -= 1
        codes: set[str] = set()
        for i in range(top, last + 1):
            if "noqa" not in lines[i].lower():
                continue
            code, comment = split_comment(lines[i])
            m = _NOQA.search(comment or "")
            if m and not (not code.strip() and _FILE_NOQA.match(comment or "")):  # (not the file's)
                codes |= _codes(m.group("codes"))
        if codes:
            found.append((first + 1, last + 1, frozenset(codes)))
    for line in lines:
        if "noqa" in line.lower():
            code, comment = split_comment(line)
            m = _FILE_NOQA.match(comment or "")
            if m and not code.strip():
                whole |= _codes(m.group("codes"))
    return found, frozenset(whole)


def _named(code: str, codes: frozenset[str]) -> bool:
    return "*" in codes or code in codes


def suppress(diagnostics: list[Diagnostic], texts: Mapping[str, str]) -> list[Diagnostic]:
    """``diagnostics`` without the warnings their file's ``noqa`` comments leave out
    (``texts``: each file's text, by the name its diagnostics give)."""
    if all(d.is_error for d in diagnostics):
        return diagnostics
    found = {f: noqa_comments(t) for f, t in texts.items() if "noqa" in t.lower()}
    if not found:
        return diagnostics
    out = []
    for d in diagnostics:
        if not d.is_error and d.file in found:
            decls, whole = found[d.file]
            line = d.span.start.line
            if _named(d.code, whole) or any(a <= line <= b and _named(d.code, codes) for a, b, codes in decls):
                continue
        out.append(d)
    return out


def parse_ignore(values: Iterable[str], codes: Mapping[str, str], severity_of) -> tuple[frozenset[str], str | None]:
    """``(codes, None)`` for ``--ignore`` values (``TRG209``, ``TRG2``, comma-separated or
    repeated), or ``(…, problem)``: a value that names no code, or names an error code only
    (``severity_of(code)`` is ``"error"`` when every case of a code is an error)."""
    out: set[str] = set()
    for value in values:
        for item in (v.strip().upper() for v in value.split(",")):
            if not item:
                continue
            hit = [c for c in codes if c.startswith(item)]
            if not hit:
                return frozenset(out), f"--ignore {item}: no diagnostic code is or begins with {item}"
            if item in codes and severity_of(item) == "error":
                return frozenset(out), (f"--ignore {item}: {item} is an error, and errors cannot be ignored "
                                        f"(a rules file with one does not run)")
            out.update(hit)
    return frozenset(out), None
