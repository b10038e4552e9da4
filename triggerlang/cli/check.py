"""``triggerc check`` (with ``--fix``/``--diff``) and ``triggerc explain``."""

from __future__ import annotations

import json

import click

from ..diagnostics import Diagnostic, render_github, render_json, render_sarif, render_text
from .common import (_color, _compile, _compile_stdin, _configs, _expand, _no_gc, _utf8_stdout, color_option,
                     examples, usage_error)


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


@click.command(epilog=EXAMPLES_CHECK)
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
        from ..config import parse_codes

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
    checked: set[str] = set()  # the files --fix would write (not those only an include read)
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
        checked.add(c.file)
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
        _print_fixable(all_diags, checked)
    bad = any(d.is_error for d in all_diags) or strict_bad
    raise SystemExit(1 if bad and not exit_zero else 0)


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
        from ..diagnostics import render_gitlab

        click.echo(render_gitlab(all_diags), nl=False, err=err)
    else:
        from ..check.codedocs import rule_metadata

        click.echo(render_sarif(all_diags, {c: rule_metadata(c) for c in {d.code for d in all_diags}}), nl=False,
                   err=err)
    if fmt == "text" and all_diags and not quiet:
        errors = sum(d.is_error for d in all_diags)
        warnings = len(all_diags) - errors
        click.echo(f"{errors} error{'s' * (errors != 1)}, {warnings} warning{'s' * (warnings != 1)}", err=True)


def _print_fixable(diags: list[Diagnostic], checked: set[str]) -> None:
    """ruff's ``[*] 2 fixable with the --fix option``: how many of the problems --fix would fix:
    each once (a file several of FILES include is reported once), and only in the ``checked``
    files, which --fix writes (a fix in an included file is not applied from the including one)."""
    from ..check.fixes import fixes_of

    by_file: dict[str, list[Diagnostic]] = {}
    for d in dict.fromkeys(diags):
        if d.file in checked:
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
    from ..api import compile_bytes
    from ..check.fixes import fix_until_stable, fixes_of, has_syntax_errors

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
    if fixed or hidden:  # nothing to fix: nothing said, as ruff check --diff says nothing
        click.echo(_fixed_line("Would fix", fixed, hidden), err=True)


def _fixed_line(verb: str, fixed: int, hidden: int) -> str:
    """``Fixed 2 problems (1 more fix with --unsafe-fixes).``, check --fix's closing line
    (``Would fix``: --diff's); with only unsafe fixes, ruff's ``No problem fixed`` (``No
    problem would be fixed``) and how many ``--unsafe-fixes`` would apply."""
    fixes = f"fix{'es' * (hidden != 1)}"
    if not fixed:
        done = "No problem fixed" if verb == "Fixed" else "No problem would be fixed"
        return f"{done} ({hidden} unsafe {fixes} available with --unsafe-fixes)."
    more = f" ({hidden} more {fixes} with --unsafe-fixes)" if hidden else ""
    return f"{verb} {fixed} problem{'s' * (fixed != 1)}{more}."


def _print_statistics(diags: list[Diagnostic], fmt: str, err: bool = False) -> None:
    """``check --statistics``: a line per code, the most frequent first (ruff's layout):
    count, code, severity and what the code is about."""
    from collections import Counter

    from ..check.checker import CODES

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


@click.command(epilog=EXAMPLES_EXPLAIN)
@click.argument("codes", nargs=-1)
@click.option("--all", "all_codes", is_flag=True, help="Every code.")
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True,
              help="text: each code's entry of docs/diagnostics.md (Markdown); json: a list of objects.")
def explain(codes: tuple[str, ...], all_codes: bool, fmt: str) -> None:
    """What a diagnostic code means, how to fix it, an example and what check says about
    it (as rustc --explain and ruff rule do). Exit 0, 2 for a code that is not one."""
    from ..check.checker import CODES
    from ..check.codedocs import CODE_DOCS, DOCS_URL, code_section, example_output
    from ..diagnostics import suggest

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
