"""``triggerc``: the click group. Argument handling only; the work happens in the phases.

Exit codes (SPEC §8): 0 success, 1 problems found (diagnostics, a bad event, a failed
check), 2 usage errors (a missing or unreadable file, a bad option).

Start-up matters (``triggerc check`` runs in CI on every commit), so server, watcher and
journal libraries are imported inside the commands that need them, never here.
"""

from __future__ import annotations

import json
import os
import re
import sys

import click

from . import __version__, defaults
from .correlation.state import GROUP_FILTERS
from .diagnostics import Diagnostic, render_github, render_json, render_sarif, render_text


def usage_error(msg: str) -> None:
    """One clear line on stderr and exit 2 (a missing file is a usage error, SPEC §8)."""
    click.echo(f"triggerc: error: {msg}", err=True)
    raise SystemExit(2)


def fail(msg: str, code: int = 1) -> None:
    click.echo(f"triggerc: error: {msg}", err=True)
    raise SystemExit(code)


def _server_url(url: str) -> str:
    """``--url`` as given, without its trailing slash; a usage error unless it is an
    http:// or https:// URL with a host (``localhost:8080`` alone would be read as a
    scheme, and urllib raises on some others)."""
    from urllib.parse import urlsplit

    try:
        parts = urlsplit(url)
        ok = parts.scheme in ("http", "https") and bool(parts.hostname)
    except ValueError:  # an unclosed [
        ok = False
    if not ok:
        usage_error(f"--url {url!r} is not an http:// or https:// URL (write http://HOST:PORT)")
    return url.rstrip("/")


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


def examples(*lines: str) -> str:
    """A command's --help epilog: its examples, kept as written (click's \\b)."""
    return "\b\nExamples:\n" + "\n".join(f"  {line}" for line in lines)


def _unknown_event_warner():
    """``warn(source, type)``: once per pair, a warning on stderr when the catalogue does
    not know that event type (with the checker's did-you-mean); the command goes on."""
    from .check.checker import trigger_problem

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
    from .api import SourceFileError, compile_file

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


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="triggerc")
def main() -> None:
    """triggerc: compile, check and run triggerlang rules (.trg files)."""
    _tolerant_output()


def _tolerant_output() -> None:
    """Print a lone surrogate (an event's JSON may say ``"\\ud800"``) as ``\\ud800``.

    In JSON output that is the very escape JSON uses; without it, ``match``, ``runs`` and
    ``events`` would die of a UnicodeEncodeError on such an event.
    """
    for stream in (sys.stdout, sys.stderr):
        if getattr(stream, "errors", None) in ("strict", "surrogateescape") and hasattr(stream, "reconfigure"):
            try:
                stream.reconfigure(errors="backslashreplace")
            except (ValueError, OSError):  # pragma: no cover - a detached or odd stream
                pass


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


# --------------------------------------------------------------------------- check

EXAMPLES_CHECK = examples(
    "triggerc check rules.trg",
    "triggerc check --strict .                 # every .trg under the folder",
    "triggerc check --format github rules/      # annotations in a GitHub Actions job",
    "triggerc check --format sarif --exit-zero . > triggerc.sarif",
    "triggerc check --format gitlab --exit-zero . > gl-code-quality.json",
    "triggerc check --statistics 'rules/**/*.trg'",
    "triggerc check --strict --ignore TRG209 rules/  # routes whose proxy checks the sender",
    "git show HEAD:rules.trg | triggerc check - --stdin-filename rules.trg",
    "triggerc check --fix rules/                # apply the safe fixes in place",
    "triggerc check --diff --unsafe-fixes rules.trg  # what --fix --unsafe-fixes would change",
    "triggerc check --config ci/triggerc.toml rules/  # one config file for every file",
    "triggerc check --isolated rules.trg          # no config file: the flags alone",
)


@main.command(epilog=EXAMPLES_CHECK)
@click.argument("files", nargs=-1, required=True)
@click.option("--format", "--output-format", "fmt",
              type=click.Choice(["text", "json", "github", "gitlab", "sarif"]), default="text", show_default=True,
              help="Output format for diagnostics (gitlab: a Code Quality report).")
@click.option("--strict", is_flag=True, help="Treat warnings as errors (exit 1 on any diagnostic).")
@click.option("--exit-zero", is_flag=True,
              help="Exit 0 even when there are problems (a usage error still exits 2): to report, not gate.")
@click.option("-q", "--quiet", is_flag=True, help="Print the diagnostics only, without the closing count.")
@click.option("--statistics", is_flag=True,
              help="Instead of the diagnostics, how many there are of each code (text or json).")
@click.option("--stdin-filename", metavar="PATH",
              help="With FILE '-': the file the text on stdin stands for (its name in diagnostics; relative "
                   "paths start in its folder).")
@click.option("--ignore", "ignore", multiple=True, metavar="CODES",
              help="Leave out these warnings: codes or prefixes, comma-separated or repeated (--ignore TRG209 "
                   "--ignore TRG1). Errors cannot be left out. A line's '# noqa: CODE' does it for that line.")
@click.option("--fix", is_flag=True,
              help="Apply the safe fixes in place (for '-': print the fixed text), then report what remains.")
@click.option("--unsafe-fixes", is_flag=True,
              help="With --fix or --diff, apply the unsafe fixes too (they change what a rule matches, or "
                   "remove a declaration).")
@click.option("--diff", is_flag=True,
              help="Print a unified diff of what --fix would change and write nothing (exit 1 if it would).")
@click.option("--config", "config_path", metavar="PATH",
              help="Use this config file (triggerc.toml, or a pyproject.toml with [tool.triggerc]) for every "
                   "file, instead of each file's nearest one.")
@click.option("--isolated", is_flag=True, help="Ignore all config files: the flags alone decide.")
@color_option
def check(files: tuple[str, ...], fmt: str, strict: bool, exit_zero: bool, quiet: bool, statistics: bool,
          stdin_filename: str | None, ignore: tuple[str, ...], fix: bool, unsafe_fixes: bool, diff: bool,
          config_path: str | None, isolated: bool, color_mode: str) -> None:
    """Report every problem in FILES: syntax, names, types, lints.

    A folder stands for the .trg files in it and in its subfolders; a quoted pattern
    ('rules/**/*.trg') for the files it matches; "-" for the text on stdin. Exit 0 when
    clean (warnings allowed unless --strict), 1 on problems, 2 on a usage error.
    --fix applies the fixes the diagnostics carry (see README, "Fixing what check finds").
    Each file's nearest triggerc.toml, .triggerc.toml or pyproject.toml [tool.triggerc]
    sets ignore, per-file-ignores, exclude and strict; the flags add to it (README,
    "Configuration").
    """
    if statistics and fmt not in ("text", "json"):
        usage_error(f"--statistics prints text or json, not {fmt}")
    if unsafe_fixes and not (fix or diff):
        usage_error("--unsafe-fixes goes with --fix or --diff")
    ignored: frozenset[str] = frozenset()
    if ignore:
        from .config import parse_codes

        ignored, problem = parse_codes(ignore)
        if problem:
            usage_error(problem)
    configs = _configs(config_path, isolated)
    if fmt != "text":
        _utf8_stdout()
    _no_gc()
    all_diags: list[Diagnostic] = []
    sources: dict[str, str] = {}
    fixed = hidden = 0
    changes: list[tuple[str, str, str]] = []  # (file, before, after) for --diff
    stdin_fixed: str | None = None
    strict_bad = False
    for f in _expand(files, stdin_filename, configs=configs):
        cfg = configs.for_file(f if f != "-" else stdin_filename or "-")
        if fix or diff:
            c, before, n, more = _fix(f, stdin_filename, unsafe_fixes, lambda d: cfg.keeps(d, ignored))
            fixed, hidden = fixed + n, hidden + more
            if c.text != before:
                changes.append((c.file, before, c.text))
                if fix and f != "-":
                    _write_fixed(f, c.text)
            if f == "-":
                stdin_fixed = c.text
        else:
            c = _compile_stdin(stdin_filename) if f == "-" else _compile(f)
        kept = [d for d in c.diagnostics if cfg.keeps(d, ignored)]
        strict_bad = strict_bad or bool((strict or cfg.strict) and kept)
        all_diags.extend(kept)
        sources.update(c.sources)
    if diff:
        _print_diff(changes, fixed, hidden)
        raise SystemExit(1 if changes else 0)
    if stdin_fixed is not None and fix:  # ruff's way: the fixed text on stdout, the rest on stderr
        click.echo(stdin_fixed, nl=False)
        _report_check(all_diags, sources, fmt, quiet, statistics, color_mode, err=True)
    else:
        _report_check(all_diags, sources, fmt, quiet, statistics, color_mode)
    if fix and not quiet and (fixed or hidden):
        click.echo(_fixed_line("Fixed", fixed, hidden), err=True)
    elif not fix and fmt == "text" and not quiet and not statistics and any(d.fix for d in all_diags):
        _print_fixable(all_diags)
    bad = any(d.is_error for d in all_diags) or strict_bad
    raise SystemExit(1 if bad and not exit_zero else 0)


def _configs(config_path: str | None, isolated: bool):
    """check's config files (triggerlang/config.py): each file's nearest, the one --config
    names, or none (--isolated); a config that cannot be used is a usage error (exit 2)."""
    from .config import ConfigError, Configs

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
        from .config import ConfigError

        try:
            return find(arg)
        except ConfigError as e:
            usage_error(str(e))


def _report_check(all_diags: list[Diagnostic], sources: dict[str, str], fmt: str, quiet: bool, statistics: bool,
                  color_mode: str, err: bool = False) -> None:
    """check's diagnostics in ``fmt`` (``err``: on stderr, where stdout has the fixed text)."""
    # a file two of FILES include (or one of FILES, included by another): its problems once
    all_diags = list(dict.fromkeys(all_diags))
    if statistics:
        _print_statistics(all_diags, fmt, err)
    elif fmt == "text":
        color = _color(mode=color_mode)
        out = render_text(all_diags, sources, color=color)
        if out:
            click.echo(out, nl=False, color=color, err=err)
    elif fmt == "json":
        click.echo(render_json(all_diags), nl=False, err=err)
    elif fmt == "github":
        click.echo(render_github(all_diags), nl=False, err=err)
    elif fmt == "gitlab":
        from .diagnostics import render_gitlab

        click.echo(render_gitlab(all_diags), nl=False, err=err)
    else:
        from .check.codedocs import rule_metadata

        click.echo(render_sarif(all_diags, {c: rule_metadata(c) for c in {d.code for d in all_diags}}), nl=False,
                   err=err)
    if fmt == "text" and all_diags and not quiet:
        errors = sum(d.is_error for d in all_diags)
        warnings = len(all_diags) - errors
        click.echo(f"{errors} error{'s' * (errors != 1)}, {warnings} warning{'s' * (warnings != 1)}", err=True)


def _print_fixable(diags: list[Diagnostic]) -> None:
    """ruff's ``[*] 2 fixable with the --fix option``: how many of the problems --fix would fix."""
    from .check.fixes import fixes_of

    by_file: dict[str, list[Diagnostic]] = {}
    for d in diags:
        by_file.setdefault(d.file, []).append(d)
    fixable = [fixes_of(ds, f, unsafe=True) for f, ds in by_file.items() if any(d.fix for d in ds)]
    safe = sum(fix.safe for fixes in fixable for fix in fixes)
    unsafe = sum(len(fixes) for fixes in fixable) - safe
    if safe:
        click.echo(f"{safe} fixable with --fix" + (f" ({unsafe} more with --unsafe-fixes)." if unsafe else "."),
                   err=True)
    elif unsafe:
        click.echo(f"{unsafe} fixable with --fix --unsafe-fixes.", err=True)


