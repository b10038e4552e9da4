"""Rule tests in the language (SPEC §10): checking test blocks, running them, ``triggerc test``.

The webhook payloads are the shared real fixtures (``../shared/fixtures/webhooks``) and
their copies in ``examples/payloads``.
"""

from __future__ import annotations

import json
import shutil
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from click.testing import CliRunner

from triggerlang.api import compile_file, compile_text
from triggerlang.cli import main as cli
from triggerlang.fmt import format_text
from triggerlang.syntax.parser import parse
from triggerlang.testing import render_text, run_compiled, run_file

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"
FIXTURES = Path(__file__).resolve().parents[2] / "shared" / "fixtures" / "webhooks"
needs_fixtures = pytest.mark.skipif(not FIXTURES.is_dir(), reason="shared webhook fixtures not present")

DEPLOY = '''\
let bots = ["dependabot[bot]"]
action deploy(sha, stage="staging") = exec "./deploy.sh" sha stage

deploy_main: on git.push branch="main" author not in bots run deploy with <sha>, "prod"
release: on git.push branch ~ "release/*" run deploy with sha=<sha>
'''

GITHUB = '''\
secret gh = env "GH"
source github secret=gh
action build(n, what="preview") = exec "./build.sh" n what
action note(text) = shell "echo"
preview: on github.pull_request action in ["labeled", "synchronize"] labels="deploy-preview" draft=false
    run build with <number>
green: on ci.completed status="success" branch="master" run note with text="green"
wf: on github.workflow_run conclusion="success" run note with text="wf"
'''


def diags(text: str, base_dir: str | None = None) -> list[tuple]:
    c = compile_text(text, "rules.trg", base_dir)
    return [(d.code, d.span.start.line, d.span.start.column, d.message, d.hint) for d in c.diagnostics]


def codes(text: str, base_dir: str | None = None) -> list[tuple[str, int]]:
    return [(d[0], d[1]) for d in diags(text, base_dir)]


def run(text: str, base_dir: str | None = None):
    c = compile_text(text, "rules.trg", base_dir)
    assert c.ok, [(d.code, d.message) for d in c.diagnostics]
    return run_compiled(c)


def failures(text: str, base_dir: str | None = None) -> list[tuple[str, str, list[str]]]:
    rep = run(text, base_dir)
    return [(r.name, f.message, [e["text"] for e in f.explain]) for r in rep.results for f in r.failures]


def block(name: str, *lines: str) -> str:
    return f'\ntest "{name}":\n' + "".join(f"    {ln}\n" for ln in lines)


# --------------------------------------------------------------------------- running

def test_passing_tests_of_every_expect_kind() -> None:
    text = DEPLOY + block("main", 'given git.push branch="main" sha="abc" author="alice" files=["src/app.py"]',
                         'expect deploy_main with sha="abc", stage="prod"', "expect not release",
                         "expect only deploy_main") \
        + block("bots", 'given git.push branch="main" author="dependabot[bot]"', "expect none") \
        + block("default", 'given git.push branch="release/1" sha="r1"', 'expect release with "r1", "staging"')
    rep = run(text)
    assert [(r.name, r.passed) for r in rep.results] == [("main", True), ("bots", True), ("default", True)]
    assert rep.results[0].matched == ["deploy_main"]
    assert render_text([rep]).endswith("3 passed, 0 failed\n")


def test_an_expected_match_that_did_not_happen_says_which_condition_failed() -> None:
    got = failures(DEPLOY + block("dev", 'given git.push branch="dev" sha="abc" author="alice"',
                                 "expect deploy_main"))
    assert got == [("dev", "expected rule deploy_main to match",
                    ['condition branch="main" (line 4:26) failed: branch was "dev"'])]


def test_a_missing_field_and_a_negated_condition_are_explained() -> None:
    got = failures(DEPLOY + block("no branch", 'given git.push sha="abc"', "expect deploy_main")
                   + block("bot", 'given git.push branch="main" author="dependabot[bot]"', "expect deploy_main"))
    assert got[0][2] == ['condition branch="main" (line 4:26) failed: the event has no branch']
    assert got[1][2] == ['condition author not in ["dependabot[bot]"] (line 4:40) failed: author was "dependabot[bot]"']


def test_a_rule_of_another_trigger_or_type_is_explained() -> None:
    text = DEPLOY + 'tags: on git.tag run deploy with <sha>\n' + block(
        "tag", 'given git.tag tag="v1" sha="abc"', "expect deploy_main", "expect tags") + block(
        "file", 'given file.modified path="a.py"', "expect tags")
    got = failures(text)
    assert got[0] == ("tag", "expected rule deploy_main to match",
                      ["trigger git.push (line 4:1) failed: the event is git.tag"])
    assert got[1] == ("file", "expected rule tags to match",
                      ["rule tags listens to git.tag (line 6:1); the test's event is file.modified"])


def test_with_compares_only_the_parameters_written_after_defaults() -> None:
    got = failures(DEPLOY + block("stage", 'given git.push branch="release/2" sha="abc"',
                                 'expect release with stage="prod"')
                   + block("sha", 'given git.push branch="release/2" sha="abc"', 'expect release with sha="abd"')
                   + block("ok", 'given git.push branch="release/2" sha="abc"', 'expect release with sha="abc"'))
    assert got == [("stage", 'expected rule release to run deploy with stage="prod"',
                    ['stage was "staging", expected "prod"']),
                   ("sha", 'expected rule release to run deploy with sha="abd"', ['sha was "abc", expected "abd"'])]


def test_with_holds_for_any_run_and_a_failure_lists_every_run() -> None:
    """Two pushes, two runs: `expect R with` the second's inputs passes; inputs no run had
    fail with each run's differences (the message showed the first run's alone)."""
    two = ('given git.push branch="release/2" sha="abc"', 'given git.push branch="release/3" sha="def"')
    got = failures(DEPLOY + block("second", *two, 'expect release with sha="def"')
                   + block("neither", *two, 'expect release with sha="xyz", stage="staging"'))
    assert got == [("neither", 'expected rule release to run deploy with sha="xyz", stage="staging"; none of '
                    "its 2 runs had those inputs",
                    ['run 1 of 2: sha was "abc", expected "xyz"', 'run 2 of 2: sha was "def", expected "xyz"'])]


def test_with_does_not_coerce_types() -> None:
    text = ('action n(k) = exec "x" k\nr: on github.pull_request run n with <number>\n'
            'secret gh = env "GH"\nsource github secret=gh\n')
    got = failures(text + block("str", "given github.pull_request number=3", 'expect r with k="3"')
                   + block("int", "given github.pull_request number=3", "expect r with k=3"))
    assert [g[0] for g in got] == ["str"]


