"""Correlation triggers in ``triggerc serve`` (SPEC §11.3 points 7-9): real server
processes, signed GitHub deliveries, ``kill -9``, a stop across an absence deadline, the
open-group limit; the journal read from outside with sqlite3, ``triggerc groups``.
"""

from __future__ import annotations

import json
import sqlite3
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest

from runtime_helpers import DEADLINE, cli, done, wait_for
from triggerlang.correlation.clock import iso
from triggerlang.runtime.journal import Journal
from test_runtime import FIXTURES, GH_SECRET, by_rule, github_headers, stop_ok  # the serve fixture: conftest.py

needs_fixtures = pytest.mark.skipif(not FIXTURES.is_dir(), reason="shared webhook fixtures not present")

RECORD = '''#!/bin/sh
# writes what the run got: argv, the group id, the stdin JSON
{ echo "args: $*"; echo "group: $TRG_GROUP_ID"; echo "event: $TRG_EVENT_SOURCE.$TRG_EVENT_TYPE"; cat; echo; } \\
    > "out-$TRG_RUN_ID.txt"
'''


def applied(state: Path) -> None:
    """Apply the correlation log to the rows, as every reader does (runtime/correlate.py)."""
    j = Journal(state)
    try:
        j.materialize_groups()
    finally:
        j.close()


def groups(state: Path, where: str = "1") -> list[dict[str, Any]]:
    db = state / "journal.sqlite3"
    if not db.exists():
        return []
    applied(state)
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=10)
    conn.row_factory = sqlite3.Row
    try:
        return [dict(r) for r in conn.execute(f"SELECT * FROM corr_groups WHERE {where} ORDER BY seq")]
    except sqlite3.OperationalError:   # not created yet
        return []
    finally:
        conn.close()


def history(state: Path) -> list[dict[str, Any]]:
    applied(state)
    conn = sqlite3.connect(f"file:{state / 'journal.sqlite3'}?mode=ro", uri=True, timeout=10)
    conn.row_factory = sqlite3.Row
    try:
        return [dict(r) for r in conn.execute("SELECT * FROM corr_history ORDER BY id")]
    finally:
        conn.close()


def project(tmp_path: Path, rules: str) -> Path:
    proj = tmp_path / "proj"
    proj.mkdir(parents=True, exist_ok=True)
    (proj / "record.sh").write_text(RECORD)
    (proj / "record.sh").chmod(0o755)
    (proj / "rules.trg").write_text(rules)
    return proj


def output(proj: Path, run_id: int) -> str:
    return wait_for(lambda: (proj / f"out-{run_id}.txt").exists() and (proj / f"out-{run_id}.txt").read_text(),
                    f"the output of run {run_id}")


# --------------------------------------------------------------------------- fan-in over GitHub

FAN_IN = '''\
secret gh = env "TRG_TEST_GH_SECRET"
source github secret=gh
action deploy(sha, url) = exec "./record.sh" sha url
gate: on all(
        github.workflow_run workflow="build" conclusion="success" as build,
        github.workflow_run workflow="test" conclusion="success" as test,
    ) same <sha> within 1h
    run deploy with <sha>, <test.url>
'''


def workflow_run(name: str, sha: str) -> bytes:
    body = json.loads((FIXTURES / "github" / "workflow_run-completed.json").read_text())
    body["workflow_run"]["name"] = name
    body["workflow_run"]["head_sha"] = sha
    body["workflow_run"]["conclusion"] = "success"
    body["workflow_run"]["html_url"] = f"https://github.example/runs/{name}"
    return json.dumps(body).encode()


def deliver(server, name: str, sha: str, delivery: str | None = None) -> httpx.Response:
    body = workflow_run(name, sha)
    return httpx.post(server.url + "/github", content=body, timeout=DEADLINE,
                      headers=github_headers("workflow_run", body, delivery=delivery))


