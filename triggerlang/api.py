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
from .diagnostics import Diagnostic, Diagnostics, Pos, Span
from .syntax import ast as A
from .syntax.parser import parse

if TYPE_CHECKING:
    from pathlib import Path


class SourceFileError(Exception):
    """A rules file that cannot be read at all (missing, a folder, no permission)."""


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


MAX_SOURCE_BYTES = 64 * 2**20
"""The largest rules file read (64 MiB; 10,000 rules take about 0.6 MiB): past it, a file is
not a rules file (``/dev/zero`` would be read until memory runs out)."""


def read_source(path: str | os.PathLike) -> tuple[str | None, Diagnostics]:
    """The text of a rules file, or None with a TRG004 diagnostic if it is not UTF-8.

    Raises SourceFileError when the file cannot be opened, or is over :data:`MAX_SOURCE_BYTES`.
    """
    diags = Diagnostics(str(path))
    try:
        if os.path.isdir(path):
            raise SourceFileError(f"{path} is a folder, not a rules file")
        with open(path, "rb") as fh:
            data = fh.read(MAX_SOURCE_BYTES + 1)
        if len(data) > MAX_SOURCE_BYTES:
            raise SourceFileError(f"{path}: over {MAX_SOURCE_BYTES // 2**20} MiB, too large for a rules file")
    except FileNotFoundError:
        raise SourceFileError(f"{path}: no such file") from None
    except PermissionError:
        raise SourceFileError(f"{path}: permission denied") from None
    except OSError as e:
        raise SourceFileError(f"{path}: {e.strerror or e}") from None
    return decode_source(data, diags)


def decode_source(data: bytes, diags: Diagnostics) -> tuple[str | None, Diagnostics]:
    """The text of a rules file's bytes, or None with a TRG004 diagnostic in ``diags`` if
    they are not UTF-8."""
    try:
        return data.decode("utf-8"), diags
    except UnicodeDecodeError as e:
        line = data[: e.start].count(b"\n") + 1
        col = e.start - (data.rfind(b"\n", 0, e.start) + 1) + 1
        diags.error("TRG004", f"the file is not valid UTF-8 (byte 0x{data[e.start]:02x} at offset {e.start})",
                    Span(Pos(line, col, e.start), Pos(line, col + 1, e.start + 1)),
                    "save the file as UTF-8")
        return None, diags


def companion_of(path: str | os.PathLike) -> str | os.PathLike | None:
    """For ``x_test.trg``, the ``x.trg`` beside it (if it exists), of the type given."""
    name = os.fspath(path)
    if name.endswith("_test.trg"):
        main = name[: -len("_test.trg")] + ".trg"
        if os.path.isfile(main):
            return main if isinstance(path, str) else type(path)(main)
    return None


def compile_text(text: str, file: str = "<input>", base_dir: str | None = None,
                 imported: Program | None = None, tests: bool = True, warnings: bool = True) -> Compiled:
    """``tests=False`` leaves test blocks unchecked (``serve`` ignores them, SPEC §10).
    ``warnings=False``: the warnings may be left out when there is no error
    (:func:`~triggerlang.check.checker.check`).

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
        program = check(module, diags, imported, base_dir, tests, warnings)
        manifest = None
        if not diags.has_errors:
            manifest = build_manifest(program, base_dir, os.path.basename(os.path.normpath(file)))
        return Compiled(file, text, module, program, manifest, suppress(diags.sorted(), {file: text}), {file: text})
    finally:
        if paused:
            gc.enable()


def compile_file(path: str | os.PathLike, display_name: str | None = None, tests: bool = True,
                 warnings: bool = True) -> Compiled:
    """Read, parse, check and compile one file (raises SourceFileError if unreadable)."""
    p = os.fspath(path)
    text, diags = read_source(p)
    return _compile_read(text, diags, p, display_name or str(path), tests, warnings)


def compile_bytes(data: bytes, path: str | None = None, tests: bool = True, warnings: bool = True) -> Compiled:
    """Parse, check and compile the bytes of a rules file that is not read from disk (what
    ``triggerc check -`` reads from stdin). ``path`` is the file they stand for: its name is
    the one diagnostics give, relative paths start in its folder and an ``X_test.trg`` sees
    its ``X.trg`` (without one: ``<stdin>``, from the working folder)."""
    name = path or "<stdin>"
    text, diags = decode_source(data, Diagnostics(name))
    return _compile_read(text, diags, path or os.path.join(os.getcwd(), name), name, tests, warnings)


def _compile_read(text: str | None, diags: Diagnostics, p: str, name: str, tests: bool, warnings: bool) -> Compiled:
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
                     warnings)
    c.main = main
    return c


def load_rules(path: Path, warn: Callable[[list], None] | None = None,
               data: bytes | None = None) -> tuple[dict, str | None]:
    """(manifest, rules text or None) from a .trg file or a manifest JSON, as ``serve`` and
    the dashboard load them (test blocks unchecked); StartError (runtime/engine.py) if bad.

    ``warn`` gets the warnings ``check`` would print for a .trg file (a manifest has none).
    ``data``: the file's bytes, already read (``serve`` compiles the very bytes it
    fingerprinted); None: read ``path``."""
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
        c = compile_file(path, tests=False) if data is None else compile_bytes(data, str(path), tests=False)
    except SourceFileError as e:
        raise StartError(str(e)) from None
    if not c.ok:
        raise StartError("the rules have errors:\n" + render_text(c.diagnostics, c.sources).rstrip())
    if warn is not None and c.diagnostics:
        warn(c.diagnostics)
    return c.manifest, c.text
