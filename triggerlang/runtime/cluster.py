"""Store mode (SPEC §12): ingest nodes and workers sharing a PostgreSQL store.

* :class:`IngestEngine` is what ``triggerc serve FILE --store URL`` runs in place of the
  one-process :class:`~.engine.Engine`: it matches each event, turns every match into an
  :class:`~.store.Intent` (the rule's policies travel with it) and hands them to
  :meth:`PgStore.ingest`, which decides the runs in the database and commits before the
  source answers. It publishes its manifest (by sha256) at start and on every reload; the
  runs it creates record that sha256. It registers in the store while it runs
  (:meth:`IngestEngine.join`, renewed by its reaper, gone at a clean stop), so a node's
  start knows which rules the other running nodes still have (see :meth:`~IngestEngine.join`).
* :class:`Worker` claims runs (``serve --workers N`` embeds one with N slots;
  ``triggerc worker`` is one on its own) and runs each with the executor of ``serve``
  and the action of the manifest the run was created under. It wakes on
  ``LISTEN trg_runs`` (a burst of notifications makes at most one claim per
  :attr:`WorkerOptions.notify_gap`), polls every :attr:`WorkerOptions.poll` seconds as a
  fallback, and arms a timer for the next debounced or backed-off run. It heartbeats its
  leases; a heartbeat that finds a lease gone kills that run's process group (fencing),
  and a worker that cannot heartbeat for a whole lease kills all of its runs (someone
  else has reaped them by then). Actions get ``PR_SET_PDEATHSIG``: they die with a
  killed worker. ``busy restart`` reaches a running run as ``cancel_requested``
  (notified at once, and seen at the next heartbeat otherwise): SIGTERM, SIGKILL 5 s
  later, ``cancelled``. ``busy signal`` is refused (:func:`unsupported`).
* :class:`Reaper` runs on every node (ingest or worker) every 2 s:
  :meth:`PgStore.reap`.

A worker's graceful stop drains like ``serve``: no new claims, running runs get the grace
period, the rest are stopped and recorded ``interrupted`` (retried elsewhere when the
rule has ``retry``).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import glob
import logging
import os
import queue
import secrets as _secrets
import shutil
import socket
import stat
import tempfile
import threading
import time
import weakref
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping

from ..actions import bind_inputs
from ..events import Event, complete_data
from ..sources.base import Submitted
from .engine import RELOAD_REMOVED, Rules, StartError, dedupe_key_of, paths_params, resolve_secrets
from .executor import STOP_KILL_GRACE, RunningAction, RunRequest, start_action, stop_actions, stop_on_signals
from .loops import (DEFAULT_MAX_CHAIN_DEPTH, DEFAULT_MAX_RETRIGGERS, LOOP_ACTOR, SETTLE, LoopGuard, depth_reason,
                    paused_skip_reason, resume as resume_rule)
from .notify import STOP_MARGIN, Notifier
from .store import Intent, RunRow, StoreError

log = logging.getLogger("triggerlang")

_RETRIED_IF = " (and retries it if its rule has retry)"

RULE_GONE = "its rule is no longer in the rules file of any running ingest node"
"""The error of a waiting run cancelled at an ingest node's start (or a stop: :meth:`IngestEngine.leave`)
because no running node has its rule (one ``serve``: "its rule is no longer in the rules file")."""


def _pid_gone(pid: int) -> bool:
    """A process of this host is not running, or is this one (the same pid after a restart
    in a container: pid 1 again). Another user's process (EPERM) runs."""
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except OSError:
        return False
    return False


class StoreHealth:
    """Says when the store stops answering, and when it answers again: once each per process.

    In an outage (a restart, a failover) every part of a node fails at once and again at each
    round: the claim loop each poll, the heartbeat and the reaper every 2 s, the LISTEN thread
    each second. Logged as they came, a one-minute restart was about 100 ERROR lines from
    each worker, and no line said that it was over. So the first failure is one ERROR line; the
    same error again, from any part, is a debug line unless a minute has passed since it was
    last said (a different error is said at once); and the first success after a failure is
    one INFO line with how long the store did not answer. Thread-safe (the LISTEN thread)."""

    REPEAT = 60.0   # seconds: an outage that goes on is said again this often

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._since: float | None = None
        self._said: tuple[str, float] = ("", 0.0)

    def failed(self, who: str, e: BaseException) -> None:
        now, text = time.monotonic(), str(e)
        with self._lock:
            if self._since is None:
                self._since = now
            loud = text != self._said[0] or now - self._said[1] >= self.REPEAT
            if loud:
                self._said = (text, now)
        (log.error if loud else log.debug)("%s: %s", who, text)

    def ok(self) -> None:
        with self._lock:
            since, self._since, self._said = self._since, None, ("", 0.0)
        if since is not None:
            log.info("the store answers again, after %.0fs", time.monotonic() - since)


_HEALTH: "weakref.WeakKeyDictionary[Any, StoreHealth]" = weakref.WeakKeyDictionary()


def store_health(store: Any) -> StoreHealth:
    """The one :class:`StoreHealth` of ``store`` in this process (its worker and reaper share it)."""
    h = _HEALTH.get(store)
    if h is None:
        h = _HEALTH[store] = StoreHealth()
    return h

FINISH_RETRY = 1.0
"""Seconds before a run end that could not be written is tried again (growing to 30 s)."""


def node_pool(hostname: str | None = None) -> str:
    """The pool of a node's file-watching runs: ``node:<hostname>`` (SPEC §12.2)."""
    return f"node:{hostname or socket.gethostname()}"


def intents_of(rules: Rules, event: Event, pool_of_files: str, *, max_depth: int | None = None,
               paused: Any = None) -> list[Intent]:
    """The matches of ``event`` as intents for :meth:`PgStore.ingest`, in rule order.

    Loop protection (runtime/loops.py): an event deeper than ``max_depth`` gets intents
    that are recorded ``skipped`` with the reason, and so does a match of a rule that
    ``paused(rule)`` says is paused (it returns ``{"reason": ...}`` or None)."""
    out = []
    too_deep = max_depth is not None and event.depth > max_depth
    for m in rules.matcher.match(event):
        name = m.rule.name
        pol = rules.policies(name)
        dedupe = pol.get("dedupe") or None
        debounce = float(pol["debounce"]) if pol.get("debounce") else None
        skip = None
        if too_deep:
            skip = depth_reason(event.depth, max_depth)  # type: ignore[arg-type]
        elif paused is not None and paused(name) is not None:
            skip = paused_skip_reason(name, paused(name)["reason"])
        out.append(Intent(
            rule=name, action=m.rule.action, inputs=bind_inputs(rules.actions.get(m.rule.action, {}), m.inputs),
            busy=str(pol.get("busy") or "queue"), debounce=debounce, dedupe_key=dedupe_key_of(pol, event.data),
            dedupe_field=dedupe["field"] if dedupe else None,
            dedupe_for=float(dedupe["for"]) if dedupe and dedupe.get("for") else None,
            timeout=float(pol["timeout"]) if pol.get("timeout") is not None else None,
            retry=int(pol.get("retry") or 0), backoff=float(pol.get("backoff") or 5.0),
            paths_params=paths_params(rules.rules[name]) if debounce else (),
            pool=pool_of_files if event.source == "file" else "default", skip=skip))
    return out


