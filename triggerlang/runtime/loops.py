"""Loop protection (issue 14): a chain of runs that never ends, a rule that re-triggers itself.

Two loops are easy to write and expensive to run (``a: on run.completed run t`` beside any
other rule ran 2,785 runs in 6 s):

**Chains** (``run.*``, ``correlation.*``). Every event carries its causation depth
(:attr:`Event.depth`): what a source saw (a webhook, a file change, a tick) is 0, the
``run.completed``/``run.failed`` event of a run is the depth of that run's event + 1, and a
``correlation.*`` event the depth of its deepest member + 1. An event deeper than
``serve --max-chain-depth`` (default :data:`DEFAULT_MAX_CHAIN_DEPTH`) is journaled, but the
runs its matches would start are recorded ``skipped`` with the reason (:func:`depth_reason`),
and the engine logs a warning: the chain stops there, and the dashboard shows why. Both
stores do it: the one-process engine in ``submit``, store mode's ingest nodes in theirs,
and a worker when it journals a finished run's ``run.*`` event in its finish transaction.

**A file rule that re-triggers itself** (a build that writes into the folder it watches).
When a change that matches a rule of the ``file`` source comes while one of that rule's
runs is going (or within :data:`SETTLE` seconds after it ended: the watcher reports a
change some milliseconds after it was made), that run *re-triggered* the rule. When
``serve --max-retriggers`` (default :data:`DEFAULT_MAX_RETRIGGERS`) runs of the rule in a
row each re-triggered it, the rule is *paused*, as watchexec's loop protection would: its
waiting runs are cancelled, and its matches are recorded ``skipped`` with the reason until
``triggerc resume RULE`` (or the dashboard's Resume button) or a reload of the rules
un-pauses it. A run that ends without a matching change during it breaks the streak. The
pause is journaled (audit, actor ``loop protection``) and logged. It lives in the memory
of the process that watches the files (file watching is node-local in store mode too).

What it cannot tell: who made a change. A change made by someone else while a run goes,
or within the settle after it, counts as the run's own: a program that rewrites a watched
file more often than the rule's runs take plus 1 s (a log appended every half second), or
a person saving again and again while a long ``busy restart`` run goes, 20 runs in a row,
pauses the rule as a loop would. The pause says so and ``triggerc resume`` (or a larger
``--max-retriggers``, 0 for off) is the way out; telling the writers apart would take the
writing process's id, which only Linux's fanotify gives, and only to root. The settle is
timed on the monotonic clock in the one-process engine, and on the database's clock in
store mode (both ends of the interval are its ``now()``).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

DEFAULT_MAX_CHAIN_DEPTH = 10
DEFAULT_MAX_RETRIGGERS = 20
SETTLE = 1.0
"""Seconds after a run ends during which a matching file change still counts as its own.

Why 1 s: it must cover the time from a run's last write to the engine seeing the change
(the watcher batches for up to 50 ms, then the event is journaled); measured on the 2-core
machine with the test suite running beside it, a run that writes its watched file just
before it exits had that change matched 5 ms after its end (median of 92 runs), 33 ms at
the most. A window shorter than a loaded machine's worst case would break the streak and
let a real loop run forever, the costly mistake; a longer one counts more changes made by
someone else right after a run (see the module docstring). 1 s is 30 times the worst
measured, and still shorter than a person's next save."""

LOOP_ACTOR = "loop protection"


def depth_reason(depth: int, limit: int) -> str:
    """The ``error`` of a run not started because its event is too deep in a chain."""
    return (f"not started: the event is {depth} runs deep in a chain, over --max-chain-depth {limit} "
            f"(a run.* loop?)")


def pause_reason(rule: str, count: int) -> str:
    return (f"its own runs kept re-triggering it ({count} runs in a row were followed by a matching file change); "
            f"`triggerc resume {rule}` (to a serve --dashboard --token T) or a reload un-pauses it")


def paused_skip_reason(rule: str, reason: str) -> str:
    return f"rule {rule} is paused: {reason}"


@dataclass
class _Streak:
    last: int | None = None  # the run last counted as re-triggering its rule
    count: int = 0


@dataclass
class LoopGuard:
    """The pause state of one process's file rules (see the module docstring).

    ``max_retriggers`` 0 turns the pause off. Not thread-safe: the engine calls it from
    its event loop; readers (the dashboard's thread pool) get copies from :meth:`paused`.
    """

    max_retriggers: int = DEFAULT_MAX_RETRIGGERS
    streaks: dict[str, _Streak] = field(default_factory=dict)
    _paused: dict[str, dict[str, Any]] = field(default_factory=dict)

    def is_paused(self, rule: str) -> dict[str, Any] | None:
        return self._paused.get(rule)

    def paused(self) -> dict[str, dict[str, Any]]:
        """``{rule: {"reason", "since"}}`` (a copy)."""
        return {k: dict(v) for k, v in self._paused.items()}

    def retriggered(self, rule: str, run_id: int, previous: int | None) -> str | None:
        """A change matching ``rule`` came while its run ``run_id`` was going (``previous``:
        the rule's run that started just before that one). The pause reason when this
        pauses the rule, else None."""
        st = self.streaks.setdefault(rule, _Streak())
        if st.last == run_id:
            return None  # this run was already counted
        st.count = st.count + 1 if st.last is not None and st.last == previous else 1
        st.last = run_id
        if self.max_retriggers and st.count >= self.max_retriggers and rule not in self._paused:
            from ..events import utc_now_iso

            reason = pause_reason(rule, st.count)
            self._paused[rule] = {"reason": reason, "since": utc_now_iso(), "count": st.count}
            return reason
        return None

    def resume(self, rule: str) -> bool:
        """Un-pause ``rule`` (and start its streak over); whether it was paused."""
        self.streaks.pop(rule, None)
        return self._paused.pop(rule, None) is not None

    def reset(self) -> list[str]:
        """A reload: every rule un-paused, every streak over; the rules that were paused."""
        was = sorted(self._paused)
        self._paused.clear()
        self.streaks.clear()
        return was


def resume(guard: LoopGuard, rule: str, actor: str, *, known: bool, add_audit: Any, metrics: Any = None) -> bool:
    """``triggerc resume RULE``: un-pause a rule of this process (``known``: it is in the
    rules, else OperationError 404), journaled with ``add_audit(actor, "resume", rule=)``;
    whether it was paused."""
    import logging

    from .operations import OperationError

    if not known:
        raise OperationError(404, f"there is no rule {rule}")
    was = guard.resume(rule)
    if was:
        add_audit(actor, "resume", rule=rule)
        logging.getLogger("triggerlang").info("rule %s resumed by %s", rule, actor, extra={"rule": rule})
        if metrics is not None:
            metrics.paused(rule, False)
    return was


def recent(finished_at: float | None, now: float | None = None) -> bool:
    """Whether a run that ended at ``finished_at`` (``time.monotonic()``) ended within
    :data:`SETTLE`. Not the wall clock: set back an hour by NTP, it made every change of
    the next hour look as if it came right after the run (and set forward, none)."""
    return finished_at is not None and (time.monotonic() if now is None else now) - finished_at <= SETTLE
