"""The dashboard: a read-only web page and JSON API over the journal (issue 6).

What came in, which rules it matched, what ran: ``triggerc dashboard`` serves it on its
own, ``triggerc serve --dashboard`` mounts the same routes on the running HTTP listener.

URL layout (the same paths in both modes)
-----------------------------------------
::

    GET /dashboard/                  runs and events, newest first (filters below)
    GET /dashboard/runs/{id}         one run: inputs, timings, exit code, error, its log
    GET /dashboard/events/{id}       one event: its data, the rules it matched, its runs, and
                                     why every other rule of its source did not match
    GET /dashboard/stream            server-sent events that keep the overview live
    GET /dashboard/static/{name}     style.css, live.js
    GET /api/runs                    {"runs": [...], "next_before": id|null}
    GET /api/runs/{id}               one run, with "log" and "event"
    GET /api/events                  {"events": [...]}
    GET /api/events/{id}             one event, with "data", "runs", "not_matched"
    GET /dashboard/groups            correlation groups (SPEC §11.7): per rule, the open groups
                                     with a countdown and a chip per member, the refusals, the
                                     closed groups; live over the stream (``?groups=1``)
    GET /dashboard/groups/{id}       one group and its history
    GET /api/groups                  {"groups": [...]}; ?rule= &state= &key= &limit=
    GET /api/groups/{id}             one group with its history (admitted, replaced, absorbed...)

Standalone, ``/`` also redirects to ``/dashboard/``; inside ``serve``, ``/`` and every
other path stay with the webhook routes. The page lives under ``/dashboard/`` so that it
cannot shadow a webhook route; ``/api/...`` keeps the short paths of the issue. The API
routes are exact paths (no ``/api`` prefix is taken), and they answer GET and HEAD only:
a POST to ``/api/runs`` still reaches a webhook route of that path.

Filters (query parameters of the overview, the stream and the list endpoints): ``rule``,
``status`` (runs), ``source``, ``unmatched=1`` (events that matched no rule), ``limit``
(1..500) and ``before`` (runs with a smaller id: the next page).

Access
------
Read-only: every route is GET (and HEAD); nothing here writes to the journal. Without a
token the dashboard answers loopback clients only (403 for others), whatever address the
listener binds: ``serve`` may listen on a public address for webhooks, and the event
payloads are nobody else's business. With a token (``--token`` or
``TRIGGERLANG_DASHBOARD_TOKEN``) any client that sends ``Authorization: Bearer <token>``
or ``?token=<token>`` is let in, the token compared in constant time; without it, 401.
A token given in the query is carried on in the page's links, its form and its stream
URL (an ``EventSource`` cannot send headers), and ``Referrer-Policy: no-referrer`` keeps
it from leaking to other sites. The static files need no token: they hold no data.

Every value shown comes from the journal and is escaped (Jinja2 autoescape, and a
``Content-Security-Policy`` that allows only the dashboard's own script and style).
Webhook credentials never reach the journal (the http source redacts them) and secret
values never do either (SPEC §2); run logs are shown as written by the action.

Reading the journal
-------------------
Each request opens its own SQLite connection (:func:`~triggerlang.runtime.store.open_store`)
and closes it when done (a stream keeps one for its life); with ``--store postgresql://...``
every request borrows a connection of one shared pool instead. The journal is SQLite in WAL mode, so these readers never block
``serve``'s writer, and no state outlives a request (no module-level settings, nothing to
close when ``serve`` rebuilds its HTTP listener on a reload). Page and API handlers are
plain functions, which Starlette runs in its thread pool: a slow disk never stalls the
event loop that ``serve`` shares with the engine.

Live updates
------------
``/dashboard/stream`` polls the journal every :data:`POLL_INTERVAL` seconds and sends
``run`` and ``event`` messages whose ``data`` is JSON ``{"id", "status"?, "update",
"html"}``: ``html`` is the table row rendered by the same template as the page, so the
script (``live.js``, no build step) only inserts or replaces rows. The page tells the
stream what it already shows (``since_run``, ``since_event``, and ``open``: the runs it
shows as queued or running, ``id:status``), so a (re)connect sends exactly what changed.
An event row is re-sent (``update: true``, replace only) when one of its runs changes.
A comment line every 15 s keeps proxies from closing an idle stream.

A stream ends by itself after ``stream_lifetime`` seconds with a ``reconnect`` message,
and the script opens the next one at once (with what the page shows by then). That is
what lets ``serve`` stop promptly with a dashboard tab open: uvicorn waits for in-flight
responses (5 s in the http source) and then cancels them with an error in the log, and
an application mounted on ``serve``'s listener is not told that it is stopping. So inside
``serve`` a stream lasts 4 s (one reconnect every 4 s per open tab, which costs nothing
noticeable); standalone, where the dashboard owns its uvicorn, shutting down ends every
stream within one poll and a stream may last a minute.

Why an event matched nothing
----------------------------
The reasons are the ``--explain`` of ``triggerc match``: for each rule of the event's
source that did not match, the first condition that failed and the value the event had.
They need the rules: inside ``serve`` the engine's current rules, standalone the file
given with ``--rules`` (recompiled when it changes). They are computed against the rules
as they are *now*, which may differ from the rules the event met if the file changed.
"""

