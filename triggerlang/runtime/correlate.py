"""Correlation groups in the runtime (SPEC §11.3 points 7-9, §11.5, §11.7): durable on the
journal, driven by ``serve``'s engine.

The correlation logic is :class:`~triggerlang.correlation.engine.Correlator` (pure); this
module gives it a durable state and runs it inside the journal's transactions:

- **Rows.** Groups, their history, per-rule state (first start, the next ``between``
  window) and the liveness time are tables of the journal (:data:`SQLITE_SCHEMA`, part of
  the journal's schema). A group's slots are stored by alias (``{"build": [event id,
  time], "test": null}``), so readers need no rules.
- **The mirror.** :class:`SqliteCorrelationState` keeps the *live* groups in memory (key,
  slots, deadline: a few hundred bytes each, measured in ``bench/``) and buffers every
  write of a transaction; if the transaction fails, the mirror is reloaded.
- **The log.** A transaction's correlation writes (the new image of every group it changed,
  its history rows, rule states) are ONE row of ``corr_log``, appended in that transaction:
  an admission costs one small append, not a row updated in place and indexed history rows
  (random pages of the database, tens of µs each). The log is *materialized* into
  ``corr_groups``/``corr_history``/``corr_meta`` (:func:`materialize`) in batches, by
  ``serve`` (:data:`MATERIALIZE_BATCH` entries, or :data:`MATERIALIZE_DELAY` seconds after
  the first; in the transaction of every deadline, start and reload; at stop), and by any
  reader before it reads (:class:`SqliteGroups`' readers, in any process). Loading the
  mirror reads the rows and the log without writing (:func:`live_with_log`). A crash
  loses nothing that committed, and readers never see a group older than the last
  committed admission. Events of no rule's member skip all this (no ``in_tx``).
- **Transactions.** An event's admission runs in the transaction that journals the event
  (``record_event``'s ``in_tx``), so the ``202`` means the admission is durable. A fire
  writes, in that same transaction, the ``correlation.fired`` event, the fire's run (with
  its rule's ``dedupe``/``busy skip`` decided as for any run), the runs of ordinary rules
  on ``correlation.*`` and whatever the event does to other correlation rules: a crash
  can neither lose a fire nor make two. Deadlines run in a transaction of their own.
- **Time.** At start, before any source starts, :meth:`Correlations.start` discards the
  groups of rules that changed while ``serve`` was stopped, then processes every past
  deadline in order, late (``<group.late>``), adding the part of each window ``serve``
  did not see (``<group.unobserved>``: from the last liveness time, written every
  :data:`LIVENESS_INTERVAL` seconds, to now). A timer then wakes the engine at each next
  deadline.
- **Bounds.** ``max N`` per rule and ``--max-open-groups`` for ``serve``: a refused
  opening is a history row (no group), counted by the dashboard, and logged at most once
  a minute per rule.
"""

from __future__ import annotations

import asyncio
import json
import logging
import secrets
import sqlite3
import time
from typing import Any, Callable

from ..correlation.clock import iso
from ..correlation.engine import DEFAULT_MAX_OPEN_GROUPS, Correlator, Outcome
from ..correlation.spec import CorrRule, is_correlation
from ..correlation.state import GROUP_FILTERS, Group, MemoryState
from ..events import Event
from .store import dumps

log = logging.getLogger("triggerlang")

LIVENESS_INTERVAL = 5.0
"""Seconds between two writes of ``serve``'s liveness time (SPEC §11.3.7)."""

REFUSAL_LOG_INTERVAL = 60.0
"""A rule's refusals are logged at most once per this many seconds."""

MATERIALIZE_BATCH = 256
"""``serve`` materializes the correlation log once it holds this many entries..."""

MATERIALIZE_DELAY = 1.0
"""... or this many seconds after its first entry (readers materialize before reading)."""

MAX_CHAIN = 8
"""How deep correlation events may chain into other correlation rules in one transaction."""

