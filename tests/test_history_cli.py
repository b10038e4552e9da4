"""The run history from a terminal, against a real ``triggerc serve`` (SQLite journal).

``triggerc logs RUN_ID [-f]`` prints a run's whole log as its action wrote it (what the
dashboard's "download" gives), and follows a running run to its end. ``runs``, ``events``
and ``groups`` print values that come from senders (inputs, correlation keys): a control
character among them must not reach the terminal as it is, where a newline forges a row
and an escape sequence rewrites what the user sees.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from runtime_helpers import DEADLINE, Server, cli, done, post, stop_ok
from store_harness import Backend, StoreServer

RULES = r"""
action talk = shell "echo out-1; echo err-1 >&2; printf 'bin \\377\\376 \\033[31mred\\033[0m\\n'; echo out-2"
action flood = shell "i=0; while [ $i -lt 20000 ]; do echo line-$i-xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx; i=$((i+1)); done"
action tick = shell "for i in 1 2 3 4 5 6; do echo tick $i; echo warn $i >&2; sleep 0.3; done"
action hold = shell "sleep 30"
action say(msg) = exec "true"
action ok = exec "true"
talk: on http.post path="/talk" run talk
flood: on http.post path="/flood" run flood
tick: on http.post path="/tick" run tick
hold: on http.post path="/hold" run hold busy queue
say: on http.post path="/say" run say with <payload.msg>
gate: on all(http.post path="/a" as a, http.post path="/b" as b) same <payload.k> within 1h run ok
"""


@pytest.fixture
def serve(tmp_path: Path):
    rules = tmp_path / "rules.trg"
    rules.write_text(RULES)
    s = Server(rules, tmp_path / "state", "--grace", "0.5").start()  # a run left holding is interrupted
    try:
        yield s
    finally:
        s.ensure_dead()


def logs(s: Server, *args: str) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run([sys.executable, "-m", "triggerlang.cli", "logs", *args, "--state", str(s.state)],
                          capture_output=True, timeout=60)


def test_logs_prints_the_whole_log_as_the_action_wrote_it(serve: Server) -> None:
    s = serve
    talk = post(s, "/talk", {}).json()["runs"][0]
    flood = post(s, "/flood", {}).json()["runs"][0]
    s.wait_runs(lambda rs: done(rs, 2), "both runs")
    r = logs(s, str(talk))
    assert r.returncode == 0, r.stderr
    lines = r.stdout.split(b"\n")
    assert lines[0].startswith(b"# run %d rule talk action talk attempt 1: shell " % talk)
    # bytes that are not UTF-8 and terminal escapes as written; stdout in order, and stderr
    # (copied through a pipe: it may land a line later than written, README)
    assert [ln for ln in lines[1:5] if ln != b"err-1"] == [b"out-1", b"bin \xff\xfe \x1b[31mred\x1b[0m", b"out-2"]
    assert b"err-1" in lines[1:5]
    assert lines[5].startswith(b"# run %d succeeded (exit code 0)" % talk) and lines[6:] == [b""]
    assert b"\x01" not in r.stdout and b"\x02" not in r.stdout  # the stream markers are the readers' business
    # the whole log, not the dashboard's last 256 KiB
    r = logs(s, str(flood))
    assert r.returncode == 0, r.stderr
    out = r.stdout.split(b"\n")
    assert len(r.stdout) > 1_000_000
    assert out[1] == b"line-0-" + b"x" * 46 and out[20000] == b"line-19999-" + b"x" * 46
    assert out[20001].startswith(b"# run %d succeeded" % flood)
    stop_ok(s)


def test_logs_follows_a_running_run_to_its_end(serve: Server) -> None:
    s = serve
    tick = post(s, "/tick", {}).json()["runs"][0]
    s.wait_runs(lambda rs: any(r["id"] == tick and r["status"] == "running" for r in rs), "the run to start")
    r = logs(s, str(tick), "-f")  # returns by itself when the run ends
    assert r.returncode == 0, r.stderr
    text = r.stdout.decode()
    assert [ln for ln in text.splitlines() if ln.startswith(("tick", "warn"))] == [
        f"{w} {i}" for i in range(1, 7) for w in ("tick", "warn")]
    assert text.splitlines()[-1].startswith(f"# run {tick} succeeded")
    stop_ok(s)


def test_logs_of_no_run_and_of_a_run_with_no_output_yet(serve: Server) -> None:
    s = serve
    r = logs(s, "999")
    assert (r.returncode, r.stdout) == (1, b"") and b"there is no run 999" in r.stderr
    first = post(s, "/hold", {}).json()["runs"][0]
    second = post(s, "/hold", {}).json()["runs"][0]  # busy queue: waits behind the first
    s.wait_runs(lambda rs: any(r["id"] == first and r["status"] == "running" for r in rs), "the first to run")
    r = logs(s, str(second))
    assert (r.returncode, r.stdout) == (0, b""), r.stderr
    assert r.stderr.decode().strip() == f"run {second} has no log: it is queued, no output yet (-f waits for it)"
    r = logs(s, str(first))
    assert r.returncode == 0 and r.stdout.startswith(b"# run %d rule hold" % first)
    assert cli("logs", "0", "--state", str(s.state)).returncode == 2
    assert cli("logs", "1", "--state", str(s.state.parent / "nowhere")).returncode == 2
    stop_ok(s)


HOSTILE = "a\x1b[2J\x1b]0;pwned\x07\n99  say  say  succeeded  0  forged\u202e"


def test_runs_events_and_groups_do_not_pass_control_characters_to_the_terminal(serve: Server) -> None:
    """Before: `triggerc runs` printed an input as it came: the newline forged a second
    row, the escapes cleared the screen and retitled the window (on a terminal, where
    nothing strips them)."""
    s = serve
    assert post(s, "/say", {"msg": HOSTILE}).status_code == 202
    assert post(s, "/a", {"k": HOSTILE}).status_code == 202
    s.wait_runs(lambda rs: done(rs, 1), "the run")
    for args in (["runs"], ["events"], ["groups"], ["runs", "--format", "text", "--limit", "5"]):
        r = cli(*args, "--state", str(s.state), "--color", "always") if args[0] != "groups" else \
            cli(*args, "--state", str(s.state))
        assert r.returncode == 0, r.stderr
        rows = r.stdout.splitlines()
        assert len(rows) == (3 if args[0] == "events" else 2), (args, r.stdout)  # the header and the rows
        shown = re.sub(r"\x1b\[3[0-9]m|\x1b\[0m", "", r.stdout)  # the status colours
        assert not any(c in shown for c in "\x1b\x07\u202e"), (args, shown)
    runs = cli("runs", "--state", str(s.state)).stdout
    assert 'msg="a\\u001b[2J\\u001b]0;pwned\\u0007\\n99  say' in runs
    groups = cli("groups", "--state", str(s.state)).stdout
    assert '"a\\u001b[2J' in groups
    # the json keeps the value itself
    assert '"msg": "a\\u001b[2J\\u001b]0;pwned\\u0007\\n99' in cli("runs", "--state", str(s.state),
                                                                   "--format", "json").stdout
    stop_ok(s)


def test_logs_follow_stops_at_ctrl_c(serve: Server) -> None:
    s = serve
    hold = post(s, "/hold", {}).json()["runs"][0]
    s.wait_runs(lambda rs: any(r["id"] == hold and r["status"] == "running" for r in rs), "the run to start")
    p = subprocess.Popen([sys.executable, "-m", "triggerlang.cli", "logs", str(hold), "-f", "--state", str(s.state)],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        first = p.stdout.readline()  # the header: it is following
        assert first.startswith(b"# run %d rule hold" % hold)
        p.send_signal(2)
        assert p.wait(DEADLINE) == 0
        assert b"Traceback" not in p.stderr.read()
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    stop_ok(s)


def test_runs_and_events_filter_as_the_dashboard_does(serve: Server) -> None:
    """Before: `runs` filtered by --rule and --status only, `events` by --source only; the
    dashboard's other filters (type, rule, matched nothing, since/until, search, an
    event's runs) had no CLI, and an empty filtered table said "no runs yet"."""
    import json

    s = serve
    a = post(s, "/say", {"msg": "alpha-7"}).json()
    post(s, "/say", {"msg": "beta"})
    lost = post(s, "/events", {"source": "http", "type": "put", "data": {"path": "/nowhere"}}).json()
    s.wait_runs(lambda rs: done(rs, 2), "two runs")

    def ids(*args: str) -> list:
        r = cli(*args, "--state", str(s.state), "--format", "json")
        assert r.returncode == 0, r.stderr
        return [x["id"] for x in json.loads(r.stdout)]

    assert ids("events", "--unmatched") == [lost["event_id"]]
    assert ids("events", "--type", "put") == [lost["event_id"]]
    assert len(ids("events", "--rule", "say")) == 2 and lost["event_id"] not in ids("events", "--rule", "say")
    assert ids("events", "--search", "alpha-7") == [a["event_id"]]
    assert ids("runs", "--search", "alpha") == a["runs"]
    assert ids("runs", "--event", a["event_id"]) == a["runs"]
    assert len(ids("runs", "--since", "1h")) == 2 and ids("runs", "--until", "1h") == []
    assert len(ids("events", "--since", "2000-01-01 00:00")) == 3
    r = cli("runs", "--state", str(s.state), "--rule", "talk")
    assert (r.returncode, r.stdout) == (0, "no runs match\n")
    r = cli("events", "--state", str(s.state), "--since", "yesterday")
    assert r.returncode == 2 and "--since: 'yesterday' is not a time" in r.stderr
    stop_ok(s)