from __future__ import annotations

import asyncio
import datetime as _dt
import hmac
import json
import logging
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass, replace
from importlib import resources
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping
from urllib.parse import urlencode

from jinja2 import Environment, PackageLoader, StrictUndefined
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response, StreamingResponse
from starlette.routing import BaseRoute, Route

from ..check.catalogue import source_names
from ..compile.matcher import reason_text as why_not_text
from ..events import Event
from ..runtime.store import FINAL_STATUSES, STATUSES, Store, LOG_TAIL, StoreError as JournalError, open_store, read_log_file
from ..sources.http import is_loopback

log = logging.getLogger("triggerlang")

PREFIX = "/dashboard"
POLL_INTERVAL = 0.5  # seconds between two looks at the journal in a stream
KEEPALIVE = 15.0  # seconds between two comment lines on an idle stream
SERVE_STREAM_LIFETIME = 4.0  # seconds; under the http source's 5 s graceful shutdown
STANDALONE_STREAM_LIFETIME = 60.0
PAGE_LIMIT = 25  # rows of each table on the overview
API_LIMIT = 50
MAX_LIMIT = 500
EVENT_SCAN = 1000  # newest events searched when filtering events by rule / unmatched
STREAM_WINDOW = 100  # newest runs / events a stream compares on every poll
GROUP_STATES = ("open", "fired", "expired", "discarded", "satisfied", "rearmed")

_SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
                               "connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    "Cache-Control": "no-store",
}
# ANSI escape sequences (colours, cursor moves, OSC titles) and other control characters
# a terminal would interpret: removed from logs before they are shown.


class BadRequest(ValueError):
    """A query parameter that does not parse: 400 with this message."""


# --------------------------------------------------------------------------- the rules


class RulesView:
    """Where the explain reasons and the known rule names come from.

    The engine's current rules inside ``serve`` (it swaps its matcher on a reload), or a
    rules file (a ``.trg`` or a manifest ``.json``) recompiled whenever it changes, or
    nothing (then ``matcher()`` is None and ``note`` says why). Safe to share between the
    threads of Starlette's pool.
    """

    def __init__(self, engine: Any = None, rules_path: Path | None = None) -> None:
        self.engine = engine
        self.rules_path = Path(rules_path) if rules_path is not None else None
        self.note: str | None = None
        if engine is None and rules_path is None:
            self.note = "the dashboard was started without the rules (give them with --rules FILE)"
        self._lock = threading.Lock()
        self._stamp: tuple[int, int] | None = None
        self._manifest: dict | None = None
        self._matcher: Any = None
        self._matcher_for: dict | None = None

    def manifest(self) -> dict | None:
        if self.engine is not None:
            return getattr(self.engine, "manifest", None)
        if self.rules_path is None:
            return None
        with self._lock:
            try:
                st = self.rules_path.stat()
                stamp = (st.st_mtime_ns, st.st_size)
            except OSError as e:
                self.note = f"cannot read the rules {self.rules_path}: {e.strerror or e}"
                self._manifest = self._stamp = None
                return None
            if stamp != self._stamp:
                from ..runtime.engine import StartError
                from ..api import load_rules

                self._stamp = stamp
                try:
                    self._manifest, _ = load_rules(self.rules_path)
                    self.note = None
                except StartError as e:
                    self._manifest = None
                    self.note = f"the rules in {self.rules_path} do not compile: " + str(e).splitlines()[0]
            return self._manifest

    def matcher(self) -> Any:
        """A matcher with ``explain(event)`` for the current rules, or None."""
        manifest = self.manifest()
        if manifest is None:
            return None
        if self.engine is not None:
            m = getattr(self.engine, "matcher", None)
            if m is not None and hasattr(m, "explain"):
                return m
        with self._lock:
            if self._matcher is None or self._matcher_for is not manifest:
                from ..compile.matcher import LinearMatcher

                self._matcher, self._matcher_for = LinearMatcher(manifest["rules"]), manifest
            return self._matcher

    def names(self) -> list[str]:
        manifest = self.manifest()
        return [r["name"] for r in (manifest or {}).get("rules", [])]


# --------------------------------------------------------------------------- helpers


