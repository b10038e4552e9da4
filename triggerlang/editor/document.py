"""A rules document as an editor sees it: analyses, declarations at a position, names, symbols.

Nothing here speaks a protocol (no pygls, no lsprotocol): the LSP server
(:mod:`triggerlang.editor.lsp`) and the tests call these functions with plain positions.
Positions in and out are **0-based line and column in characters** (code points); spans are
the compiler's own (1-based, end exclusive).

How the work is shared out, so that a 10,000-rule file stays responsive:

* :class:`Analyzer` runs the compiler's own front end (``parse`` + ``check``, as
  ``triggerc check`` does, so the diagnostics are the same) with a per-document
  :class:`~triggerlang.syntax.parser.ParseCache`: an edit re-parses only the declarations
  whose text changed; the others are moved into place.
* Hover and completion need only the declaration under the cursor: :func:`declaration_at`
  finds its lines by the file's line structure (SPEC §1) and parses that one alone, and
  completion reads the text before the cursor. Names (actions, lets, secrets, rules) come
  from the latest analysis, which is at most one debounce behind.
* Definitions, references and symbols need the whole module at the current text; they take
  the latest analysis when it is of the current version, else parse (cached) again.

Node kinds this module does not know (correlation triggers, say) are walked generically, as
dataclasses: a ``Ref`` is a reference wherever it sits, an ``EventTrigger`` names a source,
and a node holding a trigger and a filter gives that filter its fields.
"""

from __future__ import annotations

import gc
import os
import re
import threading
from dataclasses import dataclass, field, fields, is_dataclass, replace
from pathlib import Path
from typing import Any, Callable, Collection, Iterator, Mapping, NamedTuple

from ..actions import input_env_name
from ..check import catalogue as C
from ..check.checker import Program, check
from ..check.noqa import suppress
from ..diagnostics import Diagnostic, Diagnostics, Span
from ..sourcefile import read_source
from ..syntax import ast as A
from ..syntax.includes import expand_includes
from ..syntax.parser import RESERVED, ParseCache, _parse_chunk, parse, split_comment

# --------------------------------------------------------------------------- analysis


@dataclass
class Analysis:
    """The compiler's view of one version of a document."""

    file: str                      # the path (or the URI of an unsaved document)
    version: int | None
    text: str
    module: A.Module
    diagnostics: list[Diagnostic]  # sorted, as `triggerc check` prints them
    program: Program | None
    companion: "Analysis | None" = None   # for X_test.trg: X.trg's analysis
    reads: tuple[A.IncludedFile, ...] = ()  # the files its includes read, directly or not
    imported: tuple[A.Decl, ...] = ()       # their declarations (spans that carry their file)

    @property
    def names(self) -> "Names":
        n = self.__dict__.get("_names")
        if n is None:
            n = self.__dict__["_names"] = Names.of(self)
        return n


class IncludedParse(NamedTuple):
    """An included file's parse, as :meth:`Analyzer._parse_included` keeps it."""

    text: str                 # the text parsed (another text is parsed again)
    module: A.Module
    diagnostics: Diagnostics
    cache: ParseCache         # that file's declarations, for its next text


