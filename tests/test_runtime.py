"""End to end: ``triggerc serve`` as a real subprocess, with real parts around it.

Each test writes a rules file in ``tmp_path``, starts ``triggerc serve FILE --state DIR
--port 0`` (uvicorn on a free loopback port), drives it with what a team would really
use (a bare repository and a clone that pushes to it, files written under a watched
folder, signed GitHub deliveries, ``triggerc emit``, a ``kill -9``), waits on conditions
with deadlines (the journal, read from outside with sqlite3, and files the actions
write), and stops the server with SIGTERM, asserting exit code 0 and no traceback.

Short sleeps happen inside the *actions* (``sleep 0.3``), never in the tests.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path
from typing import Any, Callable

import httpx
import pytest

from runtime_helpers import (DEADLINE, FINAL, RELOAD_INTERVAL, Server, Servers, alive, by_rule, cli, done, free_port, journal_events,
                             STOPPABLE, journal_runs, pid_in, post, stop_ok, wait_for)

PY = sys.executable
FIXTURES = Path(__file__).resolve().parents[2] / "shared" / "fixtures" / "webhooks"
GH_SECRET = "It's a Secret to Everybody"


# `serve(rules_text, *args, ...)`: the fixture is in conftest.py (the service tests use it too)


# =========================================================================== git

GIT_ENV = {
    **{k: v for k, v in os.environ.items() if not k.startswith("GIT_")},
    "GIT_AUTHOR_NAME": "Alice Example",
    "GIT_AUTHOR_EMAIL": "alice@example.com",
    "GIT_COMMITTER_NAME": "Alice Example",
    "GIT_COMMITTER_EMAIL": "alice@example.com",
    "GIT_CONFIG_GLOBAL": os.devnull,
    "GIT_CONFIG_NOSYSTEM": "1",
    "GIT_TERMINAL_PROMPT": "0",
}


def git(cwd: Path, *args: str, author: str | None = None) -> str:
    env = dict(GIT_ENV)
    if author:
        env["GIT_AUTHOR_NAME"] = author
        env["GIT_AUTHOR_EMAIL"] = author.split()[0].lower() + "@example.com"
    res = subprocess.run(["git", "-c", "init.defaultBranch=main", "-c", "commit.gpgsign=false",
                          "-c", "tag.gpgsign=false", *args], cwd=cwd, env=env, capture_output=True, text=True)
    assert res.returncode == 0, f"git {' '.join(args)} failed: {res.stderr}"
    return res.stdout.strip()


def commit(repo: Path, files: dict[str, str], message: str, author: str | None = None) -> str:
    for name, text in files.items():
        p = repo / name
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(text)
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", message, author=author)
    return git(repo, "rev-parse", "HEAD")


def test_git_pushes_to_a_bare_repository(tmp_path: Path, serve) -> None:
    bare = tmp_path / "remote.git"
    bare.mkdir()
    git(bare, "init", "-q", "--bare")
    clone = tmp_path / "clone"
    git(tmp_path, "clone", "-q", str(bare), str(clone))
    commit(clone, {"README.md": "hello\n"}, "initial")
    git(clone, "push", "-q", "origin", "HEAD:refs/heads/main")
    s = serve(f"""
action rec(sha, branch, author, files, forced) = exec "true"
action tagged(tag, sha) = exec "true"
pushed: on git.push repo="{bare}" branch="main" run rec with <sha>, <branch>, <author>, <files>, <forced>
created: on git.branch_created repo="{bare}" run rec with <sha>, <branch>, <author>, <files>, <forced>
tag: on git.tag repo="{bare}" run tagged with <tag>, <sha>
""")
    # a push of one commit to main
    sha1 = commit(clone, {"src/app.py": "print(1)\n", "docs/guide.md": "# guide\n"}, "add app", author="Bob Builder")
    git(clone, "push", "-q", "origin", "HEAD:main")
    runs = s.wait_runs(lambda rs: done(by_rule(rs, "pushed"), 1), "the run of the push")
    (run,) = by_rule(runs, "pushed")
    assert run["status"] == "succeeded"
    assert run["inputs"] == {"sha": sha1, "branch": "main", "author": "Bob Builder",
                             "files": ["docs/guide.md", "src/app.py"], "forced": False}

    # a new branch pushed
    git(clone, "checkout", "-q", "-b", "feature")
    sha2 = commit(clone, {"feature.txt": "f\n"}, "feature work")
    git(clone, "push", "-q", "origin", "feature")
    runs = s.wait_runs(lambda rs: done(by_rule(rs, "created"), 1), "the run of git.branch_created")
    (run,) = by_rule(runs, "created")
    assert run["inputs"]["branch"] == "feature" and run["inputs"]["sha"] == sha2
    assert run["inputs"]["files"] == ["feature.txt"]

    # a tag pushed
    git(clone, "tag", "v1.0.0")
    git(clone, "push", "-q", "origin", "v1.0.0")
    runs = s.wait_runs(lambda rs: done(by_rule(rs, "tag"), 1), "the run of git.tag")
    assert by_rule(runs, "tag")[0]["inputs"] == {"tag": "v1.0.0", "sha": sha2}

    # a forced push to main rewrites the commit pushed above
    git(clone, "checkout", "-q", "main")
    git(clone, "reset", "-q", "--hard", "HEAD~1")
    sha3 = commit(clone, {"other.txt": "o\n"}, "rewritten history")
    git(clone, "push", "-q", "--force", "origin", "HEAD:main")
    runs = s.wait_runs(lambda rs: done(by_rule(rs, "pushed"), 2), "the run of the forced push")
    forced = by_rule(runs, "pushed")[1]
    assert forced["inputs"]["sha"] == sha3 and forced["inputs"]["forced"] is True
    assert by_rule(runs, "pushed")[0]["inputs"]["forced"] is False
    assert len(by_rule(runs, "created")) == 1 and len(by_rule(runs, "tag")) == 1
    stop_ok(s)


def test_git_local_commit_and_merge_in_a_working_repository(tmp_path: Path, serve) -> None:
    work = tmp_path / "work"
    work.mkdir()
    git(work, "init", "-q")
    commit(work, {"README.md": "hello\n"}, "initial")
    s = serve(f"""
action rec(sha, message, commits) = exec "true"
pushed: on git.push repo="{work}" branch="main" run rec with <sha>, <message>, <commits>
merged: on git.merge repo="{work}" run rec with <sha>, <message>, <commits>
""")
    sha1 = commit(work, {"a.txt": "a\n"}, "local commit")
    runs = s.wait_runs(lambda rs: done(by_rule(rs, "pushed"), 1), "the run of the local commit")
    assert by_rule(runs, "pushed")[0]["inputs"] == {"sha": sha1, "message": "local commit", "commits": 1}
    assert not by_rule(runs, "merged")

    git(work, "checkout", "-q", "-b", "topic")
    commit(work, {"topic.txt": "t\n"}, "topic work")
    git(work, "checkout", "-q", "main")
    commit(work, {"b.txt": "b\n"}, "main moves on")
    runs = s.wait_runs(lambda rs: done(by_rule(rs, "pushed"), 2), "the run of the second commit on main")
    git(work, "merge", "-q", "--no-ff", "topic", "-m", "Merge topic")
    merge_sha = git(work, "rev-parse", "HEAD")
    runs = s.wait_runs(lambda rs: done(by_rule(rs, "merged"), 1) and done(by_rule(rs, "pushed"), 3),
                       "the runs of the merge commit")
    (merged,) = by_rule(runs, "merged")
    assert merged["inputs"] == {"sha": merge_sha, "message": "Merge topic", "commits": 2}
    assert by_rule(runs, "pushed")[2]["inputs"]["sha"] == merge_sha
    stop_ok(s)


# =========================================================================== files

def test_file_writes_make_one_debounced_run_and_state_and_git_are_ignored(tmp_path: Path, serve) -> None:
    proj = tmp_path / "proj"
    (proj / "src").mkdir(parents=True)
    (proj / "docs").mkdir()
    (proj / ".git").mkdir()
    # The action writes into the watched folder's state dir and .git/ only: if either
    # were watched, every run would start the next one.
    s = serve(r"""
action collect(paths) = shell "mkdir -p .triggerlang/scratch && date >> .triggerlang/scratch/out.txt && date >> .git/noise"
files: on file.changed path ~ "**" run collect with <paths> debounce 400ms
""", state=proj / ".triggerlang")
    written = ["src/a.py", "src/b.py", "docs/c.md", "top.txt", "deep/x/y.txt"]
    for rel in written:
        p = proj / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(rel)
    (proj / "src" / "a.py").write_text("again")  # a second change of the same path
    runs = s.wait_runs(lambda rs: done(rs, 1), "the debounced run")
    (run,) = runs
    assert run["status"] == "succeeded", run
    paths = run["inputs"]["paths"]
    assert set(written) <= set(paths), paths
    assert set(paths) <= set(written) | {"deep", "deep/x"}, paths  # folders created on the way
    assert len(paths) == len(set(paths))
    assert (proj / ".triggerlang" / "scratch" / "out.txt").exists()

    # After the run (and its writes) a new change makes exactly one more run, of that path only.
    (proj / "sentinel.txt").write_text("s")
    runs = s.wait_runs(lambda rs: done(rs, 2), "the run of the sentinel")
    assert len(runs) == 2 and runs[1]["inputs"]["paths"] == ["sentinel.txt"], runs
    for e in s.events():
        path = e["data"]["path"]
        assert not path.startswith((".triggerlang", ".git")), e
    stop_ok(s)
    assert len(journal_runs(s.state)) == 2


def test_a_burst_of_3000_files_makes_one_run_whose_paths_fit_and_cover_them(tmp_path: Path, serve) -> None:
    # A git checkout or an npm install writes thousands of files at once. The debounce
    # window gathered every path into <paths>: 3,000 of ~70 characters made a run whose
    # argv and TRG_INPUT_PATHS (~0.2 MB) killed the spawner, and would be over the 128 KiB
    # execve takes in one variable anyway; the run failed. <paths> now stays under 64 KiB:
    # past it, paths are folded into their folders, which hold every path that changed.
    proj = tmp_path / "proj"
    deep = proj / "src" / "some" / "fairly" / "long" / "folder" / "name" / "for" / "files"
    deep.mkdir(parents=True)
    (proj / "out").mkdir()
    s = serve(f"""