def _fix(f: str, stdin_filename: str | None, unsafe: bool, keep):
    """``(compiled after the fixes, text before, fixes applied, unsafe fixes left)`` for
    one of check's FILES (``-``: stdin), fixed until stable (check/fixes.py); the
    warnings ``keep`` leaves out (--ignore, the config) are not fixed either."""
    from .api import compile_bytes
    from .check.fixes import fix_until_stable, fixes_of, has_syntax_errors

    first = _compile_stdin(stdin_filename) if f == "-" else _compile(f)
    if first.module is None:  # not UTF-8: nothing to fix
        return first, first.text, 0, 0
    path = stdin_filename if f == "-" else f
    last = [first]

    def recheck(text: str) -> list[Diagnostic]:
        if text != last[0].text:
            last[0] = compile_bytes(text.encode("utf-8"), path)
        return [d for d in last[0].diagnostics if keep(d)]

    text, n, diags = fix_until_stable(first.text, recheck, first.file, unsafe)
    if has_syntax_errors(diags, first.file):
        click.echo(f"triggerc: {first.file}: not fixed: it has syntax errors", err=True)
    more = 0 if unsafe else len(fixes_of(diags, first.file, unsafe=True)) - len(fixes_of(diags, first.file))
    return last[0], first.text, n, more


def _write_fixed(path: str, text: str) -> None:
    try:
        with open(path, "wb") as fh:  # (bytes: the file's line ends as they were)
            fh.write(text.encode("utf-8"))
    except OSError as e:
        usage_error(f"{path}: cannot write the fixes: {e.strerror or e}")


def _print_diff(changes: list[tuple[str, str, str]], fixed: int, hidden: int) -> None:
    """``check --diff``: a unified diff per file --fix would change, and a count on stderr."""
    import difflib  # (only here: check's start stays light)

    for file, before, after in changes:  # (named as fmt --diff names them: `--- /tmp/x.trg`, never `a//tmp/x.trg`)
        click.echo("".join(difflib.unified_diff(before.splitlines(keepends=True), after.splitlines(keepends=True),
                                                file, file)), nl=False)
    click.echo(_fixed_line("Would fix", fixed, hidden), err=True)


def _fixed_line(verb: str, fixed: int, hidden: int) -> str:
    """``Fixed 2 problems (1 more fix with --unsafe-fixes).``, check --fix's closing line."""
    fixes = f"fix{'es' * (hidden != 1)}"
    if not fixed and verb == "Fixed":
        return f"No problem fixed ({hidden} unsafe {fixes} available with --unsafe-fixes)."
    more = f" ({hidden} more {fixes} with --unsafe-fixes)" if hidden else ""
    return f"{verb} {fixed} problem{'s' * (fixed != 1)}{more}."


def _print_statistics(diags: list[Diagnostic], fmt: str, err: bool = False) -> None:
    """``check --statistics``: a line per code, the most frequent first (ruff's layout):
    count, code, severity and what the code is about."""
    from collections import Counter

    from .check.checker import CODES

    counts = Counter((d.code, d.severity) for d in diags)
    rows = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
    if fmt == "json":
        click.echo(json.dumps([{"code": code, "severity": sev, "count": n, "title": CODES.get(code, "")}
                               for (code, sev), n in rows], indent=2), err=err)
        return
    width = max((len(str(n)) for n in counts.values()), default=1)
    for (code, sev), n in rows:
        click.echo(f"{n:>{width}}  {code}  {sev:<7}  {CODES.get(code, '')}", err=err)


EXAMPLES_EXPLAIN = examples(
    "triggerc explain TRG307",
    "triggerc explain trg209 TRG105",
    "triggerc explain --all --format json | jq '.[] | select(.severity == \"warning\") | .code'",
)


@main.command(epilog=EXAMPLES_EXPLAIN)
@click.argument("codes", nargs=-1)
@click.option("--all", "all_codes", is_flag=True, help="Every code.")
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True,
              help="text: each code's entry of docs/diagnostics.md (Markdown); json: a list of objects.")
def explain(codes: tuple[str, ...], all_codes: bool, fmt: str) -> None:
    """What a diagnostic code means, how to fix it, an example and what check says about
    it (as rustc --explain and ruff rule do). Exit 0, 2 for a code that is not one."""
    from .check.checker import CODES
    from .check.codedocs import CODE_DOCS, DOCS_URL, code_section, example_output
    from .diagnostics import suggest

    if all_codes == bool(codes):
        usage_error("give one or more codes (TRG307), or --all")
    wanted = list(CODES) if all_codes else []
    for given in codes:
        code = given.strip().upper()
        if code.isdigit():
            code = f"TRG{int(code):03d}"
        if code not in CODES:
            guess = suggest(code, list(CODES))
            usage_error(f"{given}: no such code" + (f" (did you mean {guess}?)" if guess else "") +
                        "; triggerc explain --all lists them")
        wanted.append(code)
    if fmt == "json":
        _utf8_stdout()
        click.echo(json.dumps([{"code": c, "title": CODES[c], "severity": CODE_DOCS[c].severity,
                                "warning_cases": CODE_DOCS[c].warning_cases or None,
                                "explanation": CODE_DOCS[c].explanation, "example": CODE_DOCS[c].example,
                                "output": example_output(c), "url": f"{DOCS_URL}#{c.lower()}"}
                               for c in wanted], indent=2, ensure_ascii=False))
        return
    click.echo("\n\n".join("\n".join([f"# {c}", ""] + _wrapped(code_section(c))) for c in wanted))


def _wrapped(lines: list[str], width: int = 88) -> list[str]:
    """Markdown lines with the prose wrapped for a terminal; code blocks as they are."""
    import textwrap

    out, code = [], False
    for line in lines:
        code ^= line.startswith("```")
        out.extend([line] if code or line.startswith("```") or len(line) <= width else
                   textwrap.wrap(line, width, break_long_words=False, break_on_hyphens=False))
    return out


def _compile_stdin(name: str | None, **kw):
    """The text on stdin, compiled as the file ``name`` (``--stdin-filename``) stands for."""
    from .api import compile_bytes

    return compile_bytes(_read_stdin(), name, **kw)


def _read_stdin() -> bytes:
    from .api import MAX_SOURCE_BYTES

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

    def excluded(path: str, folder: str) -> bool:
        return configs.for_folder(folder).excludes(path)

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
            for folder, subfolders, names in os.walk(Path(f)):
                subfolders[:] = [d for d in subfolders if not d.startswith(".") and d not in SKIPPED_FOLDERS
                                 and not os.path.exists(os.path.join(folder, d, "pyvenv.cfg"))]
                kept = [d for d in subfolders if not excluded(os.path.join(folder, d), folder)]
                trg = [n for n in names if n.endswith(".trg") and not n.startswith(".")]
                here = [n for n in trg if not excluded(os.path.join(folder, n), folder)]
                skipped += len(subfolders) - len(kept) + len(trg) - len(here)
                subfolders[:] = kept
                found.extend(Path(folder, n) for n in here)
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


# --------------------------------------------------------------------------- compile

EXAMPLES_COMPILE = examples(
    "triggerc compile rules.trg -o manifest.json",
    "triggerc compile main.trg hooks.trg -o manifest.json   # one program of two files",
    "generate-rules | triggerc compile - > manifest.json",
    "triggerc serve manifest.json",
)


@main.command("compile", epilog=EXAMPLES_COMPILE)
@click.argument("files", metavar="FILE...", nargs=-1, required=True)
@click.option("-o", "--output", type=click.Path(dir_okay=False, writable=True), help="Write the manifest here (default stdout).")
@color_option
def compile_cmd(files: tuple[str, ...], output: str | None, color_mode: str) -> None:
    """Write the JSON listener manifest of FILE ("-": the text on stdin, with relative paths
    from the working folder). Several files are one program, as if the first included the
    others (as serve runs them)."""
    from pathlib import Path

    from .compile.manifest import dumps

    _no_gc()
    file, also = _program_files(files, "compile")
    for f in files:
        if output and f != "-" and os.path.exists(output) and os.path.samefile(output, f):
            usage_error(f"-o {output} is the rules file itself{f' ({f})' if len(files) > 1 else ''}: "
                        "the manifest would overwrite it")
    # (diagnostics are shown only when there are errors)
    c = _compile_stdin(None, warnings=False) if file == "-" else _compile(file, warnings=False, also=also)
    _report_and_exit_if_errors(c, color_mode)
    text = dumps(c.manifest)
    if output:
        try:
            Path(output).write_text(text, encoding="utf-8")
        except OSError as e:
            usage_error(f"cannot write {output}: {e.strerror or e}")
    else:
        click.echo(text, nl=False)


# --------------------------------------------------------------------------- convert

EXAMPLES_CONVERT = examples(
    "triggerc convert webhook hooks.json -o hooks.trg",
    "triggerc convert webhook hooks.json | less",
    "yq -o json hooks.yaml | triggerc convert webhook - -o hooks.trg",
)


@main.group("convert", epilog=EXAMPLES_CONVERT)
def convert_group() -> None:
    """Turn another tool's configuration into a rules file."""


@convert_group.command("webhook", epilog=EXAMPLES_CONVERT)
@click.argument("hooks_file", metavar="HOOKS.json")
@click.option("-o", "--output", type=click.Path(dir_okay=False), help="Write the rules here (default stdout).")
@click.option("--url-prefix", default="hooks", show_default=True, metavar="PREFIX",
              help="webhook's -urlprefix: each hook's route is /PREFIX/ID (\"\" for /ID).")
def convert_webhook_cmd(hooks_file: str, output: str | None, url_prefix: str) -> None:
    """Convert an adnanh/webhook hooks file (JSON; "-": stdin) into rules, one per hook.

    Secrets become `secret NAME = env "VAR"` (stderr names the variables to set, never a
    value); what cannot be carried over gets a `# TODO(convert):` comment at its hook and a
    warning on stderr. Exit 0 when everything converted, 1 when something was not carried
    over, 2 on a usage error (a file that is not JSON, or not a list of hooks).
    """
    from pathlib import Path

    from .convert import convert_webhook

    if output and hooks_file != "-" and os.path.exists(output) and os.path.samefile(output, hooks_file):
        usage_error(f"-o {output} is the hooks file itself: the rules would overwrite it")
    if hooks_file == "-":
        data, name = _read_stdin(), "<stdin>"
    else:
        try:
            data, name = Path(hooks_file).read_bytes(), hooks_file
        except OSError as e:
            usage_error(f"cannot read {hooks_file}: {e.strerror or e}")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        usage_error(f"{name}: not UTF-8 text (byte {e.start})")
    result = convert_webhook(text, name, url_prefix)
    if result.error:
        usage_error(result.error)
    if output:
        try:
            Path(output).write_text(result.text, encoding="utf-8")
        except OSError as e:
            usage_error(f"cannot write {output}: {e.strerror or e}")
    else:
        click.echo(result.text, nl=False)
    for var, hooks in result.secrets.items():
        click.echo(f"triggerc: set {var} to the secret of hook{'s' * (len(hooks) > 1)} {', '.join(hooks)}", err=True)
    for note in result.notes:
        click.echo(f"triggerc: note: {note}", err=True)
    for p in result.problems:
        click.echo(f"triggerc: warning: {p.line(name)}", err=True)
    raise SystemExit(1 if result.problems else 0)


# --------------------------------------------------------------------------- match

EXAMPLES_MATCH = examples(
    "triggerc match rules.trg event.json --explain",
    "triggerc match rules.trg events.jsonl     # one result line per event",
    "tail -f events.jsonl | triggerc match rules.trg - --jsonl",
    "triggerc match rules.trg delivery.json --github push",
)


def _provider_options(command):
    """``--PROVIDER EVENT`` for every built-in provider (the registry's list of names: no
    provider module is imported for it), plus ``--provider NAME --event EVENT`` for any
    registered one, a plug-in's included."""
    from .providers import BUILTIN

    for name in reversed(BUILTIN):
        command = click.option(f"--{name}", f"provider_{name}", metavar="EVENT", default=None,
                               help=f"EVENT.json is a raw {name} payload of this event (as its event header names it).")(command)
    command = click.option("--event", "provider_event", metavar="EVENT",
                           help="With --provider: the event name (its event header's value).")(command)
    return click.option("--provider", "provider_name", metavar="NAME",
                        help="EVENT.json is a raw payload of this webhook provider (a plug-in's too).")(command)


@main.command(epilog=EXAMPLES_MATCH)
@click.argument("file")
@click.argument("event_file", metavar="EVENT.json")
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True)
@click.option("--explain", is_flag=True, help="Also say why each other rule of the event's source did not match.")
@click.option("--jsonl", is_flag=True, help="EVENT.json holds one event a line (implied by a .jsonl name): "
                                            "with -, a stream of events on stdin, each answered as it comes.")