class Analyzer:
    """Runs the front end on documents, reusing each one's parsed declarations.

    Thread-safe: one analysis at a time (the caches are not shared between threads).
    While it runs, the cyclic garbage collector is paused and the long-lived results are
    frozen out of its way afterwards (``gc.freeze``), as ``triggerc match`` does: a
    10,000-rule module is about a million objects, and scanning them on every collection
    tripled the time of an analysis. Every ``REFREEZE`` analyses, one full collection
    reclaims what froze while it was still garbage.
    """

    REFREEZE = 50
    MAX_INCLUDED = 1000
    """How many included files' parses are kept (the oldest used go first); those no open
    document reads any more go when a document is closed (:meth:`forget`)."""

    def __init__(self) -> None:
        self._caches: dict[str, ParseCache] = {}
        self._included: dict[tuple[str, str], IncludedParse] = {}  # by included file (real path, name)
        self._lock = threading.Lock()
        self._count = 0

    def analyse(self, file: str, text: str, version: int | None = None,
                companion: Analysis | None = None, base_dir: str | None = None,
                overlay: Mapping[str, str] | None = None) -> Analysis:
        """``overlay``: the texts of the documents open in the editor, by real path; an
        include that reads one of them reads that text, not the file (unsaved edits count,
        as in clangd or pyright). ``triggerc check`` has no overlay: it reads the disk."""
        with self._lock:
            enabled = gc.isenabled()
            gc.disable()
            try:
                cache = self._caches.setdefault(file, ParseCache())
                module, diags = parse(text, file, cache)
                base_dir = base_dir or _base_dir(file)
                # (the document itself when it includes nothing; its own problems only: see _own)
                checked = expand_includes(module, diags, os.path.join(base_dir, os.path.basename(file)),
                                          _overlaid(overlay) if overlay else read_source, unsaved=overlay or (),
                                          parse_file=self._parse_included)
                program = check(checked, diags, companion.program if companion else None, base_dir, True)
                shown = _configured(_own(diags.sorted(), file, checked.included, module), file)
                result = Analysis(file, version, text, module, suppress(shown, {file: text}, file), program,
                                  companion, checked.included, tuple(d for d in checked.decls if d.span.file is not None))
            finally:
                if enabled:
                    gc.enable()
            self._count += 1
            if self._count % self.REFREEZE == 0:
                gc.unfreeze()
                gc.collect()
            gc.freeze()
            return result

    def _parse_included(self, real: str, name: str, text: str) -> tuple[A.Module, Diagnostics]:
        """An included file's parse (:data:`~triggerlang.syntax.includes.Parser`), kept per
        file and keyed by its text: the same text (unchanged on disk or in the editor) is
        not parsed again at the next analysis (each keystroke's, in the including
        document), a changed one is, through that file's own :class:`ParseCache`."""
        have = self._included.pop((real, name), None)
        if have is None or have.text != text:
            cache = have.cache if have is not None else ParseCache()
            have = IncludedParse(text, *parse(text, name, cache), cache)
        self._included[(real, name)] = have  # (last: the most recently used)
        while len(self._included) > self.MAX_INCLUDED:
            del self._included[next(iter(self._included))]
        return have.module, have.diagnostics

    def parse(self, file: str, text: str, keep: bool = True) -> A.Module:
        """The module of ``text`` (no check), through the document's cache (``keep=False``:
        none is made, for a file on disk read once: a workspace's thousands of files would
        each keep one)."""
        with self._lock:
            cache = self._caches.get(file) if not keep else self._caches.setdefault(file, ParseCache())
            return parse(text, file, cache)[0]

    def forget(self, file: str | None, still_read: Collection[str] | None = None) -> None:
        """Drop the parses of the document ``file`` (it was closed; None: none); with ``still_read``,
        the real paths of the files the open documents' includes still read, also the
        parses of the included files not among them: an editor session that opens and
        closes many files keeps only what the files open now read (the next include of a
        dropped file parses it once more), as clangd drops a closed file's preamble.
        Dropped when a document closes, not at each analysis: an edit that deletes an
        include line leaves its file's parse until then (or the :data:`MAX_INCLUDED` bound).
        Under the lock: the analysis worker fills these caches, the event loop empties them."""
        with self._lock:
            if file is not None:
                self._caches.pop(file, None)
            if still_read is not None:
                for key in [key for key in self._included if key[0] not in still_read]:
                    del self._included[key]


