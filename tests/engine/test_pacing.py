"""Pacing on a virtual clock: exact rates, even spacing, changes, stops, back-pressure.

No test here sleeps: the virtual clock moves only when the test moves it.
"""

from __future__ import annotations

import asyncio
import math

import orjson
import pytest

from clickstream_generator.engine.pacing import Schedule
from clickstream_generator.engine.running import Limits, Producer, RunSettings, State
from clickstream_generator.kits.clocks import VirtualClock
from tests.engine.fakes import GatedSink, RecordingSink


def _producer(
    clock: VirtualClock, sink: RecordingSink, rate: float | None, **kw: object
) -> Producer:
    return Producer(
        RunSettings(rate=rate),
        sink,
        producer_id="pace-0",
        seed=1,
        clock=clock,
        **kw,  # type: ignore[arg-type]
    )


async def _run_for(clock: VirtualClock, seconds: float, step: float) -> None:
    for _ in range(round(seconds / step)):
        await clock.advance(step)


def _assert_even(times: list[float], start: float, end: float, rate: float) -> None:
    """Every 10 s window holds the target count within 1 % or 2 events."""
    window = 10.0
    t = start
    while t + window <= end + 1e-9:
        count = sum(1 for x in times if t <= x < t + window)
        target = rate * window
        assert abs(count - target) <= max(0.01 * target, 2), (t, count, target)
        t += window / 4


@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("rate", "seconds", "step"), [(0.2, 200, 0.5), (3, 60, 0.05), (20_000, 20, 0.01)]
)
async def test_events_are_spread_evenly_at_the_target_rate(
    rate: float, seconds: float, step: float
) -> None:
    clock = VirtualClock()
    sink = RecordingSink(clock)
    producer = _producer(clock, sink, rate)
    start = clock.now()
    await producer.start()
    await _run_for(clock, seconds, step)
    await producer.stop()
    times = sink.times
    assert abs(len(times) - rate * seconds) <= 2
    _assert_even(times, start, start + seconds, rate)
    # Event timestamps carry the schedule itself, spaced by exactly 1/rate (to the ms).
    stamps = [orjson.loads(r.data)["event_time"] for _, r in sink.arrivals[:3]]
    assert len(set(stamps)) == (3 if rate <= 1000 else len(set(stamps)))


@pytest.mark.asyncio
async def test_a_fractional_rate_below_one_per_second_is_exact() -> None:
    clock = VirtualClock()
    sink = RecordingSink(clock)
    producer = _producer(clock, sink, 0.2)
    start = clock.now()
    await producer.start()
    await _run_for(clock, 60, 0.125)  # binary-exact steps: no float drift in the test itself
    await producer.stop()
    gaps = [b - a for a, b in zip(sink.times, sink.times[1:], strict=False)]
    assert sink.times[0] == start
    assert len(sink.times) == 13  # at 0, 5, 10, ... 60 s
    assert all(math.isclose(gap, 5.0, abs_tol=0.1) for gap in gaps)


@pytest.mark.asyncio
async def test_the_rate_changes_while_running_without_a_restart() -> None:
    clock = VirtualClock()
    sink = RecordingSink(clock)
    producer = _producer(clock, sink, 10.0)
    await producer.start()
    await _run_for(clock, 10, 0.01)
    changed_at = clock.now()
    before = len(sink.times)
    version = producer.set_rate(100.0)
    await _run_for(clock, 10, 0.01)
    await producer.stop()
    after = [t for t in sink.times if t >= changed_at]
    assert abs(before - 100) <= 1
    assert abs(len(after) - 1000) <= 2
    assert producer.loops_started == 1
    assert version == 2
    sequences = [orjson.loads(r.data)["sequence"] for _, r in sink.arrivals]
    assert sequences == list(range(len(sequences)))


@pytest.mark.asyncio
async def test_a_stop_takes_effect_in_the_middle_of_a_long_interval() -> None:
    clock = VirtualClock()
    sink = RecordingSink(clock)
    producer = _producer(clock, sink, 0.01)  # one event per 100 s
    await producer.start()
    await clock.advance(5.0)
    assert len(sink.times) == 1
    stopped_at = clock.now()
    # The stop completes without the clock moving: it did not wait for the interval.
    await asyncio.wait_for(producer.stop(), timeout=1.0)
    assert clock.now() == stopped_at
    assert producer.state is State.STOPPED


