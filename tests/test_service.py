"""``triggerc serve`` under a service manager and in a container (README: Running as a service).

Real parts only: the notification socket is a real ``AF_UNIX`` datagram socket that the
test binds, as systemd does; a closing terminal is a real pseudo-terminal whose master the
test closes; a container is a real PID namespace (``unshare --pid --fork``, as root); the
unit file is the README's own, verified with ``systemd-analyze verify`` and its
``ExecStart`` run.
"""

from __future__ import annotations

import os
import pty
import re
import shlex
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Iterator

import httpx
import pytest

from runtime_helpers import (DEADLINE, NotifySocket, Server, alive, journal_runs, namespace_pid1,
                             namespace_processes, pid_in, pid_namespace_or_skip, post, stop_ok, wait_for)

README = Path(__file__).resolve().parents[1] / "README.md"
IN_CI = os.environ.get("CI") == "true"

RULES = """
action dump = shell "env > env.out"
d: on http.post path="/d" run dump
"""


@pytest.fixture
def notify_socket(request) -> Iterator[NotifySocket]:
    ns = NotifySocket(abstract=getattr(request, "param", False))
    yield ns
    ns.close()


# =========================================================================== sd_notify

@pytest.mark.parametrize("notify_socket", [False, True], ids=["path", "abstract"], indirect=True)
def test_type_notify_ready_once_listening_reloading_then_ready_and_stopping(
        tmp_path: Path, serve, notify_socket: NotifySocket) -> None:
    s = serve(RULES, "--no-reload", env={"NOTIFY_SOCKET": notify_socket.name}, start=False)
    s.start(wait=False)
    ready = notify_socket.next("READY")
    # ready means listening: the port is bound before READY=1 is sent
    port = int(re.search(r"http on http://127\.0\.0\.1:(\d+)", ready["STATUS"]).group(1))
    assert ready["STATUS"].startswith(f"serving 1 rule(s) from {s.rules}"), ready
    assert httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=DEADLINE).status_code == 200
    s.port = port
    # the runs' processes do not inherit the service manager's variables
    assert post(s, "/d", {}).status_code == 202
    s.wait_runs(lambda rs: rs and rs[0]["status"] == "succeeded", "the run")
    env = (s.rules.parent / "env.out").read_text()
    assert "PATH=" in env and "NOTIFY_SOCKET=" not in env and "WATCHDOG_USEC=" not in env, env
    # SIGHUP (ExecReload=kill -HUP, Type=notify-reload): RELOADING=1 with the monotonic time,
    # then READY=1, also when nothing changed
    before = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
    s.proc.send_signal(signal.SIGHUP)
    reloading = notify_socket.next("RELOADING")
    after = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
    assert before <= int(reloading["MONOTONIC_USEC"]) <= after, (before, reloading, after)
    assert notify_socket.next("READY")["STATUS"].startswith("serving 1 rule(s)")
    # a SIGHUP that finds new rules loads them
    s.rules.write_text(RULES + 'e: on http.post path="/e" run dump\n')
    s.proc.send_signal(signal.SIGHUP)
    notify_socket.next("RELOADING")
    assert notify_socket.next("READY")["STATUS"].startswith("serving 2 rule(s)")
    s.wait_log("reloaded ")
    assert post(s, "/e", {}).status_code == 202
    s.proc.send_signal(signal.SIGTERM)
    stopping = notify_socket.next("STOPPING")
    assert stopping["EXTEND_TIMEOUT_USEC"] == str((10 + 10) * 1_000_000), stopping  # --grace (10 s) and a margin
    assert s.proc.wait(DEADLINE) == 0, s.tail()
    s._fh.close()


def test_a_reload_of_a_changed_rules_file_is_told_as_a_reload(tmp_path: Path, serve,
                                                              notify_socket: NotifySocket) -> None:
    s = serve(RULES, env={"NOTIFY_SOCKET": notify_socket.name})
    notify_socket.next("READY")
    s.rules.write_text(RULES + 'e: on http.post path="/e" run dump\n')
    notify_socket.next("RELOADING")
    assert notify_socket.next("READY")["STATUS"].startswith("serving 2 rule(s)")
    stop_ok(s)


