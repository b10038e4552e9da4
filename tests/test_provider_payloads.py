"""Every provider's normaliser on real payloads (SPEC §13), checked by independent code.

Three sets:

* the shared fixtures (``shared/fixtures/webhooks``: real published payloads of GitHub,
  GitLab, Gitea and Bitbucket Cloud), every one of them through its provider;
* the payloads of ``tests/payloads/`` written for this project from the documented shapes
  (the events no shared fixture has: Bitbucket pull requests, build statuses and Data
  Center pushes, GitLab releases, milestones, System Hooks and jobs, Gitea's other events,
  GitHub reviews);
* with ``TRIGGERLANG_PAYLOAD_CORPUS`` set, a local corpus of published examples listed in
  ``tests/payloads/MANIFEST`` (not in the repository: see tests/payloads/README.md).

The expected fields are computed here from the payload with plain dictionary look-ups,
never by calling the normaliser; and every field a normaliser sets must have the type the
catalogue declares for it (so a rule that type-checks sees the type it was checked for).
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import pytest
from click.testing import CliRunner

from triggerlang.check.catalogue import get_event
from triggerlang.providers import get_provider, normalise, provider_names

FIXTURES = Path(__file__).resolve().parents[2] / "shared" / "fixtures" / "webhooks"
PAYLOADS = Path(__file__).resolve().parent / "payloads"
ZERO = "0" * 40


def load(path: Path) -> dict:
    assert path.is_file(), f"{path} is missing"
    return json.loads(path.read_text(encoding="utf-8"))


# --------------------------------------------------------------------------- the oracle

def ref_parts(ref: str) -> dict:
    for prefix, key in (("refs/heads/", "branch"), ("refs/tags/", "tag")):
        if ref.startswith(prefix):
            return {"ref": ref, key: ref[len(prefix):]}
    return {"ref": ref}


def files_of(commits: list) -> list:
    return sorted({p for c in commits for k in ("added", "modified", "removed") for p in c.get(k) or []})


def drop_none(d: dict) -> dict:
    return {k: v for k, v in d.items() if v is not None}


def gh_common(b: dict) -> dict:
    return drop_none({"action": b.get("action"), "repo": (b.get("repository") or {}).get("full_name"),
                      "sender": (b.get("sender") or {}).get("login")})


def gh_push(b: dict, with_forced: bool = True) -> dict:
    head = b.get("head_commit") or next((c for c in b["commits"] if c["id"] == b["after"]), None) \
        or (b["commits"][-1] if b["commits"] else {})
    author = head.get("author") or {}
    out = {**ref_parts(b["ref"]), "sha": b["after"], "before": b["before"], "after": b["after"],
           "created": b["created"] if "created" in b else b["before"] == ZERO,
           "deleted": b["deleted"] if "deleted" in b else b["after"] == ZERO,
           "author": author.get("username") or author.get("name"), "author_email": author.get("email") or None,
           "message": head.get("message"), "files": files_of(b["commits"]), "commits": len(b["commits"])}
    if with_forced and "forced" in b:
        out["forced"] = b["forced"]
    return drop_none(out)


def gh_pull_request(b: dict) -> dict:
    pr = b["pull_request"]
    head_repo, base_repo = pr["head"].get("repo"), pr["base"].get("repo")
    return drop_none({"number": pr["number"], "title": pr["title"], "base": pr["base"]["ref"], "head": pr["head"]["ref"],
                      "sha": pr["head"]["sha"], "merged": pr.get("merged"), "draft": pr.get("draft"),
                      "state": pr["state"], "author": pr["user"]["login"], "url": pr["html_url"],
                      "labels": [x["name"] for x in pr.get("labels") or []],
                      "fork": head_repo is None or head_repo["id"] != base_repo["id"]})


def gh_workflow_run(b: dict) -> dict:
    run = b["workflow_run"]
    return drop_none({"workflow": run.get("name") or b["workflow"]["name"], "status": run["status"],
                      "conclusion": run.get("conclusion"), "branch": run["head_branch"], "sha": run["head_sha"],
                      "event": run.get("event"), "url": run["html_url"]})


def gh_expected(event: str, b: dict) -> dict:
    own: dict = {}
    if event == "push":
        own = gh_push(b)
    elif event == "pull_request":
        own = gh_pull_request(b)
    elif event == "workflow_run":
        own = gh_workflow_run(b)
    elif event == "check_suite":
        s = b["check_suite"]
        own = drop_none({"status": s["status"], "conclusion": s["conclusion"], "branch": s["head_branch"],
                         "sha": s["head_sha"], "app": s["app"]["name"], "url": s["url"]})
    elif event == "release":
        r = b["release"]
        own = {"tag": r["tag_name"], "name": r["name"], "draft": r["draft"], "prerelease": r["prerelease"],
               "url": r["html_url"]}
    elif event == "ping":
        own = {"zen": b["zen"], "hook_id": b["hook_id"]}
    elif event == "issues":
        i = b["issue"]
        own = {"number": i["number"], "title": i["title"], "state": i["state"], "author": i["user"]["login"],
               "url": i["html_url"], "labels": [x["name"] for x in i["labels"]]}
    elif event == "issue_comment":
        c, i = b["comment"], b["issue"]
        own = {"number": i["number"], "title": i["title"], "pull_request": "pull_request" in i, "body": c["body"],
               "author": c["user"]["login"], "author_association": c["author_association"], "url": c["html_url"]}
    elif event in ("create", "delete"):
        kind = b["ref_type"]
        own = {"ref": f"refs/{'heads' if kind == 'branch' else 'tags'}/{b['ref']}", kind: b["ref"], "ref_type": kind}
    elif event == "pull_request_review":
        r, pr = b["review"], b["pull_request"]
        own = {"number": pr["number"], "state": r["state"], "sha": r["commit_id"], "author": r["user"]["login"],
               "url": r["html_url"], "base": pr["base"]["ref"], "head": pr["head"]["ref"]}
    return {**gh_common(b), **own}


def gl_expected(b: dict) -> tuple[str, dict]:
    kind = b.get("object_kind") or b.get("event_name")
    kind = {"build": "job"}.get(kind, kind)
    attrs = b.get("object_attributes") or {}
    common = drop_none({"action": attrs.get("action") or b.get("action"),
                        "repo": (b.get("project") or {}).get("path_with_namespace") or b.get("path_with_namespace"),
                        "sender": b.get("user_username") or (b.get("user") or {}).get("username")})
    own: dict = {}
    if kind in ("push", "tag_push"):
        head = next((c for c in b["commits"] if c["id"] == b["after"]), b["commits"][-1] if b["commits"] else {})
        own = drop_none({**ref_parts(b["ref"]), "before": b["before"], "after": b["after"],
                         "sha": b.get("checkout_sha") or b["after"] if kind == "tag_push" else b["after"],
                         "created": b["before"] == ZERO, "deleted": b["after"] == ZERO,
                         "author": (head.get("author") or {}).get("name"),
                         "author_email": (head.get("author") or {}).get("email"), "message": head.get("message"),
                         "files": files_of(b["commits"]), "commits": b["total_commits_count"]})
    elif kind == "merge_request":
        own = drop_none({"number": attrs["iid"], "title": attrs["title"], "base": attrs["target_branch"],
                         "head": attrs["source_branch"], "sha": attrs["last_commit"]["id"], "state": attrs["state"],
                         "draft": attrs.get("draft", attrs.get("work_in_progress")),
                         "merged": attrs["state"] == "merged", "url": attrs["url"],
                         "labels": [x["title"] for x in (attrs.get("labels") or b.get("labels") or [])]})
    elif kind == "pipeline":
        ref = attrs["ref"]
        full = ref if ref.startswith("refs/") else f"refs/{'tags' if attrs.get('tag') else 'heads'}/{ref}"
        own = drop_none({"pipeline": attrs.get("name") or b["project"]["path_with_namespace"],
                         "pipeline_id": attrs["id"], "status": attrs["status"], **ref_parts(full),
                         "sha": attrs["sha"], "url": attrs.get("url") or f"{b['project']['web_url']}/-/pipelines/{attrs['id']}",
                         "source": attrs.get("source")})
    elif kind == "release":
        own = {"tag": b["tag"], "name": b["name"], "sha": b["commit"]["id"], "url": b["url"]}
    elif kind == "milestone":
        own = drop_none({"number": attrs["iid"], "title": attrs["title"], "state": attrs["state"], "url": attrs.get("url")})
    elif kind == "job":
        own = drop_none({"job": b["build_name"], "job_id": b["build_id"], "stage": b["build_stage"],
                         "status": b["build_status"], "pipeline_id": b["pipeline_id"],
                         **ref_parts(("refs/tags/" if b["tag"] else "refs/heads/") + b["ref"]), "sha": b["sha"],
                         "duration": b["build_duration"], "allow_failure": b["build_allow_failure"],
                         "url": f"{b['project']['web_url']}/-/jobs/{b['build_id']}"})
    return kind, {**common, **own}


def gitea_expected(event: str, b: dict) -> dict:
    common = drop_none({"action": b.get("action"), "repo": b["repository"]["full_name"],
                        "sender": b["sender"].get("login") or b["sender"].get("username")})
    if event == "push":
        own = gh_push(b, with_forced=False)
        own["commits"] = b.get("total_commits", own["commits"])
    elif event in ("create", "delete"):
        kind = b["ref_type"]
        own = drop_none({"ref": f"refs/{'heads' if kind == 'branch' else 'tags'}/{b['ref']}", kind: b["ref"],
                         "ref_type": kind, "sha": b.get("sha")})
    else:
        own = {k: v for k, v in gh_expected(event, b).items() if k not in ("action", "repo", "sender")}
    return {**common, **own}


def bitbucket_expected(key: str, b: dict) -> list[tuple[str, dict]]:
    actor = b.get("actor") or {}
    sender = actor.get("nickname") or actor.get("username") or actor.get("name")
    repo = b["repository"].get("full_name") or f"{b['repository']['project']['key']}/{b['repository']['slug']}"
    out = []
    if key == "repo:push":
        for c in b["push"]["changes"]:
            side = c["new"] or c["old"]
            ref = f"refs/{'heads' if side['type'] == 'branch' else 'tags'}/{side['name']}"
            after = c["new"]["target"]["hash"] if c["new"] else ZERO
            target = (c["new"] or {}).get("target") or {}
            author = target.get("author") or {}
            user = author.get("user") or author  # Atlassian documents {raw, user}; older payloads send the user
            out.append(("push", drop_none({"repo": repo, "sender": sender, **ref_parts(ref), "sha": after,
                                           "before": c["old"]["target"]["hash"] if c["old"] else ZERO, "after": after,
                                           "forced": c["forced"], "created": c["created"], "deleted": c["closed"],
                                           "author": user.get("nickname") or user.get("username")
                                           or user.get("display_name") or author.get("raw"),
                                           "message": target.get("message"), "commits": len(c["commits"])})))
    elif key == "repo:refs_changed":
        for c in b["changes"]:
            out.append(("push", {"repo": repo, "sender": actor["name"], **ref_parts(c["ref"]["id"]),
                                 "sha": c["toHash"], "before": c["fromHash"], "after": c["toHash"],
                                 "created": c["type"] == "ADD", "deleted": c["type"] == "DELETE", "author": actor["name"]}))
    elif key.startswith("pullrequest:"):
        pr = b["pullrequest"]
        out.append(("pull_request", {"repo": repo, "sender": sender, "action": key.split(":", 1)[1],
                                     "number": pr["id"], "title": pr["title"], "base": pr["destination"]["branch"]["name"],
                                     "head": pr["source"]["branch"]["name"], "sha": pr["source"]["commit"]["hash"],
                                     "state": pr["state"], "merged": pr["state"] == "MERGED",
                                     "author": pr["author"]["nickname"], "url": pr["links"]["html"]["href"]}))
    elif key.startswith("repo:commit_status_"):
        s = b["commit_status"]
        out.append(("commit_status", {"repo": repo, "sender": sender, "action": key.rsplit("_", 1)[1],
                                      "state": s["state"], "name": s["name"], "key": s["key"],
                                      "sha": s["commit"]["hash"], "branch": s["refname"],
                                      "ref": f"refs/heads/{s['refname']}", "url": s["url"]}))
    return out


def typed(data: dict) -> dict:
    """The event's fields without the raw ones (payload, headers, delivery)."""
    return {k: v for k, v in data.items() if k not in ("payload", "headers", "delivery")}


