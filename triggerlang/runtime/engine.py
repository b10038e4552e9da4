"""The engine: events in, journaled runs out, with the policies of SPEC §3.

How an event flows
------------------
``submit(event)`` (called by every source, awaited by the HTTP source before it answers
202) does, on the event loop and in this order:

1. match the event (the compiled matcher: indexed, rule order kept);
2. decide each match's run: ``dedupe`` (a key already run within D: ``skipped``),
   ``busy skip`` (a run of the rule is going or waiting: ``skipped``), ``debounce`` (the
   rule's pending run, if any, moves to this event: no new run), else a ``queued`` run;
3. journal the event and all its new runs in ONE transaction; with the journal's group
   commit (``serve``) that transaction is the batch of the current loop pass, shared with
   the other events, run starts and run ends of that pass, and ``submit`` returns once it
   has committed: nothing accepted is lost;
4. hand the queued runs to their rule's lane, which starts them when the rule's ``busy``
   policy allows: ``queue`` one at a time in order, ``parallel`` at once, ``restart``
   cancels the running one (and any older waiting one) first, ``signal`` starts none
   while one goes but sends it the rule's signal, recording the new one ``skipped``
   (:meth:`Engine._signal_instead`).

Decisions are made on the loop, in memory, in the order events arrive, and they see the
runs of events whose batch has not committed yet (so two deliveries in one batch cannot
both pass a ``busy skip``); a run starts only once the batch that created it has
committed. If a batch rolls back (a full disk), its events are answered ``503`` and the
lanes forget its runs (:meth:`Engine._forget`).

Lanes and slots
---------------
At most ``max_parallel`` runs go at once. A lane keeps its waiting runs as ids (ready ones
in a deque, in id order; timed ones, a debounce window or a retry's backoff, in a heap);
only a running run has a task. When the slots are full, a lane waits in a FIFO of lanes
for the next free slot, so a backlog of 100,000 queued runs costs a few MB, not 100,000
tasks. ``backlog`` counts the waiting runs: past ``max_backlog`` the HTTP source answers
``503`` with ``Retry-After`` before it journals anything (:meth:`Engine.overloaded`).

A run: ``start_run`` (queued -> running, in the batch), wait for that commit, spawn
(:func:`~.executor.start_action`), wait for the process; its slot is free as soon as the
process is reaped; the end is written in the batch of that pass.

A run ends ``succeeded``, ``failed``, ``timed_out`` or ``cancelled``; a failed or timed-out
run of a rule with ``retry N`` gets a new attempt after ``backoff * 2**(attempt-1)``. Every
finished run emits ``run.completed`` (succeeded) or ``run.failed`` (failed, timed out) as
an event of its own, so rules can chain.

Durability: a debounced match is a ``queued`` run with ``not_before`` set to the end of
its quiet period, journaled with the first event of the window; later events of the
window move it (``update_pending``). After a crash, :meth:`Engine.recover` marks runs that
were ``running`` as ``interrupted`` (and retries them when the rule has ``retry``), then
restarts every ``queued`` run, honouring ``not_before``. The retry of an interrupted run
(made by that start, or by a graceful stop) keeps its run's place in its rule's queue: it
starts before the runs accepted after the one it repeats (as the store's claim does).

Graceful stop (:meth:`Engine.drain`): running runs get a grace period to finish, then are
stopped and marked ``interrupted`` (and, when the rule has ``retry``, their next attempt is
journaled ``queued``, as after a crash); waiting runs stay ``queued`` in the journal and
start on the next ``serve``.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import json
import logging
import math
import signal
import time
from collections import deque
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any, Callable, Collection, Mapping

from .. import defaults
from ..actions import bind_inputs, busy_signal_of
from ..compile.index import build_matcher
from ..events import MISSING, Event, complete_data, get_path
from ..masking import read_secrets
from ..sources.base import Submitted
from .executor import (INTERRUPTED, PROCESS_KINDS, RunningAction, RunRequest, RunResult, event_json,
                       launch, note_in_log, processes_of, stop_actions)
from .journal import LEFT_RUNNING, Journal, JournalError, PlannedRun, RunRow
from .store import GatheredPaths, iso_utc
from .loops import (DEFAULT_MAX_CHAIN_DEPTH, DEFAULT_MAX_RETRIGGERS, LOOP_ACTOR, LoopGuard, depth_reason,
                    paused_skip_reason, recent, resume as resume_rule)
from .operations import OperationError, cancel_reason

log = logging.getLogger("triggerlang")

RELOAD_REMOVED = "its rule was removed from the rules file by a reload"
"""The error of a waiting run cancelled because a reload removed its rule (the next start
cancels one left queued with "its rule is no longer in the rules file": :meth:`Engine.recover`)."""

JOURNAL_RETRY = 1.0
"""Seconds before a run whose start or end could not be journaled (a full disk) tries again."""

MAX_PARALLEL = 16
"""Runs that go at once in one ``serve``."""

MAX_BACKLOG = 100_000
"""Default ``serve --max-backlog``: queued runs past which deliveries get ``503``. A queued
run costs ~100 bytes in memory (an id in its lane) and no file descriptor (only running
runs hold any, at most :data:`MAX_PARALLEL`), so the default bounds memory at ~10 MB plus
the carried events below; it is high enough that a burst at the machine's ingest rate
(~5,000 webhooks/s against ~1,500 runs/s of ``true``) runs for ~25 s before it is reached."""

CARRY_LIMIT = 64 * 1024 * 1024
"""Bytes of event JSON kept in memory for queued runs (their stdin without a journal read);
past it a run reads its event back from the journal when it starts."""

DEFAULT_POLICIES = dict(defaults.POLICIES)  # a rule that writes none (a hand-written manifest)


def dedupe_key_of(policies: Mapping[str, Any], data: Mapping[str, Any]) -> str | None:
    """The text of a rule's ``dedupe <field>`` in an event's data (None: no dedupe policy)."""
    if not policies.get("dedupe"):
        return None
    kv = get_path(data, policies["dedupe"]["field"].split("."))
    return "" if kv is MISSING or kv is None else (kv if isinstance(kv, str) else repr(kv))


def paths_params(rule: Mapping[str, Any]) -> tuple[str, ...]:
    """The parameters of a rule's action bound to ``<paths>`` (a debounce window gathers them)."""
    return tuple(p for p, b in (rule.get("args") or {}).items() if b.get("field") == "paths")


