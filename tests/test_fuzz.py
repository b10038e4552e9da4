"""Fuzzing the front end: ``check``, ``compile``, ``fmt`` and ``match`` never raise (issue 5).

Whatever text a rules file holds, the answer is diagnostics, never a traceback. The inputs:

- **token soup**: hypothesis draws sequences from the language's own vocabulary (reserved
  words, contextual keywords, operators, brackets, literals of every kind, valid and broken,
  triggers, fields, newlines and continuation indents) mixed with arbitrary unicode, so
  the parser sees text that is *almost* a program far more often than random bytes would;
- **mutations** of every real rules file (``examples/*.trg`` and the diagnostic cases in
  ``tests/cases``): characters and whole lines deleted, duplicated, swapped or inserted;
- **raw bytes** (invalid UTF-8, NULs, a BOM, CR line ends) through the CLI;
- **hostile events** for ``match``: every JSON type in every field a rule reads (a number
  where a glob expects a path, a dict in a list of labels, ``null`` everywhere).

Properties checked on every input:

- :func:`compile_text` returns; every diagnostic has a code, a severity, a message and a
  1-based position inside the text; a file without errors has a manifest that
  serialises to the same bytes twice;
- ``format_text`` either formats (then ``parse(fmt(x)) == parse(x)``, no new errors, and
  formatting again changes nothing) or returns no text with at least one error;
- the CLI (``check`` in every output format, ``compile``, ``fmt --check``, ``match``) exits
  0 or 1 (2 only for a usage error such as a missing file), and no output holds a
  traceback.

Example counts are tuned so the file runs in well under a minute on two cores; the
``HYPOTHESIS_PROFILE=fuzz-long`` profile runs a hundred times more for a soak (give it
``-p no:timeout``: the suite's 120 s per-test limit would cut it short).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings, strategies as st

from triggerlang.api import compile_text
from triggerlang.cli import main as cli
from triggerlang.compile.manifest import dumps
from triggerlang.compile.index import build_matcher
from triggerlang.dryrun import DryRun
from triggerlang.events import Event
from triggerlang.fmt import by_name, format_text
from triggerlang.syntax.parser import parse

ROOT = Path(__file__).resolve().parents[1]
CORPUS: list[tuple[str, str]] = sorted(
    (p.name, p.read_text(encoding="utf-8"))
    for p in [*ROOT.glob("examples/*.trg"), *ROOT.glob("tests/cases/*.trg")]
)
assert len(CORPUS) >= 6, "the examples are the seed corpus"

# Random inputs on a developer's machine (a new seed each run, and hypothesis' example
# database replays what failed before); fixed ones under CI=true, so a CI run cannot fail
# on an input nobody has seen: what a local run or the fuzz-long soak finds becomes a
# regression test with its minimal input.
settings.register_profile(
    "fuzz", deadline=None, derandomize=os.environ.get("CI") == "true", print_blob=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much],
)
settings.register_profile("fuzz-long", parent=settings.get_profile("fuzz"), max_examples=20_000)
FUZZ = settings.get_profile(os.environ.get("HYPOTHESIS_PROFILE", "fuzz"))


def n(examples: int) -> settings:
    """Settings for one test: ``examples`` cases by default, more under fuzz-long."""
    if os.environ.get("HYPOTHESIS_PROFILE") == "fuzz-long":
        return settings(FUZZ, max_examples=examples * 100)
    return settings(FUZZ, max_examples=examples)


# --------------------------------------------------------------------------- strategies

VOCAB = [
    # reserved words and contextual keywords
    "on", "run", "with", "and", "or", "not", "in", "has", "true", "false", "let", "secret", "source",
    "action", "exec", "shell", "http", "post", "every", "cron", "tz", "debounce", "busy", "timeout",
    "retry", "backoff", "dedupe", "for", "env", "file", "cwd", "test", "given", "expect", "only",
    "none", "from", "queue", "skip", "restart", "parallel",
    # operators and punctuation
    "=", "!=", "~", "!~", "<", "<=", ">", ">=", "(", ")", "[", "]", ",", ".", ":", "*", "-", "<", ">",
    # triggers, fields, placeholders
    "git.push", "git.tag", "file.changed", "file.created", "github.push", "github.pull_request",
    "github.*", "gitlab.pipeline", "http.post", "http.request", "ci.completed", "schedule.tick",
    "run.failed", "run.completed", "nosuch.event", "branch", "brnch", "sha", "path", "paths", "files",
    "labels", "commits", "status", "payload.x.y", "headers.x-token", "query.q", "<sha>", "<paths>",
    "<payload.a.b>", "<nosuch>", "<", "a", "deploy", "x_1", "my-name", "L3",
    # literals, valid and broken
    '"main"', '"src/**/*.py"', '"[z-a]"', '"[[x]"', '"**"', '"0 3 * * 1-5"', '"61 * * * *"',
    '"Europe/Paris"', '"Mars/Olympus"', '"\\u{1F600}"', '"\\u{110000}"', '"\\u{D800}"', '"\\q"', '"\\"', '"', 'r"raw\\d"',
    "/^v\\d+/", "/[/", "/a/x", "/(?P<x>)/i", "0", "1", "-2.5", "3.", "99999999999999999999", "250ms",
    "5m", "1d", "0s", "2x", '["a", "b",]', "[1, [2]]", "[]",
    # layout
    "\n", "\n    ", "\n\t", "  ", "#comment", "\\", "\r", "\r\n", "\ufeff", "\x00", "\u00e9", "\u202e",
]

TOKEN = st.one_of(
    st.sampled_from(VOCAB),
    st.text(min_size=1, max_size=3),  # any unicode, surrogates and controls included
)
SEP = st.sampled_from([" ", " ", " ", "", "\n", "\n    ", "\t"])


@st.composite
def token_soup(draw: st.DrawFn) -> str:
    items = draw(st.lists(st.tuples(TOKEN, SEP), max_size=60))
    return "".join(t + s for t, s in items)


@st.composite
def mutated(draw: st.DrawFn) -> str:
    """One corpus file with a few character- and line-level mutations."""
    _, text = draw(st.sampled_from(CORPUS))
    for _ in range(draw(st.integers(1, 6))):
        if draw(st.booleans()):
            lines = text.split("\n")
            i = draw(st.integers(0, len(lines) - 1))
            op = draw(st.sampled_from(["delete", "duplicate", "swap", "insert", "indent", "dedent"]))
            if op == "delete":
                del lines[i]
            elif op == "duplicate":
                lines.insert(i, lines[i])
            elif op == "swap":
                j = draw(st.integers(0, len(lines) - 1))
                lines[i], lines[j] = lines[j], lines[i]
            elif op == "insert":
                lines.insert(i, draw(token_soup()))
            elif op == "indent":
                lines[i] = "    " + lines[i]
            else:
                lines[i] = lines[i].lstrip()
            text = "\n".join(lines)
        else:
            i = draw(st.integers(0, len(text)))
            op = draw(st.sampled_from(["delete", "duplicate", "swap", "insert"]))
            if op == "delete" and text:
                k = draw(st.integers(1, 8))
                text = text[:i] + text[i + k:]
            elif op == "duplicate" and text:
                k = draw(st.integers(1, 20))
                text = text[:i] + text[i:i + k] + text[i:]
            elif op == "swap" and len(text) > 1:
                j = draw(st.integers(0, len(text) - 1))
                a, b = sorted((min(i, len(text) - 1), j))
                chars = list(text)
                chars[a], chars[b] = chars[b], chars[a]
                text = "".join(chars)
            else:
                text = text[:i] + draw(st.one_of(TOKEN, st.sampled_from('"/()[]<>#=,.\\\n'))) + text[i:]
    return text


ANY_TEXT = st.one_of(token_soup(), mutated(), st.text(max_size=200))

JSON_LEAF = st.one_of(st.none(), st.booleans(), st.integers(-2**70, 2**70),
                      st.floats(allow_nan=False, allow_infinity=False), st.text(max_size=20),
                      st.sampled_from(["main", "src/app.py", "docs/x.md", "v1.2.3", "success", "deploy-preview",
                                       "a" * 300, "../../etc/passwd", "$(touch x)", "\x00", "\udc80"]))
JSON = st.recursive(JSON_LEAF, lambda kids: st.lists(kids, max_size=4) | st.dictionaries(st.text(max_size=8), kids, max_size=4),
                    max_leaves=12)
FIELDS = ["branch", "sha", "tag", "author", "files", "paths", "path", "name", "ext", "labels", "commits", "status",
          "action", "number", "draft", "merged", "forced", "conclusion", "pipeline", "method", "headers", "query",
          "payload", "text", "rule", "exit_code", "duration", "inputs", "scheduled", "time", "url", "base", "head"]
TRIGGERS = [("git", "push"), ("git", "tag"), ("git", "merge"), ("file", "created"), ("file", "changed"),
            ("file", "modified"), ("github", "push"), ("github", "pull_request"), ("github", "workflow_run"),
            ("gitlab", "pipeline"), ("gitlab", "tag_push"), ("gitlab", "merge_request"), ("ci", "completed"),
            ("http", "post"), ("http", "get"), ("http", "request"), ("run", "failed"), ("run", "completed"),
            ("schedule", "tick"), ("nosuch", "thing")]


@st.composite
def events(draw: st.DrawFn) -> Event:
    src, typ = draw(st.sampled_from(TRIGGERS))
    data = draw(st.dictionaries(st.sampled_from(FIELDS), JSON, max_size=8))
    return Event(src, typ, data)


# A rules file that reads every field type with every operator: the matcher must survive
# a number where a glob expects a path, a dict among labels, null anywhere.
MATCH_RULES = """\
let bots = ["dependabot[bot]", "renovate[bot]"]
let tagre = /^v\\d+\\.\\d+/
secret gh = env "FUZZ_GH"
source github path="/github" secret=gh
source ci path="/ci" token=gh
source gitlab path="/gitlab" token=gh
source http path="/hooks/*" token=gh
action a(x="", y="") = exec "echo" x y
action s(x="") = shell "echo \\"$TRG_INPUT_X\\""
r1: on git.push branch="main" author not in bots files ~ ["src/**", "*.md"] commits > 2 run a with <sha>, <files>
r2: on git.push branch ~ /^rel/i or (not forced=true and has message) run a with <message>
r3: on git.tag tag ~ tagre run a with x=<tag>
r4: on file.changed path ~ "src/**/*.py" ext in ["py", "pyi"] run a with <paths> debounce 100ms
r5: on github.pull_request action in ["labeled", "opened"] labels="deploy-preview" draft=false run a with <number>
r6: on github.push payload.repository.name ~ "h*" has payload.head_commit.id run s with <payload.pusher.name>
r7: on github.workflow_run conclusion != "success" run a with <workflow>, <branch>
r8: on gitlab.pipeline status="success" branch="main" run a with <sha>
r9: on ci.completed status in ["failure", "cancelled"] branch !~ "wip/*" run s with <url>
r10: on http.post path ~ "/hooks/*" headers.x-kind="build" query.q != "x" payload.a.b >= 3 run a with <payload.a>, <text>
r11: on http.request path="/hooks/any" method in ["GET", "PUT"] run a with <remote>
r12: on run.failed rule="r1" exit_code > 0 duration < 10s run s with <inputs>
r13: on every 5m run a busy skip
r14: on github.* payload.x.0 = 1 or payload.x = [1] run a with <payload.x.0>
"""


@pytest.fixture(scope="module")
def dry() -> DryRun:
    c = compile_text(MATCH_RULES, "match.trg", "/tmp")
    assert c.ok, [d.message for d in c.diagnostics if d.is_error]
    return DryRun(c.manifest, build_matcher(c.manifest["rules"]))


# --------------------------------------------------------------------------- library properties

def check_diagnostics(text: str, c) -> None:
    nlines = text.count("\n") + text.count("\r") + 2
    for d in c.diagnostics:
        assert d.code.startswith("TRG") and d.severity in ("error", "warning", "info"), d
        assert isinstance(d.message, str) and d.message.strip(), d
        assert 1 <= d.span.start.line <= nlines and d.span.start.column >= 1, d


def front_end(text: str) -> None:
    c = compile_text(text, "fuzz.trg", "/tmp")
    check_diagnostics(text, c)
    if c.ok:
        assert c.manifest is not None
        once = dumps(c.manifest)
        assert json.loads(once)["triggerlang"] == 1
        assert dumps(compile_text(text, "fuzz.trg", "/tmp").manifest) == once  # deterministic
        build_matcher(c.manifest["rules"])
    else:
        assert c.manifest is None


def formatter(text: str) -> None:
    new, diags = format_text(text, "fuzz.trg")
    if new is None:
        assert diags.has_errors
        return
    before, _ = parse(text.lstrip("\ufeff").replace("\r\n", "\n").replace("\r", "\n"), "fuzz.trg")
    after, after_diags = parse(new, "fuzz.trg")
    assert not after_diags.has_errors, (text, new, [d.message for d in after_diags.sorted()])
    assert by_name(after) == by_name(before), (text, new)
    again, _ = format_text(new, "fuzz.trg")
    assert again == new, (new, again)


@n(400)
@given(token_soup())
def test_token_soup_gives_diagnostics_not_exceptions(text: str) -> None:
    front_end(text)


@n(400)
@given(mutated())
def test_mutated_examples_give_diagnostics_not_exceptions(text: str) -> None:
    front_end(text)


@n(200)
@given(st.text(max_size=300))
def test_arbitrary_unicode_gives_diagnostics_not_exceptions(text: str) -> None:
    front_end(text)


@n(300)
@given(ANY_TEXT)
def test_fmt_formats_or_reports_and_never_changes_meaning(text: str) -> None:
    formatter(text)


@pytest.mark.parametrize("name,text", CORPUS, ids=[c[0] for c in CORPUS])
def test_every_corpus_file_survives_the_whole_front_end(name: str, text: str) -> None:
    front_end(text)
    formatter(text)


@n(300)
@given(st.lists(events(), min_size=1, max_size=3), st.booleans())
def test_match_with_hostile_events_never_raises(dry: DryRun, evs: list[Event], explain: bool) -> None:
    result = dry.run(evs, explain)
    json.dumps(result, default=str)  # what `match --format json` prints
    dry.text(result, batch=False)
    dry.text(result, batch=True)


# --------------------------------------------------------------------------- the CLI

NO_CACHE = {"TRIGGERLANG_CACHE_DIR": "off"}  # keep thousands of fuzzed files out of ~/.cache


def no_traceback(result, allowed=(0, 1)) -> None:
    # CliRunner turns an escaped exception into exit code 1 and keeps it in .exception
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    assert result.exit_code in allowed, (result.exit_code, result.output)
    assert "Traceback" not in result.output, result.output


@pytest.fixture(scope="module")
def work(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("fuzz-cli")


RAW = st.one_of(
    ANY_TEXT.map(lambda t: t.encode("utf-8", "surrogatepass")),
    st.binary(max_size=200),
    mutated().map(lambda t: b"\xef\xbb\xbf" + t.replace("\n", "\r\n").encode("utf-8", "surrogatepass")),
)


@n(120)
@given(RAW, st.sampled_from(["text", "json", "github", "sarif"]), st.booleans())
def test_cli_check_exits_0_or_1_without_traceback(work: Path, sarif_validator, data: bytes, fmt: str,
                                                   strict: bool) -> None:
    f = work / "rules.trg"
    f.write_bytes(data)
    args = ["check", str(f), "--format", fmt] + (["--strict"] if strict else [])
    result = CliRunner().invoke(cli, args)
    no_traceback(result)
    if fmt == "json":
        assert isinstance(json.loads(result.stdout), list)
    if fmt == "sarif":
        sarif_validator.validate(json.loads(result.stdout))  # the OASIS 2.1.0 schema (tests/conftest.py)


@n(80)
@given(RAW)
def test_cli_compile_match_and_fmt_exit_0_or_1_without_traceback(work: Path, data: bytes) -> None:
    f = work / "rules.trg"
    f.write_bytes(data)
    result = CliRunner().invoke(cli, ["compile", str(f), "-o", str(work / "manifest.json")])
    no_traceback(result)
    if result.exit_code == 0:
        assert json.loads((work / "manifest.json").read_text())["triggerlang"] == 1
    result = CliRunner().invoke(cli, ["fmt", "--check", str(f)])
    no_traceback(result)
    event = ROOT / "examples" / "events" / "push-main.json"
    for extra in ([], ["--format", "json", "--explain"]):  # match compiles the rules too (and caches them)
        no_traceback(CliRunner().invoke(cli, ["match", str(f), str(event), *extra], env=NO_CACHE))
    result = CliRunner().invoke(cli, ["fmt", str(f)])
    no_traceback(result)
    if result.exit_code == 0:  # formatted in place: formatting again is a no-op
        no_traceback(CliRunner().invoke(cli, ["fmt", "--check", str(f)]), allowed=(0,))


EVENT_DOC = st.one_of(
    events().map(lambda e: json.dumps({"source": e.source, "type": e.type, "data": e.data})),
    JSON.map(json.dumps),
    st.text(max_size=80),
    st.just('{"source": "git", "type": "push", "data": []}'),
    st.just('{"source": "git", "type": "push", "data": {"branch": NaN}}'),
)


@n(100)
@given(st.lists(EVENT_DOC, min_size=1, max_size=4), st.sampled_from(["text", "json"]), st.booleans(),
       st.sampled_from([None, ("--github", "push"), ("--github", "workflow_run"), ("--gitlab", "pipeline"),
                        ("--github", "no such event")]))
def test_cli_match_with_random_events_exits_0_or_1_without_traceback(work: Path, docs: list[str], fmt: str,
                                                                   explain: bool, provider) -> None:
    rules = work / "match.trg"
    rules.write_text(MATCH_RULES, encoding="utf-8")
    extra = ["--format", fmt] + (["--explain"] if explain else []) + (list(provider) if provider else [])
    single = work / "event.json"
    single.write_text(docs[0], encoding="utf-8", errors="surrogatepass")
    no_traceback(CliRunner().invoke(cli, ["match", str(rules), str(single), *extra]))
    batch = work / "events.jsonl"
    batch.write_text("\n".join(d.replace("\n", " ") for d in docs), encoding="utf-8", errors="surrogatepass")
    result = CliRunner().invoke(cli, ["match", str(rules), str(batch), *extra])
    no_traceback(result)
    if fmt == "json":  # one result (or error) object per non-blank line
        lines = [ln for ln in result.stdout.splitlines() if ln.strip()]
        assert all(isinstance(json.loads(ln), dict) for ln in lines)
    result = CliRunner().invoke(cli, ["match", str(rules), "-", *extra], input=docs[-1])
    no_traceback(result)


def test_cli_on_invalid_utf8_and_nul_bytes_reports_trg004(work: Path) -> None:
    f = work / "bad.trg"
    f.write_bytes(b'on git.push branch="m\xffain" run x\n\x00\n')
    result = CliRunner().invoke(cli, ["check", str(f), "--format", "json"])
    no_traceback(result, allowed=(1,))
    assert [d["code"] for d in json.loads(result.stdout)] == ["TRG004"]
    for args in (["compile", str(f)], ["fmt", "--check", str(f)], ["match", str(f), "-"]):
        no_traceback(CliRunner().invoke(cli, args, input="{}"), allowed=(1,))


def test_real_process_prints_no_python_warning_or_traceback(tmp_path: Path) -> None:
    """A real ``triggerc`` process on patterns that make ``re`` warn (nested sets in a class)."""
    import subprocess
    import sys

    f = tmp_path / "warn.trg"
    f.write_text('action a = exec "true"\non file.changed path ~ "src/[[x]/**" path ~ /[[a]&&b/ run a\n')
    p = subprocess.run([sys.executable, "-m", "triggerlang.cli", "check", str(f)],
                       capture_output=True, text=True, timeout=60)
    assert p.returncode in (0, 1)
    assert "Traceback" not in p.stderr and "Warning" not in p.stderr, p.stderr


@pytest.mark.parametrize("locale", ["C.UTF-8", "C"])
def test_real_process_prints_lone_surrogates_from_event_json(tmp_path: Path, locale: str) -> None:
    """``"\\ud800"`` is valid JSON for a character UTF-8 cannot encode: match, text and json."""
    import subprocess
    import sys

    rules = tmp_path / "m.trg"
    rules.write_text('action a(x="") = exec "echo" x\nr: on git.push run a with <branch>\n')
    event = tmp_path / "e.json"
    event.write_text('{"source": "git", "type": "push", "data": {"branch": "a\\ud800b\\udc80"}}')
    env = {**os.environ, "LC_ALL": locale, "PYTHONIOENCODING": ""}
    for fmt in ("text", "json"):
        p = subprocess.run([sys.executable, "-m", "triggerlang.cli", "match", str(rules), str(event), "--format", fmt],
                           capture_output=True, env=env, timeout=60)
        assert p.returncode == 0 and b"Traceback" not in p.stderr, p.stderr.decode(errors="replace")
        p.stdout.decode("utf-8")  # the output itself is valid UTF-8
        if fmt == "json":
            assert json.loads(p.stdout)["matches"][0]["inputs"]["x"] == "a\ud800b\udc80"


@pytest.mark.parametrize("extra", [[], ["--format", "json"], ["--explain"], ["-", "--jsonl"]])
def test_a_jsonl_line_that_is_not_utf8_is_that_line_s_error(tmp_path: Path, extra: list[str]) -> None:
    """A ``.jsonl`` with a byte that is not UTF-8 on line 2 said ``events.jsonl:1: not UTF-8
    text`` and nothing else: the strict decoder failed on the whole buffered chunk, so the
    line named was the chunk's first and the good lines went unanswered (on stdin the bad
    line was read as lone surrogates instead). Each line is answered now, the bad one with
    its own number."""
    rules = tmp_path / "r.trg"
    rules.write_text('action a(x="") = exec "echo" x\nr: on git.push branch="main" run a with <sha>\n')
    good = b'{"source": "git", "type": "push", "data": {"branch": "main", "sha": "abc"}}\n'
    data = good + b'{"source": "git", "type": "push", "data": {"branch": "ma\xffin"}}\n' + good
    events = tmp_path / "events.jsonl"
    events.write_bytes(data)
    args = ["match", str(rules), *(extra if extra[:1] == ["-"] else [str(events), *extra])]
    result = CliRunner().invoke(cli, args, input=data, env=NO_CACHE)
    no_traceback(result, allowed=(1,))
    lines = result.stdout.splitlines()
    where = "<stdin>" if extra[:1] == ["-"] else str(events)
    errors = [ln for ln in lines if ln.startswith('{"error"')]
    assert errors == [json.dumps({"error": f"{where}:2: not UTF-8 text"})], lines
    assert sum(ln.startswith(("r", '{"matches":[{"rule":"r"', "r:")) for ln in lines) == 2, lines


@pytest.mark.parametrize(("decl", "code", "says"), [
    ('include "common\\u{0}.trg"', "TRG005", "holds a NUL character"),
    ('include "rules.d/\\u{0}*.trg"', "TRG005", "holds a NUL character"),
    ('test "t":\n    given github.push from "push\\u{0}.json"\n    expect none', "TRG602", "holds a NUL character"),
])
def test_a_nul_character_in_a_path_is_a_diagnostic_not_a_traceback(tmp_path: Path, decl: str, code: str,
                                                                   says: str) -> None:
    """Found by fuzzing: a NUL (``\\u{0}``, or the byte itself) in an ``include`` path or a
    test's ``from`` payload path reached os.path.realpath or open, whose ValueError came out
    of ``check`` as a traceback; and in a ``secret ... = file`` path, of serve's start."""
    from triggerlang.runtime.engine import StartError, resolve_secrets

    text = f'action a = exec "true"\nr: on github.push run a\n{decl}\n'
    for t in (text, text.replace("\\u{0}", "\x00")):
        c = compile_text(t, "rules.trg", str(tmp_path))
        assert [(d.code, says in d.message) for d in c.diagnostics if d.is_error] == [(code, True)], c.diagnostics
    with pytest.raises(StartError, match="secret s: cannot read .*holds no NUL character"):
        resolve_secrets({"secrets": {"s": {"file": "gh\0"}}}, tmp_path, {})


