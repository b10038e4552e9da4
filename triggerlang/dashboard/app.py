"""The dashboard: a web page and JSON API over the journal (issues 6 and 14).

What came in, which rules it matched, what ran, what each route received: ``triggerc
dashboard`` serves it on its own, ``triggerc serve --dashboard`` mounts the same routes on
the running HTTP listener.

URL layout (the same paths in both modes)
-----------------------------------------
::

    GET  /dashboard/                    the newest runs and events, the queue, paused rules
    GET  /dashboard/runs                runs: ?rule= &status= &q= &since= &until= &limit= &before=RUN_ID
    GET  /dashboard/events              events: ?source= &type= &unmatched=1 &q= &since= &until= &before=EVENT_ID
    GET  /dashboard/runs/{id}           one run: inputs, timings, who re-ran or cancelled it, its log
                                        (followed live while the run goes)
    GET  /dashboard/runs/{id}/log       the whole log as a text/plain download
    GET  /dashboard/runs/{id}/stream    server-sent events: new log lines, status changes
    GET  /dashboard/events/{id}         one event: its data, its runs, why other rules did not match
    GET  /dashboard/sources             each route with its verification and recent deliveries;
                                        each rule with its last runs, success rate and queue
    GET  /dashboard/stream              server-sent events that keep the tables live
    GET  /dashboard/static/{name}       style.css, live.js, run.js
    POST /dashboard/runs/{id}/rerun     the form buttons (token + CSRF token + Origin check)
    POST /dashboard/runs/{id}/cancel
    POST /dashboard/rules/{rule}/resume
    GET  /api/runs, /api/runs/{id}, /api/runs/{id}/log?offset=N
    GET  /api/events, /api/events/{id}, /api/sources
    GET  /dashboard/groups              correlation groups (SPEC §11.7): per rule, the open groups
                                        with a countdown and a chip per member, the refusals, the
                                        closed groups; live over the stream (``?groups=1``)
    GET  /dashboard/groups/{id}         one group and its history
    GET  /api/groups                    {"groups": [...]}; ?rule= &state= &key= &limit=
    GET  /api/groups/{id}               one group with its history (admitted, replaced, absorbed...)
    POST /api/runs/{id}/rerun, /api/runs/{id}/cancel, /api/rules/{rule}/resume
                                        (``triggerc rerun|cancel|resume``: Authorization header only)

Standalone, ``/`` also redirects to ``/dashboard/``; inside ``serve``, ``/`` and every
other path stay with the webhook routes. The page lives under ``/dashboard/`` so that it
cannot shadow a webhook route; ``/api/...`` keeps the short paths of the issue (a webhook
route at one of these exact paths is shadowed when the dashboard is on).

Filters
-------
Each table has its own: runs by ``rule``, ``status``, a time range on when they were
queued and a search; events by ``source``, ``type``, ``unmatched=1`` (no rule of any kind took them),
a time range on when they were received and a search. The search (``q``) finds a run by
its id, its event's id, a value of its inputs (a sha, a branch) or its event's delivery
id, and an event by its id, its delivery id or any value of its data. ``since`` and
``until`` take a length of time back (``15m``, ``1h``, ``7d``) or a UTC date and time
(``2026-11-24 19:00``). Both tables page by cursor: ``before`` is the last run id or
event id of the previous page; a cursor that names nothing is a 400, like any filter
that does not parse. The overview's old filter parameters (``/dashboard/?rule=...``)
redirect to the table they belong to.

Access
------
Without a token the dashboard answers loopback clients only (403 for others), whatever
address the listener binds, and it is read-only. With a token (``--token`` or
``TRIGGERLANG_DASHBOARD_TOKEN``) any client that proves it is let in, the token compared
in constant time; without it, 401. A client proves it with ``Authorization: Bearer
<token>``, ``?token=<token>`` (carried on in the page's links, forms and stream URLs, as
an ``EventSource`` cannot send headers), or the session cookie the dashboard sets once a
page was opened with the token (``HttpOnly``, ``SameSite=Strict``, holding an HMAC of the
token, never the token). ``Referrer-Policy: same-origin`` keeps a token in a URL from
leaking to other sites. The static files need no token: they hold no data.

Writes (re-run, cancel, resume) need the token: a dashboard without one has no buttons
and answers every POST 403. The page's forms are protected against cross-site request
forgery three ways: they carry a CSRF token (an HMAC of the dashboard token) that a POST
must send back, a POST's ``Origin`` (or, without one, its ``Referer``) must be this
dashboard's own origin, and the session cookie is ``SameSite=Strict``. The JSON API's
POSTs take the token from the ``Authorization`` header only (a header no other site can
make a browser send), so they need no CSRF token. Every write is journaled with who
(``dashboard from 127.0.0.1``, or the CLI's ``user@host``) and when.

Every value shown comes from the journal and is escaped (Jinja2 autoescape, and a
``Content-Security-Policy`` that allows only the dashboard's own scripts and styles).
Webhook credentials never reach the journal (the http source redacts them) and secret
values never do either (SPEC §2). A run's log is shown as the action wrote it but for the
values of the secrets the rules declare, shown as ``[secret NAME]`` in every view of it (the
page, its live tail, the download, the API): :mod:`triggerlang.runtime.logview`, which says
where a view gets the values and why the masking is done here, on the way out.

Reading the journal
-------------------
Each request opens its own SQLite connection (:func:`~triggerlang.runtime.store.open_store`)
and closes it when done (a stream keeps one for its life); with ``--store postgresql://...``
every request borrows a connection of one shared pool instead. The journal is SQLite in
WAL mode, so these readers never block ``serve``'s writer, and no state outlives a request
(no module-level settings, nothing to close when ``serve`` rebuilds its HTTP listener on a
reload). Page and API handlers are plain functions, which Starlette runs in its thread
pool: a slow disk never stalls the event loop that ``serve`` shares with the engine.

Live updates
------------
``/dashboard/stream`` polls the journal every :data:`POLL_INTERVAL` seconds and sends
``run`` and ``event`` messages whose ``data`` is JSON ``{"id", "status"?, "update",
"html"}``: ``html`` is the table row rendered by the same template as the page, so the
script (``live.js``, no build step) only inserts or replaces rows. ``view`` says which
tables the page shows (``overview``, ``runs``, ``events``) and the page's filters come
along, so the stream sends only rows the page would show. The page tells the stream what
it already shows (``since_run``, ``since_event``, and ``open``: the runs it shows as
queued or running, ``id:status``), so a (re)connect sends exactly what changed. An event
row is re-sent (``update: true``, replace only) when one of its runs changes. A comment
line every 15 s keeps proxies from closing an idle stream.

A run's page follows its log over ``/dashboard/runs/{id}/stream?offset=N``: ``lines``
messages carry the complete lines written after byte ``N`` (``[[stream, text], ...]``,
stream ``out``, ``err`` or ``meta``, see :func:`~triggerlang.runtime.store.log_lines`;
a line with colours has its pieces third, see :mod:`~triggerlang.dashboard.ansi`) and the next offset; ``status`` messages the run's new summary (rendered); ``end`` comes
once the run is over and its last line sent. ``run.js`` appends the lines, keeps the view
at the end unless the user scrolled up, and numbers the lines.

A stream ends by itself after ``stream_lifetime`` seconds with a ``reconnect`` message,
and the script opens the next one at once (with what the page shows by then). That is
what lets ``serve`` stop promptly with a dashboard tab open: uvicorn waits for in-flight
responses (5 s in the http source) and then cancels them with an error in the log, and
an application mounted on ``serve``'s listener is not told by uvicorn that it is
stopping. So inside ``serve`` a stream lasts 4 s (one reconnect every 4 s per open tab,
which costs nothing noticeable), and ``serve`` sets :attr:`Dashboard.closing` itself
when it stops (``dashboard_routes(closing=...)``, before its sources stop): the open
streams end within one poll, so a tab left open does not add up to 4 s to a stop (nor
to a ``systemctl stop``). Standalone, where the dashboard owns its uvicorn, shutting
down ends every stream within one poll too, and a stream may last a minute.

Times
-----
A table shows when something happened relative to now ("3 min ago"), with the exact UTC
time on hover; a detail page shows the exact time with its zone ("2026-11-24 19:15:53
UTC") and the relative one beside it. The script keeps the relative times current.

Why an event matched nothing
----------------------------
The reasons are the ``--explain`` of ``triggerc match``: for each rule of the event's
source that did not match, the first condition that failed and the value the event had.
They need the rules: inside ``serve`` the engine's current rules, standalone the file
given with ``--rules`` (recompiled when it or a file its includes read changes). They are computed against the rules
as they are *now*, which may differ from the rules the event met if the file changed.
"""

from __future__ import annotations

import asyncio
import datetime as _dt
import hashlib
import hmac
import json
import logging
import re
import threading
import time
import urllib.parse
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from importlib import resources
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping

from jinja2 import Environment, PackageLoader, StrictUndefined
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response, StreamingResponse
from starlette.routing import BaseRoute, Route

from ..check.catalogue import source_names
from ..compile.matcher import reason_text as why_not_text
from ..correlation.spec import key_shown
from ..correlation.state import GROUP_FILTERS
from ..events import Event, whole_number
from ..runtime.operations import OperationError
from ..runtime.logview import LogFollower, LogMasks, read_view
from ..runtime.store import (FINAL_STATUSES, LOG_TAIL, STATUSES, BadQuery, Store, StoreError as JournalError,
                             clean_log, log_lines, log_lines_raw, open_store, parse_when, read_log_file)