@dataclass(frozen=True)
class Filters:
    """The query parameters shared by the overview, the stream and the list endpoints."""

    rule: str | None = None
    status: str | None = None
    source: str | None = None
    unmatched: bool = False
    limit: int = PAGE_LIMIT
    before: int | None = None

    @classmethod
    def parse(cls, q: Mapping[str, str], default_limit: int) -> "Filters":
        def text(name: str) -> str | None:
            v = (q.get(name) or "").strip()
            return v or None

        status = text("status")
        if status is not None and status not in STATUSES:
            raise BadRequest(f"unknown status {status!r} (one of {', '.join(STATUSES)})")
        limit = _int(q.get("limit"), "limit", default_limit)
        if not 1 <= limit <= MAX_LIMIT:
            raise BadRequest(f"limit must be between 1 and {MAX_LIMIT}")
        before = _int(q.get("before"), "before", None)
        return cls(rule=text("rule"), status=status, source=text("source"),
                   unmatched=(q.get("unmatched") or "").lower() in ("1", "true", "yes", "on"),
                   limit=limit, before=before)

    def params(self, **changes: Any) -> dict[str, Any]:
        f = replace(self, **changes)
        return {"rule": f.rule, "status": f.status, "source": f.source, "unmatched": "1" if f.unmatched else None,
                "limit": None if f.limit == PAGE_LIMIT else f.limit, "before": f.before}

    @property
    def active(self) -> bool:
        return bool(self.rule or self.status or self.source or self.unmatched)

    def event_ok(self, e: dict) -> bool:
        if self.source and e["source"] != self.source:
            return False
        if self.unmatched and e["matched"]:
            return False
        return not self.rule or self.rule in e["matched"]


def _int(value: str | None, name: str, default: int | None) -> Any:
    if value is None or value.strip() == "":
        return default
    try:
        return int(value)
    except ValueError:
        raise BadRequest(f"{name} must be a whole number, not {value!r}") from None


def public_run(r: dict) -> dict:
    """A journal run dict as the API shows it (the server's file paths left out)."""
    return {k: v for k, v in r.items() if k != "log_path"}


def public_event(e: dict, data: bool = False) -> dict:
    keys = ("id", "source", "type", "time", "received_at", "delivery_key", "matched")
    out = {k: e.get(k) for k in keys}
    if data:
        out["data"] = e.get("data")
    return out


read_log = read_log_file
"""(text, truncated, exists): the end of a run's log file, without terminal escapes."""


def reason_text(r: dict) -> str:
    """One explain reason as a line, as ``triggerc match --explain`` prints it (long values cut)."""
    return why_not_text(r, limit=120)

def _when(iso: str | None) -> str:
    """An ISO 8601 time as ``YYYY-MM-DD HH:MM:SS`` in UTC (as the source gave it if it does not parse)."""
    if not iso:
        return "-"
    try:
        t = _dt.datetime.fromisoformat(iso.replace("Z", "+00:00"))
    except ValueError:
        return iso[:32]
    if t.tzinfo is not None:
        t = t.astimezone(_dt.timezone.utc)
    return t.strftime("%Y-%m-%d %H:%M:%S")


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    if seconds < 1:
        return f"{seconds * 1000:.0f} ms"
    if seconds < 60:
        return f"{seconds:.1f} s"
    m, s = divmod(int(round(seconds)), 60)
    if m < 60:
        return f"{m} m {s} s"
    h, m = divmod(m, 60)
    return f"{h} h {m} m"


def _value(v: Any, width: int | None = None) -> str:
    text = v if isinstance(v, str) else json.dumps(v, ensure_ascii=False, default=str)
    if width is not None and len(text) > width:
        text = text[: width - 1] + "\u2026"
    return text


_SUMMARY_KEYS = ("method", "path", "branch", "tag", "sha", "author", "action", "number", "workflow", "pipeline",
                 "status", "conclusion", "rule", "change", "scheduled")


def _summary(data: Any) -> str:
    """A few telling fields of an event's data, for its table row (``method=POST path=/x``)."""
    if not isinstance(data, dict):
        return ""
    parts = []
    for k in _SUMMARY_KEYS:
        v = data.get(k)
        if v is None or isinstance(v, (dict, list)):
            continue
        text = str(v)[:10] if k == "sha" else _value(v, 40)
        parts.append(f"{k}={text}")
        if len(parts) == 4:
            break
    return " ".join(parts)


def _pretty(v: Any) -> str:
    return json.dumps(v, ensure_ascii=False, indent=2, sort_keys=False, default=str)


def _environment() -> Environment:
    env = Environment(loader=PackageLoader("triggerlang.dashboard", "templates"), autoescape=True,
                      undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True)
    env.filters.update(when=_when, duration=_duration, value=_value, pretty=_pretty, summary=_summary)
    env.globals.update(statuses=STATUSES, final_statuses=FINAL_STATUSES, sources=source_names(), prefix=PREFIX)
    return env


def _static_files() -> dict[str, tuple[bytes, str]]:
    types = {".css": "text/css; charset=utf-8", ".js": "text/javascript; charset=utf-8"}
    out = {}
    for item in resources.files("triggerlang.dashboard").joinpath("static").iterdir():
        suffix = Path(item.name).suffix
        if suffix in types:
            out[item.name] = (item.read_bytes(), types[suffix])
    return out


