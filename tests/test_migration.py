"""Coming from GitHub Actions' ``on:`` blocks (README: "Coming from GitHub Actions triggers
and cron"): a realistic set of ``on:`` blocks translated to rules, checked with ``check
--strict``, matched against the real published payloads of ``shared/fixtures/webhooks/``,
tested in the language (``triggerc test``) and served end to end with signed deliveries.
Each rule's comment is the ``on:`` block it stands for; where GitHub's semantics need more
than the obvious condition (a deleted ref, a tag push under ``branches-ignore`` or
``paths-ignore``, a negated path), the rule says so, and a test pins it.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from click.testing import CliRunner

from triggerlang.cli import main

from runtime_helpers import Server, done

FIXTURES = Path(__file__).resolve().parents[2] / "shared" / "fixtures" / "webhooks"
GH = FIXTURES / "github"
PAYLOADS = Path(__file__).resolve().parent / "payloads" / "github"  # written from GitHub's documented shape
SECRET = "migration-test-secret"

RULES = r'''secret gh = env "GH_SECRET"
source github secret=gh
action ci(sha) = exec "echo" "ci" sha
action release(tag) = exec "echo" "release" tag
action note(text) = exec "echo" text

# push: branches: [main, master, 'releases/**']   (GitHub runs nothing for a deleted ref)
push_branches: on github.push branch ~ ["main", "master", "releases/**"] deleted=false run ci with <sha>
# push: branches-ignore: ['dependabot/**']         (then tag pushes do not run either)
push_ignore: on github.push has branch branch !~ "dependabot/**" deleted=false run ci with <sha>
# push: tags: ['v*', '!v*-rc*']
push_tags: on github.push tag ~ "v*" tag !~ "v*-rc*" deleted=false run release with <tag>
# push: branches: [master], paths: ['app/**', '!app/assets/**']   (one file must pass both)
push_paths: on github.push branch="master" deleted=false files ~ /^app\/(?!assets\/)/ run ci with <sha>
# push: paths-ignore: ['docs/**', '**.md']          (paths are not evaluated for tags)
push_paths_ignore: on github.push deleted=false (has tag or files !~ ["docs/**", "**.md"]) run ci with <sha>
# pull_request: branches: [master]                  (default types: opened, synchronize, reopened)
pr: on github.pull_request action in ["opened", "synchronize", "reopened"] base="master" run ci with <sha>
# pull_request: types: [closed], if: github.event.pull_request.merged
pr_merged: on github.pull_request action="closed" merged=true run ci with <sha>
# pull_request: types: [labeled], if: github.event.label.name == 'bug'
pr_labeled: on github.pull_request action="labeled" payload.label.name="bug" run note with <url>
# release: types: [published], if: !github.event.release.prerelease
rel: on github.release action="published" prerelease=false run release with <tag>
# workflow_run: workflows: [test], types: [completed], branches: [master], if: conclusion == 'success'
after_ci: on github.workflow_run workflow="test" action="completed" branch="master" conclusion="success"
    run ci with <sha>
# issue_comment: types: [created], if: github.event.issue.pull_request && startsWith(body, '/deploy')
#   && contains(fromJSON('["OWNER", "MEMBER", "COLLABORATOR"]'), github.event.comment.author_association)
chatops: on github.issue_comment action="created" pull_request=true body ~ /^\/deploy\b/
    author_association in ["OWNER", "MEMBER", "COLLABORATOR"] run note with <body>
# create: + if: github.event.ref_type == 'tag'
tag_made: on github.create ref_type="tag" run release with <tag>
# repository_dispatch: types: [deploy]
dispatch: on github.repository_dispatch action="deploy" run note with <payload.client_payload.env>
# schedule: - cron: '30 5 * * 1-5'                  (UTC, as GitHub's)
nightly: on cron "30 5 * * 1-5" run note with <scheduled>
'''

# (fixture, X-GitHub-Event) -> the rules that match it, as GitHub Actions would run them
EXPECTED = {
    ("push-plain.json", "push"): ["push_branches", "push_ignore", "push_paths", "push_paths_ignore"],
    ("push-with-new-branch.json", "push"): ["push_branches", "push_ignore"],  # README.md only: paths-ignore
    ("push-tag-deleted.json", "push"): [],
    ("pull_request-opened.json", "pull_request"): ["pr"],
    ("pull_request-closed.json", "pull_request"): [],  # closed without merging
    ("pull_request-labeled.json", "pull_request"): ["pr_labeled"],
    ("release-published.json", "release"): ["rel"],
    ("workflow_run-completed.json", "workflow_run"): ["after_ci"],
    ("workflow_run-requested.json", "workflow_run"): [],
    ("issues-opened.json", "issues"): [],
}

TESTS = '''
test "a tag push runs the tag rule, and paths-ignore (GitHub does not filter tags by paths)":
    given github.push ref="refs/tags/v1.2.0" tag="v1.2.0" sha="a1b2c3" deleted=false files=[]
    expect only push_tags, push_paths_ignore

test "a release candidate tag is left out":
    given github.push tag="v1.2.0-rc1" sha="a1b2c3" deleted=false
    expect not push_tags

test "a push that changes only ignored paths runs nothing":
    given github.push branch="dependabot/npm/x" sha="a1" deleted=false files=["docs/a.md", "README.md"]
    expect none

test "a file under app/assets and one outside app: no file passes both path patterns":
    given github.push branch="master" sha="a1" deleted=false files=["app/assets/logo.png", "lib/x.rb"]
    expect not push_paths

test "a forced push to master builds":
    given github.push branch="master" sha="b2" forced=true deleted=false files=["app/models/user.rb"]
    expect push_branches with sha="b2"
    expect push_paths with sha="b2"

test "a branch deletion runs nothing":
    given github.push branch="releases/1.x" sha="0000000000000000000000000000000000000000" deleted=true files=[]
    expect none

test "a /deploy comment on a pull request by a member":
    given github.issue_comment action="created" pull_request=true body="/deploy prod" author_association="MEMBER"
    expect only chatops
    expect chatops with text="/deploy prod"

test "a /deploy comment by someone outside the project":
    given github.issue_comment action="created" pull_request=true body="/deploy prod" author_association="NONE"
    expect none

test "a /deploy comment on an issue is not ChatOps":
    given github.issue_comment action="created" pull_request=false body="/deploy prod" author_association="OWNER"
    expect none

test "the delivery of a member's /deploy comment":
    given github.issue_comment from "{payloads}/issue_comment.json"
    expect chatops with text="/deploy staging"
    expect not dispatch

test "a tag created, as GitHub's create event":
    given github.create from "{payloads}/create.json"
    expect only tag_made
    expect tag_made with tag="v2.1.0"

test "a branch deleted runs nothing":
    given github.delete from "{payloads}/delete.json"
    expect none

test "the real deleted-tag delivery runs nothing":
    given github.push from "{gh}/push-tag-deleted.json"
    expect none

test "the real push to master":
    given github.push from "{gh}/push-plain.json"
    expect only push_branches, push_ignore, push_paths, push_paths_ignore
'''


def invoke(*args: str):
    return CliRunner().invoke(main, list(args))


@pytest.fixture
def rules(tmp_path: Path) -> Path:
    f = tmp_path / "rules.trg"
    f.write_text(RULES)
    return f


def test_the_translations_check_clean_under_strict(rules: Path) -> None:
    result = invoke("check", "--strict", str(rules))
    assert result.exit_code == 0, result.output
    assert result.output == ""


@pytest.mark.parametrize(("fixture", "event"), sorted(EXPECTED))
def test_the_translations_on_real_github_deliveries(rules: Path, fixture: str, event: str) -> None:
    result = invoke("match", str(rules), str(GH / fixture), "--github", event, "--format", "json")
    assert result.exit_code == 0, result.output
    assert sorted(m["rule"] for m in json.loads(result.output)["matches"]) == sorted(EXPECTED[fixture, event])


def test_explain_says_why_a_deleted_tag_and_a_docs_only_push_do_not_run(rules: Path) -> None:
    out = invoke("match", str(rules), str(GH / "push-tag-deleted.json"), "--github", "push", "--explain").output
    assert "push_paths_ignore: no match: deleted=false" in out and "deleted was true" in out
    assert 'push_ignore: no match: has branch' in out  # branches-ignore does not take tags
    out = invoke("match", str(rules), str(GH / "push-with-new-branch.json"), "--github", "push", "--explain").output
    assert 'files !~ ["docs/**", "**.md"]' in out and "no alternative held" in out


def test_explain_shows_a_regex_as_it_is_written(rules: Path, tmp_path: Path) -> None:
    """--explain showed `/^app/(?!assets/)/`, which ends at the second `/` when pasted back
    into a rule; it now writes the regex as `fmt` does, its `/` escaped."""
    out = invoke("match", str(rules), str(GH / "push-with-new-branch.json"), "--github", "push", "--explain").output
    assert r"files ~ /^app\/(?!assets\/)/ (line" in out, out
    event = tmp_path / "comment.json"
    event.write_text(json.dumps({"source": "github", "type": "issue_comment", "data": {
        "action": "created", "pull_request": True, "body": "LGTM"}}))
    out = invoke("match", str(rules), str(event), "--explain").output
    assert r'chatops: no match: body ~ /^\/deploy\b/ (line' in out, out


def test_rule_tests_of_the_translations_pass(rules: Path) -> None:
    rules.write_text(RULES + TESTS.replace("{gh}", str(GH)).replace("{payloads}", str(PAYLOADS)))
    result = invoke("test", str(rules))
    assert result.exit_code == 0, result.output
    assert result.output.strip().splitlines()[-1] == "14 passed, 0 failed"


# --------------------------------------------------------------------------- TRG306


@pytest.mark.parametrize(("glob", "tag", "field"), [
    ("v[0-9]+.[0-9]+.[0-9]+", "v1.22.3", "tag"),
    ("release-[0-9]+*", "release-2024a", "tag"),
    ("[a-z]+/**", "feature/login/ui", "branch"),
])
def test_a_github_plus_glob_warns_and_its_hint_is_a_regex_that_matches(tmp_path: Path, glob: str, tag: str,
                                                                        field: str) -> None:
    """`tags: ['v[0-9]+.[0-9]+.[0-9]+']` copied into a rule never matched (`+` is literal in
    a glob) and check said nothing; it now warns (TRG306), and the regex of the hint, pasted
    in place of the glob, matches what GitHub's pattern does."""
    f = tmp_path / "r.trg"
    f.write_text('action a = exec "true"\n'
                 f'r: on git.push {field} ~ "{glob}" run a\n')
    result = invoke("check", "--format", "json", str(f))
    diags = json.loads(result.output)
    assert [d["code"] for d in diags] == ["TRG306"] and diags[0]["severity"] == "warning"
    regex = re.search(r"write the regex (/.*/)$", diags[0]["hint"]).group(1)
    event = tmp_path / "e.json"
    event.write_text(json.dumps({"source": "git", "type": "push", "data": {field: tag}}))
    assert json.loads(invoke("match", str(f), str(event), "--format", "json").output)["matches"] == []
    f.write_text(f'action a = exec "true"\nr: on git.push {field} ~ {regex} run a\n')
    assert invoke("check", "--strict", str(f)).exit_code == 0
    assert [m["rule"] for m in json.loads(invoke("match", str(f), str(event), "--format", "json").output)["matches"]] == ["r"]


