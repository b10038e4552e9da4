"""The store: where events, runs and their logs live (SPEC §9, §12).

Two stores implement one boundary:

* :class:`~triggerlang.runtime.journal.SqliteStore` (``journal.sqlite3`` in the state
  folder; the default, no dependency): one ``triggerc serve`` owns it. Its engine keeps
  each rule's lane in memory and makes the policy decisions there (one process, so
  memory is the truth and the fastest place), then journals the event and the runs it
  decided in ONE transaction. Claiming a run is ``start_run`` (``queued`` ->
  ``running``), finishing it ``mark_finished``; ``recover`` is the reaper of a restart.
* :class:`~triggerlang.runtime.pgstore.PgStore` (``postgresql://...``, the extra
  ``triggerlang[postgres]``): any number of ingest nodes and workers share it. The
  policy decisions are made *in the database*, in the ingest transaction, under a
  transaction-scoped advisory lock on the rule (:meth:`QueueStore.ingest`); workers
  :meth:`~QueueStore.claim` runs with ``FOR UPDATE SKIP LOCKED``, hold a lease by
  :meth:`~QueueStore.heartbeat`, :meth:`~QueueStore.finish` them (the retry and the
  ``run.*`` chain event in the same transaction) and every node
  :meth:`~QueueStore.reap`\\ s expired leases.

The boundary, by who uses it:

============================  ===============================================================
every store (:class:`Store`)   ``list_runs``, ``get_run``, ``list_events``, ``get_event``,
                               ``read_log``, ``close``: the history that ``triggerc
                               runs|events``, the dashboard and the MCP tools read;
                               ``last_tick``: what a ``catch up`` schedule reads
the one-process engine         ``record_event``, ``add_run``, ``update_pending``,
                               ``start_run``, ``mark_finished``, ``set_status``,
                               ``last_run_with_key``, ``recover`` (SqliteStore)
the shared queue               ``ingest``, ``claim``, ``heartbeat``, ``finish``, ``reap``,
(:class:`QueueStore`)          ``cancel_requested``, ``publish_manifest``, ``manifest``,
                               ``store_log`` (PgStore)
============================  ===============================================================

Runs and events have the same shape in both (:class:`RunRow`, the dicts of
``list_runs``/``list_events``), so every reader is written once.

Opening one: :func:`open_store` takes ``--store URL`` (or ``TRIGGERLANG_STORE``) or a state
folder. Only a ``postgresql://`` URL imports psycopg, and only then: ``check``,
``compile``, ``match``, ``test`` and ``fmt`` never do.

Extending the store (correlation groups, delivery history...)
------------------------------------------------------------
State that must be durable together with the event that changed it belongs in the
ingest transaction, on both backends:

1. add the tables to both schemas: ``journal._SCHEMA`` (bump ``SCHEMA_VERSION``: the
   upgrade runs in ``SqliteStore.__init__``'s transaction) and a new entry of
   ``pgstore.MIGRATIONS`` (versioned, idempotent, applied by ``triggerc store migrate``);
2. give both stores the method that changes them, taking the open transaction's
   connection: SQLite runs it inside ``record_event`` (its ``in_tx`` callback, called
   after the event row is written, before the runs), PostgreSQL inside ``ingest`` (the
   same callback, under the rule's advisory lock when it touches a rule's state:
   ``PgStore.lock_rule(cur, rule)``);
3. add the readers to :class:`Store` and both implementations, and a conformance test to
   ``tests/test_store_conformance.py``, which runs against both stores.

In ``serve`` the SQLite journal commits in groups (:mod:`.journal`, "Group commit"): the
``in_tx`` callback runs on the event loop's thread inside the loop pass's batch, under a
savepoint of its own, and that batch may still roll back after ``record_event`` returned
(a full disk). In-memory state the callback changes must follow: register
``journal.on_rollback(hook)`` (correlation groups reload their mirror there), and do what
must wait for durability in ``journal.after_commit(callback)``. Writes nobody waits for (a
delivery's history row) go in ``journal.write_soon(fn)``.

Secrets
-------
A store URL is a secret (it holds the database password). :func:`redact_url` is the only
form in which it is ever logged or put in an error message.
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import re
import urllib.parse
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Collection, Protocol, runtime_checkable

from ..events import whole_number
from ..masking import Masker

STATUSES = ("queued", "running", "succeeded", "failed", "timed_out", "cancelled", "interrupted", "skipped")
FINAL_STATUSES = frozenset(STATUSES) - {"queued", "running"}

LOG_TAIL = 256 * 1024
"""How much of a run's log readers get (its end), by default."""

STORE_ENV = "TRIGGERLANG_STORE"
"""The environment variable that may hold the ``--store`` URL."""


