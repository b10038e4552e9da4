"""The provider record and what every provider module shares (SPEC §13).

A webhook provider is one module under :mod:`triggerlang.providers` holding one
:class:`Provider`: its catalogue entries (event names, typed fields, docs), default route,
verification schemes, the headers that name the event and the delivery, its normaliser,
and which of its events derive ``ci.completed``. The registry
(:mod:`triggerlang.providers`) lists the modules; the checker, the manifest, the HTTP
source, ``triggerc match --PROVIDER``, rule tests' ``given P.E from "file.json"`` and the
dashboard read the records and name no provider themselves.

Shape of a normaliser's result
    A list of events. The provider's own event comes first (source = the provider's name,
    type = the event name). When the payload reports a finished CI run, a derived
    ``ci.completed`` event follows it, with the same ``time`` (:func:`event_pair`). A
    completion whose conclusion is missing or not one the provider documents gives no
    ``ci.completed`` rather than a guessed status.

Field conventions (every provider)
    * A field that does not apply is *absent* from ``data`` (not ``null``): a push to a tag
      has ``tag`` and no ``branch``; ``has branch`` is then false.
    * ``branch`` comes from ``refs/heads/X``, ``tag`` from ``refs/tags/X``.
    * ``payload`` is the whole raw body (the same object, not a copy); ``headers`` is a
      dict with lower-case names, present only when headers were given. Headers that carry
      credentials (:data:`CREDENTIAL_HEADERS`; query parameters, :data:`CREDENTIAL_PARAMS`)
      keep their name but their value is replaced by ``"<redacted>"``: event data is journaled and shown on the dashboard, and secrets
      must never be.
    * ``delivery`` is the provider's delivery header.
    * Only JSON values go into ``data``.

Errors
    A body that is not a JSON object, an unknown event name that cannot be determined, or
    a missing required part (``ref`` of a push, ``pull_request`` of a pull_request event,
    ...) raises :class:`ProviderError` with a one-line message. Optional parts of the wrong
    type are ignored; nothing here raises KeyError or TypeError.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, Callable, Iterable, Iterator, Mapping

from ..events import Event
from ..spec import ANY, EMPTY, MAP, SECRET, STR, SourceSpec, make_source

ZERO_SHA = "0" * 40
"""The ``before``/``after`` of a ref that did not exist before / no longer exists."""

CI_SOURCE = "ci"
"""The source of the ``ci.completed`` events that CI completions of every provider derive."""

REDACTED = "<redacted>"
CREDENTIAL_HEADERS = frozenset({
    "authorization", "proxy-authorization", "cookie", "x-gitlab-token",
    # API keys and tokens by the names well-known APIs give them (Sentry's, OpenTelemetry's
    # and GitHub's log masking go further, by pattern; these are exact names, so a header
    # like X-Event-Key or X-Request-Id is never hidden from rules)
    "x-api-key", "api-key", "x-apikey", "apikey", "x-api-token", "x-auth-token", "x-access-token",
    "x-token", "private-token", "x-vault-token", "x-functions-key", "ocp-apim-subscription-key",
    "x-goog-api-key", "x-amz-security-token", "x-csrf-token", "x-xsrf-token",
})
"""Headers whose value is a credential sent as plain text, on any route: always redacted
(the name stays in ``headers``, its value is ``<redacted>``), whether the route checks it
or not: a sender may send a key the rules do not use, and the journal keeps it for ever."""

CREDENTIAL_PARAMS = frozenset({
    "token", "access_token", "refresh_token", "id_token", "auth", "key", "api_key", "apikey", "api-key",
    "secret", "client_secret", "password", "passwd", "pass", "hook_token", "webhook_token",
    # signed URLs (OpenTelemetry's url.query defaults, AWS's and Google's presigned URLs)
    "sig", "signature", "x-amz-signature", "x-amz-credential", "x-amz-security-token", "x-goog-signature",
    "awsaccesskeyid",
})
"""Query parameters whose value is a credential (``?token=``, ``?access_token=``,
``?api_key=``), compared in lower case: always redacted from an http event's ``query``, the
name kept. A route's own ``query=`` parameter is left out of it altogether."""

