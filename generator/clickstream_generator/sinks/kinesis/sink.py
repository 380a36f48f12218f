"""Delivering records to a Kinesis data stream with PutRecords, losing none.

How an event travels::

    send() ──▶ buffer ──▶ Batcher (≤ 500 records, ≤ 5 MiB) ──▶ PutRecords in a worker thread
                 ▲   ready (retries, sent first) ◀── retry heap (backoff, full jitter) ◀─┘
                 │                                        failed entries only, index-aligned
                 └── send() waits while pending ≥ buffer_records or buffer_bytes

- A batch leaves when it is full, when its oldest event has lingered
  ``linger`` seconds, when a retry is due, or at once while flushing. Up to
  ``max_in_flight`` requests run at once, each in a worker thread.
- A 200 answer with ``FailedRecordCount > 0`` acknowledges only the entries
  with a sequence number; the others go back with exponential backoff and
  full jitter until their deadline passes, then fail as ``deadline_<reason>``.
- A permanent failure (no stream, access denied, credentials still invalid
  after one refresh, an invalid request) makes the sink *fatal*: `send`
  raises it and everything not yet delivered fails with that reason and is
  spooled. Nothing is dropped without being counted.
- `close` flushes within its timeout, spools what is still buffered or
  waiting for a retry, and waits up to ``in_flight_grace`` seconds for
  requests in flight (their answer decides the fate of their events); what is
  still in flight after that is spooled as ``in_flight_at_shutdown``, and may
  also be in the stream.

Back-pressure counts every pending event (buffered, waiting for a retry or in
flight), so memory stays bounded under sustained throttling too.

Ordering per partition key is only kept with ``ordered`` (see ``batching``);
otherwise a retried event can land after a newer one of the same user, as
with any concurrent producer.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import functools
import heapq
import itertools
import logging
import operator
import random
import time
from collections import deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from prometheus_client.core import Metric

from clickstream_generator.model.events import Record
from clickstream_generator.sinks.base import (
    AccountingSnapshot,
    PermanentSinkError,
    RetryableSinkError,
    Sink,
    SinkError,
    Spool,
    accounting_metrics,
)
from clickstream_generator.sinks.kinesis import sending, serialising
from clickstream_generator.sinks.kinesis.batching import (
    EVENTS_OF,
    MAX_BYTES_PER_REQUEST,
    MAX_RECORDS_PER_REQUEST,
    Batcher,
    Unit,
    check_record,
    columns_of,
    singles,
)
from clickstream_generator.sinks.kinesis.errors import classify, is_retryable_code, reason_of
from clickstream_generator.sinks.kinesis.metrics import KinesisMetrics
from clickstream_generator.sinks.kinesis.packing import Packer

logger = logging.getLogger(__name__)

_SEQUENCE_NUMBER = operator.methodcaller("get", "SequenceNumber")
_EVENT_BYTES = operator.attrgetter("event_bytes")


@dataclass
class KinesisSettings:
    """How to reach the stream and how hard to try; defaults suit most streams."""

    stream: str = ""
    """Stream name, or its ARN (``arn:aws:kinesis:…:stream/NAME``)."""
    region: str | None = None
    """AWS region; required for AWS, any value for emulators."""
    endpoint_url: str | None = None
    """Endpoint override (emulators, VPC endpoints); None for AWS's own."""
    max_in_flight: int = 4
    """PutRecords requests running at the same time."""
    linger: float = 0.1
    """Seconds an event may wait for a fuller batch."""
    buffer_records: int = 100_000
    """Pending events (buffered, retrying or in flight) before `send` waits."""
    buffer_bytes: int = 32 * 1024 * 1024
    """Pending bytes before `send` waits."""
    record_deadline: float = 300.0
    """Seconds an event may be retried before it fails; 0 retries forever."""
    backoff_base: float = 0.1
    """First retry delay ceiling, in seconds (full jitter below it)."""
    backoff_cap: float = 10.0
    """Largest retry delay ceiling, in seconds."""
    connect_timeout: float = 2.0
    """Seconds to open a connection."""
    read_timeout: float = 10.0
    """Seconds to wait for an answer."""
    client_attempts: int = 2
    """Attempts botocore makes per call before the sink's own retries take over."""
    in_flight_grace: float = 5.0
    """Seconds `close` waits for requests in flight after its flush deadline."""
    ordered: bool = False
    """Keep each partition key's order: one unit per key in flight or retrying."""
    aggregate: bool = False
    """Pack events of one shard into KPL aggregated records."""
    max_aggregate_bytes: int = 64 * 1024
    """Largest aggregated record, in bytes (at most 1 MiB)."""
    credential_refreshes: int = 1
    """Times rejected credentials are re-read before the failure is permanent."""
    spool_path: Path | None = None
    """Where undelivered events are written (JSON lines); None keeps no spool."""
    wait_active_timeout: float = 120.0
    """Seconds to wait for the stream to become ACTIVE when opening."""
    extra_client_config: dict[str, Any] = field(default_factory=dict)
    """Additional botocore client options."""

    @property
    def stream_argument(self) -> dict[str, str]:
        """``StreamName=`` or ``StreamARN=``, whichever identifies the stream."""
        if self.stream.startswith("arn:"):
            return {"StreamARN": self.stream}
        return {"StreamName": self.stream}

    def validate(self) -> None:
        """Raise `ValueError` naming the first setting out of range."""
        checks = [
            (bool(self.stream), "stream must be a name or an ARN (got nothing)"),
            (self.max_in_flight >= 1, f"max_in_flight must be >= 1 (got {self.max_in_flight})"),
            (self.linger >= 0, f"linger must be >= 0 s (got {self.linger})"),
            (
                self.buffer_records >= 1,
                f"buffer_records must be >= 1 (got {self.buffer_records})",
            ),
            (
                self.buffer_bytes >= 1024 * 1024,
                f"buffer_bytes must be >= 1 MiB (got {self.buffer_bytes})",
            ),
            (
                self.record_deadline >= 0,
                f"record_deadline must be >= 0 s (got {self.record_deadline})",
            ),
            (
                1024 <= self.max_aggregate_bytes <= 1024 * 1024,
                f"max_aggregate_bytes must be 1 KiB..1 MiB (got {self.max_aggregate_bytes})",
            ),
        ]
        for ok, message in checks:
            if not ok:
                raise ValueError(message)


