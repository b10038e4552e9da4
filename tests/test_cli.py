"""``triggerc`` through click's CliRunner (SPEC §6, §8): check, compile, match, fmt; exit
codes, output formats, bad input handled with one clear line and no traceback."""

from __future__ import annotations

import gc
import json
import re
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from triggerlang.cli import main

FIXTURES = Path(__file__).resolve().parents[2] / "shared" / "fixtures" / "webhooks"
DIAG_KEYS = {"file", "line", "column", "end_line", "end_column", "severity", "code", "message", "hint"}

CLEAN = 'action deploy(sha) = exec "./deploy.sh" sha\non git.push branch="main" run deploy with <sha>\n'
BROKEN = ('action deploy(sha) = exec "./deploy.sh" sha\n'
          '\n'
          'on git.push brnch="main" run deploy with <sha>\n')
WARNS = CLEAN + 'let unused = 1\n'

GITHUB_RULES = ('secret gh = env "GH_SECRET"\nsource github secret=gh\n'
                'action deploy(sha, stage="staging") = exec "./deploy.sh" "--sha" sha "--stage" stage\n'
                'gp: on github.push branch="master" run deploy with <sha>, "prod"\n'
                'dev: on github.push branch="dev" run deploy with <sha>\n'
                'pr: on github.pull_request action="opened" run deploy with <sha>\n')


