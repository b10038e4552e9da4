"""The durable journal: every event received, the rules it matched, every run (SPEC §9).

:class:`SqliteStore` (also known as :class:`Journal`) is the default store of
:mod:`triggerlang.runtime.store`: one ``triggerc serve`` owns it, and its engine decides
the policies in memory. The shared store for several machines is
:class:`~triggerlang.runtime.pgstore.PgStore`.

The journal is one SQLite database in WAL mode at ``<state_dir>/journal.sqlite3``; run
output goes to ``<state_dir>/logs/<run_id>.log`` (see :meth:`Journal.run_log_path`).

Using it
--------
The engine owns one :class:`Journal` for the life of ``serve``::

    journal = Journal(state_dir)                 # JournalError on a bad state dir / db
    rec = journal.record_event(event, [PlannedRun("deploy_main", "deploy", {"sha": "abc"})],
                               delivery_key="github:1f2e...")
    if rec.duplicate: ...                        # a redelivery: nothing new was written
    journal.mark_running(rec.run_ids[0])         # True when the run went queued -> running
    journal.mark_finished(rec.run_ids[0], "succeeded", exit_code=0)

At start-up, :meth:`Journal.recover` turns the runs a crash left ``running`` into
``interrupted`` (the engine re-runs them if the rule has ``retry``) and returns the
``queued`` runs to start again, oldest first. Such a run ends when the crashed ``serve``
was last seen going, not when the next one found it: a running ``serve`` touches
``<state_dir>/alive`` every :data:`ALIVE_EVERY` seconds, and its mtime is that moment. Runs created later than their event (the
run of a debounced rule, a retry) are added with :meth:`Journal.add_run`; a run whose
start must wait (retry backoff, debounce) carries ``not_before`` (epoch seconds) and the
engine honours it. Runs dropped by ``busy skip``, ``busy signal`` (the running run got the
signal instead, or a newer event's run replaced a retry waiting out its backoff) or
``dedupe`` are recorded with status ``skipped`` and the reason in ``error``, so users can
see why nothing ran.

Statuses: ``queued`` ``running`` ``succeeded`` ``failed`` ``timed_out`` ``cancelled``
``interrupted`` ``skipped`` (:data:`STATUSES`; all but the first two are final,
:data:`FINAL_STATUSES`).

Durability
----------
Every method that writes commits before it returns (in group commit mode, below: once
its batch commits, one loop pass later). The connection runs with
``journal_mode=WAL`` and ``synchronous=NORMAL``: a committed transaction survives a crash
or ``kill -9`` of the process (the promise of SPEC §9); only an OS crash or power loss can
roll back the last few transactions, and never corrupts the file. Pass
``synchronous="FULL"`` to also survive power loss, at some cost in throughput.

Threads
-------
One connection (``check_same_thread=False``) guarded by a :class:`threading.Lock`: the
methods may be called from any thread, or directly from the event loop (they are short;
a write is tens of microseconds, well over 1000 events/s).

Group commit (``serve``)
------------------------
:meth:`SqliteStore.start_group_commit` hands the connection to the event loop's thread:
from then on every write made on that thread joins ONE open transaction (a *batch*,
``BEGIN IMMEDIATE`` at its first write) that is committed by a callback the loop runs at
its next pass, so the writes of every request, run start and run end handled in one loop
pass share one commit. A write returns at once with its result (new run ids...) and is
visible to every later read on that thread; it is durable once the batch commits:
``await store.flush()`` (or a callback on :meth:`commit_future`) waits for that, and the
HTTP source answers ``202`` only then. If the commit fails (a full disk), the whole batch
rolls back, every waiter gets the :class:`JournalError`, and the hooks registered with
:meth:`on_rollback` run first (the engine forgets the runs that were never written). Run
ids are handed out from memory in this mode and never reused, so an id that a rolled-back
batch gave out can never name another run.

Other threads get a connection of their own (WAL: readers see the last commit). The WAL
is checkpointed by a thread with its own connection (``PRAGMA wal_checkpoint(PASSIVE)``,
which copies committed pages and syncs the file without taking the write lock), never in
a commit on the request path: the loop's connection runs with ``wal_autocheckpoint=0``.

Extending a batch (correlation groups, delivery history): a write that must be durable
with an event goes in ``record_event``'s ``in_tx`` callback, which runs on the loop's
thread inside the batch under a savepoint of its own (if it raises, only that event's
writes are undone). Writes nobody waits for (a rejected delivery's history row) can be
made with :meth:`write_soon`: they join the open batch, or open one.

Errors
------
Opening or using the journal raises :class:`JournalError` with a one-line message for the
problems a user can fix (the state directory is not writable, the database is locked by
another process, the file is not a SQLite database or is from a newer triggerlang); never
a raw ``sqlite3`` exception. Unknown run ids raise ``KeyError`` and unknown statuses
``ValueError``: those are bugs in the caller.

Secrets
-------
The journal stores what it is given, as is. Callers must never pass secret *values* in
event data, run inputs or error messages: only secret names (references), as the manifest
does (SPEC §2).

Times
-----
``queued_at``, ``started_at``, ``finished_at``, ``not_before`` and ``received_at`` are
stored as epoch seconds (``REAL``); :class:`RunRow` carries them as floats, and the
``list_*``/``get_*`` dicts as ISO 8601 UTC strings (``2024-05-01T12:00:00.123Z``). An
event's own ``time`` is kept as the string the source gave.
"""

from __future__ import annotations

import asyncio
import functools
import itertools
import json
import os
import sqlite3
import threading
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable, Collection, Iterator

from ..events import Event
from .correlate import SQLITE_SCHEMA as _CORRELATION_SCHEMA, SqliteGroups
from .store import (AUDIT_COLUMNS, DELIVERY_DEFAULTS, DELIVERY_FIELDS, FINAL_STATUSES, STATUSES, BadQuery, LogChunk,
                    PlannedRun, Recorded, Recovery, RunRow, StoreClosed, StoreError, StoreUnavailable, audit_dict, delivery_dict, delivery_sql,
                    dumps as _dumps, equal_conditions, event_conditions, iso_utc, newest_first, read_log_chunk,
                    read_log_file, run_conditions, newest_tick_sql, LOG_TAIL)

JournalError = StoreError
"""The journal cannot be opened or written (the SQLite name of :class:`StoreError`)."""

SCHEMA_VERSION = 5
"""``PRAGMA user_version`` of the schema this module writes (2: correlation groups, §11; 3:
the operator's tables, issue 14: event depth, re-runs, the audit trail, the delivery history;
4: the correlation log)."""

DB_NAME = "journal.sqlite3"

LEFT_RUNNING = "serve stopped without ending this run (killed or crashed)"
"""The error of a run :meth:`Journal.recover` found ``running``: a clean stop ends every run
it started, or marks it ``interrupted`` itself (its error then is the executor's
``INTERRUPTED``), so only a ``serve`` that was killed (``kill -9``, the OOM killer) or
crashed leaves one so."""

ALIVE_NAME = "alive"
ALIVE_EVERY = 1.0
"""Seconds between two touches of ``<state_dir>/alive`` by a running ``serve`` (its
checkpointer thread): after a crash, its mtime is when ``serve`` was last seen going, the
end of the runs the crash interrupted (:meth:`SqliteStore.recover`). Without it (a
downtime of an hour), their duration counted the hour: GitHub Actions and systemd
report an attempt's own time, not the time nobody ran it."""
LOGS_DIR = "logs"

