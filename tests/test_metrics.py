"""``GET /metrics`` of a real ``triggerc serve`` (SQLite journal) against a scripted scenario.

The values must say what happened (so many events, runs of each status, so many
deliveries refused) and the series must follow Prometheus' conventions: every rule's
series exist from the start at 0 (``increase()`` sees a rule's first failure; a queue
gauge that empties says 0 rather than vanishing), and no label value comes from what a
sender puts in a request (an unsigned GitHub route sent made-up ``X-GitHub-Event``
names). The store-independent checks live in tests/test_store_conformance.py.
"""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from runtime_helpers import Server, done, post, stop_ok, wait_for

RULES = r"""
action ok = exec "true"
action bad = shell "exit 2"
action nap = shell "sleep 30"
good: on http.post path="/good" run ok
broken: on http.post path="/bad" run bad
slow: on http.post path="/slow" run nap
gh: on github.push run ok
custom: on github.acme_deploy run ok
hooks: on http.post path ~ "/hooks/*" run ok
"""


def scrape(s: Server) -> dict[tuple[str, tuple], float]:
    from prometheus_client.parser import text_string_to_metric_families

    r = httpx.get(s.url + "/metrics", timeout=10)
    assert r.status_code == 200, r.text
    return {(x.name, tuple(sorted(x.labels.items()))): x.value
            for fam in text_string_to_metric_families(r.text) for x in fam.samples}


def labels(m: dict, name: str, label: str) -> set[str]:
    return {dict(k[1])[label] for k in m if k[0] == name}


@pytest.fixture
def serve(tmp_path: Path):
    rules = tmp_path / "rules.trg"
    rules.write_text(RULES)
    s = Server(rules, tmp_path / "state", "--grace", "0.5").start()  # (a `slow` run is going at the stop)
    try:
        yield s
    finally:
        s.ensure_dead()


def test_every_rule_has_its_series_at_zero_before_anything_happens(serve: Server) -> None:
    m = scrape(serve)
    for rule in ("good", "broken", "slow", "gh", "custom", "hooks"):
        for status in ("succeeded", "failed", "timed_out", "cancelled", "interrupted", "skipped"):
            assert m[("triggerlang_runs_total", (("rule", rule), ("status", status)))] == 0, (rule, status)
        assert m[("triggerlang_run_duration_seconds_count", (("rule", rule),))] == 0
        assert m[("triggerlang_run_queue_wait_seconds_count", (("rule", rule),))] == 0
        assert m[("triggerlang_runs_queued", (("rule", rule),))] == 0
        assert m[("triggerlang_runs_running", (("rule", rule),))] == 0
        assert m[("triggerlang_rule_paused", (("rule", rule),))] == 0
    assert "/healthz, /readyz, /events, /metrics\n" in serve.log(), serve.tail()  # the start says it is there
    stop_ok(serve)


def test_the_values_say_what_happened(serve: Server) -> None:
    s = serve
    for _ in range(3):
        assert post(s, "/good", {}).status_code == 202
    assert post(s, "/bad", {}).status_code == 202
    assert post(s, "/hooks/a", {}).status_code == 202
    assert post(s, "/hooks/b", {}).status_code == 202
    assert httpx.post(s.url + "/github", content=b"{not json", headers={"X-GitHub-Event": "push"}
                      ).status_code == 400
    assert post(s, "/nowhere", {}).status_code == 404
    slow = post(s, "/slow", {}).json()["runs"][0]
    s.wait_runs(lambda rs: done([r for r in rs if r["id"] != slow], 6)
                and any(r["id"] == slow and r["status"] == "running" for r in rs), "six runs done, one going")

    def counted() -> dict | None:
        m = scrape(s)
        return m if m[("triggerlang_runs_total", (("rule", "hooks"), ("status", "succeeded")))] == 2 \
            and m.get(("triggerlang_deliveries_total", (("route", "/github"), ("status", "400")))) == 1 else None

    m = wait_for(counted, "the runs and deliveries counted")
    assert m[("triggerlang_runs_total", (("rule", "good"), ("status", "succeeded")))] == 3
    assert m[("triggerlang_runs_total", (("rule", "good"), ("status", "failed")))] == 0
    assert m[("triggerlang_runs_total", (("rule", "broken"), ("status", "failed")))] == 1
    assert m[("triggerlang_run_duration_seconds_count", (("rule", "good"),))] == 3
    assert m[("triggerlang_events_total", (("source", "http"), ("type", "post")))] == 7
    assert m[("triggerlang_deliveries_total", (("route", "/good"), ("status", "202")))] == 3
    assert m[("triggerlang_deliveries_rejected_total", (("reason", "bad_request"), ("route", "/github")))] == 1
    # the declared route, not the request's path; a 404 names no route
    assert labels(m, "triggerlang_deliveries_total", "route") == {"/good", "/bad", "/hooks/*", "/slow",
                                                                         "/github"}
    assert m[("triggerlang_runs_running", (("rule", "slow"),))] == 1
    assert m[("triggerlang_runs_queued", (("rule", "good"),))] == 0
    assert m[("triggerlang_journal_commit_seconds_count", ())] == 7
    stop_ok(s)