def _overlaid(overlay: Mapping[str, str]) -> Callable[[str], tuple[str | None, Diagnostics]]:
    """An include reader (:func:`~triggerlang.sourcefile.read_source`'s shape) that gives
    an open document's text, else the file's."""
    def read(real: str) -> tuple[str | None, Diagnostics]:
        text = overlay.get(real)
        return read_source(real) if text is None else (text, Diagnostics(real))
    return read


def _own(diagnostics: list[Diagnostic], file: str, reads: tuple[A.IncludedFile, ...],
         module: A.Module) -> list[Diagnostic]:
    """The diagnostics to show in the document: its own, and the errors of the files its
    includes read summed up on the ``include`` line that reads them, as clangd does for a
    header ("in common.trg:3:13: ...", the first error and how many more): an editor shows a
    document's problems in that document, and the full list shows when the included file
    is opened. Paths in messages are relative to the document's folder, as the user wrote
    them (the analysis names included files by absolute path, to open them)."""
    folder = os.path.dirname(file) + os.sep
    via = {f.name: f.via for f in reads}
    own, others = [], {}
    for d in diagnostics:
        if d.file == file:
            own.append(d if not reads or folder not in d.message + (d.hint or "") else
                       replace(d, message=d.message.replace(folder, ""),
                               hint=d.hint.replace(folder, "") if d.hint else d.hint))
        elif d.is_error:  # (a file unread, not UTF-8 say: on the first include line)
            at = via.get(d.file) or next((i.path.span for i in module.decls if i.__class__ is A.Include), None)
            if at is not None:
                others.setdefault((at.start.offset, at.end.offset), (at, []))[1].append(d)
    for at, errors in others.values():
        first = errors[0]
        name = os.path.relpath(first.file, os.path.dirname(file))
        more = f" (and {len(errors) - 1} more error{'s' if len(errors) > 2 else ''} in the files it reads)" \
            if len(errors) > 1 else ""
        own.append(Diagnostic(first.severity, first.code,
                              f"in {name}:{first.span.start.line}:{first.span.start.column}: "
                              f"{first.message.replace(folder, '')}{more}", at,
                              f"an error in an included file: open {name} to see it", file,
                              ((first.span.in_file(first.file), first.message),)))
    return sorted(own, key=Diagnostic.sort_key) if others else own


def _configured(diagnostics: list[Diagnostic], file: str) -> list[Diagnostic]:
    """What the document's config (its nearest ``triggerc.toml``, triggerlang/config.py)
    keeps, as ``check`` would show; all of them when there is no config or a config
    ``check`` refuses (``check`` says why: the editor keeps showing the rules' problems)."""
    from ..config import ConfigError, config_of

    if not diagnostics or not os.path.isabs(file):
        return diagnostics
    try:
        cfg = config_of(file)
    except ConfigError:
        return diagnostics
    return [d for d in diagnostics if cfg.keeps(d)]


def _base_dir(file: str) -> str:
    p = Path(file)
    return str(p.parent) if p.is_absolute() else os.getcwd()


def companion_path(file: str) -> str | None:
    """For ``x_test.trg``, the path of ``x.trg`` (whether or not it exists)."""
    if file.endswith("_test.trg"):
        return file[: -len("_test.trg")] + ".trg"
    return None


def tests_path(file: str) -> str | None:
    """For ``x.trg``, the path of ``x_test.trg``."""
    if file.endswith(".trg") and not file.endswith("_test.trg"):
        return file[: -len(".trg")] + "_test.trg"
    return None


# --------------------------------------------------------------------------- declarations

_DECL_START = re.compile(r"(let|secret|source|action|on|test)(?![A-Za-z0-9_\-])"
                         r"|[A-Za-z_][A-Za-z0-9_\-]*\s*:\s*on(?![A-Za-z0-9_\-])")


def _starts_declaration(line: str) -> bool:
    return bool(line) and not line[0].isspace() and not line.lstrip().startswith("#")


