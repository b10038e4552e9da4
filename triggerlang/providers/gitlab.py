"""GitLab (SPEC §4, §13): ``X-Gitlab-Event`` (or the body's ``object_kind``) names the
event, ``X-Gitlab-Event-UUID`` (else ``Idempotency-Key``) the delivery, ``token=`` checks
``X-Gitlab-Token`` (a plain shared token, not an HMAC).

``repo`` is ``project.path_with_namespace``; ``sender`` is ``user_username`` or
``user.username``. A pipeline whose status is final (success, failed, canceled, skipped)
also gives a ``ci.completed``; running, pending, created... give none.
"""

from __future__ import annotations

from typing import Any, Mapping

from ..events import Event
from ..spec import BOOL, INT, LIST_STR, STR
from .base import (
    CIDeriver,
    Handler,
    Provider,
    ProviderError,
    Verification,
    as_bool,
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
    push_fields,
    put,
    ref_fields,
    webhook_event,
)
from .github import PUSH_FIELDS

_HEADER_ALIASES = {
    "job": "build",
    "confidential_issue": "issue",
    "confidential_note": "note",
    "resource_access_token": "access_token",
}
"""Header-derived names whose body ``object_kind`` differs (a Job Hook's kind is build)."""


def event_type(event_name: str | None, body: dict[str, Any]) -> str:
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
    return _HEADER_ALIASES.get(name, name)


def _gl_push(body: dict[str, Any]) -> dict[str, Any]:
    """push / tag_push: as a GitHub push, from GitLab's payload. GitLab sends no
    ``forced``; ``created``/``deleted`` come from all-zero ``before``/``after``; the head
    commit is the listed commit whose id is ``after``; ``author`` is its author's name
    (GitLab commits carry no username); ``commits`` is ``total_commits_count`` (GitLab
    lists at most 20 commits), ``files`` the union over the listed ones."""
    data = push_fields(body, f"GitLab {body.get('object_kind') or 'push'}")
    total = as_int(body.get("total_commits_count"))
    if total is not None:
        data["commits"] = total
    return data


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
    if raw_ref is None:
        ref_data: dict[str, str] = {}
    elif raw_ref.startswith("refs/"):
        ref_data = {"ref": raw_ref, **ref_fields(raw_ref)}
    elif attrs.get("tag") is True:
        ref_data = {"ref": f"refs/tags/{raw_ref}", "tag": raw_ref}
    else:
        ref_data = {"ref": f"refs/heads/{raw_ref}", "branch": raw_ref}
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
    "tag_push": _gl_push,
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
    Every event gets ``delivery`` (X-Gitlab-Event-UUID, else Idempotency-Key), ``action``
    (``object_attributes.action``), ``repo``, ``sender``, ``payload`` and ``headers``.
    """
    body = need_body(body, "GitLab")
    name = event_type(event_name, body)
    handler = HANDLERS.get(name)
    primary = webhook_event("gitlab", name, body, headers, {
        "delivery": header(headers, "X-Gitlab-Event-UUID") or header(headers, "Idempotency-Key"),
        "action": as_str(dig(body, "object_attributes", "action")),
        "repo": as_str(dig(body, "project", "path_with_namespace")),
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
    push tag_push issue note merge_request wiki_page pipeline build deployment
    feature_flag release emoji member subgroup access_token
    """.split()
)
"""GitLab ``object_kind`` values; the checker warns about any other."""

PROVIDER = Provider(
    name="gitlab",
    title="GitLab",
    route="/gitlab",
    doc="GitLab webhooks; the event is the body's object_kind (X-Gitlab-Event names it too)",
    events=EVENTS,
    normaliser=normalise,
    verifications=(Verification("token", "token", "X-Gitlab-Token"),),
    event_headers=("X-Gitlab-Event",),
    event_from_body=True,
    delivery_headers=("X-Gitlab-Event-UUID", "Idempotency-Key"),
    known_events=KNOWN_EVENTS,
    ci_events=frozenset(CI),
    ref_events=frozenset({"push", "tag_push"}),
    push_events=frozenset({"push", "tag_push"}),
)
