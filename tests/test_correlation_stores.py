"""Correlation groups on both stores (SPEC §11.3, §12.2): the conformance suite's backends
(SQLite ``--state``, PostgreSQL ``--store URL`` with the embedded worker), real ``serve``
processes driven over HTTP, and the groups read back with ``triggerc groups``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx

from triggerlang.runtime.store import open_store

from runtime_helpers import DEADLINE, cli, done, wait_for
from store_harness import Backend
from test_store_conformance import backend, serve, stop_ok  # noqa: F401 (fixtures)

RULES = '''\
action note(k, n="") = exec "true"
gate: on all(http.post path="/hooks/build" as build, http.post path="/hooks/test" as test) same <query.k>
    within 2s run note with <query.k>, <group.count>
after_gate: on correlation.expired rule="gate" run note with <rule>
quiet: on absent(http.post path="/hooks/hb" as hb) same <query.k> for 1s run note with <query.k>
once: on any(http.post path="/hooks/gh" as gh, http.post path="/hooks/gl" as gl) same <query.k> within 1h
    run note with <query.k>
small: on all(http.post path="/hooks/a" as a, http.post path="/hooks/b" as b) same <query.k> within 1h max 1
    run note with <query.k>
'''


def post(server, path: str) -> httpx.Response:
    return httpx.post(server.url + path, timeout=DEADLINE)


def groups(server, backend: Backend, *args: str) -> list[dict[str, Any]]:   # noqa: F811
    where = ["--store", backend.url] if backend.kind == "postgresql" else ["--state", str(server.state)]
    r = cli("groups", *where, "--format", "json", "--limit", "100", *args)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


def test_groups_fire_expire_absorb_and_refuse_on_both_stores(serve, backend: Backend) -> None:  # noqa: F811
    s = serve(RULES)
    assert post(s, "/hooks/build?k=a").json()["runs"] == []
    r = post(s, "/hooks/test?k=a")
    assert r.status_code == 202 and len(r.json()["runs"]) == 1          # the fire's run, in the same commit
    assert post(s, "/hooks/build?k=b").json()["runs"] == []             # b expires after 2 s
    post(s, "/hooks/hb?k=h")                                             # h fires after 1 s of quiet
    assert len(post(s, "/hooks/gh?k=o").json()["runs"]) == 1            # any: fires at once
    assert post(s, "/hooks/gl?k=o").json()["runs"] == []                # ... and absorbs the rest
    post(s, "/hooks/a?k=1")
    post(s, "/hooks/a?k=2")                                              # max 1: refused
    runs = s.wait_runs(lambda rs: done(rs, 4), "the runs of the fires and of the expiry")
    got = sorted((r["rule"], r["inputs"].get("k")) for r in runs)
    assert got == [("after_gate", "gate"), ("gate", "a"), ("once", "o"), ("quiet", "h")], runs
    gate = {tuple(g["keys"]): g for g in groups(s, backend, "--rule", "gate")}
    assert gate[("a",)]["state"] == "fired" and gate[("a",)]["run_id"] is not None
    assert gate[("b",)]["state"] == "expired" and gate[("b",)]["missing"] == ["test"]
    gate_run = next(r for r in runs if r["rule"] == "gate")
    assert gate_run["inputs"]["n"] == 2 and gate_run["id"] == gate[("a",)]["run_id"]
    (q,) = groups(s, backend, "--rule", "quiet")
    assert q["state"] == "fired" and q["missing"] == ["hb"]     # an absence window: why it fired
    (o,) = groups(s, backend, "--rule", "once")                  # any: what came, nothing missing
    assert [(m["alias"], m.get("absorbed", False)) for m in o["members"]] == [("gh", False), ("gl", True)]
    assert (o["state"], o["missing"]) == ("fired", [])
    (small,) = groups(s, backend, "--rule", "small", "--status", "open")
    assert small["keys"] == ["1"]
    events = s.events()
    assert sorted(e["type"] for e in events if e["source"] == "correlation") == ["expired", "fired", "fired", "fired"]
    text = cli("groups", *(["--store", backend.url] if backend.kind == "postgresql" else ["--state", str(s.state)]))
    assert "refused openings (max open groups reached): small 1" in text.stderr
    # every delivery was taken by a correlation rule (a refused opening included), none by
    # an ordinary rule: "matched nothing" (the dashboard's filter, events --unmatched) lists none
    assert [e["matched"] for e in events if e["source"] == "http"] == [[]] * 8
    store = open_store(backend.url if backend.kind == "postgresql" else None, s.state)
    try:
        assert store.list_events(unmatched=True) == []
    finally:
        store.close()
    stop_ok(s)


def test_an_open_group_survives_kill_9_on_both_stores(serve, backend: Backend) -> None:  # noqa: F811
    s = serve(RULES.replace("within 2s", "within 1h"))
    post(s, "/hooks/build?k=z")
    s.kill9()
    s.start()
    r = post(s, "/hooks/test?k=z")
    assert len(r.json()["runs"]) == 1
    runs = s.wait_runs(lambda rs: done(rs, 1), "the gate's run")
    assert [(x["rule"], x["inputs"]["k"]) for x in runs] == [("gate", "z")]
    (g,) = groups(s, backend, "--rule", "gate")
    assert g["state"] == "fired" and [m["alias"] for m in g["members"]] == ["build", "test"]
    stop_ok(s)


def test_a_changed_rule_discards_its_groups_at_the_next_start(serve, backend: Backend, tmp_path: Path) -> None:  # noqa: F811
    s = serve(RULES.replace("within 2s", "within 1h"))
    post(s, "/hooks/build?k=x")
    post(s, "/hooks/a?k=y")
    stop_ok(s)
    s.rules.write_text(RULES.replace("within 2s", "within 2h"))     # gate changed; small did not
    s.start()
    wait_for(lambda: any(g["state"] == "discarded" for g in groups(s, backend, "--rule", "gate")),
             "the changed rule's group to be discarded")
    (g,) = groups(s, backend, "--rule", "gate")
    assert g["reason"] == "rule changed while serve was stopped"
    (kept,) = groups(s, backend, "--rule", "small")
    assert kept["state"] == "open"
    assert "gate: rule changed while serve was stopped, 1 open group(s) discarded" in s.log()
    stop_ok(s)


def pg_serve(tmp_path: Path, pg_url: str):
    """A serve of RULES (windows of 1h) on the PostgreSQL store, started: (backend, server)."""
    from store_harness import StoreServer

    pg = Backend("postgresql", pg_url)
    proj = tmp_path / "proj"
    proj.mkdir()
    (proj / "rules.trg").write_text(RULES.replace("within 2s", "within 1h"))
    return pg, StoreServer(pg, proj / "rules.trg", tmp_path / "state", log=tmp_path / "serve.log").start()


def test_a_renamed_rule_keeps_its_open_groups_at_a_reload_on_postgresql(tmp_path: Path, pg_url: str) -> None:
    # a renamed rule (a label changed; an unlabelled one a line added above moved) lost its
    # open groups, "rule removed"; here the carried group must also have the new rule's
    # member names (the aliases were known only after the engine wrote it: no run). The
    # SQLite journal's reload and restart: test_correlation_journal.py
    # The reload's transaction is aborted once as a deadlock's victim (a trigger raising
    # 40P01 at its first write of the groups' history), and run again from its start: the
    # same outcome (before, the try run again compared the new rules with themselves, and
    # the group was discarded, "rule removed")
    import psycopg

    pg, s = pg_serve(tmp_path, pg_url)
    try:
        post(s, "/hooks/build?k=x")
        with psycopg.connect(pg_url, autocommit=True) as admin:
            admin.execute("""