_PY = {"str": (str,), "int": (int,), "bool": (bool,), "number": (int, float), "time": (str,), "duration": (int, float)}


def assert_types(event) -> None:
    """Every field has the catalogue's type for it (what a rule was type-checked against)."""
    spec = get_event(event.source, event.type)
    assert spec is not None, event.trigger
    for k, v in event.data.items():
        t = spec.fields.get(k)
        assert t is not None or k in ("payload", "headers"), f"{event.trigger}: {k} is not in the catalogue"
        if t == "list[str]":
            assert isinstance(v, list) and all(isinstance(x, str) for x in v), (event.trigger, k, v)
        elif t in _PY:
            assert isinstance(v, _PY[t]) and (t == "bool" or not isinstance(v, bool)), (event.trigger, k, v)


# --------------------------------------------------------------------------- the shared fixtures

SHARED = sorted(p.relative_to(FIXTURES).as_posix() for p in FIXTURES.rglob("*.json") if p.parent != FIXTURES)
GITHUB_EVENT = {"push": "push", "pull_request": "pull_request", "workflow_run": "workflow_run",
                "check_suite": "check_suite", "release": "release", "ping": "ping", "issues": "issues"}


def test_every_shared_fixture_is_covered() -> None:
    assert len(SHARED) == 18
    assert {p.split("/")[0] for p in SHARED} == {"github", "gitlab", "gitea", "bitbucket"}