def declaration_at(lines: list[str], line: int) -> tuple[int, int] | None:
    """``(first, last)`` 0-based lines of the declaration that holds line ``line``, by the
    line structure of SPEC §1 (a column-1 line starts one; indented lines continue it)."""
    if not lines:
        return None
    line = min(max(line, 0), len(lines) - 1)
    first = line
    while first > 0 and not _starts_declaration(lines[first]):
        first -= 1
    if not _starts_declaration(lines[first]):
        return None
    # a column-1 line inside an open bracket continues the declaration above it
    while first > 0 and not _DECL_START.match(lines[first]):
        above = first - 1
        while above > 0 and not _starts_declaration(lines[above]):
            above -= 1
        if not _starts_declaration(lines[above]) or _open_brackets(lines[above:first]) <= 0:
            break
        first = above
    last = first
    depth = _open_brackets(lines[first:first + 1])
    i = first + 1
    while i < len(lines):
        ln = lines[i]
        if _starts_declaration(ln) and (depth <= 0 or _DECL_START.match(ln)):
            break
        if ln.strip() and not ln.lstrip().startswith("#"):
            last = i
            depth += _open_brackets([ln])
        i += 1
    return first, last


def _open_brackets(lines: list[str]) -> int:
    depth = 0
    for ln in lines:
        code = split_comment(ln)[0]
        in_str = False
        for ch in code:
            if ch == '"':
                in_str = not in_str
            elif not in_str:
                depth += (ch in "([") - (ch in ")]")
    return depth


def parse_declaration(lines: list[str], first: int, last: int, file: str) -> A.Decl | None:
    """Parse lines ``first..last`` as one declaration, with the file's own positions."""
    offset = sum(len(ln) + 1 for ln in lines[:first])
    chunk = "\n".join(lines[first:last + 1])
    return _parse_chunk(chunk, first, offset, Diagnostics(file))


def split_lines(text: str) -> list[str]:
    """Lines as the parser counts them (only \\n, \\r\\n and \\r end a line)."""
    return text.lstrip("\ufeff").replace("\r\n", "\n").replace("\r", "\n").split("\n")


# --------------------------------------------------------------------------- walking trees

def children(node: Any) -> Iterator[tuple[str, Any]]:
    """``(field name, child)`` for every node below ``node`` (tuples flattened)."""
    if not is_dataclass(node):
        return
    for f in fields(node):
        v = getattr(node, f.name)
        if isinstance(v, tuple):
            for x in v:
                if is_dataclass(x):
                    yield f.name, x
        elif is_dataclass(v):
            yield f.name, v


def contains(span: Span, line1: int, col1: int) -> bool:
    """The span holds the position, its end included (a cursor just after a word)."""
    if span is None or span == A.NO_SPAN:
        return False
    return (span.start.line, span.start.column) <= (line1, col1) <= (span.end.line, span.end.column)


def path_at(decl: Any, line: int, col: int) -> list[tuple[str, Any]]:
    """The chain ``[(field, node), ...]`` from ``decl`` down to the innermost node whose span
    holds the 0-based position (the first element is ``("", decl)``)."""
    l1, c1 = line + 1, col + 1
    chain = [("", decl)]
    node = decl
    while True:
        best = None
        for name, ch in children(node):
            sp = getattr(ch, "span", None)
            if sp is not None and contains(sp, l1, c1):
                best = (name, ch)
                if (sp.end.line, sp.end.column) != (l1, c1):
                    break  # strictly inside: better than a neighbour that ends here
        if best is None:
            return chain
        chain.append(best)
        node = best[1]


def trigger_context(chain: list[tuple[str, Any]]) -> tuple[str, str] | None:
    """``(source, event)`` whose fields the innermost node of ``chain`` talks about: the
    trigger of the nearest node above it that has one (a rule, a test's given, or any node
    with a ``trigger``, such as a correlation member)."""
    for _, node in reversed(chain):
        if isinstance(node, A.Given):
            return _ctx_of(node.trigger)
        trig = getattr(node, "trigger", None)
        if trig is not None:
            return _ctx_of(trig)
    return None


