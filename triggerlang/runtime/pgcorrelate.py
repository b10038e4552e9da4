"""Correlation groups on the PostgreSQL store (SPEC §11, §12.2: "rows of the same store,
admitted under the rule's lock"). Imported only in store mode.

Several ingest nodes share the groups, so there is no in-memory mirror here: the rows are
the state. :class:`PgCorrelationState` reads and writes them on the open transaction's
cursor, taking the rule's transaction-scoped advisory lock (``PgStore.lock_rule``) before
it reads a rule's groups, so two nodes admitting events of one rule are serialised and
see each other's groups. Every write is done at once, inside the transaction.

- **Admission** runs in :meth:`~.pgstore.PgStore.ingest`'s ``in_tx``, for events some
  member matches: the ``202`` is sent after the commit that holds the admission. A fire
  journals, in the same transaction, the ``correlation.fired`` event and its runs
  (:meth:`PgGroups.ingest_in_tx`: the fire's run with its rule's policies decided in the
  database as for any run, and the runs of ordinary rules on ``correlation.*``).
- **Deadlines** are processed by every ingest node (:meth:`ClusterCorrelations.run`): a
  node finds the earliest due group, takes its rule's lock, re-reads it (another node
  may have processed it already) and processes it, in a transaction of its own, retried
  on a deadlock. Times are the database's clock, like the store's leases.
- **Liveness** is one row every node refreshes; a node that starts after all were down
  processes the past deadlines late, with the unobserved part of each window.
"""

from __future__ import annotations

import asyncio
import json
import logging
import secrets
import threading
from typing import Any, Callable

from ..correlation.engine import DEFAULT_MAX_OPEN_GROUPS, Correlator, Outcome
from ..correlation.spec import is_correlation
from ..correlation.state import Group
from ..events import Event
from .correlate import (LIVENESS_INTERVAL, MAX_CHAIN, NOTE_ACTIONS, REFUSAL_LOG_INTERVAL, STATUS_STATES,
                        Correlations, correlation_stdin, group_dict, history_dict, key_matches, slots_json, slots_list)
from .store import Intent, dumps

log = logging.getLogger("triggerlang")

POLL = 1.0
"""A node looks for due groups at least this often (another node may have opened them)."""

PG_SCHEMA = """
CREATE SEQUENCE IF NOT EXISTS trg_corr_seq;
CREATE TABLE IF NOT EXISTS trg_corr_groups (
    id          text PRIMARY KEY,
    rule        text NOT NULL,
    fingerprint text NOT NULL DEFAULT '',
    key         text NOT NULL,
    state       text NOT NULL,
    opened_at   double precision NOT NULL,
    deadline    double precision,
    slots       text NOT NULL,
    fired_at    double precision,
    closed_at   double precision,
    reason      text,
    unobserved  double precision NOT NULL DEFAULT 0,
    late        double precision NOT NULL DEFAULT 0,
    seq         bigint NOT NULL,
    run_id      bigint,
    event_id    text
);
CREATE UNIQUE INDEX IF NOT EXISTS trg_corr_live ON trg_corr_groups (rule, key) WHERE closed_at IS NULL;
CREATE INDEX IF NOT EXISTS trg_corr_due ON trg_corr_groups (deadline, seq) WHERE closed_at IS NULL;
CREATE INDEX IF NOT EXISTS trg_corr_by_rule ON trg_corr_groups (rule, seq);
CREATE INDEX IF NOT EXISTS trg_corr_by_seq ON trg_corr_groups (seq);
CREATE TABLE IF NOT EXISTS trg_corr_history (
    id       bigserial PRIMARY KEY,
    group_id text,
    rule     text NOT NULL,
    time     double precision NOT NULL,
    action   text NOT NULL,
    member   text,
    event_id text,
    note     text
);
CREATE INDEX IF NOT EXISTS trg_corr_history_by_group ON trg_corr_history (group_id, id);
CREATE INDEX IF NOT EXISTS trg_corr_history_by_event ON trg_corr_history (event_id) WHERE event_id IS NOT NULL;
CREATE INDEX IF NOT EXISTS trg_corr_history_refusals ON trg_corr_history (rule) WHERE group_id IS NULL;
CREATE TABLE IF NOT EXISTS trg_corr_meta (
    rule text PRIMARY KEY,
    meta text NOT NULL
);
CREATE TABLE IF NOT EXISTS trg_corr_alive (
    id integer PRIMARY KEY CHECK (id = 1),
    at double precision NOT NULL
);
"""