class Rules:
    """One manifest, ready to run: its matcher, rules by name, actions and policies (the
    one-process engine and store mode's ingest nodes and workers read it alike)."""

    def __init__(self, manifest: dict, sha: str | None = None) -> None:
        self.manifest = manifest
        self.sha = sha  # store mode: the manifest's sha256 in the store
        self.matcher = build_matcher(manifest["rules"])
        self.rules = {r["name"]: r for r in manifest["rules"]}
        self.actions = manifest.get("actions", {})
        # only rules "on run.*" (or a correlation member on run.*) see run events: without one,
        # a finished run needs no re-read
        self.run_rules = any(r.get("source") == "run" for r in manifest["rules"]) or any(
            m.get("source") == "run" for r in manifest["rules"] if isinstance(r.get("trigger"), dict)
            for m in r["trigger"].get("members", []))
        self._policies = {name: {**DEFAULT_POLICIES, **(r.get("policies") or {})} for name, r in self.rules.items()}

    def policies(self, rule: str) -> dict:
        """The rule's policies with the defaults filled in (shared: read, do not change)."""
        pol = self._policies.get(rule)
        return pol if pol is not None else dict(DEFAULT_POLICIES)


@dataclass
class _Lane:
    """The runs of one rule: those waiting and those running.

    ``ready``: run ids that may start now, in id order, but for those in ``ahead`` (the
    retries of interrupted runs: :meth:`Engine.recover`), which go first; ``timed``: a heap
    of ``(not_before, run id)`` (a debounce window, a retry's backoff). ``held``: the lane
    starts nothing before this ``time.time()``: a start of it could not be journaled (a full
    disk), and that run, back at its place in ``ready``, is tried again first then
    (:meth:`Engine._start_later`)."""

    ready: deque[int] = field(default_factory=deque)
    ahead: set[int] = field(default_factory=set)
    timed: list[tuple[float, int]] = field(default_factory=list)
    held: float = 0.0
    active: dict[int, RunningAction] = field(default_factory=dict)
    starting: set[int] = field(default_factory=set)
    debounce_run: int | None = None
    debounce_paths: GatheredPaths = field(default_factory=GatheredPaths)  # <paths> of the open window
    timer: asyncio.TimerHandle | None = None
    started: list[int] = field(default_factory=list)  # the last few runs started, in order (loop protection)
    last_finished: tuple[int, float] | None = None    # (run id, time.monotonic()) of the last run that ended

    @property
    def busy(self) -> bool:
        return bool(self.active or self.starting)

    @property
    def waiting(self) -> bool:
        return bool(self.ready or self.timed)

    def new_window(self, event: Event | None = None) -> None:
        """No debounce window with a pending run: the last one is over (its run started, or
        was cancelled, forgotten or paused away), or ``event`` opens one, whose ``<paths>``
        start with a file event's paths."""
        self.debounce_run = None
        self.debounce_paths = GatheredPaths(event.data.get("paths") or []
                                            if event is not None and event.source == "file" else [])

    def add_ready(self, run_id: int) -> None:
        if not self.ahead:
            if not self.ready or self.ready[-1] < run_id:
                self.ready.append(run_id)
                return
            i = len(self.ready)
            while i > 0 and self.ready[i - 1] > run_id:
                i -= 1
            self.ready.insert(i, run_id)
            return
        key = self._key(run_id)
        i = len(self.ready)
        while i > 0 and self._key(self.ready[i - 1]) > key:
            i -= 1
        self.ready.insert(i, run_id)

    def _key(self, run_id: int) -> tuple[bool, int]:
        return run_id not in self.ahead, run_id

    def take(self) -> int:
        """The next ready run (removed; it stays ``ahead`` until its start is committed or
        given up, so a start that could not be journaled puts it back at its place)."""
        return self.ready.popleft()

    def due(self, now: float) -> None:
        """Move the timed runs whose time has come to ``ready``."""
        while self.timed and self.timed[0][0] <= now:
            self.add_ready(heapq.heappop(self.timed)[1])

    def waiting_ids(self) -> list[int]:
        return [*self.ready, *(rid for _, rid in self.timed)]

    def discard(self, run_id: int) -> bool:
        """Forget a waiting run; True if it was waiting."""
        self.ahead.discard(run_id)
        if run_id in self.ready:
            self.ready.remove(run_id)
            return True
        for i, (_, rid) in enumerate(self.timed):
            if rid == run_id:
                self.timed.pop(i)
                heapq.heapify(self.timed)
                return True
        return False