class StoreError(Exception):
    """The store cannot be opened or written; the message is one line for the user.

    Never holds a store URL's password (see :func:`redact_url`).
    """


RETRY_AFTER = 10
"""Seconds a sender is told to wait (``Retry-After``) after a :class:`StoreUnavailable` of the
SQLite journal (a full disk, a read-only file, a lock), which no bound of ours times: the
store calls' default bound. PostgreSQL's say their URL's (:meth:`.pgstore.PgStore.retry_after`)."""


class StoreUnavailable(StoreError):
    """The store cannot take a write now for a reason outside the request, which a later
    try may not meet: PostgreSQL refusing connections (stopped, restarting, failing over),
    a connection lost, out of disk or connections; the SQLite journal on a full disk, a
    read-only file, locked. A delivery gets ``503`` with ``Retry-After: retry_after``
    (sources/http.py), not the ``500`` of an error no wait cures (a bug, a corrupt journal)."""

    def __init__(self, message: str, retry_after: int = RETRY_AFTER) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class StoreClosed(StoreUnavailable):
    """The store was closed: ``serve`` (or a node) is stopping, and a request that came in
    as it closed asked it for a write. Not the request's fault, and the restarted server
    takes it, so a delivery gets ``503`` with ``Retry-After`` (what a server going away
    answers: nginx's and Envoy's draining), never the ``500`` of a bug; nothing of it was
    journaled."""

    def __init__(self, what: str) -> None:
        super().__init__(f"{what} is closed: serve is stopping (not journaled: resend to the restarted server)")


class StoreTimeout(StoreUnavailable):
    """The store did not answer within its bound (a hung database: a stopped VM, a network
    partition), so the call was given up (PostgreSQL: :class:`.pgstore.PgStore`'s ``timeout``)."""


@dataclass
class PlannedRun:
    """A run to create: which rule, which action, the bound inputs.

    ``dedupe_key`` is the value of the rule's ``dedupe <field>`` (as text) when it has one;
    :meth:`Journal.last_run_with_key` looks it up. ``status`` is ``queued`` unless the engine
    already knows the run will not happen (``skipped``, with the reason in ``error``), so
    that it is recorded in the same transaction as its event.
    """

    rule: str
    action: str
    inputs: dict[str, Any]
    dedupe_key: str | None = None
    status: str = "queued"
    error: str | None = None
    not_before: float | None = None  # a debounced run waits for its quiet period


@dataclass
class Intent:
    """A match handed to a shared store's :meth:`QueueStore.ingest`, which decides its run.

    The policies travel with it (the ingest node's current rules): ``busy`` (``queue``,
    ``skip``, ``restart``, ``parallel``), ``debounce`` seconds, ``dedupe_key`` and
    ``dedupe_for`` seconds, ``timeout``/``retry``/``backoff`` (kept on the run, so the
    reaper can retry it without the rules), ``paths_params`` (inputs bound to ``<paths>``:
    a debounced run appends every path of its window) and ``pool`` (``default``, or
    ``node:<hostname>`` for file events, which only a worker on that host may run).
    """

    rule: str
    action: str
    inputs: dict[str, Any]
    busy: str = "queue"
    debounce: float | None = None
    dedupe_key: str | None = None
    dedupe_field: str | None = None
    dedupe_for: float | None = None
    timeout: float | None = 3600.0
    retry: int = 0
    backoff: float = 5.0
    paths_params: tuple[str, ...] = ()
    pool: str = "default"
    skip: str | None = None  # record the run ``skipped`` with this reason (loop protection), decide nothing
    # what the store decided (set by its ingest, for /metrics after the commit): the run's
    # status when it was recorded final (``skipped``), and how many waiting runs a ``busy
    # restart`` cancelled for it
    decided: str | None = field(default=None, compare=False)
    replaced: int = field(default=0, compare=False)


@dataclass
class Recorded:
    """What ``record_event``/``ingest`` wrote (or found, for a duplicate delivery)."""

    event_id: str
    run_ids: list[int] = field(default_factory=list)
    duplicate: bool = False
    # the event's data as written (None for a duplicate); not part of equality
    data_json: str | None = field(default=None, compare=False, repr=False)


