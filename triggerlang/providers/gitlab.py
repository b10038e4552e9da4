"""GitLab (SPEC §4, §13): the body's ``object_kind`` (else its ``event_name``, else the
``X-Gitlab-Event`` header) names the event, ``Idempotency-Key`` (else
``X-Gitlab-Event-UUID``) the delivery, ``token=`` checks ``X-Gitlab-Token`` (a plain shared
token, not an HMAC).

Why the key before the UUID: GitLab documents ``Idempotency-Key`` (sent since 17.4) as the
id that "remains consistent across webhook retries" (a "Resend request" keeps it), while
``X-Gitlab-Event-UUID`` is new on every request and the same for recursive webhooks; a
resend keyed on the UUID would run again. GitLab before 17.4 sends only the UUID.

* System Hook deliveries have no ``object_kind`` for pushes: their ``event_name``
  (``push``, ``tag_push``, ``repository_update``, ``project_create``...) names them, so a
  System Hook push is a ``gitlab.push`` like a project hook's.
* A Job Hook's ``object_kind`` is ``build``; its event is ``gitlab.job`` (what GitLab's
  documentation and its ``X-Gitlab-Event: Job Hook`` call it).
* ``action`` is ``object_attributes.action`` (merge requests, issues...), else the
  top-level ``action`` (releases and milestones put it there: ``"action": "create"``).
* A tag push's ``sha`` is the commit the tag points at (``checkout_sha``); ``after`` stays
  as sent (for an annotated tag, the tag object's id).

``repo`` is ``project.path_with_namespace``; ``sender`` is ``user_username`` or
``user.username``. A pipeline whose status is final (success, failed, canceled, skipped)
also gives a ``ci.completed``; running, pending, created... give none.
"""

from __future__ import annotations

from typing import Any, Mapping

from ..events import Event
from ..spec import BOOL, INT, LIST_STR, NUMBER, STR
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
    label_names,
    need_body,
    need_object,
    push_fields,
    put,
    ref_fields,
    webhook_event,
)
from .github import PUSH_FIELDS

_ALIASES = {
    "build": "job",
    "confidential_issue": "issue",
    "confidential_note": "note",
    "resource_access_token": "access_token",
}
"""Names whose event is documented under another name (a Job Hook's object_kind is build;
a Confidential Issue Hook's body is an issue)."""


def event_type(event_name: str | None, body: dict[str, Any]) -> str:
    """The event type of a GitLab delivery.

    The body's ``object_kind`` wins when it is a non-empty string: it names what the body
    holds (every System Hook delivery has the same header, and the body is what the
    handlers read); then the body's ``event_name`` (System Hook pushes have no
    object_kind). Otherwise ``event_name`` decides: an X-Gitlab-Event value
    (``"Tag Push Hook"`` -> ``tag_push``) or a short name (``tag_push``).
    """
    for key in ("object_kind", "event_name"):
        kind = body.get(key)
        if isinstance(kind, str) and kind.strip():
            kind = "_".join(kind.strip().lower().split())
            return _ALIASES.get(kind, kind)
    name = event_name.strip() if isinstance(event_name, str) else ""
    if name.endswith(" Hook"):
        name = name[: -len(" Hook")]
    name = "_".join(name.lower().split())
    if not name:
        raise ProviderError("GitLab event name is missing (no X-Gitlab-Event header and no object_kind)")
    return _ALIASES.get(name, name)


def _gl_push(body: dict[str, Any]) -> dict[str, Any]:
    """push / tag_push: as a GitHub push, from GitLab's payload. GitLab sends no
    ``forced``; ``created``/``deleted`` come from all-zero ``before``/``after``; the head
    commit is the listed commit whose id is ``after``; ``author`` is its author's name
    (GitLab commits carry no username); ``commits`` is ``total_commits_count`` (GitLab
    lists at most 20 commits), ``files`` the union over the listed ones."""
    data = push_fields(body, f"GitLab {body.get('object_kind') or body.get('event_name') or 'push'}")
    total = as_int(body.get("total_commits_count"))
    if total is not None:
        data["commits"] = total
    return data


