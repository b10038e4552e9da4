"""Project configuration for ``triggerc check`` (triggerlang/config.py): ``triggerc.toml``,
``.triggerc.toml`` or ``[tool.triggerc]`` in ``pyproject.toml``, the nearest one winning,
as ruff reads ``[tool.ruff]``. In process, through click's CliRunner in tmp_path folders."""

from __future__ import annotations

from pathlib import Path

import pytest

from cli_helpers import in_tmp_folder, invoke as run  # noqa: F401 - a fixture, used below

pytestmark = pytest.mark.usefixtures("in_tmp_folder")


DEPLOY = 'action deploy(sha) = exec "./d.sh" sha\n'
# one TRG307 warning (a '*' compared exactly), with an unsafe fix
WILDCARD = DEPLOY + 'on git.push branch="a/*" run deploy with <sha>\n'
CLEAN = DEPLOY + 'on git.push branch="main" run deploy with <sha>\n'


def write(path: str, text: str) -> Path:
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text(text)
    return p


def warned(result: Result, code: str = "TRG307") -> bool:
    return code in result.output


# ---------------------------------------------------------------- discovery


def test_triggerc_toml_ignore_leaves_the_warning_out() -> None:
    write("rules.trg", WILDCARD)
    assert warned(run("check", "rules.trg"))
    write("triggerc.toml", 'ignore = ["TRG307"]\n')
    r = run("check", "rules.trg")
    assert r.exit_code == 0, r.output
    assert not warned(r)


def test_a_prefix_ignores_the_family() -> None:
    write("rules.trg", WILDCARD)
    write(".triggerc.toml", 'ignore = ["TRG3"]\n')
    assert not warned(run("check", "rules.trg"))


def test_the_nearest_config_wins_and_levels_do_not_merge() -> None:
    write("triggerc.toml", 'ignore = ["TRG307"]\n')
    write("team/triggerc.toml", "strict = true\n")
    write("team/rules.trg", WILDCARD)
    write("other/rules.trg", WILDCARD)
    r = run("check", "team/rules.trg")
    assert warned(r) and r.exit_code == 1  # team's own config: strict, and no ignore from above
    r = run("check", "other/rules.trg")
    assert not warned(r) and r.exit_code == 0  # the top one


def test_pyproject_without_the_table_is_passed_over() -> None:
    write("triggerc.toml", 'ignore = ["TRG307"]\n')
    write("app/pyproject.toml", '[project]\nname = "app-triggerc-rules"\n\n[tool.ruff]\nline-length = 100\n')
    write("app/rules.trg", WILDCARD)
    r = run("check", "app/rules.trg")
    assert r.exit_code == 0 and not warned(r), r.output
    write("app/pyproject.toml", '[project]\nname = "app"\n\n[tool.triggerc]\nstrict = true\n')
    r = run("check", "app/rules.trg")
    assert warned(r) and r.exit_code == 1


def test_strict_in_the_config_fails_on_a_warning() -> None:
    write("rules.trg", WILDCARD)
    assert run("check", "rules.trg").exit_code == 0
    write("triggerc.toml", "strict = true\n")
    assert run("check", "rules.trg").exit_code == 1
    assert run("check", "--exit-zero", "rules.trg").exit_code == 0


# ---------------------------------------------------------------- per-file-ignores, exclude


def test_per_file_ignores_globs_start_at_the_config_folder(monkeypatch: pytest.MonkeyPatch) -> None:
    write("proj/triggerc.toml", 'per-file-ignores = {"legacy/*.trg" = ["TRG307"]}\n')
    write("proj/legacy/old.trg", WILDCARD)
    write("proj/new/legacy/x.trg", WILDCARD)  # legacy/ below another folder: not the glob's
    write("proj/legacy/deeper/y.trg", WILDCARD)  # '*' stays in one folder
    r = run("check", "proj")
    assert "old.trg" not in r.output
    assert "x.trg" in r.output and "y.trg" in r.output
    monkeypatch.chdir("proj/new")  # the current folder does not change what the glob means
    r = run("check", "../legacy/old.trg", "legacy/x.trg")
    assert "old.trg" not in r.output and "x.trg" in r.output


