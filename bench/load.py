"""Webhooks under load: N signed GitHub pushes at C-way concurrency against a real
``triggerc serve`` (issue 5). Prints requests/s and checks that every request was
answered 202, journaled and run.

    python bench/load.py                 # 1000 webhooks, 32 connections
    python bench/load.py -n 5000 -c 64 --action sleep   # slower runs: busy parallel queues

The server is started as a subprocess on an ephemeral loopback port with a fresh state
folder; the client is httpx (asyncio) in this process, so both share the machine's CPUs.
``tests/test_faults.py::test_load_1000_webhooks_at_32_way_concurrency`` is the same
measurement as a test.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import hmac
import json
import os
import re
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
FIXTURE = ROOT.parent / "shared" / "fixtures" / "webhooks" / "github" / "push-plain.json"
SECRET = "bench-" + uuid.uuid4().hex
KEEPALIVE = False  # a fresh connection per webhook, as GitHub and GitLab deliver them

RULES = """\
secret gh = env "BENCH_GH_SECRET"
source github path="/github" secret=gh
action ok = exec "true"
action nap = exec "sleep" "0.05"
hook: on github.push run {action} busy parallel
"""


def body() -> bytes:
    if FIXTURE.is_file():
        return FIXTURE.read_bytes()
    return json.dumps({"ref": "refs/heads/main", "before": "0" * 40, "after": "1" * 40,
                       "repository": {"full_name": "o/r"}, "commits": []}).encode()


async def blast(url: str, n: int, conc: int) -> tuple[list[int | None], float, list[str]]:
    payload = body()
    sig = "sha256=" + hmac.new(SECRET.encode(), payload, hashlib.sha256).hexdigest()
    statuses: list[int | None] = [None] * n
    errors: list[str] = []
    it = iter(range(n))
    limits = httpx.Limits(max_connections=conc, max_keepalive_connections=conc if KEEPALIVE else 0)
    async with httpx.AsyncClient(base_url=url, timeout=60, limits=limits) as client:
        async def worker() -> None:
            for i in it:
                headers = {"Content-Type": "application/json", "X-GitHub-Event": "push",
                           "X-GitHub-Delivery": str(uuid.uuid4()), "X-Hub-Signature-256": sig}
                try:
                    r = await client.post("/github", content=payload, headers=headers)
                    statuses[i] = r.status_code
                except httpx.HTTPError as e:
                    errors.append(f"{type(e).__name__}: {e}")
        t0 = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(conc)))
        return statuses, time.perf_counter() - t0, errors


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("-n", type=int, default=1000, help="webhooks to send")
    ap.add_argument("-c", type=int, default=32, help="concurrent connections")
    ap.add_argument("--action", choices=["ok", "nap"], default="ok", help="ok: exec true; nap: sleep 50ms")
    ap.add_argument("--keep-alive", action="store_true", help="reuse connections (senders usually do not)")
    args = ap.parse_args()
    global KEEPALIVE
    KEEPALIVE = args.keep_alive
    with tempfile.TemporaryDirectory() as tmp:
        rules = Path(tmp) / "rules.trg"
        rules.write_text(RULES.format(action=args.action))
        state = Path(tmp) / "state"
        log = Path(tmp) / "serve.log"
        with open(log, "wb") as out:
            proc = subprocess.Popen([sys.executable, "-m", "triggerlang.cli", "serve", str(rules), "--state", str(state),
                                     "--port", "0", "--no-reload"], stdout=out, stderr=subprocess.STDOUT,
                                    env={**os.environ, "BENCH_GH_SECRET": SECRET})
        try:
            deadline = time.monotonic() + 60
            while "serving " not in log.read_text() and time.monotonic() < deadline and proc.poll() is None:
                time.sleep(0.05)
            m = re.search(r"listening on (http://\S+)", log.read_text())
            if not m:
                print(log.read_text(), file=sys.stderr)
                return 1
            statuses, elapsed, errors = asyncio.run(blast(m.group(1), args.n, args.c))
            ok = statuses.count(202)
            print(f"{args.n} webhooks, {args.c}-way: {elapsed:.2f}s, {args.n / elapsed:.0f} requests/s; "
                  f"{ok} answered 202" + (f"; errors: {sorted(set(errors))[:3]}" if errors else ""))
            t1 = time.perf_counter()
            conn = sqlite3.connect(str(state / "journal.sqlite3"), timeout=30)
            while True:
                done = conn.execute("SELECT COUNT(*) FROM runs WHERE status NOT IN ('queued', 'running')").fetchone()[0]
                if done >= ok or time.perf_counter() - t1 > 600:
                    break
                time.sleep(0.1)
            events = conn.execute("SELECT COUNT(*) FROM events").fetchone()[0]
            counts = dict(conn.execute("SELECT status, COUNT(*) FROM runs GROUP BY status").fetchall())
            conn.close()
            print(f"journal: {events} events, runs {counts}; every run done {time.perf_counter() - t1:.2f}s "
                  f"after the last answer")
            return 0 if ok == args.n == events and counts.get("succeeded") == args.n else 1
        finally:
            proc.send_signal(signal.SIGTERM)
            proc.wait(60)


if __name__ == "__main__":
    sys.exit(main())
