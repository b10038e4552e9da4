"""The PostgreSQL store: the shared journal and run queue of several machines (SPEC §12).

Needs the extra ``triggerlang[postgres]`` (psycopg 3); imported only for a
``postgresql://`` store URL (:func:`~triggerlang.runtime.store.open_store`).

Tables (``trg_`` prefix, so the database may hold other things)
--------------------------------------------------------------
``trg_schema``      the versions applied (:data:`MIGRATIONS`; ``triggerc store migrate``)
``trg_events``      every event; ``seq`` is the journal order, ``delivery_key`` is UNIQUE
``trg_runs``        every run, with its queue columns: ``pool``, ``serial`` (a
                    ``busy queue|skip|restart`` rule: one running run at a time, enforced
                    by a partial unique index), ``not_before``, the lease (``worker``,
                    ``lease_until``), ``cancel_requested``, the policies it needs after
                    ingest (``timeout``, ``retry``, ``backoff``, ``debounce``,
                    ``paths_params``) and ``manifest`` (the sha256 it was created under)
``trg_dedupe``      ``(rule, key) -> last_at`` for ``dedupe <f> for D``
``trg_manifests``   compiled manifests by sha256, published by every ingest node
``trg_logs``        the end of each run's output (capped at :data:`LOG_CAP` bytes)
``trg_nodes``       the running ingest nodes and the manifest each runs (:meth:`PgStore.join_node`)

Times are epoch seconds of the *database's* clock, so nodes with skewed clocks agree on
leases, backoffs and debounce windows.

The ingest transaction (:meth:`PgStore.ingest`)
-----------------------------------------------
``INSERT ... ON CONFLICT DO NOTHING`` the event (a concurrent duplicate delivery waits for
the first commit, then finds it); take the transaction-scoped advisory lock of every rule
that needs one (sorted, so two events never deadlock); decide each match (SPEC §12.3):
debounce moves the rule's pending run, dedupe is an atomic upsert of ``trg_dedupe``,
``busy skip`` records ``skipped`` when a run is queued or running, ``busy restart``
cancels the queued ones and sets ``cancel_requested`` on the running one; insert the runs;
``NOTIFY`` the pools; commit. The ``202`` is sent after that commit. A transaction
PostgreSQL aborts for a deadlock or a serialization failure (there are others than two
events: a run's end that journals a ``run.*`` event, the reaper, a heartbeat) is run again
from its start, as every store call is (:data:`TX_TRIES`); ``503`` once the tries are spent.

Claims, leases, the reaper
--------------------------
:meth:`PgStore.claim` is one short statement (``FOR UPDATE SKIP LOCKED``, committed at
once): it takes the oldest ready queued runs of the worker's pools, skipping serial rules
with a running run or an older ready queued run (FIFO per rule), and leases them
(``lease_until = now + lease``). :meth:`~PgStore.heartbeat` extends the leases and says
which ones are gone (the worker then kills those runs: fencing) and which were asked to
cancel. :meth:`~PgStore.reap` marks runs whose lease expired ``interrupted`` and inserts
their retry in the same statement. :meth:`~PgStore.finish` records the end, the retry with
its backoff and the ``run.*`` chain event with its runs, in one transaction, and only if
the lease is still this worker's.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import heapq
import itertools
import json
import math
import os
import queue
import random
import select
import socket
import threading
import time
from pathlib import Path
from typing import Any, Callable, Collection, Iterator

import psycopg
from psycopg import errors as pg_errors

from .. import defaults
from ..events import Event
from .pgcorrelate import PG_SCHEMA as _CORRELATION_SCHEMA, PgGroups
from .store import (AUDIT_COLUMNS, DELIVERY_DEFAULTS, DELIVERY_FIELDS, FINAL_STATUSES, LOG_TAIL, STATUSES, BadQuery,
                    GatheredPaths, Intent, LogChunk, Recorded, RunRow, StoreClosed, StoreError, StoreTimeout, StoreUnavailable, audit_dict, clean_log, delivery_dict, delivery_sql,
                    dumps, equal_conditions, event_conditions, iso_utc, newest_first, redact_url, run_conditions,
                    newest_tick_sql, scrub)

LOG_CAP = 1024 * 1024
"""Bytes of a run's output kept in the store (the end of it)."""

NOTIFY_RUNS = "trg_runs"
NOTIFY_CANCEL = "trg_cancel"

_NOW = "EXTRACT(EPOCH FROM clock_timestamp())::float8"
_STATUS_LIST = ", ".join(f"'{s}'" for s in STATUSES)

MIGRATIONS: list[tuple[int, str]] = [
    (1, f"""
CREATE TABLE IF NOT EXISTS trg_events (
    seq          bigserial PRIMARY KEY,
    id           text NOT NULL UNIQUE,
    source       text NOT NULL,
    type         text NOT NULL,
    time         text NOT NULL,
    data         text NOT NULL,
    delivery_key text UNIQUE,
    matched      text NOT NULL DEFAULT '[]',
    received_at  double precision NOT NULL
);
CREATE INDEX IF NOT EXISTS trg_events_by_source ON trg_events (source, seq);
CREATE INDEX IF NOT EXISTS trg_events_by_time ON trg_events (received_at);
CREATE TABLE IF NOT EXISTS trg_runs (
    id               bigserial PRIMARY KEY,
    rule             text NOT NULL,
    action           text NOT NULL,
    status           text NOT NULL CHECK (status IN ({_STATUS_LIST})),
    exit_code        integer,
    inputs           text NOT NULL DEFAULT '{{}}',
    event_id         text NOT NULL,
    attempt          integer NOT NULL DEFAULT 1,
    dedupe_key       text,
    queued_at        double precision NOT NULL,
    started_at       double precision,
    finished_at      double precision,
    not_before       double precision,
    error            text,
    pool             text NOT NULL DEFAULT 'default',
    serial           boolean NOT NULL DEFAULT true,
    manifest         text,
    timeout          double precision,
    retry            integer NOT NULL DEFAULT 0,
    backoff          double precision NOT NULL DEFAULT 5,
    debounce         double precision,
    paths_params     text,
    worker           text,
    lease_until      double precision,
    cancel_requested boolean NOT NULL DEFAULT false
);
CREATE INDEX IF NOT EXISTS trg_runs_ready ON trg_runs (pool, id) WHERE status = 'queued';
CREATE INDEX IF NOT EXISTS trg_runs_by_rule ON trg_runs (rule, id);
CREATE INDEX IF NOT EXISTS trg_runs_by_event ON trg_runs (event_id);
CREATE INDEX IF NOT EXISTS trg_runs_by_status ON trg_runs (status, id);
CREATE INDEX IF NOT EXISTS trg_runs_leases ON trg_runs (lease_until) WHERE status = 'running';
CREATE UNIQUE INDEX IF NOT EXISTS trg_runs_one_running_per_serial_rule ON trg_runs (rule)
    WHERE status = 'running' AND serial;
CREATE TABLE IF NOT EXISTS trg_dedupe (
    rule    text NOT NULL,
    key     text NOT NULL,
    last_at double precision NOT NULL,
    PRIMARY KEY (rule, key)
);
CREATE TABLE IF NOT EXISTS trg_manifests (
    sha256     text PRIMARY KEY,
    body       text NOT NULL,
    created_at double precision NOT NULL
);
CREATE TABLE IF NOT EXISTS trg_logs (
    run_id    bigint PRIMARY KEY,
    body      bytea NOT NULL,
    truncated boolean NOT NULL DEFAULT false
);
"""),
    (2, _CORRELATION_SCHEMA),   # correlation groups (SPEC §11): runtime/pgcorrelate.py
    # the operator's tables (issue 14): event depth, re-runs, log sizes, the audit trail,
    # the delivery history
    (3, """
ALTER TABLE trg_events ADD COLUMN IF NOT EXISTS depth integer NOT NULL DEFAULT 0;
ALTER TABLE trg_runs ADD COLUMN IF NOT EXISTS rerun_of bigint;
ALTER TABLE trg_logs ADD COLUMN IF NOT EXISTS size bigint;
CREATE TABLE IF NOT EXISTS trg_audit (
    id          bigserial PRIMARY KEY,
    at          double precision NOT NULL,
    actor       text NOT NULL,
    action      text NOT NULL,
    run_id      bigint,
    new_run_id  bigint,
    rule        text,
    detail      text
);
CREATE INDEX IF NOT EXISTS trg_audit_by_run ON trg_audit (run_id);
CREATE TABLE IF NOT EXISTS trg_deliveries (
    id          bigserial PRIMARY KEY,
    at          double precision NOT NULL,
    route       text NOT NULL,
    method      text NOT NULL,
    status      integer NOT NULL,
    verify      text NOT NULL,
    reason      text,
    latency     double precision,
    remote      text,
    delivery_id text,
    event_id    text,
    trigger     text,
    duplicate   boolean NOT NULL DEFAULT false
);
CREATE INDEX IF NOT EXISTS trg_deliveries_by_route ON trg_deliveries (route, id);
"""),
    # PgStore.last_tick: the newest tick of a rule (a catch-up schedule's look-up at start)
    (4, """
CREATE INDEX IF NOT EXISTS trg_events_ticks_by_rule ON trg_events (((data::jsonb) ->> 'rule'), seq)
    WHERE source = 'schedule' AND type = 'tick';
"""),
    # PgStore.join_node: the running ingest nodes and their manifests (which rules are live)
    (5, """
CREATE TABLE IF NOT EXISTS trg_nodes (
    id          text PRIMARY KEY,
    host        text NOT NULL,
    pid         integer NOT NULL,
    manifest    text NOT NULL,
    started_at  double precision NOT NULL,
    lease_until double precision NOT NULL
);
"""),
]
SCHEMA_VERSION = MIGRATIONS[-1][0]
_MIGRATION_LOCK = 0x7472675f736368  # 'trg_sch': one migrator at a time