_SCHEMA = f"""
CREATE TABLE IF NOT EXISTS events (
    id           TEXT PRIMARY KEY,
    source       TEXT NOT NULL,
    type         TEXT NOT NULL,
    time         TEXT NOT NULL,
    data         TEXT NOT NULL,              -- JSON object
    delivery_key TEXT UNIQUE,                -- X-GitHub-Delivery etc., or NULL
    matched      TEXT NOT NULL DEFAULT '[]', -- JSON list of rule names
    received_at  REAL NOT NULL               -- epoch seconds
);
CREATE INDEX IF NOT EXISTS events_by_source ON events(source);
-- Journal.last_tick: the newest tick of a rule (a catch-up schedule's look-up at start)
CREATE INDEX IF NOT EXISTS events_ticks_by_rule ON events(json_extract(data, '$.rule'))
    WHERE source = 'schedule' AND type = 'tick';

CREATE TABLE IF NOT EXISTS runs (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    rule        TEXT NOT NULL,
    action      TEXT NOT NULL,
    status      TEXT NOT NULL CHECK (status IN ({", ".join(repr(s) for s in STATUSES)})),
    exit_code   INTEGER,
    inputs      TEXT NOT NULL DEFAULT '{{}}', -- JSON object
    event_id    TEXT NOT NULL,
    attempt     INTEGER NOT NULL DEFAULT 1,
    dedupe_key  TEXT,
    queued_at   REAL NOT NULL,
    started_at  REAL,
    finished_at REAL,
    not_before  REAL,
    log_path    TEXT,                        -- relative to the state directory (NULL: logs/<id>.log)
    error       TEXT
);
CREATE INDEX IF NOT EXISTS runs_by_status ON runs(status, id);
CREATE INDEX IF NOT EXISTS runs_by_rule ON runs(rule, id);
CREATE INDEX IF NOT EXISTS runs_by_event ON runs(event_id);
CREATE INDEX IF NOT EXISTS runs_by_dedupe ON runs(rule, dedupe_key, queued_at)
    WHERE dedupe_key IS NOT NULL;
""" + _CORRELATION_SCHEMA


# Each version's changes to a journal of the version before (a new journal gets _SCHEMA,
# then every upgrade in order): columns added to existing tables, new tables.
_UPGRADES: dict[int, tuple[str, ...]] = {
    # 2: correlation groups: new tables only, in _SCHEMA
    3: (
        # causation depth (a webhook is 0, a run.* event its run's event's depth + 1)
        "ALTER TABLE events ADD COLUMN depth INTEGER NOT NULL DEFAULT 0",
        "ALTER TABLE runs ADD COLUMN rerun_of INTEGER",
        # who re-ran, cancelled, paused or resumed what, and when
        """CREATE TABLE IF NOT EXISTS audit (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    at          REAL NOT NULL,
    actor       TEXT NOT NULL,
    action      TEXT NOT NULL,               -- rerun, cancel, pause, resume
    run_id      INTEGER,
    new_run_id  INTEGER,
    rule        TEXT,
    detail      TEXT
)""",
        "CREATE INDEX IF NOT EXISTS audit_by_run ON audit(run_id)",
        # every webhook delivery a route answered, the refused ones too (never a body or a secret)
        """CREATE TABLE IF NOT EXISTS deliveries (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    at          REAL NOT NULL,
    route       TEXT NOT NULL,
    method      TEXT NOT NULL,
    status      INTEGER NOT NULL,
    verify      TEXT NOT NULL,               -- ok, failed, none, skipped
    reason      TEXT,
    latency     REAL,
    remote      TEXT,
    delivery_id TEXT,
    event_id    TEXT,
    trigger     TEXT,
    duplicate   INTEGER NOT NULL DEFAULT 0
)""",
        "CREATE INDEX IF NOT EXISTS deliveries_by_route ON deliveries(route, id)",
    ),
    # 4: the correlation log (runtime/correlate.py): a new table only, in _SCHEMA
    # 5: the index events_ticks_by_rule (Journal.last_tick): in _SCHEMA
}

_NEWEST_TICK = newest_tick_sql("events", lambda e: f"json_extract({e}.data, '$.rule')", "rowid")
"""An event that is its rule's newest tick (:meth:`Journal.last_tick`): ``prune`` keeps it."""

CHECKPOINT_INTERVAL = 0.25
"""Seconds between two looks of the checkpoint thread at the WAL (group commit mode)."""
CHECKPOINT_EVERY_COMMITS = 64
"""...and it is woken after this many commits, whichever comes first."""
WAL_SIZE_LIMIT = 64 * 1024 * 1024
"""Bytes the WAL file is cut back to when SQLite rewinds it (``journal_size_limit``)."""


class _Batch:
    """The writes of one loop pass: one transaction, committed by a callback."""

    __slots__ = ("future", "rollback_hooks", "first", "after")

    def __init__(self, future: "asyncio.Future[None]") -> None:
        self.future = future
        self.rollback_hooks: list[Callable[[], None]] = []
        # (called once committed, called with the error if it rolled back); ``first`` before
        # ``after``: the answers to the requests whose events the batch holds go out before
        # the runs those events start are spawned
        self.first: list[tuple[Callable[[], None], Callable[[JournalError], None] | None]] = []
        self.after: list[tuple[Callable[[], None], Callable[[JournalError], None] | None]] = []


