"""The public entry points: read, parse, check and compile a rules file.

``compile_file(path)`` runs the whole front end and returns a :class:`Compiled` with the
diagnostics of every phase; nothing here raises for a bad rules file. A file named
``X_test.trg`` next to ``X.trg`` sees that file's declarations (SPEC §10): X.trg is
compiled first (``Compiled.main``), its checked program is what the test file imports, and
``triggerc test`` runs the test file's tests against the rules of both. X.trg's own
diagnostics stay X.trg's: checking the test file does not repeat them.
"""

from __future__ import annotations

import gc
import os
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Callable

from .check.checker import Program, check
from .check.noqa import suppress
from .compile.manifest import build_manifest
from .diagnostics import Diagnostic, Diagnostics
from .sourcefile import MAX_SOURCE_BYTES, SourceFileError, decode_source, read_source  # (the API's names too)
from .syntax import ast as A
from .syntax.includes import expand_includes
from .syntax.parser import parse

if TYPE_CHECKING:
    from pathlib import Path


@dataclass
class Compiled:
    file: str
    text: str
    module: A.Module | None
    program: Program | None
    manifest: dict | None
    diagnostics: list[Diagnostic] = field(default_factory=list)
    sources: dict[str, str] = field(default_factory=dict)  # file -> text, for rendering
    main: "Compiled | None" = None  # for X_test.trg: X.trg, compiled (its rules are the ones tested)

    @property
    def ok(self) -> bool:
        return not any(d.is_error for d in self.diagnostics)


def companion_of(path: str | os.PathLike) -> str | os.PathLike | None:
    """For ``x_test.trg``, the ``x.trg`` beside it (if it exists), of the type given."""
    name = os.fspath(path)
    if name.endswith("_test.trg"):
        main = name[: -len("_test.trg")] + ".trg"
        if os.path.isfile(main):
            return main if isinstance(path, str) else type(path)(main)
    return None


def compile_text(text: str, file: str = "<input>", base_dir: str | None = None,
                 imported: Program | None = None, tests: bool = True, warnings: bool = True,
                 path: str | None = None, also: tuple[str, ...] = ()) -> Compiled:
    """``tests=False`` leaves test blocks unchecked (``serve`` ignores them, SPEC §10).
    ``path``: the file the text was read from, where its includes start (default: ``file``'s
    name in ``base_dir``); the files they read are in ``Compiled.sources`` and the program.
    ``warnings=False``: the warnings may be left out when there is no error
    (:func:`~triggerlang.check.checker.check`). ``also``: more rules files, read as if the
    text included them at its end (``serve a.trg b.trg``: one program).

    The cyclic garbage collector is paused meanwhile: the phases make a few objects per
    character of the file (a million for 10,000 rules), none of them in a cycle, and the
    collections they would set off rescan them all again and again (they doubled the time
    of a 10,000-rule compile).
    """
    paused = gc.isenabled()
    gc.disable()
    try:
        module, diags = parse(text, file)
        base_dir = base_dir or os.getcwd()
        module = expand_includes(module, diags, path or os.path.join(base_dir, os.path.basename(file)), also=also)
        program = check(module, diags, imported, base_dir, tests, warnings)
        manifest = None
        if not diags.has_errors:
            manifest = build_manifest(program, base_dir, os.path.basename(os.path.normpath(file)))
        sources = {file: text}
        sources.update((f.name, f.text) for f in module.included)
        # (a noqa comment in an included file leaves out that file's warnings)
        return Compiled(file, text, module, program, manifest, suppress(diags.sorted(), sources, file if warnings else None), sources)
    finally:
        if paused:
            gc.enable()


def compile_file(path: str | os.PathLike, display_name: str | None = None, tests: bool = True,
                 warnings: bool = True, also: tuple[str, ...] = ()) -> Compiled:
    """Read, parse, check and compile one file (raises SourceFileError if unreadable), with
    the files ``also`` names as if it included them (:func:`compile_text`)."""
    p = os.fspath(path)
    text, diags = read_source(p)
    return _compile_read(text, diags, p, display_name or str(path), tests, warnings, also)


def compile_bytes(data: bytes, path: str | None = None, tests: bool = True, warnings: bool = True,
                  also: tuple[str, ...] = ()) -> Compiled:
    """Parse, check and compile the bytes of a rules file that is not read from disk (what
    ``triggerc check -`` reads from stdin). ``path`` is the file they stand for: its name is
    the one diagnostics give, relative paths start in its folder and an ``X_test.trg`` sees
    its ``X.trg`` (without one: ``<stdin>``, from the working folder)."""
    name = path or "<stdin>"
    text, diags = decode_source(data, Diagnostics(name))
    return _compile_read(text, diags, path or os.path.join(os.getcwd(), name), name, tests, warnings, also)


def _compile_read(text: str | None, diags: Diagnostics, p: str, name: str, tests: bool, warnings: bool,
                  also: tuple[str, ...] = ()) -> Compiled:
    if text is None:
        return Compiled(name, "", None, None, None, diags.sorted(), {})
    main_file = companion_of(p)
    main = None
    if main_file is not None:
        try:
            main = compile_file(main_file, tests=tests, warnings=warnings)
        except SourceFileError:  # pragma: no cover - vanished between is_file() and open()
            main = None
    c = compile_text(text, name, os.path.dirname(os.path.realpath(p)), main.program if main else None, tests,
                     warnings, p, also)
    c.main = main
    return c


def load_rules(path: Path, warn: Callable[[list], None] | None = None,
               data: bytes | None = None, also: tuple[str, ...] = ()) -> tuple[dict, str | None]:
    """(manifest, rules text or None) from a .trg file or a manifest JSON, as ``serve`` and
    the dashboard load them (test blocks unchecked); StartError (runtime/engine.py) if bad.

    ``warn`` gets the warnings ``check`` would print for a .trg file (a manifest has none).
    ``data``: the file's bytes, already read (``serve`` compiles the very bytes it
    fingerprinted); None: read ``path``. ``also``: more rules files of the program
    (:func:`compile_text`)."""
    manifest, c = load_compiled(path, warn, data, also)
    return manifest, None if c is None else c.text


def load_compiled(path: Path, warn: Callable[[list], None] | None = None,
                  data: bytes | None = None, also: tuple[str, ...] = ()) -> tuple[dict, Compiled | None]:
    """:func:`load_rules` with the :class:`Compiled` of a .trg file (None for a manifest):
    ``serve`` fingerprints the texts its includes read as they were compiled, not read again."""
    import json

    from .compile.manifest import ManifestError, validate_manifest
    from .diagnostics import render_text
    from .runtime.engine import StartError

    if path.suffix == ".json":
        try:
            obj = json.loads(path.read_text(encoding="utf-8") if data is None else data.decode("utf-8"))
            return validate_manifest(obj), None
        except FileNotFoundError:
            raise StartError(f"{path}: no such file") from None
        except (OSError, UnicodeDecodeError) as e:
            raise StartError(f"{path}: cannot read: {e}") from None
        except json.JSONDecodeError as e:
            raise StartError(f"{path}: not valid JSON ({e.msg} at line {e.lineno})") from None
        except ManifestError as e:
            raise StartError(f"{path}: {e}") from None
    try:
        c = compile_file(path, tests=False, also=also) if data is None else \
            compile_bytes(data, str(path), tests=False, also=also)
    except SourceFileError as e:
        raise StartError(str(e)) from None
    if not c.ok:
        raise StartError("the rules have errors:\n" + render_text(c.diagnostics, c.sources).rstrip())
    if warn is not None and c.diagnostics:
        warn(c.diagnostics)
    return c.manifest, c
