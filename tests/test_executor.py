"""The action executor: argv safety, environment, stdin, logs, timeouts, cancel, http."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from triggerlang.events import Event
from triggerlang.runtime.executor import SERVE_ID, RunRequest, RunResult, sign, start_action
from runtime_helpers import STOPPABLE

PROBE = f"""#!{sys.executable}
import json, os, sys
data = {{
    "argv": sys.argv[1:],
    "stdin": sys.stdin.read(),
    "cwd": os.getcwd(),
    "env": {{k: v for k, v in os.environ.items() if k.startswith(("TRG_", "PROBE_", "ACTION_"))}},
}}
with open(os.environ["PROBE_OUT"], "w") as f:
    json.dump(data, f)
print("probe stdout")
print("probe stderr", file=sys.stderr)
sys.exit(int(os.environ.get("PROBE_EXIT", "0")))
"""

NASTY = ["$(touch pwned)", "`touch x`", "a; rm -rf /", "line\nbreak", "' \" \\ * ? ~ > out", "--flag=1", ""]


@pytest.fixture
def base(tmp_path: Path) -> Path:
    d = tmp_path / "project"
    (d / "scripts").mkdir(parents=True)
    probe = d / "scripts" / "probe.py"
    probe.write_text(PROBE)
    probe.chmod(0o755)
    return d


def event(**data: Any) -> dict:
    return Event(source="git", type="push", data=data or {"branch": "main"}).to_json()


def request(base: Path, action: dict, inputs: dict | None = None, *, run_id: int = 1,
            timeout: float | None = 30, ev: dict | None = None, **kw: Any) -> RunRequest:
    return RunRequest(run_id=run_id, rule="r1", action_name="act", action=action, inputs=inputs or {},
                      event=ev or event(), base_dir=base, log_path=base.parent / "state" / "logs" / f"{run_id}.log",
                      timeout=timeout, secrets=kw.pop("secrets", {}), **kw)


def run(req: RunRequest) -> RunResult:
    async def main() -> RunResult:
        running = await start_action(req)
        return await running.wait()

    return asyncio.run(main())


def probe_action(argv_tail: list[dict], params: list[dict] | None = None, **extra: Any) -> dict:
    env = {"PROBE_OUT": "{out}"}
    env.update(extra.pop("env", {}))
    return {"kind": "exec", "params": params or [], "argv": [{"value": "./scripts/probe.py"}, *argv_tail],
            "cwd": extra.pop("cwd", None), "env": env, **extra}


def run_probe(base: Path, action: dict, inputs: dict | None = None, **kw: Any) -> tuple[RunResult, dict]:
    out = base.parent / "probe.json"
    action["env"] = {k: v.replace("{out}", str(out)) for k, v in action["env"].items()}
    result = run(request(base, action, inputs, **kw))
    return result, json.loads(out.read_text()) if out.exists() else {}


def files_named(root: Path, *names: str) -> list[Path]:
    return [p for p in root.rglob("*") if p.name in names]


def wait_for(cond, timeout: float = 10.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)


async def async_wait_for(cond, timeout: float = 10.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.02)


def group_gone(pgid: int) -> bool:
    """No live process is left in the group.

    ``killpg(pgid, 0)`` raising ProcessLookupError is the proof; under an init that does
    not reap orphans (some containers), killed grandchildren stay zombies, which still
    answer kill(0) but are dead: then every member left must be a zombie.
    """
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return True
    if not Path("/proc").is_dir():
        return False
    live = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
        except OSError:
            continue
        state, _ppid, pgrp = text[text.rfind(")") + 2:].split()[:3]
        if int(pgrp) == pgid and state not in ("Z", "X"):
            live.append(stat.parent.name)
    return not live


# -- exec ---------------------------------------------------------------------------------

def test_exec_passes_hostile_strings_verbatim_as_argv(base: Path):
    action = probe_action([{"value": "--x"}, {"param": "a"}, {"param": "b"}, {"param": "c"}],
                          params=[{"name": "a"}, {"name": "b"}, {"name": "c"}])
    inputs = {"a": NASTY[0], "b": NASTY[1], "c": NASTY[2:]}
    result, seen = run_probe(base, action, inputs)
    assert result == RunResult("succeeded", 0)
    assert seen["argv"] == ["--x", *NASTY]
    assert seen["cwd"] == str(base)
    assert files_named(base.parent, "pwned", "x", "out") == []


def test_exec_argument_conversions_and_defaults(base: Path):
    action = probe_action([{"param": p} for p in ("s", "n", "f", "t", "z", "l", "stage")],
                          params=[{"name": p} for p in ("s", "n", "f", "t", "z", "l")]
                          + [{"name": "stage", "default": "staging"}])
    inputs = {"s": "x y", "n": 42, "f": 1.5, "t": True, "z": None, "l": ["one", 2, False]}
    result, seen = run_probe(base, action, inputs)
    assert result.status == "succeeded"
    assert seen["argv"] == ["x y", "42", "1.5", "true", "", "one", "2", "false", "staging"]
    assert seen["env"]["TRG_INPUT_L"] == '["one",2,false]'
    assert seen["env"]["TRG_INPUT_N"] == "42" and seen["env"]["TRG_INPUT_Z"] == "null"
    assert seen["env"]["TRG_INPUT_STAGE"] == "staging" and seen["env"]["TRG_INPUT_S"] == "x y"


def test_exec_environment_and_stdin(base: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("PROBE_INHERITED", "from serve")
    ev = event(branch="main", sha="abc123", note="naïve ☃")
    action = probe_action([], params=[{"name": "my-arg"}], env={"ACTION_ENV": "set by action"})
    result, seen = run_probe(base, action, {"my-arg": "v"}, run_id=77, ev=ev)
    assert result.status == "succeeded"
    env = seen["env"]
    assert env["TRG_RUN_ID"] == "77" and env["TRG_RULE"] == "r1" and env["TRG_SERVE_ID"] == SERVE_ID
    assert env["TRG_EVENT_ID"] == ev["id"] and env["TRG_EVENT_SOURCE"] == "git" and env["TRG_EVENT_TYPE"] == "push"
    assert env["TRG_INPUT_MY_ARG"] == "v"
    assert env["ACTION_ENV"] == "set by action" and env["PROBE_INHERITED"] == "from serve"
    assert json.loads(seen["stdin"]) == ev


def test_exec_relative_program_and_cwd(base: Path):
    (base / "work").mkdir()
    action = probe_action([], cwd="work")
    result, seen = run_probe(base, action)
    assert result.status == "succeeded"
    assert seen["cwd"] == str(base / "work")  # ./scripts/probe.py still found from base_dir


def test_the_spawner_of_a_closed_event_loop_is_stopped_by_the_next_loop(base: Path):
    """A program (or a test) that runs actions under ``asyncio.run`` and never calls
    ``close_spawner`` leaves a spawner per loop: the next loop that starts a run stops it
    (its socket closed, so its process exits), instead of one process per forgotten loop."""
    from triggerlang.runtime.executor import _Fast

    if _Fast.broken:
        pytest.skip("no spawner on this platform: runs start in process")
    action = {"kind": "exec", "params": [], "argv": [{"value": "true"}]}
    assert run(request(base, action, run_id=1)) == RunResult("succeeded", 0)
    left = [sp for lp, sp in _Fast.spawners.items() if lp.is_closed()]
    assert left and all(sp.sock is not None for sp in left)  # the first loop's, still open
    assert run(request(base, action, run_id=2)) == RunResult("succeeded", 0)
    assert all(sp.sock is None for sp in left)
    assert not any(sp in _Fast.spawners.values() for sp in left)


def _starting_on_a_held_spawner(req: RunRequest) -> tuple[Any, socket.socket]:
    """``req``'s run starting (as :meth:`Spawner.start` leaves it) on a spawner that is a
    socket we hold (the other end, returned): its messages, and its end, are ours to send."""
    from functools import partial

    from triggerlang.runtime.executor import Spawner, _FastAction

    loop = asyncio.get_running_loop()
    spawner = Spawner(loop)
    mine, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    mine.setblocking(False)
    spawner.sock = mine
    loop.add_reader(mine.fileno(), spawner._readable)
    ra = _FastAction(req, spawner)
    started = spawner.starting[req.run_id] = loop.create_future()
    spawner.starting_logs[req.run_id] = str(req.log_path)
    started.add_done_callback(partial(ra._spawned, lambda e: None))
    return ra, theirs


def test_a_spawner_that_dies_in_the_read_that_says_its_run_started_fails_the_run(base: Path):
    """The spawner's last words: "run 1 started" and then its end (kill -9), read in one pass
    of the loop. The start resolved the run's future, whose callback runs after the pass; the
    loss, in the pass, found the run neither starting nor running, and the run then joined a
    spawner that would never say it ended: `running` for ever (seen once in the suite, under
    load: test_ingest's spawner test timed out). Here the spawner is a socket we hold: its
    messages are what a spawner sends, so the order is certain."""
    import marshal

    sleeper = subprocess.Popen(["sleep", "30"], start_new_session=True)  # (the run's process: its pid)

    async def main() -> RunResult:
        req = request(base, {"kind": "exec", "params": [], "argv": [{"value": "sleep"}]})
        ra, theirs = _starting_on_a_held_spawner(req)
        theirs.send(marshal.dumps([("p", req.run_id, sleeper.pid)]))
        theirs.close()
        return await asyncio.wait_for(ra.wait(), 10)

    try:
        result = asyncio.run(main())
        # and its process is not left going, unwatched and with no timeout
        assert sleeper.wait(10) == -signal.SIGKILL
    finally:
        sleeper.kill()
        sleeper.wait()
    assert result.status == "failed" and "its process group was killed" in result.error, result


def test_a_run_its_spawner_started_but_died_before_reporting_is_killed(base: Path):
    """The spawner exec'd the run's process and died (kill -9) before its "started" message:
    ``serve`` never learnt the pid, failed the run with "the spawner process stopped", and
    left the process going, unwatched and with no timeout (seen once in the suite, under
    load: test_ingest's spawner test). It is found by its stdout, the run's log file, and
    its group killed; one that sent its output elsewhere (``exec >/dev/null 2>&1``), by
    its environment: TRG_RUN_ID and this serve's TRG_SERVE_ID. A process whose stdout is
    another file is left alone, and so is another serve's run with the same run id. Here
    the spawner is a socket we hold, and the run's processes ones we start as the spawner
    would (two, for the two ways of finding one)."""
    req = request(base, {"kind": "exec", "params": [], "argv": [{"value": "sleep"}]})
    req.log_path.parent.mkdir(parents=True, exist_ok=True)
    other = base / "other.log"
    run_env = {**os.environ, "TRG_RUN_ID": str(req.run_id), "TRG_SERVE_ID": SERVE_ID}
    with open(req.log_path, "ab") as log, open(other, "ab") as out:
        # the run's process, and a child of it in its group; one that sends its output
        # elsewhere; a stranger writing elsewhere; another serve's run with the same id
        sleeper = subprocess.Popen(["sh", "-c", "sleep 30 & exec sleep 30"], stdout=log, start_new_session=True)
        quiet = subprocess.Popen(["sh", "-c", "exec >/dev/null 2>&1; exec sleep 30"], stdout=log, env=run_env,
                                 start_new_session=True)
        stranger = subprocess.Popen(["sleep", "30"], stdout=out, start_new_session=True)
        twin = subprocess.Popen(["sleep", "30"], stdout=subprocess.DEVNULL, start_new_session=True,
                                env={**run_env, "TRG_SERVE_ID": "0123456789abcdef"})
    wait_for(lambda: os.readlink(f"/proc/{quiet.pid}/fd/1") == "/dev/null", what="the shell to send its output away")

    async def main() -> RunResult:
        ra, theirs = _starting_on_a_held_spawner(req)
        theirs.close()  # its end, with no "p"
        return await asyncio.wait_for(ra.wait(), 10)

    try:
        result = asyncio.run(main())
        assert sleeper.wait(10) == -signal.SIGKILL and quiet.wait(10) == -signal.SIGKILL
        assert stranger.poll() is None and twin.poll() is None
    finally:
        for p in (sleeper, quiet, stranger, twin):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(p.pid, signal.SIGKILL)
            p.wait()
    assert result.status == "failed" and result.error == "the spawner process stopped: its process group was killed", result
    assert "# run 1 failed: the spawner process stopped: its process group was killed" in req.log_path.read_text()


def test_a_ctrl_c_while_the_spawner_starts_does_not_kill_it(base: Path):
    """serve in a terminal's foreground group catches SIGINT (a graceful stop); a Ctrl-C
    reaches the whole group. The spawner starts at the first run: a Ctrl-C right after its
    process starts, before its interpreter is up, must not kill it (the run would fail with
    "the spawner stopped"). Here the group gets SIGINT the moment the spawner's process exists."""
    from triggerlang.runtime.executor import _Fast

    if _Fast.broken:
        pytest.skip("no spawner on this platform: runs start in process")
    script = """
import asyncio, os, signal, subprocess, sys
from pathlib import Path
from triggerlang.runtime.executor import RunRequest, close_spawner, start_action

os.setpgid(0, 0)                                    # a group of our own, as a terminal's foreground
signal.signal(signal.SIGINT, lambda *a: None)       # serve catches it (a handler: reset in children)
real = subprocess.Popen

def popen(*a, **kw):                                # the spawner's process exists: Ctrl-C at once
    p = real(*a, **kw)
    os.killpg(0, signal.SIGINT)
    return p

subprocess.Popen = popen
base = Path(sys.argv[1])

async def main():
    req = RunRequest(run_id=1, rule="r", action_name="a", action={"kind": "exec", "params": [],
                     "argv": [{"value": "true"}]}, inputs={}, event={"id": "e", "source": "git", "type": "push",
                     "data": {}}, base_dir=base, log_path=base / "1.log", timeout=30, secrets={})
    res = await (await start_action(req)).wait()
    close_spawner()
    print(res.status, res.error)

asyncio.run(main())
"""
    r = subprocess.run([sys.executable, "-c", script, str(base)], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "succeeded None", r.stdout + r.stderr


def test_exec_bare_name_uses_path_and_reports_exit_code(base: Path):
    action = {"kind": "exec", "params": [], "argv": [{"value": "sh"}, {"value": "-c"}, {"value": "exit 3"}]}
    assert run(request(base, action)) == RunResult("failed", 3, "exited with code 3")


def test_exec_writes_output_and_header_to_the_log(base: Path):
    action = probe_action([{"value": "hello"}], env={"PROBE_EXIT": "4"})
    req_log = base.parent / "state" / "logs" / "1.log"
    result, _ = run_probe(base, action)
    assert result.status == "failed" and result.exit_code == 4
    lines = req_log.read_bytes().splitlines()
    # triggerlang's own lines start with 0x01, the action's stderr lines with 0x02
    assert lines[0].startswith(b"\x01# run 1 rule r1 action act attempt 1: exec ")
    assert b"hello" in lines[0]
    assert b"probe stdout" in lines and b"\x02probe stderr" in lines
    assert lines[-1].startswith(b"\x01# run 1 failed (exit code 4)"), lines


@pytest.mark.parametrize("portable", [False, True], ids=["spawner", "asyncio"])
@pytest.mark.parametrize("argv0, message, hint", [
    ("./scripts/missing.sh", "program not found: {base}/scripts/missing.sh does not exist",
     "a relative path is taken from the rules file's folder, {base}"),
    ("no-such-program-triggerlang", "program not found: no-such-program-triggerlang is in no folder "
     "of the run's PATH ({bin}:/usr/bin)", "write its full path in the exec, or add its folder"),
    ("./scripts/not-executable.sh", "cannot execute {base}/scripts/not-executable.sh: permission denied",
     "it is not executable; chmod +x {base}/scripts/not-executable.sh"),
    ("not-executable-on-path", "cannot execute {bin}/not-executable-on-path: permission denied",
     "found on PATH as {bin}/not-executable-on-path, it is not executable"),
    ("./scripts/no-interpreter.sh", "program not found: {base}/scripts/no-interpreter.sh starts with "
     "#!/no/such/sh -e, and /no/such/sh does not exist", "fix its #! line"),
    ("scripts", "cannot execute {base}/scripts: permission denied", "it is a folder"),
])
def test_exec_spawn_failure_is_a_failed_run(base: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                            argv0: str, message: str, hint: str, portable: bool):
    # a run that cannot start has the header every run's log starts with, then why, and what to do
    from triggerlang.runtime.executor import _Fast
    if portable:
        monkeypatch.setattr(_Fast, "broken", True)
    (base / "scripts" / "not-executable.sh").write_text("#!/bin/sh\necho hi\n")
    (base / "scripts" / "no-interpreter.sh").write_text("#!/no/such/sh -e\necho hi\n")
    (base / "scripts" / "no-interpreter.sh").chmod(0o755)
    bin_ = tmp_path / "bin"
    bin_.mkdir()
    (bin_ / "not-executable-on-path").write_text("#!/bin/sh\necho hi\n")
    if argv0 == "scripts":
        argv0 = str(base / "scripts")
    action = {"kind": "exec", "params": [], "argv": [{"value": argv0}, {"value": "a b"}],
              "env": {"PATH": f"{bin_}:/usr/bin"}}
    req = request(base, action)
    result = run(req)
    message, hint = (m.format(base=base, bin=bin_) for m in (message, hint))
    assert result.status == "failed" and result.exit_code is None, result
    assert message in result.error and hint in result.error, result.error
    lines = req.log_path.read_text().splitlines()
    argv = f"{base}/scripts/{argv0[10:]}" if argv0.startswith("./") else argv0
    assert lines == [f"\x01# run 1 rule r1 action act attempt 1: exec {argv} 'a b'",
                     f"\x01# run 1 could not start: {result.error}"], lines


def test_a_program_moved_to_another_folder_of_path_is_found_again(base: Path, tmp_path: Path):
    # the spawner remembers where a program is; one that moved is looked up again, not 'not found'
    first, second = tmp_path / "bin1", tmp_path / "bin2"
    first.mkdir()
    second.mkdir()
    tool = first / "trg-moving-tool"
    tool.write_text("#!/bin/sh\necho ran\n")
    tool.chmod(0o755)
    action = {"kind": "exec", "argv": [{"value": "trg-moving-tool"}],
              "env": {"PATH": f"{first}:{second}:{os.environ.get('PATH', os.defpath)}"}}

    async def main() -> list[RunResult]:
        results = [await (await start_action(request(base, action, run_id=1))).wait()]
        tool.rename(second / tool.name)
        results.append(await (await start_action(request(base, action, run_id=2))).wait())
        return results

    results = asyncio.run(main())
    assert [r.status for r in results] == ["succeeded", "succeeded"], [r.error for r in results]


def test_missing_cwd_and_missing_input_and_nul_byte(base: Path):
    req = request(base, {"kind": "exec", "argv": [{"value": "true"}], "cwd": "nowhere"})
    result = run(req)
    assert result.status == "failed" and "working directory" in result.error
    result = run(request(base, {"kind": "exec", "params": [{"name": "sha"}],
                                "argv": [{"value": "echo"}, {"param": "sha"}]}, {}))
    assert result.status == "failed" and "sha" in result.error
    # a NUL byte in the action's own argument (a hand-written manifest: check refuses it, TRG408)
    result = run(request(base, {"kind": "exec", "argv": [{"value": "echo"}, {"value": "x\x00y"}]}))
    assert result.status == "failed" and result.exit_code is None
    # in an input (the event's): dropped from argv, the run starts (README: what a run gets)
    req = request(base, {"kind": "exec", "argv": [{"value": "echo"}, {"param": "a"}]}, {"a": "x\x00y"})
    result = run(req)
    assert result.status == "succeeded", result.error
    assert "\nxy\n" in req.log_path.read_text()


def test_exec_program_that_ignores_a_large_stdin(base: Path):
    big = event(blob="x" * 500_000)
    action = {"kind": "exec", "argv": [{"value": "true"}]}
    assert run(request(base, action, ev=big)).status == "succeeded"


@pytest.mark.parametrize("size", [10, 40_000, 2_000_000])
def test_stdin_is_no_error_when_the_child_exits_first_and_whole_when_it_reads(base: Path, size: int):
    """The event reaches stdin through a memfd (inline or passed to the spawner): nothing to
    feed, so a child that exits without reading is no error, and a reader gets every byte."""
    ev = event(blob="é" * size)
    quick = {"kind": "shell", "script": "exit 0"}
    result = run(request(base, quick, ev=ev))
    assert result == RunResult("succeeded", 0)
    log = (base.parent / "state" / "logs" / "1.log").read_text()
    assert "error" not in log.lower() and "broken pipe" not in log.lower()
    reader = {"kind": "shell", "script": f'cat > {base / "in.json"}; wc -c < {base / "in.json"} > {base / "n"}'}
    assert run(request(base, reader, ev=ev, run_id=2)).status == "succeeded"
    assert json.loads((base / "in.json").read_text(encoding="utf-8")) == ev


def test_launch_calls_back_once_and_a_cancel_before_the_start_stops_the_run(base: Path):
    from triggerlang.runtime.executor import launch

    async def main() -> tuple[list[RunResult], list[RunResult], RunResult]:
        done: list[RunResult] = []
        ra = launch(request(base, {"kind": "exec", "argv": [{"value": "true"}]}), done.append)
        assert await ra.wait() == RunResult("succeeded", 0)
        await asyncio.sleep(0)
        stopped: list[RunResult] = []
        slow = launch(request(base, {"kind": "exec", "argv": [{"value": "sleep"}, {"value": "30"}]}, run_id=2),
                      stopped.append)
        result = await slow.cancel(grace=1.0)  # at once: it may not have started yet
        return done, stopped, result

    done, stopped, result = asyncio.run(main())
    assert done == [RunResult("succeeded", 0)]
    assert result.status == "cancelled" and stopped == [result]


def test_a_list_or_object_input_is_json_as_on_stdin(base: Path):
    """TRG_INPUT_<NAME> of a list or an object is the JSON text stdin has for it: compact,
    ASCII only, keys in the event's order (it had ', ' and ': ' and kept 'é' as it is)."""
    obj = {"z": 1, "a": "naïve ☃ \U0001f600", "l": [1.5, None, True], "e": {}}
    action = probe_action([], params=[{"name": "o"}, {"name": "l"}])
    result, seen = run_probe(base, action, {"o": obj, "l": ["é", {"b": 2, "a": 1}]}, ev=event(o=obj))
    assert result.status == "succeeded"
    text = '{"z":1,"a":"na\\u00efve \\u2603 \\ud83d\\ude00","l":[1.5,null,true],"e":{}}'
    assert seen["env"]["TRG_INPUT_O"] == text and f'"data":{{"o":{text}}}' in seen["stdin"]
    assert seen["env"]["TRG_INPUT_L"] == '["\\u00e9",{"b":2,"a":1}]'


def test_killed_by_signal_reports_128_plus_n(base: Path):
    result = run(request(base, {"kind": "shell", "script": "kill -KILL $$"}))
    assert result == RunResult("failed", 137, "killed by SIGKILL")


# -- shell --------------------------------------------------------------------------------

def test_shell_inputs_only_through_the_environment(base: Path):
    out = base / "out.txt"
    action = {"kind": "shell", "params": [{"name": "msg"}, {"name": "list-arg"}],
              "script": f'printf "%s|%s" "$TRG_INPUT_MSG" "$TRG_INPUT_LIST_ARG" > {out}; '
                        f'cat > {base / "stdin.json"}',
              "cwd": None, "env": {}}
    msg = "$(touch pwned); `touch x`; a; rm -rf /\nline"
    ev = event(sha="abc")
    result = run(request(base, action, {"msg": msg, "list-arg": ["a", "b"]}, ev=ev))
    assert result.status == "succeeded"
    assert out.read_text() == msg + '|["a","b"]'
    assert json.loads((base / "stdin.json").read_text()) == ev
    assert files_named(base.parent, "pwned", "x") == []


@pytest.mark.parametrize("journaled", [False, True], ids=["event", "event_json"])
def test_stdin_is_one_line_a_strict_script_can_read(base: Path, journaled: bool):
    """The event on stdin ends with a newline: ``read -r`` under ``set -e`` (exit 1 at a
    last line without one) reads it whole, whether serve passes the journal's JSON or not."""
    from triggerlang.runtime.executor import event_json
    out = base / "read.json"
    action = {"kind": "shell", "params": [], "cwd": None, "env": {},
              "script": f'set -e; read -r ev; printf "%s" "$ev" > {out}; if read -r more; then exit 3; fi'}
    ev = event(sha="abc", note="naïve")
    extra = {}
    if journaled:
        data = json.dumps(ev["data"], separators=(",", ":"), ensure_ascii=True)
        extra["event_json"] = event_json(ev["id"], ev["source"], ev["type"], ev["time"], data)
    result = run(request(base, action, ev=ev, **extra))
    assert result == RunResult("succeeded", 0)
    assert json.loads(out.read_text()) == ev


def test_shell_gets_trg_variables_and_action_env(base: Path):
    out = base / "env.txt"
    action = {"kind": "shell", "script": f'echo "$TRG_RUN_ID $TRG_RULE $TRG_EVENT_SOURCE.$TRG_EVENT_TYPE $GREETING" > {out}',
              "env": {"GREETING": "hi"}}
    assert run(request(base, action, run_id=5)).status == "succeeded"
    assert out.read_text() == "5 r1 git.push hi\n"


# -- timeouts and cancel --------------------------------------------------------------------

def test_timeout_kills_the_whole_process_group(base: Path):
    action = {"kind": "exec", "argv": [{"value": "sh"}, {"value": "-c"}, {"value": "sleep 100 & sleep 100"}]}
    req = request(base, action, timeout=0.5)

    async def main():
        running = await start_action(req)
        pgid = running.pgid
        assert pgid is not None and pgid == running.pid
        assert os.getpgid(running.pid) == pgid != os.getpgid(0)
        t0 = time.monotonic()
        result = await running.wait()
        return result, pgid, time.monotonic() - t0

    result, pgid, elapsed = asyncio.run(main())
    assert result.status == "timed_out" and "timed out after 0.5s" in result.error
    assert elapsed < 5  # SIGTERM was enough: no wait for the SIGKILL grace
    with pytest.raises(ChildProcessError):  # the run's own process was reaped
        os.waitpid(pgid, os.WNOHANG)
    wait_for(lambda: group_gone(pgid), what="the process group to end")
    assert "timed_out" in req.log_path.read_text()


def test_timeout_escalates_to_sigkill(base: Path):
    action = {"kind": "shell", "script": "trap '' TERM; sleep 100 & sleep 100"}
    req = request(base, action, timeout=0.3, kill_grace=0.7)

    async def main():
        running = await start_action(req)
        t0 = time.monotonic()
        return await running.wait(), running.pgid, time.monotonic() - t0

    result, pgid, elapsed = asyncio.run(main())
    assert result.status == "timed_out" and result.exit_code == 128 + signal.SIGKILL
    assert 0.9 <= elapsed < 10
    wait_for(lambda: group_gone(pgid), what="the process group to end")


@pytest.mark.parametrize("path", ["spawner", "asyncio"])
def test_a_cancel_without_grace_hurries_a_timeouts_kill(base: Path, path: str, monkeypatch: pytest.MonkeyPatch):
    # serve's second Ctrl-C cancels with no grace: a run whose timeout has sent SIGTERM
    # (and would wait kill_grace before SIGKILL) is killed at once, on either start path.
    if path == "asyncio":
        from triggerlang.runtime import executor

        monkeypatch.setattr(executor, "_spawner_for", lambda req: None)
    termed = base / "termed"
    action = {"kind": "shell", "script": f"trap 'touch {termed}' TERM; while :; do sleep 1; done"}
    req = request(base, action, timeout=1, kill_grace=60)

    async def main():
        running = await start_action(req)
        await async_wait_for(termed.exists, what="the timeout's SIGTERM")
        t0 = time.monotonic()
        result = await running.cancel(grace=0)
        return result, running.pgid, time.monotonic() - t0

    result, pgid, elapsed = asyncio.run(main())
    assert result.status == "timed_out" and result.exit_code == 128 + signal.SIGKILL
    assert elapsed < 20  # not the 60 s kill grace
    wait_for(lambda: group_gone(pgid), what="the process group to end")


def test_a_second_ctrl_c_during_the_stops_sigterm_wait_kills_at_once(base: Path, monkeypatch: pytest.MonkeyPatch):
    # Past its grace a graceful stop sends SIGTERM and waits before SIGKILL; a second
    # Ctrl-C (``now``) during that wait kills at once.
    import logging

    from triggerlang.runtime import executor

    monkeypatch.setattr(executor, "STOP_KILL_GRACE", 60.0)
    ready, termed = base / "ready", base / "termed"
    action = {"kind": "shell", "script": f"trap 'touch {termed}' TERM; touch {ready}; while :; do sleep 1; done"}
    req = request(base, action, timeout=None)

    async def main():
        running = await start_action(req)
        await async_wait_for(ready.exists, what="the run to start")
        now = asyncio.Event()
        stop = asyncio.ensure_future(executor.stop_actions([running], 0, now, logging.getLogger("test")))
        await async_wait_for(termed.exists, what="the stop's SIGTERM")
        t0 = time.monotonic()
        now.set()
        await asyncio.wait_for(stop, 30)
        return await running.wait(), running.pgid, time.monotonic() - t0

    result, pgid, elapsed = asyncio.run(main())
    assert result.status == "interrupted" and result.exit_code == 128 + signal.SIGKILL
    assert elapsed < 20  # not the 60 s before SIGKILL
    wait_for(lambda: group_gone(pgid), what="the process group to end")


def test_cancel_stops_a_running_action(base: Path):
    ready = base / "ready"
    action = {"kind": "shell", "script": f"touch {ready}; sleep 100 & sleep 100"}
    req = request(base, action, timeout=60)

    async def main():
        running = await start_action(req)
        await async_wait_for(ready.exists, what="the run to start")
        assert not running.done()
        result = await running.cancel(grace=2)
        assert running.done()
        assert await running.wait() == result
        assert await running.cancel() == result  # idempotent
        return result, running.pgid

    result, pgid = asyncio.run(main())
    assert result.status == "cancelled"
    wait_for(lambda: group_gone(pgid), what="the process group to end")


def test_cancel_after_the_end_keeps_the_result(base: Path):
    async def main():
        running = await start_action(request(base, {"kind": "shell", "script": "exit 0"}))
        first = await running.wait()
        return first, await running.cancel()

    first, second = asyncio.run(main())
    assert first == second == RunResult("succeeded", 0)


def test_cancelling_the_waiter_does_not_stop_the_run(base: Path):
    done = base / "done"
    action = {"kind": "shell", "script": f"sleep 0.3; touch {done}"}

    async def main():
        running = await start_action(request(base, action))
        waiter = asyncio.create_task(running.wait())
        await asyncio.sleep(0.05)
        waiter.cancel()
        return await running.wait()

    assert asyncio.run(main()).status == "succeeded"
    assert done.exists()


# -- http -----------------------------------------------------------------------------------

class Hook:
    """A real HTTP server on a free loopback port that records what it receives."""

    def __init__(self) -> None:
        self.requests: list[dict] = []
        self.release = threading.Event()
        hook = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                hook.requests.append({"path": self.path, "headers": dict(self.headers), "body": body})
                if self.path == "/slow":
                    hook.release.wait(30)
                code = {"/ok": 200, "/created": 201, "/fail": 503, "/redirect": 302}.get(self.path, 404)
                payload = b"x" * 100_000 if self.path == "/fail" else b'{"accepted": true}'
                self.send_response(code)
                if code == 302:
                    self.send_header("Location", "/ok")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.release.set()
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def hook(monkeypatch: pytest.MonkeyPatch):
    for var in ("http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.delenv(var, raising=False)
    h = Hook()
    yield h
    h.close()


def http_action(url: str, secret: str | None = "orchestrator") -> dict:
    return {"kind": "http", "method": "post", "url": url, "secret": secret,
            "params": [{"name": "sha"}, {"name": "stage", "default": "staging"}], "env": {}}


def test_http_posts_a_signed_body(base: Path, hook: Hook):
    ev = event(sha="abc")
    req = request(base, http_action(hook.url + "/ok"), {"sha": "abc"}, run_id=9, ev=ev,
                  secrets={"orchestrator": "s3cr3t"})
    assert run(req) == RunResult("succeeded", 200)
    [got] = hook.requests
    body = got["body"]
    assert json.loads(body) == {"run_id": 9, "rule": "r1", "action": "act",
                                "inputs": {"sha": "abc", "stage": "staging"}, "event": ev}
    expected = "sha256=" + hmac.new(b"s3cr3t", body, hashlib.sha256).hexdigest()
    assert got["headers"]["X-Triggerlang-Signature"] == expected == sign("s3cr3t", body)
    assert got["headers"]["Content-Type"] == "application/json"
    log = req.log_path.read_text()
    assert "HTTP 200" in log and '{"accepted": true}' in log
    assert "s3cr3t" not in log


def test_http_without_secret_is_unsigned(base: Path, hook: Hook):
    assert run(request(base, http_action(hook.url + "/created", secret=None))) == RunResult("succeeded", 201)
    assert "X-Triggerlang-Signature" not in hook.requests[0]["headers"]


def test_http_error_status_is_a_failure_with_that_code(base: Path, hook: Hook):
    req = request(base, http_action(hook.url + "/fail"), secrets={"orchestrator": "k"})
    result = run(req)
    assert result.status == "failed" and result.exit_code == 503
    log = req.log_path.read_text()
    assert "HTTP 503" in log and "truncated" in log
    assert log.count("x") <= 64 * 1024 + 200
    assert run(request(base, http_action(hook.url + "/redirect"), secrets={"orchestrator": "k"}, run_id=2)
               ).exit_code == 302
    assert [r["path"] for r in hook.requests] == ["/fail", "/redirect"]  # redirect not followed


def test_http_network_error(base: Path, hook: Hook):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed again at once: nothing listens there
    req = request(base, http_action(f"http://127.0.0.1:{port}/x", secret=None))
    result = run(req)
    assert result.status == "failed" and result.exit_code is None and result.error
    assert "failed" in req.log_path.read_text()


def test_http_missing_secret_value_and_bad_url(base: Path, hook: Hook):
    result = run(request(base, http_action(hook.url + "/ok"), secrets={}))
    assert result.status == "failed" and "orchestrator" in result.error
    result = run(request(base, http_action("file:///etc/passwd", secret=None)))
    assert result.status == "failed" and "http" in result.error
    assert hook.requests == []


def test_http_timeout_and_cancel(base: Path, hook: Hook):
    t0 = time.monotonic()
    result = run(request(base, http_action(hook.url + "/slow", secret=None), timeout=0.3))
    assert result.status == "timed_out" and time.monotonic() - t0 < 5

    async def main():
        running = await start_action(request(base, http_action(hook.url + "/slow", secret=None), run_id=2))
        await async_wait_for(lambda: len(hook.requests) == 2, what="the second request")
        return await running.cancel()

    assert asyncio.run(main()).status == "cancelled"


def test_stdin_is_the_same_line_whether_made_from_the_journal_or_from_the_event() -> None:
    """serve's live runs get stdin made from the journal's JSON of the event (no decoding);
    recovered runs and the portable path encode the event: both give the same bytes, one
    line of ASCII JSON that decodes to the event, for a real payload and for text a JSON
    encoder can trip on."""
    from triggerlang.runtime.executor import _event_bytes, event_json
    from triggerlang.runtime.store import dumps

    payload = json.loads((Path(__file__).resolve().parents[2] / "shared" / "fixtures" / "webhooks" / "github"
                          / "pull_request-labeled.json").read_text())
    for data in (payload, {"text": "caf\u00e9 \u2603 \U0001f600", "broken": "\ud800", "nl": "a\nb", "n": [1.5, None]}):
        event = {"id": "evt_0123456789abcdef", "source": "github", "type": "push", "time": "2026-12-06T09:00:00.000Z",
                 "data": data}
        made = event_json(event["id"], event["source"], event["type"], event["time"], dumps(data))
        assert made == _event_bytes(event)
        assert made.isascii() and b"\n" not in made
        assert json.loads(made) == event


@pytest.mark.parametrize("path", ["spawner", "asyncio"])
@pytest.mark.parametrize("count", [1800, 12000])
def test_a_run_with_a_long_argv_starts_and_the_next_run_too(base: Path, count: int, path: str,
                                                            monkeypatch: pytest.MonkeyPatch):
    """A run whose argv, environment and log header together are larger than one message
    to the spawner (1,800 paths from a debounce window: ~0.3 MB) starts with every
    argument; it used to cut the message at 256 KiB, which killed the spawner ("marshal
    data too short") and failed the run. 12,000 paths are over what execve takes for the
    one ``TRG_INPUT_PATHS`` string: a failed run that says why, and the next run starts."""
    if path == "asyncio":
        from triggerlang.runtime import executor

        monkeypatch.setattr(executor, "_spawner_for", lambda req: None)
    paths = [f"src/some/fairly/long/folder/name/module_number_{i}.py" for i in range(count)]
    action = probe_action([{"param": "paths"}], params=[{"name": "paths"}])
    result, seen = run_probe(base, action, {"paths": paths})
    if count == 1800:
        assert result == RunResult("succeeded", 0)
        assert seen["argv"] == paths and json.loads(seen["env"]["TRG_INPUT_PATHS"]) == paths
    else:
        assert result.status == "failed" and "too long for the system" in (result.error or ""), result
        assert "the largest, TRG_INPUT_PATHS, " in result.error
    after = {"kind": "exec", "params": [], "argv": [{"value": "true"}]}
    assert run(request(base, after, run_id=2)) == RunResult("succeeded", 0)


@pytest.mark.parametrize("path", ["spawner", "asyncio"])
def test_an_actions_stop_signal_and_grace_are_what_a_cancel_sends(base: Path, path: str,
                                                                   monkeypatch: pytest.MonkeyPatch):
    # `action app = exec ... stop SIGINT grace 60s` (watchexec's --stop-signal and
    # --stop-timeout): a cancel sends SIGINT, not SIGTERM, and the run's grace before SIGKILL
    # is the action's 60 s instead of 5 s
    if path == "asyncio":
        from triggerlang.runtime import executor

        monkeypatch.setattr(executor, "_spawner_for", lambda req: None)
    ready, got = base / "ready", base / "got"
    argv = [{"value": v} for v in (sys.executable, "-c", STOPPABLE, str(got), str(ready))]
    req = request(base, {"kind": "exec", "params": [], "argv": argv, "stop_signal": "SIGINT", "stop_grace": 60.0})
    assert req.kill_grace == 60.0 and req.stop_signal == signal.SIGINT

    async def main():
        running = await start_action(req)
        await async_wait_for(ready.exists, what="the run's handlers")
        return await running.cancel()

    result = asyncio.run(main())
    assert got.exists() and got.read_text() == "SIGINT", (result, req.log_path.read_text())
    assert result.status == "cancelled" and result.exit_code == 4


def test_an_actions_stop_grace_bounds_the_wait_before_sigkill(base: Path):
    # a program that ignores its stop signal is killed after the action's grace (0.3 s
    # here), not after the 5 s default: measured generously, well under the default
    action = {"kind": "shell", "script": "trap '' HUP; sleep 100 & sleep 100", "stop_signal": "SIGHUP",
              "stop_grace": 0.3}
    req = request(base, action)

    async def main():
        running = await start_action(req)
        await asyncio.sleep(0.2)  # (not a race: a cancel before the start is held until it)
        t0 = time.monotonic()
        result = await running.cancel()
        return result, running.pgid, time.monotonic() - t0

    result, pgid, elapsed = asyncio.run(main())
    assert result.status == "cancelled" and result.exit_code == 128 + signal.SIGKILL
    assert elapsed < 4.5, elapsed
    wait_for(lambda: group_gone(pgid), what="the process group to end")


@pytest.mark.parametrize("path", ["spawner", "asyncio"])
def test_a_run_never_inherits_an_ignored_stop_signal(base: Path, path: str):
    """``triggerc serve &`` in a script starts serve with SIGINT and SIGQUIT ignored, and an
    ignored signal stays ignored across exec: `stop SIGQUIT` (nginx's graceful stop) would
    then do nothing. The spawner (and serve, through stop_on_signals, for runs it starts
    itself) hand their runs the default of every stop signal."""
    script = """
import asyncio, signal, sys
from pathlib import Path
from triggerlang.runtime import executor
from triggerlang.runtime.executor import RunRequest, close_spawner, start_action, stop_on_signals

for s in (signal.SIGQUIT, signal.SIGUSR1, signal.SIGINT):
    signal.signal(s, signal.SIG_IGN)
base, path = Path(sys.argv[1]), sys.argv[2]
probe = ("import signal; print('ignored:', *(signal.getsignal(s) is signal.SIG_IGN "
         "for s in (signal.SIGQUIT, signal.SIGUSR1, signal.SIGINT)))")

async def main():
    if path == "asyncio":
        executor._spawner_for = lambda req: None
        stop_on_signals(asyncio.get_running_loop(), asyncio.Event(), asyncio.Event())  # what serve does
    req = RunRequest(run_id=1, rule="r", action_name="a", action={"kind": "exec", "params": [],
                     "argv": [{"value": sys.executable}, {"value": "-c"}, {"value": probe}]}, inputs={},
                     event={"id": "e", "source": "git", "type": "push", "data": {}}, base_dir=base,
                     log_path=base / "1.log", timeout=30, secrets={})
    res = await (await start_action(req)).wait()
    close_spawner()
    print(res.status)
    assert signal.getsignal(signal.SIGQUIT) is not signal.SIG_DFL  # this process still ignores it

asyncio.run(main())
"""
    r = subprocess.run([sys.executable, "-c", script, str(base), path], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0 and r.stdout.strip() == "succeeded", r.stdout + r.stderr
    assert "ignored: False False False" in (base / "1.log").read_text()


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the spawner process is Linux's fast path")
def test_a_spawner_whose_serve_is_gone_before_its_first_message_exits_quietly() -> None:
    """Before: end-of-file before any message (serve killed, or closed, right after it
    started the spawner) left the spawner's quit flag unset, and it died of an
    UnboundLocalError whose traceback went to serve's log (seen in CI)."""
    from triggerlang.runtime import spawn

    mine, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    proc = subprocess.Popen([sys.executable, "-I", "-S", spawn.__file__, str(theirs.fileno()), "02", "SIGTERM,SIGINT"],
                            pass_fds=(theirs.fileno(),), stdin=subprocess.DEVNULL, stderr=subprocess.PIPE)
    theirs.close()
    mine.close()  # serve is gone before it sent anything
    # (the spawner forks and its first process exits: stderr reaches end-of-file when the spawner exits)
    _, err = proc.communicate(timeout=10)
    assert proc.returncode == 0 and err == b"", err
