"""The correlation engine (SPEC §11.3, §11.4) over the in-memory state, with the clock passed
in: admission, latest wins, windows, fire and consume, ``any`` absorbing, expiry, ``seq``
order (nested steps too), ``N of m`` sliding, the three absences, bounds with refusal,
reload by fingerprint, start after a downtime, and what a run gets."""

from __future__ import annotations

import json

import pytest

from triggerlang.api import compile_text
from triggerlang.correlation.clock import TEST_EPOCH as T0
from triggerlang.correlation.clock import iso, parse_time
from triggerlang.correlation.engine import Correlator
from triggerlang.correlation.sim import Simulation
from triggerlang.correlation.spec import is_correlation
from triggerlang.correlation.state import MemoryState
from triggerlang.events import Event

M = 60.0
H = 3600.0

HEAD = '''\
action d(a="", b="", c="", e="", f="") = exec "./d.sh" a b c e f
'''


def manifest(text: str) -> dict:
    c = compile_text(HEAD + text, "rules.trg", "/tmp")
    errors = [(d.code, d.span.start.line, d.message) for d in c.diagnostics if d.is_error]
    assert not errors, errors
    return c.manifest


def sim(text: str, **kw) -> Simulation:
    m = manifest(text)
    return Simulation(m["rules"], m["actions"], kw.pop("start", T0), **kw)


def push(sha="s1", **data) -> Event:
    return Event("git", "push", {"sha": sha, "branch": "main", **data})


def tag(sha="s1", **data) -> Event:
    return Event("git", "tag", {"sha": sha, "tag": "v1", **data})


def merge(sha="s1", **data) -> Event:
    return Event("git", "merge", {"sha": sha, "branch": "main", **data})


def acts(step) -> list[tuple]:
    return [(o.rule, o.action, o.member) for o in step.outcomes]


def runs(step) -> list[tuple]:
    return [(r.rule, r.inputs) for r in step.runs]


ALL = 'gate: on all(git.push as p, git.tag as t, git.merge as m) same <sha> within 1h run d with <sha>\n'


# --------------------------------------------------------------------------- all / admission

def test_all_opens_admits_and_fires_once_per_group_then_consumes() -> None:
    s = sim(ALL)
    assert acts(s.deliver([push()])) == [("gate", "open", "p")]
    assert acts(s.deliver([tag()], T0 + 10 * M)) == [("gate", "admit", "t")]
    step = s.deliver([merge()], T0 + 20 * M)
    assert acts(step) == [("gate", "fire", "m")] and runs(step) == [("gate", {"a": "s1", "b": "", "c": "", "e": "",
                                                                              "f": ""})]
    fired = step.outcomes[0].emitted
    assert (fired.source, fired.type, fired.data["keys"], fired.data["members"], fired.data["missing"]) == (
        "correlation", "fired", ['"s1"'], ["p", "t", "m"], [])
    assert acts(s.deliver([push()], T0 + 21 * M)) == [("gate", "open", "p")]   # consumed: a new group


def test_latest_wins_and_a_replacement_never_moves_the_window() -> None:
    s = sim(ALL)
    s.deliver([push(author="first")])
    step = s.deliver([push(author="second")], T0 + 50 * M)
    assert acts(step) == [("gate", "replace", "p")] and step.outcomes[0].deadline == T0 + H
    s.deliver([tag()], T0 + 55 * M)
    exp = s.advance(T0 + H)            # the window is [opened, opened + 1h): closed at the hour
    assert acts(exp) == [("gate", "expire", None)]
    assert exp.outcomes[0].missing == ["m"] and exp.outcomes[0].emitted.type == "expired"
    hist = [h["action"] for h in s.state.history[exp.outcomes[0].group]]
    assert hist == ["open", "replace", "admit", "expire"]


def test_an_event_at_the_deadline_is_outside_the_window() -> None:
    s = sim(ALL)
    s.deliver([push()])
    s.deliver([tag()], T0 + 30 * M)
    step = s.deliver([merge()], T0 + H)
    assert acts(step) == [("gate", "expire", None), ("gate", "open", "m")]


