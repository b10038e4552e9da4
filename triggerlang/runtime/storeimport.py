"""``triggerc store import STATE``: a SQLite journal's history into an empty PostgreSQL store.

Moving from the embedded default to PostgreSQL (README, "Running on several machines")
should not cost a team its history or its redelivery protection. The import copies, in
ONE PostgreSQL transaction (all or nothing):

- every event, in journal order, with its delivery key, so a webhook delivered before the
  move and redelivered after it is still answered ``200 duplicate`` by the new store;
- every run with its id (the store's id sequence continues after the largest), status,
  times, inputs, error and re-run link. A run still ``queued`` (a waiting run, a debounced
  one, a retry waiting out its backoff) or ``running`` (the journal of a ``serve`` that
  crashed) cannot go on in the store: its policies (pool, timeout, retry) live in the
  manifest it was queued under, which the workers of the new store would not know. So the
  import refuses such a journal, naming the count: each of those runs was accepted, and
  ``serve`` promises to start it, which one more ``serve`` on the journal does (it runs the
  queued runs, and marks the running ones ``interrupted`` with their retries queued). With
  ``interrupt_unfinished`` (``--interrupt-unfinished``) they are imported ``interrupted``
  with a note instead. Decision: refuse rather than warn, as a move that drops accepted work
  should be asked for by name (as ``git`` asks for ``--force``); a warning after the
  fact is read once the history is already in the new store;
- each run's log file (``<state>/logs/<id>.log``), its last MiB as the store keeps logs;
- the dedupe keys of ``dedupe`` rules (the latest run per rule and key), the audit trail of
  re-runs, cancels, pauses and resumes, and the delivery history.

Not imported: correlation groups (an open group starts over in the new store; the count
of open groups left behind is reported), and the compiled manifests (the store records
the manifest of each ``serve --store`` as it starts).

Decisions: the target store must be empty (no event and no run): merging two histories
would have to renumber runs that logs, audit rows and links name. The state directory's
lock is taken for the whole import, so a ``serve`` still using the journal makes it fail
with the same message as a second ``serve`` would (stop it first). A journal of an older
triggerlang is upgraded in place first, as ``serve`` would on start.
"""

from __future__ import annotations

import os
import sqlite3
import time
from pathlib import Path
from typing import Any

from .store import FINAL_STATUSES, StoreError

INTERRUPTED_NOTE = "not finished when the journal was imported into PostgreSQL"


def import_journal(state_dir: Path, store: Any, interrupt_unfinished: bool = False) -> dict[str, int]:
    """Copy the journal in ``state_dir`` into ``store`` (a :class:`~.pgstore.PgStore`);
    the counts of what was copied. StoreError (one line) on anything a user can fix,
    unfinished runs included unless ``interrupt_unfinished``."""
    from .engine import StartError
    from .journal import DB_NAME, Journal
    from .serve import lock_state_dir

    db = state_dir / DB_NAME
    if not db.is_file():
        raise StoreError(f"there is no journal in {state_dir} (no {DB_NAME})")
    try:
        lock = lock_state_dir(state_dir, "stop it first")
    except StartError as e:
        raise StoreError(str(e)) from None
    try:
        journal = Journal(state_dir)  # the schema upgraded in place
        try:
            journal.materialize_groups()  # the correlation log applied: the open groups counted are all
        finally:
            journal.close()
        src = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
        try:
            if not interrupt_unfinished:
                _refuse_unfinished(src, state_dir)
            return _copy(src, state_dir, store)
        finally:
            src.close()
    finally:
        os.close(lock)


def _refuse_unfinished(src: sqlite3.Connection, state_dir: Path) -> None:
    counts = dict(src.execute("SELECT status, count(*) FROM runs WHERE status IN ('queued', 'running') "
                              "GROUP BY status").fetchall())
    if not counts:
        return
    parts = [f"{counts[s]} {s}" for s in ("queued", "running") if counts.get(s)]
    raise StoreError(
        f"the journal in {state_dir} has {sum(counts.values())} unfinished run(s) ({', '.join(parts)}), accepted "
        f"but not run: start triggerc serve on it once more and let it run them (until triggerc runs --state "
        f"{state_dir} --status queued shows none), stop it, then import; or pass --interrupt-unfinished to "
        f"import them interrupted, never to run")


