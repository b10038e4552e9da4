"""Graceful stop with more runs waiting than parallel slots (in process, real subprocesses).

Runs that are waiting for a slot when the stop begins must not start during the drain:
they stay ``queued`` in the journal for the next ``serve``; the one running is stopped
after the grace period and marked ``interrupted``.
"""

import asyncio
import time
from pathlib import Path

from triggerlang.api import compile_text
from triggerlang.events import Event
from triggerlang.runtime.engine import Engine
from triggerlang.runtime.journal import Journal

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
