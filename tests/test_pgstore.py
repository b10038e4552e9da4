"""The PostgreSQL store's own promises (SPEC §12), against a real server.

Schema versions and migrations, the claim's serial lanes under concurrent claimers,
leases, the reaper and fencing, logs in the store, prune, the store CLI, the dashboard on
a store, and the store URL's password: never in a log or an error.
"""

from __future__ import annotations

import contextlib
import json
import select
import threading
import time
from pathlib import Path
from typing import Iterator

import psycopg
import pytest

from runtime_helpers import cli, wait_for
from store_harness import Backend, StoreServer, WorkerProc
from triggerlang.events import Event
from triggerlang.runtime import pgstore
from triggerlang.runtime.pgstore import LOG_CAP, SCHEMA_VERSION, PgStore
from triggerlang.runtime.store import Intent, StoreError, open_store, redact_url, scrub


def test_an_empty_database_gets_the_schema_and_readers_need_it(pg_url: str) -> None:
    with pytest.raises(StoreError, match="no triggerlang schema.*store init"):
        open_store(pg_url, create=False)
    st = open_store(pg_url)
    assert st.schema_version() == SCHEMA_VERSION
    st.close()
    open_store(pg_url, create=False).close()
    r = cli("store", "init", "--store", pg_url)
    assert r.returncode == 0 and f"schema {SCHEMA_VERSION}" in r.stdout, r.stderr


def test_a_newer_schema_is_refused_and_an_older_one_migrated_only_when_asked(pg_url: str, monkeypatch) -> None:
    PgStore(pg_url).close()
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute("INSERT INTO trg_schema (version, applied_at) VALUES (99, 0)")
    with pytest.raises(StoreError, match="newer than this triggerlang"):
        PgStore(pg_url)
    r = cli("worker", "--store", pg_url)
    assert r.returncode == 1 and "newer than this triggerlang" in r.stderr and "Traceback" not in r.stderr
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute("DELETE FROM trg_schema WHERE version = 99")
    # a triggerlang that knows one more migration
    extra = (SCHEMA_VERSION + 1, "CREATE TABLE IF NOT EXISTS trg_extra (x integer)")
    monkeypatch.setattr(pgstore, "MIGRATIONS", [*pgstore.MIGRATIONS, extra])
    monkeypatch.setattr(pgstore, "SCHEMA_VERSION", SCHEMA_VERSION + 1)
    with pytest.raises(StoreError, match="older than this triggerlang's.*store migrate"):
        PgStore(pg_url)
    st = PgStore(pg_url, migrate=True)
    assert st.schema_version() == SCHEMA_VERSION + 1
    assert st.migrate() == []  # idempotent
    st.close()


def test_every_store_command_without_a_store_says_how_to_give_one() -> None:
    import os

    env = {k: v for k, v in os.environ.items() if k != "TRIGGERLANG_STORE"}
    for argv in (["init"], ["migrate"]):
        r = cli("store", *argv, env=env)
        assert r.returncode == 2 and r.stderr.strip() == \
            "triggerc: error: give the store with --store URL or TRIGGERLANG_STORE", (argv, r.stderr)
    # prune works on a SQLite journal too (--state, default .triggerlang)
    r = cli("store", "prune", "--older-than", "1d", "--state", "/nonexistent/.triggerlang", env=env)
    assert r.returncode == 2 and r.stderr.strip() == (
        "triggerc: error: no journal in /nonexistent/.triggerlang: give the state folder with --state, or the "
        "store with --store URL or TRIGGERLANG_STORE"), r.stderr


def test_store_migrate_is_idempotent_on_the_command_line(pg_url: str) -> None:
    for _ in range(2):
        r = cli("store", "migrate", "--store", pg_url)
        assert r.returncode == 0 and f"schema {SCHEMA_VERSION}" in r.stdout, r.stderr


