#!/usr/bin/env python3
"""Webhook ingest: requests/s and p50/p99 latency of ``202`` answers from ``triggerc serve``.

What it does, for each concurrency level (a fresh server and state folder each time):

1. starts ``triggerc serve`` on a loopback port with one token-protected generic HTTP
   route and a trivial action (``exec "true"``, ``busy parallel``);
2. drives it with wrk (Debian's ``wrk``; installed with ``apt-get install -y wrk`` when
   missing, else a Python asyncio load generator is used and the report says so) for a
   fixed duration, POSTing a small JSON body with the bearer token;
3. stops the load, waits for every queued run to finish (how long the backlog takes is
   reported as runs/s), stops the server, and checks the journal: it must hold every
   event that was answered ``202`` (wrk cannot count the requests still in flight when
   it stops, at most one per connection, which the server may have journaled: the check
   is ``answered_202 <= journaled <= answered_202 + connections``; the Python generator
   counts exactly, so there the check is equality).

If Debian's ``webhook`` package (adnanh/webhook) is installed or installs, the same load
runs against it in the same run, with a hooks.json that runs the same ``true`` on the same
bearer token and answers 202, and both are reported side by side. It journals nothing:
it answers once it has started the command in a goroutine.

Usage::

    .venv/bin/python bench/ingest.py [--duration 10] [--connections 1,16,64] [--no-webhook]
        [--journal-only] [--json results.json]

Prints a markdown table (paste it into bench/README.md) and, with ``--json``, the raw
figures. Not part of the test suite.
"""

from __future__ import annotations

import argparse
import asyncio
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

ROOT = Path(__file__).resolve().parents[1]
TOKEN = "bench-token-0123456789"
BODY = '{"repo": "bench", "n": 1}'
START_DEADLINE = 30.0