@pytest.mark.parametrize("name", SHARED)
def test_shared_fixture(name: str) -> None:
    provider, file = name.split("/")
    body = load(FIXTURES / name)
    if provider == "github":
        event = GITHUB_EVENT[file.removesuffix(".json").split("-")[0]]
        events = normalise("github", event, body)
        assert events[0].trigger == f"github.{event}"
        assert typed(events[0].data) == gh_expected(event, body)
        completed = event in ("workflow_run", "check_suite") and body["action"] == "completed"
        assert [e.trigger for e in events[1:]] == (["ci.completed"] if completed else [])
    elif provider == "gitlab":
        events = normalise("gitlab", "", body)
        kind, expected = gl_expected(body)
        assert events[0].trigger == f"gitlab.{kind}"
        assert typed(events[0].data) == expected
    elif provider == "gitea":
        events = normalise("gitea", "push", body)
        assert [e.trigger for e in events] == ["gitea.push"]
        assert typed(events[0].data) == gitea_expected("push", body)
    else:
        events = normalise("bitbucket", "repo:push", body)
        assert [(e.type, typed(e.data)) for e in events] == bitbucket_expected("repo:push", body)
    for e in events:
        assert_types(e)
        assert e.data["payload"] is body


# --------------------------------------------------------------------------- tests/payloads

