"""The HTTP source: webhooks (every provider of the registry) and generic HTTP routes (SPEC §4, §9, §13).

One Starlette application, served by uvicorn, answers every route of the manifest's
``sources.http`` section::

    {"host": "127.0.0.1", "port": 8080, "max_body": 10485760,
     "routes": [{"path": "/github", "kind": "github", "verify": {"scheme": "github", "secret": "gh"}},
                {"path": "/hooks/*", "kind": "http", "methods": ["POST"],
                 "verify": {"scheme": "bearer", "secret": "tok"}}, ...]}

``verify["secret"]`` is a secret *name*; its value is looked up in ``ctx.secrets`` when
the application is built, and a missing or empty value is a configuration error then (a
route that would reject every delivery, or accept every one, is worse than a server that
does not start).

How a request is handled, in this order (each step answers before the next one runs):

1. **Route** (404, 405; :mod:`triggerlang.sources.routes`). An exact route path wins over a glob; among globs the one with
   the longest literal prefix wins, then the earlier route. Globs are those of the rules
   (:mod:`triggerlang.compile.patterns`, one translator for both): ``*``, ``?`` and a
   class (``[abc]``, ``[!abc]``) stay inside one path segment, ``**`` crosses segments,
   ``\\[`` is a literal ``[``; a route whose glob does not compile (an unclosed ``[``) is
   a configuration error, as it is a TRG302 for the checker. Of the routes
   that match the path, the first that allows the method is used; if none does, 405 with
   an ``Allow`` header. Webhook routes (a route whose kind is a provider of
   :mod:`triggerlang.providers`) take POST only; an http route
   takes its ``methods`` (all methods when absent). A trailing slash is forgiven
   (``/github/`` reaches ``/github``) because webhook senders do not follow redirects.
2. **Client** (403). A route with ``allow`` (``source http allow=["10.0.0.0/8"]``,
   adnanh/webhook's ``ip-whitelist``) refuses a client outside its addresses and ranges,
   before one byte of the body is read. The client is the peer, or the ``X-Forwarded-For``
   address when the peer is a loopback proxy (below).
   **Size** (413). A ``Content-Length`` over ``max_body`` is refused before one byte of
   the body is read; otherwise the body is read chunk by chunk from ``request.stream()``
   and refused as soon as the running total passes the limit, so a huge (or chunked,
   length-less) body is never held in memory.
3. **Verification** (401), on the raw bytes, before any parsing, always with
   :func:`hmac.compare_digest`, by the route's scheme of
   :data:`triggerlang.providers.verify.SCHEMES` (``github``, ``gitea``, ``hmac``,
   ``token``, ``bearer``, ``standard``; the table there says what each reads). A route's
   ``verify["header"]`` names another header for the schemes that allow it (``hmac``,
   ``token``, ``bearer``). The headers a route verifies, every signature or token header
   a scheme reads (:data:`~triggerlang.providers.verify.VERIFY_HEADERS`, verified on this
   route or not) and the credential headers of
   :data:`~triggerlang.providers.base.CREDENTIAL_HEADERS` (``Authorization``, ``Cookie``,
   ``X-Api-Key``, ``X-Auth-Token``...) on every route, are then replaced by
   ``<redacted>`` in everything passed on (event ``headers``, the provider normaliser):
   the journal, runs and the dashboard never see a token, and never a signature either.
   A route whose token comes as a query parameter (scheme ``query``: ``source http
   token=S query="token"``; or as that top-level field of a JSON object body, or of an
   urlencoded form body, Slack's) has that
   parameter left out of the event's ``query`` and ``payload``; the parameters, and the
   fields of a form body, named in :data:`~triggerlang.providers.base.CREDENTIAL_PARAMS`
   (``token``, ``access_token``, ``api_key``...) keep their name with the value
   ``<redacted>`` (in ``text`` too).
4. **Parsing** (400). Invalid JSON (``NaN``/``Infinity`` included, since they would make
   the journal write non-standard JSON), a body that is not a JSON object, a missing
   event header (the provider's ``event_headers``), an event-type or delivery-id header
   sent twice with different values (``X-GitHub-Event: push`` and ``X-GitHub-Event:
   issues``; :func:`~triggerlang.providers.base.single_header`: ambiguous, so refused
   rather than guessed; Standard Webhooks' ``webhook-id``, ``webhook-timestamp`` and
   ``webhook-signature`` too, before the signature is checked: a scheme's ``single``),
   an event header naming two events joined by a comma (``X-GitHub-Event: push,
   issues``, what a proxy makes of two headers) or holding whitespace (GitLab's ``Push Hook`` excepted), or a
   :class:`~triggerlang.providers.ProviderError`. Anything raised
   while parsing is a 400: bad input never gets a 5xx.
5. **Submit** (202). Every event the normaliser returns is handed to ``ctx.submit``;
   the answer ``202 {"event_id", "runs"}`` is sent only once every ``submit`` has
   returned, i.e. the events are committed to the journal. ``event_id`` is the first
   (provider) event's id and ``runs`` the union of every event's runs. An exception from
   ``submit`` is the one 5xx: ``503`` with ``Retry-After`` when the store cannot take it
   now (:class:`~triggerlang.runtime.store.StoreUnavailable`: a database refusing or
   hanging, a full disk, a read-only journal, a store a stop closed), else ``500``; a generic message either way,
   the error in the log.

Decisions worth knowing:

- **Delivery keys.** The provider event is submitted with the provider's delivery key
  (``github:<X-GitHub-Delivery>``, ``gitlab:<Idempotency-Key>``: its
  ``delivery_headers``); an event derived
  from the same delivery (the ``ci.completed`` of a ``workflow_run``) gets that key
  suffixed with ``/<source.type>`` (and ``#<n>`` for the n-th event of one trigger: a
  Bitbucket push of three branches is three events). So a redelivery creates no second run of any, and
  a redelivery after a crash between the two commits still completes the pair. When
  every event of a delivery was a duplicate the answer is ``200 {..., "duplicate": true}``.
- **GitHub ping** (a provider's ``ping_event``) is journaled like any event (it shows in ``triggerc events`` and on the
  dashboard that the hook reached us, and ``on github.ping`` is a legal rule) and answered
  ``200 {"ok": true, "zen", "event_id", "runs"}``: 200 rather than 202 because GitHub's
  hook settings page shows the ping's answer, and nothing is queued for a ping without a rule.
- **Other encodings**: a provider's ``read_body`` turns the raw body into JSON (GitHub's
  ``application/x-www-form-urlencoded`` deliveries carry it in the ``payload`` field; the
  signature is over the raw form body, as GitHub signs it).
- **Event names** come from the provider's ``event_headers`` (first present wins); a
  provider with ``event_from_body`` (GitLab) takes a delivery without one and names the
  event from the body (``object_kind``).
- **Generic http routes** emit ONE event per request: source ``http``, type the
  lower-case method (``post``). A rule on ``http.post`` matches it, and the
  compiler/matcher treats a rule on ``http.request`` as matching every method, so there
  is no second ``request`` event to journal. ``data``: ``method`` (upper case), ``path``,
  ``headers`` (lower-case names; repeated headers joined with ``", "``), ``query`` (a
  repeated key keeps its last value), ``payload`` (the parsed JSON body whatever the
  ``Content-Type``, since ``curl -d`` says form; else the fields of a form or multipart
  body, :mod:`triggerlang.sources.forms`; else ``null``),
  ``text`` (the body as UTF-8, ``errors="replace"``) and ``remote`` (the client host).
  No delivery key (a generic sender has no standard delivery id), except on a route
  verified by ``standard=`` (Standard Webhooks): its ``webhook-id`` is the delivery key, so
  a retried message creates no second run; its signature covers the id and the timestamp,
  and a timestamp more than 5 minutes off is refused (401), so an old message cannot be
  replayed after its key has been forgotten.
- **``POST /events``** (``triggerc emit``) is accepted from loopback peers only
  (127.0.0.0/8, ``::1``, and IPv4-mapped loopback), else 403. The body is
  ``{source, type, data}`` checked by :meth:`Event.from_json`, and refused (400) as
  ``emit`` refuses it: ``file.changed``, a field its name contradicts, an event a closed
  source does not have (``git.pushh``: no rule can name it) or ``SOURCE.*``. When the body carries its
  own ``id``, ``emit:<id>`` is the delivery key, so a script that retries an emit does
  not run anything twice.
- **Peers behind a proxy.** ``X-Forwarded-For`` is honoured from loopback peers only (an
  explicit uvicorn setting, not the ``FORWARDED_ALLOW_IPS`` environment variable): behind
  a local reverse proxy the client is then the real remote, so ``/events`` is not opened
  to the internet by a proxy that says who it forwards for. A tunnel on loopback that does
  not send that header looks local: don't expose ``/events`` through one.
- **Errors** are JSON ``{"error": "..."}`` for every route this module owns.
- **``reply="text"``** on ``source http`` (adnanh/webhook's ``response-message``; a Slack
  slash command shows the answer to its user): a delivery that started a run is answered
  ``200`` with that text as ``text/plain`` (still only once journaled), the event id in
  ``X-Triggerlang-Event``; one that started none gets the usual ``202`` JSON.
- **Logging.** One debug line per request: method, path (never the query string), status
  and duration. Secret values and signatures are never logged; uvicorn's access log is
  off and uvicorn is not allowed to reconfigure logging (``log_config=None``).

Serving: :class:`HttpSource` binds the listening sockets itself before handing them to
uvicorn, so that a port already in use is an :class:`OSError` with a clear message raised
by ``start()`` (uvicorn would log the error and call ``sys.exit``, which escapes an
asyncio task and kills the event loop). Port 0 asks for an ephemeral port; the bound port
is ``self.port`` after ``start()``. uvicorn's signal capture is switched off: signals
belong to the runtime, which calls ``stop()``. A rules reload that changes routes but not
the host or port calls ``reconfigure()``, which swaps the application behind the open
socket: no delivery is refused while the rules change, and ``--port 0`` keeps its port.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import json
import logging
import re
import socket
import ssl
import time
from functools import partial
from typing import Any, Callable, Iterable, Mapping, Sequence
from urllib.parse import parse_qsl

from starlette.applications import Starlette
from starlette.datastructures import Headers
from starlette.middleware import Middleware
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Match, Route

from .. import defaults
from ..events import Event, name_conflict, type_note, whole_number
from ..providers import REDACTED, get_provider
from ..providers.base import CREDENTIAL_PARAMS, redact_params, single_header
from ..providers.verify import SCHEMES, address_allowed, client_address
from ..providers.verify import check as verify_check
from .base import Source, SourceContext, Submitted
from .forms import FORM, MAX_FIELDS, fields, form_payload, hide_fields, media_type
from .http_lean import Incoming, Reply, lean_protocol
from .routes import RESERVED_PATHS, HttpRoute, RouteTable, hide_value, parse_routes

START_DEADLINE = 15.0  # seconds to wait for uvicorn to be serving
GRACEFUL_SHUTDOWN = 5.0  # seconds uvicorn waits for in-flight requests on stop()


# --------------------------------------------------------------------------- verification


def verify_request(route: HttpRoute, headers: Mapping[str, str], body: bytes, query: bytes = b"",
                   sent: list[str] | None = None) -> str | None:
    """None if the request passes the route's check, else why not (no secret in the text).
    ``headers`` must answer ``get`` for lower-case names (Starlette's Headers do);
    ``query`` is the raw query string (a route whose token comes as ``?token=``);
    ``sent``, that token's values as :func:`_param_values` read them, if the caller has
    them already (the handler does: it refuses two different ones first)."""
    if route.scheme is None:
        return None
    if SCHEMES[route.scheme].reads_query:
        if sent is None:
            sent = _param_values(route.param or "token", headers, body, query)
        return verify_check(route.scheme, route.secret, {route.param or "token": sent[-1]} if sent else {}, body,
                            route.param)
    return verify_check(route.scheme, route.secret, headers, body, route.header)


def _param_values(name: str, headers: Mapping[str, str], body: bytes, query: bytes) -> list[str]:
    """Every value of the parameter ``name`` a request sends: in its query string, then in
    the body, as a top-level string field of a JSON object (Rocket.Chat's and Mattermost's
    outgoing webhooks send their ``token`` so; a body that parses as JSON is JSON, as
    everywhere) or a field of an urlencoded form (Slack's slash commands, Mattermost's
    default); a route's ``query=`` token is read from any of them, and sent more than once
    with different values it is refused (400) rather than guessed."""
    found = [v for k, v in parse_qsl(query.decode("latin-1"), keep_blank_values=True) if k == name] if query else []
    try:
        obj = parse_json(body)
    except ValueError:
        pass
    else:
        if isinstance(obj, dict) and isinstance(obj.get(name), str):
            found.append(obj[name])
        return found
    if media_type(headers) == FORM:
        with contextlib.suppress(ValueError):  # more fields than any form has: none read
            found += [v for k, v in parse_qsl(body.decode("utf-8", errors="replace"), keep_blank_values=True,
                                               max_num_fields=MAX_FIELDS) if k == name]
    return found


# --------------------------------------------------------------------------- helpers


class BodyTooLarge(Exception):
    pass


def _error(status: int, message: str, headers: Mapping[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status, headers=headers)


async def read_body(request: Request, limit: int) -> bytes:
    """The request body, read chunk by chunk; BodyTooLarge as soon as it passes ``limit``."""
    length = whole_number(request.headers.get("content-length") or "")
    if length is not None and length > limit:
        raise BodyTooLarge(f"body of {length} bytes is over the limit of {limit} bytes")
    buf = bytearray()
    async for chunk in request.stream():
        if len(buf) + len(chunk) > limit:
            raise BodyTooLarge(f"body is over the limit of {limit} bytes")
        buf += chunk
    return bytes(buf)


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def _finite_float(text: str) -> float:
    value = float(text)
    if value in (float("inf"), float("-inf")):  # 1e999: JSON, but not a number we can write back
        raise ValueError(f"the number {text[:20]} is out of range")
    return value


_STRICT = json.JSONDecoder(parse_constant=_reject_constant, parse_float=_finite_float)
_NOT_UTF8_START = (b"\0", b"\xef", b"\xfe", b"\xff")  # a NUL or the first byte of a BOM


def parse_json(body: bytes) -> Any:
    """Strict JSON (no NaN/Infinity, no number that overflows to it); ValueError if not JSON.
    UTF-8, -16 or -32, as ``json.loads`` reads bytes."""
    if not body.strip():
        raise ValueError("the body is empty")
    try:
        if not isinstance(body, (bytes, bytearray)):
            text = body
        elif body[:1] not in _NOT_UTF8_START and body[1:2] != b"\0":  # what detect_encoding says then
            text = body.decode("utf-8", "surrogatepass")
        else:
            text = body.decode(json.detect_encoding(body), "surrogatepass")
        return _STRICT.decode(text)
    except RecursionError:
        raise ValueError("the JSON is nested too deeply") from None
    except ValueError as e:  # Python's own words for a 4,301-digit integer name one of its functions
        if not isinstance(e, json.JSONDecodeError) and "integer string conversion" in str(e):
            raise ValueError("an integer of more than 4,300 digits, too long to read") from None
        raise


def header_text(value: bytes) -> str:
    """A header value as text: UTF-8, else latin-1 when its bytes are not valid UTF-8.

    HTTP leaves a header value's bytes beyond ASCII opaque (RFC 9110 §5.5), and Starlette
    reads them as latin-1, a byte a character: ``é`` sent in UTF-8 became ``Ã©``, so a
    rule's ``headers.x-name="café"`` never matched and the journal kept the mojibake.
    Senders write UTF-8 in practice, and Go servers (adnanh/webhook) hand the bytes on as
    they came, which its rules then read as UTF-8 strings; so UTF-8 it is. Bytes that are
    not valid UTF-8 are read as latin-1 as before: each byte stays a character, nothing is
    lost. Signatures and tokens are checked on the bytes as sent (providers/verify.py reads
    Starlette's latin-1 text back into them), never on this text."""
    try:
        return value.decode("utf-8")
    except UnicodeDecodeError:
        return value.decode("latin-1")


class TextHeaders(Headers):
    """Starlette's headers with their values read by :func:`header_text` (UTF-8, else
    latin-1): the headers a delivery's events carry, its provider reads (the event, the
    delivery id) and rules match. Names are ASCII (lower case) either way."""

    def values(self) -> list[str]:  # type: ignore[override]
        return [header_text(v) for _, v in self._list]

    def items(self) -> list[tuple[str, str]]:  # type: ignore[override]
        return [(k.decode("latin-1"), header_text(v)) for k, v in self._list]

    def getlist(self, key: str) -> list[str]:
        name = key.lower().encode("latin-1")
        return [header_text(v) for k, v in self._list if k == name]

    def __getitem__(self, key: str) -> str:
        name = key.lower().encode("latin-1")
        for k, v in self._list:
            if k == name:
                return header_text(v)
        raise KeyError(key)


def _redact(headers: Headers, names: frozenset[str]) -> TextHeaders:
    """The headers as events carry them (:class:`TextHeaders`), each of ``names`` (the
    credentials) ``<redacted>``."""
    raw = [(k, REDACTED.encode() if k.decode("latin-1") in names else v) for k, v in headers.raw]
    return TextHeaders(raw=raw)


def _redact_form(payload: dict[str, Any], text: str, token_param: str | None, kind: str) -> str:
    """A form body's credentials, as a query string's are: the route's own token field
    (``query=``) left out of ``payload``, each field of :data:`CREDENTIAL_PARAMS` kept with
    the value ``<redacted>``; ``text`` (the body as sent) with those values replaced by
    ``<redacted>`` too. The new ``text``."""
    hidden = {k: v for k, v in payload.items() if k == token_param or k.lower() in CREDENTIAL_PARAMS}
    if not hidden:
        return text
    if token_param is not None:
        payload.pop(token_param, None)
    redact_params(payload)
    if kind == FORM:
        return hide_fields(text, lambda name: name == token_param or name.lower() in CREDENTIAL_PARAMS, REDACTED)
    for value in hidden.values():  # multipart: each value where it stands in the parts
        if isinstance(value, str):
            text = hide_value(text, value)
    return text


def _header_dict(headers: Headers) -> dict[str, str]:
    out: dict[str, str] = {}
    for kb, vb in headers.raw:  # keys are lower case; repeated headers are joined
        k, v = kb.decode("latin-1"), header_text(vb)
        out[k] = f"{out[k]}, {v}" if k in out else v
    return out


def is_loopback(host: str | None) -> bool:
    addr = client_address(host)
    return addr is not None and addr.is_loopback


def _union(lists: Iterable[Sequence[int]]) -> list[int]:
    seen: dict[int, None] = {}
    for runs in lists:
        for r in runs:
            seen.setdefault(r, None)
    return list(seen)


def _log_path(scope: Any) -> str:
    """The path as sent (still percent-encoded, so no newline can forge a log line), no query."""
    raw = scope.get("raw_path")
    return raw.decode("latin-1").split("?", 1)[0] if isinstance(raw, bytes) else repr(scope.get("path"))


class _RequestLog:
    """ASGI middleware: one debug line per request (method, path without query, status)."""

    def __init__(self, app: Any, log: logging.Logger) -> None:
        self.app, self.log = app, log

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http" or not self.log.isEnabledFor(logging.DEBUG):
            await self.app(scope, receive, send)
            return
        t0, status = time.monotonic(), [0]

        async def send_(message: Any) -> None:
            if message["type"] == "http.response.start":
                status[0] = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_)
        finally:
            ms = (time.monotonic() - t0) * 1000
            self.log.debug("%s %s -> %s (%.1f ms)", scope["method"], _log_path(scope), status[0] or "-", ms)


# --------------------------------------------------------------------------- the application


def _event_keys(events: Sequence[Event], key: str | None) -> list[str | None]:
    """The delivery key of each event of one delivery: the first event gets ``key``, an
    event derived from it ``key/<source.type>``, and a further event of the same trigger
    (a Bitbucket push of several refs) ``key/<source.type>#<n>`` (n = 2, 3...): stable
    across redeliveries, distinct within one."""
    if key is None:
        return [None] * len(events)
    keys: list[str | None] = []
    seen: dict[str, int] = {}
    for i, event in enumerate(events):
        n = seen[event.trigger] = seen.get(event.trigger, 0) + 1
        base = key if i == 0 else f"{key}/{event.trigger}"
        keys.append(base if n == 1 else f"{key}/{event.trigger}#{n}")
    return keys


class _AnyMethod:
    """An endpoint as a plain ASGI app: Starlette then routes every method to it.

    (A function endpoint with ``methods=None`` means GET only in Starlette; the endpoints
    here answer 405 themselves, with the same JSON error shape as every other answer.)
    """

    def __init__(self, handler: Any) -> None:
        self.handler = handler

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        response = await self.handler(Request(scope, receive))
        await response(scope, receive, send)


def _problem(status: int, message: str, headers: Mapping[str, str] | None = None) -> Reply:
    return Reply(status, {"error": message}, headers)


class _Handlers:
    """The endpoints, bound to one config and context (no module-level state).

    The webhook path is written once, as steps that both front ends call in the same
    order: :meth:`route` (404, 405), :meth:`refuse_early` (413 on ``Content-Length``, 503
    back-pressure), the body read with the size limit, then :meth:`handle` (401, 400, the
    events, ``submit``) which answers at once or with a future of the answer.
    """

    def __init__(self, config: Mapping[str, Any], ctx: SourceContext, extra_routes: Sequence[BaseRoute]) -> None:
        self.ctx = ctx
        self.log = ctx.log.getChild("http")
        self.max_body = int(config.get("max_body") or defaults.HTTP_MAX_BODY)
        self.table = RouteTable(parse_routes(config, ctx.secrets))
        self.extra_routes = [r for r in extra_routes if not isinstance(r, Fallback)]
        self.fallbacks = [r for r in extra_routes if isinstance(r, Fallback)]
        self._busy_log: tuple[float | None, int] = (None, 0)  # (when the last back-pressure line was logged, refusals not logged)
        self._busy_flush: asyncio.TimerHandle | None = None  # logs those refusals once their second is over
        self._fast: dict[str, bool] = {}

    def fast_path(self, path: str) -> bool:
        """Whether the fast front end answers requests for ``path``: a path of the route
        table that neither a built-in route nor an extra route (the dashboard) claims."""
        fast = self._fast.get(path)
        if fast is None:
            fast = bool(self.table.candidates(path)) and path not in RESERVED_PATHS and not any(
                r.matches({"type": "http", "path": path, "method": "GET"})[0] != Match.NONE for r in self.extra_routes)
            if len(self._fast) > 4096:
                self._fast.clear()
            self._fast[path] = fast
        return fast

    # -- built-in routes

    async def healthz(self, request: Request) -> Response:
        if request.method not in ("GET", "HEAD"):
            return _error(405, f"{request.method} is not allowed on /healthz", {"Allow": "GET, HEAD"})
        return JSONResponse({"ok": True})

    async def readyz(self, request: Request) -> Response:
        """``200 {"ok": true}`` while a delivery would be accepted; ``503 {"ok": false,
        "error": why}`` while it would be refused: back-pressure (with ``Retry-After``), or
        the store not answering (``ctx.not_ready``). ``/healthz`` says that ``serve`` is up;
        this says whether it is worth sending it work, for a load balancer's health check
        or a Kubernetes readiness probe (a node cut off from the database leaves the
        rotation instead of answering ``503`` to its share of the deliveries)."""
        if request.method not in ("GET", "HEAD"):
            return _error(405, f"{request.method} is not allowed on /readyz", {"Allow": "GET, HEAD"})
        overloaded = self.ctx.overloaded
        wait = overloaded() if overloaded is not None else None
        if wait is not None:
            return JSONResponse({"ok": False, "error": "too many runs are waiting (--max-backlog)"}, status_code=503,
                                headers={"Retry-After": str(int(wait))})
        not_ready = self.ctx.not_ready
        why = await not_ready() if not_ready is not None else None
        if why is not None:
            return JSONResponse({"ok": False, "error": why}, status_code=503)
        return JSONResponse({"ok": True})

    async def events(self, request: Request) -> Response:
        if request.method != "POST":
            return _error(405, f"{request.method} is not allowed on /events", {"Allow": "POST"})
        inc = _incoming(request)
        if not is_loopback(inc.client):
            return self.reject(inc, "/events", 403, "POST /events is accepted from loopback clients only").response()
        busy = self.backpressure(inc, "/events")
        if busy is not None:
            return busy.response()
        try:
            inc.body = await read_body(request, self.max_body)
        except BodyTooLarge as e:
            return self.reject(inc, "/events", 413, str(e)).response()
        except ClientDisconnect:
            return Response(status_code=400)
        try:
            obj = parse_json(inc.body)
            event = Event.from_json(obj)
        except Exception as e:  # ValueError from either; anything else is bad input too
            return self.reject(inc, "/events", 400, f"invalid event: {e}").response()
        if event.source == "file" and event.type == "changed":  # it would be journaled and match nothing
            return self.reject(inc, "/events", 400, f"invalid event: {type_note(event)}").response()
        from ..check.checker import no_such_event

        why = no_such_event(event.source, event.type)  # git.pushh: no rule can name it (as emit refuses it)
        if why is not None:
            return self.reject(inc, "/events", 400, f"invalid event: {why}").response()
        conflict = name_conflict(event)   # (as emit refuses it)
        if conflict is not None:
            return self.reject(inc, "/events", 400, f"invalid event: {conflict[0]}").response()
        key = f"emit:{obj['id']}" if isinstance(obj.get("id"), str) and obj["id"] else None
        return await _answer(partial(self.accept, [event], key, inc=inc, route="/events"))

    # -- webhook and generic routes (the Starlette front end)

    async def dispatch(self, request: Request) -> Response:
        t0 = time.monotonic()
        inc = _incoming(request)
        route = self.route(inc, request.scope)
        if isinstance(route, Reply):
            return await self.fallback(request, inc) or route.response()
        reply = self.refuse_early(route, inc)
        if reply is None:
            try:
                inc.body = await read_body(request, self.max_body)
            except BodyTooLarge as e:
                reply = self.reject(inc, route.path, 413, str(e))
            except ClientDisconnect:
                reply = Reply(400, {"error": "the client disconnected before its body was in"})
            else:
                reply = await _reply(partial(self.handle, route, inc))
        self.delivered(route, inc, reply, t0)
        return reply.response()

    async def fallback(self, request: Request, inc: Incoming) -> Response | None:
        """A :class:`Fallback`'s answer to a request no route took (None: the JSON 404/405).
        Never on a webhook route's path: its 405 stays the route's."""
        if not self.fallbacks or self.table.candidates(inc.path):
            return None
        for r in self.fallbacks:
            if r.matches(request.scope)[0] == Match.FULL:
                answer = r.endpoint(request)
                return await answer if asyncio.iscoroutine(answer) else answer
        return None

    # -- the steps, shared with the fast front end

    def route(self, inc: Incoming, scope: Any = None) -> "HttpRoute | Reply":
        """The route for the request, or its 404/405 answer."""
        path, method = inc.path, inc.method
        route = self.table.pick(path, method)
        if route is not None:
            return route
        found = self.table.candidates(path)
        if found:
            allow = sorted(set().union(*(r.methods or () for r in found)))
            return _problem(405, f"{method} is not allowed on {path}", {"Allow": ", ".join(allow)})
        scope = scope if scope is not None else {"type": "http", "path": path, "method": method}
        allow = allowed_methods(self.extra_routes, scope)
        if allow is not None:  # the dashboard's path with another method
            return _problem(405, f"{method} is not allowed on {path}", {"Allow": allow})
        return _problem(404, f"no route for {path}")

    def refuse_early(self, route: HttpRoute, inc: Incoming) -> Reply | None:
        """Before the body is read: 403 for a client outside the route's ``allow`` ranges,
        413 for a ``Content-Length`` over the limit, 503 when the runs' backlog is over its
        bound. None: go on."""
        if route.allow is not None and not address_allowed(inc.client, route.allow):
            return self.reject(inc, route.path, 403, f"{inc.client or 'this client'} is not allowed on {route.path}")
        length = whole_number(inc.headers.get("content-length") or "")
        if length is not None and length > self.max_body:
            return self.reject(inc, route.path, 413,
                               f"body of {length} bytes is over the limit of {self.max_body} bytes")
        return self.backpressure(inc, route.path)

    def backpressure(self, inc: Incoming | None, route: str) -> Reply | None:
        """``503`` with ``Retry-After`` while the engine's backlog of queued runs is over its
        bound (``serve --max-backlog``): nothing of the delivery is journaled, the sender
        delivers it again later. Logged once a second at most, with the count: the first
        refusal at once, those of the following second in one line when it is over (also
        when no refusal comes after them, so that every refusal is counted in the log)."""
        overloaded = self.ctx.overloaded
        wait = overloaded() if overloaded is not None else None
        if wait is None:
            return None
        last, count = self._busy_log
        now = time.monotonic()
        remote = (inc.client if inc else None) or "-"
        if last is None or now - last >= 1.0:
            self._log_refused(count + 1, now, wait, route, remote)
        else:
            self._busy_log = (last, count + 1)
            if self._busy_flush is None:
                self._busy_flush = asyncio.get_running_loop().call_later(
                    last + 1.0 - now, self._flush_refused, wait, route, remote)
        return _problem(503, "too many runs are waiting: not accepted, try again later",
                        {"Retry-After": str(int(wait))})

    def _log_refused(self, count: int, now: float, wait: float, route: str, remote: str) -> None:
        """The back-pressure line: ``count`` refusals since the last one (at ``now``)."""
        last = self._busy_log[0]
        since = "" if last is None else f" in the last {min(now - last, 999):.0f}s"
        self.log.warning("refused %d %s with 503%s: too many runs are waiting (--max-backlog); "
                         "senders are asked to retry after %.0fs", count,
                         "delivery" if count == 1 else "deliveries", since, wait,
                         extra={"route": route, "status": 503, "remote": remote})
        self._busy_log = (now, 0)

    def _flush_refused(self, wait: float, route: str, remote: str) -> None:
        """The refusals counted since the last line, once their second is over."""
        self._busy_flush = None
        count = self._busy_log[1]
        if count:
            self._log_refused(count, time.monotonic(), wait, route, remote)

    def handle(self, route: HttpRoute, inc: Incoming, answer: "Callable[[Reply], None]") -> None:
        """Verify (401), read (400) and submit the delivery; ``answer(reply)`` is called once,
        at once or when the events are committed."""
        for name in SCHEMES[route.scheme].single if route.scheme is not None else ():
            try:
                single_header(inc.headers, name)
            except ValueError as e:  # two timestamps, two ids: which did the sender sign?
                answer(self.reject(inc, route.path, 400, str(e)))
                return
        sent = None
        if route.param is not None:
            sent = _param_values(route.param, inc.headers, inc.body, inc.query)
            if len(set(sent)) > 1:  # which one is the token? (its values are never said: credentials)
                answer(self.reject(inc, route.path, 400, f"?{route.param}= is sent {len(sent)} times with "
                                                         "different values: ambiguous, send it once"))
                return
        why = verify_request(route, inc.headers, inc.body, inc.query, sent)
        if why is not None:
            inc.verify = "failed"
            answer(self.reject(inc, route.path, 401, why))
            return
        inc.verify = "ok" if route.scheme is not None else "none"
        headers = _redact(inc.headers, route.redacted_headers)
        if route.kind == "http":
            key = None
            if route.scheme == "standard":  # verified above: webhook-id is there, and said once
                key = f"standard:{route.path}:{single_header(inc.headers, 'webhook-id')}"
            if route.reply is not None:
                answer = partial(_replied, route.reply, answer)
            self.accept([self._http_event(inc, headers, route.json_fields, route.param)], key, answer, inc=inc,
                        route=route.path)
            return
        self._webhook(route, inc, headers, answer)

    def delivered(self, route: HttpRoute, inc: Incoming, reply: Reply, t0: float) -> None:
        """A route answered a delivery: hand it to the delivery history and the metrics
        (``SourceContext.record_delivery``, :mod:`triggerlang.runtime.deliveries`). Called
        once per request by either front end, whatever the answer; never the body."""
        record = self.ctx.record_delivery
        if record is None:
            return
        status = reply.status
        content = reply.content if isinstance(reply.content, dict) else {}
        reason = content.get("error") if status >= 400 else None
        if isinstance(reason, str) and len(reason) > 200:
            reason = reason[:200] + "..."
        record({"at": time.time(), "route": route.path, "method": inc.method, "status": status,
                "verify": inc.verify, "reason": reason, "latency": time.monotonic() - t0, "remote": inc.client,
                "delivery_id": _delivery_id(route, inc.headers),
                "event_id": content.get("event_id"),
                "trigger": inc.trigger, "duplicate": bool(content.get("duplicate"))})

    def reject(self, inc: Incoming, route: str, status: int, reason: str) -> Reply:
        """Answer a refused delivery (400, 401, 403, 413) and log it at INFO: the route, the
        status, the reason and the remote address, with the same as structured fields. The
        reason says what was wrong, never with a secret, a signature or the body (a value
        quoted from a payload is at most a short JSON literal: it is cut at 200
        characters). The path is the route's, never the query string."""
        remote = inc.client or "-"
        said = reason if len(reason) <= 200 else reason[:200] + "..."
        said = said.encode("unicode_escape").decode("ascii")  # one log line, whatever it holds
        self.log.info("rejected a delivery to %s from %s: %d %s", route, remote, status, said,
                      extra={"route": route, "status": status, "reason": said, "remote": remote,
                             "method": inc.method})
        return _problem(status, reason)

    def _http_event(self, inc: Incoming, headers: Headers, json_fields: tuple[str, ...] = (),
                    token_param: str | None = None) -> Event:
        """The event of a request on an http route; ``token_param``, the query parameter that
        held the route's token, is left out, and a credential parameter
        (:data:`~triggerlang.providers.base.CREDENTIAL_PARAMS`) is kept as ``<redacted>``
        (a secret is never journaled; a rule can still test that it was sent)."""
        text = inc.body.decode("utf-8", errors="replace")
        try:
            payload = parse_json(inc.body)
            if token_param is not None and isinstance(payload, dict) and isinstance(payload.get(token_param), str):
                text = hide_value(text, payload.pop(token_param))  # the route's token, sent in a JSON body
        except ValueError:  # a form's fields (Slack's slash commands), else null
            payload = form_payload(inc.headers, inc.body, parse_json, json_fields)
            if isinstance(payload, dict):
                text = _redact_form(payload, text, token_param, media_type(inc.headers))
        query = fields(inc.query.decode("latin-1")) if inc.query else {}
        if token_param is not None:
            query.pop(token_param, None)
        redact_params(query)
        data = {
            "method": inc.method.upper(),
            "path": inc.path,
            "headers": _header_dict(headers),
            "query": query,
            "payload": payload,
            "text": text,
            "remote": inc.client,
        }
        return Event(source="http", type=inc.method.lower(), data=data)

    def _webhook(self, route: HttpRoute, inc: Incoming, headers: Headers, answer: "Callable[[Reply], None]") -> None:
        kind = route.kind
        provider = get_provider(kind)
        try:
            payload, event_name = self._read_webhook(provider, headers, inc.body)
            key = provider.delivery_key(headers, route.path)  # ValueError: an ambiguous delivery id
            events = provider.normalise(event_name, payload, headers)
        except ValueError as e:  # ProviderError is a ValueError
            answer(self.reject(inc, route.path, 400, str(e)))
            return
        except Exception:
            self.log.warning("could not read a %s delivery", kind, exc_info=True)
            answer(self.reject(inc, route.path, 400, f"could not read this {kind} payload"))
            return
        if not events:
            answer(Reply(200, {"ok": True, "event_id": None, "runs": []}))
            return
        ping = provider.ping_event is not None and event_name == provider.ping_event
        self.accept(events, key, answer, ping=ping, zen=payload.get("zen") if ping else None, inc=inc,
                    route=route.path)

    @staticmethod
    def _read_webhook(provider: Any, headers: Headers, body: bytes) -> tuple[dict[str, Any], str]:
        event_name = provider.event_name(headers)  # ValueError: a required header is missing
        if provider.read_body is not None:
            body = provider.read_body(headers, body)
        try:
            payload = parse_json(body)
        except ValueError as e:
            hint = ""
            if media_type(headers) == FORM:  # curl -d's default
                hint = f" (it was sent as {FORM}: send JSON, with Content-Type: application/json)"
            raise ValueError(f"invalid JSON body: {e}{hint}") from None
        if not isinstance(payload, dict):
            raise ValueError("the body must be a JSON object")
        return payload, event_name

    def accept(self, events: Sequence[Event], key: str | None, answer: "Callable[[Reply], None]", *,
               ping: bool = False, zen: Any = None, inc: Incoming | None = None, route: str = "-") -> None:
        """Submit the events of one delivery (the provider's, then the derived ones, with the
        delivery keys of :func:`_event_keys`); ``answer`` gets the reply once every one is
        committed: ``202 {event_id, runs}``, ``200`` for a redelivery or a ping,
        ``503`` (or ``500``) if the journal refused."""
        if self.ctx.overloaded is not None and self.ctx.overloaded() is not None:
            # checked again now that the body is in: the deliveries whose headers came together
            # passed the first check together, but each run journaled counts against the bound
            answer(self.backpressure(inc, route))  # type: ignore[arg-type]
            return
        if inc is not None:
            inc.trigger = events[0].trigger
        then = self.ctx.submit_then
        if then is None:  # a context that only has the coroutine: a task
            task = asyncio.get_running_loop().create_task(self._accept_awaiting(events, key, ping, zen))
            task.add_done_callback(lambda t: self._answer_or_say(t, answer, route))
            return
        results: list[Any] = [None] * len(events)
        left = [len(events)]

        def one(i: int, sub: Submitted | None, error: BaseException | None) -> None:
            results[i] = error if error is not None else sub
            left[0] -= 1
            if left[0] == 0:
                answer(self._accepted(events, results, ping, zen))

        for i, (event, k) in enumerate(zip(events, _event_keys(events, key))):
            then(event, k, partial(one, i))

    def _answer_or_say(self, task: "asyncio.Task[Reply]", answer: "Callable[[Reply], None]", route: str) -> None:
        """The reply of a delivery's submission; none for one the stop cancelled while it was
        being journaled (a store that did not answer within the stop's bound): its
        connection is closed unanswered, so the sender retries. A statement the database
        had already received is committed when it answers again, as after a timeout (README:
        "No answer means not accepted"): a delivery id keeps the retry from running twice."""
        if task.cancelled():
            self.log.warning("http: a delivery to %s got no answer: the stop came before the store answered (the "
                             "sender retries; as after a timeout, it may still be journaled once the store answers)",
                             route)
            return
        answer(task.result())

    async def _accept_awaiting(self, events: Sequence[Event], key: str | None, ping: bool, zen: Any) -> Reply:
        results: list[Any] = []
        for event, k in zip(events, _event_keys(events, key)):
            try:
                results.append(await self.ctx.submit(event, delivery_key=k))
            except Exception as e:
                results.append(e)
                break
        return self._accepted(events, results, ping, zen)

    def _accepted(self, events: Sequence[Event], results: Sequence[Any], ping: bool, zen: Any) -> Reply:
        for event, r in zip(events, results):
            if isinstance(r, BaseException):
                from ..runtime.store import StoreError, StoreTimeout, StoreUnavailable

                if isinstance(r, StoreUnavailable):   # README: the store's promises, "Group commit"
                    self.log.error("could not accept event %s: %s: answered 503", event.trigger, r)
                    why = ("the store did not answer in time" if isinstance(r, StoreTimeout)
                           else "the store cannot take it now")
                    return _problem(503, f"{why}: not accepted, try again later (with the same delivery id a "
                                    "resend is harmless: if this one was journaled after all, it is answered as a "
                                    "duplicate)", {"Retry-After": str(r.retry_after)})
                if isinstance(r, StoreError):  # a corrupt journal...: the message says it all
                    self.log.error("could not accept event %s: %s", event.trigger, r)
                else:
                    self.log.error("could not submit event %s", event.trigger, exc_info=r)
                return _problem(500, "internal error: the event was not accepted, try again")
        body: dict[str, Any] = {"event_id": results[0].event_id, "runs": _union(r.runs for r in results)}
        duplicate = all(r.duplicate for r in results)
        if duplicate:
            body["duplicate"] = True
        if ping:
            return Reply(200, {"ok": True, "zen": zen, **body})
        return Reply(200 if duplicate else 202, body)


async def _reply(step: "Callable[[Callable[[Reply], None]], None]") -> Reply:
    """Run a step that answers through a callback; its reply."""
    fut: asyncio.Future[Reply] = asyncio.get_running_loop().create_future()

    def answer(reply: Reply) -> None:
        if not fut.done():
            fut.set_result(reply)

    step(answer)
    return await fut


async def _answer(step: "Callable[[Callable[[Reply], None]], None]") -> Response:
    """Run a step that answers through a callback; the Starlette response of its reply."""
    return (await _reply(step)).response()


def _replied(text: str, answer: "Callable[[Reply], None]", reply: Reply) -> None:
    """A route's ``reply=`` text as the answer to a delivery that started a run (or a
    redelivery of one): ``200 text/plain``, the event id in ``X-Triggerlang-Event``. Other
    answers (no run, a refusal, an error) stay as they are: the text says the work was
    started, so it is not sent when nothing was."""
    content = reply.content if isinstance(reply.content, dict) else {}
    if reply.status in (200, 202) and content.get("runs"):
        reply = Reply(200, content, {**(reply.headers or {}), "X-Triggerlang-Event": str(content["event_id"])},
                      text=text)
    answer(reply)


def _delivery_id(route: HttpRoute, headers: Headers) -> str | None:
    """The sender's id of a delivery, as its provider's delivery header gives it (GitHub's
    ``X-GitHub-Delivery``...), or a Standard Webhooks route's ``webhook-id``; None. Read as
    :class:`TextHeaders` read them (UTF-8), made only for a route that has such an id."""
    provider = get_provider(route.kind) if route.kind != "http" else None
    try:
        if provider is not None:
            value = provider.delivery_id(TextHeaders(raw=headers.raw))
        elif route.scheme == "standard":
            value = single_header(TextHeaders(raw=headers.raw), "webhook-id")
        else:
            return None
    except ValueError:  # sent twice with different values: the delivery was refused for it
        return None
    return value[:200] if value else None


class Fallback(Route):
    """An extra route that answers only where nothing else does: a path that no built-in
    route, extra route or webhook route has (the dashboard's own 404 page for a GET under
    ``/dashboard/`` on serve's listener). Its methods make no 405 of another method's 404,
    and it shadows no webhook route a user declared."""


def allowed_methods(routes: Sequence[BaseRoute], scope: Any) -> str | None:
    """The ``Allow`` header of a 405 (RFC 9110 requires one): the methods of the routes
    whose path matches the request's but not its method; None when no path matches."""
    partial = [r for r in routes if r.matches(scope)[0] == Match.PARTIAL]
    if not partial:
        return None
    return ", ".join(sorted(set().union(*(getattr(r, "methods", None) or () for r in partial))))


def _incoming(request: Request) -> Incoming:
    scope = request.scope
    raw = scope.get("raw_path")
    raw_path = raw.split(b"?", 1)[0] if isinstance(raw, bytes) else scope["path"].encode("utf-8", "replace")
    return Incoming(request.method, scope["path"], raw_path, scope.get("query_string") or b"", request.headers,
                    request.client.host if request.client else None)


def build_app(config: Mapping[str, Any], ctx: SourceContext, extra_routes: Sequence[BaseRoute] = ()) -> Starlette:
    """The Starlette application for one ``sources.http`` config.

    ``extra_routes`` (the dashboard, say) are tried after ``/healthz`` and ``/events`` and
    before the webhook routes. Raises ValueError on a malformed config or a missing secret.
    """
    return _build(config, ctx, extra_routes)[0]


def _build(config: Mapping[str, Any], ctx: SourceContext,
           extra_routes: Sequence[BaseRoute] = ()) -> tuple[Starlette, _Handlers]:
    h = _Handlers(config, ctx, extra_routes)
    # Every method reaches the built-in endpoints and the catch-all, which answer 405
    # themselves: Starlette's own 405 would lose to the catch-all's full match.
    app = Starlette(
        routes=[
            Route("/healthz", _AnyMethod(h.healthz)),
            Route("/readyz", _AnyMethod(h.readyz)),
            Route("/events", _AnyMethod(h.events)),
            *h.extra_routes,
            Route("/{path:path}", _AnyMethod(h.dispatch)),
        ],
        middleware=[Middleware(_RequestLog, log=h.log)],
    )
    return app, h


# --------------------------------------------------------------------------- the source


class _Swappable:
    """The ASGI app uvicorn serves: forwards to ``self.app``, which a reload replaces, so
    new routes take effect without closing the listening socket (no refused deliveries).
    ``lean`` is the same config's handlers, which the fast protocol calls."""

    app: Any = None
    lean: Any = None

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        await self.app(scope, receive, send)


def tls_context(cert: str, key: str) -> ssl.SSLContext:
    """The server's TLS context (``serve --tls-cert --tls-key``): Python's defaults for a
    server (TLS 1.2 or later, its cipher choice), the PEM chain and key loaded. OSError
    with the file and the reason when they cannot be used (missing, unreadable, not PEM,
    a key that is not the certificate's): serve then does not start."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    try:
        context.load_cert_chain(cert, key)
    except ssl.SSLError as e:
        why = {"KEY_VALUES_MISMATCH": "the key is not the certificate's"}.get(
            e.reason or "", "they are not a PEM certificate chain and its PEM private key")
        raise OSError(f"http: cannot use the TLS certificate {cert} with the key {key}: {why}") from None
    except OSError as e:
        raise OSError(f"http: cannot read the TLS certificate or key: {e.filename or cert}: "
                      f"{e.strerror or e}") from None
    return context


def _bind(host: str, port: int) -> list[socket.socket]:
    """Listening sockets for host:port (every address the name resolves to); OSError if busy."""
    infos = socket.getaddrinfo(host or None, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    socks: list[socket.socket] = []
    seen: set[tuple[Any, ...]] = set()
    try:
        for family, type_, proto, _, addr in infos:
            if (family, addr) in seen:
                continue
            seen.add((family, addr))
            if port == 0 and socks:  # one ephemeral port for every address
                addr = (addr[0], socks[0].getsockname()[1], *addr[2:])
            sock = socket.socket(family, type_, proto)
            socks.append(sock)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if family == socket.AF_INET6 and hasattr(socket, "IPV6_V6ONLY"):
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            sock.bind(addr)
            sock.setblocking(False)
    except OSError:
        for s in socks:
            s.close()
        raise
    return socks


class HttpSource(Source):
    """Serves webhooks and generic HTTP routes (see the module docstring for the contract).

    ``self.port`` is the port actually bound once ``start()`` has returned (useful with
    port 0). ``extra_routes`` are mounted beside the webhook routes (the dashboard).
    """

    kind = "http"

    def __init__(self, config: Mapping[str, Any], ctx: SourceContext, *, extra_routes: Sequence[BaseRoute] = ()) -> None:
        super().__init__(config, ctx)
        self.host, self.port = self._address(config)
        self._wanted = (self.host, self.port)  # before binding: port may be 0
        tls = (self.ctx.options or {}).get("tls")
        self.tls: tuple[str, str] | None = (str(tls[0]), str(tls[1])) if tls else None
        self._tls_context: ssl.SSLContext | None = None
        self.extra_routes = list(extra_routes)
        self.app: Starlette | None = None
        self._entry = _Swappable()
        self._server: Any = None
        self._task: asyncio.Task[None] | None = None

    def _address(self, config: Mapping[str, Any]) -> tuple[str, int]:
        """(host, port) to bind: the CLI's --host/--port win over the manifest."""
        opts = self.ctx.options or {}
        host = opts.get("host") or config.get("host") or defaults.HTTP_HOST
        port = opts.get("port")
        return host, int(port if port is not None else config.get("port", defaults.HTTP_PORT))

    async def reconfigure(self, config: Mapping[str, Any]) -> bool:
        """Serve a new config's routes without closing the socket (a rules reload).

        Returns False when that is not possible (not serving, or another host/port): the
        caller then stops and starts the source. New requests get the new routes at once;
        requests in flight finish with the old ones. ValueError on a bad config (the
        old routes keep serving).
        """
        if self._task is None or self._task.done() or self._address(config) != self._wanted:
            return False
        app, handlers = _build(config, self.ctx, self.extra_routes)
        self.config, self.app = config, app
        self._entry.app, self._entry.lean = app, handlers
        return True

    def describe(self) -> str:
        routes = ", ".join(f"{r.get('path')} ({r.get('kind', 'http')})" for r in self.config.get("routes") or ())
        # serve's /metrics is on this listener too (README: Metrics); the dashboard says where it is on a line of its own
        metrics = ", /metrics" if any(getattr(r, "path", None) == "/metrics" for r in self.extra_routes) else ""
        return f"http on {self.host}:{self.port}: {routes or 'no routes'}, /healthz, /readyz, /events{metrics}"

    async def start(self) -> None:
        import uvicorn

        class _Server(uvicorn.Server):
            # Signals belong to the runtime: it calls stop(). uvicorn would otherwise
            # replace the SIGINT/SIGTERM handlers and re-raise them when it exits.
            def capture_signals(self):  # type: ignore[no-untyped-def,override]
                return contextlib.nullcontext()

        if self._task is not None:
            raise RuntimeError("the http source is already started")
        self.app, handlers = _build(self.config, self.ctx, self.extra_routes)
        self._entry.app, self._entry.lean = self.app, handlers
        tls = tls_context(*self.tls) if self.tls else None  # OSError: a certificate or key it cannot use
        self._tls_context = tls
        try:
            socks = _bind(self.host, self.port)
        except OSError as e:
            raise OSError(
                e.errno,
                f"http: cannot listen on {self.host}:{self.port}: {e.strerror or e}"
                + (" (another server is using this port; choose one with --port)" if e.errno == errno.EADDRINUSE else ""),
            ) from None
        config = uvicorn.Config(
            self._entry,
            http=lean_protocol(self._entry) or "auto",  # webhook routes without an ASGI round trip
            host=self.host,
            port=self.port,
            log_level="warning",
            log_config=None,  # never reconfigure the program's logging
            access_log=False,  # our one debug line per request, without query strings
            lifespan="off",
            server_header=False,
            proxy_headers=True,
            forwarded_allow_ips="127.0.0.1,::1",
            timeout_graceful_shutdown=GRACEFUL_SHUTDOWN,
        )
        config.load()
        config.ssl = tls  # our context (TLS 1.2 or later, Python's defaults), not uvicorn's cipher list
        server = _Server(config)
        task = asyncio.create_task(server.serve(sockets=socks), name="triggerlang-http")
        deadline = time.monotonic() + START_DEADLINE
        while not server.started:
            if task.done():
                for s in socks:
                    s.close()
                exc = task.exception()
                raise RuntimeError(f"http: the server stopped while starting: {exc!r}") from exc
            if time.monotonic() > deadline:
                server.should_exit = server.force_exit = True
                task.cancel()
                for s in socks:
                    s.close()
                raise TimeoutError(f"http: the server did not start within {START_DEADLINE:.0f}s")
            await asyncio.wait({task}, timeout=0.01)
        self._server, self._task = server, task
        self.port = server.servers[0].sockets[0].getsockname()[1]
        self.ctx.log.info("http: listening on %s", self.url)

    def reload_certificate(self) -> bool:
        """Read the TLS certificate and key files again (``kill -USR1``: a renewed
        certificate, certbot's deploy hook): new connections get the new certificate, those
        open keep theirs. They are tried on a fresh context first, so files that cannot be
        used (half-written, a key of another certificate) leave the serving one as it was:
        OSError saying why. False when not serving TLS."""
        if self._tls_context is None or self.tls is None:
            return False
        tls_context(*self.tls)  # OSError: keep the current certificate
        self._tls_context.load_cert_chain(*self.tls)
        return True

    def _display_host(self) -> str:
        return f"[{self.host}]" if ":" in self.host else self.host

    @property
    def url(self) -> str:
        """The base URL of the running server (``http://127.0.0.1:PORT``, ``https://`` with TLS)."""
        return f"{'https' if self.tls else 'http'}://{self._display_host()}:{self.port}"

    async def stop(self) -> None:
        server, task = self._server, self._task
        if task is None:
            return
        self._server = self._task = None
        server.should_exit = True
        try:
            await asyncio.wait_for(asyncio.shield(task), timeout=GRACEFUL_SHUTDOWN + 5)
        except asyncio.TimeoutError:
            server.force_exit = True
            task.cancel()
            try:
                await task
            except (asyncio.CancelledError, Exception):
                pass
        except Exception:
            self.ctx.log.exception("http: error while stopping the server")
