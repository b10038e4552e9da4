"""``triggerc store import``: a SQLite journal's history into an empty PostgreSQL store
(SPEC §12; README "Moving from SQLite"). Real processes: a SQLite ``serve`` makes the
history from signed GitHub deliveries, the import copies it, and a ``serve --store`` on
the imported store goes on from there (ids, redeliveries, dedupe).
"""

from __future__ import annotations

import json
import os
import sqlite3
from pathlib import Path

import httpx
import pytest

from runtime_helpers import DEADLINE, Server, cli, done
from store_harness import Backend, StoreServer
from test_source_http import FIXTURES, SECRETS, github_headers

needs_fixtures = pytest.mark.skipif(not FIXTURES.is_dir(), reason="shared webhook fixtures not present")

RULES = """\
secret gh = env "GH_SECRET"
source github path="/hooks/github" secret=gh
action build(sha) = exec "sh" "-c" "echo building $1; echo slow disk >&2" "build" sha
action broken = exec "sh" "-c" "exit 3"
b: on github.push run build with <sha> dedupe <sha> for 1d
f: on github.push run broken
"""


@needs_fixtures
def test_a_journal_moves_into_postgresql_and_serve_goes_on_from_it(tmp_path: Path, pg_url: str) -> None:
    folder = tmp_path / "proj"
    folder.mkdir()
    (folder / "rules.trg").write_text(RULES)
    state = tmp_path / "state"
    env = {**os.environ, "GH_SECRET": SECRETS["gh"]}
    push = (FIXTURES / "github" / "push-plain.json").read_bytes()
    sqlite_serve = Server(folder / "rules.trg", state, env={"GH_SECRET": SECRETS["gh"]})
    sqlite_serve.start()
    try:
        url = sqlite_serve.url + "/hooks/github"
        first = httpx.post(url, content=push, headers=github_headers("push", push, delivery="d-1"), timeout=DEADLINE)
        assert first.status_code == 202
        runs = sqlite_serve.wait_runs(lambda rs: done(rs, 2), "the two runs")
        # the import refuses while serve holds the journal
        busy = cli("store", "import", str(state), "--store", pg_url, env=env)
        assert busy.returncode == 1 and "Traceback" not in busy.stderr
        assert busy.stderr.rstrip().endswith(f"is using the state directory {state}: stop it first"), busy.stderr
    finally:
        assert sqlite_serve.stop() == 0, sqlite_serve.tail()
    # a run left queued (accepted, never started): the import refuses, and writes nothing,
    # as the run would never run; --interrupt-unfinished imports it interrupted
    with sqlite3.connect(state / "journal.sqlite3") as db:
        db.execute("INSERT INTO runs (rule, action, status, inputs, event_id, queued_at) "
                   "VALUES ('b', 'build', 'queued', '{}', ?, 1.8e9)", (runs[0]["event_id"],))
    refused = cli("store", "import", str(state), "--store", pg_url, env=env)
    assert refused.returncode == 1 and "Traceback" not in refused.stderr, refused.stderr
    assert f"the journal in {state} has 1 unfinished run(s) (1 queued), accepted but not run" in refused.stderr
    assert "--interrupt-unfinished" in refused.stderr
    assert Backend("postgresql", pg_url).runs(tmp_path) == []

    r = cli("store", "import", str(state), "--store", pg_url, "--interrupt-unfinished", env=env)
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("imported 1 event(s), 3 run(s) (1 unfinished, now interrupted), 2 log(s), "
                               "1 dedupe key(s), 0 audit entries and 1 delivery record(s) into "), r.stdout
    assert SECRETS["gh"] not in r.stdout + r.stderr

    backend = Backend("postgresql", pg_url)
    pg = backend.runs(tmp_path)
    assert [(x["id"], x["rule"], x["status"], x["exit_code"]) for x in pg] == [
        (1, "b", "succeeded", 0), (2, "f", "failed", 3), (3, "b", "interrupted", None)]
    assert "imported into PostgreSQL" in pg[2]["error"] and pg[0]["inputs"] == runs[0]["inputs"]
    events = backend.events(tmp_path)
    assert [e["id"] for e in events] == [first.json()["event_id"]]
    assert events[0]["delivery_key"] == "github:d-1"
    logs = json.loads(cli("runs", "--store", pg_url, "--format", "json", env=env).stdout)
    assert {x["id"]: x["status"] for x in logs} == {1: "succeeded", 2: "failed", 3: "interrupted"}

    # a second import into the now-used store is refused, and changes nothing
    again = cli("store", "import", str(state), "--store", pg_url, "--interrupt-unfinished", env=env)
    assert again.returncode == 1 and "already holds 1 event(s) and 3 run(s)" in again.stderr
    assert len(backend.runs(tmp_path)) == 3

    pg_serve = StoreServer(backend, folder / "rules.trg", tmp_path / "state2", "--dashboard", workers=1,
                           env={"GH_SECRET": SECRETS["gh"]})
    pg_serve.start()
    try:
        url = pg_serve.url + "/hooks/github"
        lines = [(x["stream"], x["text"]) for x in httpx.get(pg_serve.url + "/api/runs/1/log").json()["lines"]]
        assert ("out", "building " + runs[0]["inputs"]["sha"]) in lines
        assert ("err", "slow disk") in lines  # the stderr marks came along
        # a redelivery of the imported delivery: already seen
        redelivered = httpx.post(url, content=push, headers=github_headers("push", push, delivery="d-1"),
                                 timeout=DEADLINE)
        assert redelivered.status_code == 200 and redelivered.json()["duplicate"] is True
        # a new delivery of the same sha: rule b's dedupe key came along (skipped), f runs as run 5
        new = httpx.post(url, content=push, headers=github_headers("push", push, delivery="d-2"), timeout=DEADLINE)
        assert new.status_code == 202
        after = pg_serve.wait_runs(lambda rs: done(rs, 5), "the new delivery's runs")
        fresh = {x["rule"]: x for x in after[3:]}
        assert fresh["b"]["status"] == "skipped" and fresh["b"]["id"] >= 4
        assert fresh["f"]["status"] == "failed" and fresh["f"]["id"] >= 4
    finally:
        assert pg_serve.stop() == 0, pg_serve.tail()


def test_import_errors_are_one_line(tmp_path: Path, pg_url: str) -> None:
    r = cli("store", "import", str(tmp_path / "nowhere"), "--store", pg_url)
    assert r.returncode == 1 and "there is no journal in" in r.stderr and "Traceback" not in r.stderr
    r = cli("store", "import", str(tmp_path), env={k: v for k, v in os.environ.items() if k != "TRIGGERLANG_STORE"})
    assert r.returncode == 2 and "--store" in r.stderr
