"""The TextMate grammar (editors/vscode/syntaxes) and the VS Code extension folder.

Editors run TextMate grammars with Oniguruma; we have no Oniguruma here, so the grammar is
written in the subset both Oniguruma and Python's ``re`` read the same way (no possessive
quantifiers, no ``\\h``/``\\G``/``\\A``-style anchors, no variable-width lookbehind, no
named-group syntax of Oniguruma's own), and this test (1) refuses constructs outside that
subset, (2) compiles every regex with ``re``, and (3) colours a sample with a small
TextMate-style tokenizer (at each position the earliest match wins, ties go to the first
pattern; ``begin``/``end`` rules open a region with their own patterns) and checks the scope
of each interesting word.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
GRAMMAR = ROOT / "editors" / "vscode" / "syntaxes" / "triggerlang.tmLanguage.json"
ONIG_ONLY = [r"\h", r"\H", r"\G", r"\K", r"\R", r"\X", r"\O", r"(?<name>", r"*+", r"++", r"?+", r"(?~", r"\p{"]


def _grammar() -> dict:
    return json.loads(GRAMMAR.read_text("utf-8"))


def _regexes(node, out=None):
    out = [] if out is None else out
    if isinstance(node, dict):
        for k in ("match", "begin", "end"):
            if k in node:
                out.append(node[k])
        for v in node.values():
            _regexes(v, out)
    elif isinstance(node, list):
        for v in node:
            _regexes(v, out)
    return out


def test_every_regex_is_in_the_common_subset_and_compiles() -> None:
    rx = _regexes(_grammar())
    assert len(rx) > 15
    for r in rx:
        for bad in ONIG_ONLY:
            assert bad not in r, f"{r!r} uses {bad}, which Python's re reads differently from Oniguruma"
        re.compile(r)


class _Tokenizer:
    """Enough of TextMate's algorithm for a grammar of match rules and begin/end regions."""

    def __init__(self, grammar: dict):
        self.repo = grammar["repository"]
        self.top = self._flatten(grammar["patterns"])

    def _flatten(self, patterns: list) -> list[dict]:
        out = []
        for p in patterns:
            if "include" in p:
                out.extend(self._flatten([self.repo[p["include"][1:]]]))
            elif "patterns" in p and "match" not in p and "begin" not in p:
                out.extend(self._flatten(p["patterns"]))
            else:
                out.append(p)
        return out

    def _region_end(self, p: dict, text: str, pos: int) -> int:
        """Where a begin/end region closes: an inner pattern that matches before the end
        pattern (an escaped quote) is skipped over first."""
        inner = [re.compile(q["match"]) for q in self._flatten(p.get("patterns", []))]
        end_rx = re.compile(p["end"])
        while pos <= len(text):
            end = end_rx.search(text, pos)
            first = min((m for m in (rx.search(text, pos) for rx in inner) if m), key=lambda m: m.start(), default=None)
            if first is not None and (end is None or first.start() < end.start()):
                pos = first.end()
                continue
            return end.end() if end else len(text)
        return len(text)

    def line(self, text: str) -> list[tuple[str, str]]:
        """``(text, scope)`` of each coloured piece of one line."""
        out: list[tuple[str, str]] = []
        pos = 0
        while pos < len(text):
            best = None
            for p in self.top:
                m = re.compile(p.get("match") or p["begin"]).search(text, pos)
                if m and (best is None or m.start() < best[1].start()):
                    best = (p, m)
            if best is None or best[1].end() == best[1].start():
                break
            p, m = best
            if "begin" in p:
                stop = self._region_end(p, text, m.end())
                out.append((text[m.start():stop], p["name"]))
                pos = stop
                continue
            if "captures" in p:
                for i, cap in sorted(p["captures"].items(), key=lambda kv: int(kv[0])):
                    if m.group(int(i)) is not None:
                        out.append((m.group(int(i)), cap["name"]))
            else:
                out.append((m.group(), p["name"]))
            pos = m.end()
        return out


SAMPLE = r'''# deploy on every push to main
let bots = ["dependabot[bot]", "renovate[bot]"]
secret gh = env "GITHUB_WEBHOOK_SECRET"
source github path="/hooks/github" secret=gh
action deploy(sha, stage="staging") = exec "./deploy.sh" "--sha" sha env TOKEN_NAME="x" stop SIGINT grace 30s
deploy_main: on git.push branch="main" author not in bots message !~ /^wip\//i run deploy with <sha>, "prod" timeout 10m retry 2 backoff 30s
pr: on github.pull_request payload.on=true env="x" labels ~ r"deploy\d" run deploy with <pull_request.head.sha> busy restart
nightly: on cron "30 2 * * *" tz "Europe/Paris" catch up run deploy with sha="n\u{41}\"q" debounce 1.5s
reload: on file.modified path ~ "conf/**" run deploy busy signal SIGHUP
gate: on all(github.workflow_run conclusion="success" as build, ci.completed status="success" as ci) same <sha> within 2h run deploy with <sha>
test "a push deploys":
    given git.push branch="main" sha="abc" commits=3
    expect deploy_main with sha="abc"
'''


