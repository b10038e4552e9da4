"""The engine: events in, journaled runs out, with the policies of SPEC §3.

How an event flows
------------------
``submit(event)`` (called by every source, awaited by the HTTP source before it answers
202) does, on the event loop and in this order:

1. match the event (the compiled matcher: indexed, rule order kept);
2. decide each match's run: ``dedupe`` (a key already run within D: ``skipped``),
   ``busy skip`` (a run of the rule is going or waiting: ``skipped``), ``debounce`` (the
   rule's pending run, if any, moves to this event: no new run), else a ``queued`` run;
3. journal the event and all its new runs in ONE transaction (committed on return:
   nothing accepted is lost);
4. hand the queued runs to their rule's lane, which starts them when the rule's ``busy``
   policy allows: ``queue`` one at a time in order, ``parallel`` at once, ``restart``
   cancels the running one (and any older waiting one) first.

A run ends ``succeeded``, ``failed``, ``timed_out`` or ``cancelled``; a failed or timed-out
run of a rule with ``retry N`` gets a new attempt after ``backoff * 2**(attempt-1)``. Every
finished run emits ``run.completed`` (succeeded) or ``run.failed`` (failed, timed out) as
an event of its own, so rules can chain.

Durability: a debounced match is a ``queued`` run with ``not_before`` set to the end of
its quiet period, journaled with the first event of the window; later events of the
window move it (``update_pending``). After a crash, :meth:`Engine.recover` marks runs that
were ``running`` as ``interrupted`` (and retries them when the rule has ``retry``), then
restarts every ``queued`` run, honouring ``not_before``.

Graceful stop (:meth:`Engine.drain`): running runs get a grace period to finish, then are
stopped and marked ``interrupted``; waiting runs stay ``queued`` in the journal and start
on the next ``serve``.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

from .. import defaults
from ..actions import bind_inputs
from ..compile.index import build_matcher
from ..events import MISSING, Event, get_path
from ..sources.base import Submitted
from .executor import KILL_GRACE, RunningAction, RunRequest, start_action, stop_actions
from .journal import Journal, JournalError, PlannedRun, RunRow
from .loops import (DEFAULT_MAX_CHAIN_DEPTH, DEFAULT_MAX_RETRIGGERS, LOOP_ACTOR, LoopGuard, depth_reason,
                    paused_skip_reason, recent, resume as resume_rule)
from .operations import OperationError, cancel_reason

log = logging.getLogger("triggerlang")

JOURNAL_RETRY = 1.0
"""Seconds before a run whose start or end could not be journaled (a full disk) tries again."""

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

    def policies(self, rule: str) -> dict:
        r = self.rules.get(rule)
        return {**DEFAULT_POLICIES, **((r or {}).get("policies") or {})}


@dataclass
class _Lane:
    """The runs of one rule: those waiting (run id, not_before) and those running."""

    waiting: list[tuple[int, float | None]] = field(default_factory=list)
    active: dict[int, RunningAction] = field(default_factory=dict)
    starting: set[int] = field(default_factory=set)
    debounce_run: int | None = None
    debounce_paths: list[str] = field(default_factory=list)
    timer: asyncio.TimerHandle | None = None
    started: list[int] = field(default_factory=list)  # the last few runs started, in order (loop protection)
    last_finished: tuple[int, float] | None = None    # (run id, epoch seconds) of the last run that ended

    @property
    def busy(self) -> bool:
        return bool(self.active or self.starting)


class Engine:
    """Owns the matcher, the journal and the running actions of one ``serve``."""

    def __init__(self, manifest: dict, journal: Journal, secrets: Mapping[str, str],
                 base_dir: Path, *, max_parallel: int = 16, max_open_groups: int | None = None,
                 max_chain_depth: int = DEFAULT_MAX_CHAIN_DEPTH, max_retriggers: int = DEFAULT_MAX_RETRIGGERS,
                 metrics: Any = None) -> None:
        self.journal = journal
        self.max_chain_depth = max_chain_depth
        self.loops = LoopGuard(max_retriggers)
        self.metrics = metrics
        self._cancelling: dict[int, str] = {}  # run id -> why an operator cancels it (stopping its process)
        self.secrets = dict(secrets)
        self.base_dir = Path(base_dir)
        self.lanes: dict[str, _Lane] = {}
        self.tasks: set[asyncio.Task] = set()
        self.slots = asyncio.Semaphore(max_parallel)
        self.closing = False
        # run id -> (event id, source, type, time, data JSON, depth) of the event it was
        # queued for, so that starting the run needs no journal read (a cache: a miss reads it)
        self._carried: dict[int, tuple[str, str, str, str, str, int]] = {}
        self.idle = asyncio.Event()
        self.idle.set()
        self.correlations: Any = None   # the correlation rules (SPEC §11): runtime/correlate.py
        self.max_open_groups = max_open_groups
        self.load(manifest)

    # ------------------------------------------------------------------ rules
    def load(self, manifest: dict) -> None:
        """Use a (new) manifest: rules, actions and the matcher. Running runs go on; rules
        paused by loop protection are un-paused."""
        for rule in self.loops.reset():
            log.info("rule %s un-paused by the reload", rule, extra={"rule": rule})
        rules = Rules(manifest)
        self.manifest, self.matcher, self.rules, self.actions = rules.manifest, rules.matcher, rules.rules, rules.actions
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

    # ------------------------------------------------------------------ events
    async def submit(self, event: Event, delivery_key: str | None = None) -> Submitted:
        """Journal one event with its runs, then start what may start. See the module doc."""
        if event.source == "file" and "paths" not in event.data and isinstance(event.data.get("path"), str):
            event.data["paths"] = [event.data["path"]]
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
        if self.metrics is not None:
            self.metrics.committed(time.perf_counter() - t0)
            self.metrics.event(event.source, event.type)
            self.metrics.runs_decided((p.rule, p.status) for p in planned)
            if matches and event.depth > self.max_chain_depth:
                self.metrics.too_deep.inc()
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
            if pol.get("debounce"):
                ln.debounce_paths = list(event.data.get("paths") or []) if event.source == "file" else []
                planned.append(PlannedRun(name, m.rule.action, self._with_paths(m, inputs, ln), key,
                                          not_before=now + float(pol["debounce"])))
                continue
            if pol.get("busy") == "skip" and (ln.busy or ln.waiting):
                planned.append(PlannedRun(name, m.rule.action, inputs, key, status="skipped",
                                          error="busy skip: a run of this rule was still going"))
                continue
            planned.append(PlannedRun(name, m.rule.action, inputs, key))
        return planned, debounced

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

    def committed(self, event: Event, planned: list[PlannedRun], debounced: list, run_ids: list[int],
                  data_json: str | None) -> None:
        """After the commit of an event and its runs: hand the queued runs to their lanes."""
        for run_id, p in zip(run_ids, planned):
            if p.status != "queued":
                continue
            if data_json is not None:
                self._carried[run_id] = (event.id, event.source, event.type, event.time, data_json, event.depth)
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

    def _pause(self, rule: str, ln: _Lane, reason: str) -> None:
        log.warning("rule %s paused: %s", rule, reason, extra={"rule": rule})
        for rid, _ in ln.waiting:
            self.journal.set_status(rid, "cancelled", paused_skip_reason(rule, reason))
            self._carried.pop(rid, None)
            self._counted(rule, "cancelled")
        ln.waiting = []
        ln.debounce_run = None
        ln.debounce_paths = []
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
        running: its process group gets SIGTERM, SIGKILL after 5 s, and it ends
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
            ln.waiting = [(rid, nb) for rid, nb in ln.waiting if rid != run_id]
            if ln.debounce_run == run_id:
                ln.debounce_run = None
                ln.debounce_paths = []
            self._carried.pop(run_id, None)
            self._check_idle()
            return "cancelled"
        self._cancelling[run_id] = reason
        ra = ln.active.get(run_id)
        if ra is not None and not ra.done():
            self._spawn(ra.cancel(grace=KILL_GRACE))
        return "cancelling"

    def _with_paths(self, m, inputs: dict, ln: _Lane) -> dict:
        """Inputs bound to ``<paths>`` get every path seen in the debounce window."""
        out = dict(inputs)
        for pname in paths_params(self.rules.get(m.rule.name) or {}):
            out[pname] = list(ln.debounce_paths)
        return out

    def _extend_debounce(self, m, event: Event, inputs: dict, deadline: float) -> None:
        name = m.rule.name
        ln = self.lane(name)
        run_id = ln.debounce_run
        if event.source == "file":
            for p in event.data.get("paths") or []:
                if p not in ln.debounce_paths:
                    ln.debounce_paths.append(p)
        inputs = self._with_paths(m, inputs, ln)
        if run_id is not None and self.journal.update_pending(run_id, inputs, event.id, deadline):
            ln.waiting = [(rid, deadline if rid == run_id else nb) for rid, nb in ln.waiting]
            self._arm(name)
            return
        # the pending run already started: this event opens a new window
        ln.debounce_run = None
        ln.debounce_paths = list(event.data.get("paths") or []) if event.source == "file" else []
        rid = self.journal.add_run(PlannedRun(name, self.rules[name]["action"], inputs), event.id,
                                   not_before=deadline)
        ln.debounce_run = rid
        self._enqueue(name, rid, deadline)

    # ------------------------------------------------------------------ lanes
    def _enqueue(self, rule: str, run_id: int, not_before: float | None) -> None:
        ln = self.lane(rule)
        pol = self.policies(rule)
        if pol.get("busy") == "restart":
            # the newest wins: older waiting runs are dropped, the running one stopped
            for rid, _ in ln.waiting:
                if rid != ln.debounce_run:
                    self.journal.set_status(rid, "cancelled", "busy restart: a newer run replaced it")
                    self._carried.pop(rid, None)
                    self._counted(rule, "cancelled")
            ln.waiting = [(rid, nb) for rid, nb in ln.waiting if rid == ln.debounce_run]
        ln.waiting.append((run_id, not_before))
        self.idle.clear()
        self._kick(rule)

    def _arm(self, rule: str) -> None:
        ln = self.lane(rule)
        if ln.timer is not None:
            ln.timer.cancel()
            ln.timer = None
        future = [nb for _, nb in ln.waiting if nb is not None and nb > time.time()]
        if future:
            delay = max(0.0, min(future) - time.time())
            ln.timer = asyncio.get_running_loop().call_later(delay + 0.001, self._kick, rule)

    def _kick(self, rule: str) -> None:
        if self.closing:
            return
        ln = self.lane(rule)
        pol = self.policies(rule)
        now = time.time()
        ready = [(rid, nb) for rid, nb in ln.waiting if nb is None or nb <= now]
        if ready and pol.get("busy") == "restart" and ln.busy:
            for ra in list(ln.active.values()):
                if not ra.done():
                    self._spawn(ra.cancel())
            self._arm(rule)
            return
        while ready:
            if pol.get("busy") != "parallel" and ln.busy:
                break
            rid, nb = ready.pop(0)
            ln.waiting.remove((rid, nb))
            if rid == ln.debounce_run:
                ln.debounce_run = None
                ln.debounce_paths = []
            ln.starting.add(rid)
            self._spawn(self._run(rule, rid))
        self._arm(rule)
        self._check_idle()

    def _spawn(self, coro) -> asyncio.Task:
        t = asyncio.get_running_loop().create_task(coro)
        self.tasks.add(t)
        t.add_done_callback(self.tasks.discard)
        return t

    def _check_idle(self) -> None:
        if all(not ln.waiting and not ln.busy for ln in self.lanes.values()):
            self.idle.set()

    # ------------------------------------------------------------------ runs
    async def _run(self, rule: str, run_id: int) -> None:
        ln = self.lane(rule)
        try:
            async with self.slots:
                if self.closing:  # stopping: a run that only now got its slot stays queued for the next start
                    return
                try:
                    row = self.journal.start_run(run_id)  # queued -> running, and the row
                    if row is None:  # unknown, or no longer queued (cancelled, skipped...)
                        self._carried.pop(run_id, None)
                        return
                except JournalError as e:  # disk full...: the run is still queued; try again soon
                    log.error("run %s of %s cannot start yet: %s; trying again in %.0fs", run_id, rule, e,
                              JOURNAL_RETRY)
                    ln.waiting.append((run_id, time.time() + JOURNAL_RETRY))
                    self.idle.clear()
                    return
                carried = self._carried.pop(run_id, None)
                if self.metrics is not None:
                    self.metrics.run_started(rule, row.wait)
                action = self.actions.get(row.action)
                if action is None:
                    self.journal.mark_finished(run_id, "failed", None,
                                               f"the action {row.action!r} is not in the current rules")
                    return
                if carried is not None and carried[0] == row.event_id:
                    # the event as the journal holds it (its data round-tripped through JSON)
                    eid, source, typ, etime, data_json, depth = carried
                    event = {"id": eid, "source": source, "type": typ, "time": etime, "data": json.loads(data_json)}
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
                                 secrets=self.secrets, attempt=row.attempt)
                ra = await start_action(req)
                ln.active[run_id] = ra
                ln.starting.discard(run_id)
                ln.started = ln.started[-7:] + [run_id]
                if run_id in self._cancelling and not ra.done():  # cancelled while it was starting
                    self._spawn(ra.cancel(grace=KILL_GRACE))
                if pol.get("busy") == "restart" and ln.waiting:
                    # a newer run arrived while this one was starting (not yet cancellable):
                    # the newest wins, so stop this one now
                    self._kick(rule)
                try:
                    res = await ra.wait()
                finally:
                    ln.active.pop(run_id, None)
                    ln.last_finished = (run_id, time.time())
                operator_reason = self._cancelling.pop(run_id, None)
                if self.closing and res.status == "cancelled" and operator_reason is None:
                    self.journal.mark_finished(run_id, "interrupted", res.exit_code,
                                               "the runtime stopped while the run was going")
                    return
                error = operator_reason if res.status == "cancelled" and operator_reason else res.error
                if not await self._record_end(run_id, res.status, res.exit_code, error):
                    return
                self._counted(rule, res.status, time.time() - row.started_at if row.started_at else None)
                log.info("run %s of %s: %s%s", run_id, rule, res.status,
                         f" (exit {res.exit_code})" if res.exit_code is not None else "",
                         extra={"run_id": run_id, "rule": rule, "status": res.status, "exit_code": res.exit_code})
                # re-read for run.* events only (the journal's times make the duration)
                emit = self.run_rules and res.status in ("succeeded", "failed", "timed_out") and not self.closing
                done = self.journal.run_row(run_id) if emit else None
                if res.status in ("failed", "timed_out") and row.attempt <= int(pol.get("retry") or 0):
                    delay = float(pol.get("backoff") or 5.0) * 2 ** (row.attempt - 1)
                    rid = self.journal.add_run(row.planned(), row.event_id, attempt=row.attempt + 1,
                                               not_before=time.time() + delay)
                    log.info("run %s of %s will be retried as run %s in %.1fs", run_id, rule, rid, delay,
                             extra={"run_id": run_id, "rule": rule, "retry_run_id": rid})
                    self._enqueue(rule, rid, time.time() + delay)
                if done is not None and res.status in ("succeeded", "failed", "timed_out") and not self.closing:
                    await self._emit_run_event(done, depth)
        except Exception:  # a bug must not take the runtime down: record and go on
            log.exception("run %s of %s crashed in the engine", run_id, rule, extra={"run_id": run_id, "rule": rule})
            try:
                self.journal.mark_finished(run_id, "failed", None, "internal error in the engine")
            except Exception:  # pragma: no cover
                pass
        finally:
            ln.starting.discard(run_id)
            if not self.closing:
                self._kick(rule)
            self._check_idle()

    async def _record_end(self, run_id: int, status: str, exit_code: int | None, error: str | None) -> bool:
        """Journal how a run ended; while the journal cannot be written (a full disk), try again
        with a growing delay instead of losing the outcome. False if the runtime stops first:
        the run then stays ``running`` and the next start marks it ``interrupted``."""
        delay = JOURNAL_RETRY
        while True:
            try:
                self.journal.mark_finished(run_id, status, exit_code, error)
                return True
            except JournalError as e:
                if self.closing:
                    log.error("run %s ended %s but the journal cannot record it: %s", run_id, status, e)
                    return False
                log.error("run %s ended %s; cannot record it yet (%s), trying again in %.0fs",
                          run_id, status, e, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 30.0)

    async def _emit_run_event(self, row: RunRow, depth: int) -> None:
        """The ``run.*`` event of a finished run, one deeper than the run's own event."""
        typ = "completed" if row.status == "succeeded" else "failed"
        data = {"rule": row.rule, "action": row.action, "status": row.status, "exit_code": row.exit_code,
                "duration": row.duration, "inputs": row.inputs, "run_id": row.id, "event_id": row.event_id,
                "attempt": row.attempt}
        ev = Event("run", typ, data, depth=depth + 1)
        if not self.matcher.match(ev):
            return  # only journal run events some rule listens to
        await self.submit(ev)

    # ------------------------------------------------------------------ start and stop
    def start_correlations(self) -> None:
        """Serve's start, before any source: past deadlines, then the correlation timers."""
        self._started = True
        if self.correlations is not None:
            self.correlations.start()
            self.correlations.start_timers()

    def recover(self) -> tuple[int, int]:
        """Restart what a crash left: (interrupted runs, queued runs restarted)."""
        rec = self.journal.recover()
        for row in rec.interrupted:
            pol = self.policies(row.rule)
            if row.attempt <= int(pol.get("retry") or 0) and row.rule in self.rules:
                rid = self.journal.add_run(row.planned(), row.event_id, attempt=row.attempt + 1)
                self._enqueue(row.rule, rid, None)
        for row in rec.queued:
            if row.rule not in self.rules:
                self.journal.set_status(row.id, "cancelled", "its rule is no longer in the rules file")
                continue
            if row.not_before is not None and self.policies(row.rule).get("debounce"):
                self.lane(row.rule).debounce_run = row.id
            self._enqueue(row.rule, row.id, row.not_before)
        return len(rec.interrupted), len(rec.queued)

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

    async def wait_idle(self, timeout: float) -> bool:
        try:
            await asyncio.wait_for(self.idle.wait(), timeout)
            return True
        except asyncio.TimeoutError:
            return False


def resolve_secrets(manifest: dict, base_dir: Path, environ: Mapping[str, str]) -> dict[str, str]:
    """Secret values by name, read when ``serve`` starts; a missing one is a clear error.

    The message names the environment variable or file, never a value.
    """
    out: dict[str, str] = {}
    for name, ref in sorted((manifest.get("secrets") or {}).items()):
        if "env" in ref:
            var = ref["env"]
            val = environ.get(var)
            if val is None or val == "":
                raise StartError(f"secret {name}: the environment variable {var} is not set")
            out[name] = val
        elif "file" in ref:
            p = Path(ref["file"])
            p = p if p.is_absolute() else base_dir / p
            try:
                val = p.read_text(encoding="utf-8").rstrip("\r\n")
            except OSError as e:
                raise StartError(f"secret {name}: cannot read {p}: {e.strerror or e}") from None
            except UnicodeDecodeError:
                raise StartError(f"secret {name}: {p} is not UTF-8 text") from None
            if not val:
                raise StartError(f"secret {name}: {p} is empty")
            out[name] = val
    return out


class StartError(Exception):
    """``serve`` cannot start: one clear line, exit 1."""
