"""Matching semantics (SPEC §3) through the real front end: compile_text -> manifest rules
-> LinearMatcher (the reference matcher), and the explain output of ``match --explain``."""

from __future__ import annotations

import pytest

from triggerlang.api import compile_text
from triggerlang.compile.index import build_matcher
from triggerlang.compile.matcher import LinearMatcher
from triggerlang.events import Event

ACTION = 'action d(x="") = exec "./run" x\n'
WEBHOOKS = 'secret s = env "S"\nsource github secret=s\nsource http token=s\n'


def manifest_rules(rules: str) -> list[dict]:
    c = compile_text(WEBHOOKS + ACTION + rules, "rules.trg")
    errs = [(d.code, d.span.start.line, d.message) for d in c.diagnostics if d.is_error]
    assert not errs, errs
    return c.manifest["rules"]


def matcher(rules: str) -> LinearMatcher:
    return LinearMatcher(manifest_rules(rules))


def names(rules: str, source: str, typ: str, data: dict) -> list[str]:
    return [m.name for m in matcher(rules).match(Event(source, typ, data))]


def holds(trigger: str, cond: str, data: dict) -> bool:
    """Whether the one rule ``on TRIGGER COND run d`` matches an event with ``data``."""
    src, typ = trigger.split(".")
    if src == "http":
        cond = f'path="/x" {cond}'
        data = {"path": "/x", **data}
    typ = {"request": "post", "changed": "modified"}.get(typ, typ)  # an event such a rule accepts
    return names(f"r: on {trigger} {cond} run d", src, typ, data) == ["r"]


# --------------------------------------------------------------------------- lists

@pytest.mark.parametrize("cond, files, expected", [
    ('files ~ "docs/**"', ["src/a.py", "docs/b.md"], True),       # some file is under docs
    ('files ~ "docs/**"', ["src/a.py"], False),
    ('files !~ "docs/**"', ["docs/a.md", "src/b.py"], True),     # some file is outside docs
    ('files !~ "docs/**"', ["docs/a.md", "docs/b/c.md"], False),
    ('not files ~ "docs/**"', ["src/a.py", "src/b.py"], True),   # no file is under docs
    ('not files ~ "docs/**"', ["src/a.py", "docs/b.md"], False),
    ('files = "a"', ["b", "a"], True),
    ('files != "a"', ["a"], False),
    ('files != "a"', ["a", "b"], True),
    ('files in ["x", "a"]', ["a"], True),
    ('files not in ["a", "b"]', ["a", "b"], False),
    ('files not in ["a", "b"]', ["a", "c"], True),
])
def test_any_element(cond: str, files: list, expected: bool) -> None:
    assert holds("git.push", cond, {"files": files}) is expected


@pytest.mark.parametrize("cond, expected", [
    ('files ~ "**"', False), ('files !~ "docs/**"', False), ('files = "a"', False), ('files != "a"', False),
    ('files in ["a"]', False), ('files not in ["a"]', False),
    ('not files ~ "docs/**"', True),   # "no file is under docs" holds for no files
    ('has files', True),               # present and not null
])
def test_empty_list(cond: str, expected: bool) -> None:
    assert holds("git.push", cond, {"files": []}) is expected


# --------------------------------------------------------------------------- missing and null

MISSING_CASES = [
    ('branch = "x"', False), ('branch != "x"', True), ('branch ~ "*"', False), ('branch !~ "x*"', True),
    ('branch in ["x"]', False), ('branch not in ["x"]', True), ('commits < 3', False), ('commits >= 3', False),
    ('has branch', False), ('not has branch', True), ('not branch = "x"', True),
]


@pytest.mark.parametrize("cond, expected", MISSING_CASES)
def test_missing_fields(cond: str, expected: bool) -> None:
    assert holds("git.push", cond, {"sha": "abc"}) is expected


@pytest.mark.parametrize("cond, expected", MISSING_CASES)
def test_null_is_like_missing(cond: str, expected: bool) -> None:
    assert holds("git.push", cond, {"branch": None, "commits": None}) is expected


@pytest.mark.parametrize("cond, expected", [
    ('payload.a.b = 1', False), ('payload.a.b != 1', True), ('has payload.a', True), ('has payload.a.b', False),
    ('has payload.a.c', False), ('payload.list.1 = "y"', True), ('payload.list.5 != "y"', True),
])
def test_paths_into_the_payload(cond: str, expected: bool) -> None:
    data = {"payload": {"a": {"c": None}, "list": ["x", "y"]}}
    assert holds("github.push", cond, data) is expected


