#!/usr/bin/env python3
"""File write -> run start latency of ``triggerc serve`` (p50, p99), and where it goes.

For each debounce setting, starts ``triggerc serve`` with one rule::

    action noop(p) = exec "true"
    w: on file.created path ~ "src/**" run noop with <path> debounce 10ms

then, ~100 times, one after another: writes a new file under ``src/``, notes the wall
time once it is closed, and waits (polling the journal) for the run of that path to have
started. The journal's own timestamps split the latency in three:

- **watch**: write -> the event is journaled (``events.received_at``): the OS notification
  plus the file source's batching (watchfiles waits for ``step`` = 5 ms of quiet, or
  ``debounce`` = 50 ms at most, before it hands over a batch);
- **debounce**: the rule's own quiet period (``runs.not_before - runs.queued_at``);
- **start**: ``not_before`` -> ``runs.started_at`` (timer, lane, journal write; the process
  is spawned right after ``started_at`` is written).

total = ``runs.started_at`` - write time.

**git push -> run start** (``--pushes N``, default 30): a bare repository ``origin.git``
beside the rules, a clone of it, and the rule
``on git.push repo="origin.git" branch="main" run noop with <sha>``; each time, a commit
in the clone and ``git push`` (the wall time noted when ``git push`` returns), then the
run of that sha awaited. Split: **detect** = push returned -> event journaled (the git
source polls the refs' stat signature every 0.25 s, then runs ``git`` to describe the
change), **start** = journaled -> run started. Usage::

    .venv/bin/python bench/latency.py [--writes 100] [--debounce 10ms,100ms] [--pushes 30] [--tags 300]

``--tags N``: ``git push --tags`` of N new tags (half annotated, on ten commits) to the
watched bare repository; the time from the push's return to the last tag event journaled.

Prints a markdown table. Not part of the test suite.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as _dt
import json
import os
import platform
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Iterator

ROOT = Path(__file__).resolve().parents[1]
DEADLINE = 30.0

RULES = """\
action noop(p) = exec "true"
w: on file.created path ~ "src/**" run noop with <path>{policy}
"""


def pct(values: list[float], p: int) -> float:
    if len(values) < 2:
        return values[0] if values else float("nan")
    return statistics.quantiles(values, n=100, method="inclusive")[p - 1]


@contextlib.contextmanager
def serving(d: Path) -> Iterator[sqlite3.Connection]:
    """``triggerc serve d/rules.trg`` until the block ends; a read-only connection to its
    journal. ``--max-retriggers 0``: a write every ~50 ms, each right after a run, is what a
    rule re-triggering itself looks like to loop protection (runtime/loops.py), which would
    pause the rule after 20 of them."""
    log = open(d / "serve.log", "ab")
    proc = subprocess.Popen([sys.executable, "-m", "triggerlang.cli", "serve", str(d / "rules.trg"),
                             "--state", str(d / "state"), "--no-reload", "--max-retriggers", "0"],
                            stdout=log, stderr=log, stdin=subprocess.DEVNULL, cwd=ROOT)
    try:
        end = time.monotonic() + DEADLINE
        while "INFO serving " not in (d / "serve.log").read_text():
            if proc.poll() is not None or time.monotonic() > end:
                raise RuntimeError("serve did not start:\n" + (d / "serve.log").read_text())
            time.sleep(0.02)
        db = sqlite3.connect(f"file:{d / 'state' / 'journal.sqlite3'}?mode=ro", uri=True, timeout=30)
        try:
            yield db
        finally:
            db.close()
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(60)
        log.close()


def started_run(db: sqlite3.Connection, columns: str, inputs: dict[str, str]) -> tuple:
    """``columns`` of the run with these inputs (``r``: runs, ``e``: its event), once started."""
    key = json.dumps(inputs, separators=(",", ":"))
    end = time.monotonic() + DEADLINE
    while True:
        row = db.execute(f"SELECT {columns} FROM runs r JOIN events e ON e.id = r.event_id "
                         "WHERE r.inputs = ? AND r.started_at IS NOT NULL", (key,)).fetchone()
        if row is not None:
            return row
        if time.monotonic() > end:
            raise RuntimeError(f"no run for {inputs} after {DEADLINE:.0f}s")
        time.sleep(0.002)


def measure(debounce: str, writes: int, gap: float) -> dict[str, list[float]]:
    with tempfile.TemporaryDirectory(prefix="trg-latency-") as tmp:
        d = Path(tmp)
        (d / "src").mkdir()
        policy = f" debounce {debounce}" if debounce != "default" else ""
        (d / "rules.trg").write_text(RULES.format(policy=policy))
        out: dict[str, list[float]] = {"total": [], "watch": [], "debounce": [], "start": []}
        with serving(d) as db:
            for i in range(writes):
                rel = f"src/f{i:04d}.txt"
                with open(d / rel, "w") as f:
                    f.write("x" * 100)
                t_write = time.time()
                queued, not_before, started, received = started_run(
                    db, "r.queued_at, r.not_before, r.started_at, e.received_at", {"p": rel})
                not_before = not_before if not_before is not None else queued
                out["total"].append((started - t_write) * 1000)
                out["watch"].append((received - t_write) * 1000)
                out["debounce"].append((not_before - queued) * 1000)
                out["start"].append((started - not_before) * 1000)
                time.sleep(gap)  # let the previous run finish: one run per write, no overlap
    return out


GIT_RULES = """\
action noop(p) = exec "true"
p: on git.push repo="origin.git" branch="main" run noop with <sha>
"""


def _git(cwd: Path, *args: str) -> str:
    env = {**os.environ, "GIT_AUTHOR_NAME": "bench", "GIT_AUTHOR_EMAIL": "bench@example.org",
           "GIT_COMMITTER_NAME": "bench", "GIT_COMMITTER_EMAIL": "bench@example.org", "GIT_TERMINAL_PROMPT": "0"}
    return subprocess.run(["git", *args], cwd=cwd, env=env, check=True, capture_output=True, text=True).stdout.strip()


def _origin(d: Path) -> Path:
    """A bare ``d/origin.git`` and its clone ``d/work`` (returned) on branch main."""
    _git(d, "init", "-q", "--bare", "-b", "main", "origin.git")
    _git(d, "clone", "-q", "origin.git", "work")
    work = d / "work"
    _git(work, "checkout", "-q", "-b", "main")
    return work


def measure_git(pushes: int, gap: float) -> dict[str, list[float]]:
    """git push -> run start, ``pushes`` times (see the module docstring)."""
    with tempfile.TemporaryDirectory(prefix="trg-latency-git-") as tmp:
        d = Path(tmp)
        work = _origin(d)
        (work / "f.txt").write_text("0\n")
        _git(work, "add", "f.txt")
        _git(work, "commit", "-q", "-m", "first")
        _git(work, "push", "-q", "origin", "main")
        (d / "rules.trg").write_text(GIT_RULES)
        out: dict[str, list[float]] = {"total": [], "detect": [], "start": []}
        with serving(d) as db:
            time.sleep(1.0)  # the git source's first snapshot (the baseline, no event) is taken
            for i in range(pushes):
                (work / "f.txt").write_text(f"{i + 1}\n")
                _git(work, "commit", "-q", "-am", f"change {i + 1}")
                sha = _git(work, "rev-parse", "HEAD")
                _git(work, "push", "-q", "origin", "main")
                t_push = time.time()
                started, received = started_run(db, "r.started_at, e.received_at", {"p": sha})
                out["total"].append((started - t_push) * 1000)
                out["detect"].append((received - t_push) * 1000)
                out["start"].append((started - received) * 1000)
                time.sleep(gap)
    return out


TAG_RULES = """\
action noop(p) = exec "true"
t: on git.tag repo="origin.git" tag ~ "never/*" run noop with <sha>
"""


def measure_tags(tags: int) -> float:
    """``git push --tags`` of ``tags`` new tags (half annotated) -> the last of their events
    journaled, in ms (the describing, one event per tag, is what is timed)."""
    with tempfile.TemporaryDirectory(prefix="trg-latency-tags-") as tmp:
        d = Path(tmp)
        work = _origin(d)
        for i in range(10):
            (work / "f.txt").write_text(f"{i}\n")
            _git(work, "add", "f.txt")
            _git(work, "commit", "-q", "-m", f"c{i}")
            for j in range(i * tags // 10, (i + 1) * tags // 10):
                _git(work, "tag", *(["-a", "-m", f"t{j}"] if j % 2 else []), f"v{j}")
        _git(work, "push", "-q", "origin", "main")
        (d / "rules.trg").write_text(TAG_RULES)
        with serving(d) as db:
            time.sleep(1.0)  # the git source's first snapshot (the baseline, no event) is taken
            _git(work, "push", "-q", "origin", "--tags")
            t_push = time.time()
            end = time.monotonic() + 120
            while True:
                n, last = db.execute("SELECT COUNT(*), MAX(received_at) FROM events WHERE type = 'tag'").fetchone()
                if n >= tags:
                    return (last - t_push) * 1000
                if time.monotonic() > end:
                    raise RuntimeError(f"{n} tag events of {tags} after 120 s")
                time.sleep(0.01)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--writes", type=int, default=100)
    ap.add_argument("--debounce", default="10ms,default", help="comma-separated; 'default' is the file rules' 100ms")
    ap.add_argument("--gap", type=float, default=0.05, help="seconds between a run's start and the next write")
    ap.add_argument("--pushes", type=int, default=30, help="git pushes to time (0: none)")
    ap.add_argument("--tags", type=int, default=0, help="time one `git push --tags` of this many tags (0: none)")
    args = ap.parse_args()
    try:
        cpu = next(line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                   if line.startswith("model name"))
    except (OSError, StopIteration):
        cpu = "unknown CPU"
    print(f"\nMachine: {os.cpu_count()} x {cpu}; {platform.platform()}; Python {platform.python_version()}  \n"
          f"Date: {_dt.date.today().isoformat()}  \nWrites: {args.writes} new files, one at a time\n")
    print("| debounce | total p50 | total p99 | watch p50 | watch p99 | debounce p50 | start p50 | start p99 |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for deb in [x.strip() for x in args.debounce.split(",") if x.strip()]:
        r = measure(deb, args.writes, args.gap)
        print(f"| {deb} | {pct(r['total'], 50):.1f} ms | {pct(r['total'], 99):.1f} ms "
              f"| {pct(r['watch'], 50):.1f} ms | {pct(r['watch'], 99):.1f} ms "
              f"| {pct(r['debounce'], 50):.1f} ms | {pct(r['start'], 50):.1f} ms | {pct(r['start'], 99):.1f} ms |",
              flush=True)
    if args.pushes > 0:
        r = measure_git(args.pushes, args.gap)
        print(f"\ngit push -> run start, {args.pushes} pushes to a watched bare repository:\n")
        print("| total p50 | total p99 | detect p50 | detect p99 | start p50 | start p99 |")
        print("|---:|---:|---:|---:|---:|---:|")
        print(f"| {pct(r['total'], 50):.1f} ms | {pct(r['total'], 99):.1f} ms | {pct(r['detect'], 50):.1f} ms "
              f"| {pct(r['detect'], 99):.1f} ms | {pct(r['start'], 50):.1f} ms | {pct(r['start'], 99):.1f} ms |",
              flush=True)
    if args.tags > 0:
        print(f"\ngit push --tags of {args.tags} tags -> the last tag event journaled: "
              f"{measure_tags(args.tags):.0f} ms", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
