"""Coming from Argo Events, Tekton Triggers and Jenkins' Generic Webhook Trigger (README:
"Coming from Argo Events, Tekton Triggers and Jenkins"): what those tools' published
examples need that the language did not have, and each tool's worked example, checked,
matched against the real deliveries of ``shared/fixtures/webhooks/``, tested in the
language and served end to end with signed deliveries.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
from pathlib import Path

import pytest
from click.testing import CliRunner

from triggerlang.api import compile_text
from triggerlang.cli import main
from triggerlang.compile.index import IndexedMatcher
from triggerlang.compile.matcher import LinearMatcher
from triggerlang.events import Event

from runtime_helpers import Server, done, post_bytes

FIXTURES = Path(__file__).resolve().parents[2] / "shared" / "fixtures" / "webhooks"
GH = FIXTURES / "github"
GL = FIXTURES / "gitlab"


def invoke(*args: str):
    return CliRunner().invoke(main, list(args))


def matched(rules: Path, delivery: Path, *provider: str) -> list[str]:
    result = invoke("match", str(rules), str(delivery), *provider, "--format", "json")
    assert result.exit_code == 0, result.output
    return [m["rule"] for m in json.loads(result.output)["matches"]]


def inputs_of(rules: Path, delivery: Path, *provider: str) -> dict[str, dict]:
    result = invoke("match", str(rules), str(delivery), *provider, "--format", "json")
    assert result.exit_code == 0, result.output
    return {m["rule"]: m["inputs"] for m in json.loads(result.output)["matches"]}


def diagnostics(tmp_path: Path, text: str) -> list[tuple[str, int, str, str]]:
    f = tmp_path / "d.trg"
    f.write_text(text)
    return [(d["code"], d["line"], d["message"], d.get("hint") or "")
            for d in json.loads(invoke("check", "--format", "json", str(f)).output)]


# --------------------------------------------------------------------------- `*`: every element
#
# CEL's `body.pull_request.labels.exists(l, l.name == 'ok-to-test')`, JSONPath's
# `$.commits[*].modified` and GitHub Actions' `labels.*.name` could not be written: a path
# went through a list only by an index (`payload.commits.0.id`), so "some element's field"
# had no spelling on a raw payload. A `*` segment now reads every element.

STAR_RULES = r'''secret s = env "S"
source github secret=s
source http path="/hooks/*" token=s
action note(text) = exec "echo" text
action files(paths) = exec "echo" paths
ok_to_test: on github.pull_request payload.pull_request.labels.*.name = "ok-to-test" run note with <url>
bug: on github.pull_request payload.pull_request.labels.*.name = "bug"
    run note with <payload.pull_request.labels.*.name>
app_changed: on github.push payload.commits.*.modified ~ "app/**" run files with <payload.commits.*.modified>
any_commit: on github.push has payload.commits.*.id run note with <sha>
no_wip: on github.push payload.commits.*.message !~ /^wip/i run note with <sha>
generic: on http.post path="/hooks/jenkins" payload.commits.*.modified ~ "**.rb" run note with <payload.ref>
'''


@pytest.fixture
def star_rules(tmp_path: Path) -> Path:
    f = tmp_path / "star.trg"
    f.write_text(STAR_RULES)
    return f


def test_a_star_path_checks_clean_under_strict(star_rules: Path) -> None:
    result = invoke("check", "--strict", str(star_rules))
    assert result.exit_code == 0, result.output


def test_a_label_list_of_a_real_delivery_is_searched_by_name(star_rules: Path) -> None:
    """The real pull requests carry one label, `bug`: `labels.*.name = "bug"` holds,
    `"ok-to-test"` does not, and the input is the list of names."""
    for fixture in ("pull_request-opened.json", "pull_request-labeled.json", "pull_request-closed.json"):
        got = inputs_of(star_rules, GH / fixture, "--github", "pull_request")
        assert got == {"bug": {"text": ["bug"]}}, fixture


def test_the_files_of_every_commit_of_a_real_push(star_rules: Path) -> None:
    """`$.commits[*].modified`: the plain push modifies app/controllers/..., so app_changed
    runs, with every modified path of every commit as one flat list."""
    got = inputs_of(star_rules, GH / "push-plain.json", "--github", "push")
    assert sorted(got) == ["any_commit", "app_changed", "no_wip"]
    assert got["app_changed"] == {"paths": ["app/controllers/application_controller.rb"]}


def test_a_star_that_finds_nothing_is_a_missing_field(star_rules: Path) -> None:
    """The deleted tag's push has `commits: []`: `has payload.commits.*.id` does not hold,
    and neither does a pattern on what is not there."""
    assert matched(star_rules, GH / "push-tag-deleted.json", "--github", "push") == ["no_wip"]


def test_a_star_reads_lists_in_lists_and_map_values(tmp_path: Path) -> None:
    rules = tmp_path / "r.trg"
    rules.write_text(STAR_RULES + 'maps: on http.post path="/hooks/m" payload.envs.*.region = "eu" run note with <payload.ref>\n')
    ev = tmp_path / "e.json"
    ev.write_text(json.dumps({"source": "http", "type": "post", "data": {
        "path": "/hooks/jenkins", "payload": {"ref": "refs/heads/main", "commits": [
            {"modified": ["a.py"]}, {"modified": None}, {"id": 3}, {"modified": ["lib/x.rb", "b.md"]}]}}}))
    assert inputs_of(rules, ev) == {"generic": {"text": "refs/heads/main"}}
    ev.write_text(json.dumps({"source": "http", "type": "post", "data": {
        "path": "/hooks/m", "payload": {"ref": "r", "envs": {"prod": {"region": "eu"}, "dev": {"region": "us"}}}}}))
    assert matched(rules, ev) == ["maps"]


def test_the_index_finds_what_the_reference_matcher_finds_through_a_star() -> None:
    """Equality and prefix conditions on a `*` path go through the matching index."""
    c = compile_text(STAR_RULES + 'pre: on github.pull_request payload.pull_request.labels.*.name ~ "area/*" run note with <url>\n',
                     "rules.trg")
    assert not [d for d in c.diagnostics if d.is_error]
    rules = c.manifest["rules"]
    for labels, want in [(["bug", "ok-to-test"], ["ok_to_test", "bug"]), ([], []), (["area/ci"], ["pre"])]:
        ev = Event(source="github", type="pull_request", data={"url": "u", "payload": {"pull_request": {
            "labels": [{"name": n} for n in labels]}}})
        assert [r.name for r in IndexedMatcher(rules).matching_rules(ev)] == \
            [m.name for m in LinearMatcher(rules).match(ev)] == want


def test_misplaced_stars_are_refused_with_a_way_out(tmp_path: Path) -> None:
    """A typed list already means any element; a correlation key and a given value are one
    value each: check says so rather than accepting what cannot work."""
    got = diagnostics(tmp_path, '''secret s = env "S"
source github secret=s
action note(text) = exec "echo" text
a: on github.pull_request labels.* = "bug" run note with <url>
k: on all(github.push as p, github.pull_request as q) same <payload.commits.*.id> within 1h run note with <p.sha>
t: on github.push run note with <sha>
test "x":
    given github.push payload.commits.*.id="a"
    expect t
''')
    assert [(code, line) for code, line, _, _ in got] == [("TRG203", 4), ("TRG705", 5), ("TRG603", 8)]
    assert "a condition on a list holds if it holds for any element" in got[0][3]
    assert "<payload.commits.0.id>" in got[1][3]
    assert 'from "body.json"' in got[2][3]


def test_fmt_keeps_a_star_path(tmp_path: Path) -> None:
    f = tmp_path / "f.trg"
    f.write_text(STAR_RULES)
    assert invoke("fmt", str(f)).exit_code == 0
    text = f.read_text()
    assert 'payload.pull_request.labels.*.name="bug"' in text and "<payload.commits.*.modified>" in text
    assert invoke("fmt", "--check", str(f)).exit_code == 0
    assert invoke("check", "--strict", str(f)).exit_code == 0


# --------------------------------------------------------------------------- other languages' spellings
#
# A rule copied from a CEL filter, a JSONPath, a Tekton binding or an Argo template stopped
# at its first foreign character with "unexpected '='" and a list of tokens. Check now
# names the construct, and its hint is the text to write: pasted over the underlined
# span, the rule checks clean (or, for `==`, the hint says what to type).

HINT_CASES = [
    # (the condition or arguments as a migrating user types them, the message, the repaired rule's text)
    ("payload.action == \"opened\"", "'==' is written '='", None),
    ("payload.ref =~ /^refs\\/tags\\//", "'=~' is written '~'", None),
    ("payload.ref = 'refs/heads/main'", "strings are in double quotes", 'payload.ref = "refs/heads/main"'),
    ("payload.action = \"opened\" && payload.ref = \"x\"", "'&&' is written 'and'", None),
    ("body.ref.startsWith('refs/tags/')", "no method calls in a condition: 'startsWith(...)'",
     "payload.ref ~ /^refs\\/tags\\//"),
    ("payload.ref.endsWith(\"/main\")", "no method calls in a condition: 'endsWith(...)'", "payload.ref ~ /\\/main$/"),
    ("body.pull_request.labels.exists(l, l.name == 'ok-to-test')", "no macros in a condition: 'exists(...)'",
     'payload.pull_request.labels.*.name = "ok-to-test"'),
    ("body.pull_request.labels.all(l, l.name != 'wip')", "no macros in a condition: 'all(...)'",
     'not payload.pull_request.labels.*.name = "wip"'),
    ("header.match('X-GitHub-Event', 'pull_request')", "no method calls in a condition: 'match(...)'",
     'headers.x-github-event = "pull_request"'),
    ("payload.action in ['opened','synchronize', \"reopened\"]", "strings are in double quotes",
     'payload.action in ["opened", "synchronize", "reopened"]'),
    ("payload.action in ('opened', 'synchronize')", "a list is written in [ ]",
     'payload.action in ["opened", "synchronize"]'),
    ("payload.commits[*].modified ~ \"src/**\"", "'[*]' is written '.*'", None),
    ("$.ref = \"refs/heads/main\"", "a JSONPath is a field path here: '$.ref'", 'payload.ref = "refs/heads/main"'),
    ("payload.ref = \"x\" run note with $(body.head_commit.id)", "a Tekton binding is written <field.path> here",
     'payload.ref = "x" run note with <payload.head_commit.id>'),
    ("payload.ref = \"x\" run note with {{ .Input.body.ref }}", "a template is written <field.path> here",
     'payload.ref = "x" run note with <payload.ref>'),
    ("payload.ref = \"x\" run note with <payload.commits[0].id>", "a placeholder is written <field.path> here",
     'payload.ref = "x" run note with <payload.commits.0.id>'),
    ("has(body.pull_request)", "'has' takes no parentheses", "has payload.pull_request"),
    ("size(body.commits) > 0", "no function calls in a condition: 'size(...)'", "has payload.commits.0"),
]


@pytest.mark.parametrize(("written", "message", "repaired"), HINT_CASES)
def test_another_languages_spelling_gets_the_condition_to_write(tmp_path: Path, written: str, message: str,
                                                                  repaired: str | None) -> None:
    head = 'secret s = env "S"\nsource http path="/hooks/*" token=s\naction note(text="") = exec "echo" text\n'
    tail = "" if " run note" in written else " run note"
    line = f'r: on http.post path="/hooks/ci" {written}{tail}'
    got = diagnostics(tmp_path, head + line + "\n")
    assert len(got) == 1 and got[0][0] == "TRG001" and got[0][2].startswith(message), got
    if repaired is None:
        return
    f = tmp_path / "d.trg"
    f.write_text(head + line + "\n")
    d = json.loads(invoke("check", "--format", "json", str(f)).output)[0]
    assert d["line"] == d["end_line"] == 4
    replacement = re.match(r"write (.*?)(?:: |$)", d["hint"]).group(1)
    fixed = line[:d["column"] - 1] + replacement + line[d["end_column"] - 1:]
    assert fixed == f'r: on http.post path="/hooks/ci" {repaired}{tail}'
    assert diagnostics(tmp_path, head + fixed + "\n") == []


def test_a_hint_only_where_the_foreign_spelling_is() -> None:
    """A placeholder written right, in the wrong place, keeps the usual error."""
    from triggerlang.syntax.parser import parse

    _, diags = parse('action a = exec "true"\nr: on git.push branch = <sha> run a\n')
    assert [d.message for d in diags] == ["unexpected '<sha>'"]


@pytest.mark.parametrize(("written", "hint"), [
    ("body.ref = \"refs/heads/main\" run note with <body.head_commit.id>", "write payload.ref"),
    ("payload.ref = \"x\" run note with <body.head_commit.id>", "write <payload.head_commit.id>"),
    ("header.X-GitHub-Event = \"push\" run note", "write headers.x-github-event"),
])
def test_tekton_and_argo_names_of_the_request_get_ours(tmp_path: Path, written: str, hint: str) -> None:
    """`body.ref` and `header.X-Name` (Tekton's CEL and bindings, Argo's dataKey) were told
    "fields: headers, method, ..."; the hint now gives the path to write."""
    got = diagnostics(tmp_path, 'secret s = env "S"\nsource http path="/hooks/*" token=s\n'
                      'action note(text="") = exec "echo" text\n'
                      f'r: on http.post path="/hooks/ci" {written}\n')
    assert got[0][0] in ("TRG203", "TRG403") and hint in got[0][3], got


# --------------------------------------------------------------------------- <field ~ /re/>: a part of a value
#
# Tekton's overlays (`body.ref.split('/')[2]`, `body.pull_request.head.sha.truncate(7)`),
# Jenkins' regexpFilter and Argo's dataTemplate hand the run a part of a value; an input
# could only be a whole field, so a raw payload's branch or a short sha reached an exec
# action only through a shell. `<field ~ /re/>` is the part the regex finds.

PART_RULES = r'''secret s = env "S"
source github secret=s
source http path="/hooks/*" token=s
action note(text="") = exec "echo" text
branch: on http.post path="/hooks/ci" run note with <payload.ref ~ /^refs\/heads\/(.+)$/>
short: on github.push run note with <sha ~ /^.{7}/>
areas: on github.pull_request run note with <payload.pull_request.labels.*.name ~ /^(?:area\/)?(b.*)$/i>
pair: on all(github.push as p, github.pull_request as q) same <sha> within 1h run note with <p.ref ~ /[^\/]+$/>
'''


@pytest.fixture
def part_rules(tmp_path: Path) -> Path:
    f = tmp_path / "part.trg"
    f.write_text(PART_RULES)
    return f


def test_a_part_of_a_value_on_real_deliveries(part_rules: Path, tmp_path: Path) -> None:
    assert invoke("check", "--strict", str(part_rules)).exit_code == 0
    assert inputs_of(part_rules, GH / "push-plain.json", "--github", "push") == {"short": {"text": "fd48986"}}
    assert inputs_of(part_rules, GH / "pull_request-labeled.json", "--github", "pull_request") == {
        "areas": {"text": ["bug"]}}
    for ref, want in [("refs/heads/release/2.x", "release/2.x"), ("refs/tags/v1", "")]:
        ev = _event_file(tmp_path, "ci.json", {"source": "http", "type": "post", "data": {
            "path": "/hooks/ci", "payload": {"ref": ref}}})
        assert inputs_of(part_rules, ev) == {"branch": {"text": want}}  # no match: a missing field, text's default


def test_a_part_of_a_member_of_a_correlation(part_rules: Path, tmp_path: Path) -> None:
    jsonl = tmp_path / "e.jsonl"
    jsonl.write_text(json.dumps({"source": "github", "type": "push", "data": {"sha": "abc", "ref": "refs/heads/dev"}})
                     + "\n" + json.dumps({"source": "github", "type": "pull_request", "data": {"sha": "abc"}}) + "\n")
    out = invoke("match", str(part_rules), str(jsonl)).output
    assert "pair: group sha=abc complete with q (2/2): runs note -> echo dev" in out, out


def test_a_part_in_rule_tests_and_fmt(part_rules: Path) -> None:
    part_rules.write_text(PART_RULES + '''
test "the short sha":
    given github.push sha="0123456789abcdef"
    expect short with text="0123456"

test "a branch with a slash":
    given http.post path="/hooks/ci" payload.ref="refs/heads/fix/login"
    expect branch with text="fix/login"
''')
    result = invoke("test", str(part_rules))
    assert result.exit_code == 0 and "2 passed, 0 failed" in result.output, result.output
    assert invoke("fmt", str(part_rules)).exit_code == 0
    text = part_rules.read_text()
    assert r"<payload.ref ~ /^refs\/heads\/(.+)$/>" in text and "<sha ~ /^.{7}/>" in text
    assert r"<payload.pull_request.labels.*.name ~ /^(?:area\/)?(b.*)$/i>" in text
    assert invoke("check", "--strict", str(part_rules)).exit_code == 0


def test_a_part_is_refused_where_it_cannot_work(tmp_path: Path) -> None:
    got = diagnostics(tmp_path, '''secret s = env "S"
source github secret=s
action note(text="") = exec "echo" text
a: on github.push run note with <sha ~ /(a)(b)/>
b: on github.push run note with <forced ~ /t/>
c: on github.push run note with <sha ~ /(/>
d: on github.push run note with <sha> dedupe <sha ~ /^.{7}/> for 1h
e: on all(github.push as p, github.pull_request as q) same <sha ~ /x/> within 1h run note with <p.sha>
''')
    assert [(code, line) for code, line, _, _ in got] == [
        ("TRG301", 4), ("TRG205", 5), ("TRG301", 6), ("TRG204", 7), ("TRG204", 8)]
    assert "(?:...)" in got[0][3] and "<forced>" in got[1][3] and "write <sha>" in got[3][3]


def test_a_part_in_a_served_run(tmp_path: Path) -> None:
    """A real serve: the http route's run gets the branch of the ref, in argv and env."""
    rules = tmp_path / "rules.trg"
    rules.write_text('''secret s = env "S"
source http path="/hooks/*" token=s
action note(branch) = shell "echo branch=$TRG_INPUT_BRANCH"
r: on http.post path="/hooks/ci" run note with <payload.ref ~ /^refs\\/heads\\/(.+)$/>
''')
    srv = Server(rules, tmp_path / "state", env={"S": SECRET}).start()
    try:
        code, answer = post_bytes(srv.url + "/hooks/ci", json.dumps({"ref": "refs/heads/feature/x"}).encode(),
                                  {"Authorization": "Bearer " + SECRET})
        assert code == 202 and len(answer["runs"]) == 1, answer
        runs = srv.wait_runs(lambda rs: done(rs, 1), "the run to end")
        assert [(r["status"], r["inputs"]) for r in runs] == [("succeeded", {"branch": "feature/x"})]
        assert "branch=feature/x" in invoke("logs", str(runs[0]["id"]), "--state", str(srv.state)).output
    finally:
        srv.stop()
        srv.ensure_dead()