@_provider_options
@color_option
def match(file: str, event_file: str, fmt: str, explain: bool, jsonl: bool, provider_name: str | None,
          provider_event: str | None, color_mode: str, **shorthands: str | None) -> None:
    """Dry run: which rules of FILE an event matches, and the runs they would create.

    EVENT.json is {"source", "type", "data"} ("-" reads stdin). A .jsonl file (or any, with
    --jsonl; "- --jsonl" for stdin) holds one event per line and gets one result line per
    event, in order (with --explain, the reasons follow each line, indented). With --github EVENT,
    --gitlab EVENT... (or --provider NAME --event EVENT) it is that provider's raw payload.
    With correlation rules, the lines share one state: an event's "time" is its arrival,
    and a {"wait": "10m"} line moves the clock (reporting what expires or fires).
    """
    import gc

    from .compile.cache import default_cache_dir, load_or_compile
    from .compile.index import build_matcher
    from .dryrun import DryRun, EventInputError, batch_json, batch_names, read_events

    if fmt == "json":
        _utf8_stdout()
    warn_unknown = _unknown_event_warner()
    chosen = [(k[len("provider_"):], v) for k, v in shorthands.items() if v is not None]
    if provider_name is not None:
        chosen.append((provider_name, provider_event or ""))
    elif provider_event is not None:
        usage_error("--event goes with --provider NAME")
    if len(chosen) > 1:
        usage_error(" and ".join(f"--{n}" for n, _ in chosen) + " cannot be used together")
    provider = chosen[0] if chosen else None
    if provider is not None:
        from .providers import get_provider, provider_names

        if get_provider(provider[0]) is None:
            usage_error(f"unknown provider {provider[0]!r} (one of {', '.join(provider_names())})")
    # a compiled file is cached (compile/cache.py): 10,000 rules load in a fraction of a second
    # the second time; the collector is paused while the rules' many small objects are made,
    # then they are frozen out of its way for the event loop
    gc.disable()
    try:
        c = load_or_compile(file, default_cache_dir(), warnings=False)  # (shown only with an error)
    except Exception as e:  # the parser is imported only when the cache misses
        from .api import SourceFileError

        if not isinstance(e, SourceFileError):
            raise
        usage_error(str(e))
    _report_and_exit_if_errors(c, color_mode)
    dry = DryRun(c.manifest, build_matcher(c.manifest["rules"]))
    gc.freeze()
    gc.enable()
    batch = jsonl or event_file.endswith(".jsonl")
    out = sys.stdout
    write = out.write
    if dry.correlating:  # correlation rules (SPEC §11.5): one state and one clock for every line
        from .dryrun import run_correlated

        try:
            any_bad = run_correlated(dry, event_file, provider, batch, fmt, explain, write)
        except EventInputError as e:
            fail(str(e))
        out.flush()
        raise SystemExit(1 if any_bad else 0)
    if batch and not explain:  # the batch loops: no Event, nothing the line does not show
        try:
            if fmt == "text":
                any_bad = batch_names(event_file, provider, dry.matcher, write, None if provider else warn_unknown)
            else:
                any_bad = batch_json(event_file, provider, dry, write, None if provider else warn_unknown)
        except EventInputError as e:
            fail(str(e))
        out.flush()
        raise SystemExit(1 if any_bad else 0)
    try:
        stream = read_events(event_file, provider, batch)
    except EventInputError as e:
        fail(str(e))
    any_bad = False
    for item in stream:
        if isinstance(item, EventInputError):
            any_bad = True
            if batch:
                write(json.dumps({"error": str(item)}) + "\n")
                continue
            fail(str(item))
        for ev in item:  # a raw payload's too: the type its normaliser gave it, not the header's words
            warn_unknown(ev.source, ev.type)
        result = dry.run(item, explain)
        if fmt == "json":
            write(json.dumps(result, ensure_ascii=False, separators=(",", ":") if batch else None,
                             indent=None if batch else 2) + "\n")
        else:
            write(dry.text(result, batch))
    out.flush()
    raise SystemExit(1 if any_bad else 0)


# --------------------------------------------------------------------------- fmt

EXAMPLES_FMT = examples(
    "triggerc fmt rules.trg",
    "triggerc fmt --check .   # in CI",
    "triggerc fmt --diff rules.trg",
    "triggerc fmt - < rules.trg   # the formatted text on stdout",
)


@main.command("fmt", epilog=EXAMPLES_FMT)
@click.argument("files", nargs=-1, required=True)
@click.option("--check", "check_only", is_flag=True, help="Do not write; exit 1 if any file would change.")
@click.option("--diff", is_flag=True, help="Print a unified diff of the changes instead of writing.")
@click.option("-q", "--quiet", is_flag=True, help="Print nothing but problems (and --diff's diff).")
@click.option("--stdin-filename", metavar="PATH", help="With FILE '-': the file the text on stdin stands for.")
@color_option
def fmt_cmd(files: tuple[str, ...], check_only: bool, diff: bool, quiet: bool, stdin_filename: str | None,
            color_mode: str) -> None:
    """Rewrite FILES in the canonical layout (or --check that they are).

    "-" formats the text on stdin and prints it on stdout. Exit 1 when a file would change
    (--check, --diff) or has syntax errors (it is then left as it is), 2 on a usage error
    or a file that cannot be written.
    """
    import difflib
    from pathlib import Path

    from .api import SourceFileError, decode_source, read_source
    from .diagnostics import Diagnostics
    from .fmt import format_text

    def say(msg: str, err: bool = False) -> None:
        if not quiet:
            click.echo(msg, err=err)

    changed, broken, unwritable = [], 0, False
    for f in _expand(files, stdin_filename):
        name = (stdin_filename or "<stdin>") if f == "-" else f
        if f == "-":
            text, diags = decode_source(_read_stdin(), Diagnostics(name))
        else:
            try:
                text, diags = read_source(f)
            except SourceFileError as e:
                usage_error(str(e))
        if text is None:
            click.echo(render_text(diags.sorted()), err=True, nl=False)
            broken += 1
            continue
        new, diags = format_text(text, name)
        if new is None:
            color = _color(sys.stderr, color_mode)
            click.echo(render_text(diags.sorted(), {name: text}, color=color), err=True, nl=False, color=color)
            click.echo(f"{name}: not formatted: fix the syntax errors first", err=True)
            broken += 1
            continue
        if f == "-" and not (check_only or diff):
            click.echo(new, nl=False)  # a filter: the text out, changed or not
        if new == text:
            continue
        changed.append(name)
        if diff:
            click.echo("".join(difflib.unified_diff(text.splitlines(True), new.splitlines(True), name, name)),
                       nl=False)
        elif check_only:
            say(f"would reformat {name}")
        elif f != "-":
            try:
                Path(f).write_text(new, encoding="utf-8")
            except OSError as e:  # a read-only file or file system: said, and the other files go on
                click.echo(f"triggerc: error: cannot write {name}: {e.strerror or e}", err=True)
                unwritable = True
                continue
            say(f"reformatted {name}")
    if check_only or diff:
        n = len(changed)
        summary = ([f"{n} file{'s' * (n != 1)} would be reformatted"] if n else []) + \
            ([f"{broken} file{'s' * (broken != 1)} could not be formatted (syntax errors)"] if broken else [])
        say(", ".join(summary) or "all files formatted", err=True)
        raise SystemExit(1 if (changed or broken) else 0)
    raise SystemExit(2 if unwritable else 1 if broken else 0)


# --------------------------------------------------------------------------- test

EXAMPLES_TEST = examples(
    "triggerc test rules.trg          # also runs rules_test.trg beside it",
    "triggerc test examples/ -v",
    "triggerc test . -k 'push to main and not bots'",
    "triggerc test 'deploy.trg::a push to main deploys'   # one test, by its name",
)


@main.command("test", epilog=EXAMPLES_TEST)
@click.argument("files", nargs=-1, required=True)
@click.option("--format", "fmt", type=click.Choice(["text", "json", "github", "junit"]), default="text",
              show_default=True, help="text; json; github: annotations on the failed expects' lines of a pull "
                                      "request; junit: JUnit XML, the test report CI systems read.")
@click.option("-v", "--verbose", is_flag=True, help="Also list the tests that pass.")
@click.option("-k", "keyword", metavar="EXPR",
              help="Only the tests whose name EXPR selects, as pytest's -k: words (a part of the name, any "
                   "case) with and, or, not, parentheses; a phrase in double quotes may hold a keyword.")
@color_option
def test_cmd(files: tuple[str, ...], fmt: str, verbose: bool, keyword: str | None, color_mode: str) -> None:
    """Run the test blocks of FILES (a folder: every .trg file in it).

    A rules file X.trg brings its companion X_test.trg along; FILE::NAME runs only the test
    of FILE (or its companion) named NAME. Prints each failure with its place and reason,
    then "N passed, M failed". Exit 0 when all pass, 1 otherwise (and when -k selects no
    test), 2 on usage errors (and a NAME no test has).
    """
    from .api import SourceFileError
    from .testing import Selection, render_github as tests_github, render_json as tests_json, \
        render_junit as tests_junit, render_text as tests_text, run_file

    select = None
    if keyword is not None:
        try:
            select = Selection(keyword)
        except ValueError as e:
            usage_error(str(e))
    if fmt != "text":
        _utf8_stdout()
    reports = []
    named: list = []
    for f, chosen, sels in _test_targets(files, select):
        try:
            reports.append(run_file(f, select=chosen))
        except SourceFileError as e:
            usage_error(str(e))
        for sel in sels:
            sel.broken = sel.broken or bool(reports[-1].errors)
            if sel not in named:
                named.append(sel)
    _no_such_tests(named)
    errors, sources = [], {}
    for rep in reports:
        sources.update(rep.sources)
        errors.extend(d for d in rep.errors if d not in errors)
    if errors and fmt == "text":
        color = _color(sys.stderr, color_mode)
        click.echo(render_text(errors, sources, color=color), err=True, nl=False, color=color)
        for rep in reports:
            if rep.errors:
                click.echo(f"{rep.file}: tests not run: fix the errors first", err=True)
    render = {"json": tests_json, "github": tests_github, "junit": tests_junit}.get(fmt)
    click.echo(render(reports) if render is not None else tests_text(reports, verbose), nl=False)
    ran = any(rep.results for rep in reports)
    if select is not None and not ran and not errors:
        # a -k that selects nothing fails (pytest's "no tests ran"): a typo must not pass CI
        click.echo(f"no test matches -k {keyword!r} ({sum(rep.deselected for rep in reports)} deselected)",
                   err=True)
        raise SystemExit(1)
    if fmt == "text" and not ran and not errors:
        click.echo("no tests found: write test blocks (SPEC §10) in these files or in X_test.trg beside them",
                   err=True)
    raise SystemExit(0 if all(rep.ok for rep in reports) else 1)


class _NamedTests:
    """One ``FILE::NAME`` of ``triggerc test``'s command line: the test named exactly so
    (and selected by -k too, when given). It notes every name it was asked about in the
    files the argument stands for, so a name no test has is reported
    (:func:`_no_such_tests`)."""

    def __init__(self, arg: str, name: str, keyword) -> None:
        self.arg, self.name, self.keyword = arg, name, keyword
        self.asked: set[str] = set()
        self.broken = False  # a file of the argument had errors: its tests did not run

    def __call__(self, name: str) -> bool:
        self.asked.add(name)
        return name == self.name and (self.keyword is None or self.keyword(name))


