"""The editor's language knowledge, in process: the parse cache, completion contexts, hover,
definitions/references and symbols (tests/test_lsp.py drives the same through the server)."""

from __future__ import annotations

import dataclasses
import glob
from dataclasses import dataclass
from pathlib import Path

import pytest

from triggerlang.diagnostics import NO_SPAN, Span
from triggerlang.editor import document as D
from triggerlang.editor.complete import complete
from triggerlang.editor.hover import hover
from triggerlang.syntax import ast as A
from triggerlang.syntax.parser import ParseCache, parse

ROOT = Path(__file__).resolve().parents[1]


def _dump(v):
    """A node with its spans (AST equality ignores spans; the cache must not)."""
    if dataclasses.is_dataclass(v):
        return (type(v).__name__,) + tuple((f.name, _dump(getattr(v, f.name))) for f in dataclasses.fields(v))
    if isinstance(v, tuple):
        return tuple(_dump(x) for x in v)
    return v


EDITS = [
    lambda t: t,
    lambda t: "# a comment above\n" + t,
    lambda t: "let inserted = 1\n\n" + t,
    lambda t: t.replace("\n", "  \n", 1),                      # typing on the first line: offsets move
    lambda t: "\n".join(t.split("\n")[2:]),                     # two lines deleted
    lambda t: t.replace("on ", "on  ", 3),                      # several declarations changed
    lambda t: t + '\non git.push brnch="x" run nope\nlet = 3\n',  # errors at the end
]


@pytest.mark.parametrize("path", sorted(glob.glob(str(ROOT / "examples" / "*.trg")))
                         + sorted(glob.glob(str(ROOT / "tests" / "cases" / "*.trg")))[:40])
def test_the_parse_cache_gives_what_a_fresh_parse_gives_spans_and_diagnostics_included(path: str) -> None:
    text = Path(path).read_text("utf-8")
    cache = ParseCache()
    for edit in EDITS + EDITS:  # twice: the second round is all cache hits
        t = edit(text)
        m1, d1 = parse(t, path)
        m2, d2 = parse(t, path, cache)
        assert _dump(m1) == _dump(m2)
        assert d1.items == d2.items
    assert cache.hits > cache.misses


def test_shifted_moves_every_span_but_no_span() -> None:
    m, _ = parse('x: on git.push branch="a" run deploy with <sha> timeout 5m\n', "f")
    moved = A.shifted(m.decls[0], 3, 100)
    assert moved == m.decls[0]  # same meaning
    assert moved.span.start.line == m.decls[0].span.start.line + 3
    assert moved.args[0].value.path.span.start.offset == m.decls[0].args[0].value.path.span.start.offset + 100
    assert A.shifted(A.Name("x"), 2, 2).span is NO_SPAN


RULES = '''let bots = ["dependabot[bot]"]
let quiet = 2m
secret gh = env "GH_SECRET"
source github path="/github" secret=gh
action deploy(sha, stage="staging") = exec "./deploy.sh" sha stage
action notify = shell "true"
deploy_main: on git.push branch="main" author not in bots run deploy with <sha>, "prod" debounce quiet
pr: on github.pull_request action="opened" run notify busy signal SIGHUP
after: on run.completed rule="deploy_main" status="failed" run notify
tick: on every 15m run notify
test "a push deploys":
    given git.push branch="main" sha="abc"
    expect deploy_main with sha="abc"
'''


@pytest.fixture(scope="module")
def analysis() -> D.Analysis:
    return D.Analyzer().analyse("/tmp/rules.trg", RULES)


def _complete(analysis: D.Analysis, typed: str):
    lines = D.split_lines(RULES + typed)
    return complete(lines, len(lines) - 1, len(lines[-1]), analysis.names)


