"""The commands that read rules files and print: ``compile``, ``convert``, ``match``,
``fmt`` and ``test``."""

from __future__ import annotations

import json
import os
import sys

import click

from ..diagnostics import render_text
from .common import (_color, _compile, _compile_stdin, _expand, _no_gc, _program_files, _read_stdin,
                     _report_and_exit_if_errors, _unknown_event_warner, _utf8_stdout, color_option, examples,
                     fail, usage_error)


# --------------------------------------------------------------------------- compile

EXAMPLES_COMPILE = examples(
    "triggerc compile rules.trg -o manifest.json",
    "triggerc compile main.trg hooks.trg -o manifest.json   # one program of two files",
    "generate-rules | triggerc compile - > manifest.json",
    "triggerc serve manifest.json",
)


@click.command("compile", epilog=EXAMPLES_COMPILE)
@click.argument("files", metavar="FILE...", nargs=-1, required=True)
@click.option("-o", "--output", type=click.Path(dir_okay=False, writable=True, allow_dash=True),
              help="Write the manifest here (default, and -: stdout).")
@color_option
def compile_cmd(files: tuple[str, ...], output: str | None, color_mode: str) -> None:
    """Write the JSON listener manifest of FILE ("-": the text on stdin, with relative paths
    from the working folder). Several files are one program, as if the first included the
    others (as serve runs them)."""
    from pathlib import Path

    from ..compile.manifest import dumps

    _no_gc()
    output = None if output == "-" else output  # -o -: stdout, as for most tools (it wrote a file named -)
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


@click.group("convert", epilog=EXAMPLES_CONVERT)
def convert_group() -> None:
    """Turn another tool's configuration into a rules file."""


@convert_group.command("webhook", epilog=EXAMPLES_CONVERT)
@click.argument("hooks_file", metavar="HOOKS.json")
@click.option("-o", "--output", type=click.Path(dir_okay=False, allow_dash=True),
              help="Write the rules here (default, and -: stdout).")
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

    from ..convert import convert_webhook

    output = None if output == "-" else output
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
    from ..providers import BUILTIN

    for name in reversed(BUILTIN):
        command = click.option(f"--{name}", f"provider_{name}", metavar="EVENT", default=None,
                               help=f"EVENT.json is a raw {name} payload of this event (as its event header names it).")(command)
    command = click.option("--event", "provider_event", metavar="EVENT",
                           help="With --provider: the event name (its event header's value).")(command)
    return click.option("--provider", "provider_name", metavar="NAME",
                        help="EVENT.json is a raw payload of this webhook provider (a plug-in's too).")(command)


class _MatchCommand(click.Command):
    """``match``: a rules file and an event file, and nothing more. Given more (``match
    a.trg b.trg event.json``), or a rules file where the event goes (``match a.trg b.trg``),
    it says what it takes and what to do, rather than click's "Got unexpected extra
    argument" or "b.trg: not valid JSON"."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        rest = super().parse_args(ctx, args)   # (extra arguments allowed: they land in ctx.args)
        if ctx.resilient_parsing:
            return rest
        given = [ctx.params["file"], ctx.params["event_file"], *ctx.args]
        if len(given) == 2 and not given[1].endswith(".trg"):
            return rest
        takes = "match takes one rules file, then one event file (EVENT.json, or a .jsonl of events)"
        if len(given) == 2 and not given[0].endswith(".trg"):  # the two the other way round
            usage_error(f"{takes}: the rules file goes first: triggerc match {given[1]} {given[0]}")
        event = None if given[-1].endswith(".trg") else given[-1]
        others = given[1:-1] if event is not None else given[1:]
        if any(not o.endswith(".trg") for o in others):  # several events: one .jsonl holds them
            usage_error(f"{takes}, not {len(given)} files ({' '.join(given)}): put the events in one "
                        f".jsonl file, one a line")
        usage_error(f"{takes}: {' '.join(others)} {'is a second rules file' if len(others) == 1 else 'are more rules files'}. "
                    f"To match with several, include them from {given[0]} (include \"{others[0]}\"), or run "
                    f"match once per file: triggerc match {given[0]} {event or 'EVENT.json'}")
        return rest


@click.command(cls=_MatchCommand, epilog=EXAMPLES_MATCH, context_settings={"allow_extra_args": True})
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

    from ..compile.cache import default_cache_dir, load_or_compile
    from ..compile.index import build_matcher
    from ..dryrun import DryRun, EventInputError, batch_json, batch_names, read_events

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
        from ..providers import get_provider, provider_names

        if get_provider(provider[0]) is None:
            usage_error(f"unknown provider {provider[0]!r} (one of {', '.join(provider_names())})")
    # a compiled file is cached (compile/cache.py): 10,000 rules load in a fraction of a second
    # the second time; the collector is paused while the rules' many small objects are made,
    # then they are frozen out of its way for the event loop
    gc.disable()
    try:
        c = load_or_compile(file, default_cache_dir(), warnings=False)  # (shown only with an error)
    except Exception as e:  # the parser is imported only when the cache misses
        from ..api import SourceFileError

        if not isinstance(e, SourceFileError):
            raise
        usage_error(str(e))
    _report_and_exit_if_errors(c, color_mode)
    dry = DryRun(c.manifest, build_matcher(c.manifest["rules"]), shown_as=file)
    gc.freeze()
    gc.enable()
    batch = jsonl or event_file.endswith(".jsonl")
    out = sys.stdout
    write = out.write
    if dry.correlating:  # correlation rules (SPEC §11.5): one state and one clock for every line
        from ..dryrun import run_correlated

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


@click.command("fmt", epilog=EXAMPLES_FMT)
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

    from ..api import SourceFileError, decode_source, read_source
    from ..diagnostics import Diagnostics
    from ..fmt import format_text

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


@click.command("test", epilog=EXAMPLES_TEST)
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
    test), 2 on usage errors (and a NAME no test has), 5 when the files hold no test.
    """
    from ..api import SourceFileError
    from ..testing import Selection, render_github as tests_github, render_json as tests_json, \
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
    if not ran and not errors and not any(rep.deselected for rep in reports):
        click.echo(_no_tests_found(reports), err=True)
        raise SystemExit(NO_TESTS)
    if select is not None and not ran and not errors:
        # a -k that selects nothing fails (pytest's "no tests ran"): a typo must not pass CI
        click.echo(f"no test matches -k {keyword!r} ({sum(rep.deselected for rep in reports)} deselected)",
                   err=True)
        raise SystemExit(1)
    raise SystemExit(0 if all(rep.ok for rep in reports) else 1)


NO_TESTS = 5
"""``triggerc test``'s exit code when the files hold no test at all: pytest's "no tests
collected" (5), so that a CI job notices a companion file that went missing or a folder
that holds no test, where exit 0 would pass in silence. Any output format: the message
goes to stderr, and stdout stays what the format gives for no tests ("0 passed, 0
failed", an empty JSON report, a JUnit document without cases). A -k that leaves every
test out is exit 1, as before; a file with errors is exit 1 (its tests did not run)."""


def _no_tests_found(reports) -> str:
    """The message of :data:`NO_TESTS`: the files looked in, and where tests would be."""
    from pathlib import Path

    rules = [rep.file for rep in reports if not rep.file.endswith("_test.trg")] or [rep.file for rep in reports]
    if len(rules) == 1:
        p = Path(rules[0])
        return (f"no tests found in {rules[0]} (looked for test blocks in it and in "
                f"{p.stem}_test.trg beside it)")
    return (f"no tests found in {len(rules)} files (looked for test blocks in them and in an X_test.trg "
            f"beside each X.trg)")


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
