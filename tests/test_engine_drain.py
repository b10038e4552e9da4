"""Graceful stop with more runs waiting than parallel slots (in process, real subprocesses).

Runs that are waiting for a slot when the stop begins must not start during the drain:
they stay ``queued`` in the journal for the next ``serve``; the one running is stopped
after the grace period and marked ``interrupted``.
"""

import asyncio
import time
from pathlib import Path
from typing import Any

from triggerlang.api import compile_text
from triggerlang.events import Event
from triggerlang.runtime.engine import Engine
from triggerlang.runtime.journal import Journal, JournalError

RULES = '''
action slow = exec "sleep" "30"
r: on git.push run slow busy parallel
'''


def test_drain_leaves_waiting_runs_queued_and_interrupts_the_running_one(tmp_path: Path) -> None:
    c = compile_text(RULES, "rules.trg", str(tmp_path))
    assert c.ok, c.diagnostics
    journal = Journal(tmp_path / "state")

    async def scenario() -> float:
        engine = Engine(c.manifest, journal, {}, tmp_path, max_parallel=1)
        for _ in range(5):
            await engine.submit(Event("git", "push", {"branch": "main"}))
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if [r["status"] for r in journal.list_runs(limit=10)].count("running") == 1:
                break
            await asyncio.sleep(0.05)
        t0 = time.monotonic()
        await engine.drain(grace=0.5)
        return time.monotonic() - t0

    took = asyncio.run(scenario())
    statuses = sorted(r["status"] for r in journal.list_runs(limit=10))
    journal.close()
    assert statuses == ["interrupted", "queued", "queued", "queued", "queued"]
    assert took < 15


DEBOUNCED_RETRY = '''
action fail = exec "false"
r: on git.push run fail debounce 5s retry 2 backoff 60s
'''


def test_a_retry_waiting_at_a_crash_is_not_taken_for_the_debounce_window(tmp_path: Path) -> None:
    """Before: at the start after a crash, every queued run with a not_before of a debounced
    rule was taken for its debounce window's run, a retry waiting out its backoff too. The
    next event then moved that retry and rebound it to itself: the failed event's retry
    was lost. The retry is kept for its event, and the next event opens a window of its own."""
    from triggerlang.runtime.store import PlannedRun

    c = compile_text(DEBOUNCED_RETRY, "rules.trg", str(tmp_path))
    assert c.ok, c.diagnostics
    journal = Journal(tmp_path / "state")
    first = journal.record_event(Event("git", "push", {"branch": "main", "sha": "a"}),
                                 [PlannedRun("r", "fail", {})])
    (run1,) = first.run_ids
    journal.mark_running(run1)
    journal.mark_finished(run1, "failed", 1)
    retry = journal.add_run(PlannedRun("r", "fail", {}), first.event_id, attempt=2, not_before=time.time() + 60)
    # (serve was killed here: the retry waits in the journal)

    async def scenario() -> None:
        engine = Engine(c.manifest, journal, {}, tmp_path)
        engine.recover()
        assert engine.lane("r").debounce_run is None
        await engine.submit(Event("git", "push", {"branch": "main", "sha": "b"}))
        await engine.drain(grace=0.1)

    asyncio.run(scenario())
    runs = {r["id"]: r for r in journal.list_runs(limit=10)}
    journal.close()
    assert runs[retry]["event_id"] == first.event_id and runs[retry]["status"] == "queued"
    assert len(runs) == 3  # the failed run, its retry, and the new event's debounced run


def refuse_log_opens(monkeypatch, times: int | None) -> list:
    """A run's log file cannot be opened (ENOSPC) the first ``times`` times (None: ever);
    the paths refused."""
    import errno

    from triggerlang.runtime import executor

    real_open, refused = executor._open_append, []

    def open_append(path, *a, **kw):
        if times is None or len(refused) < times:
            refused.append(path)
            raise OSError(errno.ENOSPC, "No space left on device", str(path))
        return real_open(path, *a, **kw)

    monkeypatch.setattr(executor, "_open_append", open_append)
    monkeypatch.setattr(executor, "_spawner_for", lambda req: None)  # the log opened here, not in the spawner
    return refused


