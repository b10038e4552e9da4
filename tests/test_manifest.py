"""The listener manifest (SPEC §7): golden files, determinism, only the sources the rules
need, secrets only as references, watch roots from path globs.

Golden files: ``tests/golden/X.trg`` compiles to ``tests/golden/X.json`` (with the machine's
``base_dir`` replaced by ``<BASE_DIR>``). After an intended change to the manifest, rewrite
them with ``TRG_REGEN_GOLDEN=1 pytest tests/test_manifest.py`` and review the diff.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from triggerlang.api import compile_file, compile_text
from triggerlang.cli import main
from triggerlang.compile.manifest import ManifestError, dumps, validate_manifest

GOLDEN = Path(__file__).resolve().parent / "golden"
REGEN = os.environ.get("TRG_REGEN_GOLDEN") == "1"
PLACEHOLDER = "<BASE_DIR>"

ACTION = 'action d(x="") = exec "./run" x\n'


def golden_text(trg: Path) -> str:
    c = compile_file(trg, display_name=trg.name)
    assert c.ok, [(d.code, d.message) for d in c.diagnostics]
    m = dict(c.manifest)
    assert m["base_dir"] == str(trg.resolve().parent)
    m["base_dir"] = PLACEHOLDER
    return dumps(m)


@pytest.mark.parametrize("trg", sorted(GOLDEN.glob("*.trg")), ids=lambda p: p.name)
def test_golden_manifest(trg: Path) -> None:
    expected_file = trg.with_suffix(".json")
    text = golden_text(trg)
    if REGEN:
        expected_file.write_text(text, encoding="utf-8")
    assert expected_file.exists(), f"no golden {expected_file.name}: run with TRG_REGEN_GOLDEN=1"
    assert text == expected_file.read_text(encoding="utf-8")


def test_golden_inputs_are_clean() -> None:
    for trg in sorted(GOLDEN.glob("*.trg")):
        assert compile_file(trg).diagnostics == [], trg.name
    assert len(list(GOLDEN.glob("*.trg"))) >= 3


def test_golden_covers_every_listener() -> None:
    kinds: set[str] = set()
    for trg in GOLDEN.glob("*.trg"):
        kinds |= set(json.loads(golden_text(trg))["sources"])
    assert kinds == {"file", "git", "http", "schedule"}


# --------------------------------------------------------------------------- determinism

def test_compiling_twice_gives_identical_bytes(tmp_path: Path) -> None:
    trg = GOLDEN / "project.trg"
    first = dumps(compile_file(trg).manifest)
    second = dumps(compile_file(trg).manifest)
    assert first == second
    out1, out2 = tmp_path / "a.json", tmp_path / "b.json"
    runner = CliRunner()
    assert runner.invoke(main, ["compile", str(trg), "-o", str(out1)]).exit_code == 0
    assert runner.invoke(main, ["compile", str(trg), "-o", str(out2)]).exit_code == 0
    assert out1.read_bytes() == out2.read_bytes() == first.encode("utf-8")


def test_identical_bytes_across_processes_and_hash_seeds() -> None:
    trg = GOLDEN / "project.trg"
    outs = []
    for seed in ("1", "2"):
        env = {**os.environ, "PYTHONHASHSEED": seed}
        r = subprocess.run([sys.executable, "-m", "triggerlang.cli", "compile", str(trg)],
                           capture_output=True, env=env, timeout=60)
        assert r.returncode == 0, r.stderr
        outs.append(r.stdout)
    assert outs[0] == outs[1]


def test_manifest_format() -> None:
    m = compile_file(GOLDEN / "webhooks.trg").manifest
    assert m["triggerlang"] == 1
    assert set(m) >= {"triggerlang", "sources", "actions", "rules"}
    assert validate_manifest(json.loads(dumps(m))) is not None
    r = m["rules"][0]
    assert set(r) >= {"name", "trigger", "filter", "action", "args", "policies", "span"}
    assert r["span"] == {"line": 16, "column": 1, "end_line": 16, "end_column": 89}


@pytest.mark.parametrize("bad, message", [
    ([], "not a triggerlang manifest"),
    ({"triggerlang": 2, "sources": {}, "actions": {}, "rules": []}, "manifest format 2 is not supported"),
    ({"triggerlang": 1, "sources": {}, "actions": {}}, "manifest has no valid 'rules'"),
])
def test_validate_manifest_rejects(bad, message: str) -> None:
    with pytest.raises(ManifestError, match=message):
        validate_manifest(bad)


# --------------------------------------------------------------------------- only the sources needed

def sources_of(text: str) -> dict:
    c = compile_text(text, "rules.trg", base_dir="/base")
    assert c.ok, [(d.code, d.message) for d in c.diagnostics]
    return c.manifest["sources"]


@pytest.mark.parametrize("rules, kinds", [
    ('on git.push run d', {"git"}),
    ('on file.changed path ~ "src/**" run d', {"file"}),
    ('on every 1h run d', {"schedule"}),
    ('on cron "0 3 * * *" run d', {"schedule"}),
    ('on github.push run d', {"http"}),
    ('on gitlab.push run d', {"http"}),
    ('on ci.completed run d', {"http"}),
    ('on http.post path="/x" run d', {"http"}),
    ('on run.completed run d', set()),          # internal: no listener at all
    ('on git.push run d\non every 5m run d', {"git", "schedule"}),
])
def test_only_the_sources_some_rule_needs(rules: str, kinds: set) -> None:
    assert set(sources_of(ACTION + rules)) == kinds


def test_source_declarations_alone_start_nothing() -> None:
    text = ('secret s = env "S"\nsource github secret=s\nsource file root="src"\nsource http port=9000 token=s\n'
            'source git poll=5s\n' + ACTION + 'on every 1h run d\n')
    c = compile_text(text, "rules.trg", base_dir="/base")
    assert c.ok and {d.code for d in c.diagnostics} == {"TRG108"}
    assert set(c.manifest["sources"]) == {"schedule"}


def test_a_rule_with_errors_gives_no_manifest() -> None:
    c = compile_text(ACTION + 'on git.push brnch="x" run d', "rules.trg")
    assert not c.ok and c.manifest is None


def test_only_used_actions_are_written() -> None:
    c = compile_text(ACTION + 'action unused = shell "x"\non git.push run d', "rules.trg")
    assert list(c.manifest["actions"]) == ["d"]


# --------------------------------------------------------------------------- secrets

SENTINEL = "s3ntinel-VALUE-7f1c"


def test_secrets_appear_only_as_references(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GH_SECRET", SENTINEL)
    monkeypatch.setenv("HOOK_TOKEN", SENTINEL)
    (tmp_path / "key.txt").write_text(SENTINEL)
    rules = tmp_path / "rules.trg"
    rules.write_text('secret gh = env "GH_SECRET"\nsecret tok = env "HOOK_TOKEN"\nsecret key = file "key.txt"\n'
                     'source github secret=gh\nsource http path="/hooks/*" hmac=tok\n'
                     'action handoff = http post "https://example.com/runs" secret=key\n'
                     'on github.push run handoff\non http.post path="/hooks/x" run handoff\n')
    result = CliRunner().invoke(main, ["compile", str(rules)])
    assert result.exit_code == 0, result.output
    assert SENTINEL not in result.output
    m = json.loads(result.output)
    assert m["secrets"] == {"gh": {"env": "GH_SECRET"}, "key": {"file": "key.txt"}, "tok": {"env": "HOOK_TOKEN"}}
    verifies = {r["path"]: r["verify"] for r in m["sources"]["http"]["routes"]}
    assert verifies == {"/github": {"scheme": "github", "secret": "gh"},
                        "/hooks/x": {"scheme": "hmac", "secret": "tok", "header": "X-Signature-256"}}
    assert m["actions"]["handoff"]["secret"] == "key"


# --------------------------------------------------------------------------- file sources

@pytest.mark.parametrize("conds, roots", [
    (['path ~ "src/**/*.py"', 'path ~ "docs/*.md"'], ["docs", "src"]),
    (['path = "config/app.yaml"'], ["config"]),
    (['path ~ "src/a/**"', 'path ~ "src/**"'], ["src"]),
    (['path ~ "src/**"', 'path ~ "srcx/*"'], ["src", "srcx"]),
    (['path ~ "**/*.py"'], ["."]),
    (['path ~ "*.py"'], ["."]),
    (['path ~ "src/**"', 'ext="py"'], ["."]),            # a rule without a path glob watches everything
    (['path in ["a/b/c.txt", "d/e.txt"]'], ["a/b", "d"]),
    (['path ~ "a/b[12]/**"'], ["a"]),
    (['path ~ "a/b?/c"'], ["a"]),
])
def test_watch_roots_from_path_globs(conds: list, roots: list) -> None:
    rules = "".join(f"on file.changed {c} run d\n" for c in conds)
    assert sources_of(ACTION + rules)["file"]["roots"] == roots


def test_file_source_options_and_ignores() -> None:
    f = sources_of('source file root="web" ignore=["node_modules/**", "*.map"]\n' + ACTION +
                   'on file.created path ~ "static/**" run d')["file"]
    assert f["root"] == "web" and f["roots"] == ["static"]
    assert f["ignore"] == ["node_modules/**", "*.map"]
    assert "**/.git/**" in f["always_ignored"] and "*.sw[a-p]" in f["always_ignored"] and "#*#" in f["always_ignored"]
    assert "gitignore" not in f and "meta" not in f  # written only when set: manifests from before stay the same bytes
    on = sources_of('source file gitignore=true poll=2s meta=false\n' + ACTION + 'on file.created run d')["file"]
    assert on["gitignore"] is True and on["poll"] == 2.0 and on["meta"] is False and "poll" not in f
    assert "meta" not in sources_of('source file meta=true\n' + ACTION + 'on file.created run d')["file"]


def test_a_path_glob_under_or_does_not_narrow_the_roots() -> None:
    f = sources_of(ACTION + 'on file.changed (path ~ "src/**" or ext="md") run d')["file"]
    assert f["roots"] == ["."]


# --------------------------------------------------------------------------- git, http, schedule

def test_git_repositories() -> None:
    g = sources_of(ACTION + 'on git.push repo="/srv/b.git" run d\non git.tag repo in ["/srv/a.git", "/srv/b.git"] run d\n'
                   'on git.merge run d')["git"]
    assert g == {"poll": 0.25, "repos": [{"repo": ".", "path": "."}, {"repo": "/srv/a.git", "path": "/srv/a.git"},
                                         {"repo": "/srv/b.git", "path": "/srv/b.git"}]}


def test_http_routes_and_methods() -> None:
    h = sources_of('secret s = env "S"\nsource http token=s port=0 host="::1"\n' + ACTION +
                   'on http.post path="/b" run d\non http.put path="/b" run d\non http.get path="/a" run d\n'
                   'on http.request path="/c" run d\non http.delete path="/c" run d')["http"]
    assert (h["host"], h["port"], h["max_body"]) == ("::1", 0, 10 * 1024 * 1024)
    assert [(r["path"], r["methods"]) for r in h["routes"]] == [("/a", ["GET"]), ("/b", ["POST", "PUT"]), ("/c", None)]
    assert all(r["verify"] == {"scheme": "bearer", "secret": "s", "header": "Authorization"} for r in h["routes"])


def test_default_webhook_routes() -> None:
    h = sources_of(ACTION + 'on github.push run d\non gitlab.push run d\non ci.completed run d')["http"]
    assert [(r["path"], r["kind"], r["verify"]) for r in h["routes"]] == [
        ("/ci", "ci", None), ("/github", "github", None), ("/gitlab", "gitlab", None)]
    assert (h["host"], h["port"]) == ("127.0.0.1", 8080)


def test_ci_rules_start_declared_provider_routes() -> None:
    text = 'secret s = env "S"\nsource github secret=s\nsource ci token=s\n' + ACTION + 'on ci.completed run d'
    h = sources_of(text)["http"]
    assert [(r["path"], r["kind"]) for r in h["routes"]] == [("/ci", "ci"), ("/github", "github")]


def test_schedules() -> None:
    s = sources_of(ACTION + 'a: on every 90s run d\nb: on cron "0 3 * * 1-5" tz "Europe/Paris" run d\n'
                   'c: on cron "*/5 * * * *" run d')["schedule"]
    assert s == {"schedules": [{"rule": "a", "every": 90.0},
                               {"rule": "b", "cron": "0 3 * * 1-5", "tz": "Europe/Paris"},
                               {"rule": "c", "cron": "*/5 * * * *", "tz": "UTC"}]}


def test_an_actions_stop_option_is_in_its_entry_only_when_written() -> None:
    c = compile_text('action a = exec "./app" stop int grace 45s\naction b = shell "x" stop grace 1m\n'
                     'action c = exec "./c"\n'
                     'on every 1h run a\non every 2h run b\non every 3h run c\n', "rules.trg", base_dir="/base")
    acts = c.manifest["actions"]
    assert (acts["a"]["stop_signal"], acts["a"]["stop_grace"]) == ("SIGINT", 45.0)
    assert "stop_signal" not in acts["b"] and acts["b"]["stop_grace"] == 60.0
    assert not {"stop_signal", "stop_grace"} & set(acts["c"])


def test_actions_and_rules_serialise() -> None:
    c = compile_text('action deploy(sha, stage="s", n=3) = exec "./d" "--sha" sha cwd "ops" env A="1"\n'
                     'action sh = shell "echo hi"\n'
                     'on git.push branch="main" run deploy with <sha> timeout 1m\non every 1h run sh\n',
                     "rules.trg", base_dir="/base")
    m = c.manifest
    assert (m["file"], m["base_dir"]) == ("rules.trg", "/base")
    d = m["actions"]["deploy"]
    assert d["kind"] == "exec" and d["argv"] == [{"value": "./d"}, {"value": "--sha"}, {"param": "sha"}]
    assert d["params"] == [{"name": "sha"}, {"name": "stage", "default": "s"}, {"name": "n", "default": 3}]
    assert (d["cwd"], d["env"]) == ("ops", {"A": "1"})
    assert m["actions"]["sh"]["script"] == "echo hi"
    r = m["rules"][0]
    assert r["trigger"] == "git.push" and r["source"] == "git" and r["types"] == ["push"]
    assert r["args"] == {"sha": {"field": "sha"}, "stage": {"value": "s"}, "n": {"value": 3}}
    assert r["policies"]["timeout"] == 60.0
    assert r["filter"] == {"op": "=", "field": "branch", "value": "main", "span": [3, 13, 3, 26]}


def test_action_kinds_are_a_closed_set() -> None:
    """An action kind nobody handles fails loudly: in a hand-written manifest (a clear
    ManifestError) and in a dry run (ActionError), never a silent no-op."""
    from triggerlang.actions import ActionError, display_argv

    with pytest.raises(ManifestError, match="unknown kind 'ftp'"):
        validate_manifest({"triggerlang": 1, "sources": {}, "actions": {"up": {"kind": "ftp"}}, "rules": []})
    with pytest.raises(ActionError, match="unknown kind"):
        display_argv({"kind": "ftp"}, {}, "up")
    assert display_argv({"kind": "http", "url": "http://x"}, {}, "up") is None


def test_an_inputs_nul_bytes_are_dropped_from_argv_and_environment_only() -> None:
    """argv and TRG_INPUT_* cannot hold a NUL byte: an event's string (a list's items too)
    gets there without it, as `triggerc match` shows it; JSON text writes it \\u0000."""
    from triggerlang.actions import display_argv
    from triggerlang.runtime.executor import RunRequest, _env_additions

    action = {"kind": "exec", "argv": [{"value": "echo"}, {"param": "m"}, {"param": "files"}],
              "params": [{"name": "m"}, {"name": "files"}, {"name": "o"}]}
    inputs = {"m": "a\0b", "files": ["x\0.py", "y.py"], "o": {"k": "\0"}}
    assert display_argv(action, inputs, "e") == ["echo", "ab", "x.py", "y.py"]
    req = RunRequest(1, "r", "e", action, inputs, {}, Path("."), Path("1.log"), None)
    env = _env_additions(req, inputs)
    assert (env["TRG_INPUT_M"], env["TRG_INPUT_FILES"], env["TRG_INPUT_O"]) == ("ab", '["x\\u0000.py","y.py"]',
                                                                              '{"k":"\\u0000"}')
