"""The interface every sink implements, and the accounting they share.

A sink takes records (`Sink.send`), delivers them, and accounts for each
one: every record it has accepted is at every moment in exactly one of three
states, so that ``accepted == acknowledged + failed + pending`` always holds:

- *acknowledged*: delivered (for Kinesis: it has a sequence number);
- *failed*: given up on, with a reason, and written to the spool if one is
  configured (see `Spool`);
- *pending*: buffered or in flight.

`Sink.send` may wait: that wait is the back-pressure that slows the pacer
when the destination cannot keep up. A permanent failure raises
`PermanentSinkError` from `send` (and from `flush`), which stops the
generator; it never makes records vanish.

`Sink.collect_metrics` yields Prometheus metric families built at collect
time from the sink's own counters; no global registry is touched, so any
number of sinks can live in one process (tests make many).

Not here: batching, retries and limits, which are each sink's own business.
"""

from __future__ import annotations

import abc
import json
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

from clickstream_generator.kits.errors import GeneratorError
from clickstream_generator.model.events import Record


class SinkError(GeneratorError):
    """A record could not be delivered."""

    #: A short machine-readable reason (metrics label, spool field).
    reason: str = "error"

    def __init__(self, message: str, *, reason: str | None = None):
        super().__init__(message)
        if reason is not None:
            self.reason = reason


class RetryableSinkError(SinkError):
    """A failure worth another try: throttling, a 5xx, a lost connection."""


class PermanentSinkError(SinkError):
    """A failure that will repeat: no such stream, access denied, a record too large."""


@dataclass(frozen=True)
class AccountingSnapshot:
    """Counters of one moment; `pending` is derived, so the identity always holds."""

    accepted: int = 0
    """Records handed to the sink."""
    acknowledged: int = 0
    """Records delivered."""
    failed: int = 0
    """Records given up on."""
    failed_by_reason: dict[str, int] = field(default_factory=dict)
    """``failed`` split by reason."""
    spooled: int = 0
    """Failed records written to the spool file."""
    buffered_bytes: int = 0
    """Bytes of records not yet delivered."""

    @property
    def pending(self) -> int:
        """Records buffered or in flight."""
        return self.accepted - self.acknowledged - self.failed

    def as_dict(self) -> dict[str, Any]:
        """A JSON-friendly form for status endpoints and summaries."""
        return {
            "accepted": self.accepted,
            "acknowledged": self.acknowledged,
            "failed": self.failed,
            "pending": self.pending,
            "failed_by_reason": dict(self.failed_by_reason),
            "spooled": self.spooled,
            "buffered_bytes": self.buffered_bytes,
        }