def test_store_prune_keeps_a_sqlite_journal_to_a_retention_period(serve: Server) -> None:
    """Before: `store prune` needed a PostgreSQL store, so a serve on its SQLite journal
    kept every event, run and log file for ever. Now it prunes the journal of --state,
    beside the running serve, and keeps what is still needed."""
    import json

    s = serve
    done_run = post(s, "/talk", {}).json()
    lost = post(s, "/events", {"source": "http", "type": "put", "data": {"path": "/nowhere"}}).json()
    member = post(s, "/a", {"k": "g1"}).json()  # opens a correlation group: its event is needed
    held = post(s, "/hold", {}).json()
    s.wait_runs(lambda rs: done([r for r in rs if r["id"] != held["runs"][0]], 1)
                and any(r["id"] == held["runs"][0] and r["status"] == "running" for r in rs), "one done, one going")
    logs_dir = s.state / "logs"
    assert (logs_dir / f"{done_run['runs'][0]}.log").exists()
    r = cli("store", "prune", "--older-than", "0s", "--state", str(s.state))
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "pruned 1 run(s), 2 event(s), 0 closed correlation group(s)"
    assert [x["id"] for x in s.runs()] == held["runs"]  # the running run stays, with its log
    assert not (logs_dir / f"{done_run['runs'][0]}.log").exists()
    assert (logs_dir / f"{held['runs'][0]}.log").exists()
    kept = {e["id"] for e in s.events()}
    assert kept == {held["event_id"], member["event_id"]}, kept
    assert lost["event_id"] not in kept and done_run["event_id"] not in kept
    # serve goes on: the group it holds still fires, and a new run gets a new id
    fired = post(s, "/b", {"k": "g1"}).json()
    runs = s.wait_runs(lambda rs: any(x["rule"] == "gate" and x["status"] == "succeeded" for x in rs), "the fire")
    assert min(x["id"] for x in runs if x["rule"] == "gate") > held["runs"][0]
    groups = json.loads(cli("groups", "--state", str(s.state), "--format", "json").stdout)
    assert [(g["state"], [m["event_id"] for m in g["members"]]) for g in groups] == [
        ("fired", [member["event_id"], fired["event_id"]])]
    r = cli("store", "prune", "--older-than", "soon", "--state", str(s.state))
    assert r.returncode == 2 and "not a duration" in r.stderr
    stop_ok(s)