# --------------------------------------------------------------------------- the README's worked examples

README = Path(__file__).resolve().parents[1] / "README.md"
SECRET = "events-migration-secret"
SCRIPTS = ("deploy.sh", "preview.sh", "run-pipeline.sh", "release.sh", "build.sh")


def readme_example(tool: str) -> str:
    """The ```trg block of README's section after the mapping table of ``tool``."""
    section = README.read_text().split("## Coming from Argo Events, Tekton Triggers and Jenkins", 1)[1]
    section = section.split("\n## ", 1)[0]
    table = section.index(f"| {tool} | triggerlang |")
    return re.search(r"```trg\n(.*?)```", section[table:], re.S).group(1)


@pytest.fixture(params=["Argo Events", "Tekton Triggers", "Jenkins Generic Webhook Trigger"])
def example(request, tmp_path: Path) -> Path:
    f = tmp_path / "rules.trg"
    f.write_text(readme_example(request.param))
    for name in SCRIPTS:  # the actions' programs: each prints its argv
        script = tmp_path / name
        script.write_text('#!/bin/sh\necho "$0" "$@"\n')
        script.chmod(0o755)
    return f


def test_each_worked_example_checks_clean_under_strict_and_its_tests_pass(example: Path) -> None:
    result = invoke("check", "--strict", str(example))
    assert result.exit_code == 0 and result.output == "", result.output
    result = invoke("test", str(example))
    assert result.exit_code == 0 and result.output.strip().endswith(" passed, 0 failed"), result.output
    assert not result.output.strip().startswith("0 passed")