@pytest.fixture(autouse=True)
def _isolate(monkeypatch: pytest.MonkeyPatch, tmp_path: Path):
    monkeypatch.setenv("TRIGGERLANG_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.delenv("FORCE_COLOR", raising=False)
    monkeypatch.setenv("NO_COLOR", "1")
    yield
    # commands that pause the collector must not leave it paused for the rest of the session
    gc.enable()
    gc.unfreeze()


def run(*args: str, input: str | None = None) -> Result:
    result = CliRunner().invoke(main, list(args), input=input)
    assert "Traceback" not in result.output, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    return result


def write(tmp_path: Path, name: str, text: str) -> str:
    p = tmp_path / name
    p.write_text(text, encoding="utf-8")
    return str(p)


# --------------------------------------------------------------------------- check

def test_check_clean_file(tmp_path: Path) -> None:
    r = run("check", write(tmp_path, "rules.trg", CLEAN))
    assert (r.exit_code, r.stdout, r.stderr) == (0, "", "")


def test_check_text_output_has_the_caret_line(tmp_path: Path) -> None:
    f = write(tmp_path, "rules.trg", BROKEN)
    r = run("check", f)
    assert r.exit_code == 1
    assert r.stdout == (f"{f}:3:13: error[TRG203]: git.push has no field 'brnch'\n"
                        "  3 | on git.push brnch=\"main\" run deploy with <sha>\n"
                        "    |             ^^^^^ did you mean 'branch'?\n")
    assert r.stderr == "1 error, 0 warnings\n1 fixable with --fix.\n"


def test_check_given_an_event_file_hints_at_match(tmp_path: Path) -> None:
    # `check event.json` (an event where rules go) said only "expected 'on', a name"
    hint = ("rules are declarations, not JSON; if this is an event, see which rules it matches with: "
            "triggerc match RULES.trg EVENT.json (a .jsonl too)")
    event = {"source": "git", "type": "push", "data": {"branch": "main"}}
    for name, text in (("event.json", json.dumps(event, indent=2)), ("events.jsonl", json.dumps(event) + "\n")):
        r = run("check", "--format", "json", write(tmp_path, name, text))
        first = json.loads(r.stdout)[0]
        assert r.exit_code == 1 and (first["line"], first["column"], first["hint"]) == (1, 1, hint), r.stdout
    r = run("check", write(tmp_path, "rules.trg", CLEAN + "on git.push run deploy with {sha}\n"))
    assert r.exit_code == 1 and "triggerc match" not in r.stdout, r.stdout


def test_check_reports_every_problem_in_one_pass(tmp_path: Path) -> None:
    text = BROKEN + 'on git.push run nope\nlet on = 1\non git.push branch=3 run deploy with <sha>\n'
    r = run("check", "--format", "json", write(tmp_path, "rules.trg", text))
    assert r.exit_code == 1
    assert [(d["code"], d["line"]) for d in json.loads(r.stdout)] == [
        ("TRG203", 3), ("TRG104", 4), ("TRG001", 5), ("TRG204", 6)]


@pytest.mark.parametrize("prefix, newline", [("", "\n"), ("\ufeff", "\r\n"), ('let sep = "a\u2028b\u0085c"\n', "\n")])
def test_check_caret_line_is_the_right_source_line(tmp_path: Path, prefix: str, newline: str) -> None:
    # a BOM, CRLF line ends, or U+2028 / U+0085 inside a string do not shift the shown line
    text = prefix + 'action deploy(sha) = exec "./deploy.sh" sha' + newline + \
        f'on git.push branch=sep brnch="main" run deploy with <sha>{newline}'
    f = write(tmp_path, "rules.trg", text)
    out = run("check", "--format", "text", f).stdout.splitlines()
    line = 3 if prefix.startswith("let") else 2
    i = out.index(f"{f}:{line}:24: error[TRG203]: git.push has no field 'brnch'")
    assert out[i + 1] == f'  {line} | on git.push branch=sep brnch="main" run deploy with <sha>'
    assert out[i + 2] == "    |                        ^^^^^ did you mean 'branch'?"


def test_check_carets_stand_under_the_span_on_a_terminal(tmp_path: Path) -> None:
    # a wide character takes two columns, a combining mark none: the carets still line up
    f = write(tmp_path, "rules.trg", 'action d = exec "x"\non git.push author="日本語" message="e\u0301" brnch="x" run d\n')
    out = run("check", f).stdout.splitlines()
    assert out[1:3] == ['  2 | on git.push author="日本語" message="e\u0301" brnch="x" run d',
                        "    | " + " " * 40 + "^^^^^ did you mean 'branch'?"]   # 6 columns for 日本語, 1 for é


def test_check_shows_control_characters_under_the_caret(tmp_path: Path) -> None:
    # a NUL or a form feed printed as itself is invisible: the caret pointed at nothing
    out = run("check", write(tmp_path, "nul.trg", 'action d = exec "x"\x00\n')).stdout
    assert out.splitlines()[1:3] == ['  1 | action d = exec "x"\ufffd', "    |                    ^ expected a name, "
                                     "a raw string, a string"]
    out = run("check", write(tmp_path, "ff.trg", 'action d = exec "x"\n\x0con git.push run d\n')).stdout
    assert out.splitlines()[1:3] == ["  2 | \ufffdon git.push run d",
                                     "    |  ^^ an indented line continues the declaration above: start a new "
                                     "one in column 1"]


def test_check_cuts_a_very_long_line_around_the_span(tmp_path: Path) -> None:
    text = 'action d(x) = exec "echo" x\non git.push branch="' + "a" * 100_000 + '" brnch="x" run d with "' + \
        "b" * 100_000 + '"\n'
    out = run("check", write(tmp_path, "rules.trg", text)).stdout.splitlines()
    assert out[0].endswith(":2:100023: error[TRG203]: git.push has no field 'brnch'")
    assert out[1] == "  2 | ..." + "a" * 38 + '" brnch="x" run d with "' + "b" * 23 + "..."
    assert out[2] == "    | " + " " * 43 + "^^^^^ did you mean 'branch'?"


def test_check_warnings_pass_unless_strict(tmp_path: Path) -> None:
    f = write(tmp_path, "rules.trg", WARNS)
    r = run("check", f)
    assert r.exit_code == 0
    assert "warning[TRG105]: let 'unused' is never used" in r.stdout
    assert r.stderr == "0 errors, 1 warning\n1 fixable with --fix --unsafe-fixes.\n"
    assert run("check", "--strict", f).exit_code == 1
    assert run("check", "--strict", write(tmp_path, "clean.trg", CLEAN)).exit_code == 0


def test_check_webhook_without_secret_is_an_error_under_strict(tmp_path: Path) -> None:
    f = write(tmp_path, "rules.trg", 'action d = shell "x"\non github.push run d\n')
    assert run("check", f).exit_code == 0
    r = run("check", "--strict", "--format", "json", f)
    assert r.exit_code == 1 and [d["code"] for d in json.loads(r.stdout)] == ["TRG209"]


def test_check_missing_file_is_a_usage_error(tmp_path: Path) -> None:
    missing = str(tmp_path / "nope.trg")
    r = run("check", missing)
    assert r.exit_code == 2
    assert r.stdout == ""
    assert r.stderr == f"triggerc: error: {missing}: no such file\n"


def test_check_needs_a_file() -> None:
    r = run("check")
    assert r.exit_code == 2 and "Missing argument" in r.stderr


def test_check_bad_option() -> None:
    assert run("check", "--format", "xml", "x.trg").exit_code == 2


def test_check_folder_expands_to_its_trg_files(tmp_path: Path) -> None:
    d = tmp_path / "rules"
    d.mkdir()
    a = write(d, "a.trg", CLEAN)
    b = write(d, "b.trg", BROKEN)
    write(d, "notes.txt", "not rules")
    r = run("check", "--format", "json", str(d))
    assert r.exit_code == 1
    assert [(x["file"], x["code"]) for x in json.loads(r.stdout)] == [(b, "TRG203")]
    assert run("check", str(d / "a.trg")).exit_code == 0 and a
    empty = tmp_path / "empty"
    empty.mkdir()
    r = run("check", str(empty))
    assert r.exit_code == 2
    assert r.stderr == f"triggerc: error: {empty}: no .trg files in this folder or its subfolders\n"


def test_check_folder_recurses_and_skips_hidden_state_and_venv_folders(tmp_path: Path) -> None:
    root = tmp_path / "repo"
    for sub in ("ci/deep", "b"):
        (root / sub).mkdir(parents=True)
    unformatted = BROKEN.replace("on git.push", "on   git.push")
    found = [write(root, "z.trg", BROKEN), write(root / "b", "x.trg", BROKEN), write(root / "ci", "a.trg", BROKEN),
             write(root / "ci" / "deep", "a.trg", unformatted)]
    for skipped in (".git", ".triggerlang", "node_modules", "venv", "ci/.hidden"):
        (root / skipped).mkdir(parents=True)
        write(root / skipped, "bad.trg", BROKEN)
    (root / "venv" / "pyvenv.cfg").write_text("home = /usr/bin\n")
    r = run("check", "--format", "json", str(root))
    assert r.exit_code == 1
    assert [x["file"] for x in json.loads(r.stdout)] == [found[1], found[2], found[3], found[0]]  # sorted by path
    # fmt and test take folders the same way
    r = run("fmt", "--check", str(root))
    assert (r.exit_code, r.stdout) == (1, f"would reformat {found[3]}\n")
    r = run("test", str(root))
    assert r.exit_code == 1 and all(f"{f}: tests not run" in r.stderr for f in found)

def test_check_each_file_once_and_quoted_patterns(tmp_path: Path) -> None:
    (tmp_path / "sub").mkdir()
    f = write(tmp_path, "sub/rules.trg", BROKEN)
    write(tmp_path, "sub/other.trg", CLEAN)
    r = run("check", "--format", "json", f, str(tmp_path), f"{tmp_path}/sub/../sub/rules.trg")
    assert [d["file"] for d in json.loads(r.stdout)] == [f]
    r = run("check", "--format", "json", f"{tmp_path}/**/rules.trg")
    assert [d["file"] for d in json.loads(r.stdout)] == [f]
    r = run("check", f"{tmp_path}/*.nope")
    assert r.exit_code == 2 and r.stderr == f"triggerc: error: {tmp_path}/*.nope: no file matches this pattern\n"
    for command in ("check", "fmt", "test"):  # test "" was a ValueError traceback
        r = run(command, f, "")
        assert (r.exit_code, r.stderr) == (2, "triggerc: error: an empty file name\n")


def test_check_exit_zero_quiet_and_output_format(tmp_path: Path) -> None:
    f = write(tmp_path, "rules.trg", BROKEN)
    r = run("check", "--exit-zero", f)
    assert r.exit_code == 0 and "error[TRG203]" in r.stdout and r.stderr == "1 error, 0 warnings\n1 fixable with --fix.\n"
    r = run("check", "--strict", "--exit-zero", write(tmp_path, "warns.trg", WARNS))
    assert r.exit_code == 0 and "warning[TRG105]" in r.stdout
    assert run("check", "--exit-zero", str(tmp_path / "nope.trg")).exit_code == 2   # usage is still usage
    r = run("check", "-q", f)
    assert r.exit_code == 1 and "error[TRG203]" in r.stdout and r.stderr == ""
    r = run("check", "--output-format", "github", f)
    assert r.exit_code == 1 and r.stdout.startswith("::error file=")


def test_check_statistics(tmp_path: Path) -> None:
    f = write(tmp_path, "rules.trg", BROKEN + 'on git.push brnch="x" run deploy with <sha>\nlet unused = 1\n')
    r = run("check", "--statistics", f)
    assert r.exit_code == 1
    assert r.stdout == "2  TRG203  error    unknown field\n1  TRG105  warning  unused let\n"
    r = run("check", "--statistics", "--format", "json", f)
    assert json.loads(r.stdout) == [{"code": "TRG203", "severity": "error", "count": 2, "title": "unknown field"},
                                    {"code": "TRG105", "severity": "warning", "count": 1, "title": "unused let"}]
    r = run("check", "--statistics", "--format", "sarif", f)
    assert r.exit_code == 2 and "--statistics prints text or json" in r.stderr
    assert run("check", "--statistics", write(tmp_path, "clean.trg", CLEAN)).stdout == ""


def test_check_and_compile_stdin(tmp_path: Path) -> None:
    r = run("check", "-", input=BROKEN)
    assert r.exit_code == 1 and r.stdout.startswith("<stdin>:3:13: error[TRG203]")
    # named: diagnostics say that name, and an X_test.trg sees its X.trg
    write(tmp_path, "rules.trg", 'action deploy(sha) = exec "./deploy.sh" sha\n'
                                 'dm: on git.push branch="main" run deploy with <sha>\n')
    name = str(tmp_path / "rules_test.trg")
    tests = 'test "t":\n    given git.push branch="main" sha="1"\n    expect dm\n    expect nope\n'
    r = run("check", "-", "--stdin-filename", name, "--format", "json", input=tests)
    assert [(d["file"], d["line"], d["code"]) for d in json.loads(r.stdout)] == [(name, 4, "TRG601")]
    r = run("check", f"{tmp_path}/rules.trg", "--stdin-filename", name)
    assert r.exit_code == 2 and "--stdin-filename goes with '-'" in r.stderr
    assert run("check", "-", input=b"\xff\n").exit_code == 1
    r = run("compile", "-", input=CLEAN)
    assert r.exit_code == 0 and json.loads(r.stdout)["rules"][0]["action"] == "deploy"
    assert run("test", "-", input=CLEAN).exit_code == 2


def test_check_several_files(tmp_path: Path) -> None:
    a, b = write(tmp_path, "a.trg", BROKEN), write(tmp_path, "b.trg", BROKEN)
    r = run("check", "--format", "json", a, b)
    assert [x["file"] for x in json.loads(r.stdout)] == [a, b]


def test_check_json_format(tmp_path: Path) -> None:
    f = write(tmp_path, "rules.trg", BROKEN + 'let unused = 1\n')
    r = run("check", "--format", "json", f)
    assert r.exit_code == 1
    data = json.loads(r.stdout)
    assert isinstance(data, list) and len(data) == 2
    assert all(set(d) == DIAG_KEYS | {"fix"} for d in data)  # (fix: only where there is one; both have)
    assert data[0] == {"file": f, "line": 3, "column": 13, "end_line": 3, "end_column": 18,
                       "severity": "error", "code": "TRG203", "message": "git.push has no field 'brnch'",
                       "hint": "did you mean 'branch'?",
                       "fix": {"title": "Replace `brnch` with `branch`", "applicability": "safe",
                               "edits": [{"line": 3, "column": 13, "end_line": 3, "end_column": 18,
                                          "text": "branch"}]}}
    assert (data[1]["severity"], data[1]["code"], data[1]["line"]) == ("warning", "TRG105", 4)
    clean = run("check", "--format", "json", write(tmp_path, "clean.trg", CLEAN))
    assert (clean.exit_code, json.loads(clean.stdout)) == (0, [])


def test_check_github_format(tmp_path: Path) -> None:
    f = write(tmp_path, "rules.trg", BROKEN + 'let unused = 1\n')
    r = run("check", "--format", "github", f)
    assert r.exit_code == 1
    lines = r.stdout.splitlines()
    assert len(lines) == 2
    esc = f.replace("%", "%25").replace(":", "%3A").replace(",", "%2C")
    assert lines[0].startswith(f"::error file={esc},line=3,col=13,")
    assert lines[0].endswith("::git.push has no field 'brnch' (did you mean 'branch'?)")
    assert re.fullmatch(r"::warning file=[^,]+,line=4,col=5,endLine=4,endColumn=11,title=TRG105::.+", lines[1])


def test_check_sarif_format(tmp_path: Path) -> None:
    f = write(tmp_path, "rules.trg", BROKEN + 'let unused = 1\n')
    r = run("check", "--format", "sarif", f)
    assert r.exit_code == 1
    doc = json.loads(r.stdout)
    assert doc["version"] == "2.1.0"
    (sarif_run,) = doc["runs"]
    assert sarif_run["tool"]["driver"]["name"] == "triggerc"
    results = sarif_run["results"]
    assert [(x["ruleId"], x["level"]) for x in results] == [("TRG203", "error"), ("TRG105", "warning")]
    region = results[0]["locations"][0]["physicalLocation"]["region"]
    assert region == {"startLine": 3, "startColumn": 13, "endLine": 3, "endColumn": 18}
    rules = sarif_run["tool"]["driver"]["rules"]
    assert [rules[x["ruleIndex"]]["id"] for x in results] == ["TRG203", "TRG105"]
    assert rules[0]["shortDescription"]["text"]  # described from the CODES table


def test_check_empty_file(tmp_path: Path) -> None:
    r = run("check", write(tmp_path, "empty.trg", ""))
    assert (r.exit_code, r.stdout) == (0, "")


def test_check_non_utf8_file(tmp_path: Path) -> None:
    p = tmp_path / "latin1.trg"
    p.write_bytes(b'action d = shell "x"\non git.push branch="caf\xe9" run d\n')
    r = run("check", str(p))
    assert r.exit_code == 1
    assert r.stdout.splitlines()[0] == f"{p}:2:24: error[TRG004]: the file is not valid UTF-8 (byte 0xe9 at offset 44)"
    r = run("check", "--format", "json", str(p))
    assert [(d["code"], d["line"], d["column"]) for d in json.loads(r.stdout)] == [("TRG004", 2, 24)]


def test_check_a_folder_given_as_a_file_argument_is_not_a_crash(tmp_path: Path) -> None:
    r = run("compile", str(tmp_path))
    assert r.exit_code == 2 and r.stderr.startswith("triggerc: error:") and r.stderr.count("\n") == 1


def test_check_ten_thousand_rules(tmp_path: Path) -> None:
    lines = ['action d(x="") = exec "./run" x']
    lines += [f'r{i}: on git.push branch="b{i}" files ~ "src/{i}/**" run d with <sha> timeout {i % 50 + 1}m'
              for i in range(10_000)]
    lines[5000] = lines[5000].replace("branch=", "brnch=")  # one broken rule among them
    r = run("check", "--format", "json", write(tmp_path, "big.trg", "\n".join(lines) + "\n"))
    assert r.exit_code == 1
    assert [(d["code"], d["line"]) for d in json.loads(r.stdout)] == [("TRG203", 5001)]


# --------------------------------------------------------------------------- compile

def test_compile_to_stdout_and_to_a_file(tmp_path: Path) -> None:
    f = write(tmp_path, "rules.trg", CLEAN)
    r = run("compile", f)
    assert r.exit_code == 0 and r.stderr == ""
    manifest = json.loads(r.stdout)
    assert manifest["triggerlang"] == 1 and list(manifest["sources"]) == ["git"]
    out = tmp_path / "out" / "manifest.json"
    out.parent.mkdir()
    r = run("compile", f, "-o", str(out))
    assert (r.exit_code, r.stdout) == (0, "")
    assert out.read_text(encoding="utf-8") == json.dumps(manifest, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def test_compile_broken_file(tmp_path: Path) -> None:
    f = write(tmp_path, "rules.trg", BROKEN)
    out = tmp_path / "m.json"
    r = run("compile", f, "-o", str(out))
    assert r.exit_code == 1 and r.stdout == ""
    assert f"{f}:3:13: error[TRG203]" in r.stderr
    assert not out.exists()


def test_compile_warnings_still_compile(tmp_path: Path) -> None:
    r = run("compile", write(tmp_path, "rules.trg", WARNS))
    assert r.exit_code == 0 and json.loads(r.stdout)["rules"]


def test_compile_missing_file(tmp_path: Path) -> None:
    r = run("compile", str(tmp_path / "nope.trg"))
    assert r.exit_code == 2 and r.stderr.startswith("triggerc: error:") and "no such file" in r.stderr


def test_compile_does_not_write_the_manifest_over_its_rules_file(tmp_path: Path) -> None:
    f = write(tmp_path, "rules.trg", CLEAN)
    for out in (f, f"{tmp_path}/./rules.trg"):
        r = run("compile", f, "-o", out)
        assert r.exit_code == 2 and "is the rules file itself" in r.stderr
    assert Path(f).read_text() == CLEAN


def test_compile_unwritable_output(tmp_path: Path) -> None:
    r = run("compile", write(tmp_path, "rules.trg", CLEAN), "-o", str(tmp_path / "no" / "such" / "dir" / "m.json"))
    assert r.exit_code in (1, 2) and r.stderr.startswith("triggerc: error:")


# --------------------------------------------------------------------------- match

def test_match_a_real_github_delivery(tmp_path: Path) -> None:
    rules = write(tmp_path, "rules.trg", GITHUB_RULES)
    r = run("match", rules, str(FIXTURES / "github" / "push-plain.json"), "--github", "push")
    assert r.exit_code == 0, r.output
    assert r.stdout.splitlines()[0] == ("gp: runs deploy -> ./deploy.sh --sha fd489864e7642b48eaad6e3f155c10e46810ec72"
                                        " --stage prod")
    r = run("match", rules, str(FIXTURES / "github" / "push-plain.json"), "--github", "push", "--format", "json")
    assert json.loads(r.stdout) == {"matches": [{
        "rule": "gp", "action": "deploy",
        "inputs": {"sha": "fd489864e7642b48eaad6e3f155c10e46810ec72", "stage": "prod"},
        "argv": ["./deploy.sh", "--sha", "fd489864e7642b48eaad6e3f155c10e46810ec72", "--stage", "prod"]}]}


def test_match_explain(tmp_path: Path) -> None:
    rules = write(tmp_path, "rules.trg", GITHUB_RULES)
    payload = str(FIXTURES / "github" / "push-plain.json")
    r = run("match", rules, payload, "--github", "push", "--explain", "--format", "json")
    assert r.exit_code == 0
    out = json.loads(r.stdout)
    assert [m["rule"] for m in out["matches"]] == ["gp"]
    why = {x["rule"]: x for x in out["not_matched"]}
    assert set(why) == {"dev", "pr"}
    assert why["dev"] == {"rule": "dev", "condition": 'branch="dev"', "span": [5, 21, 5, 33],
                          "field": "branch", "value": "master"}
    assert why["pr"]["condition"] == "trigger github.pull_request" and why["pr"]["value"] == "push"
    text = run("match", rules, payload, "--github", "push", "--explain").stdout
    assert 'dev: no match: branch="dev" (line 5:21) failed: branch was "master"' in text.splitlines()


def test_match_event_file_and_stdin(tmp_path: Path) -> None:
    rules = write(tmp_path, "rules.trg", GITHUB_RULES)
    event = {"source": "github", "type": "push", "data": {"branch": "dev", "sha": "abc"}}
    ev = write(tmp_path, "event.json", json.dumps(event))
    r = run("match", rules, ev, "--format", "json")
    assert json.loads(r.stdout)["matches"][0]["inputs"] == {"sha": "abc", "stage": "staging"}
    r = run("match", rules, "-", "--format", "json", input=json.dumps(event))
    assert [m["rule"] for m in json.loads(r.stdout)["matches"]] == ["dev"]
    r = run("match", rules, write(tmp_path, "none.json", '{"source": "git", "type": "push", "data": {}}'))
    assert (r.exit_code, r.stdout) == (0, "no rule matches this event\n")


DEFAULTED = ('action a(x, stage="dev") = exec "echo" x stage\n'
             'r: on http.post path="/h" run a with <payload.x>, <payload.stage>\n')


def test_a_parameter_default_stands_in_for_a_missing_field_in_test_match_and_serve(tmp_path: Path) -> None:
    # `with <payload.x>, <payload.stage>` on an event without stage: stage is the default
    # (it was null, "" in argv); a stage of "" is the event's value; x, with no default, stays null
    rules = write(tmp_path, "rules.trg", DEFAULTED + 'test "defaults":\n    given http.post path="/h" payload.x="1"\n'
                  '    expect r with x="1", stage="dev"\n')
    r = run("test", rules)
    assert r.exit_code == 0, r.output
    events = [{"source": "http", "type": "post", "data": {"path": "/h", "payload": p}}
              for p in ({"x": "1"}, {"x": "1", "stage": None}, {"x": "1", "stage": ""}, {})]
    want = [({"x": "1", "stage": "dev"}, ["echo", "1", "dev"]), ({"x": "1", "stage": "dev"}, ["echo", "1", "dev"]),
            ({"x": "1", "stage": ""}, ["echo", "1", ""]), ({"x": None, "stage": "dev"}, ["echo", "", "dev"])]
    single = [json.loads(run("match", rules, write(tmp_path, "e.json", json.dumps(e)), "--format", "json").stdout)
              for e in events]
    batch = run("match", rules, write(tmp_path, "e.jsonl", "".join(json.dumps(e) + "\n" for e in events)),
                "--format", "json").stdout.splitlines()
    for got in (single, [json.loads(x) for x in batch]):
        assert [(m["matches"][0]["inputs"], m["matches"][0]["argv"]) for m in got] == want

    import asyncio

    from triggerlang.api import compile_text
    from triggerlang.events import Event
    from triggerlang.runtime.engine import Engine
    from triggerlang.runtime.journal import Journal

    c = compile_text(DEFAULTED, "rules.trg", str(tmp_path))
    journal = Journal(tmp_path / "state")

    async def serve() -> None:
        engine = Engine(c.manifest, journal, {}, tmp_path)
        for e in events:
            await engine.submit(Event(e["source"], e["type"], e["data"]))
        await engine.drain(grace=5)

    asyncio.run(serve())
    runs = sorted(journal.list_runs(limit=10), key=lambda r: r["id"])
    journal.close()
    assert [r["inputs"] for r in runs] == [w[0] for w in want]


def test_match_completes_a_file_event_that_names_only_its_path_as_serve_does(tmp_path: Path) -> None:
    # serve fills name, ext, paths and change in from an emitted file event's path; match must
    # find the same rules (it found none: "the event has no ext"), one event or a .jsonl of them
    rules = write(tmp_path, "rules.trg", 'action b(p) = exec "echo" p\n'
                  'r: on file.changed ext="py" change="modified" run b with <name>\n')
    line = '{"source": "file", "type": "modified", "data": {"path": "src/app.py"}}'
    r = run("match", rules, write(tmp_path, "event.json", line), "--format", "json")
    assert json.loads(r.stdout)["matches"][0]["inputs"] == {"p": "app.py"}
    for fmt in ("text", "json"):
        r = run("match", rules, write(tmp_path, "events.jsonl", line + "\n" + line + "\n"), "--format", fmt)
        assert r.exit_code == 0 and "no match" not in r.stdout and len(r.stdout.splitlines()) == 2
    # file.changed is a rule's trigger, never an event's type: --explain says so
    r = run("match", rules, "-", "--explain", input='{"source": "file", "type": "changed", "data": {"path": "a.py"}}')
    assert "file.changed is a trigger, not an event's type: a file event is file.created" in r.stdout
    assert "the event is file.changed" not in r.stdout
    # so is an http.post with no method (serve's events always name it, upper case)
    rules = write(tmp_path, "http.trg", 'action b(p) = exec "echo" p\n'
                  'r: on http.request path="/x" method="POST" run b with <method>\n')
    line = '{"source": "http", "type": "post", "data": {"path": "/x"}}'
    for name in ("event.json", "events.jsonl"):
        r = run("match", rules, write(tmp_path, name, line + "\n"), "--format", "json")
        assert json.loads(r.stdout)["matches"][0]["inputs"] == {"p": "POST"}, r.stdout


def test_match_jsonl_batch_gives_one_result_a_line_in_order(tmp_path: Path) -> None:
    rules = write(tmp_path, "rules.trg", GITHUB_RULES)
    events = [{"source": "github", "type": "push", "data": {"branch": b, "sha": str(i)}}
              for i, b in enumerate(["master", "x", "dev", "master"])]
    batch = write(tmp_path, "events.jsonl", "\n".join(json.dumps(e) for e in events) + "\n")
    r = run("match", rules, batch, "--format", "json")
    assert r.exit_code == 0
    lines = [json.loads(x) for x in r.stdout.splitlines()]
    assert [[m["rule"] for m in x["matches"]] for x in lines] == [["gp"], [], ["dev"], ["gp"]]
    assert lines[3]["matches"][0]["inputs"]["sha"] == "3"
    r = run("match", rules, batch)
    assert r.stdout.splitlines() == ["gp", "(no match)", "dev", "gp"]
    # --explain: each event's line, then why the other rules did not match, indented below it
    r = run("match", rules, batch, "--explain")
    assert r.stdout.splitlines()[:4] == [
        "gp",
        '  dev: no match: branch="dev" (line 5:21) failed: branch was "master"',
        '  pr: no match: trigger github.pull_request (line 6:1) failed: type was "push"; the event is github.push',
        "(no match)"]
    assert [x for x in r.stdout.splitlines() if not x.startswith("  ")] == ["gp", "(no match)", "dev", "gp"]


@pytest.mark.parametrize("fmt", ["text", "json"])
def test_match_stdin_jsonl_answers_each_event_as_it_comes(tmp_path: Path, fmt: str) -> None:
    """`tail -f events.jsonl | triggerc match rules.trg - --jsonl`: a real process, each
    line's answer read before the next line is written (stdin stays open)."""
    import queue
    import subprocess
    import sys
    import threading

    rules = write(tmp_path, "rules.trg", GITHUB_RULES)
    p = subprocess.Popen([sys.executable, "-m", "triggerlang.cli", "match", str(rules), "-", "--jsonl",
                          "--format", fmt], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    lines: queue.Queue[str] = queue.Queue()
    threading.Thread(target=lambda: [lines.put(x) for x in p.stdout], daemon=True).start()
    try:
        for branch, want in (("master", "gp"), ("dev", "dev"), ("x", None)):
            p.stdin.write(json.dumps({"source": "github", "type": "push", "data": {"branch": branch}}) + "\n")
            p.stdin.flush()
            got = lines.get(timeout=60).rstrip("\n")  # answered while stdin is still open
            names = [m["rule"] for m in json.loads(got)["matches"]] if fmt == "json" else \
                ([] if got == "(no match)" else [got])
            assert names == ([want] if want else []), got
        p.stdin.write("not json\n")
        p.stdin.close()
        assert "<stdin>:4: not valid JSON" in lines.get(timeout=60)
        assert p.wait(60) == 1
    finally:
        p.kill()


def test_match_explain_says_when_no_rule_listens_to_the_events_source(tmp_path: Path) -> None:
    rules = write(tmp_path, "rules.trg", GITHUB_RULES)
    gitlab = json.dumps({"source": "gitlab", "type": "push", "data": {"branch": "master"}})
    r = run("match", rules, "-", "--explain", input=gitlab)
    assert (r.exit_code, r.stdout) == (0, "no rule matches this event\nno rule listens to this event's source; "
                                          "the rules listen to github.pull_request, github.push\n"), r.stdout
    r = run("match", rules, "-", "--explain", "--format", "json", input=gitlab)
    assert json.loads(r.stdout) == {"matches": [], "not_matched": [],
                                    "listened": ["github.pull_request", "github.push"]}
    # a rule of the source that did not match says why instead; without --explain, nothing more
    github = json.dumps({"source": "github", "type": "issues", "data": {}})
    assert "listened" not in json.loads(run("match", rules, "-", "--explain", "--format", "json", input=github).stdout)
    assert run("match", rules, "-", input=gitlab).stdout == "no rule matches this event\n"


def test_match_jsonl_with_a_bad_line(tmp_path: Path) -> None:
    rules = write(tmp_path, "rules.trg", GITHUB_RULES)
    good = json.dumps({"source": "github", "type": "push", "data": {"branch": "dev"}})
    batch = write(tmp_path, "events.jsonl", f"{good}\nnot json\n{good}\n")
    r = run("match", rules, batch, "--format", "json")
    assert r.exit_code == 1
    lines = r.stdout.splitlines()
    assert len(lines) == 3 and "error" in json.loads(lines[1]) and "events.jsonl:2" in json.loads(lines[1])["error"]
    assert [m["rule"] for m in json.loads(lines[2])["matches"]] == ["dev"]


@pytest.mark.parametrize("content, message", [
    ("not json", "not valid JSON"),
    ('{"source": "github"}', "the event has no 'type' string"),
    ('{"source": "github", "type": "push", "data": [1]}', "'data' must be a JSON object"),
    ("[1, 2]", "an event must be a JSON object"),
])
def test_match_bad_event_file(tmp_path: Path, content: str, message: str) -> None:
    rules = write(tmp_path, "rules.trg", GITHUB_RULES)
    ev = write(tmp_path, "event.json", content)
    r = run("match", rules, ev)
    assert r.exit_code == 1 and r.stdout == ""
    assert r.stderr.startswith("triggerc: error: ") and message in r.stderr
    assert r.stderr.count("\n") == 1


def test_match_given_two_rules_files_says_what_it_takes_and_what_to_do(tmp_path: Path) -> None:
    # click said "Got unexpected extra argument (e.json)", and `match a.trg b.trg` that
    # b.trg was not valid JSON
    a, b, c = (write(tmp_path, n, CLEAN) for n in ("a.trg", "b.trg", "c.trg"))
    e = write(tmp_path, "e.json", '{"source": "git", "type": "push", "data": {"branch": "main"}}')
    takes = "triggerc: error: match takes one rules file, then one event file (EVENT.json, or a .jsonl of events)"
    for args, says in [((a, b, e), f'{b} is a second rules file. To match with several, include them from {a} '
                                    f'(include "{b}"), or run match once per file: triggerc match {a} {e}'),
                       ((a, b), f"{b} is a second rules file. To match with several, include them from {a} "
                                f'(include "{b}"), or run match once per file: triggerc match {a} EVENT.json'),
                       ((a, b, c, e), f"{b} {c} are more rules files."),
                       ((a, e, e), f"not 3 files ({a} {e} {e}): put the events in one .jsonl file, one a line"),
                       ((e, a), f"the rules file goes first: triggerc match {a} {e}")]:
        r = run("match", *args, "--format", "json")
        assert r.exit_code == 2 and r.stdout == "" and r.stderr.startswith(takes), (args, r.output)
        assert says in r.stderr and len(r.stderr.splitlines()) == 1, (args, r.stderr)
    r = run("match", a, e)
    assert r.exit_code == 0 and r.stdout.startswith("L2: runs deploy"), r.output  # (two files: as before)


def test_match_missing_event_file_and_bad_rules(tmp_path: Path) -> None:
    rules = write(tmp_path, "rules.trg", GITHUB_RULES)
    r = run("match", rules, str(tmp_path / "nope.json"))
    assert r.exit_code == 1 and "nope.json: no such file" in r.stderr
    ev = write(tmp_path, "ev.json", '{"source": "git", "type": "push"}')
    r = run("match", write(tmp_path, "bad.trg", BROKEN), ev)
    assert r.exit_code == 1 and "error[TRG203]" in r.stderr
    p = tmp_path / "latin1.json"
    p.write_bytes(b'{"source": "git", "type": "push", "data": {"b": "\xe9"}}')
    r = run("match", rules, str(p))
    assert r.exit_code == 1 and "UTF-8" in r.stderr


def test_match_provider_payload_errors(tmp_path: Path) -> None:
    rules = write(tmp_path, "rules.trg", GITHUB_RULES)
    r = run("match", rules, str(FIXTURES / "github" / "push-plain.json"), "--github", "push", "--gitlab", "push")
    assert r.exit_code == 2
    ev = write(tmp_path, "ev.json", "[]")
    r = run("match", rules, ev, "--github", "push")
    assert r.exit_code == 1 and r.stderr.startswith("triggerc: error: ")
    # a raw payload without --github: the error says how to give one
    r = run("match", rules, str(FIXTURES / "github" / "push-plain.json"))
    assert r.exit_code == 1 and r.stderr.endswith(
        "the event has no 'source' string; for a webhook's body as the provider sent it, say whose and which "
        "event: --github EVENT (or --gitlab, --gitea, --bitbucket, --ci)\n")


def test_json_output_is_utf8_in_an_ascii_locale(tmp_path: Path) -> None:
    # in an ASCII locale a non-ASCII character came out as Python's \xe9 escape, which is not JSON
    import os
    import subprocess
    import sys

    rules = write(tmp_path, "rules.trg", 'action d(b) = exec "echo" b\nr: on git.push run d with <branch>\n'
                                         "on git.push brnch=1 run d\n")
    ev = write(tmp_path, "ev.json", '{"source": "git", "type": "push", "data": {"branch": "caf\\u00e9 \\ud83d\\ude00"}}')
    env = {**os.environ, "LC_ALL": "C", "PYTHONUTF8": "0", "PYTHONCOERCECLOCALE": "0"}
    env.pop("PYTHONIOENCODING", None)
    good = write(tmp_path, "good.trg", 'action d(b) = exec "echo" b\nr: on git.push run d with <branch>\n')
    for args in (["match", good, ev, "--format", "json"], ["check", rules, "--format", "json"],
                 ["check", rules, "--format", "sarif"]):
        out = subprocess.run([sys.executable, "-m", "triggerlang.cli", *args], env=env, capture_output=True)
        json.loads(out.stdout.decode("utf-8"))  # UTF-8 JSON, whatever the locale
    out = subprocess.run([sys.executable, "-m", "triggerlang.cli", "match", good, ev, "--format", "json"], env=env,
                         capture_output=True)
    assert json.loads(out.stdout)["matches"][0]["inputs"]["b"] == "café 😀"


def test_match_reads_standard_json_only(tmp_path: Path) -> None:
    # NaN and Infinity are not JSON (--format json printed them back, which JSON readers refuse);
    # a number past a float's range, or an integer over 4,300 digits, was a traceback
    rules = write(tmp_path, "rules.trg", 'action d(n) = exec "echo" n\nr: on git.push run d with <commits>\n')
    bad = {"NaN": "not valid JSON (NaN is not a JSON value)",
           "-Infinity": "not valid JSON (-Infinity is not a JSON value)",
           "1e400": "JSON with a number too large to read (1e400)",
           "1" * 5000: "JSON with an integer too long to read (over 4,300 digits)"}
    for number, message in bad.items():
        text = '{"source": "git", "type": "push", "data": {"commits": %s}}' % number
        r = run("match", rules, write(tmp_path, "ev.json", text), "--format", "json")
        assert (r.exit_code, r.stdout) == (1, "") and r.stderr.endswith(f"ev.json: {message}\n"), r.stderr
        r = run("match", rules, write(tmp_path, "ev.jsonl", text + "\n"), "--format", "json")
        assert r.exit_code == 1 and json.loads(r.stdout)["error"].endswith(f"ev.jsonl:1: {message}")
    r = run("match", rules, write(tmp_path, "ok.json", '{"source": "git", "type": "push", "data": {"commits": 1e300}}'),
            "--format", "json")
    assert r.exit_code == 0 and json.loads(r.stdout)["matches"][0]["inputs"] == {"n": 1e300}


@pytest.mark.skipif(not Path("/dev/zero").exists(), reason="no /dev/zero")
def test_an_endless_file_is_refused_not_read_until_memory_runs_out(tmp_path: Path) -> None:
    # /dev/zero is valid UTF-8 (NULs) with no line end: check and match read it to a MemoryError
    for command in (["check"], ["fmt", "--check"], ["compile"]):
        r = run(*command, "/dev/zero")
        assert (r.exit_code, r.stderr) == (2, "triggerc: error: /dev/zero: over 64 MiB, too large for a rules file\n")
    rules = write(tmp_path, "rules.trg", GITHUB_RULES)
    r = run("match", rules, "/dev/zero")
    assert r.exit_code == 1 and r.stderr.endswith("/dev/zero: over 64 MiB, too large for an event; the rest is not read\n")
    (tmp_path / "zero.jsonl").symlink_to("/dev/zero")
    for opts in ([], ["--explain"]):
        r = run("match", rules, str(tmp_path / "zero.jsonl"), *opts)
        assert r.exit_code == 1 and json.loads(r.stdout)["error"].endswith(
            "zero.jsonl:1: over 64 MiB, too large for an event; the rest is not read")


def test_match_json_nested_too_deeply_is_an_error_not_a_crash(tmp_path: Path) -> None:
    rules = write(tmp_path, "rules.trg", GITHUB_RULES)
    deep = "[" * 100_000 + "]" * 100_000
    r = run("match", rules, write(tmp_path, "deep.json", deep))
    assert r.exit_code == 1 and r.stderr.endswith(": JSON nested too deeply to read "
                                                  "(Python's json stops near 1,000 levels)\n")
    good = json.dumps({"source": "github", "type": "push", "data": {"branch": "dev"}})
    for opts in ([], ["--format", "json"], ["--explain"]):
        r = run("match", rules, write(tmp_path, "deep.jsonl", f"{deep}\n{good}\n"), *opts)
        lines = r.stdout.splitlines()
        assert r.exit_code == 1 and "deep.jsonl:1: JSON nested too deeply" in json.loads(lines[0])["error"]
        assert "dev" in lines[1]


# --------------------------------------------------------------------------- fmt

def test_fmt_check_exit_codes(tmp_path: Path) -> None:
    good = write(tmp_path, "good.trg", 'action d = shell "x"\non git.push branch="main" run d\n')
    r = run("fmt", "--check", good)
    assert r.exit_code == 0 and r.stdout == ""
    messy = 'action   d = shell "x"\non git.push   branch = "main"  run d\n\n\n'
    bad = write(tmp_path, "messy.trg", messy)
    r = run("fmt", "--check", bad)
    assert r.exit_code == 1 and r.stdout == f"would reformat {bad}\n"
    assert Path(bad).read_text() == messy            # --check writes nothing
    assert run("fmt", "--check", good, bad).exit_code == 1
    broken = write(tmp_path, "broken.trg", "on git.push branch= run d\n")
    r = run("fmt", "--check", broken)
    assert r.exit_code == 1 and "not formatted: fix the syntax errors first" in r.stderr


def test_fmt_rewrites_files(tmp_path: Path) -> None:
    bad = write(tmp_path, "messy.trg", 'action   d = shell "x"\non git.push   branch = "main"  run d\n')
    r = run("fmt", bad)
    assert r.exit_code == 0 and r.stdout == f"reformatted {bad}\n"
    assert Path(bad).read_text() == 'action d = shell "x"\non git.push branch="main" run d\n'
    assert run("fmt", "--check", bad).exit_code == 0


def test_fmt_empty_non_utf8_and_missing(tmp_path: Path) -> None:
    assert run("fmt", "--check", write(tmp_path, "empty.trg", "")).exit_code == 0
    p = tmp_path / "latin1.trg"
    p.write_bytes(b'let a = "caf\xe9"\n')
    r = run("fmt", "--check", str(p))
    assert r.exit_code == 1 and "TRG004" in r.stderr
    # the closing line says why it failed (it said "all files formatted")
    assert r.stderr.endswith("\n1 file could not be formatted (syntax errors)\n")
    assert p.read_bytes() == b'let a = "caf\xe9"\n'
    assert run("fmt", str(tmp_path / "nope.trg")).exit_code == 2


def test_fmt_a_file_it_cannot_write_is_an_error_not_a_traceback(tmp_path: Path) -> None:
    import subprocess

    messy = 'action   d = shell "x"\n'
    locked, other = write(tmp_path, "locked.trg", messy), write(tmp_path, "other.trg", messy)
    # immutable: even root cannot write it (the tests run as root in CI)
    if subprocess.run(["chattr", "+i", locked], capture_output=True).returncode != 0:
        pytest.skip("chattr +i is not available on this file system")
    try:
        r = run("fmt", locked, other)
    finally:
        subprocess.run(["chattr", "-i", locked], check=True)
    assert r.exit_code == 2
    assert r.stderr.startswith(f"triggerc: error: cannot write {locked}: Operation not permitted\n")
    assert Path(other).read_text() == 'action d = shell "x"\n'   # the others are still formatted


def test_fmt_stdin_quiet_and_each_file_once(tmp_path: Path) -> None:
    messy = 'action   d = shell "x"\non git.push   branch = "main"  run d\n'
    tidy = 'action d = shell "x"\non git.push branch="main" run d\n'
    r = run("fmt", "-", input=messy)
    assert (r.exit_code, r.stdout) == (0, tidy)
    r = run("fmt", "-", input=tidy)
    assert (r.exit_code, r.stdout) == (0, tidy)      # a filter: the text out, changed or not
    r = run("fmt", "--check", "-", "--stdin-filename", "rules.trg", input=messy)
    assert (r.exit_code, r.stdout) == (1, "would reformat rules.trg\n")
    r = run("fmt", "-", input="on git.push branch= run d\n")
    assert r.exit_code == 1 and r.stdout == "" and "<stdin>:1:" in r.stderr
    bad = write(tmp_path, "messy.trg", messy)
    r = run("fmt", "--check", "-q", bad, str(tmp_path), f"{tmp_path}/./messy.trg")
    assert (r.exit_code, r.stdout, r.stderr) == (1, "", "")
    r = run("fmt", "--check", bad, str(tmp_path))
    assert r.stdout == f"would reformat {bad}\n" and r.stderr == "1 file would be reformatted\n"
    assert run("fmt", "-q", bad).stdout == "" and Path(bad).read_text() == tidy


# --------------------------------------------------------------------------- start-up

HEAVY = ("starlette", "uvicorn", "watchfiles", "sqlite3", "_sqlite3", "httpx", "jinja2", "psycopg", "psycopg_binary",
         # the editor extra (triggerc lsp / mcp, SPEC §14) loads only under those commands
         "pygls", "lsprotocol", "cattrs", "mcp", "mcp_types", "pydantic", "anyio")

PROBE = r"""
import json, sys
from triggerlang.cli import main
try:
    main(sys.argv[1:], standalone_mode=False)
except SystemExit as e:
    code = e.code
else:
    code = 0
heavy = sorted({m.split(".")[0] for m in sys.modules} & set(json.loads(sys.stdin.read())))
sys.stdout.write("\n" + json.dumps({"exit": code, "heavy": heavy}) + "\n")
"""

PROBE_OURS = PROBE + r"""
sys.stdout.write(json.dumps(sorted(m for m in sys.modules if m.startswith("triggerlang."))) + "\n")
"""
"""PROBE, then a last line: the triggerlang modules the command imported."""

OWN_MODULE = {"check": "check", "compile": "build", "fmt": "build", "match": "build", "test": "build"}
"""The module of triggerlang/cli/ each front-end command lives in (besides common.py)."""


@pytest.mark.parametrize("command", [["check"], ["check", "--format", "sarif"], ["compile"], ["fmt", "--check"],
                                     ["match"], ["test"]])
def test_front_end_commands_import_no_server_watcher_or_journal(tmp_path: Path, command: list) -> None:
    import subprocess
    import sys

    rules = write(tmp_path, "rules.trg", GITHUB_RULES + 'action t = shell "pytest"\n'
                  'on file.changed path ~ "src/**" run t\non cron "0 3 * * *" tz "UTC" run t\n'
                  'on http.post path="/x" run t\non git.push run t\n')
    env = {k: v for k, v in __import__("os").environ.items() if not k.startswith("PYTHON")}
    args = [*command, rules]
    if command == ["test"]:  # a test to run (no test at all is exit 5)
        write(tmp_path, "rules_test.trg", 'test "t":\n    given http.post path="/y"\n    expect none\n')
    if command == ["match"]:  # match RULES EVENT.json
        args.append(write(tmp_path, "event.json", json.dumps({"source": "git", "type": "push",
                                                                "data": {"branch": "main"}})))
    r = subprocess.run([sys.executable, "-c", PROBE_OURS, *args], input=json.dumps(HEAVY),
                       capture_output=True, text=True, env=env, timeout=60, cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    *_, last, ours = r.stdout.strip().splitlines()
    result = json.loads(last)
    assert result["exit"] in (0, 1)
    assert result["heavy"] == [], f"`triggerc {' '.join(command)}` imported {result['heavy']}"
    # the group is lazy: a command imports its own module of triggerlang/cli/ and common.py, no other
    ours = json.loads(ours)
    cli = [m for m in ours if m.startswith("triggerlang.cli.")]
    assert cli == sorted(["triggerlang.cli.common", f"triggerlang.cli.{OWN_MODULE[command[0]]}"]), cli
    if command[0] == "check":  # (correlation.state: groups' --status choices, match's and serve's work)
        assert "triggerlang.correlation.state" not in ours


@pytest.mark.parametrize("broken", [False, True])
def test_check_loads_lark_only_for_a_syntax_error(tmp_path: Path, broken: bool) -> None:
    """The parser runs the grammar's tables (shipped beside it): Lark itself is loaded only
    to report a declaration that does not parse."""
    import subprocess
    import sys

    rules = write(tmp_path, "rules.trg", GITHUB_RULES + ("on github.push branch= run deploy\n" if broken else ""))
    env = {k: v for k, v in __import__("os").environ.items() if not k.startswith("PYTHON")}
    r = subprocess.run([sys.executable, "-c", PROBE, "check", rules], input=json.dumps(["lark"]),
                       capture_output=True, text=True, env=env, timeout=60, cwd=tmp_path)
    result = json.loads(r.stdout.strip().splitlines()[-1])
    assert (result["exit"], result["heavy"]) == ((1, ["lark"]) if broken else (0, []))


def test_the_program_ends_at_once_with_its_output_whole(tmp_path: Path) -> None:
    """``triggerc check``/``compile``... end with ``os._exit`` once their output is flushed
    (no interpreter teardown): every byte is there, and the exit code is the command's."""
    import subprocess
    import sys

    bad = write(tmp_path, "bad.trg", "".join(f"on git.push brnch=\"{i}\" run nope\n" for i in range(1500)))
    r = subprocess.run([sys.executable, "-m", "triggerlang.cli", "check", bad, "--format", "json"],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 1 and len(json.loads(r.stdout)) == 3000
    out = tmp_path / "m.json"
    r = subprocess.run([sys.executable, "-m", "triggerlang.cli", "compile", write(tmp_path, "ok.trg", CLEAN),
                        "-o", str(out)], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0 and json.loads(out.read_text())["rules"][0]["action"] == "deploy"
    r = subprocess.run([sys.executable, "-m", "triggerlang.cli", "check", "--strict", write(tmp_path, "w.trg", WARNS)],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 1 and "TRG105" in r.stdout
    r = subprocess.run([sys.executable, "-m", "triggerlang.cli", "--version"], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0 and "triggerc" in r.stdout


def test_compile_and_match_show_every_diagnostic_check_shows_when_there_is_an_error(tmp_path: Path) -> None:
    """``compile`` and ``match`` print diagnostics only when the file has errors (and skip
    the lints that can only warn otherwise): then the warnings are all there, as ``check``
    prints them."""
    rules = write(tmp_path, "r.trg", WARNS + 'x: on git.push branch="a" run deploy with <sha>\n'
                                            'y: on git.push branch="a" run deploy with <sha>\n'
                                            'on git.push brnch="m" run deploy with <sha>\n')
    event = write(tmp_path, "e.json", json.dumps({"source": "git", "type": "push", "data": {}}))
    checked = run("check", rules, "--color", "never")
    assert checked.exit_code == 1 and "TRG105" in checked.stdout and "TRG502" in checked.stdout
    for args in (["compile", rules], ["match", rules, event]):
        r = run(*args, "--color", "never")
        assert r.exit_code == 1 and r.stderr == checked.stdout, args
    ok = write(tmp_path, "ok.trg", WARNS)  # warnings only: nothing is printed, the manifest is written
    r = run("compile", ok)
    assert r.exit_code == 0 and r.stderr == "" and json.loads(r.stdout)["rules"]


# --------------------------------------------------------------------------- runs / events: times

def _journal_with_one_run(state: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A journal with one event and one run: queued 2026-01-15 12:00:00 UTC, started 75 s
    later, finished 2.5 s after that (the journal's clock is set for it)."""
    import time as time_module

    from triggerlang.events import Event
    from triggerlang.runtime.journal import Journal, PlannedRun

    clock = [1768478400.0]  # 2026-01-15T12:00:00Z
    monkeypatch.setattr(time_module, "time", lambda: clock[0])
    j = Journal(state)
    try:
        rid = j.record_event(Event("git", "push", {"branch": "main"}, time="2026-01-15T12:00:00.000Z"),
                             [PlannedRun("deploy", "deploy", {"sha": "abc"})]).run_ids[0]
        clock[0] += 75
        j.mark_running(rid)
        clock[0] += 2.5
        j.mark_finished(rid, "succeeded", 0)
    finally:
        j.close()
    monkeypatch.undo()


def test_runs_and_events_name_the_time_zone_and_show_the_queue_wait(tmp_path: Path,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    import time as time_module

    state = tmp_path / "state"
    _journal_with_one_run(state, monkeypatch)
    monkeypatch.setenv("TZ", "Asia/Tokyo")  # UTC+9, no daylight saving
    time_module.tzset()
    try:
        r = run("runs", "--state", str(state))
        header, row = r.stdout.splitlines()
        assert header.split() == ["ID", "RULE", "ACTION", "STATUS", "EXIT", "WAIT", "DURATION", "QUEUED", "INPUTS"]
        assert row.split() == ["1", "deploy", "deploy", "succeeded", "0", "1m15s", "2.5s",
                               "2026-01-15", "21:00:00", "JST", "sha=abc"]
        r = run("events", "--state", str(state))
        assert r.stdout.splitlines()[1].split()[1:] == ["git.push", "2026-01-15", "21:00:00", "JST", "deploy"]
        monkeypatch.setenv("TZ", "UTC")
        time_module.tzset()
        assert "2026-01-15 12:00:00 UTC" in run("runs", "--state", str(state)).stdout
    finally:
        monkeypatch.delenv("TZ")
        time_module.tzset()
    (item,) = json.loads(run("runs", "--state", str(state), "--format", "json").stdout)
    assert (item["queued_at"], item["wait"], item["duration"]) == ("2026-01-15T12:00:00.000Z", 75.0, 2.5)


@pytest.mark.parametrize(("env", "flag", "colored"), [
    ({}, None, False),                                   # not a terminal: no colour
    ({"FORCE_COLOR": "1"}, None, True),                  # forced, even through a pipe
    ({"FORCE_COLOR": "1", "NO_COLOR": "1"}, None, False),  # NO_COLOR wins
    ({"NO_COLOR": "1"}, "always", True),                 # the flag wins over the environment
    ({"FORCE_COLOR": "1"}, "never", False),
    ({"TERM": "dumb"}, "always", True),
    ({}, "always", True),
])
def test_color_flag_and_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, env: dict, flag: str | None,
                                    colored: bool) -> None:
    for k in ("NO_COLOR", "FORCE_COLOR", "TERM"):
        monkeypatch.delenv(k, raising=False)
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    f = write(tmp_path, "rules.trg", BROKEN)
    state = tmp_path / "state"
    _journal_with_one_run(state, monkeypatch)
    for k, v in env.items():  # (undone with the journal's clock)
        monkeypatch.setenv(k, v)
    color = ["--color", flag] if flag else []
    outputs = {
        "check": run("check", f, *color).stdout,
        "compile": run("compile", f, *color).stderr,
        "fmt": run("fmt", "--check", write(tmp_path, "broken.trg", "on git.push run\n"), *color).stderr,
        "runs": run("runs", "--state", str(state), *color).stdout,
        "events": run("events", "--state", str(state), "--color", flag or "auto").stdout,
    }
    for name, out in outputs.items():
        if name == "events":  # only an event that matched nothing is coloured
            continue
        assert ("\x1b[" in out) == colored, (name, out)


def test_color_on_a_terminal_unless_term_is_dumb(tmp_path: Path) -> None:
    import pty
    import subprocess
    import sys

    f = write(tmp_path, "rules.trg", BROKEN)
    env = {k: v for k, v in __import__("os").environ.items() if k not in ("NO_COLOR", "FORCE_COLOR", "TERM")}

    def on_a_tty(extra: dict) -> str:
        main_fd, child_fd = pty.openpty()
        try:
            subprocess.run([sys.executable, "-m", "triggerlang.cli", "check", f], stdout=child_fd,
                           stderr=subprocess.DEVNULL, env={**env, **extra}, timeout=60, check=False)
        finally:
            __import__("os").close(child_fd)
        out = b""
        while True:
            try:
                chunk = __import__("os").read(main_fd, 65536)
            except OSError:
                break
            if not chunk:
                break
            out += chunk
        __import__("os").close(main_fd)
        return out.decode()

    assert "\x1b[1;31m" in on_a_tty({"TERM": "xterm"})
    assert "\x1b[" not in on_a_tty({"TERM": "dumb"})
    assert "\x1b[" not in on_a_tty({"TERM": "xterm", "NO_COLOR": "1"})


def test_every_command_has_an_example_in_its_help() -> None:
    """The README: every command's --help ends with examples (a group's subcommands too)."""
    commands = [((name,), c) for name, c in main.commands.items()]
    commands += [((name, sub), s) for name, c in main.commands.items()
                 for sub, s in getattr(c, "commands", {}).items()]
    for names, command in commands:
        name = " ".join(names)
        assert command.epilog and "Examples:" in command.epilog, \
            f"`triggerc {name} --help` has no example: give the command an epilog (cli.examples)"
        r = run(*names, "--help")
        assert r.exit_code == 0
        examples = r.stdout.split("Examples:\n", 1)[1].splitlines()
        assert examples and all(line.startswith(f"    triggerc {name}") or "triggerc" in line for line in examples)


def test_the_lazy_group_has_every_command_under_its_name() -> None:
    """triggerlang/cli/__init__.py's COMMANDS: each name lists in --help (sorted, with its
    short help), loads the command of that name, and counts for an unknown command's
    "Did you mean" whether it is loaded or not."""
    import click

    from triggerlang.cli import COMMANDS, LazyGroup

    ctx = click.Context(main)
    assert main.list_commands(ctx) == sorted(COMMANDS)
    assert [main.get_command(ctx, name).name for name in sorted(COMMANDS)] == sorted(COMMANDS)
    assert main.get_command(ctx, "nope") is None
    listed = run("--help").stdout.split("Commands:\n", 1)[1].splitlines()
    assert [line.split()[0] for line in listed] == sorted(COMMANDS)
    assert listed[sorted(COMMANDS).index("check")].split(None, 1)[1].startswith("Report every problem")
    r = run("chek")
    assert (r.exit_code, r.stderr.splitlines()[-1]) == (2, "Error: No such command 'chek'. Did you mean 'check'?")
    fresh = LazyGroup(lazy_subcommands=COMMANDS)  # nothing loaded yet: the names alone
    r = CliRunner().invoke(fresh, ["wroker"])
    assert "Did you mean 'worker'?" in r.output and "worker" not in fresh.commands._loaded


def test_match_warns_about_an_event_type_the_catalogue_does_not_know(tmp_path: Path) -> None:
    rules = write(tmp_path, "rules.trg", CLEAN)
    one = write(tmp_path, "e.json", json.dumps({"source": "git", "type": "pushh", "data": {"branch": "main"}}))
    r = run("match", rules, one)
    assert r.exit_code == 0 and r.stdout == "no rule matches this event\n"
    assert r.stderr == "triggerc: warning: git.pushh: git has no event 'pushh' (did you mean 'push'?)\n"
    lines = [{"source": "git", "type": "pushh", "data": {}}, {"source": "gti", "type": "push", "data": {}},
             {"source": "git", "type": "push", "data": {"branch": "main"}}, {"source": "git", "type": "pushh", "data": {}}]
    batch = write(tmp_path, "e.jsonl", "".join(json.dumps(x) + "\n" for x in lines))
    r = run("match", rules, batch)
    assert r.stdout.splitlines() == ["(no match)", "(no match)", "L2", "(no match)"]
    assert r.stderr.splitlines() == [  # once per type
        "triggerc: warning: git.pushh: git has no event 'pushh' (did you mean 'push'?)",
        "triggerc: warning: gti.push: unknown source 'gti' (did you mean 'git'?)"]
    r = run("match", rules, str(FIXTURES / "github" / "push-plain.json"), "--github", "pushh")
    assert r.stderr == "triggerc: warning: github.pushh: 'pushh' is not a known github event (did you mean 'push'?)\n"
    known = write(tmp_path, "known.json", json.dumps({"source": "git", "type": "push", "data": {"branch": "main"}}))
    r = run("match", rules, known)
    assert (r.stdout.splitlines()[0], r.stderr) == ("L2: runs deploy -> ./deploy.sh ''", "")


def test_emit_refuses_fields_it_cannot_place_instead_of_dropping_them() -> None:
    """`a=1 a.b=2`: a is not an object, so a.b has nowhere to go; it was dropped without a
    word and the event sent without it. Now a usage error, before anything is sent."""
    dead = "http://127.0.0.1:1"  # nothing is sent: were it, the answer would be exit 1
    r = run("emit", "git.push", "branch=main", "branch.name=x", "--url", dead)
    assert r.exit_code == 2 and "'branch.name=x': branch is \"main\", which has no fields" in r.stderr
    r = run("emit", "git.push", "--data", '{"meta": [1]}', "meta.k=v", "--url", dead)
    assert r.exit_code == 2 and "meta is [1], which has no fields" in r.stderr
    for bad in ("=x", "a..b=1", "a.=1"):
        r = run("emit", "git.push", bad, "--url", dead)
        assert r.exit_code == 2 and "write field=value" in r.stderr, (bad, r.stderr)


def test_emit_refuses_a_change_field_that_contradicts_the_file_events_name() -> None:
    """`emit file.modified path=x change=created` was sent, and journaled a file.modified
    whose change was created. A usage error now, saying what to send (a rule test's given
    refuses the same); a change that agrees, or none, is sent."""
    dead = "http://127.0.0.1:1"  # nothing is sent: were it, the answer would be exit 1
    r = run("emit", "file.modified", "path=x", "change=created", "--url", dead)
    assert r.exit_code == 2, r.output
    assert r.stderr == ('triggerc: error: a file.modified event has change="modified", not "created": '
                        'emit file.created, or drop change=\n'), r.stderr
    r = run("emit", "file.deleted", "path=x", "--data", '{"change": "gone"}', "--url", dead)
    assert r.exit_code == 2 and 'not "gone" (change follows from the event\'s name: drop it)' in r.stderr, r.stderr
    for ok in (["change=modified"], []):
        r = run("emit", "file.modified", "path=x", *ok, "--url", dead, "--timeout", "5")
        assert r.exit_code == 1 and "cannot reach" in r.stderr, r.stderr


def test_emit_refuses_an_event_its_closed_source_does_not_have_and_warns_on_a_providers() -> None:
    """`emit git.pushh` warned and sent an event no rule can listen to (check refuses a rule
    on it, TRG202): a usage error now, with the did-you-mean, as is `git.*`. A webhook
    provider's event the catalogue does not know, or a source it does not know, is a
    warning and is sent (providers add events; the server may have a plug-in)."""
    dead = "http://127.0.0.1:1"  # exit 1 (cannot reach) means it was sent
    for trigger, error in [("git.pushh", "git has no event 'pushh' (did you mean 'push'?)"),
                           ("file.zzz", "file has no event 'zzz' (file events: changed, created, deleted, modified)"),
                           ("git.*", "a trigger for any git event, not an event's type (name the event)")]:
        r = run("emit", trigger, "branch=main", "--url", dead)
        assert (r.exit_code, r.stderr) == (2, f"triggerc: error: {trigger}: {error}\n"), r.stderr
    for trigger, warning in [("github.pushh", "'pushh' is not a known github event (did you mean 'push'?)"),
                             ("gti.push", "unknown source 'gti' (did you mean 'git'?)")]:
        r = run("emit", trigger, "--url", dead, "--timeout", "5")
        assert r.exit_code == 1, r.stderr
        assert r.stderr.splitlines()[0] == f"triggerc: warning: {trigger}: {warning}", r.stderr
        assert "cannot reach" in r.stderr


def test_emit_refuses_a_method_that_contradicts_the_http_events_name() -> None:
    """`emit http.post method=GET` was sent, and journaled an http.post whose method was
    GET (a rule test's given refuses it, TRG603). A usage error now, saying what to send; a
    method in lower case is no request's either; one that agrees, or none, is sent."""
    dead = "http://127.0.0.1:1"  # nothing is sent: were it, the answer would be exit 1
    r = run("emit", "http.post", "method=GET", "path=/x", "--url", dead)
    assert r.exit_code == 2, r.output
    assert r.stderr == ('triggerc: error: an http.post event has method="POST", not "GET": '
                        'emit http.get, or drop method=\n'), r.stderr
    for bad in ("post", "HEAD", "5"):
        r = run("emit", "http.post", f"method={bad}", "--url", dead)
        assert r.exit_code == 2 and "(method follows from the event's name: drop it)" in r.stderr, r.stderr
    for ok in (["method=POST"], []):
        r = run("emit", "http.post", "path=/x", *ok, "--url", dead, "--timeout", "5")
        assert r.exit_code == 1 and "cannot reach" in r.stderr, r.stderr


def test_a_url_whose_port_is_no_port_is_a_usage_error() -> None:
    """`emit --url http://127.0.0.1:99999` said "connection refused", as if a server might be
    there: a usage error (exit 2) that names the port, for rerun and cancel too."""
    for url, port in (("http://127.0.0.1:99999", "99999"), ("http://127.0.0.1:0/", "0"),
                      ("http://localhost:abc", "abc"), ("http://[::1]:70000", "70000")):
        for args in (["emit", "git.push"], ["rerun", "1", "--token", "t"], ["cancel", "1", "--token", "t"]):
            r = run(*args, "--url", url)
            assert r.exit_code == 2, (url, args, r.output)
            assert r.stderr == f"triggerc: error: --url {url!r}: {port!r} is not a port (a number from 1 to 65535)\n"


def test_emit_file_changed_exits_2_and_the_readme_says_so() -> None:
    """`emit file.changed` is a usage error (exit 2: an argument emit cannot send, as click
    refuses a bad argument) while the README's exit-code column listed it under nothing
    but "refused" (1). The column names it under 2 now."""
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")
    row = next(line for line in readme.splitlines() if line.startswith("| `triggerc emit "))
    exits = row.rstrip(" |").rsplit(" | ", 1)[-1]
    assert exits.startswith("0 accepted, 1 the server refused the event or cannot be reached, 2 usage (`file.changed`")
    for args in (["file.changed", "path=a.py"], ["file.modified", "path=a.py", "change=created"]):
        r = run("emit", *args, "--url", "http://127.0.0.1:1")
        assert r.exit_code == 2 and "cannot reach" not in r.stderr, r.stderr


@pytest.mark.parametrize("value", ["nan", "inf", "-1"])
def test_serve_and_worker_refuse_a_grace_or_lease_that_is_not_a_number_of_seconds(tmp_path: Path, value: str) -> None:
    """`serve --grace nan` (or inf) started, then printed a traceback when it stopped
    (ValueError: cannot convert float NaN to integer), exit 1; `--lease nan` passed click's FloatRange, which
    every comparison with nan lets through. A usage error now, before anything starts."""
    rules = tmp_path / "r.trg"
    # (a secret never set: were the flag taken, serve would stop at once, exit 1, not run here)
    rules.write_text('secret s = env "TRG_TEST_NEVER_SET_GRACE"\nsource github secret=s\n'
                     'action a = exec "true"\nr: on github.push run a\n')
    for args in (["serve", str(rules), "--grace", value], ["worker", "--store", "postgresql://x@127.0.0.1:1/db", "--grace", value],
                 ["serve", str(rules), "--lease", value], ["worker", "--store", "postgresql://x@127.0.0.1:1/db", "--heartbeat", value]):
        r = run(*args)
        assert r.exit_code == 2 and "Invalid value for '--" in r.stderr and "Traceback" not in r.stderr, (args, r.stderr)


def test_emit_on_json_it_cannot_send_and_a_timeout_that_is_not_one_is_a_usage_error() -> None:
    """Found by fuzzing: `--data` nested 5,000 deep and `--timeout -1`, `nan` or `inf` were
    tracebacks (RecursionError; socket.settimeout's ValueError and OverflowError), and a
    NaN in --data or a field went out as `NaN`, which is not JSON. --data is read as
    `match` reads an event (standard JSON only), a field's value is a string unless it
    is such JSON, and --timeout is a number of seconds up to an hour."""
    from triggerlang.cli.operate import _parse_field

    dead = "http://127.0.0.1:1"
    deep = "[" * 5000 + "]" * 5000
    for data, says in ((deep, "nested too deeply"), ('{"a": NaN}', "NaN is not a JSON value"),
                       ('{"a": 1e999}', "number too large")):
        r = run("emit", "git.push", "--data", data, "--url", dead)
        assert r.exit_code == 2 and "--data: " in r.stderr and says in r.stderr, r.stderr
    assert _parse_field("x=NaN") == (["x"], "NaN") and _parse_field(f"x={deep}") == (["x"], deep)
    assert _parse_field('x={"a": [1, true]}') == (["x"], {"a": [1, True]})
    for cmd in (["emit", "git.push"], ["rerun", "1", "--token", "t"]):
        for t in ("-1", "0", "nan", "inf"):
            r = run(*cmd, "--timeout", t, "--url", dead)
            assert r.exit_code == 2 and "Invalid value for '--timeout'" in r.stderr, (cmd, t, r.stderr)


def test_a_number_option_that_is_no_number_says_so(tmp_path: Path) -> None:
    """click said "'abc' is not a valid integer range" (triggerc logs abc, runs --limit x),
    as if a range were to be written: it says integer, and a number out of range still
    gets the range."""
    for args, said in [(["logs", "abc"], "Invalid value for 'RUN_ID': 'abc' is not a valid integer."),
                       (["runs", "--limit", "x"], "Invalid value for '--limit': 'x' is not a valid integer."),
                       (["runs", "--limit", "0"], "'--limit': 0 is not in the range 1<=x<=100000.")]:
        r = CliRunner().invoke(main, [*args, "--state", str(tmp_path)])
        assert r.exit_code == 2 and said in r.output, (args, r.output)
    # and seconds: click's own text said "'x' is not a valid seconds."
    for value, said in [("x", "'--timeout': 'x' is not a number of seconds"),
                        ("-5", "'--timeout': -5.0 is not in the range 0<x<=3600.")]:
        r = CliRunner().invoke(main, ["emit", "git.push", "--timeout", value, "--url", "http://127.0.0.1:1"])
        assert r.exit_code == 2 and said in r.output, (value, r.output)
