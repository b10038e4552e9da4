"""Several machines on one PostgreSQL store, as real processes (SPEC §12.5).

Two ingest nodes (``triggerc serve --store URL --workers 0``) and three workers
(``triggerc worker --store URL``) on a database of the session's throwaway server, with
short leases (2 s, heartbeat 0.5 s) so that recovery is quick. The checks are the
promises of §9 across nodes: no accepted event lost, one run per delivery, one running
run per serial rule in FIFO order, debounce and restart across ingest nodes, one event
per schedule tick, and a dead or stalled worker's run re-run elsewhere, its own action gone.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from runtime_helpers import (DEADLINE, NotifySocket, alive, done, namespace_pid1, namespace_processes,
                             pid_in, pid_namespace_or_skip, wait_for)
from store_harness import Backend, StoreServer, WorkerProc


class Cluster:
    def __init__(self, tmp_path: Path, url: str) -> None:
        self.tmp = tmp_path
        self.url = url
        self.backend = Backend("postgresql", url)
        self.proj = tmp_path / "proj"
        self.proj.mkdir(parents=True, exist_ok=True)
        self.nodes: list[StoreServer] = []
        self.workers: list[WorkerProc] = []

    def start(self, rules: str, *, nodes: int = 2, workers: int = 3, slots: int = 2,
              node_args: tuple[str, ...] = ()) -> "Cluster":
        (self.proj / "rules.trg").write_text(rules)
        for i in range(nodes):
            s = StoreServer(self.backend, self.proj / "rules.trg", self.tmp / f"state{i}", *node_args, workers=0,
                            log=self.tmp / f"node{i}.log")
            self.nodes.append(s.start())
        pools = ["--pool", "default", "--pool", f"node:{socket.gethostname()}"]
        for i in range(workers):
            self.workers.append(WorkerProc(self.url, self.tmp / f"worker{i}.log", "--slots", str(slots), *pools,
                                           cwd=self.proj))
        return self

    def runs(self) -> list[dict[str, Any]]:
        return self.backend.runs(self.tmp)

    def events(self) -> list[dict[str, Any]]:
        return self.backend.events(self.tmp)

    def logs(self) -> str:
        out = [f"--- node{i} ---\n{n.log()[-3000:]}" for i, n in enumerate(self.nodes)]
        out += [f"--- worker{i} ---\n{w.log()[-3000:]}" for i, w in enumerate(self.workers)]
        return "\n".join(out)

    def wait_runs(self, cond, what: str, timeout: float = DEADLINE) -> list[dict[str, Any]]:
        box: list[list[dict[str, Any]]] = []

        def check() -> bool:
            box[:] = [self.runs()]
            return cond(box[0])

        wait_for(check, what, timeout, on_fail=lambda: repr(box[0] if box else []) + "\n" + self.logs())
        return box[0]

    def worker_of(self, run: dict[str, Any]) -> WorkerProc:
        (w,) = [w for w in self.workers if w.owns(run["worker"])]
        return w

    def stop(self) -> None:
        for w in self.workers:
            w.stop()
        for n in self.nodes:
            assert n.stop() == 0, n.tail()
        for w in self.workers:
            assert "Traceback" not in w.log(), w.log()

    def ensure_dead(self) -> None:
        for w in self.workers:
            w.ensure_dead()
        for n in self.nodes:
            n.ensure_dead()


@pytest.fixture
def cluster(tmp_path: Path, pg_url: str):
    c = Cluster(tmp_path, pg_url)
    yield c
    c.ensure_dead()


def post(node: StoreServer, path: str, payload: Any = None, **kw: Any) -> httpx.Response:
    return httpx.post(node.url + path, json=payload, timeout=DEADLINE, **kw)


# The first attempt of a run writes its shell's pid and sleeps (exec: the sleep is that
# process); later attempts finish at once.
SLOW_ONCE = r"""
action slow = shell "n=$(cat n 2>/dev/null || echo 0); echo $((n+1)) > n; echo $$ > pid$((n+1)); [ $n -ge 1 ] && exit 0; exec sleep 60"
slow: on http.post path="/slow" run slow retry 1 backoff 100ms
"""


def test_kill_9_of_a_worker_mid_run_reruns_it_elsewhere_and_its_action_is_gone(cluster: Cluster) -> None:
    c = cluster.start(SLOW_ONCE)
    (rid,) = post(c.nodes[0], "/slow", {}).json()["runs"]
    runs = c.wait_runs(lambda rs: rs and rs[0]["status"] == "running" and (c.proj / "pid1").exists(),
                       "the run to be going")
    victim = c.worker_of(runs[0])
    pid = pid_in(c.proj / "pid1")
    assert alive(pid)
    killed_at = time.monotonic()
    victim.kill9()
    wait_for(lambda: not alive(pid), "the killed worker's action to die with it")
    runs = c.wait_runs(lambda rs: done(rs, 2), "the retry on another worker", timeout=30)
    recovery = time.monotonic() - killed_at
    first, second = runs
    assert (first["id"], first["status"]) == (rid, "interrupted") and "lease" in first["error"]
    assert (second["attempt"], second["status"]) == (2, "succeeded")
    assert second["worker"] != first["worker"] and not victim.owns(second["worker"])
    assert recovery < 3 * 2 + 5, recovery  # the lease is 2 s; the reaper runs every 0.5 s
    c.workers.remove(victim)
    c.stop()


def test_kill_9_of_an_ingest_node_during_a_retried_burst_every_delivery_once(cluster: Cluster) -> None:
    c = cluster.start("""
