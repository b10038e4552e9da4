"""``include``: rules split over several files (the phase between parse and check).

``include "common.trg"`` and ``include "rules.d/*.trg"`` make another file's declarations
and rules part of the including file's program, as C's ``#include`` and nginx's
``include`` do: one namespace, so an action declared in ``common.trg`` is called by a
rule in ``deploy.trg``. :func:`expand_includes` reads the files, parses them and returns
the module with their declarations in it, each after the ``include`` that read it.

Decisions
---------
- **Paths** are relative to the folder of the file that holds the ``include`` (wherever
  triggerc runs); absolute paths and ``..`` are allowed: the rules' author owns the files.
  A path must name a ``.trg`` file: a folder, a missing file or another kind of file is a
  TRG005 error at the include's string, with a hint.
- **Globs**: a path with ``*``, ``?`` or ``[`` is a glob (``**`` crosses folders), its
  files read in sorted order; it must end in ``.trg``. Hidden files and test files
  (``*_test.trg``, which belong to their companion) are not matched. A glob that matches
  nothing is an error, not a warning as in nginx: a typo is caught in CI, not found in
  production.
- **Include once**: a file already read (by its real path: a symlink or ``a/../b.trg``
  is the same file) is not read again, so every file can include what it uses, and stays
  checkable on its own, and a team's ``main.trg`` can include two files that both include
  ``common.trg``. A cycle is therefore harmless: the file it comes back to is skipped.
- **Locations**: an included file's declarations carry spans in that file
  (:meth:`~triggerlang.diagnostics.Span.in_file`), so every diagnostic about them, in every
  output format, names that file, line and column; its syntax errors are reported there too.
- **Test blocks** of an included file are not the including file's tests: they are
  checked and run when that file is checked or tested (``triggerc test common.trg``). The
  rules under test are always the whole program.
- Relative paths inside included declarations other than includes (``cwd``, watched
  folders, secret files) are resolved at run time against the folder of the file given to
  triggerc, as every path in one program is (the manifest has one ``base_dir``).
"""

from __future__ import annotations

import json
import os
from dataclasses import replace
from typing import Callable, Container, Iterable

from ..diagnostics import Diagnostics, meant, replace_fix, suggest
from ..sourcefile import SourceFileError, glob_files, inputs_digest, read_source
from . import ast as A
from .parser import parse

GLOB_CHARS = frozenset("*?[")

Reader = Callable[[str], "tuple[str | None, Diagnostics]"]
Parser = Callable[[str, str, str], "tuple[A.Module, Diagnostics]"]
"""``parse_file(real path, name, text)``: an included file's module and diagnostics, as
:func:`~triggerlang.syntax.parser.parse` ``(text, name)`` gives them (the language
server's keeps them per file: :class:`~triggerlang.editor.document.Analyzer`)."""


def has_includes(module: A.Module) -> bool:
    return any(d.__class__ is A.Include for d in module.decls)


def expand_includes(module: A.Module, diags: Diagnostics, path: str, read: Reader = read_source,
                    also: Iterable[str] = (), unsaved: Container[str] = (),
                    parse_file: Parser | None = None) -> A.Module:
    """``module`` (the file at ``path``; its name is ``module.file``) with the declarations
    of the files it includes, and they include, in it; problems go to ``diags``.
    ``read(path)`` gives a file's text (:func:`~triggerlang.sourcefile.read_source`).
    ``also``: more files (as named on the command line: ``serve a.trg b.trg``) read as if
    the file included them after its own declarations. ``unsaved``: real paths that an
    include may name though no file is there (the language server's open documents, which
    ``read`` gives; a glob matches files on disk only); ``check`` has none.
    ``parse_file``: how an included file is parsed (:data:`Parser`; default: afresh)."""
    also = tuple(also)
    if not has_includes(module) and not also:
        return module
    state = _Expansion(diags, read, unsaved, parse_file)
    state.seen.add(os.path.realpath(path))
    decls = state.expand(module.decls, os.path.dirname(os.path.realpath(path)), _folder(module.file), module.file)
    for name in also:
        name = os.path.normpath(name)
        given = A.Include(A.Str(name, span=A.NO_SPAN), span=A.NO_SPAN)  # (no line of the file says it)
        decls.extend(state.read_file(os.path.realpath(name), name, given))
    return A.Module(tuple(decls), module.file, module.span, module.unparsed | frozenset(state.unparsed),
                    tuple(state.files), tuple(state.globs), tuple(state.tests))