def _sse(kind: str, payload: dict) -> str:
    return f"event: {kind}\ndata: {json.dumps(payload, ensure_ascii=True, separators=(',', ':'))}\n\n"


# --------------------------------------------------------------------------- the views


class Dashboard:
    """The dashboard's endpoints, bound to one state directory, token and rules view."""

    def __init__(self, state_dir: Path | str | None, *, token: str | None = None, rules: RulesView | None = None,
                 stream_lifetime: float = SERVE_STREAM_LIFETIME, store_url: str | None = None) -> None:
        self.state_dir = Path(state_dir) if state_dir is not None else None
        self.store_url = store_url
        self._shared: Store | None = None  # a PostgreSQL store: one pool of connections for every request
        self._shared_lock = threading.Lock()
        self.stream_lifetime = stream_lifetime
        self.closing = threading.Event()  # set when the server shuts down: streams end
        token = (token or "").strip()
        self._token = token.encode("utf-8") if token else None
        self.rules = rules or RulesView()
        self.env = _environment()
        self.static = _static_files()

    # -- access

    @property
    def requires_token(self) -> bool:
        return self._token is not None

    def _token_in_query(self, request: Request) -> str | None:
        """The query's token when it is the right one (to carry it on in links)."""
        t = request.query_params.get("token")
        if self._token is not None and t is not None and hmac.compare_digest(t.encode("utf-8"), self._token):
            return t
        return None

    def _denied(self, request: Request, api: bool) -> Response | None:
        if self._token is None:
            host = request.client.host if request.client else None
            if is_loopback(host):
                return None
            return self._error(request, 403, "the dashboard answers loopback clients only; "
                                             "start it with --token to open it to others", api)
        given = request.query_params.get("token")
        auth = request.headers.get("authorization", "")
        if auth[:7].lower() == "bearer ":
            given = auth[7:].strip()
        if given is not None and hmac.compare_digest(given.encode("utf-8"), self._token):
            return None
        resp = self._error(request, 401, "this dashboard needs its token: send Authorization: Bearer <token> "
                                         "or add ?token=<token> to the URL", api)
        resp.headers["WWW-Authenticate"] = 'Bearer realm="triggerlang dashboard"'
        return resp

    def guarded(self, handler: Callable[[Request], Any], api: bool) -> Callable[[Request], Any]:
        """``handler`` behind the access check; stays sync (thread pool) or async as it was."""
        if asyncio.iscoroutinefunction(handler):
            async def async_endpoint(request: Request) -> Response:
                return self._denied(request, api) or await handler(request)
            return async_endpoint

        def endpoint(request: Request) -> Response:
            denied = self._denied(request, api)
            if denied is not None:
                return denied
            try:
                return handler(request)
            except BadRequest as e:
                return self._error(request, 400, str(e), api)
            except JournalError as e:
                log.warning("dashboard: %s", e)
                return self._error(request, 503, f"cannot read the journal: {e}", api)
        return endpoint

    # -- responses

    def _html(self, template: str, status: int = 200, **ctx: Any) -> HTMLResponse:
        body = self.env.get_template(template).render(**ctx)
        return HTMLResponse(body, status_code=status, headers=_SECURITY_HEADERS)

    def _json(self, obj: Any, status: int = 200) -> JSONResponse:
        return JSONResponse(obj, status_code=status, headers=_SECURITY_HEADERS)

    def _error(self, request: Request, status: int, message: str, api: bool) -> Response:
        if api:
            return self._json({"error": message}, status)
        titles = {400: "Bad request", 401: "Token needed", 403: "Forbidden", 404: "Not found",
                  405: "Read-only", 503: "Journal unavailable"}
        return self._html("error.html", status, title=titles.get(status, "Error"), message=message,
                          u=self._urls(request))

    def _urls(self, request: Request) -> Callable[..., str]:
        token = self._token_in_query(request)

        def u(path: str, **params: Any) -> str:
            q = {k: v for k, v in params.items() if v not in (None, "", False)}
            if token is not None:
                q["token"] = token
            return path + ("?" + urlencode(q) if q else "")
        u.token = token  # type: ignore[attr-defined]  # the page's form carries it on
        return u

    def open_store(self) -> Store:
        """A store to read: a new SQLite connection (closed by :meth:`release`), or the one
        shared PostgreSQL store (its connection pool is thread-safe)."""
        if self.store_url is None:
            return open_store(None, self.state_dir)
        with self._shared_lock:
            if self._shared is None:
                self._shared = open_store(self.store_url, create=False)
            return self._shared

    def release(self, j: Store) -> None:
        if j is not self._shared:
            j.close()

    @contextmanager
    def journal(self) -> Iterator[Store]:
        j = self.open_store()
        try:
            yield j
        finally:
            self.release(j)

    # -- reading

    def _events(self, j: Store, f: Filters) -> list[dict]:
        if f.rule or f.unmatched:
            return [e for e in j.list_events(limit=EVENT_SCAN, source=f.source) if f.event_ok(e)][: f.limit]
        return j.list_events(limit=f.limit, source=f.source)

    def _reasons(self, e: dict) -> list[dict] | None:
        """Why each other rule of the event's source did not match; None: rules unknown."""
        matcher = self.rules.matcher()
        if matcher is None:
            return None
        try:
            event = Event.from_json(e)
        except ValueError:
            return None
        out = []
        for r in matcher.explain(event):
            span = r.get("span")
            out.append({"rule": r.get("rule"), "condition": r.get("condition"), "line": span[0] if span else None,
                        "span": span, "field": r.get("field"), "value": r.get("value"), "note": r.get("note"),
                        "text": reason_text(r)})
        return out

    def _event_row(self, j: Store, e: dict) -> dict:
        runs = list(reversed(j.list_runs(limit=20, event_id=e["id"])))
        return {**e, "runs": runs, "reasons": None if e["matched"] else self._reasons(e)}

    def _rule_names(self, j: Store, f: Filters) -> list[str]:
        names = set(self.rules.names())
        names.update(r["rule"] for r in j.list_runs(limit=200))
        if f.rule:
            names.add(f.rule)
        return sorted(names)

    # -- pages

    def overview(self, request: Request) -> Response:
        f = Filters.parse(request.query_params, PAGE_LIMIT)
        with self.journal() as j:
            runs = j.list_runs(limit=f.limit, rule=f.rule, status=f.status, before_id=f.before)
            events = [self._event_row(j, e) for e in self._events(j, f)] if f.before is None else []
            names = self._rule_names(j, f)
        u = self._urls(request)
        stream = u(PREFIX + "/stream", **f.params(limit=None, before=None)) if f.before is None else None
        older = runs[-1]["id"] if len(runs) == f.limit else None
        return self._html("index.html", f=f, runs=runs, events=events, rule_names=names, u=u, stream=stream,
                          older=older, rules_note=self.rules.note)

    def run_page(self, request: Request) -> Response:
        run_id = request.path_params["run_id"]
        with self.journal() as j:
            run = j.get_run(run_id)
            if run is None:
                return self._error(request, 404, f"there is no run {run_id}", api=False)
            event = j.get_event(run["event_id"])
            text, truncated, exists = j.read_log(run_id)
        return self._html("run.html", run=run, event=event, log_text=text, log_truncated=truncated,
                          log_exists=exists, u=self._urls(request), live=run["status"] not in FINAL_STATUSES)

    def _event_and_runs(self, event_id: str) -> tuple[dict | None, list[dict]]:
        """One event and its runs, oldest first (the event page and the event API)."""
        with self.journal() as j:
            e = j.get_event(event_id)
            runs = [] if e is None else list(reversed(j.list_runs(limit=MAX_LIMIT, event_id=event_id)))
        return e, runs

    def event_page(self, request: Request) -> Response:
        event_id = request.path_params["event_id"]
        e, runs = self._event_and_runs(event_id)
        if e is None:
            return self._error(request, 404, f"there is no event {event_id}", api=False)
        with self.journal() as j:
            admitted = j.groups_of_event(event_id) if hasattr(j, "groups_of_event") else []
        return self._html("event.html", e=e, runs=runs, reasons=self._reasons(e), u=self._urls(request),
                          rules_note=self.rules.note, admitted=admitted)

    # -- correlation groups (SPEC §11.7)

    def _group_query(self, request: Request, default_limit: int) -> tuple[str | None, str | None, str | None, int]:
        q = request.query_params
        state = (q.get("state") or q.get("status") or "").strip() or None
        if state is not None and state not in GROUP_STATES:
            raise BadRequest(f"unknown state {state!r} (one of {', '.join(GROUP_STATES)})")
        limit = _int(q.get("limit"), "limit", default_limit)
        if not 1 <= limit <= MAX_LIMIT:
            raise BadRequest(f"limit must be between 1 and {MAX_LIMIT}")
        return (q.get("rule") or "").strip() or None, state, (q.get("key") or "").strip() or None, limit

    def groups_page(self, request: Request) -> Response:
        try:
            rule, _, key, limit = self._group_query(request, MAX_LIMIT)
        except BadRequest as e:
            return self._error(request, 400, str(e), api=False)
        with self.journal() as j:
            supported = hasattr(j, "list_groups")
            groups = j.list_groups(limit=limit, rule=rule, key=key) if supported else []
            stats = j.correlation_stats()["rules"] if supported else {}
        by_rule: dict[str, dict] = {}
        for name in sorted(set(stats) | {g["rule"] for g in groups}):
            st = stats.get(name) or {}
            by_rule[name] = {"name": name, "open": st.get("open", 0), "refused": st.get("refused", 0),
                             "live": [], "closed": []}
        for g in groups:
            by_rule[g["rule"]]["live" if g["live"] else "closed"].append(g)
        u = self._urls(request)
        stream = u(PREFIX + "/stream", groups="1", rule=rule) if supported else None
        return self._html("groups.html", rules=list(by_rule.values()), supported=supported, u=u, stream=stream,
                          limit=limit)

    def group_page(self, request: Request) -> Response:
        group_id = request.path_params["group_id"]
        with self.journal() as j:
            g = j.get_group(group_id) if hasattr(j, "get_group") else None
        if g is None:
            return self._error(request, 404, f"there is no group {group_id}", api=False)
        return self._html("group.html", g=g, u=self._urls(request))

    def api_groups(self, request: Request) -> Response:
        try:
            rule, state, key, limit = self._group_query(request, API_LIMIT)
        except BadRequest as e:
            return self._error(request, 400, str(e), api=True)
        with self.journal() as j:
            groups = j.list_groups(limit=limit, rule=rule, status=state, key=key) if hasattr(j, "list_groups") else []
        return self._json({"groups": groups})

    def api_group(self, request: Request) -> Response:
        group_id = request.path_params["group_id"]
        with self.journal() as j:
            g = j.get_group(group_id) if hasattr(j, "get_group") else None
        if g is None:
            return self._error(request, 404, f"there is no group {group_id}", api=True)
        return self._json(g)

    def static_file(self, request: Request) -> Response:
        item = self.static.get(request.path_params["name"])
        if item is None:
            return Response("not found", status_code=404, media_type="text/plain")
        body, media = item
        return Response(body, media_type=media, headers={"Cache-Control": "max-age=300",
                                                         "X-Content-Type-Options": "nosniff"})

    # -- the JSON API

    def api_runs(self, request: Request) -> Response:
        f = Filters.parse(request.query_params, API_LIMIT)
        event_id = request.query_params.get("event_id") or None
        with self.journal() as j:
            runs = j.list_runs(limit=f.limit, rule=f.rule, status=f.status, before_id=f.before, event_id=event_id)
        return self._json({"runs": [public_run(r) for r in runs],
                           "next_before": runs[-1]["id"] if len(runs) == f.limit else None})

    def api_run(self, request: Request) -> Response:
        raw = request.path_params["run_id"]
        try:
            run_id = int(raw)
        except ValueError:
            return self._error(request, 404, f"there is no run {raw}", api=True)
        with self.journal() as j:
            run = j.get_run(run_id)
            if run is None:
                return self._error(request, 404, f"there is no run {run_id}", api=True)
            event = j.get_event(run["event_id"])
            text, truncated, _ = j.read_log(run_id)
        return self._json({**public_run(run), "log": text, "log_truncated": truncated,
                           "event": public_event(event) if event else None})

    def api_events(self, request: Request) -> Response:
        f = Filters.parse(request.query_params, API_LIMIT)
        typ = request.query_params.get("type") or None
        with self.journal() as j:
            if typ is not None:
                events = [e for e in j.list_events(limit=EVENT_SCAN if f.rule or f.unmatched else f.limit,
                                                   source=f.source, type=typ) if f.event_ok(e)][: f.limit]
            else:
                events = self._events(j, f)
            out = []
            for e in events:
                d = public_event(e)
                d["runs"] = [r["id"] for r in reversed(j.list_runs(limit=MAX_LIMIT, event_id=e["id"]))]
                out.append(d)
        return self._json({"events": out})

    def api_event(self, request: Request) -> Response:
        event_id = request.path_params["event_id"]
        e, runs = self._event_and_runs(event_id)
        if e is None:
            return self._error(request, 404, f"there is no event {event_id}", api=True)
        return self._json({**public_event(e, data=True), "runs": [public_run(r) for r in runs],
                           "not_matched": self._reasons(e)})

    # -- the stream

    async def stream(self, request: Request) -> Response:
        try:
            f = Filters.parse(request.query_params, PAGE_LIMIT)
            since_run = _int(request.query_params.get("since_run"), "since_run", 0)
            open_runs: dict[int, str] = {}
            for item in (request.query_params.get("open") or "").split(","):
                rid, _, status = item.partition(":")
                if rid.strip().isdigit():
                    open_runs[int(rid)] = status
        except BadRequest as e:
            return self._error(request, 400, str(e), api=True)
        since_event = request.query_params.get("since_event") or None
        u = self._urls(request)
        state = _StreamState(f, since_run, since_event, open_runs,
                             groups={} if request.query_params.get("groups") == "1" else None)

        async def messages() -> Any:
            yield "retry: 2000\n\n"
            try:  # opened here, so that it is closed however the response ends
                j = await run_in_threadpool(self.open_store)
            except JournalError as e:
                log.warning("dashboard: %s", e)
                yield ": cannot read the journal\n\n"  # the page's script tries again
                return
            try:
                end = time.monotonic() + self.stream_lifetime
                quiet = 0.0
                while True:
                    out = await run_in_threadpool(self._poll, j, state, u)
                    if out:
                        quiet = 0.0
                        yield "".join(out)
                    else:
                        quiet += POLL_INTERVAL
                        if quiet >= KEEPALIVE:
                            quiet = 0.0
                            yield ": keep-alive\n\n"
                    if self.closing.is_set() or time.monotonic() >= end:
                        yield _sse("reconnect", {})
                        return
                    await asyncio.sleep(POLL_INTERVAL)
            finally:
                self.release(j)

        return StreamingResponse(messages(), media_type="text/event-stream",
                                 headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no",
                                          "X-Content-Type-Options": "nosniff"})

    def _poll(self, j: Store, st: "_StreamState", u: Callable[..., str]) -> list[str]:
        """The messages for what changed in the journal since the last poll."""
        if st.groups is not None:
            return self._poll_groups(j, st, u)
        f = st.filters
        out: list[str] = []
        runs = j.list_runs(limit=STREAM_WINDOW, rule=f.rule, status=f.status)
        changed_events: set[str] = set()
        rows = _rows_module(self.env)
        for r in reversed(runs):  # oldest first, so the page inserts them in order
            key = (r["status"], r["exit_code"], r["finished_at"], r["started_at"])
            if st.runs is None:  # the first poll: compare with what the page said it shows
                new = r["id"] > st.since_run
                changed = not new and r["id"] in st.open_runs and st.open_runs[r["id"]] != r["status"]
            else:
                new = r["id"] not in st.runs
                changed = not new and st.runs[r["id"]] != key
            if new or changed:
                html = rows.run_row(r, u)
                out.append(_sse("run", {"id": r["id"], "status": r["status"], "update": not new, "html": str(html)}))
                changed_events.add(r["event_id"])
        st.runs = {r["id"]: (r["status"], r["exit_code"], r["finished_at"], r["started_at"]) for r in runs}

        top = j.list_events(limit=1, source=f.source)
        top_id = top[0]["id"] if top else None
        new_events: list[dict] = []
        if top_id is not None and top_id != st.last_event:
            for e in j.list_events(limit=STREAM_WINDOW, source=f.source):
                if e["id"] == st.last_event:
                    break
                new_events.append(e)
            st.last_event = top_id
        for e in reversed(new_events):
            changed_events.discard(e["id"])
            if f.event_ok(e):
                html = rows.event_row(self._event_row(j, e), u)
                out.append(_sse("event", {"id": e["id"], "update": False, "html": str(html)}))
        for event_id in sorted(changed_events):
            e = j.get_event(event_id)
            if e is not None and f.event_ok(e):
                html = rows.event_row(self._event_row(j, e), u)
                out.append(_sse("event", {"id": e["id"], "update": True, "html": str(html)}))
        return out

    def _poll_groups(self, j: Store, st: "_StreamState", u: Callable[..., str]) -> list[str]:
        """The groups page's stream: a ``group`` message (the row, rendered) per group that
        is new or changed since the last poll (the first poll sends none: the page has them)."""
        if not hasattr(j, "list_groups"):
            return []
        rows = _rows_module(self.env)
        out = []
        groups = j.list_groups(limit=STREAM_WINDOW, rule=st.filters.rule)
        seen = {g["id"]: (g["state"], g["closed_at"], len(g["members"]), g["deadline"]) for g in groups}
        if st.groups_primed:
            for g in reversed(groups):
                if st.groups.get(g["id"]) != seen[g["id"]]:
                    html = rows.group_row(g, u)
                    out.append(_sse("group", {"id": g["id"], "rule": g["rule"], "live": g["live"],
                                              "update": g["id"] in st.groups, "html": str(html)}))
        st.groups, st.groups_primed = seen, True
        return out

    # -- routes

    def routes(self) -> list[BaseRoute]:
        g = self.guarded
        return [
            Route(PREFIX, lambda request: RedirectResponse(self._urls(request)(PREFIX + "/"), 307)),
            Route(PREFIX + "/", g(self.overview, api=False), methods=["GET"]),
            Route(PREFIX + "/runs/{run_id:int}", g(self.run_page, api=False), methods=["GET"]),
            Route(PREFIX + "/events/{event_id:str}", g(self.event_page, api=False), methods=["GET"]),
            Route(PREFIX + "/stream", g(self.stream, api=True), methods=["GET"]),
            Route(PREFIX + "/static/{name:str}", self.static_file, methods=["GET"]),
            Route("/api/runs", g(self.api_runs, api=True), methods=["GET"]),
            Route("/api/runs/{run_id:str}", g(self.api_run, api=True), methods=["GET"]),
            Route("/api/events", g(self.api_events, api=True), methods=["GET"]),
            Route("/api/events/{event_id:str}", g(self.api_event, api=True), methods=["GET"]),
            Route(PREFIX + "/groups", g(self.groups_page, api=False), methods=["GET"]),
            Route(PREFIX + "/groups/{group_id:str}", g(self.group_page, api=False), methods=["GET"]),
            Route("/api/groups", g(self.api_groups, api=True), methods=["GET"]),
            Route("/api/groups/{group_id:str}", g(self.api_group, api=True), methods=["GET"]),
        ]