_COLS = ("id, rule, fingerprint, key, state, opened_at, deadline, slots, fired_at, closed_at, reason, unobserved, "
         "late, seq, run_id, event_id")
_DBNOW = "EXTRACT(EPOCH FROM clock_timestamp())::float8"


class PgGroups:
    """Correlation readers and transaction helpers of :class:`~.pgstore.PgStore` (a mixin)."""

    # -- writing --------------------------------------------------------------------------
    def correlation_tx(self, fn: Callable[[Any], Any]) -> Any:
        """``fn(cursor)`` in one transaction, committed on return; run again from its start
        on a deadlock or a serialization failure (``PgStore._rerun``)."""
        def attempt() -> Any:
            with self._tx() as cur:  # type: ignore[attr-defined]
                return fn(cur)
        return self._rerun("could not update the correlation groups", attempt)  # type: ignore[attr-defined]

    @staticmethod
    def db_now(cur: Any) -> float:
        cur.execute(f"SELECT {_DBNOW}")
        return float(cur.fetchone()[0])

    def ingest_in_tx(self, cur: Any, event: Event, intents: list[Intent], manifest: str | None,
                     received_at: float) -> list[int]:
        """Journal an event made inside a transaction (a ``correlation.*`` event) and decide
        its intents' runs there, under their rules' locks (as :meth:`PgStore.ingest` does)."""
        names = list(dict.fromkeys(it.rule for it in intents))
        cur.execute("INSERT INTO trg_events (id, source, type, time, data, delivery_key, matched, received_at, depth) "
                    "VALUES (%s, %s, %s, %s, %s, NULL, %s, %s, %s)",
                    (event.id, event.source, event.type, event.time, dumps(event.data), dumps(names), received_at,
                     int(event.depth)))
        for rule in sorted({it.rule for it in intents if (it.busy != "parallel" or it.debounce) and it.skip is None}):
            self.lock_rule(cur, rule)  # type: ignore[attr-defined]
        ids: list[int] = []
        pools: set[str] = set()
        for it in intents:
            rid = self._decide(cur, event, it, received_at, manifest)  # type: ignore[attr-defined]
            if rid is not None:
                ids.append(rid[0])
                if rid[1] == "queued":
                    pools.add(it.pool)
        for pool in sorted(pools):
            cur.execute("SELECT pg_notify(%s, %s)", (self.notify_runs_channel, pool))  # type: ignore[attr-defined]
        return ids

    @staticmethod
    def prune_groups(cur: Any, older_than: float) -> tuple[int, list[str]]:
        """For ``store prune``: delete the groups closed more than ``older_than`` seconds ago
        and their history; the ids of the events the live groups still need."""
        cur.execute(f"DELETE FROM trg_corr_groups WHERE closed_at IS NOT NULL AND closed_at < {_DBNOW} - %s "
                    "RETURNING id", (older_than,))
        gone = [r[0] for r in cur.fetchall()]
        cur.execute(f"DELETE FROM trg_corr_history WHERE group_id = ANY(%s) OR (group_id IS NULL "
                    f"AND time < {_DBNOW} - %s)", (gone, older_than))
        cur.execute("SELECT slots FROM trg_corr_groups WHERE closed_at IS NULL")
        keep: set[str] = set()
        for (slots,) in cur.fetchall():
            for ref in json.loads(slots).values():
                if ref and isinstance(ref[0], list):
                    keep.update(x[0] for x in ref)
                elif ref:
                    keep.add(ref[0])
        return len(gone), sorted(keep)

    # -- reading ---------------------------------------------------------------------------
    def list_groups(self, limit: int = 50, rule: str | None = None, status: str | None = None,
                    key: str | None = None) -> list[dict[str, Any]]:
        where, args = [], []
        if rule is not None:
            where.append("rule = %s")
            args.append(rule)
        if status is not None:
            states = list(STATUS_STATES.get(status, (status,)))
            where.append("state = ANY(%s)")
            args.append(states)
            if status == "open":
                where.append("closed_at IS NULL")
        sql = f"SELECT {_COLS} FROM trg_corr_groups"
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY seq DESC"
        if key is None:
            sql += " LIMIT %s"
            args.append(max(0, int(limit)))
        with self._conn() as conn:  # type: ignore[attr-defined]
            rows = conn.execute(sql, args).fetchall()
            fired = [r[0] for r in rows if r[4] == "fired"]
            notes: dict[str, list[dict]] = {}
            if fired:
                for h in conn.execute("SELECT group_id, time, action, member, event_id, note FROM trg_corr_history "
                                      "WHERE group_id = ANY(%s) AND action = ANY(%s) ORDER BY id",
                                      (fired, list(NOTE_ACTIONS))).fetchall():
                    notes.setdefault(h[0], []).append(history_dict(h[1:]))
        out = [group_dict(r, notes=notes.get(r[0])) for r in rows]
        if key is not None:
            out = [g for g in out if key_matches(g["keys"], key)][:max(0, int(limit))]
        return out

    def get_group(self, group_id: str) -> dict[str, Any] | None:
        with self._conn() as conn:  # type: ignore[attr-defined]
            r = conn.execute(f"SELECT {_COLS} FROM trg_corr_groups WHERE id = %s", (group_id,)).fetchone()
            if r is None:
                return None
            hist = [history_dict(h) for h in conn.execute(
                "SELECT time, action, member, event_id, note FROM trg_corr_history WHERE group_id = %s ORDER BY id",
                (group_id,)).fetchall()]
        return group_dict(r, hist)

    def groups_of_event(self, event_id: str) -> list[dict[str, Any]]:
        with self._conn() as conn:  # type: ignore[attr-defined]
            rows = conn.execute("SELECT group_id, rule, action, member, note FROM trg_corr_history "
                                "WHERE event_id = %s ORDER BY id", (event_id,)).fetchall()
        return [{"group": g, "rule": r, "action": a, "member": m, "note": n} for g, r, a, m, n in rows]

    def correlation_stats(self) -> dict[str, Any]:
        from ..correlation.clock import iso

        with self._conn() as conn:  # type: ignore[attr-defined]
            opened = dict(conn.execute("SELECT rule, COUNT(*) FROM trg_corr_groups WHERE closed_at IS NULL "
                                       "GROUP BY rule").fetchall())
            refused = dict(conn.execute("SELECT rule, COUNT(*) FROM trg_corr_history WHERE group_id IS NULL "
                                        "AND action = 'refuse' GROUP BY rule").fetchall())
            metas = {r: json.loads(m) for r, m in conn.execute("SELECT rule, meta FROM trg_corr_meta").fetchall()}
            alive = conn.execute("SELECT at FROM trg_corr_alive WHERE id = 1").fetchone()
        rules = sorted(set(opened) | set(refused) | set(metas))
        return {"rules": {r: {"open": opened.get(r, 0), "refused": refused.get(r, 0), "meta": metas.get(r)}
                          for r in rules}, "alive_at": iso(alive[0]) if alive else None}


