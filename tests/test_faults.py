"""Faults, load and attacks against a real ``triggerc serve`` process (issue 5).

Every test here starts ``python -m triggerlang.cli serve`` as a subprocess on an ephemeral
loopback port with its own ``--state`` folder, talks to it over HTTP, reads its SQLite
journal directly, and reads its log (stderr) at the end. Nothing is mocked.

- load: 1,000 signed webhooks at 32-way concurrency: all 202, all journaled, all run;
- crash: ``kill -9`` in the middle of a burst, restart on the same state folder: every
  event answered 202 is in the journal and its run completes (at-least-once);
- start-up faults: an unwritable state folder, a locked or corrupt journal, a second
  ``serve`` on the same state folder, an unset secret: exit 1, one clear line, no traceback;
- a full disk (a small tmpfs, root only): 503 "try again later", nothing accepted is lost, and
  the same server accepts again once there is room;
- secrets: a sentinel secret value never appears in the log, the manifest, the journal
  or the run logs;
- ``POST /events`` from a real non-loopback address: 403;
- symlinks out of the watch root: no event;
- payload strings with ``$(...)``, backticks, ``;`` and newlines: plain argv, nothing run;
- processes: a timeout kills the whole process group and leaves no zombie; SIGTERM marks
  a running run ``interrupted`` and exits 0.

Synchronisation is by polling with deadlines (the journal, the log, files), never by a
bare sleep. The load figure is printed (run with ``-s``) and recorded in bench/README.md.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import json
import os
import re
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any, Callable, Iterator

import httpx
import pytest

from runtime_helpers import kill_tagged, tagged
from triggerlang.runtime.executor import group_alive

FIXTURES = Path(__file__).resolve().parents[2] / "shared" / "fixtures" / "webhooks"
GH_SECRET = "faults-gh-" + uuid.uuid4().hex
START_TIMEOUT = 60.0


def push_body(i: int = 0) -> bytes:
    p = FIXTURES / "github" / "push-plain.json"
    if p.is_file():
        return p.read_bytes()
    return json.dumps({"ref": "refs/heads/main", "before": "0" * 40, "after": f"{i:040x}",
                       "repository": {"full_name": "o/r"}, "commits": [], "head_commit": None}).encode()


def signed(body: bytes, secret: str = GH_SECRET, event: str = "push", delivery: str | None = None) -> dict[str, str]:
    return {"Content-Type": "application/json", "X-GitHub-Event": event,
            "X-GitHub-Delivery": delivery or str(uuid.uuid4()),
            "X-Hub-Signature-256": "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()}


def wait_for(pred: Callable[[], Any], timeout: float, what: str, interval: float = 0.05) -> Any:
    """Poll ``pred`` until it returns something truthy; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = pred()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(interval)


# --------------------------------------------------------------------------- the daemon

class Serve:
    """One ``triggerc serve`` subprocess; its combined output goes to a log file."""

    count = 0

    def __init__(self, rules: Path, state: Path, env: dict[str, str] | None = None, *args: str,
                 port: bool = True) -> None:
        Serve.count += 1
        self.log = rules.parent / f"serve-{Serve.count}.log"
        cmd = [sys.executable, "-m", "triggerlang.cli", "serve", str(rules), "--state", str(state), "--no-reload",
               *(["--port", "0"] if port else []), *args]
        full_env, self.tag = tagged({**os.environ, "NO_COLOR": "1", **(env or {})})  # (close finds its runs by it)
        with open(self.log, "wb") as out:
            self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                                         env=full_env, cwd=rules.parent)
        self.pid = self.proc.pid
        self.port: int | None = None

    def output(self) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace")

    def wait_ready(self, timeout: float = START_TIMEOUT) -> "Serve":
        def ready() -> bool:
            out = self.output()
            if "serving " in out:
                return True
            if self.proc.poll() is not None:
                raise AssertionError(f"serve exited with {self.proc.returncode}:\n{out}")
            return False
        wait_for(ready, timeout, "serve to start")
        m = re.search(r"http: listening on http://\S+:(\d+)", self.output())
        self.port = int(m.group(1)) if m else None
        return self

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def wait_exit(self, timeout: float = 60.0) -> int:
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(10)
            raise AssertionError(f"serve did not exit within {timeout:.0f}s:\n{self.output()[-3000:]}") from None

    def stop(self, timeout: float = 60.0) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        return self.wait_exit(timeout)

    def kill9(self) -> None:
        os.kill(self.pid, signal.SIGKILL)
        self.proc.wait(30)

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(30)
        kill_tagged(self.tag)  # the runs a killed serve left (runtime_helpers.SERVE_TAG)


