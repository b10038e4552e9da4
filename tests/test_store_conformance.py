"""One conformance suite of policies and recovery, run against both stores (SPEC §12.5).

Every test starts a real ``triggerc serve`` on the store of its parameter: ``sqlite`` (the
default journal in ``--state``) or ``postgresql`` (a database of the session's throwaway
server, ``--store URL``, the embedded worker, short leases), drives it over HTTP and
checks the runs the store holds. The same assertions hold on both: that is the promise
of SPEC §12.5 ("everything §9 promises holds in store mode").
"""

from __future__ import annotations

import signal
import threading
from pathlib import Path

import httpx
import pytest

from runtime_helpers import DEADLINE, alive, by_rule, done, post, stop_ok, wait_for
from store_harness import Backend, StoreServer


@pytest.fixture(params=["sqlite", "postgresql"])
def backend(request) -> Backend:
    if request.param == "sqlite":
        return Backend("sqlite")
    return Backend("postgresql", request.getfixturevalue("pg_url"))


@pytest.fixture
def serve(tmp_path: Path, backend: Backend):
    started: list[StoreServer] = []

    def make(rules: str | None, *args: str, start: bool = True) -> StoreServer:
        folder = tmp_path / "proj"
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / "rules.trg"
        if rules is not None:
            path.write_text(rules)
        s = StoreServer(backend, path, tmp_path / "state", *args, log=tmp_path / "serve.log")
        started.append(s)
        return s.start() if start else s

    yield make
    for s in started:
        s.ensure_dead()


POLICY_RULES = r"""
action nap(n, s) = shell "sleep \"$TRG_INPUT_S\""
action rec(n) = exec "true"
action paths(files) = exec "true" files
q: on http.post path="/queue" run nap with <payload.n>, <payload.s> busy queue
sk: on http.post path="/skip" run nap with <payload.n>, <payload.s> busy skip
rs: on http.post path="/restart" run nap with <payload.n>, <payload.s> busy restart
par: on http.post path="/parallel" run nap with <payload.n>, <payload.s> busy parallel
dd: on http.post path="/dedupe" run rec with <payload.k> dedupe <payload.k> for 1h
db: on file.changed path ~ "src/**" run paths with <paths> debounce 600ms
"""


def test_queue_runs_one_at_a_time_in_order(serve) -> None:
    s = serve(POLICY_RULES)
    ids = [post(s, "/queue", {"n": n, "s": "0.2"}).json()["runs"][0] for n in range(1, 5)]
    runs = s.wait_runs(lambda rs: done(rs, 4), "four queued runs")
    assert [r["id"] for r in runs] == ids
    assert all(r["status"] == "succeeded" for r in runs)
    assert [r["inputs"]["n"] for r in sorted(runs, key=lambda r: r["started_at"])] == [1, 2, 3, 4]
    for prev, nxt in zip(runs, runs[1:]):
        assert nxt["started_at"] >= prev["finished_at"], (prev, nxt)
    stop_ok(s)


def test_skip_records_the_second_as_skipped(serve) -> None:
    s = serve(POLICY_RULES)
    first = post(s, "/skip", {"n": 1, "s": "1"}).json()["runs"][0]
    second = post(s, "/skip", {"n": 2, "s": "0"}).json()["runs"][0]
    runs = s.wait_runs(lambda rs: done(rs, 2), "both runs final")
    status = {r["id"]: r for r in runs}
    assert status[first]["status"] == "succeeded"
    assert status[second]["status"] == "skipped" and "busy skip" in status[second]["error"]
    stop_ok(s)


def test_restart_cancels_the_running_run(serve) -> None:
    s = serve(POLICY_RULES)
    first = post(s, "/restart", {"n": 1, "s": "30"}).json()["runs"][0]
    s.wait_runs(lambda rs: any(r["id"] == first and r["status"] == "running" for r in rs), "the first to run")
    second = post(s, "/restart", {"n": 2, "s": "0.1"}).json()["runs"][0]
    runs = s.wait_runs(lambda rs: done(rs, 2), "both runs final", timeout=15)
    status = {r["id"]: r["status"] for r in runs}
    assert (status[first], status[second]) == ("cancelled", "succeeded"), runs
    stop_ok(s)


def test_parallel_runs_overlap(serve) -> None:
    s = serve(POLICY_RULES)
    for n in range(3):
        post(s, "/parallel", {"n": n, "s": "1"})
    runs = s.wait_runs(lambda rs: done(rs, 3), "three parallel runs")
    assert all(r["status"] == "succeeded" for r in runs)
    assert max(r["started_at"] for r in runs) < min(r["finished_at"] for r in runs), runs
    stop_ok(s)


def test_debounce_makes_one_run_with_every_path(serve) -> None:
    s = serve(POLICY_RULES, "--http")
    sent = []
    for name in ("src/a.py", "src/b.py", "src/a.py", "src/c.py"):
        r = post(s, "/events", {"source": "file", "type": "modified", "data": {"path": name, "paths": [name]}})
        assert r.status_code == 202, r.text
        sent.append(r.json()["event_id"])
    runs = s.wait_runs(lambda rs: done(rs, 1), "the debounced run")
    (run,) = runs
    assert run["status"] == "succeeded"
    assert run["inputs"]["files"] == ["src/a.py", "src/b.py", "src/c.py"]
    assert run["event_id"] == sent[-1]
    assert run["started_at"] >= run["queued_at"] + 0.5
    stop_ok(s)
    assert len(s.runs()) == 1


def test_dedupe_skips_a_key_already_run(serve) -> None:
    s = serve(POLICY_RULES)
    ids = [post(s, "/dedupe", {"k": k}).json()["runs"][0] for k in ("a", "a", "b")]
    runs = s.wait_runs(lambda rs: done(rs, 3), "three runs final")
    status = {r["id"]: r for r in runs}
    assert [status[i]["status"] for i in ids] == ["succeeded", "skipped", "succeeded"]
    assert "dedupe" in status[ids[1]]["error"]
    stop_ok(s)