action collect(paths) = exec "{PY}" "-c" "import sys, json; json.dump(sys.argv[1:], open('out/args.json', 'w'))" paths
burst: on file.changed path ~ "src/**/*.py" run collect with <paths> debounce 1s
""")
    for i in range(3000):
        (deep / f"module_number_{i}.py").write_text(str(i))
    (proj / "src" / "lone.py").write_text("x")
    wait_for(lambda: len(s.events()) >= 3001, "the 3,001 files' events", 60)
    runs = s.wait_runs(lambda rs: done(rs, 1), "the runs of the burst", 60)
    assert all(r["status"] == "succeeded" for r in runs), [(r["status"], r.get("error")) for r in runs]
    for run in runs:  # one run, unless the writes paused longer than the debounce
        assert len(json.dumps(run["inputs"]["paths"], ensure_ascii=False).encode()) <= 64 * 1024
    assert json.loads((proj / "out" / "args.json").read_text()) == runs[-1]["inputs"]["paths"]
    folder = "src/some/fairly/long/folder/name/for/files"
    (folded,) = [r["inputs"]["paths"] for r in runs if {folder, "src/some", "src"} & set(r["inputs"]["paths"])]
    assert not [p for p in folded if p.startswith(folder + "/")], "a path under a listed folder"
    assert "src/lone.py" in [p for r in runs for p in r["inputs"]["paths"]]
    stop_ok(s)


# =========================================================================== http

GITHUB_RULES = """
secret gh = env "TRG_TEST_GH_SECRET"
source github path="/github" secret=gh
action rec(sha) = exec "true"
pushed: on github.push branch="master" run rec with <sha>
"""


def github_headers(event: str, body: bytes, secret: str = GH_SECRET, delivery: str | None = None) -> dict[str, str]:
    return {
        "User-Agent": "GitHub-Hookshot/044aadd",
        "Content-Type": "application/json",
        "X-GitHub-Event": event,
        "X-GitHub-Delivery": delivery or str(uuid.uuid4()),
        "X-Hub-Signature-256": "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest(),
    }


def test_github_webhook_signature_journal_before_202_and_redelivery(tmp_path: Path, serve) -> None:
    s = serve(GITHUB_RULES, env={"TRG_TEST_GH_SECRET": GH_SECRET})
    body = (FIXTURES / "github" / "push-plain.json").read_bytes()
    sha = json.loads(body)["after"]

    bad = httpx.post(s.url + "/github", content=body, headers=github_headers("push", body, secret="wrong"))
    assert bad.status_code == 401, bad.text
    assert s.events() == [] and s.runs() == []

    delivery = str(uuid.uuid4())
    r = httpx.post(s.url + "/github", content=body, headers=github_headers("push", body, delivery=delivery))
    assert r.status_code == 202, r.text
    answer = r.json()
    assert set(answer) == {"event_id", "runs"} and len(answer["runs"]) == 1
    # committed before the answer: read right away, from another process' point of view
    events = journal_events(s.state)
    assert [e["id"] for e in events] == [answer["event_id"]]
    assert events[0]["delivery_key"] == f"github:{delivery}" and events[0]["matched"] == ["pushed"]
    assert [r_["id"] for r_ in journal_runs(s.state)] == answer["runs"]

    again = httpx.post(s.url + "/github", content=body, headers=github_headers("push", body, delivery=delivery))
    assert again.status_code == 200 and again.json()["duplicate"] is True
    assert again.json()["event_id"] == answer["event_id"] and again.json()["runs"] == answer["runs"]
    runs = s.wait_runs(lambda rs: done(rs, 1), "the run")
    assert len(runs) == 1 and runs[0]["inputs"] == {"sha": sha} and runs[0]["status"] == "succeeded"
    assert len(s.events()) == 1

    ping = (FIXTURES / "github" / "ping.json").read_bytes()
    r = httpx.post(s.url + "/github", content=ping, headers=github_headers("ping", ping))
    assert r.status_code == 200 and r.json()["ok"] is True
    stop_ok(s)


def test_http_status_codes_and_healthz(tmp_path: Path, serve) -> None:
    s = serve(GITHUB_RULES, env={"TRG_TEST_GH_SECRET": GH_SECRET})
    assert httpx.get(s.url + "/healthz").status_code == 200
    assert httpx.post(s.url + "/nowhere", json={}).status_code == 404
    r = httpx.get(s.url + "/github")
    assert r.status_code == 405 and "POST" in r.headers.get("allow", "")
    # 413 is answered from Content-Length alone, before any of the body is read
    with socket.create_connection(("127.0.0.1", s.port), timeout=DEADLINE) as sock:
        sock.sendall(b"POST /github HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                     b"X-GitHub-Event: push\r\nContent-Length: 20000000\r\n\r\n")
        head = sock.recv(200).decode("latin-1")
    assert head.startswith("HTTP/1.1 413"), head
    r = httpx.post(s.url + "/github", content=b"{not json", headers=github_headers("push", b"{not json"))
    assert r.status_code == 400
    assert s.events() == [] and s.runs() == []
    stop_ok(s)


def test_headers_that_never_end_get_431_not_unbounded_memory(tmp_path: Path, serve) -> None:
    """httptools gathers a request's headers without a bound, before any signature can be
    checked: serve stops a client past 1 MiB of them with 431 and closes the connection,
    and a large but bounded head (64 KiB of headers, sent in pieces) is still served."""
    s = serve(GITHUB_RULES, env={"TRG_TEST_GH_SECRET": GH_SECRET})
    with socket.create_connection(("127.0.0.1", s.port), timeout=DEADLINE) as sock:
        sock.sendall(b"POST /github HTTP/1.1\r\nHost: x\r\nX-GitHub-Event: push\r\n")
        answer = b""
        try:
            for _ in range(64):  # up to 16 MiB, one 256 KiB header line after another
                sock.sendall(b"X-Padding: " + b"a" * (256 * 1024) + b"\r\n")
        except OSError:  # the server closed its side: its answer is waiting
            pass
        with contextlib.suppress(OSError):
            while chunk := sock.recv(65536):
                answer += chunk
    assert answer.startswith(b"HTTP/1.1 431 "), answer[:200]
    assert b"connection: close" in answer and b"over the limit of 1048576 bytes" in answer, answer
    # a head just over 1 MiB sent in one go, complete: the read that began it counts too
    # (it was left out, so up to a read's 256 KiB more got through)
    with socket.create_connection(("127.0.0.1", s.port), timeout=DEADLINE) as sock:
        answer = b""
        with contextlib.suppress(OSError):
            sock.sendall(b"POST /github HTTP/1.1\r\nHost: x\r\nX-Padding: " + b"a" * (1024 * 1024 + 1000)
                         + b"\r\nContent-Length: 2\r\n\r\n{}")
        with contextlib.suppress(OSError):
            while chunk := sock.recv(65536):
                answer += chunk
    assert answer.startswith(b"HTTP/1.1 431 "), answer[:200]
    body = b'{"ref":"refs/heads/x","after":"' + b"1" * 40 + b'"}'
    head = b"".join(b"X-Pad-%d: %s\r\n" % (i, b"b" * 1000) for i in range(64))
    with socket.create_connection(("127.0.0.1", s.port), timeout=DEADLINE) as sock:
        sock.sendall(b"POST /github HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n")
        for i in range(0, len(head), 4096):
            sock.sendall(head[i:i + 4096])
        signed = github_headers("push", body)
        sock.sendall(b"".join(f"{k}: {v}\r\n".encode() for k, v in signed.items() if k != "Content-Type")
                     + b"Content-Length: %d\r\nConnection: close\r\n\r\n" % len(body) + body)
        reply = sock.makefile("rb").read()
    assert reply.startswith(b"HTTP/1.1 202 "), reply[:200]
    assert "431 its headers are over 1048576 bytes" in s.log()
    stop_ok(s)


def test_emit_to_serve_with_http_flag_and_to_a_dead_port(tmp_path: Path, serve) -> None:
    # emit is what a git hook calls: a rule on git.push fed by `triggerc emit`, with
    # `serve --http` because no rule needs the HTTP listener by itself.
    hooked = tmp_path / "proj" / "hooked.git"
    hooked.mkdir(parents=True)
    git(hooked, "init", "-q", "--bare")
    s = serve("""
action rec(sha) = exec "true"
deploy: on git.push repo="hooked.git" branch="main" run rec with <sha>
""", "--http")
    r = cli("emit", "git.push", "repo=hooked.git", "branch=main", "sha=abc123", "--id", "hook-1", "--url", s.url)
    assert r.returncode == 0, r.stderr
    assert r.stdout == "accepted hook-1: 1 run(s) [1]\n", r.stdout
    runs = s.wait_runs(lambda rs: done(rs, 1), "the emitted run")
    assert runs[0]["inputs"] == {"sha": "abc123"} and runs[0]["status"] == "succeeded"
    # the same --id again (a retrying hook) creates nothing new
    r = cli("emit", "git.push", "repo=hooked.git", "branch=main", "sha=abc123", "--id", "hook-1", "--url", s.url)
    assert r.returncode == 0, r.stderr
    assert r.stdout == "already accepted hook-1: nothing new, its run(s) [1]\n", r.stdout
    assert len(s.events()) == 1 and len(s.runs()) == 1
    assert r.stderr == ""  # a type the catalogue knows: no warning
    # an event git does not have: no rule can listen to it, so a usage error with a
    # suggestion, and nothing is sent (a provider's unknown event is still sent: test_cli)
    r = cli("emit", "git.pushh", "branch=main", "--url", s.url)
    assert (r.returncode, r.stdout) == (2, ""), r.stderr
    assert r.stderr == "triggerc: error: git.pushh: git has no event 'pushh' (did you mean 'push'?)\n"
    assert len(s.events()) == 1
    stop_ok(s)

    dead = cli("emit", "git.push", "branch=main", "--url", f"http://127.0.0.1:{free_port()}", "--timeout", "5")
    assert dead.returncode == 1
    assert "cannot reach http://127.0.0.1:" in dead.stderr and "refused" in dead.stderr.lower(), dead.stderr
    assert "Traceback" not in dead.stderr and len(dead.stderr.strip().splitlines()) == 1


def test_an_emitted_file_event_that_names_its_path_matches_as_a_real_change(tmp_path: Path, serve) -> None:
    # `triggerc emit file.modified path=app.py` (to start a dev server's rule at once, as
    # watchexec runs its command at start) gave the event no name, ext or change: a rule
    # on `ext in ["py"]` never matched it. They follow from the path, as the watcher's do.
    s = serve("""