def unsupported(manifest: Mapping[str, Any]) -> str | None:
    """Why store mode cannot run these rules, or None.

    ``busy signal`` (a running run gets a signal instead of a new run starting) is refused
    at start and by a reload: the running run may be on another machine's worker, and the
    store has no way to carry a signal to it (``busy restart`` rides ``cancel_requested``);
    queued there instead, it would be silently what it does not say. Its rule runs on one
    machine with ``triggerc serve`` without ``--store``."""
    names = [r["name"] for r in manifest.get("rules") or []
             if isinstance(r, Mapping) and (r.get("policies") or {}).get("busy") == "signal"]
    if not names:
        return None
    return (f"busy signal ({'rules' if len(names) > 1 else 'rule'} {', '.join(names)}) does not work with --store: "
            f"the running run may be on another machine's worker, which this node cannot signal; use busy "
            f"restart or queue, or serve those rules without --store")


def run_event(row: RunRow, depth: int = 0) -> Event:
    """The ``run.completed`` / ``run.failed`` event of a finished run (SPEC §4), one deeper
    than ``depth``, the depth of the run's own event."""
    typ = "completed" if row.status == "succeeded" else "failed"
    return Event("run", typ, {"rule": row.rule, "action": row.action, "status": row.status,
                              "exit_code": row.exit_code, "duration": row.duration, "inputs": row.inputs,
                              "run_id": row.id, "event_id": row.event_id, "attempt": row.attempt}, depth=depth + 1)


def count_journaled(metrics: Any, event: Event, intents: list[Intent], max_depth: int) -> None:
    """An event journaled in store mode, and the runs decided with it, on ``/metrics`` (after
    the commit): an ingest node's and a worker's alike. As the one-process engine counts
    them: a run recorded ``skipped`` (loop protection, ``busy skip``, ``dedupe``, a tick
    already waiting), and each waiting run a ``busy restart`` cancelled for it."""
    decided = [(it.rule, it.decided) for it in intents if it.decided is not None]
    decided += [(it.rule, "cancelled") for it in intents for _ in range(it.replaced)]
    metrics.journaled(event.source, event.type, decided, bool(intents) and event.depth > max_depth)


