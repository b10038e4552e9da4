"""The parse tables (syntax/tables.py) and their driver parse exactly as Lark does.

The parser runs the grammar's LALR tables, shipped as ``grammar/triggerlang.tables.json``,
with a driver of its own, and hands a declaration to Lark only when the tables reject it
(to report the error as Lark does). These tests hold the two to each other: the same
declarations accepted, the same tree with the same spans, the same diagnostics, on every
rules file in the repository and on fuzzed text.
"""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from triggerlang.diagnostics import Diagnostics
from triggerlang.syntax import parser as P
from triggerlang.syntax import tables as T

ROOT = Path(__file__).resolve().parents[1]
FILES = sorted({*ROOT.glob("examples/*.trg"), *ROOT.glob("tests/**/*.trg")})


def dump(v):
    """A node with its spans (node equality leaves spans out)."""
    if dataclasses.is_dataclass(v):
        return (type(v).__name__,) + tuple((f.name, dump(getattr(v, f.name))) for f in dataclasses.fields(v))
    if isinstance(v, tuple):
        return tuple(dump(x) for x in v)
    return v


def lark_only(text: str, file: str = "<input>"):
    """``parse`` with every declaration read by Lark (the reference)."""
    saved = P._machine
    P._machine = lambda: None
    try:
        return P.parse(text, file)
    finally:
        P._machine = saved


def agree(text: str) -> None:
    fast, fast_diags = P.parse(text, "f.trg")
    slow, slow_diags = lark_only(text, "f.trg")
    assert dump(fast) == dump(slow)
    assert fast_diags.items == slow_diags.items


def test_the_shipped_tables_are_the_grammars() -> None:
    """Edited grammar/triggerlang.lark? Run ``python -m triggerlang.syntax.tables``."""
    assert T.main(["--check"]) == 0
    assert P._machine() is not None


@pytest.mark.parametrize("path", FILES, ids=lambda p: str(p.relative_to(ROOT)))
def test_tables_and_lark_agree_on_every_rules_file(path: Path) -> None:
    agree(path.read_text(encoding="utf-8"))


def test_tables_and_lark_agree_on_a_large_generated_file() -> None:
    lines = ['action deploy(sha) = exec "./deploy.sh" sha', 'action build(path) = exec "./build.sh" path',
             'action notify = shell "true"']
    for i in range(300):
        lines.append([f'b{i}: on git.push branch="team{i % 7}/f-{i}" author != "bot" run deploy with <sha>',
                      f'g{i}: on file.changed path ~ "svc{i}/src/**/*.py" run build with <path> debounce 1s',
                      f'h{i}: on http.post path="/hooks/d" (payload.service="svc{i}" or not has payload.x) run notify',
                      f'c{i}: on all(github.push as p, ci.completed status="success" as c,) same <sha> within 1h '
                      f'run deploy with <p.sha>'][i % 4])
    agree("\n".join(lines) + "\n")


# --------------------------------------------------------------------------- fuzzed declarations

WORDS = ["on", "run", "with", "and", "or", "not", "in", "has", "true", "false", "let", "secret", "source",
         "action", "exec", "shell", "http", "post", "every", "cron", "tz", "debounce", "busy", "timeout", "retry",
         "backoff", "dedupe", "for", "env", "file", "cwd", "test", "given", "expect", "only", "none", "from",
         "all", "any", "seq", "of", "absent", "after", "same", "within", "between", "as", "key", "max", "wait",
         "at", "open", "expired", "missing", "=", "!=", "~", "!~", "<", "<=", ">", ">=", "(", ")", "[", "]", ",",
         ".", ":", "*", "git.push", "file.changed", "github.pull_request", "http.post", "run.failed", "branch",
         "payload.x.y", "headers.x-token", "<sha>", "<p.sha>", "<", "a", "deploy", "x_1", "my-name", "0", "1",
         "-2.5", "3.", "250ms", "5m", "2x", '"main"', '"src/**"', '"\\q"', '"\\u{1F600}"', '"', 'r"raw\\d"',
         "/^v\\d+/i", "/[/", "#c", "\n", "\n  ", "\t", "é", "1of", "r", "r\"x\""]
SEP = st.sampled_from([" ", " ", "", "\n ", "\n"])


@st.composite
def declaration(draw: st.DrawFn) -> str:
    head = draw(st.sampled_from(["on ", "x: on ", "let ", "action ", "source ", "secret ", 'test "t": ', ""]))
    items = draw(st.lists(st.tuples(st.one_of(st.sampled_from(WORDS), st.text(min_size=1, max_size=2)), SEP),
                          max_size=25))
    return head + "".join(t + s for t, s in items)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(declaration())
