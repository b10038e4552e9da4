"""A run's stderr told apart from its stdout in its log (issue 14): the spawner's copy, the
in-process (asyncio) copy, a real ``triggerc serve`` (SQLite) and a PostgreSQL worker.

Stored, a stderr line starts with ``store.LOG_STDERR`` (0x02), a line of triggerlang's own
with ``store.LOG_META`` (0x01); plain readers drop both, the dashboard marks lines ``err``.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
import time
from pathlib import Path
from typing import Any, Iterator

import httpx
import pytest

from runtime_helpers import DEADLINE, Server, done, wait_for
from store_harness import Backend, StoreServer
from triggerlang.events import Event
from triggerlang.runtime import executor
from triggerlang.runtime.executor import RunRequest, start_action
from triggerlang.runtime.spawn import MAX_LINE, STDERR_LINGER, StderrLines
from triggerlang.runtime.store import LOG_META, LOG_STDERR, clean_log, log_lines
from triggerlang.runtime.journal import Journal

linux_only = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the spawner is Linux's")


# --------------------------------------------------------------------------- the marking


def test_stderr_lines_get_one_mark_each_and_a_begun_line_is_held() -> None:
    s = StderrLines(b"\x02")
    assert s.take(b"a\nb\n", 0.0) == b"\x02a\n\x02b\n"
    assert s.take(b"spl", 1.0) == b"" and s.line == b"spl" and s.held == 1.0
    assert s.take(b"it", 2.0) == b"" and s.held == 1.0  # still the same line, held since its start
    assert s.take(b"\nnext", 3.0) == b"\x02split\n" and s.line == b"next" and s.held == 3.0
    assert s.flush() == b"\x02next" and s.flush() == b""
    assert s.take(b" goes on\n", 4.0) == b" goes on\n"  # its rest: no second mark
    assert s.take(b"x" * MAX_LINE, 5.0) == b"\x02" + b"x" * MAX_LINE and s.line == b""


# --------------------------------------------------------------------------- the executor, both paths

# writes out1, err1; waits until err1 is in the log (so the order is known), then out2, a
# stderr line in two writes, and a last stderr line without its newline
ORDERED = f"""#!{sys.executable}
import os, sys, time
log = os.environ["LOG"]
print("out1", flush=True)
print("err1", file=sys.stderr, flush=True)
end = time.monotonic() + 20
while b"\\x02err1\\n" not in open(log, "rb").read():
    assert time.monotonic() < end, "err1 never reached the log"
    time.sleep(0.01)