def test_a_sender_cannot_make_label_values(serve: Server) -> None:
    """An unsigned GitHub route (TRG209) takes any X-GitHub-Event: the event is journaled,
    but its type is counted as 'other' unless the catalogue or a rule knows it."""
    s = serve
    for name in ("evil-1", "evil-2", "<script>", "push", "acme_deploy", "star"):
        r = post(s, "/github", {"ref": "refs/heads/main"}, headers={"X-GitHub-Event": name})
        assert r.status_code == 202, (name, r.text)
    m = wait_for(lambda: (lambda m: m if sum(v for k, v in m.items() if k[0] == "triggerlang_events_total") == 6
                          else None)(scrape(s)), "six events counted")
    assert labels(m, "triggerlang_events_total", "type") == {"push", "acme_deploy", "star",
                                                             "other"}
    assert m[("triggerlang_events_total", (("source", "github"), ("type", "other")))] == 3
    # emit (loopback) of a source nobody declared: journaled, counted under source="other"
    r = post(s, "/events", {"source": "madeup", "type": "thing", "data": {}})
    assert r.status_code == 202, r.text
    m = wait_for(lambda: (lambda m: m if m.get(("triggerlang_events_total", (("source", "other"),
                                                                              ("type", "other")))) == 1 else None)
                 (scrape(s)), "the made-up source counted")
    assert "madeup" not in labels(m, "triggerlang_events_total", "source")
    stop_ok(s)


def test_correlation_events_and_their_skipped_runs_are_counted(tmp_path: Path) -> None:
    """Before: the ``correlation.fired`` event a fire journals, and its run when it was
    decided ``skipped`` (here: the dedupe of the second fire for the same key), never
    reached the counters: triggerlang_events_total had no correlation series at all and
    the rule's skipped counter stayed at 0 while the journal held the skipped run."""
    rules = tmp_path / "rules.trg"
    rules.write_text('action ok = exec "true"\n'
                     'pair: on all(http.post path="/a" as a, http.post path="/b" as b) same <payload.k> within 10m\n'
                     '    run ok dedupe <payload.k> for 1h\n')
    s = Server(rules, tmp_path / "state").start()
    try:
        for path in ("/a", "/b", "/a", "/b"):
            assert post(s, path, {"k": "one"}).status_code == 202
        runs = s.wait_runs(lambda rs: done(rs, 2), "both fires' runs ended")
        assert sorted(r["status"] for r in runs) == ["skipped", "succeeded"]
        m = wait_for(lambda: (lambda m: m if m[("triggerlang_runs_total", (("rule", "pair"), ("status", "succeeded")))]
                              == 1 else None)(scrape(s)), "the fired run counted")
        assert m[("triggerlang_runs_total", (("rule", "pair"), ("status", "skipped")))] == 1
        assert m[("triggerlang_events_total", (("source", "correlation"), ("type", "fired")))] == 2
        assert m[("triggerlang_events_total", (("source", "http"), ("type", "post")))] == 4
        stop_ok(s)
    finally:
        s.ensure_dead()


def test_a_rerun_of_a_run_whose_action_left_the_rules_is_refused(tmp_path: Path) -> None:
    """Before: the re-run was accepted (run N re-run as run M) and ended 'failed' at once,
    "the action 'say' is not in the current rules". Now: 409 and why, nothing queued."""
    rules = tmp_path / "rules.trg"
    rules.write_text('action say = exec "true"\nhook: on http.post path="/say" run say\n')
    s = Server(rules, tmp_path / "state", "--dashboard", "--token", "tok").start()
    try:
        first = post(s, "/say", {}).json()["runs"][0]
        s.wait_runs(lambda rs: done(rs, 1), "the first run")
        rules.write_text('action say2 = exec "true"\nhook: on http.post path="/say" run say2\n')
        s.wait_log("reloaded")
        r = httpx.post(f"{s.url}/api/runs/{first}/rerun", headers={"Authorization": "Bearer tok"}, timeout=10)
        assert r.status_code == 409, r.text
        assert r.json()["error"] == f"the action say of run {first} is no longer in the rules (rule hook now runs say2)"
        assert len(s.runs()) == 1
        stop_ok(s)
    finally:
        s.ensure_dead()


def test_a_wrong_token_is_told_apart_from_none() -> None:
    """Before: a scrape with a wrong (stale) token was told "/metrics needs the token: send
    Authorization: Bearer <token>", as if it had sent none, where the dashboard says the
    token does not match; and ``?token=``, which works, was not named."""
    from starlette.applications import Starlette
    from starlette.testclient import TestClient

    from triggerlang.runtime.metrics import Metrics, metrics_route

    c = TestClient(Starlette(routes=[metrics_route(Metrics(), "t0ken")]))
    r = c.get("/metrics")
    assert r.status_code == 401 and r.json()["error"] == \
        "/metrics needs the token: send Authorization: Bearer <token> or add ?token=<token>"
    for wrong in ({"headers": {"Authorization": "Bearer stale"}}, {"params": {"token": "stale"}}):
        r = c.get("/metrics", **wrong)
        assert r.status_code == 401 and r.json()["error"].startswith("the token does not match"), wrong
    assert c.get("/metrics", params={"token": "t0ken"}).status_code == 200