def test_expect_not_only_and_none_failures() -> None:
    text = DEPLOY + 'any_push: on git.push run deploy with <sha>\n'
    got = failures(text + block("not", 'given git.push branch="main" sha="s"', "expect not deploy_main")
                   + block("only", 'given git.push branch="release/1" sha="s"', "expect only deploy_main, release")
                   + block("none", 'given git.push branch="dev" sha="s"', "expect none"))
    assert got[0] == ("not", "expected rule deploy_main not to match, but it did",
                      ['it runs deploy with sha="s", stage="prod"'])
    assert got[1][1] == "expected only deploy_main, release to match; matched release, any_push"
    assert got[1][2] == ['deploy_main did not match: condition branch="main" (line 4:26) failed: branch was "release/1"',
                         'any_push matched too: it runs deploy with sha="s", stage="staging"']
    assert got[2][1] == "expected no rule to match; matched any_push"


def test_each_failing_expectation_is_one_failure_and_one_failed_test() -> None:
    rep = run(DEPLOY + block("two", 'given git.push branch="dev"', "expect deploy_main", "expect release"))
    assert len(rep.results) == 1 and len(rep.results[0].failures) == 2
    assert [f.span.start.line for f in rep.results[0].failures] == [9, 10]
    assert render_text([rep]).splitlines()[-1] == "0 passed, 1 failed"


# --------------------------------------------------------------------------- events built by given

def test_file_events_derive_name_ext_change_and_paths() -> None:
    text = ('action t(paths, name, ext, change) = exec "t" paths name ext change\n'
            'r: on file.changed path ~ "src/**" run t with <paths>, <name>, <ext>, <change> debounce 1s\n')
    text += block("mod", 'given file.changed path="src/a/b.py"',
                 'expect r with paths=["src/a/b.py"], name="b.py", ext="py", change="modified"')
    text += block("del", 'given file.changed path="src/Makefile" change="deleted"', 'expect r with ext="", change="deleted"')
    text += block("created", 'given file.created path="src/x.txt"', 'expect r with change="created"')
    assert failures(text) == []


def test_git_events_complete_ref_and_sha() -> None:
    text = ('action t(ref, after) = exec "t" ref after\nr: on git.push ref ~ "refs/heads/*" run t with <ref>, <after>\n'
            'tg: on git.tag ref="refs/tags/v1" run t with <ref>, <sha>\n')
    text += block("branch", 'given git.push branch="main" sha="abc"', 'expect r with ref="refs/heads/main", after="abc"')
    text += block("tag", 'given git.tag tag="v1" after="def"', 'expect tg with after="def"')
    assert failures(text) == []


def test_http_events_take_the_method_of_the_trigger() -> None:
    text = ('secret tok = env "T"\nsource http token=tok\naction t(m) = exec "t" m\n'
            'r: on http.post path="/hook" headers.x-kind="a" payload.pr.number=3 run t with <method>\n'
            'g: on http.get path="/hook" run t with <method>\n'
            'any: on http.request path="/any" run t with <method>\n')
    text += block("post", 'given http.post path="/hook" headers.X-Kind="a" payload.pr.number=3',
                 'expect only r', 'expect r with m="POST"')
    text += block("get", 'given http.get path="/hook"', "expect only g")
    text += block("request", 'given http.request path="/any"', 'expect any with m="POST"')
    text += block("put", 'given http.request path="/any" method="PUT"', 'expect any with m="PUT"')
    assert failures(text) == []


def test_a_given_credential_reaches_the_rules_redacted_as_under_serve() -> None:
    """given http.post headers.x-api-key="k" gave rules "k", where serve's rules see
    "<redacted>" (every route redacts it): a test passed for an input no run ever gets."""
    text = ('secret tok = env "T"\nsource http token=tok\naction t(k, q, e, env) = exec "t" k q e env\n'
            'r: on http.post path="/hook" run t with <headers.x-api-key>, <query.token>, <headers.x-event-key>, '
            '<query.env>\n')
    text += block("as served", 'given http.post path="/hook" headers.X-Api-Key="k" query.token="t" '
                  'headers.x-event-key="push" query.env="prod"',
                  'expect r with k="<redacted>", q="<redacted>", e="push", env="prod"')
    assert failures(text) == []


ROUTE_CREDENTIALS = '''\
secret k = env "K"
source http path="/hooks/x" token=k header="X-My-Key"
source http path="/hooks/q*" token=k query="tk"
source http path="/plain" hmac=k
source ci token=k header="X-Ci-Key"
action t(v, w="") = exec "echo" v w
x: on http.post path="/hooks/x" run t with <headers.x-my-key>, <headers.x-other>
q: on http.post path="/hooks/qa" run t with <query.tk>, <query.env>
body: on http.request path="/hooks/qb" run t with <payload.tk>, <text>
plain: on http.post path="/plain" run t with <headers.x-my-key>
green: on ci.completed run t with <headers.x-ci-key>
'''


def test_a_given_loses_the_credential_of_the_route_serve_would_take_it_on(tmp_path: Path) -> None:
    """A route's own header= or query= credential reached a rule test's rules as given
    ("s3cret"), where serve's rules see "<redacted>" or nothing: each test below passed.
    The route is the one serve picks for the given's path and method (from X.trg's
    declarations, for X_test.trg), a webhook's its provider's; another route keeps the
    header, and the body's top-level field of query= goes from payload and text."""
    (tmp_path / "hooks.trg").write_text(ROUTE_CREDENTIALS)
    (tmp_path / "push.json").write_text('{"tk": "s3cret", "ref": "main"}')
    (tmp_path / "hooks_test.trg").write_text(
        block("header", 'given http.post path="/hooks/x" headers.x-my-key="s3cret" headers.x-other="o"',
              'expect x with v="s3cret", w="o"')
        + block("query", 'given http.post path="/hooks/qa" query.tk="s3cret" query.env="prod"',
                'expect q with v="s3cret", w="prod"')
        + block("body", 'given http.post path="/hooks/qb" from "push.json"', 'expect body with v="s3cret"')
        + block("ci", 'given ci.completed pipeline="p" status="success" headers.x-ci-key="s3cret"',
                'expect green with v="s3cret"')
        + block("another route", 'given http.post path="/plain" headers.x-my-key="s3cret"',
                'expect plain with v="s3cret"')
        + block("body text", 'given http.post path="/hooks/qb" from "push.json"',
                'expect body with w="{\\"tk\\": \\"<redacted>\\", \\"ref\\": \\"main\\"}"'))
    result = _cli("test", "--format", "json", str(tmp_path / "hooks.trg"))
    assert result.exit_code == 1, result.output
    doc = json.loads(result.stdout)
    assert (doc["passed"], doc["failed"], doc["errors"]) == (2, 4, []), result.stdout
    seen = {t["name"]: [e["text"] for f in t["failures"] for e in f["explain"]] for t in doc["tests"]}
    assert seen == {"header": ['v was "<redacted>", expected "s3cret"'], "query": ['v was null, expected "s3cret"'],
                    "body": ['v was null, expected "s3cret"'], "ci": ['v was "<redacted>", expected "s3cret"'],
                    "another route": [], "body text": []}


