"""The spawner: a small process of its own that starts the runs' processes (a forkserver).

Why a process: starting a process costs its parent the time until the child has exec'd
(vfork: 0.1 ms on an idle machine, several ms when the cores are busy), and a Python
thread that waits for it needs the GIL back afterwards, which an event loop busy with
webhooks hands over only every few milliseconds. Measured on the 2-core machine of
``bench/``: spawner threads inside ``serve`` started 120-300 runs/s while it answered
webhooks; the spawner process, which shares no GIL with ``serve``, is limited only by
the CPU the children need. ``serve`` pays one ``sendmsg`` per run and one message back
when the run's process ends.

The protocol: a ``SOCK_SEQPACKET`` socket pair (one message a record, in order); a
message is a ``marshal``-ed list of commands (``serve`` sends the commands of one loop
pass together: one system call and one wake-up for many runs):

- ``serve`` -> spawner: ``("e", env)``: the environment runs start from (a dict of
  bytes, sent again when ``serve``'s changes); ``("s", run, argv, program, cwd, env, log,
  header, stdin, stop, grace)``: open the log file (append, created), write ``header``, give the child
  ``stdin`` in a memfd (or the next memfd passed with the message when ``stdin`` is None:
  a large event), start ``program`` with ``argv``/``cwd`` and the environment updated
  with ``env`` in a new session (``stop`` and ``grace``: the signal and the seconds before
  SIGKILL with which the run's process group is stopped if ``serve`` dies first, below);
  ``("q",)``: exit once every child ended.
- spawner -> ``serve``: ``("p", run, pid)`` started, with the run's log file descriptor
  attached (``serve`` writes the last line and closes it); ``("f", run, where, errno, message)``
  could not start (``where``: ``log`` the log file, ``cwd`` the working directory,
  ``exec`` the program, ``args`` a NUL byte in an argument); ``("x", run, status)``
  ended, with its wait status, once its stderr is in the log (see below).

stdout and stderr: the child's stdout is the log file itself (appended to directly, no
copy); its stderr is a pipe that the reaper thread copies into the same file with the
marker byte (0x02, given on the command line: ``store.LOG_STDERR``) at the start of each
line (:class:`StderrLines`). A run that writes nothing to stderr costs a pipe and its
end-of-file. The order of stdout and stderr lines is the order in which they reach the
file: a stderr line arrives one pipe hop later than a stdout line written at the same
moment, so lines the child wrote within the same instant to both streams may swap (a
shared append-only file cannot do better without a second copy of stdout); lines written
further apart keep their order. The end message of a run is sent once its stderr pipe
reached end-of-file, so ``serve`` writes the closing line after the last stderr line; a
process whose stderr is still held open after it exited (a background child of the run)
delays its end at most :data:`STDERR_LINGER`, and not at all when no process of its
process group is left (the holder escaped into a session of its own). The copy goes on
until end-of-file, after the closing line, as the stdout of such a process does.

The spawner is ``python -I -S`` on this file (the standard library only, so it starts in
~20 ms). It forks once more and its first process exits, so it is no child of ``serve``
(``serve`` has no child process of its own: the runs are the spawner's children, each
in its own session and process group, which ``serve`` signals by its id, as before).
After ``("q",)`` it exits once its runs have ended (``serve`` has stopped them or waits
for them). At end-of-file without it, ``serve`` is gone (``kill -9``, the OOM killer, a
crash): it starts nothing more, sends each running run's process group the run's stop
signal, SIGKILL after the run's grace, and exits once they have ended, as systemd stops a
unit's processes when its main process dies. Nobody would see those runs end or time
out, and the next ``serve`` marks them ``interrupted`` and starts the rule's next run:
left going, a ``busy queue`` rule would have two runs at once, and a restarted dev server
would find its port taken. Four threads spawn (``fork_exec`` releases the GIL while the child
execs, so spawns overlap), one thread reaps through pidfds. It catches SIGINT and SIGTERM
and does nothing with them (a Ctrl-C reaches the whole foreground process group: the
runs' ``serve`` decides when they stop, and a handler, unlike an ignored signal, is reset
in the children). A run whose spawner died is reported failed and its process group gets
SIGKILL from ``serve`` (nothing would see it end or time out), also one it started without
living to say so (found by its stdout, the run's log file, or by its environment's
``TRG_RUN_ID`` and ``TRG_SERVE_ID``); the next run starts a new
spawner.
"""

