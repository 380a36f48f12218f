"""RFC 3339 timestamps in UTC with millisecond precision, formatted fast.

Formatting a timestamp with `datetime` costs microseconds; at a million events
per second that is the whole budget. Events close in time share their
second, so the date-and-second prefix is cached and only milliseconds are
formatted per event.
"""

from __future__ import annotations

import time


class TimestampFormatter:
    """Formats epoch seconds as ``2026-12-03T17:26:06.123Z``."""

    __slots__ = ("_prefix", "_second")

    def __init__(self) -> None:
        self._second = -1
        self._prefix = ""

    def format_millis(self, millis: int) -> str:
        """Format an epoch time given in whole milliseconds."""
        second, milli = divmod(millis, 1000)
        if second != self._second:
            self._second = second
            self._prefix = time.strftime("%Y-%m-%dT%H:%M:%S.", time.gmtime(second))
        return f"{self._prefix}{milli:03d}Z"

    def format(self, epoch_seconds: float) -> str:
        """Format an epoch time in seconds (truncated to the millisecond)."""
        return self.format_millis(int(epoch_seconds * 1000))
