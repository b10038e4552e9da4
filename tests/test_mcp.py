"""``triggerc mcp`` driven by the mcp SDK's own client over stdio (a real server process), and
for ``emit`` / ``runs`` / ``run_log`` / ``events`` a real ``triggerc serve`` beside it."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

import anyio
import pytest
from click.testing import CliRunner
from mcp import ClientSession, StdioServerParameters, stdio_client

from triggerlang.cli import main as cli

from runtime_helpers import Server

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = Path(__file__).resolve().parents[2] / "shared" / "fixtures" / "webhooks"
SECRET = "s3cr3t-Value-1234"


class Mcp:
    """One `triggerc mcp` process and an SDK session, used from synchronous tests."""

    def __init__(self, *args: str, cwd: Path, env: dict[str, str] | None = None):
        self.params = StdioServerParameters(command=sys.executable, args=["-m", "triggerlang.cli", "mcp", *args],
                                            cwd=str(cwd), env={**os.environ, **(env or {})})
        self.results: list[Any] = []

    def run(self, script) -> Any:
        async def main():
            async with stdio_client(self.params, errlog=open(os.devnull, "w")) as (r, w):
                async with ClientSession(r, w) as s:
                    await s.initialize()
                    return await script(s)
        return anyio.run(main)

    def calls(self, *calls: tuple[str, dict]) -> list[Any]:
        """Call tools in one session; each result as (is_error, structured or text)."""
        async def script(s):
            out = []
            for name, args in calls:
                res = await s.call_tool(name, args)
                payload = res.structured_content if res.structured_content is not None and not res.is_error \
                    else " ".join(getattr(c, "text", "") for c in res.content)
                out.append((res.is_error, payload))
                self.results.append(res.model_dump(mode="json"))
            return out
        return self.run(script)


RULES = f'''secret gh = env "TRG_MCP_SECRET"
source github path="/github" secret=gh
action deploy(sha, stage="staging") = exec "{sys.executable}" "-c" "import os,sys; print(sys.argv[1], os.environ.get('TRG_MCP_SECRET'))" sha
go: on git.push branch="main" run deploy with <sha>, "prod"
gh_push: on github.push branch="main" run deploy with <sha>
rel: on git.push branch ~ "release/*" run deploy with <sha>
'''


@pytest.fixture
def rules(tmp_path: Path) -> Path:
    p = tmp_path / "rules.trg"
    p.write_text(RULES)
    return p


def test_tools_and_their_typed_input_schemas(tmp_path: Path) -> None:
    async def script(s):
        return (await s.list_tools()).tools
    tools = {t.name: t for t in Mcp(cwd=tmp_path).run(script)}
    assert sorted(tools) == ["catalogue", "check", "emit", "events", "explain", "groups", "run_log", "runs"]
    check = tools["check"].input_schema
    assert check["required"] == ["path"] and check["properties"]["strict"]["type"] == "boolean"
    assert tools["run_log"].input_schema["properties"]["run_id"]["type"] == "integer"
    assert set(tools["runs"].input_schema["properties"]["status"]["anyOf"][0]["enum"]) >= {"failed", "succeeded"}
    assert tools["explain"].input_schema["properties"]["provider"]["anyOf"][0]["enum"] == ["github", "gitlab"]
    assert all(t.description for t in tools.values())


PUSH_DEV = {"source": "git", "type": "push", "data": {"branch": "dev", "sha": "a"}}


def test_check_catalogue_and_explain(rules: Path, tmp_path: Path, monkeypatch) -> None:
    payload = json.loads((FIXTURES / "github" / "push-plain.json").read_text())
    calls = [
        ("check", {"path": str(rules)}),
        ("check", {"path": str(rules), "text": RULES + 'on git.push brnch="x" run deplo\n'}),
        ("check", {"path": str(rules), "text": 'action a = exec "true"\non git.push run a\nlet unused = 1\n', "strict": True}),
        ("catalogue", {}),
        ("catalogue", {"source": "git", "event": "push"}),
        ("catalogue", {"source": "gti"}),
        ("explain", {"path": str(rules), "event": {"source": "git", "type": "push",
                                                    "data": {"branch": "release/2", "sha": "abc"}}}),
        ("explain", {"path": str(rules), "event": {"source": "git", "type": "push", "data": "nope"}}),
        ("explain", {"path": str(rules), "payload": payload, "provider": "github", "provider_event": "push"}),
        # the file's triggerc.toml, as `triggerc check` reads it: TRG307 left out, strict
        ("check", {"path": str(tmp_path / "cfg" / "r.trg"), "text": RULES + 'x: on git.push branch="a/*" run deploy with <sha>\n'
                   'on http.post path="/h" run deploy with "x"\n'}),
        ("catalogue", {"event": "push"}),
        ("explain", {"path": str(rules), "event": payload}),  # a raw body given as the event
        ("catalogue", {"source": "github", "event": "nope_evt"}),
        ("catalogue", {"source": "github", "event": "pull_reqest"}),
        ("catalogue", {"source": "github", "event": "star"}),  # known to GitHub, no typed fields
        ("explain", {"path": "inc/main.trg", "event": PUSH_DEV}),   # a rule an include read
    ]
    (tmp_path / "inc" / "lib").mkdir(parents=True)
    (tmp_path / "inc" / "main.trg").write_text('include "lib/deploy.trg"\n')
    (tmp_path / "inc" / "lib" / "deploy.trg").write_text('action d(sha) = exec "true"\n'
                                                         'go: on git.push branch="main" run d with <sha>\n')
    (tmp_path / "cfg").mkdir()
    (tmp_path / "cfg" / "triggerc.toml").write_text('ignore = ["TRG307"]\nstrict = true\n')
    res = Mcp(cwd=tmp_path).calls(*calls)
    ok, clean = res[0]
    assert not ok and clean["ok"] and clean["diagnostics"] == []
    ok, bad = res[1]
    assert not bad["ok"] and [(d["code"], d["line"], d["column"]) for d in bad["diagnostics"]] == \
        [("TRG203", 7, 13), ("TRG104", 7, 27)]
    assert bad["diagnostics"][0]["hint"] == "did you mean 'branch'?"
    assert bad["diagnostics"][0]["fix"]["edits"] == [{"line": 7, "column": 13, "end_line": 7, "end_column": 18,
                                                      "text": "branch"}]  # (the fix check --fix applies)
    assert res[2][1]["ok"] is False and res[2][1]["warnings"] == 1  # --strict: a warning fails
    assert {s["name"] for s in res[3][1]["sources"]} >= {"git", "github", "gitlab", "http", "file", "ci"}
    fields = {f["name"]: f["type"] for f in res[4][1]["fields"]}
    assert fields["branch"] == "str" and fields["files"] == "list[str]" and fields["forced"] == "bool"
    assert res[5][0] and "unknown source 'gti'" in res[5][1] and "did you mean 'git'" in res[5][1]
    ex = res[6][1]
    assert [m["rule"] for m in ex["matches"]] == ["rel"] and ex["matches"][0]["inputs"] == {"sha": "abc",
                                                                                          "stage": "staging"}
    first = ex["not_matched"][0]
    assert (first["rule"], first["field"], first["value"]) == ("go", "branch", "release/2"), first
    assert first["span"][:2] == [4, 17]  # line 4, column 17: where `branch="main"` is written
    assert res[7][0] and "data" in res[7][1]
    ex = res[8][1]
    assert ex["events"][0]["source"] == "github" and ex["events"][0]["type"] == "push"
    assert ex["events"][0]["data"]["sha"] == payload["after"]
    configured = res[9][1]
    assert [d["code"] for d in configured["diagnostics"]] == ["TRG209"] and configured["ok"] is False, configured
    # an event without its source is refused, not ignored (it listed every source)
    assert res[10][0] and "`event` 'push' needs its `source`" in res[10][1]
    # the way to give a raw body is this tool's, not the CLI's (--github EVENT)
    assert res[11][0] and "give it as `payload`, with `provider` (github or gitlab) and `provider_event`" \
        in res[11][1] and "--github" not in res[11][1]
    # an event the provider is not known to send: its common fields, with check's TRG207
    unknown = res[12][1]
    assert unknown["trigger"] == "github.nope_evt" and {f["name"] for f in unknown["fields"]} >= {"action", "repo"}
    assert unknown["warning"] == ("TRG207: 'nope_evt' is not a known github event "
                                  "(check the github webhook documentation for the name)")
    assert len(unknown["closest"]) == 5
    typo = res[13][1]
    assert typo["warning"] == "TRG207: 'pull_reqest' is not a known github event (did you mean 'pull_request'?)"
    assert typo["closest"][:2] == ["pull_request", "pull_request_review"]
    assert "warning" not in res[14][1] and "closest" not in res[14][1]
    # an included rule's file as `triggerc match` names it from the same folder (it was
    # lib/deploy.trg, relative to the main file's folder)
    monkeypatch.chdir(tmp_path)
    (tmp_path / "e.json").write_text(json.dumps(PUSH_DEV))
    r = CliRunner().invoke(cli, ["match", "--explain", "--format", "json", "inc/main.trg", "e.json"])
    assert [x["file"] for x in json.loads(r.output)["not_matched"]] == ["inc/lib/deploy.trg"], r.output
    assert [x["file"] for x in res[15][1]["not_matched"]] == ["inc/lib/deploy.trg"], res[15]


def test_explain_a_rules_file_with_errors_returns_its_diagnostics(tmp_path: Path) -> None:
    p = tmp_path / "bad.trg"
    p.write_text('on git.push run nope\n')
    [(err, res)] = Mcp(cwd=tmp_path).calls(("explain", {"path": str(p), "event": {"source": "git", "type": "push"}}))
    assert not err and res["ok"] is False and res["diagnostics"][0]["code"] == "TRG104"


def test_emit_history_and_no_secret_value_in_any_result(rules: Path, tmp_path: Path) -> None:
    """emit reaches a real server on loopback; runs, run_log and events read its journal; the
    secret's value, printed by the action and sent in an event, never comes back."""
    state = tmp_path / ".triggerlang"
    env = {"TRG_MCP_SECRET": SECRET}
    server = Server(rules, state, "--http", env=env).start()
    try:
        mcp = Mcp("--state", str(state), "--url", server.url, cwd=tmp_path, env=env)
        [(err, sent)] = mcp.calls(("emit", {"trigger": "git.push",
                                            "data": {"branch": "main", "sha": "abc", "note": f"token {SECRET}"}}))
        assert not err and sent["status"] == 202 and len(sent["runs"]) == 1
        run_id = sent["runs"][0]
        server.wait_runs(lambda rs: rs and rs[0]["status"] == "succeeded", "the run to succeed")
        log = (state / "logs" / f"{run_id}.log").read_text()
        assert SECRET in log  # the action printed it: the journal's business, not ours to repeat
        res = mcp.calls(
            ("runs", {}), ("runs", {"status": "failed"}), ("run_log", {"run_id": run_id}),
            ("events", {"include_data": True}), ("run_log", {"run_id": 999}),
            ("explain", {"path": str(rules), "event": {"source": "git", "type": "push",
                                                       "data": {"branch": "main", "sha": SECRET}}}),
            ("check", {"path": str(rules), "text": RULES + f'let leak = "{SECRET}"\n'}),
            ("groups", {}),
            ("emit", {"trigger": "git.push", "url": "http://192.0.2.1:8080"}),
            ("emit", {"trigger": "git.push", "url": "http://localhost.example.com:8080"}),
            ("emit", {"trigger": "nodot"}),
            ("emit", {"trigger": "gti.push", "data": {"branch": "main"}}),  # sent, with triggerc emit's warning
        )
    finally:
        server.stop()
    runs = res[0][1]["runs"]
    assert [(r["id"], r["rule"], r["status"], r["inputs"]) for r in runs] == \
        [(run_id, "go", "succeeded", {"sha": "abc", "stage": "prod"})]
    assert res[1][1]["runs"] == []
    log = res[2][1]
    assert log["status"] == "succeeded" and "abc [secret gh]" in log["log"] and not log["truncated"]
    [event] = res[3][1]["events"]
    assert event["matched"] == ["go"] and event["data"]["note"] == "token [secret gh]"
    assert res[4][0] and "no run 999" in res[4][1]
    assert res[5][1]["matches"][0]["inputs"]["sha"] == "[secret gh]"
    groups = res[7][1]
    assert groups == {"groups": []}   # (these rules have no correlation)
    assert res[8][0] and "loopback" in res[8][1]
    assert res[9][0] and "loopback" in res[9][1]
    assert res[10][0]  # the trigger's pattern is part of the input schema
    assert not res[11][0] and res[11][1]["status"] == 202 and res[11][1]["runs"] == []
    assert res[11][1]["warning"] == "gti.push: unknown source 'gti' (did you mean 'git'?)"
    assert "warning" not in sent
    everything = json.dumps(mcp.results)
    assert SECRET not in everything
    assert everything.count("[secret gh]") >= 4