class IngestEngine:
    """The ingest side of a node in store mode (see the module docstring)."""

    INGEST_THREADS = 16
    """Transactions in flight at once (each holds a pooled connection while it commits)."""

    def __init__(self, manifest: dict, store: Any, *, hostname: str | None = None,
                 max_open_groups: int | None = None, max_chain_depth: int = DEFAULT_MAX_CHAIN_DEPTH,
                 max_retriggers: int = DEFAULT_MAX_RETRIGGERS, metrics: Any = None) -> None:
        self.store = store
        self.pool = node_pool(hostname)
        self.host = hostname or socket.gethostname()
        self.node = f"{self.host}:{os.getpid()}:{_secrets.token_hex(3)}"   # its registration (join)
        self.started: float | None = None   # registered at (the database's clock), until it leaves
        self.lease = 10.0
        self.max_chain_depth = max_chain_depth
        self.loops = LoopGuard(max_retriggers)
        self.metrics = metrics
        self.correlations: Any = None     # correlation rules (SPEC §11): runtime/pgcorrelate.py
        self.max_open_groups = max_open_groups
        # not the loop's default executor (cpu + 4 threads, shared with everything else):
        # concurrent webhooks commit concurrently, and PostgreSQL groups their fsyncs
        # (daemon threads: a transaction a hung database never answers cannot hold the stop)
        self._executor = DaemonExecutor(self.INGEST_THREADS, "triggerlang-ingest")
        self.load(manifest)

    def close(self) -> None:
        self._executor.shutdown(wait=True)

    def load(self, manifest: dict) -> None:
        """Use a (new) manifest: publish it, match with it from now on; paused rules are
        un-paused. A reload cancels the waiting runs of the rules it removed, as the
        one-process engine's does (:meth:`Engine.load <.engine.Engine.load>`): those the
        previous manifest made, on any node, in one statement (:meth:`PgStore.cancel_waiting`),
        so each is cancelled once, by the first node that reloads; a node still on the old
        rules may queue more until it reloads too. Runs already going are left to finish."""
        problem = unsupported(manifest)
        if problem is not None:
            raise StartError(problem)
        for rule in self.loops.reset():
            log.info("rule %s un-paused by the reload", rule, extra={"rule": rule})
        sha = self.store.publish_manifest(manifest)
        before: Rules | None = getattr(self, "current", None)
        self.current = Rules(manifest, sha)
        if before is not None and before.sha != sha:
            if self.started is not None:   # the other nodes' starts see its new rules at once
                with contextlib.suppress(StoreError):   # (else at the reaper's next round: keep)
                    self._keep_node()
            self._cancel_removed(before, self.current)
        if self.metrics is not None:
            self.metrics.load(manifest)
        # what the dashboard's explain reasons read
        self.manifest = manifest
        self.matcher = self.current.matcher
        log.info("manifest %s published to the store", sha[:12])
        from .correlate import has_correlations

        if self.correlations is not None:
            self.correlations.reload(manifest)
        elif has_correlations(manifest):
            from .pgcorrelate import ClusterCorrelations

            kw = {"max_open_groups": self.max_open_groups} if self.max_open_groups else {}
            self.correlations = ClusterCorrelations(self, manifest, self.store, **kw)
            if getattr(self, "_started", False):
                self.correlations.start()
                self.correlations.start_timers()


    def _cancel_removed(self, before: Rules, now: Rules) -> None:
        removed = set(before.rules) - set(now.rules)
        try:
            cancelled = self.store.cancel_waiting(removed, before.sha, RELOAD_REMOVED)
        except StoreError as e:
            log.error("reload: the waiting runs of %s were not cancelled: %s", ", ".join(sorted(removed)), e)
            return
        self._said("reload", cancelled, RELOAD_REMOVED)

    def _said(self, when: str, cancelled: dict[str, int], reason: str) -> None:
        """The waiting runs this node cancelled, by rule: logged and counted."""
        for rule, n in sorted(cancelled.items()):
            log.info("%s: %d waiting run(s) of %s cancelled: %s", when, n, rule, reason, extra={"rule": rule})
            for _ in range(n if self.metrics is not None else 0):
                self.metrics.run_ended(rule, "cancelled")

    def join(self, lease: float) -> None:
        """(In a thread, at ``serve``'s start.) Register this node and its manifest in the
        store for ``lease`` seconds (renewed by :meth:`keep`), and cancel the waiting runs
        whose rule is neither in its rules nor in a running node's (:meth:`PgStore.join_node`).

        Why not every rule missing from this node's file, as one ``serve`` does: during a
        rolling deploy the nodes not restarted yet still run the old rules (and queue more
        of their runs), as systemd keeps a job whose unit is still loaded somewhere; the
        runs of a rule the others still have wait. A node that died counts as running
        until its lease runs out (on this host, not at all: its process is gone). When a
        node still holding such a rule stops after a node without it started, its stop
        cancels them (:meth:`leave`)."""
        self.lease = lease
        self.started, cancelled = self.store.join_node(self.node, self.host, os.getpid(), self.current.sha, lease,
                                                       set(self.current.rules), RULE_GONE, _pid_gone)
        self._said("start", cancelled, RULE_GONE)

    def keep(self) -> None:
        """(The reaper's round, in a thread.) The manifest stays in the store, and this
        node's registration is renewed."""
        self.store.keep_manifest(self.manifest)
        if self.started is not None:
            self._keep_node()

    def _keep_node(self) -> None:
        self.store.keep_node(self.node, self.host, os.getpid(), self.current.sha, self.lease, self.started)

    def leave(self) -> None:
        """(In a thread, at a clean stop.) This node's registration goes; if a node started
        after it, the waiting runs of the rules no running node has are cancelled
        (:meth:`PgStore.leave_node`)."""
        if self.started is None:
            return
        self.started = None
        try:
            cancelled = self.store.leave_node(self.node, RULE_GONE)
        except StoreError as e:
            log.error("stop: this node's registration in the store was not removed (it runs out after its %gs "
                      "lease): %s", self.lease, e)
            return
        self._said("stop", cancelled, RULE_GONE)

    def intents(self, event: Event, pool: str) -> list[Intent]:
        """The current rules' intents for an event (a correlation's events are made here too):
        an event too deep in a chain gets skipped intents (loop protection)."""
        return intents_of(self.current, event, pool, max_depth=self.max_chain_depth, paused=self.loops.is_paused)


    async def submit(self, event: Event, delivery_key: str | None = None) -> Submitted:
        """Journal one event with the runs its matches get; returns once committed."""
        complete_data(event.source, event.type, event.data)  # (an emitted one may name only its path)
        rules = self.current
        loop = asyncio.get_running_loop()
        if event.source == "file":  # loop protection: a change while the rule's own run goes
            for m in rules.matcher.match(event):
                if self.loops.is_paused(m.rule.name) is None:
                    await loop.run_in_executor(self._executor, self._note_change, m.rule.name)
        intents = intents_of(rules, event, self.pool, max_depth=self.max_chain_depth, paused=self.loops.is_paused)
        if intents and event.depth > self.max_chain_depth:
            log.warning("event %s (%s) is %d runs deep in a chain, over --max-chain-depth %d: journaled, no run "
                        "started", event.id, event.trigger, event.depth, self.max_chain_depth,
                        extra={"event_id": event.id, "depth": event.depth})
        corr = self.correlations
        fired: list[int] = []
        emitted: list = []
        in_tx = corr.in_tx(event, fired, emitted) if corr is not None and corr.active and corr.touches(event) else None
        t0 = time.perf_counter()

        def ingest() -> Any:
            return self.store.ingest(event, intents, delivery_key, manifest=rules.sha, in_tx=in_tx)

        bound = getattr(self.store, "timeout", None)
        if bound is not None:   # the bound counts from here: a wait for one of the threads counts too
            at = time.monotonic() + bound
            plain = ingest

            def ingest() -> Any:
                with self.store.deadline(at):
                    return plain()

        rec = await loop.run_in_executor(self._executor, ingest)
        if self.metrics is not None and not rec.duplicate:
            self.metrics.committed(time.perf_counter() - t0)
            self.count(event, intents)
            for ev, its in emitted:
                self.count(ev, its)
        return Submitted(rec.event_id, rec.run_ids + ([] if rec.duplicate else fired), duplicate=rec.duplicate)

    def count(self, event: Event, intents: list[Intent]) -> None:
        """An event this node journaled, and the runs it decided ``skipped`` with it, on
        ``/metrics``: a source's event (:meth:`submit`) and each ``correlation.*`` event a
        fire journals (runtime/pgcorrelate.py), after their transaction's commit. (A
        ``run.*`` event is counted by the worker whose finish journals it: :meth:`Worker._finish`.)"""
        if self.metrics is not None:
            count_journaled(self.metrics, event, intents, self.max_chain_depth)

    def _note_change(self, rule: str) -> None:
        """(In a thread.) A file change matched ``rule``: count it against the run going now,
        from the store's rows (runtime/loops.py); pause the rule when that is enough."""
        try:
            runs, now = self.store.recent_runs(rule, 2)
        except StoreError as e:
            log.warning("loop protection: %s", e)
            return
        if not runs:
            return
        run_id, status, finished_at = runs[0]
        if not (status == "running" or (finished_at is not None and now - finished_at <= SETTLE)):
            return
        previous = runs[1][0] if len(runs) > 1 else None
        reason = self.loops.retriggered(rule, run_id, previous)
        if reason is not None:
            log.warning("rule %s paused: %s", rule, reason, extra={"rule": rule})
            try:
                self.store.pause_rule(rule, paused_skip_reason(rule, reason), LOOP_ACTOR)
            except StoreError as e:
                log.error("loop protection: %s", e)
            if self.metrics is not None:
                self.metrics.paused(rule, True)

    def resume(self, rule: str, actor: str) -> bool:
        """Un-pause a rule paused by loop protection on this node; whether it was paused."""
        return resume_rule(self.loops, rule, actor, known=rule in self.current.rules, add_audit=self.store.add_audit, metrics=self.metrics)