class _Checkpointer:
    """Checkpoints the WAL from a connection and a thread of its own (PASSIVE: it never
    takes the write lock, so commits go on meanwhile), every ``interval`` seconds or when
    woken; its fsyncs never delay a commit.

    ``checkpoints`` counts the checkpoints that brought the database up to date with new
    commits, not the looks (4 a second, idle or not): a look runs no checkpoint while the
    loop has not committed (``commits``, the loop's commit counter) since the last one
    that copied the whole WAL, and a checkpoint a reader kept from copying everything is
    tried again at the next look and counted once it completes. So serve's stop line
    ("N writes in M commits ..., K checkpoints") has K <= M, and an idle serve K = 0
    however long it ran."""

    def __init__(self, path: Path, interval: float, busy_timeout: float, commits: Callable[[], int]) -> None:
        self.path, self.interval, self.busy_timeout, self.commits = path, interval, busy_timeout, commits
        self.alive = path.parent / ALIVE_NAME   # touched every ALIVE_EVERY seconds (see there)
        self.checkpoints = 0
        self.looks = 0         # times it looked at the WAL (every interval, or woken)
        self._wake = threading.Event()
        self._stop = False
        self._thread = threading.Thread(target=self._loop, name="triggerlang-checkpoint", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def wake(self) -> None:
        self._wake.set()

    def stop(self) -> None:
        self._stop = True
        self._wake.set()
        if self._thread.is_alive():
            self._thread.join(30)

    def _loop(self) -> None:
        try:
            conn = sqlite3.connect(str(self.path), timeout=self.busy_timeout, isolation_level=None,
                                   check_same_thread=False)
        except sqlite3.Error:  # pragma: no cover - the loop's connection reports it
            return
        done_at = 0            # the loop's commits the WAL held when it was last copied whole
        touched = 0.0
        try:
            while not self._stop:
                if time.monotonic() - touched >= ALIVE_EVERY:
                    touched = time.monotonic()
                    _touch(self.alive)
                self._wake.wait(min(self.interval, ALIVE_EVERY))
                self._wake.clear()
                self.looks += 1
                commits = self.commits()
                if commits == done_at:
                    continue   # nothing committed since: nothing to copy
                try:
                    _, frames, copied = conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
                except sqlite3.Error:  # a full disk...: the next round tries again
                    continue
                if copied >= frames:   # the database is up to date with those commits
                    done_at = commits
                    self.checkpoints += 1
        finally:
            conn.close()


def _touch(path: Path) -> None:
    try:
        os.utime(path)
    except FileNotFoundError:
        try:
            os.close(os.open(path, os.O_WRONLY | os.O_CREAT, 0o600))
        except OSError:
            pass
    except OSError:   # a full disk does not stop the mtime; anything else: the stamp just ages
        pass


def _mtime(path: Path) -> float | None:
    try:
        return path.stat().st_mtime
    except OSError:
        return None


class _GroupCommit:
    """The group commit state of one store (see the module docstring)."""

    def __init__(self, loop: asyncio.AbstractEventLoop, thread: int, ids: "itertools.count[int]",
                 checkpointer: "_Checkpointer | None") -> None:
        self.loop, self.thread, self.ids, self.checkpointer = loop, thread, ids, checkpointer
        self.batch: _Batch | None = None
        self.commits = 0
        self.writes = 0
        self.last_ms = 0.0
        self.max_ms = 0.0

    def stop(self, store: "SqliteStore") -> None:
        """Commit what is open (close() on the loop's thread), stop the checkpointer."""
        batch = self.batch
        if batch is not None:
            store._gc = self  # _commit_batch looks the batch up on the store
            try:
                store._commit_batch(batch)
            finally:
                store._gc = None
        self.checkpointer.stop()
        conn = store._conn
        if conn is not None:
            try:
                conn.execute("PRAGMA wal_autocheckpoint = 1000")
            except sqlite3.Error:  # pragma: no cover
                pass


_RUN_COLUMNS = ("id, rule, action, status, inputs, event_id, attempt, dedupe_key, queued_at, "
                "started_at, finished_at, not_before, exit_code, error, log_path, rerun_of")
_EVENT_COLUMNS = "id, source, type, time, matched, data, delivery_key, received_at, depth"


class SqliteStore(SqliteGroups):
    """The SQLite journal of one state directory (the default :class:`~.store.Store`).
    See the module docstring. Correlation groups (SPEC §11): :class:`~.correlate.SqliteGroups`."""

    kind = "sqlite"

    def __init__(self, state_dir: Path | str, *, busy_timeout: float = 5.0,
                 synchronous: str = "NORMAL") -> None:
        self.state_dir = Path(state_dir)
        self.path = self.state_dir / DB_NAME
        self._lock = threading.Lock()
        self._conn: sqlite3.Connection | None = None
        self._gc: _GroupCommit | None = None
        self._busy_timeout = busy_timeout
        self._side = threading.local()
        self._side_conns: list[sqlite3.Connection] = []
        if synchronous.upper() not in ("OFF", "NORMAL", "FULL", "EXTRA"):
            raise ValueError(f"unknown synchronous mode {synchronous!r}")
        self._prepare_dir()
        self.last_alive = _mtime(self.state_dir / ALIVE_NAME)   # the last serve's (ALIVE_EVERY)
        try:
            conn = sqlite3.connect(str(self.path), timeout=busy_timeout, isolation_level=None,
                                   check_same_thread=False)
        except sqlite3.Error as e:
            raise self._error(e) from None
        try:
            conn.execute(f"PRAGMA busy_timeout = {int(busy_timeout * 1000)}")
            # Reading the header first tells a corrupt file apart from a locked one.
            version = conn.execute("PRAGMA user_version").fetchone()[0]
            if version > SCHEMA_VERSION:
                raise JournalError(
                    f"the journal {self.path} was written by a newer triggerlang "
                    f"(schema {version}, this one knows {SCHEMA_VERSION}): upgrade, or use another --state")
            mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
            self.journal_mode = str(mode).lower()
            conn.execute(f"PRAGMA synchronous = {synchronous.upper()}")
            if version < SCHEMA_VERSION:
                conn.execute("BEGIN IMMEDIATE")
                try:
                    self._create_schema(conn, version)
                    conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
                    conn.execute("COMMIT")
                except BaseException:
                    if conn.in_transaction:
                        conn.execute("ROLLBACK")
                    raise
            else:
                # Touch both tables so a file that merely claims our version fails here.
                conn.execute("SELECT 1 FROM events LIMIT 0")
                conn.execute("SELECT 1 FROM runs LIMIT 0")
        except JournalError:
            conn.close()
            raise
        except sqlite3.Error as e:
            conn.close()
            raise self._error(e) from None
        self._conn = conn

    # -- opening and errors -------------------------------------------------------------

    def _prepare_dir(self) -> None:
        d = self.state_dir
        if d.exists() and not d.is_dir():
            raise JournalError(f"the state directory {d} is not a directory")
        try:
            # owner only: the journal and the logs hold the events' payloads (an existing
            # folder keeps its mode: serve warns when others can read it)
            d.mkdir(mode=0o700, parents=True, exist_ok=True)
        except OSError as e:
            raise JournalError(f"cannot create the state directory {d}: {e.strerror or e}") from None
        if not os.access(d, os.W_OK | os.X_OK):
            raise JournalError(f"the state directory {d} is not writable")
        if self.path.exists() and not self.path.is_file():
            raise JournalError(f"the journal {self.path} is not a file: move it away to start a new journal")
        if (d / LOGS_DIR).exists() and not (d / LOGS_DIR).is_dir():
            raise JournalError(f"the log directory {d / LOGS_DIR} is not a directory: move it away")
        if self.path.exists() and not os.access(self.path, os.R_OK | os.W_OK):
            raise JournalError(f"the journal {self.path} is not readable and writable")
        try:
            (d / LOGS_DIR).mkdir(mode=0o700, exist_ok=True)
        except OSError as e:
            raise JournalError(f"cannot create the log directory {d / LOGS_DIR}: {e.strerror or e}") from None
        # SQLite would create it 0644 (its WAL and shared-memory files take its mode). Only
        # a missing file is opened here: closing any descriptor of the file drops every
        # POSIX lock this process holds on it, so opening an existing journal beside a
        # connection of this process (serve's dashboard, per request) would let another
        # process's last close take it as unused and delete the WAL under that connection.
        try:
            os.close(os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600))
        except FileExistsError:
            pass
        except OSError as e:
            raise JournalError(f"cannot create the journal {self.path}: {e.strerror or e}") from None

    @staticmethod
    def _create_schema(conn: sqlite3.Connection, version: int) -> None:
        """Bring a journal of ``version`` (0: a new one) to :data:`SCHEMA_VERSION`: the
        tables of :data:`_SCHEMA` that are missing (``IF NOT EXISTS``), then the changes of
        :data:`_UPGRADES` past ``version``."""
        # executescript() would COMMIT our open transaction; run the statements one by one
        # (no ';' inside the statements or their comments).
        for stmt in _SCHEMA.split(";"):
            if stmt.strip():
                conn.execute(stmt)
        for v in range(max(version, 1) + 1, SCHEMA_VERSION + 1):
            for stmt in _UPGRADES.get(v, ()):
                conn.execute(stmt)

    def _error(self, e: sqlite3.Error) -> JournalError:
        """The one-line error of an SQLite error: :class:`StoreUnavailable` for what an
        operator's fix or a wait cures with nothing lost (a lock, a read-only file, a full
        disk: a delivery gets ``503`` with ``Retry-After``), else :class:`JournalError`."""
        msg = str(e)
        low = msg.lower()
        if "locked" in low or "busy" in low:
            return StoreUnavailable(f"the journal {self.path} is locked by another process "
                                    f"(is another 'triggerc serve' using this --state directory?)")
        if "not a database" in low or "malformed" in low or "corrupt" in low:
            return JournalError(f"the journal {self.path} is not a valid SQLite database ({msg}): "
                                f"move it away to start a new journal")
        if "readonly" in low or "read-only" in low or "unable to open" in low:
            return StoreUnavailable(f"cannot write the journal {self.path}: the file or its directory "
                                    f"is not writable ({msg})")
        if "disk" in low and "full" in low:
            return StoreUnavailable(f"cannot write the journal {self.path}: the disk is full")
        return JournalError(f"journal error in {self.path}: {msg}")

    @contextmanager
    def _cursor(self, write: bool) -> Iterator[sqlite3.Connection]:
        """The connection to use; for writes, inside a transaction committed on return
        (or, on the loop's thread in group commit mode, inside the open batch)."""
        if self._gc is not None:
            if threading.get_ident() == self._gc.thread:
                conn = self._conn
                if conn is None:
                    raise StoreClosed(f"the journal {self.path}")
                if not write:
                    try:
                        yield conn
                    except sqlite3.Error as e:
                        raise self._error(e) from None
                    return
                with self._batched(conn) as c:
                    yield c
                return
            with self._side_cursor(write) as c:
                yield c
            return
        with self._lock:
            conn = self._conn
            if conn is None:
                raise StoreClosed(f"the journal {self.path}")
            with self._transaction(conn, write) as c:
                yield c

    @contextmanager
    def _transaction(self, conn: sqlite3.Connection, write: bool) -> Iterator[sqlite3.Connection]:
        try:
            if write:
                conn.execute("BEGIN IMMEDIATE")
            try:
                yield conn
                if write:
                    conn.execute("COMMIT")
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise
        except sqlite3.Error as e:
            raise self._error(e) from None

    def close(self) -> None:
        """Close the database (idempotent); an open batch is committed first. Later calls
        raise JournalError."""
        gc, self._gc = self._gc, None
        if gc is not None:
            gc.stop(self)
        with self._lock:
            for side in self._side_conns:
                try:
                    side.close()
                except sqlite3.Error:  # pragma: no cover
                    pass
            self._side_conns.clear()
            if self._conn is not None:
                try:
                    self._conn.close()
                finally:
                    self._conn = None

    # -- group commit -------------------------------------------------------------------

    def start_group_commit(self, loop: asyncio.AbstractEventLoop | None = None, *,
                           checkpoint_interval: float = CHECKPOINT_INTERVAL) -> None:
        """Group commit from now on (see the module docstring): call it on the thread that
        runs ``loop`` (the running loop by default); :meth:`close` ends it. The WAL is then
        checkpointed by a background thread, never in a commit."""
        loop = loop or asyncio.get_running_loop()
        with self._lock:
            conn = self._conn
            if conn is None:
                raise StoreClosed(f"the journal {self.path}")
            if self._gc is not None:
                raise RuntimeError("group commit is already on")
            try:
                conn.execute("PRAGMA wal_autocheckpoint = 0")
                conn.execute(f"PRAGMA journal_size_limit = {WAL_SIZE_LIMIT}")
                top = conn.execute("SELECT MAX(id) FROM runs").fetchone()[0] or 0
                seq = conn.execute("SELECT seq FROM sqlite_sequence WHERE name = 'runs'").fetchone()
            except sqlite3.Error as e:
                raise self._error(e) from None
            first = max(int(top), int(seq[0]) if seq else 0) + 1
            gc = self._gc = _GroupCommit(loop, threading.get_ident(), itertools.count(first), None)
            gc.checkpointer = _Checkpointer(self.path, checkpoint_interval, self._busy_timeout,
                                            lambda: gc.commits)
            self._gc.checkpointer.start()

    @property
    def group_commit(self) -> bool:
        return self._gc is not None

    def commit_future(self) -> "asyncio.Future[None] | None":
        """The future of the open batch (done when it commits; JournalError if it rolls
        back), or None when nothing waits to be committed. Loop thread only."""
        gc = self._gc
        return None if gc is None or gc.batch is None else gc.batch.future

    async def flush(self) -> None:
        """Wait until every write made so far on the loop's thread is committed (at once
        without group commit). JournalError if its batch rolled back."""
        gc = self._gc
        if gc is not None and gc.batch is not None:
            await gc.batch.future

    def after_commit(self, ok: Callable[[], None], failed: Callable[[JournalError], None] | None = None, *,
                     first: bool = False) -> None:
        """``ok()`` once everything written so far is committed: right after that commit, in
        the same loop pass (at once when nothing waits to be committed); ``failed(error)``
        instead if its batch rolls back. ``first``: before the callbacks without it (an
        answer to a request, which should not wait for the spawning of runs). Loop thread
        only."""
        gc = self._gc
        if gc is None or gc.batch is None:
            ok()
        else:
            (gc.batch.first if first else gc.batch.after).append((ok, failed))

    def on_rollback(self, hook: Callable[[], None]) -> None:
        """Call ``hook`` (on the loop's thread) if the open batch rolls back."""
        gc = self._gc
        if gc is not None and gc.batch is not None:
            gc.batch.rollback_hooks.append(hook)

    def write_soon(self, fn: Callable[[sqlite3.Connection], Any]) -> None:
        """``fn(conn)`` in the open batch (or a new one); nobody waits for its commit.
        Without group commit, in a transaction of its own at once."""
        with self._cursor(write=True) as conn:
            fn(conn)

    def commit_stats(self) -> dict[str, float]:
        """Group commit counters: commits, writes, the last and the largest commit in ms
        (for a ``/metrics`` page); empty without group commit."""
        gc = self._gc
        if gc is None:
            return {}
        return {"commits": gc.commits, "writes": gc.writes, "last_commit_ms": gc.last_ms,
                "max_commit_ms": gc.max_ms, "checkpoints": gc.checkpointer.checkpoints}

    def _batch_conn(self, gc: "_GroupCommit") -> sqlite3.Connection:
        """The loop's connection inside the open batch (opened here if none is)."""
        conn = self._conn
        if conn is None:
            raise StoreClosed(f"the journal {self.path}")
        if gc.batch is None:
            try:
                conn.execute("BEGIN IMMEDIATE")
            except sqlite3.Error as e:
                raise self._error(e) from None
            gc.batch = _Batch(gc.loop.create_future())
            gc.loop.call_soon(self._commit_batch, gc.batch)
        gc.writes += 1
        return conn

    @contextmanager
    def _batched(self, conn: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
        gc = self._gc
        assert gc is not None
        conn = self._batch_conn(gc)
        try:
            yield conn
        except sqlite3.Error as e:
            err = self._error(e)
            self._abort_batch(err)
            raise err from None

    def _commit_batch(self, batch: "_Batch") -> None:
        gc = self._gc
        if gc is None or gc.batch is not batch:
            return  # committed already (close), or rolled back
        gc.batch = None
        conn = self._conn
        t0 = time.perf_counter()
        try:
            if conn is None:
                raise StoreClosed(f"the journal {self.path}")
            conn.execute("COMMIT")
        except (sqlite3.Error, StoreClosed) as e:
            gc.batch = batch
            self._abort_batch(e if isinstance(e, StoreClosed) else self._error(e))
            return
        ms = (time.perf_counter() - t0) * 1000
        gc.commits += 1
        gc.last_ms = ms
        gc.max_ms = max(gc.max_ms, ms)
        if not batch.future.done():
            batch.future.set_result(None)
        if gc.commits % CHECKPOINT_EVERY_COMMITS == 0:
            gc.checkpointer.wake()
        for ok, _ in batch.first + batch.after:
            try:
                ok()
            except Exception:  # pragma: no cover - a callback must not stop the others
                import logging

                logging.getLogger("triggerlang").exception("a journal commit callback failed")

    def _abort_batch(self, err: JournalError) -> None:
        """Roll the open batch back: hooks first, then every waiter gets ``err``."""
        gc = self._gc
        if gc is None or gc.batch is None:
            return
        batch, gc.batch = gc.batch, None
        conn = self._conn
        if conn is not None and conn.in_transaction:
            try:
                conn.execute("ROLLBACK")
            except sqlite3.Error:  # pragma: no cover - nothing more to undo
                pass
        for hook in batch.rollback_hooks:
            try:
                hook()
            except Exception:  # pragma: no cover - a hook must not stop the others
                import logging

                logging.getLogger("triggerlang").exception("journal rollback hook failed")
        if not batch.future.done():
            batch.future.set_exception(err)
            batch.future.exception()  # retrieved: a batch nobody awaited must not log a warning
        for _, failed in batch.first + batch.after:
            if failed is not None:
                try:
                    failed(err)
                except Exception:  # pragma: no cover
                    import logging

                    logging.getLogger("triggerlang").exception("a journal rollback callback failed")

    @contextmanager
    def _side_cursor(self, write: bool) -> Iterator[sqlite3.Connection]:
        """A thread other than the loop's, in group commit mode: a connection of its own."""
        conn = getattr(self._side, "conn", None)
        if conn is None:
            try:
                conn = sqlite3.connect(str(self.path), timeout=self._busy_timeout, isolation_level=None,
                                       check_same_thread=False)
                conn.execute(f"PRAGMA busy_timeout = {int(self._busy_timeout * 1000)}")
            except sqlite3.Error as e:
                raise self._error(e) from None
            with self._lock:
                self._side_conns.append(conn)
            self._side.conn = conn
        with self._transaction(conn, write) as c:
            yield c

    def describe(self) -> str:
        return str(self.state_dir)

    def __enter__(self) -> "SqliteStore":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- writing ------------------------------------------------------------------------

    def record_event(self, event: Event, runs: list[PlannedRun], delivery_key: str | None = None,
                     *, matched: list[str] | None = None,
                     in_tx: Callable[[sqlite3.Connection], None] | None = None) -> Recorded:
        """Journal one event and its runs in ONE transaction, committed on return (in group
        commit mode: written in the open batch, see :meth:`flush`).

        The event's ``matched`` list is the rule names of ``runs`` (in order, without
        repeats) followed by any names in ``matched`` that have no run yet (a debounced
        rule whose run comes later through :meth:`add_run`).

        If ``delivery_key`` was already recorded, or an event with the same id exists,
        nothing is written and the earlier event is returned with ``duplicate=True`` and
        the ids of its runs.

        ``in_tx`` (an extension point, see :mod:`.store`) is called with the connection
        inside the transaction, after the event row is written and before the runs.
        """
        for p in runs:
            _check_status(p.status)
        names: list[str] = []
        for name in [p.rule for p in runs] + list(matched or []):
            if name not in names:
                names.append(name)
        now = time.time()
        data_json = _dumps(event.data)
        gc = self._gc
        if gc is not None and in_tx is None and threading.get_ident() == gc.thread:
            conn = self._batch_conn(gc)  # the hot path of serve: no context manager
            try:
                return self._record(conn, event, runs, delivery_key, names, data_json, now, None)
            except sqlite3.Error as e:
                err = self._error(e)
                self._abort_batch(err)
                raise err from None
        with self._cursor(write=True) as conn:
            if in_tx is None:
                return self._record(conn, event, runs, delivery_key, names, data_json, now, None)
            # the extension's writes and the event's are undone together if it raises (a batch
            # holds other events: they stay)
            conn.execute("SAVEPOINT record_event")
            try:
                rec = self._record(conn, event, runs, delivery_key, names, data_json, now, in_tx)
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK TO record_event")
                    conn.execute("RELEASE record_event")
                raise
            conn.execute("RELEASE record_event")
            return rec

    def _record(self, conn: sqlite3.Connection, event: Event, runs: list[PlannedRun], delivery_key: str | None,
                names: list[str], data_json: str, now: float,
                in_tx: Callable[[sqlite3.Connection], None] | None) -> Recorded:
        # one statement finds a redelivery (delivery_key) or a replayed event id: both are UNIQUE
        cur = conn.execute(
            "INSERT INTO events (id, source, type, time, data, delivery_key, matched, received_at, depth) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
            (event.id, event.source, event.type, event.time, data_json, delivery_key,
             _dumps(names) if names else "[]", now, int(event.depth)))
        if cur.rowcount == 0:
            row = None
            if delivery_key is not None:
                row = conn.execute("SELECT id FROM events WHERE delivery_key = ?", (delivery_key,)).fetchone()
            eid = row[0] if row is not None else event.id
            return Recorded(eid, self._run_ids_of(conn, eid), duplicate=True)
        if in_tx is not None:
            in_tx(conn)
        ids = [self._insert_run(conn, p, event.id, p.status, 1, p.not_before, now, p.error) for p in runs]
        return Recorded(event.id, ids, data_json=data_json)

    def add_run(self, planned: PlannedRun, event_id: str, status: str = "queued", attempt: int = 1,
                not_before: float | None = None, error: str | None = None) -> int:
        """Create one run of an already recorded event (a debounce firing, a retry); its id.

        ``status`` defaults to ``queued`` (``planned.status`` is not used here);
        ``not_before`` is the epoch time before which the engine must not start it.
        """
        _check_status(status)
        with self._cursor(write=True) as conn:
            return self._insert_run(conn, planned, event_id, status, attempt, not_before, time.time(),
                                    error if error is not None else planned.error)

    def _insert_run(self, conn: sqlite3.Connection, p: PlannedRun, event_id: str, status: str,
                    attempt: int, not_before: float | None, now: float, error: str | None,
                    rerun_of: int | None = None) -> int:
        final = now if status in FINAL_STATUSES else None
        gc = self._gc
        # group commit: ids from memory, never reused after a rollback (see the module docstring);
        # log_path stays NULL for the default <state>/logs/<id>.log
        run_id = next(gc.ids) if gc is not None else None
        cur = conn.execute(
            "INSERT INTO runs (id, rule, action, status, inputs, event_id, attempt, dedupe_key, queued_at, "
            "finished_at, not_before, error, rerun_of) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (run_id, p.rule, p.action, status, _dumps(p.inputs), event_id, int(attempt), p.dedupe_key, now,
             final, not_before, error, rerun_of))
        return int(cur.lastrowid) if run_id is None else run_id  # type: ignore[arg-type]

    # -- the operator's writes (issue 14) ----------------------------------------------

    def rerun(self, run_id: int, actor: str) -> RunRow:
        """A new ``queued`` run with the same rule, action, inputs and event as run
        ``run_id`` (which must be over), ``rerun_of`` pointing at it, and the audit entry,
        in one transaction. KeyError: no such run; ValueError: it has not ended."""
        now = time.time()
        with self._cursor(write=True) as conn:
            r = conn.execute(f"SELECT {_RUN_COLUMNS} FROM runs WHERE id = ?", (run_id,)).fetchone()
            if r is None:
                raise KeyError(run_id)
            old = _row(self.state_dir, r)
            if old.status not in FINAL_STATUSES:
                raise ValueError(f"run {run_id} is {old.status}: only a run that has ended can be re-run")
            new_id = self._insert_run(conn, old.planned(), old.event_id, "queued", 1, None, now, None,
                                      rerun_of=old.id)
            self._audit(conn, now, actor, "rerun", run_id=old.id, new_run_id=new_id, rule=old.rule)
            r = conn.execute(f"SELECT {_RUN_COLUMNS} FROM runs WHERE id = ?", (new_id,)).fetchone()
        return _row(self.state_dir, r)

    def cancel(self, run_id: int, actor: str, reason: str) -> str:
        """Cancel run ``run_id`` for an operator: a queued run becomes ``cancelled`` (with
        ``reason`` as its error), a running one is only journaled here (its engine stops
        its process group and records ``cancelled``). The run's status before, after the
        audit entry is written. KeyError: no such run; ValueError: it has already ended."""
        now = time.time()
        with self._cursor(write=True) as conn:
            r = conn.execute("SELECT status, rule FROM runs WHERE id = ?", (run_id,)).fetchone()
            if r is None:
                raise KeyError(run_id)
            status, rule = r
            if status in FINAL_STATUSES:
                raise ValueError(f"run {run_id} has already ended ({status})")
            if status == "queued":
                conn.execute("UPDATE runs SET status = 'cancelled', error = ?, finished_at = ? WHERE id = ?",
                             (reason, now, run_id))
            self._audit(conn, now, actor, "cancel", run_id=run_id, rule=rule)
        return status

    def add_audit(self, actor: str, action: str, *, run_id: int | None = None, new_run_id: int | None = None,
                  rule: str | None = None, detail: str | None = None) -> None:
        """Journal who did what, when (a pause or a resume of a rule, say)."""
        with self._cursor(write=True) as conn:
            self._audit(conn, time.time(), actor, action, run_id=run_id, new_run_id=new_run_id, rule=rule,
                        detail=detail)

    @staticmethod
    def _audit(conn: sqlite3.Connection, at: float, actor: str, action: str, *, run_id: int | None = None,
               new_run_id: int | None = None, rule: str | None = None, detail: str | None = None) -> None:
        conn.execute("INSERT INTO audit (at, actor, action, run_id, new_run_id, rule, detail) "
                     "VALUES (?, ?, ?, ?, ?, ?, ?)", (at, actor, action, run_id, new_run_id, rule, detail))

    def list_audit(self, run_id: int | None = None, rule: str | None = None, limit: int = 50) -> list[dict[str, Any]]:
        """Audit entries, oldest first: ``{id, at, actor, action, run_id, new_run_id, rule, detail}``."""
        where, args = equal_conditions("?", run_id=run_id, rule=rule)
        args.append(max(0, int(limit)))
        with self._cursor(write=False) as conn:
            rows = conn.execute(newest_first(f"SELECT {AUDIT_COLUMNS} FROM audit", where, "?"), args).fetchall()
        return [audit_dict(r) for r in reversed(rows)]

    def prune(self, older_than: float) -> dict[str, int]:
        """``triggerc store prune --older-than D`` on this journal: delete the runs that ended
        more than ``older_than`` seconds ago and their log files, the events received before
        then that no kept run and no correlation group still names, the audit lines, and the
        correlation groups closed before then with their history. Waiting and running runs
        stay, and so does each rule's newest tick (what :meth:`last_tick` reads: a ``catch
        up`` schedule rarer than the retention still knows when it last ticked). Safe beside a running ``serve`` (a second writer of the WAL journal, within the
        busy timeout); a dedupe window longer than D forgets the keys of the runs deleted."""
        import re

        cutoff = time.time() - older_than
        with self._cursor(write=True) as conn:
            runs = conn.execute("SELECT id, log_path FROM runs WHERE status NOT IN ('queued', 'running') "
                                "AND COALESCE(finished_at, queued_at) < ?", (cutoff,)).fetchall()
            conn.executemany("DELETE FROM runs WHERE id = ?", [(r[0],) for r in runs])
            conn.execute("DELETE FROM audit WHERE at < ?", (cutoff,))
            gone = [r[0] for r in conn.execute("SELECT id FROM corr_groups WHERE closed_at IS NOT NULL "
                                               "AND closed_at < ?", (cutoff,))]
            conn.executemany("DELETE FROM corr_groups WHERE id = ?", [(g,) for g in gone])
            conn.executemany("DELETE FROM corr_history WHERE group_id = ?", [(g,) for g in gone])
            conn.execute("DELETE FROM corr_history WHERE group_id IS NULL AND time < ?", (cutoff,))
            # every string the kept groups and the correlation log hold may be an event id they
            # need (a slot's event): kept, whatever the structure of those JSON texts
            keep: set[str] = set()
            for (text,) in conn.execute("SELECT slots || ' ' || COALESCE(event_id, '') FROM corr_groups "
                                        "UNION ALL SELECT COALESCE(event_id, '') FROM corr_history "
                                        "UNION ALL SELECT entry FROM corr_log"):
                keep.update(re.findall(r'[A-Za-z0-9_.:-]+', text))
            old = [r[0] for r in conn.execute("SELECT id FROM events e WHERE received_at < ? AND NOT EXISTS "
                                              "(SELECT 1 FROM runs r WHERE r.event_id = e.id) AND NOT "
                                              + _NEWEST_TICK, (cutoff,))]
            events = [e for e in old if e not in keep]
            conn.executemany("DELETE FROM events WHERE id = ?", [(e,) for e in events])
        for run_id, log_path in runs:   # after the commit: a log is never gone before its run
            path = self.state_dir / log_path if log_path else _logs_dir(self.state_dir) / f"{int(run_id)}.log"
            try:
                path.unlink()
            except FileNotFoundError:
                pass
        return {"runs": len(runs), "events": len(events), "manifests": 0, "groups": len(gone)}

    def run_counts(self) -> dict[str, dict[str, int]]:
        """Runs waiting or going, by rule: ``{rule: {"queued": n, "running": m}}``."""
        with self._cursor(write=False) as conn:
            rows = conn.execute("SELECT rule, status, COUNT(*) FROM runs WHERE status IN ('queued', 'running') "
                                "GROUP BY rule, status").fetchall()
        out: dict[str, dict[str, int]] = {}
        for rule, status, n in rows:
            out.setdefault(rule, {})[status] = n
        return out

    def record_deliveries(self, rows: list[dict[str, Any]], keep: int) -> None:
        """Add webhook deliveries (dicts with the columns of ``deliveries``) and keep only
        the newest ``keep`` of each route they touched, in one transaction."""
        if not rows:
            return
        insert, prune = delivery_sql("deliveries", lambda f: f":{f}", "?")
        with self._cursor(write=True) as conn:
            conn.executemany(insert, [{**DELIVERY_DEFAULTS, **r} for r in rows])
            for route in sorted({r["route"] for r in rows}):
                conn.execute(prune, (route, route, int(keep)))

    def list_deliveries(self, route: str | None = None, limit: int = 50) -> list[dict[str, Any]]:
        """Recorded deliveries, newest first (``at`` as ISO 8601 UTC, ``latency`` in seconds)."""
        where, args = equal_conditions("?", route=route)
        args.append(max(0, int(limit)))
        with self._cursor(write=False) as conn:
            rows = conn.execute(newest_first(f"SELECT id, {', '.join(DELIVERY_FIELDS)} FROM deliveries", where, "?"),
                                args).fetchall()
        return [delivery_dict(r) for r in rows]

    def update_pending(self, run_id: int, inputs: dict[str, Any], event_id: str,
                       not_before: float | None) -> bool:
        """Move a still-queued run to a newer event (a debounce window that goes on).

        Returns False (and changes nothing) when the run is no longer queued. Keeping the
        pending run in the journal is what makes a debounced match survive a crash.
        """
        with self._cursor(write=True) as conn:
            cur = conn.execute("UPDATE runs SET inputs = ?, event_id = ?, not_before = ? "
                               "WHERE id = ? AND status = 'queued'",
                               (_dumps(inputs), event_id, not_before, run_id))
            return cur.rowcount > 0

    def mark_running(self, run_id: int) -> bool:
        """``queued`` -> ``running`` with ``started_at`` now.

        Returns False (and changes nothing) when the run is no longer queued, e.g. it was
        cancelled or skipped meanwhile: the engine must then not start it.
        """
        with self._cursor(write=True) as conn:
            cur = conn.execute("UPDATE runs SET status = 'running', started_at = ? "
                               "WHERE id = ? AND status = 'queued'", (time.time(), run_id))
            if cur.rowcount == 0:
                self._require(conn, run_id)
                return False
            return True

    def start_run(self, run_id: int, requeued: bool = False) -> RunRow | None:
        """:meth:`mark_running` and :meth:`run_row` in one transaction: the run, now
        ``running``, or None (and nothing changed) when it is unknown or no longer queued.
        ``requeued``: the run was put back with :meth:`requeue`, whose write may have been
        rolled back with its batch (a full disk), so ``running`` is taken for ``queued``."""
        with self._cursor(write=True) as conn:
            startable = "('queued', 'running')" if requeued else "('queued')"
            cur = conn.execute("UPDATE runs SET status = 'running', started_at = ? "
                               f"WHERE id = ? AND status IN {startable}", (time.time(), run_id))
            if cur.rowcount == 0:
                return None
            r = conn.execute(f"SELECT {_RUN_COLUMNS} FROM runs WHERE id = ?", (run_id,)).fetchone()
        return _row(self.state_dir, r)

    def requeue(self, run_id: int) -> None:
        """``running`` -> ``queued`` for a run that was claimed but never started (the
        runtime began to stop in between, or its log could not be written): the next
        start runs it."""
        with self._cursor(write=True) as conn:
            conn.execute("UPDATE runs SET status = 'queued', started_at = NULL WHERE id = ? AND status = 'running'",
                         (run_id,))

    def mark_finished(self, run_id: int, status: str, exit_code: int | None,
                      error: str | None = None) -> None:
        """Record the end of a run: a final status, its exit code, ``finished_at`` now."""
        _check_status(status)
        if status not in FINAL_STATUSES:
            raise ValueError(f"{status!r} is not a final run status")
        with self._cursor(write=True) as conn:
            cur = conn.execute("UPDATE runs SET status = ?, exit_code = ?, error = ?, finished_at = ? "
                               "WHERE id = ?", (status, exit_code, error, time.time(), run_id))
            if cur.rowcount == 0:
                raise KeyError(run_id)

    def set_status(self, run_id: int, status: str, error: str | None = None) -> None:
        """Change a run's status (cancel or skip a queued run...).

        A final status sets ``finished_at`` if it is not set yet; ``error`` replaces the
        stored one only when given.
        """
        _check_status(status)
        final = time.time() if status in FINAL_STATUSES else None
        with self._cursor(write=True) as conn:
            cur = conn.execute(
                "UPDATE runs SET status = ?, error = COALESCE(?, error), "
                "finished_at = CASE WHEN ? IS NULL THEN finished_at ELSE COALESCE(finished_at, ?) END "
                "WHERE id = ?", (status, error, final, final, run_id))
            if cur.rowcount == 0:
                raise KeyError(run_id)

    def recover(self) -> Recovery:
        """Call once at start-up, before any run starts.

        Marks every ``running`` run ``interrupted`` and returns those, plus every ``queued``
        run to start again, both oldest first. A clean stop ends or marks every run it
        started, so a run still ``running`` here was left by a ``serve`` that was killed or
        crashed (:data:`LEFT_RUNNING`, its error). Such a run ended when that ``serve`` was
        last seen going (:attr:`last_alive`, :data:`ALIVE_EVERY`), not now: its duration is
        its own, without the downtime (never before its start; now when that ``serve`` left
        no stamp).
        """
        now = time.time()
        end = now if self.last_alive is None else min(now, self.last_alive)
        with self._cursor(write=True) as conn:
            running = [_row(self.state_dir, r) for r in conn.execute(
                f"SELECT {_RUN_COLUMNS} FROM runs WHERE status = 'running' ORDER BY id")]
            conn.execute("UPDATE runs SET status = 'interrupted', finished_at = MAX(COALESCE(started_at, ?), ?), "
                         "error = COALESCE(error, ?) WHERE status = 'running'", (end, end, LEFT_RUNNING))
            queued = [_row(self.state_dir, r) for r in conn.execute(
                f"SELECT {_RUN_COLUMNS} FROM runs WHERE status = 'queued' ORDER BY id")]
        for r in running:
            r.status = "interrupted"
            r.finished_at = max(r.started_at or end, end)
            r.error = r.error or LEFT_RUNNING
        return Recovery(interrupted=running, queued=queued)

    # -- reading ------------------------------------------------------------------------

    def queued_runs(self) -> list[RunRow]:
        """Every ``queued`` run, oldest first (check ``not_before`` before starting one)."""
        with self._cursor(write=False) as conn:
            return [_row(self.state_dir, r) for r in conn.execute(
                f"SELECT {_RUN_COLUMNS} FROM runs WHERE status = 'queued' ORDER BY id")]

    def run_row(self, run_id: int) -> RunRow | None:
        """One run as a typed :class:`RunRow`, or None."""
        with self._cursor(write=False) as conn:
            r = conn.execute(f"SELECT {_RUN_COLUMNS} FROM runs WHERE id = ?", (run_id,)).fetchone()
        return None if r is None else _row(self.state_dir, r)

    def oldest_run_queued_at(self) -> float | None:
        """When the oldest run the journal holds was queued (epoch s); None when it holds none."""
        with self._cursor(write=False) as conn:
            row = conn.execute("SELECT MIN(queued_at) FROM runs").fetchone()
        return None if row is None else row[0]

    def last_run_with_key(self, rule: str, key: str) -> float | None:
        """For ``dedupe <field> for D``: when (epoch s) the latest run of ``rule`` with this
        dedupe key was queued, not counting ``skipped`` runs; None if there is none.

        The engine skips the new run when ``now - last < D``.
        """
        with self._cursor(write=False) as conn:
            row = conn.execute("SELECT MAX(queued_at) FROM runs WHERE rule = ? AND dedupe_key = ? "
                               "AND status != 'skipped'", (rule, key)).fetchone()
        return None if row is None else row[0]

    def list_runs(self, limit: int = 50, rule: str | None = None, status: str | None = None,
                  before_id: int | None = None, event_id: str | None = None, *, q: str | None = None,
                  since: float | None = None, until: float | None = None,
                  ids: Collection[int] | None = None) -> list[dict[str, Any]]:
        """Runs newest first, as :meth:`RunRow.to_dict` dicts.

        Filters: ``rule``, ``status``, ``event_id``, ``q`` (search), ``since``/``until``
        (queued, epoch seconds), ``ids`` (only these) of :func:`~.store.run_conditions`;
        ``before_id`` pages back (runs with a smaller id).
        """
        where, args = run_conditions("?", "LIKE", events="events", rule=rule, status=status, event_id=event_id,
                                     before_id=before_id, q=q, since=since, until=until, ids=ids)
        sql = newest_first(f"SELECT {_RUN_COLUMNS} FROM runs", where, "?")
        args.append(max(0, int(limit)))
        with self._cursor(write=False) as conn:
            rows = conn.execute(sql, args).fetchall()
        return [_row(self.state_dir, r).to_dict() for r in rows]

    def get_run(self, run_id: int) -> dict[str, Any] | None:
        """One run as a dict (the :meth:`list_runs` shape), or None."""
        row = self.run_row(run_id)
        return None if row is None else row.to_dict()

    def list_events(self, limit: int = 50, source: str | None = None, type: str | None = None, *,
                    before: str | None = None, unmatched: bool = False, rule: str | None = None,
                    q: str | None = None, since: float | None = None,
                    until: float | None = None) -> list[dict[str, Any]]:
        """Events newest first (in the order they were received).

        Dicts with ``id, source, type, time, matched, data, delivery_key, received_at``.
        Filters of :func:`~.store.event_conditions`; ``before`` (an event id) pages back:
        the events received before that one (BadQuery when there is no such event).
        """
        where, args = event_conditions("?", "LIKE", events="events", history="corr_history", source=source,
                                       type=type, unmatched=unmatched, rule=rule, q=q, since=since, until=until)
        if unmatched:
            self.materialize_groups()  # what correlation rules took: the log's entries too
        with self._cursor(write=False) as conn:
            if before is not None:
                row = conn.execute("SELECT rowid FROM events WHERE id = ?", (before,)).fetchone()
                if row is None:
                    raise BadQuery(f"there is no event {before!r} to page back from")
                where.append("rowid < ?")
                args.append(row[0])
            sql = newest_first(f"SELECT {_EVENT_COLUMNS} FROM events", where, "?", order="rowid")
            args.append(max(0, int(limit)))
            rows = conn.execute(sql, args).fetchall()
        return [_event_dict(r) for r in rows]

    def get_event(self, event_id: str) -> dict[str, Any] | None:
        """One event as a dict (the :meth:`list_events` shape plus ``runs``: its run ids), or
        None. ``Event.from_json(d)`` rebuilds the :class:`Event`."""
        with self._cursor(write=False) as conn:
            r = conn.execute(f"SELECT {_EVENT_COLUMNS} FROM events WHERE id = ?", (event_id,)).fetchone()
            if r is None:
                return None
            d = _event_dict(r)
            d["runs"] = self._run_ids_of(conn, event_id)
        return d

    def last_tick(self, rule: str) -> str | None:
        """The ``scheduled`` time of the newest ``schedule.tick`` of ``rule``, or None (see
        :meth:`~.store.Store.last_tick`). On the loop's thread in group commit mode it sees
        the open batch too: a tick submitted just before a reload counts."""
        with self._cursor(write=False) as conn:
            r = conn.execute("SELECT json_extract(data, '$.scheduled') FROM events WHERE source = 'schedule' "
                             "AND type = 'tick' AND json_extract(data, '$.rule') = ? ORDER BY rowid DESC LIMIT 1",
                             (rule,)).fetchone()
        return None if r is None else r[0]

    def read_log(self, run_id: int, limit: int = LOG_TAIL) -> tuple[str, bool, bool]:
        """(text, truncated, exists): the end of run ``run_id``'s log file."""
        return read_log_file(self.run_log_path(run_id), limit)

    def read_log_chunk(self, run_id: int, offset: int | None = None, limit: int = LOG_TAIL) -> LogChunk:
        """Run ``run_id``'s log file as raw bytes from ``offset`` (see :class:`~.store.LogChunk`)."""
        return read_log_chunk(self.run_log_path(run_id), offset, limit)

    def run_log_path(self, run_id: int) -> Path:
        """Where the output of run ``run_id`` goes: ``<state_dir>/logs/<run_id>.log``."""
        return _logs_dir(self.state_dir) / f"{int(run_id)}.log"

    # -- helpers ------------------------------------------------------------------------

    @staticmethod
    def _run_ids_of(conn: sqlite3.Connection, event_id: str) -> list[int]:
        return [r[0] for r in conn.execute("SELECT id FROM runs WHERE event_id = ? ORDER BY id", (event_id,))]

    @staticmethod
    def _require(conn: sqlite3.Connection, run_id: int) -> None:
        if conn.execute("SELECT 1 FROM runs WHERE id = ?", (run_id,)).fetchone() is None:
            raise KeyError(run_id)


