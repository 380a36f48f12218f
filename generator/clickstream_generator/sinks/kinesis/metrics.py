"""Counters of the Kinesis sink, and their Prometheus form.

The sender threads and the event loop update one `KinesisMetrics` under its
lock; `KinesisMetrics.collect` turns a consistent copy into metric families
at scrape time. Nothing is registered globally: whoever serves metrics wraps
the sink in a collector of its own.

Histograms keep cumulative bucket counts with fixed bounds; quantiles are the
reader's business.
"""

from __future__ import annotations

import bisect
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)

#: Bounds of the records-per-call histogram.
RECORDS_PER_CALL_BOUNDS = (1, 5, 10, 25, 50, 100, 250, 500)
#: Bounds of the request latency histogram, in seconds.
REQUEST_SECONDS_BOUNDS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


@dataclass
class Histogram:
    """Observation counts per bucket (not cumulative), their sum and count."""

    bounds: Sequence[float]
    counts: list[int] = field(default_factory=list)
    total: float = 0.0

    def __post_init__(self) -> None:
        self.counts = [0] * (len(self.bounds) + 1)

    def observe(self, value: float) -> None:
        self.counts[bisect.bisect_left(self.bounds, value)] += 1
        self.total += value

    def buckets(self) -> list[tuple[str, float]]:
        """Cumulative buckets as Prometheus wants them, ``+Inf`` last."""
        result: list[tuple[str, float]] = []
        running = 0
        for bound, count in zip(self.bounds, self.counts, strict=False):
            running += count
            result.append((f"{bound:g}", running))
        result.append(("+Inf", running + self.counts[-1]))
        return result


class KinesisMetrics:
    """Thread-safe counters of one sink."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.put_records_calls = 0
        self.retried_records = 0
        self.duplicate_risk_records = 0
        self.shard_map_refreshes = 0
        self.aggregated_events = 0
        self.records_per_call = Histogram(RECORDS_PER_CALL_BOUNDS)
        self.request_seconds = Histogram(REQUEST_SECONDS_BOUNDS)
        self.calls_by_outcome: dict[str, int] = {}

    def observe_call(self, *, records: int, seconds: float, outcome: str) -> None:
        """One PutRecords call ended (``ok``, ``partial`` or an error reason)."""
        with self._lock:
            self.put_records_calls += 1
            self.records_per_call.observe(records)
            self.request_seconds.observe(seconds)
            self.calls_by_outcome[outcome] = self.calls_by_outcome.get(outcome, 0) + 1

    def count_retried(self, records: int) -> None:
        with self._lock:
            self.retried_records += records

    def count_duplicate_risk(self, records: int) -> None:
        with self._lock:
            self.duplicate_risk_records += records

    def count_shard_map_refresh(self) -> None:
        with self._lock:
            self.shard_map_refreshes += 1

    def count_aggregated(self, events: int) -> None:
        with self._lock:
            self.aggregated_events += events

    def collect(
        self, *, stream: str, buffered_records: int, in_flight_requests: int
    ) -> Iterator[Metric]:
        """Metric families of this moment; gauges come from the caller."""
        with self._lock:
            calls = dict(self.calls_by_outcome)
            retried = self.retried_records
            duplicates = self.duplicate_risk_records
            refreshes = self.shard_map_refreshes
            aggregated = self.aggregated_events
            per_call = (self.records_per_call.buckets(), self.records_per_call.total)
            seconds = (self.request_seconds.buckets(), self.request_seconds.total)
        labels = ["stream"]
        family = CounterMetricFamily(
            "csgen_kinesis_put_records_calls",
            "PutRecords calls, by outcome (ok, partial, or the failure reason).",
            labels=["stream", "outcome"],
        )
        for outcome, count in sorted(calls.items()):
            family.add_metric([stream, outcome], count)
        yield family
        histogram = HistogramMetricFamily(
            "csgen_kinesis_records_per_call", "Kinesis records per PutRecords call.", labels=labels
        )
        histogram.add_metric([stream], per_call[0], per_call[1])
        yield histogram
        histogram = HistogramMetricFamily(
            "csgen_kinesis_request_seconds", "PutRecords latency, in seconds.", labels=labels
        )
        histogram.add_metric([stream], seconds[0], seconds[1])
        yield histogram
        for name, text, value in (
            ("csgen_kinesis_retried_records", "Kinesis records resent after a failure.", retried),
            (
                "csgen_kinesis_duplicate_risk_records",
                "Kinesis records of requests that timed out after sending: they may be stored "
                "twice.",
                duplicates,
            ),
            (
                "csgen_kinesis_shard_map_refreshes",
                "Times the shard map was read (aggregation).",
                refreshes,
            ),
            (
                "csgen_kinesis_aggregated_events",
                "Events sent inside aggregated records.",
                aggregated,
            ),
        ):
            counter = CounterMetricFamily(name, text, labels=labels)
            counter.add_metric([stream], value)
            yield counter
        for name, text, value in (
            (
                "csgen_kinesis_buffer_records",
                "Events buffered and not yet in a request.",
                buffered_records,
            ),
            (
                "csgen_kinesis_in_flight_requests",
                "PutRecords requests running now.",
                in_flight_requests,
            ),
        ):
            gauge = GaugeMetricFamily(name, text, labels=labels)
            gauge.add_metric([stream], value)
            yield gauge