@dataclass
class RunRow:
    """One run, typed: times are epoch seconds, ``inputs`` is parsed.

    ``log_path`` is the run's log file for the SQLite store, None where logs live in the
    store itself (PostgreSQL: :meth:`Store.read_log`). ``pool``, ``worker``, ``manifest``,
    ``timeout``, ``retry`` and ``backoff`` are set by shared stores only.
    """

    id: int
    rule: str
    action: str
    status: str
    inputs: dict[str, Any]
    event_id: str
    attempt: int
    dedupe_key: str | None
    queued_at: float
    started_at: float | None
    finished_at: float | None
    not_before: float | None
    exit_code: int | None
    error: str | None
    log_path: Path | None
    pool: str | None = None
    worker: str | None = None
    manifest: str | None = None
    timeout: float | None = None
    retry: int | None = None
    backoff: float | None = None
    rerun_of: int | None = None  # the run this one re-runs (triggerc rerun, the dashboard's button)
    # a claim hands the worker the run's event with it ({id, source, type, time, data, depth}): no second read
    event: dict[str, Any] | None = field(default=None, compare=False, repr=False)

    @property
    def duration(self) -> float | None:
        if self.started_at is None or self.finished_at is None:
            return None
        return max(0.0, self.finished_at - self.started_at)

    @property
    def wait(self) -> float | None:
        """How long the run waited in its queue before it started (None until it starts).
        A planned delay (a debounce, a retry's backoff) is part of it."""
        if self.started_at is None:
            return None
        return max(0.0, self.started_at - self.queued_at)

    def planned(self) -> PlannedRun:
        """The same run again (for a retry: ``add_run(row.planned(), row.event_id, attempt=...)``)."""
        return PlannedRun(self.rule, self.action, dict(self.inputs), self.dedupe_key)

    def to_dict(self) -> dict[str, Any]:
        """The JSON shape of ``triggerc runs --format json`` (times as ISO 8601 UTC)."""
        d = {
            "id": self.id,
            "rule": self.rule,
            "action": self.action,
            "status": self.status,
            "exit_code": self.exit_code,
            "inputs": self.inputs,
            "event_id": self.event_id,
            "queued_at": iso_utc(self.queued_at),
            "started_at": iso_utc(self.started_at),
            "finished_at": iso_utc(self.finished_at),
            "not_before": iso_utc(self.not_before),
            "attempt": self.attempt,
            "duration": None if self.duration is None else round(self.duration, 3),
            "wait": None if self.wait is None else round(self.wait, 3),
            "dedupe_key": self.dedupe_key,
            "log_path": None if self.log_path is None else str(self.log_path),
            "error": self.error,
            "rerun_of": self.rerun_of,
        }
        if self.pool is not None:
            d["pool"] = self.pool
            d["worker"] = self.worker
        return d


@dataclass
class Recovery:
    """What ``recover`` found: runs a crash interrupted, runs still to start."""

    interrupted: list[RunRow] = field(default_factory=list)
    queued: list[RunRow] = field(default_factory=list)


def iso_utc(ts: float | None) -> str | None:
    """Epoch seconds as an ISO 8601 UTC string with milliseconds, ``None`` stays ``None``."""
    if ts is None:
        return None
    d = _dt.datetime.fromtimestamp(ts, _dt.timezone.utc)
    return d.isoformat(timespec="milliseconds").replace("+00:00", "Z")


_ENCODER = json.JSONEncoder(ensure_ascii=True, separators=(",", ":"), default=str)


def dumps(obj: Any) -> str:
    """Compact ASCII-only JSON: lone surrogates from parsed payloads cannot break a UTF-8
    binding (SQLite's or PostgreSQL's)."""
    return _ENCODER.encode(obj)


# CSI and OSC sequences, other escapes (ESC and its final byte, with any intermediate bytes:
# ESC ( B, which tput sgr0 writes, left "(B" behind when only ESC [@-_] was taken), and
# control characters but tab and newline
_ANSI = re.compile(r"\x1b\[[0-?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)|\x1b[ -/]*[0-~]|[\x00-\x08\x0b-\x1f\x7f]")
# What a carriage return inside a line overwrites on a terminal: a progress bar's
# "10%\r50%\r100%" is "100%" (it read "10%50%100%" once the \r was dropped). A \r before the
# newline (CRLF) overwrites nothing, and a line's stream marker (below) is kept.
_OVERWRITTEN = re.compile(r"[^\r\n\x01\x02]*\r+(?=[^\r\n])")


def terminal_text(text: str) -> str:
    """Log text as a terminal would leave it, without colours: what a carriage return
    overwrote taken out, then the escapes and control characters."""
    return _ANSI.sub("", _OVERWRITTEN.sub("", text))


# Run logs: which stream a line came from
# ----------------------------------------
# A run's log is one file (one ``trg_logs`` row in store mode) in the order the lines
# arrived. A line the action wrote to stdout is stored as it is; a line it wrote to
# stderr starts with the byte 0x02 (STX), and a line triggerlang itself wrote (the header
# with the argv, the closing "succeeded after 0.2s") with 0x01 (SOH). Both are control
# characters that every reader already drops (:data:`_ANSI`), so ``triggerc``, the MCP
# ``run_log`` tool, the API's ``log`` and the download show the plain text; the run page
# reads them (:func:`log_lines`) to tell stderr apart. A marker in the middle of a line
# (stdout had written a partial line when a stderr line came) starts a new line.
LOG_META = b"\x01"
LOG_STDERR = b"\x02"
_MIDLINE_MARK = re.compile(r"(?<=[^\n])(?=[\x01\x02])")
STREAMS = {"\x01": "meta", "\x02": "err"}