def test_watchdog_pings_at_half_its_interval_and_not_for_another_pid(tmp_path: Path, serve,
                                                                     notify_socket: NotifySocket) -> None:
    s = serve(RULES, env={"NOTIFY_SOCKET": notify_socket.name, "WATCHDOG_USEC": "400000"})
    notify_socket.next("READY")
    t0 = time.monotonic()
    for _ in range(5):
        notify_socket.next("WATCHDOG")
    assert time.monotonic() - t0 < 5 * 0.2 + 3, "pings every 0.2 s"
    stop_ok(s)
    # WATCHDOG_PID names another process (serve was started by a wrapper): not ours to ping
    other = NotifySocket(abstract=True)  # (the first one may still hold the first serve's last pings)
    try:
        s2 = serve(None, env={"NOTIFY_SOCKET": other.name, "WATCHDOG_USEC": "200000", "WATCHDOG_PID": "1"})
        other.next("READY")
        time.sleep(0.5)  # long enough for two pings, were there any (the assertion is on their absence)
        s2.proc.send_signal(signal.SIGTERM)
        other.next("STOPPING")
        assert s2.proc.wait(DEADLINE) == 0
        s2._fh.close()
        assert not [m for m in other.got if "WATCHDOG" in m], other.got
    finally:
        other.close()


def test_a_notify_socket_that_is_gone_does_not_fail_serve(tmp_path: Path, serve) -> None:
    s = serve(RULES, env={"NOTIFY_SOCKET": str(tmp_path / "gone.sock"), "WATCHDOG_USEC": "100000"})
    s.proc.send_signal(signal.SIGHUP)
    s.wait_log("SIGHUP: ")
    assert post(s, "/d", {}).status_code == 202
    stop_ok(s)


# =========================================================================== SIGHUP

def test_sighup_reloads_the_rules_as_sigusr1_does(tmp_path: Path, serve) -> None:
    # systemd's ExecReload=/bin/kill -HUP $MAINPID, nginx's and adnanh/webhook's reload
    s = serve(RULES, "--no-reload")
    s.rules.write_text(RULES + 'e: on http.post path="/e" run dump\n')
    assert post(s, "/e", {}).status_code == 404
    s.proc.send_signal(signal.SIGHUP)
    s.wait_log(f"reloaded {s.rules}: 2 rule(s)")
    assert s.proc.poll() is None and "stopping" not in s.log(), s.tail()
    assert post(s, "/e", {}).status_code == 202
    stop_ok(s)


def hang_in_a_terminal(s: Server, before: list[str] = (), after: list[str] = ()) -> int:
    """Start ``s`` in a session of its own whose controlling terminal is a new pty (``before``
    and ``after`` wrap ``setsid --ctty``), start its /hang run; the pty's master end."""
    s.argv = lambda: [*before, "setsid", "--ctty", *after, *Server.argv(s)]  # type: ignore[method-assign]
    master, slave = pty.openpty()
    try:
        s.start(stdin=slave)
    finally:
        os.close(slave)
    post(s, "/hang", {})
    s.wait_runs(lambda rs: rs and rs[0]["status"] == "running", "the run to start")
    return master