def test_keys_make_groups_and_a_missing_or_non_scalar_key_is_not_admitted() -> None:
    s = sim(ALL)
    s.deliver([push("a"), push("b")])
    assert sorted(g.key for g in s.state.live_groups("gate")) == [('"a"',), ('"b"',)]
    for ev, why in ((Event("git", "tag", {"tag": "v1"}), "key <sha> missing"),
                    (Event("git", "tag", {"sha": None}), "key <sha> missing"),
                    (Event("git", "tag", {"sha": ["a"]}), "key <sha> is not a single value")):
        (o,) = s.deliver([ev]).outcomes
        assert (o.action, o.reason) == ("ignore", why)


def test_keys_compare_as_json_scalars_without_coercion() -> None:
    s = sim('on all(http.post path="/a" as a, http.post path="/b" as b) same <payload.n> within 1h run d\n')
    s.deliver([Event("http", "post", {"path": "/a", "payload": {"n": 42}})])
    step = s.deliver([Event("http", "post", {"path": "/b", "payload": {"n": "42"}})])
    assert acts(step) == [("L2", "open", "b")]       # "42" is not 42
    assert acts(s.deliver([Event("http", "post", {"path": "/b", "payload": {"n": 42}})])) == [("L2", "fire", "b")]


def test_an_event_fills_the_first_empty_matching_member_else_replaces_the_first() -> None:
    s = sim('on all(git.push as a, git.push branch="main" as b) same <sha> within 1h run d\n')
    assert acts(s.deliver([push()])) == [("L2", "open", "a")]
    assert acts(s.deliver([push()])) == [("L2", "fire", "b")]
    s.deliver([push(branch="dev")])
    step = s.deliver([push(branch="dev")])           # b does not match: a is replaced
    assert acts(step) == [("L2", "replace", "a")] and step.outcomes[0].matched == ["a"]


def test_members_of_different_sources_with_their_own_keys() -> None:
    s = sim('on all(git.push as p, http.post path="/hooks/t" as t key <query.sha>) same <sha> within 1h\n'
            '    run d with <p.branch>, <t.query.sha>, <sha>\n')
    s.deliver([push("abc")])
    step = s.deliver([Event("http", "post", {"path": "/hooks/t", "query": {"sha": "abc"}})])
    assert runs(step) == [("L2", {"a": "main", "b": "abc", "c": "abc", "e": "", "f": ""})]


# --------------------------------------------------------------------------- any / N of

def test_any_fires_on_the_first_event_and_absorbs_the_rest_of_its_window() -> None:
    s = sim('once: on any(git.push as gh, git.tag as gl) same <sha> within 1h run d with <sha>\n')
    step = s.deliver([push()])
    assert acts(step) == [("once", "fire", "gh")] and len(step.runs) == 1
    assert acts(s.deliver([tag()], T0 + 10 * M)) == [("once", "absorb", "gl")]
    assert acts(s.deliver([push()], T0 + 20 * M)) == [("once", "absorb", "gh")]
    assert acts(s.advance(T0 + H)) == [("once", "close", None)]
    assert acts(s.deliver([tag()], T0 + H)) == [("once", "fire", "gl")]


def test_any_without_a_window_fires_on_every_event() -> None:
    s = sim('both: on any(git.push as a, git.tag as b) run d with <group.key>, <a.branch>, <b.tag>\n')
    # (a missing member's field: the parameter's default, "")
    assert runs(s.deliver([push()])) == [("both", {"a": "", "b": "main", "c": "", "e": "", "f": ""})]
    assert runs(s.deliver([tag()])) == [("both", {"a": "", "b": "", "c": "v1", "e": "", "f": ""})]
    assert s.state.open_total() == 0


def test_n_of_fires_at_n_distinct_members() -> None:
    s = sim('two: on 2 of (git.push as a, git.tag as b, git.merge as c) same <sha> within 1h run d with <group.missing>\n')
    s.deliver([push()])
    assert acts(s.deliver([push()])) == [("two", "replace", "a")]
    step = s.deliver([merge()])
    assert acts(step) == [("two", "fire", "c")] and step.runs[0].inputs["a"] == ["b"]


# --------------------------------------------------------------------------- seq

SEQ = 'docs: on seq(file.modified path ~ "docs/**" as edit, git.push branch="main" as push) within 5m run d with <push.sha>\n'


