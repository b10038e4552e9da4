"""Provider payload normalisation, against the real payloads in shared/fixtures/webhooks."""

from __future__ import annotations

import copy
import hashlib
import json
import re
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from triggerlang.check.catalogue import ANY, BOOL, INT, LIST_STR, MAP, STR, field_type
from triggerlang.events import Event
from triggerlang.providers import REDACTED, ZERO_SHA, ProviderError, delivery_key, normalise
from triggerlang.providers.ci import normalise as normalise_ci
from triggerlang.providers.github import HANDLERS as GITHUB_HANDLERS
from triggerlang.providers.github import normalise as normalise_github
from triggerlang.providers.gitlab import HANDLERS as GITLAB_HANDLERS
from triggerlang.providers.gitlab import event_type as gitlab_event_type
from triggerlang.providers.gitlab import normalise as normalise_gitlab

# The repository is checked out with shared/ beside it: <root>/../shared/fixtures/webhooks.
FIXTURES = Path(__file__).resolve().parents[2] / "shared" / "fixtures" / "webhooks"


def load(name: str) -> dict:
    path = FIXTURES / name
    assert path.is_file(), f"fixture {path} is missing (shared/ must sit beside the repository)"
    return json.loads(path.read_text(encoding="utf-8"))


def fields(event: Event) -> dict:
    """The event's data without the raw payload (asserted separately)."""
    return {k: v for k, v in event.data.items() if k != "payload"}


GH_HEADERS = {
    "X-GitHub-Event": "push",
    "X-GitHub-Delivery": "72d3162e-cc78-11e3-81ab-4c9367dc0958",
    "X-Hub-Signature-256": "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17",
    "User-Agent": "GitHub-Hookshot/044aadd",
    "Content-Type": "application/json",
}

GL_HEADERS = {
    "X-Gitlab-Event": "Push Hook",
    "X-Gitlab-Token": "s3cret-token",
    "X-Gitlab-Event-UUID": "13792a34-cac6-4fda-95a8-c58e00a3954e",
    "Idempotency-Key": "f5e5f430-f57b-4e6e-9fac-d9128cd7232f",
    "User-Agent": "GitLab/17.4.0",
}


def test_fixtures_are_the_recorded_files():
    """Each fixture's sha256 is the one recorded in the fixtures README."""
    readme = (FIXTURES / "README.md").read_text(encoding="utf-8")
    rows = re.findall(r"^\| `([^`]+\.json)` .*?\| `([0-9a-f]{64})` \|", readme, flags=re.M)
    assert len(rows) >= 16
    for name, digest in rows:
        assert hashlib.sha256((FIXTURES / name).read_bytes()).hexdigest() == digest, name


# --- GitHub push -------------------------------------------------------------------------


def test_github_plain_push():
    body = load("github/push-plain.json")
    [ev] = normalise_github("push", body, GH_HEADERS)
    assert (ev.source, ev.type) == ("github", "push")
    assert fields(ev) == {
        "delivery": "72d3162e-cc78-11e3-81ab-4c9367dc0958",
        "repo": "binkkatal/sample_app",
        "sender": "binkkatal",
        "ref": "refs/heads/master",
        "branch": "master",
        "sha": "fd489864e7642b48eaad6e3f155c10e46810ec72",
        "before": "737d38c599c1b2991664dfc6155d6bf516fcce36",
        "after": "fd489864e7642b48eaad6e3f155c10e46810ec72",
        "forced": False,
        "created": False,
        "deleted": False,
        "author": "binkkatal",
        "author_email": "binkkatal.r@gmail.com",
        "message": "test a push event",
        "files": [".razorops.yaml", "app/controllers/application_controller.rb"],
        "commits": 1,
        "headers": {
            "x-github-event": "push",
            "x-github-delivery": "72d3162e-cc78-11e3-81ab-4c9367dc0958",
            "x-hub-signature-256": GH_HEADERS["X-Hub-Signature-256"],
            "user-agent": "GitHub-Hookshot/044aadd",
            "content-type": "application/json",
        },
    }
    assert ev.data["payload"] is body
    assert "action" not in ev.data  # a push has no action
    assert "tag" not in ev.data