@needs_fixtures
def test_fan_in_over_signed_github_deliveries(tmp_path: Path, serve) -> None:  # noqa: F811
    project(tmp_path, FAN_IN)
    s = serve(None, env={"TRG_TEST_GH_SECRET": GH_SECRET})
    sha = "4f9b7c2a0d1e3f5a6b7c8d9e0f1a2b3c4d5e6f70"
    first = deliver(s, "build", sha, delivery="d-build")
    assert first.status_code == 202 and first.json()["runs"] == []
    (g,) = groups(s.state)        # journaled before the 202: the admission is durable
    assert (g["rule"], g["state"], json.loads(g["key"]), g["closed_at"]) == ("gate", "open", [f'"{sha}"'], None)
    again = deliver(s, "build", sha, delivery="d-build")        # a redelivery admits nothing twice
    assert again.status_code == 200 and again.json()["duplicate"] is True
    other = deliver(s, "test", "0" * 40)                           # another commit: another group
    assert other.status_code == 202 and other.json()["runs"] == []
    second = deliver(s, "test", sha)
    assert second.status_code == 202
    (run_id,) = second.json()["runs"]      # the fire's run, committed with the event
    runs = s.wait_runs(lambda rs: done(by_rule(rs, "gate"), 1), "the gate's run")
    (run,) = by_rule(runs, "gate")
    assert run["id"] == run_id and run["status"] == "succeeded"
    assert run["inputs"] == {"sha": sha, "url": "https://github.example/runs/test"}
    text = output(s.rules.parent, run_id)
    assert f"args: {sha} https://github.example/runs/test" in text and "event: correlation.fired" in text
    g = groups(s.state, "state = 'fired'")[0]
    assert f"group: {g['id']}" in text and g["run_id"] == run_id
    stdin = json.loads(text.split("\n", 3)[3])
    corr = stdin["correlation"]
    assert (corr["rule"], corr["group"], corr["values"]) == ("gate", g["id"], [sha])
    assert corr["members"]["build"]["data"]["workflow"] == "build" and corr["members"]["test"]["data"]["sha"] == sha
    fired = [e for e in s.events() if e["source"] == "correlation"]
    assert [(e["type"], e["id"]) for e in fired] == [("fired", run["event_id"])]
    assert fired[0]["data"]["members"] == ["build", "test"]
    # the groups command reads it all back
    r = cli("groups", "--state", str(s.state), "--format", "json")
    assert r.returncode == 0, r.stderr
    shown = {x["id"]: x for x in json.loads(r.stdout)}
    assert shown[g["id"]]["state"] == "fired" and shown[g["id"]]["run_id"] == run_id
    assert [x["state"] for x in shown.values()].count("open") == 1
    stop_ok(s)


# --------------------------------------------------------------------------- kill -9

GATE = '''\
action deploy(sha) = exec "./record.sh" sha
gate: on all(http.post path="/hooks/build" as build, http.post path="/hooks/test" as test) same <query.sha>
    within 1h run deploy with <query.sha>
'''


def test_kill_9_between_two_members_keeps_the_group_and_runs_once(tmp_path: Path, serve) -> None:  # noqa: F811
    project(tmp_path, GATE)
    s = serve(None)
    assert httpx.post(s.url + "/hooks/build?sha=abc", timeout=DEADLINE).status_code == 202
    s.kill9()
    conn = sqlite3.connect(f"file:{s.state / 'journal.sqlite3'}?mode=ro", uri=True, timeout=10)
    try:   # the admission is durable: an entry of the correlation log (or its rows, if serve applied it)
        entries = [json.loads(e) for (e,) in conn.execute("SELECT entry FROM corr_log")]
        rows = conn.execute("SELECT id, state FROM corr_groups").fetchall()
    finally:
        conn.close()
    if entries:
        ((gid, rule, *_),) = entries[0]["g"]
        assert len(entries) == 1 and rule == "gate" and [h[3] for h in entries[0]["h"]] == ["open"]
    else:   # (only if the machine held this test back for MATERIALIZE_DELAY)
        ((gid, state),) = rows
        assert state == "open"
    s.start()                                                    # (applies the log before loading the groups)
    r = httpx.post(s.url + "/hooks/test?sha=abc", timeout=DEADLINE)
    assert r.status_code == 202 and len(r.json()["runs"]) == 1
    runs = s.wait_runs(lambda rs: done(rs, 1), "the gate's run")
    assert [(x["rule"], x["inputs"], x["status"]) for x in runs] == [("gate", {"sha": "abc"}, "succeeded")]
    (g2,) = groups(s.state)
    assert (g2["id"], g2["state"]) == (gid, "fired")             # the same group, after the restart
    assert httpx.post(s.url + "/hooks/test?sha=abc", timeout=DEADLINE).json()["runs"] == []   # consumed: a new group
    assert len(s.runs()) == 1
    stop_ok(s)