from ..sources.http import Fallback, allowed_methods, is_loopback
from .ansi import styled_lines

log = logging.getLogger("triggerlang")

PREFIX = "/dashboard"
POLL_INTERVAL = 0.5  # seconds between two looks at the journal in a stream
LOG_POLL_INTERVAL = 0.25  # seconds between two looks at a running run's log
KEEPALIVE = 15.0  # seconds between two comment lines on an idle stream
SERVE_STREAM_LIFETIME = 4.0  # seconds; under the http source's 5 s graceful shutdown (serve also ends them at a stop)
STANDALONE_STREAM_LIFETIME = 60.0
PAGE_LIMIT = 25  # rows of each table on a page
OVERVIEW_LIMIT = 15  # rows of each table on the overview
API_LIMIT = 50
MAX_LIMIT = 500
MAX_ID = 2**63 - 1  # the largest integer SQLite and PostgreSQL (bigint) store: no run id or offset is larger
STREAM_WINDOW = 100  # newest runs / events a stream compares on every poll
GROUP_STATES = tuple(GROUP_FILTERS)
RULE_HISTORY = 20  # runs of each rule the sources page looks at
DELIVERIES_SHOWN = 20  # deliveries of each route the sources page shows
FORM_LIMIT = 4096  # bytes of a POSTed form
FAILED_SHOWN = 100  # the overview counts the failed (and timed out) runs of the last 24 h up to this ("100+")

SESSION_COOKIE = "trg_dashboard"

_SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
                               "connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    # same-origin, not no-referrer: a form POST must carry its Origin (browsers send
    # "Origin: null" under no-referrer), and a token in a URL still never leaves the site
    "Referrer-Policy": "same-origin",
    "X-Frame-Options": "DENY",
    "Cache-Control": "no-store",
}


class BadRequest(ValueError):
    """A query parameter that does not parse: 400 with this message."""


# --------------------------------------------------------------------------- the rules


