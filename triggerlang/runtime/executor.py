"""Runs one action safely: ``exec``, ``shell`` or ``http`` (SPEC §5).

Using it
--------
The engine builds a :class:`RunRequest` from the journal's run row, the manifest's action
spec and the event, then::

    running = await start_action(req)     # returns once the process is spawned
    result = await running.wait()         # RunResult(status, exit_code, error)
    # or, for busy=restart / shutdown:
    result = await running.cancel(grace=5.0)

:func:`start_action` never raises for a problem of the run itself (program not found, a
missing input, a bad URL): it returns a :class:`RunningAction` that is already finished
with status ``failed`` and the reason in ``error`` (also written to the log). The result
``status`` is one of ``succeeded``, ``failed``, ``timed_out``, ``cancelled``: exactly what
:meth:`Journal.mark_finished` takes.

Action specs (the manifest's ``"actions"`` entries)
-----------------------------------------------------
``{"kind": "exec", "params": [{"name": "sha"}, {"name": "stage", "default": "staging"}],
"argv": [{"value": "./deploy.sh"}, {"param": "sha"}], "cwd": "dir" | null, "env": {...}}``
    argv is built from the spec only: ``{"value"}`` is a literal, ``{"param"}`` the input.
    A string input is one argument; a number or boolean its JSON text (``true``); ``null``
    the empty string; a list one argument per item, in place. Never through a shell. A
    relative program with a ``/`` (``./deploy.sh``) is relative to ``base_dir``; a bare
    name is looked up on ``PATH``.
``{"kind": "shell", "script": "...", "params": [...], "cwd": ..., "env": {...}}``
    ``/bin/sh -c script``; inputs reach the script only as ``TRG_INPUT_<NAME>`` variables.
``{"kind": "http", "method": "post", "url": "...", "secret": "name" | null, "params": [...]}``
    POSTs ``{run_id, rule, action, inputs, event}`` as JSON; with a secret, the header
    ``X-Triggerlang-Signature: sha256=<hex HMAC-SHA256 of the body>`` (key: the secret's
    value from ``RunRequest.secrets``). ``exit_code`` is the HTTP status: 2xx is
    ``succeeded``, any other status ``failed`` (redirects are not followed); a network
    error is ``failed`` with ``exit_code`` None. The request honours the usual
    ``http_proxy``/``https_proxy``/``no_proxy`` variables; the status and up to 64 KiB of
    the response body go to the log.

Inputs missing from ``RunRequest.inputs`` take the parameter's ``default``; a parameter
used in argv with neither is a ``failed`` run.

Processes
---------
Every exec/shell run inherits ``os.environ``, plus the action's ``env``, plus
``TRG_RUN_ID``, ``TRG_SERVE_ID`` (:data:`SERVE_ID`), ``TRG_RULE``, ``TRG_EVENT_ID``,
``TRG_EVENT_SOURCE``, ``TRG_EVENT_TYPE`` and ``TRG_INPUT_<NAME>`` per input (name
upper-cased, ``-`` -> ``_``; strings as is, anything else as JSON text, compact and ASCII as stdin's). The event JSON is written to its stdin, which is then
closed. stdout and stderr go to ``log_path`` (parents created), after a header line that
shows the argv (inputs are never secrets, and secret values are never written).

How a process is started (Linux, Python 3.11-3.13): by the spawner, a small process of
its own (:mod:`triggerlang.runtime.spawn`, one per event loop, started with the first
run), never on the event loop: ``serve`` sends it one message per run and hears back
when the run started and when it ended. The spawner opens the run's log file, writes its
header, puts the event JSON in a memfd that becomes the child's stdin (nothing has to be
fed to a pipe, and a child that exits without reading it is no error), and calls
``_posixsubprocess.fork_exec`` (vfork + exec, the call ``subprocess`` makes). The
program is looked up on ``PATH`` once (then cached while it is there) instead of trying
each entry. A
``die_with_parent`` run (a worker's) goes through ``setpriv --pdeathsig KILL``: it dies
with the spawner's thread that started it, and the spawner exits with its worker.
Elsewhere (and for ``die_with_parent`` runs without ``setpriv``), asyncio's subprocess
support does the same in the worker or ``serve``.

The run gets its own session and process group (``start_new_session``). On timeout or
cancel the whole group gets SIGTERM, then SIGKILL after the grace period (5 s for a
timeout, SPEC §3); the process is always reaped. A process that dies of signal N reports
``exit_code`` 128+N, as a shell would.

When the run's process exits on its own, anything it left running in the background keeps
running (a script may start a daemon on purpose); the run is over.

Orphans in the group (a ``cmd &`` that outlives its shell) are reparented to PID 1, which
reaps them once dead; under an init that does not reap, they linger as zombies, which
hold no resources and are not counted as "still running" here.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import hashlib
import hmac
import json
import logging
import marshal
import os
import secrets as _secrets
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import weakref
from collections import deque
from functools import partial
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping

from .store import LOG_META, LOG_STDERR, dumps
from ..actions import (ACTION_KINDS, STOP_SIGNALS, ActionError, action_kind, bind_inputs as _bind_inputs, env_text as _env_text,
                       exec_argv, holds_nul, input_env_name, stop_of, unignore_stop_signals, without_nul)

KILL_GRACE = 5.0
"""Seconds between SIGTERM and SIGKILL when a run times out (SPEC §3 ``timeout``)."""

STOP_KILL_GRACE = 2.0
"""Seconds between SIGTERM and SIGKILL for the runs a graceful stop's grace left running."""

INTERRUPTED = "the runtime stopped while the run was going"
"""The error of a run that a graceful stop stopped (status ``interrupted``)."""

HTTP_LOG_BODY_LIMIT = 64 * 1024
"""How much of an HTTP action's response body goes to the log."""

_POLL = 0.02


@dataclass
class RunRequest:
    """Everything needed to run one action once. ``timeout`` is in seconds (None: none);
    ``secrets`` maps secret names to values (only http actions read it)."""

    run_id: int
    rule: str
    action_name: str
    action: dict[str, Any]
    inputs: dict[str, Any]
    event: dict[str, Any]
    base_dir: Path
    log_path: Path
    timeout: float | None
    secrets: Mapping[str, str] = field(default_factory=dict)
    attempt: int = 1
    kill_grace: float | None = None  # None: the action's ``stop ... grace`` (default KILL_GRACE)
    die_with_parent: bool = False  # PR_SET_PDEATHSIG: the action is killed if its worker dies (Linux)
    # the event as its stdin, already encoded: serve passes the journal's JSON of the data
    # through rather than decoding it and encoding it again (``event`` then has no ``data``
    # for exec and shell actions, which only read its id, source and type)
    event_json: bytes | None = None
    stop_signal: int = field(init=False, default=signal.SIGTERM)

    def __post_init__(self) -> None:
        # the action's `stop SIGNAL grace D` (watchexec's --stop-signal/--stop-timeout):
        # every stop of the run's process group (busy restart, a cancel, a timeout, a
        # graceful stop's leftovers) sends that signal, and SIGKILL after the grace
        name, grace = stop_of(self.action, KILL_GRACE)
        self.stop_signal = getattr(signal, name)
        if self.kill_grace is None:
            self.kill_grace = grace


@dataclass
class RunResult:
    """How a run ended: ``succeeded``, ``failed``, ``timed_out`` or ``cancelled``.

    ``start_again``: it never started because its log file could not be written (a full
    disk): the caller should start it again later, as it does when the journal cannot be
    written, rather than record it failed."""

    status: str
    exit_code: int | None
    error: str | None = None
    start_again: bool = False


class RunningAction:
    """A started run. Await :meth:`wait` for its result, or :meth:`cancel` it.

    ``pid`` and ``pgid`` are the process (and its group) for exec/shell runs, None for
    http runs and runs that failed to start.
    """

    def __init__(self, req: RunRequest) -> None:
        self.req = req
        self.run_id = req.run_id
        self.pid: int | None = None
        self.pgid: int | None = None
        self.started = time.monotonic()
        self._task: asyncio.Task[RunResult] | None = None
        self._result: RunResult | None = None
        self._cancel_requested = asyncio.Event()
        self._cancel_grace = req.kill_grace
        self._cancel_status = "cancelled"  # or "interrupted": the runtime is stopping

    @classmethod
    def finished(cls, req: RunRequest, result: RunResult) -> "RunningAction":
        ra = cls(req)
        ra._result = result
        return ra

    def done(self) -> bool:
        if self._result is not None:
            return True
        return self._task is not None and self._task.done()

    async def wait(self) -> RunResult:
        """The result, once the run has ended and its process was reaped.

        Cancelling the awaiting task does not stop the run: use :meth:`cancel`.
        """
        if self._result is not None:
            return self._result
        assert self._task is not None
        self._result = await asyncio.shield(self._task)
        return self._result

    def send_signal(self, sig: int, note: str) -> bool:
        """Send ``sig`` to the run's process group and let it go on (``busy signal``), with
        ``note`` as a line of the run's log; False, sending nothing, when no process of it
        is running (not started yet, ended, or an http run)."""
        if self.pgid is None or self.done():
            return False
        # the note first: what the program writes when it gets the signal comes after it
        # in the log, not in the middle of a line it was writing
        _log_line(self.req.log_path, note)
        _killpg(self.pgid, sig)
        return True

    async def cancel(self, grace: float | None = None, status: str = "cancelled") -> RunResult:
        """Stop the run: its stop signal (SIGTERM unless the action says ``stop SIGNAL``)
        to its process group, SIGKILL after ``grace`` seconds (None: the action's own,
        ``stop ... grace D``, else :data:`KILL_GRACE`).

        Returns the result, status ``status`` (``cancelled``, or ``interrupted`` when the
        runtime stops it) unless the run had already ended.
        """
        if grace is None:
            grace = self.req.kill_grace
        if self._result is None and self._task is not None and not self._task.done():
            self._cancel_grace = grace
            if not self._cancel_requested.is_set():
                self._cancel_status = status
            self._cancel_requested.set()
        return await self.wait()