def _drop_cut_line(raw: bytes, truncated: bool) -> bytes:
    if truncated:
        nl = raw.find(b"\n")
        raw = raw[nl + 1:] if 0 <= nl < 4096 else raw
    return raw


def clean_log(raw: bytes, truncated: bool) -> str:
    """Log bytes as text for a reader: a cut first line dropped, stream markers and
    terminal escapes removed."""
    text = _drop_cut_line(raw, truncated).decode("utf-8", errors="replace")
    return terminal_text(_MIDLINE_MARK.sub("\n", text))


def log_lines(raw: bytes, truncated: bool = False) -> list[tuple[str, str]]:
    """Log bytes as ``[(stream, text)]``, one per line: stream ``out``, ``err`` (the
    action's stderr) or ``meta`` (a line of triggerlang's own); text without its newline,
    markers or terminal escapes. A last line without a newline is included."""
    return [(stream, terminal_text(line)) for stream, line in log_lines_raw(raw, truncated)]


def log_lines_raw(raw: bytes, truncated: bool = False) -> list[tuple[str, str]]:
    """:func:`log_lines` with each line's terminal escapes kept (its marker taken out): for
    a reader that shows the colours (the dashboard's run page)."""
    text = _MIDLINE_MARK.sub("\n", _drop_cut_line(raw, truncated).decode("utf-8", errors="replace"))
    if not text:
        return []
    lines = text.split("\n")
    if lines[-1] == "":
        lines.pop()
    return [(STREAMS.get(line[:1], "out"), line[1:] if line[:1] in STREAMS else line) for line in lines]


def strip_log_markers(raw: bytes, at_line_start: bool = True) -> bytes:
    """Log bytes with the stream markers taken out (a download of the log): a marker at the
    start of a line goes, one in the middle of a line becomes a newline. ``at_line_start``
    says whether ``raw`` follows a newline (for a file read in chunks)."""
    if not at_line_start and raw[:1] in (LOG_META, LOG_STDERR):
        raw = b"\n" + raw
    return _MIDLINE_MARK_BYTES.sub(b"\n", raw).replace(LOG_META, b"").replace(LOG_STDERR, b"")


_MIDLINE_MARK_BYTES = re.compile(rb"(?<=[^\n])(?=[\x01\x02])")


@dataclass
class LogChunk:
    """Raw bytes of a run's log (stream markers kept): ``data`` is the log from byte
    ``start`` to byte ``end`` (the end of what is written so far). ``exists`` is False
    when there is no log (yet)."""

    data: bytes
    start: int
    end: int
    exists: bool = True

    @property
    def truncated(self) -> bool:
        """The chunk does not start at the beginning of the log."""
        return self.start > 0


def read_log_chunk(path: Path, offset: int | None = None, limit: int = LOG_TAIL) -> LogChunk:
    """The log file from byte ``offset`` (None: its last ``limit`` bytes), at most ``limit``
    bytes: a reader that fell further behind skips ahead to the last ``limit`` bytes."""
    try:
        with open(path, "rb") as f:
            f.seek(0, 2)
            size = f.tell()
            start = max(0, size - limit) if offset is None else max(min(offset, size), size - limit)
            f.seek(start)
            data = f.read(size - start)
    except FileNotFoundError:
        return LogChunk(b"", 0, 0, False)
    return LogChunk(data, start, start + len(data))


def read_log_file(path: Path, limit: int = LOG_TAIL) -> tuple[str, bool, bool]:
    """(text, truncated, exists): the end of a log file (see :func:`clean_log`)."""
    try:
        with open(path, "rb") as f:
            f.seek(0, 2)
            size = f.tell()
            truncated = size > limit
            f.seek(max(0, size - limit))
            raw = f.read(limit)
    except FileNotFoundError:
        return "", False, False
    except OSError as e:
        return f"(cannot read the log: {e.strerror or e})", False, True
    return clean_log(raw, truncated), truncated, True


# --------------------------------------------------------------------------- queries

class BadQuery(ValueError):
    """A filter or a paging cursor that does not parse, or names nothing (a 400)."""


def like_pattern(q: str) -> str:
    """``%q%`` for a LIKE/ILIKE with ``ESCAPE '\\'`` over JSON as :func:`dumps` writes it
    (so a quote or a non-ASCII character in ``q`` matches its escaped form)."""
    return _like_escape(json.dumps(q, ensure_ascii=True)[1:-1])


def _like_escape(text: str) -> str:
    return "%" + text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