@pytest.mark.parametrize("typed,context,want,unwanted", [
    ("", "declaration", {"on", "let", "secret", "source", "action", "test"}, set()),
    ("on ", "trigger", {"git", "github", "file", "http", "ci", "run", "every", "cron"}, {"schedule"}),
    ("on git.", "event", {"push", "merge", "tag", "branch_created", "*"}, {"pull_request"}),
    ("on github.", "event", {"push", "pull_request", "workflow_run", "issue_comment"}, set()),
    ("on git.push ", "filter", {"branch", "sha", "files", "author", "run", "has", "not"}, {"payload", "number"}),
    ("on github.pull_request ", "filter", {"number", "labels", "draft", "payload", "headers"}, set()),
    ("on git.push has ", "field", {"branch", "sha"}, {"run"}),
    ("on ci.completed status=", "value", {'"success"', '"failure"', "bots", "quiet"}, set()),
    ("on github.pull_request draft=", "value", {"true", "false"}, set()),
    ("on github.issues action=", "value", {'"opened"', '"transferred"', "bots"}, {'"synchronize"', '"published"'}),
    ("on gitlab.merge_request action=", "value", {'"open"', '"merge"', '"approved"', '"unapproval"', "bots"},
     {'"opened"', '"create"'}),
    ("on gitlab.note action=", "value", {'"create"', '"update"'}, {'"open"'}),
    ("x: on run.completed rule=", "value", {'"deploy_main"', '"pr"'}, set()),
    ("on git.push run ", "action", {"deploy", "notify"}, {"with"}),
    ("on git.push run deploy ", "after action", {"with", "debounce", "busy", "retry"}, set()),
    ("on git.push run deploy with ", "argument", {"sha=", "stage=", "<sha>", "<branch>", "bots"}, {"<number>"}),
    ("on git.push run deploy with sha=<sha>, ", "argument", {"stage=", "<sha>"}, {"sha="}),
    ("on git.push run deploy with sha=", "argument value", {"<sha>", "bots"}, set()),
    ("on git.push run deploy with <sha> ", "policy", {"debounce", "busy", "timeout", "retry", "dedupe"}, set()),
    ("on git.push run deploy with <sha> busy restart ", "policy", {"debounce", "timeout"}, {"busy"}),
    ("on git.push run deploy with <sha> busy ", "policy", {"queue", "skip", "restart", "parallel", "signal"}, set()),
    ("on git.push run deploy with <sha> busy signal ", "policy", {"SIGHUP", "SIGUSR1", "SIGUSR2"},
     {"SIGKILL", "SIGSTOP", "queue"}),
    ("on git.push run deploy with <sha> dedupe ", "policy", {"<sha>", "<branch>"}, set()),
    ("on every 1h run notify timeout ", "policy", {"quiet"}, set()),
    ("on every 1h ", "filter", {"time", "scheduled", "run"}, {"branch"}),
    ('on cron "0 3 * * *" ', "filter", {"tz", "run"}, set()),
    ("source ", "source", {"github", "gitlab", "http", "file", "git"}, {"run"}),
    ("source github ", "source", {"path=", "secret="}, set()),
    ("source github secret=", "source", {"gh"}, set()),
    ("source file ", "source", {"root=", "ignore=", "gitignore=", "poll=", "meta="}, set()),
    ("source file meta=", "source", {"true", "false", "bots"}, set()),
    ("action x(a, b) = ", "action", {"exec", "shell", "http"}, set()),
    ('action x(a, b) = exec "run" ', "action", {"a", "b", "cwd", "env", "stop"}, set()),
    ('action x = shell "run" stop ', "action", {"SIGINT", "SIGTERM", "grace"}, {"SIGSTOP", "cwd"}),
    ('action x = exec "run" stop SIGINT ', "action", {"grace"}, {"SIGINT"}),
    ("action x = http ", "action", {"post"}, set()),
    ('action x = http post "http://127.0.0.1/x" secret=', "action", {"gh"}, set()),
    ("let y = ", "let", {"bots", "quiet"}, set()),
    ("secret s = ", "secret", {"env", "file"}, set()),
    ('test "t":\n    given ', "test", {"git", "github", "schedule"}, set()),
    ('test "t":\n    given github.', "test", {"push", "pull_request"}, {"*"}),
    ('test "t":\n    given git.push ', "test", {"branch", "sha", "from"}, set()),
    ('test "t":\n    given schedule.tick rule=', "test", {'"tick"', '"deploy_main"'}, set()),
    ('test "t":\n    given git.push\n    expect ', "test", {"deploy_main", "pr", "not", "only", "none"}, set()),
    ('test "t":\n    given git.push\n    expect only pr, ', "test", {"deploy_main"}, set()),
    ('test "t":\n    given git.push\n    expect deploy_main with ', "test", {"sha=", "stage="}, set()),
    ('test "t":\n    given git.push\n    ', "test", {"expect"}, {"given"}),
    # a correlation trigger (SPEC §11; not in this grammar yet): the nearest member's fields
    ("x: on all(github.workflow_run conclusion=\"success\" as b, github.check_suite ", "filter",
     {"app", "conclusion", "sha"}, set()),
])
def test_completion_in_context(analysis, typed, context, want, unwanted) -> None:
    c = _complete(analysis, typed)
    labels = {i.label for i in c.items}
    assert c.context == context, (typed, c.context)
    assert want <= labels, (typed, want - labels)
    assert not (unwanted & labels), (typed, unwanted & labels)