@pytest.mark.parametrize("nohup", [False, True], ids=["terminal", "nohup"])
def test_the_sighup_of_a_closed_terminal_stops_serve_and_a_kill_hup_reloads_it(
        tmp_path: Path, serve, nohup: bool) -> None:
    # serve in a terminal of its own (a session with the pty as its controlling terminal)
    s = serve("""
action hang = shell "echo $$ > run.pid; exec sleep 60"
h: on http.post path="/hang" run hang
""", "--grace", "0.5", start=False)
    master = hang_in_a_terminal(s, after=["nohup"] if nohup else [])
    try:
        # a kill -HUP while the terminal is there: a reload, not a stop
        s.proc.send_signal(signal.SIGHUP)
        s.wait_log("SIGHUP: ")
        assert "nothing to reload" in s.log() and s.proc.poll() is None, s.tail()
        pid = pid_in(tmp_path / "proj" / "run.pid", "the run's pid file", on_fail=s.tail)
    finally:
        os.close(master)  # the terminal closes: the kernel hangs it up and sends SIGHUP
    if nohup:
        s.wait_log("SIGHUP: the terminal closed; serve keeps running")
        assert s.proc.poll() is None and alive(pid), s.tail()
        # the terminal's SIGHUP came once; a kill -HUP after it reloads again
        s.proc.send_signal(signal.SIGHUP)
        wait_for(lambda: s.log().count("nothing to reload") == 2, "a second reload", on_fail=s.tail)
        assert s.log().count("the terminal closed") == 1, s.tail()
        stop_ok(s)
        return
    assert s.proc.wait(DEADLINE) == 0, s.tail()
    s._fh.close()
    assert "SIGHUP: the terminal closed; serve stops" in s.log() and "INFO stopped cleanly" in s.log()
    assert "Traceback" not in s.log()
    assert [r["status"] for r in journal_runs(s.state)] == ["interrupted"]
    wait_for(lambda: not alive(pid), f"the run's process {pid} to be gone")


# =========================================================================== PID 1

def test_as_pid_1_of_a_container_serve_reaps_orphans_and_stops_on_sigterm(tmp_path: Path, serve) -> None:
    # docker run IMAGE triggerc serve rules.trg: serve is PID 1 of its PID namespace
    pid_namespace_or_skip()
    s = serve("""
action orphan = shell "sleep 0.3 & echo left a child behind"
o: on http.post path="/o" run orphan
""", start=False)
    s.argv = lambda: ["unshare", "--pid", "--fork", "--mount-proc", *Server.argv(s)]  # type: ignore[method-assign]
    s.start()
    pid1 = namespace_pid1(s.proc.pid)  # PID 1 inside, as the host sees it
    for _ in range(3):
        assert post(s, "/o", {}).status_code == 202
    s.wait_runs(lambda rs: len(rs) == 3 and all(r["status"] == "succeeded" for r in rs), "the three runs")
    # the orphaned sleeps end, re-parented to PID 1: reaped, not left as zombies
    wait_for(lambda: not [p for p in namespace_processes(pid1) if p[2] == "sleep"],
             "the orphans to be reaped", on_fail=lambda: f"{namespace_processes(pid1)}\n{s.tail()}")
    # docker stop: SIGTERM to PID 1 only; a graceful stop, and its exit code is the container's
    os.kill(pid1, signal.SIGTERM)
    assert s.proc.wait(DEADLINE) == 0, s.tail()
    s._fh.close()
    assert "INFO stopped cleanly" in s.log() and "Traceback" not in s.log(), s.log()


def test_as_pid_1_with_a_terminal_one_ctrl_c_is_one_graceful_stop(tmp_path: Path, serve) -> None:
    # docker run -it: a Ctrl-C reaches serve once (not also forwarded by PID 1, which would
    # make it the "second Ctrl-C" that kills the runs); docker stop's SIGTERM then is the second
    pid_namespace_or_skip()
    s = serve("""
action hang = shell "echo $$ > run.pid; exec sleep 60"
h: on http.post path="/hang" run hang
""", "--grace", "60", start=False)
    master = hang_in_a_terminal(s, before=["unshare", "--pid", "--fork", "--mount-proc"])
    try:
        # the run's own process is there (not only its start asked for): the Ctrl-C is about it
        pid_in(tmp_path / "proj" / "run.pid", "the run's pid file", on_fail=s.tail)
        os.write(master, b"\x03")  # Ctrl-C on the container's terminal
        s.wait_log("press Ctrl-C again to stop now")
        time.sleep(1.0)  # a second SIGINT would have come at once (the assertion is on its absence)
        assert "stopping now" not in s.log() and s.proc.poll() is None, s.tail()
        os.kill(namespace_pid1(s.proc.pid), signal.SIGTERM)  # forwarded: the second one
        assert s.proc.wait(DEADLINE) == 0, s.tail()
    finally:
        os.close(master)
    s._fh.close()
    assert "stopping now: 1 run(s) stopped and marked interrupted" in s.log(), s.log()
    assert [r["status"] for r in journal_runs(s.state)] == ["interrupted"]