def test_a_schedule_tick_matches_only_its_own_rule() -> None:
    text = ('action b(kind="full") = exec "b" kind\nnightly: on cron "30 2 * * *" run b\n'
            'health: on every 5m run b with "quick"\n')
    text += block("n", 'given schedule.tick rule="nightly"', "expect only nightly")
    text += block("h", 'given schedule.tick rule="health"', 'expect health with kind="quick"', "expect not nightly")
    assert failures(text) == []
    got = failures(text + block("wrong", 'given schedule.tick rule="health"', "expect nightly"))
    assert got == [("wrong", "expected rule nightly to match",
                    ['condition rule="nightly" failed: rule was "health"; a schedule rule matches only its own ticks'])]


def test_lets_work_in_given_and_with_and_count_as_used() -> None:
    text = ('let sha = "abc"\nlet files = ["a.py"]\naction d(sha) = exec "d" sha\n'
            'r: on git.push files ~ "*.py" run d with <sha>\n'
            + block("lets", "given git.push sha=sha files=files", "expect r with sha=sha"))
    assert codes(text) == []
    assert failures(text) == []


# --------------------------------------------------------------------------- real payloads

@needs_fixtures
def test_from_a_real_github_payload_through_the_normaliser(tmp_path: Path) -> None:
    shutil.copy(FIXTURES / "github" / "pull_request-labeled.json", tmp_path / "pr.json")
    text = GITHUB + block("bug", 'given github.pull_request from "pr.json"', "expect none") \
        + block("preview", 'given github.pull_request labels=["deploy-preview"] from "pr.json"',
               'expect only preview', 'expect preview with n=2, what="preview"') \
        + block("draft", 'given github.pull_request labels=["deploy-preview"] draft=true from "pr.json"',
               "expect not preview")
    assert failures(text, str(tmp_path)) == []


@needs_fixtures
def test_a_payload_path_is_relative_to_the_rules_file(tmp_path: Path) -> None:
    (tmp_path / "sub" / "payloads").mkdir(parents=True)
    shutil.copy(FIXTURES / "github" / "pull_request-opened.json", tmp_path / "sub" / "payloads" / "pr.json")
    rules = tmp_path / "sub" / "rules.trg"
    rules.write_text(GITHUB + block("opened", 'given github.pull_request from "payloads/pr.json"', "expect none"))
    rep = run_file(rules)
    assert rep.errors == [] and [r.passed for r in rep.results] == [True]


@needs_fixtures
def test_a_workflow_run_payload_gives_two_events_and_the_union_of_matches() -> None:
    path = FIXTURES / "github" / "workflow_run-completed.json"
    text = GITHUB + block("both", f'given github.workflow_run from "{path}"', "expect only green, wf",
                         'expect green with text="green"')
    assert failures(text) == []
    got = failures(text + block("none", f'given github.workflow_run from "{path}"', "expect none"))
    assert got == [("none", "expected no rule to match; matched green, wf",
                    ['green: it runs note with text="green"', 'wf: it runs note with text="wf"'])]


@needs_fixtures
def test_fields_override_the_payload_but_not_the_derived_event() -> None:
    path = FIXTURES / "github" / "workflow_run-completed.json"
    text = GITHUB + block("x", f'given github.workflow_run conclusion="failure" from "{path}"', "expect only green")
    assert failures(text) == []


@needs_fixtures
def test_from_a_real_gitlab_payload_and_its_kind(tmp_path: Path) -> None:
    shutil.copy(FIXTURES / "gitlab" / "tag_push.json", tmp_path / "tag.json")
    base = ('secret t = env "T"\nsource gitlab token=t\naction i(tag, sha) = exec "i" tag sha\n'
            'img: on gitlab.tag_push tag ~ "v*" sha !~ /^0+$/ run i with <tag>, <sha>\n')
    ok = base + block("tag", 'given gitlab.tag_push from "tag.json"',
                     'expect img with tag="v1.0.0", sha="82b3d5ae55f7080f1e6022629cdb57bfae7cccc7"')
    assert failures(ok, str(tmp_path)) == []
    wrong = base + block("kind", 'given gitlab.push from "tag.json"', "expect img")
    assert diags(wrong, str(tmp_path)) == [
        ("TRG603", 7, 11, "'tag.json' holds a gitlab tag_push event, not push",
         'write: given gitlab.tag_push from "tag.json"')]


def test_a_generic_ci_payload(tmp_path: Path) -> None:
    (tmp_path / "ci.json").write_text('{"pipeline": "build", "status": "success", "tag": "v1.2.3", "sha": "abc"}')
    text = ('secret t = env "T"\nsource ci token=t\naction r(tag) = exec "r" tag\n'
            'rel: on ci.completed status="success" ref ~ "refs/tags/v*" run r with <tag>\n'
            + block("ci", 'given ci.completed from "ci.json"', 'expect rel with tag="v1.2.3"'))
    assert failures(text, str(tmp_path)) == []


# --------------------------------------------------------------------------- diagnostics

def test_unknown_rules_get_a_did_you_mean() -> None:
    got = diags(DEPLOY + block("t", 'given git.push branch="main"', "expect deploy_mian", "expect not relase",
                              "expect only deploy_main, xyz"))
    assert [(d[0], d[1], d[2], d[3], d[4]) for d in got] == [
        ("TRG601", 9, 12, "no rule named 'deploy_mian'", "did you mean 'deploy_main'?"),
        ("TRG601", 10, 16, "no rule named 'relase'", "did you mean 'release'?"),
        ("TRG601", 11, 30, "no rule named 'xyz'", "rules: deploy_main, release"),
    ]
    # a test file with no rules of its own and no companion to test
    c = compile_text(block("t", 'given git.push branch="main"', "expect deploy_main"), "rules/deploy_test.trg")
    assert [(d.code, d.hint) for d in c.diagnostics] == [
        ("TRG601", "this file has no rules, and no deploy.trg beside it to test")]