def test_a_github_negation_warns_and_its_hint_is_the_condition_to_add(tmp_path: Path) -> None:
    """`branches: ['releases/**', '!releases/**-alpha']` copied as a list matched a
    `releases/2.0-alpha` push (the `!` pattern is a literal, never matching, and the first
    pattern matched): TRG306 says so and names the `!~` condition that excludes it."""
    f = tmp_path / "r.trg"
    f.write_text('action a = exec "true"\n'
                 'r: on git.push branch ~ ["releases/**", "!releases/**-alpha"] run a\n'
                 'ok: on git.push branch ~ "\\\\!x" run a\n')
    diags = json.loads(invoke("check", "--format", "json", str(f)).output)
    assert [(d["code"], d["line"]) for d in diags] == [("TRG306", 2)]
    assert 'add the condition branch !~ "releases/**-alpha"' in diags[0]["hint"]


def test_a_github_negation_in_a_files_list_hints_one_regex_that_one_file_must_pass(tmp_path: Path) -> None:
    """`paths: ['app/**', '!app/assets/**']` copied as a list: the hint said to add
    `files !~ "app/assets/**"`, which holds when *some* file is outside app/assets, so a
    push of app/assets/x.png and README.md would run, where GitHub runs nothing. On a list
    field the hint is now one regex, and with it that push runs nothing and app/a.py runs."""
    f = tmp_path / "r.trg"
    f.write_text('action a = exec "true"\n'
                 'r: on git.push files ~ ["app/**", "!app/assets/**"] run a\n')
    diags = json.loads(invoke("check", "--format", "json", str(f)).output)
    assert [(d["code"], d["line"]) for d in diags] == [("TRG306", 2)]
    regex = re.search(r"write one regex, files ~ (/.*/)$", diags[0]["hint"]).group(1)
    f.write_text(f'action a = exec "true"\nr: on git.push files ~ {regex} run a\n')
    assert invoke("check", "--strict", str(f)).exit_code == 0
    for files, runs in ((["app/assets/x.png", "README.md"], []), (["app/assets/x.png", "app/a.py"], ["r"]),
                        (["docs/a.md"], [])):
        event = tmp_path / "e.json"
        event.write_text(json.dumps({"source": "git", "type": "push", "data": {"files": files}}))
        out = json.loads(invoke("match", str(f), str(event), "--format", "json").output)
        assert [m["rule"] for m in out["matches"]] == runs, files