def _gl_tag_push(body: dict[str, Any]) -> dict[str, Any]:
    """tag_push: as push, but ``sha`` is the tagged commit (``checkout_sha``) when GitLab
    sends one (a deleted tag has none: ``sha`` is then ``after``, all zeros)."""
    data = _gl_push(body)
    checkout = as_str(body.get("checkout_sha"))
    if checkout:
        data["sha"] = checkout
    return data


def _gl_job(body: dict[str, Any]) -> dict[str, Any]:
    """job (Job Hook, object_kind build): job (name), job_id, stage, status, pipeline_id,
    ref, branch or tag, sha, duration (seconds), allow_failure, url (the job's page)."""
    raw_ref = as_str(body.get("ref"))
    job_id = as_int(body.get("build_id"))
    home = first_text(dig(body, "project", "web_url"), dig(body, "repository", "homepage"))
    data: dict[str, Any] = {}
    put(data, job=as_str(body.get("build_name")), job_id=job_id, stage=as_str(body.get("build_stage")),
        status=as_str(body.get("build_status")), pipeline_id=as_int(body.get("pipeline_id")))
    if raw_ref is not None:
        data.update(_short_ref(raw_ref, body.get("tag") is True))
    duration = body.get("build_duration")
    put(data, sha=as_str(body.get("sha")),
        duration=float(duration) if isinstance(duration, (int, float)) and not isinstance(duration, bool) else None,
        allow_failure=as_bool(body.get("build_allow_failure")),
        url=f"{home.rstrip('/')}/-/jobs/{job_id}" if home and job_id is not None else None)
    return data


def _gl_release(body: dict[str, Any]) -> dict[str, Any]:
    """release: tag, name, sha (the tagged commit), url (the release's page)."""
    data: dict[str, Any] = {}
    put(data, tag=as_str(body.get("tag")), name=as_str(body.get("name")),
        sha=as_str(dig(body, "commit", "id")), url=as_str(body.get("url")))
    return data


def _gl_milestone(body: dict[str, Any]) -> dict[str, Any]:
    """milestone: number (iid), title, state, url."""
    attrs = as_dict(body.get("object_attributes"))
    data: dict[str, Any] = {}
    put(data, number=as_int(attrs.get("iid")), title=as_str(attrs.get("title")), state=as_str(attrs.get("state")),
        url=as_str(attrs.get("url")))
    return data


def _gl_issue(body: dict[str, Any]) -> dict[str, Any]:
    """issue (and work_item): number (iid), title, state, labels (titles), url."""
    attrs = as_dict(body.get("object_attributes"))
    labels = attrs.get("labels") if isinstance(attrs.get("labels"), list) else body.get("labels")
    data: dict[str, Any] = {}
    put(data, number=as_int(attrs.get("iid")), title=as_str(attrs.get("title")), state=as_str(attrs.get("state")),
        url=as_str(attrs.get("url")))
    data["labels"] = label_names(labels, "title")
    return data


def _short_ref(raw_ref: str, is_tag: bool) -> dict[str, str]:
    """``ref`` and ``branch``/``tag`` from a ref GitLab may send short (``main``)."""
    if raw_ref.startswith("refs/"):
        return {"ref": raw_ref, **ref_fields(raw_ref)}
    if is_tag:
        return {"ref": f"refs/tags/{raw_ref}", "tag": raw_ref}
    return {"ref": f"refs/heads/{raw_ref}", "branch": raw_ref}


