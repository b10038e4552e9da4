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