def test_concurrent_claimers_never_run_two_runs_of_a_serial_rule(pg_url: str) -> None:
    st = PgStore(pg_url)
    for n in range(30):
        st.ingest(Event("http", "post", {"n": n}), [Intent("q", "a", {"n": n}, busy="queue"),
                                                    Intent("p", "a", {"n": n}, busy="parallel")])
    seen: list[tuple[str, int]] = []
    errors: list[str] = []
    lock = threading.Lock()

    def claimer(name: str) -> None:
        try:
            for _ in range(200):
                rows = st.claim(name, ["default"], 3, 10)
                for r in rows:
                    with lock:
                        seen.append((r.rule, r.inputs["n"]))
                        running_q = [x for x in st.list_runs(limit=100, rule="q", status="running")]
                        if len(running_q) > 1:
                            errors.append(f"two running: {running_q}")
                    st.finish(r.id, name, "succeeded", 0, None)
                if not rows and len(seen) >= 60:
                    return
        except Exception as e:  # pragma: no cover - reported below
            errors.append(repr(e))

    threads = [threading.Thread(target=claimer, args=(f"w{i}",)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors, errors
    assert sorted(seen) == sorted([("q", n) for n in range(30)] + [("p", n) for n in range(30)])
    assert [n for rule, n in seen if rule == "q"] == list(range(30)), "the serial lane is not FIFO"
    st.close()


def test_an_expired_lease_is_reaped_retried_and_the_late_finish_is_refused(pg_url: str) -> None:
    st = PgStore(pg_url)
    st.ingest(Event("http", "post", {}), [Intent("r", "a", {}, retry=1, backoff=0.1)])
    (row,) = st.claim("w1", ["default"], 5, lease=0.3)
    assert st.heartbeat("w1", [row.id], 0.3) == (set(), set())
    time.sleep(0.5)
    (reaped,) = st.reap()
    assert (reaped.id, reaped.status, reaped.worker) == (row.id, "interrupted", "w1")
    assert "lease expired" in st.run_row(row.id).error
    assert st.heartbeat("w1", [row.id], 10) == ({row.id}, set())  # fenced
    assert st.finish(row.id, "w1", "succeeded", 0, None) is None
    (retry,) = st.claim("w2", ["default"], 5, lease=10)
    assert (retry.attempt, retry.event_id) == (2, row.event_id)
    assert st.finish(retry.id, "w2", "succeeded", 0, None).status == "succeeded"
    assert st.reap() == []
    st.close()


def test_logs_live_in_the_store_capped(pg_url: str) -> None:
    st = PgStore(pg_url)
    st.ingest(Event("http", "post", {}), [Intent("r", "a", {})])
    (row,) = st.claim("w", ["default"], 1, 10)
    body = b"first line\n" + b"x" * 80 + b"\n" + b"line\n" * (LOG_CAP // 5) + b"the end\n"
    st.finish(row.id, "w", "succeeded", 0, None, log=body)
    text, truncated, exists = st.read_log(row.id)
    assert exists and truncated and text.endswith("the end\n") and "first line" not in text
    assert st.read_log(row.id + 100) == ("", False, False)
    st.close()


def test_prune_deletes_old_history_but_keeps_waiting_runs(pg_url: str) -> None:
    st = PgStore(pg_url)
    st.ingest(Event("http", "post", {}), [Intent("a", "x", {})])
    st.ingest(Event("http", "post", {}), [Intent("b", "x", {}, busy="parallel")])
    (row,) = st.claim("w", ["default"], 1, 10)
    st.finish(row.id, "w", "failed", 1, "boom", log=b"out\n")
    st.close()
    r = cli("store", "prune", "--store", pg_url, "--older-than", "0s")
    assert r.returncode == 0 and "pruned 1 run(s), 1 event(s)" in r.stdout, (r.stdout, r.stderr)
    st = PgStore(pg_url)
    assert [x["status"] for x in st.list_runs()] == ["queued"]
    assert len(st.list_events()) == 1
    st.close()
    assert cli("store", "prune", "--store", pg_url, "--older-than", "soon").returncode == 2


def test_the_client_key_passphrase_of_the_store_url_is_never_shown(tmp_path: Path) -> None:
    # libpq's sslpassword= (the passphrase of the sslkey) is as secret as password=
    secret = "KeyPass-phrase9"
    dead = f"postgresql://alice@127.0.0.1:1/db?sslpassword={secret}&connect_timeout=2"
    (tmp_path / "r.trg").write_text('action a = exec "true"\nr: on http.post path="/x" run a\n')
    for argv in (["runs", "--store", dead], ["store", "init", "--store", dead], ["worker", "--store", dead],
                 ["serve", str(tmp_path / "r.trg"), "--store", dead],
                 ["runs", "--store", f"host=db sslpassword={secret}"]):
        r = cli(*argv, timeout=60)
        assert r.returncode in (1, 2) and "Traceback" not in r.stderr, (argv, r.stderr)
        assert secret not in r.stdout + r.stderr and "sslpassword=***" in r.stderr, (argv, r.stderr)
    assert scrub(f"bad {secret}", dead) == "bad ***"


def test_prune_keeps_the_manifest_a_running_node_uses(tmp_path: Path, pg_url: str) -> None:
    # a node whose rules last ran longer ago than --older-than (a monthly cron) still runs
    # them after a prune: its manifest is not pruned, and a manifest gone anyway is put back
    import httpx

    rules = tmp_path / "r.trg"
    rules.write_text('action a = exec "true"\nr: on http.post path="/x" run a\n')
    s = StoreServer(Backend("postgresql", pg_url), rules, tmp_path / "state", workers=0,
                    log=tmp_path / "serve.log").start()

    def manifests() -> list[str]:
        with psycopg.connect(pg_url, autocommit=True) as conn:
            return [r[0] for r in conn.execute("SELECT sha256 FROM trg_manifests")]

    try:
        (sha,) = manifests()
        r = cli("store", "prune", "--store", pg_url, "--older-than", "0s")
        assert r.returncode == 0 and "0 manifest(s)" in r.stdout, (r.stdout, r.stderr)
        with psycopg.connect(pg_url, autocommit=True) as conn:   # gone anyway (an older triggerlang's prune)
            conn.execute("DELETE FROM trg_manifests")
        assert wait_for(lambda: manifests() == [sha], "the node to publish its manifest again")
        w = WorkerProc(pg_url, tmp_path / "worker.log", "--base", str(tmp_path))
        try:
            assert httpx.post(s.url + "/x", json={}).status_code == 202
            s.wait_runs(lambda rs: rs and rs[-1]["status"] not in ("queued", "running"), "the run")
        finally:
            w.stop()
        assert [x["status"] for x in s.runs()] == ["succeeded"], (s.runs(), w.log())
    finally:
        assert s.stop() == 0


def test_an_ingest_only_node_watching_files_says_which_worker_runs_them(tmp_path: Path, pg_url: str) -> None:
    # file runs are node-local (pool node:<host>): with --workers 0 and no worker of that
    # pool they wait for ever, so the node says so when it starts (not with an embedded worker)
    import socket

    (tmp_path / "src").mkdir()
    rules = tmp_path / "r.trg"
    rules.write_text('action a = exec "true"\nr: on file.changed path ~ "src/*.py" run a\n')
    for workers, said in ((0, True), (1, False)):
        s = StoreServer(Backend("postgresql", pg_url), rules, tmp_path / "state", workers=workers,
                        log=tmp_path / f"serve-{workers}.log").start()
        try:
            assert (f"--pool node:{socket.gethostname()}" in s.log()) is said, s.log()
        finally:
            assert s.stop() == 0


def _webhook_and_action_secrets(tmp_path: Path, monkeypatch, rules_text: str) -> Path:
    """rules.trg with a webhook route's secret (gh, TRG_T_GH) and an http action's (hook,
    TRG_T_HOOK), neither in this process's environment, and ``rules_text`` after them."""
    monkeypatch.delenv("TRG_T_GH", raising=False)
    monkeypatch.delenv("TRG_T_HOOK", raising=False)
    rules = tmp_path / "r.trg"
    rules.write_text('secret gh = env "TRG_T_GH"\nsecret hook = env "TRG_T_HOOK"\n'
                     'source http path="/x" token=gh\n'
                     'action notify = http post "http://127.0.0.1:9/n" secret=hook\n' + rules_text)
    return rules


def test_a_worker_needs_only_the_secrets_of_the_actions_it_runs(tmp_path: Path, pg_url: str, monkeypatch) -> None:
    # README's compose walkthrough: the webhook secret is in the ingest nodes' environment,
    # not the workers'. Every run failed "this worker cannot run it: secret gh: ...", since a
    # worker read every secret of the manifest, the sources' too
    import httpx

    rules = _webhook_and_action_secrets(tmp_path, monkeypatch, 'action a = exec "true"\n'
                                        'r: on http.post path="/x" run a\nn: on http.post path="/x" run notify\n')
    s = StoreServer(Backend("postgresql", pg_url), rules, tmp_path / "state", workers=0,
                    env={"TRG_T_GH": "gh-value", "TRG_T_HOOK": "hook-value"}, log=tmp_path / "serve.log").start()
    try:
        w = WorkerProc(pg_url, tmp_path / "worker.log")
        try:
            r = httpx.post(s.url + "/x", json={}, headers={"Authorization": "Bearer gh-value"})
            assert r.status_code == 202, r.text
            runs = s.wait_runs(lambda rs: len(rs) == 2 and all(x["status"] not in ("queued", "running") for x in rs),
                               "both runs")
        finally:
            w.stop()
    finally:
        assert s.stop() == 0
    by_rule = {x["rule"]: x for x in runs}
    assert by_rule["r"]["status"] == "succeeded", (by_rule["r"], w.log())
    assert by_rule["n"]["status"] == "failed"
    assert by_rule["n"]["error"] == "this worker cannot run it: secret hook: the environment variable TRG_T_HOOK " \
                                    "is not set", by_rule["n"]


def test_an_ingest_only_node_reads_only_the_secrets_its_routes_verify_with(tmp_path: Path, pg_url: str,
                                                                           monkeypatch) -> None:
    # an ingest node (--workers 0) runs no action: the http action's secret is the workers'
    # (it refused to start without TRG_T_HOOK); a node that runs actions still reads them all
    import httpx

    rules = _webhook_and_action_secrets(tmp_path, monkeypatch, 'n: on http.post path="/x" run notify\n')
    backend = Backend("postgresql", pg_url)
    s = StoreServer(backend, rules, tmp_path / "state", workers=0, env={"TRG_T_GH": "gh-value"},
                    log=tmp_path / "ingest.log").start()
    try:
        r = httpx.post(s.url + "/x", json={}, headers={"Authorization": "Bearer gh-value"})
        assert r.status_code == 202, r.text
        assert httpx.post(s.url + "/x", json={}, headers={"Authorization": "Bearer nope"}).status_code == 401
    finally:
        assert s.stop() == 0
    assert [x["rule"] for x in s.runs()] == ["n"]  # queued for a worker that has the hook secret
    for workers, env, missing in ((0, {"TRG_T_HOOK": "h"}, "TRG_T_GH"), (1, {"TRG_T_GH": "g"}, "TRG_T_HOOK")):
        bad = StoreServer(backend, rules, tmp_path / f"state{workers}", workers=workers, env=env,
                          log=tmp_path / f"bad-{workers}.log").start(wait=False)
        assert bad.proc.wait(60) == 1, bad.log()
        assert f"the environment variable {missing} is not set" in bad.log(), bad.log()


def test_a_worker_looks_again_for_a_manifest_it_did_not_find(pg_url: str) -> None:
    import shutil

    from triggerlang.runtime.cluster import Worker, WorkerOptions

    st = PgStore(pg_url)
    manifest = {"rules": [], "actions": {}, "sources": {}}
    sha = pgstore.manifest_sha(manifest)[0]
    w = Worker(st, WorkerOptions())
    assert w._rules_for(sha) is None
    assert st.publish_manifest(manifest) == sha
    assert w._rules_for(sha) is not None and w._rules_for(sha).sha == sha
    shutil.rmtree(w.tmp)
    st.close()


def test_a_worker_whose_claims_fail_waits_poll_then_twice_as_long_up_to_30s() -> None:
    # a store that refuses or hangs is not asked again at every poll: the waits between
    # claims double from --poll up to 30 s, and a claim that works brings them back to
    # --poll. The claim loop's waits are recorded, not waited (no wall time)
    import asyncio
    import shutil

    from triggerlang.runtime.cluster import Worker, WorkerOptions
    from triggerlang.runtime.store import StoreUnavailable

    answers = iter(["fail"] * 6 + ["ok"] + ["fail"] * 2)

    class Store:   # its claims fail, or find nothing, in the order of answers
        timeout = None

        def claim(self, *args: object) -> list:
            if next(answers) == "fail":
                raise StoreUnavailable("store postgresql://db: connection refused")
            return []

        def next_ready_at(self, pools: object) -> None:
            return None

    w = Worker(Store(), WorkerOptions(poll=2.0))
    waits: list[float] = []

    async def idle(seconds: float) -> None:
        waits.append(seconds)
        w.closing = len(waits) == 10

    async def main() -> None:
        w._wake = asyncio.Event()
        w._idle = idle   # type: ignore[method-assign]
        await asyncio.wait_for(w._claim_loop(), 10)

    try:
        asyncio.run(main())
    finally:
        shutil.rmtree(w.tmp)
    assert waits == [2, 2, 4, 8, 16, 30, 30, 2, 2, 4], waits


def test_a_worker_removes_the_log_folders_of_killed_workers(tmp_path: Path, pg_url: str, monkeypatch) -> None:
    # a worker keeps its running runs' logs in a temporary folder it removes when it stops;
    # killed with -9 it cannot, so the next worker on the host removes those of dead workers
    import os
    import signal

    tmp = tmp_path / "tmp"
    tmp.mkdir()
    monkeypatch.setenv("TMPDIR", str(tmp))
    PgStore(pg_url).close()

    def folders() -> list[Path]:
        return sorted(tmp.glob("triggerlang-worker-*"))

    first = WorkerProc(pg_url, tmp_path / "w1.log")
    (mine,) = folders()
    (mine / "9.log").write_text("output of a run\n")
    first.proc.send_signal(signal.SIGKILL)
    first.proc.wait(20)
    first._fh.close()
    assert folders() == [mine]
    # a folder of a live process (this one) of the same shape is left alone
    live = tmp / mine.name.replace(f"-{first.pid}-", f"-{os.getpid()}-")
    live.mkdir()
    second = WorkerProc(pg_url, tmp_path / "w2.log")
    try:
        assert mine not in folders() and live in folders() and len(folders()) == 2, folders()
    finally:
        assert second.stop() == 0
    assert folders() == [live]


def test_the_password_of_the_store_url_is_never_shown(tmp_path: Path, pg_url: str) -> None:
    secret = "Sup3r-s3cret-PW"
    # an unreachable server: the error names the store without the password
    dead = f"postgresql://alice:{secret}@127.0.0.1:1/db?connect_timeout=2"
    with pytest.raises(StoreError) as e:
        open_store(dead)
    assert secret not in str(e.value) and "alice:***@127.0.0.1:1" in str(e.value)
    for argv in (["runs", "--store", dead], ["events", "--store", dead], ["store", "init", "--store", dead],
                 ["worker", "--store", dead], ["serve", str(tmp_path / "r.trg"), "--store", dead]):
        (tmp_path / "r.trg").write_text('action a = exec "true"\nr: on http.post path="/x" run a\n')
        r = cli(*argv, timeout=60)
        assert r.returncode == 1, (argv, r.stdout, r.stderr)
        assert secret not in r.stdout + r.stderr and "Traceback" not in r.stderr, (argv, r.stderr)
    assert secret not in cli("runs", "--store", dead.replace("postgresql", "mysql")).stderr
    # a live server (trust auth ignores the password): the log shows it redacted
    url = pg_url.replace("postgresql://postgres@", f"postgresql://postgres:{secret}@")
    s = StoreServer(Backend("postgresql", url), tmp_path / "r.trg", tmp_path / "state", workers=1,
                    log=tmp_path / "serve.log").start()
    try:
        import httpx

        assert httpx.post(s.url + "/x", json={}).status_code == 202
        s.wait_runs(lambda rs: rs and rs[0]["status"] == "succeeded", "the run")
    finally:
        assert s.stop() == 0
    log = (tmp_path / "serve.log").read_text()
    assert secret not in log and "postgres:***@" in log
    assert redact_url("postgresql://u:p%40ss@h/db?password=p2&sslmode=require") == \
        "postgresql://u:***@h/db?password=***&sslmode=require"
    assert scrub("bad p@ss and p2", "postgresql://u:p%40ss@h/db?password=p2") == "bad *** and ***"


def test_a_store_url_on_a_local_socket_is_shown_as_written() -> None:
    # postgresql:///db (the local socket, peer authentication) was shown as postgresql:/db
    assert redact_url("postgresql:///trg") == "postgresql:///trg"
    assert redact_url("postgresql:///trg?host=/run/pg&password=x") == "postgresql:///trg?host=/run/pg&password=***"
    assert redact_url("postgresql://") == "postgresql://"
    r = cli("runs", "--store", "postgresql:///trg?host=/nonexistent&password=s3cr3t-X")
    assert r.returncode == 1 and "store postgresql:///trg?host=/nonexistent&password=***:" in r.stderr, r.stderr


def test_a_store_url_is_read_as_libpq_reads_it(pg_url: str) -> None:
    # a URL kept in a secret file ends with a newline: it named a database "t1\n" that did
    # not exist (the message showed "t1 "); so white space around the URL is dropped. A
    # scheme libpq does not take (upper case) got libpq's 'missing "=" after ... in
    # connection info string'
    import os

    PgStore(pg_url).close()
    env = {**os.environ, "TRIGGERLANG_STORE": pg_url + "\n"}
    for argv in (["runs"], ["events"], ["store", "migrate"]):
        r = cli(*argv, env=env)
        assert r.returncode == 0, (argv, r.stderr)
    for url in ("POSTGRESQL://alice:pw@db/x", "Postgres://alice:pw@db/x"):
        r = cli("runs", "--store", url)
        assert r.returncode == 2 and "is not a postgresql:// URL" in r.stderr and "pw" not in r.stderr, r.stderr


def test_a_malformed_store_url_is_one_line_without_its_password(tmp_path: Path) -> None:
    secret = "Hunter2-s3cret"
    (tmp_path / "r.trg").write_text('action a = exec "true"\nr: on http.post path="/x" run a\n')
    bad = [f"postgresql://alice:{secret}@[::1/db",            # urlsplit: Invalid IPv6 URL
           f"host=db user=alice password={secret}",            # a libpq key=value string, not a URL
           f"host=db password='{secret} x' user=alice"]
    for url in bad:
        for argv in (["runs", "--store", url], ["store", "init", "--store", url], ["worker", "--store", url],
                     ["serve", str(tmp_path / "r.trg"), "--store", url], ["dashboard", "--store", url]):
            r = cli(*argv, timeout=60)
            assert r.returncode == 2, (argv, r.stdout, r.stderr)
            assert "Traceback" not in r.stderr and len(r.stderr.strip().splitlines()) == 1, (argv, r.stderr)
            assert secret not in r.stdout + r.stderr, (argv, r.stderr)
    with pytest.raises(StoreError) as e:
        open_store(bad[0])
    assert secret not in str(e.value)
    assert redact_url(bad[1]) == "host=db user=alice password=***"
    assert redact_url(bad[2]) == "host=db password=*** user=alice"


def test_serve_refuses_a_flag_its_store_does_not_use(tmp_path: Path) -> None:
    # silently ignored before: --workers 8 on the SQLite journal ran 16 at once, and
    # --max-backlog on a store never answered 503
    (tmp_path / "r.trg").write_text('action a = exec "true"\nr: on http.post path="/x" run a\n')
    rules = str(tmp_path / "r.trg")
    for flags, says in ((["--workers", "8"], "--max-parallel"), (["--migrate"], "--store"),
                        (["--lease", "30"], "--store"), (["--heartbeat", "1"], "--store"),
                        (["--store", "postgresql://nobody@127.0.0.1:1/x", "--max-backlog", "10"], "SQLite")):
        r = cli("serve", rules, "--port", "0", "--state", str(tmp_path / "state"), *flags, timeout=30)
        assert r.returncode == 2 and says in r.stderr and "Traceback" not in r.stderr, (flags, r.stderr)
        assert len(r.stderr.strip().splitlines()) == 1, (flags, r.stderr)
    assert not (tmp_path / "state").exists()


def test_pooled_connections_the_database_dropped_are_not_used(pg_url: str) -> None:
    # a database restarted while a node was idle: the first deliveries after it got 500
    # ("terminating connection due to administrator command") from the stale pooled connections
    st = PgStore(pg_url)
    with st._conn(), st._conn(), st._conn():   # three connections in the pool
        pass
    with psycopg.connect(pg_url, autocommit=True) as conn:
        killed = conn.execute("SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                              "WHERE datname = current_database() AND pid <> pg_backend_pid()").fetchone()[0]
    assert killed == 3
    wait_for(lambda: all(select.select([c], [], [], 0)[0] for c in list(st._pool.queue)),
             "the dropped connections to hear of it")
    for i in range(4):
        st.ingest(Event("http", "post", {}), [Intent("r", "a", {}, busy="parallel")], delivery_key=f"d{i}")
    assert [r["rule"] for r in st.list_runs()] == ["r"] * 4
    st.close()


@contextlib.contextmanager
def _outage(pg_url: str) -> Iterator[None]:
    """The test's database away as in a restart: its connections dropped, new ones refused."""
    db = psycopg.conninfo.conninfo_to_dict(pg_url)["dbname"]
    admin = pg_url.replace(f"/{db}?", "/postgres?")
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'ALTER DATABASE "{db}" ALLOW_CONNECTIONS false')
        try:
            conn.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s", (db,))
            yield
        finally:
            conn.execute(f'ALTER DATABASE "{db}" ALLOW_CONNECTIONS true')


def test_a_dashboard_stream_on_a_store_ends_cleanly_in_a_database_outage(tmp_path: Path, pg_url: str) -> None:
    # the live page's event stream polls the store: in an outage it ends (the page's script
    # reconnects) with a warning in the log, not an "Exception in ASGI application" traceback
    import subprocess
    import sys

    import httpx

    with PgStore(pg_url) as st:
        st.ingest(Event("http", "post", {}), [Intent("r", "a", {})])
    log = tmp_path / "dashboard.log"
    with open(log, "wb") as fh:
        proc = subprocess.Popen([sys.executable, "-m", "triggerlang.cli", "dashboard", "--store", pg_url,
                                 "--port", "0"], stdin=subprocess.DEVNULL, stderr=fh)
    try:
        line = wait_for(lambda: "dashboard: http" in log.read_text() and log.read_text(), "the dashboard")
        base = line.split()[1].split("/dashboard/")[0]
        with httpx.stream("GET", f"{base}/dashboard/stream", timeout=20) as r:
            chunks, seen = r.iter_text(), ""
            while "event: run" not in seen:   # the store is open and polled
                seen += next(chunks)
            with _outage(pg_url):
                rest = "".join(chunks)   # the stream ends in the outage
        assert "cannot read the journal" in rest, rest
    finally:
        proc.terminate()
        proc.wait(20)
    text = log.read_text()
    assert "Traceback" not in text and "dashboard: store" in text, text


@pytest.mark.parametrize("what", ["runs", "events"])
def test_follow_on_a_store_goes_on_through_a_database_outage(pg_url: str, what: str) -> None:
    # the database going away under `triggerc runs -f --store` (its connections dropped, new
    # ones refused, as in a restart): a warning, then the rows written after it; no traceback
    import os
    import signal
    import subprocess
    import sys

    st = PgStore(pg_url)
    st.ingest(Event("http", "post", {}), [Intent("first", "a", {})])
    proc = subprocess.Popen([sys.executable, "-m", "triggerlang.cli", what, "--store", pg_url, "-f"],
                            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "NO_COLOR": "1"})
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(ln.rstrip("\n") for ln in proc.stdout), daemon=True)
    reader.start()
    try:
        wait_for(lambda: len(lines) >= 2, "the header and the first row")
        st.close()
        with _outage(pg_url):
            time.sleep(1.5)   # the follower polls every 0.5 s: it meets the outage
        st = PgStore(pg_url)
        st.ingest(Event("http", "post", {}), [Intent("second", "a", {})])
        wait_for(lambda: len(lines) >= 3 or proc.poll() is not None, "the row written after the drop")
        assert proc.poll() is None, proc.stderr.read()
        assert "second" in lines[2] or "http.post" in lines[2], lines
    finally:
        st.close()
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(20)
    err = proc.stderr.read()
    assert code == 0 and "Traceback" not in err and "still following" in err, err


def test_the_readme_compose_walkthrough_holds_together() -> None:
    # README, "Running on several machines": the postgres image makes the user POSTGRES_USER
    # (default "postgres"), so the store URL's user must be it; every triggerc service starts
    # before the database answers, so it needs a restart policy; each command parses
    import shlex
    import urllib.parse

    import yaml

    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")
    block = readme.split("## Running on several machines", 1)[1].split("```yaml\n", 1)[1].split("```", 1)[0]
    services = yaml.safe_load(block)["services"]
    db = services["db"]["environment"]
    user = db.get("POSTGRES_USER", "postgres")
    ours = {name: s for name, s in services.items() if str(s.get("command", "")).startswith("triggerc ")}
    assert len(ours) >= 3
    for name, s in ours.items():
        url = urllib.parse.urlsplit(s["environment"]["TRIGGERLANG_STORE"])
        assert (url.username, url.path.lstrip("/")) == (user, db.get("POSTGRES_DB", user)), name
        assert s.get("restart") in ("always", "unless-stopped", "on-failure"), name
        r = cli(*shlex.split(s["command"])[1:], "--help")
        assert r.returncode == 0, (name, r.stderr)


def test_runs_events_and_the_dashboard_read_the_store(tmp_path: Path, pg_url: str, monkeypatch) -> None:
    st = PgStore(pg_url)
    # the manifest the run was created under names its secrets: the views mask their values
    sha = st.publish_manifest({"base_dir": str(tmp_path), "secrets": {"key": {"env": "TRG_TEST_DEPLOY_KEY"}},
                               "rules": []})
    rec = st.ingest(Event("git", "push", {"branch": "main"}), [Intent("deploy", "d", {"sha": "abc"})], "k",
                    manifest=sha)
    (row,) = st.claim("w", ["default"], 1, 10)
    st.finish(row.id, "w", "succeeded", 0, None, log=b"deployed abc\nkey=k3y-9\n")
    st.close()
    monkeypatch.setenv("TRG_TEST_DEPLOY_KEY", "k3y-9")
    from cli_helpers import invoke

    r = invoke("logs", str(row.id), "--store", pg_url)
    assert (r.exit_code, r.stdout, r.stderr) == (0, "deployed abc\nkey=[secret key]\n", "")
    r = cli("runs", "--store", pg_url, "--format", "json")
    assert r.returncode == 0, r.stderr
    (run,) = json.loads(r.stdout)
    assert (run["rule"], run["status"], run["inputs"], run["event_id"]) == ("deploy", "succeeded", {"sha": "abc"},
                                                                          rec.event_id)
    r = cli("events", "--store", pg_url, "--format", "json")
    assert [e["id"] for e in json.loads(r.stdout)] == [rec.event_id]
    from starlette.testclient import TestClient

    from triggerlang.dashboard.app import create_app

    with TestClient(create_app(None, store_url=pg_url), client=("127.0.0.1", 5000)) as c:
        api = c.get(f"/api/runs/{row.id}").json()
        assert api["status"] == "succeeded" and api["log"] == "deployed abc\nkey=[secret key]\n"
        assert api["event"]["id"] == rec.event_id
        assert c.get("/dashboard/").status_code == 200
        assert "deployed abc" in c.get(f"/dashboard/runs/{row.id}").text


def test_a_store_of_schema_1_is_migrated_with_its_rows(pg_url: str, monkeypatch) -> None:
    """Migration 2 (issue 14) adds event depth, re-run links, log sizes, the audit trail and
    the delivery history to a store made before it; the rows stay."""
    monkeypatch.setattr(pgstore, "MIGRATIONS", pgstore.MIGRATIONS[:1])
    monkeypatch.setattr(pgstore, "SCHEMA_VERSION", 1)
    with psycopg.connect(pg_url, autocommit=True) as conn:
        PgStore(pg_url).close()
        conn.execute("INSERT INTO trg_events (id, source, type, time, data, received_at) "
                     "VALUES ('evt_old', 'git', 'push', 't', '{}', 1)")
        conn.execute("INSERT INTO trg_runs (rule, action, status, inputs, event_id, queued_at, finished_at) "
                     "VALUES ('d', 'deploy', 'failed', '{}', 'evt_old', 1, 2)")
        conn.execute("INSERT INTO trg_logs (run_id, body) VALUES (1, %s)", (b"old log\n",))
    monkeypatch.undo()
    with pytest.raises(StoreError, match="store migrate"):
        PgStore(pg_url)
    st = PgStore(pg_url, migrate=True)
    try:
        assert st.get_event("evt_old")["depth"] == 0
        chunk = st.read_log_chunk(1)
        assert (chunk.data, chunk.start, chunk.end) == (b"old log\n", 0, 8)
        new = st.rerun(1, "tester")
        assert new.rerun_of == 1 and new.status == "queued"
        assert [a["action"] for a in st.list_audit(run_id=1)] == ["rerun"]
        st.record_deliveries([{"at": 1.0, "route": "/gh", "method": "POST", "status": 401, "verify": "failed"}], 5)
        assert st.list_deliveries("/gh")[0]["verify"] == "failed"
    finally:
        st.close()


def test_a_log_is_read_by_byte_offset(pg_url: str) -> None:
    st = PgStore(pg_url)
    try:
        st.store_log(7, b"b" * 10, truncated=True, size=110)  # the last 10 of 110 bytes
        c = st.read_log_chunk(7)
        assert (c.start, c.end, c.data, c.truncated) == (100, 110, b"b" * 10, True)
        assert st.read_log_chunk(7, offset=105).data == b"b" * 5
        assert st.read_log_chunk(7, offset=20).start == 100  # behind what the store holds: skips ahead
        assert st.read_log_chunk(8).exists is False
    finally:
        st.close()


def test_a_live_copy_of_a_log_written_after_the_runs_end_does_not_shorten_it(pg_url: str) -> None:
    """Before: a worker's heartbeat read a running run's log (4 lines) and stored it from a
    thread; the run ended meanwhile and its end stored the whole log (6 lines); the
    heartbeat's write, committed last, put the 4 lines back, and ``logs -f`` (which saw the
    run ended) printed 4 of 6 lines (seen once in a whole-suite run)."""
    st = PgStore(pg_url)
    try:
        st.ingest(Event("http", "post", {}), [Intent("r", "a", {})])
        (row,) = st.claim("w", ["default"], 1, 10)
        whole = b"".join(b"tick %d\n" % i for i in range(1, 7))
        st.finish(row.id, "w", "succeeded", 0, None, log=whole, log_size=len(whole))
        st.store_log(row.id, whole[:28], False, 28)  # the heartbeat's copy, read before the end
        assert st.read_log_chunk(row.id).data == whole
        st.store_log(row.id + 1, b"a\n", False, 2)  # a live copy, then a longer one: it grows
        st.store_log(row.id + 1, b"a\nb\n", False, 4)
        assert st.read_log_chunk(row.id + 1).data == b"a\nb\n"
    finally:
        st.close()


def test_a_standalone_dashboard_on_the_store_reruns_and_cancels(pg_url: str) -> None:
    """``triggerc dashboard --store URL --token T`` writes the shared store: a re-run is a
    queued row a worker claims, a cancel of a running run asks its worker (cancel_requested
    and a NOTIFY on trg_cancel), both journaled with who."""
    import subprocess
    import sys

    import httpx

    st = PgStore(pg_url)
    try:
        st.ingest(Event("git", "push", {}), [Intent("deploy", "d", {"sha": "abc"}, pool="default")])
        st.ingest(Event("git", "push", {}), [Intent("slow", "s", {}, busy="parallel")])
        first, running = st.claim("w", ["default"], 2, 60)
        st.finish(first.id, "w", "succeeded", 0, None, log=b"\x01# started\nok\n\x02warning\n")
        proc = subprocess.Popen([sys.executable, "-m", "triggerlang.cli", "dashboard", "--store", pg_url, "--port", "0",
                                 "--token", "t0k"], stdin=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        try:
            line = proc.stderr.readline()
            assert "re-run and cancel on" in line, line
            url = line.split()[1]
            base = url[: url.index("/dashboard/")]
            auth = {"Authorization": "Bearer t0k", "X-Triggerlang-Actor": "ops@desk"}
            with psycopg.connect(pg_url, autocommit=True) as listener:
                listener.execute("LISTEN trg_cancel")
                r = httpx.post(f"{base}/api/runs/{running.id}/cancel", headers=auth, timeout=10)
                assert r.status_code == 200 and r.json()["status"] == "cancelling", r.text
                note = next(listener.notifies(timeout=5))
                assert (note.channel, note.payload) == ("trg_cancel", str(running.id))
            assert st.cancel_requested([running.id]) == {running.id}
            r = httpx.post(f"{base}/api/runs/{first.id}/rerun", headers=auth, timeout=10)
            assert r.status_code == 200, r.text
            again = st.run_row(r.json()["rerun"])
            assert (again.status, again.rerun_of, again.inputs) == ("queued", first.id, {"sha": "abc"})
            assert [(a["action"], a["actor"].split(" ")[0]) for a in st.list_audit()] == [("cancel", "ops@desk"),
                                                                                       ("rerun", "ops@desk")]
            # the run page reads the stored log's streams
            page = httpx.get(f"{base}/dashboard/runs/{first.id}?token=t0k", timeout=10).text
            assert '<div class="l meta"># started</div><div class="l">ok</div><div class="l err">warning</div>' in page
            # the worker's finish keeps the reason the cancel was asked with
            st.finish(running.id, "w", "cancelled", 143, "cancelled")
            assert st.run_row(running.id).error == "cancelled by ops@desk (cli) from 127.0.0.1"
        finally:
            proc.terminate()
            proc.wait(10)
    finally:
        st.close()


def test_a_reload_that_removes_a_rule_cancels_its_waiting_runs_once_across_nodes(pg_url: str, caplog) -> None:
    """Before: a rule removed by a reload in store mode still ran its queued runs (the
    worker runs each with the manifest it was queued under), while serve on the SQLite
    journal cancels them. The first node that reloads cancels the waiting runs the old
    rules made, whichever node queued them; the next node finds none; a running run goes on."""
    from triggerlang.api import compile_text
    from triggerlang.runtime.cluster import IngestEngine
    from triggerlang.runtime.engine import RELOAD_REMOVED
    from triggerlang.runtime.metrics import Metrics

    v1 = ('action a(n) = exec "true"\n'
          'q: on http.post path="/q" run a with <payload.n> busy queue\n'
          'db: on http.post path="/db" run a with <payload.n> debounce 1h\n'
          'keep: on http.post path="/keep" run a with <payload.n> busy queue\n')
    old, new = (compile_text(t, "rules.trg", "/tmp").manifest
                for t in (v1, v1.replace("q: on", "# q: on").replace("db: on", "# db: on")))
    st = PgStore(pg_url)
    metrics = Metrics()
    a, b = IngestEngine(old, st, metrics=metrics), IngestEngine(old, st)
    try:
        ids = []
        for node, path, n in ((a, "/q", 1), (b, "/q", 2), (b, "/q", 3), (a, "/db", 4), (b, "/keep", 5)):
            ev = Event("http", "post", {"path": path, "payload": {"n": n}, "headers": {}, "query": {}})
            ids += st.ingest(ev, node.intents(ev, "default"), manifest=node.current.sha).run_ids
        (going,) = st.claim("w1", ["default"], 1, 10)   # q's first run is running
        assert going.id == ids[0]
        with caplog.at_level("INFO", logger="triggerlang"):
            a.load(new)
            b.load(new)
        status = {r["id"]: (r["status"], r["error"]) for r in st.list_runs(limit=10)}
        assert status == {ids[0]: ("running", None), ids[1]: ("cancelled", RELOAD_REMOVED),
                          ids[2]: ("cancelled", RELOAD_REMOVED), ids[3]: ("cancelled", RELOAD_REMOVED),
                          ids[4]: ("queued", None)}, status
        said = [r.getMessage() for r in caplog.records if r.getMessage().startswith("reload: ")]
        assert said == [f"reload: 1 waiting run(s) of db cancelled: {RELOAD_REMOVED}",
                        f"reload: 2 waiting run(s) of q cancelled: {RELOAD_REMOVED}"], said
        assert metrics.registry.get_sample_value("triggerlang_runs_total", {"rule": "q", "status": "cancelled"}) == 2
    finally:
        a.close()
        b.close()
        st.close()


def test_an_interrupted_runs_retry_is_claimed_before_the_runs_accepted_after_it(pg_url: str) -> None:
    """Before: the retry of a busy queue run whose worker died (reaped), or stopped (its
    finish 'interrupted'), was a new run claimed after the rule's runs accepted later. It
    keeps its place: claimed next, then the others in order."""
    st = PgStore(pg_url)
    try:
        def accept(n: int) -> int:
            return st.ingest(Event("http", "post", {"n": n}), [Intent("q", "a", {"n": n}, retry=1)]).run_ids[0]

        first = accept(1)
        (row,) = st.claim("w1", ["default"], 5, lease=0.2)
        later = [accept(2), accept(3)]
        wait_for(lambda: st.reap(), "the lease to expire and the run to be reaped")   # w1 died
        (retry,) = st.claim("w2", ["default"], 5, lease=10)
        assert (retry.inputs, retry.attempt) == ({"n": 1}, 2), retry
        st.finish(retry.id, "w2", "succeeded", 0, None)
        (second,) = st.claim("w2", ["default"], 5, lease=10)   # w2 stops while run 2 goes
        assert (second.id, first) == (later[0], row.id)
        st.finish(second.id, "w2", "interrupted", None, "the worker stopped", retry_statuses=("interrupted",))
        claimed = []
        for _ in range(2):
            (r,) = st.claim("w3", ["default"], 5, lease=10)
            claimed.append((r.inputs["n"], r.attempt))
            st.finish(r.id, "w3", "succeeded", 0, None)
        assert claimed == [(2, 2), (3, 1)], claimed
    finally:
        st.close()


def test_deliveries_answered_in_a_database_outage_are_written_when_it_answers_again(pg_url: str, caplog) -> None:
    """Before: the rows of the deliveries a node answered (500) while its database was down
    were dropped with the write that failed, and the sources page had no trace of the very
    deliveries to redeliver by hand. They wait, and are written once it answers."""
    import asyncio

    from triggerlang.runtime.deliveries import DeliveryRecorder

    st = PgStore(pg_url)

    def row(name: str, status: int) -> dict:
        return {"at": 1.8e9, "route": "/gh", "method": "POST", "status": status, "verify": "ok", "delivery_id": name}

    async def until(cond, what: str) -> None:
        deadline = time.monotonic() + 20
        while not cond():
            assert time.monotonic() < deadline, f"timed out waiting for {what}"
            await asyncio.sleep(0.02)

    def stored() -> list:
        return [d["delivery_id"] for d in st.list_deliveries(route="/gh")]

    async def main() -> None:
        rec = DeliveryRecorder(st, in_thread=True, interval=0.02, retry=0.1)
        rec(row("before", 202))
        await until(lambda: stored() == ["before"], "the first row")
        with _outage(pg_url):
            rec(row("during-1", 500))
            rec(row("during-2", 500))
            await until(lambda: "yet (kept" in caplog.text, "a write to fail")
        rec(row("after", 202))
        await until(lambda: len(stored()) == 4, "every row written")
        await rec.close()

    try:
        with caplog.at_level("INFO", logger="triggerlang"):
            asyncio.run(main())
        assert stored() == ["after", "during-2", "during-1", "before"]
        assert "the delivery history is written again" in caplog.text
    finally:
        st.close()


def test_a_reaped_run_ends_when_its_lease_ran_out_not_when_a_reaper_came(pg_url: str) -> None:
    """Before: a run whose worker died was marked interrupted at the time a reaper came by:
    after a downtime of every node (a one-node install restarted an hour later), its
    duration counted the hour. It ends when its lease ran out."""
    st = PgStore(pg_url)
    try:
        st.ingest(Event("http", "post", {}), [Intent("r", "a", {})])
        (row,) = st.claim("w1", ["default"], 5, lease=10)
        with psycopg.connect(pg_url, autocommit=True) as conn:   # claimed an hour ago, last heard of 10 s later
            conn.execute("UPDATE trg_runs SET started_at = started_at - 3600, lease_until = started_at - 3580 "
                         "WHERE id = %s", (row.id,))
        (reaped,) = st.reap()
        assert reaped.duration == pytest.approx(20, abs=0.01), reaped
        assert st.get_run(row.id)["duration"] == pytest.approx(20, abs=0.01)
    finally:
        st.close()


def test_a_debounced_run_waiting_behind_its_rules_running_run_takes_the_next_changes(pg_url: str) -> None:
    """Before: a debounced run's window closed when its quiet period ended, though the run
    still waited behind its rule's running run: each later change made another run behind
    it (serve's engine keeps the window open until the run starts, and makes one). With a
    build that writes the folder it watches, those extra runs also moved loop protection's
    count onto runs that made no change (a 4th run before the pause under load)."""
    st = PgStore(pg_url)
    try:
        def change(path: str) -> list[int]:
            ev = Event("file", "modified", {"path": path, "paths": [path]})
            return st.ingest(ev, [Intent("b", "a", {"files": [path]}, debounce=0.001, paths_params=("files",))]).run_ids

        (first,) = change("a.py")
        wait_for(lambda: st.claim("w1", ["default"], 1, 10), "the first run to be claimed")   # it goes
        (pending,) = change("b.py")
        with psycopg.connect(pg_url, autocommit=True) as conn:   # its quiet period is over: it waits for its lane
            wait_for(lambda: conn.execute("SELECT not_before < EXTRACT(EPOCH FROM clock_timestamp()) FROM trg_runs "
                                          "WHERE id = %s", (pending,)).fetchone()[0], "the quiet period to end")
        due = st.run_row(pending).not_before
        assert change("c.py") == [] and change("d.py") == []   # they join the pending run
        runs = {r["id"]: r for r in st.list_runs(limit=10)}
        assert sorted(runs) == [first, pending], runs
        assert runs[pending]["inputs"]["files"] == ["b.py", "c.py", "d.py"], runs[pending]
        assert st.run_row(pending).not_before == due   # due already: it waits for its lane only, not again
    finally:
        st.close()


def test_an_ingest_node_counts_the_runs_its_store_decided(pg_url: str) -> None:
    """Before: an ingest node counted only loop protection's skipped runs; those the store
    decided in the ingest transaction (busy skip, dedupe, busy restart's cancelled waiting
    run) were journaled and never counted, as serve's engine counts them."""
    from triggerlang.runtime.cluster import count_journaled
    from triggerlang.runtime.metrics import Metrics

    st = PgStore(pg_url)
    m = Metrics()
    try:
        for n in range(3):
            ev = Event("http", "post", {"n": n})
            intents = [Intent("sk", "a", {}, busy="skip"), Intent("rs", "a", {}, busy="restart"),
                       Intent("dd", "a", {}, dedupe_key="k", dedupe_field="k", dedupe_for=3600.0)]
            st.ingest(ev, intents)
            count_journaled(m, ev, intents, 10)
        counted = {(rule, status): m.registry.get_sample_value("triggerlang_runs_total", {"rule": rule, "status": status})
                   for rule, status in (("sk", "skipped"), ("rs", "cancelled"), ("dd", "skipped"))}
        assert counted == {("sk", "skipped"): 2, ("rs", "cancelled"): 2, ("dd", "skipped"): 2}, counted
        stored = [(r["rule"], r["status"]) for r in st.list_runs(limit=20) if r["status"] != "queued"]
        assert sorted(stored) == sorted([("sk", "skipped")] * 2 + [("rs", "cancelled")] * 2 + [("dd", "skipped")] * 2)
    finally:
        st.close()


def test_a_worker_stop_gives_a_run_starting_at_that_moment_the_rest_of_the_grace(tmp_path: Path, pg_url: str,
                                                                                  monkeypatch) -> None:
    """Before: a graceful stop waited for the runs going when it began; a run that was
    starting then (claimed, its process on its way) was stopped at once, interrupted, as
    soon as those ended, with most of the grace left (or, when none was going, ran on
    unbounded). It now gets what is left of the grace, as the others do."""
    import asyncio

    from triggerlang.api import compile_text
    from triggerlang.runtime import cluster
    from triggerlang.runtime.cluster import IngestEngine, Worker, WorkerOptions

    manifest = compile_text('action nap(s) = exec "sleep" s\n'
                            'r: on http.post path="/r" run nap with <payload.s> busy parallel\n',
                            "rules.trg", str(tmp_path)).manifest
    st = PgStore(pg_url)
    node = IngestEngine(manifest, st)
    real_start = cluster.start_action
    held, go = threading.Event(), asyncio.Event()

    async def start_action(req):   # the second run's process is on its way when the stop begins
        if req.inputs.get("s") == "1":
            held.set()
            await go.wait()
        return await real_start(req)

    monkeypatch.setattr(cluster, "start_action", start_action)

    async def main() -> tuple[int, int]:
        ids = []
        for s in ("0.3", "1"):
            ev = Event("http", "post", {"path": "/r", "payload": {"s": s}, "headers": {}, "query": {}})
            ids += st.ingest(ev, node.intents(ev, "default"), manifest=node.current.sha).run_ids
        w = Worker(st, WorkerOptions(base_dir=tmp_path, poll=0.1, grace=10))
        await w.start()
        try:
            deadline = time.monotonic() + 20
            while not (held.is_set() and any(a.ra is not None for a in w.active.values())):
                assert time.monotonic() < deadline, "the first run going and the second starting"
                await asyncio.sleep(0.02)
            stopping = asyncio.ensure_future(w.drain())
            await asyncio.sleep(0.05)
            go.set()
            await asyncio.wait_for(stopping, 20)
        finally:
            go.set()
        return ids[0], ids[1]

    try:
        first, second = asyncio.run(main())
        assert [st.run_row(i).status for i in (first, second)] == ["succeeded", "succeeded"], \
            [(st.run_row(i).status, st.run_row(i).error) for i in (first, second)]
    finally:
        node.close()
        st.close()


def test_a_worker_stop_during_a_claim_releases_what_the_claim_took(tmp_path: Path, pg_url: str) -> None:
    """Before: a stop that began while a claim's query was in flight cancelled the claim
    loop; the query still took its runs, which stayed `running` under a worker that was
    gone until the lease ran out and a reaper marked them interrupted. The stop now lets
    the claim come back, and the runs it took are released for another worker."""
    import asyncio

    from triggerlang.api import compile_text
    from triggerlang.runtime.cluster import IngestEngine, Worker, WorkerOptions

    manifest = compile_text('action a = exec "true"\nr: on http.post path="/r" run a\n', "rules.trg",
                            str(tmp_path)).manifest
    st = PgStore(pg_url)
    node = IngestEngine(manifest, st)
    entered, go, came_back = threading.Event(), threading.Event(), threading.Event()
    real_claim = st.claim

    def claim(*args, **kwargs):   # the worker's first claim is in flight when its stop begins
        entered.set()
        go.wait(20)
        try:
            return real_claim(*args, **kwargs)
        finally:
            came_back.set()

    st.claim = claim

    async def main() -> None:
        w = Worker(st, WorkerOptions(base_dir=tmp_path, poll=0.1))
        await w.start()
        try:
            assert await asyncio.to_thread(entered.wait, 20), "the first claim"
            stopping = asyncio.ensure_future(w.drain(grace=5))
            await asyncio.sleep(0.05)
            go.set()
            await asyncio.wait_for(stopping, 20)
        finally:
            go.set()

    try:
        ev = Event("http", "post", {"path": "/r", "payload": {}, "headers": {}, "query": {}})
        (rid,) = st.ingest(ev, node.intents(ev, "default"), manifest=node.current.sha).run_ids
        asyncio.run(main())
        assert came_back.wait(20)
        row = st.run_row(rid)
        assert (row.status, row.worker) == ("queued", None), (row.status, row.worker)
    finally:
        node.close()
        st.close()


def test_a_stop_writes_the_deliveries_kept_in_an_outage_once_it_answers(pg_url: str, caplog) -> None:
    """Before: the rows of the deliveries answered while the database was down and still
    waiting when serve stopped were lost (only their count was logged). The stop tries
    them again, for a few seconds: written if the database is back by then; with it still
    down, the stop ends within its bound and says how many were lost."""
    import asyncio

    from triggerlang.runtime.deliveries import DeliveryRecorder

    st = PgStore(pg_url)
    tries: list[int] = []
    real = st.record_deliveries

    def record(rows: list, keep: int) -> None:
        tries.append(len(rows))
        real(rows, keep)

    st.record_deliveries = record  # type: ignore[method-assign]

    def row(route: str, name: str) -> dict:
        return {"at": 1.8e9, "route": route, "method": "POST", "status": 500, "verify": "ok", "delivery_id": name}

    async def until(cond, what: str) -> None:
        deadline = time.monotonic() + 20
        while not cond():
            assert time.monotonic() < deadline, f"timed out waiting for {what}"
            await asyncio.sleep(0.02)

    async def back_in_time() -> None:
        rec = DeliveryRecorder(st, in_thread=True, interval=0.02, retry=0.05)
        with _outage(pg_url):
            rec(row("/gh", "during-1"))
            rec(row("/gh", "during-2"))
            await until(lambda: len(tries) >= 1, "a write to fail")
            closing = asyncio.ensure_future(rec.close(wait=20))
            n = len(tries)
            await until(lambda: len(tries) >= n + 2, "the stop to try again")   # (still down)
            assert not closing.done()
        await asyncio.wait_for(closing, 20)

    async def still_down() -> float:
        rec = DeliveryRecorder(st, in_thread=True, interval=0.02, retry=0.05)
        with _outage(pg_url):
            rec(row("/gl", "lost"))
            t0 = time.monotonic()
            await rec.close(wait=0.3)
            return time.monotonic() - t0

    try:
        with caplog.at_level("INFO", logger="triggerlang"):
            asyncio.run(back_in_time())
            assert [d["delivery_id"] for d in st.list_deliveries(route="/gh")] == ["during-2", "during-1"]
            assert "before stopping" not in caplog.text
            took = asyncio.run(still_down())
        assert took < 5, took
        # (a write still going when the stop gave up may land later: it is not waited for)
        assert "could not record 1 webhook deliveries in the history before stopping: " in caplog.text
    finally:
        st.close()


def test_a_start_cancels_the_queued_runs_of_rules_no_running_node_has(pg_url: str, caplog) -> None:
    """Before: serve --store started on a rules file without a rule left that rule's queued
    runs waiting, and a worker ran them with the rules they were queued under (serve on the
    SQLite journal cancels them at its start). A start now cancels those whose rule no
    running ingest node has; while a node still on the old rules runs (a rolling deploy)
    they wait, and its stop cancels them once a node without the rule started after it; a
    lone node's stop leaves them to the next start; a node killed on this host is not running."""
    from triggerlang.api import compile_text
    from triggerlang.runtime.cluster import RULE_GONE, IngestEngine

    v1 = ('action a(n) = exec "true"\n'
          'q: on http.post path="/q" run a with <payload.n> busy queue\n'
          'keep: on http.post path="/keep" run a with <payload.n> busy queue\n')
    old, new = (compile_text(t, "rules.trg", "/tmp").manifest for t in (v1, v1.replace("q: on", "# q: on")))
    st = PgStore(pg_url)
    nodes: list[IngestEngine] = []

    def node(manifest: dict, host: str) -> IngestEngine:
        nodes.append(IngestEngine(manifest, st, hostname=host))
        nodes[-1].join(10)
        return nodes[-1]

    def queue(at: IngestEngine, path: str) -> int:
        ev = Event("http", "post", {"path": path, "payload": {"n": 1}, "headers": {}, "query": {}})
        return st.ingest(ev, at.intents(ev, "default"), manifest=at.current.sha).run_ids[0]

    def status() -> dict:
        return {r["id"]: r["status"] for r in st.list_runs(limit=20)}

    try:
        with caplog.at_level("INFO", logger="triggerlang"):
            a = node(old, "host-a")
            q1, k1 = queue(a, "/q"), queue(a, "/keep")
            a.leave()                     # the only node: its stop leaves them queued
            assert status() == {q1: "queued", k1: "queued"}
            node(new, "host-c")           # q is in no running node's rules: cancelled at this start
            assert status() == {q1: "cancelled", k1: "queued"}
            b = node(old, "host-b")       # a node still on the old rules (a rolling deploy)
            q2 = queue(b, "/q")
            node(new, "host-d")           # b still has q: its run waits
            assert status()[q2] == "queued"
            b.leave()                     # b stops after d started: q's run is cancelled
            assert status()[q2] == "cancelled"
            e = node(old, "host-e")
            q3 = queue(e, "/q")           # e is killed (no leave) and started again with the new rules
            node(new, "host-e")
            assert status()[q3] == "cancelled" and status()[k1] == "queued"
        assert {r["error"] for r in st.list_runs(limit=20) if r["status"] == "cancelled"} == {RULE_GONE}
        said = [r.getMessage() for r in caplog.records if " waiting run(s) of " in r.getMessage()]
        assert said == [f"start: 1 waiting run(s) of q cancelled: {RULE_GONE}",
                        f"stop: 1 waiting run(s) of q cancelled: {RULE_GONE}",
                        f"start: 1 waiting run(s) of q cancelled: {RULE_GONE}"], said
    finally:
        for n in nodes:
            n.close()
        st.close()


# --------------------------------------------------------------------------- deadlocks, serialization failures


def _waiting(admin: psycopg.Connection, pid: int) -> bool:
    """Whether backend ``pid`` waits for a heavyweight lock (a row's, a transaction's, an advisory one)."""
    row = admin.execute("SELECT wait_event_type FROM pg_stat_activity WHERE pid = %s", (pid,)).fetchone()
    return row is not None and row[0] == "Lock"


def _store_backend(admin: psycopg.Connection, *others: int) -> int | None:
    """The pid of the store's backend that waits for a lock (the one not among ``others``)."""
    row = admin.execute("SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = "
                        "'Lock' AND pid <> ALL(%s) LIMIT 1", ([admin.info.backend_pid, *others],)).fetchone()
    return None if row is None else row[0]


@contextlib.contextmanager
def _database_setting(pg_url: str, name: str, value: str) -> Iterator[PgStore]:
    """A store whose connections all have ``name = value`` (ALTER DATABASE, as an operator sets it)."""
    with psycopg.connect(pg_url, autocommit=True) as admin:
        PgStore(pg_url).close()   # (the schema, made before the setting)
        admin.execute(f'ALTER DATABASE "{admin.info.dbname}" SET {name} = \'{value}\'')
    st = PgStore(pg_url)
    try:
        yield st
    finally:
        st.close()


def test_a_transaction_postgresql_chose_as_a_deadlock_victim_is_run_again_after_a_short_wait(pg_url: str,
                                                                                               monkeypatch) -> None:
    """A real deadlock: the store's ingest holds its event's delivery key and waits for the
    lock of rule b, which a test connection holds while it waits for that key (a concurrent
    duplicate). PostgreSQL aborts the store's transaction (40P01: it detects first, its
    deadlock_timeout being the shorter) and expects the client to run it again: it is, from
    its start, after a short jittered wait, and the delivery is journaled with its runs."""
    pauses: list[float] = []
    monkeypatch.setattr(pgstore, "_pause", lambda s: pauses.append(s) or time.sleep(s), raising=False)
    with _database_setting(pg_url, "deadlock_timeout", "20ms") as st, \
            psycopg.connect(pg_url, autocommit=True) as admin, psycopg.connect(pg_url) as a, \
            psycopg.connect(pg_url) as b:
        a.execute("SET deadlock_timeout = '60s'")   # (the store's backend is the one that detects it)
        a.execute("SELECT pg_advisory_xact_lock(%s)", (pgstore._lock_key("b"),))
        b.execute("SELECT pg_advisory_xact_lock(%s)", (pgstore._lock_key("a"),))
        got: dict = {}

        def ingest() -> None:   # busy skip: decided under the rules' locks, a then b
            try:
                got["rec"] = st.ingest(Event("http", "post", {"n": 1}, id="ev-1"),
                                       [Intent("a", "x", {}, busy="skip"), Intent("b", "x", {}, busy="skip")], "k-1")
            except Exception as e:
                got["error"] = e

        def duplicate() -> None:   # waits for the store's uncommitted event (the same delivery key)
            try:
                a.execute("INSERT INTO trg_events (id, source, type, time, data, delivery_key, received_at) "
                          "VALUES ('ev-dup', 'http', 'post', 't', '{}', 'k-1', 0)")
            except Exception as e:
                got["a"] = e

        t1 = threading.Thread(target=ingest)
        t1.start()
        store_pid = wait_for(lambda: _store_backend(admin, a.info.backend_pid, b.info.backend_pid),
                             "the store's ingest to wait for the lock of rule a")
        t2 = threading.Thread(target=duplicate)
        t2.start()
        wait_for(lambda: _waiting(admin, a.info.backend_pid), "the duplicate to wait for the store's event")
        b.rollback()   # the store takes rule a's lock, then waits for rule b's, which a holds: a cycle
        t2.join(30)
        assert not t2.is_alive() and "a" not in got, got   # the store's transaction was the victim
        a.rollback()
        t1.join(30)
        assert not t1.is_alive() and "error" not in got, got
    rec = got["rec"]
    assert (rec.event_id, rec.duplicate, len(rec.run_ids)) == ("ev-1", False, 2), rec
    assert len(pauses) == 1 and 0 <= pauses[0] <= 0.01, pauses
    with PgStore(pg_url) as st:
        assert [e["id"] for e in st.list_events()] == ["ev-1"]
        assert sorted(r["rule"] for r in st.list_runs()) == ["a", "b"]
        assert store_pid is not None


def test_a_serialization_failure_is_run_again_and_finds_the_concurrent_delivery(pg_url: str) -> None:
    """A real serialization failure (40001): on a database whose default isolation is
    serializable (ALTER DATABASE ... SET default_transaction_isolation), a delivery that
    waited for a concurrent duplicate (another node's, committed while it waited) cannot
    see it in its snapshot, and PostgreSQL aborts it. Before: the error went up as is, a
    500. Now the transaction is run again, sees the other delivery, and is a duplicate."""
    with _database_setting(pg_url, "default_transaction_isolation", "serializable") as st, \
            psycopg.connect(pg_url, autocommit=True) as admin, psycopg.connect(pg_url) as other:
        other.execute("INSERT INTO trg_events (id, source, type, time, data, delivery_key, received_at) "
                      "VALUES ('ev-other', 'http', 'post', 't', '{}', 'k-1', 0)")
        got: dict = {}

        def ingest() -> None:
            try:
                got["rec"] = st.ingest(Event("http", "post", {}, id="ev-1"), [Intent("q", "x", {})], "k-1")
            except Exception as e:
                got["error"] = e

        t = threading.Thread(target=ingest)
        t.start()
        wait_for(lambda: _store_backend(admin, other.info.backend_pid), "the store's delivery to wait for the other")
        other.commit()
        t.join(30)
        assert not t.is_alive() and "error" not in got, got
    assert (got["rec"].event_id, got["rec"].duplicate, got["rec"].run_ids) == ("ev-other", True, []), got


def test_a_transaction_aborted_every_time_answers_503_and_a_claim_aborted_twice_claims(tmp_path: Path, pg_url: str,
                                                                                        monkeypatch) -> None:
    """A delivery whose transaction PostgreSQL aborts (40P01) at every try gets 503 with
    Retry-After: 1 once the tries are spent (before: 500), over a real HTTP listener; a
    claim aborted twice (40001) claims its run at the third try (before: the error went up
    as is, and the worker logged a traceback). Triggers raise the errors: PostgreSQL's own
    SQLSTATEs through the driver, at a chosen time."""
    import asyncio
    import logging

    import httpx

    from triggerlang.sources.base import SourceContext, Submitted
    from triggerlang.sources.http import HttpSource

    pauses: list[float] = []
    monkeypatch.setattr(pgstore, "_pause", lambda s: pauses.append(s), raising=False)
    st = PgStore(pg_url)
    with psycopg.connect(pg_url, autocommit=True) as admin:
        admin.execute("""
CREATE SEQUENCE trg_test_fails;
CREATE FUNCTION trg_test_deadlock() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN RAISE EXCEPTION 'deadlock detected' USING ERRCODE = 'deadlock_detected'; END $$;
CREATE FUNCTION trg_test_twice() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF nextval('trg_test_fails') <= 2 THEN   -- (a sequence is not rolled back: counts the tries)
        RAISE EXCEPTION 'could not serialize access' USING ERRCODE = 'serialization_failure';
    END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER trg_test_events BEFORE INSERT ON trg_events FOR EACH ROW EXECUTE FUNCTION trg_test_deadlock();""")

        async def submit(event: Event, delivery_key: str | None = None) -> Submitted:
            rec = await asyncio.to_thread(st.ingest, event, [Intent("r", "x", {})], delivery_key)
            return Submitted(rec.event_id, rec.run_ids, duplicate=rec.duplicate)

        config = {"routes": [{"path": "/h", "kind": "http", "methods": ["POST"], "verify": None}]}

        async def deliver() -> httpx.Response:
            source = HttpSource(config, SourceContext(tmp_path, tmp_path, submit, options={"port": 0},
                                                      log=logging.getLogger("triggerlang.test")))
            await source.start()
            try:
                async with httpx.AsyncClient(base_url=source.url, timeout=30.0) as c:
                    return await c.post("/h", json={"n": 1})
            finally:
                await source.stop()

        r = asyncio.run(deliver())
        assert r.status_code == 503 and r.headers["Retry-After"] == "1", (r.status_code, r.headers, r.text)
        assert "try again later" in r.json()["error"], r.text
        assert len(pauses) == pgstore.TX_TRIES - 1, pauses
        assert st.list_events() == []
        admin.execute("DROP TRIGGER trg_test_events ON trg_events")
        st.ingest(Event("http", "post", {}), [Intent("r", "x", {})])
        admin.execute("CREATE TRIGGER trg_test_runs BEFORE UPDATE ON trg_runs FOR EACH ROW "
                      "EXECUTE FUNCTION trg_test_twice()")
        del pauses[:]
        claimed = st.claim("w", ["default"], 1, 10)
        assert [(c.rule, c.status) for c in claimed] == [("r", "running")] and len(pauses) == 2, (claimed, pauses)
    st.close()
