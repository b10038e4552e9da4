#!/usr/bin/env python3
"""The two stores side by side (SPEC §12): ingest, claim latency, worker throughput, recovery.

All in one run, on a throwaway PostgreSQL 15 started here (``tests/pgserver.py``, with
``fsync`` and ``synchronous_commit`` ON: every commit durable) and SQLite journals in
temporary folders:

1. **store ingest**: one event + one run per transaction, committed before returning, at 1
   and 16 concurrent client threads: ``SqliteStore.record_event`` (WAL, the default
   ``synchronous=NORMAL``, and ``FULL``) vs ``PgStore.ingest`` (the policy decision in the
   transaction, ``busy parallel`` so no lane serialises).
2. **webhooks/s through one and two ingest nodes**: real ``triggerc serve --store URL
   --workers 0`` processes (event + run committed per webhook), a bearer-token route,
   driven by ``wrk`` (one thread, 16 connections on one node; 8 + 8 on two), and one SQLite
   ``serve`` with the same rule (filter never matching: the event alone) for reference;
   the CPU each part used (``serve``, the PostgreSQL backends, ``wrk``) from ``/proc``, to
   name the bottleneck.
3. **claim -> start latency**: one ``triggerc worker`` (4 slots, LISTEN/NOTIFY), events
   ingested one at a time 100 ms apart; per run, ingest commit (when ``ingest`` returned) ->
   claim (the run's ``started_at``) and ingest commit -> the action running
   (``date +%s.%N``, its exec'd process).
4. **runs/s through 1, 2 and 4 workers** (4 slots each, separate processes): 400 queued
   runs of ``exec true`` (``busy parallel``), from the first start to the last end.
5. **recovery**: ``kill -9`` of the worker running a ``retry 1`` run; seconds until its
   retry starts on another worker, at lease 10 s / heartbeat 2 s (the defaults) and lease
   2 s / heartbeat 0.5 s.

Usage::

    .venv/bin/python bench/store.py [--quick] [--json results.json]

Prints markdown tables (paste them into bench/README.md). Not part of the test suite.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT / "bench"))

from ingest import TOKEN, free_port, wait_port  # noqa: E402
from pgserver import PgServer  # noqa: E402

from triggerlang.events import Event  # noqa: E402
from triggerlang.runtime.journal import SqliteStore  # noqa: E402
from triggerlang.runtime.pgstore import PgStore  # noqa: E402
from triggerlang.runtime.store import Intent, PlannedRun  # noqa: E402

PY = sys.executable


TICK = os.sysconf("SC_CLK_TCK")


def proc_cpu(pid: int) -> float:
    """CPU seconds (user + system) used so far by process ``pid`` (0 if it is gone)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return 0.0
    f = stat[stat.rfind(")") + 2:].split()
    return (int(f[11]) + int(f[12])) / TICK


def children(ppid: int) -> list[int]:
    out = []
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                stat = (d / "stat").read_text()
            except OSError:
                continue
            if int(stat[stat.rfind(")") + 2:].split()[1]) == ppid:
                out.append(int(d.name))
    return out


def comm(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip()
    except OSError:
        return ""


def machine_busy() -> tuple[float, float]:
    """(busy, total) CPU seconds of the whole machine so far (/proc/stat)."""
    f = [int(x) for x in open("/proc/stat").readline().split()[1:]]
    idle = f[3] + f[4]
    return (sum(f) - idle) / TICK, sum(f) / TICK


class CpuMeter:
    """CPU seconds used by groups of processes between start() and stop()."""

    def __init__(self, groups: dict[str, Any]) -> None:
        self.groups = groups  # name -> callable returning the pids to count

    def _sample(self) -> dict[str, dict[int, float]]:
        return {g: {pid: proc_cpu(pid) for pid in pids()} for g, pids in self.groups.items()}

    def start(self) -> None:
        self.t0 = time.monotonic()
        self.m0 = machine_busy()
        self.s0 = self._sample()

    def stop(self) -> dict[str, float]:
        s1 = self._sample()
        m1 = machine_busy()
        wall = time.monotonic() - self.t0
        out = {g: sum(v - self.s0[g].get(pid, 0.0) for pid, v in s1[g].items()) for g in s1}
        out["machine busy %"] = 100 * (m1[0] - self.m0[0]) / max(1e-9, m1[1] - self.m0[1])
        out["wall"] = wall
        return out


def pct(xs: list[float], p: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(p / 100 * (len(xs) - 1))))]