SQLITE_SCHEMA = """
CREATE TABLE IF NOT EXISTS corr_groups (
    id          TEXT PRIMARY KEY,
    rule        TEXT NOT NULL,
    fingerprint TEXT NOT NULL DEFAULT '',
    key         TEXT NOT NULL,               -- JSON list: the JSON text of each key value
    state       TEXT NOT NULL,               -- open armed fired expired satisfied rearmed discarded
    opened_at   REAL NOT NULL,
    deadline    REAL,
    slots       TEXT NOT NULL,               -- JSON object: alias -> null | [event id, time] | [[...], ...]
    fired_at    REAL,
    closed_at   REAL,                        -- NULL while the group is live
    reason      TEXT,
    unobserved  REAL NOT NULL DEFAULT 0,
    late        REAL NOT NULL DEFAULT 0,
    seq         INTEGER NOT NULL,
    run_id      INTEGER,                     -- the run its fire created
    event_id    TEXT                         -- its correlation.fired / correlation.expired event
);
CREATE UNIQUE INDEX IF NOT EXISTS corr_groups_live ON corr_groups(rule, key) WHERE closed_at IS NULL;
CREATE INDEX IF NOT EXISTS corr_groups_by_rule ON corr_groups(rule, seq);
CREATE INDEX IF NOT EXISTS corr_groups_by_seq ON corr_groups(seq);
CREATE TABLE IF NOT EXISTS corr_history (
    id       INTEGER PRIMARY KEY AUTOINCREMENT,
    group_id TEXT,                           -- NULL: a refusal (no group was opened)
    rule     TEXT NOT NULL,
    time     REAL NOT NULL,
    action   TEXT NOT NULL,
    member   TEXT,
    event_id TEXT,
    note     TEXT
);
CREATE INDEX IF NOT EXISTS corr_history_by_group ON corr_history(group_id, id);
CREATE INDEX IF NOT EXISTS corr_history_by_event ON corr_history(event_id) WHERE event_id IS NOT NULL;
CREATE INDEX IF NOT EXISTS corr_history_refusals ON corr_history(rule) WHERE group_id IS NULL;
CREATE TABLE IF NOT EXISTS corr_log (
    id    INTEGER PRIMARY KEY,
    entry TEXT NOT NULL                      -- JSON: {"g": [group rows], "h": [history rows], "m": [[rule, meta]]}
);
CREATE TABLE IF NOT EXISTS corr_meta (
    rule TEXT PRIMARY KEY,
    meta TEXT NOT NULL                       -- JSON: fingerprint, started, next_open, the rule's entry
);
CREATE TABLE IF NOT EXISTS corr_alive (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    at REAL NOT NULL                         -- the last time serve was known to be running
)
"""

_GROUP_COLS = ("id, rule, fingerprint, key, state, opened_at, deadline, slots, fired_at, closed_at, reason, "
               "unobserved, late, seq, run_id, event_id")

STATUS_STATES = GROUP_FILTERS
"""``--status`` of ``triggerc groups`` / ``?state=`` of the API -> the stored states."""


# --------------------------------------------------------------------------- rows

def slots_json(aliases: list[str], slots: list) -> str:
    """The slots as stored: ``{"alias": null | ["evt_…", time] | [["evt_…", time], ...]}``
    (ASCII JSON, written by hand: this runs on every admission)."""
    enc = _ENCODE
    parts = []
    for a, s in zip(aliases, slots):
        if s is None:
            v = "null"
        elif s.__class__ is tuple:
            v = f"[{enc(s[0])},{float(s[1])!r}]"
        else:
            v = "[" + ",".join(f"[{enc(x[0])},{float(x[1])!r}]" for x in s) + "]"
        parts.append(f"{enc(a)}:{v}")
    return "{" + ",".join(parts) + "}"


_ENCODE = json.encoder.encode_basestring_ascii
_LOG_JSON = json.JSONEncoder(separators=(",", ":"), default=str).encode   # (as store.dumps: ASCII)
_KEY_JSON = _LOG_JSON


def slots_list(aliases: list[str], text: str) -> list:
    obj = json.loads(text)
    out: list = []
    for a in aliases:
        s = obj.get(a)
        if s is None:
            out.append(None)
        elif s and isinstance(s[0], list):
            out.append([(x[0], x[1]) for x in s])
        elif s == []:
            out.append([])
        else:
            out.append((s[0], s[1]))
    return out


NOTE_ACTIONS = ("absorb", "arm")
"""The history entries a listed group needs (:func:`group_dict`'s ``notes``)."""


def group_dict(r: tuple, history: list[dict] | None = None, notes: list[dict] | None = None) -> dict[str, Any]:
    """A group row as the API shape (§11.7): keys decoded, members by alias, times ISO.

    ``history``: the group's whole history (one group's page); ``notes``: its entries of
    :data:`NOTE_ACTIONS` alone (a list). A fired group needed none of the members it has no
    event for, so ``missing`` is empty, and the events an ``any`` group absorbed after it
    fired are among its ``members`` (``"absorbed": true``): a fired ``any(a, b)`` whose ``a``
    came and then ``b`` reads "members a, b", not "missing b". A fired absence window keeps
    its absent member as missing: that it did not come is why the window fired (its history
    starts with ``arm``)."""
    (id_, rule, fingerprint, key, state, opened_at, deadline, slots, fired_at, closed_at, reason, unobserved,
     late, seq, run_id, event_id) = r
    hist = history if history is not None else (notes or [])
    members, missing = [], []
    by_alias: dict[str, Any] = {}      # the slots with ISO times, as every time of the API
    for alias, s in json.loads(slots).items():
        if not s:
            missing.append(alias)
            by_alias[alias] = s
        elif isinstance(s[0], list):
            members.extend({"alias": alias, "event_id": x[0], "admitted_at": iso(x[1])} for x in s)
            by_alias[alias] = [[x[0], iso(x[1])] for x in s]
        else:
            members.append({"alias": alias, "event_id": s[0], "admitted_at": iso(s[1])})
            by_alias[alias] = [s[0], iso(s[1])]
    members.extend({"alias": h["member"], "event_id": h["event_id"], "admitted_at": h["time"], "absorbed": True}
                   for h in hist if h["action"] == "absorb")
    if state == "fired" and not any(h["action"] == "arm" for h in hist):
        missing = []
    out = {"id": id_, "rule": rule, "keys": [json.loads(k) for k in json.loads(key)], "state": state,
           "live": closed_at is None, "opened_at": iso(opened_at), "deadline": iso(deadline),
           "closed_at": iso(closed_at), "fired_at": iso(fired_at), "members": members, "missing": missing,
           "run_id": run_id, "event_id": event_id, "reason": reason, "unobserved": unobserved, "late": late}
    if history is not None:
        out["history"] = history
        out["slots"] = by_alias
    return out


