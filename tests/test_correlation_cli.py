"""Correlations as users meet them in the CLI: ``triggerc match`` with a shared state and
clock (§11.5: ``time``, ``{"wait": ...}``, text and JSON, ``--explain``), and rule tests
with ``wait``, ``at``, ``expect open``/``expect expired`` and a timeline on failure (§11.6)."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from triggerlang.api import compile_text
from triggerlang.cli import main as cli
from triggerlang.testing import render_text, run_compiled

RULES = '''\
secret gh = env "GH_SECRET"
secret ci = env "CI_TOKEN"
source github secret=gh
source ci token=ci
action deploy(sha, stage="staging") = exec "./deploy.sh" sha stage
action notify(text, url="") = exec "./notify.sh" text url

deploy_gate: on all(
        github.check_suite conclusion="success" app="github-actions" as ci,
        github.workflow_run workflow="review" conclusion="success" as review,
    ) same <sha> within 2h
    run deploy with <sha>
docs: on seq(ci.completed pipeline="docs" as built, ci.completed pipeline="publish" as published) same <sha>
    within 1h run notify with "docs published", <published.url>
once: on any(github.push branch="main" as gh, ci.completed pipeline="mirror" as mirror) same <sha> within 1h
    run deploy with <sha>, "prod"
limited: on all(github.push branch="dev" as a, ci.completed pipeline="dev" as b) same <sha> within 1h max 1
    run notify with "dev"
stale: on absent(ci.completed pipeline="release" as release) after ci.completed pipeline="rc" as rc same <sha>
    within 30m
    run notify with "no release", <rc.url>
any_push: on github.push run notify with "push"
'''


def write(tmp: Path, name: str, text: str) -> str:
    p = tmp / name
    p.write_text(text, encoding="utf-8")
    return str(p)


def lines(*objs) -> str:
    return "".join(json.dumps(o) + "\n" for o in objs)


def ev(source: str, typ: str, time: str | None = None, **data) -> dict:
    out = {"source": source, "type": typ, "data": data}
    if time:
        out["time"] = time
    return out


def match(tmp: Path, events: str, *opts: str, name: str = "events.jsonl"):
    rules = write(tmp, "rules.trg", RULES)
    path = write(tmp, name, events)
    return CliRunner().invoke(cli, ["match", rules, path, *opts])


SUITE = "3f1d2c4b5a69e7f8"


def test_match_shares_one_state_across_lines_and_honours_time_and_waits(tmp_path: Path) -> None:
    r = match(tmp_path, lines(
        ev("github", "check_suite", "2024-01-01T00:00:00Z", conclusion="success", app="github-actions", sha=SUITE),
        {"wait": "10m"},
        ev("github", "workflow_run", None, workflow="review", conclusion="success", sha=SUITE),
        ev("github", "check_suite", "2024-01-01T00:20:00Z", conclusion="success", app="github-actions", sha="9a9a"),
        {"wait": "2h"},
    ))
    assert r.exit_code == 0, r.output
    assert r.output == (
        "(no match)\n"
        "  deploy_gate: opens group sha=3f1d2c4b… as ci (1/2, missing review, closes in 2h)\n"
        "(wait 10m: 2024-01-01T00:10:00.000Z)\n"
        "(no match)\n"
        "  deploy_gate: group sha=3f1d2c4b… complete with review (2/2): runs deploy -> ./deploy.sh "
        f"{SUITE} staging\n"
        f'      sha = "{SUITE}"\n'
        '      stage = "staging"\n'
        "(no match)\n"
        "  deploy_gate: opens group sha=9a9a as ci (1/2, missing review, closes in 2h)\n"
        "(wait 2h: 2024-01-01T02:20:00.000Z)\n"
        "  deploy_gate: group sha=9a9a expired (1/2, missing review)\n")


def test_match_json_reports_correlations(tmp_path: Path) -> None:
    r = match(tmp_path, lines(
        ev("github", "push", "2024-01-01T00:00:00Z", branch="main", sha="abc"),
        ev("ci", "completed", None, pipeline="mirror", sha="abc"),
        {"wait": "1h"},
    ), "--format", "json")
    assert r.exit_code == 0, r.output
    first, second, wait = (json.loads(x) for x in r.output.splitlines())
    assert [m["rule"] for m in first["matches"]] == ["any_push"]
    (c,) = first["correlations"]
    assert {k: c[k] for k in ("rule", "member", "keys", "action", "have", "missing")} == {
        "rule": "once", "member": "gh", "keys": ["abc"], "action": "fire", "have": ["gh"], "missing": ["mirror"]}
    assert c["run"]["argv"] == ["./deploy.sh", "abc", "prod"] and c["run"]["inputs"] == {"sha": "abc", "stage": "prod"}
    assert [(x["action"], x["member"]) for x in second["correlations"]] == [("absorb", "mirror")]
    assert wait["wait"] == "1h" and [x["action"] for x in wait["correlations"]] == ["close"]
    # README (Correlation triggers, Trying it) lists the fields and the run's: kept in step
    readme = (Path(__file__).parents[1] / "README.md").read_text()
    listed = re.search(r'"correlations": \[\{([^}]*)\}\]', readme).group(1)
    assert sorted(re.split(r",\s*", listed)) == sorted(c), listed
    run = re.search(r"`run` the fire's\s+`\{([^}]*)\}`", readme).group(1)
    assert sorted(re.split(r",\s*", run)) == sorted(c["run"]), run


def test_explain_gives_the_correlation_reasons(tmp_path: Path) -> None:
    r = match(tmp_path, lines(
        ev("github", "check_suite", "2024-01-01T00:00:00Z", conclusion="success", app="github-actions"),
        ev("ci", "completed", None, pipeline="publish", sha="s1"),
        ev("github", "push", None, branch="main", sha="s1"),
        ev("ci", "completed", None, pipeline="mirror", sha="s1"),
        ev("github", "push", None, branch="dev", sha="d1"),
        ev("github", "push", None, branch="dev", sha="d2"),
        ev("ci", "completed", None, pipeline="rc", sha="r1"),
        {"wait": "34m"},
        ev("ci", "completed", None, pipeline="release", sha="r1"),
    ), "--explain", "--format", "json")
    assert r.exit_code == 0, r.output
    out = [json.loads(x) for x in r.output.splitlines()]
    why = [{(e["rule"], e["member"]): e["text"] for e in o.get("correlation_explain", [])} for o in out]
    assert why[0][("deploy_gate", "ci")] == "not admitted: key <sha> missing"
    assert why[0][("deploy_gate", "review")].startswith(
        'no match: trigger github.workflow_run (line 10:9) failed: type was "check_suite"')
    assert why[3][("docs", "built")].startswith("no match: pipeline=\"docs\"")
    assert why[1][("docs", "published")] == "not admitted: out of order: seq waits for built"
    assert why[3][("once", "mirror")] == "absorbed: the group already fired and absorbs the rest of its window"
    assert why[5][("limited", "a")] == "not admitted: refused: rule has 1 open group (max)"
    assert why[8][("stale", "release")] == "not admitted: window closed 4m ago"
    stale = [c for c in out[7]["correlations"] if c["rule"] == "stale"]
    assert stale[0]["action"] == "fire" and stale[0]["run"]["inputs"] == {"text": "no release", "url": ""}  # (url's default: rc has no url)


def test_explain_text_names_rule_and_member(tmp_path: Path) -> None:
    r = match(tmp_path, lines(ev("ci", "completed", "2024-01-01T00:00:00Z", pipeline="publish", sha="s1")),
              "--explain")
    assert "  docs [published]: not admitted: out of order: seq waits for built\n" in r.output
    assert "  docs: ignores published: out of order: seq waits for built\n" in r.output
    assert '  stale [rc]: no match: pipeline="rc" (line 19:81) failed: pipeline was "publish"\n' in r.output


def test_time_going_backwards_is_an_error_line_and_exit_1(tmp_path: Path) -> None:
    r = match(tmp_path, lines(
        ev("github", "push", "2024-01-01T01:00:00Z", branch="main", sha="a"),
        ev("github", "push", "2024-01-01T00:59:59Z", branch="main", sha="b"),
        {"wait": "soon"},
        ev("github", "push", "yesterday", branch="main", sha="c"),
        ev("github", "push", None, branch="main", sha="d"),
    ))
    assert r.exit_code == 1
    out = r.output.splitlines()
    errors = [json.loads(x)["error"] for x in out if x.startswith("{")]
    assert len(errors) == 3
    assert "events.jsonl:2: time 2024-01-01T00:59:59.000Z is before the previous line's" in errors[0]
    assert "events.jsonl:3: a wait line is" in errors[1] and "events.jsonl:4: 'time' is not" in errors[2]
    assert out[-4:-2] == ["any_push", "  once: group sha=d fires with gh; it absorbs the rest of its window, "
                                      "closes in 1h: runs deploy -> ./deploy.sh d prod"]


def test_the_clock_stops_at_the_year_9000(tmp_path: Path) -> None:
    # past it, deadlines would not be dates any more: each such line is an error, not a traceback
    r = match(tmp_path, lines(
        ev("github", "push", "8999-12-31T22:00:00Z", branch="main", sha="a"),
        {"wait": "36500d"},
        {"wait": "36501d"},
        ev("github", "push", "9999-12-31T00:00:00Z", branch="main", sha="b"),
        {"wait": "1h"},
    ))
    assert r.exit_code == 1 and "Traceback" not in r.output
    errors = [json.loads(x)["error"].replace(str(tmp_path) + "/", "") for x in r.output.splitlines()
              if x.startswith("{")]
    assert errors == ["events.jsonl:2: this wait takes the clock past the year 9000",
                      "events.jsonl:3: a wait is at most 36500d (100 years)",
                      "events.jsonl:4: 'time' is past the year 9000: \"9999-12-31T00:00:00Z\""]
    assert "(wait 1h: 8999-12-31T23:00:00.000Z)" in r.output.splitlines()


def test_a_single_event_file_runs_against_empty_state(tmp_path: Path) -> None:
    r = match(tmp_path, json.dumps(ev("github", "check_suite", None, conclusion="success", app="github-actions",
                                      sha="abc")), name="event.json")
    assert r.exit_code == 0
    assert r.output == ("no rule matches this event\n"
                        "deploy_gate: opens group sha=abc as ci (1/2, missing review, closes in 2h)\n")


def test_match_of_a_raw_provider_payload_with_correlations(tmp_path: Path) -> None:
    rules = write(tmp_path, "rules.trg", RULES)
    payload = write(tmp_path, "push.json", json.dumps({"ref": "refs/heads/main", "after": "abc",
                                                        "repository": {"full_name": "me/app"}}))
    r = CliRunner().invoke(cli, ["match", rules, payload, "--github", "push", "--format", "json"])
    assert r.exit_code == 0, r.output
    out = json.loads(r.output)
    assert out["correlations"][0]["action"] == "fire" and out["matches"][0]["rule"] == "any_push"


# --------------------------------------------------------------------------- rule tests (§11.6)

TESTS = '''
test "both checks for one sha deploy it":
    given github.check_suite conclusion="success" app="github-actions" sha="3f1d"
    wait 10m
    expect open deploy_gate key "3f1d" missing review
    given github.workflow_run workflow="review" conclusion="success" sha="3f1d"
    expect deploy_gate with sha="3f1d", stage="staging"
    expect only deploy_gate

test "a group that misses its window expires without a run":
    given github.check_suite conclusion="success" app="github-actions" sha="9a9a"
    wait 2h
    expect expired deploy_gate key "9a9a" missing review
    expect none

test "each block sees what happened since the previous one":
    given github.push branch="main" sha="a"
    expect once with sha="a"
    expect any_push
    given ci.completed pipeline="mirror" sha="a"
    expect none
    at "2024-01-01T01:00:00Z"
    given github.push branch="main" sha="a"
    expect once
    at "2024-01-01T02:30:00+01:00"
    expect none

test "an absence fires at its deadline":
    given ci.completed pipeline="rc" sha="r1" url="u"
    wait 29m
    expect none
    wait 1m
    expect stale with url="u"
'''


def test_rule_tests_with_a_virtual_clock() -> None:
    c = compile_text(RULES + TESTS, "rules.trg", "/tmp")
    assert c.ok, [(d.code, d.span.start.line, d.message) for d in c.diagnostics]
    rep = run_compiled(c)
    assert [(r.name, [f.message for f in r.failures]) for r in rep.results] == [
        ("both checks for one sha deploy it", []), ("a group that misses its window expires without a run", []),
        ("each block sees what happened since the previous one", []), ("an absence fires at its deadline", [])]


FAILING = '''
test "a typo in the workflow name":
    given github.check_suite conclusion="success" app="github-actions" sha="3f1d"
    wait 10m
    given github.workflow_run workflow="reveiw" conclusion="success" sha="3f1d"
    expect deploy_gate
    expect open deploy_gate key "3f1d" missing nothing_yet
    wait 2h
    expect expired deploy_gate key "4f" missing review
'''


TIMELINE = (
    "  timeline of deploy_gate:\n"
    '    +0s    given github.check_suite conclusion="success" app="github-actions" sha="3f1d"\n'
    "             opens group sha=3f1d as ci (1/2, missing review, closes in 2h)\n"
    "    +10m   wait 10m\n"
    '    +10m   given github.workflow_run workflow="reveiw" conclusion="success" sha="3f1d"\n'
    '             review: no match: workflow="review" (line 10:29) failed: workflow was "reveiw"\n')


def test_a_failure_prints_the_groups_timeline() -> None:
    c = compile_text(RULES + FAILING.replace("missing nothing_yet", "missing ci"), "rules.trg", "/tmp")
    assert c.ok, [(d.code, d.message) for d in c.diagnostics]
    text = render_text([run_compiled(c)])
    fail = 'rules.trg:{}:5: FAIL test "a typo in the workflow name": '
    assert text == (
        fail.format(28) + "expected rule deploy_gate to match\n" + TIMELINE
        + fail.format(29) + 'expected an open group of deploy_gate with key "3f1d" missing ci\n'
        "  open: sha=3f1d (open), missing review\n" + TIMELINE
        + fail.format(31) + 'expected an expired group of deploy_gate with key "4f" missing review\n'
        "  expired: sha=3f1d, missing review\n" + TIMELINE
        + "    +2h10m wait 2h\n"
        "             group sha=3f1d expired (1/2, missing review) (at +2h)\n"
        "0 passed, 1 failed\n")


def test_expect_open_and_expired_are_checked() -> None:
    c = compile_text(RULES + FAILING, "rules.trg", "/tmp")
    assert [(d.code, d.span.start.line, d.message) for d in c.diagnostics] == [
        ("TRG603", 29, "'deploy_gate' has no member 'nothing_yet'")]
    c = compile_text(RULES + 'test "t":\n    wait 1h\n    expect open any_push\n'
                     '    expect expired deploy_gate key ("a", "b")\n', "rules.trg", "/tmp")
    assert [(d.code, d.span.start.line) for d in c.diagnostics] == [("TRG714", 25), ("TRG603", 26)]


def test_a_test_needs_an_expect_and_may_start_with_the_clock() -> None:
    c = compile_text(RULES + 'test "no expect":\n    wait 1h\n', "rules.trg", "/tmp")
    assert [(d.code, d.message) for d in c.diagnostics] == [("TRG603", "a test needs at least one expect")]


def test_triggerc_test_on_a_companion_with_correlations(tmp_path: Path) -> None:
    write(tmp_path, "rules.trg", RULES)
    write(tmp_path, "rules_test.trg", TESTS)
    r = CliRunner().invoke(cli, ["test", str(tmp_path / "rules.trg")])
    assert (r.exit_code, r.output) == (0, "4 passed, 0 failed\n")


# --------------------------------------------------------------------------- start-up

def _probe():
    from test_cli import HEAVY, PROBE   # (tests/ is on sys.path under pytest)

    return PROBE, [*HEAVY, "psycopg"]


@pytest.mark.parametrize("command", [["check"], ["compile"], ["fmt", "--check"], ["match", "EVENTS"], ["test"]])
def test_correlating_front_end_commands_stay_lean(tmp_path: Path, command: list) -> None:
    rules = write(tmp_path, "rules.trg", RULES + TESTS)
    events = write(tmp_path, "e.jsonl", lines(ev("github", "push", None, branch="main", sha="a"), {"wait": "2h"}))
    argv = [events if x == "EVENTS" else x for x in command]
    argv = [argv[0], rules, *argv[1:]] if command[0] == "match" else [*argv, rules]
    probe, heavy = _probe()
    r = subprocess.run([sys.executable, "-c", probe, *argv], input=json.dumps(heavy), capture_output=True, text=True,
                       timeout=60, cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    result = json.loads(r.stdout.strip().splitlines()[-1])
    assert result["exit"] in (0, 1) and result["heavy"] == [], result


def test_a_window_armed_during_a_wait_counts_from_when_it_opened(tmp_path: Path) -> None:
    """A `between` window opened at 02:30 Paris during a 20 h wait fires in 3h30m, at 06:00:
    the text counted from the end of the wait, so it said 'fires in 1h' for a window that
    had already fired (and 'closes in' for a slide-out from the wait's end)."""
    rules = write(tmp_path, "rules.trg", '''\
action page(text) = exec "./page.sh" text
nightly_missing: on absent(ci.completed pipeline="nightly" status="success")
    between cron "30 2 * * *" and cron "0 6 * * *" tz "Europe/Paris"
    run page with "no nightly"
''')
    events = write(tmp_path, "e.jsonl", lines(
        ev("ci", "completed", "2024-01-01T12:00:00+01:00", pipeline="other"),
        {"wait": "20h"},
    ))
    r = CliRunner().invoke(cli, ["match", rules, events])
    assert r.exit_code == 0, r.output
    assert "nightly_missing: arms the window (fires in 3h30m unless completed comes)" in r.output, r.output
    r = CliRunner().invoke(cli, ["match", rules, events, "--format", "json"])
    texts = [c["text"] for c in json.loads(r.output.splitlines()[-1])["correlations"]]
    assert any("fires in 3h30m" in t for t in texts), texts


NIGHTLY = '''\
action page(text) = exec "./page.sh" text
nightly_missing: on absent(ci.completed pipeline="nightly" status="success")
    between cron "30 2 * * *" and cron "0 6 * * *" tz "Europe/Paris"
    run page with "no nightly"
'''


def test_an_unexpected_fire_prints_the_timeline_too() -> None:
    """`expect not RULE` / `expect none` on a correlation rule that fired: the failure
    showed only the run, not why the absence fired (here the awaited event's typo)."""
    text = NIGHTLY + '''
test "a success inside the window disarms it":
    at "2024-01-01T04:00:00+01:00"
    given ci.completed pipeline="nightly" status="succes"
    at "2024-01-01T06:30:00+01:00"
    expect not nightly_missing

test "nothing runs":
    at "2024-01-01T04:00:00+01:00"
    given ci.completed pipeline="nightly" status="succes"
    at "2024-01-01T06:30:00+01:00"
    expect none
'''
    c = compile_text(text, "rules.trg", "/tmp")
    assert c.ok, [(d.code, d.message) for d in c.diagnostics]
    out = render_text([run_compiled(c)])
    assert out.count("timeline of nightly_missing:") == 2, out
    assert out.count('completed: no match: status="success" (line 2:60) failed: status was "succes"') == 2, out


def test_a_long_wait_over_many_windows_prints_the_ends_of_its_timeline_and_counts_the_runs() -> None:
    """A month's wait over a daily window printed its 60 steps under each failure, and
    `expect none` showed one run of the 30 as if it were the only one."""
    text = NIGHTLY + '''
test "a month":
    wait 30d
    expect none
    wait 3d
    expect not nightly_missing
'''
    c = compile_text(text, "rules.trg", "/tmp")
    assert c.ok, [(d.code, d.message) for d in c.diagnostics]
    out = render_text([run_compiled(c)])
    assert "  nightly_missing (30 runs, the first): it runs page with text=\"no nightly\"\n" in out, out
    assert "             ... 52 more (+2d1h to +27d5h)\n" in out, out
    assert "the window closed without completed: fires (at +29d5h)\n" in out, out
    assert "  3 runs, the first: it runs page with" in out, out
    assert "(at +31d1h)" in out and len(out.splitlines()) < 40, out   # 3 days: 6 lines, all shown


def test_keys_of_different_types_print_apart(tmp_path: Path) -> None:
    """Before: the number 1 and the string "1" (two groups: an untyped key is compared as
    JSON, TRG706) both printed ``k=1``. A string that reads as another value is quoted."""
    rules = write(tmp_path, "rules.trg", 'action d = exec "true"\n'
                  'gate: on all(http.post path="/a" as a, http.post path="/b" as b) same <payload.k> within 1h run d\n')
    path = write(tmp_path, "e.jsonl", lines(
        ev("http", "post", "2024-01-01T00:00:00Z", path="/a", payload={"k": 1}),
        ev("http", "post", None, path="/a", payload={"k": "1"}),
        ev("http", "post", None, path="/a", payload={"k": "true"}),
        ev("http", "post", None, path="/a", payload={"k": "main"}),
        ev("http", "post", None, path="/b", payload={"k": "1"}),
    ))
    r = CliRunner().invoke(cli, ["match", rules, path, "--explain"])
    assert r.exit_code == 0, r.output
    assert "  gate: opens group k=1 as a (1/2, missing b, closes in 1h)\n" in r.output
    assert '  gate: opens group k="1" as a (1/2, missing b, closes in 1h)\n' in r.output
    assert '  gate: opens group k="true" as a' in r.output
    assert "  gate: opens group k=main as a" in r.output
    assert '  gate [b]: admitted: group k="1" complete with b (2/2)\n' in r.output