GATE_RULES = f'''action deploy(sha) = exec "{sys.executable}" "-c" "pass" sha
gate: on all(git.push branch="main" as push, ci.completed status="success" as ci) same <sha> within 1h
    run deploy with <sha>
'''


def test_groups_lists_a_served_rules_correlation_groups_with_filters(tmp_path: Path) -> None:
    """A push opens a group keyed by its sha (waiting for the CI member); a push and a green CI
    for another sha fire one. The tool filters by state and key as `triggerc groups` does."""
    rules = tmp_path / "gate.trg"
    rules.write_text(GATE_RULES)
    state = tmp_path / ".triggerlang"
    server = Server(rules, state, "--http").start()
    try:
        mcp = Mcp("--state", str(state), "--url", server.url, cwd=tmp_path)
        sent = mcp.calls(("emit", {"trigger": "git.push", "data": {"branch": "main", "sha": "aaa111"}}),
                         ("emit", {"trigger": "git.push", "data": {"branch": "main", "sha": "bbb222"}}),
                         ("emit", {"trigger": "ci.completed", "data": {"status": "success", "sha": "bbb222"}}))
        assert all(not err and res["status"] == 202 for err, res in sent), sent
        server.wait_runs(lambda rs: rs and rs[0]["status"] == "succeeded", "the gate's run to succeed")
        res = mcp.calls(("groups", {}), ("groups", {"status": "open"}), ("groups", {"status": "fired"}),
                        ("groups", {"key": "aaa111"}), ("groups", {"rule": "nope"}), ("groups", {"status": "bogus"}))
    finally:
        server.stop()
    every = res[0][1]["groups"]
    assert sorted((g["keys"], g["state"]) for g in every) == [(["aaa111"], "open"), (["bbb222"], "fired")]
    [opened] = res[1][1]["groups"]
    assert opened["keys"] == ["aaa111"] and opened["missing"] == ["ci"] and [m["alias"] for m in opened["members"]] == ["push"]
    [fired] = res[2][1]["groups"]
    assert fired["keys"] == ["bbb222"] and fired["run_id"] is not None and fired["missing"] == []
    assert [g["keys"] for g in res[3][1]["groups"]] == [["aaa111"]]
    assert res[4][1]["groups"] == []
    assert res[5][0]  # not one of the states: an input error