def stop_on_signals(loop: asyncio.AbstractEventLoop, stop: asyncio.Event, now: asyncio.Event,
                    reload: Callable[[str], None] | None = None, who: str = "triggerc") -> None:
    """SIGINT/SIGTERM set ``stop`` (a graceful stop); a second one, while that goes on,
    also sets ``now`` (stop the running actions at once: :func:`stop_actions`).

    SIGHUP asks for a reload (``reload("SIGHUP")``; without one, ``who`` logs that it has
    nothing to reload), as nginx and adnanh/webhook do and as ``ExecReload=/bin/kill -HUP
    $MAINPID`` expects, with one exception: the SIGHUP of a terminal that closed (the
    process had a controlling terminal when it started and has none any more: the kernel
    takes it away from every process of the session before it sends the SIGHUP) stops the
    process as SIGTERM does, since its default would end the process with no stop at all,
    leaving the runs going and the journal saying ``running``. A process started with
    SIGHUP ignored (``nohup triggerc serve``: asked to outlive its terminal) keeps running
    when its terminal closes; a ``kill -HUP`` still reloads it, also after the terminal
    closed: only the first SIGHUP without the terminal is the terminal's (a terminal closes
    once), the ones after it are reloads, as before it closed."""
    log = logging.getLogger("triggerlang")
    had_terminal = _has_terminal()
    outlive_terminal = signal.getsignal(signal.SIGHUP) is signal.SIG_IGN
    unignore_stop_signals()

    def on_signal() -> None:
        if stop.is_set():
            now.set()
        stop.set()

    def on_hangup() -> None:
        nonlocal had_terminal
        if had_terminal and not _has_terminal():
            if outlive_terminal:
                had_terminal = False  # the terminal's SIGHUP came: a later one is a kill -HUP
                log.info("SIGHUP: the terminal closed; %s keeps running (started with SIGHUP ignored: nohup)", who)
                return
            log.info("SIGHUP: the terminal closed; %s stops", who)
            on_signal()
        elif reload is not None:
            reload("SIGHUP")
        else:
            log.info("SIGHUP: %s has nothing to reload (SIGINT or SIGTERM stops it)", who)

    for sig, handler in ((signal.SIGINT, on_signal), (signal.SIGTERM, on_signal), (signal.SIGHUP, on_hangup)):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, handler)


def _has_terminal() -> bool:
    """Whether this process has a controlling terminal (``/dev/tty`` opens)."""
    try:
        fd = os.open("/dev/tty", os.O_RDWR | os.O_NOCTTY)
    except OSError:
        return False
    os.close(fd)
    return True


async def stop_actions(running: list[RunningAction], grace: float, now: asyncio.Event | None,
                       log: logging.Logger, who: str = "") -> None:
    """A graceful stop of running actions (``serve``, a worker): wait up to ``grace``
    seconds for them to end, then stop the rest (SIGTERM, SIGKILL 2 s later). ``now``, once
    set (a second Ctrl-C), ends the wait at once and kills without the 2 s, also when it
    comes during those 2 s. The caller records the stopped runs ``interrupted``.

    Whichever way the wait ends with runs still going (the grace is over, or Ctrl-C
    again), this one line says how many are stopped and marked interrupted."""
    if not running:
        return
    log.info("%sstopping: waiting up to %.0fs for %d running run(s)%s", who, grace, len(running),
             "; press Ctrl-C again to stop now" if now is not None and not now.is_set() else "")
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline and any(not ra.done() for ra in running):
        if now is not None and now.is_set():
            break
        await asyncio.sleep(0.05)
    hurry = now is not None and now.is_set()
    left = sum(not ra.done() for ra in running)
    if left:
        log.info("%sstopping now: %d run(s) stopped and marked interrupted", who, left)
    stopping = asyncio.gather(*(ra.cancel(grace=0.0 if hurry else STOP_KILL_GRACE, status="interrupted")
                                for ra in running if not ra.done()))
    if not hurry and now is not None:
        second = asyncio.ensure_future(now.wait())
        await asyncio.wait({stopping, second}, return_when=asyncio.FIRST_COMPLETED)
        second.cancel()
        if now.is_set() and not stopping.done():  # Ctrl-C again during the SIGTERM's wait
            await asyncio.gather(*(ra.cancel(grace=0.0, status="interrupted") for ra in running if not ra.done()))
    await stopping


def _process_argv(req: RunRequest, inputs: Mapping[str, Any]) -> tuple[list[str], str]:
    """The argv of an exec or shell action, and how its log's first line shows it (with
    the inputs whose NUL bytes argv and environment lost: :func:`~triggerlang.actions.without_nul`)."""
    dropped = [input_env_name(k) for k, v in inputs.items() if holds_nul(v)]
    note = f" (NUL bytes dropped from {', '.join(dropped)}; stdin has them)" if dropped else ""
    if req.action.get("kind") == "exec":
        argv = _exec_argv(req, inputs)
        return argv, f"exec {shlex.join(argv)}{note}"
    script = req.action.get("script")
    if not isinstance(script, str):
        raise ActionError("the shell action has no script")
    return ["/bin/sh", "-c", script], f"shell {script!r}{note}"


async def _start_program(req: RunRequest, inputs: dict) -> RunningAction:
    """An exec or a shell action (:func:`_process_argv` tells them apart)."""
    return await _start_process(req, *_process_argv(req, inputs), inputs)


async def _start_post(req: RunRequest, inputs: dict) -> RunningAction:
    return _start_http(req, inputs)


_STARTERS = {"exec": _start_program, "shell": _start_program, "http": _start_post}
"""How each of :data:`~triggerlang.actions.ACTION_KINDS` starts (a closed table)."""
assert set(_STARTERS) == set(ACTION_KINDS)


async def start_action(req: RunRequest) -> RunningAction:
    """Start the action of ``req``; returns once it runs (or has failed to start)."""
    try:
        kind = action_kind(req.action, req.action_name)
        inputs = _bind_inputs(req.action, req.inputs)
        return await _STARTERS[kind](req, inputs)
    except ActionError as e:
        return RunningAction.finished(req, _could_not_start(req, e))


# -- the child watcher --------------------------------------------------------------------

def pidfd_child_watcher(loop: asyncio.AbstractEventLoop) -> "asyncio.AbstractChildWatcher | None":
    """On Python 3.11 under Linux 5.3+, make asyncio reap children through pidfds; the
    watcher installed, or None when nothing was changed.

    Python 3.11's default ``ThreadedChildWatcher`` starts one thread per child to block
    in ``waitpid``: starting it costs the event loop about 0.25 ms per run (it waits for
    the thread to start) and the threads compete for the GIL while runs go on. A
    ``PidfdChildWatcher`` polls a pidfd per child on the loop itself, with no thread.
    Python 3.12+ already picks it by default (and deprecates ``set_child_watcher``), so
    this does nothing there. Call it with the loop that will start the runs, before any
    run starts, and :func:`restore_child_watcher` once that loop is closed.
    """
    if sys.version_info >= (3, 12) or not sys.platform.startswith("linux") or not hasattr(os, "pidfd_open"):
        return None
    try:
        os.close(os.pidfd_open(os.getpid()))
    except OSError:  # an old kernel, or a seccomp filter that forbids it
        return None
    watcher = asyncio.PidfdChildWatcher()
    watcher.attach_loop(loop)
    asyncio.set_child_watcher(watcher)
    return watcher


def restore_child_watcher(watcher: "asyncio.AbstractChildWatcher | None") -> None:
    """Undo :func:`pidfd_child_watcher` (the next loop gets asyncio's default watcher)."""
    if watcher is not None:
        asyncio.set_child_watcher(None)  # closes it


# -- inputs and argv ----------------------------------------------------------------------

def _exec_argv(req: RunRequest, inputs: Mapping[str, Any]) -> list[str]:
    argv = exec_argv(req.action, inputs, req.action_name)
    prog = argv[0]
    if "/" in prog and not os.path.isabs(prog):
        argv[0] = str(Path(req.base_dir) / prog)
    return argv


SERVE_ID = _secrets.token_hex(8)
"""``TRG_SERVE_ID`` of every run this process (``serve``, ``triggerc worker``) starts, new at
each start: with ``TRG_RUN_ID`` it finds the process of a run whose spawner died before
saying it started (:func:`_kill_unreported`). A run id alone would not do: another
``serve`` on the machine (another state folder, another store) counts its own runs."""


def _env_additions(req: RunRequest, inputs: Mapping[str, Any]) -> dict[str, str]:
    """What a run's environment adds to ``serve``'s: the action's ``env``, ``TRG_*``."""
    env: dict[str, str] = {}
    for k, v in (req.action.get("env") or {}).items():
        env[str(k)] = _env_text(v)
    ev = req.event or {}
    env.update({
        "TRG_RUN_ID": str(req.run_id),
        "TRG_SERVE_ID": SERVE_ID,
        "TRG_RULE": req.rule,
        "TRG_EVENT_ID": str(ev.get("id", "")),
        "TRG_EVENT_SOURCE": str(ev.get("source", "")),
        "TRG_EVENT_TYPE": str(ev.get("type", "")),
    })
    corr = ev.get("correlation")
    if isinstance(corr, Mapping) and corr.get("group"):   # a correlation's run (SPEC §11.4)
        env["TRG_GROUP_ID"] = str(corr["group"])
    for name, v in inputs.items():
        env[input_env_name(name)] = without_nul(_env_text(v))
    return env