HAND = {
    "bitbucket/pullrequest-created.json": ("bitbucket", "pullrequest:created"),
    "bitbucket/commit-status-updated.json": ("bitbucket", "repo:commit_status_updated"),
    "bitbucket/refs-changed.json": ("bitbucket", "repo:refs_changed"),
    "bitbucket/repo-push-multi.json": ("bitbucket", "repo:push"),
    "gitlab/release.json": ("gitlab", "Release Hook"),
    "gitlab/milestone.json": ("gitlab", "Milestone Hook"),
    "gitlab/system-push.json": ("gitlab", "System Hook"),
    "gitlab/system-tag-push.json": ("gitlab", "System Hook"),
    "gitlab/job.json": ("gitlab", "Job Hook"),
    "gitea/create.json": ("gitea", "create"),
    "gitea/delete.json": ("gitea", "delete"),
    "gitea/pull_request.json": ("gitea", "pull_request"),
    "gitea/release.json": ("gitea", "release"),
    "gitea/issues.json": ("gitea", "issues"),
    "gitea/workflow_run.json": ("gitea", "workflow_run"),
    "github/pull_request_review.json": ("github", "pull_request_review"),
    "github/issue_comment.json": ("github", "issue_comment"),
    "github/create.json": ("github", "create"),
    "github/delete.json": ("github", "delete"),
}


def test_every_hand_written_payload_is_listed() -> None:
    assert sorted(HAND) == sorted(p.relative_to(PAYLOADS).as_posix() for p in PAYLOADS.rglob("*.json"))


@pytest.mark.parametrize("name", sorted(HAND))
def test_hand_written_payload(name: str) -> None:
    provider, event = HAND[name]
    body = load(PAYLOADS / name)
    events = normalise(provider, event, body)
    if provider == "bitbucket":
        assert [(e.type, typed(e.data)) for e in events if e.source == "bitbucket"] == bitbucket_expected(event, body)
    elif provider == "gitlab":
        kind, expected = gl_expected(body)
        assert events[0].trigger == f"gitlab.{kind}" and typed(events[0].data) == expected
    elif provider == "gitea":
        assert events[0].trigger == f"gitea.{event}" and typed(events[0].data) == gitea_expected(event, body)
    else:
        assert events[0].trigger == f"github.{event}" and typed(events[0].data) == gh_expected(event, body)
    for e in events:
        assert_types(e)