def test_github_push_creating_a_branch():
    [ev] = normalise_github("push", load("github/push-with-new-branch.json"))
    d = ev.data
    assert d["branch"] == "master"
    assert d["before"] == ZERO_SHA
    assert d["sha"] == d["after"] == "6113728f27ae82c7b1a177c8d03f9e96e0adf246"
    assert (d["created"], d["deleted"], d["forced"]) == (True, False, False)
    assert d["files"] == ["README.md"]
    assert d["commits"] == 1
    assert d["author"] == "Codertocat"
    assert d["message"] == "Initial commit"
    assert d["repo"] == "Codertocat/Hello-World"
    assert "headers" not in d and "delivery" not in d  # no headers given


def test_github_push_deleting_a_tag():
    [ev] = normalise_github("push", load("github/push-tag-deleted.json"))
    d = ev.data
    assert d["ref"] == "refs/tags/simple-tag"
    assert d["tag"] == "simple-tag"
    assert "branch" not in d
    assert d["sha"] == d["after"] == ZERO_SHA  # kept as is, with deleted: true
    assert d["before"] == "6113728f27ae82c7b1a177c8d03f9e96e0adf246"
    assert d["deleted"] is True and d["created"] is False
    assert d["files"] == [] and d["commits"] == 0
    for absent in ("author", "author_email", "message"):  # head_commit is null
        assert absent not in d


def test_github_push_files_are_the_sorted_union_over_commits():
    body = load("github/push-plain.json")
    body["commits"] = [
        {"id": "1", "added": ["b.txt"], "modified": ["a.txt"], "removed": []},
        {"id": "2", "added": [], "modified": ["a.txt", "c/d.py"], "removed": ["z"]},
    ]
    [ev] = normalise_github("push", body)
    assert ev.data["files"] == ["a.txt", "b.txt", "c/d.py", "z"]
    assert ev.data["commits"] == 2
    assert ev.data["message"] == "test a push event"  # head_commit still wins


def test_github_push_author_falls_back_to_name():
    body = load("github/push-plain.json")
    body["head_commit"]["author"] = {"name": "Bink Katal", "email": "b@example.com", "username": ""}
    [ev] = normalise_github("push", body)
    assert ev.data["author"] == "Bink Katal"


def test_gitea_push_through_the_github_normaliser():
    # Gitea sends X-GitHub-Event as a compatibility header; its push body has GitHub's shape.
    [ev] = normalise_github("push", load("gitea/push.json"))
    assert ev.data["branch"] == "master"
    assert ev.data["sha"] == "67b56589a45103f891bdee7c0546e5d40bc02001"
    assert ev.data["created"] is True  # no "created" flag in Gitea's body: from the zero before
    assert ev.data["author"] == "example"  # empty username -> name
    assert ev.data["files"] == ["example"]
    assert ev.data["repo"] == "example/example"


# --- GitHub pull_request -----------------------------------------------------------------


@pytest.mark.parametrize(
    "name, action, state",
    [
        ("pull_request-opened.json", "opened", "open"),
        ("pull_request-closed.json", "closed", "closed"),
        ("pull_request-labeled.json", "labeled", "open"),
    ],
)
def test_github_pull_request(name, action, state):
    [ev] = normalise_github("pull_request", load(f"github/{name}"), {"X-GitHub-Delivery": "d-1"})
    assert (ev.source, ev.type) == ("github", "pull_request")
    assert fields(ev) == {
        "delivery": "d-1",
        "action": action,
        "repo": "Codertocat/Hello-World",
        "sender": "Codertocat",
        "number": 2,
        "title": "Update the README with new information.",
        "base": "master",
        "head": "changes",
        "sha": "ec26c3e57ca3a959ca5aad62de7213c562f8c821",
        "merged": False,
        "draft": False,
        "state": state,
        "author": "Codertocat",
        "url": "https://github.com/Codertocat/Hello-World/pull/2",
        "labels": ["bug"],
        "fork": False,  # head and base are the same repository (id 186853002)
        "headers": {"x-github-delivery": "d-1"},
    }


def test_github_pull_request_closed_without_merging_is_not_merged():
    [ev] = normalise_github("pull_request", load("github/pull_request-closed.json"))
    assert ev.data["action"] == "closed" and ev.data["merged"] is False