CREATE SEQUENCE trg_test_once;
CREATE FUNCTION trg_test_once() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF nextval('trg_test_once') = 1 THEN   -- (a sequence is not rolled back)
        RAISE EXCEPTION 'deadlock detected' USING ERRCODE = 'deadlock_detected';
    END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER trg_test_once BEFORE INSERT ON trg_corr_history FOR EACH ROW EXECUTE FUNCTION trg_test_once();""")
        s.rules.write_text(RULES.replace("within 2s", "within 1h").replace("gate:", "release:"))
        wait_for(lambda: "release: renamed from gate, 1 open group(s) carried over" in s.log(), "the reload")
        with psycopg.connect(pg_url, autocommit=True) as admin:
            assert admin.execute("SELECT last_value FROM trg_test_once").fetchone()[0] > 1   # (it was aborted once)
        assert len(post(s, "/hooks/test?k=x").json()["runs"]) == 1
        runs = s.wait_runs(lambda rs: done(rs, 1), "the fire")
        assert [(r["rule"], r["inputs"]["k"]) for r in runs] == [("release", "x")]
        (gone,) = groups(s, pg, "--rule", "gate")
        assert gone["state"] == "discarded" and gone["reason"].startswith("rule renamed release: the group goes on as ")
        stop_ok(s)
    finally:
        s.ensure_dead()


def test_prune_removes_closed_groups_and_keeps_what_open_groups_need(tmp_path: Path, pg_url: str) -> None:
    pg, s = pg_serve(tmp_path, pg_url)
    try:
        post(s, "/hooks/build?k=open")
        post(s, "/hooks/build?k=done")
        post(s, "/hooks/test?k=done")
        s.wait_runs(lambda rs: done(rs, 1), "the fired group's run")
        stop_ok(s)
    finally:
        s.ensure_dead()
    r = cli("store", "prune", "--store", pg_url, "--older-than", "0s")
    assert r.returncode == 0 and "1 closed correlation group(s)" in r.stdout, (r.stdout, r.stderr)
    (g,) = groups(s, pg)
    assert (g["keys"], g["state"]) == (["open"], "open")
    kept = {e["id"] for e in pg.events(tmp_path)}
    assert {m["event_id"] for m in g["members"]} <= kept
