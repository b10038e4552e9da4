"""systemd's service notification protocol (``sd_notify(3)``), for ``Type=notify`` units.

The service manager passes the path of a datagram socket in ``NOTIFY_SOCKET`` (a name
that starts with ``@`` is in the abstract namespace); the service sends it newline-separated
``KEY=value`` lines in single datagrams. ``serve`` sends:

- ``READY=1`` with a ``STATUS=`` once every source is started (the HTTP listener bound,
  the watchers started): the moment it logs ``serving``; and again after a reload;
- ``RELOADING=1`` with ``MONOTONIC_USEC=`` (``CLOCK_MONOTONIC``, as ``Type=notify-reload``
  requires) when a reload begins: every SIGHUP/SIGUSR1, and a change of the rules file
  that is loaded;
- ``STOPPING=1`` when a stop begins, with ``EXTEND_TIMEOUT_USEC`` for ``--grace`` and the
  time it takes to stop the runs after it (:data:`STOP_MARGIN`), so that a ``--grace``
  longer than ``TimeoutStopSec=`` is not cut short by systemd's SIGKILL;
- ``WATCHDOG=1`` every half of ``WATCHDOG_USEC`` (when it is set, and ``WATCHDOG_PID``,
  if set, is this process), from the event loop: a loop that is stuck stops pinging and
  the service manager restarts the service.

Nothing happens when ``NOTIFY_SOCKET`` is not set. A socket that is gone or refuses a
datagram never fails ``serve``: the first failure is logged at debug level, and the next
message is tried again. The three variables are removed from the environment once read,
as ``sd_notify(unset_environment=1)`` does, so that the runs' processes do not inherit
them (a run that spoke to the socket would be taken for the service).

Written here rather than taken from a library: it is one ``sendto`` of a datagram.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import time
from typing import MutableMapping

log = logging.getLogger("triggerlang")

STOP_MARGIN = 10.0
"""Seconds a stop may take past ``--grace``: the runs' SIGTERM, SIGKILL 2 s later, the journal closed."""


class Notifier:
    """The service manager's notification socket; every method is a no-op without one."""

    def __init__(self, address: str | None, watchdog_usec: int | None = None) -> None:
        self.address = address
        self.watchdog_usec = watchdog_usec
        self._sock: socket.socket | None = None
        self._failed = False

    @classmethod
    def from_environ(cls, environ: MutableMapping[str, str]) -> "Notifier":
        """Read (and remove) ``NOTIFY_SOCKET``, ``WATCHDOG_USEC`` and ``WATCHDOG_PID``."""
        address = environ.pop("NOTIFY_SOCKET", None) or None
        usec_text = environ.pop("WATCHDOG_USEC", None)
        pid_text = environ.pop("WATCHDOG_PID", None)
        usec = int(usec_text) if usec_text and usec_text.isdigit() and int(usec_text) > 0 else None
        if pid_text and pid_text.isdigit() and int(pid_text) != os.getpid():
            usec = None  # the watchdog is another process's (we were started by it)
        if address is not None and not (address.startswith("/") or address.startswith("@")):
            log.debug("NOTIFY_SOCKET=%s is neither a path nor an abstract name: not notifying", address)
            address = None
        return cls(address, usec)

    @property
    def enabled(self) -> bool:
        return self.address is not None

    def send(self, *lines: str) -> bool:
        """One datagram of ``lines``; False (said once, at debug level) if it could not go."""
        if self.address is None:
            return False
        target = "\0" + self.address[1:] if self.address.startswith("@") else self.address
        data = "\n".join(lines).encode("utf-8", "replace")
        try:
            if self._sock is None:
                self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
                self._sock.setblocking(False)
            self._sock.sendto(data, target)
        except OSError as e:
            if not self._failed:
                log.debug("NOTIFY_SOCKET %s: %s (the service manager is not told)", self.address,
                          e.strerror or e)
            self._failed = True
            return False
        self._failed = False
        return True

    def ready(self, status: str) -> None:
        self.send("READY=1", f"STATUS={status}")

    def reloading(self) -> None:
        self.send("RELOADING=1", f"MONOTONIC_USEC={time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000}",
                  "STATUS=reloading the rules")

    def stopping(self, status: str = "stopping", needs: float | None = None) -> None:
        """``STOPPING=1``; with ``needs`` (seconds), also ``EXTEND_TIMEOUT_USEC``: the stop may
        take that long (a ``--grace`` longer than ``TimeoutStopSec=``; systemd only ever
        lengthens its timeout with it)."""
        lines = ["STOPPING=1", f"STATUS={status}"]
        if needs is not None:
            lines.append(f"EXTEND_TIMEOUT_USEC={int(needs * 1_000_000)}")
        self.send(*lines)

    def status(self, status: str) -> None:
        self.send(f"STATUS={status}")

    async def watchdog(self) -> None:
        """``WATCHDOG=1`` every half of ``WATCHDOG_USEC``, until cancelled (nothing without one)."""
        if self.address is None or self.watchdog_usec is None:
            return
        interval = self.watchdog_usec / 2_000_000
        while True:
            self.send("WATCHDOG=1")
            await asyncio.sleep(interval)

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None
