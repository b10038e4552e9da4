"""The checker (SPEC §2-§6): names with did-you-mean hints, types, lints, routes, secrets,
and what it hands the compiler (lowered filters, bound arguments, policies)."""

from __future__ import annotations

from pathlib import Path

import re

import pytest

from triggerlang.api import compile_file, compile_text

DEPLOY = 'action deploy(sha, stage="staging") = exec "./deploy.sh" sha stage\n'


def diags(text: str) -> list[tuple]:
    c = compile_text(text, "rules.trg")
    return [(d.code, d.span.start.line, d.span.start.column, d.message, d.hint) for d in c.diagnostics]


def codes(text: str) -> list[tuple[str, int]]:
    return [(d[0], d[1]) for d in diags(text)]


def only(text: str) -> tuple:
    found = diags(text)
    assert len(found) == 1, found
    return found[0]


def program(text: str):
    c = compile_text(text, "rules.trg")
    assert c.ok, [(d.code, d.message) for d in c.diagnostics]
    return c.program


# --------------------------------------------------------------------------- did you mean

@pytest.mark.parametrize("text, code, col, message, hint", [
    (DEPLOY + 'on git.push brnch="main" run deploy with <sha>',
     "TRG203", 13, "git.push has no field 'brnch'", "did you mean 'branch'?"),
    (DEPLOY + 'on git.push branch="main" run deplyo with <sha>',
     "TRG104", 31, "unknown action 'deplyo'", "did you mean 'deploy'?"),
    (DEPLOY + 'on gti.push run deploy with <sha>',
     "TRG201", 4, "unknown source 'gti'", "did you mean 'git'?"),
    (DEPLOY + 'on git.psh run deploy with <sha>',
     "TRG202", 8, "git has no event 'psh'", "did you mean 'push'?"),
    (DEPLOY + 'let main = "main"\non git.push branch=mian run deploy with <sha>',
     "TRG102", 20, "unknown name 'mian'", "did you mean 'main'?"),
    (DEPLOY + 'on git.push run deploy with <sah>',
     "TRG403", 29, "git.push events have no field 'sah'", "did you mean 'sha'?"),
    (DEPLOY + 'on git.push run deploy with sha=<sha>, stag="x"',
     "TRG402", 40, "action 'deploy' has no parameter 'stag'", "did you mean 'stage'?"),
    (DEPLOY + 'on git.push run deploy with <sha> busy skp',
     "TRG407", 40, "busy takes queue, skip, restart, parallel or signal, not 'skp'", "did you mean 'skip'?"),
    ('secret gh_secret = env "GH"\nsource github secret=gh_secrt\n' + DEPLOY + 'on github.push run deploy with <sha>',
     "TRG103", 22, "unknown secret 'gh_secrt'", "did you mean 'gh_secret'?"),
    ('source file rot="."\n' + DEPLOY + 'on file.changed run deploy with <path>',
     "TRG208", 13, "source file has no option 'rot'", "did you mean 'root'?"),
    ('action d(sha) = exec "x" shaa\non git.push run d with <sha>',
     "TRG405", 26, "'shaa' is not a parameter of action 'd'", "did you mean 'sha'?"),
])
def test_did_you_mean(text, code, col, message, hint) -> None:
    # (the misspelt name also leaves the real one unused: only the error is looked at here)
    found = [d for d in compile_text(text, "rules.trg").diagnostics if d.is_error]
    assert len(found) == 1, found
    d = found[0]
    c, column, msg, h = d.code, d.span.start.column, d.message, d.hint
    assert (c, column, msg, h) == (code, col, message, hint)


def test_no_suggestion_lists_the_choices() -> None:
    _, _, _, msg, hint = only(DEPLOY + 'on file.changed zzzzzz="x" run deploy with <path>')
    assert msg == "file.changed has no field 'zzzzzz'"
    assert hint == "fields: change, ext, name, path, paths"


def test_raw_body_hint_on_a_source_without_one() -> None:
    _, _, _, msg, hint = only(DEPLOY + 'on git.push payload.ref="x" run deploy with <sha>')
    assert msg == "git.push has no field 'payload'"
    assert hint.startswith("git.push events carry no raw body; fields: after, author")


# --------------------------------------------------------------------------- types

@pytest.mark.parametrize("cond, code, col, message, hint", [
    ('forced="yes"', "TRG204", 20, "'forced' is a boolean, compared with a string", "write true"),
    ('forced="off"', "TRG204", 20, "'forced' is a boolean, compared with a string", "write false"),
    ('forced=0', "TRG204", 20, "'forced' is a boolean, compared with a number", "write false"),
    ('forced="maybe"', "TRG204", 20, "'forced' is a boolean, compared with a string", "write true or false"),
    ('commits="3"', "TRG204", 21, "'commits' is an integer, compared with a string", "write 3 without quotes"),
    ('branch=3', "TRG204", 20, "'branch' is a string, compared with a number", 'write "3"'),
    ('branch=1.50', "TRG204", 20, "'branch' is a string, compared with a number", 'write "1.50"'),
    ('branch=true', "TRG204", 20, "'branch' is a string, compared with a boolean", None),
    ('branch=5m', "TRG204", 20, "'branch' is a string, compared with a duration", None),
    ('branch in "main"', "TRG204", 23, "'in' needs a list", "write [...] or use '='"),
    ('branch not in "main"', "TRG204", 27, "'not in' needs a list", "write [...] or use '!='"),
    ('branch=["a"]', "TRG204", 20, "'=' compares one value, not a list", "use 'in' to test membership: branch in [...]"),
    ('branch != ["a"]', "TRG204", 23, "'!=' compares one value, not a list",
     "use 'in' to test membership: branch not in [...]"),
    ('branch in ["a", 2]', "TRG204", 29, "'branch' is a string, compared with a number", 'write "2"'),
    # a regex where a string goes: a path without its quotes (/hooks/ims: the regex /hooks/ and
    # the flags i, m, s), else a regex meant with ~ (the span is the comparison the text replaces)
    ('branch=/^rel/', "TRG204", 13, "'branch' is a string, compared with a regex",
     "to match the regex: write branch ~ /^rel/"),
    ('branch != /^rel/i', "TRG204", 13, "'branch' is a string, compared with a regex",
     "to match the regex: write branch !~ /^rel/i"),
    ('commits >= 2s', "TRG204", 24, "'commits' is an integer, compared with a duration", None),
    ('commits > "many"', "TRG204", 23, "'commits' is an integer, compared with a string", None),
    ('message ~ 5', "TRG204", 23, "'~' takes a glob string, a /regex/ or a list of them, not a number",
     'write a glob like "src/**/*.py" or a regex like /^v\\d+/'),
    ('forced ~ "t*"', "TRG205", 20, "'~' matches strings, and 'forced' is a boolean", "use = or !="),
    ('commits !~ "1*"', "TRG205", 21, "'!~' matches strings, and 'commits' is an integer", "use = != < <= > >= or in"),
    ('branch > "a"', "TRG205", 20, "'>' compares numbers, durations and times, and 'branch' is a string",
     "use = != ~ or in"),
])
def test_type_errors(cond: str, code: str, col: int, message: str, hint) -> None:
    found = only(DEPLOY + f"on git.push {cond} run deploy with <sha>")
    assert found == (code, 2, col, message, hint)
    written = re.search(r"(?:^|: )write (.*?)(?: without quotes)?$", hint or "")
    if written is not None and " or " not in written.group(1) and "..." not in written.group(1):
        # "write X": the fix writes X over the span (the editor's quick fix), and the rule then checks clean
        [d] = compile_text(DEPLOY + f"on git.push {cond} run deploy with <sha>", "rules.trg").diagnostics
        assert_the_fix_writes(d, written.group(1))
        line = f"on git.push {cond} run deploy with <sha>"
        assert diags(DEPLOY + line[:d.span.start.column - 1] + written.group(1) + line[d.span.end.column - 1:]) == []
    elif hint is not None:  # (several candidates, or no text to write: no fix)
        [d] = compile_text(DEPLOY + f"on git.push {cond} run deploy with <sha>", "rules.trg").diagnostics
        assert d.fix is None, d.fix


def test_a_type_error_on_a_lets_name_says_what_to_write_with_no_fix() -> None:
    """The value to change is the let's: a fix over its name would drop the let."""
    [d] = compile_text('let n = 3\n' + DEPLOY + "on git.push branch=n run deploy with <sha>", "rules.trg").diagnostics
    assert (d.code, d.hint, d.fix) == ("TRG204", 'write "3"', None)


@pytest.mark.parametrize("cond", [
    'commits > 2', 'commits <= 2.5', 'forced=false', 'files ~ "docs/**"', 'files !~ ["a/*", /b/i]',
    'branch in ["a", "b"]', 'author not in ["bot"]', 'message ~ /^fix/i', 'has tag', 'not (branch="a" or tag="b")',
])
def test_well_typed_conditions(cond: str) -> None:
    assert diags(DEPLOY + f"on git.push {cond} run deploy with <sha>") == []


def test_durations_compare_with_durations_and_numbers() -> None:
    base = DEPLOY + 'on run.completed rule="build" duration > {} run deploy with "x"'
    assert diags(base.format("5m")) == []
    assert diags(base.format("300")) == []
    assert codes(base.format('"5m"')) == [("TRG204", 2)]


def test_times_compare_with_strings() -> None:
    assert diags(DEPLOY + 'on every 1h time > "2026-01-01T00:00:00Z" run deploy with "x"') == []


def test_untyped_payload_and_maps() -> None:
    text = DEPLOY + ('source github secret=s\nsecret s = env "S"\n'
                     'on github.push payload.head_commit.id ~ "a*" payload.size > 3 headers.x-b="c" run deploy with <sha>')
    assert diags(text) == []
    assert codes(DEPLOY + 'on run.completed rule="build" inputs="x" run deploy with "x"') == [("TRG205", 2)]
    assert diags(DEPLOY + 'on run.completed rule="build" inputs.sha="x" run deploy with <inputs.sha>') == []


def test_unknown_field_in_a_nested_expression_and_has() -> None:
    text = DEPLOY + 'on git.push not (branch="a" or brnch="b") and has tg run deploy with <sha>'
    assert codes(text) == [("TRG203", 2), ("TRG203", 2)]
    assert [d[2] for d in diags(text)] == [32, 51]


def test_an_unknown_name_is_told_both_ways_to_write_it() -> None:
    """branch=main is most often "main" without its quotes: the hint said only
    'declare it with: let NAME = VALUE'; it gives the quoted text too, and the let with its name."""
    (d,) = compile_text(DEPLOY + 'on git.push branch=main run deploy with <sha>', "rules.trg").diagnostics
    assert (d.code, d.message) == ("TRG102", "unknown name 'main'")
    assert d.hint == 'text goes in quotes: "main"; a name is declared first: let main = VALUE'


def test_a_field_written_without_its_brackets_is_offered_the_placeholder() -> None:
    """with sha (for <sha>) was 'unknown name' with the hint to quote it or declare a let;
    a name that is a field of the rule's event is offered the placeholder, as a fix."""
    from triggerlang.check.fixes import apply_fixes

    text = DEPLOY + 'on git.push run deploy with sha\n'
    (d,) = compile_text(text, "rules.trg").diagnostics
    assert (d.code, d.message, d.hint) == ("TRG102", "unknown name 'sha'",
                                           "did you mean '<sha>'? a field of the event is written in < >")
    assert apply_fixes(text, [d.fix]) == (DEPLOY + 'on git.push run deploy with <sha>\n', 1)
    assert compile_text('let sha = "x"\n' + text, "rules.trg").diagnostics == []  # a let is meant as written


def test_a_let_is_typed_like_its_value() -> None:
    assert codes('let n = 3\n' + DEPLOY + 'on git.push branch=n run deploy with <sha>') == [("TRG204", 3)]
    assert diags('let b = ["a", "b"]\n' + DEPLOY + 'on git.push branch in b run deploy with <sha>') == []


def test_errors_do_not_cascade() -> None:
    # an unknown source silences the field checks that would follow from it
    assert codes(DEPLOY + 'on nope.push brnch=1 run deploy with <sha>') == [("TRG201", 2)]
    # an unknown name in a list is one error, not also a type error
    assert codes(DEPLOY + 'on git.push branch in ["a", nope] run deploy with <sha>') == [("TRG102", 2)]
    # an unknown action still checks its arguments' placeholders
    assert codes('on git.push run nope with <sah>') == [("TRG104", 1), ("TRG403", 1)]



def test_a_declaration_dropped_for_a_syntax_error_makes_no_never_used_warnings() -> None:
    # the rule's typo'd duration drops it: its action, let, secret and source are not also
    # "never used"; a name it does not mention still is
    text = """source github path="/gh" secret=gs
secret gs = env "GS"
let bots = ["x"]
action a = exec "x"
action idle = exec "y"
r: on github.push sender not in bots run a timeout 10mins
"""
    assert codes(text) == [("TRG107", 5), ("TRG304", 6)]
    assert codes(text.replace("10mins", "10m")) == [("TRG107", 5)]

# --------------------------------------------------------------------------- lints

def test_never_match() -> None:
    code, line, col, msg, hint = only(DEPLOY + 'on git.push branch="a" branch="b" run deploy with <sha>')
    assert (code, line, col) == ("TRG501", 2, 24)
    assert msg == "rule 'L2' can never match: 'branch' cannot be both 'a' and 'b'"
    assert hint == "conditions side by side must all hold; use 'or' or 'in [...]' for alternatives"


@pytest.mark.parametrize("filt", [
    'branch="a" or branch="b"',             # alternatives
    'files ~ "a/**" files ~ "b/**"',         # any-element: two files
    'branch="a" branch="a"',                 # redundant, not contradictory
    'branch="a" branch in ["a", "b"]',
    'branch!="a" branch!="b"',
    'payload.x=1 payload.x=2',               # untyped: may be a list
])
def test_not_never_match(filt: str) -> None:
    text = DEPLOY + ('secret s = env "S"\nsource github secret=s\n' if "payload" in filt else "")
    trigger = "github.push" if "payload" in filt else "git.push"
    assert [c for c, _ in codes(text + f"on {trigger} {filt} run deploy with <sha>")] == []


def test_never_match_with_a_number_and_a_string_of_it() -> None:
    text = DEPLOY + 'on run.completed exit_code=1 exit_code=2 run deploy with "x"'
    assert codes(text) == [("TRG501", 2)]


def test_never_match_with_an_empty_list_alone() -> None:
    """One condition is enough when its list is empty (the lint's quick exit for rules that
    constrain each field once must not skip it)."""
    assert codes(DEPLOY + 'on git.push branch in [] run deploy with <sha>') == [("TRG501", 2)]
    assert codes(DEPLOY + 'on git.push branch="a" tag in [] run deploy with <sha>') == [("TRG501", 2)]


