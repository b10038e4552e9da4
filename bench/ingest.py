#!/usr/bin/env python3
"""Webhook -> run at the machine's limit: ``triggerc serve`` side by side with adnanh/webhook.

For each concurrency level (``--connections``, default 1,16,64) and each server, in one
interleaved run (every server once per round, ``--rounds`` rounds, medians reported):

1. a fresh server (fresh state folder or database) with one bearer-token route;
2. ``wrk`` (Debian's ``wrk``) POSTs a 25-byte JSON body for ``--duration`` seconds;
3. the runs executed *during* the load are counted at the moment it stops, then the
   server drains its backlog and stops, and the journal is checked: it must hold every
   event answered ``202`` (wrk cannot count the answers in flight when it stops, at most
   one per connection: ``202s <= journaled <= 202s + connections``) and every run must
   have ended ``succeeded``.

The servers:

- ``triggerlang``: ``triggerc serve`` (SQLite journal), every request starts a run;
- ``triggerlang (journal only)``: the same with a rule filter that never matches (the
  ingest path alone: verify, parse, match, commit, ``202``);
- ``triggerlang (PostgreSQL)`` (``--postgres``): ``triggerc serve --store URL --workers
  16`` on a throwaway PostgreSQL with fsync and ``synchronous_commit`` on
  (``tests/pgserver.py``), every request a run;
- ``adnanh/webhook`` 2.8 (Debian's ``webhook``), the same bearer check, the same action;
- ``baseline`` (``--baseline REV``): ``triggerc serve`` of an earlier commit (a ``git
  worktree`` of it in a temporary folder, run with this interpreter), e.g. the code
  before issue 12; ``--baseline-h11`` hides httptools from it so uvicorn picks h11, as
  that code ran before httptools became a dependency.

The action is the same small C program for every server (compiled here with ``cc``; it
adds one to a counter in a shared file and exits, about what ``true`` costs), so the runs
each server executed during the load are counted the same way for all, webhook included
(which answers ``202`` before it runs anything, and keeps no record). Without ``cc``,
``/bin/true`` and the journals' counts (webhook's runs are then not counted).

The machine's spawn ceiling: a plain C loop that ``posix_spawn``s the same program,
keeping 16 in flight, for 3 s, alone (``--ceiling-seconds``); runs/s of each server are
also given as a fraction of it. The load average is printed with every measurement: the
machine is shared, so compare ratios taken in one run.

Where the CPU went (Linux): during each load, the machine's busy time (``/proc/stat``, all
cores), the server process's (user + system, all its threads), triggerlang's spawner's,
wrk's (this script's child), and the rest: the runs' own processes, the kernel's work
for them, anything else running. It shows what a run costs the machine beside the server.

Usage::

    .venv/bin/python bench/ingest.py [--duration 10] [--connections 1,16,64] [--rounds 3]
        [--journal-only] [--postgres] [--baseline REV [--baseline-h11]] [--no-webhook]
        [--json results.json]

Prints markdown tables (paste them into bench/README.md). Not part of the test suite.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import os
import platform
import re
import shutil
import signal
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
TOKEN = "bench-token-0123456789"
BODY = '{"repo": "bench", "n": 1}'
START_DEADLINE = 60.0
DRAIN_DEADLINE = 900.0

RULES = """\
secret tok = env "BENCH_TOKEN"
source http path="/hook" token=tok
action noop = exec {program}
ingest: on http.post path="/hook" {filter}run noop busy parallel
"""

LUA = """\
wrk.method = "POST"
wrk.body = '{body}'
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer {token}"
local threads = {{}}
function setup(thread) table.insert(threads, thread) end
function init(args) n202 = 0; nother = 0 end
function response(status, headers, body)
  if status == 202 then n202 = n202 + 1 else nother = nother + 1 end
end
function done(summary, latency, requests)
  local a, b = 0, 0
  for _, t in ipairs(threads) do a = a + t:get("n202"); b = b + t:get("nother") end
  io.write(string.format("COUNT202 %d OTHER %d\\n", a, b))