def _within(store: Any, seconds: float, fn: Callable[..., Any], *args: Any) -> Any:
    """(In a thread.) ``fn(*args)``, the store's calls given up after ``seconds`` (StoreTimeout)."""
    if not hasattr(store, "deadline"):
        return fn(*args)
    with store.deadline(time.monotonic() + seconds):
        return fn(*args)


CLAIM_BACKOFF_MAX = 30.0
"""Seconds a worker waits at most between two claims while the store fails or hangs (the
wait doubles from ``poll``)."""

CLAIM_WAIT = 10.0
"""Seconds a worker's stop waits for a claim in flight to come back (a query: milliseconds,
unless the store does not answer); within the stop's :class:`StoreBudget`."""

STOP_STORE_WAIT = 5.0
"""Seconds a stop waits, in all, for the store's answers beyond ``--grace`` (see :class:`StoreBudget`)."""


class StoreBudget:
    """What a stop in store mode may wait, in all, for the database: :data:`STOP_STORE_WAIT`.

    A database that hangs rather than refusing (a network partition, a stopped VM, a lock
    wait) answers neither a query nor a new connection, and no connection option of ours
    bounds that: ``statement_timeout`` and ``lock_timeout`` are enforced by the server
    (which is the part that hangs), TCP keepalives and ``tcp_user_timeout`` are answered
    by a stopped server's kernel, and ``connect_timeout`` (10 s) covers a new connection
    only. So each store call of a stop (the deliveries being journaled, which the HTTP
    listener's stop waits for, the node's leave, the delivery history, a claim in flight,
    the runs' ends, the correlation timers' stamp) is waited for with a deadline,
    and the calls share one budget: a stop takes at most ``--grace`` plus this (and the
    runs' kill), as systemd's ``TimeoutStopSec=`` and Kubernetes'
    ``terminationGracePeriodSeconds`` expect, whatever the database does. What a call that
    did not answer would have written is said in the log, with what takes it over: a run's
    end stays ``running`` under this worker's lease until it runs out, then a reaper (of
    another node, or of the next start) records it ``interrupted`` and retries it if its
    rule has ``retry``; a node's registration runs out after its ``--lease``. The threads of
    those calls are daemonic (:class:`DaemonExecutor`), so the process's end does not wait
    for them either. Five seconds: what the delivery history's stop already waited
    (:data:`.deliveries.CLOSE_WAIT`), and within the 10 s ``serve`` asks systemd for beyond
    ``--grace`` (``EXTEND_TIMEOUT_USEC``: :data:`.notify.STOP_MARGIN`)."""

    def __init__(self, seconds: float = STOP_STORE_WAIT) -> None:
        self.seconds = seconds
        self.spent = 0.0

    def left(self) -> float:
        return max(0.0, self.seconds - self.spent)

    async def wait(self, aw: Any) -> Any:
        """``aw`` (a coroutine or a future), within what is left; TimeoutError past it
        (``aw`` is then cancelled: a thread it waited on goes on, unwaited)."""
        t0 = time.monotonic()
        try:
            return await asyncio.wait_for(aw, max(self.left(), 0.05))   # (a moment, to begin)
        finally:
            self.spent += time.monotonic() - t0

    @contextlib.contextmanager
    def counting(self) -> Iterator[None]:
        """Count the time of a wait bounded by :meth:`left` elsewhere (the delivery history's close)."""
        t0 = time.monotonic()
        try:
            yield
        finally:
            self.spent += time.monotonic() - t0

    async def call(self, fn: Callable[..., Any], *args: Any) -> Any:
        """``fn(*args)`` in a thread, within what is left (TimeoutError past it)."""
        return await self.wait(asyncio.to_thread(fn, *args))


def use_daemon_threads(loop: asyncio.AbstractEventLoop) -> None:
    """The loop's default executor (``asyncio.to_thread``) becomes a :class:`DaemonExecutor`
    of the default's size: store mode, where a thread may wait on a hung database."""
    loop.set_default_executor(DaemonExecutor(min(32, (os.cpu_count() or 1) + 4)))


class DaemonExecutor(concurrent.futures.ThreadPoolExecutor):   # (the type asyncio's default must be)
    """A thread pool of daemon threads, whose ``shutdown(wait=True)`` waits at most
    ``join`` seconds: the loop's default executor (and the ingest transactions' pool) in
    store mode. ``ThreadPoolExecutor``'s threads are joined at the loop's close
    (``asyncio.Runner``, ``asyncio.run``) and again at the interpreter's exit, without a
    bound: a store call that a hung database never answers (a heartbeat, a claim, a
    reaper's round going when the stop began) would hold the process for ever after its
    stop was over (:class:`StoreBudget`)."""

    def __init__(self, max_workers: int, name: str = "triggerlang-store", join: float = 1.0) -> None:
        super().__init__(max_workers, thread_name_prefix=name)   # (none of its threads is started: submit is ours)
        self._max = max_workers
        self._name = name
        self._join = join
        self._queue: queue.SimpleQueue = queue.SimpleQueue()
        self._threads: list[threading.Thread] = []
        self._idle = 0
        self._lock = threading.Lock()
        self._shut = False

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> concurrent.futures.Future:
        with self._lock:
            if self._shut:
                raise RuntimeError("cannot schedule new futures after shutdown")
            f: concurrent.futures.Future = concurrent.futures.Future()
            self._queue.put((f, fn, args, kwargs))
            if self._idle <= 0 and len(self._threads) < self._max:
                t = threading.Thread(target=self._work, name=f"{self._name}-{len(self._threads)}", daemon=True)
                self._threads.append(t)
                t.start()
            else:
                self._idle -= 1
            return f

    def _work(self) -> None:
        while True:
            item = self._queue.get()
            if item is None:
                return
            f, fn, args, kwargs = item
            if f.set_running_or_notify_cancel():
                try:
                    result = fn(*args, **kwargs)
                except BaseException as e:
                    f.set_exception(e)
                else:
                    f.set_result(result)
                del f, fn, args, kwargs, item
            with self._lock:
                self._idle += 1

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        with self._lock:
            self._shut = True
            threads = list(self._threads)
        if cancel_futures:
            while True:
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
                if item is not None:
                    item[0].cancel()
        for _ in threads:
            self._queue.put(None)
        if wait:
            deadline = time.monotonic() + self._join
            for t in threads:
                t.join(max(0.0, deadline - time.monotonic()))


