"""Bitbucket Cloud and Bitbucket Data Center / Server (SPEC §13).

* Event: ``X-Event-Key`` (``repo:push``, ``pullrequest:created``,
  ``repo:commit_status_updated``; Data Center ``repo:refs_changed``, ``pr:opened``...).
  Delivery: ``X-Request-UUID`` (Cloud), ``X-Request-Id`` (Data Center).
* ``secret=`` verifies ``X-Hub-Signature: sha256=<hex HMAC-SHA256 of the body>`` (both
  editions sign so when the webhook has a secret).
* Event types: ``repo:push`` and ``repo:refs_changed`` are ``bitbucket.push``, **one
  event per changed ref** (a push of three branches is three events, each with its own
  ``branch``/``tag``, ``before``, ``after``); ``pullrequest:X`` (Cloud) and ``pr:X`` (Data
  Center) are ``bitbucket.pull_request`` with ``action: X``; ``repo:commit_status_created``
  / ``_updated`` are ``bitbucket.commit_status`` (``action``: created / updated), and a
  final state (SUCCESSFUL, FAILED, STOPPED) also gives a ``ci.completed``. Any other key
  ``A:B`` is ``bitbucket.B`` when A is ``repo``, else ``bitbucket.A_B`` (``issue:created`` is
  ``bitbucket.issue_created``; a further ``:`` becomes ``_``, Data Center's
  ``repo:comment:added`` is ``bitbucket.comment_added``): a rule may still name it, with the
  common fields. Cloud and Data Center name some actions differently (a merged pull
  request is ``fulfilled`` on Cloud, ``merged`` on Data Center): ``action`` is as sent.
* A push has **no** ``files``: Bitbucket sends no list of changed paths (its commits carry
  hashes and messages only), and ``triggerc check`` says so when a rule asks for it.
  ``commits`` counts the commits the change lists (Cloud lists at most 5 with
  ``truncated: true``; Data Center lists none, so it is absent there).
* ``repo`` is ``repository.full_name`` (Data Center: ``PROJECT/slug``); ``sender`` the
  actor's ``nickname`` (Cloud) or ``name`` (Data Center).
"""

from __future__ import annotations

from typing import Any, Mapping

from ..events import Event
from ..spec import BOOL, INT, STR
from .base import (
    ZERO_SHA,
    Provider,
    ProviderError,
    Verification,
    as_bool,
    as_dict,
    as_int,
    as_list,
    as_str,
    ci_data,
    dig,
    event_pair,
    first_text,
    header,
    need_body,
    put,
    webhook_event,
)

_CI_STATE = {"SUCCESSFUL": "success", "FAILED": "failure", "STOPPED": "cancelled"}
"""Bitbucket build states that are final -> ``ci.completed`` status (INPROGRESS is not)."""


def event_type(key: str) -> tuple[str, str | None]:
    """(event type, action) for an ``X-Event-Key``: see the module docstring."""
    scope, _, what = key.partition(":")
    if not what:
        return key, None
    if key in ("repo:push", "repo:refs_changed"):
        return "push", None
    if scope in ("pullrequest", "pr"):
        return "pull_request", what
    if scope == "repo" and what.startswith("commit_status_"):
        return "commit_status", what[len("commit_status_"):]
    if scope == "repo":
        return what.replace(":", "_"), None
    return f"{scope}_{what}".replace(":", "_"), None


def _who(actor: Any) -> str | None:
    return first_text(dig(actor, "nickname"), dig(actor, "username"), dig(actor, "name"),
                      dig(actor, "slug"), dig(actor, "display_name"), dig(actor, "displayName"))


def _repo(body: dict[str, Any]) -> str | None:
    """Cloud ``repository.full_name``; Data Center ``PROJECT/slug`` of ``repository``, or of
    the pull request's target repository (``pr:*`` events have no top-level one)."""
    repo = as_dict(body.get("repository")) or as_dict(dig(body, "pullRequest", "toRef", "repository"))
    full = as_str(repo.get("full_name"))
    if full:
        return full
    project, slug = as_str(dig(repo, "project", "key")), as_str(repo.get("slug"))
    return f"{project}/{slug}" if project and slug else None