def newest_first(select: str, where: list[str], ph: str, order: str = "id") -> str:
    """``select`` with the ``where`` conditions, newest first, ending in a LIMIT placeholder
    (the shape of every list query of both stores)."""
    return select + (" WHERE " + " AND ".join(where) if where else "") + f" ORDER BY {order} DESC LIMIT {ph}"


def equal_conditions(ph: str, **columns: Any) -> tuple[list[str], list[Any]]:
    """``column = value`` for each column whose value is not None."""
    where = [f"{col} = {ph}" for col, val in columns.items() if val is not None]
    return where, [val for val in columns.values() if val is not None]


def _time_bounds(ph: str, column: str, since: float | None, until: float | None) -> tuple[list[str], list[Any]]:
    where, args = [], []
    if since is not None:
        where.append(f"{column} >= {ph}")
        args.append(float(since))
    if until is not None:
        where.append(f"{column} < {ph}")
        args.append(float(until))
    return where, args


DELIVERY_FIELDS = ("at", "route", "method", "status", "verify", "reason", "latency", "remote", "delivery_id",
                   "event_id", "trigger", "duplicate")
"""A recorded webhook delivery (the ``deliveries`` table of both stores, beside its ``id``)."""

DELIVERY_DEFAULTS = {"reason": None, "latency": None, "remote": None, "delivery_id": None, "event_id": None,
                     "trigger": None, "duplicate": False}


def delivery_sql(table: str, param: Callable[[str], str], ph: str) -> tuple[str, str]:
    """(insert, prune) statements of a store's delivery history: the INSERT of one delivery
    (named parameters written by ``param``), and the DELETE that keeps the newest N of a
    route (parameters: route, route, N)."""
    insert = (f"INSERT INTO {table} ({', '.join(DELIVERY_FIELDS)}) "
              f"VALUES ({', '.join(param(f) for f in DELIVERY_FIELDS)})")
    prune = (f"DELETE FROM {table} WHERE route = {ph} AND id <= (SELECT id FROM {table} WHERE route = {ph} "
             f"ORDER BY id DESC LIMIT 1 OFFSET {ph})")
    return insert, prune


def newest_tick_sql(table: str, rule_of: Callable[[str], str], order: str) -> str:
    """The condition, on an event aliased ``e``, that it is the newest ``schedule.tick`` of its
    rule (``rule_of(alias)``: the SQL of an event's ``data.rule``; ``order``: the column
    ``last_tick`` orders by): the event :meth:`Store.last_tick` reads, which ``prune`` keeps
    whatever its age, or a ``catch up`` schedule rarer than the retention (a monthly job
    pruned at 7 days) would find it never ticked and catch nothing up. Each old tick is one
    probe of the ticks' partial index (rule, then ``order``) for a newer tick of its rule."""
    return (f"(e.source = 'schedule' AND e.type = 'tick' AND {rule_of('e')} IS NOT NULL AND NOT EXISTS "
            f"(SELECT 1 FROM {table} n WHERE n.source = 'schedule' AND n.type = 'tick' "
            f"AND {rule_of('n')} = {rule_of('e')} AND n.{order} > e.{order}))")


def delivery_dict(r: tuple) -> dict[str, Any]:
    """A row ``(id, *DELIVERY_FIELDS)`` as the API shows it (``at`` ISO 8601 UTC)."""
    d = dict(zip(("id",) + DELIVERY_FIELDS, r))
    d["at"] = iso_utc(d["at"])
    d["duplicate"] = bool(d["duplicate"])
    return d


AUDIT_COLUMNS = "id, at, actor, action, run_id, new_run_id, rule, detail"


def audit_dict(r: tuple) -> dict[str, Any]:
    d = dict(zip([c.strip() for c in AUDIT_COLUMNS.split(",")], r))
    d["at"] = iso_utc(d["at"])
    return d