action app(paths, name, change) = exec "true"
app: on file.changed ext in ["py", "toml"] change != "deleted" run app with <paths>, <name>, <change> busy restart
hook: on http.request path="/x" method="POST" run app with <path>, <method>, ""
""", "--http")
    r = cli("emit", "file.modified", "path=src/app.py", "--url", s.url)
    assert r.returncode == 0 and r.stdout.endswith("1 run(s) [1]\n"), (r.stdout, r.stderr)
    runs = s.wait_runs(lambda rs: done(rs, 1), "the emitted run")
    assert runs[0]["inputs"] == {"paths": ["src/app.py"], "name": "app.py", "change": "modified"}, runs
    # an emitted http.post names its method as the HTTP source's events do (it had none:
    # a rule on method="POST" did not match it)
    r = cli("emit", "http.post", "path=/x", "--url", s.url)
    assert r.returncode == 0 and r.stdout.endswith("1 run(s) [2]\n"), (r.stdout, r.stderr)
    runs = s.wait_runs(lambda rs: done(rs, 2), "the emitted http run")
    assert [r["inputs"] for r in runs if r["rule"] == "hook"] == [{"paths": "/x", "name": "POST", "change": ""}]
    # file.changed is the rules' trigger, no event's type: such an event was journaled and
    # matched nothing (a rule test's given reads it as modified); emit and POST /events
    # now refuse it, saying what to send, and journal nothing
    r = cli("emit", "file.changed", "path=src/app.py", "--url", s.url)
    assert r.returncode == 2 and "file.changed is a trigger, not an event's type" in r.stderr, r.stderr
    answer = httpx.post(s.url + "/events", json={"source": "file", "type": "changed", "data": {"path": "a.py"}},
                        timeout=DEADLINE)
    assert answer.status_code == 400 and "file.created, file.modified or file.deleted" in answer.json()["error"]
    # nor does it journal a file.modified whose change says created (emit refuses it too)
    answer = httpx.post(s.url + "/events", json={"source": "file", "type": "modified",
                                                 "data": {"path": "a.py", "change": "created"}}, timeout=DEADLINE)
    assert answer.status_code == 400, answer.text
    assert answer.json()["error"] == 'invalid event: a file.modified event has change="modified", not "created"'
    # nor an http.post whose method says GET
    answer = httpx.post(s.url + "/events", json={"source": "http", "type": "post", "data": {"method": "GET"}},
                        timeout=DEADLINE)
    assert answer.status_code == 400, answer.text
    assert answer.json()["error"] == 'invalid event: an http.post event has method="POST", not "GET"'
    assert len(s.events()) == 2
    stop_ok(s)


def test_start_runs_a_rule_at_once_and_a_change_restarts_it(tmp_path: Path, serve) -> None:
    # watchexec -r (and nodemon) start the server at once and restart it on a change;
    # `serve --start app` runs the rule when serve starts, with its event serve.started.
    s = serve(f"""
action app(paths) = exec "{PY}" "-c" "import time; time.sleep(60)" paths
app: on file.changed ext="py" run app with <paths> busy restart
""", "--start", "app", "--grace", "0.5")  # (the second app is going at the stop)
    runs = s.wait_runs(lambda rs: len(rs) == 1 and rs[0]["status"] == "running", "the run started with serve")
    assert runs[0]["inputs"] == {"paths": []}
    (started,) = s.events()
    assert (started["source"], started["type"], started["data"]) == ("serve", "started", {"rule": "app", "paths": []})
    (tmp_path / "proj" / "app.py").write_text("x = 1\n")
    runs = s.wait_runs(lambda rs: len(rs) == 2 and rs[0]["status"] == "cancelled" and rs[1]["status"] == "running",
                       "the first run cancelled, the second going")
    assert runs[1]["inputs"] == {"paths": ["app.py"]}
    assert "run 1 of app: started with serve (--start)" in s.log()
    stop_ok(s)


def test_start_names_a_rule_that_is_not_there_or_comes_with_a_store(tmp_path: Path) -> None:
    rules = tmp_path / "rules.trg"
    rules.write_text('action a = exec "true"\napp: on file.changed run a\n')
    r = cli("serve", str(rules), "--start", "apq", "--state", str(tmp_path / "state"))
    assert r.returncode == 1 and f"--start apq: {rules} has no rule apq (rules: app)" in r.stderr, r.stderr
    assert "Traceback" not in r.stderr
    r = cli("serve", str(rules), "--start", "app", "--store", "postgresql://u@127.0.0.1/db")
    assert r.returncode == 2 and "--start is for the SQLite journal" in r.stderr, r.stderr


@pytest.mark.parametrize("url", ["localhost:8080", "nonsense", "http://[::1", "ftp://127.0.0.1:8080", "http://"])
def test_emit_rerun_and_cancel_refuse_a_url_that_is_not_http(url: str) -> None:
    """--url (or TRIGGERLANG_URL) without http:// is a usage error (exit 2) that says what
    to write, not a traceback nor a 'cannot reach ... is serve running?'."""
    for args in (["emit", "git.push", "branch=main"], ["rerun", "1", "--token", "t"], ["cancel", "1", "--token", "t"]):
        r = cli(*args, "--url", url)
        assert r.returncode == 2 and "Traceback" not in r.stderr, (args, r.stderr)
        assert f"--url {url!r} is not an http:// or https:// URL" in r.stderr, (args, r.stderr)


# =========================================================================== actions

DUMP = """#!{python}
import json, os, sys
print("hello on stdout", flush=True)
print("hello on stderr", file=sys.stderr, flush=True)
data = {{"argv": sys.argv[1:], "cwd": os.getcwd(), "stdin": sys.stdin.read(),
        "env": {{k: v for k, v in os.environ.items() if k.startswith("TRG_") or k == "INHERITED"}}}}
with open("dump-" + os.environ["TRG_RUN_ID"] + ".json", "w") as f:
    json.dump(data, f)
"""


def test_actions_exec_and_shell_get_inputs_verbatim_env_stdin_cwd_and_log(tmp_path: Path, serve) -> None:
    proj = tmp_path / "proj"
    work = proj / "work"
    (work / "x").mkdir(parents=True)
    (proj / "x").mkdir()
    dump = proj / "dump.py"
    dump.write_text(DUMP.format(python=PY))
    dump.chmod(0o755)
    s = serve(r"""
action argv(a, b, c, d) = exec "./dump.py" a b c d cwd "work"
action sh(a, b) = shell "printf '%s|%s' \"$TRG_INPUT_A\" \"$TRG_INPUT_B\" > shell-$TRG_RUN_ID.txt; cat > stdin-$TRG_RUN_ID.json"
    cwd "work"