def test_completion_offers_the_action_of_each_recorded_webhook_payload(analysis) -> None:
    """The real payloads in shared/fixtures/webhooks: each GitHub and GitLab delivery that
    has an ``action`` (a GitLab merge request's ``open``, a GitHub pull request's
    ``labeled``...) has it offered after ``action=`` on its event."""
    import json

    from triggerlang.providers import github, gitlab

    fixtures = Path(__file__).resolve().parents[2] / "shared" / "fixtures" / "webhooks"
    seen = set()
    for provider, module in (("github", github), ("gitlab", gitlab)):
        for f in sorted((fixtures / provider).glob("*.json")):
            event = module.normalise(f.stem.split("-")[0], json.loads(f.read_text()))[0]
            action = event.data.get("action")
            if action is not None:
                c = _complete(analysis, f"on {event.trigger} action=")
                assert f'"{action}"' in {i.label for i in c.items}, (f.name, action)
                seen.add(f"{event.trigger} {action}")
    assert "gitlab.merge_request open" in seen and "github.pull_request labeled" in seen, seen


def test_completion_replaces_the_word_being_typed_and_filters_by_it(analysis) -> None:
    c = _complete(analysis, "on git.push bra")
    assert [i.label for i in c.items] == ["branch"]
    assert c.start == len("on git.push ")
    c = _complete(analysis, "on git.push run deploy with <s")
    assert [i.label for i in c.items] == ["<sha>"]
    assert c.start == len("on git.push run deploy with ")
    assert _complete(analysis, 'on git.push branch="ma').items == []   # inside a string
    assert _complete(analysis, "on git.push # run ").items == []       # inside a comment


def _hover_at(analysis: D.Analysis, needle: str, line_text: str, offset: int = 0) -> str | None:
    lines = D.split_lines(RULES)
    ln = next(i for i, line in enumerate(lines) if line_text in line)
    col = lines[ln].index(needle) + offset
    first, last = D.declaration_at(lines, ln)
    decl = D.parse_declaration(lines, first, last, "/tmp/rules.trg")
    h = hover(decl, ln, col, analysis.names)
    return h.markdown if h else None


@pytest.mark.parametrize("needle,line,expected", [
    ("branch", "deploy_main:", "**str**, field of `git.push`"),
    ("push", "deploy_main:", "a branch moved forward"),
    ("git", "deploy_main:", "source `git`"),
    ("deploy with", "deploy_main:", 'deploy(sha, stage="staging") = exec'),
    ("bots", "deploy_main:", 'let bots = ["dependabot[bot]"]'),
    ("<sha>", "deploy_main:", "`sha`: **str**"),
    ("debounce", "deploy_main:", "wait until the rule has seen no matching event"),
    ("signal", "pr:", "`signal`: `busy signal SIGHUP`: send the running run's process group SIGNAL"),
    ("quiet", "deploy_main:", "let quiet = 2m"),
    ("deploy_main", "deploy_main:", "rule `deploy_main`"),
    ("gh", "source github", "secret `gh`: read from env"),
    ("secret=", "source github", "option `secret` of source `github`"),
    ('"deploy_main"', "after:", "rule `deploy_main`"),
    ("every", "tick:", "schedule"),
    ("sha stage", "action deploy", "parameter `sha`"),
    ("deploy_main with", "expect", "rule `deploy_main`"),
    ("sha=", "expect deploy_main", "parameter `sha` of `action deploy"),
])
def test_hover(analysis, needle, line, expected) -> None:
    md = _hover_at(analysis, needle, line, 1)
    assert md is not None and expected in md, md


def test_a_secret_hover_names_the_reference_never_a_value(analysis, monkeypatch) -> None:
    monkeypatch.setenv("GH_SECRET", "s3cr3t-value")
    md = _hover_at(analysis, "gh", "source github", 1)
    assert "GH_SECRET" in md and "s3cr3t-value" not in md