def _rules(tmp_path: Path, tool: str) -> Path:
    f = tmp_path / f"{tool.split()[0].lower()}.trg"
    f.write_text(readme_example(tool))
    return f


def _event_file(tmp_path: Path, name: str, body: dict) -> Path:
    f = tmp_path / name
    f.write_text(json.dumps(body))
    return f


def _changed(fixture: Path, **changes) -> dict:
    """A real delivery with some values changed: ``a__b=v`` sets ``body[a][b]``."""
    body = json.loads(fixture.read_text())
    for path, value in changes.items():
        *parents, last = path.split("__")
        node = body
        for p in parents:
            node = node[p]
        node[last] = value
    return body


def test_the_argo_example_on_real_deliveries(tmp_path: Path) -> None:
    """The plain push is to master (push_main wants main: no run; the same delivery to main
    deploys its head commit); the real pull requests carry the label `bug`, not `preview`."""
    rules = _rules(tmp_path, "Argo Events")
    assert matched(rules, GH / "push-plain.json", "--github", "push") == []
    to_main = _event_file(tmp_path, "main.json", _changed(GH / "push-plain.json", ref="refs/heads/main"))
    assert inputs_of(rules, to_main, "--github", "push") == {
        "push_main": {"sha": "fd489864e7642b48eaad6e3f155c10e46810ec72", "ref": "refs/heads/main"}}
    for fixture in ("pull_request-opened.json", "pull_request-labeled.json"):
        assert matched(rules, GH / fixture, "--github", "pull_request") == []
    assert matched(rules, GH / "push-tag-deleted.json", "--github", "push") == []


