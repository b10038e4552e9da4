"""The registries (SPEC §13): a provider and a source kind from a third-party package.

tests/plugins/ holds a package as a plug-in author would write it (``triggerlang_demo``)
and the ``.dist-info`` folder pip would have written for it, whose ``entry_points.txt``
registers a provider (``demo``) and a source kind (``beacon``). Putting that folder on
``PYTHONPATH`` is exactly what installing the package does as far as
``importlib.metadata`` is concerned, without installing anything into the test
environment: every test here runs ``triggerc`` in a subprocess with it, so the real
entry-point discovery is what finds them, and no other test sees them.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest

from runtime_helpers import Server, cli

PLUGINS = Path(__file__).resolve().parent / "plugins"


def plugin_env() -> dict[str, str]:
    path = os.pathsep.join(p for p in (str(PLUGINS), os.environ.get("PYTHONPATH", "")) if p)
    return {**os.environ, "PYTHONPATH": path}


RULES = '''secret demo_key = env "DEMO_KEY"
source demo secret=demo_key
source beacon level=3
action note(who, n) = exec "echo" who n
hello: on demo.ping who="ana" count > 1 run note with <who>, <count>
beam: on beacon.signal level >= 3 run note with <name>, <level>
'''


def test_plugin_events_type_check(tmp_path: Path) -> None:
    f = tmp_path / "rules.trg"
    f.write_text(RULES)
    r = cli("check", "--strict", str(f), env=plugin_env())
    assert r.returncode == 0, r.stdout + r.stderr
    f.write_text(RULES.replace('who="ana"', 'who=3').replace("level >= 3", "lvl >= 3"))
    r = cli("check", "--format", "json", str(f), env=plugin_env())
    assert r.returncode == 1
    codes = {(d["code"], d["line"]) for d in json.loads(r.stdout)}
    assert ("TRG204", 5) in codes  # who is a str in the plug-in's catalogue entry
    assert ("TRG203", 6) in codes  # beacon.signal has no field lvl
    assert "did you mean 'level'" in r.stdout
    # without the plug-in the names are unknown, as they should be
    r = cli("check", "--format", "json", str(f))
    assert {d["code"] for d in json.loads(r.stdout)} >= {"TRG201"}


def test_plugin_compiles_to_its_sections(tmp_path: Path) -> None:
    f = tmp_path / "rules.trg"
    f.write_text(RULES)
    r = cli("compile", str(f), env=plugin_env())
    assert r.returncode == 0, r.stderr
    m = json.loads(r.stdout)
    assert m["sources"]["beacon"] == {"level": 3, "rules": ["beam"]}
    assert m["sources"]["http"]["routes"] == [
        {"path": "/demo", "kind": "demo", "methods": ["POST"],
         "verify": {"scheme": "hmac", "secret": "demo_key", "header": "X-Demo-Signature"}}]


def test_plugin_provider_in_match(tmp_path: Path) -> None:
    f = tmp_path / "rules.trg"
    f.write_text(RULES)
    body = tmp_path / "ping.json"
    body.write_text(json.dumps({"who": "ana", "count": 2, "repo": "r"}))
    r = cli("match", str(f), str(body), "--provider", "demo", "--event", "ping", "--format", "json", env=plugin_env())
    assert r.returncode == 0, r.stderr
    assert [m["rule"] for m in json.loads(r.stdout)["matches"]] == ["hello"]


def test_a_compile_that_used_a_plugin_is_not_cached(tmp_path: Path) -> None:
    """The compiled-rules cache keys on the compiler's own code, not a plug-in's: a manifest
    a plug-in helped produce is never cached, so an upgraded plug-in never meets it."""
    f = tmp_path / "rules.trg"
    f.write_text(RULES)
    body = tmp_path / "ping.json"
    body.write_text(json.dumps({"who": "ana", "count": 2, "repo": "r"}))
    cache = tmp_path / "cache"
    env = {**plugin_env(), "TRIGGERLANG_CACHE_DIR": str(cache)}
    for _ in range(2):
        r = cli("match", str(f), str(body), "--provider", "demo", "--event", "ping", "--format", "json", env=env)
        assert r.returncode == 0, r.stderr
        assert [m["rule"] for m in json.loads(r.stdout)["matches"]] == ["hello"]
    assert not list(cache.glob("*.json"))
    # the same command on built-in sources only is cached (so the check above can fail)
    g = tmp_path / "builtin.trg"
    g.write_text('action d(x) = exec "echo" x\non git.push run d with <sha>\n')
    event = tmp_path / "push.json"
    event.write_text(json.dumps({"source": "git", "type": "push", "data": {"sha": "abc"}}))
    r = cli("match", str(g), str(event), env=env)
    assert r.returncode == 0, r.stderr
    assert len(list(cache.glob("*.json"))) == 1


def test_plugin_runs_under_serve(tmp_path: Path) -> None:
    f = tmp_path / "rules.trg"
    f.write_text(RULES)
    srv = Server(f, tmp_path / "state", env={**plugin_env(), "DEMO_KEY": "k3y"}).start()
    try:
        # the source kind's Source was started: its one event ran the beam rule
        srv.wait_runs(lambda runs: any(r["rule"] == "beam" and r["status"] == "succeeded" for r in runs), "beam")
        body = json.dumps({"who": "ana", "count": 5}).encode()
        sig = hmac.new(b"k3y", body, hashlib.sha256).hexdigest()
        req = urllib.request.Request(f"{srv.url}/demo", data=body, method="POST", headers={
            "X-Demo-Event": "ping", "X-Demo-Delivery": "d-1", "X-Demo-Signature": f"sha256={sig}",
            "Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=10) as resp:
            assert resp.status == 202
        srv.wait_runs(lambda runs: any(r["rule"] == "hello" and r["status"] == "succeeded" for r in runs), "hello")
        bad = urllib.request.Request(f"{srv.url}/demo", data=body, method="POST", headers={
            "X-Demo-Event": "ping", "X-Demo-Signature": "sha256=" + "0" * 64})
        with pytest.raises(urllib.error.HTTPError) as e:
            urllib.request.urlopen(bad, timeout=10)
        assert e.value.code == 401
    finally:
        assert srv.stop() == 0


def test_builtin_check_scans_no_entry_points(tmp_path: Path) -> None:
    """`triggerc check` on built-in sources only never pays for an entry-point scan."""
    f = tmp_path / "rules.trg"
    f.write_text('secret s = env "S"\nsource github secret=s\naction d(x) = exec "echo" x\n'
                 'on github.push branch="main" run d with <sha>\non ci.completed status="success" run d with <sha>\n')
    code = ("import sys\nfrom triggerlang.cli import main\n"
            "try:\n    main(['check', sys.argv[1]])\nexcept SystemExit as e:\n    assert e.code == 0, e.code\n"
            "bad = sorted(m for m in sys.modules if m == 'importlib.metadata' or m.split('.')[0] in "
            "('starlette', 'uvicorn', 'watchfiles', 'psycopg', 'pygls', 'mcp'))\n"
            "assert not bad, bad\n")
    r = subprocess.run([sys.executable, "-c", code, str(f)], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stdout + r.stderr


def test_register_in_process() -> None:
    """``register`` adds a provider for an embedding program; every phase then sees it."""
    from triggerlang.api import compile_text
    from triggerlang.check.catalogue import CATALOGUE, get_source
    from triggerlang.providers import REGISTRY, get_provider, register
    from triggerlang.providers.base import Provider, webhook_event

    p = Provider(name="inproc", title="In-process", route="/inproc", doc="", events={"hit": ({}, "")},
                 normaliser=lambda name, body, headers: [webhook_event("inproc", name, body, headers, {})])
    register(p)
    try:
        assert get_provider("inproc") is p and get_source("inproc") is p.spec and "inproc" in CATALOGUE
        c = compile_text('action d = exec "true"\non inproc.hit run d\n')
        assert c.ok, c.diagnostics  # no verification scheme: nothing to warn about
        assert c.manifest["sources"]["http"]["routes"][0]["kind"] == "inproc"
    finally:
        REGISTRY.unregister("inproc")