def _test_targets(args, keyword) -> list[tuple[str, object, list[_NamedTests]]]:
    """The files ``triggerc test`` runs, each with its selection (a callable on a test's
    name; ``keyword``, the -k selection, or None: every test) and the ``FILE::NAME``
    arguments that chose it. ``FILE::NAME`` names one test, as pytest's node ids do (the
    name exactly as written after ``test``; quote the argument, names have spaces); the
    file's companion runs with the same name, so ``rules.trg::NAME`` finds a test kept in
    rules_test.trg, and a folder stands for its files. An argument that exists as a path is
    a path, even with ``::`` in it. A file also given whole runs whole (under -k)."""
    order: list[str] = []
    whole: set[str] = set()
    named: dict[str, list[_NamedTests]] = {}
    for arg in args:
        sel = None
        if "::" in arg and not os.path.lexists(arg):
            arg, name = arg.split("::", 1)
            if not name:
                usage_error(f"{arg}::: a test name goes after '::'")
            sel = _NamedTests(arg, name, keyword)
        for f in _with_companions(_expand((arg,), stdin=False)):
            key = os.path.realpath(f)
            if key not in named:
                order.append(f)
                named[key] = []
            if sel is None:
                whole.add(key)
            else:
                named[key].append(sel)
    out = []
    for f in order:
        key = os.path.realpath(f)
        sels = named[key]
        if not sels:
            out.append((f, keyword, sels))
            continue

        def chosen(name: str, sels=sels, all_=key in whole) -> bool:
            hits = [sel(name) for sel in sels]  # every one notes the name
            return (keyword is None or keyword(name)) if all_ else any(hits)

        out.append((f, chosen, sels))
    return out


def _no_such_tests(named: list[_NamedTests]) -> None:
    """A ``FILE::NAME`` whose NAME no test of FILE (or its companion) has is a usage error
    (exit 2), as pytest's "not found": a typo must not pass CI. A file with errors ran no
    test, so its names are not judged."""
    for sel in named:
        if sel.name not in sel.asked and not sel.broken:
            have = ", ".join(repr(n) for n in sorted(sel.asked)) or "none"
            usage_error(f"{sel.arg}: no test named {sel.name!r} in it or its companion (its tests: {have})")


def _with_companions(files: list[str]) -> list[str]:
    """The files, each followed by its X_test.trg companion when it has one (no repeats)."""
    from pathlib import Path

    out: list[str] = []
    seen: set[Path] = set()
    for f in files:
        for p in (Path(f), Path(f).with_name(Path(f).stem + "_test.trg")):
            key = p.resolve()
            if key in seen or (p != Path(f) and (f.endswith("_test.trg") or not p.is_file())):
                continue
            seen.add(key)
            out.append(str(p) if p != Path(f) else f)
    return out


# --------------------------------------------------------------------------- serve

def _store_url_given(ctx, param, value: str | None) -> str | None:  # noqa: ARG001 - click callback
    """``--store``/``TRIGGERLANG_STORE`` without the white space around it (a URL kept in a
    secret file ends with a newline, which libpq would read as part of the database name)."""
    return value.strip() if value else value


def _store_option(help: str, **kw):  # noqa: A002 - click's own word
    """``--store URL`` (or ``TRIGGERLANG_STORE``), as every command that reads a shared store takes it."""
    return click.option("--store", "store_url", envvar="TRIGGERLANG_STORE", metavar="URL",
                        callback=_store_url_given, help=help, **kw)


EXAMPLES_SERVE = examples(
    "triggerc serve rules.trg",
    "triggerc serve main.trg hooks.trg   # one program of two files",
    "triggerc serve rules.trg --port 9000 --dashboard",
    "triggerc serve rules.trg --host 0.0.0.0 --port 8443 --tls-cert fullchain.pem --tls-key privkey.pem",
    "triggerc serve rules.trg --log-format json --grace 30",
    "TRIGGERLANG_STORE=postgresql://trg@db/trg triggerc serve rules.trg --workers 0   # an ingest node",
)


@main.command(epilog=EXAMPLES_SERVE)
@click.argument("rules", metavar="FILE...|MANIFEST", nargs=-1, required=True)
@click.option("--host", help="Address the HTTP listener binds (default 127.0.0.1, loopback only).")
@click.option("--port", type=click.IntRange(0, 65535), help="Port of the HTTP listener (default 8080).")
# No file_okay=False here: a state path that is a file is a start error (exit 1, one line
# from the journal), like a port in use, not a usage error.
@click.option("--state", "state_dir", type=click.Path(), help="State folder (default .triggerlang/ beside the rules).")
@click.option("--no-reload", is_flag=True, help="Do not reload the rules when the file changes.")
@click.option("--tls-cert", type=click.Path(dir_okay=False), help="Serve HTTPS: PEM certificate chain (with --tls-key).")
@click.option("--tls-key", type=click.Path(dir_okay=False), help="Serve HTTPS: PEM private key (with --tls-cert).")
@click.option("--grace", type=float, default=10.0, show_default=True, help="Seconds running runs get to finish on SIGINT/SIGTERM.")
@click.option("--http", "force_http", is_flag=True, help="Start the HTTP listener even if no rule needs it (for triggerc emit).")
@click.option("--start", "start_rules", multiple=True, metavar="RULE",
              help="Run RULE once at start, as if its trigger had fired (watchexec's run at start: a dev "
                   "server under busy restart); repeatable. Not with --store.")
@click.option("--dashboard", is_flag=True, help="Serve the dashboard at /dashboard on the HTTP listener.")
@click.option("--token", "dashboard_token", envvar="TRIGGERLANG_DASHBOARD_TOKEN", help="Bearer token the dashboard requires (or TRIGGERLANG_DASHBOARD_TOKEN).")
@click.option("-v", "--verbose", is_flag=True, help="Log every request and event.")
@_store_option("A postgresql:// store shared by several nodes (SPEC §12): this serve is an ingest node. "
               "Also read from TRIGGERLANG_STORE.")
@click.option("--workers", type=click.IntRange(0, 1024), default=4, show_default=True,
              help="With --store: slots of the embedded worker; 0 makes this node ingest only.")
@click.option("--migrate", is_flag=True, help="With --store: bring an older store schema up to date first.")
@click.option("--lease", type=click.FloatRange(0.2, 3600), default=10.0, show_default=True,
              help="With --store: seconds a worker's claim or heartbeat holds a run.")
@click.option("--heartbeat", type=click.FloatRange(0.05, 600), default=2.0, show_default=True,
              help="With --store: seconds between a worker's heartbeats (and the reaper's rounds).")
@click.option("--log-format", type=click.Choice(["text", "json"]), default="text", show_default=True,
              help="json: one JSON object per line (time, level, logger, message and fields such as run_id, "
                   "rule, route, remote).")
@click.option("--max-open-groups", type=click.IntRange(1, 100_000_000), default=100_000, show_default=True,
              help="Correlation groups open at once, all rules together; past it new groups are refused "
                   "(SPEC §11.3.9).")
@click.option("--max-chain-depth", type=click.IntRange(0, 10000), default=10, show_default=True,
              help="A run.* event more runs deep than this in a chain is journaled but starts no run "
                   "(stops a run.* loop).")
@click.option("--max-retriggers", type=click.IntRange(0, 100000), default=20, show_default=True,
              help="Pause a file rule whose runs re-trigger it this many times in a row (its own writes "
                   "match it); 0: never. `triggerc resume RULE` or a reload un-pauses it.")
@click.option("--max-backlog", type=click.IntRange(1), default=None, metavar="N",
              help="Queued runs past which new deliveries get 503 with Retry-After, before anything is "
                   "journaled (default 100000).")
@click.option("--max-parallel", type=click.IntRange(1, 4096), default=None, metavar="N",
              help="Runs that go at once, all rules together (default 16); the others wait in their rule's "
                   "queue. With --store, --workers sets it.")
def serve(rules: tuple[str, ...], host, port, state_dir, no_reload, tls_cert, tls_key, grace, force_http, start_rules, dashboard,
          dashboard_token, verbose, store_url, workers, migrate, lease, heartbeat, log_format, max_open_groups, max_chain_depth,
          max_retriggers, max_backlog, max_parallel) -> None:
    """Run the rules: start the sources they need, journal events, run actions.

    Logs check's warnings for the rules when it starts and on each reload. Stops cleanly on
    SIGINT/SIGTERM (exit 0): running runs get --grace seconds, and a second Ctrl-C stops
    them at once (they are marked interrupted). Exits 1 when it cannot start.

    Several FILEs are one program, as if the first included the others: its folder is the
    program's (state, relative paths), and a change to any of them reloads.
    """
    import logging
    from pathlib import Path

    from .runtime.pid1 import become_init_if_pid_1
    from .runtime.serve import ServeOptions, serve as run_serve, setup_logging

    rules, also = _program_files(rules, "serve")
    path = Path(rules)
    if not path.exists():
        usage_error(f"{rules}: no such file")
    if path.is_dir():  # (one program per serve: a file that includes the folder's files is that program)
        usage_error(f"{rules} is a folder: serve runs one rules file; to run the files in it, serve a file "
                    f"that includes them: include \"{rules.rstrip('/')}/*.trg\" (README: Rules in several files)")
    become_init_if_pid_1()  # docker run ... triggerc serve: reap the orphans (runtime/pid1.py)
    setup_logging(logging.DEBUG if verbose else logging.INFO, log_format)
    opts = ServeOptions(host=host, port=port, state_dir=Path(state_dir) if state_dir else None,
                        reload=not no_reload, grace=grace, force_http=force_http, dashboard=dashboard,
                        dashboard_token=dashboard_token, max_open_groups=max_open_groups,
                        max_chain_depth=max_chain_depth, max_retriggers=max_retriggers, also=also)
    if max_backlog is not None:
        opts.max_backlog = max_backlog
    if start_rules:
        if store_url:
            usage_error("--start is for the SQLite journal: with --store, every ingest node would start the run")
        opts.start_rules = tuple(dict.fromkeys(start_rules))
    if (tls_cert is None) != (tls_key is None):
        usage_error("--tls-cert and --tls-key go together: the certificate chain and its private key")
    if tls_cert is not None:
        opts.tls = (str(Path(tls_cert).resolve()), str(Path(tls_key).resolve()))
    if max_parallel is not None:
        if store_url:
            usage_error("--max-parallel is for the SQLite journal; with --store, --workers N sets the runs at once")
        opts.max_parallel = max_parallel
    given = click.get_current_context().get_parameter_source
    if store_url and max_backlog is not None:
        usage_error("--max-backlog bounds the SQLite journal's in-memory queue; with --store, runs wait in the "
                    "database")
    if not store_url:
        for name in ("workers", "migrate", "lease", "heartbeat"):
            if given(name) is click.core.ParameterSource.COMMANDLINE:
                usage_error(f"--{name} is for a shared store: give --store URL (or TRIGGERLANG_STORE)"
                            + ("; on the SQLite journal, --max-parallel N sets the runs at once"
                               if name == "workers" else ""))
    if store_url:
        _check_store_url(store_url)
        opts.store_url, opts.workers, opts.migrate = store_url, workers, migrate
        opts.lease, opts.heartbeat, opts.reap_interval = lease, heartbeat, heartbeat
        _check_lease(lease, heartbeat)
    raise SystemExit(run_serve(path, opts))


def _check_store_url(url: str) -> None:
    from .runtime.store import is_store_url, redact_url

    if not is_store_url(url):
        if url.startswith(("postgresql://", "postgres://")):
            usage_error("--store is not a valid URL: its host is malformed (an IPv6 address goes in [brackets])")
        usage_error(f"--store {redact_url(url)!r} is not a postgresql:// URL")
    try:
        import psycopg  # noqa: F401
    except ImportError:
        fail("--store needs the PostgreSQL driver: pip install 'triggerlang[postgres]'")


def _check_lease(lease: float, heartbeat: float) -> None:
    if heartbeat * 2 > lease:
        usage_error(f"--heartbeat {heartbeat:g} must be at most half of --lease {lease:g}, "
                    "or a slow heartbeat loses its runs")


# --------------------------------------------------------------------------- worker

EXAMPLES_WORKER = examples(
    "TRIGGERLANG_STORE=postgresql://trg@db/trg triggerc worker --slots 8",
    "triggerc worker --store postgresql://trg@db/trg --pool default --pool node:$(hostname) --base /srv/app",
)


@main.command(epilog=EXAMPLES_WORKER)
@_store_option("The postgresql:// store to claim runs from (or TRIGGERLANG_STORE).", required=True)
@click.option("--slots", type=click.IntRange(1, 1024), default=4, show_default=True, help="Runs at once.")
@click.option("--pool", "pools", multiple=True, metavar="NAME",
              help="Claim the runs of this pool (repeatable; default: 'default'). File-watching runs are in "
                   "the pool node:<hostname> of the node that saw the change.")
