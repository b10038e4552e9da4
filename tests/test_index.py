"""The compiled rule index (``compile/index.py``) and the compiled-program cache.

The index must never change an answer: a differential property test draws random rule
sets (manifest rules: every operator, nested ``and``/``or``/``not``, lists, globs with
``**`` and prefixes, regexes, numbers, booleans, nested fields, any-type rules) and random
events (missing fields, nulls, lists, empty lists, maps where scalars are expected) and
checks that :class:`IndexedMatcher` returns exactly what a plain rule-by-rule evaluation
with the reference :func:`compile_predicate` returns, in the same order. Unit tests pin
the tricky cases by name, through the real front end. No timing here: the benchmark
(``bench/match.py``) measures speed; these tests only count candidates.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings, strategies as st

from triggerlang.api import compile_file, compile_text
from triggerlang.cli import main
from triggerlang.compile import cache as C
from triggerlang.compile.index import (IndexedMatcher, _glob_test, access_path, conjuncts, fast_predicate,
                                       plain_match, plan_rule)
from triggerlang.compile.index import build_matcher
from triggerlang.compile.matcher import LinearMatcher, compile_predicate
from triggerlang.compile.patterns import compile_glob, literal_prefix
from triggerlang.events import Event

ACTION = 'action d(x="") = exec "./run" x\n'
WEBHOOKS = 'secret s = env "S"\nsource github secret=s\nsource http token=s\n'


def manifest_rules(rules: str) -> list[dict]:
    c = compile_text(WEBHOOKS + ACTION + rules, "rules.trg")
    errs = [(d.code, d.span.start.line, d.message) for d in c.diagnostics if d.is_error]
    assert not errs, errs
    return c.manifest["rules"]


def both(rules: list[dict], ev: Event) -> list[str]:
    """The names the index returns, after checking them against the reference."""
    got = [r.name for r in IndexedMatcher(rules).matching_rules(ev)]
    assert got == [m.name for m in LinearMatcher(rules).match(ev)] == plain_match(rules, ev)
    return got


def names(rules: str, source: str, typ: str, data: dict) -> list[str]:
    return both(manifest_rules(rules), Event(source, typ, data))


# =========================================================================== differential

# Small pools, so that random rules and random events meet: the same strings, numbers and
# globs (with nested literal prefixes) on both sides.
FIELDS = ["branch", "files", "n", "path", "payload.x", "payload.y.z"]
STRINGS = ["main", "dev", "", "1", "src/a.py", "src/x/y.py", "docs/r.md"]
NUMBERS = [0, 1, 1.0, 2, 1.5]
SCALARS = st.sampled_from(STRINGS) | st.sampled_from(NUMBERS) | st.booleans()
GLOBS = ["src/**", "src/*.py", "src/x/**", "s*", "**/*.py", "docs/**", "src/a.py", "*", "", "main", "d*",
         "src/x/y.py", "[ds]*/**", "src/**/y.py"]
REGEXES = [{"regex": "^src", "flags": ""}, {"regex": "PY$", "flags": "i"}, {"regex": "a", "flags": ""},
           {"regex": "^$", "flags": ""}]

globs = st.sampled_from(GLOBS).map(lambda g: {"glob": g})
pattern = globs | globs | globs | st.sampled_from(REGEXES)
OPS = ["=", "=", "=", "!=", "in", "in", "not in", "~", "~", "~", "!~", "<", ">=", "has"]


@st.composite
def leaf(draw) -> dict:
    op = draw(st.sampled_from(OPS))
    f = draw(st.sampled_from(["path", "files", "path", "branch"] if op in ("~", "!~") else FIELDS))
    span = [1, 1, 1, 2]
    if op == "has":
        return {"op": "has", "field": f, "span": span}
    if op in ("in", "not in"):
        v = draw(st.lists(SCALARS, max_size=4))
    elif op in ("~", "!~"):
        v = draw(st.lists(pattern, min_size=1, max_size=2))
    elif op in ("<", ">="):
        v = draw(st.sampled_from(NUMBERS + ["2024-01-01T00:00:00Z"]))
    else:
        v = draw(SCALARS)
    return {"op": op, "field": f, "value": v, "span": span}


trees = st.recursive(
    leaf(),
    lambda kids: (st.lists(kids, min_size=1, max_size=4).map(lambda a: {"op": "and", "args": a})
                  | st.lists(kids, min_size=1, max_size=3).map(lambda a: {"op": "or", "args": a})
                  | kids.map(lambda a: {"op": "not", "arg": a})),
    max_leaves=6)
# most generated rules are conjunctions of conditions (what people write, and what the index
# keys on); the rest are arbitrary trees
conjunctions = st.lists(leaf(), min_size=1, max_size=3).map(lambda a: a[0] if len(a) == 1 else {"op": "and", "args": a})
filters = conjunctions | conjunctions | trees

TRIGGERS = [("git", None), ("git", ["push"]), ("git", ["push"]), ("git", ["push"]), ("git", ["push", "tag"]),
            ("http", None), ("http", ["post"]), ("schedule", ["tick"])]


@st.composite
def rule_sets(draw) -> list[dict]:
    rules = []
    for i in range(draw(st.integers(1, 12))):
        src, types = draw(st.sampled_from(TRIGGERS))
        filt = draw(st.none() | filters | filters)
        if src == "schedule":  # the checker's implicit rule=NAME, as the manifest holds it
            impl = {"op": "=", "field": "rule", "value": f"r{i}", "span": [1, 1, 1, 2]}
            filt = impl if filt is None else {"op": "and", "args": [impl, filt]}
        rules.append({"name": f"r{i}", "source": src, "types": types, "filter": filt, "action": "d",
                      "args": {"x": {"field": "branch"}}, "policies": {}, "trigger": f"{src}.x",
                      "span": {"line": i + 1, "column": 1, "end_line": i + 1, "end_column": 2}})
    return rules


values = st.recursive(SCALARS | st.none(), lambda kids: st.lists(kids, max_size=3)
                      | st.dictionaries(st.sampled_from(["x", "y", "z", "0"]), kids, max_size=2), max_leaves=5)
field_values = (SCALARS | SCALARS | st.lists(SCALARS, max_size=4) | st.lists(st.sampled_from(STRINGS), max_size=4)
                | st.none() | st.just([]) | values)


def _mentioned(rules: list[dict]) -> list:
    """Values an event could carry to meet the rules: their constants, strings their globs
    match or almost match, and the pool."""
    out: list = list(STRINGS) + list(NUMBERS) + [True, False]

    def walk(n: dict | None) -> None:
        if not n:
            return
        for x in n.get("args", []):
            walk(x)
        if "arg" in n:
            walk(n["arg"])
        v = n.get("value")
        for x in (v if isinstance(v, list) else [v]):
            if isinstance(x, dict) and "glob" in x:
                pre = literal_prefix(x["glob"])
                out.extend([pre, pre + "a.py", pre + "x/y.py", pre[:-1], x["glob"]])
            elif isinstance(x, (str, int, float)):
                out.append(x)
    for r in rules:
        walk(r["filter"])
    return sorted(set(out), key=repr)


def _instance(glob: str, star: str) -> str:
    """A string the glob (probably) matches."""
    out, i = [], 0
    while i < len(glob):
        c = glob[i]
        if glob.startswith("**", i):
            out.append(star)
            i += 2
            continue
        if c == "*":
            out.append(star.replace("/", ""))
        elif c == "?":
            out.append("b")
        elif c == "[":
            j = glob.find("]", i + 2)
            body = glob[i + 1:j if j > 0 else len(glob)]
            out.append("z" if body[:1] in "!^" else body[:1])
            i = j if j > 0 else len(glob)
        elif c == "\\" and i + 1 < len(glob):
            i += 1
            out.append(glob[i])
        else:
            out.append(c)
        i += 1
    return "".join(out)


@st.composite
def satisfying(draw, c: dict, pool):
    """A value for the field of condition ``c`` that likely makes it hold."""
    op, v = c["op"], c.get("value")
    if op == "=":
        return v
    if op == "in" and v:
        return draw(st.sampled_from(v))
    if op == "~":
        p = draw(st.sampled_from(v))
        if "glob" in p:
            return _instance(p["glob"], draw(st.sampled_from(["", "x", "x/y", "x/y.py"])))
        return draw(st.sampled_from(STRINGS))
    return draw(pool)


# values Python's hashing confuses with each other (§3 does not: true != 1)
TWINS = {True: 1, 1: True, False: 0, 0: False, 2: 2.0, "1": 1, "": False}


def _put(data: dict, field: str, value) -> None:
    *head, last = field.split(".")
    cur = data
    for part in head:
        if not isinstance(cur.get(part), dict):
            cur[part] = {}
        cur = cur[part]
    cur[last] = value


@st.composite
def events_for(draw, rules: list[dict]) -> Event:
    """Events aimed at the rules: their triggers and the values their conditions want, alone,
    in lists, next to other values, or nearly (random fields, nulls, maps, empty lists)."""
    r = draw(st.sampled_from(rules))
    if draw(st.integers(0, 5)):
        src = r["source"]
        typ = draw(st.sampled_from(r["types"])) if r["types"] else draw(st.sampled_from(["push", "post", "other"]))
    else:
        src, typ = draw(st.sampled_from([("git", "push"), ("git", "tag"), ("http", "get"), ("file", "created")]))
    pool = st.sampled_from(_mentioned(rules))
    value = (pool | pool | pool | st.lists(pool, max_size=4) | st.none() | st.just([]) | values)
    data: dict = {}
    for f in ("branch", "files", "n", "path"):
        if not draw(st.integers(0, 2)):
            data[f] = draw(value)
    shape = draw(st.sampled_from(["missing", "map", "deep", "scalar", "list"]))
    if shape == "map":
        data["payload"] = {"x": draw(value)}
    elif shape == "deep":
        data["payload"] = {"x": draw(value), "y": draw(st.sampled_from([{"z": "main"}, {"z": 1}, {"z": None},
                                                                       {}, "main", [{"z": "main"}]])
                                                       | value.map(lambda v: {"z": v}))}
    elif shape == "scalar":
        data["payload"] = draw(SCALARS)
    elif shape == "list":
        data["payload"] = [{"x": "main"}]
    for c in conjuncts(r["filter"]):   # aim at one rule's conditions
        if "field" in c and draw(st.integers(0, 4)):
            good = draw(satisfying(c, pool))
            how = draw(st.sampled_from(["alone", "alone", "list", "list2", "twin", "other"]))
            v = {"alone": good, "list": [good], "list2": [draw(pool), good], "twin": TWINS.get(good, good),
                 "other": draw(value)}[how]
            _put(data, c["field"], v)
    if draw(st.integers(0, 3)) and "rule" not in data:
        data["rule"] = draw(st.sampled_from([x["name"] for x in rules] + ["nope"]))
    return Event(src, typ, data)


events = st.builds(Event, st.sampled_from(["git", "http"]), st.sampled_from(["push", "post"]),
                   st.dictionaries(st.sampled_from(FIELDS[:4]), field_values, max_size=4))


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(rule_sets(), st.data())
def test_index_agrees_with_plain_evaluation(rules: list[dict], data) -> None:
    evs = data.draw(st.lists(events_for(rules), min_size=1, max_size=8))
    im, lm = IndexedMatcher(rules), LinearMatcher(rules)
    for ev in evs:
        expected = plain_match(rules, ev)
        got = im.matching_rules(ev)
        assert [r.name for r in got] == expected
        assert im.names(ev) == expected
        assert [(m.name, m.inputs) for m in im.match(ev)] == [(m.name, m.inputs) for m in lm.match(ev)]
        cands = im.candidate_indexes(ev)
        assert cands == sorted(set(cands))                       # rule order, no duplicates
        assert {r.index for r in got} <= set(cands)
    ev = evs[0]
    assert im.explain(ev) == lm.explain(ev)
    for r in im.rules:                                           # rule.pred stays the whole filter
        assert r.pred(ev.data) == compile_predicate(r.filter)(ev.data)


@st.composite
def indexable_rule_sets(draw) -> list[dict]:
    """Many rules in one bucket, keyed on the same few fields: equalities, ``in`` lists
    (with repeats and hash twins) and globs with nested literal prefixes."""
    def cond(draw_) -> dict:
        op = draw_(st.sampled_from(["=", "in", "~", "~"]))
        f = draw_(st.sampled_from(["branch", "path", "files"]))
        if op == "=":
            v = draw_(SCALARS)
        elif op == "in":
            v = draw_(st.lists(SCALARS, max_size=3))
        else:
            v = draw_(st.lists(globs, min_size=1, max_size=2))
        return {"op": op, "field": f, "value": v, "span": [1, 1, 1, 2]}
    rules = []
    for i in range(draw(st.integers(2, 16))):
        parts = [cond(draw) for _ in range(draw(st.integers(1, 2)))]
        if draw(st.booleans()):
            parts.append({"op": "!=", "field": "author", "value": "bot", "span": [1, 1, 1, 2]})
        filt = parts[0] if len(parts) == 1 else {"op": "and", "args": parts}
        rules.append({"name": f"r{i}", "source": "git", "types": draw(st.sampled_from([None, ["push"]])),
                      "filter": filt, "action": "d", "args": {}, "policies": {}, "trigger": "git.push"})
    return rules


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(indexable_rule_sets(), st.data())
def test_index_agrees_on_many_keyed_rules(rules: list[dict], data) -> None:
    im = IndexedMatcher(rules)
    for _ in range(data.draw(st.integers(1, 6))):
        ev_data: dict = {}
        if data.draw(st.booleans()):
            ev_data["author"] = data.draw(st.sampled_from(["bot", "me"]))
        for r in data.draw(st.lists(st.sampled_from(rules), min_size=1, max_size=3)):
            for c in conjuncts(r["filter"]):
                if c["field"] == "author":
                    continue
                good = data.draw(satisfying(c, SCALARS))
                how = data.draw(st.sampled_from(["alone", "list", "twin", "append"]))
                if how == "append" and isinstance(ev_data.get(c["field"]), list):
                    ev_data[c["field"]].append(good)
                else:
                    ev_data[c["field"]] = {"alone": good, "list": [good], "twin": TWINS.get(good, good),
                                           "append": [good]}[how]
        ev = Event("git", "push", ev_data)
        expected = plain_match(rules, ev)
        assert im.names(ev) == expected
        assert [r.name for r in im.matching_rules(ev)] == expected


@settings(max_examples=300, deadline=None)
@given(filters, events)
def test_fast_predicate_is_the_reference_predicate(node: dict, ev: Event) -> None:
    p = fast_predicate(node)
    assert (True if p is None else p(ev.data)) == compile_predicate(node)(ev.data)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from(GLOBS + ["src/[xa]*/**", "a\\*b", "**/x/*", "src/**/"]), min_size=1, max_size=3),
       st.sampled_from(STRINGS + ["src/", "src/x/", "a*b", "x/x/q", "srcx/y.py", "a\nb"]))
def test_split_globs_match_like_whole_globs(globs: list[str], s: str) -> None:
    assert _glob_test(globs)(s) == any(compile_glob(g).match(s) is not None for g in globs)


@settings(max_examples=200, deadline=None)
@given(trees)
def test_the_residual_and_the_access_path_are_the_filter(node: dict) -> None:
    """When a hit proves the access condition, residual + that condition == the filter."""
    entries, residual, exact = plan_rule(node)
    if entries is None or not exact:
        assert residual is node
    else:
        assert all(isinstance(k, str) for kind, _, k in entries if kind == "eq")


# =========================================================================== the cases by name

@pytest.mark.parametrize("cond, files, expected", [
    ('files ~ "docs/**"', ["src/a.py", "docs/b.md"], True),      # any element
    ('files ~ "docs/**"', ["src/a.py"], False),
    ('files !~ "docs/**"', ["docs/a.md", "src/b.py"], True),    # some file outside docs
    ('files !~ "docs/**"', ["docs/a.md"], False),
    ('not files ~ "docs/**"', ["src/a.py"], True),              # no file under docs
    ('files = "a"', ["b", "a"], True),
    ('files in ["x", "a"]', ["q", "a"], True),
    ('files in ["x", "a"]', ["q"], False),
    ('files not in ["a", "b"]', ["a", "c"], True),
    ('files ~ ["docs/**", "*.md"]', ["x/y", "README.md"], True),
    ('files ~ "src/**/*.py"', ["src/a/b/c.py"], True),
    ('files ~ "src/**/*.py"', ["src/a/b/c.pyc"], False),
    ('files = "a" files = "b"', ["a", "b"], True),              # two elements, two conditions
])
def test_list_fields_any_element(cond: str, files: list, expected: bool) -> None:
    assert names(f"r: on git.push {cond} run d", "git", "push", {"files": files}) == (["r"] if expected else [])


@pytest.mark.parametrize("cond", ['files ~ "**"', 'files !~ "docs/**"', 'files != "a"', 'files = "a"',
                                  'files in ["a"]', 'files not in ["a"]'])
def test_empty_lists_hold_no_condition(cond: str) -> None:
    assert names(f"r: on git.push {cond} run d", "git", "push", {"files": []}) == []
    assert names(f"r: on git.push not {cond} run d", "git", "push", {"files": []}) == ["r"]


@pytest.mark.parametrize("cond, expected", [
    ('author != "bot"', True), ('author !~ "bot*"', True), ('author not in ["bot"]', True),
    ('author = "bot"', False), ('author ~ "*"', False), ('author in ["bot"]', False), ("has author", False),
    ('branch = "main" author != "bot"', True), ('branch = "main" author = "x"', False),
])
@pytest.mark.parametrize("absent", [{}, {"author": None}])
def test_missing_and_null_fields(cond: str, expected: bool, absent: dict) -> None:
    data = {"branch": "main", **absent}
    assert names(f"r: on git.push {cond} run d", "git", "push", data) == (["r"] if expected else [])


def _rule(name: str, filt: dict | None, source: str = "git", types: list | None = None) -> dict:
    return {"name": name, "source": source, "types": types, "filter": filt, "action": "d", "args": {},
            "policies": {}, "trigger": f"{source}.*"}


def test_bool_and_number_never_equal() -> None:
    """``true`` and ``1`` share a hash-table slot: the index must still keep them apart."""
    rules = [_rule("one", {"op": "=", "field": "v", "value": 1}),
             _rule("true", {"op": "=", "field": "v", "value": True}),
             _rule("onef", {"op": "=", "field": "v", "value": 1.0}),
             _rule("in", {"op": "in", "field": "v", "value": [True, "1"]}),
             _rule("str", {"op": "=", "field": "v", "value": "1"})]
    for v, expected in [(1, ["one", "onef"]), (True, ["true", "in"]), (1.0, ["one", "onef"]),
                        ("1", ["in", "str"]), ([1, True], ["one", "true", "onef", "in"]), (0, []), (False, [])]:
        assert both(rules, Event("git", "push", {"v": v})) == expected, v


def test_bool_field_through_the_front_end() -> None:
    rules = 'f: on git.push forced=true run d\nn: on git.push forced=false run d\n'
    assert names(rules, "git", "push", {"forced": True}) == ["f"]
    assert names(rules, "git", "push", {"forced": 1}) == []
    assert names(rules, "git", "push", {"forced": 0}) == []


def test_in_lists_are_several_keys() -> None:
    rules = manifest_rules('a: on git.push branch in ["main", "dev"] run d\n'
                           'b: on git.push branch in ["dev", "qa"] run d\n')
    rules.append(_rule("c", {"op": "in", "field": "branch", "value": []}, types=["push"]))  # never holds
    m = IndexedMatcher(rules)
    assert m.stats()["git.push"]["eq_fields"] == {"branch": 3} and m.stats()["git.push"]["always"] == 0
    assert both(rules, Event("git", "push", {"branch": "dev"})) == ["a", "b"]
    assert both(rules, Event("git", "push", {"branch": "qa"})) == ["b"]
    assert both(rules, Event("git", "push", {"branch": ["main", "qa", "dev"]})) == ["a", "b"]  # deduplicated


@pytest.mark.parametrize("glob, path, expected", [
    ("src/**", "src/a/b.py", True), ("src/**", "src", False), ("src/**", "srcx/a", False),
    ("src/**/*.py", "src/a.py", True), ("src/**/*.py", "src/a/b/c.py", True), ("src/**/*.py", "lib/a.py", False),
    ("**/*.md", "README.md", True), ("**/*.md", "a/b/c.md", True), ("*.md", "a/b.md", False),
    ("src/*", "src/a", True), ("src/*", "src/a/b", False), ("docs/?.md", "docs/a.md", True),
    ("src/[ab]*.py", "src/b1.py", True), ("src/[ab]*.py", "src/c1.py", False), ("README.md", "README.md", True),
    ("s", "s", True), ("s", "src", False), ("**", "", True),
])
def test_globs_with_prefixes_and_double_stars(glob: str, path: str, expected: bool) -> None:
    rules = f'r: on file.changed path ~ "{glob}" run d\nother: on file.changed path ~ "zzz/**" run d\n'
    assert names(rules, "file", "modified", {"path": path}) == (["r"] if expected else [])


def test_nested_prefixes_all_found() -> None:
    rules = manifest_rules("".join(f'r{i}: on file.changed path ~ "{g}" run d\n' for i, g in enumerate(
        ["s*", "src/**", "src/a/**", "src/a/b*", "src/ab/**", "t/**", "**/*.py", "src/a"])))
    m = IndexedMatcher(rules)
    assert m.stats()["file.modified"]["always"] == 0
    assert both(rules, Event("file", "modified", {"path": "src/a/bc.py"})) == ["r1", "r2", "r3", "r6"]
    assert both(rules, Event("file", "modified", {"path": "src/a"})) == ["r1", "r7"]
    assert both(rules, Event("file", "modified", {"path": "src/ab/x.py"})) == ["r1", "r4", "r6"]
    assert both(rules, Event("file", "modified", {"path": "sx"})) == ["r0"]
    # exactly the stored prefixes of the path are candidates: "", "s", "src/" (not "src/a/b",
    # the largest key below "src/a0", nor its parent "src/a/")
    assert m.candidate_indexes(Event("file", "modified", {"path": "src/a0"})) == [0, 1, 6]
    assert both(rules, Event("file", "modified", {"path": 3})) == []


def test_regex_residuals() -> None:
    rules = manifest_rules('a: on git.push message ~ /fix(es)?\\b/i run d\n'
                           'b: on git.push branch="main" message ~ /^release/ run d\n'
                           'c: on git.push branch="main" message !~ /wip/ run d\n')
    m = IndexedMatcher(rules)
    assert m.stats()["git.push"]["always"] == 1  # a regex alone is no access path
    assert both(rules, Event("git", "push", {"branch": "main", "message": "release: Fixes #1"})) == ["a", "b", "c"]
    assert both(rules, Event("git", "push", {"branch": "dev", "message": "release wip"})) == []
    assert both(rules, Event("git", "push", {"branch": "main", "message": "wip"})) == []


def test_or_and_not() -> None:
    rules = manifest_rules('a: on git.push branch="main" or branch="dev" run d\n'
                           'b: on git.push (branch="main" or tag ~ "v*") author != "bot" run d\n'
                           'c: on git.push branch="main" or author != "bot" run d\n'
                           'd: on git.push not branch="main" run d\n'
                           'e: on git.push not (branch="main" or branch="dev") run d\n')
    st_ = IndexedMatcher(rules).stats()["git.push"]
    assert st_["always"] == 3 and st_["eq_fields"] == {"branch": 2} and st_["prefix_fields"] == {"tag": 1}
    assert both(rules, Event("git", "push", {"branch": "main", "author": "bot"})) == ["a", "c"]
    assert both(rules, Event("git", "push", {"branch": "x", "tag": "v1", "author": "me"})) == ["b", "c", "d", "e"]
    assert both(rules, Event("git", "push", {"branch": "dev", "author": "bot"})) == ["a", "d"]
    assert both(rules, Event("git", "push", {})) == ["c", "d", "e"]


def test_types_null_matches_every_type() -> None:
    rules = ('any: on http.request path="/h" run d\npost: on http.post path="/h" run d\n'
             'star: on git.* branch="main" run d\npush: on git.push branch="main" run d\n')
    for method in ("post", "get", "delete"):
        expected = ["any", "post"] if method == "post" else ["any"]
        assert names(rules, "http", method, {"path": "/h", "method": method.upper()}) == expected
    assert names(rules, "git", "push", {"branch": "main"}) == ["star", "push"]
    assert names(rules, "git", "tag", {"branch": "main"}) == ["star"]
    assert names(rules, "git", "never-named", {"branch": "main"}) == ["star"]
    assert names(rules, "github", "push", {"branch": "main"}) == []


def test_file_changed_is_three_types() -> None:
    rules = 'r: on file.changed path ~ "src/**" run d\nc: on file.created run d\n'
    assert names(rules, "file", "created", {"path": "src/a"}) == ["r", "c"]
    assert names(rules, "file", "deleted", {"path": "src/a"}) == ["r"]


def test_schedule_rules_keyed_by_their_implicit_rule_condition() -> None:
    rules = manifest_rules('nightly: on cron "0 3 * * *" run d\nhealth: on every 5m run d\n'
                           'late: on every 1h time > "2020-01-01T00:00:00Z" run d\n')
    st_ = IndexedMatcher(rules).stats()["schedule.tick"]
    assert st_["always"] == 0 and st_["eq_fields"] == {"rule": 3}
    assert both(rules, Event("schedule", "tick", {"rule": "nightly"})) == ["nightly"]
    assert both(rules, Event("schedule", "tick", {"rule": "health"})) == ["health"]
    assert both(rules, Event("schedule", "tick", {"rule": "late", "time": "2024-05-01T00:00:00Z"})) == ["late"]
    assert both(rules, Event("schedule", "tick", {"rule": "late", "time": "2019-05-01T00:00:00Z"})) == []
    assert both(rules, Event("schedule", "tick", {})) == []


def test_payload_paths_and_maps() -> None:
    rules = manifest_rules('a: on http.post path="/h" payload.service="api" run d\n'
                           'b: on http.post path ~ "/hooks/*" payload.ref in ["main", "dev"] run d\n')
    assert both(rules, Event("http", "post", {"path": "/h", "payload": {"service": "api"}})) == ["a"]
    assert both(rules, Event("http", "post", {"path": "/h", "payload": {"service": ["api"]}})) == ["a"]
    assert both(rules, Event("http", "post", {"path": "/h", "payload": "api"})) == []
    assert both(rules, Event("http", "post", {"path": "/hooks/x", "payload": {"ref": "dev"}})) == ["b"]
    assert both(rules, Event("http", "post", {"path": {"x": 1}, "payload": {"ref": "dev"}})) == []


def test_inputs_and_explain_like_the_reference() -> None:
    rules = manifest_rules('a: on git.push branch="main" run d with <sha>\n'
                           'b: on git.push branch="dev" run d with "x"\nc: on git.tag run d\n')
    ev = Event("git", "push", {"branch": "main", "sha": "abc"})
    im, lm = IndexedMatcher(rules), LinearMatcher(rules)
    assert [(m.name, m.inputs) for m in im.match(ev)] == [("a", {"x": "abc"})]
    assert im.explain(ev) == lm.explain(ev) and [r["rule"] for r in im.explain(ev)] == ["b", "c"]
    assert [r.name for r in im.candidates(ev)] == ["a"]


def test_build_matcher_is_the_index() -> None:
    assert isinstance(build_matcher(manifest_rules('r: on git.push run d\n')), IndexedMatcher)


def test_ten_thousand_rules_give_few_candidates() -> None:
    rules = [_rule(f"b{i}", {"op": "and", "args": [
        {"op": "=", "field": "branch", "value": f"feature/{i}"},
        {"op": "!=", "field": "author", "value": "bot"}]}, types=["push"]) for i in range(10_000)]
    rules += [_rule(f"p{i}", {"op": "~", "field": "path", "value": [{"glob": f"svc{i}/src/**/*.py"}]},
                    source="file", types=["modified"]) for i in range(2_000)]
    m = IndexedMatcher(rules)
    assert m.candidate_indexes(Event("git", "push", {"branch": "feature/4242", "author": "x"})) == [4242]
    assert m.names(Event("git", "push", {"branch": "feature/4242", "author": "x"})) == ["b4242"]
    assert m.names(Event("git", "push", {"branch": "feature/4242", "author": "bot"})) == []
    assert len(m.candidate_indexes(Event("file", "modified", {"path": "svc12/src/a.py"}))) == 1
    assert m.names(Event("file", "modified", {"path": "svc12/src/a/b.py"})) == ["p12"]
    # residuals are shared: ten thousand `author != "bot"` are one predicate (the other one
    # is p12's glob, whose prefix a hit does not prove)
    for i in range(0, 10_000, 7):
        m.names(Event("git", "push", {"branch": f"feature/{i}", "author": "x"}))
    assert len(m._shared) == 2


def test_rules_sharing_a_route_are_keyed_on_what_differs() -> None:
    rules = manifest_rules("".join(f'h{i}: on http.post path="/hooks/deploy" payload.service="svc{i}" run d\n'
                                   for i in range(50)) + 'other: on http.post path="/hooks/other" run d\n')
    m = IndexedMatcher(rules)
    st_ = m.stats()["http.post"]
    assert st_["eq_fields"] == {"payload.service": 50, "path": 1} and st_["always"] == 0
    ev = Event("http", "post", {"path": "/hooks/deploy", "payload": {"service": "svc7"}})
    assert m.candidate_indexes(ev) == [7] and both(rules, ev) == ["h7"]
    assert both(rules, Event("http", "post", {"path": "/hooks/other", "payload": {"service": "svc7"}})) == ["other"]


def test_access_paths_prefer_equality() -> None:
    eq = {"op": "=", "field": "a", "value": "x"}
    glob = {"op": "~", "field": "b", "value": [{"glob": "src/**"}]}
    inl = {"op": "in", "field": "c", "value": ["p", "q", "r"]}
    neg = {"op": "!=", "field": "d", "value": "x"}
    assert access_path({"op": "and", "args": [glob, inl, eq, neg]}) == (1.0, [("eq", "a", "x")])
    assert access_path({"op": "and", "args": [glob, neg]})[1] == [("pre", "b", "src/")]
    assert access_path(neg) is None and access_path({"op": "not", "arg": eq}) is None
    assert access_path({"op": "or", "args": [eq, neg]}) is None
    assert plan_rule({"op": "and", "args": [eq, neg]}) == ([("eq", "a", "x")], neg, True)
    assert plan_rule(glob) == ([("pre", "b", "src/")], glob, False)


# =========================================================================== the cache

TRG = 'action d = exec "./run"\nr: on git.push branch="main" run d\n'


def test_cache_round_trip_and_safety(tmp_path: Path) -> None:
    f = tmp_path / "rules.trg"
    f.write_text(TRG)
    d = tmp_path / "cache"
    cold = C.load_or_compile(f, d)
    assert cold.program is not None and cold.ok
    files = sorted(p.name for p in d.iterdir())
    assert len(files) == 2 and "secret.key" in files
    assert oct(d.stat().st_mode & 0o777) == "0o700"
    warm = C.load_or_compile(f, d)
    assert warm.program is None and warm.manifest == cold.manifest == compile_file(f).manifest

    entry = next(p for p in d.iterdir() if p.name != "secret.key")
    raw = entry.read_bytes()
    entry.write_bytes(raw.replace(b'"main"', b'"evil"'))            # tampered: the MAC fails
    assert C.load_or_compile(f, d).program is not None
    assert C.load_or_compile(f, d).program is None                   # rewritten by the compile

    key = entry.name[:-5]
    head, body = entry.read_bytes().split(b"\n", 1)
    entry.write_bytes(json.dumps({"key": "0" * 64, "mac": json.loads(head)["mac"]}).encode() + b"\n" + body)
    assert C.load(d, key) is None                                    # a key that is not ours

    f.write_text(TRG.replace("main", "dev"))                         # new text, new key
    c = C.load_or_compile(f, d)
    assert c.program is not None and c.manifest["rules"][0]["filter"]["value"] == "dev"


def test_cache_refuses_foreign_directories_and_errors(tmp_path: Path) -> None:
    f = tmp_path / "rules.trg"
    f.write_text(TRG)
    d = tmp_path / "cache"
    C.load_or_compile(f, d)
    os.chmod(d, 0o777)                                                # others may write: never read
    assert C.load_or_compile(f, d).program is not None
    os.chmod(d, 0o700)
    (d / "secret.key").write_bytes(b"short")                          # not our secret
    assert C.load_or_compile(f, d).program is not None
    bad = tmp_path / "bad.trg"
    bad.write_text('r: on git.push brnch="main" run d\n')
    d2 = tmp_path / "c2"
    assert not C.load_or_compile(bad, d2).ok and not list(d2.glob("*.json"))  # errors are not cached
    assert C.default_cache_dir({"TRIGGERLANG_CACHE_DIR": "off"}) is None
    assert C.default_cache_dir({"XDG_CACHE_HOME": "/x"}) == Path("/x/triggerlang/compiled")


def test_a_cache_hit_imports_no_parser(tmp_path: Path) -> None:
    """A warm start reads JSON: the parser and the checker stay unimported (and Lark, which
    even a cold start on a file without syntax errors does not load: the shipped tables parse it)."""
    import subprocess
    import sys

    f = tmp_path / "rules.trg"
    f.write_text(TRG)
    code = ("import sys; from pathlib import Path; from triggerlang.compile.cache import load_or_compile; "
            f"c = load_or_compile({str(f)!r}, Path({str(tmp_path / 'c')!r})); "
            "print(type(c).__name__, c.ok, 'lark' in sys.modules, 'triggerlang.check.checker' in sys.modules)")
    runs = [subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
            for _ in range(2)]
    assert runs == [["Compiled", "True", "False", "True"], ["CachedProgram", "True", "False", "False"]]
    assert C._installed("lark").startswith("lark-")


def test_cache_key_covers_name_folder_and_companion() -> None:
    k = C.cache_key(b"text", "a.trg", "/d", None)
    assert len({k, C.cache_key(b"text", "b.trg", "/d", None), C.cache_key(b"text", "a.trg", "/e", None),
                C.cache_key(b"text", "a.trg", "/d", b""), C.cache_key(b"texu", "a.trg", "/d", None)}) == 5


# =========================================================================== triggerc match

def _cli(args: list[str], cache: Path):
    return CliRunner().invoke(main, args, env={"TRIGGERLANG_CACHE_DIR": str(cache)})


def test_cli_batch_output_is_the_reference_output(tmp_path: Path) -> None:
    """The batch fast path prints what DryRun.run + DryRun.text print, errors included."""
    from triggerlang.dryrun import DryRun, EventInputError, read_events

    rules = tmp_path / "rules.trg"
    rules.write_text('action d(x="") = exec "./run" x\n'
                     'a: on git.push branch="main" run d with <sha>\nb: on git.push files ~ "src/**" run d\n'
                     'c: on http.request path="/h" run d\n')
    lines = ['{"source": "git", "type": "push", "data": {"branch": "main", "files": ["src/x"]}}', "", "  ",
             '{"source": "git", "type": "push", "data": {"branch": "dev"}}', "{bad", "[1]",
             '{"source": "git", "type": "push", "data": null}', '{"source": "http", "type": "get"}',
             '{"source": "http", "type": "put", "data": {"path": "/h"}, "id": "e1", "time": "t"}',
             '{"source": "", "type": "x"}', '{"source": "git", "type": "push", "data": []}']
    events = tmp_path / "events.jsonl"
    events.write_text("\n".join(lines) + "\n")
    c = compile_file(rules)
    dry = DryRun(c.manifest, LinearMatcher(c.manifest["rules"]))
    expected = ""
    for item in read_events(str(events), None, True):
        expected += (json.dumps({"error": str(item)}) + "\n" if isinstance(item, EventInputError)
                     else dry.text(dry.run(item), True))
    for _ in range(2):  # cold, then from the cache
        r = _cli(["match", str(rules), str(events)], tmp_path / "cache")
        assert r.exit_code == 1 and r.output == expected
    assert expected.splitlines()[:3] == ["a, b", "(no match)", '{"error": "%s:5: not valid JSON '
                                         '(Expecting property name enclosed in double quotes)"}' % events]
    r = _cli(["match", str(rules), str(tmp_path / "missing.jsonl")], tmp_path / "cache")
    assert r.exit_code == 1 and "no such file" in r.output


BATCH_JSON_RULES = """\
action d(x="", y="def") = exec "./run" x "--y" y
action e(w) = exec w "tail"
action s(a=[1, "two"]) = shell "echo \\"$TRG_INPUT_A\\""
action h = http post "http://127.0.0.1:9/x"
action n(v="") = exec "./n" v
a: on git.push branch="main" run d with <sha>
b: on git.push files ~ "src/**" run d with <message>, <author>
c: on git.push branch="main" run e with <author>
f: on git.push branch="main" run s
g: on git.push branch="main" run h
k: on git.push branch="main" run d with y=<files>
m: on git.push branch="main" run n with "const"
u: on http.request path="/h" run d with x=<headers.x-a>
v: on http.request path="/h" run d with <payload.x.y>, <payload.z>
"""


def _reference_json(dry, events: Path) -> str:
    from triggerlang.dryrun import EventInputError, read_events

    out = ""
    for item in read_events(str(events), None, True):
        out += (json.dumps({"error": str(item)}) if isinstance(item, EventInputError)
                else json.dumps(dry.run(item), ensure_ascii=False, separators=(",", ":"))) + "\n"
    return out


def test_cli_batch_json_output_is_the_reference_output(tmp_path: Path) -> None:
    """``--format json`` on a .jsonl file prints what DryRun.run + json.dumps print, line for
    line: inputs from fields, literals and defaults, list inputs spread over argv, a missing
    field's default, an empty first word (no argv), shell and http actions, errors."""
    from triggerlang.dryrun import DryRun

    rules = tmp_path / "rules.trg"
    rules.write_text(BATCH_JSON_RULES)
    docs = [{"source": "git", "type": "push", "data": {"branch": "main", "sha": "é\u2028\"\\\x01", "author": ""}},
            {"source": "git", "type": "push", "data": {"branch": "main", "sha": 3.5, "author": "x",
                                                       "files": ["src/a", 2, None, {"k": [1]}]}},
            {"source": "git", "type": "push", "data": {"branch": "main", "files": [], "author": ["p", "q"]}},
            {"source": "git", "type": "push", "data": {"branch": "dev", "files": ["src/z"], "message": "m"}},
            {"source": "http", "type": "post", "data": {"path": "/h", "headers": {"x-a": "1"},
                                                        "payload": {"x": {"y": {"deep": True}}, "z": "zz"}}},
            {"source": "http", "type": "get", "data": {"path": "/h"}}]
    lines = [json.dumps(d) for d in docs] + ["", "{bad", '{"source": "git", "type": "push", "data": null}',
                                             '{"source": "git", "type": "push", "data": {"branch": "main", '
                                             '"sha": "\\ud800", "author": 1e400}}']
    events = tmp_path / "events.jsonl"
    events.write_text("\n".join(lines) + "\n")
    c = compile_file(rules)
    expected = _reference_json(DryRun(c.manifest, LinearMatcher(c.manifest["rules"])), events)
    expected = expected.encode("utf-8", "backslashreplace").decode()  # (how the CLI prints a lone surrogate)
    for _ in range(2):  # cold, then from the cache
        r = _cli(["match", str(rules), str(events), "--format", "json"], tmp_path / "cache")
        assert r.exit_code == 1 and r.output == expected
    first, _, third = (json.loads(line)["matches"] for line in expected.split("\n")[:3])
    assert [m["rule"] for m in first] == ["a", "c", "f", "g", "k", "m"]
    assert first[1]["argv"] is None                      # c: the first word is the empty author
    assert first[4]["argv"] == ["./run", "", "--y", "def"]  # k: no files: y's default, as for a null
    assert third[4]["argv"] == ["./run", "", "--y"]      # k: an empty list of files: no word
    assert third[1]["argv"] == ["p", "q", "tail"]        # c: a list spreads over the argv