def _too_long(prog: str, argv: list[str], env: Mapping[bytes, bytes]) -> str:
    """Why execve refused a run's argv and environment (E2BIG), naming the largest part."""
    parts = [(len(os.fsencode(a)), f"argument {i}") for i, a in enumerate(argv)]
    parts += [(len(k) + 1 + len(v), os.fsdecode(k)) for k, v in env.items()]
    size, what = max(parts)
    total = sum(n for n, _ in parts)
    return (f"cannot start {prog}: its arguments and environment are too long for the system "
            f"({total:,} bytes; the largest, {what}, {size:,} bytes; Linux takes at most 128 KiB "
            f"in one argument or variable and about 2 MiB in all)")


def _run_env(req: RunRequest, inputs: Mapping[str, Any]) -> dict[str, str]:
    env = dict(os.environ)
    env.update(_env_additions(req, inputs))
    return env


def _cwd(req: RunRequest) -> Path:
    cwd = req.action.get("cwd")
    base = req.base_dir if isinstance(req.base_dir, Path) else Path(req.base_dir)
    return base / cwd if cwd else base


PROCESS_KINDS = ("exec", "shell")
"""The action kinds run as a process, with the event on stdin (:func:`launch`'s fast path)."""


def _stdin_of(req: RunRequest) -> bytes:
    """What a process run reads on stdin: the event as JSON, one line ended by a newline
    (a line, as POSIX tools read it: ``read -r ev`` in a script under ``set -e`` fails at a
    last line without one)."""
    return (req.event_json if req.event_json is not None else _event_bytes(req.event)) + b"\n"


def event_json(eid: str, source: str, typ: str, time: str, data_json: str) -> bytes:
    """The event's JSON for stdin from its parts, ``data_json`` already encoded (compact,
    ASCII, as the journal holds it): the same object :func:`_event_bytes` makes."""
    q = _json_string
    return f'{{"id":{q(eid)},"source":{q(source)},"type":{q(typ)},"time":{q(time)},"data":{data_json}}}'.encode("ascii")


_json_string = json.encoder.encode_basestring_ascii  # type: ignore[attr-defined]
"""A str as a JSON string literal, ASCII only (the json module's own C function)."""


def _event_bytes(event: Mapping[str, Any]) -> bytes:
    """The event as a run reads it on stdin: one line of compact JSON, ASCII only (other
    characters, lone surrogates of a broken payload included, as ``\\u`` escapes), the
    form :func:`event_json` makes from the journal's JSON, so every run reads the same."""
    return dumps(event).encode("ascii")


# -- the log ------------------------------------------------------------------------------

def _private(path: str, flags: int) -> int:
    """``open``'s opener for the files of the state folder: readable by the owner only
    (a run's log holds what the action printed of the payload), whatever the umask."""
    return os.open(path, flags, 0o600)


def _open_append(path: Path, buffering: int = -1):
    """``open(path, "ab")`` (mode 0600 when created), creating the parent folders (0700)
    only when they are missing (the usual case, the journal's log folder, costs no
    ``mkdir`` per run)."""
    try:
        return open(path, "ab", buffering=buffering, opener=_private)
    except FileNotFoundError:
        Path(path).parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        return open(path, "ab", buffering=buffering, opener=_private)


class _LogUnwritable(ActionError):
    """The run's log file cannot be written: on a full disk (``no_space``) the run is
    started again later."""

    def __init__(self, message: str, no_space: bool) -> None:
        super().__init__(message)
        self.no_space = no_space


_NO_SPACE = (errno.ENOSPC, errno.EDQUOT)


def _open_log(path: Path):
    try:
        return _open_append(path, buffering=0)
    except OSError as e:
        raise _LogUnwritable(f"cannot open the log file {path}: {e.strerror or e}", e.errno in _NO_SPACE) from None


def _header(req: RunRequest, what: str | None) -> str:
    """A run's log's first line: the run, its rule, action and attempt, and what it starts
    (``exec ARGV``, ``shell 'SCRIPT'``, ``http POST URL``) when that is known."""
    return (f"# run {req.run_id} rule {req.rule} action {req.action_name} attempt {req.attempt}"
            f"{f': {what}' if what else ''}")


def _what(req: RunRequest) -> str | None:
    """What the header of ``req``'s log says it starts, or None when that cannot be said
    (an input its argv needs is missing, a manifest written by hand)."""
    try:
        kind = action_kind(req.action, req.action_name)
        if kind == "http":
            return _http_what(req.action)
        return _process_argv(req, _bind_inputs(req.action, req.inputs))[1]
    except (ActionError, ValueError):
        return None


def _could_not_start(req: RunRequest, e: ActionError) -> RunResult:
    """The result of a run that could not start, its reason written to its log: after the
    log's header, written here when the start failed before it was (a program not on
    ``PATH``, a missing input), so that every run's log starts the same way."""
    line = f"# run {req.run_id} could not start: {e}"
    try:
        empty = os.stat(req.log_path).st_size == 0
    except OSError:
        empty = True
    _log_line(req.log_path, f"{_header(req, _what(req))}\n{line}" if empty else line)
    return RunResult("failed", None, str(e), start_again=isinstance(e, _LogUnwritable) and e.no_space)


def _not_found(prog: str, path: str | bytes, base_dir: Path) -> ActionError:
    """Why ``prog`` could not be executed as not found (ENOENT), with what was looked up,
    where, and what to do: a name not on ``path`` (the run's ``PATH``), a path that does
    not exist, or a script whose ``#!`` interpreter does not."""
    path = os.fsdecode(path)
    if "/" not in prog:
        for folder in path.split(os.pathsep):
            cand = os.path.join(folder or ".", prog)
            if os.path.isfile(cand):
                if not os.access(cand, os.X_OK):  # there, but not executable: which skipped it
                    return _cannot_execute(cand, f"found on PATH as {cand}")
                prog = cand  # executable: what is missing is its interpreter
                break
        else:
            return ActionError(f"program not found: {prog} is in no folder of the run's PATH ({path}); "
                               f"install it, write its full path in the exec, or add its folder to the "
                               f"PATH serve runs with (or the action's env PATH=\"...\")")
    if os.path.isfile(prog):
        interp = _interpreter(prog)
        if interp is not None:
            return ActionError(f"program not found: {prog} starts with #!{interp}, and "
                               f"{interp.split()[0]} does not exist; fix its #! line")
        return ActionError(f"program not found: {prog} exists, but the system cannot run it "
                           f"(its dynamic loader is missing: built for another system?)")
    return ActionError(f"program not found: {prog} does not exist (a relative path is taken from "
                       f"the rules file's folder, {base_dir}); fix the path in the exec, or create the file")


def _interpreter(prog: str) -> str | None:
    """The ``#!`` line of the script ``prog`` (what follows ``#!``), or None."""
    with contextlib.suppress(OSError):
        with open(prog, "rb") as f:
            first = f.readline(256)
        if first.startswith(b"#!"):
            return first[2:].strip().decode("utf-8", "replace") or None
    return None


def _cannot_execute(prog: str, where: str = "") -> ActionError:
    """Why ``prog`` could not be executed for lack of permission (EACCES, EISDIR), and what to do."""
    where = f"{where}, " if where else ""
    if os.path.isdir(prog):
        why = f"{where}it is a folder; name the program in it"
    elif os.path.exists(prog) and not os.access(prog, os.X_OK):
        why = (f"{where}it is not executable; chmod +x {shlex.quote(prog)}, or run it with its "
               f"interpreter (exec \"sh\" \"{prog}\")")
    else:
        why = f"{where}a folder on its path cannot be searched, or its filesystem is mounted noexec"
    return ActionError(f"cannot execute {prog}: permission denied ({why})")


def _meta(text: str) -> bytes:
    """``text`` as lines of triggerlang's own in a run's log: each starts with ``LOG_META``
    (see :mod:`triggerlang.runtime.store`, "Run logs")."""
    lines = text.rstrip("\n").split("\n")
    return b"".join(LOG_META + line.encode("utf-8", "replace") + b"\n" for line in lines)


def _log_line(path: Path, line: str, meta: bool = True) -> None:
    """Append ``line`` to the log at ``path``: a line of triggerlang's own, or (``meta``
    False) the action's output (an http action's response body)."""
    with contextlib.suppress(OSError):
        with _open_append(path) as f:
            f.write(_meta(line) if meta else (line.rstrip("\n") + "\n").encode("utf-8", "replace"))


# -- exec and shell -----------------------------------------------------------------------

async def _start_process(req: RunRequest, argv: list[str], what: str, inputs: Mapping[str, Any]) -> RunningAction:
    spawner = _spawner_for(req)
    if spawner is not None:
        ra = await _start_fast(spawner, req, argv, inputs, what)
        if ra is not None:
            return ra
    return await _start_asyncio(req, argv, inputs, what)


