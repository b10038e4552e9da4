"""The delivery history of ``serve``'s webhook routes (the dashboard's sources page).

Like GitHub's "Recent deliveries", every request a route of the manifest answered is
recorded, the refused ones too: when, the route and method, the HTTP status, the
signature's result (``ok``, ``failed``, ``none`` for a route without verification,
``skipped`` when the request was refused before it was checked: 413, 503), the reason of
a refusal, the latency from the request's headers to its answer, the sender's address,
the provider's delivery id, the event and its trigger, and whether it was a redelivery.
Never a body, a header's value other than the delivery id, or a secret.

Decisions:

- The history is a view for operators, not the journal: rows are buffered and written
  in one statement about twice a second (:data:`FLUSH_INTERVAL`), off the request's path,
  so recording costs a webhook a dict and a list append. A crash loses at most the last
  half-second of *history*; the events themselves were committed before their ``202``.
- Each route keeps its newest :data:`KEPT_PER_ROUTE` deliveries (the store prunes older
  ones in the same transaction), so the table stays small whatever the traffic.
- If the store is slow or failing, at most :data:`MAX_BUFFERED` rows wait; past it the
  oldest are dropped and counted in the log (history must never hold memory hostage).
- Rows a write could not store (a database outage in store mode, where every delivery is
  answered ``503``) are kept, not lost: they wait with the newer ones, in their order, and
  are written when the store answers again (tried every :data:`RETRY_INTERVAL` seconds
  until then, within the same bound). Those are the rows an operator needs most: they say
  which deliveries to redeliver by hand (GitHub does not redeliver by itself).
- A stop writes what is waiting: a write the store refuses is tried again every
  :data:`RETRY_INTERVAL` seconds for up to :data:`CLOSE_WAIT` seconds (a node stopped, or
  restarted by its supervisor, while the database comes back still records the ``503``
  answers of the outage), and no longer: a stop must not wait on a database that stays down
  (``serve --store`` gives it what is left of the stop's store budget after the node's
  deregistration: :class:`~.cluster.StoreBudget`, 5 s in all).
  What is still waiting then is lost, and its count said in the log. The writes run in a
  daemon thread of their own, not the loop's executor, whose threads the end of ``serve``
  waits for: a write a stalled database never answers cannot hold the process.
- On the SQLite journal in group-commit mode the write joins the loop's open batch (one
  more statement in a commit that happens anyway); on PostgreSQL it runs in a thread.

Requests that match no route (404), and ``405`` answers, are not deliveries of a route
and are not recorded (they are logged at DEBUG and counted by ``/metrics``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from typing import Any

KEPT_PER_ROUTE = 200
"""Deliveries kept per route (the newest)."""

FLUSH_INTERVAL = 0.5
"""Seconds between two writes of the buffered history."""

MAX_BUFFERED = 10_000
"""Rows that may wait for the store; past it the oldest are dropped."""

RETRY_INTERVAL = 2.0
"""Seconds between two tries of a write the store refused (its rows are kept meanwhile)."""

CLOSE_WAIT = 5.0
"""Seconds a stop gives the waiting rows to be written (see the module docstring)."""

log = logging.getLogger("triggerlang")


def _newest_per_route(rows: list[dict[str, Any]], keep: int) -> list[dict[str, Any]]:
    """The newest ``keep`` rows of each route, in their order (rows come oldest first)."""
    seen: dict[str, int] = {}
    out = []
    for row in reversed(rows):
        n = seen.get(row["route"], 0)
        if n < keep:
            seen[row["route"]] = n + 1
            out.append(row)
    out.reverse()
    return out


class DeliveryRecorder:
    """Buffers delivery rows (dicts of :data:`~triggerlang.runtime.store.DELIVERY_FIELDS`)
    and writes them to ``store.record_deliveries`` in batches. ``metrics`` (a
    :class:`~triggerlang.runtime.metrics.Metrics`) counts each delivery at once.

    ``in_thread``: the store's writes block (PostgreSQL): run them in a worker thread.
    Call :meth:`close` when the sources have stopped, before the store closes."""

    def __init__(self, store: Any, *, metrics: Any = None, in_thread: bool = False,
                 keep: int = KEPT_PER_ROUTE, interval: float = FLUSH_INTERVAL,
                 retry: float = RETRY_INTERVAL) -> None:
        self.store = store
        self.metrics = metrics
        self.in_thread = in_thread
        self.keep = keep
        self.interval = interval
        self.retry = retry
        self._closing = False
        self._rows: list[dict[str, Any]] = []
        self._timer: asyncio.TimerHandle | None = None
        self._writing: asyncio.Future | None = None
        self._inflight: list[dict[str, Any]] = []   # the rows of the write going
        self._error: BaseException | None = None   # the store's last refusal
        self._dropped = 0
        self._failed_logged = 0.0
        self.closed = False

    def __call__(self, row: dict[str, Any]) -> None:
        """Record one delivery (called on the event loop, by the HTTP source)."""
        if self.metrics is not None:
            self.metrics.delivery(row["route"], row["status"])
        if self.closed or self.store is None:
            return
        self._rows.append(row)
        self._bound()
        if self._timer is None and not self._closing:   # (a stop's close writes them)
            try:
                loop = asyncio.get_running_loop()
            except RuntimeError:  # no loop (a test calling the handlers directly): write now
                self.flush()
                return
            self._timer = loop.call_later(self.interval, self._due)

    def _bound(self) -> None:
        """At most :data:`MAX_BUFFERED` rows wait: the oldest go (counted for the log)."""
        rows = self._rows
        if len(rows) > MAX_BUFFERED:
            self._dropped += len(rows) - MAX_BUFFERED
            del rows[: len(rows) - MAX_BUFFERED]

    def _due(self) -> None:
        self._timer = None
        if self._writing is not None and not self._writing.done():
            # the previous write is still going (a slow store): try again later
            self._timer = asyncio.get_running_loop().call_later(self.interval, self._due)
            return
        self.flush()

    def flush(self) -> None:
        """Write what is buffered (in a thread when ``in_thread``)."""
        rows, self._rows = self._rows, []
        if not rows:
            return
        if len(rows) > self.keep:  # a busy route: only its newest `keep` can stay, write no more
            rows = _newest_per_route(rows, self.keep)
        if self._dropped:
            log.warning("the delivery history dropped %d row(s): the store did not keep up", self._dropped)
            self._dropped = 0
        self._inflight = rows
        if self.in_thread:
            try:
                loop = asyncio.get_running_loop()
            except RuntimeError:
                self._written(rows, self._write(rows))
                return
            self._writing = self._in_thread(loop, rows)
            self._writing.add_done_callback(lambda f: self._written(rows, f.result()))
        else:
            self._written(rows, self._write(rows))

    def _in_thread(self, loop: asyncio.AbstractEventLoop, rows: list[dict[str, Any]]) -> asyncio.Future:
        """:meth:`_write` in a daemon thread of its own; a future of its result."""
        done: asyncio.Future = loop.create_future()

        def settle(error: Exception | None) -> None:
            if not done.done():
                done.set_result(error)

        def write() -> None:
            error = self._write(rows)
            with contextlib.suppress(RuntimeError):   # (the loop is closed: the stop went on without it)
                loop.call_soon_threadsafe(settle, error)

        threading.Thread(target=write, name="triggerlang-deliveries", daemon=True).start()
        return done

    def _write(self, rows: list[dict[str, Any]]) -> Exception | None:
        """(In a thread when ``in_thread``.) The store's error, or None once written."""
        try:
            self.store.record_deliveries(rows, self.keep)
        except Exception as e:
            return e
        return None

    def _written(self, rows: list[dict[str, Any]], error: BaseException | None) -> None:
        """(On the loop.) A write is over: failed, its rows wait again, before the newer
        ones, and are tried again in :attr:`retry` seconds (see the module docstring), or by
        :meth:`close` when stopping."""
        self._inflight = []
        if self.closed:   # (a write the stop did not wait for)
            return
        if error is None:
            if self._failed_logged:
                self._failed_logged = 0.0
                log.info("the delivery history is written again")
            return
        now = time.monotonic()
        self._error = error
        self._rows[:0] = rows
        self._bound()
        if self._closing:
            return
        if now - self._failed_logged >= 60:   # said at most once a minute
            self._failed_logged = now
            log.warning("could not record %d webhook deliveries in the history yet (kept, tried again every "
                        "%gs): %s", len(rows), self.retry, error)
        with contextlib.suppress(RuntimeError):   # (no loop: the next delivery's flush tries again)
            loop = asyncio.get_running_loop()
            if self._timer is not None:
                self._timer.cancel()
            self._timer = loop.call_later(self.retry, self._due)

    async def close(self, wait: float = CLOSE_WAIT) -> None:
        """Write the rest and stop recording: a write the store refuses is tried again every
        :attr:`retry` seconds, for up to ``wait`` seconds in all (a write that does not
        answer is not waited for past them); what is left then is lost, and said."""
        self._closing = True
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        loop = asyncio.get_running_loop()
        deadline = loop.time() + wait
        tried = False
        while True:
            if self._writing is not None and not self._writing.done():
                await asyncio.wait([self._writing], timeout=max(0.0, deadline - loop.time()))
                if not self._writing.done():
                    break
            if not self._rows:
                break
            if tried:   # refused: its rows wait again
                await asyncio.sleep(min(self.retry, max(0.0, deadline - loop.time())))
            if loop.time() >= deadline:
                break
            tried = True
            self.flush()
        self.closed = True
        lost = len(self._rows) + len(self._inflight) + self._dropped
        if lost:
            log.warning("could not record %d webhook deliveries in the history before stopping: %s (tried for "
                        "%gs)", lost, self._error or "the store did not answer", wait)