def test_github_pull_request_merged_and_labels():
    body = load("github/pull_request-closed.json")
    body["pull_request"]["merged"] = True
    body["pull_request"]["labels"] = [{"name": "release"}, {"name": "ci:skip"}, "junk", {"color": "fff"}]
    [ev] = normalise_github("pull_request", body)
    assert ev.data["merged"] is True
    assert ev.data["labels"] == ["release", "ci:skip"]


# --- GitHub CI completions ---------------------------------------------------------------


def test_github_workflow_run_completed_derives_ci_completed():
    body = load("github/workflow_run-completed.json")
    events = normalise_github("workflow_run", body, {"X-GitHub-Delivery": "wr-1"})
    assert [e.trigger for e in events] == ["github.workflow_run", "ci.completed"]
    gh, ci = events
    assert fields(gh) == {
        "delivery": "wr-1",
        "action": "completed",
        "repo": "octo-org/octo-repo",
        "sender": "Codertocat",
        "workflow": "test",  # the run's name is "" in this payload: the workflow's name
        "status": "completed",
        "conclusion": "success",
        "branch": "master",
        "sha": "3484a3fb816e0859fd6e1cea078d76385ff50625",
        "event": "repository_dispatch",
        "url": "https://github.com/octo-org/octo-repo/actions/runs/289782451",
        "headers": {"x-github-delivery": "wr-1"},
    }
    assert fields(ci) == {
        "provider": "github",
        "status": "success",
        "pipeline": "test",
        "repo": "octo-org/octo-repo",
        "branch": "master",
        "sha": "3484a3fb816e0859fd6e1cea078d76385ff50625",
        "url": "https://github.com/octo-org/octo-repo/actions/runs/289782451",
        "headers": {"x-github-delivery": "wr-1"},
    }
    assert ci.data["payload"] is body
    assert ci.time == gh.time and ci.id != gh.id


def test_github_workflow_run_requested_gives_no_ci_event():
    [ev] = normalise_github("workflow_run", load("github/workflow_run-requested.json"))
    assert ev.data["action"] == "requested"
    assert ev.data["status"] == "queued"
    assert "conclusion" not in ev.data  # null until the run completes


def test_github_check_suite_completed_derives_ci_completed():
    gh, ci = normalise_github("check_suite", load("github/check_suite-completed.json"))
    assert gh.trigger == "github.check_suite"
    assert gh.data["app"] == "octocoders-linter"
    assert gh.data["conclusion"] == "success"
    assert gh.data["branch"] == "changes"
    assert fields(ci) == {
        "provider": "github",
        "status": "success",
        "pipeline": "octocoders-linter",
        "repo": "Codertocat/Hello-World",
        "branch": "changes",
        "sha": "ec26c3e57ca3a959ca5aad62de7213c562f8c821",
        "url": "https://api.github.com/repos/Codertocat/Hello-World/check-suites/118578147",
    }


def test_github_check_suite_not_completed_gives_no_ci_event():
    body = load("github/check_suite-completed.json")
    body["action"] = "requested"
    assert [e.trigger for e in normalise_github("check_suite", body)] == ["github.check_suite"]


@pytest.mark.parametrize(
    "conclusion, status",
    [
        ("success", "success"),
        ("failure", "failure"),
        ("timed_out", "failure"),
        ("startup_failure", "failure"),
        ("action_required", "failure"),
        ("cancelled", "cancelled"),
        ("skipped", "skipped"),
        ("neutral", "skipped"),
        ("stale", "skipped"),
    ],
)
@pytest.mark.parametrize("event, key", [("workflow_run", "workflow_run"), ("check_suite", "check_suite")])
def test_github_conclusion_mapping(event, key, conclusion, status):
    body = load(f"github/{event}-completed.json")
    body[key]["conclusion"] = conclusion
    gh, ci = normalise_github(event, body)
    assert gh.data["conclusion"] == conclusion  # the provider event keeps GitHub's word
    assert ci.data["status"] == status