exec_rule: on http.post path="/act" run argv with <payload.a>, <payload.b>, <payload.c>, <payload.d>
shell_rule: on http.post path="/act" run sh with <payload.a>, <payload.d>
""", env={"INHERITED": "from serve"})
    payload = {"a": "$(touch pwned)", "b": "`id`", "c": "a; rm -rf x", "d": "line\nbreak"}
    before = sorted(p.name for p in work.iterdir()), sorted(p.name for p in proj.iterdir())
    r = post(s, "/act", payload)
    assert r.status_code == 202, r.text
    event_id = r.json()["event_id"]
    runs = s.wait_runs(lambda rs: done(rs, 2), "both runs")
    ex, sh = by_rule(runs, "exec_rule")[0], by_rule(runs, "shell_rule")[0]
    assert ex["status"] == "succeeded" and sh["status"] == "succeeded", runs

    got = json.loads((work / f"dump-{ex['id']}.json").read_text())
    assert got["argv"] == ["$(touch pwned)", "`id`", "a; rm -rf x", "line\nbreak"]
    assert got["cwd"] == str(work)  # cwd "work" is relative to the rules file
    assert re.fullmatch(r"[0-9a-f]{16}", got["env"].pop("TRG_SERVE_ID")), got["env"]   # (this serve's, random)
    assert got["env"] == {
        "TRG_RUN_ID": str(ex["id"]), "TRG_RULE": "exec_rule", "TRG_EVENT_ID": event_id,
        "TRG_EVENT_SOURCE": "http", "TRG_EVENT_TYPE": "post", "INHERITED": "from serve",
        "TRG_INPUT_A": "$(touch pwned)", "TRG_INPUT_B": "`id`", "TRG_INPUT_C": "a; rm -rf x",
        "TRG_INPUT_D": "line\nbreak",
    }
    stdin = json.loads(got["stdin"])
    assert stdin["id"] == event_id and stdin["source"] == "http" and stdin["type"] == "post"
    assert stdin["data"]["payload"] == payload and stdin["data"]["path"] == "/act"

    # the shell got the values only through TRG_INPUT_*: printed verbatim, never run
    assert (work / f"shell-{sh['id']}.txt").read_text() == "$(touch pwned)|line\nbreak"
    assert json.loads((work / f"stdin-{sh['id']}.json").read_text())["id"] == event_id
    after_work = sorted(p.name for p in work.iterdir())
    assert after_work == sorted(before[0] + [f"dump-{ex['id']}.json", f"shell-{sh['id']}.txt",
                                             f"stdin-{sh['id']}.json"])
    assert sorted(p.name for p in proj.iterdir()) == before[1]
    assert (work / "x").is_dir() and (proj / "x").is_dir()

    log = (s.state / "logs" / f"{ex['id']}.log").read_text()
    assert "hello on stdout" in log and "hello on stderr" in log
    assert f"# run {ex['id']} succeeded (exit code 0)" in log
    stop_ok(s)


# =========================================================================== policies

POLICY_RULES = r"""
action nap(n, s) = shell "sleep \"$TRG_INPUT_S\""
action rec(n) = exec "true"
q: on http.post path="/queue" run nap with <payload.n>, <payload.s> busy queue
sk: on http.post path="/skip" run nap with <payload.n>, <payload.s> busy skip
rs: on http.post path="/restart" run nap with <payload.n>, <payload.s> busy restart
par: on http.post path="/parallel" run nap with <payload.n>, <payload.s> busy parallel
dd: on http.post path="/dedupe" run rec with <payload.k> dedupe <payload.k> for 1h
db: on http.post path="/debounce" run rec with <payload.n> debounce 400ms
"""


def test_busy_queue_runs_one_after_another_in_order(serve) -> None:
    s = serve(POLICY_RULES)
    ids = [post(s, "/queue", {"n": n, "s": "0.3"}).json()["runs"][0] for n in range(1, 4)]
    runs = s.wait_runs(lambda rs: done(rs, 3), "three queued runs")
    assert [r["id"] for r in runs] == ids
    assert [r["inputs"]["n"] for r in sorted(runs, key=lambda r: r["started_at"])] == [1, 2, 3]
    assert all(r["status"] == "succeeded" for r in runs)
    for prev, nxt in zip(runs, runs[1:]):
        assert nxt["started_at"] >= prev["finished_at"], (prev, nxt)
    stop_ok(s)


def test_busy_skip_records_the_second_as_skipped(serve) -> None:
    s = serve(POLICY_RULES)
    first = post(s, "/skip", {"n": 1, "s": "1"}).json()["runs"][0]
    second = post(s, "/skip", {"n": 2, "s": "0"}).json()["runs"][0]
    runs = s.wait_runs(lambda rs: done(rs, 2), "both runs final")
    status = {r["id"]: r for r in runs}
    assert status[first]["status"] == "succeeded"
    assert status[second]["status"] == "skipped" and "busy skip" in status[second]["error"]
    stop_ok(s)


def test_busy_restart_cancels_the_running_one(serve) -> None:
    s = serve(POLICY_RULES)
    # back to back on one keep-alive connection: the second often arrives while the
    # first is still starting (regression: it then ran to its end)
    with httpx.Client(base_url=s.url, timeout=DEADLINE) as c:
        for _ in range(3):
            first = c.post("/restart", json={"n": 1, "s": "30"}).json()["runs"][0]
            second = c.post("/restart", json={"n": 2, "s": "0.1"}).json()["runs"][0]
            runs = s.wait_runs(lambda rs: done(rs, second), "both runs final", timeout=15)
            status = {r["id"]: r["status"] for r in runs}
            assert (status[first], status[second]) == ("cancelled", "succeeded"), runs
        # and when the first one is well under way
        third = c.post("/restart", json={"n": 3, "s": "30"}).json()["runs"][0]
        s.wait_runs(lambda rs: any(r["id"] == third and r["status"] == "running" for r in rs), "the third to run")
        fourth = c.post("/restart", json={"n": 4, "s": "0.1"}).json()["runs"][0]
    runs = s.wait_runs(lambda rs: done(rs, fourth), "the last two runs final", timeout=15)
    status = {r["id"]: r["status"] for r in runs}
    assert status[third] == "cancelled" and status[fourth] == "succeeded", runs
    stop_ok(s)


def test_busy_restart_stops_with_the_actions_stop_signal(serve, tmp_path: Path) -> None:
    # `stop SIGINT grace 30s` (watchexec -r --stop-signal SIGINT --stop-timeout 30s): the
    # restart sends the running app SIGINT, on which it shuts down (0.2 s here, under the
    # 30 s grace) writing the signal's name; without the option it got SIGTERM
    prog = tmp_path / "app.py"
    prog.write_text(STOPPABLE)
    s = serve(f"""
action app(got, ready) = exec {json.dumps(sys.executable)} {json.dumps(str(prog))} got ready stop SIGINT grace 30s
app: on http.post path="/app" run app with <payload.got>, <payload.ready> busy restart
""", "--grace", "0.1")
    got, ready = tmp_path / "got1", tmp_path / "ready1"
    first = post(s, "/app", {"got": str(got), "ready": str(ready)}).json()["runs"][0]
    wait_for(ready.exists, "the app's handlers")
    second = post(s, "/app", {"got": str(tmp_path / "got2"), "ready": str(tmp_path / "ready2")}).json()["runs"][0]
    runs = s.wait_runs(lambda rs: any(r["id"] == first and r["status"] == "cancelled" for r in rs),
                       "the first app stopped")
    assert got.exists() and got.read_text() == "SIGINT", runs
    assert any(r["id"] == second for r in runs)
    stop_ok(s)


SIGNALLED = """
import signal, sys, time
def got(n, f):
    with open(sys.argv[1], "a") as out:
        out.write(signal.Signals(n).name + "\\n")
    print("reloading on", signal.Signals(n).name, flush=True)
signal.signal(signal.SIGHUP, got)
open(sys.argv[2], "w").close()
while True:
    time.sleep(0.05)
"""
"""A server that reloads on SIGHUP: writes a line per signal it got (argv[1]), once its
handler is in place (argv[2])."""


def test_busy_signal_sends_the_running_run_its_signal_instead_of_starting_another(serve, tmp_path: Path) -> None:
    # watchexec -s SIGHUP (--on-busy-update=signal): the app started with serve (none was
    # going, so it starts as busy queue would); three files written back to back are one
    # debounce window, so one event gets one SIGHUP to the app, which goes on; the run of
    # that window is recorded skipped, naming the run signalled and the signal
    prog, got, ready = tmp_path / "app.py", tmp_path / "got", tmp_path / "ready"
    prog.write_text(SIGNALLED)
    (tmp_path / "proj" / "conf").mkdir(parents=True)
    s = serve(f"""
action app = exec {json.dumps(PY)} {json.dumps(str(prog))} {json.dumps(str(got))} {json.dumps(str(ready))}
app: on file.changed path ~ "conf/**" run app busy signal hup debounce 300ms
""", "--start", "app", "--grace", "0.1")
    wait_for(ready.exists, "the app's handler")
    for name in ("a.conf", "b.conf", "c.conf"):
        (tmp_path / "proj" / "conf" / name).write_text("x\n")
    runs = s.wait_runs(lambda rs: len(rs) == 2 and rs[1]["status"] == "skipped", "the window's run skipped")
    wait_for(lambda: got.exists() and got.read_text() == "SIGHUP\n", "the app to get SIGHUP")
    first, second = runs
    assert first["status"] == "running" and second["error"] == f"busy signal: sent SIGHUP to run {first['id']}, still going"
    assert f"run {first['id']} of app: sent SIGHUP (busy signal) instead of run {second['id']}" in s.log()
    # the note comes before what the app wrote on getting the signal, each on its own line
    note = f"# run {first['id']} sent SIGHUP (busy signal), instead of starting run {second['id']}"
    wait_for(lambda: "reloading on SIGHUP" in (s.state / "logs" / f"{first['id']}.log").read_text(), "the app's line")
    log = [line.lstrip("\x01") for line in (s.state / "logs" / f"{first['id']}.log").read_text().splitlines()]
    assert log.index(note) < log.index("reloading on SIGHUP"), log  # (\x01 marks triggerlang's own lines)
    # every change is journaled, as always
    assert {e["data"]["path"] for e in s.events() if e["source"] == "file"} == {"conf/a.conf", "conf/b.conf",
                                                                                 "conf/c.conf"}
    stop_ok(s)
    assert got.read_text() == "SIGHUP\n"  # (the stop's SIGTERM is not counted: the app does not trap it)


def test_busy_signal_is_refused_in_store_mode_before_the_store_is_opened(tmp_path: Path) -> None:
    # the running run may be on another machine's worker, which an ingest node cannot signal
    rules = tmp_path / "rules.trg"
    rules.write_text('action a = exec "true"\napp: on file.changed run a busy signal SIGHUP\n')
    r = cli("serve", str(rules), "--store", "postgresql://u@127.0.0.1:1/db")
    assert r.returncode == 1 and "Traceback" not in r.stderr, r.stderr
    assert "busy signal (rule app) does not work with --store" in r.stderr, r.stderr


def test_busy_parallel_runs_overlap(serve) -> None:
    s = serve(POLICY_RULES)
    for n in range(3):
        post(s, "/parallel", {"n": n, "s": "1"})
    runs = s.wait_runs(lambda rs: done(rs, 3), "three parallel runs")
    assert all(r["status"] == "succeeded" for r in runs)
    assert max(r["started_at"] for r in runs) < min(r["finished_at"] for r in runs), runs
    stop_ok(s)


def test_timeout_kills_the_whole_process_group(tmp_path: Path, serve) -> None:
    s = serve("""
action hang = shell "sleep 30 & echo $! > grandchild.pid; wait"
slow: on http.post path="/slow" run hang timeout 500ms
""")
    post(s, "/slow", {})
    runs = s.wait_runs(lambda rs: done(rs, 1), "the run to time out")
    assert runs[0]["status"] == "timed_out" and runs[0]["exit_code"] == 128 + signal.SIGTERM, runs
    assert 0.4 < runs[0]["finished_at"] - runs[0]["started_at"] < 10
    pid = pid_in(tmp_path / "proj" / "grandchild.pid")
    wait_for(lambda: not alive(pid), f"the grandchild {pid} to be gone")
    stop_ok(s)


def test_retry_with_backoff_records_every_attempt(tmp_path: Path, serve) -> None:
    s = serve(r"""