def test_history_tools_without_a_journal_say_where_they_looked(tmp_path: Path) -> None:
    res = Mcp(cwd=tmp_path).calls(("runs", {}), ("events", {"state": str(tmp_path / "nope")}), ("groups", {}))
    for err, text in res:
        assert err and "no journal in" in text
    assert not (tmp_path / ".triggerlang").exists() and not (tmp_path / "nope").exists()  # read-only: nothing made


def test_malformed_calls_get_errors_and_the_server_keeps_serving(rules: Path, tmp_path: Path) -> None:
    async def script(s):
        out = []
        for name, args in [("check", {}), ("check", {"path": 3}), ("no_such_tool", {}),
                           ("run_log", {"run_id": "x"}), ("check", {"path": str(tmp_path / "missing.trg")}),
                           ("explain", {"path": str(rules)}), ("check", {"path": ""}),
                           ("check", {"path": "", "text": "x"}), ("check", {"path": str(tmp_path)}),
                           ("check", {"path": str(rules)})]:
            try:
                r = await s.call_tool(name, args)
                out.append((r.is_error, r.structured_content, " ".join(getattr(c, "text", "") for c in r.content)))
            except Exception as e:  # noqa: BLE001 - a protocol-level error is an answer too
                out.append(("raised", None, str(e)))
        return out
    res = Mcp(cwd=tmp_path).run(script)
    for is_error, _, text in res[:-1]:
        assert is_error in (True, "raised") and text, res
    assert "missing.trg: no such rules file" in res[4][2]
    assert "exactly one of `event` or `payload`" in res[5][2]
    assert "at least 1 character" in res[6][2] and "at least 1 character" in res[7][2]  # (was ': no such rules
    assert f"{tmp_path} is a folder: give one .trg file of it" in res[8][2]  # file', and text checked as '')
    assert res[-1][0] is False and res[-1][1]["ok"] is True  # still serving


