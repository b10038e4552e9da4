"""The webhook -> run path at its limit (issue 12): group commit, back-pressure, the fast
HTTP front end, the spawner process. Real ``triggerc serve`` processes on loopback ports,
real runs, the journal read from outside.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import socket
import sys
import time
from pathlib import Path
from typing import Any, Iterator

import httpx
import pytest

from runtime_helpers import DEADLINE, Server, alive, cli, done, wait_for

TOKEN = "ingest-test-token"
HOOK_RULES = """\
secret tok = env "INGEST_TOKEN"
source http path="/hook" token=tok
action {action}
r: on http.post path="/hook" run act {policy}
"""


@pytest.fixture
def serve(tmp_path: Path) -> Iterator[Any]:
    started: list[Server] = []

    def make(rules: str, *args: str, state: Path | None = None) -> Server:
        folder = tmp_path / "proj"
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "rules.trg").write_text(rules)
        s = Server(folder / "rules.trg", state or tmp_path / "state", *args, env={"INGEST_TOKEN": TOKEN},
                   log=tmp_path / "serve.log")
        started.append(s)
        return s.start()

    yield make
    for s in started:
        s.ensure_dead()


def hook_rules(action: str = 'act = exec "true"', policy: str = "busy parallel") -> str:
    return HOOK_RULES.format(action=action, policy=policy)


async def burst(url: str, n: int, concurrency: int, body: dict | None = None) -> list[httpx.Response]:
    """``n`` POSTs to ``url``, ``concurrency`` at a time, each on a connection of its own."""
    sem = asyncio.Semaphore(concurrency)
    headers = {"Authorization": f"Bearer {TOKEN}"}

    async def one(i: int) -> httpx.Response:
        async with sem:
            async with httpx.AsyncClient(timeout=DEADLINE) as c:
                return await c.post(url, json=body or {"n": i}, headers=headers)

    return list(await asyncio.gather(*(one(i) for i in range(n))))


# --------------------------------------------------------------------------- back-pressure

def test_past_the_backlog_bound_deliveries_get_503_and_nothing_accepted_is_dropped(serve) -> None:
    """A slow serial action and a burst: past --max-backlog queued runs, 503 + Retry-After
    before anything is journaled; every 202 is journaled and runs; later deliveries are
    accepted again."""
    srv = serve(hook_rules('act = exec "sleep" "0.4"', "busy queue"), "--max-backlog", "3")
    answers = asyncio.run(burst(srv.url + "/hook", 24, 12))
    codes = [r.status_code for r in answers]
    assert set(codes) <= {202, 503}, codes
    accepted = [r.json()["event_id"] for r in answers if r.status_code == 202]
    refused = [r for r in answers if r.status_code == 503]
    assert refused, f"no 503 in {codes}"
    for r in refused:
        assert r.headers["Retry-After"].isdigit() and 1 <= int(r.headers["Retry-After"]) <= 60
        assert "try again" in r.json()["error"]
    events = srv.events()
    assert sorted(e["id"] for e in events) == sorted(accepted)  # the refused were never journaled
    runs = srv.wait_runs(lambda rs: done(rs, len(accepted)), "every accepted run to end")
    # one run going and at most 3 waiting: 4 accepted, plus one more for every run that
    # ended while the burst went on
    last = max(e["received_at"] for e in events)
    ended_meanwhile = sum(1 for r in runs if r["finished_at"] < last)
    assert 1 <= len(accepted) <= 4 + ended_meanwhile, (codes, ended_meanwhile)
    assert [r["status"] for r in runs] == ["succeeded"] * len(accepted)
    assert "refused" in srv.log() and "503" in srv.log()
    # the backlog drained: a delivery is accepted again
    again = httpx.post(srv.url + "/hook", json={"n": "again"}, headers={"Authorization": f"Bearer {TOKEN}"},
                       timeout=DEADLINE)
    assert again.status_code == 202
    srv.wait_runs(lambda rs: done(rs, len(accepted) + 1), "the last run")
    assert srv.stop() == 0


def test_the_emit_endpoint_gets_the_same_back_pressure(serve) -> None:
    srv = serve('action slow = exec "sleep" "0.5"\nr: on git.push run slow busy queue\n', "--http",
                "--max-backlog", "1")
    codes = []
    for i in range(6):
        codes.append(httpx.post(srv.url + "/events", json={"source": "git", "type": "push", "data": {"i": i}},
                                timeout=DEADLINE).status_code)
    assert 503 in codes and codes[0] == 202, codes
    assert len(srv.events()) == codes.count(202)
    # the log counts every refusal, those of a second with no refusal after them too
    wait_for(lambda: sum(int(n) for n in re.findall(r"refused (\d+) deliver(?:y|ies) with 503", srv.log()))
             == codes.count(503), "every refusal in the log", on_fail=srv.log)
    assert "in the last 999s" not in srv.log()
    assert srv.stop() == 0


def test_readyz_is_503_while_deliveries_would_be_refused_and_healthz_stays_200(serve) -> None:
    srv = serve('action slow = exec "sleep" "30"\nr: on git.push run slow busy queue\n', "--http",
                "--max-backlog", "1")
    r = httpx.get(srv.url + "/readyz", timeout=DEADLINE)
    assert (r.status_code, r.json()) == (200, {"ok": True})
    r = httpx.post(srv.url + "/readyz", timeout=DEADLINE)
    assert (r.status_code, r.headers["Allow"]) == (405, "GET, HEAD")
    emit = {"source": "git", "type": "push", "data": {}}
    assert httpx.post(srv.url + "/events", json=emit, timeout=DEADLINE).status_code == 202
    srv.wait_runs(lambda rs: rs and rs[0]["status"] == "running", "the first run to start")
    assert httpx.post(srv.url + "/events", json=emit, timeout=DEADLINE).status_code == 202  # waits: the bound
    r = httpx.get(srv.url + "/readyz", timeout=DEADLINE)
    assert r.status_code == 503 and r.json() == {"ok": False, "error": "too many runs are waiting (--max-backlog)"}
    assert 1 <= int(r.headers["Retry-After"]) <= 60
    assert httpx.post(srv.url + "/events", json=emit, timeout=DEADLINE).status_code == 503  # as /readyz said
    assert httpx.get(srv.url + "/healthz", timeout=DEADLINE).status_code == 200  # up, all the same


# --------------------------------------------------------------------------- group commit

def test_every_202_survives_a_kill_9_right_after_it(serve, tmp_path: Path) -> None:
    """Group commit: deliveries answered in batches; a kill -9 as soon as 150 answers are in
    loses none of the events they name (the answers come after the batch's commit)."""
    srv = serve(hook_rules(), "--max-backlog", "100000")

    async def until_killed() -> list[str]:
        got: list[str] = []
        sem = asyncio.Semaphore(32)
        headers = {"Authorization": f"Bearer {TOKEN}"}
        killed = asyncio.Event()
        limits = httpx.Limits(max_connections=32, max_keepalive_connections=32)

        async with httpx.AsyncClient(timeout=DEADLINE, limits=limits) as c:
            async def one(i: int) -> None:
                async with sem:
                    if killed.is_set():
                        return
                    try:
                        r = await c.post(srv.url + "/hook", json={"i": i}, headers=headers)
                    except httpx.HTTPError:
                        return  # no answer: not accepted
                    if r.status_code == 202:
                        got.append(r.json()["event_id"])
                        if len(got) >= 150 and not killed.is_set():
                            killed.set()
                            srv.proc.send_signal(signal.SIGKILL)

            await asyncio.gather(*(one(i) for i in range(2000)))
        return got

    accepted = asyncio.run(until_killed())
    srv.proc.wait(DEADLINE)
    assert len(accepted) >= 150
    journaled = {e["id"] for e in srv.events()}
    missing = [e for e in accepted if e not in journaled]
    assert not missing, f"{len(missing)} answered events are not in the journal"


# --------------------------------------------------------------------------- the fast front end

def _exchange(port: int, data: bytes, timeout: float = DEADLINE) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(data)
        s.shutdown(socket.SHUT_WR)
        out = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                return out
            out += chunk


def _post(body: bytes, extra: bytes = b"", path: bytes = b"/hook") -> bytes:
    return (b"POST " + path + b" HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + TOKEN.encode() +
            b"\r\nContent-Type: application/json\r\nContent-Length: " + str(len(body)).encode() + b"\r\n" +
            extra + b"\r\n" + body)


def test_pipelined_requests_are_answered_in_order_and_a_half_closed_client_gets_its_answers(serve) -> None:
    srv = serve(hook_rules(), "--dashboard")
    reqs = [_post(json.dumps({"i": i}).encode()) for i in range(5)]
    reqs.insert(2, b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")  # Starlette's, between two fast ones
    reqs.insert(4, _post(b"{}", path=b"/hook/nope"))  # a 404 from the fast front end's neighbour
    out = _exchange(srv.port, b"".join(reqs))
    statuses = [int(x) for x in re.findall(rb"HTTP/1\.1 (\d{3}) ", out)]
    assert statuses == [202, 202, 200, 202, 404, 202, 202], out[:2000]
    ids = [m.decode() for m in re.findall(rb'"event_id":"(evt_[0-9a-f]+)"', out)]
    journal = [e["id"] for e in srv.events()]
    assert ids == journal  # answered in the order they were sent, which is the order journaled
    assert srv.stop() == 0


def test_expect_100_continue_head_405_and_413_on_the_fast_front_end(serve) -> None:
    srv = serve(hook_rules(), "--max-backlog", "1000")
    body = b'{"a": 1}'
    # Expect: 100-continue gets its 100 before the 202
    out = _exchange(srv.port, _post(body, b"Expect: 100-continue\r\n"))
    assert out.startswith(b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 202"), out[:300]
    # a webhook path with another method: 405 with Allow
    out = _exchange(srv.port, b"GET /hook HTTP/1.1\r\nHost: x\r\n\r\n")
    assert out.startswith(b"HTTP/1.1 405") and b"allow: post" in out.lower(), out[:300]
    # a Content-Length over the limit: 413 at once, the body never read
    big = (b"POST /hook HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + TOKEN.encode() +
           b"\r\nContent-Length: 20000000\r\nConnection: close\r\n\r\n")
    out = _exchange(srv.port, big)
    assert out.startswith(b"HTTP/1.1 413"), out[:300]
    # a chunked body that grows past the limit: 413 while streaming
    chunk = b"x" * 1_000_000
    chunked = (b"POST /hook HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + TOKEN.encode() +
               b"\r\nTransfer-Encoding: chunked\r\n\r\n" +
               b"".join(b"%x\r\n" % len(chunk) + chunk + b"\r\n" for _ in range(12)) + b"0\r\n\r\n")
    out = _exchange(srv.port, chunked)
    assert out.startswith(b"HTTP/1.1 413"), out[:300]
    assert len(srv.events()) == 1
    assert srv.stop() == 0


def test_head_on_a_generic_route_answers_without_a_body(serve) -> None:
    srv = serve('action act = exec "true"\nsource http path="/any"\nr: on http.request path="/any" run act\n')
    out = _exchange(srv.port, b"HEAD /any HTTP/1.1\r\nHost: x\r\n\r\n")
    head, _, rest = out.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 202") and rest == b"", out[:300]
    assert [e["type"] for e in srv.events()] == ["head"]
    assert srv.stop() == 0


# --------------------------------------------------------------------------- the spawner

def _spawners() -> dict[int, int]:
    """pid -> parent pid of every spawner process started by this test session: by this
    interpreter (another worktree's suite runs another), under this session's
    TRIGGERLANG_CACHE_DIR (conftest.py; inherited by serve and its spawner), so a second
    pytest run with the same interpreter (one test file run beside the suite) is not
    taken for ours, nor its spawner killed."""
    python = os.fsencode(sys.executable)
    session = b"TRIGGERLANG_CACHE_DIR=" + os.fsencode(os.environ["TRIGGERLANG_CACHE_DIR"])
    out = {}
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                cmd = (d / "cmdline").read_bytes()
                stat = (d / "stat").read_text()
                environ = (d / "environ").read_bytes().split(b"\0") if b"runtime/spawn.py" in cmd else []
            except OSError:
                continue
            if cmd.split(b"\0")[0] == python and b"triggerlang/runtime/spawn.py" in cmd and session in environ:
                out[int(d.name)] = int(stat[stat.rfind(")") + 2:].split()[1])
    return out


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the spawner process is Linux's fast path")
def test_the_spawner_is_no_child_of_serve_and_exits_when_serve_is_killed(serve) -> None:
    before = set(_spawners())
    srv = serve(hook_rules())
    r = httpx.post(srv.url + "/hook", json={}, headers={"Authorization": f"Bearer {TOKEN}"}, timeout=DEADLINE)
    assert r.status_code == 202
    srv.wait_runs(lambda rs: done(rs, 1), "the run")
    mine = set(_spawners()) - before
    assert len(mine) == 1, _spawners()
    spawner = mine.pop()
    assert _spawners()[spawner] != srv.proc.pid
    srv.kill9()
    wait_for(lambda: not alive(spawner), "the spawner to exit after its serve was killed")


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the spawner process is Linux's fast path")
def test_a_kill_9_of_serve_stops_its_running_runs_with_their_stop_signal_then_sigkill(serve, tmp_path: Path) -> None:
    """Before: after a kill -9 of serve the spawner waited for its runs to end on their own,
    unwatched and with no timeout, while the next serve marked them interrupted and could
    start the rule's next run beside them. Now the spawner sends each run's process group
    the action's stop signal (here SIGINT, which the shell traps) and SIGKILL after its
    grace to what is left (the background sleep, which a shell starts with SIGINT ignored)."""
    proj = tmp_path / "proj"
    script = "trap 'echo INT > got; exit 0' INT; echo $$ > leader; sleep 60 & echo $! > child; wait"
    srv = serve(hook_rules(f'act = shell "{script}" stop SIGINT grace 1s'))
    assert httpx.post(srv.url + "/hook", json={}, headers={"Authorization": f"Bearer {TOKEN}"},
                      timeout=DEADLINE).status_code == 202
    wait_for(lambda: (proj / "child").exists() and (proj / "child").read_text().strip(), "the run to be going")
    leader, child = (int((proj / name).read_text()) for name in ("leader", "child"))
    assert alive(leader) and alive(child)
    srv.kill9()
    wait_for(lambda: (proj / "got").exists(), "the run's shell to get its stop signal, SIGINT")
    wait_for(lambda: not alive(child), "the background sleep, which ignores SIGINT, to be killed after the grace")
    assert not alive(leader)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the spawner process is Linux's fast path")
def test_a_spawner_that_dies_fails_its_runs_and_the_next_run_gets_a_new_one(serve, tmp_path: Path) -> None:
    before = set(_spawners())
    srv = serve(hook_rules('act = shell "echo $$ > pid; exec sleep 30"'), "--grace", "1")
    h = {"Authorization": f"Bearer {TOKEN}"}
    assert httpx.post(srv.url + "/hook", json={}, headers=h, timeout=DEADLINE).status_code == 202
    srv.wait_runs(lambda rs: rs and rs[0]["status"] == "running", "the run to start")
    # a run is journaled running before its process is spawned (the spawner is started
    # with the first run, right after the commit): wait for it to show up
    # not the process serve starts it with, which forks it and exits at once (killing that
    # one killed nothing: the run then succeeded, or os.kill found no such process)
    spawner = wait_for(lambda: next((pid for pid, parent in _spawners().items()
                                     if pid not in before and parent != srv.proc.pid), None),
                       "serve's spawner process")
    pid = int(wait_for(lambda: (tmp_path / "proj" / "pid").exists() and (tmp_path / "proj" / "pid").read_text().strip(),
                       "the run's process"))
    os.kill(spawner, signal.SIGKILL)
    runs = srv.wait_runs(lambda rs: done(rs, 1), "the run to be failed")
    assert runs[0]["status"] == "failed" and "spawner" in runs[0]["error"]
    # its process is killed, not left going unwatched with no timeout
    assert "its process group was killed" in runs[0]["error"]
    wait_for(lambda: not alive(pid), "the failed run's process to be gone")
    srv2 = httpx.post(srv.url + "/hook", json={"x": 1}, headers=h, timeout=DEADLINE)
    assert srv2.status_code == 202
    srv.wait_runs(lambda rs: len(rs) == 2 and rs[1]["status"] == "running", "the next run to start")
    assert srv.stop() == 0


HOLD_RULES = """\
secret tok = env "INGEST_TOKEN"
source http path="/hook" token=tok
action hold(name) = exec "sh" "-c" "touch $1.started; while [ ! -e release ]; do sleep 0.02; done" "hold" name
a: on http.post path="/hook" run hold with "a" busy parallel
b: on http.post path="/hook" run hold with "b" busy parallel
"""


@pytest.mark.parametrize("parallel", [1, 2])
def test_max_parallel_bounds_the_runs_that_go_at_once(serve, tmp_path: Path, parallel: int) -> None:
    srv = serve(HOLD_RULES, "--max-parallel", str(parallel))
    folder = tmp_path / "proj"
    r = httpx.post(srv.url + "/hook", json={}, headers={"Authorization": f"Bearer {TOKEN}"}, timeout=DEADLINE)
    assert r.status_code == 202 and len(r.json()["runs"]) == 2
    runs = srv.wait_runs(lambda rs: sum(x["status"] == "running" for x in rs) == parallel, f"{parallel} running")
    wait_for(lambda: len(list(folder.glob("*.started"))) == parallel, f"{parallel} action(s) started")
    if parallel == 1:  # the one slot is held until `release` exists: the other run cannot have started
        assert sorted(x["status"] for x in srv.runs()) == ["queued", "running"]
    (folder / "release").touch()
    runs = srv.wait_runs(lambda rs: done(rs, 2), "both runs")
    assert [x["status"] for x in runs] == ["succeeded", "succeeded"]
    assert sorted(p.name for p in folder.glob("*.started")) == ["a.started", "b.started"]
    assert srv.stop() == 0


def test_max_parallel_is_refused_with_store(tmp_path: Path) -> None:
    (tmp_path / "rules.trg").write_text(hook_rules())
    r = cli("serve", str(tmp_path / "rules.trg"), "--store", "postgresql://nobody@127.0.0.1:1/x",
            "--max-parallel", "4")
    assert r.returncode == 2 and "--workers" in r.stderr and "Traceback" not in r.stderr
