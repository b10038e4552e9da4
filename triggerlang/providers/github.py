"""GitHub (SPEC §4, §13): ``X-GitHub-Event`` names the event, ``X-GitHub-Delivery`` the
delivery, ``secret=`` verifies ``X-Hub-Signature-256``.

``repo`` is ``repository.full_name``; ``sender`` is ``sender.login``. A completed
``workflow_run`` (pipeline = the workflow's name) or ``check_suite`` (pipeline = the app's
name) also gives a ``ci.completed``. GitHub Actions also reports through a check suite, so
one Actions run yields both; filter on ``pipeline`` or ``provider`` when that matters.
"""

from __future__ import annotations

from typing import Any, Mapping
from urllib.parse import parse_qs

from ..events import Event
from ..spec import BOOL, INT, LIST_STR, STR
from .base import (
    CIDeriver,
    Handler,
    Provider,
    ProviderError,
    Verification,
    as_bool,
    as_dict,
    as_int,
    as_str,
    ci_data,
    dig,
    event_pair,
    first_text,
    header,
    label_names,
    need_body,
    need_object,
    need_text,
    push_fields,
    put,
    webhook_event,
)

PUSH_FIELDS = {
    "ref": STR,
    "branch": STR,
    "tag": STR,
    "sha": STR,
    "before": STR,
    "after": STR,
    "forced": BOOL,
    "created": BOOL,
    "deleted": BOOL,
    "author": STR,
    "author_email": STR,
    "message": STR,
    "files": LIST_STR,
    "commits": INT,
}
"""A push's typed fields (GitLab and Gitea pushes have the same, less what they lack)."""

REF_FIELDS = {"ref": STR, "ref_type": STR, "branch": STR, "tag": STR}
"""The typed fields of a ``create`` / ``delete`` (:func:`ref_event`)."""

def _gh_push(body: dict[str, Any]) -> dict[str, Any]:
    """push: ref, branch/tag, sha (= after), before, after, forced, created, deleted,
    author, author_email, message (of ``head_commit``), files, commits."""
    return push_fields(body, "GitHub push", head=body.get("head_commit"))


def _gh_pull_request(body: dict[str, Any]) -> dict[str, Any]:
    """pull_request: number, title, base/head (branch names), sha (head), merged, draft,
    labels (names), state, author (the PR's author login), url (html_url), fork.

    ``merged`` is the PR's ``merged`` flag: a PR closed without merging has
    ``action: closed`` and ``merged: false``. ``fork`` is true when the head repository
    is not the base repository (by id, else full name); a head repository that was deleted
    (``null``) is a fork too: it was not the base. Absent when neither side is named.
    """
    pr = need_object(body, "pull_request", "GitHub pull_request")
    merged = as_bool(pr.get("merged"))
    if merged is None and "merged_at" in pr:
        merged = pr.get("merged_at") is not None
    number = as_int(pr.get("number"))
    data: dict[str, Any] = {}
    put(
        data,
        number=number if number is not None else as_int(body.get("number")),
        title=as_str(pr.get("title")),
        base=as_str(dig(pr, "base", "ref")),
        head=as_str(dig(pr, "head", "ref")),
        sha=as_str(dig(pr, "head", "sha")),
        merged=merged,
        draft=as_bool(pr.get("draft")),
        state=as_str(pr.get("state")),
        author=as_str(dig(pr, "user", "login")),
        url=as_str(pr.get("html_url")),
        fork=_is_fork(pr),
    )
    data["labels"] = label_names(pr.get("labels"), "name")
    return data


def _is_fork(pr: dict[str, Any]) -> bool | None:
    base_repo, head = dig(pr, "base", "repo"), pr.get("head")
    if not isinstance(base_repo, dict) or not isinstance(head, dict) or "repo" not in head:
        return None
    head_repo = head.get("repo")
    if not isinstance(head_repo, dict):
        return True
    for key in ("id", "full_name"):
        a, b = base_repo.get(key), head_repo.get(key)
        if a is not None and b is not None:
            return a != b
    return None


