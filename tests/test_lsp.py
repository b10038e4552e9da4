"""``triggerc lsp`` as an editor runs it: a real server process over stdio, driven by a small
JSON-RPC client (tests/lsp_client.py). Diagnostics are compared with ``triggerc check
--format json`` on the same text, for every diagnostic code."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from lsp_client import LspClient, LspError, edit, pos, uri

ROOT = Path(__file__).resolve().parents[1]
CASES = ROOT / "tests" / "cases"


@pytest.fixture
def client(tmp_path: Path):
    c = LspClient(cwd=tmp_path, init_options={"debounce_ms": 50})
    yield c
    assert c.close() == 0, c.stderr
    assert "Traceback" not in c.stderr, c.stderr


def _check_json(paths: list[Path]) -> dict[str, list[dict]]:
    """``triggerc check --format json`` on files of one folder, in one run (one start-up, not
    one per file: check's diagnostics of a file do not depend on the others given with it);
    each file's diagnostics by its name."""
    r = subprocess.run([sys.executable, "-m", "triggerlang.cli", "check", "--format", "json", *(p.name for p in paths)],
                       capture_output=True, text=True, timeout=60, cwd=paths[0].parent)
    found: dict[str, list[dict]] = {p.name: [] for p in paths}
    for d in json.loads(r.stdout):
        found[d["file"]].append(d)
    return found


def _as_check(d: dict) -> tuple:
    """An LSP diagnostic as check's json fields (columns 1-based; message, then the hint)."""
    r = d["range"]
    message, _, hint = d["message"].partition("\n")
    return (r["start"]["line"] + 1, r["start"]["character"] + 1, r["end"]["line"] + 1, r["end"]["character"] + 1,
            {1: "error", 2: "warning"}[d["severity"]], d["code"], message, hint or None)


def _check_tuple(d: dict) -> tuple:
    return (d["line"], d["column"], d["end_line"], d["end_column"], d["severity"], d["code"], d["message"], d["hint"])


def test_diagnostics_for_every_code_are_checks_own(client: LspClient, tmp_path: Path) -> None:
    """Every case file (one per diagnostic code), and all of them in one document."""
    shutil.copytree(CASES, tmp_path / "cases")
    files = sorted((tmp_path / "cases").glob("*.trg"))
    everything = tmp_path / "cases" / "everything.trg"
    everything.write_text("\n".join(f.read_text("utf-8") for f in files), "utf-8")
    codes = set()
    checked = _check_json([*files, everything])
    for f in [*files, everything]:
        u = client.open(f)
        got = sorted(_as_check(d) for d in client.wait_diagnostics(u))
        want = sorted(_check_tuple(d) for d in checked[f.name])
        assert got == want, f.name
        assert all(d["source"] == "triggerc" for d in client.diagnostics(u)[-1]["diagnostics"])
        codes |= {g[5] for g in got}
    assert len(codes) >= 40, codes  # every code of the catalogue of diagnostics (TRG001 ... TRG603)


def test_a_change_is_rechecked_incrementally_and_edits_within_the_debounce_are_checked_once(tmp_path: Path) -> None:
    client = LspClient(cwd=tmp_path, init_options={"debounce_ms": 1500})
    try:
        p = tmp_path / "rules.trg"
        p.write_text('action deploy(sha) = exec "./d.sh" sha\non git.push branch="main" run deploy with <sha>\n')
        u = client.open(p)
        assert client.wait_diagnostics(u) == []
        client.change(u, 2, [edit(1, 12, 1, 18, "brnch")])            # a typo
        client.change(u, 3, [edit(1, 42, 1, 45, "sah")])              # and another, before the debounce ends
        diags = client.wait_diagnostics(u, version=3)
        assert [(d["code"], d["range"]["start"]["character"]) for d in diags] == [("TRG203", 12), ("TRG403", 41)]
        assert [pub["version"] for pub in client.diagnostics(u)] == [1, 3]  # version 2 was never checked alone
        client.change(u, 4, [edit(1, 42, 1, 45, "sha"), edit(1, 12, 1, 17, "branch")])
        assert client.wait_diagnostics(u, version=4) == []
    finally:
        assert client.close() == 0


def test_a_test_file_sees_its_companion_and_is_rechecked_when_it_changes(client: LspClient, tmp_path: Path) -> None:
    main = tmp_path / "deploy.trg"
    main.write_text('action deploy(sha) = exec "./d.sh" sha\ngo: on git.push branch="main" run deploy with <sha>\n')
    tests = tmp_path / "deploy_test.trg"
    tests.write_text('test "push":\n    given git.push branch="main" sha="a"\n    expect go with sha="a"\n')
    tu = client.open(tests)
    assert client.wait_diagnostics(tu) == []  # `go` and `deploy` come from deploy.trg, on disk
    mu = client.open(main)
    client.wait_diagnostics(mu)
    client.change(mu, 2, [edit(1, 0, 1, 2, "goo")])  # rename the rule in the open companion
    diags = client.wait_for(lambda: next((p["diagnostics"] for p in client.diagnostics(tu) if p["diagnostics"]), None),
                            what="the test file re-checked")
    assert [d["code"] for d in diags] == ["TRG601"] and "did you mean 'goo'" in diags[0]["message"]


def test_hover_completion_definition_references_symbols(client: LspClient, tmp_path: Path) -> None:
    main = tmp_path / "deploy.trg"
    main.write_text('let bots = ["bot"]\n'
                    'action deploy(sha, stage="staging") = exec "./d.sh" sha stage\n'
                    'go: on git.push branch="main" author not in bots run deploy with <sha>\n'
                    'after: on run.completed rule="go" run deploy with "x"\n')
    (tmp_path / "deploy_test.trg").write_text('test "push":\n    given git.push branch="main" sha="a"\n'
                                              '    expect go with sha="a"\n')
    u = client.open(main)
    client.wait_diagnostics(u)
    doc = {"uri": u}
    h = client.request("textDocument/hover", {"textDocument": doc, "position": pos(2, 17)})
    assert "**str**, field of `git.push`" in h["contents"]["value"]
    h = client.request("textDocument/hover", {"textDocument": doc, "position": pos(2, 56)})
    assert 'deploy(sha, stage="staging")' in h["contents"]["value"]
    assert client.request("textDocument/hover", {"textDocument": doc, "position": pos(0, 0)}) is None

    items = client.request("textDocument/completion", {"textDocument": doc, "position": pos(2, 16)})["items"]
    labels = [i["label"] for i in items]
    assert "branch" in labels and "sha" in labels and "run" in labels
    assert all(i["textEdit"]["range"]["start"] == pos(2, 16) for i in items)
    # a GitHub or GitLab event's documented `action` values, the event's own (a webhook's differ per event)
    client.change(u, 2, [edit(4, 0, 4, 0, "on github.pull_request action=\non github.release action=\n"
                                          "on gitlab.merge_request action=\n")])
    for at, want in ((pos(4, 30), ['"opened"', '"synchronize"', '"reopened"', '"closed"']), (pos(5, 25), ['"published"']),
                     (pos(6, 31), ['"open"', '"update"', '"merge"', '"close"'])):
        items = client.request("textDocument/completion", {"textDocument": doc, "position": at})["items"]
        labels = [i["label"] for i in sorted(items, key=lambda i: i["sortText"])]
        assert labels[:len(want)] == want and "bots" in labels, labels
    assert '"synchronize"' not in labels
    client.change(u, 3, [edit(4, 0, 7, 0, "")])

    defs = client.request("textDocument/definition", {"textDocument": doc, "position": pos(3, 31)})
    assert defs == [{"uri": u, "range": {"start": pos(2, 0), "end": pos(2, 2)}}]  # rule="go" -> the label
    refs = client.request("textDocument/references", {"textDocument": doc, "position": pos(2, 1),
                                                      "context": {"includeDeclaration": True}})
    where = sorted((Path(r["uri"]).name, r["range"]["start"]["line"]) for r in refs)
    assert where == [("deploy.trg", 2), ("deploy.trg", 3), ("deploy_test.trg", 2)]  # tests and run.* filters
    refs = client.request("textDocument/references", {"textDocument": doc, "position": pos(2, 53),
                                                      "context": {"includeDeclaration": False}})
    assert sorted(r["range"]["start"]["line"] for r in refs) == [2, 3]

    tu = client.open(tmp_path / "deploy_test.trg")
    client.wait_diagnostics(tu)
    defs = client.request("textDocument/definition", {"textDocument": {"uri": tu}, "position": pos(2, 12)})
    assert defs == [{"uri": u, "range": {"start": pos(2, 0), "end": pos(2, 2)}}]  # into the companion

    syms = client.request("textDocument/documentSymbol", {"textDocument": doc})
    assert [(s["name"], s["kind"]) for s in syms] == [("bots", 14), ("deploy", 12), ("go", 24), ("after", 24)]
    assert [c["name"] for c in syms[1]["children"]] == ["sha", "stage"]


def _apply(text: str, edits: list[dict]) -> str:
    """A WorkspaceEdit's TextEdits for one document, applied as an editor does (ASCII text:
    UTF-16 units are characters)."""
    lines = text.split("\n")
    for e in sorted(edits, key=lambda e: (e["range"]["start"]["line"], e["range"]["start"]["character"]),
                    reverse=True):
        (sl, sc), (el, ec) = ((e["range"][k]["line"], e["range"][k]["character"]) for k in ("start", "end"))
        assert sl == el
        lines[sl] = lines[sl][:sc] + e["newText"] + lines[sl][ec:]
    return "\n".join(lines)


def test_rename_changes_every_use_in_the_file_and_its_companion_or_says_why_not(client: LspClient,
                                                                                tmp_path: Path) -> None:
    main = tmp_path / "deploy.trg"
    text = ('let bots = ["bot"]\n'
            'secret gh = env "GH_SECRET"\n'
            'source github path="/gh" secret=gh\n'
            'action deploy(sha, stage="staging") = exec "./d.sh" sha stage\n'
            'action note(text) = shell "echo $TRG_INPUT_TEXT"\n'
            'go: on git.push branch="main" author not in bots run deploy with sha=<sha>\n'
            'after: on run.completed rule="go" run note with "done"\n')
    main.write_text(text)
    tests = tmp_path / "deploy_test.trg"
    tests.write_text('test "push":\n    given git.push branch="main" sha="a"\n    expect go with sha="a"\n')
    assert client.capabilities.get("renameProvider")
    u = client.open(main)
    client.wait_diagnostics(u)
    doc = {"uri": u}

    def rename(line: int, col: int, new: str) -> dict:
        return client.request("textDocument/rename", {"textDocument": doc, "position": pos(line, col), "newName": new})

    marks = client.request("textDocument/documentHighlight", {"textDocument": doc, "position": pos(6, 31)})
    assert [(m["range"]["start"]["line"], m["range"]["start"]["character"], m["kind"]) for m in marks] == \
        [(5, 0, 3), (6, 30, 2)]  # this file's only (the test file's use is not highlighted here); 3 write, 2 read
    assert client.request("textDocument/documentHighlight", {"textDocument": doc, "position": pos(5, 20)}) is None
    assert client.request("textDocument/prepareRename", {"textDocument": doc, "position": pos(6, 31)}) == \
        {"start": pos(6, 30), "end": pos(6, 32)}  # inside rule="go": the name, without the quotes
    changes = rename(5, 1, "ship")["changes"]  # the rule label: its uses in run.* filters and in tests
    assert sorted(changes) == sorted([u, uri(tests)])
    renamed, renamed_tests = _apply(text, changes[u]), _apply(tests.read_text(), changes[uri(tests)])
    assert "ship: on git.push" in renamed and 'rule="ship"' in renamed and "expect ship with" in renamed_tests
    main.write_text(renamed)
    client.change(u, 2, [{"text": renamed}])  # the editor applies the edit to the open document
    tests.write_text(renamed_tests)           # and saves the other file (not open: read from disk again)
    r = subprocess.run([sys.executable, "-m", "triggerlang.cli", "check", str(main), str(tests)],
                       capture_output=True, text=True)
    assert r.returncode == 0 and "0 errors, 1 warning" in r.stderr, r.stdout + r.stderr  # (TRG108: no github rule)

    changes = rename(3, 15, "commit")["changes"]  # an exec action's parameter: argv, `with sha=`, the test's
    assert sorted((e["range"]["start"]["line"], e["range"]["start"]["character"]) for e in changes[u]) == \
        [(3, 14), (3, 52), (5, 67)]
    assert [(e["range"]["start"]["line"], e["range"]["start"]["character"]) for e in changes[uri(tests)]] == [(2, 21)]
    assert len(rename(0, 5, "robots")["changes"][u]) == 2  # a let: its declaration and the filter's use

    for (line, col, new), why in [((0, 5, "gh"), "already declared"), ((3, 8, "note"), "already declared"),
                                  ((0, 5, "on"), "not a valid name"), ((0, 5, "9lives"), "not a valid name"),
                                  ((4, 13, "body"), "shell action"), ((5, 10, "x"), "source of the catalogue")]:
        with pytest.raises(LspError) as err:
            rename(line, col, new)
        assert err.value.code == -32803 and why in err.value.message, (new, err.value.message)
    with pytest.raises(LspError) as err:
        client.request("textDocument/prepareRename", {"textDocument": doc, "position": pos(5, 10)})
    assert err.value.code == -32803 and "catalogue" in err.value.message
    assert client.request("textDocument/prepareRename", {"textDocument": doc, "position": pos(5, 20)}) is None


def quick_fixes(client: LspClient, uri: str, diags: list[dict], only: list[str] | None = None) -> list[dict]:
    """The code actions the server offers for ``diags`` (at the first one's range; ``only``
    those kinds, as the request's ``context.only``)."""
    return client.request("textDocument/codeAction", {"textDocument": {"uri": uri}, "range": diags[0]["range"],
                                                      "context": {"diagnostics": diags,
                                                                  **({"only": only} if only else {})}})


def test_formatting_and_quick_fixes(client: LspClient, tmp_path: Path) -> None:
    p = tmp_path / "rules.trg"
    p.write_text('action deploy(sha) = exec "./d.sh" sha\non   git.push   brnch = "main" run deploy with <sha>\n')
    u = client.open(p)
    diags = client.wait_diagnostics(u)
    assert [d["code"] for d in diags] == ["TRG203"]
    actions = quick_fixes(client, u, diags)
    assert [a["title"] for a in actions] == ["Replace `brnch` with `branch`"]
    assert actions[0]["edit"]["changes"][u] == [{"range": {"start": pos(1, 16), "end": pos(1, 21)},
                                                 "newText": "branch"}]
    edits = client.request("textDocument/formatting", {"textDocument": {"uri": u},
                                                       "options": {"tabSize": 4, "insertSpaces": True}})
    assert len(edits) == 1 and edits[0]["newText"].splitlines()[1] == 'on git.push brnch="main" run deploy with <sha>'
    client.change(u, 2, [edit(1, 0, 1, 0, "((( ")])
    client.wait_diagnostics(u, version=2)
    assert client.request("textDocument/formatting", {"textDocument": {"uri": u},
                                                      "options": {"tabSize": 4, "insertSpaces": True}}) is None

    # a keyword typo is a syntax error (TRG001) with a quick fix too; fix-all leaves a file
    # with a syntax error as it is, as check --fix does
    client.change(u, 3, [edit(1, 0, 1, 4, ""), edit(0, 0, 0, 6, "actoin")])
    diags = client.wait_diagnostics(u, version=3)
    syntax = [d for d in diags if d["code"] == "TRG001"]
    assert len(syntax) == 1  # (and what the unparsed declaration leaves undefined)
    [a] = quick_fixes(client, u, syntax)
    assert a["edit"]["changes"][u] == [{"range": {"start": pos(0, 0), "end": pos(0, 6)}, "newText": "action"}]
    assert quick_fixes(client, u, diags, only=["source.fixAll"]) == []


def test_a_first_rules_write_hint_is_a_quick_fix(client: LspClient, tmp_path: Path) -> None:
    # a first rule in GitHub Actions' spelling is a syntax error whose hint says what to
    # write: the quick fix writes it over the span (unsafe: not preferred), and check is clean
    p = tmp_path / "rules.trg"
    p.write_text('action build = exec "make"\non git.push branch: main run build\n')
    u = client.open(p)
    diags = client.wait_diagnostics(u)
    assert [(d["code"], d["message"]) for d in diags] == [("TRG001", "a condition is FIELD = VALUE, not 'key: value'\nwrite branch=\"main\"")]
    [a] = quick_fixes(client, u, diags)
    assert a["kind"] == "quickfix" and a["title"] == 'Write `branch="main"`' and not a.get("isPreferred")
    assert a["edit"]["changes"][u] == [{"range": {"start": pos(1, 12), "end": pos(1, 24)}, "newText": 'branch="main"'}]
    client.change(u, 2, [edit(1, 12, 1, 24, 'branch="main"')])
    assert client.wait_diagnostics(u, version=2) == []


def test_a_github_glob_gets_its_regex_as_a_quick_fix(client: LspClient, tmp_path: Path) -> None:
    # TRG306: a tag filter copied from an on: block ('+' is literal in a glob); the quick fix
    # writes the regex of GitHub's meaning in place of the string, and check is then clean
    p = tmp_path / "rules.trg"
    p.write_text('action release(tag) = exec "./r.sh" tag\n'
                 'on git.tag tag ~ "v[0-9]+.[0-9]+" run release with <tag>\n')
    u = client.open(p)
    diags = client.wait_diagnostics(u)
    assert [d["code"] for d in diags] == ["TRG306"]
    actions = quick_fixes(client, u, diags)
    assert [a["title"] for a in actions] == ["Replace the glob with the regex `/^v[0-9]+\\.[0-9]+$/`"]
    [e] = actions[0]["edit"]["changes"][u]
    assert e["range"] == {"start": pos(1, 17), "end": pos(1, 33)}  # the string, quotes included
    client.change(u, 2, [edit(1, 17, 1, 33, e["newText"])])
    assert client.wait_diagnostics(u, version=2) == []
    # in a list, the string is one of several: no quick fix replaces the list
    p2 = tmp_path / "list.trg"
    p2.write_text('action release(tag) = exec "./r.sh" tag\n'
                  'on git.tag tag ~ ["v[0-9]+", "x"] run release with <tag>\n')
    u2 = client.open(p2)
    diags = client.wait_diagnostics(u2)
    assert [d["code"] for d in diags] == ["TRG306"]
    assert quick_fixes(client, u2, diags) == []


def test_a_wildcard_in_an_exact_comparison_gets_the_glob_match_as_a_quick_fix(client: LspClient,
                                                                             tmp_path: Path) -> None:
    # TRG307: branch="release/*" compares exactly; the quick fix writes the condition with ~,
    # and for not in, not ... ~ [...]; check is then clean
    p = tmp_path / "rules.trg"
    p.write_text('action build(sha) = exec "./b.sh" sha\n'
                 'on git.push branch="release/*" files not in ["docs/**", "*.md"] run build with <sha>\n')
    u = client.open(p)
    diags = client.wait_diagnostics(u)
    assert [d["code"] for d in diags] == ["TRG307", "TRG307"]
    fixes = []
    for d in diags:
        [a] = quick_fixes(client, u, [d])
        [e] = a["edit"]["changes"][u]
        fixes.append((e["range"], e["newText"]))
    assert fixes == [({"start": pos(1, 12), "end": pos(1, 30)}, 'branch ~ "release/*"'),
                     ({"start": pos(1, 31), "end": pos(1, 63)}, 'not files ~ ["docs/**", "*.md"]')]
    (r2, t2), (r1, t1) = fixes[1], fixes[0]  # the later edit first, so the earlier range still holds
    client.change(u, 2, [edit(r2["start"]["line"], r2["start"]["character"], r2["end"]["line"],
                              r2["end"]["character"], t2)])
    client.change(u, 3, [edit(r1["start"]["line"], r1["start"]["character"], r1["end"]["line"],
                              r1["end"]["character"], t1)])
    assert client.wait_diagnostics(u, version=3) == []


def test_fix_all_applies_every_safe_fix(client: LspClient, tmp_path: Path) -> None:
    # source.fixAll.triggerc (asked for on save): the safe fixes, until stable, as one edit;
    # the unsafe TRG307 stays; a quick-fix request without 'only' does not get it
    p = tmp_path / "rules.trg"
    p.write_text('action deploy(sha) = exec "./d.sh" sha\n'
                 'on git.psh brnch="main" run deploy with <sha> busy skp\n'
                 'on git.push branch="a/*" run deploy with <sha>\n')
    u = client.open(p)
    diags = client.wait_diagnostics(u)
    assert [d["code"] for d in diags] == ["TRG202", "TRG407", "TRG307"]
    assert [a["kind"] for a in quick_fixes(client, u, diags)] == ["quickfix"] * 3
    [a] = quick_fixes(client, u, diags, only=["source.fixAll"])
    assert a["kind"] == "source.fixAll.triggerc"
    [e] = a["edit"]["changes"][u]
    assert e["newText"] == ('action deploy(sha) = exec "./d.sh" sha\n'
                            'on git.push branch="main" run deploy with <sha> busy skip\n'
                            'on git.push branch="a/*" run deploy with <sha>\n')


def test_a_noqa_comment_leaves_the_warning_out_of_the_editor(client: LspClient, tmp_path: Path) -> None:
    p = tmp_path / "rules.trg"
    p.write_text('action build(sha) = exec "./b.sh" sha\n'
                 'on git.push branch="a/*" run build with <sha>  # noqa: TRG307\n'
                 'on git.push branch="b/*" run build with <sha>\n')
    u = client.open(p)
    assert [(d["code"], d["range"]["start"]["line"]) for d in client.wait_diagnostics(u)] == [("TRG307", 2)]


def test_positions_are_utf16_on_lines_with_wide_characters(client: LspClient, tmp_path: Path) -> None:
    p = tmp_path / "rules.trg"
    p.write_text('action deploy = shell "true"\non git.push message="🚀 x" brnch="a" run deploy\n')
    u = client.open(p)
    [d] = client.wait_diagnostics(u)
    # the rocket is one character but two UTF-16 units: brnch is character 26, UTF-16 unit 27
    assert d["range"]["start"] == pos(1, 27) and d["range"]["end"] == pos(1, 32)


def test_malformed_messages_get_a_json_rpc_error_and_the_server_keeps_going(client: LspClient,
                                                                           tmp_path: Path) -> None:
    p = tmp_path / "rules.trg"
    p.write_text('action a = shell "true"\non git.push run a\n')
    u = client.open(p)
    client.wait_diagnostics(u)

    client.send_raw(b"{this is not json")
    err = client.wait_for(lambda: client.unmatched and client.unmatched[-1], what="a parse error")
    assert err["error"]["code"] == -32700 and err["id"] is None

    client.send_raw(b"[1, 2, 3]")
    err = client.wait_for(lambda: len(client.unmatched) >= 2 and client.unmatched[-1], what="an invalid request")
    assert err["error"]["code"] == -32600

    rid = client.request_id()
    client.send_raw(json.dumps({"jsonrpc": "2.0", "id": rid, "method": "textDocument/hover",
                                "params": {"textDocument": {"uri": u}, "position": {"line": "two"}}}).encode())
    err = client.wait_response(rid)["error"]
    assert err["code"] == -32602 and "textDocument/hover" in err["message"]

    with pytest.raises(LspError) as e:
        client.request("textDocument/noSuchThing", {})
    assert e.value.code == -32601

    # still serving, and still right
    h = client.request("textDocument/hover", {"textDocument": {"uri": u}, "position": pos(1, 4)})
    assert "git.push" in h["contents"]["value"]
    assert client.request("textDocument/hover", {"textDocument": {"uri": "file:///no/such.trg"},
                                                 "position": pos(0, 0)}) is None


def test_lsp_without_the_editor_extra_says_how_to_get_it(tmp_path: Path) -> None:
    """A probe that hides pygls: the command fails with the pip line, no traceback."""
    probe = ("import sys, builtins\nreal = builtins.__import__\n"
             "def imp(name, *a, **k):\n    if name.startswith(('pygls', 'lsprotocol', 'mcp')):\n"
             "        raise ImportError('No module named ' + repr(name))\n    return real(name, *a, **k)\n"
             "builtins.__import__ = imp\nfrom triggerlang.cli import main\nmain(['lsp'])\n")
    r = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)
    assert r.returncode == 1 and "pip install 'triggerlang[editor]'" in r.stderr and "Traceback" not in r.stderr
