"""Delivering records to a Kinesis data stream with PutRecords, losing none.

How a record travels::

    send() ──▶ buffer ──▶ batch (≤ 500 records, ≤ 5 MiB) ──▶ PutRecords in a worker thread
                 ▲                                              │
                 └──── retry queue (backoff, full jitter) ◀─────┘ failed entries only

- ``send`` waits while the buffer holds ``buffer_records`` records or
  ``buffer_bytes`` bytes: that wait is the back-pressure that slows the pacer.
- A batch leaves when it is full, when the oldest record has lingered
  ``linger`` seconds, or at once while flushing. Up to ``max_in_flight``
  requests run at the same time, each in its own thread (boto3 is blocking).
- A 200 answer with ``FailedRecordCount > 0`` acknowledges only the entries
  with a sequence number; the others (index-aligned with the request) go back
  with exponential backoff and full jitter until their deadline passes.
- A permanent failure (no stream, access denied, invalid credentials) makes
  the sink *fatal*: `send` raises it, and whatever is buffered is failed with
  that reason and spooled. Nothing is dropped without being counted.

Limits: ordering per partition key is only kept when ``ordered`` is set (at
most one request in flight per key); otherwise a retried record can land
after a newer one of the same user, as with any concurrent producer.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import heapq
import itertools
import logging
import random
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
import botocore.config

from clickstream_generator.model.events import Record
from clickstream_generator.sinks.base import (
    PermanentSinkError,
    RetryableSinkError,
    Sink,
    SinkError,
    Spool,
)
from clickstream_generator.sinks.kinesis.errors import classify, is_retryable_code, reason_of

logger = logging.getLogger(__name__)

#: Service limits of PutRecords.
MAX_RECORDS_PER_REQUEST = 500
MAX_BYTES_PER_REQUEST = 5 * 1024 * 1024
MAX_BYTES_PER_RECORD = 1024 * 1024
MAX_PARTITION_KEY_LENGTH = 256


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
    """Seconds a record may wait for a fuller batch."""
    buffer_records: int = 100_000
    """Records buffered before `send` waits (back-pressure)."""
    buffer_bytes: int = 32 * 1024 * 1024
    """Bytes buffered before `send` waits (back-pressure)."""
    record_deadline: float = 300.0
    """Seconds a record may be retried before it fails; 0 retries forever."""
    backoff_base: float = 0.1
    """First retry delay ceiling, in seconds (full jitter below it)."""
    backoff_cap: float = 10.0
    """Largest retry delay ceiling, in seconds."""
    connect_timeout: float = 2.0
    """Seconds to open a connection."""
    read_timeout: float = 10.0
    """Seconds to wait for an answer."""
    ordered: bool = False
    """Never have two requests in flight with the same partition key."""
    spool_path: Path | None = None
    """Where undelivered records are written (JSON lines); None keeps no spool."""
    wait_active_timeout: float = 120.0
    """Seconds to wait for the stream to become ACTIVE when opening."""
    extra_client_config: dict[str, Any] = field(default_factory=dict)
    """Additional botocore client options (tests)."""

    @property
    def stream_argument(self) -> dict[str, str]:
        """``StreamName=`` or ``StreamARN=``, whichever identifies the stream."""
        if self.stream.startswith("arn:"):
            return {"StreamARN": self.stream}
        return {"StreamName": self.stream}


@dataclass(eq=False)
class _Entry:
    """A record on its way, with its retry history."""

    record: Record
    size: int
    deadline: float
    attempts: int = 0


class KinesisSink(Sink):
    """Delivers records to one Kinesis data stream."""

    kind = "kinesis"

    def __init__(self, settings: KinesisSettings, *, client: Any = None):
        super().__init__()
        self.settings = settings
        self._client = client
        self._spool = Spool(settings.spool_path) if settings.spool_path else None
        self._buffer: deque[_Entry] = deque()
        self._buffer_bytes = 0
        self._retries: list[tuple[float, int, _Entry]] = []
        self._order = itertools.count()
        self._in_flight = 0
        self._keys_in_flight: set[str] = set()
        self._fatal: SinkError | None = None
        self._flushing = 0
        self._closed = False
        self._wake = asyncio.Event()
        self._space = asyncio.Event()
        self._drained = asyncio.Event()
        self._drained.set()
        self._dispatcher: asyncio.Task[None] | None = None
        self._executor: concurrent.futures.ThreadPoolExecutor | None = None
        self._opened = False
        self.calls = 0
        self.retried = 0
        self.duplicate_risk = 0
        self.last_error: str | None = None

    # -- lifecycle -------------------------------------------------------

    async def open(self) -> None:
        if self._opened:
            return
        if self._client is None:
            self._client = make_client(self.settings)
        self._executor = concurrent.futures.ThreadPoolExecutor(
            max_workers=self.settings.max_in_flight, thread_name_prefix="kinesis-put"
        )
        await self._wait_active()
        self._dispatcher = asyncio.create_task(self._dispatch(), name="kinesis-dispatcher")
        self._opened = True

    async def _wait_active(self) -> None:
        loop = asyncio.get_running_loop()
        deadline = time.monotonic() + self.settings.wait_active_timeout
        said = False
        while True:
            try:
                summary = await loop.run_in_executor(self._executor, self._describe)
            except Exception as exc:
                error = classify(exc, stream=self.settings.stream)
                if isinstance(error, PermanentSinkError) or time.monotonic() > deadline:
                    raise error from exc
                status = f"unreachable ({error})"
            else:
                status = summary["StreamStatus"]
                if status in ("ACTIVE", "UPDATING"):
                    return
            if time.monotonic() > deadline:
                raise PermanentSinkError(
                    f"stream {self.settings.stream} is {status}, not ACTIVE, after "
                    f"{self.settings.wait_active_timeout:g} s",
                    reason="stream_not_active",
                )
            if not said:
                logger.warning(
                    "Stream %s is %s; waiting for it to become ACTIVE.",
                    self.settings.stream,
                    status,
                )
                said = True
            await asyncio.sleep(0.5)

    def _describe(self) -> dict[str, Any]:
        answer = self._client.describe_stream_summary(**self.settings.stream_argument)
        return dict(answer["StreamDescriptionSummary"])

    async def close(self, timeout: float | None = None) -> Any:
        """Flush within ``timeout``; then wait for requests in flight and spool the rest."""
        if self._closed:
            return self.accounting.snapshot()
        try:
            await self.flush(timeout)
        finally:
            self._closed = True
            # Whatever is still buffered or waiting for a retry will not be sent.
            leftovers = list(self._buffer) + [entry for _, _, entry in self._retries]
            self._buffer.clear()
            self._buffer_bytes = 0
            self._retries.clear()
            if leftovers:
                reason = self._fatal.reason if self._fatal else "shutdown_deadline"
                self._give_up(leftovers, reason)
            # NB: requests in flight are waited for, not abandoned: their
            # answers decide whether those records were delivered.
            while self._in_flight:
                self._drained.clear()
                self._wake.set()
                await self._drained.wait()
            if self._dispatcher is not None:
                self._dispatcher.cancel()
                await asyncio.gather(self._dispatcher, return_exceptions=True)
            if self._executor is not None:
                self._executor.shutdown(wait=True)
            if self._spool is not None:
                self._spool.close()
        return self.accounting.snapshot()

    # -- the interface ---------------------------------------------------

    async def send(self, records: Sequence[Record]) -> None:
        if self._fatal is not None:
            raise self._fatal
        if self._closed:
            raise PermanentSinkError("the Kinesis sink is closed", reason="closed")
        now = time.monotonic()
        deadline = (
            now + self.settings.record_deadline if self.settings.record_deadline else float("inf")
        )
        entries = []
        rejected = []
        for record in records:
            size = len(record.data) + len(record.partition_key.encode())
            if (
                size > MAX_BYTES_PER_RECORD
                or not 1 <= len(record.partition_key) <= MAX_PARTITION_KEY_LENGTH
            ):
                rejected.append(record)
            else:
                entries.append(_Entry(record, size, deadline))
        self.accounting.accept(len(records), sum(entry.size for entry in entries))
        if rejected:
            self._give_up([_Entry(r, 0, 0.0) for r in rejected], "record_too_large")
        # NB: records are buffered before waiting for space, so a caller that
        # gives up waiting (a stop) loses nothing; the buffer may overshoot its
        # limit by one call's records.
        for entry in entries:
            self._buffer.append(entry)
            self._buffer_bytes += entry.size
        self._drained.clear()
        self._wake.set()
        while self._is_full() and self._fatal is None:
            self._space.clear()
            self._wake.set()
            await self._space.wait()
        if self._fatal is not None:
            raise self._fatal

    async def flush(self, timeout: float | None = None) -> bool:
        deadline = None if timeout is None else time.monotonic() + timeout
        self._flushing += 1
        self._wake.set()
        try:
            while self._pending_count():
                if self._fatal is not None and not self._in_flight:
                    break
                self._drained.clear()
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    return False
                try:
                    await asyncio.wait_for(self._drained.wait(), timeout=remaining)
                except TimeoutError:
                    return False
            return not self._pending_count()
        finally:
            self._flushing -= 1

    @property
    def ready(self) -> bool:
        return self._opened and self._fatal is None

    @property
    def fatal(self) -> SinkError | None:
        """The permanent failure that stopped the sink, if any."""
        return self._fatal

    def describe(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "stream": self.settings.stream,
            "buffered_records": len(self._buffer),
            "retry_queue": len(self._retries),
            "in_flight_requests": self._in_flight,
            "put_records_calls": self.calls,
            "retried_records": self.retried,
            "duplicate_risk_records": self.duplicate_risk,
            "last_error": self.last_error,
        }

    # -- dispatching -------------------------------------------------------

    def _is_full(self) -> bool:
        return (
            len(self._buffer) >= self.settings.buffer_records
            or self._buffer_bytes >= self.settings.buffer_bytes
        )

    def _pending_count(self) -> int:
        return self.accounting.snapshot().pending

    async def _dispatch(self) -> None:
        loop = asyncio.get_running_loop()
        first_buffered_at: float | None = None
        while True:
            self._wake.clear()
            now = time.monotonic()
            self._release_due_retries(now)
            if self._buffer and first_buffered_at is None:
                first_buffered_at = now
            # Send while there is room in flight and a batch is worth sending.
            while self._in_flight < self.settings.max_in_flight and self._buffer:
                full = len(self._buffer) >= MAX_RECORDS_PER_REQUEST
                lingered = (
                    first_buffered_at is not None
                    and now - first_buffered_at >= self.settings.linger
                )
                if not (full or lingered or self._flushing or self._closed):
                    break
                batch = self._take_batch()
                if not batch:
                    break
                self._in_flight += 1
                for entry in batch:
                    if self.settings.ordered:
                        self._keys_in_flight.add(entry.record.partition_key)
                future = loop.run_in_executor(self._executor, self._put, batch)
                future.add_done_callback(
                    lambda done, batch=batch: self._settle(batch, done)  # type: ignore[misc]
                )
                first_buffered_at = now if self._buffer else None
            if not self._is_full():
                self._space.set()
            # Sleep until something changes, a batch has lingered long enough,
            # or the next retry is due.
            wakeups = []
            if self._buffer and first_buffered_at is not None:
                wakeups.append(first_buffered_at + self.settings.linger)
            if self._retries:
                wakeups.append(self._retries[0][0])
            timeout = max(0.0, min(wakeups) - time.monotonic()) if wakeups else None
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=timeout)

    def _release_due_retries(self, now: float) -> None:
        due = []
        while self._retries and self._retries[0][0] <= now:
            due.append(heapq.heappop(self._retries)[2])
        # Retried entries go first: they are older than anything buffered.
        for entry in reversed(due):
            self._buffer.appendleft(entry)
            self._buffer_bytes += entry.size

    def _take_batch(self) -> list[_Entry]:
        batch: list[_Entry] = []
        nbytes = 0
        skipped: list[_Entry] = []
        while self._buffer and len(batch) < MAX_RECORDS_PER_REQUEST:
            entry = self._buffer[0]
            if nbytes + entry.size > MAX_BYTES_PER_REQUEST:
                break
            self._buffer.popleft()
            key = entry.record.partition_key
            if self.settings.ordered and key in self._keys_in_flight:
                skipped.append(entry)
                continue
            batch.append(entry)
            nbytes += entry.size
            self._buffer_bytes -= entry.size
        for entry in reversed(skipped):
            self._buffer.appendleft(entry)
        return batch

    def _put(self, batch: list[_Entry]) -> dict[str, Any]:
        """Runs in a worker thread: one PutRecords call."""
        self.calls += 1
        return dict(
            self._client.put_records(
                Records=[
                    {"Data": entry.record.data, "PartitionKey": entry.record.partition_key}
                    for entry in batch
                ],
                **self.settings.stream_argument,
            )
        )

    def _settle(self, batch: list[_Entry], done: asyncio.Future[dict[str, Any]]) -> None:
        """Back on the event loop: account for each entry of a finished call."""
        self._in_flight -= 1
        if self.settings.ordered:
            for entry in batch:
                self._keys_in_flight.discard(entry.record.partition_key)
        error = done.exception()
        if error is not None:
            failure = classify(error, stream=self.settings.stream)
            self.last_error = str(failure)
            if failure.reason == "read_timeout":
                # The server may have stored the batch before the answer was lost.
                self.duplicate_risk += len(batch)
            if isinstance(failure, RetryableSinkError):
                self._retry(batch, failure.reason)
            else:
                self._become_fatal(failure, batch)
        else:
            self._settle_answer(batch, done.result())
        # Wake flushers on every settled call: they re-check what is pending.
        self._drained.set()
        self._wake.set()

    def _settle_answer(self, batch: list[_Entry], answer: dict[str, Any]) -> None:
        results = answer.get("Records", [])
        acked_count = 0
        acked_bytes = 0
        retry: list[_Entry] = []
        retry_reason = "throttled"
        permanent: dict[str, list[_Entry]] = {}
        for entry, result in zip(batch, results, strict=False):
            if result.get("SequenceNumber"):
                acked_count += 1
                acked_bytes += entry.size
                continue
            code = str(result.get("ErrorCode", "InternalFailure"))
            if is_retryable_code(code):
                retry.append(entry)
                retry_reason = reason_of(code)
            else:
                permanent.setdefault(reason_of(code), []).append(entry)
                self.last_error = f"{code}: {result.get('ErrorMessage', '')}"
        if len(results) < len(batch):
            # A malformed answer: entries without a result are not known to be stored.
            retry.extend(batch[len(results) :])
        self.accounting.acknowledge(acked_count, acked_bytes)
        if retry:
            self._retry(retry, retry_reason)
        for reason, entries in permanent.items():
            self._give_up(entries, reason)

    def _retry(self, entries: list[_Entry], reason: str) -> None:
        now = time.monotonic()
        expired = [entry for entry in entries if entry.deadline <= now]
        if expired:
            self._give_up(expired, f"deadline_{reason}")
        for entry in entries:
            if entry.deadline <= now:
                continue
            entry.attempts += 1
            ceiling = min(
                self.settings.backoff_cap, self.settings.backoff_base * 2 ** (entry.attempts - 1)
            )
            delay = random.uniform(0, ceiling)
            heapq.heappush(self._retries, (now + delay, next(self._order), entry))
            self.retried += 1

    def _give_up(self, entries: list[_Entry], reason: str) -> None:
        spooled = self._spool.write([e.record for e in entries], reason) if self._spool else 0
        self.accounting.fail(len(entries), reason, sum(e.size for e in entries), spooled=spooled)

    def _become_fatal(self, failure: SinkError, batch: list[_Entry]) -> None:
        if self._fatal is None:
            self._fatal = failure
            logger.error("Kinesis sink stopped: %s. Undelivered records are spooled.", failure)
        leftovers = batch + list(self._buffer) + [entry for _, _, entry in self._retries]
        self._buffer.clear()
        self._buffer_bytes = 0
        self._retries.clear()
        self._give_up(leftovers, failure.reason)
        self._space.set()


def make_client(settings: KinesisSettings) -> Any:
    """A Kinesis client configured for this sink (standard retries, short timeouts).

    Credentials come from boto3's standard chain (environment, profile, web
    identity for IRSA). Only when an endpoint override is given and that chain
    finds nothing are placeholder credentials used, since emulators need some.
    """
    config = botocore.config.Config(
        retries={"mode": "standard", "max_attempts": 3},
        connect_timeout=settings.connect_timeout,
        read_timeout=settings.read_timeout,
        max_pool_connections=settings.max_in_flight + 2,
        **settings.extra_client_config,
    )
    session = boto3.session.Session()
    if settings.endpoint_url and session.get_credentials() is None:
        logger.debug("No AWS credentials found; using placeholders for the endpoint override.")
        session = boto3.session.Session(
            aws_access_key_id="placeholder",
            aws_secret_access_key="placeholder",  # noqa: S106
        )
    return session.client(
        "kinesis", region_name=settings.region, endpoint_url=settings.endpoint_url, config=config
    )


__all__ = ["KinesisSettings", "KinesisSink", "make_client"]