@pytest.mark.parametrize("conclusion", [None, "exploded", 3])
def test_github_unknown_conclusion_gives_no_ci_event(conclusion):
    body = load("github/workflow_run-completed.json")
    body["workflow_run"]["conclusion"] = conclusion
    assert [e.trigger for e in normalise_github("workflow_run", body)] == ["github.workflow_run"]


# --- other GitHub events -----------------------------------------------------------------


def test_github_release():
    [ev] = normalise_github("release", load("github/release-published.json"))
    assert fields(ev) == {
        "action": "published",
        "repo": "Codertocat/Hello-World",
        "sender": "Codertocat",
        "tag": "0.0.1",
        "name": "",
        "draft": False,
        "prerelease": False,
        "url": "https://github.com/Codertocat/Hello-World/releases/tag/0.0.1",
    }


def test_github_ping():
    [ev] = normalise_github("ping", load("github/ping.json"))
    assert fields(ev) == {
        "repo": "Octocoders/Hello-World",
        "sender": "Codertocat",
        "zen": "Anything added dilutes everything else.",
        "hook_id": 109948940,
    }


def test_github_issues():
    [ev] = normalise_github("issues", load("github/issues-opened.json"))
    d = ev.data
    assert (d["action"], d["number"], d["state"], d["labels"]) == ("opened", 1, "open", ["bug"])
    assert d["title"] == "Spelling error in the README file"
    assert d["author"] == "Codertocat"


def test_github_unknown_event_gets_the_common_fields():
    body = load("github/issues-opened.json")
    [ev] = normalise_github("star", body, {"X-GitHub-Delivery": "x"})
    assert ev.trigger == "github.star"
    assert set(ev.data) == {"delivery", "action", "repo", "sender", "payload", "headers"}


def test_github_event_name_is_stripped():
    [ev] = normalise_github(" push ", load("github/push-plain.json"))
    assert ev.type == "push"


# --- GitLab ------------------------------------------------------------------------------


def test_gitlab_push():
    body = load("gitlab/push.json")
    [ev] = normalise_gitlab("Push Hook", body, GL_HEADERS)
    assert (ev.source, ev.type) == ("gitlab", "push")
    assert fields(ev) == {
        "delivery": "f5e5f430-f57b-4e6e-9fac-d9128cd7232f",  # Idempotency-Key: the same on a resend
        "repo": "mike/diaspora",
        "sender": "jsmith",
        "ref": "refs/heads/master",
        "branch": "master",
        "sha": "da1560886d4f094c3e6c9ef40349f7d38b5d27d7",
        "before": "95790bf891e76fee5e1747ab589903a6a1f80f22",
        "after": "da1560886d4f094c3e6c9ef40349f7d38b5d27d7",
        "created": False,
        "deleted": False,
        "author": "GitLab dev user",
        "author_email": "gitlabdev@dv6700.(none)",
        "message": "fixed readme\n",
        "files": ["CHANGELOG", "app/controller/application.rb"],
        "commits": 4,  # total_commits_count: GitLab lists only some of them
        "headers": {
            "x-gitlab-event": "Push Hook",
            "x-gitlab-token": REDACTED,  # a plain-text secret: never journaled
            "x-gitlab-event-uuid": "13792a34-cac6-4fda-95a8-c58e00a3954e",
            "idempotency-key": "f5e5f430-f57b-4e6e-9fac-d9128cd7232f",
            "user-agent": "GitLab/17.4.0",
        },
    }
    assert ev.data["payload"] is body
    assert "forced" not in ev.data


def test_gitlab_tag_push():
    [ev] = normalise_gitlab("Tag Push Hook", load("gitlab/tag_push.json"))
    d = ev.data
    assert ev.type == "tag_push"
    assert d["tag"] == "v1.0.0" and "branch" not in d
    assert d["ref"] == "refs/tags/v1.0.0"
    assert d["sha"] == "82b3d5ae55f7080f1e6022629cdb57bfae7cccc7"
    assert d["before"] == ZERO_SHA and d["created"] is True and d["deleted"] is False
    assert d["files"] == ["CHANGELOG", "UPGRADE.md"]
    assert d["commits"] == 1
    assert d["author"] == "John Smith"
    assert d["repo"] == "jsmith/example" and d["sender"] == "jsmith"


