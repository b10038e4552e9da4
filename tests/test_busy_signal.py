"""``busy signal`` in the one-process engine (in process, a real subprocess): the decision
for a run that arrives while the rule's run is still starting, and one that arrives once
it is going. The end-to-end test (a real ``serve`` on file changes) is in test_runtime.py."""

import asyncio
import json
import sys
import time
from pathlib import Path

from triggerlang.api import compile_text
from triggerlang.events import Event
from triggerlang.runtime.engine import Engine
from triggerlang.runtime.journal import Journal

APP = """
import signal, sys, time
signal.signal(signal.SIGUSR1, lambda n, f: open(sys.argv[1], "a").write("USR1\\n"))
open(sys.argv[2], "w").close()
while True:
    time.sleep(0.05)
"""


def test_a_run_still_starting_is_not_signalled_and_a_going_one_is(tmp_path: Path) -> None:
    prog, got, ready = tmp_path / "app.py", tmp_path / "got", tmp_path / "ready"
    prog.write_text(APP)
    c = compile_text(f"action app = exec {json.dumps(sys.executable)} {json.dumps(str(prog))} "
                     f"{json.dumps(str(got))} {json.dumps(str(ready))}\n"
                     "app: on git.push run app busy signal usr1\n", "rules.trg", str(tmp_path))
    assert c.ok, c.diagnostics
    journal = Journal(tmp_path / "state")

    def push() -> Event:  # (a new event each time: one event id is journaled once)
        return Event("git", "push", {"branch": "main"})

    async def scenario() -> None:
        engine = Engine(c.manifest, journal, {}, tmp_path)
        # two events in one loop pass: the first run's process is not spawned yet when the
        # second comes, so the second is skipped without a signal (the first starts after it)
        engine.record(push())
        engine.record(push())
        deadline = time.monotonic() + 20
        while not ready.exists():
            assert time.monotonic() < deadline, journal.list_runs(limit=10)
            await asyncio.sleep(0.02)
        engine.record(push())   # the first run is going: it gets SIGUSR1, and no run starts
        while not (got.exists() and got.read_text()):
            assert time.monotonic() < deadline, journal.list_runs(limit=10)
            await asyncio.sleep(0.02)
        await engine.drain(grace=0)

    asyncio.run(scenario())
    runs = sorted(journal.list_runs(limit=10), key=lambda r: r["id"])
    journal.close()
    assert [(r["status"], r["error"]) for r in runs[1:]] == [
        ("skipped", "busy signal: run 1 was still starting (it starts after this event); no signal sent"),
        ("skipped", "busy signal: sent SIGUSR1 to run 1, still going")]
    assert runs[0]["status"] == "interrupted" and got.read_text() == "USR1\n"