from __future__ import annotations

import array
import marshal
import os
import signal
import socket
import sys
import threading
import time

SPAWN_THREADS = 4
INLINE_STDIN = 32 * 1024
"""An event up to this size travels in the message; a larger one in a memfd passed with it."""
MESSAGE = 96 * 1024
"""``serve`` starts a new message past this many bytes (a socket's default buffer holds ~200 KiB)."""
MAX_MESSAGE = 256 * 1024
"""The largest message read."""
MAX_FDS = 64
"""At most this many memfds with one message."""
STDERR_LINGER = 0.5
"""Seconds a run's end waits, after its process exited, for its stderr to reach end-of-file
while other processes of its process group still hold it (a ``cmd &`` left running)."""
HOLD_LINE = 0.2
"""Seconds a stderr line without its newline yet is held back before it goes to the log
(a progress line): held, it reaches the file whole, in one write."""
MAX_LINE = 64 * 1024
"""A stderr line held back this long goes to the log unfinished."""
READ = 64 * 1024
STOP_GRACE = 2.0
"""Seconds before SIGKILL when ``serve`` sent no grace (``executor.STOP_KILL_GRACE``)."""


class StderrLines:
    """Marks the lines of one run's stderr with ``mark`` for its log. :meth:`take` gets the
    bytes as they are read and returns what to append now: whole lines, each with the mark
    at its start; a line not ended yet is held (:attr:`line`) until its newline comes, it
    is :data:`MAX_LINE` long, :meth:`flush` is called (after :data:`HOLD_LINE`, at
    end-of-file) . A line written in several pieces gets one mark."""

    __slots__ = ("mark", "line", "at_start", "held")

    def __init__(self, mark: bytes) -> None:
        self.mark = mark
        self.line = b""        # the begun line, held back
        self.at_start = True   # the next byte written starts a line
        self.held = 0.0        # since when (time.monotonic) ``line`` is held

    def take(self, data: bytes, now: float) -> bytes:
        was_held = bool(self.line)
        if was_held:
            data = self.line + data
        cut = data.rfind(b"\n") + 1
        out = b""
        if cut:
            out = data[:cut - 1].replace(b"\n", b"\n" + self.mark) + b"\n"
            if self.at_start:
                out = self.mark + out
            self.at_start = True
        self.line = data[cut:]
        if self.line and (cut or not was_held):
            self.held = now
        if len(self.line) >= MAX_LINE:
            out += self.flush()
        return out

    def flush(self) -> bytes:
        """The held line, unfinished (its rest follows without a mark)."""
        if not self.line:
            return b""
        out = self.mark + self.line if self.at_start else self.line
        self.line, self.at_start = b"", False
        return out


class _Run:
    """A started run as the reaper sees it."""

    __slots__ = ("run", "pid", "pidfd", "log_fd", "pipe", "lines", "status", "linger", "sent", "stop", "grace")

    def __init__(self, run: int, pid: int, pidfd: int, log_fd: int, pipe: int, mark: bytes,
                 stop: int = signal.SIGTERM, grace: float = STOP_GRACE) -> None:
        self.run, self.pid, self.pidfd, self.log_fd, self.pipe = run, pid, pidfd, log_fd, pipe
        self.stop, self.grace = stop, grace  # how to stop it if serve dies first
        self.lines = StderrLines(mark)
        self.status: int | None = None  # the wait status, once reaped
        self.linger = 0.0               # until when the end waits for stderr's end-of-file
        self.sent = False               # the end message went out


# --------------------------------------------------------------------------- the spawner's side

def _read_all(fd: int) -> bytes:
    """What the memfd ``fd`` holds (from its start), and close it."""
    try:
        chunks = []
        while chunk := os.read(fd, 1 << 20):
            chunks.append(chunk)
        return b"".join(chunks)
    finally:
        os.close(fd)