def test_the_argo_condition_build_and_test_or_e2e_on_real_deliveries(tmp_path: Path) -> None:
    """`build && (test || e2e)`: the completed workflow_run delivery as "build", then as
    "e2e", for its commit: the gate fires once, with that commit."""
    rules = _rules(tmp_path, "Argo Events")
    sha = "3484a3fb816e0859fd6e1cea078d76385ff50625"
    lines = [{"source": "github", "type": "workflow_run", "time": "2024-01-01T00:00:00Z",
              "data": {"workflow": name, "conclusion": "success", "sha": sha}} for name in ("build", "e2e", "test")]
    jsonl = tmp_path / "events.jsonl"
    jsonl.write_text("\n".join(json.dumps(x) for x in lines) + "\n")
    result = invoke("match", str(rules), str(jsonl), "--format", "json")
    assert result.exit_code == 0, result.output
    fired = [c for line in result.output.splitlines() for c in json.loads(line).get("correlations", [])
             if c.get("run")]
    assert [(c["rule"], c["member"]) for c in fired] == [("gate", "e2e")], result.output


def test_the_tekton_example_on_real_deliveries(tmp_path: Path) -> None:
    rules = _rules(tmp_path, "Tekton Triggers")
    assert matched(rules, GH / "pull_request-opened.json", "--github", "pull_request") == []  # labelled bug only
    body = _changed(GH / "pull_request-opened.json")
    body["pull_request"]["labels"].append({"name": "ok-to-test"})
    ok = _event_file(tmp_path, "ok.json", body)
    assert inputs_of(rules, ok, "--github", "pull_request") == {"pr": {
        "revision": "ec26c3e57ca3a959ca5aad62de7213c562f8c821", "url": "https://github.com/Codertocat/Hello-World.git",
        "short": "ec26c3e"}}
    assert matched(rules, GH / "push-tag-deleted.json", "--github", "push") == []  # deleted=false
    assert inputs_of(rules, GL / "push.json", "--gitlab", "Push Hook") == {"gl_push": {
        "revision": "da1560886d4f094c3e6c9ef40349f7d38b5d27d7",
        "url": json.loads((GL / "push.json").read_text())["project"]["git_http_url"], "short": ""}}
    assert matched(rules, GL / "tag_push.json", "--gitlab", "Tag Push Hook") == []


