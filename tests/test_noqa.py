"""Leaving warnings out: ``# noqa`` comments and ``triggerc check --ignore`` (ruff's way);
errors are never left out."""

from __future__ import annotations

import gc
import json
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from triggerlang.api import compile_text, load_rules
from triggerlang.cli import main
from triggerlang.fmt import format_text

ACTION = 'action build(sha) = exec "./build.sh" sha\n'


@pytest.fixture(autouse=True)
def _isolate(monkeypatch: pytest.MonkeyPatch, tmp_path: Path):
    monkeypatch.setenv("TRIGGERLANG_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("NO_COLOR", "1")
    yield
    gc.enable()
    gc.unfreeze()


def run(*args: str) -> Result:
    result = CliRunner().invoke(main, list(args))
    assert "Traceback" not in result.output, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    return result


def codes(text: str) -> list[tuple[int, str]]:
    return [(d.span.start.line, d.code) for d in compile_text(text, "rules.trg", base_dir="/nonexistent").diagnostics]


def test_noqa_leaves_out_the_warnings_of_its_declaration_only() -> None:
    text = (ACTION +
            'on git.push branch="a/*" run build with <sha>  # noqa: TRG307\n'   # 2: that code
            'on git.push branch="b/*" run build with <sha>  # noqa\n'           # 3: every warning
            'on git.push branch="c/*" run build with <sha>  # noqa: TRG306\n'   # 4: another code
            'on git.push branch="d/*" tag="#noqa" run build with <sha>\n'       # 5: '#' in a string
            'on git.push brnch="e" run build with <sha>  # noqa\n'              # 6: an error stays
            'on git.push branch="f/*" run build with <sha>  # NOQA: trg105, TRG307\n')  # 7: case, list
    assert codes(text) == [(4, "TRG307"), (5, "TRG307"), (6, "TRG203")]


def test_noqa_covers_every_line_of_a_rule_and_survives_fmt() -> None:
    long = ('long: on git.push branch="release/*" author not in ["aaaaaaaaaaaaaaaaaaaaaaaaa", '
            '"bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb", "cccccccccccccccccccccccccccccc"] '
            'run build with <sha>  # noqa: TRG307\n')
    assert codes(ACTION + long) == []
    formatted, diags = format_text(ACTION + long)
    assert formatted is not None and not diags.has_errors
    assert formatted.splitlines()[1] == "# noqa: TRG307"  # fmt lays the rule out below its comment
    assert codes(formatted) == []
    # a comment at the end of a continuation line counts for the whole rule
    assert codes(ACTION + 'on git.push\n    branch="x/*"\n    run build with <sha>  # noqa\n') == []
    # a comment above a blank line belongs to no declaration
    assert codes(ACTION + '# noqa\n\non git.push branch="x/*" run build with <sha>\n') == [(4, "TRG307")]


def test_a_file_wide_noqa_line() -> None:
    text = ('# triggerc: noqa: TRG307, TRG105\n' + ACTION + 'let unused = 1\n'
            'on git.push branch="a/*" run build with <sha>\n'
            'on github.push run build with <sha>\n')
    assert codes(text) == [(5, "TRG209")]
    assert codes('# triggerc: noqa\n' + text) == []
    # only on a line of its own: at the end of a declaration it is that declaration's noqa
    assert codes(ACTION + 'on git.push branch="a/*" run build with <sha>  # triggerc: noqa\n'
                 'on git.push branch="b/*" run build with <sha>\n') == [(3, "TRG307")]


def test_check_ignore_codes_and_prefixes(tmp_path: Path) -> None:
    p = tmp_path / "rules.trg"
    p.write_text(ACTION + 'let unused = 1\non git.push branch="a/*" run build with <sha>\n')
    r = run("check", "--strict", str(p))
    assert r.exit_code == 1 and "TRG105" in r.stdout and "TRG307" in r.stdout
    r = run("check", "--strict", "--ignore", "TRG307", str(p))
    assert r.exit_code == 1 and "TRG105" in r.stdout and "TRG307" not in r.stdout
    r = run("check", "--strict", "--ignore", "trg1,TRG307", "--format", "json", str(p))
    assert (r.exit_code, json.loads(r.stdout)) == (0, [])
    r = run("check", "--ignore", "TRG3", "--ignore", "TRG105", "--statistics", str(p))
    assert (r.exit_code, r.stdout) == (0, "")
    # an error is reported whatever --ignore says, and naming one is a usage error
    bad = tmp_path / "bad.trg"
    bad.write_text(ACTION + 'on git.push brnch="x" run build with <sha>\n')
    r = run("check", "--ignore", "TRG2", str(bad))
    assert r.exit_code == 1 and "TRG203" in r.stdout
    r = run("check", "--ignore", "TRG203", str(bad))
    assert r.exit_code == 2 and "TRG203 is an error, and errors cannot be ignored" in r.stderr
    r = run("check", "--ignore", "E501", str(p))
    assert r.exit_code == 2 and "no diagnostic code is or begins with E501" in r.stderr
    # an error code some of whose cases are warnings (SPEC §11.2) may be named
    assert run("check", "--ignore", "TRG707", str(p)).exit_code == 0


def test_serve_logs_no_warning_a_noqa_leaves_out(tmp_path: Path) -> None:
    p = tmp_path / "rules.trg"
    p.write_text(ACTION + 'on git.push branch="a/*" run build with <sha>  # noqa: TRG307\n'
                 'on git.push branch="b/*" run build with <sha>\n')
    warned: list = []
    manifest, _ = load_rules(p, warned.extend)
    assert manifest is not None
    assert [(d.span.start.line, d.code) for d in warned] == [(3, "TRG307")]