action flaky = shell "n=$(cat count 2>/dev/null || echo 0); n=$((n+1)); echo $n > count; [ $n -ge 3 ]"
action broken = shell "exit 7"
flaky: on http.post path="/flaky" run flaky retry 3 backoff 100ms
broken: on http.post path="/broken" run broken retry 1 backoff 100ms
""")
    post(s, "/flaky", {})
    post(s, "/broken", {})
    runs = s.wait_runs(lambda rs: done(by_rule(rs, "flaky"), 3) and done(by_rule(rs, "broken"), 2),
                       "every attempt")
    flaky = by_rule(runs, "flaky")
    assert [(r["attempt"], r["status"]) for r in flaky] == [(1, "failed"), (2, "failed"), (3, "succeeded")]
    assert len({r["event_id"] for r in flaky}) == 1
    # backoff D, then 2D: each attempt starts no earlier than that after the previous ended
    assert flaky[1]["started_at"] - flaky[0]["finished_at"] >= 0.09
    assert flaky[2]["started_at"] - flaky[1]["finished_at"] >= 0.19
    broken = by_rule(runs, "broken")
    assert [(r["attempt"], r["status"], r["exit_code"]) for r in broken] == [(1, "failed", 7), (2, "failed", 7)]
    stop_ok(s)
    assert len(journal_runs(s.state)) == 5  # no attempt beyond the limit


def test_dedupe_skips_a_key_already_run(serve) -> None:
    s = serve(POLICY_RULES)
    ids = [post(s, "/dedupe", {"k": k}).json()["runs"][0] for k in ("a", "a", "b")]
    runs = s.wait_runs(lambda rs: done(rs, 3), "three runs final")
    status = {r["id"]: r for r in runs}
    assert [status[i]["status"] for i in ids] == ["succeeded", "skipped", "succeeded"]
    assert "dedupe" in status[ids[1]]["error"]
    stop_ok(s)


def test_debounce_runs_once_with_the_last_event(serve) -> None:
    s = serve(POLICY_RULES)
    answers = [post(s, "/debounce", {"n": n}).json() for n in range(1, 4)]
    runs = s.wait_runs(lambda rs: done(rs, 1), "the debounced run")
    (run,) = runs
    assert run["inputs"] == {"n": 3} and run["event_id"] == answers[-1]["event_id"]
    assert run["started_at"] >= run["queued_at"] + 0.35
    assert all(e["matched"] == ["db"] for e in s.events())
    stop_ok(s)
    assert len(journal_runs(s.state)) == 1


def test_run_completed_and_run_failed_chain_rules(serve) -> None:
    s = serve("""
action good = exec "true"
action bad = shell "exit 3"
action rec(rule, status, code) = exec "true"
ok: on http.post path="/chain" run good
ko: on http.post path="/chain" run bad
after_ok: on run.completed rule="ok" run rec with <rule>, <status>, <exit_code>
after_ko: on run.failed rule="ko" run rec with <rule>, <status>, <exit_code>
""")
    post(s, "/chain", {})
    runs = s.wait_runs(lambda rs: done(by_rule(rs, "after_ok"), 1) and done(by_rule(rs, "after_ko"), 1),
                       "the chained runs")
    assert by_rule(runs, "after_ok")[0]["inputs"] == {"rule": "ok", "status": "succeeded", "code": 0}
    assert by_rule(runs, "after_ko")[0]["inputs"] == {"rule": "ko", "status": "failed", "code": 3}
    assert {f"{e['source']}.{e['type']}" for e in s.events()} == {"http.post", "run.completed", "run.failed"}
    stop_ok(s)


# =========================================================================== durability

def test_kill_9_in_the_middle_of_a_queue(tmp_path: Path, serve) -> None:
    rules = r"""
action nap(n) = shell "sleep 1"
retried: on http.post path="/retried" run nap with <payload.n> retry 1 backoff 100ms
plain: on http.post path="/plain" run nap with <payload.n>
ingest: on http.post path="/ingest" payload.never="x" run nap with <payload.n>
action rec(n) = exec "true"
deb: on http.post path="/deb" run rec with <payload.n> debounce 3s
"""
    s = serve(rules)
    for n in range(1, 4):
        assert post(s, "/retried", {"n": n}).status_code == 202
        assert post(s, "/plain", {"n": n}).status_code == 202
    for n in range(1, 3):  # a debounce window still open when the server dies
        assert post(s, "/deb", {"n": n}).status_code == 202

    # a steady stream of webhooks while the server dies
    accepted: list[str] = []
    stop_hammer = threading.Event()

    def hammer() -> None:
        with httpx.Client(base_url=s.url, timeout=5) as c:
            while not stop_hammer.is_set():
                try:
                    r = c.post("/ingest", json={"n": len(accepted)})
                except httpx.HTTPError:
                    return  # the server is gone
                if r.status_code == 202:
                    accepted.append(r.json()["event_id"])

    t = threading.Thread(target=hammer, daemon=True)
    t.start()
    s.wait_runs(lambda rs: {r["rule"] for r in rs if r["status"] == "running"} == {"retried", "plain"},
                "the first run of each rule to be running")
    wait_for(lambda: len(accepted) >= 20, "some webhooks accepted")
    s.kill9()
    stop_hammer.set()
    t.join(DEADLINE)
    # every 202 was committed before it was sent
    journaled = {e["id"] for e in journal_events(s.state)}
    assert set(accepted) <= journaled, set(accepted) - journaled
    before = {r["id"]: r for r in journal_runs(s.state)}
    running = {r["rule"]: r["id"] for r in before.values() if r["status"] == "running"}
    assert set(running) == {"retried", "plain"}

    s2 = serve(None)  # same rules file, same --state
    s2.wait_log("recovered: 2 run(s) left running by a serve that stopped without ending them (killed or crashed")
    runs = s2.wait_runs(lambda rs: done(rs, 8), "every run after the restart", timeout=30)
    by_id = {r["id"]: r for r in runs}
    assert by_id[running["retried"]]["status"] == "interrupted"
    assert by_id[running["plain"]]["status"] == "interrupted"
    retried = by_rule(runs, "retried")
    again = [r for r in retried if r["attempt"] == 2]
    assert len(again) == 1 and again[0]["status"] == "succeeded"
    assert again[0]["event_id"] == by_id[running["retried"]]["event_id"]
    assert [r["status"] for r in retried if r["attempt"] == 1 and r["id"] != running["retried"]] == \
        ["succeeded", "succeeded"]
    plain = by_rule(runs, "plain")
    assert len(plain) == 3 and sorted(r["status"] for r in plain) == ["interrupted", "succeeded", "succeeded"]
    deb = by_rule(runs, "deb")
    assert [(r["status"], r["inputs"]) for r in deb] == [("succeeded", {"n": 2})]
    stop_ok(s2)


# SIGHUP (a reload, or a stop when it is the terminal closing): tests/test_service.py


def test_the_serve_fixture_kills_the_runs_of_a_serve_killed_with_sigkill(tmp_path: Path) -> None:
    """The ``serve`` fixture's teardown (Servers.close) kills what serve started. Before: it
    killed serve alone, and a run (a process group of its own) outlived a serve killed with
    SIGKILL and the test: here a shell and its ``sleep 30``, which ignore the action's stop
    signal, so the spawner's SIGKILL comes only after the 30 s grace."""
    pids, script = tmp_path / "pids", tmp_path / "hold.sh"
    script.write_text(f"trap '' INT\nsleep 30 &\necho $$ $! > {pids}.new && mv {pids}.new {pids}\nwait\n")
    servers = Servers(tmp_path)
    try:
        s = servers(f"""
action hold = exec "sh" "{script}" stop SIGINT grace 30s
hold: on file.changed ext="py" run hold
""", "--start", "hold")
        wait_for(pids.exists, "the run to write its pids", on_fail=s.tail)
        shell, sleep = map(int, pids.read_text().split())
        s.kill9()
        assert alive(shell) and alive(sleep)   # what serve left
    finally:
        servers.close()
    assert not alive(shell) and not alive(sleep)


def test_a_run_a_graceful_stop_interrupted_is_retried_at_the_next_start_if_its_rule_retries(serve) -> None:
    # as a run a crash interrupted is: a new attempt, started by the next serve
    rules = """
action nap(s) = exec "sleep" s
n: on http.post path="/n" run nap with <payload.s> retry 1 backoff 1s
"""
    s = serve(rules, "--grace", "0.5")
    first = post(s, "/n", {"s": "30"}).json()["runs"][0]
    s.wait_runs(lambda rs: rs and rs[0]["status"] == "running", "the run to start")
    stop_ok(s)
    runs = journal_runs(s.state)
    assert [(r["id"] == first, r["status"], r["attempt"]) for r in runs] == [(True, "interrupted", 1),
                                                                           (False, "queued", 2)], runs
    s2 = serve(None, "--grace", "0.5")
    s2.wait_log("1 queued run(s) restarted")
    s2.wait_runs(lambda rs: rs[-1]["status"] == "running" and rs[-1]["attempt"] == 2, "the second attempt to run")
    stop_ok(s2)


def test_the_log_of_a_run_a_stop_interrupted_says_interrupted(serve) -> None:
    # its status is `interrupted`: its log's last line says the same, not `cancelled`
    s = serve(POLICY_RULES, "--grace", "0.5")
    rid = post(s, "/queue", {"n": 1, "s": "30"}).json()["runs"][0]
    s.wait_runs(lambda rs: rs and rs[0]["status"] == "running", "the run to start")
    stop_ok(s)
    assert [r["status"] for r in journal_runs(s.state)] == ["interrupted"]
    last = (s.state / "logs" / f"{rid}.log").read_text().splitlines()[-1].lstrip("\x01")  # a line of its own
    assert last.startswith(f"# run {rid} interrupted (exit code "), last