# --------------------------------------------------------------------------- 1. store ingest

def store_ingest(make, record, clients: int, seconds: float) -> float:
    """Transactions per second with ``clients`` threads for ``seconds``."""
    store = make()
    count = [0] * clients
    stop = time.monotonic() + seconds

    def client(i: int) -> None:
        n = 0
        while time.monotonic() < stop:
            record(store, i, n)
            n += 1
        count[i] = n

    threads = [threading.Thread(target=client, args=(i,)) for i in range(clients)]
    t0 = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.monotonic() - t0
    store.close()
    return sum(count) / elapsed


def bench_store_ingest(pg: PgServer, seconds: float) -> list[dict]:
    out = []
    for clients in (1, 16):
        for sync in ("NORMAL", "FULL"):
            tmp = Path(tempfile.mkdtemp(prefix="bench-sqlite-"))
            try:
                rate = store_ingest(lambda: SqliteStore(tmp, synchronous=sync),
                                    lambda st, i, n: st.record_event(Event("http", "post", {"n": n}),
                                                                     [PlannedRun("r", "a", {"n": n})]),
                                    clients, seconds)
            finally:
                shutil.rmtree(tmp, ignore_errors=True)
            out.append({"store": f"SQLite (WAL, synchronous={sync})", "clients": clients, "per_s": rate})
        url = pg.new_database()
        rate = store_ingest(lambda: PgStore(url, pool_size=16),
                            lambda st, i, n: st.ingest(Event("http", "post", {"n": n}),
                                                       [Intent("r", "a", {"n": n}, busy="parallel")]),
                            clients, seconds)
        out.append({"store": "PostgreSQL (synchronous_commit=on)", "clients": clients, "per_s": rate})
    return out


# --------------------------------------------------------------------------- processes

RULES = """\
secret tok = env "BENCH_TOKEN"
source http path="/hook" token=tok
action noop = exec "true"
ingest: on http.post path="/hook" {filter}run noop busy parallel
"""


class Proc:
    def __init__(self, argv: list[str], log: Path, cwd: Path, env: dict | None = None) -> None:
        self.log = open(log, "ab")
        self.proc = subprocess.Popen(argv, stdout=self.log, stderr=self.log, stdin=subprocess.DEVNULL, cwd=str(cwd),
                                     env={**os.environ, "BENCH_TOKEN": TOKEN, **(env or {})})

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()


def serve(work: Path, name: str, extra: list[str], filter_: str = "") -> tuple[Proc, str]:
    d = work / name
    d.mkdir(parents=True, exist_ok=True)
    (d / "rules.trg").write_text(RULES.format(filter=filter_))
    port = free_port()
    p = Proc([PY, "-m", "triggerlang.cli", "serve", str(d / "rules.trg"), "--state", str(d / "state"), "--port",
              str(port), "--no-reload", *extra], d / "serve.log", ROOT)
    wait_port(port, p.proc)
    return p, f"http://127.0.0.1:{port}/hook"


def worker(url: str, work: Path, name: str, *args: str) -> Proc:
    p = Proc([PY, "-m", "triggerlang.cli", "worker", "--store", url, *args], work / f"{name}.log", work)
    end = time.monotonic() + 30
    while "claiming runs from" not in (work / f"{name}.log").read_text(errors="replace"):
        if time.monotonic() > end or p.proc.poll() is not None:
            raise RuntimeError((work / f"{name}.log").read_text())
        time.sleep(0.05)
    return p


LEAN_LUA = """\
wrk.method = "POST"
wrk.body = '{"repo": "bench", "n": 1}'
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer %s"
""" % TOKEN


class LeanLoad:
    """wrk with one thread and no per-response Lua callback: the load generator's own CPU
    is a third of ``bench/ingest.py``'s counting script, which matters on 2 cores."""

    def __init__(self, out: str) -> None:
        import re

        self.rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
        total = int(re.search(r"(\d+) requests in", out).group(1))
        bad = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
        self.answered_202 = total - (int(bad.group(1)) if bad else 0)
        from ingest import _ms

        self.p50_ms = _ms(re.search(r"^\s+50%\s+(\S+)", out, re.M).group(1))
        self.p99_ms = _ms(re.search(r"^\s+99%\s+(\S+)", out, re.M).group(1))