def _jenkins_event(tmp_path: Path, body: dict, event: str = "push", job: str = "app") -> Path:
    return _event_file(tmp_path, "jenkins.json", {"source": "http", "type": "post", "data": {
        "method": "POST", "path": "/generic-webhook-trigger/invoke", "headers": {"x-github-event": event},
        "query": {"job": job}, "payload": body}})


def test_the_jenkins_example_on_real_deliveries(tmp_path: Path) -> None:
    rules = _rules(tmp_path, "Jenkins Generic Webhook Trigger")
    assert matched(rules, _jenkins_event(tmp_path, json.loads((GH / "push-plain.json").read_text()))) == []  # master
    body = _changed(GH / "push-plain.json", ref="refs/heads/develop")
    assert inputs_of(rules, _jenkins_event(tmp_path, body)) == {"jenkins": {
        "ref": "refs/heads/develop", "changed": ["app/controllers/application_controller.rb"],
        "event": "push", "job": "app"}}
    assert matched(rules, _jenkins_event(tmp_path, body, event="ping")) == []


# --------------------------------------------------------------------------- end to end, signed

def _github(srv: Server, body: dict, event: str, delivery: str, secret: str = SECRET) -> tuple[int, dict]:
    raw = json.dumps(body).encode()
    sig = "sha256=" + hmac.new(secret.encode(), raw, hashlib.sha256).hexdigest()
    return post_bytes(srv.url + "/github", raw, {"X-GitHub-Event": event, "X-GitHub-Delivery": delivery,
                                            "X-Hub-Signature-256": sig})