def test_given_fields_are_checked_like_filters() -> None:
    got = diags(DEPLOY + block("t", 'given git.push brnch="main" commits="3" forced=1 files="a.py" branch=["a"]',
                              "expect deploy_main"))
    assert [(d[0], d[2], d[3], d[4]) for d in got] == [
        ("TRG203", 20, "git.push has no field 'brnch'", "did you mean 'branch'?"),
        ("TRG204", 41, "'commits' is an integer, compared with a string", "write 3 without quotes"),
        ("TRG204", 52, "'forced' is a boolean, compared with a number", "write true"),
        ("TRG204", 60, "'files' is a list of strings, not a string", 'write a list: files=[...]'),
        ("TRG204", 74, "'branch' is a string, not a list", "a given field takes one value"),
    ]
    # a "write X" hint carries the editor's quick fix, X over the value
    fixes = [(d.span.start.column, d.fix and [e.text for e in d.fix.edits]) for d in compile_text(
        DEPLOY + block("t", 'given git.push brnch="main" commits="3" forced=1 files="a.py" branch=["a"]',
                       "expect deploy_main"), "rules.trg").diagnostics if d.code == "TRG204"]
    assert fixes == [(41, ["3"]), (52, ["true"]), (60, None), (74, None)]


def test_given_list_elements_maps_and_regexes() -> None:
    text = ('secret tok = env "T"\nsource http token=tok\naction t = exec "t"\n'
            'r: on http.post path="/h" run t\n'
            + block("t", 'given http.post path="/h" headers="x" payload.x=/re/ query.a=1', "expect r")
            + block("u", 'given git.push files=["a", 2]', "expect r"))
    got = [(d[0], d[1], d[3]) for d in diags(text)]
    assert got == [
        ("TRG204", 7, "'headers' is a map: give its keys one by one"),
        ("TRG204", 7, "'payload.x' is given a regex: a regex is a pattern, not a value an event holds"),
        ("TRG204", 7, "'query.a' is a string, compared with a number"),
        ("TRG204", 11, "'files' is a list of strings, compared with a number"),
    ]


def test_given_trigger_is_checked_like_a_rule_trigger() -> None:
    got = codes(DEPLOY + block("a", 'given gti.push branch="x"', "expect deploy_main")
                + block("b", 'given git.psh branch="x"', "expect deploy_main"))
    assert got == [("TRG201", 8), ("TRG202", 12)]


def test_payload_files_that_cannot_be_used(tmp_path: Path) -> None:
    (tmp_path / "bad.json").write_text("{not json")
    (tmp_path / "empty.json").write_text('{"ref": 3}')
    (tmp_path / "dir.json").mkdir()
    (tmp_path / "deep.json").write_text('{"ref": ' + "[" * 100_000 + "]" * 100_000 + "}")
    (tmp_path / "nan.json").write_text('{"ref": NaN}')
    text = ('secret gh = env "G"\nsource github secret=gh\naction d(sha) = exec "d" sha\n'
            'r: on github.push run d with <sha>\n')
    for name, message in [("missing.json", "payload file 'missing.json' does not exist"),
                          ("bad.json", "payload file 'bad.json' is not valid JSON (Expecting property name "
                                       "enclosed in double quotes at line 1 column 2)"),
                          ("dir.json", "payload file 'dir.json' is a folder"),
                          ("deep.json", "payload file 'deep.json' is JSON nested too deeply to read"),
                          ("nan.json", "payload file 'nan.json' is not valid JSON (NaN is not a JSON value)"),
                          ("/dev/zero", "payload file '/dev/zero' is over 64 MiB"),   # (was a MemoryError)
                          ("empty.json", "payload file 'empty.json' is not a github push payload: ")]:
        got = diags(text + block("t", f'given github.push from "{name}"', "expect r"), str(tmp_path))
        assert len(got) == 1 and got[0][:3] == ("TRG602", 7, 28), got
        assert got[0][3].startswith(message), got


def test_invalid_tests() -> None:
    text = DEPLOY + 'nightly: on every 1d run deploy with "x"\n'
    cases = [
        ('given git.push from "x.json"', "from reads a raw webhook payload, and git.push events do not come from one"),
        ('given git.* branch="x"', "a test event has one type, not git.*"),
        ("given schedule.tick", "a schedule tick belongs to one rule: say which"),
        ('given schedule.tick rule="release"', "rule 'release' is not a schedule (every/cron) rule, so it has no ticks"),
        ('given git.push branch="a" branch="b"', "'branch' is given twice (first on line 9)"),
        ('given http.post payload.a=1 payload.a.b=2', "'payload.a.b' and 'payload.a' overlap: one is inside the other"),
        ('given file.changed path="a" change="renamed"', 'change is created, modified or deleted, not "renamed"'),
        ('given file.created path="a" change="deleted"', 'a file.created event has change="created", not "deleted"'),
        ('given http.get method="POST" path="/"', "an http.get event has method GET, not POST"),
        # a method in lower case was upper-cased, so a test passed where check reports the
        # rule's method="post" (TRG501) and emit refuses it: no event has it
        ('given http.post method="post" path="/"', 'an HTTP method is upper case, never "post": no event has it'),
        ('given http.request method="put" path="/"', 'an HTTP method is upper case, never "put": no event has it'),
    ]
    for given, message in cases:
        got = diags(text + block("t", given, "expect none"))
        assert [(d[0], d[3]) for d in got] == [("TRG603", message)], (given, got)
    # a "write X" hint carries the editor's quick fix: applied, the test checks clean
    for given, written, fixed in [('given git.* branch="x"', "git.push", 'given git.push branch="x"'),
                                  ('given http.post method="post" path="/"', 'method="POST"',
                                   'given http.post method="POST" path="/"')]:
        [d] = compile_text(text + block("t", given, "expect none"), "rules.trg").diagnostics
        assert d.hint.startswith(f"write {written}") and [e.text for e in d.fix.edits] == [written], d
        source = (text + block("t", given, "expect none")).split("\n")
        e = d.fix.edits[0].span
        line = source[e.start.line - 1]
        source[e.start.line - 1] = line[:e.start.column - 1] + written + line[e.end.column - 1:]
        assert fixed in source[e.start.line - 1] and diags("\n".join(source)) == [], source


