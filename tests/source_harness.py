"""What the source tests share: a SourceContext whose submit records events, the log
lines the source wrote, waiting on a condition with a deadline, and running one source
for the length of a test body."""

from __future__ import annotations

import asyncio
import logging
import uuid
from pathlib import Path
from typing import Any, Awaitable, Callable

from triggerlang.events import Event
from triggerlang.sources.base import SourceContext, Submitted


class SourceHarness(logging.Handler):
    """The harness is also the log handler: ``messages`` holds what the source logged."""

    deadline = 15.0

    def __init__(self, base_dir: Path, state_dir: Path | None = None) -> None:
        super().__init__()
        self.events: list[Event] = []
        self.messages: list[str] = []
        log = logging.getLogger(f"test-source-{uuid.uuid4().hex}")
        log.addHandler(self)
        log.propagate = False
        log.setLevel(logging.DEBUG)
        self.ctx = SourceContext(base_dir=base_dir, state_dir=state_dir or base_dir / ".triggerlang",
                                 submit=self.submit, log=log)

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())

    async def submit(self, event: Event, delivery_key: str | None = None) -> Submitted:
        self.events.append(event)
        return Submitted(event.id)

    def describe_events(self) -> Any:
        return [e.data for e in self.events]

    async def wait_for(self, pred: Callable[[], Any], what: str, timeout: float | None = None) -> Any:
        """Poll ``pred`` until it returns something true (returned), or fail after the deadline."""
        loop = asyncio.get_running_loop()
        end = loop.time() + (timeout if timeout is not None else self.deadline)
        while True:
            val = pred()
            if val:
                return val
            if loop.time() > end:
                raise AssertionError(f"timed out waiting for {what}; got {self.describe_events()}")
            await asyncio.sleep(0.02)


def run_source(harness: SourceHarness, source_cls: type, config: dict[str, Any],
               body: Callable[[Any, Any], Awaitable[None]]) -> Any:
    """Start ``source_cls(config, harness.ctx)``, run ``body(harness, source)``, stop it."""

    async def main() -> None:
        src = source_cls(config, harness.ctx)
        await src.start()
        try:
            await body(harness, src)
        finally:
            await asyncio.wait_for(src.stop(), 5)

    asyncio.run(main())
    return harness