def test_sigterm_interrupts_the_running_run_and_keeps_the_queue(serve) -> None:
    s = serve(POLICY_RULES, "--grace", "0.5")
    ids = [post(s, "/queue", {"n": n, "s": sec}).json()["runs"][0] for n, sec in ((1, "30"), (2, "0.1"), (3, "0.1"))]
    s.wait_runs(lambda rs: rs and rs[0]["status"] == "running", "the first run to start")
    stop_ok(s)
    status = {r["id"]: r["status"] for r in journal_runs(s.state)}
    assert [status[i] for i in ids] == ["interrupted", "queued", "queued"]
    assert "the runtime stopped while the run was going" in journal_runs(s.state)[0]["error"]

    s2 = serve(None, "--grace", "0.5")
    s2.wait_log("recovered: 0 run(s) left running, 2 queued run(s) restarted")
    runs = s2.wait_runs(lambda rs: done(rs, 3), "the queued runs after the restart")
    assert [r["status"] for r in runs] == ["interrupted", "succeeded", "succeeded"]
    assert runs[1]["finished_at"] <= runs[2]["started_at"]  # still in order
    stop_ok(s2)


def test_a_queued_run_whose_rule_is_gone_at_the_next_start_is_cancelled_and_the_log_says_so(serve) -> None:
    s = serve(POLICY_RULES, "--grace", "0.5")
    ids = [post(s, "/queue", {"n": n, "s": sec}).json()["runs"][0] for n, sec in ((1, "30"), (2, "0.1"))]
    s.wait_runs(lambda rs: rs and rs[0]["status"] == "running", "the first run to start")
    stop_ok(s)
    # the rules change while serve is down: q is gone
    s2 = serve(POLICY_RULES.replace('q: on http.post path="/queue"', '# q: on http.post path="/queue"'),
               "--grace", "0.5")
    s2.wait_log("recovered: 0 run(s) left running, 0 queued run(s) restarted, 1 cancelled: "
                "their rule is no longer in the rules file (q)")
    status = {r["id"]: (r["status"], r["error"]) for r in journal_runs(s2.state)}
    assert status[ids[1]] == ("cancelled", "its rule is no longer in the rules file"), status
    stop_ok(s2)


def test_a_reload_that_removes_a_rule_cancels_its_waiting_runs_as_a_restart_would(tmp_path: Path, serve) -> None:
    # the removed rule's queued run and debounced run are cancelled, naming the reload; its
    # running run goes on to its end; a rule the reload keeps keeps its queue
    go = tmp_path / "go"
    rules = f"""
action gate(n) = shell "until [ -e '{go}' ]; do sleep 0.02; done"
action rec(n) = exec "true"
q: on http.post path="/q" run gate with <payload.n> busy queue
db: on http.post path="/db" run rec with <payload.n> debounce 1h
keep: on http.post path="/keep" run gate with <payload.n> busy queue
"""
    s = serve(rules, "--no-reload", "--grace", "0.5")
    ids = [post(s, path, {"n": n}).json()["runs"][0] for path, n in (("/q", 1), ("/q", 2), ("/db", 3),
                                                                     ("/keep", 4), ("/keep", 5))]
    s.wait_runs(lambda rs: [r["status"] for r in rs] == ["running", "queued", "queued", "running", "queued"],
                "the first run of q and of keep to start")
    s.rules.write_text(rules.replace("q: on", "# q: on").replace("db: on", "# db: on"))
    s.proc.send_signal(signal.SIGHUP)
    s.wait_log("reloaded ")
    assert "reload: 1 waiting run(s) of q cancelled: its rule was removed from the rules file by a reload" in s.log()
    go.touch()
    runs = s.wait_runs(lambda rs: done(rs, 5), "the running runs to end")
    assert [(r["id"], r["status"], r["error"]) for r in runs] == [
        (ids[0], "succeeded", None),
        (ids[1], "cancelled", "its rule was removed from the rules file by a reload"),
        (ids[2], "cancelled", "its rule was removed from the rules file by a reload"),
        (ids[3], "succeeded", None), (ids[4], "succeeded", None)], runs
    stop_ok(s)


# =========================================================================== reload

def test_reload_picks_up_a_new_rule_and_survives_a_broken_file(tmp_path: Path, serve) -> None:
    v1 = """
action rec(n) = exec "true"
a: on http.post path="/a" run rec with <payload.n>
ping: on http.post path="/ping" payload.never="x" run rec with <payload.n>
"""
    s = serve(v1)
    assert post(s, "/a", {"n": 1}).status_code == 202
    assert post(s, "/b", {"n": 0}).status_code == 404

    # deliveries keep arriving while the rules change: none may be refused
    answers: list[Any] = []
    stop_pinging = threading.Event()

    def ping() -> None:
        with httpx.Client(base_url=s.url, timeout=5) as c:
            while not stop_pinging.is_set():
                try:
                    answers.append(c.post("/ping", json={"n": 0}).status_code)
                except httpx.HTTPError as e:
                    answers.append(repr(e))

    t = threading.Thread(target=ping, daemon=True)
    t.start()
    s.rules.write_text(v1 + 'b: on http.post path="/b" run rec with <payload.n>\n')
    s.wait_log("reloaded ")
    wait_for(lambda: len(answers) > 10, "some deliveries after the reload")
    stop_pinging.set()
    t.join(DEADLINE)
    assert set(answers) == {202}, [a for a in answers if a != 202][:5]
    r = post(s, "/b", {"n": 2})  # same port: the listener was not restarted
    assert r.status_code == 202, r.text

    s.rules.write_text(v1 + 'b: on http.post path="/b" run rec with <payload.nn\n')
    log = s.wait_log("the previous rules keep running")
    assert re.search(r"rules\.trg:\d+:\d+: error\[TRG\d+\]", log), log
    assert post(s, "/a", {"n": 3}).status_code == 202
    assert post(s, "/b", {"n": 4}).status_code == 202
    runs = s.wait_runs(lambda rs: done(rs, 4), "the runs of both rules")
    assert [(r["rule"], r["inputs"]["n"]) for r in runs] == [("a", 1), ("b", 2), ("a", 3), ("b", 4)]
    stop_ok(s)


def test_reload_starts_the_http_listener_when_a_rule_needs_it(tmp_path: Path, serve) -> None:
    v1 = """
action rec(p) = exec "true"
f: on file.changed path ~ "src/**" run rec with <path>
"""
    (tmp_path / "proj" / "src").mkdir(parents=True)
    s = serve(v1)
    assert "listening" not in s.log() and s.port is None
    s.rules.write_text(v1 + 'h: on http.post path="/hook" run rec with <payload.p>\n')
    log = s.wait_log("http: listening on")
    s.port = int(re.findall(r"http: listening on http://[^\s]*:(\d+)", log)[-1])
    assert post(s, "/hook", {"p": "x"}).status_code == 202
    runs = s.wait_runs(lambda rs: done(rs, 1), "the run of the new http rule")
    assert runs[0]["rule"] == "h" and runs[0]["inputs"] == {"p": "x"}
    stop_ok(s)


def test_a_served_manifest_is_reloaded_when_it_changes(tmp_path: Path, serve) -> None:
    # `triggerc compile -o manifest.json` again while `serve manifest.json` runs: the new
    # rules are taken; a manifest that is not valid keeps the previous rules running
    v1 = """
action rec(n) = exec "true"
a: on http.post path="/a" run rec with <payload.n>
"""
    proj = tmp_path / "proj"
    proj.mkdir()
    (proj / "rules.trg").write_text(v1)
    manifest = proj / "manifest.json"
    assert cli("compile", str(proj / "rules.trg"), "-o", str(manifest)).returncode == 0
    s = serve(None, folder=proj, name="manifest.json")
    assert post(s, "/b", {"n": 0}).status_code == 404
    (proj / "rules.trg").write_text(v1 + 'b: on http.post path="/b" run rec with <payload.n>\n')
    assert cli("compile", str(proj / "rules.trg"), "-o", str(manifest)).returncode == 0
    s.wait_log("reloaded ")
    assert post(s, "/b", {"n": 1}).status_code == 202
    manifest.write_text('{"triggerlang": 1, "rules": [')
    log = s.wait_log("the previous rules keep running")
    assert "manifest.json: not valid JSON" in log, s.tail()
    assert post(s, "/a", {"n": 2}).status_code == 202
    runs = s.wait_runs(lambda rs: done(rs, 2), "the runs of both rules")
    assert [(r["rule"], r["inputs"]["n"]) for r in runs] == [("b", 1), ("a", 2)]
    stop_ok(s)


def test_the_rules_are_looked_at_every_second_by_default(tmp_path: Path) -> None:
    """The tests' servers look every 0.2 s (runtime_helpers.RELOAD_INTERVAL); users get one
    second unless they say otherwise; --reload-interval takes seconds, and not with --no-reload."""
    from click.testing import CliRunner

    from triggerlang.cli import main
    from triggerlang.runtime.serve import ServeOptions

    (option,) = [p for p in main.commands["serve"].params if p.name == "reload_interval"]
    assert option.default == ServeOptions().reload_interval == 1.0
    rules = tmp_path / "rules.trg"
    rules.write_text('action a = exec "true"\nr: on http.post path="/a" run a\n')
    for args, says in ((["--reload-interval", "0"], "0 is not in the range"),
                       (["--reload-interval", "soon"], "'soon' is not a number of seconds"),
                       (["--no-reload", "--reload-interval", "2"], "with --no-reload it does not look")):
        r = CliRunner().invoke(main, ["serve", str(rules), *args])
        assert r.exit_code == 2 and says in r.output, (args, r.output)


def test_a_listener_a_reload_cannot_start_is_started_once_its_port_is_free(tmp_path: Path, serve) -> None:
    # A reload adds a webhook rule while another program holds the port: the error is
    # logged, and the listener starts by itself once the port is free (no second edit).
    v1 = """
action rec(p) = exec "true"
f: on file.changed path ~ "src/**" run rec with <path>
"""
    (tmp_path / "proj" / "src").mkdir(parents=True)
    busy = socket.socket()
    busy.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    busy.bind(("127.0.0.1", 0))
    busy.listen()
    port = busy.getsockname()[1]
    try:
        s = serve(v1, "--port", str(port))
        s.rules.write_text(v1 + 'h: on http.post path="/hook" run rec with <payload.p>\n')
        s.wait_log(f"cannot listen on 127.0.0.1:{port}")
        assert f"(tried every {RELOAD_INTERVAL}s)" in s.log(), s.tail()  # --reload-interval, as given
    finally:
        busy.close()
    s.wait_log(f"http: listening on http://127.0.0.1:{port}")
    s.port = port
    assert post(s, "/hook", {"p": "x"}).status_code == 202
    runs = s.wait_runs(lambda rs: done(rs, 1), "the run of the new http rule")
    assert runs[0]["rule"] == "h" and runs[0]["inputs"] == {"p": "x"}
    assert s.log().count("cannot listen") == 1, s.tail()  # said once, not at every try
    stop_ok(s)