# --------------------------------------------------------------------------- end to end


def _deliver(url: str, fixture: str, event: str, delivery: str) -> tuple[int, dict]:
    body = (GH / fixture).read_bytes()
    sig = "sha256=" + hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
    req = urllib.request.Request(url + "/github", data=body, method="POST", headers={
        "Content-Type": "application/json", "X-GitHub-Event": event, "X-GitHub-Delivery": delivery,
        "X-Hub-Signature-256": sig})
    try:
        with urllib.request.urlopen(req, timeout=15) as resp:
            return resp.status, json.loads(resp.read() or b"{}")
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read() or b"{}")


def test_signed_github_deliveries_run_what_github_actions_would(tmp_path: Path, rules: Path) -> None:
    """A real `serve` and the real payloads, signed: the push to master runs the four push
    rules with its sha, the deleted tag and the unmerged close run nothing, the published
    release runs `rel` with its tag."""
    srv = Server(rules, tmp_path / "state", env={"GH_SECRET": SECRET}).start()
    try:
        answers = {f: _deliver(srv.url, f, e, f"d-{i}") for i, (f, e) in enumerate([
            ("push-plain.json", "push"), ("push-tag-deleted.json", "push"),
            ("pull_request-closed.json", "pull_request"), ("release-published.json", "release")])}
        assert {f: (code, len(body.get("runs", []))) for f, (code, body) in answers.items()} == {
            "push-plain.json": (202, 4), "push-tag-deleted.json": (202, 0),
            "pull_request-closed.json": (202, 0), "release-published.json": (202, 1)}
        runs = srv.wait_runs(lambda rs: done(rs, 5), "five runs to end")
        assert sorted((r["rule"], r["status"], json.dumps(r["inputs"], sort_keys=True)) for r in runs) == sorted(
            [(rule, "succeeded", '{"sha": "fd489864e7642b48eaad6e3f155c10e46810ec72"}')
             for rule in ("push_branches", "push_ignore", "push_paths", "push_paths_ignore")]
            + [("rel", "succeeded", '{"tag": "0.0.1"}')])
    finally:
        srv.stop()
        srv.ensure_dead()