@pytest.fixture
def daemons() -> Iterator[list[Serve]]:
    started: list[Serve] = []
    yield started
    for s in started:
        s.close()


def start(daemons: list[Serve], rules: Path, state: Path, env: dict[str, str] | None = None, *args: str) -> Serve:
    s = Serve(rules, state, env, *args)
    daemons.append(s)
    return s.wait_ready()


def expect_start_failure(rules: Path, state: Path, env: dict[str, str] | None = None, *args: str,
                         timeout: float = 60.0) -> str:
    s = Serve(rules, state, env, *args)
    try:
        rc = s.wait_exit(timeout)
    finally:
        s.close()
    out = s.output()
    assert rc == 1, (rc, out)
    assert "Traceback" not in out, out
    errors = [ln for ln in out.splitlines() if " ERROR " in ln]
    assert errors, out
    return out


def journal(state: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(str(state / "journal.sqlite3"), timeout=30)
    conn.execute("PRAGMA busy_timeout = 30000")
    return conn


def q(state: Path, sql: str, *args: Any) -> list[tuple]:
    conn = journal(state)
    try:
        return conn.execute(sql, args).fetchall()
    finally:
        conn.close()


def run_counts(state: Path) -> dict[str, int]:
    return dict(q(state, "SELECT status, COUNT(*) FROM runs GROUP BY status"))


def rules_file(tmp_path: Path, text: str, name: str = "rules.trg") -> Path:
    p = tmp_path / name
    p.write_text(text, encoding="utf-8")
    return p


GH_RULES = """\
secret gh = env "FAULTS_GH_SECRET"
source github path="/github" secret=gh
"""
ENV = {"FAULTS_GH_SECRET": GH_SECRET}


async def blast(url: str, bodies: list[tuple[bytes, dict[str, str]]], concurrency: int,
                on_answer: Callable[[int], None] | None = None) -> list[tuple[int | None, dict | None]]:
    """POST every (body, headers) at ``concurrency`` connections; (status, json) or (None, None)."""
    results: list[tuple[int | None, dict | None]] = [(None, None)] * len(bodies)
    it = iter(range(len(bodies)))
    answered = 0
    errors: list[str] = []
    # a fresh connection per webhook, as GitHub and GitLab deliver them (and no keep-alive race)
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=0)
    async with httpx.AsyncClient(base_url=url, timeout=60, limits=limits) as client:
        async def worker() -> None:
            nonlocal answered
            for i in it:
                body, headers = bodies[i]
                try:
                    r = await client.post("/github", content=body, headers=headers)
                    results[i] = (r.status_code, r.json())
                except (httpx.HTTPError, ValueError) as e:
                    errors.append(f"{type(e).__name__}: {e}")
                    continue
                answered += 1
                if on_answer:
                    on_answer(answered)
        await asyncio.gather(*(worker() for _ in range(concurrency)))
    if errors:
        print(f"\n{len(errors)} request(s) failed: {sorted(set(errors))[:5]}")
    return results


# --------------------------------------------------------------------------- load

def test_load_1000_webhooks_at_32_way_concurrency(tmp_path: Path, daemons: list[Serve]) -> None:
    rules = rules_file(tmp_path, GH_RULES + 'action ok = exec "true"\nhook: on github.push run ok busy parallel\n')
    state = tmp_path / "state"
    srv = start(daemons, rules, state, ENV)
    n, conc = 1000, 32
    body = push_body()
    reqs = [(body, signed(body)) for _ in range(n)]
    t0 = time.perf_counter()
    results = asyncio.run(blast(srv.url, reqs, conc))
    elapsed = time.perf_counter() - t0
    statuses = [s for s, _ in results]
    assert statuses == [202] * n, {s: statuses.count(s) for s in set(statuses)}
    ids = {j["event_id"] for _, j in results}
    assert len(ids) == n
    assert all(len(j["runs"]) == 1 for _, j in results)
    # all journaled: answered 202 means committed, so this holds the moment the burst ends
    assert q(state, "SELECT COUNT(*) FROM events WHERE source = 'github'")[0][0] == n
    assert {r[0] for r in q(state, "SELECT id FROM events")} == ids
    # all run
    wait_for(lambda: run_counts(state).get("succeeded") == n, 300, f"{n} runs to succeed")
    assert run_counts(state) == {"succeeded": n}
    rps = n / elapsed
    print(f"\nLOAD: {n} signed GitHub webhooks, {conc}-way concurrency: {elapsed:.2f}s, {rps:.0f} requests/s "
          f"(all 202, all journaled); {os.cpu_count()} CPUs")
    assert srv.stop() == 0
    out = srv.output()
    assert "Traceback" not in out and " ERROR " not in out, out[-3000:]