# =========================================================================== the journal

@pytest.mark.parametrize("fmt", ["text", "json"])
def test_logs_to_the_journal_carry_their_priority(tmp_path: Path, serve, fmt: str) -> None:
    # StandardError=journal: systemd names the stream in JOURNAL_STREAM (device:inode); here
    # the stream is the log file, as the test names it
    log = tmp_path / "serve.log"
    log.touch()
    st = log.stat()
    s = serve(RULES, "--log-format", fmt, env={"JOURNAL_STREAM": f"{st.st_dev}:{st.st_ino}"}, start=False)
    s.start(wait=False)
    s.wait_log("serving 1 rule(s)")
    stop_ok(s)
    lines = s.log().splitlines()
    assert lines and all(re.match(r"<[2-7]>", ln) for ln in lines), lines
    warning = next(ln for ln in lines if "TRG209" in ln)
    assert warning.startswith("<4>"), warning
    assert any(ln.startswith("<6>") and "stopped cleanly" in ln for ln in lines), lines
    if fmt == "json":
        import json

        assert [json.loads(ln[3:])["level"] for ln in lines][0] == "warning"
    else:  # the journal stamps each entry itself
        assert warning.startswith("<4>WARNING "), warning


def test_a_journal_stream_that_is_not_stderr_changes_nothing(tmp_path: Path, serve) -> None:
    # inherited from a service that redirected serve's stderr elsewhere
    (tmp_path / "other").touch()
    other = (tmp_path / "other").stat()
    s = serve(RULES, env={"JOURNAL_STREAM": f"{other.st_dev}:{other.st_ino}"})
    stop_ok(s)
    assert not any(ln.startswith("<") for ln in s.log().splitlines()), s.log()
    assert re.match(r"\d{4}-\d\d-\d\dT", s.log()), s.log()


# =========================================================================== the state folder

def test_the_state_folder_is_created_for_its_owner_only(tmp_path: Path, serve) -> None:
    old = os.umask(0o022)
    try:
        s = serve(RULES)
    finally:
        os.umask(old)
    assert post(s, "/d", {}).status_code == 202
    s.wait_runs(lambda rs: rs and rs[0]["status"] == "succeeded", "the run")
    files = {p.relative_to(s.state).as_posix(): p.stat().st_mode & 0o777 for p in [s.state, *s.state.rglob("*")]}
    stop_ok(s)
    assert files.pop(".") == 0o700 and files.pop("logs") == 0o700, files
    files.pop("serve.lock")  # holds the pid only
    assert files and set(files.values()) == {0o600}, files   # the journal, its WAL, the run's log
    assert "is open to other users" not in s.log()


def test_a_state_folder_open_to_others_is_warned_about(tmp_path: Path, serve) -> None:
    state = tmp_path / "open"
    state.mkdir()
    state.chmod(0o755)  # systemd's StateDirectory= without StateDirectoryMode=
    s = serve(RULES, state=state)
    assert f"WARNING the state directory {state} is open to other users (mode 0755)" in s.log(), s.tail()
    stop_ok(s)


# =========================================================================== the README's unit file