async def _start_asyncio(req: RunRequest, argv: list[str], inputs: Mapping[str, Any],
                         what: str) -> RunningAction:
    """The portable path: asyncio's subprocess support (a pipe for stdin, fed by a task;
    stdout straight into the log, stderr through a pipe copied by :func:`_copy_stderr`)."""
    env = _run_env(req, inputs)
    cwd = _cwd(req)
    log = _open_log(req.log_path)
    try:
        try:
            log.write(_meta(_header(req, what)))
        except OSError as e:
            raise _LogUnwritable(f"cannot write the log file {req.log_path}: {e.strerror or e}",
                                 e.errno in _NO_SPACE) from None
        spawn: dict[str, Any] = {}
        try:
            if req.die_with_parent:
                argv, spawn = _dying_with_parent(argv, env, cwd)
            # stderr: a pipe of our own, not asyncio's (whose wait() would wait for it to close)
            err_r, err_w = os.pipe()
            try:
                proc = await asyncio.create_subprocess_exec(
                    *argv, stdin=asyncio.subprocess.PIPE, stdout=log, stderr=err_w,
                    cwd=str(cwd), env=env, start_new_session=True, close_fds=True, **spawn)
            except BaseException:
                os.close(err_r)
                raise
            finally:
                os.close(err_w)
        except FileNotFoundError as e:
            missing = e.filename if e.filename else argv[0]
            if not cwd.is_dir():
                raise ActionError(f"the working directory {cwd} does not exist") from None
            raise _not_found(missing, env.get("PATH", os.defpath), req.base_dir) from None
        except PermissionError:  # a bare name: a file of that name on PATH that is not executable
            raise (_cannot_execute(argv[0]) if "/" in argv[0]
                   else _not_found(argv[0], env.get("PATH", os.defpath), req.base_dir)) from None
        except NotADirectoryError:
            raise ActionError(f"the working directory {cwd} is not a directory") from None
        except ValueError as e:  # embedded NUL byte in an argument or variable
            raise ActionError(f"cannot start {argv[0]}: {e}") from None
        except OSError as e:
            if e.errno == errno.E2BIG:
                raise ActionError(_too_long(argv[0], argv, _env_changes(req, inputs))) from None
            raise ActionError(f"cannot start {argv[0]}: {e.strerror or e}") from None
    except BaseException:
        log.close()
        raise
    stderr = asyncio.StreamReader()
    pipe = open(err_r, "rb", buffering=0)
    try:
        await asyncio.get_running_loop().connect_read_pipe(lambda: asyncio.StreamReaderProtocol(stderr), pipe)
    except BaseException:  # pragma: no cover - a loop without pipes: read nothing, lose nothing else
        pipe.close()
        stderr.feed_eof()
    ra = RunningAction(req)
    ra.pid = ra.pgid = proc.pid
    ra._task = asyncio.create_task(_supervise(ra, proc, log, stderr), name=f"triggerlang-run-{req.run_id}")
    return ra


def _dying_with_parent(argv: list[str], env: Mapping[str, str], cwd: Path) -> tuple[list[str], dict[str, Any]]:
    """(argv, spawn options) for an action that must die with this process (a worker).

    ``setpriv --pdeathsig KILL -- argv`` (util-linux) when it is there: the child is then
    spawned without running Python code in it, so Python can use ``posix_spawn``/``vfork``
    (a ``preexec_fn`` forces a full fork of the worker: 5-8 ms a run instead of ~1 ms).
    The program is looked up first so that a missing one is the same clear error as
    without the wrapper. Otherwise the ``preexec_fn`` of :func:`_die_with_parent`.
    """
    setpriv = _setpriv()
    if setpriv is None:
        return argv, {"preexec_fn": _die_with_parent()}
    prog = argv[0]
    if "/" in prog:
        found = prog if os.path.isabs(prog) else str(cwd / prog)
        if not os.path.exists(found):
            raise FileNotFoundError(2, "No such file or directory", prog)
        if os.path.isdir(found) or not os.access(found, os.X_OK):
            raise PermissionError(13, "Permission denied", prog)
    elif shutil.which(prog, path=env.get("PATH", os.defpath)) is None:
        raise FileNotFoundError(2, "No such file or directory", prog)
    return [setpriv, "--pdeathsig", "KILL", "--", *argv], {}


_SETPRIV: list[str | None] = []


def _setpriv() -> str | None:
    """util-linux's ``setpriv`` if it knows ``--pdeathsig`` (2.33+), looked up once."""
    if not _SETPRIV:
        path = shutil.which("setpriv") if sys.platform.startswith("linux") else None
        if path is not None:
            try:
                out = subprocess.run([path, "--help"], capture_output=True, text=True, timeout=5).stdout
            except (OSError, subprocess.SubprocessError):
                out = ""
            path = path if "--pdeathsig" in out else None
        _SETPRIV.append(path)
    return _SETPRIV[0]

# -- the fast path: the spawner process (runtime/spawn.py) ---------------------------------

class _Fast:
    """Whether the fast path works here, decided once (a process-wide fact), and the
    spawner of each event loop (a cache: one spawner process per loop that runs actions)."""

    broken = False
    spawners: "weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, Spawner]" = weakref.WeakKeyDictionary()


def _spawner_for(req: RunRequest) -> "Spawner | None":
    """The spawner that can start ``req``'s process (None: the asyncio path)."""
    return _fast_spawner() if not req.die_with_parent or _setpriv() is not None else None


def _fast_spawner() -> "Spawner | None":
    if _Fast.broken:
        return None
    loop = asyncio.get_running_loop()
    sp = _Fast.spawners.get(loop)
    if sp is None:
        _close_forgotten_spawners()
        if not (sys.platform.startswith("linux") and hasattr(os, "memfd_create") and hasattr(os, "pidfd_open")
                and hasattr(socket, "SOCK_SEQPACKET") and (3, 11) <= sys.version_info[:2] <= (3, 13)):
            _Fast.broken = True
            return None
        sp = _Fast.spawners[loop] = Spawner(loop)
    return sp


def _close_forgotten_spawners() -> None:
    """Stop the spawners of event loops that closed without :func:`close_spawner` (a
    program or a test that ran the engine under ``asyncio.run``): nothing can hear their
    runs any more, and each would keep a process and a socket until this one exits. (The
    registry cannot drop them by itself: a spawner refers to its loop.)"""
    for old_loop, old in list(_Fast.spawners.items()):
        if old_loop.is_closed():
            _Fast.spawners.pop(old_loop, None)
            with contextlib.suppress(Exception):  # its runs' callbacks cannot reach a closed loop
                old.close()


def close_spawner(loop: asyncio.AbstractEventLoop | None = None) -> None:
    """Stop the spawner process of ``loop`` (the running one by default), if it has one:
    ``serve`` and workers call it once their runs are over."""
    loop = loop or asyncio.get_running_loop()
    sp = _Fast.spawners.pop(loop, None)
    if sp is not None:
        sp.close()