def run_lean_wrk(wrk: str, url: str, connections: int, seconds: float, work: Path) -> LeanLoad:
    script = work / "lean.lua"
    script.write_text(LEAN_LUA)
    out = subprocess.run([wrk, "-t1", f"-c{connections}", f"-d{int(seconds)}s", "--latency", "--timeout", "10s",
                          "-s", str(script), url], capture_output=True, text=True, check=True).stdout
    return LeanLoad(out)


def bench_nodes(pg: PgServer, work: Path, seconds: float) -> list[dict]:
    wrk = "/usr/bin/wrk" if Path("/usr/bin/wrk").exists() else None
    if wrk is None:
        return [{"note": "wrk not installed: skipped"}]
    out = []
    # SQLite, the ingest path alone (a filter that never matches), for reference
    p, u = serve(work, "sqlite-node", [], 'payload.never="x" ')
    try:
        load = run_lean_wrk(wrk, u, 16, seconds, work)
        out.append({"setup": "SQLite serve, journal only (reference)", "rps": load.rps, "p50": load.p50_ms,
                    "p99": load.p99_ms, "ok": load.answered_202})
    finally:
        p.stop()
    for nodes in (1, 2):
        url = pg.new_database()
        procs = [serve(work, f"pg-node{nodes}-{i}", ["--store", url, "--workers", "0"]) for i in range(nodes)]
        try:
            conns = 16 // nodes
            results: list = [None] * nodes

            def drive(i: int) -> None:
                results[i] = run_lean_wrk(wrk, procs[i][1], conns, seconds, work / f"w{i}")

            for i in range(nodes):
                (work / f"w{i}").mkdir(exist_ok=True)
            postmaster = int((pg.data / "postmaster.pid").read_text().split()[0])
            meter = CpuMeter({"serve": lambda: [p.proc.pid for p, _ in procs],
                              "postgres": lambda: children(postmaster),
                              "wrk": lambda: [c for c in children(os.getpid()) if comm(c) == "wrk"]})
            ts = [threading.Thread(target=drive, args=(i,)) for i in range(nodes)]
            for t in ts:
                t.start()
            time.sleep(0.5)
            meter.start()
            time.sleep(max(0.5, seconds - 1.5))
            cpu = meter.stop()
            for t in ts:
                t.join()
            out.append({"setup": f"{nodes} PostgreSQL ingest node(s), --workers 0", "rps": sum(r.rps for r in results),
                        "p50": max(r.p50_ms for r in results), "p99": max(r.p99_ms for r in results),
                        "ok": sum(r.answered_202 for r in results), "cpu": cpu})
        finally:
            for p, _ in procs:
                p.stop()
    return out


def bench_latency(pg: PgServer, work: Path, n: int) -> dict:
    url = pg.new_database()
    st = PgStore(url)
    d = work / "latency"
    d.mkdir(exist_ok=True)
    manifest = {"triggerlang": 1, "base_dir": str(d), "sources": {}, "secrets": {}, "rules": [],
                "actions": {"stamp": {"kind": "exec", "params": [{"name": "n"}],
                                      "argv": [{"value": "date"}, {"value": "+%s.%N"}]}}}
    sha = st.publish_manifest(manifest)
    w = worker(url, d, "worker", "--slots", "4")
    commits: dict[int, float] = {}
    try:
        time.sleep(1.0)
        for i in range(n):
            rec = st.ingest(Event("http", "post", {"n": i}), [Intent("lat", "stamp", {"n": i}, busy="parallel")],
                            manifest=sha)
            commits[rec.run_ids[0]] = time.time()
            time.sleep(0.1)  # isolated events: a burst is coalesced into one claim per 50 ms by design
        end = time.monotonic() + 60
        while time.monotonic() < end:
            if all(r["status"] == "succeeded" for r in st.list_runs(limit=n)) and len(st.list_runs(limit=n)) == n:
                break
            time.sleep(0.2)
    finally:
        w.stop()
    claim, start = [], []
    for rid, committed in commits.items():
        row = st.run_row(rid)
        claim.append((row.started_at - committed) * 1000)  # one machine: the same clock
        text, _, _ = st.read_log(rid)
        stamps = [ln for ln in text.splitlines() if ln and not ln.startswith("#")]
        if stamps:
            start.append((float(stamps[0]) - committed) * 1000)
    st.close()
    return {"n": n, "claim_p50": pct(claim, 50), "claim_p99": pct(claim, 99),
            "start_p50": pct(start, 50) if start else None, "start_p99": pct(start, 99) if start else None}