def _serve(tool: str, tmp_path: Path, env: dict[str, str]) -> Server:
    rules = tmp_path / "rules.trg"
    rules.write_text(readme_example(tool))
    for name in SCRIPTS:
        script = tmp_path / name
        script.write_text('#!/bin/sh\necho "$0" "$@"\n')
        script.chmod(0o755)
    return Server(rules, tmp_path / "state", env=env).start()


def _summary(runs: list[dict]) -> list[tuple[str, str, str]]:
    return sorted((r["rule"], r["status"], json.dumps(r["inputs"], sort_keys=True)) for r in runs)


def test_the_argo_example_served_with_signed_github_deliveries(tmp_path: Path) -> None:
    """A push to main deploys; `build` then `e2e` green for one commit open and complete
    the gate (the 202 of the second names the gate's run); a wrongly signed delivery is
    401 and journals nothing."""
    srv = _serve("Argo Events", tmp_path, {"GITHUB_WEBHOOK_SECRET": SECRET})
    try:
        assert _github(srv, _changed(GH / "push-plain.json", ref="refs/heads/main"), "push", "d-1", secret="x")[0] == 401
        code, answer = _github(srv, _changed(GH / "push-plain.json", ref="refs/heads/main"), "push", "d-1")
        assert code == 202 and len(answer["runs"]) == 1, answer
        build = _changed(GH / "workflow_run-completed.json", workflow_run__name="build")
        e2e = _changed(GH / "workflow_run-completed.json", workflow_run__name="e2e")
        code, answer = _github(srv, build, "workflow_run", "d-2")
        assert code == 202 and answer["runs"] == [], answer
        assert _github(srv, build, "workflow_run", "d-2")[1]["duplicate"] is True  # a redelivery: admitted once
        code, answer = _github(srv, e2e, "workflow_run", "d-3")
        assert code == 202 and len(answer["runs"]) == 1, answer
        assert _github(srv, json.loads((GH / "pull_request-labeled.json").read_text()), "pull_request", "d-4")[1][
            "runs"] == []
        runs = srv.wait_runs(lambda rs: done(rs, 2), "the deploy and the gate's run to end")
        assert _summary(runs) == [
            ("gate", "succeeded", '{"ref": "refs/heads/main", "sha": "3484a3fb816e0859fd6e1cea078d76385ff50625"}'),
            ("push_main", "succeeded", '{"ref": "refs/heads/main", "sha": "fd489864e7642b48eaad6e3f155c10e46810ec72"}')]
        pushes = [e for e in srv.events() if (e["source"], e["type"]) == ("github", "push")]
        assert len(pushes) == 1  # the wrongly signed one was not journaled
    finally:
        srv.stop()
        srv.ensure_dead()