JSON_VALUE = st.recursive(st.one_of(st.none(), st.booleans(), st.integers(-2**70, 2**70), st.floats(),
                                    st.text(max_size=6)),
                          lambda kids: st.lists(kids, max_size=3) | st.dictionaries(st.text(max_size=3), kids,
                                                                                     max_size=3), max_leaves=6)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.one_of(
    st.fixed_dictionaries({"source": st.just("git"), "type": st.just("push"), "data": st.fixed_dictionaries(
        {"branch": st.sampled_from(["main", "dev"]), "sha": JSON_VALUE, "author": JSON_VALUE, "files": JSON_VALUE},
        optional={"message": JSON_VALUE})}),
    st.fixed_dictionaries({"source": st.just("http"), "type": st.just("post"), "data": st.fixed_dictionaries(
        {"path": st.just("/h"), "headers": st.dictionaries(st.sampled_from(["x-a", "x-b"]), JSON_VALUE),
         "payload": JSON_VALUE})})), min_size=1, max_size=6))
def test_batch_json_is_the_reference_on_any_field_values(tmp_path: Path, docs: list[dict]) -> None:
    from triggerlang.dryrun import DryRun, batch_json

    c = compile_text(BATCH_JSON_RULES, str(tmp_path / "r.trg"))
    manifest = c.manifest
    events = tmp_path / "events.jsonl"
    events.write_text("".join(json.dumps(d) + "\n" for d in docs))
    expected = _reference_json(DryRun(manifest, LinearMatcher(manifest["rules"])), events)
    got: list[str] = []
    batch_json(str(events), None, DryRun(manifest, build_matcher(manifest["rules"])), got.append)
    assert "".join(got) == expected


def test_cli_json_and_explain_unchanged(tmp_path: Path) -> None:
    rules = tmp_path / "rules.trg"
    rules.write_text('action d(x="") = exec "./run" x\na: on git.push branch="main" run d with <sha>\n'
                     'b: on git.push branch="dev" run d\n')
    ev = tmp_path / "e.json"
    ev.write_text('{"source": "git", "type": "push", "data": {"branch": "main", "sha": "abc"}}')
    r = _cli(["match", str(rules), str(ev), "--format", "json", "--explain"], tmp_path / "cache")
    assert r.exit_code == 0
    out = json.loads(r.output)
    assert out["matches"] == [{"rule": "a", "action": "d", "inputs": {"x": "abc"}, "argv": ["./run", "abc"]}]
    assert [x["rule"] for x in out["not_matched"]] == ["b"]
