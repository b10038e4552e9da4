"""A throwaway PostgreSQL server for the store tests (SPEC §12.5).

One server per test session: ``initdb`` + ``pg_ctl`` in a temporary folder, listening on a
unix socket only (no TCP port), ``fsync=off``; each test gets a database of its own
(:meth:`PgServer.new_database`). As root, the server runs as the ``postgres`` user (PostgreSQL
refuses to run as root) through ``runuser`` or ``setpriv``, in a folder that user may write.

The server binaries are found through ``TRIGGERLANG_PG_BINDIR``, ``pg_config --bindir``,
``/usr/lib/postgresql/*/bin`` (newest first) or ``PATH``. ``.ci/run`` installs Debian's
``postgresql`` package when none is there. When the server cannot start, the tests that need
it are skipped, except under ``CI=true``, where they fail.
"""

from __future__ import annotations

import glob
import itertools
import os
import pwd
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest


def find_bindir() -> Path | None:
    candidates: list[str] = []
    if os.environ.get("TRIGGERLANG_PG_BINDIR"):
        candidates.append(os.environ["TRIGGERLANG_PG_BINDIR"])
    pg_config = shutil.which("pg_config")
    if pg_config:
        try:
            candidates.append(subprocess.run([pg_config, "--bindir"], capture_output=True, text=True,
                                             timeout=10).stdout.strip())
        except (OSError, subprocess.SubprocessError):
            pass

    def version(p: str) -> tuple:
        part = Path(p).parent.name
        return tuple(int(x) for x in part.split(".") if x.isdigit())

    candidates += sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=version, reverse=True)
    if shutil.which("initdb"):
        candidates.append(str(Path(shutil.which("initdb")).parent))
    for c in candidates:
        if c and (Path(c) / "initdb").is_file() and (Path(c) / "pg_ctl").is_file() and (Path(c) / "postgres").is_file():
            return Path(c)
    return None


class PgServer:
    """``durable=True`` (the benchmarks) keeps fsync and full-page writes on, as in production."""

    def __init__(self, durable: bool = False) -> None:
        self.durable = durable
        self.bindir = find_bindir()
        if self.bindir is None:
            raise RuntimeError("no PostgreSQL server binaries (initdb, pg_ctl, postgres) were found; "
                               "install Debian's postgresql package")
        self.root = Path(tempfile.mkdtemp(prefix="trg-pg-"))
        self.data = self.root / "data"
        self.sock = self.root
        self.prefix: list[str] = []
        self.user = None
        if os.geteuid() == 0:
            try:
                pw = pwd.getpwnam("postgres")
            except KeyError:
                raise RuntimeError("running as root and there is no 'postgres' user to run the server as") from None
            os.chown(self.root, pw.pw_uid, pw.pw_gid)
            os.chmod(self.root, 0o755)
            self.user = pw.pw_name
            if shutil.which("runuser"):
                self.prefix = ["runuser", "-u", pw.pw_name, "--"]
            elif shutil.which("setpriv"):
                self.prefix = ["setpriv", f"--reuid={pw.pw_uid}", f"--regid={pw.pw_gid}", "--init-groups"]
            else:
                raise RuntimeError("running as root and neither runuser nor setpriv is there to drop privileges")
        self._counter = itertools.count(1)
        self.started = False

    def _run(self, *argv: str, timeout: float = 120) -> None:
        p = subprocess.run([*self.prefix, *argv], capture_output=True, text=True, timeout=timeout,
                           cwd=str(self.root), env={**os.environ, "LC_ALL": "C"})
        if p.returncode != 0:
            raise RuntimeError(f"{Path(argv[0]).name} failed ({p.returncode}): {p.stderr.strip() or p.stdout.strip()}"
                               + self.log_tail())

    def log_tail(self) -> str:
        try:
            return "\n--- server log ---\n" + (self.root / "server.log").read_text()[-3000:]
        except OSError:
            return ""

    def start(self) -> "PgServer":
        self._run(str(self.bindir / "initdb"), "-D", str(self.data), "-A", "trust", "-U", "postgres",
                  "-E", "UTF8", "--locale=C", "--no-sync")
        opts = f"-k {self.sock} -c listen_addresses='' -c max_connections=300 -c shared_buffers=64MB"
        if not self.durable:
            opts += " -c fsync=off -c full_page_writes=off"
        self._run(str(self.bindir / "pg_ctl"), "-D", str(self.data), "-l", str(self.root / "server.log"),
                  "-w", "-t", "60", "-o", opts, "start")
        self.started = True
        return self

    def stop(self) -> None:
        if self.started:
            try:
                self._run(str(self.bindir / "pg_ctl"), "-D", str(self.data), "-m", "immediate", "-w", "stop",
                          timeout=60)
            except (RuntimeError, subprocess.SubprocessError):
                pass
            self.started = False
        shutil.rmtree(self.root, ignore_errors=True)

    def url(self, db: str = "postgres", password: str | None = None) -> str:
        auth = "postgres" + (f":{password}" if password else "")
        return f"postgresql://{auth}@/{db}?host={self.sock}"

    def new_database(self) -> str:
        import psycopg

        name = f"t{os.getpid()}_{next(self._counter)}"
        with psycopg.connect(self.url(), autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)


def server_or_fail(error: Exception) -> None:
    """Skip the test, or fail it under CI=true (a service that cannot start is a failure there)."""
    msg = f"PostgreSQL could not start: {error}"
    if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
        pytest.fail(msg, pytrace=False)
    pytest.skip(msg)