def test_mcp_refuses_a_non_loopback_default_url(tmp_path: Path) -> None:
    import subprocess

    r = subprocess.run([sys.executable, "-m", "triggerlang.cli", "mcp", "--url", "http://example.com"],
                       capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)
    assert r.returncode == 2 and "loopback" in r.stderr and "Traceback" not in r.stderr


def test_history_from_a_postgresql_store_and_its_password_never_shown(tmp_path: Path, pg_url: str) -> None:
    """`triggerc mcp --store URL` reads runs, logs and events through the Store API (SPEC §12)."""
    from triggerlang.events import Event
    from triggerlang.runtime.pgstore import PgStore
    from triggerlang.runtime.store import Intent

    st = PgStore(pg_url)
    rec = st.ingest(Event("git", "push", {"branch": "main"}), [Intent("deploy", "d", {"sha": "abc"})], "k")
    (row,) = st.claim("w", ["default"], 1, 10)
    st.finish(row.id, "w", "succeeded", 0, None, log=b"deployed abc\n")
    st.close()
    password = "pw-Never-Shown-42"
    url = pg_url.replace("postgresql://postgres@", f"postgresql://postgres:{password}@")  # trust auth ignores it
    mcp = Mcp("--store", url, cwd=tmp_path)
    res = mcp.calls(("runs", {}), ("run_log", {"run_id": row.id}), ("events", {}))
    assert [(r["id"], r["rule"], r["status"]) for r in res[0][1]["runs"]] == [(row.id, "deploy", "succeeded")]
    assert res[1][1]["log"] == "deployed abc\n"
    assert [e["id"] for e in res[2][1]["events"]] == [rec.event_id]
    dead = Mcp("--store", f"postgresql://postgres:{password}@127.0.0.1:1/nothing?connect_timeout=2", cwd=tmp_path)
    [(err, text)] = dead.calls(("runs", {}))
    assert err and password not in text
    assert password not in json.dumps(mcp.results + dead.results)
