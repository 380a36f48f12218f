"""Backoff of unreachable generators: exponential, capped, jittered, reset by success."""

from __future__ import annotations

import random

from clickstream_operator.reconciling.backoff import Backoff


def test_delays_grow_exponentially_up_to_the_cap_with_full_jitter() -> None:
    backoff = Backoff(base=1.0, cap=8.0, rng=random.Random(3))
    ceilings = [1.0, 2.0, 4.0, 8.0, 8.0, 8.0]
    delays = [backoff.failed("pod-0", 100.0, "refused") for _ in ceilings]
    assert all(0 <= delay <= ceiling for delay, ceiling in zip(delays, ceilings, strict=True))
    # Full jitter: over many draws the delays spread across the whole window.
    draws = [Backoff(rng=random.Random(seed)).failed("k", 0.0, "x") for seed in range(200)]
    assert min(draws) < 0.1
    assert max(draws) > 0.9


def test_a_failing_key_waits_and_a_success_clears_it() -> None:
    backoff = Backoff(base=10.0, cap=10.0, rng=random.Random(1))
    delay = backoff.failed("pod-0", 100.0, "GET /v1/status: refused")
    assert not backoff.allows("pod-0", 100.0 + delay / 2)
    assert backoff.allows("pod-0", 100.0 + delay)
    assert backoff.allows("pod-1", 100.0)
    assert backoff.last_error("pod-0") == "GET /v1/status: refused"
    backoff.succeeded("pod-0")
    assert backoff.allows("pod-0", 100.0)
    assert backoff.last_error("pod-0") is None


def test_keys_of_pods_that_went_away_are_dropped() -> None:
    backoff = Backoff(base=100.0, rng=random.Random(2))
    backoff.failed("old", 0.0, "x")
    backoff.failed("kept", 0.0, "y")
    backoff.forget_all_but({"kept"})
    assert backoff.last_error("old") is None
    assert backoff.last_error("kept") == "y"