class Spawner:
    """``serve``'s side of the spawner process (see :mod:`triggerlang.runtime.spawn`): sends
    a message per run to start, hears back when it started and when it ended."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.sock: socket.socket | None = None
        self.starting: dict[int, asyncio.Future[tuple[int, int]]] = {}  # run -> (pid, log fd), once started
        self.starting_logs: dict[int, str] = {}  # run -> its log file's path, until started
        self.running: dict[int, "_FastAction"] = {}  # run -> its action, until it ended
        self.ended: dict[int, int] = {}  # run -> wait status, when it ended before its start was seen
        self._out: deque[tuple[bytes, list[int]]] = deque()  # messages the socket did not take yet
        self._batch: list[tuple] = []  # this pass's commands
        self._batch_fds: list[int] = []
        self._flush_soon = False
        self._writer = False
        self._base: dict[bytes, bytes] | None = None  # the environment the spawner has
        self._which: dict[tuple[str, bytes], str] = {}
        # how many spawner processes were lost, and why the last one was: a run whose start
        # was read in the same pass as its spawner's end (its future resolved, its callback
        # not run yet) sees it changed when it gets to _FastAction._started
        self.losses = 0
        self.lost_why = ""
        self.lost_kills = False

    # -- the process

    def _ensure(self) -> None:
        if self.sock is not None:
            return
        import subprocess

        from . import spawn

        mine, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        try:
            for sk in (mine, theirs):
                sk.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4 * spawn.MAX_MESSAGE)
                sk.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 * spawn.MAX_MESSAGE)
            # In a session of its own: a Ctrl-C at the terminal reaches serve's foreground process
            # group, and the spawner is started at the first run; in that group, a Ctrl-C during
            # its ~20 ms of interpreter start-up (before spawn._serve catches SIGINT) killed it,
            # and the run being started failed ("the spawner stopped") instead of getting --grace.
            first = subprocess.Popen([sys.executable, "-I", "-S", spawn.__file__, str(theirs.fileno()), LOG_STDERR.hex(),
                                      ",".join(STOP_SIGNALS)],
                                     pass_fds=(theirs.fileno(),), stdin=subprocess.DEVNULL, close_fds=True,
                                     start_new_session=True)
        except OSError as e:  # no interpreter or no spawn.py file here: the portable path from now on
            mine.close()
            _Fast.broken = True
            raise _SpawnFailed("python", e.errno or 0, f"cannot start the spawner: {e.strerror or e}") from None
        finally:
            theirs.close()
        # it forks the spawner and exits at once (the spawner is no child of ours): reap it
        threading.Thread(target=first.wait, name="triggerlang-spawner-start", daemon=True).start()
        mine.setblocking(False)
        self.sock = mine
        self._base = None
        self._writer = False
        self.loop.add_reader(mine.fileno(), self._readable)

    def close(self) -> None:
        """Ask the spawner to exit once its children ended (it also exits with us)."""
        if self.sock is None:
            return
        self._flush()  # the last lines of the runs' logs
        sock, self.sock = self.sock, None
        with contextlib.suppress(OSError, RuntimeError):
            self.loop.remove_reader(sock.fileno())
            self.loop.remove_writer(sock.fileno())
        with contextlib.suppress(OSError):
            sock.send(marshal.dumps([("q",)]))
        sock.close()
        self._lost("the spawner stopped", kill=False)

    def _lost(self, why: str, kill: bool = True) -> None:
        """The spawner is gone: runs waiting to start fail; running ones fail (and so does
        one whose start it reported just before, :meth:`_FastAction._started`). ``kill``:
        their process groups get SIGKILL, since nothing would see them end or time out
        any more (the spawner died: the OOM killer, a ``kill``); not when we closed it,
        having asked it to wait for its runs (:meth:`close`)."""
        self.losses += 1
        self.lost_why = why
        self.lost_kills = kill
        if self.sock is not None:
            sock, self.sock = self.sock, None
            with contextlib.suppress(OSError, RuntimeError):
                self.loop.remove_reader(sock.fileno())
                self.loop.remove_writer(sock.fileno())
            sock.close()
        self._out.clear()
        for fd in self._batch_fds:
            os.close(fd)
        self._batch, self._batch_fds = [], []
        starting, self.starting = self.starting, {}
        logs, self.starting_logs = self.starting_logs, {}
        # a run whose start the spawner did not report may have started all the same: it
        # died between the child's exec and its message. Nothing would see that process end
        # or time out: found by its stdout (the run's own log file) or its environment, its
        # group gets SIGKILL
        killed = _kill_unreported({run: logs[run] for run, fut in starting.items()
                                   if not fut.done() and run in logs}) if kill else set()
        for run, fut in starting.items():
            if not fut.done():
                fut.set_exception(_SpawnFailed("lost", 0, f"{why}: its process group was killed") if run in killed
                                  else _SpawnFailed("other", 0, why))
        running, self.running = self.running, {}
        self.ended.clear()
        for ra in running.values():
            ra._ended(None, why)

    # -- messages

    def _send(self, msg: tuple, fd: int | None = None) -> None:
        """Queue a command; the commands of one loop pass leave together (:meth:`_flush`)."""
        self._ensure()
        self._batch.append(msg)
        if fd is not None:
            self._batch_fds.append(fd)
        if not self._flush_soon:
            self._flush_soon = True
            self.loop.call_soon(self._flush)

    def _flush(self) -> None:
        from .spawn import MESSAGE

        self._flush_soon = False
        batch, fds, self._batch, self._batch_fds = self._batch, self._batch_fds, [], []
        if not batch or self.sock is None:
            for fd in fds:
                os.close(fd)
            return
        base = getattr(os.environ, "_data", None)
        if not isinstance(base, dict):
            base = dict(os.environb)
        if base != self._base:  # the environment runs start from changed
            self._base = dict(base)
            batch.insert(0, ("e", self._base))
        part: list[tuple] = []
        part_fds: list[int] = []
        size = 0
        for msg in batch:
            own_fds = [fds.pop(0)] if msg[0] == "s" and msg[8] is None else []
            data = marshal.dumps(msg)  # its real size: argv and env count (a long <paths>)
            if len(data) > MESSAGE:
                # too large for one message: the command travels in a memfd ("m"), alone
                if part:
                    self._out.append((marshal.dumps(part), part_fds))
                    part, part_fds, size = [], [], 0
                self._out.append((marshal.dumps([("m",)]), [_memfd("trg-command", marshal.dumps([msg])), *own_fds]))
                continue
            part.append(msg)
            part_fds += own_fds
            size += len(data)
            if size > MESSAGE or len(part_fds) >= 32:
                self._out.append((marshal.dumps(part), part_fds))
                part, part_fds, size = [], [], 0
        if part:
            self._out.append((marshal.dumps(part), part_fds))
        self._writable()

    def _sendmsg(self, data: bytes, fds: list[int]) -> None:
        assert self.sock is not None
        if fds:
            socket.send_fds(self.sock, [data], fds)
            for fd in fds:
                os.close(fd)
        else:
            self.sock.send(data)

    def _writable(self) -> None:
        while self._out and self.sock is not None:
            data, fds = self._out[0]
            try:
                self._sendmsg(data, fds)
            except BlockingIOError:
                if not self._writer:
                    self._writer = True
                    self.loop.add_writer(self.sock.fileno(), self._writable)
                return
            except OSError as e:
                self._lost(f"the spawner stopped ({e.strerror or e})")
                return
            self._out.popleft()
        if self._writer and self.sock is not None:
            self._writer = False
            self.loop.remove_writer(self.sock.fileno())

    def _readable(self) -> None:
        sock = self.sock
        while sock is not None:
            try:
                data, fds, _, _ = socket.recv_fds(sock, 65536, 8)
            except (BlockingIOError, InterruptedError):
                return
            except OSError as e:
                self._lost(f"the spawner stopped ({e.strerror or e})")
                return
            if not data:
                self._lost("the spawner process stopped")
                return
            for msg in marshal.loads(data):
                kind, run = msg[0], msg[1]
                if kind == "x":
                    ra = self.running.pop(run, None)
                    if ra is not None:
                        ra._ended(msg[2], None)
                    else:  # it ended before the run's task saw it start (same read): it collects it
                        self.ended[run] = msg[2]
                elif kind == "p":  # with the run's log file, open
                    fut = self.starting.pop(run, None)
                    self.starting_logs.pop(run, None)
                    log_fd = fds.pop(0) if fds else -1
                    if fut is not None and not fut.done():
                        fut.set_result((msg[2], log_fd))
                    elif log_fd >= 0:
                        os.close(log_fd)
                elif kind == "f":
                    fut = self.starting.pop(run, None)
                    self.starting_logs.pop(run, None)
                    if fut is not None and not fut.done():
                        fut.set_exception(_SpawnFailed(msg[2], msg[3], msg[4]))
            for fd in fds:  # pragma: no cover - the spawner sends one with each start
                os.close(fd)
            sock = self.sock

    # -- runs

    def which(self, prog: str, path: bytes) -> str | None:
        """``prog`` looked up on ``path`` (a ``PATH`` value), cached while it is there: a
        cached program that is gone (moved to another folder of ``PATH``, removed) is looked
        up again, as a shell does with its hashed commands, at the cost of one ``access``."""
        key = (prog, path)
        found = self._which.get(key)
        if found is not None and not os.access(found, os.X_OK):
            found = None
        if found is None:
            found = shutil.which(prog, path=os.fsdecode(path))
            if found is not None:
                self._which[key] = found = os.path.abspath(found)
        return found

    def forget(self, prog: str, path: bytes) -> None:
        self._which.pop((prog, path), None)

    def start(self, key: int, argv: list[str], program: str, cwd: str, env: dict[bytes, bytes], log: str,
              header: bytes, stdin: bytes, stop: int = signal.SIGTERM,
              grace: float = STOP_KILL_GRACE) -> "asyncio.Future[tuple[int, int]]":
        """Start a process with ``serve``'s environment updated with ``env``; a future of its
        pid and its log file, open (``_SpawnFailed`` if it could not start). ``stop`` and
        ``grace``: how the spawner stops the run's process group if ``serve`` dies first
        (the signal, and the seconds before SIGKILL)."""
        from .spawn import INLINE_STDIN

        fut: asyncio.Future[tuple[int, int]] = self.loop.create_future()
        if key in self.starting or key in self.running:
            raise _SpawnFailed("other", 0, f"run {key} is already started")
        memfd = None
        if len(stdin) > INLINE_STDIN:
            memfd = _memfd("trg-event", stdin)
            stdin = None  # type: ignore[assignment]
        self.starting[key] = fut
        self.starting_logs[key] = log
        try:
            self._send(("s", key, argv, program, cwd, env, log, header, stdin, int(stop), float(grace)), memfd)
        except BaseException:
            self.starting.pop(key, None)
            self.starting_logs.pop(key, None)
            if memfd is not None:
                os.close(memfd)
            raise
        return fut

def processes_of(logs: Mapping[int, str]) -> dict[int, list[int]] | None:
    """The processes still writing to the logs of the runs in ``logs`` (run -> its log
    file), by run: those whose stdout is the run's log file (:func:`_run_of`), as the next
    ``serve`` finds the runs a killed one left. None where ``/proc`` cannot tell (not Linux)."""
    if not Path("/proc/self/fd").is_dir():
        return None
    found: dict[int, list[int]] = {}
    for pid, run in _runs_processes(logs, by_env=False):
        found.setdefault(run, []).append(pid)
    return found


def _runs_processes(logs: Mapping[int, str], by_env: bool = True) -> Iterator[tuple[int, int]]:
    """(pid, run) of each process of the runs in ``logs`` (:func:`_run_of`; ``by_env``
    False: by their stdout only, for runs another ``serve`` started)."""
    by_path: dict[str, int] = {}
    for run, log in logs.items():
        with contextlib.suppress(OSError, ValueError):
            by_path[os.path.realpath(log)] = run
    env = {f"TRG_RUN_ID={run}".encode(): run for run in logs} if by_env else {}
    try:
        pids = [int(d) for d in os.listdir("/proc") if d.isdigit()]
    except OSError:
        return
    for pid in pids:
        run = _run_of(pid, by_path, env)
        if run is not None:
            yield pid, run


def note_in_log(path: Path, line: str) -> None:
    """Append ``line`` to a run's log as a line of triggerlang's own (:data:`~.store.LOG_META`)."""
    _log_line(path, line)


def _kill_unreported(logs: Mapping[int, str]) -> set[int]:
    """SIGKILL the process groups of the runs in ``logs`` (run -> its log file) that a
    spawner started without living to say so; the runs found. A run's process is known by
    its stdout, the run's own log file (a path under ``serve``'s state folder: no other
    process's), which is in place before the spawner's socket is closed in the child,
    and so before ``serve`` sees the spawner end; or, once it sent its output elsewhere
    (``exec >/dev/null 2>&1`` in a shell action), by the environment it was started with
    (``/proc/PID/environ``): ``TRG_RUN_ID`` and this process's ``TRG_SERVE_ID``
    (:data:`SERVE_ID`), so that another ``serve``'s run with the same id is left alone.
    Missed: a process that sent its output elsewhere *and* was exec'd with another
    environment (``exec env -i …``), which nothing left names as the run's. Linux's
    ``/proc``, read only when a spawner died with runs starting; processes of other users
    cannot be read, and are none of ours. ``serve``'s own process group is never signalled."""
    if not logs:
        return set()
    found: set[int] = set()
    mine = os.getpgrp()
    for pid, run in _runs_processes(logs):
        try:
            pgid = os.getpgid(pid)
        except OSError:  # gone
            continue
        if pgid != mine:
            _killpg(pgid, signal.SIGKILL)
            found.add(run)
    return found