def edit(path="docs/a.md") -> Event:
    return Event("file", "modified", {"path": path})


def test_seq_admits_in_written_order_only() -> None:
    s = sim(SEQ)
    (o,) = s.deliver([push()]).outcomes
    assert (o.action, o.reason) == ("ignore", "out of order: seq waits for edit")
    assert acts(s.deliver([edit()])) == [("docs", "open", "edit")]
    assert runs(s.deliver([push("x1")], T0 + M)) == [("docs", {"a": "x1", "b": "", "c": "", "e": "", "f": ""})]


def test_seq_edit_edit_commit_the_window_runs_from_the_last_edit() -> None:
    s = sim(SEQ)
    s.deliver([edit()])
    step = s.deliver([edit("docs/b.md")], T0 + 4 * M)
    assert acts(step) == [("docs", "replace", "edit")] and step.outcomes[0].deadline == T0 + 9 * M
    assert acts(s.deliver([push()], T0 + 8 * M)) == [("docs", "fire", "push")]


def test_seq_replaces_only_the_last_filled_step() -> None:
    s = sim('on seq(git.push as a, git.tag as b, git.merge as c) same <sha> within 1h run d\n')
    s.deliver([push()])
    s.deliver([tag()], T0 + M)
    (o,) = s.deliver([push()], T0 + 2 * M).outcomes
    assert (o.action, o.reason) == ("ignore", "out of order: seq waits for c")
    (o,) = s.deliver([tag()], T0 + 3 * M).outcomes
    assert (o.action, o.deadline) == ("replace", T0 + H)            # not the first step: the window stays
    assert acts(s.deliver([merge()], T0 + 4 * M)) == [("L2", "fire", "c")]


def test_a_nested_step_completes_before_the_next_counts() -> None:
    s = sim('exp: on seq(git.push as init, all(git.tag as a, git.merge as b), git.branch_created as done)\n'
            '    same <sha> within 1h run d\n')
    s.deliver([push()])
    (o,) = s.deliver([Event("git", "branch_created", {"sha": "s1"})]).outcomes
    assert o.reason == "out of order: seq waits for all(a, b)"
    assert acts(s.deliver([merge()])) == [("exp", "admit", "b")]
    (o,) = s.deliver([push()]).outcomes                   # the step after init has begun: init is fixed
    assert o.action == "ignore"
    s.deliver([tag()])
    assert acts(s.deliver([Event("git", "branch_created", {"sha": "s1"})])) == [("exp", "fire", "done")]


# --------------------------------------------------------------------------- N of m

FLAKY = 'flaky: on 3 of ci.completed status="failure" as fail same <pipeline> within 10m run d with <pipeline>, <fail.url>, <group.count>\n'


def fail(url: str, pipeline="p") -> Event:
    return Event("ci", "completed", {"status": "failure", "pipeline": pipeline, "url": url})


def test_n_of_m_fires_when_n_events_lie_in_the_sliding_window() -> None:
    s = sim(FLAKY)
    s.deliver([fail("u1")])
    s.deliver([fail("u2")], T0 + 6 * M)
    slide = s.deliver([fail("u3")], T0 + 10 * M)      # u1 is exactly 10m old: (t - D, t] leaves it out
    assert acts(slide) == [("flaky", "slide", None), ("flaky", "admit", "fail")]
    step = s.deliver([fail("u4")], T0 + 11 * M)
    assert runs(step) == [("flaky", {"a": "p", "b": "u4", "c": 3, "e": "", "f": ""})]
    members = step.runs[0].outcome.run.correlation["correlation"]["members"]["fail"]
    assert [e["data"]["url"] for e in members] == ["u2", "u3", "u4"]


def test_n_of_m_expires_when_its_events_slide_out() -> None:
    s = sim(FLAKY)
    s.deliver([fail("u1")])
    step = s.advance(T0 + 10 * M)
    (o,) = step.outcomes
    assert (o.action, o.progress, o.emitted.data["members"]) == ("expire", "1/3", ["fail"])


# --------------------------------------------------------------------------- absence

STALE = ('stale: on absent(git.tag as review) after git.push as pr same <sha> within 1h\n'
         '    run d with <pr.author>, <sha>, <group.opened_at>, <group.fired_at>\n')