def _copy(src: sqlite3.Connection, state_dir: Path, store: Any) -> dict[str, int]:
    from .pgstore import PgStore

    counts = {"events": 0, "runs": 0, "interrupted": 0, "logs": 0, "dedupe": 0, "audit": 0, "deliveries": 0,
              "open_groups": 0}
    with store._tx() as cur:
        cur.execute("SELECT (SELECT count(*) FROM trg_events), (SELECT count(*) FROM trg_runs)")
        events, runs = cur.fetchone()
        if events or runs:
            raise StoreError(f"the store {store.describe()} already holds {events} event(s) and {runs} run(s): "
                             f"import into an empty store (triggerc store init on a new database)")
        rows = src.execute("SELECT id, source, type, time, data, delivery_key, matched, received_at, depth "
                           "FROM events ORDER BY rowid").fetchall()
        cur.executemany("INSERT INTO trg_events (id, source, type, time, data, delivery_key, matched, received_at, "
                        "depth) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)", rows)
        counts["events"] = len(rows)

        now = time.time()
        out, logs, dedupe = [], [], {}
        for (rid, rule, action, status, exit_code, inputs, event_id, attempt, dedupe_key, queued_at, started_at,
             finished_at, not_before, error, rerun_of, log_path) in src.execute(
                "SELECT id, rule, action, status, exit_code, inputs, event_id, attempt, dedupe_key, queued_at, "
                "started_at, finished_at, not_before, error, rerun_of, log_path FROM runs ORDER BY id"):
            if status not in FINAL_STATUSES:
                status, finished_at = "interrupted", finished_at or now
                error = f"{error}; {INTERRUPTED_NOTE}" if error else INTERRUPTED_NOTE
                counts["interrupted"] += 1
            out.append((rid, rule, action, status, exit_code, inputs, event_id, attempt, dedupe_key, queued_at,
                        started_at, finished_at, not_before, error, rerun_of))
            if dedupe_key is not None:
                k = (rule, dedupe_key)
                dedupe[k] = max(dedupe.get(k, queued_at), queued_at)
            logs.append((rid, state_dir / (log_path or f"logs/{rid}.log")))
        cur.executemany("INSERT INTO trg_runs (id, rule, action, status, exit_code, inputs, event_id, attempt, "
                        "dedupe_key, queued_at, started_at, finished_at, not_before, error, rerun_of) "
                        "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)", out)
        counts["runs"] = len(out)
        if out:
            cur.execute("SELECT setval(pg_get_serial_sequence('trg_runs', 'id'), %s)", (max(r[0] for r in out),))
        cur.executemany("INSERT INTO trg_dedupe (rule, key, last_at) VALUES (%s, %s, %s)",
                        [(r, k, t) for (r, k), t in sorted(dedupe.items())])
        counts["dedupe"] = len(dedupe)

        for rid, path in logs:
            body, size = _tail(path)
            if body is not None:
                PgStore._put_log(cur, rid, body, size > len(body), size)
                counts["logs"] += 1

        if _has_table(src, "audit"):
            rows = src.execute("SELECT at, actor, action, run_id, new_run_id, rule, detail FROM audit "
                               "ORDER BY id").fetchall()
            cur.executemany("INSERT INTO trg_audit (at, actor, action, run_id, new_run_id, rule, detail) "
                            "VALUES (%s, %s, %s, %s, %s, %s, %s)", rows)
            counts["audit"] = len(rows)
        if _has_table(src, "deliveries"):
            rows = src.execute("SELECT at, route, method, status, verify, reason, latency, remote, delivery_id, "
                               "event_id, trigger, duplicate FROM deliveries ORDER BY id").fetchall()
            cur.executemany("INSERT INTO trg_deliveries (at, route, method, status, verify, reason, latency, remote, "
                            "delivery_id, event_id, trigger, duplicate) "
                            "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
                            [r[:-1] + (bool(r[-1]),) for r in rows])
            counts["deliveries"] = len(rows)
    if _has_table(src, "corr_groups"):
        counts["open_groups"] = src.execute("SELECT count(*) FROM corr_groups WHERE closed_at IS NULL").fetchone()[0]
    return counts


def _tail(path: Path) -> tuple[bytes | None, int]:
    """The last :data:`~.pgstore.LOG_CAP` bytes of a log file and its size; (None, 0) when
    the run has no log file."""
    from .pgstore import LOG_CAP

    try:
        with open(path, "rb") as f:
            size = os.fstat(f.fileno()).st_size
            if size > LOG_CAP:
                f.seek(size - LOG_CAP)
            return f.read(), size
    except FileNotFoundError:
        return None, 0
    except OSError as e:
        raise StoreError(f"cannot read the log {path}: {e.strerror or e}") from None


def _has_table(src: sqlite3.Connection, name: str) -> bool:
    return src.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (name,)).fetchone() is not None
