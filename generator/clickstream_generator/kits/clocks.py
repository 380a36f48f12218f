"""Clocks: the seam between pacing and time.

Pacing needs two things from time: reading a monotonic clock, and waiting
until a moment unless something more urgent (a stop) happens first. The
real clock does both with `time.monotonic` and asyncio; the virtual clock
lets tests run hours of pacing in milliseconds without a single real sleep.

The virtual clock only moves when a test moves it (`VirtualClock.advance`,
`VirtualClock.run_until_idle`); it is not meant for production.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import time
from typing import Any, Protocol


class Clock(Protocol):
    """What the engine needs of time."""

    def now(self) -> float:
        """Seconds on a monotonic clock."""
        ...

    def wall(self) -> float:
        """Seconds since the Unix epoch, for event timestamps."""
        ...

    async def wait_until(self, deadline: float, interrupt: asyncio.Event) -> bool:
        """Wait until ``deadline`` (monotonic) or until ``interrupt`` is set.

        Returns True if interrupted.
        """
        ...


class RealClock:
    """The process's monotonic and wall clocks."""

    def __init__(self) -> None:
        # NB: wall time is derived from one reading pair, so event timestamps
        # stay evenly spaced even if NTP steps the system clock mid-run.
        self._wall_offset = time.time() - time.monotonic()

    def now(self) -> float:
        return time.monotonic()

    def wall(self) -> float:
        return time.monotonic() + self._wall_offset

    async def wait_until(self, deadline: float, interrupt: asyncio.Event) -> bool:
        if interrupt.is_set():
            return True
        delay = deadline - time.monotonic()
        if delay <= 0:
            return False
        try:
            await asyncio.wait_for(interrupt.wait(), timeout=delay)
        except TimeoutError:
            return False
        return True


class VirtualClock:
    """A clock that moves only when told to; waits resolve as it moves."""

    def __init__(self, start: float = 1_000.0, wall_start: float = 1_767_225_600.0) -> None:
        self._now = start
        self._wall_offset = wall_start - start
        self._timers: list[tuple[float, int, asyncio.Future[None]]] = []
        self._order = itertools.count()

    def now(self) -> float:
        return self._now

    def wall(self) -> float:
        return self._now + self._wall_offset

    async def wait_until(self, deadline: float, interrupt: asyncio.Event) -> bool:
        if interrupt.is_set():
            return True
        if deadline <= self._now:
            # Still yield, so that a busy loop cannot starve the test driving it.
            await asyncio.sleep(0)
            return interrupt.is_set()
        timer: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        heapq.heappush(self._timers, (deadline, next(self._order), timer))
        interrupter = asyncio.ensure_future(interrupt.wait())
        waits: list[asyncio.Future[Any]] = [timer, interrupter]
        try:
            await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
        finally:
            interrupter.cancel()
            timer.cancel()
        return interrupt.is_set()

    @property
    def next_deadline(self) -> float | None:
        """The earliest pending wait, if any."""
        self._drop_cancelled()
        return self._timers[0][0] if self._timers else None

    async def advance(self, seconds: float) -> None:
        """Move time forward in one step, then wake every wait that fell due.

        Like a busy real loop, waits that fell due on the way wake together at
        the new time; use `advance_to_next` to visit each deadline.
        """
        await _settle()
        self._now += seconds
        self._fire_due()
        await _settle()

    async def advance_to_next(self) -> bool:
        """Jump to the earliest pending wait; False if nothing is waiting."""
        await _settle()
        deadline = self.next_deadline
        if deadline is None:
            return False
        self._now = max(self._now, deadline)
        self._fire_due()
        await _settle()
        return True

    def _fire_due(self) -> None:
        while self._timers and self._timers[0][0] <= self._now:
            _, _, timer = heapq.heappop(self._timers)
            if not timer.done():
                timer.set_result(None)

    def _drop_cancelled(self) -> None:
        while self._timers and self._timers[0][2].done():
            heapq.heappop(self._timers)


async def _settle(rounds: int = 20) -> None:
    """Let ready tasks run until they block on something (bounded)."""
    for _ in range(rounds):
        await asyncio.sleep(0)
