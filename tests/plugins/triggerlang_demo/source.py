"""The beacon source: submits one ``beacon.signal`` when it starts (tests only)."""

from __future__ import annotations

from triggerlang.events import Event
from triggerlang.sources.base import Source


class BeaconSource(Source):
    kind = "beacon"

    async def start(self) -> None:
        await self.ctx.submit(Event("beacon", "signal", {"level": int(self.config.get("level", 1)), "name": "b"}))

    async def stop(self) -> None:
        return None

    def describe(self) -> str:
        return f"beacon at level {self.config.get('level')}"