def _gh_pull_request_review(body: dict[str, Any]) -> dict[str, Any]:
    """pull_request_review: number (the PR's), state (the review's: approved,
    changes_requested, commented, dismissed), sha (the reviewed commit, ``commit_id``),
    author (the reviewer's login), url (the review's html_url), base/head (branches)."""
    review = need_object(body, "review", "GitHub pull_request_review")
    pr = as_dict(body.get("pull_request"))
    data: dict[str, Any] = {}
    put(
        data,
        number=as_int(pr.get("number")),
        state=as_str(review.get("state")),
        sha=as_str(review.get("commit_id")),
        author=as_str(dig(review, "user", "login")),
        url=as_str(review.get("html_url")),
        base=as_str(dig(pr, "base", "ref")),
        head=as_str(dig(pr, "head", "ref")),
    )
    return data


def _gh_workflow_name(body: dict[str, Any]) -> str | None:
    """The run's ``name``, or the workflow's ``name`` when the run's is empty."""
    return first_text(dig(body, "workflow_run", "name"), dig(body, "workflow", "name"))


def _gh_workflow_run(body: dict[str, Any]) -> dict[str, Any]:
    """workflow_run: workflow (name), status, conclusion (GitHub's raw value, absent until
    the run completes), branch (head_branch), sha (head_sha), event (what triggered the
    run), url (html_url)."""
    run = need_object(body, "workflow_run", "GitHub workflow_run")
    data: dict[str, Any] = {}
    put(
        data,
        workflow=_gh_workflow_name(body),
        status=as_str(run.get("status")),
        conclusion=as_str(run.get("conclusion")),
        branch=as_str(run.get("head_branch")),
        sha=as_str(run.get("head_sha")),
        event=as_str(run.get("event")),
        url=as_str(run.get("html_url")),
    )
    return data


def _gh_check_suite(body: dict[str, Any]) -> dict[str, Any]:
    """check_suite: status, conclusion, branch (head_branch), sha (head_sha), app (the
    GitHub App's name), url (the suite's API URL: a check suite has no web page)."""
    suite = need_object(body, "check_suite", "GitHub check_suite")
    data: dict[str, Any] = {}
    put(
        data,
        status=as_str(suite.get("status")),
        conclusion=as_str(suite.get("conclusion")),
        branch=as_str(suite.get("head_branch")),
        sha=as_str(suite.get("head_sha")),
        app=first_text(dig(suite, "app", "name"), dig(suite, "app", "slug")),
        url=as_str(suite.get("url")),
    )
    return data


def _gh_release(body: dict[str, Any]) -> dict[str, Any]:
    """release: tag (tag_name), name, draft, prerelease, url (html_url)."""
    rel = need_object(body, "release", "GitHub release")
    data: dict[str, Any] = {}
    put(
        data,
        tag=as_str(rel.get("tag_name")),
        name=as_str(rel.get("name")),
        draft=as_bool(rel.get("draft")),
        prerelease=as_bool(rel.get("prerelease")),
        url=as_str(rel.get("html_url")),
    )
    return data


def _gh_issues(body: dict[str, Any]) -> dict[str, Any]:
    """issues: number, title, labels (names), state, author (login), url (html_url)."""
    issue = need_object(body, "issue", "GitHub issues")
    data: dict[str, Any] = {}
    put(
        data,
        number=as_int(issue.get("number")),
        title=as_str(issue.get("title")),
        state=as_str(issue.get("state")),
        author=as_str(dig(issue, "user", "login")),
        url=as_str(issue.get("html_url")),
    )
    data["labels"] = label_names(issue.get("labels"), "name")
    return data


def _gh_issue_comment(body: dict[str, Any]) -> dict[str, Any]:
    """issue_comment: number, title (the issue's or pull request's), pull_request (true when
    the comment is on a pull request: its issue has a ``pull_request`` object), body,
    author (the commenter's login), author_association (the commenter's standing in the
    repository: OWNER, MEMBER, COLLABORATOR, CONTRIBUTOR, NONE...), url (the comment's)."""
    comment = need_object(body, "comment", "GitHub issue_comment")
    issue = as_dict(body.get("issue"))
    data: dict[str, Any] = {}
    put(
        data,
        number=as_int(issue.get("number")),
        title=as_str(issue.get("title")),
        pull_request=isinstance(issue.get("pull_request"), dict) if issue else None,
        body=as_str(comment.get("body")),
        author=as_str(dig(comment, "user", "login")),
        author_association=as_str(comment.get("author_association")),
        url=as_str(comment.get("html_url")),
    )
    return data