def test_expect_with_args_are_checked_against_the_action() -> None:
    got = diags(DEPLOY + block("t", 'given git.push branch="main"', 'expect deploy_main with stag="x"')
                + block("u", 'given git.push branch="main"', 'expect deploy_main with "a", "b", "c"')
                + block("v", 'given git.push branch="main"', "expect deploy_main with sha=<sha>"))
    assert [(d[0], d[3], d[4]) for d in got] == [
        ("TRG402", "action 'deploy' (run by rule 'deploy_main') has no parameter 'stag'", "did you mean 'stage'?"),
        ("TRG401", "too many arguments: action 'deploy' (run by rule 'deploy_main') takes 2",
         "its parameters are (sha, stage)"),
        ("TRG603", "expect ... with compares values: a placeholder has none here",
         'write the value the run should get, e.g. sha="abc123"'),
    ]


def test_duplicate_test_names_and_contradictions() -> None:
    got = codes(DEPLOY + block("same", "given git.push", "expect none") + block("same", "given git.push", "expect none")
                + block("c", "given git.push", "expect release", "expect none")
                + block("d", "given git.push", "expect release", "expect only deploy_main"))
    assert got == [("TRG101", 11), ("TRG603", 18), ("TRG603", 23)]


def test_check_reports_test_errors_with_the_rest(tmp_path: Path) -> None:
    f = tmp_path / "rules.trg"
    f.write_text(DEPLOY + 'on git.push brnch="x" run deploy with <sha>\n'
                 + block("t", 'given git.push branch=1 from "x.json"', "expect deploy_mian"))
    result = CliRunner().invoke(cli, ["check", "--format", "json", str(f)])
    assert result.exit_code == 1
    got = [(d["code"], d["line"]) for d in json.loads(result.output)]
    assert got == [("TRG203", 6), ("TRG204", 9), ("TRG603", 9), ("TRG601", 10)]


# --------------------------------------------------------------------------- companions

def test_a_test_companion_sees_the_rules_it_is_named_after(tmp_path: Path) -> None:
    (tmp_path / "deploy.trg").write_text(DEPLOY)
    (tmp_path / "deploy_test.trg").write_text(
        block("main", 'given git.push branch="main" sha="a"', "expect only deploy_main")
        + block("typo", 'given git.push branch="dev"', "expect deploy_main", "expect relase"))
    c = compile_file(tmp_path / "deploy_test.trg")
    assert [(d.code, d.hint) for d in c.diagnostics] == [("TRG601", "did you mean 'release'?")]
    (tmp_path / "deploy_test.trg").write_text(
        block("main", 'given git.push branch="main" sha="a"', "expect only deploy_main")
        + block("dev", 'given git.push branch="dev"', "expect deploy_main"))
    rep = run_file(tmp_path / "deploy_test.trg", "deploy_test.trg")
    assert [r.passed for r in rep.results] == [True, False]
    explain = rep.results[1].failures[0].explain[0]["text"]
    assert explain == f'condition branch="main" ({tmp_path / "deploy.trg"}:4:26) failed: branch was "dev"'


def test_a_companion_of_a_broken_file_does_not_run(tmp_path: Path) -> None:
    (tmp_path / "d.trg").write_text(DEPLOY + "on git.push run nothing\n")
    (tmp_path / "d_test.trg").write_text(block("t", 'given git.push branch="main"', "expect deploy_main"))
    result = CliRunner().invoke(cli, ["test", str(tmp_path / "d_test.trg")])
    assert result.exit_code == 1
    assert "error[TRG104]" in result.stderr and "d_test.trg: tests not run: fix the errors first" in result.stderr
    assert result.stdout == "0 passed, 0 failed\n"


SCHEDULES = '''\
action a = exec "true"
nightly: on cron "0 3 * * 1-5" tz "Europe/Paris" run a
hourly: on every 1h run a
fast: on every 1s run a
'''


def test_the_clock_ticks_every_and_cron_rules_as_serve_does() -> None:
    """Before: `wait`/`at` moved the clock past a schedule's time and nothing ticked; the
    failure said "the test's event is no event". The clock starts Monday 2024-01-01 00:00Z."""
    text = SCHEDULES.replace("fast: on every 1s run a\n", "") + (
        block("an hour passes", "wait 59m", "expect none", "wait 1m", "expect only hourly")
        + block("03:00 in Paris is 02:00 UTC in winter", 'at "2024-01-01T01:59:00Z"', "expect not nightly",
                'at "2024-01-01T02:00:00Z"', "expect nightly", 'at "2024-01-01T02:30:00Z"', "expect none")
        + block("not at the weekend", 'at "2024-01-06T00:00:00Z"', "expect nightly", "expect hourly",
                'at "2024-01-08T01:00:00Z"', "expect not nightly", "wait 1h", "expect nightly")
        + block("a tick names its rule", "wait 90m", "expect hourly", "expect not nightly"))
    rep = run(text)
    assert [(r.name, [f.message for f in r.failures]) for r in rep.results] == [
        ("an hour passes", []), ("03:00 in Paris is 02:00 UTC in winter", []), ("not at the weekend", []),
        ("a tick names its rule", [])]


def test_a_schedule_rule_expected_without_a_tick_says_how_to_tick_it() -> None:
    text = SCHEDULES.replace("fast: on every 1s run a\n", "") + block("too soon", "wait 30m", "expect hourly")
    ((name, message, explain),) = failures(text)
    assert message == "expected rule hourly to match"
    assert explain == ["rule hourly listens to schedule.tick (line 3:1); the steps before this expect gave no "
                       "event (a schedule rule ticks when the clock passes its time: wait or at)"]
    # other rules' ticks, 1,800 of them: one line that counts them
    text = SCHEDULES + block("too soon", "wait 30m", "expect hourly")
    assert failures(text) == [("too soon", "expected rule hourly to match", [
        'condition rule="hourly" failed: the ticks were of "fast" ×1800; a schedule rule matches only its own '
        "ticks (it ticks when the clock passes its time: wait or at)"])]


def test_a_step_that_would_tick_without_end_fails_instead_of_hanging() -> None:
    text = SCHEDULES + block("a month of seconds", "wait 30d", "expect fast")
    ((name, message, explain),) = failures(text)
    assert message == "the schedules tick more than 10,000 times in this step: move the clock less far"


# --------------------------------------------------------------------------- the CLI

def _cli(*args: str):
    return CliRunner().invoke(cli, list(args))