def _gl_merge_request(body: dict[str, Any]) -> dict[str, Any]:
    """merge_request: number (the project-level ``iid``), title, base (target_branch),
    head (source_branch), sha (last commit), state, draft (``draft``, else
    ``work_in_progress``), labels (titles), merged (state is ``merged``), url."""
    attrs = need_object(body, "object_attributes", "GitLab merge_request")
    state = as_str(attrs.get("state"))
    draft = as_bool(attrs.get("draft"))
    labels = attrs.get("labels") if isinstance(attrs.get("labels"), list) else body.get("labels")
    data: dict[str, Any] = {}
    put(
        data,
        number=as_int(attrs.get("iid")),
        title=as_str(attrs.get("title")),
        base=as_str(attrs.get("target_branch")),
        head=as_str(attrs.get("source_branch")),
        sha=as_str(dig(attrs, "last_commit", "id")),
        state=state,
        draft=draft if draft is not None else as_bool(attrs.get("work_in_progress")),
        merged=(state == "merged") if state is not None else None,
        url=as_str(attrs.get("url")),
    )
    data["labels"] = label_names(labels, "title")
    return data


def _gl_pipeline(body: dict[str, Any]) -> dict[str, Any]:
    """pipeline: pipeline (its ``name``, else the project path), pipeline_id, status
    (GitLab's raw value), ref (full), branch or tag (from ``ref`` and the ``tag`` flag),
    sha, url (the pipeline's page), source (what started it)."""
    attrs = need_object(body, "object_attributes", "GitLab pipeline")
    raw_ref = as_str(attrs.get("ref"))
    ref_data = _short_ref(raw_ref, attrs.get("tag") is True) if raw_ref is not None else {}
    pipeline_id = as_int(attrs.get("id"))
    web_url = as_str(dig(body, "project", "web_url"))
    url = as_str(attrs.get("url"))
    if url is None and web_url and pipeline_id is not None:
        url = f"{web_url.rstrip('/')}/-/pipelines/{pipeline_id}"
    data: dict[str, Any] = {}
    put(
        data,
        pipeline=first_text(attrs.get("name"), dig(body, "project", "path_with_namespace")),
        pipeline_id=pipeline_id,
        status=as_str(attrs.get("status")),
    )
    data.update(ref_data)
    put(data, sha=as_str(attrs.get("sha")), url=url, source=as_str(attrs.get("source")))
    return data


HANDLERS: dict[str, Handler] = {
    "push": _gl_push,
    "tag_push": _gl_tag_push,
    "job": _gl_job,
    "release": _gl_release,
    "milestone": _gl_milestone,
    "issue": _gl_issue,
    "work_item": _gl_issue,
    "merge_request": _gl_merge_request,
    "pipeline": _gl_pipeline,
}
"""Event-specific fields by event type (object_kind); any other event gets the common fields."""


def _gl_ci_pipeline(
    body: dict[str, Any], fields: dict[str, Any], headers: Mapping[str, str] | None
) -> dict[str, Any] | None:
    return ci_data(
        "gitlab", body, headers, dig(body, "object_attributes", "status"),
        pipeline=fields.get("pipeline"), repo=fields.get("repo"), ref=fields.get("ref"),
        branch=fields.get("branch"), tag=fields.get("tag"), sha=fields.get("sha"), url=fields.get("url"),
    )


CI: dict[str, CIDeriver] = {"pipeline": _gl_ci_pipeline}


def normalise(event_name: str, body: dict, headers: Mapping[str, str] | None = None) -> list[Event]:
    """Events for one GitLab delivery.

    ``event_name`` is the X-Gitlab-Event value (``"Push Hook"``) or a short name
    (``push``); the body's ``object_kind`` takes precedence (see :func:`event_type`).
    Every event gets ``delivery`` (Idempotency-Key, else X-Gitlab-Event-UUID), ``action``
    (``object_attributes.action``, else the top-level ``action``), ``repo``
    (``project.path_with_namespace``, else the top-level one of a System Hook's project
    event), ``sender``, ``payload`` and ``headers``.
    """
    body = need_body(body, "GitLab")
    name = event_type(event_name, body)
    handler = HANDLERS.get(name)
    primary = webhook_event("gitlab", name, body, headers, {
        "delivery": PROVIDER.delivery_id(headers),
        "action": first_text(dig(body, "object_attributes", "action"), body.get("action")),
        "repo": first_text(dig(body, "project", "path_with_namespace"), body.get("path_with_namespace")),
        "sender": first_text(body.get("user_username"), dig(body, "user", "username")),
    }, handler(body) if handler else None)
    derive = CI.get(name)
    return event_pair(primary, derive(body, primary.data, headers) if derive else None)