action rec(n) = exec "true"
hit: on http.post path="/hit" run rec with <payload.n> busy parallel
""")
    n_deliveries = 120
    answered: dict[str, str] = {}
    lock = threading.Lock()
    killed = threading.Event()

    def send(i: int, node: StoreServer) -> bool:
        body = {"source": "http", "type": "post", "id": f"d{i}",
                "data": {"path": "/hit", "method": "POST", "payload": {"n": i}}}
        try:
            r = httpx.post(node.url + "/events", json=body, timeout=5)
        except httpx.HTTPError:
            return False
        if r.status_code in (200, 202):
            with lock:
                answered[f"d{i}"] = r.json()["event_id"]
            return True
        return False

    def sender(ids: list[int]) -> None:
        for i in ids:
            node = c.nodes[0] if i % 2 == 0 else c.nodes[1]
            if not send(i, node):  # no answer: deliver again, to the node that is still up
                for _ in range(20):
                    if send(i, c.nodes[1]):
                        break
                    time.sleep(0.1)

    threads = [threading.Thread(target=sender, args=(list(range(k, n_deliveries, 4)),)) for k in range(4)]
    for t in threads:
        t.start()
    wait_for(lambda: len(answered) >= n_deliveries // 3, "a third of the burst answered")
    c.nodes[0].kill9()
    killed.set()
    for t in threads:
        t.join(60)
    assert len(answered) == n_deliveries
    events = c.events()
    keys = [e["delivery_key"] for e in events]
    assert sorted(keys) == sorted(f"emit:d{i}" for i in range(n_deliveries)), "a delivery lost or doubled"
    assert {answered[f"d{i}"] for i in range(n_deliveries)} == {e["id"] for e in events}
    runs = c.wait_runs(lambda rs: done(rs, n_deliveries), "a run per delivery", timeout=60)
    assert sorted(r["inputs"]["n"] for r in runs) == list(range(n_deliveries))
    assert all(r["status"] == "succeeded" for r in runs)
    c.nodes.remove(c.nodes[0])
    c.stop()


def test_fifty_events_on_a_busy_queue_rule_over_three_workers(cluster: Cluster) -> None:
    """One serial lane, three workers: FIFO, never two at once, and not pinned to a worker.
    Which worker claims the lane's next run is a race (under load one may win every time),
    so the test stops the worker that ran the first runs: the rest must go on elsewhere."""
    c = cluster.start(r"""
action step(n) = shell "sleep 0.1"
q: on http.post path="/q" run step with <payload.n> busy queue
""")
    ids = []
    for n in range(50):
        ids.extend(post(c.nodes[n % 2], "/q", {"n": n}).json()["runs"])
    runs = c.wait_runs(lambda rs: sum(r["status"] == "succeeded" for r in rs) >= 3, "the lane's first runs")
    first = c.worker_of(min((r for r in runs if r["status"] == "succeeded"), key=lambda r: r["id"]))
    assert first.stop() == 0, first.log()  # graceful: its run in hand finishes
    c.workers.remove(first)
    runs = c.wait_runs(lambda rs: done(rs, 50), "fifty queued runs", timeout=60)
    assert [r["id"] for r in runs] == ids and all(r["status"] == "succeeded" for r in runs)
    assert [r["inputs"]["n"] for r in runs] == list(range(50))
    by_start = sorted(runs, key=lambda r: r["started_at"])
    assert [r["id"] for r in by_start] == ids, "not FIFO"
    for prev, nxt in zip(by_start, by_start[1:]):
        assert nxt["started_at"] >= prev["finished_at"], ("overlap", prev, nxt)
    assert not first.owns(runs[-1]["worker"])  # the lane moved on to the other workers
    c.stop()


def test_debounce_fed_through_two_nodes_makes_one_run_with_every_path(cluster: Cluster) -> None:
    c = cluster.start("""
