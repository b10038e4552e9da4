"""Applying the fixes diagnostics carry (``triggerc check --fix``, the editor's "fix all").

A :class:`~triggerlang.diagnostics.Fix` is made by the checker where it makes the
diagnostic, from the data its hint is made from. Here they are applied to a file's text:

- only the fixes of the file itself (edits in an included file are left to a check of that
  file: ``--fix`` writes only the files it is given);
- none in a file with a syntax error (TRG001-TRG003): what did not parse may be what a fix
  would touch, and the spans after the recovery point are the parser's best guess;
- in one pass, never two overlapping edits: a fix whose edits overlap one taken before is
  left for the next pass, made on the re-checked text (ruff's way); passes stop when
  nothing changes, or after :data:`MAX_PASSES`.

Each edit replaces exactly its span, so a file laid out by ``fmt`` keeps its layout.
"""

from __future__ import annotations

from typing import Callable, Iterable

from ..diagnostics import Diagnostic, Fix

SYNTAX_CODES = frozenset({"TRG001", "TRG002", "TRG003"})
MAX_PASSES = 10
"""At most this many rounds of fix, re-check (ruff stops at 100; a fix here never makes
another that needs more than a few)."""


def has_syntax_errors(diags: Iterable[Diagnostic], file: str) -> bool:
    return any(d.code in SYNTAX_CODES and d.file == file for d in diags)


def fixes_of(diags: Iterable[Diagnostic], file: str, unsafe: bool = False) -> list[Fix]:
    """The fixes ``--fix`` applies to ``file``: its own diagnostics', safe ones (and the
    unsafe ones with ``unsafe``), whose edits are all in ``file``; none if it has a
    syntax error."""
    diags = list(diags)
    if has_syntax_errors(diags, file):
        return []
    return [d.fix for d in diags if d.fix is not None and d.file == file and (unsafe or d.fix.safe)
            and all(e.span.file is None for e in d.fix.edits)]


def _line_starts(text: str, base: int) -> list[int]:
    """Where each line starts, as the parser counts lines (``\\n``, ``\\r\\n``, ``\\r``)."""
    starts = [base]
    i, n = base, len(text)
    while i < n:
        c = text[i]
        if c == "\n" or c == "\r":
            if c == "\r" and i + 1 < n and text[i + 1] == "\n":
                i += 1
            starts.append(i + 1)
        i += 1
    return starts


def apply_fixes(text: str, fixes: Iterable[Fix]) -> tuple[str, int]:
    """``(text with the fixes applied, how many were)``: in the order of their first
    edit, each fix whole or not at all, leaving out one that overlaps an edit taken before
    (or that edits the same point: two insertions there would have no order)."""
    base = len(text) - len(text.lstrip("\ufeff"))  # (not text: columns count from after the marks)
    starts = _line_starts(text, base)

    def offset(line: int, column: int) -> int:
        if line > len(starts):
            return len(text)
        start = starts[line - 1]
        end = starts[line] if line < len(starts) else len(text)
        return min(start + column - 1, end)

    taken: list[tuple[int, int, str]] = []
    count = 0
    located = []
    for fix in fixes:
        edits = [(offset(e.span.start.line, e.span.start.column), offset(e.span.end.line, e.span.end.column), e.text)
                 for e in fix.edits]
        if edits:
            located.append((min(a for a, _, _ in edits), edits))
    for _, edits in sorted(located, key=lambda x: x[0]):
        if any(a < b2 and a2 < b or a == a2 for a, b, _ in edits for a2, b2, _ in taken):
            continue
        taken.extend(edits)
        count += 1
    for a, b, new in sorted(taken, reverse=True):
        text = text[:a] + new + text[b:]
    return text, count


def fix_until_stable(text: str, check: Callable[[str], list[Diagnostic]], file: str,
                     unsafe: bool = False) -> tuple[str, int, list[Diagnostic]]:
    """``(fixed text, fixes applied, its diagnostics)``: fix, re-check, again, until a pass
    changes nothing (``check``: the diagnostics of a text of ``file``)."""
    fixed = 0
    diags = check(text)
    for _ in range(MAX_PASSES):
        new, n = apply_fixes(text, fixes_of(diags, file, unsafe))
        if n == 0 or new == text:
            break
        text, fixed = new, fixed + n
        diags = check(text)
    return text, fixed, diags