class Engine:
    """Owns the matcher, the journal and the running actions of one ``serve``."""

    def __init__(self, manifest: dict, journal: Journal, secrets: Mapping[str, str],
                 base_dir: Path, *, max_parallel: int = MAX_PARALLEL, max_open_groups: int | None = None,
                 max_chain_depth: int = DEFAULT_MAX_CHAIN_DEPTH, max_retriggers: int = DEFAULT_MAX_RETRIGGERS,
                 metrics: Any = None, max_backlog: int = MAX_BACKLOG) -> None:
        self.journal = journal
        self.max_chain_depth = max_chain_depth
        self.loops = LoopGuard(max_retriggers)
        self.metrics = metrics
        self._cancelling: dict[int, str] = {}  # run id -> why an operator cancels it (stopping its process)
        self._unwritten: set[int] = set()  # runs being started whose insert a rollback undid (see _forget)
        self._requeued: set[int] = set()   # runs put back to start again (their log could not be opened)
        self.secrets = dict(secrets)
        self.base_dir = Path(base_dir)
        self.lanes: dict[str, _Lane] = {}
        self.tasks: set[asyncio.Task] = set()
        self.max_parallel = max_parallel
        self.running = 0                   # slots taken (runs between their start and their reaping)
        self._slot_wait: deque[str] = deque()   # lanes with ready runs, waiting for a slot (FIFO)
        self._slot_waiting: set[str] = set()
        self.max_backlog = max_backlog
        self.backlog = 0                   # runs waiting in the lanes
        self.ended = 0                     # runs that ended (their rate makes Retry-After)
        self._pending_ends = 0             # run ends waiting to be written again (a full disk)
        self._rate = (time.monotonic(), 0, 0.0)  # (when, ended then, runs/s)
        self.closing = False
        # run id -> (event id, source, type, time, data JSON, depth) of the event it was
        # queued for, so that starting the run needs no journal read (a cache: a miss reads it)
        self._carried: dict[int, tuple[str, str, str, str, str, int]] = {}
        self._carried_bytes = 0
        self.idle = asyncio.Event()
        self.idle.set()
        self.correlations: Any = None   # the correlation rules (SPEC §11): runtime/correlate.py
        self.max_open_groups = max_open_groups
        self.load(manifest)

    # ------------------------------------------------------------------ rules
    def load(self, manifest: dict) -> None:
        """Use a (new) manifest: rules, actions and the matcher. Running runs go on; rules
        paused by loop protection are un-paused. The waiting runs (queued, debounced,
        waiting out a retry's backoff) of a rule the new manifest no longer has are
        cancelled, as the next start would cancel them (:meth:`recover`): a reload and a
        restart with the same file do the same; a run of that rule already going is left
        to finish."""
        for rule in self.loops.reset():
            log.info("rule %s un-paused by the reload", rule, extra={"rule": rule})
        rules = Rules(manifest)
        for rule, ln in self.lanes.items():
            if rule not in rules.rules and ln.waiting:
                n = self._cancel_waiting(rule, ln, RELOAD_REMOVED)
                log.info("reload: %d waiting run(s) of %s cancelled: %s", n, rule, RELOAD_REMOVED,
                         extra={"rule": rule})
                self._check_idle()
        self.manifest, self.matcher, self.rules, self.actions = rules.manifest, rules.matcher, rules.rules, rules.actions
        if self.metrics is not None:
            self.metrics.load(manifest)
        self.run_rules = rules.run_rules
        self.policies = rules.policies
        from .correlate import Correlations, has_correlations

        if self.correlations is not None:
            self.correlations.reload(manifest)
        elif has_correlations(manifest):
            kw = {"max_open_groups": self.max_open_groups} if self.max_open_groups else {}
            self.correlations = Correlations(self, manifest, self.journal, **kw)
            if getattr(self, "_started", False):   # correlation rules added by a reload
                self.correlations.start()
                self.correlations.start_timers()

    def lane(self, rule: str) -> _Lane:
        ln = self.lanes.get(rule)
        if ln is None:
            ln = self.lanes[rule] = _Lane()
        return ln

    # ------------------------------------------------------------------ back-pressure
    def overloaded(self) -> float | None:
        """None while the backlog is under ``max_backlog``; past it, the seconds a sender
        should wait (``Retry-After``): until the backlog is back to 90 % of the bound at
        the rate runs have been ending, 1 to 60."""
        if self.backlog < self.max_backlog:
            return None
        now = time.monotonic()
        when, ended, rate = self._rate
        if now - when >= 1.0:
            rate = (self.ended - ended) / (now - when)
            self._rate = (now, self.ended, rate)
        excess = self.backlog - 0.9 * self.max_backlog
        return float(min(60, max(1, math.ceil(excess / max(rate, 1.0)))))

    # ------------------------------------------------------------------ events
    async def submit(self, event: Event, delivery_key: str | None = None) -> Submitted:
        """Journal one event with its runs, then start what may start. See the module doc."""
        sub = self.record(event, delivery_key)
        await self.journal.flush()
        return sub

    def submit_then(self, event: Event, delivery_key: str | None,
                    done: "Callable[[Submitted | None, BaseException | None], None]") -> None:
        """:meth:`submit` without a task (the HTTP source's fast path): ``done(submitted,
        None)`` right after the commit that makes the event durable (in that loop pass), or
        ``done(None, error)``."""
        try:
            sub = self.record(event, delivery_key)
        except Exception as e:
            done(None, e)
            return
        self.journal.after_commit(partial(done, sub, None), partial(done, None), first=True)

    def record(self, event: Event, delivery_key: str | None = None) -> Submitted:
        """Match, decide, journal (in the open batch) and queue: the synchronous part of
        :meth:`submit`. Durable once the journal's batch commits."""
        complete_data(event.source, event.type, event.data)  # (an emitted one may name only its path)
        matches = self.matcher.match(event)
        now = time.time()
        planned, debounced = self.plan(event, matches, now, self.journal.last_run_with_key)
        corr = self.correlations
        t0 = time.perf_counter()
        try:
            rec = self.journal.record_event(event, planned, delivery_key, matched=[d[0].rule.name for d in debounced],
                                            in_tx=corr.in_tx(event) if corr is not None and corr.active else None)
        except BaseException:
            if corr is not None:
                corr.failed()
            raise
        if rec.duplicate:   # (in_tx did not run: nothing was admitted)
            return Submitted(rec.event_id, rec.run_ids, duplicate=True)
        if corr is not None and corr.active:  # its mirror follows the batch if that rolls back
            self.journal.on_rollback(corr.failed)
        if self.metrics is not None:
            self.metrics.committed(time.perf_counter() - t0)
        self.count(event, planned, bool(matches))
        self.committed(event, planned, debounced, rec.run_ids, rec.data_json)
        fired = corr.committed() if corr is not None else []   # runs of the fires this event caused
        return Submitted(rec.event_id, rec.run_ids + fired)

    def plan(self, event: Event, matches: list, now: float, last_run_with_key) -> tuple[list[PlannedRun], list]:
        """Each match's run, with its rule's policies decided (dedupe, debounce, busy skip):
        ``(planned runs, debounced matches whose window is open)``."""
        planned: list[PlannedRun] = []
        debounced: list[tuple[Any, dict, float]] = []
        too_deep = event.depth > self.max_chain_depth
        if too_deep and matches:
            log.warning("event %s (%s) is %d runs deep in a chain, over --max-chain-depth %d: journaled, "
                        "no run started (%s)", event.id, event.trigger, event.depth, self.max_chain_depth,
                        ", ".join(m.rule.name for m in matches),
                        extra={"event_id": event.id, "depth": event.depth})
        for m in matches:
            name = m.rule.name
            pol = self.policies(name)
            action = self.actions.get(m.rule.action, {})
            inputs = bind_inputs(action, m.inputs)
            key = dedupe_key_of(pol, event.data)
            ln = self.lane(name)
            if too_deep:
                planned.append(PlannedRun(name, m.rule.action, inputs, key, status="skipped",
                                          error=depth_reason(event.depth, self.max_chain_depth)))
                continue
            if event.source == "file":
                self._note_change(name, ln)
            paused = self.loops.is_paused(name)
            if paused is not None:
                planned.append(PlannedRun(name, m.rule.action, inputs, key, status="skipped",
                                          error=paused_skip_reason(name, paused["reason"])))
                continue
            if pol.get("debounce") and ln.debounce_run is not None:
                # the window is open: this event moves the pending run (dedupe was decided when it opened)
                debounced.append((m, inputs, now + float(pol["debounce"])))
                continue
            if key is not None and pol["dedupe"].get("for"):
                last = last_run_with_key(name, key)
                if last is not None and now - last < float(pol["dedupe"]["for"]):
                    planned.append(PlannedRun(name, m.rule.action, inputs, key, status="skipped",
                                              error=f"dedupe: {pol['dedupe']['field']}={key!r} already ran "
                                                    f"{now - last:.0f}s ago"))
                    continue
            # (before a debounce window opens: a file rule has one by default, and a change
            # made while its run goes must be dropped, as watchexec's --on-busy-update
            # do-nothing does, not run after it)
            if pol.get("busy") == "skip" and (ln.busy or ln.waiting):
                planned.append(PlannedRun(name, m.rule.action, inputs, key, status="skipped",
                                          error="busy skip: a run of this rule was still going"))
                continue
            if pol.get("debounce"):
                ln.new_window(event)  # (no window was open: debounce_run is None)
                planned.append(PlannedRun(name, m.rule.action, self._with_paths(m, inputs, ln), key,
                                          not_before=now + float(pol["debounce"])))
                continue
            if event.source == "schedule" and pol.get("busy") == "queue" and ln.waiting:
                planned.append(PlannedRun(name, m.rule.action, inputs, key, status="skipped",
                                          error=defaults.TICK_ALREADY_WAITING))
                continue
            planned.append(PlannedRun(name, m.rule.action, inputs, key))
        return planned, debounced

    def start_now(self, rule: str) -> int:
        """``serve --start RULE``: one run of ``rule`` at once, as if its trigger had fired
        (watchexec and nodemon run their command when they start). Its event is
        ``serve.started`` ``{"rule", "paths": []}``, journaled with the run: the trigger's
        fields are missing (``""`` in argv), ``<paths>`` is empty (a ``pytest <paths>``
        tests everything). The rule's policies apply as to any run: under ``busy restart``
        the first change restarts it. Raises KeyError for a rule that has no trigger of
        its own to stand for (unknown, or a correlation rule)."""
        compiled = next((r for r in self.matcher.rules if r.name == rule), None)
        if compiled is None:
            raise KeyError(rule)
        event = Event("serve", "started", {"rule": rule, "paths": []})
        inputs = bind_inputs(self.actions.get(compiled.action, {}), compiled.inputs(event.data))
        planned = [PlannedRun(rule, compiled.action, inputs)]
        rec = self.journal.record_event(event, planned)
        self.count(event, planned, True)
        self.committed(event, planned, [], rec.run_ids, rec.data_json)
        return rec.run_ids[0]

    def plan_fire(self, fired: Any, now: float, last_run_with_key) -> PlannedRun:
        """The run of a correlation fire (its dedupe key comes with it; no debounce: TRG712)."""
        name = fired.rule
        pol = self.policies(name)
        action = self.actions.get(fired.action, {})
        inputs = bind_inputs(action, fired.inputs)
        key = fired.dedupe_key
        if fired.event.depth > self.max_chain_depth:  # a correlation in a run.* loop (runtime/loops.py)
            return PlannedRun(name, fired.action, inputs, key, status="skipped",
                              error=depth_reason(fired.event.depth, self.max_chain_depth))
        if key is not None and (pol.get("dedupe") or {}).get("for"):
            last = last_run_with_key(name, key)
            if last is not None and now - last < float(pol["dedupe"]["for"]):
                return PlannedRun(name, fired.action, inputs, key, status="skipped",
                                  error=f"dedupe: {pol['dedupe']['field']}={key!r} already ran {now - last:.0f}s ago")
        ln = self.lane(name)
        if pol.get("busy") == "skip" and (ln.busy or ln.waiting):
            return PlannedRun(name, fired.action, inputs, key, status="skipped",
                              error="busy skip: a run of this rule was still going")
        return PlannedRun(name, fired.action, inputs, key)

    def count(self, event: Event, planned: list[PlannedRun], matched: bool) -> None:
        """An event journaled and the runs decided final with it (``skipped``), on
        ``/metrics``: a source's event and a ``run.*`` one (:meth:`record`), and a
        ``correlation.*`` one with its fire's run (runtime/correlate.py) alike."""
        if self.metrics is None:
            return
        self.metrics.journaled(event.source, event.type, ((p.rule, p.status) for p in planned),
                               matched and event.depth > self.max_chain_depth)

    def committed(self, event: Event, planned: list[PlannedRun], debounced: list, run_ids: list[int],
                  data_json: str | None) -> None:
        """Once an event and its runs are written (in the open batch): hand the queued runs
        to their lanes (a run starts once that batch has committed)."""
        queued = [run_id for run_id, p in zip(run_ids, planned) if p.status == "queued"]
        if queued:
            self.journal.on_rollback(partial(self._forget, queued))
        for run_id, p in zip(run_ids, planned):
            if p.status != "queued":
                continue
            if data_json is not None and self._carried_bytes < CARRY_LIMIT:
                self._carried[run_id] = (event.id, event.source, event.type, event.time, data_json, event.depth)
                self._carried_bytes += len(data_json)
            if p.not_before is not None:
                ln = self.lane(p.rule)
                ln.debounce_run = run_id
            self._enqueue(p.rule, run_id, p.not_before)
        for m, inputs, deadline in debounced:
            self._extend_debounce(m, event, inputs, deadline)

    # ------------------------------------------------------------------ loop protection
    def _note_change(self, rule: str, ln: _Lane) -> None:
        """A file change matched ``rule``: if a run of it is going (or just ended), that run
        re-triggered it; enough in a row pause the rule (runtime/loops.py)."""
        going = max(list(ln.active) + list(ln.starting), default=None)
        if going is None and ln.last_finished is not None and recent(ln.last_finished[1]):
            going = ln.last_finished[0]
        if going is None:
            return
        previous = None
        if going in ln.started:
            i = ln.started.index(going)
            previous = ln.started[i - 1] if i > 0 else None
        reason = self.loops.retriggered(rule, going, previous)
        if reason is not None:
            self._pause(rule, ln, reason)

    def _counted(self, rule: str, status: str, duration: float | None = None) -> None:
        if self.metrics is not None:
            self.metrics.run_ended(rule, status, duration)

    def _cancel_waiting(self, rule: str, ln: _Lane, reason: str) -> int:
        """Record every waiting run of ``rule`` ``cancelled`` with ``reason`` and forget it
        (its debounce window too); how many."""
        ids = ln.waiting_ids()
        for rid in ids:
            self.journal.set_status(rid, "cancelled", reason)
            self._uncarry(rid)
            self._counted(rule, "cancelled")
            ln.discard(rid)
            self.backlog -= 1
        ln.new_window()
        return len(ids)

    def _pause(self, rule: str, ln: _Lane, reason: str) -> None:
        log.warning("rule %s paused: %s", rule, reason, extra={"rule": rule})
        self._cancel_waiting(rule, ln, paused_skip_reason(rule, reason))
        self.journal.add_audit(LOOP_ACTOR, "pause", rule=rule, detail=reason)
        if self.metrics is not None:
            self.metrics.paused(rule, True)
        self._check_idle()

    def resume(self, rule: str, actor: str) -> bool:
        """Un-pause a rule paused by loop protection; whether it was paused."""
        return resume_rule(self.loops, rule, actor, known=rule in self.rules, add_audit=self.journal.add_audit, metrics=self.metrics)

    # ------------------------------------------------------------------ operators
    def rerun(self, run_id: int, actor: str) -> int:
        """A new run with the same inputs as run ``run_id`` (ended), queued in its rule's
        lane now; its id (runtime/operations.py)."""
        old = self.journal.run_row(run_id)
        if old is None:
            raise OperationError(404, f"there is no run {run_id}")
        if old.rule not in self.rules:
            raise OperationError(409, f"the rule {old.rule} of run {run_id} is no longer in the rules")
        if old.action not in self.actions:
            # a re-run repeats the run's action; accepted, it would only end "failed" at once
            now = self.rules[old.rule].get("action")
            raise OperationError(409, f"the action {old.action} of run {run_id} is no longer in the rules"
                                      + (f" (rule {old.rule} now runs {now})" if now and now != old.action else ""))
        try:
            row = self.journal.rerun(run_id, actor)
        except KeyError:
            raise OperationError(404, f"there is no run {run_id}") from None
        except ValueError as e:
            raise OperationError(409, str(e)) from None
        log.info("run %s of %s re-run as run %s by %s", run_id, row.rule, row.id, actor,
                 extra={"run_id": row.id, "rule": row.rule, "rerun_of": run_id})
        self._enqueue(row.rule, row.id, None)
        return row.id

    def cancel(self, run_id: int, actor: str) -> str:
        """Cancel run ``run_id``: ``cancelled`` (it was queued) or ``cancelling`` (it was
        running: its process group gets its stop signal (SIGTERM unless the action says
        `stop SIGNAL`), SIGKILL after its grace (5 s unless `stop ... grace D`), and it ends
        ``cancelled``)."""
        reason = cancel_reason(actor)
        try:
            before = self.journal.cancel(run_id, actor, reason)
        except KeyError:
            raise OperationError(404, f"there is no run {run_id}") from None
        except ValueError as e:
            raise OperationError(409, str(e)) from None
        row = self.journal.run_row(run_id)
        rule = row.rule if row is not None else ""
        ln = self.lane(rule)
        log.info("run %s of %s cancelled by %s", run_id, rule, actor, extra={"run_id": run_id, "rule": rule})
        if before == "queued":
            self._counted(rule, "cancelled")
            if ln.discard(run_id):
                self.backlog -= 1
            if ln.debounce_run == run_id:
                ln.new_window()
            self._uncarry(run_id)
            self._check_idle()
            return "cancelled"
        self._cancelling[run_id] = reason
        ra = ln.active.get(run_id)
        if ra is not None and not ra.done():
            self._spawn(ra.cancel())  # the action's stop signal and grace
        return "cancelling"

    def _forget(self, run_ids: list[int]) -> None:
        """The batch that wrote these runs rolled back: they do not exist. A run that was
        starting in that batch is noted, so that the failed start (:meth:`_start_later`,
        called after this) frees its slot without saying the run will start later."""
        for rid in run_ids:
            self._uncarry(rid)
            for ln in self.lanes.values():
                if ln.discard(rid):
                    self.backlog -= 1
                if rid in ln.starting:
                    self._unwritten.add(rid)
                if ln.debounce_run == rid:
                    ln.new_window()
        self._check_idle()

    def _uncarry(self, run_id: int) -> tuple[str, str, str, str, str, int] | None:
        """Forget what is kept for a waiting run (it starts, or will not: cancelled, skipped,
        forgotten): its carried event, and its mark of a run put back (:meth:`_start`)."""
        self._requeued.discard(run_id)
        carried = self._carried.pop(run_id, None)
        if carried is not None:
            self._carried_bytes -= len(carried[4])
        return carried

    def _with_paths(self, m, inputs: dict, ln: _Lane) -> dict:
        """Inputs bound to ``<paths>`` get every path seen in the debounce window."""
        out = dict(inputs)
        for pname in paths_params(self.rules.get(m.rule.name) or {}):
            out[pname] = ln.debounce_paths.list()
        return out

    def _extend_debounce(self, m, event: Event, inputs: dict, deadline: float) -> None:
        name = m.rule.name
        ln = self.lane(name)
        run_id = ln.debounce_run
        if event.source == "file":
            ln.debounce_paths.add(event.data.get("paths") or [])
        inputs = self._with_paths(m, inputs, ln)
        if run_id is not None and self.journal.update_pending(run_id, inputs, event.id, deadline):
            ln.timed = [(deadline if rid == run_id else nb, rid) for nb, rid in ln.timed]
            heapq.heapify(ln.timed)
            self._arm(name)
            return
        # the pending run already started: this event opens a new window
        ln.new_window(event)
        rid = self.journal.add_run(PlannedRun(name, self.rules[name]["action"], inputs), event.id,
                                   not_before=deadline)
        self.journal.on_rollback(partial(self._forget, [rid]))
        ln.debounce_run = rid
        self._enqueue(name, rid, deadline)

    # ------------------------------------------------------------------ lanes
    def _enqueue(self, rule: str, run_id: int, not_before: float | None) -> None:
        ln = self.lane(rule)
        pol = self.policies(rule)
        if pol.get("busy") == "restart":
            # the newest wins: older waiting runs are dropped, the running one stopped
            for rid in [*ln.ready, *(r for _, r in ln.timed)]:
                if rid != ln.debounce_run:
                    self.journal.set_status(rid, "cancelled", "busy restart: a newer run replaced it")
                    self._uncarry(rid)
                    self._counted(rule, "cancelled")
                    ln.discard(rid)
                    self.backlog -= 1
        if not_before is not None and not_before > time.time():
            heapq.heappush(ln.timed, (not_before, run_id))
        else:
            ln.add_ready(run_id)
        self.backlog += 1
        self.idle.clear()
        self._kick(rule)

    def _arm(self, rule: str) -> None:
        ln = self.lane(rule)
        if ln.timer is not None:
            ln.timer.cancel()
            ln.timer = None
        now = time.time()
        when = [*(t for t, _ in ln.timed[:1]), *([ln.held] if ln.ready and ln.held > now else [])]
        if when:
            delay = max(0.0, min(when) - now)
            ln.timer = asyncio.get_running_loop().call_later(delay + 0.001, self._kick, rule)

    def _kick(self, rule: str) -> None:
        if self.closing:
            return
        ln = self.lane(rule)
        pol = self.policies(rule)
        if ln.timed:
            ln.due(time.time())
        if ln.ready and pol.get("busy") == "restart" and ln.busy:
            for ra in list(ln.active.values()):
                if not ra.done():
                    self._spawn(ra.cancel())
            self._arm(rule)
            return
        if ln.ready and pol.get("busy") == "signal":
            if ln.busy:
                self._signal_instead(rule, ln, pol)
            elif ln.timed:
                self._retries_replaced(rule, ln)
        parallel = pol.get("busy") == "parallel"
        while ln.ready:
            if not parallel and ln.busy:
                break
            if ln.held > time.time():   # a start could not be journaled: that run goes first, later
                break
            if self.running >= self.max_parallel:
                if rule not in self._slot_waiting:
                    self._slot_waiting.add(rule)
                    self._slot_wait.append(rule)
                break
            rid = ln.take()
            self.backlog -= 1
            if rid == ln.debounce_run:
                ln.new_window()
            ln.starting.add(rid)
            self.running += 1
            self._start(rule, rid)
        if ln.timer is not None or ln.timed or (ln.ready and ln.held > time.time()):
            self._arm(rule)
        self._check_idle()

    def _signal_instead(self, rule: str, ln: _Lane, pol: Mapping[str, Any]) -> None:
        """``busy signal SIG`` (watchexec's ``--on-busy-update=signal``) while a run of the
        rule goes: the runs ready to start (one per event, or one per debounce window) do
        not start; each is recorded ``skipped``, its reason naming the runs it signalled,
        and the rule's running runs get SIG in their process group once that is committed.
        A run whose process is not running yet (starting) is not signalled: it starts after
        this event, so it sees what changed, and the reason says that instead."""
        sig = busy_signal_of(pol)
        going = sorted(rid for rid, ra in ln.active.items() if not ra.done() and ra.pgid is not None)
        if going:
            reason = f"busy signal: sent {sig} to run {', '.join(map(str, going))}, still going"
        else:
            starting = sorted({*ln.starting, *(rid for rid, ra in ln.active.items() if not ra.done())})
            reason = (f"busy signal: run {', '.join(map(str, starting))} was still starting (it starts after "
                      f"this event); no signal sent")
        skipped = list(ln.ready)
        for rid in skipped:
            self.journal.set_status(rid, "skipped", reason)
            self._uncarry(rid)
            self._counted(rule, "skipped")
            if rid == ln.debounce_run:
                ln.new_window()
        ln.ready.clear()
        ln.ahead.difference_update(skipped)
        self.backlog -= len(skipped)
        if going:
            targets = [ln.active[rid] for rid in going]
            self.journal.after_commit(partial(self._send_busy_signal, rule, targets, sig, skipped), None)

    def _retries_replaced(self, rule: str, ln: _Lane) -> None:
        """``busy signal`` with no run going, a run ready to start (a newer event's), and a
        failed run's retry waiting out its backoff (``retry N backoff D``): there is no
        process to signal, so the ready run starts now, as ``busy queue`` would start it (a
        change starts the crashed server at once, with the change, as under watchexec), and
        the retry is recorded ``skipped``: kept, it would start a second server beside the
        new one, or, once due, signal the new one for no change (README: Signalling the
        running run)."""
        instead = ln.ready[0]
        retries = [rid for _, rid in ln.timed
                   if rid != ln.debounce_run and (row := self.journal.run_row(rid)) is not None and row.attempt > 1]
        for rid in retries:
            self.journal.set_status(rid, "skipped", f"busy signal: run {instead}, of a newer event, starts instead "
                                                    f"(it came while this retry waited out its backoff, with no "
                                                    f"process to signal)")
            self._uncarry(rid)
            self._counted(rule, "skipped")
            ln.discard(rid)
            self.backlog -= 1

    @staticmethod
    def _send_busy_signal(rule: str, targets: list[RunningAction], sig: str, instead_of: list[int]) -> None:
        for ra in targets:
            if ra.send_signal(getattr(signal, sig), f"# run {ra.run_id} sent {sig} (busy signal), instead of "
                                                    f"starting run {', '.join(map(str, instead_of))}"):
                log.info("run %s of %s: sent %s (busy signal) instead of run %s", ra.run_id, rule, sig,
                         ", ".join(map(str, instead_of)), extra={"run_id": ra.run_id, "rule": rule})

    def _release_slot(self) -> None:
        """A run's process was reaped: its slot goes to the lane that waited longest."""
        self.running -= 1
        while self.running < self.max_parallel and self._slot_wait and not self.closing:
            rule = self._slot_wait.popleft()
            self._slot_waiting.discard(rule)
            self._kick(rule)

    def _spawn(self, coro) -> asyncio.Task:
        t = asyncio.get_running_loop().create_task(coro)
        self.tasks.add(t)
        t.add_done_callback(self.tasks.discard)
        return t

    def _check_idle(self) -> None:
        if self.backlog <= 0 and self.running <= 0 and self._pending_ends <= 0 and all(
                not ln.starting and not ln.active for ln in self.lanes.values()):
            self.idle.set()

    # ------------------------------------------------------------------ runs
    def _start(self, rule: str, run_id: int) -> None:
        """A slot is taken for the run: ``queued`` -> ``running`` in the open batch; its
        process starts right after that batch commits (:meth:`_launch`), in the same loop
        pass. No task: a run is callbacks from its start to its end."""
        try:
            row = self.journal.start_run(run_id, requeued=run_id in self._requeued)  # queued -> running, and the row
        except JournalError as e:  # disk full...: the run is still queued; try again soon
            self._start_later(rule, run_id, e)
            return
        self._requeued.discard(run_id)
        if row is None:  # unknown, or no longer queued (cancelled, skipped...)
            self.lane(rule).ahead.discard(run_id)
            self._uncarry(run_id)
            self._free(rule, run_id)
            return
        self.journal.after_commit(partial(self._launch, rule, run_id, row),
                                  partial(self._start_later, rule, run_id))

    def _start_later(self, rule: str, run_id: int, e: Exception | str, free: bool = True) -> None:
        """The run could not start (the journal or its log cannot be written): it is still
        queued; try again in a moment. It keeps its place: back in its lane's ``ready`` (an
        interrupted run's retry still ``ahead``), and the lane starts nothing before it is
        tried again (``held``), so the runs of a ``busy queue`` rule accepted after it do not
        overtake it, whether the journal fails again or not. A run whose insert was rolled
        back with its start never existed (its event got a 503): nothing to start, nothing
        to say."""
        ln = self.lane(rule)
        if run_id in self._unwritten:
            self._unwritten.discard(run_id)
            ln.ahead.discard(run_id)
            if free:
                self._free(rule, run_id)
            return
        log.error("run %s of %s cannot start yet: %s; trying again in %.0fs", run_id, rule, e, JOURNAL_RETRY)
        ln.add_ready(run_id)
        ln.held = time.time() + JOURNAL_RETRY
        self.backlog += 1
        self.idle.clear()
        if free:
            self._free(rule, run_id)
        else:
            self._arm(rule)

    def _free(self, rule: str, run_id: int) -> None:
        """The run gave its slot back without running."""
        self.lane(rule).starting.discard(run_id)
        self._release_slot()
        if not self.closing:
            self._kick(rule)
        self._check_idle()

    def _launch(self, rule: str, run_id: int, row: RunRow) -> None:
        """The start is committed: spawn the run's process (its end comes to :meth:`_ended`)."""
        ln = self.lane(rule)
        try:
            if self.closing:  # stopping: a run that was not spawned yet stays queued for the next start
                ln.ahead.discard(run_id)
                self.journal.requeue(run_id)
                self._free(rule, run_id)
                return
            carried = self._uncarry(run_id)
            if self.metrics is not None:
                self.metrics.run_started(rule, row.wait)
            action = self.actions.get(row.action)
            if action is None:
                ln.ahead.discard(run_id)
                self.journal.mark_finished(run_id, "failed", None,
                                           f"the action {row.action!r} is not in the current rules")
                self._counted(rule, "failed")
                self._free(rule, run_id)
                return
            stdin = None
            if carried is not None and carried[0] == row.event_id:
                # the event as the journal holds it (its data round-tripped through JSON)
                eid, source, typ, etime, data_json, depth = carried
                event = {"id": eid, "source": source, "type": typ, "time": etime}
                if action.get("kind") in PROCESS_KINDS and source != "correlation":
                    stdin = event_json(eid, source, typ, etime, data_json)  # no decoding and encoding again
                else:
                    event["data"] = json.loads(data_json)
            else:  # a recovered run, a retry, a debounced run moved to a later event
                ev = self.journal.get_event(row.event_id) or {}
                event = {k: ev.get(k) for k in ("id", "source", "type", "time", "data")}
                depth = int(ev.get("depth") or 0)
            if event.get("source") == "correlation" and self.correlations is not None:
                corr = self.correlations.stdin_for(event)   # SPEC §11.4: {"correlation": ...}
                if corr is not None:
                    event = {**event, "correlation": corr}
            pol = self.policies(rule)
            req = RunRequest(run_id=run_id, rule=rule, action_name=row.action, action=action,
                             inputs=row.inputs, event=event, base_dir=self.base_dir,
                             log_path=self.journal.run_log_path(run_id), timeout=float(pol["timeout"]),
                             secrets=self.secrets, attempt=row.attempt, event_json=stdin)
            ra = ln.active[run_id] = launch(req, partial(self._ended, rule, run_id, row, depth))
            ln.starting.discard(run_id)
            ln.started = ln.started[-7:] + [run_id]
            if run_id in self._cancelling and not ra.done():  # cancelled while it was starting
                self._spawn(ra.cancel())  # the action's stop signal and grace
        except Exception:  # a bug must not take the runtime down: record and go on
            log.exception("run %s of %s crashed in the engine", run_id, rule, extra={"run_id": run_id, "rule": rule})
            with contextlib.suppress(Exception):
                self.journal.mark_finished(run_id, "failed", None, "internal error in the engine")
                self._counted(rule, "failed")
            ln.ahead.discard(run_id)
            ln.active.pop(run_id, None)
            self._free(rule, run_id)
            return
        if pol.get("busy") == "restart" and ln.ready:
            # a newer run arrived while this one was starting (not yet cancellable):
            # the newest wins, so stop this one now
            self._kick(rule)

    def _ended(self, rule: str, run_id: int, row: RunRow, depth: int, res: RunResult) -> None:
        """The run's process ended (or it could not start): free its slot, record the end."""
        ln = self.lane(rule)
        ln.active.pop(run_id, None)
        ln.last_finished = (run_id, time.monotonic())  # not the wall clock, which NTP may step
        self.ended += 1
        self._release_slot()
        try:
            operator_reason = self._cancelling.pop(run_id, None)
            if res.start_again and not self.closing and operator_reason is None:  # its log could not be written
                self.ended -= 1
                self.journal.requeue(run_id)  # in the batch, which the full disk may roll back:
                self._requeued.add(run_id)    # then the run is still 'running' when it starts again
                self._start_later(rule, run_id, res.error or "its log file cannot be written", free=False)
                return   # (still ahead, if it was: it goes first again)
            ln.ahead.discard(run_id)
            if self.closing and res.status in ("cancelled", "interrupted") and operator_reason is None:
                self._write_end(run_id, "interrupted", res.exit_code, INTERRUPTED)
                log.info("run %s of %s: interrupted", run_id, rule,
                         extra={"run_id": run_id, "rule": rule, "status": "interrupted"})
                if row.attempt <= int(self.policies(rule).get("retry") or 0):
                    # as after a crash (recover): run again, as a new attempt, at the next start
                    rid = self.journal.add_run(row.planned(), row.event_id, attempt=row.attempt + 1)
                    log.info("run %s of %s will be retried as run %s at the next start", run_id, rule, rid,
                             extra={"run_id": run_id, "rule": rule, "retry_run_id": rid})
                return
            error = operator_reason if res.status == "cancelled" and operator_reason else res.error
            self._write_end(run_id, res.status, res.exit_code, error)
            self._counted(rule, res.status, time.time() - row.started_at if row.started_at else None)
            log.info("run %s of %s: %s%s", run_id, rule, res.status,
                     f" (exit {res.exit_code})" if res.exit_code is not None else "",
                     extra={"run_id": run_id, "rule": rule, "status": res.status, "exit_code": res.exit_code})
            pol = self.policies(rule)
            if res.status in ("failed", "timed_out") and row.attempt <= int(pol.get("retry") or 0):
                delay = float(pol.get("backoff") or 5.0) * 2 ** (row.attempt - 1)
                rid = self.journal.add_run(row.planned(), row.event_id, attempt=row.attempt + 1,
                                           not_before=time.time() + delay)
                self.journal.on_rollback(partial(self._forget, [rid]))
                log.info("run %s of %s will be retried as run %s in %.1fs", run_id, rule, rid, delay,
                         extra={"run_id": run_id, "rule": rule, "retry_run_id": rid})
                self._enqueue(rule, rid, time.time() + delay)
            if self.run_rules and res.status in ("succeeded", "failed", "timed_out") and not self.closing:
                done = self.journal.run_row(run_id)  # the journal's times make the duration
                if done is not None:
                    self._emit_run_event(done, depth)
        except JournalError as e:  # the end is retried by _write_end; what follows it waits for nothing
            log.error("run %s of %s: %s", run_id, rule, e)
        except Exception:  # a bug must not take the runtime down: record and go on
            log.exception("run %s of %s crashed in the engine", run_id, rule, extra={"run_id": run_id, "rule": rule})
            with contextlib.suppress(Exception):
                self.journal.mark_finished(run_id, "failed", None, "internal error in the engine")
        finally:
            if not self.closing:
                self._kick(rule)
            self._check_idle()

    def _write_end(self, run_id: int, status: str, exit_code: int | None, error: str | None,
                   delay: float = JOURNAL_RETRY) -> None:
        """Journal how a run ended (in the batch); while the journal cannot be written (a full
        disk), try again with a growing delay instead of losing the outcome, until the
        runtime stops (the run then stays ``running`` and the next start marks it
        ``interrupted``)."""
        def retry(e: Exception) -> None:
            if self.closing:
                log.error("run %s ended %s but the journal cannot record it: %s", run_id, status, e)
                return
            log.error("run %s ended %s; cannot record it yet (%s), trying again in %.0fs", run_id, status, e, delay)
            self._pending_ends += 1
            self.idle.clear()
            asyncio.get_running_loop().call_later(delay, self._write_end_again, run_id, status, exit_code, error,
                                                  min(delay * 2, 30.0))

        try:
            self.journal.mark_finished(run_id, status, exit_code, error)
        except JournalError as e:
            retry(e)
            return
        self.journal.after_commit(_nothing, retry)

    def _write_end_again(self, run_id: int, status: str, exit_code: int | None, error: str | None,
                         delay: float) -> None:
        self._pending_ends -= 1
        self._write_end(run_id, status, exit_code, error, delay)
        self._check_idle()

    def _emit_run_event(self, row: RunRow, depth: int) -> None:
        """The ``run.*`` event of a finished run, one deeper than the run's own event."""
        typ = "completed" if row.status == "succeeded" else "failed"
        data = {"rule": row.rule, "action": row.action, "status": row.status, "exit_code": row.exit_code,
                "duration": row.duration, "inputs": row.inputs, "run_id": row.id, "event_id": row.event_id,
                "attempt": row.attempt}
        ev = Event("run", typ, data, depth=depth + 1)
        if not self.matcher.match(ev):
            return  # only journal run events some rule listens to
        self.record(ev)  # in the batch of the run's end: durable with it

    # ------------------------------------------------------------------ start and stop
    def start_correlations(self) -> None:
        """Serve's start, before any source: past deadlines, then the correlation timers."""
        self._started = True
        if self.correlations is not None:
            self.correlations.start()
            self.correlations.start_timers()

    def recover(self) -> "Recovered":
        """Restart what the last ``serve`` left (:class:`Recovered`). A run it left
        ``running`` is marked ``interrupted``: a clean stop ends or marks every run, so that
        ``serve`` was killed or crashed (:data:`~.journal.LEFT_RUNNING`); its log's last line
        and its error say so, when that ``serve`` was last seen going, and whether the run's
        process is still going (:func:`~.executor.processes_of`: the spawner of a ``serve``
        that died stops it, unless it died too). A queued run whose rule is no longer in the
        rules file is not started: its rule's policies are gone with it, and the file says
        that rule is not wanted any more (systemd cancels the queued job of a unit that is
        gone); it is recorded ``cancelled`` with the reason."""
        rec = self.journal.recover()
        out = Recovered(last_seen=self.journal.last_alive)
        logs = {row.id: str(self.journal.run_log_path(row.id)) for row in rec.interrupted}
        pids = processes_of(logs) if logs else {}
        seen = f"; last seen going at {iso_utc(out.last_seen)}" if out.last_seen is not None else ""
        cancelled = out.cancelled
        for row in rec.interrupted:   # final now: counted by this process, which found them
            self._counted(row.rule, "interrupted")
            going = None if pids is None else pids.get(row.id, [])
            out.left_running[row.id] = going
            error = (f"{LEFT_RUNNING}{seen}; " + ("whether its process is still going is not known" if going is None
                     else f"its process is still going (pid {', '.join(map(str, going))})" if going
                     else "its process was not found (it ended, or was stopped)"))
            self.journal.set_status(row.id, "interrupted", error)
            note_in_log(self.journal.run_log_path(row.id), f"# run {row.id} interrupted: {error}")
            pol = self.policies(row.rule)
            if row.attempt <= int(pol.get("retry") or 0) and row.rule in self.rules:
                rid = self.journal.add_run(row.planned(), row.event_id, attempt=row.attempt + 1)
                out.retried.append(row.id)
                self.lane(row.rule).ahead.add(rid)
                self._enqueue(row.rule, rid, None)
        for row in rec.queued:
            if row.rule not in self.rules:
                self.journal.set_status(row.id, "cancelled", "its rule is no longer in the rules file")
                self._counted(row.rule, "cancelled")
                cancelled.append(row.rule)
                continue
            if row.attempt > 1 and row.not_before is None:   # an interrupted run's retry, made by a stop
                self.lane(row.rule).ahead.add(row.id)
            # the debounce window's run is the first attempt; a retry waiting out its
            # backoff (attempt > 1) also has a not_before, and taken for the window it
            # would be the run the next event moves and rebinds (its failed event's retry lost)
            if row.not_before is not None and row.attempt == 1 and self.policies(row.rule).get("debounce"):
                self.lane(row.rule).debounce_run = row.id
            self._enqueue(row.rule, row.id, row.not_before)
        out.queued = len(rec.queued) - len(cancelled)
        return out

    async def drain(self, grace: float, now: asyncio.Event | None = None) -> None:
        """Stop: let running runs finish for ``grace`` seconds, then stop them and mark them
        interrupted (``now`` set, a second Ctrl-C, stops them at once: executor.stop_actions)."""
        for ln in self.lanes.values():
            if ln.timer is not None:
                ln.timer.cancel()
        self.closing = True
        if self.correlations is not None:
            await self.correlations.stop()
        await stop_actions([ra for ln in self.lanes.values() for ra in ln.active.values()], grace, now, log)
        if self.tasks:
            await asyncio.wait(list(self.tasks), timeout=10)
        try:
            await self.journal.flush()
        except JournalError as e:
            log.error("the journal could not record the last changes: %s", e)

    async def wait_idle(self, timeout: float) -> bool:
        try:
            await asyncio.wait_for(self.idle.wait(), timeout)
            return True
        except asyncio.TimeoutError:
            return False