# =========================================================================== start errors

def _serve_fails(tmp_path: Path, rules: str, *args: str, env: dict[str, str] | None = None) -> str:
    folder = tmp_path / "proj"
    folder.mkdir(exist_ok=True)
    (folder / "rules.trg").write_text(rules)
    r = cli("serve", str(folder / "rules.trg"), *args, env=env, timeout=DEADLINE)
    assert r.returncode == 1, (r.returncode, r.stderr)
    assert "Traceback" not in r.stderr, r.stderr
    return r.stderr


def test_start_error_secret_env_unset(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "TRG_TEST_UNSET_SECRET"}
    err = _serve_fails(tmp_path, GITHUB_RULES.replace("TRG_TEST_GH_SECRET", "TRG_TEST_UNSET_SECRET"),
                       "--state", str(tmp_path / "state"), "--port", "0", env=env)
    assert "secret gh: the environment variable TRG_TEST_UNSET_SECRET is not set" in err, err


def test_start_error_names_every_missing_secret_at_once(tmp_path: Path) -> None:
    """Before: serve named only the first missing secret, so a deploy missing three
    variables learned of them one restart at a time."""
    from triggerlang.runtime.engine import StartError, resolve_secrets

    (tmp_path / "empty").write_text("\n")
    manifest = {"secrets": {"a": {"env": "TRG_TEST_UNSET_A"}, "b": {"file": "empty"},
                            "c": {"env": "TRG_TEST_UNSET_C"}, "d": {"env": "TRG_TEST_SET_D"}}}
    with pytest.raises(StartError) as e:
        resolve_secrets(manifest, tmp_path, {"TRG_TEST_SET_D": "x"})
    assert str(e.value) == (f"secret a: the environment variable TRG_TEST_UNSET_A is not set; "
                            f"secret b: {tmp_path / 'empty'} is empty; "
                            f"secret c: the environment variable TRG_TEST_UNSET_C is not set")
    assert resolve_secrets(manifest, tmp_path, {"TRG_TEST_UNSET_A": "1", "TRG_TEST_UNSET_C": "2", "TRG_TEST_SET_D": "x"},
                           only={"a", "c", "d"}) == {"a": "1", "c": "2", "d": "x"}