def test_the_tekton_example_served_with_signed_deliveries(tmp_path: Path) -> None:
    """The pull request labelled ok-to-test runs the pipeline at its head; the real one
    (labelled bug) runs nothing; GitLab's push with its token runs gl_push, without it 401."""
    srv = _serve("Tekton Triggers", tmp_path, {"GITHUB_WEBHOOK_SECRET": SECRET, "GITLAB_TOKEN": "gl-" + SECRET})
    try:
        body = _changed(GH / "pull_request-opened.json")
        assert _github(srv, body, "pull_request", "t-1")[1]["runs"] == []
        body["pull_request"]["labels"].append({"name": "ok-to-test"})
        assert len(_github(srv, body, "pull_request", "t-2")[1]["runs"]) == 1
        gl = (GL / "push.json").read_bytes()
        assert post_bytes(srv.url + "/gitlab", gl, {"X-Gitlab-Event": "Push Hook", "X-Gitlab-Token": "wrong"})[0] == 401
        code, answer = post_bytes(srv.url + "/gitlab", gl, {"X-Gitlab-Event": "Push Hook", "X-Gitlab-Token": "gl-" + SECRET})
        assert code == 202 and len(answer["runs"]) == 1, answer
        runs = srv.wait_runs(lambda rs: done(rs, 2), "two pipelines to end")
        url = json.loads(gl)["project"]["git_http_url"]
        assert _summary(runs) == sorted([
            ("pr", "succeeded", json.dumps({"revision": "ec26c3e57ca3a959ca5aad62de7213c562f8c821", "short": "ec26c3e",
                                            "url": "https://github.com/Codertocat/Hello-World.git"}, sort_keys=True)),
            ("gl_push", "succeeded", json.dumps({"revision": "da1560886d4f094c3e6c9ef40349f7d38b5d27d7", "short": "",
                                                 "url": url}, sort_keys=True))])
    finally:
        srv.stop()
        srv.ensure_dead()