def bench_throughput(pg: PgServer, work: Path, runs: int) -> list[dict]:
    out = []
    for workers in (1, 2, 4):
        url = pg.new_database()
        st = PgStore(url)
        manifest = {"triggerlang": 1, "base_dir": str(work), "sources": {}, "secrets": {}, "rules": [],
                    "actions": {"noop": {"kind": "exec", "params": [], "argv": [{"value": "true"}]}}}
        sha = st.publish_manifest(manifest)
        for i in range(runs):
            st.ingest(Event("http", "post", {"n": i}), [Intent("t", "noop", {}, busy="parallel")], manifest=sha)
        d = work / f"tp{workers}"
        d.mkdir(exist_ok=True)
        postmaster = int((pg.data / "postmaster.pid").read_text().split()[0])
        procs = [worker(url, d, f"worker{i}", "--slots", "4") for i in range(workers)]
        meter = CpuMeter({"workers": lambda: [p.proc.pid for p in procs], "postgres": lambda: children(postmaster)})
        meter.start()
        try:
            end = time.monotonic() + 300
            while time.monotonic() < end:
                left = st.list_runs(limit=1, status="queued") + st.list_runs(limit=1, status="running")
                if not left:
                    break
                time.sleep(0.2)
        finally:
            cpu = meter.stop()
            for p in procs:
                p.stop()
        rows = [st.run_row(r["id"]) for r in st.list_runs(limit=runs)]
        first = min(r.started_at for r in rows)
        last = max(r.finished_at for r in rows)
        out.append({"workers": workers, "runs": len(rows), "seconds": last - first,
                    "runs_per_s": len(rows) / (last - first),
                    "succeeded": sum(r.status == "succeeded" for r in rows), "cpu": cpu})
        st.close()
    return out


def bench_recovery(pg: PgServer, work: Path, lease: float, heartbeat: float) -> dict:
    url = pg.new_database()
    st = PgStore(url)
    d = work / f"recovery{lease:g}"
    d.mkdir(exist_ok=True)
    manifest = {"triggerlang": 1, "base_dir": str(d), "sources": {}, "secrets": {}, "rules": [],
                "actions": {"slow": {"kind": "shell", "params": [],
                                     "script": "[ -e once ] && exit 0; touch once; exec sleep 120"}}}
    sha = st.publish_manifest(manifest)
    args = ("--slots", "1", "--lease", str(lease), "--heartbeat", str(heartbeat))
    a = worker(url, d, "a", *args)
    b = None
    try:
        rec = st.ingest(Event("http", "post", {}), [Intent("r", "slow", {}, retry=1, backoff=0.1)], manifest=sha)
        rid = rec.run_ids[0]
        end = time.monotonic() + 30
        while st.run_row(rid).status != "running" and time.monotonic() < end:
            time.sleep(0.02)
        b = worker(url, d, "b", *args)  # the one that takes the retry
        time.sleep(heartbeat)
        a.proc.send_signal(signal.SIGKILL)
        killed = time.time()
        a.proc.wait()
        end = time.monotonic() + 10 * lease + 30
        retry = None
        while time.monotonic() < end:
            rows = [r for r in st.list_runs(limit=5) if r["attempt"] == 2 and r["started_at"]]
            if rows:
                retry = st.run_row(rows[0]["id"])
                break
            time.sleep(0.02)
    finally:
        a.stop()
        if b is not None:
            b.stop()
    st.close()
    if retry is None:
        return {"lease": lease, "heartbeat": heartbeat, "seconds": None}
    return {"lease": lease, "heartbeat": heartbeat, "seconds": retry.started_at - killed}


