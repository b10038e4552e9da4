"""``serve`` or ``worker`` as the first process of a container (PID 1): a minimal init.

``docker run IMAGE triggerc serve rules.trg`` makes ``triggerc`` PID 1 of the container's
PID namespace, which has two duties no other process has. Signals: the kernel delivers
to PID 1 only the signals it has a handler for (``serve`` has them for SIGTERM, SIGINT,
SIGHUP and SIGUSR1, from the start of its event loop). Orphans: every process whose
parent exits is re-parented to PID 1, which must reap it, or it stays a zombie. An action
that starts a process in the background and exits (``cmd &``, a daemon that forks) leaves
such orphans, one per run, and so does the spawner (runtime/spawn.py), which forks itself
away from ``serve``: measured, a ``serve`` as PID 1 kept every one of them as a zombie
until it stopped.

Reaping them inside ``serve`` would mean a ``waitpid(-1)`` that races the event loop's own
``waitpid`` of the processes it started, and takes their exit statuses. So, as tini and
``docker run --init`` do, the PID-1 process forks: the child goes on to be ``serve`` (in
a process group of its own, made the terminal's foreground group when there is a
terminal, so that a Ctrl-C of ``docker run -it`` reaches it once), and the parent stays
PID 1 and does nothing but

- forward SIGTERM, SIGINT, SIGHUP, SIGUSR1, SIGUSR2 and SIGQUIT to the child (SIGKILL
  of PID 1 ends the container in any case);
- reap every child it is given (``waitpid(-1)`` on each SIGCHLD); none of them is
  ``serve``'s own, so no exit status is taken from anyone;
- exit with the child's exit code once the child exits (128 + N if a signal N ended it,
  as a shell and tini report it).

When ``triggerc`` is not PID 1 (``docker run --init``, systemd, a terminal) nothing of this
happens.
"""

from __future__ import annotations

import os
import signal
import sys

FORWARDED = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGUSR1, signal.SIGUSR2, signal.SIGQUIT)


def exit_code(status: int) -> int:
    """A wait status as a shell's exit code: the code, or 128 + the signal that ended it."""
    code = os.waitstatus_to_exitcode(status)
    return code if code >= 0 else 128 - code


def become_init_if_pid_1() -> None:
    """Return at once unless this process is PID 1; otherwise fork, return in the child
    (which goes on to run the command), and never return in the parent, which is the
    init described above and exits with the child's exit code."""
    if os.getpid() != 1:
        return
    watched = {*FORWARDED, signal.SIGCHLD}
    before = signal.pthread_sigmask(signal.SIG_BLOCK, watched)  # none is lost between the fork and the wait
    child = os.fork()
    if child == 0:
        os.setpgid(0, 0)
        _take_terminal()
        signal.pthread_sigmask(signal.SIG_SETMASK, before)
        return
    sys.exit(_init(child))


def _take_terminal() -> None:
    """Make this process group the foreground of the terminal on stdin, if any."""
    try:
        if not os.isatty(0):
            return
        old = signal.signal(signal.SIGTTOU, signal.SIG_IGN)  # a background group may not do it otherwise
        try:
            os.tcsetpgrp(0, os.getpgrp())
        finally:
            signal.signal(signal.SIGTTOU, old)
    except OSError:
        pass


def _init(child: int) -> int:  # pragma: no cover - runs as PID 1 of a PID namespace (tests/test_service.py)
    """The parent's loop: forward signals to ``child``, reap everything; ``child``'s exit code."""
    watched = {*FORWARDED, signal.SIGCHLD}
    while True:
        info = signal.sigwaitinfo(watched)
        if info.si_signo != signal.SIGCHLD:
            try:
                os.kill(child, info.si_signo)
            except ProcessLookupError:
                pass
            continue
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return 1  # pragma: no cover - the child was reaped above, so this is not reached
            if pid == 0:
                break
            if pid == child:
                return exit_code(status)
