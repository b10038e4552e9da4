"""One conformance suite of policies and recovery, run against both stores (SPEC §12.5).

Every test starts a real ``triggerc serve`` on the store of its parameter: ``sqlite`` (the
default journal in ``--state``) or ``postgresql`` (a database of the session's throwaway
server, ``--store URL``, the embedded worker, short leases), drives it over HTTP and
checks the runs the store holds. The same assertions hold on both: that is the promise
of SPEC §12.5 ("everything §9 promises holds in store mode").
"""

from __future__ import annotations

import hashlib
import hmac
import json
import signal
import sys
import time
import threading
from pathlib import Path

import httpx
import pytest

from runtime_helpers import DEADLINE, alive, by_rule, done, pid_in, post, post_bytes, stop_ok, wait_for
from store_harness import Backend, StoreServer


@pytest.fixture(params=["sqlite", "postgresql"])
def backend(request) -> Backend:
    if request.param == "sqlite":
        return Backend("sqlite")
    return Backend("postgresql", request.getfixturevalue("pg_url"))


@pytest.fixture
def serve(tmp_path: Path, backend: Backend):
    started: list[StoreServer] = []

    def make(rules: str | None, *args: str, start: bool = True, env: dict[str, str] | None = None) -> StoreServer:
        folder = tmp_path / "proj"
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / "rules.trg"
        if rules is not None:
            path.write_text(rules)
        s = StoreServer(backend, path, tmp_path / "state", *args, env=env, log=tmp_path / "serve.log")
        started.append(s)
        return s.start() if start else s

    yield make
    for s in started:
        s.ensure_dead()


def metrics(s: StoreServer) -> dict:
    """``/metrics`` of a server without a token (loopback): {(name, sorted labels): value}."""
    from prometheus_client.parser import text_string_to_metric_families

    r = httpx.get(s.url + "/metrics", timeout=DEADLINE)
    assert r.status_code == 200, r.text
    return {(x.name, tuple(sorted(x.labels.items()))): x.value for fam in text_string_to_metric_families(r.text)
            for x in fam.samples}


def runs_counted(s: StoreServer, rule: str, status: str) -> float:
    return metrics(s)[("triggerlang_runs_total", (("rule", rule), ("status", status)))]


POLICY_RULES = r"""
action nap(n, s) = shell "sleep \"$TRG_INPUT_S\""
action rec(n) = exec "true"
action paths(files) = exec "true" files
action naps(files) = exec "sleep" "1.5"
q: on http.post path="/queue" run nap with <payload.n>, <payload.s> busy queue
sk: on http.post path="/skip" run nap with <payload.n>, <payload.s> busy skip
rs: on http.post path="/restart" run nap with <payload.n>, <payload.s> busy restart
par: on http.post path="/parallel" run nap with <payload.n>, <payload.s> busy parallel
dd: on http.post path="/dedupe" run rec with <payload.k> dedupe <payload.k> for 1h
db: on file.changed path ~ "src/**" run paths with <paths> debounce 600ms
dsk: on file.changed path ~ "lib/**" run naps with <paths> debounce 100ms busy skip
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
    # counted as serve's engine counts it (before: an ingest node counted only loop protection's skips)
    assert runs_counted(s, "sk", "skipped") == 1
    stop_ok(s)


def test_skip_drops_the_changes_made_while_a_debounced_run_goes(serve) -> None:
    # watchexec's --on-busy-update do-nothing: a file rule has a debounce (100ms by
    # default), and the changes made while its run went opened a new window and ran
    # after it, as busy queue does; they are recorded skipped.
    s = serve(POLICY_RULES, "--http")

    def change(path: str) -> list[int]:
        r = post(s, "/events", {"source": "file", "type": "modified", "data": {"path": path}})
        assert r.status_code == 202, r.text
        return r.json()["runs"]

    (first,) = change("lib/a.py")
    s.wait_runs(lambda rs: any(r["id"] == first and r["status"] == "running" for r in rs), "the first run to go")
    later = change("lib/b.py") + change("lib/c.py")
    runs = s.wait_runs(lambda rs: done(rs, 3), "the run and the two skipped")
    status = {r["id"]: r for r in runs}
    assert status[first]["status"] == "succeeded" and len(runs) == 3, runs
    assert all(status[i]["status"] == "skipped" and "busy skip" in status[i]["error"] for i in later), runs
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
    pid = pid_in(tmp_path / "proj" / "grandchild.pid")
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


NUL_SHOW = """import json, os, sys
msg = json.loads(sys.stdin.readline())["data"]["message"]
with open(sys.argv[1], "w") as f:
    json.dump({"stdin": msg, "env": os.environ["TRG_INPUT_MSG"], "argv": sys.argv[2:]}, f)