@click.option("--base", "base_dir", type=click.Path(file_okay=False),
              help="Folder where actions' relative paths start (default: the rules file's folder on the "
                   "ingest node, as the manifest says).")
@click.option("--grace", type=float, default=10.0, show_default=True,
              help="Seconds running runs get to finish on SIGINT/SIGTERM.")
@click.option("--migrate", is_flag=True, help="Bring an older store schema up to date first.")
@click.option("--lease", type=click.FloatRange(0.2, 3600), default=10.0, show_default=True,
              help="Seconds a claim or heartbeat holds a run.")
@click.option("--heartbeat", type=click.FloatRange(0.05, 600), default=2.0, show_default=True,
              help="Seconds between heartbeats (and the reaper's rounds).")
@click.option("-v", "--verbose", is_flag=True, help="Log more.")
@click.option("--log-format", type=click.Choice(["text", "json"]), default="text", show_default=True,
              help="json: one JSON object per line, as serve --log-format json.")
@click.option("--max-chain-depth", type=click.IntRange(0, 10000), default=10, show_default=True,
              help="A run.* event this worker journals more runs deep than this starts no run.")
@click.option("--metrics-port", type=click.IntRange(0, 65535),
              help="Serve this worker's Prometheus metrics at http://HOST:PORT/metrics.")
@click.option("--metrics-host", default="127.0.0.1", show_default=True, help="Address of --metrics-port.")
@click.option("--token", envvar="TRIGGERLANG_DASHBOARD_TOKEN",
              help="Token /metrics requires (else loopback clients only). Also TRIGGERLANG_DASHBOARD_TOKEN.")
def worker(store_url, slots, pools, base_dir, grace, migrate, lease, heartbeat, verbose, log_format, max_chain_depth,
           metrics_port, metrics_host, token) -> None:
    """Claim runs from a shared store and run them (SPEC §12.1).

    Runs each with the action of the manifest it was created under, heartbeats its lease,
    stores its log, retries and chains like serve. Stops cleanly on SIGINT/SIGTERM.
    """
    import logging
    from pathlib import Path

    from .runtime.serve import setup_logging

    _check_store_url(store_url)
    _check_lease(lease, heartbeat)
    from .runtime.cluster import WorkerOptions, run_worker
    from .runtime.pid1 import become_init_if_pid_1

    become_init_if_pid_1()  # docker run ... triggerc worker: reap the orphans (runtime/pid1.py)

    setup_logging(logging.DEBUG if verbose else logging.INFO, log_format)
    opts = WorkerOptions(slots=slots, pools=tuple(pools) or ("default",),
                         base_dir=Path(base_dir).resolve() if base_dir else None, lease=lease, heartbeat=heartbeat,
                         grace=grace, max_chain_depth=max_chain_depth)
    metrics_at = (metrics_host, metrics_port) if metrics_port is not None else None
    raise SystemExit(run_worker(store_url, opts, migrate=migrate, reap_interval=heartbeat, metrics_at=metrics_at,
                                token=token or None))


# --------------------------------------------------------------------------- store

class _Duration(click.ParamType):
    name = "DURATION"
    _UNITS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}

    def convert(self, value, param, ctx):
        import re

        m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d|w)\s*", str(value))
        if not m:
            self.fail(f"{value!r} is not a duration (like 30d, 12h, 90m)", param, ctx)
        return float(m.group(1)) * self._UNITS[m.group(2)]


EXAMPLES_STORE = examples(
    "triggerc store init --store postgresql://trg@db/trg",
    "TRIGGERLANG_STORE=postgresql://trg@db/trg triggerc store migrate",
    "triggerc store prune --older-than 30d",
    "triggerc store import .triggerlang --store postgresql://trg@db/trg",
)


@main.group("store", epilog=EXAMPLES_STORE)
def store_group() -> None:
    """Manage a shared PostgreSQL store: schema and history."""


def _open_pg(store_url: str | None, **kw):
    from .runtime.store import StoreError, open_store

    if not store_url:
        usage_error("give the store with --store URL or TRIGGERLANG_STORE")
    _check_store_url(store_url)
    try:
        return open_store(store_url, **kw)
    except StoreError as e:
        fail(str(e))


_STORE_OPT = _store_option("The postgresql:// store (or TRIGGERLANG_STORE).")


@store_group.command("init", epilog=examples(
    "triggerc store init --store postgresql://trg@db/trg",
    "TRIGGERLANG_STORE=postgresql://trg@db/trg triggerc store init"))
@_STORE_OPT
def store_init(store_url) -> None:
    """Create the schema in an empty database (nothing to do if it is there)."""
    from .runtime.pgstore import SCHEMA_VERSION

    st = _open_pg(store_url, create=True, migrate=False)
    st.close()
    click.echo(f"store {st.describe()}: schema {SCHEMA_VERSION}")


@store_group.command("migrate", epilog=examples(
    "TRIGGERLANG_STORE=postgresql://trg@db/trg triggerc store migrate"))
@_STORE_OPT
def store_migrate(store_url) -> None:
    """Apply the migrations the schema lacks (idempotent)."""
    from .runtime.pgstore import SCHEMA_VERSION

    st = _open_pg(store_url, create=True, migrate=True)
    st.close()
    click.echo(f"store {st.describe()}: schema {SCHEMA_VERSION}")


@store_group.command("prune", epilog=examples(
    "triggerc store prune --older-than 30d --store postgresql://trg@db/trg",
    "triggerc store prune --older-than 90d --state /srv/app/.triggerlang"))
@_store_option("The postgresql:// store (or TRIGGERLANG_STORE); without it, the SQLite journal of --state.")
@click.option("--state", "state_dir", default=".triggerlang", show_default=True, type=click.Path(file_okay=False),
              help="The state folder of a serve on the SQLite journal (when no --store is given).")
@click.option("--older-than", "older_than", type=_Duration(), required=True,
              help="Delete finished runs, their logs and events older than this (30d, 12h...).")
def store_prune(store_url, state_dir, older_than) -> None:
    """Delete history older than a duration; waiting and running runs are kept.

    Works on the shared store (--store) and on a SQLite journal (--state), beside a
    running serve; run it from cron or a schedule rule to keep a retention period.
    """
    from pathlib import Path

    from .runtime.store import StoreError

    if not store_url and not (Path(state_dir) / "journal.sqlite3").exists():
        usage_error(f"no journal in {state_dir}: give the state folder with --state, or the store with "
                    "--store URL or TRIGGERLANG_STORE")
    st = _open_pg(store_url, create=False) if store_url else _open_journal(state_dir)
    try:
        n = st.prune(older_than)
    except StoreError as e:
        fail(str(e))
    finally:
        st.close()
    manifests = f"{n['manifests']} manifest(s), " if store_url else ""
    click.echo(f"pruned {n['runs']} run(s), {n['events']} event(s), {manifests}"
               f"{n.get('groups', 0)} closed correlation group(s)")


@store_group.command("import", epilog=examples(
    "triggerc store import .triggerlang --store postgresql://trg@db/trg"))
@click.argument("state_dir", type=click.Path(file_okay=False))
@_STORE_OPT
def store_import(state_dir, store_url) -> None:
    """Copy a SQLite journal's history (STATE_DIR, e.g. .triggerlang) into an empty store.

    Events with their delivery keys, runs with their ids and logs, dedupe keys, the audit
    trail and the delivery history, in one transaction; runs still queued or running are
    imported interrupted, and open correlation groups are not imported (they start over).
    Stop the serve that uses the journal first.
    """
    from pathlib import Path

    from .runtime.store import StoreError
    from .runtime.storeimport import import_journal

    st = _open_pg(store_url, create=True, migrate=True)
    try:
        n = import_journal(Path(state_dir), st)
    except StoreError as e:
        fail(str(e))
    finally:
        st.close()
    click.echo(f"imported {n['events']} event(s), {n['runs']} run(s) ({n['interrupted']} unfinished, now "
               f"interrupted), {n['logs']} log(s), {n['dedupe']} dedupe key(s), {n['audit']} audit entr"
               f"{'y' if n['audit'] == 1 else 'ies'} and {n['deliveries']} delivery record(s) into {st.describe()}")
    if n["open_groups"]:
        click.echo(f"not imported: {n['open_groups']} open correlation group(s); they start over in the store")


# --------------------------------------------------------------------------- emit

def _parse_field(item: str) -> tuple[list[str], object]:
    if "=" not in item:
        usage_error(f"{item!r}: write field=value")
    k, v = item.split("=", 1)
    if not all(k.split(".")):
        usage_error(f"{item!r}: write field=value (a field of a field as parent.field)")
    try:
        val = json.loads(v)
    except ValueError:
        val = v
    return k.split("."), val


EXAMPLES_EMIT = examples(
    "triggerc emit git.push branch=main sha=$(git rev-parse HEAD)",
    "triggerc emit ci.completed pipeline=build status=success --id build-$CI_JOB_ID",
)


@main.command(epilog=EXAMPLES_EMIT)
@click.argument("trigger", metavar="SOURCE.EVENT")
@click.argument("fields", nargs=-1, metavar="[FIELD=VALUE]...")
@click.option("--data", "data_json", help="The event's data as a JSON object (fields are merged into it).")
@click.option("--url", default=f"http://{defaults.HTTP_HOST}:{defaults.HTTP_PORT}", show_default=True, envvar="TRIGGERLANG_URL",
              help="The running server (or TRIGGERLANG_URL).")
@click.option("--id", "event_id", help="An event id; re-sending the same id creates nothing new.")
@click.option("--timeout", type=float, default=10.0, show_default=True)
def emit(trigger: str, fields, data_json, url, event_id, timeout) -> None:
    """Send one event to a running `triggerc serve` (for git hooks and CI scripts).

    VALUEs are JSON when they parse as JSON (3, true, ["a"]), strings otherwise.
    """
    import urllib.error
    import urllib.request

    if "." not in trigger:
        usage_error(f"{trigger!r}: write SOURCE.EVENT, e.g. git.push")
    source, typ = trigger.split(".", 1)
    _unknown_event_warner()(source, typ)
    data: dict = {}
    if data_json:
        try:
            data = json.loads(data_json)
        except ValueError as e:
            usage_error(f"--data is not valid JSON: {e}")
        if not isinstance(data, dict):
            usage_error("--data must be a JSON object")
    for item in fields:
        path, val = _parse_field(item)
        cur = data
        for i, part in enumerate(path[:-1]):
            cur = cur.setdefault(part, {})
            if not isinstance(cur, dict):  # a.b=2 after a=1: say so, never drop it
                usage_error(f"{item!r}: {'.'.join(path[:i + 1])} is {json.dumps(cur)}, which has no fields")
        cur[path[-1]] = val
    body = {"source": source, "type": typ, "data": data}
    if event_id:
        body["id"] = event_id
    req = urllib.request.Request(_server_url(url) + "/events", data=json.dumps(body).encode(),
                                 headers={"Content-Type": "application/json"}, method="POST")
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            answer = json.loads(resp.read() or b"{}")
    except urllib.error.HTTPError as e:
        detail = e.read().decode("utf-8", "replace")[:300]
        fail(f"the server refused the event ({e.code}): {detail}")
    except (urllib.error.URLError, OSError) as e:
        reason = getattr(e, "reason", e)
        fail(f"cannot reach {url}: {reason} (is `triggerc serve --http` running?)")
    runs = answer.get("runs", [])
    if answer.get("duplicate"):  # a retried --id: nothing new (exit 0: the event is in, as the retry wanted)
        click.echo(f"already accepted {answer.get('event_id')}: nothing new, its run(s) {runs if runs else '[]'}")
        return
    click.echo(f"accepted {answer.get('event_id')}: {len(runs)} run(s) {runs if runs else ''}".rstrip())


# --------------------------------------------------------------------------- rerun, cancel, resume
#
# These talk to the running serve's API (POST /api/runs/ID/rerun ...) with the dashboard
# token, for both stores: with SQLite only the running engine can start a re-run now or
# stop a running run's process group, and in store mode the same API writes the shared
# store. See triggerlang/runtime/operations.py.

