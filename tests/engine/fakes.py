"""Fake sinks for fast engine tests: they record, block or fail on demand."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from clickstream_generator.kits.clocks import Clock
from clickstream_generator.model.events import Record
from clickstream_generator.sinks.base import PermanentSinkError, Sink


class RecordingSink(Sink):
    """Acknowledges at once and remembers when (on the clock) each record came."""

    kind = "recording"

    def __init__(self, clock: Clock):
        super().__init__()
        self.clock = clock
        self.arrivals: list[tuple[float, Record]] = []

    async def send(self, records: Sequence[Record]) -> None:
        self.accounting.accept(len(records))
        now = self.clock.now()
        self.arrivals.extend((now, record) for record in records)
        self.accounting.acknowledge(len(records))

    async def flush(self, timeout: float | None = None) -> bool:
        return True

    @property
    def times(self) -> list[float]:
        return [when for when, _ in self.arrivals]


class GatedSink(RecordingSink):
    """Holds at most ``capacity`` unacknowledged records; `send` waits for room."""

    kind = "gated"

    def __init__(self, clock: Clock, capacity: int):
        super().__init__(clock)
        self.capacity = capacity
        self.held: list[Record] = []
        self._room = asyncio.Event()
        self._room.set()

    async def send(self, records: Sequence[Record]) -> None:
        self.accounting.accept(len(records))
        self.held.extend(records)
        self.arrivals.extend((self.clock.now(), r) for r in records)
        while len(self.held) >= self.capacity:
            self._room.clear()
            await self._room.wait()

    def release(self) -> None:
        """Deliver everything held."""
        self.accounting.acknowledge(len(self.held))
        self.held.clear()
        self._room.set()

    async def flush(self, timeout: float | None = None) -> bool:
        return not self.held


class FailingSink(RecordingSink):
    """Fails permanently once ``after`` records have been sent."""

    kind = "failing"

    def __init__(self, clock: Clock, after: int):
        super().__init__(clock)
        self.after = after

    async def send(self, records: Sequence[Record]) -> None:
        if len(self.arrivals) + len(records) > self.after:
            self.accounting.accept(len(records))
            self.accounting.fail(len(records), "stream_not_found")
            raise PermanentSinkError("stream clicks does not exist", reason="stream_not_found")
        await super().send(records)