def _readme_block(lang: str, first_line: str) -> str:
    """The README's fenced ``lang`` block that starts with ``first_line``."""
    for m in re.finditer(rf"```{lang}\n(.*?)```", README.read_text(), re.S):
        if m.group(1).startswith(first_line):
            return m.group(1)
    raise AssertionError(f"no ```{lang} block starting {first_line!r} in the README")


def _unit_exec_start(unit: str) -> list[str]:
    (line,) = [ln for ln in unit.splitlines() if ln.startswith("ExecStart=")]
    return shlex.split(line.removeprefix("ExecStart="))


def test_the_readme_unit_file_verifies_and_its_exec_start_serves(tmp_path: Path, serve,
                                                                  notify_socket: NotifySocket) -> None:
    unit = _readme_block("ini", "[Unit]")
    assert "Type=notify" in unit and "ExecReload=/bin/kill -HUP $MAINPID" in unit and "StateDirectoryMode=0700" in unit
    argv = _unit_exec_start(unit)
    assert argv[:2] == ["/usr/local/bin/triggerc", "serve"], argv
    # the ExecStart line as it is, but for the paths of this machine
    state = Path(argv[argv.index("--state") + 1])
    s = serve(RULES, start=False)
    args = [a if a != str(state) else str(s.state) for a in argv[3:]]
    s.argv = lambda: [*Server.argv(s)[:3], "serve", str(s.rules), *args, "--port", "0"]  # type: ignore[method-assign]
    s.env["NOTIFY_SOCKET"] = notify_socket.name
    s.start(wait=False)  # its log is JSON: the notification says when it is ready
    ready = notify_socket.next("READY")
    assert ready["STATUS"].startswith(f"serving 1 rule(s) from {s.rules}; http on"), ready
    stop_ok(s)
    assert '"message": "stopped cleanly"' in s.log(), s.tail()
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        if IN_CI:
            pytest.fail("systemd-analyze is not installed: .ci/run installs systemd")
        pytest.skip("no systemd-analyze here: the unit's ExecStart ran, the unit itself is not verified")
    # verify wants the program to exist: the test's own triggerc stands at its place
    triggerc = Path(shutil.which("triggerc") or Path(sys.executable).parent / "triggerc")
    path = tmp_path / "triggerlang.service"
    path.write_text(unit.replace("/usr/local/bin/triggerc", str(triggerc)))
    r = subprocess.run([analyze, "verify", str(path)], capture_output=True, text=True, timeout=60)
    problems = [ln for ln in (r.stdout + r.stderr).splitlines() if str(path) in ln or "triggerlang.service" in ln]
    assert r.returncode == 0 and not problems, r.stdout + r.stderr


def test_the_readme_dockerfile_runs_serve_in_exec_form_with_flags_it_takes(tmp_path: Path, serve,
                                                                            notify_socket: NotifySocket) -> None:
    # the exec form (a JSON list) makes serve PID 1, where docker stop's SIGTERM reaches it
    import json

    dockerfile = _readme_block("dockerfile", "FROM ")
    (cmd,) = [ln.removeprefix("CMD ") for ln in dockerfile.splitlines() if ln.startswith("CMD ")]
    argv = json.loads(cmd)
    assert argv[:2] == ["triggerc", "serve"] and "--host" in argv and "--state" in argv, argv
    # as the container would run it, but on loopback and this machine's paths
    swap = {argv[2]: None, argv[argv.index("--state") + 1]: None, argv[argv.index("--host") + 1]: "127.0.0.1"}
    s = serve(RULES, start=False)
    swap[argv[2]], swap[argv[argv.index("--state") + 1]] = str(s.rules), str(s.state)
    s.argv = lambda: [*Server.argv(s)[:3], *(swap.get(a, a) for a in argv[1:]), "--port", "0"]  # type: ignore[method-assign]
    s.env["NOTIFY_SOCKET"] = notify_socket.name
    s.start(wait=False)
    assert notify_socket.next("READY")["STATUS"].startswith(f"serving 1 rule(s) from {s.rules}; http on http://127.0.0.1:")
    stop_ok(s)