def run_conditions(ph: str, like: str, *, events: str, rule: str | None = None, status: str | None = None,
                   event_id: str | None = None, before_id: int | None = None, q: str | None = None,
                   since: float | None = None, until: float | None = None,
                   ids: Collection[int] | None = None) -> tuple[list[str], list[Any]]:
    """The WHERE conditions (and their arguments) of a run list, for both stores: ``ph`` is
    the placeholder (``?`` or ``%s``), ``like`` the case-insensitive LIKE (``LIKE`` in
    SQLite, ``ILIKE`` in PostgreSQL), ``events`` the events table.

    ``q`` finds a run by its id (``12`` or ``#12``), its event's id, a value of its inputs
    (a sha, a branch, a path: any part of the JSON text) or its event's delivery id
    (``X-GitHub-Delivery``...); ``since``/``until`` bound ``queued_at`` (epoch seconds);
    ``ids``: only these runs (one query for many, as ``runs --follow`` looks them up)."""
    where, args = equal_conditions(ph, rule=rule, status=status, event_id=event_id)
    if before_id is not None:
        where.append(f"id < {ph}")
        args.append(int(before_id))
    if ids is not None:
        wanted = [int(i) for i in ids]
        where.append(f"id IN ({', '.join([ph] * len(wanted))})" if wanted else "1 = 0")
        args += wanted
    w, a = _time_bounds(ph, "queued_at", since, until)
    where += w
    args += a
    if q:
        pat = like_pattern(q)
        alts = [f"event_id = {ph}", f"inputs {like} {ph} ESCAPE '\\'",
                f"EXISTS (SELECT 1 FROM {events} e WHERE e.id = event_id AND e.delivery_key {like} {ph} ESCAPE '\\')"]
        args += [q, pat, pat]
        run_id = whole_number(q.lstrip("#")) if len(q.lstrip("#")) < 19 else None
        if run_id is not None:
            alts.insert(0, f"id = {ph}")
            args.insert(len(args) - 3, run_id)
        where.append("(" + " OR ".join(alts) + ")")
    return where, args


def event_conditions(ph: str, like: str, *, events: str, history: str, source: str | None = None,
                     type: str | None = None, unmatched: bool = False, rule: str | None = None,
                     q: str | None = None, since: float | None = None,
                     until: float | None = None) -> tuple[list[str], list[Any]]:
    """The WHERE conditions of an event list, for both stores (see :func:`run_conditions`);
    ``events`` is the events table, ``history`` the correlation groups' history.

    ``unmatched``: events no rule of any kind took: no ordinary rule matched them and no
    correlation rule's member did anything with them (no history row names them, a refused
    opening included), which are the rows the dashboard shows as "no rule matched" (an
    event only a correlation rule took was listed, beside the group it had opened). The
    SQLite journal applies its correlation log before reading (its readers' rule).
    ``rule``: events that rule matched; ``q`` finds an event by its id, its delivery id,
    or any value of its data (a sha, a branch, a path, a workflow name); ``since``/``until``
    bound ``received_at``."""
    where, args = equal_conditions(ph, source=source, type=type)
    if unmatched:
        where.append(f"matched = '[]' AND NOT EXISTS (SELECT 1 FROM {history} h WHERE h.event_id = {events}.id)")
    if rule is not None:
        where.append(f"matched {like} {ph} ESCAPE '\\'")
        args.append(_like_escape(dumps(rule)))
    w, a = _time_bounds(ph, "received_at", since, until)
    where += w
    args += a
    if q:
        pat = like_pattern(q)
        where.append(f"(id = {ph} OR delivery_key {like} {ph} ESCAPE '\\' OR data {like} {ph} ESCAPE '\\')")
        args += [q, pat, pat]
    return where, args