@dataclass
class _StreamState:
    filters: Filters
    since_run: int
    last_event: str | None
    open_runs: dict[int, str]
    runs: dict[int, tuple] | None = None  # run id -> (status, exit_code, finished_at, started_at) last seen
    groups: dict[str, tuple] | None = None  # the groups page's stream: group id -> what it last showed
    groups_primed: bool = False


def _rows_module(env: Environment) -> Any:
    return env.get_template("_rows.html").module  # type: ignore[attr-defined]


# --------------------------------------------------------------------------- entry points


def dashboard_routes(state_dir: Path | str | None, *, token: str | None = None, engine: Any = None,
                     rules_path: Path | None = None, store_url: str | None = None) -> list[BaseRoute]:
    """The dashboard's routes, to mount on an HTTP listener (``serve --dashboard``).

    ``engine`` (inside ``serve``) supplies the current rules for the explain reasons;
    ``rules_path`` does the same from a file. An empty token means no token.
    """
    d = Dashboard(state_dir, token=token, rules=RulesView(engine=engine, rules_path=rules_path), store_url=store_url)
    if engine is not None:
        log.info("dashboard at /dashboard/ (%s)", "token required" if d.requires_token else "loopback clients only")
    return d.routes()


def create_app(state_dir: Path | str | None, *, token: str | None = None, rules_path: Path | None = None,
               stream_lifetime: float = STANDALONE_STREAM_LIFETIME, store_url: str | None = None) -> Starlette:
    """The standalone dashboard (``triggerc dashboard``): the routes, ``/`` redirecting to the page.

    ``app.state.dashboard`` is the :class:`Dashboard` (set its ``closing`` to end the streams).
    """
    d = Dashboard(state_dir, token=token, rules=RulesView(rules_path=rules_path), stream_lifetime=stream_lifetime,
                  store_url=store_url)

    def home(request: Request) -> Response:
        return RedirectResponse(d._urls(request)(PREFIX + "/"), 307)

    def not_found(request: Request) -> Response:
        api = request.url.path.startswith("/api/")
        if request.method not in ("GET", "HEAD"):
            return d._error(request, 405, f"the dashboard is read-only: {request.method} is not allowed", api)
        return d._error(request, 404, f"nothing at {request.url.path}", api)

    app = Starlette(routes=[
        Route("/", home, methods=["GET"]),
        *d.routes(),
        Route("/{path:path}", not_found, methods=["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]),
    ])
    app.state.dashboard = d
    return app


def run_standalone(state_dir: Path | None, *, host: str, port: int, token: str | None, rules_path: Path | None,
                   echo: Callable[[str], None] = print, store_url: str | None = None) -> int:
    """Serve :func:`create_app` with uvicorn until SIGINT/SIGTERM; the exit code."""
    import errno

    import uvicorn

    from ..sources.http import _bind

    app = create_app(state_dir, token=token, rules_path=rules_path, store_url=store_url)
    try:
        socks = _bind(host, port)
    except OSError as e:
        hint = " (the port is in use; choose another with --port)" if e.errno == errno.EADDRINUSE else ""
        echo(f"triggerc: error: cannot listen on {host}:{port}: {e.strerror or e}{hint}")
        return 1
    bound = socks[0].getsockname()[1]
    shown = f"[{host}]" if ":" in host else host
    access = "token required" if token else "loopback clients only"
    from ..runtime.store import redact_url

    where = redact_url(store_url) if store_url else state_dir
    echo(f"dashboard: http://{shown}:{bound}/dashboard/ ({access}); journal in {where}")
    config = uvicorn.Config(app, host=host, port=bound, log_level="warning", log_config=None, access_log=False,
                            lifespan="off", server_header=False, proxy_headers=True,
                            forwarded_allow_ips="127.0.0.1,::1", timeout_graceful_shutdown=1)
    dashboard: Dashboard = app.state.dashboard

    class _Server(uvicorn.Server):
        async def shutdown(self, sockets: Any = None) -> None:
            dashboard.closing.set()  # open streams end within one poll, before uvicorn gives up on them
            await super().shutdown(sockets=sockets)

    server = _Server(config)
    try:
        asyncio.run(server.serve(sockets=socks))
    except KeyboardInterrupt:  # pragma: no cover - uvicorn normally handles the signal
        pass
    finally:
        for s in socks:
            s.close()
    return 0


__all__ = ["Dashboard", "RulesView", "Filters", "dashboard_routes", "create_app", "run_standalone",
           "read_log", "reason_text", "PREFIX", "LOG_TAIL"]
