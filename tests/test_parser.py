"""The parser (SPEC §1-§3, §5, §10): every grammar rule read and rejected, error recovery,
spans, literals, reserved words, comments and continuation lines."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from triggerlang.syntax import ast as A
from triggerlang.syntax.parser import RESERVED, parse, split_declarations

GRAMMAR = Path(__file__).resolve().parents[1] / "grammar" / "triggerlang.lark"

ACTION = 'action deploy(sha, stage="s") = exec "./deploy.sh" sha stage\n'


def ok(text: str) -> A.Module:
    module, diags = parse(text)
    assert [(d.code, d.span.start.line, d.message) for d in diags] == []
    return module


def errors(text: str) -> list[tuple[str, int, int]]:
    _, diags = parse(text)
    return [(d.code, d.span.start.line, d.span.start.column) for d in diags]


def one(text: str):
    module = ok(text)
    assert len(module.decls) == 1, module.decls
    return module.decls[0]


# --------------------------------------------------------------------------- every rule

# rule or alias name in grammar/triggerlang.lark -> (text that parses, text that does not)
GRAMMAR_CASES: dict[str, tuple[str, str]] = {
    "start": ('let a = 1', 'let a = 1 2'),
    "decl": ('source git poll=1s', 'sauce git poll=1s'),
    "let_decl": ('let main = "main"', 'let main "main"'),
    "include_decl": ('include "common.trg"', 'include common.trg'),
    "secret_decl": ('secret gh = env "GH_SECRET"', 'secret gh = vault "GH_SECRET"'),
    "source_decl": ('source github path="/gh" secret=gh', 'source github path'),
    "option": ('source http port=9000', 'source http port=9000 token'),
    "action_decl": ('action lint = shell "ruff check ."', 'action lint shell "ruff"'),
    "params": ('action d(a, b,) = exec "x" a b', 'action d(a,, b) = exec "x" a b'),
    "param": ('action d(a="x") = exec "x" a', 'action d(a=) = exec "x" a'),
    "exec_body": ('action d = exec "make" "all"', 'action d = exec'),
    "exec_word": ('action d(t) = exec "make" r"-C\\x" t', 'action d = exec "make" 3'),
    "argv_str": ('action d = exec "make"', 'action d = exec "make'),
    "argv_ref": ('action d(target) = exec "make" target', 'action d(target) = exec "make" <target>'),
    "exec_assign": ('action d = exec "make" env CC="gcc"', 'action d = exec "make" env CC=gcc'),
    "other_body": ('action d = shell "make"', 'action d = bash "make"'),
    "shell_body": ('action d = shell "make && make install"', 'action d = shell make'),
    "http_body": ('action d = http post "http://127.0.0.1:9000/runs" secret=s',
                  'action d = http post secret=s'),
    "action_opt": ('action d = shell "make" cwd "build" env CC="cc"', 'action d = shell "make" cwd'),
    "opt_cwd": ('action d = shell "make" cwd "build"', 'action d = shell "make" cwd build'),
    "opt_env": ('action d = shell "make" env CC="cc"', 'action d = shell "make" env CC'),
    "opt_stop": ('action d = exec "app" stop SIGINT grace 30s env env="1"', 'action d = exec "app" stop "SIGINT"'),
    "opt_stop_grace": ('action d = shell "app" cwd "x" stop grace 1m env A="1"', 'action d = shell "app" stop grace g'),
    "rule": ('deploy_main: on git.push run deploy', 'deploy_main: git.push run deploy'),
    "trigger": ('on git.push run d', 'on git run d'),
    "event_trigger": ('on github.* run d', 'on github.push.x run d'),
    "every_trigger": ('on every 15m run d', 'on every 15 run d'),
    "cron_trigger": ('on cron "0 3 * * 1-5" tz "Europe/Paris" run d', 'on cron 0 3 run d'),
    "catch_up": ('on cron "0 3 * * *" tz "Europe/Paris" catch up run d', 'on every 6h catch run d'),
    "filter": ('on git.push branch="a" run d', 'on git.push branch run d'),
    "or_expr": ('on git.push branch="a" or branch="b" run d', 'on git.push branch="a" or run d'),
    "and_expr": ('on git.push branch="a" and tag="b" run d', 'on git.push branch="a" and and tag="b" run d'),
    "not_expr": ('on git.push not branch="a" run d', 'on git.push not run d'),
    "atom": ('on git.push (branch="a" or tag="b") sha="c" run d', 'on git.push (branch="a" run d'),
    "condition": ('on git.push commits >= 2 run d', 'on git.push commits => 2 run d'),
    "compare": ('on git.push branch ~ "release/*" run d', 'on git.push branch ~~ "x" run d'),
    "compare_not_in": ('on git.push author not in ["bot"] run d', 'on git.push author in not ["bot"] run d'),
    "has": ('on github.push has payload.head_commit run d', 'on github.push has run d'),
    "field": ('on http.post headers.x-github-event="push" run d', 'on http.post headers.="push" run d'),
    "with_args": ('on git.push run d with <sha>, "prod"', 'on git.push run d with <sha>,'),
    "arg": ('on git.push run d with 1', 'on git.push run d with ='),
    "named_arg": ('on git.push run d with sha=<sha>', 'on git.push run d with sha=='),
    "arg_value": ('on git.push run d with [1, 2]', 'on git.push run d with (1)'),
    "placeholder": ('on git.push run d with <payload.head_commit.id>', 'on git.push run d with <sha'),
    "policy": ('on git.push run d busy skip', 'on git.push run d busy'),
    "p_debounce": ('on file.changed run d debounce 250ms', 'on file.changed run d debounce 250'),
    "p_busy": ('on git.push run d busy restart', 'on git.push run d busy "restart"'),
    "p_timeout": ('on git.push run d timeout 10m', 'on git.push run d timeout'),
    "p_retry": ('on git.push run d retry 3 backoff 30s', 'on git.push run d retry 3 backoff'),
    "p_dedupe": ('on git.push run d dedupe <sha> for 1h', 'on git.push run d dedupe sha for 1h'),
    "dur_value": ('let t = 1m\non git.push run d timeout t', 'on git.push run d timeout "1m"'),
    "num_value": ('let n = 2\non git.push run d retry n', 'on git.push run d retry 2s'),
    "test_decl": ('test "t":\n    given git.push\n    expect none', 'test "t":'),
    "test_step": ('test "t":\n    wait 1m\n    expect none', 'test "t":\n    sleep 1m\n    expect none'),
    "wait_step": ('test "t":\n    wait 10m\n    expect none', 'test "t":\n    wait\n    expect none'),
    "at_step": ('test "t":\n    at "2024-03-04T02:30:00+01:00"\n    expect none',
                'test "t":\n    at 2024\n    expect none'),
    "expect_open": ('test "t":\n    given git.push\n    expect open r key "a" missing b, c',
                    'test "t":\n    given git.push\n    expect open key "a"'),
    "expect_expired": ('test "t":\n    wait 1h\n    expect expired r missing b',
                       'test "t":\n    wait 1h\n    expect expired r missing'),
    "expect_key": ('test "t":\n    wait 1h\n    expect open r key ("a", 1,)',
                   'test "t":\n    wait 1h\n    expect open r key'),
    "expect_missing": ('test "t":\n    wait 1h\n    expect open r missing a, b',
                       'test "t":\n    wait 1h\n    expect open r missing a,'),
    "given": ('test "t":\n    given git.push branch="a" sha="b"\n    expect none',
              'test "t":\n    given git\n    expect none'),
    "given_field": ('test "t":\n    given git.push files=["a"]\n    expect none',
                    'test "t":\n    given git.push files ~ "a"\n    expect none'),
    "expect": ('test "t":\n    given git.push\n    expect r1', 'test "t":\n    given git.push\n    expect'),
    "expect_match": ('test "t":\n    given git.push\n    expect r1 with sha="x"',
                     'test "t":\n    given git.push\n    expect r1 with'),
    "expect_not": ('test "t":\n    given git.push\n    expect not r1',
                   'test "t":\n    given git.push\n    expect not r1, r2'),
    "expect_only": ('test "t":\n    given git.push\n    expect only r1, r2',
                    'test "t":\n    given git.push\n    expect only'),
    "expect_none": ('test "t":\n    given git.push\n    expect none', 'test "t":\n    given git.push\n    expect none r1'),
    # correlation triggers (§11)
    "corr_rule": ('on all(git.push as a, git.tag as b) within 1h run d', 'on all(git.push, git.tag) within 1h'),
    "corr": ('on any(git.push, git.tag) run d', 'on any git.push, git.tag run d'),
    "correlation": ('on seq(git.push as a, git.tag as b) same <sha> within 5m max 10 run d',
                    'on seq(git.push, git.tag) within 5m same <sha> run d'),
    "count_correlation": ('on 3 of git.push same <branch> within 10m run d', 'on 3 of git.push within run d'),
    "corr_tail": ('on 2 of git.push within 1m max 5 run d', 'on 2 of git.push max 5 within 1m run d'),
    "corr_same": ('on all(git.push, git.tag) same <repo>, <sha> within 1h run d',
                  'on all(git.push, git.tag) same repo within 1h run d'),
    "corr_within": ('on all(git.push, git.tag) within 1h run d', 'on all(git.push, git.tag) within "1h" run d'),
    "corr_max": ('on all(git.push, git.tag) within 1h max 100 run d', 'on all(git.push, git.tag) within 1h max run d'),
    "paren_group": ('on all(git.push, git.tag,) within 1h run d', 'on all() within 1h run d'),
    "g_all": ('on all(git.push, git.tag) within 1h run d', 'on all(git.push git.tag) within 1h run d'),
    "g_any": ('on any(git.push as a, git.tag as b) run d', 'on any(git.push as, git.tag) run d'),
    "g_seq": ('on seq(file.modified, git.push) within 5m run d', 'on seq(file.modified, git.push within 5m run d'),
    "g_n_of": ('on 2 of (git.push, git.tag, git.merge) within 5m run d', 'on 2 of (git.push, git.tag within 5m run d'),
    "items": ('on all(git.push, git.tag,) within 5m run d', 'on all(git.push,, git.tag) within 5m run d'),
    "item": ('on all(git.push, any(git.tag, git.merge)) within 5m run d', 'on all(git.push, 3) within 5m run d'),
    "nested": ('on seq(git.push, all(git.tag, git.merge) within 1m) within 5m run d',
               'on seq(git.push, all(git.tag, git.merge) max 2) within 5m run d'),
    "nested_count": ('on seq(git.push, 2 of git.tag) within 5m run d', 'on seq(git.push, 2 of) within 5m run d'),
    "nested_same": ('on all(git.push, any(git.tag, git.merge) same <sha>) within 5m run d',
                    'on all(git.push, any(git.tag, git.merge) same <a>, <b>) within 5m run d'),
    "nested_absent": ('on all(git.push, absent(git.tag)) within 5m run d',
                      'on all(git.push, absent(git.tag) for 5m) within 5m run d'),
    "member": ('on all(git.push branch="main" as p key <sha>, git.tag as t key <sha>) within 1h run d',
               'on all(git.push key <sha> as p, git.tag) within 1h run d'),
    "member_key": ('on all(git.push key (<repo>, <sha>,), git.tag) within 1h run d',
                   'on all(git.push key (), git.tag) within 1h run d'),
    "absence": ('on absent(git.tag) after git.push same <sha> within 1h run d', 'on absent git.tag for 1h run d'),
    "absence_tail": ('on absent(http.post path="/h") same <query.host> in ["a"] for 5m max 3 run d',
                     'on absent(http.post path="/h") in ["a"] for 5m run d'),
    "absent_window": ('on absent(git.push) for 1h run d', 'on absent(git.push) during 1h run d'),
    "aw_within": ('on absent(git.tag) after git.push within 1h run d', 'on absent(git.tag) after git.push within run d'),
    "aw_for": ('on absent(git.push) for 1h run d', 'on absent(git.push) for run d'),
    "aw_between": ('on absent(ci.completed) between cron "30 2 * * *" and cron "0 6 * * *" tz "Europe/Paris" run d',
                   'on absent(ci.completed) between cron "30 2 * * *" cron "0 6 * * *" run d'),
    "value": ('let v = true', 'let v = @'),
    "true": ('let v = true', 'let v = True True'),
    "false": ('let v = false', 'let v = false false'),
    "list": ('let v = ["a", 1, 2s, /x/, true, [],]', 'let v = ["a" 1]'),
    "ref": ('let v = other', 'let v = other.x'),
    "string": ('let v = "a\\"b"', 'let v = "a\\"'),
    "regex": ('let v = /^v\\d+\\/x/ims', 'let v = /unclosed'),
    "number": ('let v = -12.5', 'let v = 12.'),
    "duration": ('let v = 1.5h', 'let v = 5min'),
}


def _grammar_names() -> set[str]:
    text = re.sub(r"//[^\n]*", "", GRAMMAR.read_text("utf-8"))
    rules = set(re.findall(r"^\??([a-z_][a-z0-9_]*)\s*:", text, re.M))
    aliases = set(re.findall(r"->\s*([a-z_][a-z0-9_]*)", text))
    return rules | aliases


def test_every_grammar_rule_has_cases() -> None:
    names = _grammar_names()
    assert {"rule", "compare_not_in", "p_dedupe", "expect_only"} <= names  # the scan works
    missing = sorted(names - set(GRAMMAR_CASES))
    assert not missing, f"grammar rules without a passing and a failing case: {missing}"
    stale = sorted(set(GRAMMAR_CASES) - names)
    assert not stale, f"cases for rules the grammar no longer has: {stale}"


@pytest.mark.parametrize("rule", sorted(GRAMMAR_CASES))
def test_grammar_rule_accepts(rule: str) -> None:
    good, _ = GRAMMAR_CASES[rule]
    module = ok(good)
    assert module.decls


@pytest.mark.parametrize("rule", sorted(GRAMMAR_CASES))
def test_grammar_rule_rejects(rule: str) -> None:
    _, bad = GRAMMAR_CASES[rule]
    module, diags = parse(bad)
    codes = [d.code for d in diags]
    # a duration the lexer cannot read (5min, 250 or `every 15` without a unit) is TRG304 at the duration
    syntax = ("TRG001", "TRG002", "TRG304") if rule in ("duration", "p_debounce", "every_trigger") \
        else ("TRG001", "TRG002")
    assert len(codes) == 1 and codes[0] in syntax, (bad, [(d.code, d.message) for d in diags])
    assert diags.items[0].span.start.line <= bad.count("\n") + 1
    assert module.decls == ()  # the broken declaration is dropped, not half-read


# --------------------------------------------------------------------------- trees

def test_rule_tree() -> None:
    r = one('deploy_main: on git.push branch="main" author != "bot" run deploy with <sha>, stage="prod" timeout 10m')
    assert r == A.Rule(
        A.Name("deploy_main"), A.EventTrigger(A.Name("git"), A.Name("push")),
        A.And((A.Compare(A.FieldPath(("branch",)), "=", A.Str("main")),
               A.Compare(A.FieldPath(("author",)), "!=", A.Str("bot")))),
        A.Name("deploy"),
        (A.Arg(None, A.Placeholder(A.FieldPath(("sha",)))), A.Arg(A.Name("stage"), A.Str("prod"))),
        (A.Policy("timeout", A.Duration(600_000)),),
    )
    assert r.name == "deploy_main"


def test_unlabelled_rule_is_named_after_its_line() -> None:
    module = ok('let a = 1\n\non git.push run d\n')
    assert module.decls[1].name == "L3"


def test_precedence_not_over_and_over_or() -> None:
    r = one('on git.push not branch="a" tag="b" or sha="c" and has files run d')
    f = r.filter
    assert isinstance(f, A.Or) and len(f.items) == 2
    left, right = f.items
    assert isinstance(left, A.And) and isinstance(left.items[0], A.Not)
    assert left.items[0].expr == A.Compare(A.FieldPath(("branch",)), "=", A.Str("a"))
    assert isinstance(right, A.And) and right.items[1] == A.Has(A.FieldPath(("files",)))


def test_parentheses_override_precedence() -> None:
    r = one('on git.push (branch="a" or branch="b") tag="t" run d')
    assert isinstance(r.filter, A.And) and isinstance(r.filter.items[0], A.Or)


def test_and_chains_flatten() -> None:
    r = one('on git.push a="1" b="2" and c="3" d="4" run d')
    assert isinstance(r.filter, A.And) and len(r.filter.items) == 4


@pytest.mark.parametrize("op", ["=", "!=", "~", "!~", "<", "<=", ">", ">=", "in", "not in"])
def test_every_operator(op: str) -> None:
    r = one(f'on git.push commits {op} x run d')
    assert r.filter.op == op and r.filter.value == A.Ref("x")


def test_triggers() -> None:
    assert one('on github.* run d').trigger == A.EventTrigger(A.Name("github"), A.Name("*"))
    every = one('on every 15m run d').trigger
    assert every == A.EveryTrigger(A.Duration(900_000))
    cron = one('on cron "0 3 * * 1-5" tz "Europe/Paris" run d').trigger
    assert cron == A.CronTrigger(A.Str("0 3 * * 1-5"), A.Str("Europe/Paris"))
    assert one('on cron "0 3 * * *" run d').trigger.tz is None
    assert one('on every 6h catch up run d').trigger == A.EveryTrigger(A.Duration(21_600_000), catch_up=True)
    assert one('on cron "0 3 * * *" catch up run d').trigger.catch_up
    # a field whose name starts like the keyword is still a field
    assert one('on every 6h catch_up=true run d').filter == A.Compare(A.FieldPath(("catch_up",)), "=", A.Bool(True))


def test_policies() -> None:
    r = one('on git.push run d debounce 2s busy skip timeout 1h retry 3 backoff 10s dedupe <sha> for 1d')
    kinds = {p.kind: p for p in r.policies}
    assert list(kinds) == ["debounce", "busy", "timeout", "retry", "dedupe"]
    assert kinds["busy"].value == A.Name("skip")
    assert kinds["retry"].value == A.Num(3) and kinds["retry"].extra == A.Duration(10_000)
    assert kinds["dedupe"].key == A.Placeholder(A.FieldPath(("sha",)))
    assert kinds["dedupe"].extra == A.Duration(86_400_000)


def test_declarations() -> None:
    module = ok('let xs = ["a", "b"]\nsecret gh = env "GH"\nsecret key = file "/run/key"\n'
                'source github path="/gh" secret=gh\n'
                'action d(sha, stage="s") = exec "./d" "--sha" sha cwd "ops" env MODE="x"\n'
                'action n = http post "http://127.0.0.1/runs" secret=key\n'
                'action l = shell "ruff ."\n')
    let, s1, s2, src, d, n, l = module.decls
    assert let == A.Let(A.Name("xs"), A.ListLit((A.Str("a"), A.Str("b"))))
    assert (s1.kind, s1.ref.value, s2.kind, s2.ref.value) == ("env", "GH", "file", "/run/key")
    assert src == A.SourceDecl(A.Name("github"), (A.Option(A.Name("path"), A.Str("/gh")),
                                                  A.Option(A.Name("secret"), A.Ref("gh"))))
    assert d.params == (A.Param(A.Name("sha")), A.Param(A.Name("stage"), A.Str("s")))
    assert d.body == A.ExecBody((A.Str("./d"), A.Str("--sha"), A.Ref("sha")))
    assert d.options == (A.ActionOption("cwd", None, A.Str("ops")), A.ActionOption("env", A.Name("MODE"), A.Str("x")))
    assert n.body == A.HttpBody(A.Name("post"), A.Str("http://127.0.0.1/runs"), (A.Option(A.Name("secret"), A.Ref("key")),))
    assert l.body == A.ShellBody(A.Str("ruff ."))


def test_test_block() -> None:
    t = one('test "push deploys":\n'
            '    given git.push branch="main" files=["src/app.py"]\n'
            '    expect deploy_main with sha="abc", stage="prod"\n'
            '    expect not release\n'
            '    expect only a, b\n'
            '    expect none\n')
    assert t.name == A.Str("push deploys")
    assert t.given.trigger.text == "git.push" and len(t.given.fields) == 2 and t.given.from_file is None
    assert [e.kind for e in t.expects] == ["match", "not", "only", "none"]
    assert t.expects[0].has_with and len(t.expects[0].args) == 2
    assert [n.value for n in t.expects[2].rules] == ["a", "b"]
    g = one('test "raw":\n    given github.push from "fixtures/push.json"\n    expect none').given
    assert g.from_file == A.Str("fixtures/push.json")


# --------------------------------------------------------------------------- recovery

def test_three_syntax_errors_give_three_diagnostics() -> None:
    text = (ACTION +                                   # 1
            'on git.push branch= run deploy\n'          # 2 error
            'ok1: on git.push branch="a" run deploy\n'  # 3
            'let = 5\n'                                 # 4 error
            '\n'                                        # 5
            'on git.push branch="b" run deploy with <sha\n'  # 6 error
            'ok2: on git.push branch="c" run deploy\n')  # 7
    module, diags = parse(text)
    assert [(d.code, d.span.start.line) for d in diags] == [("TRG001", 2), ("TRG001", 4), ("TRG001", 6)]
    assert [getattr(d, "name", None) for d in module.decls if isinstance(d, A.Rule)] == ["ok1", "ok2"]


def test_error_in_a_continuation_line_is_reported_there() -> None:
    text = 'on git.push branch="a"\n    author="b"\n    run deploy deploy\nlet x = 1\n'
    assert errors(text) == [("TRG001", 3, 16)]
    assert isinstance(parse(text)[0].decls[0], A.Let)


def test_unclosed_bracket_does_not_swallow_the_next_declarations() -> None:
    text = (ACTION +
            'on git.push branch in ["a", "b"\n'      # 2: [ left open
            'on git.push branch="c" run deploy\n'     # 3
            'let x = 1\n'                             # 4
            'named: on git.push branch="d" run deploy\n')  # 5
    module, diags = parse(text)
    assert [(d.code, d.span.start.line) for d in diags] == [("TRG002", 2)]
    (d,) = diags
    assert (d.message, d.hint) == ("unclosed '[' at the end of this declaration",
                                   "close it with ']' before the next declaration")
    assert [(sp.start.line, sp.start.column, note) for sp, note in d.related] == [(2, 23, "the '[' opened here")]
    kinds = [type(d).__name__ for d in module.decls]
    assert kinds == ["ActionDecl", "Rule", "Let", "Rule"]
    assert module.decls[1].filter == A.Compare(A.FieldPath(("branch",)), "=", A.Str("c"))


def test_unclosed_paren_inside_a_rule() -> None:
    text = 'on git.push (branch="a" run deploy\non git.push run deploy\n'
    module, diags = parse(text)
    assert [(d.code, d.span.start.line) for d in diags] == [("TRG001", 1)]
    assert len(module.decls) == 1
    # the hint names the bracket left open (it listed ')', ',', ']'... before)
    assert diags.items[0].hint == "the '(' is not closed: write ')' before 'run'"
    assert [(sp.start.line, sp.start.column, note) for sp, note in diags.items[0].related] == [
        (1, 13, "the '(' opened here")]
    _, diags = parse('on git.push branch in ["a", "b"\n    run deploy\n')
    assert [(d.code, d.message, d.hint, d.related[0][0].start.column) for d in diags] == [
        ("TRG001", "unexpected 'run'", "the '[' is not closed: write ']' before 'run'", 23)]


def test_unexpected_end_points_at_the_end_of_the_code_not_the_comment() -> None:
    _, diags = parse('on git.push branch="main"  # "quoted" comment\n')
    (d,) = diags
    assert (d.code, d.message) == ("TRG002", "this rule has no 'run ACTION'")
    assert (d.span.start.line, d.span.start.column, d.span.end.column) == (1, 25, 26)


def test_error_messages() -> None:
    _, diags = parse('on git.push branch="x run deploy  \nlet a = 1\n')
    (d,) = diags
    assert (d.message, d.hint) == ("unterminated string", 'close it with " on the same line (write \\n for a line break in it)')
    assert (d.span.start.column, d.span.end.column) == (20, 33)   # to the end of its line, spaces aside
    _, diags = parse('on git.push message ~ /x run deploy\n')
    assert diags.items[0].message == "unterminated regex"
    assert diags.items[0].hint.startswith("close it with / on the same line: /pattern/flags")
    _, diags = parse('on git.push message ~ // run deploy\n')
    assert diags.items[0].message == "empty regex"
    _, diags = parse('règle: on git.push run deploy\n')
    assert diags.items[0].message == "unexpected character 'è'"
    assert diags.items[0].hint.startswith("names are ASCII letters, digits, '_' and '-'")
    _, diags = parse('on git.push sha=<sha> run deploy\n')
    assert diags.items[0].message == "unexpected '<sha>'"


def test_an_indented_declaration_is_said_to_continue_the_one_above() -> None:
    for text in ('action d = exec "x"\n  on git.push run d\n', 'action d = exec "x"\n\tlbl: on git.push run d\n',
                 'let a = 1\n    let b = 2\n'):
        _, diags = parse(text)
        (d,) = diags
        assert (d.code, d.span.start.line) == ("TRG001", 2)
        assert d.hint == "an indented line continues the declaration above: start a new one in column 1", text
    # a continuation line that merely goes wrong is not that mistake
    _, diags = parse('action d = exec "x"\non git.push branch="main"\n    test run d\n')
    assert "indented" not in diags.items[0].hint


def test_a_test_step_in_column_1_is_said_to_be_outside_its_test_block() -> None:
    # it ends the test block above, and was 'unexpected git' with a did-you-mean 'at'
    for line, word in (("given git.push", "given"), ("expect deploy", "expect"), ("wait 1m", "wait"),
                       ('at "2024-01-01T00:00:00Z"', "at")):
        _, diags = parse('test "t":\n    given git.push\n' + line + "\n")
        (d,) = [x for x in diags if x.span.start.line == 3]
        assert (d.code, d.message, d.span.start.column, d.span.end.column) == (
            "TRG001", f"'{word}' outside a test block", 1, 1 + len(word))
        assert d.hint == 'indent it under its test "NAME": line (the steps of a test are indented)'
    # names that are only keywords in a test block stay names elsewhere
    _, diags = parse('at: on git.push run d\ngiven: on git.push run d\n')
    assert not diags.items
    _, diags = parse("wait = 1\n")
    assert "outside a test block" not in diags.items[0].message


def test_unknown_regex_flags() -> None:
    _, diags = parse('on git.push message ~ /fix/g run d\n')
    (d,) = diags
    assert (d.code, d.message, d.span.start.column, d.span.end.column) == ("TRG301", "unknown regex flag 'g'", 28, 29)
    assert d.hint.endswith("; no g: a condition asks whether the regex matches at all")
    _, diags = parse('on git.push message ~ "/a/b" branch ~ /x/mux run d  # /c/zz\n')
    (d,) = diags
    assert (d.message, d.hint) == ("unknown regex flags 'ux'",
                                   "the flags are i (ignore case), m (multi-line) and s (dot matches a newline)")


@pytest.mark.parametrize("make", [
    lambda n: "let x = " + "[" * n + "]" * n,
    lambda n: "on git.push " + "not " * n + 'branch="a" run d',
    lambda n: "on git.push " + '(branch="a" and (branch="b" or ' * n + 'branch="c"' + "))" * n + " run d",
])
def test_nesting_deeper_than_the_phases_can_walk_is_one_error(make) -> None:
    # the phases after the parser walk the tree recursively: 5,000 levels were a RecursionError
    module, diags = parse('action d = shell "x"\n' + make(5000) + "\nlet after = 1\n")
    (d,) = diags
    assert (d.code, d.message, d.span.start.line) == ("TRG001", "nested too deeply (more than 100 levels)", 2)
    assert [type(x).__name__ for x in module.decls] == ["ActionDecl", "Let"]
    module, diags = parse(make(40))
    assert not diags.items and len(module.decls) == 1


def test_a_number_too_large_for_json_is_an_error() -> None:
    # 5,000 digits was a ValueError traceback (int()'s digit limit); 400 became Infinity in the manifest
    for digits in ("1" * 5000, "1" + "0" * 400 + ".5"):
        _, diags = parse(f"let n = {digits}\nlet m = 2\n")
        (d,) = diags
        assert (d.code, d.message, d.span.start.column, d.span.end.column) == (
            "TRG001", "number too large", 9, 9 + len(digits))
    module, diags = parse("let n = " + "9" * 300 + "\n")
    assert not diags.items and module.decls[0].value.value == int("9" * 300)


def test_empty_and_comment_only_files() -> None:
    assert ok("").decls == ()
    assert ok("# nothing\n\n   # here\n").decls == ()


def test_crlf_and_bom() -> None:
    module = ok('\ufefflet a = 1\r\non git.push\r\n  branch="x" run d\r\n')
    assert len(module.decls) == 2
    assert module.decls[1].span.start.line == 2


# --------------------------------------------------------------------------- spans

def _text_of(text: str, span) -> str:
    return text[span.start.offset:span.end.offset]


def test_spans() -> None:
    text = ('let a = 1  # c\n'
            'on git.push branch="main"\n'
            '    author != "bot"\n'
            '  run deploy with <sha>\n')
    module = ok(text)
    let, rule = module.decls
    assert (let.span.start.line, let.span.start.column, let.span.end.line, let.span.end.column) == (1, 1, 1, 10)
    assert (rule.span.start.line, rule.span.start.column, rule.span.end.line, rule.span.end.column) == (2, 1, 4, 24)
    assert _text_of(text, rule.trigger.span) == "git.push"
    assert (rule.trigger.event.span.start.column, rule.trigger.event.span.end.column) == (8, 12)
    c = rule.filter.items[1]
    assert (c.span.start.line, c.span.start.column, c.span.end.column) == (3, 5, 20)
    assert _text_of(text, c.span) == 'author != "bot"'
    assert _text_of(text, c.op_span) == "!="
    assert _text_of(text, c.field.span) == "author"
    assert _text_of(text, c.value.span) == '"bot"'
    arg = rule.args[0]
    assert _text_of(text, arg.span) == "<sha>"
    assert _text_of(text, arg.value.path.span) == "sha"
    assert (rule.action.span.start.line, rule.action.span.start.column) == (4, 7)


def test_not_in_span_covers_both_words() -> None:
    text = 'on git.push author not  in ["bot"] run d'
    c = one(text).filter
    assert c.op == "not in" and _text_of(text, c.op_span) == "not  in"


def test_list_span_across_lines() -> None:
    text = 'let xs = [\n"a",\n  "b",  # c\n]\n'
    let = one(text)
    assert (let.value.span.start.line, let.value.span.end.line, let.value.span.end.column) == (1, 4, 2)
    assert let.value.items[1].span.start.line == 3


# --------------------------------------------------------------------------- literals

def test_string_escapes() -> None:
    let = one(r'let s = "q\"b\\s\nn\tt\u{41}\u{e9}\u{1F600}"')
    assert let.value == A.Str('q"b\\s\nn\ttA\u00e9\U0001F600')


@pytest.mark.parametrize("bad, col", [(r'"\q"', 10), (r'"\u{}"', 10), (r'"\u{110000}"', 10),
                                      (r'"\u{12"', 10), (r'"\u{xyz}"', 10), (r'"ab\x41"', 12)])
def test_invalid_escapes(bad: str, col: int) -> None:
    assert errors(f"let s = {bad}") == [("TRG003", 1, col)]


def test_raw_strings_have_no_escapes() -> None:
    let = one(r'let s = r"C:\new\table\u{41}"')
    assert let.value == A.Str(r"C:\new\table\u{41}", raw=True)
    # a raw string and a plain one with the same value are different literals to the formatter
    assert one(r'let s = r"x"').value != one('let s = "x"').value


@pytest.mark.parametrize("text, where", [
    (r'secret s = env r"A\B"', lambda d: d.ref),
    (r'action a = shell r"grep -E \d+ f"', lambda d: d.body.script),
    (r'action a = http POST r"https://x/\y"', lambda d: d.body.url),
    (r'action a = exec "cp" cwd r"C:\tmp"', lambda d: d.options[0].value),
    (r'action a = shell "x" cwd r"C:\tmp"', lambda d: d.options[0].value),
    (r'action a = exec "cp" env X=r"a\b"', lambda d: d.options[0].value),
    (r'action a = shell "x" env X=r"a\b"', lambda d: d.options[0].value),
    (r'on cron r"0 3 * * *" tz r"UTC" run a', lambda d: (d.trigger.expr, d.trigger.tz)),
    ('test r"a\\b":\n    given git.push from r"f\\x.json"\n    expect none', lambda d: (d.name, d.steps[0].from_file)),
    ('test r"a\\b":\n    at r"2024-01-01T00:00:00Z"\n    expect none', lambda d: d.steps[0].time),
])
def test_a_raw_string_goes_wherever_a_string_does(text: str, where) -> None:
    """SPEC §1: raw strings are strings. The shell body, an http action's URL, cwd, env,
    cron, tz, secrets, test names and given ... from each took only "..." (TRG001)."""
    found = where(one(text))
    for value in found if isinstance(found, tuple) else (found,):
        assert isinstance(value, A.Str) and value.raw, value


def test_regex_literals() -> None:
    r = one(r'let r = /^release\/v\d+/im').value
    assert r == A.Regex(r"^release/v\d+", "im")
    assert one(r'let r = /a\\/').value == A.Regex("a\\\\", "")
    assert one(r'let r = /a#b/').value == A.Regex("a#b")  # '#' in a regex is not a comment
    assert errors('let r = /abc/x') == [("TRG301", 1, 14)]   # an unknown flag, at the flag
    assert errors('let r = //') != []


@pytest.mark.parametrize("pattern", [r"^release/v\d+", r"^refs\/heads\/", "a\\\\", r"a\\/b", r"x\/y/z"])
def test_a_regex_written_as_a_literal_reads_back_as_the_same_regex(pattern: str) -> None:
    # fmt and --explain write regexes with regex_literal; one that already escapes its '/'
    # (a Go or JavaScript regex, as triggerc convert reads them) became '\\' and the end
    # of the literal, which did not parse
    import re

    from triggerlang.compile.patterns import regex_literal

    back = one(f"let r = {regex_literal(pattern, 'i')}").value
    assert isinstance(back, A.Regex) and back.flags == "i"
    for text in ("release/v12", "refs/heads/main", "a\\", "a\\/b", "x/y/z", "x\\/y/z", "nothing"):
        assert bool(re.search(back.pattern, text)) == bool(re.search(pattern, text)), (pattern, text)


@pytest.mark.parametrize("text, ms", [("250ms", 250), ("30s", 30_000), ("5m", 300_000), ("2h", 7_200_000),
                                      ("1d", 86_400_000), ("1.5s", 1500), ("0s", 0)])
def test_durations(text: str, ms: float) -> None:
    v = one(f"let d = {text}").value
    assert isinstance(v, A.Duration) and v.ms == ms and v.text == text


@pytest.mark.parametrize("bad", ["5min", "5 m", "5M", "1w"])
def test_bad_durations(bad: str) -> None:
    assert errors(f"on git.push run d timeout {bad}")


def test_numbers() -> None:
    assert one("let n = 42").value == A.Num(42)
    assert isinstance(one("let n = 42").value.value, int)
    assert one("let n = -0.5").value == A.Num(-0.5)
    assert one("let b = true").value == A.Bool(True)
    assert one("let b = false").value == A.Bool(False)


def test_lists() -> None:
    v = one('let xs = [1, "a", [true], /r/, 5s,]').value
    assert v == A.ListLit((A.Num(1), A.Str("a"), A.ListLit((A.Bool(True),)), A.Regex("r"), A.Duration(5000)))
    assert one("let xs = []").value == A.ListLit(())


# --------------------------------------------------------------------------- names

@pytest.mark.parametrize("word", sorted(RESERVED))
def test_reserved_words_are_not_names(word: str) -> None:
    for text, col in ((f"let {word} = 1", 5), (f"secret {word} = env \"X\"", 8),
                      (f"action {word} = shell \"x\"", 8), (f"action a({word}) = shell \"x\"", 10)):
        _, diags = parse(text)
        assert [(d.code, d.span.start.column) for d in diags] == [("TRG001", col)], text
    assert errors(f'{word}: on git.push run d') != []
    assert errors(f'on git.push run {word}') != []


def test_reserved_word_message() -> None:
    _, diags = parse("let in = 1")
    assert diags.items[0].message == "'in' is a reserved word and cannot be used here"


def test_reserved_words_are_not_reserved_as_prefixes() -> None:
    module = ok('let only = 1\nlet order = 2\nlet inner = 3\nlet on-call = 4\nlet has_x = 5\nlet truey = 6')
    assert [d.name.value for d in module.decls] == ["only", "order", "inner", "on-call", "has_x", "truey"]


def test_contextual_keywords_are_names_elsewhere() -> None:
    module = ok('let env = "e"\nlet file = "f"\nlet source = "s"\nlet every = 1\nlet cron = 2\n'
                'action d(env, file, timeout) = exec "x" env file timeout\n'
                'on run.completed inputs.env="x" inputs.file="y" run d with env, file, 3\n')
    assert [type(d).__name__ for d in module.decls] == ["Let"] * 5 + ["ActionDecl", "Rule"]
    assert module.decls[5].body.argv[1:] == (A.Ref("env"), A.Ref("file"), A.Ref("timeout"))


def test_any_word_after_a_dot_is_a_field_name() -> None:
    r = one('on http.post path="/x" payload.on="a" payload.run.true="b" headers.in="c" payload.0.not="d" run d')
    assert [c.field.parts for c in r.filter.items][1:] == [
        ("payload", "on"), ("payload", "run", "true"), ("headers", "in"), ("payload", "0", "not")]


def test_run_is_a_source_name_in_triggers() -> None:
    r = one('on run.completed rule="nightly" run d')
    assert r.trigger == A.EventTrigger(A.Name("run"), A.Name("completed"))
    assert one('on run.failed run d').trigger.event == A.Name("failed")


# --------------------------------------------------------------------------- layout

def test_indented_lines_continue_the_declaration() -> None:
    module = ok('on git.push\n    branch="main"\n\n  # a comment between\n\trun d\n'
                '    timeout 1m\nlet a = 1\n')
    assert len(module.decls) == 2
    r = module.decls[0]
    assert r.filter == A.Compare(A.FieldPath(("branch",)), "=", A.Str("main"))
    assert r.policies[0].kind == "timeout"


def test_lines_inside_open_brackets_continue() -> None:
    module = ok('on git.push branch in [\n"a",\n"b"\n] (tag="x"\nor\ntag="y") run d\n')
    assert len(module.decls) == 1
    assert module.decls[0].filter.items[0].value == A.ListLit((A.Str("a"), A.Str("b")))


def test_brackets_in_strings_regexes_and_comments_do_not_count() -> None:
    module = ok('on git.push branch="[" message ~ /\\(/ run d  # (\nlet a = "]"\n')
    assert len(module.decls) == 2


def test_a_hyphenated_name_in_column_1_inside_brackets_continues() -> None:
    # `on-call` and `test-x` are names ('-' is a name character), not the keywords on / test
    module = ok('let xs = [\non-call,\ntest-x,\nletter,\n]\non git.push run d\n')
    assert [type(d).__name__ for d in module.decls] == ["Let", "Rule"]
    assert module.decls[0].value == A.ListLit((A.Ref("on-call"), A.Ref("test-x"), A.Ref("letter")))


def test_a_keyword_in_column_1_inside_brackets_starts_a_declaration() -> None:
    # the recovery for a forgotten ']': the rule below is not swallowed
    module, diags = parse("let xs = [1,\non git.push run d\n")
    assert [(d.code, d.span.start.line) for d in diags] == [("TRG002", 1)]
    assert [type(d).__name__ for d in module.decls] == ["Rule"]


def test_a_column_1_line_is_a_new_declaration() -> None:
    # without indentation, 'run d' is a new (broken) declaration: the rule above lacks run,
    # and says so once (the run line is not reported again as a declaration of its own)
    module, diags = parse('on git.push branch="a"\nrun d\n')
    assert [(d.code, d.span.start.line) for d in diags] == [("TRG002", 1)]
    assert "line 2, starts in column 1" in diags.items[0].hint


def test_comments() -> None:
    module = ok('# header\nlet a = "x#y"  # trailing\n# between\nlet b = r"#"\n')
    assert [d.value for d in module.decls] == [A.Str("x#y"), A.Str("#", raw=True)]


def test_split_declarations() -> None:
    text = 'let a = 1\n\non git.push\n  branch="x"\n  run d\n# c\nlet l = [\n1,\n]\n'
    assert split_declarations(text) == [(0, 0, 0), (2, 4, 11), (6, 8, 48)]


# --------------------------------------------------------------------------- did you mean, durations

@pytest.mark.parametrize(("text", "bad", "message", "hint"), [
    ('on git.push if branch="main" run deploy', "if", "'if' is not needed before a filter",
     "the conditions follow the trigger: on git.push CONDITIONS run ACTION"),
    ('ship: on github.* where action="opened" run deploy', "where", "'where' is not needed before a filter",
     "the conditions follow the trigger: on github.* CONDITIONS run ACTION"),
    ('on git.push run deploy(<sha>, "prod") timeout 1m', 'deploy(<sha>, "prod")',
     "an action's arguments follow 'with', not parentheses", 'write run deploy with <sha>, "prod"'),
    ('on git.push run deploy()', "deploy()", "an action's arguments follow 'with', not parentheses",
     "write run deploy"),
    ('include common.trg', "common.trg", "an include's path is a string", 'write include "common.trg"'),
])
def test_a_filter_word_or_a_call_gets_the_rule_to_write(text: str, bad: str, message: str, hint: str) -> None:
    """`if branch=...` was "unexpected 'branch'" with did you mean 'catch'?, and `run deploy(<sha>)`
    a list of the policies expected: each now says what to write."""
    _, diags = parse(text)
    (d,) = diags.items
    assert (d.code, d.message, d.hint) == ("TRG001", message, hint)
    assert text[d.span.start.offset:d.span.end.offset] == bad


@pytest.mark.parametrize(("text", "word", "keyword"), [
    ('on git.push branch="main" rnu deploy', "rnu", "run"),    # read as a field name: the word before the error
    ('on git.push run deploy wiht "x"', "wiht", "with"),
    ('on git.push run deploy debounse 1s', "debounse", "debounce"),
    ('on git.push run deploy retry 3 backof 5s', "backof", "backoff"),
    ('acton deploy = shell "x"', "acton", "action"),
    ('action deploy = shel "x"', "shel", "shell"),
    ('o git.push run deploy', "o", "on"),
])
def test_a_misspelled_keyword_gets_a_did_you_mean(text: str, word: str, keyword: str) -> None:
    _, diags = parse(text)
    (d,) = diags.items
    assert (d.code, d.message, d.hint) == ("TRG001", f"unexpected '{word}'", f"did you mean '{keyword}'?")
    assert text[d.span.start.offset:d.span.end.offset] == word


@pytest.mark.parametrize(("text", "word", "fixed"), [
    ('on file.changed path ~ "src/**" debounce 2s run lint', "debounce",
     'on file.changed path ~ "src/**" run lint debounce 2s'),
    ("on file.changed busy skip run lint", "busy", "on file.changed run lint busy skip"),
    ("on git.push timeout 5m run deploy with <sha>", "timeout", "on git.push run deploy with <sha> timeout 5m"),
    ('x: on git.push branch="main" debounce 1s busy signal HUP run d', "debounce",
     'x: on git.push branch="main" run d debounce 1s busy signal HUP'),
    ("on run.failed retry 2 backoff 5s run d  # again", "retry", "on run.failed run d retry 2 backoff 5s  # again"),
    ("on git.push dedupe <sha> for 1h run d", "dedupe", "on git.push run d dedupe <sha> for 1h"),
    ('on file.modified path ~ "conf/**" busy signal SIGHUP run nginx', "busy",  # (stopped at busy)
     'on file.modified path ~ "conf/**" run nginx busy signal SIGHUP'),
    ("x: on file.modified busy signal SIGHUP run nginx", "busy",  # (busy read as a field)
     "x: on file.modified run nginx busy signal SIGHUP"),
    ('on cron "0 3 * * *" timeout 5m\n    run d', "timeout", 'on cron "0 3 * * *" run d timeout 5m'),
])
def test_a_policy_before_run_is_moved_after_it(text: str, word: str, fixed: str) -> None:
    # as watchexec's flags come before the command; here the policies follow the run
    # clause: the error says so, its hint gives the rule's end, and its fix moves them
    from triggerlang.check.fixes import apply_fixes

    _, diags = parse(text)
    (d,) = diags.items
    assert (d.code, d.message) == ("TRG001", f"'{word}' is a policy: it goes after run ACTION")
    assert d.hint == "the policies come last: write " + " ".join(fixed[fixed.index(" run ") + 1:].split("#")[0].split())
    assert text[d.span.start.offset:d.span.end.offset] == word
    assert apply_fixes(text, [d.fix]) == (fixed, 1)
    assert parse(fixed)[1].items == []


def test_no_move_is_offered_when_the_moved_rule_would_not_parse() -> None:
    for text in ("on git.push debounce run d",      # no duration: moving it cannot help
                 "on git.push busy skip deploy"):   # no run clause at all
        (d,) = parse(text)[1].items
        assert d.message.endswith("is a policy: it goes after run ACTION") and d.fix is None, text
        assert d.hint.startswith("write on TRIGGER [FILTER] run ACTION")


def test_no_keyword_is_suggested_for_a_word_a_third_of_it_away() -> None:
    """'branch' was offered 'catch' (3 edits of 6 letters) after `if`, and a name 'common'
    'cron': the budget is a third of the word, as rustc's and ruff's."""
    for word in ("common", "branch", "buster", "events"):  # were offered cron, catch, after, every
        _, diags = parse(f"on git.push run deploy {word} 1m")
        assert diags.items and "did you mean" not in (diags.items[0].hint or ""), (word, diags.items)
    _, diags = parse('on git.push run deploy retire 1m')
    assert diags.items[0].hint == "did you mean 'retry'?"
    _, diags = parse('include "a.trg" "b.trg"')
    assert diags.items[0].hint == "expected end of declaration"


def test_no_keyword_is_suggested_when_it_would_not_help() -> None:
    _, diags = parse('on git.push branch @ "d" run deploy')
    (d,) = diags.items
    assert d.message == "unexpected character '@'" and "did you mean" not in (d.hint or "")
    _, diags = parse('on git.push brnch="main" deploy')  # brnch ~ branch is no keyword; 'deploy' is not one either
    assert "did you mean" not in (diags.items[0].hint or "")


@pytest.mark.parametrize(("text", "bad", "hint"), [
    ("on git.push run deploy timeout 10mins", "10mins", "write 10m (the units are ms, s, m, h and d)"),
    ("on git.push run deploy debounce 5 m", "5 m", "write 5m (no space between the number and its unit)"),
    ("on git.push run deploy timeout 2hours", "2hours", "write 2h (the units are ms, s, m, h and d)"),
    ("on git.push run deploy timeout 10", "10", "a duration needs a unit: 10s, 10m, 10h or 10d"),
    ("on git.push run deploy timeout 10 retry 2", "10", "a duration needs a unit: 10s, 10m, 10h or 10d"),
    ("on git.push run deploy timeout 10  # ten", "10", "a duration needs a unit: 10s, 10m, 10h or 10d"),
    ("on git.push run deploy timeout 1x", "1x", "a duration is a number and a unit (ms, s, m, h or d): 1s, 1m"),
    ("on git.push run deploy dedupe <sha> for 1w", "1w", "weeks are written in days: 7d"),
    ("let later = 1.5 hours", "1.5 hours", "write 1.5h (no space between the number and its unit)"),
])
def test_a_bad_duration_is_trg304_at_the_duration(text: str, bad: str, hint: str) -> None:
    _, diags = parse(text)
    (d,) = diags.items
    assert (d.code, d.message, d.hint) == ("TRG304", f"invalid duration '{bad}'", hint)
    assert text[d.span.start.offset:d.span.end.offset] == bad


def test_a_field_named_like_a_policy_is_not_taken_for_one() -> None:
    for text in ('on http.post path="/a" payload.busy run x', 'on git.push run deploy busy signal 3'):
        _, diags = parse(text)
        assert "is a policy" not in diags.items[0].message, text


def test_a_number_where_a_number_goes_is_not_a_duration_error() -> None:
    _, diags = parse("on git.push run deploy retry 3 m")  # a count, not a duration: 3m would not help
    assert [d.code for d in diags.items] == ["TRG001"]
    _, diags = parse('on git.push commits > 3abc run deploy')
    assert [d.code for d in diags.items] == ["TRG001"]