def test_has_on_present_but_empty_values() -> None:
    assert holds("git.push", "has tag", {"tag": ""})
    assert holds("git.push", "has forced", {"forced": False})


# --------------------------------------------------------------------------- patterns

@pytest.mark.parametrize("glob, path, expected", [
    ("src/*.py", "src/a.py", True),
    ("src/*.py", "src/x/a.py", False),         # * stays within one segment
    ("src/**", "src/x/y/a.py", True),          # ** crosses segments
    ("src/**/*.py", "src/a.py", True),         # ... including none
    ("src/**/*.py", "src/x/y/a.py", True),
    ("src/**/*.py", "lib/src/a.py", False),    # a glob matches the whole path
    ("**/test_*.py", "test_a.py", True),
    ("**/test_*.py", "a/b/test_a.py", True),
    ("*.md", "docs/a.md", False),
    ("file?.txt", "file1.txt", True),
    ("file?.txt", "file10.txt", False),
    ("a?b", "a/b", False),                     # ? is not a separator
    ("v[0-9].txt", "v7.txt", True),
    ("[abc].txt", "b.txt", True),
    ("[abc].txt", "d.txt", False),
    ("[!abc].txt", "d.txt", True),
    ("[!abc].txt", "a.txt", False),
    ("src/a.py", "src/a.py", True),
    ("src/a.py", "src/a.pyc", False),
])
def test_globs(glob: str, path: str, expected: bool) -> None:
    assert holds("file.changed", f'path ~ "{glob}"', {"path": path}) is expected
    assert holds("file.changed", f'path !~ "{glob}"', {"path": path}) is (not expected)


@pytest.mark.parametrize("regex, message, expected", [
    ("/fix/", "a fix here", True),             # a search, not anchored
    ("/^fix/", "a fix", False),
    ("/FIX/i", "a fix", True),
    ("/FIX/", "a fix", False),
    ("/^b$/m", "a\nb\nc", True),
    ("/^b$/", "a\nb\nc", False),
    ("/a.b/s", "a\nb", True),
    ("/a.b/", "a\nb", False),
    (r"/^v\d+\.\d+$/", "v1.20", True),
    (r"/release\/v1/", "release/v1", True),
])
def test_regex_search_and_flags(regex: str, message: str, expected: bool) -> None:
    assert holds("git.push", f"message ~ {regex}", {"message": message}) is expected


def test_a_list_of_patterns_matches_if_any_does() -> None:
    cond = r'path ~ ["*.md", /\.rst$/, "docs/**"]'
    assert holds("file.changed", cond, {"path": "README.md"})
    assert holds("file.changed", cond, {"path": "x/guide.rst"})
    assert holds("file.changed", cond, {"path": "docs/a/b.png"})
    assert not holds("file.changed", cond, {"path": "src/a.py"})
    assert not holds("file.changed", cond.replace("~", "!~"), {"path": "README.md"})


def test_patterns_on_non_strings() -> None:
    assert not holds("github.push", 'payload.n ~ "5*"', {"payload": {"n": 5}})
    assert holds("github.push", 'payload.n !~ "5*"', {"payload": {"n": 5}})
    assert not holds("github.push", 'payload.n ~ /.*/', {"payload": {"n": {"a": 1}}})


def test_pattern_from_a_let() -> None:
    assert names('let py = ["*.py", "**/*.py"]\nr: on file.changed path ~ py run d', "file", "modified",
                 {"path": "a/b.py"}) == ["r"]


# --------------------------------------------------------------------------- values

@pytest.mark.parametrize("cond, data, expected", [
    ('branch in ["main", "dev"]', {"branch": "dev"}, True),
    ('branch in ["main", "dev"]', {"branch": "feat"}, False),
    ('branch not in ["main", "dev"]', {"branch": "feat"}, True),
    ('branch not in ["main", "dev"]', {"branch": "main"}, False),
    ('commits > 2', {"commits": 3}, True),
    ('commits > 2', {"commits": 2}, False),
    ('commits >= 2', {"commits": 2}, True),
    ('commits < 2', {"commits": 1}, True),
    ('commits <= 2', {"commits": 3}, False),
    ('commits = 2', {"commits": 2.0}, True),    # numbers compare as numbers
    ('commits > 2', {"commits": "3"}, False),   # no coercion from strings
    ('commits = 2', {"commits": "2"}, False),
    ('forced = true', {"forced": True}, True),
    ('forced = true', {"forced": 1}, False),    # a boolean is not a number
    ('forced = false', {"forced": 0}, False),
    ('forced != true', {"forced": 1}, True),
    ('branch = "main"', {"branch": "Main"}, False),
])
def test_values(cond: str, data: dict, expected: bool) -> None:
    assert holds("git.push", cond, data) is expected