def test_after_within_arms_disarms_rearms_and_fires_at_the_deadline() -> None:
    s = sim(STALE)
    assert acts(s.deliver([push("a", author="ann"), push("b", author="bob")])) == [
        ("stale", "arm", "pr"), ("stale", "arm", "pr")]
    assert acts(s.deliver([tag("a")], T0 + 10 * M)) == [("stale", "disarm", "review")]
    step = s.deliver([push("b", author="bea")], T0 + 30 * M)        # re-armed: new window, new anchor
    assert step.outcomes[0].reason.startswith("re-armed")
    assert s.advance(T0 + H + 29 * M).runs == []
    fired = s.advance(T0 + H + 30 * M)
    assert runs(fired) == [("stale", {"a": "bea", "b": "b", "c": iso(T0 + 30 * M), "e": iso(T0 + 90 * M), "f": ""})]
    ev = fired.runs[0].event
    assert (ev.type, ev.time, ev.data["missing"], ev.data["members"]) == ("fired", iso(T0 + 90 * M), ["review"], ["pr"])
    (o,) = s.deliver([tag("b")], T0 + 94 * M).outcomes
    assert (o.action, o.reason) == ("ignore", "window closed 4m ago")
    (o,) = s.deliver([tag("zzz")]).outcomes
    assert o.reason == "no window armed for sha=zzz"


def test_for_restarts_at_each_event_fires_once_and_waits_for_the_next() -> None:
    s = sim('silent: on absent(http.post path="/hb" as hb) same <query.host> for 5m run d with <query.host>\n')
    hb = lambda: Event("http", "post", {"path": "/hb", "query": {"host": "web1"}})  # noqa: E731
    assert s.first.outcomes == []                     # keyed without a list: armed when first seen
    s.deliver([hb()])
    s.deliver([hb()], T0 + 4 * M)
    assert s.advance(T0 + 8 * M).runs == []
    step = s.advance(T0 + 9 * M)
    assert runs(step) == [("silent", {"a": "web1", "b": "", "c": "", "e": "", "f": ""})]
    assert s.advance(T0 + H).runs == []               # disarmed until the next heartbeat
    s.deliver([hb()])
    assert len(s.advance(T0 + H + 5 * M).runs) == 1


def test_for_with_a_list_or_no_key_is_armed_from_the_start_and_a_restart_does_not_reset_it() -> None:
    m = manifest('silent: on absent(http.post path="/hb" as hb) same <query.host> in ["a", "b"] for 5m run d with <query.host>\n'
                 'quiet: on absent(git.push) for 1h run d\n')
    state = MemoryState()
    eng = Correlator(m["rules"], state)
    assert [(o.rule, o.action, o.keys) for o in eng.start(T0)] == [
        ("silent", "arm", ["a"]), ("silent", "arm", ["b"]), ("quiet", "arm", [])]
    assert eng.start(T0 + 60) == []                   # the arming is state: a second start arms nothing
    eng.submit(Event("http", "post", {"path": "/hb", "query": {"host": "c"}}), T0 + 60)   # not listed: ignored
    assert state.live("silent", ('"c"',)) is None
    fired = eng.advance(T0 + 5 * M)
    assert sorted((o.rule, o.action, tuple(o.keys)) for o in fired) == [("silent", "fire", ("a",)),
                                                                       ("silent", "fire", ("b",))]


def test_between_opens_a_window_at_each_a_and_fires_at_b_unless_the_event_came() -> None:
    s = sim('nightly: on absent(ci.completed pipeline="nightly" status="success")\n'
            '    between cron "30 2 * * *" and cron "0 6 * * *" tz "Europe/Paris" run d with <group.opened_at>\n',
            start=parse_time("2024-03-29T12:00:00Z"))
    step = s.advance(parse_time("2024-03-30T05:00:00Z"))     # 06:00 Paris (CET) is 05:00Z
    assert [o.action for o in step.outcomes] == ["arm", "fire"]
    assert step.runs[0].inputs["a"] == "2024-03-30T01:30:00.000Z" and step.runs[0].event.time == "2024-03-30T05:00:00.000Z"
    s.advance(parse_time("2024-03-31T03:00:00Z"))              # DST: 02:30 does not exist; 03:00 CEST = 01:00Z
    assert acts(s.deliver([Event("ci", "completed", {"pipeline": "nightly", "status": "success"})])) == [
        ("nightly", "disarm", "completed")]
    assert s.advance(parse_time("2024-03-31T04:00:00Z")).runs == []   # 06:00 CEST
    (o,) = s.deliver([Event("ci", "completed", {"pipeline": "nightly", "status": "success"})]).outcomes
    assert o.action == "ignore" and o.reason.startswith("window closed")