def _run_of(pid: int, by_path: Mapping[str, int], by_env: Mapping[bytes, int]) -> int | None:
    """The run of :func:`_kill_unreported` that process ``pid`` belongs to, if any: by its
    stdout (``by_path``), else by its environment (``by_env``: ``TRG_RUN_ID=N``, with this
    process's ``TRG_SERVE_ID``). None for a process gone, or not ours to read."""
    with contextlib.suppress(OSError):
        run = by_path.get(os.readlink(f"/proc/{pid}/fd/1"))
        if run is not None:
            return run
    if not by_env:
        return None
    try:
        with open(f"/proc/{pid}/environ", "rb") as f:
            env = f.read().split(b"\0")
    except OSError:
        return None
    if _SERVE_MARK not in env:
        return None
    return next((by_env[v] for v in env if v in by_env), None)


_SERVE_MARK = f"TRG_SERVE_ID={SERVE_ID}".encode()


def _memfd(name: str, data: bytes) -> int:
    """A memfd holding ``data``, read from its start (passed to the spawner)."""
    fd = os.memfd_create(name, os.MFD_CLOEXEC)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view):]
        os.lseek(fd, 0, os.SEEK_SET)
    except BaseException:
        os.close(fd)
        raise
    return fd


class _SpawnFailed(Exception):
    """The spawner could not start a process: ``where`` it failed, ``errno``, a message."""

    def __init__(self, where: str, errno: int, message: str) -> None:
        super().__init__(message)
        self.where, self.errno, self.message = where, errno, message


def _env_changes(req: RunRequest, inputs: Mapping[str, Any]) -> dict[bytes, bytes]:
    """:func:`_env_additions` as bytes (the spawner has ``serve``'s environment)."""
    enc = os.fsencode
    return {enc(k): enc(v) for k, v in _env_additions(req, inputs).items()}


def _fast_request(spawner: Spawner, req: RunRequest, argv: list[str], inputs: Mapping[str, Any],
                  what: str) -> tuple[tuple, Callable[[_SpawnFailed], ActionError | None]]:
    """(the arguments of :meth:`Spawner.start`, how to tell its failure); ActionError when
    the run cannot start at all (a missing program, a NUL byte)."""
    env = _env_changes(req, inputs)
    for k, v in env.items():
        if b"=" in k or b"\0" in k or b"\0" in v:
            raise ActionError(f"cannot start {argv[0]}: an environment variable holds a NUL byte or '='")
    if any("\0" in a for a in argv):
        raise ActionError(f"cannot start {argv[0]}: embedded null byte")
    cwd = _cwd(req)
    prog = argv[0]
    path = env.get(b"PATH") or os.environb.get(b"PATH", os.defpath.encode())
    if "/" in prog:
        program = prog
    else:
        found = spawner.which(prog, path)
        if found is None:
            raise _not_found(prog, path, req.base_dir)
        program = found
    header = _meta(_header(req, what))
    found_at = program
    if req.die_with_parent:  # setpriv, between the spawner's thread and the program (see _dying_with_parent)
        setpriv = _setpriv()
        assert setpriv is not None
        argv, program = [setpriv, "--pdeathsig", "KILL", "--", *argv], setpriv

    def failure(e: _SpawnFailed) -> ActionError | None:
        """The run's error, or None: this Python's fork_exec differs (the portable path from now on)."""
        if e.where == "python":
            _Fast.broken = True
            return None
        if e.where == "lost":  # it started, unreported, and its spawner died (Spawner._lost)
            return ActionError(e.message)
        if e.where == "log":
            return _LogUnwritable(f"cannot open the log file {req.log_path}: {e.message}", e.errno in _NO_SPACE)
        if e.where == "cwd":
            if e.errno == 20:  # ENOTDIR
                return ActionError(f"the working directory {cwd} is not a directory")
            if not cwd.is_dir():
                return ActionError(f"the working directory {cwd} does not exist")
            return ActionError(f"cannot enter the working directory {cwd}: {e.message}")
        if e.where == "exec" and e.errno == 2:  # ENOENT
            spawner.forget(prog, path)
            return _not_found(prog, path, req.base_dir)
        if e.where == "exec" and e.errno in (13, 21):  # EACCES, EISDIR
            return _cannot_execute(found_at)
        if e.where == "exec" and e.errno == errno.E2BIG:
            return ActionError(_too_long(prog, argv, env))
        return ActionError(f"cannot start {prog}: {e.message}")

    return (req.run_id, argv, program, str(cwd), env, str(req.log_path), header, _stdin_of(req),
            req.stop_signal, req.kill_grace), failure


async def _start_fast(spawner: Spawner, req: RunRequest, argv: list[str], inputs: Mapping[str, Any],
                      what: str) -> RunningAction | None:
    """Start through ``spawner``; None if the fast path turns out not to work here."""
    args, failure = _fast_request(spawner, req, argv, inputs, what)
    ra = _FastAction(req, spawner)
    try:
        pid, log_fd = await spawner.start(*args)
    except _SpawnFailed as e:
        err = failure(e)
        if err is None:
            return None
        raise err from None
    ra._started(pid, log_fd)
    return ra


def launch(req: RunRequest, on_done: Callable[[RunResult], None]) -> RunningAction:
    """Start the action of ``req`` without waiting for it: the :class:`RunningAction` comes
    back at once (it may still be starting; :meth:`~RunningAction.cancel` works meanwhile)
    and ``on_done(result)`` is called on the loop when it ended, however it ended (a run
    that could not start has ended ``failed``). :func:`start_action` and ``wait`` do the
    same with a task; ``serve``'s engine uses this: no task per run."""
    loop = asyncio.get_running_loop()
    kind = req.action.get("kind")
    spawner = _spawner_for(req) if kind in PROCESS_KINDS else None
    if spawner is not None:
        try:
            inputs = _bind_inputs(req.action, req.inputs)
            argv, what = _process_argv(req, inputs)
            args, failure = _fast_request(spawner, req, argv, inputs, what)
            ra = _FastAction(req, spawner, on_done)
            fut = spawner.start(*args)
        except ActionError as e:
            done = RunningAction.finished(req, _could_not_start(req, e))
            loop.call_soon(on_done, done._result)
            return done
        except _SpawnFailed as e:  # the spawner could not be reached
            if e.where == "python":
                return _TaskAction(req, on_done)
            done = RunningAction.finished(req, _could_not_start(req, ActionError(f"cannot start: {e.message}")))
            loop.call_soon(on_done, done._result)
            return done
        fut.add_done_callback(partial(ra._spawned, failure))
        return ra
    return _TaskAction(req, on_done)


class _TaskAction(RunningAction):
    """:func:`launch` through :func:`start_action` in a task (http actions, the portable path)."""

    def __init__(self, req: RunRequest, on_done: Callable[[RunResult], None]) -> None:
        super().__init__(req)
        self._inner: RunningAction | None = None
        self._cancelled: float | None = None
        self._on_done = on_done
        self._task = asyncio.get_running_loop().create_task(self._go(), name=f"triggerlang-run-{req.run_id}")

    async def _go(self) -> RunResult:
        try:
            inner = self._inner = await start_action(self.req)
            self.pid, self.pgid = inner.pid, inner.pgid
            if self._cancelled is not None:
                result = await inner.cancel(self._cancelled, self._cancel_status)
            else:
                result = await inner.wait()
        except Exception as e:  # pragma: no cover - start_action reports a run's own problems as results
            result = RunResult("failed", None, f"internal error: {e}")
        self._result = result
        self._on_done(result)
        return result

    async def cancel(self, grace: float | None = None, status: str = "cancelled") -> RunResult:
        if grace is None:
            grace = self.req.kill_grace
        if self._inner is not None:
            await self._inner.cancel(grace, status)
        else:
            if self._cancelled is None:
                self._cancel_status = status
            self._cancelled = grace
        return await self.wait()