@dataclass
class WorkerOptions:
    slots: int = 4
    pools: tuple[str, ...] = ("default",)
    base_dir: Path | None = None        # where relative paths of actions start (default: the manifest's)
    lease: float = 10.0                 # seconds a claim or heartbeat holds a run
    heartbeat: float = 2.0              # seconds between heartbeats
    poll: float = 2.0                   # fallback poll when no notification comes
    notify_gap: float = 0.05            # at most one claim per this many seconds on notifications
    grace: float = 10.0                 # a graceful stop gives running runs this long
    restart_grace: float | None = None  # busy restart: the stop signal, SIGKILL after this long (None: the action's grace)
    max_chain_depth: int = DEFAULT_MAX_CHAIN_DEPTH  # a run.* event deeper than this starts no run
    environ: Mapping[str, str] = field(default_factory=lambda: os.environ)


def _log_folder() -> Path:
    """A new folder for a worker's running runs' logs (it removes it when it stops):
    ``triggerlang-worker-<host>-<pid>-*`` in the temporary folder. Those of this host's
    workers that died without removing theirs (kill -9), and this user's, are removed first."""
    prefix = f"triggerlang-worker-{socket.gethostname()}-"
    for d in Path(tempfile.gettempdir()).glob(glob.escape(prefix) + "*"):
        pid = d.name[len(prefix):].split("-", 1)[0]
        try:
            st = d.lstat()
            if not (pid.isdigit() and stat.S_ISDIR(st.st_mode) and st.st_uid == os.getuid()):
                continue
            os.kill(int(pid), 0)
        except ProcessLookupError:   # its worker is gone
            shutil.rmtree(d, ignore_errors=True)
        except (OSError, OverflowError, ValueError):  # alive (another user's), or unreadable
            continue
    return Path(tempfile.mkdtemp(prefix=f"{prefix}{os.getpid()}-"))


@dataclass
class _Active:
    row: RunRow
    log_path: Path
    ra: RunningAction | None = None
    log_size: int = -1
    cancelling: bool = False