# --------------------------------------------------------------------------- crash

RECORD_SH = """#!/bin/sh
# one line per run that really started: the event and the run
echo "$TRG_EVENT_ID $TRG_RUN_ID" >> "$RAN_FILE"
sleep 0.05
"""


def test_kill_9_mid_burst_then_restart_loses_nothing_answered(tmp_path: Path, daemons: list[Serve]) -> None:
    script = tmp_path / "record.sh"
    script.write_text(RECORD_SH)
    script.chmod(0o755)
    ran = tmp_path / "ran.txt"
    rules = rules_file(tmp_path, GH_RULES + 'action record = exec "./record.sh"\n'
                                            "hook: on github.push run record busy parallel retry 3 backoff 1s\n")
    state = tmp_path / "state"
    env = {**ENV, "RAN_FILE": str(ran)}
    # two runs at once before the crash (40 runs/s at most): the burst's 202s outpace the
    # runs, so the kill finds runs queued and running however busy the machine is (with the
    # default 16, a slow machine answered so slowly that every run had ended by the kill)
    srv = start(daemons, rules, state, env, "--max-parallel", "2")
    n = 400
    body = push_body()
    deliveries = [str(uuid.uuid4()) for _ in range(n)]
    reqs = [(body, signed(body, delivery=d)) for d in deliveries]
    killed = []

    def on_answer(k: int) -> None:
        if k == n // 3 and not killed:
            os.kill(srv.pid, signal.SIGKILL)  # in the middle of the burst, runs queued and running
            killed.append(time.monotonic())

    results = asyncio.run(blast(srv.url, reqs, 16, on_answer))
    srv.proc.wait(30)
    assert killed and srv.proc.returncode == -signal.SIGKILL
    answered = {deliveries[i]: j["event_id"] for i, (s, j) in enumerate(results) if s == 202}
    assert n // 3 <= len(answered) < n, len(answered)
    # (1) every event answered 202 is in the journal, with its run, before any restart
    keys = dict(q(state, "SELECT delivery_key, id FROM events"))
    for d, event_id in answered.items():
        assert keys.get(f"github:{d}") == event_id
    before = run_counts(state)
    assert before.get("queued", 0) + before.get("running", 0) > 0, before  # the crash left work behind

    # (2) restart on the same state: queued runs start, running ones are interrupted and retried
    srv2 = start(daemons, rules, state, env)
    assert "recovered:" in srv2.output()
    # the sender redelivers what got no answer, with the same delivery ids (GitHub's redelivery)
    unanswered = [reqs[i] for i, (s, _) in enumerate(results) if s != 202]
    again = asyncio.run(blast(srv2.url, unanswered, 8))
    assert all(s in (200, 202) for s, _ in again), again  # 200: it had been journaled, not answered

    def drained() -> bool:
        c = run_counts(state)
        return c.get("queued", 0) == 0 and c.get("running", 0) == 0
    wait_for(drained, 120, "every run to finish after the restart")
    # (3) every delivery is one event, and every event has a run that succeeded
    events = q(state, "SELECT id, delivery_key FROM events")
    assert len(events) == n and len({k for _, k in events}) == n
    no_success = q(state, "SELECT e.id FROM events e WHERE NOT EXISTS "
                          "(SELECT 1 FROM runs r WHERE r.event_id = e.id AND r.status = 'succeeded')")
    assert no_success == [], no_success[:5]
    ran_events = {line.split()[0] for line in ran.read_text().splitlines() if line.strip()}
    assert set(answered.values()) <= ran_events
    statuses = run_counts(state)
    assert set(statuses) <= {"succeeded", "interrupted"}, statuses
    # interrupted runs were retried as a new attempt of the same event
    for (event_id,) in q(state, "SELECT event_id FROM runs WHERE status = 'interrupted'"):
        assert q(state, "SELECT COUNT(*) FROM runs WHERE event_id = ? AND status = 'succeeded' AND attempt > 1",
                 event_id)[0][0] == 1
    assert srv2.stop() == 0
    assert "Traceback" not in srv2.output()


# --------------------------------------------------------------------------- start-up faults

SIMPLE = GH_RULES + 'action ok = exec "true"\nhook: on github.push run ok\n'


def test_state_dir_under_a_regular_file(tmp_path: Path) -> None:
    rules = rules_file(tmp_path, SIMPLE)
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("x")
    out = expect_start_failure(rules, blocker / "state", ENV)
    assert "cannot create the state directory" in out and "Not a directory" in out
    out = expect_start_failure(rules, blocker, ENV)  # the state path is itself a file
    assert "is not a directory" in out