def test_gitlab_merge_request():
    [ev] = normalise_gitlab("Merge Request Hook", load("gitlab/merge_request.json"))
    assert ev.trigger == "gitlab.merge_request"
    assert fields(ev) == {
        "action": "open",
        "repo": "gitlabhq/gitlab-test",
        "sender": "user1",
        "number": 1,
        "title": "MS-Viewport",
        "base": "master",
        "head": "ms-viewport",
        "sha": "da1560886d4f094c3e6c9ef40349f7d38b5d27d7",
        "state": "opened",
        "draft": False,
        "merged": False,
        "url": "http://example.com/diaspora/merge_requests/1",
        "labels": ["API"],
    }


def test_gitlab_merge_request_merged():
    body = load("gitlab/merge_request.json")
    body["object_attributes"].update(state="merged", action="merge")
    [ev] = normalise_gitlab("merge_request", body)
    assert ev.data["merged"] is True and ev.data["action"] == "merge"


def test_gitlab_pipeline_success_derives_ci_completed():
    gl, ci = normalise_gitlab("Pipeline Hook", load("gitlab/pipeline.json"), {"X-Gitlab-Event-UUID": "p-1"})
    assert gl.trigger == "gitlab.pipeline"
    assert fields(gl) == {
        "delivery": "p-1",
        "repo": "gitlab-org/gitlab-test",
        "sender": "user1",
        "pipeline": "gitlab-org/gitlab-test",  # an unnamed pipeline: the project's
        "pipeline_id": 31,
        "status": "success",
        "ref": "refs/heads/master",
        "branch": "master",
        "sha": "bcbb5ec396a2c0f828686f14fac9b80b780504f2",
        "url": "http://192.168.64.1:3005/gitlab-org/gitlab-test/-/pipelines/31",
        "source": "merge_request_event",
        "headers": {"x-gitlab-event-uuid": "p-1"},
    }
    assert ci.trigger == "ci.completed"
    assert fields(ci) == {
        "provider": "gitlab",
        "status": "success",
        "pipeline": "gitlab-org/gitlab-test",
        "repo": "gitlab-org/gitlab-test",
        "ref": "refs/heads/master",
        "branch": "master",
        "sha": "bcbb5ec396a2c0f828686f14fac9b80b780504f2",
        "url": "http://192.168.64.1:3005/gitlab-org/gitlab-test/-/pipelines/31",
        "headers": {"x-gitlab-event-uuid": "p-1"},
    }


@pytest.mark.parametrize(
    "status, ci_status",
    [("success", "success"), ("failed", "failure"), ("canceled", "cancelled"), ("skipped", "skipped")],
)
def test_gitlab_pipeline_final_statuses(status, ci_status):
    body = load("gitlab/pipeline.json")
    body["object_attributes"]["status"] = status
    gl, ci = normalise_gitlab("Pipeline Hook", body)
    assert gl.data["status"] == status
    assert ci.data["status"] == ci_status


@pytest.mark.parametrize("status", ["running", "pending", "created", "manual"])
def test_gitlab_pipeline_not_final_gives_no_ci_event(status):
    body = load("gitlab/pipeline.json")
    body["object_attributes"]["status"] = status
    assert [e.trigger for e in normalise_gitlab("Pipeline Hook", body)] == ["gitlab.pipeline"]


def test_gitlab_pipeline_for_a_named_tag_pipeline():
    body = load("gitlab/pipeline.json")
    body["object_attributes"].update(ref="v2.0", tag=True, name="release", url="https://gl/p/31")
    gl, ci = normalise_gitlab("Pipeline Hook", body)
    assert (ci.data["tag"], ci.data["ref"], ci.data["pipeline"], ci.data["url"]) == (
        "v2.0", "refs/tags/v2.0", "release", "https://gl/p/31",
    )
    assert "branch" not in ci.data and "branch" not in gl.data