def test_back_to_back_between_windows_each_fire_when_a_and_b_are_the_same_instant() -> None:
    # `between cron "0 * * * *" and cron "0 * * * *"`: one window per hour; at each hour the
    # closing window fires before the next opens (the next used to find it live and not open)
    text = ('hourly: on absent(ci.completed pipeline="backup" status="success")\n'
            '    between cron "0 * * * *" and cron "0 * * * *" run d with <group.opened_at>\n')
    s = sim(text)
    fired = [r.inputs["a"] for r in s.advance(T0 + 4 * H).runs]
    assert fired == [iso(T0 + H), iso(T0 + 2 * H), iso(T0 + 3 * H)]
    assert s.engine.state.live("hourly", ()).opened_at == T0 + 4 * H
    m = manifest(text)                         # the same after a downtime, processed late at start
    eng = Correlator(m["rules"], MemoryState())
    eng.start(T0)
    outs = eng.start(T0 + 4 * H + 30, downtime=(T0 + 60, T0 + 4 * H + 30))
    assert [o.action for o in outs] == ["arm", "fire"] * 3 + ["arm"]
    assert [o.run.inputs["a"] for o in outs if o.run] == [iso(T0 + H), iso(T0 + 2 * H), iso(T0 + 3 * H)]


def test_after_more_than_100_missed_windows_the_window_open_now_is_still_watched() -> None:
    # a daily 02:30-06:00 Paris window; serve down 150 days, back at 04:00 Paris: the 100
    # oldest are made up, then tonight's, open now, is watched (the jump to the present
    # used to start from the next 02:30: tonight's 06:00 page never came)
    text = ('nightly: on absent(ci.completed pipeline="nightly" status="success")\n'
            '    between cron "30 2 * * *" and cron "0 6 * * *" tz "Europe/Paris" run d with <group.opened_at>\n')
    m = manifest(text)
    for back, armed in (("2024-06-01T04:00:00+02:00", "2024-06-01T00:30:00.000Z"), ("2024-06-01T07:00:00+02:00", None)):
        eng = Correlator(m["rules"], MemoryState())
        eng.start(T0)
        now = parse_time(back)
        outs = eng.start(now, downtime=(T0 + 60, now))
        assert len([o for o in outs if o.action == "fire"]) == 100
        g = eng.state.live("nightly", ())
        assert (iso(g.opened_at) if g else None) == armed, back
        if g:
            assert g.deadline == parse_time("2024-06-01T06:00:00+02:00")
            assert [o.action for o in eng.advance(g.deadline)] == ["fire"]


def test_a_first_start_inside_a_between_window_watches_from_the_next_opening() -> None:
    # the decision (README, In serve): the part of tonight's window before the first start
    # was seen by nobody, so tonight's is not watched (no page at 06:00); tomorrow's is
    m = manifest('nightly: on absent(ci.completed pipeline="nightly" status="success")\n'
                 '    between cron "30 2 * * *" and cron "0 6 * * *" tz "Europe/Paris" run d\n')
    eng = Correlator(m["rules"], MemoryState())
    assert eng.start(parse_time("2024-06-01T04:00:00+02:00")) == []
    assert eng.advance(parse_time("2024-06-01T06:00:00+02:00")) == []
    assert [o.action for o in eng.advance(parse_time("2024-06-02T06:00:00+02:00"))] == ["arm", "fire"]


# --------------------------------------------------------------------------- bounds