def test_retry_with_backoff(tmp_path: Path, serve) -> None:
    s = serve(r"""
action flaky = shell "n=$(cat count 2>/dev/null || echo 0); n=$((n+1)); echo $n > count; [ $n -ge 3 ]"
flaky: on http.post path="/flaky" run flaky retry 3 backoff 200ms
""")
    post(s, "/flaky", {})
    runs = s.wait_runs(lambda rs: done(rs, 3), "every attempt")
    assert [(r["attempt"], r["status"]) for r in runs] == [(1, "failed"), (2, "failed"), (3, "succeeded")]
    assert len({r["event_id"] for r in runs}) == 1
    assert runs[1]["started_at"] - runs[0]["finished_at"] >= 0.19
    assert runs[2]["started_at"] - runs[1]["finished_at"] >= 0.39
    stop_ok(s)
    assert len(s.runs()) == 3


def test_timeout_kills_the_process_group(tmp_path: Path, serve) -> None:
    s = serve("""
action hang = shell "sleep 30 & echo $! > grandchild.pid; wait"
slow: on http.post path="/slow" run hang timeout 500ms
""")
    post(s, "/slow", {})
    runs = s.wait_runs(lambda rs: done(rs, 1), "the run to time out")
    assert runs[0]["status"] == "timed_out" and runs[0]["exit_code"] == 128 + signal.SIGTERM, runs
    pid = int((tmp_path / "proj" / "grandchild.pid").read_text())
    wait_for(lambda: not alive(pid), f"the grandchild {pid} to be gone")
    stop_ok(s)


def test_a_redelivery_creates_no_second_run(serve) -> None:
    s = serve(POLICY_RULES, "--http")
    body = {"source": "http", "type": "post", "id": "delivery-1",
            "data": {"path": "/dedupe", "payload": {"k": "z"}}}
    first = post(s, "/events", body)
    again = post(s, "/events", body)
    assert first.status_code == 202 and again.status_code == 200, (first.text, again.text)
    assert again.json()["duplicate"] is True and again.json()["runs"] == first.json()["runs"]
    s.wait_runs(lambda rs: done(rs, 1), "the run")
    stop_ok(s)
    assert len(s.runs()) == 1 and len(s.events()) == 1


def test_run_events_chain_rules(serve) -> None:
    s = serve("""
action good = exec "true"
action bad = shell "exit 3"
action rec(rule, status) = exec "true"
g: on http.post path="/good" run good
b: on http.post path="/bad" run bad
done_ok: on run.completed rule="g" run rec with <rule>, <status>
done_bad: on run.failed rule="b" run rec with <rule>, <status>
""")
    post(s, "/good", {})
    post(s, "/bad", {})
    runs = s.wait_runs(lambda rs: done(rs, 4), "the runs and their chained runs")
    chained = {r["rule"]: r["inputs"] for r in runs if r["rule"].startswith("done_")}
    assert chained == {"done_ok": {"rule": "g", "status": "succeeded"}, "done_bad": {"rule": "b", "status": "failed"}}
    stop_ok(s)


def test_kill_9_then_a_new_server_recovers_every_accepted_run(tmp_path: Path, serve, backend: Backend) -> None:
    rules = r"""
action nap(n) = shell "sleep 1"
retried: on http.post path="/retried" run nap with <payload.n> retry 1 backoff 100ms
plain: on http.post path="/plain" run nap with <payload.n>
ingest: on http.post path="/ingest" payload.never="x" run nap with <payload.n>
"""
    s = serve(rules)
    for n in range(1, 4):
        assert post(s, "/retried", {"n": n}).status_code == 202
        assert post(s, "/plain", {"n": n}).status_code == 202
    accepted: list[str] = []
    stop_hammer = threading.Event()

    def hammer() -> None:
        with httpx.Client(base_url=s.url, timeout=5) as c:
            while not stop_hammer.is_set():
                try:
                    r = c.post("/ingest", json={"n": len(accepted)})
                except httpx.HTTPError:
                    return
                if r.status_code == 202:
                    accepted.append(r.json()["event_id"])

    t = threading.Thread(target=hammer, daemon=True)
    t.start()
    s.wait_runs(lambda rs: {r["rule"] for r in rs if r["status"] == "running"} == {"retried", "plain"},
                "the first run of each rule to be running")
    wait_for(lambda: len(accepted) >= 20, "some webhooks accepted")
    s.kill9()
    stop_hammer.set()
    t.join(DEADLINE)
    journaled = {e["id"] for e in s.events()}
    assert set(accepted) <= journaled, set(accepted) - journaled
    running = {r["rule"]: r["id"] for r in s.runs() if r["status"] == "running"}
    assert set(running) == {"retried", "plain"}

    s2 = serve(None)  # the same rules and store; in store mode the reaper takes the expired leases
    runs = s2.wait_runs(lambda rs: done(rs, 7), "every run after the restart", timeout=40)
    by_id = {r["id"]: r for r in runs}
    assert by_id[running["retried"]]["status"] == "interrupted"
    assert by_id[running["plain"]]["status"] == "interrupted"
    retried = by_rule(runs, "retried")
    again = [r for r in retried if r["attempt"] == 2]
    assert len(again) == 1 and again[0]["status"] == "succeeded"
    assert again[0]["event_id"] == by_id[running["retried"]]["event_id"]
    plain = by_rule(runs, "plain")
    assert len(plain) == 3 and sorted(r["status"] for r in plain) == ["interrupted", "succeeded", "succeeded"]
    stop_ok(s2)