def test_cli_text_output_and_exit_codes(tmp_path: Path) -> None:
    (tmp_path / "d.trg").write_text(DEPLOY + block("ok", 'given git.push branch="main" sha="a"', "expect deploy_main"))
    (tmp_path / "d_test.trg").write_text(block("bad", 'given git.push branch="dev" sha="a"', "expect deploy_main"))
    result = _cli("test", str(tmp_path / "d.trg"))  # brings d_test.trg along
    assert result.exit_code == 1
    assert result.stdout.splitlines() == [
        f'{tmp_path / "d_test.trg"}:4:5: FAIL test "bad": expected rule deploy_main to match',
        f'  condition branch="main" ({tmp_path / "d.trg"}:4:26) failed: branch was "dev"',
        "1 passed, 1 failed",
    ]
    (tmp_path / "d_test.trg").write_text(block("good", 'given git.push branch="dev" sha="a"', "expect none"))
    result = _cli("test", "-v", str(tmp_path), str(tmp_path / "d.trg"))  # a folder; no file twice
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines()[-1] == "2 passed, 0 failed"
    assert sum("ok   test" in ln for ln in result.stdout.splitlines()) == 2


def test_cli_json_output(tmp_path: Path) -> None:
    f = tmp_path / "d.trg"
    f.write_text(DEPLOY + block("ok", 'given git.push branch="main"', "expect deploy_main")
                 + block("bad", 'given git.push branch="dev"', "expect deploy_main"))
    result = _cli("test", "--format", "json", str(f))
    assert result.exit_code == 1
    doc = json.loads(result.stdout)
    assert (doc["passed"], doc["failed"], doc["errors"]) == (1, 1, [])
    assert [(t["name"], t["line"], t["passed"], t["file"]) for t in doc["tests"]] == [
        ("ok", 7, True, str(f)), ("bad", 11, False, str(f))]
    fail = doc["tests"][1]["failures"][0]
    assert fail["line"] == 13 and fail["message"] == "expected rule deploy_main to match"
    assert fail["expect"] == "expect deploy_main"
    assert fail["explain"][0]["field"] == "branch" and fail["explain"][0]["value"] == "dev"
    assert fail["explain"][0]["at"] == {"file": str(f), "line": 4, "column": 26}


def test_cli_usage_errors(tmp_path: Path) -> None:
    assert _cli("test", str(tmp_path / "nope.trg")).exit_code == 2
    assert _cli("test", str(tmp_path)).exit_code == 2  # a folder with no .trg
    assert _cli("test").exit_code == 2


def test_cli_no_tests_exits_5_as_pytest_does(tmp_path: Path) -> None:
    # a companion that went missing must fail CI, not pass in silence (pytest: exit 5)
    f = tmp_path / "d.trg"
    f.write_text(DEPLOY)
    result = _cli("test", str(f))
    assert (result.exit_code, result.stdout) == (5, "0 passed, 0 failed\n")
    assert result.stderr == f"no tests found in {f} (looked for test blocks in it and in d_test.trg beside it)\n"
    result = _cli("test", "--format", "json", str(f))  # stdout stays the format's document
    assert result.exit_code == 5 and json.loads(result.stdout)["tests"] == []
    result = _cli("test", "--format", "junit", str(f))
    assert result.exit_code == 5 and ET.fromstring(result.stdout).get("tests") == "0"
    result = _cli("test", "-k", "deploy", str(f))  # no test at all: not "-k selected none"
    assert result.exit_code == 5 and "no tests found" in result.stderr
    (tmp_path / "e.trg").write_text(DEPLOY)
    result = _cli("test", str(tmp_path))
    assert result.exit_code == 5
    assert result.stderr.startswith("no tests found in 2 files")


def _selection_files(tmp_path: Path) -> Path:
    (tmp_path / "d.trg").write_text(
        DEPLOY + block("a push to main deploys", 'given git.push branch="main" sha="a"', "expect deploy_main")
        + block("a push to main by the bots", 'given git.push branch="main" author="dependabot[bot]"',
                "expect deploy_main")  # fails: the bots are left out
        + block("build and test", 'given git.push branch="dev"', "expect none"))
    (tmp_path / "d_test.trg").write_text(block("A Release Branch", 'given git.push branch="release/1"',
                                               "expect release"))
    return tmp_path / "d.trg"


def test_cli_k_selects_tests_by_name_as_pytest_does(tmp_path: Path) -> None:
    f = _selection_files(tmp_path)
    result = _cli("test", str(f), "-k", "push to main and not bots", "-v")
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines() == [f'{f}:7:1: ok   test "a push to main deploys"',
                                          "1 passed, 0 failed, 3 deselected"]
    result = _cli("test", str(f), "-k", "bots or release")  # any case; the companion file too
    assert result.exit_code == 1
    assert result.stdout.splitlines()[-1] == "1 passed, 1 failed, 2 deselected"
    assert 'FAIL test "a push to main by the bots"' in result.stdout
    result = _cli("test", str(f), "-k", '"build and test" or (release and not push)', "--format", "json")
    doc = json.loads(result.stdout)
    assert (result.exit_code, doc["passed"], doc["failed"], doc["deselected"]) == (0, 2, 0, 2)
    assert [t["name"] for t in doc["tests"]] == ["build and test", "A Release Branch"]
    # without -k nothing is deselected, and the last line is as before
    assert _cli("test", str(f)).stdout.splitlines()[-1] == "3 passed, 1 failed"


def test_cli_k_that_selects_nothing_fails_and_a_bad_one_is_a_usage_error(tmp_path: Path) -> None:
    f = _selection_files(tmp_path)
    result = _cli("test", str(f), "-k", "no such test")  # a typo must not pass CI
    assert result.exit_code == 1
    assert result.stdout == "0 passed, 0 failed, 4 deselected\n"
    assert "no test matches -k 'no such test' (4 deselected)" in result.stderr
    for expr, says in (("push and", "expected a name, found the end"), ("(push", "a '(' is not closed"),
                       ("push)", "unexpected ')'"), ('"push', 'an unclosed "'), ("", "-k needs an expression")):
        result = _cli("test", str(f), "-k", expr)
        assert result.exit_code == 2 and says in result.stderr, (expr, result.output)
        assert "Traceback" not in result.output