@contextlib.contextmanager
def read_only(path: Path) -> Iterator[str]:
    """Make an existing folder unwritable for this process, however it runs.

    Not root: ``chmod 555``. Root ignores modes, so: the immutable attribute
    (``chattr +i``), else a read-only tmpfs mounted over it. Skips when none is possible.
    """
    if os.geteuid() != 0:
        mode = path.stat().st_mode
        path.chmod(0o555 if path.is_dir() else 0o444)
        try:
            yield "chmod a-w"
        finally:
            path.chmod(mode)
        return
    if shutil.which("chattr") and subprocess.run(["chattr", "+i", str(path)], capture_output=True).returncode == 0:
        try:
            yield "chattr +i"
        finally:
            subprocess.run(["chattr", "-i", str(path)], capture_output=True)
        return
    if path.is_dir() and subprocess.run(["mount", "-t", "tmpfs", "-o", "ro", "tmpfs", str(path)],
                                        capture_output=True).returncode == 0:
        try:
            yield "read-only tmpfs"
        finally:
            subprocess.run(["umount", str(path)], capture_output=True)
        return
    pytest.skip("running as root without chattr or mount: an unwritable folder cannot be produced here")


def test_state_dir_not_writable(tmp_path: Path) -> None:
    rules = rules_file(tmp_path, SIMPLE)
    state = tmp_path / "state"
    state.mkdir()
    with read_only(state):
        out = expect_start_failure(rules, state, ENV)
    assert f"the state directory {state} is not writable" in out, out


def test_journal_file_read_only(tmp_path: Path, daemons: list[Serve]) -> None:
    rules = rules_file(tmp_path, SIMPLE)
    state = tmp_path / "state"
    make_journal(tmp_path, rules, state, daemons)
    with read_only(state / "journal.sqlite3"):
        out = expect_start_failure(rules, state, ENV)
    assert "is not readable and writable" in out, out


def test_journal_file_not_writable_or_not_a_file(tmp_path: Path) -> None:
    rules = rules_file(tmp_path, SIMPLE)
    state = tmp_path / "state"
    state.mkdir()
    (state / "journal.sqlite3").mkdir()  # a folder where the database should be
    out = expect_start_failure(rules, state, ENV)
    assert f"the journal {state / 'journal.sqlite3'} is not a file" in out
    shutil.rmtree(state)
    state.mkdir()
    (state / "logs").write_text("")  # a file where the run logs go
    out = expect_start_failure(rules, state, ENV)
    assert f"the log directory {state / 'logs'} is not a directory" in out


def make_journal(tmp_path: Path, rules: Path, state: Path, daemons: list[Serve]) -> None:
    srv = start(daemons, rules, state, ENV)
    assert srv.stop() == 0