class KinesisSink(Sink):
    """Delivers records to one Kinesis data stream."""

    kind = "kinesis"

    def __init__(self, settings: KinesisSettings, *, client: Any = None):
        super().__init__()
        settings.validate()
        self.settings = settings
        self.metrics = KinesisMetrics()
        self._client = client
        self._owns_client = client is None
        self._spool = Spool(settings.spool_path) if settings.spool_path else None
        self._batcher = Batcher(ordered=settings.ordered)
        self._packer = (
            Packer(max_size=settings.max_aggregate_bytes, ordered=settings.ordered)
            if settings.aggregate
            else None
        )
        self._buffer: deque[Unit] = deque()
        self._buffered_bytes = 0
        self._ready: deque[Unit] = deque()
        self._retries: list[tuple[float, int, Unit]] = []
        self._order = itertools.count()
        self._held: set[str] = set()
        self._pending_records = 0
        self._pending_bytes = 0
        self._in_flight: dict[int, list[Unit]] = {}
        self._batch_ids = itertools.count()
        self._credential_failures = 0
        self._map_refresh: asyncio.Task[None] | None = None
        self._fatal: SinkError | None = None
        self._flushing = 0
        self._closing = False
        self._closed = False
        self._wake = asyncio.Event()
        self._space = asyncio.Event()
        self._settled = asyncio.Event()
        self._dispatcher: asyncio.Task[None] | None = None
        self._executor: concurrent.futures.ThreadPoolExecutor | None = None
        self._opened = False
        self.last_error: str | None = None

    # -- lifecycle -------------------------------------------------------

    async def open(self) -> None:
        if self._opened:
            return
        if self._client is None:
            self._client = self._new_client()
        else:
            # A client given by the caller learns the sink's fast PutRecords path.
            serialising.install(self._client)
        self._executor = concurrent.futures.ThreadPoolExecutor(
            max_workers=self.settings.max_in_flight + 1, thread_name_prefix="kinesis-put"
        )
        await self._wait_active()
        if self._packer is not None:
            loop = asyncio.get_running_loop()
            try:
                self._packer.shard_map = await loop.run_in_executor(
                    self._executor,
                    sending.read_shard_map,
                    self._client,
                    self.settings.stream_argument,
                )
            except Exception as exc:
                raise classify(exc, stream=self.settings.stream) from exc
            self.metrics.count_shard_map_refresh()
        self._dispatcher = asyncio.create_task(self._guarded_dispatch(), name="kinesis-dispatcher")
        self._opened = True
        logger.info(
            "Writing to Kinesis stream %s: at most %d PutRecords in flight%s%s.",
            self.settings.stream,
            self.settings.max_in_flight,
            ", ordered per partition key" if self.settings.ordered else "",
            ", aggregated" if self.settings.aggregate else "",
        )

    def _new_client(self) -> Any:
        return make_client(self.settings)

    async def _wait_active(self) -> None:
        loop = asyncio.get_running_loop()
        deadline = time.monotonic() + self.settings.wait_active_timeout
        said = False
        while True:
            try:
                summary = await loop.run_in_executor(
                    self._executor,
                    sending.describe_stream,
                    self._client,
                    self.settings.stream_argument,
                )
            except Exception as exc:
                error = classify(exc, stream=self.settings.stream)
                if isinstance(error, PermanentSinkError) or time.monotonic() > deadline:
                    raise error from exc
                status = f"unreachable ({error})"
            else:
                status = str(summary["StreamStatus"])
                if status in ("ACTIVE", "UPDATING"):
                    return
            if time.monotonic() > deadline:
                raise PermanentSinkError(
                    f"stream {self.settings.stream} is {status}, not ACTIVE, after "
                    f"{self.settings.wait_active_timeout:g} s; wait for it or name another",
                    reason="stream_not_active",
                )
            if not said:
                logger.warning(
                    "Stream %s is %s; waiting up to %g s for it to become ACTIVE.",
                    self.settings.stream,
                    status,
                    self.settings.wait_active_timeout,
                )
                said = True
            await asyncio.sleep(0.5)

    async def close(self, timeout: float | None = None) -> AccountingSnapshot:
        """Flush within ``timeout``, spool what is left, wait briefly for requests in flight."""
        if self._closed:
            return self.accounting.snapshot()
        self._closed = True
        try:
            if self._opened:
                await self.flush(timeout)
        finally:
            # NB: from here on nothing new is sent; a failed answer fails its events.
            self._closing = True
            reason = self._fatal.reason if self._fatal else "shutdown_deadline"
            self._give_up_everything_waiting(reason)
            await self._wait_in_flight(self.settings.in_flight_grace)
            for batch in list(self._in_flight.values()):
                self.metrics.count_duplicate_risk(sum(map(EVENTS_OF, batch)))
                self._give_up(batch, "in_flight_at_shutdown")
            self._in_flight.clear()
            for task in (self._dispatcher, self._map_refresh):
                if task is not None:
                    task.cancel()
                    await asyncio.gather(task, return_exceptions=True)
            if self._executor is not None:
                self._executor.shutdown(wait=False, cancel_futures=True)
            if self._spool is not None:
                self._spool.close()
        return self.accounting.snapshot()

    async def _wait_in_flight(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while self._in_flight:
            self._settled.clear()
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._settled.wait(), timeout=remaining)

    # -- the interface ---------------------------------------------------

    async def send(self, records: Sequence[Record]) -> None:
        if self._fatal is not None or self._closing:
            # Counted and spooled, so that generated == acknowledged + failed + pending.
            failure = self._fatal or PermanentSinkError(
                "the Kinesis sink is closed", reason="closed"
            )
            self.accounting.accept(len(records))
            self._spool_and_fail(list(records), failure.reason, 0)
            raise failure
        now = time.monotonic()
        deadline = now + self.settings.record_deadline if self.settings.record_deadline else 1e300
        accepted_bytes = 0
        rejected: dict[str, list[Record]] = {}
        buffer = self._buffer
        columns = columns_of(records)
        if columns is None:
            # Some records can never be sent: sort them out one by one.
            sendable: list[Record] = []
            for record in records:
                _, problem = check_record(record)
                if problem is None:
                    sendable.append(record)
                else:
                    rejected.setdefault(problem, []).append(record)
            columns = columns_of(sendable)
            assert columns is not None
        accepted_bytes = sum(columns.sizes)
        if self._packer is not None:
            buffer.extend(self._packer.add(columns, deadline=deadline, now=now))
        else:
            ordered = self.settings.ordered
            buffer.extend(singles(columns, deadline=deadline, now=now, ordered=ordered))
        self.accounting.accept(len(records), accepted_bytes)
        taken = len(records) - sum(len(r) for r in rejected.values())
        self._pending_records += taken
        self._pending_bytes += accepted_bytes
        self._buffered_bytes += accepted_bytes
        for problem, bad in rejected.items():
            logger.warning(
                "%d events can never be sent to Kinesis (%s): failed and spooled.",
                len(bad),
                problem,
            )
            self._spool_and_fail(bad, problem, 0)
        self._wake.set()
        # NB: events are buffered before waiting for space, so a caller that
        # gives up waiting (a stop) loses nothing; the buffer may overshoot its
        # limit by one call's events.
        while self._is_full() and self._fatal is None and not self._closing:
            self._space.clear()
            await self._space.wait()
        if self._fatal is not None:
            raise self._fatal

    async def flush(self, timeout: float | None = None) -> bool:
        deadline = None if timeout is None else time.monotonic() + timeout
        self._flushing += 1
        self._wake.set()
        try:
            while self._pending_records:
                if self._fatal is not None and not self._in_flight:
                    break
                self._settled.clear()
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    return False
                try:
                    await asyncio.wait_for(self._settled.wait(), timeout=remaining)
                except TimeoutError:
                    return False
            # NB: a fatal sink has nothing pending, but it did not deliver.
            return not self._pending_records and self._fatal is None
        finally:
            self._flushing -= 1

    @property
    def ready(self) -> bool:
        return self._opened and self._fatal is None and not self._closing

    @property
    def fatal(self) -> SinkError | None:
        """The permanent failure that stopped the sink, if any."""
        return self._fatal

    def describe(self) -> dict[str, Any]:
        metrics = self.metrics
        return {
            "kind": self.kind,
            "stream": self.settings.stream,
            "buffered_records": self._buffered_events(),
            "pending_records": self._pending_records,
            "retry_queue": len(self._retries) + len(self._ready),
            "in_flight_requests": len(self._in_flight),
            "put_records_calls": metrics.put_records_calls,
            "retried_records": metrics.retried_records,
            "duplicate_risk_records": metrics.duplicate_risk_records,
            "ordered": self.settings.ordered,
            "aggregate": self.settings.aggregate,
            "spool": str(self.settings.spool_path) if self.settings.spool_path else None,
            "fatal": str(self._fatal) if self._fatal else None,
            "last_error": self.last_error,
        }

    def collect_metrics(self) -> Iterable[Metric]:
        yield from accounting_metrics(self.accounting.snapshot(), sink=self.kind)
        yield from self.metrics.collect(
            stream=self.settings.stream,
            buffered_records=self._buffered_events(),
            in_flight_requests=len(self._in_flight),
        )

    # -- dispatching -------------------------------------------------------

    def _is_full(self) -> bool:
        return (
            self._pending_records >= self.settings.buffer_records
            or self._pending_bytes >= self.settings.buffer_bytes
        )

    def _batch_is_full(self) -> bool:
        return (
            self._buffered_bytes >= MAX_BYTES_PER_REQUEST
            or len(self._buffer) >= MAX_RECORDS_PER_REQUEST
        )

    def _buffered_events(self) -> int:
        """Events buffered, in units or in open aggregates."""
        open_events = self._packer.open_events if self._packer is not None else 0
        return sum(map(EVENTS_OF, self._buffer)) + open_events

    def _close_lingering_aggregates(self, now: float) -> None:
        """Move open aggregates to the buffer when they have lingered, or while flushing."""
        packer = self._packer
        if packer is None or not packer.open_events:
            return
        oldest = packer.oldest
        if self._flushing or (oldest is not None and now - oldest >= self.settings.linger):
            self._buffer.extend(packer.close_all())

    async def _guarded_dispatch(self) -> None:
        try:
            await self._dispatch()
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            # A bug must stop the sink loudly, never leave events stranded.
            logger.exception("The Kinesis dispatcher failed.")
            self._become_fatal(
                PermanentSinkError(f"the Kinesis dispatcher failed: {exc!r}", reason="bug"), []
            )

    async def _dispatch(self) -> None:
        linger = self.settings.linger
        while not self._closing:
            self._wake.clear()
            now = time.monotonic()
            self._release_due_retries(now)
            self._close_lingering_aggregates(now)
            blocked = False
            while len(self._in_flight) < self.settings.max_in_flight and (
                self._ready or self._buffer
            ):
                lingered = bool(self._buffer) and now - self._buffer[0].arrived >= linger
                if not (self._ready or lingered or self._flushing or self._batch_is_full()):
                    break
                taken = self._batcher.take(self._ready, self._buffer, self._held)
                if not taken.units:
                    # Everything left waits for a key in flight (ordered mode).
                    blocked = True
                    break
                self._buffered_bytes -= taken.fresh_bytes
                self._start_request(taken.units)
            if not self._is_full():
                self._space.set()
            # Sleep until something changes, a batch has lingered long enough,
            # or the next retry is due.
            wakeups = []
            if self._buffer and not blocked and len(self._in_flight) < self.settings.max_in_flight:
                wakeups.append(self._buffer[0].arrived + linger)
            if self._retries:
                wakeups.append(self._retries[0][0])
            oldest_open = self._packer.oldest if self._packer is not None else None
            if oldest_open is not None:
                wakeups.append(oldest_open + linger)
            timeout = max(0.0, min(wakeups) - time.monotonic()) if wakeups else None
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=timeout)

    def _start_request(self, batch: list[Unit]) -> None:
        if self.settings.ordered:
            for unit in batch:
                self._held.update(unit.keys)
        batch_id = next(self._batch_ids)
        self._in_flight[batch_id] = batch
        loop = asyncio.get_running_loop()
        future = loop.run_in_executor(
            self._executor, sending.put_units, self._client, self.settings.stream_argument, batch
        )
        future.add_done_callback(functools.partial(self._settle, batch_id))

    def _release_due_retries(self, now: float) -> None:
        while self._retries and self._retries[0][0] <= now:
            self._ready.append(heapq.heappop(self._retries)[2])

    # -- settling ----------------------------------------------------------

    def _settle(self, batch_id: int, done: asyncio.Future[sending.Outcome]) -> None:
        """Back on the event loop: account for each unit of a finished call."""
        batch = self._in_flight.pop(batch_id, None)
        try:
            if batch is None:
                # Given up on at shutdown already (in_flight_at_shutdown).
                return
            if done.cancelled():
                self._retry(batch, "cancelled")
                return
            error = done.exception()
            if error is not None:
                self._become_fatal(
                    PermanentSinkError(f"sending failed unexpectedly: {error!r}", reason="bug"),
                    batch,
                )
                return
            outcome = done.result()
            records = len(batch)
            if outcome.error is not None:
                failure = classify(outcome.error, stream=self.settings.stream)
                self.metrics.observe_call(
                    records=records, seconds=outcome.seconds, outcome=failure.reason
                )
                self._settle_failure(batch, failure)
            else:
                assert outcome.answer is not None
                failed = int(outcome.answer.get("FailedRecordCount", 0) or 0)
                self.metrics.observe_call(
                    records=records, seconds=outcome.seconds, outcome="partial" if failed else "ok"
                )
                self._credential_failures = 0
                self._settle_answer(batch, outcome.answer)
        finally:
            # Wake flushers on every settled call: they re-check what is pending.
            self._settled.set()
            self._wake.set()
            if not self._is_full():
                self._space.set()

    def _settle_failure(self, batch: list[Unit], failure: SinkError) -> None:
        self.last_error = str(failure)
        if failure.reason == "read_timeout":
            # The server may have stored the batch before the answer was lost.
            self.metrics.count_duplicate_risk(sum(map(EVENTS_OF, batch)))
        if (
            failure.reason == "invalid_credentials"
            and self._credential_failures < self.settings.credential_refreshes
        ):
            self._credential_failures += 1
            logger.warning("Kinesis rejected the credentials (%s); reading them again.", failure)
            if self._owns_client:
                self._client = self._new_client()
            self._ready.extendleft(reversed(batch))
        elif isinstance(failure, RetryableSinkError):
            self._retry(batch, failure.reason)
        else:
            self._become_fatal(failure, batch)

    def _settle_answer(self, batch: list[Unit], answer: dict[str, Any]) -> None:
        results = answer.get("Records", [])
        if (
            len(results) == len(batch)
            and not self.settings.ordered
            and not self.settings.aggregate
            and all(map(_SEQUENCE_NUMBER, results))
        ):
            # The common case, every entry stored, without Python code per event.
            self._acknowledge(sum(map(EVENTS_OF, batch)), sum(map(_EVENT_BYTES, batch)))
            return
        acked_events = 0
        acked_bytes = 0
        retry: dict[str, list[Unit]] = {}
        permanent: dict[str, list[Unit]] = {}
        stale_map = False
        for unit, result in zip(batch, results, strict=False):
            if result.get("SequenceNumber"):
                acked_events += unit.events
                acked_bytes += unit.event_bytes
                if unit.keys:
                    self._held.difference_update(unit.keys)
                if unit.shard_id is not None:
                    self.metrics.count_aggregated(unit.events)
                    if result.get("ShardId") not in (None, unit.shard_id):
                        stale_map = True
                continue
            code = str(result.get("ErrorCode") or "InternalFailure")
            target = retry if is_retryable_code(code) else permanent
            target.setdefault(reason_of(code), []).append(unit)
            self.last_error = f"{code}: {result.get('ErrorMessage', '')}"
        if len(results) < len(batch):
            # A malformed answer: entries without a result are not known to be stored.
            retry.setdefault("missing_result", []).extend(batch[len(results) :])
        self._acknowledge(acked_events, acked_bytes)
        for reason, units in retry.items():
            self._retry(units, reason)
        for reason, units in permanent.items():
            self._give_up(units, reason)
        if stale_map:
            self._refresh_shard_map()

    def _acknowledge(self, events: int, nbytes: int) -> None:
        self._pending_records -= events
        self._pending_bytes -= nbytes
        self.accounting.acknowledge(events, nbytes)

    def _retry(self, units: list[Unit], reason: str) -> None:
        if self._fatal is not None or self._closing:
            self._give_up(units, self._fatal.reason if self._fatal else "shutdown_deadline")
            return
        now = time.monotonic()
        expired = [unit for unit in units if unit.deadline <= now]
        if expired:
            self._give_up(expired, f"deadline_{reason}")
        settings = self.settings
        retried = 0
        for unit in units:
            if unit.deadline <= now:
                continue
            attempts = unit.attempts + 1
            ceiling = min(settings.backoff_cap, settings.backoff_base * 2 ** (attempts - 1))
            delay = random.uniform(0, ceiling)
            retry = unit._replace(attempts=attempts)
            heapq.heappush(self._retries, (now + delay, next(self._order), retry))
            retried += unit.events
        self.metrics.count_retried(retried)

    def _give_up(self, units: Iterable[Unit], reason: str) -> None:
        records: list[Record] = []
        nbytes = 0
        for unit in units:
            records.extend(unit.records)
            nbytes += unit.event_bytes
            if unit.keys:
                self._held.difference_update(unit.keys)
        self._pending_records -= len(records)
        self._pending_bytes -= nbytes
        self._spool_and_fail(records, reason, nbytes)

    def _spool_and_fail(self, records: list[Record], reason: str, nbytes: int) -> None:
        if not records:
            return
        spooled = 0
        if self._spool is not None:
            try:
                spooled = self._spool.write(records, reason)
            except OSError as exc:
                logger.error("Cannot write to the spool %s: %s.", self._spool.path, exc)
        self.accounting.fail(len(records), reason, nbytes, spooled=spooled)

    def _give_up_everything_waiting(self, reason: str) -> None:
        waiting = list(self._ready) + [unit for _, _, unit in self._retries]
        self._ready.clear()
        self._retries.clear()
        self._give_up(waiting, reason)
        if self._packer is not None:
            self._buffer.extend(self._packer.close_all())
        if self._buffer:
            records = [record for unit in self._buffer for record in unit.records]
            nbytes = sum(unit.event_bytes for unit in self._buffer)
            self._buffer.clear()
            self._buffered_bytes = 0
            self._pending_records -= len(records)
            self._pending_bytes -= nbytes
            self._spool_and_fail(records, reason, nbytes)

    def _become_fatal(self, failure: SinkError, batch: list[Unit]) -> None:
        if self._fatal is None:
            self._fatal = failure
            self.last_error = str(failure)
            logger.error(
                "Kinesis sink stopped: %s. Undelivered events are failed and spooled.", failure
            )
            self.report_failure(failure)
        self._give_up(batch, failure.reason)
        self._give_up_everything_waiting(failure.reason)
        self._space.set()
        self._settled.set()

    def _refresh_shard_map(self) -> None:
        if self._map_refresh is not None and not self._map_refresh.done():
            return
        self._map_refresh = asyncio.get_running_loop().create_task(self._read_shard_map())

    async def _read_shard_map(self) -> None:
        loop = asyncio.get_running_loop()
        try:
            shard_map = await loop.run_in_executor(
                self._executor, sending.read_shard_map, self._client, self.settings.stream_argument
            )
        except Exception as exc:
            logger.warning("Cannot re-read the shard map (%s); keeping the old one.", exc)
            return
        if self._packer is not None:
            self._packer.shard_map = shard_map
        self.metrics.count_shard_map_refresh()
        logger.info(
            "Re-read the shard map of %s: %d open shards.",
            self.settings.stream,
            len(shard_map.shard_ids),
        )


def make_client(settings: KinesisSettings) -> Any:
    """A Kinesis client configured as the sink would configure it."""
    return sending.make_client(
        region=settings.region,
        endpoint_url=settings.endpoint_url,
        max_in_flight=settings.max_in_flight,
        connect_timeout=settings.connect_timeout,
        read_timeout=settings.read_timeout,
        attempts=settings.client_attempts,
        extra_config=settings.extra_client_config,
    )


__all__ = ["MAX_RECORDS_PER_REQUEST", "KinesisSettings", "KinesisSink", "make_client"]