def test_per_file_ignores_name_without_a_slash_matches_at_any_depth() -> None:
    write("triggerc.toml", '[per-file-ignores]\n"*_legacy.trg" = ["TRG307"]\n')
    write("a/b/one_legacy.trg", WILDCARD)
    write("a/b/two.trg", WILDCARD)
    r = run("check", ".")
    assert "one_legacy.trg" not in r.output and "two.trg" in r.output


def test_exclude_skips_files_found_in_a_folder_but_not_a_file_named() -> None:
    write("triggerc.toml", 'exclude = ["vendor/**", "generated/*.trg"]\n')
    write("rules.trg", CLEAN)
    write("vendor/x/bad.trg", "on nonsense\n")
    write("generated/gen.trg", "on nonsense\n")
    r = run("check", ".")
    assert r.exit_code == 0, r.output
    r = run("check", "**/*.trg")  # a pattern check expands itself
    assert r.exit_code == 0, r.output
    r = run("check", "vendor/x/bad.trg")  # named: checked, as ruff without --force-exclude
    assert r.exit_code == 1 and "bad.trg" in r.output


def test_exclude_a_folder_by_name() -> None:
    write("triggerc.toml", 'exclude = ["vendor"]\n')
    write("rules.trg", CLEAN)
    write("lib/vendor/bad.trg", "on nonsense\n")
    assert run("check", ".").exit_code == 0


def test_a_folder_whose_files_are_all_excluded_is_not_an_error() -> None:
    write("triggerc.toml", 'exclude = ["gen"]\n')
    write("gen/a.trg", "on nonsense\n")
    r = run("check", ".")
    assert r.exit_code == 0, r.output
    Path("triggerc.toml").unlink()
    Path("gen/a.trg").unlink()
    assert run("check", ".").exit_code == 2  # truly empty: still a usage error


def test_fmt_and_test_honour_exclude() -> None:
    write("triggerc.toml", 'exclude = ["vendor/**"]\n')
    write("rules.trg", CLEAN)
    write("vendor/ugly.trg", 'on   git.push   run deploy with <sha>\n' + DEPLOY)
    r = run("fmt", "--check", ".")
    assert r.exit_code == 0, r.output
    write("vendor/t_test.trg", 'include "../rules.trg"\ntest "fails" {\n  on git.push branch="x"\n'
          '  expect nothing\n}\n')
    r = run("test", ".")
    assert "t_test" not in r.output, r.output


# ---------------------------------------------------------------- flags and precedence


def test_ignore_flag_adds_to_the_config() -> None:
    write("triggerc.toml", 'ignore = ["TRG209"]\n')
    write("rules.trg", WILDCARD + 'source http path="/h"\non http.post path="/h" run deploy with "x"\n')
    r = run("check", "rules.trg")
    assert "TRG209" not in r.output and "TRG307" in r.output
    r = run("check", "--ignore", "TRG307", "rules.trg")
    assert "TRG209" not in r.output and "TRG307" not in r.output


def test_strict_flag_forces_strict_over_the_config() -> None:
    write("triggerc.toml", "strict = false\n")
    write("rules.trg", WILDCARD)
    assert run("check", "rules.trg").exit_code == 0
    assert run("check", "--strict", "rules.trg").exit_code == 1


def test_config_flag_uses_that_file_for_every_file(tmp_path: Path) -> None:
    write("triggerc.toml", "strict = true\n")
    write("ci/check.toml", 'ignore = ["TRG307"]\n')
    write("rules.trg", WILDCARD)
    assert run("check", "rules.trg").exit_code == 1
    r = run("check", "--config", "ci/check.toml", "rules.trg")
    assert r.exit_code == 0 and not warned(r), r.output
    write("ci/pyproject.toml", '[tool.triggerc]\nignore = ["TRG307"]\n')
    assert run("check", "--config", "ci/pyproject.toml", "rules.trg").exit_code == 0