def test_the_readme_section_example_checks_clean_and_its_tests_pass(tmp_path: Path) -> None:
    """The worked example of README's "Coming from GitHub Actions triggers and cron"."""
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    section = readme.split("## Coming from GitHub Actions triggers and cron", 1)[1].split("\n## ", 1)[0]
    block = re.search(r"```trg\n(.*?)```", section, re.S).group(1)
    f = tmp_path / "rules.trg"
    f.write_text(block)
    assert invoke("check", "--strict", str(f)).exit_code == 0
    result = invoke("test", str(f))
    assert result.exit_code == 0 and result.output.strip().endswith("3 passed, 0 failed"), result.output


def test_every_listed_file_counts_past_githubs_300(rules: Path, tmp_path: Path) -> None:
    """GitHub Actions looks at the first 300 files of a push's diff; `files` holds every path
    of the listed commits, so a push of 300 docs pages and one file under app/ runs the
    `paths` rule whatever the order of the list (README: "Paths")."""
    body = json.loads((GH / "push-plain.json").read_text())
    body["commits"] = [{**body["commits"][0], "added": [f"docs/page{i:03}.md" for i in range(300)],
                        "modified": ["app/models/user.rb"], "removed": []}]
    delivery = tmp_path / "push-301.json"
    delivery.write_text(json.dumps(body))
    result = invoke("match", str(rules), str(delivery), "--github", "push", "--format", "json")
    assert "push_paths" in [m["rule"] for m in json.loads(result.output)["matches"]], result.output