@pytest.mark.parametrize("cond, data, expected", [
    ("payload.n = 1", {"n": True}, False),
    ("payload.n = true", {"n": 1}, False),
    ("payload.n = 1", {"n": 1.0}, True),
    ('payload.n = "1"', {"n": 1}, False),
    ("payload.n in [1, 2]", {"n": True}, False),
    ("payload.n > 0", {"n": True}, False),
    ("payload.n < 1.5", {"n": 1}, True),
])
def test_bool_and_number_do_not_mix(cond: str, data: dict, expected: bool) -> None:
    assert holds("github.push", cond, {"payload": data}) is expected


@pytest.mark.parametrize("cond, seconds, expected", [
    ("duration > 5m", 301, True),
    ("duration > 5m", 300, False),
    ("duration <= 300", 300, True),
    ("duration < 250ms", 0.2, True),
    ("duration >= 1.5h", 5400, True),
    ("duration >= 1d", 86399.9, False),
])
def test_durations_compare_in_seconds(cond: str, seconds: float, expected: bool) -> None:
    assert holds("run.completed", cond, {"duration": seconds}) is expected


def test_times_compare_as_times() -> None:
    rules = 'r: on every 1h time >= "2026-03-01T00:00:00Z" run d'
    ok = {"rule": "r", "time": "2026-03-01T01:00:00+01:00"}     # the same instant
    early = {"rule": "r", "time": "2026-02-28T23:59:59Z"}
    assert names(rules, "schedule", "tick", ok) == ["r"]
    assert names(rules, "schedule", "tick", early) == []
    assert names(rules, "schedule", "tick", {"rule": "r", "time": "not a time"}) == []


# --------------------------------------------------------------------------- triggers

def test_file_changed_matches_every_change() -> None:
    rules = ('changed: on file.changed path ~ "**" run d\ncreated: on file.created path ~ "**" run d\n'
             'deleted: on file.deleted path ~ "**" run d\n')
    data = {"path": "a.txt"}
    assert names(rules, "file", "created", data) == ["changed", "created"]
    assert names(rules, "file", "modified", data) == ["changed"]
    assert names(rules, "file", "deleted", data) == ["changed", "deleted"]
    assert names(rules, "file", "renamed", data) == []


def test_http_request_matches_any_method() -> None:
    rules = ('any: on http.request path="/x" run d\npost: on http.post path="/x" run d\n'
             'get: on http.get path="/x" run d\nother: on http.post path="/y" run d\n')
    assert names(rules, "http", "post", {"path": "/x"}) == ["any", "post"]
    assert names(rules, "http", "get", {"path": "/x"}) == ["any", "get"]
    assert names(rules, "http", "delete", {"path": "/x"}) == ["any"]
    assert names(rules, "http", "post", {"path": "/z"}) == []


def test_http_route_globs() -> None:
    rules = 'hooks: on http.post path ~ "/hooks/*" run d'
    assert names(rules, "http", "post", {"path": "/hooks/a"}) == ["hooks"]
    assert names(rules, "http", "post", {"path": "/hooks/a/b"}) == []


def test_source_star_matches_any_event_of_the_source() -> None:
    rules = 'all: on github.* run d\npush: on github.push run d\ngit: on git.* run d'
    assert names(rules, "github", "push", {}) == ["all", "push"]
    assert names(rules, "github", "anything_new", {}) == ["all"]
    assert names(rules, "git", "tag", {}) == ["git"]
    assert names(rules, "gitlab", "push", {}) == []


def test_schedule_rules_match_only_their_own_ticks() -> None:
    rules = ('a: on every 15m run d\nb: on cron "0 3 * * *" run d\n'
             'c: on every 1h time > "2020-01-01T00:00:00Z" run d')
    assert names(rules, "schedule", "tick", {"rule": "a", "time": "2026-01-01T00:00:00Z"}) == ["a"]
    assert names(rules, "schedule", "tick", {"rule": "b", "time": "2026-01-01T00:00:00Z"}) == ["b"]
    assert names(rules, "schedule", "tick", {"rule": "c", "time": "2026-01-01T00:00:00Z"}) == ["c"]
    assert names(rules, "schedule", "tick", {"rule": "c", "time": "2019-01-01T00:00:00Z"}) == []
    assert names(rules, "schedule", "tick", {"time": "2026-01-01T00:00:00Z"}) == []