def history_dict(r: tuple) -> dict[str, Any]:
    time_, action, member, event_id, note = r
    return {"time": iso(time_), "action": action, "member": member, "event_id": event_id, "note": note}


_UPSERT_GROUP = (f"INSERT INTO corr_groups ({_GROUP_COLS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
                 "ON CONFLICT(id) DO UPDATE SET fingerprint = excluded.fingerprint, state = excluded.state, "
                 "opened_at = excluded.opened_at, deadline = excluded.deadline, slots = excluded.slots, "
                 "fired_at = excluded.fired_at, closed_at = excluded.closed_at, reason = excluded.reason, "
                 "unobserved = excluded.unobserved, late = excluded.late, run_id = excluded.run_id, "
                 "event_id = excluded.event_id")


def live_with_log(conn: sqlite3.Connection) -> tuple[list[tuple], dict[str, Any], int, list[tuple], int]:
    """What the rows and the log not applied yet say, without writing: the live group rows
    (by ``seq``), the rule states, the highest ``seq``, the groups the log closed, and the
    number of log entries (the mirror is loaded from this: a reader elsewhere may apply the
    log at any time, and loading must work on a journal that cannot be written)."""
    rows = conn.execute(f"SELECT {_GROUP_COLS} FROM corr_groups WHERE closed_at IS NULL").fetchall()
    metas: dict[str, Any] = {r: json.loads(m) for r, m in conn.execute("SELECT rule, meta FROM corr_meta")}
    top = int(conn.execute("SELECT COALESCE(MAX(seq), 0) FROM corr_groups").fetchone()[0])
    entries = conn.execute("SELECT entry FROM corr_log ORDER BY id").fetchall()
    live = {r[0]: r for r in rows}
    closed: dict[str, tuple] = {}
    for (text,) in entries:
        e = json.loads(text)
        for g in e.get("g", ()):
            g = tuple(g)
            top = max(top, int(g[13]))
            if g[9] is None:
                live[g[0]] = g
                closed.pop(g[0], None)
            else:
                live.pop(g[0], None)
                closed[g[0]] = g
        for rule, meta in e.get("m", ()):
            if meta is None:
                metas.pop(rule, None)
            else:
                metas[rule] = meta
    return sorted(live.values(), key=lambda r: r[13]), metas, top, list(closed.values()), len(entries)


def materialize(conn: sqlite3.Connection) -> int:
    """Apply the correlation log to the rows, in its order, and empty it (inside the
    caller's write transaction); how many entries it applied. A group's rows get its last
    image; images are applied in the order of their last change, so that a group closed
    and another opened for its key are written closed-first (the live key is unique)."""
    entries = conn.execute("SELECT id, entry FROM corr_log ORDER BY id").fetchall()
    if not entries:
        return 0
    groups: dict[str, list] = {}
    history: list[list] = []
    metas: dict[str, Any] = {}
    for _, text in entries:
        e = json.loads(text)
        for g in e.get("g", ()):
            groups.pop(g[0], None)
            groups[g[0]] = g
        history.extend(e.get("h", ()))
        for rule, meta in e.get("m", ()):
            metas.pop(rule, None)
            metas[rule] = meta
    conn.executemany(_UPSERT_GROUP, groups.values())
    conn.executemany("INSERT INTO corr_history (group_id, rule, time, action, member, event_id, note) "
                     "VALUES (?, ?, ?, ?, ?, ?, ?)", history)
    for rule, meta in metas.items():
        if meta is None:
            conn.execute("DELETE FROM corr_meta WHERE rule = ?", (rule,))
        else:
            conn.execute("INSERT OR REPLACE INTO corr_meta (rule, meta) VALUES (?, ?)", (rule, dumps(meta)))
    conn.execute("DELETE FROM corr_log WHERE id <= ?", (entries[-1][0],))
    return len(entries)