@pytest.fixture(params=["sqlite", "postgresql"])
def backend(request) -> Backend:
    if request.param == "sqlite":
        return Backend("sqlite")
    return Backend("postgresql", request.getfixturevalue("pg_url"))


def test_logs_reads_either_store_and_follows_to_the_end(tmp_path: Path, backend: Backend) -> None:
    rules = tmp_path / "rules.trg"
    rules.write_text(RULES)
    s = StoreServer(backend, rules, tmp_path / "state", "--grace", "0.5").start()
    try:
        where = ["--store", backend.url] if backend.url else ["--state", str(s.state)]
        talk = post(s, "/talk", {}).json()["runs"][0]
        s.wait_runs(lambda rs: done(rs, 1), "the run")
        r = subprocess.run([sys.executable, "-m", "triggerlang.cli", "logs", str(talk), *where],
                           capture_output=True, timeout=60)
        assert r.returncode == 0, r.stderr
        lines = r.stdout.split(b"\n")
        assert sorted(lines[1:5]) == sorted([b"out-1", b"err-1", b"bin \xff\xfe \x1b[31mred\x1b[0m", b"out-2"])
        assert lines[5].startswith(b"# run %d succeeded" % talk)
        tick = post(s, "/tick", {}).json()["runs"][0]
        r = subprocess.run([sys.executable, "-m", "triggerlang.cli", "logs", str(tick), "-f", *where],
                           capture_output=True, timeout=60)
        assert r.returncode == 0, r.stderr
        text = r.stdout.decode()
        assert sum(ln.startswith("tick ") for ln in text.splitlines()) == 6
        assert text.splitlines()[-1].startswith(f"# run {tick} succeeded")
        stop_ok(s)
    finally:
        s.ensure_dead()


def test_groups_explain_names_the_group_a_reload_discarded(serve: Server) -> None:
    """Before: after a reload that changed the rule (its groups discarded), the event that
    had opened the discarded group was described, for the new group of its key, as
    "arrived before the group opened"; it now says which group it was in and what became
    of it."""
    import json

    s = serve
    first = post(s, "/a", {"k": "r1"}).json()  # opens a group (committed before the 202)
    s.rules.write_text(RULES.replace("within 1h run ok", "within 90m run ok"))
    s.wait_log("reloaded ")
    post(s, "/b", {"k": "r1"})                    # opens the new group: a is missing
    groups = json.loads(cli("groups", "--state", str(s.state), "--format", "json").stdout)
    new, old = groups
    assert (new["state"], new["missing"], old["state"], old["reason"]) == ("open", ["a"], "discarded", "rule changed")
    r = cli("groups", "--state", str(s.state), "--status", "open", "--explain")
    assert r.returncode == 0, r.stderr
    assert f"    {first['event_id']} " in r.stdout
    line = next(x for x in r.stdout.splitlines() if x.startswith(f"    {first['event_id']} "))
    assert line.endswith(f": belonged to group {old['id']}, which the reload of {old['closed_at']} discarded "
                         "(rule changed)"), r.stdout
    stop_ok(s)