def ref_event(body: dict[str, Any], what: str) -> dict[str, Any]:
    """create / delete (GitHub's shape, which Gitea copies): a short ``ref`` and its
    ``ref_type`` (branch or tag) become ``ref`` made whole (``refs/tags/v1``), ``ref_type``
    and ``branch`` or ``tag``; ``sha`` when the body has one (Gitea's create)."""
    short = need_text(body, "ref", what)
    ref_type = as_str(body.get("ref_type"))
    data: dict[str, Any] = {}
    if short.startswith("refs/"):
        data["ref"] = short
        for prefix, key in (("refs/heads/", "branch"), ("refs/tags/", "tag")):
            if short.startswith(prefix):
                data[key] = short[len(prefix):]
    elif ref_type in ("branch", "tag"):
        data["ref"] = f"refs/{'heads' if ref_type == 'branch' else 'tags'}/{short}"
        data[ref_type] = short
    put(data, ref_type=ref_type, sha=as_str(body.get("sha")))
    return data


def _gh_ping(body: dict[str, Any]) -> dict[str, Any]:
    """ping: zen, hook_id (top-level, else ``hook.id``)."""
    data: dict[str, Any] = {}
    hook_id = as_int(body.get("hook_id"))
    put(data, zen=as_str(body.get("zen")), hook_id=hook_id if hook_id is not None else as_int(dig(body, "hook", "id")))
    return data


HANDLERS: dict[str, Handler] = {
    "push": _gh_push,
    "pull_request": _gh_pull_request,
    "pull_request_review": _gh_pull_request_review,
    "workflow_run": _gh_workflow_run,
    "check_suite": _gh_check_suite,
    "release": _gh_release,
    "issues": _gh_issues,
    "issue_comment": _gh_issue_comment,
    "create": lambda body: ref_event(body, "GitHub create"),
    "delete": lambda body: ref_event(body, "GitHub delete"),
    "ping": _gh_ping,
}
"""Event-specific fields by X-GitHub-Event name; any other event gets the common fields."""


def _gh_ci_workflow_run(
    body: dict[str, Any], fields: dict[str, Any], headers: Mapping[str, str] | None
) -> dict[str, Any] | None:
    if body.get("action") != "completed":
        return None
    return ci_data(
        "github", body, headers, dig(body, "workflow_run", "conclusion"),
        pipeline=fields.get("workflow"), repo=fields.get("repo"),
        branch=fields.get("branch"), sha=fields.get("sha"), url=fields.get("url"),
    )


def _gh_ci_check_suite(
    body: dict[str, Any], fields: dict[str, Any], headers: Mapping[str, str] | None
) -> dict[str, Any] | None:
    if body.get("action") != "completed":
        return None
    return ci_data(
        "github", body, headers, dig(body, "check_suite", "conclusion"),
        pipeline=fields.get("app"), repo=fields.get("repo"),
        branch=fields.get("branch"), sha=fields.get("sha"), url=fields.get("url"),
    )



CI: dict[str, CIDeriver] = {
    "workflow_run": _gh_ci_workflow_run,
    "check_suite": _gh_ci_check_suite,
}
"""Events that may report a CI completion: (body, event fields, headers) -> ci data or None.

GitHub's ``head_branch`` holds a tag's name for a run triggered by a tag, and the payload
does not say which it is, so ``branch`` is whatever ``head_branch`` holds and ``ref`` is
not set on a GitHub ``ci.completed``.
"""


def normalise(event_name: str, body: dict, headers: Mapping[str, str] | None = None) -> list[Event]:
    """Events for one GitHub delivery; ``event_name`` is the X-GitHub-Event header value.

    Every event gets ``delivery`` (X-GitHub-Delivery header), ``action``, ``repo``,
    ``sender``, ``payload`` and ``headers`` where they apply; the events in
    :data:`HANDLERS` get their own fields too. Any event name is accepted.
    """
    name = event_name.strip() if isinstance(event_name, str) else ""
    if not name:
        raise ProviderError("GitHub event name is missing (the X-GitHub-Event header)")
    body = need_body(body, f"GitHub {name}")
    handler = HANDLERS.get(name)
    primary = webhook_event("github", name, body, headers, {
        "delivery": header(headers, "X-GitHub-Delivery"),
        "action": as_str(body.get("action")),
        "repo": as_str(dig(body, "repository", "full_name")),
        "sender": as_str(dig(body, "sender", "login")),
    }, handler(body) if handler else None)
    derive = CI.get(name)
    return event_pair(primary, derive(body, primary.data, headers) if derive else None)