def _ctx_of(trig: Any) -> tuple[str, str] | None:
    if isinstance(trig, A.EventTrigger):
        if C.get_event(trig.source.value, trig.event.value) is not None:
            return trig.source.value, trig.event.value
        return None
    if isinstance(trig, (A.EveryTrigger, A.CronTrigger)):
        return "schedule", "tick"
    # a trigger kind this editor does not know (a correlation): its first member's event
    for n in _walk(trig):
        if isinstance(n, A.EventTrigger):
            return _ctx_of(n)
    return None


def _walk(node: Any) -> Iterator[Any]:
    yield node
    for _, ch in children(node):
        yield from _walk(ch)


# --------------------------------------------------------------------------- names

@dataclass
class Names:
    """The declarations of a document (and, for a test file, of its companion) by name."""

    actions: dict[str, A.ActionDecl] = field(default_factory=dict)
    lets: dict[str, A.Let] = field(default_factory=dict)
    secrets: dict[str, A.Secret] = field(default_factory=dict)
    rules: dict[str, A.Rule] = field(default_factory=dict)
    sources: dict[str, list[A.SourceDecl]] = field(default_factory=dict)
    files: dict[int, str] = field(default_factory=dict)  # id(decl) -> file it is in
    home: str = ""  # the document's file

    @classmethod
    def of(cls, analysis: Analysis) -> "Names":
        """The document's names, its companion's, then those the files they include declare."""
        n = cls(home=analysis.file)
        comp = analysis.companion
        if comp is not None:
            n._add(comp.module, comp.file)
        n._add(analysis.module, analysis.file)
        for a in (comp, analysis):
            if a is not None:
                n._add(A.Module(a.imported), None)
        return n

    def _add(self, module: A.Module, file: str | None) -> None:
        """``module``'s declarations, in ``file`` (None: each in its span's file)."""
        for d in module.decls:
            self.files[id(d)] = file or d.span.file
            if isinstance(d, A.ActionDecl):
                self.actions.setdefault(d.name.value, d)
            elif isinstance(d, A.Let):
                self.lets.setdefault(d.name.value, d)
            elif isinstance(d, A.Secret):
                self.secrets.setdefault(d.name.value, d)
            elif isinstance(d, A.Rule):
                self.rules.setdefault(d.name, d)
            elif isinstance(d, A.SourceDecl):
                self.sources.setdefault(d.kind.value, []).append(d)

    def file_of(self, decl: Any, default: str) -> str:
        return self.files.get(id(decl), default)

    def where(self, decl: Any) -> str:
        """Where ``decl`` is declared, when not in the document: a line for a hover
        (``declared in common.trg:2``, relative to the document's folder)."""
        file = self.files.get(id(decl))
        if file is None or file == self.home:
            return ""
        shown = os.path.relpath(file, os.path.dirname(self.home)) if self.home and os.path.isabs(file) else file
        return f"\n\ndeclared in `{shown}:{decl.span.start.line}`"


# --------------------------------------------------------------------------- occurrences

@dataclass(frozen=True)
class Occurrence:
    """A name where it is declared (``is_def``) or used. ``kind`` is action, let, secret,
    rule, source or param (``scope``: the action the parameter belongs to)."""

    kind: str
    name: str
    span: Span
    file: str
    is_def: bool = False
    scope: str | None = None