# --------------------------------------------------------------------------- absence across a stop

SILENT = '''\
action page(host, unobserved, late) = exec "./record.sh" host unobserved late
silent: on absent(http.post path="/hooks/heartbeat" as hb) same <query.host> for 4s
    run page with <query.host>, <group.unobserved>, <group.late>
'''


def test_an_absence_deadline_that_passes_while_serve_is_stopped_fires_at_start(tmp_path: Path, serve) -> None:  # noqa: F811
    project(tmp_path, SILENT)
    s = serve(None)
    t0 = time.time()
    assert httpx.post(s.url + "/hooks/heartbeat?host=web1", timeout=DEADLINE).status_code == 202
    stop_ok(s)                       # stopped 1-2 s into the 4 s quiet period
    stopped = time.time()
    wait_for(lambda: time.time() > t0 + 6, "the deadline to pass while serve is stopped", timeout=10)
    assert s.runs() == []
    s.start()
    runs = s.wait_runs(lambda rs: done(rs, 1), "the late absence run")
    (run,) = runs
    host, unobserved, late = run["inputs"]["host"], run["inputs"]["unobserved"], run["inputs"]["late"]
    assert host == "web1"
    assert 0 < unobserved <= 4.0 and unobserved >= t0 + 4 - stopped - 0.5      # the part serve did not see
    assert late >= 1.5                                                        # processed at start, after the deadline
    (fired,) = [e for e in s.events() if e["source"] == "correlation"]
    (g,) = groups(s.state)
    assert fired["time"] == iso(g["deadline"])                              # the run's event time: the deadline
    assert fired["data"]["unobserved"] == unobserved and g["state"] == "fired" and round(g["late"], 3) == late
    log = s.log()
    assert "past deadlines processed" in log and log.index("past deadlines processed") < log.index("INFO serving")
    stop_ok(s)


# --------------------------------------------------------------------------- the open-group limit

LIMITED = '''\
action note(k) = exec "./record.sh" k
pairs: on all(http.post path="/hooks/a" as a, http.post path="/hooks/b" as b) same <query.k> within 1h
    run note with <query.k>
every_a: on http.post path="/hooks/a" run note with <query.k>
'''


def test_the_open_group_limit_refuses_journals_and_ordinary_rules_still_match(tmp_path: Path, serve) -> None:  # noqa: F811
    project(tmp_path, LIMITED)
    s = serve(None, "--max-open-groups", "2")
    for k in ("1", "2", "3", "4"):
        assert httpx.post(s.url + f"/hooks/a?k={k}", timeout=DEADLINE).status_code == 202
    runs = s.wait_runs(lambda rs: done(rs, 4), "the ordinary rule's runs")
    assert sorted(r["inputs"]["k"] for r in by_rule(runs, "every_a")) == ["1", "2", "3", "4"]
    assert len(groups(s.state)) == 2
    refusals = [h for h in history(s.state) if h["action"] == "refuse"]
    assert [(h["rule"], h["group_id"], h["member"]) for h in refusals] == [("pairs", None, "a")] * 2
    assert "refused: 2 open groups in all (--max-open-groups)" in refusals[0]["note"]
    log = s.wait_log("correlation rule pairs: refused")
    assert log.count("correlation rule pairs: refused") == 1          # at most once a minute
    # existing groups keep admitting
    r = httpx.post(s.url + "/hooks/b?k=1", timeout=DEADLINE)
    assert len(r.json()["runs"]) == 1
    r = cli("groups", "--state", str(s.state))
    assert "refused openings (max open groups reached): pairs 2" in r.stderr
    stop_ok(s)