@dataclass
class Recovered:
    """What :meth:`Engine.recover` found. ``left_running``: the runs the last ``serve`` left
    running (killed or crashed), now ``interrupted``, each with the pids of its process
    still going (empty: none found; None: not known, no ``/proc``); ``retried``: those of
    them run again (``retry``); ``queued``: queued runs restarted; ``cancelled``: the rule
    of each queued run cancelled as its rule is gone; ``last_seen``: when that ``serve``
    was last seen going (epoch s, None: no stamp)."""

    left_running: dict[int, list[int] | None] = field(default_factory=dict)
    retried: list[int] = field(default_factory=list)
    queued: int = 0
    cancelled: list[str] = field(default_factory=list)
    last_seen: float | None = None

    def __bool__(self) -> bool:
        return bool(self.left_running or self.queued or self.cancelled)

    def line(self) -> str:
        """The ``recovered:`` line ``serve`` logs at its start."""
        text = f"recovered: {len(self.left_running)} run(s) left running"
        if self.left_running:
            going = {r: p for r, p in self.left_running.items() if p}
            text += (" by a serve that stopped without ending them (killed or crashed"
                     + (f"; last seen going at {iso_utc(self.last_seen)}" if self.last_seen is not None else "")
                     + "), marked interrupted; "
                     + ("still going: " + ", ".join(f"run {r} (pid {', '.join(map(str, p))})" for r, p in going.items())
                        if going else "whether their processes are still going is not known"
                        if None in self.left_running.values() else "no process of theirs was found"))
            if self.retried:
                text += f"; run again (retry): {', '.join(map(str, self.retried))}"
            text += ";"
        else:
            text += ","
        text += f" {self.queued} queued run(s) restarted"
        if self.cancelled:
            text += (f", {len(self.cancelled)} cancelled: their rule is no longer in the rules file "
                     f"({', '.join(sorted(set(self.cancelled)))})")
        return text


def _nothing() -> None:
    pass


def resolve_secrets(manifest: dict, base_dir: Path, environ: Mapping[str, str],
                    only: Collection[str | None] | None = None) -> dict[str, str]:
    """Secret values by name, read when ``serve`` starts; a missing one is a clear error,
    and every missing one is named in it (one line: a deploy that lacks three variables
    learns of the three at once, not one per restart).
    ``only``: just these of the manifest's secrets (None: all of them).

    The message names the environment variable or file, never a value.
    """
    out, problems = read_secrets(manifest.get("secrets") or {}, base_dir, environ, only)
    if problems:
        raise StartError("; ".join(problems.values()))
    return out


class StartError(Exception):
    """``serve`` cannot start: one clear line, exit 1."""