CI_STATUSES = ("success", "failure", "cancelled", "skipped")
"""The four ``ci.completed`` statuses."""

CI_STATUS: dict[str, str] = {
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


def as_str(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def as_int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def as_bool(value: Any) -> bool | None:
    return value if isinstance(value, bool) else None


def as_dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def dig(obj: Any, *keys: str) -> Any:
    """``obj[k1][k2]...`` or None when any step is missing or not an object."""
    for key in keys:
        if not isinstance(obj, dict):
            return None
        obj = obj.get(key)
    return obj


def first_text(*values: Any) -> str | None:
    """The first value that is a non-empty string."""
    for value in values:
        if isinstance(value, str) and value:
            return value
    return None


def put(data: dict[str, Any], **fields: Any) -> None:
    """Set each field whose value is not None (absent means "does not apply")."""
    for key, value in fields.items():
        if value is not None:
            data[key] = value


def need_object(body: dict[str, Any], key: str, what: str) -> dict[str, Any]:
    value = body.get(key)
    if not isinstance(value, dict):
        raise ProviderError(f"{what} payload has no '{key}' object")
    return value


def need_text(body: dict[str, Any], key: str, what: str) -> str:
    value = body.get(key)
    if not isinstance(value, str) or not value:
        raise ProviderError(f"{what} payload has no '{key}' string")
    return value


def need_body(body: Any, what: str) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise ProviderError(f"{what} payload must be a JSON object, not {json_kind(body)}")
    return body


def json_kind(value: Any) -> str:
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


def _header_values(headers: Mapping[str, str], name: str) -> Iterator[str]:
    """Each value of header ``name`` (case-insensitive, repeats kept), stripped."""
    wanted = name.lower()
    return (str(value).strip() for key, value in headers.items() if isinstance(key, str) and key.lower() == wanted)


def header(headers: Mapping[str, str] | None, name: str) -> str | None:
    """The value of header ``name`` (case-insensitive), stripped; None if absent or empty."""
    if not headers:
        return None
    return next(_header_values(headers, name), None) or None


def single_header(headers: Mapping[str, str] | None, name: str, *, event: bool = False,
                  spaced: bool = False) -> str | None:
    """The value of a header that must say one thing (which event, which delivery), as
    :func:`header` reads it; ``ValueError`` naming the header when it comes more than once
    with different values (Starlette's ``Headers`` keep repeats).

    Decision: an ambiguous event type or delivery id is refused (400), never guessed. The
    first value is what most servers would keep, the last what a proxy that appends
    would, and a guess either way runs the wrong rules or defeats redelivery dedupe.
    Repeats with one value are not ambiguous and are taken.

    ``event``: the header names an event. A comma-joined value (``push, issues``: what a
    proxy makes of two headers, RFC 9110 §5.3) is refused the same way when its items
    differ (``push, push`` is ``push``), and a value with whitespace inside is refused
    unless ``spaced`` (GitLab's ``Push Hook``): no provider's event name holds a comma,
    and only GitLab's hold spaces, so such a value would be journaled as an event no rule
    can match. Delivery ids are opaque (a sender's own ``Idempotency-Key`` may hold a
    comma) and are taken as they are.
    """
    if not headers:
        return None
    values = list(_header_values(headers, name))
    distinct = list(dict.fromkeys(values))
    if len(distinct) > 1:
        raise ValueError(f"the {name} header is sent {len(values)} times with different values "
                         f"({_shown(distinct)}): ambiguous, send it once")
    value = distinct[0] if distinct else ""
    if event and "," in value:
        items = [x for x in dict.fromkeys(part.strip() for part in value.split(",")) if x]
        if len(items) > 1:
            raise ValueError(f"the {name} header names {len(items)} events ({_shown(items)}), as a proxy makes "
                             f"of two headers: ambiguous, send one event per delivery")
        value = items[0] if items else ""
    if not value:
        return None
    if event and not spaced and any(c.isspace() for c in value):
        raise ValueError(f"the {name} header {value[:60]!r} is not an event name (it holds whitespace)")
    return value


def _shown(values: list[str]) -> str:
    return ", ".join(repr(v[:60] + ("..." if len(v) > 60 else "")) for v in values[:3])


def redact_params(params: dict[str, Any]) -> dict[str, Any]:
    """``params`` (a query string's fields) with the value of each credential of
    :data:`CREDENTIAL_PARAMS` (any case) replaced by ``<redacted>``, in place; the names
    stay, so a rule can still test that one was sent."""
    for name in params:
        if name.lower() in CREDENTIAL_PARAMS:
            params[name] = REDACTED
    return params


def headers_data(headers: Mapping[str, str] | None) -> dict[str, str] | None:
    """Headers as stored in event data: lower-case names, credentials redacted."""
    if headers is None:
        return None
    out: dict[str, str] = {}
    for key, value in headers.items():
        name = str(key).lower()
        out[name] = REDACTED if name in CREDENTIAL_HEADERS else str(value)
    return out


def ref_fields(ref: str | None) -> dict[str, str]:
    """``branch`` from ``refs/heads/X``, ``tag`` from ``refs/tags/X``; nothing otherwise."""
    if ref is None:
        return {}
    for prefix, key in (("refs/heads/", "branch"), ("refs/tags/", "tag")):
        if ref.startswith(prefix) and len(ref) > len(prefix):
            return {key: ref[len(prefix):]}
    return {}


def changed_files(commits: Iterable[Any]) -> list[str]:
    """Sorted unique union of every commit's added, modified and removed paths."""
    files: set[str] = set()
    for commit in commits:
        for key in ("added", "modified", "removed"):
            files.update(p for p in as_list(dig(commit, key)) if isinstance(p, str))
    return sorted(files)


def head_commit(commits: list[Any], head: Any, sha: str | None) -> dict[str, Any]:
    """The pushed head commit: ``head`` if given, else the commit whose id is ``sha``,
    else the last listed commit (both providers list commits oldest first)."""
    if isinstance(head, dict):
        return head
    listed = [c for c in commits if isinstance(c, dict)]
    for commit in listed:
        if sha and commit.get("id") == sha:
            return commit
    return listed[-1] if listed else {}


def push_fields(body: dict[str, Any], what: str, *, head: Any = None) -> dict[str, Any]:
    """The fields GitHub and GitLab pushes share (``ref`` is required).

    ``sha`` is ``after``; for a deleted ref ``after`` is all zeros and is kept as is, with
    ``deleted: true``. ``created`` / ``deleted`` come from the body's booleans when it has
    them (GitHub), else from an all-zero ``before`` / ``after`` (GitLab).
    ``author`` is the head commit's author username, or name when it has none;
    ``files`` the union over all listed commits; ``commits`` the number of commits.
    """
    ref = need_text(body, "ref", what)
    before, after = as_str(body.get("before")), as_str(body.get("after"))
    commits = as_list(body.get("commits"))
    top = head_commit(commits, head, after)
    author = as_dict(top.get("author"))
    data: dict[str, Any] = {"ref": ref, **ref_fields(ref)}
    created = as_bool(body.get("created"))
    deleted = as_bool(body.get("deleted"))
    put(
        data,
        sha=after,
        before=before,
        after=after,
        forced=as_bool(body.get("forced")),
        created=created if created is not None else (before == ZERO_SHA if before else None),
        deleted=deleted if deleted is not None else (after == ZERO_SHA if after else None),
        author=first_text(author.get("username"), author.get("name")),
        author_email=first_text(author.get("email")),
        message=as_str(top.get("message")),
    )
    data["files"] = changed_files(commits)
    data["commits"] = len(commits)
    return data


def label_names(labels: Any, key: str) -> list[str]:
    return [name for name in (dig(label, key) for label in as_list(labels)) if isinstance(name, str)]


def event_pair(primary: Event, ci: dict[str, Any] | None) -> list[Event]:
    if ci is None:
        return [primary]
    return [primary, Event(source=CI_SOURCE, type="completed", data=ci, time=primary.time)]


def ci_data(
    provider: str,
    body: dict[str, Any],
    headers: Mapping[str, str] | None,
    conclusion: Any,
    **fields: Any,
) -> dict[str, Any] | None:
    """``ci.completed`` data, or None when ``conclusion`` is not a final status."""
    status = CI_STATUS.get(conclusion) if isinstance(conclusion, str) else None
    if status is None:
        return None
    data: dict[str, Any] = {"provider": provider, "status": status}
    put(data, **fields)
    data["payload"] = body
    put(data, headers=headers_data(headers))
    return data


Handler = Callable[[dict[str, Any]], dict[str, Any]]
"""Body -> the event-specific fields of one event type."""

CIDeriver = Callable[[dict[str, Any], dict[str, Any], "Mapping[str, str] | None"], "dict[str, Any] | None"]
"""(body, the provider event's data, headers) -> ``ci.completed`` data, or None."""


# --- the record -------------------------------------------------------------------------

WEBHOOK_COMMON = {"delivery": STR, "action": STR, "repo": STR, "sender": STR, "payload": ANY, "headers": MAP}
"""The fields every webhook event has (a provider may declare others as its ``common``)."""

Normaliser = Callable[[str, dict, "Mapping[str, str] | None"], "list[Event]"]
"""(event name, parsed JSON body, headers or None) -> events; raises ProviderError."""


@dataclass(frozen=True)
class Verification:
    """One way a route of this provider is protected.

    ``option`` is the ``source`` option that turns it on (``secret=``, ``token=``...);
    ``scheme`` a scheme of :data:`triggerlang.providers.verify.SCHEMES`; ``header`` the
    header written to the manifest (None: the scheme's own); ``custom_header``: the
    ``header=`` option of the source declaration replaces it; ``query_option``: the
    declaration's ``query=NAME`` moves the secret to that query parameter (scheme ``query``);
    ``header_scheme``: the declaration's ``header=NAME``, when it names another header than
    ``header``, makes it that scheme on that header (``source http token=S header="X-Token"``:
    the header's value is the secret, scheme ``token``, where ``Authorization`` would carry
    ``Bearer <secret>``).
    """

    option: str
    scheme: str
    header: str | None = None
    custom_header: bool = False
    query_option: bool = False
    header_scheme: str | None = None


@dataclass(frozen=True, eq=False)
class Provider:
    """Everything triggerlang knows about one webhook provider (see the module docstring).

    ``events``: event name -> (own typed fields, doc); every event also has ``common``.
    ``known_events``: the names the checker accepts without a warning (TRG207) when
    ``open_events`` (any name the provider may send is a legal trigger).
    ``event_headers``: the headers naming the event, first present wins (a header sent
    twice with different values, or naming two events joined by a comma, is refused:
    :func:`single_header`); ``event_names_spaced``: its values may hold spaces; with
    ``event_from_body`` a delivery without one is still read (the normaliser names the
    event from the body); ``fixed_event``: the provider has one event and no header.
    ``delivery_headers``: the headers whose value is the redelivery key, first present wins;
    ``delivery_per_route``: that value is the sender's own (an ``Idempotency-Key`` a CI job
    makes up, ``build-42``), unique only among its deliveries, so the key holds the route
    too: two routes' ``build-42`` are two deliveries (a provider's delivery GUID is unique
    across its routes).
    ``ci_events``: events that may derive ``ci.completed``; ``ci_route`` says when a rule
    on ``ci.completed`` starts this provider's route: ``"declared"`` (only when a
    ``source NAME`` declaration is present) or ``"always"``.
    ``ref_events`` / ``push_events``: for test events built from fields, ``ref`` and
    ``branch``/``tag`` complete each other (and on pushes ``sha`` and ``after``).
    ``ping_event``: answered ``200`` rather than ``202`` (the sender's settings page shows it).
    ``read_body``: (headers, raw body) -> the JSON bytes, for a provider with another
    encoding (GitHub's form-encoded deliveries); ValueError if unreadable.
    ``field_hints``: a field the provider never sends, and why (TRG203's hint).
    """

    name: str
    title: str
    route: str
    doc: str
    events: Mapping[str, tuple[Mapping[str, str], str]]
    normaliser: Normaliser
    verifications: tuple[Verification, ...] = ()
    event_headers: tuple[str, ...] = ()
    event_from_body: bool = False
    fixed_event: str | None = None
    event_names_spaced: bool = False
    delivery_headers: tuple[str, ...] = ()
    delivery_per_route: bool = False
    common: Mapping[str, str] = field(default_factory=lambda: WEBHOOK_COMMON)
    known_events: frozenset[str] = frozenset()
    open_events: bool = True
    raw: tuple[str, ...] = ("payload", "headers")
    ci_events: frozenset[str] = frozenset()
    ci_route: str = "declared"
    ref_events: frozenset[str] = frozenset()
    push_events: frozenset[str] = frozenset()
    ping_event: str | None = None
    read_body: Callable[[Mapping[str, str], bytes], bytes] | None = None
    field_hints: Mapping[str, str] = field(default_factory=lambda: EMPTY)

    @cached_property
    def options(self) -> dict[str, str]:
        """``source NAME`` options: ``path``, each verification's option, ``header`` if used."""
        opts = {"path": STR}
        for v in self.verifications:
            opts[v.option] = SECRET
            if v.custom_header or v.header_scheme:
                opts["header"] = STR
        return opts

    @cached_property
    def spec(self) -> SourceSpec:
        """This provider's catalogue entry (its webhooks are served by the ``http`` listener)."""
        return make_source(
            self.name, self.events, common=self.common, open_events=self.open_events, raw=self.raw,
            options=self.options, listener="http", doc=self.doc, known_events=self.known_events,
            route=self.route, field_hints=self.field_hints,
        )

    def event_name(self, headers: Mapping[str, str] | None) -> str:
        """The event a delivery names; ValueError when a required header is missing, or
        repeated with different values (:func:`single_header`)."""
        if self.fixed_event is not None:
            return self.fixed_event
        for name in self.event_headers:
            value = single_header(headers, name, event=True, spaced=self.event_names_spaced)
            if value:
                return value
        if self.event_from_body or not self.event_headers:
            return ""
        raise ValueError(f"missing {self.event_headers[0]} header")

    def delivery_id(self, headers: Mapping[str, str] | None) -> str | None:
        """The sender's id of a delivery: the first delivery header present, or None;
        ValueError when it is repeated with different values (:func:`single_header`)."""
        for name in self.delivery_headers:
            value = single_header(headers, name)
            if value:
                return value
        return None

    def delivery_key(self, headers: Mapping[str, str] | None, route: str | None = None) -> str | None:
        """``"<provider>:<id>"`` from the first delivery header present (``"<provider>:<route>:<id>"``
        when ``delivery_per_route`` and the route is given), or None."""
        value = self.delivery_id(headers)
        if not value:
            return None
        return f"{self.name}:{route}:{value}" if self.delivery_per_route and route else f"{self.name}:{value}"

    def normalise(self, event_name: str, body: Any, headers: Mapping[str, str] | None = None) -> list[Event]:
        """Events for one delivery; ``body`` may be parsed JSON or raw bytes / text."""
        if isinstance(body, (bytes, bytearray, str)):
            try:
                body = json.loads(body)
            except (ValueError, UnicodeDecodeError) as exc:
                raise ProviderError(f"{self.name} payload is not valid JSON: {exc}") from None
        return self.normaliser(event_name, body, headers)


def webhook_event(
    provider: str,
    name: str,
    body: dict[str, Any],
    headers: Mapping[str, str] | None,
    fields: Mapping[str, Any],
    own: dict[str, Any] | None = None,
) -> Event:
    """One provider event: the common ``fields`` (None values left out), the event's
    ``own`` fields, then ``payload`` and ``headers``."""
    data: dict[str, Any] = {}
    put(data, **fields)
    if own:
        data.update(own)
    data["payload"] = body
    put(data, headers=headers_data(headers))
    return Event(source=provider, type=name, data=data)