def test_a_run_whose_log_could_not_be_opened_starts_again_though_its_requeue_was_rolled_back(
        tmp_path: Path, monkeypatch) -> None:
    """On a full disk, a run whose log file could not be opened (ENOSPC) is put back
    (``running`` -> ``queued``) and started again a second later. That requeue is written in
    the open batch, which the same full disk may roll back: the run was then still
    ``running`` in the journal, its next start found it "no longer queued", and it was
    dropped, never run, ``running`` until the next serve (the disk-full fault test caught
    it: 8 of 9 accepted runs ended). It starts again either way."""
    c = compile_text('action ok = exec "true"\nr: on git.push run ok\n', "rules.trg", str(tmp_path))
    assert c.ok, c.diagnostics
    journal = Journal(tmp_path / "state")
    monkeypatch.setattr(journal, "requeue", lambda run_id: None)  # the batch holding it rolled back
    refused = refuse_log_opens(monkeypatch, 1)

    async def scenario() -> int:
        engine = Engine(c.manifest, journal, {}, tmp_path)
        (rid,) = (await engine.submit(Event("git", "push", {"branch": "main", "sha": "a"}))).runs
        deadline = time.monotonic() + 20
        while journal.get_run(rid)["status"] != "succeeded" and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        await engine.drain(grace=0.1)
        return rid

    rid = asyncio.run(scenario())
    run = journal.get_run(rid)
    journal.close()
    assert refused and run["status"] == "succeeded", (refused, run)


QUEUE_RETRY = 'action ok = exec "true"\nr: on git.push run ok busy queue retry 1\n'


def queued_runs(tmp_path: Path, shas: str) -> tuple[Journal, list[int]]:
    """A journal with one run of QUEUE_RETRY's rule per sha, queued in that order."""
    from triggerlang.runtime.store import PlannedRun

    journal = Journal(tmp_path / "state")
    return journal, [journal.record_event(Event("git", "push", {"branch": "main", "sha": s}),
                                          [PlannedRun("r", "ok", {})]).run_ids[0] for s in shas]


def recover_and_run(tmp_path: Path, journal: Journal) -> tuple[list, dict, list]:
    """Start QUEUE_RETRY's rules on the journal (a start after a crash), run all, stop:
    (event id, attempt) of the succeeded runs in the order they started, the event id of
    each run id, and the runs."""
    c = compile_text(QUEUE_RETRY, "rules.trg", str(tmp_path))
    assert c.ok, c.diagnostics

    async def scenario() -> None:
        engine = Engine(c.manifest, journal, {}, tmp_path)
        engine.recover()
        assert await engine.wait_idle(20)
        await engine.drain(grace=0.1)

    asyncio.run(scenario())
    runs = journal.list_runs(limit=10)
    journal.close()
    started = [(r["event_id"], r["attempt"]) for r in sorted(runs, key=lambda r: r["started_at"] or 0)
               if r["status"] == "succeeded"]
    return started, {r["id"]: r["event_id"] for r in runs}, runs


def test_an_interrupted_runs_retry_starts_before_the_runs_accepted_after_it(tmp_path: Path) -> None:
    """Before: at the start after a crash (or a stop) the retry of the interrupted run of a
    busy queue rule was a new run queued behind the rule's runs accepted after the one it
    repeats, so they ran first. The retry keeps its place: made by the start (a crash) or
    by the stop, it starts first, then the others in their order."""
    from triggerlang.runtime.store import PlannedRun

    journal, ids = queued_runs(tmp_path, "abc")
    journal.mark_running(ids[0])   # serve was killed while run a went; b and c wait
    by_stop = journal.add_run(PlannedRun("r", "ok", {}), journal.get_run(ids[1])["event_id"], attempt=2)
    journal.mark_running(ids[1])
    journal.mark_finished(ids[1], "interrupted", None)   # (a stop interrupted b and queued its retry)

    started, event, runs = recover_and_run(tmp_path, journal)
    assert started == [(event[ids[0]], 2), (event[by_stop], 2), (event[ids[2]], 1)], runs