def test_journal_locked_by_another_process(tmp_path: Path, daemons: list[Serve]) -> None:
    rules = rules_file(tmp_path, SIMPLE)
    state = tmp_path / "state"
    make_journal(tmp_path, rules, state, daemons)
    holder = sqlite3.connect(str(state / "journal.sqlite3"), isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")
    try:
        out = expect_start_failure(rules, state, ENV)
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert "is locked by another process" in out, out


def test_second_serve_on_the_same_state_dir_refuses_to_start(tmp_path: Path, daemons: list[Serve]) -> None:
    """Two daemons on one journal would both start the queued runs: the second must not start."""
    rules = rules_file(tmp_path, SIMPLE)
    state = tmp_path / "state"
    first = start(daemons, rules, state, ENV)
    out = expect_start_failure(rules, state, ENV)
    assert str(state) in out and "another triggerc serve" in out, out
    assert f"pid {first.pid}" in out
    assert first.stop() == 0
    # the lock goes with the process: after a kill -9 too
    again = start(daemons, rules, state, ENV)
    again.kill9()
    start(daemons, rules, state, ENV).stop()


@pytest.mark.parametrize("damage", ["garbage", "truncated", "zeroed-header"])
def test_corrupt_journal(tmp_path: Path, daemons: list[Serve], damage: str) -> None:
    rules = rules_file(tmp_path, SIMPLE)
    state = tmp_path / "state"
    make_journal(tmp_path, rules, state, daemons)
    db = state / "journal.sqlite3"
    for extra in ("-wal", "-shm"):
        Path(str(db) + extra).unlink(missing_ok=True)
    data = db.read_bytes()
    if damage == "garbage":
        db.write_bytes(b"this is not a database, it is a shopping list\n" * 200)
    elif damage == "truncated":
        # a database whose pages are gone: the header says more pages than the file has
        db.write_bytes(data[:100] + b"\x00" * 0)
    else:
        db.write_bytes(b"\x00" * 100 + data[100:])
    out = expect_start_failure(rules, state, ENV)
    assert "journal" in out and ("not a valid SQLite database" in out or "journal error" in out), out


def test_unset_secret_names_the_variable_never_a_value(tmp_path: Path) -> None:
    other = "faults-other-" + uuid.uuid4().hex
    rules = rules_file(tmp_path, GH_RULES + 'secret tok = env "FAULTS_TOKEN"\nsource http path="/h/*" token=tok\n'
                                            'action ok = exec "true"\nhook: on github.push run ok\n'
                                            'h: on http.post path="/h/x" run ok\n')
    env = {**ENV, "FAULTS_TOKEN": ""}  # set but empty counts as unset
    out = expect_start_failure(rules, tmp_path / "state", env)
    assert "FAULTS_TOKEN" in out and "is not set" in out
    assert GH_SECRET not in out and other not in out
    env = {"FAULTS_TOKEN": other}  # now the other one is missing
    out = expect_start_failure(rules, tmp_path / "state", {**env, "FAULTS_GH_SECRET": ""})
    assert "FAULTS_GH_SECRET" in out and other not in out
    # a secret file that is missing is named too
    rules2 = rules_file(tmp_path, 'secret gh = file "secrets/gh.txt"\nsource github path="/github" secret=gh\n'
                                  'action ok = exec "true"\nhook: on github.push run ok\n', "rules2.trg")
    out = expect_start_failure(rules2, tmp_path / "state2")
    assert "secrets/gh.txt" in out


@contextlib.contextmanager
def small_disk(path: Path, size: str) -> Iterator[Callable[[str], None]]:
    """A tmpfs of ``size`` mounted on ``path`` (root only); yields a function that resizes it."""
    path.mkdir()
    if os.geteuid() != 0 or subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)],
                                           capture_output=True).returncode != 0:
        pytest.skip("a full disk needs a small tmpfs, which needs root and mount")

    def resize(new: str) -> None:
        subprocess.run(["mount", "-o", f"remount,size={new}", str(path)], check=True, capture_output=True)
    try:
        yield resize
    finally:
        subprocess.run(["umount", "-l", str(path)], capture_output=True)


def test_disk_full_refuses_with_503_loses_nothing_accepted_and_recovers(tmp_path: Path, daemons: list[Serve]) -> None:
    rules = rules_file(tmp_path, GH_RULES + 'action ok = exec "true"\nhook: on github.push run ok busy parallel\n')
    state = tmp_path / "state"
    with small_disk(state, "400k") as resize:
        srv = start(daemons, rules, state, ENV)
        body = push_body()
        answers: list[tuple[int, str]] = []
        with httpx.Client(base_url=srv.url, timeout=30) as c:
            while len(answers) < 400 and [s for s, _ in answers[-3:]] != [503] * 3:
                r = c.post("/github", content=body, headers=signed(body))
                answers.append((r.status_code, r.json().get("event_id") or r.json().get("error")))
            assert [s for s, _ in answers[-3:]] == [503] * 3, ("the disk never filled up", answers[-3:])
            assert {s for s, _ in answers} == {202, 503}
            # not accepted: the sender retries later (a full disk is no error of the request)
            assert "try again later" in answers[-1][1] and r.headers["Retry-After"] == "10", (r.headers, r.text)
            accepted = [e for s, e in answers if s == 202]
            resize("8m")  # space comes back: the same server accepts again, no restart
            for _ in range(5):
                r = c.post("/github", content=body, headers=signed(body))
                assert r.status_code == 202
                accepted.append(r.json()["event_id"])
        journaled = {e for (e,) in q(state, "SELECT id FROM events")}
        assert set(accepted) <= journaled
        # the runs of accepted events all succeed, those whose end could not be written included
        wait_for(lambda: run_counts(state).get("succeeded", 0) >= len(accepted), 60, "the accepted runs")
        assert run_counts(state) == {"succeeded": len(accepted)}
        assert srv.stop() == 0
        journaled_runs = {rid for (rid,) in q(state, "SELECT id FROM runs")}
    out = srv.output()
    assert "the disk is full" in out and "Traceback" not in out, out[-3000:]
    # the runs of refused events never existed: the log does not promise to start them
    promised = {int(n) for n in re.findall(r"run (\d+) of hook cannot start yet", out)}
    assert promised <= journaled_runs, out[-3000:]


# --------------------------------------------------------------------------- secrets never leak