def include_targets(module: A.Module, path: str, unsaved: Container[str] = ()) -> list[str]:
    """The real paths of the files the includes of ``module`` (the file at ``path``) name,
    directly, as :func:`expand_includes` would read them (globs matched now; ``unsaved``
    as there); none for an include it would refuse. Nothing is read: the language server
    builds its graph of who includes whom from these."""
    state = _Expansion(Diagnostics(module.file), read_source, unsaved)
    folder, shown = os.path.dirname(os.path.realpath(path)), _folder(module.file)
    return [real for d in module.decls if d.__class__ is A.Include
            for real, _ in state.targets(d, folder, shown, module.file)]


def _folder(name: str) -> str:
    """The folder names of files included by the file called ``name`` start from (none for
    ``<stdin>``: its includes are named relative to the working folder)."""
    return "" if name.startswith("<") else os.path.dirname(name)


class _Expansion:
    def __init__(self, diags: Diagnostics, read: Reader, unsaved: Container[str] = (),
                 parse_file: Parser | None = None):
        self.diags = diags
        self.read = read
        self.unsaved = unsaved
        self.parse_file = parse_file or (lambda real, name, text: parse(text, name))
        self.seen: set[str] = set()
        self.files: list[A.IncludedFile] = []
        self.globs: list[tuple[str, tuple[str, ...]]] = []
        self.tests: list[A.TestBlock] = []
        self.unparsed: set[str] = set()
        self.via: dict[str, A.Span] = {}  # included file name -> the top file's include that read it

    def expand(self, decls: Iterable[A.Decl], folder: str, shown_folder: str, file: str) -> list[A.Decl]:
        """``decls`` of the file called ``file`` in ``folder`` (named from ``shown_folder``),
        each include followed by what it reads."""
        out: list[A.Decl] = []
        for decl in decls:
            out.append(decl)
            if decl.__class__ is A.Include:
                for real, name in self.targets(decl, folder, shown_folder, file):
                    out.extend(self.read_file(real, name, decl))
        return out

    def targets(self, inc: A.Include, folder: str, shown_folder: str, file: str) -> list[tuple[str, str]]:
        """``(real path, name)`` of each file ``inc`` (in the file called ``file``) names, or
        none after a TRG005. A hint names the folder as the user wrote it: the including
        file's (never the absolute path it resolves to)."""
        written = inc.path.value
        at = inc.path.span
        read_from = "the working folder" if file.startswith("<") else \
            (f"{shown_folder}/, " if shown_folder and not os.path.isabs(shown_folder) else "") + \
            f"the folder of {os.path.basename(file)}"
        if not written:
            self.diags.error("TRG005", "include of an empty path", at, 'name a file: include "common.trg"')
            return []
        if "\0" in written:  # (os.path.realpath and os.listdir raise on it)
            self.diags.error("TRG005", "an include's path holds a NUL character, which no file name can", at,
                             'remove the \\u{0}: include "common.trg"')
            return []
        full = os.path.normpath(os.path.join(folder, written))
        shown = os.path.normpath(os.path.join(shown_folder, written))
        if GLOB_CHARS & set(written):
            if not written.endswith(".trg"):
                self.diags.error("TRG005", "an include's glob must match .trg files", at,
                                 f'end it in .trg: include "{written.rstrip("*")}*.trg"' if written.endswith("*")
                                 else 'end it in .trg: include "rules.d/*.trg"')
                return []
            matched = glob_files(full)
            self.globs.append((full, tuple(matched)))
            if not matched:
                self.diags.error("TRG005", f"no file matches '{written}'", at,
                                 f"the pattern is relative to {read_from}; a glob that matches nothing is an "
                                 "error (a typo would leave the rules out)")
                return []
            return [(os.path.realpath(m), os.path.normpath(os.path.join(shown_folder, os.path.relpath(m, folder))))
                    for m in matched]
        if os.path.isdir(full):
            self.diags.error("TRG005", f"'{written}' is a folder, not a rules file", at,
                             f'include its files with a glob: include "{written.rstrip("/")}/*.trg"')
            return []
        if not written.endswith(".trg"):
            hint, fix = "an include reads rules files, whose names end in .trg", None
            if os.path.isfile(full + ".trg") and not inc.path.raw:  # include "common": common.trg is there
                hint = f"did you mean '{written}.trg'? ({hint})"
                fix = replace_fix(at, json.dumps(written, ensure_ascii=False),
                                  json.dumps(written + ".trg", ensure_ascii=False))
            self.diags.error("TRG005", f"'{written}' is not a .trg file", at, hint, fix=fix)
            return []
        if written.endswith("_test.trg"):
            self.diags.error("TRG005", f"'{written}' is a test file: it is not included", at,
                             f"its tests run with: triggerc test {shown}")
            return []
        if not os.path.isfile(full) and os.path.realpath(full) not in self.unsaved:
            here = os.path.dirname(full)
            itself = os.path.realpath(os.path.join(folder, os.path.basename(file)))
            try:  # what an include may name: not a test file, not the including file itself
                near = {n.removesuffix(".trg"): n for n in os.listdir(here) if n.endswith(".trg")
                        and not n.endswith("_test.trg") and os.path.realpath(os.path.join(here, n)) != itself}
            except OSError:
                near = {}
            # names compared without their common .trg, which would make 'nope.trg' close to 'tour.trg'
            stem = suggest(os.path.basename(written).removesuffix(".trg"), near)
            guess = near[stem] if stem is not None else None
            hint = meant(guess)
            # the fix writes the path with the file's name the hint offers (a string as fmt writes one)
            fix = (replace_fix(at, json.dumps(written, ensure_ascii=False),
                               json.dumps(os.path.join(os.path.dirname(written), guess), ensure_ascii=False))
                   if guess and not inc.path.raw else None)
            self.diags.error("TRG005", f"no such file: '{written}'", at,
                             (hint + " " if hint else "") + f"(the path is relative to {read_from})", fix=fix)
            return []
        return [(os.path.realpath(full), shown)]

    def read_file(self, real: str, name: str, inc: A.Include) -> list[A.Decl]:
        """The declarations of one included file (none if it was read before)."""
        if real in self.seen:
            return []
        self.seen.add(real)
        self.via[name] = inc.path.span if inc.path.span.file is None else \
            self.via.get(inc.path.span.file, inc.path.span)
        try:
            text, read_diags = self.read(real)
        except SourceFileError as e:
            self.diags.error("TRG005", f"cannot read '{inc.path.value}': {str(e).removeprefix(real + ': ')}",
                             inc.path.span, "check the file's permissions")
            return []
        self.diags.extend(replace(d, file=name) for d in read_diags)
        if text is None:
            return []
        self.files.append(A.IncludedFile(real, name, text, self.via[name]))
        module, parsed = self.parse_file(real, name, text)
        self.diags.extend(parsed.items)
        self.unparsed.update(module.unparsed)
        own = []
        for decl in A.in_file(module.decls, name):
            if decl.__class__ is A.TestBlock:
                self.tests.append(decl)
            else:
                own.append(decl)
        return self.expand(own, os.path.dirname(real), _folder(name), name)


def included_digest(modules: Iterable[A.Module]) -> str:
    """:func:`~triggerlang.sourcefile.inputs_digest` of what the includes of expanded
    modules read, as read (the texts compiled, not the files as they are now)."""
    modules = list(modules)
    return inputs_digest(((f.path, f.text.encode("utf-8", "surrogateescape")) for m in modules for f in m.included),
                         (g for m in modules for g in m.include_globs))
