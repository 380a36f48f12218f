"""The producer: one generation loop, its lifecycle and its figures.

States and the steps between them::

    idle ──start──▶ running ──stop──▶ stopping ──(flushed)──▶ stopped
                       │  ▲                                      │
                 error │  └──────────────start───────────────────┘
                       ▼
                    failed ──start──▶ running

`Producer.start` and `Producer.stop` are idempotent and serialised by one
lock, so any interleaving of them (a hundred concurrent starts, a stop and a
start racing) leaves at most one loop running. An exception inside the loop
moves the state to ``failed`` with the error kept for status; it is never a
silent ``running``. After `Producer.shutdown` (process exit) every step
raises `IllegalTransition`.

Sequence numbers continue across stops and starts of one process, so
``generated`` always equals the sequence numbers issued.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import logging
import math
import time
import uuid
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from clickstream_generator.engine.pacing import Schedule
from clickstream_generator.kits.clocks import Clock, RealClock
from clickstream_generator.kits.errors import GeneratorError
from clickstream_generator.model.events import EventSource, run_id_prefix
from clickstream_generator.model.settings import ClickModel, ShardSlice
from clickstream_generator.sinks.base import Sink, SinkError

logger = logging.getLogger(__name__)


class State(enum.Enum):
    """Where the producer is in its lifecycle."""

    IDLE = "idle"
    RUNNING = "running"
    STOPPING = "stopping"
    STOPPED = "stopped"
    FAILED = "failed"


class IllegalTransition(GeneratorError):
    """A lifecycle step that is not allowed in the current state."""

    def __init__(self, message: str, state: State):
        super().__init__(message)
        self.state = state


@dataclass(frozen=True)
class RunSettings:
    """What to generate and how fast; every field can change while running."""

    model: ClickModel = field(default_factory=ClickModel)
    """The click model."""
    shard: ShardSlice = field(default_factory=ShardSlice)
    """This producer's slice of the users."""
    rate: float | None = 10.0
    """Events per second; None generates as fast as the sink accepts."""
    partition_key: str = "user"
    """``user`` or ``random``."""


@dataclass(frozen=True)
class Limits:
    """When a run ends by itself (command line); None means never."""

    count: int | None = None
    """Events to generate, then stop."""
    duration: float | None = None
    """Seconds to generate, then stop."""


#: Largest number of events handed to the sink in one call.
MAX_CHUNK = 1000
#: How long a stop may wait for the sink to flush, in seconds.
DEFAULT_STOP_TIMEOUT = 20.0


