"""Glob and regex patterns, the one definition used by the checker, matcher and sources.

Globs (SPEC §3): ``*`` matches within one path segment, ``**`` across segments (``a/**``
is everything under ``a``; ``**/x`` is ``x`` in any folder, the top one included), ``?``
one character other than ``/``, ``[abc]`` / ``[a-z]`` / ``[!abc]`` a character class.
A glob matches the whole string. Regexes are Python ``re`` searches (not anchored), with
flags ``i``, ``m``, ``s``.

This is the one glob translator: filters (``path ~ "src/**"``), watch roots, ``source
http path="/hooks/*"`` declarations and the HTTP source's routes all use it. Decisions:

* A character class matches one character **within a segment**, negated or not: like
  ``?``, ``[!a]`` never matches ``/`` (so ``/hooks/[!x]`` does not reach ``/hooks//``,
  and ``src/[!t]*`` stays in ``src``); ``[^abc]`` is the same as ``[!abc]``.
* An unclosed ``[`` is an error (:class:`PatternError`; TRG302 from the checker, a
  configuration error for a hand-written manifest route), not a literal ``[``: a typo
  should not silently become a pattern that matches nothing. Write ``\\[`` (or ``[[]``)
  for a literal bracket.
"""

from __future__ import annotations

import re
import warnings
from functools import lru_cache
from typing import Any

from ..events import MISSING, get_path


class PatternError(ValueError):
    """An invalid glob or regex: ``column`` is the 0-based offset of the problem, if known."""

    def __init__(self, message: str, column: int | None = None):
        super().__init__(message)
        self.column = column


def glob_to_regex(glob: str) -> str:
    """Translate a glob to an anchored regex source; raises PatternError if malformed."""
    out, i, n = ["(?s:"], 0, len(glob)
    while i < n:
        c = glob[i]
        if c == "*":
            if i + 1 < n and glob[i + 1] == "*":
                # '**/' -> any number of whole segments; trailing '**' -> anything
                if i + 2 < n and glob[i + 2] == "/":
                    out.append("(?:.*/)?")
                    i += 3
                else:
                    out.append(".*")
                    i += 2
                continue
            out.append("[^/]*")
        elif c == "?":
            out.append("[^/]")
        elif c == "[":
            j = i + 1
            if j < n and glob[j] in "!^":
                j += 1
            if j < n and glob[j] == "]":
                j += 1
            while j < n and glob[j] != "]":
                j += 1
            if j >= n:
                raise PatternError("unclosed '[' in glob", i)
            body = glob[i + 1:j]
            neg = body[:1] in ("!", "^")
            if neg:
                body = body[1:]
            body = body.replace("\\", "\\\\")
            out.append(f"[{'^/' if neg else ''}{body}]")
            i = j
        elif c == "\\" and i + 1 < n:
            out.append(re.escape(glob[i + 1]))
            i += 1
        else:
            out.append(re.escape(c))
        i += 1
    out.append(")\\Z")
    return "".join(out)


def _quiet_compile(source: str, flags: int = 0) -> re.Pattern:
    """``re.compile`` without ``re``'s FutureWarnings (``[[`` or ``&&`` in a class): user
    patterns must give diagnostics, never Python warnings on the CLI's stderr."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        return re.compile(source, flags)


@lru_cache(maxsize=65536)
def compile_glob(glob: str) -> re.Pattern:
    try:
        return _quiet_compile(glob_to_regex(glob))
    except re.error as e:  # a class like [z-a]
        raise PatternError(f"invalid glob: {e.msg}", None) from None


_FLAGS = {"i": re.IGNORECASE, "m": re.MULTILINE, "s": re.DOTALL}


@lru_cache(maxsize=65536)
def compile_regex(pattern: str, flags: str = "") -> re.Pattern:
    f = 0
    for ch in flags:
        if ch not in _FLAGS:
            raise PatternError(f"unknown regex flag '{ch}' (use i, m, s)", None)
        f |= _FLAGS[ch]
    try:
        return _quiet_compile(pattern, f)
    except re.error as e:
        raise PatternError(f"invalid regex: {e.msg}", e.pos) from None


def captured(value: Any, pattern: str, flags: str = "") -> Any:
    """``<field ~ /re/>``'s value: what ``re`` finds in the string ``value`` (a search), its
    first group when it has groups; for a list, that of each string element that matches.
    ``MISSING`` when nothing matches (or the group took no part), as for a missing field."""
    rx = compile_regex(pattern, flags)
    if isinstance(value, list):
        found = [c for c in (_capture(rx, x) for x in value) if c is not MISSING]
        return found if found else MISSING
    return _capture(rx, value)


def _capture(rx: re.Pattern, value: Any) -> Any:
    if not isinstance(value, str):
        return MISSING
    m = rx.search(value)
    if m is None:
        return MISSING
    found = m.group(1) if rx.groups else m.group(0)
    return MISSING if found is None else found


def bound_value(data: dict, binding: dict) -> Any:
    """An input taken from an event: the field of ``binding`` (``{"field": "a.b"}``) read in
    ``data``, through its ``regex`` when it has one; ``MISSING`` when there is none."""
    v = get_path(data, binding["field"].split("."))
    if "regex" in binding and v is not MISSING:
        return captured(v, binding["regex"], binding.get("flags", ""))
    return v


def regex_literal(pattern: str, flags: str = "") -> str:
    """``pattern`` written as a regex literal of the language (``/.../flags``, a ``/`` in it
    escaped), as ``fmt`` writes it and ``--explain`` shows it: it can be pasted into a rule.
    An escape pair is copied as it is, so a pattern from elsewhere that already escapes its
    ``/`` (``^refs\\/heads\\/``, as Go and JavaScript regexes often do) stays one regex
    literal, not an escaped backslash followed by the literal's end."""
    out, i = [], 0
    while i < len(pattern):
        c = pattern[i]
        if c == "\\" and i + 1 < len(pattern):
            out.append(pattern[i:i + 2])
            i += 2
            continue
        out.append("\\/" if c == "/" else c)
        i += 1
    return "/" + "".join(out) + "/" + flags