class Worker:
    """Claims and runs the runs of its pools (see the module docstring)."""

    def __init__(self, store: Any, opts: WorkerOptions, *, name: str | None = None, metrics: Any = None) -> None:
        self.store = store
        self.opts = opts
        self.metrics = metrics
        self.id = name or f"{socket.gethostname()}:{os.getpid()}:{_secrets.token_hex(3)}"
        self.active: dict[int, _Active] = {}
        self.fenced: set[int] = set()
        self.closing = False
        self.tasks: set[asyncio.Task] = set()
        self._rules: dict[str, Rules | None] = {}
        self._secrets: dict[tuple, dict[str, str] | str] = {}   # by (manifest, secret name)
        self._wake: asyncio.Event | None = None
        self._stop_listen = threading.Event()
        self._listener: threading.Thread | None = None
        self._loops: list[asyncio.Task] = []
        self._last_claim = 0.0             # the last claim a notification made (for notify_gap)
        self._notified_since = False
        self._last_beat_ok = time.monotonic()
        self.health = store_health(store)
        self.tmp = _log_folder()

    # ------------------------------------------------------------------ start and stop
    async def start(self) -> None:
        self.loop = asyncio.get_running_loop()
        self._wake = asyncio.Event()
        self._wake.set()
        self._listener = threading.Thread(target=self._listen, name="triggerlang-listen", daemon=True)
        self._listener.start()
        self._loops = [asyncio.create_task(self._claim_loop(), name="worker-claim"),
                       asyncio.create_task(self._heartbeat_loop(), name="worker-heartbeat")]
        log.info("worker %s: %d slot(s), pools %s, lease %gs, heartbeat %gs", self.id, self.opts.slots,
                 ", ".join(self.opts.pools), self.opts.lease, self.opts.heartbeat)

    async def drain(self, grace: float | None = None, now: asyncio.Event | None = None,
                    budget: StoreBudget | None = None) -> None:
        """Stop claiming; let running runs finish for ``grace`` seconds, then stop them
        (recorded ``interrupted``; at once when ``now`` is set: a second Ctrl-C); then stop
        heartbeating and listening. The store's answers (a claim in flight, the runs' ends)
        are waited for within ``budget`` (:class:`StoreBudget`); the runs whose end or
        release was not recorded by then are named in the log."""
        grace = self.opts.grace if grace is None else grace
        budget = budget or StoreBudget()
        self.closing = True
        if self._wake is not None:
            self._wake.set()
        # A claim in flight (a query in its thread) ends first: the runs it took become
        # active below (and are released, not started), rather than claimed by a worker that
        # is gone, `running` until its lease runs out and the reaper marks them interrupted.
        claiming = [t for t in self._loops if t.get_name() == "worker-claim" and not t.done()]
        if claiming:
            with contextlib.suppress(asyncio.TimeoutError):
                await budget.wait(asyncio.wait(claiming, timeout=CLAIM_WAIT))
        # A run claimed before the drain began either sees `closing` before its start and is
        # released (another worker takes it), or is starting now: it gets what is left of the
        # grace, as the runs going when the drain began do, rather than being stopped at once.
        deadline = time.monotonic() + grace
        waited: set[int] = set()
        while not (now is not None and now.is_set()):
            going = {rid: a.ra for rid, a in self.active.items()
                     if a.ra is not None and not a.ra.done() and rid not in waited}
            if going:
                waited.update(going)
                await stop_actions(list(going.values()), max(0.0, deadline - time.monotonic()), now, log,
                                   f"worker {self.id}: ")
            elif any(a.ra is None for a in self.active.values()) and time.monotonic() < deadline:
                await asyncio.sleep(0.02)  # between its claim and its start: released or started soon
            else:
                break
        # a run that is starting still (the grace is over, or Ctrl-C again) is stopped too
        late = [a.ra for a in self.active.values() if a.ra is not None and not a.ra.done()]
        await asyncio.gather(*(ra.cancel(grace=0.0 if now is not None and now.is_set() else STOP_KILL_GRACE,
                                         status="interrupted")
                               for ra in late))
        if self.tasks:
            with contextlib.suppress(asyncio.TimeoutError):
                await budget.wait(asyncio.wait(list(self.tasks), timeout=None))
        if self.tasks:
            self._given_up(budget)
            await asyncio.wait(list(self.tasks), timeout=1)   # (cancelled: they end at once)
        for t in self._loops:
            t.cancel()
        for t in self._loops:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await t
        self._stop_listen.set()
        if self._listener is not None:   # (a daemon thread: one that is connecting is not waited for)
            with contextlib.suppress(asyncio.TimeoutError):
                await budget.call(self._listener.join, 5)
        shutil.rmtree(self.tmp, ignore_errors=True)

    def _given_up(self, budget: StoreBudget) -> None:
        """The store did not answer within the stop's budget: the runs whose end (or
        release) it was still to record are said, with what happens to them, and left."""
        for rid, a in sorted(self.active.items()):
            what = "its release (claimed, not started)" if a.ra is None else "its end"
            log.warning("run %s of %s: %s was not recorded, as the store did not answer within %gs of the stop: it "
                        "stays running under worker %s until its %gs lease runs out, then a reaper (any node's, or "
                        "the next start's) records it interrupted%s", rid, a.row.rule, what, budget.seconds, self.id,
                        self.opts.lease, _RETRIED_IF, extra={"run_id": rid, "rule": a.row.rule})
        for t in list(self.tasks):
            t.cancel()

    def _spawn(self, coro: Any) -> asyncio.Task:
        t = asyncio.get_running_loop().create_task(coro)
        self.tasks.add(t)
        t.add_done_callback(self.tasks.discard)
        return t

    # ------------------------------------------------------------------ wake-ups
    def _listen(self) -> None:
        """LISTEN in a thread of its own; notifications are handed to the event loop."""
        from .pgstore import NOTIFY_CANCEL, NOTIFY_RUNS

        while not self._stop_listen.is_set():
            conn = None
            try:
                conn = self.store.listen_connection()
                conn.execute(f"LISTEN {NOTIFY_RUNS}")
                conn.execute(f"LISTEN {NOTIFY_CANCEL}")
                self.health.ok()
                self.loop.call_soon_threadsafe(self._notified, NOTIFY_RUNS, None)  # catch up on what we missed
                while not self._stop_listen.is_set():
                    for n in conn.notifies(timeout=0.5):
                        self.loop.call_soon_threadsafe(self._notified, n.channel, n.payload)
            except Exception as e:  # a lost connection: the poll keeps things going, reconnect
                if self._stop_listen.is_set():
                    break
                if isinstance(e, StoreError):   # cannot connect: the outage, said once (StoreHealth)
                    self.health.failed(f"worker {self.id}: notifications lost; reconnecting", e)
                else:
                    log.warning("worker %s: notifications lost (%s); reconnecting", self.id, type(e).__name__)
                self._stop_listen.wait(1.0)
            finally:
                if conn is not None:
                    with contextlib.suppress(Exception):
                        conn.close()

    def _notified(self, channel: str, payload: str | None) -> None:
        if channel == "trg_cancel":
            try:
                rid = int(payload or "")
            except ValueError:
                return
            a = self.active.get(rid)
            if a is not None:
                self._spawn(self._check_cancel([rid]))
            return
        if payload is None or payload in self.opts.pools:
            self._notified_since = True
            if self._wake is not None:
                self._wake.set()

    async def _check_cancel(self, ids: list[int]) -> None:
        try:
            wanted = await asyncio.to_thread(self.store.cancel_requested, ids)
        except StoreError as e:
            log.warning("worker %s: %s", self.id, e)
            return
        for rid in wanted:
            self._cancel(rid, self.opts.restart_grace, "a cancel was asked for (busy restart or an operator)")

    def _cancel(self, rid: int, grace: float | None, why: str) -> None:
        a = self.active.get(rid)
        if a is None or a.ra is None or a.cancelling or a.ra.done():
            return
        a.cancelling = True
        log.info("run %s of %s: stopping (%s)", rid, a.row.rule, why)
        self._spawn(a.ra.cancel(grace=grace))

    # ------------------------------------------------------------------ claiming
    async def _idle(self, seconds: float) -> None:
        """The claim loop's pause: until a wake-up (a notification, the stop) or ``seconds``.
        (A test replaces it, to see the waits of a failing store without waiting them.)"""
        assert self._wake is not None
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(self._wake.wait(), seconds)

    async def _claim_loop(self) -> None:
        assert self._wake is not None
        timeout = backoff = self.opts.poll
        while not self.closing:
            await self._idle(timeout)
            if self.closing:
                return
            self._wake.clear()
            if self._notified_since:
                # a burst of notifications makes one claim per notify_gap (SPEC §12.3)
                gap = self._last_claim + self.opts.notify_gap - time.monotonic()
                if gap > 0:
                    await asyncio.sleep(gap)
                self._notified_since = False
                self._last_claim = time.monotonic()
            timeout = self.opts.poll
            free = self.opts.slots - len(self.active)
            failing, backoff = backoff, self.opts.poll
            try:
                if free > 0:
                    rows = await asyncio.to_thread(self.store.claim, self.id, list(self.opts.pools), free,
                                                   self.opts.lease)
                    self.health.ok()
                    for row in rows:
                        self.active[row.id] = _Active(row, self.tmp / f"{row.id}.log")
                        if self.metrics is not None:
                            self.metrics.run_started(row.rule, row.wait)
                        self._spawn(self._execute(row))
                    if rows and len(rows) == free:
                        continue
                nxt = await asyncio.to_thread(self.store.next_ready_at, list(self.opts.pools))
                self.health.ok()
                if nxt is not None:
                    timeout = min(timeout, nxt + 0.005)
            except StoreError as e:
                self.health.failed(f"worker {self.id}: cannot claim", e)
                # the next try after poll, 2×, 4×... up to 30 s while the store fails (or hangs)
                timeout, backoff = failing, min(failing * 2, CLAIM_BACKOFF_MAX)
            except Exception:
                log.exception("worker %s: claiming failed", self.id)

    def _rules_for(self, sha: str | None) -> Rules | None:
        if sha is None:
            return None
        if sha not in self._rules:
            m = self.store.manifest(sha)
            if m is None:   # not cached: its node publishes it again (PgStore.keep_manifest)
                return None
            self._rules[sha] = Rules(m, sha)
        return self._rules[sha]

    def _secrets_for(self, rules: Rules, base: Path, name: str | None) -> dict[str, str] | str:
        """The secret an action reads (an http action's ``secret=``: ``name``), from this
        worker's environment; not the sources' (a webhook's secret lives on the ingest nodes)."""
        key = (rules.sha, name)
        if key not in self._secrets:
            try:
                self._secrets[key] = resolve_secrets(rules.manifest, base, self.opts.environ, only=(name,))
            except StartError as e:
                self._secrets[key] = str(e)
        return self._secrets[key]

    # ------------------------------------------------------------------ running
    async def _execute(self, row: RunRow) -> None:
        a = self.active[row.id]
        try:
            rules = self._rules.get(row.manifest) if row.manifest in self._rules else \
                await asyncio.to_thread(self._rules_for, row.manifest)
            action = rules.actions.get(row.action) if rules is not None else None
            if rules is None or action is None:
                why = (f"the manifest {str(row.manifest)[:12]} of this run is not in the store" if rules is None
                       else f"the action {row.action!r} is not in the manifest of this run")
                await self._finish(row, rules, "failed", None, why)
                return
            base = self.opts.base_dir or Path(rules.manifest.get("base_dir") or ".")
            key = (rules.sha, action.get("secret"))
            secrets = self._secrets[key] if key in self._secrets else \
                await asyncio.to_thread(self._secrets_for, rules, base, key[1])
            if isinstance(secrets, str):
                await self._finish(row, rules, "failed", None, f"this worker cannot run it: {secrets}")
                return
            ev = row.event if row.event is not None else await asyncio.to_thread(self.store.get_event, row.event_id)
            event = {k: (ev or {}).get(k) for k in ("id", "source", "type", "time", "data")}
            if event.get("source") == "correlation":   # a correlation's run (SPEC §11.4)
                from .pgcorrelate import fire_stdin

                corr = await asyncio.to_thread(fire_stdin, self.store, event)
                if corr is not None:
                    event["correlation"] = corr
            if self.closing:  # claimed, not started: another worker takes it
                await asyncio.to_thread(self.store.release, row.id, self.id)
                return
            req = RunRequest(run_id=row.id, rule=row.rule, action_name=row.action, action=action, inputs=row.inputs,
                             event=event, base_dir=base, log_path=a.log_path, timeout=row.timeout,
                             secrets=secrets, attempt=row.attempt, die_with_parent=True)
            a.ra = await start_action(req)
            # (a drain that began meanwhile gives it what is left of its grace)
            res = await a.ra.wait()
            if row.id in self.fenced:
                log.warning("run %s of %s: stopped and not recorded by this worker, as its lease is gone: a reaper "
                            "records it interrupted%s", row.id, row.rule, _RETRIED_IF)
                return
            status = res.status
            if status == "cancelled" and self.closing and not a.cancelling:
                status = "interrupted"
            await self._finish(row, rules, status, res.exit_code,
                               "the worker stopped while the run was going" if status == "interrupted"
                               else res.error)
        except Exception:
            log.exception("run %s of %s crashed in the worker", row.id, row.rule)
            with contextlib.suppress(Exception):
                await self._finish(row, None, "failed", None, "internal error in the worker")
        finally:
            self.active.pop(row.id, None)
            self.fenced.discard(row.id)
            with contextlib.suppress(OSError):
                a.log_path.unlink()
            if self._wake is not None:
                self._wake.set()

    async def _finish(self, row: RunRow, rules: Rules | None, status: str, exit_code: int | None,
                      error: str | None) -> None:
        from .pgstore import log_tail

        body, truncated, size = log_tail(self.active[row.id].log_path) if row.id in self.active else (b"", False, 0)
        chain = None
        chained: list[tuple[Event, list]] = []   # the run.* event journaled with the end, to count once committed
        if rules is not None and rules.run_rules and status in ("succeeded", "failed", "timed_out"):
            depth = int((row.event or {}).get("depth") or 0)

            def chain(done: RunRow, rules: Rules = rules) -> Any:
                ev = run_event(done, depth)
                intents = intents_of(rules, ev, node_pool(), max_depth=self.opts.max_chain_depth)
                if intents and ev.depth > self.opts.max_chain_depth:
                    log.warning("event %s (%s) is %d runs deep in a chain, over --max-chain-depth %d: journaled, "
                                "no run started", ev.id, ev.trigger, ev.depth, self.opts.max_chain_depth,
                                extra={"event_id": ev.id, "depth": ev.depth})
                chained[:] = [(ev, intents)] if intents else []   # (the transaction may be tried again)
                return (ev, intents, rules.sha) if intents else None
        retry_on = ("failed", "timed_out", "interrupted") if status == "interrupted" else ("failed", "timed_out")
        delay = FINISH_RETRY
        while True:
            try:
                done = await asyncio.to_thread(self.store.finish, row.id, self.id, status, exit_code, error,
                                               log=body, log_truncated=truncated, log_size=size, chain=chain,
                                               retry_statuses=retry_on)
                break
            except StoreError as e:
                if row.id in self.fenced:
                    log.warning("run %s of %s ended %s, but the store did not answer before its lease ran out: not "
                                "recorded by this worker; a reaper records it interrupted%s", row.id, row.rule,
                                status, _RETRIED_IF)
                    return
                log.error("run %s ended %s; cannot record it yet (%s), trying again in %.0fs", row.id, status, e,
                          delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 30.0)
        if done is None:
            log.warning("run %s of %s ended %s, but its lease was gone: not recorded (the reaper took it)",
                        row.id, row.rule, status)
            return
        log.info("run %s of %s: %s%s", row.id, row.rule, status,
                 f" (exit {exit_code})" if exit_code is not None else "")
        if self.metrics is not None:
            self.metrics.run_ended(row.rule, done.status, done.duration)
            for ev, intents in chained:   # as the one-process engine counts its run.* events
                count_journaled(self.metrics, ev, intents, self.opts.max_chain_depth)

    # ------------------------------------------------------------------ leases
    async def _heartbeat_loop(self) -> None:
        from .pgstore import log_tail

        while True:
            await asyncio.sleep(self.opts.heartbeat)
            ids = [rid for rid, a in self.active.items() if rid not in self.fenced]
            if not ids:
                self._last_beat_ok = time.monotonic()
                continue
            silent = 0.0   # how long the store has not answered, once that is past the lease
            try:
                # given up by the lease's end (else within the heartbeat): a heartbeat a hung
                # database holds must not keep the runs going past their leases
                now = time.monotonic()
                bound = min(self.store.timeout or self.opts.lease,
                            max(self._last_beat_ok + self.opts.lease - now, self.opts.heartbeat))
                lost, cancel = await asyncio.to_thread(_within, self.store, bound, self.store.heartbeat, self.id,
                                                       ids, self.opts.lease)
                self._last_beat_ok = time.monotonic()
                self.health.ok()
            except StoreError as e:
                self.health.failed(f"worker {self.id}: heartbeat failed", e)
                silent = time.monotonic() - self._last_beat_ok
                if silent > self.opts.lease:
                    lost, cancel = set(ids), set()  # our leases have expired by now: stop everything
                else:
                    continue
            for rid in lost:
                a = self.active.get(rid)
                if a is None:
                    continue
                self.fenced.add(rid)
                going = a.ra is not None and not a.ra.done()
                if silent:   # an outage (or a network cut): nobody reaped it yet, but a reaper will
                    why = (f"the store has not answered for {silent:.1f}s, past its {self.opts.lease:g}s lease: a "
                           f"reaper records it interrupted{_RETRIED_IF}")
                else:
                    why = "its lease is gone (a reaper took it: was this worker stalled?)"
                log.warning("run %s of %s: %s%s", rid, a.row.rule, why, ": killing its process group" if going else "")
                if going:
                    self._spawn(a.ra.cancel(grace=0.0))
            for rid in cancel:
                self._cancel(rid, self.opts.restart_grace, "a cancel was asked for (busy restart or an operator)")
            # the live end of each running run's log, for the dashboard
            for rid in ids:
                a = self.active.get(rid)
                if a is None or rid in lost:
                    continue
                with contextlib.suppress(OSError):
                    size = a.log_path.stat().st_size
                    if size != a.log_size:
                        a.log_size = size
                        body, truncated, size = log_tail(a.log_path)
                        with contextlib.suppress(StoreError):
                            await asyncio.to_thread(self.store.store_log, rid, body, truncated, size)