def test_rules_match_in_file_order_and_bind_inputs() -> None:
    m = matcher('action deploy(sha, stage="staging", n=0) = exec "./d" sha stage\n'
                'second: on git.push branch="main" run deploy with <sha>, n=<commits>\n'
                'first: on git.push run deploy with sha=<after>, stage="prod"\n')
    found = m.match(Event("git", "push", {"branch": "main", "sha": "abc", "after": "def"}))
    assert [x.name for x in found] == ["second", "first"]
    assert found[0].inputs == {"sha": "abc", "stage": "staging", "n": None}   # a missing field binds null
    assert found[1].inputs == {"sha": "def", "stage": "prod", "n": 0}


def test_or_and_not_combinations() -> None:
    cond = '(branch="main" or tag ~ "v*") not author in ["bot", "ci"]'
    assert holds("git.push", cond, {"branch": "main", "author": "alice"})
    assert holds("git.push", cond, {"tag": "v1", "author": "alice"})
    assert not holds("git.push", cond, {"branch": "main", "author": "bot"})
    assert not holds("git.push", cond, {"branch": "dev", "author": "alice"})


def test_build_matcher_agrees_with_the_reference() -> None:
    rules = manifest_rules(
        'a: on git.push branch="main" run d\nb: on git.push files ~ "docs/**" run d\n'
        'c: on git.push not files ~ "docs/**" run d\nd2: on git.* branch in ["x", "main"] run d\n'
        'e: on git.tag tag ~ /^v\\d/ run d\nf: on git.push branch != "main" run d\n')
    events = [Event("git", "push", {"branch": "main", "files": ["docs/a"]}),
              Event("git", "push", {"branch": "x", "files": []}),
              Event("git", "push", {}),
              Event("git", "tag", {"tag": "v1", "branch": None}),
              Event("github", "push", {"branch": "main"})]
    ref, fast = LinearMatcher(rules), build_matcher(rules)
    for ev in events:
        assert [m.name for m in fast.match(ev)] == [m.name for m in ref.match(ev)]


# --------------------------------------------------------------------------- explain

def explain(rules: str, source: str, typ: str, data: dict) -> dict[str, dict]:
    return {r["rule"]: r for r in matcher(rules).explain(Event(source, typ, data))}


def test_explain_names_the_first_failing_condition_with_its_span_and_value() -> None:
    rules = 'deploy: on git.push author != "bot" branch="main" tag ~ "v*" run d'
    line = WEBHOOKS.count("\n") + ACTION.count("\n") + 1
    why = explain(rules, "git", "push", {"author": "alice", "branch": "dev"})
    assert why == {"deploy": {"rule": "deploy", "condition": 'branch="main"', "span": [line, 37, line, 50],
                              "field": "branch", "value": "dev"}}


def test_explain_missing_value_and_matched_rules() -> None:
    rules = 'a: on git.push branch="main" run d\nb: on git.push run d\nc: on git.push tag ~ "v*" run d'
    why = explain(rules, "git", "push", {"branch": "main"})
    assert set(why) == {"c"}                       # a and b matched: nothing to explain
    assert why["c"]["value"] == "<missing>" and why["c"]["condition"] == 'tag ~ "v*"'


def test_explain_wrong_event_type_or_and_not() -> None:
    rules = ('t: on git.tag run d\n'
             'o: on git.push (branch="a" or branch="b") run d\n'
             'n: on git.push not files ~ "docs/**" run d\n'
             'x: on github.push run d\n')
    why = explain(rules, "git", "push", {"branch": "c", "files": ["docs/x"]})
    assert set(why) == {"t", "o", "n"}             # only rules of the event's source
    assert why["t"]["condition"] == "trigger git.tag" and why["t"]["value"] == "push"
    assert why["o"]["condition"] == 'branch="a" or branch="b"' and why["o"]["note"] == "no alternative held"
    assert why["o"]["value"] == "c"
    assert why["n"]["condition"] == 'not files ~ "docs/**"' and why["n"]["value"] == ["docs/x"]
    assert why["n"]["note"] == "the negated condition held"
