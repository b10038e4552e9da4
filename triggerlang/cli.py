"""``triggerc``: the click group. Argument handling only; the work happens in the phases.

Exit codes (SPEC §8): 0 success, 1 problems found (diagnostics, a bad event, a failed
check), 2 usage errors (a missing or unreadable file, a bad option).

Start-up matters (``triggerc check`` runs in CI on every commit), so server, watcher and
journal libraries are imported inside the commands that need them, never here.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import click

from . import __version__
from .diagnostics import Diagnostic, render_github, render_json, render_sarif, render_text


class UsageFail(click.exceptions.Exit):
    pass


def usage_error(msg: str) -> None:
    """One clear line on stderr and exit 2 (a missing file is a usage error, SPEC §8)."""
    click.echo(f"triggerc: error: {msg}", err=True)
    raise SystemExit(2)


def fail(msg: str, code: int = 1) -> None:
    click.echo(f"triggerc: error: {msg}", err=True)
    raise SystemExit(code)


def _color(stream=None) -> bool:
    if os.environ.get("NO_COLOR"):
        return False
    if os.environ.get("FORCE_COLOR"):
        return True
    stream = stream or sys.stdout
    return hasattr(stream, "isatty") and stream.isatty()


def _compile(path: str):
    from .api import SourceFileError, compile_file

    try:
        return compile_file(path)
    except SourceFileError as e:
        usage_error(str(e))


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="triggerc")
def main() -> None:
    """triggerc: compile, check and run triggerlang rules (.trg files)."""


# --------------------------------------------------------------------------- check

@main.command()
@click.argument("files", nargs=-1, required=True)
@click.option("--format", "fmt", type=click.Choice(["text", "json", "github", "sarif"]), default="text",
              show_default=True, help="Output format for diagnostics.")
@click.option("--strict", is_flag=True, help="Treat warnings as errors (exit 1 on any diagnostic).")
def check(files: tuple[str, ...], fmt: str, strict: bool) -> None:
    """Report every problem in FILES: syntax, names, types, lints.

    Exit 0 when clean (warnings allowed unless --strict), 1 on problems.
    """
    from .check.checker import CODES

    all_diags: list[Diagnostic] = []
    sources: dict[str, str] = {}
    for f in _expand(files):
        c = _compile(f)
        all_diags.extend(c.diagnostics)
        sources.update(c.sources)
    if fmt == "text":
        out = render_text(all_diags, sources, color=_color())
        if out:
            click.echo(out, nl=False)
        errors = sum(d.is_error for d in all_diags)
        warnings = len(all_diags) - errors
        if all_diags:
            click.echo(f"{errors} error{'s' * (errors != 1)}, {warnings} warning{'s' * (warnings != 1)}", err=True)
    elif fmt == "json":
        click.echo(render_json(all_diags), nl=False)
    elif fmt == "github":
        click.echo(render_github(all_diags), nl=False)
    else:
        click.echo(render_sarif(all_diags, CODES), nl=False)
    bad = any(d.is_error for d in all_diags) or (strict and all_diags)
    raise SystemExit(1 if bad else 0)


def _expand(files) -> list[str]:
    """Files as given; a folder stands for the .trg files in it (sorted)."""
    out = []
    for f in files:
        p = Path(f)
        if p.is_dir():
            found = sorted(str(x) for x in p.glob("*.trg"))
            if not found:
                usage_error(f"{f}: no .trg files in this folder")
            out.extend(found)
        else:
            out.append(f)
    return out


def _report_and_exit_if_errors(c) -> None:
    if not c.ok:
        click.echo(render_text([d for d in c.diagnostics], c.sources, color=_color(sys.stderr)), err=True, nl=False)
        raise SystemExit(1)


# --------------------------------------------------------------------------- compile

@main.command("compile")
@click.argument("file")
@click.option("-o", "--output", type=click.Path(dir_okay=False, writable=True), help="Write the manifest here (default stdout).")
def compile_cmd(file: str, output: str | None) -> None:
    """Write the JSON listener manifest of FILE."""
    from .compile.manifest import dumps

    c = _compile(file)
    _report_and_exit_if_errors(c)
    text = dumps(c.manifest)
    if output:
        try:
            Path(output).write_text(text, encoding="utf-8")
        except OSError as e:
            usage_error(f"cannot write {output}: {e.strerror or e}")
    else:
        click.echo(text, nl=False)


# --------------------------------------------------------------------------- match

@main.command()
@click.argument("file")
@click.argument("event_file", metavar="EVENT.json")
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True)
@click.option("--explain", is_flag=True, help="Also say why each other rule of the event's source did not match.")
@click.option("--github", "github_event", metavar="EVENT", help="EVENT.json is a raw GitHub payload of this X-GitHub-Event.")
@click.option("--gitlab", "gitlab_event", metavar="EVENT", help="EVENT.json is a raw GitLab payload of this event.")
def match(file: str, event_file: str, fmt: str, explain: bool, github_event: str | None,
          gitlab_event: str | None) -> None:
    """Dry run: which rules of FILE an event matches, and the runs they would create.

    EVENT.json is {"source", "type", "data"} ("-" reads stdin). A .jsonl file holds one
    event per line and gets one result line per event, in order.
    """
    from .compile.matcher import build_matcher
    from .dryrun import DryRun, EventInputError, read_events

    if github_event and gitlab_event:
        usage_error("--github and --gitlab cannot be used together")
    c = _compile(file)
    _report_and_exit_if_errors(c)
    provider = ("github", github_event) if github_event else ("gitlab", gitlab_event) if gitlab_event else None
    dry = DryRun(c.manifest, build_matcher(c.manifest["rules"]))
    batch = event_file.endswith(".jsonl")
    try:
        stream = read_events(event_file, provider, batch)
    except EventInputError as e:
        fail(str(e))
    any_bad = False
    out = sys.stdout
    write = out.write
    for item in stream:
        if isinstance(item, EventInputError):
            any_bad = True
            if batch:
                write(json.dumps({"error": str(item)}) + "\n")
                continue
            fail(str(item))
        result = dry.run(item, explain)
        if fmt == "json":
            write(json.dumps(result, ensure_ascii=False, separators=(",", ":") if batch else None,
                             indent=None if batch else 2) + "\n")
        else:
            write(dry.text(result, batch))
    out.flush()
    raise SystemExit(1 if any_bad else 0)


# --------------------------------------------------------------------------- fmt

@main.command("fmt")
@click.argument("files", nargs=-1, required=True)
@click.option("--check", "check_only", is_flag=True, help="Do not write; exit 1 if any file would change.")
@click.option("--diff", is_flag=True, help="Print a unified diff of the changes instead of writing.")
def fmt_cmd(files: tuple[str, ...], check_only: bool, diff: bool) -> None:
    """Rewrite FILES in the canonical layout (or --check that they are)."""
    import difflib

    from .api import SourceFileError, read_source
    from .fmt import format_text

    changed, broken = [], False
    for f in _expand(files):
        try:
            text, diags = read_source(f)
        except SourceFileError as e:
            usage_error(str(e))
        if text is None:
            click.echo(render_text(diags.sorted()), err=True, nl=False)
            broken = True
            continue
        new, diags = format_text(text, f)
        if new is None:
            click.echo(render_text(diags.sorted(), {f: text}, color=_color(sys.stderr)), err=True, nl=False)
            click.echo(f"{f}: not formatted: fix the syntax errors first", err=True)
            broken = True
            continue
        if new == text:
            continue
        changed.append(f)
        if diff:
            click.echo("".join(difflib.unified_diff(text.splitlines(True), new.splitlines(True), f, f)), nl=False)
        elif check_only:
            click.echo(f"would reformat {f}")
        else:
            Path(f).write_text(new, encoding="utf-8")
            click.echo(f"reformatted {f}")
    if check_only or diff:
        n = len(changed)
        click.echo(f"{n} file{'s' * (n != 1)} would be reformatted" if n else "all files formatted", err=True)
        raise SystemExit(1 if (changed or broken) else 0)
    raise SystemExit(1 if broken else 0)


if __name__ == "__main__":  # pragma: no cover
    main()