class Receiver:
    """A loopback HTTP server standing in for the orchestrator of an ``http post`` action."""

    def __init__(self) -> None:
        import http.server
        import threading

        self.got: list[tuple[dict[str, str], bytes]] = []
        outer = self

        class H(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                outer.got.append((dict(self.headers), body))
                self.send_response(200)
                self.end_headers()

            def log_message(self, *a: Any) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), H)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def test_secrets_never_appear_in_logs_manifest_journal_or_run_logs(tmp_path: Path, daemons: list[Serve]) -> None:
    sentinel = "SENTINEL" + uuid.uuid4().hex
    gh, tok, orch = sentinel + "-gh", sentinel + "-tok", sentinel + "-orch"
    recv = Receiver()
    try:
        rules = rules_file(tmp_path, f"""\
secret gh = env "LEAK_GH"
secret tok = env "LEAK_TOK"
secret orch = env "LEAK_ORCH"
source github path="/github" secret=gh
source http path="/hooks/*" token=tok
action dump(x="") = shell "env | grep '^TRG_' | sort; cat; echo; echo \\"$TRG_INPUT_X\\""
action post = http post "http://127.0.0.1:{recv.port}/runs" secret=orch
gh_dump: on github.push run dump with <sha> busy parallel
gh_post: on github.push run post busy parallel
hook: on http.post path ~ "/hooks/*" run dump with <headers.authorization> busy parallel
""")
        env = {"LEAK_GH": gh, "LEAK_TOK": tok, "LEAK_ORCH": orch}
        manifest = tmp_path / "manifest.json"
        subprocess.run([sys.executable, "-m", "triggerlang.cli", "compile", str(rules), "-o", str(manifest)],
                       check=True, env={**os.environ, **env}, timeout=60)
        state = tmp_path / "state"
        srv = start(daemons, rules, state, env, "--verbose")
        body = push_body()
        with httpx.Client(base_url=srv.url, timeout=30) as c:
            for _ in range(3):
                assert c.post("/github", content=body, headers=signed(body, secret=gh)).status_code == 202
            # refused attempts that carry (a guess at) the secret: the log must not echo them
            assert c.post("/github", content=body, headers=signed(body, secret=gh + "x")).status_code == 401
            assert c.post("/hooks/a", json={"k": 1}, headers={"Authorization": "Bearer " + tok + "x"}).status_code == 401
            assert c.post("/hooks/a", json={"k": 1}, headers={"Authorization": "Bearer " + tok,
                                                               "X-Gitlab-Token": tok, "Cookie": "s=" + tok}).status_code == 202
        wait_for(lambda: run_counts(state).get("succeeded") == 7, 60, "7 runs to succeed")
        assert len(recv.got) == 3
        for headers, payload in recv.got:  # the orchestrator got a valid signature...
            want = "sha256=" + hmac.new(orch.encode(), payload, hashlib.sha256).hexdigest()
            assert headers["X-Triggerlang-Signature"] == want
            assert sentinel.encode() not in payload  # ...and no secret in the body
        runs_json = subprocess.run([sys.executable, "-m", "triggerlang.cli", "runs", "--state", str(state),
                                    "--format", "json"], capture_output=True, text=True, timeout=60).stdout
        events_json = subprocess.run([sys.executable, "-m", "triggerlang.cli", "events", "--state", str(state),
                                      "--format", "json", "--limit", "100"], capture_output=True, text=True,
                                     timeout=60).stdout
        assert srv.stop() == 0
    finally:
        recv.close()
    run_logs = sorted((state / "logs").glob("*.log"))
    assert len(run_logs) == 7
    dumped = "\n".join(p.read_text() for p in run_logs)
    assert "TRG_EVENT_ID=" in dumped and "TRG_INPUT_X=" in dumped  # the actions did print their env
    assert "<redacted>" in dumped  # the bearer token reached the action as <redacted>
    files = {"serve log": srv.log, "manifest": manifest, **{f"run log {p.name}": p for p in run_logs}}
    files.update({p.name: p for p in state.iterdir() if p.is_file()})  # journal.sqlite3 (+ -wal if any)
    for what, path in files.items():
        assert sentinel.encode() not in path.read_bytes(), f"a secret value leaked into the {what}"
    assert sentinel not in runs_json and sentinel not in events_json
    assert "gh" in json.loads(manifest.read_text())["secrets"]  # the manifest holds the reference


# --------------------------------------------------------------------------- /events from afar

def _non_loopback_address() -> str | None:
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.connect(("192.0.2.1", 9))  # picks the outgoing address; sends nothing
            addr = s.getsockname()[0]
    except OSError:
        return None
    return None if addr.startswith("127.") else addr