def test_identical_rules_are_reported_once_per_copy() -> None:
    text = (DEPLOY +
            'a: on git.push branch="main" run deploy with <sha>\n'
            'b: on git.push branch = "main"\n    run deploy with <sha>\n'
            'on git.push branch="main" run deploy with <sha>\n'
            'on git.push branch="main" run deploy with <sha> timeout 1m\n'
            'on git.push branch="main" run deploy with sha=<sha>\n')
    found = diags(text)
    assert [(c, line, col) for c, line, col, *_ in found] == [("TRG502", 3, 1), ("TRG502", 5, 4)]
    assert found[0][3] == "rule 'b' is identical to rule 'a' (line 2): every event runs the action twice"
    assert found[1][3].startswith("rule 'L5' is identical to rule 'a'")


def test_unused_warnings() -> None:
    text = ('let used = "main"\nlet unused = 1\n'
            'secret gh = env "GH"\nsecret spare = env "SPARE"\n'
            'source github secret=gh\nsource gitlab\n'
            'action run_me = shell "x"\naction idle = shell "y"\n'
            'on github.push branch=used run run_me\n')
    found = diags(text)
    assert [(c, line, col, msg) for c, line, col, msg, _ in found] == [
        ("TRG105", 2, 5, "let 'unused' is never used"),
        ("TRG106", 4, 8, "secret 'spare' is never used"),
        ("TRG108", 6, 8, "source gitlab is declared but no rule listens to it"),
        ("TRG107", 8, 8, "action 'idle' is never run"),
    ]
    assert all(d.severity == "warning" for d in compile_text(text).diagnostics)
    assert compile_text(text).ok  # warnings alone do not fail the compile


def test_a_let_used_only_by_another_let_is_used() -> None:
    assert diags('let a = "x"\nlet b = [a]\naction d = shell "x"\non git.push branch in b run d') == []


def test_duplicate_names_are_per_kind() -> None:
    # a let, an action and a rule label may share a name; two lets may not
    text = 'let deploy = "x"\naction deploy = shell "x"\ndeploy: on git.push branch=deploy run deploy\n'
    assert diags(text) == []
    code, line, col, msg, hint = only(text + 'let deploy = "y"\n')
    assert (code, line, col) == ("TRG101", 4, 5)
    assert msg == "duplicate let name 'deploy' (first declared on line 1)"
    assert hint == "rename one of them: let names are unique in a file"


def test_label_and_implicit_name_clash() -> None:
    text = 'action d = shell "x"\nL3: on git.push branch="a" run d\non git.push branch="b" run d\n'
    assert codes(text) == [("TRG101", 3)]


# --------------------------------------------------------------------------- webhooks and secrets

def test_webhook_routes_without_a_secret_warn() -> None:
    text = DEPLOY + 'on github.push run deploy with <sha>\n'
    code, line, col, msg, hint = only(text)
    assert (code, line, col) == ("TRG209", 2, 4)
    assert msg == "the github route /github has no secret: anyone who can reach it can trigger runs"
    assert hint == 'declare: source github secret=NAME (with secret NAME = env "VAR")'
    assert compile_text(text).ok  # a warning (an error only under --strict)


@pytest.mark.parametrize("decls, rule", [
    ('secret s = env "S"\nsource github secret=s', "on github.push run deploy with <sha>"),
    ('secret s = env "S"\nsource gitlab token=s', "on gitlab.push run deploy with <sha>"),
    ('secret s = env "S"\nsource ci token=s', 'on ci.completed run deploy with <sha>'),
    ('secret s = env "S"\nsource ci hmac=s header="X-Sig"', 'on ci.completed run deploy with <sha>'),
    ('secret s = env "S"\nsource http token=s', 'on http.post path="/x" run deploy with "x"'),
    ('secret s = env "S"\nsource http path="/hooks/*" hmac=s', 'on http.post path="/hooks/a" run deploy with "x"'),
    ('secret s = env "S"\nsource http path="/hooks/*" token=s', 'on http.post path ~ "/hooks/b*" run deploy with "x"'),
])
def test_protected_routes_do_not_warn(decls: str, rule: str) -> None:
    assert diags(decls + "\n" + DEPLOY + rule) == []


def test_http_route_outside_the_protected_prefix_warns() -> None:
    text = 'secret s = env "S"\nsource http path="/hooks/*" token=s\n' + DEPLOY + \
        'on http.post path="/hooks/a" run deploy with "x"\non http.post path="/open" run deploy with "y"\n'
    code, line, col, msg, _ = only(text)
    assert (code, line, col, msg) == ("TRG209", 5, 4, "route /open has no token, hmac, hmac_sha1, hmac_sha512 or standard: anyone who can reach it can trigger runs")


def test_ci_rule_warns_about_the_ci_route() -> None:
    code, line, _, msg, _ = only(DEPLOY + 'on ci.completed status="success" run deploy with <sha>')
    assert (code, line, msg) == ("TRG209", 2, "the ci route /ci has no secret: anyone who can reach it can trigger runs")


@pytest.mark.parametrize("use, col", [
    ('let leaked = token\non git.push branch=leaked run deploy with <sha>', 14),
    ('on git.push branch=token run deploy with <sha>', 20),
    ('on git.push run deploy with <sha>, token', 36),
    ('on git.push run deploy with sha=token', 33),
])
def test_secret_used_as_a_value(use: str, col: int) -> None:
    found = [d for d in diags('secret token = env "TOKEN"\n' + DEPLOY + use) if d[0] != "TRG105"]
    assert [(c, line, column) for c, line, column, *_ in found] == [("TRG109", 3, col)]
    assert found[0][3] == "secret 'token' cannot be used as a value"


def test_secret_in_a_value_option_and_a_value_in_a_secret_option() -> None:
    text = 'secret s = env "S"\nsource github secret="literal" path=s\n' + DEPLOY + 'on github.push run deploy with <sha>'
    found = [(c, col, msg) for c, _, col, msg, _ in diags(text)]
    assert ("TRG208", 22, "secret= takes the name of a secret") in found
    assert ("TRG109", 37, "secret 's' cannot be used as a value") in found


@pytest.mark.parametrize("decl, col, first, second", [
    ('source ci token=a hmac=b', 19, "token", "hmac"),
    ('source http path="/hooks/*" standard=a hmac=b', 29, "hmac", "standard"),
    ('source http path="/hooks/*" token=a standard=b hmac=a', 37, "token", "standard"),
    ('source gitea token=a secret=b', 14, "secret", "token"),
])
def test_two_ways_to_verify_one_route_is_an_error(decl, col, first, second) -> None:
    """The manifest checks the first verification option a source sets; a second one would
    be ignored without a word (a route believed to check an HMAC that checks a token)."""
    text = ('secret a = env "A"\nsecret b = env "B"\n' + decl + "\n" + DEPLOY
            + 'on ci.completed run deploy with <sha>\non http.post path="/hooks/x" run deploy with <payload.sha>\n'
            + 'on gitea.push run deploy with <sha>\n')
    found = [d for d in diags(text) if d[0] == "TRG208"]
    assert found and (found[0][1], found[0][2]) == (3, col), found
    assert found[0][3] == f"source {decl.split()[1]} checks a delivery one way: {first}= or {second}=, not both"
    assert found[0][4] == f"keep one; with both, only {first}= would be checked"


@pytest.mark.parametrize("kind, rule", [("file", "on file.changed run deploy with <path>"),
                                        ("git", "on git.push run deploy with <sha>")])
def test_a_source_poll_of_zero_is_an_error(kind, rule) -> None:
    # `source file poll=0s` checked clean, then the file source took 0 for no poll= and
    # watched with inotify (git's fell back to 0.25 s)
    found = only(f"source {kind} poll=0s\n" + DEPLOY + rule)
    assert found[:4] == ("TRG208", 1, len(f"source {kind} poll=") + 1, "poll must be longer than zero"), found
    assert not [d for d in diags(f"source {kind} poll=250ms\n" + DEPLOY + rule) if d[0] == "TRG208"]


def test_secret_env_var_name_is_checked() -> None:
    code, _, col, msg, _ = only('secret s = env "A B"\nsource github secret=s\n' + DEPLOY + 'on github.push run deploy with <sha>')
    assert (code, col, msg) == ("TRG208", 16, "'A B' is not a valid environment variable name")


def test_a_nul_byte_a_process_cannot_be_given_is_an_error() -> None:
    """An exec argument with a NUL byte passed check, and every run failed to start
    ("embedded null byte"): TRG408 at the literal, for each thing the process is given."""
    hint = ("remove the NUL byte (\\u{0}): arguments, environment variables and paths end at a NUL byte, "
            "so every run would fail to start")
    text = ('action a(p="d\\u{0}", q="ok") = exec "echo" "x\\u{0000}y" p env A="b\\u{0}" cwd "c\\u{0}"\n'
            'action b = shell "echo \x00"\n'
            'r: on git.push run a\ns: on git.push run b\n')
    assert diags(text) == [
        ("TRG408", 1, 12, "the default of parameter 'p' holds a NUL byte, which no process can be given",
         hint.replace("fail to start", "get this value without it")),
        ("TRG408", 1, 44, "an exec argument holds a NUL byte, which no process can be given", hint),
        ("TRG408", 1, 65, "env A holds a NUL byte, which no process can be given", hint),
        ("TRG408", 1, 78, "cwd holds a NUL byte, which no process can be given", hint),
        ("TRG408", 2, 18, "the shell script holds a NUL byte, which no process can be given", hint)]
    assert diags('action h(u="\\u{0}") = http post "http://127.0.0.1:9/x"\non git.push run h\n') == []


def test_a_nul_byte_a_rule_passes_a_process_or_an_http_url_holds_is_an_error() -> None:
    """A NUL in a rule's literal (or let) for an exec or shell parameter, or in an http
    action's URL, passed check and every run failed ('embedded null byte', 'URL can't contain
    control characters'): TRG408 at the literal, a correlation rule's too. A list is JSON text
    (NUL escaped) where the argv does not name it, and an http action's inputs are JSON."""
    hint = ("remove the NUL byte (\\u{0}): arguments, environment variables and paths end at a NUL byte, "
            "so every run would get this value without it")
    text = ('let bad = "z\\u{0}"\n'
            'action a(p, l, j) = exec "echo" p l\naction s(x) = shell "echo"\n'
            'action h(u) = http post "http://127.0.0.1:9/x\\u{0}"\n'
            'r: on git.push run a with "a\\u{0}b", ["ok", "c\\u{0}"], ["c\\u{0}"]\n'
            't: on git.push run s with x=bad\nu: on git.push run h with "\\u{0}"\n'
            'v: on all(git.push as p, git.tag as t) same <sha> within 1h run s with "\\u{0}"\n')
    assert diags(text) == [
        ("TRG408", 4, 25, "the URL of an http action holds a NUL byte, which no request can be sent to",
         "remove the NUL byte (\\u{0}): a URL cannot hold one, so every run would fail to send its request"),
        ("TRG408", 5, 27, "the value passed to parameter 'p' holds a NUL byte, which no process can be given", hint),
        ("TRG408", 5, 45, "the value passed to parameter 'l' holds a NUL byte, which no process can be given", hint),
        ("TRG408", 6, 29, "the value passed to parameter 'x' holds a NUL byte, which no process can be given", hint),
        ("TRG408", 8, 72, "the value passed to parameter 'x' holds a NUL byte, which no process can be given", hint)]


# --------------------------------------------------------------------------- http routes

def test_http_rules_pin_their_route() -> None:
    p = program('secret s = env "S"\nsource http token=s\n' + DEPLOY +
                'on http.post path="/deploy" run deploy with "x"\n'
                'on http.get path ~ "/status/*" run deploy with "y"\n'
                'on http.request path="/any" method="PUT" run deploy with "z"\n')
    assert [(r.route, r.methods, r.types) for r in p.rules] == [
        ("/deploy", ["POST"], ["post"]), ("/status/*", ["GET"], ["get"]), ("/any", ["PUT"], None)]


@pytest.mark.parametrize("filt, col, msg", [
    ('method="POST"', 4, "an HTTP rule must pin its route"),
    ('path != "/x"', 4, "an HTTP rule must pin its route"),
    ('path="/a" or path="/b"', 4, "an HTTP rule must pin its route"),
    ('not path="/a"', 4, "an HTTP rule must pin its route"),
    ('path="hook"', 19, "a route path must start with '/'"),
    ('path="/readyz"', 19, "/readyz is built in: serve answers it (liveness, readiness, emit, metrics), so no route "
                           "can take it"),
    # GET /metrics answered the Prometheus page, and a rule on it passed check and never ran
    ('path="/metrics"', 19, "/metrics is built in: serve answers it (liveness, readiness, emit, metrics), so no "
                            "route can take it"),
])
def test_unpinned_http_routes(filt: str, col: int, msg: str) -> None:
    text = 'secret s = env "S"\nsource http token=s\n' + DEPLOY + f'on http.post {filt} run deploy with "x"'
    code, line, column, message, hint = only(text)
    assert (code, line, column, message) == ("TRG206", 4, col, msg)
    if hint.startswith("write "):  # (path="hook": write "/hook", the editor's quick fix)
        [d] = compile_text(text, "rules.trg").diagnostics
        assert_the_fix_writes(d, hint[len("write "):])


@pytest.mark.parametrize("path", ["/healthz", "/readyz", "/events", "/metrics"])
def test_a_source_route_on_a_built_in_path(path: str) -> None:
    # serve refused to start on it ("is built in"); check said nothing
    text = f'secret s = env "S"\nsource github path="{path}" secret=s\non github.push run a\naction a = exec "true"\n'
    code, line, column, message, hint = only(text)
    assert (code, line, column) == ("TRG208", 2, 20) and message.startswith(f"{path} is built in"), message
    assert hint == f'choose another path, e.g. "/hooks{path}"'


def test_http_route_from_a_let() -> None:
    p = program('let hook = "/hooks/deploy"\nsecret s = env "S"\nsource http token=s\n' + DEPLOY +
                'on http.post path=hook run deploy with "x"')
    assert p.rules[0].route == "/hooks/deploy"


# --------------------------------------------------------------------------- what the compiler gets

def test_lowered_rule() -> None:
    p = program(DEPLOY + 'let envs = ["a", "b"]\n'
                'on git.push repo="/srv/app.git" branch in envs not has tag run deploy with <sha>, "prod"\n'
                '    retry 2 backoff 1m dedupe <sha> for 1h timeout 10m busy skip')
    (r,) = p.rules
    assert (r.name, r.source, r.event, r.types, r.action) == ("L3", "git", "push", ["push"], "deploy")
    assert r.filter == {"op": "and", "args": [
        {"op": "=", "field": "repo", "value": "/srv/app.git", "span": [3, 13, 3, 32]},
        {"op": "in", "field": "branch", "value": ["a", "b"], "span": [3, 33, 3, 47]},
        {"op": "not", "arg": {"op": "has", "field": "tag", "span": [3, 52, 3, 59]}},
    ]}
    assert r.args == {"sha": {"field": "sha"}, "stage": {"value": "prod"}}
    assert r.policies == {"debounce": None, "busy": "skip", "timeout": 600.0, "retry": 2, "backoff": 60.0,
                          "dedupe": {"field": "sha", "for": 3600.0}}
    assert r.repos == ["/srv/app.git"]


