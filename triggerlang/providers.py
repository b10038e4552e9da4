"""Raw provider webhook payloads -> events (SPEC §4, §8 ``match --github``, §10 ``from``).

This is the one normaliser: the HTTP server, ``triggerc match --github/--gitlab`` and the
``given PROVIDER.EVENT from "file.json"`` rule tests all call it, so a rule sees the same
fields whichever way a payload arrives.

Shape of the result
    A list of events. The provider's own event comes first (source ``github`` or
    ``gitlab``, type = the event name). When the payload reports a finished CI run, a
    derived ``ci.completed`` event follows it, with the same ``time``:

    * GitHub ``workflow_run`` with ``action: completed`` (pipeline = the workflow's name);
    * GitHub ``check_suite`` with ``action: completed`` (pipeline = the app's name). GitHub
      Actions also reports through a check suite, so one Actions run yields both; filter
      on ``pipeline`` or ``provider`` when that matters;
    * a GitLab ``pipeline`` whose status is final (success, failed, canceled, skipped);
      running, pending, created... give no ``ci.completed``.

    A completion whose conclusion is missing or not one GitHub documents gives no
    ``ci.completed`` rather than a guessed status.

Field conventions
    * A field that does not apply is *absent* from ``data`` (not ``null``): a push to a tag
      has ``tag`` and no ``branch``; ``has branch`` is then false.
    * ``repo`` is ``repository.full_name`` (GitLab: ``project.path_with_namespace``);
      ``sender`` is ``sender.login`` (GitLab: ``user_username`` or ``user.username``).
    * ``branch`` comes from ``refs/heads/X``, ``tag`` from ``refs/tags/X``.
    * ``payload`` is the whole raw body (the same object, not a copy); ``headers`` is a
      dict with lower-case names, present only when headers were given. Headers that carry
      credentials (``Authorization``, ``Cookie``, ``X-Gitlab-Token``...) keep their name but
      their value is replaced by ``"<redacted>"``: event data is journaled and shown on the
      dashboard, and secrets must never be.
    * ``delivery`` is the ``X-GitHub-Delivery`` / ``X-Gitlab-Event-UUID`` header.
    * Only JSON values go into ``data``.

Errors
    A body that is not a JSON object, an unknown event name that cannot be determined, or
    a missing required part (``ref`` of a push, ``pull_request`` of a pull_request event,
    ...) raises :class:`ProviderError` with a one-line message. Optional parts of the wrong
    type are ignored; nothing here raises KeyError or TypeError.
"""

from __future__ import annotations

import json
from typing import Any, Callable, Iterable, Mapping

from .events import Event

ZERO_SHA = "0" * 40
"""The ``before``/``after`` of a ref that did not exist before / no longer exists."""

REDACTED = "<redacted>"
_SECRET_HEADERS = frozenset({"authorization", "proxy-authorization", "cookie", "x-gitlab-token"})

CI_STATUSES = ("success", "failure", "cancelled", "skipped")
"""The four ``ci.completed`` statuses."""

_CI_STATUS: dict[str, str] = {
    # GitHub check conclusions
    "success": "success",
    "failure": "failure",
    "timed_out": "failure",
    "startup_failure": "failure",
    "action_required": "failure",
    "cancelled": "cancelled",
    "skipped": "skipped",
    "neutral": "skipped",
    "stale": "skipped",
    # GitLab final pipeline statuses (success and skipped as above)
    "failed": "failure",
    "canceled": "cancelled",
}
"""Provider conclusion/status -> ``ci.completed`` status; anything else is not final."""


class ProviderError(ValueError):
    """A payload that cannot be normalised; the message is one line for the user."""


# --- small readers: never raise on odd optional input -----------------------------------