action build(files) = exec "true" files
b: on file.changed path ~ "src/**" run build with <paths> debounce 1s
""", node_args=("--http",))
    names = [f"src/f{i}.py" for i in range(6)]
    for i, name in enumerate(names):
        r = post(c.nodes[i % 2], "/events", {"source": "file", "type": "modified",
                                              "data": {"path": name, "paths": [name]}})
        assert r.status_code == 202, r.text
    runs = c.wait_runs(lambda rs: done(rs, 1), "the debounced run")
    (run,) = runs
    assert run["status"] == "succeeded" and run["inputs"]["files"] == names
    time.sleep(0.1)
    assert len(c.runs()) == 1
    c.stop()


def test_restart_across_nodes_cancels_the_run_started_through_the_other(cluster: Cluster) -> None:
    c = cluster.start(r"""
action nap(s) = shell "sleep \"$TRG_INPUT_S\""
r: on http.post path="/r" run nap with <payload.s> busy restart
""")
    (first,) = post(c.nodes[0], "/r", {"s": "60"}).json()["runs"]
    c.wait_runs(lambda rs: rs and rs[0]["status"] == "running", "the first run to be going")
    (second,) = post(c.nodes[1], "/r", {"s": "0.1"}).json()["runs"]
    runs = c.wait_runs(lambda rs: done(rs, 2), "both runs final", timeout=20)
    status = {r["id"]: r["status"] for r in runs}
    assert (status[first], status[second]) == ("cancelled", "succeeded"), runs
    c.stop()


def test_two_nodes_make_one_event_per_schedule_tick(cluster: Cluster) -> None:
    c = cluster.start("""