def test_isolated_ignores_every_config() -> None:
    write("triggerc.toml", 'ignore = ["TRG307"]\nexclude = ["vendor"]\n')
    write("rules.trg", WILDCARD)
    write("vendor/bad.trg", "on nonsense\n")
    r = run("check", "--isolated", ".")
    assert warned(r) and "bad.trg" in r.output and r.exit_code == 1
    r = run("check", "--isolated", "--config", "triggerc.toml", ".")
    assert r.exit_code == 2 and "--isolated" in r.output


def test_stdin_finds_the_config_of_its_filename() -> None:
    write("legacy/triggerc.toml", 'ignore = ["TRG307"]\n')
    assert warned(run("check", "-", "--stdin-filename", "rules.trg", input=WILDCARD))
    assert not warned(run("check", "-", "--stdin-filename", "legacy/rules.trg", input=WILDCARD))


def test_fix_does_not_fix_what_the_config_ignores() -> None:
    write("triggerc.toml", 'per-file-ignores = {"rules.trg" = ["TRG307"]}\n')
    p = write("rules.trg", WILDCARD)
    run("check", "--fix", "--unsafe-fixes", "rules.trg")
    assert p.read_text() == WILDCARD
    q = write("other.trg", WILDCARD)
    run("check", "--fix", "--unsafe-fixes", "other.trg")
    assert q.read_text() != WILDCARD


# ---------------------------------------------------------------- errors: exit 2, the file named


@pytest.mark.parametrize("text,says", [
    ('ignore = ["TRG307"]\nstrict = \n', "triggerc.toml:2:10: not valid TOML: Invalid value"),
    ('ignore = ["TRG307"\n', "triggerc.toml: not valid TOML: Unclosed array at the end of the file"),
    ('ignores = ["TRG307"]\n', "triggerc.toml:1: unknown key 'ignores'"),
    ('ignore = "TRG307"\n', "triggerc.toml:1: ignore must be a list of strings"),
    ('strict = "yes"\n', "triggerc.toml:1: strict must be true or false"),
    ('exclude = [1]\n', "triggerc.toml:1: exclude must be a list of strings"),
    ('\nignore = ["TRG999"]\n', "triggerc.toml:2: ignore TRG999: no diagnostic code"),
    ('ignore = ["TRG001"]\n', "TRG001 is an error, and errors cannot be ignored"),
    ('per-file-ignores = ["x"]\n', "per-file-ignores must be a table"),
    ('per-file-ignores = {"a/*.trg" = ["TRG99"]}\n', "triggerc.toml:1: per-file-ignores 'a/*.trg': TRG99: no diagnostic code"),
])
def test_a_bad_config_is_a_clear_usage_error(text: str, says: str) -> None:
    write("triggerc.toml", text)
    write("rules.trg", CLEAN)
    r = run("check", "rules.trg")
    assert r.exit_code == 2, r.output
    assert says in r.output and "Traceback" not in r.output
    assert r.output.startswith("triggerc: error: ")


def test_a_bad_pyproject_table_names_its_line() -> None:
    write("pyproject.toml", '[project]\nname = "x"\n\n[tool.triggerc]\nstrict = 1\n')
    write("rules.trg", CLEAN)
    r = run("check", "rules.trg")
    assert r.exit_code == 2 and "pyproject.toml:5: strict must be true or false" in r.output


def test_config_flag_errors() -> None:
    write("rules.trg", CLEAN)
    r = run("check", "--config", "nope.toml", "rules.trg")
    assert r.exit_code == 2 and "nope.toml: cannot read the config" in r.output
    write("pyproject.toml", '[tool.ruff]\n')
    r = run("check", "--config", "pyproject.toml", "rules.trg")
    assert r.exit_code == 2 and "no [tool.triggerc] table" in r.output