def test_two_byte_order_marks_are_read_as_fmt_reads_them(tmp_path: Path) -> None:
    """Found by fuzzing (fmt's output must re-check with the same diagnostics): a file an
    editor saved with two BOMs was TRG001 "unexpected character '\\ufeff'" at 1:1 for
    check, while fmt removed both and formatted it. The parser now reads the text after
    every leading BOM, so check, fmt and --fix agree, with columns counted after them."""
    body = 'action a = exec "true"\non git.pushh run a\n'
    plain = [(d.code, d.span.start.line, d.span.start.column) for d in compile_text(body, "r.trg").diagnostics]
    assert plain == [("TRG202", 2, 8)]
    for marks in ("\ufeff", "\ufeff\ufeff", "\ufeff\ufeff\ufeff"):
        c = compile_text(marks + body, "r.trg")
        assert [(d.code, d.span.start.line, d.span.start.column) for d in c.diagnostics] == plain, marks
        new, _ = format_text(marks + body, "r.trg")
        assert new == body
        f = tmp_path / "r.trg"
        f.write_text(marks + 'action a = exec "true"  # noqa: TRG105\non git.pushh run a\n', encoding="utf-8")
        result = CliRunner().invoke(cli, ["check", "--fix", "--unsafe-fixes", str(f)], env=NO_CACHE)
        no_traceback(result, allowed=(0, 1))
        assert f.read_text(encoding="utf-8") == marks + 'action a = exec "true"\non git.push run a\n', marks


def _diagnostic_kinds(text: str) -> list[tuple[str, str, str]]:
    """``(code, severity, message)`` of each diagnostic, with the line numbers a message
    names left out (fmt moves lines, and a rule without a label is named by its line)."""
    import re

    def plain(m: str) -> str:
        return re.sub(r"\bL\d+\b", "L#", re.sub(r"\d+:\d+", "N:N", re.sub(r"lines? \d+", "line N", m)))
    return sorted((d.code, d.severity, plain(d.message)) for d in compile_text(text, "fuzz.trg", "/tmp").diagnostics)


@settings(FUZZ, max_examples=40, derandomize=True)
@given(mutated())
def test_fmt_output_checks_with_the_same_diagnostics(text: str) -> None:
    """What fmt writes, check says the same of (the property that found the two-BOM file
    check refused and fmt formatted); seeded, so the same 40 inputs every run."""
    new, _ = format_text(text, "fuzz.trg")
    if new is not None:
        assert _diagnostic_kinds(new) == _diagnostic_kinds(text), (text, new)