def test_a_run_put_back_then_cancelled_is_forgotten(tmp_path: Path, monkeypatch) -> None:
    """A run put back because its log could not be opened (Engine._requeued), then cancelled
    before its next start, was kept in _requeued for good."""
    c = compile_text('action ok = exec "true"\nr: on git.push run ok\n', "rules.trg", str(tmp_path))
    journal = Journal(tmp_path / "state")
    refuse_log_opens(monkeypatch, None)

    async def scenario() -> set:
        engine = Engine(c.manifest, journal, {}, tmp_path)
        (rid,) = (await engine.submit(Event("git", "push", {"branch": "main", "sha": "a"}))).runs
        deadline = time.monotonic() + 20
        while rid not in engine._requeued and time.monotonic() < deadline:
            await asyncio.sleep(0.01)
        assert rid in engine._requeued
        assert engine.cancel(rid, "tester") == "cancelled"
        await engine.drain(grace=0.1)
        return engine._requeued

    assert asyncio.run(scenario()) == set()
    journal.close()


def test_a_retry_whose_start_fails_on_the_journal_keeps_its_place(tmp_path: Path, monkeypatch) -> None:
    """Before: the retry of an interrupted run of a busy queue rule whose start could not be
    journaled (a full disk) waited a second apart, and the run accepted after the one it
    repeats started meanwhile (then the retry, by its id, after it). The lane keeps it at
    its head and starts nothing else until it is tried again."""
    from triggerlang.runtime import engine as engine_mod

    journal, ids = queued_runs(tmp_path, "ab")
    journal.mark_running(ids[0])   # serve was killed while run a went; b waits
    monkeypatch.setattr(engine_mod, "JOURNAL_RETRY", 0.05)
    real_start, refused = journal.start_run, []

    def start_run(run_id: int, **kw):
        if not refused:   # the first start (the retry's): the disk is full
            refused.append(run_id)
            raise JournalError("the disk is full")
        return real_start(run_id, **kw)

    monkeypatch.setattr(journal, "start_run", start_run)

    started, event, runs = recover_and_run(tmp_path, journal)
    assert refused and refused[0] not in ids, refused   # (the retry's start was the one refused)
    assert started == [(event[ids[0]], 2), (event[ids[1]], 1)], runs


def test_a_delivery_that_comes_as_the_journal_closes_at_a_stop_gets_503(tmp_path: Path) -> None:
    """Before: a request that reached the engine after a stop had closed the SQLite journal
    got 500 (JournalError "is closed": a bug, says a 500). The journal going away is no fault
    of the request, and the restarted server takes it: 503 with Retry-After, as a full disk.
    The stop's state is driven directly (the journal closed under a started HTTP source),
    not raced."""
    import httpx

    from triggerlang.sources.base import SourceContext
    from triggerlang.sources.http import HttpSource

    c = compile_text('action ok = exec "true"\nr: on http.post path="/h" run ok\n', "rules.trg", str(tmp_path))
    assert c.ok, c.diagnostics
    journal = Journal(tmp_path / "state")

    async def scenario() -> tuple[httpx.Response, httpx.Response, httpx.Response]:
        engine = Engine(c.manifest, journal, {}, tmp_path)
        journal.start_group_commit()
        ctx = SourceContext(tmp_path, tmp_path / "state", engine.submit, options={"port": 0},
                            submit_then=engine.submit_then)
        source = HttpSource(c.manifest["sources"].get("http") or {}, ctx)
        await source.start()
        try:
            async with httpx.AsyncClient(base_url=source.url, timeout=30.0) as client:
                before = await client.post("/h", json={"n": 1})
                engine.closing = True
                journal.close()   # the stop's state: the journal closed, the listener still up
                fast = await client.post("/h", json={"n": 2})          # submit_then (the lean front end)
                ctx.submit_then = None
                slow = await client.post("/h", json={"n": 3})          # the awaited submit
            return before, fast, slow
        finally:
            await source.stop()

    before, fast, slow = asyncio.run(scenario())
    assert before.status_code == 202, before.text
    for r in (fast, slow):
        assert r.status_code == 503, (r.status_code, r.text)
        assert r.headers["Retry-After"] == "10" and "try again later" in r.json()["error"], (r.headers, r.text)
    reopened = Journal(tmp_path / "state")
    assert [e["data"]["payload"] for e in reopened.list_events(limit=10)] == [{"n": 1}]
    reopened.close()


