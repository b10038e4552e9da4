"""The SQLite journal: atomic records, duplicates, recovery after a crash, listings, errors."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest

from triggerlang.events import Event
from triggerlang.runtime.store import iso_utc
from triggerlang.runtime.journal import (
    SCHEMA_VERSION,
    Journal,
    JournalError,
    PlannedRun,
    Recorded,
)


@pytest.fixture
def journal(tmp_path: Path):
    j = Journal(tmp_path / "state")
    yield j
    j.close()


def ev(i: int = 0, source: str = "git", type: str = "push") -> Event:
    return Event(source=source, type=type, data={"branch": "main", "i": i})


def raw(path: Path, sql: str, *args):
    conn = sqlite3.connect(path)
    try:
        return conn.execute(sql, args).fetchall()
    finally:
        conn.close()


def test_creates_state_dir_database_and_logs_in_wal_mode(tmp_path: Path):
    state = tmp_path / "a" / "b" / ".triggerlang"
    with Journal(state) as j:
        assert j.journal_mode == "wal"
        assert (state / "journal.sqlite3").is_file()
        assert (state / "logs").is_dir()
        assert j.run_log_path(7) == state / "logs" / "7.log"
    db = state / "journal.sqlite3"
    assert raw(db, "PRAGMA journal_mode")[0][0] == "wal"
    assert raw(db, "PRAGMA user_version")[0][0] == SCHEMA_VERSION


def test_a_second_store_opened_in_the_process_keeps_the_first_ones_locks(tmp_path: Path):
    """serve's dashboard opens the journal per request in serve's own process. POSIX locks
    belong to the process and go with any close of the file: opening the existing database
    file outside SQLite (to set its mode) dropped serve's locks, so the next `triggerc runs`
    to close took the file as unused and deleted the WAL under serve, whose later commits
    no other process saw (`logs -f` never ended, `runs -f` printed no new run)."""
    state = tmp_path / "state"
    with Journal(state) as serve:
        serve.record_event(ev(1), [PlannedRun("r", "a", {})])
        Journal(state).close()  # a dashboard request
        reader = [sys.executable, "-c", "import sqlite3, sys; c = sqlite3.connect(sys.argv[1]); "
                  "print(c.execute('SELECT count(*) FROM events').fetchone()[0]); c.close()",
                  str(state / "journal.sqlite3")]
        assert subprocess.run(reader, capture_output=True, text=True, check=True).stdout == "1\n"  # a CLI
        assert (state / "journal.sqlite3-wal").exists()
        serve.record_event(ev(2), [PlannedRun("r", "a", {})])
        assert subprocess.run(reader, capture_output=True, text=True, check=True).stdout == "2\n"
    assert os.stat(state / "journal.sqlite3").st_mode & 0o777 == 0o600


def test_record_event_writes_event_and_runs_together(journal: Journal):
    e = ev()
    rec = journal.record_event(e, [PlannedRun("deploy_main", "deploy", {"sha": "abc"}),
                                   PlannedRun("notify", "ping", {"msg": "hi"})], delivery_key="gh:1")
    assert rec == Recorded(e.id, rec.run_ids, False)
    assert len(rec.run_ids) == 2 and rec.run_ids[0] < rec.run_ids[1]
    got = journal.get_event(e.id)
    assert got["matched"] == ["deploy_main", "notify"]
    assert got["data"] == e.data and got["time"] == e.time and got["runs"] == rec.run_ids
    assert Event.from_json(got).to_json() == e.to_json()
    run = journal.get_run(rec.run_ids[0])
    assert run["status"] == "queued" and run["inputs"] == {"sha": "abc"} and run["event_id"] == e.id
    assert run["attempt"] == 1 and run["started_at"] is None and run["duration"] is None
    assert run["queued_at"].endswith("Z")
    assert run["log_path"] == str(journal.run_log_path(rec.run_ids[0]))


def test_record_event_is_committed_before_it_returns(journal: Journal):
    e = ev()
    rec = journal.record_event(e, [PlannedRun("r", "a", {})])
    # Another connection (another process would be the same) sees it at once.
    assert raw(journal.path, "SELECT id FROM events") == [(e.id,)]
    assert raw(journal.path, "SELECT id, status FROM runs") == [(rec.run_ids[0], "queued")]


def test_record_event_is_atomic(journal: Journal):
    class Unserialisable:
        def __str__(self):
            raise RuntimeError("boom")

    e = ev()
    with pytest.raises(RuntimeError):
        journal.record_event(e, [PlannedRun("ok", "a", {}), PlannedRun("bad", "a", {"x": Unserialisable()})])
    assert journal.get_event(e.id) is None
    assert journal.list_runs() == []
    with pytest.raises(ValueError):
        journal.record_event(e, [PlannedRun("ok", "a", {}), PlannedRun("bad", "a", {}, status="nope")])
    assert journal.list_events() == [] and journal.list_runs() == []
    # The journal is still usable afterwards.
    assert journal.record_event(e, [PlannedRun("ok", "a", {})]).run_ids


def test_duplicate_delivery_key_writes_nothing(journal: Journal):
    first = journal.record_event(ev(1), [PlannedRun("r", "a", {"n": 1})], delivery_key="gh:42")
    again = journal.record_event(ev(2), [PlannedRun("r", "a", {"n": 2})], delivery_key="gh:42")
    assert again.duplicate and again.event_id == first.event_id and again.run_ids == first.run_ids
    assert len(journal.list_events()) == 1 and len(journal.list_runs()) == 1
    other = journal.record_event(ev(3), [PlannedRun("r", "a", {})], delivery_key="gh:43")
    assert not other.duplicate
    # Events without a key never collide with each other.
    journal.record_event(ev(4), [])
    journal.record_event(ev(5), [])
    assert len(journal.list_events()) == 4


def test_same_event_id_twice_is_a_duplicate(journal: Journal):
    e = ev()
    first = journal.record_event(e, [PlannedRun("r", "a", {})])
    again = journal.record_event(e, [PlannedRun("r", "a", {})])
    assert again == Recorded(e.id, first.run_ids, True)
    assert len(journal.list_runs()) == 1


def test_matched_includes_rules_without_a_run_yet_and_skipped_runs(journal: Journal):
    e = ev()
    rec = journal.record_event(e, [PlannedRun("a", "x", {}), PlannedRun("a", "x", {}),
                                   PlannedRun("b", "y", {}, status="skipped", error="busy skip")],
                               matched=["debounced", "a"])
    assert journal.get_event(e.id)["matched"] == ["a", "b", "debounced"]
    skipped = journal.get_run(rec.run_ids[2])
    assert skipped["status"] == "skipped" and skipped["error"] == "busy skip"
    assert skipped["finished_at"] is not None


def test_run_lifecycle(journal: Journal):
    rid = journal.record_event(ev(), [PlannedRun("r", "a", {})]).run_ids[0]
    assert journal.mark_running(rid) is True
    assert journal.mark_running(rid) is False  # no longer queued
    run = journal.get_run(rid)
    assert run["status"] == "running" and run["started_at"]
    journal.mark_finished(rid, "failed", 3, "exited with code 3")
    run = journal.get_run(rid)
    assert (run["status"], run["exit_code"], run["error"]) == ("failed", 3, "exited with code 3")
    assert run["duration"] is not None and run["duration"] >= 0
    with pytest.raises(ValueError):
        journal.mark_finished(rid, "running", None)
    with pytest.raises(ValueError):
        journal.set_status(rid, "exploded")
    with pytest.raises(KeyError):
        journal.mark_finished(9999, "succeeded", 0)
    with pytest.raises(KeyError):
        journal.mark_running(9999)


def test_start_run_marks_running_and_returns_the_row(journal: Journal):
    e = ev(7)
    rec = journal.record_event(e, [PlannedRun("r", "a", {"sha": "abc"}), PlannedRun("s", "b", {})])
    assert json.loads(rec.data_json) == e.data  # what was written, for the engine to reuse
    rid, other = rec.run_ids
    row = journal.start_run(rid)
    assert row is not None and (row.id, row.rule, row.action, row.inputs) == (rid, "r", "a", {"sha": "abc"})
    assert row.status == "running" and row.started_at is not None and row.event_id == e.id
    assert journal.get_run(rid)["status"] == "running"
    assert journal.start_run(rid) is None  # no longer queued
    journal.set_status(other, "cancelled", "busy restart")
    assert journal.start_run(other) is None
    assert journal.get_run(other)["status"] == "cancelled"
    assert journal.start_run(9999) is None
    assert journal.record_event(e, []).data_json is None  # a duplicate writes nothing


def test_set_status_cancels_a_queued_run(journal: Journal):
    rid = journal.record_event(ev(), [PlannedRun("r", "a", {})]).run_ids[0]
    journal.set_status(rid, "cancelled", "replaced by a newer run (busy restart)")
    run = journal.get_run(rid)
    assert run["status"] == "cancelled" and run["finished_at"] and "busy restart" in run["error"]
    assert journal.mark_running(rid) is False
    assert journal.queued_runs() == []


def test_add_run_for_retry_and_debounce(journal: Journal):
    e = ev()
    rec = journal.record_event(e, [PlannedRun("r", "a", {"k": 1}, dedupe_key="abc")])
    row = journal.run_row(rec.run_ids[0])
    later = time.time() + 30
    retry = journal.add_run(row.planned(), e.id, attempt=2, not_before=later)
    r = journal.run_row(retry)
    assert (r.status, r.attempt, r.inputs, r.dedupe_key, r.event_id) == ("queued", 2, {"k": 1}, "abc", e.id)
    assert r.not_before == pytest.approx(later)
    assert journal.get_event(e.id)["runs"] == [rec.run_ids[0], retry]
    assert [q.id for q in journal.queued_runs()] == [rec.run_ids[0], retry]


def test_last_run_with_key_ignores_skipped_runs(journal: Journal):
    assert journal.last_run_with_key("r", "abc") is None
    t0 = time.time()
    journal.record_event(ev(1), [PlannedRun("r", "a", {}, dedupe_key="abc")])
    t1 = journal.last_run_with_key("r", "abc")
    assert t1 is not None and t0 - 1 <= t1 <= time.time() + 1
    journal.record_event(ev(2), [PlannedRun("r", "a", {}, dedupe_key="abc", status="skipped",
                                            error="dedupe: abc ran 0s ago")])
    assert journal.last_run_with_key("r", "abc") == t1
    assert journal.last_run_with_key("other", "abc") is None
    assert journal.last_run_with_key("r", "xyz") is None


def test_list_runs_newest_first_with_filters_and_paging(journal: Journal):
    ids = []
    for i in range(10):
        rule = "even" if i % 2 == 0 else "odd"
        ids += journal.record_event(ev(i), [PlannedRun(rule, "a", {"i": i})]).run_ids
    journal.mark_running(ids[3])
    journal.mark_finished(ids[3], "succeeded", 0)
    assert [r["id"] for r in journal.list_runs()] == ids[::-1]
    assert [r["id"] for r in journal.list_runs(limit=3)] == ids[::-1][:3]
    assert [r["inputs"]["i"] for r in journal.list_runs(rule="even")] == [8, 6, 4, 2, 0]
    assert [r["id"] for r in journal.list_runs(status="succeeded")] == [ids[3]]
    assert [r["id"] for r in journal.list_runs(limit=2, before_id=ids[5])] == [ids[4], ids[3]]
    keys = set(journal.list_runs(limit=1)[0])
    assert {"id", "rule", "action", "status", "exit_code", "inputs", "event_id", "queued_at", "started_at",
            "finished_at", "attempt", "duration", "log_path", "error"} <= keys
    json.dumps(journal.list_runs())  # JSON-ready


def test_list_events_newest_first(journal: Journal):
    events = [ev(i, source="git" if i % 3 else "http") for i in range(7)]
    for e in events:
        journal.record_event(e, [PlannedRun("r", "a", {})] if e.source == "git" else [])
    got = journal.list_events()
    assert [g["id"] for g in got] == [e.id for e in reversed(events)]
    assert [g["id"] for g in journal.list_events(limit=2)] == [events[6].id, events[5].id]
    https = journal.list_events(source="http")
    assert [g["id"] for g in https] == [events[6].id, events[3].id, events[0].id]
    assert all(g["matched"] == [] for g in https)
    assert set(got[0]) >= {"id", "source", "type", "time", "matched", "data"}
    assert journal.get_event("evt_nope") is None and journal.get_run(12345) is None


def test_recover_after_reopen(tmp_path: Path):
    state = tmp_path / "s"
    j = Journal(state)
    a, b, c, d = (j.record_event(ev(i), [PlannedRun(f"r{i}", "x", {"i": i})]).run_ids[0] for i in range(4))
    j.mark_running(a)
    j.mark_running(c)
    j.mark_running(d)
    j.mark_finished(d, "succeeded", 0)
    j.close()  # (a crash leaves the same rows: see the kill -9 test below)

    j2 = Journal(state)
    rec = j2.recover()
    assert [r.id for r in rec.interrupted] == [a, c]
    assert all(r.status == "interrupted" for r in rec.interrupted)
    assert [r.id for r in rec.queued] == [b]
    assert rec.queued[0].inputs == {"i": 1} and rec.queued[0].rule == "r1"
    assert j2.get_run(a)["status"] == "interrupted" and j2.get_run(a)["finished_at"]
    assert j2.get_run(d)["status"] == "succeeded"
    # A second recover finds nothing new to interrupt.
    assert j2.recover().interrupted == []
    j2.close()


def test_recover_after_kill_9(tmp_path: Path):
    state = tmp_path / "s"
    script = textwrap.dedent(f"""
        import os, signal, sys
        sys.path.insert(0, {str(Path(__file__).resolve().parents[1])!r})
        from triggerlang.events import Event
        from triggerlang.runtime.journal import Journal, PlannedRun
        j = Journal({str(state)!r})
        ids = []
        for i in range(5):
            ids += j.record_event(Event("git", "push", {{"i": i}}), [PlannedRun("r", "a", {{"i": i}})]).run_ids
        j.mark_running(ids[0]); j.mark_running(ids[1])
        print(ids, flush=True)
        os.kill(os.getpid(), signal.SIGKILL)
    """)
    p = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert p.returncode == -9, p.stderr
    ids = json.loads(p.stdout)
    with Journal(state) as j:
        rec = j.recover()
        assert [r.id for r in rec.interrupted] == ids[:2]
        assert [r.id for r in rec.queued] == ids[2:]
        assert len(j.list_events()) == 5


def test_unwritable_state_dir(tmp_path: Path):
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o500)
    try:
        if os.access(ro, os.W_OK):
            pytest.skip("running with privileges that make a 0500 directory writable")
        with pytest.raises(JournalError, match="not writable|cannot create"):
            Journal(ro)
        with pytest.raises(JournalError, match="cannot create the state directory"):
            Journal(ro / "sub" / "state")
    finally:
        ro.chmod(0o700)


def test_state_dir_cannot_be_created(tmp_path: Path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(JournalError, match="cannot create the state directory"):
        Journal(blocker / "state")


def test_state_dir_is_a_file(tmp_path: Path):
    f = tmp_path / "state"
    f.write_text("x")
    with pytest.raises(JournalError, match="not a directory"):
        Journal(f)


def test_corrupt_database_file(tmp_path: Path):
    state = tmp_path / "s"
    state.mkdir()
    (state / "journal.sqlite3").write_bytes(b"this is not a database at all\x00\xff" * 200)
    with pytest.raises(JournalError) as info:
        Journal(state)
    msg = str(info.value)
    assert "not a valid SQLite database" in msg and "\n" not in msg
    assert info.value.__cause__ is None and info.value.__suppress_context__


def test_newer_schema_is_refused(tmp_path: Path):
    state = tmp_path / "s"
    Journal(state).close()
    raw(state / "journal.sqlite3", "PRAGMA user_version = 99")
    with pytest.raises(JournalError, match="newer triggerlang"):
        Journal(state)


def test_locked_database(tmp_path: Path):
    state = tmp_path / "s"
    Journal(state).close()
    holder = sqlite3.connect(state / "journal.sqlite3", isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    try:
        with Journal(state, busy_timeout=0.2) as j:
            with pytest.raises(JournalError, match="locked by another process"):
                j.record_event(ev(), [PlannedRun("r", "a", {})])
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    with Journal(state) as j:
        assert j.record_event(ev(), []).event_id


def test_closed_journal_raises(tmp_path: Path):
    j = Journal(tmp_path / "s")
    j.close()
    j.close()
    with pytest.raises(JournalError, match="closed"):
        j.list_runs()


def test_threads_share_one_journal(journal: Journal):
    errors: list[BaseException] = []

    def work(n: int) -> None:
        try:
            for i in range(100):
                rec = journal.record_event(ev(i), [PlannedRun(f"t{n}", "a", {"i": i})], delivery_key=f"{n}:{i}")
                journal.mark_running(rec.run_ids[0])
                journal.mark_finished(rec.run_ids[0], "succeeded", 0)
                journal.list_runs(limit=5)
        except BaseException as e:  # pragma: no cover - reported below
            errors.append(e)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors
    assert len(journal.list_runs(limit=1000, status="succeeded")) == 400


def test_throughput_over_1000_events_per_second(journal: Journal):
    n = 2000
    start = time.perf_counter()
    for i in range(n):
        journal.record_event(ev(i), [PlannedRun("r", "a", {"i": i})], delivery_key=f"k{i}")
    elapsed = time.perf_counter() - start
    assert n / elapsed > 1000, f"{n / elapsed:.0f} events/s"


def test_a_journal_of_schema_1_is_upgraded_in_place(tmp_path: Path) -> None:
    """A journal written before issue 14 gains the event depth, re-run links, the audit
    trail and the delivery history when a newer triggerlang opens it; its rows stay."""
    import sqlite3

    from triggerlang.runtime import journal as journal_module

    state = tmp_path / "state"
    (state / "logs").mkdir(parents=True)
    conn = sqlite3.connect(state / "journal.sqlite3")
    for stmt in journal_module._SCHEMA.split(";"):  # the schema 1 tables, as an old serve made them
        if stmt.strip():
            conn.execute(stmt)
    conn.execute("INSERT INTO events (id, source, type, time, data, matched, received_at) "
                 "VALUES ('evt_old', 'git', 'push', 't', '{\"sha\":\"abc\"}', '[\"d\"]', 1.0)")
    conn.execute("INSERT INTO runs (rule, action, status, inputs, event_id, queued_at, finished_at) "
                 "VALUES ('d', 'deploy', 'succeeded', '{}', 'evt_old', 1.0, 2.0)")
    conn.execute("PRAGMA user_version = 1")
    conn.commit()
    conn.close()
    with Journal(state) as j:
        assert j.get_event("evt_old")["depth"] == 0
        assert j.get_run(1)["rerun_of"] is None and j.get_run(1)["status"] == "succeeded"
        new = j.rerun(1, "tester")
        assert new.rerun_of == 1 and j.list_audit(run_id=1)[0]["action"] == "rerun"
        j.record_deliveries([{"at": 3.0, "route": "/github", "method": "POST", "status": 401, "verify": "failed"}], 10)
        assert j.list_deliveries("/github")[0]["status"] == 401
    assert raw(state / "journal.sqlite3", "PRAGMA user_version")[0][0] == SCHEMA_VERSION


def test_deliveries_keep_the_newest_of_each_route(tmp_path: Path) -> None:
    with Journal(tmp_path / "s") as j:
        rows = [{"at": float(i), "route": "/a" if i % 2 else "/b", "method": "POST", "status": 202, "verify": "ok",
                 "latency": 0.001 * i} for i in range(10)]
        j.record_deliveries(rows, keep=3)
        assert [d["at"] for d in j.list_deliveries("/a")] == [iso_utc(9.0), iso_utc(7.0), iso_utc(5.0)]
        assert len(j.list_deliveries("/b")) == 3 and len(j.list_deliveries()) == 6
        j.record_deliveries([{"at": 10.0, "route": "/b", "method": "POST", "status": 413, "verify": "skipped",
                              "reason": "body of 20 bytes is over the limit"}], keep=3)
        newest = j.list_deliveries("/b")
        assert len(newest) == 3 and newest[0]["status"] == 413 and newest[0]["reason"].startswith("body of")


def test_cancel_and_rerun_are_journaled(tmp_path: Path) -> None:
    with Journal(tmp_path / "s") as j:
        rec = j.record_event(Event("http", "post", {}), [PlannedRun("r", "a", {"x": 1}), PlannedRun("r", "a", {})])
        first, second = rec.run_ids
        with pytest.raises(ValueError, match="only a run that has ended"):
            j.rerun(first, "me")
        assert j.cancel(first, "me", "cancelled by me") == "queued"
        assert j.get_run(first)["status"] == "cancelled" and j.get_run(first)["error"] == "cancelled by me"
        j.mark_running(second)
        assert j.cancel(second, "me", "why") == "running"  # the engine stops it and records the end
        assert j.get_run(second)["status"] == "running"
        with pytest.raises(ValueError, match="already ended"):
            j.cancel(first, "me", "again")
        with pytest.raises(KeyError):
            j.cancel(99, "me", "x")
        again = j.rerun(first, "you")
        assert again.status == "queued" and again.inputs == {"x": 1} and again.attempt == 1
        assert [(a["action"], a["actor"], a["new_run_id"]) for a in j.list_audit(run_id=first)] == [
            ("cancel", "me", None), ("rerun", "you", again.id)]
        assert j.run_counts() == {"r": {"queued": 1, "running": 1}}


def test_the_checkpoint_count_is_of_checkpoints_that_copied_something(tmp_path: Path) -> None:
    # serve's stop line said "33 writes in 29 commits ..., 393 checkpoints": the checkpoint
    # thread counted its looks at the WAL (4 a second), idle or not
    import asyncio

    from runtime_helpers import wait_for

    async def scenario() -> tuple[int, int, int]:
        j = Journal(tmp_path / "state")
        j.start_group_commit(checkpoint_interval=0.01)
        cp = j._gc.checkpointer
        try:
            wait_for(lambda: cp.looks >= 20, "twenty looks at an idle WAL")
            idle = cp.checkpoints
            for i in range(3):   # three commits, each checkpointed before the next
                j.record_event(ev(i), [PlannedRun("r", "a", {})])
                await j.flush()
                seen = cp.looks
                wait_for(lambda: cp.looks >= seen + 2, "the checkpointer to look at the commit")
            busy = cp.checkpoints
            seen = cp.looks
            wait_for(lambda: cp.looks >= seen + 20, "twenty more looks, idle")
            return idle, busy, cp.checkpoints
        finally:
            j.close()

    idle, busy, after = asyncio.run(scenario())
    assert idle == 0
    assert busy == 3
    assert after == 3


def test_gathered_paths_fold_into_folders_past_the_budget() -> None:
    from triggerlang.runtime.store import GatheredPaths

    small = GatheredPaths(["a", "a/b.py", "c", "a/b.py"])
    assert small.list() == ["a", "a/b.py", "c"] and not small.folded    # under the budget: as seen
    g = GatheredPaths([f"src/pkg{i % 3}/sub/m{i}.py" for i in range(600)] + ["docs/x.md"], budget=200)
    assert g.folded and g.list() == ["src/pkg0/sub", "src/pkg1/sub", "src/pkg2/sub", "docs/x.md"]
    g.add(["src/pkg1/sub/new.py", "src/other.py"])                    # covered: not added; new: added
    assert g.list() == ["src/pkg0/sub", "src/pkg1/sub", "src/pkg2/sub", "docs/x.md", "src/other.py"]
    assert len(json.dumps(g.list(), separators=(",", ":"))) <= g.size <= 200  # (size: a bound)
    flat = GatheredPaths([f"f{i}.py" for i in range(100)], budget=50)  # nothing left to fold into but the root
    assert flat.list() == ["."]
    flat.add(["x/y.py"])
    assert flat.list() == ["."]
    # the bytes of TRG_INPUT_PATHS count, ASCII: "\u00e9" is 8 bytes, 11 with [] and ","
    assert GatheredPaths(["é/ü.py"], budget=11).list() == ["é"]
    assert GatheredPaths(["é/ü.py"], budget=10).list() == ["."]


def test_a_run_a_crash_interrupted_ends_when_serve_was_last_seen_not_at_the_next_start(tmp_path: Path) -> None:
    """Before: a run left 'running' by a kill -9 was marked interrupted with the time the
    next start found it, so its duration counted the downtime (an hour's downtime: an
    hour more). It ends when the crashed serve was last seen going (its alive stamp), and a
    serve stamps it while it runs."""
    import asyncio

    from runtime_helpers import wait_for
    from triggerlang.runtime.journal import ALIVE_NAME

    alive = tmp_path / "state" / ALIVE_NAME

    async def serve_for_a_while() -> int:
        j = Journal(tmp_path / "state")
        j.start_group_commit()
        try:
            (rid,) = j.record_event(ev(1), [PlannedRun("r", "a", {})]).run_ids
            j.mark_running(rid)
            await j.flush()
            wait_for(alive.exists, "the alive stamp")
            return rid
        finally:
            j.close()

    rid = asyncio.run(serve_for_a_while())
    now = time.time()
    with sqlite3.connect(tmp_path / "state" / "journal.sqlite3") as db:  # it started an hour ago...
        db.execute("UPDATE runs SET started_at = ? WHERE id = ?", (now - 3600, rid))
    os.utime(alive, (now - 3590, now - 3590))   # ...and serve was last seen 10 s later, then died
    j = Journal(tmp_path / "state")
    try:
        (row,) = j.recover().interrupted
        assert row.duration == pytest.approx(10, abs=0.01)
        stored = j.get_run(rid)
        assert stored["status"] == "interrupted" and stored["duration"] == pytest.approx(10, abs=0.01), stored
    finally:
        j.close()