def test_defaults() -> None:
    p = program(DEPLOY + 'on file.created path ~ "src/**" run deploy with <path>\non git.push run deploy with <sha>')
    f, g = p.rules
    assert f.policies["debounce"] == 0.1 and g.policies["debounce"] is None
    assert g.policies["timeout"] == 3600.0 and g.policies["busy"] == "queue" and g.policies["retry"] == 0
    assert f.args["stage"] == {"value": "staging"}
    assert f.path_globs == ["src/**"] and g.repos == ["."]
    assert f.types == ["created"]


APP = 'action app = exec "python3" "app.py"\naction hook = http post "http://127.0.0.1:9/x"\n'


def test_busy_signal_names_its_signal_in_the_policies() -> None:
    # watchexec's --signal spellings (HUP, hup, SIGHUP) are one signal; the manifest names it in full
    p = program(APP + 'a: on file.modified run app busy signal hup\nb: on git.push run app busy signal SIGUSR2')
    assert [(r.policies["busy"], r.policies["busy_signal"]) for r in p.rules] == [("signal", "SIGHUP"),
                                                                                  ("signal", "SIGUSR2")]
    assert "busy_signal" not in program(APP + 'on git.push run app busy restart').rules[0].policies


@pytest.mark.parametrize("policy, col, message, hint, fixed", [
    ("busy signal HUPP", 38, "'HUPP' is not a signal busy signal sends", "did you mean 'SIGHUP'?", "SIGHUP"),
    ("busy signal sigusr", 38, "'sigusr' is not a signal busy signal sends", "did you mean 'SIGUSR1'?", "SIGUSR1"),
    ("busy signal SIGSEGV", 38, "'SIGSEGV' is not a signal busy signal sends",
     "one of SIGHUP, SIGUSR1, SIGUSR2, SIGINT, SIGQUIT, SIGTERM, SIGWINCH, SIGALRM", None),
    ("busy signal KILL", 38, "SIGKILL cannot be trapped: it would kill the running run, not signal it",
     "to stop the running run and start a new one, write busy restart", "busy restart"),
    ("busy signal SIGSTOP", 38, "SIGSTOP cannot be trapped: it would freeze the running run, not signal it",
     "to stop the running run and start a new one, write busy restart", "busy restart"),
    ("busy signal", 31, "busy signal needs the signal to send", "name it: busy signal SIGHUP (or SIGUSR1, SIGUSR2...)",
     None),
    # the signal a restart stops a run with is the action's (README: How a run is stopped)
    ("busy restart SIGHUP", 39, "busy restart takes no signal", "a restart, a cancel and a timeout stop a run with its "
     "action's signal: add stop SIGHUP after action app's body (action app = exec ... stop SIGHUP) and keep busy "
     "restart; to send SIGHUP to the running run instead of restarting it: busy signal SIGHUP", None),
    ("busy skip SIGHUP", 36, "busy skip takes no signal", "to signal the running run instead: busy signal SIGHUP", None),
])
def test_busy_signal_refuses_what_cannot_be_meant(policy, col, message, hint, fixed) -> None:
    c = compile_text(APP + f"on file.modified run app {policy} timeout 1m", "rules.trg")
    (d,) = [d for d in c.diagnostics if d.is_error]  # (beside the warning: hook is not used)
    assert (d.code, d.span.start.line, d.span.start.column, d.message, d.hint) == ("TRG407", 3, col, message, hint)
    assert (d.fix.edits[0].text if d.fix else None) == fixed
    if fixed == "busy restart":  # (over the whole policy, which the hint's text replaces)
        line = f"on file.modified run app {policy} timeout 1m"
        edit = d.fix.edits[0].span
        assert line[edit.start.column - 1:edit.end.column - 1] == policy


def test_busy_signal_on_an_http_action_is_refused() -> None:
    assert only('action hook = http post "http://127.0.0.1:9/x"\non git.push run hook busy signal SIGHUP') == (
        "TRG407", 2, 22, "busy signal is for exec and shell actions: an http action has no process",
        "write busy queue, skip, restart or parallel")


def test_file_changed_is_any_change() -> None:
    assert program(DEPLOY + 'on file.changed run deploy with <path>').rules[0].types == ["created", "modified", "deleted"]


def test_schedules_get_an_implicit_rule_condition() -> None:
    p = program(DEPLOY + 'nightly: on cron "0 3 * * *" tz "Europe/Paris" run deploy with "x"\n'
                'on every 90s time > "2026-01-01" run deploy with "y"')
    a, b = p.rules
    assert a.schedule == {"cron": "0 3 * * *", "tz": "Europe/Paris"}
    assert a.filter == {"op": "=", "field": "rule", "value": "nightly"}
    assert b.schedule == {"every": 90.0}
    assert b.filter["op"] == "and" and b.filter["args"][0] == {"op": "=", "field": "rule", "value": "L3"}


def test_positional_and_named_arguments_bind_the_same() -> None:
    a = program(DEPLOY + 'on git.push run deploy with <sha>, "prod"').rules[0].args
    b = program(DEPLOY + 'on git.push run deploy with stage="prod", sha=<sha>').rules[0].args
    assert a == b == {"sha": {"field": "sha"}, "stage": {"value": "prod"}}


def test_missing_and_surplus_arguments() -> None:
    code, line, col, msg, hint = only(DEPLOY + 'on git.push run deploy')
    assert (code, col, msg, hint) == ("TRG404", 17, "missing argument 'sha' for action 'deploy'",
                                      "add: with sha=<field> (or give the parameter a default)")
    code, _, col, msg, hint = only(DEPLOY + 'on git.push run deploy with <sha>, "a", "b"')
    assert (code, col, msg, hint) == ("TRG401", 41, "too many arguments: action 'deploy' takes 2",
                                      "action 'deploy' has parameters (sha, stage)")


# --------------------------------------------------------------------------- companion test files

MAIN = ('let main_branch = "main"\n' + DEPLOY +
        'deploy_main: on git.push branch=main_branch run deploy with <sha>, "prod"\n')


def test_test_file_sees_the_main_files_declarations(tmp_path: Path) -> None:
    (tmp_path / "rules.trg").write_text(MAIN)
    t = tmp_path / "rules_test.trg"
    t.write_text('on git.push branch=main_branch tag="x" run deploy with <sha>\n'
                 'test "a push to main deploys":\n'
                 '    given git.push branch="main" sha="abc"\n'
                 '    expect deploy_main\n')
    c = compile_file(t)
    assert [(d.code, d.message) for d in c.diagnostics] == []


def test_without_the_main_file_names_are_unknown(tmp_path: Path) -> None:
    t = tmp_path / "orphan_test.trg"
    t.write_text('on git.push branch=main_branch tag="x" run deploy with <sha>\n')
    c = compile_file(t)
    assert [d.code for d in c.diagnostics] == ["TRG102", "TRG104"]


def test_a_test_file_cannot_redeclare_the_main_files_names(tmp_path: Path) -> None:
    (tmp_path / "rules.trg").write_text(MAIN)
    t = tmp_path / "rules_test.trg"
    t.write_text('let main_branch = "dev"\non git.push branch=main_branch run deploy with <sha>\n')
    c = compile_file(t)
    assert [(d.code, d.span.start.line, d.message) for d in c.diagnostics] == [
        ("TRG101", 1, "duplicate let name 'main_branch' (in the file under test)")]


def test_the_main_file_does_not_see_the_test_file(tmp_path: Path) -> None:
    (tmp_path / "rules.trg").write_text(MAIN)
    (tmp_path / "rules_test.trg").write_text('action extra = shell "x"\n')
    c = compile_file(tmp_path / "rules.trg")
    assert c.ok and c.diagnostics == []
    assert [r["name"] for r in c.manifest["rules"]] == ["deploy_main"]


# --------------------------------------------------------------------------- TRG503: run.* loops

def loops(text: str) -> list[str]:
    return [d[3] for d in diags('action t = shell "true"\naction u = shell "true"\n' + text) if d[0] == "TRG503"]


def test_a_rule_on_run_completed_without_a_rule_filter_loops_on_its_own_runs() -> None:
    # the measured case: beside any other rule, it ran 2,785 runs in 6 s
    assert loops('build: on git.push run t\na: on run.completed run t\n') == [
        "rule 'a' can trigger itself: its own runs end in the run.* events it listens to (a → a)"]
    assert loops('a: on run.completed rule="build" run t\n') == []
    assert loops('a: on run.completed rule != "a" run t\n') == []
    assert loops('a: on run.* not rule in ["a"] run t\n') == []
    assert loops('a: on run.failed rule !~ "a*" run t\n') == []
    assert loops('a: on run.failed rule ~ /^a$/ run t\n') == ["rule 'a' can trigger itself: its own runs end in "
                                                              "the run.* events it listens to (a → a)"]


def test_a_cycle_through_other_rules_is_named_from_its_first_rule() -> None:
    text = ('c: on run.completed rule="b" run t\n'
            'a: on run.completed rule="c" run t\n'
            'b: on run.failed rule in ["a", "x"] run t\n')
    # c's runs start a, whose runs start b, whose runs start c again
    assert loops(text) == ["rules can trigger each other in a loop: c → a → b → c"]


def test_conditions_on_action_decide_and_other_conditions_might_hold() -> None:
    assert loops('a: on run.completed action="u" run t\n') == []  # its own runs are of action t
    assert loops('a: on run.completed action="t" exit_code=0 run t\n') != []  # exit_code might be 0
    assert loops('a: on run.completed not (rule="a" or status="x") run t\n') == []  # not (true or ?) = false
    assert loops('a: on run.completed not (rule="b" and status="x") run t\n') != []  # not (false and ?) = true
    assert loops('a: on run.completed has rule run t\n') != []


def test_an_unknown_name_in_a_rule_or_action_condition_is_an_error_not_a_crash() -> None:
    """`rule in NAME` with NAME not declared raised a TypeError out of check (the lint read
    the unresolved value as a list): it is TRG102, and the condition counts as undecided."""
    for cond in ("rule in nope", "not rule in nope", "action in nope", "rule = nope"):
        got = [d[0] for d in diags('action t = shell "true"\nb: on run.completed rule="c" run t\n'
                                   f'c: on run.completed {cond} run t\n')]
        assert "TRG102" in got and set(got) <= {"TRG102", "TRG503"}, (cond, got)


def test_a_loop_is_a_warning_the_rules_still_compile() -> None:
    c = compile_text('action t = shell "true"\na: on run.completed run t\n', "rules.trg")
    assert c.ok and c.manifest is not None
    assert [d.severity for d in c.diagnostics] == ["warning"]


def test_bitbucket_files_says_why_there_are_none() -> None:
    """Bitbucket sends no file list: asking for `files` gets that reason, not a guess."""
    text = ('secret s = env "S"\nsource bitbucket secret=s\naction d(x) = exec "echo" x\n'
            'on bitbucket.push files ~ "docs/**" run d with <sha>\n'
            'on bitbucket.push branch="main" run d with <files>\n')
    found = {(d.code, d.span.start.line): d for d in compile_text(text).diagnostics}
    assert "Bitbucket sends no list of changed files" in found[("TRG203", 4)].hint
    assert "Bitbucket sends no list of changed files" in found[("TRG403", 5)].hint


def test_a_cron_diagnostic_names_the_bad_field_and_a_cron_that_never_fires() -> None:
    code, _, col, msg, hint = only(DEPLOY + 'on cron "0 25 * * 1-5" run deploy with "x"')
    assert (code, col) == ("TRG303", 9) and "hour field '25'" in msg and "0-23" in hint
    code, _, _, msg, hint = only(DEPLOY + 'on cron "0 9 31 11 *" run deploy with "x"')
    assert code == "TRG303" and "never fires" in msg and "November 30" in hint
    # the aliases the schedule source runs are accepted, and written to the manifest as written
    c = compile_text(DEPLOY + 'nightly: on cron "@daily" tz "Europe/Paris" run deploy with "x"', "rules.trg")
    assert c.ok and c.manifest["sources"]["schedule"]["schedules"][0]["cron"] == "@daily"


def test_every_with_a_time_zone_says_to_use_cron() -> None:
    """`every 1d tz "Europe/Paris"` (someone who wants local midnight) was TRG001 "unexpected
    '"Europe/Paris"'" with a list of tokens; `every` ticks on the UTC epoch grid and has no
    zone: the hint says to write the time of day with cron."""
    found = diags(DEPLOY + 'on every 1d tz "Europe/Paris" run deploy with "x"')
    ((code, line, col, msg, hint),) = [d for d in found if d[0] == "TRG001"]
    assert (code, line, col) == ("TRG001", 2, 13)
    assert msg == "every has no time zone: it ticks at multiples of its period from the Unix epoch (UTC)"
    assert hint == 'for a time of day in a zone, use cron: on cron "0 0 * * *" tz "Europe/Paris"'

    # a filter on a field called tz, or an error further on, keeps its own message
    found = diags(DEPLOY + 'on every 1d tz="x" rnu deploy with "x"')
    assert [d[3] for d in found if d[0] == "TRG001"] == ["unexpected 'rnu'"]


def test_http_allow_takes_addresses_and_cidr_ranges() -> None:
    head = 'secret s = env "S"\n' + DEPLOY + 'on http.post path="/hooks/a" run deploy with "x"\n'
    c = compile_text(head + 'source http path="/hooks/*" token=s allow=["104.192.136.0/21", "10.0.0.7", "::1"]\n'
                     'source http path="/hooks/a" allow=["1.2.3.4"]\n', "rules.trg")
    assert c.ok, [(d.code, d.message) for d in c.diagnostics]
    route, = c.manifest["sources"]["http"]["routes"]
    assert route["allow"] == ["1.2.3.4"]  # the most specific declaration covering it
    assert route["verify"] == {"scheme": "bearer", "secret": "s", "header": "Authorization"}
    assert only(head + 'source http token=s allow=["10.0.0.0/33"]\n') == (
        "TRG208", 4, 28, "'10.0.0.0/33' is not an IP address or a CIDR range",
        'write an address ("10.0.0.7") or a range ("10.0.0.0/8")')
    code, line, _, msg, _ = only(head + 'source http token=s allow=[]\n')
    assert (code, line, msg) == ("TRG208", 4, "allow=[] refuses every request")