def test_emit_endpoint_refuses_a_non_loopback_peer(tmp_path: Path, daemons: list[Serve]) -> None:
    addr = _non_loopback_address()
    if addr is None:
        pytest.skip("no non-loopback IPv4 address on this machine to connect from")
    rules = rules_file(tmp_path, 'action ok = exec "true"\nr: on git.push run ok\n')
    state = tmp_path / "state"
    srv = start(daemons, rules, state, {}, "--http", "--host", "0.0.0.0")
    event = {"source": "git", "type": "push", "data": {"branch": "main"}}
    with httpx.Client(transport=httpx.HTTPTransport(local_address=addr), timeout=30) as c:
        r = c.post(f"http://{addr}:{srv.port}/events", json=event, headers={"X-Forwarded-For": "127.0.0.1"})
    assert r.status_code == 403
    with httpx.Client(timeout=30) as c:
        assert c.post(f"{srv.url}/events", json=event).status_code == 202
    assert q(state, "SELECT COUNT(*) FROM events")[0][0] == 1
    assert srv.stop() == 0


# --------------------------------------------------------------------------- symlinks

def test_symlinks_out_of_the_watch_root_give_no_event(tmp_path: Path, daemons: list[Serve]) -> None:
    proj = tmp_path / "proj"
    (proj / "watched").mkdir(parents=True)
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.txt").write_text("x")
    rules = rules_file(proj, 'action ok(p) = exec "true" p\n'
                             'f: on file.changed path ~ "watched/**" run ok with <path> debounce 10ms busy parallel\n')
    state = tmp_path / "state"
    srv = start(daemons, rules, state)
    w = proj / "watched"
    (w / "evil-file").symlink_to(outside / "secret.txt")  # a link to a file outside
    (w / "evil-dir").symlink_to(outside, target_is_directory=True)  # a link to a folder outside
    (outside / "new.txt").write_text("written outside, seen through the link")
    (outside / "secret.txt").write_text("changed outside")
    (w / "inside.txt").write_text("a legit change")  # the barrier: its event comes after the rest
    wait_for(lambda: q(state, "SELECT id FROM events WHERE data LIKE '%watched/inside.txt%'"), 30,
             "the event of the legitimate change")
    paths = [json.loads(d)["path"] for (d,) in q(state, "SELECT data FROM events WHERE source = 'file'")]
    assert "watched/inside.txt" in paths
    assert not [p for p in paths if "evil" in p or "outside" in p or "secret" in p], paths
    assert srv.stop() == 0


# --------------------------------------------------------------------------- payload injection

ARGV_PY = """import json, os, sys
with open(os.path.join(os.environ["OUT_DIR"], "argv-" + os.environ["TRG_RUN_ID"] + ".json"), "w") as f:
    json.dump(sys.argv[1:], f)
"""

HOSTILE = [
    "$(touch {d}/pwned-subst)",
    "`touch {d}/pwned-backtick`",
    "x; touch {d}/pwned-semicolon",
    "x\ntouch {d}/pwned-newline",
    "x && touch {d}/pwned-and | touch {d}/pwned-pipe > {d}/pwned-redirect",
    "'; touch {d}/pwned-quote; '",
    "\"$(touch {d}/pwned-dq)\"",
    "${{IFS}}touch${{IFS}}{d}/pwned-ifs",
    "-rf --help",
    "* ?",
]


def test_payload_strings_reach_actions_as_plain_argv_and_run_nothing(tmp_path: Path, daemons: list[Serve]) -> None:
    trap = tmp_path / "trap"
    trap.mkdir()
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    (tmp_path / "argv.py").write_text(ARGV_PY)
    rules = rules_file(tmp_path, f"""\
secret tok = env "INJ_TOKEN"
source http path="/in" token=tok
action show(a, b) = exec "{sys.executable}" "argv.py" a "--flag" b
action quoted(a) = shell "printf '%s' \\"$TRG_INPUT_A\\" > \\"$OUT_DIR/shell-$TRG_RUN_ID.txt\\""
action unquoted(a) = shell "echo $TRG_INPUT_A > /dev/null"
e: on http.post path="/in" run show with <payload.a>, <payload.b> busy parallel
s: on http.post path="/in" run quoted with <payload.a> busy parallel
u: on http.post path="/in" run unquoted with <payload.a> busy parallel
""")
    state = tmp_path / "state"
    srv = start(daemons, rules, state, {"INJ_TOKEN": "t0k", "OUT_DIR": str(out_dir)})
    strings = [h.format(d=trap) for h in HOSTILE]
    with httpx.Client(base_url=srv.url, timeout=30, headers={"Authorization": "Bearer t0k"}) as c:
        for s in strings:
            r = c.post("/in", json={"a": s, "b": s[::-1]})
            assert r.status_code == 202, r.text
    wait_for(lambda: run_counts(state).get("succeeded", 0) + run_counts(state).get("failed", 0) == 3 * len(strings),
             60, "every run to finish")
    assert run_counts(state) == {"succeeded": 3 * len(strings)}, run_counts(state)
    seen = sorted(tuple(json.loads(p.read_text())) for p in out_dir.glob("argv-*.json"))
    assert seen == sorted((s, "--flag", s[::-1]) for s in strings)
    shell_seen = sorted(p.read_text() for p in out_dir.glob("shell-*.txt"))
    assert shell_seen == sorted(strings)
    assert list(trap.iterdir()) == []  # nothing was created by any of the payloads
    assert not list(tmp_path.glob("pwned*")) and not list(Path.cwd().glob("pwned*"))
    assert srv.stop() == 0


