"""Exponential backoff, per pod, for generators that do not answer.

A pod that cannot be reached is not asked again at every reconciliation
(pod events can come many times a second), but after 1, 2, 4 … up to 60
seconds, with full jitter. The key includes the pod's address and readiness,
so a pod that restarts or turns Ready is tried at once.
"""

from __future__ import annotations

import random
from collections.abc import Hashable
from dataclasses import dataclass


@dataclass
class _Failures:
    count: int
    next_try: float
    error: str


class Backoff:
    """When each failing key may be tried again (monotonic seconds)."""

    def __init__(self, *, base: float = 1.0, cap: float = 60.0, rng: random.Random | None = None):
        self.base = base
        self.cap = cap
        self._rng = rng or random.Random()
        self._failures: dict[Hashable, _Failures] = {}

    def allows(self, key: Hashable, now: float) -> bool:
        """Whether ``key`` may be tried at ``now``."""
        failures = self._failures.get(key)
        return failures is None or now >= failures.next_try

    def last_error(self, key: Hashable) -> str | None:
        failures = self._failures.get(key)
        return None if failures is None else failures.error

    def failed(self, key: Hashable, now: float, error: str) -> float:
        """Record a failure; returns the delay until the next try."""
        count = self._failures[key].count + 1 if key in self._failures else 1
        delay = self._rng.uniform(0, min(self.cap, self.base * 2 ** (count - 1)))
        self._failures[key] = _Failures(count, now + delay, error)
        return delay

    def succeeded(self, key: Hashable) -> None:
        self._failures.pop(key, None)

    def forget_all_but(self, keys: set[Hashable]) -> None:
        """Drop the records of keys no longer in use (pods that went away)."""
        for key in list(self._failures):
            if key not in keys:
                del self._failures[key]