def test_definitions_and_references(analysis) -> None:
    occs = D.occurrences(analysis.module, "/tmp/rules.trg", analysis.names)
    lines = D.split_lines(RULES)

    def at(line_text: str, needle: str) -> D.Occurrence:
        ln = next(i for i, line in enumerate(lines) if line_text in line)
        return D.occurrence_at(occs, "/tmp/rules.trg", ln, lines[ln].index(needle) + 1)

    def refs(o: D.Occurrence) -> list[tuple[int, bool]]:
        return sorted((x.span.start.line, x.is_def) for x in occs if D.same_symbol(x, o))

    rule = at("after:", '"deploy_main"')
    assert (rule.kind, rule.name) == ("rule", "deploy_main")
    assert refs(rule) == [(7, True), (9, False), (13, False)]  # label, run.completed rule=, expect
    assert refs(at("deploy_main:", "deploy with")) == [(5, True), (7, False)]
    assert refs(at("deploy_main:", "bots")) == [(1, True), (7, False)]
    assert refs(at("source github", "gh")) == [(3, True), (4, False)]
    assert refs(at("deploy_main:", "git")) == [(7, False), (12, False)]  # no source declaration; the test's given
    assert refs(at("pr:", "github")) == [(4, True), (8, False)]
    param = at("action deploy", "sha stage")
    assert (param.kind, param.scope) == ("param", "deploy")
    assert refs(param) == [(5, False), (5, True), (13, False)]  # declared, used in argv, `expect ... with sha=`


def test_symbols(analysis) -> None:
    syms = D.symbols(analysis.module)
    assert [(s.kind, s.name) for s in syms] == [
        ("let", "bots"), ("let", "quiet"), ("secret", "gh"), ("source", "github"), ("action", "deploy"),
        ("action", "notify"), ("rule", "deploy_main"), ("rule", "pr"), ("rule", "after"), ("rule", "tick"),
        ("test", "a push deploys")]
    assert [c.name for c in syms[4].children] == ["sha", "stage"]
    assert syms[6].detail == "on git.push run deploy"


@dataclass(frozen=True)
class _Member:  # the shape a correlation member will have (SPEC §11): a trigger and its filter
    trigger: A.EventTrigger
    filter: A.Expr | None
    span: Span = NO_SPAN


@dataclass(frozen=True)
class _AllOf:
    items: tuple
    span: Span = NO_SPAN


def test_node_kinds_the_editor_does_not_know_are_walked_not_fatal(analysis) -> None:
    """A rule whose trigger is a node type from a later grammar (correlations): symbols,
    occurrences and hover keep working, and its members' names are still found."""
    m, _ = parse('c: on github.workflow_run conclusion="success" run notify\n'
                 'd: on run.completed rule="c" run notify\n', "/tmp/c.trg")
    rule = m.decls[0]
    member = _Member(rule.trigger, rule.filter, rule.trigger.span.join(rule.filter.span))
    weird = dataclasses.replace(rule, trigger=_AllOf((member,), member.span), filter=None)
    module = A.Module((weird, m.decls[1]), "/tmp/c.trg")
    names = D.Names()
    names._add(module, "/tmp/c.trg")
    occs = D.occurrences(module, "/tmp/c.trg", names)
    assert ("source", "github") in {(o.kind, o.name) for o in occs}
    assert [s.detail for s in D.symbols(module)][0] == "on ... run notify"
    h = hover(weird, 0, rule.filter.span.start.column, names)  # on `conclusion`, inside the member
    assert h is not None and "field of `github.workflow_run`" in h.markdown
    assert D.trigger_context([("", weird)]) == ("github", "workflow_run")


def test_a_refused_rename_names_the_input_variable_the_script_reads() -> None:
    """Renaming a shell action's parameter is refused, naming the variable its script reads:
    for `my-param` that was TRG_INPUT_MY-PARAM, which no shell can read; the run gets
    TRG_INPUT_MY_PARAM (the name upper-cased, `-` written `_`)."""
    text = 'action a(my-param) = shell "echo $TRG_INPUT_MY_PARAM"\nr: on git.push run a with <sha>\n'
    module, _ = parse(text, "/tmp/r.trg")
    names = D.Names()
    names._add(module, "/tmp/r.trg")
    occs = D.occurrences(module, "/tmp/r.trg", names)
    at = D.occurrence_at(occs, "/tmp/r.trg", 0, text.index("my-param") + 1)
    assert (at.kind, at.name) == ("param", "my-param")
    why = D.rename(occs, at, "other", names, lambda uri: text)
    assert why == ("`my-param` is a parameter of a shell action, which sees it as TRG_INPUT_MY_PARAM: "
                   "rename it by hand, with the shell that reads it")
