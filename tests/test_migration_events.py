"""Coming from Argo Events, Tekton Triggers and Jenkins' Generic Webhook Trigger (README:
"Coming from Argo Events, Tekton Triggers and Jenkins"): what those tools' published
examples need that the language did not have, and each tool's worked example, checked,
matched against the real deliveries of ``shared/fixtures/webhooks/``, tested in the
language and served end to end with signed deliveries.
"""

from __future__ import annotations

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