def machine() -> str:
    return (f"{os.cpu_count()} CPUs, Python {platform.python_version()}, {platform.system()} {platform.release()}; "
            f"load average before: {open('/proc/loadavg').read().split()[:3]}")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="shorter runs (a smoke test of the script)")
    ap.add_argument("--json", help="write the raw figures here")
    ap.add_argument("--only", help="comma-separated parts to run: ingest,nodes,latency,throughput,recovery")
    args = ap.parse_args()
    seconds = 2.0 if args.quick else 5.0
    print(f"# {machine()}")
    pg = PgServer(durable=True).start()
    work = Path(tempfile.mkdtemp(prefix="bench-store-"))
    results: dict = {"machine": machine()}
    parts = set((args.only or "ingest,nodes,latency,throughput,recovery").split(","))
    try:
        results["store_ingest"] = [] if "ingest" not in parts else None
        if "ingest" in parts:
            results["store_ingest"] = bench_store_ingest(pg, seconds)
        print("\n| store | clients | event + run transactions/s |\n|---|---:|---:|")
        for r in results["store_ingest"]:
            print(f"| {r['store']} | {r['clients']} | {r['per_s']:,.0f} |")

        results["nodes"] = bench_nodes(pg, work, seconds) if "nodes" in parts else []
        print("\n| ingest | webhooks/s (16 connections) | p50 ms | p99 ms | 202s |\n|---|---:|---:|---:|---:|")
        for r in results["nodes"]:
            if "note" in r:
                print(f"| {r['note']} |||||")
                continue
            print(f"| {r['setup']} | {r['rps']:,.0f} | {r['p50']:.1f} | {r['p99']:.1f} | {r['ok']:,} |")
        for r in results["nodes"]:
            cpu = r.get("cpu")
            if cpu:
                per = {k: v / cpu["wall"] for k, v in cpu.items() if k not in ("wall", "machine busy %")}
                ms = {k: 1000 * v / r["rps"] for k, v in per.items()}
                print(f"\n{r['setup']}: CPU cores used: " + ", ".join(f"{k} {v:.2f}" for k, v in per.items())
                      + f"; the whole machine {cpu['machine busy %']:.0f}% busy (other jobs included); CPU ms per "
                      "webhook: " + ", ".join(f"{k} {v:.2f}" for k, v in ms.items()))
        pgn = [r for r in results["nodes"] if r.get("setup", "").startswith(("1 Post", "2 Post"))]
        if len(pgn) == 2:
            print(f"\ntwo nodes / one node: {pgn[1]['rps'] / pgn[0]['rps']:.2f}x")

        results["latency"] = bench_latency(pg, work, 60 if args.quick else 200) if "latency" in parts else None
        lat = results["latency"]
        if lat:
            print(f"\nclaim latency over {lat['n']} runs (one worker, NOTIFY): ingest commit -> claim "
              f"p50 {lat['claim_p50']:.1f} ms, p99 {lat['claim_p99']:.1f} ms; ingest commit -> action running "
              f"p50 {lat['start_p50']:.1f} ms, p99 {lat['start_p99']:.1f} ms")

        results["throughput"] = bench_throughput(pg, work, 120 if args.quick else 400) if "throughput" in parts else []
        print("\n| workers (4 slots each) | runs | seconds | runs/s | machine CPU busy |\n|---:|---:|---:|---:|---:|")
        for r in results["throughput"]:
            print(f"| {r['workers']} | {r['runs']} ({r['succeeded']} ok) | {r['seconds']:.2f} | {r['runs_per_s']:.0f} | "
                  f"{r['cpu']['machine busy %']:.0f}% |")

        results["recovery"] = ([bench_recovery(pg, work, 10.0, 2.0), bench_recovery(pg, work, 2.0, 0.5)]
                               if "recovery" in parts else [])
        print("\n| lease / heartbeat | kill -9 -> retry started elsewhere | x lease |\n|---|---:|---:|")
        for r in results["recovery"]:
            secs = r["seconds"]
            shown = "not retried" if secs is None else f"{secs:.2f} s | {secs / r['lease']:.2f}"
            print(f"| {r['lease']:g} s / {r['heartbeat']:g} s | {shown} |")
        print(f"\n# load average after: {open('/proc/loadavg').read().split()[:3]}")
    finally:
        pg.stop()
        shutil.rmtree(work, ignore_errors=True)
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
