"""The event catalogue (SPEC §4) as data.

Every trigger a rule can name, ``SOURCE.EVENT``, has a set of typed fields. The checker
uses this table to reject unknown fields (with a "did you mean" hint), to type-check
comparisons and placeholders, and to know which options a ``source KIND ...``
declaration takes; the compiler uses ``listener`` to decide which manifest source a rule
needs. Nothing here imports a server or watcher library: ``triggerc check`` stays fast.

Types are plain strings (:data:`STR`, :data:`LIST_STR`, ...), so they print as they are
written in messages and serialise as they are.

Three kinds of field path exist:

* a typed catalogue field (``branch``, ``sha``, ``labels``);
* a path under a *raw* prefix, for sources that carry a raw body: anything under
  ``payload`` is untyped (:data:`ANY`); ``headers.NAME`` and ``query.NAME`` are strings
  (bare ``headers`` / ``query`` are maps);
* a path below a :data:`MAP` field (``inputs.sha`` on ``run.completed``), which is
  untyped.

``github`` and ``gitlab`` are *open*: any event name the provider may send is allowed
(the checker warns about one it does not know), and an event the catalogue does not
describe has the source's common fields. ``SOURCE.*`` has the fields common to every
event of the source.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Iterable, Mapping

STR = "str"
INT = "int"
NUMBER = "number"
BOOL = "bool"
DURATION = "duration"
TIME = "time"
LIST_STR = "list[str]"
MAP = "map"
ANY = "any"
SECRET = "secret"
"""Option type only: the value names a ``secret`` declaration."""

_EMPTY: Mapping[str, str] = MappingProxyType({})


@dataclass(frozen=True)
class EventSpec:
    """One trigger ``source.name`` and its typed fields (name -> type string)."""

    source: str
    name: str
    fields: Mapping[str, str] = field(hash=False)
    doc: str = ""

    @property
    def trigger(self) -> str:
        return f"{self.source}.{self.name}"


@dataclass(frozen=True)
class SourceSpec:
    """One source kind: its events, options and the manifest listener that serves it.

    ``open_events``: an event name not in ``events`` is allowed (``github``, ``gitlab``).
    ``raw``: untyped field prefixes this source's events carry (``payload``, ``headers``,
    ``query``). ``options``: option name -> type for ``source KIND opt=value``.
    ``listener``: the key under the manifest's ``sources`` (``""`` for internal sources).
    ``common``: the fields every event of the source has (what ``SOURCE.*`` and an
    unknown event of an open source get).
    """

    name: str
    events: Mapping[str, EventSpec] = field(hash=False)
    open_events: bool = False
    raw: frozenset[str] = frozenset()
    options: Mapping[str, str] = field(default_factory=lambda: _EMPTY, hash=False)
    listener: str = ""
    doc: str = ""
    common: Mapping[str, str] = field(default_factory=lambda: _EMPTY, hash=False)


def _freeze(fields: Mapping[str, str]) -> Mapping[str, str]:
    return MappingProxyType(dict(fields))


def _intersection(field_sets: Iterable[Mapping[str, str]]) -> dict[str, str]:
    """The fields (with the same type) present in every one of ``field_sets``."""
    sets = list(field_sets)
    if not sets:
        return {}
    first, rest = sets[0], sets[1:]
    return {k: t for k, t in first.items() if all(s.get(k) == t for s in rest)}


def _source(
    name: str,
    events: Mapping[str, tuple[Mapping[str, str], str]],
    *,
    common: Mapping[str, str] | None = None,
    open_events: bool = False,
    raw: Iterable[str] = (),
    options: Mapping[str, str] | None = None,
    listener: str = "",
    doc: str = "",
) -> SourceSpec:
    """Build a SourceSpec; every event gets ``common`` first, then its own fields.

    Without an explicit ``common``, the common fields are those all events share.
    """
    specs: dict[str, EventSpec] = {}
    for ev, (own, ev_doc) in events.items():
        merged = {**(common or {}), **own}
        specs[ev] = EventSpec(source=name, name=ev, fields=_freeze(merged), doc=ev_doc)
    shared = dict(common) if common is not None else _intersection(s.fields for s in specs.values())
    return SourceSpec(
        name=name,
        events=MappingProxyType(specs),
        open_events=open_events,
        raw=frozenset(raw),
        options=_freeze(options or {}),
        listener=listener,
        doc=doc,
        common=_freeze(shared),
    )


# --- file -------------------------------------------------------------------------------

_FILE_FIELDS = {"path": STR, "name": STR, "ext": STR, "change": STR, "paths": LIST_STR}

_FILE = _source(
    "file",
    {
        "created": (_FILE_FIELDS, "a file was created under a watched root"),
        "modified": (_FILE_FIELDS, "a file's content changed"),
        "deleted": (_FILE_FIELDS, "a file was deleted"),
        "changed": (_FILE_FIELDS, "any of created, modified, deleted (see `change`)"),
    },
    options={"root": STR, "ignore": LIST_STR},
    listener="file",
    doc="file-system changes; `path` is relative to the root with `/` separators",
)

# --- git --------------------------------------------------------------------------------

_GIT_FIELDS = {
    "repo": STR,
    "ref": STR,
    "branch": STR,
    "tag": STR,
    "before": STR,
    "after": STR,
    "sha": STR,
    "forced": BOOL,
    "author": STR,
    "author_email": STR,
    "message": STR,
    "files": LIST_STR,
    "commits": INT,
}

_GIT = _source(
    "git",
    {
        "push": (_GIT_FIELDS, "a branch moved forward or was forced"),
        "merge": (_GIT_FIELDS, "a branch's new head has two or more parents"),
        "tag": (_GIT_FIELDS, "a tag was created or moved"),
        "branch_created": (_GIT_FIELDS, "a branch was created"),
        "branch_deleted": (_GIT_FIELDS, "a branch was deleted"),
    },
    options={"poll": DURATION},
    listener="git",
    doc="ref updates of local repositories, watched without hooks",
)

# --- http -------------------------------------------------------------------------------

_HTTP_FIELDS = {
    "method": STR,
    "path": STR,
    "headers": MAP,
    "query": MAP,
    "payload": ANY,
    "text": STR,
    "remote": STR,
}

_HTTP = _source(
    "http",
    {
        "request": (_HTTP_FIELDS, "any HTTP request on a rule's route"),
        "get": (_HTTP_FIELDS, "a GET request"),
        "post": (_HTTP_FIELDS, "a POST request"),
        "put": (_HTTP_FIELDS, "a PUT request"),
        "patch": (_HTTP_FIELDS, "a PATCH request"),
        "delete": (_HTTP_FIELDS, "a DELETE request"),
    },
    raw=("payload", "headers", "query"),
    options={"path": STR, "token": SECRET, "hmac": SECRET, "header": STR, "host": STR, "port": INT},
    listener="http",
    doc="plain HTTP requests; a rule pins its route with `path`",
)

# --- github -----------------------------------------------------------------------------

_WEBHOOK_COMMON = {"delivery": STR, "action": STR, "repo": STR, "sender": STR, "payload": ANY, "headers": MAP}

_PUSH_FIELDS = {
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

_GITHUB = _source(
    "github",
    {
        "push": (_PUSH_FIELDS, "commits pushed to a branch, or a tag or branch created or deleted"),
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
            },
            "activity on a pull request (`action`: opened, closed, labeled, synchronize...)",
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
        "ping": ({"zen": STR, "hook_id": INT}, "sent once when a webhook is created"),
    },
    common=_WEBHOOK_COMMON,
    open_events=True,
    raw=("payload", "headers"),
    options={"path": STR, "secret": SECRET},
    listener="http",
    doc="GitHub webhooks; the event name is the X-GitHub-Event header",
)

KNOWN_GITHUB_EVENTS: frozenset[str] = frozenset(
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

# --- gitlab -----------------------------------------------------------------------------

_GITLAB_PUSH_FIELDS = {k: t for k, t in _PUSH_FIELDS.items() if k != "forced"}

_GITLAB = _source(
    "gitlab",
    {
        "push": (_GITLAB_PUSH_FIELDS, "commits pushed to a branch (X-Gitlab-Event: Push Hook)"),
        "tag_push": (_GITLAB_PUSH_FIELDS, "a tag was created or deleted (Tag Push Hook)"),
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
    },
    common=_WEBHOOK_COMMON,
    open_events=True,
    raw=("payload", "headers"),
    options={"path": STR, "token": SECRET},
    listener="http",
    doc="GitLab webhooks; the event is the body's object_kind (X-Gitlab-Event names it too)",
)

KNOWN_GITLAB_EVENTS: frozenset[str] = frozenset(
    """
    push tag_push issue note merge_request wiki_page pipeline build deployment
    feature_flag release emoji member subgroup access_token
    """.split()
)
"""GitLab ``object_kind`` values; the checker may warn about any other."""

# --- ci ---------------------------------------------------------------------------------

_CI = _source(
    "ci",
    {
        "completed": (
            {
                "provider": STR,
                "pipeline": STR,
                "status": STR,
                "repo": STR,
                "ref": STR,
                "branch": STR,
                "tag": STR,
                "sha": STR,
                "url": STR,
                "payload": ANY,
                "headers": MAP,
            },
            "a CI pipeline finished: status is success, failure, cancelled or skipped",
        ),
    },
    raw=("payload", "headers"),
    options={"path": STR, "token": SECRET, "hmac": SECRET, "header": STR},
    listener="http",
    doc="CI completions from GitHub, GitLab or a generic JSON POST",
)

# --- schedule ---------------------------------------------------------------------------

_SCHEDULE = _source(
    "schedule",
    {"tick": ({"time": TIME, "scheduled": TIME, "rule": STR}, "an `every` or `cron` schedule fired")},
    listener="schedule",
    doc="time-based triggers",
)

# --- run --------------------------------------------------------------------------------

_RUN_FIELDS = {
    "rule": STR,
    "action": STR,
    "status": STR,
    "exit_code": INT,
    "duration": DURATION,
    "inputs": MAP,
    "run_id": INT,
    "event_id": STR,
}

_RUN = _source(
    "run",
    {
        "completed": (_RUN_FIELDS, "a run of another rule finished, whatever its status"),
        "failed": (_RUN_FIELDS, "a run of another rule failed or timed out"),
    },
    doc="runs of rules, to chain one rule to another (internal: no listener)",
)


CATALOGUE: dict[str, SourceSpec] = {
    s.name: s for s in (_FILE, _GIT, _HTTP, _GITHUB, _GITLAB, _CI, _SCHEDULE, _RUN)
}
"""Every source kind by name."""


def get_source(name: str) -> SourceSpec | None:
    """The source called ``name``, or None."""
    return CATALOGUE.get(name)


def get_event(source: str, name: str) -> EventSpec | None:
    """The trigger ``source.name``, or None if there is no such trigger.

    ``name == "*"`` gives the fields common to every event of the source. For an open
    source (github, gitlab), an event the catalogue does not describe gets the source's
    common fields.
    """
    src = CATALOGUE.get(source)
    if src is None:
        return None
    if name == "*":
        return EventSpec(source=source, name="*", fields=src.common, doc=f"any {source} event")
    spec = src.events.get(name)
    if spec is None and src.open_events and name:
        spec = EventSpec(source=source, name=name, fields=src.common, doc=f"{source} event {name!r}")
    return spec


def field_type(source: str, event: str, path: tuple[str, ...]) -> str | None:
    """The type of the dotted field ``path`` on ``source.event``, or None if it has none.

    Under a raw prefix: ``payload...`` is ANY; ``headers.x`` / ``query.x`` are STR and the
    bare prefix a MAP (a header or query value is a string, so nothing lies below it).
    Below a MAP or ANY catalogue field, every path is ANY.
    """
    spec = get_event(source, event)
    if spec is None or not path:
        return None
    head, rest = path[0], path[1:]
    src = CATALOGUE[source]
    if head in src.raw:
        if head == "payload":
            return ANY
        if not rest:
            return MAP
        return STR if len(rest) == 1 else None
    typ = spec.fields.get(head)
    if typ is None or not rest:
        return typ
    return ANY if typ in (MAP, ANY) else None


def field_names(source: str, event: str) -> list[str]:
    """Every top-level field name of ``source.event`` (sorted), for "did you mean" hints."""
    spec = get_event(source, event)
    if spec is None:
        return []
    names = set(spec.fields)
    names.update(CATALOGUE[source].raw)
    return sorted(names)


__all__ = [
    "STR", "INT", "NUMBER", "BOOL", "DURATION", "TIME", "LIST_STR", "MAP", "ANY", "SECRET",
    "EventSpec", "SourceSpec", "CATALOGUE", "KNOWN_GITHUB_EVENTS", "KNOWN_GITLAB_EVENTS",
    "get_source", "get_event", "field_type", "field_names",
]