# --------------------------------------------------------------------------- processes

SPAWN_SH = """#!/bin/sh
# a run that leaves children: two in the background, one in a subshell of its own
sleep 300 &
( sleep 300 & wait ) &
echo $$ > "$PID_DIR/$TRG_RUN_ID"
wait
"""


def zombies_of(pid: int) -> list[int]:
    out = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rfind(")") + 2:].split()
        if fields[0] == "Z" and int(fields[1]) == pid:
            out.append(int(entry.name))
    return out


def children_of(pid: int) -> list[int]:
    out = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError):
                stat = (entry / "stat").read_text()
                if int(stat[stat.rfind(")") + 2:].split()[1]) == pid:
                    out.append(int(entry.name))
    return out


@pytest.mark.skipif(not Path("/proc").is_dir(), reason="needs /proc to look for zombies")
def test_timeout_kills_the_whole_process_group_and_leaves_no_zombie(tmp_path: Path, daemons: list[Serve]) -> None:
    (tmp_path / "spawn.sh").write_text(SPAWN_SH)
    (tmp_path / "spawn.sh").chmod(0o755)
    pids = tmp_path / "pids"
    pids.mkdir()
    rules = rules_file(tmp_path, 'action spawn = exec "./spawn.sh"\n'
                                 'r: on git.push run spawn timeout 1s busy parallel\n')
    state = tmp_path / "state"
    srv = start(daemons, rules, state, {"PID_DIR": str(pids)}, "--http")
    with httpx.Client(base_url=srv.url, timeout=30) as c:
        for _ in range(3):
            assert c.post("/events", json={"source": "git", "type": "push", "data": {}}).status_code == 202
    wait_for(lambda: run_counts(state).get("timed_out") == 3, 60, "three runs to time out")
    groups = [int(p.read_text()) for p in pids.iterdir()]
    assert len(groups) == 3
    # the whole group is gone (SIGTERM to the group: sh and every sleep), not just the leader
    wait_for(lambda: not any(group_alive(g) for g in groups), 10, "the process groups to die")
    assert zombies_of(srv.pid) == [] and children_of(srv.pid) == []
    for (code, error) in q(state, "SELECT exit_code, error FROM runs"):
        assert code == 128 + signal.SIGTERM and "timed out after 1s" in error
    assert srv.stop() == 0


def test_sigterm_marks_the_running_run_interrupted_and_exits_0(tmp_path: Path, daemons: list[Serve]) -> None:
    (tmp_path / "spawn.sh").write_text(SPAWN_SH)
    (tmp_path / "spawn.sh").chmod(0o755)
    pids = tmp_path / "pids"
    pids.mkdir()
    rules = rules_file(tmp_path, 'action spawn = exec "./spawn.sh"\nr: on git.push run spawn\n')
    state = tmp_path / "state"
    srv = start(daemons, rules, state, {"PID_DIR": str(pids)}, "--http", "--grace", "1")
    with httpx.Client(base_url=srv.url, timeout=30) as c:
        for _ in range(2):  # busy queue: the second waits behind the first
            assert c.post("/events", json={"source": "git", "type": "push", "data": {}}).status_code == 202
    wait_for(lambda: run_counts(state) == {"running": 1, "queued": 1}, 30, "one run going, one waiting")
    # `echo $$ > file` creates the file before it writes: wait for the text, not the file
    group = int(wait_for(lambda: [t for f in pids.iterdir() if (t := f.read_text().strip())], 30,
                         "the run's pid")[0])
    t0 = time.monotonic()
    assert srv.stop() == 0
    assert time.monotonic() - t0 < 30
    assert run_counts(state) == {"interrupted": 1, "queued": 1}
    assert not group_alive(group)
    out = srv.output()
    assert "stopped cleanly" in out and "Traceback" not in out
    # the waiting run was not lost: the next serve starts it
    srv2 = start(daemons, rules, state, {"PID_DIR": str(pids)}, "--http", "--grace", "1")
    wait_for(lambda: len(list(pids.iterdir())) == 2, 30, "the queued run to start after the restart")
    assert srv2.stop() == 0
    assert run_counts(state) == {"interrupted": 2}