def test_start_error_port_in_use(tmp_path: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        err = _serve_fails(tmp_path, POLICY_RULES, "--state", str(tmp_path / "state"), "--port", str(port))
    assert f"cannot listen on 127.0.0.1:{port}" in err and "in use" in err, err
    assert "[Errno" not in err, err  # the message, not Python's rendering of the exception


def test_start_error_state_dir_is_a_file(tmp_path: Path) -> None:
    (tmp_path / "state").write_text("not a folder")
    err = _serve_fails(tmp_path, POLICY_RULES, "--state", str(tmp_path / "state"), "--port", "0")
    assert "is not a directory" in err and str(tmp_path / "state") in err, err


# =========================================================================== history commands

RUN_KEYS = {"id", "rule", "action", "status", "exit_code", "inputs", "event_id", "queued_at", "started_at",
            "finished_at"}
EVENT_KEYS = {"id", "source", "type", "time", "matched"}


def test_runs_and_events_commands(serve) -> None:
    s = serve(POLICY_RULES)
    for k in ("x", "y", "x"):
        assert post(s, "/dedupe", {"k": k}).status_code == 202
    s.wait_runs(lambda rs: done(rs, 3), "three runs final")
    state = str(s.state)

    r = cli("runs", "--state", state, "--format", "json")
    assert r.returncode == 0, r.stderr
    runs = json.loads(r.stdout)
    assert [x["id"] for x in runs] == [3, 2, 1]  # newest first
    assert all(RUN_KEYS <= set(x) for x in runs)
    assert [x["status"] for x in runs] == ["skipped", "succeeded", "succeeded"]
    assert runs[2]["inputs"] == {"n": "x"} and runs[2]["exit_code"] == 0
    assert all(re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", x["queued_at"]) for x in runs)
    r = cli("runs", "--state", state, "--format", "json", "--limit", "2")
    assert [x["id"] for x in json.loads(r.stdout)] == [3, 2]

    text = cli("runs", "--state", state).stdout.splitlines()
    assert text[0].split() == ["ID", "RULE", "ACTION", "STATUS", "EXIT", "WAIT", "DURATION", "QUEUED", "INPUTS"]
    assert [line.split()[0] for line in text[1:]] == ["3", "2", "1"]
    assert text[1].split()[1:4] == ["dd", "rec", "skipped"] and "n=x" in text[1]
    assert len(cli("runs", "--state", state, "--limit", "1").stdout.splitlines()) == 2

    r = cli("events", "--state", state, "--format", "json")
    events = json.loads(r.stdout)
    assert len(events) == 3 and all(set(e) == EVENT_KEYS for e in events)
    assert all(e["source"] == "http" and e["type"] == "post" and e["matched"] == ["dd"] for e in events)
    assert [e["id"] for e in events] == [e["id"] for e in reversed(s.events())]
    assert len(json.loads(cli("events", "--state", state, "--format", "json", "--limit", "1").stdout)) == 1
    text = cli("events", "--state", state).stdout.splitlines()
    assert text[0].split() == ["ID", "EVENT", "TIME", "MATCHED"]
    assert len(text) == 4 and all("http.post" in line and line.rstrip().endswith("dd") for line in text[1:])
    stop_ok(s)


# =========================================================================== the operator's view

def test_rejected_deliveries_are_logged_at_info_without_body_or_secret(tmp_path: Path, serve) -> None:
    token = "tok-" + uuid.uuid4().hex
    s = serve(GITHUB_RULES + 'secret tok = env "TRG_TEST_TOKEN"\nsource http path="/hooks/*" token=tok\n'
              'on http.post path ~ "/hooks/*" run rec with "x"\n',
              env={"TRG_TEST_GH_SECRET": GH_SECRET, "TRG_TEST_TOKEN": token})
    marker = "BODY-MARKER-" + uuid.uuid4().hex
    body = json.dumps({"ref": "refs/heads/master", "note": marker}).encode()
    wrong = github_headers("push", body, secret="wrong")
    assert httpx.post(s.url + "/github", content=body, headers=wrong).status_code == 401
    assert httpx.post(s.url + "/github?key=" + marker, content=b"{" + marker.encode(),
                      headers=github_headers("push", b"{" + marker.encode())).status_code == 400
    assert httpx.post(s.url + "/hooks/build", content=body,
                      headers={"Authorization": f"Bearer {token}x"}).status_code == 401
    with socket.create_connection(("127.0.0.1", s.port), timeout=DEADLINE) as sock:
        sock.sendall(b"POST /github HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                     b"X-GitHub-Event: push\r\nContent-Length: 20000000\r\n\r\n")
        assert sock.recv(200).decode("latin-1").startswith("HTTP/1.1 413")
    # a good delivery is not a rejection
    assert httpx.post(s.url + "/github", content=body, headers=github_headers("push", body)).status_code == 202
    lines = wait_for(lambda: [ln for ln in s.log().splitlines() if "rejected a delivery" in ln] if
                     s.log().count("rejected a delivery") >= 4 else None, "four rejections logged", on_fail=s.tail)
    assert [re.sub(r"^\S+ ", "", ln) for ln in lines] == [
        "INFO rejected a delivery to /github from 127.0.0.1: 401 signature does not match",
        "INFO rejected a delivery to /github from 127.0.0.1: 400 invalid JSON body: "
        "Expecting property name enclosed in double quotes: line 1 column 2 (char 1)",
        "INFO rejected a delivery to /hooks/* from 127.0.0.1: 401 bearer token does not match",
        "INFO rejected a delivery to /github from 127.0.0.1: 413 body of 20000000 bytes is over the limit of "
        "10485760 bytes",
    ]
    stop_ok(s)
    log = s.log()
    for secret in (marker, token, GH_SECRET, wrong["X-Hub-Signature-256"].split("=", 1)[1]):
        assert secret not in log


LOOPY = """
action t = shell "true"
source github path="/github"
pushed: on github.push run t
"""


def test_serve_logs_checks_warnings_at_start_and_on_reload(tmp_path: Path, serve) -> None:
    s = serve(LOOPY)
    start = s.log()
    assert re.search(r"WARNING \S*rules\.trg:3:8: warning\[TRG209\]: source github has no secret: anyone who can "
                     r"reach it can trigger runs \(add secret=NAME\)\n", start), start
    assert start.index("TRG209") < start.index("INFO serving ")
    s.rules.write_text(LOOPY + "after: on run.completed run t\n")
    wait_for(lambda: "reloaded" in s.log(), "the reload", on_fail=s.tail)
    log = s.log()
    assert log.count("TRG209") == 2  # said again: the operator sees the rules' warnings after each change
    assert re.search(r"warning\[TRG503\]: rule 'after' can trigger itself", log), log
    (s.rules.parent / "triggerc.toml").write_text('ignore = ["TRG209"]\n')  # check's config, read at each load
    s.rules.write_text(LOOPY + "after: on run.completed run t\nagain: on run.completed run t\n")
    wait_for(lambda: s.log().count("reloaded") == 2, "the second reload", on_fail=s.tail)
    log = s.log()
    assert log.count("TRG209") == 2 and re.search(r"warning\[TRG503\]: rule 'again'", log), log
    stop_ok(s)


UNSECURED_CI = """
source ci
action rec = exec "true"
built: on ci.completed run rec
"""


def _since_each_load(log: str) -> list[str]:
    """The log cut after each 'serving' or 'reloaded' line: what led to each load."""
    return re.split(r"INFO (?:serving|reloaded) [^\n]*\n", log)[:-1]


def test_every_reload_logs_the_warnings_of_its_rules_and_an_empty_file_is_not_loaded(serve) -> None:
    # An editor truncates the file, then writes it: a look in between reloaded no rules at
    # all (no TRG209 then, and every source stopped), then the written rules (TRG209 again)
    s = serve(UNSECURED_CI, "-v")
    with open(s.rules, "w"):
        pass
    s.wait_log("rules.trg is empty: not reloaded")
    s.rules.write_text(UNSECURED_CI + "again: on ci.completed run rec\n")
    s.wait_log("INFO reloaded ")
    s.rules.write_text(UNSECURED_CI + "again: on ci.completed run rec\nthird: on ci.completed run rec\n")
    log = s.wait_log(re.compile(r"INFO reloaded .*rules\.trg: 3 rule"))
    assert re.findall(r"INFO reloaded \S*rules\.trg: (\d+) rule\(s\)", log) == ["2", "3"], log
    for part in _since_each_load(log):  # start, then each reload: the TRG209, once
        assert part.count("warning[TRG209]: source ci has no token or hmac") == 1, log
    stop_ok(s)


def test_a_change_that_leaves_the_rules_as_they_are_is_not_a_reload(serve) -> None:
    # an appended comment (or the second piece of a write the first look had whole)
    s = serve(UNSECURED_CI, "-v")
    with open(s.rules, "a") as f:
        f.write("# built by CI\n")
    s.wait_log("rules.trg changed, its rules did not: nothing to reload")
    with open(s.rules, "a") as f:
        f.write("again: on ci.completed run rec\n")
    log = s.wait_log("INFO reloaded ")
    assert log.count("INFO reloaded ") == 1 and log.count("TRG209") == 2, log
    stop_ok(s)


SLOW = """
secret tok = env "TRG_TEST_TOKEN"
source http path="/go" token=tok
action slow = exec "{py}" "-c" "import time, pathlib; pathlib.Path('started').write_text('1'); time.sleep(120)"
slow: on http.post path="/go" run slow busy parallel
"""


def test_a_second_ctrl_c_stops_running_runs_at_once(tmp_path: Path, serve) -> None:
    s = serve(SLOW.format(py=PY), "--grace", "120", env={"TRG_TEST_TOKEN": "t"})
    for _ in range(2):
        assert httpx.post(s.url + "/go", json={}, headers={"Authorization": "Bearer t"}).status_code == 202
    wait_for(lambda: [r["status"] for r in s.runs()] == ["running", "running"], "two running runs", on_fail=s.tail)
    s.proc.send_signal(signal.SIGINT)
    wait_for(lambda: "press Ctrl-C again to stop now" in s.log(), "the first Ctrl-C's notice", on_fail=s.tail)
    assert "INFO stopping: waiting up to 120s for 2 running run(s); press Ctrl-C again to stop now" in s.log()
    t0 = time.monotonic()
    s.proc.send_signal(signal.SIGINT)
    assert s.proc.wait(DEADLINE) == 0, s.tail()
    assert time.monotonic() - t0 < 15  # not the 120 s grace
    s._fh.close()
    assert "INFO stopping now: 2 run(s) stopped and marked interrupted" in s.log()
    assert [r["status"] for r in s.runs()] == ["interrupted", "interrupted"]
    assert "Traceback" not in s.log()


def test_a_single_ctrl_c_says_which_runs_it_interrupted_when_the_grace_is_over(tmp_path: Path, serve) -> None:
    # as the second Ctrl-C does: the count, and each run, marked interrupted
    s = serve(SLOW.format(py=PY), "--grace", "0.5", env={"TRG_TEST_TOKEN": "t"})
    assert httpx.post(s.url + "/go", json={}, headers={"Authorization": "Bearer t"}).status_code == 202
    wait_for(lambda: [r["status"] for r in s.runs()] == ["running"], "the running run", on_fail=s.tail)
    (rid,) = [r["id"] for r in s.runs()]
    s.proc.send_signal(signal.SIGINT)
    assert s.proc.wait(DEADLINE) == 0, s.tail()
    s._fh.close()
    log = s.log()
    assert "INFO stopping now: 1 run(s) stopped and marked interrupted" in log, log
    assert f"INFO run {rid} of slow: interrupted" in log, log
    assert log.index("stopping now") < log.index(f"run {rid} of slow: interrupted") < log.index("stopped cleanly")
    assert [r["status"] for r in s.runs()] == ["interrupted"]
    assert "Traceback" not in log


STUBBORN = """
action stubborn = shell "trap 'touch termed' TERM; while :; do sleep 1; done"
stubborn: on http.post path="/go" run stubborn timeout 1s
"""


def test_a_second_ctrl_c_does_not_wait_out_a_timeouts_kill_grace(tmp_path: Path, serve) -> None:
    # The run ignores SIGTERM: its timeout (1 s) sends SIGTERM and would SIGKILL it 5 s
    # later. A second Ctrl-C in those 5 s stops it at once, as it does any running run.
    s = serve(STUBBORN, "--grace", "120")
    assert httpx.post(s.url + "/go", json={}).status_code == 202
    wait_for(lambda: (tmp_path / "proj" / "termed").exists(), "the timeout's SIGTERM", on_fail=s.tail)
    s.proc.send_signal(signal.SIGINT)
    wait_for(lambda: "press Ctrl-C again to stop now" in s.log(), "the first Ctrl-C's notice", on_fail=s.tail)
    t0 = time.monotonic()
    s.proc.send_signal(signal.SIGINT)
    assert s.proc.wait(DEADLINE) == 0, s.tail()
    assert time.monotonic() - t0 < 3.5, s.tail()  # not the rest of the timeout's 5 s before SIGKILL
    s._fh.close()
    assert "Traceback" not in s.log()


def test_log_format_json_has_one_object_per_line_with_fields(tmp_path: Path, serve) -> None:
    s = serve(GITHUB_RULES + 'source http path="/x"\non http.post path="/x" run rec with "y"\n',
              "--log-format", "json", env={"TRG_TEST_GH_SECRET": GH_SECRET}, start=False)
    s.start(wait=False)

    def records() -> list[dict]:
        return [json.loads(line) for line in s.log().splitlines() if line.strip()]

    wait_for(lambda: any(r["message"].startswith("serving ") for r in records()), "the server to start",
             on_fail=s.tail)
    port = next(int(m) for r in records() for m in re.findall(r"http://127\.0\.0\.1:(\d+)", r["message"]))
    assert httpx.post(f"http://127.0.0.1:{port}/x", json={}).status_code == 202
    assert httpx.post(f"http://127.0.0.1:{port}/github", content=b"{}",
                      headers=github_headers("push", b"{}", secret="no")).status_code == 401
    wait_for(lambda: any(r.get("run_id") for r in records()), "a run's log line", on_fail=s.tail)
    assert s.stop() == 0
    recs = records()
    assert all({"time", "level", "logger", "message"} <= set(r) for r in recs)
    assert all(re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", r["time"]) for r in recs)
    (run,) = [r for r in recs if r.get("run_id")]
    assert (run["level"], run["rule"], run["status"], run["exit_code"]) == ("info", "L7", "succeeded", 0)
    (rejected,) = [r for r in recs if r["message"].startswith("rejected")]
    assert {k: rejected[k] for k in ("route", "status", "reason", "remote")} == {
        "route": "/github", "status": 401, "reason": "signature does not match", "remote": "127.0.0.1"}
    (warning,) = [r for r in recs if r.get("code")]  # check's warning: /x has no token
    assert (warning["level"], warning["code"], warning["line"]) == ("warning", "TRG209", 7)


def test_loop_log_writer_writes_a_pass_of_lines_at_once_in_order() -> None:
    """serve's stderr handler: the loop thread's INFO lines leave together at the end of
    the pass that logged them, a warning (or another thread's line) at once after what
    waits, and nothing is left behind when the loop ends."""
    import asyncio
    import io
    import logging

    from triggerlang.runtime.serve import LoopLogWriter

    class Stream(io.StringIO):
        writes: list[str]

        def write(self, s: str) -> int:
            self.writes.append(s)
            return super().write(s)

    stream = Stream()
    stream.writes = []
    handler = LoopLogWriter(stream)
    handler.setFormatter(logging.Formatter("%(levelname)s %(message)s"))
    logger = logging.getLogger("triggerlang")
    saved = logger.handlers[:], logger.level, logger.propagate
    logger.handlers[:] = [handler]
    logger.setLevel(logging.INFO)
    logger.propagate = False
    seen_in_pass: list[list[str]] = []

    async def main() -> None:
        with LoopLogWriter.bound():
            logger.info("one")
            logger.info("two")
            seen_in_pass.append(list(stream.writes))  # nothing written yet in this pass
            await asyncio.sleep(0)
            await asyncio.sleep(0)
            seen_in_pass.append(list(stream.writes))
            logger.info("three")
            logger.warning("four")  # at once, after "three"
            seen_in_pass.append(list(stream.writes))
            await asyncio.to_thread(logger.info, "five")  # another thread: at once
            logger.info("six")  # still waiting when the loop's work ends: flushed by unbinding

    try:
        asyncio.run(main())
        logger.info("seven")  # unbound: at once
    finally:
        logger.handlers[:], level, logger.propagate = saved[0], saved[1], saved[2]
        logger.setLevel(level)
    assert seen_in_pass[0] == []
    assert seen_in_pass[1] == ["INFO one\nINFO two\n"]
    assert seen_in_pass[2][-1] == "INFO three\nWARNING four\n"
    assert stream.getvalue() == "".join(f"{lv} {m}\n" for lv, m in [
        ("INFO", "one"), ("INFO", "two"), ("INFO", "three"), ("WARNING", "four"), ("INFO", "five"),
        ("INFO", "six"), ("INFO", "seven")])