def test_the_decisions_the_payloads_show() -> None:
    """The points of SPEC §13, stated plainly on the payloads written for them."""
    rel = normalise("gitlab", "Release Hook", load(PAYLOADS / "gitlab/release.json"))[0]
    assert rel.data["action"] == "create"  # top-level action
    assert normalise("gitlab", "Milestone Hook", load(PAYLOADS / "gitlab/milestone.json"))[0].data["action"] == "close"
    push = normalise("gitlab", "System Hook", load(PAYLOADS / "gitlab/system-push.json"))[0]
    assert push.trigger == "gitlab.push" and push.data["branch"] == "main"
    tag = normalise("gitlab", "System Hook", load(PAYLOADS / "gitlab/system-tag-push.json"))[0]
    assert tag.trigger == "gitlab.tag_push" and tag.data["sha"] != tag.data["after"]  # the commit, not the tag object
    assert normalise("gitlab", "Job Hook", load(PAYLOADS / "gitlab/job.json"))[0].trigger == "gitlab.job"
    pushes = normalise("bitbucket", "repo:push", load(PAYLOADS / "bitbucket/repo-push-multi.json"))
    assert [(e.data.get("branch"), e.data.get("forced"), e.data["deleted"]) for e in pushes] == [
        ("main", False, False), ("release", True, False), ("old-feature", False, True)]
    assert all("files" not in e.data for e in pushes)
    status = normalise("bitbucket", "repo:commit_status_updated", load(PAYLOADS / "bitbucket/commit-status-updated.json"))
    assert [e.trigger for e in status] == ["bitbucket.commit_status", "ci.completed"]
    assert status[1].data["status"] == "success" and status[1].data["provider"] == "bitbucket"
    pr = normalise("github", "pull_request", {**load(FIXTURES / "github/pull_request-opened.json")})[0]
    assert pr.data["fork"] is False
    gpr = normalise("gitea", "pull_request", load(PAYLOADS / "gitea/pull_request.json"))[0]
    assert gpr.data["fork"] is True
    run = normalise("gitea", "workflow_run", load(PAYLOADS / "gitea/workflow_run.json"))
    assert [e.trigger for e in run] == ["gitea.workflow_run", "ci.completed"] and run[1].data["status"] == "failure"


# --------------------------------------------------------------------------- the local corpus

CORPUS = os.environ.get("TRIGGERLANG_PAYLOAD_CORPUS")


def _corpus_rules() -> str:
    """A rules file with a rule on every typed event of every provider and on each
    provider's ``*``: every payload gets matched and explained against something."""
    lines = ['action noop(x) = exec "true" x']
    for name in provider_names():
        p = get_provider(name)
        lines.append(f'on {name}.* has payload run noop with "any"')
        for ev, (fields, _) in sorted(p.events.items()):
            f = next(iter(sorted(fields)), None)
            cond = f'{f} = "x"' if f and fields[f] == "str" else "has payload"
            lines.append(f"on {name}.{ev} {cond} run noop with <payload>")
    return "\n".join(lines) + "\n"


@pytest.mark.skipif(not CORPUS, reason="TRIGGERLANG_PAYLOAD_CORPUS is not set (a local corpus; see tests/payloads/README.md)")
def test_corpus_payloads(tmp_path: Path) -> None:
    from triggerlang.cli import main as cli

    root = Path(CORPUS)
    rules = tmp_path / "corpus.trg"
    rules.write_text(_corpus_rules())
    runner = CliRunner()
    counts: dict[str, int] = {}
    problems: list[str] = []
    for line in (PAYLOADS / "MANIFEST").read_text().splitlines():
        provider, event, rel, sha, *_ = line.split("\t")
        path = root / rel
        raw = path.read_bytes()
        assert hashlib.sha256(raw).hexdigest() == sha, f"{rel}: not the file the MANIFEST names"
        try:
            events = normalise(provider, event, raw)
        except Exception as e:  # a ProviderError is a clear refusal; anything else is a bug
            if type(e).__name__ != "ProviderError":
                problems.append(f"{rel}: {type(e).__name__}: {e}")
            events = []
        for e in events:
            try:
                assert_types(e)
            except AssertionError as err:
                problems.append(f"{rel}: {err}")
        args = ["match", str(rules), str(path), "--explain", "--format", "json", "--provider", provider, "--event", event]
        result = runner.invoke(cli, args)
        if result.exception is not None and not isinstance(result.exception, SystemExit):
            problems.append(f"{rel}: triggerc match raised {result.exception!r}")
        elif "Traceback" in result.output:
            problems.append(f"{rel}: traceback in the output")
        counts[provider] = counts.get(provider, 0) + 1
    print(f"\ncorpus: {sum(counts.values())} payloads {dict(sorted(counts.items()))}, {len(problems)} problems")
    assert not problems, "\n".join(problems[:40])