class SqliteGroups:
    """Correlation readers and transaction helpers of the SQLite journal (mixed into
    :class:`~triggerlang.runtime.journal.SqliteStore`)."""

    # -- writing, inside an open transaction ------------------------------------------------
    def transaction(self, fn: Callable[[sqlite3.Connection], Any]) -> Any:
        """``fn(conn)`` inside one write transaction, committed on return."""
        with self._cursor(write=True) as conn:  # type: ignore[attr-defined]
            return fn(conn)

    def materialize_groups(self) -> int:
        """Apply the correlation log to the rows (:func:`materialize`), if it has entries."""
        with self._cursor(write=False) as conn:  # type: ignore[attr-defined]
            if conn.execute("SELECT 1 FROM corr_log LIMIT 1").fetchone() is None:
                return 0
        with self._cursor(write=True) as conn:  # type: ignore[attr-defined]
            return materialize(conn)

    @staticmethod
    def insert_event_tx(conn: sqlite3.Connection, event: Event, matched: list[str], received_at: float) -> str:
        data_json = dumps(event.data)
        conn.execute("INSERT INTO events (id, source, type, time, data, delivery_key, matched, received_at, depth) "
                     "VALUES (?, ?, ?, ?, ?, NULL, ?, ?, ?)",
                     (event.id, event.source, event.type, event.time, data_json, dumps(matched), received_at,
                      int(event.depth)))
        return data_json

    def insert_run_tx(self, conn: sqlite3.Connection, planned: Any, event_id: str, now: float) -> int:
        return self._insert_run(conn, planned, event_id, planned.status, 1, planned.not_before,  # type: ignore
                                now, planned.error)

    @staticmethod
    def last_run_with_key_tx(conn: sqlite3.Connection, rule: str, key: str) -> float | None:
        row = conn.execute("SELECT MAX(queued_at) FROM runs WHERE rule = ? AND dedupe_key = ? AND status != 'skipped'",
                           (rule, key)).fetchone()
        return None if row is None else row[0]

    # -- reading ------------------------------------------------------------------------------
    def list_groups(self, limit: int = 50, rule: str | None = None, status: str | None = None,
                    key: str | None = None) -> list[dict[str, Any]]:
        """Groups newest first (the API shape). ``status``: open (open groups and armed
        windows), fired, expired, discarded, satisfied, rearmed; ``key``: a key value (as
        text: ``3f1d``, ``42``) that one of the group's keys has."""
        self.materialize_groups()
        where, args = [], []
        if rule is not None:
            where.append("rule = ?")
            args.append(rule)
        if status is not None:
            states = STATUS_STATES.get(status, (status,))
            where.append(f"state IN ({', '.join('?' * len(states))})")
            args.extend(states)
            if status == "open":
                where.append("closed_at IS NULL")
        sql = f"SELECT {_GROUP_COLS} FROM corr_groups"
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY seq DESC"
        if key is None:
            sql += " LIMIT ?"
            args.append(max(0, int(limit)))
        with self._cursor(write=False) as conn:  # type: ignore[attr-defined]
            rows = conn.execute(sql, args).fetchall()
            fired = [r[0] for r in rows if r[4] == "fired"]
            notes: dict[str, list[dict]] = {}
            for i in range(0, len(fired), 500):
                part = fired[i:i + 500]
                for h in conn.execute(
                        "SELECT group_id, time, action, member, event_id, note FROM corr_history WHERE group_id IN "
                        f"({', '.join('?' * len(part))}) AND action IN {NOTE_ACTIONS} ORDER BY id", part):
                    notes.setdefault(h[0], []).append(history_dict(h[1:]))
        out = [group_dict(r, notes=notes.get(r[0])) for r in rows]
        if key is not None:
            out = [g for g in out if key_matches(g["keys"], key)][:max(0, int(limit))]
        return out

    def get_group(self, group_id: str) -> dict[str, Any] | None:
        """One group with its full history (admitted, replaced, absorbed...), or None."""
        self.materialize_groups()
        with self._cursor(write=False) as conn:  # type: ignore[attr-defined]
            r = conn.execute(f"SELECT {_GROUP_COLS} FROM corr_groups WHERE id = ?", (group_id,)).fetchone()
            if r is None:
                return None
            hist = [history_dict(h) for h in conn.execute(
                "SELECT time, action, member, event_id, note FROM corr_history WHERE group_id = ? ORDER BY id",
                (group_id,))]
        return group_dict(r, hist)

    def groups_of_event(self, event_id: str) -> list[dict[str, Any]]:
        """What the correlations did with one event: ``{group, rule, action, member, note}``."""
        self.materialize_groups()
        with self._cursor(write=False) as conn:  # type: ignore[attr-defined]
            rows = conn.execute("SELECT group_id, rule, action, member, note FROM corr_history WHERE event_id = ? "
                                "ORDER BY id", (event_id,)).fetchall()
        return [{"group": g, "rule": r, "action": a, "member": m, "note": n} for g, r, a, m, n in rows]

    def correlation_stats(self) -> dict[str, Any]:
        """Per rule: open groups, refusals, the rule's stored entry (for ``--explain``)."""
        self.materialize_groups()
        with self._cursor(write=False) as conn:  # type: ignore[attr-defined]
            opened = dict(conn.execute("SELECT rule, COUNT(*) FROM corr_groups WHERE closed_at IS NULL "
                                       "GROUP BY rule").fetchall())
            refused = dict(conn.execute("SELECT rule, COUNT(*) FROM corr_history WHERE group_id IS NULL "
                                        "AND action = 'refuse' GROUP BY rule").fetchall())
            metas = {r: json.loads(m) for r, m in conn.execute("SELECT rule, meta FROM corr_meta")}
            alive = conn.execute("SELECT at FROM corr_alive WHERE id = 1").fetchone()
        rules = sorted(set(opened) | set(refused) | set(metas))
        return {"rules": {r: {"open": opened.get(r, 0), "refused": refused.get(r, 0), "meta": metas.get(r)}
                          for r in rules}, "alive_at": iso(alive[0]) if alive else None}