def test_an_http_request_rule_pinned_to_methods_opens_only_those() -> None:
    """adnanh/webhook's http-methods: a route answers 405 to the other methods. A rule on
    http.request whose conjunction pins ``method`` opens its route to those methods only;
    another rule on the same route without a pin opens it to every method."""
    def routes(rules: str) -> dict:
        c = compile_text(DEPLOY + rules, "rules.trg")
        return {r["path"]: r["methods"] for r in c.manifest["sources"]["http"]["routes"]}

    assert routes('on http.request path="/a" method in ["get", "PUT"] run deploy with "x"\n'
                  'on http.request path="/b" method="DELETE" has query.x run deploy with "x"\n'
                  'on http.post path="/b" run deploy with "x"\n'
                  'on http.request path="/c" (method="GET" or has query.x) run deploy with "x"\n') == {
        "/a": ["PUT"], "/b": ["DELETE", "POST"], "/c": None}  # ("get" never matches: not opened)
    assert routes('on http.request path="/a" method="GET" run deploy with "x"\n'
                  'on http.request path="/a" run deploy with "y"\n') == {"/a": None}


@pytest.mark.parametrize("order", [(0, 1, 2), (2, 1, 0), (1, 2, 0)])
def test_the_most_specific_http_declaration_protects_a_route_wherever_it_is_written(order) -> None:
    """Hooks with a secret each under one prefix: ``path="/hooks/special" token=t`` beside
    ``path="/hooks/*" hmac=s`` protected /hooks/special with hmac=s when the glob came
    first (the first covering declaration won, the exact one was ignored without a word)."""
    decls = ['source http path="/hooks/special" token=t reply="special"\n',
             'source http path="/hooks/*" hmac=s reply="hooks"\n',
             'source http token=u allow=["10.0.0.0/8"]\n']
    text = 'secret s = env "S"\nsecret t = env "T"\nsecret u = env "U"\n' + "".join(decls[i] for i in order) + \
        DEPLOY + 'on http.post path="/hooks/special" run deploy with "x"\n' \
                 'on http.post path="/hooks/other" run deploy with "y"\non http.post path="/top" run deploy with "z"\n'
    c = compile_text(text, "rules.trg")
    assert c.ok, [(d.code, d.message) for d in c.diagnostics]
    got = {r["path"]: (r["verify"]["secret"], r.get("reply"), r.get("allow")) for r in c.manifest["sources"]["http"]["routes"]}
    assert got == {"/hooks/special": ("t", "special", ["10.0.0.0/8"]), "/hooks/other": ("s", "hooks", ["10.0.0.0/8"]),
                   "/top": ("u", None, ["10.0.0.0/8"])}


@pytest.mark.parametrize("cond, never, hint", [
    ('method="post"', "'post'", 'write method="POST"'),
    ('method in ["get", "put"]', "'get', 'put'", 'write method in ["GET", "PUT"]')])
def test_a_method_in_lower_case_can_never_match(cond: str, never: str, hint: str) -> None:
    """webhook's http-methods are not case-sensitive; an event's method is upper case, so
    method="post" never matched and the route answered 202 with no run, without a word."""
    text = 'secret s = env "S"\nsource http token=s\n' + DEPLOY + f'on http.request path="/a" {cond} run deploy with "x"\n'
    assert only(text) == ("TRG501", 4, 27, f"rule 'L4' can never match: an HTTP method is upper case, never {never}",
                          hint)


@pytest.mark.parametrize("cond, name, how", [
    ('headers.x-gitlab-token="t0k"', "x-gitlab-token", 'token=NAME header="X-Gitlab-Token"'),
    ('headers.Authorization in ["Bearer a", "Bearer b"]', "authorization", "token=NAME (Authorization: Bearer <token>)"),
    ('headers.x-hub-signature-256="sha256=00"', "x-hub-signature-256", "its source's secret, token or hmac"),
    ('headers.X-Api-Key="k3y"', "x-api-key", 'token=NAME header="X-Api-Key"'),
    ('headers.x-auth-token in ["a", "b"]', "x-auth-token", 'token=NAME header="X-Auth-Token"'),
    ('query.access_token="t0k"', "access_token", 'token=NAME query="access_token"'),
    ('query.api_key="k3y"', "api_key", 'token=NAME query="api_key"')])
def test_a_value_of_a_credential_header_can_never_match(cond: str, name: str, how: str) -> None:
    """A credential header reaches rules as <redacted>: headers.x-gitlab-token="..." (what
    adnanh/webhook's GitLab hook reads as) never matched, and its deliveries got 202 with no run.
    (On a route that checks another header: on one that checks it, the route's own words,
    test_a_condition_on_the_header_the_route_checks_says_the_route_checks_it.)"""
    text = 'secret s = env "S"\nsource http hmac=s\n' + DEPLOY + f'on http.request path="/a" {cond} run deploy with "x"\n'
    what = f"the {name} query parameter" if cond.startswith("query.") else f"the {name} header"
    assert only(text) == ("TRG501", 4, 27, f"rule 'L4' can never match: {what} is a credential, "
                                           f"redacted before rules see it", f"check it on the route instead: {how}")
    # another header or parameter, and the value rules do see, are conditions like any
    for fine in ('headers.x-event-key="repo:push"', 'headers.cookie="<redacted>"', 'query.env="prod"',
                 'query.token="<redacted>"', 'query.api_key != "<redacted>"', 'has headers.authorization',
                 'headers.x-event-key != "x"'):
        assert diags(text.replace(cond, fine)) == [], fine


@pytest.mark.parametrize("cond", ['headers.authorization != "Bearer x"', 'query.api_key != "x"',
                                  'headers.x-api-key ~ "k*"', 'headers.x-api-key !~ /^k/',
                                  'query.token not in ["a", "b"]',
                                  '(headers.x-api-key="k" or query.env="prod")', 'not query.token="t"'])
def test_any_other_comparison_of_a_credential_is_reported(cond: str) -> None:
    """TRG501 fired only for = and in side by side: headers.authorization != "Bearer x"
    passed check and held for every request that sent one (it compares "<redacted>"),
    a glob or regex held for every value or none. Every comparison of a credential's value
    is reported, with has as the way to test that one was sent."""
    text = 'secret s = env "S"\nsource http hmac=s\n' + DEPLOY + f'on http.request path="/a" {cond} run deploy with "x"\n'
    code, line, _, message, hint = only(text)
    field = cond.strip("(").removeprefix("not ").split()[0].split("=")[0]
    what = field.split(".")[1].lower()
    assert (code, line) == ("TRG501", 4), message
    assert f"compares the {what} " in message and 'the condition only ever sees "<redacted>"' in message, message
    assert hint.startswith("check it on the route instead: ") and hint.endswith(f"(to test that it was sent: has {field})")


MY_KEY = 'secret k = env "K"\nsecret g = env "G"\nsource http path="/hooks/*" token=k header="X-My-Key"\n'
TK = 'secret k = env "K"\nsource http path="/hooks/q" token=k query="tk"\n'


@pytest.mark.parametrize("decls, cond, route, message", [
    (MY_KEY, 'headers.x-my-key="k"', "/hooks/x",
     "can never match: the x-my-key header is the credential route /hooks/x checks, redacted before rules see it"),
    (MY_KEY, 'headers.X-My-Key in ["k", "l"]', "/hooks/x", "can never match: the x-my-key header is the credential"),
    (MY_KEY, 'headers.x-my-key != "k"', "/hooks/x", "compares the x-my-key header with '!=', but it is the "
     'credential route /hooks/x checks, redacted before rules see it: the condition only ever sees "<redacted>"'),
    (MY_KEY, '(headers.x-my-key ~ "k*" or payload.a=1)', "/hooks/x", "compares the x-my-key header with '~'"),
    (MY_KEY, 'headers.x-my-key="k"', "~/hooks/*", "can never match: the x-my-key header is the credential route /hooks/*"),
    (TK, 'query.tk="k"', "/hooks/q", 'can never match: the tk query parameter is the token route /hooks/q checks '
     '(query="tk"), left out of the event'),
    (TK, 'payload.tk="k"', "/hooks/q", "can never match: the body's top-level tk field is the token route /hooks/q"),
    (TK, 'query.tk != "k"', "/hooks/q", "compares the tk query parameter with '!=', but it is the token route "
     '/hooks/q checks (query="tk"), left out of the event: the condition never sees it'),
    (TK.replace('"tk"', '"key"'), 'query.key="<redacted>"', "/hooks/q", "can never match: the key query parameter"),
    ('secret k = env "K"\nsource ci token=k header="X-Ci-Key"\n', 'headers.x-ci-key="k"', None,
     "can never match: the x-ci-key header is the credential route /ci checks"),
])
def test_a_condition_on_the_routes_own_credential_is_reported(decls: str, cond: str, route: str | None,
                                                             message: str) -> None:
    """TRG501 did not know a route's own header= or query= credential: with source http
    path="/hooks/x" token=k header="X-My-Key", headers.x-my-key="k" passed check and never
    matched (serve redacts the header, leaves query=/payload's token out), != matched every
    delivery. The route is the one serve builds for the rule's path (here from a glob's
    declaration); for a provider rule, its provider's. Dropping the condition, as the hint
    says, checks clean."""
    decls = decls.replace('secret g = env "G"\n', "")
    if route is None:
        trigger = "on ci.completed"
    else:
        trigger = f'on http.post path ~ "{route[1:]}"' if route.startswith("~") else f'on http.post path="{route}"'
    text = decls + DEPLOY + f'{trigger} {cond} run deploy with "x"\n'
    code, line, _, msg, hint = only(text)
    assert (code, line) == ("TRG501", 4) and message in msg, msg
    assert hint.endswith(": drop the condition") and hint.startswith("the route answers 401 to a delivery without")
    assert diags(text.replace(f" {cond}", "")) == []


@pytest.mark.parametrize("decl, trigger, cond, shown", [
    ("source http path=\"/h\" token=s", 'on http.post path="/h"', 'headers.authorization="Bearer x"', "Authorization"),
    ("source http token=s", 'on http.post path="/h"', 'headers.Authorization in ["Bearer a", "Bearer b"]',
     "Authorization"),
    ("source http path=\"/h\" token=s", 'on http.post path="/h"', 'headers.authorization != "Bearer x"',
     "Authorization"),
    ("source http path=\"/h\" hmac=s", 'on http.post path="/h"', 'headers.x-signature-256="sha256=00"',
     "X-Signature-256"),
    ("source github secret=s", "on github.push", 'headers.x-hub-signature-256="sha256=00"', "X-Hub-Signature-256"),
    ("source gitlab token=s", "on gitlab.push", 'headers.x-gitlab-token="t"', "X-Gitlab-Token"),
])
def test_a_condition_on_the_header_the_route_checks_says_the_route_checks_it(decl: str, trigger: str, cond: str,
                                                                           shown: str) -> None:
    """The header a route's scheme reads when it names none (Authorization for token=)
    is redacted on every route, and TRG501's hint said "check it on the route instead:
    token=NAME (Authorization: Bearer <token>)" where the route already did: it now says
    so, as for a route's own header=, and dropping the condition checks clean."""
    text = f'secret s = env "S"\n{decl}\n' + DEPLOY + f'{trigger} {cond} run deploy with "x"\n'
    code, line, _, msg, hint = only(text)
    name = shown.lower()
    assert (code, line) == ("TRG501", 4) and f"the {name} header" in msg and "is the credential route " in msg, msg
    assert hint == f"the route answers 401 to a delivery without the right {shown} header: drop the condition"
    assert diags(text.replace(f" {cond}", "")) == []


@pytest.mark.parametrize("cond, message", [
    ("has query.tk", 'can never match: the tk query parameter is the token route /hooks/q checks (query="tk"), '
     "left out of the event"),
    ("(has query.tk or payload.a=1)", "tests has query.tk, which never holds: the tk query parameter is the token"),
    ("not has query.tk", "tests has query.tk, which never holds"),
])
def test_has_on_the_routes_query_token_is_reported(cond: str, message: str) -> None:
    """has query.tk on a route that takes its token from ?tk= passed check and never held
    (the parameter is left out of the event). has headers.x-my-key (true for every delivery
    the route accepts) and has payload.tk (true for a body whose tk is not a string, which
    the route leaves in) can hold, and are left alone."""
    text = TK + DEPLOY + f'on http.post path="/hooks/q" {cond} run deploy with "x"\n'
    code, line, _, msg, hint = only(text)
    assert (code, line) == ("TRG501", 4) and message in msg, msg
    assert hint == "the route answers 401 to a delivery without the right ?tk=: drop the condition"
    assert diags(text.replace(f" {cond}", "")) == []
    for fine in (TK + DEPLOY + 'on http.post path="/hooks/q" has payload.tk run deploy with "x"\n',
                 TK + 'source http path="/other" token=k\n' + DEPLOY
                 + 'on http.post path="/other" has query.tk run deploy with "x"\n',
                 MY_KEY.replace('secret g = env "G"\n', "") + DEPLOY
                 + 'on http.post path="/hooks/x" has headers.x-my-key run deploy with "x"\n'):
        assert diags(fine) == [], fine


@pytest.mark.parametrize("decls, rule, message", [
    (MY_KEY, 'on all(http.post path="/hooks/x" headers.x-my-key="k" as a, http.post path="/hooks/y" as b) within 1h',
     "member http.post as a of rule 'L4' can never match: the x-my-key header is the credential route /hooks/x"),
    (TK, 'on 2 of http.post path="/hooks/q" query.tk != "k" within 1h', "member http.post of rule 'L4' compares "
     "the tk query parameter with '!=', but it is the token route /hooks/q checks"),
    ('secret g = env "G"\nsource github secret=g\n', 'on absent(github.push headers.x-hub-signature-256="x") for 1h',
     "member github.push of rule 'L4' can never match: the x-hub-signature-256 header is the credential route"),
    ('secret g = env "G"\nsource http hmac=g\n', 'on any(http.post path="/a" headers.x-api-key="k" as a, '
     'http.post path="/b" as b)', "member http.post as a of rule 'L4' can never match: the x-api-key header is a "
     "credential, redacted before rules see it"),
])
def test_a_correlation_members_condition_on_a_routes_credential_is_reported(decls: str, rule: str,
                                                                            message: str) -> None:
    """TRG501's route lints read single-trigger rules only: a member's condition on the
    header or query parameter its route hides passed check and never held. A member is
    named as lint_never names it; dropping the condition checks clean."""
    decls = decls.replace('secret g = env "G"\n', "") if decls is MY_KEY else decls
    text = decls + DEPLOY + rule + ' run deploy with "x"\n'
    code, line, _, msg, _ = only(text)
    assert (code, line) == ("TRG501", 4) and msg.startswith(message), msg
    cond = re.search(r' (?:headers|query)\.[a-z0-9-]+ ?!?= ?"[^"]*"', rule).group()
    assert diags(text.replace(cond, "")) == [], text.replace(cond, "")