action tick = exec "true"
t: on every 1s run tick busy parallel
""", workers=1)
    c.wait_runs(lambda rs: len(rs) >= 4, "four ticks", timeout=30)
    c.stop()
    events = [e for e in c.events() if e["source"] == "schedule"]
    planned = [e["data"]["scheduled"] for e in events]
    assert len(planned) == len(set(planned)), "a tick journaled twice"
    assert all(e["delivery_key"] == f"schedule:t:{e['data']['scheduled']}" for e in events)
    assert all(p.endswith(".000+00:00") for p in planned)  # multiples of 1 s from the epoch
    runs = c.runs()
    assert len(runs) == len(events)


def test_a_stopped_worker_past_its_lease_is_reaped_and_fences_itself_after_sigcont(cluster: Cluster) -> None:
    c = cluster.start(SLOW_ONCE)
    (rid,) = post(c.nodes[0], "/slow", {}).json()["runs"]
    runs = c.wait_runs(lambda rs: rs and rs[0]["status"] == "running" and (c.proj / "pid1").exists(),
                       "the run to be going")
    stalled = c.worker_of(runs[0])
    pid = pid_in(c.proj / "pid1")
    stalled.signal(signal.SIGSTOP)
    runs = c.wait_runs(lambda rs: done(rs, 2), "the reaper and the retry elsewhere", timeout=30)
    assert runs[0]["status"] == "interrupted" and (runs[1]["attempt"], runs[1]["status"]) == (2, "succeeded")
    assert not stalled.owns(runs[1]["worker"])
    assert alive(pid)  # the stalled worker's action is still going...
    stalled.signal(signal.SIGCONT)
    wait_for(lambda: not alive(pid), "the stalled worker to kill its action once it sees its lease gone",
             on_fail=stalled.log)
    wait_for(lambda: "its lease is gone (a reaper took it" in stalled.log(), "the fencing to be logged",
             on_fail=stalled.log)
    time.sleep(1.0)  # its finish must not overwrite the reaped run
    after = {r["id"]: r for r in c.runs()}
    assert after[rid]["status"] == "interrupted" and len(after) == 2
    c.stop()


def test_a_store_outage_past_the_lease_stops_the_run_and_the_worker_says_why(cluster: Cluster) -> None:
    # the database refusing connections for longer than the lease (a restart, a failover): the
    # worker cannot renew its lease, so it stops its run before a reaper retries it elsewhere;
    # its log says the store did not answer (not that the worker was stalled)
    from test_pgstore import _outage

    cluster.url += "&connect_timeout=3"   # (Retry-After says the store calls' bound)
    cluster.backend = Backend("postgresql", cluster.url)
    c = cluster.start(SLOW_ONCE, nodes=1, workers=1)
    assert post(c.nodes[0], "/slow", {}).status_code == 202
    c.wait_runs(lambda rs: rs and rs[0]["status"] == "running" and (c.proj / "pid1").exists(), "the run to be going")
    pid, w = pid_in(c.proj / "pid1"), c.workers[0]
    ready = lambda: httpx.get(c.nodes[0].url + "/readyz", timeout=DEADLINE)  # noqa: E731
    assert (ready().status_code, ready().json()) == (200, {"ok": True})
    with _outage(c.url):
        # the node leaves a load balancer's rotation (it would answer 503), while /healthz says it is up
        r = wait_for(lambda: (r := ready()).status_code == 503 and r, "/readyz to say the store is away")
        assert r.json()["ok"] is False and r.json()["error"].startswith("store "), r.json()
        assert httpx.get(c.nodes[0].url + "/healthz", timeout=DEADLINE).status_code == 200
        # a delivery while the database refuses connections: try again later, as when it
        # hangs (it was a 500), after the store's bound (it was 10 s whatever the bound)
        r = post(c.nodes[0], "/slow", {})
        assert r.status_code == 503 and r.headers["Retry-After"] == "3", (r.status_code, r.text)
        assert "cannot take it now" in r.json()["error"] and "same delivery id" in r.json()["error"], r.text
        wait_for(lambda: not alive(pid), "the worker to stop its run once its lease ran out", on_fail=w.log)
    wait_for(lambda: ready().status_code == 200, "/readyz to say the store is back")
    runs = c.wait_runs(lambda rs: done(rs, 2), "the reaper and the retry")
    assert runs[0]["status"] == "interrupted" and (runs[1]["attempt"], runs[1]["status"]) == (2, "succeeded")
    log = w.log()
    assert "the store has not answered for" in log and "past its 2s lease" in log, log
    assert "stalled" not in log, log
    # the outage is said once, not by every heartbeat, reaper round and claim (every 0.5 s
    # here), and its end is said too
    wait_for(lambda: "the store answers again, after" in w.log(), "the end of the outage to be said", on_fail=w.log)
    assert w.log().count(" ERROR ") <= 2, w.log()
    c.stop()


def test_a_second_ctrl_c_stops_a_workers_running_runs_at_once(cluster: Cluster) -> None:
    c = cluster.start('action slow = shell "echo $$ > started; exec sleep 120"\n'
                      'slow: on http.post path="/slow" run slow\n', nodes=1, workers=0)
    w = WorkerProc(c.url, c.tmp / "worker.log", "--grace", "120", cwd=c.proj)
    c.workers.append(w)
    assert post(c.nodes[0], "/slow", {}).status_code == 202
    wait_for(lambda: (c.proj / "started").exists() and (c.proj / "started").read_text().strip(),
             "the action to start", on_fail=w.log)  # (claimed is not yet started)
    w.signal(signal.SIGINT)
    wait_for(lambda: "press Ctrl-C again to stop now" in w.log(), "the first Ctrl-C's notice", on_fail=w.log)
    t0 = time.monotonic()
    w.signal(signal.SIGINT)
    assert w.proc.wait(DEADLINE) == 0, w.log()
    assert time.monotonic() - t0 < 15, w.log()  # not the 120 s grace
    assert "stopping now: 1 run(s) stopped and marked interrupted" in w.log()
    c.wait_runs(lambda rs: [r["status"] for r in rs] == ["interrupted"], "the run interrupted")


def test_sighup_leaves_a_worker_and_its_running_run_alone(cluster: Cluster) -> None:
    # ExecReload=/bin/kill -HUP $MAINPID in a unit shared with serve: a worker has nothing to
    # reload, and its default would have ended it with the run left behind
    c = cluster.start('action slow = shell "echo $$ > started; exec sleep 120"\n'
                      'slow: on http.post path="/slow" run slow\n', nodes=1, workers=1)
    w = c.workers[0]
    assert post(c.nodes[0], "/slow", {}).status_code == 202
    wait_for(lambda: (c.proj / "started").exists() and (c.proj / "started").read_text().strip(),
             "the action to start", on_fail=w.log)
    w.signal(signal.SIGHUP)
    wait_for(lambda: "SIGHUP: worker has nothing to reload" in w.log(), "the SIGHUP's line", on_fail=w.log)
    pid = int((c.proj / "started").read_text())
    assert w.proc.poll() is None and alive(pid), w.log()
    assert [r["status"] for r in c.runs()] == ["running"]
    w.signal(signal.SIGINT)
    # Ctrl-C twice stops the run at once; the second only once the first is seen (two sent
    # back to back can merge into one pending signal, a graceful stop waiting out --grace)
    wait_for(lambda: "press Ctrl-C again to stop now" in w.log(), "the first Ctrl-C's notice", on_fail=w.log)
    t0 = time.monotonic()
    w.signal(signal.SIGINT)
    assert w.proc.wait(DEADLINE) == 0, w.log()
    assert time.monotonic() - t0 < 8, w.log()  # not the 10 s --grace
    c.wait_runs(lambda rs: [r["status"] for r in rs] == ["interrupted"], "the run interrupted")


def test_a_worker_under_systemd_says_ready_and_stopping(cluster: Cluster, monkeypatch) -> None:
    # Type=notify for a worker's unit too: READY=1 once it claims runs, STOPPING=1, watchdog pings
    c = cluster.start('action a = exec "true"\na: on http.post path="/a" run a\n', nodes=1, workers=0)
    ns = NotifySocket(abstract=True)
    try:
        monkeypatch.setenv("NOTIFY_SOCKET", ns.name)
        monkeypatch.setenv("WATCHDOG_USEC", "200000")
        w = WorkerProc(c.url, c.tmp / "worker.log", cwd=c.proj)
        c.workers.append(w)
        ready = ns.next("READY")
        assert ready["STATUS"].startswith("worker ") and "claiming runs from" in ready["STATUS"], ready
        ns.next("WATCHDOG")
        w.signal(signal.SIGTERM)
        stopping = ns.next("STOPPING")
        assert stopping["EXTEND_TIMEOUT_USEC"] == str((10 + 10) * 1_000_000), stopping  # --grace and a margin
        assert w.proc.wait(DEADLINE) == 0, w.log()
    finally:
        ns.close()


def test_a_worker_as_pid_1_of_a_container_reaps_orphans_and_stops_on_sigterm(cluster: Cluster) -> None:
    # docker run IMAGE triggerc worker: the worker is PID 1 of its PID namespace (runtime/pid1.py)
    pid_namespace_or_skip()
    c = cluster.start('action orphan = shell "sleep 0.3 & echo left a child behind"\n'
                      'o: on http.post path="/o" run orphan\n', nodes=1, workers=0)
    log = c.tmp / "worker.log"
    with open(log, "ab") as fh:
        proc = subprocess.Popen(["unshare", "--pid", "--fork", "--mount-proc", sys.executable, "-m", "triggerlang.cli",
                                 "worker", "--store", c.url, "--lease", "2", "--heartbeat", "0.5"],
                                stdin=subprocess.DEVNULL, stdout=fh, stderr=fh, cwd=str(c.proj))
    try:
        wait_for(lambda: "claiming runs from" in log.read_text(), "the worker to start", on_fail=log.read_text)
        pid1 = namespace_pid1(proc.pid)
        for _ in range(3):
            assert post(c.nodes[0], "/o", {}).status_code == 202
        c.wait_runs(lambda rs: len(rs) == 3 and all(r["status"] == "succeeded" for r in rs), "the three runs")
        wait_for(lambda: not [p for p in namespace_processes(pid1) if p[2] == "sleep"], "the orphans to be reaped",
                 on_fail=lambda: f"{namespace_processes(pid1)}\n{log.read_text()}")
        os.kill(pid1, signal.SIGTERM)
        assert proc.wait(DEADLINE) == 0, log.read_text()
        assert "stopped cleanly" in log.read_text() and "Traceback" not in log.read_text()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_a_reload_that_adds_busy_signal_keeps_the_previous_rules(cluster: Cluster) -> None:
    # an ingest node cannot signal a run on another machine's worker: `busy signal` is refused
    # at start (tests/test_runtime.py) and by a reload, which says so and keeps what ran
    c = cluster.start('action a = exec "true"\napp: on http.post path="/a" run a\n', nodes=1, workers=0)
    node = c.nodes[0]
    (c.proj / "rules.trg").write_text('action a = exec "true"\napp: on http.post path="/a" run a busy signal SIGHUP\n')
    node.proc.send_signal(signal.SIGHUP)
    node.wait_log("reload: busy signal (rule app) does not work with --store")
    assert "the previous rules keep running" in node.log() and "reloaded" not in node.log(), node.tail()
    assert node.stop() == 0


def _server_processes(pg_server: Any) -> list[int]:
    """The PostgreSQL server's postmaster and its children (the backends, the checkpointer...)."""
    pm = int((pg_server.data / "postmaster.pid").read_text().split()[0])
    kids = []
    for d in os.listdir("/proc"):
        try:
            stat = Path(f"/proc/{d}/stat").read_text() if d.isdigit() else ""
        except OSError:
            continue
        if stat and int(stat.rsplit(")", 1)[1].split()[1]) == pm:
            kids.append(int(d))
    return [pm, *kids]