def test_a_reload_unpauses_the_rule_paused_gauge_too() -> None:
    """A reload un-pauses every rule loop protection paused; the gauge said 1 until then."""
    from triggerlang.runtime.metrics import Metrics

    m = Metrics()
    manifest = {"rules": [{"name": "loop", "source": "file", "types": ["changed"]}]}
    m.load(manifest)
    m.paused("loop", True)
    assert m.registry.get_sample_value("triggerlang_rule_paused", {"rule": "loop"}) == 1
    m.load({"rules": []})  # the rule removed by the reload: 0, not a pause that never ends
    assert m.registry.get_sample_value("triggerlang_rule_paused", {"rule": "loop"}) == 0
    assert m.registry.get_sample_value("triggerlang_runs_total", {"rule": "loop", "status": "failed"}) == 0


def test_runs_a_crash_or_a_reload_ended_are_counted(tmp_path: Path) -> None:
    """Before: a run found running after a kill -9 (marked 'interrupted' at the next
    start), and a queued run whose action a reload removed (it ends 'failed' when its
    turn comes), were journaled final but never counted in triggerlang_runs_total."""
    rules = tmp_path / "rules.trg"
    gate = tmp_path / "go"
    rules.write_text(f'action hold = shell "sleep 30"\naction wait_go = shell "while [ ! -e {gate} ]; do sleep 0.05; done"\n'
                     'hold: on http.post path="/hold" run hold\n'
                     'q: on http.post path="/q" run wait_go busy queue\n')
    s = Server(rules, tmp_path / "state").start()
    try:
        held = post(s, "/hold", {}).json()["runs"][0]
        s.wait_runs(lambda rs: any(r["id"] == held and r["status"] == "running" for r in rs), "the run to start")
        s.kill9()
        s.start()
        m = scrape(s)
        assert m[("triggerlang_runs_total", (("rule", "hold"), ("status", "interrupted")))] == 1

        first = post(s, "/q", {}).json()["runs"][0]
        second = post(s, "/q", {}).json()["runs"][0]
        s.wait_runs(lambda rs: any(r["id"] == first and r["status"] == "running" for r in rs), "the first q run")
        rules.write_text('action hold = shell "sleep 30"\naction other = exec "true"\n'
                         'hold: on http.post path="/hold" run hold\n'
                         'q: on http.post path="/q" run other busy queue\n')
        s.wait_log("reloaded")
        assert {r["id"]: r["status"] for r in s.runs()}[second] == "queued"
        gate.write_text("")
        runs = s.wait_runs(lambda rs: done(rs, 3), "both q runs ended")
        assert {r["id"]: r["status"] for r in runs}[second] == "failed"
        m = wait_for(lambda: (lambda m: m if m[("triggerlang_runs_total", (("rule", "q"), ("status", "failed")))] == 1
                              else None)(scrape(s)), "the failed run counted")
        assert m[("triggerlang_runs_total", (("rule", "q"), ("status", "succeeded")))] == 1
        stop_ok(s)
    finally:
        s.ensure_dead()


def test_the_readme_table_lists_every_metric_with_its_labels() -> None:
    """README (Metrics) is what a user writes queries and alerts from: its table lists every
    metric a scrape gives, with the labels each has, and nothing else."""
    import re

    from triggerlang.runtime.metrics import Metrics

    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")
    section = readme.split("\n### Metrics\n", 1)[1].split("\n## ", 1)[0]
    documented = {name: set(filter(None, labels.split(","))) for row in re.findall(r"^\| (`triggerlang_.*?) \|", section, re.M)
                  for name, labels in re.findall(r"`(triggerlang_\w+)(?:\{([\w,]*)\})?`", row)}

    class Store:  # what serve's journal answers the scrape-time gauges with
        def run_counts(self) -> dict:
            return {}

        def correlation_stats(self) -> dict:
            return {"rules": {"r": {"open": 0}}}

    m = Metrics(Store())
    m.load({"rules": [{"name": "r", "source": "ci", "types": ["completed"]}]})
    m.journaled("ci", "completed", [("r", "queued")], too_deep=True)
    m.delivery("/ci", 202)
    m.delivery("/ci", 401)
    m.committed(0.001)
    exposed: dict[str, set[str]] = {}
    for name, labels in re.findall(r"^(triggerlang_\w+?)(?:_bucket|_count|_sum)?(?:\{(.*)\})? ", m.render().decode(), re.M):
        if not name.endswith("_created"):
            exposed.setdefault(name, set()).update(re.findall(r"(\w+)=", labels))
    for h in ("triggerlang_run_duration_seconds", "triggerlang_run_queue_wait_seconds",
              "triggerlang_journal_commit_seconds"):
        exposed[h] -= {"le"}  # the histograms' buckets
    assert exposed == documented
