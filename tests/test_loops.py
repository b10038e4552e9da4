"""Loop protection of the one-process engine (runtime/loops.py): a file change that comes
while a rule's run goes, or within SETTLE seconds after it ended, re-triggered it. In
process, with real subprocesses."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

from triggerlang.api import compile_text
from triggerlang.events import Event
from triggerlang.runtime.engine import Engine
from triggerlang.runtime.journal import Journal
from triggerlang.runtime import loops

RULES = '''
action quick = exec "true"
r: on file.changed path ~ "**" run quick
'''


def _changes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, wall_step: float, pause: float) -> dict:
    """Four changes, each ``pause`` seconds (monotonic) after the run of the one before
    ended, the wall clock stepped by ``wall_step`` just after each run; the paused rules."""
    c = compile_text(RULES, "rules.trg", str(tmp_path))
    assert c.ok, c.diagnostics
    journal = Journal(tmp_path / "state")
    real_time, shift = time.time, [0.0]
    monkeypatch.setattr(time, "time", lambda: real_time() + shift[0])

    async def scenario() -> dict:
        engine = Engine(c.manifest, journal, {}, tmp_path, max_retriggers=2)
        for i in range(4):
            await engine.submit(Event("file", "modified", {"path": f"f{i}", "name": f"f{i}", "ext": "",
                                                           "change": "modified"}))
            end = time.monotonic() + 20
            while sum(r["status"] in ("succeeded", "skipped") for r in journal.list_runs(limit=10)) < i + 1:
                assert time.monotonic() < end, journal.list_runs(limit=10)
                await asyncio.sleep(0.01)
            shift[0] += wall_step  # an NTP correction, say
            await asyncio.sleep(pause)
        return engine.loops.paused()

    try:
        return asyncio.run(scenario())
    finally:
        journal.close()


def test_a_change_right_after_each_run_pauses_the_rule(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert list(_changes(tmp_path, monkeypatch, wall_step=0.0, pause=0.0)) == ["r"]


def test_a_change_after_the_settle_does_not_count_even_when_the_wall_clock_steps_back(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # the settle was measured on the wall clock: set back an hour, every later change
    # looked as if it came within a second of the run's end. (A settle of 0.2 s, not the
    # 1 s default: four pauses past it, not four seconds of waiting; the wall clock's step
    # dwarfs either.)
    monkeypatch.setattr(loops, "SETTLE", 0.2)
    assert _changes(tmp_path, monkeypatch, wall_step=-3600.0, pause=loops.SETTLE + 0.3) == {}


def test_a_change_within_the_settle_counts_even_when_the_wall_clock_steps_forward(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert list(_changes(tmp_path, monkeypatch, wall_step=3600.0, pause=0.0)) == ["r"]