class _FastChild:
    """The process of a fast run as :func:`_stop_group` sees it (``pid``, ``returncode``, ``wait``)."""

    def __init__(self, pid: int, exited: "asyncio.Future[int]") -> None:
        self.pid = pid
        self.returncode: int | None = None
        self._exited = exited

    async def wait(self) -> int:
        return await asyncio.shield(self._exited)


class _FastAction(RunningAction):
    """A process run started by the spawner: no task while it runs; the spawner says when
    it started and when it ended, a timer when it took too long. ``on_done`` (if given) is
    called with the result."""

    def __init__(self, req: RunRequest, spawner: Spawner,
                 on_done: Callable[[RunResult], None] | None = None) -> None:
        super().__init__(req)
        loop = spawner.loop
        self._loop = loop
        self._spawner = spawner
        self._on_done = on_done
        self._log_fd = -1
        self._exited: asyncio.Future[int] = loop.create_future()
        self._done: asyncio.Future[RunResult] = loop.create_future()
        self._child: _FastChild | None = None
        self._reason: str | None = None
        self._lost: str | None = None
        self._losses = spawner.losses  # the spawner that starts it is the one of now
        self._stopper: asyncio.Task | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._cancel_pending: float | None = None
        self._hurry = False  # a stop without grace came while another one waited

    def _spawned(self, failure: Callable[[_SpawnFailed], ActionError | None], fut: asyncio.Future) -> None:
        """The spawner answered (:func:`launch`): started, or could not start."""
        exc = fut.exception()
        if exc is None:
            self._started(*fut.result())
            return
        if isinstance(exc, _SpawnFailed) and exc.where == "lost":  # it did start: not "could not start"
            _log_line(self.req.log_path, f"# run {self.req.run_id} failed: {exc.message}")
            self._complete(RunResult("failed", None, exc.message))
            return
        if isinstance(exc, _SpawnFailed):
            err = failure(exc) or ActionError(f"cannot start: {exc.message}")
        else:  # pragma: no cover
            err = ActionError(f"cannot start: {exc}")
        self._complete(_could_not_start(self.req, err))

    def _started(self, pid: int, log_fd: int) -> None:
        self.pid = self.pgid = pid
        self._log_fd = log_fd
        self._child = _FastChild(pid, self._exited)
        req = self.req
        timeout = req.timeout if req.timeout is not None and req.timeout > 0 else None
        if timeout:
            self._timer = self._loop.call_later(timeout, self._stop, "timed_out", req.kill_grace)
        status = self._spawner.ended.pop(req.run_id, None)
        if status is not None:  # it ended in the same read as its start
            self._ended(status, None)
        elif self._spawner.losses != self._losses:  # its spawner died in the read that said it started
            self._ended(None, self._spawner.lost_why)
        else:
            self._spawner.running[req.run_id] = self
            if self._cancel_pending is not None:
                self._stop(self._cancel_status, self._cancel_pending)

    def _ended(self, status: int | None, lost: str | None) -> None:
        """The spawner reaped the process (its wait status), or is gone (``lost``)."""
        if self._exited.done() or self._child is None:
            return
        rc = os.waitstatus_to_exitcode(status) if status is not None else -signal.SIGKILL
        if lost is not None:
            if self._spawner.lost_kills:
                _killpg(self.pgid, signal.SIGKILL)
                lost += ": its process group was killed"
            else:
                lost += ": how the run ended is not known"
        self._lost = lost
        self._child.returncode = rc
        self._exited.set_result(rc)
        if self._stopper is None:
            self._finish()

    def _finish(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
        assert self._child is not None and self._child.returncode is not None
        result, trailer = _outcome(self.req, self._reason, self._child.returncode, time.monotonic() - self.started)
        if self._lost is not None:
            result = RunResult("failed", None, self._lost)
            trailer = f"# run {self.req.run_id} failed: {self._lost}"
        if self._log_fd >= 0:
            with contextlib.suppress(OSError):
                os.write(self._log_fd, _meta(trailer))
            os.close(self._log_fd)
            self._log_fd = -1
        else:
            _log_line(self.req.log_path, trailer)
        self._complete(result)

    def _complete(self, result: RunResult) -> None:
        self._result = result
        if not self._done.done():
            self._done.set_result(result)
        if self._on_done is not None:
            on_done, self._on_done = self._on_done, None
            on_done(result)

    def _stop(self, reason: str, grace: float) -> None:
        """Stop the process group (a timeout, a cancel): SIGTERM, SIGKILL after ``grace``."""
        if self._done.done():
            return
        if self._child is None:  # not started yet: stop it once it is
            if self._cancel_pending is None:
                self._cancel_status = reason
            self._cancel_pending = grace
            return
        if self._stopper is not None or self._child.returncode is not None:
            if grace <= 0:  # already being stopped (a timeout, a cancel): do not wait out its grace
                self._hurry = True
            return
        self._reason = reason
        self._stopper = self._loop.create_task(self._stop_and_finish(grace))

    async def _stop_and_finish(self, grace: float) -> None:
        assert self._child is not None
        try:
            await _stop_group(self._child, grace, lambda: self._hurry, self.req.stop_signal)
        finally:
            await self._child.wait()
            self._finish()

    def done(self) -> bool:
        return self._done.done()

    async def wait(self) -> RunResult:
        return await asyncio.shield(self._done)

    async def cancel(self, grace: float | None = None, status: str = "cancelled") -> RunResult:
        self._stop(status, self.req.kill_grace if grace is None else grace)
        return await self.wait()


def _die_with_parent() -> Any:
    """A ``preexec_fn`` that makes the child get SIGKILL when this process dies (Linux's
    ``PR_SET_PDEATHSIG``), so a ``kill -9`` of a worker leaves no action running beside the
    retry the reaper starts elsewhere. None where the call does not exist.

    The signal reaches the action's own process; processes it started in the background
    are in its process group but are not signalled by the kernel.
    """
    if not sys.platform.startswith("linux"):
        return None
    import ctypes

    try:
        prctl = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None
    parent = os.getpid()

    def preexec() -> None:
        prctl(1, signal.SIGKILL, 0, 0, 0)  # PR_SET_PDEATHSIG
        if os.getppid() != parent:  # the worker died before the call: do not outlive it
            os._exit(137)
    return preexec


async def _feed_stdin(proc: asyncio.subprocess.Process, data: bytes) -> None:
    assert proc.stdin is not None
    with contextlib.suppress(BrokenPipeError, ConnectionResetError, OSError):
        proc.stdin.write(data)
        await proc.stdin.drain()
    with contextlib.suppress(BrokenPipeError, ConnectionResetError, OSError):
        proc.stdin.close()


_COPIES: set[asyncio.Task] = set()
"""Copies of a stderr that outlived their run's end (:func:`_copy_stderr`): kept referenced."""


async def _copy_stderr(stream: asyncio.StreamReader, lines: Any, log: Any) -> None:
    """Copy a run's stderr into its log (``log``, an unbuffered append-only file, closed at
    the end), each line marked (:class:`~triggerlang.runtime.spawn.StderrLines`), until
    end-of-file. The same rules as the spawner's copy (see :mod:`triggerlang.runtime.spawn`)."""
    from .spawn import HOLD_LINE, READ

    try:
        while True:
            try:
                if lines.line:
                    data = await asyncio.wait_for(stream.read(READ), max(0.0, lines.held + HOLD_LINE - time.monotonic()))
                else:
                    data = await stream.read(READ)
            except asyncio.TimeoutError:
                log.write(lines.flush())
                continue
            if not data:
                log.write(lines.flush())
                return
            out = lines.take(data, time.monotonic())
            if out:
                log.write(out)
    except OSError:  # a full disk: stop copying; the run goes on
        pass
    finally:
        log.close()


async def _stderr_done(proc: asyncio.subprocess.Process, copy: asyncio.Task, lines: Any, log: Any) -> None:
    """Wait, after the run's process exited, for its stderr copy to reach end-of-file: at most
    ``spawn.STDERR_LINGER`` while its process group lives, a moment when the group is gone
    (a process of another session holds the pipe); past that the copy goes on by itself."""
    from .spawn import STDERR_LINGER

    deadline = time.monotonic() + STDERR_LINGER
    while not copy.done():
        await asyncio.wait({copy}, timeout=_POLL)
        if copy.done() or time.monotonic() >= deadline or not group_alive(proc.pid):
            break
    if not copy.done():
        with contextlib.suppress(OSError):
            log.write(lines.flush())
        _COPIES.add(copy)
        copy.add_done_callback(_COPIES.discard)


async def _supervise(ra: RunningAction, proc: asyncio.subprocess.Process, log: Any,
                     stderr: asyncio.StreamReader) -> RunResult:
    from .spawn import StderrLines

    req = ra.req
    lines = StderrLines(LOG_STDERR)
    copy = asyncio.create_task(_copy_stderr(stderr, lines, log))
    feeder = asyncio.create_task(_feed_stdin(proc, _stdin_of(req)))
    exited = asyncio.create_task(proc.wait())
    cancel = asyncio.create_task(ra._cancel_requested.wait())
    reason: str | None = None
    try:
        timeout = req.timeout if req.timeout is not None and req.timeout > 0 else None
        done, _ = await asyncio.wait({exited, cancel}, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
        if exited not in done:
            if cancel in done:
                reason, grace = ra._cancel_status, ra._cancel_grace
            else:
                reason, grace = "timed_out", req.kill_grace
            await _stop_group(proc, grace, lambda: ra._cancel_requested.is_set() and ra._cancel_grace <= 0,
                              req.stop_signal)
        rc = await exited
    finally:
        for t in (cancel, feeder):
            t.cancel()
        if not exited.done():  # the supervisor itself was cancelled: never leave a run behind
            await asyncio.shield(_stop_group(proc, 0))
        with contextlib.suppress(asyncio.CancelledError):
            await feeder
        with contextlib.suppress(asyncio.CancelledError):
            await cancel
        await _stderr_done(proc, copy, lines, log)
    result, trailer = _outcome(req, reason, rc, time.monotonic() - ra.started)
    _log_line(req.log_path, trailer)
    return result


def _outcome(req: RunRequest, reason: str | None, rc: int, elapsed: float) -> tuple[RunResult, str]:
    """How a process run ended (``reason``: we stopped it, ``timed_out`` or ``cancelled``),
    and the last line of its log."""
    code, sig = _exit_code(rc)
    if reason == "timed_out":
        result = RunResult("timed_out", code, f"timed out after {_secs(req.timeout or 0)}")
    elif reason in ("cancelled", "interrupted"):
        result = _stopped(reason, code)
    elif rc == 0:
        result = RunResult("succeeded", 0)
    elif sig:
        result = RunResult("failed", code, f"killed by {sig}")
    else:
        result = RunResult("failed", code, f"exited with code {code}")
    return result, (f"# run {req.run_id} {result.status}"
                    f"{'' if code is None else f' (exit code {code})'} after {elapsed:.3f}s")


def _stopped(status: str, code: int | None) -> RunResult:
    """The result of a run that was stopped: ``cancelled`` (a cancel, a busy restart) or
    ``interrupted`` (the runtime stopping)."""
    return RunResult(status, code, INTERRUPTED if status == "interrupted" else "cancelled")


def _exit_code(rc: int) -> tuple[int, str | None]:
    if rc < 0:
        try:
            name = signal.Signals(-rc).name
        except ValueError:
            name = f"signal {-rc}"
        return 128 - rc, name
    return rc, None


def _secs(t: float) -> str:
    return f"{t:g}s"


def group_alive(pgid: int) -> bool:
    """True while some process of group ``pgid`` is alive (zombies do not count)."""
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    proc = Path("/proc")
    if not proc.is_dir():
        return True
    for entry in proc.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        # pid (comm) state ppid pgrp ...: comm may hold spaces and parentheses.
        fields = stat[stat.rfind(")") + 2:].split()
        if len(fields) >= 3 and int(fields[2]) == pgid and fields[0] not in ("Z", "X"):
            return True
    return False


async def _stop_group(proc: asyncio.subprocess.Process, grace: float,
                      hurried: Callable[[], bool] | None = None, sig: int = signal.SIGTERM) -> None:
    """Send ``sig`` (SIGTERM, or the action's ``stop SIGNAL``) to the run's process group,
    SIGKILL it after ``grace`` (or as soon as ``hurried()`` says so: a second Ctrl-C while a
    timeout or a cancel waits), reap the leader."""
    pgid = proc.pid
    _killpg(pgid, sig)
    deadline = time.monotonic() + max(0.0, grace)
    while time.monotonic() < deadline and not (hurried is not None and hurried()):
        if proc.returncode is not None and not group_alive(pgid):
            return
        await asyncio.sleep(_POLL)
    _killpg(pgid, signal.SIGKILL)
    await proc.wait()
    # SIGKILL cannot be caught; give the kernel a moment to take the rest of the group down.
    deadline = time.monotonic() + 1.0
    while group_alive(pgid) and time.monotonic() < deadline:
        await asyncio.sleep(_POLL)


def _killpg(pgid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


# -- http ---------------------------------------------------------------------------------

class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None  # a 3xx then surfaces as an HTTPError: the run fails with that status


def sign(secret: str | bytes, body: bytes) -> str:
    """The ``X-Triggerlang-Signature`` value for ``body``: ``sha256=<hex HMAC-SHA256>``."""
    key = secret.encode("utf-8") if isinstance(secret, str) else secret
    return "sha256=" + hmac.new(key, body, hashlib.sha256).hexdigest()


def _redacted(url: str) -> str:
    parts = urllib.parse.urlsplit(url)
    if parts.username or parts.password:
        host = parts.hostname or ""
        if parts.port:
            host += f":{parts.port}"
        parts = parts._replace(netloc="***@" + host)
    return urllib.parse.urlunsplit(parts)


def _start_http(req: RunRequest, inputs: Mapping[str, Any]) -> RunningAction:
    spec = req.action
    url = spec.get("url")
    if not isinstance(url, str) or urllib.parse.urlsplit(url).scheme not in ("http", "https"):
        raise ActionError(f"the action {req.action_name} needs an http:// or https:// URL, not {url!r}")
    method = str(spec.get("method") or "post").upper()
    body = json.dumps({"run_id": req.run_id, "rule": req.rule, "action": req.action_name,
                       "inputs": inputs, "event": req.event},
                      ensure_ascii=True, separators=(",", ":")).encode("ascii")
    headers = {"Content-Type": "application/json", "User-Agent": "triggerlang",
               "X-Triggerlang-Run": str(req.run_id)}
    secret_name = spec.get("secret")
    if secret_name:
        if secret_name not in req.secrets:
            raise ActionError(f"the secret {secret_name!r} of the action {req.action_name} has no value")
        headers["X-Triggerlang-Signature"] = sign(req.secrets[secret_name], body)
    for k, v in (spec.get("headers") or {}).items():
        headers[str(k)] = str(v)
    _log_line(req.log_path, _header(req, _http_what(spec)))
    ra = RunningAction(req)
    ra._task = asyncio.create_task(_supervise_http(ra, method, url, headers, body),
                                   name=f"triggerlang-run-{req.run_id}")
    return ra


def _http_what(spec: Mapping[str, Any]) -> str:
    """How an http action's log header shows it: ``http POST URL`` (the URL's password
    hidden), ``(signed)`` when it has a secret."""
    return (f"http {str(spec.get('method') or 'post').upper()} {_redacted(str(spec.get('url')))}"
            f"{' (signed)' if spec.get('secret') else ''}")


def _http_call(method: str, url: str, headers: dict[str, str], body: bytes,
               timeout: float | None) -> tuple[int, str, bytes, bool]:
    """Blocking: (status, reason, first 64 KiB of the body, truncated?)."""
    opener = urllib.request.build_opener(_NoRedirect)
    request = urllib.request.Request(url, data=body, headers=headers, method=method)
    try:
        resp = opener.open(request, timeout=timeout)
    except urllib.error.HTTPError as e:
        resp = e
    with resp:
        data = resp.read(HTTP_LOG_BODY_LIMIT + 1) or b""
        return resp.status, str(resp.reason or ""), data[:HTTP_LOG_BODY_LIMIT], len(data) > HTTP_LOG_BODY_LIMIT


def _in_daemon_thread(fn: Any, *args: Any) -> asyncio.Future:
    """Run a blocking call in its own daemon thread.

    Not ``asyncio.to_thread``: a cancelled or timed-out request may block its thread until
    the socket times out, and the loop's shutdown waits for the default executor.
    """
    loop = asyncio.get_running_loop()
    fut: asyncio.Future = loop.create_future()

    def settle(ok: bool, value: Any) -> None:
        if not fut.done():
            fut.set_result(value) if ok else fut.set_exception(value)

    def work() -> None:
        try:
            value, ok = fn(*args), True
        except BaseException as e:  # noqa: BLE001 - handed to the awaiting task
            value, ok = e, False
        with contextlib.suppress(RuntimeError):  # the loop may be closed by now
            loop.call_soon_threadsafe(settle, ok, value)

    threading.Thread(target=work, name="triggerlang-http-action", daemon=True).start()
    return fut


async def _supervise_http(ra: RunningAction, method: str, url: str, headers: dict[str, str],
                          body: bytes) -> RunResult:
    req = ra.req
    timeout = req.timeout if req.timeout is not None and req.timeout > 0 else None
    call = _in_daemon_thread(_http_call, method, url, headers, body, timeout)
    cancel = asyncio.create_task(ra._cancel_requested.wait())
    try:
        done, _ = await asyncio.wait({call, cancel}, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
    finally:
        cancel.cancel()
    if call in done:
        try:
            status, reason, data, truncated = call.result()
        except Exception as e:  # URLError, socket timeout, connection reset...
            err = getattr(e, "reason", None) or e
            if isinstance(err, TimeoutError) or "timed out" in str(err):
                result = RunResult("timed_out", None, f"timed out after {_secs(timeout or 0)}")
            else:
                result = RunResult("failed", None, f"{method} {_redacted(url)} failed: {err}")
            _log_line(req.log_path, f"# {result.error}")
        else:
            text = data.decode("utf-8", "replace")
            _log_line(req.log_path, f"# HTTP {status} {reason}")
            if text:
                _log_line(req.log_path, text, meta=False)
                if truncated:
                    _log_line(req.log_path, "# (response body truncated at 64 KiB)")
            if 200 <= status < 300:
                result = RunResult("succeeded", status)
            else:
                result = RunResult("failed", status, f"HTTP {status} {reason}".rstrip())
    else:
        # The daemon thread finishes on its own (its socket has the same timeout).
        call.cancel()
        if cancel.done() and not cancel.cancelled():
            result = _stopped(ra._cancel_status, None)
        else:
            result = RunResult("timed_out", None, f"timed out after {_secs(timeout or 0)}")
        _log_line(req.log_path, f"# {result.error}")
    _log_line(req.log_path, f"# run {req.run_id} {result.status} after {time.monotonic() - ra.started:.3f}s")
    return result