_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(s|m|min|h|d|w)\s*$", re.I)
_DURATION_SECONDS = {"s": 1, "m": 60, "min": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_when(text: str, now: float) -> float:
    """A time bound of a filter, as epoch seconds: a length of time back from ``now``
    (``15m``, ``1h``, ``7d``, ``2w``), or an ISO 8601 date or time (``2026-11-24``,
    ``2026-11-24 19:00``, ``2026-11-24T19:00:00+01:00``; UTC when it names no zone).
    BadQuery when it is neither."""
    m = _DURATION.match(text)
    if m:
        return now - float(m.group(1)) * _DURATION_SECONDS[m.group(2).lower()]
    raw = text.strip().replace("Z", "+00:00").replace("z", "+00:00")
    if raw.upper().endswith(" UTC"):
        raw = raw[:-4].strip()
    try:
        t = _dt.datetime.fromisoformat(raw)
    except ValueError:
        raise BadQuery(f"{text!r} is not a time: give a length of time back (15m, 1h, 7d) "
                       f"or a date and time in UTC (2026-11-24 19:00)") from None
    if t.tzinfo is None:
        t = t.replace(tzinfo=_dt.timezone.utc)
    return t.timestamp()


@runtime_checkable
class Store(Protocol):
    """What every store offers its readers (``runs``, ``events``, the dashboard, MCP).

    Lists are newest first; dicts have the shapes of :meth:`RunRow.to_dict` (runs) and
    ``{id, source, type, time, matched, data, delivery_key, received_at}`` (events).
    """

    kind: str  # "sqlite" | "postgresql"

    def describe(self) -> str:
        """Where the store is, for a log line: a path, or a URL without its password."""
        ...

    def list_runs(self, limit: int = 50, rule: str | None = None, status: str | None = None,
                  before_id: int | None = None, event_id: str | None = None, *, q: str | None = None,
                  since: float | None = None, until: float | None = None,
                  ids: Collection[int] | None = None) -> list[dict[str, Any]]:
        """Runs newest first; the filters of :func:`run_conditions`."""
        ...

    def get_run(self, run_id: int) -> dict[str, Any] | None: ...

    def run_row(self, run_id: int) -> RunRow | None: ...

    def list_events(self, limit: int = 50, source: str | None = None, type: str | None = None, *,
                    before: str | None = None, unmatched: bool = False, rule: str | None = None,
                    q: str | None = None, since: float | None = None,
                    until: float | None = None) -> list[dict[str, Any]]:
        """Events newest first (journal order); the filters of :func:`event_conditions`;
        ``before``: the events journaled before this event id (BadQuery if unknown)."""
        ...

    def get_event(self, event_id: str) -> dict[str, Any] | None: ...

    def last_tick(self, rule: str) -> str | None:
        """The ``scheduled`` time (ISO 8601, as journaled) of the newest ``schedule.tick`` of
        ``rule``, or None when there is none: what a ``catch up`` schedule reads at serve's
        start (sources/schedule.py). An index makes it one look-up, however many events."""
        ...

    def read_log(self, run_id: int, limit: int = LOG_TAIL) -> tuple[str, bool, bool]:
        """(text, truncated, exists): the end of run ``run_id``'s output."""
        ...

    def read_log_chunk(self, run_id: int, offset: int | None = None, limit: int = LOG_TAIL) -> LogChunk:
        """Run ``run_id``'s log as raw bytes from ``offset`` (None: its end); see :class:`LogChunk`.
        OSError when the log cannot be read."""
        ...

    def close(self) -> None: ...


class QueueStore(Store, Protocol):
    """A store shared by ingest nodes and workers (PostgreSQL). See the module docstring."""

    def ingest(self, event: Any, intents: list[Intent], delivery_key: str | None = None, *,
               manifest: str | None = None, in_tx: Callable[[Any], None] | None = None) -> Recorded: ...

    def claim(self, worker: str, pools: list[str], limit: int, lease: float) -> list[RunRow]: ...

    def heartbeat(self, worker: str, run_ids: list[int], lease: float) -> tuple[set[int], set[int]]:
        """Extend the leases: (runs whose lease is gone, runs asked to cancel)."""
        ...

    def finish(self, run_id: int, worker: str, status: str, exit_code: int | None, error: str | None, *,
               log: bytes | None = None, chain: Callable[[RunRow], Any] | None = None) -> RunRow | None: ...

    def reap(self) -> list[RunRow]: ...


# --------------------------------------------------------------------------- opening

def is_store_url(text: str | None) -> bool:
    """A ``postgresql://`` (or ``postgres://``) URL that parses (a malformed one is not),
    the scheme written as libpq takes it: lower case, first."""
    try:
        return bool(text) and str(text).startswith(("postgresql://", "postgres://")) and \
            urllib.parse.urlsplit(str(text)).scheme in ("postgresql", "postgres")
    except ValueError:  # "Invalid IPv6 URL", a bad port...
        return False


SECRET_URL_PARAMS = ("password", "sslpassword")
"""libpq parameters whose value is a secret: the password, the passphrase of the client key."""


def redact_url(url: str) -> str:
    """``url`` with its password replaced by ``***`` (also a ``password=`` or
    ``sslpassword=`` query parameter, and those of a libpq ``key=value`` string given where
    a URL belongs)."""
    try:
        parts = urllib.parse.urlsplit(url)
    except ValueError:
        return "<store URL>"
    if "://" not in url:
        return re.sub(r"(?i)(\b(?:%s)\s*=\s*)('(?:[^'\\]|\\.)*'|\S*)" % "|".join(SECRET_URL_PARAMS), r"\1***", url)
    netloc = parts.netloc
    if "@" in netloc:
        userinfo, host = netloc.rsplit("@", 1)
        if ":" in userinfo:
            userinfo = userinfo.split(":", 1)[0] + ":***"
        netloc = f"{userinfo}@{host}"
    query = parts.query
    if query:
        pairs = urllib.parse.parse_qsl(query, keep_blank_values=True)
        query = "&".join(f"{k}={'***' if k.lower() in SECRET_URL_PARAMS else v}" for k, v in pairs)
    # not urlunsplit: it drops the // of an empty host (postgresql:///db, the local socket)
    return f"{parts.scheme}://{netloc}{parts.path}" + (f"?{query}" if query else "") + \
        (f"#{parts.fragment}" if parts.fragment else "")


def url_secrets(url: str) -> list[str]:
    """The secret parts of a store URL (its password, raw and decoded, and an
    ``sslpassword``), to scrub from messages."""
    out: list[str] = []
    try:
        parts = urllib.parse.urlsplit(url)
        if parts.password:
            out += [parts.password, urllib.parse.unquote(parts.password)]
        for k, v in urllib.parse.parse_qsl(parts.query, keep_blank_values=True):
            if k.lower() in SECRET_URL_PARAMS and v:
                out.append(v)
    except ValueError:
        pass
    return sorted({s for s in out if s}, key=len, reverse=True)


def scrub(text: str, url: str) -> str:
    """``text`` (a driver's message) with every secret part of ``url`` replaced by ``***``
    where it stands as a token of its own (:mod:`triggerlang.masking`): a one-letter
    password does not turn ``failed`` into ``f***iled``."""
    return Masker({s: "***" for s in url_secrets(url)}).mask(text)


def open_store(url: str | None = None, state_dir: Path | str | None = None, *, migrate: bool = False,
               create: bool = True) -> Store:
    """The store a command works on: ``url`` (``postgresql://...``) if given, else the
    SQLite journal of ``state_dir``. StoreError with one clear line if it cannot be opened.

    ``migrate``: bring an older PostgreSQL schema up to date (``serve``/``worker
    --migrate``); without it an older schema is an error naming the command to run.
    """
    if url:
        if not is_store_url(url):
            raise StoreError(f"unsupported store URL {redact_url(url)!r}: use postgresql://user:password@host/db")
        return _store_class("postgresql")(url, migrate=migrate, create=create)
    return _store_class("sqlite")(Path(state_dir if state_dir is not None else ".triggerlang"))


_STORES = {"postgresql": "triggerlang.runtime.pgstore:PgStore", "sqlite": "triggerlang.runtime.journal:SqliteStore"}
"""The store implementations by kind, imported when opened: they import this module (the
protocol and its vocabulary), so this one names them rather than importing them, which
keeps the import graph acyclic (tests/test_imports.py)."""


def _store_class(kind: str) -> Any:
    import importlib

    module, name = _STORES[kind].split(":")
    return getattr(importlib.import_module(module), name)


def env_store_url(environ: Any = None) -> str | None:
    """``TRIGGERLANG_STORE`` if set and not empty."""
    v = (environ if environ is not None else os.environ).get(STORE_ENV)
    return v or None


# --------------------------------------------------------------------------- <paths>

PATHS_BUDGET = 64 * 1024
"""Bytes of JSON that the ``<paths>`` of one debounce window may take (``TRG_INPUT_PATHS``
holds them, and Linux refuses a variable over 128 KiB); past it they are folded into their
folders (:class:`GatheredPaths`)."""


class GatheredPaths:
    """The paths a debounce window gathers for ``<paths>``: each once, in the order first
    seen, while their JSON (``TRG_INPUT_PATHS``) fits in ``budget`` bytes. Past it (a
    ``git checkout`` of thousands of files, an ``npm install`` into a watched tree) the
    deepest paths are replaced by their folders, level by level, and a path under a listed
    folder is dropped, until it fits again: the list then names folders that hold every
    path that changed (at worst ``.``, the root), so the run still covers them all, and
    the memory and the journal's copy stay bounded; from then on a path under a listed
    folder is not added. Both stores use it (the shared store rebuilds it from the pending
    run's list on each event, which may then hold such a path until the next fold)."""

    __slots__ = ("_paths", "size", "budget", "folded")

    def __init__(self, paths: Any = (), budget: int = PATHS_BUDGET) -> None:
        self._paths: dict[str, None] = {}
        self.size = 2  # "[]"
        self.budget = budget
        self.folded = False  # some paths were replaced by their folders
        self.add(paths)

    @staticmethod
    def _cost(path: str) -> int:
        return len(dumps(path)) + 1  # the string (as TRG_INPUT_PATHS has it: ASCII) and ","

    def add(self, paths: Any) -> None:
        for p in paths:
            if isinstance(p, str) and p not in self._paths and not (self.folded and self._covered(p)):
                self._paths[p] = None
                self.size += self._cost(p)
        if self.size > self.budget:
            self._fold()

    def _covered(self, path: str) -> bool:
        """A folder that holds ``path`` is listed (or the root, ``.``)."""
        if "." in self._paths:
            return True
        cut = path.find("/")
        while cut > 0:
            if path[:cut] in self._paths:
                return True
            cut = path.find("/", cut + 1)
        return False

    def _fold(self) -> None:
        paths = list(self._paths)
        while self.size > self.budget:
            depth = max(p.count("/") for p in paths)
            if depth == 0:
                paths = ["."]
            else:
                self._paths = dict.fromkeys(p.rsplit("/", 1)[0] if p.count("/") == depth else p for p in paths)
                paths = [p for p in self._paths if not self._covered(p)]
            self.size = 2 + sum(self._cost(p) for p in paths)
        self._paths = dict.fromkeys(paths)
        self.folded = True

    def __len__(self) -> int:
        return len(self._paths)

    def list(self) -> list[str]:
        return list(self._paths)