def occurrences(module: A.Module, file: str, names: Names) -> list[Occurrence]:
    """Every declaration and use of a name in ``module``."""
    out: list[Occurrence] = []
    add = out.append
    for d in module.decls:
        if isinstance(d, A.Let):
            add(Occurrence("let", d.name.value, d.name.span, file, True))
            _values(d.value, names, file, out)
        elif isinstance(d, A.Secret):
            add(Occurrence("secret", d.name.value, d.name.span, file, True))
        elif isinstance(d, A.SourceDecl):
            add(Occurrence("source", d.kind.value, d.kind.span, file, True))
            spec = C.get_source(d.kind.value)
            for o in d.options:
                if spec is not None and spec.options.get(o.name.value) == C.SECRET and isinstance(o.value, A.Ref):
                    add(Occurrence("secret", o.value.name, o.value.span, file))
                else:
                    _values(o.value, names, file, out)
        elif isinstance(d, A.ActionDecl):
            act = d.name.value
            add(Occurrence("action", act, d.name.span, file, True))
            for p in d.params:
                add(Occurrence("param", p.name.value, p.name.span, file, True, act))
                if p.default is not None:
                    _values(p.default, names, file, out)
            if isinstance(d.body, A.ExecBody):
                for item in d.body.argv:
                    if isinstance(item, A.Ref):
                        add(Occurrence("param", item.name, item.span, file, False, act))
            elif isinstance(d.body, A.HttpBody):
                for o in d.body.options:
                    if isinstance(o.value, A.Ref):
                        add(Occurrence("secret", o.value.name, o.value.span, file))
        elif isinstance(d, A.Rule):
            if d.label is not None:
                add(Occurrence("rule", d.label.value, d.label.span, file, True))
            _trigger_and_filter(d, names, file, out)
            add(Occurrence("action", d.action.value, d.action.span, file))
            _args(d.args, d.action.value, names, file, out)
            for p in d.policies:
                for v in (p.value, p.extra):
                    if isinstance(v, (A.Ref, A.ListLit)):
                        _values(v, names, file, out)
        elif isinstance(d, A.TestBlock):
            for g in _givens(d):
                ctx = _ctx_of(g.trigger)
                add(Occurrence("source", g.trigger.source.value, g.trigger.source.span, file))
                for f in g.fields:
                    if ctx and ctx[0] == "schedule" and f.field.parts == ("rule",):
                        _rule_strings(f.value, file, out)
                    else:
                        _values(f.value, names, file, out)
            for e in d.expects:
                for r in e.rules:
                    add(Occurrence("rule", r.value, r.span, file))
                if e.rules and e.args:
                    rule = names.rules.get(e.rules[0].value)
                    _args(e.args, rule.action.value if rule else "", names, file, out)
        else:  # a declaration kind this editor does not know: its references, generically
            for n in _walk(d):
                if isinstance(n, A.Ref):
                    _values(n, names, file, out)
    return out


def _givens(t: A.TestBlock) -> tuple:
    """Every ``given`` of a test (a test with clock steps may have several, or none)."""
    many = getattr(t, "givens", None)
    if many is not None:
        return tuple(many)
    return (t.given,) if t.given is not None else ()


def _trigger_and_filter(node: Any, names: Names, file: str, out: list[Occurrence]) -> None:
    """Sources named by triggers, lets used in filters, and ``rule="x"`` on ``run.*``;
    generic over trigger kinds (members of a correlation carry their own filters)."""
    trig = getattr(node, "trigger", None)
    filt = getattr(node, "filter", None)
    if isinstance(trig, A.EventTrigger):
        out.append(Occurrence("source", trig.source.value, trig.source.span, file))
        on_runs = trig.source.value == "run"
        for c in _walk(filt) if filt is not None else ():
            if isinstance(c, A.Compare) and on_runs and c.field.parts == ("rule",):
                _rule_strings(c.value, file, out)
            elif isinstance(c, A.Compare):
                _values(c.value, names, file, out)
    elif trig is not None:
        if isinstance(trig, A.EveryTrigger):
            _values(trig.interval, names, file, out)
        for _, ch in children(trig):
            _trigger_and_filter(ch, names, file, out)
        if not isinstance(trig, (A.EveryTrigger, A.CronTrigger)):
            for n in _walk(trig):  # members of an unknown trigger kind: each trigger+filter pair
                if n is not trig and getattr(n, "trigger", None) is not None:
                    _trigger_and_filter(n, names, file, out)
        if filt is not None:
            for c in _walk(filt):
                if isinstance(c, A.Compare):
                    _values(c.value, names, file, out)