class RulesView:
    """Where the explain reasons, the known rule names and the sources come from.

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
        self._stamp: tuple | None = None
        self._manifest: dict | None = None
        self._read: dict | None = None  # the last rules that compiled
        self._matcher: Any = None
        self._matcher_for: dict | None = None
        self._corr: list = []
        self._corr_for: dict | None = None
        self._files: dict[str, str] = {}
        self._files_for: dict | None = None

    def manifest(self) -> dict | None:
        if self.engine is not None:
            return getattr(self.engine, "manifest", None)
        if self.rules_path is None:
            return None
        with self._lock:
            try:
                st = self.rules_path.stat()
                stamp = (st.st_mtime_ns, st.st_size, self._included_stamp())
            except OSError as e:
                self.note = f"cannot read the rules {self.rules_path}: {e.strerror or e}"
                self._manifest = self._stamp = None
                return None
            if stamp != self._stamp:
                from ..runtime.engine import StartError
                from ..api import load_rules

                try:
                    self._manifest, _ = load_rules(self.rules_path)
                    self._read = self._manifest  # what its includes read is watched, also if a change breaks them
                    self.note = None
                except StartError as e:
                    self._manifest = None
                    self.note = f"the rules in {self.rules_path} do not compile: " + str(e).splitlines()[0]
                self._stamp = (*stamp[:2], self._included_stamp())  # what the new rules read
            return self._manifest

    def _included_stamp(self) -> tuple:
        """The files the includes of the rules read (size and time of each) and those their
        globs match now: a change to one of them recompiles the rules, as ``serve`` reloads
        (README: Rules in several files). A manifest is watched alone, as ``serve`` does."""
        m = self._read
        if not m or self.rules_path is None or self.rules_path.suffix == ".json":
            return ()
        from ..sourcefile import glob_files

        base = Path(m.get("base_dir") or self.rules_path.resolve().parent)
        stamps: list = []
        for name in m.get("includes", []):
            try:
                st = (base / name).stat()
                stamps.append((st.st_mtime_ns, st.st_size))
            except OSError:
                stamps.append(None)
        return (*stamps, *(tuple(glob_files(str(base / g))) for g in m.get("include_globs", [])))

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

    def correlation_rules(self) -> list:
        """The correlation rules of the current rules (``CorrRule``), for the reasons."""
        manifest = self.manifest()
        if manifest is None:
            return []
        with self._lock:
            if self._corr_for is not manifest:
                from ..correlation.spec import CorrRule, is_correlation

                self._corr = [CorrRule(r) for r in manifest.get("rules", []) if is_correlation(r)]
                self._corr_for = manifest
            return self._corr

    def rule_files(self) -> dict[str, str]:
        """The file of each rule an include read (its span's ``file``, relative to the main
        file's folder): its reasons name that file, as ``match --explain`` does, not a bare
        line that reads as one of the main file."""
        manifest = self.manifest()
        if manifest is None:
            return {}
        with self._lock:
            if self._files_for is not manifest:
                self._files = {r["name"]: f for r in manifest.get("rules", []) if (f := (r.get("span") or {}).get("file"))}
                self._files_for = manifest
            return self._files

    def names(self) -> list[str]:
        manifest = self.manifest()
        return [r["name"] for r in (manifest or {}).get("rules", [])]


# --------------------------------------------------------------------------- filters


def _text(q: Mapping[str, str], name: str) -> str | None:
    v = (q.get(name) or "").strip()
    return v or None


def _int(value: str | None, name: str, default: int | None) -> Any:
    if value is None or value.strip() == "":
        return default
    try:
        number = int(value)
    except ValueError:
        raise BadRequest(f"{name} must be a whole number, not {value!r}") from None
    if abs(number) > MAX_ID:  # the store could not even compare it
        raise OutOfRange(f"{name} is out of range: {value.strip()[:40]}")
    return number


class OutOfRange(BadRequest):
    """A whole number past :data:`MAX_ID`: 400 with this message (or the caller's own)."""


def _run_number(value: Any) -> int | None:
    """A run id from a URL's path, or None when it cannot name a run (not a number, or
    past :data:`MAX_ID`, which the store would refuse to look up): a 404, not a 500."""
    try:
        number = int(value)
    except ValueError:
        return None
    return number if 0 <= number <= MAX_ID else None


def _limit(q: Mapping[str, str], default: int) -> int:
    try:
        limit = _int(q.get("limit"), "limit", default)
    except OutOfRange:
        limit = 0  # the message below says the range
    if not 1 <= limit <= MAX_LIMIT:
        raise BadRequest(f"limit must be between 1 and {MAX_LIMIT}")
    return limit


def _when_bound(q: Mapping[str, str], name: str, now: float) -> tuple[str | None, float | None]:
    text = _text(q, name)
    if text is None:
        return None, None
    try:
        return text, parse_when(text, now)
    except BadQuery as e:
        raise BadRequest(f"{name}: {e}") from None


def _flag(q: Mapping[str, str], name: str) -> bool:
    """A yes/no parameter (the form's checkbox sends 1); another value is a 400 rather than
    a "no" that would silently show every event."""
    value = (q.get(name) or "").lower()
    if value in ("", "0", "false", "no", "off"):
        return False
    if value in ("1", "true", "yes", "on"):
        return True
    raise BadRequest(f"{name} must be 1 or 0, not {q.get(name)!r}")


@dataclass(frozen=True)
class RunFilters:
    """The runs table's filters (page, API, stream). ``since``/``until`` keep the text as
    given (for the form) and ``since_t``/``until_t`` the epoch seconds it meant."""

    rule: str | None = None
    status: str | None = None
    q: str | None = None
    since: str | None = None
    until: str | None = None
    since_t: float | None = None
    until_t: float | None = None
    event_id: str | None = None
    limit: int = PAGE_LIMIT
    before: int | None = None
    default_limit: int = PAGE_LIMIT

    @classmethod
    def parse(cls, q: Mapping[str, str], default_limit: int) -> "RunFilters":
        status = _text(q, "status")
        if status is not None and status not in STATUSES:
            raise BadRequest(f"unknown status {status!r} (one of {', '.join(STATUSES)})")
        now = time.time()
        since, since_t = _when_bound(q, "since", now)
        until, until_t = _when_bound(q, "until", now)
        before = _int(q.get("before"), "before", None)
        return cls(rule=_text(q, "rule"), status=status, q=_text(q, "q"), since=since, until=until,
                   since_t=since_t, until_t=until_t, event_id=_text(q, "event_id"), limit=_limit(q, default_limit),
                   before=before, default_limit=default_limit)

    def store_args(self) -> dict[str, Any]:
        return {"rule": self.rule, "status": self.status, "event_id": self.event_id, "q": self.q,
                "since": self.since_t, "until": self.until_t}

    def params(self, **changes: Any) -> dict[str, Any]:
        f = replace(self, **changes)
        return {"rule": f.rule, "status": f.status, "q": f.q, "since": f.since, "until": f.until,
                "event_id": f.event_id, "limit": None if f.limit == f.default_limit else f.limit,
                "before": f.before}

    @property
    def active(self) -> bool:
        return bool(self.rule or self.status or self.q or self.since or self.until or self.event_id)

    @property
    def live(self) -> bool:
        """The first page of a list that can still grow: the stream keeps it current."""
        return self.before is None and self.until is None


@dataclass(frozen=True)
class EventFilters:
    """The events table's filters (see :class:`RunFilters`); ``before`` is an event id."""

    source: str | None = None
    type: str | None = None
    unmatched: bool = False
    rule: str | None = None  # API only: events a rule matched
    q: str | None = None
    since: str | None = None
    until: str | None = None
    since_t: float | None = None
    until_t: float | None = None
    limit: int = PAGE_LIMIT
    before: str | None = None
    default_limit: int = PAGE_LIMIT

    @classmethod
    def parse(cls, q: Mapping[str, str], default_limit: int) -> "EventFilters":
        now = time.time()
        since, since_t = _when_bound(q, "since", now)
        until, until_t = _when_bound(q, "until", now)
        return cls(source=_text(q, "source"), type=_text(q, "type"), unmatched=_flag(q, "unmatched"),
                   rule=_text(q, "rule"), q=_text(q, "q"), since=since, until=until, since_t=since_t,
                   until_t=until_t, limit=_limit(q, default_limit), before=_text(q, "before"),
                   default_limit=default_limit)

    def store_args(self) -> dict[str, Any]:
        return {"source": self.source, "type": self.type, "unmatched": self.unmatched, "rule": self.rule,
                "q": self.q, "since": self.since_t, "until": self.until_t}

    def params(self, **changes: Any) -> dict[str, Any]:
        f = replace(self, **changes)
        return {"source": f.source, "type": f.type, "unmatched": "1" if f.unmatched else None, "rule": f.rule,
                "q": f.q, "since": f.since, "until": f.until,
                "limit": None if f.limit == f.default_limit else f.limit, "before": f.before}

    @property
    def active(self) -> bool:
        return bool(self.source or self.type or self.unmatched or self.rule or self.q or self.since or self.until)

    def shows(self, e: dict) -> bool:
        """Whether a row for ``e`` may be on a page with these filters (the search and the
        time range are not checked: the page ignores an update of a row it does not show)."""
        return ((self.source is None or e["source"] == self.source) and (self.type is None or e["type"] == self.type)
                and (not self.unmatched or not e["matched"]) and (self.rule is None or self.rule in e["matched"]))

    @property
    def live(self) -> bool:
        return self.before is None and self.until is None


RUN_PARAMS = ("rule", "status")
EVENT_PARAMS = ("source", "unmatched")


# --------------------------------------------------------------------------- helpers


def public_run(r: dict) -> dict:
    """A journal run dict as the API shows it (the server's file paths left out)."""
    return {k: v for k, v in r.items() if k != "log_path"}


def public_event(e: dict, data: bool = False) -> dict:
    keys = ("id", "source", "type", "time", "received_at", "delivery_key", "matched")
    out = {k: e.get(k) for k in keys}
    if "depth" in e:
        out["depth"] = e["depth"]
    if data:
        out["data"] = e.get("data")
    return out


read_log = read_log_file
"""(text, truncated, exists): the end of a run's log file, without terminal escapes."""


def reason_text(r: dict) -> str:
    """One explain reason as a line, as ``triggerc match --explain`` prints it (long values
    cut; ``(deploy.trg:3:19)`` for a condition of an included file)."""
    f, span = r.get("file"), r.get("span")
    return why_not_text(r, f" ({f}:{span[0]}:{span[1]})" if f and span else None, limit=120)

def _parse_time(iso: str | None) -> _dt.datetime | None:
    if not iso:
        return None
    try:
        t = _dt.datetime.fromisoformat(iso.replace("Z", "+00:00"))
    except ValueError:
        return None
    if t.tzinfo is None:
        t = t.replace(tzinfo=_dt.timezone.utc)
    return t.astimezone(_dt.timezone.utc)


def _when(iso: str | None) -> str:
    """An ISO 8601 time as ``YYYY-MM-DD HH:MM:SS`` in UTC (as the source gave it if it does
    not parse); the templates name the zone beside it."""
    if not iso:
        return "-"
    t = _parse_time(iso)
    if t is None:
        return iso[:32]
    return t.strftime("%Y-%m-%d %H:%M:%S")


def ago(iso: str | None, now: float | None = None) -> str:
    """How long ago an ISO 8601 time was (``3 min ago``, ``in 2 min`` for the future);
    the date past a month. The script (``live.js``) says the same as time goes on."""
    t = _parse_time(iso)
    if t is None:
        return iso[:32] if iso else "-"
    delta = (time.time() if now is None else now) - t.timestamp()
    future, d = delta < 0, abs(delta)
    if d < 10:
        return "just now" if not future else "in a moment"
    if d < 60:
        text = f"{int(d)} s"
    elif d < 3600:
        text = f"{int(d // 60)} min"
    elif d < 86400:
        text = f"{int(d // 3600)} h"
    elif d < 30 * 86400:
        days = int(d // 86400)
        text = f"{days} day{'s' if days != 1 else ''}"
    else:
        return t.strftime("%Y-%m-%d")
    return f"in {text}" if future else f"{text} ago"


_ENGINE_DASHBOARD = "use the dashboard of `triggerc serve --dashboard` (or `triggerc dashboard --store URL` in store mode)"
"""Where re-run, cancel and resume work when this dashboard cannot reach the engine: said in
the footer note (a sentence) and in the API's 503 (a clause, printed by ``triggerc rerun``)."""


_BACK = (("/runs", "all runs"), ("/events", "all events"), ("/groups", "the correlation groups"),
         ("/sources", "the sources"), ("/rules", "the sources"))
"""Where an error page links to: the list its page belongs to (a run that is not there, a
filter that does not parse: the list without filters), else the overview."""


def _with_next_tick(ent: Mapping[str, Any], now: _dt.datetime | None = None) -> dict[str, Any]:
    """A manifest schedule with the tick it waits for (``systemctl list-timers``' NEXT),
    computed as the schedule source plans it (:func:`~triggerlang.sources.schedule.next_tick`):
    ``next`` (ISO 8601 with the offset, in the schedule's zone: UTC for ``every``), ``tz``
    (the zone's name) and ``next_local`` (``YYYY-MM-DD HH:MM:SS`` in that zone); ``next``
    None and ``error`` for a schedule the source cannot run (that rule never ticks)."""
    from ..sources.schedule import next_tick

    out = {**ent, "tz": ent.get("tz") or "UTC", "next": None}
    try:
        t = next_tick(ent, now or _dt.datetime.now(_dt.timezone.utc))
    except ValueError as e:
        return {**out, "error": str(e)}
    return {**out, "next": t.isoformat(timespec="milliseconds"), "next_local": t.strftime("%Y-%m-%d %H:%M:%S")}


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    if seconds < 1:
        return f"{seconds * 1000:.0f} ms"
    if seconds < 60:
        return f"{seconds:.1f} s"
    m, s = divmod(int(round(seconds)), 60)
    if m < 60:
        return f"{m} m {s} s" if s else f"{m} m"  # a schedule's every 5m: "5 m", not "5 m 0 s"
    h, m = divmod(m, 60)
    return f"{h} h {m} m" if m else f"{h} h"


def _running_for(started_at: str | None, now: float | None = None) -> float:
    """How long a running run has run, in seconds (its Duration is not known yet)."""
    t = _parse_time(started_at)
    return max(0.0, (time.time() if now is None else now) - t.timestamp()) if t is not None else 0.0


def _running_text(seconds: float) -> str:
    """A running run's Duration so far: ``running 12 s``, ``running 1 m 12 s`` (whole
    seconds: it changes every second, and ``live.js`` says the same as time goes on)."""
    return "running " + (f"{int(seconds)} s" if seconds < 60 else _duration(seconds))


def _key(v: Any, width: int | None = None) -> str:
    """A correlation key value, shown as everywhere else (:func:`key_shown`: "1" is not 1)."""
    text = key_shown(v)
    if width is not None and len(text) > width:
        text = text[: width - 1] + "\u2026"
    return text


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


def _percent(x: float | None) -> str:
    return "-" if x is None else f"{x * 100:.0f}%"


def _size(n: int | None) -> str:
    """A number of bytes for a person: ``10 MiB``, ``512 KiB``, ``100 bytes``."""
    if not n:
        return "-"
    for unit, k in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if n >= k:
            return f"{n / k:.4g} {unit}"
    return f"{n} bytes"


def _environment() -> Environment:
    env = Environment(loader=PackageLoader("triggerlang.dashboard", "templates"), autoescape=True,
                      undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True)
    env.filters.update(when=_when, ago=ago, duration=_duration, value=_value, key=_key, pretty=_pretty, summary=_summary,
                       percent=_percent, size=_size, running_for=_running_for, running_text=_running_text)
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


_ACTOR_CHARS = re.compile(r"[^\w.@+:/ -]")


def _clean_actor(name: str | None) -> str | None:
    """A name the CLI sends (``user@host``) as it is journaled: printable, short. The CLI
    sends it as UTF-8 bytes (a user name may be any text); the header arrives decoded as
    Latin-1, so it is read back as UTF-8 when it is that, else kept as Latin-1."""
    if not name:
        return None
    try:
        name = name.encode("latin-1").decode("utf-8")
    except UnicodeError:
        pass
    name = _ACTOR_CHARS.sub("", name).strip()[:80]
    return name or None


def trigger_text(trigger: Any) -> str:
    """A rule's trigger as one line, for the sources page and ``/api/sources``: the
    manifest's ``git.push`` as it is, and a correlation rule's members, which the manifest
    holds as an object, as its trigger reads (``all(github.push as gh, gitlab.push as gl)
    same <sha>``, ``3 of ci.completed as fail``, ``absent(http.post as hb) same <query.host>``);
    their filters and windows are on the rule's line in the rules file."""
    if not isinstance(trigger, Mapping):
        return "" if trigger is None else str(trigger)
    members = trigger.get("members") or []

    def leaf(i: Any) -> str:
        m = members[i] if isinstance(i, int) and 0 <= i < len(members) else {}
        return f"{m.get('trigger', '?')} as {m.get('alias', '?')}"

    def node(kind: Any, n: Any, items: list) -> str:
        parts = [leaf(x) if isinstance(x, int) else node(x.get("kind"), x.get("n"), x.get("items") or [])
                 for x in items]
        if kind == "count":
            return f"{n} of {', '.join(parts)}"
        if kind == "n_of":
            return f"{n} of ({', '.join(parts)})"
        return f"{kind}({', '.join(parts)})"

    kind = trigger.get("kind")
    if kind == "absent":
        text = node("absent", None, [i for i, m in enumerate(members) if m.get("role") != "anchor"])
        anchors = [leaf(i) for i, m in enumerate(members) if m.get("role") == "anchor"]
        if anchors:
            text += " after " + ", ".join(anchors)
    else:
        text = node(kind, trigger.get("n"), trigger.get("items") or [])
    same = trigger.get("same") or []
    return text + (" same " + ", ".join(f"<{k}>" for k in same) if same else "")


def verification_text(route: Mapping[str, Any]) -> str:
    """How a route checks its deliveries, in words (the secret's name, never a value)."""
    v = route.get("verify")
    if not v:
        return "none: anyone who can reach the port can post"
    from ..providers.verify import SCHEMES

    scheme = SCHEMES.get(v.get("scheme"))
    header = v.get("header")
    if scheme is None:
        return f"{v.get('scheme')} with secret {v.get('secret')}"
    reads = ", ".join(sorted(scheme.reads(header)))
    return f"{scheme.what or scheme.name} ({scheme.name}) in {reads}, secret {v.get('secret')}"


# --------------------------------------------------------------------------- the views


class Dashboard:
    """The dashboard's endpoints, bound to one store, token, rules view and operator.

    ``operator`` does the writes (re-run, cancel, resume; see
    :mod:`triggerlang.runtime.operations`): the engine inside ``serve``, the shared store
    standalone with ``--store``, None for a standalone SQLite dashboard (which cannot reach
    the running engine's queue). ``stats`` supplies the metrics the overview shows (the
    runtime's :class:`~triggerlang.runtime.metrics.Metrics`, or None). ``listener`` (inside
    ``serve``) gives the HTTP listener's bound ``(host, port)``, or None when none is up: the
    address ``/api/sources`` shows, where the rules' own ``source http host= port=`` are
    overridden by ``--host``/``--port`` (or port 0).
    """

    def __init__(self, state_dir: Path | str | None, *, token: str | None = None, rules: RulesView | None = None,
                 stream_lifetime: float = SERVE_STREAM_LIFETIME, store_url: str | None = None,
                 operator: Any = None, listener: Callable[[], tuple[str, int] | None] | None = None,
                 masks: LogMasks | None = None) -> None:
        self.state_dir = Path(state_dir) if state_dir is not None else None
        self.store_url = store_url
        self._shared: Store | None = None  # a PostgreSQL store: one pool of connections for every request
        self._shared_lock = threading.Lock()
        self.stream_lifetime = stream_lifetime
        self.closing = threading.Event()  # set when the server shuts down: streams end
        token = (token or "").strip()
        self._token = token.encode("utf-8") if token else None
        self._session = hmac.new(self._token, b"triggerlang dashboard session", hashlib.sha256).hexdigest() \
            if self._token else None
        self._csrf = hmac.new(self._token, b"triggerlang dashboard csrf", hashlib.sha256).hexdigest() \
            if self._token else None
        self.rules = rules or RulesView()
        # the secret values run logs are masked of (runtime/logview.py): serve's, or those
        # the state folder's names (or --rules, or the store's manifests) lead to
        self.masks = masks or LogMasks(state_dir=self.state_dir, manifest=self.rules.manifest,
                                       note=lambda m: log.warning("dashboard: %s", m))
        self.operator = operator
        self.listener = listener
        self.env = _environment()
        self.static = _static_files()

    def _masker(self, j: Store, run_id: int) -> Any:
        return self.masks.masker(j, run_id)

    # -- access

    @property
    def requires_token(self) -> bool:
        return self._token is not None

    @property
    def can_write(self) -> bool:
        """Re-run and cancel are on: a token is set and something can do them."""
        return self._token is not None and self.operator is not None

    def _token_in_query(self, request: Request) -> str | None:
        """The query's token when it is the right one (to carry it on in links)."""
        t = request.query_params.get("token")
        if self._token is not None and t is not None and hmac.compare_digest(t.encode("utf-8"), self._token):
            return t
        return None

    def _proof(self, request: Request) -> str | None:
        """How the request proves the token: ``header``, ``query``, ``cookie`` or None."""
        if self._token is None:
            return None
        auth = request.headers.get("authorization", "")
        if auth[:7].lower() == "bearer ":  # the header's bytes as sent (read as Latin-1): a UTF-8 token compares
            return "header" if hmac.compare_digest(auth[7:].strip().encode("latin-1"), self._token) else None
        if self._token_in_query(request) is not None:
            return "query"
        cookie = request.cookies.get(SESSION_COOKIE)
        if cookie is not None and self._session is not None \
                and hmac.compare_digest(cookie.encode("utf-8", "replace"), self._session.encode("ascii")):
            return "cookie"
        return None

    def _denied(self, request: Request, api: bool) -> Response | None:
        if self._token is None:
            host = request.client.host if request.client else None
            if is_loopback(host):
                return None
            return self._error(request, 403, "the dashboard answers loopback clients only; "
                                             "start it with --token to open it to others", api)
        if self._proof(request) is not None:
            return None
        offered = request.headers.get("authorization", "")[:7].lower() == "bearer " \
            or "token" in request.query_params
        # a wrong token (a stale TRIGGERLANG_DASHBOARD_TOKEN) is told apart from none
        resp = self._error(request, 401, "the token does not match this dashboard's (its --token or "
                                         "TRIGGERLANG_DASHBOARD_TOKEN)" if offered else
                                         "this dashboard needs its token: send Authorization: Bearer <token> "
                                         "or add ?token=<token> to the URL", api)
        resp.headers["WWW-Authenticate"] = 'Bearer realm="triggerlang dashboard"'
        return resp

    def guarded(self, handler: Callable[[Request], Any], api: bool) -> Callable[[Request], Any]:
        """``handler`` behind the access check; stays sync (thread pool) or async as it was."""
        if asyncio.iscoroutinefunction(handler):
            async def async_endpoint(request: Request) -> Response:
                denied = self._denied(request, api)
                if denied is not None:
                    return denied
                try:
                    return await handler(request)
                except BadRequest as e:
                    return self._error(request, 400, str(e), api)
            return async_endpoint

        def endpoint(request: Request) -> Response:
            denied = self._denied(request, api)
            if denied is not None:
                return denied
            try:
                response = handler(request)
            except (BadRequest, BadQuery) as e:
                return self._error(request, 400, str(e), api)
            except JournalError as e:
                log.warning("dashboard: %s", e)
                return self._error(request, 503, f"cannot read the journal: {e}", api)
            return self._with_session(request, response)
        return endpoint

    def _with_session(self, request: Request, response: Response) -> Response:
        """Give a browser that opened a page with the token the session cookie (so that the
        forms work without the token in every URL)."""
        if self._session is not None and request.cookies.get(SESSION_COOKIE) != self._session \
                and isinstance(response, HTMLResponse) and self._proof(request) in ("query", "header"):
            response.set_cookie(SESSION_COOKIE, self._session, path="/", httponly=True, samesite="strict",
                                secure=request.url.scheme == "https")
        return response

    # -- responses

    def _html(self, request: Request, template: str, status: int = 200, **ctx: Any) -> HTMLResponse:
        u = ctx.pop("u", None) or self._urls(request)
        body = self.env.get_template(template).render(
            u=u, csrf=self._csrf if self._proof(request) else None, can_write=self.can_write,
            requires_token=self.requires_token, write_note=self._write_note(), **ctx)
        return HTMLResponse(body, status_code=status, headers=_SECURITY_HEADERS)

    def _write_note(self) -> str | None:
        """Why this dashboard has no re-run / cancel buttons (None: it has them)."""
        if self._token is None:
            return "Re-run and cancel need the dashboard token (start it with --token)."
        if self.operator is None:
            return f"Re-run and cancel need the running engine: {_ENGINE_DASHBOARD}."
        return None

    def _json(self, obj: Any, status: int = 200) -> JSONResponse:
        return JSONResponse(obj, status_code=status, headers=_SECURITY_HEADERS)

    def _error(self, request: Request, status: int, message: str, api: bool, title: str | None = None) -> Response:
        """``title``: the HTML page's heading where the status's usual one does not fit the case."""
        if api:
            return self._json({"error": message}, status)
        titles = {400: "Bad request", 401: "Token needed", 403: "Forbidden", 404: "Not found",
                  405: "Not allowed", 409: "Conflict", 503: "Journal unavailable"}
        back = next((b for b in _BACK if request.url.path.startswith(PREFIX + b[0])), ("/", "the overview"))
        return self._html(request, "error.html", status, title=title or titles.get(status, "Error"), message=message,
                          back=back)

    def not_found(self, routes: list[BaseRoute]) -> Callable[[Request], Response]:
        """The answer to a request ``routes`` do not take: 405 with ``Allow`` where one of
        them has the path, else 404; an HTML page, JSON under ``/api/``."""
        def endpoint(request: Request) -> Response:
            api = request.url.path.startswith("/api/")
            allow = allowed_methods(routes, request.scope)  # None: no route has this path, whatever the method
            if allow is not None:
                resp = self._error(request, 405, f"{request.method} is not allowed here (the dashboard takes POST "
                                                 f"only to re-run, cancel and resume)", api)
                resp.headers["Allow"] = allow
                return resp
            return self._error(request, 404, f"nothing at {request.url.path}", api)
        return endpoint

    def _urls(self, request: Request) -> Callable[..., str]:
        token = self._token_in_query(request)

        def u(path: str, **params: Any) -> str:
            q = {k: v for k, v in params.items() if v not in (None, "", False)}
            if token is not None:
                q["token"] = token
            return path + ("?" + urllib.parse.urlencode(q) if q else "")
        u.token = token  # type: ignore[attr-defined]  # the page's forms carry it on
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

    def _reasons(self, e: dict) -> list[dict] | None:
        """Why each other rule of the event's source did not match; None: rules unknown."""
        matcher = self.rules.matcher()
        if matcher is None:
            return None
        try:
            event = Event.from_json(e)
        except ValueError:
            return None
        files = self.rules.rule_files()
        out = []
        for r in matcher.explain(event):
            span = r.get("span")
            r = {"rule": r.get("rule"), "condition": r.get("condition"), "line": span[0] if span else None,
                 "span": span, "file": files.get(r.get("rule")), "field": r.get("field"), "value": r.get("value"),
                 "note": r.get("note")}
            out.append({**r, "text": reason_text(r)})
        corr = self.rules.correlation_rules()
        if corr:  # the members of correlation rules listening to the source (SPEC §11.5)
            from ..correlation.render import member_reasons

            for r in member_reasons(corr, event):
                span = r["span"]
                r = {**r, "line": span[0] if span else None, "file": files.get(r["rule"])}
                out.append({**r, "text": reason_text(r) if r["condition"] is not None else r["note"]})
        return out

    def _event_row(self, j: Store, e: dict) -> dict:
        runs = list(reversed(j.list_runs(limit=20, event_id=e["id"])))
        return {**e, "runs": runs, "taken": self._taken(j, e["id"]),
                "reasons": None if e["matched"] else self._reasons(e)}

    @staticmethod
    def _taken(j: Store, event_id: str) -> list[dict]:
        """What correlation rules did with an event, one entry per group (``{rule, member,
        group, actions, run}``; ``run`` the run a fired group made, which belongs to the
        ``correlation.fired`` event): an event that only a correlation rule took matched no
        ordinary rule, but it was not ignored (its row said "no rule matched" beside the
        deploy it had started), and one that both did started more than its own runs."""
        if not hasattr(j, "groups_of_event"):
            return []
        out: dict[Any, dict] = {}
        for a in j.groups_of_event(event_id):
            t = out.setdefault(a["group"] or (a["rule"], a["member"], a["action"]),
                               {"rule": a["rule"], "member": a["member"], "group": a["group"], "actions": [],
                                "run": None})
            if a["action"] not in t["actions"]:
                t["actions"].append(a["action"])
        for t in out.values():
            if "fire" in t["actions"] and t["group"]:
                g = j.get_group(t["group"])
                t["run"] = j.get_run(g["run_id"]) if g and g.get("run_id") else None
        return list(out.values())

    def _rule_names(self, j: Store, selected: str | None) -> list[str]:
        names = set(self.rules.names())
        names.update(r["rule"] for r in j.list_runs(limit=200))
        if selected:
            names.add(selected)
        return sorted(names)

    def _paused(self) -> dict[str, dict]:
        paused = getattr(self.operator, "paused", None)
        try:
            return dict(paused()) if paused is not None else {}
        except Exception:  # pragma: no cover - a view must not fail for it
            return {}

    # -- pages

    def overview(self, request: Request) -> Response:
        q = request.query_params
        for names, page in ((RUN_PARAMS, "/runs"), (EVENT_PARAMS, "/events")):
            if any(q.get(n) for n in names):  # the old overview's filters: the table they filter
                return RedirectResponse(PREFIX + page + ("?" + request.url.query if request.url.query else ""), 307)
        limit = _limit(q, OVERVIEW_LIMIT)
        with self.journal() as j:
            runs = j.list_runs(limit=limit)
            events = [self._event_row(j, e) for e in j.list_events(limit=limit)]
            counts = j.run_counts() if hasattr(j, "run_counts") else {}
            day = time.time() - 86400  # what failed lately, whatever the newest rows show (a busy rule hides it)
            failed = {s: len(j.list_runs(limit=FAILED_SHOWN, status=s, since=day)) for s in ("failed", "timed_out")}
        u = self._urls(request)
        queued = sum(c.get("queued", 0) for c in counts.values())
        running = sum(c.get("running", 0) for c in counts.values())
        return self._html(request, "index.html", u=u, runs=runs, events=events, queued=queued, running=running,
                          failed=failed, failed_shown=FAILED_SHOWN, paused=self._paused(),
                          stream=u(PREFIX + "/stream", view="overview"), limit=limit, rules_note=self.rules.note)

    def runs_page(self, request: Request) -> Response:
        f = RunFilters.parse(request.query_params, PAGE_LIMIT)
        with self.journal() as j:
            runs = j.list_runs(limit=f.limit, before_id=f.before, **f.store_args())
            names = self._rule_names(j, f.rule)
        u = self._urls(request)
        stream = u(PREFIX + "/stream", view="runs", **f.params(limit=None, before=None)) if f.live else None
        older = runs[-1]["id"] if len(runs) == f.limit else None
        return self._html(request, "runs.html", u=u, f=f, runs=runs, rule_names=names, stream=stream, older=older)

    def events_page(self, request: Request) -> Response:
        f = EventFilters.parse(request.query_params, PAGE_LIMIT)
        with self.journal() as j:
            events = [self._event_row(j, e) for e in j.list_events(limit=f.limit, before=f.before, **f.store_args())]
        u = self._urls(request)
        stream = u(PREFIX + "/stream", view="events", **f.params(limit=None, before=None)) if f.live else None
        older = events[-1]["id"] if len(events) == f.limit else None
        return self._html(request, "events.html", u=u, f=f, events=events, stream=stream, older=older,
                          rules_note=self.rules.note)

    def _run_context(self, j: Store, run: dict) -> dict:
        event = j.get_event(run["event_id"])
        audit = j.list_audit(run_id=run["id"]) if hasattr(j, "list_audit") else []
        reruns = [r for r in j.list_runs(limit=20, event_id=run["event_id"]) if r.get("rerun_of") == run["id"]]
        return {"run": run, "event": event, "audit": audit, "reruns": list(reversed(reruns)),
                "live": run["status"] not in FINAL_STATUSES, "paused": self._paused()}

    def run_page(self, request: Request) -> Response:
        run_id = self._run_id(request)
        with self.journal() as j:
            run = j.get_run(run_id) if run_id is not None else None
            if run is None:
                return self._error(request, 404, f"there is no run {request.path_params['run_id']}", api=False)
            ctx = self._run_context(j, run)
            live = ctx["live"]
            # complete lines only while it goes: the stream sends the rest as it is written
            chunk = read_view(j, run_id, self._masker(j, run_id), more=live, lines=live)
        offset = chunk.end
        lines = styled_lines(log_lines_raw(chunk.data, chunk.truncated))
        u = self._urls(request)
        log_stream = u(f"{PREFIX}/runs/{run_id}/stream", offset=str(offset), shown=run["status"]) if live else None
        return self._html(request, "run.html", u=u, lines=lines, log_truncated=chunk.truncated,
                          log_exists=chunk.exists, log_stream=log_stream, **ctx)

    def run_log_download(self, request: Request) -> Response:
        """The whole log (its last 1 MiB in store mode), stream markers taken out: the text
        the action wrote, terminal escapes kept (``less -R`` shows them)."""
        run_id = self._run_id(request)
        with self.journal() as j:
            run = j.get_run(run_id) if run_id is not None else None
            if run is None:
                return self._error(request, 404, f"there is no run {request.path_params['run_id']}", api=False)
            final = run["status"] in FINAL_STATUSES   # (before the read: then the log read is whole)
            follower = LogFollower(j, run_id, self._masker(j, run_id))
            body = None if follower.path is not None else b"".join(follower.read(final))
        headers = {**_SECURITY_HEADERS, "Content-Disposition": f'attachment; filename="run-{run_id}.log"'}
        if body is not None:
            if not follower.exists:
                return self._error(request, 404, f"run {run_id} has no log", api=False)
            return Response(body, media_type="text/plain; charset=utf-8", headers=headers)
        if not follower.path.exists():
            return self._error(request, 404, f"run {run_id} has no log", api=False)
        return StreamingResponse(follower.read(final), media_type="text/plain; charset=utf-8", headers=headers)

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
            taken = self._taken(j, event_id)
        return self._html(request, "event.html", e=e, runs=runs, reasons=self._reasons(e), rules_note=self.rules.note,
                          admitted=admitted, taken=taken)

    # -- correlation groups (SPEC §11.7)

    def _group_query(self, request: Request, default_limit: int) -> tuple[str | None, str | None, str | None, int]:
        q = request.query_params
        state = (q.get("state") or q.get("status") or "").strip() or None
        if state is not None and state not in GROUP_STATES:
            raise BadRequest(f"unknown state {state!r} (one of {', '.join(GROUP_STATES)})")
        return (q.get("rule") or "").strip() or None, state, (q.get("key") or "").strip() or None, \
            _limit(q, default_limit)

    def groups_page(self, request: Request) -> Response:
        rule, _, key, limit = self._group_query(request, MAX_LIMIT)
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
        return self._html(request, "groups.html", rules=list(by_rule.values()), supported=supported, u=u,
                          stream=stream, limit=limit)

    def group_page(self, request: Request) -> Response:
        group_id = request.path_params["group_id"]
        with self.journal() as j:
            g = j.get_group(group_id) if hasattr(j, "get_group") else None
            run = j.get_run(g["run_id"]) if g is not None and g.get("run_id") else None
        if g is None:
            return self._error(request, 404, f"there is no group {group_id}", api=False)
        return self._html(request, "group.html", g=g, run=run)

    def api_groups(self, request: Request) -> Response:
        rule, state, key, limit = self._group_query(request, API_LIMIT)
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

    def _sources(self, j: Store) -> dict[str, Any]:
        """What the sources page and ``/api/sources`` show."""
        manifest = self.rules.manifest() or {}
        sources = manifest.get("sources") or {}
        http = sources.get("http") or {}
        deliveries = j.list_deliveries if hasattr(j, "list_deliveries") else None
        routes = []
        for r in http.get("routes") or []:
            items = deliveries(route=r.get("path"), limit=DELIVERIES_SHOWN) if deliveries else []
            routes.append({"path": r.get("path"), "kind": r.get("kind", "http"),
                           "methods": r.get("methods"), "verify": r.get("verify"),
                           "verification": verification_text(r), "deliveries": items})
        counts = j.run_counts() if hasattr(j, "run_counts") else {}
        paused = self._paused()
        rules = []
        for rule in manifest.get("rules") or []:
            name = rule["name"]
            recent = j.list_runs(rule=name, limit=RULE_HISTORY)
            done = [r for r in recent if r["status"] in ("succeeded", "failed", "timed_out")]
            waits = [r["wait"] for r in recent if r.get("wait") is not None]
            durations = [r["duration"] for r in done if r.get("duration") is not None]
            c = counts.get(name, {})
            rules.append({
                "name": name, "trigger": trigger_text(rule.get("trigger")), "action": rule.get("action"),
                "runs": list(reversed(recent[:10])),
                "success_rate": (sum(r["status"] == "succeeded" for r in done) / len(done)) if done else None,
                "finished": len(done),
                "avg_wait": sum(waits) / len(waits) if waits else None,
                "avg_duration": sum(durations) / len(durations) if durations else None,
                "queued": c.get("queued", 0), "running": c.get("running", 0),
                "paused": paused.get(name)})
        others = {k: v for k, v in sorted(sources.items()) if k != "http"}
        if isinstance(others.get("schedule"), Mapping):  # a copy: the manifest is cached
            others["schedule"] = {**others["schedule"],
                                  "schedules": [_with_next_tick(x) for x in others["schedule"].get("schedules") or []]}
        bound = self.listener() if self.listener is not None else None
        host, port = bound if bound is not None else (http.get("host"), http.get("port"))
        return {"routes": routes, "rules": rules, "others": others,
                "queued": sum(c.get("queued", 0) for c in counts.values()),
                "running": sum(c.get("running", 0) for c in counts.values()),
                "deliveries_recorded": deliveries is not None,
                "http": {"host": host, "port": port, "max_body": http.get("max_body")}
                if http else None}

    def sources_page(self, request: Request) -> Response:
        with self.journal() as j:
            data = self._sources(j)
        return self._html(request, "sources.html", rules_note=self.rules.note, **data)

    def static_file(self, request: Request) -> Response:
        """A file of ``static/``, to anyone (it holds no data). Decision: a name that is not
        one gets the 404 of every other GET under ``/dashboard/`` (:meth:`not_found`, the
        Fallback under ``serve``), the HTML page, not a plain-text line of its own: one answer
        for every path a user may type or follow, and what nginx or GitHub Pages give a missing
        asset; a ``<script>`` or ``<link>`` that misses never shows its body, so a shorter
        one would save nothing."""
        item = self.static.get(request.path_params["name"])
        if item is None:
            return self._error(request, 404, f"nothing at {request.url.path}", api=False)
        body, media = item
        return Response(body, media_type=media, headers={"Cache-Control": "max-age=300",
                                                         "X-Content-Type-Options": "nosniff"})

    # -- the JSON API

    def api_runs(self, request: Request) -> Response:
        f = RunFilters.parse(request.query_params, API_LIMIT)
        with self.journal() as j:
            runs = j.list_runs(limit=f.limit, before_id=f.before, **f.store_args())
        return self._json({"runs": [public_run(r) for r in runs],
                           "next_before": runs[-1]["id"] if len(runs) == f.limit else None})

    def _run_id(self, request: Request) -> int | None:
        return _run_number(request.path_params["run_id"])

    def api_run(self, request: Request) -> Response:
        run_id = self._run_id(request)
        if run_id is None:
            return self._error(request, 404, f"there is no run {request.path_params['run_id']}", api=True)
        with self.journal() as j:
            run = j.get_run(run_id)
            if run is None:
                return self._error(request, 404, f"there is no run {run_id}", api=True)
            event = j.get_event(run["event_id"])
            chunk = read_view(j, run_id, self._masker(j, run_id), more=run["status"] not in FINAL_STATUSES)
            text, truncated = clean_log(chunk.data, chunk.truncated), chunk.truncated
            audit = j.list_audit(run_id=run_id) if hasattr(j, "list_audit") else []
        return self._json({**public_run(run), "log": text, "log_truncated": truncated,
                           "event": public_event(event) if event else None, "audit": audit})

    def api_run_log(self, request: Request) -> Response:
        """``{"offset", "next_offset", "truncated", "lines": [{"stream", "text"}], "final"}``:
        the complete lines of a run's log from byte ``offset`` (default: its last 256 KiB)."""
        run_id = self._run_id(request)
        if run_id is None:
            return self._error(request, 404, f"there is no run {request.path_params['run_id']}", api=True)
        offset = _int(request.query_params.get("offset"), "offset", None)
        if offset is not None and offset < 0:
            raise BadRequest("offset must not be negative")
        with self.journal() as j:
            run = j.get_run(run_id)
            if run is None:
                return self._error(request, 404, f"there is no run {run_id}", api=True)
            final = run["status"] in FINAL_STATUSES
            chunk = read_view(j, run_id, self._masker(j, run_id), offset, more=not final, lines=True,
                              line_start=True)
        return self._json({"offset": chunk.start, "next_offset": chunk.end,
                           "truncated": offset is None and chunk.truncated or (offset or 0) < chunk.start,
                           "lines": [{"stream": s, "text": t} for s, t in log_lines(chunk.data)],
                           "final": final, "status": run["status"]})

    def api_events(self, request: Request) -> Response:
        f = EventFilters.parse(request.query_params, API_LIMIT)
        with self.journal() as j:
            events = j.list_events(limit=f.limit, before=f.before, **f.store_args())
            out = []
            for e in events:
                d = public_event(e)
                d["runs"] = [r["id"] for r in reversed(j.list_runs(limit=MAX_LIMIT, event_id=e["id"]))]
                out.append(d)
        return self._json({"events": out, "next_before": events[-1]["id"] if len(events) == f.limit else None})

    def api_event(self, request: Request) -> Response:
        event_id = request.path_params["event_id"]
        e, runs = self._event_and_runs(event_id)
        if e is None:
            return self._error(request, 404, f"there is no event {event_id}", api=True)
        return self._json({**public_event(e, data=True), "runs": [public_run(r) for r in runs],
                           "not_matched": self._reasons(e)})

    def api_sources(self, request: Request) -> Response:
        with self.journal() as j:
            data = self._sources(j)
        for r in data["rules"]:
            r["runs"] = [{"id": x["id"], "status": x["status"]} for x in r["runs"]]
        return self._json(data)

    # -- writes: re-run, cancel, resume

    def _origin_ok(self, request: Request) -> bool:
        """The POST comes from a page of this dashboard (its Origin, or else its Referer)."""
        host = request.headers.get("host")
        if not host:
            return False
        own = f"{request.url.scheme}://{host}".lower()
        origin = request.headers.get("origin")
        if origin is not None:
            return origin.lower() == own
        referer = request.headers.get("referer")
        if referer:
            parts = urllib.parse.urlsplit(referer)
            return f"{parts.scheme}://{parts.netloc}".lower() == own
        return False

    def _actor(self, request: Request, via: str) -> str:
        remote = request.client.host if request.client else "?"
        name = _clean_actor(request.headers.get("x-triggerlang-actor")) if via == "cli" else None
        return f"{name} (cli) from {remote}" if name else f"{via} from {remote}"

    async def _operate(self, action: str, target: Any, actor: str) -> dict:
        op = self.operator
        if action == "rerun":
            new_id = await op.rerun(int(target), actor)
            return {"run_id": int(target), "rerun": new_id}
        if action == "cancel":
            status = await op.cancel(int(target), actor)
            return {"run_id": int(target), "status": status}
        if action == "resume":
            was = await op.resume(str(target), actor)
            return {"rule": str(target), "resumed": was}
        raise OperationError(404, f"unknown action {action!r}")  # pragma: no cover

    def _write_refusal(self, request: Request, api: bool) -> Response | None:
        if self._token is None:
            return self._error(request, 403, "re-run, cancel and resume need the dashboard token: "
                                             "start the dashboard with --token", api)
        if self.operator is None:  # a clause, as the API's other errors (the CLI says "error: " before it)
            return self._error(request, 503, f"re-run, cancel and resume need the running engine: "
                                             f"{_ENGINE_DASHBOARD}", api, title="Needs the running engine")
        return None

    async def _read_form(self, request: Request) -> dict[str, str]:
        body = b""
        async for part in request.stream():
            body += part
            if len(body) > FORM_LIMIT:
                raise BadRequest("the form is too large")
        return {k: v[-1] for k, v in urllib.parse.parse_qs(body.decode("utf-8", "replace")).items()}

    def form_action(self, action: str) -> Callable[[Request], Any]:
        """A page's button: POST (form) -> the write -> 303 to the run (or the sources page)."""
        async def endpoint(request: Request) -> Response:
            denied = self._denied(request, api=False) or self._write_refusal(request, api=False)
            if denied is not None:
                return denied
            if self._proof(request) != "header":
                form = await self._read_form(request)
                given = (form.get("csrf") or "").encode("utf-8")
                if not self._origin_ok(request) or not hmac.compare_digest(given, (self._csrf or "").encode()):
                    log.warning("dashboard: refused a %s from %s: its origin or CSRF token is wrong", action,
                                request.client.host if request.client else "?")
                    return self._error(request, 403, "this form did not come from this dashboard "
                                                     "(its Origin or CSRF token is wrong): reload the page", api=False)
            target = request.path_params.get("run_id", request.path_params.get("rule"))
            if action != "resume" and self._run_id(request) is None:
                return self._error(request, 404, f"there is no run {target}", api=False)
            try:
                done = await self._operate(action, target, self._actor(request, "dashboard"))
            except OperationError as e:
                return self._error(request, e.status, str(e), api=False)
            u = self._urls(request)
            if action == "rerun":
                where = u(f"{PREFIX}/runs/{done['rerun']}")
            elif action == "cancel":
                where = u(f"{PREFIX}/runs/{target}")
            else:
                where = u(f"{PREFIX}/sources")
            return RedirectResponse(where, 303, headers={"Cache-Control": "no-store"})
        return endpoint

    def api_action(self, action: str) -> Callable[[Request], Any]:
        """The API's writes (``triggerc rerun|cancel|resume``): the token in the
        Authorization header only, so no other site can make a browser send one."""
        async def endpoint(request: Request) -> Response:
            denied = self._denied(request, api=True) or self._write_refusal(request, api=True)
            if denied is not None:
                return denied
            if self._proof(request) != "header":
                return self._error(request, 403, "writes through the API take the token in the "
                                                 "Authorization header (Bearer), not in the URL or a cookie", True)
            target = request.path_params.get("run_id", request.path_params.get("rule"))
            if action != "resume":
                target = self._run_id(request)
                if target is None:
                    return self._error(request, 404, f"there is no run {request.path_params['run_id']}", api=True)
            try:
                done = await self._operate(action, target, self._actor(request, "cli"))
            except OperationError as e:
                return self._error(request, e.status, str(e), api=True)
            return self._json(done)
        return endpoint

    # -- the streams

    async def stream(self, request: Request) -> Response:
        try:
            q = request.query_params
            view = q.get("view") or ("groups" if q.get("groups") == "1" else "overview")
            if view not in ("overview", "runs", "events", "groups"):
                raise BadRequest(f"unknown view {view!r} (overview, runs, events or groups)")
            rf = RunFilters.parse(q, PAGE_LIMIT) if view in ("runs", "groups") else RunFilters()
            ef = EventFilters.parse(q, PAGE_LIMIT) if view == "events" else EventFilters()
            since_run = _int(q.get("since_run"), "since_run", 0)
            open_runs: dict[int, str] = {}
            for item in (q.get("open") or "").split(","):
                rid, _, status = item.partition(":")
                if (run_id := whole_number(rid)) is not None:
                    open_runs[run_id] = status
        except BadRequest as e:
            return self._error(request, 400, str(e), api=True)
        since_event = request.query_params.get("since_event") or None
        u = self._urls(request)
        state = _StreamState(view, rf, ef, since_run, since_event, open_runs)
        return self._sse_response(request, lambda j: self._poll(j, state, u), POLL_INTERVAL)

    def _sse_response(self, request: Request, poll: Callable[[Store], tuple[list[str], bool]],
                      interval: float) -> Response:
        """A text/event-stream that calls ``poll(store)`` every ``interval`` seconds (in the
        thread pool) and sends what it returns, until it says it is done, the stream's
        lifetime is up (``reconnect``) or the server closes."""
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
                    try:
                        out, finished = await run_in_threadpool(poll, j)
                    except JournalError as e:   # the database restarting under a --store dashboard
                        log.warning("dashboard: %s", e)
                        yield ": cannot read the journal\n\n"  # the page's script tries again
                        return
                    if out:
                        quiet = 0.0
                        yield "".join(out)
                    else:
                        quiet += interval
                        if quiet >= KEEPALIVE:
                            quiet = 0.0
                            yield ": keep-alive\n\n"
                    if finished:
                        return
                    if self.closing.is_set() or time.monotonic() >= end:
                        yield _sse("reconnect", {})
                        return
                    await asyncio.sleep(interval)
            finally:
                self.release(j)

        return StreamingResponse(messages(), media_type="text/event-stream",
                                 headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no",
                                          "X-Content-Type-Options": "nosniff"})

    def _poll(self, j: Store, st: "_StreamState", u: Callable[..., str]) -> tuple[list[str], bool]:
        """The messages for what changed in the journal since the last poll."""
        if st.view == "groups":
            return self._poll_groups(j, st, u), False
        out: list[str] = []
        rows = _rows_module(self.env)
        runs = j.list_runs(limit=STREAM_WINDOW, **st.runs_filter.store_args())
        changed_events: set[str] = set()
        if st.runs is None and st.view == "events":
            # the events page shows no run rows to compare with: its rows are as fresh as the page
            st.runs = {r["id"]: (r["status"], r["exit_code"], r["finished_at"], r["started_at"]) for r in runs}
        for r in reversed(runs):  # oldest first, so the page inserts them in order
            key = (r["status"], r["exit_code"], r["finished_at"], r["started_at"])
            if st.runs is None:  # the first poll: compare with what the page said it shows
                new = r["id"] > st.since_run
                changed = not new and r["id"] in st.open_runs and st.open_runs[r["id"]] != r["status"]
            else:
                new = r["id"] not in st.runs
                changed = not new and st.runs[r["id"]] != key
            if new or changed:
                if st.view != "events":
                    html = rows.run_row(r, u)
                    out.append(_sse("run", {"id": r["id"], "status": r["status"], "update": not new,
                                            "html": str(html)}))
                changed_events.add(r["event_id"])
        st.runs = {r["id"]: (r["status"], r["exit_code"], r["finished_at"], r["started_at"]) for r in runs}
        if st.view == "runs":
            return out, False

        ef = st.events_filter
        top = j.list_events(limit=1, **ef.store_args())
        top_id = top[0]["id"] if top else None
        new_events: list[dict] = []
        if top_id is not None and top_id != st.last_event:
            for e in j.list_events(limit=STREAM_WINDOW, **ef.store_args()):
                if e["id"] == st.last_event:
                    break
                new_events.append(e)
            st.last_event = top_id
        shown = {e["id"] for e in new_events}
        for e in reversed(new_events):
            changed_events.discard(e["id"])
            html = rows.event_row(self._event_row(j, e), u)
            out.append(_sse("event", {"id": e["id"], "update": False, "html": str(html)}))
        for event_id in sorted(changed_events - shown):
            e = j.get_event(event_id)
            if e is not None and ef.shows(e):
                html = rows.event_row(self._event_row(j, e), u)
                out.append(_sse("event", {"id": e["id"], "update": True, "html": str(html)}))
        return out, False

    def _poll_groups(self, j: Store, st: "_StreamState", u: Callable[..., str]) -> list[str]:
        """The groups page's stream: a ``group`` message (the row, rendered) per group that
        is new or changed since the last poll (the first poll sends none: the page has them)."""
        if not hasattr(j, "list_groups"):
            return []
        rows = _rows_module(self.env)
        out = []
        groups = j.list_groups(limit=STREAM_WINDOW, rule=st.runs_filter.rule)
        seen = {g["id"]: (g["state"], g["closed_at"], len(g["members"]), g["deadline"]) for g in groups}
        if st.groups is not None:
            for g in reversed(groups):
                if st.groups.get(g["id"]) != seen[g["id"]]:
                    html = rows.group_row(g, u)
                    out.append(_sse("group", {"id": g["id"], "rule": g["rule"], "live": g["live"],
                                              "update": g["id"] in st.groups, "html": str(html)}))
        st.groups = seen
        return out

    async def run_stream(self, request: Request) -> Response:
        run_id = self._run_id(request)
        if run_id is None:
            return self._error(request, 404, f"there is no run {request.path_params['run_id']}", api=True)
        try:
            offset = _int(request.query_params.get("offset"), "offset", 0)
        except BadRequest as e:
            return self._error(request, 400, str(e), api=True)
        if not await run_in_threadpool(self._has_run, run_id):  # as the run's page and the API answer
            return self._error(request, 404, f"there is no run {run_id}", api=True)
        u = self._urls(request)
        st = _LogState(run_id, max(0, offset), csrf=self._csrf if self._proof(request) else None,
                       seen=request.query_params.get("shown") or None)
        return self._sse_response(request, lambda j: self._poll_log(j, st, u), LOG_POLL_INTERVAL)

    def _has_run(self, run_id: int) -> bool:
        with self.journal() as j:
            return j.get_run(run_id) is not None

    def _poll_log(self, j: Store, st: "_LogState", u: Callable[..., str]) -> tuple[list[str], bool]:
        """New complete log lines of one run, its status when it changes, ``end`` once over."""
        run = j.get_run(st.run_id)
        if run is None:
            return [_sse("end", {"status": None})], True
        final = run["status"] in FINAL_STATUSES
        chunk = read_view(j, st.run_id, self._masker(j, st.run_id), st.offset, more=not final, lines=True,
                          line_start=True)
        out = []
        if chunk.data or chunk.start > st.offset:
            out.append(_sse("lines", {"lines": styled_lines(log_lines_raw(chunk.data)), "offset": chunk.end,
                                      "skipped": chunk.start > st.offset}))
            st.offset = chunk.end
        if run["status"] != st.seen:  # the page shows another status: send the run's summary again
            ctx = self._run_context(j, run)
            summary = _run_module(self.env).summary(u=u, csrf=st.csrf, can_write=self.can_write, **ctx)
            out.append(_sse("status", {"status": run["status"], "html": str(summary)}))
            st.seen = run["status"]
        if final:
            out.append(_sse("end", {"status": run["status"]}))
        return out, final

    # -- routes

    def routes(self) -> list[BaseRoute]:
        g = self.guarded
        p = PREFIX
        return [
            Route(p, lambda request: RedirectResponse(self._urls(request)(p + "/"), 307)),
            Route(p + "/", g(self.overview, api=False), methods=["GET"]),
            Route(p + "/runs", g(self.runs_page, api=False), methods=["GET"]),
            Route(p + "/events", g(self.events_page, api=False), methods=["GET"]),
            Route(p + "/sources", g(self.sources_page, api=False), methods=["GET"]),
            Route(p + "/runs/{run_id:int}", g(self.run_page, api=False), methods=["GET"]),
            Route(p + "/runs/{run_id:int}/log", g(self.run_log_download, api=False), methods=["GET"]),
            Route(p + "/runs/{run_id:int}/stream", g(self.run_stream, api=True), methods=["GET"]),
            Route(p + "/runs/{run_id:int}/rerun", self.form_action("rerun"), methods=["POST"]),
            Route(p + "/runs/{run_id:int}/cancel", self.form_action("cancel"), methods=["POST"]),
            Route(p + "/rules/{rule:str}/resume", self.form_action("resume"), methods=["POST"]),
            Route(p + "/events/{event_id:str}", g(self.event_page, api=False), methods=["GET"]),
            Route(p + "/stream", g(self.stream, api=True), methods=["GET"]),
            Route(p + "/static/{name:str}", self.static_file, methods=["GET"]),
            Route("/api/runs", g(self.api_runs, api=True), methods=["GET"]),
            Route("/api/runs/{run_id:str}", g(self.api_run, api=True), methods=["GET"]),
            Route("/api/runs/{run_id:str}/log", g(self.api_run_log, api=True), methods=["GET"]),
            Route("/api/runs/{run_id:str}/rerun", self.api_action("rerun"), methods=["POST"]),
            Route("/api/runs/{run_id:str}/cancel", self.api_action("cancel"), methods=["POST"]),
            Route("/api/rules/{rule:str}/resume", self.api_action("resume"), methods=["POST"]),
            Route("/api/events", g(self.api_events, api=True), methods=["GET"]),
            Route("/api/events/{event_id:str}", g(self.api_event, api=True), methods=["GET"]),
            Route("/api/sources", g(self.api_sources, api=True), methods=["GET"]),
            Route(p + "/groups", g(self.groups_page, api=False), methods=["GET"]),
            Route(p + "/groups/{group_id:str}", g(self.group_page, api=False), methods=["GET"]),
            Route("/api/groups", g(self.api_groups, api=True), methods=["GET"]),
            Route("/api/groups/{group_id:str}", g(self.api_group, api=True), methods=["GET"]),
        ]


@dataclass
class _StreamState:
    view: str
    runs_filter: RunFilters
    events_filter: EventFilters
    since_run: int
    last_event: str | None
    open_runs: dict[int, str]
    runs: dict[int, tuple] | None = None  # run id -> (status, exit_code, finished_at, started_at) last seen
    groups: dict[str, tuple] | None = None  # the groups page's stream: group id -> what it last showed


@dataclass
class _LogState:
    run_id: int
    offset: int
    csrf: str | None = None  # the page's forms (the summary sent on a status change has buttons)
    seen: str | None = field(default=None)  # the status the page shows


def _rows_module(env: Environment) -> Any:
    return env.get_template("_rows.html").module  # type: ignore[attr-defined]


def _run_module(env: Environment) -> Any:
    return env.get_template("_run.html").module  # type: ignore[attr-defined]


# --------------------------------------------------------------------------- entry points


def dashboard_routes(state_dir: Path | str | None, *, token: str | None = None, engine: Any = None,
                     rules_path: Path | None = None, store_url: str | None = None,
                     operator: Any = None,
                     listener: Callable[[], tuple[str, int] | None] | None = None,
                     closing: threading.Event | None = None, secrets: Mapping[str, str] | None = None) -> list[BaseRoute]:
    """The dashboard's routes, to mount on an HTTP listener (``serve --dashboard``).

    ``engine`` (inside ``serve``) supplies the current rules for the explain reasons;
    ``rules_path`` does the same from a file; ``operator`` does re-run, cancel and resume;
    ``listener`` the address bound (:class:`Dashboard`); ``closing``, set by the caller when
    it stops, ends the open streams; ``secrets``, the values ``serve`` read, by name (kept
    current on a reload), are masked in the run logs. An empty token means no token.
    """
    rules = RulesView(engine=engine, rules_path=rules_path)
    # (the state folder's names: the secrets of earlier rules, which a reload dropped)
    masks = LogMasks(state_dir=Path(state_dir) if state_dir is not None and not store_url else None,
                     manifest=rules.manifest, loaded=secrets, note=lambda m: log.warning("dashboard: %s", m))
    d = Dashboard(state_dir, token=token, rules=rules, store_url=store_url, operator=operator, listener=listener,
                  masks=masks)
    if closing is not None:
        d.closing = closing
    routes = d.routes()
    # A GET under /dashboard/ that no page takes (/dashboard/nope, /dashboard/runs/abc) gets the
    # page's own 404 (a POST-only path's GET its 405), as standalone, not the webhooks' JSON;
    # a webhook route a user declared under /dashboard/ keeps its answers, other methods theirs.
    return [*routes, Fallback(PREFIX + "/{rest:path}", d.not_found(routes), methods=["GET"])]


def serve_note(url: str, token: str | None) -> str:
    """``serve --dashboard``'s line at the start of its listener: the page's whole URL, as
    ``triggerc dashboard`` logs it, one click from the log (the token is left out: never in
    a log), and who it answers."""
    access = "token required; re-run and cancel on" if token else "loopback clients only, read-only"
    return f"dashboard at {url}{PREFIX}/ ({access})"


def create_app(state_dir: Path | str | None, *, token: str | None = None, rules_path: Path | None = None,
               stream_lifetime: float = STANDALONE_STREAM_LIFETIME, store_url: str | None = None,
               operator: Any = None) -> Starlette:
    """The standalone dashboard (``triggerc dashboard``): the routes, ``/`` redirecting to the page.

    ``app.state.dashboard`` is the :class:`Dashboard` (set its ``closing`` to end the streams).
    """
    d = Dashboard(state_dir, token=token, rules=RulesView(rules_path=rules_path), stream_lifetime=stream_lifetime,
                  store_url=store_url, operator=operator)

    def home(request: Request) -> Response:
        return RedirectResponse(d._urls(request)(PREFIX + "/"), 307)

    routes = [Route("/", home, methods=["GET"]), *d.routes()]

    app = Starlette(routes=[
        *routes,
        Route("/{path:path}", d.not_found(routes), methods=["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]),
    ])
    app.state.dashboard = d
    return app


def run_standalone(state_dir: Path | None, *, host: str, port: int, token: str | None, rules_path: Path | None,
                   echo: Callable[[str], None] = print, store_url: str | None = None) -> int:
    """Serve :func:`create_app` with uvicorn until SIGINT/SIGTERM; the exit code."""
    import errno

    import uvicorn

    from ..sources.http import _bind

    operator = None
    if store_url:
        from ..runtime.operations import StoreOperator

        operator = StoreOperator(lambda: app.state.dashboard.open_store())
    app = create_app(state_dir, token=token, rules_path=rules_path, store_url=store_url, operator=operator)
    try:
        socks = _bind(host, port)
    except OSError as e:
        hint = " (the port is in use; choose another with --port)" if e.errno == errno.EADDRINUSE else ""
        echo(f"triggerc: error: cannot listen on {host}:{port}: {e.strerror or e}{hint}")
        return 1
    bound = socks[0].getsockname()[1]
    for sock in socks:  # listening before the line that gives the URL: a script may connect at once
        sock.listen(2048)  # uvicorn's backlog; it listens again when it starts
    shown = f"[{host}]" if ":" in host else host
    if not token:
        access = "loopback clients only, read-only"
    elif operator is None:
        access = "token required; read-only (re-run and cancel are on serve's dashboard)"
    else:
        access = "token required; re-run and cancel on"
    from ..runtime.store import redact_url

    where = redact_url(store_url) if store_url else state_dir
    echo(f"dashboard: http://{shown}:{bound}/dashboard/ ({access}); journal in {where}")
    from ..sources.http_lean import bounded_protocol

    config = uvicorn.Config(app, host=host, port=bound, log_level="warning", log_config=None, access_log=False,
                            lifespan="off", server_header=False, proxy_headers=True, http=bounded_protocol(),
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


__all__ = ["Dashboard", "RulesView", "RunFilters", "EventFilters", "OperationError", "dashboard_routes",
           "create_app", "run_standalone", "read_log", "reason_text", "ago", "PREFIX", "LOG_TAIL"]