def test_a_routes_own_credential_is_left_alone_where_another_route_lets_it_through() -> None:
    """A rule that can get deliveries from several routes is reported only when each of
    them hides the field: a glob's rule also hears a more specific route another rule pins
    (which checks another way), a ci.completed rule GitHub's derived ones."""
    fine = [MY_KEY + 'source http path="/hooks/y" hmac=g\n' + DEPLOY
            + 'on http.post path ~ "/hooks/*" headers.x-my-key="k" run deploy with "x"\n'
            + 'on http.post path="/hooks/y" run deploy with "y"\n',
            'secret k = env "K"\nsecret g = env "G"\nsource ci token=k header="X-Ci-Key"\nsource github secret=g\n'
            + DEPLOY + 'on ci.completed headers.x-ci-key="k" run deploy with "x"\n',
            MY_KEY + 'source http path="/other" hmac=g\n' + DEPLOY
            + 'on http.post path="/other" headers.x-my-key="k" run deploy with "x"\n',
            MY_KEY.replace('secret g = env "G"\n', "") + DEPLOY
            + 'on http.post path="/hooks/x" headers.x-my-key="<redacted>" run deploy with "x"\n']
    for text in fine:
        assert diags(text) == [], text


def test_header_names_the_header_a_token_is_read_from() -> None:
    """source ci/http token=S header="X-Token": the header's value is the token (scheme
    token, as GitLab's X-Gitlab-Token); before, header= was left unread beside token= and
    the route took Authorization: Bearer. Beside standard= (or alone) it is an error."""
    def verify(decl: str, rule: str) -> dict:
        c = compile_text('secret s = env "S"\n' + decl + DEPLOY + rule + ' run deploy with "x"\n', "rules.trg")
        assert c.ok, [(d.code, d.message) for d in c.diagnostics]
        route, = c.manifest["sources"]["http"]["routes"]
        return route["verify"]

    assert verify('source ci token=s header="X-Token"\n', "on ci.completed") == \
        {"scheme": "token", "secret": "s", "header": "X-Token"}
    assert verify('source http token=s header="X-Token"\n', 'on http.post path="/a"') == \
        {"scheme": "token", "secret": "s", "header": "X-Token"}
    for decl in ('source ci token=s\n', 'source ci token=s header="authorization"\n'):
        assert verify(decl, "on ci.completed") == {"scheme": "bearer", "secret": "s", "header": "Authorization"}
    assert verify('source ci hmac=s header="X-Sig"\n', "on ci.completed") == \
        {"scheme": "hmac", "secret": "s", "header": "X-Sig"}


def test_a_placeholder_in_an_actions_body_names_what_to_write_and_its_rules_do_not_cascade() -> None:
    """`<sha>` in an action's body (a rule's spelling) was "unexpected '<sha>'", and each rule
    running the action then "unknown action". The hint names the parameter to write bare,
    or the one to declare and pass; the rules are not also told the action is unknown."""
    got = diags('action deploy(sha) = exec "./deploy.sh" <sha>\non git.push run deploy with <sha>\n')
    assert [(d[0], d[1], d[2], d[3]) for d in got] == [("TRG001", 1, 41, "an action's body has no placeholders: '<sha>'")]
    assert got[0][4] == "a parameter is written bare in the body: sha"
    got = diags('action note = shell "echo $X" env X=<payload.ref>\non git.push run note\n')
    assert [d[0] for d in got] == ["TRG001"]
    assert got[0][4] == ("an action does not read the event: declare a parameter, action note(ref) = ... ref, "
                         "and pass it from the rule: run note with <payload.ref>")
    # an action that is really missing is still reported, beside a broken one
    assert codes('action a = exec "x" <sha>\non git.push run b\n') == [("TRG001", 1), ("TRG104", 2)]


def test_a_correlation_key_passed_without_brackets_is_offered_the_placeholder() -> None:
    text = ('source github secret=g\nsecret g = env "G"\nsource gitlab token=t\nsecret t = env "T"\n' + DEPLOY
            + 'on any(github.push as a, gitlab.push as b) same <sha> within 1h run deploy with sha\n')
    got = diags(text)
    assert [(d[0], d[1], d[2]) for d in got] == [("TRG102", 6, 81)]
    assert got[0][4].startswith("did you mean '<sha>'?")
    assert diags(text.replace("with sha", "with <sha>")) == []


@pytest.mark.parametrize(("text", "code", "col", "message", "hint"), [
    # watchexec's --debounce counts milliseconds: the bare number is offered as ms first
    ('on file.changed path ~ "src/**" run build debounce 300', "TRG304", 52,
     "invalid duration '300'", "a duration needs a unit: 300ms (watchexec's --debounce counts milliseconds) or 300s"),
    ('on cron "0 3 * * *" tz Europe/Paris run build', "TRG001", 24, "a time zone is a string", 'write tz "Europe/Paris"'),
    ("on schedule every 5m run build", "TRG001", 4, "'schedule' is not needed: a schedule is the trigger itself",
     'remove it: on every 15m run ACTION, on cron "0 3 * * *" run ACTION'),
])
def test_hints_for_a_watchexec_or_cron_users_first_rule(text: str, code: str, col: int, message: str,
                                                        hint: str) -> None:
    assert diags('action build = exec "make"\n' + text + "\n") == [(code, 2, col, message, hint)]
    if hint.startswith("write "):
        [d] = compile_text('action build = exec "make"\n' + text + "\n", "rules.trg").diagnostics
        assert_the_fix_writes(d, hint[len("write "):])


@pytest.mark.parametrize("body", ['exec "make" timeout 5m', 'shell "make" retry 2'])
def test_a_policy_written_on_an_action_is_sent_to_the_rule(body: str) -> None:
    word = body.split()[2]
    got = diags(f"action build = {body}\non every 1h run build\n")
    assert got == [("TRG001", 1, 16 + body.index(word), f"'{word}' is a policy of a rule, not an option of an action",
                    f"write it after the rule's run clause: on TRIGGER run build {word} ...")]
    # a parameter of that name is a parameter
    assert diags('action build(timeout) = exec "make" timeout\non every 1h run build with "5"\n') == []


# --------------------------------------------------------------------------- first rules from other tools
#
# Habits of watchexec, cron, Quartz, GitHub Actions and shell users in a first rule: each
# gets one diagnostic, and where its hint says "write X", X pasted over the underlined span
# gives a rule that checks clean (the right spelling itself checks clean).

FIRST = ('secret gh = env "GH"\nsource github secret=gh\nsource http token=gh\n'
         'action build = exec "make"\naction deploy(sha, stage="dev") = exec "./deploy.sh" sha stage\n')
UNUSED = ("TRG107", "TRG108")  # (an action or source the rule does not use)