def key_matches(keys: list, text: str) -> bool:
    """Whether ``--key V`` names one of a group's key values (text as written, or its JSON)."""
    for k in keys:
        if (k if isinstance(k, str) else json.dumps(k)) == text or json.dumps(k, ensure_ascii=False) == text:
            return True
    return False


# --------------------------------------------------------------------------- the state

class SqliteCorrelationState(MemoryState):
    """The engine's state on the SQLite journal: an in-memory mirror of the live groups
    and a buffer of writes, flushed on the open transaction's connection."""

    def __init__(self, journal: Any):
        super().__init__(keep_closed=0, track=False)   # the rows keep closed groups and history
        self.journal = journal
        self.conn: sqlite3.Connection | None = None
        self.aliases: dict[str, list[str]] = {}
        self._writes: list[tuple] = []
        self._dirty: dict[str, Group] = {}
        self._seq_base = 0
        self.pending = 0                 # entries this process appended to the log since it last applied it
        self._closed: dict[tuple[str, tuple], Group] = {}   # closed in an entry not applied yet

    # -- binding to a transaction -------------------------------------------------------------
    def bind(self, conn: sqlite3.Connection) -> None:
        self.conn = conn

    def flush(self, conn: sqlite3.Connection) -> None:
        """The transaction's writes as one entry of the correlation log (see the module doc)."""
        if self._dirty or self._writes:
            images = []
            for g in self._dirty.values():
                aliases = self.aliases.get(g.rule) or [f"m{i}" for i in range(len(g.slots))]
                run_id, event_id = g.run if g.run else (None, None)
                images.append((g.id, g.rule, g.fingerprint, _KEY_JSON(list(g.key)), g.state, g.opened_at,
                               g.deadline, slots_json(aliases, g.slots), g.fired_at, g.closed_at, g.reason,
                               g.unobserved, g.late, g.seq, run_id, event_id))
                if g.closed_at is not None:
                    self._closed[(g.rule, g.key)] = g
            entry: dict[str, Any] = {"g": images}
            history = [w[1:] for w in self._writes if w[0] == "history"]
            if history:
                entry["h"] = history
            metas = [w[1:] for w in self._writes if w[0] == "meta"]
            if metas:
                entry["m"] = metas
            conn.execute("INSERT INTO corr_log (entry) VALUES (?)", (_LOG_JSON(entry),))
            self.pending += 1
        self._writes.clear()
        self._dirty.clear()
        self.conn = None

    def materialize(self, conn: sqlite3.Connection) -> int:
        """Apply the log to the rows (in the caller's transaction)."""
        n = materialize(conn)
        self.pending = 0
        self._closed.clear()
        return n

    def discard_buffer(self) -> None:
        self._writes.clear()
        self._dirty.clear()
        self.conn = None

    # -- loading ------------------------------------------------------------------------------
    def load(self) -> None:
        """The live groups and rule states from the rows (at start, and after a failed
        transaction), for the rules whose member aliases :attr:`aliases` knows."""
        live: dict[str, dict[tuple, Group]] = {}
        total = 0
        heap: list = []
        with self.journal._cursor(write=False) as conn:
            rows, metas, top, closed, self.pending = live_with_log(conn)
        self._seq_base = top
        import itertools

        self._seq = itertools.count(self._seq_base + 1)
        self.groups.clear()
        self.history.clear()
        for r in rows:
            g = self._group(r)
            if g is None:
                continue
            live.setdefault(g.rule, {})[g.key] = g
            total += 1
            if g.deadline is not None:
                g.pushed = g.deadline
                heap.append((g.deadline, g.seq, next(self._pushes), g))
        import heapq

        heapq.heapify(heap)
        self._live, self._total, self._heap = live, total, heap
        self._meta = metas
        self._closed_by_key.clear()
        self._closed.clear()
        for r in closed:
            g = self._group(r)
            if g is not None:
                self._closed[(g.rule, g.key)] = g

    def _group(self, r: tuple) -> Group | None:
        (id_, rule, fingerprint, key, state, opened_at, deadline, slots, fired_at, closed_at, reason, unobserved,
         late, seq, run_id, event_id) = r
        aliases = self.aliases.get(rule)
        if aliases is None:
            return None
        g = Group(id_, rule, tuple(json.loads(key)), opened_at, deadline, slots_list(aliases, slots), seq,
                  state=state, fingerprint=fingerprint)
        g.fired_at, g.closed_at, g.reason, g.unobserved, g.late = fired_at, closed_at, reason, unobserved, late
        g.run = (run_id, event_id) if run_id is not None or event_id is not None else None
        return g

    # -- the State protocol -----------------------------------------------------------------------
    def new_id(self) -> str:
        return "grp_" + secrets.token_hex(8)

    def add(self, g: Group) -> None:
        super().add(g)
        self._dirty[g.id] = g

    def update(self, g: Group) -> None:
        super().update(g)
        self._dirty[g.id] = g

    def close(self, g: Group) -> None:
        super().close(g)
        self._dirty[g.id] = g
        self.history.pop(g.id, None)

    def log(self, g: Group, time: float, action: str, member: str | None, event_id: str | None,
            note: str | None = None) -> None:
        self._writes.append(("history", g.id, g.rule, time, action, member, event_id, note))

    def refusal(self, rule: str, time: float, member: str | None, event_id: str | None, note: str) -> None:
        self._writes.append(("history", None, rule, time, "refuse", member, event_id, note))

    def event(self, event_id: str) -> dict | None:
        conn = self.conn
        if conn is None:
            return self.journal.get_event(event_id)
        r = conn.execute("SELECT id, source, type, time, data FROM events WHERE id = ?", (event_id,)).fetchone()
        if r is None:
            return None
        return {"id": r[0], "source": r[1], "type": r[2], "time": r[3], "data": json.loads(r[4])}

    def remember(self, event: Event, time: float) -> None:
        pass   # the journal has it

    def set_meta(self, rule: str, meta: dict | None) -> None:
        super().set_meta(rule, meta)
        self._writes.append(("meta", rule, meta))

    def last_closed(self, rule: str, key: tuple) -> Group | None:
        conn = self.conn
        if conn is None:
            return None
        if (rule, key) in self._closed:
            return self._closed[(rule, key)]
        r = conn.execute(f"SELECT {_GROUP_COLS} FROM corr_groups WHERE rule = ? AND key = ? AND closed_at IS NOT NULL "
                         "ORDER BY closed_at DESC LIMIT 1", (rule, dumps(list(key)))).fetchone()
        return None if r is None else self._group(r)