class Reaper:
    """Every node's reaper: runs whose lease expired become ``interrupted`` (and retried).
    An ingest node's also calls ``keep`` each round (its manifest stays in the store)."""

    def __init__(self, store: Any, interval: float = 2.0, keep: Callable[[], Any] | None = None,
                 metrics: Any = None) -> None:
        self.store = store
        self.interval = interval
        self.keep = keep
        self.metrics = metrics   # counts the runs it reaped (interrupted), as serve's start counts its own
        self.health = store_health(store)
        self.task: asyncio.Task | None = None

    def start(self) -> None:
        self.task = asyncio.get_running_loop().create_task(self._loop(), name="reaper")

    async def stop(self) -> None:
        if self.task is not None:
            self.task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self.task

    async def _loop(self) -> None:
        while True:
            try:
                for row in await asyncio.to_thread(self.store.reap):
                    again = row.attempt <= int(row.retry or 0)
                    log.warning("run %s of %s: the lease of worker %s expired: interrupted%s", row.id, row.rule,
                                row.worker, ", retried" if again else "")
                    if self.metrics is not None:
                        self.metrics.run_ended(row.rule, "interrupted")
                if self.keep is not None:
                    await asyncio.to_thread(self.keep)
                self.health.ok()
            except StoreError as e:
                self.health.failed("reaper", e)
            except Exception:
                log.exception("reaper failed")
            await asyncio.sleep(self.interval)