_RUN_COLS = ("id, rule, action, status, inputs, event_id, attempt, dedupe_key, queued_at, started_at, finished_at, "
             "not_before, exit_code, error, pool, worker, manifest, timeout, retry, backoff, rerun_of")
_EVENT_COLS = "id, source, type, time, matched, data, delivery_key, received_at, depth"


_AHEAD = "({t}.attempt > 1 AND {t}.not_before IS NULL)"
"""A queued run that is the retry of an interrupted run (the reaper's, a worker's stop's:
no backoff) keeps its run's place in its rule's queue: it is claimed before the runs
accepted after the one it repeats (:meth:`PgStore.claim`), as the one-process engine
starts it (:meth:`Engine.recover <.engine.Engine.recover>`). A failed run's retry has a
``not_before`` (its backoff), a re-run is attempt 1."""


def _run(r: tuple) -> RunRow:
    (id_, rule, action, status, inputs, event_id, attempt, dedupe_key, queued_at, started_at, finished_at,
     not_before, exit_code, error, pool, worker, manifest, timeout, retry, backoff, rerun_of) = r
    return RunRow(id=id_, rule=rule, action=action, status=status, inputs=json.loads(inputs), event_id=event_id,
                  attempt=attempt, dedupe_key=dedupe_key, queued_at=queued_at, started_at=started_at,
                  finished_at=finished_at, not_before=not_before, exit_code=exit_code, error=error, log_path=None,
                  pool=pool, worker=worker, manifest=manifest, timeout=timeout, retry=retry, backoff=backoff,
                  rerun_of=rerun_of)


def _event(r: tuple) -> dict[str, Any]:
    id_, source, type_, time_, matched, data, delivery_key, received_at, depth = r
    return {"id": id_, "source": source, "type": type_, "time": time_, "matched": json.loads(matched),
            "data": json.loads(data), "delivery_key": delivery_key, "received_at": iso_utc(received_at),
            "depth": depth}


_NEWEST_TICK = newest_tick_sql("trg_events", lambda e: f"({e}.data::jsonb) ->> 'rule'", "seq")
"""An event that is its rule's newest tick (:meth:`PgStore.last_tick`): ``prune`` keeps it."""

MANIFEST_REFRESH = 60.0
"""Seconds after which a running ingest node refreshes its manifest's ``created_at``
(:meth:`PgStore.keep_manifest`); ``prune`` never deletes a manifest refreshed within ten
times that, whatever ``--older-than`` says."""


_LIVE_RULES = f"""SELECT r ->> 'name' FROM trg_nodes n JOIN trg_manifests m ON m.sha256 = n.manifest
    CROSS JOIN LATERAL jsonb_array_elements(m.body::jsonb -> 'rules') r
    WHERE n.id <> %(node)s AND n.lease_until >= {_NOW}"""
"""The rules of the manifests of the live ingest nodes but ``node``."""


def manifest_sha(manifest: dict) -> tuple[str, str]:
    """(sha256, canonical JSON text) of a manifest."""
    body = json.dumps(manifest, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return hashlib.sha256(body.encode("ascii")).hexdigest(), body


def _by_rule(rows: list[tuple[str]]) -> dict[str, int]:
    """How many of ``(rule,)`` rows, by rule."""
    out: dict[str, int] = {}
    for (rule,) in rows:
        out[rule] = out.get(rule, 0) + 1
    return out


def _lock_key(rule: str) -> int:
    """A stable signed 64-bit advisory lock key for a rule."""
    return int.from_bytes(hashlib.sha256(b"trg-rule:" + rule.encode("utf-8")).digest()[:8], "big", signed=True)


class _Watchdog:
    """Cuts the connection of a store call still going at its deadline: ``shutdown()`` of
    its socket, so the thread waiting in libpq for an answer gets EOF at once (an error)
    and the connection is dropped. Our side's deadline is the one thing that bounds a
    database that hangs: the server's timeouts are enforced by the part that hangs, and
    a stopped server's kernel still acknowledges our bytes and keepalives. One thread for
    every store of the process, started with the first call."""

    def __init__(self) -> None:
        self._cv = threading.Condition()
        self._heap: list[list[Any]] = []   # [deadline, seq, connection or None once disarmed, fired]
        self._seq = itertools.count()
        self._thread: threading.Thread | None = None

    def arm(self, deadline: float, conn: psycopg.Connection) -> list[Any]:
        entry = [deadline, next(self._seq), conn, False]
        with self._cv:
            heapq.heappush(self._heap, entry)
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="triggerlang-store-watchdog", daemon=True)
                self._thread.start()
            if self._heap[0] is entry:
                self._cv.notify()
        return entry

    def disarm(self, entry: list[Any]) -> bool:
        """The call is over (its connection not cut after this); whether it was cut."""
        with self._cv:
            entry[2] = None
            return bool(entry[3])

    def _run(self) -> None:
        with self._cv:
            while True:
                while self._heap and self._heap[0][2] is None:
                    heapq.heappop(self._heap)
                if not self._heap:
                    self._cv.wait()
                    continue
                wait = self._heap[0][0] - time.monotonic()
                if wait > 0:
                    self._cv.wait(wait)
                    continue
                entry = heapq.heappop(self._heap)
                entry[3] = True
                _cut(entry[2])   # (under the lock: the call's thread cannot close it meanwhile)
                entry[2] = None


def _cut(conn: psycopg.Connection) -> None:
    with contextlib.suppress(Exception):
        s = socket.socket(fileno=os.dup(conn.pgconn.socket))
        try:
            s.shutdown(socket.SHUT_RDWR)
        finally:
            s.close()


_WATCHDOG = _Watchdog()
_DEADLINE = threading.local()   # .at: the monotonic deadline PgStore.deadline set for this thread's calls


DEFAULT_TIMEOUT = 10.0
"""Seconds a store call may wait for the database, connecting included, unless the store
URL says ``connect_timeout=N`` (libpq's option, which bounds a new connection: here each
call too). Ten seconds: GitHub gives a webhook delivery 10 s, and it was the bound of a new
connection already. A call still going then is given up (:class:`_Watchdog`): a delivery
gets ``503`` with ``Retry-After``, a worker's claim and heartbeat try again."""


TX_TRIES = 5
"""Tries in all of a store call whose transaction PostgreSQL aborts as a deadlock's victim
(SQLSTATE ``40P01``) or for a serialization failure (``40001``, on a database whose
default isolation is ``repeatable read`` or ``serializable``). PostgreSQL expects the
client to run such a transaction again, from its start (its manual, "Serialization
Failure Handling"): :meth:`PgStore._rerun` does, after a jittered wait
(:data:`TX_PAUSE`), and once the tries are spent the call raises
:class:`~.store.StoreUnavailable` with ``Retry-After`` :data:`CONTENTION_RETRY_AFTER`
(a delivery: ``503``; a worker's claim or a run's end: tried again later, as when the
database is down), never the ``500`` of a bug."""

TX_PAUSE = 0.01
"""Seconds of the first wait before a transaction is run again; each next one may be twice
as long (at most 80 ms before the fifth try). "Full jitter": a random part of it, so that the
two transactions that met are not run again in step and meet once more."""

CONTENTION_RETRY_AFTER = 1
"""``Retry-After`` of a call whose transaction was aborted :data:`TX_TRIES` times in a row:
contention, not an outage (the transactions it met end within a second), so a second,
where a database that does not answer says the calls' bound (:meth:`PgStore.retry_after`)."""

_CONFLICTS = (pg_errors.DeadlockDetected, pg_errors.SerializationFailure)


def _pause(seconds: float) -> None:
    time.sleep(seconds)