# --------------------------------------------------------------------------- stdin of a run

def correlation_stdin(event: dict, read_group: Callable[[str], dict | None],
                      read_event: Callable[[str], dict | None]) -> dict | None:
    """The ``{"correlation": ...}`` a run of a correlation rule gets on stdin (§11.4), built
    from its ``correlation.fired`` event, the group (:meth:`SqliteGroups.get_group`, with its
    slots) and the members' events as journaled: ``members`` maps each alias to its event,
    a list of events (``N of m``), or null (no event)."""
    data = event.get("data") or {}
    gid = data.get("group")
    if event.get("source") != "correlation" or event.get("type") != "fired" or not gid:
        return None
    g = read_group(gid)
    if g is None or "slots" not in g:
        return None

    def ev(ref: list) -> dict:
        e = read_event(ref[0]) or {"id": ref[0]}
        return {k: e.get(k) for k in ("id", "source", "type", "time", "data")}

    members: dict[str, Any] = {}
    for alias, s in g["slots"].items():
        if not s:
            members[alias] = [] if s == [] else None
        elif isinstance(s[0], list):
            members[alias] = [ev(x) for x in s]
        else:
            members[alias] = ev(s)
    return {"rule": g["rule"], "group": g["id"],
            "keys": [json.dumps(k, ensure_ascii=False, separators=(",", ":")) for k in g["keys"]],
            "values": g["keys"], "state": "fired", "opened_at": g["opened_at"], "fired_at": g["fired_at"],
            "members": members}


# --------------------------------------------------------------------------- the runtime