_OPERATOR_OPTS = [
    click.option("--url", default="http://127.0.0.1:8080", show_default=True, envvar="TRIGGERLANG_URL",
                 help="The running `triggerc serve --dashboard --token T` (or a dashboard --store)."),
    click.option("--token", envvar="TRIGGERLANG_DASHBOARD_TOKEN", help="The dashboard token "
                 "(or TRIGGERLANG_DASHBOARD_TOKEN): re-run, cancel and resume need it."),
    click.option("--timeout", type=float, default=10.0, show_default=True),
]


def _operator_options(f):
    for opt in reversed(_OPERATOR_OPTS):
        f = opt(f)
    return f


def _operate(url: str, token: str | None, path: str, timeout: float) -> dict:
    """POST to the running server's API as the CLI; the JSON answer, or exit 1 with why."""
    import getpass
    import socket
    import urllib.error
    import urllib.request

    if not token:
        usage_error("the dashboard token is needed: give --token or set TRIGGERLANG_DASHBOARD_TOKEN "
                    "(serve must run with --dashboard --token)")
    try:
        who = f"{getpass.getuser()}@{socket.gethostname()}"
    except Exception:  # no user name in this environment
        who = socket.gethostname()
    req = urllib.request.Request(_server_url(url) + path, data=b"", method="POST",
                                 headers={"Authorization": f"Bearer {token}".encode("utf-8", "replace"),
                                          "Accept": "application/json",
                                          # UTF-8 bytes: a str header must be Latin-1, a token or user name need not be
                                          "X-Triggerlang-Actor": who.encode("utf-8", "replace")})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return json.loads(resp.read() or b"{}")
    except urllib.error.HTTPError as e:
        raw = e.read().decode("utf-8", "replace")
        try:
            detail = json.loads(raw).get("error") or raw
        except ValueError:
            detail = raw
        hint = ""
        if e.code == 404 and "no route" in detail:
            hint = " (is the dashboard on? start serve with --dashboard --token)"
        fail(f"{detail[:300]}{hint}" if e.code in (401, 403, 404, 409, 503) else
             f"the server answered {e.code}: {detail[:300]}")
    except (urllib.error.URLError, OSError) as e:
        fail(f"cannot reach {url}: {getattr(e, 'reason', e)} (is `triggerc serve --dashboard` running?)")
    return {}


EXAMPLES_RERUN = examples(
    "triggerc rerun 42",
    "TRIGGERLANG_DASHBOARD_TOKEN=$T triggerc rerun 42 --url http://build-box:8080",
)


@main.command(epilog=EXAMPLES_RERUN)
@click.argument("run_id", type=click.IntRange(1))
@_operator_options
def rerun(run_id: int, url: str, token: str | None, timeout: float) -> None:
    """Run an ended run again: a new run with the same inputs, linked to the original.

    Asks the running serve (its dashboard API, with the dashboard token); the re-run is
    journaled with your user@host. Prints the new run's id.
    """
    answer = _operate(url, token, f"/api/runs/{run_id}/rerun", timeout)
    click.echo(f"run {run_id} re-run as run {answer.get('rerun')}")


EXAMPLES_CANCEL = examples(
    "triggerc cancel 42",
    "triggerc runs --status running && triggerc cancel 57",
)


@main.command(epilog=EXAMPLES_CANCEL)
@click.argument("run_id", type=click.IntRange(1))
@_operator_options
def cancel(run_id: int, url: str, token: str | None, timeout: float) -> None:
    """Cancel a queued or running run.

    A queued run is marked cancelled; a running run's process group gets SIGTERM, then
    SIGKILL 5 s later, and the run ends cancelled. Journaled with your user@host.
    """
    answer = _operate(url, token, f"/api/runs/{run_id}/cancel", timeout)
    if answer.get("status") == "cancelled":
        click.echo(f"run {run_id} cancelled")
    else:
        click.echo(f"run {run_id} is being stopped (SIGTERM, then SIGKILL after 5 s)")


EXAMPLES_RESUME = examples(
    "triggerc resume build_docs",
)


@main.command(epilog=EXAMPLES_RESUME)
@click.argument("rule")
@_operator_options
def resume(rule: str, url: str, token: str | None, timeout: float) -> None:
    """Un-pause a file rule that loop protection paused (its own runs kept re-triggering it).

    A reload of the rules un-pauses every rule too.
    """
    answer = _operate(url, token, f"/api/rules/{urllib_quote(rule)}/resume", timeout)
    click.echo(f"rule {rule} resumed" if answer.get("resumed") else f"rule {rule} was not paused")


def urllib_quote(text: str) -> str:
    import urllib.parse

    return urllib.parse.quote(text, safe="")


# --------------------------------------------------------------------------- history

def _open_journal(state_dir: str, store_url: str | None = None):
    """The store ``runs``/``events`` read: ``--store URL``, else the SQLite journal of ``state_dir``."""
    from pathlib import Path

    from .runtime.store import StoreError, open_store

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


def _table(rows: list[list[str]], header: list[str], colors: list[str | None] | None = None,
           color: bool = False, colored: str = "status") -> str:
    """Aligned columns under an upper-case header; with ``color``, the ``colored`` column
    of row n in ``colors[n]`` (an SGR code)."""
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(header)]
    lines = ["  ".join(h.upper().ljust(w) for h, w in zip(header, widths)).rstrip()]
    idx = header.index(colored)
    for n, r in enumerate(rows):
        cells = [c.ljust(w) for c, w in zip(r, widths)]
        if color and colors and colors[n]:
            cells[idx] = f"\x1b[{colors[n]}m{cells[idx]}\x1b[0m"
        lines.append("  ".join(cells).rstrip())
    return "\n".join(lines) + "\n"


STATUS_COLORS = {"succeeded": "32", "failed": "31", "timed_out": "31", "interrupted": "33", "cancelled": "33",
                 "skipped": "2", "running": "36", "queued": "34"}


def _short_time(iso: str | None) -> str:
    """A journal time (ISO 8601 UTC) in the local time zone, with the zone named:
    ``2026-11-24 19:15:53 CET`` (``TZ=UTC triggerc runs`` shows UTC)."""
    from datetime import datetime

    if not iso:
        return "-"
    try:
        t = datetime.fromisoformat(iso.replace("Z", "+00:00"))
    except ValueError:
        return iso
    return t.astimezone().strftime("%Y-%m-%d %H:%M:%S %Z")


def _seconds(s: float | None) -> str:
    """A length of time for a table cell: ``0.4s``, ``42.0s``, ``3m05s``, ``2h03m``."""
    if s is None:
        return "-"
    if s < 60:
        return f"{s:.1f}s"
    s = round(s)
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}s"
    return f"{s // 3600}h{s % 3600 // 60:02d}m"




EXAMPLES_RUNS = examples(
    "triggerc runs",
    "triggerc runs --status failed --limit 50",
    "triggerc runs -f                        # follow, like tail -f",
    "TZ=UTC triggerc runs --format json --state /srv/app/.triggerlang",
)


@main.command(epilog=EXAMPLES_RUNS)
@click.option("--state", "state_dir", default=".triggerlang", show_default=True, type=click.Path(file_okay=False))
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True)
@click.option("--limit", type=click.IntRange(1, 100000), default=20, show_default=True)
@click.option("--rule", help="Only runs of this rule.")
@click.option("--status", type=click.Choice(["queued", "running", "succeeded", "failed", "timed_out",
                                            "cancelled", "interrupted", "skipped"]), help="Only runs with this status.")
@click.option("--event", "event_id", metavar="ID", help="Only the runs of this event.")
@click.option("--since", metavar="WHEN", help="Only runs queued since WHEN: a length of time back (15m, 1h, 7d) or "
                                              "a date and time (2026-11-24 19:00, local time unless it names a zone).")
@click.option("--until", metavar="WHEN", help="Only runs queued before WHEN (as --since).")
@click.option("-q", "--search", metavar="TEXT",
              help="Only runs whose id, event id, an input's value or the event's delivery id holds TEXT.")
@click.option("-f", "--follow", is_flag=True,
              help="Keep going: print each new run, and a run again when its status changes (oldest first; "
                   "JSON Lines with --format json). Stop with Ctrl-C.")
@color_option
@_STORE_OPT
def runs(state_dir, fmt, limit, rule, status, event_id, since, until, search, follow, color_mode,
         store_url) -> None:
    """Run history from the journal, newest first.

    WAIT is the time a run spent queued before it started (started - queued: a debounce or
    a retry's backoff counts), DURATION its run time. Times are in the local time zone,
    named on each time; --format json gives ISO 8601 UTC and wait/duration in seconds.
    """
    filters = {"rule": rule, "status": status, "event_id": event_id, "q": search,
               "since": _when(since, "--since"), "until": _when(until, "--until")}
    j = _open_journal(state_dir, store_url)
    color = _color(mode=color_mode) and fmt == "text"
    if follow:
        _follow_runs(j, fmt, limit, filters, color)
        return
    items = j.list_runs(limit=limit, **filters)
    if fmt == "json":
        click.echo(json.dumps([_run_json(r) for r in items], indent=2))
        return
    rows, colors = [], []
    for r in items:
        rows.append(_run_cells(r))
        colors.append(STATUS_COLORS.get(r["status"]))
    if not rows:
        click.echo("no runs match" if any(v is not None for v in filters.values()) else "no runs yet")
        return
    click.echo(_table(rows, RUN_HEADER, colors, color), nl=False, color=color)


EXAMPLES_GROUPS = examples(
    "triggerc groups",
    "triggerc groups --rule release_gate --status open",
    "triggerc groups --key 3f1d --explain",
    "triggerc groups --format json --state /srv/app/.triggerlang",
)

GROUP_HEADER = ["id", "rule", "state", "key", "opened", "closes", "members", "missing", "run"]
GROUP_COLORS = {"fired": "32", "expired": "31", "discarded": "33", "open": "34", "armed": "34", "satisfied": "2",
                "rearmed": "2"}


@main.command(epilog=EXAMPLES_GROUPS)
@click.option("--state", "state_dir", default=".triggerlang", show_default=True, type=click.Path(file_okay=False))
@click.option("--rule", help="Only groups of this rule.")
@click.option("--status", type=click.Choice(list(GROUP_FILTERS)),
              help="open: open groups and armed absence windows; armed: the windows alone; "
                   "satisfied: windows the event came in.")