def _unread(port: int, peer: int) -> int | None:
    """The bytes serve (on 127.0.0.1:``port``) has not read yet from the connection of ``peer``'s
    port (/proc/net/tcp); None while there is no such connection."""
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        f = line.split()
        if int(f[1].split(":")[1], 16) == port and int(f[2].split(":")[1], 16) == peer:
            return int(f[4].split(":")[1], 16)
    return None


def test_a_hung_database_holds_neither_the_stop_of_serve_nor_of_a_worker(cluster: Cluster, pg_server: Any) -> None:
    # a database that hangs rather than refusing (a stopped VM, a network partition): the
    # server frozen with SIGSTOP answers neither a query nor a connection. serve --store
    # (with its embedded worker) and triggerc worker each stop within --grace plus the
    # store's bound, and say which runs' ends they could not record; once the database
    # answers again, a new node's reaper records those runs interrupted and retries them
    from triggerlang.runtime.cluster import STOP_STORE_WAIT

    rules = ('action a = shell "[ -e a1 ] && exit 0; touch a1; exec sleep 60"\n'
             'action b = shell "[ -e b1 ] && exit 0; touch b1; exec sleep 60"\n'
             'a: on http.post path="/a" run a retry 1 backoff 100ms\n'
             'b: on http.post path="/b" run b retry 1 backoff 100ms\n')
    c = cluster.start(rules, nodes=0, workers=0)
    node = StoreServer(c.backend, c.proj / "rules.trg", c.tmp / "state0", "--grace", "0.5", workers=1,
                       log=c.tmp / "node0.log")
    c.nodes.append(node.start())
    w = WorkerProc(c.url, c.tmp / "worker0.log", "--slots", "1", "--grace", "0.5", cwd=c.proj)
    c.workers.append(w)
    assert post(node, "/a", {}).status_code == 202 and post(node, "/b", {}).status_code == 202
    runs = c.wait_runs(lambda rs: len(rs) == 2 and all(r["status"] == "running" for r in rs)
                       and (c.proj / "a1").exists() and (c.proj / "b1").exists(), "both runs to be going")
    assert len({r["worker"] for r in runs}) == 2, runs   # one on each
    frozen = _server_processes(pg_server)
    try:
        for pid in frozen:
            with contextlib.suppress(ProcessLookupError):   # (a backend that just ended)
                os.kill(pid, signal.SIGSTOP)
        # a delivery held by the frozen database (being journaled) when the stop comes
        held = socket.create_connection(("127.0.0.1", node.port), timeout=DEADLINE)
        body = b'{"n": 2}'
        held.sendall(b"POST /a HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                     b"Content-Length: %d\r\n\r\n%s" % (len(body), body))
        wait_for(lambda: _unread(node.port, held.getsockname()[1]) == 0, "serve to read the delivery")
        t0 = time.monotonic()
        node.proc.send_signal(signal.SIGTERM)
        w.signal(signal.SIGTERM)
        bound = 0.5 + STOP_STORE_WAIT + 4   # --grace, the store's bound, the runs' kill and a busy machine
        for proc, log in ((node.proc, node.log), (w.proc, w.log)):
            try:
                rc = proc.wait(max(0.1, t0 + bound - time.monotonic()))
            except subprocess.TimeoutExpired:
                raise AssertionError(f"not stopped within {bound}s of the SIGTERM:\n{log()}") from None
            assert rc == 0, log()
    finally:
        for pid in frozen:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGCONT)
    mine = lambda pid: next(r for r in runs if f":{pid}:" in r["worker"])  # noqa: E731
    for r, log in ((mine(node.proc.pid), node.log()), (mine(w.pid), w.log())):
        # (the stop gave up its end; or, its 2 s lease over first, its heartbeat stopped it)
        assert ((f"run {r['id']} of {r['rule']}: its end was not recorded, as the store did not answer within "
                 f"{STOP_STORE_WAIT:g}s of the stop") in log
                and "a reaper (any node's, or the next start's) records it interrupted" in log
                or f"run {r['id']} of {r['rule']}: the store has not answered for" in log
                and "past its 2s lease: a reaper records it interrupted" in log), log
        assert "Traceback" not in log and "stopped cleanly" in log, log
    assert "this node's registration in the store was not removed, as the store did not answer" in node.log()
    # the delivery being journaled when the stop came was closed with no answer, and said
    assert held.recv(1024) == b"", "an answer"
    held.close()
    assert "a delivery to /a got no answer: the stop came before the store answered" in node.log(), node.log()
    # the database is back: a new node's reaper takes the runs once their leases ran out
    assert [r["status"] for r in c.runs()][:2] == ["running", "running"]
    again = StoreServer(c.backend, c.proj / "rules.trg", c.tmp / "state1", workers=1, log=c.tmp / "node1.log")
    c.nodes.append(again.start())
    runs = c.wait_runs(lambda rs: done(rs, 4), "the runs interrupted and retried")
    ends = sorted((r["rule"], r["attempt"], r["status"]) for r in runs)
    # (the held delivery's statement may have reached the database before the stop, and been
    # committed once it answered: a run then, as after a timeout, README "Delivery")
    assert ends in ([("a", 1, "interrupted"), ("a", 2, "succeeded"), ("b", 1, "interrupted"), ("b", 2, "succeeded")],
                    [("a", 1, "interrupted"), ("a", 1, "succeeded"), ("a", 2, "succeeded"), ("b", 1, "interrupted"),
                     ("b", 2, "succeeded")]), runs
    assert again.stop() == 0, again.tail()