LEFT = '''
action slow = exec "sleep" "30"
r: on git.push run slow
q: on git.push run slow
'''


def test_runs_a_killed_serve_left_running_say_so_and_whether_their_process_is_still_going(tmp_path: Path) -> None:
    """Before: the start after a kill -9 logged 'recovered: 2 run(s) interrupted by the last
    stop', and the runs' error was 'the runtime stopped while the run was going', as after a
    clean stop, which leaves no run running. What is known is said: serve stopped without
    ending them (killed or crashed), when it was last seen going, and whether each run's
    process is still going (found by its stdout, the run's log), in the line, each run's
    error and its log's last line."""
    import os
    import subprocess

    from triggerlang.runtime.journal import ALIVE_NAME, PlannedRun
    from triggerlang.runtime.store import iso_utc

    c = compile_text(LEFT, "rules.trg", str(tmp_path))
    assert c.ok, c.diagnostics
    journal = Journal(tmp_path / "state")
    going, gone = (journal.record_event(Event("git", "push", {"branch": "main"}), [PlannedRun(r, "slow", {})]).run_ids[0]
                   for r in ("r", "q"))
    for rid in (going, gone):
        journal.mark_running(rid)
        journal.run_log_path(rid).parent.mkdir(parents=True, exist_ok=True)
        journal.run_log_path(rid).write_bytes(f"\x01# run {rid} rule r action slow attempt 1: exec sleep 30\n".encode())
    with open(journal.run_log_path(going), "ab") as out:   # what the killed serve's run left going
        proc = subprocess.Popen(["sleep", "30"], stdout=out, start_new_session=True)
    journal.close()
    alive = tmp_path / "state" / ALIVE_NAME
    alive.touch()
    seen = time.time() - 5
    os.utime(alive, (seen, seen))
    try:
        journal = Journal(tmp_path / "state")

        async def start() -> Any:
            engine = Engine(c.manifest, journal, {}, tmp_path)
            try:
                return engine.recover()
            finally:
                await engine.drain(grace=0)

        rec = asyncio.run(start())
        runs = {r["id"]: r for r in journal.list_runs(limit=10)}
        logs = {rid: journal.run_log_path(rid).read_text().splitlines()[-1] for rid in (going, gone)}
        journal.close()
    finally:
        proc.kill()
        proc.wait()
    at = iso_utc(seen)
    why = f"serve stopped without ending this run (killed or crashed); last seen going at {at}; "
    assert runs[going]["status"] == "interrupted" and runs[going]["error"] == why + f"its process is still going (pid {proc.pid})"
    assert runs[gone]["error"] == why + "its process was not found (it ended, or was stopped)"
    assert logs == {going: f"\x01# run {going} interrupted: {runs[going]['error']}",
                    gone: f"\x01# run {gone} interrupted: {runs[gone]['error']}"}
    assert rec.line() == (f"recovered: 2 run(s) left running by a serve that stopped without ending them (killed "
                          f"or crashed; last seen going at {at}), marked interrupted; still going: run {going} "
                          f"(pid {proc.pid}); 0 queued run(s) restarted")