FIRST_RULE_CASES = [
    # (the rule as written, the message's start, the hint)
    ('on git.push run deploy with <sha> timeout=10m', "a policy takes no '='", "write timeout 10m"),
    ('on git.push run build retry=3', "a policy takes no '='", "write retry 3"),
    ('on file.changed run build debounce: 500ms', "a policy takes no ':'", "write debounce 500ms"),
    ('on file.changed run build busy="restart"', "a policy takes no '='", "write busy restart"),
    ('on every "5m" run build', "a duration is not a string", "write 5m"),
    ('on git.push run build timeout "10m"', "a duration is not a string", "write 10m"),
    ('on cron 0 3 * * mon-fri tz "Europe/Paris" run build', "a cron expression is a string", 'write "0 3 * * mon-fri"'),
    ('on git.push branch=\u201cmain\u201d run build', "typographic quotes", 'write "main"'),
    ('on git.push branch=\u2018main\u2019 run build', "typographic quotes", 'write "main"'),
    ('on git.push branch="main" run build; deploy', "a rule runs one action",
     'add a rule for deploy: on git.push branch="main" run deploy (for one after the other, one action that runs both)'),
    ('on git.push run build and deploy', "a rule runs one action",
     "add a rule for deploy: on git.push run deploy (for one after the other, one action that runs both)"),
    ('on git.push run build on git.tag run build', "a second rule on the line of the first",
     "start each rule on a line of its own (in column 1)"),
    ('on git.push run deploy with $sha', "an argument from the event is written <field> here: '$sha'", "write <sha>"),
    ('on git.push run deploy with ${{ github.sha }}', "an argument from the event is written <field> here",
     "write <sha>"),
    ('on github.push run deploy with ${{ github.event.head_commit.id }}', "an argument from the event is written",
     "write <payload.head_commit.id>"),
    ('on git.push run build busy cancel', "busy takes queue, skip, restart, parallel or signal, not 'cancel'",
     "write restart (GitHub Actions' cancel-in-progress: the running run is stopped, the new one starts)"),
    ('on git.push run build busy do-nothing', "busy takes",
     "write skip (watchexec's do-nothing: the event starts no run while one is going)"),
    ('on cron "0 0 3 ? * MON-FRI" run build', "a cron expression has 5 fields, this one has 6: seconds first",
     'a schedule fires on the minute: write "0 3 ? * MON-FRI"'),
    ('on cron "0 30 2 * * ? *" run build', "a cron expression has 5 fields, this one has 7: seconds first and a year last",
     'a schedule fires on the minute: write "30 2 * * ?"'),
    ('on cron "@every 5m" run build', "@every is an interval, not a cron expression",
     "an interval is a trigger of its own: on every 5m run ACTION"),
    ('on cron "0 3 * * *" tz "Paris" run build', "unknown time zone 'Paris'", "did you mean 'Europe/Paris'?"),
    ('on cron "0 3 * * *" tz "New York" run build', "unknown time zone 'New York'", "did you mean 'America/New_York'?"),
    # GitHub Actions' on: block
    ('on push run build', "an event is SOURCE.EVENT, not 'push'",
     "write github.push (a GitHub webhook) or git.push (a repository on this machine)"),
    ('on github.push branches: [main, \'releases/**\'] run build', "a condition is FIELD = VALUE, not 'key: value'",
     'write branch ~ ["main", "releases/**"]'),
    ('on github.pull_request types: [opened, synchronize] run build', "a condition is FIELD = VALUE",
     'write action in ["opened", "synchronize"]'),
    ('on github.push branch: main run build', "a condition is FIELD = VALUE", 'write branch="main"'),
    ('on github.push if: branch="main" run build', "'if:' is not needed before a filter",
     "the conditions follow the trigger: on SOURCE.EVENT CONDITIONS run ACTION"),
    ('on github.pull_request types=["opened"] run build', "github.pull_request has no field 'types'",
     'write action="opened" (GitHub Actions\' types: filter)'),
    ('on github.push paths="src/**" run build', "github.push has no field 'paths'",
     'write files ~ "src/**" (GitHub Actions\' paths: filter)'),
    ('on git.push branches=["main", "release/*"] run build', "git.push has no field 'branches'",
     'write branch ~ ["main", "release/*"] (GitHub Actions\' branches: filter)'),
    ('on github.push run deploy with <github.sha>', "github.push events have no field 'github.sha'", "write <sha>"),
    ('on github.push run deploy with <github.event.head_commit.id>', "github.push events have no field",
     "write <payload.head_commit.id>"),
    # watchexec's -e py and -w ./src
    ('on file.changed ext in [".py", ".toml"] run build', "rule 'L6' can never match: an event's ext has no dot",
     'write ext in ["py", "toml"]'),
    ('on file.changed path ~ "./src/**" run build', "rule 'L6' can never match: an event's path is relative to the root",
     'write path ~ "src/**"'),
    ('on file.changed path ~ "/home/me/src/**" run build', "rule 'L6' can never match: an event's path is relative",
     'paths are relative to the root: source file root="/DIR", then path ~ "src/**"'),
    # a rule's parts out of place
    ('deploy main: on git.push run build', "a label is one word", "write deploy-main"),
    ('deploy-main on git.push run build', "a label ends with ':'", "write deploy-main:"),
    ('when git.push run build', "a rule starts with 'on'", "write on"),
    ('on git.push branch="main" then build', "an action is run with 'run', not 'then'", "write run build"),
    ('on git.push run ./deploy.sh', "run takes the name of an action, not a command",
     'declare it, action deploy = exec "./deploy.sh", and write deploy'),
    ('on git.push exec "make build"', "a rule runs a declared action, not a command",
     'declare action make = exec "make" "build" and write run make'),
    ('on git.push run deploy <sha>', "an action's arguments follow 'with'", "write with <sha>"),
    ('on git.push run deploy with <sha> "prod"', "arguments are separated by commas", 'write <sha>, "prod"'),
    ('on git.push run deploy with sha=<sha> stage="prod"', "arguments are separated by commas",
     'write sha=<sha>, stage="prod"'),
    ('on git.push branch="main", tag="v1" run build', "conditions are not separated by commas",
     "remove the ',': conditions side by side must all hold (for either, write 'or' between them)"),
    ('on git.push run build retry 3 times', "retry takes the number of re-runs", "write 3"),
    ('on git.push run build retry 3x', "retry takes the number of re-runs", "write 3"),
    ('on http.post "/hooks/deploy" run build', "an http rule's path is a condition", 'write path="/hooks/deploy"'),
    ('on file.changed run build -r', "a rule has policies, not command-line flags: '-r'", "write busy restart"),
    ('on file.changed run build --debounce 500', "a rule has policies, not command-line flags",
     "write debounce 500ms"),
    ('on file.changed run build --timeout=5m', "a rule has policies, not command-line flags", "write timeout 5m"),
    ('on file.changed ext in [py, toml] run build', "unknown names 'py', 'toml'",
     'text goes in quotes: write ["py", "toml"]'),
    ('on git.push run build retry 3 backoff exponential', "backoff takes the first wait, not 'exponential'",
     "write 5s (the wait doubles after each failure: 5s, 10s, 20s...)"),
    # JSON's and the command line's spellings, GitHub Actions' concurrency
    ('on git.push "branch": "main" run build', "a condition is FIELD = VALUE, not JSON's", 'write branch="main"'),
    ('on git.push run deploy with <sha>; build', "a rule runs one action",
     "add a rule for build: on git.push run build (for one after the other, one action that runs both)"),
    ('on git.push run deploy --sha <sha>', "an action's arguments follow 'with', not command-line flags: '--sha'",
     "write with sha=<sha>"),
    ('on git.push run deploy --sha <sha> --stage prod', "an action's arguments follow 'with', not command-line",
     'write with sha=<sha>, stage="prod"'),
    ('on git.push run build concurrency 1', "a rule's concurrency is its busy policy",
     "write busy queue (one run at a time, the next waits for it: the default)"),
    # a JSON object for a filter or for the arguments, flags after the arguments
    ('on git.push {"branch": "main"} run build', "a filter is FIELD = VALUE conditions, not a JSON object",
     'write branch="main"'),
    ("on github.pull_request {action: ['opened', 'synchronize'], pull_request: {draft: false}} run build",
     "a filter is FIELD = VALUE conditions", 'write action in ["opened", "synchronize"] payload.pull_request.draft=false'),
    ('on git.push run deploy with {"sha": "<sha>", "stage": "prod"}', "an action's arguments are NAME=VALUE, not a JSON",
     'write sha=<sha>, stage="prod"'),
    ('on git.push run deploy with sha=<sha> --stage prod', "an action's arguments follow 'with', not command-line "
     "flags: '--stage'", 'write sha=<sha>, stage="prod"'),
    ('on git.push run deploy with <sha> --stage=prod', "an action's arguments follow 'with', not command-line",
     'write <sha>, stage="prod"'),
    # an operator in words (SQL's, shell test's, Python's, adnanh/webhook's match)
    ('on git.push branch is "main" run build', "'is' is written '='", 'write = "main" (FIELD = VALUE; != is not equal)'),
    ('on git.push branch ne "main" run build', "'ne' is written '!='", 'write != "main"'),
    ('on git.push branch like "release/%" run build', "'like' is written '~'", 'write ~ "release/*"'),
    ('on github.pull_request labels contains "bug" run build', "'contains' is written '=' on a list, '~' on a string",
     'write = "bug" (some element is "bug"; a string that holds it: ~ "*bug*")'),
    ('on http.post path="/hooks/x" payload.ref match "refs/heads/main" run build', "'match' is written '='",
     'write = "refs/heads/main" (FIELD = VALUE; != is not equal)'),
    # a shell's syntax after the run clause; a condition after it
    ('on git.push run deploy with <sha> > deploy.log', "a rule runs no shell: '> deploy.log' is a redirection",
     "remove it: serve keeps each run's output (triggerc logs N); an action that writes a file or pipes does it "
     'in its own command, shell "... > deploy.log"'),
    ('on git.push run build 2>&1 | tee build.log', "a rule runs no shell: '2>&1 | tee build.log' is a redirection",
     "remove it: serve keeps each run's output (triggerc logs N); an action that writes a file or pipes does it "
     'in its own command, shell "... 2>&1 | tee build.log"'),
    ('on git.push run build &', "'&' is not needed: serve starts each run in the background",
     "remove it (a rule's runs overlap with busy parallel)"),
    ('on git.push run build; timeout 5m', "a rule's policies follow its run clause, without ';'", "remove the ';'"),
    ('on git.push run build if branch="main"', "a rule's conditions follow its trigger, not 'if' after its action",
     'write on git.push branch="main" run build'),
    ("on github.push branch=\"main\" run build if: github.actor != 'bot'", "a rule's conditions follow its trigger",
     'write on github.push branch="main" sender != "bot" run build'),
    ('on git.push run build every 5m', "a rule has one trigger",
     "add a rule for the schedule: on every 5m run build (this one keeps on git.push)"),
    # GitHub Actions' if: expressions and -ignore filters
    ("on github.push if: github.ref == 'refs/heads/main' run build", "a filter is conditions, not 'if:' and an expr",
     'write branch="main"'),
    ("on github.push if: ${{ !contains(github.event.head_commit.message, '[skip ci]') }} run build",
     "a filter is conditions, not 'if:'", "write not payload.head_commit.message ~ /\\[skip\\ ci\\]/"),
    ("on github.push if: startsWith(github.ref, 'refs/tags/v') && github.actor == 'me' run build",
     "a filter is conditions, not 'if:'", 'write tag ~ /^v/ and sender="me"'),
    ("on github.push if: endsWith(github.ref, '-rc') || github.event.forced run build",
     "a filter is conditions, not 'if:'", 'write (ref ~ /\\-rc$/ or payload.forced=true)'),
    ("on github.push if ${{ github.ref == 'refs/heads/main' }} run build",
     "a filter is conditions, not 'if' and an expression", 'write branch="main"'),
    ('on github.push branches-ignore: [main, dev] run build', "a condition is FIELD = VALUE, not 'key: value'",
     'write has branch branch not in ["main", "dev"]'),
    ("on github.push paths-ignore: ['docs/**', '*.md'] run build", "a condition is FIELD = VALUE",
     'write files !~ ["docs/**", "*.md"]'),
    # cron's, systemd timers' and English schedules
    ('on every day at "03:00" run build', "an interval is a number and a unit: 'every day at \"03:00\"'",
     'write cron "0 3 * * *" (UTC; in a zone: tz "Area/City" after it)'),
    ('on every weekday at 6pm run build', "an interval is a number and a unit",
     'write cron "0 18 * * 1-5" (UTC; in a zone: tz "Area/City" after it)'),
    ('on every monday run build', "an interval is a number and a unit: 'every monday'",
     'write cron "0 0 * * 1" (UTC; in a zone: tz "Area/City" after it)'),
    ('on every hour run build', "an interval is a number and a unit: 'every hour'", "write every 1h"),
    ('on every 1d at "03:00" run build', "every has no time of day",
     'write cron "0 3 * * *" (UTC; in a zone: tz "Area/City" after it)'),
    ('on OnCalendar="Mon..Fri 03:00" run build', "a schedule is on cron \"...\" or on every D, not systemd's",
     'write cron "0 3 * * mon-fri"'),
    ('on cron "0 3 * * *" timezone "Europe/Paris" run build', "a cron's time zone follows tz, not 'timezone'",
     "write tz"),
    ('on every 1h persistent run build', "a missed tick is made up with 'catch up', not 'persistent'",
     "write catch up"),
    ('on every 1h Persistent=true run build', "schedule.tick has no field 'Persistent'", "write catch up (systemd's "
     "Persistent=true: a tick missed while serve was down is made up at its start)"),
    # watchexec's flags for a filter and for busy; a list without brackets or commas
    ('on file.changed -e py,toml -w ./src run build', "a file rule's filters are conditions, not watchexec's flags",
     'write ext in ["py", "toml"] path ~ "src/**"'),
    ('on file.changed run build --on-busy-update=do-nothing', "a rule's policy is busy, not '--on-busy-update'",
     "write busy skip"),
    ('on git.push branch in main, dev run build', "a list is written in [ ]", 'write ["main", "dev"]'),
    ('on git.push branch in ["main" "dev"] run build', "a list's items are separated by commas",
     'write "main", "dev"'),
    # YAML's and the shell's arguments, GitHub Actions' and job runners' policy names
    ('on git.push run deploy with sha: <sha>', "a named argument is NAME=VALUE, not 'NAME: VALUE'", "write sha=<sha>"),
    ('on git.push run deploy with --sha=<sha>', "an action's arguments follow 'with', not command-line flags",
     "write sha=<sha>"),
    ('on git.push run deploy with $(git rev-parse HEAD)', "a rule runs no shell: '$(git rev-parse HEAD)' is a command",
     "write <sha> (the event's commit)"),
    ('on git.push run build retries 3', "a rule's policy is retry, not 'retries'", "write retry 3"),
    ('on git.push run build retry three', "retry takes a number, not 'three'", "write 3"),
    ('on file.changed run build --clear', "a rule has policies, not watchexec's flags: '--clear'",
     "remove it: a run's output goes to .triggerlang/logs/N.log (triggerc logs -f N), its end to triggerc runs; "
     "on run.failed run notify for a notice"),
    ('on git.push run build timeout-minutes: 10', "a rule's policy is timeout, not 'timeout-minutes'",
     "write timeout 10m"),
    # adnanh/webhook's hook id and trigger-rule
    ('on http.post id="redeploy" run build', "http.post has no field 'id'",
     'write path="/hooks/redeploy" (adnanh/webhook\'s hook id: the route it answers on)'),
    ('on http.post path="/hooks/x" trigger-rule: {"and": [{"match": {"type": "value", "value": "refs/heads/main", '
     '"parameter": {"source": "payload", "name": "ref"}}}, {"match": {"type": "regex", "regex": "^v", '
     '"parameter": {"source": "header", "name": "X-Tag"}}}]} run build',
     "a filter is conditions, not adnanh/webhook's trigger-rule", 'write payload.ref="refs/heads/main" headers.x-tag ~ /^v/'),
    # a shell's or a template's reference inside a string: passed as written
    ('on git.push run deploy with "$sha"', "'$sha' is passed as written: strings are not templates", "write <sha>"),
    ('on git.push run deploy with "${sha}"', "'${sha}' is passed as written", "write <sha>"),
    ('on git.push run deploy with "{{sha}}"', "'{{sha}}' is passed as written", "write <sha>"),
    ('on git.push run deploy with "{{ .sha }}"', "'{{ .sha }}' is passed as written", "write <sha>"),
    ('on github.push run deploy with "${{ github.sha }}"', "'${{ github.sha }}' is passed as written", "write <sha>"),
    ('on git.push run deploy with <sha>, "prod-$branch"', "'$branch' is passed as written",
     "pass <branch> as an argument of its own"),
    # a whole ref where a short name goes, and the other way round: never matched
    ('on github.push ref="main" run build', "rule 'L6' can never match: an event's ref is whole, refs/heads/main "
     "or refs/tags/main: never 'main'", 'write branch="main" (for a tag: tag="main")'),
    ('on git.push ref in ["main", "dev"] run build', "rule 'L6' can never match: an event's ref is whole",
     'write branch in ["main", "dev"] (for a tag: tag in ["main", "dev"])'),
    ('on git.push branch="refs/heads/main" run build',
     "rule 'L6' can never match: an event's branch is a short name, main", 'write branch="main"'),
    ('on github.push branch ~ "refs/tags/v*" run build', "rule 'L6' can never match: an event's branch is a short",
     'write tag ~ "v*"'),
    # a source that is no one's, a file rule's glob, a UTC offset for a zone
    ('on webhook.push run build', "unknown source 'webhook'",
     'write github.push (or gitlab.push, gitea.push, bitbucket.push: the provider that sends it), '
     'or http.post path="/hooks/NAME" for any other sender'),
    ('on webhook.post run build', "unknown source 'webhook'",
     'write http.post path="/hooks/NAME" (any sender\'s webhook, on the route of a source http)'),
    ('on file.changed glob="*.py" run build', "file.changed has no field 'glob'",
     'write path ~ "**/*.py" (a file rule\'s glob is a condition on its path)'),
    ('on file.changed pattern in ["src/*.py", "*.toml"] run build', "file.changed has no field 'pattern'",
     'write path ~ ["src/*.py", "**/*.toml"] (a file rule\'s glob is a condition on its path)'),
    ('on cron "0 3 * * *" tz "UTC+2" run build', "unknown time zone 'UTC+2'",
     'write "Etc/GMT-2" (a fixed UTC+02:00; the Etc names\' sign is POSIX\'s, the other way round), '
     'or a place\'s zone for its daylight saving time, such as "Europe/Berlin"'),
    ('on cron "0 3 * * *" tz "GMT+2" run build', "unknown time zone 'GMT+2'", 'write "Etc/GMT-2" (a fixed UTC+02:00; '
     'the Etc names\' sign is POSIX\'s, the other way round), or a place\'s zone for its daylight saving time, '
     'such as "Europe/Berlin"'),
    ('on cron "0 3 * * *" tz "-05:00" run build', "unknown time zone '-05:00'", 'write "Etc/GMT+5" (a fixed '
     'UTC-05:00; the Etc names\' sign is POSIX\'s, the other way round), or a place\'s zone for its daylight '
     'saving time, such as "Europe/Berlin"'),
    ('on cron "0 3 * * *" tz "UTC+5:30" run build', "unknown time zone 'UTC+5:30'",
     'no Etc zone has a part of an hour: name a place at UTC+05:30, such as "Asia/Kolkata"'),
    # watchexec's --stop-signal on the restart: the stop signal is the action's (README: How a run is stopped)
    ('on git.push run build busy restart signal SIGHUP', "busy restart takes no signal: the signal that stops a run "
     "is its action's", "a restart, a cancel and a timeout stop a run with its action's signal: add stop SIGHUP after "
     "action build's body (action build = exec ... stop SIGHUP) and keep busy restart; to send SIGHUP to the running "
     "run instead of restarting it: busy signal SIGHUP"),
    ('on git.push run build busy restart --stop-signal=INT', "busy restart takes no signal", "a restart, a cancel and "
     "a timeout stop a run with its action's signal: add stop SIGINT after action build's body (action build = exec "
     "... stop SIGINT) and keep busy restart; to send SIGINT to the running run instead of restarting it: busy signal "
     "SIGINT"),
    ('on git.push run build busy restart stop SIGWINCH', "busy restart takes no signal", "SIGWINCH cannot stop a run "
     "(stop takes SIGHUP, SIGINT, SIGQUIT, SIGABRT, SIGKILL, SIGUSR1, SIGUSR2, SIGALRM, SIGTERM); to send SIGWINCH to "
     "the running run instead of restarting it: busy signal SIGWINCH"),
    # a shell's positional parameter, with nothing after with, a dangling or, a path read as a regex
    ('on git.push run deploy with $1', "'$1' is a shell's positional parameter: a rule passes the event's fields by "
     "name", "pass a field of the event by its name, <FIELD>: git.push has after, author, author_email, before, "
     "branch, commits, files, forced, message, ref, repo, sha, tag"),
    ('on git.push branch=$1 run build', "'$1' is a shell's positional parameter: a rule has no parameters",
     'compare a field with a value, branch="main" (a field is written bare: git.push has after, author, '
     'author_email, before, branch, commits, files, forced, message, ref, repo, sha, tag)'),
    ('on git.push run build with', "'with' has no arguments after it", "remove it for an action without parameters "
     '(run build), or pass the arguments after it: run build with <sha>, "prod"'),
    ('on git.push run build with timeout 5m', "'with' has no arguments after it", "remove it for an action without "
     'parameters (run build), or pass the arguments after it: run build with <sha>, "prod"'),
    ('on git.push branch="main" or run build', "'or' with no condition after it",
     "remove it, or write the condition it joins after it, before run: or FIELD = VALUE"),
    ('on git.push not run build', "'not' with no condition after it",
     "remove it, or write the condition it negates after it, before run: not FIELD = VALUE"),
    ('on git.push or run build', "'or' with no condition before it", "remove it: the conditions follow the trigger, "
     "on git.push CONDITION ... run ACTION (side by side when all must hold, or joined by or)"),
    # the same at the rule's very end, with no run yet (TRG002 but for the one right after the trigger)
    ('on git.push branch="main" or', "'or' with no condition after it",
     "remove it, or write the condition it joins after it, before run: or FIELD = VALUE run ACTION"),
    ('on git.push branch="main" and not  # soon', "'not' with no condition after it",
     "remove it, or write the condition it negates after it, before run: not FIELD = VALUE run ACTION"),
    ('on git.push or', "'or' with no condition before it", "remove it: the conditions follow the trigger, "
     "on git.push CONDITION ... run ACTION (side by side when all must hold, or joined by or)"),
    ('on http.post path=/hooks/ims run build', "'path' is a string, compared with a regex: /hooks/ims reads as the "
     "regex /hooks/ with flags ims", 'a path is a string: write "/hooks/ims"'),
    ('on git.push branch=/^release-/ run build', "'branch' is a string, compared with a regex",
     "to match the regex: write branch ~ /^release-/"),
]