class Producer:
    """Generates events into a sink, paced, under start/stop control."""

    def __init__(
        self,
        settings: RunSettings,
        sink: Sink,
        *,
        producer_id: str,
        seed: int,
        clock: Clock | None = None,
        limits: Limits = Limits(),
        stop_timeout: float = DEFAULT_STOP_TIMEOUT,
        max_lag: float = 1.0,
    ):
        self.sink = sink
        self.producer_id = producer_id
        self.seed = seed
        self.boot_id = str(uuid.uuid4())
        # One event-id prefix for the whole process run, across reconfigurations.
        self._id_prefix = run_id_prefix()
        self.clock: Clock = clock or RealClock()
        self.limits = limits
        self.stop_timeout = stop_timeout
        self.max_lag = max_lag
        self.state = State.IDLE
        self.last_error: str | None = None
        self.config_version = 1
        self.loops_started = 0
        self._settings = settings
        self._source = self._make_source(settings, first_sequence=0)
        self._lock = asyncio.Lock()
        self._open_lock = asyncio.Lock()
        self._interrupt = asyncio.Event()
        self._stop_requested = False
        self._task: asyncio.Task[None] | None = None
        self._finished = asyncio.Event()
        self._closed = False
        self._schedule: Schedule | None = None
        self._shortfall_before = 0
        self._samples: deque[tuple[float, int]] = deque(maxlen=64)
        self._opened = False
        # A sink that fails in the background wakes the loop, which then fails too.
        sink.add_failure_listener(lambda _error: self._interrupt.set())

    # -- lifecycle -------------------------------------------------------

    @property
    def settings(self) -> RunSettings:
        """The settings in force."""
        return self._settings

    @property
    def opened(self) -> bool:
        """Whether the sink was opened successfully."""
        return self._opened

    async def open(self) -> None:
        """Open the sink (once); raises `SinkError` if it cannot be used."""
        # NB: a start and a background retry may both ask; the sink opens once.
        async with self._open_lock:
            if not self._opened:
                await self.sink.open()
                self._opened = True

    async def start(self) -> State:
        """Start generating; a no-op if already running."""
        async with self._lock:
            self._refuse_if_closed("start")
            if self.state is State.RUNNING and self._task and not self._task.done():
                return self.state
            if self._task is not None and not self._task.done():
                # NB: a loop that reached its limits flushes on its own; a new
                # loop starts only once it is over, so there is never a second.
                await asyncio.shield(self._task)
            try:
                await self.open()
            except SinkError as exc:
                self._fail(exc)
                raise
            self._stop_requested = False
            self._interrupt.clear()
            self._finished.clear()
            self.state = State.RUNNING
            self.loops_started += 1
            self._task = asyncio.create_task(self._loop(), name=f"generate-{self.producer_id}")
            return self.state

    async def stop(self) -> State:
        """Stop generating and flush the sink; a no-op unless running."""
        async with self._lock:
            self._refuse_if_closed("stop")
            await self._stop_locked(self.stop_timeout)
            return self.state

    async def _stop_locked(self, timeout: float) -> None:
        if self._task is None or self._task.done():
            if self.state is State.RUNNING:
                self.state = State.STOPPED
            return
        self.state = State.STOPPING
        self._stop_requested = True
        self._interrupt.set()
        # NB: the loop is not cancelled: it stops between chunks, so every
        # event it generated was handed to the sink.
        await asyncio.shield(self._task)
        if self.state is State.STOPPING:
            # Stop flushes before it reports stopped.
            try:
                await self.sink.flush(timeout)
            except SinkError as exc:
                self._fail(exc)
                return
            self.state = State.STOPPED

    async def wait_finished(self) -> None:
        """Wait until the loop ends by itself (limits reached, or a failure)."""
        await self._finished.wait()

    async def shutdown(self, timeout: float | None = None) -> Any:
        """Stop for good: stop the loop, flush within ``timeout``, close the sink."""
        timeout = self.stop_timeout if timeout is None else timeout
        deadline = time.monotonic() + timeout
        async with self._lock:
            if self._closed:
                return self.sink.accounting.snapshot()
            self._closed = True
            await self._stop_locked(timeout)
        return await self.sink.close(max(0.0, deadline - time.monotonic()))

    def _refuse_if_closed(self, step: str) -> None:
        if self._closed:
            raise IllegalTransition(f"cannot {step}: the generator is shutting down", self.state)

    # -- reconfiguration ---------------------------------------------------

    def reconfigure(self, settings: RunSettings) -> int:
        """Apply new settings atomically between two chunks; returns the new version."""
        self._refuse_if_closed("reconfigure")
        old = self._settings
        if settings.model.seed is not None and settings.model.seed != self.seed:
            # A new seed restarts the click stream from it; sequences go on.
            self.seed = settings.model.seed
        elif settings.model.seed is None and old.model.seed is not None:
            settings = replace(settings, model=replace(settings.model, seed=self.seed))
        if (
            settings.model != old.model
            or settings.shard != old.shard
            or (settings.partition_key != old.partition_key)
        ):
            self._source = self._make_source(settings, first_sequence=self._source.next_sequence)
        self._settings = settings
        self.config_version += 1
        self._interrupt.set()
        return self.config_version

    def set_rate(self, rate: float | None) -> int:
        """Change only the rate."""
        return self.reconfigure(replace(self._settings, rate=rate))

    def _make_source(self, settings: RunSettings, *, first_sequence: int) -> EventSource:
        return EventSource(
            settings.model,
            settings.shard,
            producer_id=self.producer_id,
            seed=self.seed,
            partition_key=settings.partition_key,
            first_sequence=first_sequence,
            id_prefix=self._id_prefix,
        )

    # -- the loop ----------------------------------------------------------

    async def _loop(self) -> None:
        try:
            await self._generate()
            if self.state is State.RUNNING:
                # The run reached its count or duration: flush, then it is over.
                self.state = State.STOPPING
                await self.sink.flush(self.stop_timeout)
                self.state = State.STOPPED
        except SinkError as exc:
            self._fail(exc)
        except Exception as exc:  # the loop must never die silently
            logger.exception("The generation loop failed.")
            self._fail(exc)
        finally:
            self._finished.set()

    def _fail(self, exc: BaseException) -> None:
        self.state = State.FAILED
        self.last_error = (
            f"{type(exc).__name__}: {exc}" if not isinstance(exc, SinkError) else str(exc)
        )
        logger.error("Generation failed: %s", self.last_error)

    async def _generate(self) -> None:
        clock = self.clock
        start = clock.now()
        wall_offset = clock.wall() - start
        end = None if self.limits.duration is None else start + self.limits.duration
        emitted_at_start = self.generated
        schedule: Schedule | None = None
        rate: float | None = None
        self._record_sample(start)
        while not self._stop_requested:
            self._interrupt.clear()
            if self.sink.failure is not None:
                raise self.sink.failure
            settings = self._settings
            now = clock.now()
            if (
                self.limits.count is not None
                and self.generated - emitted_at_start >= self.limits.count
            ):
                return
            if end is not None and now >= end:
                return
            # Follow rate changes: a new schedule from the next event on.
            if settings.rate != rate:
                rate = settings.rate
                if rate is None:
                    schedule = None
                elif schedule is None:
                    schedule = Schedule(rate, now, first_count=self.generated, max_lag=self.max_lag)
                    schedule.shortfall = self._shortfall_before
                else:
                    schedule.change_rate(rate, now, self.generated)
                self._schedule = schedule
            if schedule is None:
                count = MAX_CHUNK
                first_time, interval = now + wall_offset, 0.0
            else:
                schedule.write_off_lag(now, self.generated)
                count = schedule.due_by(now) - self.generated
                if count <= 0:
                    wake_at = schedule.time_of(self.generated)
                    if end is not None:
                        wake_at = min(wake_at, end)
                    await clock.wait_until(wake_at, self._interrupt)
                    continue
                count = min(count, MAX_CHUNK)
                first_time = schedule.time_of(self.generated) + wall_offset
                interval = schedule.interval
            if self.limits.count is not None:
                count = min(count, self.limits.count - (self.generated - emitted_at_start))
            if end is not None and schedule is not None:
                # Only events due before the end belong to this run.
                count = min(
                    count,
                    max(0, math.ceil((end - schedule.time_of(self.generated)) * schedule.rate)),
                )
                if count <= 0:
                    return
            records = self._source.take(count, first_time=first_time, interval=interval)
            await self._send(records)
            self._record_sample(clock.now())
            if count == MAX_CHUNK:
                # A full chunk means we are catching up or unpaced: let others run.
                await asyncio.sleep(0)
        if schedule is not None:
            self._shortfall_before = schedule.shortfall

    async def _send(self, records: Sequence[Any]) -> None:
        """Hand records to the sink; a stop interrupts a back-pressure wait."""
        sending = asyncio.ensure_future(self.sink.send(records))
        if sending.done():
            sending.result()
            return
        stopper = asyncio.ensure_future(self._wait_for_stop())
        try:
            await asyncio.wait({sending, stopper}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            stopper.cancel()
        if sending.done():
            sending.result()
        else:
            # NB: the sink buffered the records before waiting for space, so
            # cancelling the wait loses nothing; they are flushed or spooled.
            sending.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await sending

    async def _wait_for_stop(self) -> None:
        while not self._stop_requested:
            self._interrupt.clear()
            await self._interrupt.wait()

    def _record_sample(self, now: float) -> None:
        self._samples.append((now, self.generated))

    # -- figures -----------------------------------------------------------

    @property
    def generated(self) -> int:
        """Events generated in this process: the sequence numbers issued so far."""
        return self._source.next_sequence

    @property
    def shortfall(self) -> int:
        """Events the schedule wrote off because the sink could not keep up."""
        if self._schedule is not None:
            return self._schedule.shortfall
        return self._shortfall_before

    def achieved_rate(self, window: float = 10.0) -> float:
        """Events per second over about the last ``window`` seconds."""
        if self.state not in (State.RUNNING, State.STOPPING) or len(self._samples) < 2:
            return 0.0
        now = self.clock.now()
        newest_time, newest_count = now, self.generated
        oldest_time, oldest_count = self._samples[0]
        for sample_time, sample_count in self._samples:
            if now - sample_time <= window:
                oldest_time, oldest_count = sample_time, sample_count
                break
        elapsed = newest_time - oldest_time
        return (newest_count - oldest_count) / elapsed if elapsed > 0 else 0.0

    def status(self) -> dict[str, Any]:
        """Everything a person or the operator wants to know, JSON-friendly."""
        accounting = self.sink.accounting.snapshot()
        return {
            "state": self.state.value,
            "boot_id": self.boot_id,
            "producer_id": self.producer_id,
            "shard_index": self._settings.shard.index,
            "shard_count": self._settings.shard.count,
            "users": str(self._settings.shard.users_of(self._settings.model.users)),
            "seed": self.seed,
            "target_rate": self._settings.rate,
            "achieved_rate": round(self.achieved_rate(), 3),
            "generated": self.generated,
            "next_sequence": self._source.next_sequence,
            "shortfall": self.shortfall,
            **{k: v for k, v in accounting.as_dict().items() if k != "accepted"},
            "sink": self.sink.describe(),
            "last_error": self.last_error,
            "config_version": self.config_version,
        }