@pytest.mark.parametrize(
    "header, expected",
    [
        ("Push Hook", "push"),
        ("Tag Push Hook", "tag_push"),
        ("Merge Request Hook", "merge_request"),
        ("Pipeline Hook", "pipeline"),
        ("push", "push"),
        ("tag_push", "tag_push"),
        ("Job Hook", "job"),
        ("build", "job"),
        ("Confidential Issue Hook", "issue"),
        ("Wiki Page Hook", "wiki_page"),
    ],
)
def test_gitlab_event_name_without_object_kind(header, expected):
    assert gitlab_event_type(header, {}) == expected


def test_gitlab_object_kind_wins_over_the_event_name():
    body = load("gitlab/tag_push.json")
    [ev] = normalise_gitlab("Push Hook", body)
    assert ev.type == "tag_push"
    assert gitlab_event_type("System Hook", {"object_kind": "merge_request"}) == "merge_request"


def test_gitlab_without_object_kind_uses_the_header():
    body = load("gitlab/push.json")
    del body["object_kind"]
    [ev] = normalise_gitlab("Push Hook", body)
    assert ev.type == "push" and ev.data["branch"] == "master"


def test_gitlab_delivery_falls_back_to_idempotency_key():
    [ev] = normalise_gitlab("Push Hook", load("gitlab/push.json"), {"idempotency-key": "k-9"})
    assert ev.data["delivery"] == "k-9"


def test_gitlab_unknown_event_gets_the_common_fields():
    body = {"object_kind": "note", "user": {"username": "ann"}, "project": {"path_with_namespace": "g/p"},
            "object_attributes": {"action": "create", "note": "hi"}}
    [ev] = normalise_gitlab("Note Hook", body)
    assert ev.trigger == "gitlab.note"
    assert fields(ev) == {"action": "create", "repo": "g/p", "sender": "ann"}


# --- generic CI --------------------------------------------------------------------------


def test_generic_ci_minimal():
    body = {"pipeline": "nightly", "status": "failure"}
    [ev] = normalise_ci(body)
    assert ev.trigger == "ci.completed"
    assert ev.data == {"provider": "generic", "pipeline": "nightly", "status": "failure", "payload": body}


def test_generic_ci_full():
    body = {"pipeline": "build", "status": "success", "branch": "main", "sha": "abc123",
            "url": "https://ci.example/1", "provider": "jenkins", "repo": "acme/app", "extra": {"n": 1}}
    [ev] = normalise_ci(body, {"Idempotency-Key": "i-1", "Authorization": "Bearer t0ken"})
    assert fields(ev) == {
        "provider": "jenkins",
        "pipeline": "build",
        "status": "success",
        "branch": "main",
        "sha": "abc123",
        "url": "https://ci.example/1",
        "repo": "acme/app",
        "ref": "refs/heads/main",
        "headers": {"idempotency-key": "i-1", "authorization": REDACTED},
    }


def test_generic_ci_tag_and_ref():
    [ev] = normalise_ci({"pipeline": "p", "status": "skipped", "tag": "v1"})
    assert (ev.data["tag"], ev.data["ref"]) == ("v1", "refs/tags/v1")
    [ev] = normalise_ci({"pipeline": "p", "status": "cancelled", "ref": "refs/heads/dev", "branch": None})
    assert (ev.data["branch"], ev.data["ref"]) == ("dev", "refs/heads/dev")


@pytest.mark.parametrize(
    "body, message",
    [
        ({"pipeline": "p", "status": "failed"}, "'status' must be one of success, failure, cancelled, skipped"),
        ({"pipeline": "p"}, "'status' must be one of"),
        ({"status": "success"}, "no 'pipeline' string"),
        ({"pipeline": "", "status": "success"}, "no 'pipeline' string"),
        ({"pipeline": 3, "status": "success"}, "no 'pipeline' string"),
        ({"pipeline": "p", "status": "success", "branch": 5}, "'branch' must be a string"),
        ({"pipeline": "p", "status": "success", "provider": ""}, "'provider' must be a non-empty string"),
        ([{"pipeline": "p"}], "must be a JSON object, not an array"),
        (None, "must be a JSON object, not null"),
    ],
)
def test_generic_ci_rejects(body, message):
    with pytest.raises(ProviderError, match=re.escape(message)):
        normalise_ci(body)


# --- dispatch, delivery keys ---------------------------------------------------------------