def _scopes() -> dict[str, set[str]]:
    tok = _Tokenizer(_grammar())
    seen: dict[str, set[str]] = {}
    for line in SAMPLE.splitlines():
        for text, scope in tok.line(line):
            seen.setdefault(text, set()).add(scope)
    return seen


@pytest.mark.parametrize("text,scope", [
    ("# deploy on every push to main", "comment.line.number-sign.triggerlang"),
    ('"main"', "string.quoted.double.triggerlang"),
    ('"n\\u{41}\\"q"', "string.quoted.double.triggerlang"),
    ('r"deploy\\d"', "string.quoted.raw.triggerlang"),
    ("/^wip\\//i", "string.regexp.triggerlang"),
    ("10m", "constant.numeric.duration.triggerlang"),
    ("1.5s", "constant.numeric.duration.triggerlang"),
    ("2", "constant.numeric.triggerlang"),
    ("3", "constant.numeric.triggerlang"),
    ("true", "constant.language.boolean.triggerlang"),
    ("let", "storage.type.declaration.triggerlang"),
    ("bots", "variable.other.constant.triggerlang"),
    ("action", "storage.type.declaration.triggerlang"),
    ("deploy_main", "entity.name.tag.label.triggerlang"),
    ("on", "keyword.control.triggerlang"),
    ("git", "support.class.source.triggerlang"),
    ("push", "support.function.event.triggerlang"),
    ("pull_request", "support.function.event.triggerlang"),
    ("workflow_run", "support.function.event.triggerlang"),
    ("completed", "support.function.event.triggerlang"),
    ("not", "keyword.control.triggerlang"),
    ("in", "keyword.control.triggerlang"),
    ("with", "keyword.control.triggerlang"),
    ("run", "keyword.control.triggerlang"),
    ("<sha>", "variable.parameter.placeholder.triggerlang"),
    ("<pull_request.head.sha>", "variable.parameter.placeholder.triggerlang"),
    ("timeout", "keyword.other.triggerlang"),
    ("busy", "keyword.other.triggerlang"),
    ("signal", "keyword.other.triggerlang"),
    ("SIGHUP", "constant.other.signal.triggerlang"),
    ("tz", "keyword.other.triggerlang"),
    ("catch", "keyword.other.triggerlang"),
    ("stop", "keyword.other.triggerlang"),
    ("grace", "keyword.other.triggerlang"),
    ("30s", "constant.numeric.duration.triggerlang"),
    ("up", "keyword.other.triggerlang"),
    ("all", "keyword.other.triggerlang"),
    ("same", "keyword.other.triggerlang"),
    ("within", "keyword.other.triggerlang"),
    ("given", "keyword.control.triggerlang"),
    ("expect", "keyword.other.triggerlang"),
    ("!~", "keyword.operator.triggerlang"),
])
def test_the_sample_is_coloured(text: str, scope: str) -> None:
    seen = _scopes()
    assert scope in seen.get(text, set()), f"{text!r}: {seen.get(text)}"


def test_context_keywords_and_fields_are_not_keywords_where_they_are_names() -> None:
    tok = _Tokenizer(_grammar())
    line = dict((t, s) for t, s in reversed(tok.line(
        'pr: on github.pull_request payload.on=true env="x" run deploy')))
    assert line["on"] == "keyword.control.triggerlang"  # the first `on` (reversed: the first wins)
    pieces = tok.line('pr: on github.pull_request payload.on=true env="x" run deploy')
    assert ("on", "variable.other.member.triggerlang") in pieces  # payload.on: after a dot, a field
    assert not any(t == "env" and s == "keyword.other.triggerlang" for t, s in pieces)  # env="x": a field


def test_the_vscode_extension_names_the_grammar_and_starts_the_server() -> None:
    ext = ROOT / "editors" / "vscode"
    pkg = json.loads((ext / "package.json").read_text("utf-8"))
    grammar = pkg["contributes"]["grammars"][0]
    assert (ext / grammar["path"]).resolve() == GRAMMAR
    assert grammar["scopeName"] == _grammar()["scopeName"]
    assert pkg["contributes"]["languages"][0]["extensions"] == [".trg"]
    json.loads((ext / "language-configuration.json").read_text("utf-8"))
    assert '"lsp"' in (ext / "package.json").read_text() and "LanguageClient" in (ext / "extension.js").read_text()