def _rule_strings(v: Any, file: str, out: list[Occurrence]) -> None:
    for s in (v.items if isinstance(v, A.ListLit) else (v,)):
        if isinstance(s, A.Str) and not s.raw:
            sp = s.span
            inner = Span(sp.start._replace(column=sp.start.column + 1, offset=sp.start.offset + 1),
                         sp.end._replace(column=sp.end.column - 1, offset=sp.end.offset - 1))
            out.append(Occurrence("rule", s.value, inner, file))


def _values(v: Any, names: Names, file: str, out: list[Occurrence]) -> None:
    if isinstance(v, A.Ref):
        kind = "secret" if v.name in names.secrets and v.name not in names.lets else "let"
        out.append(Occurrence(kind, v.name, v.span, file))
    elif isinstance(v, A.ListLit):
        for x in v.items:
            _values(x, names, file, out)


def _args(args: tuple, action: str, names: Names, file: str, out: list[Occurrence]) -> None:
    for a in args:
        if a.name is not None and action:
            out.append(Occurrence("param", a.name.value, a.name.span, file, False, action))
        _values(a.value, names, file, out)


def occurrence_at(occs: list[Occurrence], file: str, line: int, col: int) -> Occurrence | None:
    """The occurrence under a 0-based position (the narrowest one)."""
    best = None
    for o in occs:
        if o.file == file and contains(o.span, line + 1, col + 1):
            if best is None or (o.span.end.column - o.span.start.column) < (best.span.end.column - best.span.start.column):
                best = o
    return best


def same_symbol(a: Occurrence, b: Occurrence) -> bool:
    return a.kind == b.kind and a.name == b.name and (a.kind != "param" or a.scope == b.scope)


# --------------------------------------------------------------------------- rename

NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_\-]*\Z")


def rename(occs: list[Occurrence], at: Occurrence, new: str, names: Names,
           text_of: Callable[[str], str | None]) -> list[Occurrence] | str:
    """The occurrences to replace with ``new`` to rename ``at``'s symbol everywhere (the
    document and its companion files), or why the rename is refused.

    Refused: a source kind (a catalogue name, not the file's); a parameter of a ``shell`` or
    ``http`` action (its script or receiver knows it as ``TRG_INPUT_<NAME>``, which the
    editor cannot see); a new name that is no NAME or a reserved word; a name another
    declaration of the same kind already has (lets and secrets share one namespace); and,
    as a safety net, an occurrence whose text in its file is not the old name (a string
    spelled with escapes). An ``exec`` action's parameter may be renamed: its program's
    ``TRG_INPUT_<NAME>`` variable is renamed with it, which the README says."""
    if at.kind not in ("action", "let", "secret", "rule", "param"):
        return f"`{at.name}` is a source of the catalogue, not a name this file declares: it cannot be renamed"
    if at.kind == "param":
        action = names.actions.get(at.scope or "")
        if action is not None and not isinstance(action.body, A.ExecBody):
            return (f"`{at.name}` is a parameter of a {_body_kind(action.body)} action, which sees it as "
                    f"{input_env_name(at.name)}: rename it by hand, with the {_body_kind(action.body)} that reads it")
    if new == at.name:
        return f"`{new}` is already the name"
    if not NAME.match(new) or new in RESERVED:
        return f"`{new}` is not a valid name (a letter or `_`, then letters, digits, `_` or `-`; not a reserved word)"
    if at.kind == "param":
        taken = {o.name for o in occs if o.kind == "param" and o.is_def and o.scope == at.scope}
    else:
        space = {"action": (names.actions,), "rule": (names.rules,),
                 "let": (names.lets, names.secrets), "secret": (names.lets, names.secrets)}[at.kind]
        kinds = {"let", "secret"} if at.kind in ("let", "secret") else {at.kind}
        taken = {n for d in space for n in d} | {o.name for o in occs if o.is_def and o.kind in kinds}
    if new in taken:
        return f"`{new}` is already declared: renaming `{at.name}` to it would make two of one name"
    edits = [o for o in occs if same_symbol(o, at)]
    texts: dict[str, list[str] | None] = {}
    for o in edits:
        if o.file not in texts:
            t = text_of(o.file)
            texts[o.file] = split_lines(t) if t is not None else None
        lines = texts[o.file]
        line = lines[o.span.start.line - 1] if lines and o.span.start.line <= len(lines) else ""
        if o.span.start.line != o.span.end.line or \
                line[o.span.start.column - 1:o.span.end.column - 1] != at.name:
            return (f"`{at.name}` is written differently at {o.file}:{o.span.start.line}:{o.span.start.column}: "
                    "rename it by hand")
    return edits


