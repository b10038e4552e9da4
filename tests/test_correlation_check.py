"""Correlation triggers in the front end (SPEC §11.1, §11.2, §11.5): parsing, the checks
that need more than a case file (messages, hints that name the other members, keys typed
across sources), formatting the §11.8 layout, and the manifest."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from triggerlang.api import compile_text
from triggerlang.check.correlation import between_overlap
from triggerlang.compile.manifest import dumps
from triggerlang.fmt import by_name, format_text
from triggerlang.syntax import ast as A
from triggerlang.syntax.parser import parse

ACTIONS = '''\
secret gh = env "GH_SECRET"
secret gl = env "GL_TOKEN"
secret ci = env "CI_TOKEN"
secret hook = env "HOOK_TOKEN"
source github secret=gh
source gitlab token=gl
source ci token=ci
source http path="/hooks/*" token=hook
action deploy(sha, stage="staging") = exec "./deploy.sh" sha stage
action notify(text, pipeline="", url="") = exec "./notify.sh" text pipeline url
action page(text, host="") = exec "./page.sh" text host
action publish_docs(sha) = exec "./publish.sh" sha
action promote(sha) = exec "./promote.sh" sha
'''

RELEASE_GATE = '''\
release_gate: on all(
        github.workflow_run workflow="build" conclusion="success" branch="main" as build,
        github.workflow_run workflow="test" conclusion="success" branch="main" as test,
        github.workflow_run workflow="e2e" conclusion="success" branch="main" as e2e,
    ) same <sha> within 2h
    run deploy with <sha>, "staging" dedupe <sha> for 7d
'''


def compiled(text: str):
    return compile_text(text, "rules.trg", "/tmp")


UNUSED = ("TRG107", "TRG108")   # the shared preamble declares more than each test uses


def diags(text: str) -> list[tuple]:
    return [(d.code, d.span.start.line, d.span.start.column, d.message, d.hint) for d in compiled(text).diagnostics
            if d.code not in UNUSED]


def clean(text: str) -> dict:
    c = compiled(text)
    shown = [(d.code, d.span.start.line, d.message) for d in c.diagnostics if d.code not in UNUSED]
    assert not shown, shown
    return c.manifest


# --------------------------------------------------------------------------- syntax

def test_the_tree_of_a_correlation_rule() -> None:
    (rule,) = parse(RELEASE_GATE)[0].decls
    t = rule.trigger
    assert isinstance(t, A.Group) and t.kind == "all" and len(t.items) == 3 and t.trailing_comma
    assert [m.alias.value for m in t.items] == ["build", "test", "e2e"]
    assert t.same[0].path.parts == ("sha",) and t.within.text == "2h" and t.max is None
    assert rule.filter is None and rule.action.value == "deploy"


def test_soft_keywords_stay_names_where_the_grammar_expects_no_keyword() -> None:
    text = ACTIONS + '''\
let max = 10m
action k(key, as, same) = exec "./k.sh" key as same
on http.post path="/hooks/k" query.max="1" payload.key="2" and key="3" run k with <query.within>, <payload.for>, <headers.max>
on all(http.post path="/hooks/a" query.as="x" as key, http.post path="/hooks/b" and max="y" as same) within max
    run k with <key.query.as>, "b", "c"
'''
    module, d = parse(text)
    assert not d.items, [x.message for x in d]
    rules = [x for x in module.decls if isinstance(x, A.Rule)]
    assert [c.field.dotted for c in rules[0].filter.items] == ["path", "query.max", "payload.key", "key"]
    assert [m.alias.value for m in rules[1].trigger.items] == ["key", "same"]
    # and the formatter writes `and` where a juxtaposed condition starts with such a field
    out, _ = format_text(text)
    assert 'payload.key="2" and key="3"' in out and 'path="/hooks/b" and max="y" as same' in out
    assert by_name(parse(out)[0]) == by_name(module)


# --------------------------------------------------------------------------- checks

def test_key_types_are_checked_across_sources_with_both_places_named() -> None:
    text = ACTIONS + '''\
on all(github.pull_request action="closed" merged=true as pr,
       http.post path="/hooks/jira" as ticket key <query.pr>) same <number> within 1d
    run notify with text="x"
'''
    ((code, line, col, msg, hint),) = diags(text)
    assert (code, line, col) == ("TRG704", 15, 51)
    assert msg == "correlation key 1 is str in `ticket` but int in `pr`"
    assert hint == "query.pr is str; `pr` (14:8) keys on <number> (15:68), an int"
    (d,) = [x for x in compiled(text).diagnostics if x.code == "TRG704"]   # related locations (SARIF, LSP)
    assert [(sp.start.line, sp.start.column, note) for sp, note in d.related] == [
        (14, 8, "`pr`"), (15, 68, "<number> is an int in `pr`")]


def test_key_types_match_across_sources() -> None:
    m = clean(ACTIONS + '''\
on all(github.pull_request action="closed" merged=true as pr,
       gitlab.merge_request action="merge" as mr) same <number> within 1d
    run notify with text="merged twice"
on all(github.workflow_run conclusion="success" as gh,
       ci.completed status="success" as any_ci,
       http.post path="/hooks/x" as hook key <query.sha>) same <sha> within 1h
    run deploy with <sha>
''')
    t0, t1 = (r["trigger"] for r in m["rules"])
    assert t0["key_types"] == ["int"] and t1["key_types"] == ["str"]
    assert [x["keys"] for x in t1["members"]] == [["sha"], ["sha"], ["query.sha"]]


def test_an_alias_defaults_to_the_event_name() -> None:
    m = clean(ACTIONS + '''\
on all(github.push branch="main", gitlab.pipeline status="success") same <sha> within 1h
    run deploy with <push.sha>, <pipeline.branch>
''')
    assert [x["alias"] for x in m["rules"][0]["trigger"]["members"]] == ["push", "pipeline"]


def test_a_key_a_member_lacks_names_the_member_and_the_key() -> None:
    ((code, line, col, msg, hint),) = diags(ACTIONS + '''\
on all(git.push as p, file.modified as f) same <sha> within 1h run deploy with <sha>
''')
    assert (code, line, col, msg) == ("TRG703", 14, 23, "file.modified has no field 'sha'")
    assert "the key is same <sha> (14:48)" in hint and "key <FIELD>" in hint


def test_overlapping_members_name_each_other() -> None:
    ((code, line, col, msg, hint),) = diags(ACTIONS + '''\
on all(ci.completed status="success" as a, ci.completed pipeline="e2e" as b) same <sha> within 1h
    run deploy with <sha>
''')
    assert (code, col) == ("TRG710", 44) and "`a` and `b`" in msg and "`a` is at (14:8)" in hint


def test_placeholders_bind_members_keys_and_the_group() -> None:
    m = clean(ACTIONS + '''\
on all(git.push as p, git.tag as t) same <sha> within 1h
    run notify with <sha>, <p.branch>, <group.opened_at> dedupe <t.tag> for 1d
on 3 of ci.completed status="failure" as fail same <pipeline> within 10m
    run notify with <group.first.url>, <pipeline>, <fail.url>
''')
    a, b = m["rules"]
    assert a["args"] == {"text": {"key": 0}, "pipeline": {"member": "p", "field": "branch"},
                         "url": {"group": "opened_at"}}
    assert a["policies"]["dedupe"] == {"field": "t.tag", "for": 86400.0, "binding": {"member": "t", "field": "tag"}}
    assert b["args"]["text"] == {"group": "first", "field": "url"}


def test_between_windows_are_checked_over_a_year_with_dst() -> None:
    import datetime as dt

    jan = dt.datetime(2027, 1, 1, tzinfo=dt.timezone.utc)
    assert between_overlap("30 2 * * *", "0 6 * * *", "Europe/Paris", jan) is None   # 02:30 twice in October: once
    a, b, nxt = between_overlap("0 * * * *", "0 6 * * *", "UTC", jan)
    assert (a.hour, b.hour, nxt.hour) == (1, 6, 2)
    # 02:30 does not exist on the spring-forward day: that window opens at 03:00 and would close the next day
    a, b, nxt = between_overlap("30 2 * * *", "0 3 * * *", "Europe/Paris", jan)
    assert (a.month, a.day, a.hour) == (3, 28, 3)


# --------------------------------------------------------------------------- the manifest

def test_the_manifest_entry_of_a_correlation_rule() -> None:
    m = clean(ACTIONS + RELEASE_GATE)
    (r,) = m["rules"]
    t = r["trigger"]
    assert (r["source"], r["types"], r["filter"], r["sources"]) == (None, [], None, ["github"])
    assert set(t) == {"kind", "n", "members", "items", "same", "key_types", "within", "window", "anchor", "keys_in",
                      "max", "fingerprint"}
    assert (t["kind"], t["n"], t["items"], t["same"], t["key_types"], t["within"], t["max"]) == (
        "all", None, [0, 1, 2], ["sha"], ["str"], 7200.0, 10000)
    assert t["members"][0]["filter"]["op"] == "and" and t["members"][1]["trigger"] == "github.workflow_run"
    assert m["sources"]["http"]["routes"][0]["path"] == "/github"   # the members' source starts
    assert r["args"] == {"sha": {"key": 0}, "stage": {"value": "staging"}}


def test_sources_are_the_union_of_the_members_sources() -> None:
    m = clean(ACTIONS + '''\
on seq(file.modified path ~ "docs/**/*.md" as edit, git.push branch="main" as push) within 5m
    run publish_docs with <push.sha>
on any(github.push branch="main" as gh, gitlab.push branch="main" as gl) same <sha> within 1h
    run deploy with <sha>, "prod"
on absent(http.post path="/hooks/heartbeat" as hb) same <query.host> for 5m run page with "silent", <query.host>
''')
    assert set(m["sources"]) == {"file", "git", "http"}
    assert m["sources"]["file"]["roots"] == ["docs"] and m["sources"]["git"]["repos"] == [{"repo": ".", "path": "."}]
    assert sorted(x["path"] for x in m["sources"]["http"]["routes"]) == ["/github", "/gitlab", "/hooks/heartbeat"]
    assert m["rules"][2]["trigger"]["window"] == {"kind": "for", "seconds": 300.0}


def test_nested_groups_and_absence_in_the_manifest() -> None:
    m = clean(ACTIONS + '''\
on seq(run.completed rule="export_init" as init, all(run.completed rule="a" as a, run.completed rule="b" as b))
    same <event_id> within 1h run notify with "exported"
on absent(github.pull_request_review as review) after github.pull_request action="opened" as pr same <repo>
    within 1d run notify with "waiting", url=<pr.url>
on absent(ci.completed pipeline="nightly" status="success") same <branch> in ["main", "next"]
    between cron "30 2 * * *" and cron "0 6 * * *" tz "Europe/Paris" run page with "nightly"
''')
    s, a, b = (r["trigger"] for r in m["rules"])
    assert s["items"] == [0, {"kind": "all", "n": None, "items": [1, 2]}] and s["key_types"] == ["str"]
    assert (a["kind"], a["anchor"], a["window"], a["within"]) == ("absent", 1, {"kind": "within", "seconds": 86400.0},
                                                                   86400.0)
    assert [x["role"] for x in a["members"]] == ["absent", "anchor"]
    assert b["window"] == {"kind": "between", "start": "30 2 * * *", "end": "0 6 * * *", "tz": "Europe/Paris"}
    assert b["keys_in"] == [["main"], ["next"]]


def test_the_fingerprint_ignores_spans_max_action_and_policies_but_not_filters() -> None:
    def fp(text: str) -> str:
        return clean(ACTIONS + text)["rules"][0]["trigger"]["fingerprint"]

    base = fp(RELEASE_GATE)
    assert fp("# a comment moves every span\n\n" + RELEASE_GATE) == base
    assert fp(RELEASE_GATE.replace("within 2h", "within 2h max 50").replace("7d", "1d")) == base
    assert fp(RELEASE_GATE.replace('"staging"', '"prod"')) == base
    assert fp(RELEASE_GATE.replace('workflow="e2e"', 'workflow="e2e-full"')) != base
    assert fp(RELEASE_GATE.replace("within 2h", "within 3h")) != base
    assert fp(RELEASE_GATE.replace("as e2e", "as end")) != base


def test_compiling_twice_gives_the_same_bytes_across_hash_seeds(tmp_path: Path) -> None:
    f = tmp_path / "rules.trg"
    f.write_text(ACTIONS + RELEASE_GATE + '''\
on 2 of (ci.completed pipeline="smoke-eu" status="success" as eu, ci.completed pipeline="smoke-us" status="success" as us,
         ci.completed pipeline="smoke-ap" status="success" as ap) same <sha> within 45m run promote with <sha>
''')
    outs = set()
    for seed in ("1", "2", "3"):
        r = subprocess.run([sys.executable, "-m", "triggerlang.cli", "compile", str(f)], capture_output=True,
                           text=True, env={"PYTHONHASHSEED": seed, "TRIGGERLANG_CACHE_DIR": "off",
                                           "PATH": "/usr/bin:/bin"}, cwd=tmp_path)
        assert r.returncode == 0, r.stderr
        outs.add(r.stdout)
    assert len(outs) == 1
    assert json.loads(outs.pop())["rules"][1]["trigger"]["kind"] == "n_of"


# --------------------------------------------------------------------------- the formatter

def test_the_worked_examples_layout() -> None:
    text = ACTIONS + '''\
release_gate: on all(github.workflow_run workflow="build" conclusion="success" branch="main" as build, github.workflow_run workflow="test" conclusion="success" branch="main" as test) same <sha> within 2h run deploy with <sha>, "staging" dedupe <sha> for 7d
stale_pr: on absent(github.pull_request_review as review) after github.pull_request action="opened" draft=false as pr same <number> within 1d run notify with text="PR waiting for review", url=<pr.url>
host_silent: on absent(http.post path="/hooks/heartbeat" as hb) same <query.host> for 5m
    run page with text="no heartbeat for 5 minutes", host=<query.host>
gate: on any(git.push as a, git.tag as b) same <sha> within 1h run deploy with <sha>
'''
    out, _ = format_text(text)
    body = out[len(ACTIONS):]
    assert body == '''\
release_gate: on all(
        github.workflow_run workflow="build" conclusion="success" branch="main" as build,
        github.workflow_run workflow="test" conclusion="success" branch="main" as test,
    ) same <sha> within 2h
    run deploy with <sha>, "staging" dedupe <sha> for 7d
stale_pr: on absent(github.pull_request_review as review)
    after github.pull_request action="opened" draft=false as pr
    same <number> within 1d
    run notify with text="PR waiting for review", url=<pr.url>
host_silent: on absent(http.post path="/hooks/heartbeat" as hb) same <query.host> for 5m
    run page with text="no heartbeat for 5 minutes", host=<query.host>
gate: on any(git.push as a, git.tag as b) same <sha> within 1h run deploy with <sha>
'''
    assert format_text(out)[0] == out and parse(out)[0] == parse(text)[0]


def test_a_trailing_comma_keeps_the_members_one_per_line() -> None:
    text = 'action d = shell "x"\non any(git.push as a, git.tag as b,) within 1h run d\n'
    assert format_text(text)[0] == ('action d = shell "x"\non any(\n        git.push as a,\n        git.tag as b,\n'
                                    '    ) within 1h\n    run d\n')


def test_test_steps_are_formatted_one_per_line() -> None:
    text = ('test "t":  given git.push sha="a"  wait   10m at "2024-01-01T01:00:00Z"\n'
            '  expect open gate key ("a",) missing t   expect expired gate key 1 expect none\n')
    assert format_text(text)[0] == ('test "t":\n    given git.push sha="a"\n    wait 10m\n'
                                    '    at "2024-01-01T01:00:00Z"\n    expect open gate key "a" missing t\n'
                                    '    expect expired gate key 1\n    expect none\n')