@click.option("--key", "key_value", metavar="V", help="Only groups with this key value (e.g. a sha).")
@click.option("--explain", is_flag=True, help="For each missing member, its trigger's latest events and why "
                                              "each was not admitted.")
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True)
@click.option("--limit", type=click.IntRange(1, 100000), default=20, show_default=True)
@color_option
@_STORE_OPT
def groups(state_dir, rule, status, key_value, explain, fmt, limit, color_mode, store_url) -> None:
    """Correlation groups (SPEC §11) from the journal, newest first.

    A group is one key's progress towards a correlation: STATE is open (waiting for
    MISSING), armed (an absence window), fired (RUN is its run), expired (its window
    closed first), satisfied (the awaited event came), rearmed (a new after-event
    replaced the window) or discarded (the rule changed).
    """
    import time as _time

    from .correlation.clock import human, parse_time

    j = _open_journal(state_dir, store_url)
    lister = getattr(j, "list_groups", None)
    if lister is None:  # pragma: no cover - every store has groups
        fail("this store has no correlation groups")
    items = lister(limit=limit, rule=rule, status=status, key=key_value)
    stats = j.correlation_stats() if explain or fmt == "text" else {"rules": {}}
    now = _time.time()
    explained: dict[str, list[str]] = {}
    if explain:
        from .correlation.render import explain_group

        for g in items:
            entry = ((stats["rules"].get(g["rule"]) or {}).get("meta") or {}).get("entry")
            recent: dict[str, list[dict]] = {}
            for m in (entry or {}).get("trigger", {}).get("members", []):
                if m["alias"] in g["missing"]:
                    typ = m["types"][0] if m.get("types") and len(m["types"]) == 1 else None
                    recent[m["alias"]] = j.list_events(limit=5, source=m["source"], type=typ)
            explained[g["id"]] = explain_group(g, entry, recent, getattr(j, "groups_of_event", None),
                                           getattr(j, "get_group", None))
    if fmt == "json":
        if explain:
            items = [{**g, "explain": explained.get(g["id"], [])} for g in items]
        click.echo(json.dumps(items, indent=2))
        return
    if not items:
        click.echo("no correlation groups" + (" match" if rule or status or key_value else " yet"))
        return
    rows, colors = [], []
    for g in items:
        deadline = parse_time(g["deadline"] or "") if g["deadline"] else None
        if g["live"] and deadline is not None:
            when = f"in {human(deadline - now)}" if deadline > now else "due"
        else:
            when = _short_time(g["closed_at"]) if g["closed_at"] else "-"
        counts: dict[str, int] = {}
        for m in g["members"]:
            counts[m["alias"]] = counts.get(m["alias"], 0) + 1
        members = ", ".join(a if n == 1 else f"{a}×{n}" for a, n in counts.items()) or "-"
        key = " ".join(_key_cell(k) for k in g["keys"]) or "-"
        rows.append([g["id"], g["rule"], g["state"], key, _short_time(g["opened_at"]), when, members,
                     ", ".join(g["missing"]) or "-", str(g["run_id"]) if g["run_id"] else "-"])
        colors.append(GROUP_COLORS.get(g["state"]))
    color = _color(mode=color_mode)
    table = _table(rows, GROUP_HEADER, colors, color, colored="state")
    if not explain:
        click.echo(table, nl=False, color=color)
    else:
        lines = table.rstrip("\n").split("\n")
        click.echo(lines[0], color=color)
        for g, line in zip(items, lines[1:]):
            click.echo(line, color=color)
            for x in explained.get(g["id"], []):
                click.echo(x)
    refused = {r: s["refused"] for r, s in stats["rules"].items() if s.get("refused")}
    if refused:
        click.echo("refused openings (max open groups reached): " +
                   ", ".join(f"{r} {n}" for r, n in sorted(refused.items())), err=True)


EXAMPLES_EVENTS = examples(
    "triggerc events",
    "triggerc events --source github -f",
)


@main.command(epilog=EXAMPLES_EVENTS)
@click.option("--state", "state_dir", default=".triggerlang", show_default=True, type=click.Path(file_okay=False))
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True)
@click.option("--limit", type=click.IntRange(1, 100000), default=20, show_default=True)
@click.option("--source", help="Only events of this source.")
@click.option("--type", "type_", metavar="TYPE", help="Only events of this type (push, post, modified...).")
@click.option("--rule", help="Only events this rule matched.")
@click.option("--unmatched", is_flag=True, help="Only events no rule matched (why: triggerc match --explain).")
@click.option("--since", metavar="WHEN", help="Only events received since WHEN: a length of time back (15m, 1h, 7d) "
                                              "or a date and time (2026-11-24 19:00, local time unless it names "
                                              "a zone).")
@click.option("--until", metavar="WHEN", help="Only events received before WHEN (as --since).")
@click.option("-q", "--search", metavar="TEXT",
              help="Only events whose id, delivery id or a value of their data holds TEXT.")
@click.option("-f", "--follow", is_flag=True,
              help="Keep going: print each new event as it is journaled (oldest first; JSON Lines with "
                   "--format json). Stop with Ctrl-C.")
@color_option
@_STORE_OPT
def events(state_dir, fmt, limit, source, type_, rule, unmatched, since, until, search, follow, color_mode,
           store_url) -> None:
    """Events received, newest first, with the rules they matched.

    Times are in the local time zone, named on each time; --format json gives ISO 8601 UTC.
    """
    filters = {"source": source, "type": type_, "rule": rule, "unmatched": unmatched, "q": search,
               "since": _when(since, "--since"), "until": _when(until, "--until")}
    j = _open_journal(state_dir, store_url)
    color = _color(mode=color_mode) and fmt == "text"
    if follow:
        _follow_events(j, fmt, limit, filters, color)
        return
    items = j.list_events(limit=limit, **filters)
    if fmt == "json":
        click.echo(json.dumps([{k: e.get(k) for k in EVENT_KEYS} for e in items], indent=2))
        return
    if not items:
        click.echo("no events match" if any(v for v in filters.values()) else "no events yet")
        return
    rows = [_event_cells(e) for e in items]
    # an event no rule matched stands out (yellow), as under --follow
    colors = ["33" if not e.get("matched") else None for e in items]
    click.echo(_table(rows, EVENT_HEADER, colors, color, "matched"), nl=False, color=color)


def _when(text: str | None, option: str) -> float | None:
    """A ``--since``/``--until`` bound as epoch seconds: a length of time back, or a date and
    time, in the local time zone unless it names one (``runs`` and ``events`` print local
    times); a usage error when it is neither."""
    import datetime as _dt
    import time

    from .runtime.store import BadQuery, parse_when

    if text is None:
        return None
    try:
        naive = _dt.datetime.fromisoformat(text.strip())
    except ValueError:
        naive = None
    if naive is not None and naive.tzinfo is None:
        return naive.astimezone().timestamp()
    try:
        return parse_when(text, time.time())
    except BadQuery:
        usage_error(f"{option}: {text!r} is not a time: give a length of time back (15m, 1h, 7d) or a date "
                    "and time (2026-11-24 19:00, local time unless it names a zone)")
    return None  # pragma: no cover - usage_error exits


EXAMPLES_LOGS = examples(
    "triggerc logs 42",
    "triggerc logs 42 -f                     # a running run, to its end",
    "triggerc logs 42 2>/dev/null | grep -i error",
)


@main.command(epilog=EXAMPLES_LOGS)
@click.argument("run_id", type=click.IntRange(1))
@click.option("--state", "state_dir", default=".triggerlang", show_default=True, type=click.Path(file_okay=False))
@click.option("-f", "--follow", is_flag=True,
              help="A run still queued or running: print its output as it is written, until it ends (Ctrl-C "
                   "stops sooner).")
@_STORE_OPT
def logs(run_id: int, state_dir: str, follow: bool, store_url: str | None) -> None:
    """The whole log of run RUN_ID: what its action wrote, stdout and stderr in the order
    they came, between triggerlang's own lines (the command; how it ended).

    The bytes as the action wrote them (the dashboard's "download"): terminal escapes are
    kept, output that is not UTF-8 is not re-encoded. With the shared store, the part the
    store keeps (its last 1 MiB). Exit 0, 1 when there is no such run; a run that has no
    output (yet) says so on stderr.
    """
    from .runtime.store import FINAL_STATUSES

    j = _open_journal(state_dir, store_url)
    log = _LogReader(j, run_id, sys.stdout.buffer)

    def step() -> bool:
        run = j.get_run(run_id)  # the status first: once it is final, the log read next is whole
        if run is None:
            fail(f"there is no run {run_id}")
        final = run["status"] in FINAL_STATUSES
        log.write_new()
        if final or not follow:
            if not log.exists:
                why = f"it ended {run['status']} without starting" + (f": {run['error']}" if run.get("error")
                                                                       else "")
                click.echo(f"run {run_id} has no log: " + (why if final else f"it is {run['status']}, "
                                                           "no output yet (-f waits for it)"), err=True)
            return True
        return False

    if follow:
        _follow_loop(step, at_once=True)
    else:
        step()


class _LogReader:
    """Writes a run's log to ``out`` from where it stopped last time, stream markers taken
    out (the SQLite journal's log file read in blocks; the store's stored part)."""

    BLOCK = 1 << 20

    def __init__(self, j, run_id: int, out) -> None:
        self.j, self.run_id, self.out = j, run_id, out
        self.path = j.run_log_path(run_id) if hasattr(j, "run_log_path") else None
        self.offset, self.at_start, self.exists = 0, True, False

    def _emit(self, data: bytes) -> None:
        from .runtime.store import strip_log_markers

        if data:
            self.out.write(strip_log_markers(data, self.at_start))
            self.at_start = data.endswith(b"\n")
            self.offset += len(data)

    def write_new(self) -> None:
        try:
            if self.path is None:
                chunk = self.j.read_log_chunk(self.run_id, self.offset, limit=1 << 30)
                self.exists = self.exists or chunk.exists
                if chunk.start > self.offset:
                    click.echo(f"(the store keeps the last part of a log: its first {chunk.start} bytes "
                               "are not shown)", err=True)
                    self.offset, self.at_start = chunk.start, False
                self._emit(chunk.data)
            else:
                try:
                    f = open(self.path, "rb")  # noqa: SIM115 - closed below
                except FileNotFoundError:
                    return
                self.exists = True
                with f:
                    f.seek(self.offset)
                    while block := f.read(self.BLOCK):
                        self._emit(block)
            self.out.flush()
        except BrokenPipeError:  # `triggerc logs 5 | head`: the reader is gone
            sys.stdout = open(os.devnull, "w")  # noqa: SIM115 - no flush error at exit
            raise SystemExit(0) from None


RUN_HEADER = ["id", "rule", "action", "status", "exit", "wait", "duration", "queued", "inputs"]
RUN_KEYS = ("id", "rule", "action", "status", "exit_code", "inputs", "event_id", "queued_at", "started_at",
            "finished_at", "attempt", "duration", "wait", "error")
EVENT_HEADER = ["id", "event", "time", "matched"]
EVENT_KEYS = ("id", "source", "type", "time", "matched")


def _run_json(r: dict) -> dict:
    return {k: r.get(k) for k in RUN_KEYS}


# C0 and C1 control characters, and the Unicode line separators and bidirectional overrides
_UNSAFE = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")


def _cell(v: object) -> str:
    """A value from an event (an input, a key) as a table cell: a string as it is, unless it
    holds a control character, which would reach the terminal as it is (a newline forges a
    row; an escape sequence recolours, moves the cursor over earlier rows, retitles the
    window): then JSON-quoted with escapes, as any other value is shown."""
    if isinstance(v, str) and not _UNSAFE.search(v):
        return v
    return _UNSAFE.sub(lambda m: f"\\u{ord(m.group()):04x}", json.dumps(v, ensure_ascii=False))


def _key_cell(v: object) -> str:
    """A correlation key value as a table cell: as ``match`` and ``--explain`` show it (the
    string "1" quoted, the number 1 not), with what would reach the terminal escaped."""
    from .correlation.spec import key_shown

    return _UNSAFE.sub(lambda m: f"\\u{ord(m.group()):04x}", key_shown(v))


def _run_cells(r: dict) -> list[str]:
    """One run as the cells of the ``runs`` table."""
    code = "-" if r.get("exit_code") is None else str(r["exit_code"])
    inputs = " ".join(f"{k}={_cell(v)}" for k, v in (r.get("inputs") or {}).items())
    return [str(r["id"]), r["rule"], r["action"], r["status"], code, _seconds(r.get("wait")),
            _seconds(r.get("duration")), _short_time(r.get("queued_at")), inputs[:60]]


def _event_cells(e: dict) -> list[str]:
    return [e["id"], _cell(f"{e['source']}.{e['type']}"), _short_time(e.get("time")),
            ", ".join(e.get("matched") or []) or "(none)"]


# --------------------------------------------------------------------------- --follow
#
# `runs --follow` / `events --follow` print the newest --limit rows oldest first, then poll
# the journal (a reader of the SQLite WAL: it never blocks `serve`) and append what is new,
# like `tail -f`. A run is printed again when its status changes, so a line per
# transition shows what happened. The table's columns are sized from the header and
# the first rows (longer cells later push the line out rather than reflow the table).
# With --format json each row is one JSON object per line (JSON Lines).

FOLLOW_INTERVAL = 0.5  # seconds between two looks at the journal
FOLLOW_WINDOW = 200  # newest rows read on every look (more are paged in when they are all new)
FOLLOW_MAX = 10_000  # new rows printed at most per look


def _follow_line(cells: list[str], widths: list[int], color: str | None = None, col: int | None = None) -> str:
    out = [c.ljust(w) for c, w in zip(cells, widths)]
    if color and col is not None:
        out[col] = f"\x1b[{color}m{out[col]}\x1b[0m"
    return "  ".join(out).rstrip()


def _follow_widths(header: list[str], rows: list[list[str]], minimum: list[int]) -> list[int]:
    return [max([len(h), m] + [len(r[i]) for r in rows]) for i, (h, m) in enumerate(zip(header, minimum))]


