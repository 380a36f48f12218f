"""Fast tests of the Kinesis sink against a fake client: limits, retries, accounting."""

from __future__ import annotations

import asyncio
import json
import random
import threading
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError
from prometheus_client import CollectorRegistry, generate_latest

from clickstream_generator.model.events import Record
from clickstream_generator.sinks.base import PermanentSinkError, Sink
from clickstream_generator.sinks.kinesis.deaggregating import deaggregate
from clickstream_generator.sinks.kinesis.sink import KinesisSettings, KinesisSink
from tests.sink.helpers import THROTTLED, FakeKinesis, events, sized, until

MIB = 1024 * 1024
pytestmark = pytest.mark.asyncio


def settings(tmp_path: Path, **overrides: Any) -> KinesisSettings:
    values: dict[str, Any] = {
        "stream": "fake",
        "region": "us-east-1",
        "linger": 0.01,
        "backoff_base": 0.001,
        "backoff_cap": 0.01,
        "spool_path": tmp_path / "spool.jsonl",
    }
    values.update(overrides)
    return KinesisSettings(**values)


def spooled(tmp_path: Path) -> list[dict[str, Any]]:
    path = tmp_path / "spool.jsonl"
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines()]


def client_error(code: str, status: int = 400) -> ClientError:
    return ClientError(
        {"Error": {"Code": code, "Message": code}, "ResponseMetadata": {"HTTPStatusCode": status}},
        "PutRecords",
    )


async def deliver(sink: KinesisSink, records: list[Record], timeout: float = 10.0) -> Any:
    await sink.open()
    await sink.send(records)
    return await sink.close(timeout)


async def test_requests_hold_at_most_500_records(tmp_path: Path) -> None:
    fake = FakeKinesis()
    totals = await deliver(KinesisSink(settings(tmp_path), client=fake), events(1201))
    assert max(len(call) for call in fake.calls) == 500
    assert len(fake.stored) == 1201
    assert totals.acknowledged == 1201
    assert totals.pending == 0


async def test_requests_hold_at_most_5_mib_counting_partition_keys(tmp_path: Path) -> None:
    fake = FakeKinesis()
    # Eleven records of 512 KiB: ten make exactly 5 MiB, the eleventh is one too many.
    records = sized(11, 512 * 1024)
    totals = await deliver(KinesisSink(settings(tmp_path), client=fake), records)
    sizes = [sum(len(e["Data"]) + len(e["PartitionKey"]) for e in call) for call in fake.calls]
    assert max(sizes) <= 5 * MIB
    # NB: the two requests run at once; either may reach the fake first.
    assert sorted(len(call) for call in fake.calls) == [1, 10]
    assert totals.acknowledged == 11


async def test_record_over_one_mib_fails_at_once_and_is_spooled(tmp_path: Path) -> None:
    fake = FakeKinesis()
    records = [*sized(1, MIB + 1), *sized(1, MIB, start=1)]
    totals = await deliver(KinesisSink(settings(tmp_path), client=fake), records)
    assert totals.failed_by_reason == {"record_too_large": 1}
    assert totals.acknowledged == 1
    assert [line["sequence"] for line in spooled(tmp_path)] == [0]
    assert all(len(e["Data"]) + len(e["PartitionKey"]) <= MIB for e in fake.stored)


async def test_bad_partition_keys_fail_permanently(tmp_path: Path) -> None:
    fake = FakeKinesis()
    records = [Record(0, b"{}", ""), Record(1, b"{}", "k" * 257), Record(2, b"{}", "k" * 256)]
    totals = await deliver(KinesisSink(settings(tmp_path), client=fake), records)
    assert totals.failed_by_reason == {"invalid_partition_key": 2}
    assert totals.acknowledged == 1