def github_filter_regex(pattern: str) -> str:
    """A regex literal (``/^...$/``, ready to paste into a rule) that matches what ``pattern``
    matches as a GitHub Actions filter pattern (``on.push.branches``, ``tags``, ``paths``):
    ``*`` any run without ``/``, ``**`` any run, ``?`` zero or one and ``+`` one or more of
    what precedes, ``[...]`` one listed character, ``\\`` escapes. A leading ``!`` (GitHub's
    negation) is not part of the pattern: the caller says how to exclude. Used by the
    checker's hint when a glob is written in GitHub's syntax (TRG306)."""
    return regex_literal("^" + _github_regex_body(pattern) + "$")


def github_filter_list_regex(patterns: list[str]) -> str | None:
    r"""One regex literal for a GitHub filter list with negations, read as GitHub reads it
    (``paths: ['app/**', '!app/assets/**']``): an entry passes when the last pattern that
    matches it is not a ``!`` one. For a list field (``files``) one entry must pass the
    whole list, which two conditions (``files ~ ... files !~ ...``, each on any entry) do
    not say; a lookahead per positive pattern does: ``/^(?!app\/assets\/.*$)app\/.*$/``.
    None when no pattern is positive (nothing passes on GitHub either)."""
    parts = []
    for k, p in enumerate(patterns):
        if p.startswith("!"):
            continue
        later = [_github_regex_body(q[1:]) for q in patterns[k + 1:] if q.startswith("!")]
        ahead = f"(?!{_alternatives(later)}$)" if later else ""
        parts.append(ahead + _github_regex_body(p))
    if not parts:
        return None
    return regex_literal("^" + _alternatives(parts) + "$")


def _alternatives(bodies: list[str]) -> str:
    return bodies[0] if len(bodies) == 1 else "(?:" + "|".join(bodies) + ")"


def _github_regex_body(pattern: str) -> str:
    """The regex (without anchors) of one GitHub filter pattern (:func:`github_filter_regex`)."""
    out, i, n = [], 0, len(pattern)
    while i < n:
        c = pattern[i]
        if c == "*":
            double = pattern.startswith("**", i)
            out.append(".*" if double else "[^/]*")
            i += 2 if double else 1
            continue
        if c in "?+" and out:
            out.append(c)
        elif c == "[" and "]" in pattern[i + 1:]:
            j = pattern.index("]", i + 2 if pattern.startswith("[]", i) else i + 1)
            out.append(pattern[i:j + 1])
            i = j
        elif c == "\\" and i + 1 < n:
            i += 1
            out.append(re.escape(pattern[i]))
        else:
            out.append(re.escape(c))
        i += 1
    return "".join(out)


def github_syntax(glob: str) -> str | None:
    """What in ``glob`` only makes sense in GitHub Actions' filter syntax, where it means
    something else than in a triggerlang glob, or None: a leading ``!`` (GitHub's negation;
    here a literal ``!``) or a ``+`` after a character class (GitHub's "one or more", as in
    ``v[0-9]+.[0-9]+``; here a literal ``+``, so the glob silently never matches)."""
    if glob.startswith("!"):
        return "!"
    if "]+" in glob:
        return "+"
    return None


def literal_prefix(glob: str) -> str:
    """The part of a glob before its first wildcard (used for watch roots and indexes)."""
    for i, c in enumerate(glob):
        if c in "*?[\\":
            return glob[:i]
    return glob


def is_literal(glob: str) -> bool:
    return literal_prefix(glob) == glob
