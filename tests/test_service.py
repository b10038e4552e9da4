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
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Iterator

import httpx
import pytest

from runtime_helpers import DEADLINE, Server, alive, journal_runs, post, stop_ok, wait_for

README = Path(__file__).resolve().parents[1] / "README.md"
IN_CI = os.environ.get("CI") == "true"

RULES = """
action dump = shell "env > env.out"
d: on http.post path="/d" run dump
"""


class NotifySocket:
    """A datagram socket bound where ``NOTIFY_SOCKET`` points: what systemd listens on."""

    def __init__(self, abstract: bool) -> None:
        self.folder = tempfile.mkdtemp(prefix="trg-notify-", dir="/tmp")  # a short path: sun_path is 108 bytes
        if abstract:
            self.name = f"@trg-test-{os.getpid()}-{time.monotonic_ns()}"
            address = "\0" + self.name[1:]
        else:
            self.name = address = os.path.join(self.folder, "notify")
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(address)
        self.got: list[dict[str, str]] = []

    def next(self, key: str, timeout: float = DEADLINE) -> dict[str, str]:
        """The next message that sets ``key`` (messages before it are kept in ``got``)."""
        end = time.monotonic() + timeout
        while True:
            left = end - time.monotonic()
            if left <= 0:
                raise AssertionError(f"no {key} message within {timeout:.0f}s; got {self.got}")
            self.sock.settimeout(left)
            try:
                data = self.sock.recv(4096).decode()
            except socket.timeout:
                continue
            msg = dict(line.split("=", 1) for line in data.split("\n") if line)
            self.got.append(msg)
            if key in msg:
                return msg

    def close(self) -> None:
        self.sock.close()
        shutil.rmtree(self.folder, ignore_errors=True)


@pytest.fixture
def notify_socket(request) -> Iterator[NotifySocket]:
    ns = NotifySocket(abstract=getattr(request, "param", False))
    yield ns
    ns.close()


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