print("out2", flush=True)
sys.stderr.write("spl"); sys.stderr.flush()
sys.stderr.write("it\\n"); sys.stderr.flush()
sys.stderr.write("no newline"); sys.stderr.flush()
"""


@pytest.fixture(params=["spawner", "asyncio"])
def path_kind(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    if request.param == "spawner":
        if not sys.platform.startswith("linux"):
            pytest.skip("the spawner is Linux's")
    else:
        monkeypatch.setattr(executor._Fast, "broken", True)  # what a spawner that cannot start sets
    return request.param


def _request(tmp_path: Path, argv: list[str], env: dict[str, str] | None = None) -> RunRequest:
    log = tmp_path / "state" / "logs" / "1.log"
    return RunRequest(run_id=1, rule="r", action_name="act",
                      action={"kind": "exec", "params": [], "argv": [{"value": a} for a in argv],
                              "env": {"LOG": str(log), **(env or {})}},
                      inputs={}, event=Event(source="git", type="push", data={}).to_json(), base_dir=tmp_path,
                      log_path=log, timeout=60, secrets={})


def test_stderr_lines_are_marked_in_order(tmp_path: Path, path_kind: str) -> None:
    script = tmp_path / "ordered.py"
    script.write_text(ORDERED)
    script.chmod(0o755)
    req = _request(tmp_path, [str(script)])

    async def main() -> Any:
        return await (await start_action(req)).wait()

    result = asyncio.run(main())
    assert result.status == "succeeded", (result, req.log_path.read_bytes())
    raw = req.log_path.read_bytes()
    assert [(s, t) for s, t in log_lines(raw)][1:-1] == [
        ("out", "out1"), ("err", "err1"), ("out", "out2"), ("err", "split"), ("err", "no newline")], raw
    assert raw.startswith(LOG_META + b"# run 1 rule r action act attempt 1: exec ")
    assert b"\x02out" not in raw and raw.count(LOG_STDERR) == 3
    # the last stderr line had no newline: the closing line still starts a line of its own
    assert raw.endswith(b"\x02no newline\x01# run 1 succeeded" + raw.rsplit(b"succeeded", 1)[1])
    assert log_lines(raw)[-1][0] == "meta"
    assert "\x01" not in clean_log(raw, False) and "\x02" not in clean_log(raw, False)


# a run whose background child keeps stderr open: the run's end does not wait for it
# (past STDERR_LINGER), and what the child writes later still reaches the log
LINGER = """echo first >&2
( while [ ! -e "$GO" ]; do sleep 0.05; done; echo late >&2 ) &
echo $! > "$PIDFILE"
"""


def test_a_child_holding_stderr_delays_the_end_only_briefly_and_its_lines_still_come(
        tmp_path: Path, path_kind: str) -> None:
    go, pidfile = tmp_path / "go", tmp_path / "pid"
    req = _request(tmp_path, ["sh", "-c", LINGER], {"GO": str(go), "PIDFILE": str(pidfile)})

    async def main() -> tuple[Any, float, bytes]:
        t0 = time.monotonic()
        result = await (await start_action(req)).wait()
        took = time.monotonic() - t0
        at_end = req.log_path.read_bytes()
        go.touch()
        end = time.monotonic() + DEADLINE
        while b"\x02late\n" not in req.log_path.read_bytes():  # the copy goes on after the end
            assert time.monotonic() < end, req.log_path.read_bytes()
            await asyncio.sleep(0.02)
        return result, took, at_end

    try:
        result, took, at_end = asyncio.run(main())
    finally:
        go.touch()  # the child ends on its own; a kill in case the test failed first
        if pidfile.exists() and pidfile.read_text().strip():
            with contextlib.suppress(ProcessLookupError):
                os.kill(int(pidfile.read_text()), signal.SIGKILL)
    assert result.status == "succeeded"
    assert took < STDERR_LINGER + 10  # not until the child ends (it waited for us)
    lines = log_lines(at_end)
    assert ("err", "first") in lines and lines[-1][0] == "meta" and ("err", "late") not in lines, at_end
    assert all(s == "meta" for s, _ in lines[:3])  # the header: each line of the script marked


# --------------------------------------------------------------------------- a real serve

RULES = """\
source http path="/go"
action act = exec "sh" "-c" "echo out1; echo err1 >&2; echo out2; echo ppid=$PPID"
r: on http.post path="/go" run act
"""


class _FallbackServer(Server):
    """``triggerc serve`` with the spawner off, as after a spawner that could not start."""

    def argv(self) -> list[str]:
        argv = super().argv()
        assert argv[1:3] == ["-m", "triggerlang.cli"]
        return [argv[0], "-c", "import sys; from triggerlang.runtime import executor; executor._Fast.broken = True; "
                "from triggerlang.cli import main; sys.argv[0] = 'triggerc'; main()", *argv[3:]]


def _check_the_log(raw: bytes, plain: str, api_lines: list[dict[str, str]]) -> None:
    lines = log_lines(raw)
    # which stream each line came from is exact; how stdout and stderr lines interleave is
    # as they reached the shared file (see spawn.py), so only each stream's order is asserted
    assert [t for s, t in lines if s == "err"] == ["err1"], raw
    assert [t for s, t in lines if s == "out"][:2] == ["out1", "out2"], raw
    assert lines[0][0] == "meta" and lines[-1][0] == "meta" and "succeeded" in lines[-1][1]
    assert raw.count(LOG_STDERR) == 1 and b"\x02err1\n" in raw
    assert "\x01" not in plain and "\x02" not in plain and "err1\n" in plain and "out2\n" in plain
    assert [(x["stream"], x["text"]) for x in api_lines] == lines


@pytest.mark.parametrize("kind", ["spawner", "asyncio"])
def test_serve_stores_stderr_marked_and_the_dashboard_tells_it_apart(tmp_path: Path, kind: str) -> None:
    if kind == "spawner" and not sys.platform.startswith("linux"):
        pytest.skip("the spawner is Linux's")
    (tmp_path / "rules.trg").write_text(RULES)
    cls = Server if kind == "spawner" else _FallbackServer
    srv = cls(tmp_path / "rules.trg", tmp_path / "state", "--dashboard", log=tmp_path / "serve.log").start()
    try:
        assert httpx.post(srv.url + "/go", json={}, timeout=DEADLINE).status_code == 202
        runs = srv.wait_runs(lambda rs: done(rs, 1), "the run")
        assert runs[0]["status"] == "succeeded", runs
        raw = (tmp_path / "state" / "logs" / f"{runs[0]['id']}.log").read_bytes()
        # the fallback's run is serve's own child; the spawner's is not
        ppid = int(raw.rsplit(b"\nppid=", 1)[1].split(b"\n")[0])
        assert (ppid == srv.proc.pid) == (kind == "asyncio"), (ppid, srv.proc.pid)
        j = Journal(tmp_path / "state")
        try:
            plain, _, exists = j.read_log(runs[0]["id"])  # what triggerc's MCP run_log and the API's "log" read
        finally:
            j.close()
        assert exists
        api = httpx.get(f"{srv.url}/api/runs/{runs[0]['id']}/log?offset=0", timeout=DEADLINE).json()
        _check_the_log(raw, plain, api["lines"])
        with httpx.stream("GET", f"{srv.url}/dashboard/runs/{runs[0]['id']}/stream?offset=0",
                          timeout=DEADLINE) as r:
            sent = [line for line in r.iter_lines() if line.startswith("data: ") and '"lines"' in line]
        assert sent and '["err", "err1"]' in sent[0].replace('","', '", "'), sent
        download = httpx.get(f"{srv.url}/dashboard/runs/{runs[0]['id']}/log", timeout=DEADLINE)
        assert download.status_code == 200 and b"\x02" not in download.content and b"\x01" not in download.content
        assert srv.stop() == 0
    finally:
        srv.ensure_dead()


def test_a_postgresql_workers_stored_log_keeps_the_marks(tmp_path: Path, pg_url: str) -> None:
    from triggerlang.runtime.pgstore import PgStore

    (tmp_path / "rules.trg").write_text(RULES)
    backend = Backend("postgresql", pg_url)
    srv = StoreServer(backend, tmp_path / "rules.trg", tmp_path / "state", "--dashboard", workers=1,
                      log=tmp_path / "serve.log").start()
    try:
        assert httpx.post(srv.url + "/go", json={}, timeout=DEADLINE).status_code == 202
        runs = srv.wait_runs(lambda rs: done(rs, 1), "the run")
        assert runs[-1]["status"] == "succeeded", runs
        rid = runs[-1]["id"]
        (row,) = backend._rows(f"SELECT body FROM trg_logs WHERE run_id = {int(rid)}")
        raw = bytes(row["body"])
        st = PgStore(pg_url)
        try:
            plain, _, exists = st.read_log(rid)
        finally:
            st.close()
        assert exists
        api = httpx.get(f"{srv.url}/api/runs/{rid}/log?offset=0", timeout=DEADLINE).json()
        _check_the_log(raw, plain, api["lines"])
        assert srv.stop() == 0
    finally:
        srv.ensure_dead()
