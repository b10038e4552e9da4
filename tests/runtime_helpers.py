"""Helpers for the end-to-end runtime tests (tests/test_runtime.py).

Everything here drives the real thing: ``triggerc serve`` as a subprocess on a free
loopback port, the journal read with plain ``sqlite3`` (read-only, from outside the
server, so the tests see exactly what a second process would), ``triggerc runs`` /
``events`` as subprocesses. Waiting is always "poll a condition until a deadline";
nothing sleeps a fixed time to synchronise.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any, Callable, TypeVar

DEADLINE = 20.0  # seconds; generous, for a noisy 2-core machine
POLL = 0.05
RELOAD_INTERVAL = "0.2"
"""``serve --reload-interval`` of the tests' servers (unless a test gives its own, or
--no-reload): a test that changes the rules waits for the next look, 0.6 s on average with
the 1 s default (the look, then the 0.2 s settle), 0.3 s with this. The default itself is
test_runtime's ``test_the_rules_are_looked_at_every_second_by_default``."""

T = TypeVar("T")

_PORT_LINE = re.compile(r"http: listening on https?://[^\s]*:(\d+)")


def cli(*args: str, env: dict[str, str] | None = None, timeout: float = 60.0,
        cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    """``triggerc ARGS...`` as a subprocess (the same interpreter as the tests)."""
    return subprocess.run([sys.executable, "-m", "triggerlang.cli", *args], capture_output=True, text=True,
                          env=env, timeout=timeout, cwd=cwd)


def wait_for(cond: Callable[[], T], what: str, timeout: float = DEADLINE,
             on_fail: Callable[[], str] | None = None) -> T:
    """Poll ``cond`` until it returns something truthy (returned); AssertionError at the deadline."""
    end = time.monotonic() + timeout
    while True:
        value = cond()
        if value:
            return value
        if time.monotonic() > end:
            extra = on_fail() if on_fail else ""
            raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}\n{extra}")
        time.sleep(POLL)


def pid_in(path: Path, what: str = "the pid file", timeout: float = DEADLINE,
           on_fail: Callable[[], str] | None = None) -> int:
    """The pid a run wrote to ``path`` (``echo $$ > path``), once written: the shell creates
    the file before it writes to it, so waiting for the file alone can read it empty."""
    def text() -> str:
        with contextlib.suppress(FileNotFoundError):
            t = path.read_text()
            if t.endswith("\n"):
                return t.strip()
        return ""
    return int(wait_for(text, what, timeout, on_fail))