async def test_partial_failure_resends_exactly_the_failed_entries(tmp_path: Path) -> None:
    def decide(number: int, entries: list[dict[str, Any]]) -> Any:
        # The first call fails every third entry; later calls succeed.
        if number == 0:
            return [THROTTLED if i % 3 == 0 else None for i in range(len(entries))]
        return None

    fake = FakeKinesis(decide)
    records = events(300)
    sink = KinesisSink(settings(tmp_path), client=fake)
    totals = await deliver(sink, records)
    first, *rest = fake.calls
    resent = [entry["Data"] for call in rest for entry in call]
    assert sorted(resent) == sorted(first[i]["Data"] for i in range(0, 300, 3))
    assert sorted(e["Data"] for e in fake.stored) == sorted(r.data for r in records)
    assert totals.acknowledged == 300
    assert sink.metrics.retried_records == 100


async def test_throttling_past_the_deadline_fails_and_spools(tmp_path: Path) -> None:
    fake = FakeKinesis(lambda number, entries: [THROTTLED] * len(entries))
    sink = KinesisSink(settings(tmp_path, record_deadline=0.2), client=fake)
    totals = await deliver(sink, events(50))
    assert totals.failed_by_reason == {"deadline_throttled": 50}
    assert len(spooled(tmp_path)) == 50
    assert len(fake.calls) > 1


@pytest.mark.parametrize(
    ("code", "reason"),
    [
        ("ResourceNotFoundException", "stream_not_found"),
        ("AccessDeniedException", "access_denied"),
        ("ValidationException", "invalid_request"),
    ],
)
async def test_permanent_failure_stops_the_sink_and_spools_everything(
    tmp_path: Path, code: str, reason: str
) -> None:
    fake = FakeKinesis(lambda number, entries: client_error(code))
    sink = KinesisSink(settings(tmp_path), client=fake)
    await sink.open()
    await sink.send(events(10))
    assert not await sink.flush(5)
    with pytest.raises(PermanentSinkError):
        await sink.send(events(5))
    totals = await sink.close(1)
    assert totals.failed_by_reason == {reason: 15}
    assert totals.pending == 0
    assert len(spooled(tmp_path)) == 15
    assert sink.describe()["fatal"]


async def test_rejected_credentials_are_read_again_once_then_fatal(tmp_path: Path) -> None:
    fake = FakeKinesis(lambda number, entries: client_error("ExpiredTokenException"))
    sink = KinesisSink(settings(tmp_path), client=fake)
    totals = await deliver(sink, events(10))
    assert len(fake.calls) == 2
    assert totals.failed_by_reason == {"invalid_credentials": 10}


async def test_internal_failure_of_whole_calls_is_retried(tmp_path: Path) -> None:
    def decide(number: int, entries: list[dict[str, Any]]) -> Any:
        return client_error("InternalFailure", 500) if number < 3 else None

    fake = FakeKinesis(decide)
    totals = await deliver(KinesisSink(settings(tmp_path), client=fake), events(100))
    assert totals.acknowledged == 100
    assert len(fake.stored) == 100


@pytest.mark.parametrize("aggregate", [False, True], ids=["plain", "aggregated"])
async def test_ordered_mode_keeps_each_keys_order_under_throttling(
    tmp_path: Path, aggregate: bool
) -> None:
    rng = random.Random(7)
    lock = threading.Lock()

    def decide(number: int, entries: list[dict[str, Any]]) -> Any:
        with lock:
            return [THROTTLED if rng.random() < 0.3 else None for _ in entries]

    fake = FakeKinesis(decide)
    records = events(3000)
    options = settings(tmp_path, ordered=True, max_in_flight=4, aggregate=aggregate)
    if aggregate:
        options.max_aggregate_bytes = 4096
    sink = KinesisSink(options, client=fake)
    await sink.open()
    for start in range(0, 3000, 100):
        await sink.send(records[start : start + 100])
    totals = await sink.close(30)
    assert totals.acknowledged == 3000
    order: dict[int, list[int]] = {}
    for entry in fake.stored:
        for data in deaggregate(entry["Data"]):
            event = json.loads(data)
            order.setdefault(event["user_id"], []).append(event["sequence"])
    assert sum(map(len, order.values())) == 3000
    assert all(seqs == sorted(seqs) for seqs in order.values())
    if aggregate:
        assert len(fake.stored) < 300
    else:
        assert fake.key_overlaps == 0