def _ref(kind: Any, name: Any) -> dict[str, str]:
    """ref + branch/tag from a Cloud ``{type, name}`` or a Data Center ``{type, displayId}``."""
    kind = kind.lower() if isinstance(kind, str) else None
    if not isinstance(name, str) or not name:
        return {}
    if name.startswith("refs/"):
        for prefix, key in (("refs/heads/", "branch"), ("refs/tags/", "tag")):
            if name.startswith(prefix):
                return {"ref": name, key: name[len(prefix):]}
        return {"ref": name}
    if kind in ("branch", "named_branch"):
        return {"ref": f"refs/heads/{name}", "branch": name}
    if kind == "tag":
        return {"ref": f"refs/tags/{name}", "tag": name}
    return {}


def _cloud_changes(body: dict[str, Any]) -> list[dict[str, Any]]:
    out = []
    for change in as_list(dig(body, "push", "changes")):
        if not isinstance(change, dict):
            continue
        new, old = change.get("new"), change.get("old")
        side = new if isinstance(new, dict) else as_dict(old)
        ref = _ref(side.get("type"), side.get("name"))
        if not ref:
            continue
        before = as_str(dig(old, "target", "hash")) if isinstance(old, dict) else ZERO_SHA
        after = as_str(dig(new, "target", "hash")) if isinstance(new, dict) else ZERO_SHA
        target = as_dict(dig(new, "target")) if isinstance(new, dict) else {}
        data: dict[str, Any] = dict(ref)
        created, deleted = as_bool(change.get("created")), as_bool(change.get("closed"))
        put(
            data,
            sha=after,
            before=before,
            after=after,
            forced=as_bool(change.get("forced")),
            created=created if created is not None else before == ZERO_SHA,
            deleted=deleted if deleted is not None else after == ZERO_SHA,
            author=_who(dig(target, "author", "user")) or _who(dig(target, "author")) or as_str(dig(target, "author", "raw")),
            message=as_str(target.get("message")),
            commits=len(change["commits"]) if isinstance(change.get("commits"), list) else None,
        )
        out.append(data)
    return out


def _dc_changes(body: dict[str, Any]) -> list[dict[str, Any]]:
    out = []
    for change in as_list(body.get("changes")):
        if not isinstance(change, dict):
            continue
        ref_obj = as_dict(change.get("ref"))
        ref = _ref(ref_obj.get("type"), first_text(ref_obj.get("id"), change.get("refId"), ref_obj.get("displayId")))
        if not ref:
            continue
        before, after = as_str(change.get("fromHash")), as_str(change.get("toHash"))
        kind = as_str(change.get("type"))
        data: dict[str, Any] = dict(ref)
        put(
            data,
            sha=after,
            before=before,
            after=after,
            created=(kind == "ADD") if kind else (before == ZERO_SHA if before else None),
            deleted=(kind == "DELETE") if kind else (after == ZERO_SHA if after else None),
            author=_who(body.get("actor")),
        )
        out.append(data)
    return out


def _pull_request(body: dict[str, Any]) -> dict[str, Any]:
    pr = body.get("pullrequest") if isinstance(body.get("pullrequest"), dict) else body.get("pullRequest")
    if not isinstance(pr, dict):
        raise ProviderError("Bitbucket pull request payload has no 'pullrequest' object")
    data: dict[str, Any] = {}
    if "source" in pr or "destination" in pr:  # Cloud
        put(
            data,
            number=as_int(pr.get("id")),
            title=as_str(pr.get("title")),
            base=as_str(dig(pr, "destination", "branch", "name")),
            head=as_str(dig(pr, "source", "branch", "name")),
            sha=as_str(dig(pr, "source", "commit", "hash")),
            state=as_str(pr.get("state")),
            author=_who(pr.get("author")),
            url=as_str(dig(pr, "links", "html", "href")),
        )
    else:  # Data Center
        links = as_list(dig(pr, "links", "self"))
        put(
            data,
            number=as_int(pr.get("id")),
            title=as_str(pr.get("title")),
            base=first_text(dig(pr, "toRef", "displayId")),
            head=first_text(dig(pr, "fromRef", "displayId")),
            sha=as_str(dig(pr, "fromRef", "latestCommit")),
            state=as_str(pr.get("state")),
            author=_who(dig(pr, "author", "user")),
            url=as_str(dig(links[0], "href")) if links else None,
        )
    if "state" in data:
        data["merged"] = data["state"] == "MERGED"
    return data