def _str(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _bool(value: Any) -> bool | None:
    return value if isinstance(value, bool) else None


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _dig(obj: Any, *keys: str) -> Any:
    """``obj[k1][k2]...`` or None when any step is missing or not an object."""
    for key in keys:
        if not isinstance(obj, dict):
            return None
        obj = obj.get(key)
    return obj


def _first_text(*values: Any) -> str | None:
    """The first value that is a non-empty string."""
    for value in values:
        if isinstance(value, str) and value:
            return value
    return None


def _put(data: dict[str, Any], **fields: Any) -> None:
    """Set each field whose value is not None (absent means "does not apply")."""
    for key, value in fields.items():
        if value is not None:
            data[key] = value


def _need_object(body: dict[str, Any], key: str, what: str) -> dict[str, Any]:
    value = body.get(key)
    if not isinstance(value, dict):
        raise ProviderError(f"{what} payload has no '{key}' object")
    return value


def _need_text(body: dict[str, Any], key: str, what: str) -> str:
    value = body.get(key)
    if not isinstance(value, str) or not value:
        raise ProviderError(f"{what} payload has no '{key}' string")
    return value


def _need_body(body: Any, what: str) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise ProviderError(f"{what} payload must be a JSON object, not {_json_kind(body)}")
    return body


def _json_kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__


def _header(headers: Mapping[str, str] | None, name: str) -> str | None:
    """The value of header ``name`` (case-insensitive), stripped; None if absent or empty."""
    if not headers:
        return None
    wanted = name.lower()
    for key, value in headers.items():
        if isinstance(key, str) and key.lower() == wanted:
            text = str(value).strip()
            return text or None
    return None


def _headers_data(headers: Mapping[str, str] | None) -> dict[str, str] | None:
    """Headers as stored in event data: lower-case names, credentials redacted."""
    if headers is None:
        return None
    out: dict[str, str] = {}
    for key, value in headers.items():
        name = str(key).lower()
        out[name] = REDACTED if name in _SECRET_HEADERS else str(value)
    return out


def _ref_fields(ref: str | None) -> dict[str, str]:
    """``branch`` from ``refs/heads/X``, ``tag`` from ``refs/tags/X``; nothing otherwise."""
    if ref is None:
        return {}
    for prefix, key in (("refs/heads/", "branch"), ("refs/tags/", "tag")):
        if ref.startswith(prefix) and len(ref) > len(prefix):
            return {key: ref[len(prefix):]}
    return {}


def _changed_files(commits: Iterable[Any]) -> list[str]:
    """Sorted unique union of every commit's added, modified and removed paths."""
    files: set[str] = set()
    for commit in commits:
        for key in ("added", "modified", "removed"):
            files.update(p for p in _list(_dig(commit, key)) if isinstance(p, str))
    return sorted(files)


def _head_commit(commits: list[Any], head: Any, sha: str | None) -> dict[str, Any]:
    """The pushed head commit: ``head`` if given, else the commit whose id is ``sha``,
    else the last listed commit (both providers list commits oldest first)."""
    if isinstance(head, dict):
        return head
    listed = [c for c in commits if isinstance(c, dict)]
    for commit in listed:
        if sha and commit.get("id") == sha:
            return commit
    return listed[-1] if listed else {}


def _push_fields(body: dict[str, Any], what: str, *, head: Any = None) -> dict[str, Any]:
    """The fields GitHub and GitLab pushes share (``ref`` is required).

    ``sha`` is ``after``; for a deleted ref ``after`` is all zeros and is kept as is, with
    ``deleted: true``. ``created`` / ``deleted`` come from the body's booleans when it has
    them (GitHub), else from an all-zero ``before`` / ``after`` (GitLab).
    ``author`` is the head commit's author username, or name when it has none;
    ``files`` the union over all listed commits; ``commits`` the number of commits.
    """
    ref = _need_text(body, "ref", what)
    before, after = _str(body.get("before")), _str(body.get("after"))
    commits = _list(body.get("commits"))
    top = _head_commit(commits, head, after)
    author = _dict(top.get("author"))
    data: dict[str, Any] = {"ref": ref, **_ref_fields(ref)}
    created = _bool(body.get("created"))
    deleted = _bool(body.get("deleted"))
    _put(
        data,
        sha=after,
        before=before,
        after=after,
        forced=_bool(body.get("forced")),
        created=created if created is not None else (before == ZERO_SHA if before else None),
        deleted=deleted if deleted is not None else (after == ZERO_SHA if after else None),
        author=_first_text(author.get("username"), author.get("name")),
        author_email=_first_text(author.get("email")),
        message=_str(top.get("message")),
    )
    data["files"] = _changed_files(commits)
    data["commits"] = len(commits)
    return data


def _label_names(labels: Any, key: str) -> list[str]:
    return [name for name in (_dig(label, key) for label in _list(labels)) if isinstance(name, str)]


def _event_pair(primary: Event, ci: dict[str, Any] | None) -> list[Event]:
    if ci is None:
        return [primary]
    return [primary, Event(source="ci", type="completed", data=ci, time=primary.time)]


def _ci_data(
    provider: str,
    body: dict[str, Any],
    headers: Mapping[str, str] | None,
    conclusion: Any,
    **fields: Any,
) -> dict[str, Any] | None:
    """``ci.completed`` data, or None when ``conclusion`` is not a final status."""
    status = _CI_STATUS.get(conclusion) if isinstance(conclusion, str) else None
    if status is None:
        return None
    data: dict[str, Any] = {"provider": provider, "status": status}
    _put(data, **fields)
    data["payload"] = body
    _put(data, headers=_headers_data(headers))
    return data


# --- GitHub -----------------------------------------------------------------------------

Handler = Callable[[dict[str, Any]], dict[str, Any]]
"""Body -> the event-specific fields of one event type."""

CIDeriver = Callable[[dict[str, Any], dict[str, Any], "Mapping[str, str] | None"], "dict[str, Any] | None"]
"""(body, the provider event's data, headers) -> ``ci.completed`` data, or None."""


def _gh_push(body: dict[str, Any]) -> dict[str, Any]:
    """push: ref, branch/tag, sha (= after), before, after, forced, created, deleted,
    author, author_email, message (of ``head_commit``), files, commits."""
    return _push_fields(body, "GitHub push", head=body.get("head_commit"))


def _gh_pull_request(body: dict[str, Any]) -> dict[str, Any]:
    """pull_request: number, title, base/head (branch names), sha (head), merged, draft,
    labels (names), state, author (the PR's author login), url (html_url).

    ``merged`` is the PR's ``merged`` flag: a PR closed without merging has
    ``action: closed`` and ``merged: false``.
    """
    pr = _need_object(body, "pull_request", "GitHub pull_request")
    merged = _bool(pr.get("merged"))
    if merged is None and "merged_at" in pr:
        merged = pr.get("merged_at") is not None
    number = _int(pr.get("number"))
    data: dict[str, Any] = {}
    _put(
        data,
        number=number if number is not None else _int(body.get("number")),
        title=_str(pr.get("title")),
        base=_str(_dig(pr, "base", "ref")),
        head=_str(_dig(pr, "head", "ref")),
        sha=_str(_dig(pr, "head", "sha")),
        merged=merged,
        draft=_bool(pr.get("draft")),
        state=_str(pr.get("state")),
        author=_str(_dig(pr, "user", "login")),
        url=_str(pr.get("html_url")),
    )
    data["labels"] = _label_names(pr.get("labels"), "name")
    return data


def _gh_workflow_name(body: dict[str, Any]) -> str | None:
    """The run's ``name``, or the workflow's ``name`` when the run's is empty."""
    return _first_text(_dig(body, "workflow_run", "name"), _dig(body, "workflow", "name"))


def _gh_workflow_run(body: dict[str, Any]) -> dict[str, Any]:
    """workflow_run: workflow (name), status, conclusion (GitHub's raw value, absent until
    the run completes), branch (head_branch), sha (head_sha), event (what triggered the
    run), url (html_url)."""
    run = _need_object(body, "workflow_run", "GitHub workflow_run")
    data: dict[str, Any] = {}
    _put(
        data,
        workflow=_gh_workflow_name(body),
        status=_str(run.get("status")),
        conclusion=_str(run.get("conclusion")),
        branch=_str(run.get("head_branch")),
        sha=_str(run.get("head_sha")),
        event=_str(run.get("event")),
        url=_str(run.get("html_url")),
    )
    return data


def _gh_check_suite(body: dict[str, Any]) -> dict[str, Any]:
    """check_suite: status, conclusion, branch (head_branch), sha (head_sha), app (the
    GitHub App's name), url (the suite's API URL: a check suite has no web page)."""
    suite = _need_object(body, "check_suite", "GitHub check_suite")
    data: dict[str, Any] = {}
    _put(
        data,
        status=_str(suite.get("status")),
        conclusion=_str(suite.get("conclusion")),
        branch=_str(suite.get("head_branch")),
        sha=_str(suite.get("head_sha")),
        app=_first_text(_dig(suite, "app", "name"), _dig(suite, "app", "slug")),
        url=_str(suite.get("url")),
    )
    return data


def _gh_release(body: dict[str, Any]) -> dict[str, Any]:
    """release: tag (tag_name), name, draft, prerelease, url (html_url)."""
    rel = _need_object(body, "release", "GitHub release")
    data: dict[str, Any] = {}
    _put(
        data,
        tag=_str(rel.get("tag_name")),
        name=_str(rel.get("name")),
        draft=_bool(rel.get("draft")),
        prerelease=_bool(rel.get("prerelease")),
        url=_str(rel.get("html_url")),
    )
    return data


def _gh_issues(body: dict[str, Any]) -> dict[str, Any]:
    """issues: number, title, labels (names), state, author (login), url (html_url)."""
    issue = _need_object(body, "issue", "GitHub issues")
    data: dict[str, Any] = {}
    _put(
        data,
        number=_int(issue.get("number")),
        title=_str(issue.get("title")),
        state=_str(issue.get("state")),
        author=_str(_dig(issue, "user", "login")),
        url=_str(issue.get("html_url")),
    )
    data["labels"] = _label_names(issue.get("labels"), "name")
    return data


def _gh_ping(body: dict[str, Any]) -> dict[str, Any]:
    """ping: zen, hook_id (top-level, else ``hook.id``)."""
    data: dict[str, Any] = {}
    hook_id = _int(body.get("hook_id"))
    _put(data, zen=_str(body.get("zen")), hook_id=hook_id if hook_id is not None else _int(_dig(body, "hook", "id")))
    return data


GITHUB_HANDLERS: dict[str, Handler] = {
    "push": _gh_push,
    "pull_request": _gh_pull_request,
    "workflow_run": _gh_workflow_run,
    "check_suite": _gh_check_suite,
    "release": _gh_release,
    "issues": _gh_issues,
    "ping": _gh_ping,
}
"""Event-specific fields by X-GitHub-Event name; any other event gets the common fields."""


def _gh_ci_workflow_run(
    body: dict[str, Any], fields: dict[str, Any], headers: Mapping[str, str] | None
) -> dict[str, Any] | None:
    if body.get("action") != "completed":
        return None
    return _ci_data(
        "github", body, headers, _dig(body, "workflow_run", "conclusion"),
        pipeline=fields.get("workflow"), repo=fields.get("repo"),
        branch=fields.get("branch"), sha=fields.get("sha"), url=fields.get("url"),
    )


def _gh_ci_check_suite(
    body: dict[str, Any], fields: dict[str, Any], headers: Mapping[str, str] | None
) -> dict[str, Any] | None:
    if body.get("action") != "completed":
        return None
    return _ci_data(
        "github", body, headers, _dig(body, "check_suite", "conclusion"),
        pipeline=fields.get("app"), repo=fields.get("repo"),
        branch=fields.get("branch"), sha=fields.get("sha"), url=fields.get("url"),
    )


GITHUB_CI: dict[str, CIDeriver] = {
    "workflow_run": _gh_ci_workflow_run,
    "check_suite": _gh_ci_check_suite,
}
"""Events that may report a CI completion: (body, event fields, headers) -> ci data or None.

GitHub's ``head_branch`` holds a tag's name for a run triggered by a tag, and the payload
does not say which it is, so ``branch`` is whatever ``head_branch`` holds and ``ref`` is
not set on a GitHub ``ci.completed``.
"""


def normalise_github(event_name: str, body: dict, headers: Mapping[str, str] | None = None) -> list[Event]:
    """Events for one GitHub delivery; ``event_name`` is the X-GitHub-Event header value.

    Every event gets ``delivery`` (X-GitHub-Delivery header), ``action``, ``repo``,
    ``sender``, ``payload`` and ``headers`` where they apply; the events in
    :data:`GITHUB_HANDLERS` get their own fields too. Any event name is accepted.
    """
    name = event_name.strip() if isinstance(event_name, str) else ""
    if not name:
        raise ProviderError("GitHub event name is missing (the X-GitHub-Event header)")
    what = f"GitHub {name}"
    body = _need_body(body, what)
    data: dict[str, Any] = {}
    _put(
        data,
        delivery=_header(headers, "X-GitHub-Delivery"),
        action=_str(body.get("action")),
        repo=_str(_dig(body, "repository", "full_name")),
        sender=_str(_dig(body, "sender", "login")),
    )
    handler = GITHUB_HANDLERS.get(name)
    if handler is not None:
        data.update(handler(body))
    data["payload"] = body
    _put(data, headers=_headers_data(headers))
    primary = Event(source="github", type=name, data=data)
    derive = GITHUB_CI.get(name)
    return _event_pair(primary, derive(body, data, headers) if derive else None)


# --- GitLab -----------------------------------------------------------------------------

_GITLAB_HEADER_ALIASES = {
    "job": "build",
    "confidential_issue": "issue",
    "confidential_note": "note",
    "resource_access_token": "access_token",
}
"""Header-derived names whose body ``object_kind`` differs (a Job Hook's kind is build)."""


def gitlab_event_type(event_name: str | None, body: dict[str, Any]) -> str:
    """The event type of a GitLab delivery.

    The body's ``object_kind`` wins when it is a non-empty string: it names what the body
    holds (every System Hook delivery has the same header, and the body is what the
    handlers read). Otherwise ``event_name`` decides: an X-Gitlab-Event value
    (``"Tag Push Hook"`` -> ``tag_push``) or a short name (``tag_push``).
    """
    kind = body.get("object_kind")
    if isinstance(kind, str) and kind.strip():
        return kind.strip()
    name = event_name.strip() if isinstance(event_name, str) else ""
    if name.endswith(" Hook"):
        name = name[: -len(" Hook")]
    name = "_".join(name.lower().split())
    if not name:
        raise ProviderError("GitLab event name is missing (no X-Gitlab-Event header and no object_kind)")
    return _GITLAB_HEADER_ALIASES.get(name, name)


def _gl_push(body: dict[str, Any]) -> dict[str, Any]:
    """push / tag_push: as a GitHub push, from GitLab's payload. GitLab sends no
    ``forced``; ``created``/``deleted`` come from all-zero ``before``/``after``; the head
    commit is the listed commit whose id is ``after``; ``author`` is its author's name
    (GitLab commits carry no username); ``commits`` is ``total_commits_count`` (GitLab
    lists at most 20 commits), ``files`` the union over the listed ones."""
    data = _push_fields(body, f"GitLab {body.get('object_kind') or 'push'}")
    total = _int(body.get("total_commits_count"))
    if total is not None:
        data["commits"] = total
    return data


def _gl_merge_request(body: dict[str, Any]) -> dict[str, Any]:
    """merge_request: number (the project-level ``iid``), title, base (target_branch),
    head (source_branch), sha (last commit), state, draft (``draft``, else
    ``work_in_progress``), labels (titles), merged (state is ``merged``), url."""
    attrs = _need_object(body, "object_attributes", "GitLab merge_request")
    state = _str(attrs.get("state"))
    draft = _bool(attrs.get("draft"))
    labels = attrs.get("labels") if isinstance(attrs.get("labels"), list) else body.get("labels")
    data: dict[str, Any] = {}
    _put(
        data,
        number=_int(attrs.get("iid")),
        title=_str(attrs.get("title")),
        base=_str(attrs.get("target_branch")),
        head=_str(attrs.get("source_branch")),
        sha=_str(_dig(attrs, "last_commit", "id")),
        state=state,
        draft=draft if draft is not None else _bool(attrs.get("work_in_progress")),
        merged=(state == "merged") if state is not None else None,
        url=_str(attrs.get("url")),
    )
    data["labels"] = _label_names(labels, "title")
    return data


def _gl_pipeline(body: dict[str, Any]) -> dict[str, Any]:
    """pipeline: pipeline (its ``name``, else the project path), pipeline_id, status
    (GitLab's raw value), ref (full), branch or tag (from ``ref`` and the ``tag`` flag),
    sha, url (the pipeline's page), source (what started it)."""
    attrs = _need_object(body, "object_attributes", "GitLab pipeline")
    raw_ref = _str(attrs.get("ref"))
    if raw_ref is None:
        ref_data: dict[str, str] = {}
    elif raw_ref.startswith("refs/"):
        ref_data = {"ref": raw_ref, **_ref_fields(raw_ref)}
    elif attrs.get("tag") is True:
        ref_data = {"ref": f"refs/tags/{raw_ref}", "tag": raw_ref}
    else:
        ref_data = {"ref": f"refs/heads/{raw_ref}", "branch": raw_ref}
    pipeline_id = _int(attrs.get("id"))
    web_url = _str(_dig(body, "project", "web_url"))
    url = _str(attrs.get("url"))
    if url is None and web_url and pipeline_id is not None:
        url = f"{web_url.rstrip('/')}/-/pipelines/{pipeline_id}"
    data: dict[str, Any] = {}
    _put(
        data,
        pipeline=_first_text(attrs.get("name"), _dig(body, "project", "path_with_namespace")),
        pipeline_id=pipeline_id,
        status=_str(attrs.get("status")),
    )
    data.update(ref_data)
    _put(data, sha=_str(attrs.get("sha")), url=url, source=_str(attrs.get("source")))
    return data


GITLAB_HANDLERS: dict[str, Handler] = {
    "push": _gl_push,
    "tag_push": _gl_push,
    "merge_request": _gl_merge_request,
    "pipeline": _gl_pipeline,
}
"""Event-specific fields by event type (object_kind); any other event gets the common fields."""


def _gl_ci_pipeline(
    body: dict[str, Any], fields: dict[str, Any], headers: Mapping[str, str] | None
) -> dict[str, Any] | None:
    return _ci_data(
        "gitlab", body, headers, _dig(body, "object_attributes", "status"),
        pipeline=fields.get("pipeline"), repo=fields.get("repo"), ref=fields.get("ref"),
        branch=fields.get("branch"), tag=fields.get("tag"), sha=fields.get("sha"), url=fields.get("url"),
    )


GITLAB_CI: dict[str, CIDeriver] = {"pipeline": _gl_ci_pipeline}
"""GitLab events that may report a CI completion (a pipeline in a final status)."""


def normalise_gitlab(event_name: str, body: dict, headers: Mapping[str, str] | None = None) -> list[Event]:
    """Events for one GitLab delivery.

    ``event_name`` is the X-Gitlab-Event value (``"Push Hook"``) or a short name
    (``push``); the body's ``object_kind`` takes precedence (see :func:`gitlab_event_type`).
    Every event gets ``delivery`` (X-Gitlab-Event-UUID, else Idempotency-Key), ``action``
    (``object_attributes.action``), ``repo``, ``sender``, ``payload`` and ``headers``.
    """
    body = _need_body(body, "GitLab")
    name = gitlab_event_type(event_name, body)
    data: dict[str, Any] = {}
    _put(
        data,
        delivery=_header(headers, "X-Gitlab-Event-UUID") or _header(headers, "Idempotency-Key"),
        action=_str(_dig(body, "object_attributes", "action")),
        repo=_str(_dig(body, "project", "path_with_namespace")),
        sender=_first_text(body.get("user_username"), _dig(body, "user", "username")),
    )
    handler = GITLAB_HANDLERS.get(name)
    if handler is not None:
        data.update(handler(body))
    data["payload"] = body
    _put(data, headers=_headers_data(headers))
    primary = Event(source="gitlab", type=name, data=data)
    derive = GITLAB_CI.get(name)
    return _event_pair(primary, derive(body, data, headers) if derive else None)


# --- generic CI POST --------------------------------------------------------------------

_CI_OPTIONAL = ("branch", "tag", "ref", "sha", "url", "repo")


def normalise_ci(body: dict, headers: Mapping[str, str] | None = None) -> list[Event]:
    """One ``ci.completed`` event from a generic JSON POST to the CI route.

    The body is ``{pipeline, status, branch?, tag?, ref?, sha?, url?, repo?, provider?}``.
    ``pipeline`` is a required non-empty string; ``status`` must be one of success,
    failure, cancelled, skipped (no synonyms: the sender is ours to shape); ``provider``
    defaults to ``generic``. Optional fields must be strings (``null`` counts as absent).
    ``ref`` and ``branch``/``tag`` complete each other: ``ref: refs/heads/x`` gives
    ``branch: x`` and ``branch: x`` gives ``ref: refs/heads/x``.
    """
    body = _need_body(body, "CI")
    pipeline = _need_text(body, "pipeline", "CI")
    status = body.get("status")
    if status not in CI_STATUSES:
        allowed = ", ".join(CI_STATUSES)
        got = json.dumps(status) if isinstance(status, str) else _json_kind(status)
        raise ProviderError(f"CI payload 'status' must be one of {allowed}, not {got}")
    provider = body.get("provider", "generic")
    if provider is None:
        provider = "generic"
    if not isinstance(provider, str) or not provider:
        raise ProviderError("CI payload 'provider' must be a non-empty string")
    data: dict[str, Any] = {"provider": provider, "pipeline": pipeline, "status": status}
    for key in _CI_OPTIONAL:
        value = body.get(key)
        if value is not None and not isinstance(value, str):
            raise ProviderError(f"CI payload '{key}' must be a string")
        _put(data, **{key: value})
    if "ref" in data:
        for key, value in _ref_fields(data["ref"]).items():
            data.setdefault(key, value)
    elif "tag" in data:
        data["ref"] = f"refs/tags/{data['tag']}"
    elif "branch" in data:
        data["ref"] = f"refs/heads/{data['branch']}"
    data["payload"] = body
    _put(data, headers=_headers_data(headers))
    return [Event(source="ci", type="completed", data=data)]


# --- dispatch ---------------------------------------------------------------------------


def _ci_entry(event_name: str, body: Any, headers: Mapping[str, str] | None) -> list[Event]:
    return normalise_ci(body, headers)


PROVIDERS: dict[str, Callable[[str, Any, "Mapping[str, str] | None"], list[Event]]] = {
    "github": normalise_github,
    "gitlab": normalise_gitlab,
    "ci": _ci_entry,
}
"""Normaliser by provider name; for ``ci`` the event name is ignored."""


def normalise(provider: str, event_name: str, body: Any, headers: Mapping[str, str] | None = None) -> list[Event]:
    """Events for a delivery from ``provider`` (``github``, ``gitlab`` or ``ci``).

    ``body`` may be the parsed JSON or the raw bytes / text of the request body; raw text
    that is not JSON raises ProviderError.
    """
    fn = PROVIDERS.get(provider)
    if fn is None:
        raise ProviderError(f"unknown provider {provider!r} (expected one of {', '.join(PROVIDERS)})")
    if isinstance(body, (bytes, bytearray, str)):
        try:
            body = json.loads(body)
        except (ValueError, UnicodeDecodeError) as exc:
            raise ProviderError(f"{provider} payload is not valid JSON: {exc}") from None
    return fn(event_name, body, headers)


_DELIVERY_HEADERS: dict[str, tuple[str, ...]] = {
    "github": ("X-GitHub-Delivery",),
    "gitlab": ("X-Gitlab-Event-UUID", "Idempotency-Key"),
    "ci": ("Idempotency-Key",),
}


def delivery_key(provider: str, headers: Mapping[str, str] | None) -> str | None:
    """The redelivery key of a webhook, ``"<provider>:<id>"``, or None.

    GitHub: X-GitHub-Delivery (kept on redelivery). GitLab: X-Gitlab-Event-UUID, else
    Idempotency-Key (the same on every retry). CI: Idempotency-Key, so a CI script may
    retry its POST safely. Header names are matched case-insensitively.
    """
    for name in _DELIVERY_HEADERS.get(provider, ()):
        value = _header(headers, name)
        if value:
            return f"{provider}:{value}"
    return None


__all__ = [
    "ProviderError", "normalise", "normalise_github", "normalise_gitlab", "normalise_ci",
    "delivery_key", "gitlab_event_type", "GITHUB_HANDLERS", "GITLAB_HANDLERS", "CI_STATUSES",
    "ZERO_SHA", "REDACTED",
]