PUSH = {k: t for k, t in PUSH_FIELDS.items() if k != "forced"}

EVENTS = {
    "push": (PUSH, "commits pushed to a branch (X-Gitlab-Event: Push Hook)"),
    "tag_push": (PUSH, "a tag was created or deleted (Tag Push Hook)"),
    "merge_request": (
        {
            "number": INT,
            "title": STR,
            "base": STR,
            "head": STR,
            "sha": STR,
            "state": STR,
            "draft": BOOL,
            "labels": LIST_STR,
            "merged": BOOL,
            "url": STR,
        },
        "activity on a merge request (Merge Request Hook)",
    ),
    "job": (
        {"job": STR, "job_id": INT, "stage": STR, "status": STR, "pipeline_id": INT, "ref": STR, "branch": STR,
         "tag": STR, "sha": STR, "duration": NUMBER, "allow_failure": BOOL, "url": STR},
        "a CI/CD job changed status (Job Hook)",
    ),
    "release": ({"tag": STR, "name": STR, "sha": STR, "url": STR},
                "a release was created, updated or deleted (`action`: create, update, delete)"),
    "milestone": ({"number": INT, "title": STR, "state": STR, "url": STR},
                  "a milestone was created, closed, reopened or deleted (`action`)"),
    "issue": ({"number": INT, "title": STR, "state": STR, "labels": LIST_STR, "url": STR},
              "activity on an issue (Issue Hook, Confidential Issue Hook)"),
    "work_item": ({"number": INT, "title": STR, "state": STR, "labels": LIST_STR, "url": STR},
                  "activity on a work item (tasks, epics, ...)"),
    "pipeline": (
        {
            "pipeline": STR,
            "pipeline_id": INT,
            "status": STR,
            "ref": STR,
            "branch": STR,
            "tag": STR,
            "sha": STR,
            "url": STR,
            "source": STR,
        },
        "a CI/CD pipeline changed status (Pipeline Hook)",
    ),
}

KNOWN_EVENTS: frozenset[str] = frozenset(
    """
    push tag_push issue note merge_request wiki_page pipeline job deployment feature_flag
    release milestone emoji member subgroup project access_token vulnerability work_item
    repository_update project_create project_destroy project_rename project_transfer
    project_update group_create group_destroy group_rename user_create user_destroy
    user_rename user_failed_login key_create key_destroy user_add_to_team
    user_remove_from_team user_update_for_team user_add_to_group user_remove_from_group
    user_update_for_group
    """.split()
)
"""The documented GitLab event types (project/group webhook kinds, System Hook event
names); the checker warns about any other."""

PROVIDER = Provider(
    name="gitlab",
    title="GitLab",
    route="/gitlab",
    doc="GitLab webhooks; the event is the body's object_kind (X-Gitlab-Event names it too)",
    events=EVENTS,
    normaliser=normalise,
    verifications=(Verification("token", "token", "X-Gitlab-Token"),),
    event_headers=("X-Gitlab-Event",),
    event_names_spaced=True,
    event_from_body=True,
    delivery_headers=("Idempotency-Key", "X-Gitlab-Event-UUID"),
    known_events=KNOWN_EVENTS,
    ci_events=frozenset(CI),
    ref_events=frozenset({"push", "tag_push"}),
    push_events=frozenset({"push", "tag_push"}),
)