class Correlations:
    """The correlation rules of one ``serve`` on the SQLite journal (see the module doc).

    ``engine`` is the :class:`~triggerlang.runtime.engine.Engine`: it plans runs
    (``plan(event, matches, now, last_run_with_key)``) and starts them after the commit
    (``committed(event, planned, debounced, rec)``)."""

    def __init__(self, engine: Any, manifest: dict, journal: Any, *, max_open_groups: int = DEFAULT_MAX_OPEN_GROUPS):
        self.engine = engine
        self.journal = journal
        self.state = SqliteCorrelationState(journal)
        self.corr = Correlator(manifest["rules"], self.state, max_open_groups=max_open_groups)
        self.state.aliases = {r.name: [m.alias for m in r.members] for r in self.corr.rules}
        self.state.load()
        self.done: list[tuple] = []          # after the commit: (event, planned, debounced, run ids, data_json)
        self._refusal_logged: dict[str, float] = {}
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at: float | None = None
        self._materialize_timer: asyncio.TimerHandle | None = None
        self._alive_task: asyncio.Task | None = None
        self.closing = False

    @property
    def active(self) -> bool:
        return bool(self.corr.rules)

    # ------------------------------------------------------------------ transactions
    def in_tx(self, event: Event) -> Callable[[sqlite3.Connection], None] | None:
        """The ``in_tx`` of the event's ``record_event``: admit it, and journal what fires;
        None if the event is no rule's member (deadlines are the timer's: nothing to do)."""
        matches = self.corr.index.matches(event)
        if not matches:
            return None

        def run(conn: sqlite3.Connection) -> None:
            now = time.time()   # (the admission's time: within µs of the event row's received_at)
            self.state.bind(conn)
            outs = self.corr.submit(event, now, processing=now, matches=matches)
            self._apply(conn, outs, now, 0, event.depth)
            self.state.flush(conn)
        return run

    def _write(self, fn: Callable[[sqlite3.Connection, float], list[Outcome]]) -> None:
        """A transaction of its own (deadlines, start, reload), then start what it queued."""
        def run(conn: sqlite3.Connection) -> None:
            now = time.time()
            self.state.bind(conn)
            outs = fn(conn, now)
            self._apply(conn, outs, now, 0, 0)
            self.state.flush(conn)
            self.state.materialize(conn)   # (not the hot path: the rows are brought up to date at once)
        try:
            self.journal.transaction(run)
        except BaseException:
            self.failed()
            raise
        # with serve's group commit the transaction is the loop pass's batch: if that rolls
        # back, the mirror is reloaded (the runs it queued start only once it commits)
        self.journal.on_rollback(self.failed)
        self.committed()

    def failed(self) -> None:
        """The transaction did not commit: forget what it planned, reload the mirror."""
        self.state.discard_buffer()
        self.done.clear()
        self.state.load()

    def committed(self) -> list[int]:
        """After the commit: start the runs the transaction created; their ids."""
        done, self.done = self.done, []
        ids: list[int] = []
        for item in done:
            ev, planned, debounced = item[:3]
            self.engine.count(ev, planned, bool(planned or debounced))
            self.engine.committed(*item)
            ids.extend(item[3])
        self.schedule()
        self._schedule_materialize()
        return ids

    def _schedule_materialize(self) -> None:
        """Apply the log now if it is long, else soon (once) — see the module doc."""
        pending = self.state.pending
        if not pending or self.closing:
            return
        if pending >= MATERIALIZE_BATCH:
            self.materialize()
            return
        if self._materialize_timer is None:
            try:
                loop = asyncio.get_running_loop()
            except RuntimeError:
                return
            self._materialize_timer = loop.call_later(MATERIALIZE_DELAY, self.materialize)

    def materialize(self) -> None:
        if self._materialize_timer is not None:
            self._materialize_timer.cancel()
            self._materialize_timer = None
        try:
            self.journal.transaction(self.state.materialize)
        except Exception as e:   # a full disk...: the log stays, and is applied later (or by a reader)
            log.error("correlations: cannot apply the correlation log yet: %s", e)

    def _apply(self, conn: sqlite3.Connection, outs: list[Outcome], now: float, depth: int, cause: int) -> None:
        """Journal what the outcomes emit; a ``correlation.*`` event is one deeper than the
        event that caused it (``cause``: 0 for a deadline), as a ``run.*`` event is
        (runtime/loops.py): past ``--max-chain-depth`` its runs are ``skipped``."""
        for o in outs:
            if o.action == "refuse":
                self.state.refusal(o.rule, o.time, o.member, o.event_id, o.reason or "refused")
                self._log_refusal(o, now)
            elif o.action == "discard":
                pass
            if o.emitted is None:
                continue
            ev = o.emitted
            ev.depth = cause + 1
            matches = self.engine.matcher.match(ev)
            last = lambda rule, key: self.journal.last_run_with_key_tx(conn, rule, key)  # noqa: E731
            planned, debounced = self.engine.plan(ev, matches, now, last)
            if o.run is not None:
                planned.insert(0, self.engine.plan_fire(o.run, now, last))
            names = [p.rule for p in planned] + [d[0].rule.name for d in debounced]
            data_json = self.journal.insert_event_tx(conn, ev, list(dict.fromkeys(names)), now)
            ids = [self.journal.insert_run_tx(conn, p, ev.id, now) for p in planned]
            if o.group:
                self._set_run(conn, o, ids[0] if (o.run is not None and ids) else None, ev.id)
            self.done.append((ev, planned, debounced, ids, data_json))
            if depth < MAX_CHAIN:
                self._apply(conn, self.corr.submit(ev, now, processing=now), now, depth + 1, ev.depth)

    def _set_run(self, conn: sqlite3.Connection, o: Outcome, run_id: int | None, event_id: str) -> None:
        g = self.state._dirty.get(o.group)   # (a group the transaction changed: in its write buffer)
        if g is not None:
            g.run = (run_id, event_id)
            self.state._dirty[g.id] = g
        elif o.group:   # pragma: no cover - a group not in this transaction's buffer
            self.state.materialize(conn)
            conn.execute("UPDATE corr_groups SET run_id = ?, event_id = ? WHERE id = ?", (run_id, event_id, o.group))

    def _log_refusal(self, o: Outcome, now: float) -> None:
        last = self._refusal_logged.get(o.rule)
        if last is None or now - last >= REFUSAL_LOG_INTERVAL:
            self._refusal_logged[o.rule] = now
            log.warning("correlation rule %s: %s; new groups are refused until some close "
                        "(this is logged at most once a minute)", o.rule, o.reason)

    # ------------------------------------------------------------------ time
    def start(self) -> None:
        """Serve's start, before any source: discard the groups of rules that changed while
        it was stopped, process past deadlines in order, arm, then run the timers."""
        with self.journal._cursor(write=False) as conn:
            row = conn.execute("SELECT at FROM corr_alive WHERE id = 1").fetchone()
            rows = live_with_log(conn)[0]
        alive = row[0] if row else None
        now = time.time()
        # groups of rules that are gone are not in the mirror: give them a rule-less shape
        for r in rows:
            if r[1] not in self.corr.by_name and r[1] not in self.state.aliases:
                self.state.aliases[r[1]] = list(json.loads(r[7]))
        self.state.load()
        swept: list[Outcome] = []
        self._write(lambda conn, t: swept.extend(self.corr.sweep(t, when=" while serve was stopped")) or swept)
        self._log_discards(swept)
        downtime = (alive, now) if alive is not None and alive < now else None
        self._write(lambda conn, t: self.corr.start(t, downtime=downtime))
        if downtime is not None:
            log.info("correlations: serve was not running for %.0fs; past deadlines processed", now - alive)

    @staticmethod
    def _log_discards(outs: list[Outcome]) -> None:
        counts: dict[str, tuple[int, str]] = {}
        carried: dict[str, tuple[int, str]] = {}
        for o in outs:
            if o.action == "discard" and not (o.reason or "").startswith("rule renamed"):
                n, why = counts.get(o.rule, (0, o.reason or ""))
                counts[o.rule] = (n + 1, why)
            elif o.action == "carry":
                n, why = carried.get(o.rule, (0, o.reason or ""))
                carried[o.rule] = (n + 1, why)
        for rule, (n, why) in sorted(counts.items()):
            log.info("correlation rule %s: %s, %d open group(s) discarded", rule, why, n)
        for rule, (n, why) in sorted(carried.items()):
            log.info("correlation rule %s: %s, %d open group(s) carried over", rule, why, n)

    def schedule(self) -> None:
        """(Re)arm the timer for the next deadline or window opening (unless it is armed for it)."""
        if self.closing:
            return
        nxt = self.corr.next_deadline()
        if self._timer is not None:
            if nxt == self._timer_at:
                return
            self._timer.cancel()
            self._timer = None
        if nxt is None:
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return
        self._timer_at = nxt
        self._timer = loop.call_later(max(0.0, nxt - time.time()) + 0.001, self.tick)

    def tick(self) -> None:
        self._timer = None
        if self.closing:
            return
        try:
            self._write(lambda conn, now: self.corr.advance(now, processing=now))
        except Exception as e:   # a full disk...: try again soon; the deadlines stay in the rows
            log.error("correlations: cannot process deadlines yet (%s); trying again in 1s", e)
            loop = asyncio.get_running_loop()
            self._timer = loop.call_later(1.0, self.tick)

    def reload(self, manifest: dict) -> None:
        """New rules: unchanged ones keep their groups, the others' are discarded (logged once)."""
        outs: list[Outcome] = []

        def run(conn: sqlite3.Connection, now: float) -> list[Outcome]:
            got = self.corr.reload(manifest["rules"], now)
            self.state.aliases.update({r.name: [m.alias for m in r.members] for r in self.corr.rules})
            outs.extend(got)
            return got

        self._write(run)
        self._log_discards(outs)
        for rule in [r for r in self.state.aliases if r not in self.corr.by_name]:
            if not self.state.live_groups(rule):
                self.state.aliases.pop(rule, None)

    async def liveness(self) -> None:
        """Write the liveness time every few seconds (SPEC §11.3.7)."""
        while not self.closing:
            try:
                self.mark_alive()
            except Exception as e:  # pragma: no cover - a full disk: the next one may work
                log.error("correlations: cannot write the liveness time: %s", e)
            await asyncio.sleep(LIVENESS_INTERVAL)

    def mark_alive(self) -> None:
        self.journal.transaction(lambda conn: conn.execute(
            "INSERT OR REPLACE INTO corr_alive (id, at) VALUES (1, ?)", (time.time(),)))

    def start_timers(self) -> None:
        self.schedule()
        self._alive_task = asyncio.get_running_loop().create_task(self.liveness())

    async def stop(self) -> None:
        self.closing = True
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._materialize_timer is not None:
            self._materialize_timer.cancel()
            self._materialize_timer = None
        if self._alive_task is not None:
            self._alive_task.cancel()
            try:
                await self._alive_task
            except (asyncio.CancelledError, Exception):
                pass
            self._alive_task = None
        try:
            self.journal.transaction(self.state.materialize)
            self.mark_alive()
        except Exception:  # pragma: no cover - the journal may already be closed
            pass

    # ------------------------------------------------------------------ runs
    def stdin_for(self, event: dict) -> dict | None:
        return correlation_stdin(event, self.journal.get_group, self.journal.get_event)


def has_correlations(manifest: dict) -> bool:
    return any(is_correlation(r) for r in manifest.get("rules", []))