RULES = """\
secret tok = env "BENCH_TOKEN"
source http path="/hook" token=tok
action noop = exec "true"
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


# --------------------------------------------------------------------------- tools

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


# --------------------------------------------------------------------------- servers

class TriggerServer:
    name = "triggerc serve"

    def __init__(self, work: Path, journal_only: bool = False) -> None:
        self.dir = work / "triggerlang"
        self.dir.mkdir(parents=True, exist_ok=True)
        self.state = self.dir / "state"
        self.journal_only = journal_only
        (self.dir / "rules.trg").write_text(RULES.format(filter='payload.never="x" ' if journal_only else ""))
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/hook"

    def start(self) -> None:
        self.log = open(self.dir / "serve.log", "ab")
        env = {**os.environ, "BENCH_TOKEN": TOKEN}
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "triggerlang.cli", "serve", str(self.dir / "rules.trg"), "--state", str(self.state),
             "--port", str(self.port), "--no-reload", "--grace", "60"],
            stdout=self.log, stderr=self.log, stdin=subprocess.DEVNULL, env=env, cwd=ROOT)
        wait_port(self.port, self.proc)

    def drain(self, deadline: float = 600.0) -> tuple[int, float]:
        """Wait until no run is queued or running: (runs, seconds it took)."""
        t0 = time.monotonic()
        while True:
            with sqlite3.connect(f"file:{self.state / 'journal.sqlite3'}?mode=ro", uri=True, timeout=30) as db:
                total, pending = db.execute(
                    "SELECT COUNT(*), SUM(status IN ('queued', 'running')) FROM runs").fetchone()
            if not pending or time.monotonic() - t0 > deadline:
                return total, time.monotonic() - t0
            time.sleep(0.2)

    def stop(self) -> int:
        self.proc.send_signal(signal.SIGTERM)
        rc = self.proc.wait(120)
        self.log.close()
        return rc

    def journal_counts(self) -> dict[str, int]:
        with sqlite3.connect(f"file:{self.state / 'journal.sqlite3'}?mode=ro", uri=True) as db:
            events = db.execute("SELECT COUNT(*) FROM events").fetchone()[0]
            runs = dict(db.execute("SELECT status, COUNT(*) FROM runs GROUP BY status").fetchall())
        return {"events": events, **{f"runs_{k}": v for k, v in runs.items()}}


class WebhookServer:
    name = "adnanh/webhook"

    def __init__(self, work: Path, binary: str) -> None:
        self.dir = work / "webhook"
        self.dir.mkdir(parents=True, exist_ok=True)
        self.binary = binary
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/hooks/hook"
        hooks = [{
            "id": "hook",
            "execute-command": shutil.which("true") or "/bin/true",
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

    def drain(self) -> tuple[int, float]:
        return 0, 0.0

    def stop(self) -> int:
        self.proc.send_signal(signal.SIGTERM)
        try:
            rc = self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            rc = self.proc.wait()
        self.log.close()
        return rc


# --------------------------------------------------------------------------- load generators

@dataclass
class Load:
    generator: str
    connections: int
    duration: float
    rps: float
    p50_ms: float
    p99_ms: float
    answered_202: int
    other: int
    errors: int
    exact_count: bool
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
    n202, other = int(m.group(1)), int(m.group(2))
    err = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    errors = sum(int(x) for x in err.groups()) if err else 0
    return Load("wrk", connections, duration, rps, p50, p99, n202, other, errors, exact_count=False,
                extra={"wrk_output": out})


async def _python_load(url: str, connections: int, duration: float) -> Load:
    """A small closed-loop generator: ``connections`` keep-alive HTTP/1.1 connections, each
    sending the next request when the previous answer is in. Every answer is counted."""
    import urllib.parse

    u = urllib.parse.urlsplit(url)
    request = (f"POST {u.path} HTTP/1.1\r\nHost: {u.hostname}:{u.port}\r\nContent-Type: application/json\r\n"
               f"Authorization: Bearer {TOKEN}\r\nContent-Length: {len(BODY)}\r\n\r\n{BODY}").encode()
    lat: list[float] = []
    counts = {"202": 0, "other": 0, "errors": 0}
    end = time.monotonic() + duration

    async def worker() -> None:
        reader, writer = await asyncio.open_connection(u.hostname, u.port)
        try:
            while time.monotonic() < end:
                t0 = time.perf_counter()
                writer.write(request)
                status_line = await reader.readline()
                length = 0
                while True:
                    line = await reader.readline()
                    if line in (b"\r\n", b""):
                        break
                    k, _, v = line.decode("latin-1").partition(":")
                    if k.lower() == "content-length":
                        length = int(v)
                await reader.readexactly(length)
                status = int(status_line.split()[1])
                if status == 202:
                    counts["202"] += 1
                    lat.append((time.perf_counter() - t0) * 1000)
                else:
                    counts["other"] += 1
        except (OSError, asyncio.IncompleteReadError, IndexError, ValueError):
            counts["errors"] += 1
        finally:
            writer.close()

    t0 = time.monotonic()
    await asyncio.gather(*(worker() for _ in range(connections)))
    elapsed = time.monotonic() - t0
    q = statistics.quantiles(lat, n=100) if len(lat) >= 2 else [float("nan")] * 99
    return Load("python-asyncio", connections, duration, counts["202"] / elapsed, q[49], q[98], counts["202"],
                counts["other"], counts["errors"], exact_count=True)


def run_python(url: str, connections: int, duration: float) -> Load:
    return asyncio.run(_python_load(url, connections, duration))


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
    mem = ""
    try:
        kb = int(re.search(r"MemTotal:\s+(\d+)", Path("/proc/meminfo").read_text()).group(1))
        mem = f", {kb / 1024 / 1024:.0f} GiB RAM"
    except (OSError, AttributeError):
        pass
    return f"{os.cpu_count()} x {cpu}{mem}; {platform.platform()}; Python {platform.python_version()}"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--duration", type=float, default=10.0, help="seconds of load per level")
    ap.add_argument("--connections", default="1,16,64", help="comma-separated concurrency levels")
    ap.add_argument("--no-webhook", action="store_true", help="do not measure adnanh/webhook")
    ap.add_argument("--journal-only", action="store_true",
                    help="also measure triggerlang with a rule that matches nothing (journal, no run)")
    ap.add_argument("--python-load", action="store_true", help="use the Python generator even if wrk is there")
    ap.add_argument("--json", type=Path, help="write the raw figures here")
    args = ap.parse_args()
    levels = [int(x) for x in args.connections.split(",") if x.strip()]

    wrk = None if args.python_load else ensure_tool("wrk")
    gen = "wrk" if wrk else "python-asyncio"
    if not wrk:
        print("# wrk is not available: using the Python asyncio load generator (slower; it shares the "
              "CPU with the server)", file=sys.stderr)
    webhook = None if args.no_webhook else ensure_tool("webhook")
    print(f"# machine: {machine()}", file=sys.stderr)
    print(f"# load generator: {gen}", file=sys.stderr)
    if webhook:
        print(f"# webhook: {webhook}", file=sys.stderr)
    elif not args.no_webhook:
        print("# adnanh/webhook is not available (apt-get install -y webhook failed): triggerlang only",
              file=sys.stderr)

    results: list[dict] = []
    failures = 0
    with tempfile.TemporaryDirectory(prefix="trg-bench-") as tmp:
        for c in levels:
            kinds: list[tuple[str, object]] = [("triggerlang", lambda w: TriggerServer(w))]
            if args.journal_only:
                kinds.append(("triggerlang (journal only)", lambda w: TriggerServer(w, journal_only=True)))
            if webhook:
                kinds.append(("adnanh/webhook", lambda w: WebhookServer(w, webhook)))
            for label, make in kinds:
                work = Path(tmp) / f"{label.split()[0].replace('/', '_')}-{'j' if 'journal' in label else 'r'}-c{c}"
                work.mkdir(parents=True)
                server = make(work)  # type: ignore[operator]
                server.start()
                try:
                    load = run_wrk(wrk, server.url, c, args.duration, work) if wrk \
                        else run_python(server.url, c, args.duration)
                    runs, drain_s = server.drain()
                finally:
                    rc = server.stop()
                row = {"server": label, **{k: v for k, v in asdict(load).items() if k != "extra"},
                       "exit_code": rc}
                if isinstance(server, TriggerServer):
                    counts = server.journal_counts()
                    row.update(counts)
                    row["drain_s"] = round(drain_s, 2)
                    row["runs"] = runs
                    slack = 0 if load.exact_count else c
                    ok = load.answered_202 <= counts["events"] <= load.answered_202 + slack
                    row["journal_check"] = "ok" if ok else "MISMATCH"
                    failures += not ok
                    row["journal_extra"] = counts["events"] - load.answered_202
                results.append(row)
                print(f"# {label:28s} c={c:<3d} {load.rps:9.0f} req/s  p50 {load.p50_ms:7.2f} ms  "
                      f"p99 {load.p99_ms:7.2f} ms  202s {load.answered_202}  other {load.other}  "
                      f"errors {load.errors}" + (f"  journal {row['events']} ({row['journal_check']}), "
                                                 f"{row['runs']} runs drained in {row['drain_s']}s"
                                                 if 'events' in row else ""), file=sys.stderr)

    print(f"\nMachine: {machine()}  \nDate: {_dt.date.today().isoformat()}  \n"
          f"Load: {gen}, {args.duration:.0f} s per level, POST of {len(BODY)} bytes with a bearer token\n")
    print("| server | connections | req/s | p50 | p99 | 202 answers | journaled events | runs (drain) |")
    print("|---|---:|---:|---:|---:|---:|---:|---|")
    for r in results:
        journal = f"{r['events']} ({r['journal_check']}, +{r['journal_extra']})" if "events" in r else "n/a"
        runs = f"{r['runs']} ({r['drain_s']} s after the load)" if "runs" in r else "run during the load"
        print(f"| {r['server']} | {r['connections']} | {r['rps']:.0f} | {r['p50_ms']:.2f} ms | {r['p99_ms']:.2f} ms "
              f"| {r['answered_202']} | {journal} | {runs} |")
    if webhook:
        print("\n| connections | triggerlang / webhook req/s | p50 ratio | p99 ratio |")
        print("|---:|---:|---:|---:|")
        for c in levels:
            t = next(r for r in results if r["server"] == "triggerlang" and r["connections"] == c)
            w = next(r for r in results if r["server"] == "adnanh/webhook" and r["connections"] == c)
            print(f"| {c} | {t['rps'] / w['rps']:.2f} | {t['p50_ms'] / w['p50_ms']:.1f}x "
                  f"| {t['p99_ms'] / w['p99_ms']:.1f}x |")
    if args.json:
        args.json.write_text(json.dumps({"machine": machine(), "date": _dt.date.today().isoformat(),
                                         "generator": gen, "results": results}, indent=2))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