def test_a_hung_database_while_running_503s_deliveries_stops_runs_at_their_lease_and_recovers(
        cluster: Cluster, pg_server: Any) -> None:
    # the database hangs (SIGSTOP) during normal running, with the store calls' bound at 2 s
    # (the URL's connect_timeout=2): a delivery gets 503 with Retry-After within the bound,
    # never a request held for ever; /readyz says not ready, /healthz up; the run going is
    # stopped once its lease runs out, its heartbeat given up; after SIGCONT, with no
    # restart, /readyz is ready again, the run is retried and the same delivery resent is
    # journaled once (its statement may have reached the database before the freeze and
    # been committed after it: the resend is then a duplicate)
    from store_harness import Backend

    rules = ('action a = shell "[ -e a1 ] && exit 0; echo $$ > a1; exec sleep 60"\n'
             'action b = exec "true"\n'
             'secret tok = env "CI_TOKEN"\n'
             'source ci token=tok\n'
             'a: on http.post path="/a" run a retry 1 backoff 100ms\n'
             'b: on ci.completed run b\n')
    c = cluster.start(rules, nodes=0, workers=0)
    c.url += "&connect_timeout=4"   # (over /readyz's 3 s, and over the 2 s lease)
    c.backend = Backend("postgresql", c.url)
    node = StoreServer(c.backend, c.proj / "rules.trg", c.tmp / "state0", workers=1, log=c.tmp / "node0.log",
                       env={"CI_TOKEN": "t0k"})
    c.nodes.append(node.start())
    assert post(node, "/a", {}).status_code == 202
    c.wait_runs(lambda rs: rs and rs[0]["status"] == "running" and (c.proj / "a1").exists(), "the run to be going")
    pid = int((c.proj / "a1").read_text())
    hook = {"Authorization": "Bearer t0k", "Idempotency-Key": "d-1"}
    ci = {"pipeline": "build", "status": "success"}
    frozen = _server_processes(pg_server)
    try:
        for p in frozen:
            with contextlib.suppress(ProcessLookupError):   # (a backend that just ended)
                os.kill(p, signal.SIGSTOP)
        # /readyz gives up after 3 s; its ping fails at 4 s, before the delivery sent after it
        ready = httpx.get(node.url + "/readyz", timeout=DEADLINE)
        assert ready.status_code == 503 and "has not answered in 3s" in ready.json()["error"], ready.text
        t0 = time.monotonic()
        r = post(node, "/ci", ci, headers=hook)
        took = time.monotonic() - t0
        assert r.status_code == 503 and r.headers["Retry-After"] == "4", (r.status_code, r.text, node.tail())  # the bound
        assert "did not answer in time" in r.json()["error"] and took < 4 + 3, took  # the bound, a busy machine
        assert httpx.get(node.url + "/healthz", timeout=DEADLINE).status_code == 200
        # the heartbeat is given up at the lease's end (2 s), not after the store's 4 s: the
        # run is stopped then
        said = re.search(r"the store has not answered for ([\d.]+)s, past its 2s lease", node.wait_log("past its 2s lease"))
        assert said and float(said[1]) < 4, said   # (2 s and a heartbeat, on a busy machine; 4.5 s and more without)
        wait_for(lambda: not alive(pid), "the run's process to be stopped while the database hangs")
    finally:
        for p in frozen:
            with contextlib.suppress(ProcessLookupError):
                os.kill(p, signal.SIGCONT)
    # (a new probe replaces the failed ping: a failure never retrieved would print a traceback)
    wait_for(lambda: httpx.get(node.url + "/readyz", timeout=DEADLINE).status_code == 200, "ready again")
    again = post(node, "/ci", ci, headers=hook)
    assert again.status_code in (200, 202), again.text   # (200: the first was journaled after all)
    runs = c.wait_runs(lambda rs: done(rs, 3), "the run retried and the delivery's run")
    assert sorted((r["rule"], r["attempt"], r["status"]) for r in runs) == [
        ("a", 1, "interrupted"), ("a", 2, "succeeded"), ("b", 1, "succeeded")], runs
    assert len([e for e in c.events() if e["delivery_key"] and "d-1" in e["delivery_key"]]) == 1, c.events()
    assert "Traceback" not in node.log() and "answered 503" in node.log(), node.log()
    assert node.stop() == 0, node.tail()