@pytest.mark.parametrize(("line", "message", "hint"), FIRST_RULE_CASES)
def test_a_first_rules_habit_from_another_tool_gets_the_text_to_write(line: str, message: str, hint: str) -> None:
    found = [d for d in compile_text(FIRST + line + "\n", "rules.trg").diagnostics if d.code not in UNUSED]
    assert len(found) == 1, [(d.code, d.message) for d in found]
    d = found[0]
    assert d.message.startswith(message) and d.hint == hint, (d.message, d.hint)
    written = re.search(r"(?:^|: )write (.*?)(?: \(|$)", hint)
    if written is None:
        return
    assert d.span.start.line == d.span.end.line == 6
    fixed = line[:d.span.start.column - 1] + written.group(1) + line[d.span.end.column - 1:]
    assert [x for x in diags(FIRST + fixed + "\n") if x[0] not in UNUSED] == [], fixed
    assert_the_fix_writes(d, written.group(1))


def assert_the_fix_writes(d, text: str) -> None:
    """A "write X" hint carries its fix (the editor's quick fix): one edit, X over the
    diagnostic's span."""
    assert d.fix is not None, (d.message, d.hint)
    assert [(e.span, e.text) for e in d.fix.edits] == [(d.span, text)], d.fix


@pytest.mark.parametrize("flags", ["--force", "-f -v", "--stage prod --force"])
def test_a_flag_after_the_arguments_is_offered_a_list_parameter(flags: str) -> None:
    """`run deploy with <sha> --force` got "unexpected character '-'": a flag with no value
    is text the command gets, passed in a list to a parameter flags=[] its exec passes on
    (the parser cannot know the action's parameters: the hint says to declare it)."""
    head = 'action deploy(sha, stage="dev", flags=[]) = exec "./deploy.sh" sha stage flags\n'
    line = f"on git.push run deploy with <sha> {flags}"
    got = compile_text(head + line + "\n", "rules.trg").diagnostics
    assert [(d.code, d.span.start.column, d.span.end.column) for d in got] == [("TRG001", 29, len(line) + 1)]
    assert got[0].message == f"an action's arguments follow 'with', not command-line flags: '{flags.split()[0]}'"
    written = re.match(r"write (.*?) \(to a parameter flags=\[\] its exec passes on, action deploy\(\.\.\., "
                       r"flags=\[\]\) = exec \.\.\. flags: an empty list is no argument; a flag it always takes "
                       r"goes in its exec\)$", got[0].hint)
    assert written is not None, got[0].hint
    assert_the_fix_writes(got[0], written.group(1))
    assert diags(head + line[:28] + written.group(1) + "\n") == [], written.group(1)


@pytest.mark.parametrize(("decl", "message", "hint"), [
    ('action mk = exec "make" "build" && exec "make" "test"', "exec runs no shell: '&&' is a shell's",
     'write shell "make build && make test"'),
    ('action mk(sha) = exec "./gen.sh" sha > "out file.log"', "exec runs no shell: '>' is a shell's",
     'write shell "./gen.sh \\"$TRG_INPUT_SHA\\" > \'out file.log\'"'),
    ('action mk = exec "echo" $(git rev-parse HEAD)', "exec runs no shell: '$(git rev-parse HEAD)' is a command",
     'write shell "echo $(git rev-parse HEAD)"'),
    ("action mk = ./deploy.sh", "an action's body starts with exec, shell or http", 'write exec "./deploy.sh"'),
    ("action mk = make build", "an action's body starts with exec, shell or http", 'write exec "make" "build"'),
    ('action mk = sh "make build"', "an action's body starts with exec, shell or http", 'write shell "make build"'),
    ("action mk(sha) = exec ./deploy.sh --prod sha", "exec takes strings", 'write "./deploy.sh" "--prod" sha'),
    ('action mk = exec ["make", "build"]', "exec takes strings", 'write "make" "build"'),
    ("action mk = shell ./deploy.sh --prod", "shell takes a string", 'write "./deploy.sh --prod"'),
    ('action mk(sha) = exec "./deploy.sh" ${sha}', "'${sha}' is a shell's: exec runs no shell",
     "write sha (a parameter is written bare)"),
    ('action mk: exec "make"', "an action is declared with '=', not ':'", "write ="),
    ('action mk = shell "make build" env STAGE=prod', "a value that is text goes in quotes", 'write "prod"'),
    ('action mk = exec "make" cwd="./app"', "cwd takes no '='", 'write cwd "./app"'),
    ('action mk(sha) = exec "./deploy.sh" $1', "'$1' is a shell's positional parameter",
     "write sha (parameter 1 of action mk, written bare)"),
])
def test_a_shells_or_makefiles_action_gets_the_body_to_write(decl: str, message: str, hint: str) -> None:
    """An action written as a Makefile's or a shell's command line (an operator in an exec
    body, a command without exec or its quotes, $sha for a parameter, a target's ':') got
    "unexpected" and a token list, and its rules then "unknown action". One diagnostic now,
    with the body to write; pasted over the span, the file checks clean."""
    rule = "\non git.push run mk" + (" with <sha>" if "(sha)" in decl else "") + "\n"
    got = compile_text(decl + rule, "rules.trg").diagnostics
    assert [(d.code, d.message[:len(message)]) for d in got] == [("TRG001", message)], [d.message for d in got]
    d = got[0]
    assert d.hint.split(" (a shell reads")[0] == hint, d.hint
    written = re.match(r"write (.*?)(?: \(|$)", hint).group(1)
    assert_the_fix_writes(d, written)
    fixed = decl[:d.span.start.column - 1] + written + decl[d.span.end.column - 1:]
    assert diags(fixed + rule) == [], fixed


@pytest.mark.parametrize(("decl", "code", "message", "hint"), [
    ("source file root=./src", "TRG001", "a value that is text goes in quotes", 'write "./src"'),
    ("source http path=/hooks/x token=gh", "TRG001", "a path is a string", 'write "/hooks/x"'),
    ('source github secret=env "GH"', "TRG001", "a source names a secret, declared on a line of its own",
     'declare secret github = env "GH" and write secret=github'),
    ('source git repo="."', "TRG208", "source git has no option 'repo'",
     'a repository is chosen by each rule: on git.push repo="." (the rules file\'s folder when no rule names one)'),
])
def test_a_source_option_in_another_spelling_is_one_diagnostic(decl: str, code: str, message: str, hint: str) -> None:
    """A source's option without its quotes (root=./src, path=/hooks/x: read as a regex and
    the flag x), a secret read where its name goes, git's repo= (a rule's condition): one
    diagnostic each; the routes of a source that did not parse are not also "without a
    secret" (TRG209)."""
    kind = decl.split()[1]
    rule = {"file": "on file.changed", "http": 'on http.post path="/hooks/x"', "github": "on github.push",
            "git": "on git.push"}[kind]
    text = decl + '\nsecret gh = env "GH"\naction build = exec "make"\n' + rule + " run build\n"
    got = [(d.code, d.message, d.hint) for d in compile_text(text, "rules.trg").diagnostics if d.code != "TRG106"]
    assert got == [(code, message, hint)], got
    written = re.match(r"write (.*)$", hint)
    if written is not None:
        d = compile_text(text, "rules.trg").diagnostics[0]
        assert_the_fix_writes(d, written.group(1))
        fixed = decl[:d.span.start.column - 1] + written.group(1) + decl[d.span.end.column - 1:]
        assert [x for x in diags(text.replace(decl, fixed)) if x[0] != "TRG106"] == [], fixed


def test_a_list_without_brackets_in_a_let_is_one_diagnostic() -> None:
    """`let bots = dependabot, renovate` (YAML's flow of items) got "unexpected ','" and then
    "unknown name 'bots'" on each rule using it."""
    rest = '\naction build = exec "make"\non git.push author in bots run build\n'
    assert diags("let bots = dependabot, renovate" + rest) == [
        ("TRG001", 1, 12, "a list is written in [ ]", 'write ["dependabot", "renovate"]')]
    assert_the_fix_writes(compile_text("let bots = dependabot, renovate" + rest, "rules.trg").diagnostics[0],
                          '["dependabot", "renovate"]')
    assert diags('let bots = ["dependabot", "renovate"]' + rest) == []


@pytest.mark.parametrize(("text", "message", "hint"), [
    ('secret gh = "s3cr3t"', "a secret's value is not written in the rules",
     'write env "GH" (and set GH where serve runs), or file "PATH"'),
    ("secret gh = env GITHUB_SECRET", "the variable's name is a string", 'write "GITHUB_SECRET"'),
    ("secret gh = $GITHUB_SECRET", "a secret is read from the environment or a file", 'write env "GITHUB_SECRET"'),
])
def test_a_secret_written_as_a_value_is_one_diagnostic_with_the_declaration_to_write(text: str, message: str,
                                                                                   hint: str) -> None:
    """The declaration did not parse, and the source naming the secret then got TRG103 too."""
    rest = 'source github secret=gh\naction build = exec "make"\non github.push run build\n'
    assert diags(text + "\n" + rest) == [("TRG001", 1, 13 + text[12:].index(text.split()[-1]) if "env " in text
                                           else 13, message, hint)]
    fixed = text.replace(text.split(" = ")[1], hint.split("write ")[1].split(" (")[0].split(", or")[0]) \
        if "env " not in text else text.replace("GITHUB_SECRET", '"GITHUB_SECRET"')
    assert diags(fixed + "\n" + rest) == [], fixed
    assert_the_fix_writes(compile_text(text + "\n" + rest, "rules.trg").diagnostics[0],
                          hint.split("write ")[1].split(" (")[0])


@pytest.mark.parametrize(("decl", "message", "hint"), [
    ('action mk = exec "make build"', "exec runs no shell: 'make build' is one program's name",
     'write "make" "build" (the program and each argument, a string each)'),
    ('action mk = exec "./deploy.sh --prod" "x"', "exec runs no shell: './deploy.sh --prod' is one program's name",
     'write "./deploy.sh" "--prod" (the program and each argument, a string each)'),
    ('action mk = exec "make build && ./deploy.sh"', "exec runs no shell",
     'write shell "make build && ./deploy.sh" (a shell reads its pipes and operators; its inputs are '
     '$TRG_INPUT_NAME variables)'),
    ('action mk(sha) = exec "./deploy.sh" "$sha"', "'$sha' is passed as written: exec runs no shell",
     "write sha (a parameter is written bare)"),
    ('action mk(sha) = exec "./deploy.sh" "{{ .sha }}"', "'{{ .sha }}' is passed as written",
     "write sha (a parameter is written bare)"),
    ('action mk(sha) = exec "./deploy.sh" "--sha=${sha}"', "'${sha}' is passed as written",
     "pass sha as an argument of its own, bare (a shell action reads it as $TRG_INPUT_SHA)"),
])
def test_a_string_only_a_shell_would_split_or_expand_is_warned_with_the_argv_to_write(decl: str, message: str,
                                                                                      hint: str) -> None:
    """exec passes its strings as written: "make build" is a program of that name, "$sha"
    the four characters."""
    rule = "\non git.push run mk" + (" with <sha>" if "(sha)" in decl else "") + "\n"
    got = [d for d in compile_text(decl + rule, "rules.trg").diagnostics]
    assert [(d.code, d.severity, d.message[:len(message)], d.hint) for d in got] == [
        ("TRG410", "warning", message, hint)]
    written = re.search(r"^write (.*?)(?: \(|$)", hint)
    if written is not None:
        d = got[0]
        assert_the_fix_writes(d, written.group(1))
        fixed = decl[:d.span.start.column - 1] + written.group(1) + decl[d.span.end.column - 1:]
        assert diags(fixed + rule) == [], fixed


TEMPLATE_HEAD = ('secret gh = env "GH"\nsource github secret=gh\nsource http token=gh\n'
                 'action note(a, b="") = exec "./note.sh" a b\n')


@pytest.mark.parametrize(("rule", "message", "hint"), [
    ('on github.push run note with "<sha>"', "'<sha>' is passed as written", "write <sha>"),
    ('on github.push run note with "$(body.after)"', "'$(body.after)' is passed as written", "write <payload.after>"),
    ('on github.push run note with b="{{ .Input.body.after }}", a="x"', "'{{ .Input.body.after }}' is passed",
     "write <payload.after>"),
    ('on http.post path="/x" run note with "$(header.X-Request-Id)"', "'$(header.X-Request-Id)' is passed",
     "write <headers.x-request-id>"),
    ('on github.push run note with "pushed <sha>"', "'<sha>' is passed as written",
     "pass <sha> as an argument of its own"),
])
def test_a_placeholder_or_template_inside_quotes_is_warned_with_the_field_to_write(rule: str, message: str,
                                                                                   hint: str) -> None:
    """README (Coming from Argo Events, Tekton Triggers and Jenkins): `$(body.x)` and
    `{{ .Input.body.x }}` get the placeholder to write; in quotes, and our own "<sha>" in
    quotes, checked clean and the action got those characters. Each is TRG410 now, and the
    hint pasted over the string checks clean; "<b>" and "$(date)" name no field and stay quiet."""
    got = [d for d in compile_text(TEMPLATE_HEAD + rule + "\n", "rules.trg").diagnostics if d.code not in UNUSED]
    assert [(d.code, d.severity, d.message[:len(message)], d.hint) for d in got] == [
        ("TRG410", "warning", message, hint)]
    written = re.search(r"^write (.*?)$", hint)
    if written is not None:
        d = got[0]
        assert_the_fix_writes(d, written.group(1))
        fixed = rule[:d.span.start.column - 1] + written.group(1) + rule[d.span.end.column - 1:]
        assert [x for x in diags(TEMPLATE_HEAD + fixed + "\n") if x[0] not in UNUSED] == [], fixed
    quiet = TEMPLATE_HEAD + 'on github.push run note with "<b>done</b> at $(date)", "a < b > c"\n'
    assert [x for x in diags(quiet) if x[0] not in UNUSED] == []


@pytest.mark.parametrize("decl", ['action mk = exec "/opt/My App/bin/tool"', 'action mk = exec "sh" "-c" "echo $HOME"',
                                  'action mk(sha) = shell "./deploy.sh $TRG_INPUT_SHA"',
                                  'action mk = exec "git" "commit" "-m" "a message"'])
def test_a_path_with_a_space_or_a_shells_own_variable_is_not_warned(decl: str) -> None:
    rule = "\non git.push run mk" + (" with <sha>" if "(sha)" in decl else "") + "\n"
    assert diags(decl + rule) == []


@pytest.mark.parametrize(("written", "meant"), [("envv", "env"), ("filee", "file"), ("Env", "env")])
def test_a_misspelt_env_or_file_in_a_secret_is_offered_the_word(written: str, meant: str) -> None:
    """`secret gh = envv "X"` got "unexpected 'v'" (the lexer read env, then v)."""
    rest = 'source github secret=gh\naction build = exec "make"\non github.push run build\n'
    got = compile_text(f'secret gh = {written} "GH"\n' + rest, "rules.trg").diagnostics
    assert [(d.code, d.span.start.column, d.span.end.column, d.message, d.hint) for d in got] == [
        ("TRG001", 13, 13 + len(written), f"a secret is read with env or file, not '{written}'",
         f"did you mean '{meant}'?")]
    assert [e.text for e in got[0].fix.edits] == [meant]
    assert diags(f'secret gh = {meant} "GH"\n' + rest) == []