# ---------------------------------------------------------------- serve's warnings, the editor


def test_serve_start_up_warnings_leave_out_what_the_config_ignores(caplog: pytest.LogCaptureFixture) -> None:
    import logging

    from triggerlang.api import load_rules
    from triggerlang.runtime.serve import log_warnings

    write("legacy/triggerc.toml", 'per-file-ignores = {"old.trg" = ["TRG307"]}\n')
    for name in ("legacy/old.trg", "legacy/new.trg"):
        p = Path(name).resolve()
        with caplog.at_level(logging.WARNING, logger="triggerlang"):
            caplog.clear()
            write(name, WILDCARD)
            load_rules(p, lambda ds: log_warnings(ds, p))
        assert ("TRG307" in caplog.text) == (name == "legacy/new.trg"), caplog.text
    write("legacy/triggerc.toml", 'ignore = ["TRG999"]\n')  # refused by check: said, and the rules still warn
    with caplog.at_level(logging.WARNING, logger="triggerlang"):
        caplog.clear()
        load_rules(Path("legacy/old.trg").resolve(), lambda ds: log_warnings(ds, Path("legacy/old.trg")))
    assert "TRG999" in caplog.text and "its ignores are not applied" in caplog.text and "TRG307" in caplog.text


def test_the_language_server_leaves_out_what_the_config_ignores(tmp_path: Path) -> None:
    from triggerlang.editor import document as D

    write("triggerc.toml", 'ignore = ["TRG307"]\n')
    write("sub/rules.trg", WILDCARD)
    a = D.Analyzer().analyse(str(tmp_path / "sub" / "rules.trg"), WILDCARD)
    assert a.diagnostics == []
    Path("triggerc.toml").write_text('ignore = ["TRG209"]\n')
    a = D.Analyzer().analyse(str(tmp_path / "sub" / "rules.trg"), WILDCARD)
    assert [d.code for d in a.diagnostics] == ["TRG307"]


def test_the_language_server_reads_the_config_again_only_when_it_changes(monkeypatch: pytest.MonkeyPatch) -> None:
    """Before: every analysis (each keystroke) looked up, read and parsed the config. Now a
    folder's config is read once, and again when a file of its look-up changes."""
    import os
    import time

    from triggerlang import config
    from triggerlang.editor import document as D

    reads: list[str] = []
    read = config._read
    monkeypatch.setattr(config, "_read", lambda path: reads.append(path) or read(path))

    def saved(p: Path, ago: float) -> None:  # (out of the 2 s in which a config is read at every look)
        t = time.time_ns() - int(ago * 1e9)
        os.utime(p, ns=(t, t))

    rules = str(write("sub/rules.trg", WILDCARD).resolve())
    analyser = D.Analyzer()

    def codes() -> list[str]:
        return [d.code for d in analyser.analyse(rules, WILDCARD).diagnostics]

    top = write("triggerc.toml", 'ignore = ["TRG307"]\n')
    saved(top, 60)
    assert (codes(), codes(), codes(), len(reads)) == ([], [], [], 1)  # three keystrokes, one read
    top.write_text('ignore = ["TRG209"]\n')  # edited, the same size
    saved(top, 30)
    assert (codes(), codes(), len(reads)) == (["TRG307"], ["TRG307"], 2)
    nearer = write("sub/.triggerc.toml", 'ignore = ["TRG307"]\n')  # created nearer the file
    assert codes() == []
    nearer.unlink()
    assert codes() == ["TRG307"]
    top.write_text('ignore = ["TRG307"]\n')  # saved twice within one timestamp tick, the same size:
    tick = top.stat().st_mtime_ns
    assert codes() == []
    top.write_text('ignore = ["TRG209"]\n')
    os.utime(top, ns=(tick, tick))
    assert codes() == ["TRG307"]  # (a file saved in the last 2 s is read at every look)
