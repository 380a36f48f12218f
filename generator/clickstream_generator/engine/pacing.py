"""When each event is due: an exact, evenly spaced schedule that can change rate.

Event ``k`` is due at ``anchor_time + (k - anchor_count) / rate``. Nothing
accumulates rounding: the ``k``-th due time is computed from the anchor, not
by adding intervals, so a run of a day at 20,000 events/s is as exact as a
run of a second.

When the rate changes, the schedule re-anchors at the later of *now* and one
new interval after the last event, so the spacing right after a change is
already the new one. When the generator falls behind (the sink pushes back),
it catches up at most ``max_lag`` seconds of events in a burst; older debt is
written off as *shortfall* and reported, because a load test that silently
bursts after a stall measures the wrong thing.
"""

from __future__ import annotations

import math


class Schedule:
    """Due times of events at a fixed rate, re-anchored on every change."""

    def __init__(self, rate: float, start: float, *, first_count: int = 0, max_lag: float = 1.0):
        if not (rate > 0 and math.isfinite(rate)):
            raise ValueError(f"rate must be a positive number of events per second (got {rate})")
        self.rate = rate
        self.max_lag = max_lag
        self._anchor_time = start
        self._anchor_count = first_count
        self.shortfall = 0

    @property
    def interval(self) -> float:
        """Seconds between two events."""
        return 1.0 / self.rate

    def time_of(self, count: int) -> float:
        """When event number ``count`` (counting from 0 over the whole run) is due."""
        return self._anchor_time + (count - self._anchor_count) / self.rate

    def due_by(self, now: float) -> int:
        """How many events (in total) are due at ``now``."""
        if now < self._anchor_time:
            return self._anchor_count
        return self._anchor_count + math.floor((now - self._anchor_time) * self.rate) + 1

    def write_off_lag(self, now: float, emitted: int) -> int:
        """Forget debt older than ``max_lag``; returns the events written off."""
        lag = now - self.time_of(emitted)
        if lag <= self.max_lag:
            return 0
        skipped = math.floor((lag - self.max_lag) * self.rate)
        if skipped <= 0:
            return 0
        self._anchor_time = self.time_of(emitted) + skipped / self.rate
        self._anchor_count = emitted
        self.shortfall += skipped
        return skipped

    def change_rate(self, rate: float, now: float, emitted: int) -> None:
        """Switch to ``rate`` for events from ``emitted`` on."""
        if not (rate > 0 and math.isfinite(rate)):
            raise ValueError(f"rate must be a positive number of events per second (got {rate})")
        last = self.time_of(emitted - 1) if emitted > self._anchor_count else None
        self.rate = rate
        start = now if last is None else max(now, last + 1.0 / rate)
        self._anchor_time = start
        self._anchor_count = emitted