async def _worker_main(store_url: str, opts: WorkerOptions, migrate: bool, reap_interval: float,
                       metrics_at: tuple[str, int] | None = None, token: str | None = None) -> int:
    notify = Notifier.from_environ(os.environ)  # systemd's Type=notify, as serve (runtime/notify.py)
    try:
        return await _work(store_url, opts, migrate, reap_interval, metrics_at, token, notify)
    finally:
        notify.close()


async def _work(store_url: str, opts: WorkerOptions, migrate: bool, reap_interval: float,
                metrics_at: tuple[str, int] | None, token: str | None, notify: Notifier) -> int:
    from .store import open_store

    stop, now = asyncio.Event(), asyncio.Event()
    stop_on_signals(asyncio.get_running_loop(), stop, now, who="worker")  # Ctrl-C twice: stop the runs at once
    use_daemon_threads(asyncio.get_running_loop())
    try:
        store = await asyncio.to_thread(open_store, store_url, migrate=migrate)
        store.bound_calls()   # (a claim, a heartbeat, a run's end: none waits for ever on a hung database)
    except StoreError as e:
        log.error("%s", e)
        return 1
    metrics = server = None
    if metrics_at is not None:
        from .metrics import Metrics, serve_metrics

        metrics = Metrics(store=store)
        try:
            server, _ = await serve_metrics(metrics, metrics_at[0], metrics_at[1], token)
        except OSError as e:
            log.error("cannot serve /metrics on %s:%d: %s", metrics_at[0], metrics_at[1], e.strerror or e)
            store.close()
            return 1
        log.info("metrics at http://%s:%d/metrics (%s)", metrics_at[0], server.port,
                 "token required" if token else "loopback clients only")
    worker = Worker(store, opts, metrics=metrics)
    reaper = Reaper(store, reap_interval, metrics=metrics)
    watchdog: asyncio.Task | None = None
    try:
        await worker.start()
        reaper.start()
        log.info("worker %s: claiming runs from %s", worker.id, store.describe())
        notify.ready(f"worker {worker.id}: {opts.slots} slot(s), claiming runs from {store.describe()}")
        watchdog = asyncio.create_task(notify.watchdog())  # from the loop: a stuck loop stops pinging
        await stop.wait()
        log.info("stopping: no new runs are claimed")
        notify.stopping(needs=opts.grace + STOP_MARGIN)
    finally:
        await worker.drain(opts.grace, now, StoreBudget())
        if watchdog is not None:
            watchdog.cancel()
        await reaper.stop()
        if server is not None:
            server.should_exit = True
        store.close()
    log.info("stopped cleanly")
    return 0


def run_worker(store_url: str, opts: WorkerOptions, *, migrate: bool = False, reap_interval: float = 2.0,
               metrics_at: tuple[str, int] | None = None, token: str | None = None) -> int:
    """``triggerc worker``: claim and run until SIGINT/SIGTERM; the exit code (0 clean
    stop, 1 could not start). ``metrics_at`` (host, port) serves ``/metrics`` there."""
    from .executor import pidfd_child_watcher, restore_child_watcher

    with asyncio.Runner() as runner:
        watcher = pidfd_child_watcher(runner.get_loop())
        try:
            return runner.run(_worker_main(store_url, opts, migrate, reap_interval, metrics_at, token))
        finally:
            runner.close()
            restore_child_watcher(watcher)