class Accounting:
    """Thread-safe counters of a sink's records (sender threads update them)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._accepted = 0
        self._acknowledged = 0
        self._failed: Counter[str] = Counter()
        self._spooled = 0
        self._bytes = 0

    def accept(self, count: int, nbytes: int = 0) -> None:
        with self._lock:
            self._accepted += count
            self._bytes += nbytes

    def acknowledge(self, count: int, nbytes: int = 0) -> None:
        with self._lock:
            self._acknowledged += count
            self._bytes -= nbytes

    def fail(self, count: int, reason: str, nbytes: int = 0, *, spooled: int = 0) -> None:
        with self._lock:
            self._failed[reason] += count
            self._spooled += spooled
            self._bytes -= nbytes

    def snapshot(self) -> AccountingSnapshot:
        with self._lock:
            return AccountingSnapshot(
                accepted=self._accepted,
                acknowledged=self._acknowledged,
                failed=sum(self._failed.values()),
                failed_by_reason=dict(self._failed),
                spooled=self._spooled,
                buffered_bytes=self._bytes,
            )


class Spool:
    """A JSON-lines file of records that were not delivered, with their reason.

    Each line: ``{"sequence": …, "partition_key": …, "reason": …, "failed_at": …,
    "data": <the event as JSON text>}``. Appended and flushed per write, so a
    crash loses at most the line being written.
    """

    def __init__(self, path: Path):
        self.path = path
        self._lock = threading.Lock()
        self._file: TextIO | None = None

    def write(self, records: Iterable[Record], reason: str) -> int:
        """Append records; returns how many were written."""
        now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        lines = [
            json.dumps(
                {
                    "sequence": record.sequence,
                    "partition_key": record.partition_key,
                    "reason": reason,
                    "failed_at": now,
                    "data": record.data.decode("utf-8", errors="replace"),
                },
                ensure_ascii=False,
            )
            + "\n"
            for record in records
        ]
        if not lines:
            return 0
        with self._lock:
            if self._file is None:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                self._file = self.path.open("a", encoding="utf-8")
            self._file.writelines(lines)
            self._file.flush()
        return len(lines)

    def close(self) -> None:
        with self._lock:
            if self._file is not None:
                self._file.close()
                self._file = None


class Sink(abc.ABC):
    """Where the engine sends records."""

    #: A short name for logs and status (``stdout``, ``file``, ``kinesis``).
    kind: str = "sink"

    def __init__(self) -> None:
        self.accounting = Accounting()
        #: The permanent failure that stopped the sink, once there is one.
        self.failure: SinkError | None = None
        self._failure_listeners: list[Callable[[SinkError], None]] = []

    def add_failure_listener(self, listener: Callable[[SinkError], None]) -> None:
        """Call ``listener`` (on the event loop) when the sink fails permanently.

        A failure found in the background (an answer to a request in flight)
        reaches the producer at once, not at its next send, which at a low
        rate can be minutes away.
        """
        self._failure_listeners.append(listener)

    def report_failure(self, error: SinkError) -> None:
        """Record a permanent failure and tell the listeners (once)."""
        if self.failure is not None:
            return
        self.failure = error
        for listener in self._failure_listeners:
            listener(error)

    async def open(self) -> None:  # noqa: B027 - most sinks have nothing to open
        """Connect and check the destination; raise `PermanentSinkError` if unusable."""

    @abc.abstractmethod
    async def send(self, records: Sequence[Record]) -> None:
        """Accept records for delivery; may wait while the sink is full."""

    @abc.abstractmethod
    async def flush(self, timeout: float | None = None) -> bool:
        """Wait until nothing is pending or ``timeout`` seconds pass; True if drained."""

    async def close(self, timeout: float | None = None) -> AccountingSnapshot:
        """Flush within ``timeout``, fail (and spool) what is left, release resources."""
        await self.flush(timeout)
        return self.accounting.snapshot()

    @property
    def ready(self) -> bool:
        """Whether the sink is open and its destination reachable."""
        return True

    def describe(self) -> dict[str, Any]:
        """Sink-specific figures for status (buffer depth, target, ...)."""
        return {"kind": self.kind}

    def collect_metrics(self) -> Iterable[Metric]:
        """Prometheus metric families of this sink, built now from its counters."""
        return accounting_metrics(self.accounting.snapshot(), sink=self.kind)


def accounting_metrics(snapshot: AccountingSnapshot, *, sink: str) -> Iterator[Metric]:
    """The accounting identity as metrics: accepted, acknowledged, failed, pending."""
    yield _one(
        CounterMetricFamily,
        "csgen_events_accepted",
        "Events handed to the sink.",
        sink,
        snapshot.accepted,
    )
    yield _one(
        CounterMetricFamily,
        "csgen_events_acknowledged",
        "Events the destination confirmed.",
        sink,
        snapshot.acknowledged,
    )
    failed = CounterMetricFamily(
        "csgen_events_failed", "Events given up on, by reason.", labels=["sink", "reason"]
    )
    for reason, count in sorted(snapshot.failed_by_reason.items()):
        failed.add_metric([sink, reason], count)
    yield failed
    yield _one(
        CounterMetricFamily,
        "csgen_events_spooled",
        "Failed events written to the spool file.",
        sink,
        snapshot.spooled,
    )
    yield _one(
        GaugeMetricFamily,
        "csgen_events_pending",
        "Events buffered or in flight.",
        sink,
        snapshot.pending,
    )
    yield _one(
        GaugeMetricFamily,
        "csgen_buffer_bytes",
        "Bytes of events not yet delivered.",
        sink,
        snapshot.buffered_bytes,
    )


def _one(
    family: type[CounterMetricFamily] | type[GaugeMetricFamily],
    name: str,
    text: str,
    sink: str,
    value: float,
) -> Metric:
    """A metric family with one sample, labelled by sink."""
    metric = family(name, text, labels=["sink"])
    metric.add_metric([sink], value)
    return metric
