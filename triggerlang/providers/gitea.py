"""Gitea, Forgejo and Gogs (SPEC §13): one provider, since Forgejo is a fork of Gitea and
Gitea of Gogs, and all three send the same payloads under their own header names.

* Event: ``X-Gitea-Event``, ``X-Forgejo-Event``, ``X-Gogs-Event`` or ``X-GitHub-Event``
  (Gitea sends several of them; the first present wins). Delivery: the matching
  ``X-*-Delivery``.
* ``secret=`` verifies ``X-Gitea-Signature`` / ``X-Forgejo-Signature`` /
  ``X-Gogs-Signature`` (bare hex HMAC-SHA256 of the body) or ``X-Hub-Signature-256``
  (``sha256=<hex>``); ``token=`` checks ``Authorization: Bearer <token>`` (the
  "Authorization header" of a Gitea webhook; write the header's value as
  ``Bearer <token>`` there).
* The payloads follow GitHub's shape, so the GitHub handlers read pull requests, releases,
  issues and workflow runs; a push has no ``forced`` (Gitea does not say), and
  ``created``/``deleted`` come from an all-zero ``before``/``after``. ``create`` and
  ``delete`` carry a short ``ref`` and a ``ref_type`` (branch or tag): ``ref`` is made
  whole (``refs/heads/X``) and ``branch`` or ``tag`` set. A completed ``workflow_run``
  (Gitea Actions) also gives a ``ci.completed`` with ``provider: "gitea"``.
"""

from __future__ import annotations

from typing import Any, Mapping

from ..events import Event
from ..spec import STR
from .base import (
    Provider,
    ProviderError,
    Verification,
    as_int,
    as_str,
    ci_data,
    dig,
    event_pair,
    first_text,
    header,
    need_body,
    need_text,
    push_fields,
    put,
    webhook_event,
)
from .github import EVENTS as GITHUB_EVENTS
from .github import HANDLERS as GITHUB_HANDLERS
from .github import PUSH_FIELDS, REF_FIELDS, ref_event

EVENT_HEADERS = ("X-Gitea-Event", "X-Forgejo-Event", "X-Gogs-Event", "X-GitHub-Event")
DELIVERY_HEADERS = ("X-Gitea-Delivery", "X-Forgejo-Delivery", "X-Gogs-Delivery", "X-GitHub-Delivery")


def _push(body: dict[str, Any]) -> dict[str, Any]:
    """push: as GitHub's, without ``forced``; ``commits`` is ``total_commits`` when sent."""
    data = push_fields(body, "Gitea push", head=body.get("head_commit"))
    total = as_int(body.get("total_commits"))
    if total is not None:
        data["commits"] = total
    return data


HANDLERS = {
    "push": _push,
    "create": lambda body: ref_event(body, "Gitea create"),
    "delete": lambda body: ref_event(body, "Gitea delete"),
    "pull_request": GITHUB_HANDLERS["pull_request"],
    "release": GITHUB_HANDLERS["release"],
    "issues": GITHUB_HANDLERS["issues"],
    "workflow_run": GITHUB_HANDLERS["workflow_run"],
}
"""Event-specific fields by event name; any other event gets the common fields."""


def _ci_workflow_run(body: dict[str, Any], fields: dict[str, Any], headers: Mapping[str, str] | None) -> dict[str, Any] | None:
    if body.get("action") != "completed":
        return None
    return ci_data("gitea", body, headers, dig(body, "workflow_run", "conclusion"),
                   pipeline=fields.get("workflow"), repo=fields.get("repo"), branch=fields.get("branch"),
                   sha=fields.get("sha"), url=fields.get("url"))


CI = {"workflow_run": _ci_workflow_run}


def normalise(event_name: str, body: dict, headers: Mapping[str, str] | None = None) -> list[Event]:
    """Events for one Gitea / Forgejo / Gogs delivery; ``event_name`` is the event header."""
    name = event_name.strip() if isinstance(event_name, str) else ""
    if not name:
        raise ProviderError("Gitea event name is missing (the X-Gitea-Event, X-Forgejo-Event or X-Gogs-Event header)")
    body = need_body(body, f"Gitea {name}")
    handler = HANDLERS.get(name)
    primary = webhook_event("gitea", name, body, headers, {
        "delivery": next((v for v in (header(headers, h) for h in DELIVERY_HEADERS) if v), None),
        "action": as_str(body.get("action")),
        "repo": as_str(dig(body, "repository", "full_name")),
        "sender": first_text(dig(body, "sender", "login"), dig(body, "sender", "username")),
    }, handler(body) if handler else None)
    derive = CI.get(name)
    return event_pair(primary, derive(body, primary.data, headers) if derive else None)


_REF = {**REF_FIELDS, "sha": STR}

EVENTS = {
    "push": ({k: t for k, t in PUSH_FIELDS.items() if k != "forced"},
             "commits pushed to a branch, or a tag or branch pushed or deleted"),
    "create": (_REF, "a branch or tag was created"),
    "delete": (REF_FIELDS, "a branch or tag was deleted"),
    "pull_request": GITHUB_EVENTS["pull_request"],
    "release": GITHUB_EVENTS["release"],
    "issues": GITHUB_EVENTS["issues"],
    "workflow_run": GITHUB_EVENTS["workflow_run"],
}

KNOWN_EVENTS = frozenset(
    """
    create delete fork push issues issue_assign issue_label issue_milestone issue_comment
    pull_request pull_request_assign pull_request_label pull_request_milestone
    pull_request_comment pull_request_review_approved pull_request_review_rejected
    pull_request_review_comment pull_request_sync pull_request_review_request
    pull_request_approved pull_request_rejected pull_request_review wiki repository release
    package status workflow_run workflow_job workflow_dispatch schedule
    """.split()
)
"""Event header values Gitea, Forgejo and Gogs send; the checker warns about any other."""

PROVIDER = Provider(
    name="gitea",
    title="Gitea, Forgejo and Gogs",
    route="/gitea",
    doc="Gitea, Forgejo and Gogs webhooks; the event name is the X-Gitea-Event (X-Forgejo-Event, X-Gogs-Event) header",
    events=EVENTS,
    normaliser=normalise,
    verifications=(
        Verification("secret", "gitea"),
        Verification("token", "bearer", "Authorization"),
    ),
    event_headers=EVENT_HEADERS,
    delivery_headers=DELIVERY_HEADERS,
    known_events=KNOWN_EVENTS,
    ci_events=frozenset(CI),
    ref_events=frozenset({"push", "create", "delete"}),
    push_events=frozenset({"push"}),
)