sys.stdout.buffer.write(msg.encode() + b"\\n")
"""


def test_a_payload_string_with_a_nul_byte_is_journaled_and_run_as_sent(tmp_path: Path, serve,
                                                                       backend: Backend) -> None:
    """JSON's \\u0000 in a real GitHub push (the commit message): 202, journaled, matched, and
    the run starts; its stdin has the NUL, its argument and TRG_INPUT_MSG the value without
    it (neither can hold one; the log's first line says so), and its output, NUL and all, is
    in its log (on PostgreSQL, the store's copy)."""
    fixtures = Path(__file__).resolve().parents[2] / "shared" / "fixtures" / "webhooks" / "github"
    payload = json.loads((fixtures / "push-plain.json").read_text())
    payload["head_commit"]["message"] = "fix\u0000bin"
    body = json.dumps(payload).encode()
    assert b"fix\\u0000bin" in body
    (tmp_path / "show.py").write_text(NUL_SHOW)
    out = tmp_path / "seen.json"
    s = serve(f"""secret gh = env "GH_SECRET"
source github secret=gh
action show(msg) = exec "{sys.executable}" "{tmp_path / 'show.py'}" "{out}" msg
pushed: on github.push branch="master" run show with <message>
""", "--http", env={"GH_SECRET": "nul-secret"})
    sig = "sha256=" + hmac.new(b"nul-secret", body, hashlib.sha256).hexdigest()
    status, answer = post_bytes(s.url + "/github", body, {"X-GitHub-Event": "push", "X-GitHub-Delivery": "nul-1",
                                                         "X-Hub-Signature-256": sig})
    assert status == 202 and answer["runs"] == [1], (status, answer)
    runs = s.wait_runs(lambda rs: done(rs, 1), "the run")
    assert runs[0]["status"] == "succeeded", (runs, s.tail())
    assert runs[0]["inputs"] == {"msg": "fix\u0000bin"}
    assert s.events()[0]["data"]["message"] == "fix\u0000bin"
    assert json.loads(out.read_text()) == {"stdin": "fix\u0000bin", "env": "fixbin", "argv": ["fixbin"]}
    if backend.kind == "postgresql":
        log = wait_for(lambda: (backend._rows("SELECT body FROM trg_logs WHERE run_id = 1") or [{}])[0].get("body"),
                       "the log's copy in the store")
    else:
        log = wait_for(lambda: next((tmp_path / "state").rglob("1.log"), None), "the run's log").read_bytes()
    assert b"fix\x00bin\n" in bytes(log), log
    assert b"exec " in bytes(log) and b"(NUL bytes dropped from TRG_INPUT_MSG; stdin has them)" in bytes(log), log
    stop_ok(s)


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
    # counted by the start that found them, or the reaper that took them (before: not in store mode)
    assert (runs_counted(s2, "retried", "interrupted"), runs_counted(s2, "plain", "interrupted")) == (1, 1)
    stop_ok(s2)


# --------------------------------------------------------------------------- the operator's day (issue 14)

TOKEN = "conformance-dashboard-token"


def api(s: StoreServer, method: str, path: str, token: str | None = TOKEN, **kw) -> httpx.Response:
    headers = {"Authorization": f"Bearer {token}", "X-Triggerlang-Actor": "tester@box"} if token else {}
    return httpx.request(method, s.url + path, headers=headers, timeout=DEADLINE, **kw)


def test_a_run_chain_stops_at_the_max_chain_depth(serve) -> None:
    s = serve("""
action ok = exec "true"
start: on http.post path="/go" run ok
again: on run.completed run ok
""", "--max-chain-depth", "3")
    post(s, "/go", {})
    runs = s.wait_runs(lambda rs: len(rs) >= 5 and done(rs, 5), "the chain and the skipped run")
    assert [r["rule"] for r in runs] == ["start", "again", "again", "again", "again"]
    assert [r["status"] for r in runs] == ["succeeded"] * 4 + ["skipped"]
    assert "the event is 4 runs deep in a chain, over --max-chain-depth 3" in runs[-1]["error"]
    events = s.events()
    assert [e["depth"] for e in events] == [0, 1, 2, 3, 4]  # the webhook, then each run.completed
    s.wait_log("over --max-chain-depth 3: journaled, no run started")
    # /metrics counts the run.completed events and the run they skipped, on both stores
    # (before: store mode's worker, which journals them, counted neither)
    m = wait_for(lambda: (lambda m: m if m.get(("triggerlang_chain_depth_exceeded_total", ())) else None)(metrics(s)),
                 "the too-deep run.completed counted")
    assert m[("triggerlang_events_total", (("source", "run"), ("type", "completed")))] == 4
    assert m[("triggerlang_runs_total", (("rule", "again"), ("status", "skipped")))] == 1
    assert m[("triggerlang_chain_depth_exceeded_total", ())] == 1
    stop_ok(s)
    assert len(s.runs()) == 5  # nothing ran after the limit


def test_a_file_rule_that_retriggers_itself_is_paused_then_resumed(tmp_path: Path, serve) -> None:
    s = serve(r"""
action touch = shell "echo x >> out/made-by-run.txt"
loop: on file.changed path ~ "out/**" run touch debounce 50ms
""", "--max-retriggers", "3", "--dashboard", "--token", TOKEN)
    out = s.rules.parent / "out"
    out.mkdir(exist_ok=True)
    (out / "seed.txt").write_text("go\n")
    runs = s.wait_runs(lambda rs: any(r["status"] == "skipped" for r in rs), "the rule to be paused", timeout=30)
    s.wait_log("rule loop paused")
    succeeded = [r for r in runs if r["status"] == "succeeded"]
    assert len(succeeded) == 3, runs  # three runs in a row re-triggered it: paused before a fourth
    skipped = [r for r in runs if r["status"] == "skipped"]
    assert all("rule loop is paused: its own runs kept re-triggering it" in r["error"] for r in skipped), skipped
    assert "loop" in api(s, "GET", "/api/sources").json()["rules"][0]["name"]
    reason = api(s, "GET", "/api/sources").json()["rules"][0]["paused"]["reason"]
    # how to un-pause it, with what `triggerc resume` needs (without a token it cannot)
    assert reason.startswith("its own runs") and "`triggerc resume loop` (to a serve --dashboard --token T)" in reason
    time.sleep(1.5)  # the watcher reports nothing more: the loop is stopped
    n = len(s.runs())
    assert all(r["status"] in ("succeeded", "skipped", "cancelled") for r in s.runs())
    r = api(s, "POST", "/api/rules/loop/resume")
    assert r.status_code == 200 and r.json() == {"rule": "loop", "resumed": True}, r.text
    (out / "seed.txt").write_text("again\n")
    s.wait_runs(lambda rs: len(rs) > n and any(x["status"] == "succeeded" and x["id"] > n for x in rs),
                "a run after the resume", timeout=30)
    assert api(s, "POST", "/api/rules/nope/resume").status_code == 404
    stop_ok(s)


def test_rerun_and_cancel_through_the_api(serve) -> None:
    s = serve(r"""
action nap(s) = shell "sleep \"$TRG_INPUT_S\"; echo slept"
q: on http.post path="/q" run nap with <payload.s> busy queue
""", "--dashboard", "--token", TOKEN)
    first = post(s, "/q", {"s": "0"}).json()["runs"][0]
    s.wait_runs(lambda rs: done(rs, 1), "the first run")
    # without the token, or with it in the URL instead of the header: refused, nothing written
    assert api(s, "POST", f"/api/runs/{first}/rerun", token=None).status_code == 401
    assert httpx.post(f"{s.url}/api/runs/{first}/rerun?token={TOKEN}").status_code == 403
    assert len(s.runs()) == 1
    r = api(s, "POST", f"/api/runs/{first}/rerun")
    assert r.status_code == 200, r.text
    again = r.json()["rerun"]
    runs = s.wait_runs(lambda rs: done(rs, 2), "the re-run")
    rerun = next(x for x in runs if x["id"] == again)
    assert rerun["status"] == "succeeded" and rerun["rerun_of"] == first and rerun["inputs"] == {"s": "0"}
    assert rerun["event_id"] == runs[0]["event_id"] and rerun["attempt"] == 1
    audit = api(s, "GET", f"/api/runs/{first}").json()["audit"]
    assert [(a["action"], a["new_run_id"], a["actor"]) for a in audit] == [
        ("rerun", again, "tester@box (cli) from 127.0.0.1")]

    # cancel: a running run (its process group stopped) and the queued one behind it
    slow = post(s, "/q", {"s": "60"}).json()["runs"][0]
    behind = post(s, "/q", {"s": "0"}).json()["runs"][0]
    s.wait_runs(lambda rs: any(x["id"] == slow and x["status"] == "running" for x in rs), "the slow run to start")
    assert api(s, "POST", f"/api/runs/{slow}/rerun").status_code == 409  # not ended yet
    r = api(s, "POST", f"/api/runs/{behind}/cancel")
    assert r.status_code == 200 and r.json()["status"] == "cancelled"
    r = api(s, "POST", f"/api/runs/{slow}/cancel")
    assert r.status_code == 200 and r.json()["status"] == "cancelling"
    runs = s.wait_runs(lambda rs: done(rs, 4), "both cancelled", timeout=15)
    by_id = {x["id"]: x for x in runs}
    assert by_id[slow]["status"] == "cancelled" and by_id[slow]["error"] == "cancelled by tester@box (cli) from 127.0.0.1"
    assert by_id[slow]["finished_at"] - by_id[slow]["started_at"] < 10  # SIGTERM stopped the sleep
    assert by_id[behind]["status"] == "cancelled" and by_id[behind]["started_at"] is None
    assert api(s, "POST", f"/api/runs/{slow}/cancel").status_code == 409  # already ended
    assert api(s, "POST", "/api/runs/999/cancel").status_code == 404
    assert api(s, "POST", "/api/runs/999/rerun").status_code == 404
    stop_ok(s)


def test_metrics_are_scraped_in_the_prometheus_format(serve) -> None:
    from prometheus_client.parser import text_string_to_metric_families

    s = serve(r"""
action ok = exec "true"
action bad = shell "exit 2"
good: on http.post path="/good" run ok
broken: on http.post path="/bad" run bad
""", "--dashboard", "--token", TOKEN)
    post(s, "/good", {})
    post(s, "/good", {})
    post(s, "/bad", {})
    s.wait_runs(lambda rs: done(rs, 3), "three runs")
    assert httpx.get(s.url + "/metrics").status_code == 401  # the dashboard's token, like the dashboard

    def scrape() -> dict:
        r = api(s, "GET", "/metrics")
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/plain"), r.text
        out: dict = {}
        for fam in text_string_to_metric_families(r.text):
            for sample in fam.samples:
                out[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
        return out

    def ran() -> dict | None:
        m = scrape()
        return m if m.get(("triggerlang_runs_total", (("rule", "broken"), ("status", "failed"))), 0) == 1 else None

    m = wait_for(ran, "the runs counted")
    assert m[("triggerlang_events_total", (("source", "http"), ("type", "post")))] == 3
    assert m[("triggerlang_runs_total", (("rule", "good"), ("status", "succeeded")))] == 2
    assert m[("triggerlang_run_duration_seconds_count", (("rule", "good"),))] == 2
    assert m[("triggerlang_run_queue_wait_seconds_count", (("rule", "good"),))] == 2
    assert m[("triggerlang_journal_commit_seconds_count", ())] == 3
    assert ("triggerlang_chain_depth_exceeded_total", ()) in m
    stop_ok(s)


def test_a_correlation_event_is_one_deeper_than_its_cause(serve) -> None:
    s = serve("""
action ok = exec "true"
gate: on all(http.post path="/a" as a, http.post path="/b" as b) within 1m run ok
""")
    post(s, "/a", {})
    post(s, "/b", {})
    s.wait_runs(lambda rs: done(rs, 1), "the fire's run")
    assert [(e["source"], e["depth"]) for e in s.events()] == [("http", 0), ("http", 0), ("correlation", 1)]
    # /metrics counts the correlation.fired event too (before: only the two http.post ones)
    from prometheus_client.parser import text_string_to_metric_families

    r = httpx.get(s.url + "/metrics")  # loopback, no token: allowed
    events = {tuple(sorted(x.labels.items())): x.value for fam in text_string_to_metric_families(r.text)
              for x in fam.samples if x.name == "triggerlang_events_total"}
    assert events == {(("source", "http"), ("type", "post")): 2, (("source", "correlation"), ("type", "fired")): 1}
    stop_ok(s)


def test_metrics_count_open_correlation_groups(serve) -> None:
    from prometheus_client.parser import text_string_to_metric_families

    s = serve("""
action ok = exec "true"
gate: on all(http.post path="/a" as a, http.post path="/b" as b) same <payload.k> within 1h run ok
""")
    for k in ("x", "y"):
        post(s, "/a", {"k": k})
    r = httpx.get(s.url + "/metrics")  # loopback, no token: allowed
    assert r.status_code == 200
    samples = {(x.name, tuple(sorted(x.labels.items()))): x.value
               for fam in text_string_to_metric_families(r.text) for x in fam.samples}
    assert samples[("triggerlang_correlation_open_groups", (("rule", "gate"),))] == 2
    stop_ok(s)


def test_schedule_ticks_do_not_pile_up_behind_a_slow_run(serve) -> None:
    """A scheduled action slower than its period, under the default `busy queue`: one tick
    waits behind the running run, the ones after it are recorded `skipped` (a systemd timer
    does not start a unit that is still active; cron would overlap them). Queued, they
    would grow without bound: five ticks a second behind a run of 1.5 s."""
    s = serve('action nap = shell "sleep 1.5"\ntick: on every 200ms run nap\n')
    runs = s.wait_runs(lambda rs: sum(r["status"] == "skipped" for r in rs) >= 4
                       and any(r["status"] == "succeeded" for r in rs), "ticks skipped behind a slow run")
    assert sum(r["status"] == "queued" for r in runs) <= 1, runs
    skipped = [r for r in runs if r["status"] == "skipped"]
    assert all("tick" in r["error"] and "waiting" in r["error"] for r in skipped), skipped
    ran = sorted((r for r in runs if r["started_at"] is not None), key=lambda r: r["started_at"])
    for prev, nxt in zip(ran, ran[1:]):  # still one at a time (queue)
        assert prev["finished_at"] is not None and nxt["started_at"] >= prev["finished_at"], (prev, nxt)
    stop_ok(s)



def test_a_header_value_sent_in_utf8_is_read_as_utf8_and_matched(serve, backend: Backend) -> None:
    """Before: header values were read as latin-1, so ``café`` sent in UTF-8 arrived as
    ``cafÃ©``: the rule's condition never matched, and the journal kept the mojibake. Now
    UTF-8, and bytes that are not UTF-8 are read as latin-1 (here the same ``é``), on both
    front ends' path and both stores."""
    s = serve('action rec(who) = exec "true"\n'
              'named: on http.post path="/hdr" headers.x-name="café" run rec with <headers.x-name>\n')
    answers = [httpx.post(s.url + "/hdr", json={}, headers={"X-Name": value}, timeout=DEADLINE)
               for value in ("café".encode("utf-8"), "café".encode("latin-1"), b"cafe")]
    assert [(r.status_code, len(r.json()["runs"])) for r in answers] == [(202, 1), (202, 1), (202, 0)], \
        [r.text for r in answers]
    runs = s.wait_runs(lambda rs: done(rs, 2), "the two runs")
    assert [(r["status"], r["inputs"]) for r in runs] == [("succeeded", {"who": "café"})] * 2, runs
    assert [e["data"]["headers"]["x-name"] for e in s.events()] == ["café", "café", "cafe"]
    stop_ok(s)