def test_tables_accept_exactly_what_lark_accepts(text: str) -> None:
    """Per declaration: the tables accept it exactly when Lark does, and then build the same
    node, spans included, with the same diagnostics (an invalid escape, a reserved name)."""
    from lark.exceptions import UnexpectedInput

    machine = P._machine()
    fast_diags = Diagnostics("f.trg")
    try:
        fast = machine.run(text, 0, len(text), 1, 0, P._Builder(0, 0, fast_diags))
        accepted = True
    except P._Fallback:
        accepted = False
    try:
        tree = P.lark_parser().parse(text)
    except UnexpectedInput:
        assert not accepted, "the tables accepted a declaration Lark rejects"
        return
    assert accepted, "the tables rejected a declaration Lark accepts"
    slow_diags = Diagnostics("f.trg")
    slow = P._lark_build(tree, P._Builder(0, 0, slow_diags))
    assert dump(fast) == dump(slow)
    assert fast_diags.items == slow_diags.items


# --------------------------------------------------------------------------- Lark only when needed

def test_a_file_without_syntax_errors_does_not_load_lark(tmp_path: Path) -> None:
    good = 'action d(sha) = exec "./d.sh" sha\non git.push branch="main" run d with <sha>\n'
    bad = good + 'on git.push branch= run d\n'
    code = ("import json, sys; from triggerlang.api import compile_text; c = compile_text(sys.argv[1]); "
            "print(json.dumps(['lark' in sys.modules, [(d.code, d.span.start.line) for d in c.diagnostics]]))")
    seen = [json.loads(subprocess.run([sys.executable, "-c", code, text], capture_output=True, text=True,
                                      check=True).stdout) for text in (good, bad)]
    assert seen == [[False, []], [True, [["TRG001", 3]]]]


def test_tables_made_from_another_grammar_are_not_used(monkeypatch) -> None:
    """A grammar edited without regenerating the tables: they are made from it at start-up."""
    text = (ROOT / "examples" / "deploy.trg").read_text()
    expected = dump(P.parse(text)[0])
    grammar = T.read_grammar()
    assert T.load_shipped(grammar + "\n// edited") is None
    monkeypatch.setattr(T, "load_shipped", lambda g: None)
    P._machine.cache_clear()
    try:
        assert P._machine() is not None
        assert dump(P.parse(text)[0]) == expected
    finally:
        monkeypatch.undo()
        P._machine.cache_clear()


def test_making_the_tables_twice_gives_the_same_file() -> None:
    """States are numbered from the start state in a fixed order, so the same grammar gives
    the same file: Lark's own numbering changes with the process's hash seed."""
    import os

    code = "from triggerlang.syntax import tables as T; g = T.read_grammar(); print(T.dumps(T.build(T.make_lark(g), g)))"
    made = {subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                           env={**os.environ, "PYTHONHASHSEED": seed}).stdout for seed in ("1", "2", "3")}
    assert len(made) == 1


def test_lark_parser_is_kept_in_the_private_cache_and_only_ours_is_loaded(tmp_path: Path, monkeypatch) -> None:
    """The slow path's Lark parser is saved once (a pickle) and loaded after; a file that
    this user's triggerc did not write (no valid MAC) is never unpickled."""
    cache = tmp_path / "cache"
    marker = tmp_path / "pwned"
    monkeypatch.setenv("TRIGGERLANG_CACHE_DIR", str(cache))
    P.lark_parser.cache_clear()
    try:
        P.lark_parser().parse("let a = 1")
        [saved] = cache.glob("lark-*.pickle")
        assert oct(saved.stat().st_mode & 0o777) == "0o600"
        P.lark_parser.cache_clear()
        P.lark_parser().parse("let a = 1")                       # loaded, verified
        head, _ = saved.read_bytes().split(b"\n", 1)
        evil = b"cbuiltins\nexec\n(S'open(%r, \"w\").write(\"x\")'\ntR." % str(marker).encode()
        saved.write_bytes(head + b"\n" + evil)                    # someone else's pickle, our header
        P.lark_parser.cache_clear()
        assert P.lark_parser().parse("let a = 1")
        assert not marker.exists()
        assert saved.read_bytes() != head + b"\n" + evil           # made again and saved over it
    finally:
        P.lark_parser.cache_clear()