def _rerun_on_conflict(what: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """A :class:`PgStore` method run again from its start when PostgreSQL aborts its
    transaction for a deadlock or a serialization failure (:meth:`PgStore._rerun`). Only for
    a method whose whole work is that transaction, or statements each safe to run again,
    with no effect outside the database (what it hands back to its caller is made anew by
    each try); ``what`` names it in the error when the tries are spent."""
    def wrap(method: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(method)
        def call(self: "PgStore", *args: Any, **kwargs: Any) -> Any:
            return self._rerun(what, lambda: method(self, *args, **kwargs))
        return call
    return wrap


def _dropped(conn: psycopg.Connection) -> bool:
    """An idle pooled connection the server has written to is one it dropped: its
    termination notice (a restart, ``pg_terminate_backend``) or EOF waits on the socket. A
    poll, no round trip: used, it would fail the request that borrowed it."""
    try:
        return bool(select.select([conn.fileno()], [], [], 0)[0])
    except (OSError, ValueError, psycopg.Error):
        return True


class PgStore(PgGroups):  # (correlation groups: runtime/pgcorrelate.py)
    """The PostgreSQL store. Thread-safe: every call borrows a connection of a small pool.

    ``PgStore(url)`` raises :class:`StoreError` (the URL's password never in it) when the
    server cannot be reached or the schema is not usable: absent and ``create=False``,
    newer than this triggerlang, or older and ``migrate=False``. With ``create=True`` (the
    default: ``serve``, ``worker``, ``store init``) an empty database gets the schema.
    """

    kind = "postgresql"
    notify_runs_channel = NOTIFY_RUNS

    def __init__(self, url: str, *, migrate: bool = False, create: bool = True, pool_size: int = 20,
                 connect_timeout: float | None = None) -> None:
        self.url = url
        self._pool: queue.LifoQueue[psycopg.Connection] = queue.LifoQueue()
        self._size = pool_size
        self._made = 0
        self._lock = threading.Lock()
        self._closed = False
        if connect_timeout is None:   # the URL's connect_timeout=N (libpq's), else 10 s
            with contextlib.suppress(Exception):
                connect_timeout = float(psycopg.conninfo.conninfo_to_dict(url).get("connect_timeout") or 0) or None
        self.connect_timeout = connect_timeout or DEFAULT_TIMEOUT
        self.timeout: float | None = None
        """Seconds a store call may wait for the database, connecting included (None: no
        bound but ``connect_timeout``, for the commands whose one transaction may be long:
        ``store import``, ``prune``, ``migrate``); :meth:`bound_calls` sets it."""
        with self._conn() as conn:
            version = self._version(conn)
            if version > SCHEMA_VERSION:
                raise StoreError(f"the store {self.describe()} has schema {version}, newer than this triggerlang "
                                 f"knows ({SCHEMA_VERSION}): upgrade triggerlang")
            if version == 0 and not create:
                raise StoreError(f"the store {self.describe()} has no triggerlang schema: "
                                 f"run `triggerc store init --store URL`")
            if version == 0 or (version < SCHEMA_VERSION and migrate):
                self._migrate(conn)
            elif version < SCHEMA_VERSION:
                raise StoreError(f"the store {self.describe()} has schema {version}, older than this triggerlang's "
                                 f"({SCHEMA_VERSION}): run `triggerc store migrate`, or start with --migrate")

    # -- connections and errors ------------------------------------------------------------

    def describe(self) -> str:
        return redact_url(self.url)

    def _error(self, e: BaseException) -> StoreError:
        """The one-line error of a psycopg error: :class:`StoreUnavailable` for an
        ``OperationalError`` (a connection refused or lost, the server shutting down, out of
        disk or connections: what a later try may not meet), else :class:`StoreError`."""
        msg = scrub(" ".join(str(e).split()), self.url)
        if isinstance(e, psycopg.OperationalError):
            return StoreUnavailable(f"store {self.describe()}: {msg or type(e).__name__}", self.retry_after())
        return StoreError(f"store {self.describe()}: {msg or type(e).__name__}")

    def retry_after(self) -> int:
        """Seconds a sender is told to wait (``Retry-After``) after a :class:`StoreUnavailable`:
        the calls' bound (the URL's ``connect_timeout``, :data:`DEFAULT_TIMEOUT` without it),
        in whole seconds, at least 1. As long as a next try would wait at worst: a sooner one
        may meet a call of the hang still going, a later one waits for nothing."""
        return max(1, math.ceil(self.timeout or self.connect_timeout))

    def bound_calls(self) -> None:
        """Each call gives up after ``connect_timeout`` (:data:`DEFAULT_TIMEOUT`), as
        ``serve`` and ``worker`` want: a database that hangs holds none of them for ever."""
        self.timeout = self.connect_timeout

    def _timeout(self) -> StoreTimeout:
        seconds = getattr(_DEADLINE, "span", None) if getattr(_DEADLINE, "at", None) is not None else None
        seconds = seconds or self.timeout or self.connect_timeout
        return StoreTimeout(f"store {self.describe()}: did not answer within {seconds:.3g}s", self.retry_after())

    def _rerun(self, what: str, attempt: Callable[[], Any]) -> Any:
        """``attempt()``, run again from its start, after a jittered wait, while PostgreSQL
        aborts its transaction for a deadlock or a serialization failure (:data:`TX_TRIES`
        tries in all); then :class:`StoreUnavailable` (``Retry-After`` 1 s). A wait that would
        end past the call's deadline (:meth:`deadline`) is not waited: :class:`StoreTimeout`."""
        for n in range(TX_TRIES):
            try:
                return attempt()
            except _CONFLICTS as e:
                error = e
            if n == TX_TRIES - 1:
                break
            wait = random.uniform(0.0, TX_PAUSE * 2 ** n)
            at = getattr(_DEADLINE, "at", None)
            if at is not None and time.monotonic() + wait >= at:
                raise self._timeout() from None
            _pause(wait)
        msg = scrub(" ".join(str(error).split()), self.url) or type(error).__name__
        raise StoreUnavailable(f"store {self.describe()}: {what}: PostgreSQL aborted it {TX_TRIES} times in a row "
                               f"({msg}), as transactions that wait for each other do: try again",
                               CONTENTION_RETRY_AFTER) from None

    @contextlib.contextmanager
    def deadline(self, at: float) -> Iterator[None]:
        """This thread's store calls within it give up at ``at`` (``time.monotonic()``), not
        :attr:`timeout` after each begins: a delivery's bound counts its wait for a thread."""
        before, span = getattr(_DEADLINE, "at", None), getattr(_DEADLINE, "span", None)
        _DEADLINE.at = at if before is None else min(before, at)
        _DEADLINE.span = max(0.0, _DEADLINE.at - time.monotonic())   # (for the message)
        try:
            yield
        finally:
            _DEADLINE.at, _DEADLINE.span = before, span

    def _connect(self, timeout: float | None = None) -> psycopg.Connection:
        wait = self.connect_timeout if timeout is None else min(self.connect_timeout, timeout)
        try:
            return psycopg.connect(self.url, autocommit=True, connect_timeout=max(1, math.ceil(wait)))
        except pg_errors.ConnectionTimeout:
            raise self._timeout() from None
        except psycopg.Error as e:
            raise self._error(e) from None
        except Exception as e:  # a malformed URL: ProgrammingError, ValueError...
            raise StoreError(f"store {self.describe()}: cannot connect: {scrub(str(e), self.url)}") from None

    @contextlib.contextmanager
    def _conn(self) -> Iterator[psycopg.Connection]:
        if self._closed:
            raise StoreClosed(f"the store {self.describe()}")
        # the call's deadline (PgStore.deadline, else timeout from now): past it the
        # connection is cut (_Watchdog) and the call raises StoreTimeout
        at = getattr(_DEADLINE, "at", None)
        if at is None and self.timeout is not None:
            at = time.monotonic() + self.timeout
        if at is not None and time.monotonic() >= at:
            raise self._timeout()   # (nothing was sent)
        while True:
            try:
                conn = self._pool.get_nowait()
            except queue.Empty:
                conn = self._connect(None if at is None else at - time.monotonic())
                break
            if not _dropped(conn):
                break
            with contextlib.suppress(Exception):
                conn.close()
        ok = cut = False
        watch = _WATCHDOG.arm(at, conn) if at is not None else [0, 0, None, False]
        try:
            yield conn
            ok = True
        except psycopg.Error as e:
            cut = _WATCHDOG.disarm(watch)
            if cut:
                raise self._timeout() from None
            if isinstance(e, (pg_errors.UniqueViolation, pg_errors.DeadlockDetected,
                              pg_errors.SerializationFailure)):
                raise
            raise self._error(e) from None
        finally:
            cut = _WATCHDOG.disarm(watch) or cut
            if cut or conn.closed or conn.broken or (not ok and conn.info.transaction_status != 0) or self._closed:
                with contextlib.suppress(Exception):
                    conn.close()
            elif self._pool.qsize() < self._size:
                self._pool.put(conn)
            else:
                conn.close()

    @contextlib.contextmanager
    def _tx(self) -> Iterator[psycopg.Cursor]:
        with self._conn() as conn:
            with conn.transaction():
                with conn.cursor() as cur:
                    yield cur

    def close(self) -> None:
        self._closed = True
        while True:
            try:
                c = self._pool.get_nowait()
            except queue.Empty:
                break
            with contextlib.suppress(Exception):
                c.close()

    def __enter__(self) -> "PgStore":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def listen_connection(self) -> psycopg.Connection:
        """A new connection of its own (for LISTEN); the caller closes it."""
        return self._connect()

    # -- schema ------------------------------------------------------------------------------

    @staticmethod
    def _version(conn: psycopg.Connection) -> int:
        if conn.execute("SELECT to_regclass('trg_schema')").fetchone()[0] is None:
            return 0
        return int(conn.execute("SELECT COALESCE(MAX(version), 0) FROM trg_schema").fetchone()[0])

    def schema_version(self) -> int:
        with self._conn() as conn:
            return self._version(conn)

    def _migrate(self, conn: psycopg.Connection) -> list[int]:
        applied = []
        with conn.transaction():
            conn.execute("SELECT pg_advisory_xact_lock(%s)", (_MIGRATION_LOCK,))
            conn.execute("CREATE TABLE IF NOT EXISTS trg_schema (version integer PRIMARY KEY, "
                         "applied_at double precision NOT NULL)")
            have = self._version(conn)
            if have > SCHEMA_VERSION:
                raise StoreError(f"the store {self.describe()} has schema {have}, newer than this triggerlang "
                                 f"knows ({SCHEMA_VERSION}): upgrade triggerlang")
            for version, sql in MIGRATIONS:
                if version <= have:
                    continue
                conn.execute(sql)
                conn.execute(f"INSERT INTO trg_schema (version, applied_at) VALUES (%s, {_NOW})", (version,))
                applied.append(version)
        return applied

    def migrate(self) -> list[int]:
        """Apply the migrations this database lacks (idempotent); the versions applied."""
        with self._conn() as conn:
            return self._migrate(conn)

    # -- manifests -----------------------------------------------------------------------------

    @_rerun_on_conflict("could not publish the manifest")
    def publish_manifest(self, manifest: dict) -> str:
        """Store a compiled manifest by its sha256 (idempotent); the sha256."""
        sha, body = manifest_sha(manifest)
        with self._conn() as conn:
            conn.execute(f"INSERT INTO trg_manifests (sha256, body, created_at) VALUES (%s, %s, {_NOW}) "
                         "ON CONFLICT (sha256) DO NOTHING", (sha, body))
        return sha

    @_rerun_on_conflict("could not keep the manifest")
    def keep_manifest(self, manifest: dict) -> None:
        """A running node's manifest stays in the store: its ``created_at`` is refreshed once
        it is a minute old (so ``prune`` spares it), and it is published again if it is gone."""
        sha, _ = manifest_sha(manifest)
        with self._conn() as conn:
            r = conn.execute(f"SELECT created_at < {_NOW} - %s FROM trg_manifests WHERE sha256 = %s",
                             (MANIFEST_REFRESH, sha)).fetchone()
            if r is not None and r[0]:
                conn.execute(f"UPDATE trg_manifests SET created_at = {_NOW} WHERE sha256 = %s", (sha,))
        if r is None:
            self.publish_manifest(manifest)

    def manifest(self, sha: str) -> dict | None:
        with self._conn() as conn:
            r = conn.execute("SELECT body FROM trg_manifests WHERE sha256 = %s", (sha,)).fetchone()
        return None if r is None else json.loads(r[0])

    # -- ingest --------------------------------------------------------------------------------

    @staticmethod
    def lock_rule(cur: psycopg.Cursor, rule: str) -> None:
        """The transaction-scoped advisory lock of ``rule`` (released at commit)."""
        cur.execute("SELECT pg_advisory_xact_lock(%s)", (_lock_key(rule),))

    @_rerun_on_conflict("could not journal the event")
    def ingest(self, event: Event, intents: list[Intent], delivery_key: str | None = None, *,
               manifest: str | None = None, in_tx: Callable[[Any], None] | None = None) -> Recorded:
        """Journal ``event``, decide each intent's run (SPEC §12.3) and create the runs, in
        ONE transaction committed on return. A known ``delivery_key`` (or event id) writes
        nothing and returns the earlier event with ``duplicate=True`` and its run ids.

        Run again from its start when PostgreSQL aborts it (a deadlock: two ingests, or an
        ingest and a run's end, taking rows and rules' locks in another order; a
        serialization failure): it writes nothing outside its transaction, ``_decide``
        decides each intent anew, and ``in_tx`` (a correlation's) starts its lists over."""
        if in_tx is None and event.source != "schedule" and all(
                it.busy in ("queue", "parallel") and not it.debounce and it.skip is None
                and not (it.dedupe_key is not None and it.dedupe_for) for it in intents):
            with self._conn() as conn:
                rec = self._ingest_fast(conn, event, intents, delivery_key, manifest)
            if rec is not None:
                return rec
        with self._tx() as cur:
            return self._ingest(cur, event, intents, delivery_key, manifest, in_tx)

    def _ingest_fast(self, conn: psycopg.Connection, event: Event, intents: list[Intent],
                     delivery_key: str | None, manifest: str | None) -> Recorded | None:
        """The common case, ONE statement (its own transaction, one round trip): the event,
        its runs and the NOTIFY, when no intent needs a decision under the rule's lock
        (``busy queue|parallel``, no debounce, no dedupe window, not a schedule tick, which
        ``busy queue`` does not let pile up: defaults.TICK_ALREADY_WAITING). None for a duplicate
        (the caller looks the earlier delivery up)."""
        names: list[str] = []
        for it in intents:
            if it.rule not in names:
                names.append(it.rule)
        data_json = dumps(event.data)
        args: list[Any] = [event.id, event.source, event.type, event.time, data_json, delivery_key, dumps(names),
                           int(event.depth)]
        sql = ("WITH e AS (INSERT INTO trg_events (id, source, type, time, data, delivery_key, matched, received_at, "
               f"depth) VALUES (%s, %s, %s, %s, %s, %s, %s, {_NOW}, %s) ON CONFLICT DO NOTHING RETURNING received_at)")
        if intents:
            rows = ", ".join(["(%s::int, %s::text, %s::text, %s::text, %s::text, %s::text, %s::boolean, "
                              "%s::float8, %s::int, %s::float8)"] * len(intents))
            args += [event.id, manifest]  # the SELECT's, before the VALUES rows
            for i, it in enumerate(intents):
                args += [i, it.rule, it.action, dumps(it.inputs), it.dedupe_key, it.pool, it.busy != "parallel",
                         it.timeout, int(it.retry), float(it.backoff)]
            sql += (", r AS (INSERT INTO trg_runs (rule, action, status, inputs, event_id, attempt, dedupe_key, "
                    "queued_at, pool, serial, manifest, timeout, retry, backoff) "
                    "SELECT v.rule, v.action, 'queued', v.inputs, %s, 1, v.dedupe_key, e.received_at, v.pool, "
                    "v.serial, %s, v.timeout, v.retry, v.backoff "
                    f"FROM e, (VALUES {rows}) AS v(ord, rule, action, inputs, dedupe_key, pool, serial, timeout, "
                    "retry, backoff) ORDER BY v.ord RETURNING id)"
                    ", n AS (SELECT pg_notify(%s, x.pool) FROM e, unnest(%s::text[]) AS x(pool))"
                    " SELECT (SELECT received_at FROM e), (SELECT array_agg(id ORDER BY id) FROM r), "
                    "(SELECT count(*) FROM n)")
            args += [NOTIFY_RUNS, sorted({it.pool for it in intents})]
        else:
            sql += " SELECT (SELECT received_at FROM e), NULL, 0"
        row = conn.execute(sql, args).fetchone()
        if row is None or row[0] is None:
            return None
        return Recorded(event.id, list(row[1] or []), data_json=data_json)

    def _ingest(self, cur: psycopg.Cursor, event: Event, intents: list[Intent], delivery_key: str | None,
                manifest: str | None, in_tx: Callable[[Any], None] | None) -> Recorded:
        names: list[str] = []
        for it in intents:
            if it.rule not in names:
                names.append(it.rule)
        data_json = dumps(event.data)
        cur.execute(
            "INSERT INTO trg_events (id, source, type, time, data, delivery_key, matched, received_at, depth) "
            f"VALUES (%s, %s, %s, %s, %s, %s, %s, {_NOW}, %s) ON CONFLICT DO NOTHING RETURNING received_at",
            (event.id, event.source, event.type, event.time, data_json, delivery_key, dumps(names),
             int(event.depth)))
        row = cur.fetchone()
        if row is None:
            cur.execute("SELECT id FROM trg_events WHERE delivery_key = %s OR id = %s LIMIT 1",
                        (delivery_key, event.id))
            found = cur.fetchone()
            eid = found[0] if found else event.id
            cur.execute("SELECT id FROM trg_runs WHERE event_id = %s ORDER BY id", (eid,))
            return Recorded(eid, [r[0] for r in cur.fetchall()], duplicate=True)
        now = row[0]
        if in_tx is not None:
            in_tx(cur)
        for rule in sorted({it.rule for it in intents if (it.busy != "parallel" or it.debounce) and it.skip is None}):
            self.lock_rule(cur, rule)
        ids: list[int] = []
        pools: set[str] = set()
        for it in intents:
            rid = self._decide(cur, event, it, now, manifest)
            if rid is not None:
                ids.append(rid[0])
                if rid[1] == "queued":
                    pools.add(it.pool)
        for pool in sorted(pools):
            cur.execute("SELECT pg_notify(%s, %s)", (NOTIFY_RUNS, pool))
        return Recorded(event.id, ids, data_json=data_json)

    def _decide(self, cur: psycopg.Cursor, event: Event, it: Intent, now: float,
                manifest: str | None) -> tuple[int, str] | None:
        """The intent's run (its id and status), or None when it moved the pending run of a
        debounce window; what it decided is noted on the intent (``decided``, ``replaced``)."""
        it.decided, it.replaced = None, 0   # (a transaction tried again decides again)
        paths = list(event.data.get("paths") or []) if event.source == "file" else []
        if it.skip is not None:  # loop protection: recorded, not run, no policy decided
            cur.execute(
                "INSERT INTO trg_runs (rule, action, status, inputs, event_id, attempt, dedupe_key, queued_at, "
                "finished_at, error, pool, serial, manifest, timeout, retry, backoff) "
                "VALUES (%s, %s, 'skipped', %s, %s, 1, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s) RETURNING id",
                (it.rule, it.action, dumps(it.inputs), event.id, it.dedupe_key, now, now, it.skip, it.pool,
                 it.busy != "parallel", manifest, it.timeout, int(it.retry), float(it.backoff)))
            it.decided = "skipped"
            return cur.fetchone()[0], "skipped"
        if it.debounce:
            # the window is open until its run is claimed, not only until its quiet period
            # ends (as the one-process engine's: Engine._kick): a pending run whose quiet
            # period is over but that waits behind its rule's running run takes the event.
            # Closed at its not_before, each change made while a run went (a build writing
            # its folder) made a run of its own behind it, where serve makes one.
            cur.execute("SELECT id, inputs FROM trg_runs WHERE rule = %s AND status = 'queued' "
                        "AND debounce IS NOT NULL ORDER BY id DESC LIMIT 1 FOR UPDATE", (it.rule,))
            pending = cur.fetchone()
            if pending is not None:  # the window is open: this event moves the pending run
                inputs = dict(it.inputs)
                old = json.loads(pending[1])
                for p in it.paths_params:
                    inputs[p] = GatheredPaths([*(old.get(p) or []), *paths]).list()
                # its quiet period starts again while it lasts; one that is over stays over (the
                # run only waits for its lane), as the engine's timed run vs its ready one
                cur.execute("UPDATE trg_runs SET inputs = %s, event_id = %s, not_before = CASE WHEN not_before > %s "
                            "THEN %s ELSE not_before END WHERE id = %s",
                            (dumps(inputs), event.id, now, now + float(it.debounce), pending[0]))
                return None
        status, error, not_before = "queued", None, None
        if it.dedupe_key is not None and it.dedupe_for:
            cur.execute("INSERT INTO trg_dedupe AS d (rule, key, last_at) VALUES (%s, %s, %s) "
                        "ON CONFLICT (rule, key) DO UPDATE SET last_at = EXCLUDED.last_at "
                        "WHERE d.last_at <= EXCLUDED.last_at - %s RETURNING 1",
                        (it.rule, it.dedupe_key, now, float(it.dedupe_for)))
            if cur.fetchone() is None:
                cur.execute("SELECT last_at FROM trg_dedupe WHERE rule = %s AND key = %s", (it.rule, it.dedupe_key))
                last = cur.fetchone()
                ago = now - last[0] if last else 0.0
                status = "skipped"
                error = f"dedupe: {it.dedupe_field}={it.dedupe_key!r} already ran {ago:.0f}s ago"
        inputs = dict(it.inputs)
        if status == "queued" and it.busy == "skip":  # (before a debounce window opens, as in engine.py)
            cur.execute("SELECT 1 FROM trg_runs WHERE rule = %s AND status IN ('queued', 'running') LIMIT 1",
                        (it.rule,))
            if cur.fetchone() is not None:
                status, error = "skipped", "busy skip: a run of this rule was still going"
        if status == "queued" and it.debounce:
            for p in it.paths_params:
                inputs[p] = GatheredPaths(paths).list()
            not_before = now + float(it.debounce)
        elif status == "queued" and it.busy == "queue" and event.source == "schedule":
            cur.execute("SELECT 1 FROM trg_runs WHERE rule = %s AND status = 'queued' LIMIT 1", (it.rule,))
            if cur.fetchone() is not None:
                status, error = "skipped", defaults.TICK_ALREADY_WAITING
        if status == "queued" and it.busy == "restart":
            # the newest wins: older waiting runs are dropped (not a pending debounced one), the running one stopped
            cur.execute(f"UPDATE trg_runs SET status = 'cancelled', finished_at = {_NOW}, "
                        "error = 'busy restart: a newer run replaced it' WHERE rule = %s AND status = 'queued' "
                        "AND NOT (debounce IS NOT NULL AND not_before > %s)", (it.rule, now))
            it.replaced = cur.rowcount
            cur.execute("UPDATE trg_runs SET cancel_requested = true WHERE rule = %s AND status = 'running' "
                        "RETURNING id", (it.rule,))
            for (rid,) in cur.fetchall():
                cur.execute("SELECT pg_notify(%s, %s)", (NOTIFY_CANCEL, str(rid)))
        cur.execute(
            "INSERT INTO trg_runs (rule, action, status, inputs, event_id, attempt, dedupe_key, queued_at, "
            "finished_at, not_before, error, pool, serial, manifest, timeout, retry, backoff, debounce, paths_params) "
            "VALUES (%s, %s, %s, %s, %s, 1, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s) RETURNING id",
            (it.rule, it.action, status, dumps(inputs), event.id, it.dedupe_key, now,
             now if status in FINAL_STATUSES else None, not_before, error, it.pool, it.busy != "parallel",
             manifest, it.timeout, int(it.retry), float(it.backoff), it.debounce,
             dumps(list(it.paths_params)) if it.paths_params else None))
        if status in FINAL_STATUSES:
            it.decided = status
        return cur.fetchone()[0], status

    # -- the queue -----------------------------------------------------------------------------

    @_rerun_on_conflict("could not claim runs")
    def claim(self, worker: str, pools: list[str], limit: int, lease: float) -> list[RunRow]:
        """Lease up to ``limit`` ready runs of ``pools`` to ``worker`` (one statement,
        committed at once); the runs, now ``running``, oldest first."""
        if limit <= 0:
            return []
        sql = f"""
WITH now_ AS (SELECT {_NOW} AS t),
cand AS (
    SELECT r.id FROM trg_runs r, now_
    WHERE r.status = 'queued' AND r.pool = ANY(%(pools)s)
      AND (r.not_before IS NULL OR r.not_before <= now_.t)
      AND (NOT r.serial OR (
            NOT EXISTS (SELECT 1 FROM trg_runs x WHERE x.rule = r.rule AND x.status = 'running' AND x.serial)
        AND NOT EXISTS (SELECT 1 FROM trg_runs y WHERE y.rule = r.rule AND y.status = 'queued' AND y.serial
                        AND y.id <> r.id AND (y.not_before IS NULL OR y.not_before <= now_.t)
                        AND ({_AHEAD.format(t="y")}, r.id) > ({_AHEAD.format(t="r")}, y.id))))
    ORDER BY {_AHEAD.format(t="r")} DESC, r.id
    LIMIT %(limit)s
    FOR UPDATE OF r SKIP LOCKED
)
UPDATE trg_runs SET status = 'running', started_at = now_.t, worker = %(worker)s,
       lease_until = now_.t + %(lease)s
FROM cand, now_, trg_events e WHERE trg_runs.id = cand.id AND e.id = trg_runs.event_id
RETURNING {", ".join("trg_runs." + c.strip() for c in _RUN_COLS.split(","))}, e.source, e.type, e.time, e.data,
          e.depth"""
        args = {"pools": list(pools), "limit": int(limit), "worker": worker, "lease": float(lease)}
        for attempt in range(4):
            try:
                with self._conn() as conn:
                    rows = conn.execute(sql, args).fetchall()
                out = []
                for r in rows:
                    run = _run(r[:-5])
                    run.event = {"id": run.event_id, "source": r[-5], "type": r[-4], "time": r[-3],
                                 "data": json.loads(r[-2]), "depth": r[-1]}
                    out.append(run)
                return sorted(out, key=lambda r: r.id)
            except pg_errors.UniqueViolation:
                # two runs of one serial rule in one claim (a race with another claimer): one at a time
                args["limit"] = 1
                continue
        return []

    def next_ready_at(self, pools: list[str]) -> float | None:
        """Seconds until the earliest waiting run of ``pools`` becomes ready (a debounce, a
        backoff), or None when none waits."""
        with self._conn() as conn:
            r = conn.execute(f"SELECT MIN(not_before) - {_NOW} FROM trg_runs WHERE status = 'queued' "
                             f"AND pool = ANY(%s) AND not_before > {_NOW}", (list(pools),)).fetchone()
        return None if r is None or r[0] is None else max(0.0, float(r[0]))

    @_rerun_on_conflict("could not renew the leases")
    def heartbeat(self, worker: str, run_ids: list[int], lease: float) -> tuple[set[int], set[int]]:
        """Extend the leases of ``run_ids``: (runs whose lease is gone, runs asked to cancel)."""
        if not run_ids:
            return set(), set()
        with self._conn() as conn:
            rows = conn.execute(f"UPDATE trg_runs SET lease_until = {_NOW} + %s WHERE id = ANY(%s) "
                                "AND worker = %s AND status = 'running' RETURNING id, cancel_requested",
                                (float(lease), list(run_ids), worker)).fetchall()
        alive = {r[0] for r in rows}
        return set(run_ids) - alive, {r[0] for r in rows if r[1]}

    @_rerun_on_conflict("could not release the run")
    def release(self, run_id: int, worker: str) -> bool:
        """Give a claimed run that did not start back to the queue (a worker stopping)."""
        with self._conn() as conn:
            cur = conn.execute("UPDATE trg_runs SET status = 'queued', started_at = NULL, worker = NULL, "
                               "lease_until = NULL WHERE id = %s AND worker = %s AND status = 'running'",
                               (run_id, worker))
            if cur.rowcount:
                conn.execute("SELECT pg_notify(%s, (SELECT pool FROM trg_runs WHERE id = %s))",
                             (NOTIFY_RUNS, run_id))
            return cur.rowcount > 0

    def cancel_requested(self, run_ids: list[int]) -> set[int]:
        if not run_ids:
            return set()
        with self._conn() as conn:
            rows = conn.execute("SELECT id FROM trg_runs WHERE id = ANY(%s) AND cancel_requested",
                                (list(run_ids),)).fetchall()
        return {r[0] for r in rows}

    @_rerun_on_conflict("could not store the run's log")
    def store_log(self, run_id: int, body: bytes, truncated: bool = False, size: int | None = None) -> None:
        """Keep the end of a run's output (at most :data:`LOG_CAP` bytes); ``size`` is the
        length of the whole log (so that a reader can follow it by byte offset)."""
        with self._conn() as conn:
            self._put_log(conn, run_id, body, truncated, size)

    @staticmethod
    def _put_log(conn: Any, run_id: int, body: bytes, truncated: bool, size: int | None = None) -> None:
        """Store a run's log as of ``size`` bytes, unless a later one is stored already. A
        log only grows, and a worker's live copy (its heartbeat's, read before the run
        ended, written from a thread) may commit after the run's end stored the whole log:
        it must not put the older, shorter log back (``logs -f`` and the dashboard, which
        see the run ended, would show it without its last lines)."""
        if size is None and not truncated:
            size = len(body)
        if len(body) > LOG_CAP:
            body, truncated = body[-LOG_CAP:], True
        conn.execute("INSERT INTO trg_logs (run_id, body, truncated, size) VALUES (%s, %s, %s, %s) "
                     "ON CONFLICT (run_id) DO UPDATE SET body = EXCLUDED.body, truncated = EXCLUDED.truncated, "
                     "size = EXCLUDED.size WHERE trg_logs.size IS NULL OR EXCLUDED.size IS NULL "
                     "OR EXCLUDED.size >= trg_logs.size", (run_id, body, truncated, size))

    def finish(self, run_id: int, worker: str, status: str, exit_code: int | None, error: str | None, *,
               log: bytes | None = None, log_truncated: bool = False, log_size: int | None = None,
               chain: Callable[[RunRow], tuple[Event, list[Intent], str | None] | None] | None = None,
               retry_statuses: tuple[str, ...] = ("failed", "timed_out")) -> RunRow | None:
        """Record the end of a leased run, in ONE transaction: its final status, its log,
        its retry (``not_before = now + backoff * 2**(attempt-1)``) when the status is one of
        ``retry_statuses`` and attempts are left, and the ``run.*`` event that ``chain``
        builds from the finished row with the runs it matches.

        None, and nothing written, when the lease is no longer ``worker``'s (the reaper took
        the run: the worker was fenced off).
        """
        if status not in FINAL_STATUSES:
            raise ValueError(f"{status!r} is not a final run status")
        # a run.* chain that locks the rule of a concurrent ingest may deadlock: run again
        # (chain builds its event anew, and its caller's list of what it journaled too)
        return self._rerun(f"could not record the end of run {run_id}", lambda: self._finish(
            run_id, worker, status, exit_code, error, log, log_truncated, chain, retry_statuses, log_size))

    def _finish(self, run_id: int, worker: str, status: str, exit_code: int | None, error: str | None,
                log: bytes | None, log_truncated: bool, chain: Any, retry_statuses: tuple[str, ...],
                log_size: int | None = None) -> RunRow | None:
        with self._tx() as cur:
            # a cancel asked for (an operator's, busy restart's) keeps the reason it was asked with
            cur.execute(f"UPDATE trg_runs SET status = %s, exit_code = %s, finished_at = {_NOW}, lease_until = NULL, "
                        "error = CASE WHEN %s = 'cancelled' AND cancel_requested AND error IS NOT NULL THEN error "
                        "ELSE %s END WHERE id = %s AND worker = %s AND status = 'running' "
                        f"RETURNING {_RUN_COLS}", (status, exit_code, status, error, run_id, worker))
            r = cur.fetchone()
            if r is None:
                return None
            row = _run(r)
            if log is not None:
                self._put_log(cur, run_id, log, log_truncated, log_size)
            # the next run of a serial rule may start now: every worker of the pool hears it
            # (not only this one, which would otherwise take every run of a busy lane)
            cur.execute("SELECT pg_notify(%s, %s) WHERE EXISTS (SELECT 1 FROM trg_runs WHERE rule = %s "
                        "AND status = 'queued' AND serial)", (NOTIFY_RUNS, row.pool, row.rule))
            if status in retry_statuses and row.attempt <= int(row.retry or 0):
                # an interrupted run (a worker's stop) is retried at once, in its place, as the
                # reaper retries one (_AHEAD); a failed one after its backoff
                delay = None if status == "interrupted" else float(row.backoff or 0.0) * 2 ** (row.attempt - 1)
                cur.execute(
                    "INSERT INTO trg_runs (rule, action, status, inputs, event_id, attempt, dedupe_key, queued_at, "
                    "not_before, pool, serial, manifest, timeout, retry, backoff) "
                    f"SELECT rule, action, 'queued', inputs, event_id, attempt + 1, dedupe_key, {_NOW}, "
                    f"{_NOW} + %s, pool, serial, manifest, timeout, retry, backoff FROM trg_runs WHERE id = %s",
                    (delay, run_id))
                cur.execute("SELECT pg_notify(%s, %s)", (NOTIFY_RUNS, row.pool))
            if chain is not None:
                made = chain(row)
                if made is not None:
                    event, intents, sha = made
                    self._ingest(cur, event, intents, None, sha, None)
        return row

    # -- the operator's writes (issue 14) ------------------------------------------------------

    @_rerun_on_conflict("could not re-run the run")
    def rerun(self, run_id: int, actor: str) -> RunRow:
        """A new ``queued`` run copying run ``run_id`` (which must be over): its rule, action,
        inputs, event, pool and policies, and the manifest it ran under; ``rerun_of`` points
        at it; the audit entry and the NOTIFY in the same transaction. KeyError: no such
        run; ValueError: it has not ended."""
        with self._tx() as cur:
            cur.execute("SELECT status FROM trg_runs WHERE id = %s", (int(run_id),))
            r = cur.fetchone()
            if r is None:
                raise KeyError(run_id)
            if r[0] not in FINAL_STATUSES:
                raise ValueError(f"run {run_id} is {r[0]}: only a run that has ended can be re-run")
            cur.execute(
                "INSERT INTO trg_runs (rule, action, status, inputs, event_id, attempt, dedupe_key, queued_at, pool, "
                "serial, manifest, timeout, retry, backoff, rerun_of) "
                f"SELECT rule, action, 'queued', inputs, event_id, 1, dedupe_key, {_NOW}, pool, serial, manifest, "
                f"timeout, retry, backoff, id FROM trg_runs WHERE id = %s RETURNING {_RUN_COLS}", (int(run_id),))
            row = _run(cur.fetchone())
            self._audit(cur, actor, "rerun", run_id=int(run_id), new_run_id=row.id, rule=row.rule)
            cur.execute("SELECT pg_notify(%s, %s)", (NOTIFY_RUNS, row.pool))
        return row

    @_rerun_on_conflict("could not cancel the run")
    def cancel(self, run_id: int, actor: str, reason: str) -> str:
        """Cancel run ``run_id`` for an operator: a queued run becomes ``cancelled``; a running
        one gets ``cancel_requested`` (its worker is notified at once and stops its process
        group: SIGTERM, SIGKILL after 5 s, ``cancelled`` with ``reason``). Its status before;
        the audit entry in the same transaction. KeyError / ValueError as ``rerun``."""
        with self._tx() as cur:
            cur.execute("SELECT status, rule FROM trg_runs WHERE id = %s FOR UPDATE", (int(run_id),))
            r = cur.fetchone()
            if r is None:
                raise KeyError(run_id)
            status, rule = r
            if status in FINAL_STATUSES:
                raise ValueError(f"run {run_id} has already ended ({status})")
            if status == "queued":
                cur.execute(f"UPDATE trg_runs SET status = 'cancelled', error = %s, finished_at = {_NOW} "
                            "WHERE id = %s", (reason, int(run_id)))
            else:
                cur.execute("UPDATE trg_runs SET cancel_requested = true, error = %s WHERE id = %s",
                            (reason, int(run_id)))
                cur.execute("SELECT pg_notify(%s, %s)", (NOTIFY_CANCEL, str(int(run_id))))
            self._audit(cur, actor, "cancel", run_id=int(run_id), rule=rule)
        return status

    @_rerun_on_conflict("could not write the audit trail")
    def add_audit(self, actor: str, action: str, *, run_id: int | None = None, new_run_id: int | None = None,
                  rule: str | None = None, detail: str | None = None) -> None:
        with self._tx() as cur:
            self._audit(cur, actor, action, run_id=run_id, new_run_id=new_run_id, rule=rule, detail=detail)

    @staticmethod
    def _audit(cur: Any, actor: str, action: str, *, run_id: int | None = None, new_run_id: int | None = None,
               rule: str | None = None, detail: str | None = None) -> None:
        cur.execute(f"INSERT INTO trg_audit (at, actor, action, run_id, new_run_id, rule, detail) "
                    f"VALUES ({_NOW}, %s, %s, %s, %s, %s, %s)", (actor, action, run_id, new_run_id, rule, detail))

    def list_audit(self, run_id: int | None = None, rule: str | None = None, limit: int = 50) -> list[dict[str, Any]]:
        where, args = equal_conditions("%s", run_id=run_id, rule=rule)
        args.append(max(0, int(limit)))
        with self._conn() as conn:
            rows = conn.execute(newest_first(f"SELECT {AUDIT_COLUMNS} FROM trg_audit", where, "%s"), args).fetchall()
        return [audit_dict(r) for r in reversed(rows)]

    def run_counts(self) -> dict[str, dict[str, int]]:
        """Runs waiting or going, by rule: ``{rule: {"queued": n, "running": m}}``."""
        with self._conn() as conn:
            rows = conn.execute("SELECT rule, status, COUNT(*) FROM trg_runs WHERE status IN ('queued', 'running') "
                                "GROUP BY rule, status").fetchall()
        out: dict[str, dict[str, int]] = {}
        for rule, status, n in rows:
            out.setdefault(rule, {})[status] = int(n)
        return out

    @_rerun_on_conflict("could not write the delivery history")
    def record_deliveries(self, rows: list[dict[str, Any]], keep: int) -> None:
        """Add webhook deliveries and keep the newest ``keep`` of each route they touched."""
        if not rows:
            return
        insert, prune = delivery_sql("trg_deliveries", lambda f: f"%({f})s", "%s")
        with self._tx() as cur:
            cur.executemany(insert, [{**DELIVERY_DEFAULTS, **r, "duplicate": bool(r.get("duplicate"))} for r in rows])
            for route in sorted({r["route"] for r in rows}):
                cur.execute(prune, (route, route, int(keep)))

    def list_deliveries(self, route: str | None = None, limit: int = 50) -> list[dict[str, Any]]:
        where, args = equal_conditions("%s", route=route)
        args.append(max(0, int(limit)))
        with self._conn() as conn:
            rows = conn.execute(newest_first(f"SELECT id, {', '.join(DELIVERY_FIELDS)} FROM trg_deliveries", where,
                                             "%s"), args).fetchall()
        return [delivery_dict(r) for r in rows]

    def recent_runs(self, rule: str, limit: int = 2) -> tuple[list[tuple[int, str, float | None]], float]:
        """The newest runs of ``rule`` that started (``[(id, status, finished_at)]``, newest
        first) and the database's clock now: what loop protection looks at."""
        with self._conn() as conn:
            rows = conn.execute("SELECT id, status, finished_at FROM trg_runs WHERE rule = %s AND started_at IS NOT "
                                "NULL ORDER BY id DESC LIMIT %s", (rule, int(limit))).fetchall()
            now = conn.execute(f"SELECT {_NOW}").fetchone()[0]
        return [(r[0], r[1], r[2]) for r in rows], float(now)

    @_rerun_on_conflict("could not pause the rule")
    def pause_rule(self, rule: str, reason: str, actor: str) -> int:
        """Loop protection paused ``rule``: its queued runs are cancelled with ``reason``, and
        the pause is journaled; how many were cancelled."""
        with self._tx() as cur:
            cur.execute(f"UPDATE trg_runs SET status = 'cancelled', error = %s, finished_at = {_NOW} "
                        "WHERE rule = %s AND status = 'queued'", (reason, rule))
            n = cur.rowcount
            self._audit(cur, actor, "pause", rule=rule, detail=reason)
        return n

    @_rerun_on_conflict("could not cancel the waiting runs")
    def cancel_waiting(self, rules: Collection[str], manifest: str | None, reason: str) -> dict[str, int]:
        """Record the waiting runs (queued, debounced, waiting out a retry's backoff) of
        ``rules`` that were made under ``manifest`` ``cancelled`` with ``reason``, in one
        statement: a run is cancelled once, whichever node asks first. How many, by rule."""
        if not rules:
            return {}
        with self._conn() as conn:
            rows = conn.execute(f"UPDATE trg_runs SET status = 'cancelled', error = %s, finished_at = {_NOW} "
                                "WHERE status = 'queued' AND rule = ANY(%s) AND manifest IS NOT DISTINCT FROM %s "
                                "RETURNING rule", (reason, sorted(rules), manifest)).fetchall()
        return _by_rule(rows)

    # -- ingest nodes ----------------------------------------------------------------------------

    @_rerun_on_conflict("could not register this node")
    def join_node(self, node: str, host: str, pid: int, manifest: str, lease: float, rules: Collection[str],
                  reason: str, gone: Callable[[int], bool]) -> tuple[float, dict[str, int]]:
        """An ingest node starts: forget the nodes whose lease ran out and those of ``host``
        whose process is ``gone`` (a node killed on this host and started again), register
        this one, running ``manifest`` until ``lease`` seconds from now (:meth:`keep_node`
        renews it), then cancel (``reason``) the waiting runs whose rule is neither in
        ``rules`` nor in a live node's manifest. Its start time (the database's clock) and
        the runs cancelled, by rule. Registered before the cancel, in a statement of its
        own: two nodes that start together each see the other."""
        with self._conn() as conn:
            conn.execute(f"DELETE FROM trg_nodes WHERE lease_until < {_NOW}")
            dead = [id_ for id_, pid_ in conn.execute("SELECT id, pid FROM trg_nodes WHERE host = %s AND id <> %s",
                                                      (host, node)).fetchall() if gone(pid_)]
            if dead:
                conn.execute("DELETE FROM trg_nodes WHERE id = ANY(%s)", (dead,))
            (started,) = conn.execute(
                "INSERT INTO trg_nodes (id, host, pid, manifest, started_at, lease_until) "
                f"VALUES (%s, %s, %s, %s, {_NOW}, {_NOW} + %s) ON CONFLICT (id) DO UPDATE SET "
                "manifest = excluded.manifest, lease_until = excluded.lease_until RETURNING started_at",
                (node, host, pid, manifest, lease)).fetchone()
            return started, self._cancel_orphaned(conn, node, rules, reason)

    @_rerun_on_conflict("could not renew this node's registration")
    def keep_node(self, node: str, host: str, pid: int, manifest: str, lease: float, started: float) -> None:
        """A running node's registration: its manifest (a reload changes it), renewed for
        ``lease`` seconds (again if it was forgotten meanwhile, with its start time)."""
        with self._conn() as conn:
            conn.execute("INSERT INTO trg_nodes (id, host, pid, manifest, started_at, lease_until) "
                         f"VALUES (%s, %s, %s, %s, %s, {_NOW} + %s) ON CONFLICT (id) DO UPDATE SET "
                         "manifest = excluded.manifest, lease_until = excluded.lease_until",
                         (node, host, pid, manifest, started, lease))

    @_rerun_on_conflict("could not remove this node's registration")
    def leave_node(self, node: str, reason: str) -> dict[str, int]:
        """An ingest node stops: its registration goes. If a live node started after it
        (a rolling deploy moved on), the waiting runs whose rule is in no live node's
        manifest are cancelled (``reason``), as that node's start would have, had this one
        been gone; otherwise (the last node, or a node of several stopped for a while) they
        wait for the next start. The runs cancelled, by rule."""
        with self._conn() as conn:
            with conn.transaction():
                r = conn.execute("DELETE FROM trg_nodes WHERE id = %s RETURNING started_at", (node,)).fetchone()
                newer = r is not None and conn.execute(
                    f"SELECT 1 FROM trg_nodes WHERE lease_until >= {_NOW} AND started_at > %s LIMIT 1",
                    (r[0],)).fetchone() is not None
                return self._cancel_orphaned(conn, node, (), reason) if newer else {}

    @staticmethod
    def _cancel_orphaned(conn: psycopg.Connection, node: str, rules: Collection[str], reason: str) -> dict[str, int]:
        rows = conn.execute(f"UPDATE trg_runs SET status = 'cancelled', error = %(reason)s, finished_at = {_NOW} "
                            "WHERE status = 'queued' AND rule <> ALL(%(rules)s) "
                            f"AND rule NOT IN ({_LIVE_RULES}) RETURNING rule",
                            {"reason": reason, "rules": sorted(rules), "node": node}).fetchall()
        return _by_rule(rows)

    @_rerun_on_conflict("could not reap the runs whose lease ran out")
    def reap(self) -> list[RunRow]:
        """Mark every running run whose lease expired ``interrupted`` and insert its retry
        (when its rule has ``retry`` attempts left) in the same statement; the reaped runs.
        A reaped run ends when its lease ran out (at most a lease after its worker was last
        heard from), not when a reaper came by: after a downtime of every node, its
        duration is its own, without the downtime."""
        sql = f"""
WITH dead AS (
    UPDATE trg_runs SET status = 'interrupted', finished_at = GREATEST(lease_until, started_at), lease_until = NULL,
           error = 'its worker stopped (the lease expired)'
    WHERE status = 'running' AND lease_until < {_NOW}
    RETURNING {_RUN_COLS}, inputs AS inputs2, serial
), again AS (
    INSERT INTO trg_runs (rule, action, status, inputs, event_id, attempt, dedupe_key, queued_at, pool, serial,
                          manifest, timeout, retry, backoff)
    SELECT rule, action, 'queued', inputs2, event_id, attempt + 1, dedupe_key, {_NOW}, pool, serial,
           manifest, timeout, retry, backoff FROM dead WHERE attempt <= retry
    RETURNING pool
)
SELECT {_RUN_COLS}, (SELECT string_agg(DISTINCT pool, ',') FROM again) FROM dead"""
        with self._tx() as cur:
            cur.execute(sql)
            rows = cur.fetchall()
            pools = {p for r in rows for p in (r[-1] or "").split(",") if p}
            for pool in sorted(pools):
                cur.execute("SELECT pg_notify(%s, %s)", (NOTIFY_RUNS, pool))
        return [_run(r[:-1]) for r in rows]

    @_rerun_on_conflict("could not prune")
    def prune(self, older_than: float) -> dict[str, int]:
        """Delete finished runs (and their logs) and events older than ``older_than`` seconds
        that no waiting or running run still needs, but each rule's newest tick (what
        :meth:`last_tick` reads); dedupe keys and manifests no longer used."""
        with self._tx() as cur:
            cur.execute(f"DELETE FROM trg_runs WHERE status NOT IN ('queued', 'running') "
                        f"AND COALESCE(finished_at, queued_at) < {_NOW} - %s RETURNING id", (older_than,))
            runs = [r[0] for r in cur.fetchall()]
            cur.execute("DELETE FROM trg_logs WHERE run_id = ANY(%s)", (runs,))
            groups, keep = self.prune_groups(cur, older_than)   # open groups keep their events
            cur.execute(f"DELETE FROM trg_events e WHERE received_at < {_NOW} - %s "
                        "AND NOT EXISTS (SELECT 1 FROM trg_runs r WHERE r.event_id = e.id) "
                        "AND NOT (e.id = ANY(%s)) AND NOT " + _NEWEST_TICK, (older_than, keep))
            events = cur.rowcount
            cur.execute(f"DELETE FROM trg_dedupe WHERE last_at < {_NOW} - %s", (older_than,))
            cur.execute(f"DELETE FROM trg_audit WHERE at < {_NOW} - %s", (older_than,))
            # a running node refreshes its manifest every MANIFEST_REFRESH s (keep_manifest)
            cur.execute(f"DELETE FROM trg_manifests m WHERE created_at < {_NOW} - GREATEST(%s, %s) "
                        "AND NOT EXISTS (SELECT 1 FROM trg_runs r WHERE r.manifest = m.sha256)",
                        (older_than, 10 * MANIFEST_REFRESH))
            manifests = cur.rowcount
        return {"runs": len(runs), "events": events, "manifests": manifests, "groups": groups}

    # -- reading -------------------------------------------------------------------------------

    def list_runs(self, limit: int = 50, rule: str | None = None, status: str | None = None,
                  before_id: int | None = None, event_id: str | None = None, *, q: str | None = None,
                  since: float | None = None, until: float | None = None,
                  ids: Collection[int] | None = None) -> list[dict[str, Any]]:
        where, args = run_conditions("%s", "ILIKE", events="trg_events", rule=rule, status=status,
                                     event_id=event_id, before_id=before_id, q=q, since=since, until=until,
                                     ids=ids)
        args.append(max(0, int(limit)))
        with self._conn() as conn:
            rows = conn.execute(newest_first(f"SELECT {_RUN_COLS} FROM trg_runs", where, "%s"), args).fetchall()
        return [_run(r).to_dict() for r in rows]

    def run_row(self, run_id: int) -> RunRow | None:
        with self._conn() as conn:
            r = conn.execute(f"SELECT {_RUN_COLS} FROM trg_runs WHERE id = %s", (int(run_id),)).fetchone()
        return None if r is None else _run(r)

    def get_run(self, run_id: int) -> dict[str, Any] | None:
        row = self.run_row(run_id)
        return None if row is None else row.to_dict()

    def list_events(self, limit: int = 50, source: str | None = None, type: str | None = None, *,
                    before: str | None = None, unmatched: bool = False, rule: str | None = None,
                    q: str | None = None, since: float | None = None,
                    until: float | None = None) -> list[dict[str, Any]]:
        where, args = event_conditions("%s", "ILIKE", events="trg_events", history="trg_corr_history", source=source,
                                       type=type, unmatched=unmatched, rule=rule, q=q, since=since, until=until)
        with self._conn() as conn:
            if before is not None:
                row = conn.execute("SELECT seq FROM trg_events WHERE id = %s", (before,)).fetchone()
                if row is None:
                    raise BadQuery(f"there is no event {before!r} to page back from")
                where.append("seq < %s")
                args.append(row[0])
            sql = newest_first(f"SELECT {_EVENT_COLS} FROM trg_events", where, "%s", order="seq")
            args.append(max(0, int(limit)))
            rows = conn.execute(sql, args).fetchall()
        return [_event(r) for r in rows]

    def get_event(self, event_id: str) -> dict[str, Any] | None:
        with self._conn() as conn:
            r = conn.execute(f"SELECT {_EVENT_COLS} FROM trg_events WHERE id = %s", (event_id,)).fetchone()
            if r is None:
                return None
            d = _event(r)
            d["runs"] = [x[0] for x in conn.execute("SELECT id FROM trg_runs WHERE event_id = %s ORDER BY id",
                                                    (event_id,)).fetchall()]
        return d

    def ping(self) -> None:
        """One round trip (``SELECT 1``) on a pooled connection; StoreError if the store
        does not answer (``GET /readyz`` of a node in store mode)."""
        with self._conn() as conn:
            conn.execute("SELECT 1")

    def last_tick(self, rule: str) -> str | None:
        with self._conn() as conn:
            r = conn.execute("SELECT (data::jsonb) ->> 'scheduled' FROM trg_events WHERE source = 'schedule' "
                             "AND type = 'tick' AND (data::jsonb) ->> 'rule' = %s ORDER BY seq DESC LIMIT 1",
                             (rule,)).fetchone()
        return None if r is None else r[0]

    def read_log_chunk(self, run_id: int, offset: int | None = None, limit: int = LOG_TAIL) -> LogChunk:
        """The stored end of a run's log from byte ``offset`` (see :class:`~.store.LogChunk`);
        a reader behind what the store still holds skips to its start."""
        with self._conn() as conn:
            r = conn.execute("SELECT body, size FROM trg_logs WHERE run_id = %s", (int(run_id),)).fetchone()
        if r is None:
            return LogChunk(b"", 0, 0, False)
        body, size = bytes(r[0]), r[1]
        end = int(size) if size is not None else len(body)
        base = end - len(body)  # where the stored part starts in the whole log
        start = max(base, end - limit) if offset is None else max(min(offset, end), base, end - limit)
        return LogChunk(body[start - base:], start, end)

    def read_log(self, run_id: int, limit: int = LOG_TAIL) -> tuple[str, bool, bool]:
        with self._conn() as conn:
            r = conn.execute("SELECT body, truncated FROM trg_logs WHERE run_id = %s", (int(run_id),)).fetchone()
        if r is None:
            return "", False, False
        body, truncated = bytes(r[0]), bool(r[1])
        if len(body) > limit:
            body, truncated = body[-limit:], True
        return clean_log(body, truncated), truncated, True


def log_tail(path: Path, cap: int = LOG_CAP) -> tuple[bytes, bool, int]:
    """(the last ``cap`` bytes of a log file, whether it was longer, its size); empty if missing."""
    try:
        with open(path, "rb") as f:
            f.seek(0, 2)
            size = f.tell()
            f.seek(max(0, size - cap))
            return f.read(cap), size > cap, size
    except OSError:
        return b"", False, 0


__all__ = ["PgStore", "MIGRATIONS", "SCHEMA_VERSION", "LOG_CAP", "manifest_sha", "log_tail"]