class PgCorrelationState:
    """The engine's state as rows of the PostgreSQL store (see the module docstring).

    Bound to one transaction's cursor at a time per thread (ingest nodes commit from
    several threads at once)."""

    def __init__(self, aliases: dict[str, list[str]], lock_rule: Callable[[Any, str], None]):
        self.aliases = aliases
        self.lock_rule = lock_rule   # the store's transaction-scoped advisory lock of a rule
        self._local = threading.local()

    # -- binding ----------------------------------------------------------------------------
    def bind(self, cur: Any) -> None:
        self._local.cur = cur
        self._local.locked = set()
        self._local.refused = []

    def unbind(self) -> list[tuple]:
        refused = getattr(self._local, "refused", [])
        self._local.cur = None
        return refused

    @property
    def cur(self) -> Any:
        cur = getattr(self._local, "cur", None)
        if cur is None:  # pragma: no cover - a bug: the engine ran outside a transaction
            raise RuntimeError("the correlation state is used outside a store transaction")
        return cur

    def lock(self, rule: str) -> None:
        locked = self._local.locked
        if rule not in locked:
            self.lock_rule(self.cur, rule)
            locked.add(rule)

    # -- rows ---------------------------------------------------------------------------------
    def _group(self, r: tuple) -> Group:
        (id_, rule, fingerprint, key, state, opened_at, deadline, slots, fired_at, closed_at, reason, unobserved,
         late, seq, run_id, event_id) = r
        aliases = self.aliases.get(rule) or list(json.loads(slots))
        g = Group(id_, rule, tuple(json.loads(key)), opened_at, deadline, slots_list(aliases, slots), seq, state=state,
                  fingerprint=fingerprint)
        g.fired_at, g.closed_at, g.reason, g.unobserved, g.late = fired_at, closed_at, reason, unobserved, late
        g.run = (run_id, event_id) if run_id is not None or event_id is not None else None
        return g

    def _values(self, g: Group) -> tuple:
        aliases = self.aliases.get(g.rule) or [f"m{i}" for i in range(len(g.slots))]
        return (g.id, g.rule, g.fingerprint, dumps(list(g.key)), g.state, g.opened_at, g.deadline,
                slots_json(aliases, g.slots), g.fired_at, g.closed_at, g.reason, g.unobserved, g.late, g.seq,
                g.run[0] if g.run else None, g.run[1] if g.run else None)

    # -- the State protocol ---------------------------------------------------------------------
    def new_id(self) -> str:
        return "grp_" + secrets.token_hex(8)

    def next_seq(self) -> int:
        self.cur.execute("SELECT nextval('trg_corr_seq')")
        return int(self.cur.fetchone()[0])

    def live(self, rule: str, key: tuple) -> Group | None:
        self.lock(rule)
        self.cur.execute(f"SELECT {_COLS} FROM trg_corr_groups WHERE rule = %s AND key = %s AND closed_at IS NULL",
                         (rule, dumps(list(key))))
        r = self.cur.fetchone()
        return None if r is None else self._group(r)

    def live_groups(self, rule: str) -> list[Group]:
        self.lock(rule)
        self.cur.execute(f"SELECT {_COLS} FROM trg_corr_groups WHERE rule = %s AND closed_at IS NULL ORDER BY seq",
                         (rule,))
        return [self._group(r) for r in self.cur.fetchall()]

    def live_rules(self) -> list[str]:
        self.cur.execute("SELECT DISTINCT rule FROM trg_corr_groups WHERE closed_at IS NULL")
        return sorted(r[0] for r in self.cur.fetchall())

    def open_count(self, rule: str) -> int:
        self.lock(rule)
        self.cur.execute("SELECT COUNT(*) FROM trg_corr_groups WHERE rule = %s AND closed_at IS NULL", (rule,))
        return int(self.cur.fetchone()[0])

    def open_total(self) -> int:
        self.cur.execute("SELECT COUNT(*) FROM trg_corr_groups WHERE closed_at IS NULL")
        return int(self.cur.fetchone()[0])

    def add(self, g: Group) -> None:
        self.cur.execute(f"INSERT INTO trg_corr_groups ({_COLS}) VALUES ({', '.join(['%s'] * 16)})", self._values(g))

    def update(self, g: Group) -> None:
        v = self._values(g)
        self.cur.execute("UPDATE trg_corr_groups SET state = %s, opened_at = %s, deadline = %s, slots = %s, "
                         "fired_at = %s, closed_at = %s, reason = %s, unobserved = %s, late = %s, run_id = %s, "
                         "event_id = %s WHERE id = %s",
                         (v[4], v[5], v[6], v[7], v[8], v[9], v[10], v[11], v[12], v[14], v[15], g.id))

    def close(self, g: Group) -> None:
        self.update(g)

    def log(self, g: Group, time: float, action: str, member: str | None, event_id: str | None,
            note: str | None = None) -> None:
        self.cur.execute("INSERT INTO trg_corr_history (group_id, rule, time, action, member, event_id, note) "
                         "VALUES (%s, %s, %s, %s, %s, %s, %s)", (g.id, g.rule, time, action, member, event_id, note))

    def refusal(self, rule: str, time: float, member: str | None, event_id: str | None, note: str) -> None:
        self.cur.execute("INSERT INTO trg_corr_history (group_id, rule, time, action, member, event_id, note) "
                         "VALUES (NULL, %s, %s, 'refuse', %s, %s, %s)", (rule, time, member, event_id, note))

    def next_due(self) -> Group | None:
        for _ in range(100):
            self.cur.execute("SELECT id, rule FROM trg_corr_groups WHERE closed_at IS NULL AND deadline IS NOT NULL "
                             "ORDER BY deadline, seq LIMIT 1")
            r = self.cur.fetchone()
            if r is None:
                return None
            self.lock(r[1])
            self.cur.execute(f"SELECT {_COLS} FROM trg_corr_groups WHERE id = %s AND closed_at IS NULL", (r[0],))
            row = self.cur.fetchone()
            if row is not None:
                return self._group(row)
        return None  # pragma: no cover - groups closing under our feet a hundred times

    def event(self, event_id: str) -> dict | None:
        self.cur.execute("SELECT id, source, type, time, data FROM trg_events WHERE id = %s", (event_id,))
        r = self.cur.fetchone()
        return None if r is None else {"id": r[0], "source": r[1], "type": r[2], "time": r[3], "data": json.loads(r[4])}

    def remember(self, event: Event, time: float) -> None:
        pass   # the store has it

    def meta(self, rule: str) -> dict | None:
        self.cur.execute("SELECT meta FROM trg_corr_meta WHERE rule = %s", (rule,))
        r = self.cur.fetchone()
        return None if r is None else json.loads(r[0])

    def set_meta(self, rule: str, meta: dict | None) -> None:
        if meta is None:
            self.cur.execute("DELETE FROM trg_corr_meta WHERE rule = %s", (rule,))
        else:
            self.cur.execute("INSERT INTO trg_corr_meta (rule, meta) VALUES (%s, %s) ON CONFLICT (rule) "
                             "DO UPDATE SET meta = EXCLUDED.meta", (rule, dumps(meta)))

    def last_closed(self, rule: str, key: tuple) -> Group | None:
        self.cur.execute(f"SELECT {_COLS} FROM trg_corr_groups WHERE rule = %s AND key = %s AND closed_at IS NOT NULL "
                         "ORDER BY closed_at DESC LIMIT 1", (rule, dumps(list(key))))
        r = self.cur.fetchone()
        return None if r is None else self._group(r)


