"""Running ``triggerc serve`` and ``triggerc worker`` against either store (SPEC §12.5).

:class:`Backend` says how a server reaches its store (SQLite: ``--state``; PostgreSQL:
``--store URL`` with short leases, so recovery tests stay quick) and reads the store's
rows from outside, raw, the way ``runtime_helpers.journal_runs`` reads SQLite: times as
epoch seconds, ``inputs``/``data``/``matched`` decoded, oldest first.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

from runtime_helpers import DEADLINE, Server, journal_events, journal_runs, kill_tagged, tagged, wait_for

LEASE = "2"
HEARTBEAT = "0.5"


class Backend:
    def __init__(self, kind: str, url: str | None = None) -> None:
        self.kind = kind
        self.url = url

    def args(self, workers: int | None = None) -> list[str]:
        if self.kind == "sqlite":
            return []
        out = ["--store", self.url, "--lease", LEASE, "--heartbeat", HEARTBEAT]
        if workers is not None:
            out += ["--workers", str(workers)]
        return out

    def _rows(self, sql: str) -> list[dict[str, Any]]:
        import psycopg
        from psycopg.rows import dict_row

        with psycopg.connect(self.url, autocommit=True, row_factory=dict_row) as conn:
            return list(conn.execute(sql).fetchall())

    def runs(self, state: Path) -> list[dict[str, Any]]:
        if self.kind == "sqlite":
            return journal_runs(state)
        rows = self._rows("SELECT * FROM trg_runs ORDER BY id")
        for r in rows:
            r["inputs"] = json.loads(r["inputs"])
        return rows

    def events(self, state: Path) -> list[dict[str, Any]]:
        if self.kind == "sqlite":
            return journal_events(state)
        rows = self._rows("SELECT * FROM trg_events ORDER BY seq")
        for r in rows:
            r["data"] = json.loads(r["data"])
            r["matched"] = json.loads(r["matched"])
        return rows


class StoreServer(Server):
    """A ``triggerc serve`` on a :class:`Backend`."""

    def __init__(self, backend: Backend, rules: Path, state: Path, *args: str, workers: int | None = None,
                 **kw: Any) -> None:
        super().__init__(rules, state, *args, *backend.args(workers), **kw)
        self.backend = backend

    def runs(self) -> list[dict[str, Any]]:
        return self.backend.runs(self.state)

    def events(self) -> list[dict[str, Any]]:
        return self.backend.events(self.state)


class WorkerProc:
    """One ``triggerc worker`` subprocess; its log goes to a file."""

    def __init__(self, url: str, log: Path, *args: str, cwd: Path | None = None) -> None:
        self.log_path = log
        self.env, self.tag = tagged({**os.environ})  # (ensure_dead finds its runs by it)
        self._fh = open(log, "ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "triggerlang.cli", "worker", "--store", url, "--lease", LEASE,
             "--heartbeat", HEARTBEAT, *args],
            stdin=subprocess.DEVNULL, stdout=self._fh, stderr=self._fh, cwd=str(cwd) if cwd else None,
            env=self.env)
        wait_for(lambda: "claiming runs from" in self.log() or self.proc.poll() is not None,
                 "the worker to start", on_fail=self.log)
        assert self.proc.poll() is None, self.log()

    @property
    def pid(self) -> int:
        return self.proc.pid

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""

    def owns(self, worker_id: str | None) -> bool:
        return bool(worker_id) and f":{self.pid}:" in worker_id

    def signal(self, sig: int) -> None:
        self.proc.send_signal(sig)

    def kill9(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(DEADLINE)

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGCONT)
            self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(DEADLINE)
        finally:
            self._fh.close()

    def ensure_dead(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGCONT)
            self.proc.kill()
            self.proc.wait()
        kill_tagged(self.tag)  # the runs it left, as Server.ensure_dead
        if not self._fh.closed:
            self._fh.close()