def test_max_refuses_new_groups_but_existing_ones_keep_admitting() -> None:
    s = sim('gate: on all(git.push as p, git.tag as t) same <sha> within 1h max 2 run d\n'
            'plain: on git.push run d\n')
    s.deliver([push("a"), push("b")])
    step = s.deliver([push("c")])
    assert [(o.action, o.reason) for o in step.outcomes] == [("refuse", "refused: rule has 2 open groups (max)")]
    assert [r.rule for r in step.runs] == ["plain"]           # ordinary rules still match
    assert acts(s.deliver([tag("a")])) == [("gate", "fire", "t")]
    assert acts(s.deliver([push("c")])) == [("gate", "open", "p")]
    assert s.engine.refusals == {"gate": 1}


def test_the_engine_wide_limit_refuses_too() -> None:
    s = sim('gate: on all(git.push as p, git.tag as t) same <sha> within 1h run d\n'
            'other: on absent(git.merge) after git.tag as t same <sha> within 1h run d\n', max_open_groups=2)
    s.deliver([push("a"), push("b")])
    (o,) = s.deliver([tag("c")]).outcomes[1:]
    assert (o.rule, o.action, o.reason) == ("other", "refuse", "refused: 2 open groups in all (--max-open-groups)")


# --------------------------------------------------------------------------- reload and start

def test_reload_keeps_groups_of_unchanged_rules_and_discards_the_others() -> None:
    text = ALL + 'other: on all(git.push as p, git.tag as t) same <sha> within 1h run d\n'
    m = manifest(text)
    state = MemoryState()
    eng = Correlator(m["rules"], state)
    eng.start(T0)
    eng.submit(push(), T0)
    changed = manifest(text.replace("within 1h run d\n", "within 2h run d\n").replace(
        "git.merge as m) same <sha> within 1h run d with <sha>", "git.merge as m) same <sha> within 1h max 5 run d"))
    outs = eng.reload(changed["rules"], T0 + M)
    assert [(o.rule, o.action, o.reason) for o in outs] == [("other", "discard", "rule changed")]
    assert state.live("gate", ('"s1"',)) is not None and state.live("other", ('"s1"',)) is None
    outs = eng.reload(manifest("plain: on git.push run d\n")["rules"], T0 + 2 * M)
    assert [(o.rule, o.action, o.reason) for o in outs] == [("gate", "discard", "rule removed")]


def test_a_renamed_rule_carries_its_groups_over() -> None:
    # an unlabelled rule is named by its line: a comment added above it made L2 into L3, and
    # the reload discarded its open group ("rule removed"), so the build seen before the
    # edit never met its test: no deploy
    text = 'on all(git.push as p, git.tag as t) same <sha> within 1h run d with <sha>\n'
    state = MemoryState()
    eng = Correlator(manifest(text)["rules"], state)
    eng.start(T0)
    eng.submit(push("a"), T0)
    outs = eng.reload(manifest("# the release gate\n" + text)["rules"], T0 + M)
    assert [(o.rule, o.action, o.reason) for o in outs] == [("L3", "carry", "renamed from L2")]
    old = state.last_closed("L2", ('"a"',))
    assert (old.state, old.reason) == ("discarded", f"rule renamed L3: the group goes on as {outs[0].group}")
    g = state.live("L3", ('"a"',))
    assert (g.opened_at, g.deadline, state.live("L2", ('"a"',))) == (T0, T0 + H, None)
    (fire,) = eng.submit(tag("a"), T0 + 2 * M)
    assert (fire.rule, fire.action, fire.run.inputs["a"]) == ("L3", "fire", "a")
    eng.submit(push("b"), T0 + 3 * M)                 # two new rules with its fingerprint: which? none
    outs = eng.reload(manifest("#\n#\n" + text + "x: " + text)["rules"], T0 + 4 * M)
    assert [(o.rule, o.action, o.reason) for o in outs] == [("L3", "discard", "rule removed")]


