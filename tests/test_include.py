"""``include``: rules split over several files (triggerlang/syntax/includes.py).

Real files in tmp_path throughout: the checker and the CLI on a tree of files, the compile
cache on an edited included file, a real ``triggerc serve`` that runs a webhook rule of an
included file and reloads when an included file changes or a glob matches a new one.
"""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path

import pytest
from click.testing import CliRunner

from runtime_helpers import Server, by_rule, done, post, wait_for
from triggerlang.api import compile_file, compile_text
from triggerlang.cli import main as cli
from triggerlang.compile.cache import load_or_compile
from triggerlang.editor.document import Analyzer
from triggerlang.fmt import format_text

COMMON = '''action notify(msg) = exec "true" msg
let main_branch = "main"
'''
DEPLOY = '''include "common.trg"
action deploy(sha) = exec "true" sha
ship: on git.push branch=main_branch run deploy with <sha>
'''
CI = '''include "../common.trg"
secret ci_token = env "CI_TOKEN"
source ci token=ci_token
ci_done: on ci.completed status="success" run notify with "ci"
'''
MAIN = '''include "deploy.trg"
include "rules.d/*.trg"
'''


def tree(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        p = root / name
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(text)
    return root


@pytest.fixture
def team(tmp_path: Path) -> Path:
    """main.trg includes deploy.trg and rules.d/*.trg; both include common.trg."""
    return tree(tmp_path / "rules", {"common.trg": COMMON, "deploy.trg": DEPLOY, "rules.d/ci.trg": CI,
                                     "main.trg": MAIN})


def run(*args: str, cwd: Path) -> tuple[int, str]:
    old = os.getcwd()
    os.chdir(cwd)
    try:
        r = CliRunner().invoke(cli, list(args))
    finally:
        os.chdir(old)
    return r.exit_code, r.output


def codes(c) -> list[tuple[str, str, int]]:
    return [(d.code, d.file, d.span.start.line) for d in c.diagnostics]


# --------------------------------------------------------------------------- the program

def test_included_declarations_join_one_program_each_file_read_once(team: Path) -> None:
    c = compile_file(team / "main.trg")
    assert c.diagnostics == [] and c.ok
    # common.trg is included by deploy.trg and by rules.d/ci.trg: read once, no TRG101
    assert [Path(f.path).relative_to(team.resolve()).as_posix() for f in c.module.included] == \
        ["deploy.trg", "common.trg", "rules.d/ci.trg"]
    assert sorted(c.program.actions) == ["deploy", "notify"]
    assert [r.name for r in c.program.rules] == ["ship", "ci_done"]
    m = c.manifest
    assert m["includes"] == ["deploy.trg", "common.trg", "rules.d/ci.trg"]
    assert m["include_globs"] == ["rules.d/*.trg"]
    assert [r["span"]["file"] for r in m["rules"]] == ["deploy.trg", "rules.d/ci.trg"]
    assert m["actions"]["notify"]["span"]["file"] == "common.trg"
    assert "secret" not in json.dumps(m["includes"])
    # each file is checkable on its own: it includes what it uses
    for name in ("deploy.trg", "rules.d/ci.trg"):
        assert compile_file(team / name).ok, name
    assert compile_file(team / "deploy.trg").diagnostics == []  # (common.trg's unused notify is not its business)
    assert compile_file(team / "common.trg").diagnostics == []  # a library of declarations: no unused warnings
    # and a file without includes gives the manifest it always gave (no new keys)
    assert "includes" not in compile_file(team / "common.trg").manifest


def test_the_readme_example_checks_strict_and_formatted(tmp_path: Path) -> None:
    """README (Rules in several files): its four files, copied as they are, pass the CI
    job's check --strict and fmt --check (before: TRG209 for a ci route without a secret,
    and comments aligned as fmt does not)."""
    import re

    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")
    section = readme.split("\n## Rules in several files\n", 1)[1]
    block = re.search(r"```trg\n(.*?)```", section, re.S).group(1)
    files = {m.group(1): m.group(0).strip() + "\n" for m in re.finditer(r"^# (\S+\.trg)\b.*?(?=^# \S+\.trg\b|\Z)",
                                                                       block, re.S | re.M)}
    assert sorted(files) == ["common.trg", "deploy.trg", "main.trg", "rules.d/ci.trg"]
    root = tree(tmp_path, files)
    for args in (("check", "--strict", "."), ("check", "--strict", "main.trg"), ("fmt", "--check", ".")):
        assert run(*args, cwd=root)[0] == 0, (args, run(*args, cwd=root)[1])


def test_a_cycle_is_harmless(tmp_path: Path) -> None:
    root = tree(tmp_path, {"a.trg": 'include "b.trg"\naction x = exec "true"\non git.push run y\n',
                           "b.trg": 'include "a.trg"\naction y = exec "true"\non git.tag run x\n',
                           "self.trg": 'include "self.trg"\ninclude "*.trg"\n'})
    for name in ("a.trg", "b.trg", "self.trg"):
        c = compile_file(root / name)
        assert c.diagnostics == [], (name, codes(c))
        assert sorted(c.program.actions) == ["x", "y"]


def test_include_problems_are_errors_at_the_string(tmp_path: Path) -> None:
    root = tree(tmp_path, {"common.trg": COMMON, "sub/x.trg": "", "notes.txt": "",
                           "x_test.trg": 'test "t":\n  given git.push\n  expect none\n',
                           "main.trg": 'include "comon.trg"\ninclude "nothing/*.trg"\ninclude "sub"\n'
                                       'include "notes.txt"\ninclude "x_test.trg"\ninclude "*.txt"\n'})
    c = compile_file(root / "main.trg")
    got = [(d.code, d.span.start.line, d.span.start.column, d.message, d.hint) for d in c.diagnostics]
    assert [g[:3] for g in got] == [("TRG005", n, 9) for n in range(1, 7)]
    assert got[0][3] == "no such file: 'comon.trg'" and got[0][4].startswith("did you mean 'common.trg'?")
    assert got[1][3] == "no file matches 'nothing/*.trg'" and "matches nothing is an error" in got[1][4]
    assert got[2][3] == "'sub' is a folder, not a rules file" and 'include "sub/*.trg"' in got[2][4]
    assert got[3][3] == "'notes.txt' is not a .trg file"
    assert "triggerc test" in got[4][4]
    assert got[5][3] == "an include's glob must match .trg files"


def test_a_missing_include_is_offered_only_a_name_close_to_it(tmp_path: Path) -> None:
    """The names are compared without their common .trg: 'nope.trg' is not offered 'tour.trg'
    (nor fixed to it by check --fix), and an include is not offered the including file
    itself or a test file."""
    root = tree(tmp_path, {"tour.trg": "", "deploy_test.trg": "", "rules.d/ci.trg": 'include "cj.trg"\n',
                           "main.trg": 'include "nope.trg"\ninclude "deploy_tst.trg"\n'})
    for name, count in (("main.trg", 2), ("rules.d/ci.trg", 1)):
        got = compile_file(root / name).diagnostics
        assert [(d.code, d.fix) for d in got] == [("TRG005", None)] * count, name
        assert not any("did you mean" in d.hint for d in got), [d.hint for d in got]
    code, out = run("check", "--fix", "main.trg", cwd=root)
    assert code == 1 and (root / "main.trg").read_text().startswith('include "nope.trg"\n'), out


def test_an_include_without_trg_is_offered_the_file_that_has_it(tmp_path: Path) -> None:
    """include "common" beside common.trg said only that it is not a .trg file."""
    root = tree(tmp_path, {"common.trg": COMMON, "notes": "", "main.trg": 'include "common"\ninclude "notes"\n'})
    got = compile_file(root / "main.trg").diagnostics
    assert [(d.code, d.hint) for d in got] == [
        ("TRG005", "did you mean 'common.trg'? (an include reads rules files, whose names end in .trg)"),
        ("TRG005", "an include reads rules files, whose names end in .trg")]
    code, _ = run("check", "--fix", "main.trg", cwd=root)
    assert (root / "main.trg").read_text() == 'include "common.trg"\ninclude "notes"\n'


def test_a_glob_reads_sorted_files_across_folders_without_test_files(tmp_path: Path) -> None:
    root = tree(tmp_path, {"r/b.trg": 'b: on git.tag run n\n', "r/a.trg": 'a: on git.push run n\n',
                           "r/deep/c.trg": 'c: on git.merge run n\n', "r/a_test.trg": "this is not read\n",
                           "r/.hidden.trg": "nor this\n",
                           "main.trg": 'include "r/**/*.trg"\naction n = exec "true"\n'})
    c = compile_file(root / "main.trg")
    assert c.diagnostics == []
    assert [r.name for r in c.program.rules] == ["a", "b", "c"]


def test_diagnostics_name_the_included_file_in_every_format(team: Path) -> None:
    (team / "rules.d" / "ci.trg").write_text(CI + 'on git.push brnch="x" run notify with "y"\n')
    (team / "deploy.trg").write_text(DEPLOY + "on git.push run nothing\n")
    want = [("rules.d/ci.trg", 5, 13, "TRG203"), ("deploy.trg", 4, 17, "TRG104")]
    rc, out = run("check", "--format", "json", "main.trg", cwd=team)
    assert rc == 1
    got = sorted((d["file"], d["line"], d["column"], d["code"]) for d in json.loads(out))
    assert got == sorted(want)
    rc, out = run("check", "main.trg", cwd=team)
    assert "rules.d/ci.trg:5:13: error[TRG203]: git.push has no field 'brnch'" in out, out
    assert '  5 | on git.push brnch="x" run notify with "y"' in out  # the included file's line, shown
    assert "deploy.trg:4:17: error[TRG104]" in out
    rc, out = run("check", "--format", "github", "main.trg", cwd=team)
    assert "::error file=rules.d/ci.trg,line=5,col=13," in out and "::error file=deploy.trg,line=4,col=17," in out
    rc, out = run("check", "--format", "sarif", "main.trg", cwd=team)
    results = json.loads(out)["runs"][0]["results"]
    where = sorted((r["locations"][0]["physicalLocation"]["artifactLocation"]["uri"],
                    r["locations"][0]["physicalLocation"]["region"]["startLine"]) for r in results)
    assert where == [("deploy.trg", 4), ("rules.d/ci.trg", 5)]  # (relative to the working folder here)
    rc, out = run("check", "--format", "gitlab", "main.trg", cwd=team)
    assert sorted((i["location"]["path"], i["location"]["lines"]["begin"]) for i in json.loads(out)) == \
        [("deploy.trg", 4), ("rules.d/ci.trg", 5)]
    # checked from another folder, the names start there
    rc, out = run("check", "rules/main.trg", cwd=team.parent)
    assert "rules/rules.d/ci.trg:5:13: error[TRG203]" in out
    # a folder: each file alone, and the problems of a file several of them read once
    rc, out = run("check", "--format", "json", ".", cwd=team)
    got = [(d["file"], d["line"], d["code"]) for d in json.loads(out) if d["severity"] == "error"]
    assert sorted(got) == [("deploy.trg", 4, "TRG104"), ("rules.d/ci.trg", 5, "TRG203")]


def test_every_checker_phase_names_the_included_file_in_check_and_the_editor(tmp_path: Path) -> None:
    """An error of each phase inside an included file (field, type, correlation key, a
    test's binding, a duplicate and a server option across files): check's text and json
    name that file and line, and so do the related notes; the editor shows them in that
    file, and sums them up on the include line of the file that reads it."""
    root = tree(tmp_path, {
        "common.trg": 'action notify(msg) = exec "true" msg\n'
                      'source http port=8080\n'
                      'on git.push brnch="x" run notify with "a"\n'
                      'on git.push branch=1 run notify with "b"\n'
                      'g: on all(git.push as p, git.tag as t) same <nope> within 1h run notify with "c"\n'
                      'dup: on git.tag run notify with "d"\n'
                      'web: on http.post path="/w" run notify with "w"\n',
        "main.trg": 'include "common.trg"\n'
                    'source http port=9090\n'
                    'dup: on git.tag run notify with "e"\n'
                    'test "t":\n  given git.tag tag="v1"\n  expect dup with mesg="d"\n'})
    rc, out = run("check", "--format", "json", "main.trg", cwd=root)
    got = [(d["file"], d["line"], d["code"], [(r["file"], r["line"]) for r in d.get("related", [])])
           for d in json.loads(out) if d["severity"] == "error"]
    assert got == [("common.trg", 3, "TRG203", []), ("common.trg", 4, "TRG204", []),
                   ("common.trg", 5, "TRG703", [("common.trg", 5)]), ("common.trg", 5, "TRG703", [("common.trg", 5)]),
                   ("main.trg", 2, "TRG210", [("common.trg", 2)]), ("main.trg", 3, "TRG101", [("common.trg", 6)]),
                   ("main.trg", 6, "TRG402", [("common.trg", 1)])], got
    rc, out = run("check", "main.trg", cwd=root)
    assert "the HTTP server listens on one port: first set in common.trg:2" in out, out  # (was "on line 2": main's)
    assert "= note: common.trg:2:13: port is first set here" in out
    assert "common.trg:5:11: error[TRG703]" in out and "= note: common.trg:5:45: the key <nope>" in out

    a = Analyzer()
    main = str(root.resolve() / "main.trg")
    shown = a.analyse(main, (root / "main.trg").read_text()).diagnostics
    assert [(d.code, d.file, d.span.start.line) for d in shown] == \
        [("TRG203", main, 1), ("TRG210", main, 2), ("TRG101", main, 3), ("TRG402", main, 6)]
    assert shown[0].message == "in common.trg:3:13: git.push has no field 'brnch' (and 3 more errors in the files it reads)"
    assert shown[2].message == "duplicate rule name 'dup' (first declared in common.trg:6)"  # relative, as check says
    common = str(root.resolve() / "common.trg")
    assert [(d.code, d.file, d.span.start.line) for d in a.analyse(common, (root / "common.trg").read_text()).diagnostics
            if d.is_error] == [("TRG203", common, 3), ("TRG204", common, 4), ("TRG703", common, 5), ("TRG703", common, 5)]


def test_include_hints_name_the_folder_as_written(tmp_path: Path) -> None:
    root = tree(tmp_path, {"rules/sub/in.trg": 'include "../nope.trg"\ninclude "../x/*.trg"\n',
                           "rules/main.trg": 'include "sub/in.trg"\n'})
    rc, out = run("check", "--format", "json", "rules/main.trg", cwd=tmp_path)
    assert [d["hint"] for d in json.loads(out)] == [
        "(the path is relative to rules/sub/, the folder of in.trg)",
        "the pattern is relative to rules/sub/, the folder of in.trg; a glob that matches nothing is an error "
        "(a typo would leave the rules out)"]
    assert str(tmp_path) not in out  # never the absolute folder it resolves to


def test_a_syntax_error_and_bad_utf8_in_an_included_file_are_reported_there(tmp_path: Path) -> None:
    root = tree(tmp_path, {"bad.trg": 'on git.push run\naction a = exec "true"\n',
                           "main.trg": 'include "bad.trg"\ninclude "latin.trg"\non git.tag run a\n'})
    (root / "latin.trg").write_bytes(b'let x = "caf\xe9"\n')
    c = compile_file(root / "main.trg")
    assert [(d.code, Path(d.file).name, d.span.start.line) for d in c.diagnostics] == \
        [("TRG002", "bad.trg", 1), ("TRG004", "latin.trg", 1)]


def test_duplicates_across_files_point_at_both_places(team: Path) -> None:
    (team / "rules.d" / "ci.trg").write_text(CI + 'action deploy = exec "true"\nship: on git.tag run deploy\n')
    rc, out = run("check", "--format", "json", "main.trg", cwd=team)
    dupes = [d for d in json.loads(out) if d["code"] == "TRG101"]
    assert [(d["file"], d["line"]) for d in dupes] == [("rules.d/ci.trg", 5), ("rules.d/ci.trg", 6)]
    assert dupes[0]["message"] == "duplicate action name 'deploy' (first declared in deploy.trg:2)"
    assert [(r["file"], r["line"]) for d in dupes for r in d["related"]] == [("deploy.trg", 2), ("deploy.trg", 3)]
    rc, out = run("check", "main.trg", cwd=team)
    assert "= note: deploy.trg:2:8: action 'deploy' is first declared here" in out


def test_a_noqa_comment_in_an_included_file_leaves_out_its_warning_there(tmp_path: Path) -> None:
    root = tree(tmp_path, {"hooks.trg": 'action n = exec "true"\n'
                                        'a: on http.post path="/a" run n  # noqa: TRG209\nb: on http.post path="/b" run n\n',
                           "main.trg": 'include "hooks.trg"\n'})
    c = compile_file(root / "main.trg")
    assert [(d.code, Path(d.file).name, d.span.start.line) for d in c.diagnostics] == [("TRG209", "hooks.trg", 3)]


def test_unlabelled_rules_of_two_files_on_the_same_line_are_two_rules(tmp_path: Path) -> None:
    root = tree(tmp_path, {"a.trg": 'on git.push run n\n', "b-c.trg": 'on git.tag run n\n',
                           "main.trg": 'on git.push branch="x" run n\ninclude "a.trg"\ninclude "b-c.trg"\n'
                                       'action n = exec "true"\n'})
    c = compile_file(root / "main.trg")
    assert c.diagnostics == []
    assert [r.name for r in c.program.rules] == ["L1", "a-L1", "b-c-L1"]


def test_tests_of_an_included_file_run_with_that_file(team: Path) -> None:
    (team / "deploy.trg").write_text(DEPLOY + 'test "deploy alone":\n  given git.push branch="main" sha="a"\n'
                                              '  expect ship with sha="a"\n')
    (team / "main.trg").write_text(MAIN + 'test "the whole program":\n  given ci.completed status="success"\n'
                                          '  expect only ci_done\n')
    rc, out = run("test", "-v", "main.trg", cwd=team)
    assert rc == 0, out
    assert 'ok   test "the whole program"' in out and "deploy alone" not in out and "1 passed" in out
    rc, out = run("test", "-v", "deploy.trg", cwd=team)
    assert rc == 0 and 'ok   test "deploy alone"' in out, out


def test_a_companion_test_file_sees_what_its_file_includes(team: Path) -> None:
    (team / "main_test.trg").write_text('test "ci":\n  given ci.completed status="success"\n'
                                        '  expect ci_done with msg="ci"\n')
    rc, out = run("test", "-v", "main.trg", cwd=team)
    assert rc == 0 and 'main_test.trg:1:1: ok   test "ci"' in out, out


def test_a_failing_test_and_match_explain_name_the_included_file_that_holds_the_condition(team: Path) -> None:
    # before: `condition ... (main.trg:3:27)`, the file given to triggerc and a line of
    # another file, and `(line 3:27)` in a correlation's timeline
    (team / "rules.d" / "gate.trg").write_text(
        'include "../common.trg"\n'
        'gate: on all(ci.completed pipeline="a" as a, ci.completed pipeline="b" as b) same <sha> within 1h\n'
        '    run notify with <sha>\n')
    (team / "main_test.trg").write_text(
        'test "ship":\n  given git.push branch="dev" sha="a"\n  expect ship\n'
        'test "gate":\n  given ci.completed pipeline="a" status="success" sha="k"\n'
        '  given ci.completed pipeline="bb" status="success" sha="k"\n  expect gate\n')
    rc, out = run("test", "main.trg", cwd=team)
    assert rc == 1, out
    assert '  condition branch="main" (deploy.trg:3:19) failed: branch was "dev"\n' in out, out
    assert '             b: no match: pipeline="b" (rules.d/gate.trg:2:59) failed: pipeline was "bb"\n' in out, out
    rc, out = run("test", "rules/main.trg", cwd=team.parent)    # shown as the main file is shown
    assert "(rules/deploy.trg:3:19)" in out and "(rules/rules.d/gate.trg:2:59)" in out, out
    (team / "e.json").write_text(json.dumps({"source": "ci", "type": "completed",
                                             "data": {"pipeline": "bb", "status": "success", "sha": "k"}}))
    rc, out = run("match", "--explain", "rules/main.trg", "rules/e.json", cwd=team.parent)   # match --explain too
    assert 'gate [b]: no match: pipeline="b" (rules/rules.d/gate.trg:2:59) failed: pipeline was "bb"\n' in out, out
    rc, out = run("match", "--explain", "--format", "json", "main.trg", "e.json", cwd=team)
    assert [(x["member"], x["file"]) for x in json.loads(out)["correlation_explain"]] == [
        ("a", "rules.d/gate.trg"), ("b", "rules.d/gate.trg")], out


def test_stdin_includes_start_from_its_stated_file(team: Path) -> None:
    os.chdir(team)  # (CliRunner's input is stdin)
    try:
        r = CliRunner().invoke(cli, ["check", "-", "--stdin-filename", "main.trg"], input=MAIN + "on git.push run nope\n")
    finally:
        os.chdir(Path(__file__).parent)
    assert r.exit_code == 1 and "main.trg:3:" in r.output and "TRG104" in r.output and "TRG005" not in r.output


def test_fmt_formats_the_include_line_and_never_follows_it(tmp_path: Path) -> None:
    assert format_text('include   r"rules.d/*.trg"   # all of them\ninclude "x.trg"\n')[0] == \
        'include r"rules.d/*.trg"  # all of them\ninclude "x.trg"\n'
    root = tree(tmp_path, {"main.trg": 'include  "gone.trg"\n'})
    rc, out = run("fmt", "main.trg", cwd=root)
    assert rc == 0 and (root / "main.trg").read_text() == 'include "gone.trg"\n'


def test_compile_text_without_a_file_reads_includes_from_base_dir(team: Path) -> None:
    c = compile_text(MAIN, "main.trg", base_dir=str(team))
    assert c.ok and sorted(c.program.actions) == ["deploy", "notify"]
    assert set(c.sources) == {"main.trg", "deploy.trg", "common.trg", "rules.d/ci.trg"}


def test_several_files_given_to_compile_or_serve_are_one_program(tmp_path: Path) -> None:
    root = tree(tmp_path, {"a.trg": 'action rec(n) = exec "true" n\na: on git.push run rec with <sha>\n',
                           "more/b.trg": 'b: on git.tag run rec with <tag>\nlet unused = 1\n',
                           "c.trg": 'action rec = exec "true"\n', "m.json": "{}"})
    rc, out = run("compile", "a.trg", "more/b.trg", cwd=root)
    assert rc == 0, out
    m = json.loads(out)
    assert [r["name"] for r in m["rules"]] == ["a", "b"] and m["includes"] == ["more/b.trg"]
    assert m["rules"][1]["span"]["file"] == "more/b.trg"
    # a name in two of them: the TRG101 of two files, its note in the first one
    rc, out = run("compile", "a.trg", "more/b.trg", "c.trg", cwd=root)
    assert rc == 1 and "c.trg:1:8: error[TRG101]: duplicate action name 'rec' (first declared in a.trg:1)" in out, out
    assert "= note: a.trg:1:8: action 'rec' is first declared here" in out, out  # (was c.trg:1:8, itself)
    for args, why in [(("a.trg", "nope.trg"), "nope.trg: no such file"),
                      (("a.trg", "m.json"), "m.json is not a rules file: several files are one program"),
                      (("a.trg", "more"), 'more is a folder: include its files from a rules file: include "more/*.trg"'),
                      (("a.trg", "-"), "- (stdin) is a whole program")]:
        for command in ("compile", "serve"):
            rc, out = run(command, *args, cwd=root)
            assert rc == 2 and why in out, (command, args, out)


def test_serve_of_a_folder_says_how_to_include_its_files(team: Path) -> None:
    rc, out = run("serve", "rules.d", cwd=team)
    assert rc == 2 and 'serve a file that includes them: include "rules.d/*.trg"' in out, out


# --------------------------------------------------------------------------- the compile cache

def test_the_compile_cache_keys_on_every_file_read(team: Path, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    main = team / "main.trg"

    def load():
        c = load_or_compile(main, cache)
        return type(c).__name__, [r["filter"] for r in c.manifest["rules"] if r["name"] == "ship"], \
            [r["name"] for r in c.manifest["rules"]]

    first = load()
    assert first[0] == "Compiled"
    assert load() == ("CachedProgram", first[1], first[2])  # a hit
    (team / "common.trg").write_text(COMMON.replace('"main"', '"trunk"'))  # an included file changes
    again = load()
    assert again[0] == "Compiled" and "trunk" in json.dumps(again[1]) and "trunk" not in json.dumps(first[1])
    assert load()[0] == "CachedProgram"
    (team / "rules.d" / "more.trg").write_text('more: on git.tag run notify with "t"\n')  # a glob matches more
    grown = load()
    assert grown[0] == "Compiled" and grown[2] == ["ship", "ci_done", "more"]
    (team / "rules.d" / "more.trg").unlink()
    assert load()[2] == ["ship", "ci_done"]


# --------------------------------------------------------------------------- the editor

def test_the_editor_shows_a_documents_own_problems_with_its_includes_resolved(team: Path) -> None:
    (team / "common.trg").write_text(COMMON + "on git.push run nowhere\n")
    main = str((team / "deploy.trg").resolve())
    a = Analyzer().analyse(main, DEPLOY + 'on git.tag run notify with "x"\non git.tag run nope\n')
    # its own TRG104, and common.trg's summed up on the include line that reads it (as clangd does)
    assert [(d.code, d.file, d.span.start.line, d.span.start.column) for d in a.diagnostics] == \
        [("TRG104", main, 1, 9), ("TRG104", main, 5, 16)]
    assert a.diagnostics[0].message == "in common.trg:3:17: unknown action 'nowhere'"
    assert a.diagnostics[0].related[0][0].file == str(team.resolve() / "common.trg")
    assert [type(d).__name__ for d in a.module.decls][:2] == ["Include", "ActionDecl"]  # its own declarations


def test_the_editor_parses_an_included_file_again_only_when_its_text_changes(
        team: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Before: every analysis (each keystroke in deploy.trg) parsed common.trg afresh. Now an
    included file's parse is kept by its text: a change on disk or in the editor is seen."""
    from triggerlang.editor import document
    from triggerlang.syntax import includes

    parsed: list[str] = []
    real_parse = document.parse
    for module in (document, includes):  # (every parse, wherever it is called from)
        monkeypatch.setattr(module, "parse", lambda text, file, cache=None: parsed.append(file) or
                            real_parse(text, file, cache))
    deploy, common = str((team / "deploy.trg").resolve()), str((team / "common.trg").resolve())
    analyser = Analyzer()

    def check(text: str = DEPLOY + 'on git.tag run notify with "x"\n', overlay=None) -> list[str]:
        parsed.clear()
        a = analyser.analyse(deploy, text, overlay=overlay)
        return [d.code for d in a.diagnostics]

    assert (check(), parsed) == ([], [deploy, common])
    assert (check(DEPLOY + 'on git.tag run notify with "y"\n'), parsed) == ([], [deploy])  # common.trg kept
    (team / "common.trg").write_text(COMMON.replace("notify", "tell"))  # changed on disk: parsed again
    assert (check(), parsed) == (["TRG104"], [deploy, common])
    assert (check(overlay={common: COMMON}), parsed) == ([], [deploy, common])  # an unsaved text
    assert (check(overlay={common: COMMON}), parsed) == ([], [deploy])


def test_the_editor_knows_the_names_of_included_files_both_ways(team: Path) -> None:
    """Completion, hover, definition, references and rename across the files of a program;
    no unused warning for what another file uses; an included file's errors on its include
    line."""
    from lsp_client import LspClient, pos

    (team / "broken.trg").write_text('on git.push brnch="x" run notify\non git.tag run nowhere\n')
    client = LspClient(cwd=team, init_options={"debounce_ms": 50})
    try:
        u = client.open(team / "deploy.trg")
        assert client.wait_diagnostics(u) == []  # (common.trg's notify is not its to use)
        line = DEPLOY.split("\n")[2]  # ship: on git.push branch=main_branch run deploy with <sha>
        defs = client.request("textDocument/definition",
                              {"textDocument": {"uri": u}, "position": pos(2, line.index("main_branch") + 2)})
        common = u.replace("deploy.trg", "common.trg")
        assert defs == [{"uri": common, "range": {"start": pos(1, 4), "end": pos(1, 15)}}]  # let main_branch
        defs = client.request("textDocument/definition",
                              {"textDocument": {"uri": u}, "position": pos(2, line.index("deploy") + 1)})
        assert defs == [{"uri": u, "range": {"start": pos(1, 7), "end": pos(1, 13)}}]  # its own, as before
        cu = client.open(team / "rules.d" / "ci.trg")
        assert client.wait_diagnostics(cu) == []
        line = CI.split("\n")[3]  # ci_done: on ci.completed status="success" run notify with "ci"
        at_notify = {"textDocument": {"uri": cu}, "position": pos(3, line.index("notify"))}
        assert client.request("textDocument/definition", at_notify) == \
            [{"uri": common, "range": {"start": pos(0, 7), "end": pos(0, 13)}}]
        h = client.request("textDocument/hover", at_notify)["contents"]["value"]
        assert "action notify(msg)" in h and "declared in `../common.trg:1`" in h, h

        # main.trg: a rule being written is offered what the files it includes declare
        text = MAIN + "on git.push branch=main_b run dep"
        mu = client.open(team / "main.trg", text)
        diags = client.wait_diagnostics(mu)
        assert [(d["code"], d["range"]["start"]["line"]) for d in diags] == [("TRG102", 2), ("TRG104", 2)]

        def labels(line: int, col: int) -> list[str]:
            got = client.request("textDocument/completion", {"textDocument": {"uri": mu}, "position": pos(line, col)})
            return [i["label"] for i in got["items"]]
        assert "deploy" in labels(2, len(text.split("\n")[2]))  # (deploy.trg's)
        assert "main_branch" in labels(2, text.split("\n")[2].index(" run"))
        h = client.request("textDocument/hover", {"textDocument": {"uri": mu}, "position": pos(0, 0)})
        assert h is None  # (an include line: nothing to say)

        # from the declaring file: the uses in the open files that include it (or that
        # include a file that does) and in the files those read
        cmu = client.open(team / "common.trg")
        assert client.wait_diagnostics(cmu) == []  # rule-less: no unused warning, as check gives none
        refs = client.request("textDocument/references", {"textDocument": {"uri": cmu}, "position": pos(0, 8),
                                                          "context": {"includeDeclaration": True}})
        assert sorted((r["uri"].rsplit("/rules/", 1)[1], r["range"]["start"]["line"]) for r in refs) == \
            [("common.trg", 0), ("rules.d/ci.trg", 3)]
        refs = client.request("textDocument/references", {"textDocument": {"uri": cmu}, "position": pos(1, 6),
                                                          "context": {"includeDeclaration": False}})
        assert [(r["uri"], r["range"]["start"]["line"]) for r in refs] == [(u, 2)]  # deploy.trg's use

        # rename from either side: one WorkspaceEdit over the declaration and every use seen
        changes = client.request("textDocument/rename", {"textDocument": {"uri": cmu}, "position": pos(0, 8),
                                                         "newName": "tell"})["changes"]
        assert sorted(changes) == sorted([cmu, cu])
        assert _apply(COMMON, changes[cmu]).startswith("action tell(msg)")
        assert 'run tell with "ci"' in _apply(CI, changes[cu])
        changes = client.request("textDocument/rename", {**at_notify, "newName": "tell"})["changes"]
        assert sorted(changes) == sorted([cmu, cu])  # from the file that uses it: the same edit
        with pytest.raises(Exception, match="already declared"):  # a name another file of the program has
            client.request("textDocument/rename", {**at_notify, "newName": "deploy"})

        # an included file's errors: summed up on the include line, the full list in that file
        text = 'include "broken.trg"\ninclude "common.trg"\n'
        bu = client.open(team / "top.trg", text)
        diags = client.wait_diagnostics(bu)
        assert [(d["code"], d["range"], d["severity"]) for d in diags] == \
            [("TRG203", {"start": pos(0, 8), "end": pos(0, 20)}, 1)]
        assert diags[0]["message"].startswith("in broken.trg:1:13: git.push has no field 'brnch' "
                                              "(and 2 more errors in the files it reads)\n")
        assert "fix" not in diags[0]["data"]  # (the did-you-mean is broken.trg's, not this line's)
        assert diags[0]["relatedInformation"] == [{  # the editor's link to the error itself
            "location": {"uri": bu.replace("top.trg", "broken.trg"), "range": {"start": pos(0, 12), "end": pos(0, 17)}},
            "message": "git.push has no field 'brnch'"}]
        assert not [p for p in client.notifications if p["method"] == "textDocument/publishDiagnostics"
                    and p["params"]["uri"].endswith("broken.trg")]  # nothing published to a file not open
        bru = client.open(team / "broken.trg")
        assert len(client.wait_diagnostics(bru)) == 3  # opened: its own problems, in full
        client.change(bru, 2, [{"text": 'on git.push run notify with "x"\n'}])  # fixed, not saved:
        assert client.wait_diagnostics(bu, after=1) == []  # the file that includes it reads the edited text
    finally:
        assert client.close() == 0, client.stderr
    assert "Traceback" not in client.stderr, client.stderr


def test_the_editor_reads_an_open_included_files_unsaved_text(team: Path) -> None:
    """An included file open with unsaved edits: the open files that include it (two, one
    of them through another file) are checked with its text at each change, and with the
    file's again once it is closed unsaved; the file on disk is never written."""
    from lsp_client import LspClient

    client = LspClient(cwd=team, init_options={"debounce_ms": 50})
    try:
        du = client.open(team / "deploy.trg", DEPLOY + 'on git.tag run alert with "x"\n')
        mu = client.open(team / "main.trg", MAIN + 'on git.tag run alert with "y"\n')  # (via deploy.trg)
        unknown = {du: ["TRG104"], mu: ["TRG104", "TRG104"]}  # unknown action 'alert' (main.trg: and in
        for u in (du, mu):                                     # deploy.trg's open text, on its include line)
            assert [d["code"] for d in client.wait_diagnostics(u)] == unknown[u]
        cu = client.open(team / "common.trg")
        assert client.wait_diagnostics(cu) == []
        seen = {u: len(client.diagnostics(u)) for u in (du, mu)}
        client.change(cu, 2, [{"range": {"start": {"line": 2, "character": 0}, "end": {"line": 2, "character": 0}},
                               "text": 'action alert(msg) = exec "true" msg\n'}])
        for u in (du, mu):
            assert client.wait_diagnostics(u, after=seen[u]) == []  # the unsaved `alert` is declared
        assert (team / "common.trg").read_text() == COMMON
        seen = {u: len(client.diagnostics(u)) for u in (du, mu)}
        client.notify("textDocument/didClose", {"textDocument": {"uri": cu}})  # closed without saving:
        for u in (du, mu):
            assert [d["code"] for d in client.wait_diagnostics(u, after=seen[u])] == unknown[u]  # the disk's text
    finally:
        assert client.close() == 0, client.stderr
    assert "Traceback" not in client.stderr, client.stderr


def test_the_editor_includes_an_open_file_never_saved(team: Path) -> None:
    """A file created in the editor and not yet saved can be included: its declarations
    are seen (no 'no such file'); closed unsaved, it is missing again. check reads the disk."""
    from lsp_client import LspClient

    client = LspClient(cwd=team, init_options={"debounce_ms": 50})
    try:
        mu = client.open(team / "main.trg", 'include "fresh.trg"\non git.tag run alert with "y"\n')
        missing = ["TRG005", "TRG104"]  # no such file; unknown action 'alert'
        assert sorted(d["code"] for d in client.wait_diagnostics(mu)) == missing
        seen = len(client.diagnostics(mu))
        fu = client.open(team / "fresh.trg", 'action alert(msg) = exec "true" msg\n')  # never saved
        assert client.wait_diagnostics(mu, after=seen) == []  # included, and `alert` is declared
        assert not (team / "fresh.trg").exists()
        seen = len(client.diagnostics(mu))
        client.notify("textDocument/didClose", {"textDocument": {"uri": fu}})  # closed unsaved:
        assert sorted(d["code"] for d in client.wait_diagnostics(mu, after=seen)) == missing
    finally:
        assert client.close() == 0, client.stderr
    assert "Traceback" not in client.stderr, client.stderr
    (team / "main.trg").write_text('include "fresh.trg"\n')
    assert "no such file: 'fresh.trg'" in run("check", "main.trg", cwd=team)[1]


def test_rename_and_references_reach_the_workspaces_files_that_include_the_document(team: Path) -> None:
    """From common.trg, the only file open: the workspace's files whose includes read it
    (ci.trg, and other/uses.trg, never opened), not those check would skip (an excluded
    folder, node_modules, a hidden folder); a new name one of them declares is refused."""
    from lsp_client import LspClient, LspError

    uses = 'include "../common.trg"\non git.tag run notify with "x"\n'
    tree(team, {"other/uses.trg": uses, "vendor/old.trg": uses, "node_modules/p/x.trg": uses,
                ".triggerlang/x.trg": uses, "triggerc.toml": 'exclude = ["vendor"]\n',
                "other/tell.trg": 'include "../deploy.trg"\naction tell(m) = exec "true" m\n'})
    client = LspClient(cwd=team, init_options={"debounce_ms": 50})
    try:
        cu = client.open(team / "common.trg")
        client.wait_diagnostics(cu)
        at = {"textDocument": {"uri": cu}, "position": {"line": 0, "character": 8}}
        refs = client.request("textDocument/references", {**at, "context": {"includeDeclaration": True}})
        assert sorted((r["uri"].rsplit("/rules/", 1)[1], r["range"]["start"]["line"]) for r in refs) == \
            [("common.trg", 0), ("other/uses.trg", 1), ("rules.d/ci.trg", 3)]
        with pytest.raises(LspError, match="already declared"):  # other/tell.trg's, through deploy.trg
            client.request("textDocument/rename", {**at, "newName": "tell"})
        changes = client.request("textDocument/rename", {**at, "newName": "inform"})["changes"]
        assert sorted(u.rsplit("/rules/", 1)[1] for u in changes) == ["common.trg", "other/uses.trg", "rules.d/ci.trg"]
        assert _apply(uses, changes[cu.replace("common.trg", "other/uses.trg")]) == uses.replace("notify", "inform")
    finally:
        assert client.close() == 0, client.stderr
    assert "Traceback" not in client.stderr, client.stderr


HELD = """
import sys, time
from pathlib import Path
from triggerlang.editor import lsp
held, what, S = Path(sys.argv[1]), sys.argv[2], lsp.TriggerLanguageServer
name = sys.argv[3] if len(sys.argv) > 3 else "ci.trg"
search, parse = S.workspace_includers, S.module_on_disk
def hold():  # waits until the test lets it go (30 s at most)
    (held / "entered").touch()
    deadline = time.monotonic() + 30
    while not (held / "released").exists() and time.monotonic() < deadline:
        time.sleep(0.01)
def held_search(*args, **kwargs):
    hold()
    return search(*args, **kwargs)
def held_parse(path):  # the first parse of the file named (not open): ci.trg, an includer
    if path.endswith(name) and not (held / "entered").exists():  # the search found, by default
        hold()
    return parse(path)
if what == "search":
    S.workspace_includers = held_search
else:
    S.module_on_disk = staticmethod(held_parse)
from triggerlang.cli import main
main(["lsp"])
"""


ON_CI_TRG = {  # a request on `notify` in ci.trg (open), declared by common.trg (not open)
    "definition": "textDocument/definition",
    "highlight": "textDocument/documentHighlight",
    "prepare_rename": "textDocument/prepareRename",
}


@pytest.mark.parametrize("what", ["search", "parse", *ON_CI_TRG])
def test_diagnostics_and_hover_are_answered_while_a_workspace_search_runs(team: Path, tmp_path: Path,
                                                                          what: str) -> None:
    """Before: find references' search of the workspace for the files that include the
    document (up to 5,000 files) ran on the analysis worker, so a first search in a large
    workspace held up every diagnostic (and, before that, on the event loop: every
    request); and the files it found (rules.d/ci.trg, not open) were parsed on the event
    loop, so a large one held up every request, as go to definition's, document
    highlight's and prepare-rename's parse of an included file not open (common.trg, from
    ci.trg) did. The search, or the parse, is held here, in the server process, until the
    test lets it go: meanwhile another document's diagnostics and a hover arrive; then the
    request answers, with ci.trg's references, common.trg's declaration, or ci.trg's use."""
    import sys

    from lsp_client import LspClient

    held = tmp_path / "held"
    held.mkdir()
    argv = [str(held), "parse", "common.trg"] if what in ON_CI_TRG else [str(held), what]
    client = LspClient([sys.executable, "-c", HELD, *argv], cwd=team, init_options={"debounce_ms": 50})
    try:
        if what in ON_CI_TRG:
            cu = client.open(team / "rules.d" / "ci.trg")
            client.wait_diagnostics(cu)
            rid = client.send_request(ON_CI_TRG[what], {
                "textDocument": {"uri": cu}, "position": {"line": 3, "character": 47}})
        else:
            cu = client.open(team / "common.trg")
            client.wait_diagnostics(cu)
            rid = client.send_request("textDocument/references", {
                "textDocument": {"uri": cu}, "position": {"line": 0, "character": 8},
                "context": {"includeDeclaration": True}})
        wait_for(lambda: (held / "entered").exists(), f"the {what} to start", 10)
        du = client.open(team / "deploy.trg", DEPLOY + "on git.tag run nowhere\n")
        assert [d["code"] for d in client.wait_diagnostics(du, timeout=10)] == ["TRG104"]
        hover = client.request("textDocument/hover", {"textDocument": {"uri": du},
                                                      "position": {"line": 2, "character": 11}}, timeout=10)
        assert "git.push" in hover["contents"]["value"]
        assert not client.answered(rid)  # (the search or the parse is still held)
        (held / "released").touch()
        result = client.wait_response(rid)["result"]
        notify = {"start": {"line": 3, "character": 46}, "end": {"line": 3, "character": 52}}
        if what == "highlight":  # ci.trg's own use of it, a read
            assert result == [{"range": notify, "kind": 2}]
        elif what == "prepare_rename":
            assert result == notify
        else:
            assert sorted((r["uri"].rsplit("/rules/", 1)[1], r["range"]["start"]["line"]) for r in result) == \
                ([("common.trg", 0)] if what == "definition" else [("common.trg", 0), ("rules.d/ci.trg", 3)])
    finally:
        (held / "released").touch()
        assert client.close() == 0, client.stderr
    assert "Traceback" not in client.stderr, client.stderr


PARSES_SEEN = """
from triggerlang.editor import lsp
build = lsp.build_server
def build_server():  # a request that says which included files' parses the server keeps
    server = build()
    @server.feature("test/includedParses")
    def included(ls, params):
        with ls.analyzer._lock:
            return sorted({real.rsplit("/rules/", 1)[1] for real, _ in ls.analyzer._included})
    @server.feature("test/documentParses")  # the documents' parse caches and analyses it keeps
    def documents(ls, params):
        with ls.analyzer._lock:
            return [sorted(p.rsplit("/rules/", 1)[1] for p in ls.analyzer._caches),
                    sorted(u.rsplit("/rules/", 1)[1] for u in ls.analyses)]
    return server
lsp.build_server = build_server
from triggerlang.cli import main
main(["lsp"])
"""


def test_the_editor_drops_an_included_files_parse_once_no_open_document_reads_it(team: Path) -> None:
    """Before: the included files' parses were kept (up to 1,000) after every document
    that includes them was closed. Now closing a document drops those no open document
    reads, directly, through another file, or through its companion (deploy_test.trg's
    checks read deploy.trg's includes)."""
    import sys

    from lsp_client import LspClient

    (team / "deploy_test.trg").write_text('test "ship":\n    given git.push branch="main" sha="a"\n'
                                          '    expect ship with sha="a"\n')
    client = LspClient([sys.executable, "-c", PARSES_SEEN], cwd=team, init_options={"debounce_ms": 50})
    try:
        opened = [client.open(team / name) for name in ("main.trg", "rules.d/ci.trg", "deploy_test.trg")]
        for u in opened:
            assert client.wait_diagnostics(u) == []
        kept = lambda: client.request("test/includedParses", None)  # noqa: E731
        assert kept() == ["common.trg", "deploy.trg", "rules.d/ci.trg"]
        for u, left in zip(opened, (["common.trg"], ["common.trg"], [])):  # (ci.trg's; deploy_test.trg's)
            client.notify("textDocument/didClose", {"textDocument": {"uri": u}})
            assert kept() == left
    finally:
        assert client.close() == 0, client.stderr
    assert "Traceback" not in client.stderr, client.stderr


def test_the_editor_drops_the_checked_files_parse_once_its_tests_file_is_closed(team: Path) -> None:
    """Before: deploy.trg's analysis and parse cache, made to check an open
    deploy_test.trg, stayed after deploy_test.trg was closed. Now they go once no open
    document needs them; deploy.trg's own parses stay while deploy_test.trg is open."""
    import sys

    from lsp_client import LspClient

    (team / "deploy_test.trg").write_text('test "ship":\n    given git.push branch="main" sha="a"\n'
                                          '    expect ship with sha="a"\n')
    client = LspClient([sys.executable, "-c", PARSES_SEEN], cwd=team, init_options={"debounce_ms": 50})
    try:
        kept = lambda: client.request("test/documentParses", None)  # noqa: E731
        tu = client.open(team / "deploy_test.trg")
        assert client.wait_diagnostics(tu) == []
        both = ["deploy.trg", "deploy_test.trg"]
        assert kept() == [both, both]
        client.notify("textDocument/didClose", {"textDocument": {"uri": tu}})
        assert kept() == [[], []]
        du = client.open(team / "deploy.trg")
        assert client.wait_diagnostics(du) == []
        client.open(team / "deploy_test.trg")
        assert client.wait_diagnostics(tu, after=2) == []  # (after its first and the close's)
        client.notify("textDocument/didClose", {"textDocument": {"uri": du}})
        assert kept() == [both, ["deploy_test.trg"]]  # (deploy_test.trg's checks read deploy.trg)
        client.notify("textDocument/didClose", {"textDocument": {"uri": tu}})
        assert kept() == [[], []]
    finally:
        assert client.close() == 0, client.stderr
    assert "Traceback" not in client.stderr, client.stderr


def test_go_to_definition_on_an_include_opens_the_files_it_reads(team: Path) -> None:
    """Before: nothing (no name there). Now the file an include names, or each file its glob
    matches, an unsaved open document included."""
    from lsp_client import LspClient, uri

    client = LspClient(cwd=team, init_options={"debounce_ms": 50})
    try:
        mu = client.open(team / "main.trg", MAIN + 'include "fresh.trg"\n')
        client.open(team / "fresh.trg", COMMON.replace("notify", "alert"))  # never saved
        client.wait_diagnostics(mu)
        found = [[(d["uri"], d["range"]["start"]) for d in client.request(
            "textDocument/definition", {"textDocument": {"uri": mu}, "position": {"line": ln, "character": ch}}) or ()]
            for ln, ch in ((0, 8), (0, 19), (1, 14), (2, 9), (0, 3))]
    finally:
        assert client.close() == 0, client.stderr
    top = {"line": 0, "character": 0}
    assert found == [[(uri(team / "deploy.trg"), top)], [(uri(team / "deploy.trg"), top)],
                     [(uri(team / "rules.d/ci.trg"), top)], [(uri(team / "fresh.trg"), top)], []]


def test_files_changed_on_disk_recheck_the_open_documents_that_read_them(team: Path) -> None:
    """Before: a file changed outside the editor (a git checkout, a script) left the open
    documents that read it with their old diagnostics until they were edited. The server
    asks the editor to watch the .trg files and configs, and re-checks the open documents
    that read a changed one: main.trg for rules.d/ci.trg (through its glob), for a new
    file its glob now matches, and for a config; deploy_test.trg for deploy.trg."""
    from lsp_client import LspClient, uri

    (team / "deploy_test.trg").write_text('test "ship":\n    given git.push branch="main" sha="a"\n'
                                          '    expect ship with sha="a"\n')
    client = LspClient(cwd=team, init_options={"debounce_ms": 50},
                       workspace_caps={"didChangeWatchedFiles": {"dynamicRegistration": True}})

    def changed(name: str, text: str | None, kind: int) -> None:
        if text is None:
            (team / name).unlink()
        else:
            (team / name).write_text(text)
        client.notify("workspace/didChangeWatchedFiles", {"changes": [{"uri": uri(team / name), "type": kind}]})

    try:
        client.wait_for(lambda: client.server_requests, 10, "the watchers' registration")
        reg = client.server_requests[0]
        assert reg["method"] == "client/registerCapability"
        assert [w["globPattern"] for w in reg["params"]["registrations"][0]["registerOptions"]["watchers"]] == \
            ["**/*.trg", "**/triggerc.toml"]
        mu, tu = client.open(team / "main.trg"), client.open(team / "deploy_test.trg")
        assert client.wait_diagnostics(mu) == [] and client.wait_diagnostics(tu) == []
        changed("rules.d/ci.trg", CI.replace("run notify", "run nowhere"), 2)
        assert [(d["code"], d["range"]["start"]["line"]) for d in client.wait_diagnostics(mu, after=1)] == \
            [("TRG104", 1)]
        changed("rules.d/ci.trg", None, 3)  # (the glob now matches nothing)
        assert [d["code"] for d in client.wait_diagnostics(mu, after=2)] == ["TRG005"]
        changed("rules.d/new.trg", "on git.tag run nowhere\n", 1)
        assert [d["code"] for d in client.wait_diagnostics(mu, after=3)] == ["TRG104"]
        changed("deploy.trg", DEPLOY.replace("ship:", "shipped:"), 2)
        assert "ship" in client.wait_diagnostics(tu, after=1)[0]["message"]
        assert [d["code"] for d in client.wait_diagnostics(mu, after=4)] == ["TRG104"]  # (it reads deploy.trg)
        lu = client.open(team / "lone.trg", 'let unused = 1\non git.tag run notify with "x"\ninclude "common.trg"\n')
        assert [d["code"] for d in client.wait_diagnostics(lu)] == ["TRG105"]
        changed("triggerc.toml", 'ignore = ["TRG105"]\n', 1)  # a config: every open document
        assert client.wait_diagnostics(lu, after=1) == []
    finally:
        assert client.close() == 0, client.stderr
    assert "Traceback" not in client.stderr and "Ignoring" not in client.stderr, client.stderr


def _apply(text: str, edits: list[dict]) -> str:
    lines = text.split("\n")
    for e in sorted(edits, key=lambda e: (e["range"]["start"]["line"], e["range"]["start"]["character"]), reverse=True):
        (sl, sc), (el, ec) = ((e["range"][k]["line"], e["range"][k]["character"]) for k in ("start", "end"))
        lines[sl] = lines[sl][:sc] + e["newText"] + lines[sl][ec:]
    return "\n".join(lines)


# --------------------------------------------------------------------------- serve

def test_serve_runs_a_rule_of_an_included_file_and_reloads_on_their_changes(tmp_path: Path) -> None:
    """(and of a second file given to serve: `serve main.trg more/extra.trg`, one program)"""
    root = tree(tmp_path / "proj", {
        "common.trg": 'action rec(n) = exec "true" n\n',
        "hooks.d/a.trg": 'include "../common.trg"\na: on http.post path="/a" run rec with <payload.n>\n',
        "main.trg": 'include "hooks.d/*.trg"\n',
        "more/extra.trg": 'x: on http.post path="/x" run rec with <payload.n>\n',
    })
    s = Server(root / "main.trg", tmp_path / "state", "more/extra.trg", log=tmp_path / "serve.log")
    try:
        s.start()
        assert post(s, "/a", {"n": 1}).status_code == 202
        s.wait_runs(lambda rs: done(rs, 1) and rs[0]["status"] == "succeeded", "the included rule's run")

        # an included file is edited: a reload, with its new rule
        (root / "hooks.d" / "a.trg").write_text('include "../common.trg"\n'
                                                'a: on http.post path="/a" run rec with <payload.n>\n'
                                                'b: on http.post path="/b" run rec with <payload.n>\n')
        s.wait_log("reloaded ")
        assert post(s, "/b", {"n": 2}).status_code == 202

        # a new file the glob matches: read at the next look
        (root / "hooks.d" / "c.trg").write_text('c: on http.post path="/c" run rec with <payload.n>\n')
        wait_for(lambda: s.log().count("reloaded ") >= 2, "a reload for the new file", on_fail=s.tail)
        assert post(s, "/c", {"n": 3}).status_code == 202

        # an error in a file read through two includes: the previous rules keep running
        (root / "common.trg").write_text('action rec(n) = exec "true" nn\n')
        log = s.wait_log("the previous rules keep running")
        assert "common.trg:1:29: error[TRG405]" in log, log
        assert post(s, "/a", {"n": 4}).status_code == 202
        runs = s.wait_runs(lambda rs: done(rs, 4), "the four runs")
        assert [(r["rule"], r["inputs"]["n"]) for r in runs] == [("a", 1), ("b", 2), ("c", 3), ("a", 4)]
        assert len(by_rule(runs, "a")) == 2

        # the second file given: its rule runs, and a change to it reloads (its name is in the log)
        assert "INFO serving 2 rule(s) from " in s.log() and "main.trg + more/extra.trg; journal" in s.log()
        assert post(s, "/x", {"n": 5}).status_code == 202
        (root / "common.trg").write_text('action rec(n) = exec "true" n\n')  # mended: the rules running again
        (root / "more" / "extra.trg").write_text('x: on http.post path="/x" run rec with <payload.n>\n'
                                                 'y: on http.post path="/y" run rec with nn\n')
        log = s.wait_log("more/extra.trg:2:40: error[TRG102]: unknown name 'nn'")  # an error in it, by its name
        assert log.count("the previous rules keep running") == 2, log  # (common.trg's, then this one)
        (root / "more" / "extra.trg").write_text('x: on http.post path="/x" run rec with <payload.n>\n'
                                                 'y: on http.post path="/y" run rec with <payload.n>\n')
        wait_for(lambda: s.log().count("reloaded ") >= 3, "a reload for the second file", on_fail=s.tail)
        assert post(s, "/y", {"n": 6}).status_code == 202
        runs = s.wait_runs(lambda rs: done(rs, 6), "the six runs")
        assert [(r["rule"], r["inputs"]["n"]) for r in runs][4:] == [("x", 5), ("y", 6)]
        assert s.stop() == 0, s.tail()
    finally:
        s.ensure_dead()


def test_serve_watches_the_included_texts_it_compiled_not_a_second_read(tmp_path: Path, monkeypatch) -> None:
    """Before: serve's start compiled the rules (reading the included files), then read those
    files again to fingerprint them for reload; an edit landing between the two reads was in
    the fingerprint but not in the rules, so no look ever saw it and the old rules ran on.
    The start's fingerprint is now of the texts compiled, as a reload's is."""
    from triggerlang import api
    from triggerlang.runtime.serve import Runtime, ServeOptions, _fingerprint, _read

    root = tree(tmp_path / "proj", {"common.trg": 'action a = exec "true"\n',
                                    "main.trg": 'include "common.trg"\nr: on every 1h run a\n'})
    at_rest = Runtime(root / "main.trg", ServeOptions())
    at_rest.load()  # nothing changed since: the next look finds nothing to reload
    assert _fingerprint(_read(at_rest.rules_path), at_rest.included) == at_rest.fingerprint

    compile_bytes = api.compile_bytes

    def compile_then_edit(*args, **kwargs):
        c = compile_bytes(*args, **kwargs)
        (root / "common.trg").write_text('action a = exec "false"\n')  # saved just after the compile
        return c

    monkeypatch.setattr(api, "compile_bytes", compile_then_edit)
    rt = Runtime(root / "main.trg", ServeOptions())
    assert rt.load()["actions"]["a"]["argv"] == [{"value": "true"}]  # the rules compiled are the older ones...
    assert _fingerprint(_read(rt.rules_path), rt.included) != rt.fingerprint  # ...so the next look reloads


def test_a_served_manifest_does_not_watch_the_files_it_was_compiled_from(team: Path, tmp_path: Path) -> None:
    manifest = team / "manifest.json"
    rc, out = run("compile", "main.trg", "-o", str(manifest), cwd=team)
    assert rc == 0, out
    s = Server(manifest, tmp_path / "state", env={"CI_TOKEN": "t"}, log=tmp_path / "serve.log")
    try:
        s.start()
        (team / "common.trg").write_text(COMMON + 'let more = 1\n')
        s.proc.send_signal(signal.SIGUSR1)  # a look now: the manifest, not its sources, is what runs
        s.wait_log("manifest.json has not changed: nothing to reload")
        assert s.stop() == 0, s.tail()
    finally:
        s.ensure_dead()