def _write(fd: int, data: bytes) -> None:
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view):]
    except OSError:  # a full disk: the run goes on, as it does when its own writes fail
        pass


def _serve(sock: socket.socket, mark: bytes, stop_signals: list[str]) -> None:  # pragma: no cover - runs in the spawner process (tests drive it)
    import queue
    import select

    import _posixsubprocess

    signal.signal(signal.SIGINT, lambda *a: None)
    signal.signal(signal.SIGTERM, lambda *a: None)
    # no run inherits an ignored stop signal (actions.unignore_stop_signals, which this
    # script, run without its package, cannot import: serve passes actions.STOP_SIGNALS)
    for name in stop_signals:
        sig = getattr(signal, name)
        if sig != signal.SIGKILL and signal.getsignal(sig) is signal.SIG_IGN:
            signal.signal(sig, lambda *a: None)
    send_lock = threading.Lock()
    lock = threading.Lock()
    watched: dict[int, _Run] = {}  # pidfd or stderr pipe -> its run
    live: set[_Run] = set()  # runs whose end message is not sent yet
    jobs: queue.SimpleQueue = queue.SimpleQueue()
    ep = select.epoll()
    wake_r, wake_w = os.pipe2(os.O_CLOEXEC)
    ep.register(wake_r, select.EPOLLIN)
    quitting = threading.Event()
    orphaned = threading.Event()  # serve is gone without asking us to quit: start nothing more

    base: dict[bytes, bytes] = {}

    def send(msg: tuple) -> None:
        send_all([msg])

    def send_all(msgs: list, fds: list[int] | None = None) -> None:
        data = marshal.dumps(msgs)
        with send_lock:
            try:
                if fds:
                    socket.send_fds(sock, [data], fds)
                else:
                    sock.send(data)
            except OSError:  # serve is gone: nothing to tell
                pass

    def fail(run: int, where: str, err: int, message: str, *fds: int | None) -> None:
        for fd in fds:
            if fd is not None and fd >= 0:
                os.close(fd)
        send(("f", run, where, err, message))

    def spawn(msg: tuple, memfd: int | None, env_base: dict[bytes, bytes]) -> None:
        _, run, argv, program, cwd, overrides, log, header, stdin, *how = msg
        if orphaned.is_set():  # serve is gone: nobody would watch it
            if memfd is not None:
                os.close(memfd)
            return None
        merged = dict(env_base)
        merged.update(overrides)
        env = [k + b"=" + v for k, v in merged.items()]
        flags = os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC
        try:
            try:
                log_fd = os.open(log, flags, 0o600)  # payloads: the journal's own mode
            except FileNotFoundError:
                os.makedirs(os.path.dirname(log), 0o700, exist_ok=True)
                log_fd = os.open(log, flags, 0o600)  # payloads: the journal's own mode
            os.write(log_fd, header)
        except OSError as e:
            return fail(run, "log", e.errno or 0, e.strerror or str(e), memfd)
        try:
            if memfd is not None:
                in_fd, memfd = memfd, None
            else:
                in_fd = os.memfd_create("trg-event", os.MFD_CLOEXEC)
                view = memoryview(stdin)
                while view:
                    view = view[os.write(in_fd, view):]
                os.lseek(in_fd, 0, os.SEEK_SET)
        except OSError as e:
            return fail(run, "exec", e.errno or 0, e.strerror or str(e), log_fd, memfd)
        try:
            out_r, out_w = os.pipe2(os.O_CLOEXEC)  # the child's stderr
            os.set_blocking(out_r, False)
        except OSError as e:
            return fail(run, "exec", e.errno or 0, e.strerror or str(e), log_fd, in_fd)
        try:
            err_r, err_w = os.pipe2(os.O_CLOEXEC)
        except OSError as e:
            return fail(run, "exec", e.errno or 0, e.strerror or str(e), log_fd, in_fd, out_r, out_w)
        try:
            try:
                pid = _posixsubprocess.fork_exec(
                    argv, [os.fsencode(program)], True, (err_w,), cwd, env, in_fd, -1, -1, log_fd, -1, out_w, err_r, err_w,
                    True, True, -1, None, None, None, -1, None, True)
            finally:
                os.close(err_w)
                os.close(out_w)
                os.close(in_fd)
            failure = b""
            while True:
                part = os.read(err_r, 50000)
                if not part:
                    break
                failure += part
        except OSError as e:
            return fail(run, "exec", e.errno or 0, e.strerror or str(e), log_fd, err_r, out_r)
        except (TypeError, ValueError) as e:  # a NUL byte in an argument; another Python's fork_exec
            return fail(run, "args" if isinstance(e, ValueError) else "python", 0, str(e), log_fd, err_r, out_r)
        os.close(err_r)
        if failure:
            os.close(out_r)
            os.waitpid(pid, 0)
            try:
                _, hex_errno, what = failure.split(b":", 2)
                err = int(hex_errno, 16)
            except ValueError:
                err, what = 0, failure
            return fail(run, "cwd" if what.startswith(b"noexec") else "exec", err,
                        os.strerror(err) if err else what.decode("utf-8", "replace"), log_fd)
        pidfd = os.pidfd_open(pid)
        r = _Run(run, pid, pidfd, log_fd, out_r, mark, *how)
        with lock:
            watched[pidfd] = watched[out_r] = r
            live.add(r)
        send_all([("p", run, pid)], [log_fd])  # the log fd stays open here until stderr's end-of-file
        # the pipe first: the reaper, woken by the pidfd, reads (and may close) the pipe
        ep.register(out_r, select.EPOLLIN)
        ep.register(pidfd, select.EPOLLIN)

    def spawner() -> None:
        while True:
            item = jobs.get()
            if item is None:
                return
            spawn(*item)

    def copy(r: _Run, now: float) -> None:
        """Copy what ``r``'s stderr pipe holds into its log; at end-of-file, stop watching it."""
        while True:
            try:
                data = os.read(r.pipe, READ)
            except BlockingIOError:
                return
            except OSError:
                data = b""
            if not data:
                _write(r.log_fd, r.lines.flush())
                ep.unregister(r.pipe)
                with lock:
                    del watched[r.pipe]
                closing.extend((r.pipe, r.log_fd))
                r.pipe = r.log_fd = -1
                return
            out = r.lines.take(data, now)
            if out:
                _write(r.log_fd, out)
            if r.lines.line:
                waiting.add(r)

    def end(r: _Run) -> None:
        """Tell ``serve`` that ``r`` ended (its log holds its stderr so far)."""
        if r.pipe >= 0:
            _write(r.log_fd, r.lines.flush())
        r.sent = True
        ended.append(("x", r.run, r.status))
        with lock:
            live.discard(r)

    def due_at(r: _Run) -> float:
        """When the reaper has something to do for ``r`` without an event."""
        at = r.lines.held + HOLD_LINE if r.lines.line else float("inf")
        return min(at, r.linger) if r.status is not None and not r.sent else at

    def group_gone(pgid: int) -> bool:
        try:
            os.killpg(pgid, 0)
        except ProcessLookupError:
            return True
        except OSError:
            return False
        return False

    ended: list[tuple] = []
    closing: list[int] = []  # closed after a poll's events are handled: no fd number is reused meanwhile
    waiting: set[_Run] = set()  # runs with a held stderr line or an end that waits for stderr

    def reaper() -> None:
        while True:
            timeout = -1.0
            if waiting:
                due = min(due_at(r) for r in waiting)
                timeout = max(0.0, due - time.monotonic()) if due < float("inf") else -1.0
            events = ep.poll(timeout)
            now = time.monotonic()
            for fd, _ in events:
                if fd == wake_r:
                    os.read(wake_r, 64)
                    continue
                with lock:
                    r = watched.get(fd)
                if r is None:
                    continue
                if fd == r.pipe:
                    copy(r, now)
                    if r.pipe < 0 and r.status is not None and not r.sent:
                        end(r)
                    continue
                pid, status = os.waitpid(r.pid, os.WNOHANG)
                if pid == 0:  # pragma: no cover - a pidfd is readable once its process ended
                    continue
                ep.unregister(fd)
                with lock:
                    del watched[fd]
                closing.append(fd)
                r.status = status
                if r.pipe >= 0:
                    copy(r, now)
                if r.pipe < 0 or group_gone(r.pid):
                    end(r)
                else:
                    r.linger = now + STDERR_LINGER
                    waiting.add(r)
            for r in list(waiting):
                if r.lines.line and now >= r.lines.held + HOLD_LINE and r.pipe >= 0:
                    _write(r.log_fd, r.lines.flush())
                if r.status is not None and not r.sent and now >= r.linger:
                    end(r)
                if not r.lines.line and (r.sent or r.status is None):
                    waiting.discard(r)
            if ended:
                send_all(ended)
                ended.clear()
            for fd in closing:
                os.close(fd)
            closing.clear()
            if quitting.is_set():
                with lock:
                    if not live:
                        return

    workers = [threading.Thread(target=spawner, daemon=True) for _ in range(SPAWN_THREADS)]
    for t in workers:
        t.start()
    reap = threading.Thread(target=reaper, daemon=True)
    reap.start()
    stop = False  # serve asked us to quit (("q",)); end-of-file before it: serve is gone
    while True:
        try:
            data, fds, _, _ = socket.recv_fds(sock, MAX_MESSAGE, MAX_FDS)
        except OSError:
            data, fds = b"", []
        if not data:  # serve is gone, or asked us to quit
            break
        passed = list(fds)
        msgs = list(marshal.loads(data))
        while msgs:
            msg = msgs.pop(0)
            kind = msg[0]
            if kind == "s":
                jobs.put((msg, passed.pop(0) if msg[8] is None and passed else None, base))
            elif kind == "m":  # a command too large for a message, in the memfd passed with it
                if passed:
                    msgs[:0] = marshal.loads(_read_all(passed.pop(0)))
            elif kind == "e":
                base = msg[1]
            elif kind == "q":
                stop = True
        for fd in passed:  # none is left unless serve sent too few commands for its fds
            os.close(fd)
        if stop:
            break
    if not stop:
        orphaned.set()
    for _ in workers:
        jobs.put(None)
    if orphaned.is_set():  # after the spawning threads: a run they were starting is stopped too
        for t in workers:
            t.join()
        _stop_orphans(lock, live)
    quitting.set()
    os.write(wake_w, b"q")
    reap.join()