def _body_kind(body: Any) -> str:
    return "shell" if isinstance(body, A.ShellBody) else "http" if isinstance(body, A.HttpBody) else "non-exec"


# --------------------------------------------------------------------------- symbols

SYMBOL_KINDS = {A.Let: "let", A.Secret: "secret", A.SourceDecl: "source", A.ActionDecl: "action",
                A.Rule: "rule", A.TestBlock: "test"}


@dataclass
class Symbol:
    """One entry of the document outline."""

    kind: str            # let, secret, source, action, rule, test, param (or the node's class name)
    name: str
    detail: str
    span: Span           # the whole declaration
    selection: Span      # its name
    children: list["Symbol"] = field(default_factory=list)


def symbols(module: A.Module) -> list[Symbol]:
    from ..fmt import fmt_trigger

    out = []
    for d in module.decls:
        kind = SYMBOL_KINDS.get(type(d), type(d).__name__.lower())
        if isinstance(d, A.Rule):
            detail = f"on {fmt_trigger(d.trigger) if not _unknown(d.trigger) else '...'} run {d.action.value}"
            out.append(Symbol(kind, d.name, detail, d.span, d.label.span if d.label else d.trigger.span))
        elif isinstance(d, A.ActionDecl):
            s = Symbol(kind, d.name.value, signature(d), d.span, d.name.span)
            s.children = [Symbol("param", p.name.value, "parameter", p.span, p.name.span) for p in d.params]
            out.append(s)
        elif isinstance(d, A.Let):
            out.append(Symbol(kind, d.name.value, _fmt(d)[len(f"let {d.name.value} = "):], d.span, d.name.span))
        elif isinstance(d, A.Secret):
            out.append(Symbol(kind, d.name.value, f'{d.kind} "{d.ref.value}"', d.span, d.name.span))
        elif isinstance(d, A.SourceDecl):
            out.append(Symbol(kind, d.kind.value, _fmt(d), d.span, d.kind.span))
        elif isinstance(d, A.TestBlock):
            given = _givens(d)
            out.append(Symbol(kind, d.name.value or "(unnamed test)",
                              f"given {given[0].trigger.text}" if given else "", d.span, d.name.span))
        else:
            out.append(Symbol(kind, kind, "", d.span, d.span))
    return out


def _unknown(trig: Any) -> bool:
    return not isinstance(trig, (A.EventTrigger, A.EveryTrigger, A.CronTrigger))


def _fmt(d: Any) -> str:
    from ..fmt import fmt_decl

    try:
        return " ".join(line.strip() for line in fmt_decl(d))
    except TypeError:  # a node kind the formatter does not print
        return type(d).__name__


def signature(a: A.ActionDecl) -> str:
    """``deploy(sha, stage="staging") = exec "./deploy.sh" ...``"""
    text = _fmt(a)
    return text[len("action "):] if text.startswith("action ") else text