def _commit_status(body: dict[str, Any]) -> dict[str, Any]:
    status = as_dict(body.get("commit_status"))
    if not status:
        raise ProviderError("Bitbucket commit status payload has no 'commit_status' object")
    refname = as_str(status.get("refname"))
    data: dict[str, Any] = {}
    put(
        data,
        state=as_str(status.get("state")),
        name=as_str(status.get("name")),
        key=as_str(status.get("key")),
        sha=as_str(dig(status, "commit", "hash")),
        branch=refname,
        ref=f"refs/heads/{refname}" if refname else None,
        url=as_str(status.get("url")),
    )
    return data


def normalise(event_name: str, body: dict, headers: Mapping[str, str] | None = None) -> list[Event]:
    """Events for one Bitbucket delivery; ``event_name`` is the ``X-Event-Key`` value.

    A body without the header is read by its own ``eventKey`` (Data Center puts it there).
    """
    body = need_body(body, "Bitbucket")
    key = (event_name.strip() if isinstance(event_name, str) else "") or as_str(body.get("eventKey")) or ""
    if not key:
        raise ProviderError("Bitbucket event key is missing (the X-Event-Key header)")
    name, action = event_type(key)
    common = {
        "delivery": header(headers, "X-Request-UUID") or header(headers, "X-Request-Id"),
        "action": action,
        "repo": _repo(body),
        "sender": _who(body.get("actor")),
    }
    if name == "push":
        # by the body's shape: a rule test's "given bitbucket.push" names no edition
        changes = _dc_changes(body) if isinstance(body.get("changes"), list) else _cloud_changes(body)
        if not changes:
            raise ProviderError(f"Bitbucket {key} payload lists no changed branch or tag")
        return [webhook_event("bitbucket", name, body, headers, common, c) for c in changes]
    if name == "pull_request":
        return [webhook_event("bitbucket", name, body, headers, common, _pull_request(body))]
    if name == "commit_status":
        primary = webhook_event("bitbucket", name, body, headers, common, _commit_status(body))
        f = primary.data
        ci = ci_data("bitbucket", body, headers, _CI_STATE.get(f.get("state")),
                     pipeline=first_text(f.get("name"), f.get("key")), repo=f.get("repo"), ref=f.get("ref"),
                     branch=f.get("branch"), sha=f.get("sha"), url=f.get("url"))
        return event_pair(primary, ci)
    return [webhook_event("bitbucket", name, body, headers, common)]


EVENTS = {
    "push": (
        {"ref": STR, "branch": STR, "tag": STR, "sha": STR, "before": STR, "after": STR, "forced": BOOL,
         "created": BOOL, "deleted": BOOL, "author": STR, "message": STR, "commits": INT},
        "a branch or tag changed (repo:push, Data Center repo:refs_changed): one event per changed ref",
    ),
    "pull_request": (
        {"number": INT, "title": STR, "base": STR, "head": STR, "sha": STR, "state": STR, "merged": BOOL,
         "author": STR, "url": STR},
        "activity on a pull request (`action`: created, updated, approved, fulfilled, rejected...)",
    ),
    "commit_status": (
        {"state": STR, "name": STR, "key": STR, "sha": STR, "ref": STR, "branch": STR, "url": STR},
        "a build status on a commit was created or updated (SUCCESSFUL, FAILED, STOPPED, INPROGRESS)",
    ),
}

KNOWN_EVENTS = frozenset(
    """
    push pull_request commit_status fork updated transfer commit_comment_created
    issue_created issue_updated issue_comment_created forked modified comment_added
    comment_edited comment_deleted mirror_synchronized
    """.split()
)
"""Event types of the documented Cloud and Data Center event keys; the checker warns about any other."""

PROVIDER = Provider(
    name="bitbucket",
    title="Bitbucket (Cloud and Data Center)",
    route="/bitbucket",
    doc="Bitbucket Cloud and Data Center webhooks; the event is the X-Event-Key header",
    events=EVENTS,
    normaliser=normalise,
    verifications=(Verification("secret", "hmac", "X-Hub-Signature"),),
    event_headers=("X-Event-Key",),
    event_from_body=True,
    delivery_headers=("X-Request-UUID", "X-Request-Id"),
    known_events=KNOWN_EVENTS,
    ci_events=frozenset({"commit_status"}),
    ref_events=frozenset({"push", "commit_status"}),
    push_events=frozenset({"push"}),
    field_hints={
        "files": "Bitbucket sends no list of changed files with a push (its commits carry no paths); "
                 "watch a clone with a git source (git.push has files), or filter inside the action",
    },
)