def _stop_orphans(lock: threading.Lock, live: set[_Run]) -> None:  # pragma: no cover - in the spawner process (tests drive it)
    """``serve`` is gone: send each running run's process group its stop signal, and
    SIGKILL to each group still there after its run's grace (its leader may have exited
    while a process it left in the background goes on), as ``serve`` stops a run. The
    reaper goes on reaping the leaders meanwhile."""
    with lock:
        runs = list(live)
    now = time.monotonic()
    due = {}
    for r in runs:
        try:
            os.killpg(r.pid, r.stop)
        except OSError:  # the group is gone
            continue
        due[r.pid] = now + r.grace
    while due:
        time.sleep(0.05)
        now = time.monotonic()
        for pgid, at in list(due.items()):
            try:
                os.killpg(pgid, signal.SIGKILL if now >= at else 0)
            except OSError:  # the group is gone
                del due[pgid]
                continue
            if now >= at:
                del due[pgid]


if __name__ == "__main__":  # python -I -S spawn.py FD MARK SIGNALS (MARK: the stderr line marker, in hex;
    # SIGNALS: the stop signals no run may inherit ignored, comma-separated)
    # Not a child of serve (serve's children are its runs, and its tests say so): the first
    # process exits at once and serve reaps it; the spawner lives on until its socket
    # closes, which the kernel does when serve exits, kill -9 included (then it stops the
    # runs still going: _stop_orphans).
    if os.fork() != 0:
        os._exit(0)
    _serve(socket.socket(fileno=int(sys.argv[1])), bytes.fromhex(sys.argv[2]), sys.argv[3].split(","))
    os._exit(0)