def free_port() -> int:
    """A port nobody listens on right now (for the "dead port" and "port in use" cases)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# --------------------------------------------------------------------------- the journal

def _connect(state: Path) -> sqlite3.Connection | None:
    db = state / "journal.sqlite3"
    if not db.exists():
        return None
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=10)
    conn.row_factory = sqlite3.Row
    return conn


def journal_runs(state: Path) -> list[dict[str, Any]]:
    """Every run in the journal, oldest first (raw columns; inputs decoded)."""
    conn = _connect(state)
    if conn is None:
        return []
    try:
        rows = [dict(r) for r in conn.execute("SELECT * FROM runs ORDER BY id")]
    finally:
        conn.close()
    for r in rows:
        r["inputs"] = json.loads(r["inputs"])
    return rows


def journal_events(state: Path) -> list[dict[str, Any]]:
    """Every event in the journal, oldest first (data and matched decoded)."""
    conn = _connect(state)
    if conn is None:
        return []
    try:
        rows = [dict(r) for r in conn.execute("SELECT * FROM events ORDER BY rowid")]
    finally:
        conn.close()
    for r in rows:
        r["data"] = json.loads(r["data"])
        r["matched"] = json.loads(r["matched"])
    return rows


FINAL = {"succeeded", "failed", "timed_out", "cancelled", "interrupted", "skipped"}


# --------------------------------------------------------------------------- what a serve started

SERVE_TAG = "TRIGGERLANG_TEST_SERVE"
"""The environment variable a test's ``serve`` (or ``worker``) is started with, a value of
its own each: every process it starts inherits it (a run gets serve's environment:
runtime/executor.py), so a teardown finds the runs of a serve that died without stopping
them (SIGKILL, a crash, a test that failed mid-way) in ``/proc/PID/environ``. No list of
pids is kept to miss a run started a moment before the kill, and a run's own children
(``sleep 30 &`` in a shell) carry it too."""


def tagged(env: dict[str, str]) -> tuple[dict[str, str], str]:
    """``env`` with a new :data:`SERVE_TAG`, and the tag."""
    tag = uuid.uuid4().hex
    return {**env, SERVE_TAG: tag}, tag


def tagged_processes(tag: str) -> list[int]:
    """Our processes whose environment has ``SERVE_TAG=tag`` (a zombie's environment is empty)."""
    needle = f"{SERVE_TAG}={tag}".encode()
    found = []
    for name in os.listdir("/proc"):
        if not name.isdigit() or int(name) == os.getpid():
            continue
        try:
            with open(f"/proc/{name}/environ", "rb") as f:
                env = f.read()
        except OSError:  # gone, or not ours
            continue
        if needle in env.split(b"\0"):
            found.append(int(name))
    return found


def kill_tagged(tag: str, timeout: float = DEADLINE) -> list[int]:
    """SIGKILL every process tagged ``tag`` and its process group (a run's: its children
    too), scanning again until none is left (one started meanwhile by the spawner, killed in
    the same pass, is found by the next scan); the pids killed. The tests' own process group
    (serve's, which makes none of its own) is spared: only the tagged process in it is killed."""
    killed: list[int] = []
    ours = os.getpgrp()
    end = time.monotonic() + timeout
    while pids := tagged_processes(tag):
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                pgid = os.getpgid(pid)
                if pgid != ours:
                    os.killpg(pgid, signal.SIGKILL)
                os.kill(pid, signal.SIGKILL)
            if pid not in killed:
                killed.append(pid)
        if time.monotonic() > end:
            raise AssertionError(f"processes {pids} of a test's serve outlived SIGKILL for {timeout:.0f}s")
        time.sleep(POLL / 5)
    return killed


# --------------------------------------------------------------------------- the server

class Server:
    """One ``triggerc serve`` subprocess. Its stderr (the log) goes to a file."""

    def __init__(self, rules: Path, state: Path, *args: str, env: dict[str, str] | None = None,
                 port: int | str | None = 0, log: Path | None = None) -> None:
        self.rules = rules
        self.state = state
        self.args = list(args)
        self.env, self.tag = tagged({**os.environ, **(env or {})})  # (ensure_dead finds its runs by it)
        self.env.pop("TRIGGERLANG_URL", None)
        self.port_arg = port
        self.log_path = log or state.parent / f"serve-{state.name}.log"
        self.proc: subprocess.Popen[bytes] | None = None
        self.port: int | None = None
        self._log_offset = 0

    # -- lifecycle

    def argv(self) -> list[str]:
        argv = [sys.executable, "-m", "triggerlang.cli", "serve", str(self.rules), "--state", str(self.state)]
        if self.port_arg is not None:
            argv += ["--port", str(self.port_arg)]
        if not {"--no-reload", "--reload-interval"} & set(self.args):
            argv += ["--reload-interval", RELOAD_INTERVAL]
        return argv + self.args

    def start(self, wait: bool = True, stdin: int = subprocess.DEVNULL) -> "Server":
        self._log_offset = self.log_path.stat().st_size if self.log_path.exists() else 0
        self._fh = open(self.log_path, "ab")
        self.proc = subprocess.Popen(self.argv(), stdin=stdin, stdout=self._fh, stderr=self._fh,
                                     env=self.env, cwd=str(self.rules.parent))
        if wait:
            wait_for(lambda: "INFO serving " in self.log() or self.proc.poll() is not None,
                     "the server to start", on_fail=self.tail)
            assert self.proc.poll() is None, f"serve exited with {self.proc.returncode}:\n{self.log()}"
            m = _PORT_LINE.findall(self.log())
            self.port = int(m[-1]) if m else None
        return self

    def log(self) -> str:
        """The log of this start of the server (not earlier starts with the same file)."""
        try:
            with open(self.log_path, "rb") as f:
                f.seek(self._log_offset)
                return f.read().decode("utf-8", "replace")
        except FileNotFoundError:
            return ""

    def tail(self, n: int = 40) -> str:
        return "--- serve log ---\n" + "\n".join(self.log().splitlines()[-n:])

    def stop(self, timeout: float = DEADLINE) -> int:
        """SIGTERM, wait for the exit code; the log must hold no traceback."""
        assert self.proc is not None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            rc = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise AssertionError(f"serve did not stop within {timeout:.0f}s after SIGTERM\n{self.tail()}")
        finally:
            self._fh.close()
        assert "Traceback" not in self.log(), self.log()
        return rc

    def kill9(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(DEADLINE)
        self._fh.close()

    def ensure_dead(self) -> None:
        """Teardown: SIGKILL serve if it still runs, then what it started (its runs' process
        groups, its spawner), which outlive a serve killed or dead: :func:`kill_tagged`."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        kill_tagged(self.tag)
        if getattr(self, "_fh", None) is not None and not self._fh.closed:
            self._fh.close()

    # -- talking to it

    @property
    def url(self) -> str:
        assert self.port, f"no HTTP listener in this server\n{self.tail()}"
        return f"http://127.0.0.1:{self.port}"

    def runs(self) -> list[dict[str, Any]]:
        return journal_runs(self.state)

    def events(self) -> list[dict[str, Any]]:
        return journal_events(self.state)

    def wait_runs(self, cond: Callable[[list[dict[str, Any]]], bool], what: str,
                  timeout: float = DEADLINE) -> list[dict[str, Any]]:
        """Poll the journal's runs until ``cond(runs)`` holds; the runs."""
        box: list[list[dict[str, Any]]] = []

        def check() -> bool:
            rs = self.runs()
            box[:] = [rs]
            return cond(rs)

        wait_for(check, what, timeout,
                 on_fail=lambda: json.dumps(box[0] if box else [], indent=1, default=str) + "\n" + self.tail())
        return box[0]

    def wait_log(self, text: str | re.Pattern[str], timeout: float = DEADLINE) -> str:
        def found() -> bool:
            log = self.log()
            return bool(text.search(log)) if isinstance(text, re.Pattern) else text in log

        wait_for(found, f"{text!r} in the log", timeout, on_fail=self.tail)
        return self.log()


class Servers:
    """The ``serve`` fixture (conftest.py): ``serve(rules_text, *args, env=...)`` writes
    rules.trg in tmp_path/proj and starts a server; :meth:`close`, the teardown, kills every
    server still running and what each started (:meth:`Server.ensure_dead`). A test that
    passes stops its servers itself, with SIGTERM, and checks the exit code."""

    def __init__(self, tmp_path: Path) -> None:
        self.tmp_path = tmp_path
        self.started: list[Server] = []

    def __call__(self, rules: str | None, *args: str, env: dict[str, str] | None = None, state: Path | None = None,
                 folder: Path | None = None, start: bool = True, name: str = "rules.trg") -> Server:
        folder = folder or self.tmp_path / "proj"
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / name
        if rules is not None:
            path.write_text(rules)
        s = Server(path, state or self.tmp_path / "state", *args, env=env, log=self.tmp_path / "serve.log")
        self.started.append(s)
        return s.start() if start else s

    def close(self) -> None:
        errors = []
        for s in self.started:  # each, even when one fails
            try:
                s.ensure_dead()
            except AssertionError as e:
                errors.append(e)
        if errors:
            raise errors[0]


def done(runs: list[dict[str, Any]], n: int) -> bool:
    """At least ``n`` runs, all in a final status."""
    return len(runs) >= n and all(r["status"] in FINAL for r in runs)


# --------------------------------------------------------------------------- a service manager

class NotifySocket:
    """A datagram socket bound where ``NOTIFY_SOCKET`` points: what systemd listens on."""

    def __init__(self, abstract: bool) -> None:
        self.folder = tempfile.mkdtemp(prefix="trg-notify-", dir="/tmp")  # a short path: sun_path is 108 bytes
        if abstract:
            self.name = f"@trg-test-{os.getpid()}-{time.monotonic_ns()}"
            address = "\0" + self.name[1:]
        else:
            self.name = address = os.path.join(self.folder, "notify")
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(address)
        self.got: list[dict[str, str]] = []

    def next(self, key: str, timeout: float = DEADLINE) -> dict[str, str]:
        """The next message that sets ``key`` (messages before it are kept in ``got``)."""
        end = time.monotonic() + timeout
        while True:
            left = end - time.monotonic()
            if left <= 0:
                raise AssertionError(f"no {key} message within {timeout:.0f}s; got {self.got}")
            self.sock.settimeout(left)
            try:
                data = self.sock.recv(4096).decode()
            except socket.timeout:
                continue
            msg = dict(line.split("=", 1) for line in data.split("\n") if line)
            self.got.append(msg)
            if key in msg:
                return msg

    def close(self) -> None:
        self.sock.close()
        shutil.rmtree(self.folder, ignore_errors=True)


# --------------------------------------------------------------------------- a container (a PID namespace)

def pid_namespace_or_skip() -> None:
    """``unshare --pid`` works here (root, and a kernel that lets us), or the test is
    skipped, except under CI, where it must work."""
    import pytest

    probe = subprocess.run(["unshare", "--pid", "--fork", "--mount-proc", "true"], capture_output=True, text=True) \
        if shutil.which("unshare") else None
    if probe is None or probe.returncode != 0:
        why = "no unshare" if probe is None else probe.stderr.strip()
        if os.environ.get("CI") == "true":
            pytest.fail(f"a PID namespace is needed for this test under CI: {why}")
        pytest.skip(f"cannot make a PID namespace here: {why}")


def namespace_pid1(unshare_pid: int) -> int:
    """The host pid of PID 1 of the namespace ``unshare --pid --fork`` (``unshare_pid``) made."""
    children = wait_for(lambda: Path(f"/proc/{unshare_pid}/task/{unshare_pid}/children").read_text().split(),
                        "unshare's child")
    return int(children[0])


def namespace_processes(pid1: int) -> list[tuple[int, str, str]]:
    """(pid, state, comm) of every process in the PID namespace of host pid ``pid1``."""
    ns = os.readlink(f"/proc/{pid1}/ns/pid")
    out = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            if os.readlink(f"/proc/{entry}/ns/pid") != ns:
                continue
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        comm = stat[stat.index("(") + 1:stat.rindex(")")]
        out.append((int(entry), stat[stat.rindex(")") + 2:].split()[0], comm))
    return out


# --------------------------------------------------------------------------- shared by the runtime tests

def post(server: Server, path: str, payload: Any = None, **kw: Any) -> Any:
    """POST JSON to a running server (httpx); the response."""
    import httpx

    return httpx.post(server.url + path, json=payload, timeout=DEADLINE, **kw)


def post_bytes(url: str, body: bytes, headers: dict[str, str]) -> tuple[int, dict]:
    """POST a raw body (a webhook delivery, signed over these bytes): (status, JSON answer)."""
    import urllib.error
    import urllib.request

    req = urllib.request.Request(url, data=body, method="POST", headers={"Content-Type": "application/json", **headers})
    try:
        with urllib.request.urlopen(req, timeout=DEADLINE) as resp:
            return resp.status, json.loads(resp.read() or b"{}")
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read() or b"{}")


def by_rule(runs: list[dict[str, Any]], rule: str) -> list[dict[str, Any]]:
    return [r for r in runs if r["rule"] == rule]


def stop_ok(server: Server) -> None:
    """SIGTERM: the server must exit 0 (and log no traceback)."""
    assert server.stop() == 0, server.tail()


def alive(pid: int) -> bool:
    """True while process ``pid`` exists and is not a zombie."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat[stat.rfind(")") + 2:].split()[0] not in ("Z", "X")


STOPPABLE = """
import signal, sys, time
def stop(n, f):
    time.sleep(0.2)
    open(sys.argv[1], "w").write(signal.Signals(n).name)
    sys.exit(4)
for s in (signal.SIGINT, signal.SIGTERM):
    signal.signal(s, stop)
open(sys.argv[2], "w").close()
while True:
    time.sleep(0.05)
"""
"""A program that stops on SIGINT or SIGTERM, writing which one it got (argv[1]) after
0.2 s of shutting down, once its handlers are in place (argv[2])."""