@pytest.mark.asyncio
async def test_back_pressure_slows_generation_and_reports_the_shortfall() -> None:
    clock = VirtualClock()
    sink = GatedSink(clock, capacity=50)
    producer = _producer(clock, sink, 100.0, max_lag=1.0)
    await producer.start()
    await _run_for(clock, 5, 0.01)
    # The sink took 50 and pushes back: generation stalls instead of buffering 500.
    assert producer.generated <= 50
    sink.release()
    await _run_for(clock, 0.5, 0.01)
    status = producer.status()
    # At most one second of debt is caught up; the rest is written off and shown.
    assert status["shortfall"] >= 300
    assert producer.generated + status["shortfall"] <= 100 * 5.5 + 2
    await producer.stop()


@pytest.mark.asyncio
async def test_count_limit_ends_the_run_and_flushes() -> None:
    clock = VirtualClock()
    sink = RecordingSink(clock)
    producer = _producer(clock, sink, 1000.0, limits=Limits(count=250))
    await producer.start()
    while producer.state is State.RUNNING:
        await clock.advance(0.01)
    await producer.wait_finished()
    assert producer.state is State.STOPPED
    assert len(sink.arrivals) == 250


@pytest.mark.asyncio
async def test_duration_limit_generates_what_is_due_in_that_time() -> None:
    clock = VirtualClock()
    sink = RecordingSink(clock)
    producer = _producer(clock, sink, 40.0, limits=Limits(duration=2.5))
    await producer.start()
    while producer.state is State.RUNNING:
        await clock.advance(0.01)
    assert len(sink.arrivals) == 100


@pytest.mark.asyncio
async def test_max_rate_generates_as_fast_as_the_sink_accepts() -> None:
    clock = VirtualClock()
    sink = RecordingSink(clock)
    producer = _producer(clock, sink, None, limits=Limits(count=5000))
    await producer.start()
    await asyncio.wait_for(producer.wait_finished(), timeout=10)
    assert len(sink.arrivals) == 5000
    assert clock.now() == sink.times[-1]  # no waiting on the clock at all


def test_the_schedule_does_not_drift_over_a_day_at_high_rate() -> None:
    schedule = Schedule(20_000.0, 0.0)
    day = 86_400.0
    assert schedule.due_by(day) == 20_000 * 86_400 + 1
    assert schedule.time_of(20_000 * 86_400) == day


def test_a_schedule_refuses_a_non_positive_rate() -> None:
    with pytest.raises(ValueError, match="rate must be a positive"):
        Schedule(0.0, 0.0)


@pytest.mark.asyncio
async def test_a_new_seed_restarts_the_click_stream_and_sequences_go_on() -> None:
    from dataclasses import replace

    clock = VirtualClock()
    sink = RecordingSink(clock)
    producer = _producer(clock, sink, None, limits=Limits(count=100))
    await producer.start()
    await asyncio.wait_for(producer.wait_finished(), timeout=10)
    settings = producer.settings
    producer.reconfigure(replace(settings, model=replace(settings.model, seed=99)))
    assert producer.seed == 99
    await producer.start()
    await asyncio.wait_for(producer.wait_finished(), timeout=10)
    events = [orjson.loads(r.data) for _, r in sink.arrivals]
    assert [e["sequence"] for e in events] == list(range(200))
    # One event-id prefix per process run, across reconfigurations.
    assert len({e["event_id"][:24] for e in events}) == 1
    # The second run is the seed-99 stream from its start.
    reference = _producer(clock, RecordingSink(clock), None, limits=Limits(count=100))
    reference.reconfigure(replace(settings, model=replace(settings.model, seed=99)))
    await reference.start()
    await asyncio.wait_for(reference.wait_finished(), timeout=10)
    ref = [orjson.loads(r.data) for _, r in reference.sink.arrivals]  # type: ignore[attr-defined]
    assert [e["user_id"] for e in events[100:]] == [e["user_id"] for e in ref]


@pytest.mark.asyncio
async def test_a_sink_failing_in_the_background_fails_the_producer_at_once() -> None:
    from clickstream_generator.sinks.base import PermanentSinkError

    clock = VirtualClock()
    sink = RecordingSink(clock)
    producer = _producer(clock, sink, 0.01)  # asleep for 100 s after the first event
    await producer.start()
    await clock.advance(1.0)
    failed_at = clock.now()
    sink.report_failure(PermanentSinkError("stream clicks was deleted", reason="stream_not_found"))
    await asyncio.wait_for(producer.wait_finished(), timeout=1.0)
    assert clock.now() == failed_at
    assert producer.state is State.FAILED
    assert "stream clicks was deleted" in (producer.last_error or "")