def test_cli_file_colon_colon_name_runs_one_test_as_pytest_node_ids_do(tmp_path: Path) -> None:
    f = _selection_files(tmp_path)
    companion = tmp_path / "d_test.trg"
    # the exact name; the rules file's companion is searched too
    result = _cli("test", f"{f}::a push to main deploys", "-v")
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines() == [f'{f}:7:1: ok   test "a push to main deploys"',
                                          "1 passed, 0 failed, 3 deselected"]
    result = _cli("test", f"{f}::A Release Branch", "--format", "json")
    assert [t["name"] for t in json.loads(result.stdout)["tests"]] == ["A Release Branch"]
    # two names of one file; a folder stands for its files
    result = _cli("test", f"{f}::build and test", f"{companion}::A Release Branch", "--format", "json")
    assert [t["name"] for t in json.loads(result.stdout)["tests"]] == ["build and test", "A Release Branch"]
    result = _cli("test", f"{tmp_path}::build and test", "--format", "json")
    assert [t["name"] for t in json.loads(result.stdout)["tests"]] == ["build and test"]
    # exact, not a part of the name (that is -k); the file given whole as well runs whole
    assert _cli("test", f"{f}::build").exit_code == 2
    assert _cli("test", str(f), f"{f}::build and test").stdout.splitlines()[-1] == "3 passed, 1 failed"
    # with -k both must hold
    result = _cli("test", f"{f}::a push to main deploys", "-k", "bots")
    assert result.exit_code == 1 and "no test matches -k 'bots'" in result.stderr


def test_cli_file_colon_colon_a_name_no_test_has_is_a_usage_error(tmp_path: Path) -> None:
    f = _selection_files(tmp_path)
    result = _cli("test", f"{f}::a push to main deploy")  # a typo must not pass CI
    assert result.exit_code == 2 and result.stdout == ""
    assert result.stderr == (f"triggerc: error: {f}: no test named 'a push to main deploy' in it or its companion "
                             "(its tests: 'A Release Branch', 'a push to main by the bots', "
                             "'a push to main deploys', 'build and test')\n")
    assert _cli("test", f"{f}::").exit_code == 2
    assert "no such file" in _cli("test", f"{tmp_path / 'nope.trg'}::x").stderr
    # a file with errors ran no test: its errors are shown, not a 'no test named'
    (tmp_path / "bad.trg").write_text('test "t":\n    given nope.push\n')
    result = _cli("test", f"{tmp_path / 'bad.trg'}::t")
    assert result.exit_code == 1 and "no test named" not in result.stderr and "TRG" in result.stderr


def test_cli_github_format_annotates_each_failed_expect(tmp_path: Path) -> None:
    f = _selection_files(tmp_path)
    result = _cli("test", str(f), "--format", "github")
    assert result.exit_code == 1
    lines = result.stdout.splitlines()
    (ann,) = [ln for ln in lines if ln.startswith("::")]
    assert ann.startswith(f"::error file={f},line=13,col=5,endLine=13,endColumn=23,"
                          'title=test "a push to main by the bots" failed::expected rule deploy_main to match%0A'
                          '  condition author not in ["dependabot[bot]"] (line 4:40) failed'), ann
    assert lines[-1] == "3 passed, 1 failed"
    # a file's errors as check --format github gives them; its tests did not run
    (tmp_path / "d_test.trg").write_text(block("t", 'given git.push branch="main"', "expect nosuch"))
    result = _cli("test", str(tmp_path / "d_test.trg"), "--format", "github")
    assert result.exit_code == 1
    assert result.stdout.splitlines()[0].startswith(f"::error file={tmp_path / 'd_test.trg'},line=4,col=12,")
    assert "title=TRG601::no rule named 'nosuch'" in result.stdout


def test_cli_junit_format_is_the_report_ci_systems_read(tmp_path: Path) -> None:
    import xml.etree.ElementTree as ET

    f = _selection_files(tmp_path)
    result = _cli("test", str(f), "--format", "junit", "-k", "not release")
    assert result.exit_code == 1
    root = ET.fromstring(result.stdout)
    assert root.tag == "testsuites"
    assert [s.get("name") for s in root.iter("testsuite")] == [str(f), str(tmp_path / "d_test.trg")]
    # a deselected test is a <skipped> case, and tests counts it (passed = tests - failures - errors - skipped)
    assert [(s.get("tests"), s.get("skipped")) for s in root.iter("testsuite")] == [("3", "0"), ("1", "1")]
    assert {k: root.get(k) for k in ("tests", "failures", "errors", "skipped")} == {
        "tests": "4", "failures": "1", "errors": "0", "skipped": "1"}
    cases = [(c.get("classname"), c.get("name"), c.get("line"), c.find("failure") is not None,
              c.find("skipped") is not None) for c in root.iter("testcase")]
    assert cases == [(str(f), "a push to main deploys", "7", False, False),
                     (str(f), "a push to main by the bots", "11", True, False),
                     (str(f), "build and test", "15", False, False),
                     (str(tmp_path / "d_test.trg"), "A Release Branch", "2", False, True)]
    failure = next(root.iter("failure"))
    assert failure.get("message") == "expected rule deploy_main to match"
    assert failure.text.startswith(f"{f}:13:5: expected rule deploy_main to match\n"
                                   '  condition author not in ["dependabot[bot]"]')
    # a file with errors: one error case, the tests not run
    (tmp_path / "d_test.trg").write_text(block("t", 'given git.push branch="main"', "expect nosuch"))
    root = ET.fromstring(_cli("test", str(tmp_path / "d_test.trg"), "--format", "junit").stdout)
    assert root.get("errors") == "1" and root.get("tests") == "1"
    (err,) = root.iter("error")
    assert "TRG601: no rule named 'nosuch'" in err.text


# --------------------------------------------------------------------------- fmt

def test_fmt_round_trips_test_blocks() -> None:
    text = (DEPLOY + '\ntest   "t" :\n  given git.push   branch = "main" files=[ "a" , "b" , ]\n'
            '        expect deploy_main  with sha="x" ,stage = "prod"\n  expect not release\n'
            '  expect only deploy_main,release\n  expect none\n'
            'test "p":\n given github.push from  "p.json"\n expect none\n')
    out, d = format_text(text)
    assert out is not None, list(d)
    assert out.endswith('test "t":\n    given git.push branch="main" files=["a", "b"]\n'
                        '    expect deploy_main with sha="x", stage="prod"\n    expect not release\n'
                        '    expect only deploy_main, release\n    expect none\n'
                        'test "p":\n    given github.push from "p.json"\n    expect none\n')
    assert parse(out)[0] == parse(text)[0]
    assert format_text(out)[0] == out


# --------------------------------------------------------------------------- the examples

