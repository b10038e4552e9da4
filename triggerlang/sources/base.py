"""The one small protocol every source implements (SPEC §9, STYLE rule 5).

A source is built from its section of the listener manifest (``manifest["sources"][kind]``)
and a :class:`SourceContext`. ``start()`` begins producing events and returns once the
source is live (its tasks run in the background); ``stop()`` stops it and waits for its
tasks. A source hands every event to ``ctx.submit(event)``, which journals the event,
matches it and queues its runs, and resolves only once the event is committed: the HTTP
source answers 202 after that.

The engine never asks which source it has: it looks sources up by manifest key in the
source-kind registry (:mod:`triggerlang.sources.kinds`, which also reads the
``triggerlang.source_kinds`` and ``triggerlang.sources`` entry-point groups) and calls this
protocol.
"""

from __future__ import annotations

import asyncio
import logging
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Awaitable, Callable, ClassVar, Mapping

from ..events import Event


@dataclass
class Submitted:
    """What ``submit`` did with one event."""

    event_id: str
    runs: list[int] = field(default_factory=list)
    duplicate: bool = False  # a redelivery of an already journaled delivery id: nothing new


Submit = Callable[..., Awaitable[Submitted]]
"""``await submit(event, delivery_key=None)``: journal, match, queue runs."""


@dataclass
class SourceContext:
    base_dir: Path                      # folder of the rules file: relative paths start here
    state_dir: Path                     # .triggerlang/ by default: never watched, never served
    submit: Submit
    secrets: Mapping[str, str] = field(default_factory=dict)  # resolved secret values by name
    log: logging.Logger = field(default_factory=lambda: logging.getLogger("triggerlang"))
    options: Mapping[str, Any] = field(default_factory=dict)  # CLI overrides (host, port, ...)
    # ``submit`` without a task: ``submit_then(event, delivery_key, done)`` calls
    # ``done(submitted, None)`` once the event is committed, or ``done(None, error)``;
    # None: the source awaits ``submit``
    submit_then: Callable[[Event, "str | None", Callable[["Submitted | None", "BaseException | None"], None]],
                          None] | None = None
    # back-pressure: None while new deliveries are welcome, else the seconds to ask a
    # sender to wait (``503`` + ``Retry-After``, before anything is journaled)
    overloaded: Callable[[], float | None] | None = None
    # the delivery history and its metrics (runtime/deliveries.py): called with one row per
    # delivery a webhook route answered; None: not recorded
    record_delivery: Callable[[dict[str, Any]], None] | None = None
    # the ``scheduled`` time of a rule's newest journaled ``schedule.tick`` (Store.last_tick),
    # read by a ``catch up`` schedule at its start; None: no store to ask, no catch-up
    last_tick: Callable[[str], Awaitable["str | None"]] | None = None
    # ``GET /readyz``: None while deliveries can be journaled, else why not (store mode: the
    # store does not answer); None (the SQLite journal): ready but for back-pressure
    not_ready: Callable[[], Awaitable["str | None"]] | None = None


class StopFlag:
    """The stop event of a native watcher (``watchfiles.awatch(stop_event=...)``): ``set()``
    stops it within a step; the first ``is_set()`` call (made by the native watch loop, from
    its thread, once the OS watches are in place) marks the watcher live (``live``)."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._set = False
        self._signalled = False
        self.live = asyncio.Event()

    def is_set(self) -> bool:
        if not self._signalled:
            self._signalled = True
            try:
                self._loop.call_soon_threadsafe(self.live.set)
            except RuntimeError:  # loop closed
                pass
        return self._set

    def set(self) -> None:
        self._set = True

    def rearm(self) -> None:
        """Before a new watcher starts: the next ``is_set()`` marks that one live."""
        self.live = asyncio.Event()
        self._signalled = False

    @property
    def stopped(self) -> bool:
        return self._set


class Source(ABC):
    kind: ClassVar[str] = ""

    def __init__(self, config: Mapping[str, Any], ctx: SourceContext) -> None:
        self.config = config
        self.ctx = ctx

    @abstractmethod
    async def start(self) -> None: ...

    @abstractmethod
    async def stop(self) -> None: ...

    def describe(self) -> str:
        """One log line saying what this source listens to."""
        return self.kind


def load_source_class(kind: str) -> type[Source]:
    """The Source class for a manifest key (see :func:`triggerlang.sources.kinds.load_source_class`)."""
    from .kinds import load_source_class as load

    return load(kind)