Journal = SqliteStore
"""The name the one-process engine and older code know the SQLite store by."""


def _check_status(status: str) -> None:
    if status not in STATUSES:
        raise ValueError(f"unknown run status {status!r} (one of {', '.join(STATUSES)})")


def _row(state_dir: Path, r: tuple) -> RunRow:
    (id_, rule, action, status, inputs, event_id, attempt, dedupe_key, queued_at, started_at,
     finished_at, not_before, exit_code, error, log_path, rerun_of) = r
    return RunRow(
        id=id_, rule=rule, action=action, status=status, inputs=json.loads(inputs), event_id=event_id,
        attempt=attempt, dedupe_key=dedupe_key, queued_at=queued_at, started_at=started_at,
        finished_at=finished_at, not_before=not_before, exit_code=exit_code, error=error,
        log_path=state_dir / log_path if log_path else _logs_dir(state_dir) / f"{id_}.log", rerun_of=rerun_of)


@functools.lru_cache(maxsize=16)
def _logs_dir(state_dir: Path) -> Path:
    """``<state_dir>/logs`` (made once: a run's log path is built per run)."""
    return state_dir / LOGS_DIR


def _event_dict(r: tuple) -> dict[str, Any]:
    id_, source, type_, time_, matched, data, delivery_key, received_at, depth = r
    return {"id": id_, "source": source, "type": type_, "time": time_, "matched": json.loads(matched),
            "data": json.loads(data), "delivery_key": delivery_key, "received_at": iso_utc(received_at),
            "depth": depth}