def test_start_after_a_downtime_processes_past_deadlines_late_with_the_unobserved_part() -> None:
    m = manifest('silent: on absent(http.post path="/hb" as hb) same <query.host> for 10m\n'
                 '    run d with <query.host>, <group.unobserved>, <group.late>\n' + ALL)
    state = MemoryState()
    eng = Correlator(m["rules"], state)
    eng.start(T0)
    eng.submit(Event("http", "post", {"path": "/hb", "query": {"host": "web1"}}), T0)
    eng.submit(push(), T0)
    # serve was last alive at +4m and starts again at +30m
    outs = eng.start(T0 + 30 * M, downtime=(T0 + 4 * M, T0 + 30 * M))
    fire = next(o for o in outs if o.action == "fire")
    # the quiet period [0, 10m) was unobserved from +4m; processed at +30m, 20 minutes late
    assert fire.time == T0 + 10 * M and (fire.run.inputs["a"], fire.run.inputs["b"], fire.run.inputs["c"]) == (
        "web1", 360.0, 1200.0)
    assert fire.run.event.data["unobserved"] == 360.0 and fire.run.event.data["late"] == 1200.0
    assert state.live("gate", ('"s1"',)).unobserved == 26 * M


# --------------------------------------------------------------------------- what a run gets

def test_what_a_run_gets() -> None:
    s = sim('gate: on 2 of (git.push as p, git.tag as t, git.merge as m) same <sha>, <branch> within 1h\n'
            '    run d with <group.id>, <group.first.sha>, <group.last.branch>, <branch>, <m.sha>\n')
    s.deliver([push()])
    step = s.deliver([Event("git", "tag", {"sha": "s1", "branch": "main", "tag": "v1"})], T0 + M)
    (run,) = step.runs
    g = step.outcomes[0].group
    assert run.inputs == {"a": g, "b": "s1", "c": "main", "e": "main", "f": ""}  # (no m: f's default)
    corr = step.outcomes[0].run.correlation["correlation"]
    assert (corr["rule"], corr["group"], corr["keys"], corr["values"], corr["state"]) == (
        "gate", g, ['"s1"', '"main"'], ["s1", "main"], "fired")
    assert corr["members"]["m"] is None and corr["members"]["p"]["data"]["sha"] == "s1"
    assert corr["opened_at"] == iso(T0) and corr["fired_at"] == iso(T0 + M)


def test_dedupe_key_of_a_fire() -> None:
    s = sim(ALL.replace("run d with <sha>", "run d with <sha> dedupe <sha> for 7d"))
    for ev in (push(), tag(), merge()):
        step = s.deliver([ev])
    assert step.outcomes[0].run.dedupe_key == "s1"


def test_fires_chain_to_other_rules_but_never_to_themselves() -> None:
    s = sim(ALL + 'note: on correlation.fired rule="gate" run d with <group>\n'
            'loop: on any(correlation.fired as f, git.branch_deleted as x) run d with <f.rule>\n')
    for ev in (push(), tag(), merge()):
        step = s.deliver([ev])
    assert [r.rule for r in step.runs] == ["gate", "note", "loop"]
    assert [r.inputs["a"] for r in step.runs[1:]] == [step.outcomes[0].group, "gate"]


def test_member_matching_goes_through_the_rule_index() -> None:
    rules = "".join(f'r{i}: on all(github.workflow_run workflow="w{i}" as a, github.check_suite app="w{i}" as b) '
                    f'same <sha> within 1h run d\n' for i in range(300))
    s = sim(rules)
    stats = s.engine.index.matcher.stats()
    assert stats["github.workflow_run"]["eq_fields"] == {"workflow": 300}
    ev = Event("github", "workflow_run", {"workflow": "w7", "sha": "x"})
    assert [r.name for r in s.engine.index.matcher.candidates(ev)] == ["r7#0"]
    assert acts(s.deliver([ev])) == [("r7", "open", "a")]


@pytest.mark.parametrize("rules", [[], [{"name": "x", "trigger": "git.push", "source": "git"}]])
def test_an_engine_without_correlation_rules_does_nothing(rules) -> None:
    eng = Correlator(rules, MemoryState())
    assert eng.start(T0) == [] and eng.submit(push(), T0) == [] and eng.next_deadline() is None
    assert not any(is_correlation(r) for r in rules)


def test_outcomes_serialise() -> None:
    s = sim(ALL)
    (o,) = s.deliver([push()]).outcomes
    assert json.loads(json.dumps(o.to_json())) == {
        "rule": "gate", "member": "p", "keys": ["s1"], "action": "open", "group": o.group, "have": ["p"],
        "missing": ["t", "m"], "deadline": iso(T0 + H), "time": iso(T0), "reason": None, "run": None}