def test_a_store_call_on_a_hung_database_gives_up_at_its_deadline(pg_url: str, pg_server: Any) -> None:
    # in process: a call on a pooled connection (sent, never answered) and a heartbeat's
    # shorter deadline (its runs' lease end) raise StoreTimeout on time; then the store
    # answers again on a new connection
    from triggerlang.runtime.cluster import _within
    from triggerlang.runtime.pgstore import PgStore
    from triggerlang.runtime.store import StoreTimeout

    store = PgStore(pg_url + "&connect_timeout=2")
    store.bound_calls()
    store.ping()   # (a pooled connection)
    got: list[Any] = []

    def call(*how: Any) -> float:
        t0 = time.monotonic()
        th = threading.Thread(target=lambda: got.append(_catch(*how)), daemon=True)
        th.start()
        th.join(DEADLINE)
        assert not th.is_alive(), "the call did not give up"
        return time.monotonic() - t0

    frozen = _server_processes(pg_server)
    try:
        for p in frozen:
            with contextlib.suppress(ProcessLookupError):   # (a backend that just ended)
                os.kill(p, signal.SIGSTOP)
        assert call(_within, store, 0.5, store.ping) < 0.5 + 1.5   # (a busy machine)
        assert call(store.ping) < 2 + 3    # a new connection, connect_timeout
    finally:
        for p in frozen:
            with contextlib.suppress(ProcessLookupError):
                os.kill(p, signal.SIGCONT)
    assert [type(e) for e in got] == [StoreTimeout, StoreTimeout], got
    assert "did not answer within 0.5s" in str(got[0]) and "did not answer within 2s" in str(got[1]), got
    store.ping()
    store.close()


def _catch(fn: Any, *args: Any) -> BaseException | None:
    try:
        fn(*args)
    except BaseException as e:  # noqa: BLE001 - the test looks at it
        return e
    return None