class ClusterCorrelations:
    """The correlation rules of one ingest node (see the module docstring). ``engine`` is the
    :class:`~.cluster.IngestEngine`: its current :class:`~.cluster.Rules` turn a
    ``correlation.*`` event into intents."""

    def __init__(self, engine: Any, manifest: dict, store: Any, *, max_open_groups: int = DEFAULT_MAX_OPEN_GROUPS):
        self.engine = engine
        self.store = store
        self.state = PgCorrelationState({}, store.lock_rule)
        self.corr = Correlator(manifest["rules"], self.state, max_open_groups=max_open_groups)  # type: ignore[arg-type]
        self._set_aliases()
        self._refusal_logged: dict[str, float] = {}
        self._lock = threading.Lock()
        self.closing = False
        self._tasks: list[asyncio.Task] = []

    def _set_aliases(self) -> None:
        self.state.aliases.update({r.name: [m.alias for m in r.members] for r in self.corr.rules})

    @property
    def active(self) -> bool:
        return bool(self.corr.rules)

    def touches(self, event: Event) -> bool:
        return bool(self.corr.index.matches(event))

    # ------------------------------------------------------------------ transactions
    def in_tx(self, event: Event, run_ids: list[int], emitted: list | None = None) -> Callable[[Any], None]:
        """The ``in_tx`` of the event's ingest: admit it, journal what fires (the runs made
        are appended to ``run_ids``; each ``correlation.*`` event journaled and its intents
        to ``emitted``, for the caller to count once the transaction has committed)."""
        def run(cur: Any) -> None:
            del run_ids[:]  # (the ingest's transaction may be run again: PgStore._rerun)
            if emitted is not None:
                del emitted[:]
            cur.execute("SELECT received_at FROM trg_events WHERE id = %s", (event.id,))
            now = float(cur.fetchone()[0])
            self._run(cur, now, lambda: self.corr.submit(event, now, processing=now), run_ids, event.depth, emitted)
        return run

    def _run(self, cur: Any, now: float, step: Callable[[], list[Outcome]], run_ids: list[int],
             cause: int = 0, emitted: list | None = None) -> None:
        self.state.bind(cur)
        try:
            self._apply(cur, step(), now, 0, run_ids, cause, emitted)
        finally:
            self.state.unbind()

    def _apply(self, cur: Any, outs: list[Outcome], now: float, depth: int, run_ids: list[int],
               cause: int = 0, emitted: list | None = None) -> None:
        """Journal what the outcomes emit; a ``correlation.*`` event is one deeper than the
        event that caused it (``cause``; 0 for a deadline), and past ``--max-chain-depth``
        its runs are ``skipped`` (runtime/loops.py)."""
        rules = self.engine.current
        for o in outs:
            if o.action == "refuse":
                self.state.refusal(o.rule, o.time, o.member, o.event_id, o.reason or "refused")
                self._log_refusal(o, now)
            if o.emitted is None:
                continue
            ev = o.emitted
            ev.depth = cause + 1
            intents = self.engine.intents(ev, "default")
            if o.run is not None:
                intents.insert(0, self._fire_intent(rules, o, getattr(self.engine, "max_chain_depth", None)))
            ids = self.store.ingest_in_tx(cur, ev, intents, rules.sha, now)
            run_ids.extend(ids)
            if emitted is not None:
                emitted.append((ev, intents))
            cur.execute("UPDATE trg_corr_groups SET run_id = %s, event_id = %s WHERE id = %s",
                        (ids[0] if (o.run is not None and ids) else None, ev.id, o.group))
            if depth < MAX_CHAIN:
                self._apply(cur, self.corr.submit(ev, now, processing=now), now, depth + 1, run_ids, ev.depth,
                            emitted)

    @staticmethod
    def _fire_intent(rules: Any, o: Outcome, max_depth: int | None = None) -> Intent:
        from ..actions import bind_inputs
        from .loops import depth_reason

        fired = o.run
        too_deep = max_depth is not None and fired.event.depth > max_depth
        pol = rules.policies(fired.rule)
        dedupe = pol.get("dedupe") or None
        return Intent(rule=fired.rule, action=fired.action,
                      inputs=bind_inputs(rules.actions.get(fired.action, {}), fired.inputs),
                      busy=str(pol.get("busy") or "queue"), debounce=None, dedupe_key=fired.dedupe_key,
                      dedupe_field=dedupe["field"] if dedupe else None,
                      dedupe_for=float(dedupe["for"]) if dedupe and dedupe.get("for") else None,
                      timeout=float(pol["timeout"]) if pol.get("timeout") is not None else None,
                      retry=int(pol.get("retry") or 0), backoff=float(pol.get("backoff") or 5.0),
                      skip=depth_reason(fired.event.depth, max_depth) if too_deep else None)

    def _log_refusal(self, o: Outcome, now: float) -> None:
        with self._lock:
            last = self._refusal_logged.get(o.rule)
            if last is not None and now - last < REFUSAL_LOG_INTERVAL:
                return
            self._refusal_logged[o.rule] = now
        log.warning("correlation rule %s: %s; new groups are refused until some close "
                    "(this is logged at most once a minute)", o.rule, o.reason)

    def transaction(self, step: Callable[[float], list[Outcome]]) -> list[int]:
        """``step(now)`` in a transaction of its own (deadlines, start, reload); the runs made."""
        run_ids: list[int] = []
        emitted: list = []

        def run(cur: Any) -> None:
            del run_ids[:], emitted[:]
            now = self.store.db_now(cur)
            self._run(cur, now, lambda: step(now), run_ids, emitted=emitted)
        self.store.correlation_tx(run)
        count = getattr(self.engine, "count", None)
        if count is not None:
            for ev, intents in emitted:
                count(ev, intents)
        return run_ids

    # ------------------------------------------------------------------ start, reload, time
    def start(self) -> None:
        """A node's start, before its sources: sweep changed rules' groups, process past
        deadlines (late, with the unobserved part when every node was down), arm."""
        discarded: list[Outcome] = []

        def sweep(now: float) -> list[Outcome]:
            discarded[:] = self.corr.sweep(now, when=" while serve was stopped")   # (a try run again starts over)
            return discarded

        self.transaction(sweep)
        _log_discards(discarded)

        def begin(now: float) -> list[Outcome]:
            cur = self.state.cur
            cur.execute("SELECT at FROM trg_corr_alive WHERE id = 1 FOR UPDATE")
            row = cur.fetchone()
            alive = row[0] if row else None
            down = (alive, now) if alive is not None and now - alive > 2 * LIVENESS_INTERVAL else None
            cur.execute("INSERT INTO trg_corr_alive (id, at) VALUES (1, %s) ON CONFLICT (id) DO UPDATE SET at = %s",
                        (now, now))
            if down is not None:
                log.info("correlations: no node was running for %.0fs; past deadlines processed", now - alive)
            return self.corr.start(now, downtime=down)

        self.transaction(begin)

    def reload(self, manifest: dict) -> None:
        outs: list[Outcome] = []
        # the rules before: a try PostgreSQL aborted (a deadlock) is run again from its start
        # (PgStore._rerun), and must compare the new rules with these, not with themselves (a
        # renamed rule's groups were then discarded, "rule removed", rather than carried over)
        before = self.corr.by_name

        def step(now: float) -> list[Outcome]:
            self.corr.by_name = before
            for r in manifest["rules"]:   # a renamed rule's groups are written under its new name at once
                if is_correlation(r) and r["name"] not in self.state.aliases:
                    self.state.aliases[r["name"]] = [m["alias"] for m in r["trigger"]["members"]]
            got = self.corr.reload(manifest["rules"], now)
            self._set_aliases()
            outs[:] = got
            return got

        self.transaction(step)
        _log_discards(outs)

    def next_deadline(self) -> float | None:
        def run(cur: Any) -> float | None:
            cur.execute("SELECT MIN(deadline) FROM trg_corr_groups WHERE closed_at IS NULL")
            t = cur.fetchone()[0]
            for r in self.corr.between:
                cur.execute("SELECT meta FROM trg_corr_meta WHERE rule = %s", (r.name,))
                row = cur.fetchone()
                nxt = json.loads(row[0]).get("next_open") if row else None
                if nxt is not None and (t is None or nxt < t):
                    t = nxt
            return t
        with self.store._conn() as conn:
            with conn.cursor() as cur:
                return run(cur)

    async def run(self) -> None:
        """Process deadlines as they come, and keep the liveness row fresh."""
        last_alive = 0.0
        loop = asyncio.get_running_loop()
        while not self.closing:
            try:
                if loop.time() - last_alive >= LIVENESS_INTERVAL:
                    await asyncio.to_thread(self._alive)
                    last_alive = loop.time()
                nxt = await asyncio.to_thread(self.next_deadline)
                now = await asyncio.to_thread(self._now)
                if nxt is not None and nxt <= now:
                    await asyncio.to_thread(self.transaction, lambda t: self.corr.advance(t, processing=t))
                    continue
                wait = POLL if nxt is None else min(POLL, max(0.0, nxt - now) + 0.001)
            except Exception as e:  # the store is down...: the next round may work
                log.error("correlations: %s", e)
                wait = POLL
            await asyncio.sleep(wait)

    def _now(self) -> float:
        with self.store._conn() as conn:
            return float(conn.execute(f"SELECT {_DBNOW}").fetchone()[0])

    def _alive(self) -> None:
        with self.store._conn() as conn:
            conn.execute(f"INSERT INTO trg_corr_alive (id, at) VALUES (1, {_DBNOW}) ON CONFLICT (id) "
                         f"DO UPDATE SET at = {_DBNOW}")

    def start_timers(self) -> None:
        self._tasks.append(asyncio.get_running_loop().create_task(self.run()))

    async def stop(self) -> None:
        self.closing = True
        for t in self._tasks:
            t.cancel()
            try:
                await t
            except (asyncio.CancelledError, Exception):
                pass
        self._tasks.clear()
        try:
            await asyncio.to_thread(self._alive)
        except Exception:  # pragma: no cover - the store may already be closed
            pass

    def stdin_for(self, event: dict) -> dict | None:
        return correlation_stdin(event, self.store.get_group, self.store.get_event)


def _log_discards(outs: list[Outcome]) -> None:
    Correlations._log_discards(outs)


def fire_stdin(store: Any, event: dict) -> dict | None:
    """For a worker: the ``{"correlation": ...}`` of a run whose event is ``correlation.fired``."""
    if event.get("source") != "correlation" or not hasattr(store, "get_group"):
        return None
    return correlation_stdin(event, store.get_group, store.get_event)
