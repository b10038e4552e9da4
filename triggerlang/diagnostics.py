"""Positions, spans and diagnostics, and the renderers that print them.

Every phase returns its result together with a :class:`Diagnostics` list and keeps going
after an error where it can (the HCL way). Rendering is separate from the data: ``text``
(rustc-like, with the source line and a caret span), ``json``, ``github`` (workflow
commands) and ``sarif`` (2.1.0, for code-scanning uploads).

Columns are 1-based and counted in characters; ``end`` is exclusive (the column just after
the last character of the span), as in LSP and HCL.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Callable, Iterable, Iterator, Mapping, NamedTuple

if TYPE_CHECKING:
    from pathlib import Path

ERROR = "error"
WARNING = "warning"


class Pos(NamedTuple):
    """A position: 1-based line and column, 0-based character offset.

    NamedTuples, not frozen dataclasses: every AST node carries two of these, and a
    10,000-rule file builds hundreds of thousands; tuples construct several times faster
    and are still immutable, ordered and hashable.
    """

    line: int
    column: int
    offset: int = 0


class Span(NamedTuple):
    """A range of text: ``start`` inclusive, ``end`` exclusive.

    A span may also say which file it is in, when that is not the file being checked
    (HCL's ``Range{Filename, Start, End}``): :meth:`in_file` gives a :class:`FileSpan`,
    whose ``file`` is set; a plain span's ``file`` is None (the file the diagnostic is
    about). A span of a ``*_test.trg``'s companion file so points into the companion. The
    file is not one of the tuple's fields, so a span is still the pair ``(start, end)``
    everywhere spans are built, compared and unpacked."""

    start: Pos
    end: Pos

    file = None  # (a class attribute, not a field: see FileSpan)

    def in_file(self, file: str | None) -> "Span":
        """This span, in ``file`` (a plain span when ``file`` is None)."""
        if file is None:
            return Span(self.start, self.end)
        return FileSpan.of(self, file)

    @classmethod
    def point(cls, line: int, column: int, offset: int = 0) -> "Span":
        p = Pos(line, column, offset)
        return cls(p, Pos(line, column + 1, offset + 1))

    def to_json(self) -> dict:
        return {"line": self.start.line, "column": self.start.column,
                "end_line": self.end.line, "end_column": self.end.column}

    @classmethod
    def from_json(cls, obj: dict) -> "Span":
        return cls(Pos(obj["line"], obj["column"]), Pos(obj["end_line"], obj["end_column"]))

    def join(self, other: "Span") -> "Span":
        return Span(min(self.start, other.start), max(self.end, other.end)).in_file(self.file)


class FileSpan(Span):
    """A :class:`Span` that carries the name of the file it is in (``span.file``)."""

    @classmethod
    def of(cls, span: Span, file: str) -> "FileSpan":
        fs = cls(span.start, span.end)
        fs.file = file  # an instance attribute: FileSpan has a __dict__, Span has none
        return fs

    def __repr__(self) -> str:
        return f"FileSpan({self.start!r}, {self.end!r}, file={self.file!r})"


NO_SPAN = Span(Pos(1, 1, 0), Pos(1, 1, 0))

SAFE = "safe"
UNSAFE = "unsafe"


class Edit(NamedTuple):
    """Replace the text of ``span`` (a :class:`FileSpan` when it is in another file than the
    diagnostic's) with ``text``; an empty span inserts, an empty text deletes."""

    span: Span
    text: str

    def to_json(self) -> dict:
        return {**self.span.to_json(), "text": self.text}


class Fix(NamedTuple):
    """What a diagnostic's hint says to write, as edits (ruff's ``Fix``): ``title`` says it
    in a few words; ``applicability`` is :data:`SAFE` when applying it cannot change what a
    file that checks clean today would run and there is one candidate (a did-you-mean on an
    error: the file cannot run as it is), :data:`UNSAFE` when it changes what matches or
    deletes what the user wrote (``check --fix`` applies those only with ``--unsafe-fixes``)."""

    title: str
    edits: tuple[Edit, ...]
    applicability: str = SAFE

    @property
    def safe(self) -> bool:
        return self.applicability == SAFE

    def to_json(self) -> dict:
        return {"title": self.title, "applicability": self.applicability,
                "edits": [e.to_json() for e in self.edits]}

    def moved(self, where: Callable[[Span], Span]) -> "Fix":
        """The fix with ``where(span)`` for each edit's span (another file's naming, a
        cached declaration moved down the file)."""
        return self._replace(edits=tuple(e._replace(span=where(e.span)) for e in self.edits))


def replace_fix(span: Span, old: str, new: str, applicability: str = SAFE) -> Fix:
    """The fix that writes ``new`` over ``old``, which is the text of ``span``."""
    return Fix(f"Replace `{old}` with `{new}`", (Edit(span, new),), applicability)


class WriteHint(str):
    """A hint that says "write X", with X kept beside its text (``write``): a diagnostic
    given one gets the fix that writes X over its span (:meth:`Diagnostics.add`), the
    editor's quick fix, so the hint and the fix are made from the same string. Made by
    :func:`write_hint`; stored as a plain ``str``."""

    write: str


def write_hint(text: str, note: str = "", before: str = "") -> WriteHint:
    """The hint ``{before}write {text}{note}`` (``before`` says why first and ends with
    ": "; ``note`` starts with " (" or ": "), whose diagnostic gets the fix writing ``text``."""
    hint = WriteHint(f"{before}write {text}{note}")
    hint.write = text
    return hint


def write_fix(span: Span, hint: WriteHint) -> Fix:
    """The fix writing ``hint``'s text over ``span``. UNSAFE: mostly another tool's spelling
    read as a guess at what was meant, and a warning's fix changes what its file runs; a
    site that knows better passes its own fix. (``check --fix`` applies none in a file with
    a syntax error, where most of these are; the editor offers each as a quick fix.)"""
    return Fix(f"Write `{hint.write}`", (Edit(span, hint.write),), UNSAFE)


def name_span(span: Span, name: str, skip: int = 0) -> Span:
    """The span of ``name`` written ``skip`` characters after the start of ``span`` (a
    name is on one line), in ``span``'s file: where a dotted path's first part is."""
    s = span.start
    start = Pos(s.line, s.column + skip, s.offset + skip)
    return Span(start, Pos(s.line, start.column + len(name), start.offset + len(name))).in_file(span.file)


@dataclass(frozen=True)
class Diagnostic:
    """One problem: a stable ``code`` (``TRG203``), a one-line ``message`` saying what is
    wrong, an optional ``hint`` saying how to fix it, and the ``span`` it is about."""

    severity: str
    code: str
    message: str
    span: Span
    hint: str | None = None
    file: str = "<input>"
    related: tuple[tuple[Span, str], ...] = ()
    """Other places that explain this one (``(span, message)``): where the clashing name
    was first declared, the action a test's ``expect ... with`` binds, ... A span without a
    file is in ``file``."""
    fix: Fix | None = None
    """The edits that do what the hint says, where the checker knows them (an edit's span
    without a file is in ``file``)."""

    def related_file(self, span: Span) -> str:
        return span.file or self.file

    @property
    def is_error(self) -> bool:
        return self.severity == ERROR

    def sort_key(self):
        return (self.file, self.span.start.line, self.span.start.column, self.code, self.message)

    def to_json(self) -> dict:
        out = {"file": self.file, "line": self.span.start.line, "column": self.span.start.column,
               "end_line": self.span.end.line, "end_column": self.span.end.column,
               "severity": self.severity, "code": self.code, "message": self.message,
               "hint": self.hint}
        if self.related:  # only when there are some: the documented shape stays as it was
            out["related"] = [{"file": self.related_file(sp), **sp.to_json(), "message": msg}
                              for sp, msg in self.related]
        if self.fix is not None:  # (likewise)
            out["fix"] = self.fix.to_json()
        return out


@dataclass
class Diagnostics:
    """An ordered, growable list of diagnostics for one file."""

    file: str = "<input>"
    items: list[Diagnostic] = field(default_factory=list)

    def error(self, code: str, message: str, span: Span, hint: str | None = None,
              related: Iterable[tuple[Span, str]] = (), fix: Fix | None = None) -> None:
        self.add(ERROR, code, message, span, hint, related, fix)

    def warning(self, code: str, message: str, span: Span, hint: str | None = None,
                related: Iterable[tuple[Span, str]] = (), fix: Fix | None = None) -> None:
        self.add(WARNING, code, message, span, hint, related, fix)

    def add(self, severity: str, code: str, message: str, span: Span, hint: str | None = None,
            related: Iterable[tuple[Span, str]] = (), fix: Fix | None = None) -> None:
        """A diagnostic in ``span.file`` when the span carries one, else in this list's file;
        its related spans and its fix's edits name their file only when it is another (a
        span without a file is in this list's file: named so in an included file's
        diagnostic)."""
        file = span.file or self.file
        if isinstance(hint, WriteHint):  # "write X": the fix that writes X over the span
            fix = fix or write_fix(span, hint)
            hint = str(hint)

        def there(sp: Span) -> Span:
            where = sp.file or self.file
            return sp.in_file(None) if where == file else sp.in_file(where)

        if fix is not None:
            fix = fix.moved(there)
        self.items.append(Diagnostic(severity, code, message, span.in_file(None), hint, file,
                                     tuple((there(sp), msg) for sp, msg in related), fix))

    def extend(self, other: Iterable[Diagnostic]) -> None:
        self.items.extend(other)

    @property
    def has_errors(self) -> bool:
        return any(d.is_error for d in self.items)

    def sorted(self) -> list[Diagnostic]:
        # Stable and position-sorted (cel-go style); exact duplicates are dropped.
        seen, out = set(), []
        for d in sorted(self.items, key=Diagnostic.sort_key):
            if d not in seen:
                seen.add(d)
                out.append(d)
        return out

    def __iter__(self) -> Iterator[Diagnostic]:
        return iter(self.items)

    def __len__(self) -> int:
        return len(self.items)


# --------------------------------------------------------------------------- suggestions

def edit_distance(a: str, b: str, limit: int = 3) -> int:
    """Damerau-Levenshtein (optimal string alignment) distance, capped at ``limit + 1``."""
    if abs(len(a) - len(b)) > limit:
        return limit + 1
    prev2: list[int] = []
    prev = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        cur = [i] + [0] * len(b)
        for j, cb in enumerate(b, 1):
            cost = 0 if ca == cb else 1
            cur[j] = min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + cost)
            if i > 1 and j > 1 and ca == b[j - 2] and a[i - 2] == cb:
                cur[j] = min(cur[j], prev2[j - 2] + 1)
        prev2, prev = prev, cur
    return min(prev[-1], limit + 1)


