"""What the commands share: the error exits, colour, --help examples, compiling and
finding the files a command is given (stdin, globs, folders, config files), and the
``--store`` option with the stores it opens.

``triggerc check`` imports this module, so it stays cheap: what a helper needs beyond
click is imported inside the helper.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator

import click

from ..diagnostics import render_text


class IntRange(click.IntRange):
    """click's IntRange named as what it reads: for ``abc`` click says "'abc' is not a valid
    integer range", as if a range were to be written; this says "is not a valid integer"
    (the bounds are in --help, and in the message of a number out of them)."""
    name = "integer"


def usage_error(msg: str) -> None:
    """One clear line on stderr and exit 2 (a missing file is a usage error, SPEC §8)."""
    click.echo(f"triggerc: error: {msg}", err=True)
    raise SystemExit(2)


def fail(msg: str, code: int = 1) -> None:
    click.echo(f"triggerc: error: {msg}", err=True)
    raise SystemExit(code)


COLOR_MODES = ("auto", "always", "never")


def _color(stream=None, mode: str = "auto") -> bool:
    """Whether to colour what goes to ``stream`` (default stdout).

    ``--color always|never`` decides; ``auto`` colours a terminal only: never when
    ``NO_COLOR`` is set (no-color.org) or ``TERM=dumb``, always when ``FORCE_COLOR`` is set
    (force-color.org; even through a pipe, as CI logs that render colour want). Each
    variable counts when it is set to a non-empty value; NO_COLOR wins over FORCE_COLOR.
    """
    if mode != "auto":
        return mode == "always"
    if os.environ.get("NO_COLOR"):
        return False
    if os.environ.get("FORCE_COLOR"):
        return True
    if os.environ.get("TERM") == "dumb":
        return False
    stream = stream or sys.stdout
    return hasattr(stream, "isatty") and stream.isatty()


def color_option(f):
    """``--color auto|always|never`` for a command that prints colour (see :func:`_color`)."""
    return click.option("--color", "color_mode", type=click.Choice(COLOR_MODES), default="auto", show_default=True,
                        help="Colour the output: auto (on a terminal, unless NO_COLOR is set or TERM=dumb; "
                             "FORCE_COLOR forces it), always or never.")(f)


class Seconds(click.FloatRange):
    """A number of seconds in a range, as ``click.FloatRange`` but for ``nan``, which every
    comparison lets through (``emit --timeout nan`` reached ``socket.settimeout`` and came
    out as a traceback)."""

    name = "seconds"

    def convert(self, value, param, ctx):
        try:
            v = float(value)  # (not click's text for text: "not a valid seconds")
        except (TypeError, ValueError):
            v = float("nan")
        if v != v:
            self.fail(f"{value!r} is not a number of seconds", param, ctx)
        return super().convert(v, param, ctx)


def examples(*lines: str) -> str:
    """A command's --help epilog: its examples, kept as written (click's \\b)."""
    return "\b\nExamples:\n" + "\n".join(f"  {line}" for line in lines)


def _unknown_event_warner():
    """``warn(source, type)``: once per pair, a warning on stderr when the catalogue does
    not know that event type (with the checker's did-you-mean); the command goes on."""
    from ..check.checker import trigger_problem

    seen: set[tuple[str, str]] = set()

    def warn(source: str, typ: str) -> None:
        if (source, typ) in seen:
            return
        seen.add((source, typ))
        problem = trigger_problem(source, typ)
        if problem is not None:
            _, message, hint, _ = problem
            click.echo(f"triggerc: warning: {source}.{typ}: {message}" + (f" ({hint})" if hint else ""), err=True)

    return warn


def _no_gc() -> None:
    """For a command that compiles and exits: no cyclic garbage collection. A compiled
    10,000-rule file is a million objects, none in a cycle (nothing for the collector to
    free), which every collection after the compile would scan again."""
    import gc

    gc.disable()


def _compile(path: str, warnings: bool = True, also: tuple[str, ...] = ()):
    """Compile a rules file (a missing or unreadable one is a usage error), with the files
    ``also`` names as if it included them. ``warnings=False`` for a command that shows
    diagnostics only when there are errors (they are then complete)."""
    from ..api import SourceFileError, compile_file

    try:
        return compile_file(path, warnings=warnings, also=also)
    except SourceFileError as e:
        usage_error(str(e))


def _program_files(files: tuple[str, ...], command: str) -> tuple[str, tuple[str, ...]]:
    """``(first, others)`` of the rules files given to a command that runs one program
    (``serve``, ``compile``): the others are read as if the first included them, as
    adnanh/webhook takes ``-hooks`` several times. Each must be a rules file (a ``.trg``
    file that exists; a manifest or ``-`` only alone)."""
    if len(files) == 1:
        return files[0], ()
    for f in files:
        if f == "-":
            usage_error(f"{command}: - (stdin) is a whole program: give it alone")
        if os.path.isdir(f):
            usage_error(f"{command}: {f} is a folder: include its files from a rules file: "
                        f"include \"{f.rstrip('/')}/*.trg\"")
        if not f.endswith(".trg") or f.endswith("_test.trg"):
            usage_error(f"{command}: {f} is not a rules file: several files are one program of .trg files"
                        + (" (a manifest is served alone)" if f.endswith(".json") else ""))
        if not os.path.isfile(f):
            usage_error(f"{f}: no such file")
    return files[0], files[1:]


def _utf8_stdout() -> None:
    """Machine-read output (json, sarif, github) in UTF-8 whatever the locale says: JSON is
    UTF-8 (RFC 8259), and in an ASCII or Latin-1 locale a character it cannot encode came
    out as Python's ``\xe9`` escape, which is not JSON."""
    enc = (getattr(sys.stdout, "encoding", None) or "").lower().replace("-", "").replace("_", "")
    if enc != "utf8" and hasattr(sys.stdout, "reconfigure"):
        try:
            sys.stdout.reconfigure(encoding="utf-8")
        except (ValueError, OSError):  # pragma: no cover - a detached or odd stream
            pass


def _configs(config_path: str | None, isolated: bool):
    """check's config files (triggerlang/config.py): each file's nearest, the one --config
    names, or none (--isolated); a config that cannot be used is a usage error (exit 2)."""
    from ..config import ConfigError, Configs

    if config_path is not None and isolated:
        usage_error("--config and --isolated go against each other: give one")
    try:
        return _ConfigsOrExit(Configs(config_path, isolated))
    except ConfigError as e:
        usage_error(str(e))


class _ConfigsOrExit:
    """``Configs`` whose config errors, found as files are looked up, exit 2 with the message."""

    def __init__(self, configs):
        self.configs = configs

    def for_file(self, path: str):
        return self._or_exit(self.configs.for_file, path)

    def for_folder(self, folder: str):
        return self._or_exit(self.configs.for_folder, folder)

    @staticmethod
    def _or_exit(find, arg):
        from ..config import ConfigError

        try:
            return find(arg)
        except ConfigError as e:
            usage_error(str(e))


def _compile_stdin(name: str | None, **kw):
    """The text on stdin, compiled as the file ``name`` (``--stdin-filename``) stands for."""
    from ..api import compile_bytes

    return compile_bytes(_read_stdin(), name, **kw)


def _read_stdin() -> bytes:
    from ..api import MAX_SOURCE_BYTES

    stream = getattr(sys.stdin, "buffer", None)
    data = stream.read(MAX_SOURCE_BYTES + 1) if stream is not None else sys.stdin.read().encode("utf-8")
    if len(data) > MAX_SOURCE_BYTES:
        usage_error(f"stdin: over {MAX_SOURCE_BYTES // 2**20} MiB, too large for a rules file")
    return data


SKIPPED_FOLDERS = frozenset({"node_modules", "__pycache__"})
GLOB_CHARS = frozenset("*?[")


def _expand(files, stdin_filename: str | None = None, stdin: bool = True, configs=None) -> list[str]:
    """Files as given, each once (``a.trg ./a.trg`` or a folder and a file in it check it
    once); a folder stands for the .trg files in it and in its subfolders (sorted), like
    ruff or black: hidden folders (``.git``, the ``.triggerlang`` state folder),
    virtualenvs (a folder with a ``pyvenv.cfg``), ``node_modules`` and ``__pycache__``
    are skipped, and symlinked folders are not followed. A path that does not exist but
    holds ``*``, ``?`` or ``[`` is a pattern (``**`` crosses folders), for when no shell
    expands it (a quoted argument, a CI step). ``-`` is stdin, at most once.
    ``configs`` (check's config files): what a folder or a pattern finds leaves out what
    the config's ``exclude`` matches; a file named as itself is kept, as in ruff."""
    from pathlib import Path

    if configs is None:
        configs = _configs(None, False)
    if stdin_filename is not None and "-" not in files:
        usage_error("--stdin-filename goes with '-' (the text on stdin) among the files")
    out: list[str] = []
    seen: set[str] = set()

    def add(f: str) -> None:
        key = os.path.realpath(f) if f != "-" else "-"
        if key not in seen:
            seen.add(key)
            out.append(f)

    for f in files:
        if not f:
            usage_error("an empty file name")
        if f == "-":
            if not stdin:
                usage_error("'-' (stdin) is not read by this command: give the files")
            add(f)
        elif os.path.isdir(f):
            found, skipped = [], 0
            for p in walk_rules(f, configs):
                if p is None:
                    skipped += 1
                else:
                    found.append(Path(p))
            if not found and not skipped:
                usage_error(f"{f}: no .trg files in this folder or its subfolders")
            for x in sorted(found, key=lambda x: x.parts):
                add(str(x))
        elif not os.path.lexists(f) and GLOB_CHARS & set(f):
            import glob

            matched = sorted(m for m in glob.glob(f, recursive=True) if os.path.isfile(m))
            if not matched:
                usage_error(f"{f}: no file matches this pattern")
            for m in matched:
                if not _excluded_on_the_way(m, configs):
                    add(m)
        else:
            add(f)
    return out


def walk_rules(top: str, configs) -> Iterator[str | None]:
    """The .trg files in the folder ``top`` and its subfolders, as a folder given to
    ``check`` stands for them (:func:`_expand`; the language server looks for the files
    that include a document the same way), in ``os.walk``'s order; None for each folder
    or file the config's ``exclude`` leaves out."""
    for folder, subfolders, names in os.walk(top):
        subfolders[:] = [d for d in subfolders if not d.startswith(".") and d not in SKIPPED_FOLDERS
                         and not os.path.exists(os.path.join(folder, d, "pyvenv.cfg"))]
        cfg = configs.for_folder(folder)
        kept = [d for d in subfolders if not cfg.excludes(os.path.join(folder, d))]
        yield from (None for _ in range(len(subfolders) - len(kept)))
        subfolders[:] = kept
        for n in names:
            if n.endswith(".trg") and not n.startswith("."):
                p = os.path.join(folder, n)
                yield None if cfg.excludes(p) else p


def _excluded_on_the_way(path: str, configs) -> bool:
    """Whether ``exclude`` leaves out a file a pattern found, or a folder on its way down
    from the config's folder (``vendor`` or ``vendor/**`` leave out vendor/a/b.trg)."""
    here = os.path.abspath(path)
    cfg = configs.for_file(here)
    while cfg.exclude and here != cfg.root and os.path.dirname(here) != here:
        if cfg.excludes(here):
            return True
        here = os.path.dirname(here)
    return False


def _report_and_exit_if_errors(c, color_mode: str = "auto") -> None:
    if not c.ok:
        color = _color(sys.stderr, color_mode)
        click.echo(render_text(c.diagnostics, c.sources, color=color), err=True, nl=False, color=color)
        raise SystemExit(1)


def _store_url_given(ctx, param, value: str | None) -> str | None:  # noqa: ARG001 - click callback
    """``--store``/``TRIGGERLANG_STORE`` without the white space around it (a URL kept in a
    secret file ends with a newline, which libpq would read as part of the database name)."""
    return value.strip() if value else value


def _store_option(help: str, **kw):  # noqa: A002 - click's own word
    """``--store URL`` (or ``TRIGGERLANG_STORE``), as every command that reads a shared store takes it."""
    return click.option("--store", "store_url", envvar="TRIGGERLANG_STORE", metavar="URL",
                        callback=_store_url_given, help=help, **kw)


def _check_store_url(url: str) -> None:
    from ..runtime.store import is_store_url, redact_url

    if not is_store_url(url):
        if url.startswith(("postgresql://", "postgres://")):
            usage_error("--store is not a valid URL: its host is malformed (an IPv6 address goes in [brackets])")
        usage_error(f"--store {redact_url(url)!r} is not a postgresql:// URL")
    try:
        import psycopg  # noqa: F401
    except ImportError:
        fail("--store needs the PostgreSQL driver: pip install 'triggerlang[postgres]'")


def _open_pg(store_url: str | None, **kw):
    from ..runtime.store import StoreError, open_store

    if not store_url:
        usage_error("give the store with --store URL or TRIGGERLANG_STORE")
    _check_store_url(store_url)
    try:
        return open_store(store_url, **kw)
    except StoreError as e:
        fail(str(e))


_STORE_OPT = _store_option("The postgresql:// store (or TRIGGERLANG_STORE).")


def _open_journal(state_dir: str, store_url: str | None = None):
    """The store ``runs``/``events`` read: ``--store URL``, else the SQLite journal of ``state_dir``."""
    from pathlib import Path

    from ..runtime.store import StoreError, open_store

    if store_url:
        return _open_pg(store_url, create=False)
    p = Path(state_dir)
    if not (p / "journal.sqlite3").exists():
        usage_error(f"no journal in {state_dir} (give the state folder with --state; "
                    "it is .triggerlang/ beside the rules file)")
    try:
        return open_store(None, p)
    except StoreError as e:
        fail(str(e))
