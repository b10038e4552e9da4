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
  header, stdin)``: open the log file (append, created), write ``header``, give the child
  ``stdin`` in a memfd (or the next memfd passed with the message when ``stdin`` is None:
  a large event), start ``program`` with ``argv``/``cwd`` and the environment updated
  with ``env`` in a new session; ``("q",)``: exit once every child ended.
- spawner -> ``serve``: ``("p", run, pid)`` started, with the run's log file descriptor
  attached (``serve`` writes the last line and closes it); ``("f", run, where, errno, message)``
  could not start (``where``: ``log`` the log file, ``cwd`` the working directory,
  ``exec`` the program, ``args`` a NUL byte in an argument); ``("x", run, status)``
  ended, with its wait status.

The spawner is ``python -I -S`` on this file (the standard library only, so it starts in
~20 ms). It forks once more and its first process exits, so it is no child of ``serve``
(``serve`` has no child process of its own: the runs are the spawner's children, each
in its own session and process group, which ``serve`` signals by its id, as before). It exits when its socket reaches end-of-file: when ``serve`` closes it, or
exits, ``kill -9`` included. Four threads spawn (``fork_exec`` releases the GIL while the child
execs, so spawns overlap), one thread reaps through pidfds. It catches SIGINT and SIGTERM
and does nothing with them (a Ctrl-C reaches the whole foreground process group: the
runs' ``serve`` decides when they stop, and a handler, unlike an ignored signal, is reset
in the children). A run whose spawner died is reported failed; the next run starts a new
spawner.
"""

from __future__ import annotations

import array
import marshal
import os
import socket
import sys
import threading

SPAWN_THREADS = 4
INLINE_STDIN = 32 * 1024
"""An event up to this size travels in the message; a larger one in a memfd passed with it."""
MESSAGE = 96 * 1024
"""``serve`` starts a new message past this many bytes (a socket's default buffer holds ~200 KiB)."""
MAX_MESSAGE = 256 * 1024
"""The largest message read."""
MAX_FDS = 64
"""At most this many memfds with one message."""


# --------------------------------------------------------------------------- the spawner's side

def _serve(sock: socket.socket) -> None:  # pragma: no cover - runs in the spawner process (tests drive it)
    import queue
    import select
    import signal

    import _posixsubprocess

    signal.signal(signal.SIGINT, lambda *a: None)
    signal.signal(signal.SIGTERM, lambda *a: None)
    send_lock = threading.Lock()
    lock = threading.Lock()
    pidfds: dict[int, tuple[int, int]] = {}  # pidfd -> (pid, run)
    jobs: queue.SimpleQueue = queue.SimpleQueue()
    ep = select.epoll()
    wake_r, wake_w = os.pipe2(os.O_CLOEXEC)
    ep.register(wake_r, select.EPOLLIN)
    quitting = threading.Event()

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
        _, run, argv, program, cwd, overrides, log, header, stdin = msg
        merged = dict(env_base)
        merged.update(overrides)
        env = [k + b"=" + v for k, v in merged.items()]
        flags = os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC
        try:
            try:
                log_fd = os.open(log, flags, 0o644)
            except FileNotFoundError:
                os.makedirs(os.path.dirname(log), exist_ok=True)
                log_fd = os.open(log, flags, 0o644)
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
            err_r, err_w = os.pipe2(os.O_CLOEXEC)
        except OSError as e:
            return fail(run, "exec", e.errno or 0, e.strerror or str(e), log_fd, memfd)
        try:
            try:
                pid = _posixsubprocess.fork_exec(
                    argv, [os.fsencode(program)], True, (err_w,), cwd, env, in_fd, -1, -1, log_fd, -1, log_fd, err_r, err_w,
                    True, True, -1, None, None, None, -1, None, True)
            finally:
                os.close(err_w)
                os.close(in_fd)
            failure = b""
            while True:
                part = os.read(err_r, 50000)
                if not part:
                    break
                failure += part
        except OSError as e:
            return fail(run, "exec", e.errno or 0, e.strerror or str(e), log_fd, err_r)
        except (TypeError, ValueError) as e:  # a NUL byte in an argument; another Python's fork_exec
            return fail(run, "args" if isinstance(e, ValueError) else "python", 0, str(e), log_fd, err_r)
        os.close(err_r)
        if failure:
            os.waitpid(pid, 0)
            try:
                _, hex_errno, what = failure.split(b":", 2)
                err = int(hex_errno, 16)
            except ValueError:
                err, what = 0, failure
            return fail(run, "cwd" if what.startswith(b"noexec") else "exec", err,
                        os.strerror(err) if err else what.decode("utf-8", "replace"), log_fd)
        pidfd = os.pidfd_open(pid)
        with lock:
            pidfds[pidfd] = (pid, run)
        send_all([("p", run, pid)], [log_fd])
        os.close(log_fd)
        ep.register(pidfd, select.EPOLLIN)

    def spawner() -> None:
        while True:
            item = jobs.get()
            if item is None:
                return
            spawn(*item)

    def reaper() -> None:
        ended: list[tuple] = []
        while True:
            for fd, _ in ep.poll():
                if fd == wake_r:
                    os.read(wake_r, 64)
                    continue
                with lock:
                    pid, run = pidfds.pop(fd)
                ep.unregister(fd)
                os.close(fd)
                _, status = os.waitpid(pid, 0)
                ended.append(("x", run, status))
            if ended:
                send_all(ended)
                ended.clear()
            if quitting.is_set():
                with lock:
                    if not pidfds:
                        return

    workers = [threading.Thread(target=spawner, daemon=True) for _ in range(SPAWN_THREADS)]
    for t in workers:
        t.start()
    reap = threading.Thread(target=reaper, daemon=True)
    reap.start()
    while True:
        try:
            data, fds, _, _ = socket.recv_fds(sock, MAX_MESSAGE, MAX_FDS)
        except OSError:
            data, fds = b"", []
        if not data:  # serve is gone, or asked us to quit
            break
        passed = list(fds)
        stop = False
        for msg in marshal.loads(data):
            kind = msg[0]
            if kind == "s":
                jobs.put((msg, passed.pop(0) if msg[8] is None and passed else None, base))
            elif kind == "e":
                base = msg[1]
            elif kind == "q":
                stop = True
        if stop:
            break
    quitting.set()
    for _ in workers:
        jobs.put(None)
    os.write(wake_w, b"q")
    reap.join()


if __name__ == "__main__":  # python -I -S spawn.py FD
    # Not a child of serve (serve's children are its runs, and its tests say so): the first
    # process exits at once and serve reaps it; the spawner lives on until its socket
    # closes, which the kernel does when serve exits, kill -9 included.
    if os.fork() != 0:
        os._exit(0)
    _serve(socket.socket(fileno=int(sys.argv[1])))
    os._exit(0)