def suggest(name: str, candidates: Iterable[str]) -> str | None:
    """The closest candidate to ``name`` by edit distance, if close enough to be a typo."""
    best, best_d = None, None
    limit = max(1, min(3, len(name) // 3 + 1))
    for c in sorted(set(candidates)):
        if c == name:
            continue
        d = edit_distance(name.lower(), c.lower(), limit)
        if d <= limit and (best_d is None or d < best_d):
            best, best_d = c, d
    return best


def did_you_mean(name: str, candidates: Iterable[str]) -> str | None:
    return meant(suggest(name, candidates))


def meant(guess: str | None) -> str | None:
    """The hint that offers ``guess`` (:func:`suggest`'s answer), if there is one."""
    return f"did you mean '{guess}'?" if guess else None


def typo(name: str, candidates: Iterable[str], span: Span | None,
         applicability: str = SAFE) -> tuple[str | None, Fix | None]:
    """``(hint, fix)`` for a name that is not one of ``candidates``: "did you mean 'X'?" and
    the fix that writes X over the name (``span``: where the name is written, None when
    no edit can say it), or ``(None, None)`` when no candidate is close."""
    s = suggest(name, candidates)
    if s is None:
        return None, None
    return meant(s), (replace_fix(span, name, s, applicability) if span is not None else None)


# --------------------------------------------------------------------------- renderers

def render_text(diags: Iterable[Diagnostic], sources: dict[str, str] | None = None,
                color: bool = False) -> str:
    """rustc-like text: ``file:line:col: severity[CODE]: message`` then the line and carets."""
    sources = sources or {}
    lines_cache: dict[str, list[str]] = {}
    out: list[str] = []

    def paint(s: str, code: str) -> str:
        return f"\x1b[{code}m{s}\x1b[0m" if color else s

    for d in diags:
        sev = paint(d.severity, "1;31" if d.is_error else "1;33")
        out.append(f"{d.file}:{d.span.start.line}:{d.span.start.column}: {sev}[{d.code}]: {d.message}")
        text = sources.get(d.file)
        if text is not None:
            # lines as the parser counts them: only \n, \r\n and \r end a line (not U+2028
            # or U+0085, which str.splitlines() would split on), and a leading BOM is not text
            lines = lines_cache.get(d.file)
            if lines is None:  # (not setdefault: its argument would split the file every time)
                lines = lines_cache[d.file] = (text.lstrip("\ufeff").replace("\r\n", "\n")
                                               .replace("\r", "\n").split("\n"))
            ln = d.span.start.line
            if 1 <= ln <= len(lines):
                src = lines[ln - 1].replace("\t", " ").translate(_SHOWN_CONTROLS)
                gutter = str(ln)
                pad = " " * len(gutter)
                start = d.span.start.column
                if d.span.end.line == ln:
                    end = max(d.span.end.column, start + 1)
                else:
                    end = max(len(src) + 1, start + 1)
                src, before, under = _excerpt(src, start - 1, end - 1)
                carets = " " * before + "^" * under
                hint = f" {d.hint}" if d.hint else ""
                out.append(f"  {gutter} | {src}")
                out.append(f"  {pad} | {paint(carets, '1;31' if d.is_error else '1;33')}{hint}")
                out.extend(_related_lines(d))
                continue
        if d.hint:
            out.append(f"  = hint: {d.hint}")
        out.extend(_related_lines(d))
    return "\n".join(out) + ("\n" if out else "")


_SHOWN_CONTROLS = {c: "\ufffd" for c in (*range(0x20), 0x7f)}
"""Control characters in a source line shown under a diagnostic: each as U+FFFD, one
column wide, so that a NUL or a form feed the caret points at can be seen (a tab is a space)."""

EXCERPT_WIDTH = 120
"""Columns of a source line shown under a diagnostic; a longer line is cut around the span."""
EXCERPT_CONTEXT = 40
"""Columns shown before the span on a line that is cut."""


def _width(text: str) -> int:
    """Columns ``text`` takes on a terminal: East Asian wide and fullwidth characters two,
    combining marks and zero-width characters none, others one (what wcwidth says of
    them), so that the carets stand under the span."""
    import unicodedata

    n = 0
    for ch in text:
        if ch.isascii():
            n += ch.isprintable() or ch == " "
        elif unicodedata.combining(ch) or unicodedata.category(ch) in ("Mn", "Me", "Cf"):
            continue
        else:
            n += 2 if unicodedata.east_asian_width(ch) in ("W", "F") else 1
    return n


def _excerpt(line: str, start: int, end: int) -> tuple[str, int, int]:
    """``(text shown, columns before the carets, carets)`` for the span ``[start, end)``
    (character indexes) of a source line: the whole line when it fits in
    :data:`EXCERPT_WIDTH` columns, else a window around the span with ``...`` where the
    line goes on (a 200,000-character line is not printed whole, nor are 200,000 spaces
    before its carets)."""
    lo, hi = 0, len(line)
    if _width(line) > EXCERPT_WIDTH:
        lo = max(0, start - EXCERPT_CONTEXT)
        hi = min(len(line), max(end, start + 1) + EXCERPT_CONTEXT, lo + EXCERPT_WIDTH)
    shown = ("..." if lo else "") + line[lo:hi] + ("..." if hi < len(line) else "")
    before = (3 if lo else 0) + _width(line[lo:start])
    under = max(1, _width(line[start:min(end, hi)]) + (end > len(line)))
    return shown, before, under


def _related_lines(d: Diagnostic) -> list[str]:
    return [f"  = note: {d.related_file(sp)}:{sp.start.line}:{sp.start.column}: {msg}" for sp, msg in d.related]


def render_json(diags: Iterable[Diagnostic]) -> str:
    return json.dumps([d.to_json() for d in diags], indent=2) + "\n"


def gh_escape(s: str, prop: bool = False) -> str:
    """Text for a GitHub Actions workflow command: its message, or (``prop``) a property."""
    s = s.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")
    if prop:
        s = s.replace(":", "%3A").replace(",", "%2C")
    return s


def render_github(diags: Iterable[Diagnostic]) -> str:
    """GitHub Actions workflow commands, one per diagnostic (annotations on the PR diff)."""
    out = []
    for d in diags:
        kind = "error" if d.is_error else "warning"
        props = (f"file={gh_escape(d.file, True)},line={d.span.start.line},col={d.span.start.column},"
                 f"endLine={d.span.end.line},endColumn={d.span.end.column},title={gh_escape(d.code, True)}")
        msg = d.message + (f" ({d.hint})" if d.hint else "")
        out.append(f"::{kind} {props}::{gh_escape(msg)}")
    return "\n".join(out) + ("\n" if out else "")


SRCROOT = "%SRCROOT%"


def source_root(start: Path | None = None) -> Path:
    """The root SARIF paths are relative to: the git work tree holding ``start`` (default
    the working directory), else ``start`` itself. Code scanning resolves ``%SRCROOT%``
    to the root of the repository it analyses, so the paths line up with its files."""
    from pathlib import Path

    start = (start or Path.cwd()).resolve()
    for folder in (start, *start.parents):
        if (folder / ".git").exists():
            return folder
    return start


def _under_root(file: str, root: Path) -> "tuple[Path | None, str | None]":
    """``(absolute path, path relative to root in posix form)`` of a diagnostic's file; the
    second None for a file outside ``root``, both None for one with no path (``<input>``)."""
    from pathlib import Path

    if file.startswith("<"):
        return None, None
    path = Path(file)
    path = Path(os.path.normpath(path if path.is_absolute() else Path.cwd() / path))
    try:
        return path, path.relative_to(root).as_posix()
    except ValueError:
        return path, None


def _artifact_location(file: str, root: Path) -> dict:
    """``{"uri", "uriBaseId"}`` relative to ``root``; an absolute ``file:`` URI for a
    file outside it (or one with no path, like ``<input>``: its name, as a relative URI)."""
    from urllib.parse import quote

    path, rel = _under_root(file, root)
    if path is None:
        return {"uri": quote(file)}
    if rel is None:
        return {"uri": path.as_uri()}
    return {"uri": quote(rel), "uriBaseId": SRCROOT}


def render_gitlab(diags: Iterable[Diagnostic], root: Path | None = None) -> str:
    """GitLab's Code Quality report (a Code Climate subset: ``artifacts:reports:codequality``),
    which the merge request shows as new and resolved findings.

    Paths are relative to ``root`` (default :func:`source_root`, the git work tree) as GitLab
    wants them. An error is ``major``, a warning ``minor``. The fingerprint, by which GitLab
    tells a finding of the merge request from the same one on the target branch, hashes the
    path, the code, the message and how many identical findings came before it in the file:
    not the line, so a finding does not show as fixed and new again when lines above it move.
    """
    import hashlib

    root = root or source_root()
    seen: dict[tuple[str, str, str], int] = {}
    out = []
    for d in diags:
        path = _under_root(d.file, root)[1] or d.file
        key = (path, d.code, d.message)
        n = seen[key] = seen.get(key, -1) + 1
        out.append({
            "type": "issue",
            "check_name": d.code,
            "description": d.message + (f" ({d.hint})" if d.hint else ""),
            "severity": "major" if d.is_error else "minor",
            "fingerprint": hashlib.sha256("\0".join((*key, str(n))).encode("utf-8")).hexdigest(),
            "location": {"path": path, "lines": {"begin": d.span.start.line, "end": d.span.end.line}},
        })
    return json.dumps(out, indent=2, ensure_ascii=False) + "\n"


def _sarif_region(span: Span) -> dict:
    return {"startLine": span.start.line, "startColumn": span.start.column,
            "endLine": span.end.line, "endColumn": span.end.column}


def _sarif_location(file: str, span: Span, root: Path) -> dict:
    return {"physicalLocation": {"artifactLocation": _artifact_location(file, root), "region": _sarif_region(span)}}


def _sarif_fix(d: Diagnostic, root: Path) -> dict:
    """A diagnostic's fix as a SARIF ``fix``: its edits as replacements, by file."""
    by_file: dict[str, list[dict]] = {}
    for e in d.fix.edits:
        by_file.setdefault(d.related_file(e.span), []).append(
            {"deletedRegion": _sarif_region(e.span), "insertedContent": {"text": e.text}})
    return {"description": {"text": f"{d.fix.title} ({d.fix.applicability})"},
            "artifactChanges": [{"artifactLocation": _artifact_location(f, root), "replacements": r}
                                for f, r in by_file.items()]}


def render_sarif(diags: Iterable[Diagnostic], rules: Mapping[str, dict] | None = None,
                 root: Path | None = None, information_uri: str | None = None) -> str:
    """SARIF 2.1.0: one run, one result per diagnostic.

    ``rules`` maps a code to its ``reportingDescriptor`` (description, help, helpUri,
    defaultConfiguration: see check/codedocs.py); the run lists the codes its results use.
    Locations are relative to ``root`` (default :func:`source_root`) under the
    ``%SRCROOT%`` base id, which ``originalUriBaseIds`` maps to the absolute root. Columns
    are counted in Unicode code points, as triggerc counts them (``columnKind``).
    """
    from . import PROJECT_URL, __version__

    diags = list(diags)
    rules = rules or {}
    root = root or source_root()
    codes = sorted({d.code for d in diags})
    index = {c: i for i, c in enumerate(codes)}
    doc = {
        "$schema": "https://json.schemastore.org/sarif-2.1.0.json",
        "version": "2.1.0",
        "runs": [{
            "tool": {"driver": {
                "name": "triggerc", "version": __version__, "semanticVersion": __version__,
                "informationUri": information_uri or PROJECT_URL,
                "rules": [rules.get(c) or {"id": c, "shortDescription": {"text": c}} for c in codes],
            }},
            "originalUriBaseIds": {SRCROOT: {"uri": root.as_uri().rstrip("/") + "/"}},
            "columnKind": "unicodeCodePoints",
            "results": [{
                "ruleId": d.code,
                "ruleIndex": index[d.code],
                "level": "error" if d.is_error else "warning",
                "message": {"text": d.message + (f" ({d.hint})" if d.hint else "")},
                "locations": [_sarif_location(d.file, d.span, root)],
                **({"relatedLocations": [{"id": i, "message": {"text": msg},
                                          **_sarif_location(d.related_file(sp), sp, root)}
                                         for i, (sp, msg) in enumerate(d.related, 1)]} if d.related else {}),
                **({"fixes": [_sarif_fix(d, root)]} if d.fix is not None else {}),
            } for d in diags],
        }],
    }
    return json.dumps(doc, indent=2) + "\n"