def test_the_examples_tests_pass_and_cover_every_rule() -> None:
    result = _cli("test", str(EXAMPLES))
    assert result.exit_code == 0, result.stdout + result.stderr
    assert result.stdout.endswith(" passed, 0 failed\n")
    for main in sorted(EXAMPLES.glob("*.trg")):
        if main.name.endswith("_test.trg"):
            continue
        rules = set(compile_file(main).program.rule_asts)
        tested: set[str] = set()
        for f in (main, main.with_name(main.stem + "_test.trg")):
            if f.is_file():
                for t in compile_file(f).program.tests:
                    for x in t.expects:
                        if x.kind in ("match", "only"):
                            tested.update(x.rules)
        assert rules <= tested, f"{main.name}: rules no test expects to match: {sorted(rules - tested)}"


def test_the_examples_payloads_are_the_shared_fixtures_byte_for_byte() -> None:
    if not FIXTURES.is_dir():
        pytest.skip("shared webhook fixtures not present")
    for p in sorted((EXAMPLES / "payloads").glob("*-*.json")):
        provider, rest = p.name.split("-", 1)
        if provider not in ("github", "gitlab"):
            continue
        assert p.read_bytes() == (FIXTURES / provider / rest).read_bytes(), p.name


def test_the_examples_are_clean_under_strict_check() -> None:
    files = [str(p) for p in sorted(EXAMPLES.glob("*_test.trg"))]
    result = _cli("check", "--strict", *files)
    assert result.exit_code == 0, result.stdout + result.stderr
    result = _cli("fmt", "--check", *files)
    assert result.exit_code == 0, result.stdout + result.stderr


def test_a_test_file_diagnostic_points_into_its_companion(tmp_path: Path) -> None:
    """Spans carry their file: a ``*_test.trg`` error about a declaration of the file under
    test has a related location in that file (text note, JSON ``related``, SARIF
    ``relatedLocations``)."""
    (tmp_path / "rules.trg").write_text('action deploy(sha) = exec "echo" sha\n'
                                        'main: on git.push branch="main" run deploy with <sha>\n')
    (tmp_path / "rules_test.trg").write_text('action deploy = exec "true"\n'
                                             'test "t":\n  given git.push branch="main"\n'
                                             '  expect main with nope="x"\n')
    runner = CliRunner()
    test_file = str(tmp_path / "rules_test.trg")
    js = json.loads(runner.invoke(cli, ["check", "--format", "json", test_file]).output)
    by_code = {d["code"]: d for d in js}
    assert by_code["TRG101"]["related"] == [{"file": str(tmp_path / "rules.trg"), "line": 1, "column": 8,
                                             "end_line": 1, "end_column": 14,
                                             "message": "action 'deploy' is first declared here"}]
    assert by_code["TRG402"]["related"][0]["file"] == str(tmp_path / "rules.trg")
    assert by_code["TRG402"]["related"][0]["line"] == 1
    text = runner.invoke(cli, ["check", test_file]).output
    assert f"  = note: {tmp_path / 'rules.trg'}:1:8: action 'deploy' is declared here" in text
    sarif = json.loads(runner.invoke(cli, ["check", "--format", "sarif", test_file]).output)
    results = sarif["runs"][0]["results"]
    related = [r["relatedLocations"] for r in results if r["ruleId"] == "TRG402"][0]
    assert related[0]["message"]["text"] == "action 'deploy' is declared here"
    assert related[0]["physicalLocation"]["artifactLocation"]["uri"].endswith("rules.trg")
    assert related[0]["physicalLocation"]["region"]["startLine"] == 1


def test_every_ticks_on_the_epoch_grid_in_tests_as_in_serve() -> None:
    """`serve` ticks `every D` at multiples of D from the Unix epoch (sources/schedule.py);
    the test clock ticked it D after the test's start. 2024-01-01T00:00Z is 60 s before a
    multiple of 7 minutes, so `every 7m` ticks at +1m, then every 7 minutes."""
    text = 'action a = exec "true"\nodd: on every 7m run a\n' + block(
        "the grid", "wait 59s", "expect none", "wait 1s", "expect odd", "wait 419s", "expect none",
        "wait 1s", "expect odd")
    rep = run(text)
    assert [(r.name, [f.message for f in r.failures]) for r in rep.results] == [("the grid", [])]


def test_an_http_rule_is_tested_with_a_saved_body(tmp_path: Path) -> None:
    """adnanh/webhook's users keep a delivery's JSON body to replay it with curl -d @body.json;
    ``given http.post path=... from "body.json"`` makes it the event's payload (it was TRG603:
    http events "do not come from one"). Fields given beside from win."""
    (tmp_path / "push.json").write_text(json.dumps(
        {"ref": "refs/heads/master", "head_commit": {"id": "7c1f0e2"}, "pusher": {"name": "alice"}}))
    text = ('action redeploy(sha, who, event) = exec "./redeploy.sh" sha who event\n'
            'hook: on http.post path="/hooks/redeploy" payload.ref="refs/heads/master"\n'
            '    run redeploy with <payload.head_commit.id>, <payload.pusher.name>, <headers.x-github-event>\n'
            'raw: on http.post path="/hooks/raw" text ~ /"ref": "refs\\/heads\\/master"/ run redeploy with "r", "r", "r"\n')
    text += block("master", 'given http.post path="/hooks/redeploy" headers.X-GitHub-Event="push" from "push.json"',
                  'expect only hook', 'expect hook with sha="7c1f0e2", who="alice", event="push"') \
        + block("dev", 'given http.post path="/hooks/redeploy" payload.ref="refs/heads/dev" from "push.json"',
                "expect none") \
        + block("text", 'given http.post path="/hooks/raw" from "push.json"', "expect only raw")
    assert failures(text, str(tmp_path)) == []
    missing = codes(text.replace('from "push.json"', 'from "nope.json"', 1), str(tmp_path))
    assert [c for c in missing if c[0] != "TRG209"] == [("TRG602", 7)]  # (TRG209: the routes have no secret)


def test_null_in_a_given_says_to_leave_the_field_out(tmp_path: Path) -> None:
    """A given cannot write null (the language has none): sha=null was "unknown name
    'null'" with the hint to quote it, "null", the text. The hint now says that a missing
    field is null to a rule; the given without the field runs as a null one would."""
    rules = DEPLOY + 'no_sha: on git.push not has sha run deploy with "none"\n'
    f = tmp_path / "d.trg"
    f.write_text(rules + block("no sha", 'given git.push branch="x" sha=null', "expect no_sha"))
    (err,) = run_file(str(f)).errors
    assert (err.code, err.message) == ("TRG102", "unknown name 'null'")
    assert err.hint.startswith("there is no null value: to a rule a null field is a missing one")
    f.write_text(rules + block("no sha", 'given git.push branch="x"', "expect only no_sha"))
    assert [r.passed for r in run_file(str(f)).results] == [True]