def test_a_backslash_at_a_lines_end_is_told_to_go() -> None:
    got = diags('action build = exec "make"\non git.push branch="main" \\\n    run build\n')
    assert got == [("TRG001", 2, 27, "a line does not end with '\\' here",
                    "remove it: an indented line continues the declaration above")]


def test_a_run_line_in_column_1_is_one_diagnostic_saying_to_indent_it() -> None:
    """`on git.push` and `run build` below it, in column 1 (a YAML or shell layout), was
    "no 'run ACTION'" and then "'run' is a reserved word" on the next line."""
    text = 'action build = exec "make"\non git.push branch="main"\nrun build\n'
    assert diags(text) == [("TRG002", 2, 25, "this rule has no 'run ACTION'",
                            "its run clause, line 3, starts in column 1, so it begins a declaration of its own: "
                            "indent it to continue the rule")]
    assert diags(text.replace("\nrun", "\n    run")) == []
    # a rule that really has no run clause keeps its hint
    assert diags('action build = exec "make"\non git.push\n')[-1][4] == "end the rule with: run ACTION [with ARGS]"


@pytest.mark.parametrize(("body", "hint"), [
    ("exec make", 'write "make" (the command\'s words are strings), or declare it: action mk(make)'),
    ('exec "make" build', 'write "build" (the command\'s words are strings), or declare it: action mk(build)'),
])
def test_a_bare_word_in_an_exec_body_is_offered_its_quotes(body: str, hint: str) -> None:
    word = body.split()[-1]
    got = diags(f"action mk = {body}\non git.push run mk\n")
    assert got == [("TRG405", 1, 13 + body.rindex(word), f"'{word}' is not a parameter of action 'mk'", hint)]
    [d] = compile_text(f"action mk = {body}\non git.push run mk\n", "rules.trg").diagnostics
    assert_the_fix_writes(d, f'"{word}"')
    assert diags(f"action mk = {body.replace(word, chr(34) + word + chr(34))}\non git.push run mk\n") == []


@pytest.mark.parametrize(("text", "code", "hint"), [
    ('source http path="hooks/x" token=gh\non http.post path="/hooks/x" run build', "TRG208", 'write "/hooks/x"'),
    ('source http path=/hooks/ims token=gh\non http.post path="/hooks/ims" run build', "TRG208",
     'a path is a string: write "/hooks/ims"'),
    ('source http path="/q" token=gh query=""\non http.post path="/q" run build', "TRG208",
     'write "token" (query="token" reads ?token=...)'),
    ('source http token=gh\non http.post path="/x" headers.x-a.b="1" run build', "TRG203", "write headers.x-a"),
    ('on git.push run build dedupe <sha ~ /^.{7}/> for 5m', "TRG204", "write <sha>"),
])
def test_older_write_x_hints_carry_their_fix(text: str, code: str, hint: str) -> None:
    """Hints that say what to write, older than write_hint, now carry the fix writing it
    (the editor's quick fix); applied, the file checks clean."""
    from triggerlang.check.fixes import apply_fixes

    text = 'action build = exec "make"\n' + ('secret gh = env "GH"\n' if "=gh" in text else "") + text + "\n"
    [d] = [d for d in compile_text(text, "rules.trg").diagnostics if d.is_error]
    assert (d.code, d.hint) == (code, hint)
    written = re.search(r"(?:^|: )write (.*?)(?: \(|$)", hint).group(1)
    assert d.fix is not None and [e.text for e in d.fix.edits] == [written], d.fix
    fixed, n = apply_fixes(text, [d.fix])
    assert n == 1 and diags(fixed) == [], fixed


@pytest.mark.parametrize(("written", "meant"), [("1h30m", "90m"), ("1m30s", "90s"), ("1s500ms", "1500ms"),
                                                ("1d12h", "36h"), ("2h0m", "2h")])
def test_a_duration_of_several_units_is_offered_the_one_to_write(written: str, meant: str) -> None:
    """`timeout 1h30m` (Go's and systemd's spelling) got "unexpected '1h30m'" with the token
    list; a duration is one number and one unit, and the hint is the sum in one."""
    got = diags(f'action b = exec "make"\non every 1h run b timeout {written}\n')
    assert got == [("TRG304", 2, 27, f"invalid duration '{written}'",
                    f"a duration is one number and one unit: write {meant}")]
    assert diags(f'action b = exec "make"\non every 1h run b timeout {meant}\n') == []


def test_two_parameters_with_one_input_variable_are_an_error() -> None:
    """`action a(my-param, my_param)` or `(sha, Sha)` passed check, and the run got one
    TRG_INPUT_MY_PARAM for both (the other value lost; a shell script reads its inputs only
    there): TRG408 at the second. An http action's inputs are JSON keys, which stay apart."""
    hint = "rename one (the variable is the name upper-cased, with '-' written '_')"
    assert diags('action a(my-param, x, my_param, Sha, sha) = shell "echo"\n'
                 'r: on git.push run a with <sha>, <sha>, <sha>, <sha>, <sha>\n') == [
        ("TRG408", 1, 23, "parameters 'my-param' and 'my_param' are both TRG_INPUT_MY_PARAM in the run's "
         "environment: one would hide the other", hint),
        ("TRG408", 1, 38, "parameters 'Sha' and 'sha' are both TRG_INPUT_SHA in the run's environment: "
         "one would hide the other", hint)]
    assert codes('action e(sha, Sha) = exec "echo" sha Sha\nr: on git.push run e with <sha>, <sha>\n') == [("TRG408", 1)]
    assert diags('action h(sha, Sha) = http post "http://127.0.0.1:9/x"\nr: on git.push run h with <sha>, <sha>\n') == []


SHELL_EMPTY = "always empty: a shell action's script is run with no arguments"
SHELL_UNSET = "not set by a run: a shell action's script gets its inputs only as TRG_INPUT_ variables"


@pytest.mark.parametrize(("decl", "found", "hint"), [
    ('action d(sha) = shell "./d.sh $1"', ["'$1' is"],
     "write $TRG_INPUT_SHA (parameter 1 of action d: a script reads its inputs as variables)"),
    ('action d(sha, stage) = shell "./d.sh \'$1\' $$ ${2}"', ["'${2}' is"],
     "write ${TRG_INPUT_STAGE} (parameter 2 of action d: a script reads its inputs as variables)"),
    ('action d(sha, stage) = shell r"./d.sh $2x ${2:-dev}"', ["'$2' is", "'${2:-dev}' is"],
     "write ${TRG_INPUT_STAGE:-dev} (parameter 2 of action d: a script reads its inputs as variables)"),
    ('action d(sha, stage) = shell "./d.sh $*"', ["'$*' is"], "a script reads its inputs as variables: "
     "$TRG_INPUT_SHA $TRG_INPUT_STAGE"),
    ('action d(sha) = shell "set -eu; ./d.sh $1 $2"', ["'$1' is", "'$2' is"], "a script's inputs are its action's "
     'parameters, read as variables: declare one, action d(sha, value) = shell "... $TRG_INPUT_VALUE", and pass it '
     "from the rule: run d with <FIELD>"),
    # an escape in the string: one warning on all of it, naming each, the first's hint, no fix
    ('action d(my-sha) = shell "./d.sh \\"$@\\" \\\\$1 $1"', ["'$@' and '$1' are"],
     "for $@, write $TRG_INPUT_MY_SHA (the parameter of action d: a script reads its inputs as variables)"),
    # a parameter read by its bare name (matched exactly: $SHA, $shas are other variables)
    ('action d(sha) = shell "./d.sh $sha"', ["'$sha' is"], "write $TRG_INPUT_SHA (parameter sha of action d, as a "
     "run sets it)"),
    ('action d(sha) = shell "./d.sh $SHA $shas ${sha}x"', ["'${sha}' is"], "write ${TRG_INPUT_SHA} (parameter sha "
     "of action d, as a run sets it)"),
    ('action d(sha, stage) = shell "./d.sh --sha=$TRG_INPUT_SHA ${stage:-dev}"', ["'${stage:-dev}' is"],
     "write ${TRG_INPUT_STAGE:-dev} (parameter stage of action d, as a run sets it)"),
    ('action d(sha) = shell "echo ${#sha}"', ["'${#sha}' is"], "write ${#TRG_INPUT_SHA} (parameter sha of action "
     "d, as a run sets it)"),
    ('action d(path) = shell "cd $HOME && PATH=$PATH:bin ./d.sh $path"', ["'$path' is"],
     "write $TRG_INPUT_PATH (parameter path of action d, as a run sets it)"),
    ('action d(sha) = shell "./d.sh $1 $sha"', ["'$1' is", "'$sha' is"],
     "write $TRG_INPUT_SHA (parameter sha of action d, as a run sets it)"),
    ('action d(sha) = shell "./d.sh \\"$sha\\" $1"', ["'$1' is", "'$sha' is"],
     "for $sha, write $TRG_INPUT_SHA (parameter sha of action d, as a run sets it)"),
])
def test_a_shell_scripts_positional_parameter_is_warned_with_the_variable_to_write(decl: str, found: list,
                                                                                 hint: str) -> None:
    """`shell "./d.sh $1"` checked clean, and the script ran with $1 empty: a shell action
    is /bin/sh -c SCRIPT with no arguments. Nor is `$sha` set, for a parameter sha: a run
    sets $TRG_INPUT_SHA. TRG411 at each one the shell expands (not '$1', $$), the last
    one's hint asserted; a "write X" fix writes X over it, and the script then has one
    warning fewer. A string with an escape gets one warning on the whole string for each
    kind, naming each, with the first's hint and no fix."""
    rule = "\non git.push run d with <sha>" + (', "prod"' if "stage" in decl else "") + "\n"
    got = compile_text(decl + rule, "rules.trg").diagnostics
    whys = [SHELL_EMPTY if re.match(r"'\$\{?[0-9@*]", x) else SHELL_UNSET for x in found]
    assert [(d.code, d.severity, d.message) for d in got] == [("TRG411", "warning", f"{x} {why}")
                                                              for x, why in zip(found, whys)]
    d = got[-1]
    assert d.hint == hint
    if "\\" in decl:
        assert d.fix is None and decl[d.span.start.column - 1:d.span.end.column - 1] == decl[decl.index('"'):]
        return
    assert decl[d.span.start.column - 1:d.span.end.column - 1] == found[-1][1:-4]
    written = re.search(r"^write (.*?) \(", hint)
    if written is not None:
        assert_the_fix_writes(d, written.group(1))
        fixed = decl[:d.span.start.column - 1] + written.group(1) + decl[d.span.end.column - 1:]
        assert len(diags(fixed + rule)) == len(got) - 1, fixed


def test_what_a_shell_does_not_expand_in_a_script_is_not_warned() -> None:
    """Single quotes (awk's $1, an sh -c that gives its own arguments), \\$1, $$, $0, $#, and
    a script that sets its own positional parameters (a function, set --) are left alone."""
    rule = "\non git.push run d with <sha>\n"
    assert diags('action d(sha) = shell "awk \'{print $1}\' f; sh -c \'echo $1\' _ x; echo $$ $0 $#"' + rule) == []
    assert diags('action d(sha) = shell "echo \\\\$1 \\"\\\\$2\\""' + rule) == []
    assert diags('action d(sha) = shell "f() { ./d.sh $1; }; f $TRG_INPUT_SHA"' + rule) == []
    assert diags('action d(sha) = shell "set -- $TRG_INPUT_SHA; ./d.sh $1"' + rule) == []


@pytest.mark.parametrize("script", [
    r"""r"echo '$sha' \$sha # $sha" """,  # single quotes, an escape, a comment
    '"cat <<\'EOF\'\\n$sha\\nEOF"',  # a quoted here-document
    '"sha=$(git rev-parse HEAD); ./d.sh $sha"',
    '"read -r sha < f; ./d.sh $sha"',
    '"for sha in a b; do ./d.sh $sha; done"',
    '"f() { local sha=x; ./d.sh $sha; }; f"',
    '"export sha=x; ./d.sh ${sha}"',
    '"declare -r sha=x; ./d.sh $sha"',
    '"readonly sha; ./d.sh $sha"',
    '"while getopts ab: sha; do echo $sha; done"',
    '": ${sha:=main}; ./d.sh $sha"',
    '"./d.sh $SHA ${SHA} $shas $sha_1 $TRG_INPUT_SHA"',  # other variables
    '"./d.sh $sha" env sha="main"',  # the action's env sets it
])
def test_a_shell_script_reading_a_name_it_gives_a_value_is_not_warned(script: str) -> None:
    """$sha for a parameter sha is left alone where the shell does not expand it or the
    script (or the action's env) gives sha a value itself; $SHA is another variable."""
    assert diags(f"action d(sha) = shell {script}\non git.push run d with <sha>\n") == []


def test_a_let_read_in_a_shell_script_is_warned_with_the_parameter_to_pass() -> None:
    """A let is not expanded in a script (a run sets only TRG_INPUT_ variables): $stage
    for a let stage is empty, as $sha is for a parameter sha. The hint says how to pass
    it (no fix: the action and its rules change), and doing so checks clean."""
    rule = "\non git.push branch=stage run d with <sha>\n"
    got = compile_text('let stage = "prod"\naction d(sha) = shell "./d.sh $stage"' + rule, "rules.trg").diagnostics
    assert [(d.code, d.message, d.span.start.column, d.fix) for d in got] == [
        ("TRG411", f"'$stage' is {SHELL_UNSET}", 31, None)]
    assert got[0].hint == ('lets are not expanded in a script; pass it as a parameter: action d(sha, stage) = shell '
                           '"... $TRG_INPUT_STAGE", run d with ..., stage=stage')
    assert diags('let stage = "prod"\naction d(sha, stage) = shell "./d.sh $TRG_INPUT_STAGE"\non git.push '
                 'branch=stage run d with <sha>, stage=stage\n') == []


def test_a_template_naming_a_parameter_with_a_dash_names_its_input_variable() -> None:
    """TRG410's hint for `"x ${{ my-param }}"` named $TRG_INPUT_MY-PARAM, which no shell can
    read: the variable is TRG_INPUT_MY_PARAM (as the run gets it)."""
    _, _, _, msg, hint = only('action a(my-param) = exec "echo" "x ${{ my-param }}" my-param\n'
                               'r: on git.push run a with <sha>\n')
    assert "'${{ my-param }}' is passed as written" in msg
    assert hint == "pass my-param as an argument of its own, bare (a shell action reads it as $TRG_INPUT_MY_PARAM)"
