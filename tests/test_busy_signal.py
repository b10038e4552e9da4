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
        try:
            await events(engine)
        finally:
            await engine.drain(grace=0)   # (stops the app, when the test fails too)

    async def events(engine: Engine) -> None:
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

    asyncio.run(scenario())
    runs = sorted(journal.list_runs(limit=10), key=lambda r: r["id"])
    journal.close()
    assert [(r["status"], r["error"]) for r in runs[1:]] == [
        ("skipped", "busy signal: run 1 was still starting (it starts after this event); no signal sent"),
        ("skipped", "busy signal: sent SIGUSR1 to run 1, still going")]
    assert runs[0]["status"] == "interrupted" and got.read_text() == "USR1\n"


CRASHES_FIRST = """
import os, signal, sys, time
starts, got, ready = sys.argv[1:4]
first = not os.path.exists(starts)
open(starts, "a").write("x")
if first:
    sys.exit(3)   # the server's first start fails: the rule retries it after its backoff
signal.signal(signal.SIGUSR1, lambda n, f: open(got, "a").write("USR1\\n"))
open(ready, "w").close()
while True:
    time.sleep(0.05)
"""


def test_an_event_during_a_retry_backoff_starts_a_run_which_replaces_the_retry(tmp_path: Path) -> None:
    """Before: the event's run started, and the retry, once due, was recorded skipped with
    "sent SIGUSR1 to run 3" and signalled the new run for no change. Now the retry is
    skipped when the newer run starts (the backoff is 30 s: the test does not wait it out)."""
    prog, starts, got, ready = tmp_path / "app.py", tmp_path / "starts", tmp_path / "got", tmp_path / "ready"
    prog.write_text(CRASHES_FIRST)
    argv = " ".join(json.dumps(str(x)) for x in (sys.executable, prog, starts, got, ready))
    c = compile_text(f"action app = exec {argv}\n"
                     "app: on git.push run app busy signal usr1 retry 2 backoff 30s\n", "rules.trg", str(tmp_path))
    assert c.ok, c.diagnostics
    journal = Journal(tmp_path / "state")

    async def until(cond, what: str) -> None:
        deadline = time.monotonic() + 20
        while not cond():
            assert time.monotonic() < deadline, (what, journal.list_runs(limit=10))
            await asyncio.sleep(0.02)

    async def scenario() -> list:
        engine = Engine(c.manifest, journal, {}, tmp_path)
        try:
            engine.record(Event("git", "push", {"branch": "main"}))
            await until(lambda: any(r["attempt"] == 2 for r in journal.list_runs(limit=10)), "the retry to be queued")
            engine.record(Event("git", "push", {"branch": "main"}))   # no process: this run starts now
            await until(ready.exists, "the newer run to be going")
            return list(engine.lane("app").timed)
        finally:
            await engine.drain(grace=0)   # (stops the app, when the test fails too)

    assert asyncio.run(scenario()) == []   # nothing left to come due
    runs = sorted(journal.list_runs(limit=10), key=lambda r: r["id"])
    journal.close()
    assert [(r["id"], r["attempt"], r["status"], r["error"]) for r in runs] == [
        (1, 1, "failed", "exited with code 3"),
        (2, 2, "skipped", "busy signal: run 3, of a newer event, starts instead (it came while this retry "
                          "waited out its backoff, with no process to signal)"),
        (3, 1, "interrupted", runs[2]["error"]),
        (4, 2, "queued", None)]   # (the stop interrupted run 3: retried at the next start)
    assert not got.exists() and starts.read_text() == "xx"