end
"""

COUNTER_C = r"""
#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>
/* add one to the 8-byte counter in the file argv[1] (a run executed), then exit */
int main(int argc, char **argv) {
    if (argc < 2) return 0;
    int fd = open(argv[1], O_RDWR);
    if (fd < 0) return 1;
    long *n = mmap(0, sizeof(long), PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (n == MAP_FAILED) return 1;
    __atomic_fetch_add(n, 1, __ATOMIC_SEQ_CST);
    return 0;
}
"""

CEILING_C = r"""
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <time.h>
extern char **environ;
/* ceiling SECONDS INFLIGHT PROGRAM ARG...: posix_spawn PROGRAM as fast as it goes, keeping
   INFLIGHT children, each in a session of its own (as the servers do); prints spawns/s */
static double now(void) { struct timespec t; clock_gettime(CLOCK_MONOTONIC, &t); return t.tv_sec + t.tv_nsec / 1e9; }
int main(int argc, char **argv) {
    double secs = atof(argv[1]); int k = atoi(argv[2]); long n = 0; int live = 0;
    posix_spawnattr_t attr; posix_spawnattr_init(&attr);
#ifdef POSIX_SPAWN_SETSID
    posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSID);
#endif
    double t0 = now(), end = t0 + secs;
    while (now() < end) {
        while (live < k) { pid_t pid; if (posix_spawn(&pid, argv[3], NULL, &attr, argv + 3, environ) != 0) break; live++; }
        if (wait(NULL) > 0) { live--; n++; }
    }
    while (live > 0 && wait(NULL) > 0) { live--; n++; }
    printf("%.1f\n", n / (now() - t0));
    return 0;
}
"""


# --------------------------------------------------------------------------- helpers

def ensure_tool(name: str) -> str | None:
    """The path of ``name``, installing the Debian package of that name if missing."""
    path = shutil.which(name)
    if path or not shutil.which("apt-get"):
        return path
    print(f"# {name} not found: trying apt-get install -y {name}", file=sys.stderr)
    cmd = ["apt-get", "install", "-y", "-q", name]
    if os.geteuid() != 0:
        if not shutil.which("sudo"):
            return None
        cmd = ["sudo", "-n", *cmd]
    subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)
    return shutil.which(name)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port: int, proc: subprocess.Popen, deadline: float = START_DEADLINE) -> None:
    end = time.monotonic() + deadline
    while time.monotonic() < end:
        if proc.poll() is not None:
            raise RuntimeError(f"the server exited with {proc.returncode} while starting")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nothing listens on port {port} after {deadline:.0f}s")


def loadavg() -> float:
    try:
        return float(Path("/proc/loadavg").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return float("nan")


def compile_c(source: str, out: Path) -> Path | None:
    cc = shutil.which("cc") or shutil.which("gcc")
    if cc is None:
        return None
    src = out.with_suffix(".c")
    src.write_text(source)
    r = subprocess.run([cc, "-O2", "-o", str(out), str(src)], capture_output=True, text=True)
    return out if r.returncode == 0 else None


class Counter:
    """The 8-byte file the counting action adds one to."""

    def __init__(self, path: Path) -> None:
        self.path = path
        path.write_bytes(b"\0" * 8)

    def read(self) -> int:
        return int.from_bytes(self.path.read_bytes()[:8], sys.byteorder)


# --------------------------------------------------------------------------- servers

class TriggerServer:
    """``triggerc serve`` (this checkout, or ``code`` for a baseline) on SQLite or a store URL."""

    def __init__(self, name: str, work: Path, action: list[str], *, journal_only: bool = False,
                 code: Path | None = None, hide_httptools: Path | None = None, store_url: str | None = None,
                 workers: int = 16) -> None:
        self.name = name
        self.dir = work
        self.dir.mkdir(parents=True, exist_ok=True)
        self.state = self.dir / "state"
        self.code = code or ROOT
        self.hide = hide_httptools
        self.store_url = store_url
        self.workers = workers
        program = " ".join(json.dumps(a) for a in action)
        (self.dir / "rules.trg").write_text(RULES.format(program=program,
                                                         filter='payload.never="x" ' if journal_only else ""))
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/hook"

    def start(self) -> None:
        self.log = open(self.dir / "serve.log", "ab")
        env = {**os.environ, "BENCH_TOKEN": TOKEN}
        env["PYTHONPATH"] = os.pathsep.join([*([str(self.hide)] if self.hide else []), str(self.code)])
        argv = [sys.executable, "-m", "triggerlang.cli", "serve", str(self.dir / "rules.trg"), "--port",
                str(self.port), "--no-reload", "--grace", "120"]
        if self.store_url:
            argv += ["--store", self.store_url, "--workers", str(self.workers)]
        else:
            argv += ["--state", str(self.state)]
        self.proc = subprocess.Popen(argv, stdout=self.log, stderr=self.log, stdin=subprocess.DEVNULL, env=env,
                                     cwd=self.code)
        wait_port(self.port, self.proc)

    def _runs(self) -> tuple[int, int, dict[str, int]]:
        """(events, runs not yet ended, runs by status)."""
        if self.store_url:
            import psycopg

            with psycopg.connect(self.store_url, autocommit=True) as db:
                events = db.execute("SELECT COUNT(*) FROM trg_events").fetchone()[0]
                by = dict(db.execute("SELECT status, COUNT(*) FROM trg_runs GROUP BY status").fetchall())
        else:
            with sqlite3.connect(f"file:{self.state / 'journal.sqlite3'}?mode=ro", uri=True, timeout=30) as db:
                events = db.execute("SELECT COUNT(*) FROM events").fetchone()[0]
                by = dict(db.execute("SELECT status, COUNT(*) FROM runs GROUP BY status").fetchall())
        return events, by.get("queued", 0) + by.get("running", 0), by

    def drain(self, deadline: float = DRAIN_DEADLINE) -> float:
        """Seconds until no run is queued or running."""
        t0 = time.monotonic()
        while time.monotonic() - t0 < deadline:
            if self._runs()[1] == 0:
                break
            time.sleep(0.25)
        return time.monotonic() - t0

    def stop(self) -> int:
        self.proc.send_signal(signal.SIGTERM)
        try:
            rc = self.proc.wait(180)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            rc = self.proc.wait()
        self.log.close()
        return rc

    def journal(self) -> dict[str, Any]:
        events, _, by = self._runs()
        return {"events": events, "runs": by}


class WebhookServer:
    name = "adnanh/webhook"

    def __init__(self, work: Path, binary: str, action: list[str]) -> None:
        self.dir = work
        self.dir.mkdir(parents=True, exist_ok=True)
        self.binary = binary
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/hooks/hook"
        hooks = [{
            "id": "hook",
            "execute-command": action[0],
            "pass-arguments-to-command": [{"source": "string", "name": a} for a in action[1:]],
            "command-working-directory": str(self.dir),
            "http-methods": ["POST"],
            "success-http-response-code": 202,
            "response-message": "accepted",
            "trigger-rule": {"match": {"type": "value", "value": f"Bearer {TOKEN}",
                                       "parameter": {"source": "header", "name": "Authorization"}}},
        }]
        (self.dir / "hooks.json").write_text(json.dumps(hooks, indent=2))

    def version(self) -> str:
        r = subprocess.run([self.binary, "-version"], capture_output=True, text=True)
        return (r.stdout or r.stderr).strip()

    def start(self) -> None:
        self.log = open(self.dir / "webhook.log", "ab")
        self.proc = subprocess.Popen(
            [self.binary, "-hooks", str(self.dir / "hooks.json"), "-ip", "127.0.0.1", "-port", str(self.port)],
            stdout=self.log, stderr=self.log, stdin=subprocess.DEVNULL)
        wait_port(self.port, self.proc)

    def drain(self) -> float:
        time.sleep(1.0)  # its goroutines finish on their own; nothing to wait on
        return 0.0

    def stop(self) -> int:
        self.proc.send_signal(signal.SIGTERM)
        try:
            rc = self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            rc = self.proc.wait()
        self.log.close()
        return rc


# --------------------------------------------------------------------------- CPU

_TICK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def _proc_cpu(pid: int) -> float:
    """CPU seconds (user + system, all threads) of a live process; 0 when it is gone."""
    try:
        f = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(f[11]) + int(f[12])) / _TICK


def _machine_busy() -> float:
    """CPU seconds the whole machine spent busy (every core, everything but idle and iowait)."""
    f = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    return (sum(f) - f[3] - f[4]) / _TICK


def _spawners() -> list[int]:
    """triggerlang spawner processes (``python -I -S .../runtime/spawn.py``) alive now."""
    out = []
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                cmd = Path(f"/proc/{d}/cmdline").read_bytes()
            except OSError:
                continue
            if b"runtime/spawn.py" in cmd and b"-I\0" in cmd:
                out.append(int(d))
    return out


class CpuWatch:
    """Where the CPU went during one load: the machine (all cores), the server process,
    triggerlang's spawner, wrk (this script's child), and the rest, which is the runs'
    own processes, the kernel's work for them, and whatever else ran (``load`` shows it).
    Only on Linux (``/proc``); ``None`` figures elsewhere."""

    def __init__(self, server_pid: int) -> None:
        self.pid = server_pid
        self.ok = Path("/proc/stat").exists()

    def start(self) -> None:
        if not self.ok:
            return
        import resource

        self.t0 = time.monotonic()
        self.m0 = _machine_busy()
        self.s0 = _proc_cpu(self.pid)
        self.sp0 = {p: _proc_cpu(p) for p in _spawners()}
        ru = resource.getrusage(resource.RUSAGE_CHILDREN)
        self.w0 = ru.ru_utime + ru.ru_stime

    def stop(self) -> dict[str, float]:
        if not self.ok:
            return {}
        import resource

        wall = time.monotonic() - self.t0
        ru = resource.getrusage(resource.RUSAGE_CHILDREN)
        spawner = sum(_proc_cpu(p) - self.sp0.get(p, 0.0) for p in _spawners())
        cpu = {"machine": _machine_busy() - self.m0, "server": _proc_cpu(self.pid) - self.s0, "spawner": spawner,
               "wrk": ru.ru_utime + ru.ru_stime - self.w0}
        cpu["rest"] = max(0.0, cpu["machine"] - cpu["server"] - cpu["spawner"] - cpu["wrk"])
        return {k: round(v / wall, 3) for k, v in cpu.items()}  # cores


# --------------------------------------------------------------------------- load

@dataclass
class Load:
    connections: int
    duration: float
    rps: float
    p50_ms: float
    p99_ms: float
    answered_202: int
    other: int
    errors: int
    extra: dict = field(default_factory=dict)


_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1000.0, "m": 60000.0}


def _ms(text: str) -> float:
    m = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text.strip())
    if not m:
        raise ValueError(f"cannot read the latency {text!r}")
    return float(m.group(1)) * _UNITS[m.group(2)]


def run_wrk(wrk: str, url: str, connections: int, duration: float, work: Path) -> Load:
    script = work / "post.lua"
    script.write_text(LUA.format(body=BODY, token=TOKEN))
    threads = max(1, min(2, connections))
    cmd = [wrk, f"-t{threads}", f"-c{connections}", f"-d{int(duration)}s", "--latency", "--timeout", "10s",
           "-s", str(script), url]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    p50 = _ms(re.search(r"^\s+50%\s+(\S+)", out, re.M).group(1))
    p99 = _ms(re.search(r"^\s+99%\s+(\S+)", out, re.M).group(1))
    m = re.search(r"COUNT202 (\d+) OTHER (\d+)", out)
    err = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    errors = sum(int(x) for x in err.groups()) if err else 0
    return Load(connections, duration, rps, p50, p99, int(m.group(1)), int(m.group(2)), errors)


def spawn_ceiling(ceiling: Path | None, action: list[str], seconds: float) -> float | None:
    if ceiling is None or seconds <= 0:
        return None
    out = subprocess.run([str(ceiling), str(seconds), "16", *action], capture_output=True, text=True)
    try:
        return float(out.stdout.strip())
    except ValueError:
        return None


# --------------------------------------------------------------------------- main

def machine() -> str:
    cpu = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{os.cpu_count()} x {cpu}; {platform.platform()}; Python {platform.python_version()}"


def baseline_checkout(rev: str, tmp: Path) -> Path:
    where = tmp / "baseline"
    subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "--detach", str(where), rev], check=True,
                   capture_output=True)
    return where


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--duration", type=float, default=10.0, help="seconds of load per measurement")
    ap.add_argument("--connections", default="1,16,64", help="comma-separated concurrency levels")
    ap.add_argument("--rounds", type=int, default=1, help="rounds (medians are reported)")
    ap.add_argument("--journal-only", action="store_true", help="also the ingest path alone (no rule matches)")
    ap.add_argument("--postgres", action="store_true", help="also serve --store on a throwaway PostgreSQL")
    ap.add_argument("--baseline", metavar="REV", help="also triggerc serve of this git revision")
    ap.add_argument("--baseline-h11", action="store_true", help="the baseline without httptools (uvicorn's h11)")
    ap.add_argument("--no-webhook", action="store_true", help="do not measure adnanh/webhook")
    ap.add_argument("--only", help="comma-separated servers to run: triggerlang, journal, postgres, webhook, "
                                   "baseline, baseline-journal")
    ap.add_argument("--ceiling-seconds", type=float, default=3.0, help="seconds of the spawn-ceiling loop (0: skip)")
    ap.add_argument("--json", type=Path, help="write the raw figures here")
    args = ap.parse_args()
    levels = [int(x) for x in args.connections.split(",") if x.strip()]
    wrk = ensure_tool("wrk")
    if wrk is None:
        print("wrk is needed (apt-get install wrk)", file=sys.stderr)
        return 2
    webhook = None if args.no_webhook else ensure_tool("webhook")
    print(f"# machine: {machine()}; load average {loadavg():.2f}", file=sys.stderr)

    results: list[dict] = []
    failures = 0
    with tempfile.TemporaryDirectory(prefix="trg-bench-") as tmpname:
        tmp = Path(tmpname)
        counter_bin = compile_c(COUNTER_C, tmp / "trg-count")
        ceiling_bin = compile_c(CEILING_C, tmp / "spawn-ceiling")
        counter = Counter(tmp / "counter") if counter_bin else None
        action = [str(counter_bin), str(counter.path)] if counter_bin and counter else ["/bin/true"]
        print(f"# action: {' '.join(action)}", file=sys.stderr)
        ceilings = []
        if counter:
            base = counter.read()
        c1 = spawn_ceiling(ceiling_bin, action, args.ceiling_seconds)
        if c1:
            ceilings.append(c1)
            print(f"# spawn ceiling (C posix_spawn loop, 16 in flight): {c1:.0f}/s  load {loadavg():.2f}",
                  file=sys.stderr)
        pg = None
        if args.postgres:
            sys.path.insert(0, str(ROOT / "tests"))
            from pgserver import PgServer

            pg = PgServer(durable=True)
        code = baseline_checkout(args.baseline, tmp) if args.baseline else None
        hide = None
        if code is not None and args.baseline_h11:
            hide = tmp / "hide-httptools"
            (hide / "httptools").mkdir(parents=True)
            (hide / "httptools" / "__init__.py").write_text("raise ImportError('hidden by bench/ingest.py')\n")
        try:
            for rnd in range(args.rounds):
                for c in levels:
                    kinds: list[tuple[str, Any]] = [("triggerlang", lambda w: TriggerServer("triggerlang", w, action))]
                    if args.journal_only:
                        kinds.append(("triggerlang (journal only)",
                                      lambda w: TriggerServer("triggerlang (journal only)", w, action,
                                                              journal_only=True)))
                    if pg is not None:
                        kinds.append(("triggerlang (PostgreSQL)",
                                      lambda w: TriggerServer("triggerlang (PostgreSQL)", w, action,
                                                              store_url=pg.new_database())))
                    if code is not None:
                        label = f"baseline {args.baseline}" + (" (h11)" if hide else "")
                        kinds.append((label, lambda w, label=label: TriggerServer(label, w, action, code=code,
                                                                                   hide_httptools=hide)))
                        if args.journal_only:
                            jl = label + " (journal only)"
                            kinds.append((jl, lambda w, jl=jl: TriggerServer(jl, w, action, code=code,
                                                                              hide_httptools=hide, journal_only=True)))
                    if webhook:
                        kinds.append(("adnanh/webhook", lambda w: WebhookServer(w, webhook, action)))
                    if args.only:
                        want = {x.strip() for x in args.only.split(",")}
                        kinds = [(n, m) for n, m in kinds if _kind(n) in want]
                    for label, make in kinds:
                        work = tmp / f"r{rnd}-c{c}-{re.sub(r'[^a-z0-9]+', '-', label.lower())}"
                        server = make(work)
                        server.start()
                        before = counter.read() if counter else 0
                        la0 = loadavg()
                        watch = CpuWatch(server.proc.pid)
                        try:
                            watch.start()
                            load = run_wrk(wrk, server.url, c, args.duration, work)
                            during = (counter.read() - before) if counter else None
                            cores = watch.stop()
                            drain = server.drain()
                            after = (counter.read() - before) if counter else None
                        finally:
                            rc = server.stop()
                        row: dict[str, Any] = {"server": label, "round": rnd, **asdict(load), "exit_code": rc,
                                               "load_before": la0, "load_after": loadavg(),
                                               "runs_during": during, "runs_total": after,
                                               "drain_s": round(drain, 2), "cores": cores}
                        if isinstance(server, TriggerServer):
                            j = server.journal()
                            row.update(events=j["events"], runs_by_status=j["runs"])
                            ok = load.answered_202 <= j["events"] <= load.answered_202 + c
                            if "journal only" not in label:
                                ok = ok and sum(j["runs"].values()) == j["events"] == j["runs"].get("succeeded", 0)
                            row["journal_check"] = "ok" if ok else "MISMATCH"
                            failures += not ok
                        results.append(row)
                        runs = "" if during is None else f"  runs during {during} ({during / load.duration:.0f}/s)"
                        jc = f"  journal {row['events']} ({row['journal_check']})" if "events" in row else ""
                        print(f"# r{rnd} {label:34s} c={c:<3d} {load.rps:8.0f} req/s  p50 {load.p50_ms:7.2f} ms  "
                              f"p99 {load.p99_ms:8.2f} ms  202s {load.answered_202}  other {load.other}  "
                              f"errors {load.errors}{runs}{jc}  drain {drain:.1f}s  load {la0:.1f}",
                              file=sys.stderr)
                        if cores:
                            print("#     cores busy: " + "  ".join(f"{k} {v:.2f}" for k, v in cores.items()),
                                  file=sys.stderr)
                c2 = spawn_ceiling(ceiling_bin, action, args.ceiling_seconds)
                if c2:
                    ceilings.append(c2)
                    print(f"# spawn ceiling: {c2:.0f}/s  load {loadavg():.2f}", file=sys.stderr)
        finally:
            if pg is not None:
                pg.stop()
            if code is not None:
                subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force", str(code)],
                               capture_output=True)
    ceiling = statistics.median(ceilings) if ceilings else None
    print_tables(results, levels, ceiling, args.duration)
    if args.json:
        args.json.write_text(json.dumps({"machine": machine(), "date": _dt.date.today().isoformat(),
                                         "ceiling": ceilings, "results": results}, indent=2))
    return 1 if failures else 0


def _kind(label: str) -> str:
    """The ``--only`` name of a server."""
    if label == "adnanh/webhook":
        return "webhook"
    if label.startswith("baseline"):
        return "baseline-journal" if "journal only" in label else "baseline"
    if "journal only" in label:
        return "journal"
    if "PostgreSQL" in label:
        return "postgres"
    return "triggerlang"


def print_tables(results: list[dict], levels: list[int], ceiling: float | None, duration: float) -> None:
    def med(server: str, c: int, key: str) -> float | None:
        xs = [r[key] for r in results if r["server"] == server and r["connections"] == c and r.get(key) is not None]
        return statistics.median(xs) if xs else None

    servers = list(dict.fromkeys(r["server"] for r in results))
    loads = [r["load_before"] for r in results] + [r["load_after"] for r in results]
    print(f"\nMachine: {machine()}  \nDate: {_dt.date.today().isoformat()}  \n"
          f"Load average during the run: {min(loads):.1f}-{max(loads):.1f}  \n"
          f"wrk, {duration:.0f} s per measurement, POST of {len(BODY)} bytes with a bearer token; "
          f"medians of {max(r['round'] for r in results) + 1} round(s)"
          + (f"; spawn ceiling {ceiling:.0f}/s" if ceiling else "") + "\n")
    print("| server | connections | req/s | p50 | p99 | runs during the load (/s) | of the ceiling | journal |")
    print("|---|---:|---:|---:|---:|---:|---:|---|")
    for c in levels:
        for s in servers:
            rps = med(s, c, "rps")
            if rps is None:
                continue
            during = med(s, c, "runs_during")
            per_s = during / duration if during is not None else None
            checks = {r.get("journal_check") for r in results if r["server"] == s and r["connections"] == c}
            print(f"| {s} | {c} | {rps:,.0f} | {med(s, c, 'p50_ms'):.2f} ms | {med(s, c, 'p99_ms'):.1f} ms | "
                  + (f"{during:,.0f} ({per_s:,.0f}/s)" if per_s is not None else "n/a") + " | "
                  + (f"{per_s / ceiling:.2f}" if per_s is not None and ceiling else "") + " | "
                  + (", ".join(sorted(x for x in checks if x)) or "n/a") + " |")
    if any(r.get("cores") for r in results):
        print("\nWhere the CPU went during the load, in cores (of the machine's "
              f"{os.cpu_count()}): the server process, triggerlang's spawner, wrk, and the rest "
              "(the runs' processes, the kernel's work for them, anything else); then the server's "
              "CPU per answered request, and the spawner's and the rest's per run executed during the load.\n")
        print("| server | connections | machine | server | spawner | wrk | rest | server µs / request "
              "| spawner µs / run | rest µs / run |")
        print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
        for c in levels:
            for s in servers:
                rows = [r for r in results if r["server"] == s and r["connections"] == c and r.get("cores")]
                if not rows:
                    continue
                core = {k: statistics.median(r["cores"][k] for r in rows) for k in rows[0]["cores"]}
                rps = med(s, c, "rps") or 0
                during = med(s, c, "runs_during")
                per_req = f"{core['server'] / rps * 1e6:,.0f}" if rps else ""
                runs_s = during / duration if during else None
                sp_run = f"{core['spawner'] / runs_s * 1e6:,.0f}" if runs_s and core["spawner"] else ""
                rest_run = f"{core['rest'] / runs_s * 1e6:,.0f}" if runs_s else ""
                print(f"| {s} | {c} | {core['machine']:.2f} | {core['server']:.2f} | {core['spawner']:.2f} | "
                      f"{core['wrk']:.2f} | {core['rest']:.2f} | {per_req} | {sp_run} | {rest_run} |")
    if any(r["server"] == "adnanh/webhook" for r in results):
        print("\n| server | connections | req/s ÷ webhook | runs during the load ÷ webhook |")
        print("|---|---:|---:|---:|")
        for c in levels:
            w = med("adnanh/webhook", c, "rps")
            wr = med("adnanh/webhook", c, "runs_during")
            for s in servers:
                if s == "adnanh/webhook" or med(s, c, "rps") is None or w is None:
                    continue
                r = med(s, c, "runs_during")
                ratio = f"{r / wr:.2f}" if r is not None and wr else "n/a"
                print(f"| {s} | {c} | {med(s, c, 'rps') / w:.2f} | {ratio} |")


if __name__ == "__main__":
    sys.exit(main())