def read_body(headers: Mapping[str, str], body: bytes) -> bytes:
    """A form-encoded delivery (``application/x-www-form-urlencoded``) carries the JSON in
    its ``payload`` field; the signature is over the raw form body, as GitHub signs it."""
    ctype = (header(headers, "content-type") or "").split(";", 1)[0].strip().lower()
    if ctype != "application/x-www-form-urlencoded":
        return body
    form = parse_qs(body.decode("utf-8"), keep_blank_values=True, max_num_fields=1000)
    if not form.get("payload"):
        raise ValueError("form-encoded delivery has no 'payload' field (a JSON body needs "
                         "Content-Type: application/json; curl -d sends application/x-www-form-urlencoded)")
    return form["payload"][-1].encode("utf-8")


KNOWN_EVENTS: frozenset[str] = frozenset(
    """
    branch_protection_configuration branch_protection_rule check_run check_suite
    code_scanning_alert commit_comment create custom_property custom_property_values delete
    dependabot_alert deploy_key deployment deployment_protection_rule deployment_review
    deployment_status discussion discussion_comment fork github_app_authorization gollum
    installation installation_repositories installation_target issue_comment issues label
    marketplace_purchase member membership merge_group meta milestone org_block organization
    package page_build personal_access_token_request ping project project_card project_column
    projects_v2 projects_v2_item projects_v2_status_update public pull_request
    pull_request_review pull_request_review_comment pull_request_review_thread push
    registry_package release repository repository_advisory repository_dispatch
    repository_import repository_ruleset repository_vulnerability_alert secret_scanning_alert
    secret_scanning_alert_location security_advisory security_and_analysis sponsorship star
    status team team_add watch workflow_dispatch workflow_job workflow_run
    """.split()
)
"""The documented ``X-GitHub-Event`` names; the checker warns about any other."""

EVENTS = {
    "push": (PUSH_FIELDS, "commits pushed to a branch, or a tag or branch created or deleted"),
    "pull_request": (
        {
            "number": INT,
            "title": STR,
            "base": STR,
            "head": STR,
            "sha": STR,
            "merged": BOOL,
            "draft": BOOL,
            "labels": LIST_STR,
            "state": STR,
            "author": STR,
            "url": STR,
            "fork": BOOL,
        },
        "activity on a pull request (`action`: opened, closed, labeled, synchronize...)",
    ),
    "pull_request_review": (
        {"number": INT, "state": STR, "sha": STR, "author": STR, "url": STR, "base": STR, "head": STR},
        "a pull request review was submitted, edited or dismissed (`state`: approved, changes_requested...)",
    ),
    "workflow_run": (
        {
            "workflow": STR,
            "status": STR,
            "conclusion": STR,
            "branch": STR,
            "sha": STR,
            "event": STR,
            "url": STR,
        },
        "a GitHub Actions workflow run was requested, started or completed",
    ),
    "check_suite": (
        {"status": STR, "conclusion": STR, "branch": STR, "sha": STR, "app": STR, "url": STR},
        "a check suite (one app's checks on a commit) changed state",
    ),
    "release": (
        {"tag": STR, "name": STR, "draft": BOOL, "prerelease": BOOL, "url": STR},
        "a release was published, created, edited...",
    ),
    "issues": (
        {"number": INT, "title": STR, "labels": LIST_STR, "state": STR, "author": STR, "url": STR},
        "activity on an issue",
    ),
    "issue_comment": (
        {"number": INT, "title": STR, "pull_request": BOOL, "body": STR, "author": STR,
         "author_association": STR, "url": STR},
        "a comment on an issue or a pull request was created, edited or deleted",
    ),
    "create": (REF_FIELDS, "a branch or tag was created"),
    "delete": (REF_FIELDS, "a branch or tag was deleted"),
    "ping": ({"zen": STR, "hook_id": INT}, "sent once when a webhook is created"),
}

PROVIDER = Provider(
    name="github",
    title="GitHub",
    route="/github",
    doc="GitHub webhooks; the event name is the X-GitHub-Event header",
    events=EVENTS,
    normaliser=normalise,
    verifications=(Verification("secret", "github"),),
    event_headers=("X-GitHub-Event",),
    delivery_headers=("X-GitHub-Delivery",),
    known_events=KNOWN_EVENTS,
    ci_events=frozenset(CI),
    ref_events=frozenset({"push", "create", "delete"}),
    push_events=frozenset({"push"}),
    ping_event="ping",
    read_body=read_body,
)