def test_normalise_dispatches_by_provider():
    assert [e.trigger for e in normalise("github", "workflow_run", load("github/workflow_run-completed.json"))] == [
        "github.workflow_run", "ci.completed",
    ]
    assert [e.trigger for e in normalise("gitlab", "Push Hook", load("gitlab/push.json"))] == ["gitlab.push"]
    assert [e.trigger for e in normalise("ci", "", {"pipeline": "p", "status": "success"})] == ["ci.completed"]


def test_normalise_accepts_raw_bytes():
    raw = (FIXTURES / "github" / "push-plain.json").read_bytes()
    [ev] = normalise("github", "push", raw)
    assert ev.data["sha"] == "fd489864e7642b48eaad6e3f155c10e46810ec72"
    with pytest.raises(ProviderError, match="not valid JSON"):
        normalise("github", "push", b"{not json")
    with pytest.raises(ProviderError, match="not valid JSON"):
        normalise("github", "push", b"\xff\xfe")


def test_normalise_unknown_provider():
    with pytest.raises(ProviderError, match="unknown provider 'sourcehut'"):
        normalise("sourcehut", "repo:push", load("bitbucket/repo-push.json"))


@pytest.mark.parametrize(
    "provider, headers, key",
    [
        ("github", {"X-GitHub-Delivery": "72d3162e"}, "github:72d3162e"),
        ("github", {"x-github-delivery": " 72d3162e "}, "github:72d3162e"),
        ("github", {"X-GITHUB-DELIVERY": "A"}, "github:A"),
        ("github", {"X-GitHub-Delivery": ""}, None),
        ("github", {}, None),
        ("github", None, None),
        ("gitlab", GL_HEADERS, "gitlab:f5e5f430-f57b-4e6e-9fac-d9128cd7232f"),  # the key stays across retries
        ("gitlab", {"Idempotency-Key": "f5e5"}, "gitlab:f5e5"),
        ("gitlab", {"x-gitlab-event-uuid": "u", "idempotency-key": "i"}, "gitlab:i"),
        ("gitlab", {"X-Gitlab-Event-UUID": "13792a34"}, "gitlab:13792a34"),  # GitLab before 17.4
        ("gitlab", {"X-GitHub-Delivery": "g"}, None),
        ("ci", {"Idempotency-Key": "run-7"}, "ci:run-7"),
        ("ci", {}, None),
        ("http", {"X-GitHub-Delivery": "g", "Idempotency-Key": "k"}, None),
    ],
)
def test_delivery_key(provider, headers, key):
    assert delivery_key(provider, headers) == key


# --- invalid input: ProviderError, never KeyError / TypeError -----------------------------


@pytest.mark.parametrize(
    "event, body, message",
    [
        ("push", [], "GitHub push payload must be a JSON object, not an array"),
        ("push", "x", "must be a JSON object, not a string"),
        ("push", None, "must be a JSON object, not null"),
        ("push", {}, "GitHub push payload has no 'ref' string"),
        ("push", {"ref": 7}, "no 'ref' string"),
        ("pull_request", {"action": "opened"}, "GitHub pull_request payload has no 'pull_request' object"),
        ("pull_request", {"pull_request": []}, "no 'pull_request' object"),
        ("workflow_run", {"action": "completed"}, "no 'workflow_run' object"),
        ("check_suite", {"check_suite": None}, "no 'check_suite' object"),
        ("release", {}, "no 'release' object"),
        ("issues", {"issue": "1"}, "no 'issue' object"),
    ],
)
def test_github_malformed(event, body, message):
    with pytest.raises(ProviderError, match=re.escape(message)):
        normalise_github(event, body)


@pytest.mark.parametrize("name", ["", "  ", None])
def test_github_missing_event_name(name):
    with pytest.raises(ProviderError, match="X-GitHub-Event"):
        normalise_github(name, load("github/ping.json"))  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "event, body, message",
    [
        ("Push Hook", [1], "GitLab payload must be a JSON object"),
        ("Push Hook", {"object_kind": "push"}, "GitLab push payload has no 'ref' string"),
        ("Tag Push Hook", {"object_kind": "tag_push", "ref": None}, "GitLab tag_push payload has no 'ref' string"),
        ("Merge Request Hook", {"object_kind": "merge_request"}, "no 'object_attributes' object"),
        ("Pipeline Hook", {"object_kind": "pipeline", "object_attributes": 1}, "no 'object_attributes' object"),
        ("", {}, "GitLab event name is missing"),
        (None, {"object_kind": ""}, "GitLab event name is missing"),
    ],
)
def test_gitlab_malformed(event, body, message):
    with pytest.raises(ProviderError, match=re.escape(message)):
        normalise_gitlab(event, body)


