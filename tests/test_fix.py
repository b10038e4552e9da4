"""``triggerc check --fix``: the fixes diagnostics carry (check/fixes.py), applied in place."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from triggerlang.api import compile_text
from triggerlang.check.fixes import apply_fixes, fix_until_stable
from triggerlang.diagnostics import Edit, Fix, Pos, Span
from triggerlang.fmt import format_text

from cli_helpers import in_tmp_folder, invoke as run  # noqa: F401 - a fixture, used below

pytestmark = pytest.mark.usefixtures("in_tmp_folder")

DEPLOY = 'action deploy(sha) = exec "./d.sh" sha\n'


def write(text: str, name: str = "rules.trg") -> Path:
    p = Path(name)
    p.write_text(text)
    return p


# (what is wrong, the code, the file after check --fix): each a typo with one candidate,
# on an error, so the fix is safe and applied without --unsafe-fixes
SAFE = [
    (DEPLOY + 'let branches = ["main"]\non git.push branch in branchs run deploy with <sha>\n', "TRG102",
     DEPLOY + 'let branches = ["main"]\non git.push branch in branches run deploy with <sha>\n'),
    ('secret hook = env "HOOK"\n' + DEPLOY + 'source http path="/hooks/x" token=hok\n'
     'on http.post path="/hooks/x" run deploy with <query.sha>\n', "TRG103",
     'secret hook = env "HOOK"\n' + DEPLOY + 'source http path="/hooks/x" token=hook\n'
     'on http.post path="/hooks/x" run deploy with <query.sha>\n'),
    (DEPLOY + "on git.push run deplyo with <sha>\n", "TRG104", DEPLOY + "on git.push run deploy with <sha>\n"),
    (DEPLOY + "source gti poll=5s\non git.push run deploy with <sha>\n", "TRG201",
     DEPLOY + "source git poll=5s\non git.push run deploy with <sha>\n"),
    (DEPLOY + "on gti.push run deploy with <sha>\n", "TRG201", DEPLOY + "on git.push run deploy with <sha>\n"),
    (DEPLOY + "on git.psuh run deploy with <sha>\n", "TRG202", DEPLOY + "on git.push run deploy with <sha>\n"),
    (DEPLOY + 'on git.push brnch="main" run deploy with <sha>\n', "TRG203",
     DEPLOY + 'on git.push branch="main" run deploy with <sha>\n'),
    (DEPLOY + "source git pol=5s\non git.push run deploy with <sha>\n", "TRG208",
     DEPLOY + "source git poll=5s\non git.push run deploy with <sha>\n"),
    (DEPLOY + "on git.push run deploy with sah=<sha>\n", "TRG402", DEPLOY + "on git.push run deploy with sha=<sha>\n"),
    (DEPLOY + "on git.push run deploy with <sah>\n", "TRG403", DEPLOY + "on git.push run deploy with <sha>\n"),
    ('action deploy(sha) = exec "./d.sh" sah\non git.push run deploy with <sha>\n', "TRG405", DEPLOY +
     "on git.push run deploy with <sha>\n"),
    (DEPLOY + "on git.push run deploy with <sha> busy skp\n", "TRG407",
     DEPLOY + "on git.push run deploy with <sha> busy skip\n"),
    ('secret s = env "S"\naction post = http post "http://127.0.0.1/x" secrt=s\non git.push run post\n', "TRG408",
     'secret s = env "S"\naction post = http post "http://127.0.0.1/x" secret=s\non git.push run post\n'),
    (DEPLOY + 'on cron "0 3 * * *" tz "Europe/Pari" run deploy with "x"\n', "TRG305",
     DEPLOY + 'on cron "0 3 * * *" tz "Europe/Paris" run deploy with "x"\n'),
    ('include "comon.trg"\non git.push run deploy with <sha>\n', "TRG005",
     'include "common.trg"\non git.push run deploy with <sha>\n'),
    (DEPLOY + 'fan: on all(git.push branch="a" as a, git.tag as b) same <sah> within 1h run deploy with <a.sha>\n',
     "TRG703", DEPLOY + 'fan: on all(git.push branch="a" as a, git.tag as b) same <sha> within 1h run deploy with <a.sha>\n'),
    (DEPLOY + 'fan: on all(git.push branch="a" as a, git.tag as b) same <sha> within 1h run deploy with <a.sah>\n',
     "TRG403", DEPLOY + 'fan: on all(git.push branch="a" as a, git.tag as b) same <sha> within 1h run deploy with <a.sha>\n'),
]


@pytest.mark.parametrize("text,code,fixed", SAFE, ids=[f"{c}-{i}" for i, (_, c, _) in enumerate(SAFE)])
def test_a_safe_fix_is_applied_and_the_file_then_checks_clean(text: str, code: str, fixed: str) -> None:
    write(DEPLOY, "common.trg")  # (what TRG005's include means)
    p = write(text)
    before = run("check", "--format", "json", str(p))
    assert code in [d["code"] for d in json.loads(before.output)]
    r = run("check", "--fix", str(p))
    assert r.exit_code == 0, r.output
    assert p.read_text() == fixed
    assert "Fixed 1 problem" in r.stderr
    again = run("check", "--strict", str(p))
    assert again.exit_code == 0 and again.output == "", again.output
    # idempotent: a second --fix finds nothing to do
    r2 = run("check", "--fix", str(p))
    assert r2.exit_code == 0 and p.read_text() == fixed and "Fixed" not in r2.stderr


def test_a_typo_in_a_test_file_is_fixed(tmp_path: Path) -> None:
    write(DEPLOY + 'deploy_main: on git.push branch="main" run deploy with <sha>\n')
    t = write('test "main deploys":\n    given git.push branch="main" sha="1"\n    expect deploy_mian with sha="1"\n',
              "rules_test.trg")
    r = run("check", "--fix", str(t))
    assert r.exit_code == 0, r.output
    assert "expect deploy_main with" in t.read_text()
    # a schedule tick names its rule in a string: the fix writes the string
    write(DEPLOY + 'nightly: on cron "30 2 * * *" run deploy with "x"\n', "jobs.trg")
    t = write('test "t":\n    given schedule.tick rule="nightli"\n    expect only nightly\n', "jobs_test.trg")
    assert run("check", "--fix", str(t)).exit_code == 0
    assert 'given schedule.tick rule="nightly"\n' in t.read_text()


UNSAFE = [
    (DEPLOY + 'let unused = "x"\non git.push run deploy with <sha>\n', "TRG105",
     DEPLOY + "on git.push run deploy with <sha>\n"),
    ('secret s = env "S"\n' + DEPLOY + "on git.push run deploy with <sha>\n", "TRG106",
     DEPLOY + "on git.push run deploy with <sha>\n"),
    (DEPLOY + 'action build = exec "./b.sh"\non git.push run deploy with <sha>\n', "TRG107",
     DEPLOY + "on git.push run deploy with <sha>\n"),
    (DEPLOY + "source git poll=5s\non file.changed run deploy with sha=<path>\n", "TRG108",
     DEPLOY + "on file.changed run deploy with sha=<path>\n"),
    (DEPLOY + 'on git.tag tag ~ "v[0-9]+.[0-9]+" run deploy with <sha>\n', "TRG306",
     DEPLOY + "on git.tag tag ~ /^v[0-9]+\\.[0-9]+$/ run deploy with <sha>\n"),
    (DEPLOY + 'on git.push branch="release/*" files not in ["docs/**"] run deploy with <sha>\n', "TRG307",
     DEPLOY + 'on git.push branch ~ "release/*" not files ~ ["docs/**"] run deploy with <sha>\n'),
    (DEPLOY + 'source github path="/gh" secret=s\nsecret s = env "S"\n'
     "on github.pul_request run deploy with <sha>\n", "TRG207",
     DEPLOY + 'source github path="/gh" secret=s\nsecret s = env "S"\n'
     "on github.pull_request run deploy with <sha>\n"),
    # another tool's filter read as a condition: a guess at what was meant (GitHub's globs
    # differ; a file glob without '/' taken as a name in any folder)
    (DEPLOY + 'on git.push branches=["main"] run deploy with <sha>\n', "TRG203",
     DEPLOY + 'on git.push branch="main" run deploy with <sha>\n'),
    (DEPLOY + 'on file.changed glob="*.py" run deploy with sha=<path>\n', "TRG203",
     DEPLOY + 'on file.changed path ~ "**/*.py" run deploy with sha=<path>\n'),
    (DEPLOY + "on git.push run deploy with <sha> busy kill\n", "TRG407",
     DEPLOY + "on git.push run deploy with <sha> busy restart\n"),
]


@pytest.mark.parametrize("text,code,fixed", UNSAFE, ids=[f"{c}-{i}" for i, (_, c, _) in enumerate(UNSAFE)])
def test_an_unsafe_fix_waits_for_unsafe_fixes(text: str, code: str, fixed: str) -> None:
    p = write(text)
    r = run("check", "--fix", str(p))
    assert p.read_text() == text  # not without the flag, which the closing line names
    assert code in r.output and "unsafe fix" in r.stderr and "available with --unsafe-fixes)." in r.stderr
    assert run("check", str(p)).stderr.endswith(" fixable with --fix --unsafe-fixes.\n")
    r = run("check", "--fix", "--unsafe-fixes", str(p))
    assert r.exit_code == 0, r.output
    assert p.read_text() == fixed
    assert run("check", "--strict", str(p)).exit_code == 0


def test_fixes_repeat_until_nothing_changes() -> None:
    # the event's typo hides the field's (a trigger that is not known has no fields to check):
    # the second pass, on the re-checked text, fixes the field
    p = write(DEPLOY + 'on git.psh brnch="main" run deploy with <sha>\non git.push branch="a/*" run deploy with <sha>\n')
    # the count before fixing is of what one pass sees (ruff's too)
    assert run("check", str(p)).stderr == "1 error, 1 warning\n1 fixable with --fix (1 more with --unsafe-fixes).\n"
    r = run("check", "--fix", str(p))
    assert r.exit_code == 0, r.output
    assert p.read_text() == DEPLOY + 'on git.push branch="main" run deploy with <sha>\non git.push branch="a/*" run deploy with <sha>\n'
    assert "Fixed 2 problems (1 more fix with --unsafe-fixes)." in r.stderr


def test_diff_prints_the_change_and_writes_nothing() -> None:
    text = DEPLOY + 'on git.push brnch="main" run deploy with <sha>\n'
    p = write(text)
    r = run("check", "--diff", str(p))
    assert r.exit_code == 1
    assert p.read_text() == text
    assert '-on git.push brnch="main" run deploy with <sha>\n+on git.push branch="main" run deploy with <sha>\n' \
        in r.stdout
    assert r.stdout.startswith("--- rules.trg\n+++ rules.trg\n")
    assert "Would fix 1 problem." in r.stderr
    clean = write(DEPLOY + "on git.push run deploy with <sha>\n", "clean.trg")
    r = run("check", "--diff", str(clean))
    # nothing to fix: nothing said (it said "Would fix 0 problems."), as ruff check --diff
    assert (r.exit_code, r.stdout, r.stderr) == (0, "", "")
    # only an unsafe fix: no diff, and ruff's line for it
    unsafe = write(DEPLOY + 'on git.push branch="a/*" run deploy with <sha>\n', "unsafe.trg")
    r = run("check", "--diff", str(unsafe))
    assert (r.exit_code, r.stdout) == (0, ""), r.output
    assert r.stderr == "No problem would be fixed (1 unsafe fix available with --unsafe-fixes).\n"


def test_stdin_with_fix_prints_the_fixed_text() -> None:
    r = run("check", "--fix", "-", input=DEPLOY + 'on git.push brnch="main" run deploy with <sha> busy skp\n')
    assert r.exit_code == 0, r.output
    assert r.stdout == DEPLOY + 'on git.push branch="main" run deploy with <sha> busy skip\n'
    # what remains goes to stderr, with the diagnostics
    r = run("check", "--fix", "-", input=DEPLOY + 'on git.push branch="a/*" run deploy with <sha>\n')
    assert r.stdout == DEPLOY + 'on git.push branch="a/*" run deploy with <sha>\n'
    assert "TRG307" in r.stderr


def test_a_file_with_a_syntax_error_gets_no_fix() -> None:
    text = DEPLOY + 'on git.push brnch="main" run deploy with <sha>\non git.push ((( run\n'
    p = write(text)
    r = run("check", "--fix", str(p))
    assert r.exit_code == 1 and p.read_text() == text
    assert "not fixed: it has syntax errors" in r.stderr


def test_a_keyword_typo_carries_its_fix_for_the_editor_but_check_fix_leaves_it() -> None:
    text = 'actoin deploy(sha) = exec "./d.sh" sha\non git.push run deploy with <sha>\n'
    p = write(text)
    d = json.loads(run("check", "--format", "json", str(p)).stdout)[0]
    assert d["code"] == "TRG001" and d["fix"]["edits"] == [{"line": 1, "column": 1, "end_line": 1, "end_column": 7,
                                                             "text": "action"}]
    r = run("check", "--fix", str(p))
    assert r.exit_code == 1 and p.read_text() == text and "fixable" not in r.stderr


def test_an_ignored_warning_is_not_fixed() -> None:
    text = DEPLOY + 'on git.push branch="a/*" run deploy with <sha>\n'
    p = write(text)
    run("check", "--fix", "--unsafe-fixes", "--ignore", "TRG307", str(p))
    assert p.read_text() == text


def test_unsafe_fixes_without_fix_is_a_usage_error() -> None:
    p = write(DEPLOY)
    assert run("check", "--unsafe-fixes", str(p)).exit_code == 2


def test_the_json_fix_member_only_where_there_is_a_fix() -> None:
    p = write(DEPLOY + 'on git.push brnch="main" run deploy with <sha>\n'
              'on git.push branch="main" run deploy with <sha> timeout 0s\n')
    diags = json.loads(run("check", "--format", "json", str(p)).stdout)
    fixed = [d for d in diags if d["code"] == "TRG203"]
    assert fixed[0]["fix"] == {"title": "Replace `brnch` with `branch`", "applicability": "safe",
                               "edits": [{"line": 2, "column": 13, "end_line": 2, "end_column": 18,
                                          "text": "branch"}]}
    assert any("fix" not in d for d in diags)  # the documented shape, for the others


def test_sarif_carries_the_fixes_and_stays_schema_valid(sarif_validator) -> None:
    p = write(DEPLOY + 'on git.push brnch="main" run deploy with <sha>\n'
              'on git.push branch="a/*" run deploy with <sha>\n')
    doc = json.loads(run("check", "--format", "sarif", str(p)).stdout)
    sarif_validator.validate(doc)
    results = {r["ruleId"]: r for r in doc["runs"][0]["results"]}
    [fix] = results["TRG203"]["fixes"]
    [change] = fix["artifactChanges"]
    assert change["artifactLocation"]["uri"] == "rules.trg"
    assert change["replacements"] == [{"deletedRegion": {"startLine": 2, "startColumn": 13, "endLine": 2,
                                                         "endColumn": 18}, "insertedContent": {"text": "branch"}}]
    assert results["TRG307"]["fixes"][0]["description"]["text"].endswith("(unsafe)")


def test_a_fix_keeps_an_fmt_clean_file_fmt_clean() -> None:
    text = (DEPLOY + 'let unused = "x"\n\n# the main branch\ndeploy_main:\n    on git.push brnch="main"\n'
            '    run deploy with <sha> busy skp\n\non git.push branch="release/*" run deploy with <sha>\n')
    formatted, _ = format_text(text, "rules.trg")
    assert formatted is not None
    p = write(formatted)
    assert run("fmt", "--check", str(p)).exit_code == 0
    r = run("check", "--fix", "--unsafe-fixes", str(p))
    assert r.exit_code == 0, r.output
    assert run("fmt", "--check", str(p)).exit_code == 0, p.read_text()
    assert run("check", "--strict", str(p)).exit_code == 0


def test_crlf_and_bom_are_kept() -> None:
    # (the typo on the first line: its columns count from after the BOM)
    def data(rule: str) -> bytes:
        return b"\xef\xbb\xbf" + (rule + DEPLOY).replace("\n", "\r\n").encode()

    p = Path("rules.trg")
    p.write_bytes(data('on git.push brnch="main" run deploy with <sha>\n'))
    assert run("check", "--fix", str(p)).exit_code == 0
    assert p.read_bytes() == data('on git.push branch="main" run deploy with <sha>\n')


def test_overlapping_edits_wait_for_the_next_pass() -> None:
    def fix(line: int, a: int, b: int, text: str) -> Fix:
        return Fix("t", (Edit(Span(Pos(line, a), Pos(line, b)), text),))

    text = "abcdef\nxyz\n"
    new, n = apply_fixes(text, [fix(1, 2, 5, "X"), fix(1, 4, 6, "Y"), fix(2, 1, 2, "Z"), fix(1, 1, 1, "<")])
    assert (new, n) == ("<aXef\nZyz\n", 3)


def test_an_included_file_is_not_fixed(tmp_path: Path) -> None:
    common = write('action deploy(sha) = exec "./d.sh" sah\n', "common.trg")
    main_text = 'include "common.trg"\non git.push run deploy with <sha>\n'
    p = write(main_text)
    before = common.read_text()
    r = run("check", "--fix", str(p))
    assert "TRG405" in r.output and common.read_text() == before and p.read_text() == main_text
    # so its fix is not counted as one --fix would apply, and a file two include is counted once
    write('include "common.trg"\non git.tag run deploy with <sha>\n', "other.trg")
    assert run("check", str(p), "other.trg").stderr == "1 error, 0 warnings\n"
    assert run("check", str(p), "other.trg", "common.trg").stderr == "1 error, 0 warnings\n1 fixable with --fix.\n"
    # checked itself, it is
    text, n, _ = fix_until_stable(common.read_text(), lambda t: compile_text(t, "common.trg").diagnostics,
                                  "common.trg")
    assert n == 1 and text == DEPLOY


def test_an_unused_noqa_is_reported_and_fixed() -> None:
    text = (DEPLOY + 'on git.push branch="a/*" run deploy with <sha>  # noqa: TRG307, TRG209\n'
            'on git.push branch="main" run deploy with <sha>  # noqa\n'
            '# noqa: TRG307\non git.push branch="b" run deploy with <sha>\n'
            'on git.push branch="c/*" run deploy with <sha>  # noqa: TRG307\n')
    p = write(text)
    diags = json.loads(run("check", "--format", "json", str(p)).stdout)
    assert [(d["code"], d["line"], d["message"]) for d in diags] == [
        ("TRG110", 2, "TRG209 in '# noqa' leaves out no warning here"),
        ("TRG110", 3, "'# noqa' leaves out no warning here"),
        ("TRG110", 4, "TRG307 in '# noqa' leaves out no warning here")]
    assert all(d["fix"]["applicability"] == "safe" for d in diags)
    r = run("check", "--fix", str(p))
    assert r.exit_code == 0 and "Fixed 3 problems." in r.stderr, r.output
    assert p.read_text() == (DEPLOY + 'on git.push branch="a/*" run deploy with <sha>  # noqa: TRG307\n'
                             'on git.push branch="main" run deploy with <sha>\n'
                             'on git.push branch="b" run deploy with <sha>\n'
                             'on git.push branch="c/*" run deploy with <sha>  # noqa: TRG307\n')
    assert run("check", "--strict", str(p)).exit_code == 0


def test_no_unused_noqa_in_a_file_with_an_error_or_when_ignored() -> None:
    # an error can stop the checks whose warnings the comment is for (an unknown event: no
    # field is checked), so the comment is not called unused there
    p = write(DEPLOY + 'on git.psh branch="a/*" run deploy with <sha>  # noqa: TRG307\n')
    assert [d["code"] for d in json.loads(run("check", "--format", "json", str(p)).stdout)] == ["TRG202"]
    q = write(DEPLOY + 'on git.push run deploy with <sha>  # noqa: TRG307\n', "q.trg")
    assert run("check", "--strict", "--ignore", "TRG110", str(q)).exit_code == 0
    w = write("# triggerc: noqa: TRG110\n" + DEPLOY + 'on git.push run deploy with <sha>  # noqa: TRG307\n', "w.trg")
    assert run("check", "--strict", str(w)).exit_code == 0


def test_an_unused_noqa_on_the_first_line_after_a_bom() -> None:
    p = Path("rules.trg")
    p.write_bytes(("\ufeff" + DEPLOY.rstrip("\n") + "  # noqa\non git.push run deploy with <sha>\n").encode())
    r = run("check", "--fix", str(p))
    assert r.exit_code == 0 and "Fixed 1 problem." in r.stderr, r.output
    assert p.read_bytes() == ("\ufeff" + DEPLOY + "on git.push run deploy with <sha>\n").encode()
