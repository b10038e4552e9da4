"""The operator's writes: re-run a run, cancel one, resume a paused rule (issue 14).

The dashboard's buttons and ``triggerc rerun|cancel|resume`` (which POST to the running
``serve``'s API with the dashboard token) end here. One of two operators does the work:

* :class:`EngineOperator` inside ``serve`` with the SQLite journal: the engine owns the
  run queue and the running processes in its memory, so only it can start a re-run now
  or stop a running run's process group. That is why the CLI talks to the running serve
  rather than writing to the journal itself: a run written there behind the engine's back
  would wait for the next start, and a running run's process is the engine's.
* :class:`StoreOperator` in store mode (``serve --store``, and ``triggerc dashboard
  --store``): the PostgreSQL store is the queue, so any node can write it. A re-run is a
  queued row (workers are notified); cancelling a running run sets ``cancel_requested``,
  and the worker running it, notified at once, stops its process group.

Either way: a re-run is a new run (attempt 1) with the same rule, action, inputs and
event, ``rerun_of`` pointing at the original, which must have ended; cancelling a queued
run marks it ``cancelled``, a running run gets SIGTERM to its process group, SIGKILL
5 s later, and ends ``cancelled``; an ended run cannot be cancelled (409). Each write is
journaled in the store's audit trail with who (``dashboard from 127.0.0.1``,
``alice@laptop (cli) from 127.0.0.1``) and when, in the transaction that makes it.
"""

from __future__ import annotations

import asyncio
from typing import Any, Callable


class OperationError(Exception):
    """A write refused: ``status`` (404 no such run, 409 not now) and a one-line message."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def cancel_reason(actor: str) -> str:
    return f"cancelled by {actor}"


class EngineOperator:
    """Writes through the one-process engine of ``serve`` (call on its event loop)."""

    def __init__(self, engine: Any) -> None:
        self.engine = engine

    async def rerun(self, run_id: int, actor: str) -> int:
        return self.engine.rerun(run_id, actor)

    async def cancel(self, run_id: int, actor: str) -> str:
        return self.engine.cancel(run_id, actor)

    async def resume(self, rule: str, actor: str) -> bool:
        return self.engine.resume(rule, actor)

    def paused(self) -> dict[str, dict]:
        return self.engine.loops.paused()


class StoreOperator:
    """Writes straight to a shared store (PostgreSQL); ``engine`` (an ingest node's, or
    None standalone) holds the pauses of its file rules."""

    def __init__(self, store: Any | Callable[[], Any], engine: Any = None) -> None:
        self._store = store
        self.engine = engine

    def store(self) -> Any:
        return self._store() if callable(self._store) else self._store

    async def rerun(self, run_id: int, actor: str) -> int:
        try:
            row = await asyncio.to_thread(lambda: self.store().rerun(run_id, actor))
        except KeyError:
            raise OperationError(404, f"there is no run {run_id}") from None
        except ValueError as e:
            raise OperationError(409, str(e)) from None
        return row.id

    async def cancel(self, run_id: int, actor: str) -> str:
        try:
            before = await asyncio.to_thread(lambda: self.store().cancel(run_id, actor, cancel_reason(actor)))
        except KeyError:
            raise OperationError(404, f"there is no run {run_id}") from None
        except ValueError as e:
            raise OperationError(409, str(e)) from None
        return "cancelled" if before == "queued" else "cancelling"

    async def resume(self, rule: str, actor: str) -> bool:
        if self.engine is None or not hasattr(self.engine, "resume"):
            raise OperationError(409, f"rule {rule} is not paused here (a rule is paused by the node that "
                                      f"watches its files: resume it on that node's serve)")
        return self.engine.resume(rule, actor)

    def paused(self) -> dict[str, dict]:
        loops = getattr(self.engine, "loops", None)
        return loops.paused() if loops is not None else {}


__all__ = ["OperationError", "EngineOperator", "StoreOperator", "cancel_reason"]