def test_match_with_the_provider_shorthands(tmp_path: Path) -> None:
    """``triggerc match --gitea EVENT`` / ``--bitbucket KEY`` read raw payloads like --github."""
    from triggerlang.cli import main as cli

    rules = tmp_path / "rules.trg"
    rules.write_text('secret s = env "S"\nsource gitea secret=s\nsource bitbucket secret=s\n'
                     'action note(x) = exec "echo" x\n'
                     'g: on gitea.push branch="master" run note with <sha>\n'
                     'b: on bitbucket.push branch="name-of-branch" run note with <sha>\n')
    runner = CliRunner()
    out = runner.invoke(cli, ["match", str(rules), str(FIXTURES / "gitea/push.json"), "--gitea", "push",
                              "--format", "json"])
    assert out.exit_code == 0, out.output
    assert [m["rule"] for m in json.loads(out.output)["matches"]] == ["g"]
    out = runner.invoke(cli, ["match", str(rules), str(FIXTURES / "bitbucket/repo-push.json"), "--bitbucket",
                              "repo:push", "--explain"])
    assert out.exit_code == 0 and out.output.startswith("b: runs note"), out.output
    out = runner.invoke(cli, ["match", str(rules), str(FIXTURES / "gitea/push.json"), "--gitea", "push",
                              "--bitbucket", "repo:push"])
    assert out.exit_code == 2 and "cannot be used together" in out.output


def test_rule_tests_read_every_provider_payload(tmp_path: Path) -> None:
    """``given PROVIDER.EVENT from "file.json"`` goes through the registry's normaliser."""
    from triggerlang.api import compile_text
    from triggerlang.testing import run_compiled

    (tmp_path / "push.json").write_bytes((FIXTURES / "bitbucket/repo-push.json").read_bytes())
    (tmp_path / "gitea.json").write_bytes((FIXTURES / "gitea/push.json").read_bytes())
    (tmp_path / "dc.json").write_bytes((PAYLOADS / "bitbucket/refs-changed.json").read_bytes())
    text = ('secret s = env "S"\nsource bitbucket secret=s\nsource gitea secret=s\n'
            'action note(x) = exec "echo" x\n'
            'bb: on bitbucket.push branch="name-of-branch" run note with <sha>\n'
            'gt: on gitea.push created=true run note with <branch>\n'
            'test "bitbucket":\n  given bitbucket.push from "push.json"\n'
            '  expect bb with x="709d658dc5b6d6afcd46049c2f332ee3f515a67d"\n  expect only bb\n'
            'test "gitea":\n  given gitea.push from "gitea.json"\n  expect gt with x="master"\n  expect only gt\n'
            'test "wrong kind":\n  given bitbucket.pull_request from "push.json"\n  expect none\n'
            'test "data center":\n  given bitbucket.push from "dc.json"\n  expect none\n')
    c = compile_text(text, str(tmp_path / "rules.trg"), base_dir=str(tmp_path))
    assert [(d.code, d.span.start.line) for d in c.diagnostics] == [("TRG602", 16)]  # not a pull request
    c = compile_text(text.rsplit('test "wrong kind"', 1)[0], str(tmp_path / "rules.trg"), base_dir=str(tmp_path))
    assert c.ok, c.diagnostics
    report = run_compiled(c)
    assert [(r.name, r.passed) for r in report.results] == [("bitbucket", True), ("gitea", True)]
    c = compile_text(text.replace('test "wrong kind":\n  given bitbucket.pull_request from "push.json"\n  expect none\n', ""),
                     str(tmp_path / "rules.trg"), base_dir=str(tmp_path))
    assert c.ok, c.diagnostics  # a Data Center body read as bitbucket.push by its shape
    assert [r.passed for r in run_compiled(c).results] == [True, True, True]