async def test_several_requests_run_at_once(tmp_path: Path) -> None:
    gate = threading.Event()
    fake = FakeKinesis(gate=gate)
    sink = KinesisSink(settings(tmp_path, max_in_flight=3), client=fake)
    await sink.open()
    await sink.send(events(2000))
    flushing = asyncio.ensure_future(sink.flush(10))
    await until(lambda: fake.in_flight >= 3)
    assert fake.max_in_flight == 3
    gate.set()
    assert await flushing
    await sink.close(1)


async def test_full_buffer_makes_send_wait_until_space(tmp_path: Path) -> None:
    gate = threading.Event()
    fake = FakeKinesis(gate=gate)
    sink = KinesisSink(settings(tmp_path, buffer_records=1000, max_in_flight=1), client=fake)
    await sink.open()
    await sink.send(events(500))
    blocked = asyncio.ensure_future(sink.send(events(600)))
    await asyncio.sleep(0.05)  # not synchronisation: only gives send the chance to wait wrongly
    assert not blocked.done()
    assert sink.describe()["pending_records"] == 1100
    gate.set()
    await asyncio.wait_for(blocked, 10)
    totals = await sink.close(10)
    assert totals.acknowledged == 1100


async def test_close_spools_what_the_deadline_left_and_keeps_the_identity(
    tmp_path: Path,
) -> None:
    fake = FakeKinesis(lambda number, entries: [THROTTLED] * len(entries))
    sink = KinesisSink(settings(tmp_path, record_deadline=0), client=fake)
    await sink.open()
    await sink.send(events(700))
    totals = await sink.close(0.3)
    assert totals.accepted == 700 == totals.acknowledged + totals.failed
    assert totals.pending == 0
    assert sorted(line["sequence"] for line in spooled(tmp_path)) == list(range(700))
    assert set(totals.failed_by_reason) <= {"shutdown_deadline", "in_flight_at_shutdown"}


class _SinkCollector:
    def __init__(self, sink: Sink):
        self.sink = sink

    def collect(self) -> Any:
        return self.sink.collect_metrics()


async def test_metrics_show_accounting_and_kinesis_figures(tmp_path: Path) -> None:
    def decide(number: int, entries: list[dict[str, Any]]) -> Any:
        return [THROTTLED] + [None] * (len(entries) - 1) if number == 0 else None

    sink = KinesisSink(settings(tmp_path), client=FakeKinesis(decide))
    await deliver(sink, events(10))
    registry = CollectorRegistry()
    registry.register(_SinkCollector(sink))
    text = generate_latest(registry).decode()
    assert 'csgen_events_accepted_total{sink="kinesis"} 10.0' in text
    assert 'csgen_events_acknowledged_total{sink="kinesis"} 10.0' in text
    assert 'csgen_events_pending{sink="kinesis"} 0.0' in text
    assert 'csgen_kinesis_put_records_calls_total{outcome="partial",stream="fake"} 1.0' in text
    assert 'csgen_kinesis_retried_records_total{stream="fake"} 1.0' in text
    assert 'csgen_kinesis_records_per_call_count{stream="fake"} 2.0' in text
    assert "csgen_kinesis_request_seconds_bucket" in text
    assert 'csgen_kinesis_in_flight_requests{stream="fake"} 0.0' in text
    assert 'csgen_kinesis_buffer_records{stream="fake"} 0.0' in text


async def test_failed_metrics_are_labelled_by_reason(tmp_path: Path) -> None:
    sink = KinesisSink(settings(tmp_path), client=FakeKinesis())
    await deliver(sink, sized(2, MIB + 1))
    names = {
        (sample.name, sample.labels.get("reason"), sample.value)
        for metric in sink.collect_metrics()
        for sample in metric.samples
    }
    assert ("csgen_events_failed_total", "record_too_large", 2) in names