def test_the_jenkins_example_served_with_its_token(tmp_path: Path) -> None:
    """GitHub's push, sent to the plugin's URL with `?job=app` and the token as a bearer:
    a push to develop builds with every modified path; to master, nothing; no token, 401."""
    srv = _serve("Jenkins Generic Webhook Trigger", tmp_path, {"JENKINS_HOOK_TOKEN": "jt-" + SECRET})
    try:
        url = srv.url + "/generic-webhook-trigger/invoke?job=app"
        develop = json.dumps(_changed(GH / "push-plain.json", ref="refs/heads/develop")).encode()
        assert post_bytes(url, develop, {"X-GitHub-Event": "push"})[0] == 401
        auth = {"X-GitHub-Event": "push", "Authorization": "Bearer jt-" + SECRET}
        assert post_bytes(url, (GH / "push-plain.json").read_bytes(), auth)[1]["runs"] == []
        code, answer = post_bytes(url, develop, auth)
        assert code == 202 and len(answer["runs"]) == 1, answer
        runs = srv.wait_runs(lambda rs: done(rs, 1), "the build to end")
        assert _summary(runs) == [("jenkins", "succeeded", json.dumps({
            "changed": ["app/controllers/application_controller.rb"], "event": "push", "job": "app",
            "ref": "refs/heads/develop"}, sort_keys=True))]
        assert "build.sh refs/heads/develop app/controllers/application_controller.rb push app" in \
            invoke("logs", str(runs[0]["id"]), "--state", str(srv.state)).output
    finally:
        srv.stop()
        srv.ensure_dead()


def test_a_header_written_as_the_sender_documents_it(tmp_path: Path) -> None:
    """Jenkins' genericHeaderVariables name `X-GitHub-Event`; `headers.X-GitHub-Event` in a
    rule checked clean and never matched (events carry header names in lower case), and
    `<headers.X-Request-Id>` was always "". Header names are case-insensitive now."""
    rules = tmp_path / "h.trg"
    rules.write_text('secret s = env "S"\nsource http path="/hooks/*" token=s\n'
                     'action note(text="") = exec "echo" text\n'
                     'r: on http.post path="/hooks/x" headers.X-GitHub-Event="push" run note with <headers.X-Request-Id>\n'
                     'test "the sender\'s spelling":\n'
                     '    given http.post path="/hooks/x" headers.X-GitHub-Event="push" headers.X-Request-Id="r1"\n'
                     '    expect r with text="r1"\n')
    assert invoke("check", "--strict", str(rules)).exit_code == 0
    ev = _event_file(tmp_path, "e.json", {"source": "http", "type": "post", "data": {
        "path": "/hooks/x", "headers": {"x-github-event": "push", "x-request-id": "r1"}}})
    assert inputs_of(rules, ev) == {"r": {"text": "r1"}}
    result = invoke("test", str(rules))
    assert result.exit_code == 0 and "1 passed, 0 failed" in result.output, result.output
    assert invoke("fmt", str(rules)).exit_code == 0
    assert 'headers.x-github-event="push" run note with <headers.x-request-id>' in rules.read_text()