def _follow_loop(poll, at_once: bool = False) -> None:
    """Poll until Ctrl-C or SIGTERM (exit 0), or until ``poll`` returns True (``at_once``:
    the first poll before the first pause, under the handlers already). Both handlers are installed here: a process
    started with SIGINT ignored (a background job of a non-interactive shell, some CI
    runners) would otherwise never stop on the SIGINT a user or script sends it. A shared
    store that cannot be read (the database restarting) is said once on stderr, and the
    follow goes on when it is back."""
    import signal
    import time

    from .runtime.store import StoreError

    def _stop(signum, frame):  # noqa: ARG001 - signal handler signature
        raise KeyboardInterrupt

    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, _stop)
    down = False
    try:
        while True:
            if not at_once:
                time.sleep(FOLLOW_INTERVAL)
            at_once = False
            try:
                if poll():
                    return
            except StoreError as e:
                if not down:
                    click.echo(f"triggerc: warning: {e}; still following", err=True)
                down = True
                continue
            if down:
                click.echo("triggerc: the store answers again", err=True)
            down = False
    except KeyboardInterrupt:
        pass
    except BrokenPipeError:  # `triggerc runs -f | head`: the reader is gone
        sys.stdout = open(os.devnull, "w")  # noqa: SIM115 - no flush error at exit


def _follow_runs(j, fmt: str, limit: int, filters: dict, color: bool) -> None:
    from .runtime.store import FINAL_STATUSES

    header = RUN_HEADER

    def state(r: dict) -> tuple:
        return r["status"], r["exit_code"], r["started_at"], r["finished_at"]

    window = j.list_runs(limit=max(limit, FOLLOW_WINDOW), **filters)
    seen = {r["id"]: state(r) for r in window}
    top = max(seen, default=0)
    first = list(reversed(window[:limit]))
    widths = _follow_widths(header, [_run_cells(r) for r in first], [4, 12, 8, 11, 4, 6, 8, 23, 0])

    def show(r: dict) -> None:
        if fmt == "json":
            click.echo(json.dumps(_run_json(r)))
        else:
            click.echo(_follow_line(_run_cells(r), widths, STATUS_COLORS.get(r["status"]) if color else None, 3),
                       color=color)

    if fmt == "text":
        click.echo("  ".join(h.upper().ljust(w) for h, w in zip(header, widths)).rstrip())
    for r in first:
        show(r)

    def poll() -> None:
        nonlocal seen, top
        rows = _newer_pages(lambda before: j.list_runs(limit=FOLLOW_WINDOW, before_id=before, **filters),
                            lambda r: r["id"] <= top, lambda r: r["id"])
        # runs seen before and not finished yet, gone past the window (many runs queued
        # since): looked up by id, FOLLOW_WINDOW at a time, so their ends are printed too.
        # Not under --status, where a run that changes status leaves the selection.
        fetched = {r["id"] for r in rows}
        if filters.get("status") is None:
            pending = sorted(rid for rid, st in seen.items() if rid not in fetched and st[0] not in FINAL_STATUSES)
            for i in range(0, len(pending), FOLLOW_WINDOW):
                chunk = pending[i:i + FOLLOW_WINDOW]
                rows += j.list_runs(limit=len(chunk), ids=chunk, **filters)
        rows.sort(key=lambda r: r["id"])
        for r in rows:
            if seen.get(r["id"]) != state(r):
                show(r)
        # keep what may still change (unfinished runs) and the newest window
        now = {r["id"]: state(r) for r in rows}
        seen = {rid: st for rid, st in {**seen, **now}.items()
                if st[0] not in FINAL_STATUSES or rid in now}
        top = max([top, *now])

    _follow_loop(poll)


def _newer_pages(page, reached, cursor) -> list[dict]:
    """The rows newer than the last look, newest first, paging back (``page(before)``, the
    ``FOLLOW_WINDOW`` rows before a cursor, ``None``: the newest) until a row ``reached``
    says was seen already, so a burst of more rows than one window between two looks is
    printed whole; at most ``FOLLOW_MAX`` rows, and a line on stderr says how many more
    there were not printed."""
    rows: list[dict] = []
    before = None
    while True:
        batch = page(before)
        for r in batch:
            if reached(r):
                return rows
            if len(rows) == FOLLOW_MAX:
                click.echo(f"triggerc: more than {FOLLOW_MAX} new rows since the last look; "
                           f"printing the newest {FOLLOW_MAX}", err=True)
                return rows
            rows.append(r)
        if len(batch) < FOLLOW_WINDOW:
            return rows
        before = cursor(batch[-1])


def _follow_events(j, fmt: str, limit: int, filters: dict, color: bool) -> None:
    header = EVENT_HEADER
    first = list(reversed(j.list_events(limit=limit, **filters)))
    widths = _follow_widths(header, [_event_cells(e) for e in first], [20, 14, 23, 0])

    def show(e: dict) -> None:
        if fmt == "json":
            click.echo(json.dumps({k: e.get(k) for k in EVENT_KEYS}))
        else:
            # an event no rule matched stands out (yellow), like a skipped run
            click.echo(_follow_line(_event_cells(e), widths, "33" if color and not e.get("matched") else None, 3),
                       color=color)

    if fmt == "text":
        click.echo("  ".join(h.upper().ljust(w) for h, w in zip(header, widths)).rstrip())
    for e in first:
        show(e)
    last = first[-1] if first else None

    def poll() -> None:
        nonlocal last
        top = j.list_events(limit=1, **filters)
        if not top or (last is not None and top[0]["id"] == last["id"]):
            return
        # newer than the last one printed: received after it (it may have been pruned)
        def reached(e: dict) -> bool:
            return last is not None and (e["id"] == last["id"] or e["received_at"] < last["received_at"])

        new = _newer_pages(lambda before: j.list_events(limit=FOLLOW_WINDOW, before=before, **filters),
                           reached, lambda e: e["id"])
        for e in reversed(new):
            show(e)
        last = new[0] if new else top[0]

    _follow_loop(poll)


# --------------------------------------------------------------------------- dashboard

EXAMPLES_DASHBOARD = examples(
    "triggerc dashboard --rules rules.trg      # http://127.0.0.1:8081/dashboard/",
    'triggerc dashboard --state /srv/app/.triggerlang --host 0.0.0.0 --token "$TOKEN"',
)


@main.command(epilog=EXAMPLES_DASHBOARD)
@click.option("--state", "state_dir", type=click.Path(file_okay=False),
              help="State folder (default .triggerlang/, beside --rules when given).")
@click.option("--rules", "rules_path", type=click.Path(dir_okay=False),
              help="The rules (.trg or manifest .json), to say why an event matched nothing.")
@click.option("--host", default=defaults.HTTP_HOST, show_default=True, help="Address to bind.")
@click.option("--port", type=click.IntRange(0, 65535), default=8081, show_default=True,
              help="Port (serve's listener defaults to 8080, so both can run).")
@click.option("--token", envvar="TRIGGERLANG_DASHBOARD_TOKEN",
              help="Require this token (Authorization: Bearer, or ?token=). Without one, only loopback "
                   "clients are answered. Also read from TRIGGERLANG_DASHBOARD_TOKEN.")
@_STORE_OPT
def dashboard(state_dir, rules_path, host, port, token, store_url) -> None:
    """Serve the read-only dashboard over the journal: events, runs, logs, live.

    The page is at /dashboard/ and the JSON API at /api/runs, /api/runs/ID, /api/events
    and /api/events/ID. `triggerc serve --dashboard` mounts the same on its listener.
    """
    from pathlib import Path

    from .dashboard.app import run_standalone
    from .sources.http import is_loopback

    if rules_path is not None and not Path(rules_path).is_file():
        usage_error(f"{rules_path}: no such file")
    if state_dir is not None:
        state = Path(state_dir)
    elif rules_path is not None:
        state = Path(rules_path).resolve().parent / ".triggerlang"
    else:
        state = Path(".triggerlang")
    if store_url:
        _open_pg(store_url, create=False).close()  # a clear error now rather than a 503 per request
    elif not (state / "journal.sqlite3").exists():
        usage_error(f"no journal in {state} (give the state folder with --state; "
                    "it is .triggerlang/ beside the rules file)")
    if token is not None and not token.strip():
        usage_error("--token is empty (leave it out to allow loopback clients only)")
    if not token and host != "localhost" and not is_loopback(host):
        click.echo(f"triggerc: note: without --token the dashboard answers loopback clients only, "
                   f"even on {host}", err=True)
    raise SystemExit(run_standalone(state, host=host, port=port, token=token,
                                    rules_path=Path(rules_path) if rules_path else None,
                                    echo=lambda m: click.echo(m, err=True), store_url=store_url or None))


# --------------------------------------------------------------------------- editors and agents (SPEC §14)

def _editor_extra(what: str):
    """The ``editor`` extra's modules are imported only here (``check`` stays lean)."""
    try:
        if what == "lsp":
            from .editor import lsp as mod
        else:
            from .editor import mcp_server as mod
    except ImportError as e:
        fail(f"`triggerc {what}` needs the editor extra: pip install 'triggerlang[editor]' ({e})")
    return mod


EXAMPLES_LSP = examples(
    "triggerc lsp                              # what an editor starts; see editors/README.md",
    "nvim: vim.lsp.start({ name = \"triggerc\", cmd = { \"triggerc\", \"lsp\" } })",
)


@main.command("lsp", epilog=EXAMPLES_LSP)
@click.option("--stdio", is_flag=True, help="Talk over stdin/stdout (the default and only transport).")
def lsp_cmd(stdio: bool) -> None:
    """Language server for .trg files over stdio: diagnostics, hover, completion, definitions,
    references, symbols, formatting and quick fixes. Start it from your editor."""
    _editor_extra("lsp").main()


EXAMPLES_MCP = examples(
    "triggerc mcp --state .triggerlang       # what an MCP client starts",
    "claude mcp add triggerlang -- triggerc mcp --state /srv/app/.triggerlang",
)


@main.command("mcp", epilog=EXAMPLES_MCP)
@click.option("--state", "state_dir", type=click.Path(file_okay=False),
              help="State folder the history tools read (default .triggerlang/ in the working folder).")
@_store_option("Read history from this postgresql:// store instead (or TRIGGERLANG_STORE).")
@click.option("--url", default="http://127.0.0.1:8080", show_default=True, envvar="TRIGGERLANG_URL",
              help="The running server `emit` sends to (loopback only; or TRIGGERLANG_URL).")
def mcp_cmd(state_dir: str | None, store_url: str | None, url: str) -> None:
    """Model Context Protocol server over stdio, for coding agents: check, explain, catalogue,
    emit, runs, run_log, events, groups. Read-only except emit (to a loopback server)."""
    from pathlib import Path

    mod = _editor_extra("mcp")
    if store_url:
        _check_store_url(store_url)
    try:
        server = mod.build_server(state_dir=Path(state_dir) if state_dir else None, url=url, store_url=store_url)
    except ValueError as e:
        usage_error(str(e))
    server.run("stdio")


# --------------------------------------------------------------------------- the program

QUICK_EXIT = frozenset({"check", "compile", "fmt", "match", "test"})
"""Commands that read files and print, and leave no thread, server or open file behind."""


def entry() -> None:
    """The ``triggerc`` program: :func:`main`, then, for the commands in :data:`QUICK_EXIT`,
    a quick end: the output flushed and the process ended at once (``os._exit``), without
    the interpreter tearing down every module and object first, which costs a short
    command like ``check`` a tenth of its run. Every other command ends the usual way."""
    try:
        main()
    except SystemExit as e:
        code = e.code
        if (code is None or isinstance(code, int)) and _command(sys.argv[1:]) in QUICK_EXIT:
            try:
                sys.stdout.flush()
                sys.stderr.flush()
            except Exception:  # (a closed pipe...: the usual end reports it)
                raise e from None
            os._exit(code or 0)
        raise


def _command(args: list[str]) -> str | None:
    """The command named on a command line (the group takes no option with a value)."""
    return next((a for a in args if not a.startswith("-")), None)


if __name__ == "__main__":  # pragma: no cover
    entry()