def test_odd_optional_parts_are_ignored():
    body = load("github/push-plain.json")
    body.update(commits="many", head_commit="abc", forced="yes", repository=[], sender="me")
    [ev] = normalise_github("push", body)
    assert ev.data["files"] == [] and ev.data["commits"] == 0
    for absent in ("forced", "author", "message", "repo", "sender"):
        assert absent not in ev.data


_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=5),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12,
)
_keys = st.sampled_from(
    ["ref", "before", "after", "commits", "head_commit", "pull_request", "workflow_run", "check_suite",
     "release", "issue", "action", "object_kind", "object_attributes", "project", "user", "labels",
     "repository", "sender", "hook", "total_commits_count", "pipeline", "status", "branch"]
)


@settings(max_examples=150, deadline=None)
@given(
    provider_event=st.sampled_from(
        [("github", e) for e in GITHUB_HANDLERS] + [("gitlab", e) for e in GITLAB_HANDLERS] + [("ci", "")]
    ),
    body=st.dictionaries(_keys, _json, max_size=6),
)
def test_any_json_body_gives_events_or_provider_error(provider_event, body):
    provider, event = provider_event
    try:
        events = normalise(provider, event, body, {"X-Test": "1"})
    except ProviderError as exc:
        assert "\n" not in str(exc)
        return
    for ev in events:
        json.dumps(ev.to_json())


# --- consistency with the catalogue -------------------------------------------------------

_PY_TYPES = {STR: str, INT: int, BOOL: bool, LIST_STR: list, MAP: dict}

ALL_DELIVERIES = [
    ("github", "push", "github/push-plain.json"),
    ("github", "push", "github/push-with-new-branch.json"),
    ("github", "push", "github/push-tag-deleted.json"),
    ("github", "pull_request", "github/pull_request-opened.json"),
    ("github", "pull_request", "github/pull_request-closed.json"),
    ("github", "pull_request", "github/pull_request-labeled.json"),
    ("github", "workflow_run", "github/workflow_run-completed.json"),
    ("github", "workflow_run", "github/workflow_run-requested.json"),
    ("github", "check_suite", "github/check_suite-completed.json"),
    ("github", "release", "github/release-published.json"),
    ("github", "ping", "github/ping.json"),
    ("github", "issues", "github/issues-opened.json"),
    ("gitlab", "Push Hook", "gitlab/push.json"),
    ("gitlab", "Tag Push Hook", "gitlab/tag_push.json"),
    ("gitlab", "Merge Request Hook", "gitlab/merge_request.json"),
    ("gitlab", "Pipeline Hook", "gitlab/pipeline.json"),
]


@pytest.mark.parametrize("provider, event, name", ALL_DELIVERIES, ids=[d[2] for d in ALL_DELIVERIES])
def test_every_field_is_in_the_catalogue_with_its_type(provider, event, name):
    headers = GH_HEADERS if provider == "github" else GL_HEADERS
    for ev in normalise(provider, event, load(name), headers):
        json.dumps(ev.to_json())
        for key, value in ev.data.items():
            typ = field_type(ev.source, ev.type, (key,))
            assert typ is not None, f"{ev.trigger} emits {key!r}, which the catalogue lacks"
            if typ == ANY:
                continue
            assert isinstance(value, _PY_TYPES[typ]), f"{ev.trigger}.{key}: {value!r} is not {typ}"
            if typ == INT:
                assert not isinstance(value, bool)
            if typ == LIST_STR:
                assert all(isinstance(v, str) for v in value)


def test_the_body_is_not_modified():
    body = load("github/workflow_run-completed.json")
    before = copy.deepcopy(body)
    normalise_github("workflow_run", body, GH_HEADERS)
    assert body == before
